/* consumer.h: the actuators' side of the bus, on a libuv loop: a member of
 * the consumer group on the decisions topic (cooperative-sticky) and a
 * transactional producer of audit records. Consume-transform-produce: the
 * audit records of handled decisions and the consumed offsets are committed
 * in one Kafka transaction. librdkafka's blocking calls (init, commit,
 * abort, committed offsets, the audit scan) run off the loop on libuv's
 * thread pool, one at a time per lane; everything else, callbacks
 * included, happens on the loop thread.
 *
 * Exactly one audit record per consumed decision, across crashes: a
 * decision whose offset is not committed is read again by the next owner of
 * its partition; before handing such records out, the consumer scans the
 * tail of the audit topic (read_committed) and drops the decisions that
 * already have a record there (their audit was committed but their offset
 * was not, because an older decision of another cluster in the same
 * partition was still being handled). Where the scan starts is kept in the
 * committed offset's metadata. */
#ifndef SS_BUS_CONSUMER_H
#define SS_BUS_CONSUMER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/bus/conf.h"
#include "lib/bus/producer.h"
#include "lib/bus/record.h"

typedef struct ss_bus_consumer ss_bus_consumer;

/* One consumed decision record. Everything is borrowed for the callback. */
typedef struct ss_bus_in {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;      /* the record's Kafka timestamp, -1 unknown */
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
} ss_bus_in;

/* A decision that already has an audit record (found by the scan on
 * assignment): what the owner needs to continue its clusters' history. */
typedef struct ss_bus_handled {
    char cluster[SS_BUS_NAME_MAX];
    int64_t epoch;
    uint64_t sequence;
    int outcome;               /* ss_outcome */
    int64_t decision_offset;
    int32_t desired_workers;
    int32_t replicas_after;
    int64_t handled_at_ms;
} ss_bus_handled;

/* The owner's callbacks, all called on the loop thread. */
typedef struct ss_bus_consumer_cbs {
    /* A partition is ours and its scan is done. handled[0..n) (borrowed)
     * are the decisions of it at or after the committed offset that already
     * have an audit record, in audit order; they will not be handed out. */
    void (*assigned)(void *ctx, int32_t partition, const ss_bus_handled *handled, size_t n);
    /* A decision record, in partition order. The owner answers each one,
     * exactly once, with ss_bus_consumer_done or ss_bus_consumer_abandon. */
    void (*record)(void *ctx, const ss_bus_in *rec);
    /* The partition leaves this member. lost = 0 (a rebalance or close):
     * finish what is in flight for it, answer its records, then call
     * ss_bus_consumer_release; nothing of it is handed over before that.
     * lost = 1: it already belongs to someone else: drop its work at once
     * (answers for it are ignored; nothing of it is committed). */
    void (*revoked)(void *ctx, int32_t partition, int lost);
    /* The consumer cannot go on (fenced by a newer instance, a fatal
     * librdkafka error, no audit topic): the daemon should stop. */
    void (*fatal)(void *ctx, const char *why);
    /* A transaction committed naudits audit records (may be NULL). */
    void (*committed)(void *ctx, size_t naudits);
} ss_bus_consumer_cbs;

typedef struct ss_bus_consumer_conf {
    const ss_bus_conf *bus;        /* topics and properties (borrowed for the consumer's life) */
    const char *bootstrap;         /* the real bootstrap list */
    const char *group;             /* group.id */
    const char *instance_id;       /* client.id; transactional.id = "sparkscale-actuator-" + it */
    int call_timeout_ms;           /* each blocking librdkafka call; 0 = 30000 */
    int fetch_wait_max_ms;         /* fetch.wait.max.ms default (properties override);
                                    * 0 = 100. Real brokers answer a waiting fetch as
                                    * soon as a record arrives; librdkafka's mock cluster
                                    * waits this long whatever comes, so with it this
                                    * bounds how fast a decision is picked up. */
} ss_bus_consumer_conf;

typedef struct ss_bus_consumer_stats {
    uint64_t consumed;             /* decision records received */
    uint64_t delivered;            /* handed to the owner */
    uint64_t recovered_skipped;    /* dropped: their audit record was already in Kafka */
    uint64_t done;                 /* answered with an audit record */
    uint64_t abandoned;            /* answered "not handled": read again by the next owner */
    uint64_t audits_committed;     /* audit records in committed transactions */
    uint64_t transactions;         /* committed */
    uint64_t aborts;               /* aborted (their audits re-sent after a check) */
    uint64_t rebalances;           /* assign or revoke events */
    uint64_t in_flight_commits;    /* 0 or 1 */
    uint64_t queued_audits;        /* waiting for the next transaction */
    int32_t assigned_partitions;
    int64_t lag;                   /* records behind the end over assigned partitions, -1 unknown */
    int offsets_outside_txn;       /* the brokers ignore transactional offsets (librdkafka's
                                    * mock cluster): offsets are also committed on their own */
    ss_hist commit_latency; /* one commit job (send offsets + commit) */
    ss_hist audit_latency;  /* decision's Kafka timestamp -> its audit committed */
    char last_error[256];
} ss_bus_consumer_stats;

/* Creates the consumer on loop and starts it: init_transactions off the
 * loop, then subscribes to the decisions topic. conf and cbs are copied
 * (conf's strings too; conf->bus is borrowed). Returns NULL with err set. */
ss_bus_consumer *ss_bus_consumer_create(uv_loop_t *loop, const ss_bus_consumer_conf *conf,
                                        const ss_bus_consumer_cbs *cbs, void *ctx, char *err,
                                        size_t errlen);

/* The owner handled the record at (partition, offset): audit (copied; NULL
 * when no record is due) joins the next transaction with the offset.
 * Returns 0, -ENOENT for a record not outstanding (already answered, or its
 * partition left), -EINVAL for an audit the codec refuses, -ENOMEM. */
int ss_bus_consumer_done(ss_bus_consumer *c, int32_t partition, int64_t offset,
                         const ss_actuation_result *audit);

/* The owner will not handle the record: its offset is not committed, so
 * the next owner of the partition reads it again. */
void ss_bus_consumer_abandon(ss_bus_consumer *c, int32_t partition, int64_t offset);

/* After revoked(partition, 0): the owner has answered every record of the
 * partition. Its last audits are committed, then it is handed over. */
void ss_bus_consumer_release(ss_bus_consumer *c, int32_t partition);

void ss_bus_consumer_get_stats(const ss_bus_consumer *c, ss_bus_consumer_stats *out);

/* Leaves the group cleanly: stops handing out records, revokes every
 * partition through the owner's revoked callback (lost = 0) and waits for
 * its releases, commits the last audits (bounded by timeout_ms), closes the
 * consumer and the producer off the loop, closes the uv handles and frees
 * c; then done(ctx). The loop must run until then. */
void ss_bus_consumer_close(ss_bus_consumer *c, int timeout_ms, void (*done)(void *ctx), void *ctx);

#endif
