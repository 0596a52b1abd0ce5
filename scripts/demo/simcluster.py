"""simcluster.py: the demo's simulated Spark standalone cluster.

Its workers come and go only through the exec command sparkscale-actuator
runs (scripts/demo/sim-workers, which calls POST /sim/resize here); nothing
else changes their number. Everything else plays Spark:
  - a master web UI: GET /json/ in the shape of tests/fixtures/spark_master/
    (workers with id, host, port, cores, coresused, state; activeapps) and
    POST /workers/kill/ (form host=..., repeatable) that decommissions the
    workers on those hosts (200, or 404 when none is there), as a master with
    spark.decommission.enabled=true and allow.mode=ALLOW does;
  - applications whose dynamic allocation asks for executors following a
    scripted story (STORY), placed on ALIVE workers with free cores;
  - GraphiteSink reports every second over carbon TCP: each driver's
    ExecutorAllocationManager gauges, the master's gauges, and each worker's
    gauges sent from the worker's own loopback address (127.0.0.N), as worker
    pods send from their pod IPs.
Placement packs executors onto the busiest worker that has room, and a
falling demand releases executors from the least loaded workers first: what
spark.deploy.spreadOut=false and dynamic allocation's idle timeout aim for,
simplified (real Spark's placement: scripts/demo.sh --spark).
"""
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORKER_CORES = 4
WORKER_MEMORY_MB = 8192
EXECUTOR_CORES = 2
EXECUTOR_MEMORY_MB = 4096

# The story, in story seconds: each app's executor target over time (steps,
# as dynamic allocation asks: doubling ramp, plateau, release). An app runs
# from its first point to its last (its target is then 0 and it finishes).
STORY = [
    ("etl-nightly", [(4, 1), (5, 2), (6, 4), (7, 8), (8, 12), (34, 12), (36, 6), (38, 2), (40, 0), (42, None)]),
    ("adhoc-query", [(22, 2), (23, 4), (24, 6), (48, 6), (50, 2), (52, 0), (54, None)]),
]
STORY_END_S = 54   # the last app finishes here; then the cluster winds down


def _target(points, t):
    """The app's target at story time t, None when it is not running."""
    if t < points[0][0]:
        return None
    val = None
    for ts, v in points:
        if t >= ts:
            val = v
    return val


class Worker:
    def __init__(self, seq, host, now_ms, ready_at):
        self.seq = seq
        self.host = host
        self.port = 40000 + seq
        self.id = "worker-%s-%s-%d" % (time.strftime("%Y%m%d%H%M%S", time.gmtime(now_ms / 1000)),
                                       host, self.port)
        self.state = "STARTING"       # STARTING (not registered yet), ALIVE, DECOMMISSIONED, DEAD
        self.ready_at = ready_at      # monotonic time it registers with the master
        self.execs = {}               # app id -> executors on this worker
        self.gone_at = None

    def used_cores(self):
        return EXECUTOR_CORES * sum(self.execs.values())

    def free_slots(self):
        return (WORKER_CORES - self.used_cores()) // EXECUTOR_CORES


class App:
    def __init__(self, name, points, start_wall_ms, seq):
        self.name = name
        self.points = points
        self.id = "app-%s-%04d" % (time.strftime("%Y%m%d%H%M%S", time.gmtime(start_wall_ms / 1000)), seq)
        self.start_ms = start_wall_ms
        self.target = 0


