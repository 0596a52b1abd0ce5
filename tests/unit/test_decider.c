/* test_decider.c: the decider over a real store and a recording sink: what
 * it publishes, when, with which trigger time; pool grants before any
 * publish; dry run; views and delivery reports. No Kafka, no loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ingest/decider.h"
#include "ingest/master_view.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "tests/unit/fixture.h"

#define MAX_PUB 3000

typedef struct published {
    char cluster[SS_BUS_NAME_MAX];
    int desired, current, reason_code, dry_run;
    size_t nremovable;
    char removable0[SS_BUS_HOST_MAX];
    char removable0_id[SS_WORKER_ID_MAX];
    int removable0_port;
    int busy;
    int64_t trigger_us;
    char reason[SS_DECISION_REASON_MAX];
} published;

typedef struct fx {
    ss_config *cfg;
    ss_store *store;
    ss_decider *dec;
    char names[2600][SS_BUS_NAME_MAX];
    void *ctx[2600];
    int nnames;
    published pub[MAX_PUB];
    int npub;
    uint64_t seq;
    int reactions;
    int64_t last_reaction_us;
} fx;

static fx *g;

static void *rec_add_cluster(void *sink, const char *name, void *cluster_ctx)
{
    fx *f = sink;
    assert_true(f->nnames < 2600);
    snprintf(f->names[f->nnames], SS_BUS_NAME_MAX, "%s", name);
    f->ctx[f->nnames] = cluster_ctx;
    return f->names[f->nnames++];
}

static int rec_publish(void *sink, void *cluster, const ss_decision *d, uint64_t *seq)
{
    fx *f = sink;
    assert_true(f->npub < MAX_PUB);
    published *p = &f->pub[f->npub++];
    snprintf(p->cluster, sizeof p->cluster, "%s", (const char *)cluster);
    p->desired = d->desired_workers;
    p->current = d->current_workers;
    p->reason_code = d->reason_code;
    p->dry_run = d->dry_run;
    p->nremovable = d->nremovable_workers;
    p->removable0[0] = '\0';
    p->removable0_id[0] = '\0';
    p->removable0_port = 0;
    p->busy = d->busy_workers;
    if (d->nremovable_workers) {
        snprintf(p->removable0, sizeof p->removable0, "%s", d->removable_workers[0].host);
        snprintf(p->removable0_id, sizeof p->removable0_id, "%s", d->removable_workers[0].id);
        p->removable0_port = d->removable_workers[0].port;
    }
    p->trigger_us = d->trigger_us;
    snprintf(p->reason, sizeof p->reason, "%s", d->reason);
    *seq = ++f->seq;
    return 0;
}

static void on_reaction(void *ctx, const char *cluster, uint64_t sequence, int64_t us)
{
    fx *f = ctx;
    f->reactions++;
    f->last_reaction_us = us;
}

static void start(fx *f, const char *yaml)
{
    memset(f, 0, sizeof *f);
    char err[512];
    if (ss_config_load_string(yaml, "t.yaml", &f->cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    f->store = store_create(NULL, f->cfg->nclusters);
    assert_non_null(f->store);
    ss_decision_sink sink = { .add_cluster = rec_add_cluster, .publish = rec_publish,
                              .sink = f, .epoch = 42 };
    f->dec = ss_decider_create(f->cfg, f->store, &sink, err, sizeof err);
    if (!f->dec)
        fail_msg("decider: %s", err);
    ss_decider_set_reaction_hook(f->dec, on_reaction, f);
    g = f;
}

static void stop(fx *f)
{
    ss_decider_destroy(f->dec);
    store_destroy(f->store);
    ss_config_free(f->cfg);
}

static void put(fx *f, int cluster, spark_kind kind, const char *app, int gauge, double v,
                const char *source)
{
    spark_metric m = { .kind = kind, .cluster = cluster, .gauge = gauge,
                       .name = spark_gauge_name(gauge), .name_len = strlen(spark_gauge_name(gauge)),
                       .app = app, .app_len = app ? strlen(app) : 0 };
    int64_t now = ss_wall_ms();
    assert_true(store_put(f->store, &m, source, now, v, now) >= 0);
}

static void app_target(fx *f, int c, const char *app, int target)
{
    put(f, c, SPARK_KIND_APP, app, SPARK_G_TARGET_EXECUTORS, target, NULL);
}

static void alive(fx *f, int c, int workers)
{
    put(f, c, SPARK_KIND_MASTER, NULL, SPARK_G_MASTER_ALIVE_WORKERS, workers, NULL);
}

static const char one_cluster[] =
    "kafka: { heartbeat_s: 3600 }\n"
    "clusters:\n"
    "  - name: alpha\n"
    "    worker:   { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy:   { min_workers: 1, max_workers: 20, idle_workers: 0, idle_mode: need }\n";

/* A change is decided and published in the same turn, carrying the time the
 * change was read; nothing is published again while nothing changes; a
 * delivery report reaches the view and the reaction hook. */
