/* master_json.h: decodes the Spark standalone master's GET /json/ answer
 * (Spark 3.x deploy/JsonProtocol.writeMasterState) into plain structs. Pure: no I/O. */
#ifndef SS_SPARK_MASTER_JSON_H
#define SS_SPARK_MASTER_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Hard bounds: larger inputs are refused, longer strings skip their item. */
#define SS_MASTER_MAX_INPUT   (64u << 20)   /* bytes of JSON: 100k workers pretty-printed fit */
#define SS_MASTER_MAX_WORKERS 100000
#define SS_MASTER_MAX_APPS    100000
#define SS_MASTER_MAX_ID      255           /* bytes of an id, host, state or URL */
#define SS_MASTER_MAX_NAME    1024          /* bytes of an app name */
#define SS_MASTER_MAX_RESOURCES 16          /* custom resources (GPUs...) kept per app */

/* RecoveryState of the master ("status"). */
typedef enum ss_master_status {
    SS_MASTER_STATUS_UNKNOWN = 0,   /* a value this decoder does not know */
    SS_MASTER_ALIVE,
    SS_MASTER_STANDBY,
    SS_MASTER_RECOVERING,
    SS_MASTER_COMPLETING_RECOVERY
} ss_master_status;

/* WorkerState. A restarted master shows the workers it recovered as UNKNOWN
 * until they answer; values this decoder does not know are UNKNOWN too. */
typedef enum ss_worker_state {
    SS_WORKER_UNKNOWN = 0,
    SS_WORKER_ALIVE,
    SS_WORKER_DEAD,
    SS_WORKER_DECOMMISSIONED
} ss_worker_state;

/* ApplicationState. */
typedef enum ss_app_state {
    SS_APP_UNKNOWN = 0,
    SS_APP_WAITING,
    SS_APP_RUNNING,
    SS_APP_FINISHED,
    SS_APP_FAILED,
    SS_APP_KILLED
} ss_app_state;

typedef struct ss_spark_worker {
    char *id;                 /* worker-<yyyyMMddHHmmss>-<host>-<port> */
    char *host;               /* the address the worker registered with (pod IP) */
    int port;                 /* its RPC port */
    char *webuiaddress;       /* "" when absent */
    int cores, coresused, coresfree;   /* coresfree = cores - coresused when absent */
    int64_t memory_mb, memoryused_mb;
    ss_worker_state state;
    int64_t lastheartbeat_ms; /* epoch ms; -1 when absent */
} ss_spark_worker;

typedef struct ss_spark_resource {
    char *name;               /* e.g. "gpu" */
    int64_t amount;
} ss_spark_resource;

typedef struct ss_spark_app {
    char *id;                 /* app-<yyyyMMddHHmmss>-<nnnn> */
    char *name;               /* "" when absent */
    int cores;                /* cores granted now (0 once finished) */
    int64_t memoryperexecutor_mb;   /* "memoryperexecutor", or Spark 2's "memoryperslave" */
    int64_t starttime_ms;
    int64_t duration_ms;      /* -1 when absent */
    ss_app_state state;
    ss_spark_resource *resources;   /* "resourcesperexecutor" ({name, amount}), may be NULL */
    size_t nresources;
} ss_spark_app;

typedef struct ss_master_state {
    ss_master_status status;
    char *url;                /* spark://host:port */
    int aliveworkers;
    int cores, coresused;     /* of ALIVE workers only, as the master sums them */
    ss_spark_worker *workers;
    size_t nworkers;
    ss_spark_app *activeapps;
    size_t nactiveapps;
    size_t ncompletedapps;    /* only counted */
    size_t workers_skipped;   /* items dropped: over-long or empty id/host */
    size_t apps_skipped;
} ss_master_state;

/* Decodes len bytes of json (no NUL needed). On success returns 0 and sets
 * *out to a state the caller owns (free with ss_master_state_free). On error
 * *out is NULL and a negative code is returned, with a message (naming the
 * field, e.g. "workers[1].coresused: missing") in err when err is not NULL:
 *   -EINVAL  bad arguments
 *   -E2BIG   input over SS_MASTER_MAX_INPUT, or too many workers / apps
 *   -EBADMSG not JSON: syntax error, truncation, invalid UTF-8, NUL bytes
 *   -EPROTO  JSON but not a master state: a required field missing, of the
 *            wrong type or out of range
 *   -ENOMEM
 * Items (a worker or an app) whose id or host is empty or longer than
 * SS_MASTER_MAX_ID are skipped and counted, not fatal. */
int ss_master_parse(const char *json, size_t len, ss_master_state **out, char *err, size_t errlen);

/* Frees everything ss_master_parse returned; NULL is fine. */
void ss_master_state_free(ss_master_state *m);

/* Workers that run something: ALIVE with coresused > 0. */
size_t ss_master_busy_workers(const ss_master_state *m);

/* The worker registered from host (ASCII case-insensitive, as the master's
 * decommission matches hosts) and, if port > 0, that port: the ALIVE one when
 * there is one, else the one with the latest heartbeat (a host can appear
 * twice: a DEAD entry and its re-registration). NULL if none. The pointer
 * points into m. */
const ss_spark_worker *ss_master_find_worker(const ss_master_state *m, const char *host, int port);

const char *ss_master_status_name(ss_master_status s);
const char *ss_worker_state_name(ss_worker_state s);
const char *ss_app_state_name(ss_app_state s);

#endif
