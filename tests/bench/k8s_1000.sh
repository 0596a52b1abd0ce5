#!/usr/bin/env bash
# Benchmark: 1,000 clusters (1,000 Deployments in a real kube-apiserver v1.37.2 with its
# controller manager) receive a decision at the same moment. bench_k8s applies them
# through the actuator's Kubernetes backend and prints decisions applied per second and
# the latency from the decision to the API server's 200 (p50/p99), once with the
# client-side rate limit off and once at its default (qps 20, burst 40). Each run grows
# every Deployment 0 -> 1 (GET scale + PUT scale); the controllers then create the pods
# (Pending: no kubelet), as in a real cluster. Prints numbers; asserts nothing.
# Usage: tests/bench/k8s_1000.sh [BUILD_DIR] [CLUSTERS]   (build with -DCMAKE_BUILD_TYPE=Release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build/bench}" && pwd)
n=${2:-1000}
bench=$build/tests/bench/bench_k8s
[ -x "$bench" ] || { echo "k8s bench: $bench not built" >&2; exit 1; }
k8s=$root/tests/kubernetes

dir=$(mktemp -d "${TMPDIR:-/tmp}/sparkscale-k8s-bench.XXXXXX")
trap '"$k8s/control-plane.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
SS_K8S_NAMESPACES=bench "$k8s/control-plane.sh" start "$dir" > /dev/null
. "$dir/env"

# n Deployments of 0 replicas, and a configuration with one cluster per Deployment.
python3 - "$dir/env" "$n" "$dir/bench.yaml" <<'PY'
import concurrent.futures, os, sys
sys.path.insert(0, os.environ.get("K8S_DIR", "tests/kubernetes"))
from kubelet_sim import Client, read_env_file
env = read_env_file(sys.argv[1]); n = int(sys.argv[2])
c = Client.from_env(env)
def make(i):
    name = f"w-{i:04d}"
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "bench"},
         "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "w", "image": "spark:bench"}]}}}}
    st, body = c.request("POST", "/apis/apps/v1/namespaces/bench/deployments", d)
    assert st == 201, (st, body)
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(make, range(n)))
with open(sys.argv[3], "w") as f:
    f.write(f"actuator:\n  kubernetes: {{ kubeconfig: {env['SS_K8S_KUBECONFIG']}, qps: 20, burst: 40 }}\n")
    f.write("store: { max_workers_per_cluster: 1024 }\nclusters:\n")
    for i in range(n):
        f.write(f"  - {{ name: c{i:04d}, target: {{ kind: kubernetes, namespace: bench, workload: deployment/w-{i:04d} }} }}\n")
PY
[ -s "$dir/bench.yaml" ] || exit 1

reset() {  # every Deployment back to 0, its pods gone
  python3 - "$dir/env" "$n" <<'PY'
import concurrent.futures, os, sys, time
sys.path.insert(0, os.environ.get("K8S_DIR", "tests/kubernetes"))
from kubelet_sim import Client, read_env_file
env = read_env_file(sys.argv[1]); n = int(sys.argv[2]); c = Client.from_env(env)
def zero(i):
    st, _ = c.request("PATCH", f"/apis/apps/v1/namespaces/bench/deployments/w-{i:04d}/scale",
                      {"spec": {"replicas": 0}}, "application/merge-patch+json")
    assert st == 200
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(zero, range(n)))
for _ in range(600):
    st, pl = c.request("GET", "/api/v1/namespaces/bench/pods?limit=1")
    if not pl["items"]:
        break
    time.sleep(0.5)
PY
}

export K8S_DIR=$k8s
echo "k8s bench: $n Deployments in kube-apiserver $("$SS_K8S_BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}'), $(nproc) cores"
"$bench" --config "$dir/bench.yaml" --desired 1 --qps -1
reset
"$bench" --config "$dir/bench.yaml" --desired 1 --qps 0
