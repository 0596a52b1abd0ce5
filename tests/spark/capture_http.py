"""capture_http.py: records, verbatim, what a real Spark standalone master answers on GET /json/ and
POST /workers/kill/, and what the Jolokia JVM agent on a real Spark driver answers to bulk reads,
with the carbon lines the same driver's GraphiteSink sent meanwhile. Fixtures for the pure decoders.
Usage: tests/spark/.venv/bin/python tests/spark/capture_http.py JAR [--out tests/fixtures] [--namespace NS]
  JAR: the Jolokia agent (tests/spark/jolokia_setup.sh prints its path).
  --namespace: spark.metrics.namespace of the driver (e.g. 'etl:nightly': names Dropwizard quotes).
Writes OUT/spark_master/*, OUT/jolokia/* and an index (responses.txt) in each; raw material in
tests/spark/work/capture_http/. Needs loopback 127.0.0.2-4; the LOCAL-mode step also needs root and
ip(8) (a network namespace), else it is skipped."""

import argparse
import json
import os
import shutil
import signal
import socket
import threading
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparklib  # noqa: E402
from sparklib import log  # noqa: E402
from capture import CarbonRecorder  # noqa: E402

WORKER_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
WORKER_TIMEOUT_S = 10          # spark.worker.timeout: heartbeat every timeout/4
NETNS = "sscapture"
NETNS_ADDR, HOST_ADDR = "169.254.77.1", "169.254.77.2"   # link-local, only on our veth pair

EAM = "metrics:name=*.driver.ExecutorAllocationManager.executors.*"
BULK_EAM = [{"type": "read", "mbean": EAM + ",type=gauges", "attribute": "Value"},
            {"type": "read", "mbean": EAM + ",type=counters", "attribute": "Count"}]


# ---------------------------------------------------------------- raw HTTP

def http_raw(host, port, method, path, body=b"", ctype=None, src=None, timeout=10):
    """One request on a fresh connection (Connection: close); returns the response bytes as sent."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(src, 0) if src else None)
    try:
        head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\nUser-Agent: sparkscale-capture\r\n" % (
            method, path, host, port)
        if method == "POST":
            head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body))
        s.sendall(head.encode() + b"\r\n" + body)
        out = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                return bytes(out)
            out += b
    finally:
        s.close()


def split_http(raw):
    """(status, headers dict lower-case, entity body bytes): de-chunks, never re-encodes."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body, pos = bytearray(), 0
        while True:
            eol = rest.index(b"\r\n", pos)
            n = int(rest[pos:eol].split(b";")[0], 16)
            if n == 0:
                break
            body += rest[eol + 2:eol + 2 + n]
            pos = eol + 2 + n + 2
        return status, hdrs, bytes(body)
    if "content-length" in hdrs:
        rest = rest[:int(hdrs["content-length"])]
    return status, hdrs, rest


class Recorder:
    """Writes fixtures and one index line per file (request, status, content type, bytes)."""

    def __init__(self, out_dir, index_name="responses.txt"):
        self.dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        # Remove what the previous run recorded (listed in its index), nothing else: README and
        # the files copied in from other runs stay.
        index = os.path.join(out_dir, index_name)
        if os.path.exists(index):
            with open(index) as f:
                for line in f:
                    name = os.path.join(out_dir, line.split(":", 1)[0])
                    if os.path.isfile(name):
                        os.remove(name)
        self.index = open(index, "w")

    def save(self, name, what, raw, whole=False):
        status, hdrs, body = split_http(raw)
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(raw if whole else body)
        self.index.write("%s: %s -> HTTP %d, Content-Type: %s, %d body bytes%s\n" % (
            name, what, status, hdrs.get("content-type", "-"), len(body),
            " (whole response, headers included)" if whole else ""))
        self.index.flush()
        log("saved %s (HTTP %d, %d bytes)" % (name, status, len(body)))
        return status, body


# ---------------------------------------------------------------- Spark processes

