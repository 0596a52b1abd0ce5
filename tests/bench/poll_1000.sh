#!/usr/bin/env bash
# What does polling 1,000 Spark masters every 5 s cost? Two sparkscaled
# processes with the same 1,000 clusters run side by side for DURATION
# seconds; in one of them every cluster has a spark_master, served by a local
# server (bench_http_fixture) with the recorded answer of a real Spark master
# (tests/fixtures/spark_master/app_running.json). Prints each daemon's CPU
# (utime+stime from /proc/PID/stat) as % of one core over the same window,
# the difference (the cost of polling), and the requests made, for two
# server layouts: one port for every master (connections reused) and one
# port per master (1,000 hosts: more connections than the client keeps).
# Usage: tests/bench/poll_1000.sh [BUILD_DIR] (env: CLUSTERS, DURATION, RUNS, LAYOUTS)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
build=${1:-build/bench}
clusters=${CLUSTERS:-1000}
duration=${DURATION:-60}
runs=${RUNS:-3}
layouts=${LAYOUTS:-"1 $clusters"}

if [ ! -x "$build/ingest/sparkscaled" ] || [ ! -x "$build/tests/bench/bench_http_fixture" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target sparkscaled bench_http_fixture >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

hz=$(getconf CLK_TCK)

write_config() {  # write_config FILE HTTP_PORT POLL(0|1) PORTS_FILE
  {
    cat <<YAML
ingest: { carbon_tcp: "127.0.0.1:0", carbon_udp: "off", http: "127.0.0.1:$2" }
kafka: { brokers: embedded }
poll: { interval_s: 5 }
clusters:
YAML
    mapfile -t ports < <(awk '{print $1}' "$4")
    for i in $(seq 0 $((clusters - 1))); do
      echo "  - name: c$i"
      [ "$3" = 1 ] && echo "    spark_master: \"http://127.0.0.1:${ports[$((i % ${#ports[@]}))]}\""
      echo "    worker: { cores: 2, memory_mb: 1024 }"
      echo "    executor: { cores: 2, memory_mb: 512 }"
    done
  } >"$1"
}

start_daemon() {  # start_daemon CONFIG HTTP_PORT -> pid
  "$build/ingest/sparkscaled" --config "$1" --log-level warn >"$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$pid"
}

ok_requests() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '$1=="sparkscale_poll_requests_total{source=\"master\",result=\"ok\"}"{print $2}'
}
failed_requests() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^sparkscale_poll_requests_total\{source="master"/ && !/result="ok"/ {s += $2} END {print s + 0}'
}

echo "$clusters clusters, each master polled every 5 s; CPU over ${duration} s windows, $runs runs per layout"
for nports in $layouts; do
  "$build/tests/bench/bench_http_fixture" -n "$nports" -m fast \
    -b tests/fixtures/spark_master/app_running.json -o "$work/ports.$nports" >"$work/fixture.$nports.log" 2>&1 &
  fpid=$!
  pids+=("$fpid")
  for _ in $(seq 100); do [ -s "$work/ports.$nports" ] && [ "$(wc -l <"$work/ports.$nports")" -ge "$nports" ] && break; sleep 0.1; done
  h0=$(free_port); h1=$(free_port)
  write_config "$work/plain.yaml" "$h0" 0 "$work/ports.$nports"
  write_config "$work/poll.yaml" "$h1" 1 "$work/ports.$nports"
  plain=$(start_daemon "$work/plain.yaml" "$h0"); pids+=("$plain")
  poll=$(start_daemon "$work/poll.yaml" "$h1"); pids+=("$poll")
  sleep 10   # start-up and the first, staggered round of polls
  : >"$work/cost"
  for r in $(seq "$runs"); do
    a0=$(cpu_ticks "$plain"); b0=$(cpu_ticks "$poll"); q0=$(ok_requests "$h1"); e0=$(failed_requests "$h1")
    t0=$(date +%s.%N)
    sleep "$duration"
    a1=$(cpu_ticks "$plain"); b1=$(cpu_ticks "$poll"); q1=$(ok_requests "$h1"); e1=$(failed_requests "$h1")
    t1=$(date +%s.%N)
    read -r pa pb cost rate < <(python3 -c "
w = $t1 - $t0
a = ($a1 - $a0) / $hz / w * 100
b = ($b1 - $b0) / $hz / w * 100
print(f'{a:.2f} {b:.2f} {b - a:.2f} {($q1 - $q0) / w:.0f}')")
    echo "layout $nports port(s), run $r: polling daemon ${pb}% of a core, same clusters without polling ${pa}%, polling costs ${cost}% ($rate answers/s, $((e1 - e0)) failed requests)"
    echo "$cost" >>"$work/cost"
  done
  echo "layout $nports port(s): median cost of polling $clusters masters every 5 s: $(median <"$work/cost")% of one core (bar: <= 2%)"
  kill "$plain" "$poll" "$fpid" 2>/dev/null || true
  wait "$plain" "$poll" "$fpid" 2>/dev/null || true
  tail -1 "$work/fixture.$nports.log"
done
