"""job.py: a small PySpark job that makes dynamic allocation ask for executors.
Usage: spark-submit job.py [TASKS] [TASK_SECONDS] [LINGER_SECONDS]"""

import sys
import time

from pyspark.sql import SparkSession


def slow(x, seconds):
    time.sleep(seconds)
    return x


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    task_s = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    linger_s = float(sys.argv[3]) if len(sys.argv) > 3 else 12.0
    spark = SparkSession.builder.appName("sparkscale-check").getOrCreate()
    sc = spark.sparkContext
    print("JOB app id %s" % sc.applicationId, flush=True)
    t0 = time.monotonic()
    # One task a partition; every task sleeps, so the backlog lasts long enough
    # for the ExecutorAllocationManager to request executors (up to maxExecutors).
    n = sc.parallelize(range(tasks), tasks).map(lambda x: slow(x, task_s)).count()
    if n != tasks:
        raise SystemExit("JOB wrong count %d != %d" % (n, tasks))
    print("JOB counted %d in %.1f s" % (n, time.monotonic() - t0), flush=True)
    # Stay up idle: executors pass executorIdleTimeout and are released while the
    # driver still reports (numberTargetExecutors falls back to 0).
    time.sleep(linger_s)
    print("JOB done", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
