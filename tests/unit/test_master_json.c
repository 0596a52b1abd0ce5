/* test_master_json.c: the master /json/ decoder over answers recorded from a real
 * Spark 3.5.9 master (tests/fixtures/spark_master/), then hostile and odd inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/spark/master_json.h"
#include "tests/unit/fixture.h"

/* Reads tests/fixtures/spark_master/<name> (malloc'd, exact size: ASan sees overreads). */
static char *fixture(const char *name, size_t *len)
{
    char rel[512];
    snprintf(rel, sizeof rel, "spark_master/%s", name);
    char *buf = fixture_read(rel, len);
    if (!buf)
        fail_msg("cannot read tests/fixtures/%s", rel);
    return buf;
}

static ss_master_state *parse_fixture(const char *name)
{
    char err[256] = "";
    size_t len;
    char *json = fixture(name, &len);
    ss_master_state *m = NULL;
    int rc = ss_master_parse(json, len, &m, err, sizeof(err));
    free(json);
    if (rc != 0)
        fail_msg("%s: rc %d: %s", name, rc, err);
    assert_non_null(m);
    return m;
}

static int parse_str(const char *json, ss_master_state **m, char *err, size_t errlen)
{
    return ss_master_parse(json, strlen(json), m, err, errlen);
}

static void check_worker(const ss_spark_worker *w, const char *id, const char *host, int port,
                         const char *ui, int coresused, int64_t memused, ss_worker_state st,
                         int64_t hb)
{
    assert_string_equal(w->id, id);
    assert_string_equal(w->host, host);
    assert_int_equal(w->port, port);
    assert_string_equal(w->webuiaddress, ui);
    assert_int_equal(w->cores, 2);
    assert_int_equal(w->coresused, coresused);
    assert_int_equal(w->coresfree, 2 - coresused);
    assert_int_equal(w->memory_mb, 1024);
    assert_int_equal(w->memoryused_mb, memused);
    assert_int_equal(w->state, st);
    assert_int_equal(w->lastheartbeat_ms, hb);
}

#define W2 "worker-20261201143615-127.0.0.2-46423", "127.0.0.2", 46423, "http://127.0.0.2:42679"
#define W3 "worker-20261201143614-127.0.0.3-56753", "127.0.0.3", 56753, "http://127.0.0.3:36691"
#define W4 "worker-20261201143613-127.0.0.4-58167", "127.0.0.4", 58167, "http://127.0.0.4:37099"
#define URL "spark://127.0.0.1:50531"
#define APP "app-20261201143622-0000"

static void test_no_app(void **state)
{
    ss_master_state *m = parse_fixture("no_app.json");
    (void)state;
    assert_int_equal(m->status, SS_MASTER_ALIVE);
    assert_string_equal(m->url, URL);
    assert_int_equal(m->aliveworkers, 3);
    assert_int_equal(m->cores, 6);
    assert_int_equal(m->coresused, 0);
    assert_int_equal(m->nworkers, 3);
    assert_int_equal(m->nactiveapps, 0);
    assert_int_equal(m->ncompletedapps, 0);
    assert_int_equal(m->workers_skipped, 0);
    check_worker(&m->workers[0], W2, 0, 0, SS_WORKER_ALIVE, 1796135776616);
    check_worker(&m->workers[1], W4, 0, 0, SS_WORKER_ALIVE, 1796135775200);
    check_worker(&m->workers[2], W3, 0, 0, SS_WORKER_ALIVE, 1796135775966);
    assert_int_equal(ss_master_busy_workers(m), 0);
    ss_master_state_free(m);
}

static void test_app_running(void **state)
{
    ss_master_state *m = parse_fixture("app_running.json");
    const ss_spark_app *a;
    (void)state;
    assert_int_equal(m->status, SS_MASTER_ALIVE);
    assert_int_equal(m->aliveworkers, 3);
    assert_int_equal(m->cores, 6);
    assert_int_equal(m->coresused, 4);
    assert_int_equal(m->nworkers, 3);
    check_worker(&m->workers[0], W2, 0, 0, SS_WORKER_ALIVE, 1796135784046);
    check_worker(&m->workers[1], W4, 2, 512, SS_WORKER_ALIVE, 1796135785063);
    check_worker(&m->workers[2], W3, 2, 512, SS_WORKER_ALIVE, 1796135783447);
    assert_int_equal(ss_master_busy_workers(m), 2);
    assert_int_equal(m->nactiveapps, 1);
    a = &m->activeapps[0];
    assert_string_equal(a->id, APP);
    assert_string_equal(a->name, "sparkscale-check");
    assert_int_equal(a->cores, 4);
    assert_int_equal(a->memoryperexecutor_mb, 512);
    assert_int_equal(a->starttime_ms, 1796135782093);
    assert_int_equal(a->duration_ms, 3614);
    assert_int_equal(a->state, SS_APP_RUNNING);
    assert_int_equal(a->nresources, 0);
    assert_null(a->resources);
    ss_master_state_free(m);
}

