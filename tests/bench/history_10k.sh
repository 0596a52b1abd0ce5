#!/usr/bin/env bash
# Memory of the decision history behind the dashboard: a real sparkscaled
# configured with 10,000 clusters. Prints RSS at start (configured only),
# then after every cluster made DECISIONS changed decisions (5 apps whose
# demand rises every report, so each report is a decision), with the
# history's own bytes (sparkscale_decision_log_bytes, when the build has
# it). Run it on two builds to compare.
# Usage: tests/bench/history_10k.sh [BUILD_DIR] (env: CLUSTERS, DECISIONS)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/bench}
clusters=${CLUSTERS:-10000}
decisions=${DECISIONS:-10}

. tests/bench/lib.sh
bench_build "$build"
bench_work
cport=$(free_port); hport=$(free_port)
bench_config "$work/ss.yaml" "$clusters" "$cport" "$hport" \
  "kafka: { brokers: embedded, max_pending: 100000, heartbeat_s: 3600 }" \
  "store: { max_apps: $((clusters * 10)) }" "policy: { max_workers: 1000 }"
bench_start "$build" "$work/ss.yaml" "$hport"
sleep 2
echo "clusters configured: $clusters; RSS after start: $(rss_kb) kB;" \
     "decision_log_bytes: $(metric sparkscale_decision_log_bytes)"

python3 - "$cport" "$hport" "$clusters" "$decisions" <<'PY'
import socket, sys, time, urllib.request
port, hport, n, k = (int(a) for a in sys.argv[1:5])
def published():
    with urllib.request.urlopen(f"http://127.0.0.1:{hport}/metrics?cluster=") as r:
        for line in r.read().decode().splitlines():
            if line.startswith("sparkscale_decisions_published_total "):
                return int(float(line.split()[1]))
    return 0
ts = int(time.time()) - k
for report in range(k):
    s = socket.create_connection(("127.0.0.1", port))
    out = []
    for c in range(n):
        p = f"c{c:05d}"
        out.append(f"{p}.master.aliveWorkers 3 {ts + report}\n")
        for a in range(5):
            out.append(f"{p}.app-20261121093000-{a:04d}.driver.ExecutorAllocationManager.executors."
                       f"numberTargetExecutors {4 * (report + 1)} {ts + report}\n")
        if len(out) > 20000:
            s.sendall("".join(out).encode()); out = []
    s.sendall("".join(out).encode())
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    want = n * (report + 1)
    for _ in range(600):
        if published() >= want:
            break
        time.sleep(0.1)
    print(f"report {report + 1}: decisions published {published()} (want >= {want})", flush=True)
PY
sleep 2
echo "after $decisions decisions per cluster: RSS $(rss_kb) kB;" \
     "decision_log_bytes: $(metric sparkscale_decision_log_bytes);" \
     "store bytes: $(metric sparkscale_store_bytes)"
