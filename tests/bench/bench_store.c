/* bench_store.c: memory of the store at the scale bar (10,000 clusters x 5 apps
 * x 10 series x ring 16) and the cost of store_put, printed, never asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carbon/spark_path.h"
#include "ingest/store.h"

enum { NC = 10000, NA = 5, NS = 10, RING = 16, FILL_ROUNDS = 20, RUNS = 5, ROUNDS = 20 };

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char ids[NC * NA][32];
static store_dirty dirty[NC];

/* One "report": puts of every series of every app. app_major = Spark's order
 * (an app's lines arrive together); otherwise each put hits another app. */
static long round_puts(ss_store *s, int64_t ts, int round, int app_major, long *rejected)
{
    long n = 0;
    spark_metric m = {0};
    m.kind = SPARK_KIND_APP;
    for (int outer = 0; outer < (app_major ? NC * NA : NS); outer++) {
        for (int inner = 0; inner < (app_major ? NS : NC * NA); inner++) {
            int app = app_major ? outer : inner;
            int g = app_major ? inner : outer;
            m.cluster = app / NA;
            m.app = ids[app];
            m.app_len = strlen(ids[app]);
            m.gauge = g;
            m.name = spark_gauge_name(g);
            m.name_len = strlen(m.name);
            /* a value changes now and then, as demand does */
            double v = (double)((app + g + (round / 4)) % 17);
            if (store_put(s, &m, NULL, ts, v, ts) < 0)
                (*rejected)++;
            n++;
        }
    }
    store_take_dirty(s, dirty, NC);
    return n;
}

/* SENDERS senders (connections) each sending its share of the apps in
 * Spark's order, their lines interleaved one by one, as when several
 * connections are read in turn: each sender's own hint, or none. */
#define SENDERS 8
static long round_interleaved(ss_store *s, int64_t ts, int round, int hinted, long *rejected)
{
    long n = 0;
    store_hint hint[SENDERS] = { 0 };
    int per = NC * NA / SENDERS;
    spark_metric m = {0};
    m.kind = SPARK_KIND_APP;
    for (int k = 0; k < per * NS; k++) {
        int a_off = k / NS, g = k % NS;
        for (int snd = 0; snd < SENDERS; snd++) {
            int app = snd * per + a_off;
            m.cluster = app / NA;
            m.app = ids[app];
            m.app_len = strlen(ids[app]);
            m.gauge = g;
            m.name = spark_gauge_name(g);
            m.name_len = strlen(m.name);
            double v = (double)((app + g + (round / 4)) % 17);
            if (store_put_hinted(s, &m, NULL, ts, v, ts, hinted ? &hint[snd] : NULL) < 0)
                (*rejected)++;
            n++;
        }
    }
    store_take_dirty(s, dirty, NC);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { ORDER_APP, ORDER_GAUGE, ORDER_SENDERS, ORDER_SENDERS_HINTED };

static void time_puts(ss_store *s, int order, int64_t *ts, long *rejected)
{
    static const char *const names[] = {
        "(app-major, Spark order)", "(gauge-major, no cache)",
        "(8 senders interleaved, no hints)", "(8 senders interleaved, hints)",
    };
    double ns[RUNS];
    long n = 0;
    for (int r = 0; r < RUNS; r++) {
        n = 0;
        double t0 = now_s();
        for (int k = 0; k < ROUNDS; k++) {
            *ts += 10000;
            n += order == ORDER_APP     ? round_puts(s, *ts, k, 1, rejected)
                 : order == ORDER_GAUGE ? round_puts(s, *ts, k, 0, rejected)
                 : round_interleaved(s, *ts, k, order == ORDER_SENDERS_HINTED, rejected);
        }
        ns[r] = (now_s() - t0) * 1e9 / (double)n;
    }
    qsort(ns, RUNS, sizeof(ns[0]), cmp_double);
    printf("store_put %-34s %ld puts/run, %d runs: median %.1f ns/put (min %.1f, max %.1f)\n",
           names[order], n, RUNS, ns[RUNS / 2], ns[0], ns[RUNS - 1]);
}

int main(void)
{
    for (int i = 0; i < NC * NA; i++)
        snprintf(ids[i], sizeof(ids[i]), "app-20261121%06d-%04d", i / NA, i % NA);

    long rss0 = rss_kb();
    store_limits lim = {0};
    lim.ring_size = RING;
    ss_store *s = store_create(&lim, NC);
    if (!s) {
        fprintf(stderr, "store_create failed\n");
        return 1;
    }
    long rss1 = rss_kb();
    int64_t ts = 1700000000000LL;
    long rejected = 0;
    double t0 = now_s();
    long n = 0;
    for (int k = 0; k < FILL_ROUNDS; k++) {
        ts += 10000;
        n += round_puts(s, ts, k, 1, &rejected);
    }
    double fill_s = now_s() - t0;
    long rss2 = rss_kb();
    store_stats st;
    store_get_stats(s, &st);
    printf("fill: %d clusters x %d apps x %d series, ring %d, %d samples each (%ld puts, %.2f s)\n",
           NC, NA, NS, RING, FILL_ROUNDS, n, fill_s);
    printf("VmRSS: before create %ld kB, after create %ld kB, after fill %ld kB (store %+.1f MB)\n",
           rss0, rss1, rss2, (double)(rss2 - rss0) / 1024.0);
    printf("stats: apps %llu series %llu bytes %llu (%.1f MB, %.0f B/app)\n",
           (unsigned long long)st.apps, (unsigned long long)st.series,
           (unsigned long long)st.bytes, (double)st.bytes / 1048576.0,
           (double)st.bytes / (double)st.apps);

    time_puts(s, ORDER_APP, &ts, &rejected);
    time_puts(s, ORDER_GAUGE, &ts, &rejected);
    time_puts(s, ORDER_SENDERS, &ts, &rejected);
    time_puts(s, ORDER_SENDERS_HINTED, &ts, &rejected);
    long rss3 = rss_kb();
    store_get_stats(s, &st);
    printf("after timing: VmRSS %ld kB, stats.bytes %llu, rejected %ld\n", rss3,
           (unsigned long long)st.bytes, rejected);
    store_destroy(s);
    return rejected != 0;
}
