/* test_poll_jolokia.c: a driver's Jolokia answer in sparkscaled, over
 * answers recorded from the real Jolokia agent on a real Spark 3.5.9 driver
 * (tests/fixtures/jolokia/): samples stored under the same app id and gauge
 * names as the same driver's GraphiteSink lines, with the same values at
 * the same report; Spark 2 and quoted names; absent MBeans, failed reads
 * inside an HTTP 200, bodies that are not Jolokia's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest/poll_jolokia.h"
#include "lib/spark/jolokia.h"
#include "tests/unit/fixture.h"

typedef struct fx {
    spark_prefixes *prefixes;
    ss_store *store;
    ss_pipeline pipe;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->prefixes = spark_prefixes_create(2);
    spark_prefixes_add(f->prefixes, "capture", 0);   /* the carbon feed of cluster 0 */
    f->store = store_create(NULL, 2);
    pipeline_init(&f->pipe, f->prefixes, f->store);
    f->pipe.max_skew_ms = 0;   /* the recorded answers carry the time of their capture */
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

static char *load(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "jolokia/%s", name);
    char *s = fixture_read(path, len);
    if (!s)
        fail_msg("cannot read %s", path);
    return s;
}

static poll_result answer(fx *f, int c, const char *name, poll_jolokia_counts *n, char *err,
                          size_t errlen)
{
    size_t len;
    char *body = load(name, &len);
    poll_result r = poll_jolokia_answer(&f->pipe, c, body, len, n, err, errlen);
    free(body);
    return r;
}

/* Every carbon line of the file whose timestamp is ts, through the carbon path. */
static void feed_graphite(fx *f, const char *name, long ts)
{
    size_t len;
    char *text = load(name, &len);
    pipeline_source src = { .pipe = &f->pipe, .peer = "127.0.0.1" };
    char *save = NULL;
    text = realloc(text, len + 1);
    text[len] = '\0';
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *sp = strrchr(line, ' ');
        if (sp && atol(sp + 1) == ts)
            pipeline_on_line(&src, line, strlen(line), CARBON_OK);
    }
    free(text);
}

/* Apps of cluster a and b hold the same series (name and newest value). */
static void assert_same_apps(fx *f, int a, int b, size_t want_series)
{
    assert_int_equal(store_app_count(f->store, a), 1);
    assert_int_equal(store_app_count(f->store, b), 1);
    const store_app *x = store_app_at(f->store, a, 0), *y = store_app_at(f->store, b, 0);
    assert_string_equal(store_app_id(x), store_app_id(y));
    assert_int_equal(store_app_series_count(x), want_series);
    assert_int_equal(store_app_series_count(y), want_series);
    for (size_t i = 0; i < store_app_series_count(x); i++) {
        const store_series *sx = store_app_series_at(x, i);
        const store_series *sy = NULL;
        for (size_t k = 0; k < store_app_series_count(y); k++)
            if (strcmp(store_series_name(store_app_series_at(y, k)), store_series_name(sx)) == 0)
                sy = store_app_series_at(y, k);
        if (!sy)
            fail_msg("%s only in one feed", store_series_name(sx));
        int64_t tx, ty;
        double vx, vy;
        assert_int_equal(store_series_sample(sx, 0, &tx, &vx), 0);
        assert_int_equal(store_series_sample(sy, 0, &ty, &vy), 0);
        if (vx != vy || tx != ty)
            fail_msg("%s: jolokia %g at %lld, carbon %g at %lld", store_series_name(sx), vx,
                     (long long)tx, vy, (long long)ty);
    }
}

