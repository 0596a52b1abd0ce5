#!/usr/bin/env python3
"""The dashboard (GET /) in headless Chromium against a real sparkscaled.

Starts sparkscaled (ports 0, embedded Kafka) with 250 clusters, feeds two of
them carbon reports in real time (demand rising and falling, the master's
aliveWorkers following the decisions as an actuator would), so decisions
exist. Then loads the page in headless Chromium over the DevTools protocol
(--remote-debugging-pipe: no websocket library needed) and checks that:
  - the chart is drawn and every point (its data-v and its pixel position)
    is what /v1/clusters?name=...&history=1 gives, recomputed here from the
    ring samples and decisions independently of the page's code;
  - the page refreshes itself (a report sent after the load shows up);
  - the numbers shown for the cluster, its decisions with their reasons,
    the cluster list, the next page of the list (250 clusters, 3 pages),
    the bus panel and the recent decisions match the JSON API;
  - the console has no error, and nothing was loaded from another origin;
  - a page fed altered numbers (fetch patched before load) is caught: the
    comparison itself is checked on every run.
A screenshot and the DOM snapshot are kept under --out.

Exit: 0 pass, 1 fail, 77 chromium not installed (a skip for ctest; with
--require-chromium or SS_REQUIRE_CHROMIUM=1 that is a failure instead).
Usage: dashboard_test.py --sparkscaled BIN --out DIR [--require-chromium]
"""
import argparse
import base64
import fcntl
import json
import math
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

EAM = ".driver.ExecutorAllocationManager.executors."
WINDOW_MIN_MS, WINDOW_MAX_MS = 30000, 900000


class Fail(Exception):
    pass


def log(*a):
    print("dashboard:", *a, flush=True)


# ---------------------------------------------------------------- daemon

