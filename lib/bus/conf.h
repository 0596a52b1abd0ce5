/* conf.h: what the bus needs to know: Kafka only. Plain data; the daemons
 * fill it from their configuration (ss_config_bus_conf). */
#ifndef SS_BUS_CONF_H
#define SS_BUS_CONF_H

#include <stddef.h>

#include "lib/base/str.h"

/* "brokers: embedded" starts librdkafka's mock cluster in-process. */
#define SS_BUS_EMBEDDED "embedded"

typedef struct ss_bus_conf {
    const char *brokers;          /* "embedded" or "host:port,..." */
    const char *decisions_topic;  /* NULL = "sparkscale.decisions" */
    const char *audit_topic;      /* NULL = "sparkscale.audit" */
    const ss_kv *properties;      /* passed to librdkafka after our defaults */
    size_t nproperties;
    const char *client_id;        /* NULL = "sparkscale" */
    int linger_ms;                /* producer linger.ms */
    int max_pending;              /* records queued while brokers are down; 0 = 100000 */
    int decision_ttl_s;           /* expires_at_ms = decided_at_ms + this; 0 = no expiry */
} ss_bus_conf;

#endif
