#!/usr/bin/env python3
"""Summarises experiments/lowrank-pretrain.sh runs: perplexity against steps, optimizer-state bytes, ranks, SVD time.

usage: summarize_lowrank.py OUT    markdown summary on stdout
"""
import math, os, statistics, sys

import runs

# llama-9m-tok512: embedding and head 512×128 each, per layer q, k, v, o 128×128, gate, up, down 128×352 and two norms
# of 128, a final norm. AdamW keeps two fp32 moments of each.
PARAMETERS = 2 * 512 * 128 + 4 * (4 * 128 * 128 + 3 * 128 * 352 + 2 * 128) + 128

def load(path):
    run = runs.load(path)
    return run["steps"], {s: math.exp(l) for s, l in run["eval_loss"].items()}

def row(n, steps, evals):
    state = [r["state_bytes"] for r in steps if "state_bytes" in r]
    ranks = [r["mean_rank"] for r in steps if "mean_rank" in r]
    svd = steps[-1].get("svd_seconds")
    refreshes = steps[-1].get("refreshes")
    return (f"| {n} | {evals[max(evals)]:.2f} | {min(evals.values()):.2f} | "
            + f"{(statistics.mean(state) if state else 8 * PARAMETERS) / 2**20:.2f}" + " | "
            + (f"{ranks[0]:.1f} → {ranks[-1]:.1f}" if ranks else "–") + " | "
            + (f"{refreshes:.0f} / {svd:.1f}" if svd is not None else "–") + f" | {statistics.median(r['seconds'] for r in steps):.3f} |")

HEADER = ("| run | final eval perplexity | best | optimizer state, mean over steps (MiB) | mean rank first → last | refreshes / decomposition seconds | seconds per step (median) |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")

def main():
    out = sys.argv[1]
    names = runs.finished(out)
    main_runs = [n for n in ("adamw", "galore", "adarankgrad", "adarankgrad-capture-0.7") if n in names]
    ablation = sorted((n for n in names if n.startswith("ablation-")), key=lambda n: (n != "ablation-default", n))
    data = {n: load(os.path.join(out, n)) for n in names}
    print(f"# AdamW vs GaLore vs AdaRankGrad, pre-training from scratch ({out})\n")
    print(HEADER)
    for n in main_runs:
        print(row(n, *data[n]))
    print("\n## Eval perplexity by step\n")
    points = sorted({s for n in main_runs for s in data[n][1]})
    print("| step | " + " | ".join(main_runs) + " |\n| --- |" + " --- |" * len(main_runs))
    for s in points:
        print(f"| {s} | " + " | ".join(f"{data[n][1][s]:.2f}" if s in data[n][1] else "" for n in main_runs) + " |")
    ada = [n for n in main_runs + ablation if n == "adarankgrad" or n.startswith("ablation-")]
    if ablation:
        print("\n## AdaRankGrad's ablation (each setting alone changed from the defaults; shorter runs with their own schedule)\n")
        print(HEADER)
        for n in ablation:
            print(row(n, *data[n]))
    if ada:
        print("\n## AdaRankGrad's mean rank over training (every 10% of the steps)\n")
        print("| run | " + " | ".join(f"{10 * k}%" for k in range(1, 11)) + " |\n| --- |" + " --- |" * 10)
        for n in ada:
            ranks = [r["mean_rank"] for r in data[n][0] if "mean_rank" in r]
            print(f"| {n} | " + " | ".join(f"{ranks[min(len(ranks) - 1, len(ranks) * k // 10)]:.1f}" for k in range(1, 11)) + " |")

main()
