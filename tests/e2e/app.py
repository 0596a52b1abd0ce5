"""app.py: one PySpark app of the elasticity end-to-end workload. Map tasks sleep (demand that
lasts without needing the 2 cores), then write shuffle data; reduceByKey reads it back; the
result is checked against the same sums computed here. Before stopping, the app reads its own
driver's REST API (/api/v1/applications/{id}/jobs, /stages, /allexecutors): every job, stage
attempt and failed task, written with the result to --out as JSON.
Usage: spark-submit app.py --name NAME --out FILE [--maps 24] [--map-s 2] [--rows 4000]
                           [--reduces 4] [--reduce-s 1]"""

import argparse
import json
import os
import sys
import time
import urllib.request
from operator import add

from pyspark.sql import SparkSession

KEYS = 97


def rest(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--maps", type=int, default=24)
    ap.add_argument("--map-s", type=float, default=2.0)
    ap.add_argument("--rows", type=int, default=4000, help="records each map task shuffles")
    ap.add_argument("--reduces", type=int, default=4)
    ap.add_argument("--reduce-s", type=float, default=1.0)
    a = ap.parse_args()
    t0 = time.time()
    spark = SparkSession.builder.appName(a.name).getOrCreate()
    sc = spark.sparkContext
    app_id = sc.applicationId
    print("APP %s id %s" % (a.name, app_id), flush=True)
    maps, map_s, rows, reduce_s = a.maps, a.map_s, a.rows, a.reduce_s

    def mapper(i):
        time.sleep(map_s)
        return [(j % KEYS, i * rows + j) for j in range(rows)]

    def slow_reduce(it):
        out = list(it)
        time.sleep(reduce_s)
        return out

    t_job = time.time()
    got = dict(sc.parallelize(range(maps), maps).flatMap(mapper)
               .reduceByKey(add, a.reduces).mapPartitions(slow_reduce).collect())
    t_done = time.time()
    want = {}
    for v in range(maps * rows):
        k = (v % rows) % KEYS
        want[k] = want.get(k, 0) + v
    correct = got == want

    # The status store is fed by the listener bus, asynchronously: wait until it has seen the
    # job end (or give up after 10 s and report what it has).
    base = "%s/api/v1/applications/%s" % (sc.uiWebUrl.rstrip("/"), app_id)
    jobs = stages = execs = []
    rest_error = None
    deadline = time.time() + 10
    while True:
        try:
            jobs = rest(base, "/jobs")
            stages = rest(base, "/stages")
            execs = rest(base, "/allexecutors")
            rest_error = None
        except (OSError, ValueError) as e:
            rest_error = str(e)
        settled = (jobs and all(j.get("status") != "RUNNING" for j in jobs)
                   and stages and all(s.get("status") not in ("ACTIVE", "PENDING") for s in stages))
        if settled or time.time() > deadline:
            break
        time.sleep(0.2)
    doc = {
        "name": a.name, "app_id": app_id, "correct": correct, "keys": len(got),
        "records": maps * rows, "started": t0, "job_started": t_job, "job_done": t_done,
        "rest_error": rest_error,
        "jobs": [{k: j.get(k) for k in ("jobId", "status", "numTasks", "numFailedTasks",
                                        "numKilledTasks", "numCompletedStages", "numFailedStages",
                                        "numSkippedStages")} for j in jobs],
        "stages": [{k: s.get(k) for k in ("stageId", "attemptId", "status", "numTasks",
                                          "numCompleteTasks", "numFailedTasks", "numKilledTasks",
                                          "shuffleWriteBytes", "shuffleReadBytes", "failureReason")}
                   for s in stages],
        "executors": [{k: e.get(k) for k in ("id", "hostPort", "isActive", "totalTasks",
                                             "failedTasks", "addTime", "removeTime", "removeReason")}
                      for e in execs],
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, a.out)
    print("APP %s %s in %.1f s (job %.1f s)" % (a.name, "correct" if correct else "WRONG",
                                                time.time() - t0, t_done - t_job), flush=True)
    spark.stop()
    sys.exit(0 if correct else 1)


if __name__ == "__main__":
    main()