static void test_decommissioned(void **state)
{
    ss_master_state *m = parse_fixture("app_running_decommissioned.json");
    (void)state;
    /* The master stops counting a DECOMMISSIONED worker at once. */
    assert_int_equal(m->aliveworkers, 2);
    assert_int_equal(m->cores, 4);
    assert_int_equal(m->coresused, 4);
    check_worker(&m->workers[0], W2, 0, 0, SS_WORKER_DECOMMISSIONED, 1796135784046);
    assert_int_equal(m->workers[1].state, SS_WORKER_ALIVE);
    assert_int_equal(ss_master_busy_workers(m), 2);
    assert_ptr_equal(ss_master_find_worker(m, "127.0.0.2", 0), &m->workers[0]);
    assert_ptr_equal(ss_master_find_worker(m, "127.0.0.4", 58167), &m->workers[1]);
    assert_null(ss_master_find_worker(m, "127.0.0.4", 1));
    assert_null(ss_master_find_worker(m, "127.0.0.99", 0));
    ss_master_state_free(m);
}

static void test_completed_and_dead(void **state)
{
    ss_master_state *m = parse_fixture("app_completed.json");
    (void)state;
    assert_int_equal(m->nactiveapps, 0);
    assert_int_equal(m->ncompletedapps, 1);
    assert_int_equal(m->aliveworkers, 2);
    assert_int_equal(ss_master_busy_workers(m), 0);
    assert_int_equal(m->workers[0].state, SS_WORKER_DECOMMISSIONED);
    ss_master_state_free(m);

    m = parse_fixture("worker_dead.json");
    assert_int_equal(m->aliveworkers, 1);
    assert_int_equal(m->cores, 2);
    assert_int_equal(m->nworkers, 3);
    /* A decommissioned worker keeps sending heartbeats; a dead one's is frozen. */
    check_worker(&m->workers[0], W2, 0, 0, SS_WORKER_DECOMMISSIONED, 1796135821550);
    check_worker(&m->workers[1], W4, 0, 0, SS_WORKER_DEAD, 1796135822559);
    check_worker(&m->workers[2], W3, 0, 0, SS_WORKER_ALIVE, 1796135823449);
    ss_master_state_free(m);
}

static void test_recovering(void **state)
{
    ss_master_state *m = parse_fixture("master_recovering.json");
    (void)state;
    assert_int_equal(m->status, SS_MASTER_RECOVERING);
    assert_int_equal(m->aliveworkers, 0);
    assert_int_equal(m->cores, 0);
    assert_int_equal(m->nworkers, 1);
    check_worker(&m->workers[0], W3, 0, 0, SS_WORKER_UNKNOWN, 1796135827236);
    ss_master_state_free(m);

    /* Recovery done without the stopped worker: DEAD; the decommissioned
     * worker's process re-registered under a new id as ALIVE. */
    m = parse_fixture("master_recovered.json");
    assert_int_equal(m->status, SS_MASTER_ALIVE);
    assert_int_equal(m->nworkers, 2);
    check_worker(&m->workers[0], W2, 0, 0, SS_WORKER_ALIVE, 1796135836557);
    check_worker(&m->workers[1], W3, 0, 0, SS_WORKER_DEAD, 1796135827236);
    assert_ptr_equal(ss_master_find_worker(m, "127.0.0.3", 0), &m->workers[1]);
    ss_master_state_free(m);
}

