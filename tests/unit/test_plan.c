/* test_plan.c: the actuator's pure planning (actuator/plan.c): decision
 * ordering by (epoch, sequence) without ordering epochs, and scale-in
 * victims chosen from the real master answers of tests/fixtures/spark_master/
 * (Spark 3.5.9) and from hand-made states for shared hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "actuator/plan.h"
#include "tests/unit/fixture.h"

static char *fixture(const char *name, size_t *len)
{
    char rel[512];
    snprintf(rel, sizeof rel, "spark_master/%s", name);
    char *buf = fixture_read(rel, len);
    if (!buf)
        fail_msg("cannot read tests/fixtures/%s", rel);
    return buf;
}

static ss_master_state *master(const char *name)
{
    size_t len;
    char *json = fixture(name, &len), err[256];
    ss_master_state *m = NULL;
    if (ss_master_parse(json, len, &m, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    free(json);
    return m;
}

static int has_victim(const plan_victims *pv, const char *host)
{
    for (size_t i = 0; i < pv->n; i++)
        if (strcmp(pv->v[i].ref.host, host) == 0)
            return 1;
    return 0;
}

static const ss_kept_worker *kept(const plan_victims *pv, const char *host)
{
    for (size_t i = 0; i < pv->nkept; i++)
        if (strcmp(pv->kept[i].worker.host, host) == 0)
            return &pv->kept[i];
    return NULL;
}

/* ---- ordering ---- */

static void test_classify(void **state)
{
    (void)state;
    plan_history h;
    memset(&h, 0, sizeof h);
    const int64_t E1 = 1795237000000LL, now = 1795237900000LL;
    assert_int_equal(plan_classify(&h, E1, 1, 0, now), PLAN_NEW);
    plan_history_note(&h, E1, 1);
    assert_int_equal(plan_classify(&h, E1, 1, 0, now), PLAN_DUPLICATE);
    assert_int_equal(plan_classify(&h, E1, 2, 0, now), PLAN_NEW);
    plan_history_note(&h, E1, 2);
    plan_history_note(&h, E1, 3);
    /* An older sequence of a known epoch that was never seen: stale. */
    plan_history h2 = h;
    plan_history_note(&h2, E1, 7);
    assert_int_equal(plan_classify(&h2, E1, 5, 0, now), PLAN_STALE);
    /* A duplicate of an older one is a duplicate, not stale. */
    assert_int_equal(plan_classify(&h2, E1, 2, 0, now), PLAN_DUPLICATE);
    /* Noting a lower sequence does not lower the maximum. */
    plan_history_note(&h2, E1, 4);
    assert_int_equal(plan_classify(&h2, E1, 6, 0, now), PLAN_STALE);
    /* sparkscaled restarted with a clock that stepped back: its epoch is
     * smaller, yet its decisions are new (partition order, not epochs). */
    const int64_t E0 = E1 - 3600000;
    assert_int_equal(plan_classify(&h, E0, 1, 0, now), PLAN_NEW);
    plan_history_note(&h, E0, 1);
    assert_int_equal(plan_classify(&h, E0, 1, 0, now), PLAN_DUPLICATE);
    /* A replay of the first epoch is still recognised. */
    assert_int_equal(plan_classify(&h, E1, 2, 0, now), PLAN_DUPLICATE);
    assert_int_equal(plan_classify(&h, E1, 4, 0, now), PLAN_NEW);
    /* Expiry. */
    assert_int_equal(plan_classify(&h, E0, 2, now - 1, now), PLAN_EXPIRED);
    assert_int_equal(plan_classify(&h, E0, 2, now + 1, now), PLAN_NEW);
    /* Duplicates are reported before expiry. */
    assert_int_equal(plan_classify(&h, E0, 1, now - 1, now), PLAN_DUPLICATE);
}

static void test_history_bounds(void **state)
{
    (void)state;
    plan_history h;
    memset(&h, 0, sizeof h);
    for (int e = 1; e <= PLAN_EPOCHS + 3; e++)
        plan_history_note(&h, e, 10);
    assert_int_equal(h.nepochs, PLAN_EPOCHS);
    /* The newest epochs are kept. */
    assert_int_equal(plan_classify(&h, PLAN_EPOCHS + 3, 9, 0, 0), PLAN_STALE);
    assert_int_equal(plan_classify(&h, 4, 9, 0, 0), PLAN_STALE);
    /* Epochs 1..3 fell out of the table; their ids out of the ring only later. */
    for (uint64_t s = 100; s < 100 + PLAN_RECENT; s++)
        plan_history_note(&h, PLAN_EPOCHS + 3, s);
    assert_int_equal(plan_classify(&h, 1, 9, 0, 0), PLAN_NEW);
    assert_int_equal(h.nrecent, PLAN_RECENT);
}

/* ---- victims from real answers ---- */

