#!/usr/bin/env bash
# Style as CI enforces it: swift-format's lint (.swift-format: 120 columns, 4 spaces) and no line over 120
# characters, which swift-format cannot break in comments and string literals. `swift format -i -r Sources Tests
# Package.swift` fixes the first; the second is fixed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(find Sources Tests -name '*.swift'; echo Package.swift)
swift format lint --strict $files
python3 - $files <<'PY'
import sys
long = [(p, n, len(l)) for p in sys.argv[1:] for n, l in enumerate(open(p, encoding="utf-8").read().split("\n"), 1)
        if len(l) > 120]
for p, n, k in long:
    print(f"{p}:{n}: {k} characters, over 120")
sys.exit(1 if long else 0)
PY
