/* bus.h: the decision bus: ScaleDecision / ActuationResult records to and from
 * Kafka (protobuf, key = cluster), driven by a libuv loop; embedded mock Kafka. */
#ifndef SS_BUS_H
#define SS_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/config/config.h"

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
    SS_OUTCOME_DRY_RUN = 6
} ss_outcome;

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
    char host[SS_HOST_MAX];
    int32_t port;
} ss_worker_ref;

/* One scale decision, plain C (no protobuf types). For publishing, the
 * arrays are borrowed from the caller for the duration of the call. A
 * decision filled by ss_decision_decode owns its arrays: release it with
 * ss_decision_release. */
typedef struct ss_decision {
    char cluster[SS_NAME_MAX];
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
    int64_t expires_at_ms;             /* 0 = decided_at_ms + kafka.decision_ttl_s */
    uint32_t schema_version;           /* set by encode; read by decode */
    /* Not on the wire: ss_mono_us() of the input that caused this decision
     * (0 = unknown). The bus keeps a trigger -> ack latency histogram. */
    int64_t trigger_us;
} ss_decision;

/* One handled decision (topic sparkscale.audit). Plain data, no pointers. */
typedef struct ss_actuation_result {
    char cluster[SS_NAME_MAX];
    int64_t decision_epoch;
    uint64_t decision_sequence;
    int outcome;                       /* ss_outcome */
    int32_t replicas_before;           /* -1 unknown */
    int32_t replicas_after;            /* -1 unknown */
    char error[SS_DECISION_REASON_MAX];
    int64_t handled_at_ms;
    char actuator_id[SS_NAME_MAX];
    char backend[32];                  /* "kubernetes" | "oshinko" | "exec" | "none" */
    uint32_t schema_version;
} ss_actuation_result;

/* ---- codec (pure; no Kafka, no loop) ---- */

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

/* ---- the producer ---- */

typedef struct ss_bus ss_bus;

/* Called on the loop thread when Kafka acknowledged a decision (err = 0),
 * when a delivery failed and the decision is kept for a retry (-EAGAIN; a
 * later report follows), when a newer decision of the same cluster replaced
 * it before delivery (-ECANCELED, final), or when it was dropped because
 * the holding area is full (-ENOSPC, final; logged). -ECANCELED / -ENOSPC
 * may be reported from inside ss_bus_publish. cluster is valid for the call
 * only. latency_us: ss_bus_publish call -> this report. */
typedef void (*ss_bus_delivery_cb)(void *ctx, const char *cluster, uint64_t sequence, int err,
                                   int64_t latency_us);

/* Latency histogram: SS_BUS_LAT_BUCKETS per-bucket (not cumulative) counts;
 * bucket i holds latencies <= ss_bus_latency_bounds_us[i], the last one is +Inf. */
#define SS_BUS_LAT_BUCKETS 16
extern const int64_t ss_bus_latency_bounds_us[SS_BUS_LAT_BUCKETS];

typedef struct ss_bus_latency {
    uint64_t count;
    uint64_t sum_us;
    int64_t last_us;
    int64_t max_us;
    uint64_t buckets[SS_BUS_LAT_BUCKETS];
} ss_bus_latency;

typedef struct ss_bus_stats {
    uint64_t published;        /* decisions accepted by ss_bus_publish */
    uint64_t delivered;        /* acknowledged by the brokers (acks=all) */
    uint64_t failed;           /* delivery errors (each one is retried or superseded) */
    uint64_t superseded;       /* undelivered decisions replaced by a newer one of their cluster */
    uint64_t dropped;          /* newest decisions lost for good (holding area full); logged */
    uint64_t retried;          /* re-produced from the holding area */
    uint64_t in_flight;        /* handed to librdkafka, not yet reported */
    uint64_t held;             /* kept by the bus for a later retry (newest per cluster) */
    uint64_t pending;          /* in_flight + held */
    uint64_t audit_published;
    uint64_t audit_delivered;
    uint64_t audit_failed;
    uint64_t audit_dropped;
    uint64_t audit_pending;
    ss_bus_latency latency;    /* publish call -> delivery report */
    ss_bus_latency trigger_latency; /* ss_decision.trigger_us -> delivery report */
    uint64_t producer_rebuilds; /* after fatal librdkafka errors */
    int brokers_up;            /* brokers currently connected (from librdkafka stats) */
    int broker_state;          /* 1 = some broker reachable, 0 = all down, -1 = not known yet */
    int64_t epoch;             /* producer_epoch of this process */
    char last_error[256];      /* newest Kafka error, "" = none */
} ss_bus_stats;

