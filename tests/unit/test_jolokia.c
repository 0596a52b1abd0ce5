/* test_jolokia.c: Jolokia bulk request building and answer decoding over answers recorded
 * from Jolokia 2.6.0 on a Spark 3.5.9 driver (tests/fixtures/jolokia/); the registry names
 * feed carbon/spark_path.c; then hostile and odd inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/carbon.h"
#include "carbon/spark_path.h"
#include "lib/spark/jolokia.h"
#include "tests/unit/fixture.h"

#define APP "app-20261201143622-0000"
#define EAMN APP ".driver.ExecutorAllocationManager.executors."

static char *fixture(const char *name, size_t *len)
{
    char rel[512];
    snprintf(rel, sizeof rel, "jolokia/%s", name);
    char *buf = fixture_read(rel, len);
    if (!buf)
        fail_msg("cannot read tests/fixtures/%s", rel);
    return buf;
}

static ss_jolokia_result *parse_fixture(const char *name)
{
    char err[256] = "";
    size_t len;
    char *json = fixture(name, &len);
    ss_jolokia_result *r = NULL;
    int rc = ss_jolokia_parse(json, len, &r, err, sizeof(err));
    free(json);
    if (rc != 0)
        fail_msg("%s: rc %d: %s", name, rc, err);
    assert_non_null(r);
    return r;
}

static int parse_str(const char *json, ss_jolokia_result **r, char *err, size_t errlen)
{
    return ss_jolokia_parse(json, strlen(json), r, err, errlen);
}

static const ss_jolokia_sample *find(const ss_jolokia_item *it, const char *name)
{
    size_t i;
    for (i = 0; i < it->nsamples; i++)
        if (strcmp(it->samples[i].name, name) == 0)
            return &it->samples[i];
    fail_msg("no sample %s", name);
    return NULL;
}

static void check_sample(const ss_jolokia_item *it, const char *gauge, const char *type,
                         const char *attr, int64_t v)
{
    char name[256];
    const ss_jolokia_sample *s;
    snprintf(name, sizeof(name), EAMN "%s", gauge);
    s = find(it, name);
    if (type)
        assert_string_equal(s->type, type);
    else
        assert_null(s->type);
    assert_string_equal(s->attribute, attr);
    assert_true(s->is_int);
    assert_int_equal(s->ivalue, v);
    assert_true(s->value == (double)v);
}

/* ---- requests ------------------------------------------------------------------ */

