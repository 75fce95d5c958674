#!/usr/bin/env python3
"""The one reader of LeanTune's run records, for every experiment script, and the compact summaries that stay in
the repository (the runs themselves stay on the machine that made them).

A run folder (OUTPUT of `leantune train`) holds metrics.jsonl (a line per step and per evaluation), metrics.csv
when it finished, and run.json (method, steps, outcome, the memory report, provenance; experiments/record.sh adds the
commit). Runs recorded before run.json existed keep their memory line in OUT/NAME.log and their provenance in
provenance.txt; `load` reads those too.

usage: runs.py compact RUNS_ROOT OUT FOLDER...   one summary per finished run of each FOLDER, OUT/FOLDER/NAME.json
                                                 (what docs/results.md needs: the steps' loss curve, evaluations,
                                                 time, memory, provenance), and the folder's summary.md
"""
import json, math, os, re, shutil, statistics, sys

# The training log's memory line in runs recorded before run.json: plan, ledger peak, process peak RSS (GiB).
LEGACY_MEMORY = re.compile(r"plan ([\d.]+) GiB, ledger peak ([\d.]+) GiB \([^)]*\), process peak RSS ([\d.]+) GiB")


def finished(folder):
    """The names of the finished runs in `folder` (those with a metrics.csv), sorted."""
    if not os.path.isdir(folder):
        return []
    return sorted(d for d in os.listdir(folder) if os.path.isfile(os.path.join(folder, d, "metrics.csv")))


def load(path):
    """One run: its metrics rows, step rows, evaluations by step, memory (GiB) and provenance; None when not run."""
    metrics = os.path.join(path, "metrics.jsonl")
    if not os.path.isfile(metrics):
        return None
    rows = [json.loads(line) for line in open(metrics)]
    record_path = os.path.join(path, "run.json")
    record = json.load(open(record_path)) if os.path.isfile(record_path) else {}
    memory, provenance = None, record.get("provenance", {})
    if record.get("memory"):
        m = record["memory"]
        memory = {"plan_gib": m["planned_bytes"] / 2**30, "ledger_peak_gib": m["ledger_peak_bytes"] / 2**30,
                  "rss_gib": m["resident_peak_bytes"] / 2**30}
    else:
        log = path.rstrip("/") + ".log"
        found = LEGACY_MEMORY.search(open(log).read()) if os.path.isfile(log) else None
        if found:
            memory = {"plan_gib": float(found.group(1)), "ledger_peak_gib": float(found.group(2)),
                      "rss_gib": float(found.group(3))}
        legacy = os.path.join(path, "provenance.txt")
        if os.path.isfile(legacy):
            provenance = dict(line.rstrip("\n").split(": ", 1) for line in open(legacy) if ": " in line)
    return {
        "rows": rows,
        "steps": [r for r in rows if r.get("loss") is not None],
        "accuracy": {r["step"]: r["eval_accuracy"] for r in rows if r.get("eval_accuracy") is not None},
        "eval_loss": {r["step"]: r["eval_loss"] for r in rows
                      if r.get("eval_loss") is not None and r.get("loss") is None},
        "memory": memory,
        "provenance": provenance,
    }


def summary(run):
    """What the results page needs of a run: counts, final loss, times, memory, evaluations and a loss curve."""
    steps = run["steps"]
    evals = run["accuracy"] or {s: math.exp(min(l, 700)) for s, l in run["eval_loss"].items()}  # else perplexity
    out = {"steps": len(steps), "final_loss": statistics.mean(r["loss"] for r in steps[-20:]),
           "seconds_per_step": statistics.median(r["seconds"] for r in steps),
           "training_seconds": sum(r["seconds"] for r in steps),
           "ledger_peak_gib": run["memory"]["ledger_peak_gib"] if run["memory"] else None,
           "rss_gib": run["memory"]["rss_gib"] if run["memory"] else None,
           "evals": [[s, evals[s]] for s in sorted(evals)], "curve": [], "provenance": run["provenance"]}
    window = max(1, len(steps) // 50)  # about 50 points per curve: the mean loss of each window, at its last step
    elapsed = 0.0
    for i in range(0, len(steps) - window + 1, window):
        chunk = steps[i:i + window]
        elapsed += sum(r["seconds"] for r in chunk)
        out["curve"].append([chunk[-1]["step"], statistics.mean(r["loss"] for r in chunk), elapsed])
    return out


def compact(root, out, folders):
    """Writes OUT/FOLDER/NAME.json for every finished run under ROOT/FOLDER/NAME, for each of `folders`."""
    count = 0
    for folder in folders:
        for name in finished(os.path.join(root, folder)):
            os.makedirs(os.path.join(out, folder), exist_ok=True)
            with open(os.path.join(out, folder, name + ".json"), "w") as f:
                json.dump(summary(load(os.path.join(root, folder, name))), f, indent=1)
                f.write("\n")
            count += 1
        notes = os.path.join(root, folder, "summary.md")  # the experiment script's own summary, when it wrote one
        if os.path.isfile(notes):
            shutil.copyfile(notes, os.path.join(out, folder, "summary.md"))
    print(f"wrote {count} run summaries under {out}")


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] != "compact":
        sys.exit(__doc__)
    compact(sys.argv[2], sys.argv[3], sys.argv[4:])
