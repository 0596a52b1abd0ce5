#!/usr/bin/env python3
"""check_spark_conf.py: deploy/spark/ is the one place of the Spark settings.

The Kubernetes example's ConfigMap (deploy/kubernetes/spark-example.yaml) carries
metrics.properties and spark-defaults.conf without comments: every setting in force
in deploy/spark/ must be there with the same value, and nothing else. The settings
sparkscale depends on must be in force in deploy/spark/ (spreadOut off, decommission
on and remotely allowed, dynamic allocation with shuffle tracking, the GraphiteSink on
driver, master and worker), and the README there must name each of them.
Usage: check_spark_conf.py
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REQUIRED = {
    "spark-defaults.conf": {"spark.deploy.spreadOut": "false", "spark.decommission.enabled": "true",
                            "spark.master.ui.decommission.allow.mode": "ALLOW",
                            "spark.dynamicAllocation.enabled": "true",
                            "spark.dynamicAllocation.shuffleTracking.enabled": "true",
                            "spark.storage.decommission.enabled": "true"},
    "metrics.properties": {"driver.sink.graphite.class": "org.apache.spark.metrics.sink.GraphiteSink",
                           "master.sink.graphite.class": "org.apache.spark.metrics.sink.GraphiteSink",
                           "worker.sink.graphite.class": "org.apache.spark.metrics.sink.GraphiteSink",
                           "*.sink.graphite.protocol": "tcp"},
}
problems = []


def settings(text, kind):
    """{key: value} in force: comments dropped; spark-defaults splits on whitespace,
    metrics.properties on the first '='."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if kind == "metrics.properties":
            k, _, v = line.partition("=")
        else:
            k, _, v = line.partition(" ")
        out[k.strip()] = v.strip()
    return out


def configmap_block(text, key):
    """The literal block `key: |` of the ConfigMap, dedented."""
    m = re.search(r"^(\s*)%s: \|\n((?:\1\s+.*\n)+)" % re.escape(key), text, re.M)
    if not m:
        return None
    lines = m.group(2).splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(l[indent:] for l in lines)


def main():
    example = open(os.path.join(ROOT, "deploy/kubernetes/spark-example.yaml")).read()
    readme = open(os.path.join(ROOT, "deploy/spark/README.md")).read()
    n = 0
    for f in ("metrics.properties", "spark-defaults.conf"):
        ours = settings(open(os.path.join(ROOT, "deploy/spark", f)).read(), f)
        block = configmap_block(example, f)
        if block is None:
            problems.append("spark-example.yaml has no %s block" % f)
            continue
        theirs = settings(block, f)
        for k in sorted(set(ours) | set(theirs)):
            n += 1
            if ours.get(k) != theirs.get(k):
                problems.append("%s %s: deploy/spark says %r, the ConfigMap of spark-example.yaml %r"
                                % (f, k, ours.get(k), theirs.get(k)))
        for k, v in REQUIRED[f].items():
            n += 1
            if ours.get(k) != v:
                problems.append("deploy/spark/%s: %s is %r, sparkscale needs %r" % (f, k, ours.get(k), v))
            n += 1
            if k not in readme:
                problems.append("deploy/spark/README.md does not name %s" % k)
    for p in problems:
        print("spark settings: FAIL: " + p)
    print("spark settings: %d passed, %d failed" % (n - len(problems), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
