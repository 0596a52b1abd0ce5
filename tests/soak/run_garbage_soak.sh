#!/usr/bin/env bash
# Hostile-input soak: starts sparkscaled (pass an ASan+UBSan build) on free
# loopback ports and runs soak_garbage.py against it for SECONDS: random
# bytes, NULs, huge lines, random splits, half-open floods, UDP garbage, mixed
# with valid lines. Passes when the daemon still answers, stored every valid
# line (exact accounting), reported no sanitizer error and stops cleanly.
# Usage: tests/soak/run_garbage_soak.sh SPARKSCALED [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: run_garbage_soak.sh SPARKSCALED [SECONDS]}
seconds=${2:-20}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(free_port); hport=$(free_port)
cat >"$work/ss.yaml" <<YAML
ingest: { carbon_tcp: "127.0.0.1:$cport", carbon_udp: "127.0.0.1:$cport", http: "127.0.0.1:$hport" }
clusters:
  - name: soak
YAML
"$bin" --config "$work/ss.yaml" --log-level warn >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rc=0
python3 "$here/soak_garbage.py" "$cport" "$hport" "$seconds" || rc=1
kill -TERM "$pid"
if ! wait "$pid"; then echo "soak: FAIL: sparkscaled did not stop cleanly"; rc=1; fi
pid=
if grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$work/daemon.log"; then
  echo "soak: FAIL: sanitizer report:"; cat "$work/daemon.log"; rc=1
fi
exit $rc
