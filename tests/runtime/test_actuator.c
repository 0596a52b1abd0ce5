/* test_actuator.c: sparkscale-actuator in-process on its own loop, against
 * librdkafka's mock cluster, exec scripts, a Spark master fixture serving
 * the recorded /json/ answers and an Oshinko fixture: decision in -> backend
 * call out -> audit back; duplicates, stale, expired and superseded
 * decisions; scale-in never touching a busy worker; master unreachable,
 * /workers/kill/ refused; exec timeout; dry run; Oshinko; one audit record
 * per decision throughout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include "actuator_harness.h"

static ah_kafka K;
static ah_audits A;
static ah_act ACT;
static fm_master M;
static fo_oshinko O;
static int g_published;

#define WAIT_MS 15000

static int64_t pub(const ah_dec *d)
{
    g_published++;
    return ah_publish(&K, d);
}

static const ss_actuation_result *audit(const char *cluster, uint64_t seq)
{
    const ss_actuation_result *r = ah_audit_wait(&A, cluster, seq, WAIT_MS);
    if (!r)
        fail_msg("no audit record for %s #%llu", cluster, (unsigned long long)seq);
    return r;
}

static void set_state_file(const char *cluster, int n)
{
    char p[PATH_MAX], v[16];
    snprintf(p, sizeof p, "%s/%s.state", ah_dir, cluster);
    snprintf(v, sizeof v, "%d\n", n);
    ah_write_file(p, v, 0644);
}

static int state_file(const char *cluster)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s.state", ah_dir, cluster);
    char *s = ah_read_file(p);
    int n = s ? atoi(s) : -1;
    free(s);
    return n;
}

/* An exec target: scale.sh LOG STATE NAP, optionally with size.sh. */
static void exec_target(char *out, size_t len, const char *name, int with_size, int nap, int timeout_s)
{
    int n = snprintf(out, len,
                     "    target:\n      kind: exec\n      command: [\"%s/scale.sh\", \"%s/%s.log\", "
                     "\"%s/%s.state\", \"%d\"]\n      timeout_s: %d\n",
                     ah_dir, ah_dir, name, ah_dir, name, nap, timeout_s);
    if (with_size)
        snprintf(out + n, len - (size_t)n, "      size_command: [\"%s/size.sh\", \"%s/%s.state\"]\n", ah_dir,
                 ah_dir, name);
}

static char *config(void)
{
    static char y[32768];
    char t[2048];
    int n = snprintf(y, sizeof y,
                     "ingest: { carbon_tcp: \"off\", carbon_udp: \"off\", http: \"off\" }\n"
                     "kafka:\n  brokers: \"%s\"\n"
                     "  properties: { session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\" }\n"
                     "actuator:\n  http: \"127.0.0.1:0\"\n  id: act-test\n  group: g-act\n"
                     "  call_timeout_ms: 2000\n  max_attempts: 2\n  decommission_timeout_s: 3\n"
                     "log_level: warn\n"
                     "clusters:\n",
                     ah_bootstrap(&K));
#define ADD(...) n += snprintf(y + n, sizeof y - (size_t)n, __VA_ARGS__)
    exec_target(t, sizeof t, "up", 1, 0, 5);
    ADD("  - name: up\n%s", t);
    exec_target(t, sizeof t, "order", 0, 0, 5);
    ADD("  - name: order\n%s", t);
    exec_target(t, sizeof t, "sup", 0, 1, 5);
    ADD("  - name: sup\n%s", t);
    const char *mc[] = { "busy", "busy2", "refused", "refused405", "preempt" };
    for (size_t i = 0; i < sizeof mc / sizeof mc[0]; i++) {
        exec_target(t, sizeof t, mc[i], 0, 0, 5);
        ADD("  - name: %s\n    spark_master: \"http://127.0.0.1:%d/%s\"\n%s", mc[i], M.srv.port, mc[i], t);
    }
    exec_target(t, sizeof t, "unreach", 0, 0, 5);
    ADD("  - name: unreach\n    spark_master: \"http://127.0.0.1:1\"\n%s", t);
    exec_target(t, sizeof t, "slow", 0, 5, 1);
    ADD("  - name: slow\n%s", t);
    exec_target(t, sizeof t, "dry", 1, 0, 5);
    ADD("  - name: dry\n%s      dry_run: true\n", t);
    exec_target(t, sizeof t, "nomaster", 0, 0, 5);
    ADD("  - name: nomaster\n%s      max_decision_age_s: 5\n", t);
    ADD("  - name: osh\n    target: { kind: oshinko, url: \"http://127.0.0.1:%d/\" }\n", O.srv.port);
    ADD("  - name: osh-blind\n    spark_master: \"http://127.0.0.1:%d/osh-blind\"\n"
        "    target: { kind: oshinko, url: \"http://127.0.0.1:%d\", cluster: oshb, legacy_body: true,\n"
        "              allow_blind_scale_in: true }\n",
        M.srv.port, O.srv.port);
    ADD("  - name: none\n    target: { kind: none }\n");
#undef ADD
    return y;
}

