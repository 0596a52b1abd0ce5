#!/usr/bin/env bash
# Scale benchmark: a real sparkscaled configured with 10,000 clusters, fed
# 5 apps per cluster (all 10 ExecutorAllocationManager series each, two
# reports) plus master gauges over loopback TCP. Prints the daemon's RSS,
# the store's own bytes and the timer pass over every cluster (policy +
# pools), medians over the passes observed. Bars: RSS <= 256 MB, pass <= 10 ms.
# Usage: tests/bench/scale_10k.sh [BUILD_DIR] (env: CLUSTERS, APPS, PERF_OUT)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/bench}
clusters=${CLUSTERS:-10000}
apps=${APPS:-5}

scripts/install-deps.sh build
if [ ! -x "$build/ingest/sparkscaled" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target sparkscaled >/dev/null
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(free_port); hport=$(free_port)

python3 - "$work/ss.yaml" "$clusters" "$cport" "$hport" <<'PY'
import sys
path, n, cport, hport = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(path, "w") as f:
    f.write(f'ingest: {{ carbon_tcp: "127.0.0.1:{cport}", carbon_udp: "off", http: "127.0.0.1:{hport}" }}\n')
    f.write("kafka: { brokers: embedded, max_pending: 100000 }\n")
    f.write(f"store: {{ max_apps: {n * 10} }}\n")
    f.write("clusters:\n")
    for i in range(n):
        f.write(f"  - {{ name: c{i:05d}, worker: {{ cores: 4, memory_mb: 8192 }}, "
                f"executor: {{ cores: 2, memory_mb: 4096 }} }}\n")
PY
"$build/ingest/sparkscaled" --config "$work/ss.yaml" --log-level warn &
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
echo "clusters configured: $clusters; RSS after start: $(( $(rss_kb) / 1024 )) MB"

python3 - "$cport" "$clusters" "$apps" <<'PY'
import socket, sys, time
port, n, apps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
gauges = ["numberExecutorsToAdd", "numberExecutorsPendingToRemove", "numberAllExecutors",
          "numberTargetExecutors", "numberMaxNeededExecutors", "numberDecommissioningExecutors"]
counters = ["numberExecutorsGracefullyDecommissioned", "numberExecutorsDecommissionUnfinished",
            "numberExecutorsKilledByDriver", "numberExecutorsExitedUnexpectedly"]
for report in range(2):
    ts = int(time.time()) + report
    s = socket.create_connection(("127.0.0.1", port))
    out = []
    for c in range(n):
        p = f"c{c:05d}"
        out.append(f"{p}.master.aliveWorkers 3 {ts}\n{p}.master.workers 3 {ts}\n")
        for a in range(apps):
            base = f"{p}.app-20261121093000-{a:04d}.driver.ExecutorAllocationManager.executors."
            for i, g in enumerate(gauges):
                out.append(f"{base}{g} {(c + a + i + report) % 9} {ts}\n")
            for g in counters:
                out.append(f"{base}{g}.count {report} {ts}\n")
        if len(out) > 20000:
            s.sendall("".join(out).encode()); out = []
    s.sendall("".join(out).encode())
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
PY

metric() { curl -s "http://127.0.0.1:$hport/metrics" | awk -v m="$1" '$1==m{print $2}'; }
want=$((clusters * apps))
for _ in $(seq 600); do [ "$(metric sparkscale_store_apps)" = "$want" ] && break; sleep 0.1; done
echo "apps tracked: $(metric sparkscale_store_apps) (want $want), series: $(metric sparkscale_store_series)"
# PERF_OUT=file: also profile the daemon during the passes (perf record).
if [ -n "${PERF_OUT:-}" ]; then perf record -g -p "$pid" -o "$PERF_OUT" -- sleep 5 >/dev/null 2>&1; fi
passes=()
for _ in $(seq 7); do sleep 1.05; passes+=("$(metric sparkscale_policy_pass_seconds)"); done
med=$(printf '%s\n' "${passes[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
rss=$(rss_kb)
store=$(metric sparkscale_store_bytes)
python3 - "$rss" "$store" "$med" "${passes[*]}" <<'PY'
import sys
rss_kb, store, med, passes = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"daemon RSS: {rss_kb/1024:.1f} MB (bar 256 MB); store holds {store/1e6:.1f} MB")
print(f"timer pass over all clusters: median {med*1e3:.2f} ms (bar 10 ms); passes: " +
      " ".join(f"{float(p)*1e3:.2f}" for p in passes.split()))
PY
