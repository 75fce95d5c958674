#!/usr/bin/env python3
"""Summarises experiments/lowrank-pretrain.sh runs: perplexity against steps, optimizer-state bytes, ranks, SVD time.

usage: summarize_lowrank.py OUT    markdown summary on stdout
"""
import json, math, os, statistics, sys

def load(path):
    rows = [json.loads(line) for line in open(os.path.join(path, "metrics.jsonl"))]
    steps = [r for r in rows if r.get("loss") is not None]
    evals = {r["step"]: math.exp(r["eval_loss"]) for r in rows if r.get("eval_loss") is not None}
    return steps, evals

def main():
    out = sys.argv[1]
    names = sorted(d for d in os.listdir(out) if os.path.isfile(os.path.join(out, d, "metrics.csv")))
    names.sort(key=lambda n: (not n.startswith("adamw"), not n.startswith("galore"), n))
    print(f"# AdamW vs GaLore vs AdaRankGrad, pre-training from scratch ({out})\n")
    print("| run | final eval perplexity | best | optimizer state, mean over steps (MiB) | mean rank first → last | SVD seconds | seconds per step (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    data = {n: load(os.path.join(out, n)) for n in names}
    for n in names:
        steps, evals = data[n]
        state = [r["state_bytes"] for r in steps if "state_bytes" in r]
        ranks = [r["mean_rank"] for r in steps if "mean_rank" in r]
        svd = steps[-1].get("svd_seconds")
        print(f"| {n} | {evals[max(evals)]:.2f} | {min(evals.values()):.2f} | "
              + (f"{statistics.mean(state) / 2**20:.2f}" if state else "AdamW: 8 B per parameter") + " | "
              + (f"{ranks[0]:.1f} → {ranks[-1]:.1f}" if ranks else "–") + " | "
              + (f"{svd:.1f}" if svd is not None else "–") + f" | {statistics.median(r['seconds'] for r in steps):.3f} |")
    print("\n## Eval perplexity by step\n")
    points = sorted({s for n in names for s in data[n][1]})
    print("| step | " + " | ".join(names) + " |\n| --- |" + " --- |" * len(names))
    for s in points:
        print(f"| {s} | " + " | ".join(f"{data[n][1][s]:.2f}" if s in data[n][1] else "" for n in names) + " |")
    ada = [n for n in names if n.startswith("adarankgrad")]
    if ada:
        print("\n## AdaRankGrad's mean rank over training (every 10% of the steps)\n")
        print("| run | " + " | ".join(f"{10 * k}%" for k in range(1, 11)) + " |\n| --- |" + " --- |" * 10)
        for n in ada:
            ranks = [r["mean_rank"] for r in data[n][0] if "mean_rank" in r]
            print(f"| {n} | " + " | ".join(f"{ranks[min(len(ranks) - 1, len(ranks) * k // 10)]:.1f}" for k in range(1, 11)) + " |")

main()
