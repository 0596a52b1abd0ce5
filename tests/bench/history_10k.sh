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
    f.write("kafka: { brokers: embedded, max_pending: 100000, heartbeat_s: 3600 }\n")
    f.write(f"store: {{ max_apps: {n * 10} }}\n")
    f.write("policy: { max_workers: 1000 }\n")
    f.write("clusters:\n")
    for i in range(n):
        f.write(f"  - {{ name: c{i:05d}, worker: {{ cores: 4, memory_mb: 8192 }}, "
                f"executor: {{ cores: 2, memory_mb: 4096 }} }}\n")
PY
"$build/ingest/sparkscaled" --config "$work/ss.yaml" --log-level warn &
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 2
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
metric() { curl -s "http://127.0.0.1:$hport/metrics" | awk -v m="$1" '$1==m{print $2}'; }
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
