#!/usr/bin/env bash
# AdamW vs GaLore vs AdaRankGrad pre-training a tiny Llama from scratch (issue 7, experiment a). Run from the
# repository root with ../shared beside it:  experiments/lowrank-pretrain.sh [RUN...]
# RUN is adamw, galore, adarankgrad (STEPS steps each), or an AdaRankGrad ablation point: "default" or one setting
# such as capture=0.3 (ABLATION_STEPS steps each, so the ablation has its own baseline), or full:SETTING, AdaRankGrad
# with one setting changed for the full STEPS (e.g. full:capture=0.7, to check an ablation's winner); no RUN means all
# of them: the three methods, then ρ (method.capture 0.3, 0.7), T_max (method.update_interval 100, 400) and η_th
# (method.energy 0.8, 0.95) around the defaults, then full:capture=0.7. JOBS=2 (no RUN) runs them as two queues of
# about equal steps side by side, one thread each, as the runs behind docs/results.md were made. The same data, seed
# and schedule shape for every run: AdamW at ADAMW_LR; GaLore (rank 32, T = 200, α = 0.25) and AdaRankGrad (ranks
# 4…32) at LOWRANK_LR, as in GaLore's pre-training scripts, where the effective rate is α·lr.
# experiments/summarize_lowrank.py writes OUT/summary.md: perplexity against steps, optimizer-state bytes (mean over
# the run), mean rank, decomposition time. Runs already present in OUT are kept (delete to redo).
set -euo pipefail
steps=${STEPS:-2000}; ablation_steps=${ABLATION_STEPS:-1000}; threads=${THREADS:-2}
adamw_lr=${ADAMW_LR:-1e-3}; lowrank_lr=${LOWRANK_LR:-1e-2}
out=runs/lowrank-pretrain
bin=.build/release/leantune
swift build -c release --product leantune >/dev/null
mkdir -p "$out/data"
[ -f "$out/data/eval.jsonl" ] || python3 - "$out/data" <<'PY'
import json, os, sys
out = sys.argv[1]
for name, source, limit in [("train", "train", None), ("eval", "test", 200)]:
    texts = [r["question"] + "\n" + r["answer"] for r in map(json.loads, open(f"../shared/real/data/gsm8k/{source}.jsonl"))]
    texts = [t for t in texts if len(t) <= 750][:limit]  # short examples: ≤ 750 characters is ≤ 1024 tokens of tok512
    with open(f"{out}/{name}.jsonl.{os.getpid()}", "w") as f:  # then renamed: an interrupted preparation leaves no file
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    os.replace(f"{out}/{name}.jsonl.{os.getpid()}", f"{out}/{name}.jsonl")
PY

source experiments/record.sh
run() {  # run NAME STEPS ARGS...: one training run into OUT/NAME, skipped when it finished before
  local name=$1 steps=$2; shift 2
  record_run "$out" "$name" "$bin" train --config experiments/lowrank-pretrain.yaml --set schedule.steps="$steps" \
    --set schedule.warmup=$((steps / 10)) --set train.threads="$threads" --set logging.output="$out/$name" "$@"
}

lowrank=(--set method.rank=32 --set optimizer.lr="$lowrank_lr")  # method: keys apply only to the methods that read them
ada=(--set method.name=adarankgrad "${lowrank[@]}")
queues=("adamw galore default capture=0.3"
        "adarankgrad capture=0.7 update_interval=100 update_interval=400 energy=0.8 energy=0.95 full:capture=0.7")
if [ $# -eq 0 ] && [ "${JOBS:-1}" = 2 ]; then  # the queues side by side; the loop below then finds every run done
  THREADS=1 JOBS=1 "$0" ${queues[0]} & first=$!
  THREADS=1 JOBS=1 "$0" ${queues[1]}
  wait "$first"
fi
runs=("$@")
[ $# -gt 0 ] || runs=(${queues[0]} ${queues[1]})
for r in "${runs[@]}"; do
  case "$r" in
    adamw) run adamw "$steps" --set method.name=adamw --set optimizer.lr="$adamw_lr" ;;
    galore) run galore "$steps" --set method.name=galore "${lowrank[@]}" ;;
    adarankgrad) run adarankgrad "$steps" "${ada[@]}" ;;
    default) run ablation-default "$ablation_steps" "${ada[@]}" ;;
    full:*=*) setting=${r#full:}; run "adarankgrad-${setting/=/-}" "$steps" "${ada[@]}" --set "method.$setting" ;;
    *=*) run "ablation-${r/=/-}" "$ablation_steps" "${ada[@]}" --set "method.$r" ;;
    *) echo "unknown run $r" >&2; exit 2 ;;
  esac
done
python3 experiments/summarize_lowrank.py "$out" > "$out/summary.md"
cat "$out/summary.md"
