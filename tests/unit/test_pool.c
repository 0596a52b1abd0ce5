/* test_pool.c: worker grants in a shared capacity pool: floors, strict FIFO
 * by app start, gang admission, partial rests, idle buffers, reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy/pool.h"

typedef struct pfx {
    policy_pool pool;
    policy_pool_cluster cl[8];
    size_t nc;
    policy_pool_app apps[16];
    size_t na;
    uint32_t order[16];
    char reason[256];
} pfx;

static void pfx_init(pfx *f, const char *name, int max_workers)
{
    memset(f, 0, sizeof(*f));
    f->pool.name = name;
    f->pool.max_workers = max_workers;
}

static int add_cluster(pfx *f, const char *name, int desired, int busy, int min, int idle, int e)
{
    policy_pool_cluster *c = &f->cl[f->nc];
    c->name = name;
    c->desired = desired;
    c->busy = busy;
    c->min_workers = min;
    c->idle_workers = idle;
    c->per_worker = e;
    return (int)f->nc++;
}

static int add_app(pfx *f, int cluster, const char *id, int demand, int min)
{
    policy_pool_app *a = &f->apps[f->na];
    a->id = id;
    a->cluster = cluster;
    a->start_ms = policy_app_start_ms(id, 0);
    a->demand_executors = demand;
    a->min_executors = min;
    return (int)f->na++;
}

static const char *why(pfx *f, int app)
{
    int n = policy_pool_app_reason(&f->pool, f->cl, f->nc, f->apps, f->na, (size_t)app,
                                   f->reason, sizeof(f->reason));
    assert_true(n > 0);
    return f->reason;
}

static int grant(pfx *f)
{
    return policy_pool_grant(&f->pool, f->cl, f->nc, f->apps, f->na, f->order);
}

static void test_fits(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 20);
    int a = add_cluster(&f, "alpha", 8, 2, 1, 1, 2);
    int b = add_cluster(&f, "beta", 6, 0, 1, 1, 2);
    int a1 = add_app(&f, a, "app-20261121093000-0001", 14, 4);
    int b1 = add_app(&f, b, "app-20261121093100-0002", 10, 4);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.cl[a].granted, 8);
    assert_int_equal(f.cl[b].granted, 6);
    assert_int_equal(f.pool.wanted_workers, 14);
    assert_int_equal(f.pool.granted_workers, 14);
    assert_int_equal(f.pool.free_workers, 6);
    assert_int_equal(f.pool.waiting_apps, 0);
    assert_int_equal(f.apps[a1].state, POLICY_APP_GRANTED);
    assert_int_equal(f.apps[b1].state, POLICY_APP_GRANTED);
    assert_string_equal(why(&f, a1), "app-20261121093000-0001 granted 14 executors (pool main)");
}

/* The older app gets its whole demand first; the younger one its gang. */
static void test_fifo_order(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 10);
    int a = add_cluster(&f, "alpha", 8, 0, 0, 0, 2);
    int b = add_cluster(&f, "beta", 8, 0, 0, 0, 2);
    int young = add_app(&f, a, "app-20261121093500-0004", 16, 4);
    int old = add_app(&f, b, "app-20261121093000-0003", 16, 4);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.order[0], (uint32_t)old);
    assert_int_equal(f.cl[b].granted, 8);
    assert_int_equal(f.cl[a].granted, 2);
    assert_int_equal(f.apps[old].state, POLICY_APP_GRANTED);
    assert_int_equal(f.apps[old].granted_executors, 16);
    assert_int_equal(f.apps[young].state, POLICY_APP_PARTIAL);
    assert_int_equal(f.apps[young].granted_executors, 4);
    assert_int_equal(f.pool.free_workers, 0);
    assert_string_equal(why(&f, young), "app-20261121093500-0004 granted 4 of 16 executors: "
                                        "pool main full (10 max)");
}

/* An older gang that does not fit blocks a younger app that would fit:
 * strict FIFO, no backfill (k8s-spark-scheduler "fifo"). */
