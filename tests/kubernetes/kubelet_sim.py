#!/usr/bin/env python3
"""Plays the kubelet (and the scheduler) for a control plane that has neither.

What a kubelet does that Deployments, ReplicaSets and StatefulSets notice:
  * a new pod gets a node: bind it (pods/binding) to one simulated node;
  * a bound pod starts: patch pods/status to phase Running with a podIP
    (127.0.0.N, unique per pod), Ready/ContainersReady/Initialized/PodScheduled
    conditions True and a running containerStatus per container, so the
    controllers count it as ready and available;
  * a pod being deleted (metadata.deletionTimestamp set: graceful deletion waits
    for the kubelet) is removed: DELETE with gracePeriodSeconds=0, as the kubelet
    does once the containers stopped. Without this a scale-down never completes.

A pod annotated  kubelet-sim.sparkscale.test/ready: "false"  runs but is reported
not Ready (flip the annotation to change it); the controllers then see an
unavailable replica.

Python 3 standard library only. As a library:

    from kubelet_sim import Client, KubeletSim
    client = Client.from_env()                 # SS_K8S_API, SS_K8S_ADMIN_TOKEN, SS_K8S_CA
    with KubeletSim(client, namespace="sparkscale-test"):
        ...                                    # pods become Running and Ready

As a command (runs until SIGTERM/SIGINT):

    python3 tests/kubernetes/kubelet_sim.py --env DIR/env --namespace NS \\
        --pid-file DIR/kubelet-sim.pid &

control-plane.sh stop DIR also stops a simulator whose --pid-file is in DIR.
"""

import argparse
import datetime
import ipaddress
import json
import os
import shlex
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

NOT_READY_ANNOTATION = "kubelet-sim.sparkscale.test/ready"


class ApiError(Exception):
    def __init__(self, status, body, method, path):
        self.status = status
        self.body = body
        msg = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: HTTP {status}: {msg}")


