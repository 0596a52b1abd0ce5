#!/usr/bin/env bash
# Scale benchmark: a real sparkscaled configured with 10,000 clusters, fed
# 5 apps per cluster (all 10 ExecutorAllocationManager series each, two
# reports) plus master gauges over loopback TCP. Prints the daemon's RSS,
# the store's own bytes, the timer pass (a slice of the clusters) and a
# rotation over all of them (the slices summed), medians over those observed. Bars: RSS <= 256 MB, pass <= 10 ms.
# Usage: tests/bench/scale_10k.sh [BUILD_DIR] (env: CLUSTERS, APPS, PERF_OUT)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/bench}
clusters=${CLUSTERS:-10000}
apps=${APPS:-5}

. tests/bench/lib.sh
bench_build "$build"
bench_work
cport=$(free_port); hport=$(free_port)
bench_config "$work/ss.yaml" "$clusters" "$cport" "$hport" \
  "kafka: { brokers: embedded, max_pending: 100000 }" "store: { max_apps: $((clusters * 10)) }"
bench_start "$build" "$work/ss.yaml" "$hport"
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

want=$((clusters * apps))
for _ in $(seq 600); do [ "$(metric sparkscale_store_apps)" = "$want" ] && break; sleep 0.1; done
echo "apps tracked: $(metric sparkscale_store_apps) (want $want), series: $(metric sparkscale_store_series)"
# PERF_OUT=file: also profile the daemon during the passes (perf record).
if [ -n "${PERF_OUT:-}" ]; then perf record -g -p "$pid" -o "$PERF_OUT" -- sleep 5 >/dev/null 2>&1; fi
passes=(); rotations=()
for _ in $(seq 7); do
  sleep 1.05
  passes+=("$(metric sparkscale_policy_pass_seconds)"); rotations+=("$(metric sparkscale_policy_rotation_seconds)")
done
rss=$(rss_kb)
store=$(metric sparkscale_store_bytes)
python3 - "$rss" "$store" "${passes[*]}" "${rotations[*]}" <<'PY'
import sys
rss_kb, store = int(sys.argv[1]), float(sys.argv[2])
passes = sorted(float(p) for p in sys.argv[3].split())
rot = sorted(float(p) for p in sys.argv[4].split())
med = lambda v: v[len(v) // 2]
print(f"daemon RSS: {rss_kb/1024:.1f} MB (bar 256 MB); store holds {store/1e6:.1f} MB")
print(f"timer pass (one slice of the clusters): median {med(passes)*1e3:.2f} ms, max {passes[-1]*1e3:.2f} ms (bar 10 ms)")
print(f"a rotation over all clusters (the slices summed): median {med(rot)*1e3:.2f} ms")
PY
