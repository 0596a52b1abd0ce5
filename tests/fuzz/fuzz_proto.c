/* fuzz_proto.c: arbitrary bytes as ScaleDecision / ActuationResult, through
 * protobuf-c and through the bus codec: no crash, and decode -> encode -> decode is stable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bus/record.h"
#include "proto/sparkscale.pb-c.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

static void check_str(const char *s, size_t cap)
{
    CHECK(memchr(s, '\0', cap) != NULL);
}

static void raw_protobuf(const uint8_t *data, size_t size)
{
    Sparkscale__V1__ScaleDecision *d = sparkscale__v1__scale_decision__unpack(NULL, size, data);
    if (d) {
        /* protobuf-c writes back what it accepted. (Not asserted: it reads
         * back its own output, since it keeps unknown fields it cannot
         * re-read, e.g. field number 0 sent as a 2-byte varint.) */
        size_t n = sparkscale__v1__scale_decision__get_packed_size(d);
        uint8_t *buf = malloc(n ? n : 1);
        CHECK(sparkscale__v1__scale_decision__pack(d, buf) == n);
        free(buf);
        sparkscale__v1__scale_decision__free_unpacked(d, NULL);
    }
    Sparkscale__V1__ActuationResult *r = sparkscale__v1__actuation_result__unpack(NULL, size, data);
    if (r)
        sparkscale__v1__actuation_result__free_unpacked(r, NULL);
}

static void same_decision(const ss_decision *a, const ss_decision *b)
{
    CHECK(strcmp(a->cluster, b->cluster) == 0);
    CHECK(a->producer_epoch == b->producer_epoch && a->sequence == b->sequence);
    CHECK(a->decided_at_ms == b->decided_at_ms && a->expires_at_ms == b->expires_at_ms);
    CHECK(a->current_workers == b->current_workers && a->busy_workers == b->busy_workers);
    CHECK(a->desired_workers == b->desired_workers && a->recommended_workers == b->recommended_workers);
    CHECK(a->executors_per_worker == b->executors_per_worker);
    CHECK(a->reason_code == b->reason_code && a->dry_run == b->dry_run);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(a->napps == b->napps && a->nremovable_workers == b->nremovable_workers);
    for (size_t i = 0; i < a->napps; i++) {
        CHECK(strcmp(a->apps[i].app_id, b->apps[i].app_id) == 0);
        CHECK(a->apps[i].target_executors == b->apps[i].target_executors);
        CHECK(a->apps[i].start_ms == b->apps[i].start_ms);
    }
    for (size_t i = 0; i < a->nremovable_workers; i++) {
        CHECK(strcmp(a->removable_workers[i].id, b->removable_workers[i].id) == 0);
        CHECK(strcmp(a->removable_workers[i].host, b->removable_workers[i].host) == 0);
        CHECK(a->removable_workers[i].port == b->removable_workers[i].port);
    }
}

static void bus_codec(const uint8_t *data, size_t size)
{
    ss_decision d;
    if (ss_decision_decode(data, size, &d) == 0) {
        CHECK(d.cluster[0] != '\0');
        check_str(d.cluster, sizeof d.cluster);
        check_str(d.reason, sizeof d.reason);
        CHECK(d.napps <= SS_DECISION_MAX_APPS && d.nremovable_workers <= SS_DECISION_MAX_WORKERS);
        for (size_t i = 0; i < d.nremovable_workers; i++) {
            check_str(d.removable_workers[i].host, sizeof d.removable_workers[i].host);
            CHECK(d.removable_workers[i].port >= 0 && d.removable_workers[i].port <= 65535);
        }
        /* Anything the decoder accepts, the encoder takes back unchanged. */
        uint8_t *buf;
        size_t n;
        CHECK(ss_decision_encode(&d, &buf, &n) == 0);
        ss_decision again;
        CHECK(ss_decision_decode(buf, n, &again) == 0);
        same_decision(&d, &again);
        ss_decision_release(&again);
        free(buf);
        ss_decision_release(&d);
    } else {
        CHECK(d.apps == NULL && d.removable_workers == NULL && d.napps == 0);
    }

    ss_actuation_result r;
    if (ss_actuation_decode(data, size, &r) == 0) {
        check_str(r.error, sizeof r.error);
        check_str(r.actuator_id, sizeof r.actuator_id);
        check_str(r.backend, sizeof r.backend);
        uint8_t *buf;
        size_t n;
        CHECK(ss_actuation_encode(&r, &buf, &n) == 0);
        ss_actuation_result again;
        CHECK(ss_actuation_decode(buf, n, &again) == 0);
        CHECK(strcmp(r.cluster, again.cluster) == 0 && r.outcome == again.outcome);
        CHECK(r.decision_sequence == again.decision_sequence && strcmp(r.error, again.error) == 0);
        free(buf);
    }
    (void)ss_reason_code_name(d.reason_code);
    (void)ss_outcome_name(r.outcome);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SS_BUS_MAX_RECORD_BYTES)
        return 0;
    raw_protobuf(data, size);
    bus_codec(data, size);
    return 0;
}