static void test_build_read(void **state)
{
    const ss_jolokia_read reads[] = {
        {SS_JOLOKIA_EAM_GAUGES, "Value", 0},
        {SS_JOLOKIA_EAM_COUNTERS, "Count", 0},
        {SS_JOLOKIA_EAM_UNTYPED, NULL, 0},
        {SS_JOLOKIA_EAM_UNTYPED, "Count", 1},
    };
    char *body = NULL;
    size_t len = 0;
    (void)state;
    assert_int_equal(ss_jolokia_build_read(reads, 2, &body, &len), 0);
    /* What the capture sent (tests/fixtures/jolokia/README), byte for byte. */
    assert_string_equal(body,
        "[{\"type\":\"read\",\"mbean\":\"metrics:name=*.driver.ExecutorAllocationManager.executors.*,type=gauges\",\"attribute\":\"Value\"},"
        "{\"type\":\"read\",\"mbean\":\"metrics:name=*.driver.ExecutorAllocationManager.executors.*,type=counters\",\"attribute\":\"Count\"}]");
    assert_int_equal(len, strlen(body));
    free(body);
    assert_int_equal(ss_jolokia_build_read(reads + 2, 1, &body, NULL), 0);
    assert_string_equal(body, "[{\"type\":\"read\",\"mbean\":\"metrics:name=*.driver.ExecutorAllocationManager.executors.*\"}]");
    free(body);
    assert_int_equal(ss_jolokia_build_read(reads + 3, 1, &body, NULL), 0);
    assert_string_equal(body, "[{\"type\":\"read\",\"mbean\":\"metrics:name=*.driver.ExecutorAllocationManager.executors.*\","
                              "\"attribute\":\"Count\",\"config\":{\"ignoreErrors\":true}}]");
    free(body);
    {   /* quotes and backslashes are escaped */
        const ss_jolokia_read q = {"metrics:name=\"a\\\"b\"", "Value", 0};
        assert_int_equal(ss_jolokia_build_read(&q, 1, &body, NULL), 0);
        assert_string_equal(body, "[{\"type\":\"read\",\"mbean\":\"metrics:name=\\\"a\\\\\\\"b\\\"\",\"attribute\":\"Value\"}]");
        free(body);
    }
    {
        const ss_jolokia_read bad[] = {{NULL, "Value", 0}, {"x:\xff", "Value", 0}, {"x:y=z", "\xc3(", 0}};
        size_t i;
        for (i = 0; i < 3; i++) {
            body = (char *)1;
            assert_int_equal(ss_jolokia_build_read(&bad[i], 1, &body, NULL), -EINVAL);
            assert_null(body);
        }
    }
    assert_int_equal(ss_jolokia_build_read(reads, 0, &body, NULL), -EINVAL);
    assert_int_equal(ss_jolokia_build_read(NULL, 1, &body, NULL), -EINVAL);
    assert_int_equal(ss_jolokia_build_read(reads, 1, NULL, NULL), -EINVAL);
    assert_int_equal(ss_jolokia_build_read(reads, SS_JOLOKIA_MAX_ITEMS + 1, &body, NULL), -EINVAL);
}

/* ---- recorded answers ---------------------------------------------------------- */

static void test_bulk_ramp(void **state)
{
    ss_jolokia_result *r = parse_fixture("eam_bulk_4.json");
    const ss_jolokia_item *g, *c;
    const ss_jolokia_sample *s;
    (void)state;
    assert_int_equal(r->nitems, 2);
    g = &r->items[0];
    c = &r->items[1];
    assert_int_equal(g->status, 200);
    assert_null(g->error_type);
    assert_null(g->error);
    assert_int_equal(g->timestamp_s, 1796135785);
    assert_string_equal(g->request_mbean, SS_JOLOKIA_EAM_GAUGES);
    assert_int_equal(g->nsamples, 6);
    assert_int_equal(g->skipped, 0);
    check_sample(g, "numberTargetExecutors", "gauges", "Value", 2);
    check_sample(g, "numberMaxNeededExecutors", "gauges", "Value", 24);
    check_sample(g, "numberExecutorsToAdd", "gauges", "Value", 2);
    check_sample(g, "numberAllExecutors", "gauges", "Value", 0);
    check_sample(g, "numberExecutorsPendingToRemove", "gauges", "Value", 0);
    check_sample(g, "numberDecommissioningExecutors", "gauges", "Value", 0);
    s = find(g, EAMN "numberTargetExecutors");
    assert_string_equal(s->mbean, "metrics:name=" EAMN "numberTargetExecutors,type=gauges");
    assert_int_equal(c->status, 200);
    assert_int_equal(c->timestamp_s, 1796135785);
    assert_int_equal(c->nsamples, 4);
    check_sample(c, "numberExecutorsKilledByDriver", "counters", "Count", 0);
    check_sample(c, "numberExecutorsExitedUnexpectedly", "counters", "Count", 0);
    check_sample(c, "numberExecutorsGracefullyDecommissioned", "counters", "Count", 0);
    check_sample(c, "numberExecutorsDecommissionUnfinished", "counters", "Count", 0);
    ss_jolokia_result_free(r);

    r = parse_fixture("eam_bulk_3.json");
    check_sample(&r->items[0], "numberTargetExecutors", "gauges", "Value", 1);
    ss_jolokia_result_free(r);

    r = parse_fixture("eam_bulk_5.json");
    check_sample(&r->items[0], "numberTargetExecutors", "gauges", "Value", 0);
    check_sample(&r->items[0], "numberAllExecutors", "gauges", "Value", 2);
    check_sample(&r->items[0], "numberDecommissioningExecutors", "gauges", "Value", 2);
    ss_jolokia_result_free(r);

    r = parse_fixture("eam_bulk_7.json");
    assert_int_equal(r->items[0].timestamp_s, 1796135812);
    check_sample(&r->items[0], "numberAllExecutors", "gauges", "Value", 0);
    check_sample(&r->items[1], "numberExecutorsGracefullyDecommissioned", "counters", "Count", 2);
    ss_jolokia_result_free(r);
}

