/* test_decision_log.c: the recent-decision log behind the dashboard: a
 * cluster's history grows on demand up to its bound and keeps the newest,
 * the ring of all clusters keeps reasons for the newest only, counts are
 * clamped, and memory is paid only by clusters that decided. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ingest/decision_log.h"

static ss_decision make(int desired, int current, int64_t at_ms, const char *reason)
{
    ss_decision d = {
        .decided_at_ms = at_ms,
        .desired_workers = desired,
        .current_workers = current,
        .busy_workers = 1,
        .recommended_workers = desired,
        .executors_per_worker = 2,
        .reason_code = SS_REASON_UP,
    };
    snprintf(d.reason, sizeof d.reason, "%s", reason);
    return d;
}

static void test_cluster_history_newest_first_and_bounded(void **state)
{
    (void)state;
    ss_decision_log *log = decision_log_create(3);
    assert_non_null(log);
    assert_int_equal(decision_log_count(log, 1), 0);
    assert_null(decision_log_at(log, 1, 0));
    for (int i = 1; i <= 11; i++) {
        char why[32];
        snprintf(why, sizeof why, "step %d", i);
        ss_decision d = make(i, i - 1, 1000 * i, why);
        assert_int_equal(decision_log_add(log, 1, &d, (uint64_t)i, 2 * i), 0);
        size_t want = i < DECISION_LOG_PER_CLUSTER ? (size_t)i : DECISION_LOG_PER_CLUSTER;
        assert_int_equal(decision_log_count(log, 1), want);
    }
    /* The newest 8 of 11: sequences 11 .. 4, newest first. */
    for (size_t i = 0; i < DECISION_LOG_PER_CLUSTER; i++) {
        const ss_decision_rec *r = decision_log_at(log, 1, i);
        uint64_t seq = 11 - i;
        assert_int_equal(r->sequence, seq);
        assert_int_equal(r->desired, (int)seq);
        assert_int_equal(r->current, (int)seq - 1);
        assert_int_equal(r->at_ms, 1000 * (int64_t)seq);
        assert_int_equal(r->demand_executors, 2 * (int)seq);
        assert_int_equal(r->per_worker, 2);
        assert_int_equal(r->code, SS_REASON_UP);
        char why[32];
        snprintf(why, sizeof why, "step %d", (int)seq);
        assert_string_equal(decision_log_reason(log, 1, seq), why);
    }
    assert_null(decision_log_at(log, 1, DECISION_LOG_PER_CLUSTER));
    /* Other clusters are untouched. */
    assert_int_equal(decision_log_count(log, 0), 0);
    assert_int_equal(decision_log_count(log, 2), 0);
    assert_null(decision_log_reason(log, 0, 11));
    decision_log_destroy(log);
}

static void test_recent_ring_keeps_newest_texts(void **state)
{
    (void)state;
    ss_decision_log *log = decision_log_create(2);
    int total = DECISION_LOG_TEXTS + 44;
    for (int i = 1; i <= total; i++) {
        char why[32];
        snprintf(why, sizeof why, "decision %d", i);
        ss_decision d = make(i % 20, 3, i, why);
        assert_int_equal(decision_log_add(log, i % 2, &d, (uint64_t)i, 0), 0);
    }
    assert_int_equal(decision_log_recent_count(log), DECISION_LOG_TEXTS);
    for (size_t i = 0; i < DECISION_LOG_TEXTS; i++) {
        int c = -1;
        const char *reason = NULL;
        const ss_decision_rec *r = decision_log_recent(log, i, &c, &reason);
        int want = total - (int)i;
        assert_non_null(r);
        assert_int_equal(r->sequence, want);
        assert_int_equal(c, want % 2);
        char why[32];
        snprintf(why, sizeof why, "decision %d", want);
        assert_string_equal(reason, why);
    }
    assert_null(decision_log_recent(log, DECISION_LOG_TEXTS, NULL, NULL));
    /* A cluster's own history outlives the text of an old decision: its
     * numbers stay, its reason is gone. */
    ss_decision d = make(5, 5, 1, "only cluster 0 decides now");
    for (int i = 0; i < DECISION_LOG_TEXTS; i++)
        assert_int_equal(decision_log_add(log, 0, &d, (uint64_t)(1000 + i), 0), 0);
    const ss_decision_rec *old = decision_log_at(log, 1, 0);
    assert_non_null(old);
    assert_int_equal(old->sequence, total % 2 ? total : total - 1);   /* its newest: odd */
    assert_null(decision_log_reason(log, 1, old->sequence));
    decision_log_destroy(log);
}

