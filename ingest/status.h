/* status.h: sparkscaled's status API on the HTTP server: the dashboard
 * page (/), /healthz, /metrics (Prometheus text), /v1/clusters,
 * /v1/decisions and /v1/kafka (JSON). It only reads: every part it shows
 * is borrowed and read through its accessors. */
#ifndef SS_STATUS_H
#define SS_STATUS_H

#include <stddef.h>

#include "ingest/decider.h"
#include "ingest/master_view.h"
#include "ingest/pipeline.h"
#include "ingest/source.h"
#include "ingest/store.h"
#include "lib/base/hist.h"
#include "lib/bus/producer.h"
#include "lib/config/config.h"
#include "lib/http/server.h"

/* How late the daemon's loop ran its probe timer (daemon.c). */
typedef struct ss_loop_lag {
    int64_t last_us;
    int64_t max_us;
    uint64_t over_5ms;            /* probes more than 5 ms late */
    uint64_t samples;
    ss_hist probes;               /* every probe's lateness */
    ss_hist turns;                /* CPU time of each loop turn (daemon.c) */
    int64_t turn_max_us;
    uint64_t turns_over_5ms;
    uint64_t heap_trims;          /* freed heap returned to the kernel (daemon.c) */
    int64_t heap_trim_us;         /* the last one took */
} ss_loop_lag;

/* What the status pages read; all borrowed, filled by daemon.c. */
typedef struct ss_status {
    const ss_config *cfg;
    const ss_store *store;
    const ss_decider *decider;
    const ss_bus *bus;
    const pipeline_stats *pipeline;
    ss_source *const *sources;
    size_t nsources;
    ss_http_server *http;         /* its own counters, NULL before it is up */
    const uint64_t *refused;      /* per cluster: lines refused by allowed_sources */
    const ss_loop_lag *lag;
    const ss_master_view *masters;/* polled master answers */
    const ss_source *poller;      /* the HTTP pollers, NULL when none */
} ss_status;

/* The ss_http_handler: ctx is an ss_status. */
void ss_status_handle(void *ctx, const ss_http_request *req, ss_http_response *res);

#endif
