/* test_store.c: the ring-buffer store: samples, rings, caps, unknown names,
 * the dirty list, expiry, iteration and memory, at 10,000-cluster scale too. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "carbon/spark_path.h"
#include "ingest/store.h"

static spark_metric app_m(int cluster, const char *app, int gauge)
{
    spark_metric m = {0};
    m.kind = SPARK_KIND_APP;
    m.cluster = cluster;
    m.app = app;
    m.app_len = strlen(app);
    m.gauge = gauge;
    m.name = spark_gauge_name(gauge);
    m.name_len = m.name ? strlen(m.name) : 0;
    m.is_counter = gauge >= SPARK_G_GRACEFULLY_DECOMMISSIONED && gauge < SPARK_G_APP_COUNT;
    return m;
}

static spark_metric unknown_m(spark_kind kind, int cluster, const char *app, const char *name)
{
    spark_metric m = {0};
    m.kind = kind;
    m.cluster = cluster;
    m.app = app;
    m.app_len = app ? strlen(app) : 0;
    m.gauge = SPARK_G_UNKNOWN;
    m.name = name;
    m.name_len = strlen(name);
    return m;
}

static spark_metric src_m(spark_kind kind, int cluster, int gauge)
{
    spark_metric m = {0};
    m.kind = kind;
    m.cluster = cluster;
    m.gauge = gauge;
    m.name = spark_gauge_name(gauge);
    m.name_len = m.name ? strlen(m.name) : 0;
    return m;
}

static int put_app(ss_store *s, int c, const char *app, int g, int64_t ts, double v, int64_t now)
{
    spark_metric m = app_m(c, app, g);
    return store_put(s, &m, NULL, ts, v, now);
}

static double app_latest(const ss_store *s, int c, const char *app, int g, int64_t *ts)
{
    const store_app *a = store_app_find(s, c, app, strlen(app));
    assert_non_null(a);
    double v = -1;
    assert_int_equal(store_app_latest(a, g, &v, ts), 0);
    return v;
}

static ss_store *mk(int ring, size_t nclusters)
{
    store_limits lim = {0};
    lim.ring_size = ring;
    ss_store *s = store_create(&lim, nclusters);
    assert_non_null(s);
    return s;
}

static void test_put_latest_app(void **state)
{
    (void)state;
    ss_store *s = mk(0, 3);
    assert_int_equal(store_cluster_count(s), 3);
    assert_int_equal(store_cluster_last_seen_ms(s, 1), 0);
    assert_int_equal(put_app(s, 1, "app-20261121093000-0003", SPARK_G_TARGET_EXECUTORS, 10000, 7, 10005),
                     STORE_CHANGED);
    assert_int_equal(put_app(s, 1, "app-20261121093000-0003", SPARK_G_ALL_EXECUTORS, 10000, 3, 10006),
                     STORE_CHANGED);

    const store_app *a = store_app_find(s, 1, "app-20261121093000-0003", 23);
    assert_non_null(a);
    assert_string_equal(store_app_id(a), "app-20261121093000-0003");
    assert_int_equal(store_app_first_seen_ms(a), 10005);
    assert_int_equal(store_app_last_seen_ms(a), 10006);
    assert_int_equal(store_cluster_last_seen_ms(s, 1), 10006);
    assert_int_equal(store_cluster_last_seen_ms(s, 0), 0);

    double v = 0;
    int64_t ts = 0;
    assert_int_equal(store_app_latest(a, SPARK_G_TARGET_EXECUTORS, &v, &ts), 0);
    assert_true(v == 7.0);
    assert_int_equal(ts, 10000);
    assert_int_equal(store_app_latest(a, SPARK_G_ALL_EXECUTORS, &v, &ts), 0);
    assert_true(v == 3.0);
    assert_int_equal(store_app_latest(a, SPARK_G_MAX_NEEDED_EXECUTORS, &v, &ts), -ENOENT);
    assert_int_equal(store_app_latest(a, 999, &v, &ts), -ENOENT);
    assert_int_equal(store_app_latest(a, -1, &v, &ts), -ENOENT);

    /* same name in another cluster is another app; prefix of the id is not the id */
    assert_null(store_app_find(s, 0, "app-20261121093000-0003", 23));
    assert_null(store_app_find(s, 1, "app-20261121093000-000", 22));
    assert_int_equal(store_app_count(s, 1), 1);
    assert_int_equal(store_app_count(s, 0), 0);
    assert_ptr_equal(store_app_at(s, 1, 0), a);
    assert_null(store_app_at(s, 1, 1));
    assert_int_equal(store_app_series_count(a), 2);
    /* a dotted namespace is just an id */
    assert_int_equal(put_app(s, 1, "team.etl.nightly", SPARK_G_TARGET_EXECUTORS, 10000, 2, 10007),
                     STORE_CHANGED);
    assert_true(app_latest(s, 1, "team.etl.nightly", SPARK_G_TARGET_EXECUTORS, NULL) == 2.0);
    store_destroy(s);
}