static void test_gang_blocks_younger(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 10);
    int a = add_cluster(&f, "alpha", 8, 0, 0, 0, 2);
    int b = add_cluster(&f, "beta", 6, 0, 0, 0, 2);
    int c = add_cluster(&f, "gamma", 2, 0, 0, 0, 2);
    int a1 = add_app(&f, a, "app-20261121093000-0005", 12, 12);   /* gang 6 workers */
    int b1 = add_app(&f, b, "app-20261121093100-0007", 10, 10);   /* gang 5 > 4 free */
    int c1 = add_app(&f, c, "app-20261121093200-0009", 2, 2);     /* 1 worker, would fit */
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.apps[a1].state, POLICY_APP_GRANTED);
    assert_int_equal(f.apps[b1].state, POLICY_APP_WAIT_GANG);
    assert_int_equal(f.apps[b1].gang_workers, 5);
    assert_int_equal(f.apps[b1].granted_executors, 0);
    assert_int_equal(f.apps[c1].state, POLICY_APP_WAIT_FIFO);
    assert_int_equal(f.apps[c1].blocked_by, b1);
    assert_int_equal(f.cl[b].granted, 0);
    assert_int_equal(f.cl[c].granted, 0);
    assert_int_equal(f.cl[a].granted, 8);     /* its spare desire, no app held there */
    assert_int_equal(f.cl[b].waiting_apps, 1);
    assert_int_equal(f.pool.waiting_apps, 2);
    assert_string_equal(why(&f, b1), "app-20261121093100-0007 waits: gang of 5 workers does not "
                                     "fit in 4 free (pool main, 10 max)");
    assert_string_equal(why(&f, c1), "app-20261121093200-0009 waits: queued behind "
                                     "app-20261121093100-0007 (FIFO, pool main)");
    /* one worker more and the gang fits: then the younger app gets in too */
    f.pool.max_workers = 12;
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.apps[b1].state, POLICY_APP_GRANTED);
    assert_int_equal(f.apps[c1].state, POLICY_APP_GRANTED);
    assert_int_equal(f.cl[a].granted + f.cl[b].granted + f.cl[c].granted, 12);
    assert_int_equal(f.cl[b].granted, 5);
    assert_int_equal(f.cl[c].granted, 1);
}

/* A younger app whose gang fits on workers its cluster already keeps takes
 * nothing from the pool and is not held back. */
static void test_blocked_but_fits_in_own_cluster(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 6);
    int a = add_cluster(&f, "alpha", 12, 0, 0, 0, 2);
    int c = add_cluster(&f, "gamma", 3, 1, 0, 1, 2);        /* busy 1 = 2 slots */
    int a1 = add_app(&f, a, "app-20261121093000-0001", 20, 20);   /* gang 10 > 5 free */
    int c1 = add_app(&f, c, "app-20261121093100-0002", 4, 2);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.apps[a1].state, POLICY_APP_WAIT_GANG);
    assert_int_equal(f.apps[c1].state, POLICY_APP_PARTIAL);  /* gang on its own slots */
    assert_int_equal(f.apps[c1].granted_executors, 2);
    assert_int_equal(f.apps[c1].blocked_by, a1);
    assert_int_equal(f.cl[c].granted, 1);                    /* no growth behind the queue */
    assert_int_equal(f.cl[a].granted, 0);
    assert_string_equal(why(&f, c1), "app-20261121093100-0002 granted 2 of 4 executors: the "
                                     "rest queues behind app-20261121093000-0001 (FIFO, pool main)");
}

static void test_busy_never_taken(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "small", 4);
    int a = add_cluster(&f, "alpha", 3, 3, 0, 0, 2);
    int b = add_cluster(&f, "beta", 6, 3, 1, 1, 2);
    int b1 = add_app(&f, b, "app-20261121093000-0001", 12, 2);
    assert_int_equal(grant(&f), 0);
    assert_true(f.pool.over_budget);
    assert_int_equal(f.cl[a].granted, 3);
    assert_int_equal(f.cl[b].granted, 3);
    assert_int_equal(f.pool.free_workers, 0);
    assert_int_equal(f.apps[b1].state, POLICY_APP_PARTIAL);   /* gang on busy slots */
    assert_int_equal(f.apps[b1].granted_executors, 6);
    /* a caller's desired below busy still gets busy */
    pfx_init(&f, "p", 100);
    a = add_cluster(&f, "alpha", 1, 5, 0, 0, 2);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.cl[a].granted, 5);
}

