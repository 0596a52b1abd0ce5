#!/usr/bin/env python3
"""Garbage soak: for SECONDS, several threads throw hostile carbon input at a
running sparkscaled over TCP and UDP (random bytes, NULs, huge lines, lines
split at random points, half-open connections, connect-and-drop floods),
mixed with valid Spark lines. Afterwards the daemon must still answer
/healthz, have stored the valid lines, and be alive.
Usage: soak_garbage.py CARBON_PORT HTTP_PORT [SECONDS] (tests/soak/run_garbage_soak.sh runs it)"""
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.request

port, http, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 30
deadline = time.time() + seconds
valid_sent = [0]
lock = threading.Lock()
EAM = ".driver.ExecutorAllocationManager.executors."


def valid_line(r, prefix="soak"):
    return f"{prefix}.app-{r.randrange(20):04d}{EAM}numberTargetExecutors {r.randrange(50)} {int(time.time())}\n"


def garbage(r):
    # Each chunk ends its own line, so the valid lines after it stay whole.
    return garbage_body(r) + b"\n"


def garbage_body(r):
    kind = r.randrange(8)
    if kind == 0:
        return os.urandom(r.randrange(1, 4096))
    if kind == 1:
        return b"x" * r.randrange(4096, 200000) + b"\n"
    if kind == 2:
        return b"\x00" * r.randrange(1, 512)
    if kind == 3:
        return f"soak.app-1{EAM}numberTargetExecutors NaN {int(time.time())}\n".encode()
    if kind == 4:
        return b"soak.master.aliveWorkers 1e999 1\nsoak.worker.coresUsed -0 -1\n"
    if kind == 5:
        return b"\r\n" * r.randrange(1, 100)
    if kind == 6:
        return (".".join(["a"] * r.randrange(1, 2000)) + " 1 1\n").encode()
    return f"soak.{'x.' * r.randrange(300)}driver.ExecutorAllocationManager.executors. 1 1\n".encode()


# Valid senders and the half-open flood come from different addresses, as
# they would in real life: one address may hold only so many connections.
SENDER, FLOODER = "127.0.0.2", "127.0.0.9"


def tcp_worker(seed):
    r = random.Random(seed)
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(SENDER, 0))
            for _ in range(r.randrange(1, 50)):
                if r.random() < 0.5:
                    data = valid_line(r).encode()
                    with lock:
                        valid_sent[0] += 1
                else:
                    data = garbage(r)
                # Split at a random point, as TCP may.
                cut = r.randrange(len(data) + 1)
                s.sendall(data[:cut])
                s.sendall(data[cut:])
            if r.random() < 0.2:
                s.close()           # drop without shutdown
                continue
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            while s.recv(65536):
                pass
            s.close()
        except OSError:
            pass


def udp_worker(seed):
    r = random.Random(seed)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while time.time() < deadline:
        # Valid lines of an unconfigured cluster: counted, never stored, so
        # the store's count is the TCP senders' alone.
        data = garbage(r)[:60000] if r.random() < 0.7 else valid_line(r, "nosuch").encode()
        try:
            u.sendto(data, ("127.0.0.1", port))
        except OSError:
            pass
        time.sleep(0.0005)


def flood_worker(seed):
    r = random.Random(seed)
    held = []
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(FLOODER, 0))
            s.sendall(b"soak.app-half" + EAM.encode() + b"numberTarget")   # half a line, then hold
            held.append(s)
            if len(held) > 200:
                held.pop(0).close()
        except OSError:
            time.sleep(0.01)
    for s in held:
        s.close()


threads = [threading.Thread(target=tcp_worker, args=(i,)) for i in range(4)]
threads += [threading.Thread(target=udp_worker, args=(100,)), threading.Thread(target=flood_worker, args=(200,))]
for t in threads:
    t.start()
for t in threads:
    t.join()
time.sleep(1)
with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=10) as resp:
    assert resp.read() == b"ok\n"
metrics = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read().decode()
vals = {l.split(" ")[0]: float(l.split(" ")[1]) for l in metrics.splitlines() if l and not l.startswith("#")}
stored = vals.get("sparkscale_carbon_lines_stored_total", 0)
rej = 'sparkscale_carbon_lines_rejected_total{reason="%s"}'
refused = 'sparkscale_carbon_tcp_connections_closed_total{reason="per_peer"}'
old = vals.get(rej % "out_of_order", 0)
print(f"soak: {seconds:.0f}s, valid lines sent over TCP {valid_sent[0]}, stored {stored:.0f} "
      f"+ out of order {old:.0f} (senders race on timestamps), lines {vals.get('sparkscale_carbon_lines_total', 0):.0f}, "
      f"too_long {vals.get(rej % 'too_long', 0):.0f}, binary {vals.get(rej % 'binary', 0):.0f}, "
      f"flood connections refused per peer {vals.get(refused, 0):.0f}")
if stored + old != valid_sent[0]:
    print("soak: FAIL: valid lines were lost (or garbage was stored)")
    sys.exit(1)
print("soak: PASS: daemon alive and answering, valid lines stored")