static void test_put_latest_master_worker(void **state)
{
    (void)state;
    ss_store *s = mk(0, 2);
    spark_metric m = src_m(SPARK_KIND_MASTER, 0, SPARK_G_MASTER_ALIVE_WORKERS);
    assert_int_equal(store_put(s, &m, "10.0.0.1", 5000, 4, 5001), STORE_CHANGED);
    double v = 0;
    int64_t ts = 0;
    assert_int_equal(store_master_latest(s, 0, SPARK_G_MASTER_ALIVE_WORKERS, &v, &ts), 0);
    assert_true(v == 4.0);
    assert_int_equal(ts, 5000);
    assert_int_equal(store_master_latest(s, 1, SPARK_G_MASTER_ALIVE_WORKERS, &v, &ts), -ENOENT);
    assert_int_equal(store_master_latest(s, 0, SPARK_G_MASTER_APPS, &v, &ts), -ENOENT);
    assert_int_equal(store_master_latest(s, 7, SPARK_G_MASTER_ALIVE_WORKERS, &v, &ts), -ENOENT);
    assert_int_equal(store_master_series_count(s, 0), 1);
    assert_string_equal(store_series_name(store_master_series_at(s, 0, 0)), "aliveWorkers");
    /* master gauges are not a worker or an app */
    assert_int_equal(store_worker_count(s, 0), 0);
    assert_int_equal(store_app_count(s, 0), 0);

    m = src_m(SPARK_KIND_WORKER, 0, SPARK_G_WORKER_CORES_USED);
    assert_int_equal(store_put(s, &m, "10.0.0.7", 5000, 6, 5002), STORE_CHANGED);
    assert_int_equal(store_put(s, &m, "10.0.0.8", 5000, 2, 5003), STORE_CHANGED);
    assert_int_equal(store_put(s, &m, NULL, 5000, 1, 5004), STORE_CHANGED);
    assert_int_equal(store_worker_count(s, 0), 3);
    int seen = 0;
    for (size_t i = 0; i < store_worker_count(s, 0); i++) {
        const store_worker *w = store_worker_at(s, 0, i);
        assert_int_equal(store_worker_latest(w, SPARK_G_WORKER_CORES_USED, &v, &ts), 0);
        assert_int_equal(ts, 5000);
        assert_int_equal(store_worker_latest(w, SPARK_G_WORKER_CORES_FREE, &v, NULL), -ENOENT);
        assert_int_equal(store_worker_series_count(w), 1);
        const char *src = store_worker_source(w);
        if (strcmp(src, "10.0.0.7") == 0) {
            seen |= 1;
            assert_true(v == 6.0);
            assert_int_equal(store_worker_last_seen_ms(w), 5002);
        } else if (strcmp(src, "10.0.0.8") == 0) {
            seen |= 2;
            assert_true(v == 2.0);
        } else if (strcmp(src, "unknown") == 0) {
            seen |= 4;
            assert_true(v == 1.0);
        }
    }
    assert_int_equal(seen, 7);
    assert_null(store_worker_at(s, 0, 3));
    /* an app whose id equals a worker source stays separate */
    assert_int_equal(put_app(s, 0, "10.0.0.7", SPARK_G_TARGET_EXECUTORS, 5000, 9, 5005), STORE_CHANGED);
    assert_int_equal(store_worker_count(s, 0), 3);
    assert_true(app_latest(s, 0, "10.0.0.7", SPARK_G_TARGET_EXECUTORS, NULL) == 9.0);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.workers, 3);
    assert_int_equal(st.apps, 1);
    assert_int_equal(st.series, 5);
    store_destroy(s);
}

static void test_ring_wrap(void **state)
{
    (void)state;
    ss_store *s = mk(4, 1);
    for (int i = 1; i <= 10; i++)
        assert_true(put_app(s, 0, "a", SPARK_G_TARGET_EXECUTORS, i * 1000, i * 10, 1) >= 0);
    const store_app *a = store_app_find(s, 0, "a", 1);
    assert_non_null(a);
    const store_series *se = store_app_series_at(a, 0);
    assert_non_null(se);
    assert_null(store_app_series_at(a, 1));
    assert_int_equal(store_series_gauge(se), SPARK_G_TARGET_EXECUTORS);
    assert_string_equal(store_series_name(se), "numberTargetExecutors");
    assert_int_equal(store_series_len(se), 4);
    for (size_t i = 0; i < 4; i++) {
        int64_t ts = 0;
        double v = 0;
        assert_int_equal(store_series_sample(se, i, &ts, &v), 0);
        assert_int_equal(ts, (int64_t)(10 - i) * 1000);
        assert_true(v == (double)(10 - i) * 10);
    }
    assert_int_equal(store_series_sample(se, 4, NULL, NULL), -ENOENT);

    /* partially filled ring: len grows one by one */
    assert_true(put_app(s, 0, "b", SPARK_G_TARGET_EXECUTORS, 1000, 1, 1) == STORE_CHANGED);
    assert_true(put_app(s, 0, "b", SPARK_G_TARGET_EXECUTORS, 2000, 2, 1) == STORE_CHANGED);
    se = store_app_series_at(store_app_find(s, 0, "b", 1), 0);
    assert_int_equal(store_series_len(se), 2);
    int64_t ts = 0;
    assert_int_equal(store_series_sample(se, 1, &ts, NULL), 0);
    assert_int_equal(ts, 1000);
    assert_int_equal(store_series_sample(se, 2, &ts, NULL), -ENOENT);
    store_destroy(s);
}

static void test_changed_unchanged(void **state)
{
    (void)state;
    ss_store *s = mk(0, 1);
    int g = SPARK_G_TARGET_EXECUTORS;
    assert_int_equal(put_app(s, 0, "a", g, 1000, 5, 1), STORE_CHANGED);      /* new series */
    assert_int_equal(put_app(s, 0, "a", g, 2000, 5, 2), STORE_UNCHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 3000, 6, 3), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 4000, 6, 4), STORE_UNCHANGED);
    /* a new series of a known app is a change even with a value seen elsewhere */
    assert_int_equal(put_app(s, 0, "a", SPARK_G_ALL_EXECUTORS, 4000, 6, 4), STORE_CHANGED);
    /* NaN after NaN is no change; a number after NaN is */
    assert_int_equal(put_app(s, 0, "a", g, 5000, NAN, 5), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 6000, NAN, 6), STORE_UNCHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 7000, 1, 7), STORE_CHANGED);
    const store_series *se = store_app_series_at(store_app_find(s, 0, "a", 1), 0);
    assert_int_equal(store_series_len(se), 7);
    store_destroy(s);
}

static void test_same_ts_overwrite(void **state)
{
    (void)state;
    ss_store *s = mk(0, 1);
    int g = SPARK_G_TARGET_EXECUTORS;
    assert_int_equal(put_app(s, 0, "a", g, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 2000, 2, 2), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 2000, 3, 3), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 2000, 3, 4), STORE_UNCHANGED);
    const store_app *a = store_app_find(s, 0, "a", 1);
    const store_series *se = store_app_series_at(a, 0);
    assert_int_equal(store_series_len(se), 2);
    int64_t ts;
    double v;
    assert_int_equal(store_series_sample(se, 0, &ts, &v), 0);
    assert_int_equal(ts, 2000);
    assert_true(v == 3.0);
    assert_int_equal(store_series_sample(se, 1, &ts, &v), 0);
    assert_int_equal(ts, 1000);
    assert_true(v == 1.0);
    assert_int_equal(store_app_last_seen_ms(a), 4);
    store_destroy(s);
}

/* An older sample is rejected and refreshes nothing (a series held hostage
 * by a future timestamp must not keep its app alive); a third one in a row
 * restarts the series from it (the sender's clock stepped back). */