/* A gang bigger than its own cluster's desired size waits, but only for
 * itself: younger apps of other clusters are not queued behind it. */
static void test_cluster_room(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 10);
    int b = add_cluster(&f, "beta", 2, 0, 0, 0, 2);
    int c = add_cluster(&f, "gamma", 3, 0, 0, 0, 2);
    int b1 = add_app(&f, b, "app-20261121093000-0001", 8, 8);
    int c1 = add_app(&f, c, "app-20261121093100-0002", 6, 6);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.apps[b1].state, POLICY_APP_WAIT_CLUSTER);
    assert_int_equal(f.apps[c1].state, POLICY_APP_GRANTED);
    assert_int_equal(f.cl[c].granted, 3);
    assert_int_equal(f.cl[b].granted, 2);    /* its own desire still granted */
    assert_string_equal(why(&f, b1), "app-20261121093000-0001 waits: gang of 4 workers exceeds "
                                     "cluster beta's room of 2 (desired 2)");
}

static void test_no_decision_cluster(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 10);
    int a = add_cluster(&f, "alpha", -1, 2, 1, 1, 2);
    int b = add_cluster(&f, "beta", 10, 0, 0, 0, 2);
    int a1 = add_app(&f, a, "app-20261121093000-0001", 8, 2);
    int b1 = add_app(&f, b, "app-20261121093100-0002", 20, 2);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.cl[a].granted, -1);
    assert_int_equal(f.cl[b].granted, 8);    /* 2 kept by alpha's busy workers */
    assert_int_equal(f.apps[a1].state, POLICY_APP_PARTIAL);   /* gang on its busy slots */
    assert_int_equal(f.apps[b1].state, POLICY_APP_PARTIAL);
    f.apps[a1].min_executors = 6;            /* now it needs new workers it cannot get */
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.apps[a1].state, POLICY_APP_WAIT_CLUSTER);
    assert_string_equal(why(&f, a1), "app-20261121093000-0001 waits: cluster alpha has no "
                                     "decision (size unknown)");
}

/* Idle buffers go out before other spare desire, oldest cluster first. */
static void test_idle_buffers(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 5);
    int a = add_cluster(&f, "alpha", 3, 0, 0, 1, 2);
    int b = add_cluster(&f, "beta", 3, 0, 0, 1, 2);
    add_app(&f, b, "app-20261121093100-0002", 4, 0);
    add_app(&f, a, "app-20261121093000-0001", 4, 0);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.cl[a].granted, 3);
    assert_int_equal(f.cl[b].granted, 2);
    /* a cluster without apps comes after those with apps */
    pfx_init(&f, "main", 5);
    a = add_cluster(&f, "empty", 4, 0, 0, 2, 2);
    b = add_cluster(&f, "beta", 4, 0, 0, 1, 2);
    add_app(&f, b, "app-20261121093100-0002", 6, 0);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.cl[b].granted, 4);
    assert_int_equal(f.cl[a].granted, 1);
}

