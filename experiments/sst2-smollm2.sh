#!/usr/bin/env bash
# Gradient methods side by side on SST-2 with SmolLM2-135M (experiments/sst2-smollm2.yaml: 1000 training and 500 dev
# sentences, the gold label word's loss, batch 16, constant rate, no clipping). Run from the repository root with
# ../shared beside it and SmolLM2's GGUF in cache/ (../shared/real/README.md):
#   experiments/sst2-smollm2.sh qft       AdamW, Lion, QFT, then QFT with the INT8 gradient stack and with an fp32
#                                         embedding (issue 6); Lion and QFT at LION_LR (Lion's rate is usually 3–10×
#                                         below AdamW's)
#   experiments/sst2-smollm2.sh lowrank   AdamW, GaLore (rank 64, T = 200, α = 1) and AdaRankGrad (ranks 4…64) at the
#                                         same rate, fused updates, embedding frozen (LSP-Offload's trainable set:
#                                         block matrices and norms; issue 7)
#   experiments/sst2-smollm2.sh lsp       LSP-Offload with d = 256, 512 and r = 4, 8 beside the lowrank runs (same
#                                         folder, same trainable set; GaLore's rank 64 keeps about the optimizer state
#                                         of d = 256): projectors checked every 40 steps on 2 held-out batches (issue 8)
#   experiments/sst2-smollm2.sh precision AdamW (ADAMW_LR), MeZO (ZO_LR, ε 1e-3, on MeZO's classification loss as in
#                                         experiments/zo-sst2.sh: at 1e-4 the gold word's loss diverges) and QFT (LION_LR), each in fp32 and in
#                                         bf16 (train.precision; MeZO then keeps bf16 weights) with the same seed (issue 19)
# Same data, steps and seed for every run; experiments/summarize_sst2.py writes OUT/summary.md (training loss, dev
# accuracy, memory, time per step). Settings by environment: STEPS, EVERY, ADAMW_LR, LION_LR, ZO_LR, and for the precision suite
# PRECISIONS, METHODS, SEEDS (seed 0 runs keep the plain names, others end in -seedN). Runs already present in
# OUT are kept (delete to redo).
set -euo pipefail
suite=${1:-}
steps=${STEPS:-100}; every=${EVERY:-100}; adamw_lr=${ADAMW_LR:-1e-5}; lion_lr=${LION_LR:-2e-6}; zo_lr=${ZO_LR:-1e-4}
case "$suite" in
  qft) out=runs/qft-sst2 ;;
  lowrank|lsp) out=runs/lowrank-sst2 ;;
  precision) out=runs/precision-sst2 ;;
  *) echo "usage: $0 qft|lowrank|lsp|precision" >&2; exit 2 ;;
esac
bin=.build/release/leantune
swift build -c release --product leantune >/dev/null
mkdir -p "$out"

source experiments/record.sh
run() {  # run NAME ARGS...: one training run into OUT/NAME, skipped when it finished before
  local name=$1; shift
  record_run "$out" "$name" "$bin" train --config experiments/sst2-smollm2.yaml --set schedule.steps="$steps" \
    --set eval.every="$every" --set logging.output="$out/$name" "$@"
}

if [ "$suite" = qft ]; then
  run adamw --set method.name=adamw --set optimizer.lr="$adamw_lr"
  run lion --set method.name=lion --set optimizer.lr="$lion_lr"
  run qft --set method.name=qft --set optimizer.lr="$lion_lr"
  run qft-stack --set method.name=qft --set method.gradients=stack --set optimizer.lr="$lion_lr"
  run qft-fp32-embedding --set method.name=qft --set method.fp32_modules="[norms, embedding]" --set optimizer.lr="$lion_lr"
elif [ "$suite" = lowrank ]; then
  frozen=(--set "optimizer.frozen=[embedding, head]")
  run adamw-fused --set method.name=adamw-fused "${frozen[@]}" --set optimizer.lr="$adamw_lr"
  run galore --set method.name=galore --set method.fused=true --set method.rank=64 --set method.scale=1 "${frozen[@]}" --set optimizer.lr="$adamw_lr"
  run adarankgrad --set method.name=adarankgrad --set method.fused=true --set method.rank=64 --set method.scale=1 "${frozen[@]}" --set optimizer.lr="$adamw_lr"
elif [ "$suite" = precision ]; then
  for seed in ${SEEDS:-0}; do
    s=$([ "$seed" = 0 ] || echo "-seed$seed")  # seed 0 keeps the plain names
    for p in ${PRECISIONS:-fp32 bf16}; do
      for m in ${METHODS:-adamw mezo qft}; do
        case $m in
          adamw) run "adamw-$p$s" --set train.seed="$seed" --set train.precision=$p --set method.name=adamw --set optimizer.lr="$adamw_lr" ;;
          mezo) run "mezo-$p$s" --set train.seed="$seed" --set train.precision=$p --set method.name=mezo --set method.epsilon=1e-3 \
                  --set train.loss=classification --set optimizer.lr="$zo_lr" ;;
          qft) run "qft-$p$s" --set train.seed="$seed" --set train.precision=$p --set method.name=qft --set optimizer.lr="$lion_lr" ;;
        esac
      done
    done
  done
else
  for dr in "256 4" "512 8" "256 8" "512 4"; do  # the corners first
    read -r d r <<< "$dr"
    run "lsp-d$d-r$r" --set method.name=lsp-offload --set method.size="$d" --set method.nonzeros="$r" --set method.check_frequency=40 --set optimizer.lr="$adamw_lr"
  done
fi
python3 experiments/summarize_sst2.py "$out" > "$out/summary.md"
cat "$out/summary.md"