/* app_running: 127.0.0.2 idle, 127.0.0.3 and 127.0.0.4 busy (2 cores each). */
static void test_busy_never_chosen(void **state)
{
    (void)state;
    ss_master_state *m = master("app_running.json");
    plan_victims pv;
    assert_int_equal(plan_choose_victims(m, NULL, 0, 1, &pv), 0);
    assert_int_equal(pv.n, 1);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.2");
    assert_string_equal(pv.v[0].ref.id, "worker-20261201143615-127.0.0.2-46423");
    assert_int_equal(pv.v[0].ref.port, 46423);
    assert_int_equal(pv.v[0].decommissioned, 0);
    plan_victims_free(&pv);

    /* Three wanted, one possible: the two busy ones are kept, with why. */
    assert_int_equal(plan_choose_victims(m, NULL, 0, 3, &pv), 0);
    assert_int_equal(pv.n, 1);
    assert_int_equal(pv.busy, 2);
    assert_int_equal(pv.kept_total, 2);
    assert_non_null(kept(&pv, "127.0.0.3"));
    assert_non_null(strstr(kept(&pv, "127.0.0.4")->reason, "busy: 2 cores used"));
    assert_non_null(strstr(pv.note, "1 of 3 chosen: 2 busy"));
    plan_victims_free(&pv);
    ss_master_state_free(m);
}

static void test_named_preferred(void **state)
{
    (void)state;
    ss_master_state *m = master("no_app.json");
    /* Named by host and port, as sparkscaled fills removable_workers. */
    ss_worker_ref named[1] = { { "", "127.0.0.4", 58167 } };
    plan_victims pv;
    assert_int_equal(plan_choose_victims(m, named, 1, 1, &pv), 0);
    assert_int_equal(pv.n, 1);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.4");
    assert_int_equal(pv.v[0].named, 1);
    plan_victims_free(&pv);
    /* Two: the named one first, then by host name. */
    assert_int_equal(plan_choose_victims(m, named, 1, 2, &pv), 0);
    assert_int_equal(pv.n, 2);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.4");
    assert_string_equal(pv.v[1].ref.host, "127.0.0.2");
    plan_victims_free(&pv);
    /* Named but busy: never. */
    ss_master_state *r = master("app_running.json");
    assert_int_equal(plan_choose_victims(r, named, 1, 1, &pv), 0);
    assert_int_equal(pv.n, 1);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.2");
    plan_victims_free(&pv);
    ss_master_state_free(r);
    ss_master_state_free(m);
}

/* A DECOMMISSIONED worker takes no work again: it goes first. */
static void test_decommissioned_first(void **state)
{
    (void)state;
    ss_master_state *m = master("app_running_decommissioned.json");
    ss_worker_ref named[1] = { { "", "127.0.0.9", 1 } };
    plan_victims pv;
    assert_int_equal(plan_choose_victims(m, named, 1, 1, &pv), 0);
    assert_int_equal(pv.n, 1);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.2");
    assert_int_equal(pv.v[0].decommissioned, 1);
    plan_victims_free(&pv);
    ss_master_state_free(m);
}

/* A recovering master shows its workers UNKNOWN: nothing may go. */
static void test_unknown_kept(void **state)
{
    (void)state;
    ss_master_state *m = master("master_recovering.json");
    plan_victims pv;
    assert_int_equal(plan_choose_victims(m, NULL, 0, 1, &pv), 0);
    assert_int_equal(pv.n, 0);
    assert_int_equal(pv.kept_total, 1);
    assert_non_null(strstr(pv.kept[0].reason, "UNKNOWN"));
    plan_victims_free(&pv);
    ss_master_state_free(m);
}

/* ---- shared hosts (bare metal: several workers per host) ---- */

static ss_spark_worker W(const char *id, const char *host, int port, int used, ss_worker_state st)
{
    ss_spark_worker w;
    memset(&w, 0, sizeof w);
    w.id = (char *)id;
    w.host = (char *)host;
    w.port = port;
    w.cores = 4;
    w.coresused = used;
    w.coresfree = 4 - used;
    w.state = st;
    return w;
}

static void test_shared_hosts(void **state)
{
    (void)state;
    ss_spark_worker ws[] = {
        W("worker-1-hostA-1", "hostA", 1, 2, SS_WORKER_ALIVE),   /* busy */
        W("worker-1-hostA-2", "hostA", 2, 0, SS_WORKER_ALIVE),   /* idle, shares hostA */
        W("worker-1-hostB-1", "HOSTB", 1, 0, SS_WORKER_ALIVE),   /* idle pair on hostB */
        W("worker-1-hostB-2", "hostb", 2, 0, SS_WORKER_ALIVE),
        W("worker-1-hostC-1", "hostC", 1, 0, SS_WORKER_ALIVE),   /* idle alone */
        W("worker-1-hostD-1", "hostD", 1, 0, SS_WORKER_DEAD),    /* not counted */
    };
    ss_master_state m;
    memset(&m, 0, sizeof m);
    m.status = SS_MASTER_ALIVE;
    m.workers = ws;
    m.nworkers = sizeof ws / sizeof ws[0];
    ss_worker_ref named[1] = { { "worker-1-hostA-2", "hostA", 2 } };
    plan_victims pv;
    /* One to go: hostB has two (decommission is per host), hostA is busy:
     * hostC. The named idle worker on hostA is never sent. */
    assert_int_equal(plan_choose_victims(&m, named, 1, 1, &pv), 0);
    assert_int_equal(pv.n, 1);
    assert_string_equal(pv.v[0].ref.host, "hostC");
    const ss_kept_worker *k = kept(&pv, "hostA");
    assert_non_null(k);
    assert_non_null(kept(&pv, "HOSTB"));
    assert_non_null(strstr(kept(&pv, "HOSTB")->reason, "runs 2 workers"));
    plan_victims_free(&pv);
    /* Three: hostB whole (case-insensitive host match) and hostC. */
    assert_int_equal(plan_choose_victims(&m, NULL, 0, 3, &pv), 0);
    assert_int_equal(pv.n, 3);
    assert_true(has_victim(&pv, "HOSTB") && has_victim(&pv, "hostb") && has_victim(&pv, "hostC"));
    assert_false(has_victim(&pv, "hostA"));
    assert_non_null(strstr(kept(&pv, "hostA")->reason, "busy"));
    plan_victims_free(&pv);
}