static void test_ties_and_errors(void **unused)
{
    (void)unused;
    pfx f;
    pfx_init(&f, "main", 10);
    int a = add_cluster(&f, "alpha", 4, 0, 0, 0, 2);
    add_app(&f, a, "app-20261121093000-0010", 2, 0);
    add_app(&f, a, "app-20261121093000-0002", 2, 0);
    add_app(&f, a, "app-20261121092959-0099", 2, 0);
    assert_int_equal(grant(&f), 0);
    assert_int_equal(f.order[0], 2);
    assert_int_equal(f.order[1], 1);
    assert_int_equal(f.order[2], 0);

    assert_int_equal(policy_pool_grant(NULL, f.cl, f.nc, f.apps, f.na, f.order), -EINVAL);
    assert_int_equal(policy_pool_grant(&f.pool, f.cl, f.nc, f.apps, f.na, NULL), -EINVAL);
    f.apps[1].cluster = 5;
    assert_int_equal(grant(&f), -EINVAL);
    f.apps[1].cluster = 0;
    f.cl[0].per_worker = 0;
    assert_int_equal(grant(&f), -EINVAL);
    f.cl[0].per_worker = 2;
    assert_int_equal(policy_pool_app_reason(&f.pool, f.cl, f.nc, f.apps, f.na, 9, f.reason,
                                            sizeof(f.reason)), -EINVAL);
    /* empty pool */
    pfx_init(&f, "none", 3);
    assert_int_equal(policy_pool_grant(&f.pool, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(f.pool.free_workers, 3);
}

/* From policy_evaluate results to grants, as the daemon does it. */
static void test_from_evaluate(void **unused)
{
    (void)unused;
    policy_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.min_workers = 0;
    conf.max_workers = 20;
    conf.idle_workers = 1;
    conf.scale_down_window_s = 60;
    conf.stale_after_s = 30;
    conf.app_expiry_s = 60;
    conf.app_min_executors = 4;
    const int64_t now = 1795253500000LL;
    policy_app apps[2][2] = {
        {{"app-20261121093000-0001", 0, 10, -1, now, -1, 0, 0},
         {"app-20261121080000-0001", 0, 6, -1, 0, -1, 0, 0}},
        {{"app-20261121092000-0004", 0, 12, -1, now, -1, 0, 0}, {NULL, 0, 0, -1, now, -1, 0, 0}},
    };
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            apps[i][j].start_ms = policy_app_start_ms(apps[i][j].id, now);
    policy_input in[2];
    policy_state st[2];
    policy_result res[2];
    pfx f;
    pfx_init(&f, "shared", 8);
    for (int i = 0; i < 2; i++) {
        memset(&in[i], 0, sizeof(in[i]));
        in[i].conf = &conf;
        in[i].worker_cores = 4;
        in[i].worker_memory_mb = 8192;
        in[i].executor_cores = 2;
        in[i].executor_memory_mb = 4096;
        in[i].current_workers = 0;
        in[i].busy_workers = 0;
        in[i].apps = apps[i];
        in[i].napps = i == 0 ? 2 : 1;
        in[i].last_data_ms = now;
        in[i].now_ms = now;
        policy_state_init(&st[i], now);
        assert_int_equal(policy_evaluate(&in[i], &st[i], &res[i]), 0);
        policy_pool_cluster_from(&in[i], &res[i], i == 0 ? "alpha" : "beta", &f.cl[f.nc++]);
        f.na += policy_pool_collect_apps(&in[i], i, f.apps + f.na, 16 - f.na);
    }
    assert_int_equal(res[0].desired, 6);     /* 10 executors (the 6 expired) = 5 + 1 */
    assert_int_equal(res[1].desired, 7);
    assert_int_equal(f.na, 2);               /* expired app left out */
    assert_int_equal(f.apps[1].min_executors, 4);
    assert_int_equal(grant(&f), 0);
    /* beta's app started 09:20, alpha's 09:30: beta's whole demand first */
    assert_int_equal(f.apps[1].state, POLICY_APP_GRANTED);
    assert_int_equal(f.apps[0].state, POLICY_APP_PARTIAL);
    assert_int_equal(f.apps[0].granted_executors, 4);   /* its gang of 2 workers */
    assert_int_equal(f.cl[1].granted, 6);
    assert_int_equal(f.cl[0].granted, 2);
}

static uint64_t rng = 0xD1B54A32D192ED03ULL;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33) % n;
}

