#!/usr/bin/env python3
"""run.py: the demo's conductor (scripts/demo.sh runs it after building).

Starts a Spark cluster whose workers only sparkscale-actuator adds and removes
(simulated: simcluster.py; or real Spark from the pyspark wheel with --spark:
sparkcluster.py), sparkscaled fed by that cluster's GraphiteSink and master,
and sparkscale-actuator with an exec target, all on one generated config with
the embedded Kafka. Prints the dashboard URL and a live table, then the audit
trail read back with `sparkscalectl audit`, and a summary whose checks decide
the exit status: the worker count followed the decisions, and every decision
has exactly one audit record. Everything it started is stopped on the way
out, also on Ctrl-C or SIGTERM.

Exit status: 0 the loop worked, 1 a check failed or something did not start,
2 bad usage, 3 --spark without a cached PySpark, 128 + N stopped by signal N
(130 Ctrl-C).
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import simcluster  # noqa: E402


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signum)


def say(msg=""):
    print(msg, flush=True)


# ---- ports, HTTP ---------------------------------------------------------------------

def port_free(port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_handed = set()   # ports free_ports gave out in this run


def free_ports(n):
    """n distinct ports free now (and not given out before in this run), below the kernel's ephemeral range when it leaves room:
    a port picked by binding port 0 is an ephemeral one, which the kernel may hand to
    the next socket bound to port 0 (the embedded Kafka's brokers in sparkscaled, an
    outgoing connection) before the daemon that was told to listen there does."""
    import random
    try:
        lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 0
    ports = []
    if lo > 11000:
        rnd = random.Random()
        for _ in range(1000):
            p = rnd.randrange(10000, lo)
            if p not in ports and p not in _handed and port_free(p):
                ports.append(p)
                if len(ports) == n:
                    _handed.update(ports)
                    return ports
    socks = []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            if s.getsockname()[1] not in ports and s.getsockname()[1] not in _handed:
                ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    _handed.update(ports)
    return ports


def get_json(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def get_text(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return None


def metric(text, name):
    """Sum of a Prometheus series' samples (all labels), or None."""
    if text is None:
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
            except ValueError:
                pass
    return total if seen else None


# ---- processes -----------------------------------------------------------------------

class Daemon:
    """A daemon in its own session (a Ctrl-C at the terminal reaches only us; we stop it)."""

    def __init__(self, name, argv, log, health_url):
        self.name, self.argv, self.log, self.health = name, argv, log, health_url
        self.p = None
        self.rc = None

    def start(self, timeout=15):
        self.logf = open(self.log, "wb")
        self.p = subprocess.Popen(self.argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError("%s exited with %s at start:\n%s" % (self.name, self.p.returncode,
                                                                        tail(self.log)))
            if get_text(self.health, timeout=1) is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("%s did not answer %s within %d s:\n%s" % (self.name, self.health, timeout,
                                                                       tail(self.log)))

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, timeout):
        """SIGTERM (the daemons' clean stop: finish, flush, commit), SIGKILL after timeout."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                say("  %s did not stop within %d s of SIGTERM: killing it" % (self.name, timeout))
                self.p.kill()
                self.p.wait()
        self.rc = self.p.returncode
        self.logf.close()
        return self.rc


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def leftovers(tag):
    """Processes (other than us) whose environment carries SS_DEMO_RUN=tag."""
    me, found = os.getpid(), []
    needle = ("SS_DEMO_RUN=%s" % tag).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if needle in f.read().split(b"\0"):
                    with open("/proc/%s/cmdline" % pid, "rb") as c:
                        found.append((int(pid), c.read().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            pass
    return found


# ---- the configuration -----------------------------------------------------------------

CONFIG = """\
# Written by scripts/demo/run.py for one demo run. sparkscaled's embedded
# defaults (embedded Kafka, status API, carbon over TCP) plus one cluster
# whose workers sparkscale-actuator resizes through an exec command.
ingest:
  carbon_tcp: "127.0.0.1:{carbon}"
  carbon_udp: "off"
  http: "127.0.0.1:{http}"
