"""sparkcluster.py: the real Spark behind `scripts/demo.sh --spark`.

A Spark standalone Master from the pyspark wheel (tests/spark/.venv, as the
real-Spark check installs it) configured with the files of deploy/spark/
(GraphiteSink, dynamic allocation, spreadOut=false, decommission with
allow.mode=ALLOW) plus small sizes for one machine; no worker at start: every
Worker process is started and stopped by spark-workers, the exec command
sparkscale-actuator runs. Two PySpark apps (tests/spark/job.py, sleeping
tasks) with dynamic allocation overlap in time, so the demand rises, holds and
falls. Everything runs in process groups of its own and is stopped on the way
out (the workers through their pid files).
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPARK_TESTS = os.path.join(REPO, "tests", "spark")
VENV_PY = os.path.join(SPARK_TESTS, ".venv", "bin", "python")
PYSPARK_VERSION = "3.5.9"     # tests/spark/setup.sh's pin


def wheel_cached():
    """A pyspark wheel pip built before (pip keeps it in its cache): setup.sh then
    installs without the ~300 MB download."""
    cache = os.environ.get("PIP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pip")
    return bool(glob.glob(os.path.join(cache, "wheels", "**", "pyspark-%s-*.whl" % PYSPARK_VERSION),
                          recursive=True))


def pyspark_ready():
    if not os.access(VENV_PY, os.X_OK):
        return False
    r = subprocess.run([VENV_PY, "-c", "import pyspark; print(pyspark.__version__)"],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == PYSPARK_VERSION


NOT_CACHED = """\
demo --spark: PySpark %s is not installed in tests/spark/.venv and its wheel is
not in pip's cache. The real-Spark demo needs it (a ~300 MB download from PyPI,
once; the test suite's real-Spark stage uses the same copy). Run

    tests/spark/setup.sh

then scripts/demo.sh --spark again. scripts/demo.sh without --spark needs nothing else.
""" % PYSPARK_VERSION


def ensure_pyspark():
    """True when PySpark is usable; installs it from pip's cache when only the wheel is there."""
    if pyspark_ready():
        return True
    if not wheel_cached():
        return False
    print("demo --spark: installing PySpark %s from pip's wheel cache (tests/spark/setup.sh) ..."
          % PYSPARK_VERSION, flush=True)
    r = subprocess.run([os.path.join(SPARK_TESTS, "setup.sh")], stdout=subprocess.DEVNULL)
    return r.returncode == 0 and pyspark_ready()


