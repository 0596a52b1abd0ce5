#!/usr/bin/env bash
# Self-check of the test Kubernetes control plane: builds (or reuses) the binaries,
# starts etcd + kube-apiserver + kube-controller-manager in a temp dir, runs the
# kubelet simulator, proves the scale API behaves as the actuator needs (see
# smoke_checks.py), and stops everything. Exit 0 = pass.
# Usage: tests/kubernetes/smoke.sh        (KEEP=1 keeps the temp dir and its logs; a failed run keeps them too)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
now() { date +%s.%N; }
secs() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

# ---------------------------------------------------------------- build
cached=uncached
"$here/build-control-plane.sh" --check && cached=cached
t0=$(now)
bin=$("$here/build-control-plane.sh" | tail -n 1) || { echo "smoke: FAIL: build-control-plane.sh failed" >&2; exit 1; }
t_build=$(secs "$t0" "$(now)")

# ---------------------------------------------------------------- start
dir=$(mktemp -d "${TMPDIR:-/tmp}/sparkscale-k8s-smoke.XXXXXX")
cleanup() {
  local rc=$?
  "$here/control-plane.sh" stop "$dir" || true
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "smoke: logs kept in $dir" >&2
  else
    rm -rf "$dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t1=$(now)
SS_K8S_BIN=$bin "$here/control-plane.sh" start "$dir" > /dev/null
t_start=$(secs "$t1" "$(now)")
# shellcheck disable=SC1091
. "$dir/env"

python3 "$here/kubelet_sim.py" --env "$dir/env" --namespace "${SS_K8S_NAMESPACES%% *}" \
  --pid-file "$dir/kubelet-sim.pid" < /dev/null > "$dir/kubelet-sim.log" 2>&1 &
for _ in $(seq 100); do [ -s "$dir/kubelet-sim.pid" ] && break; sleep 0.05; done

# ---------------------------------------------------------------- checks
t2=$(now)
rc=0
python3 "$here/smoke_checks.py" "$dir/env" || rc=$?
t_checks=$(secs "$t2" "$(now)")

# ---------------------------------------------------------------- stop
t3=$(now)
"$here/control-plane.sh" stop "$dir"
t_stop=$(secs "$t3" "$(now)")
left=""
for f in etcd kube-apiserver kube-controller-manager kubelet-sim; do
  [ -e "$dir/$f.pid" ] && left+=" $f"
done
if pgrep -f -- "$dir/" > /dev/null 2>&1; then
  left+=" $(pgrep -f -- "$dir/" | tr '\n' ' ')"
fi
if [ -n "$left" ]; then
  echo "smoke: FAIL: processes left after stop:$left" >&2
  rc=1
fi

echo "smoke: build ($cached) ${t_build} s, start ${t_start} s, checks ${t_checks} s, stop ${t_stop} s"
if [ "$rc" -ne 0 ]; then
  echo "smoke: FAIL" >&2
  for l in kube-controller-manager kubelet-sim; do
    echo "== $dir/$l.log (tail)" >&2; tail -n 20 "$dir/$l.log" >&2 || true
  done
  exit "$rc"
fi
echo "smoke: PASS"