static void test_bulk_not_found(void **state)
{
    static const char *const files[] = {"eam_bulk_1.json", "eam_bulk_8.json",
                                        "spark2_pattern_on_spark3.json",
                                        "quoted_namespace_typed_pattern_404.json"};
    size_t f, i;
    (void)state;
    for (f = 0; f < 4; f++) {
        ss_jolokia_result *r = parse_fixture(files[f]);
        assert_int_equal(r->nitems, 2);
        for (i = 0; i < 2; i++) {
            const ss_jolokia_item *it = &r->items[i];
            assert_int_equal(it->status, 404);
            assert_string_equal(it->error_type, "javax.management.InstanceNotFoundException");
            assert_non_null(strstr(it->error, "No MBean with pattern metrics:name=*.driver."));
            assert_int_equal(it->nsamples, 0);
            assert_int_equal(it->timestamp_s, -1);   /* errors carry none */
        }
        ss_jolokia_result_free(r);
    }
}

static void test_single_and_exact(void **state)
{
    ss_jolokia_result *r = parse_fixture("single_match_pattern.json");
    const ss_jolokia_sample *s;
    (void)state;
    assert_int_equal(r->nitems, 1);
    assert_int_equal(r->items[0].nsamples, 1);
    check_sample(&r->items[0], "numberTargetExecutors", "gauges", "Value", 2);
    ss_jolokia_result_free(r);

    /* No pattern: a bare number, named after the request. */
    r = parse_fixture("exact_name.json");
    assert_int_equal(r->items[0].nsamples, 1);
    s = &r->items[0].samples[0];
    assert_string_equal(s->mbean, "metrics:name=" EAMN "numberTargetExecutors,type=gauges");
    assert_string_equal(s->name, EAMN "numberTargetExecutors");
    assert_string_equal(s->type, "gauges");
    assert_string_equal(s->attribute, "Value");
    assert_int_equal(s->ivalue, 2);
    assert_int_equal(r->items[0].timestamp_s, 1796135790);
    ss_jolokia_result_free(r);
}