static void test_change_published_once(void **state)
{
    static fx f;   /* several MB: not on the stack */
    start(&f, one_cluster);
    store_set_clock(f.store, 777);
    alive(&f, 0, 2);
    app_target(&f, 0, "app-20261121093000-0001", 10);   /* 10 executors / 2 = 5 workers */
    ss_decider_evaluate_dirty(f.dec);
    assert_int_equal(f.npub, 1);
    assert_string_equal(f.pub[0].cluster, "alpha");
    assert_int_equal(f.pub[0].desired, 5);
    assert_int_equal(f.pub[0].current, 2);
    assert_int_equal(f.pub[0].reason_code, SS_REASON_UP);
    assert_int_equal(f.pub[0].trigger_us, 777);
    assert_int_equal(f.pub[0].dry_run, 0);

    ss_cluster_view v;
    ss_decider_view(f.dec, 0, &v);
    assert_non_null(v.result);
    assert_int_equal(v.result->desired, 5);
    assert_true(v.published);
    assert_int_equal(v.pub_desired, 5);
    assert_int_equal(v.pub_sequence, 1);
    assert_int_equal(v.pub_epoch, 42);
    assert_int_equal(v.pub_delivery, SS_DELIVERY_PENDING);
    assert_int_equal(v.granted, -1);

    /* Nothing new: neither the dirty pass nor the timer republishes. */
    ss_decider_evaluate_dirty(f.dec);
    ss_decider_tick(f.dec);
    assert_int_equal(f.npub, 1);

    /* Kafka acknowledges #1: the view says so, the hook gets the time. */
    ss_decider_on_delivery(f.dec, f.ctx[0], 1, 0, 100);
    ss_decider_view(f.dec, 0, &v);
    assert_int_equal(v.pub_delivery, SS_DELIVERY_ACKED);
    assert_int_equal(f.reactions, 1);
    assert_true(f.last_reaction_us > 0);
    /* A report for an older sequence changes nothing. */
    ss_decider_on_delivery(f.dec, f.ctx[0], 0, -ECANCELED, 100);
    ss_decider_view(f.dec, 0, &v);
    assert_int_equal(v.pub_delivery, SS_DELIVERY_ACKED);

    ss_decider_stats st;
    ss_decider_get_stats(f.dec, &st);
    assert_int_equal(st.evaluations, 2);   /* the change, then the timer pass */
    assert_int_equal(st.published, 1);
    assert_int_equal(ss_decider_cluster_index(f.dec, "alpha"), 0);
    assert_int_equal(ss_decider_cluster_index(f.dec, "beta"), -1);
    stop(&f);
}

/* Scale-in names the idle workers (fresh sources with coresUsed 0) and
 * only those. */
static void test_scale_in_names_idle_workers(void **state)
{
    static const char yaml[] =
        "kafka: { heartbeat_s: 3600 }\n"
        "clusters:\n"
        "  - name: alpha\n"
        "    worker:   { cores: 4, memory_mb: 8192 }\n"
        "    executor: { cores: 2, memory_mb: 4096 }\n"
        "    policy:   { min_workers: 1, max_workers: 20, idle_workers: 0, idle_mode: need,\n"
        "                scale_down_window_s: 0 }\n";
    static fx f;   /* several MB: not on the stack */
    start(&f, yaml);
    alive(&f, 0, 4);
    app_target(&f, 0, "app-20261121093000-0001", 2);    /* 1 worker needed */
    put(&f, 0, SPARK_KIND_WORKER, NULL, SPARK_G_WORKER_CORES_USED, 2, "10.0.0.1");
    put(&f, 0, SPARK_KIND_WORKER, NULL, SPARK_G_WORKER_CORES_USED, 0, "10.0.0.2");
    ss_decider_evaluate_dirty(f.dec);
    /* The restart rule: nothing shrinks during the first window... which is 0 s. */
    ss_decider_tick(f.dec);
    assert_true(f.npub >= 1);
    published *p = &f.pub[f.npub - 1];
    assert_int_equal(p->desired, 1);
    assert_int_equal(p->current, 4);
    assert_int_equal(p->nremovable, 1);
    assert_string_equal(p->removable0, "10.0.0.2");
    stop(&f);
}