/* Replaces the first occurrence of from with to in a malloc'd copy. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    size_t n;
    char *out;
    assert_non_null(p);
    n = strlen(s) - strlen(from) + strlen(to);
    out = malloc(n + 1);
    assert_non_null(out);
    memcpy(out, s, (size_t)(p - s));
    strcpy(out + (p - s), to);
    strcat(out, p + strlen(from));
    return out;
}

static char *fixture_str(const char *name)
{
    size_t len;
    char *b = fixture(name, &len);
    char *s = realloc(b, len + 1);
    assert_non_null(s);
    s[len] = '\0';
    return s;
}

static void test_status_values(void **state)
{
    static const struct { const char *text; ss_master_status st; } cases[] = {
        {"STANDBY", SS_MASTER_STANDBY},
        {"COMPLETING_RECOVERY", SS_MASTER_COMPLETING_RECOVERY},
        {"RECOVERING", SS_MASTER_RECOVERING},
        {"SOMETHING_NEW", SS_MASTER_STATUS_UNKNOWN},
    };
    char *base = fixture_str("no_app.json");
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char to[64];
        char *json;
        ss_master_state *m = NULL;
        snprintf(to, sizeof(to), "\"status\" : \"%s\"", cases[i].text);
        json = replace(base, "\"status\" : \"ALIVE\"", to);
        assert_int_equal(parse_str(json, &m, NULL, 0), 0);
        assert_int_equal(m->status, cases[i].st);
        assert_string_equal(ss_master_status_name(m->status),
                            cases[i].st ? cases[i].text : "UNKNOWN");
        ss_master_state_free(m);
        free(json);
    }
    free(base);
}

/* Spark 2.x: "memoryperslave" only, no coresfree / resources. */
static void test_spark2_fields(void **state)
{
    const char *json =
        "{\"url\":\"spark://m:7077\",\"workers\":[{\"id\":\"worker-1-10.0.0.5-4000\",\"host\":\"10.0.0.5\","
        "\"port\":4000,\"webuiaddress\":\"http://10.0.0.5:8081\",\"cores\":4,\"coresused\":1,\"memory\":8192,"
        "\"memoryused\":1024,\"state\":\"ALIVE\",\"lastheartbeat\":1500000000000}],\"aliveworkers\":1,"
        "\"cores\":4,\"coresused\":1,\"memory\":8192,\"memoryused\":1024,\"activeapps\":[{\"starttime\":1,"
        "\"id\":\"app-1\",\"name\":\"x\",\"cores\":1,\"user\":\"u\",\"memoryperslave\":1024,"
        "\"submitdate\":\"d\",\"state\":\"WAITING\",\"duration\":5}],\"completedapps\":[],\"status\":\"ALIVE\"}";
    ss_master_state *m = NULL;
    (void)state;
    assert_int_equal(parse_str(json, &m, NULL, 0), 0);
    assert_int_equal(m->workers[0].coresfree, 3);
    assert_int_equal(m->activeapps[0].memoryperexecutor_mb, 1024);
    assert_int_equal(m->activeapps[0].state, SS_APP_WAITING);
    ss_master_state_free(m);
}

static void test_resources(void **state)
{
    char *base = fixture_str("app_running.json");
    char *json = replace(base, "\"resourcesperexecutor\" : [ ]",
                         "\"resourcesperexecutor\" : [ {\"name\" : \"gpu\", \"amount\" : 2} ]");
    ss_master_state *m = NULL;
    (void)state;
    assert_int_equal(parse_str(json, &m, NULL, 0), 0);
    assert_int_equal(m->activeapps[0].nresources, 1);
    assert_string_equal(m->activeapps[0].resources[0].name, "gpu");
    assert_int_equal(m->activeapps[0].resources[0].amount, 2);
    ss_master_state_free(m);
    free(json);
    free(base);
}

typedef struct bad_case {
    const char *from, *to;   /* edit of app_running.json */
    int rc;
    const char *msg;         /* expected in err */
} bad_case;

