/* test_bus_codec.c: ss_decision / ss_actuation_result <-> protobuf round trips,
 * truncated and garbage input rejected, bounds enforced. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/bus/record.h"
#include "proto/sparkscale.pb-c.h"

static const ss_app_demand k_apps[] = {
    { "app-20261121093000-0003", 12, 40, 10, 1795237800000LL },
    { "app-20261121093500-0004", 2, -1, -1, 1795238100000LL },
};
static const ss_worker_ref k_workers[] = {
    { "worker-20261121090000-10.0.0.7-34567", "10.0.0.7", 34567 },
};

static void fill(ss_decision *d)
{
    memset(d, 0, sizeof *d);
    strcpy(d->cluster, "alpha");
    d->producer_epoch = 1795237000123LL;
    d->sequence = 4000000000ULL; /* > 32 bits: multi-byte varint */
    d->decided_at_ms = 1795237801123LL;
    d->current_workers = 5;
    d->busy_workers = 2;
    d->desired_workers = 8;
    d->recommended_workers = 9;
    d->executors_per_worker = 2;
    d->apps = k_apps;
    d->napps = 2;
    d->removable_workers = k_workers;
    d->nremovable_workers = 1;
    strcpy(d->reason, "demand 14 executors / 2 per worker = 7, +1 idle \"héllo\"");
    d->reason_code = SS_REASON_UP;
    d->dry_run = 1;
    d->expires_at_ms = 1795237921123LL;
}

static void assert_same(const ss_decision *a, const ss_decision *b)
{
    assert_string_equal(a->cluster, b->cluster);
    assert_int_equal(a->producer_epoch, b->producer_epoch);
    assert_true(a->sequence == b->sequence);
    assert_int_equal(a->decided_at_ms, b->decided_at_ms);
    assert_int_equal(a->current_workers, b->current_workers);
    assert_int_equal(a->busy_workers, b->busy_workers);
    assert_int_equal(a->desired_workers, b->desired_workers);
    assert_int_equal(a->recommended_workers, b->recommended_workers);
    assert_int_equal(a->executors_per_worker, b->executors_per_worker);
    assert_int_equal(a->napps, b->napps);
    for (size_t i = 0; i < a->napps; i++) {
        assert_string_equal(a->apps[i].app_id, b->apps[i].app_id);
        assert_int_equal(a->apps[i].target_executors, b->apps[i].target_executors);
        assert_int_equal(a->apps[i].max_needed_executors, b->apps[i].max_needed_executors);
        assert_int_equal(a->apps[i].all_executors, b->apps[i].all_executors);
        assert_int_equal(a->apps[i].start_ms, b->apps[i].start_ms);
    }
    assert_int_equal(a->nremovable_workers, b->nremovable_workers);
    for (size_t i = 0; i < a->nremovable_workers; i++) {
        assert_string_equal(a->removable_workers[i].id, b->removable_workers[i].id);
        assert_string_equal(a->removable_workers[i].host, b->removable_workers[i].host);
        assert_int_equal(a->removable_workers[i].port, b->removable_workers[i].port);
    }
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->reason_code, b->reason_code);
    assert_int_equal(a->dry_run, b->dry_run);
    assert_int_equal(a->expires_at_ms, b->expires_at_ms);
}

static void test_decision_round_trip(void **state)
{
    ss_decision d, back;
    fill(&d);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(ss_decision_encode(&d, &buf, &len), 0);
    assert_true(len > 100);
    assert_int_equal(ss_decision_decode(buf, len, &back), 0);
    assert_int_equal(back.schema_version, SS_BUS_SCHEMA_VERSION);
    assert_same(&d, &back);
    ss_decision_release(&back);
    assert_null(back.apps);

    /* The bytes are a real sparkscale.v1.ScaleDecision for any protobuf reader. */
    Sparkscale__V1__ScaleDecision *m = sparkscale__v1__scale_decision__unpack(NULL, len, buf);
    assert_non_null(m);
    assert_string_equal(m->cluster, "alpha");
    assert_int_equal(m->schema_version, 1);
    assert_int_equal(m->reason_code, SPARKSCALE__V1__REASON_CODE__REASON_UP);
    assert_int_equal(m->n_apps, 2);
    assert_string_equal(m->removable_workers[0]->host, "10.0.0.7");
    sparkscale__v1__scale_decision__free_unpacked(m, NULL);
    free(buf);
}

