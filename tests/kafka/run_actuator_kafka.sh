#!/usr/bin/env bash
# The actuator's process-level tests against a real Apache Kafka broker (KRaft, one node, jars from
# Maven Central via setup.sh): real transactions, so a killed actuator's audits stay invisible and
# are written again once. Usage: tests/kafka/run_actuator_kafka.sh [build-dir]   (default: build)
#   ACTUATOR_KAFKA_KEEP=1 keeps the temp dir (broker log).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
export KAFKA_VERSION=${KAFKA_VERSION:-3.7.2}
work=""

reap() {   # only the PIDs the driver recorded, while their command line still matches
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
  trap - EXIT
  reap
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "${ACTUATOR_KAFKA_KEEP:-0}" = 1 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT

[ -x "$build/tests/test_actuator_proc" ] || { echo "FAIL: no $build/tests/test_actuator_proc"; exit 1; }
[ -x "$build/actuator/sparkscale-actuator" ] || { echo "FAIL: no $build/actuator/sparkscale-actuator"; exit 1; }
jars=$("$here/setup.sh" | tail -1) || { echo "FAIL: tests/kafka/setup.sh could not provide Kafka"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/sparkscale-actuator-kafka.XXXXXX") || exit 1
: > "$work/pids"
timeout --kill-after=15 420 python3 -B "$here/actuator_kafka.py" --jars "$jars" --build "$build" \
  --source "$repo" --work "$work" --pidfile "$work/pids" --budget 360
