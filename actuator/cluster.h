/* cluster.h: one cluster in the actuator: its decision history, the newest
 * decision waiting, and the action in flight with its stage (read size ->
 * read master -> decommission -> wait -> re-check -> call). Each decision
 * offered ends in exactly one report to the daemon: an audit record, or
 * "abandoned" (not handled: whoever owns the partition next reads it
 * again). Everything runs on the loop thread. */
#ifndef SS_ACTUATOR_CLUSTER_H
#define SS_ACTUATOR_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "actuator/backend.h"
#include "lib/bus/consumer.h"
#include "lib/bus/producer.h"
#include "lib/bus/record.h"

typedef struct act_cluster act_cluster;

typedef enum act_stage {
    ACT_IDLE,
    ACT_READ_SIZE,        /* backend: how many workers now */
    ACT_READ_MASTER,      /* Spark master /json/: choose victims */
    ACT_PRECHECK,         /* backend dry run: which victims would really go */
    ACT_DECOMMISSION,     /* POST /workers/kill/ */
    ACT_WAIT,             /* until the victims are DECOMMISSIONED or gone */
    ACT_RECHECK,          /* /json/ again right before removing */
    ACT_CALL,             /* backend: resize */
    ACT_STAGE_COUNT
} act_stage;
const char *act_stage_name(act_stage s);

/* Why a decision failed (metrics label). */
typedef enum act_fail {
    ACT_FAIL_BACKEND,             /* the backend answered with an error */
    ACT_FAIL_BACKEND_TIMEOUT,
    ACT_FAIL_READ_SIZE,           /* could not read the current size */
    ACT_FAIL_UNKNOWN_SIZE,        /* nobody knows the current size */
    ACT_FAIL_MASTER_UNREACHABLE,  /* no ALIVE master answered */
    ACT_FAIL_DECOMMISSION_REFUSED,/* 403/405: allow.mode is not ALLOW */
    ACT_FAIL_DECOMMISSION_NONE,   /* 404 */
    ACT_FAIL_DECOMMISSION_ERROR,
    ACT_FAIL_NO_BACKEND,          /* a kind this build lacks */
    ACT_FAIL_UNKNOWN_CLUSTER,     /* not in the configuration */
    ACT_FAIL_BAD_RECORD,          /* not a ScaleDecision */
    ACT_FAIL_COUNT
} act_fail;
const char *act_fail_name(act_fail f);

/* Counters shared by every cluster of a daemon (the status page reads them). */
typedef struct act_stats {
    uint64_t offered;                     /* decisions given to clusters */
    uint64_t outcomes[SS_OUTCOME_COUNT];  /* audit records made, by outcome */
    uint64_t failed[ACT_FAIL_COUNT];
    uint64_t abandoned;                   /* left for the partition's next owner */
    uint64_t preempted;                   /* scale-ins cut short by a newer decision */
    uint64_t workers_removed;
    uint64_t workers_kept;                /* scale-in candidates kept, any reason */
    uint64_t decommission_requests;
    uint64_t actions_in_flight;
    ss_hist apply_latency;         /* decision's Kafka timestamp -> applied */
    ss_hist call_latency;          /* one backend resize call */
    ss_hist to_call_latency;       /* decision's Kafka timestamp -> resize call starts */
} act_stats;

typedef struct act_env {
    ss_backend_env backend;               /* loop, HTTP client, config, actuator id */
    act_stats *stats;
    /* A decision is answered: audit (borrowed) or NULL = abandoned. */
    void (*finished)(void *ctx, act_cluster *cl, int32_t partition, int64_t offset,
                     const ss_actuation_result *audit);
    /* The cluster has a decision waiting and nothing in flight: call
     * act_cluster_kick at the end of this loop turn. */
    void (*want_kick)(void *ctx, act_cluster *cl);
    /* Nothing in flight or waiting any more. */
    void (*idle)(void *ctx, act_cluster *cl);
    void *ctx;
    int wait_poll_ms;                     /* decommission wait: master read this often */
} act_env;

/* What /v1/clusters shows. Strings point into the cluster. */
typedef struct act_cluster_view {
    const char *name;
    const char *backend;                  /* "exec", "oshinko", ... or "none" */
    int32_t partition;                    /* of its decisions, -1 none seen */
    int has_seen;
    int64_t seen_epoch;
    uint64_t seen_seq;
    int32_t seen_desired;
    int64_t seen_at_ms;                   /* decided_at_ms */
    int has_applied;
    int64_t applied_epoch;
    uint64_t applied_seq;
    int32_t applied_desired;
    int32_t replicas_before, replicas_after;
    int64_t applied_at_ms;
    int has_last;
    int last_outcome;
    uint64_t last_seq;
    const char *last_note;
    const char *last_error;
    int in_flight;
    act_stage stage;
    uint64_t flight_seq;
    int32_t flight_desired;
    int64_t stage_since_ms;               /* wall clock */
    size_t victims;
    int has_pending;
    uint64_t pending_seq;
} act_cluster_view;

/* A cluster of the configuration (conf borrowed). Its backend is created
 * here; env is borrowed for the cluster's life. NULL with err set. */
act_cluster *act_cluster_create(const act_env *env, const ss_cluster_conf *conf, char *err,
                                size_t errlen);

/* A decision for this cluster, in partition order; d's arrays are taken
 * (released by the cluster). Duplicates, stale and expired ones are audited
 * at once; otherwise it waits as the newest (an older waiting one is
 * audited SUPERSEDED) and may cut short a scale-in in flight. */
void act_cluster_offer(act_cluster *cl, ss_decision *d, int32_t partition, int64_t offset,
                       int64_t timestamp_ms);

/* Starts the waiting decision if nothing is in flight. */
void act_cluster_kick(act_cluster *cl);

/* A decision that already has an audit record (found after an assignment). */
void act_cluster_note_handled(act_cluster *cl, const ss_bus_handled *h);

/* Its partition leaves: lost = 0: the action in flight finishes at its next
 * safe point (a decommission wait is cut short, workers already
 * decommissioned are still removed), the waiting decision is abandoned;
 * lost = 1: everything is abandoned now. idle() follows once nothing runs. */
void act_cluster_stop(act_cluster *cl, int lost);

/* Ready for decisions again after a stop (a partition assigned anew). */
void act_cluster_resume(act_cluster *cl);

int act_cluster_busy(const act_cluster *cl);
int32_t act_cluster_partition(const act_cluster *cl);
const char *act_cluster_name(const act_cluster *cl);
void act_cluster_view_get(const act_cluster *cl, act_cluster_view *v);

/* Abandons what is left, frees the cluster; closed(arg) once its handles
 * and backend are gone. */
void act_cluster_destroy(act_cluster *cl, void (*closed)(void *), void *arg);

#endif
