#!/usr/bin/env bash
# The main job: builds sparkscale, runs sparkscaled on its embedded defaults
# (carbon on 127.0.0.1:2003, status on http://127.0.0.1:9090, an embedded
# Kafka broker) and plays a Spark cluster whose demand rises and falls, so
# you see the worker count follow it; then prints the decisions from Kafka.
# Usage: scripts/demo.sh [seconds]        (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-100}

scripts/install-deps.sh build
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/demo -j"${SS_JOBS:-2}" >/dev/null
bin=build/demo

log=$(mktemp /tmp/sparkscaled.XXXXXX.log)
"$bin/ingest/sparkscaled" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -sf http://127.0.0.1:9090/healthz >/dev/null 2>&1 && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "sparkscaled did not start:"; cat "$log"; exit 1
  fi
  sleep 0.1
done
echo "sparkscaled is up (pid $pid, log $log); status: http://127.0.0.1:9090/v1/clusters"
echo
python3 scripts/demo_driver.py --seconds "$seconds"

brokers=$(curl -sf http://127.0.0.1:9090/v1/kafka | python3 -c 'import json,sys; print(json.load(sys.stdin)["brokers"])')
echo
echo "Decisions as Kafka holds them (sparkscalectl audit --brokers $brokers):"
"$bin/tools/sparkscalectl/sparkscalectl" audit --brokers "$brokers" | tail -n 20
echo
curl -s http://127.0.0.1:9090/metrics | grep -E '^sparkscale_(carbon_lines_total|decisions_published_total|cluster_workers)' || true