kafka:
  brokers: embedded
actuator:
  http: "127.0.0.1:{act}"
  id: demo
  decommission_timeout_s: {decom_s}
clusters:
  - name: demo
    metrics_prefix: demo
    spark_master: "http://127.0.0.1:{master}"
    worker:   {{ cores: {wcores}, memory_mb: {wmem} }}
    executor: {{ cores: {ecores}, memory_mb: {emem} }}
    poll:     {{ interval_s: 1 }}
    # A short window so a demo of minutes shows the scale-in (the default is 60 s).
    policy:   {{ min_workers: 1, max_workers: {max_workers}, idle_workers: 1,
                scale_down_window_s: {window_s}, app_expiry_s: {expiry_s} }}
    target:
      kind: exec
      command: {command}
      size_command: {size_command}
      timeout_s: {exec_timeout_s}
"""


# ---- the run -----------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.work = args.work
        self.daemons = []
        self.cluster = None
        self.rows = []                # (real s, sim snapshot, sparkscaled view)
        self.follower = None          # sparkscalectl audit --follow: the live decisions and results
        self.t_start = time.monotonic()

    def exe(self, rel):
        p = os.path.join(self.bin, rel)
        if not os.access(p, os.X_OK):
            raise RuntimeError("%s not found: build first (cmake --build %s)" % (p, self.bin))
        return p

    def pick_ports(self):
        want = {"carbon": 2003, "http": 9090, "act": 9091}
        if not self.args.free_ports and all(port_free(p) for p in want.values()):
            self.ports = dict(want)
        else:
            c, h, a = free_ports(3)
            self.ports = {"carbon": c, "http": h, "act": a}
            if not self.args.free_ports:
                say("one of the ports 2003, 9090, 9091 is taken here: using free ones instead")

    def write_config(self, cl):
        p = self.ports
        text = CONFIG.format(carbon=p["carbon"], http=p["http"], act=p["act"], master=cl.master_port,
                             wcores=cl.worker_cores, wmem=cl.worker_mem_mb, ecores=cl.exec_cores,
                             emem=cl.exec_mem_mb, max_workers=cl.max_workers,
                             window_s=cl.window_s, expiry_s=cl.expiry_s, decom_s=cl.decom_s,
                             command=json.dumps(cl.command), size_command=json.dumps(cl.size_command),
                             exec_timeout_s=cl.exec_timeout_s)
        self.config = os.path.join(self.work, "demo.yaml")
        with open(self.config, "w") as f:
            f.write(text)
        for d in ("ingest/sparkscaled", "actuator/sparkscale-actuator"):
            r = subprocess.run([self.exe(d), "--check-config", "--config", self.config],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("%s --check-config refused %s:\n%s" % (d, self.config, r.stdout + r.stderr))

    def start(self):
        a = self.args
        self.pick_ports()
        if a.spark:
            import sparkcluster
            self.cluster = sparkcluster.SparkDemo(self.work, short=a.short,
                                                  carbon=("127.0.0.1", self.ports["carbon"]),
                                                  ports=free_ports(2))
        else:
            self.cluster = SimDemo(self.work, short=a.short, carbon=("127.0.0.1", self.ports["carbon"]))
        cl = self.cluster
        cl.start()                    # the master answers before sparkscaled polls it
        self.write_config(cl)
        http, act = "http://127.0.0.1:%d" % self.ports["http"], "http://127.0.0.1:%d" % self.ports["act"]
        self.http, self.act = http, act
        d = Daemon("sparkscaled", [self.exe("ingest/sparkscaled"), "--config", self.config],
                   os.path.join(self.work, "sparkscaled.log"), http + "/healthz")
        self.daemons.append(d)
        d.start()
        d = Daemon("sparkscale-actuator", [self.exe("actuator/sparkscale-actuator"), "--config", self.config],
                   os.path.join(self.work, "sparkscale-actuator.log"), act + "/healthz")
        self.daemons.append(d)
        d.start()
        # The actuator is ready once it owns the decisions topic's partitions.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            v = metric(get_text(act + "/metrics"), "sparkscale_actuator_assigned_partitions")
            if v:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the actuator did not join its consumer group within 20 s:\n" +
                               tail(self.daemons[1].log))
        self.brokers = (get_json(http + "/v1/kafka") or {}).get("brokers", "")
        self.follower = Follower(self.exe("tools/sparkscalectl/sparkscalectl"), self.brokers,
                                 self.cluster, os.path.join(self.work, "audit-follow.err"))
        host = "127.0.0.1"
        say("sparkscale demo: %s" % cl.title)
        say("  dashboard       http://%s:%d/" % (host, self.ports["http"]))
        say("  sparkscaled     %s/v1/clusters   log %s" % (http, self.daemons[0].log))
        say("  actuator        %s/v1/clusters   log %s" % (act, self.daemons[1].log))
        say("  Spark master    http://127.0.0.1:%d/json/ (%s)" % (cl.master_port, cl.kind))
        say("  exec command    %s" % " ".join(cl.command))
        say("  configuration   %s" % self.config)
        say("  Kafka           %s (embedded in sparkscaled)" % self.brokers)
        say()

    # ---- the live table ----------------------------------------------------------------

    HEAD = ("%5s %4s %5s %4s %6s %4s %7s  %-22s %s"
            % ("t", "apps", "want", "run", "needed", "busy", "desired", "workers", "actuator"))

    def row(self):
        snap = self.cluster.snapshot()
        st = (get_json(self.http + "/v1/clusters?name=demo") or {}).get("clusters") or [{}]
        st = st[0]
        w = st.get("workers") or {}
        if snap["wanted"] is None:   # real Spark: the drivers' demand as sparkscaled has it
            snap["wanted"] = sum(int(((a.get("gauges") or {}).get("numberTargetExecutors") or {})
                                     .get("value") or 0) for a in st.get("apps") or [])
        events = self.cluster.take_events() + (self.follower.take() if self.follower else [])
        av = (get_json(self.act + "/v1/clusters?name=demo") or {}).get("clusters") or [{}]
        av = av[0]
        fl, last = av.get("in_flight"), av.get("last_result")
        if fl:
            actv = "#%s %s (-> %s)" % (fl.get("sequence"), fl.get("stage"), fl.get("desired"))
        elif last:
            actv = "#%s %s" % (last.get("sequence"), last.get("outcome"))
        else:
            actv = "-"
        for t, text in sorted(events, key=lambda e: e[0]):
            say("        > %s" % clip(text, 110))
        ws = "%d" % snap["size"]
        extra = []
        if snap["starting"]:
            extra.append("+%d starting" % snap["starting"])
        if snap["decommissioned"]:
            extra.append("%d decom." % snap["decommissioned"])
        if snap.get("stopping"):
            extra.append("%d stopping" % snap["stopping"])
        if extra:
            ws += " (%s)" % ", ".join(extra)

        def v(x):
            return "-" if x is None else str(x)
        say("%5.0f %4d %5d %4d %6s %4s %7s  %-22s %s" % (
            time.monotonic() - self.t_story, snap["apps"], snap["wanted"], snap["running"], v(w.get("needed")), v(w.get("busy")),
            v(w.get("desired")), ws, actv))
        self.rows.append((time.monotonic() - self.t_start, snap, w, av))
        return snap, st, av

    def play(self):
        cl = self.cluster
        say(self.HEAD)
        cl.start_story()
        self.t_story = time.monotonic()
        budget = cl.story_budget_s
        t0 = time.monotonic()
        settled_since, settled_state = None, None
        next_row = time.monotonic()
        while True:
            for d in self.daemons:
                if not d.alive():
                    raise RuntimeError("%s exited with %s during the demo:\n%s"
                                       % (d.name, d.p.returncode, tail(d.log)))
            snap, st, av = self.row()
            dec = st.get("decision") or {}
            last = av.get("last_result") or {}
            # Settled: the story is over, its apps have expired, and neither the size nor the
            # desired count has moved for a whole scale-down window (so no change is still
            # coming; heartbeats, the same decision republished every 30 s, do not count).
            state = (snap["size"], dec.get("desired"))
            quiet = (snap["story_done"] and dec.get("desired") == snap["size"]
                     and snap["starting"] == 0 and snap["decommissioned"] == 0 and not snap.get("stopping")
                     and not av.get("in_flight") and last.get("sequence") == dec.get("sequence"))
            if quiet and state == settled_state:
                if time.monotonic() - settled_since >= cl.window_s + cl.expiry_s + 2:
                    say("        > settled: %d worker(s), every decision handled, nothing moved for %d s"
                        % (snap["size"], cl.window_s + cl.expiry_s + 2))
                    return True
            else:
                settled_state, settled_since = (state if quiet else None), time.monotonic()
            if time.monotonic() - t0 > budget:
                say("        > not settled after %d s: stopping anyway" % budget)
                return False
            next_row += 1.0
            time.sleep(max(0.0, next_row - time.monotonic()))

    # ---- the audit trail -----------------------------------------------------------------

    def read_audit(self):
        ctl = self.exe("tools/sparkscalectl/sparkscalectl")
        r = subprocess.run([ctl, "audit", "--brokers", self.brokers, "--json", "--wait-s", "20"],
                           capture_output=True, text=True, timeout=60)
        with open(os.path.join(self.work, "audit.jsonl"), "w") as f:
            f.write(r.stdout)
        t = subprocess.run([ctl, "audit", "--brokers", self.brokers, "--wait-s", "20"],
                           capture_output=True, text=True, timeout=60)
        with open(os.path.join(self.work, "audit.txt"), "w") as f:
            f.write(t.stdout)
        if r.returncode != 0:
            raise RuntimeError("sparkscalectl audit failed (%d): %s" % (r.returncode, r.stderr.strip()))
        recs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return recs, r.stderr.strip()


class Follower:
    """`sparkscalectl audit --follow --json`: decisions and audit records as Kafka gets them,
    shown as events between the table's rows."""

    def __init__(self, ctl, brokers, cluster, errlog):
        import threading
        self.cluster = cluster
        self.lock = threading.Lock()
        self.events = []
        self.errf = open(errlog, "wb")
        # fetch.wait.max.ms: the embedded Kafka answers an empty fetch only after it
        self.p = subprocess.Popen([ctl, "audit", "--brokers", brokers, "--follow", "--json",
                                   "-X", "fetch.wait.max.ms=20"],
                                  stdout=subprocess.PIPE, stderr=self.errf, stdin=subprocess.DEVNULL,
                                  start_new_session=True, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("type") == "decision":
                text = "decision #%d: desired %d (current %d, busy %d): %s" % (
                    r["sequence"], r["desired_workers"], r["current_workers"], r["busy_workers"], r["reason"])
            elif r.get("type") == "result":
                what = (r.get("exec") or {}).get("output_tail", "").strip().splitlines()
                what = r.get("error") or (what[-1] if what else r.get("note", ""))
                text = "audit #%d: %s %s->%s %s" % (r["decision_sequence"], r["outcome"],
                                                      r["replicas_before"], r["replicas_after"], what)
            else:
                text = "undecodable record: %s" % r.get("error")
            with self.lock:   # in order of arrival, among the cluster's own events
                self.events.append((time.time(), text))

    def take(self):
        with self.lock:
            ev, self.events = self.events, []
        return ev

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.errf.close()


def clip(s, n):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n - 3] + "..."


