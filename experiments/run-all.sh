#!/usr/bin/env bash
# Every experiment behind docs/results.md, then the page itself: run from the repository root of a clean checkout
# with ../shared beside it. Each script keeps the runs it already finished (runs/…, which stays out of git), so an
# interrupted run-all.sh picks up where it stopped; delete a run's folder to redo it (rm -rf runs: everything). What
# the page needs of each run is kept in the repository: experiments/runs.py compact writes one small JSON per run
# (loss curve, evaluations, time, memory, provenance with commit, machine and dates) and the scripts' summary.md
# under experiments/results/runs/, and each section says which commit and day its runs come from. Seeds are fixed in
# each script (seed 0; stories260K MeZO/DiZO also 1 and 2). Every run from scratch took ≈ 4.2 h on the 2-core machine of docs/results.md (2026-11-23), most of it the
# SmolLM2 runs (≈ 3 s per step); the settings are the ones the method issues' results were made with.
#   experiments/run-all.sh          everything
#   PAGE_ONLY=1 experiments/run-all.sh   only redraw docs/results.md and its plots from experiments/results/runs
set -euo pipefail
if [ -z "${PAGE_ONLY:-}" ]; then
  scripts/get-smollm2.sh >/dev/null  # the model the SmolLM2 experiments fine-tune, into cache/
  # MeZO vs DiZO (issue 5)
  experiments/zo-sst2.sh stories260k
  LOSS=classification STEPS=100 EVERY=50 GRID="1e-5 1e-4" SEEDS="" experiments/zo-sst2.sh smollm2
  INTERVAL=10 LOSS=classification STEPS=100 EVERY=25 SEEDS=0 ABLATION="" LR=1e-4 experiments/zo-sst2.sh smollm2
  # AdamW vs Lion vs QFT (issue 6); AdamW vs GaLore vs AdaRankGrad, LSP-Offload (issues 7, 8)
  experiments/sst2-smollm2.sh qft
  experiments/sst2-smollm2.sh lowrank
  experiments/sst2-smollm2.sh lsp
  # bf16 against fp32: AdamW, MeZO, QFT (issue 19)
  experiments/sst2-smollm2.sh precision
  # AdamW vs GaLore vs AdaRankGrad pre-training (issue 7 a): two queues side by side, one thread each (≈ 1 h)
  ABLATION_STEPS=500 JOBS=2 experiments/lowrank-pretrain.sh
  # Every method's step side by side (issue 9), with PyTorch beside it where torch is installed
  peer=()
  if python3 -c "import torch, transformers, galore_torch, lion_pytorch" 2>/dev/null; then peer=(--peer python3 --peer-script scripts/peer_bench.py)
  else echo "no PyTorch here (pip install torch transformers galore-torch lion-pytorch): the table gets no PyTorch column" >&2
  fi
  .build/release/leantune bench methods "${peer[@]}" --output docs/results/bench-methods
  python3 experiments/runs.py compact runs experiments/results/runs zo-sst2-stories260k \
    zo-sst2-smollm2-classification qft-sst2 lowrank-sst2 lowrank-pretrain precision-sst2
fi
python3 experiments/results_page.py experiments/results/runs docs
