/* test_pipeline.c: the per-line path shared by the TCP and UDP listeners:
 * every line ends up stored, skipped or counted under one drop reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ingest/pipeline.h"
#include "ingest/source.h"

#define EAM ".driver.ExecutorAllocationManager.executors."

typedef struct fx {
    spark_prefixes *prefixes;
    ss_store *store;
    ss_pipeline pipe;
    pipeline_source src;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->prefixes = spark_prefixes_create(2);
    spark_prefixes_add(f->prefixes, "alpha", 0);
    spark_prefixes_add(f->prefixes, "teams.beta", 1);
    store_limits lim = { .max_apps_per_cluster = 2, .max_series_per_app = 3 };
    f->store = store_create(&lim, 2);
    pipeline_init(&f->pipe, f->prefixes, f->store);
    f->pipe.max_skew_ms = 0;   /* the lines below carry fixed timestamps */
    f->src = (pipeline_source){ .pipe = &f->pipe, .peer = "10.0.0.7" };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_destroy(f->store);
    spark_prefixes_destroy(f->prefixes);
    free(f);
    return 0;
}

static void feed(fx *f, const char *text)
{
    char carry[1024];
    pipeline_feed_datagram(&f->src, text, strlen(text), carry, sizeof carry);
}

static void test_each_line_lands_in_one_bucket(void **state)
{
    fx *f = *state;
    feed(f,
         "alpha.app-1" EAM "numberTargetExecutors 4 1700000000\n"      /* stored */
         "alpha.app-1.driver.BlockManager.memory.memUsed_MB 3 1700000000\n" /* skipped */
         "gamma.app-1" EAM "numberTargetExecutors 4 1700000000\n"      /* unknown cluster */
         "alpha" EAM "numberTargetExecutors 4 1700000000\n"            /* no namespace: no cluster */
         "alpha.app-1" EAM " 4 1700000000\n"                            /* bad path: empty gauge */
         "alpha.app-1" EAM "numberTargetExecutors x 1700000000\n"      /* value */
         "alpha.app-1" EAM "numberTargetExecutors 4 -5\n"              /* timestamp */
         "alpha.app-1" EAM "numberTargetExecutors Infinity 1700000000\n" /* nonfinite */
         "lonely\n"                                                     /* fields */
         "\n"                                                           /* empty */
         "teams.beta.worker.coresUsed 2 1700000000");                   /* stored, no '\n' */
    const pipeline_stats *st = &f->pipe.stats;
    assert_int_equal(st->lines, 11);
    assert_int_equal(st->stored, 2);
    assert_int_equal(st->skipped, 1);
    assert_int_equal(st->dropped[PIPE_DROP_UNKNOWN_CLUSTER], 2);
    assert_int_equal(st->dropped[PIPE_DROP_SHAPE], 1);
    assert_int_equal(st->rejected[CARBON_E_VALUE], 1);
    assert_int_equal(st->rejected[CARBON_E_TIMESTAMP], 1);
    assert_int_equal(st->rejected[CARBON_E_NONFINITE], 1);
    assert_int_equal(st->rejected[CARBON_E_FIELDS], 1);
    assert_int_equal(st->rejected[CARBON_E_EMPTY], 1);

    double v;
    int64_t ts;
    const store_app *a = store_app_find(f->store, 0, "app-1", 5);
    assert_non_null(a);
    assert_int_equal(store_app_latest(a, SPARK_G_TARGET_EXECUTORS, &v, &ts), 0);
    assert_true(v == 4);
    assert_int_equal(ts, 1700000000000LL);
    /* Worker gauges are keyed by the sender's address. */
    const store_worker *w = store_worker_at(f->store, 1, 0);
    assert_non_null(w);
    assert_string_equal(store_worker_source(w), "10.0.0.7");
    /* The change started both clusters' reaction clocks. */
    store_dirty d[4];
    assert_int_equal(store_take_dirty(f->store, d, 4), 2);
    assert_true(d[0].since_us > 0);
    assert_true(d[1].since_us > 0);
}

