#!/usr/bin/env bash
# The main job: builds sparkscale (installing missing Debian packages first)
# and runs the whole loop on one machine: a Spark standalone cluster whose
# workers only sparkscale-actuator adds and removes (through an exec command),
# sparkscaled deciding from that cluster's GraphiteSink and master, decisions
# and audit records through sparkscaled's embedded Kafka. Prints the dashboard
# URL and a live table, then the audit trail and a summary; about 2 minutes.
#
# Usage: scripts/demo.sh [--short] [--spark] [--build-dir DIR] [--free-ports] [--work DIR]
#   --short          the story twice as fast (about 1 minute; the test runs this)
#   --spark          real Spark (the pyspark wheel of tests/spark/) instead of the
#                    simulated cluster; needs the wheel cached (it says how if not)
#   --build-dir DIR  use the executables already built in DIR (no build)
#   --free-ports     free ports instead of 2003/9090/9091 (used anyway when those are taken)
#   --work DIR       where logs, configuration and the audit go (default: new dir in /tmp)
# Exit 0 when the loop worked (the worker count followed every decision, one audit
# record per decision); everything started is stopped on exit and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short|--spark|--free-ports) args+=("$1") ;;
    --work) args+=("$1" "${2:?--work needs a directory}"); shift ;;
    --build-dir) build_dir=${2:?--build-dir needs a directory}; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

deps=build
for a in "${args[@]+"${args[@]}"}"; do [ "$a" = --spark ] && deps=spark; done
scripts/install-deps.sh "$deps"
if [ -z "$build_dir" ]; then
  build_dir=build/demo
  echo "demo: building into $build_dir (Release) ..."
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j"${SS_JOBS:-2}" --target sparkscaled sparkscale-actuator sparkscalectl >/dev/null
fi

# exec: Ctrl-C at the terminal reaches run.py, which stops what it started.
exec python3 scripts/demo/run.py --bin "$build_dir" "${args[@]+"${args[@]}"}"
