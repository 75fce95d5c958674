# Sourced by the experiment scripts: one training run, recorded.
#   record_run OUT NAME COMMAND...   runs COMMAND (a `leantune train` writing into OUT/NAME) with its output in
#                                    OUT/NAME.log, then writes OUT/NAME/provenance.txt: the commit it ran at (and
#                                    whether the code differed from it), the machine, when it started and finished.
# A run whose OUT/NAME/metrics.csv exists (written when training ends) finished before and is kept: delete its folder
# to redo it. The runs' small files are committed (see .gitignore), so a rerun can go on from where another machine
# stopped.
record_run() {
  local out=$1 name=$2; shift 2
  [ -f "$out/$name/metrics.csv" ] && return 0
  rm -rf "${out:?}/$name"
  local started; started=$(date -u +%FT%TZ)
  "$@" > "$out/$name.log" 2>&1 || { echo "run $name failed; see $out/$name.log" >&2; exit 1; }
  local dirty=""
  # the code and the experiment settings, not the write-ups in experiments/results/
  git diff --quiet HEAD -- Sources Package.swift 'experiments/*.sh' 'experiments/*.yaml' || dirty=" (with uncommitted changes)"
  {
    echo "commit: $(git rev-parse --short HEAD)$dirty"
    echo "machine: $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "started: $started"
    echo "finished: $(date -u +%FT%TZ)"
  } > "$out/$name/provenance.txt"
  grep -E "eval" "$out/$name.log" | tail -1
}