static void test_errors_recorded(void **state)
{
    ss_jolokia_result *r = parse_fixture("unknown_mbean.json");
    char err[256];
    size_t len;
    char *body;
    (void)state;
    assert_int_equal(r->nitems, 2);
    assert_int_equal(r->items[0].status, 404);
    assert_string_equal(r->items[0].error_type, "javax.management.InstanceNotFoundException");
    assert_string_equal(r->items[0].error,
        "metrics:name=app-nope.driver.ExecutorAllocationManager.executors.numberTargetExecutors,type=gauges");
    assert_int_equal(r->items[1].status, 200);   /* the bulk's other item is fine */
    assert_int_equal(r->items[1].nsamples, 6);
    check_sample(&r->items[1], "numberAllExecutors", "gauges", "Value", 2);
    ss_jolokia_result_free(r);

    r = parse_fixture("unknown_attribute.json");
    assert_int_equal(r->items[0].status, 404);
    assert_string_equal(r->items[0].error_type, "javax.management.AttributeNotFoundException");
    assert_string_equal(r->items[0].error, "No such attribute: Count");
    ss_jolokia_result_free(r);

    /* A whole-request error is one object, not an array. */
    r = parse_fixture("bad_json.json");
    assert_int_equal(r->nitems, 1);
    assert_int_equal(r->items[0].status, 500);
    assert_string_equal(r->items[0].error_type, "java.lang.IllegalStateException");
    assert_string_equal(r->items[0].error, "Bad parser state, EOF at state COMMA");
    assert_null(r->items[0].request_mbean);
    ss_jolokia_result_free(r);

    /* HTTP 400 in text/plain. */
    body = fixture("bad_request.json", &len);
    r = (ss_jolokia_result *)body;
    assert_int_equal(ss_jolokia_parse(body, len, &r, err, sizeof(err)), -EBADMSG);
    assert_null(r);
    free(body);

    r = parse_fixture("any_type_ignore_errors.json");
    assert_int_equal(r->items[0].nsamples, 6);
    assert_int_equal(r->items[0].skipped, 0);
    check_sample(&r->items[0], "numberTargetExecutors", "gauges", "Value", 2);
    ss_jolokia_result_free(r);

    /* Not a read answer: no numbers in it, but it decodes. */
    r = parse_fixture("version.json");
    assert_int_equal(r->nitems, 1);
    assert_int_equal(r->items[0].status, 200);
    assert_int_equal(r->items[0].nsamples, 0);
    assert_true(r->items[0].skipped > 0);
    ss_jolokia_result_free(r);
}

/* A plain JVM: an attribute that throws on some of the MBeans a pattern matches. */
static void test_ignore_errors(void **state)
{
    ss_jolokia_result *r = parse_fixture("pattern_attribute_fails.json");
    const ss_jolokia_item *it;
    const ss_jolokia_sample *s;
    (void)state;
    /* Without ignoreErrors one failing MBean fails the whole item. */
    assert_int_equal(r->items[0].status, 500);
    assert_string_equal(r->items[0].error_type, "java.lang.UnsupportedOperationException");
    assert_string_equal(r->items[0].request_mbean, "java.lang:name=*,type=MemoryPool");
    ss_jolokia_result_free(r);

    /* With it, errors take the values' places: skipped and counted. */
    r = parse_fixture("pattern_attribute_fails_ignore_errors.json");
    it = &r->items[0];
    assert_int_equal(it->status, 200);
    assert_int_equal(it->timestamp_s, 1796136705);
    assert_int_equal(it->nsamples, 3);
    assert_int_equal(it->skipped, 5);
    s = find(it, "G1 Old Gen");
    assert_string_equal(s->type, "MemoryPool");
    assert_string_equal(s->attribute, "CollectionUsageThreshold");
    assert_int_equal(s->ivalue, 0);
    find(it, "G1 Eden Space");
    find(it, "G1 Survivor Space");
    ss_jolokia_result_free(r);
}

static void test_quoted_and_spark2(void **state)
{
    ss_jolokia_result *r = parse_fixture("quoted_namespace_no_type.json");
    const ss_jolokia_sample *s;
    (void)state;
    assert_int_equal(r->nitems, 2);
    assert_int_equal(r->items[0].nsamples, 6);
    assert_int_equal(r->items[1].nsamples, 4);
    s = find(&r->items[0], "etl:nightly.driver.ExecutorAllocationManager.executors.numberTargetExecutors");
    assert_string_equal(s->mbean,
        "metrics:name=\"etl:nightly.driver.ExecutorAllocationManager.executors.numberTargetExecutors\"");
    assert_null(s->type);
    assert_int_equal(s->ivalue, 2);
    s = find(&r->items[1],
             "etl:nightly.driver.ExecutorAllocationManager.executors.numberExecutorsKilledByDriver");
    assert_string_equal(s->attribute, "Count");
    ss_jolokia_result_free(r);

    r = parse_fixture("spark2_constructed.json");
    assert_int_equal(r->nitems, 1);
    assert_int_equal(r->items[0].nsamples, 5);
    check_sample(&r->items[0], "numberTargetExecutors", NULL, "Value", 2);
    check_sample(&r->items[0], "numberMaxNeededExecutors", NULL, "Value", 24);
    ss_jolokia_result_free(r);
}

