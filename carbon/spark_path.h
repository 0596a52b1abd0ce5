/* spark_path.h: maps a Spark metric path to (cluster, app, gauge).
 * Driver:  [prefix.]<namespace>.driver.ExecutorAllocationManager.executors.<gauge>[.count]
 * Master:  [prefix.]master.<gauge>      Worker: [prefix.]worker.<gauge>
 * The namespace may contain dots: paths are parsed from the right. Pure. */
#ifndef SS_SPARK_PATH_H
#define SS_SPARK_PATH_H

#include <stddef.h>
#include <stdint.h>

typedef enum spark_kind {
    SPARK_KIND_NONE = 0,
    SPARK_KIND_APP,      /* ExecutorAllocationManager gauge of one driver */
    SPARK_KIND_MASTER,   /* standalone master gauge */
    SPARK_KIND_WORKER    /* standalone worker gauge */
} spark_kind;

/* Known gauges. Unknown names under a known source are kept as
 * SPARK_G_UNKNOWN with their name (Spark warns names change across versions). */
typedef enum spark_gauge {
    SPARK_G_UNKNOWN = -1,
    /* ExecutorAllocationManager.executors.* */
    SPARK_G_EXECUTORS_TO_ADD = 0,          /* numberExecutorsToAdd */
    SPARK_G_PENDING_TO_REMOVE,             /* numberExecutorsPendingToRemove */
    SPARK_G_ALL_EXECUTORS,                 /* numberAllExecutors */
    SPARK_G_TARGET_EXECUTORS,              /* numberTargetExecutors */
    SPARK_G_MAX_NEEDED_EXECUTORS,          /* numberMaxNeededExecutors */
    SPARK_G_DECOMMISSIONING,               /* numberDecommissioningExecutors (3.4+) */
    SPARK_G_GRACEFULLY_DECOMMISSIONED,     /* counters (3.2+), sent as <name>.count */
    SPARK_G_DECOMMISSION_UNFINISHED,
    SPARK_G_KILLED_BY_DRIVER,
    SPARK_G_EXITED_UNEXPECTEDLY,
    SPARK_G_APP_COUNT,
    /* master.* */
    SPARK_G_MASTER_WORKERS = SPARK_G_APP_COUNT,
    SPARK_G_MASTER_ALIVE_WORKERS,
    SPARK_G_MASTER_APPS,
    SPARK_G_MASTER_WAITING_APPS,
    SPARK_G_MASTER_END,
    /* worker.* */
    SPARK_G_WORKER_EXECUTORS = SPARK_G_MASTER_END,
    SPARK_G_WORKER_CORES_USED,
    SPARK_G_WORKER_CORES_FREE,
    SPARK_G_WORKER_MEM_USED_MB,
    SPARK_G_WORKER_MEM_FREE_MB,
    SPARK_G_WORKER_END
} spark_gauge;

/* The Spark name of a known gauge ("numberTargetExecutors", "aliveWorkers"...). */
const char *spark_gauge_name(int gauge);

/* Why a path was not accepted (beyond "not a metric we track"). */
enum {
    SPARK_PATH_OK = 0,        /* relevant; out is filled */
    SPARK_PATH_SKIP = 1,      /* not an ExecutorAllocationManager/master/worker metric */
    SPARK_PATH_E_CLUSTER = -1,/* shaped right but no configured prefix matches */
    SPARK_PATH_E_SHAPE = -2   /* e.g. empty namespace or empty gauge name */
};

typedef struct spark_metric {
    spark_kind kind;
    int cluster;              /* index given to spark_prefixes_add */
    const char *app;          /* namespace (app id or spark.metrics.namespace); APP only */
    size_t app_len;
    const char *name;         /* gauge name as sent, without ".count" */
    size_t name_len;
    int gauge;                /* spark_gauge */
    int is_counter;           /* had the ".count" suffix */
} spark_metric;

/* The configured clusters' metrics prefixes, looked up by hash. */
typedef struct spark_prefixes spark_prefixes;

/* Bounds on one prefix: they also bound the work spark_path_decode does. */
#define SPARK_PREFIX_MAX_LEN   255
#define SPARK_PREFIX_MAX_PARTS 16   /* dot-separated components */

/* Returns NULL on allocation failure. Owned by the caller. */
spark_prefixes *spark_prefixes_create(size_t expected);
void spark_prefixes_destroy(spark_prefixes *p);
/* prefix is copied. "" is allowed (a cluster with no GraphiteSink prefix).
 * Returns 0, or -EEXIST if the prefix is already registered, -ENOMEM, or
 * -EINVAL for cluster < 0 or a prefix that is not non-empty printable
 * components joined by single dots within the bounds above. */
int spark_prefixes_add(spark_prefixes *p, const char *prefix, int cluster);

/* Decodes path (not NUL-terminated). Returns SPARK_PATH_OK, SPARK_PATH_SKIP
 * or a negative SPARK_PATH_E_*. Pointers in out point into path. On SKIP only
 * out->kind (NONE) is set; on E_CLUSTER / E_SHAPE kind, name, gauge and
 * is_counter are set and cluster is -1. An app path's cluster is the longest
 * registered prefix ending at a dot that leaves a namespace, else "" if
 * registered; a master/worker path needs its whole prefix registered. */
int spark_path_decode(const spark_prefixes *p, const char *path, size_t len,
                      spark_metric *out);

/* Decodes a Dropwizard registry name as Spark names it inside the driver
 * (what JMX and Jolokia show: "<namespace>.driver.ExecutorAllocationManager.
 * executors.<gauge>", no GraphiteSink prefix) as a path of cluster: the same
 * grammar, as if cluster had registered the prefix "". A counter is named
 * with the ".count" its carbon line carries. Returns as spark_path_decode. */
int spark_registry_decode(const char *name, size_t len, int cluster, spark_metric *out);

#endif
