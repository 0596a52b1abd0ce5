#!/usr/bin/env bash
# deploy/exec/spark-workers against a stand-in spark-class (no Java): resize up, idempotent
# repeats, named victims stopped with their whole process group (a child that the "worker" leaves
# behind included), no choice of victims without PICK_VICTIMS, dry run, a worker killed from
# outside, a worker that ignores SIGTERM, a start that fails, bad configuration, stop-all.
# Usage: tests/deploy/test_spark_workers.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sw="$root/deploy/exec/spark-workers"
tmp=$(mktemp -d)
passed=0; failed=0
cleanup() {
  # Whatever a failed case left: every process group the script recorded.
  for f in "$tmp"/state/w/*/pid; do [ -f "$f" ] && read -r p _ <"$f" && kill -KILL -- "-$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# The stand-in: "registers", leaves an "executor" child in its process group (as a worker's
# executors are), exits on SIGTERM without killing that child (unless FAKE_IGNORE_TERM), fails at
# once for the host in FAKE_FAIL_HOST.
mkdir -p "$tmp/spark/bin"
cat >"$tmp/spark/bin/spark-class" <<'EOF'
#!/usr/bin/env bash
host=""
while [ $# -gt 0 ]; do [ "$1" = --host ] && host=$2; shift; done
[ "$host" = "${FAKE_FAIL_HOST:-}" ] && { echo "ERROR Worker: Failed to bind to $host"; exit 1; }
[ "$SPARK_LOCAL_IP" = "$host" ] || { echo "SPARK_LOCAL_IP $SPARK_LOCAL_IP != $host"; exit 1; }
echo "INFO Worker: Successfully registered with master"
bash -c 'exec -a fake-executor sleep 600' &
if [ -n "${FAKE_IGNORE_TERM:-}" ]; then trap '' TERM; else trap 'exit 0' TERM; fi
while :; do sleep 0.2; done
EOF
chmod +x "$tmp/spark/bin/spark-class"
cat >"$tmp/conf" <<EOF
SPARK_HOME=$tmp/spark
SPARK_MASTER_URL=spark://127.0.0.1:7077
STATE_DIR=$tmp/state
WORKER_NET=127.0.0
WORKER_FIRST=10
WORKER_LAST=14
START_CHECK_S=${START_CHECK_S:-0}
STOP_TIMEOUT_S=2
EOF

run() { "$sw" --conf "$tmp/conf" "$@"; }
resize() {  # resize DESIRED [HOSTS] [DRY]
  SPARKSCALE_DESIRED=$1 SPARKSCALE_REMOVE_HOSTS=${2:-} SPARKSCALE_DRY_RUN=${3:-0} run resize
}
count_is() { [ "$(run count)" = "$1" ]; }
starts() { grep -c " start " "$tmp/state/events.log"; }
group_gone() { ! kill -0 -- "-$1" 2>/dev/null; }
pid_of() { awk '{print $1}' "$tmp/state/w/$1/pid"; }

out=$(resize 3 2>&1); rc=$?
check "resize 0 -> 3 exits 0 ($out)" [ $rc -eq 0 ]
check "3 workers counted" count_is 3
mapfile -t hosts < <(run list | awk '{print $1}')
check "each on its own address (${hosts[*]})" [ "${hosts[*]}" = "127.0.0.10 127.0.0.11 127.0.0.12" ]
check "three start events" [ "$(starts)" = 3 ]
h1=${hosts[1]}; p1=$(pid_of "$h1")
check "the worker leads its own process group" [ "$(ps -o pgid= -p "$p1" | tr -d ' ')" = "$p1" ]
check "its executor shares the group" [ "$(pgrep -g "$p1" -c)" -ge 2 ]

out=$(resize 3 2>&1)
check "resize to the same size starts nothing ($out)" [ "$(starts)" = 3 ]

out=$(resize 2 "$h1" 2>&1); rc=$?
check "named victim stopped ($out)" [ $rc -eq 0 ]
check "2 workers left" count_is 2
check "the victim's whole process group is gone (no orphan executor)" group_gone "$p1"
check "a stop event for $h1" grep -q " stop $h1 $p1" "$tmp/state/events.log"

out=$(resize 2 "$h1" 2>&1); rc=$?
check "the same decision again changes nothing ($out)" eval '[ $rc -eq 0 ] && count_is 2'

out=$(resize 1 "" 2>&1); rc=$?
check "scale-in without victims refused with status 3" [ $rc -eq 3 ]
check "  and says why" grep -q "no more victims were named" <<<"$out"
check "  and stops nothing" count_is 2

out=$(resize 4 "" 1 2>&1); rc=$?
check "dry run exits 0 and says so" eval '[ $rc -eq 0 ] && grep -q "dry run" <<<"$out"'
check "  and starts nothing" count_is 2

out=$(resize 3 2>&1)
new=$(run list | awk '{print $1}' | grep -v -e 127.0.0.10 -e 127.0.0.12)
check "a new worker does not reuse the address just stopped ($new)" [ "$new" = 127.0.0.13 ]

p0=$(pid_of 127.0.0.10)
kill -KILL "$p0"; sleep 0.3
check "a worker killed from outside is not counted" count_is 2
out=$(resize 3 2>&1); rc=$?
check "resize notices it died and replaces it ($out)" eval '[ $rc -eq 0 ] && count_is 3'
check "  with a died event" grep -q " died 127.0.0.10 $p0" "$tmp/state/events.log"
check "  and its left-behind executor is gone" group_gone "$p0"

out=$(SPARKSCALE_DESIRED=2 SPARKSCALE_REMOVE_HOSTS=10.9.9.9 PICK_VICTIMS=newest run resize 2>&1); rc=$?
check "PICK_VICTIMS=newest picks the newest; a host not ours is named as such ($out)" \
  eval '[ $rc -eq 0 ] && count_is 2 && grep -q "not running here: 10.9.9.9" <<<"$out"'

run stop-all >/dev/null 2>&1
echo 11 >"$tmp/state/cursor"
out=$(START_CHECK_S=0.5 FAKE_FAIL_HOST=127.0.0.12 resize 1 2>&1); rc=$?
check "a worker that fails at start fails the resize (status $rc)" [ $rc -eq 1 ]
check "  naming the host and the error" grep -q "127.0.0.12 exited during start: ERROR Worker: Failed to bind" <<<"$out"

out=$(FAKE_IGNORE_TERM=1 resize 2 2>&1)
stubborn=$(run list | tail -1 | awk '{print $1}'); ps=$(pid_of "$stubborn")
t0=$SECONDS
out=$(resize 2 "$stubborn" 2>&1); rc=$?
check "a worker ignoring SIGTERM is killed after STOP_TIMEOUT_S ($out)" \
  eval '[ $rc -eq 0 ] && group_gone "$ps" && [ $((SECONDS - t0)) -le 6 ]'

out=$(SPARKSCALE_DESIRED=x run resize 2>&1); rc=$?
check "a bad SPARKSCALE_DESIRED is a usage error" [ $rc -eq 2 ]
out=$(SPARKSCALE_DESIRED=9 run resize 2>&1); rc=$?
check "more workers than addresses is refused ($out)" [ $rc -eq 2 ]
out=$(SPARKSCALE_DESIRED=1 SPARK_HOME=/nonexistent "$sw" resize 2>&1); rc=$?
check "no configuration: SPARK_HOME or STATE_DIR named" [ $rc -eq 2 ]
out=$(WORKER_FIRST=9 WORKER_LAST=3 STATE_DIR=$tmp/x "$sw" count 2>&1); rc=$?
check "a reversed address range is refused" eval '[ $rc -eq 2 ] && grep -q WORKER_FIRST <<<"$out"'

mapfile -t pids < <(for f in "$tmp"/state/w/*/pid; do [ -f "$f" ] && awk '{print $1}' "$f"; done)
out=$(run stop-all 2>&1); rc=$?
check "stop-all exits 0 ($out)" [ $rc -eq 0 ]
check "  and nothing counted" count_is 0
left=0; for p in "${pids[@]}"; do group_gone "$p" || left=1; done
check "  and no process of any worker group is left" [ $left -eq 0 ]
check "every start has its stop or died event" \
  [ "$(grep -c ' start ' "$tmp/state/events.log")" = "$(grep -cE ' (stop|died) ' "$tmp/state/events.log")" ]

echo "spark-workers: $passed passed, $failed failed"
[ $failed -eq 0 ]
