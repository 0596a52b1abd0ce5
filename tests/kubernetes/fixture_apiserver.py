#!/usr/bin/env python3
"""A fixture Kubernetes API server for what the real one cannot be made to do on demand:
429 with Retry-After, 500/503, a request that hangs, a token that expires and is rotated
on disk, TLS certificates for the wrong name or from an untrusted CA (pass them with
--cert/--key). It records every request, so tests assert exactly what the client sent.

It serves a small world: Scales of named workloads and their pods. GET/PUT/PATCH
.../scale (PUT checks metadata.resourceVersion and uid: 409 on a stale one), GET pods with
labelSelector (ignored: every pod of the workload), limit and continue, PATCH a pod's
annotations (merge patch), ?dryRun=All (validated, nothing changes). After a write that
lowers replicas it plays the ReplicaSet controller: pods go lowest pod-deletion-cost first
(then by name), or by name alone when the world says "ignore_cost" (an old controller),
or the highest ordinal for a StatefulSet.

Control, not authenticated, under /_fixture/:
  POST /_fixture/world     {"workloads": {"deployments/w": {"replicas": 3, "selector": "app=w",
                            "pods": [{"name":..., "ip":..., "cost": "5"?}]}}, "ignore_cost": false}
  POST /_fixture/script    [{"method": "GET", "path_contains": "/scale", "status": 429,
                             "headers": {"Retry-After": "1"}, "body": {...}, "times": 2,
                             "hang": false, "write_file": [PATH, TEXT], "world": {...}}]
                           (appended, first match wins; "world" replaces the world as it answers)
  POST /_fixture/tokens    ["token", ...]   accepted bearer tokens ([] = any)
  GET  /_fixture/requests  every request so far (method, path, query, headers, body, t)
  POST /_fixture/reset     forget requests and script

Usage: fixture_apiserver.py [--cert C --key K] [--port 0]   (prints "port N" when ready)
"""

import argparse
import json
import os
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

COST = "controller.kubernetes.io/pod-deletion-cost"
LOCK = threading.Lock()
STATE = {"requests": [], "script": [], "tokens": [], "world": {"workloads": {}}, "rv": 100}
HANG = threading.Event()   # set at shutdown: hung handlers return


def status(code, reason, message):
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code}


def next_rv():
    STATE["rv"] += 1
    return str(STATE["rv"])


def cost_of(pod):
    try:
        return int(pod.get("annotations", {}).get(COST, "0"))
    except ValueError:
        return 0