class Cluster:
    def __init__(self, work, sink_port, jolokia_jar, jolokia_port):
        self.work, self.home = work, sparklib.spark_home()
        self.procs = {}
        self.conf_dir = os.path.join(work, "conf")
        self.metrics, self.defaults = sparklib.write_conf(self.conf_dir, sink_port, "capture")
        with open(self.metrics, "a") as f:
            # The driver's MBeans exist only with the JMX sink.
            f.write("*.sink.jmx.class=org.apache.spark.metrics.sink.JmxSink\n")
        self.recovery = os.path.join(work, "recovery")
        os.makedirs(self.recovery)
        extra = {
            "spark.executor.cores": "2",                 # one executor fills a 2-core worker
            "spark.dynamicAllocation.maxExecutors": "2",  # 2 busy workers, the third idle
            "spark.deploy.spreadOut": "false",
            "spark.worker.timeout": str(WORKER_TIMEOUT_S),
            "spark.deploy.recoveryMode": "FILESYSTEM",   # a restarted master shows RECOVERING
            "spark.deploy.recoveryDirectory": self.recovery,
            "spark.decommission.enabled": "true",
            "spark.master.ui.decommission.allow.mode": "ALLOW",
            "spark.driver.extraJavaOptions": "-javaagent:%s=port=%d,host=127.0.0.1" % (
                jolokia_jar, jolokia_port),
        }
        with open(self.defaults, "a") as f:
            for k, v in extra.items():
                f.write("%s %s\n" % (k, v))
        (self.master_port, self.master_ui, self.driver_port, self.bm_port) = sparklib.free_ports(4)
        self.worker_ports = {h: sparklib.free_ports(2, h) for h in WORKER_HOSTS}
        self.master_url = "spark://127.0.0.1:%d" % self.master_port
        self.cls = os.path.join(self.home, "bin", "spark-class")

    def env(self, local_ip):
        e = dict(os.environ)
        e.update({
            "SPARK_HOME": self.home, "SPARK_CONF_DIR": self.conf_dir,
            "SPARK_LOCAL_IP": local_ip, "SPARK_LOCAL_HOSTNAME": local_ip,
            "SPARK_DAEMON_MEMORY": "384m", "SPARK_LOG_DIR": os.path.join(self.work, "logs"),
            "PYSPARK_PYTHON": sparklib.VENV_PY, "PYSPARK_DRIVER_PYTHON": sparklib.VENV_PY,
            "SPARK_MASTER_OPTS": "-Dspark.metrics.conf=%s" % self.metrics,
            "SPARK_WORKER_OPTS": "-Dspark.metrics.conf=%s" % self.metrics,
        })
        for k in ("PYSPARK_SUBMIT_ARGS", "SPARK_ENV_LOADED", "SPARK_SCALA_VERSION"):
            e.pop(k, None)
        return e

    def spawn(self, name, argv, env, prefix=()):
        logf = open(os.path.join(self.work, name + ".log"), "ab")
        p = subprocess.Popen(list(prefix) + argv, env=env, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.work)
        self.procs[name] = p
        log("started %s (pid %d)" % (name, p.pid))
        return p

    def start_master(self, name="master", props=None):
        return self.spawn(name, [self.cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                 "--port", str(self.master_port), "--webui-port", str(self.master_ui),
                                 "--properties-file", props or self.defaults], self.env("127.0.0.1"))

    def start_worker(self, host):
        port, ui = self.worker_ports[host]
        wdir = os.path.join(self.work, "worker-" + host)
        return self.spawn("worker-" + host, [
            self.cls, "org.apache.spark.deploy.worker.Worker", "--host", host, "--port", str(port),
            "--webui-port", str(ui), "--cores", "2", "--memory", "1g", "--work-dir", wdir,
            "--properties-file", self.defaults, self.master_url], self.env(host))

    def submit(self, tasks, task_s, linger_s):
        return self.spawn("job", [os.path.join(self.home, "bin", "spark-submit"),
                                  "--master", self.master_url, "--properties-file", self.defaults,
                                  "--driver-memory", "512m",
                                  "--conf", "spark.driver.port=%d" % self.driver_port,
                                  "--conf", "spark.blockManager.port=%d" % self.bm_port,
                                  os.path.join(sparklib.HERE, "job.py"),
                                  str(tasks), str(task_s), str(linger_s)], self.env("127.0.0.1"))

    def get_json(self):
        return http_raw("127.0.0.1", self.master_ui, "GET", "/json/", timeout=3)

    def state(self):
        return json.loads(split_http(self.get_json())[2])

    def wait(self, what, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                raw = self.get_json()
                st = json.loads(split_http(raw)[2])
                if pred(st):
                    return raw, st
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("timed out waiting for %s (logs in %s)" % (what, self.work))

    def stop(self):
        for sig in (signal.SIGCONT, signal.SIGTERM):
            for p in self.procs.values():
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, sig)
                    except ProcessLookupError:
                        pass
        deadline = time.monotonic() + 10
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def workers_by(st, pred):
    return [w for w in st.get("workers", []) if pred(w)]