static void test_older_dropped(void **state)
{
    (void)state;
    ss_store *s = mk(0, 1);
    int g = SPARK_G_TARGET_EXECUTORS;
    assert_int_equal(put_app(s, 0, "a", g, 5000, 4, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 4999, 9, 2), STORE_E_OLD);
    assert_int_equal(put_app(s, 0, "a", g, -5000, 9, 3), STORE_E_OLD);
    int64_t ts;
    assert_true(app_latest(s, 0, "a", g, &ts) == 4.0);
    assert_int_equal(ts, 5000);
    const store_app *a = store_app_find(s, 0, "a", 1);
    assert_int_equal(store_series_len(store_app_series_at(a, 0)), 1);
    /* rejected samples refresh nothing: not the app, not the feed */
    assert_int_equal(store_app_last_seen_ms(a), 1);
    assert_int_equal(store_cluster_last_seen_ms(s, 0), 1);
    /* other series are independent: an older ts is fine there */
    assert_int_equal(put_app(s, 0, "a", SPARK_G_ALL_EXECUTORS, 1000, 2, 4), STORE_CHANGED);
    assert_int_equal(store_app_last_seen_ms(a), 4);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.rejected_old, 2);
    store_dirty d[4];
    assert_int_equal(store_take_dirty(s, d, 4), 1);
    /* The third old sample in a row: the series resynchronises on it. */
    assert_int_equal(put_app(s, 0, "a", g, 10, 9, 5), STORE_CHANGED);
    assert_true(app_latest(s, 0, "a", g, &ts) == 9.0);
    assert_int_equal(ts, 10);
    assert_int_equal(store_series_len(store_app_series_at(a, 0)), 1);
    assert_int_equal(put_app(s, 0, "a", g, 20, 9, 6), STORE_UNCHANGED);  /* and goes on */
    store_get_stats(s, &st);
    assert_int_equal(st.resynced, 1);
    assert_int_equal(store_take_dirty(s, d, 4), 1);
    assert_int_equal(store_cluster_last_seen_ms(s, 0), 6);
    /* An in-order sample in between resets the run. */
    assert_int_equal(put_app(s, 0, "a", g, 5, 1, 7), STORE_E_OLD);
    assert_int_equal(put_app(s, 0, "a", g, 6, 1, 8), STORE_E_OLD);
    assert_int_equal(put_app(s, 0, "a", g, 30, 1, 9), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, 7, 1, 10), STORE_E_OLD);
    assert_int_equal(put_app(s, 0, "a", g, 8, 1, 11), STORE_E_OLD);
    assert_true(app_latest(s, 0, "a", g, &ts) == 1.0);
    assert_int_equal(ts, 30);
    store_destroy(s);
}

/* Timestamps more than 2^32 ms (49 days) apart force a rebase of the
 * 32-bit deltas: samples still in range keep their exact timestamps. */
static void test_ts_rebase(void **state)
{
    (void)state;
    ss_store *s = mk(4, 1);
    int g = SPARK_G_TARGET_EXECUTORS;
    const int64_t t0 = 1700000000000LL;
    assert_int_equal(put_app(s, 0, "a", g, t0, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, t0 + 3000000000LL, 2, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", g, t0 + 5000000000LL, 3, 1), STORE_CHANGED);
    const store_series *se = store_app_series_at(store_app_find(s, 0, "a", 1), 0);
    assert_int_equal(store_series_len(se), 2);   /* t0 is > 2^32 ms behind: dropped */
    int64_t ts;
    double v;
    assert_int_equal(store_series_sample(se, 0, &ts, &v), 0);
    assert_int_equal(ts, t0 + 5000000000LL);
    assert_true(v == 3.0);
    assert_int_equal(store_series_sample(se, 1, &ts, &v), 0);
    assert_int_equal(ts, t0 + 3000000000LL);
    assert_true(v == 2.0);
    assert_int_equal(put_app(s, 0, "a", g, t0 + 5000000001LL, 4, 1), STORE_CHANGED);
    assert_int_equal(store_series_sample(se, 0, &ts, NULL), 0);
    assert_int_equal(ts, t0 + 5000000001LL);
    assert_int_equal(store_series_sample(se, 2, &ts, NULL), 0);
    assert_int_equal(ts, t0 + 3000000000LL);
    /* a jump far beyond any held sample keeps only the new one */
    assert_int_equal(put_app(s, 0, "a", g, t0 + 400000000000LL, 5, 1), STORE_CHANGED);
    assert_int_equal(store_series_len(se), 1);
    assert_int_equal(store_series_sample(se, 0, &ts, &v), 0);
    assert_int_equal(ts, t0 + 400000000000LL);
    /* negative timestamps are only numbers */
    assert_int_equal(put_app(s, 0, "n", g, -7000, 5, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "n", g, -2000, 6, 1), STORE_CHANGED);
    assert_true(app_latest(s, 0, "n", g, &ts) == 6.0);
    assert_int_equal(ts, -2000);
    store_destroy(s);
}

static void test_cap_apps(void **state)
{
    (void)state;
    store_limits lim = {0};
    lim.max_apps_per_cluster = 2;
    lim.max_apps = 3;
    ss_store *s = store_create(&lim, 3);
    assert_non_null(s);
    int g = SPARK_G_TARGET_EXECUTORS;
    assert_int_equal(put_app(s, 0, "a", g, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "b", g, 1000, 2, 1), STORE_CHANGED);
    store_dirty d[4];
    assert_int_equal(store_take_dirty(s, d, 4), 1);
    assert_int_equal(put_app(s, 0, "c", g, 1000, 3, 1), STORE_E_CAP_APPS);     /* per cluster */
    assert_int_equal(store_take_dirty(s, d, 4), 0);
    assert_int_equal(put_app(s, 1, "c", g, 1000, 3, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 2, "d", g, 1000, 4, 1), STORE_E_CAP_APPS);     /* global */
    /* existing apps are undisturbed and still take samples */
    assert_int_equal(put_app(s, 0, "a", g, 2000, 5, 2), STORE_CHANGED);
    assert_true(app_latest(s, 0, "a", g, NULL) == 5.0);
    assert_true(app_latest(s, 0, "b", g, NULL) == 2.0);
    assert_true(app_latest(s, 1, "c", g, NULL) == 3.0);
    assert_null(store_app_find(s, 0, "c", 1));
    assert_null(store_app_find(s, 2, "d", 1));
    assert_int_equal(store_app_count(s, 0), 2);
    assert_int_equal(store_app_count(s, 2), 0);
    /* masters and workers are not apps: not capped by it */
    spark_metric m = src_m(SPARK_KIND_MASTER, 2, SPARK_G_MASTER_WORKERS);
    assert_int_equal(store_put(s, &m, NULL, 1000, 1, 1), STORE_CHANGED);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.rejected_cap_apps, 2);
    assert_int_equal(st.apps, 3);
    /* expiry frees room under the caps */
    assert_int_equal(store_expire(s, 0, 10000, 5000), 2);
    assert_int_equal(put_app(s, 2, "d", g, 1000, 4, 10000), STORE_CHANGED);
    store_destroy(s);
}

static void test_cap_series(void **state)
{
    (void)state;
    store_limits lim = {0};
    lim.max_series_per_app = 3;
    ss_store *s = store_create(&lim, 1);
    assert_non_null(s);
    assert_int_equal(put_app(s, 0, "a", SPARK_G_TARGET_EXECUTORS, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", SPARK_G_ALL_EXECUTORS, 1000, 2, 1), STORE_CHANGED);
    spark_metric u = unknown_m(SPARK_KIND_APP, 0, "a", "numberFutureExecutors");
    assert_int_equal(store_put(s, &u, NULL, 1000, 3, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "a", SPARK_G_MAX_NEEDED_EXECUTORS, 1000, 4, 1), STORE_E_CAP_SERIES);
    spark_metric u2 = unknown_m(SPARK_KIND_APP, 0, "a", "numberOtherExecutors");
    assert_int_equal(store_put(s, &u2, NULL, 1000, 4, 1), STORE_E_CAP_SERIES);
    /* held series still update; another app has its own budget */
    assert_int_equal(put_app(s, 0, "a", SPARK_G_TARGET_EXECUTORS, 2000, 9, 2), STORE_CHANGED);
    assert_int_equal(store_put(s, &u, NULL, 2000, 8, 2), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "b", SPARK_G_MAX_NEEDED_EXECUTORS, 1000, 4, 1), STORE_CHANGED);
    const store_app *a = store_app_find(s, 0, "a", 1);
    assert_int_equal(store_app_series_count(a), 3);
    assert_int_equal(store_app_latest(a, SPARK_G_MAX_NEEDED_EXECUTORS, NULL, NULL), -ENOENT);
    assert_true(app_latest(s, 0, "a", SPARK_G_TARGET_EXECUTORS, NULL) == 9.0);
    /* the master pseudo-source has the same per-source budget */
    for (int g = SPARK_G_MASTER_WORKERS; g < SPARK_G_MASTER_END; g++) {
        spark_metric m = src_m(SPARK_KIND_MASTER, 0, g);
        assert_int_equal(store_put(s, &m, NULL, 1000, 1, 1),
                         g < SPARK_G_MASTER_WORKERS + 3 ? STORE_CHANGED : STORE_E_CAP_SERIES);
    }
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.rejected_cap_series, 3);
    assert_int_equal(st.series, 7);
    store_destroy(s);
}

static void test_cap_workers(void **state)
{
    (void)state;
    store_limits lim = {0};
    lim.max_workers_per_cluster = 2;
    ss_store *s = store_create(&lim, 2);
    assert_non_null(s);
    spark_metric m = src_m(SPARK_KIND_WORKER, 0, SPARK_G_WORKER_EXECUTORS);
    assert_int_equal(store_put(s, &m, "10.0.0.1", 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(store_put(s, &m, "10.0.0.2", 1000, 2, 1), STORE_CHANGED);
    assert_int_equal(store_put(s, &m, "10.0.0.3", 1000, 3, 1), STORE_E_CAP_WORKERS);
    assert_int_equal(store_put(s, &m, "10.0.0.1", 2000, 4, 2), STORE_CHANGED);
    m.cluster = 1;
    assert_int_equal(store_put(s, &m, "10.0.0.3", 1000, 3, 1), STORE_CHANGED);
    /* apps are not limited by the worker cap */
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "app-%d", i);
        assert_int_equal(put_app(s, 0, id, SPARK_G_TARGET_EXECUTORS, 1000, i, 1), STORE_CHANGED);
    }
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.rejected_cap_workers, 1);
    assert_int_equal(st.workers, 3);
    assert_int_equal(store_worker_count(s, 0), 2);
    double v = 0;
    for (size_t i = 0; i < 2; i++) {
        const store_worker *w = store_worker_at(s, 0, i);
        assert_int_equal(store_worker_latest(w, SPARK_G_WORKER_EXECUTORS, &v, NULL), 0);
        assert_true(strcmp(store_worker_source(w), "10.0.0.1") == 0 ? v == 4.0 : v == 2.0);
    }
    store_destroy(s);
}

