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
from checks import expect, wait  # noqa: E402
from kubelet_sim import Client, read_env_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
NS = "spark"
COST = "controller.kubernetes.io/pod-deletion-cost"
MARK = "sparkscale.io/victim"
MERGE = "application/merge-patch+json"


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


class ActuatorE2E:
    """sparkscale-actuator itself: decisions from Kafka (librdkafka's mock cluster in its own
    process, k8s_bus), fixture Spark masters that say which workers are busy, the cluster's
    pods in the real API server, audit records read back with sparkscalectl."""

    EPOCH = "1796000000000"

    def __init__(self, e2e, build):
        self.e = e2e
        self.build = build
        self.dir = e2e.env["SS_K8S_DIR"]
        self.bus = os.path.join(build, "tests", "kubernetes", "k8s_bus")
        self.ctl = os.path.join(build, "tools", "sparkscalectl", "sparkscalectl")
        self.actuator = os.path.join(build, "actuator", "sparkscale-actuator")
        self.masters = {}
        self.seq = 0
        self.published = []   # (cluster, seq)
        self.busy_pods = set()

    def spawn(self, name, argv):
        """A background process the control plane's stop stops (pid file in DIR)."""
        log = open(os.path.join(self.dir, name + ".log"), "w")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
        with open(os.path.join(self.dir, name + ".pid"), "w") as f:
            f.write(f"{p.pid}\n")
        return p

    def master(self, cluster, workers, on_kill=None):
        port = self.masters[cluster]
        import urllib.request
        def post(path, body):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                         method="POST")
            urllib.request.urlopen(req, timeout=5).read()
        post("/_fixture/workers", workers)
        if on_kill:
            post("/_fixture/on_kill", on_kill)
        for w in workers:
            if w.get("coresused"):
                self.busy_pods.add(w["pod"])

    def decide(self, cluster, desired, current, dry_run=False):
        self.seq += 1
        argv = [self.bus, "decide", self.bootstrap, cluster, self.EPOCH, str(self.seq), str(desired),
                str(current)] + (["--dry-run"] if dry_run else [])
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        expect(r.returncode == 0, f"k8s_bus decide: {r.stderr}")
        self.published.append((cluster, self.seq))
        return self.seq

    def audits(self):
        r = subprocess.run([self.ctl, "audit", "--brokers", self.bootstrap, "--json", "--wait-s", "5"],
                           capture_output=True, text=True, timeout=60)
        out = []
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                if rec.get("type") == "result":
                    out.append(rec)
        return out

    def audit_of(self, seq, timeout=60):
        def find():
            for a in self.audits():
                if str(a["decision_epoch"]) == self.EPOCH and a["decision_sequence"] == seq:
                    return a
            return None
        return wait(f"the audit record of decision #{seq}", find, timeout=timeout, every=0.5)

    def workers(self, pods, busy_ips):
        return [{"host": p["status"]["podIP"], "pod": p["metadata"]["name"],
                 "coresused": 2 if p["status"]["podIP"] in busy_ips else 0} for p in pods]

    def alive(self, selector):
        return {p["metadata"]["name"] for p in self.e.pods(selector)}

    # ------------------------------------------------------------ checks
    def i_start(self):
        """(i) the actuator starts under the manifest's ServiceAccount (in-cluster) on Kafka"""
        mock = self.spawn("k8s-bus-mock", [self.bus, "mock", self.dir + "/"])
        line = mock.stdout.readline()
        expect(line.startswith("bootstrap "), f"k8s_bus mock: {line!r}")
        self.bootstrap = line.split()[1]
        for c in ("alpha", "beta"):
            m = self.spawn(f"spark-master-{c}", ["python3", os.path.join(HERE, "spark_master_fixture.py"),
                                                 "--pid-file", os.path.join(self.dir, f"spark-master-{c}.pid")])
            self.masters[c] = int(m.stdout.readline().split()[1])
        cfg = os.path.join(self.e.work, "sparkscale-actuator.yaml")
        with open(cfg, "w") as f:
            f.write(f"""kafka: {{ brokers: "{self.bootstrap}" }}
actuator:
  http: "127.0.0.1:0"
  id: e2e-actuator
  decommission: true
  decommission_timeout_s: 10
  kubernetes: {{ kubeconfig: "" }}
clusters:
  - name: alpha
    spark_master: "http://127.0.0.1:{self.masters['alpha']}"
    target: {{ kind: kubernetes, namespace: spark, workload: deployment/alpha-worker }}
  - name: beta
    spark_master: "http://127.0.0.1:{self.masters['beta']}"
    target: {{ kind: kubernetes, namespace: spark, workload: statefulset/beta-worker }}
""")
        host, port = self.e.env["SS_K8S_API"].split("//")[1].rsplit(":", 1)
        env = dict(os.environ, KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port,
                   SPARKSCALE_SERVICEACCOUNT_DIR=self.e.sa_dir)
        log = open(os.path.join(self.dir, "sparkscale-actuator.log"), "w")
        p = subprocess.Popen([self.actuator, "--config", cfg], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, env=env)
        with open(os.path.join(self.dir, "sparkscale-actuator.pid"), "w") as f:
            f.write(f"{p.pid}\n")
        self.proc = p
        def joined():
            expect(p.poll() is None, "sparkscale-actuator exited: " + open(log.name).read()[-1500:])
            return "assigned partition" in open(log.name).read()
        wait("the actuator to join its consumer group", joined, timeout=30)
        return f"bootstrap {self.bootstrap}; masters {self.masters}"

    SEL = E2E.SEL

    def j_deployment(self):
        """(j) decision in Kafka -> replicas changed -> the idle workers' pods gone, the busy ones kept -> one audit"""
        ps = self.e.scale_to("deployments", "alpha-worker", 4, self.SEL)
        ips = sorted(p["status"]["podIP"] for p in ps)
        busy = {ips[0], ips[2]}
        self.master("alpha", self.workers(ps, busy))
        seq = self.decide("alpha", 2, 4)
        a = self.audit_of(seq)
        expect(a["outcome"] == "APPLIED" and a["replicas_before"] == 4 and a["replicas_after"] == 2,
               f"audit {a}")
        removed = sorted(w["host"] for w in a["removed_workers"])
        expect(removed == sorted(set(ips) - busy), f"removed {removed}, busy {sorted(busy)}")
        left = wait("2 alpha pods", lambda: self.e.running(self.SEL, 2))
        expect({p["status"]["podIP"] for p in left} == busy, "the pods left are not the busy workers'")
        expect(a["backend"] == "kubernetes" and "removed" in a["note"], a["note"])
        return a["note"][:300]

    def k_busy_at_action(self):
        """(k) a victim that becomes busy between the decision and the action keeps its pod"""
        ps = self.e.scale_to("deployments", "alpha-worker", 5, self.SEL)
        by_ip = {p["status"]["podIP"]: p["metadata"]["name"] for p in ps}
        busy_before = {ip for ip, _ in by_ip.items() if by_ip[ip] in self.busy_pods}
        idle = sorted(set(by_ip) - busy_before)
        expect(len(idle) >= 3, f"idle workers {idle}")
        turns = idle[1]   # gets tasks as the decommission request arrives
        self.master("alpha", self.workers(ps, busy_before),
                    on_kill={"host": turns, "coresused": 2, "state": "DECOMMISSIONED"})
        self.busy_pods.add(by_ip[turns])
        seq = self.decide("alpha", 2, 5)
        a = self.audit_of(seq)
        removed = {w["host"] for w in a["removed_workers"]}
        kept = {w["host"]: w["reason"] for w in a["kept_workers"]}
        expect(turns not in removed and turns in kept, f"removed {removed}, kept {kept}")
        expect(removed == set(idle) - {turns}, f"removed {removed}, idle {idle}")
        expect(a["outcome"] == "APPLIED" and a["replicas_after"] == 3, f"audit {a}")
        time.sleep(1.0)
        alive = self.alive(self.SEL)
        expect(by_ip[turns] in alive, f"{by_ip[turns]} ({turns}) went although it was busy at the re-check")
        return f"{turns} kept ({kept[turns]}); removed {sorted(removed)}"

    def l_statefulset(self):
        """(l) StatefulSet through the actuator: held while the top ordinal is busy, then its pod goes"""
        ps = self.e.scale_to("statefulsets", "beta-worker", 3, "app=beta-worker")
        ip = {p["metadata"]["name"]: p["status"]["podIP"] for p in ps}
        self.master("beta", self.workers(ps, {ip["beta-worker-1"], ip["beta-worker-2"]}))
        seq = self.decide("beta", 2, 3)
        a = self.audit_of(seq)
        expect(a["workers_removed"] == 0 and a["replicas_after"] == 3 and "highest ordinal" in a["note"],
               f"audit {a}")
        expect(len(self.alive("app=beta-worker")) == 3, "a beta pod went on a hold")
        # the idle victim was not decommissioned first: a decommissioned worker
        # whose pod stays would never take work again
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.masters['beta']}/json/", timeout=5) as r:
            states = {w["host"]: w.get("state") for w in json.loads(r.read())["workers"]}
        expect(all(st == "ALIVE" for st in states.values()),
               f"workers decommissioned although the StatefulSet held: {states}")
        self.busy_pods.discard("beta-worker-2")
        self.master("beta", self.workers(ps, {ip["beta-worker-0"], ip["beta-worker-1"]}))
        seq = self.decide("beta", 2, 3)
        a = self.audit_of(seq)
        expect([w["host"] for w in a["removed_workers"]] == [ip["beta-worker-2"]] and a["replicas_after"] == 2,
               f"audit {a}")
        wait("beta-worker-2 gone", lambda: self.alive("app=beta-worker") == {"beta-worker-0", "beta-worker-1"})
        return "held with 'highest ordinal' busy; then beta-worker-2 (idle) removed"

    def m_dry_run(self):
        """(m) a dry-run decision: validated through the API server, audited as DRY_RUN, nothing changes"""
        ps = self.e.scale_to("deployments", "alpha-worker", 4, self.SEL)
        _, before = self.e.admin.request("GET", f"{self.e.apps}/deployments/alpha-worker")
        self.master("alpha", self.workers(ps, {p["status"]["podIP"] for p in ps
                                               if p["metadata"]["name"] in self.busy_pods}))
        seq = self.decide("alpha", len(ps) - 1, len(ps), dry_run=True)
        a = self.audit_of(seq)
        expect(a["outcome"] == "DRY_RUN", f"audit {a}")
        time.sleep(1.0)
        _, after = self.e.admin.request("GET", f"{self.e.apps}/deployments/alpha-worker")
        expect(after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "the Deployment changed")
        expect(self.alive(self.SEL) == {p["metadata"]["name"] for p in ps}, "pods changed")
        self.e.no_marks(self.SEL)
        return a["note"][:200]

    def n_bars(self):
        """(n) bars: one audit record per consumed decision; no pod of a busy worker was deleted"""
        audits = self.audits()
        for cluster, seq in self.published:
            n = sum(1 for a in audits if str(a["decision_epoch"]) == self.EPOCH and a["decision_sequence"] == seq
                    and a["cluster"] == cluster)
            expect(n == 1, f"decision {cluster} #{seq} has {n} audit records")
        alive = self.alive(self.SEL) | self.alive("app=beta-worker")
        gone = sorted(self.busy_pods - alive)
        expect(not gone, f"pods of busy workers deleted: {gone}")
        expect(self.proc.poll() is None, "the actuator died")
        return f"{len(self.published)} decisions, {len(self.published)} audit records; {len(self.busy_pods)} busy workers' pods all alive"

    def o_stop(self):
        """(o) SIGTERM stops the actuator cleanly (before its Kafka goes away)"""
        self.proc.terminate()
        try:
            rc = self.proc.wait(60)
        finally:
            os.unlink(os.path.join(self.dir, "sparkscale-actuator.pid"))
        log = open(os.path.join(self.dir, "sparkscale-actuator.log")).read()
        expect(rc == 0, f"exit status {rc}: {log[-800:]}")
        expect("AddressSanitizer" not in log and "runtime error" not in log, "sanitizer report in the log")
        return "exit 0"


def main():
    if len(sys.argv) != 3:
        print("usage: e2e_checks.py DIR/env BUILD_DIR", file=sys.stderr)
        return 2
    e = E2E(read_env_file(sys.argv[1]), sys.argv[2])
    checks = [e.a_manifests_apply, e.b_deployment_victims_go, e.c_partial_keeps_busy, e.d_dry_run,
              e.e_conflicting_writer, e.f_statefulset, e.g_replicaset, e.h_rbac_minimal]
    if os.access(os.path.join(sys.argv[2], "actuator", "sparkscale-actuator"), os.X_OK):
        a = ActuatorE2E(e, sys.argv[2])
        checks += [a.i_start, a.j_deployment, a.k_busy_at_action, a.l_statefulset, a.m_dry_run, a.n_bars,
                   a.o_stop]
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
            if check.__name__ in ("a_manifests_apply", "i_start"):
                break
    print(f"k8s e2e: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
