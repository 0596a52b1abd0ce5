#!/usr/bin/env bash
# Does polling slow carbon ingest down? Two sparkscaled processes run side by
# side on the same configuration, except that one of them also polls 100 Spark
# master endpoints that answer in 1-5 s (half of them) or never (the other
# half; bench_http_fixture, one loopback port each, recorded master JSON).
# Each run sends the same Spark-shaped carbon load (bench_ingest) to one, then
# the other, and measures the daemon's CPU (utime+stime from /proc/PID/stat,
# polling included) per line and the client's lines/s. Prints every run and
# the medians of both, and the difference.
# Usage: tests/bench/poll_vs_ingest.sh [BUILD_DIR] (env: LINES, CONNS, RUNS, ENDPOINTS)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
build=${1:-build/bench}
lines=${LINES:-20000000}
conns=${CONNS:-4}
runs=${RUNS:-9}
endpoints=${ENDPOINTS:-100}

if [ ! -x "$build/ingest/sparkscaled" ] || [ ! -x "$build/tests/bench/bench_ingest" ] ||
   [ ! -x "$build/tests/bench/bench_http_fixture" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target sparkscaled bench_ingest bench_http_fixture >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

hz=$(getconf CLK_TCK)

# Waits until the daemon's input is drained: at most one tick (10 ms) of CPU
# in 300 ms (the polling daemon never goes fully quiet).
settle() {
  local pid=$1 prev now
  prev=$(cpu_ticks "$pid")
  while sleep 0.3; now=$(cpu_ticks "$pid"); [ $((now - prev)) -gt 1 ]; do prev=$now; done
}

run_one() {  # run_one PID PORT -> "ns_cpu_per_line client_lines_per_s"
  local pid=$1 port=$2 t0 t1 out
  settle "$pid"
  t0=$(cpu_ticks "$pid")
  out=$("$build/tests/bench/bench_ingest" -p "$port" -n "$lines" -k "$conns" -P bench)
  settle "$pid"
  t1=$(cpu_ticks "$pid")
  local sent wall
  sent=$(sed -n 's/.*sent_lines=\([0-9]*\).*/\1/p' <<<"$out")
  wall=$(sed -n 's/.*client_lines_per_s=\([0-9]*\).*/\1/p' <<<"$out")
  python3 -c "t=($t1-$t0)/$hz; print(f'{t*1e9/$sent:.1f} $wall')"
}

# The slow endpoints: a recorded master answer, after 1-5 s or never.
"$build/tests/bench/bench_http_fixture" -n "$endpoints" -m mixed -d 1000 -D 5000 \
  -b tests/fixtures/spark_master/app_running.json -o "$work/ports" >"$work/fixture.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/ports" ] && [ "$(wc -l <"$work/ports")" -ge "$endpoints" ] && break; sleep 0.1; done

write_config() {  # write_config FILE CARBON_PORT HTTP_PORT POLL(0|1)
  {
    cat <<YAML
ingest:
  carbon_tcp: "127.0.0.1:$2"
  carbon_udp: "off"
  http: "127.0.0.1:$3"
  read_buffer_bytes: 262144
kafka: { brokers: embedded }
store: { max_apps_per_cluster: 256 }
poll: { interval_s: 5, timeout_ms: 3000 }
clusters:
  - name: bench
    metrics_prefix: bench
    worker: { cores: 4, memory_mb: 8192 }
    executor: { cores: 2, memory_mb: 4096 }
YAML
    local i=0
    while read -r port mode; do
      i=$((i + 1))
      echo "  - name: m$i"
      [ "$4" = 1 ] && echo "    spark_master: \"http://127.0.0.1:$port\""
      echo "    worker: { cores: 2, memory_mb: 1024 }"
      echo "    executor: { cores: 2, memory_mb: 512 }"
    done <"$work/ports"
  } >"$1"
}

start_daemon() {  # start_daemon CONFIG HTTP_PORT -> pid
  "$build/ingest/sparkscaled" --config "$1" --log-level error >"$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$pid"
}

p0=$(free_port); h0=$(free_port); p1=$(free_port); h1=$(free_port)
write_config "$work/plain.yaml" "$p0" "$h0" 0
write_config "$work/poll.yaml" "$p1" "$h1" 1
plain=$(start_daemon "$work/plain.yaml" "$h0"); pids+=("$plain")
poll=$(start_daemon "$work/poll.yaml" "$h1"); pids+=("$poll")
sleep 6   # one whole poll period: every endpoint has a request out

echo "load: $lines lines per run over $conns TCP connections, $runs runs each; the polling daemon"
echo "      polls $endpoints Spark master endpoints every 5 s (timeout 3 s): half answer in 1-5 s, half never"
: >"$work/a"; : >"$work/b"; : >"$work/aw"; : >"$work/bw"
for i in $(seq "$runs"); do
  # Alternate which daemon goes first: the load generator and the machine
  # must not favour one of them.
  if [ $((i % 2)) = 1 ]; then
    read -r a_ns a_wall < <(run_one "$plain" "$p0")
    read -r b_ns b_wall < <(run_one "$poll" "$p1")
  else
    read -r b_ns b_wall < <(run_one "$poll" "$p1")
    read -r a_ns a_wall < <(run_one "$plain" "$p0")
  fi
  echo "run $i: no polling ${a_ns} ns CPU/line, ${a_wall} lines/s | polling ${b_ns} ns CPU/line, ${b_wall} lines/s"
  echo "$a_ns" >>"$work/a"; echo "$b_ns" >>"$work/b"; echo "$a_wall" >>"$work/aw"; echo "$b_wall" >>"$work/bw"
done
m() { curl -s "http://127.0.0.1:$h1/metrics" | awk -v k="$1" '$1==k{print $2}'; }
echo "polling daemon: requests ok $(m 'sparkscale_poll_requests_total{source="master",result="ok"}'), timeout $(m 'sparkscale_poll_requests_total{source="master",result="timeout"}'), in flight now $(m sparkscale_poll_in_flight)"
python3 - "$(median <"$work/a")" "$(median <"$work/b")" "$(median <"$work/aw")" "$(median <"$work/bw")" <<'PY'
import sys
a, b, aw, bw = map(float, sys.argv[1:])
print(f"median CPU per line: no polling {a:.1f} ns, polling {b:.1f} ns ({(b - a) / a * 100:+.1f}%)")
print(f"median lines/s:      no polling {aw / 1e6:.2f} M, polling {bw / 1e6:.2f} M ({(bw - aw) / aw * 100:+.1f}%)")
print("bar: both within 5%")
PY
