/* test_bus_consumer.c: the actuators' consumer (lib/bus/consumer.c) against
 * librdkafka's mock cluster: decisions in, one committed audit record per
 * decision out; a restarted member resumes after what was audited; an
 * abandoned decision is read again; two members share the partitions and a
 * revoked partition is handed over only after its owner released it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/bus/consumer.h"
#include "lib/bus/kafka.h"
#include "lib/bus/producer.h"
#include "lib/bus/reader.h"

#define MAX_SEEN 4096

typedef struct member {
    struct world *w;
    const char *id;
    ss_bus_consumer *c;
    int closed;
    int abandon_all;              /* answer nothing; abandon on revoke */
    int hold;                     /* keep records outstanding until revoked */
    int64_t held_p[MAX_SEEN], held_o[MAX_SEEN];
    size_t nheld;
    size_t got, assigned_calls, handled_recovered;
    int revoked_seen;
} member;

typedef struct world {
    uv_loop_t loop;
    ss_kafka_mock *mock;
    ss_bus_conf bc;
    ss_kv props[4];
    ss_bus *prod;                 /* publishes decisions */
    int prod_closed;
    int expired;
} world;

static void on_deadline(uv_timer_t *t) { ((world *)t->data)->expired = 1; }

static int run_until(world *w, int (*pred)(void *), void *arg, int timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(&w->loop, &t);
    t.data = w;
    w->expired = 0;
    uv_timer_start(&t, on_deadline, (uint64_t)timeout_ms, 0);
    while (!pred(arg) && !w->expired)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    return pred(arg);
}

static void audit_for(const member *m, const ss_bus_in *rec, ss_actuation_result *r)
{
    ss_decision d;
    memset(r, 0, sizeof *r);
    if (ss_decision_decode(rec->payload, rec->len, &d) == 0) {
        snprintf(r->cluster, sizeof r->cluster, "%s", d.cluster);
        r->decision_epoch = d.producer_epoch;
        r->decision_sequence = d.sequence;
        r->desired_workers = d.desired_workers;
        ss_decision_release(&d);
    } else {
        strcpy(r->cluster, "?");
    }
    r->outcome = SS_OUTCOME_APPLIED;
    r->handled_at_ms = ss_wall_ms();
    snprintf(r->actuator_id, sizeof r->actuator_id, "%s", m->id);
    strcpy(r->backend, "test");
}

static void cb_record(void *ctx, const ss_bus_in *rec)
{
    member *m = ctx;
    m->got++;
    if (m->abandon_all || m->hold) {
        assert_true(m->nheld < MAX_SEEN);
        m->held_p[m->nheld] = rec->partition;
        m->held_o[m->nheld++] = rec->offset;
        return;
    }
    ss_actuation_result *r = malloc(sizeof *r);
    audit_for(m, rec, r);
    assert_int_equal(ss_bus_consumer_done(m->c, rec->partition, rec->offset, r), 0);
    /* A second answer for the same record is refused. */
    assert_int_equal(ss_bus_consumer_done(m->c, rec->partition, rec->offset, r), -ENOENT);
    free(r);
}

static void cb_assigned(void *ctx, int32_t p, const ss_bus_handled *h, size_t n)
{
    member *m = ctx;
    (void)p, (void)h;
    m->assigned_calls++;
    m->handled_recovered += n;
}

static void cb_revoked(void *ctx, int32_t p, int lost)
{
    member *m = ctx;
    m->revoked_seen++;
    if (lost)
        return;
    size_t k = 0;
    for (size_t i = 0; i < m->nheld; i++) {
        if (m->held_p[i] != p) {
            m->held_p[k] = m->held_p[i];
            m->held_o[k++] = m->held_o[i];
            continue;
        }
        if (m->abandon_all) {
            ss_bus_consumer_abandon(m->c, p, m->held_o[i]);
        } else {
            /* Finish it now (as an action cut short would be). */
            ss_actuation_result *r = calloc(1, sizeof *r);
            strcpy(r->cluster, "held");
            r->outcome = SS_OUTCOME_APPLIED;
            assert_int_equal(ss_bus_consumer_done(m->c, p, m->held_o[i], r), 0);
            free(r);
        }
    }
    m->nheld = k;
    ss_bus_consumer_release(m->c, p);
}