/* ---- the names are carbon paths without the sink prefix --------------------------- */

static spark_prefixes *table(void)
{
    spark_prefixes *p = spark_prefixes_create(2);
    assert_non_null(p);
    assert_int_equal(spark_prefixes_add(p, "", 7), 0);   /* Jolokia names carry no prefix */
    assert_int_equal(spark_prefixes_add(p, "capture", 3), 0);   /* the sink's, in the carbon lines */
    return p;
}

static void test_names_decode(void **state)
{
    ss_jolokia_result *r = parse_fixture("eam_bulk_4.json");
    spark_prefixes *p = table();
    size_t i, j, n = 0;
    (void)state;
    for (i = 0; i < r->nitems; i++) {
        for (j = 0; j < r->items[i].nsamples; j++) {
            const ss_jolokia_sample *s = &r->items[i].samples[j];
            spark_metric m;
            assert_int_equal(spark_path_decode(p, s->name, strlen(s->name), &m), SPARK_PATH_OK);
            assert_int_equal(m.kind, SPARK_KIND_APP);
            assert_int_equal(m.cluster, 7);
            assert_int_equal(m.app_len, strlen(APP));
            assert_memory_equal(m.app, APP, m.app_len);
            /* Counters have no ".count" here: JMX names are registry names. */
            assert_int_equal(m.is_counter, 0);
            assert_true(m.gauge >= 0 && m.gauge < SPARK_G_APP_COUNT);
            assert_int_equal(strlen(spark_gauge_name(m.gauge)), m.name_len);
            assert_memory_equal(spark_gauge_name(m.gauge), m.name, m.name_len);
            if (m.gauge == SPARK_G_TARGET_EXECUTORS)
                assert_int_equal(s->ivalue, 2);
            if (m.gauge >= SPARK_G_GRACEFULLY_DECOMMISSIONED)
                assert_string_equal(s->type, "counters");
            n++;
        }
    }
    assert_int_equal(n, 10);
    ss_jolokia_result_free(r);
    spark_prefixes_destroy(p);
}

/* Every carbon line of a report decodes to the same (app, gauge) as one Jolokia sample of
 * the same second; with the quoted namespace the values match too. */
static void compare_with_carbon(const char *jfile, const char *cfile, int64_t ts, int values)
{
    ss_jolokia_result *r = parse_fixture(jfile);
    spark_prefixes *p = table();
    size_t len, matched = 0;
    char *text = fixture(cfile, &len), *line = text, *end = text + len;

    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        carbon_line cl;
        spark_metric cm;
        size_t i, j;
        int found = 0;
        assert_non_null(nl);
        assert_int_equal(carbon_parse_line(line, (size_t)(nl - line), &cl), CARBON_OK);
        if (cl.timestamp_ms != ts * 1000) {
            line = nl + 1;
            continue;
        }
        assert_int_equal(spark_path_decode(p, cl.path, cl.path_len, &cm), SPARK_PATH_OK);
        assert_int_equal(cm.cluster, 3);
        for (i = 0; i < r->nitems; i++) {
            for (j = 0; j < r->items[i].nsamples; j++) {
                const ss_jolokia_sample *s = &r->items[i].samples[j];
                spark_metric jm;
                assert_int_equal(spark_path_decode(p, s->name, strlen(s->name), &jm), SPARK_PATH_OK);
                if (jm.app_len == cm.app_len && memcmp(jm.app, cm.app, cm.app_len) == 0 &&
                    jm.gauge == cm.gauge && jm.gauge != SPARK_G_UNKNOWN) {
                    found++;
                    assert_int_equal(cm.is_counter, strcmp(s->attribute, "Count") == 0);
                    if (values)
                        assert_true(s->value == cl.value);
                }
            }
        }
        assert_int_equal(found, 1);
        matched++;
        line = nl + 1;
    }
    assert_int_equal(matched, 10);
    free(text);
    ss_jolokia_result_free(r);
    spark_prefixes_destroy(p);
}