static int group_setup(void **state)
{
    (void)state;
    ss_log_set_level(getenv("SS_TEST_DEBUG") ? SS_LOG_DEBUG : SS_LOG_WARN);
    ah_make_dir();
    ah_kafka_start(&K);
    fm_start(&M);
    fo_start(&O);
    fm_add(&M, "busy", "no_app.json")->decommission_ms = 300;
    fm_add(&M, "busy2", "no_app.json")->decommission_ms = 800;
    fm_add(&M, "refused", "no_app.json")->kill_status = 403;
    fm_add(&M, "refused405", "no_app.json")->kill_status = 405;
    fm_add(&M, "preempt", "no_app.json")->decommission_ms = -1;
    fm_add(&M, "osh-blind", "no_app.json")->decommission_ms = 200;
    fo_add(&O, "osh", 2);
    fo_add(&O, "oshb", 3);
    if (ah_act_start(&ACT, config()) != 0) {
        fprintf(stderr, "actuator: %s\n", ACT.err);
        return -1;
    }
    ah_audits_open(&A, &K);
    /* Joined and owning every partition (the mock's first join takes ~3 s). */
    if (ah_wait_metric(ACT.port, "sparkscale_actuator_assigned_partitions", 4, 20000) < 4) {
        fprintf(stderr, "the actuator did not get the partitions\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    /* Every decision published has exactly one audit record. */
    ah_audits_poll(&A, 500);
    int dups = ah_audit_dups(&A);
    size_t n = A.n;
    int rc = ah_act_stop(&ACT);
    ah_audits_close(&A);
    fm_stop(&M);
    fx_stop(&O.srv);
    ah_kafka_stop(&K);
    ah_remove_dir();
    if (dups || (int)n != g_published) {
        fprintf(stderr, "audits: %zu for %d decisions, %d duplicated\n", n, g_published, dups);
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr, "the actuator's loop did not close clean (%d)\n", rc);
        return -1;
    }
    return 0;
}

/* Decision in -> command out -> audit back; then "already there". */
static void test_scale_up(void **state)
{
    (void)state;
    set_state_file("up", 2);
    pub(&(ah_dec){ .cluster = "up", .seq = 1, .desired = 4, .current = 2 });
    const ss_actuation_result *r = audit("up", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->replicas_before, 2);
    assert_int_equal(r->replicas_after, 4);
    assert_int_equal(r->desired_workers, 4);
    assert_string_equal(r->backend, "exec");
    assert_string_equal(r->actuator_id, "act-test");
    assert_true(r->has_decision_position);
    assert_true(r->has_exec);
    assert_int_equal(r->exec_exit_status, 0);
    assert_non_null(strstr(r->exec_output, "scaled up to 4"));
    char *log = ah_exec_log("up");
    assert_non_null(strstr(log, "act-test up cur=2 want=4 hosts=[] ids=[] dry=0"));
    free(log);
    assert_int_equal(state_file("up"), 4);

    pub(&(ah_dec){ .cluster = "up", .seq = 2, .desired = 4, .current = 4 });
    r = audit("up", 2);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_non_null(strstr(r->note, "already at 4"));
    log = ah_exec_log("up");
    assert_int_equal(ah_count(log, "start "), 1);   /* no second call */
    free(log);

    /* A decision made before sparkscaled knew the size only grows. */
    pub(&(ah_dec){ .cluster = "up", .seq = 3, .desired = 2, .current = -1 });
    r = audit("up", 3);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_removed, 0);
    assert_int_equal(r->replicas_after, 4);
    assert_non_null(strstr(r->note, "grow-only"));
    assert_int_equal(state_file("up"), 4);
    pub(&(ah_dec){ .cluster = "up", .seq = 4, .desired = 5, .current = -1 });
    r = audit("up", 4);
    assert_int_equal(r->replicas_after, 5);
    assert_int_equal(state_file("up"), 5);
}

