/* record.h: the two record types of the bus, ScaleDecision and
 * ActuationResult, as plain C, and their protobuf codec (pure: no Kafka,
 * no loop; the one place daemon code meets protobuf-c types). */
#ifndef SS_BUS_RECORD_H
#define SS_BUS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define SS_BUS_NAME_MAX 64             /* cluster and actuator names, NUL included */
#define SS_BUS_HOST_MAX 256
#define SS_BUS_TOPIC_MAX 256               /* Kafka allows 249 bytes */

/* Wire schema version written into every record (proto/sparkscale.proto). */
#define SS_BUS_SCHEMA_VERSION 1

/* "brokers: embedded" starts librdkafka's mock cluster in-process. */
#define SS_BUS_EMBEDDED "embedded"
#define SS_BUS_EMBEDDED_BROKERS 3      /* so acks=all waits for replicas */
#define SS_BUS_EMBEDDED_PARTITIONS 4

/* Hard bounds for decoding (a record beyond them is rejected, not cut). */
#define SS_BUS_MAX_RECORD_BYTES (1024 * 1024)
#define SS_DECISION_MAX_APPS 4096
#define SS_DECISION_MAX_WORKERS 4096
#define SS_DECISION_REASON_MAX 512     /* longer reason text is truncated */
#define SS_WORKER_ID_MAX 128
#define SS_APP_ID_MAX 128

/* Why a decision was made. Values match proto enum sparkscale.v1.ReasonCode;
 * SS_REASON_UP .. SS_REASON_INITIAL are policy_reason (policy/policy.h) + 1. */
typedef enum ss_reason_code {
    SS_REASON_UNSPECIFIED = 0,
    SS_REASON_UP = 1,
    SS_REASON_DOWN = 2,
    SS_REASON_STEADY = 3,
    SS_REASON_AT_MIN = 4,
    SS_REASON_AT_MAX = 5,
    SS_REASON_HOLD_WINDOW = 6,
    SS_REASON_HOLD_TOLERANCE = 7,
    SS_REASON_HOLD_STALE = 8,
    SS_REASON_HOLD_NO_DATA = 9,
    SS_REASON_INITIAL = 10,
    SS_REASON_POOL_LIMIT = 11,         /* a shared capacity pool cut the grant */
    SS_REASON_HEARTBEAT = 12           /* unchanged decision republished */
} ss_reason_code;

/* How an actuator handled a decision. Values match sparkscale.v1.Outcome. */
typedef enum ss_outcome {
    SS_OUTCOME_UNSPECIFIED = 0,
    SS_OUTCOME_APPLIED = 1,
    SS_OUTCOME_SKIPPED_STALE = 2,      /* an older (epoch, sequence) than one applied */
    SS_OUTCOME_SKIPPED_DUPLICATE = 3,  /* the same (epoch, sequence) again */
    SS_OUTCOME_EXPIRED = 4,            /* arrived after expires_at_ms */
    SS_OUTCOME_FAILED = 5,
    SS_OUTCOME_DRY_RUN = 6,
    SS_OUTCOME_SUPERSEDED = 7          /* a newer decision of the cluster was waiting too */
} ss_outcome;
#define SS_OUTCOME_COUNT 8

/* Stable upper-case names ("UP", "HOLD_WINDOW", "APPLIED", ...); "?" if unknown. */
const char *ss_reason_code_name(int code);
const char *ss_outcome_name(int outcome);

typedef struct ss_app_demand {
    char app_id[SS_APP_ID_MAX];
    int32_t target_executors;          /* numberTargetExecutors */
    int32_t max_needed_executors;      /* numberMaxNeededExecutors, -1 unknown */
    int32_t all_executors;             /* numberAllExecutors, -1 unknown */
    int64_t start_ms;
} ss_app_demand;

typedef struct ss_worker_ref {
    char id[SS_WORKER_ID_MAX];         /* worker-<yyyyMMddHHmmss>-<host>-<port> */
    char host[SS_BUS_HOST_MAX];
    int32_t port;
} ss_worker_ref;

/* One scale decision, plain C (no protobuf types). For publishing, the
 * arrays are borrowed from the caller for the duration of the call. A
 * decision filled by ss_decision_decode owns its arrays: release it with
 * ss_decision_release. */