class SimDemo:
    """The simulated cluster behind the run (simcluster.py) and its exec command."""
    kind = "simulated"
    title = ("a simulated Spark standalone cluster whose workers only sparkscale-actuator adds and "
             "removes")

    def __init__(self, work, short, carbon):
        self.work = work
        self.speed = 2.0 if short else 1.0
        self.worker_cores, self.worker_mem_mb = simcluster.WORKER_CORES, simcluster.WORKER_MEMORY_MB
        self.exec_cores, self.exec_mem_mb = simcluster.EXECUTOR_CORES, simcluster.EXECUTOR_MEMORY_MB
        self.max_workers = 10
        self.window_s = 6 if short else 12
        self.expiry_s = 4 if short else 8
        self.decom_s = 30
        self.exec_timeout_s = 10
        self.story_budget_s = simcluster.STORY_END_S / self.speed + self.window_s + self.expiry_s + 40
        self.master_port = free_ports(1)[0]
        tool = os.path.join(HERE, "sim-workers")
        url = "http://127.0.0.1:%d" % self.master_port
        self.command = [tool, url, "resize"]
        self.size_command = [tool, url, "count"]
        self.sim = simcluster.SimCluster(carbon, speed=self.speed,
                                         actions_log=os.path.join(work, "actions.jsonl"))

    def start(self):
        self.sim.serve(self.master_port)

    def start_story(self):
        self.sim.start_story()

    def snapshot(self):
        return self.sim.snapshot()

    def take_events(self):
        return self.sim.take_events()

    def actions(self):
        return list(self.sim.actions)

    def size(self):
        return self.sim.size()

    def violations(self):
        return ["busy worker %s removed while running %s" % (h, e) for h, e in self.sim.busy_removed]

    def stop(self):
        self.sim.stop()