static void cb_fatal(void *ctx, const char *why)
{
    (void)ctx;
    fail_msg("fatal: %s", why);
}

static const ss_bus_consumer_cbs k_cbs = { cb_assigned, cb_record, cb_revoked, cb_fatal, NULL };

static void member_start(world *w, member *m, const char *id)
{
    memset(m, 0, sizeof *m);
    m->w = w;
    m->id = id;
    ss_bus_consumer_conf cc = {
        .bus = &w->bc, .bootstrap = ss_kafka_mock_bootstrap(w->mock), .group = "g-test",
        .instance_id = id, .call_timeout_ms = 10000,
    };
    char err[512];
    m->c = ss_bus_consumer_create(&w->loop, &cc, &k_cbs, m, err, sizeof err);
    if (!m->c)
        fail_msg("consumer: %s", err);
}

static void on_member_closed(void *ctx) { ((member *)ctx)->closed = 1; }
static int member_is_closed(void *arg) { return ((member *)arg)->closed; }

static void member_stop(world *w, member *m)
{
    ss_bus_consumer_close(m->c, 10000, on_member_closed, m);
    assert_true(run_until(w, member_is_closed, m, 30000));
}

static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    char err[512];
    const char *topics[] = { "sparkscale.decisions", "sparkscale.audit" };
    w->mock = ss_kafka_mock_start(topics, 2, err, sizeof err);
    assert_non_null(w->mock);
    /* Short sessions: the mock waits session.timeout - 1 s per rebalance round. */
    w->props[0] = (ss_kv){ "session.timeout.ms", "3000" };
    w->props[1] = (ss_kv){ "heartbeat.interval.ms", "300" };
    w->bc = (ss_bus_conf){
        .brokers = ss_kafka_mock_bootstrap(w->mock), .decisions_topic = "sparkscale.decisions",
        .audit_topic = "sparkscale.audit", .properties = w->props, .nproperties = 2,
        .linger_ms = 0, .max_pending = 10000, .decision_ttl_s = 120,
    };
    ss_bus_conf pbc = w->bc;
    pbc.properties = NULL;
    pbc.nproperties = 0;
    static ss_bus_conf keep;
    keep = pbc;
    w->prod = ss_bus_create(&w->loop, &keep, err, sizeof err);
    assert_non_null(w->prod);
}

static void on_prod_closed(void *ctx) { ((world *)ctx)->prod_closed = 1; }
static int prod_is_closed(void *arg) { return ((world *)arg)->prod_closed; }

static void world_close(world *w)
{
    ss_bus_close(w->prod, 5000, on_prod_closed, w);
    assert_true(run_until(w, prod_is_closed, w, 20000));
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    ss_kafka_mock_stop(w->mock);
}

static int pending_zero(void *arg)
{
    ss_bus_stats s;
    ss_bus_get_stats(((world *)arg)->prod, &s);
    return s.pending == 0;
}

static void publish(world *w, int nclusters, int per_cluster)
{
    for (int k = 0; k < per_cluster; k++)
        for (int i = 0; i < nclusters; i++) {
            char name[32];
            snprintf(name, sizeof name, "c%d", i);
            ss_decision d;
            memset(&d, 0, sizeof d);
            d.desired_workers = k + 1;
            d.current_workers = -1;
            d.busy_workers = -1;
            assert_int_equal(ss_bus_publish(w->prod, ss_bus_cluster_add(w->prod, name, NULL), &d, NULL), 0);
        }
    assert_true(run_until(w, pending_zero, w, 10000));
}

