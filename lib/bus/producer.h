/* producer.h: the decision producer: ScaleDecision records to Kafka (key =
 * cluster, idempotent, acks=all) from a libuv loop, held and retried while
 * the brokers are away, newest per cluster; audit records too. */
#ifndef SS_BUS_PRODUCER_H
#define SS_BUS_PRODUCER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/hist.h"

#include "lib/bus/conf.h"
#include "lib/bus/record.h"

typedef struct ss_bus ss_bus;

/* A cluster the bus publishes for: its sequence numbers and its held
 * decision. Created once per cluster, owned by the bus. */
typedef struct ss_bus_cluster ss_bus_cluster;

/* Called on the loop thread when Kafka acknowledged a decision (err = 0),
 * when a delivery failed and the decision is kept for a retry (-EAGAIN; a
 * later report follows), when a newer decision of the same cluster replaced
 * it before delivery (-ECANCELED, final), or when it was dropped because
 * the holding area is full (-ENOSPC, final; logged). -ECANCELED / -ENOSPC
 * may be reported from inside ss_bus_publish. cluster_ctx is the ctx given
 * to ss_bus_cluster_add. latency_us: ss_bus_publish call -> this report. */
typedef void (*ss_bus_delivery_cb)(void *ctx, void *cluster_ctx, uint64_t sequence, int err,
                                   int64_t latency_us);

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
    ss_hist latency;    /* publish call -> delivery report */
    ss_hist trigger_latency; /* ss_decision.trigger_us -> delivery report */
    uint64_t producer_rebuilds; /* after fatal librdkafka errors */
    int brokers_up;            /* brokers currently connected (from librdkafka stats) */
    int broker_state;          /* 1 = some broker reachable, 0 = all down, -1 = not known yet */
    int64_t epoch;             /* producer_epoch of this process */
    int topics_ready;          /* topics whose metadata the brokers gave at start (2 = both) */
    char last_error[256];      /* newest Kafka error, "" = none */
} ss_bus_stats;

/* Creates the producer on loop. bc is borrowed and must outlive the bus (a
 * producer rebuilt after a fatal error reads it again). brokers "embedded":
 * starts a 3-broker mock cluster on loopback and creates the decisions and
 * audit topics on it. Every bc->properties entry is passed to librdkafka
 * after our defaults, so it can override them; an entry librdkafka rejects
 * fails creation with a message naming the key. Returns NULL with a message
 * in err on failure. */
ss_bus *ss_bus_create(uv_loop_t *loop, const ss_bus_conf *bc, char *err, size_t errlen);

/* Registers the delivery callback (ctx borrowed). */
void ss_bus_set_delivery_cb(ss_bus *bus, ss_bus_delivery_cb cb, void *ctx);

/* The real bootstrap list ("127.0.0.1:port,..." when embedded). Owned by the bus. */
const char *ss_bus_bootstrap(const ss_bus *bus);

/* Adds a cluster named name (copied; 1..SS_BUS_NAME_MAX-1 bytes) whose
 * deliveries report ctx; a name already added returns its handle (ctx
 * kept). NULL for a bad name or no memory. The handle lives as long as the bus. */
ss_bus_cluster *ss_bus_cluster_add(ss_bus *bus, const char *name, void *ctx);
const char *ss_bus_cluster_name(const ss_bus_cluster *c);
/* Newest sequence assigned to the cluster (0 = none) in this process. */
uint64_t ss_bus_cluster_last_sequence(const ss_bus_cluster *c);

/* Publishes d (borrowed) to the decisions topic for cluster c, key = the
 * cluster's name (d->cluster is ignored and filled in). Assigns
 * producer_epoch and the cluster's next sequence (written to *sequence_out
 * when not NULL), and expires_at_ms from decision_ttl_s when d has none.
 * Never blocks. While brokers are unreachable the decision waits in
 * librdkafka or, when that queue is full or the delivery failed, in a
 * per-cluster holding area where a newer decision of the same cluster
 * replaces an older one (counted as superseded).
 * Returns 0 when the decision is on its way or held; -EINVAL for a bad
 * decision, -ENOSPC when neither librdkafka nor the holding area can take
 * it (counted as dropped and logged), -ESHUTDOWN after ss_bus_close. */
int ss_bus_publish(ss_bus *bus, ss_bus_cluster *c, const ss_decision *d, uint64_t *sequence_out);

/* Publishes an actuation result (borrowed) to the audit topic, key =
 * cluster. Failed deliveries are retried from a bounded FIFO (oldest dropped
 * first, counted and logged). Same return codes as ss_bus_publish. */
int ss_bus_produce_audit(ss_bus *bus, const ss_actuation_result *r);

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

#endif
