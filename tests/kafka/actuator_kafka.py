#!/usr/bin/env python3
"""Runs the actuator's process-level tests (tests/runtime/test_actuator_proc:
kill -9 at random moments under load, two actuators with a rebalance) against
a real Apache Kafka broker (KRaft, one node), where transactions are real:
aborted and open ones stay invisible to read_committed readers and offsets
sent to a transaction are kept. The broker is started with e2e.py's helpers."""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jars", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--budget", type=float, default=300)
    a = ap.parse_args()
    r = e2e.Run(a)
    r.write_broker_files()
    with open(os.path.join(a.work, "server.properties"), "a") as f:
        # The tests use 3 s sessions (fast rebalances); brokers refuse < 6 s by default.
        f.write("group.min.session.timeout.ms=1000\n")
    r.format_storage()
    took = r.start_broker()
    print("actuator on real Kafka: broker %s up in %.1f s" % (r.bootstrap, took), flush=True)
    env = dict(os.environ, SS_TEST_KAFKA=r.bootstrap, SS_SOURCE_DIR=a.source, SS_BUILD_DIR=a.build)
    test = os.path.join(a.build, "tests", "test_actuator_proc")
    try:
        rc = subprocess.run([test], env=env, timeout=max(30.0, r.left())).returncode
    except subprocess.TimeoutExpired:
        print("actuator on real Kafka: test_actuator_proc timed out", flush=True)
        rc = 124
    r.stop(r.broker)
    print("actuator on real Kafka: %s" % ("PASS" if rc == 0 else "FAIL (exit %d)" % rc), flush=True)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