static void test_duplicate_stale_expired(void **state)
{
    (void)state;
    const int64_t E1 = 1795237000000LL, E0 = E1 - 3600000;
    pub(&(ah_dec){ .cluster = "order", .epoch = E1, .seq = 5, .desired = 3, .current = 2 });
    assert_int_equal(audit("order", 5)->outcome, SS_OUTCOME_APPLIED);
    pub(&(ah_dec){ .cluster = "order", .epoch = E1, .seq = 5, .desired = 3, .current = 2 });
    pub(&(ah_dec){ .cluster = "order", .epoch = E1, .seq = 3, .desired = 9, .current = 2 });
    pub(&(ah_dec){ .cluster = "order", .epoch = E1, .seq = 6, .desired = 9, .current = 3,
                   .expires_at_ms = ss_wall_ms() - 1000 });
    /* sparkscaled restarted with a clock that stepped back: new, applied. */
    pub(&(ah_dec){ .cluster = "order", .epoch = E0, .seq = 1, .desired = 5, .current = 3 });
    const ss_actuation_result *r = audit("order", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->replicas_after, 5);
    /* The duplicate has two records of seq 5 in Kafka: one APPLIED, one SKIPPED_DUPLICATE. */
    assert_true(ah_audit_wait(&A, "order", 6, WAIT_MS) != NULL);
    assert_int_equal(ah_audit_count(&A, "order", 5), 2);
    int dup = 0, stale = 0;
    for (size_t i = 0; i < A.n; i++) {
        const ss_actuation_result *x = A.res[i];
        if (strcmp(x->cluster, "order") != 0)
            continue;
        dup += x->decision_sequence == 5 && x->outcome == SS_OUTCOME_SKIPPED_DUPLICATE;
        stale += x->decision_sequence == 3 && x->outcome == SS_OUTCOME_SKIPPED_STALE;
    }
    assert_int_equal(dup, 1);
    assert_int_equal(stale, 1);
    assert_int_equal(audit("order", 6)->outcome, SS_OUTCOME_EXPIRED);
    char *log = ah_exec_log("order");
    assert_int_equal(ah_count(log, "start "), 2);   /* seq 5 and epoch E0 seq 1 only */
    free(log);
}

/* While one runs, three arrive: only the newest of them is applied. */
static void test_superseded(void **state)
{
    (void)state;
    pub(&(ah_dec){ .cluster = "sup", .seq = 1, .desired = 2, .current = 1 });
    /* wait until it runs (the command naps 1 s) */
    assert_true(ah_wait_stage(ACT.port, "sup", "call", 5000));
    pub(&(ah_dec){ .cluster = "sup", .seq = 2, .desired = 3, .current = 1 });
    pub(&(ah_dec){ .cluster = "sup", .seq = 3, .desired = 4, .current = 1 });
    pub(&(ah_dec){ .cluster = "sup", .seq = 4, .desired = 5, .current = 2 });
    assert_int_equal(audit("sup", 1)->outcome, SS_OUTCOME_APPLIED);
    const ss_actuation_result *r = audit("sup", 2);
    assert_int_equal(r->outcome, SS_OUTCOME_SUPERSEDED);
    assert_true(r->superseded_by == 3);
    assert_int_equal(audit("sup", 3)->outcome, SS_OUTCOME_SUPERSEDED);
    r = audit("sup", 4);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->replicas_after, 5);
    char *log = ah_exec_log("sup");
    assert_int_equal(ah_count(log, "start "), 2);
    assert_null(strstr(log, "want=3"));
    assert_null(strstr(log, "want=4"));
    free(log);
}

/* Two workers busy when the decision is acted on: only the idle one goes,
 * decommissioned first; the audit says how many and why. */