/* ---- right before removal ---- */

static void test_recheck(void **state)
{
    (void)state;
    ss_master_state *idle = master("no_app.json");
    ss_master_state *busy = master("app_running.json");
    ss_master_state *dec = master("app_running_decommissioned.json");
    ss_master_state *dead = master("worker_dead.json");
    plan_victims pv;
    /* Chosen while all three were idle. */
    assert_int_equal(plan_choose_victims(idle, NULL, 0, 3, &pv), 0);
    assert_int_equal(pv.n, 3);
    /* Two picked up executors meanwhile: only 127.0.0.2 may still go. */
    assert_int_equal(plan_recheck(&pv, busy, 0), 2);
    assert_int_equal(pv.n, 1);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.2");
    assert_non_null(strstr(kept(&pv, "127.0.0.3")->reason, "picked up work"));
    /* With decommission: ALIVE is not enough... */
    plan_victims copy = pv;
    copy.v = malloc(sizeof *copy.v);
    copy.v[0] = pv.v[0];
    assert_int_equal(plan_recheck(&copy, busy, 1), 1);
    assert_int_equal(copy.n, 0);
    assert_non_null(strstr(copy.kept[copy.nkept - 1].reason, "not DECOMMISSIONED"));
    plan_victims_free(&copy);
    /* ...DECOMMISSIONED is. */
    assert_int_equal(plan_decommissioned(&pv, busy), 0);
    assert_int_equal(plan_decommissioned(&pv, dec), 1);
    assert_int_equal(plan_recheck(&pv, dec, 1), 0);
    assert_int_equal(pv.n, 1);
    assert_int_equal(pv.v[0].decommissioned, 1);
    plan_victims_free(&pv);
    /* A victim whose worker died is gone: it counts as done and may go. */
    ss_worker_ref named[1] = { { "", "127.0.0.4", 58167 } };
    assert_int_equal(plan_choose_victims(idle, named, 1, 1, &pv), 0);
    assert_string_equal(pv.v[0].ref.host, "127.0.0.4");
    assert_int_equal(plan_decommissioned(&pv, dead), 1);
    assert_int_equal(plan_recheck(&pv, dead, 1), 0);
    assert_int_equal(pv.n, 1);
    plan_victims_free(&pv);
    ss_master_state_free(idle);
    ss_master_state_free(busy);
    ss_master_state_free(dec);
    ss_master_state_free(dead);
}

static void test_from_decision(void **state)
{
    (void)state;
    ss_worker_ref named[3] = { { "w1", "10.0.0.1", 1 }, { "w2", "10.0.0.2", 2 }, { "w3", "10.0.0.3", 3 } };
    plan_victims pv;
    const int64_t now = 1795237900000LL;
    assert_int_equal(plan_victims_from_decision(named, 3, 2, now - 5000, now, 30000, &pv), 0);
    assert_int_equal(pv.n, 2);
    assert_string_equal(pv.v[1].ref.host, "10.0.0.2");
    plan_victims_free(&pv);
    /* Too old: nothing. */
    assert_int_equal(plan_victims_from_decision(named, 3, 2, now - 31000, now, 30000, &pv), 0);
    assert_int_equal(pv.n, 0);
    assert_non_null(strstr(pv.note, "max_decision_age_s"));
    /* None named: nothing. */
    assert_int_equal(plan_victims_from_decision(named, 0, 2, now, now, 30000, &pv), 0);
    assert_int_equal(pv.n, 0);
    assert_non_null(strstr(pv.note, "names no removable worker"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_history_bounds),
        cmocka_unit_test(test_busy_never_chosen),
        cmocka_unit_test(test_named_preferred),
        cmocka_unit_test(test_decommissioned_first),
        cmocka_unit_test(test_unknown_kept),
        cmocka_unit_test(test_shared_hosts),
        cmocka_unit_test(test_recheck),
        cmocka_unit_test(test_from_decision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