static void test_unknown_by_name(void **state)
{
    (void)state;
    ss_store *s = mk(0, 1);
    spark_metric u1 = unknown_m(SPARK_KIND_APP, 0, "a", "numberFutureExecutors");
    spark_metric u2 = unknown_m(SPARK_KIND_APP, 0, "a", "numberFutureExecutorsX");
    assert_int_equal(store_put(s, &u1, NULL, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(store_put(s, &u2, NULL, 1000, 2, 1), STORE_CHANGED);
    assert_int_equal(store_put(s, &u1, NULL, 2000, 1, 2), STORE_UNCHANGED);
    assert_int_equal(store_put(s, &u2, NULL, 2000, 5, 2), STORE_CHANGED);
    /* a name only held in a longer buffer (not NUL-terminated) */
    char buf[] = "numberFutureExecutorsXYZ";
    spark_metric u3 = unknown_m(SPARK_KIND_APP, 0, "a", "x");
    u3.name = buf;
    u3.name_len = strlen("numberFutureExecutors");
    assert_int_equal(store_put(s, &u3, NULL, 3000, 7, 3), STORE_CHANGED);
    /* a prefix of a held name is another name */
    spark_metric u4 = unknown_m(SPARK_KIND_APP, 0, "a", "numberFuture");
    assert_int_equal(store_put(s, &u4, NULL, 1000, 11, 1), STORE_CHANGED);
    const store_app *a = store_app_find(s, 0, "a", 1);
    assert_int_equal(store_app_series_count(a), 3);
    int found = 0;
    for (size_t i = 0; i < store_app_series_count(a); i++) {
        const store_series *se = store_app_series_at(a, i);
        assert_int_equal(store_series_gauge(se), SPARK_G_UNKNOWN);
        double v;
        int64_t ts;
        assert_int_equal(store_series_sample(se, 0, &ts, &v), 0);
        if (strcmp(store_series_name(se), "numberFutureExecutors") == 0) {
            found |= 1;
            assert_int_equal(store_series_len(se), 1);   /* unknown names: latest only */
            assert_true(v == 7.0);
        } else if (strcmp(store_series_name(se), "numberFutureExecutorsX") == 0) {
            found |= 2;
            assert_true(v == 5.0);
        } else if (strcmp(store_series_name(se), "numberFuture") == 0) {
            found |= 4;
            assert_true(v == 11.0);
            assert_int_equal(ts, 1000);
        }
    }
    assert_int_equal(found, 7);
    /* unknown names of the master and workers are kept likewise */
    spark_metric mm = unknown_m(SPARK_KIND_MASTER, 0, NULL, "deadWorkers");
    assert_int_equal(store_put(s, &mm, NULL, 1000, 1, 1), STORE_CHANGED);
    assert_string_equal(store_series_name(store_master_series_at(s, 0, 0)), "deadWorkers");
    spark_metric wm = unknown_m(SPARK_KIND_WORKER, 0, NULL, "newGauge");
    assert_int_equal(store_put(s, &wm, "10.1.1.1", 1000, 1, 1), STORE_CHANGED);
    const store_worker *w = store_worker_at(s, 0, 0);
    assert_string_equal(store_series_name(store_worker_series_at(w, 0)), "newGauge");
    assert_int_equal(store_worker_latest(w, SPARK_G_UNKNOWN, NULL, NULL), -ENOENT);
    store_destroy(s);
}

static void test_invalid(void **state)
{
    (void)state;
    ss_store *s = mk(0, 2);
    int g = SPARK_G_TARGET_EXECUTORS;
    assert_int_equal(put_app(s, 2, "a", g, 1, 1, 1), STORE_E_CLUSTER);
    assert_int_equal(put_app(s, -1, "a", g, 1, 1, 1), STORE_E_CLUSTER);
    spark_metric m = app_m(0, "a", g);
    m.kind = SPARK_KIND_NONE;
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_E_INVAL);
    m = app_m(0, "a", g);
    m.app = NULL;
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_E_INVAL);
    m = app_m(0, "a", g);
    m.app_len = 0;
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_E_INVAL);
    char longid[STORE_MAX_ID + 2];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(put_app(s, 0, longid, g, 1, 1, 1), STORE_E_INVAL);
    longid[STORE_MAX_ID] = '\0';
    assert_int_equal(put_app(s, 0, longid, g, 1, 1, 1), STORE_CHANGED);   /* at the bound */
    assert_string_equal(store_app_id(store_app_find(s, 0, longid, STORE_MAX_ID)), longid);
    m = app_m(0, "a\0b", g);
    m.app_len = 3;
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_E_INVAL);
    m = app_m(0, "a", 999);
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_E_INVAL);
    m = unknown_m(SPARK_KIND_APP, 0, "a", "x");
    m.name = NULL;
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_E_INVAL);
    m = src_m(SPARK_KIND_WORKER, 0, SPARK_G_WORKER_EXECUTORS);
    assert_int_equal(store_put(s, &m, longid, 1, 1, 1), STORE_CHANGED);
    longid[STORE_MAX_ID] = 'x';
    assert_int_equal(store_put(s, &m, longid, 1, 1, 1), STORE_E_INVAL);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.rejected_cluster, 2);
    assert_int_equal(st.rejected_invalid, 8);
    assert_int_equal(st.apps, 1);
    assert_int_equal(st.workers, 1);
    assert_int_equal(store_app_count(s, 0), 1);
    store_destroy(s);
}