class Client:
    """A minimal Kubernetes API client: bearer token, CA-verified TLS, JSON."""

    def __init__(self, api, token, ca_file, timeout=30.0):
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca_file)

    @classmethod
    def from_env(cls, env=None, token_var="SS_K8S_ADMIN_TOKEN"):
        """From SS_K8S_* variables (os.environ, or the given dict, e.g. read_env_file())."""
        env = os.environ if env is None else env
        try:
            return cls(env["SS_K8S_API"], env[token_var], env["SS_K8S_CA"])
        except KeyError as e:
            raise RuntimeError(f"{e.args[0]} is not set (source the control plane's DIR/env)") from None

    def open(self, method, path, body=None, content_type="application/json", timeout=None):
        """Returns the raw response (caller closes); raises ApiError on HTTP >= 400."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(req, context=self.ctx,
                                          timeout=self.timeout if timeout is None else timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(e.code, parsed, method, path) from None

    def request(self, method, path, body=None, content_type="application/json"):
        """Returns (status, parsed JSON body) for any status, never raises on HTTP errors."""
        try:
            with self.open(method, path, body, content_type) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except ApiError as e:
            return e.status, e.body

    def call(self, method, path, body=None, content_type="application/json"):
        """Like request() but raises ApiError on HTTP >= 400; returns the parsed body."""
        with self.open(method, path, body, content_type) as r:
            raw = r.read()
            return json.loads(raw) if raw else None


def read_env_file(path):
    """Parses the `export NAME='value'` lines of a control plane's DIR/env into a dict."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("export "):
                continue
            name, _, value = line[len("export "):].partition("=")
            parts = shlex.split(value)
            env[name] = parts[0] if parts else ""
    return env


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeletSim:
    """Watches pods (one namespace, or all when namespace is None) and acts as their kubelet."""

    def __init__(self, client, namespace=None, node_name="sparkscale-sim-node",
                 label_selector=None, first_ip="127.0.0.2", create_node=True, log=None):
        self.client = client
        self.namespace = namespace
        self.node_name = node_name
        self.label_selector = label_selector
        self.create_node = create_node
        self.log = log or (lambda msg: None)
        self._next_ip = int(ipaddress.IPv4Address(first_ip))
        self._last_ip = int(ipaddress.IPv4Address("127.255.255.254"))
        self._ips = {}          # pod uid -> IP handed out
        self._used = set()      # IPs in use
        self._stop = threading.Event()
        self._thread = None
        self._resp = None
        self.errors = []        # (time, message) of API calls that failed; tests may assert on it

    # ------------------------------------------------------------- lifecycle
    def start(self):
        """Starts the watch loop in a daemon thread; returns once the first list is handled."""
        if self.create_node:
            self.ensure_node()
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self.run, name="kubelet-sim", daemon=True)
        self._thread.start()
        if not self._synced.wait(30):
            raise RuntimeError("kubelet_sim: the first pod list did not finish in 30 s")
        return self

    def stop(self):
        self._stop.set()
        r = self._resp
        if r is not None:
            # Wake the watch thread out of its read: shut the socket down (closing the
            # response alone does not interrupt a blocked read).
            try:
                r.fp.raw._sock.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------- API paths
    def _pods_path(self):
        if self.namespace:
            return f"/api/v1/namespaces/{urllib.parse.quote(self.namespace)}/pods"
        return "/api/v1/pods"

    @staticmethod
    def _pod_path(pod):
        m = pod["metadata"]
        return f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}"

    def ensure_node(self):
        """Creates the simulated Node (Ready) if it is not there; bound pods name it."""
        path = f"/api/v1/nodes/{self.node_name}"
        status, _ = self.client.request("GET", path)
        if status == 200:
            return
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name,
                             "labels": {"kubernetes.io/hostname": self.node_name,
                                        "type": "kubelet-sim"}}}
        status, body = self.client.request("POST", "/api/v1/nodes", node)
        if status not in (201, 409):
            raise ApiError(status, body, "POST", "/api/v1/nodes")
        t = _now()
        st = {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet_sim", "lastHeartbeatTime": t,
                            "lastTransitionTime": t}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node_name}],
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"}}}
        self.client.request("PATCH", path + "/status", st, "application/merge-patch+json")

    # ------------------------------------------------------------- the loop
    def run(self):
        """List then watch, until stop(); re-lists when the watch expires (410) or breaks."""
        rv = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list()
                    if hasattr(self, "_synced"):
                        self._synced.set()
                rv = self._watch(rv)
            except Exception as e:  # network trouble, API restarts: back off and re-list
                if self._stop.is_set():
                    break
                self._error(f"watch loop: {e}")
                rv = None
                self._stop.wait(0.5)

    def _query(self, **extra):
        q = dict(extra)
        if self.label_selector:
            q["labelSelector"] = self.label_selector
        return "?" + urllib.parse.urlencode(q) if q else ""

    def _list(self):
        body = self.client.call("GET", self._pods_path() + self._query())
        for pod in body.get("items", []):
            self._remember_ip(pod)
        for pod in body.get("items", []):
            self.handle(pod)
        return body["metadata"]["resourceVersion"]

    def _watch(self, rv):
        q = self._query(watch="1", resourceVersion=rv, allowWatchBookmarks="true",
                        timeoutSeconds="60")
        # The socket timeout bounds how long stop() can take when no event comes.
        self._resp = self.client.open("GET", self._pods_path() + q, timeout=2.0)
        try:
            while not self._stop.is_set():
                try:
                    line = self._resp.readline()
                except (socket.timeout, TimeoutError):
                    return rv              # idle: reconnect from the same resourceVersion
                if not line:
                    return rv              # the server ended the watch (timeoutSeconds)
                ev = json.loads(line)
                typ, obj = ev.get("type"), ev.get("object", {})
                if typ == "ERROR":
                    if obj.get("code") == 410:
                        return None        # too old: re-list
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if typ in ("ADDED", "MODIFIED"):
                    self.handle(obj)
                elif typ == "DELETED":
                    self._forget(obj)
            return rv
        finally:
            try:
                self._resp.close()
            except Exception:
                pass
            self._resp = None

    # ------------------------------------------------------------- one pod
    def handle(self, pod):
        """Moves one pod one step along its life: bind, start, or finish deleting."""
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        try:
            if meta.get("deletionTimestamp"):
                self._delete(pod)
            elif status.get("phase") in ("Succeeded", "Failed"):
                return
            elif not spec.get("nodeName"):
                self._bind(pod)
            elif self._needs_status(pod):
                self._set_running(pod)
        except ApiError as e:
            if e.status not in (404, 409):   # gone, or someone got there first: the watch brings news
                self._error(str(e))
        except OSError as e:
            self._error(f"{meta.get('namespace')}/{meta.get('name')}: {e}")

    def _want_ready(self, pod):
        ann = pod["metadata"].get("annotations") or {}
        return ann.get(NOT_READY_ANNOTATION, "true").lower() != "false"

    def _needs_status(self, pod):
        st = pod.get("status", {})
        if st.get("phase") != "Running" or not st.get("podIP"):
            return True
        want = "True" if self._want_ready(pod) else "False"
        ready = [c for c in st.get("conditions", []) if c.get("type") == "Ready"]
        if not ready or ready[0].get("status") != want:
            return True
        names = {c["name"] for c in pod["spec"].get("containers", [])}
        have = {c.get("name") for c in st.get("containerStatuses", []) or []}
        return names != have

    def _bind(self, pod):
        m = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
        self.client.call("POST", self._pod_path(pod) + "/binding", binding)
        self.log(f"bound {m['namespace']}/{m['name']} to {self.node_name}")

    def _set_running(self, pod):
        m, spec = pod["metadata"], pod["spec"]
        old = pod.get("status", {})
        ip = old.get("podIP") or self._ip_for(m["uid"])
        ready = self._want_ready(pod)
        t = _now()
        started = old.get("startTime") or t

        def cond(typ, ok=True):
            prev = [c for c in old.get("conditions", []) if c.get("type") == typ]
            s = "True" if ok else "False"
            since = prev[0].get("lastTransitionTime") if prev and prev[0].get("status") == s else t
            return {"type": typ, "status": s, "lastProbeTime": None, "lastTransitionTime": since}

        def cstatus(c, running=True):
            st = {"name": c["name"], "image": c.get("image", ""),
                  "imageID": "kubelet-sim://" + c.get("image", ""),
                  "containerID": f"kubelet-sim://{m['uid']}/{c['name']}",
                  "restartCount": 0}
            if running:
                st.update(ready=ready, started=True, state={"running": {"startedAt": started}})
            else:
                st.update(ready=True, started=False,
                          state={"terminated": {"exitCode": 0, "reason": "Completed",
                                                "startedAt": started, "finishedAt": started}})
            return st

        status = {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "conditions": [cond("PodScheduled"), cond("Initialized"),
                           cond("ContainersReady", ready), cond("Ready", ready)],
            "containerStatuses": [cstatus(c) for c in spec.get("containers", [])],
        }
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [cstatus(c, False) for c in spec["initContainers"]]
        self.client.call("PATCH", self._pod_path(pod) + "/status", {"status": status},
                         "application/merge-patch+json")
        self.log(f"{m['namespace']}/{m['name']} Running ip={ip} ready={ready}")

    def _delete(self, pod):
        m = pod["metadata"]
        opts = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": m["uid"]}}
        self.client.call("DELETE", self._pod_path(pod), opts)
        self.log(f"removed {m['namespace']}/{m['name']} (deletion requested {m['deletionTimestamp']})")

    # ------------------------------------------------------------- pod IPs
    def _remember_ip(self, pod):
        ip = pod.get("status", {}).get("podIP")
        if ip:
            self._ips[pod["metadata"]["uid"]] = ip
            self._used.add(ip)

    def _ip_for(self, uid):
        if uid in self._ips:
            return self._ips[uid]
        # Never hand out an address twice in one run, even after its pod is gone: a
        # worker's IP names one pod only.
        while self._next_ip <= self._last_ip:
            ip = str(ipaddress.IPv4Address(self._next_ip))
            self._next_ip += 1
            if ip not in self._used and not ip.endswith((".0", ".255")):
                self._ips[uid] = ip
                self._used.add(ip)
                return ip
        raise RuntimeError("kubelet_sim: out of 127/8 addresses")

    def _forget(self, pod):
        self._ips.pop(pod["metadata"].get("uid"), None)

    def _error(self, msg):
        self.errors.append((time.time(), msg))
        self.log("error: " + msg)


def main(argv=None):
    p = argparse.ArgumentParser(description="Play the kubelet for a control plane without one.")
    p.add_argument("--env", help="a control plane's DIR/env (else SS_K8S_* from the environment)")
    p.add_argument("--namespace", "-n", help="watch this namespace only (default: all)")
    p.add_argument("--selector", "-l", help="only pods matching this label selector")
    p.add_argument("--node-name", default="sparkscale-sim-node")
    p.add_argument("--pid-file", help="write our pid here; removed on exit")
    p.add_argument("--quiet", "-q", action="store_true")
    a = p.parse_args(argv)

    env = read_env_file(a.env) if a.env else None
    client = Client.from_env(env)

    def log(msg):
        if not a.quiet:
            print(f"kubelet_sim {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sim = KubeletSim(client, namespace=a.namespace, node_name=a.node_name,
                     label_selector=a.selector, log=log)
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        sim.start()
        log(f"watching pods in {a.namespace or 'all namespaces'} as node {a.node_name}")
        while not done.wait(1):
            pass
    finally:
        sim.stop()
        if a.pid_file:
            try:
                os.unlink(a.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