static void test_bad_fields(void **state)
{
    static const bad_case cases[] = {
        {"\"coresused\" : 2,", "", -EPROTO, "workers[1].coresused: missing"},
        {"\"host\" : \"127.0.0.2\",", "", -EPROTO, "workers[0].host: missing"},
        {"\"port\" : 46423", "\"port\" : \"46423\"", -EPROTO, "workers[0].port: not an integer"},
        {"\"port\" : 46423", "\"port\" : 70000", -EPROTO, "workers[0].port: out of range"},
        {"\"cores\" : 2", "\"cores\" : -2", -EPROTO, "workers[0].cores: out of range"},
        {"\"cores\" : 2", "\"cores\" : 2.0", -EPROTO, "workers[0].cores: not an integer"},
        {"\"state\" : \"ALIVE\"", "\"state\" : null", -EPROTO, "workers[0].state: not a string"},
        {"\"workers\" : [", "\"workerz\" : [", -EPROTO, "workers: missing"},
        {"\"aliveworkers\" : 3,", "", -EPROTO, "aliveworkers: missing"},
        {"\"status\" : \"ALIVE\"", "\"status\" : 1", -EPROTO, "status: not a string"},
        {"\"activeapps\" : [", "\"activeapps\" : 5, \"x\" : [", -EPROTO, "activeapps: not an array"},
        {"\"starttime\" : 1796135782093,", "", -EPROTO, "activeapps[0].starttime: missing"},
        {"\"memoryperexecutor\" : 512,", "", 0, ""},   /* memoryperslave remains */
        {"\"id\" : \"app-20261201143622-0000\",", "", -EPROTO, "activeapps[0].id: missing"},
        {"\"completedapps\" : [ ]", "\"completedapps\" : 7", -EPROTO, "completedapps: not an array"},
        {"\"url\"", "\"uri\"", -EPROTO, "url: missing"},
        {"\"lastheartbeat\" : 1796135784046", "\"lastheartbeat\" : 1e3", -EPROTO,
         "workers[0].lastheartbeat: not an integer"},
        {"\"resourcesperexecutor\" : [ ]", "\"resourcesperexecutor\" : [ 1 ]", -EPROTO,
         "resourcesperexecutor: an item is not an object"},
        {"\"cores\" : 6", "\"cores\" : 6, \"cores\" : 7", -EBADMSG, "duplicate"},
        {"\"name\" : \"sparkscale-check\"", "\"name\" : \"a\\u0000b\"", -EBADMSG, "invalid JSON"},
    };
    char *base = fixture_str("app_running.json");
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        char *json = replace(base, cases[i].from, cases[i].to);
        ss_master_state *m = (ss_master_state *)&err;   /* must be reset to NULL on error */
        int rc = parse_str(json, &m, err, sizeof(err));
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fail_msg("case %zu: rc %d (want %d), err \"%s\" (want \"%s\")", i, rc, cases[i].rc, err,
                     cases[i].msg);
        if (rc == 0)
            ss_master_state_free(m);
        else
            assert_null(m);
        free(json);
    }
    free(base);
}

static void test_skipped_items(void **state)
{
    char *base = fixture_str("app_running.json");
    char big[SS_MASTER_MAX_ID + 40];
    char *a, *b;
    ss_master_state *m = NULL;
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "\"host\" : \"", 10);
    big[sizeof(big) - 2] = '"';
    a = replace(base, "\"host\" : \"127.0.0.2\"", big);   /* over-long host: skipped */
    b = replace(a, "\"id\" : \"app-20261201143622-0000\"", "\"id\" : \"\"");   /* empty id */
    assert_int_equal(parse_str(b, &m, NULL, 0), 0);
    assert_int_equal(m->nworkers, 2);
    assert_int_equal(m->workers_skipped, 1);
    assert_string_equal(m->workers[0].host, "127.0.0.4");
    assert_int_equal(m->nactiveapps, 0);
    assert_int_equal(m->apps_skipped, 1);
    ss_master_state_free(m);
    free(a);
    free(b);
    free(base);
}

