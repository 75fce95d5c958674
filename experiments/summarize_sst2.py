#!/usr/bin/env python3
"""Summarises experiments/sst2-smollm2.sh runs: training loss, dev accuracy, memory and time per step, side by side.

usage: summarize_sst2.py OUT    markdown summary on stdout
"""
import os, statistics, sys

import runs

RUNS = ["adamw", "adamw-fused", "lion", "qft", "qft-stack", "qft-fp32-embedding", "galore", "adarankgrad"]
RUNS += [f"lsp-d{d}-r{r}" for d in (256, 512) for r in (4, 8)]
RUNS += [f"{m}-{p}{s}" for s in ("", "-seed1", "-seed2") for m in ("adamw", "mezo", "qft") for p in ("fp32", "bf16")]  # the precision suite

def load(out, name):
    run = runs.load(os.path.join(out, name))
    return run["steps"], run["accuracy"], run["memory"]

def main():
    out = sys.argv[1]
    names = [n for n in RUNS if n in runs.finished(out)]
    data = {n: load(out, n) for n in names}
    print(f"# Gradient methods on SST-2 with SmolLM2-135M ({out})\n")
    print("Training loss is the gold label word's loss; 'final' is the mean over the last 20 steps (one step's batch is 16 sentences).\n")
    if not names:
        sys.exit(f"summarize_sst2.py: no finished runs in {out}")
    reference = "lion" if "lion" in data else names[0]
    final = lambda n: statistics.mean(r["loss"] for r in data[n][0][-20:])
    # A bf16 run is compared with the fp32 run of the same method, any other with the suite's reference.
    against = lambda n: n.replace("-bf16", "-fp32") if "-bf16" in n and n.replace("-bf16", "-fp32") in data else reference
    print(f"| run | final training loss | vs {reference} (bf16 runs: vs their fp32 run) | dev accuracy by eval step | ledger peak (GiB) | process peak RSS (GiB) | seconds per step (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in names:
        steps, evals, memory = data[n]
        loss, base = final(n), final(against(n))
        versus = f"{100 * (loss - base) / base:+.1f}%"
        accuracy = ", ".join(f"{s}: {a:.3f}" for s, a in sorted(evals.items()))
        seconds = statistics.median(r["seconds"] for r in steps)
        ledger, rss = (f"{memory['ledger_peak_gib']:.2f}", f"{memory['rss_gib']:.2f}") if memory else ("–", "–")
        print(f"| {n} | {loss:.4f} | {versus} | {accuracy} | {ledger} | {rss} | {seconds:.2f} |")
    print("\n## Training loss every 10 steps (mean of the 10 steps up to it)\n")
    print("| step | " + " | ".join(names) + " |\n| --- |" + " --- |" * len(names))
    longest = max(len(data[n][0]) for n in names)
    for end in range(10, longest + 1, 10):
        cells = []
        for n in names:
            window = [r["loss"] for r in data[n][0] if end - 10 < r["step"] <= end]
            cells.append(f"{statistics.mean(window):.4f}" if window else "")
        print(f"| {end} | " + " | ".join(cells) + " |")
    lowrank = [n for n in names if n in ("galore", "adarankgrad")]
    if lowrank:
        print("\n## Low-rank runs: optimizer state and ranks\n")
        print("| run | optimizer state, mean over steps (MiB) | mean rank at steps 1, 25, 50, 75, last | refreshes | decomposition seconds |")
        print("| --- | --- | --- | --- | --- |")
        for n in lowrank:
            steps = data[n][0]
            ranks = [steps[min(len(steps) - 1, i)]["mean_rank"] for i in (0, 24, 49, 74, len(steps) - 1)]
            print(f"| {n} | {statistics.mean(r['state_bytes'] for r in steps) / 2**20:.1f} | " + " → ".join(f"{r:.1f}" for r in ranks)
                  + f" | {steps[-1]['refreshes']:.0f} | {steps[-1]['svd_seconds']:.1f} |")
    lsp = [n for n in names if n.startswith("lsp")]
    if lsp:
        print("\n## LSP-Offload: projector reconstruction error on held-out gradients, and the host\n")
        print("At each check the projectors' mean relative error ‖P·Pᵀ·G·Q·Qᵀ − G‖/‖G‖ over the matrices is measured on the gradients of two "
              "held-out batches (the random initial projectors at the first check); at or above α = 0.5 the values are fitted on those "
              "gradients and the error after the fit is given. A later check measures the fitted projectors on new held-out batches.\n")
        print("| run | error by check step: before fit → after | compute side s/step | host Adam s/step | waiting for the host s/step |")
        print("| --- | --- | --- | --- | --- |")
        for n in lsp:
            steps = data[n][0]
            checks = ", ".join(f"{r['step']}: {r['projector_error']:.3f}" + (f" → {r['projector_error_after_fit']:.3f}" if "projector_error_after_fit" in r else " (kept)")
                               for r in steps if "projector_error" in r)
            mean = lambda k: statistics.mean(r[k] for r in steps if k in r)
            print(f"| {n} | {checks or '–'} | {mean('compute_seconds'):.2f} | {mean('host_seconds'):.3f} | {mean('host_wait_seconds'):.4f} |")

if __name__ == "__main__":
    main()