/* The dirty queue remembers when a cluster first became dirty: the start of
 * the reaction-time clock, kept until the cluster is taken. */
static void test_dirty_since(void **state)
{
    (void)state;
    ss_store *s = mk(0, 3);
    int g = SPARK_G_TARGET_EXECUTORS;
    store_dirty d[4];
    store_set_clock(s, 1000);
    assert_int_equal(put_app(s, 1, "a", g, 1000, 1, 1), STORE_CHANGED);
    store_set_clock(s, 2000);
    assert_int_equal(put_app(s, 1, "a", g, 2000, 2, 2), STORE_CHANGED);  /* still dirty since 1000 */
    assert_int_equal(put_app(s, 2, "a", g, 2000, 2, 2), STORE_CHANGED);
    assert_int_equal(store_take_dirty(s, d, 4), 2);
    assert_int_equal(d[0].cluster, 1);
    assert_int_equal(d[0].since_us, 1000);
    assert_int_equal(d[1].cluster, 2);
    assert_int_equal(d[1].since_us, 2000);
    store_set_clock(s, 3000);
    assert_int_equal(put_app(s, 1, "a", g, 3000, 3, 3), STORE_CHANGED);  /* a new change, a new clock */
    assert_int_equal(store_take_dirty(s, d, 4), 1);
    assert_int_equal(d[0].since_us, 3000);
    store_destroy(s);
}

static void test_dirty(void **state)
{
    (void)state;
    ss_store *s = mk(0, 5);
    int g = SPARK_G_TARGET_EXECUTORS;
    store_dirty d[8];
    assert_int_equal(store_take_dirty(s, d, 8), 0);
    assert_int_equal(put_app(s, 3, "a", g, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 1, "a", g, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 3, "b", g, 1000, 1, 1), STORE_CHANGED);
    spark_metric m = src_m(SPARK_KIND_MASTER, 4, SPARK_G_MASTER_APPS);
    assert_int_equal(store_put(s, &m, NULL, 1000, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 1, "a", g, 2000, 2, 1), STORE_CHANGED);
    assert_int_equal(store_take_dirty(s, d, 2), 2);     /* partial drain */
    assert_int_equal(d[0].cluster, 3);
    assert_int_equal(d[1].cluster, 1);
    assert_int_equal(put_app(s, 3, "a", g, 2000, 5, 2), STORE_CHANGED);  /* re-dirty behind 4 */
    assert_int_equal(store_take_dirty(s, d, 8), 2);
    assert_int_equal(d[0].cluster, 4);
    assert_int_equal(d[1].cluster, 3);
    assert_int_equal(store_take_dirty(s, d, 8), 0);
    /* unchanged values leave the list empty */
    assert_int_equal(put_app(s, 3, "a", g, 3000, 5, 3), STORE_UNCHANGED);
    assert_int_equal(store_take_dirty(s, d, 8), 0);
    /* by hand, deduped with puts, out-of-range ignored */
    store_mark_dirty(s, 2);
    store_mark_dirty(s, 99);
    store_mark_dirty(s, -1);
    store_mark_dirty(s, 2);
    assert_int_equal(put_app(s, 0, "z", g, 1, 1, 1), STORE_CHANGED);
    assert_int_equal(put_app(s, 2, "z", g, 1, 1, 1), STORE_CHANGED);
    assert_int_equal(store_take_dirty(s, d, 8), 2);
    assert_int_equal(d[0].cluster, 2);
    assert_int_equal(d[1].cluster, 0);
    /* all clusters dirty at once, twice around the queue */
    for (int round = 0; round < 2; round++) {
        for (int c = 4; c >= 0; c--)
            store_mark_dirty(s, c);
        assert_int_equal(store_take_dirty(s, d, 8), 5);
        for (int i = 0; i < 5; i++)
            assert_int_equal(d[i].cluster, 4 - i);
    }
    store_destroy(s);
}

