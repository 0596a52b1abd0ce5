/* status.h: sparkscaled's status API on the HTTP server: /healthz,
 * /metrics (Prometheus text), /v1/clusters and /v1/kafka (JSON). It only
 * reads: every part it shows is borrowed and read through its accessors. */
#ifndef SS_STATUS_H
#define SS_STATUS_H

#include <stddef.h>

#include "ingest/decider.h"
#include "ingest/master_view.h"
#include "ingest/pipeline.h"
#include "ingest/source.h"
#include "ingest/store.h"
#include "lib/bus/producer.h"
#include "lib/config/config.h"
#include "lib/http/server.h"

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
    const ss_master_view *masters;/* polled master answers */
    const ss_source *poller;      /* the HTTP pollers, NULL when none */
} ss_status;

/* The ss_http_handler: ctx is an ss_status. */
void ss_status_handle(void *ctx, const ss_http_request *req, ss_http_response *res);

#endif