# ---------------------------------------------------------------- Jolokia

def jolokia(port, body, ctype="application/json"):
    if not isinstance(body, bytes):
        body = json.dumps(body, separators=(",", ":")).encode()
    return http_raw("127.0.0.1", port, "POST", "/jolokia/", body, ctype)


def eam_values(body):
    """{short gauge name: value} of a bulk EAM answer, for choosing which answers to keep."""
    out = {}
    for item in json.loads(body):
        if item.get("status") == 200 and isinstance(item.get("value"), dict):
            for name, attrs in item["value"].items():
                out[name.split(".executors.")[-1].split(",")[0]] = list(attrs.values())[0]
    return out


def capture_jolokia(rec, port, app_id, job, raw_dir, extras_after_s=None):
    """Polls the bulk EAM read until the job exits; keeps answers whose values changed. The other
    requests go once, when 2 executors run (or extras_after_s after the start)."""
    seen, kept, extras_done = None, [], False
    t0 = time.monotonic()
    n = 0
    while job.poll() is None:
        try:
            raw = jolokia(port, BULK_EAM)
        except OSError:
            time.sleep(0.3)
            continue
        status, _, body = split_http(raw)
        n += 1
        try:
            vals = eam_values(body)
        except ValueError:
            vals = None
        key = {k: v for k, v in (vals or {}).items() if k != "numberMaxNeededExecutors"}
        if vals is not None and key != seen:
            seen = key
            kept.append(raw)
            with open(os.path.join(raw_dir, "bulk-%03d.http" % len(kept)), "wb") as f:
                f.write(raw)
            log("jolokia bulk #%d: %s" % (n, json.dumps(vals, sort_keys=True)))
        if not extras_done and ((vals and vals.get("numberAllExecutors") == 2) or (
                extras_after_s is not None and time.monotonic() - t0 > extras_after_s)):
            extras_done = True
            capture_jolokia_extras(rec, port, app_id)
        time.sleep(0.3)
    return kept


def capture_jolokia_extras(rec, port, app_id):
    name = "%s.driver.ExecutorAllocationManager.executors.numberTargetExecutors" % app_id
    one = lambda mbean, attr="Value", **kw: dict({"type": "read", "mbean": mbean, "attribute": attr}, **kw)
    rec.save("single_match_pattern.json", "POST /jolokia/ " + json.dumps([one(
        "metrics:name=*.driver.ExecutorAllocationManager.executors.numberTargetExecutors,type=gauges")]),
        jolokia(port, [one("metrics:name=*.driver.ExecutorAllocationManager.executors.numberTargetExecutors,type=gauges")]))
    req = [one("metrics:name=%s,type=gauges" % name)]
    rec.save("exact_name.json", "POST /jolokia/ " + json.dumps(req), jolokia(port, req))
    req = [{"type": "read", "mbean": EAM, "attribute": "Value"},
           {"type": "read", "mbean": EAM, "attribute": "Count"}]
    rec.save("spark2_pattern_on_spark3.json", "POST /jolokia/ " + json.dumps(req), jolokia(port, req))
    req = [one("metrics:name=app-nope.driver.ExecutorAllocationManager.executors.numberTargetExecutors,type=gauges"),
           BULK_EAM[0]]
    rec.save("unknown_mbean.json", "POST /jolokia/ " + json.dumps(req), jolokia(port, req))
    req = [one("metrics:name=%s,type=gauges" % name, "Count")]
    rec.save("unknown_attribute.json", "POST /jolokia/ " + json.dumps(req), jolokia(port, req))
    # Every MBean of the source (gauges and counters) asking for Value: the pattern read skips
    # MBeans that lack the attribute; with ignoreErrors errors would become values.
    req = [one(EAM + ",*", "Value", config={"ignoreErrors": True})]
    rec.save("any_type_ignore_errors.json", "POST /jolokia/ " + json.dumps(req), jolokia(port, req))
    rec.save("bad_json.json", "POST /jolokia/ body: [{\"type\":\"read\",", jolokia(port, b'[{"type":"read",'))
    req = [{"type": "nonsense"}, {"type": "read"}]
    rec.save("bad_request.json", "POST /jolokia/ " + json.dumps(req), jolokia(port, req))
    rec.save("version.json", "GET /jolokia/version",
             http_raw("127.0.0.1", port, "GET", "/jolokia/version"))