class SimCluster:
    """The simulated cluster. speed: story seconds per real second (2 = twice
    as fast). Thread-safe: the HTTP server, the feeder and the caller share it."""

    def __init__(self, carbon, prefix="demo", speed=1.0, initial_workers=1, startup_s=2.0,
                 actions_log=None):
        self.carbon_host, self.carbon_port = carbon
        self.prefix = prefix
        self.speed = speed
        self.startup_s = startup_s / speed
        self.actions_log = actions_log
        self.lock = threading.Lock()
        self.t0 = None
        self.workers = []             # every worker ever, DEAD ones kept for /json/ (last few)
        self.apps = {}                # name -> App, running ones
        self.app_seq = 0
        self.seq = 0
        self.events = []              # (wall time s, text) not yet printed
        self.actions = []             # what the exec command did, for the checks
        self.busy_removed = []        # workers removed while running executors (must stay empty)
        self.max_size = 0
        self.stop_evt = threading.Event()
        self.httpd = None
        self.feed_errors = 0
        for _ in range(initial_workers):
            w = self._new_worker(time.monotonic())
            w.state = "ALIVE"

    # ---- time and state -------------------------------------------------------------

    def story_t(self):
        return 0.0 if self.t0 is None else (time.monotonic() - self.t0) * self.speed

    def _event(self, text):
        self.events.append((time.time(), text))

    def take_events(self):
        with self.lock:
            ev, self.events = self.events, []
        return ev

    def _new_worker(self, now):
        used = {w.host for w in self.workers}
        for n in range(10, 255):
            host = "127.0.0.%d" % n
            if host not in used:
                break
        else:
            raise RuntimeError("no free loopback address for a new worker")
        self.seq += 1
        w = Worker(self.seq, host, int(time.time() * 1000), now + self.startup_s)
        self.workers.append(w)
        return w

    def live(self):
        """Workers that exist (a process runs): STARTING, ALIVE, DECOMMISSIONED."""
        return [w for w in self.workers if w.state != "DEAD"]

    def size(self):
        with self.lock:
            return len(self.live())

    def _step(self):
        """Registers started workers, follows the story, places and releases executors."""
        now = time.monotonic()
        t = self.story_t()
        for w in self.workers:
            if w.state == "STARTING" and now >= w.ready_at:
                w.state = "ALIVE"
                self._event("worker %s registered with the master (ALIVE)" % w.host)
        # DEAD workers stay listed a while, as the real master shows them
        self.workers = [w for w in self.workers if w.state != "DEAD" or now - w.gone_at < 20]
        for name, points in STORY:
            target = _target(points, t)
            app = self.apps.get(name)
            if target is None:
                if app:
                    for w in self.workers:
                        w.execs.pop(app.id, None)
                    del self.apps[name]
                    self._event("%s (%s) finished" % (app.id, name))
                continue
            if not app:
                if t >= points[-1][0]:
                    continue
                self.app_seq += 1
                app = self.apps[name] = App(name, points, int(time.time() * 1000), self.app_seq)
                self._event("%s (%s) submitted" % (app.id, name))
            app.target = target
            running = self.placed(app)
            # release from the least loaded workers first, so whole workers fall idle
            while running > target:
                holders = [w for w in self.workers if w.execs.get(app.id)]
                w = min(holders, key=lambda x: (x.used_cores(), -x.seq))
                w.execs[app.id] -= 1
                if not w.execs[app.id]:
                    del w.execs[app.id]
                running -= 1
            # place on the busiest ALIVE worker with room (spreadOut=false packs)
            while running < target:
                room = [w for w in self.workers if w.state == "ALIVE" and w.free_slots() > 0]
                if not room:
                    break
                w = max(room, key=lambda x: (x.used_cores(), -x.seq))
                w.execs[app.id] = w.execs.get(app.id, 0) + 1
                running += 1

    def placed(self, app):
        return sum(w.execs.get(app.id, 0) for w in self.workers)

    def snapshot(self):
        """For the live table."""
        with self.lock:
            live = self.live()
            return {
                "t": self.story_t(),
                "wanted": sum(a.target for a in self.apps.values()),
                "running": sum(self.placed(a) for a in self.apps.values()),
                "apps": len(self.apps),
                "alive": sum(1 for w in live if w.state == "ALIVE"),
                "starting": sum(1 for w in live if w.state == "STARTING"),
                "decommissioned": sum(1 for w in live if w.state == "DECOMMISSIONED"),
                "busy": sum(1 for w in live if w.execs),
                "size": len(live),
                "story_done": self.story_t() >= STORY_END_S and not self.apps,
            }

    # ---- Spark master JSON and decommission -----------------------------------------

    def master_json(self):
        with self.lock:
            ws, alive = [], [w for w in self.workers if w.state == "ALIVE"]
            for w in self.workers:
                if w.state == "STARTING":
                    continue
                used = w.used_cores()
                ws.append({
                    "id": w.id, "host": w.host, "port": w.port,
                    "webuiaddress": "http://%s:%d" % (w.host, 8081),
                    "cores": WORKER_CORES, "coresused": used, "coresfree": WORKER_CORES - used,
                    "memory": WORKER_MEMORY_MB,
                    "memoryused": EXECUTOR_MEMORY_MB * sum(w.execs.values()),
                    "memoryfree": WORKER_MEMORY_MB - EXECUTOR_MEMORY_MB * sum(w.execs.values()),
                    "resources": {}, "resourcesused": {}, "resourcesfree": {},
                    "state": w.state, "lastheartbeat": int(time.time() * 1000),
                })
            apps = [{
                "id": a.id, "starttime": a.start_ms, "name": a.name,
                "cores": EXECUTOR_CORES * self.placed(a), "user": "demo",
                "memoryperexecutor": EXECUTOR_MEMORY_MB, "memoryperslave": EXECUTOR_MEMORY_MB,
                "resourcesperexecutor": [], "resourcesperslave": [],
                "submitdate": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(a.start_ms / 1000)),
                "state": "RUNNING", "duration": int(time.time() * 1000) - a.start_ms,
            } for a in sorted(self.apps.values(), key=lambda a: a.start_ms)]
            return {
                "url": "spark://127.0.0.1:7077", "workers": ws,
                "aliveworkers": len(alive),
                "cores": WORKER_CORES * len(alive),
                "coresused": sum(w.used_cores() for w in alive),
                "memory": WORKER_MEMORY_MB * len(alive),
                "memoryused": sum(EXECUTOR_MEMORY_MB * sum(w.execs.values()) for w in alive),
                "resources": [{} for _ in alive], "resourcesused": [{} for _ in alive],
                "activeapps": apps, "completedapps": [], "activedrivers": [], "completeddrivers": [],
                "status": "ALIVE",
            }

    def decommission(self, hosts):
        """POST /workers/kill/: True when a worker was found on those hosts."""
        found = False
        with self.lock:
            for w in self.workers:
                if w.host in hosts and w.state in ("ALIVE", "DECOMMISSIONED"):
                    found = True
                    if w.state == "ALIVE":
                        w.state = "DECOMMISSIONED"
                        self._event("master: worker %s DECOMMISSIONED (asked by the actuator)" % w.host)
        return found

    # ---- what the exec command asks ---------------------------------------------------

    def resize(self, req):
        """The exec command's request: desired size, hosts to remove, dry run.
        Removes only the workers named; starts new ones up to desired. Returns
        the text the command prints (it lands in the audit record)."""
        desired = int(req["desired"])
        remove = [h for h in req.get("remove_hosts", []) if h]
        dry = bool(req.get("dry_run"))
        with self.lock:
            now = time.monotonic()
            before = len(self.live())
            removed, started, missing = [], [], []
            for host in remove:
                ws = [w for w in self.live() if w.host == host]
                if not ws:
                    missing.append(host)
                for w in ws:
                    if not dry:
                        if w.execs:
                            self.busy_removed.append((w.host, dict(w.execs)))
                        w.state, w.gone_at, w.execs = "DEAD", now, {}
                    removed.append(w.host)
            count = len(self.live()) if not dry else before - len(removed)
            while count < desired:
                if not dry:
                    started.append(self._new_worker(now).host)
                else:
                    started.append("?")
                count += 1
            after = len(self.live()) if not dry else count
            self.max_size = max(self.max_size, after)
            parts = []
            if started:
                parts.append("started %s" % ", ".join(started))
            if removed:
                parts.append("stopped %s" % ", ".join(removed))
            if missing:
                parts.append("no worker on %s" % ", ".join(missing))
            if after > desired:
                parts.append("%d above desired: only named workers are removed" % (after - desired))
            text = "%s%d -> %d workers%s" % ("dry run: " if dry else "", before, after,
                                             (": " + "; ".join(parts)) if parts else "")
            if not dry:
                act = {"wall_ms": int(time.time() * 1000), "t": round(self.story_t(), 1),
                       "before": before, "after": after, "desired": desired,
                       "started": started, "removed": removed}
                self.actions.append(act)
                if self.actions_log:
                    with open(self.actions_log, "a") as f:
                        f.write(json.dumps(act) + "\n")
                self._event("exec: " + text)
            return text

    # ---- carbon feed --------------------------------------------------------------------

    def _send(self, lines, source=None):
        try:
            with socket.create_connection((self.carbon_host, self.carbon_port), timeout=2,
                                          source_address=(source, 0) if source else None) as s:
                s.sendall(("\n".join(lines) + "\n").encode())
        except OSError:
            self.feed_errors += 1

    def _report(self):
        ts = int(time.time())
        p = self.prefix
        with self.lock:
            apps = [(a.id, a.target, self.placed(a)) for a in self.apps.values()]
            live = self.live()
            alive = sum(1 for w in live if w.state == "ALIVE")
            workers = [(w.host, w.used_cores(), sum(w.execs.values()))
                       for w in live if w.state in ("ALIVE", "DECOMMISSIONED")]
        for app_id, target, running in apps:
            base = "%s.%s.driver.ExecutorAllocationManager.executors" % (p, app_id)
            self._send(["%s.numberTargetExecutors %d %d" % (base, target, ts),
                        "%s.numberMaxNeededExecutors %d %d" % (base, target, ts),
                        "%s.numberAllExecutors %d %d" % (base, running, ts),
                        "%s.numberExecutorsToAdd %d %d" % (base, max(0, target - running), ts),
                        "%s.numberExecutorsPendingToRemove 0 %d" % (base, ts)])
        self._send(["%s.master.workers %d %d" % (p, len(workers), ts),
                    "%s.master.aliveWorkers %d %d" % (p, alive, ts),
                    "%s.master.apps %d %d" % (p, len(apps), ts),
                    "%s.master.waitingApps 0 %d" % (p, ts)])
        for host, used, execs in workers:
            self._send(["%s.worker.coresUsed %d %d" % (p, used, ts),
                        "%s.worker.coresFree %d %d" % (p, WORKER_CORES - used, ts),
                        "%s.worker.executors %d %d" % (p, execs, ts),
                        "%s.worker.memUsed_MB %d %d" % (p, EXECUTOR_MEMORY_MB * execs, ts),
                        "%s.worker.memFree_MB %d %d" % (p, WORKER_MEMORY_MB - EXECUTOR_MEMORY_MB * execs, ts)],
                       source=host)

    def _feeder(self):
        next_report = time.monotonic()
        while not self.stop_evt.is_set():
            with self.lock:
                self._step()
            if time.monotonic() >= next_report:
                self._report()
                next_report += 1.0
            self.stop_evt.wait(0.1)

    # ---- HTTP -------------------------------------------------------------------------

    def serve(self, port):
        """Starts the master UI and the control endpoint on 127.0.0.1:port."""
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype="application/json"):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                if path in ("/json", "/json/"):
                    self._reply(200, json.dumps(sim.master_json(), indent=2), "text/json;charset=utf-8")
                elif path == "/sim/size":
                    self._reply(200, "%d\n" % sim.size(), "text/plain")
                else:
                    self._reply(404, "not found\n", "text/plain")

            def do_POST(self):
                path = urllib.parse.urlsplit(self.path).path
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if path == "/workers/kill/":
                    hosts = urllib.parse.parse_qs(body).get("host", [])
                    if sim.decommission(hosts):
                        self._reply(200, "", "text/plain")
                    else:
                        self._reply(404, "<html><body><h2>HTTP ERROR 404 Not Found</h2></body></html>\n",
                                    "text/html;charset=iso-8859-1")
                elif path == "/sim/resize":
                    try:
                        text = sim.resize(json.loads(body))
                    except (ValueError, KeyError, RuntimeError) as e:
                        self._reply(400, "bad resize request: %s\n" % e, "text/plain")
                        return
                    self._reply(200, text + "\n", "text/plain")
                else:
                    self._reply(404, "not found\n", "text/plain")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name="sim-http", daemon=True).start()

    def start_story(self):
        """Starts the clock and the GraphiteSink feed."""
        self.t0 = time.monotonic()
        self.max_size = self.size()
        threading.Thread(target=self._feeder, name="sim-feed", daemon=True).start()

    def stop(self):
        self.stop_evt.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
