/* bench_reaction.c: the reaction bar. A real sparkscaled (in-process, its
 * own loop thread, embedded Kafka with acks=all) reads a carbon line over a
 * long-lived loopback TCP connection that changes a cluster's demand; the
 * clock runs from the read of that line to Kafka's acknowledgement of the
 * decision it caused. One line at a time; prints p50/p99/max. */
#include <math.h>
#include <pthread.h>

#include "../runtime/harness.h"
#include "lib/log.h"

static const char *yaml =
    "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\" }\n"
    "kafka: { brokers: embedded, heartbeat_s: 3600 }\n"
    "policy: { evaluate_interval_ms: 1000 }\n"
    "clusters:\n"
    "  - name: r\n"
    "    metrics_prefix: r\n"
    "    worker: { cores: 1, memory_mb: 1024 }\n"
    "    executor: { cores: 1, memory_mb: 1024 }\n"
    "    policy: { min_workers: 0, max_workers: 1000, idle_workers: 0, scale_down_window_s: 0,\n"
    "              tolerance_executors: 0 }\n";

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t acked_seq;
static int64_t acked_us;

static void on_reaction(void *ctx, const char *cluster, uint64_t seq, int64_t us)
{
    (void)ctx;
    (void)cluster;
    pthread_mutex_lock(&mu);
    acked_seq = seq;
    acked_us = us;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    ss_log_set_level(SS_LOG_WARN);     /* one info line per decision otherwise */
    harness h;
    if (harness_start_hook(&h, yaml, on_reaction, NULL) != 0) {
        fprintf(stderr, "bench_reaction: %s\n", h.err);
        return 1;
    }
    int fd = h_connect(SOCK_STREAM, h.tcp_port);
    if (fd < 0) {
        fprintf(stderr, "bench_reaction: connect failed\n");
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    int got = 0, missed = 0;
    double base = (double)time(NULL);
    uint64_t last_seq = 0;
    for (int i = 0; i < n; i++) {
        /* Demand alternates 10 <-> 20 executors: 10 <-> 20 workers, each line a change. */
        char line[256];
        int len = snprintf(line, sizeof line,
            "r.app-20261121093000-0001.driver.ExecutorAllocationManager.executors."
            "numberTargetExecutors %d %.3f\n", i % 2 ? 10 : 20, base + i * 0.001);
        h_write_all(fd, line, (size_t)len);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 5;
        pthread_mutex_lock(&mu);
        int rc = 0;
        while (acked_seq == last_seq && rc == 0)
            rc = pthread_cond_timedwait(&cv, &mu, &dl);
        if (acked_seq != last_seq) {
            last_seq = acked_seq;
            lat[got++] = acked_us;
        } else {
            missed++;
        }
        pthread_mutex_unlock(&mu);
    }
    close(fd);
    qsort(lat, (size_t)got, sizeof *lat, cmp_i64);
    if (got > 0)
        printf("bench_reaction: %d decisions (acks=all, embedded 3-broker Kafka), %d missed\n"
               "line read -> Kafka ack: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
               got, missed, lat[got / 2] / 1e3, lat[(int)(got * 0.9)] / 1e3,
               lat[(int)(got * 0.99)] / 1e3, lat[got - 1] / 1e3);
    free(lat);
    int rc = harness_stop(&h);
    return got == n && rc == 0 ? 0 : 1;
}
