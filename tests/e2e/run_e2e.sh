#!/usr/bin/env bash
# Real Spark elasticity end to end (issue 13): tests/e2e/e2e.py with a real Spark standalone
# master, workers started and stopped only by sparkscale-actuator's exec backend
# (deploy/exec/spark-workers), sparkscaled fed by the drivers' GraphiteSink and the master poller,
# the embedded Kafka; the same bursty workload on the elastic cluster (idle_mode need, then busy)
# and on a static cluster sized for the peak. Prints one table and the bars; exit 0 only on PASS.
# Usage: tests/e2e/run_e2e.sh [build-dir]
#   SS_E2E_SCALE=F     stretch the workload by F (default 1: about 6-7 minutes for the 3 runs)
#   SS_E2E_RUNS=LIST   runs to make, default need,busy,static
#   SS_E2E_NO_BARS=1   report the bars without failing on them
#   SS_E2E_KEEP_RECORDING=FILE  copy the need run's demand recording (ingest.record) there
# Everything it started is stopped on exit (Spark JVMs included); logs: tests/e2e/work/.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build/ci}" 2>/dev/null && pwd) || { echo "e2e: FAIL: no build directory ${1:-$repo/build/ci}"; exit 1; }
work="$here/work"
py="$repo/tests/spark/.venv/bin/python"
e2e_pid=""
t_start=$SECONDS

say() { echo "e2e: $*"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$e2e_pid" ] && kill -0 "$e2e_pid" 2>/dev/null; then
    kill -TERM "$e2e_pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$e2e_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$e2e_pid" 2>/dev/null
  fi
  # Whatever e2e.py could not stop itself: its process groups, then every worker of every run.
  if [ -f "$work/pgids" ]; then
    while read -r g; do kill -KILL -- "-$g" 2>/dev/null; done <"$work/pgids"
  fi
  for conf in "$work"/*/spark-workers.conf; do
    [ -f "$conf" ] && "$repo/deploy/exec/spark-workers" --conf "$conf" stop-all >/dev/null 2>&1
  done
  say "stage wall time $((SECONDS - t_start)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "FAIL: interrupted"; exit 130' INT
trap 'say "FAIL: terminated"; exit 143' TERM

for b in ingest/sparkscaled actuator/sparkscale-actuator tools/sparkscalectl/sparkscalectl; do
  [ -x "$build/$b" ] || { say "FAIL: $build/$b is missing (build first)"; exit 1; }
done
command -v flock >/dev/null && command -v setsid >/dev/null || { say "FAIL: flock and setsid (util-linux) are needed"; exit 1; }
if ! "$repo/tests/spark/setup.sh" >/dev/null; then
  say "FAIL: could not install pyspark (tests/spark/setup.sh: no Java, or no access to PyPI?)"
  exit 1
fi

rm -rf "$work" && mkdir -p "$work" || { say "FAIL: cannot create $work"; exit 1; }
"$py" "$here/e2e.py" --build "$build" --work "$work" --pgid-file "$work/pgids" \
  --runs "${SS_E2E_RUNS:-need,busy,static}" --scale "${SS_E2E_SCALE:-1}" \
  ${SS_E2E_NO_BARS:+--no-bars} ${SS_E2E_KEEP_RECORDING:+--keep-recording "$SS_E2E_KEEP_RECORDING"} \
  2>"$work/e2e.log" &
e2e_pid=$!
wait "$e2e_pid"; rc=$?
e2e_pid=""
if [ "$rc" -ne 0 ]; then
  tail -15 "$work/e2e.log" >&2
fi

# No orphan: every process this stage started runs from, or names, its work directory (workers,
# executors and their Python workers have their work dir as cwd). e2e.py has stopped all it
# started; anything left is a leak of the exec script or of Spark, and fails the stage.
left=()
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = $$ ] && continue
  cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
  cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
  [[ $cwd == "$work" || $cwd == "$work/"* || $cmd == *"$work/"* ]] && left+=("$p")
done
if [ ${#left[@]} -gt 0 ]; then
  say "FAIL: ${#left[@]} process(es) left behind: $(ps -o pid=,args= -p "$(IFS=,; echo "${left[*]}")" | cut -c1-160 | tr '\n' ';')"
  kill -KILL "${left[@]}" 2>/dev/null
  rc=1
else
  say "no process left behind"
fi
exit "$rc"