static void test_body_and_url(void **state)
{
    (void)state;
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(poll_jolokia_body(&body, &len), 0);
    json_t *j = json_loadb(body, len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 4);
    const char *want[][2] = {
        { SS_JOLOKIA_EAM_GAUGES, "Value" }, { SS_JOLOKIA_EAM_COUNTERS, "Count" },
        { SS_JOLOKIA_EAM_UNTYPED, "Value" }, { SS_JOLOKIA_EAM_UNTYPED, "Count" },
    };
    for (size_t i = 0; i < 4; i++) {
        json_t *r = json_array_get(j, i);
        assert_string_equal(json_string_value(json_object_get(r, "type")), "read");
        assert_string_equal(json_string_value(json_object_get(r, "mbean")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(r, "attribute")), want[i][1]);
        assert_true(json_is_true(json_object_get(json_object_get(r, "config"), "ignoreErrors")));
    }
    json_decref(j);
    free(body);

    const char *cases[][2] = {
        { "http://d:8778/jolokia/", "http://d:8778/jolokia/" },
        { "http://d:8778/jolokia", "http://d:8778/jolokia" },
        { "http://d:8778", "http://d:8778/jolokia/" },
        { "http://d:8778/", "http://d:8778/jolokia/" },
        { "https://u:p@d:8778/custom/", "https://u:p@d:8778/custom/" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *u = poll_jolokia_url(cases[i][0]);
        assert_string_equal(u, cases[i][1]);
        free(u);
    }
}

/* The same driver's Jolokia bulk and GraphiteSink report of the same
 * second: same app id, same gauge and counter names, same values. */
static void test_same_as_carbon(void **state)
{
    fx *f = *state;
    poll_jolokia_counts n;
    char err[256] = "";
    const struct { const char *bulk; long ts; } reports[] = {
        { "eam_bulk_5.json", 1796135811 },   /* decommissioning 2 */
        { "eam_bulk_7.json", 1796135812 },   /* gracefully decommissioned 2 */
    };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(answer(f, 1, reports[i].bulk, &n, err, sizeof err), POLL_OK);
        assert_int_equal(n.reads_ok, 2);
        assert_int_equal(n.reads_absent, 0);   /* recorded with the typed pair only */
        assert_int_equal(n.reads_failed, 0);
        assert_int_equal(n.samples, 10);
        assert_int_equal(n.stored, 10);
        feed_graphite(f, "graphite_same_driver.txt", reports[i].ts);
        assert_same_apps(f, 1, 0, 10);
    }
    const store_app *a = store_app_at(f->store, 1, 0);
    assert_string_equal(store_app_id(a), "app-20261201143622-0000");
    double v;
    int64_t ts;
    assert_int_equal(store_app_latest(a, SPARK_G_GRACEFULLY_DECOMMISSIONED, &v, &ts), 0);
    assert_true(v == 2);
    assert_int_equal(ts, 1796135812000LL);
    /* Counters keep their Spark names (no ".count"), as carbon's do. */
    int found = 0;
    for (size_t i = 0; i < store_app_series_count(a); i++)
        found += strcmp(store_series_name(store_app_series_at(a, i)),
                        "numberExecutorsKilledByDriver") == 0;
    assert_int_equal(found, 1);
}

/* Spark 3 with a namespace that needs quoting: type-less MBeans, matched by
 * the type-less pair; the app id is the namespace unquoted, as the sink sends it. */
static void test_quoted_namespace(void **state)
{
    fx *f = *state;
    poll_jolokia_counts n;
    char err[256] = "";
    assert_int_equal(answer(f, 1, "quoted_namespace_no_type.json", &n, err, sizeof err), POLL_OK);
    assert_int_equal(n.stored, 10);
    feed_graphite(f, "quoted_namespace_graphite.txt", 1796135897);
    assert_same_apps(f, 1, 0, 10);
    assert_string_equal(store_app_id(store_app_at(f->store, 1, 0)), "etl:nightly");
    /* The typed pair on those names: nothing matches. */
    assert_int_equal(answer(f, 1, "quoted_namespace_typed_pattern_404.json", &n, err, sizeof err),
                     POLL_NO_MBEANS);
}

/* Spark 2 names (no type key; constructed, see the README): gauges only. */
static void test_spark2(void **state)
{
    fx *f = *state;
    poll_jolokia_counts n;
    char err[256] = "";
    assert_int_equal(answer(f, 0, "spark2_constructed.json", &n, err, sizeof err), POLL_OK);
    assert_true(n.stored >= 5);
    const store_app *a = store_app_find(f->store, 0, "app-20261201143622-0000",
                                        strlen("app-20261201143622-0000"));
    assert_non_null(a);
    double v;
    int64_t ts;
    assert_int_equal(store_app_latest(a, SPARK_G_TARGET_EXECUTORS, &v, &ts), 0);
    assert_true(v == 2);
}

