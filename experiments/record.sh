# Sourced by the experiment scripts: one training run, recorded.
#   record_run OUT NAME COMMAND...   runs COMMAND (a `leantune train` writing into OUT/NAME) with its output in
#                                    OUT/NAME.log, then adds to OUT/NAME/run.json's provenance (machine, start, end,
#                                    command line, written by train) the commit it ran at, and whether the code
#                                    differed from it.
# A run whose OUT/NAME/metrics.csv exists (written when training ends) finished before and is kept: delete its folder
# to redo it. Runs stay out of git; experiments/runs.py compact keeps what docs/results.md needs of them.
record_run() {
  local out=$1 name=$2; shift 2
  [ -f "$out/$name/metrics.csv" ] && return 0
  rm -rf "${out:?}/$name"
  "$@" > "$out/$name.log" 2>&1 || { echo "run $name failed; see $out/$name.log" >&2; exit 1; }
  local dirty=""
  # the code and the experiment settings, not the write-ups in experiments/results/
  git diff --quiet HEAD -- Sources Package.swift 'experiments/*.sh' 'experiments/*.yaml' || dirty=" (with uncommitted changes)"
  python3 - "$out/$name/run.json" "$(git rev-parse --short HEAD)$dirty" <<'PY'
import json, os, sys
path, commit = sys.argv[1], sys.argv[2]
record = json.load(open(path))
record["provenance"]["commit"] = commit
with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
os.replace(path + ".tmp", path)
PY
  grep -E "eval" "$out/$name.log" | tail -1
}
