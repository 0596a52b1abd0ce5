#!/usr/bin/env bash
# End-to-end check of sparkscaled against a real Apache Kafka broker (KRaft, one node, jars from Maven
# Central via setup.sh): auto-creation off, per-cluster order and keys, a broker outage, clean shutdown.
# Usage: tests/kafka/run_kafka_e2e.sh [build-dir]     (default: build; needs ingest/sparkscaled and tools/sparkscalectl/sparkscalectl)
#   KAFKA_E2E_TIMEOUT (default 240 s, download excluded), KAFKA_E2E_KEEP=1 keeps the temp dir (logs), KAFKA_VERSION.
# Prints one PASS/FAIL line per check and `kafka e2e: N passed, M failed`; exit 0 only if all passed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
budget=${KAFKA_E2E_TIMEOUT:-240}
export KAFKA_VERSION=${KAFKA_VERSION:-3.7.2}
work=""
driver_pid=""
t_start=$(date +%s)

finish() {   # passed failed
  echo "kafka e2e: $1 passed, $2 failed"
  [ "$2" -eq 0 ] && [ "$1" -gt 0 ]
}

give_up() {  # a failure before any check ran
  echo "FAIL setup: $*"
  finish 0 1
  exit 1
}

# Kills what the driver started and left behind: only PIDs it recorded, and only while their
# command line is still the one it started (a PID may have been reused).
reap() {
  [ -n "$work" ] && [ -f "$work/pids" ] || return 0
  local pid tag
  while read -r pid tag; do
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$tag"; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done < "$work/pids"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$driver_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$driver_pid" 2>/dev/null
  fi
  reap
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "${KAFKA_E2E_KEEP:-0}" = 1 ]; then
      echo "kafka e2e: logs kept in $work" >&2
    else
      rm -rf "$work"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "FAIL run: interrupted"; exit 130' INT
trap 'echo "FAIL run: terminated"; exit 143' TERM

bin="$build/ingest/sparkscaled"
ctl="$build/tools/sparkscalectl/sparkscalectl"
[ -x "$bin" ] || give_up "sparkscaled not found at $bin (cmake --build $build --target sparkscaled sparkscalectl)"
[ -x "$ctl" ] || give_up "sparkscalectl not found at $ctl (cmake --build $build --target sparkscalectl)"
command -v python3 >/dev/null 2>&1 || give_up "python3 not found"

# 1. Kafka's jars (a cache dir outside the repo; the first time, Maven Central).
jars=$("$here/setup.sh" | tail -1) || give_up "tests/kafka/setup.sh could not provide Kafka $KAFKA_VERSION (see above)"
[ -s "$jars/kafka_2.13-$KAFKA_VERSION.jar" ] || give_up "no kafka_2.13-$KAFKA_VERSION.jar in '$jars'"
t_ready=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/sparkscale-kafka-e2e.XXXXXX") || give_up "mktemp failed"
: > "$work/pids"
: > "$work/results"
echo "kafka e2e: Kafka $KAFKA_VERSION from $jars; sparkscaled $bin; work $work; budget ${budget} s"

# 2. The checks. The driver keeps its own budget; timeout(1) is the backstop for a hung JVM or socket.
timeout --kill-after=15 $((budget + 60)) python3 -B "$here/e2e.py" \
  --jars "$jars" --kafka-version "$KAFKA_VERSION" --sparkscaled "$bin" --ctl "$ctl" \
  --work "$work" --pidfile "$work/pids" --budget "$budget" &
driver_pid=$!
wait "$driver_pid"; drc=$?
driver_pid=""
reap

passed=$(grep -c '^PASS ' "$work/results")
failed=$(grep -c '^FAIL ' "$work/results")
if ! grep -q '^done ' "$work/results"; then
  echo "FAIL run: the driver ended before finishing its checks (exit $drc$([ "$drc" = 124 ] && echo ': timed out'))"
  failed=$((failed + 1))
elif [ "$drc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "FAIL run: the driver exited $drc with no failed check"
  failed=$((failed + 1))
fi
t_end=$(date +%s)
echo "kafka e2e: $((t_end - t_ready)) s for the checks, $((t_ready - t_start)) s for setup"
finish "$passed" "$failed"