def save_bulk(rec, kept, cap=8):
    """The first and last answers and those where the target, the executor count or the
    decommissioning gauge moved (at most cap). Returns their Jolokia timestamps (s)."""
    keys = ("numberTargetExecutors", "numberAllExecutors", "numberDecommissioningExecutors")
    pick, prev = [], None
    for i, raw in enumerate(kept):
        vals = eam_values(split_http(raw)[2])
        k = [vals.get(n) for n in keys]
        if i in (0, len(kept) - 1) or k != prev:
            pick.append(i)
        prev = k
    while len(pick) > cap:
        del pick[len(pick) // 2]
    stamps = []
    for n, i in enumerate(pick):
        body = split_http(kept[i])[2]
        vals = eam_values(body)
        stamps.append(json.loads(body)[0].get("timestamp"))
        rec.save("eam_bulk_%d.json" % (n + 1), "POST /jolokia/ %s (target %s, all %s, decommissioning %s)" % (
            json.dumps(BULK_EAM), *[vals.get(k) for k in keys]), kept[i])
    return stamps


def save_carbon(raw_path, stamps, out):
    """The driver's ExecutorAllocationManager lines whose timestamp is one of stamps, verbatim."""
    want = set(str(s).encode() for s in stamps)
    with open(raw_path, "rb") as f, open(out, "wb") as o:
        for line in f:
            parts = line.rstrip(b"\n").split(b" ")
            if len(parts) == 3 and b".driver.ExecutorAllocationManager." in parts[0] and parts[2] in want:
                o.write(line)
    log("saved %s" % out)


def capture_ignore_errors(jar, rec):
    """What ignoreErrors does to a pattern read whose attribute fails on some MBeans. No Spark
    gauge fails to read, so this uses a plain JVM with the agent: CollectionUsageThreshold
    throws UnsupportedOperationException on memory pools without collection usage."""
    work = os.path.join(sparklib.HERE, "work", "capture_ignore_errors")
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    src = os.path.join(work, "Idle.java")
    with open(src, "w") as f:
        f.write("public class Idle { public static void main(String[] a) throws Exception "
                "{ Thread.sleep(120000); } }\n")
    (port,) = sparklib.free_ports(1)
    p = subprocess.Popen(["java", "-javaagent:%s=port=%d,host=127.0.0.1" % (jar, port), src],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                http_raw("127.0.0.1", port, "GET", "/jolokia/version", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        one = {"type": "read", "mbean": "java.lang:type=MemoryPool,name=*",
               "attribute": "CollectionUsageThreshold"}
        rec.save("pattern_attribute_fails.json", "POST /jolokia/ " + json.dumps([one]) + " (plain JVM)",
                 jolokia(port, [one]))
        req = [dict(one, config={"ignoreErrors": True})]
        rec.save("pattern_attribute_fails_ignore_errors.json", "POST /jolokia/ " + json.dumps(req) +
                 " (plain JVM)", jolokia(port, req))
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    return 0


# ---------------------------------------------------------------- LOCAL mode from a remote address

def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True)


def capture_local_mode(cl, rec):
    """A master in its own network namespace with the default allow mode (LOCAL): a caller from
    outside the namespace is remote to it. Returns a note for the README."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return "skipped: needs root and ip(8)"
    sh("ip", "netns", "del", NETNS)
    steps = [("ip", "netns", "add", NETNS),
             ("ip", "link", "add", "ssc0", "type", "veth", "peer", "name", "ssc1", "netns", NETNS),
             ("ip", "addr", "add", HOST_ADDR + "/30", "dev", "ssc0"),
             ("ip", "link", "set", "ssc0", "up"),
             ("ip", "netns", "exec", NETNS, "ip", "addr", "add", NETNS_ADDR + "/30", "dev", "ssc1"),
             ("ip", "netns", "exec", NETNS, "ip", "link", "set", "ssc1", "up"),
             ("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")]
    try:
        for st in steps:
            r = sh(*st)
            if r.returncode != 0:
                return "skipped: %s: %s" % (" ".join(st), r.stderr.strip())
        props = os.path.join(cl.conf_dir, "local-mode.conf")
        with open(props, "w") as f:
            f.write("spark.decommission.enabled true\nspark.master.ui.decommission.allow.mode LOCAL\n")
        env = cl.env(NETNS_ADDR)
        port, ui = 7077, 8080   # a namespace of its own: the usual ports are free there
        p = cl.spawn("master-netns", [cl.cls, "org.apache.spark.deploy.master.Master", "--host", NETNS_ADDR,
                                      "--port", str(port), "--webui-port", str(ui), "--properties-file", props],
                     env, prefix=("ip", "netns", "exec", NETNS))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http_raw(NETNS_ADDR, ui, "GET", "/json/", timeout=2, src=HOST_ADDR)
                break
            except OSError:
                time.sleep(0.5)
        body = b"host=127.0.0.2"
        rec.save("kill_local_mode_remote_caller.http",
                 "POST /workers/kill/ host=127.0.0.2 from %s to a LOCAL-mode master at %s" % (HOST_ADDR, NETNS_ADDR),
                 http_raw(NETNS_ADDR, ui, "POST", "/workers/kill/", body,
                          "application/x-www-form-urlencoded", src=HOST_ADDR), whole=True)
        # From inside the namespace the caller's address is the master's own interface address.
        r = subprocess.run(["ip", "netns", "exec", NETNS, sparklib.VENV_PY, "-c",
                            "import sys; sys.path.insert(0, %r); import capture_http as c; "
                            "sys.stdout.buffer.write(c.http_raw(%r, %d, 'POST', '/workers/kill/', "
                            "b'host=127.0.0.2', 'application/x-www-form-urlencoded'))" % (sparklib.HERE, NETNS_ADDR, ui)],
                           capture_output=True, timeout=30)
        if r.returncode != 0 or not r.stdout:
            return "remote caller recorded; local caller failed: %s" % r.stderr.decode(errors="replace")[-300:]
        rec.save("kill_local_mode_local_caller.http",
                 "POST /workers/kill/ host=127.0.0.2 from %s (inside the namespace: the master's own address) "
                 "to the same LOCAL-mode master (it has no workers)" % NETNS_ADDR, r.stdout, whole=True)
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(15)
        return "done"
    finally:
        sh("ip", "netns", "del", NETNS)   # removes the veth pair too


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jar")
    ap.add_argument("--out", default=os.path.join(sparklib.REPO, "tests", "fixtures"))
    ap.add_argument("--tasks", type=int, default=48)
    ap.add_argument("--task-s", type=float, default=1.0)
    ap.add_argument("--linger-s", type=float, default=14.0)
    ap.add_argument("--namespace", help="spark.metrics.namespace for the driver (default: unset, the app id)")
    ap.add_argument("--ignore-errors-only", action="store_true",
                    help="only record ignoreErrors on a plain JVM (no Spark): see capture_ignore_errors")
    a = ap.parse_args()
    if a.ignore_errors_only:
        return capture_ignore_errors(a.jar, Recorder(os.path.join(a.out, "jolokia"), "ignore_errors.txt"))
    work = os.path.join(sparklib.HERE, "work", "capture_http")
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(os.path.join(work, "jolokia-raw"))
    master_rec = Recorder(os.path.join(a.out, "spark_master"))
    jol_rec = Recorder(os.path.join(a.out, "jolokia"))
    carbon = CarbonRecorder(os.path.join(work, "carbon.raw"))
    (jport,) = sparklib.free_ports(1)
    cl = Cluster(work, carbon.port, a.jar, jport)
    if a.namespace:
        with open(cl.defaults, "a") as f:
            f.write("spark.metrics.namespace %s\n" % a.namespace)
    notes, stamps = {}, []
    try:
        cl.start_master()
        cl.wait("the master", lambda st: st.get("status") == "ALIVE", 60)
        for h in WORKER_HOSTS:
            cl.start_worker(h)
        raw, _ = cl.wait("3 alive workers", lambda st: st.get("aliveworkers") == 3, 90)
        time.sleep(1)
        master_rec.save("no_app.json", "GET /json/ (3 idle workers, no app)", cl.get_json())

        job = cl.submit(a.tasks, a.task_s, a.linger_s)
        _, st = cl.wait("the app", lambda st: st.get("activeapps"), 90)
        app_id = st["activeapps"][0]["id"]
        log("app %s" % app_id)
        holder = {}
        t = threading.Thread(target=lambda: holder.update(
            kept=capture_jolokia(jol_rec, jport, app_id, job, os.path.join(work, "jolokia-raw"),
                                 8.0 if a.namespace else None)))
        t.start()

        raw, st = cl.wait("2 busy workers", lambda st: len(workers_by(
            st, lambda w: w["coresused"] > 0)) == 2, 90)
        master_rec.save("app_running.json", "GET /json/ (app running: 2 workers busy, 1 idle)", raw)
        idle = workers_by(st, lambda w: w["coresused"] == 0)[0]["host"]
        body = ("host=%s" % idle).encode()
        master_rec.save("kill_200.http", "POST /workers/kill/ host=%s (the idle ALIVE worker, mode ALLOW)" % idle,
                        http_raw("127.0.0.1", cl.master_ui, "POST", "/workers/kill/", body,
                                 "application/x-www-form-urlencoded"), whole=True)
        raw, st = cl.wait("a DECOMMISSIONED worker", lambda st: workers_by(
            st, lambda w: w["state"] == "DECOMMISSIONED"), 30)
        master_rec.save("app_running_decommissioned.json",
                        "GET /json/ (app running, worker %s DECOMMISSIONED)" % idle, raw)
        master_rec.save("kill_404.http", "POST /workers/kill/ host=127.0.0.99 (no worker there)",
                        http_raw("127.0.0.1", cl.master_ui, "POST", "/workers/kill/", b"host=127.0.0.99",
                                 "application/x-www-form-urlencoded"), whole=True)
        master_rec.save("kill_200_again.http", "POST /workers/kill/ host=%s (already DECOMMISSIONED)" % idle,
                        http_raw("127.0.0.1", cl.master_ui, "POST", "/workers/kill/", body,
                                 "application/x-www-form-urlencoded"), whole=True)

        rc = job.wait(240)
        t.join()
        kept = holder.get("kept", [])
        log("job exited %d; %d distinct Jolokia answers" % (rc, len(kept)))
        stamps = save_bulk(jol_rec, kept)
        raw, st = cl.wait("the app to complete", lambda st: not st.get("activeapps") and st.get("completedapps"), 60)
        time.sleep(1)
        master_rec.save("app_completed.json", "GET /json/ (app completed)", cl.get_json())

        # kill -9 an ALIVE worker: the master sees the RPC connection drop.
        victim = workers_by(st, lambda w: w["state"] == "ALIVE")[0]["host"]
        t0 = time.monotonic()
        cl.procs["worker-" + victim].send_signal(signal.SIGKILL)
        raw, st = cl.wait("a DEAD worker", lambda st: workers_by(st, lambda w: w["state"] == "DEAD"), 60)
        notes["dead_after_s"] = round(time.monotonic() - t0, 1)
        master_rec.save("worker_dead.json", "GET /json/ (worker %s killed with SIGKILL, %.1f s later)"
                        % (victim, notes["dead_after_s"]), raw)

        # RECOVERING: stop the last ALIVE worker (SIGSTOP: it cannot answer), kill -9 the master and
        # restart it on the same recovery directory.
        last = workers_by(st, lambda w: w["state"] == "ALIVE")[0]["host"]
        cl.procs["worker-" + last].send_signal(signal.SIGSTOP)
        cl.procs["master"].send_signal(signal.SIGKILL)
        cl.procs["master"].wait(10)
        cl.start_master("master-restarted")
        raw, st = cl.wait("a RECOVERING master", lambda st: st.get("status") == "RECOVERING", 60)
        master_rec.save("master_recovering.json",
                        "GET /json/ (restarted master recovering; worker %s stopped with SIGSTOP)" % last, raw)
        # The stopped worker never answers: after spark.worker.timeout the master completes the
        # recovery without it (the timeout path to DEAD, where SIGKILL above was the disconnect path).
        t0 = time.monotonic()
        raw, st = cl.wait("ALIVE after recovery", lambda st: st.get("status") == "ALIVE", 60)
        notes["recovery_s"] = round(time.monotonic() - t0, 1)
        master_rec.save("master_recovered.json", "GET /json/ (recovery completed %.1f s later, worker %s still "
                        "stopped; spark.worker.timeout=%d)" % (notes["recovery_s"], last, WORKER_TIMEOUT_S), raw)
        cl.procs["worker-" + last].send_signal(signal.SIGCONT)
        notes["local_mode"] = capture_local_mode(cl, master_rec)
    finally:
        cl.stop()
        time.sleep(1)
    notes["carbon_lines"] = carbon.n_lines
    if stamps:
        save_carbon(os.path.join(work, "carbon.raw"), stamps,
                    os.path.join(a.out, "jolokia", "graphite_same_driver.txt"))
    with open(os.path.join(work, "notes.json"), "w") as f:
        json.dump(notes, f)
    log("notes: %s" % notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
