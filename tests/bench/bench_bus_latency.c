/* bench_bus_latency.c: ss_bus_publish call -> Kafka delivery report (acks=all,
 * idempotent) on the embedded mock cluster, one in flight and several in flight. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lib/bus/producer.h"
#include "lib/bus/reader.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

typedef struct bench {
    uv_loop_t *loop;
    ss_bus *bus;
    int total;          /* decisions to publish */
    int window;         /* at most this many in flight */
    int nclusters;
    int published;
    int acked;
    int failed;
    int in_flight;
    int64_t *lat_us;
    ss_bus_cluster **clusters;
    int64_t t_start_us, t_end_us;
    int closed;
} bench;

static void publish_one(bench *b)
{
    ss_decision d;
    memset(&d, 0, sizeof d);
    int c = b->published % b->nclusters;
    d.current_workers = 4;
    d.busy_workers = 2;
    /* Every decision of a cluster changes its desired count. */
    d.desired_workers = 5 + (b->published / b->nclusters) % 20;
    d.recommended_workers = d.desired_workers;
    d.executors_per_worker = 2;
    d.reason_code = SS_REASON_UP;
    snprintf(d.reason, sizeof d.reason, "bench: demand %d executors", d.desired_workers * 2);
    d.trigger_us = ss_mono_us();
    if (ss_bus_publish(b->bus, b->clusters[c], &d, NULL) != 0) {
        fprintf(stderr, "publish failed\n");
        exit(1);
    }
    b->published++;
    b->in_flight++;
}

static void fill_window(bench *b)
{
    while (b->in_flight < b->window && b->published < b->total)
        publish_one(b);
}

static void on_delivery(void *ctx, void *cluster, uint64_t seq, int err, int64_t latency_us)
{
    bench *b = ctx;
    if (err) {
        b->failed++;
        return;
    }
    b->lat_us[b->acked++] = latency_us;
    b->in_flight--;
    if (b->acked == b->total)
        b->t_end_us = ss_mono_us();
    fill_window(b);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *sorted, int n, double p)
{
    int i = (int)(p / 100.0 * n);
    if (i >= n)
        i = n - 1;
    return sorted[i];
}

static void on_closed(void *ctx)
{
    ((bench *)ctx)->closed = 1;
}

static int run(int total, int window, int nclusters, int linger_ms)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ss_bus_conf cfg = {
        .brokers = "embedded",
        .linger_ms = linger_ms,
        .max_pending = 100000,
        .decision_ttl_s = 120,
    };
    char err[512];
    bench b;
    memset(&b, 0, sizeof b);
    b.loop = &loop;
    b.total = total;
    b.window = window;
    b.nclusters = nclusters;
    b.lat_us = calloc((size_t)total, sizeof *b.lat_us);
    b.bus = ss_bus_create(&loop, &cfg, err, sizeof err);
    if (!b.bus) {
        fprintf(stderr, "ss_bus_create: %s\n", err);
        return 1;
    }
    ss_bus_set_delivery_cb(b.bus, on_delivery, &b);
    b.clusters = calloc((size_t)nclusters, sizeof *b.clusters);
    for (int c = 0; c < nclusters; c++) {
        char name[32];
        snprintf(name, sizeof name, "cluster-%03d", c);
        b.clusters[c] = ss_bus_cluster_add(b.bus, name, NULL);
    }

    /* Warm up: connections, metadata and the producer id are set up once. */
    int real_total = b.total;
    b.total = 50;
    b.window = 1;
    fill_window(&b);
    while (b.acked < b.total)
        uv_run(&loop, UV_RUN_ONCE);
    b.total = real_total;
    b.window = window;
    b.published = b.acked = 0;
    b.in_flight = 0;

    b.t_start_us = ss_mono_us();
    fill_window(&b);
    while (b.acked < b.total && b.failed == 0)
        uv_run(&loop, UV_RUN_ONCE);
    ss_bus_stats st;
    ss_bus_get_stats(b.bus, &st);

    qsort(b.lat_us, (size_t)b.acked, sizeof *b.lat_us, cmp64);
    double secs = (b.t_end_us - b.t_start_us) / 1e6;
    printf("window=%-4d linger.ms=%d clusters=%d decisions=%d  p50=%" PRId64 "us p90=%" PRId64
           "us p99=%" PRId64 "us p99.9=%" PRId64 "us max=%" PRId64 "us  (%.0f decisions/s, failed=%d)\n",
           window, linger_ms, nclusters, b.acked, pct(b.lat_us, b.acked, 50), pct(b.lat_us, b.acked, 90),
           pct(b.lat_us, b.acked, 99), pct(b.lat_us, b.acked, 99.9), b.lat_us[b.acked - 1], b.acked / secs,
           b.failed);
    printf("    bus stats: published=%" PRIu64 " delivered=%" PRIu64 " failed=%" PRIu64 " latency max=%" PRId64
           "us, trigger->ack count=%" PRIu64 " max=%" PRId64 "us\n",
           st.published, st.delivered, st.failed, st.latency.max_us, st.trigger_latency.count,
           st.trigger_latency.max_us);
    fflush(stdout);

    ss_bus_close(b.bus, 5000, on_closed, &b);
    while (!b.closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(b.lat_us);
    free(b.clusters);
    return b.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int total = 10000, nclusters = 16;
    int windows[8] = { 1, 8, 64 };
    int nwindows = 3;
    int lingers[4] = { 1, 0 };
    int nlingers = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            total = atoi(argv[++i]);
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            nclusters = atoi(argv[++i]);
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
            windows[0] = atoi(argv[++i]);
            nwindows = 1;
        } else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) {
            lingers[0] = atoi(argv[++i]);
            nlingers = 1;
        } else {
            fprintf(stderr, "usage: %s [-n decisions] [-c clusters] [-w in-flight window] [-l linger.ms]\n"
                            "default: 10000 decisions, 16 clusters, windows 1 8 64, linger.ms 1 and 0\n",
                    argv[0]);
            return 2;
        }
    }
    if (total < 1 || nclusters < 1 || windows[0] < 1 || lingers[0] < 0)
        return 2;
    ss_log_set_level(SS_LOG_ERROR);
    printf("publish call -> delivery report, acks=all, idempotent, embedded mock (3 brokers)\n");
    int rc = 0;
    for (int l = 0; l < nlingers; l++)
        for (int w = 0; w < nwindows; w++)
            rc |= run(total, windows[w], nclusters, lingers[l]);
    return rc;
}
