/* bench_carbon.c: lines/s of the ingest hot path over Spark-shaped carbon
 * traffic held in memory: split in 64 KiB chunks, decode paths, parse relevant lines.
 * Usage: bench_carbon [lines]   (default 2,000,000; prints the median of 5 runs) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carbon/carbon.h"
#include "carbon/spark_path.h"

#define CHUNK     (64 * 1024)
#define RUNS      5
#define CLUSTERS  10       /* with traffic; the table holds 10,000 prefixes */
#define APPS      50       /* 5 per cluster */
#define TABLE     10000

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static const char *const eam_gauges[] = {
    "numberExecutorsToAdd", "numberExecutorsPendingToRemove", "numberAllExecutors",
    "numberTargetExecutors", "numberMaxNeededExecutors", "numberDecommissioningExecutors",
    "numberExecutorsGracefullyDecommissioned.count", "numberExecutorsKilledByDriver.count",
};

/* What the other 3/4 look like (Spark 3.5 driver, executor and JVM sources). */
static const char *const other_metrics[] = {
    "driver.BlockManager.memory.memUsed_MB",
    "driver.BlockManager.memory.maxMem_MB",
    "driver.BlockManager.disk.diskSpaceUsed_MB",
    "driver.DAGScheduler.messageProcessingTime.p99",
    "driver.DAGScheduler.messageProcessingTime.count",
    "driver.DAGScheduler.stage.runningStages",
    "driver.LiveListenerBus.queue.appStatus.size",
    "driver.JVMCPU.jvmCpuTime",
    "driver.ExecutorMetrics.JVMHeapMemory",
    "driver.LiveListenerBus.listenerProcessingTime.org.apache.spark.ExecutorAllocationManager$ExecutorAllocationListener.p99",
    "1.executor.bytesRead.count",
    "1.executor.runTime.count",
    "2.executor.shuffleRecordsRead.count",
    "2.executor.filesystem.file.read_bytes",
    "3.JVMCPU.jvmCpuTime",
    "3.ExecutorMetrics.OnHeapExecutionMemory",
};

typedef struct sink {
    const spark_prefixes *p;
    size_t lines, relevant, rejected;
    double sum;
} sink;

/* Exactly what the daemon's ingest does per line. */
static void on_line(void *ctx, const char *line, size_t len, int err)
{
    sink *k = ctx;
    const char *path;
    size_t path_len;
    spark_metric m;
    carbon_line cl;

    k->lines++;
    if (err != CARBON_OK || carbon_split_path(line, len, &path, &path_len) != CARBON_OK) {
        k->rejected++;
        return;
    }
    if (spark_path_decode(k->p, path, path_len, &m) != SPARK_PATH_OK)
        return;
    int rc = carbon_parse_after_path(line, len, path, path_len, &cl);
    if (rc == CARBON_E_RESPLIT)
        rc = carbon_parse_line(line, len, &cl);
    if (rc != CARBON_OK) {
        k->rejected++;
        return;
    }
    k->relevant++;
    k->sum += cl.value;
}

static void on_line_split_only(void *ctx, const char *line, size_t len, int err)
{
    sink *k = ctx;
    (void)line;
    (void)err;
    k->lines++;
    k->sum += (double)len;
}

static void on_line_no_parse(void *ctx, const char *line, size_t len, int err)
{
    sink *k = ctx;
    const char *path;
    size_t path_len;
    spark_metric m;

    k->lines++;
    if (err == CARBON_OK && carbon_split_path(line, len, &path, &path_len) == CARBON_OK &&
        spark_path_decode(k->p, path, path_len, &m) == SPARK_PATH_OK)
        k->relevant++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double run(const char *buf, size_t len, carbon_line_fn fn, sink *k)
{
    static char carry[CARBON_DEFAULT_MAX_LINE];
    carbon_stream s;
    size_t off;
    double t0 = now_s();

    carbon_stream_init(&s, carry, sizeof(carry));
    for (off = 0; off < len; off += CHUNK)
        carbon_stream_feed(&s, buf + off, len - off < CHUNK ? len - off : CHUNK, fn, k);
    carbon_stream_finish(&s, fn, k);
    return now_s() - t0;
}

static size_t bench(const char *what, const char *buf, size_t len, size_t nlines,
                  carbon_line_fn fn, const spark_prefixes *p)
{
    double t[RUNS];
    sink k = {0};
    int i;

    for (i = 0; i < RUNS; i++) {
        memset(&k, 0, sizeof(k));
        k.p = p;
        t[i] = run(buf, len, fn, &k);
        if (k.lines != nlines) {
            fprintf(stderr, "%s: %zu lines delivered, %zu generated\n", what, k.lines, nlines);
            exit(1);
        }
    }
    qsort(t, RUNS, sizeof(t[0]), cmp_double);
    printf("%-34s %7.2f M lines/s  %6.1f ns/line  (median of %d; min %.1f max %.1f ns)"
           "  relevant=%zu\n",
           what, (double)nlines / t[RUNS / 2] / 1e6, t[RUNS / 2] * 1e9 / (double)nlines, RUNS,
           t[0] * 1e9 / (double)nlines, t[RUNS - 1] * 1e9 / (double)nlines, k.relevant);
    return k.relevant;
}

int main(int argc, char **argv)
{
    size_t nlines = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000, i, len = 0, cap;
    size_t eam = 0;
    char *buf;
    char prefix[64];
    spark_prefixes *p = spark_prefixes_create(TABLE);

    if (!p || nlines == 0)
        return 1;
    /* The 10 prefixes that send traffic, among 10,000 configured ones. */
    for (i = 0; i < TABLE; i++) {
        if (i < CLUSTERS)
            snprintf(prefix, sizeof(prefix), "prod.cluster%02zu", i);
        else
            snprintf(prefix, sizeof(prefix), "tenant%05zu.spark", i);
        if (spark_prefixes_add(p, prefix, (int)i) != 0)
            return 1;
    }
    cap = nlines * 200;
    buf = malloc(cap);
    if (!buf)
        return 1;
    for (i = 0; i < nlines; i++) {
        uint32_t r = next_rand();
        unsigned app = r % APPS, cluster = app % CLUSTERS;
        int n;
        if (r >> 30 == 0) {   /* 1/4: ExecutorAllocationManager gauges */
            n = snprintf(buf + len, cap - len,
                         "prod.cluster%02u.app-20261121093000-%04u.driver."
                         "ExecutorAllocationManager.executors.%s %u 1700000000\n",
                         cluster, app, eam_gauges[(r >> 8) % 8], (r >> 16) % 40);
            eam++;
        } else {
            n = snprintf(buf + len, cap - len,
                         "prod.cluster%02u.app-20261121093000-%04u.%s %u 1700000000\n", cluster,
                         app, other_metrics[(r >> 8) % 16], (r >> 12) % 100000);
        }
        if (n < 0 || (size_t)n >= cap - len)
            return 1;
        len += (size_t)n;
    }
    printf("bench_carbon: %zu lines (%zu EAM), %.1f MB, %d KiB chunks, %d prefixes configured\n",
           nlines, eam, (double)len / 1e6, CHUNK / 1024, TABLE);
    bench("split only", buf, len, nlines, on_line_split_only, p);
    /* Every EAM line, and only those, must come out relevant. */
    if (bench("split + path decode", buf, len, nlines, on_line_no_parse, p) != eam ||
        bench("split + decode + parse (daemon)", buf, len, nlines, on_line, p) != eam) {
        fprintf(stderr, "relevant lines != %zu EAM lines generated\n", eam);
        return 1;
    }
    free(buf);
    spark_prefixes_destroy(p);
    return 0;
}
