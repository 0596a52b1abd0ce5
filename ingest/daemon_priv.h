/* daemon_priv.h: the daemon's state, shared by the modules that make up
 * sparkscaled (daemon.c wires, decider.c decides, status.c reports). */
#ifndef SS_DAEMON_PRIV_H
#define SS_DAEMON_PRIV_H

#include <stdint.h>
#include <uv.h>

#include "carbon/spark_path.h"
#include "ingest/carbon_listen.h"
#include "ingest/daemon.h"
#include "lib/http/server.h"
#include "ingest/pipeline.h"
#include "ingest/store.h"
#include "lib/bus/bus.h"
#include "lib/config/config.h"
#include "policy/policy.h"

/* Per-cluster decision state kept between evaluations. */
typedef struct cluster_rt {
    policy_state pstate;
    policy_result result;          /* the newest evaluation */
    int evaluated;                 /* result is valid */
    int granted;                   /* after pool grants; -1 = no pool */
    int pool_dirty;                /* evaluated since its pool last granted */
    char pool_note[256];           /* why the pool held it back, "" = nothing */
    /* The newest decision handed to the bus. */
    int published;                 /* a decision was published */
    int pub_desired;
    int64_t pub_at_ms;
    uint64_t pub_sequence;
    uint64_t pub_epoch;
    int pub_state;                 /* 0 pending, 1 acked, -1 failed */
    char pub_reason[POLICY_REASON_MAX];
    int64_t pub_trigger_us;        /* read time of the line behind it, 0 = timer */
} cluster_rt;

struct ss_daemon {
    uv_loop_t *loop;
    const ss_config *cfg;
    ss_store *store;
    spark_prefixes *prefixes;
    ss_pipeline pipe;
    int64_t *changed_at_us;        /* per cluster, see pipeline.h */
    cluster_rt *rt;                /* per cluster */
    int *dirty;                    /* scratch for store_take_dirty */
    carbon_tcp *tcp;
    carbon_udp *udp;
    ss_http_server *http;
    ss_bus *bus;
    uv_check_t evaluate_check;     /* after each loop turn: evaluate dirty clusters */
    uv_timer_t evaluate_timer;     /* periodic: expiry, staleness, heartbeat */
    int64_t started_ms;
    uint64_t evaluations;
    int64_t pass_us;               /* last timer pass over every cluster (policy + pools) */
    int64_t pass_max_us;
    int64_t bus_epoch;             /* producer epoch of this process */
    void *decider;                 /* decider.c's scratch */
    void *pools;                   /* pools.c's state */
    ss_daemon_reaction_fn reaction_hook;
    void *reaction_ctx;
    int hooks_started;             /* evaluate_check/timer initialised */
    int closing;
    int pending_closes;
    int flush_timeout_ms;
    void (*done)(void *);
    void *done_ctx;
};

/* decider.c */
int decider_init(ss_daemon *d);
void decider_free(ss_daemon *d);
void decider_evaluate_dirty(ss_daemon *d);
void decider_tick(ss_daemon *d);
/* Index of the cluster named name, or -1 (binary search). */
int decider_cluster_index(ss_daemon *d, const char *name);
void decider_on_delivery(void *ctx, const char *cluster, uint64_t sequence, int err,
                         int64_t latency_us);

/* The policy input of cluster c from the store; apps is caller scratch of
 * cap entries (ids borrowed from the store until its next change). */
void decider_input(ss_daemon *d, int c, int64_t now_ms, policy_app *apps, size_t cap,
                   policy_input *in);

/* pools.c: shared capacity pools cut their clusters' grants (rt->granted)
 * when a member was evaluated since the last grant. */
int pools_init(ss_daemon *d);
void pools_apply(ss_daemon *d, int64_t now_ms);
void pools_free(ss_daemon *d);

/* status.c: the HTTP handler for /healthz, /metrics, /v1/clusters, /v1/kafka. */
void status_handle(void *ctx, const ss_http_request *req, ss_http_response *res);

#endif