static void test_caps_and_order_are_counted(void **state)
{
    fx *f = *state;
    feed(f,
         "alpha.app-1" EAM "numberTargetExecutors 1 1700000000\n"
         "alpha.app-2" EAM "numberTargetExecutors 1 1700000000\n"
         "alpha.app-3" EAM "numberTargetExecutors 1 1700000000\n"      /* 3rd app: cap 2 */
         "alpha.app-1" EAM "numberAllExecutors 1 1700000000\n"
         "alpha.app-1" EAM "numberMaxNeededExecutors 1 1700000000\n"
         "alpha.app-1" EAM "numberExecutorsToAdd 1 1700000000\n"       /* 4th series: cap 3 */
         "alpha.app-1" EAM "numberTargetExecutors 1 1600000000\n");    /* older than newest */
    const pipeline_stats *st = &f->pipe.stats;
    assert_int_equal(st->stored, 4);
    assert_int_equal(st->dropped[PIPE_DROP_CAP_APPS], 1);
    assert_int_equal(st->dropped[PIPE_DROP_CAP_SERIES], 1);
    assert_int_equal(st->dropped[PIPE_DROP_OLD], 1);
    assert_null(store_app_find(f->store, 0, "app-3", 5));
    for (int i = 0; i < PIPE_DROP_COUNT; i++)
        assert_string_not_equal(pipeline_drop_name(i), "?");
}

/* A poller's already-decoded sample takes the same road as a carbon line:
 * stored, counted, dropped under the store's reason, cluster marked dirty. */
static void test_put_decoded_sample(void **state)
{
    fx *f = *state;
    static const char app[] = "app-20261121093000-0003";
    spark_metric m = { .kind = SPARK_KIND_APP, .cluster = 1, .app = app, .app_len = sizeof app - 1,
                       .name = "numberTargetExecutors", .name_len = 21,
                       .gauge = SPARK_G_TARGET_EXECUTORS };
    pipeline_begin_batch(&f->pipe);
    assert_int_equal(pipeline_put(&f->pipe, &m, NULL, 1700000000000LL, 6), STORE_CHANGED);
    assert_int_equal(pipeline_put(&f->pipe, &m, NULL, 1700000000000LL, 6), STORE_UNCHANGED);
    assert_int_equal(pipeline_put(&f->pipe, &m, NULL, 1600000000000LL, 7), STORE_E_OLD);
    assert_int_equal(f->pipe.stats.stored, 2);
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_OLD], 1);
    assert_int_equal(f->pipe.stats.lines, 0);   /* no carbon line was involved */
    double v;
    int64_t ts;
    const store_app *a = store_app_find(f->store, 1, app, sizeof app - 1);
    assert_non_null(a);
    assert_int_equal(store_app_latest(a, SPARK_G_TARGET_EXECUTORS, &v, &ts), 0);
    assert_true(v == 6);
    store_dirty d[2];
    assert_int_equal(store_take_dirty(f->store, d, 2), 1);
    assert_int_equal(d[0].cluster, 1);
}

static void feedf(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void feedf(fx *f, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    feed(f, buf);
}

/* A line stamped years ahead is refused (timestamp_skew), so it cannot take
 * its series hostage: the real lines after it are stored. */
static void test_future_line_refused(void **state)
{
    fx *f = *state;
    f->pipe.max_skew_ms = 300 * 1000;
    pipeline_begin_batch(&f->pipe);
    long long now = f->pipe.now_ms / 1000;
    feedf(f, "alpha.app-1" EAM "numberTargetExecutors 40 %lld\n", now + 10LL * 365 * 86400);
    feedf(f, "alpha.app-1" EAM "numberTargetExecutors 4 %lld\n", now - 400);   /* too old too */
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_TIMESTAMP_SKEW], 2);
    assert_int_equal(f->pipe.stats.stored, 0);
    assert_int_equal(store_app_count(f->store, 0), 0);   /* nothing created, nothing refreshed */
    assert_int_equal(store_cluster_last_seen_ms(f->store, 0), 0);
    feedf(f, "alpha.app-1" EAM "numberTargetExecutors 4 %lld\n", now);
    feedf(f, "alpha.app-1" EAM "numberTargetExecutors 5 %lld\n", now + 10);
    assert_int_equal(f->pipe.stats.stored, 2);
    double v;
    int64_t ts;
    const store_app *a = store_app_find(f->store, 0, "app-1", 5);
    assert_int_equal(store_app_latest(a, SPARK_G_TARGET_EXECUTORS, &v, &ts), 0);
    assert_true(v == 5);
    assert_string_equal(pipeline_drop_name(PIPE_DROP_TIMESTAMP_SKEW), "timestamp_skew");
}

/* A value no executor count can have (1e308, negative) is refused, not
 * clamped into a decision. Counters and memory have their own bounds. */