static void test_invariants_random(void **unused)
{
    (void)unused;
    for (int run = 0; run < 3000; run++) {
        pfx f;
        pfx_init(&f, "r", (int)rnd(40));
        f.nc = 1 + rnd(8);
        int64_t floors = 0, caps = 0;
        for (size_t i = 0; i < f.nc; i++) {
            policy_pool_cluster *c = &f.cl[i];
            c->name = "c";
            c->busy = (int)rnd(5) - 1;
            c->min_workers = (int)rnd(3);
            c->idle_workers = (int)rnd(3);
            c->per_worker = 1 + (int)rnd(4);
            c->desired = rnd(10) == 0 ? -1 : (int)rnd(15);
        }
        f.na = rnd(16);
        for (size_t i = 0; i < f.na; i++) {
            policy_pool_app *a = &f.apps[i];
            a->id = "app";
            a->cluster = (int)rnd((uint32_t)f.nc);
            a->start_ms = rnd(5);
            a->demand_executors = (int)rnd(20) - 1;
            a->min_executors = (int)rnd(10);
        }
        assert_int_equal(grant(&f), 0);
        int64_t total = 0;
        for (size_t i = 0; i < f.nc; i++) {
            policy_pool_cluster *c = &f.cl[i];
            int busy = c->busy > 0 ? c->busy : 0;
            int fl = c->min_workers > busy ? c->min_workers : busy;
            int cap = c->desired > fl ? c->desired : fl;
            floors += fl;
            if (c->desired < 0) {
                assert_int_equal(c->granted, -1);
                total += fl;
                caps += fl;
                continue;
            }
            caps += cap;
            assert_true(c->granted >= fl);
            assert_true(c->granted >= busy);
            assert_true(c->granted <= cap);
            total += c->granted;
            int64_t used = 0;
            for (size_t j = 0; j < f.na; j++)
                if (f.apps[j].cluster == (int)i)
                    used += f.apps[j].granted_executors;
            assert_true(used <= (int64_t)c->granted * c->per_worker);
        }
        assert_true(total <= (floors > f.pool.max_workers ? floors : f.pool.max_workers));
        if (caps <= f.pool.max_workers)
            for (size_t i = 0; i < f.nc; i++)
                if (f.cl[i].desired >= 0) {
                    int busy = f.cl[i].busy > 0 ? f.cl[i].busy : 0;
                    int fl = f.cl[i].min_workers > busy ? f.cl[i].min_workers : busy;
                    assert_int_equal(f.cl[i].granted, f.cl[i].desired > fl ? f.cl[i].desired : fl);
                }
        int seen_gang_wait = 0;
        for (size_t k = 0; k < f.na; k++) {
            const policy_pool_app *a = &f.apps[f.order[k]];
            if (k > 0)
                assert_true(f.apps[f.order[k - 1]].start_ms <= a->start_ms);
            int d = a->demand_executors > 0 ? a->demand_executors : 0;
            int m = a->min_executors < d ? a->min_executors : d;
            switch (a->state) {
            case POLICY_APP_GRANTED:
                assert_int_equal(a->granted_executors, d);
                /* strict FIFO: nothing younger than a gang wait got new workers */
                if (seen_gang_wait)
                    assert_int_equal(a->gang_workers, 0);
                break;
            case POLICY_APP_PARTIAL:
                assert_true(a->granted_executors >= m);   /* gang whole */
                assert_true(a->granted_executors < d);
                if (seen_gang_wait)
                    assert_int_equal(a->gang_workers, 0);
                break;
            case POLICY_APP_WAIT_GANG:
                assert_false(seen_gang_wait);             /* only the first waits for room */
                seen_gang_wait = 1;
                assert_int_equal(a->granted_executors, 0);
                assert_true(a->gang_workers > a->free_workers);
                break;
            case POLICY_APP_WAIT_FIFO:
                assert_true(seen_gang_wait);
                assert_int_equal(a->granted_executors, 0);
                break;
            case POLICY_APP_WAIT_CLUSTER:
                assert_int_equal(a->granted_executors, 0);
                break;
            }
            char buf[160];
            assert_true(policy_pool_app_reason(&f.pool, f.cl, f.nc, f.apps, f.na, f.order[k],
                                               buf, sizeof(buf)) > 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_gang_blocks_younger),
        cmocka_unit_test(test_blocked_but_fits_in_own_cluster),
        cmocka_unit_test(test_busy_never_taken),
        cmocka_unit_test(test_cluster_room),
        cmocka_unit_test(test_no_decision_cluster),
        cmocka_unit_test(test_idle_buffers),
        cmocka_unit_test(test_ties_and_errors),
        cmocka_unit_test(test_from_evaluate),
        cmocka_unit_test(test_invariants_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
