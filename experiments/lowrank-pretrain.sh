#!/usr/bin/env bash
# AdamW vs GaLore vs AdaRankGrad pre-training a tiny Llama from scratch (issue 7, experiment a). Run from the
# repository root with ../shared beside it:  experiments/lowrank-pretrain.sh
# The same data, steps, seed and schedule for every run: AdamW (lr ADAMW_LR), GaLore (rank 32, T = 200, α = 0.25,
# lr LOWRANK_LR as in GaLore's pre-training scripts, where the effective rate is α·lr), AdaRankGrad (ranks 4…32),
# then AdaRankGrad's ablations of ρ (method.capture), T_max (method.update_interval) and η_th (method.energy).
# experiments/summarize_lowrank.py writes OUT/summary.md: perplexity against steps, optimizer-state bytes (mean over
# the run), mean rank, decomposition time. Settings by environment: STEPS, ADAMW_LR, LOWRANK_LR, ABLATION ("" skips).
# Runs already present in OUT are kept (delete to redo).
set -euo pipefail
steps=${STEPS:-2000}; adamw_lr=${ADAMW_LR:-1e-3}; lowrank_lr=${LOWRANK_LR:-1e-2}
out=runs/lowrank-pretrain
bin=.build/release/leantune
swift build -c release --product leantune >/dev/null
mkdir -p "$out/data"
python3 - "$out/data" <<'PY'
import json, sys
out = sys.argv[1]
for name, source, limit in [("train", "train", None), ("eval", "test", 200)]:
    texts = [r["question"] + "\n" + r["answer"] for r in map(json.loads, open(f"../shared/real/data/gsm8k/{source}.jsonl"))]
    texts = [t for t in texts if len(t) <= 750][:limit]  # short examples: ≤ 750 characters is ≤ 1024 tokens of tok512
    with open(f"{out}/{name}.jsonl", "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
PY

run() {  # run NAME ARGS...: one training run into OUT/NAME, skipped when it finished before
  local name=$1; shift
  [ -f "$out/$name/metrics.csv" ] && return 0
  rm -rf "${out:?}/$name"
  "$bin" train --config experiments/lowrank-pretrain.yaml --set schedule.steps="$steps" --set schedule.warmup=$((steps / 10)) \
    --set logging.output="$out/$name" "$@" > "$out/$name.log" 2>&1 || { echo "run $name failed; see $out/$name.log" >&2; exit 1; }
  grep -E "eval" "$out/$name.log" | tail -1
}

run adamw --set method.name=adamw --set optimizer.lr="$adamw_lr"
run galore --set method.name=galore --set optimizer.lr="$lowrank_lr"
run adarankgrad --set method.name=adarankgrad --set optimizer.lr="$lowrank_lr"
for setting in ${ABLATION-capture=0.3 capture=0.7 update_interval=100 update_interval=400 energy=0.8 energy=0.95}; do
  run "adarankgrad-${setting/=/-}" --set method.name=adarankgrad --set optimizer.lr="$lowrank_lr" --set "method.$setting"
done
python3 experiments/summarize_lowrank.py "$out" > "$out/summary.md"
cat "$out/summary.md"
