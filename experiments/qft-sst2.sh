#!/usr/bin/env bash
# AdamW vs Lion vs QFT on SST-2 (issue 6). Run from the repository root with ../shared beside it and SmolLM2's
# GGUF in cache/ (see ../shared/real/README.md):  experiments/qft-sst2.sh
# Same data, steps and seed for every run: fp32 AdamW (lr ADAMW_LR), fp32 Lion and QFT (lr LION_LR; Lion's rate is
# usually 3–10× below AdamW's), then QFT's ablations: the INT8 gradient stack instead of fused updates, and the
# embedding kept in fp32. experiments/summarize_qft.py writes OUT/summary.md (loss curves, dev accuracy, memory, time).
# Settings by environment: STEPS, EVERY, ADAMW_LR, LION_LR. Runs already present in OUT are kept (delete to redo).
set -euo pipefail
steps=${STEPS:-100}; every=${EVERY:-100}; adamw_lr=${ADAMW_LR:-1e-5}; lion_lr=${LION_LR:-2e-6}
out=runs/qft-sst2
bin=.build/release/leantune
swift build -c release --product leantune >/dev/null
mkdir -p "$out"

run() {  # run NAME ARGS...: one training run into OUT/NAME, skipped when it finished before
  local name=$1; shift
  [ -f "$out/$name/metrics.csv" ] && return 0
  rm -rf "${out:?}/$name"
  "$bin" train --config experiments/qft-sst2.yaml --set schedule.steps="$steps" --set eval.every="$every" \
    --set logging.output="$out/$name" "$@" > "$out/$name.log" 2>&1 || { echo "run $name failed; see $out/$name.log" >&2; exit 1; }
  grep -E "eval" "$out/$name.log" | tail -1
}

run adamw --set method.name=adamw --set optimizer.lr="$adamw_lr"
run lion --set method.name=lion --set optimizer.lr="$lion_lr"
run qft --set method.name=qft --set optimizer.lr="$lion_lr"
run qft-stack --set method.name=qft --set method.gradients=stack --set optimizer.lr="$lion_lr"
run qft-fp32-embedding --set method.name=qft --set method.fp32_modules="[norms, embedding]" --set optimizer.lr="$lion_lr"
python3 experiments/summarize_qft.py "$out" > "$out/summary.md"
cat "$out/summary.md"