static void test_busy_worker_kept(void **state)
{
    (void)state;
    fm_set_cores(&M, "busy", "127.0.0.3", 2);
    fm_set_cores(&M, "busy", "127.0.0.4", 2);
    ss_worker_ref named[2] = { { "worker-20261201143614-127.0.0.3-56753", "127.0.0.3", 56753 },
                               { "worker-20261201143615-127.0.0.2-46423", "127.0.0.2", 46423 } };
    pub(&(ah_dec){ .cluster = "busy", .seq = 1, .desired = 1, .current = 3, .removable = named,
                   .nremovable = 2 });
    const ss_actuation_result *r = audit("busy", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_to_remove, 2);
    assert_int_equal(r->workers_removed, 1);
    assert_int_equal(r->nremoved, 1);
    assert_string_equal(r->removed[0].host, "127.0.0.2");
    assert_int_equal(r->replicas_after, 2);
    assert_int_equal(r->nkept, 2);
    assert_non_null(strstr(r->kept[0].reason, "busy"));
    char *log = ah_exec_log("busy");
    assert_non_null(strstr(log, "want=2 hosts=[127.0.0.2]"));
    assert_null(strstr(log, "127.0.0.3"));
    assert_null(strstr(log, "127.0.0.4"));
    free(log);
    fx_lock(&M.srv);
    assert_string_equal(fm_find(&M, "busy")->killed_hosts, "127.0.0.2");
    fx_unlock(&M.srv);
}

/* Idle when chosen, busy before it could go: kept. */
static void test_busy_during_decommission(void **state)
{
    (void)state;
    pub(&(ah_dec){ .cluster = "busy2", .seq = 1, .desired = 2, .current = 3 });
    assert_true(ah_wait_stage(ACT.port, "busy2", "wait", 5000));
    fx_lock(&M.srv);
    const char *victim = fm_find(&M, "busy2")->killed_hosts;
    char host[64];
    snprintf(host, sizeof host, "%.63s", victim);
    fx_unlock(&M.srv);
    assert_string_equal(host, "127.0.0.2");
    fm_set_cores(&M, "busy2", host, 1);
    const ss_actuation_result *r = audit("busy2", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_removed, 0);
    assert_int_equal(r->replicas_after, 3);
    assert_non_null(strstr(r->kept[r->nkept - 1].reason, "picked up work"));
    char *log = ah_exec_log("busy2");
    assert_int_equal(ah_count(log, "start "), 0);
    free(log);
}

static void test_master_unreachable(void **state)
{
    (void)state;
    pub(&(ah_dec){ .cluster = "unreach", .seq = 1, .desired = 1, .current = 3 });
    const ss_actuation_result *r = audit("unreach", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_FAILED);
    assert_non_null(strstr(r->error, "spark master unreachable"));
    assert_non_null(strstr(r->error, "nothing removed"));
    char *log = ah_exec_log("unreach");
    assert_string_equal(log, "");
    free(log);
    assert_true(ah_metric(ACT.port, "sparkscale_actuator_decisions_failed_total{reason=\"master_unreachable\"}") >= 1);
    /* Scale-up needs no master. */
    pub(&(ah_dec){ .cluster = "unreach", .seq = 2, .desired = 4, .current = 3 });
    assert_int_equal(audit("unreach", 2)->outcome, SS_OUTCOME_APPLIED);
}

/* spark.master.ui.decommission.allow.mode=LOCAL refuses us: 403 (Spark 4),
 * 405 (Spark 3.5, as recorded). Nothing removed, reason audited. */
static void test_decommission_refused(void **state)
{
    (void)state;
    const char *names[] = { "refused", "refused405" };
    for (int i = 0; i < 2; i++) {
        pub(&(ah_dec){ .cluster = names[i], .seq = 1, .desired = 2, .current = 3 });
        const ss_actuation_result *r = audit(names[i], 1);
        assert_int_equal(r->outcome, SS_OUTCOME_FAILED);
        assert_non_null(strstr(r->error, "decommission refused"));
        assert_non_null(strstr(r->error, "allow.mode=ALLOW"));
        assert_int_equal(r->workers_removed, 0);
        char *log = ah_exec_log(names[i]);
        assert_string_equal(log, "");
        free(log);
    }
}

static void test_exec_timeout(void **state)
{
    (void)state;
    int64_t t0 = ss_mono_us();
    pub(&(ah_dec){ .cluster = "slow", .seq = 1, .desired = 2, .current = 1 });
    const ss_actuation_result *r = audit("slow", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_FAILED);
    assert_non_null(strstr(r->error, "timed out after 1 s"));
    assert_true(r->has_exec);
    assert_int_equal(r->exec_timed_out, 1);
    assert_int_equal(r->exec_exit_status, -1);
    assert_true(ss_mono_us() - t0 < 4500000);   /* killed, not waited for (5 s nap) */
    assert_true(ah_metric(ACT.port, "sparkscale_actuator_decisions_failed_total{reason=\"backend_timeout\"}") >= 1);
}

