#!/usr/bin/env python3
"""The actuator's Kubernetes backend against a real control plane (run_k8s_e2e.sh starts it).

Usage: python3 tests/kubernetes/e2e_checks.py DIR/env BUILD_DIR
Needs kubelet_sim on namespace "spark" and kubectl in $SS_K8S_BIN. The manifests of
deploy/kubernetes/ are applied (server-side apply), and the backend runs with the
manifest's ServiceAccount token as in-cluster credentials (KUBERNETES_SERVICE_HOST/PORT
and a service-account directory), through tests/kubernetes/k8s_drive.
Exit 0 when every check passed.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubelet_sim import Client, read_env_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
NS = "spark"
COST = "controller.kubernetes.io/pod-deletion-cost"
MARK = "sparkscale.io/victim"
MERGE = "application/merge-patch+json"


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def wait(what, fn, timeout=60.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


class E2E:
    def __init__(self, env, build):
        self.env = env
        self.admin = Client.from_env(env)
        self.drive = os.path.join(build, "tests", "kubernetes", "k8s_drive")
        self.kubectl = os.path.join(env["SS_K8S_BIN"], "kubectl")
        self.work = tempfile.mkdtemp(prefix="k8s-e2e-", dir=env["SS_K8S_DIR"])
        self.sa_dir = os.path.join(self.work, "serviceaccount")
        self.apps = f"/apis/apps/v1/namespaces/{NS}"
        self.core = f"/api/v1/namespaces/{NS}"
        self.sa = None

    # ------------------------------------------------------------ helpers
    def kube(self, *args):
        r = subprocess.run([self.kubectl, "--kubeconfig", self.env["SS_K8S_KUBECONFIG"], *args],
                           capture_output=True, text=True)
        expect(r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def run(self, *args, config=None, expect_rc=None):
        """k8s_drive with in-cluster credentials of the actuator's ServiceAccount; returns the outcome."""
        host, port = self.env["SS_K8S_API"].split("//")[1].rsplit(":", 1)
        env = dict(os.environ, KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port,
                   SPARKSCALE_SERVICEACCOUNT_DIR=self.sa_dir)
        r = subprocess.run([self.drive, "--config", config or self.config, *args],
                           capture_output=True, text=True, env=env, timeout=120)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        expect(lines, f"k8s_drive {' '.join(args)}: no outcome (rc {r.returncode}): {r.stderr[-800:]}")
        out = json.loads(lines[-1])
        out["rc"] = r.returncode
        out["stderr"] = r.stderr
        if expect_rc is not None:
            expect(r.returncode == expect_rc, f"k8s_drive {' '.join(args)}: rc {r.returncode} "
                   f"(want {expect_rc}): {out['summary'] or out['error']}")
        # Secrets never reach the logs.
        expect(self.sa["token"] not in r.stderr and self.sa["token"] not in r.stdout,
               "the service-account token appeared in the output")
        return out

    def pods(self, selector):
        st, body = self.admin.request("GET", f"{self.core}/pods?labelSelector={selector}")
        expect(st == 200, f"list pods: HTTP {st}")
        return [p for p in body["items"] if not p["metadata"].get("deletionTimestamp")]

    def running(self, selector, n):
        ps = self.pods(selector)
        ok = len(ps) == n and all(p["status"].get("phase") == "Running" and p["status"].get("podIP")
                                  for p in ps)
        return ps if ok else None

    def scale_to(self, kind, name, n, selector):
        st, body = self.admin.request("PATCH", f"{self.apps}/{kind}/{name}/scale",
                                      {"spec": {"replicas": n}}, MERGE)
        expect(st == 200, f"admin scale {kind}/{name} to {n}: HTTP {st}: {body}")
        return wait(f"{n} running pods of {name}", lambda: self.running(selector, n))

    def ip_of(self, pods):
        return {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}

    def no_marks(self, selector):
        for p in self.pods(selector):
            ann = p["metadata"].get("annotations") or {}
            expect(MARK not in ann and ann.get(COST) != "-2147483648",
                   f"pod {p['metadata']['name']} still carries our mark: {ann}")

    def token(self):
        st, tr = self.admin.request("POST", "/api/v1/namespaces/sparkscale/serviceaccounts/"
                                    "sparkscale-actuator/token",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                     "spec": {"expirationSeconds": 3600}})
        expect(st == 201, f"TokenRequest for sparkscale-actuator: HTTP {st}: {tr}")
        return tr["status"]["token"]

    def can(self, verb, resource, sub=None, ns=NS):
        """SelfSubjectAccessReview as the actuator's ServiceAccount."""
        c = Client(self.env["SS_K8S_API"], self.sa["token"], self.env["SS_K8S_CA"])
        attrs = {"namespace": ns, "verb": verb, "resource": resource}
        if resource in ("deployments", "statefulsets", "replicasets"):
            attrs["group"] = "apps"
        if sub:
            attrs["subresource"] = sub
        st, body = c.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                             {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                              "spec": {"resourceAttributes": attrs}})
        expect(st == 201, f"SelfSubjectAccessReview: HTTP {st}")
        return body["status"].get("allowed", False)

    # ------------------------------------------------------------ checks
    def a_manifests_apply(self):
        """(a) the shipped manifests apply to the real API server (server-side apply)"""
        out = []
        for f in ("sparkscaled.yaml", "spark-example.yaml", "sparkscale-actuator.yaml", "actuator-rbac.yaml"):
            out.append(self.kube("apply", "--server-side", "--field-manager=sparkscale-e2e",
                                 "-f", os.path.join(ROOT, "deploy", "kubernetes", f)))
        objs = sum(len(o.strip().splitlines()) for o in out)
        # The actuator's identity: a TokenRequest token and the CA, laid out as the kubelet
        # mounts them, and the ConfigMap's own configuration plus two more targets.
        os.makedirs(self.sa_dir)
        self.sa = {"token": self.token()}
        with open(os.path.join(self.sa_dir, "token"), "w") as f:
            f.write(self.sa["token"])
        shutil.copy(self.env["SS_K8S_CA"], os.path.join(self.sa_dir, "ca.crt"))
        with open(os.path.join(self.sa_dir, "namespace"), "w") as f:
            f.write("sparkscale")
        cm = json.loads(self.kube("get", "configmap", "-n", "sparkscale", "sparkscale-actuator", "-o", "json"))
        text = cm["data"]["sparkscale.yaml"]
        expect("kubeconfig: \"\"" in text, "the shipped configuration is not in-cluster")
        text += ("  - name: beta\n    target: { kind: kubernetes, namespace: spark, workload: statefulset/beta-worker }\n"
                 "  - name: gamma\n    target: { kind: kubernetes, namespace: spark, workload: replicaset/gamma-worker }\n")
        self.config = os.path.join(self.work, "actuator.yaml")
        with open(self.config, "w") as f:
            f.write(text)
        # The example's workers run (the simulator plays their kubelet).
        ps = wait("2 alpha workers running", lambda: self.running("app.kubernetes.io/instance=alpha,"
                                                                   "app.kubernetes.io/name=spark-worker", 2))
        return f"{objs} objects applied; alpha-worker pods {sorted(self.ip_of(ps))}"

    SEL = "app.kubernetes.io/instance=alpha,app.kubernetes.io/name=spark-worker"

    def b_deployment_victims_go(self):
        """(b) Deployment 5 -> 3: exactly the two victims' pods go; the marks are gone after"""
        ps = self.scale_to("deployments", "alpha-worker", 5, self.SEL)
        by_age = sorted(ps, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        # The oldest and a middle one: the controller's own ranking would keep the oldest.
        victims = [by_age[0]["status"]["podIP"], by_age[2]["status"]["podIP"]]
        names = self.ip_of(ps)
        out = self.run("resize", "alpha", "3", "--victim", victims[0], "--victim", victims[1],
                       "--decision", "alpha e2e/1", expect_rc=0)
        expect(out["code"] == "applied" and out["before"] == 5 and out["after"] == 3, f"outcome {out['summary']}")
        expect(out["confirmed"], "the removals were not confirmed")
        gone = sorted(r["name"] for r in out["removed"])
        expect(gone == sorted(names[v] for v in victims), f"removed {gone}, victims {victims}")
        expect(out["removed_other"] == 0, out["summary"])
        left = wait("3 alpha pods", lambda: self.running(self.SEL, 3))
        expect(not set(victims) & set(self.ip_of(left)), "a victim survived")
        self.no_marks(self.SEL)
        return out["summary"]

    def c_partial_keeps_busy(self):
        """(c) asked to drop 2 with 1 idle worker: only the idle one's pod goes (partial)"""
        ps = self.pods(self.SEL)
        idle = ps[1]["status"]["podIP"]
        out = self.run("resize", "alpha", "1", "--victim", idle, expect_rc=3)
        expect(out["code"] == "partial" and out["after"] == 2, out["summary"])
        expect([r["ip"] for r in out["removed"]] == [idle], f"removed {out['removed']}")
        left = wait("2 alpha pods", lambda: self.running(self.SEL, 2))
        expect(sorted(self.ip_of(left)) == sorted(p["status"]["podIP"] for p in ps if p["status"]["podIP"] != idle),
               "a pod other than the idle one went")
        # Nobody idle: held, nothing written.
        out = self.run("resize", "alpha", "1", expect_rc=4)
        expect(out["code"] == "held" and "known idle" in out["reason"], out["summary"])
        expect(len(self.pods(self.SEL)) == 2, "a pod went on a hold")
        return out["summary"]

    def d_dry_run(self):
        """(d) dry run: validated by the API server (dryRun=All), nothing changes"""
        st, before = self.admin.request("GET", f"{self.apps}/deployments/alpha-worker")
        ps = self.pods(self.SEL)
        out = self.run("resize", "alpha", "1", "--victim", ps[0]["status"]["podIP"], "--dry-run", expect_rc=0)
        expect(out["dry_run"] and out["after"] == 1, out["summary"])
        time.sleep(1.0)
        st, after = self.admin.request("GET", f"{self.apps}/deployments/alpha-worker")
        expect(after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"],
               "the Deployment changed")
        expect(sorted(p["metadata"]["name"] for p in self.pods(self.SEL)) ==
               sorted(p["metadata"]["name"] for p in ps), "pods changed")
        self.no_marks(self.SEL)
        return "replicas 2 -> 1 validated, Deployment resourceVersion and pods unchanged, no marks left"

    def e_conflicting_writer(self):
        """(e) a writer racing the actuator: 409s are re-read and retried; only victims go"""
        self.scale_to("deployments", "alpha-worker", 4, self.SEL)
        stop = threading.Event()
        writes = [0]

        def bump():   # changes the Deployment's resourceVersion (and so the Scale's) non-stop
            c = Client.from_env(self.env)
            i = 0
            while not stop.is_set():
                i += 1
                st, _ = c.request("PATCH", f"{self.apps}/deployments/alpha-worker",
                                  {"metadata": {"annotations": {"e2e/racer": str(i)}}}, MERGE)
                if st == 200:
                    writes[0] += 1
        threads = [threading.Thread(target=bump, daemon=True)]
        for t in threads:
            t.start()
        conflicts, runs = 0, 0
        try:
            for _ in range(5):
                ps = self.pods(self.SEL)
                victim = ps[-1]["status"]["podIP"]
                n = len(ps)
                out = self.run("resize", "alpha", str(n - 1), "--victim", victim)
                runs += 1
                expect(out["code"] == "applied", out["summary"] or out["error"])
                expect([r["ip"] for r in out["removed"]] == [victim], f"removed {out['removed']}")
                expect(out["removed_other"] == 0, out["summary"])
                conflicts += out["conflicts"]
                wait(f"{n - 1} alpha pods", lambda: self.running(self.SEL, n - 1))
                if conflicts:
                    break
                self.scale_to("deployments", "alpha-worker", n, self.SEL)
        finally:
            stop.set()
            for t in threads:
                t.join()
        expect(conflicts > 0, f"no 409 in {runs} runs against {writes[0]} racing writes")
        self.no_marks(self.SEL)
        return f"{conflicts} conflict(s) retried in {runs} run(s) against {writes[0]} racing writes; only victims went"

    def f_statefulset(self):
        """(f) StatefulSet: holds while the highest ordinal is busy, shrinks when it is idle"""
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "beta-worker", "namespace": NS},
               "spec": {"replicas": 3, "serviceName": "beta-worker",
                        "selector": {"matchLabels": {"app": "beta-worker"}},
                        "template": {"metadata": {"labels": {"app": "beta-worker"}},
                                     "spec": {"containers": [{"name": "w", "image": "spark:e2e"}]}}}}
        st, body = self.admin.request("POST", f"{self.apps}/statefulsets", sts)
        expect(st == 201, f"create statefulset: HTTP {st}: {body}")
        ps = wait("3 beta pods", lambda: self.running("app=beta-worker", 3))
        ip = {p["metadata"]["name"]: p["status"]["podIP"] for p in ps}
        out = self.run("resize", "beta", "2", "--victim", ip["beta-worker-0"], expect_rc=4)
        expect(out["code"] == "held" and "beta-worker-2" in out["reason"], out["summary"])
        expect(len(self.pods("app=beta-worker")) == 3, "a pod went on a hold")
        out = self.run("resize", "beta", "1", "--victim", ip["beta-worker-2"], "--victim", ip["beta-worker-0"],
                       expect_rc=3)
        expect(out["after"] == 2 and [r["name"] for r in out["removed"]] == ["beta-worker-2"], out["summary"])
        wait("2 beta pods", lambda: self.running("app=beta-worker", 2))
        return out["summary"]

    def g_replicaset(self):
        """(g) ReplicaSet target: the victim's pod goes"""
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "gamma-worker", "namespace": NS},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "gamma-worker"}},
                       "template": {"metadata": {"labels": {"app": "gamma-worker"}},
                                    "spec": {"containers": [{"name": "w", "image": "spark:e2e"}]}}}}
        st, body = self.admin.request("POST", f"{self.apps}/replicasets", rs)
        expect(st == 201, f"create replicaset: HTTP {st}: {body}")
        ps = wait("3 gamma pods", lambda: self.running("app=gamma-worker", 3))
        victim = ps[0]["status"]["podIP"]
        out = self.run("resize", "gamma", "2", "--victim", victim, expect_rc=0)
        expect([r["ip"] for r in out["removed"]] == [victim], out["summary"])
        wait("2 gamma pods", lambda: self.running("app=gamma-worker", 2))
        return out["summary"]

    # Which operation needs which (resource, verb) of the shipped Role.
    NEEDS = [
        ("deployments/scale", "get", ["read", "alpha"]),
        ("deployments/scale", "update", ["resize", "alpha", "4"]),
        ("statefulsets/scale", "get", ["read", "beta"]),
        ("statefulsets/scale", "update", ["resize", "beta", "3"]),
        ("replicasets/scale", "get", ["read", "gamma"]),
        ("replicasets/scale", "update", ["resize", "gamma", "3"]),
        ("pods", "list", ["resize", "alpha", "2"]),
        ("pods", "patch", ["resize", "alpha", "2", "--victim", "VICTIM"]),
    ]

    def h_rbac_minimal(self):
        """(h) the shipped Role: every verb it grants is needed, and one more verb is denied"""
        role_path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles/sparkscale-actuator"
        st, role = self.admin.request("GET", role_path)
        expect(st == 200, f"GET role: HTTP {st}")
        shipped = role["rules"]
        granted = sorted((r, v) for rule in shipped for r in rule["resources"] for v in rule["verbs"])
        expect(granted == sorted((r, v) for r, v, _ in self.NEEDS),
               f"the shipped Role grants {granted}: the test covers {sorted((r, v) for r, v, _ in self.NEEDS)}")
        # Denied: more than the Role gives.
        for verb, res, sub, ns in (("delete", "deployments", None, NS), ("update", "deployments", None, NS),
                                   ("get", "pods", None, NS), ("delete", "pods", None, NS),
                                   ("patch", "deployments", "scale", NS), ("list", "pods", None, "default"),
                                   ("create", "pods", None, NS), ("list", "secrets", None, NS)):
            expect(not self.can(verb, res, sub, ns), f"{verb} {res}{'/' + sub if sub else ''} in {ns} is allowed")
        c = Client(self.env["SS_K8S_API"], self.sa["token"], self.env["SS_K8S_CA"])
        st, body = c.request("DELETE", f"{self.apps}/deployments/alpha-worker")
        expect(st == 403, f"DELETE deployment as the actuator: HTTP {st}")
        denied_msg = body.get("message", "")
        # Needed: take each verb away in turn; the operation that uses it is refused.
        self.scale_to("deployments", "alpha-worker", 3, self.SEL)
        results = []
        try:
            for res, verb, args in self.NEEDS:
                rules = []
                for rule in shipped:
                    rs = [r for r in rule["resources"]]
                    vs = [v for v in rule["verbs"]]
                    if res in rs and verb in vs:
                        others = [r for r in rs if r != res]
                        if others:
                            rules.append({**rule, "resources": others})
                        if len(vs) > 1:
                            rules.append({**rule, "resources": [res], "verbs": [v for v in vs if v != verb]})
                    else:
                        rules.append(rule)
                role["rules"] = rules
                st, body = self.admin.request("PUT", role_path, role)
                expect(st == 200, f"PUT role without {verb} {res}: HTTP {st}: {body}")
                role = body
                r, _, sub = res.partition("/")
                wait(f"{verb} {res} to be denied", lambda: not self.can(verb, r, sub or None), timeout=15)
                a = [x if x != "VICTIM" else self.pods(self.SEL)[0]["status"]["podIP"] for x in args]
                out = self.run(*a)
                expect(out["code"] == "failed" and "403" in out["error"] and "forbidden" in out["error"],
                       f"without {verb} {res}: {out['summary'] or out['error']}")
                results.append(f"{verb} {res}")
        finally:
            role["rules"] = shipped
            st, _ = self.admin.request("PUT", role_path, role)
            expect(st == 200, "restoring the shipped Role")
        wait("the shipped Role again", lambda: self.can("patch", "pods"), timeout=15)
        out = self.run("read", "alpha", expect_rc=0)
        return (f"each of {len(results)} verbs is needed (403 without it); denied beyond the Role, e.g. "
                f"\"{denied_msg[:90]}\"")


def main():
    if len(sys.argv) != 3:
        print("usage: e2e_checks.py DIR/env BUILD_DIR", file=sys.stderr)
        return 2
    e = E2E(read_env_file(sys.argv[1]), sys.argv[2])
    checks = [e.a_manifests_apply, e.b_deployment_victims_go, e.c_partial_keeps_busy, e.d_dry_run,
              e.e_conflicting_writer, e.f_statefulset, e.g_replicaset, e.h_rbac_minimal]
    passed = failed = 0
    for check in checks:
        t = time.monotonic()
        title = check.__doc__.strip()
        try:
            detail = check()
            passed += 1
            print(f"PASS {title} [{time.monotonic() - t:.1f} s]: {detail}", flush=True)
        except Exception as ex:  # report every check
            failed += 1
            print(f"FAIL {title} [{time.monotonic() - t:.1f} s]: {type(ex).__name__}: {ex}", flush=True)
            if check is e.a_manifests_apply:
                break
    print(f"k8s e2e: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