static void test_decision_minimal(void **state)
{
    ss_decision d, back;
    memset(&d, 0, sizeof d);
    strcpy(d.cluster, "b");
    d.current_workers = -1;
    d.busy_workers = -1;
    uint8_t *buf;
    size_t len;
    assert_int_equal(ss_decision_encode(&d, &buf, &len), 0);
    assert_int_equal(ss_decision_decode(buf, len, &back), 0);
    assert_same(&d, &back);
    assert_int_equal(back.current_workers, -1);
    ss_decision_release(&back);
    free(buf);
}

static void test_truncated_rejected(void **state)
{
    ss_decision d, back;
    fill(&d);
    uint8_t *buf;
    size_t len;
    assert_int_equal(ss_decision_encode(&d, &buf, &len), 0);
    /* Protobuf has no framing: a cut exactly between two fields parses as a
     * shorter record (Kafka's record CRC guards transport). Every cut inside
     * a field must be rejected, and no cut may decode as the full decision. */
    int rejected = 0, accepted = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int rc = ss_decision_decode(copy, cut, &back);
        if (rc == 0) {
            accepted++;
            /* Something is missing: the last field (expires_at_ms) at least. */
            assert_true(back.expires_at_ms != d.expires_at_ms);
            ss_decision_release(&back);
        } else {
            rejected++;
            assert_true(rc == -EBADMSG);
            assert_null(back.apps);
        }
        free(copy);
    }
    /* The decision has 16 fields and 3 sub-messages: far fewer boundaries than bytes. */
    assert_true(rejected > accepted * 4);
    /* The last byte belongs to the expires_at_ms varint: cutting it fails. */
    assert_int_equal(ss_decision_decode(buf, len - 1, &back), -EBADMSG);
    free(buf);
}