static void test_dry_run(void **state)
{
    (void)state;
    set_state_file("dry", 2);
    pub(&(ah_dec){ .cluster = "dry", .seq = 1, .desired = 5, .current = 2 });
    const ss_actuation_result *r = audit("dry", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_DRY_RUN);
    assert_int_equal(r->replicas_before, 2);
    assert_int_equal(r->replicas_after, 2);
    char *log = ah_exec_log("dry");
    assert_non_null(strstr(log, "dry=1"));
    free(log);
    assert_int_equal(state_file("dry"), 2);
    /* The decision's own flag, on an Oshinko cluster: read, not written. */
    pub(&(ah_dec){ .cluster = "osh", .epoch = 1795237000001LL, .seq = 100, .desired = 9, .current = 2,
                   .dry_run = 1 });
    r = audit("osh", 100);
    assert_int_equal(r->outcome, SS_OUTCOME_DRY_RUN);
    fx_lock(&O.srv);
    assert_int_equal(fo_find(&O, "osh")->puts, 0);
    fx_unlock(&O.srv);
}

/* Without a master: the decision's removable workers while fresh, else none. */
static void test_no_master(void **state)
{
    (void)state;
    ss_worker_ref named[2] = { { "w-a", "10.0.0.1", 7077 }, { "w-b", "10.0.0.2", 7077 } };
    pub(&(ah_dec){ .cluster = "nomaster", .seq = 1, .desired = 1, .current = 3, .removable = named,
                   .nremovable = 2 });
    const ss_actuation_result *r = audit("nomaster", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_removed, 2);
    char *log = ah_exec_log("nomaster");
    assert_non_null(strstr(log, "want=1 hosts=[10.0.0.1,10.0.0.2] ids=[w-a,w-b]"));
    free(log);
    /* Too old to trust its list (max_decision_age_s 5), not expired. */
    pub(&(ah_dec){ .cluster = "nomaster", .seq = 2, .desired = 0, .current = 1, .removable = named,
                   .nremovable = 1, .decided_at_ms = ss_wall_ms() - 60000 });
    r = audit("nomaster", 2);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_removed, 0);
    assert_int_equal(r->replicas_after, 1);
    assert_non_null(strstr(r->note, "max_decision_age_s"));
    /* Nothing named: nothing removed. */
    pub(&(ah_dec){ .cluster = "nomaster", .seq = 3, .desired = 0, .current = 1 });
    r = audit("nomaster", 3);
    assert_int_equal(r->workers_removed, 0);
    assert_non_null(strstr(r->note, "allow_blind_scale_in is false"));
    log = ah_exec_log("nomaster");
    assert_int_equal(ah_count(log, "start "), 1);
    free(log);
}

static void test_oshinko(void **state)
{
    (void)state;
    pub(&(ah_dec){ .cluster = "osh", .seq = 1, .desired = 5, .current = 2 });
    const ss_actuation_result *r = audit("osh", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_string_equal(r->backend, "oshinko");
    assert_int_equal(r->replicas_before, 2);
    assert_int_equal(r->replicas_after, 5);
    fx_lock(&O.srv);
    fo_cluster *c = fo_find(&O, "osh");
    assert_int_equal(c->count, 5);
    assert_int_equal(c->puts, 1);
    assert_string_equal(c->last_body, "{\"name\":\"osh\",\"config\":{\"workerCount\":5}}");
    fx_unlock(&O.srv);
    /* Oshinko cannot choose victims: no scale-in unless allowed. */
    pub(&(ah_dec){ .cluster = "osh", .seq = 2, .desired = 3, .current = 5 });
    r = audit("osh", 2);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_removed, 0);
    assert_int_equal(r->replicas_after, 5);
    assert_non_null(strstr(r->note, "cannot choose"));
    fx_lock(&O.srv);
    assert_int_equal(c->puts, 1);
    fx_unlock(&O.srv);

    /* Allowed, with a master: a victim is decommissioned first, then the
     * count goes down (legacy body too). */
    pub(&(ah_dec){ .cluster = "osh-blind", .seq = 1, .desired = 2, .current = 3 });
    r = audit("osh-blind", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->replicas_before, 3);
    assert_int_equal(r->replicas_after, 2);
    assert_int_equal(r->workers_removed, 1);
    fx_lock(&O.srv);
    c = fo_find(&O, "oshb");
    assert_int_equal(c->count, 2);
    assert_non_null(strstr(c->last_body, "\"masterCount\":1"));
    fx_unlock(&O.srv);
    fx_lock(&M.srv);
    assert_string_equal(fm_find(&M, "osh-blind")->killed_hosts, "127.0.0.2");
    fx_unlock(&M.srv);
}