/* dry_run is set once, by the decider, from the configuration. */
static void test_dry_run_from_config(void **state)
{
    static const char yaml[] =
        "policy: { dry_run: true }\n"
        "clusters:\n"
        "  - name: alpha\n"
        "    worker:   { cores: 4, memory_mb: 8192 }\n"
        "    executor: { cores: 2, memory_mb: 4096 }\n";
    static fx f;   /* several MB: not on the stack */
    start(&f, yaml);
    alive(&f, 0, 1);
    app_target(&f, 0, "app-20261121093000-0001", 8);
    ss_decider_evaluate_dirty(f.dec);
    assert_int_equal(f.npub, 1);
    assert_int_equal(f.pub[0].dry_run, 1);
    stop(&f);
}

static const char pooled[] =
    "kafka: { heartbeat_s: 3600 }\n"
    "pools:\n"
    "  - { name: shared, max_workers: 6 }\n"
    "policy: { idle_workers: 0, idle_mode: need, min_workers: 0, app_min_executors: 2,\n"
    "          scale_down_window_s: 0 }\n"
    "clusters:\n"
    "  - name: alpha\n"
    "    worker:   { cores: 2, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy:   { pool: shared }\n"
    "  - name: beta\n"
    "    worker:   { cores: 2, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy:   { pool: shared }\n";

static int last_desired(const fx *f, const char *cluster)
{
    for (int i = f->npub - 1; i >= 0; i--)
        if (strcmp(f->pub[i].cluster, cluster) == 0)
            return f->pub[i].desired;
    return 0;
}

/* Clusters of a pool: the grant happens before the publish of the very
 * turn that read the change, so no decision ever exceeds the budget, and a
 * shrink is published before a growth. */
static void test_pool_grant_before_publish(void **state)
{
    static fx f;   /* several MB: not on the stack */
    start(&f, pooled);
    alive(&f, 0, 0);
    alive(&f, 1, 0);
    app_target(&f, 0, "app-20261121093000-0001", 4);   /* alpha: 4 workers */
    ss_decider_evaluate_dirty(f.dec);
    assert_int_equal(last_desired(&f, "alpha"), 4);
    /* beta, younger, wants 5: only 2 are left in the pool. */
    app_target(&f, 1, "app-20261121093500-0002", 5);
    ss_decider_evaluate_dirty(f.dec);                   /* no timer pass in between */
    assert_int_equal(last_desired(&f, "alpha"), 4);
    assert_int_equal(last_desired(&f, "beta"), 2);
    ss_cluster_view v;
    ss_decider_view(f.dec, 1, &v);
    assert_int_equal(v.granted, 2);
    assert_non_null(strstr(v.pool_note, "shared"));
    assert_int_equal(f.pub[f.npub - 1].reason_code, SS_REASON_POOL_LIMIT);
    /* Every prefix of the published stream respects the budget. */
    int a = 0, b = 0;
    for (int i = 0; i < f.npub; i++) {
        if (strcmp(f.pub[i].cluster, "alpha") == 0)
            a = f.pub[i].desired;
        else
            b = f.pub[i].desired;
        assert_true(a + b <= 6);
    }
    /* alpha's app shrinks to 1 and beta gets the room in the same turn,
     * alpha's shrink published first. */
    int before = f.npub;
    app_target(&f, 0, "app-20261121093000-0001", 1);
    ss_decider_evaluate_dirty(f.dec);
    assert_int_equal(f.npub, before + 2);
    assert_string_equal(f.pub[before].cluster, "alpha");
    assert_int_equal(f.pub[before].desired, 1);
    assert_string_equal(f.pub[before + 1].cluster, "beta");
    assert_int_equal(f.pub[before + 1].desired, 5);
    stop(&f);
}