/* Audit records per decision position, read back (committed only). */
typedef struct audit_count {
    size_t records, dup;
    size_t by_pos[4][512];
} audit_count;

static void count_audits(world *w, audit_count *ac)
{
    memset(ac, 0, sizeof *ac);
    const char *topics[] = { "sparkscale.audit" };
    ss_bus_reader *r;
    char err[512];
    assert_int_equal(ss_bus_reader_open(ss_kafka_mock_bootstrap(w->mock), topics, 1, 1, NULL, 0,
                                        5000, &r, err, sizeof err),
                     0);
    ss_actuation_result *res = malloc(sizeof *res);
    for (;;) {
        ss_bus_record rec;
        int rc = ss_bus_reader_next(r, 5000, &rec, err, sizeof err);
        if (rc == SS_BUS_READER_CAUGHT_UP || rc == 0)
            break;
        assert_int_equal(rc, 1);
        assert_int_equal(ss_actuation_decode(rec.payload, rec.len, res), 0);
        assert_true(res->has_decision_position);
        if (strcmp(res->decision_topic, "sparkscale.decisions") != 0)
            continue;   /* another deployment's (foreign_audits) */
        /* The audit sits in the partition of its decision. */
        assert_int_equal(rec.partition, res->decision_partition);
        ac->records++;
        if (++ac->by_pos[res->decision_partition][res->decision_offset] > 1)
            ac->dup++;
    }
    free(res);
    ss_bus_reader_close(r);
}

typedef struct want { member *m; size_t n; } want;
static int got_at_least(void *arg)
{
    want *x = arg;
    return x->m->got >= x->n;
}

static int committed_at_least(void *arg)
{
    want *x = arg;
    ss_bus_consumer_stats st;
    ss_bus_consumer_get_stats(x->m->c, &st);
    return st.audits_committed >= x->n && st.queued_audits == 0 && !st.in_flight_commits;
}

/* Audit records of another deployment sharing the audit topic: same
 * partitions and offsets, another decisions topic. */