static void test_clamps_and_bad_cluster(void **state)
{
    (void)state;
    ss_decision_log *log = decision_log_create(1);
    ss_decision d = make(100000, -7, 5, "");
    d.busy_workers = -1;
    d.recommended_workers = 40000;
    d.executors_per_worker = 1 << 20;
    d.reason_code = SS_REASON_POOL_LIMIT;
    assert_int_equal(decision_log_add(log, 0, &d, 9, (int64_t)1 << 40), 0);
    const ss_decision_rec *r = decision_log_at(log, 0, 0);
    assert_int_equal(r->desired, INT16_MAX);
    assert_int_equal(r->current, -1);
    assert_int_equal(r->busy, -1);
    assert_int_equal(r->recommended, INT16_MAX);
    assert_int_equal(r->per_worker, UINT16_MAX);
    assert_int_equal(r->demand_executors, INT32_MAX);
    assert_int_equal(r->code, SS_REASON_POOL_LIMIT);
    assert_string_equal(decision_log_reason(log, 0, 9), "");
    assert_int_equal(decision_log_add(log, 1, &d, 10, 0), -EINVAL);
    assert_int_equal(decision_log_add(log, -1, &d, 10, 0), -EINVAL);
    assert_int_equal(decision_log_count(log, 1), 0);
    assert_int_equal(decision_log_count(log, -1), 0);
    decision_log_destroy(log);
}

/* A reason of the longest size the bus carries is kept whole. */
static void test_long_reason(void **state)
{
    (void)state;
    ss_decision_log *log = decision_log_create(1);
    ss_decision d = make(1, 1, 1, "");
    memset(d.reason, 'r', sizeof d.reason - 1);
    d.reason[sizeof d.reason - 1] = '\0';
    assert_int_equal(decision_log_add(log, 0, &d, 1, 0), 0);
    assert_int_equal(strlen(decision_log_reason(log, 0, 1)), sizeof d.reason - 1);
    decision_log_destroy(log);
}

/* Memory: a pointer per configured cluster; a cluster's records only once
 * it decides, grown 1, 2, 4, 8; texts only for the newest of all. */
static void test_memory_paid_by_deciders_only(void **state)
{
    (void)state;
    ss_decision_log *log = decision_log_create(10000);
    size_t empty = decision_log_bytes(log);
    assert_true(empty < 10000 * sizeof(void *) + 16384);
    ss_decision d = make(2, 1, 1, "");
    assert_int_equal(decision_log_add(log, 42, &d, 1, 0), 0);
    size_t one = decision_log_bytes(log) - empty;
    assert_true(one <= 64 + 32);     /* one record, header and an empty text */
    for (int i = 2; i <= 100; i++)
        assert_int_equal(decision_log_add(log, 42, &d, (uint64_t)i, 0), 0);
    size_t full = decision_log_bytes(log) - empty;
    /* 8 records of 32 bytes + header, plus 100 one-byte texts (32 each). */
    assert_true(full <= 8 * 32 + 16 + 16 + 100 * 32);
    decision_log_destroy(log);
    decision_log_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_history_newest_first_and_bounded),
        cmocka_unit_test(test_recent_ring_keeps_newest_texts),
        cmocka_unit_test(test_clamps_and_bad_cluster),
        cmocka_unit_test(test_long_reason),
        cmocka_unit_test(test_memory_paid_by_deciders_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