/* A scale-in waits for decommission; a newer decision wants more: the
 * worker already decommissioned still goes, the other stays; then the newer
 * one is applied. */
static void test_preempted_scale_in(void **state)
{
    (void)state;
    pub(&(ah_dec){ .cluster = "preempt", .seq = 1, .desired = 1, .current = 3 });
    assert_true(ah_wait_stage(ACT.port, "preempt", "wait", 5000));
    fx_lock(&M.srv);
    fm_cluster *c = fm_find(&M, "preempt");
    assert_string_equal(c->killed_hosts, "127.0.0.2,127.0.0.3");
    fm_set_state(c->state, "127.0.0.2", "DECOMMISSIONED");
    fx_unlock(&M.srv);
    usleep(300000);   /* one wait poll sees it */
    pub(&(ah_dec){ .cluster = "preempt", .seq = 2, .desired = 4, .current = 3 });
    const ss_actuation_result *r = audit("preempt", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->workers_to_remove, 2);
    assert_int_equal(r->workers_removed, 1);
    assert_string_equal(r->removed[0].host, "127.0.0.2");
    assert_non_null(strstr(r->note, "newer decision #2"));
    r = audit("preempt", 2);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    char *log = ah_exec_log("preempt");
    assert_non_null(strstr(log, "want=2 hosts=[127.0.0.2]"));
    assert_non_null(strstr(log, "want=4 hosts=[]"));
    assert_null(strstr(log, "127.0.0.3"));
    free(log);
}

/* Records that are no decision of ours are audited too. */
static void test_unknown_and_garbage(void **state)
{
    (void)state;
    pub(&(ah_dec){ .cluster = "nobody", .seq = 1, .desired = 2, .current = 1 });
    const ss_actuation_result *r = audit("nobody", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_FAILED);
    assert_non_null(strstr(r->error, "no cluster named"));
    g_published++;
    ah_publish_garbage(&K, "up");
    r = ah_audit_wait(&A, "up", 0, WAIT_MS);
    assert_non_null(r);
    assert_int_equal(r->outcome, SS_OUTCOME_FAILED);
    assert_non_null(strstr(r->error, "not a ScaleDecision"));
    pub(&(ah_dec){ .cluster = "none", .seq = 1, .desired = 2, .current = 1 });
    r = audit("none", 1);
    assert_int_equal(r->outcome, SS_OUTCOME_DRY_RUN);
    assert_non_null(strstr(r->note, "kind none"));
}

/* The status page shows what was applied. */
static void test_status(void **state)
{
    (void)state;
    int st;
    char *body = ah_http_get(ACT.port, "/v1/clusters?name=up", &st);
    assert_int_equal(st, 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    json_t *c = json_array_get(json_object_get(j, "clusters"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "up");
    json_t *ap = json_object_get(c, "last_applied");
    assert_int_equal(json_integer_value(json_object_get(ap, "replicas_after")), 5);
    assert_true(json_is_null(json_object_get(c, "in_flight")));
    json_decref(j);
    body = ah_http_get(ACT.port, "/healthz", &st);
    assert_int_equal(st, 200);
    free(body);
    body = ah_http_get(ACT.port, "/v1/clusters?name=zzz", &st);
    assert_int_equal(st, 404);
    free(body);
    assert_true(ah_metric(ACT.port, "sparkscale_actuator_decisions_total{outcome=\"applied\"}") >= 5);
    assert_true(ah_metric(ACT.port, "sparkscale_actuator_consumer_lag") >= 0);
    assert_true(ah_metric(ACT.port, "sparkscale_actuator_apply_seconds_count") >= 5);
    assert_true(ah_metric(ACT.port, "sparkscale_actuator_offsets_outside_transaction") == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_up),
        cmocka_unit_test(test_duplicate_stale_expired),
        cmocka_unit_test(test_superseded),
        cmocka_unit_test(test_busy_worker_kept),
        cmocka_unit_test(test_busy_during_decommission),
        cmocka_unit_test(test_master_unreachable),
        cmocka_unit_test(test_decommission_refused),
        cmocka_unit_test(test_exec_timeout),
        cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_no_master),
        cmocka_unit_test(test_oshinko),
        cmocka_unit_test(test_preempted_scale_in),
        cmocka_unit_test(test_unknown_and_garbage),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