static void foreign_audits(world *w)
{
    ss_actuation_result *r = calloc(1, sizeof *r);
    for (int i = 0; i < 8; i++)
        for (int p = 0; p < 4; p++)
            for (int off = 0; off < 10; off++) {
                memset(r, 0, sizeof *r);
                snprintf(r->cluster, sizeof r->cluster, "c%d", i);
                r->outcome = SS_OUTCOME_APPLIED;
                r->has_decision_position = 1;
                r->decision_partition = p;
                r->decision_offset = off;
                strcpy(r->decision_topic, "other.decisions");
                assert_int_equal(ss_bus_produce_audit(w->prod, r), 0);
            }
    free(r);
    ss_bus_stats s;
    for (int t = 0; t < 500; t++) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        ss_bus_get_stats(w->prod, &s);
        if (s.audit_pending == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(s.audit_pending, 0);
}

/* 8 clusters x 5 decisions: each audited once; a restart reads nothing again. */
static void test_audit_once_and_resume(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    foreign_audits(&w);
    member m;
    member_start(&w, &m, "one");
    publish(&w, 8, 5);
    want x = { &m, 40 };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    assert_true(run_until(&w, committed_at_least, &x, 10000));
    ss_bus_consumer_stats st;
    ss_bus_consumer_get_stats(m.c, &st);
    assert_int_equal(st.delivered, 40);
    assert_true(st.transactions >= 1);
    /* The mock does not keep transactional offsets: found out and handled. */
    assert_int_equal(st.offsets_outside_txn, 1);
    member_stop(&w, &m);

    audit_count ac;
    count_audits(&w, &ac);
    assert_int_equal(ac.records, 40);
    assert_int_equal(ac.dup, 0);

    /* A new member of the group: nothing is handed out again; two more
     * decisions per cluster are. */
    member m2;
    member_start(&w, &m2, "two");
    publish(&w, 8, 2);
    x = (want){ &m2, 16 };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    assert_true(run_until(&w, committed_at_least, &x, 10000));
    assert_int_equal(m2.got, 16);
    /* It started where the first one stopped: nothing read twice. */
    ss_bus_consumer_get_stats(m2.c, &st);
    assert_int_equal(st.recovered_skipped, 0);
    assert_int_equal(st.consumed, 16);
    member_stop(&w, &m2);
    count_audits(&w, &ac);
    assert_int_equal(ac.records, 56);
    assert_int_equal(ac.dup, 0);
    world_close(&w);
}

/* Abandoned records are read again by the next member; audited ones are not,
 * even when their offsets could not be committed (an older record of the
 * same partition was abandoned): the audit scan finds them. */
static void test_abandon_and_scan(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    member m;
    member_start(&w, &m, "one");
    m.hold = 1;   /* hold the first record of each partition, answer the rest */
    publish(&w, 8, 1);
    want x = { &m, 8 };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    /* Answer all but the first record of each partition. */
    int64_t first[4] = { -1, -1, -1, -1 };
    for (size_t i = 0; i < m.nheld; i++)
        if (first[m.held_p[i]] < 0 || m.held_o[i] < first[m.held_p[i]])
            first[m.held_p[i]] = m.held_o[i];
    size_t k = 0, answered = 0;
    for (size_t i = 0; i < m.nheld; i++) {
        if (m.held_o[i] == first[m.held_p[i]]) {
            m.held_p[k] = m.held_p[i];
            m.held_o[k++] = m.held_o[i];
            continue;
        }
        ss_actuation_result *r = calloc(1, sizeof *r);
        strcpy(r->cluster, "x");
        r->outcome = SS_OUTCOME_APPLIED;
        assert_int_equal(ss_bus_consumer_done(m.c, (int32_t)m.held_p[i], m.held_o[i], r), 0);
        free(r);
        answered++;
    }
    m.nheld = k;
    x = (want){ &m, answered };
    assert_true(run_until(&w, committed_at_least, &x, 10000));
    /* Close: the held ones are abandoned on revoke. */
    m.abandon_all = 1;
    member_stop(&w, &m);

    member m2;
    member_start(&w, &m2, "two");
    x = (want){ &m2, k };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    assert_true(run_until(&w, committed_at_least, &x, 10000));
    /* Only the abandoned ones came back; the scan skipped the rest. */
    assert_int_equal(m2.got, k);
    ss_bus_consumer_stats st;
    ss_bus_consumer_get_stats(m2.c, &st);
    assert_int_equal(st.recovered_skipped, answered);
    assert_int_equal(m2.handled_recovered, answered);
    member_stop(&w, &m2);
    audit_count ac;
    count_audits(&w, &ac);
    assert_int_equal(ac.records, 8);
    assert_int_equal(ac.dup, 0);
    world_close(&w);
}

typedef struct two { member *a, *b; size_t total; } two;
static int both_have_partitions(void *arg)
{
    two *t = arg;
    ss_bus_consumer_stats sa, sb;
    ss_bus_consumer_get_stats(t->a->c, &sa);
    ss_bus_consumer_get_stats(t->b->c, &sb);
    return sa.assigned_partitions > 0 && sb.assigned_partitions > 0 &&
           sa.assigned_partitions + sb.assigned_partitions == 4;
}
static int both_got(void *arg)
{
    two *t = arg;
    ss_bus_consumer_stats sa, sb;
    ss_bus_consumer_get_stats(t->a->c, &sa);
    ss_bus_consumer_get_stats(t->b->c, &sb);
    return sa.audits_committed + sb.audits_committed >= t->total && !sa.in_flight_commits &&
           !sb.in_flight_commits;
}

/* A second member joins while the first holds records: the first finishes
 * them (revoke) before the partitions move; every decision audited once. */
static void test_two_members(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    member a, b;
    member_start(&w, &a, "a");
    publish(&w, 16, 2);
    want x = { &a, 32 };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    a.hold = 1;   /* from now on a keeps records until its partitions are revoked */
    publish(&w, 16, 1);
    x = (want){ &a, 48 };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    member_start(&w, &b, "b");
    two t = { &a, &b, 48 };
    assert_true(run_until(&w, both_have_partitions, &t, 30000));
    assert_true(a.revoked_seen > 0);
    a.hold = 0;
    /* a answers what it still holds for partitions it kept. */
    for (size_t i = 0; i < a.nheld; i++) {
        ss_actuation_result *r = calloc(1, sizeof *r);
        strcpy(r->cluster, "late");
        r->outcome = SS_OUTCOME_APPLIED;
        assert_int_equal(ss_bus_consumer_done(a.c, (int32_t)a.held_p[i], a.held_o[i], r), 0);
        free(r);
    }
    a.nheld = 0;
    publish(&w, 16, 1);
    t.total = 64;
    assert_true(run_until(&w, both_got, &t, 20000));
    assert_true(b.got > 0);
    member_stop(&w, &a);
    member_stop(&w, &b);
    audit_count ac;
    count_audits(&w, &ac);
    assert_int_equal(ac.records, 64);
    assert_int_equal(ac.dup, 0);
    world_close(&w);
}

typedef struct quiet { member *m; uint64_t done, aborts; } quiet;
static int quiescent(void *arg)
{
    quiet *q = arg;
    ss_bus_consumer_stats st;
    ss_bus_consumer_get_stats(q->m->c, &st);
    return st.done >= q->done && st.aborts >= q->aborts && st.queued_audits == 0 &&
           !st.in_flight_commits;
}

/* Aborted transactions: audits that the brokers show anyway (the mock has
 * no transaction markers) are not sent twice; audits that were never
 * written are sent again. Either way one record per decision. */
static void test_aborts(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    member m;
    member_start(&w, &m, "one");
    rd_kafka_mock_cluster_t *mc = ss_kafka_mock_cluster(w.mock);
    publish(&w, 4, 1);
    want x = { &m, 4 };
    assert_true(run_until(&w, got_at_least, &x, 20000));
    quiet q = { &m, 4, 0 };
    assert_true(run_until(&w, quiescent, &q, 10000));

    /* 1. The offsets part of the commit fails: the transaction aborts after
     * its records were written (and, on the mock, are visible). */
    rd_kafka_mock_push_request_errors(mc, 28 /* TxnOffsetCommit */, 1,
                                      RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
    publish(&w, 4, 1);
    x.n = 8;
    assert_true(run_until(&w, got_at_least, &x, 20000));
    q = (quiet){ &m, 8, 1 };
    assert_true(run_until(&w, quiescent, &q, 20000));

    /* 2. Adding the audit partition to the transaction is refused: nothing
     * is written, the transaction aborts, the records go out again. */
    rd_kafka_mock_push_request_errors(mc, 24 /* AddPartitionsToTxn */, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    publish(&w, 4, 1);
    x.n = 12;
    assert_true(run_until(&w, got_at_least, &x, 20000));
    q = (quiet){ &m, 12, 2 };
    assert_true(run_until(&w, quiescent, &q, 20000));
    ss_bus_consumer_stats st;
    ss_bus_consumer_get_stats(m.c, &st);
    assert_true(st.aborts >= 2);
    member_stop(&w, &m);
    audit_count ac;
    count_audits(&w, &ac);
    assert_int_equal(ac.records, 12);
    assert_int_equal(ac.dup, 0);
    world_close(&w);
}

int main(void)
{
    ss_log_set_level(getenv("SS_TEST_DEBUG") ? SS_LOG_DEBUG : SS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_once_and_resume),
        cmocka_unit_test(test_abandon_and_scan),
        cmocka_unit_test(test_two_members),
        cmocka_unit_test(test_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