class SparkDemo:
    kind = "real Spark %s" % PYSPARK_VERSION
    title = ("a real Spark %s standalone cluster (pyspark wheel) whose Worker processes only "
             "sparkscale-actuator starts and stops" % PYSPARK_VERSION)

    def __init__(self, work, short, carbon, ports):
        sys.path.insert(0, SPARK_TESTS)
        import sparklib
        self.sparklib = sparklib
        self.work = work
        self.short = short
        self.carbon = carbon
        self.worker_cores, self.worker_mem_mb = 2, 1024
        self.exec_cores, self.exec_mem_mb = 1, 512
        self.max_workers = 4
        self.window_s = 10 if short else 20
        self.expiry_s = 5 if short else 10
        self.decom_s = 60
        self.exec_timeout_s = 30
        self.story_budget_s = 300
        self.state = os.path.join(work, "spark")
        self.master_port, self.master_rpc = ports      # web UI (/json/), RPC
        tool = os.path.join(HERE, "spark-workers")
        self.command = [tool, self.state, "resize"]
        self.size_command = [tool, self.state, "count"]
        self.procs = []
        self.events = []
        self.jobs = []
        self.t0 = None
        self.prev = {}
        self.seen_hosts = set()

    # ---- start and stop -------------------------------------------------------------------

    def _spawn(self, name, argv):
        log = open(os.path.join(self.state, name + ".log"), "wb")
        p = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.state)
        p.name = name
        self.procs.append(p)
        return p

    def start(self):
        sl = self.sparklib
        os.makedirs(os.path.join(self.state, "workers"), exist_ok=True)
        conf = os.path.join(self.state, "conf")
        # deploy/spark's files with the demo's overrides (sparklib: executors of 1 core and
        # 512 MB, maxExecutors 2, executorIdleTimeout 4 s, GraphiteSink to sparkscaled).
        metrics, defaults = sl.write_conf(conf, self.carbon[1], "demo")
        with open(defaults, "a") as f:
            f.write("spark.worker.timeout 10\n")
        home = sl.spark_home()
        self.home = home
        self.env = dict(os.environ)
        self.env.update({
            "SPARK_HOME": home, "SPARK_CONF_DIR": conf, "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_HOSTNAME": "127.0.0.1", "SPARK_DAEMON_MEMORY": "384m",
            "SPARK_LOG_DIR": os.path.join(self.state, "logs"),
            "PYSPARK_PYTHON": VENV_PY, "PYSPARK_DRIVER_PYTHON": VENV_PY,
            "SPARK_MASTER_OPTS": "-Dspark.metrics.conf=%s" % metrics,
            "SPARK_WORKER_OPTS": "-Dspark.metrics.conf=%s" % metrics,
        })
        for k in ("PYSPARK_SUBMIT_ARGS", "SPARK_ENV_LOADED", "SPARK_SCALA_VERSION"):
            self.env.pop(k, None)
        self.defaults = defaults
        self.master_url = "spark://127.0.0.1:%d" % self.master_rpc
        self.master_ui = "http://127.0.0.1:%d" % self.master_port
        with open(os.path.join(self.state, "env.json"), "w") as f:
            json.dump({"spark_home": home, "master_url": self.master_url, "master_ui": self.master_ui,
                       "defaults": defaults, "worker_cores": self.worker_cores,
                       "worker_memory": "%dm" % self.worker_mem_mb,
                       "env": {k: self.env[k] for k in ("SPARK_HOME", "SPARK_CONF_DIR", "SPARK_DAEMON_MEMORY",
                                                        "PYSPARK_PYTHON", "SPARK_WORKER_OPTS")}}, f)
        print("starting the Spark master (%s, log %s/master.log) ..." % (self.master_url, self.state),
              flush=True)
        self._spawn("master", [os.path.join(home, "bin", "spark-class"), "org.apache.spark.deploy.master.Master",
                               "--host", "127.0.0.1", "--port", str(self.master_rpc),
                               "--webui-port", str(self.master_port), "--properties-file", defaults])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.procs[0].poll() is not None:
                raise RuntimeError("the Spark master exited (see %s/master.log)" % self.state)
            if self.master_json():
                return
            time.sleep(0.5)
        raise RuntimeError("the Spark master did not answer within 90 s (see %s/master.log)" % self.state)

    def start_story(self):
        self.t0 = time.monotonic()

    def _submit(self, name, tasks, task_s, linger_s):
        p = self._spawn(name, [os.path.join(self.home, "bin", "spark-submit"), "--master", self.master_url,
                               "--properties-file", self.defaults, "--driver-memory", "512m",
                               "--name", name, os.path.join(SPARK_TESTS, "job.py"),
                               str(tasks), str(task_s), str(linger_s)])
        self.jobs.append(p)
        self.events.append((time.time(), "spark-submit %s (%d tasks of %g s; log %s/%s.log)"
                            % (name, tasks, task_s, self.state, name)))

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for f in glob.glob(os.path.join(self.state, "workers", "*.pid")):
            try:
                os.killpg(int(open(f).read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        for f in glob.glob(os.path.join(self.state, "workers", "*.pid")):
            try:
                os.killpg(int(open(f).read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    # ---- what the table shows ---------------------------------------------------------------

    def master_json(self):
        try:
            with urllib.request.urlopen(self.master_ui + "/json/", timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def snapshot(self):
        t = 0.0 if self.t0 is None else time.monotonic() - self.t0
        # the workload: an app at once, a second one while it runs
        plan = [(0, "etl-nightly", 60, 1.5, 6), (25, "adhoc-query", 30, 1.5, 6)]
        if self.short:
            plan = [(0, "etl-nightly", 40, 1.5, 4), (15, "adhoc-query", 20, 1.5, 4)]
        for at, name, tasks, task_s, linger in plan[len(self.jobs):]:
            if self.t0 is not None and t >= at:
                self._submit(name, tasks, task_s, linger)
        for p in self.jobs:
            if p.poll() is not None and not getattr(p, "reported", False):
                p.reported = True
                self.events.append((time.time(), "%s finished (exit %d)" % (p.name, p.returncode)))
        m = self.master_json() or {}
        ws = [w for w in m.get("workers", []) if w.get("state") in ("ALIVE", "DECOMMISSIONED")]
        size = self.size()
        listed = {w["host"] for w in ws}
        # a worker process the master does not list: starting, or stopping once it was listed
        unlisted = [h for h in self.pid_hosts() if h not in listed]
        stopping = sum(1 for h in unlisted if h in self.seen_hosts)
        self.seen_hosts |= listed
        for w in ws:
            key = w["id"]
            if self.prev.get(key) != w["state"]:
                self.events.append((time.time(), "master: worker %s %s" % (w["host"], w["state"])))
                self.prev[key] = w["state"]
        apps = m.get("activeapps", [])
        execs = sum(w.get("coresused", 0) for w in ws) // self.exec_cores
        return {
            "t": t, "apps": len(apps), "wanted": None, "running": execs,
            "alive": sum(1 for w in ws if w["state"] == "ALIVE"),
            "decommissioned": sum(1 for w in ws if w["state"] == "DECOMMISSIONED"),
            "starting": len(unlisted) - stopping,
            "stopping": stopping,
            "busy": sum(1 for w in ws if w.get("coresused")),
            "size": size,
            "story_done": len(self.jobs) == len(plan) and all(p.poll() is not None for p in self.jobs),
        }

    def take_events(self):
        ev, self.events = self.events, []
        return ev

    def pid_hosts(self):
        """Hosts of the worker processes that run (spark-workers' pid files), read without
        its lock (a resize may hold it while a worker stops)."""
        out = []
        for f in glob.glob(os.path.join(self.state, "workers", "*.pid")):
            try:
                os.kill(int(open(f).read().strip()), 0)
                out.append(os.path.basename(f)[:-4])
            except (OSError, ValueError):
                pass
        return out

    def size(self):
        return len(self.pid_hosts())

    def actions(self):
        try:
            return [json.loads(line) for line in open(os.path.join(self.state, "actions.jsonl")) if line.strip()]
        except OSError:
            return []

    def violations(self):
        out = ["busy worker %s removed (%s cores used)" % (h, c) for a in self.actions()
               for h, c in a.get("busy_removed", [])]
        out += ["%s exited %d (see %s/%s.log)" % (p.name, p.returncode, self.state, p.name)
                for p in self.jobs if p.poll() not in (None, 0)]
        return out