class World:
    """Operations on STATE["world"]; callers hold LOCK."""

    @staticmethod
    def workload(kind, ns, name):
        w = STATE["world"]["workloads"].get(f"{kind}/{name}")
        if w is not None:
            w.setdefault("uid", f"uid-{kind}-{name}")
            w.setdefault("rv", next_rv())
            w.setdefault("namespace", ns)
            for p in w.setdefault("pods", []):
                p.setdefault("uid", "uid-" + p["name"])
                p.setdefault("annotations", {})
        return w

    @staticmethod
    def scale(kind, name, w):
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": w["namespace"], "uid": w["uid"],
                             "resourceVersion": w["rv"]},
                "spec": {"replicas": w["replicas"]} if w["replicas"] else {},
                "status": {"replicas": len(w["pods"]), "selector": w.get("selector", "app=" + name)}}

    @staticmethod
    def settle(kind, w):
        """The controller: remove pods down to replicas."""
        extra = len(w["pods"]) - w["replicas"]
        if extra <= 0:
            return
        if kind == "statefulsets":
            order = sorted(w["pods"], key=lambda p: -int(p["name"].rsplit("-", 1)[1]))
        elif STATE["world"].get("ignore_cost"):
            order = sorted(w["pods"], key=lambda p: p["name"])
        else:
            order = sorted(w["pods"], key=lambda p: (cost_of(p), p["name"]))
        gone = {p["name"] for p in order[:extra]}
        w["pods"] = [p for p in w["pods"] if p["name"] not in gone]

    @staticmethod
    def pod_json(w, kind, name, p):
        return {"metadata": {"name": p["name"], "namespace": w["namespace"], "uid": p["uid"],
                             "annotations": p["annotations"],
                             "ownerReferences": [{"kind": "StatefulSet" if kind == "statefulsets" else "ReplicaSet",
                                                  "name": name, "uid": w["uid"], "controller": True}]},
                "spec": {"nodeName": "node-1"},
                "status": {"phase": "Running", "podIP": p.get("ip", ""),
                           "conditions": [{"type": "Ready", "status": "True"}]}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, body, headers=None):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        raw = self.body()
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.startswith("/_fixture/"):
            return self.control(url.path, raw)
        auth = self.headers.get("Authorization", "")
        with LOCK:
            STATE["requests"].append({
                "t": time.monotonic(), "method": self.command, "path": url.path, "query": url.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": raw.decode(errors="replace")})
            rule = None
            for r in STATE["script"]:
                if r.get("times", 1) <= 0:
                    continue
                if r.get("method") and r["method"] != self.command:
                    continue
                if r.get("path_contains") and r["path_contains"] not in url.path:
                    continue
                r["times"] = r.get("times", 1) - 1
                rule = r
                break
            tokens = list(STATE["tokens"])
        if rule and "world" in rule:   # another writer changed things as we answer
            with LOCK:
                STATE["world"] = rule["world"]
        if rule and rule.get("write_file"):
            path, text = rule["write_file"]
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)   # atomic, as the kubelet swaps the token
        if rule and rule.get("hang"):
            HANG.wait(rule.get("hang_s", 60))
            self.close_connection = True
            return
        if rule and "status" in rule:
            body = rule.get("body")
            if body is None and rule["status"] >= 400:
                _, body = status(rule["status"], rule.get("reason", "Scripted"),
                                 rule.get("message", f"scripted {rule['status']}"))
            return self.send(rule["status"], body, rule.get("headers"))
        if tokens and not (auth.startswith("Bearer ") and auth[7:] in tokens):
            return self.send(*status(401, "Unauthorized", "Unauthorized"))
        code, body = self.api(url.path, query, raw)
        self.send(code, body)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = handle_any

    def control(self, path, raw):
        with LOCK:
            if path == "/_fixture/requests":
                return self.send(200, STATE["requests"])
            data = json.loads(raw or b"null")
            if path == "/_fixture/world":
                STATE["world"] = data
            elif path == "/_fixture/script":
                STATE["script"].extend(data)
            elif path == "/_fixture/tokens":
                STATE["tokens"] = data
            elif path == "/_fixture/reset":
                STATE["requests"].clear()
                STATE["script"].clear()
            else:
                return self.send(404, None)
        self.send(200, {})

    def api(self, path, query, raw):
        parts = path.strip("/").split("/")
        dry = query.get("dryRun") == ["All"]
        with LOCK:
            # /apis/apps/v1/namespaces/NS/KIND/NAME/scale
            if len(parts) == 8 and parts[:3] == ["apis", "apps", "v1"] and parts[7] == "scale":
                ns, kind, name = parts[4], parts[5], parts[6]
                w = World.workload(kind, ns, name)
                if w is None:
                    return status(404, "NotFound", f'{kind}.apps "{name}" not found')
                if self.command == "GET":
                    return 200, World.scale(kind, name, w)
                try:
                    req = json.loads(raw)
                except ValueError:
                    return status(400, "BadRequest", "not JSON")
                if self.command == "PUT":
                    meta = req.get("metadata", {})
                    if meta.get("uid") and meta["uid"] != w["uid"]:
                        return status(409, "Conflict", "Precondition failed: UID in precondition")
                    if meta.get("resourceVersion") and meta["resourceVersion"] != w["rv"]:
                        return status(409, "Conflict", f'Operation cannot be fulfilled on {kind}.apps "{name}": '
                                      "the object has been modified; please apply your changes to the "
                                      "latest version and try again")
                replicas = req.get("spec", {}).get("replicas", 0)
                if not isinstance(replicas, int) or replicas < 0:
                    return status(422, "Invalid", "spec.replicas: must be >= 0")
                if dry:
                    s = World.scale(kind, name, w)
                    s["spec"] = {"replicas": replicas}
                    return 200, s
                w["replicas"] = replicas
                w["rv"] = next_rv()
                World.settle(kind, w)
                return 200, World.scale(kind, name, w)
            # /api/v1/namespaces/NS/pods[/NAME]
            if len(parts) >= 5 and parts[:2] == ["api", "v1"] and parts[4] == "pods":
                ns = parts[3]
                sel = query.get("labelSelector", [""])[0]
                owners = [(k, w) for k, w in STATE["world"]["workloads"].items()
                          if w.get("selector", "app=" + k.split("/")[1]) == sel or len(parts) == 6]
                pods = []
                for k, w in owners:
                    kind, name = k.split("/")
                    World.workload(kind, ns, name)
                    pods += [(w, kind, name, p) for p in w["pods"]]
                if len(parts) == 5 and self.command == "GET":
                    limit = int(query.get("limit", ["0"])[0] or 0)
                    start = int(query.get("continue", ["0"])[0] or 0)
                    end = start + limit if limit else len(pods)
                    items = [World.pod_json(*x) for x in pods[start:end]]
                    meta = {"resourceVersion": str(STATE["rv"])}
                    if end < len(pods):
                        meta["continue"] = str(end)
                    return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items}
                if len(parts) == 6 and self.command == "PATCH":
                    for w, kind, name, p in pods:
                        if p["name"] == parts[5]:
                            ann = json.loads(raw).get("metadata", {}).get("annotations", {})
                            if COST in ann and ann[COST] is not None:
                                try:
                                    int(ann[COST])
                                except ValueError:
                                    return status(422, "Invalid", "must be a 32bit integer")
                            if not dry:
                                for k2, v in ann.items():
                                    if v is None:
                                        p["annotations"].pop(k2, None)
                                    else:
                                        p["annotations"][k2] = v
                            return 200, World.pod_json(w, kind, name, p)
                    return status(404, "NotFound", f'pods "{parts[5]}" not found')
            return status(404, "NotFound", "the server could not find the requested resource")


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client refusing our certificate (the TLS tests) is expected: no traceback.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        # The handshake happens in the handler thread: a client that refuses
        # the certificate must not stall the accept loop.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print(f"port {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        HANG.set()


if __name__ == "__main__":
    sys.exit(main())
