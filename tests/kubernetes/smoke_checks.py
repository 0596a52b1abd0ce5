#!/usr/bin/env python3
"""The checks smoke.sh runs against a live control plane (real API calls, no fixtures).

Usage: python3 tests/kubernetes/smoke_checks.py DIR/env
Needs a kubelet simulator watching the namespace (smoke.sh starts kubelet_sim.py).
Exit 0 when every check passed.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import CheckFailed, expect, wait  # noqa: E402
from kubelet_sim import Client, read_env_file  # noqa: E402

COST = "controller.kubernetes.io/pod-deletion-cost"
MERGE = "application/merge-patch+json"


class Smoke:
    def __init__(self, env):
        self.env = env
        self.admin = Client.from_env(env)
        self.user1 = Client.from_env(env, "SS_K8S_USER1_TOKEN")
        self.user2 = Client.from_env(env, "SS_K8S_USER2_TOKEN")
        self.ns = env["SS_K8S_NAMESPACES"].split()[0]
        self.apps = f"/apis/apps/v1/namespaces/{self.ns}"
        self.core = f"/api/v1/namespaces/{self.ns}"
        self.victim = None
        self.stale_rv = None

    # ---------------------------------------------------------------- queries
    def pods(self, selector, client=None):
        st, body = (client or self.admin).request("GET", f"{self.core}/pods?labelSelector={selector}")
        expect(st == 200, f"list pods: HTTP {st}: {body}")
        return body["items"]

    def live_pods(self, selector):
        return [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]

    def running_pods(self, selector, n):
        """Exactly n pods, none terminating, all Running+Ready with distinct podIPs, or None."""
        ps = self.pods(selector)
        if len(ps) != n:
            return None
        for p in ps:
            st = p.get("status", {})
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
            if p["metadata"].get("deletionTimestamp") or st.get("phase") != "Running" \
                    or not st.get("podIP") or not ready:
                return None
        if len({p["status"]["podIP"] for p in ps}) != n:
            raise CheckFailed("two pods share a podIP: " + str([p["status"]["podIP"] for p in ps]))
        return ps

    def workload_ready(self, kind, name, n):
        st, d = self.admin.request("GET", f"{self.apps}/{kind}/{name}")
        expect(st == 200, f"GET {kind}/{name}: HTTP {st}")
        s = d.get("status", {})
        return (d["spec"]["replicas"] == n and s.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and s.get("replicas", 0) == n and s.get("readyReplicas", 0) == n)

    def scale_path(self, kind, name):
        return f"{self.apps}/{kind}/{name}/scale"

    # ---------------------------------------------------------------- checks
    def a_deployment_runs(self):
        """(a) a Deployment of 3 replicas gets 3 Running pods with podIPs"""
        dep = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "workers", "namespace": self.ns},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "workers"}},
                "template": {
                    "metadata": {"labels": {"app": "workers"}},
                    "spec": {"containers": [{"name": "worker", "image": "spark-worker:smoke"}]},
                },
            },
        }
        st, body = self.admin.request("POST", f"{self.apps}/deployments", dep)
        expect(st == 201, f"create deployment: HTTP {st}: {body}")
        ps = wait("3 Running pods with podIPs", lambda: self.running_pods("app=workers", 3))
        wait("deployment workers readyReplicas=3", lambda: self.workload_ready("deployments", "workers", 3))
        return "pods " + ", ".join(f"{p['metadata']['name']}={p['status']['podIP']}" for p in ps)

    def b_scale_has_selector(self):
        """(b) GET .../deployments/workers/scale returns status.selector"""
        st, sc = self.admin.request("GET", self.scale_path("deployments", "workers"))
        expect(st == 200, f"GET scale: HTTP {st}: {sc}")
        expect(sc.get("kind") == "Scale", f"kind {sc.get('kind')}")
        expect(sc["status"].get("selector") == "app=workers", f"status.selector {sc['status'].get('selector')!r}")
        expect(sc["spec"].get("replicas") == 3 and sc["status"].get("replicas") == 3, f"replicas in {sc}")
        return f"selector={sc['status']['selector']!r} replicas={sc['status']['replicas']} rv={sc['metadata']['resourceVersion']}"

    def c_deletion_cost_picks_victim(self):
        """(c) the pod with the lowest pod-deletion-cost is the one a scale-down to 2 removes"""
        ps = sorted(self.live_pods("app=workers"), key=lambda p: p["metadata"]["creationTimestamp"])
        expect(len(ps) == 3, f"{len(ps)} pods before the scale-down")
        # Neither the oldest nor the newest: the default ranking would not pick it by accident.
        victim = ps[1]["metadata"]["name"]
        for p in ps:
            name = p["metadata"]["name"]
            cost = "-100" if name == victim else "1000"
            st, body = self.admin.request("PATCH", f"{self.core}/pods/{name}",
                                          {"metadata": {"annotations": {COST: cost}}}, MERGE)
            expect(st == 200, f"annotate {name}: HTTP {st}: {body}")
        st, sc = self.admin.request("GET", self.scale_path("deployments", "workers"))
        expect(st == 200, f"GET scale: HTTP {st}")
        rv = sc["metadata"]["resourceVersion"]
        put = {"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "workers", "namespace": self.ns, "resourceVersion": rv},
               "spec": {"replicas": 2}}
        st, body = self.admin.request("PUT", self.scale_path("deployments", "workers"), put)
        expect(st == 200, f"PUT scale replicas=2 with rv {rv}: HTTP {st}: {body}")
        expect(body["spec"]["replicas"] == 2, f"PUT answered {body}")
        survivors = wait("2 Running pods after the scale-down",
                         lambda: self.running_pods("app=workers", 2))
        wait("deployment workers readyReplicas=2", lambda: self.workload_ready("deployments", "workers", 2))
        names = sorted(p["metadata"]["name"] for p in survivors)
        expect(victim not in names, f"{victim} (cost -100) survived; remaining {names}")
        expect(names == sorted(p["metadata"]["name"] for p in ps if p["metadata"]["name"] != victim),
               f"unexpected survivors {names}")
        self.victim, self.stale_rv = victim, rv
        return f"removed {victim} (cost -100), kept {names}"

    def d_stale_rv_conflicts(self):
        """(d) PUT scale with a stale resourceVersion returns 409"""
        expect(self.stale_rv, "needs check (c)")
        put = {"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "workers", "namespace": self.ns, "resourceVersion": self.stale_rv},
               "spec": {"replicas": 1}}
        st, body = self.admin.request("PUT", self.scale_path("deployments", "workers"), put)
        expect(st == 409, f"PUT with stale rv {self.stale_rv}: HTTP {st}: {body}")
        expect(body.get("reason") == "Conflict", f"reason {body.get('reason')}")
        _, sc = self.admin.request("GET", self.scale_path("deployments", "workers"))
        expect(sc["spec"]["replicas"] == 2, f"replicas changed to {sc['spec']['replicas']}")
        return f"409 {body.get('reason')}; replicas still 2"

    def e_dry_run_changes_nothing(self):
        """(e) PATCH scale with ?dryRun=All answers the new value and changes nothing"""
        _, before = self.admin.request("GET", f"{self.apps}/deployments/workers")
        st, body = self.admin.request("PATCH", self.scale_path("deployments", "workers") + "?dryRun=All",
                                      {"spec": {"replicas": 5}}, MERGE)
        expect(st == 200, f"dry-run PATCH: HTTP {st}: {body}")
        expect(body["spec"]["replicas"] == 5, f"dry-run answer {body['spec']}")
        time.sleep(1.0)  # let a (wrong) change reach the controllers
        _, after = self.admin.request("GET", f"{self.apps}/deployments/workers")
        expect(after["spec"]["replicas"] == 2, f"replicas now {after['spec']['replicas']}")
        expect(after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"],
               "the Deployment's resourceVersion moved")
        expect(len(self.pods("app=workers")) == 2, "the pod count changed")
        return "answered replicas=5; Deployment unchanged (same resourceVersion, 2 pods)"

    def f_rbac_scale_only(self):
        """(f) a user with only the scale Role can mark a victim and scale, and gets 403 deleting the Deployment"""
        user = self.env["SS_K8S_USER1"]
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "sparkscale-actuator", "namespace": self.ns},
            "rules": [
                {"apiGroups": ["apps"],
                 "resources": ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
                 "verbs": ["get", "update", "patch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch"]},
            ],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "sparkscale-actuator", "namespace": self.ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sparkscale-actuator"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{self.ns}"
        for path, obj in ((f"{rbac}/roles", role), (f"{rbac}/rolebindings", binding)):
            st, body = self.admin.request("POST", path, obj)
            expect(st == 201, f"create {obj['kind']}: HTTP {st}: {body}")
        sp = self.scale_path("deployments", "workers")
        # The authorizer's cache learns of the new binding within moments.
        wait("the RoleBinding to take effect", lambda: self.user1.request("GET", sp)[0] == 200, timeout=10)
        st, body = self.user1.request("PATCH", sp, {"spec": {"replicas": 3}}, MERGE)
        expect(st == 200, f"{user}: PATCH scale: HTTP {st}: {body}")
        wait("3 Running pods after the user's scale-up", lambda: self.running_pods("app=workers", 3))
        wait("deployment workers readyReplicas=3", lambda: self.workload_ready("deployments", "workers", 3))
        # The actuator's own flow, with only these rights: mark the victim, then scale
        # down with compare-and-swap. This time the victim is the oldest pod, the one
        # the default ranking would keep longest.
        ps = sorted(self.pods("app=workers", self.user1),
                    key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        victim = ps[0]["metadata"]["name"]
        for p in ps:
            name = p["metadata"]["name"]
            st, _ = self.user1.request("PATCH", f"{self.core}/pods/{name}",
                                       {"metadata": {"annotations": {COST: "-50" if name == victim else "1000"}}},
                                       MERGE)
            expect(st == 200, f"{user}: PATCH pod {name} annotation: HTTP {st}")
        st, sc = self.user1.request("GET", sp)
        expect(st == 200, f"{user}: GET scale: HTTP {st}")
        sc["spec"]["replicas"] = 2
        st, body = self.user1.request("PUT", sp, sc)
        expect(st == 200, f"{user}: PUT scale replicas=2: HTTP {st}: {body}")
        left = wait("2 Running pods after the user's scale-down", lambda: self.running_pods("app=workers", 2))
        names = sorted(p["metadata"]["name"] for p in left)
        expect(victim not in names, f"{victim} (cost -50) survived the user's scale-down; remaining {names}")
        st, body = self.user1.request("DELETE", f"{self.apps}/deployments/workers")
        expect(st == 403, f"{user}: DELETE deployment: HTTP {st} (want 403)")
        st, _ = self.user1.request("GET", f"{self.apps}/deployments/workers")
        expect(st == 403, f"{user}: GET deployment: HTTP {st} (want 403)")
        st, _ = self.user1.request("DELETE", f"{self.core}/pods/{names[0]}")
        expect(st == 403, f"{user}: DELETE pod: HTTP {st} (want 403)")
        other = self.env["SS_K8S_USER2"]
        st, _ = self.user2.request("GET", sp)
        expect(st == 403, f"{other} (no binding): GET scale: HTTP {st} (want 403)")
        wait("deployment workers readyReplicas=2", lambda: self.workload_ready("deployments", "workers", 2))
        return (f"{user} scaled 2->3, marked the oldest pod {victim} and scaled 3->2: it went; "
                f"403 on delete/get deployment and delete pod; {other} 403 on scale")

    def g_statefulset_highest_ordinal(self):
        """(g) a StatefulSet scale-down removes the highest ordinal (pod-deletion-cost is ignored)"""
        sts = {
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "sworkers", "namespace": self.ns},
            "spec": {
                "replicas": 3,
                "serviceName": "sworkers",
                "selector": {"matchLabels": {"app": "sworkers"}},
                "template": {
                    "metadata": {"labels": {"app": "sworkers"}},
                    "spec": {"containers": [{"name": "worker", "image": "spark-worker:smoke"}]},
                },
            },
        }
        st, body = self.admin.request("POST", f"{self.apps}/statefulsets", sts)
        expect(st == 201, f"create statefulset: HTTP {st}: {body}")
        ps = wait("3 Running StatefulSet pods", lambda: self.running_pods("app=sworkers", 3))
        wait("statefulset readyReplicas=3", lambda: self.workload_ready("statefulsets", "sworkers", 3))
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in ps}
        expect(sorted(uids) == ["sworkers-0", "sworkers-1", "sworkers-2"], f"pods {sorted(uids)}")
        st, _ = self.admin.request("PATCH", f"{self.core}/pods/sworkers-0",
                                   {"metadata": {"annotations": {COST: "-1000"}}}, MERGE)
        expect(st == 200, "annotate sworkers-0")
        st, body = self.admin.request("PATCH", self.scale_path("statefulsets", "sworkers"),
                                      {"spec": {"replicas": 2}}, MERGE)
        expect(st == 200, f"PATCH statefulset scale: HTTP {st}: {body}")
        left = wait("2 StatefulSet pods", lambda: self.running_pods("app=sworkers", 2))
        wait("statefulset readyReplicas=2", lambda: self.workload_ready("statefulsets", "sworkers", 2))
        now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in left}
        expect(sorted(now) == ["sworkers-0", "sworkers-1"], f"left {sorted(now)}")
        expect(all(uids[n] == now[n] for n in now), "a surviving pod was replaced")
        st, sc = self.admin.request("GET", self.scale_path("statefulsets", "sworkers"))
        expect(st == 200 and sc["status"].get("selector") == "app=sworkers", f"statefulset scale {sc}")
        return "removed sworkers-2, kept sworkers-0 (cost -1000) and sworkers-1"

    def h_not_ready_annotation(self):
        """(h) kubelet_sim reports a pod not Ready while it carries the not-ready annotation"""
        from kubelet_sim import NOT_READY_ANNOTATION as NR
        p = f"{self.core}/pods/sworkers-1"
        st, _ = self.admin.request("PATCH", p, {"metadata": {"annotations": {NR: "false"}}}, MERGE)
        expect(st == 200, "annotate sworkers-1 not ready")

        def ready_count(n):
            _, d = self.admin.request("GET", f"{self.apps}/statefulsets/sworkers")
            return d.get("status", {}).get("readyReplicas", 0) == n
        wait("statefulset readyReplicas=1", lambda: ready_count(1), timeout=30)
        st, _ = self.admin.request("PATCH", p, {"metadata": {"annotations": {NR: None}}}, MERGE)
        expect(st == 200, "remove the annotation")
        wait("statefulset readyReplicas=2 again", lambda: ready_count(2), timeout=30)
        return "readyReplicas 2 -> 1 -> 2"

    def i_cascading_delete(self):
        """(i) deleting the Deployment removes its ReplicaSet and pods (garbage collector)"""
        st, body = self.admin.request("DELETE", f"{self.apps}/deployments/workers",
                                      {"apiVersion": "v1", "kind": "DeleteOptions",
                                       "propagationPolicy": "Background"})
        expect(st == 200, f"DELETE deployment: HTTP {st}: {body}")

        def gone():
            _, rs = self.admin.request("GET", f"{self.apps}/replicasets?labelSelector=app=workers")
            return not rs["items"] and not self.pods("app=workers")
        wait("the ReplicaSet and its pods to go", gone, timeout=60)
        return "ReplicaSet and pods gone"

    def j_token_request(self):
        """(j) TokenRequest issues a ServiceAccount token the API server accepts"""
        st, tr = self.admin.request("POST", f"{self.core}/serviceaccounts/default/token",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                     "spec": {"expirationSeconds": 600}})
        expect(st == 201, f"TokenRequest: HTTP {st}: {tr}")
        sa = Client(self.env["SS_K8S_API"], tr["status"]["token"], self.env["SS_K8S_CA"])
        st, rev = sa.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        expect(st == 201, f"SelfSubjectReview with the token: HTTP {st}: {rev}")
        who = rev["status"]["userInfo"]["username"]
        expect(who == f"system:serviceaccount:{self.ns}:default", f"the token is {who}")
        return f"token authenticates as {who}"


def main():
    if len(sys.argv) != 2:
        print("usage: smoke_checks.py DIR/env", file=sys.stderr)
        return 2
    smoke = Smoke(read_env_file(sys.argv[1]))
    checks = [smoke.a_deployment_runs, smoke.b_scale_has_selector, smoke.c_deletion_cost_picks_victim,
              smoke.d_stale_rv_conflicts, smoke.e_dry_run_changes_nothing, smoke.f_rbac_scale_only,
              smoke.g_statefulset_highest_ordinal, smoke.h_not_ready_annotation,
              smoke.i_cascading_delete, smoke.j_token_request]
    passed = failed = 0
    for check in checks:
        t = time.monotonic()
        title = check.__doc__.strip()
        try:
            detail = check()
            passed += 1
            print(f"PASS {title} [{time.monotonic() - t:.1f} s]: {detail}", flush=True)
        except Exception as e:  # report every check, not only the first failure
            failed += 1
            print(f"FAIL {title} [{time.monotonic() - t:.1f} s]: {type(e).__name__}: {e}", flush=True)
    print(f"smoke: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
