/* bench_actuator.c: the actuator's bars, measured. A real actuator runs
 * in-process on its own loop thread, against librdkafka's mock cluster (the
 * embedded Kafka) and a local Oshinko fixture (scale-up: GET the count, PUT
 * the new one, GET to confirm; no decommission wait). The clock is
 * CLOCK_MONOTONIC in this one process: a decision's clock starts when it is
 * handed to the producer (its Kafka timestamp is taken then), a backend
 * request's when the fixture has read it whole.
 *   1. one cluster, one decision at a time: decision -> first backend
 *      request, -> the resize (PUT), -> its audit record committed;
 *   2. 1,000 clusters receiving a decision at once: per-decision decision ->
 *      PUT, all applied within, decisions applied per second, all audits
 *      committed within;
 *   3. the whole loop with a real sparkscaled: the carbon line that changes
 *      demand -> the actuator's PUT.
 * Each series runs BENCH_RUNS times (default 3); medians of the runs are
 * printed last. Nothing asserts on time. */
#include <math.h>
#include <pthread.h>
#include <sys/resource.h>

#include "../runtime/actuator_harness.h"
#include "../runtime/harness.h"

#define NCLUSTERS 1000

static fo_oshinko O;
static ah_kafka K;

/* Audit records committed, counted by the actuator's commit hook. */
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ccv = PTHREAD_COND_INITIALIZER;
static uint64_t g_committed;

static void on_commit(void *ctx, size_t n)
{
    (void)ctx;
    pthread_mutex_lock(&cmu);
    g_committed += n;
    pthread_cond_broadcast(&ccv);
    pthread_mutex_unlock(&cmu);
}

static uint64_t committed_now(void)
{
    pthread_mutex_lock(&cmu);
    uint64_t n = g_committed;
    pthread_mutex_unlock(&cmu);
    return n;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Waits until at least want audits are committed; returns when (mono us). */
static int64_t wait_committed(uint64_t want, int timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&cmu);
    while (g_committed < want)
        if (pthread_cond_timedwait(&ccv, &cmu, &ts) != 0)
            break;
    pthread_mutex_unlock(&cmu);
    return fx_now_us();
}

/* Waits until the fixture saw at least want PUTs in all (its lock held by
 * the caller); returns 0 or -1 on timeout. */
