#!/usr/bin/env python3
"""A fixture Spark standalone master for the Kubernetes end-to-end test: it answers
GET /json/ in the shape of the recorded Spark 3.5.9 answer
(tests/fixtures/spark_master/app_running.json: json4s pretty-printing, same fields),
with the workers a test sets: one per pod IP, each with the coresused the test wants.
POST /workers/kill/ (form field host=..., repeatable) decommissions those workers and
answers 200 with an empty body, as Spark 3.5 does (404 for a host it does not know).

Control (plain JSON):
  POST /_fixture/workers  [{"host": "127.0.0.3", "coresused": 2, "state": "ALIVE"}, ...]
  POST /_fixture/set      {"host": "127.0.0.3", "coresused": 2}   (one worker changes)
  POST /_fixture/on_kill  {"host": "127.0.0.3", "coresused": 2}   once: when a decommission
                          names that host, it gets these values too (tasks were placed on
                          it between the actuator's choice and its request)
  GET  /_fixture/requests every request so far (method, path, body)

Usage: spark_master_fixture.py [--port 0]   (prints "port N" when ready)
"""

import argparse
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDED = os.path.join(HERE, "..", "fixtures", "spark_master", "app_running.json")
LOCK = threading.Lock()
STATE = {"workers": [], "requests": [], "on_kill": []}


def worker_json(w, n):
    cores = w.get("cores", 2)
    used = w.get("coresused", 0)
    port = 40000 + n
    return {"id": f"worker-20261201143615-{w['host']}-{port}", "host": w["host"], "port": port,
            "webuiaddress": f"http://{w['host']}:8081", "cores": cores, "coresused": used,
            "coresfree": cores - used, "memory": 1024, "memoryused": 512 if used else 0,
            "memoryfree": 512 if used else 1024, "resources": {}, "resourcesused": {},
            "resourcesfree": {}, "state": w.get("state", "ALIVE"),
            "lastheartbeat": int(time.time() * 1000)}


def master_json():
    with open(RECORDED) as f:
        rec = json.load(f)
    ws = [worker_json(w, i) for i, w in enumerate(STATE["workers"])]
    alive = [w for w in ws if w["state"] == "ALIVE"]
    rec["workers"] = ws
    rec["aliveworkers"] = len(alive)
    rec["cores"] = sum(w["cores"] for w in alive)
    rec["coresused"] = sum(w["coresused"] for w in alive)
    if not rec["coresused"]:
        rec["activeapps"] = []
    # json4s pretty-printing: two-space indent, " : ".
    return json.dumps(rec, indent=2, separators=(",", " : ")).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, body, ctype="text/json;charset=utf-8"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = urllib.parse.urlsplit(self.path).path
        with LOCK:
            if not path.startswith("/_fixture/"):
                STATE["requests"].append({"method": self.command, "path": path,
                                          "body": raw.decode(errors="replace"), "t": time.monotonic()})
            if path == "/_fixture/requests":
                return self.send(200, json.dumps(STATE["requests"]).encode(), "application/json")
            if path == "/_fixture/workers":
                STATE["workers"] = json.loads(raw)
                return self.send(200, b"{}", "application/json")
            if path == "/_fixture/on_kill":
                STATE["on_kill"].append(json.loads(raw))
                return self.send(200, b"{}", "application/json")
            if path == "/_fixture/set":
                ch = json.loads(raw)
                for w in STATE["workers"]:
                    if w["host"] == ch["host"]:
                        w.update(ch)
                return self.send(200, b"{}", "application/json")
            if self.command == "GET" and path in ("/json", "/json/"):
                return self.send(200, master_json())
            if self.command == "POST" and path in ("/workers/kill", "/workers/kill/"):
                hosts = urllib.parse.parse_qs(raw.decode()).get("host", [])
                for rule in list(STATE["on_kill"]):
                    if rule["host"] in hosts:
                        STATE["on_kill"].remove(rule)
                        for w in STATE["workers"]:
                            if w["host"] == rule["host"]:
                                w.update(rule)
                found = False
                for w in STATE["workers"]:
                    if w["host"] in hosts and w.get("state", "ALIVE") == "ALIVE":
                        w["state"] = "DECOMMISSIONED"
                        found = True
                    elif w["host"] in hosts:
                        found = True
                return self.send(200 if found else 404, b"", "text/plain")
            return self.send(404, b"", "text/plain")

    do_GET = do_POST = handle_any


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--pid-file")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    print(f"port {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
