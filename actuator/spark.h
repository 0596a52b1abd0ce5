/* spark.h: the actuator's calls to a Spark standalone master: read GET
 * /json/ (the ALIVE master of an HA list) and decommission workers with
 * POST /workers/kill/ (form field host=, repeatable; Spark 3.1+). Async on
 * the loop through the shared HTTP client; one instance per cluster. */
#ifndef SS_ACTUATOR_SPARK_H
#define SS_ACTUATOR_SPARK_H

#include <stddef.h>

#include "actuator/backend.h"
#include "lib/spark/master_json.h"

typedef struct ss_spark ss_spark;
typedef struct ss_spark_op ss_spark_op;

/* How a decommission request ended. */
typedef enum ss_spark_kill {
    SS_KILL_OK,          /* 200: at least one worker on those hosts is decommissioning */
    SS_KILL_NONE,        /* 404: no worker there, or decommission disabled (the endpoint
                          * exists only with spark.decommission.enabled=true) */
    SS_KILL_REFUSED,     /* 403 (405 before Spark 4): spark.master.ui.decommission.allow.mode
                          * is LOCAL (the default) or DENY; ALLOW lets a remote caller in */
    SS_KILL_ERROR        /* unreachable, timeout, other status */
} ss_spark_kill;

/* m: the parsed state, owned by the callee (ss_master_state_free), NULL on
 * error; err says why ("" when cancelled). url: the master that answered. */
typedef void (*ss_spark_read_fn)(void *arg, ss_master_state *m, const char *url, const char *err,
                                 int cancelled);
typedef void (*ss_spark_kill_fn)(void *arg, ss_spark_kill result, int http_status, const char *err,
                                 int cancelled);

/* NULL when cluster has no spark_master. env and cluster are borrowed. */
ss_spark *ss_spark_create(const ss_backend_env *env, const ss_cluster_conf *cluster);

/* Reads the masters in turn (the last ALIVE one first) until one whose
 * status is ALIVE answers; fn once, never from inside this call. */
int ss_spark_read(ss_spark *s, ss_spark_read_fn fn, void *arg, ss_spark_op **op);

/* POSTs host=... for hosts (n >= 1) to the master that last answered ALIVE. */
int ss_spark_decommission(ss_spark *s, const char *const *hosts, size_t n, ss_spark_kill_fn fn,
                          void *arg, ss_spark_op **op);

/* Its callback runs at once with cancelled = 1 (no-op once it ran). */
void ss_spark_cancel(ss_spark_op *op);

/* Cancels what runs and frees s (no handles of its own). */
void ss_spark_destroy(ss_spark *s);

/* The base URL of the master that last answered ALIVE ("" none yet). */
const char *ss_spark_url(const ss_spark *s);

#endif