static void test_expire(void **state)
{
    (void)state;
    ss_store *s = mk(0, 2);
    int g = SPARK_G_TARGET_EXECUTORS;
    store_dirty d[4];
    assert_int_equal(put_app(s, 0, "old", g, 1000, 1, 1000), STORE_CHANGED);
    assert_int_equal(put_app(s, 0, "new", g, 1000, 1, 5000), STORE_CHANGED);
    assert_int_equal(put_app(s, 1, "old", g, 1000, 1, 1000), STORE_CHANGED);
    spark_metric w = src_m(SPARK_KIND_WORKER, 0, SPARK_G_WORKER_CORES_USED);
    assert_int_equal(store_put(s, &w, "10.0.0.1", 1000, 1, 1000), STORE_CHANGED);
    assert_int_equal(store_put(s, &w, "10.0.0.2", 1000, 1, 4000), STORE_CHANGED);
    spark_metric m = src_m(SPARK_KIND_MASTER, 0, SPARK_G_MASTER_APPS);
    assert_int_equal(store_put(s, &m, NULL, 1000, 1, 1000), STORE_CHANGED);
    store_take_dirty(s, d, 4);

    /* not seen for exactly expiry_ms: kept; longer: removed */
    assert_int_equal(store_expire(s, 0, 3000, 2000), 0);
    assert_int_equal(store_take_dirty(s, d, 4), 0);
    assert_int_equal(store_expire(s, 0, 3001, 2000), 2);
    assert_int_equal(store_take_dirty(s, d, 4), 1);
    assert_int_equal(d[0].cluster, 0);
    assert_null(store_app_find(s, 0, "old", 3));
    assert_non_null(store_app_find(s, 0, "new", 3));
    assert_non_null(store_app_find(s, 1, "old", 3));   /* other cluster untouched */
    assert_int_equal(store_app_count(s, 0), 1);
    assert_int_equal(store_worker_count(s, 0), 1);
    assert_string_equal(store_worker_source(store_worker_at(s, 0, 0)), "10.0.0.2");
    /* the master pseudo-source does not expire */
    assert_int_equal(store_master_latest(s, 0, SPARK_G_MASTER_APPS, NULL, NULL), 0);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.expired_apps, 1);
    assert_int_equal(st.expired_workers, 1);
    assert_int_equal(st.apps, 2);
    assert_int_equal(st.workers, 1);
    assert_int_equal(st.series, 4);
    /* a returning app starts afresh */
    assert_int_equal(put_app(s, 0, "old", g, 500, 1, 9000), STORE_CHANGED);
    const store_app *a = store_app_find(s, 0, "old", 3);
    assert_int_equal(store_app_first_seen_ms(a), 9000);
    assert_int_equal(store_series_len(store_app_series_at(a, 0)), 1);
    assert_int_equal(store_expire(s, 0, 100000, -1), 0);
    assert_int_equal(store_expire(s, 5, 100000, 1), 0);
    assert_int_equal(store_expire(s, 0, 100000, 1), 3);
    assert_int_equal(store_app_count(s, 0), 0);
    assert_int_equal(store_worker_count(s, 0), 0);
    store_destroy(s);
}

/* Removals swap-remove from the per-cluster array and backward-shift the
 * hash table: every remaining app must still be reachable both ways. */
static void test_iteration_after_removals(void **state)
{
    (void)state;
    enum { N = 300 };
    store_limits lim = {0};
    lim.max_apps_per_cluster = N;
    ss_store *s = store_create(&lim, 3);
    assert_non_null(s);
    char id[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(id, sizeof(id), "app-%d", i);
            /* apps with i % 3 == round are stale at the expiry below */
            int64_t now = (i % 3 == round) ? 1000 : 9000;
            assert_true(put_app(s, 1, id, SPARK_G_TARGET_EXECUTORS, 1000 * (round + 1), i, now) >= 0);
            assert_true(put_app(s, 2, id, SPARK_G_TARGET_EXECUTORS, 1000 * (round + 1), i, 9000) >= 0);
        }
        assert_int_equal(store_app_count(s, 1), N);
        assert_int_equal(store_expire(s, 1, 10000, 5000), N / 3);
        assert_int_equal(store_app_count(s, 1), N - N / 3);
        char seen[N] = {0};
        for (size_t k = 0; k < store_app_count(s, 1); k++) {
            const store_app *a = store_app_at(s, 1, k);
            assert_non_null(a);
            int i = atoi(store_app_id(a) + 4);
            assert_true(i >= 0 && i < N);
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
            assert_true(i % 3 != round);
            assert_ptr_equal(store_app_find(s, 1, store_app_id(a), strlen(store_app_id(a))), a);
            double v;
            assert_int_equal(store_app_latest(a, SPARK_G_TARGET_EXECUTORS, &v, NULL), 0);
            assert_true(v == (double)i);
        }
        for (int i = 0; i < N; i++) {
            snprintf(id, sizeof(id), "app-%d", i);
            assert_true((store_app_find(s, 1, id, strlen(id)) != NULL) == (i % 3 != round));
            assert_non_null(store_app_find(s, 2, id, strlen(id)));
        }
        assert_null(store_app_at(s, 1, N - N / 3));
    }
    store_destroy(s);
}