/* Before the driver registers its metrics and after the app stops: every
 * read 404 InstanceNotFound: no MBeans, nothing stored, no failure. */
static void test_no_mbeans(void **state)
{
    fx *f = *state;
    poll_jolokia_counts n;
    char err[256] = "";
    const char *files[] = { "eam_bulk_1.json", "eam_bulk_8.json", "spark2_pattern_on_spark3.json" };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(answer(f, 0, files[i], &n, err, sizeof err), POLL_NO_MBEANS);
        assert_int_equal(n.reads_absent, 2);
        assert_int_equal(n.stored, 0);
    }
    assert_non_null(strstr(err, "JmxSink"));
    assert_int_equal(store_app_count(f->store, 0), 0);
    assert_int_equal(store_cluster_last_seen_ms(f->store, 0), 0);   /* no data */
}

/* Failed reads inside an HTTP 200: with others answered, partial (their
 * samples stored); alone, read_failed. */
static void test_failed_reads(void **state)
{
    fx *f = *state;
    poll_jolokia_counts n;
    char err[512] = "";
    /* A recorded bulk's first read next to a recorded failed read. */
    size_t len;
    char *ok = load("eam_bulk_4.json", &len);
    json_t *bulk = json_loadb(ok, len, 0, NULL);
    free(ok);
    char *bad = load("pattern_attribute_fails.json", &len);
    json_t *failed = json_loadb(bad, len, 0, NULL);
    free(bad);
    json_t *mix = json_array();
    json_array_append(mix, json_array_get(bulk, 0));
    json_array_append(mix, json_array_get(failed, 0));
    char *body = json_dumps(mix, JSON_COMPACT);
    assert_int_equal(poll_jolokia_answer(&f->pipe, 0, body, strlen(body), &n, err, sizeof err),
                     POLL_PARTIAL);
    assert_int_equal(n.reads_ok, 1);
    assert_int_equal(n.reads_failed, 1);
    assert_int_equal(n.stored, 6);
    assert_non_null(strstr(err, "500"));
    assert_non_null(strstr(err, "UnsupportedOperationException"));
    assert_int_equal(store_app_count(f->store, 0), 1);
    free(body);
    json_decref(mix);
    json_decref(bulk);
    json_decref(failed);

    assert_int_equal(answer(f, 0, "pattern_attribute_fails.json", &n, err, sizeof err),
                     POLL_READ_FAILED);
    /* A whole-request error: one object, status 500, with HTTP 200. */
    assert_int_equal(answer(f, 0, "bad_json.json", &n, err, sizeof err), POLL_READ_FAILED);
    assert_non_null(strstr(err, "IllegalStateException"));
}

static void test_not_jolokia(void **state)
{
    fx *f = *state;
    poll_jolokia_counts n;
    char err[256] = "";
    assert_int_equal(answer(f, 0, "bad_request.json", &n, err, sizeof err), POLL_BAD_JSON);
    size_t len;
    char *body = load("eam_bulk_4.json", &len);
    assert_int_equal(poll_jolokia_answer(&f->pipe, 0, body, len - 7, &n, err, sizeof err),
                     POLL_BAD_JSON);   /* truncated */
    free(body);
    const char *bad[] = { "", "{}", "[{\"value\":1}]", "<html/>" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(poll_jolokia_answer(&f->pipe, 0, bad[i], strlen(bad[i]), &n, err,
                                             sizeof err), POLL_BAD_JSON);
    assert_int_equal(store_app_count(f->store, 0), 0);
    /* Names that are not ExecutorAllocationManager paths are skipped. */
    const char *other = "[{\"request\":{\"type\":\"read\"},\"status\":200,\"timestamp\":5,"
                        "\"value\":{\"metrics:name=app-1.driver.BlockManager.memory.memUsed_MB,"
                        "type=gauges\":{\"Value\":3}}}]";
    assert_int_equal(poll_jolokia_answer(&f->pipe, 0, other, strlen(other), &n, err, sizeof err),
                     POLL_OK);
    assert_int_equal(n.samples, 1);
    assert_int_equal(n.stored, 0);
    assert_int_equal(n.skipped, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_and_url),
        cmocka_unit_test_setup_teardown(test_same_as_carbon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spark2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_mbeans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_jolokia, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