static ss_master_state *master_fixture(const char *name)
{
    char path[256], err[256] = "";
    size_t len;
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

/* While the polled master answer is fresh, current (ALIVE workers), busy
 * and the removable workers (real ids and ports) come from it, not from the
 * worker gauges keyed by sender address; once it is older than
 * stale_after_s, the gauges stand in again. */
static void test_master_answer_drives_workers(void **state)
{
    static const char yaml[] =
        "kafka: { heartbeat_s: 3600 }\n"
        "clusters:\n"
        "  - name: alpha\n"
        "    worker:   { cores: 2, memory_mb: 1024 }\n"
        "    executor: { cores: 2, memory_mb: 512 }\n"
        "    policy:   { min_workers: 1, max_workers: 20, idle_workers: 0, idle_mode: need,\n"
        "                scale_down_window_s: 0, stale_after_s: 30 }\n";
    static fx f;   /* several MB: not on the stack */
    (void)state;
    start(&f, yaml);
    ss_master_view *mv = master_view_create(1);
    ss_decider_set_master_view(f.dec, mv);
    /* Gauges that disagree with the master: 4 alive, one busy source. */
    alive(&f, 0, 4);
    put(&f, 0, SPARK_KIND_WORKER, NULL, SPARK_G_WORKER_CORES_USED, 2, "10.0.0.1");
    put(&f, 0, SPARK_KIND_WORKER, NULL, SPARK_G_WORKER_CORES_USED, 0, "10.0.0.2");
    app_target(&f, 0, "app-20261201143622-0000", 1);     /* N = 1 */
    /* The master: 3 ALIVE, 2 busy, 127.0.0.2 idle. */
    int64_t now = ss_wall_ms();
    assert_int_equal(master_view_put(mv, 0, master_fixture("app_running.json"), "http://m", now), 1);
    ss_decider_evaluate_dirty(f.dec);
    ss_decider_tick(f.dec);
    assert_true(f.npub >= 1);
    published *p = &f.pub[f.npub - 1];
    assert_int_equal(p->current, 3);
    assert_int_equal(p->busy, 2);
    assert_int_equal(p->desired, 2);                     /* max(N + I, A) = A */
    assert_int_equal(p->nremovable, 1);
    assert_string_equal(p->removable0_id, "worker-20261201143615-127.0.0.2-46423");
    assert_string_equal(p->removable0, "127.0.0.2");
    assert_int_equal(p->removable0_port, 46423);

    /* The answer ages past stale_after_s: gauges again (4 alive, 1 busy). */
    assert_int_equal(master_view_put(mv, 0, master_fixture("app_running.json"), "http://m",
                                     now - 31000), 0);
    app_target(&f, 0, "app-20261201143622-0000", 1);
    store_mark_dirty(f.store, 0);
    ss_decider_evaluate_dirty(f.dec);
    ss_decider_tick(f.dec);
    p = &f.pub[f.npub - 1];
    assert_int_equal(p->current, 4);
    assert_int_equal(p->busy, 1);
    assert_int_equal(p->desired, 1);
    assert_int_equal(p->nremovable, 1);
    assert_string_equal(p->removable0, "10.0.0.2");
    assert_string_equal(p->removable0_id, "");
    assert_int_equal(p->removable0_port, 0);
    stop(&f);
    master_view_destroy(mv);
}

/* A used master answer is data: a cluster known only through its master
 * is not stale; an old answer is, and the policy holds. */
static void test_master_answer_is_data(void **state)
{
    static fx f;   /* several MB: not on the stack */
    (void)state;
    start(&f, one_cluster);
    ss_master_view *mv = master_view_create(1);
    ss_decider_set_master_view(f.dec, mv);
    int64_t now = ss_wall_ms();
    master_view_put(mv, 0, master_fixture("no_app.json"), "http://m", now);
    store_mark_dirty(f.store, 0);
    ss_decider_evaluate_dirty(f.dec);
    ss_cluster_view v;
    ss_decider_view(f.dec, 0, &v);
    assert_non_null(v.result);
    assert_false(v.result->stale);
    assert_int_equal(v.result->current, 3);
    assert_int_equal(v.result->busy, 0);

    master_view_put(mv, 0, master_fixture("no_app.json"), "http://m", now - 3600 * 1000);
    ss_decider_tick(f.dec);
    ss_decider_view(f.dec, 0, &v);
    assert_true(v.result->stale);
    assert_int_equal(v.result->reason, POLICY_R_HOLD_STALE);
    stop(&f);
    master_view_destroy(mv);
}

/* 2,500 clusters: the timer pass visits them in 3 slices, each cluster
 * once per rotation, and a change in a cluster outside the slice is still
 * decided in the next tick. */
static void test_sliced_pass(void **state)
{
    (void)state;
    enum { N = 2500 };
    size_t cap = 200 + (size_t)N * 120;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    size_t k = (size_t)snprintf(yaml, cap, "kafka: { heartbeat_s: 3600 }\nclusters:\n");
    for (int i = 0; i < N; i++)
        k += (size_t)snprintf(yaml + k, cap - k,
                              "  - { name: c%04d, worker: { cores: 4, memory_mb: 8192 }, "
                              "executor: { cores: 2, memory_mb: 4096 } }\n", i);
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ss_log_level was = ss_log_get_level();
    ss_log_set_level(SS_LOG_WARN);   /* not 1,200 "desired" lines in the test log */
    start(f, yaml);
    free(yaml);
    assert_int_equal(ss_decider_slices(f->dec), 3);
    ss_decider_stats st;
    for (int t = 1; t <= 3; t++) {
        ss_decider_tick(f->dec);
        ss_decider_get_stats(f->dec, &st);
        assert_int_equal(st.evaluations, (uint64_t)(t < 3 ? t * 834 : N));
    }
    assert_true(st.rotation_us > 0);
    /* cluster 2 is in the first slice; the next tick visits the second: a
     * change to cluster 2 is evaluated and published all the same */
    int before = f->npub;
    app_target(f, 2, "app-20261121093000-0001", 8);
    alive(f, 2, 1);
    ss_decider_tick(f->dec);
    ss_decider_get_stats(f->dec, &st);
    assert_int_equal(st.evaluations, (uint64_t)N + 834 + 1);
    assert_true(f->npub > before);
    assert_string_equal(f->pub[f->npub - 1].cluster, "c0002");
    /* 1,200 clusters changed in one read: a budget of them a turn, the
     * rest on the next turns, none lost */
    for (int c = 100; c < 1300; c++)
        alive(f, c, 2);
    uint64_t e0 = st.evaluations;
    ss_decider_evaluate_dirty(f->dec);
    ss_decider_get_stats(f->dec, &st);
    assert_true(st.evaluations - e0 <= SS_DECIDER_EVAL_BUDGET);
    assert_true(ss_decider_backlog(f->dec) >= 1200 - SS_DECIDER_EVAL_BUDGET);
    int turns = 1;
    while (ss_decider_backlog(f->dec) > 0 && turns < 100) {
        ss_decider_evaluate_dirty(f->dec);
        ss_decider_drain(f->dec);
        turns++;
    }
    ss_decider_get_stats(f->dec, &st);
    assert_int_equal(ss_decider_backlog(f->dec), 0);
    assert_true(st.evaluations - e0 >= 1200);
    assert_true(turns >= 3);
    /* Metered turns share the time budget: once a turn has spent it (here
     * a budget of 0), each further call in the turn evaluates one batch of
     * 31 and puts the rest back; a turn within a large budget evaluates the
     * count budget. Nothing is lost either way. */
    for (int c = 100; c < 1300; c++)
        alive(f, c, 3);
    ss_decider_set_turn_budget_us(f->dec, 0);
    ss_decider_turn_begin(f->dec);
    e0 = st.evaluations;
    ss_decider_evaluate_dirty(f->dec);
    ss_decider_get_stats(f->dec, &st);
    assert_int_equal(st.evaluations - e0, 31);
    ss_decider_set_turn_budget_us(f->dec, 60 * 1000000LL);
    ss_decider_turn_begin(f->dec);
    e0 = st.evaluations;
    ss_decider_evaluate_dirty(f->dec);
    ss_decider_get_stats(f->dec, &st);
    assert_int_equal(st.evaluations - e0, SS_DECIDER_EVAL_BUDGET);
    while (ss_decider_backlog(f->dec) > 0 && turns < 200) {
        ss_decider_turn_begin(f->dec);
        ss_decider_evaluate_dirty(f->dec);
        ss_decider_drain(f->dec);
        turns++;
    }
    assert_int_equal(ss_decider_backlog(f->dec), 0);
    stop(f);
    free(f);
    ss_log_set_level(was);
}

/* An app its master no longer lists has ended (issue 13): out of the demand
 * at once, and for good, also once the answer is stale. Only standalone app
 * ids, only answers fetched a request timeout after the app's first sample. */
static void test_master_ended_apps(void **state)
{
    static const char yaml[] =
        "kafka: { heartbeat_s: 3600 }\n"
        "clusters:\n"
        "  - name: alpha\n"
        "    worker:   { cores: 2, memory_mb: 1024 }\n"
        "    executor: { cores: 2, memory_mb: 512 }\n"
        "    poll:     { timeout_ms: 3000 }\n"
        "    policy:   { min_workers: 1, max_workers: 20, idle_workers: 0, idle_mode: need,\n"
        "                scale_down_window_s: 0, stale_after_s: 30, app_expiry_s: 600 }\n";
    static fx f;   /* several MB: not on the stack */
    (void)state;
    const int64_t t0 = 1795253400000LL;
    ss_wall_set_virtual(t0);
    start(&f, yaml);
    ss_master_view *mv = master_view_create(1);
    ss_decider_set_master_view(f.dec, mv);
    alive(&f, 0, 3);
    app_target(&f, 0, "app-20261201143622-0000", 2);    /* listed by app_running.json */
    app_target(&f, 0, "app-20261201143622-0001", 4);    /* not listed */
    app_target(&f, 0, "team.etl", 6);                   /* a namespace, never listed */
    ss_cluster_view v;
    /* An answer fetched too soon after the apps' first samples: no verdict. */
    master_view_put(mv, 0, master_fixture("app_running.json"), "http://m", t0 + 3000);
    ss_wall_set_virtual(t0 + 3000);
    ss_decider_tick(f.dec);
    ss_decider_view(f.dec, 0, &v);
    assert_int_equal(v.result->demand_executors, 12);
    /* A later one: app-...-0001 has ended, the namespace app still counts. */
    ss_wall_set_virtual(t0 + 5000);
    assert_int_equal(master_view_put(mv, 0, master_fixture("app_running.json"), "http://m",
                                     t0 + 5000), 0);
    ss_decider_tick(f.dec);
    ss_decider_view(f.dec, 0, &v);
    assert_int_equal(v.result->demand_executors, 8);
    assert_int_equal(v.result->expired_apps, 1);
    /* The last listed app completes: the answer changed, decided at once. */
    ss_wall_set_virtual(t0 + 10000);
    assert_int_equal(master_view_put(mv, 0, master_fixture("app_completed.json"), "http://m",
                                     t0 + 10000), 1);
    store_mark_dirty(f.store, 0);           /* what poll_master_answer does on a change */
    ss_decider_evaluate_dirty(f.dec);
    ss_decider_view(f.dec, 0, &v);
    assert_int_equal(v.result->demand_executors, 6);
    assert_int_equal(v.result->expired_apps, 2);
    assert_non_null(strstr(v.result->reason_text, "[2 finished]"));
    /* The polls fail for minutes; the apps stay ended while their (old)
     * samples are kept, a fresh sample of the namespace app keeps data fresh. */
    ss_wall_set_virtual(t0 + 120000);
    app_target(&f, 0, "team.etl", 6);
    ss_decider_evaluate_dirty(f.dec);
    ss_decider_tick(f.dec);
    ss_decider_view(f.dec, 0, &v);
    assert_false(v.result->stale);
    assert_int_equal(v.result->demand_executors, 6);
    assert_int_equal(v.result->expired_apps, 2);
    /* An answer that skipped an app proves nothing: every app counts. */
    ss_master_state *st = master_fixture("app_completed.json");
    st->apps_skipped = 1;
    master_view_put(mv, 0, st, "http://m", t0 + 121000);
    ss_wall_set_virtual(t0 + 121000);
    ss_decider_tick(f.dec);
    ss_decider_view(f.dec, 0, &v);
    assert_int_equal(v.result->demand_executors, 12);
    stop(&f);
    master_view_destroy(mv);
    ss_wall_set_virtual(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_published_once),
        cmocka_unit_test(test_scale_in_names_idle_workers),
        cmocka_unit_test(test_master_answer_drives_workers),
        cmocka_unit_test(test_master_answer_is_data),
        cmocka_unit_test(test_master_ended_apps),
        cmocka_unit_test(test_dry_run_from_config),
        cmocka_unit_test(test_pool_grant_before_publish),
        cmocka_unit_test(test_sliced_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
