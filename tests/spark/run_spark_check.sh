#!/usr/bin/env bash
# The real-Spark check: a Spark standalone Master + Worker and a dynamic-allocation job send their
# GraphiteSink metrics to sparkscaled; asserts /v1/clusters shows the app's demand and the master.
# sparkscaled also polls the master's /json/ (busy and idle workers as the job runs and ends) and
# the real Jolokia JVM agent on the driver (tests/spark/jolokia_setup.sh) into a second cluster,
# whose gauges must match the same driver's GraphiteSink ones.
# Usage: tests/spark/run_spark_check.sh [path/to/sparkscaled]   (or env SPARKSCALED)
#   SPARK_CHECK_ALL_INSTANCES=1: every Spark instance sends everything (executors, no regex).
# Exit 0 only on PASS; everything it started is stopped on exit; bounded to ~4 minutes.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-${SPARKSCALED:-$repo/build/ingest/sparkscaled}}
budget=${SPARK_CHECK_TIMEOUT:-240}   # seconds for the whole check, install excluded
work="$here/work/check"
daemon_pid=""
check_pid=""

say() { echo "spark check: $*"; }
fail() { say "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$check_pid" ] && kill -0 "$check_pid" 2>/dev/null; then
    kill -TERM "$check_pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$check_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$check_pid" 2>/dev/null
  fi
  # Spark's process groups, in case check.py could not stop them itself.
  if [ -f "$work/pgids" ]; then
    while read -r g; do kill -KILL -- "-$g" 2>/dev/null; done < "$work/pgids"
  fi
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$daemon_pid" 2>/dev/null; then
      say "sparkscaled did not exit within 5 s of SIGTERM; killing it"
      kill -KILL "$daemon_pid" 2>/dev/null
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "FAIL: interrupted"; exit 130' INT
trap 'say "FAIL: terminated"; exit 143' TERM

[ -x "$bin" ] || fail "sparkscaled not found or not executable at '$bin' (build it, or pass its path)"

# 1. PySpark (Spark jars + bin/spark-class) in tests/spark/.venv.
if ! "$here/setup.sh" > /dev/null; then
  fail "could not install pyspark (tests/spark/setup.sh failed: no Java, or no access to PyPI?)"
fi
py="$here/.venv/bin/python"
if ! jar=$("$here/jolokia_setup.sh" | tail -1) || [ ! -s "$jar" ]; then
  fail "could not fetch the Jolokia JVM agent (tests/spark/jolokia_setup.sh failed: no Maven or no access to Maven Central?)"
fi

rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"

# 2. Free loopback ports and a config with one cluster whose prefix the sink uses.
read -r carbon_tcp carbon_udp http master_ui jolokia < <("$py" -c '
import sys; sys.dont_write_bytecode = True; sys.path.insert(0, sys.argv[1]); import sparklib
print(*sparklib.free_ports(5))' "$here") || fail "cannot pick free ports"
# sparkcheck: the GraphiteSink's cluster, whose master is polled too; sparkjolo: the same driver
# through its Jolokia agent (and the same master), no carbon.
cat > "$work/sparkscaled.yaml" <<EOF
ingest:
  carbon_tcp: "127.0.0.1:$carbon_tcp"
  carbon_udp: "127.0.0.1:$carbon_udp"
  http: "127.0.0.1:$http"
kafka:
  brokers: embedded
poll:
  interval_s: 1
clusters:
  - name: sparkcheck
    metrics_prefix: sparkcheck
    spark_master: "http://127.0.0.1:$master_ui"
    worker: { cores: 2, memory_mb: 2048 }
    executor: { cores: 1, memory_mb: 512 }
  - name: sparkjolo
    spark_master: "http://127.0.0.1:$master_ui"
    jolokia: "http://127.0.0.1:$jolokia/jolokia/"
    worker: { cores: 2, memory_mb: 2048 }
    executor: { cores: 1, memory_mb: 512 }
EOF

if ! "$bin" --config "$work/sparkscaled.yaml" --check-config > "$work/check-config.out" 2>&1; then
  cat "$work/check-config.out"
  fail "sparkscaled --check-config rejected $work/sparkscaled.yaml"
fi

# 3. sparkscaled.
"$bin" --config "$work/sparkscaled.yaml" > "$work/sparkscaled.log" 2>&1 &
daemon_pid=$!
say "sparkscaled pid $daemon_pid: carbon tcp 127.0.0.1:$carbon_tcp, http 127.0.0.1:$http, log $work/sparkscaled.log"
up=""
for _ in $(seq 1 40); do
  kill -0 "$daemon_pid" 2>/dev/null || { tail -20 "$work/sparkscaled.log"; fail "sparkscaled exited at start"; }
  if "$py" -c 'import sys, urllib.request; urllib.request.urlopen("http://127.0.0.1:%s/healthz" % sys.argv[1], timeout=1)' "$http" 2>/dev/null; then
    up=1; break
  fi
  sleep 0.25
done
[ -n "$up" ] || { tail -20 "$work/sparkscaled.log"; fail "sparkscaled's /healthz did not answer within 10 s"; }

# 4. Spark into sparkscaled; check.py asserts and prints PASS/FAIL. It gets the budget minus a
#    margin for its own cleanup; timeout(1) is the backstop.
"$py" "$here/check.py" --http "127.0.0.1:$http" --carbon-port "$carbon_tcp" \
  --cluster sparkcheck --prefix sparkcheck --timeout $((budget - 30)) \
  --work "$work" --pgid-file "$work/pgids" ${SPARK_CHECK_ALL_INSTANCES:+--all-instances} \
  --master-ui "$master_ui" --jolokia-jar "$jar" --jolokia-port "$jolokia" --jolokia-cluster sparkjolo \
  > "$work/check.out" 2>"$work/check.err" &
check_pid=$!
# Wait for check.py, no longer than the budget; wait is interrupted by the TERM/INT traps.
waited=0
while kill -0 "$check_pid" 2>/dev/null && [ "$waited" -lt "$((budget * 2))" ]; do
  sleep 0.5; waited=$((waited + 1))
  kill -0 "$daemon_pid" 2>/dev/null || break
done
if kill -0 "$check_pid" 2>/dev/null; then
  kill -0 "$daemon_pid" 2>/dev/null && why="the check did not finish within ${budget} s" \
                                    || why="sparkscaled died during the check (see $work/sparkscaled.log)"
  kill -TERM "$check_pid" 2>/dev/null
  wait "$check_pid" 2>/dev/null
  check_pid=""
  tail -5 "$work/check.err" >&2
  cat "$work/check.out"
  fail "$why"
fi
wait "$check_pid"; rc=$?
check_pid=""
cat "$work/check.out"
if ! kill -0 "$daemon_pid" 2>/dev/null; then
  tail -20 "$work/sparkscaled.log"
  fail "sparkscaled is no longer running after the check"
fi
if [ "$rc" -ne 0 ]; then
  say "logs: $work/check.err, $work/sparkscaled.log, $work/spark/*.log"
  tail -15 "$work/check.err" >&2
  grep -q '^spark check: FAIL' "$work/check.out" || fail "check.py exited $rc"
  exit 1
fi
exit 0