typedef struct ss_decision {
    char cluster[SS_BUS_NAME_MAX];
    int64_t producer_epoch;            /* set by ss_bus_publish */
    uint64_t sequence;                 /* set by ss_bus_publish: per cluster, from 1 */
    int64_t decided_at_ms;             /* wall clock; 0 = now (publish) */
    int32_t current_workers;           /* -1 unknown */
    int32_t busy_workers;              /* -1 unknown */
    int32_t desired_workers;
    int32_t recommended_workers;       /* before window/steps/holds */
    int32_t executors_per_worker;
    const ss_app_demand *apps;
    size_t napps;
    const ss_worker_ref *removable_workers;  /* idle workers the actuator may remove */
    size_t nremovable_workers;
    char reason[SS_DECISION_REASON_MAX];
    int reason_code;                   /* ss_reason_code */
    int dry_run;
    int64_t expires_at_ms;             /* 0 = decided_at_ms + the bus's decision_ttl_s */
    uint32_t schema_version;           /* set by encode; read by decode */
    /* Not on the wire: ss_mono_us() of the input that caused this decision
     * (0 = unknown). The bus keeps a trigger -> ack latency histogram. */
    int64_t trigger_us;
} ss_decision;

/* Bounds of what one actuation result carries (longer lists are cut, the
 * counts stay exact). */
#define SS_AUDIT_MAX_WORKERS 32
#define SS_AUDIT_KEPT_REASON_MAX 96
#define SS_AUDIT_OUTPUT_MAX 1024

/* A scale-in candidate that was not removed, and why. */
typedef struct ss_kept_worker {
    ss_worker_ref worker;
    char reason[SS_AUDIT_KEPT_REASON_MAX];
} ss_kept_worker;

/* One handled decision (topic sparkscale.audit). Plain data, no pointers:
 * a zeroed struct is a valid "nothing known" start. */
typedef struct ss_actuation_result {
    char cluster[SS_BUS_NAME_MAX];
    int64_t decision_epoch;
    uint64_t decision_sequence;
    int outcome;                       /* ss_outcome */
    int32_t replicas_before;           /* -1 unknown */
    int32_t replicas_after;            /* -1 unknown */
    char error[SS_DECISION_REASON_MAX];
    int64_t handled_at_ms;
    char actuator_id[SS_BUS_NAME_MAX];
    char backend[32];                  /* "kubernetes" | "oshinko" | "exec" | "none" */
    uint32_t schema_version;
    /* The decision record's place in Kafka (when has_decision_position). */
    int has_decision_position;
    int32_t decision_partition;
    int64_t decision_offset;
    char decision_topic[SS_BUS_TOPIC_MAX];   /* "" in records written without it */
    int32_t desired_workers;           /* what the decision asked for */
    int32_t workers_to_remove;         /* scale-in: workers the decision wanted gone */
    int32_t workers_removed;           /* scale-in: workers actually removed */
    size_t nremoved;                   /* entries in removed (<= SS_AUDIT_MAX_WORKERS) */
    ss_worker_ref removed[SS_AUDIT_MAX_WORKERS];
    size_t nkept;
    ss_kept_worker kept[SS_AUDIT_MAX_WORKERS];
    char note[SS_DECISION_REASON_MAX]; /* what happened, one line */
    uint64_t superseded_by;            /* SUPERSEDED: the newer decision's sequence */
    /* kind exec: the command's result (when has_exec). */
    int has_exec;
    int32_t exec_exit_status;          /* -1: it did not exit by itself */
    int32_t exec_signal;
    int exec_timed_out;
    char exec_output[SS_AUDIT_OUTPUT_MAX];
} ss_actuation_result;

/* ---- codec ---- */

/* Encodes d as a sparkscale.v1.ScaleDecision. On success returns 0 and
 * *out (malloc'd, caller frees) / *outlen. -EINVAL for a bad decision
 * (empty cluster, counts beyond the bounds above), -ENOMEM. */
int ss_decision_encode(const ss_decision *d, uint8_t **out, size_t *outlen);

/* Decodes a ScaleDecision. On success returns 0 and fills *out, which then
 * owns its apps/removable_workers arrays (ss_decision_release frees them).
 * Returns -EBADMSG for bytes that are not a ScaleDecision (truncated,
 * garbage), -E2BIG beyond the bounds above, -EINVAL for an identifier that
 * does not fit (cluster, app or worker id, host). On error *out holds nothing
 * to free. */
int ss_decision_decode(const uint8_t *buf, size_t len, ss_decision *out);
void ss_decision_release(ss_decision *d);

int ss_actuation_encode(const ss_actuation_result *r, uint8_t **out, size_t *outlen);
int ss_actuation_decode(const uint8_t *buf, size_t len, ss_actuation_result *out);

#endif
