#!/usr/bin/env bash
# MeZO vs DiZO on SST-2 (issue 5). Run from the repository root with ../shared beside it:
#   experiments/zo-sst2.sh [stories260k|smollm2]
# 1. learning-rate grid for MeZO on the 500 dev sentences (seed 0), the best final dev accuracy wins;
# 2. MeZO and DiZO (kv) with that rate for each seed, evaluated on the 872 sentences of test.tsv;
# 3. the projected-set ablation of DiZO (qv, attention, all-linear) for the first seed;
# 4. experiments/summarize_zo.py writes OUT/summary.md (accuracy against steps and wall time).
# Settings by environment: STEPS, SEEDS, GRID, EVERY, INTERVAL (DiZO's projection interval κ, default 50; its README
# asks for more frequent projection on small models and easy tasks); LR=x skips the grid; SEEDS="" runs only the grid;
# ABLATION="" skips the ablation;
# LOSS=classification trains MeZO's classification-style loss (runs in OUT-classification) instead of the gold
# label word's LM loss; FROZEN=embedding leaves the embedding unperturbed in both methods, as the DiZO code does
# (runs in OUT-…-frozen-embedding; docs/fidelity.md).
# Runs already present in OUT are kept (delete to redo).
set -euo pipefail
model=${1:-stories260k}
case "$model" in
  stories260k) model_sets=(); default_grid="3e-5 1e-4 3e-4"; default_steps=2000 ;;
  smollm2) model_sets=(--set model.path=cache/SmolLM2-135M-Instruct.Q4_1.gguf --set model.tokenizer=null)
           default_grid="1e-6 1e-5"; default_steps=500 ;;
  *) echo "usage: $0 [stories260k|smollm2]" >&2; exit 2 ;;
esac
steps=${STEPS:-$default_steps}; seeds=${SEEDS-"0 1 2"}; grid=${GRID:-$default_grid}; every=${EVERY:-100}; interval=${INTERVAL:-50}
out=runs/zo-sst2-$model${LOSS:+-$LOSS}${FROZEN:+-frozen-$FROZEN}
bin=.build/release/leantune
swift build -c release --product leantune >/dev/null
mkdir -p "$out"
test_set=(--set data.eval=../shared/real/data/sst2/test.tsv --set data.eval_skip=0 --set data.eval_limit=0)

source experiments/record.sh
run() {  # run NAME ARGS...: one training run into OUT/NAME, skipped when it finished before
  local name=$1; shift
  record_run "$out" "$name" "$bin" train --config experiments/zo-sst2.yaml "${model_sets[@]}" --set schedule.steps="$steps" \
    --set eval.every="$every" --set logging.output="$out/$name" --set train.loss="${LOSS:-lm}" \
    ${FROZEN:+--set optimizer.frozen=[$FROZEN]} "$@"
}

if [ -n "${LR:-}" ]; then
  best=$LR
  echo "learning rate given: $best (no grid)"
else
  for lr in $grid; do run "grid-mezo-lr$lr" --set method.name=mezo --set optimizer.lr="$lr"; done
  best=$(python3 experiments/summarize_zo.py "$out" --best-lr)
  echo "best MeZO learning rate on dev: $best"
fi
for seed in $seeds; do
  run "mezo-seed$seed" --set method.name=mezo --set optimizer.lr="$best" --set train.seed="$seed" "${test_set[@]}"
  run "dizo-kv-seed$seed" --set method.name=dizo --set method.projected=kv --set method.interval="$interval" --set optimizer.lr="$best" --set train.seed="$seed" "${test_set[@]}"
done
first=${seeds%% *}
[ -n "$first" ] && for set in ${ABLATION-qv attention all-linear}; do
  run "dizo-$set-seed$first" --set method.name=dizo --set method.projected="$set" --set method.interval="$interval" --set optimizer.lr="$best" --set train.seed="$first" "${test_set[@]}"
done
python3 experiments/summarize_zo.py "$out" > "$out/summary.md"
cat "$out/summary.md"
