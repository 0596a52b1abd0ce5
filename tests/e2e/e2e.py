"""e2e.py: real Spark elasticity end to end (issue 13). A real Spark standalone master
(decommission allowed, spreadOut false); Spark workers started and stopped only by
sparkscale-actuator's exec backend running deploy/exec/spark-workers; sparkscaled fed by the
drivers' GraphiteSink and its poll of the master's /json/; decisions and audit records through the
embedded Kafka. The same bursty workload of PySpark apps with dynamic allocation and shuffle
tracking (a burst, an idle gap, a second burst; every app shuffles and checks its result) runs on
the elastic cluster with idle_mode need, with idle_mode busy, and on a static cluster sized for
the workload's peak. Asserts: workers rise with demand and fall after it; no failed task, failed
job or retried stage (each app reads its own driver's REST API before it stops); one audit record
per decision; correct results. Measures worker-seconds (from the exec script's events.log) and
makespan of every run, replays the recorded demand through the Oshinko rule (sparkscalectl
replay), checks the bars and prints one table.
Usage: e2e.py --build DIR [--work DIR] [--runs need,busy,static] [--scale F] [--no-bars]
                [--keep-recording FILE]"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "spark"))
import sparklib  # noqa: E402  (free_ports, spark_home, VENV_PY, DEPLOY)

SPARK_WORKERS = os.path.join(REPO, "deploy", "exec", "spark-workers")
CLUSTER = "e2e"

# Sizes: a worker is 2 cores and 1 GB, an executor 2 cores (2 task slots) and 512 MB: one
# executor per worker (E = 1), so workers needed = executors wanted.
WORKER_CORES, WORKER_MEM_MB = 2, 1024
EXEC_CORES, EXEC_MEM = 2, "512m"

# The workload: (submit offset s, name, maxExecutors, map tasks, seconds per map task, reduce
# tasks, seconds per reduce task). Map tasks sleep, so demand lasts without loading the 2 cores;
# each burst opens with a long app of one executor and adds wide short ones; the first burst
# peaks at 9 executors, the second at 5; the gap between them is idle. --scale stretches the
# schedule and the map stages.
WORKLOAD = [
    (0, "b1-long", 1, 10, 5.0, 2, 1.0),
    (3, "b1-wide-a", 4, 8, 5.0, 4, 1.0),
    (5, "b1-wide-b", 4, 8, 5.0, 4, 1.0),
    (75, "b2-long", 1, 10, 5.0, 2, 1.0),
    (78, "b2-wide", 4, 8, 5.0, 4, 1.0),
]
BURST2_AT = 75
PEAK_EXECUTORS = 9          # the most executors the workload's apps can hold at once

# Policy of the elastic runs (the rest are sparkscaled's defaults).
SCALE_DOWN_WINDOW_S = 5
IDLE_RELEASE_S = 2
POLL_INTERVAL_S = 1

BARS = {"worker_s": 0.60, "makespan": 1.10}

# Short-lived JVMs on 2 shared cores: C1 only and one GC thread. Every Spark JVM of the test
# (workers, drivers, executors) also maps a class-data archive of its kind (AppCDS, made once per
# Spark installation by train_cds): a burst starts a dozen JVMs at once, and the archives about
# halve the CPU each start takes (worker 1.6 -> 1.0 s, driver 5 -> 3 s, executor 2.8 -> 1.5 s).
JVM_OPTS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
CDS_KINDS = ("worker", "driver", "executor")


def log(msg):
    print("[e2e %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Fail(Exception):
    pass


def http_json(url, timeout=3, data=None):
    req = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def wait_for(what, fn, timeout, every=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError) as e:
            last = e
        time.sleep(every)
    raise Fail("%s: not within %.0f s%s" % (what, timeout, " (%s)" % last if last else ""))


class Procs:
    """Processes this test started, each in a session of its own; their ids go to pgid_file so
    the calling shell's trap can stop them if this script dies."""

    def __init__(self, pgid_file):
        self.pgid_file = pgid_file
        self.procs = []

    def spawn(self, name, argv, logpath, env=None, cwd=None):
        f = open(logpath, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, start_new_session=True)
        f.close()
        p.name = name
        self.procs.append(p)
        with open(self.pgid_file, "a") as g:
            g.write("%d\n" % p.pid)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=10):
        """Signals p's process group, waits, then SIGKILLs the group. Returns p's exit status."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not exit within %d s: SIGKILL" % (p.name, p.pid, wait))
        try:
            os.killpg(p.pid, signal.SIGKILL)   # children left in its group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p, wait=5)


class Env:
    """What every run shares: ports, Spark configuration, the master."""

    def __init__(self, a, procs):
        self.a = a
        self.procs = procs
        self.work = a.work
        self.build = a.build
        self.home = sparklib.spark_home()
        self.carbon, self.http, self.act_http = sparklib.free_ports(3)
        self.cds = cds_dir(self.home)
        self.master = None
        self.conf_dir = os.path.join(self.work, "conf")
        os.makedirs(self.conf_dir)
        self.write_conf()
        # No SPARK_CONF_DIR: the files are passed by path (--properties-file, spark.metrics.conf),
        # and a non-empty directory on the classpath would disable the class-data archives.
        self.env = dict(os.environ)
        for k in ("PYSPARK_SUBMIT_ARGS", "SPARK_ENV_LOADED", "SPARK_SCALA_VERSION", "SPARK_CONF_DIR"):
            self.env.pop(k, None)
        self.env.update({
            "SPARK_HOME": self.home,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": "256m",
            "SPARK_DAEMON_JAVA_OPTS": JVM_OPTS,
            "PYSPARK_PYTHON": sparklib.VENV_PY,
            "PYSPARK_DRIVER_PYTHON": sparklib.VENV_PY,
        })

    def write_conf(self):
        """metrics.properties and spark-defaults.conf: the documented files of deploy/spark with
        the test's overrides appended (later keys win)."""
        # Only the drivers send: every worker here sends from 127.0.0.1, so sparkscaled could not
        # tell their coresUsed apart; the master's /json/ (polled) names each worker instead.
        with open(os.path.join(sparklib.DEPLOY, "metrics.properties")) as f:
            m = "".join(x for x in f if not re.match(r"(master|worker)\.sink\.", x))
        m += "\n# ---- e2e overrides ----\n"
        m += ("*.sink.graphite.host=127.0.0.1\n*.sink.graphite.port=%d\n"
              "*.sink.graphite.prefix=%s\n*.sink.graphite.period=1\n"
              "*.sink.graphite.unit=seconds\n" % (self.carbon, CLUSTER))
        self.metrics = os.path.join(self.conf_dir, "metrics.properties")
        with open(self.metrics, "w") as f:
            f.write(m)
        with open(os.path.join(sparklib.DEPLOY, "spark-defaults.conf")) as f:
            d = f.read()
        jvm = JVM_OPTS
        over = {
            "spark.metrics.conf": self.metrics,
            "spark.executor.cores": str(EXEC_CORES),
            "spark.executor.memory": EXEC_MEM,
            "spark.driver.memory": "512m",
            "spark.dynamicAllocation.minExecutors": "0",
            "spark.dynamicAllocation.initialExecutors": "0",
            "spark.dynamicAllocation.executorIdleTimeout": "3s",
            "spark.dynamicAllocation.schedulerBacklogTimeout": "1s",
            "spark.dynamicAllocation.sustainedSchedulerBacklogTimeout": "1s",
            "spark.locality.wait": "0s",
            "spark.ui.enabled": "true",
            "spark.ui.port": "0",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.extraJavaOptions": (jvm + " " + cds_opt(self, "driver")).strip(),
            "spark.executor.extraJavaOptions": (jvm + " " + cds_opt(self, "executor")).strip(),
            "spark.pyspark.python": sparklib.VENV_PY,
            "spark.pyspark.driver.python": sparklib.VENV_PY,
            "spark.master.rest.enabled": "false",
            "spark.deploy.spreadOut": "false",
            "spark.decommission.enabled": "true",
            "spark.master.ui.decommission.allow.mode": "ALLOW",
            "spark.worker.cleanup.enabled": "false",
        }
        d += "\n# ---- e2e overrides ----\n" + "".join("%s %s\n" % kv for kv in over.items())
        self.defaults = os.path.join(self.conf_dir, "spark-defaults.conf")
        with open(self.defaults, "w") as f:
            f.write(d)

    def start_master(self, name):
        """A master of its own for each run (no dead workers or finished apps of another run in
        its answers), on ports picked now."""
        taken = {self.carbon, self.http, self.act_http}
        while True:
            self.master_port, self.master_ui = sparklib.free_ports(2)
            if not taken & {self.master_port, self.master_ui}:
                break
        self.master_url = "spark://127.0.0.1:%d" % self.master_port
        self.master_http = "http://127.0.0.1:%d" % self.master_ui
        cls = os.path.join(self.home, "bin", "spark-class")
        self.master = self.procs.spawn(
            "master", [cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                       "--port", str(self.master_port), "--webui-port", str(self.master_ui),
                       "--properties-file", self.defaults],
            os.path.join(self.work, "master-%s.log" % name), env=self.env, cwd=self.work)
        wait_for("the Spark master's /json/", lambda: http_json(self.master_http + "/json/"), 60)
        log("master %s up (UI %s)" % (self.master_url, self.master_http))

    def stop_master(self):
        if self.master is not None:
            self.procs.stop(self.master, wait=10)
            self.master = None

    def master_json(self):
        return http_json(self.master_http + "/json/")


