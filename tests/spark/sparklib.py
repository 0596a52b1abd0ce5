"""sparklib.py: starts a throw-away Spark standalone cluster (Master, Worker, one job) on loopback.
Shared by capture.py (records what GraphiteSink sends) and check.py (feeds sparkscaled)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(REPO, "deploy", "spark")
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")


def log(msg):
    print("[spark %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def free_ports(n, host="127.0.0.1"):
    """n distinct free TCP ports: all sockets are held open until every port is picked."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def spark_home():
    out = subprocess.run([VENV_PY, "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out


def spark_version():
    return subprocess.run([VENV_PY, "-c", "import pyspark; print(pyspark.__version__)"],
                          check=True, capture_output=True, text=True).stdout.strip()


def write_conf(conf_dir, sink_port, prefix, sink_all=False, protocol="tcp"):
    """Writes metrics.properties and spark-defaults.conf into conf_dir: the documented files from
    deploy/spark, with the test's overrides appended (later keys win in Java Properties).
    sink_all enables the sink on every instance (executors, applications) and drops the
    regex filters: everything Spark can send."""
    os.makedirs(conf_dir, exist_ok=True)
    metrics = os.path.join(conf_dir, "metrics.properties")
    with open(os.path.join(DEPLOY, "metrics.properties")) as f:
        text = f.read()
    text += "\n# ---- overrides for the test run ----\n"
    if sink_all:
        text += "*.sink.graphite.class=org.apache.spark.metrics.sink.GraphiteSink\n"
        for inst in ("driver", "master", "worker"):  # an empty regex matches every name
            text += "%s.sink.graphite.regex=\n" % inst
    text += "*.sink.graphite.host=127.0.0.1\n*.sink.graphite.port=%d\n" % sink_port
    text += "*.sink.graphite.prefix=%s\n*.sink.graphite.period=1\n" % prefix
    text += "*.sink.graphite.unit=seconds\n*.sink.graphite.protocol=%s\n" % protocol
    with open(metrics, "w") as f:
        f.write(text)
    with open(os.path.join(DEPLOY, "spark-defaults.conf")) as f:
        text = f.read()
    text += "\n# ---- overrides for the test run ----\n"
    overrides = {
        "spark.metrics.conf": metrics,
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.dynamicAllocation.minExecutors": "0",
        "spark.dynamicAllocation.maxExecutors": "2",
        "spark.dynamicAllocation.executorIdleTimeout": "4s",
        "spark.dynamicAllocation.shuffleTracking.timeout": "10s",
        "spark.ui.enabled": "false",
        "spark.pyspark.python": VENV_PY,
        "spark.pyspark.driver.python": VENV_PY,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.master.rest.enabled": "false",
    }
    for k, v in overrides.items():
        text += "%s %s\n" % (k, v)
    defaults = os.path.join(conf_dir, "spark-defaults.conf")
    with open(defaults, "w") as f:
        f.write(text)
    return metrics, defaults


class SparkCluster:
    """One Master and one Worker (2 cores, 2g) bound to 127.0.0.1, in their own process groups.
    master_ui: the master web UI's port (None: a free one). jolokia: (agent jar, port): the driver
    runs the Jolokia JVM agent on 127.0.0.1:port, with the JMX sink that registers its MBeans."""

    def __init__(self, work, sink_port, prefix, sink_all=False, worker_cores=2, worker_mem="2g",
                 master_ui=None, jolokia=None):
        self.work = work
        self.home = spark_home()
        self.procs = []
        if os.path.isdir(work):
            shutil.rmtree(work)
        os.makedirs(work)
        self.conf_dir = os.path.join(work, "conf")
        self.metrics, self.defaults = write_conf(self.conf_dir, sink_port, prefix, sink_all)
        if jolokia:
            jar, jport = jolokia
            with open(self.metrics, "a") as f:
                # The driver's MBeans exist only with the JMX sink.
                f.write("driver.sink.jmx.class=org.apache.spark.metrics.sink.JmxSink\n")
            with open(self.defaults, "a") as f:
                f.write("spark.driver.extraJavaOptions -javaagent:%s=port=%d,host=127.0.0.1\n"
                        % (jar, jport))
        taken = {master_ui} | ({jolokia[1]} if jolokia else set())
        ports = free_ports(6)
        while taken & set(ports):   # the caller's ports were free when it picked them
            ports = free_ports(6)
        (self.master_port, self.master_ui, self.worker_port, self.worker_ui,
         self.driver_port, self.bm_port) = ports
        if master_ui:
            self.master_ui = master_ui
        self.master_url = "spark://127.0.0.1:%d" % self.master_port
        self.worker_cores, self.worker_mem = worker_cores, worker_mem
        self.env = dict(os.environ)
        self.env.update({
            "SPARK_HOME": self.home,
            "SPARK_CONF_DIR": self.conf_dir,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": "384m",
            "SPARK_LOG_DIR": os.path.join(work, "logs"),
            "SPARK_WORKER_DIR": os.path.join(work, "worker"),
            "PYSPARK_PYTHON": VENV_PY,
            "PYSPARK_DRIVER_PYTHON": VENV_PY,
            "SPARK_MASTER_OPTS": "-Dspark.metrics.conf=%s" % self.metrics,
            "SPARK_WORKER_OPTS": "-Dspark.metrics.conf=%s" % self.metrics,
        })
        for k in ("PYSPARK_SUBMIT_ARGS", "SPARK_ENV_LOADED", "SPARK_SCALA_VERSION"):
            self.env.pop(k, None)

    def _spawn(self, name, argv):
        logf = open(os.path.join(self.work, name + ".log"), "wb")
        p = subprocess.Popen(argv, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.work)
        p.name = name
        self.procs.append(p)
        log("started %s (pid %d): log %s" % (name, p.pid, logf.name))
        return p

    def master_json(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/" % self.master_ui, timeout=2) as r:
            return json.load(r)

    def start(self, timeout=90):
        cls = os.path.join(self.home, "bin", "spark-class")
        self._spawn("master", [cls, "org.apache.spark.deploy.master.Master",
                               "--host", "127.0.0.1", "--port", str(self.master_port),
                               "--webui-port", str(self.master_ui),
                               "--properties-file", self.defaults])
        self._spawn("worker", [cls, "org.apache.spark.deploy.worker.Worker",
                               "--host", "127.0.0.1", "--port", str(self.worker_port),
                               "--webui-port", str(self.worker_ui),
                               "--cores", str(self.worker_cores), "--memory", self.worker_mem,
                               "--work-dir", os.path.join(self.work, "worker"),
                               "--properties-file", self.defaults, self.master_url])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.master_json().get("aliveworkers", 0) >= 1:
                    log("master %s has 1 alive worker" % self.master_url)
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("worker did not register with the master within %ds (see %s/*.log)"
                           % (timeout, self.work))

    def submit(self, tasks=40, task_s=1.0, linger_s=12):
        """Runs job.py: tasks x task_s seconds of sleeping tasks, then linger_s idle seconds so
        dynamic allocation releases the executors while the driver still reports."""
        submit = os.path.join(self.home, "bin", "spark-submit")
        return self._spawn("job", [submit, "--master", self.master_url,
                                   "--properties-file", self.defaults,
                                   "--driver-memory", "512m",
                                   "--conf", "spark.driver.port=%d" % self.driver_port,
                                   "--conf", "spark.blockManager.port=%d" % self.bm_port,
                                   os.path.join(HERE, "job.py"),
                                   str(tasks), str(task_s), str(linger_s)])

    def check_alive(self):
        for p in self.procs:
            if p.name in ("master", "worker") and p.poll() is not None:
                raise RuntimeError("%s exited with %s (see %s/%s.log)"
                                   % (p.name, p.returncode, self.work, p.name))

    def stop(self):
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            live = [p for p in self.procs if p.poll() is None]
            for p in live:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            for p in live:
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        # Executors and Python workers share their worker's process group; a SIGKILLed
        # worker can leave them behind, so sweep the groups once more.
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
