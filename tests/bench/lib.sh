# lib.sh: what the shell benchmarks share (sourced, not run): a Release
# build, a work directory removed on exit, free ports, a configuration of N
# clusters, a sparkscaled started on it, its RSS and its metrics, a
# process's CPU ticks, a median.

# bench_build DIR: sparkscaled built there (Release) unless it is already.
bench_build() {
  scripts/install-deps.sh build
  if [ ! -x "$1/ingest/sparkscaled" ]; then
    cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$1" -j2 --target sparkscaled >/dev/null
  fi
}

bench_work() {
  work=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU ticks (utime + stime) a process has used; median of numbers on stdin.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_config FILE CLUSTERS CARBON_PORT HTTP_PORT [YAML LINE...]: clusters
# c00000.. (worker 4 cores / 8 GiB, executor 2 cores / 4 GiB), the extra
# top-level lines given (kafka:, store:, policy: ...).
bench_config() {
  python3 - "$@" <<'PY'
import sys
path, n, cport, hport, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
with open(path, "w") as f:
    f.write(f'ingest: {{ carbon_tcp: "127.0.0.1:{cport}", carbon_udp: "off", http: "127.0.0.1:{hport}" }}\n')
    for line in extra:
        f.write(line + "\n")
    f.write("clusters:\n")
    for i in range(n):
        f.write(f"  - {{ name: c{i:05d}, worker: {{ cores: 4, memory_mb: 8192 }}, "
                f"executor: {{ cores: 2, memory_mb: 4096 }} }}\n")
PY
}

# bench_start BUILD CONFIG HTTP_PORT: sparkscaled in the background ($pid),
# returning once /healthz answers.
bench_start() {
  "$1/ingest/sparkscaled" --config "$2" --log-level warn &
  pid=$!
  bench_hport=$3
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$3/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
}

rss_kb() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
metric() { curl -s "http://127.0.0.1:$bench_hport/metrics?cluster=" | awk -v m="$1" '$1==m{print $2}'; }