static void test_same_driver_carbon(void **state)
{
    (void)state;
    compare_with_carbon("eam_bulk_3.json", "graphite_same_driver.txt", 1796135784, 0);
    compare_with_carbon("eam_bulk_7.json", "graphite_same_driver.txt", 1796135812, 1);
    compare_with_carbon("quoted_namespace_no_type.json", "quoted_namespace_graphite.txt",
                        1796135897, 1);
}

/* ---- ObjectName keys ------------------------------------------------------------- */

static void expect_key(const char *on, const char *key, const char *want)
{
    char *v = ss_jolokia_objectname_key(on, strlen(on), key);
    if (!want) {
        if (v)
            fail_msg("%s [%s]: got \"%s\", want NULL", on, key, v);
        return;
    }
    if (!v)
        fail_msg("%s [%s]: got NULL, want \"%s\"", on, key, want);
    assert_string_equal(v, want);
    free(v);
}

static void test_objectname(void **state)
{
    (void)state;
    expect_key("metrics:name=a.b,type=gauges", "name", "a.b");
    expect_key("metrics:name=a.b,type=gauges", "type", "gauges");
    expect_key("metrics:type=gauges,name=a.b", "name", "a.b");
    expect_key("metrics:name=a.b", "type", NULL);
    expect_key("metrics:name=\"etl:x,y=z\",type=gauges", "name", "etl:x,y=z");
    expect_key("metrics:name=\"a\\\"b\\\\c\\*d\\?e\\nf\"", "name", "a\"b\\c*d?e\nf");
    expect_key("metrics:name=\"\"", "name", "");   /* quoted empty is legal */
    expect_key("metrics:names=x,name=y", "name", "y");
    expect_key("metrics:nam=x", "name", NULL);
    expect_key(":name=x", "name", "x");
    /* Malformed: NULL whichever key is asked. */
    expect_key("metrics", "name", NULL);
    expect_key("metrics:", "name", NULL);
    expect_key("metrics:name=", "name", NULL);
    expect_key("metrics:name=x,", "name", NULL);
    expect_key("metrics:name=x,,type=y", "name", NULL);
    expect_key("metrics:=x", "name", NULL);
    expect_key("metrics:name", "name", NULL);
    expect_key("metrics:name=\"x", "name", NULL);
    expect_key("metrics:name=\"x\\", "name", NULL);
    expect_key("metrics:name=\"x\\q\"", "name", NULL);
    expect_key("metrics:name=\"x\"y", "name", NULL);
    expect_key("metrics:name=a=b", "name", NULL);
    expect_key("metrics:name=a:b", "name", NULL);
    expect_key("metrics:name=x,name=y", "name", NULL);
    expect_key("metrics:name=x,type=a\"b", "name", NULL);
    expect_key("metrics:na*me=x", "name", NULL);
    assert_null(ss_jolokia_objectname_key(NULL, 0, "name"));
    assert_null(ss_jolokia_objectname_key("a:b=c", 5, NULL));
    /* Not NUL-terminated: only len bytes are read. */
    assert_null(ss_jolokia_objectname_key("metrics:name=x,type=gauges", 14, "type"));
    {
        char *v = ss_jolokia_objectname_key("metrics:name=xyz", 14, "name");
        assert_string_equal(v, "x");
        free(v);
    }
}

/* ---- synthetic shapes and hostile input ----------------------------------------- */

