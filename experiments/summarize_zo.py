#!/usr/bin/env python3
"""Summarises experiments/zo-sst2.sh runs: accuracy against steps and wall time, MeZO vs DiZO.

usage: summarize_zo.py OUT            markdown summary on stdout
       summarize_zo.py OUT --best-lr  the grid run's learning rate with the best final dev accuracy
"""
import os, statistics, sys

import runs

def load(path):
    run = runs.load(path)
    evals, seconds = run["accuracy"], {r["step"]: r["seconds"] for r in run["steps"]}
    elapsed, total = {0: 0.0}, 0.0
    for step in sorted(seconds):
        total += seconds[step]
        elapsed[step] = total
    return evals, elapsed, seconds

def named(out, prefix):
    return [d for d in runs.finished(out) if d.startswith(prefix)]

def final(evals):
    return evals[max(evals)]

def main():
    out = sys.argv[1]
    if "--best-lr" in sys.argv:
        grid = {d.split("lr", 1)[1]: final(load(os.path.join(out, d))[0]) for d in named(out, "grid-mezo-")}
        print(max(grid, key=lambda lr: (grid[lr], -float(lr))))
        return
    print(f"# MeZO vs DiZO on SST-2 ({out})\n")
    if named(out, "grid-mezo-"):
        print("## Learning-rate grid (MeZO, seed 0, 500 dev sentences)\n\n| lr | zero-shot | final dev accuracy | best |\n| --- | --- | --- | --- |")
    for d in named(out, "grid-mezo-"):
        e, _, _ = load(os.path.join(out, d))
        print(f"| {d.split('lr', 1)[1]} | {e[0]:.4f} | {final(e):.4f} | {max(e.values()):.4f} |")
    print()
    groups = {}
    for d in named(out, "mezo-seed") + named(out, "dizo-"):
        groups.setdefault(d.rsplit("-seed", 1)[0], []).append(d)
    print("## Test accuracy (872 sentences of test.tsv)\n\n| run | seeds | zero-shot | final accuracy (mean ± std) | seconds per step (mean) |\n| --- | --- | --- | --- | --- |")
    finals, per_step = {}, {}
    for name, ds in groups.items():
        loaded = [load(os.path.join(out, d)) for d in ds]
        accs = [final(e) for e, _, _ in loaded]
        steps = [statistics.mean(s.values()) for _, _, s in loaded]
        finals[name], per_step[name] = statistics.mean(accs), statistics.mean(steps)
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {name} | {len(ds)} | {loaded[0][0][0]:.4f} | {finals[name]:.4f} ± {std:.4f} | {per_step[name]:.3f} |")
    if "mezo" in finals:
        target = finals["mezo"]
        print(f"\n## Steps to reach MeZO's final mean accuracy ({target:.4f})\n\n| run | seed | first eval step at or above | fraction of MeZO's steps | time per step vs MeZO |\n| --- | --- | --- | --- | --- |")
        for name, ds in groups.items():
            for d in ds:
                e, _, _ = load(os.path.join(out, d))
                hit = next((s for s in sorted(e) if e[s] >= target), None)
                frac = f"{hit / max(e):.2f}" if hit is not None else "not reached"
                print(f"| {name} | {d.rsplit('seed', 1)[1]} | {hit if hit is not None else '—'} | {frac} | {per_step[name] / per_step['mezo']:.3f} |")
    print("\n## Accuracy against steps and wall time (seed of each run in its name)\n")
    for name, ds in groups.items():
        for d in ds:
            e, elapsed, _ = load(os.path.join(out, d))
            print(f"- {d}: " + ", ".join(f"{s} ({elapsed.get(s, 0):.0f} s): {e[s]:.3f}" for s in sorted(e)))

main()
