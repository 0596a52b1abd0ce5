/* poller.h: sparkscaled's HTTP sources: each cluster's Spark master
 * (GET /json/, HA masters in turn) and its drivers' Jolokia agents (one bulk
 * POST each), polled every poll.interval_s on the loop through one shared
 * libcurl client (lib/http/client.h). One ss_source for both kinds. */
#ifndef SS_POLLER_H
#define SS_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "ingest/master_view.h"
#include "ingest/pipeline.h"
#include "ingest/source.h"
#include "lib/config/config.h"

/* Requests in flight at most; endpoints due beyond it wait their turn. */
#define POLLER_MAX_IN_FLIGHT 128
/* Kept-alive connections at most (one per endpoint up to this). */
#define POLLER_MAX_CONNECTIONS 8192

/* Non-zero when some cluster of cfg has spark_master or jolokia URLs. */
int poller_wanted(const ss_config *cfg);

/* Starts polling every configured endpoint; first polls spread over the
 * period. cfg, pipe (and its store) and mv are borrowed and must outlive
 * the source. Returns NULL with a message in err. The source's metrics are
 * sparkscale_poll_*; ss_source_close cancels requests in flight. */
ss_source *poller_create(uv_loop_t *loop, const ss_config *cfg, ss_pipeline *pipe,
                         ss_master_view *mv, char *err, size_t errlen);

/* Cluster c's endpoints as a JSON array (new reference) for /v1/clusters:
 * per endpoint its source, URL(s) (secrets masked), state (the last poll's
 * result), consecutive failures, last success, last poll, last error and
 * the next poll. An empty array when c polls nothing. s may be NULL. */
json_t *poller_cluster_json(const ss_source *s, int c);

#endif