static void test_value_range(void **state)
{
    fx *f = *state;
    feed(f, "alpha.app-1" EAM "numberTargetExecutors 1e308 1700000000\n"
            "alpha.app-1" EAM "numberTargetExecutors -3 1700000000\n"
            "alpha.app-1" EAM "numberTargetExecutors 1000001 1700000000\n"
            "alpha.app-1" EAM "numberTargetExecutors 999999 1700000000\n"
            "alpha.app-1" EAM "numberExecutorsKilledByDriver.count 50000000 1700000000\n"
            "alpha.worker.memUsed_MB 500000 1700000000\n"
            "alpha.master.aliveWorkers 1e9 1700000000\n");
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_VALUE_RANGE], 4);
    assert_int_equal(f->pipe.stats.stored, 3);
    spark_metric m = { .kind = SPARK_KIND_APP, .gauge = SPARK_G_TARGET_EXECUTORS };
    assert_true(pipeline_value_plausible(&m, 0));
    /* A poller's sample with a control character in its app id is refused too. */
    static const char bad[] = "app-\x1b[31m";
    spark_metric b = { .kind = SPARK_KIND_APP, .cluster = 0, .app = bad, .app_len = sizeof bad - 1,
                       .name = "numberTargetExecutors", .name_len = 21,
                       .gauge = SPARK_G_TARGET_EXECUTORS };
    assert_int_equal(pipeline_put(&f->pipe, &b, NULL, 1700000000000LL, 1), STORE_E_INVAL);
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_ENCODING], 1);
    assert_false(pipeline_value_plausible(&m, 0.0 / 0.0));
}

/* Invalid UTF-8 in a path never reaches the store (protobuf strings, logs
 * and JSON need it valid); over-long ids get their own reasons, not
 * unknown_cluster. */
static void test_encoding_and_lengths(void **state)
{
    fx *f = *state;
    char longid[300];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    feed(f, "alpha.app-\xff\xfe" EAM "numberTargetExecutors 4 1700000000\n"
            "alpha.app-1" EAM "numberTarget\xc3\x28 4 1700000000\n"
            "alpha.app-\xc3\xa9" EAM "numberTargetExecutors 4 1700000000\n");  /* é: fine */
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_ENCODING], 2);
    assert_int_equal(f->pipe.stats.stored, 1);
    feedf(f, "alpha.%s" EAM "numberTargetExecutors 4 1700000000\n", longid);
    feedf(f, "alpha.app-1" EAM "%s 4 1700000000\n", longid);
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_APP_ID_TOO_LONG], 1);
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_NAME_TOO_LONG], 1);
    assert_int_equal(f->pipe.stats.dropped[PIPE_DROP_UNKNOWN_CLUSTER], 0);
}

/* A listener's turn budget sizes reads to the time left: cheap lines get
 * whole buffers, costly ones smaller reads, never below the floor. */
static void test_turn_budget_read_size(void **state)
{
    (void)state;
    ss_turn_budget b = {0};
    /* nothing measured yet: the whole buffer */
    assert_int_equal(ss_turn_budget_read_size(&b, 1500, 4096, 65536), 65536);
    /* a first read: 64 KiB cost 64 ms (a costly flood) */
    ss_turn_budget_begin(&b);
    b.read_us -= 64000;
    b.t0_us = b.read_us;
    assert_int_equal(ss_turn_budget_spend(&b, 65536, 1u << 30, 1500), 1);
    assert_true(b.ns_per_kib >= 1000000 && b.ns_per_kib < 1100000);
    /* a new turn: 1.5 ms at ~1 ms per KiB is one or two KiB: the floor */
    ss_turn_budget_reset(&b);
    assert_int_equal(ss_turn_budget_read_size(&b, 1500, 4096, 65536), 4096);
    /* cheap lines: 1 us per KiB, 1.5 ms is ~1.5 MB: capped at the buffer */
    b.ns_per_kib = 1000;
    assert_int_equal(ss_turn_budget_read_size(&b, 1500, 4096, 65536), 65536);
    /* in between: 100 us per KiB fits 15 KiB */
    b.ns_per_kib = 100000;
    assert_int_equal(ss_turn_budget_read_size(&b, 1500, 4096, 65536), 15 * 1024);
    /* the turn's time is spent: the floor */
    b.bytes = 1;
    b.t0_us = ss_mono_us() - 2000;
    assert_int_equal(ss_turn_budget_read_size(&b, 1500, 4096, 65536), 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turn_budget_read_size),
        cmocka_unit_test_setup_teardown(test_each_line_lands_in_one_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps_and_order_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_decoded_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_line_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoding_and_lengths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
