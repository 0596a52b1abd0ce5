/* status.h: the actuator's status API on the shared HTTP server: /healthz,
 * /metrics (Prometheus text) and /v1/clusters (JSON). Read-only. */
#ifndef SS_ACTUATOR_STATUS_H
#define SS_ACTUATOR_STATUS_H

#include <stddef.h>

#include "actuator/cluster.h"
#include "lib/bus/consumer.h"
#include "lib/config/config.h"
#include "lib/http/client.h"
#include "lib/http/server.h"

/* What the pages read; filled and kept current by actuator.c. */
typedef struct act_status {
    const ss_config *cfg;
    const char *id;
    const char *bootstrap;
    const char *state;                 /* "discovering", "running", "stopping", "failed" */
    const act_stats *stats;
    ss_bus_consumer *consumer;         /* NULL before Kafka is known */
    ss_http_client *http;
    ss_http_server *server;
    act_cluster *const *clusters;
    size_t nclusters;
    int (*cluster_index)(void *ctx, const char *name);
    void *ctx;
} act_status;

/* The ss_http_handler: ctx is an act_status. */
void act_status_handle(void *ctx, const ss_http_request *req, ss_http_response *res);

#endif