static void test_value_shapes(void **state)
{
    const char *json =
        "[{\"request\":{\"mbean\":\"m:name=a,type=x\",\"attribute\":[\"Value\",\"Count\"],\"type\":\"read\"},"
        "\"value\":{\"Value\":1.5,\"Count\":9007199254740993},\"status\":200,\"timestamp\":7},"
        "{\"request\":{\"mbean\":\"m:name=*\",\"attribute\":\"Value\",\"type\":\"read\"},"
        "\"value\":{\"m:name=a\":{\"Value\":null},\"m:name=b\":{\"Value\":\"7\"},"
        "\"m:name=c\":{\"Value\":{\"error\":\"x\",\"error_type\":\"y\"}},\"m:name=d\":{\"Value\":true},"
        "\"m:bad\":{\"Value\":1},\"m:name=e\":{\"Value\":-3},\"m:name=f\":{\"Value\":2.5e3}},"
        "\"status\":200},"
        "{\"request\":{\"mbean\":\"m:name=a\",\"type\":\"read\"},\"value\":5,\"status\":200},"
        "{\"value\":5,\"status\":200},"
        "{\"status\":200}]";
    ss_jolokia_result *r = NULL;
    char err[256];
    (void)state;
    assert_int_equal(parse_str(json, &r, err, sizeof(err)), 0);
    assert_int_equal(r->nitems, 5);
    /* Several attributes of one MBean: {attr: n}. */
    assert_int_equal(r->items[0].nsamples, 2);
    assert_string_equal(r->items[0].samples[0].name, "a");
    assert_string_equal(r->items[0].samples[0].type, "x");
    assert_string_equal(r->items[0].samples[0].attribute, "Value");
    assert_false(r->items[0].samples[0].is_int);
    assert_true(r->items[0].samples[0].value == 1.5);
    assert_true(r->items[0].samples[1].is_int);
    assert_int_equal(r->items[0].samples[1].ivalue, 9007199254740993LL);   /* exact past 2^53 */
    assert_int_equal(r->items[0].timestamp_s, 7);
    /* null (NaN), string, error object, boolean, bad name: skipped. */
    assert_int_equal(r->items[1].nsamples, 2);
    assert_int_equal(r->items[1].skipped, 5);
    assert_string_equal(r->items[1].samples[0].name, "e");
    assert_int_equal(r->items[1].samples[0].ivalue, -3);
    assert_true(r->items[1].samples[1].value == 2500.0);
    assert_int_equal(r->items[1].timestamp_s, -1);
    /* A bare value needs the request's string attribute and mbean. */
    assert_int_equal(r->items[2].nsamples, 0);
    assert_int_equal(r->items[2].skipped, 1);
    assert_int_equal(r->items[3].nsamples, 0);
    assert_int_equal(r->items[3].skipped, 1);
    assert_int_equal(r->items[4].nsamples, 0);
    ss_jolokia_result_free(r);
}

static void test_bad_shapes(void **state)
{
    static const struct { const char *json; int rc; const char *msg; } cases[] = {
        {"[{\"value\":1}]", -EPROTO, "item 0: status: missing"},
        {"[{\"status\":200},{\"status\":\"200\"}]", -EPROTO, "item 1: status: not an integer"},
        {"[{\"status\":20}]", -EPROTO, "item 0: status: out of range"},
        {"[{\"status\":200},7]", -EPROTO, "item 1: not an object"},
        {"7", -EBADMSG, "invalid JSON"},   /* jansson wants an array or object at the top */
        {"\"x\"", -EBADMSG, "invalid JSON"},
        {"", -EBADMSG, "invalid JSON"},
        {"[{\"status\":200,\"status\":404}]", -EBADMSG, "duplicate"},
        {"[{\"status\":200,\"value\":1e999}]", -EBADMSG, "invalid JSON"},
        {"[{\"status\":200,\"value\":99999999999999999999}]", -EBADMSG, "invalid JSON"},
        {"[{\"status\":200,\"value\":{\"m:name=a\\u0000\":{\"Value\":1}}}]", -EBADMSG, "invalid JSON"},
        {"[\"\xc3\x28\"]", -EBADMSG, "invalid JSON"},
        {"[]", 0, ""},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ss_jolokia_result *r = (ss_jolokia_result *)&i;
        char err[256] = "";
        int rc = parse_str(cases[i].json, &r, err, sizeof(err));
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fail_msg("case %zu: rc %d (want %d), err \"%s\" (want \"%s\")", i, rc, cases[i].rc, err,
                     cases[i].msg);
        if (rc == 0) {
            assert_int_equal(r->nitems, 0);
            ss_jolokia_result_free(r);
        } else {
            assert_null(r);
        }
    }
    assert_int_equal(ss_jolokia_parse(NULL, 3, (ss_jolokia_result **)&i, NULL, 0), -EINVAL);
    assert_int_equal(ss_jolokia_parse("[]", 2, NULL, NULL, 0), -EINVAL);
    ss_jolokia_result_free(NULL);
}