/* Creates the producer on loop. cfg is borrowed and must outlive the bus.
 * brokers "embedded": starts a 3-broker mock cluster on loopback and creates
 * the decisions and audit topics on it. Every kafka.properties entry is
 * passed to librdkafka (after our defaults, so it can override them; an
 * entry librdkafka rejects fails creation with a message naming the key).
 * Returns NULL with a message in err on failure. */
ss_bus *ss_bus_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen);

/* Registers the delivery callback (ctx borrowed). */
void ss_bus_set_delivery_cb(ss_bus *bus, ss_bus_delivery_cb cb, void *ctx);

/* The real bootstrap list ("127.0.0.1:port,..." when embedded). Owned by the bus. */
const char *ss_bus_bootstrap(const ss_bus *bus);

/* Publishes d (borrowed) to the decisions topic, key = d->cluster. Assigns
 * producer_epoch and the next sequence of the cluster (written to
 * *sequence_out when not NULL). Never blocks. While brokers are unreachable
 * the decision waits in librdkafka or, when that queue is full or the
 * delivery failed, in a per-cluster holding area where a newer decision of
 * the same cluster replaces an older one (counted as superseded).
 * Returns 0 when the decision is on its way or held; -EINVAL for a bad
 * decision, -ENOSPC when neither librdkafka nor the holding area can take
 * it (counted as dropped and logged), -ESHUTDOWN after ss_bus_close. */
int ss_bus_publish(ss_bus *bus, const ss_decision *d);
int ss_bus_publish_seq(ss_bus *bus, const ss_decision *d, uint64_t *sequence_out);

/* Publishes an actuation result (borrowed) to the audit topic, key =
 * cluster. Failed deliveries are retried from a bounded FIFO (oldest dropped
 * first, counted and logged). Same return codes as ss_bus_publish. */
int ss_bus_produce_audit(ss_bus *bus, const ss_actuation_result *r);

/* Newest sequence assigned to cluster (0 = none) in this process. */
uint64_t ss_bus_last_sequence(const ss_bus *bus, const char *cluster);

void ss_bus_get_stats(const ss_bus *bus, ss_bus_stats *out);

/* Embedded mode only: the mock cluster (rd_kafka_mock_cluster_t *) for
 * tests that inject errors; NULL with real brokers. Owned by the bus. */
void *ss_bus_mock_cluster(const ss_bus *bus);

/* The producer (rd_kafka_t *), for tests and diagnostics; it changes when a
 * fatal librdkafka error makes the bus rebuild it. Owned by the bus. */
void *ss_bus_producer_handle(const ss_bus *bus);

/* Starts shutdown: no new publishes; waits up to flush_timeout_ms (on the
 * loop, never blocking it) for in-flight and held records, logs what could
 * not be delivered, destroys librdkafka and the mock cluster, closes the
 * uv handles and, from the last close callback, frees the bus and calls
 * done(ctx) (done may be NULL). The loop must keep running until then. */
void ss_bus_close(ss_bus *bus, int flush_timeout_ms, void (*done)(void *), void *ctx);

/* When the bus closes, it writes into *lost_decisions (caller-owned, must
 * outlive the close) how many decisions Kafka never acknowledged. */
void ss_bus_set_close_report(ss_bus *bus, uint64_t *lost_decisions);

/* ---- reading (sparkscalectl, tests) ---- */

typedef struct ss_bus_reader ss_bus_reader;

typedef struct ss_bus_record {
    const char *topic;         /* valid until the next ss_bus_reader_next */
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    int64_t timestamp_ms;      /* -1 unknown */
} ss_bus_record;

/* A plain consumer (no group membership, nothing committed) assigned to
 * every partition of the given topics, from the beginning or the end.
 * props (may be NULL) are passed to librdkafka. Blocks up to timeout_ms for
 * the topics' metadata. A topic that does not exist is skipped with a
 * warning; -ENOENT (err names one) if none of them exists.
 * On success *out is the caller's, to close with ss_bus_reader_close. */
int ss_bus_reader_open(const char *brokers, const char *const *topics, size_t ntopics,
                       int from_beginning, const ss_kv *props, size_t nprops, int timeout_ms,
                       ss_bus_reader **out, char *err, size_t errlen);

/* Waits up to timeout_ms (blocking: for CLIs and tests, not the daemon loop).
 * Returns 1 with *rec filled, 0 on timeout, SS_BUS_READER_CAUGHT_UP when
 * every partition has reached its end with nothing newer read since, or a
 * negative error (message in err). */
#define SS_BUS_READER_CAUGHT_UP 2
int ss_bus_reader_next(ss_bus_reader *r, int timeout_ms, ss_bus_record *rec, char *err,
                       size_t errlen);
void ss_bus_reader_close(ss_bus_reader *r);

#endif
