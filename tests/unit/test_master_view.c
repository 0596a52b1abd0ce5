/* test_master_view.c: the newest ALIVE master answer per cluster over
 * answers recorded from a real Spark 3.5.9 master: ALIVE/busy/idle counts,
 * removable workers with real ids and ports, freshness, change detection,
 * and the JSON status shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/master_view.h"
#include "tests/unit/fixture.h"

static ss_master_state *load(const char *name)
{
    char path[256], err[256] = "";
    size_t len = 0;
    snprintf(path, sizeof path, "spark_master/%s", name);
    char *json = fixture_read(path, &len);
    if (!json)
        fail_msg("cannot read %s", path);
    ss_master_state *st = NULL;
    if (ss_master_parse(json, len, &st, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    free(json);
    return st;
}

/* app_running.json: 3 ALIVE workers, two running an executor each. */
static void test_counts_and_idle(void **state)
{
    (void)state;
    ss_master_state *st = load("app_running.json");
    assert_int_equal(master_view_alive(st), 3);
    assert_int_equal(master_view_busy(st), 2);
    ss_worker_ref out[4];
    size_t n = master_view_idle(st, out, 4);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].id, "worker-20261201143615-127.0.0.2-46423");
    assert_string_equal(out[0].host, "127.0.0.2");
    assert_int_equal(out[0].port, 46423);
    assert_int_equal(master_view_idle(st, out, 0), 0);
    ss_master_state_free(st);

    /* Right after the idle worker was decommissioned: it is neither alive,
     * busy nor removable. */
    st = load("app_running_decommissioned.json");
    assert_int_equal(master_view_alive(st), 2);
    assert_int_equal(master_view_busy(st), 2);
    assert_int_equal(master_view_idle(st, out, 4), 0);
    ss_master_state_free(st);

    /* No app: every ALIVE worker is removable, sorted by id. */
    st = load("no_app.json");
    assert_int_equal(master_view_alive(st), 3);
    assert_int_equal(master_view_busy(st), 0);
    n = master_view_idle(st, out, 4);
    assert_int_equal(n, 3);
    assert_true(strcmp(out[0].id, out[1].id) < 0 && strcmp(out[1].id, out[2].id) < 0);
    ss_master_state_free(st);

    /* A DEAD worker counts nowhere. */
    st = load("worker_dead.json");
    for (size_t i = 0; i < st->nworkers; i++)
        if (st->workers[i].state == SS_WORKER_DEAD)
            for (size_t k = 0, m = master_view_idle(st, out, 4); k < m; k++)
                assert_string_not_equal(out[k].id, st->workers[i].id);
    ss_master_state_free(st);
    assert_int_equal(master_view_alive(NULL), 0);
    assert_int_equal(master_view_busy(NULL), 0);
}

/* A worker whose id does not fit the decision's field is left out rather
 * than named wrong. */
static void test_idle_skips_overlong_ids(void **state)
{
    (void)state;
    ss_master_state *st = load("no_app.json");
    char *longid = malloc(200);
    memset(longid, 'w', 199);
    longid[199] = '\0';
    free(st->workers[0].id);
    st->workers[0].id = longid;
    ss_worker_ref out[4];
    assert_int_equal(master_view_idle(st, out, 4), 2);
    for (size_t k = 0; k < 2; k++)
        assert_string_not_equal(out[k].id, longid);
    ss_master_state_free(st);
}

static void test_fresh_and_changes(void **state)
{
    (void)state;
    ss_master_view *v = master_view_create(2);
    assert_non_null(v);
    const char *url = "http://u:secret@master:8080";
    assert_null(master_view_fresh(v, 0, 1000, 30000));
    assert_int_equal(master_view_fetched_ms(v, 0), 0);
    /* First answer: a change. */
    assert_int_equal(master_view_put(v, 0, load("app_running.json"), url, 1000), 1);
    assert_non_null(master_view_fresh(v, 0, 1000, 30000));
    assert_non_null(master_view_fresh(v, 0, 31000, 30000));
    assert_null(master_view_fresh(v, 0, 31001, 30000));   /* older than the policy's stale_after */
    assert_int_equal(master_view_fetched_ms(v, 0), 1000);
    assert_null(master_view_fresh(v, 1, 1000, 30000));
    /* The same workers again (heartbeats moved): no change, but fresh again. */
    assert_int_equal(master_view_put(v, 0, load("app_running.json"), url, 40000), 0);
    assert_non_null(master_view_fresh(v, 0, 40000, 30000));
    /* The idle worker decommissioned: a change. */
    assert_int_equal(master_view_put(v, 0, load("app_running_decommissioned.json"), url, 41000), 1);
    /* App gone, same ALIVE count but busy and idle differ: a change. */
    assert_int_equal(master_view_put(v, 0, load("app_completed.json"), url, 42000), 1);
    assert_false(master_view_lists_app(master_view_fresh(v, 0, 42000, 30000),
                                       "app-20261201143622-0000"));
    /* Only the active apps differ (workers all idle in both): a change too,
     * so an app that ended is decided on at once. */
    ss_master_state *st = load("app_completed.json");
    free(st->activeapps);
    st->activeapps = calloc(1, sizeof *st->activeapps);
    st->activeapps[0].id = strdup("app-20261201143622-0001");
    st->nactiveapps = 1;
    assert_true(master_view_lists_app(st, "app-20261201143622-0001"));
    assert_false(master_view_lists_app(st, "app-20261201143622-0000"));
    assert_false(master_view_lists_app(NULL, "app-20261201143622-0001"));
    assert_false(master_view_lists_app(st, NULL));
    assert_int_equal(master_view_put(v, 0, st, url, 42500), 1);
    assert_int_equal(master_view_put(v, 0, load("app_completed.json"), url, 43000), 1);
    assert_int_equal(master_view_put(v, 0, load("app_completed.json"), url, 43500), 0);
    /* Bad arguments free what they were given. */
    assert_int_equal(master_view_put(v, 2, load("no_app.json"), url, 1), -EINVAL);
    assert_int_equal(master_view_put(v, -1, load("no_app.json"), url, 1), -EINVAL);
    assert_int_equal(master_view_put(v, 0, NULL, url, 1), -EINVAL);
    assert_null(master_view_fresh(NULL, 0, 1, 1));
    assert_int_equal(master_view_fetched_ms(NULL, 0), 0);

    /* Status JSON: masked URL, freshness, workers with ids and ports, apps. */
    json_t *j = master_view_json(v, 0, 42000, 30000);
    assert_string_equal(json_string_value(json_object_get(j, "url")), "http://u:***@master:8080");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ALIVE");
    assert_true(json_is_true(json_object_get(j, "fresh")));
    json_t *ws = json_object_get(j, "workers");
    assert_true(json_array_size(ws) >= 3);
    assert_non_null(json_string_value(json_object_get(json_array_get(ws, 0), "id")));
    assert_true(json_integer_value(json_object_get(json_array_get(ws, 0), "port")) > 0);
    assert_int_equal(json_array_size(json_object_get(j, "activeapps")), 0);
    json_decref(j);
    j = master_view_json(v, 0, 99000, 30000);
    assert_true(json_is_false(json_object_get(j, "fresh")));
    json_decref(j);
    j = master_view_json(v, 1, 1, 1);
    assert_true(json_is_null(j));
    json_decref(j);
    master_view_destroy(v);
    master_view_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_idle),
        cmocka_unit_test(test_idle_skips_overlong_ids),
        cmocka_unit_test(test_fresh_and_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
