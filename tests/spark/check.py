"""check.py: drives a real Spark (Master, Worker, dynamic-allocation job) into a running sparkscaled
and asserts, from GET /v1/clusters, that sparkscaled saw the app's demand and the master's gauges.
Usage: check.py --http HOST:PORT --carbon-port N [--cluster sparkcheck] [--timeout 200]
Prints one "spark check: PASS ..." or "spark check: FAIL ..." line last; exit 0 only on PASS."""

import argparse
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparklib  # noqa: E402
from sparklib import log  # noqa: E402


def gauge(gauges, name):
    """The latest value of a gauge in the /v1/clusters JSON, or None."""
    g = gauges.get(name) if isinstance(gauges, dict) else None
    if isinstance(g, dict):
        v = g.get("value")
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    return None


class Observer:
    """Accumulates what sparkscaled reported over the run."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.polls = 0
        self.http_errors = 0
        self.last_ok = time.monotonic()
        self.cluster_seen = False
        self.apps = {}          # app id -> dict of what was seen
        self.alive_workers = []  # distinct successive values of master.aliveWorkers
        self.worker_cores_used_max = None
        self.has_worker_sources = False
        self.last_doc = None

    def poll(self, http):
        try:
            with urllib.request.urlopen("http://%s/v1/clusters" % http, timeout=3) as r:
                doc = json.load(r)
        except (OSError, ValueError) as e:
            self.http_errors += 1
            log("GET /v1/clusters failed: %s" % e)
            return
        self.polls += 1
        self.last_ok = time.monotonic()
        clusters = doc.get("clusters") if isinstance(doc, dict) else None
        if not isinstance(clusters, list):
            log("/v1/clusters has no \"clusters\" array: %.200s" % json.dumps(doc))
            return
        mine = [c for c in clusters if isinstance(c, dict) and c.get("name") == self.cluster]
        if not mine:
            return
        c = mine[0]
        self.cluster_seen = True
        self.last_doc = c
        for a in c.get("apps") or []:
            if not isinstance(a, dict) or not isinstance(a.get("id"), str):
                continue
            s = self.apps.setdefault(a["id"], {"target": [], "all": [], "gauges": set(), "polls": 0})
            s["polls"] += 1
            g = a.get("gauges") or {}
            s["gauges"].update(g.keys() if isinstance(g, dict) else [])
            for key, name in (("target", "numberTargetExecutors"), ("all", "numberAllExecutors")):
                v = gauge(g, name)
                if v is not None and (not s[key] or s[key][-1] != v):
                    s[key].append(v)
        v = gauge((c.get("master") or {}).get("gauges") or {}, "aliveWorkers")
        if v is not None and (not self.alive_workers or self.alive_workers[-1] != v):
            self.alive_workers.append(v)
        ws = c.get("worker_sources")
        if isinstance(ws, list):
            self.has_worker_sources = True
            for w in ws:
                v = gauge((w or {}).get("gauges") or {}, "coresUsed") if isinstance(w, dict) else None
                if v is not None and (self.worker_cores_used_max is None or v > self.worker_cores_used_max):
                    self.worker_cores_used_max = v

    def verdict(self, app_id):
        """(ok, [problems]): ok once everything wanted has been seen."""
        problems = []
        if not app_id:
            problems.append("the job's app id is unknown (no 'JOB app id' line in job.log)")
        if not self.cluster_seen:
            problems.append("cluster %r not in /v1/clusters" % self.cluster)
        spark_apps = [i for i in self.apps if i.startswith("app-")]
        if not spark_apps:
            problems.append("no app with an id starting with 'app-' (apps seen: %s)" % sorted(self.apps))
        if app_id and app_id not in self.apps:
            problems.append("the job's app id %s never appeared" % app_id)
        # Only one application ran: anything else is a mis-decoded path (executor metrics
        # "<app>.<executor id>.*", or the driver's LiveListenerBus timer named
        # "...listenerProcessingTime.org.apache.spark.ExecutorAllocationManager$...").
        if app_id and set(self.apps) - {app_id}:
            problems.append("apps other than the job's: %s" % sorted(set(self.apps) - {app_id}))
        for i, s in self.apps.items():
            odd = sorted(g for g in s["gauges"] if not re.fullmatch(r"[A-Za-z0-9_]+", g))
            if odd:
                problems.append("app %s has mis-decoded gauge names %s" % (i, odd))
        a = self.apps.get(app_id)
        if a is not None:
            for name in ("numberTargetExecutors", "numberAllExecutors"):
                if name not in a["gauges"]:
                    problems.append("app has no %s gauge (has %s)" % (name, sorted(a["gauges"])))
            if not any(v > 0 for v in a["target"]):
                problems.append("numberTargetExecutors never > 0 (values %s)" % a["target"])
            if not any(v > 0 for v in a["all"]):
                problems.append("numberAllExecutors never > 0 (values %s)" % a["all"])
            # Once the job is done and executors idle out, demand must fall back to 0.
            t = a["target"]
            peak = next((k for k, v in enumerate(t) if v > 0), None)
            if peak is None or not any(v == 0 for v in t[peak:]):
                problems.append("numberTargetExecutors did not return to 0 after the job (values %s)" % t)
        if not any(v >= 1 for v in self.alive_workers):
            problems.append("master aliveWorkers >= 1 never seen (values %s)" % self.alive_workers)
        if self.has_worker_sources and not (self.worker_cores_used_max or 0) > 0:
            problems.append("no worker source reported coresUsed > 0")
        return not problems, problems

    def summary(self, app_id):
        parts = ["polls=%d http_errors=%d" % (self.polls, self.http_errors)]
        for i, a in sorted(self.apps.items()):
            parts.append("app %s%s: numberTargetExecutors %s, numberAllExecutors %s, gauges %s" % (
                i, " (the job)" if i == app_id else "", a["target"], a["all"], sorted(a["gauges"])))
        parts.append("master aliveWorkers %s" % self.alive_workers)
        if self.has_worker_sources:
            parts.append("worker coresUsed max %s" % self.worker_cores_used_max)
        return "; ".join(parts)


def job_app_id(job_log):
    try:
        with open(job_log) as f:
            m = re.search(r"^JOB app id (\S+)", f.read(), re.M)
            return m.group(1) if m else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True, help="sparkscaled's ingest.http host:port")
    ap.add_argument("--carbon-port", type=int, required=True)
    ap.add_argument("--cluster", default="sparkcheck")
    ap.add_argument("--prefix", default="sparkcheck")
    ap.add_argument("--timeout", type=float, default=200, help="seconds for the whole Spark run")
    ap.add_argument("--work", default=os.path.join(sparklib.HERE, "work", "check"))
    ap.add_argument("--pgid-file", help="append Spark process group ids here (for the caller's trap)")
    ap.add_argument("--all-instances", action="store_true",
                    help="sink on every Spark instance, unfiltered (executors, decoy paths): ~500 lines/s")
    a = ap.parse_args()
    # SIGTERM (from the caller's timeout or trap) unwinds through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    deadline = time.monotonic() + a.timeout
    obs = Observer(a.cluster)
    app_id = None
    failure = None
    try:
        with sparklib.SparkCluster(os.path.join(a.work, "spark"), a.carbon_port, a.prefix,
                                   sink_all=a.all_instances) as cl:
            cl.start(timeout=min(90, a.timeout))
            job = cl.submit(tasks=24, task_s=1.0, linger_s=14)
            if a.pgid_file:
                with open(a.pgid_file, "a") as f:
                    f.write("".join("%d\n" % p.pid for p in cl.procs))
            job_log = os.path.join(cl.work, "job.log")
            while True:
                obs.poll(a.http)
                app_id = app_id or job_app_id(job_log)
                ok, _ = obs.verdict(app_id)
                if ok:
                    break
                if job.poll() is not None:
                    # The app has stopped; a last look at what sparkscaled kept.
                    time.sleep(1.5)
                    obs.poll(a.http)
                    if job.returncode != 0:
                        failure = "the Spark job failed (exit %d, see %s)" % (job.returncode, job_log)
                    break
                if time.monotonic() - obs.last_ok > 15:
                    failure = "sparkscaled's HTTP API has not answered for 15 s"
                    break
                if time.monotonic() > deadline:
                    failure = "timed out after %.0f s" % a.timeout
                    break
                cl.check_alive()
                time.sleep(0.5)
    except RuntimeError as e:
        failure = str(e)
    ok, problems = obs.verdict(app_id)
    print("spark check: saw %s" % obs.summary(app_id))
    if obs.last_doc is not None:
        print("spark check: last cluster JSON: %.1500s" % json.dumps(obs.last_doc, sort_keys=True))
    if failure:
        problems.insert(0, failure)
    if ok and not failure:
        print("spark check: PASS (app %s: numberTargetExecutors %s, master aliveWorkers %s)"
              % (app_id, obs.apps[app_id]["target"], obs.alive_workers))
        return 0
    print("spark check: FAIL: %s" % "; ".join(problems))
    return 1


if __name__ == "__main__":
    sys.exit(main())
