"""capture.py: records exactly what Spark's GraphiteSink sends, with no sparkscaled involved.
Runs Master + Worker + job.py with a loopback carbon TCP listener; writes OUT (raw bytes) and
OUT.conns (one line per TCP connection: open/close time, peer, lines, bytes).
Usage: tests/spark/.venv/bin/python tests/spark/capture.py OUT [--all-instances]"""

import argparse
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparklib  # noqa: E402


class CarbonRecorder:
    def __init__(self, out_path):
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.out = open(out_path, "wb")
        self.conns = open(out_path + ".conns", "w")
        self.lock = threading.Lock()
        self.n_conns = 0
        self.n_lines = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, peer = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c, peer), daemon=True).start()

    def _serve(self, c, peer):
        t_open = time.time()
        data = bytearray()
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        c.close()
        t_close = time.time()
        with self.lock:
            self.n_conns += 1
            self.n_lines += data.count(b"\n")
            self.out.write(data)
            self.out.flush()
            first = bytes(data[:data.find(b"\n")]).decode(errors="replace") if data else ""
            self.conns.write("%.3f %.3f %s:%d lines=%d bytes=%d ends_nl=%s first=%s\n" % (
                t_open, t_close, peer[0], peer[1], data.count(b"\n"), len(data),
                data.endswith(b"\n"), first))
            self.conns.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--all-instances", action="store_true",
                    help="sink on every instance, no regex filter: all Spark sends")
    ap.add_argument("--prefix", default="sparkcheck")
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--task-s", type=float, default=1.0)
    ap.add_argument("--linger-s", type=float, default=15.0)
    a = ap.parse_args()
    rec = CarbonRecorder(a.out)
    sparklib.log("carbon recorder on 127.0.0.1:%d -> %s" % (rec.port, a.out))
    work = os.path.join(sparklib.HERE, "work", "capture")
    with sparklib.SparkCluster(work, rec.port, a.prefix, sink_all=a.all_instances) as cl:
        cl.start()
        job = cl.submit(a.tasks, a.task_s, a.linger_s)
        rc = job.wait(timeout=240)
        sparklib.log("job exited %d" % rc)
        time.sleep(3)  # a few more master/worker reports after the app ended
    time.sleep(1.5)
    sparklib.log("recorded %d lines in %d connections" % (rec.n_lines, rec.n_conns))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
