#!/usr/bin/env python3
"""Demo load for sparkscaled: plays a small standalone Spark cluster "demo".

Every second it sends one GraphiteSink-style report over a fresh TCP
connection (as Spark 3.2+ does): each driver's ExecutorAllocationManager
gauges plus the master's gauges. Spark's demand follows a scripted story
(ramp up, plateau, a second app bursts in, both finish). The simulated
cluster applies sparkscaled's desired worker count two seconds after it is
decided, as an actuator would, and the table shows it all moving.
"""
import argparse
import json
import math
import socket
import sys
import time
import urllib.request

EXEC_PER_WORKER = 2  # demo cluster: worker 4 cores / executor 2 cores

# (second, {app: target executors}) - linear between points
STORY = [
    (0, {"app-20261121093000-0001": 0}),
    (4, {"app-20261121093000-0001": 2}),
    (10, {"app-20261121093000-0001": 8}),
    (16, {"app-20261121093000-0001": 14}),
    (24, {"app-20261121093000-0001": 14, "app-20261121093500-0002": 0}),
    (28, {"app-20261121093000-0001": 14, "app-20261121093500-0002": 10}),
    (36, {"app-20261121093000-0001": 4, "app-20261121093500-0002": 10}),
    (42, {"app-20261121093000-0001": 0, "app-20261121093500-0002": 2}),
    (48, {"app-20261121093500-0002": 0}),
]


def demand_at(t):
    for (t0, d0), (t1, d1) in zip(STORY, STORY[1:]):
        if t0 <= t < t1:
            f = (t - t0) / (t1 - t0)
            return {a: round(d0.get(a, 0) + f * (d1.get(a, 0) - d0.get(a, 0)))
                    for a in set(d0) | set(d1) if a in d1 or f < 0.5}
    return dict(STORY[-1][1])


def send_report(host, port, prefix, apps, workers, ts):
    lines = []
    for app, target in apps.items():
        running = min(target, workers * EXEC_PER_WORKER)
        base = f"{prefix}.{app}.driver.ExecutorAllocationManager.executors"
        lines += [
            f"{base}.numberTargetExecutors {target} {ts}",
            f"{base}.numberMaxNeededExecutors {target + 2} {ts}",
            f"{base}.numberAllExecutors {running} {ts}",
            f"{base}.numberExecutorsToAdd {max(0, target - running)} {ts}",
            f"{base}.numberExecutorsPendingToRemove 0 {ts}",
            f"{prefix}.{app}.driver.BlockManager.memory.memUsed_MB 42 {ts}",
        ]
    lines += [f"{prefix}.master.workers {workers} {ts}",
              f"{prefix}.master.aliveWorkers {workers} {ts}",
              f"{prefix}.master.apps {len(apps)} {ts}",
              f"{prefix}.master.waitingApps 0 {ts}"]
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(("\n".join(lines) + "\n").encode())


def send_worker_reports(host, port, prefix, workers, running, ts):
    """Each simulated worker reports its own gauges from its own loopback
    address, as worker pods do from their pod IPs: sparkscaled tells workers
    apart by sender, counts the busy ones and names idle ones on scale-in."""
    for i in range(workers):
        execs = max(0, min(EXEC_PER_WORKER, running - EXEC_PER_WORKER * i))
        used = execs * 2
        lines = (f"{prefix}.worker.coresUsed {used} {ts}\n"
                 f"{prefix}.worker.coresFree {4 - used} {ts}\n"
                 f"{prefix}.worker.executors {execs} {ts}\n")
        with socket.create_connection((host, port), timeout=5,
                                      source_address=(f"127.0.0.{10 + i}", 0)) as s:
            s.sendall(lines.encode())


def cluster_status(http, name):
    with urllib.request.urlopen(f"{http}/v1/clusters?name={name}", timeout=5) as r:
        doc = json.load(r)
    return doc["clusters"][0] if doc["clusters"] else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--carbon", default="127.0.0.1:2003")
    ap.add_argument("--http", default="http://127.0.0.1:9090")
    ap.add_argument("--cluster", default="demo")
    ap.add_argument("--prefix", default="demo")
    ap.add_argument("--seconds", type=int, default=100)
    args = ap.parse_args()
    host, port = args.carbon.rsplit(":", 1)

    workers = 1            # the simulated cluster's size
    pending = []           # (apply_at, count): decisions being "actuated"
    print(f"{'t':>3}  {'executors wanted':>16}  {'workers':>7}  {'busy':>4}  {'desired':>7}  reason")
    for t in range(args.seconds):
        apps = demand_at(t)
        ts = int(time.time())
        send_report(host, int(port), args.prefix, apps, workers, ts)
        running = min(sum(apps.values()), workers * EXEC_PER_WORKER)
        send_worker_reports(host, int(port), args.prefix, workers, running, ts)
        time.sleep(0.3)
        st = cluster_status(args.http, args.cluster)
        desired = (st or {}).get("workers", {}).get("desired")
        busy = (st or {}).get("workers", {}).get("busy")
        reason = ((st or {}).get("recommendation") or {}).get("reason", "")
        if desired is not None and (not pending or pending[-1][1] != desired) and desired != workers:
            pending.append((t + 2, desired))
        while pending and pending[0][0] <= t:
            workers = pending.pop(0)[1]
        print(f"{t:>3}  {sum(apps.values()):>16}  {workers:>7}  {busy if busy is not None else '-':>4}  "
              f"{desired if desired is not None else '-':>7}  {reason}", flush=True)
        time.sleep(0.7)
    return 0


if __name__ == "__main__":
    sys.exit(main())