static void test_truncated(void **state)
{
    size_t len, cut;
    char *json = fixture("eam_bulk_4.json", &len);
    (void)state;
    for (cut = 0; cut < len; cut++) {
        char *t = malloc(cut ? cut : 1);
        ss_jolokia_result *r = NULL;
        assert_non_null(t);
        memcpy(t, json, cut);
        assert_int_equal(ss_jolokia_parse(t, cut, &r, NULL, 0), -EBADMSG);
        assert_null(r);
        free(t);
    }
    free(json);
}

static void test_bounds(void **state)
{
    size_t i, n = SS_JOLOKIA_MAX_ITEMS + 1;
    char *s = malloc(n * 15 + 3), *p = s;
    char err[256];
    ss_jolokia_result *r = NULL;
    char *long_err;
    (void)state;
    assert_non_null(s);
    *p++ = '[';
    for (i = 0; i < n; i++)
        p += sprintf(p, "%s{\"status\":200}", i ? "," : "");
    strcpy(p, "]");
    assert_int_equal(parse_str(s, &r, err, sizeof(err)), -E2BIG);
    assert_string_equal(err, "4097 items (at most 4096)");
    /* Exactly the maximum is fine. */
    p = strrchr(s, ',');
    strcpy(p, "]");
    assert_int_equal(parse_str(s, &r, err, sizeof(err)), 0);
    assert_int_equal(r->nitems, SS_JOLOKIA_MAX_ITEMS);
    ss_jolokia_result_free(r);
    free(s);

    /* Error texts are cut. */
    long_err = malloc(5000);
    assert_non_null(long_err);
    p = long_err + sprintf(long_err, "[{\"status\":500,\"error\":\"");
    memset(p, 'e', 4000);
    strcpy(p + 4000, "\"}]");
    assert_int_equal(parse_str(long_err, &r, err, sizeof(err)), 0);
    assert_int_equal(strlen(r->items[0].error), SS_JOLOKIA_MAX_TEXT);
    assert_string_equal(r->items[0].error_type, "");
    ss_jolokia_result_free(r);
    free(long_err);

    /* Over-long ObjectName keys are skipped, not fatal. */
    s = malloc(SS_JOLOKIA_MAX_NAME + 100);
    assert_non_null(s);
    p = s + sprintf(s, "[{\"status\":200,\"value\":{\"m:name=");
    memset(p, 'n', SS_JOLOKIA_MAX_NAME);
    strcpy(p + SS_JOLOKIA_MAX_NAME, "\":{\"Value\":1}}}]");
    assert_int_equal(parse_str(s, &r, err, sizeof(err)), 0);
    assert_int_equal(r->items[0].nsamples, 0);
    assert_int_equal(r->items[0].skipped, 1);
    ss_jolokia_result_free(r);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_read),
        cmocka_unit_test(test_bulk_ramp),
        cmocka_unit_test(test_bulk_not_found),
        cmocka_unit_test(test_single_and_exact),
        cmocka_unit_test(test_errors_recorded),
        cmocka_unit_test(test_ignore_errors),
        cmocka_unit_test(test_quoted_and_spark2),
        cmocka_unit_test(test_names_decode),
        cmocka_unit_test(test_same_driver_carbon),
        cmocka_unit_test(test_objectname),
        cmocka_unit_test(test_value_shapes),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