class Daemon:
    def __init__(self, binary, workdir):
        self.conf = os.path.join(workdir, "sparkscaled.yaml")
        self.logpath = os.path.join(workdir, "sparkscaled.log")
        with open(self.conf, "w") as f:
            f.write(
                'ingest: { carbon_tcp: "127.0.0.1:0", carbon_udp: "off", http: "127.0.0.1:0" }\n'
                "kafka: { brokers: embedded, heartbeat_s: 3600 }\n"
                "policy: { evaluate_interval_ms: 200, stale_after_s: 600, app_expiry_s: 600,\n"
                "          scale_down_window_s: 2, idle_workers: 1, idle_mode: need, max_workers: 20 }\n"
                "clusters:\n"
                "  - name: alpha\n"
                "    worker: { cores: 4, memory_mb: 16384 }\n"
                "    executor: { cores: 1, memory_mb: 2048 }\n"
                "  - name: beta\n"
                "    worker: { cores: 4, memory_mb: 8192 }\n"
                "    executor: { cores: 2, memory_mb: 4096 }\n"
                "    policy: { demand: max_needed }\n")
            for i in range(248):
                f.write("  - { name: c%04d, worker: { cores: 4, memory_mb: 8192 }, "
                        "executor: { cores: 2, memory_mb: 4096 } }\n" % i)
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen([binary, "--config", self.conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        self.http = self.tcp = None
        deadline = time.time() + 30
        while time.time() < deadline and not (self.http and self.tcp):
            if self.proc.poll() is not None:
                raise Fail("sparkscaled exited with %s; log: %s" % (self.proc.returncode, self.logpath))
            with open(self.logpath) as f:
                text = f.read()
            m = re.search(r"status http listening on \S*:(\d+)\n", text)
            self.http = int(m.group(1)) if m else None
            m = re.search(r"carbon_tcp listening on port (\d+)\n", text)
            self.tcp = int(m.group(1)) if m else None
            time.sleep(0.05)
        if not (self.http and self.tcp):
            self.proc.kill()
            self.proc.wait()
            raise Fail("sparkscaled did not report its ports; log: %s" % self.logpath)
        self.origin = "http://127.0.0.1:%d" % self.http

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc

    def get(self, path):
        with urllib.request.urlopen(self.origin + path, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()

    def json(self, path):
        return json.loads(self.get(path)[2])

    def cluster(self, name):
        return self.json("/v1/clusters?history=1&name=" + name)

    def send(self, text):
        with socket.create_connection(("127.0.0.1", self.tcp), timeout=10) as s:
            s.sendall(text.encode())
            s.shutdown(socket.SHUT_WR)
            s.recv(1)


def report(alpha_targets, alive, beta, ts):
    """One Spark report of each fed cluster, all lines stamped ts (seconds)."""
    out = []
    for i, target in enumerate(alpha_targets):
        base = "alpha.app-20261121093000-%04d%s" % (i, EAM)
        out.append("%snumberTargetExecutors %d %d\n" % (base, target, ts))
        out.append("%snumberAllExecutors %d %d\n" % (base, target, ts))
    if alive is not None:
        out.append("alpha.master.aliveWorkers %d %d\n" % (alive, ts))
    target, max_needed = beta
    base = "beta.app-20261121093500-0007" + EAM
    out.append("%snumberTargetExecutors %d %d\n" % (base, target, ts))
    out.append("%snumberMaxNeededExecutors %d %d\n" % (base, max_needed, ts))
    return "".join(out)


def feed(d, plan, period=1.0):
    """Sends each (alpha targets, beta) of plan one period apart, with the
    master's aliveWorkers set to alpha's last desired size (an actuator)."""
    last_ts = 0
    for targets, beta in plan:
        ts = max(int(time.time()), last_ts + 1)
        while time.time() < ts:
            time.sleep(0.02)
        c = d.json("/v1/clusters?name=alpha")["clusters"][0]
        alive = c["decision"]["desired"] if c["decision"] else 1
        d.send(report(targets, alive, beta, ts))
        last_ts = ts
        time.sleep(period * 0.5)
    return last_ts


# ---------------------------------------------------------------- chromium

def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3
    in, fd 4 out, NUL-separated JSON messages)."""

    def __init__(self, binary, workdir):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # The child's ends go above 10 first, so dup2 onto 3 and 4 cannot
        # clobber one with the other. Python's descriptors are close-on-exec
        # (PEP 446): with close_fds off, the child gets 3 and 4 and no other.
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)

        def child():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.stderr = open(os.path.join(workdir, "chromium.log"), "w")
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--remote-debugging-pipe", "--user-data-dir=" + os.path.join(workdir, "profile"),
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-pings", "--disable-domain-reliability",
                 "--metrics-recording-only", "--window-size=1400,1150", "about:blank"]
        self.proc = subprocess.Popen([binary] + flags, close_fds=False, preexec_fn=child,
                                     stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr)
        for fd in (to_chrome_r, from_chrome_w, hi_r, hi_w):
            os.close(fd)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _recv(self, timeout):
        end = time.time() + timeout
        while b"\0" not in self.buf:
            left = end - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.from_chrome], [], [], left)
            if not r:
                return None
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise Fail("chromium closed the DevTools pipe (see chromium.log)")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while True:
            m = self._recv(max(0.0, end - time.time()))
            if m is None:
                raise Fail("DevTools %s: no answer in %d s" % (method, timeout))
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise Fail("DevTools %s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def pump(self):
        while True:
            m = self._recv(0)
            if m is None:
                return
            if "method" in m:
                self.events.append(m)

    def open_page(self, init_script=None):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 1150, "deviceScaleFactor": 1, "mobile": False})
        if init_script:
            self.call("Page.addScriptToEvaluateOnNewDocument", {"source": init_script})
        return target

    def close_page(self, target):
        self.call("Target.closeTarget", {"targetId": target}, session=False)
        self.session = None

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise Fail("page script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def wait(self, expr, what, timeout=30):
        """Polls expr until it is true; an exception (the page still
        loading) counts as not yet."""
        end, last = time.time() + timeout, ""
        while time.time() < end:
            try:
                v = self.eval(expr)
                if v:
                    return v
            except Fail as e:
                last = str(e)
            time.sleep(0.1)
        raise Fail("timed out waiting for %s %s" % (what, last))

    def problems(self):
        """Console errors, uncaught exceptions, error log entries; and every
        URL requested."""
        self.pump()
        errors, urls = [], []
        for e in self.events:
            m, p = e["method"], e["params"]
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                errors.append("console.%s: %s" % (p["type"], " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p["args"])))
            elif m == "Runtime.exceptionThrown":
                errors.append("exception: %s" % p["exceptionDetails"].get("exception", {}).get(
                    "description", p["exceptionDetails"].get("text")))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append("log: %s %s" % (p["entry"]["text"], p["entry"].get("url", "")))
            elif m == "Network.requestWillBeSent":
                urls.append(p["request"]["url"])
        return errors, urls

    def screenshot(self, path):
        """The whole page, not only the viewport."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                    "captureBeyondViewport": True})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=10)
        except (Fail, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        self.stderr.close()


# What the page shows, read in one evaluation (one consistent snapshot).
SNAPSHOT_JS = r"""
(() => {
  const chart = document.getElementById("chart");
  const attrs = e => Object.fromEntries([...e.attributes].map(a => [a.name, a.value]));
  const cells = tr => Object.fromEntries([...tr.querySelectorAll("td[data-k]")].map(td => [td.dataset.k, td.textContent]));
  return {
    refreshes: Number(document.body.dataset.refreshes),
    banner: document.getElementById("banner").textContent,
    chart: attrs(chart),
    points: [...chart.querySelectorAll("circle[data-series]")].map(attrs),
    paths: [...chart.querySelectorAll("path[data-series]")].map(p => p.dataset.series),
    nums: Object.fromEntries([...document.querySelectorAll("#detail-nums > div")].map(
      d => [d.dataset.k, d.querySelector("b").textContent])),
    title: document.getElementById("detail-title").textContent,
    reason: document.getElementById("detail-reason").textContent,
    decisions: [...document.querySelectorAll("#decisions tbody tr")].map(tr => cells(tr)),
    apps: [...document.querySelectorAll("#apps tbody tr")].map(tr => Object.assign({id: tr.dataset.app}, cells(tr))),
    list: [...document.querySelectorAll("#clusters tbody tr")].map(tr => cells(tr)),
    selected: [...document.querySelectorAll("#clusters tbody tr.sel")].map(tr => tr.dataset.cluster),
    page_info: document.getElementById("page-info").textContent,
    bus: Object.fromEntries([...document.querySelectorAll("#bus dd")].map(d => [d.dataset.k, d.textContent])),
    recent: [...document.querySelectorAll("#recent tbody tr")].map(tr => Object.assign(
      {cluster: tr.dataset.cluster, sequence: tr.dataset.sequence}, cells(tr))),
  };
})()
"""


# ------------------------------------------------- the chart, recomputed

def history(g):
    return g.get("history", []) if g else []


def latest_at(h, t):
    v = None
    for ts, x in h:
        if ts <= t:
            v = x
        else:
            break
    return v


def expected_series(c):
    """The chart's three step series from the cluster's JSON (README,
    Dashboard): demand in workers, current, desired; [[t, v]] oldest first."""
    rec = c.get("recommendation") or {}
    e = rec.get("executors_per_worker")
    demand = []
    if e and e > 0:
        apps = [(history(a["gauges"].get("numberTargetExecutors")),
                 history(a["gauges"].get("numberMaxNeededExecutors"))
                 if rec.get("demand") == "max_needed" else []) for a in c["apps"]]
        times = sorted({t for tg, mx in apps for t, _ in tg + mx})
        for t in times:
            total = 0
            for tg, mx in apps:
                d = latest_at(tg, t)
                d = 0 if d is None or d < 0 else math.trunc(d)
                m = latest_at(mx, t)
                if m is not None and math.trunc(m) > d:
                    d = math.trunc(m)
                total += d
            demand.append([t, total / e])
    alive = history(c["master"]["gauges"].get("aliveWorkers"))
    if alive:
        current = [[t, v] for t, v in alive]
    else:
        current = [[d["decided_at_ms"], d["current"]] for d in reversed(c["decisions"])
                   if d["current"] is not None]
    desired = [[d["decided_at_ms"], d["desired"]] for d in reversed(c["decisions"])
               if d["desired"] is not None]
    return {"demand": demand, "current": current, "desired": desired}


def expected_window(series, generated):
    tmax, oldest = generated, math.inf
    for s in series.values():
        for t, _ in s:
            tmax, oldest = max(tmax, t), min(oldest, t)
    return max(tmax - WINDOW_MAX_MS, min(tmax - WINDOW_MIN_MS, oldest)), tmax


def windowed(raw, tmin):
    out, carried = [], None
    for t, v in raw:
        if t < tmin:
            carried = v
        else:
            out.append((t, v, 0))
    if carried is not None and (not out or out[0][0] > tmin):
        out.insert(0, (tmin, carried, 1))
    return out


def shown(v):
    """A number as the page's cells print it: '–' for null. The API's counts
    are JSON integers, so str() is JavaScript's String()."""
    return "\u2013" if v is None else str(v)


def compare(snap, cj, page, page2, kafka, recent, name):
    """Every disagreement between what the page shows and the JSON API."""
    bad = []

    def check(what, got, want):
        if got != want:
            bad.append("%s: page shows %r, the API says %r" % (what, got, want))

    c = cj["clusters"][0]
    ch = snap["chart"]
    check("chart cluster", ch.get("data-cluster"), name)
    generated = int(ch["data-generated"])
    series = expected_series(c)
    tmin, tmax = expected_window(series, generated)
    check("chart window start", float(ch["data-tmin"]), float(tmin))
    check("chart window end", float(ch["data-tmax"]), float(tmax))
    x0, x1, y0, y1 = (float(ch["data-" + k]) for k in ("x0", "x1", "y0", "y1"))
    ymax = float(ch["data-ymax"])
    vmax = 0
    for key in ("demand", "current", "desired"):
        want = windowed(series[key], tmin)
        vmax = max([vmax] + [v for _, v, _ in want])
        got = [p for p in snap["points"] if p["data-series"] == key]
        check("%s: points drawn" % key, len(got), len(want))
        for p, (t, v, carried) in zip(got, want):
            pt, pv = float(p["data-t"]), float(p["data-v"])
            if pt != t or abs(pv - v) > 1e-9 or int(p["data-carried"]) != carried:
                bad.append("%s point drawn at t=%s v=%s (carried %s), the API gives t=%s v=%s (carried %s)"
                           % (key, p["data-t"], p["data-v"], p["data-carried"], t, v, carried))
            cx = x0 + (t - tmin) / (tmax - tmin) * (x1 - x0)
            cy = y0 - v / ymax * (y0 - y1)
            if abs(float(p["cx"]) - cx) > 0.01 or abs(float(p["cy"]) - cy) > 0.01:
                bad.append("%s point t=%s v=%s placed at (%s, %s), should be (%.2f, %.2f)"
                           % (key, t, v, p["cx"], p["cy"], cx, cy))
        if want and key not in snap["paths"]:
            bad.append("%s: no line drawn" % key)
    check("chart y axis top", ymax, float(max(1, math.ceil(vmax * 1.15))))

    w, rec = c["workers"], c["recommendation"]
    for k, v in (("current", w["current"]), ("busy", w["busy"]), ("needed", w["needed"]),
                 ("recommended", w["recommended"]), ("desired", w["desired"]),
                 ("demand (exec.)", rec.get("demand_executors")),
                 ("exec. per worker", rec.get("executors_per_worker"))):
        check("cluster number '%s'" % k, snap["nums"].get(k), shown(v))
    check("recommendation reason", snap["reason"], rec.get("reason", ""))
    check("decisions listed", len(snap["decisions"]), len(c["decisions"]))
    for row, d in zip(snap["decisions"], c["decisions"]):
        check("decision #%s" % d["sequence"], row,
              {"sequence": str(d["sequence"]), "desired": shown(d["desired"]),
               "current": shown(d["current"]), "demand": str(d["demand_executors"]),
               "code": d["code"], "reason": d["reason"] if d["reason"] is not None
               else "(reason no longer kept)"})
    check("apps listed", sorted(a["id"] for a in snap["apps"]), sorted(a["id"] for a in c["apps"]))
    for a in c["apps"]:
        row = next((r for r in snap["apps"] if r["id"] == a["id"]), {})
        g = a["gauges"]
        check("app %s target" % a["id"], row.get("target"),
              shown(g["numberTargetExecutors"]["value"] if "numberTargetExecutors" in g else None))

    for what, snaprows, pg in (("list page 1", snap["list"], page), ("list page 2", page2[0], page2[1])):
        if pg is None:
            continue
        check(what + " names", [r["name"] for r in snaprows], [x["name"] for x in pg["clusters"]])
        for r, x in zip(snaprows, pg["clusters"]):
            check("%s %s" % (what, x["name"]),
                  (r["current"], r["desired"], r["demand"], r["apps"]),
                  (shown(x["workers"]["current"]), shown(x["workers"]["desired"]),
                   shown(x["recommendation"].get("demand_executors")), str(len(x["apps"]))))

    st = kafka["stats"]
    check("bus brokers", snap["bus"].get("brokers"),
          kafka["brokers"] + (" (embedded)" if kafka["embedded"] else ""))
    for k in ("published", "delivered", "pending", "failed", "dropped"):
        check("bus " + k, snap["bus"].get(k), str(st[k]))
    check("recent decisions listed", len(snap["recent"]), len(recent["decisions"]))
    for row, d in zip(snap["recent"], recent["decisions"]):
        check("recent decision %s #%s" % (d["cluster"], d["sequence"]),
              (row["cluster"], row["sequence"], row["desired"], row["reason"]),
              (d["cluster"], str(d["sequence"]), shown(d["desired"]), d["reason"]))
    return bad


# ---------------------------------------------------------------- the run

# Altered numbers: every page load with this script sees numberTargetExecutors
# one higher than the API says. The comparison must catch it.
SABOTAGE_JS = r"""
(() => {
  const real = window.fetch;
  window.fetch = async (...a) => {
    const r = await real(...a);
    if (!String(a[0]).includes("history=1")) return r;
    const j = await r.json();
    for (const c of j.clusters) for (const app of c.apps) {
      const g = app.gauges.numberTargetExecutors;
      if (g && g.history) g.history = g.history.map(([t, v]) => [t, v + 1]);
    }
    return new Response(JSON.stringify(j), { status: r.status, headers: r.headers });
  };
})();
"""


def settle(d, path, quiet_s=3.0, timeout_s=30.0):
    """Waits until the API's answer (generated_at_ms aside) stays the same
    for quiet_s: longer than the scale-down window, so no decision is still
    on its way when the page is compared with it."""
    prev, since, end = None, time.time(), time.time() + timeout_s
    while time.time() < end:
        j = d.json(path)
        j.pop("generated_at_ms", None)
        if j != prev:
            prev, since = j, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.2)
    raise Fail(path + " never settled")


def snapshot_after_refreshes(cr, n=2):
    """A snapshot taken after the page refreshed n more times."""
    start = cr.eval("Number(document.body.dataset.refreshes)")
    cr.wait("Number(document.body.dataset.refreshes) >= %d" % (start + n), "%d refreshes" % n)
    return cr.eval(SNAPSHOT_JS)


def run(args, workdir):
    chromium = find_chromium()
    if not chromium:
        if args.require_chromium or os.environ.get("SS_REQUIRE_CHROMIUM") == "1":
            raise Fail("chromium is not installed (scripts/install-deps.sh test installs it)")
        log("SKIP: chromium is not installed")
        return 77
    os.makedirs(args.out, exist_ok=True)
    d = Daemon(args.sparkscaled, workdir)
    cr = None
    try:
        status, ctype, body = d.get("/")
        if status != 200 or not ctype.startswith("text/html") or "<svg id=\"chart\"" not in body:
            raise Fail("GET / answered %s %s" % (status, ctype))
        # Demand in executors for alpha's two apps (4 executors per worker),
        # and beta's (target, max needed) with demand = max_needed.
        plan = [([2, 0], (1, 2)), ([4, 1], (1, 4)), ([8, 2], (2, 6)), ([12, 3], (2, 6)),
                ([12, 6], (3, 8)), ([9, 6], (3, 3)), ([5, 2], (1, 1)), ([3, 0], (1, 1))]
        log("feeding %d reports in real time" % len(plan))
        feed(d, plan)
        if not d.json("/v1/decisions")["decisions"]:
            raise Fail("no decision was made from the reports")

        cr = Chromium(chromium, workdir)
        target = cr.open_page()
        cr.call("Page.navigate", {"url": d.origin + "/#cluster=alpha&every=1000"})
        cr.wait("document.getElementById('chart').dataset.ready === '1' && "
                "document.getElementById('chart').dataset.cluster === 'alpha'", "the chart")
        # It refreshes itself: a report sent now shows up without a reload.
        last_ts = feed(d, [([7, 4], (2, 5))])
        cr.wait("[...document.querySelectorAll('#chart circle[data-series=demand]')]"
                ".some(c => Number(c.dataset.t) >= %d)" % (last_ts * 1000),
                "the page to refresh and draw the new report", timeout=20)
        log("the page drew a report sent after it loaded")

        settle(d, "/v1/clusters?history=1&name=alpha")
        snap = snapshot_after_refreshes(cr)
        cj = d.json("/v1/clusters?history=1&name=alpha")
        page = d.json("/v1/clusters?offset=0&limit=100")
        kafka, recent = d.json("/v1/kafka"), d.json("/v1/decisions?limit=25")
        cr.screenshot(os.path.join(args.out, "dashboard.png"))
        with open(os.path.join(args.out, "dom.json"), "w") as f:
            json.dump({"snapshot": snap, "cluster": cj}, f, indent=1)

        # The next page of the list: clusters 101..200 of 250.
        cr.eval("document.getElementById('next').click()")
        cr.wait("document.getElementById('page-info').textContent.startsWith('page 2 of 3')", "page 2")
        snap2 = snapshot_after_refreshes(cr, 1)
        page2 = d.json("/v1/clusters?offset=100&limit=100")

        bad = compare(snap, cj, page, (snap2["list"], page2), kafka, recent, "alpha")
        pts = {k: sum(1 for p in snap["points"] if p["data-series"] == k)
               for k in ("demand", "current", "desired")}
        log("drawn points: %s; decisions listed: %d; refreshes: %d"
            % (pts, len(snap["decisions"]), snap["refreshes"]))
        if pts["demand"] < 6 or pts["current"] < 6 or pts["desired"] < 3:
            bad.append("too little drawn to check anything: %s" % pts)
        if snap["banner"]:
            bad.append("the page shows an error: " + snap["banner"])
        errors, urls = cr.problems()
        bad += ["console: " + e for e in errors]
        bad += ["loaded from elsewhere: " + u for u in urls
                if not (u.startswith(d.origin + "/") or u.startswith("data:"))]
        log("requests: %d, all to %s" % (len(urls), d.origin))
        cr.close_page(target)

        # beta: max_needed demand (the page takes max(target, max needed)).
        cr.events.clear()
        target = cr.open_page()
        cr.call("Page.navigate", {"url": d.origin + "/#cluster=beta&every=1000"})
        cr.wait("document.getElementById('chart').dataset.cluster === 'beta'", "beta's chart")
        settle(d, "/v1/clusters?history=1&name=beta")
        snapb = snapshot_after_refreshes(cr)
        cj_beta = d.json("/v1/clusters?history=1&name=beta")
        bad += ["beta: " + b for b in compare(
            snapb, cj_beta, None, (snapb["list"], None), d.json("/v1/kafka"),
            d.json("/v1/decisions?limit=25"), "beta")]
        bad += ["beta console: " + e for e in cr.problems()[0]]
        cr.close_page(target)

        # The check catches a page that draws other numbers than the API's.
        target = cr.open_page(SABOTAGE_JS)
        cr.call("Page.navigate", {"url": d.origin + "/#cluster=alpha&every=1000"})
        cr.wait("document.getElementById('chart').dataset.cluster === 'alpha'", "the altered chart")
        snap_bad = snapshot_after_refreshes(cr)
        caught = compare(snap_bad, d.json("/v1/clusters?history=1&name=alpha"), None,
                         (snap_bad["list"], None), d.json("/v1/kafka"),
                         d.json("/v1/decisions?limit=25"), "alpha")
        cr.close_page(target)
        if not any(m.startswith("demand point") for m in caught):
            bad.append("altered demand was NOT caught by the comparison: %s" % caught[:3])
        else:
            log("altered numbers caught (%d disagreements, e.g. %s)" % (len(caught), caught[0]))

        if bad:
            for b in bad:
                log("MISMATCH", b)
            raise Fail("%d check(s) failed; screenshot %s" % (len(bad), os.path.join(args.out, "dashboard.png")))
        log("PASS: chart, numbers, decisions, list pages, bus and recent decisions match the API; "
            "no console error; screenshot %s" % os.path.join(args.out, "dashboard.png"))
        return 0
    finally:
        try:
            if cr:
                cr.close()
        finally:
            rc = d.stop()
        shutil.copy(d.logpath, os.path.join(args.out, "sparkscaled.log"))
        if rc != 0:
            log("sparkscaled exited with %d" % rc)
            raise Fail("sparkscaled did not stop cleanly (exit %d)" % rc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sparkscaled", required=True)
    ap.add_argument("--out", required=True, help="artifacts: screenshot, DOM snapshot, logs")
    ap.add_argument("--require-chromium", action="store_true")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="ss-dashboard-")
    try:
        return run(args, workdir)
    except Fail as e:
        log("FAIL:", e)
        return 1
    finally:
        for name in ("chromium.log",):
            p = os.path.join(workdir, name)
            if os.path.exists(p) and os.path.isdir(args.out):
                shutil.copy(p, os.path.join(args.out, name))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
