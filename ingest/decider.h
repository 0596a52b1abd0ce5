/* decider.h: sparkscaled's decisions. Per cluster: the policy over the
 * store's data (after every loop turn for clusters that changed, on a timer
 * for all of them), the capacity pools' grants (policy/pool.h), and every
 * changed decision, or an unchanged one each heartbeat, handed to the bus.
 * Cluster runtime state is private: status.c reads it through views. */
#ifndef SS_DECIDER_H
#define SS_DECIDER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/master_view.h"
#include "ingest/store.h"
#include "lib/base/hist.h"
#include "lib/bus/producer.h"
#include "lib/config/config.h"
#include "policy/policy.h"

typedef struct ss_decider ss_decider;

/* Where decisions go: the Kafka bus in the daemon, a recorder in tests. */
typedef struct ss_decision_sink {
    /* A handle for the cluster named name; cluster_ctx comes back with its
     * delivery reports (ss_decider_on_delivery). NULL = out of memory. */
    void *(*add_cluster)(void *sink, const char *name, void *cluster_ctx);
    /* As ss_bus_publish: 0 when on its way; the sequence assigned. */
    int (*publish)(void *sink, void *cluster, const ss_decision *d, uint64_t *sequence);
    void *sink;
    int64_t epoch;                /* producer epoch the decisions carry */
} ss_decision_sink;

/* The sink that publishes to bus (borrowed; must outlive the decider). */
ss_decision_sink ss_decision_sink_bus(ss_bus *bus);

/* cfg and store are borrowed and must outlive the decider; out is copied.
 * Returns NULL with a message in err (may be NULL). */
ss_decider *ss_decider_create(const ss_config *cfg, ss_store *store,
                              const ss_decision_sink *out, char *err, size_t errlen);
void ss_decider_destroy(ss_decider *d);

/* A delivery report for a decision of the cluster whose cluster_ctx this is
 * (an ss_bus_delivery_cb: ctx is the decider). */
void ss_decider_on_delivery(void *ctx, void *cluster_ctx, uint64_t sequence, int err,
                            int64_t latency_us);

/* Decisions published per loop turn at most: 10,000 clusters deciding (or
 * heartbeating) at once are spread over turns instead of stalling one. */
#define SS_DECIDER_PUBLISH_BUDGET 256
/* Dirty clusters evaluated in one loop turn at most, and the time after
 * which a turn's evaluating or publishing stops (the rest: next turns):
 * the timer pass, the check after I/O and the drain share it when the
 * loop meters its turns with ss_decider_turn_begin. */
#define SS_DECIDER_EVAL_BUDGET 512
#define SS_DECIDER_TURN_US 1500

/* A new loop turn: evaluating and publishing in it share SS_DECIDER_TURN_US
 * (sparkscaled calls it before each poll). Without it, every call has the
 * whole budget to itself. */
void ss_decider_turn_begin(ss_decider *d);
/* Another budget than SS_DECIDER_TURN_US (tests). A call past it still
 * evaluates a batch of 31 dirty clusters, or publishes 16 decisions. */
void ss_decider_set_turn_budget_us(ss_decider *d, int64_t us);

/* Evaluates the clusters the store marked dirty since the last call, then
 * their pools, then queues what changed and publishes up to the budget.
 * Run after every loop turn. */
void ss_decider_evaluate_dirty(ss_decider *d);

/* The timer pass, one slice of the clusters a call (round robin): expires
 * their silent apps, evaluates them (staleness, the window, heartbeats),
 * then pools, then queues and publishes up to the budget. Run on a timer of
 * evaluate_interval_ms / ss_decider_slices(): every cluster is visited once
 * an interval. */
void ss_decider_tick(ss_decider *d);
/* Clusters per slice: 10,000 clusters are visited in 10 ticks. */
#define SS_DECIDER_SLICE_CLUSTERS 1000
size_t ss_decider_slices(const ss_decider *d);

/* Publishes up to the budget from the queue (what is due as of now);
 * returns how many clusters still wait. Run on the next loop turns while
 * it is not 0. */
size_t ss_decider_drain(ss_decider *d);
size_t ss_decider_backlog(const ss_decider *d);

/* Polled Spark master answers (borrowed; must outlive the decider; NULL =
 * none). While a cluster's answer is fresh (within its stale_after_s),
 * current, busy and removable workers come from it, and its fetch time
 * counts as data; otherwise the master and worker gauges stand in. */
void ss_decider_set_master_view(ss_decider *d, const ss_master_view *mv);

/* Index of the cluster named name, or -1 (binary search). */
int ss_decider_cluster_index(const ss_decider *d, const char *name);

/* Reaction time, for benchmarks and tests: called on the loop thread when
 * Kafka acknowledges a decision that data (not the timer) triggered, with
 * the microseconds from reading that data to the acknowledgement. */
typedef void (*ss_reaction_fn)(void *ctx, const char *cluster, uint64_t sequence,
                               int64_t reaction_us);
void ss_decider_set_reaction_hook(ss_decider *d, ss_reaction_fn fn, void *ctx);

typedef enum ss_delivery {
    SS_DELIVERY_PENDING = 0,      /* with Kafka or held for a retry */
    SS_DELIVERY_ACKED,            /* acknowledged by the brokers */
    SS_DELIVERY_FAILED            /* superseded or dropped before delivery */
} ss_delivery;

/* What status shows of one cluster. Pointers are owned by the decider and
 * valid until its next evaluation. */
typedef struct ss_cluster_view {
    const policy_result *result;  /* newest evaluation, NULL before the first */
    int granted;                  /* pool grant, -1 = not in a pool */
    const char *pool_note;        /* why the pool held it back, "" = nothing */
    int published;                /* a decision was published */
    int pub_desired;
    int64_t pub_at_ms;
    uint64_t pub_sequence;
    int64_t pub_epoch;
    ss_delivery pub_delivery;
    const char *pub_reason;
} ss_cluster_view;

void ss_decider_view(const ss_decider *d, int cluster, ss_cluster_view *out);

typedef struct ss_decider_stats {
    uint64_t evaluations;
    uint64_t published;           /* decisions handed to the bus */
    int64_t pass_us;              /* last timer pass (one slice of the clusters) */
    int64_t pass_max_us;
    int64_t rotation_us;          /* the slices of the last full rotation, summed */
    int64_t publish_us;           /* last publishing turn (at most the budget) */
    int64_t publish_max_us;
    ss_hist passes;               /* every timer pass */
    ss_hist publishes;            /* every publishing turn */
    uint64_t pool_apps_truncated; /* apps left out of a pool grant (scratch full) */
} ss_decider_stats;

void ss_decider_get_stats(const ss_decider *d, ss_decider_stats *out);

/* The changed decisions published, per cluster and across clusters
 * (heartbeats are not kept). Owned by the decider. */
typedef struct ss_decision_log ss_decision_log;
const ss_decision_log *ss_decider_log(const ss_decider *d);

#endif
