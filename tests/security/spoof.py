#!/usr/bin/env python3
"""Spoofing suite: attacks on sparkscaled's carbon and status ports, run once
without and once with an allowlist, against the real daemon on loopback.

A legitimate Spark cluster sends from 127.0.0.2 (master, driver) and
127.0.0.200-205 (its workers); the attacker from 127.0.0.66 (and
127.0.0.100-131 for the floods). Each attack starts a fresh
daemon, lets the legitimate cluster settle, attacks, and compares the
cluster's decision (and whether the legitimate sender still gets through)
with the settled one. Prints one table; exits 1 if any attack changes a
decision or locks out the legitimate sender while the allowlist is set.

Usage: tests/security/spoof.py path/to/sparkscaled
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

EAM = ".driver.ExecutorAllocationManager.executors."
LEGIT = "127.0.0.2"
ATTACKER = "127.0.0.66"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Daemon:
    def __init__(self, binary, allow):
        self.tcp, self.http = free_port(), free_port()
        # the master and drivers, and the workers (they report their own gauges)
        allow_line = "    allowed_sources: [%s/32, 127.0.0.200/29]\n" % LEGIT if allow else ""
        allow_beta = "    allowed_sources: [127.0.0.3/32]\n" if allow else ""
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        self.conf.write(
            "ingest: { carbon_tcp: \"127.0.0.1:%d\", carbon_udp: \"off\", http: \"127.0.0.1:%d\",\n"
            "          max_clients: 64, max_clients_per_peer: 8 }\n"
            "kafka: { brokers: embedded }\n"
            "store: { max_apps_per_cluster: 16 }\n"
            "policy: { evaluate_interval_ms: 200, scale_down_window_s: 2, idle_workers: 1,\n"
            "          app_min_executors: 2, idle_mode: need }\n"
            "pools:\n  - { name: shared, max_workers: 12 }\n"
            "clusters:\n"
            "  - name: alpha\n%s"
            "    worker: { cores: 2, memory_mb: 8192 }\n"
            "    executor: { cores: 2, memory_mb: 4096 }\n"
            "    policy: { max_workers: 30, pool: shared }\n"
            "  - name: beta\n%s"
            "    worker: { cores: 2, memory_mb: 8192 }\n"
            "    executor: { cores: 2, memory_mb: 4096 }\n"
            "    policy: { max_workers: 30, pool: shared }\n"
            % (self.tcp, self.http, allow_line, allow_beta))
        self.conf.close()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([binary, "--config", self.conf.name],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sparkscaled did not start; log in %s" % self.log.name)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self.conf.name)
        os.unlink(self.log.name)

    def get(self, path, timeout=3):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http, path), timeout=timeout) as r:
            return r.read().decode()

    def cluster(self, name):
        for c in json.loads(self.get("/v1/clusters"))["clusters"]:
            if c["name"] == name:
                return c
        return None

    def desired(self, name="alpha"):
        d = self.cluster(name)["decision"]
        return d["desired"] if d else None

    def send(self, lines, src=LEGIT, keep=False):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", self.tcp))
        try:
            s.sendall(lines.encode("latin-1"))
        except OSError:
            pass
        if keep:
            return s
        try:
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
        except OSError:
            pass   # refused by the daemon: the caller checks the effect
        s.close()
        return None


def now():
    return int(time.time())


def report(d, src=LEGIT, workers=6, busy=3, apps=(("app-20261201100000-0001", 8),),
           cluster="alpha"):
    """One legitimate report: the master, its workers, the drivers."""
    t = now()
    out = ["%s.master.aliveWorkers %d %d\n" % (cluster, workers, t)]
    for app, target in apps:
        out.append("%s.%s%snumberTargetExecutors %d %d\n" % (cluster, app, EAM, target, t))
    d.send("".join(out), src=src)
    for w in range(workers):
        # worker gauges come from each worker's own address
        d.send("%s.worker.coresUsed %d %d\n" % (cluster, 2 if w < busy else 0, t),
               src="127.0.0.%d" % (200 + w))


def settle(d, rounds=6):
    for _ in range(rounds):
        report(d)
        time.sleep(0.25)
    return d.desired()


# ---- the attacks: each returns (decision changed?, legit locked out?) ----

def attack_force_max(d, base):
    t = now()
    for i in range(20):
        d.send("alpha.app-20261201100000-9%03d%snumberTargetExecutors 1000 %d\n" % (i, EAM, t),
               src=ATTACKER)
    time.sleep(0.6)
    return d.desired() != base, False


def attack_shrink_busy(d, base):
    t = now()
    lines = "alpha.master.aliveWorkers 1 %d\n" % t
    lines += "alpha.app-20261201100000-0001%snumberTargetExecutors 0 %d\n" % (EAM, t)
    for _ in range(5):
        d.send(lines, src=ATTACKER)
        for w in range(10):
            d.send("alpha.worker.coresUsed 0 %d\n" % t, src="127.0.0.%d" % (100 + w))
        time.sleep(0.5)
    return d.desired() != base, False


def attack_hostage(d, base):
    future = now() + 10 * 365 * 86400
    d.send("alpha.app-20261201100000-0001%snumberTargetExecutors 50 %d\n" % (EAM, future),
           src=ATTACKER)
    time.sleep(0.3)
    # the real app now wants more: its lines must still count
    for _ in range(4):
        report(d, apps=(("app-20261201100000-0001", 14),))
        time.sleep(0.25)
    app = [a for a in d.cluster("alpha")["apps"] if a["id"] == "app-20261201100000-0001"][0]
    held = app["gauges"]["numberTargetExecutors"]["value"] != 14
    return held, False


def attack_pool_starve(d, base):
    t = now()
    # a fake app, older than every real one, wants the whole pool in beta
    for _ in range(3):
        d.send("beta.app-20000101000000-0000%snumberTargetExecutors 12 %d\n" % (EAM, t),
               src=ATTACKER)
        time.sleep(0.3)
    # alpha's real app grows: does it still get its workers?
    for _ in range(4):
        report(d, apps=(("app-20261201100000-0001", 10),))
        time.sleep(0.25)
    got = d.desired()
    return got != 11, False


def attack_memory_flood(d, base):
    t = now()
    lines = "".join("alpha.app-20261201100000-%04d%snumberTargetExecutors 0 %d\n" % (5000 + i, EAM, t)
                    for i in range(200))
    d.send(lines, src=ATTACKER)
    time.sleep(0.3)
    # a new real app must still be admitted
    report(d, apps=(("app-20261201100000-0001", 8), ("app-20261201110000-0002", 4)))
    time.sleep(0.5)
    c = d.cluster("alpha")
    ids = [a["id"] for a in c["apps"]]
    return False, "app-20261201110000-0002" not in ids


def attack_tcp_lockout(d, base):
    socks = []
    for i in range(32):
        for k in range(8):
            try:
                socks.append(d.send("alpha.app-x", src="127.0.0.%d" % (100 + i), keep=True))
            except OSError:
                pass
    for _ in range(8):
        for s in socks:
            try:
                s.send(b"x")
            except OSError:
                pass
        time.sleep(0.2)
    ok = 0
    for _ in range(5):
        try:
            report(d, apps=(("app-20261201100000-0001", 8),))
            ok += 1
        except OSError:
            pass
        time.sleep(0.1)
    locked = ok < 5 or d.desired() != base
    for s in socks:
        s.close()
    return False, locked


def attack_http_lockout(d, base):
    socks = []
    for i in range(20):
        for k in range(16):
            try:
                s = socket.socket()
                s.bind(("127.0.0.%d" % (100 + i), 0))
                s.connect(("127.0.0.1", d.http))
                s.sendall(b"GET / HTTP/1.1\r\nHo")
                socks.append(s)
            except OSError:
                pass
    answered = 0
    for _ in range(10):
        try:
            if d.get("/healthz", timeout=2).startswith("ok"):
                answered += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    return False, answered < 10


ATTACKS = [
    ("force to max", attack_force_max),
    ("shrink a busy cluster", attack_shrink_busy),
    ("hostage series", attack_hostage),
    ("pool starvation (fake old app)", attack_pool_starve),
    ("memory flood (app ids)", attack_memory_flood),
    ("carbon TCP lockout", attack_tcp_lockout),
    ("status HTTP lockout", attack_http_lockout),
]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    rows, failed = [], 0
    for name, fn in ATTACKS:
        cells = []
        for allow in (False, True):
            d = Daemon(binary, allow)
            try:
                base = settle(d)
                changed, locked = fn(d, base)
            finally:
                d.stop()
            effect = "decision changed" if changed else "legit sender locked out" if locked else "no effect"
            cells.append(effect)
            if allow and (changed or locked):
                failed += 1
        rows.append((name, cells[0], cells[1]))
    w = max(len(r[0]) for r in rows)
    print("%-*s  %-26s  %s" % (w, "attack", "without allowed_sources", "with allowed_sources"))
    for r in rows:
        print("%-*s  %-26s  %s" % (w, r[0], r[1], r[2]))
    print("spoof: %d attack(s) had an effect with the allowlist set" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
