#!/usr/bin/env python3
"""e2e.py: the checks of run_kafka_e2e.sh: a real Apache Kafka broker (KRaft, one node) and a real
sparkscaled; auto-creation off, per-cluster order and keys, a broker outage. Standard library only."""
import argparse
import base64
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

EAM = ".driver.ExecutorAllocationManager.executors.numberTargetExecutors"
DECISIONS = "sparkscale.decisions"
AUDIT = "sparkscale.audit"
PARTITIONS = 4
# Every cluster: worker 4 cores / 8192 MB, executor 2 cores / 4096 MB -> 2 executors a worker.
CLUSTERS = ("alpha", "beta", "gamma", "delta")
PER_WORKER = 2
IDLE = 1
MAX_WORKERS = 50


def desired_for(target):
    """The policy rule for one app: ceil(target / E) + I, clamped (README, "The decision")."""
    return max(1, min(MAX_WORKERS, math.ceil(target / PER_WORKER) + IDLE))


class CheckFailed(Exception):
    pass


def need(cond, what):
    if not cond:
        raise CheckFailed(what)


class Run:
    def __init__(self, args):
        self.a = args
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget
        self.pidfile = open(args.pidfile, "a", buffering=1)
        self.broker = None
        self.daemon = None
        self.results = open(os.path.join(args.work, "results"), "a", buffering=1)
        self.passed = self.failed = 0

    # ---- time ----
    def left(self):
        return self.deadline - time.monotonic()

    def wait_until(self, fn, timeout, what, interval=0.05):
        """Polls fn() until it returns a truthy value; bounded by timeout and the run budget."""
        end = time.monotonic() + min(timeout, max(0.0, self.left()))
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() >= end:
                raise CheckFailed("timed out after %.1f s waiting for %s" % (timeout, what))
            time.sleep(interval)

    def log(self, msg):
        print("  [%6.1fs] %s" % (time.monotonic() - self.t0, msg), flush=True)

    # ---- processes ----
    def spawn(self, argv, logname, tag):
        logf = open(os.path.join(self.a.work, logname), "ab")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=self.a.work)
        logf.close()
        # run_kafka_e2e.sh kills what is left of these (checking the command line first).
        self.pidfile.write("%d %s\n" % (p.pid, tag))
        return p

    @staticmethod
    def stop(p, sig=signal.SIGTERM, timeout=30.0):
        """Signals p and waits; returns (seconds, exit code, killed)."""
        if p is None or p.poll() is not None:
            return 0.0, (p.returncode if p else None), False
        t = time.monotonic()
        p.send_signal(sig)
        try:
            p.wait(timeout)
            return time.monotonic() - t, p.returncode, False
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            return time.monotonic() - t, p.returncode, True

    def java(self, main, args, heap="256m", timeout=90, log4j="tools-log4j.properties"):
        argv = ["java", "-Xmx" + heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
                "-Dlog4j.configuration=file:" + os.path.join(self.a.work, log4j),
                "-cp", os.path.join(self.a.jars, "*"), main] + args
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=min(timeout, max(5.0, self.left())), cwd=self.a.work)

    # ---- the broker ----
    def write_broker_files(self):
        w = self.a.work
        self.data = os.path.join(w, "kafka-data")
        ports = free_ports(2)
        self.bport, self.cport = ports
        self.bootstrap = "127.0.0.1:%d" % self.bport
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": "1@127.0.0.1:%d" % self.cport,
            "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (self.bport, self.cport),
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % self.bport,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": self.data,
            "num.partitions": str(PARTITIONS),
            # The point of check (a): the producer must not get its topic made for it.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "min.insync.replicas": "1",
            "default.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        with open(os.path.join(w, "server.properties"), "w") as f:
            f.writelines("%s=%s\n" % kv for kv in props.items())
        for name, level, target in (("broker-log4j.properties", "INFO", "System.out"),
                                    ("tools-log4j.properties", "WARN", "System.err")):
            with open(os.path.join(w, name), "w") as f:
                f.write("log4j.rootLogger=%s, out\n"
                        "log4j.appender.out=org.apache.log4j.ConsoleAppender\n"
                        "log4j.appender.out.Target=%s\n"
                        "log4j.appender.out.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.out.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n"
                        "log4j.logger.kafka.server.KafkaConfig=WARN\n"
                        "log4j.logger.org.apache.kafka.common.config=WARN\n" % (level, target))

    def format_storage(self):
        # A KRaft cluster id is a base64url UUID (22 chars); one starting with '-' reads as an option.
        while True:
            cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
            if cid[0] != "-":
                break
        r = self.java("kafka.tools.StorageTool",
                      ["format", "-t", cid, "-c", os.path.join(self.a.work, "server.properties")])
        if r.returncode != 0:
            raise CheckFailed("kafka.tools.StorageTool format exited %d: %s"
                              % (r.returncode, (r.stderr or r.stdout).strip()[-500:]))

    def start_broker(self):
        with open(os.path.join(self.a.work, "broker.log"), "ab") as f:
            f.write(b"==== sparkscale e2e: broker start ====\n")
        argv = ["java", "-Xmx512m", "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
                "-Dlog4j.configuration=file:" + os.path.join(self.a.work, "broker-log4j.properties"),
                "-cp", os.path.join(self.a.jars, "*"), "kafka.Kafka",
                os.path.join(self.a.work, "server.properties")]
        self.broker = self.spawn(argv, "broker.log", "kafka.Kafka")
        t = time.monotonic()

        def accepting():
            if self.broker.poll() is not None:
                raise CheckFailed("the Kafka broker exited %d at start (see broker.log)"
                                  % self.broker.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.bport), timeout=1).close()
                return True
            except OSError:
                return False
        self.wait_until(accepting, 60, "the broker to accept connections on %s" % self.bootstrap, 0.2)
        # Accepting is not serving: the admin client answering is.
        self.wait_until(lambda: self.list_topics(quiet=True) is not None, 60,
                        "the broker to answer a topic listing", 0.5)
        return time.monotonic() - t

    def topic_cmd(self, args):
        return self.java("org.apache.kafka.tools.TopicCommand",
                         ["--bootstrap-server", self.bootstrap] + args)

    def list_topics(self, quiet=False):
        r = self.topic_cmd(["--list"])
        if r.returncode != 0:
            if quiet:
                return None
            raise CheckFailed("TopicCommand --list exited %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
        return [t for t in r.stdout.split() if t]

    def create_topics(self):
        for t in (DECISIONS, AUDIT):
            r = self.topic_cmd(["--create", "--if-not-exists", "--topic", t, "--partitions", str(PARTITIONS),
                                "--replication-factor", "1"])
            if r.returncode != 0:
                raise CheckFailed("TopicCommand --create %s exited %d: %s"
                                  % (t, r.returncode, (r.stderr or r.stdout).strip()[-300:]))

    # ---- sparkscaled ----
    def start_daemon(self):
        self.carbon_port, self.http_port = free_ports(2)
        clusters = "".join(
            "  - name: %s\n"
            "    worker: { cores: 4, memory_mb: 8192 }\n"
            "    executor: { cores: 2, memory_mb: 4096 }\n" % c for c in CLUSTERS)
        yaml = ("ingest:\n"
                "  carbon_tcp: \"127.0.0.1:%d\"\n"
                "  carbon_udp: \"off\"\n"
                "  http: \"127.0.0.1:%d\"\n"
                "kafka:\n"
                "  brokers: \"%s\"\n"
                "  heartbeat_s: 86400\n"
                "policy:\n"
                "  evaluate_interval_ms: 200\n"
                "  scale_down_window_s: 0\n"
                "  tolerance_executors: 0\n"
                "  idle_workers: %d\n"
                "  min_workers: 1\n"
                "  max_workers: %d\n"
                "  stale_after_s: 3600\n"
                "  app_expiry_s: 3600\n"
                "clusters:\n%s"
                "log_level: info\n"
                % (self.carbon_port, self.http_port, self.bootstrap, IDLE, MAX_WORKERS, clusters))
        cfg = os.path.join(self.a.work, "sparkscaled.yaml")
        with open(cfg, "w") as f:
            f.write(yaml)
        r = subprocess.run([self.a.sparkscaled, "--config", cfg, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise CheckFailed("sparkscaled --check-config rejected the config: %s" % (r.stderr or r.stdout).strip())
        self.daemon_log = os.path.join(self.a.work, "sparkscaled.log")
        self.daemon = self.spawn([self.a.sparkscaled, "--config", cfg], "sparkscaled.log", "sparkscaled")

        def healthy():
            if self.daemon.poll() is not None:
                raise CheckFailed("sparkscaled exited %d at start (see sparkscaled.log)" % self.daemon.returncode)
            try:
                return self.http("/healthz").strip() == "ok"
            except (OSError, urllib.error.URLError):
                return False
        self.wait_until(healthy, 15, "sparkscaled /healthz", 0.1)

    def daemon_alive(self):
        need(self.daemon is not None and self.daemon.poll() is None,
             "sparkscaled is not running (exit %s; see sparkscaled.log)"
             % (self.daemon.returncode if self.daemon else "never started"))

    def http(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path), timeout=5) as r:
            return r.read().decode()

    def metrics(self):
        m = {}
        for line in self.http("/metrics").splitlines():
            if line.startswith("#") or "{" in line:
                continue
            parts = line.split()
            if len(parts) == 2:
                m[parts[0].replace("sparkscale_", "", 1)] = float(parts[1])
        for k in ("decisions_published_total", "decisions_delivered_total", "decisions_superseded_total",
                  "decisions_dropped_total", "decisions_pending", "kafka_brokers_up"):
            need(k in m, "/metrics has no sparkscale_%s" % k)
        return m

    def decision(self, cluster):
        """The last decision of cluster from /v1/clusters ({} before the first one)."""
        root = json.loads(self.http("/v1/clusters?name=" + cluster))
        cl = root.get("clusters", root) if isinstance(root, dict) else root
        for c in cl:
            if c.get("name") == cluster:
                return c.get("decision") or {}
        raise CheckFailed("/v1/clusters has no cluster %s" % cluster)

    def send_target(self, cluster, target, app="app-20261121093000-0001"):
        line = "%s.%s%s %d %d\n" % (cluster, app, EAM, target, int(time.time()))
        with socket.create_connection(("127.0.0.1", self.carbon_port), timeout=5) as s:
            s.sendall(line.encode())

    def trigger(self, cluster, target):
        """Sends a demand and waits until sparkscaled has published the decision it makes."""
        before = self.decision(cluster).get("sequence", 0)
        want = desired_for(target)
        self.send_target(cluster, target)
        d = self.wait_until(
            lambda: (lambda d: d if d.get("sequence", 0) > before and d.get("desired") == want else None)(
                self.decision(cluster)),
            10, "%s: a decision with desired %d after target %d" % (cluster, want, target), 0.02)
        need(d["sequence"] == before + 1, "%s: sequence went %d -> %d for one change"
             % (cluster, before, d["sequence"]))
        return d

    def audit(self):
        """Every record on the bus, via sparkscalectl audit --json."""
        r = subprocess.run([self.a.ctl, "audit", "--brokers", self.bootstrap, "--json", "--wait-s", "30"],
                           capture_output=True, text=True, timeout=min(60, max(5, self.left())))
        need(r.returncode == 0, "sparkscalectl audit exited %d: %s" % (r.returncode, r.stderr.strip()[-400:]))
        recs = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        bad = [x for x in recs if x.get("type") not in ("decision", "result")]
        need(not bad, "sparkscalectl audit printed records it could not decode: %s" % bad[:3])
        return [x for x in recs if x["type"] == "decision"]

    def log_has(self, pattern):
        with open(self.daemon_log, errors="replace") as f:
            return [l.rstrip() for l in f if re.search(pattern, l)]

    # ---- checks ----
    def check(self, name, fn):
        if self.left() <= 0:
            self.report(name, False, "not run: the %d s budget is spent" % self.a.budget)
            return False
        t = time.monotonic()
        try:
            detail = fn()
            ok = True
        except CheckFailed as e:
            ok, detail = False, str(e)
        except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError) as e:
            ok, detail = False, "%s: %s" % (type(e).__name__, e)
        self.report(name, ok, "%s (%.1f s)" % (detail, time.monotonic() - t))
        return ok

    def report(self, name, ok, detail):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        line = "%s %s: %s" % ("PASS" if ok else "FAIL", name, detail)
        print(line, flush=True)
        self.results.write(line + "\n")

    def check_autocreate_off(self):
        topics = self.list_topics()
        need(DECISIONS not in topics and AUDIT not in topics,
             "the topics exist before the check: %s" % topics)
        self.daemon_alive()
        m0 = self.metrics()
        t = time.monotonic()
        d = self.trigger("alpha", 14)
        need(d["desired"] == 8, "alpha desired %s, want 8" % d["desired"])
        # librdkafka waits topic.metadata.propagation.max.ms (10 s) before it calls a topic missing.
        pat = r"%s.*([Uu]nknown topic|UNKNOWN_TOPIC)" % re.escape(DECISIONS)
        def logged():
            if self.decision("alpha").get("delivery") == "acked":
                raise CheckFailed("the decision was acked with no topic created: %s was auto-created (topics: %s)"
                                  % (DECISIONS, self.list_topics()))
            return self.log_has(pat)
        lines = self.wait_until(logged, 30, "sparkscaled to log an unknown-topic error naming %s" % DECISIONS, 0.2)
        t_err = time.monotonic() - t
        self.log("error logged after %.1f s: %s" % (t_err, lines[0][:220]))
        m1 = self.metrics()
        d = self.decision("alpha")
        need(d.get("delivery") == "pending", "alpha delivery is %r while the topic is missing" % d.get("delivery"))
        need(m1["decisions_pending"] >= 1, "decisions_pending %g while the topic is missing" % m1["decisions_pending"])
        need(m1["decisions_delivered_total"] == m0["decisions_delivered_total"],
             "delivered_total went %g -> %g with no topic" % (m0["decisions_delivered_total"],
                                                             m1["decisions_delivered_total"]))
        need(m1["kafka_brokers_up"] >= 1, "the broker is not connected (brokers_up %g): not a topic test"
             % m1["kafka_brokers_up"])
        need(m1["decisions_dropped_total"] == 0, "%g decisions dropped" % m1["decisions_dropped_total"])
        topics = self.list_topics()
        need(DECISIONS not in topics, "%s was created although auto.create.topics.enable=false" % DECISIONS)
        # The topics appear: the held decision must go out by itself.
        t = time.monotonic()
        self.create_topics()
        t_created = time.monotonic() - t
        t = time.monotonic()
        self.wait_until(lambda: self.decision("alpha").get("delivery") == "acked", 60,
                        "the held alpha decision to be acked once the topic exists", 0.1)
        t_ack = time.monotonic() - t
        m2 = self.wait_until(lambda: (lambda m: m if m["decisions_pending"] == 0 else None)(self.metrics()), 10,
                             "decisions_pending to reach 0")
        need(m2["decisions_delivered_total"] >= m0["decisions_delivered_total"] + 1,
             "delivered_total %g after the ack" % m2["decisions_delivered_total"])
        recs = [r for r in self.audit() if r["cluster"] == "alpha"]
        need([(r["sequence"], r["desired_workers"]) for r in recs] == [(1, 8)],
             "alpha on the bus: %s, want exactly sequence 1 desired 8"
             % [(r["sequence"], r["desired_workers"]) for r in recs])
        return ("topics absent; decision held (pending %g, delivery pending, failed %g) and the error named "
                "%s after %.1f s; topics created in %.1f s; acked %.1f s later (retried %g), on the bus once"
                % (m1["decisions_pending"], m1.get("decisions_failed_total", -1), DECISIONS, t_err,
                   t_created, t_ack, m2.get("decisions_retried_total", -1)))

    def check_order_and_key(self):
        self.ensure_topics()
        self.daemon_alive()
        plan = {"beta": [14, 40, 6, 22, 2, 31, 9], "gamma": [6, 30, 10, 18, 4, 25, 12]}
        base = {c: self.decision(c).get("sequence", 0) for c in plan}
        for i in range(len(plan["beta"])):
            for c in plan:
                self.trigger(c, plan[c][i])
        m = self.wait_until(lambda: (lambda m: m if m["decisions_pending"] == 0 else None)(self.metrics()), 30,
                            "every decision to be acked (decisions_pending 0)")
        recs = self.audit()
        need(len(recs) == m["decisions_delivered_total"],
             "%d decisions on the bus, delivered_total %g" % (len(recs), m["decisions_delivered_total"]))
        epochs = set()
        for c, targets in plan.items():
            mine = [r for r in recs if r["cluster"] == c]
            seqs = [r["sequence"] for r in mine]
            need(all(a < b for a, b in zip(seqs, seqs[1:])), "%s: sequences not strictly increasing: %s" % (c, seqs))
            need(seqs == list(range(base[c] + 1, base[c] + len(targets) + 1)),
                 "%s: sequences %s, want %d..%d (a decision missing or repeated)"
                 % (c, seqs, base[c] + 1, base[c] + len(targets)))
            got = [r["desired_workers"] for r in mine]
            want = [desired_for(t) for t in targets]
            need(got == want, "%s: desired on the bus %s, triggered %s" % (c, got, want))
            need(all(r["key"] == c for r in mine), "%s: a record keyed otherwise: %s"
                 % (c, sorted({r["key"] for r in mine})))
            parts = {r["partition"] for r in mine}
            need(len(parts) == 1, "%s: decisions spread over partitions %s" % (c, sorted(parts)))
            # Java's partitioner (murmur2): any Java producer/consumer agrees on the cluster's partition.
            want_p = java_partition(c.encode(), PARTITIONS)
            need(parts == {want_p}, "%s: partition %s, Java's murmur2 partitioner says %d" % (c, parts, want_p))
            offs = [r["offset"] for r in mine]
            need(all(a < b for a, b in zip(offs, offs[1:])), "%s: offsets out of order %s" % (c, offs))
            apps = [r["apps"][0]["target_executors"] if r.get("apps") else None for r in mine]
            need(apps == targets, "%s: app demand on the bus %s, sent %s" % (c, apps, targets))
            epochs |= {r["producer_epoch"] for r in mine}
        need(len(epochs) == 1, "producer epochs %s, want one (one process)" % epochs)
        return ("%d decisions (beta %s, gamma %s) read back in order, keys = cluster, one partition each "
                "(beta p%d, gamma p%d = murmur2), %d on the bus = delivered_total"
                % (sum(len(v) for v in plan.values()), [desired_for(t) for t in plan["beta"]],
                   [desired_for(t) for t in plan["gamma"]], java_partition(b"beta", PARTITIONS),
                   java_partition(b"gamma", PARTITIONS), len(recs)))

    def check_outage(self):
        self.ensure_topics()
        self.daemon_alive()
        plan = {"delta": [14, 40, 6, 22, 10], "beta": [50, 8]}
        base = {c: self.decision(c).get("sequence", 0) for c in plan}
        m0 = self.metrics()
        need(m0["decisions_pending"] == 0, "decisions pending before the outage: %g" % m0["decisions_pending"])
        took, rc, killed = self.stop(self.broker, signal.SIGTERM, 30)
        need(not killed, "the broker ignored SIGTERM for 30 s (killed)")
        self.log("broker stopped by SIGTERM in %.1f s (exit %s)" % (took, rc))
        self.wait_until(lambda: self.metrics()["kafka_brokers_up"] == 0, 20, "sparkscaled to see the broker down", 0.2)
        for i in range(max(len(v) for v in plan.values())):
            for c, targets in plan.items():
                if i < len(targets):
                    d = self.trigger(c, targets[i])
                    need(d.get("delivery") == "pending", "%s: delivery %r with the broker down"
                         % (c, d.get("delivery")))
        time.sleep(2.0)              # held a while, the broker still away
        m1 = self.metrics()
        n = sum(len(v) for v in plan.values())
        need(m1["decisions_published_total"] - m0["decisions_published_total"] == n,
             "published went up by %g, triggered %d" % (m1["decisions_published_total"] - m0["decisions_published_total"], n))
        need(m1["decisions_pending"] >= 1, "nothing pending with the broker down")
        need(m1["decisions_delivered_total"] == m0["decisions_delivered_total"],
             "delivered with the broker down?")
        need(self.log_has(r"brokers are down|Connection refused"), "sparkscaled logged nothing about the broker")
        for c in plan:
            need(self.decision(c).get("delivery") == "pending", "%s not pending with the broker down" % c)
        self.log("broker down: published +%d, pending %g, held %g; restarting it"
                 % (n, m1["decisions_pending"], m1.get("decisions_held", -1)))
        t = time.monotonic()
        took = self.start_broker()
        self.log("broker back in %.1f s" % took)
        m2 = self.wait_until(lambda: (lambda m: m if m["decisions_pending"] == 0 else None)(self.metrics()), 60,
                             "the held decisions to be acked after the restart")
        t_drain = time.monotonic() - t
        for c in plan:
            d = self.decision(c)
            need(d.get("delivery") == "acked", "%s: delivery %r after the restart" % (c, d.get("delivery")))
        delivered = m2["decisions_delivered_total"] - m0["decisions_delivered_total"]
        superseded = m2["decisions_superseded_total"] - m0["decisions_superseded_total"]
        dropped = m2["decisions_dropped_total"] - m0["decisions_dropped_total"]
        need(dropped == 0, "%g decisions dropped" % dropped)
        need(delivered + superseded == n, "delivered %g + superseded %g != published %d" % (delivered, superseded, n))
        need(m2["decisions_delivered_total"] + m2["decisions_superseded_total"] + m2["decisions_dropped_total"]
             == m2["decisions_published_total"],
             "overall delivered %g + superseded %g + dropped %g != published %g"
             % (m2["decisions_delivered_total"], m2["decisions_superseded_total"], m2["decisions_dropped_total"],
                m2["decisions_published_total"]))
        recs = self.audit()
        need(len(recs) == m2["decisions_delivered_total"],
             "%d decisions on the bus, delivered_total %g" % (len(recs), m2["decisions_delivered_total"]))
        seen = 0
        for c, targets in plan.items():
            mine = [r for r in recs if r["cluster"] == c and r["sequence"] > base[c]]
            seqs = [r["sequence"] for r in mine]
            need(all(a < b for a, b in zip(seqs, seqs[1:])), "%s: sequences not strictly increasing: %s" % (c, seqs))
            need(seqs and seqs[-1] == base[c] + len(targets),
                 "%s: newest sequence on the bus %s, want %d" % (c, seqs[-1:] or None, base[c] + len(targets)))
            for r in mine:      # each one carries the demand of its own trigger
                want = desired_for(targets[r["sequence"] - base[c] - 1])
                need(r["desired_workers"] == want, "%s #%d: desired %d, triggered %d"
                     % (c, r["sequence"], r["desired_workers"], want))
            seen += len(mine)
        need(seen == delivered, "%d outage decisions on the bus, delivered %g" % (seen, delivered))
        fatal = self.log_has(r"fatal producer error")
        need(not fatal, "the broker restart cost a fatal producer error: %s" % fatal[:1])
        return ("broker down: %d decisions published, %g pending, 0 delivered; restarted, drained in %.1f s: "
                "delivered %g + superseded %g = %d, dropped 0; newest delta %d / beta %d on the bus, in order"
                % (n, m1["decisions_pending"], t_drain, delivered, superseded, n,
                   desired_for(plan["delta"][-1]), desired_for(plan["beta"][-1])))

    def check_shutdown(self):
        self.daemon_alive()
        took, rc, killed = self.stop(self.daemon, signal.SIGTERM, 15)
        need(not killed, "sparkscaled did not exit within 15 s of SIGTERM (killed)")
        need(rc == 0, "sparkscaled exited %s on SIGTERM" % rc)
        flushed = self.log_has(r"bus: flushed|not delivered|undelivered")
        need(flushed, "sparkscaled logged no flush summary on exit")
        need(not any("not delivered" in l or "undelivered" in l for l in flushed[-1:]),
             "exit left decisions behind: %s" % flushed[-1])
        return "exit 0 in %.1f s: %s" % (took, flushed[-1].split("  ", 1)[-1][:120])

    def ensure_topics(self):
        if self.broker is None or self.broker.poll() is not None:
            raise CheckFailed("the broker is not running (an earlier step failed)")
        topics = self.list_topics()
        if DECISIONS not in topics or AUDIT not in topics:
            self.create_topics()

    def main(self):
        try:
            self.write_broker_files()
            self.format_storage()
            took = self.start_broker()
            self.log("Kafka %s (KRaft, one node) on %s, up in %.1f s"
                     % (self.a.kafka_version, self.bootstrap, took))
            self.start_daemon()
            self.log("sparkscaled on carbon 127.0.0.1:%d, http 127.0.0.1:%d" % (self.carbon_port, self.http_port))
        except (CheckFailed, OSError, subprocess.SubprocessError) as e:
            self.report("start", False, str(e))
        else:
            self.check("(a) auto-create off: held, error names the topic, delivered once created",
                       self.check_autocreate_off)
            self.check("(b) order and key", self.check_order_and_key)
            self.check("(c) broker outage", self.check_outage)
            self.check("(d) clean shutdown", self.check_shutdown)
        finally:
            self.stop(self.daemon, signal.SIGTERM, 12)
            self.stop(self.broker, signal.SIGTERM, 30)
        self.results.write("done %d %d\n" % (self.passed, self.failed))
        if self.failed:
            for name in ("sparkscaled.log", "broker.log"):
                p = os.path.join(self.a.work, name)
                if os.path.exists(p):
                    with open(p, errors="replace") as f:
                        tail = f.readlines()[-25:]
                    sys.stderr.write("---- last lines of %s ----\n%s" % (name, "".join(tail)))
        return 1 if self.failed else 0


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def murmur2(data):
    """Kafka's Utils.murmur2 (32-bit, seed 0x9747b28c), as a signed Java int."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest = length % 4
    tail = length & ~3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def java_partition(key, n):
    return (murmur2(key) & 0x7FFFFFFF) % n


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jars", required=True)
    ap.add_argument("--kafka-version", required=True)
    ap.add_argument("--sparkscaled", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--budget", type=int, default=240)
    args = ap.parse_args()
    for k in ("jars", "sparkscaled", "ctl", "work", "pidfile"):    # children run in the work dir
        setattr(args, k, os.path.abspath(getattr(args, k)))
    # Kafka's own test vectors (clients/src/test/.../UtilsTest.testMurmur2).
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF and murmur2(b"abc") == 479470107, "murmur2 port is wrong"
    run = Run(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run.main()


if __name__ == "__main__":
    sys.exit(main())
