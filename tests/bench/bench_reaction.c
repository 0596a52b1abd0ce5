/* bench_reaction.c: the reaction bar. A real sparkscaled (in-process, its
 * own loop thread, embedded Kafka with acks=all) reads a carbon line over a
 * long-lived loopback TCP connection that changes a cluster's demand; the
 * clock runs from the read of that line to Kafka's acknowledgement of the
 * decision it caused. One line at a time; prints p50/p99/max. */
#include <math.h>
#include <pthread.h>

#include "../runtime/harness.h"
#include "lib/base/log.h"

/* K clusters "r0".."rK-1", each with one worker per executor, no idle
 * buffer, no window: every demand change is a decision. */
static char *make_yaml(int k, const char *brokers)
{
    size_t cap = 1024 + (size_t)k * 320;
    char *y = malloc(cap);
    size_t n = (size_t)snprintf(y, cap,
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\" }\n"
        "kafka: { brokers: \"%s\", heartbeat_s: 3600 }\n"
        "policy: { evaluate_interval_ms: 1000, min_workers: 0, max_workers: 1000, idle_workers: 0,\n"
        "          scale_down_window_s: 0, tolerance_executors: 0 }\n"
        "clusters:\n", brokers);
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(y + n, cap - n,
            "  - { name: r%d, worker: { cores: 1, memory_mb: 1024 }, executor: { cores: 1, memory_mb: 1024 } }\n", i);
    return y;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int64_t *lat;              /* every reaction, in ack order */
static size_t nlat, cap_lat;

static void on_reaction(void *ctx, const char *cluster, uint64_t seq, int64_t us)
{
    (void)ctx;
    (void)cluster;
    (void)seq;
    pthread_mutex_lock(&mu);
    if (nlat < cap_lat)
        lat[nlat++] = us;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_pct(const char *what, int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
    if (n == 0) {
        printf("%s: none\n", what);
        return;
    }
    printf("%s: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%zu)\n", what,
           v[n / 2] / 1e3, v[(size_t)(n * 0.9)] / 1e3, v[(size_t)(n * 0.99)] / 1e3,
           v[n - 1] / 1e3, n);
}

/* Writes one line per cluster (demand of round r) and waits up to 5 s for
 * their acknowledgements; returns how many did not come. */
static int one_round(int fd, char *buf, int k, int r, double base)
{
    /* Demand alternates 10 <-> 20 executors: 10 <-> 20 workers, each line a change. */
    size_t len = 0;
    for (int i = 0; i < k; i++)
        len += (size_t)sprintf(buf + len, "r%d.app-20261121093000-0001.driver."
            "ExecutorAllocationManager.executors.numberTargetExecutors %d %.3f\n",
            i, r % 2 ? 10 : 20, base + r * 0.001);
    size_t before = nlat;
    h_write_all(fd, buf, len);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    size_t want = before + (size_t)k;
    int missed = 0, rc = 0;
    pthread_mutex_lock(&mu);
    while (nlat < want && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &dl);
    if (nlat < want) {
        missed = (int)(want - nlat);
        nlat = want;                /* keep rounds aligned; zeros are excluded below */
    }
    pthread_mutex_unlock(&mu);
    return missed;
}

/* Usage: [SS_BENCH_BROKERS=host:port] bench_reaction [ROUNDS] [CLUSTERS] [STARTS].
 * Each round writes one line per cluster in a single write (CLUSTERS
 * decisions in flight together) and waits for all their acknowledgements.
 * The daemon starts STARTS times (default 1); the first round after each
 * start is sent as soon as the daemon is up, as a first report after a
 * restart would be, and reported apart: it pays for connecting to Kafka. */
int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10000;
    int k = argc > 2 ? atoi(argv[2]) : 1;
    int starts = argc > 3 ? atoi(argv[3]) : 1;
    if (rounds < 1 || k < 1 || k > 10000 || starts < 1) {
        fprintf(stderr, "usage: bench_reaction [ROUNDS] [CLUSTERS 1..10000] [STARTS]\n");
        return 2;
    }
    ss_log_set_level(SS_LOG_WARN);     /* one info line per decision otherwise */
    cap_lat = (size_t)rounds * (size_t)k * (size_t)starts;
    lat = calloc(cap_lat, sizeof *lat);
    int64_t *first = calloc((size_t)k * (size_t)starts, sizeof *first);
    size_t nfirst = 0;
    int64_t *steady = calloc(cap_lat, sizeof *steady);
    size_t nsteady = 0;
    /* SS_BENCH_BROKERS=host:port measures against a real broker instead. */
    const char *brokers = getenv("SS_BENCH_BROKERS");
    char *yaml = make_yaml(k, brokers && *brokers ? brokers : "embedded");
    char *buf = malloc((size_t)k * 160);
    int missed = 0, rc = 0;
    for (int s = 0; s < starts; s++) {
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
        double base = (double)time(NULL);
        for (int r = 0; r < rounds; r++) {
            size_t at = nlat;
            missed += one_round(fd, buf, k, r, base);
            for (size_t i = at; i < nlat; i++) {
                if (lat[i] <= 0)
                    continue;
                if (r == 0)
                    first[nfirst++] = lat[i];
                else
                    steady[nsteady++] = lat[i];
            }
        }
        close(fd);
        rc |= harness_stop(&h);
    }
    printf("bench_reaction: %d start(s) x %d rounds of %d cluster(s) (acks=all, %s), %d missed\n",
           starts, rounds, k, brokers && *brokers ? brokers : "embedded 3-broker Kafka", missed);
    print_pct("first decision after start, line read -> Kafka ack", first, nfirst);
    print_pct("steady state, line read -> Kafka ack", steady, nsteady);
    free(lat);
    free(first);
    free(steady);
    free(buf);
    free(yaml);
    return missed == 0 && rc == 0 ? 0 : 1;
}