def cds_dir(home):
    """Where the class-data archives of this Spark installation and Java live. They name the
    jars by path, so the key is the installation's path, its jars' mtimes and the Java build."""
    import hashlib
    java = subprocess.run(["java", "-Xshare:auto", "-version"], capture_output=True, text=True).stderr
    jars = os.path.join(home, "jars")
    h = hashlib.sha1((home + java + str(os.stat(jars).st_mtime_ns)).encode()).hexdigest()[:12]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sparkscale", "e2e-cds", h)


def cds_opt(env, kind, dump=False):
    path = os.path.join(env.cds, kind + (".jsa.tmp" if dump else ".jsa"))
    if dump:
        return "-XX:ArchiveClassesAtExit=%s -Xlog:cds=off -Xlog:cds+dynamic=off" % path
    return "-XX:SharedArchiveFile=%s -Xlog:cds=off" % path if os.path.exists(path) else ""


def train_cds(env):
    """Makes the archives once: a worker, a driver and an executor each dump the classes they
    loaded at exit (-XX:ArchiveClassesAtExit) while a tiny app runs. About 30 s, then cached."""
    if all(os.path.exists(os.path.join(env.cds, k + ".jsa")) for k in CDS_KINDS):
        log("class-data archives: %s" % env.cds)
        return
    t = time.time()
    env.start_master("cds-training")
    os.makedirs(env.cds, exist_ok=True)
    d = os.path.join(env.work, "cds-training")
    os.makedirs(d)
    conf = os.path.join(d, "spark-workers.conf")
    with open(conf, "w") as f:
        f.write("SPARK_HOME=%s\nSPARK_MASTER_URL=%s\nWORKER_CORES=%d\nWORKER_MEMORY=%dm\n"
                "STATE_DIR=%s\nWORKER_PROPERTIES=%s\nSPARK_DAEMON_MEMORY=256m\n"
                "SPARK_DAEMON_JAVA_OPTS='%s %s'\nREGISTER_WAIT_S=60\nWORKER_FIRST=250\n"
                % (env.home, env.master_url, WORKER_CORES, WORKER_MEM_MB, os.path.join(d, "workers"),
                   env.defaults, JVM_OPTS, cds_opt(env, "worker", dump=True)))
    sw = [SPARK_WORKERS, "--conf", conf]
    try:
        subprocess.run(sw + ["start", "1"], check=True, capture_output=True, timeout=90)
        argv = [os.path.join(env.home, "bin", "spark-submit"), "--master", env.master_url,
                "--properties-file", env.defaults,
                "--conf", "spark.driver.extraJavaOptions=%s %s" % (JVM_OPTS, cds_opt(env, "driver", True)),
                "--conf", "spark.executor.extraJavaOptions=%s %s" % (JVM_OPTS, cds_opt(env, "executor", True)),
                "--conf", "spark.dynamicAllocation.maxExecutors=1",
                os.path.join(HERE, "app.py"), "--name", "cds-training",
                "--out", os.path.join(d, "app.json"), "--maps", "2", "--map-s", "0.2",
                "--reduces", "2", "--reduce-s", "0"]
        p = env.procs.spawn("cds-training", argv, os.path.join(d, "app.log"), env=env.env, cwd=d)
        if p.wait(180) != 0:
            raise Fail("the class-data training app failed (see %s/app.log)" % d)
        env.procs.procs.remove(p)
    except subprocess.SubprocessError as ex:
        raise Fail("class-data training: %s" % ex)
    finally:
        subprocess.run(sw + ["stop-all"], capture_output=True, timeout=60)
        env.stop_master()
    # The executor dumps when its worker stops it, a moment after the app ends.
    deadline = time.time() + 20
    while time.time() < deadline:
        if all(os.path.exists(os.path.join(env.cds, k + ".jsa.tmp")) for k in CDS_KINDS):
            break
        time.sleep(0.5)
    for k in CDS_KINDS:
        tmp = os.path.join(env.cds, k + ".jsa.tmp")
        if os.path.exists(tmp):
            os.replace(tmp, os.path.join(env.cds, k + ".jsa"))
        else:
            log("class-data archive of the %s was not written: its JVMs start without one" % k)
    log("class-data archives made in %.0f s: %s" % (time.time() - t, env.cds))


