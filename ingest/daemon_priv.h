/* daemon_priv.h: the daemon's state, shared by the modules that make up
 * sparkscaled (daemon.c wires, decider.c decides, status.c reports). */
#ifndef SS_DAEMON_PRIV_H
#define SS_DAEMON_PRIV_H

#include <stdint.h>
#include <uv.h>

#include "carbon/spark_path.h"
#include "ingest/carbon_listen.h"
#include "ingest/daemon.h"
#include "ingest/http_server.h"
#include "ingest/pipeline.h"
#include "ingest/store.h"
#include "lib/bus.h"
#include "lib/config.h"
#include "policy/policy.h"

/* Per-cluster decision state kept between evaluations. */
typedef struct cluster_rt {
    policy_state pstate;
    policy_result result;          /* the newest evaluation */
    int evaluated;                 /* result is valid */
    int granted;                   /* after pool grants; -1 = no pool */
    char pool_note[256];           /* why the pool held it back, "" = nothing */
    /* The newest decision handed to the bus. */
    int published;                 /* a decision was published */
    int pub_desired;
    int64_t pub_at_ms;
    uint64_t pub_sequence;
    uint64_t pub_epoch;
    int pub_state;                 /* 0 pending, 1 acked, -1 failed */
    char pub_reason[POLICY_REASON_MAX];
    int64_t pending_read_us;       /* read time of the line behind the decision in flight */
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
    uint64_t decisions_published;
    uint64_t decisions_failed;
    /* line read -> Kafka ack, microseconds: fixed buckets for /metrics */
    uint64_t reaction_hist[16];
    uint64_t reaction_count;
    double reaction_sum_s;
    int closing;
    int pending_closes;
    int flush_timeout_ms;
    void (*done)(void *);
    void *done_ctx;
};

/* decider.c */
int decider_init(ss_daemon *d);
void decider_evaluate_dirty(ss_daemon *d);
void decider_tick(ss_daemon *d);
void decider_on_delivery(void *ctx, const char *cluster, uint64_t sequence, int err,
                         int64_t latency_us);
/* Upper bounds (seconds) of the reaction histogram buckets; 16 entries, last = +Inf. */
extern const double decider_reaction_bounds_s[16];

/* status.c: the HTTP handler for /healthz, /metrics, /v1/clusters, /v1/kafka. */
void status_handle(void *ctx, const ss_http_request *req, ss_http_response *res);

#endif