/* The scale bar, functionally: 10,000 clusters x 5 apps x 10 series. */
static void test_scale_10k_clusters(void **state)
{
    (void)state;
    enum { NC = 10000, NA = 5, NS = 10, NSAMP = 3 };
    ss_store *s = mk(16, NC);
    char id[40];
    for (int t = 0; t < NSAMP; t++)
        for (int c = 0; c < NC; c++)
            for (int a = 0; a < NA; a++) {
                snprintf(id, sizeof(id), "app-20261121093000-%04d", a);
                for (int g = 0; g < NS; g++)
                    assert_true(put_app(s, c, id, g, 1700000000000LL + t * 10000, c + a + g + t,
                                        1000 + t) >= 0);
            }
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.apps, NC * NA);
    assert_int_equal(st.series, (uint64_t)NC * NA * NS);
    assert_int_equal(st.rejected_cap_apps + st.rejected_cap_series + st.rejected_old, 0);
    /* History (16 samples of 12 bytes) for the 3 app gauges the decider
     * and charts read, the latest sample alone for the other 7; with the
     * headers and entities, under 1.2 KB an app. */
    uint64_t ring = (uint64_t)NC * NA * 3 * 16 * 12;
    assert_true(st.bytes > ring);
    assert_true(st.bytes < (uint64_t)NC * NA * 1200);
    assert_true(st.bytes < 70u * 1024 * 1024);
    store_dirty *d = malloc(NC * sizeof(*d));
    assert_non_null(d);
    assert_int_equal(store_take_dirty(s, d, NC), NC);
    for (int c = 0; c < NC; c++)
        assert_int_equal(d[c].cluster, c);
    free(d);
    for (int c = 0; c < NC; c += 37) {
        assert_int_equal(store_app_count(s, c), NA);
        for (int a = 0; a < NA; a++) {
            snprintf(id, sizeof(id), "app-20261121093000-%04d", a);
            const store_app *ap = store_app_find(s, c, id, strlen(id));
            assert_non_null(ap);
            assert_int_equal(store_app_series_count(ap), NS);
            for (int g = 0; g < NS; g++) {
                double v;
                int64_t ts;
                assert_int_equal(store_app_latest(ap, g, &v, &ts), 0);
                assert_true(v == (double)(c + a + g + NSAMP - 1));
                assert_int_equal(ts, 1700000000000LL + (NSAMP - 1) * 10000);
            }
            /* history gauges keep every sample, the others the latest */
            size_t hist = 0;
            for (size_t i = 0; i < NS; i++) {
                const store_series *se = store_app_series_at(ap, i);
                int g = store_series_gauge(se);
                int keeps = g == SPARK_G_TARGET_EXECUTORS || g == SPARK_G_ALL_EXECUTORS ||
                            g == SPARK_G_MAX_NEEDED_EXECUTORS;
                hist += (size_t)keeps;
                assert_int_equal(store_series_len(se), keeps ? NSAMP : 1);
            }
            assert_int_equal(hist, 3);
        }
    }
    /* expiring everything returns the memory */
    size_t removed = 0;
    for (int c = 0; c < NC; c++)
        removed += store_expire(s, c, 100000, 1000);
    assert_int_equal(removed, NC * NA);
    store_stats st2;
    store_get_stats(s, &st2);
    assert_int_equal(st2.apps, 0);
    assert_int_equal(st2.series, 0);
    assert_true(st2.bytes < st.bytes / 20);
    store_destroy(s);
}

/* The packed worker summary agrees with the sources, through removals
 * (swap-remove moves the last worker into the hole). */
static void test_workers_summary(void **state)
{
    (void)state;
    ss_store *s = mk(4, 2);
    spark_metric cores = src_m(SPARK_KIND_WORKER, 1, SPARK_G_WORKER_CORES_USED);
    spark_metric execs = src_m(SPARK_KIND_WORKER, 1, SPARK_G_WORKER_EXECUTORS);
    char host[32];
    /* w0..w5: even ones busy; w5 sends no coresUsed (unknown) */
    for (int i = 0; i < 6; i++) {
        snprintf(host, sizeof host, "10.0.0.%d", i);
        if (i == 5)
            assert_true(store_put(s, &execs, host, 1000, 1, 1000 + i) >= 0);
        else
            assert_true(store_put(s, &cores, host, 1000, (i % 2 == 0) ? 4 : 0, 1000 + i) >= 0);
    }
    store_workers_sum ws;
    store_workers_summary(s, 1, 2000, 5000, &ws);
    assert_int_equal(ws.known, 5);
    assert_int_equal(ws.busy, 3);
    assert_int_equal(ws.oldest_seen_ms, 1000);
    /* a busy worker goes idle; a newer sample counts, an older one not */
    assert_true(store_put(s, &cores, "10.0.0.0", 2000, 0, 3000) >= 0);
    assert_int_equal(store_put(s, &cores, "10.0.0.0", 1500, 8, 3001), STORE_E_OLD);
    store_workers_summary(s, 1, 3000, 5000, &ws);
    assert_int_equal(ws.busy, 2);
    size_t idle = 0;
    for (size_t i = 0; i < store_worker_count(s, 1); i++)
        idle += (size_t)store_worker_idle(s, 1, i, 3000, 5000);
    assert_int_equal(idle, 3);   /* w0, w1, w3 */
    /* staleness: only w0 was refreshed at 3000 */
    store_workers_summary(s, 1, 7500, 5000, &ws);
    assert_int_equal(ws.known, 1);
    assert_int_equal(ws.busy, 0);
    /* expire all but w0: the summary follows the moved entries */
    assert_int_equal(store_expire(s, 1, 7500, 5000), 5);
    store_workers_summary(s, 1, 7500, 5000, &ws);
    assert_int_equal(ws.known, 1);
    assert_int_equal(ws.oldest_seen_ms, 3000);
    assert_int_equal(store_worker_count(s, 1), 1);
    assert_string_equal(store_worker_source(store_worker_at(s, 1, 0)), "10.0.0.0");
    assert_true(store_worker_idle(s, 1, 0, 7500, 5000));
    /* and none left */
    assert_int_equal(store_expire(s, 1, 20000, 5000), 1);
    store_workers_summary(s, 1, 20000, 5000, &ws);
    assert_int_equal(ws.known, 0);
    assert_int_equal(ws.oldest_seen_ms, INT64_MAX);
    store_destroy(s);
}

/* A sender's hint finds its app without the table, and is void once the
 * store removed anything (ASan would see a read of the freed app). */
static void test_sender_hint(void **state)
{
    (void)state;
    ss_store *s = mk(4, 2);
    int64_t ts;
    store_hint ha = { 0 }, hb = { 0 };
    spark_metric a = app_m(0, "app-a", SPARK_G_TARGET_EXECUTORS);
    spark_metric b = app_m(0, "app-b", SPARK_G_TARGET_EXECUTORS);
    for (int t = 1; t <= 4; t++) {   /* two senders, line by line */
        assert_true(store_put_hinted(s, &a, NULL, t * 1000, t, t * 1000, &ha) >= 0);
        assert_true(store_put_hinted(s, &b, NULL, t * 1000, 10 + t, t * 1000, &hb) >= 0);
    }
    assert_ptr_equal(ha.e, store_app_find(s, 0, "app-a", 5));
    assert_ptr_equal(hb.e, store_app_find(s, 0, "app-b", 5));
    assert_true(app_latest(s, 0, "app-a", SPARK_G_TARGET_EXECUTORS, &ts) == 4);
    assert_true(app_latest(s, 0, "app-b", SPARK_G_TARGET_EXECUTORS, &ts) == 14);
    /* app-a expires; its sender comes back with the old hint */
    assert_true(store_put_hinted(s, &b, NULL, 9000, 20, 9000, &hb) >= 0);
    assert_int_equal(store_expire(s, 0, 9000, 3000), 1);
    assert_int_equal(store_put_hinted(s, &a, NULL, 9000, 7, 9000, &ha), STORE_CHANGED);
    assert_int_equal(store_app_count(s, 0), 2);
    assert_true(app_latest(s, 0, "app-a", SPARK_G_TARGET_EXECUTORS, &ts) == 7);
    assert_ptr_equal(ha.e, store_app_find(s, 0, "app-a", 5));
    store_destroy(s);
}