class Sampler(threading.Thread):
    """Every 0.5 s: the master's workers and apps, sparkscaled's view of the cluster."""

    def __init__(self, env, with_daemon):
        super().__init__(daemon=True)
        self.env, self.with_daemon = env, with_daemon
        self.rows = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            row = {"t": time.time()}
            try:
                m = self.env.master_json()
                ws = [w for w in m.get("workers", []) if w.get("state") == "ALIVE"]
                row["alive"] = len(ws)
                row["busy"] = sum(1 for w in ws if w.get("coresused", 0) > 0)
                row["apps"] = len(m.get("activeapps", []))
                row["waiting"] = sum(1 for x in m.get("activeapps", []) if x.get("state") == "WAITING")
            except (OSError, ValueError):
                pass
            if self.with_daemon:
                try:
                    c = http_json("http://127.0.0.1:%d/v1/clusters?name=%s" % (self.env.http, CLUSTER))
                    c = (c.get("clusters") or [c])[0] if isinstance(c, dict) else {}
                    w = c.get("workers") or {}
                    row["desired"] = w.get("desired")
                    row["needed"] = w.get("needed")
                    dem = 0
                    for app in c.get("apps") or []:
                        g = (app.get("gauges") or {}).get("numberTargetExecutors") or {}
                        if isinstance(g.get("value"), (int, float)):
                            dem += g["value"]
                    row["demand"] = dem
                except (OSError, ValueError):
                    pass
            self.rows.append(row)
            self.stop_ev.wait(0.5)

    def stop(self):
        self.stop_ev.set()
        self.join(5)


def read_events(path):
    """events.log of spark-workers -> [(host, start_s, end_s or None)]."""
    open_ = {}
    spans = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 3:
                    continue
                t, ev, host = int(p[0]) / 1000.0, p[1], p[2]
                if ev == "start":
                    open_[host] = t
                elif ev in ("stop", "died") and host in open_:
                    spans.append((host, open_.pop(host), t))
    except OSError:
        pass
    for host, t in open_.items():
        spans.append((host, t, None))
    return spans


