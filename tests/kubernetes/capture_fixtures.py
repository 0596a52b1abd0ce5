#!/usr/bin/env python3
"""Records answers of the real API server into tests/fixtures/kubernetes/, byte for byte.

Usage: python3 tests/kubernetes/capture_fixtures.py DIR/env [OUTDIR]
Needs a control plane (control-plane.sh start DIR) and a kubelet simulator on its
namespace. Writes *.json (bodies) and responses.txt (request, status, content type, size).
The unit tests of lib/k8s decode these files.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubelet_sim import Client, read_env_file  # noqa: E402

COST = "controller.kubernetes.io/pod-deletion-cost"
MERGE = "application/merge-patch+json"


def raw(client, method, path, body=None, ctype="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(client.api + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + client.token)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, context=client.ctx, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def wait(what, fn, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    env = read_env_file(sys.argv[1])
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "fixtures", "kubernetes")
    os.makedirs(out, exist_ok=True)
    admin = Client.from_env(env)
    user2 = Client.from_env(env, "SS_K8S_USER2_TOKEN")
    ns = env["SS_K8S_NAMESPACE"]
    apps = f"/apis/apps/v1/namespaces/{ns}"
    core = f"/api/v1/namespaces/{ns}"
    log = []

    def save(name, client, method, path, body=None, ctype="application/json", want=None):
        st, ct, data = raw(client, method, path, body, ctype)
        if want is not None and st != want:
            raise SystemExit(f"{name}: {method} {path}: HTTP {st} (want {want}): {data[:300]!r}")
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        log.append(f"{name}\t{method} {path}\t{st}\t{ct}\t{len(data)}")
        return json.loads(data) if data else None

    def template(app):
        return {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "worker", "image": "spark-worker:fixture"}]}}

    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "workers", "namespace": ns},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "workers"}},
                    "template": template("workers")}}
    st, body = admin.request("POST", f"{apps}/deployments", dep)
    assert st == 201, (st, body)

    def running(sel, n):
        _, pl = admin.request("GET", f"{core}/pods?labelSelector={sel}")
        ps = pl["items"]
        ok = len(ps) == n and all(p["status"].get("phase") == "Running" and p["status"].get("podIP")
                                  and not p["metadata"].get("deletionTimestamp") for p in ps)
        return ps if ok else None
    ps = wait("3 running pods", lambda: running("app=workers", 3))
    # One pod marked as a victim would be: the cost, our mark, and the prior cost it had.
    victim = ps[1]["metadata"]["name"]
    admin.request("PATCH", f"{core}/pods/{ps[0]['metadata']['name']}",
                  {"metadata": {"annotations": {COST: "100"}}}, MERGE)
    save("pod_patch_mark.json", admin, "PATCH", f"{core}/pods/{victim}",
         {"metadata": {"annotations": {COST: "-2147483648", "sparkscale.io/victim": "alpha 1/7",
                                       "sparkscale.io/prior-deletion-cost": "5"}}}, MERGE, want=200)
    scale = save("scale_deployment.json", admin, "GET", f"{apps}/deployments/workers/scale", want=200)
    save("pods_deployment.json", admin, "GET", f"{core}/pods?labelSelector=app%3Dworkers&limit=500",
         want=200)
    page = save("pods_page1.json", admin, "GET", f"{core}/pods?labelSelector=app%3Dworkers&limit=2",
                want=200)
    save("pods_page2.json", admin, "GET",
         f"{core}/pods?labelSelector=app%3Dworkers&limit=2&continue="
         + urllib.request.quote(page["metadata"]["continue"], safe=""), want=200)
    save("pods_empty.json", admin, "GET", f"{core}/pods?labelSelector=app%3Dnothing&limit=500",
         want=200)
    put = {"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": "workers", "namespace": ns,
                        "resourceVersion": scale["metadata"]["resourceVersion"],
                        "uid": scale["metadata"]["uid"]},
           "spec": {"replicas": 3}}
    put["spec"]["replicas"] = 5
    save("scale_put_dryrun.json", admin, "PUT", f"{apps}/deployments/workers/scale?dryRun=All", put,
         want=200)
    put["spec"]["replicas"] = 4
    save("scale_put.json", admin, "PUT", f"{apps}/deployments/workers/scale", put, want=200)
    save("status_409_conflict.json", admin, "PUT", f"{apps}/deployments/workers/scale", put, want=409)
    bad_uid = json.loads(json.dumps(put))
    bad_uid["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    bad_uid["metadata"].pop("resourceVersion")
    save("status_409_uid.json", admin, "PUT", f"{apps}/deployments/workers/scale", bad_uid, want=409)
    save("status_403_forbidden.json", user2, "GET", f"{apps}/deployments/workers/scale", want=403)
    bad = Client(env["SS_K8S_API"], "not-a-valid-token", env["SS_K8S_CA"])
    save("status_401_unauthorized.json", bad, "GET", f"{apps}/deployments/workers/scale", want=401)
    save("status_404_notfound.json", admin, "GET", f"{apps}/deployments/nosuch/scale", want=404)
    save("status_422_invalid.json", admin, "PATCH", f"{apps}/deployments/workers/scale",
         {"spec": {"replicas": -1}}, MERGE, want=422)
    save("status_422_cost.json", admin, "PATCH", f"{core}/pods/{victim}",
         {"metadata": {"annotations": {COST: "cheap"}}}, MERGE, want=422)
    save("scale_patch.json", admin, "PATCH", f"{apps}/deployments/workers/scale",
         {"spec": {"replicas": 2}}, MERGE, want=200)
    # Pods while the controller removes two: some terminating (deletionTimestamp set).
    st, body = admin.request("GET", f"{core}/pods?labelSelector=app%3Dworkers")
    save("pods_terminating.json", admin, "GET", f"{core}/pods?labelSelector=app%3Dworkers&limit=500")

    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "sworkers", "namespace": ns},
           "spec": {"replicas": 3, "serviceName": "sworkers",
                    "selector": {"matchLabels": {"app": "sworkers"}}, "template": template("sworkers")}}
    st, body = admin.request("POST", f"{apps}/statefulsets", sts)
    assert st == 201, (st, body)
    wait("3 StatefulSet pods", lambda: running("app=sworkers", 3))
    save("scale_statefulset.json", admin, "GET", f"{apps}/statefulsets/sworkers/scale", want=200)
    save("pods_statefulset.json", admin, "GET", f"{core}/pods?labelSelector=app%3Dsworkers&limit=500",
         want=200)
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "rworkers", "namespace": ns},
          "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "rworkers"}},
                   "template": template("rworkers")}}
    st, body = admin.request("POST", f"{apps}/replicasets", rs)
    assert st == 201, (st, body)
    save("scale_replicaset_zero.json", admin, "GET", f"{apps}/replicasets/rworkers/scale", want=200)

    with open(os.path.join(out, "responses.txt"), "w") as f:
        f.write("# file\trequest\tstatus\tcontent-type\tbytes\n")
        f.write("\n".join(log) + "\n")
    print(f"wrote {len(log)} answers to {out}")


if __name__ == "__main__":
    main()
