#!/usr/bin/env bash
# Every state a production sparkscaled meets (cold, fresh, heartbeat,
# stale, expiring, four floods under concurrent scrapes), each held for
# minutes, on a real daemon with 10,000 clusters x 5 apps: passes, loop
# lag, publishing turns and RSS per state. About 14 minutes.
# Usage: tests/bench/states.sh [BUILD_DIR] [states.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/bench}
shift || true
scripts/install-deps.sh build
if [ ! -x "$build/ingest/sparkscaled" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target sparkscaled >/dev/null
exec python3 tests/bench/states.py "$build/ingest/sparkscaled" "$@"
