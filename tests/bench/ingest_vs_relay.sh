#!/usr/bin/env bash
# Ingest benchmark: the same Spark-shaped carbon load (bench_ingest: a
# quarter ExecutorAllocationManager gauges over ~50 apps, the rest other
# Spark metrics) over K loopback TCP connections, first into sparkscaled,
# then into carbon-c-relay (one worker, everything routed to its blackhole,
# the same 1 MiB socket receive buffer sparkscaled sets).
# Prints lines/s per core of daemon CPU (utime+stime from /proc/PID/stat)
# for both, median over RUNS runs, and the CPU-per-line ratio.
# Usage: tests/bench/ingest_vs_relay.sh [BUILD_DIR] (env: LINES, CONNS, RUNS)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
build=${1:-build/bench}
lines=${LINES:-20000000}
conns=${CONNS:-4}
runs=${RUNS:-5}

scripts/install-deps.sh all
if [ ! -x "$build/ingest/sparkscaled" ] || [ ! -x "$build/tests/bench/bench_ingest" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target sparkscaled bench_ingest >/dev/null
fi
bench_work

hz=$(getconf CLK_TCK)

# Waits until the process has used no CPU for 300 ms: its input is drained.
settle() {
  local pid=$1 prev now
  prev=$(cpu_ticks "$pid")
  while sleep 0.3; now=$(cpu_ticks "$pid"); [ "$now" != "$prev" ]; do prev=$now; done
}

run_one() {  # run_one PID PORT -> prints "lines_per_cpu_s wall_lines_per_s"
  local pid=$1 port=$2 t0 t1 out
  settle "$pid"
  t0=$(cpu_ticks "$pid")
  out=$("$build/tests/bench/bench_ingest" -p "$port" -n "$lines" -k "$conns" -P bench)
  settle "$pid"
  t1=$(cpu_ticks "$pid")
  local sent wall
  sent=$(sed -n 's/.*sent_lines=\([0-9]*\).*/\1/p' <<<"$out")
  wall=$(sed -n 's/.*client_lines_per_s=\([0-9]*\).*/\1/p' <<<"$out")
  python3 -c "import sys; t=($t1-$t0)/$hz; print(f'{$sent/t:.0f} $wall {t:.3f}')"
}


# --- sparkscaled
sport=$(free_port); hport=$(free_port)
cat >"$work/ss.yaml" <<YAML
ingest:
  carbon_tcp: "127.0.0.1:$sport"
  carbon_udp: "off"
  http: "127.0.0.1:$hport"
  read_buffer_bytes: 262144
kafka: { brokers: embedded }
store: { max_apps_per_cluster: 256 }
clusters:
  - name: bench
    metrics_prefix: bench
    worker: { cores: 4, memory_mb: 8192 }
    executor: { cores: 2, memory_mb: 4096 }
YAML
"$build/ingest/sparkscaled" --config "$work/ss.yaml" --log-level warn &
spid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# --- carbon-c-relay, one worker, blackhole
rport=$(free_port)
cat >"$work/relay.conf" <<CONF
listen type linemode 127.0.0.1:$rport proto tcp;
match * send to blackhole stop;
CONF
carbon-c-relay -f "$work/relay.conf" -w 1 -s -U 1048576 -l "$work/relay.log" &
rpid=$!
sleep 1

echo "load: $lines lines per run over $conns TCP connections, $runs runs each"
: >"$work/ss"; : >"$work/relay"
for i in $(seq "$runs"); do
  read -r s_rate s_wall s_cpu < <(run_one "$spid" "$sport")
  read -r r_rate r_wall r_cpu < <(run_one "$rpid" "$rport")
  echo "run $i: sparkscaled ${s_rate} lines/cpu-s (cpu ${s_cpu}s, wall ${s_wall} lines/s) | carbon-c-relay ${r_rate} lines/cpu-s (cpu ${r_cpu}s, wall ${r_wall} lines/s)"
  echo "$s_rate" >>"$work/ss"; echo "$r_rate" >>"$work/relay"
done
got=$(curl -s "http://127.0.0.1:$hport/metrics" | awk '$1=="sparkscale_carbon_lines_total"{print $2}')
echo "sparkscaled counted $got lines (expected $((lines / conns * conns * runs)))"
s_med=$(median <"$work/ss"); r_med=$(median <"$work/relay")
python3 - "$s_med" "$r_med" <<'PY'
import sys
s, r = float(sys.argv[1]), float(sys.argv[2])
print(f"median sparkscaled:    {s/1e6:.2f} M lines per CPU-second ({1e9/s:.0f} ns CPU per line)")
print(f"median carbon-c-relay: {r/1e6:.2f} M lines per CPU-second ({1e9/r:.0f} ns CPU per line)")
print(f"CPU per line, sparkscaled / carbon-c-relay: {r/s:.3f}  (bar: <= 0.333)")
PY
