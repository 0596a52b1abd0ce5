/* test_poll_master.c: a master's /json/ answer in sparkscaled: the URL asked,
 * ALIVE answers into the master view (recorded answers of a real Spark
 * 3.5.9 master), STANDBY and RECOVERING ones left out, broken bodies, and
 * when the cluster is marked dirty for the decider. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/poll_master.h"
#include "tests/unit/fixture.h"

static char *load(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "spark_master/%s", name);
    char *s = fixture_read(path, len);
    if (!s)
        fail_msg("cannot read %s", path);
    return s;
}

/* A recorded answer with its "status" replaced (STANDBY needs ZooKeeper,
 * which the recording run did not have). */
static char *with_status(const char *name, const char *status, size_t *len)
{
    char *s = load(name, len);
    char *at = strstr(s, "\"status\" : \"ALIVE\"");
    assert_non_null(at);
    size_t head = (size_t)(at - s), tail = *len - head - strlen("\"status\" : \"ALIVE\"");
    char *out = malloc(*len + 64);
    int n = snprintf(out, *len + 64, "%.*s\"status\" : \"%s\"", (int)head, s, status);
    memcpy(out + n, at + strlen("\"status\" : \"ALIVE\""), tail);
    *len = (size_t)n + tail;
    free(s);
    return out;
}

static void test_url(void **state)
{
    (void)state;
    const char *cases[][2] = {
        { "http://m:8080", "http://m:8080/json/" },
        { "http://m:8080/", "http://m:8080/json/" },
        { "https://u:p@m:8480/spark", "https://u:p@m:8480/spark/json/" },
        { "http://m:8080/json/", "http://m:8080/json/" },
        { "http://m:8080/json", "http://m:8080/json" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *u = poll_master_url(cases[i][0]);
        assert_string_equal(u, cases[i][1]);
        free(u);
    }
}

static int take_dirty(ss_store *store, int *cluster)
{
    store_dirty d[4];
    size_t n = store_take_dirty(store, d, 4);
    if (n)
        *cluster = d[0].cluster;
    return (int)n;
}

static void test_answers(void **state)
{
    (void)state;
    ss_store *store = store_create(NULL, 2);
    ss_master_view *mv = master_view_create(2);
    const char *url = "http://m:8080";
    char err[256];
    size_t len;
    int c = -1;

    /* ALIVE: into the view, cluster 1 dirty. */
    char *body = load("app_running.json", &len);
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 1000, 30000, err, sizeof err),
                     POLL_OK);
    assert_int_equal(take_dirty(store, &c), 1);
    assert_int_equal(c, 1);
    const ss_master_state *st = master_view_fresh(mv, 1, 1000, 30000);
    assert_non_null(st);
    assert_int_equal(master_view_busy(st), 2);
    /* The same answer again: fresher, nothing for the decider to redo. */
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 6000, 30000, err, sizeof err),
                     POLL_OK);
    assert_int_equal(take_dirty(store, &c), 0);
    assert_int_equal(master_view_fetched_ms(mv, 1), 6000);
    /* After a gap longer than stale_after the decider had fallen back to
     * gauges: the same answer marks the cluster dirty again. */
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 60000, 30000, err, sizeof err),
                     POLL_OK);
    assert_int_equal(take_dirty(store, &c), 1);
    free(body);

    /* STANDBY (and a status the decoder does not know): not used, view kept. */
    body = with_status("no_app.json", "STANDBY", &len);
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 61000, 30000, err, sizeof err),
                     POLL_STANDBY);
    assert_non_null(strstr(err, "STANDBY"));
    free(body);
    body = with_status("no_app.json", "SOMETHING_NEW", &len);
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 61000, 30000, err, sizeof err),
                     POLL_STANDBY);
    free(body);
    assert_int_equal(take_dirty(store, &c), 0);
    assert_int_equal(master_view_fetched_ms(mv, 1), 60000);
    assert_int_equal(master_view_busy(master_view_fresh(mv, 1, 61000, 30000)), 2);

    /* RECOVERING: its workers show UNKNOWN and aliveworkers 0: not used. */
    body = load("master_recovering.json", &len);
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 62000, 30000, err, sizeof err),
                     POLL_RECOVERING);
    free(body);
    body = with_status("no_app.json", "COMPLETING_RECOVERY", &len);
    assert_int_equal(poll_master_answer(mv, store, 1, url, body, len, 62000, 30000, err, sizeof err),
                     POLL_RECOVERING);
    free(body);
    assert_int_equal(master_view_fetched_ms(mv, 1), 60000);

    /* Truncated, not JSON, JSON of another shape, empty. */
    body = load("app_running.json", &len);
    assert_int_equal(poll_master_answer(mv, store, 0, url, body, len / 2, 1, 30000, err, sizeof err),
                     POLL_BAD_JSON);
    free(body);
    const char *bad[] = { "<html>Jetty</html>", "[1,2]", "{\"workers\": 3}", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(poll_master_answer(mv, store, 0, url, bad[i], strlen(bad[i]), 1, 30000,
                                            err, sizeof err), POLL_BAD_JSON);
    assert_null(master_view_fresh(mv, 0, 1, 30000));
    assert_int_equal(take_dirty(store, &c), 0);

    master_view_destroy(mv);
    store_destroy(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