# ---- the checks -----------------------------------------------------------------------------

def check(run, recs, actions, final_size, t_end):
    """Prints the audit trail and the summary; returns the list of failed checks."""
    decisions = [r for r in recs if r.get("type") == "decision"]
    results = [r for r in recs if r.get("type") == "result"]
    errors = [r for r in recs if r.get("type") == "error"]
    by_pos = {}
    for r in results:
        by_pos.setdefault((r.get("decision_topic"), r.get("decision_partition"), r.get("decision_offset")),
                          []).append(r)
    fails = []

    say()
    say("Audit trail: each decision and its actuation result (sparkscalectl audit --brokers %s;"
        % run.brokers)
    say("raw records in %s/audit.txt and audit.jsonl)" % run.work)
    say("  %4s %-12s %7s %4s %4s  %-17s %-8s %s" % ("seq", "decided", "desired", "cur", "busy", "result",
                                                    "workers", "what happened"))
    stop_ms = run.actuator_stopped_ms
    unhandled_late = 0
    for d in sorted(decisions, key=lambda d: (d["producer_epoch"], d["sequence"])):
        pos = (d["topic"], d["partition"], d["offset"])
        rs = by_pos.get(pos, [])
        when = time.strftime("%H:%M:%S", time.localtime(d["decided_at_ms"] / 1000))
        when += ".%d" % (d["decided_at_ms"] % 1000 // 100)
        if not rs:
            late = stop_ms is not None and d["decided_at_ms"] >= stop_ms
            unhandled_late += late
            out, wk, what = "(none)", "", ("decided after the actuator stopped" if late else "NO AUDIT RECORD")
        else:
            r = rs[0]
            out = r["outcome"] + ("" if len(rs) == 1 else " x%d" % len(rs))
            wk = "%s->%s" % (r["replicas_before"], r["replicas_after"])
            what = r.get("error") or ""
            ex = (r.get("exec") or {}).get("output_tail", "").strip()
            if ex:
                what = (what + " " if what else "") + ex.splitlines()[-1]
            elif r.get("note"):
                what = (what + " " if what else "") + r["note"]
        say("  %4s %-12s %7d %4d %4d  %-17s %-8s %s" % ("#%d" % d["sequence"], when, d["desired_workers"],
                                                        d["current_workers"], d["busy_workers"], out, wk,
                                                        clip(what, 70)))
        say("  %4s %s" % ("", clip("why: " + d["reason"], 108)))

    # One audit record per decision.
    positions = {(d["topic"], d["partition"], d["offset"]) for d in decisions}
    missing = [p for p in positions if p not in by_pos]
    dup = [p for p, rs in by_pos.items() if len(rs) > 1]
    orphans = [p for p in by_pos if p not in positions]
    if len(missing) > unhandled_late:
        fails.append("%d decision(s) without an audit record" % (len(missing) - unhandled_late))
    if dup:
        fails.append("%d decision(s) with more than one audit record" % len(dup))
    if orphans:
        fails.append("%d audit record(s) for no decision" % len(orphans))
    if errors:
        fails.append("%d undecodable record(s)" % len(errors))
    failed = [r for r in results if r["outcome"] == "FAILED"]
    if failed:
        fails.append("%d decision(s) FAILED: %s" % (len(failed), clip(failed[0].get("error"), 80)))
    if not decisions:
        fails.append("no decision was made")

    # The worker count followed the decisions: every resize the exec command made is the
    # backend call of one APPLIED decision, in order, to the size that decision's record
    # says; nothing else changed the count, and the end size is the last decision's.
    calls = [r for r in sorted(results, key=lambda r: (r["decision_partition"], r["decision_offset"]))
             if r["outcome"] == "APPLIED" and r.get("exec") and r["replicas_before"] != r["replicas_after"]]
    by_seq = {d["sequence"]: d for d in decisions}
    lags = []
    if len(calls) != len(actions):
        fails.append("%d resizes by the exec command, %d applied decisions that changed the size"
                     % (len(actions), len(calls)))
    for a, r in zip(actions, calls):
        if (a["before"], a["after"]) != (r["replicas_before"], r["replicas_after"]):
            fails.append("decision #%d: audit says %s -> %s, the cluster went %d -> %d"
                         % (r["decision_sequence"], r["replicas_before"], r["replicas_after"],
                            a["before"], a["after"]))
        d = by_seq.get(r["decision_sequence"])
        if d:
            lags.append((a["wall_ms"] - d["decided_at_ms"]) / 1000.0)
    last = max(decisions, key=lambda d: (d["producer_epoch"], d["sequence"])) if decisions else None
    if last and final_size != last["desired_workers"]:
        fails.append("the cluster ended with %d workers, the last decision (#%d) wants %d"
                     % (final_size, last["sequence"], last["desired_workers"]))
    sizes = [a["after"] for a in actions]
    peak = max(sizes) if sizes else final_size
    if not any(a["after"] > a["before"] for a in actions):
        fails.append("the cluster never grew")
    if not any(a["after"] < a["before"] for a in actions):
        fails.append("the cluster never shrank")
    fails += run.cluster.violations()

    # worker-seconds from the table's samples (one a second)
    ws = 0.0
    for (t1, s1, _, _), (t2, _, _, _) in zip(run.rows, run.rows[1:]):
        ws += s1["size"] * (t2 - t1)
    span = run.rows[-1][0] - run.rows[0][0] if len(run.rows) > 1 else 0
    outcomes = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1

    say()
    say("Summary")
    say("  ran %.0f s: %d decisions, %d audit records (%s)" % (
        t_end, len(decisions), len(results), ", ".join("%d %s" % (n, o) for o, n in sorted(outcomes.items()))))
    say("  one audit record per decision: %s" % ("yes" if not (missing or dup or orphans) else
                                                   "NO (%d missing, %d duplicated, %d orphans)"
                                                   % (len(missing), len(dup), len(orphans))))
    first = actions[0]["before"] if actions else final_size
    say("  workers: %d at start, peak %d, %d at the end; changed only by the exec command (%d calls: %d up, %d down)"
        % (first, peak, final_size, len(actions), sum(a["after"] > a["before"] for a in actions),
           sum(a["after"] < a["before"] for a in actions)))
    if lags:
        say("  decision -> workers changed: median %.1f s, max %.1f s (a scale-in waits for the decommission)"
            % (statistics.median(lags), max(lags)))
    if span > 0 and peak > 0:
        say("  worker-seconds: %.0f, a static cluster of %d workers: %.0f (%.0f%%)"
            % (ws, peak, peak * span, 100.0 * ws / (peak * span)))
    return fails


def main():
    ap = argparse.ArgumentParser(description="the sparkscale demo (see scripts/demo.sh)")
    ap.add_argument("--bin", required=True, help="build directory with the three executables")
    ap.add_argument("--short", action="store_true", help="twice as fast (the test's mode)")
    ap.add_argument("--spark", action="store_true", help="real Spark from the pyspark wheel")
    ap.add_argument("--free-ports", action="store_true", help="never the default ports 2003/9090/9091")
    ap.add_argument("--work", help="directory for logs and state (default: a new one under /tmp)")
    a = ap.parse_args()

    if a.work:
        os.makedirs(a.work, exist_ok=True)
    else:
        a.work = tempfile.mkdtemp(prefix="sparkscale-demo.")
    if a.spark:
        import sparkcluster
        if not sparkcluster.ensure_pyspark():
            sys.stdout.write(sparkcluster.NOT_CACHED)
            return 3
    a.work = os.path.abspath(a.work)
    # Everything we start inherits this: what is left behind can be found by it.
    os.environ["SS_DEMO_RUN"] = a.work
    # SIGINT too: Python leaves it ignored when it started ignored (a background job)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    run = Run(a)
    run.actuator_stopped_ms = None
    rc = 1
    fails = []
    try:
        try:
            run.start()
            settled = run.play()
            # The actuator first (its last audits are committed as it stops), then read the
            # audit while sparkscaled, which holds the embedded Kafka, still runs.
            run.actuator_stopped_ms = int(time.time() * 1000)
            act_rc = run.daemons[1].stop(75)
            final_size = run.cluster.size()
            recs, counts = run.read_audit()
            t_end = time.monotonic() - run.t_start
            fails = check(run, recs, run.cluster.actions(), final_size, t_end)
            if not settled:
                fails.append("the cluster did not settle within the demo's time")
            if act_rc != 0:
                fails.append("sparkscale-actuator exited %s on SIGTERM" % act_rc)
            ss_rc = run.daemons[0].stop(20)
            if ss_rc != 0:
                fails.append("sparkscaled exited %s on SIGTERM" % ss_rc)
        except Interrupted as e:
            say()
            say("demo: %s: stopping everything" % signal.Signals(e.args[0]).name)
            rc = 128 + e.args[0]
        except RuntimeError as e:
            say()
            say("demo: %s" % e)
            fails.append("did not run to the end")
            rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)   # a second Ctrl-C must not skip the cleanup
        if run.follower:
            run.follower.stop()
        for d in reversed(run.daemons):
            d.stop(75 if d.name == "sparkscale-actuator" else 20)
        if run.cluster:
            run.cluster.stop()
        left = leftovers(a.work)
        for pid, cmd in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if left:
        fails.append("%d process(es) were left behind (killed now): %s"
                     % (len(left), "; ".join(clip(c, 60) for _, c in left)))
    say("  processes left behind: %s" % ("none" if not left else len(left)))
    if rc < 128:
        rc = 1 if fails else 0
        for f in fails:
            say("  FAILED: %s" % f)
        say("demo: %s (logs in %s)" % ("PASS" if rc == 0 else "FAIL", a.work))
    else:
        say("demo: stopped by a signal before the end (logs in %s)" % a.work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
