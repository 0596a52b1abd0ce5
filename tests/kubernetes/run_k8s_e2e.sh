#!/usr/bin/env bash
# The actuator's Kubernetes backend against a real control plane: builds (or reuses)
# kube-apiserver/kube-controller-manager/kubectl v1.37.2, starts them with namespaces
# spark and sparkscale, plays the kubelet on spark, applies deploy/kubernetes/, and runs
# e2e_checks.py (victims' pods go and no other, partial and held scale-ins, dry run,
# a racing writer's 409s, StatefulSet ordinals, a ReplicaSet, RBAC sufficient and
# minimal). Stops everything it started. Exit 0 = pass.
# Usage: tests/kubernetes/run_k8s_e2e.sh [BUILD_DIR]   (default build/ci; KEEP=1 keeps the logs)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build/ci}" && pwd)
[ -x "$build/tests/kubernetes/k8s_drive" ] || { echo "k8s e2e: $build/tests/kubernetes/k8s_drive not built" >&2; exit 1; }

t0=$(date +%s)
bin=$("$here/build-control-plane.sh" | tail -n 1) || { echo "k8s e2e: FAIL: build-control-plane.sh failed" >&2; exit 1; }
[ -x "$bin/kubectl" ] || { echo "k8s e2e: $bin/kubectl missing (build without SS_K8S_KUBECTL=0)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/sparkscale-k8s-e2e.XXXXXX")
cleanup() {
  local rc=$?
  "$here/control-plane.sh" stop "$dir" || true
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then echo "k8s e2e: logs kept in $dir" >&2; else rm -rf "$dir"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SS_K8S_BIN=$bin SS_K8S_NAMESPACES="spark sparkscale" "$here/control-plane.sh" start "$dir" > /dev/null
# shellcheck disable=SC1091
. "$dir/env"
python3 "$here/kubelet_sim.py" --env "$dir/env" --namespace spark --pid-file "$dir/kubelet-sim.pid" \
  < /dev/null > "$dir/kubelet-sim.log" 2>&1 &
for _ in $(seq 100); do [ -s "$dir/kubelet-sim.pid" ] && break; sleep 0.05; done

rc=0
python3 "$here/e2e_checks.py" "$dir/env" "$build" || rc=$?
"$here/control-plane.sh" stop "$dir"
echo "k8s e2e: $(( $(date +%s) - t0 )) s in all"
exit "$rc"
