"""check.py: drives a real Spark (Master, Worker, dynamic-allocation job) into a running sparkscaled
and asserts, from GET /v1/clusters, that sparkscaled saw the app's demand and the master's gauges.
With --master-ui, sparkscaled also polls the master's /json/: busy and idle workers (real id and
port) as the job runs and ends. With --jolokia-port and --jolokia-cluster, the driver runs the
real Jolokia JVM agent that sparkscaled polls into that cluster: same app id, same gauges, same
values at the same report as the driver's GraphiteSink.
Usage: check.py --http HOST:PORT --carbon-port N [--cluster sparkcheck] [--timeout 200]
                [--master-ui PORT] [--jolokia-jar JAR --jolokia-port PORT --jolokia-cluster NAME]
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


def series_of(app):
    """{gauge: (ts_ms, value)} of an app in the /v1/clusters JSON."""
    out = {}
    for name, g in ((app or {}).get("gauges") or {}).items():
        if isinstance(g, dict) and isinstance(g.get("ts_ms"), int):
            v = gauge(app["gauges"], name)
            if v is not None:
                out[name] = (g["ts_ms"], v)
    return out


class MasterObserver:
    """What sparkscaled made of its polls of the real master's /json/ (cluster with spark_master)."""

    def __init__(self, worker_port):
        self.worker_port = worker_port
        self.fresh_polls = 0
        self.busy = []            # distinct successive workers.busy while the master answer is fresh
        self.current = []
        self.states = []          # distinct successive poller states
        self.workers = {}         # id -> (host, port, state)
        self.idle_after_busy = False
        self.last = None

    def poll(self, c):
        p = (c.get("pollers") or [{}])[0]
        st = p.get("state")
        if st and (not self.states or self.states[-1] != st):
            self.states.append(st)
        sm = c.get("spark_master")
        if not isinstance(sm, dict) or not sm.get("fresh"):
            return
        self.last = sm
        self.fresh_polls += 1
        for w in sm.get("workers") or []:
            self.workers[w.get("id")] = (w.get("host"), w.get("port"), w.get("state"))
        w = c.get("workers") or {}
        for key, seen in (("busy", self.busy), ("current", self.current)):
            v = w.get(key)
            if isinstance(v, int) and (not seen or seen[-1] != v):
                seen.append(v)
        if self.busy and self.busy[-1] == 0 and any(v > 0 for v in self.busy):
            self.idle_after_busy = True

    def verdict(self):
        problems = []
        if not self.fresh_polls:
            problems.append("no fresh master answer in /v1/clusters (poller states %s)" % self.states)
            return problems
        if 1 not in self.current:
            problems.append("workers.current from the master never 1 (values %s)" % self.current)
        if not any(v >= 1 for v in self.busy):
            problems.append("workers.busy from the master never >= 1 while the job ran (values %s)"
                            % self.busy)
        if not self.idle_after_busy:
            problems.append("workers.busy from the master did not return to 0 after the job (values %s)"
                            % self.busy)
        mine = [i for i, (h, port, _) in self.workers.items()
                if port == self.worker_port and h == "127.0.0.1"
                and re.fullmatch(r"worker-\d{14}-127\.0\.0\.1-%d" % self.worker_port, i or "")]
        if not mine:
            problems.append("the worker (127.0.0.1:%d) is not in the master's answer with its real id "
                            "and port (saw %s)" % (self.worker_port, self.workers))
        return problems

    def summary(self):
        return "master: %d fresh answers, current %s, busy %s, poller states %s, workers %s" % (
            self.fresh_polls, self.current, self.busy, self.states, sorted(self.workers))


