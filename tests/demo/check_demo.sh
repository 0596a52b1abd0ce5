#!/usr/bin/env bash
# The README's main job, run as a test: scripts/demo.sh --short on the
# executables of BUILD_DIR, on free ports.
#  1. It must end by itself with exit 0 and "demo: PASS": its own checks passed
#     (every resize the exec command made is the backend call of one APPLIED
#     decision, to the size the audit record says, in order; the end size is
#     the last decision's; the cluster grew and shrank; no busy worker removed;
#     every decision in Kafka has exactly one audit record). This script checks
#     the same from the files the run left (actions.jsonl, audit.jsonl), so a
#     demo that stopped checking would still fail here.
#  2. Interrupted like a Ctrl-C at a terminal (SIGINT to its process group) once
#     workers have been added, it must exit 130 and leave no process behind.
# Usage: tests/demo/check_demo.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: check_demo.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
tmp=$(mktemp -d /tmp/ss-demo-test.XXXXXX)
fail() { echo "demo test: FAIL: $*"; exit 1; }
leftovers() {  # pids whose environment says SS_DEMO_RUN=$1
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = $$ ] && continue
    { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qx "SS_DEMO_RUN=$1" && echo "$pid"
  done
}
cleanup() {
  local p
  for p in $(leftovers "$tmp/run1") $(leftovers "$tmp/run2"); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# 1. the whole short demo
start=$(date +%s)
"$root/scripts/demo.sh" --short --free-ports --build-dir "$build" --work "$tmp/run1" > "$tmp/run1.out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
cat "$tmp/run1.out"
[ "$rc" -eq 0 ] || fail "scripts/demo.sh --short exited $rc"
grep -q '^demo: PASS' "$tmp/run1.out" || fail "no 'demo: PASS' line"
grep -q '^  dashboard       http://127.0.0.1:[0-9]*/$' "$tmp/run1.out" || fail "no dashboard URL printed"
python3 - "$tmp/run1" <<'PY' || fail "the files of the run do not show the loop (above)"
import json, sys
work = sys.argv[1]
recs = [json.loads(l) for l in open(work + "/audit.jsonl") if l.strip()]
acts = [json.loads(l) for l in open(work + "/actions.jsonl") if l.strip()]
decisions = [r for r in recs if r["type"] == "decision"]
results = [r for r in recs if r["type"] == "result"]
per = {}
for r in results:
    per.setdefault((r["decision_topic"], r["decision_partition"], r["decision_offset"]), []).append(r)
bad = [(d["sequence"], len(per.get((d["topic"], d["partition"], d["offset"]), [])))
       for d in decisions if len(per.get((d["topic"], d["partition"], d["offset"]), [])) != 1]
assert decisions, "no decisions"
assert not bad, "decisions (sequence, audit records) without exactly one record: %s" % bad
assert len(results) == len(decisions), "%d results for %d decisions" % (len(results), len(decisions))
calls = [r for r in sorted(results, key=lambda r: r["decision_offset"])
         if r["outcome"] == "APPLIED" and r["replicas_before"] != r["replicas_after"]]
assert [(a["before"], a["after"]) for a in acts] == [(r["replicas_before"], r["replicas_after"]) for r in calls], \
    "resizes %s != applied decisions %s" % ([(a["before"], a["after"]) for a in acts],
                                             [(r["replicas_before"], r["replicas_after"]) for r in calls])
by_seq = {d["sequence"]: d for d in decisions}
for a, r in zip(acts, calls):
    assert a["after"] == by_seq[r["decision_sequence"]]["desired_workers"] or a["after"] < a["before"], \
        "scale-up to %d for a decision wanting %d" % (a["after"], by_seq[r["decision_sequence"]]["desired_workers"])
assert max(a["after"] for a in acts) >= 5, "the cluster never grew past 4 workers"
assert acts[-1]["after"] == max(decisions, key=lambda d: d["sequence"])["desired_workers"], "end size != last decision"
assert any(a["after"] < a["before"] for a in acts), "never shrank"
print("demo test: %d decisions, %d audit records, %d resizes, peak %d workers, end %d"
      % (len(decisions), len(results), len(acts), max(a["after"] for a in acts), acts[-1]["after"]))
PY
echo "demo test: the short demo passed in ${secs} s"

# 2. Ctrl-C in the middle: SIGINT to the demo's process group, as a terminal sends it.
#    Job control gives the job its own process group with SIGINT not ignored (a plain
#    background job of a script ignores it).
set -m
"$root/scripts/demo.sh" --short --free-ports --build-dir "$build" --work "$tmp/run2" \
  > "$tmp/run2.out" 2>&1 &
pid=$!
set +m
for _ in $(seq 1 600); do
  grep -q '> exec: .* started' "$tmp/run2.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '> exec: .* started' "$tmp/run2.out" || { cat "$tmp/run2.out"; fail "the second run added no worker within 60 s"; }
n=$(leftovers "$tmp/run2" | wc -l)
kill -INT -- "-$pid"
wait "$pid"
rc=$?
tail -n 5 "$tmp/run2.out"
[ "$rc" -eq 130 ] || fail "after Ctrl-C the demo exited $rc, not 130"
grep -q 'processes left behind: none' "$tmp/run2.out" || fail "the demo reported processes left behind"
left=$(leftovers "$tmp/run2")
[ -z "$left" ] || { ps -o pid,args -p $left; fail "processes left after Ctrl-C: $left"; }
echo "demo test: Ctrl-C with $n processes running (daemons, audit follower) left none behind"
echo "demo test: PASS"