static void test_stats_bytes(void **state)
{
    (void)state;
    ss_store *s = mk(16, 4);
    store_stats st0, st1, st2;
    store_get_stats(s, &st0);
    assert_true(st0.bytes > 0);
    assert_true(st0.bytes < 64 * 1024);
    for (int g = 0; g < 10; g++)
        assert_int_equal(put_app(s, 2, "app-1", g, 1000, g, 1), STORE_CHANGED);
    store_get_stats(s, &st1);
    /* 3 history series of 16 samples (12 bytes each), 7 of the latest
     * sample: at least that, not wildly more */
    assert_true(st1.bytes - st0.bytes >= 3 * 16 * 12 + 7 * 12);
    assert_true(st1.bytes - st0.bytes < 3 * 16 * 12 + 7 * 12 + 2048);
    /* steady-state puts do not grow memory */
    for (int t = 2; t < 100; t++)
        for (int g = 0; g < 10; g++)
            assert_true(put_app(s, 2, "app-1", g, t * 1000, g * t, t) >= 0);
    store_get_stats(s, &st2);
    assert_int_equal(st2.bytes, st1.bytes);
    assert_int_equal(store_expire(s, 2, 1000, 1), 1);
    store_get_stats(s, &st2);
    assert_true(st2.bytes < st0.bytes + 256);   /* only the cluster's emptied app list stays */
    store_destroy(s);
}

/* max_bytes bounds the store whatever arrives: a flood of new apps, gauge
 * names or worker sources is refused past it (cap_bytes), existing series
 * keep taking samples, and memory freed by expiry makes room again. */
static void test_max_bytes(void **state)
{
    (void)state;
    store_limits lim = { .max_apps_per_cluster = 1000000, .max_apps = 1000000,
                         .max_series_per_app = 250, .max_workers_per_cluster = 1000000,
                         .max_bytes = 256 * 1024 };
    ss_store *s = store_create(&lim, 2);
    assert_non_null(s);
    char id[64];
    int refused = 0;
    for (int i = 0; i < 10000 && !refused; i++) {
        snprintf(id, sizeof id, "app-20261121093000-%05d-with-a-longer-namespace", i);
        refused = put_app(s, 0, id, SPARK_G_TARGET_EXECUTORS, 1000, 1, 1) == STORE_E_CAP_BYTES;
    }
    assert_true(refused);
    store_stats st;
    store_get_stats(s, &st);
    assert_true(st.bytes <= 256 * 1024);
    assert_true(st.rejected_cap_bytes >= 1);
    /* unknown gauge names and worker sources hit the same bound */
    spark_metric u = unknown_m(SPARK_KIND_APP, 0, "app-20261121093000-00000-with-a-longer-namespace", "x");
    char name[64];
    snprintf(name, sizeof name, "someFutureGaugeWithAVeryLongName%d", 1);
    u.name = name;
    u.name_len = strlen(name);
    assert_int_equal(store_put(s, &u, NULL, 1000, 1, 1), STORE_E_CAP_BYTES);
    spark_metric w = src_m(SPARK_KIND_WORKER, 1, SPARK_G_WORKER_CORES_USED);
    assert_int_equal(store_put(s, &w, "10.9.9.9", 1000, 1, 1), STORE_E_CAP_BYTES);
    /* a series that exists still takes samples */
    assert_int_equal(put_app(s, 0, "app-20261121093000-00000-with-a-longer-namespace",
                             SPARK_G_TARGET_EXECUTORS, 2000, 5, 2), STORE_CHANGED);
    /* expiry frees room */
    assert_true(store_expire(s, 0, 100000, 10) > 0);
    store_get_stats(s, &st);
    assert_true(st.bytes_freed > 0);
    assert_int_equal(store_put(s, &w, "10.9.9.9", 1000, 1, 100000), STORE_CHANGED);
    store_destroy(s);
}

static void test_defaults_and_destroy(void **state)
{
    (void)state;
    store_destroy(NULL);
    ss_store *s = store_create(NULL, 0);
    assert_non_null(s);
    assert_int_equal(put_app(s, 0, "a", 0, 1, 1, 1), STORE_E_CLUSTER);
    store_dirty d[1];
    assert_int_equal(store_take_dirty(s, d, 1), 0);
    store_destroy(s);
    /* default series cap is 24: known + unknown */
    s = store_create(NULL, 1);
    assert_non_null(s);
    int ok = 0;
    char name[32];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        spark_metric u = unknown_m(SPARK_KIND_APP, 0, "a", name);
        ok += store_put(s, &u, NULL, 1, 1, 1) == STORE_CHANGED;
    }
    assert_int_equal(ok, 24);
    /* leave apps, workers, master and unknown names for destroy to free */
    spark_metric w = unknown_m(SPARK_KIND_WORKER, 0, NULL, "x");
    assert_int_equal(store_put(s, &w, "h", 1, 1, 1), STORE_CHANGED);
    spark_metric m = unknown_m(SPARK_KIND_MASTER, 0, NULL, "y");
    assert_int_equal(store_put(s, &m, NULL, 1, 1, 1), STORE_CHANGED);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_latest_app),
        cmocka_unit_test(test_put_latest_master_worker),
        cmocka_unit_test(test_ring_wrap),
        cmocka_unit_test(test_changed_unchanged),
        cmocka_unit_test(test_same_ts_overwrite),
        cmocka_unit_test(test_older_dropped),
        cmocka_unit_test(test_ts_rebase),
        cmocka_unit_test(test_cap_apps),
        cmocka_unit_test(test_cap_series),
        cmocka_unit_test(test_cap_workers),
        cmocka_unit_test(test_unknown_by_name),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_dirty),
        cmocka_unit_test(test_dirty_since),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_iteration_after_removals),
        cmocka_unit_test(test_scale_10k_clusters),
        cmocka_unit_test(test_workers_summary),
        cmocka_unit_test(test_sender_hint),
        cmocka_unit_test(test_stats_bytes),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_defaults_and_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
