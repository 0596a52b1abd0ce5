/* bench_ingest.c: carbon load generator. Sends N Spark-shaped lines (a
 * quarter ExecutorAllocationManager gauges over ~50 apps, the rest other
 * Spark metrics) over K TCP connections and prints client-side lines/s.
 * The daemon's CPU is measured by tests/bench/ingest_vs_relay.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *eam[] = {
    "numberExecutorsToAdd", "numberExecutorsPendingToRemove", "numberAllExecutors",
    "numberTargetExecutors", "numberMaxNeededExecutors", "numberDecommissioningExecutors",
};
static const char *other[] = {
    "driver.BlockManager.memory.memUsed_MB", "driver.BlockManager.memory.maxMem_MB",
    "driver.DAGScheduler.stage.runningStages", "driver.DAGScheduler.job.activeJobs",
    "driver.jvm.heap.used", "driver.LiveListenerBus.queue.appStatus.size",
    "driver.CodeGenerator.compilationTime.p99", "1.executor.bytesRead.count",
    "2.executor.shuffleTotalBytesRead.count", "driver.HiveExternalCatalog.fileCacheHits.count",
    "driver.ExecutorMetrics.JVMHeapMemory", "driver.appStatus.jobs.succeededJobs.count",
};

typedef struct job {
    const char *host;
    int port;
    long lines;
    int conn_id;
    char *buf;
    size_t len;
    long sent_lines;
    int err;
} job;

static char prefix[128] = "bench";
static int napps = 50;

/* One block of lines; each connection sends it repeatedly. Shaped like
 * Spark: a driver's report is contiguous (each driver sends its own), with
 * a quarter of its lines ExecutorAllocationManager gauges. */
static size_t make_block(char *out, size_t cap, int conn, long *nlines, long ts)
{
    size_t n = 0;
    long lines = 0;
    for (int k = 0; k < 13 && n + 4096 < cap; k++) {
        int app = (conn * 13 + k) % napps;
        for (int i = 0; i < 16; i++) {
            int w;
            if (i % 4 == 0)
                w = snprintf(out + n, cap - n,
                    "%s.app-20261121093000-%04d.driver.ExecutorAllocationManager.executors.%s %d %ld\n",
                    prefix, app, eam[(k + i / 4) % 6], (i * 3 + conn) % 40, ts);
            else
                w = snprintf(out + n, cap - n, "%s.app-20261121093000-%04d.%s %d %ld\n",
                    prefix, app, other[(k + i) % 12], i * 1000 + conn, ts);
            n += (size_t)w;
            lines++;
        }
    }
    *nlines = lines;
    return n;
}

static void *run(void *arg)
{
    job *j = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)j->port) };
    inet_pton(AF_INET, j->host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        j->err = errno;
        close(fd);
        return NULL;
    }
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    long block_lines;
    static __thread char block[65536];
    size_t blen = make_block(block, sizeof block, j->conn_id, &block_lines, (long)time(NULL));
    /* Repeat the block into a large buffer so each write is big. */
    size_t reps = (256 * 1024) / blen;
    j->buf = malloc(blen * reps);
    for (size_t r = 0; r < reps; r++)
        memcpy(j->buf + r * blen, block, blen);
    long big_lines = block_lines * (long)reps;
    while (j->sent_lines < j->lines) {
        long want = j->lines - j->sent_lines;
        size_t len = blen * reps;
        long l = big_lines;
        if (want < big_lines) {
            l = (want / block_lines) * block_lines;
            if (l == 0)
                l = block_lines;
            len = blen * (size_t)(l / block_lines);
        }
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fd, j->buf + off, len - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                j->err = errno;
                goto out;
            }
            off += (size_t)w;
        }
        j->sent_lines += l;
    }
out:
    shutdown(fd, SHUT_WR);
    /* Wait for the server to close: all data has been read by then. */
    char tmp[64];
    while (read(fd, tmp, sizeof tmp) > 0)
        ;
    close(fd);
    free(j->buf);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 2003, conns = 4;
    long lines = 10000000;
    int c;
    while ((c = getopt(argc, argv, "h:p:n:k:a:P:")) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': lines = atol(optarg); break;
        case 'k': conns = atoi(optarg); break;
        case 'a': napps = atoi(optarg); break;
        case 'P': snprintf(prefix, sizeof prefix, "%s", optarg); break;
        default:
            fprintf(stderr, "usage: bench_ingest [-h host] [-p port] [-n lines] [-k conns] [-a apps] [-P prefix]\n");
            return 2;
        }
    }
    if (conns < 1 || conns > 1024 || lines < 1) {
        fprintf(stderr, "bench_ingest: bad -k or -n\n");
        return 2;
    }
    job *jobs = calloc((size_t)conns, sizeof *jobs);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < conns; i++) {
        jobs[i] = (job){ .host = host, .port = port, .lines = lines / conns, .conn_id = i };
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    long sent = 0;
    int failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        sent += jobs[i].sent_lines;
        if (jobs[i].err) {
            fprintf(stderr, "bench_ingest: connection %d: %s\n", i, strerror(jobs[i].err));
            failed = 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("sent_lines=%ld connections=%d seconds=%.3f client_lines_per_s=%.0f\n",
           sent, conns, s, sent / s);
    free(jobs);
    free(th);
    return failed;
}