static void test_not_json(void **state)
{
    size_t len, cut;
    char *json = fixture("app_running.json", &len);
    char err[256];
    ss_master_state *m = NULL;
    (void)state;
    /* Every truncation of a real answer fails cleanly (ASan checks reads). */
    for (cut = 0; cut < len - 1; cut++) {
        char *t = malloc(cut ? cut : 1);
        int rc;
        assert_non_null(t);
        memcpy(t, json, cut);
        rc = ss_master_parse(t, cut, &m, err, sizeof(err));
        assert_int_equal(rc, -EBADMSG);
        assert_null(m);
        free(t);
    }
    free(json);
    assert_int_equal(parse_str("[1,2]", &m, err, sizeof(err)), -EPROTO);
    assert_string_equal(err, "not a JSON object");
    assert_int_equal(parse_str("{\"status\":\"ALIVE\"} x", &m, err, sizeof(err)), -EBADMSG);
    assert_int_equal(parse_str("\xff\xfe{}", &m, err, sizeof(err)), -EBADMSG);
    assert_int_equal(parse_str("{\"url\":\"\xc3\x28\"}", &m, err, sizeof(err)), -EBADMSG);
    assert_int_equal(ss_master_parse(NULL, 0, &m, err, sizeof(err)), -EBADMSG);
    assert_int_equal(ss_master_parse(NULL, 5, &m, err, sizeof(err)), -EINVAL);
    assert_int_equal(ss_master_parse("{}", 2, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(ss_master_parse("{}", (size_t)SS_MASTER_MAX_INPUT + 1, &m, err, sizeof(err)),
                     -E2BIG);
    /* The kill endpoint's HTML error page is not JSON. */
    assert_int_equal(parse_str("<html>\n<head>", &m, NULL, 0), -EBADMSG);
}

/* Builds a master answer with n identical workers. */
static char *many_workers(size_t n)
{
    static const char head[] = "{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"aliveworkers\":1,"
                               "\"cores\":2,\"coresused\":0,\"activeapps\":[],\"workers\":[";
    static const char w[] = "{\"id\":\"w\",\"host\":\"h\",\"port\":1,\"cores\":2,\"coresused\":1,"
                            "\"memory\":1,\"memoryused\":0,\"state\":\"ALIVE\"},";
    size_t i, len = sizeof(head) - 1 + n * (sizeof(w) - 1) + 3;
    char *s = malloc(len), *p = s;
    assert_non_null(s);
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (i = 0; i < n; i++) {
        memcpy(p, w, sizeof(w) - 1);
        p += sizeof(w) - 1;
    }
    if (n)
        p--;   /* the last comma */
    strcpy(p, "]}");
    return s;
}

static void test_huge_arrays(void **state)
{
    char err[256];
    ss_master_state *m = NULL;
    char *s = many_workers(SS_MASTER_MAX_WORKERS);
    (void)state;
    assert_int_equal(parse_str(s, &m, err, sizeof(err)), 0);
    assert_int_equal(m->nworkers, SS_MASTER_MAX_WORKERS);
    assert_int_equal(ss_master_busy_workers(m), SS_MASTER_MAX_WORKERS);
    ss_master_state_free(m);
    free(s);
    s = many_workers(SS_MASTER_MAX_WORKERS + 1);
    assert_int_equal(parse_str(s, &m, err, sizeof(err)), -E2BIG);
    assert_string_equal(err, "workers: 100001 items (at most 100000)");
    assert_null(m);
    free(s);
}

static void test_find_worker(void **state)
{
    const char *json =
        "{\"url\":\"u\",\"status\":\"ALIVE\",\"aliveworkers\":1,\"cores\":2,\"coresused\":0,\"activeapps\":[],"
        "\"workers\":["
        "{\"id\":\"a\",\"host\":\"Pod-1\",\"port\":1,\"cores\":2,\"coresused\":0,\"memory\":1,\"memoryused\":0,"
        "\"state\":\"DEAD\",\"lastheartbeat\":5},"
        "{\"id\":\"b\",\"host\":\"pod-1\",\"port\":2,\"cores\":2,\"coresused\":0,\"memory\":1,\"memoryused\":0,"
        "\"state\":\"DEAD\",\"lastheartbeat\":9},"
        "{\"id\":\"c\",\"host\":\"pod-1\",\"port\":3,\"cores\":2,\"coresused\":2,\"memory\":1,\"memoryused\":0,"
        "\"state\":\"ALIVE\",\"lastheartbeat\":7}]}";
    ss_master_state *m = NULL;
    (void)state;
    assert_int_equal(parse_str(json, &m, NULL, 0), 0);
    assert_string_equal(ss_master_find_worker(m, "POD-1", 0)->id, "c");   /* ALIVE wins */
    assert_string_equal(ss_master_find_worker(m, "pod-1", 1)->id, "a");
    m->workers[2].state = SS_WORKER_DEAD;
    assert_string_equal(ss_master_find_worker(m, "pod-1", 0)->id, "b");   /* latest heartbeat */
    assert_null(ss_master_find_worker(m, NULL, 0));
    assert_null(ss_master_find_worker(NULL, "pod-1", 0));
    assert_int_equal(m->workers[0].lastheartbeat_ms, 5);
    assert_string_equal(m->workers[0].webuiaddress, "");
    ss_master_state_free(m);
    ss_master_state_free(NULL);
    assert_string_equal(ss_worker_state_name(SS_WORKER_DECOMMISSIONED), "DECOMMISSIONED");
    assert_string_equal(ss_app_state_name(SS_APP_KILLED), "KILLED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_app),
        cmocka_unit_test(test_app_running),
        cmocka_unit_test(test_decommissioned),
        cmocka_unit_test(test_completed_and_dead),
        cmocka_unit_test(test_recovering),
        cmocka_unit_test(test_status_values),
        cmocka_unit_test(test_spark2_fields),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_skipped_items),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_huge_arrays),
        cmocka_unit_test(test_find_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