static int wait_puts_locked(uint64_t want, int timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    while (O.puts < want)
        if (pthread_cond_timedwait(&O.put_cv, &O.srv.mu, &ts) != 0)
            return -1;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(int64_t *v, size_t n, double p)
{
    if (!n)
        return -1;
    qsort(v, n, sizeof *v, cmp_i64);
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

static double median3(double *v, int n)
{
    double s[16];
    memcpy(s, v, (size_t)n * sizeof *v);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (s[j] < s[i]) {
                double t = s[i];
                s[i] = s[j];
                s[j] = t;
            }
    return s[n / 2];
}

static int fetch_wait_ms(void)
{
    const char *e = getenv("BENCH_FETCH_WAIT_MS");
    return e ? atoi(e) : SS_ACTUATOR_EMBEDDED_FETCH_WAIT_MS;
}

static char *actuator_yaml(const char *bootstrap, int n, const char *prefix)
{
    size_t cap = 2048 + (size_t)n * 160;
    char *y = malloc(cap);
    size_t k = (size_t)snprintf(y, cap,
        "ingest: { carbon_tcp: \"off\", carbon_udp: \"off\", http: \"off\" }\n"
        "kafka:\n  brokers: \"%s\"\n"
        "  properties: { session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\",\n"
        "                fetch.wait.max.ms: \"%d\" }\n"
        "actuator: { http: \"127.0.0.1:0\", id: bench, group: g-bench }\n"
        "log_level: warn\nclusters:\n",
        bootstrap, fetch_wait_ms());
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(y + k, cap - k,
                              "  - { name: %s%d, target: { kind: oshinko, url: \"http://127.0.0.1:%d\" } }\n",
                              prefix, i, O.srv.port);
    return y;
}

/* ---- 1. one cluster ---- */

static void one_cluster(int steps, double *p50_put, double *p99_put, double *p99_first,
                        double *p99_commit, double *p50_commit)
{
    int64_t *first = calloc((size_t)steps, sizeof *first), *put = calloc((size_t)steps, sizeof *put),
            *com = calloc((size_t)steps, sizeof *com);
    static uint64_t seq;
    for (int i = 0; i < steps; i++) {
        fx_lock(&O.srv);
        fo_cluster *c = fo_find(&O, "b0");
        /* Every decision the same work: 1 -> 2 workers (the fixture's
         * answer lists a pod per worker: a growing cluster would slow it). */
        c->count = 1;
        int count = c->count;
        uint64_t puts = O.puts;
        c->first_req_us = 0;
        fx_unlock(&O.srv);
        uint64_t before = committed_now();
        int64_t t0 = fx_now_us();
        ah_publish(&K, &(ah_dec){ .cluster = "b0", .seq = ++seq, .desired = count + 1, .current = count });
        fx_lock(&O.srv);
        wait_puts_locked(puts + 1, 10000);
        int64_t tput = c->put_us, tfirst = c->first_req_us;
        fx_unlock(&O.srv);
        int64_t tcom = wait_committed(before + 1, 10000);
        first[i] = tfirst - t0;
        put[i] = tput - t0;
        com[i] = tcom - t0;
        /* let the confirming GET end before the next one */
        usleep(2000);
    }
    *p50_put = pct(put, (size_t)steps, 0.50) / 1000.0;
    *p99_put = pct(put, (size_t)steps, 0.99) / 1000.0;
    *p99_first = pct(first, (size_t)steps, 0.99) / 1000.0;
    *p50_commit = pct(com, (size_t)steps, 0.50) / 1000.0;
    *p99_commit = pct(com, (size_t)steps, 0.99) / 1000.0;
    printf("  one cluster, %d decisions: decision -> first request p50 %.2f p99 %.2f max %.2f ms; "
           "-> PUT p50 %.2f p99 %.2f max %.2f ms; -> audit committed p50 %.2f p99 %.2f ms\n",
           steps, pct(first, (size_t)steps, 0.5) / 1000.0, *p99_first,
           pct(first, (size_t)steps, 1.0) / 1000.0, *p50_put, *p99_put,
           pct(put, (size_t)steps, 1.0) / 1000.0, *p50_commit, *p99_commit);
    free(first);
    free(put);
    free(com);
}

/* ---- 2. 1,000 clusters at once ---- */

static void many_clusters(double *all_ms, double *rate, double *p99, double *commit_ms)
{
    /* A sparkscaled epoch of its own: b0's sequences of series 1 are not
     * this series' concern (same epoch, lower sequence = stale). */
    static int64_t epoch = 1795237100000LL;
    epoch++;
    int puts0[NCLUSTERS], count[NCLUSTERS];
    int64_t tprod[NCLUSTERS];
    fx_lock(&O.srv);
    for (int i = 0; i < NCLUSTERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        fo_cluster *c = fo_find(&O, name);
        c->count = 1;
        puts0[i] = c->puts;
        count[i] = c->count;
    }
    uint64_t puts_before = O.puts;
    fx_unlock(&O.srv);
    uint64_t before = committed_now();
    int64_t t0 = fx_now_us();
    for (int i = 0; i < NCLUSTERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        ss_decision d;
        memset(&d, 0, sizeof d);
        snprintf(d.cluster, sizeof d.cluster, "%s", name);
        d.producer_epoch = epoch;
        d.sequence = 1;
        d.decided_at_ms = ss_wall_ms();
        d.current_workers = count[i];
        d.desired_workers = count[i] + 1;
        d.busy_workers = -1;
        d.expires_at_ms = ss_wall_ms() + 120000;
        uint8_t *buf;
        size_t len;
        ss_decision_encode(&d, &buf, &len);
        tprod[i] = fx_now_us();
        rd_kafka_producev(K.prod, RD_KAFKA_V_TOPIC("sparkscale.decisions"), RD_KAFKA_V_KEY(name, strlen(name)),
                          RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
    }
    rd_kafka_flush(K.prod, 10000);
    int64_t lat[NCLUSTERS], last = 0;
    int done = 0;
    fx_lock(&O.srv);
    if (wait_puts_locked(puts_before + NCLUSTERS, 30000) < 0)
        printf("  1000 clusters: not all applied after 30 s\n");
    for (int i = 0; i < NCLUSTERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        fo_cluster *c = fo_find(&O, name);
        if (c->puts > puts0[i]) {
            done++;
            lat[i] = c->put_us - tprod[i];
            if (c->put_us > last)
                last = c->put_us;
        } else {
            lat[i] = 30000000;
        }
    }
    fx_unlock(&O.srv);
    if (done != NCLUSTERS)
        printf("  1000 clusters: %d applied\n", done);
    int64_t tcom = wait_committed(before + NCLUSTERS, 30000);
    *all_ms = (last - t0) / 1000.0;
    *rate = NCLUSTERS / ((last - t0) / 1e6);
    *p99 = pct(lat, NCLUSTERS, 0.99) / 1000.0;
    *commit_ms = (tcom - t0) / 1000.0;
    printf("  1000 clusters at once: all applied (PUT) %.1f ms after the first decision; %.0f "
           "decisions applied/s; decision -> PUT p50 %.1f p99 %.1f ms; all audits committed after "
           "%.1f ms\n",
           *all_ms, *rate, pct(lat, NCLUSTERS, 0.5) / 1000.0, *p99, *commit_ms);
}

/* ---- 3. the whole loop ---- */

static void whole_loop(int runs, int steps)
{
    harness h;
    const char *yaml =
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\" }\n"
        "kafka: { brokers: embedded, heartbeat_s: 3600 }\n"
        "policy: { evaluate_interval_ms: 1000, min_workers: 0, max_workers: 1000, idle_workers: 0,\n"
        "          scale_down_window_s: 0, tolerance_executors: 0 }\n"
        "log_level: warn\n"
        "clusters:\n"
        "  - { name: loop, worker: { cores: 1, memory_mb: 1024 }, executor: { cores: 1, memory_mb: 1024 } }\n";
    if (harness_start(&h, yaml) != 0) {
        printf("sparkscaled: %s\n", h.err);
        return;
    }
    fo_add(&O, "loop", 1);
    char *ay = malloc(4096);
    snprintf(ay, 4096,
             "ingest: { carbon_tcp: \"off\", carbon_udp: \"off\", http: \"off\" }\n"
             "kafka:\n  brokers: \"%s\"\n"
             "  properties: { session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\",\n"
             "                fetch.wait.max.ms: \"%d\" }\n"
             "actuator: { http: \"127.0.0.1:0\", id: loop, group: g-loop }\n"
             "log_level: warn\nclusters:\n"
             "  - { name: loop, target: { kind: oshinko, url: \"http://127.0.0.1:%d\" } }\n",
             h.bootstrap, fetch_wait_ms(), O.srv.port);
    ah_act a;
    if (ah_act_start(&a, ay) != 0) {
        printf("actuator: %s\n", a.err);
        return;
    }
    ah_wait_metric(a.port, "sparkscale_actuator_assigned_partitions", 4, 30000);
    int fd = h_connect(SOCK_STREAM, h.tcp_port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double p50s[16], p99s[16];
    int demand = 1;
    for (int r = 0; r < runs; r++) {
        int64_t *lat = calloc((size_t)steps, sizeof *lat);
        for (int i = 0; i < steps; i++) {
            fx_lock(&O.srv);
            fo_cluster *c = fo_find(&O, "loop");
            c->count = 1;   /* every step the same work (the answer lists a pod per worker) */
            int puts = c->puts;
            uint64_t all = O.puts;
            fx_unlock(&O.srv);
            char line[256];
            int n = snprintf(line, sizeof line,
                             "loop.app-20261201000000-0001.driver.ExecutorAllocationManager.executors."
                             "numberTargetExecutors %d %lld\n",
                             ++demand, (long long)(ss_wall_ms() / 1000));
            int64_t t0 = fx_now_us();
            h_write_all(fd, line, (size_t)n);
            int64_t tput = 0;
            (void)puts;
            fx_lock(&O.srv);
            if (wait_puts_locked(all + 1, 10000) == 0)
                tput = c->put_us;
            fx_unlock(&O.srv);
            lat[i] = tput ? tput - t0 : 10000000;
            usleep(3000);
        }
        p50s[r] = pct(lat, (size_t)steps, 0.5) / 1000.0;
        p99s[r] = pct(lat, (size_t)steps, 0.99) / 1000.0;
        printf("  whole loop run %d, %d lines: carbon line -> PUT p50 %.2f p99 %.2f max %.2f ms\n", r + 1,
               steps, p50s[r], p99s[r], pct(lat, (size_t)steps, 1.0) / 1000.0);
        free(lat);
    }
    printf("whole loop (median of %d runs): carbon line -> backend request p50 %.2f ms, p99 %.2f ms "
           "(bar: p99 <= 10 ms)\n",
           runs, median3(p50s, runs), median3(p99s, runs));
    close(fd);
    ah_act_stop(&a);
    free(ay);
    harness_stop(&h);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(void)
{
    ss_log_set_level(SS_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    int runs = getenv("BENCH_RUNS") ? atoi(getenv("BENCH_RUNS")) : 3;
    if (runs < 1 || runs > 15)
        runs = 3;
    ah_kafka_start(&K);
    fo_start(&O);
    for (int i = 0; i < NCLUSTERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        fo_add(&O, name, 1);
    }
    char *y = actuator_yaml(ah_bootstrap(&K), NCLUSTERS, "b");
    ah_act a;
    ah_act_commit_hook = on_commit;
    if (ah_act_start(&a, y) != 0) {
        printf("actuator: %s\n", a.err);
        return 1;
    }
    free(y);
    ah_wait_metric(a.port, "sparkscale_actuator_assigned_partitions", 4, 30000);
    printf("actuator bench: embedded Kafka (librdkafka %s mock, fetch.wait.max.ms %d), Oshinko fixture, "
           "%d runs\n",
           rd_kafka_version_str(), fetch_wait_ms(), runs);
    /* Warm up: connections, first transaction, the mock probe. */
    double d1, d2, d3, d4, d5;
    one_cluster(20, &d1, &d2, &d3, &d4, &d5);

    double p50[16], p99[16], p99f[16], p99c[16], p50c[16];
    for (int r = 0; r < runs; r++)
        one_cluster(300, &p50[r], &p99[r], &p99f[r], &p99c[r], &p50c[r]);
    printf("one cluster (median of %d runs): decision -> backend request p99 %.2f ms (first request), "
           "%.2f ms (resize PUT), p50 PUT %.2f ms (bar: p99 <= 5 ms); -> audit committed p50 %.2f, "
           "p99 %.2f ms\n",
           runs, median3(p99f, runs), median3(p99, runs), median3(p50, runs), median3(p50c, runs),
           median3(p99c, runs));

    double all[16], rate[16], mp99[16], com[16];
    for (int r = 0; r < runs; r++)
        many_clusters(&all[r], &rate[r], &mp99[r], &com[r]);
    printf("1000 clusters (median of %d runs): all applied within %.1f ms (bar: 1000 ms), %.0f "
           "decisions applied/s, decision -> PUT p99 %.1f ms, all audits committed within %.1f ms\n",
           runs, median3(all, runs), median3(rate, runs), median3(mp99, runs), median3(com, runs));

    /* Idle cost of the embedded setup: the mock answers every empty fetch
     * after fetch.wait.max.ms. */
    double c0 = cpu_s();
    sleep(5);
    printf("idle: %.1f%% of one core for this process (mock brokers + actuator + fixture) over 5 s\n",
           (cpu_s() - c0) / 5 * 100);
    ah_act_stop(&a);

    whole_loop(runs, 200);
    fx_stop(&O.srv);
    ah_kafka_stop(&K);
    return 0;
}