class JolokiaObserver:
    """The same driver through Jolokia (cluster jcluster) and through its GraphiteSink (cluster
    ccluster): every (gauge, timestamp) both feeds held, compared."""

    def __init__(self, jcluster, ccluster):
        self.jcluster, self.ccluster = jcluster, ccluster
        self.j = {}               # app -> gauge -> {ts_ms: value}
        self.c = {}
        self.states = []
        self.target = []          # distinct successive numberTargetExecutors via Jolokia
        self.final = {}           # cluster -> (desired, reason) last seen

    def poll(self, doc):
        by = {c.get("name"): c for c in doc.get("clusters") or [] if isinstance(c, dict)}
        for name, store in ((self.jcluster, self.j), (self.ccluster, self.c)):
            c = by.get(name)
            if not c:
                continue
            rec = c.get("recommendation") or {}
            self.final[name] = ((c.get("workers") or {}).get("desired"), rec.get("reason"))
            for a in c.get("apps") or []:
                per = store.setdefault(a.get("id"), {})
                for g, (ts, v) in series_of(a).items():
                    per.setdefault(g, {})[ts] = v
        c = by.get(self.jcluster) or {}
        p = (c.get("pollers") or [{}])[0]
        st = p.get("state")
        if st and (not self.states or self.states[-1] != st):
            self.states.append(st)
        for a in c.get("apps") or []:
            v = gauge(a.get("gauges") or {}, "numberTargetExecutors")
            if v is not None and (not self.target or self.target[-1] != v):
                self.target.append(v)

    def compare(self, app_id):
        """(pairs, equal, unexplained mismatches): both feeds sample the same gauge in the same
        second, not at the same instant, so a mismatch at ts is explained when the gauge was
        moving: the value one feed read lies within the range the other feed showed within 2 s."""
        pairs = equal = 0
        odd = []
        j, c = self.j.get(app_id, {}), self.c.get(app_id, {})
        for g in sorted(set(j) & set(c)):
            for ts in sorted(set(j[g]) & set(c[g])):
                pairs += 1
                if j[g][ts] == c[g][ts]:
                    equal += 1
                    continue
                def within(s, v):
                    near = [s[t] for t in s if abs(t - ts) <= 2000]
                    return min(near) <= v <= max(near)
                if not (within(c[g], j[g][ts]) or within(j[g], c[g][ts])):
                    odd.append("%s@%d: jolokia %s, carbon %s" % (g, ts // 1000, j[g][ts], c[g][ts]))
        return pairs, equal, odd

    def verdict(self, app_id):
        problems = []
        if not app_id:
            return ["the job's app id is unknown"]
        if app_id not in self.j:
            problems.append("the job's app %s never came through Jolokia (apps %s, poller states %s)"
                            % (app_id, sorted(self.j), self.states))
            return problems
        if set(self.j) - {app_id}:
            problems.append("apps other than the job's via Jolokia: %s" % sorted(set(self.j) - {app_id}))
        jg, cg = set(self.j[app_id]), set(self.c.get(app_id, {}))
        if jg != cg:
            problems.append("gauge names differ: only Jolokia %s, only carbon %s"
                            % (sorted(jg - cg), sorted(cg - jg)))
        if not any(v > 0 for v in self.target):
            problems.append("numberTargetExecutors via Jolokia never > 0 (values %s)" % self.target)
        peak = next((k for k, v in enumerate(self.target) if v > 0), None)
        if peak is None or not any(v == 0 for v in self.target[peak:]):
            problems.append("numberTargetExecutors via Jolokia did not return to 0 (values %s)"
                            % self.target)
        pairs, equal, odd = self.compare(app_id)
        if pairs < 10:
            problems.append("only %d (gauge, timestamp) pairs held by both feeds" % pairs)
        if odd:
            problems.append("%d value(s) differ between Jolokia and carbon at the same report: %s"
                            % (len(odd), "; ".join(odd[:5])))
        fj, fc = self.final.get(self.jcluster), self.final.get(self.ccluster)
        if not fj or not fc or fj != fc:
            problems.append("last decision inputs differ: %s %s, %s %s"
                            % (self.jcluster, fj, self.ccluster, fc))
        return problems

    def summary(self, app_id):
        pairs, equal, odd = self.compare(app_id) if app_id else (0, 0, [])
        return ("jolokia: poller states %s, numberTargetExecutors %s, %d (gauge, ts) pairs in both "
                "feeds, %d equal, %d differ within the same second; last %s %s / %s %s" % (
                    self.states, self.target, pairs, equal, pairs - equal - len(odd),
                    self.jcluster, self.final.get(self.jcluster), self.ccluster,
                    self.final.get(self.ccluster)))


class Observer:
    """Accumulates what sparkscaled reported over the run."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.master = None        # MasterObserver when the master is polled
        self.jolokia = None       # JolokiaObserver when a Jolokia agent is polled
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
        if self.jolokia:
            self.jolokia.poll(doc)
        mine = [c for c in clusters if isinstance(c, dict) and c.get("name") == self.cluster]
        if not mine:
            return
        c = mine[0]
        if self.master:
            self.master.poll(c)
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
        if self.master:
            problems += self.master.verdict()
        if self.jolokia:
            problems += self.jolokia.verdict(app_id)
        return not problems, problems

    def summary(self, app_id):
        parts = ["polls=%d http_errors=%d" % (self.polls, self.http_errors)]
        for i, a in sorted(self.apps.items()):
            parts.append("app %s%s: numberTargetExecutors %s, numberAllExecutors %s, gauges %s" % (
                i, " (the job)" if i == app_id else "", a["target"], a["all"], sorted(a["gauges"])))
        parts.append("master aliveWorkers %s" % self.alive_workers)
        if self.has_worker_sources:
            parts.append("worker coresUsed max %s" % self.worker_cores_used_max)
        if self.master:
            parts.append(self.master.summary())
        if self.jolokia:
            parts.append(self.jolokia.summary(app_id))
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
    ap.add_argument("--master-ui", type=int, help="the master web UI port sparkscaled polls")
    ap.add_argument("--jolokia-jar", help="the Jolokia JVM agent jar for the driver")
    ap.add_argument("--jolokia-port", type=int, help="the port of the driver's Jolokia agent")
    ap.add_argument("--jolokia-cluster", help="the sparkscaled cluster polling that agent")
    a = ap.parse_args()
    # SIGTERM (from the caller's timeout or trap) unwinds through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    deadline = time.monotonic() + a.timeout
    obs = Observer(a.cluster)
    jolokia = (a.jolokia_jar, a.jolokia_port) if a.jolokia_jar and a.jolokia_port else None
    if jolokia and a.jolokia_cluster:
        obs.jolokia = JolokiaObserver(a.jolokia_cluster, a.cluster)
    app_id = None
    failure = None
    try:
        with sparklib.SparkCluster(os.path.join(a.work, "spark"), a.carbon_port, a.prefix,
                                   sink_all=a.all_instances, master_ui=a.master_ui,
                                   jolokia=jolokia) as cl:
            if a.master_ui:
                obs.master = MasterObserver(cl.worker_port)
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
                time.sleep(0.3)
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