static void test_garbage_rejected(void **state)
{
    ss_decision back;
    const uint8_t junk1[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    const uint8_t junk2[] = "this is not protobuf at all";
    const uint8_t wrong_len[] = { 0x12, 0x50, 'a' }; /* cluster says 80 bytes, has 1 */
    assert_int_equal(ss_decision_decode(junk1, sizeof junk1, &back), -EBADMSG);
    assert_int_equal(ss_decision_decode(junk2, sizeof junk2 - 1, &back), -EBADMSG);
    assert_int_equal(ss_decision_decode(wrong_len, sizeof wrong_len, &back), -EBADMSG);
    /* Empty input is a valid empty message, but a decision without a cluster is not. */
    assert_int_equal(ss_decision_decode((const uint8_t *)"", 0, &back), -EBADMSG);
    assert_int_equal(ss_decision_decode(NULL, 0, &back), -EBADMSG);
}

static void test_bounds(void **state)
{
    ss_decision d, back;
    uint8_t *buf;
    size_t len;
    fill(&d);
    d.cluster[0] = '\0';
    assert_int_equal(ss_decision_encode(&d, &buf, &len), -EINVAL);
    fill(&d);
    d.napps = SS_DECISION_MAX_APPS + 1;
    assert_int_equal(ss_decision_encode(&d, &buf, &len), -EINVAL);

    /* A cluster name longer than SS_BUS_NAME_MAX from some other producer is
     * rejected, never cut to a different (maybe existing) cluster name. */
    char longname[SS_BUS_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    Sparkscale__V1__ScaleDecision m = SPARKSCALE__V1__SCALE_DECISION__INIT;
    m.cluster = longname;
    uint8_t tmp[256];
    size_t n = sparkscale__v1__scale_decision__pack(&m, tmp);
    assert_int_equal(ss_decision_decode(tmp, n, &back), -EINVAL);

    /* Long reason text is cut (on a UTF-8 boundary), not rejected. */
    char reason[2000];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    reason[SS_DECISION_REASON_MAX - 2] = (char)0xC3; /* é straddling the cut */
    reason[SS_DECISION_REASON_MAX - 1] = (char)0xA9;
    m.cluster = "alpha";
    m.reason = reason;
    uint8_t big[4096];
    n = sparkscale__v1__scale_decision__pack(&m, big);
    assert_int_equal(ss_decision_decode(big, n, &back), 0);
    assert_int_equal(strlen(back.reason), SS_DECISION_REASON_MAX - 2);
    ss_decision_release(&back);

    /* Too many removable workers. */
    Sparkscale__V1__Worker w = SPARKSCALE__V1__WORKER__INIT;
    Sparkscale__V1__Worker **ws = calloc(SS_DECISION_MAX_WORKERS + 1, sizeof *ws);
    for (size_t i = 0; i <= SS_DECISION_MAX_WORKERS; i++)
        ws[i] = &w;
    m.reason = "";
    m.n_removable_workers = SS_DECISION_MAX_WORKERS + 1;
    m.removable_workers = ws;
    size_t wl = sparkscale__v1__scale_decision__get_packed_size(&m);
    uint8_t *wb = malloc(wl);
    sparkscale__v1__scale_decision__pack(&m, wb);
    assert_int_equal(ss_decision_decode(wb, wl, &back), -E2BIG);
    free(wb);
    free(ws);
}

static void test_actuation_round_trip(void **state)
{
    ss_actuation_result r, back;
    memset(&r, 0, sizeof r);
    strcpy(r.cluster, "alpha");
    r.decision_epoch = 1795237000123LL;
    r.decision_sequence = 12;
    r.outcome = SS_OUTCOME_FAILED;
    r.replicas_before = 5;
    r.replicas_after = 5;
    strcpy(r.error, "409 Conflict twice");
    r.handled_at_ms = 1795237802000LL;
    strcpy(r.actuator_id, "act-1");
    strcpy(r.backend, "kubernetes");
    uint8_t *buf;
    size_t len;
    assert_int_equal(ss_actuation_encode(&r, &buf, &len), 0);
    assert_int_equal(ss_actuation_decode(buf, len, &back), 0);
    assert_string_equal(back.cluster, "alpha");
    assert_int_equal(back.decision_epoch, r.decision_epoch);
    assert_true(back.decision_sequence == 12);
    assert_int_equal(back.outcome, SS_OUTCOME_FAILED);
    assert_int_equal(back.replicas_before, 5);
    assert_int_equal(back.replicas_after, 5);
    assert_string_equal(back.error, r.error);
    assert_int_equal(back.handled_at_ms, r.handled_at_ms);
    assert_string_equal(back.actuator_id, "act-1");
    assert_string_equal(back.backend, "kubernetes");
    assert_int_equal(back.schema_version, SS_BUS_SCHEMA_VERSION);
    /* The actuator's fields are absent: no position, no exec result. */
    assert_int_equal(back.has_decision_position, 0);
    assert_int_equal(back.has_exec, 0);
    assert_int_equal(back.nremoved, 0);
    assert_int_equal(back.nkept, 0);
    assert_int_equal(ss_actuation_decode(buf, len - 1, &back), -EBADMSG);
    free(buf);
}

/* Every field the actuator fills survives the trip; lists keep their order. */
static void test_actuation_full_round_trip(void **state)
{
    (void)state;
    ss_actuation_result *r = calloc(1, sizeof *r), *back = calloc(1, sizeof *back);
    strcpy(r->cluster, "alpha");
    r->decision_epoch = 1795237000123LL;
    r->decision_sequence = 4000000001ULL;
    r->outcome = SS_OUTCOME_APPLIED;
    r->replicas_before = 5;
    r->replicas_after = 4;
    r->has_decision_position = 1;
    r->decision_partition = 0;       /* 0 is a real partition: presence is explicit */
    r->decision_offset = 0;
    strcpy(r->decision_topic, "sparkscale.decisions");
    r->desired_workers = 3;
    r->workers_to_remove = 2;
    r->workers_removed = 1;
    r->nremoved = 1;
    r->removed[0] = k_workers[0];
    r->nkept = 2;
    r->kept[0].worker = (ss_worker_ref){ "worker-20261121090000-10.0.0.8-1", "10.0.0.8", 1 };
    strcpy(r->kept[0].reason, "busy: 2 cores used");
    r->kept[1].worker = (ss_worker_ref){ "worker-20261121090000-10.0.0.9-2", "10.0.0.9", 2 };
    strcpy(r->kept[1].reason, "shares host with a busy worker");
    strcpy(r->note, "removed 1 of 2 (1 busy)");
    r->has_exec = 1;
    r->exec_exit_status = 0;
    r->exec_signal = 0;
    r->exec_timed_out = 1;
    strcpy(r->exec_output, "scaled to 4\n");
    uint8_t *buf;
    size_t len;
    assert_int_equal(ss_actuation_encode(r, &buf, &len), 0);
    assert_int_equal(ss_actuation_decode(buf, len, back), 0);
    free(buf);
    assert_int_equal(back->has_decision_position, 1);
    assert_int_equal(back->decision_partition, 0);
    assert_int_equal(back->decision_offset, 0);
    assert_string_equal(back->decision_topic, "sparkscale.decisions");
    assert_int_equal(back->desired_workers, 3);
    assert_int_equal(back->workers_to_remove, 2);
    assert_int_equal(back->workers_removed, 1);
    assert_int_equal(back->nremoved, 1);
    assert_string_equal(back->removed[0].host, "10.0.0.7");
    assert_int_equal(back->removed[0].port, 34567);
    assert_int_equal(back->nkept, 2);
    assert_string_equal(back->kept[1].worker.id, "worker-20261121090000-10.0.0.9-2");
    assert_string_equal(back->kept[0].reason, "busy: 2 cores used");
    assert_string_equal(back->note, r->note);
    assert_int_equal(back->has_exec, 1);
    assert_int_equal(back->exec_timed_out, 1);
    assert_string_equal(back->exec_output, "scaled to 4\n");

    /* SUPERSEDED and its newer sequence. */
    memset(r, 0, sizeof *r);
    strcpy(r->cluster, "beta");
    r->outcome = SS_OUTCOME_SUPERSEDED;
    r->superseded_by = 9;
    assert_int_equal(ss_actuation_encode(r, &buf, &len), 0);
    assert_int_equal(ss_actuation_decode(buf, len, back), 0);
    free(buf);
    assert_int_equal(back->outcome, SS_OUTCOME_SUPERSEDED);
    assert_true(back->superseded_by == 9);

    /* A list longer than the struct holds is refused on encode. */
    r->nkept = SS_AUDIT_MAX_WORKERS + 1;
    assert_int_equal(ss_actuation_encode(r, &buf, &len), -EINVAL);
    free(r);
    free(back);
}

/* Outcome 7 read by this code, and a record from a newer writer with an
 * outcome this code does not know, both decode (the value is kept). */
static void test_outcome_compat(void **state)
{
    (void)state;
    Sparkscale__V1__ActuationResult m = SPARKSCALE__V1__ACTUATION_RESULT__INIT;
    m.cluster = "alpha";
    m.outcome = (Sparkscale__V1__Outcome)42;
    uint8_t buf[64];
    size_t len = sparkscale__v1__actuation_result__pack(&m, buf);
    ss_actuation_result *back = calloc(1, sizeof *back);
    assert_int_equal(ss_actuation_decode(buf, len, back), 0);
    assert_int_equal(back->outcome, 42);
    assert_string_equal(ss_outcome_name(back->outcome), "?");
    assert_int_equal(SPARKSCALE__V1__OUTCOME__OUTCOME_SUPERSEDED, SS_OUTCOME_SUPERSEDED);
    free(back);
}

static void test_names(void **state)
{
    assert_string_equal(ss_reason_code_name(SS_REASON_HOLD_WINDOW), "HOLD_WINDOW");
    assert_string_equal(ss_reason_code_name(SS_REASON_HEARTBEAT), "HEARTBEAT");
    assert_string_equal(ss_reason_code_name(99), "?");
    assert_string_equal(ss_outcome_name(SS_OUTCOME_APPLIED), "APPLIED");
    assert_string_equal(ss_outcome_name(SS_OUTCOME_DRY_RUN), "DRY_RUN");
    assert_string_equal(ss_outcome_name(SS_OUTCOME_SUPERSEDED), "SUPERSEDED");
    assert_string_equal(ss_outcome_name(SS_OUTCOME_COUNT), "?");
    assert_string_equal(ss_outcome_name(-1), "?");
    /* The C enums are the wire enums. */
    assert_int_equal(SS_REASON_POOL_LIMIT, SPARKSCALE__V1__REASON_CODE__REASON_POOL_LIMIT);
    assert_int_equal(SS_OUTCOME_SKIPPED_DUPLICATE, SPARKSCALE__V1__OUTCOME__OUTCOME_SKIPPED_DUPLICATE);
    assert_int_equal(SS_OUTCOME_DRY_RUN, SPARKSCALE__V1__OUTCOME__OUTCOME_DRY_RUN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_round_trip),
        cmocka_unit_test(test_decision_minimal),
        cmocka_unit_test(test_truncated_rejected),
        cmocka_unit_test(test_garbage_rejected),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_actuation_round_trip),
        cmocka_unit_test(test_actuation_full_round_trip),
        cmocka_unit_test(test_outcome_compat),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