def start_latencies(state):
    """Seconds from each worker's launch (events.log) to its 'Successfully registered with master'
    log line (Spark logs local time to the second)."""
    starts = {}
    try:
        with open(os.path.join(state, "events.log")) as f:
            for line in f:
                p = line.split()
                if len(p) >= 3 and p[1] == "start":
                    starts.setdefault(p[2], int(p[0]) / 1000.0)
    except OSError:
        return []
    out = []
    for host, t in starts.items():
        try:
            with open(os.path.join(state, "log", host + ".log")) as f:
                m = re.search(r"^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d) INFO Worker: Successfully registered",
                              f.read(), re.M)
        except OSError:
            continue
        if m:
            reg = time.mktime(time.strptime(m.group(1), "%y/%m/%d %H:%M:%S"))
            out.append(max(0.0, reg + 0.5 - t))   # the log's second, taken at its middle
    return sorted(out)


def worker_seconds(spans, t0, t1):
    return sum(max(0.0, min(e if e is not None else t1, t1) - max(s, t0)) for _, s, e in spans)


def alive_at(spans, t):
    return sum(1 for _, s, e in spans if s <= t and (e is None or e > t))


class Run:
    """One run of the workload: elastic (idle_mode need|busy) or static."""

    def __init__(self, env, name, mode, scale, net):
        self.env, self.name, self.mode, self.scale, self.net = env, name, mode, scale, net
        self.dir = os.path.join(env.work, name)
        self.state = os.path.join(self.dir, "workers")
        os.makedirs(os.path.join(self.dir, "apps"))
        self.sw_conf = os.path.join(self.dir, "spark-workers.conf")
        self.record = os.path.join(self.dir, "demand.rec")
        self.yaml = os.path.join(self.dir, "sparkscale.yaml")
        self.daemon = self.actuator = None
        self.problems = []
        self.res = {"name": name, "mode": mode}
        self.write_configs()

    def write_configs(self):
        e = self.env
        with open(self.sw_conf, "w") as f:
            f.write("SPARK_HOME=%s\nSPARK_MASTER_URL=%s\nWORKER_CORES=%d\nWORKER_MEMORY=%dm\n"
                    "WORKER_NET=%s\nWORKER_FIRST=2\nWORKER_LAST=254\nSTATE_DIR=%s\n"
                    "WORKER_PROPERTIES=%s\nSPARK_DAEMON_MEMORY=256m\n"
                    "SPARK_DAEMON_JAVA_OPTS='%s'\n"
                    "STOP_TIMEOUT_S=10\nSTART_CHECK_S=0.5\nREGISTER_WAIT_S=%d\n"
                    % (e.home, e.master_url, WORKER_CORES, WORKER_MEM_MB, self.net, self.state,
                       e.defaults, (JVM_OPTS + " " + cds_opt(e, "worker")).strip(),
                       60 if self.mode == "static" else 0))
        sw = [SPARK_WORKERS, "--conf", self.sw_conf]
        mode = self.mode if self.mode != "static" else "need"
        y = """# sparkscale configuration of the e2e run %(name)s (tests/e2e/e2e.py)
ingest:
  carbon_tcp: "127.0.0.1:%(carbon)d"
  carbon_udp: "off"
  http: "127.0.0.1:%(http)d"
  record: "%(record)s"
kafka:
  brokers: embedded
poll:
  interval_s: %(poll)d
  timeout_ms: 900
  connect_timeout_ms: 500
actuator:
  http: "127.0.0.1:%(act)d"
  id: e2e-%(name)s
  decommission_timeout_s: 30
clusters:
  - name: %(cluster)s
    metrics_prefix: %(cluster)s
    spark_master: "%(master)s"
    worker: { cores: %(wc)d, memory_mb: %(wm)d }
    executor: { cores: %(ec)d, memory_mb: 512 }
    policy: { min_workers: 1, max_workers: 12, idle_workers: 1, idle_mode: %(mode)s,
              scale_down_window_s: %(w)d, idle_release_s: %(irel)d, stale_after_s: 15 }
    target:
      kind: %(kind)s
      command: %(cmd)s
      size_command: %(size)s
      timeout_s: 60
""" % {"name": self.name, "carbon": e.carbon, "http": e.http, "record": self.record,
       "poll": POLL_INTERVAL_S, "act": e.act_http, "cluster": CLUSTER, "master": e.master_http,
       "wc": WORKER_CORES, "wm": WORKER_MEM_MB, "ec": EXEC_CORES, "mode": mode,
       "w": SCALE_DOWN_WINDOW_S, "irel": IDLE_RELEASE_S,
       "kind": "exec" if self.mode != "static" else "none",
       "cmd": json.dumps(sw + ["resize"]), "size": json.dumps(sw + ["count"])}
        with open(self.yaml, "w") as f:
            f.write(y)

    def sw(self, *args, check=True):
        r = subprocess.run([SPARK_WORKERS, "--conf", self.sw_conf] + list(args),
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise Fail("spark-workers %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                          (r.stderr or r.stdout).strip()[-400:]))
        return r.stdout

    # ---- daemons ----
    def start_daemons(self):
        e, b = self.env, self.env.build
        sd = os.path.join(b, "ingest", "sparkscaled")
        act = os.path.join(b, "actuator", "sparkscale-actuator")
        for binary in (sd, act):
            r = subprocess.run([binary, "--config", self.yaml, "--check-config"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise Fail("%s --check-config: %s" % (os.path.basename(binary), r.stdout + r.stderr))
        self.daemon = e.procs.spawn("sparkscaled", [sd, "--config", self.yaml],
                                    os.path.join(self.dir, "sparkscaled.log"))
        wait_for("sparkscaled's /healthz",
                 lambda: urllib.request.urlopen("http://127.0.0.1:%d/healthz" % e.http, timeout=1), 10)
        self.brokers = http_json("http://127.0.0.1:%d/v1/kafka" % e.http)["brokers"]
        if self.mode != "static":
            self.actuator = e.procs.spawn("actuator", [act, "--config", self.yaml],
                                          os.path.join(self.dir, "actuator.log"))

    def stop_daemons(self):
        for p, what in ((self.actuator, "sparkscale-actuator"), (self.daemon, "sparkscaled")):
            if p is None:
                continue
            rc = self.env.procs.stop(p, wait=15)
            if rc != 0:
                self.problems.append("%s exited %s on SIGTERM (see %s)" % (what, rc, self.dir))
        self.actuator = self.daemon = None

    # ---- the workload ----
    def submit(self, spec):
        e = self.env
        off, name, maxe, maps, map_s, reds, red_s = spec
        maps = int(round(maps * self.scale))
        argv = [os.path.join(e.home, "bin", "spark-submit"), "--master", e.master_url,
                "--properties-file", e.defaults, "--name", name,
                "--conf", "spark.dynamicAllocation.maxExecutors=%d" % maxe,
                os.path.join(HERE, "app.py"), "--name", name,
                "--out", os.path.join(self.dir, "apps", name + ".json"),
                "--maps", str(maps), "--map-s", str(map_s),
                "--reduces", str(reds), "--reduce-s", str(red_s), "--rows", "1000"]
        p = e.procs.spawn(name, argv, os.path.join(self.dir, "apps", name + ".log"),
                          env=e.env, cwd=self.dir)
        p.submitted = time.time()
        return p

    def run_workload(self):
        sched = sorted(WORKLOAD)
        t0 = time.time()
        apps, ends = [], {}
        i = 0
        deadline = t0 + (BURST2_AT * self.scale) + 240 * self.scale
        while i < len(sched) or any(p.poll() is None for p in apps):
            now = time.time()
            while i < len(sched) and now - t0 >= sched[i][0] * self.scale:
                apps.append(self.submit(sched[i]))
                log("%s: submitted %s" % (self.name, sched[i][1]))
                i += 1
            for p in apps:
                if p.poll() is not None and p.name not in ends:
                    ends[p.name] = time.time()
                    log("%s: %s exited %d after %.1f s" % (self.name, p.name, p.returncode,
                                                          ends[p.name] - p.submitted))
            if now > deadline:
                raise Fail("%s: the workload did not finish within %.0f s" % (self.name, now - t0))
            self.env.master.poll() is None or self.fail_now("the Spark master exited")
            time.sleep(0.2)
        for p in apps:
            if p.name not in ends:
                ends[p.name] = time.time()
                log("%s: %s exited %d after %.1f s" % (self.name, p.name, p.returncode,
                                                      ends[p.name] - p.submitted))
            self.env.procs.procs.remove(p)
        self.apps = apps
        self.t0, self.t_end = t0, max(ends.values())
        self.ends = ends

    def fail_now(self, why):
        raise Fail("%s: %s" % (self.name, why))

    # ---- checks ----
    def check_apps(self):
        failed_tasks = retries = failed_jobs = correct = 0
        shuffle_bytes = 0
        lost = []
        for p in self.apps:
            path = os.path.join(self.dir, "apps", p.name + ".json")
            if p.returncode != 0:
                self.problems.append("app %s exited %d (see %s)" % (
                    p.name, p.returncode, os.path.join(self.dir, "apps", p.name + ".log")))
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError) as ex:
                self.problems.append("app %s wrote no result (%s)" % (p.name, ex))
                continue
            if doc.get("rest_error"):
                self.problems.append("app %s could not read its REST API: %s" % (p.name, doc["rest_error"]))
            if not doc.get("jobs") or not doc.get("stages"):
                self.problems.append("app %s: the REST API listed no jobs or stages" % p.name)
            correct += 1 if doc.get("correct") else 0
            if not doc.get("correct"):
                self.problems.append("app %s: wrong result" % p.name)
            for j in doc.get("jobs", []):
                failed_tasks += j.get("numFailedTasks") or 0
                if j.get("status") != "SUCCEEDED":
                    failed_jobs += 1
            for s in doc.get("stages", []):
                failed_tasks += 0   # counted per job above (stage attempts repeat them)
                if (s.get("attemptId") or 0) > 0:
                    retries += 1
                if s.get("status") != "COMPLETE" or (s.get("numFailedTasks") or 0):
                    self.problems.append("app %s stage %s attempt %s: %s, %s failed tasks%s" % (
                        p.name, s.get("stageId"), s.get("attemptId"), s.get("status"),
                        s.get("numFailedTasks"), (": " + s["failureReason"][:200])
                        if s.get("failureReason") else ""))
                shuffle_bytes += s.get("shuffleWriteBytes") or 0
            for x in doc.get("executors", []):
                # Only the app's own dynamic allocation may take an executor away ("Executor
                # decommission: spark scale down", or killed by the driver); one whose worker was
                # decommissioned or went away would show another reason.
                r = x.get("removeReason") or ""
                if x.get("id") != "driver" and r and not re.search(r"spark scale down|killed by driver",
                                                                  r, re.I):
                    lost.append("%s %s: %s" % (p.name, x.get("id"), r[:120]))
                if x.get("failedTasks"):
                    lost.append("%s executor %s: %s failed tasks" % (p.name, x.get("id"), x["failedTasks"]))
        if failed_tasks:
            self.problems.append("%d failed task(s)" % failed_tasks)
        if retries:
            self.problems.append("%d stage retr%s" % (retries, "y" if retries == 1 else "ies"))
        if failed_jobs:
            self.problems.append("%d job(s) not SUCCEEDED" % failed_jobs)
        if lost:
            self.problems.append("executors lost: %s" % "; ".join(lost[:5]))
        if shuffle_bytes <= 0:
            self.problems.append("the apps wrote no shuffle data")
        self.res.update(failed_tasks=failed_tasks, retries=retries, failed_jobs=failed_jobs,
                        correct=correct, napps=len(self.apps), shuffle_mb=shuffle_bytes / 1e6)

    def check_audit(self):
        """Every decision in sparkscale.decisions has exactly one ActuationResult, none failed."""
        ctl = os.path.join(self.env.build, "tools", "sparkscalectl", "sparkscalectl")
        decisions = results = None
        deadline = time.monotonic() + 20
        while True:
            r = subprocess.run([ctl, "audit", "--brokers", self.brokers, "--json", "--wait-s", "10"],
                               capture_output=True, text=True, timeout=60)
            recs = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
            decisions = [x for x in recs if x.get("type") == "decision" and x.get("cluster") == CLUSTER]
            results = [x for x in recs if x.get("type") == "result" and x.get("cluster") == CLUSTER]
            if r.returncode == 0 and len(results) >= len(decisions) or time.monotonic() > deadline:
                break
            time.sleep(1)
        with open(os.path.join(self.dir, "audit.jsonl"), "w") as f:
            f.write(r.stdout)
        if r.returncode != 0:
            self.problems.append("sparkscalectl audit exited %d: %s" % (r.returncode, r.stderr[-300:]))
        pos = {}
        for x in results:
            k = (x.get("decision_topic"), x.get("decision_partition"), x.get("decision_offset"))
            pos[k] = pos.get(k, 0) + 1
        missing = dup = 0
        for d in decisions:
            n = pos.pop((d.get("topic"), d.get("partition"), d.get("offset")), 0)
            missing += n == 0
            dup += n > 1
        outcomes = {}
        for x in results:
            outcomes[x.get("outcome")] = outcomes.get(x.get("outcome"), 0) + 1
        if missing or dup or pos:
            self.problems.append("audit: %d decisions, %d results: %d without a record, %d with more "
                                 "than one, %d records of no decision" % (
                                     len(decisions), len(results), missing, dup, len(pos)))
        bad = {k: v for k, v in outcomes.items() if k in ("FAILED", "EXPIRED")}
        if bad:
            errs = [x.get("error") for x in results if x.get("outcome") in bad][:3]
            self.problems.append("audit outcomes %s: %s" % (bad, errs))
        if not decisions:
            self.problems.append("no decision in Kafka")
        self.res.update(decisions=len(decisions), audits=len(results), outcomes=outcomes)

    def check_elasticity(self, spans):
        """Workers rose in each burst and fell back to the floor after it."""
        t0, b2 = self.t0, self.t0 + BURST2_AT * self.scale
        b1_end = max(self.ends[n] for _, n, *_ in WORKLOAD if n.startswith("b1"))
        peak1 = max([alive_at(spans, s) for _, s, _ in spans if t0 <= s < b2] + [0])
        peak2 = max([alive_at(spans, s) for _, s, _ in spans if s >= b2] + [0])
        gap = min([alive_at(spans, t) for t in frange(b1_end, b2, 0.5)] + [99])
        end = alive_at(spans, self.t_settled)
        self.res.update(peak1=peak1, peak2=peak2, gap_min=gap, end_workers=end)
        if peak1 < 4 or peak2 < 4:
            self.problems.append("workers did not rise with demand: peaks %d and %d (want >= 4)"
                                 % (peak1, peak2))
        if gap > 1:
            self.problems.append("workers did not fall to 1 between the bursts (lowest %d)" % gap)
        if end > 1:
            self.problems.append("workers did not fall to 1 after the workload (%d)" % end)

    # ---- the whole run ----
    def run(self):
        log("---- run %s (%s)" % (self.name, self.mode))
        t_start = time.time()
        self.start_daemons()
        sampler = Sampler(self.env, True)
        sampler.start()
        try:
            if self.mode == "static":
                log("%s: starting %d workers with spark-workers start" % (self.name, PEAK_EXECUTORS))
                self.sw("start", str(PEAK_EXECUTORS))
                wait_for("%d workers ALIVE" % PEAK_EXECUTORS,
                         lambda: self.env.master_json().get("aliveworkers") == PEAK_EXECUTORS, 60)
            else:
                wait_for("the actuator's first worker ALIVE",
                         lambda: self.env.master_json().get("aliveworkers") == 1, 60)
            time.sleep(1)
            self.run_workload()
            log("%s: workload done, makespan %.1f s" % (self.name, self.t_end - self.t0))
            if self.mode == "static":
                self.t_settled = self.t_end
            else:
                # Back to the floor: the scale-in after the last app.
                try:
                    wait_for("back to 1 worker",
                             lambda: len(read_events_alive(self.state)) == 1, 40, every=0.5)
                except Fail as ex:
                    self.problems.append(str(ex))
                self.t_settled = time.time()
                self.check_audit()
        finally:
            sampler.stop()
            self.rows = sampler.rows
            self.stop_daemons()
            try:
                self.sw("stop-all")
            except Fail as ex:
                self.problems.append(str(ex))
        spans = read_events(os.path.join(self.state, "events.log"))
        self.spans = spans
        t1 = self.t_settled
        self.res.update(
            makespan=self.t_end - self.t0,
            worker_s=worker_seconds(spans, self.t0, t1),
            measured_s=t1 - self.t0,
            starts=sum(1 for _, s, _ in spans if s >= self.t0),
            peak=max([alive_at(spans, s) for _, s, _ in spans if s >= self.t0] +
                     [alive_at(spans, self.t0)]),
            wall=time.time() - t_start)
        self.check_apps()
        if self.mode != "static":
            self.check_elasticity(spans)
            lat = start_latencies(self.state)
            if lat:
                self.res["start_latency_s"] = {"median": lat[len(lat) // 2], "max": lat[-1]}
        self.write_timeline()
        self.res["problems"] = self.problems
        log("%s: %s" % (self.name, json.dumps({k: v for k, v in self.res.items()
                                                if k not in ("problems",)})))
        return self.res

    def write_timeline(self):
        with open(os.path.join(self.dir, "timeline.tsv"), "w") as f:
            f.write("t_s\tworkers\tmaster_alive\tbusy\tapps\twaiting\tdemand\tneeded\tdesired\n")
            for r in self.rows:
                f.write("%.1f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" % (
                    r["t"] - self.t0, alive_at(self.spans, r["t"]), r.get("alive", ""),
                    r.get("busy", ""), r.get("apps", ""), r.get("waiting", ""),
                    r.get("demand", ""), r.get("needed", ""), r.get("desired", "")))


def read_events_alive(state):
    return [s for s in read_events(os.path.join(state, "events.log")) if s[2] is None]


def frange(a, b, step):
    while a < b:
        yield a
        a += step


def replay(env, run):
    """sparkscalectl replay of the run's recording: policy vs the Oshinko rule on that demand."""
    ctl = os.path.join(env.build, "tools", "sparkscalectl", "sparkscalectl")
    # The recording carries the real cluster's size, so the policy's workers came as fast as real
    # workers start; the Oshinko rule's simulated ones get the same delay: the run's median time
    # from a worker's launch to its registration with the master.
    delay = max(1, int(round(run.res.get("start_latency_s", {}).get("median", 1))))
    out = {"delay_s": delay}
    # Then both on one simulated cluster (the same actuator, replay's default 1 s; executors idle
    # out after the run's executorIdleTimeout): the policy against the rule, start-up aside.
    for key, extra, name in (("", ["--actuation-delay-s", str(delay)], "replay"),
                             ("sim_", ["--simulate-cluster", "--executor-idle-timeout-s", "3"],
                              "replay_simulated")):
        r = subprocess.run([ctl, "replay", "--config", run.yaml, "--input", run.record, "--cluster",
                            CLUSTER, "--every", "5", "--svg", os.path.join(run.dir, name + ".svg")]
                           + extra, capture_output=True, text=True, timeout=120)
        with open(os.path.join(run.dir, name + ".txt"), "w") as f:
            f.write(r.stdout + r.stderr)
        m = re.search(r"^summary: policy (\d+) worker-s \(([\d.]+) of static\), (\d+) s under-provisioned"
                      r" \| static (\d+) workers: (\d+) worker-s, (\d+) s \| oshinko rule: (\d+) worker-s"
                      r" \(([\d.]+)\), (\d+) s", r.stdout, re.M)
        if r.returncode != 0 or not m:
            return {"error": "sparkscalectl replay exited %d: %s" % (r.returncode,
                                                                       (r.stderr or r.stdout)[-300:])}
        g = m.groups()
        out.update({key + "policy_ws": int(g[0]), key + "policy_under": int(g[2]),
                    key + "static_workers": int(g[3]), key + "static_ws": int(g[4]),
                    key + "oshinko_ws": int(g[6]), key + "oshinko_under": int(g[8])})
    return out


def keep_recording(src, dst):
    """Copies a recording with its master and Jolokia answers re-serialized without the master's
    pretty-printing blanks (the same JSON, a third of the bytes): a fixture for replay."""
    with open(src) as f, open(dst, "w") as g:
        for line in f:
            p = line.rstrip("\n").split(" ", 3)
            if len(p) == 4 and p[1] in ("m", "j"):
                try:
                    p[3] = json.dumps(json.loads(p[3]), separators=(",", ":"))
                except ValueError:
                    pass
                line = " ".join(p) + "\n"
            g.write(line)


def table(results, static, replays):
    """One table: the runs, then the Oshinko rule and our policy replayed on each elastic run's
    recorded demand (workers counted from registration there, from launch to stop in the runs)."""
    hdr = ("run", "workers", "worker-s", "vs static", "under-provisioned s", "makespan s",
           "vs static", "failed tasks", "stage retries", "decisions/audits", "results ok")
    rows = []
    rep = dict(replays)
    for r in results:
        rel_ws = "%.2f" % (r["worker_s"] / static["worker_s"]) if static else "-"
        rel_mk = "%.2f" % (r["makespan"] / static["makespan"]) if static else "-"
        workers = ("%d static" % r["peak"]) if r["mode"] == "static" else \
            "1..%d (%d starts)" % (r["peak"], r["starts"])
        da = "-" if r["mode"] == "static" else "%d/%d" % (r.get("decisions", 0), r.get("audits", 0))
        under = "0" if r["mode"] == "static" else str(rep.get(r["name"], {}).get("policy_under", "?"))
        label = {"static": "static, sized for the peak", "need": "elastic, idle_mode need",
                 "busy": "elastic, idle_mode busy"}[r["mode"]]
        rows.append((label, workers, "%.0f" % r["worker_s"], rel_ws, under, "%.1f" % r["makespan"],
                     rel_mk, str(r.get("failed_tasks", "?")), str(r.get("retries", "?")), da,
                     "%d/%d" % (r.get("correct", 0), r.get("napps", 0))))
    for name, rp in replays:
        if "error" in rp:
            continue
        for label, ws, under in (("replay of %s: Oshinko rule" % name, rp["oshinko_ws"],
                                  rp["oshinko_under"]),
                                 ("replay of %s: policy" % name, rp["policy_ws"], rp["policy_under"])):
            rel = "%.2f" % (ws / static["worker_s"]) if static else "-"
            start = "(%d s start)" % rp["delay_s"] if "Oshinko" in label else "(as run)"
            rows.append((label, start, str(ws), rel, str(under),
                         "", "", "", "", "", ""))
        for label, ws, under in (("replay of %s, simulated cluster: Oshinko rule" % name,
                                  rp["sim_oshinko_ws"], rp["sim_oshinko_under"]),
                                 ("replay of %s, simulated cluster: policy" % name,
                                  rp["sim_policy_ws"], rp["sim_policy_under"])):
            rel = "%.2f" % (ws / static["worker_s"]) if static else "-"
            rows.append((label, "(1 s start)", str(ws), rel, str(under),
                         "", "", "", "", "", ""))
    w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
    fmt = "| " + " | ".join("%%-%ds" % n for n in w) + " |"
    lines = [fmt % hdr, "|" + "|".join("-" * (n + 2) for n in w) + "|"]
    lines += [fmt % x for x in rows]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--runs", default="need,busy,static")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="stretch the workload (schedule and map stages) by this factor")
    ap.add_argument("--no-bars", action="store_true", help="report the bars, do not fail on them")
    ap.add_argument("--keep-recording", help="copy the need run's demand recording here")
    ap.add_argument("--pgid-file", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_stage = time.time()
    procs = Procs(a.pgid_file)
    results, runs, problems = [], [], []
    try:
        env = Env(a, procs)
        train_cds(env)
        env.write_conf()    # now with the archives
        for i, name in enumerate(a.runs.split(",")):
            if name not in ("need", "busy", "static"):
                raise Fail("unknown run %r (need, busy, static)" % name)
            env.start_master(name)
            run = Run(env, name, name, a.scale, "127.0.%d" % i)
            runs.append(run)
            try:
                results.append(run.run())
            except Fail as ex:
                problems.append("%s: %s" % (name, ex))
                log("%s FAILED: %s" % (name, ex))
                try:
                    run.stop_daemons()
                    run.sw("stop-all", check=False)
                except Exception:   # noqa: BLE001  (best effort after a failure)
                    pass
            finally:
                env.stop_master()
    except Fail as ex:
        problems.append(str(ex))
    finally:
        procs.stop_all()
    static = next((r for r in results if r["mode"] == "static"), None)
    replays = []
    for run in runs:
        if run.mode != "static" and os.path.exists(run.record):
            rp = replay(env, run)
            run.res["replay"] = rp
            replays.append((run.name, rp))
            if "error" in rp:
                problems.append("%s replay: %s" % (run.name, rp["error"]))
    if a.keep_recording:
        need = next((r for r in runs if r.mode == "need"), None)
        if need and os.path.exists(need.record):
            keep_recording(need.record, a.keep_recording)
    bars = []
    for r in results:
        problems += ["%s: %s" % (r["name"], p) for p in r["problems"]]
        if r["mode"] == "static" or not static:
            continue
        ws, mk = r["worker_s"] / static["worker_s"], r["makespan"] / static["makespan"]
        ok_ws, ok_mk = ws <= BARS["worker_s"], mk <= BARS["makespan"]
        ok_f = r.get("failed_tasks") == 0 and r.get("retries") == 0
        bars.append("%s: worker-seconds %.2f of static (<= %.2f: %s), makespan %.2f of static "
                    "(<= %.2f: %s), failed tasks %s and stage retries %s (0: %s)" % (
                        r["name"], ws, BARS["worker_s"], "yes" if ok_ws else "NO", mk,
                        BARS["makespan"], "yes" if ok_mk else "NO", r.get("failed_tasks"),
                        r.get("retries"), "yes" if ok_f else "NO"))
        if not (ok_ws and ok_mk) and not a.no_bars:
            problems.append("%s: bars not met" % r["name"])
    wall = time.time() - t_stage
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump({"results": results, "replays": replays, "problems": problems, "wall_s": wall}, f,
                  indent=1)
    print()
    print("real Spark elasticity end to end: %d apps a run, peak %d executors (static: %d workers),"
          " scale %.1f, scale_down_window_s %d, idle_release_s %d, poll %d s, metrics period 1 s"
          % (len(WORKLOAD), PEAK_EXECUTORS, PEAK_EXECUTORS, a.scale, SCALE_DOWN_WINDOW_S,
             IDLE_RELEASE_S, POLL_INTERVAL_S))
    if results:
        print(table(results, static, replays))
    for b in bars:
        print("bars: " + b)
    print("wall time: %.0f s (all runs, Spark start-up included)" % wall)
    if problems:
        for p in problems:
            print("e2e: FAIL: %s" % p)
        print("e2e: FAIL (logs under %s)" % a.work)
        return 1
    print("e2e: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
