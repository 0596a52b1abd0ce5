/* store.h: recent Spark gauges per cluster, app and worker source, in
 * fixed-size ring buffers with last-seen times. Bounded: caps on apps,
 * series and worker sources; data over a cap is rejected and counted.
 * Single-threaded (the reactor's loop); no I/O. */
#ifndef SS_STORE_H
#define SS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "carbon/spark_path.h"

typedef struct ss_store ss_store;

typedef struct store_limits {
    int max_apps_per_cluster;     /* 0 = default 64 */
    int max_apps;                 /* across all clusters; 0 = default 100000 */
    int max_series_per_app;       /* known + unknown names; 0 = default 24 */
    int max_workers_per_cluster;  /* worker gauge sources; 0 = default 1024 */
    int ring_size;                /* samples per history series; 0 = default 16 */
    size_t max_bytes;             /* memory the store may hold (estimated as malloc
                                   * uses it); 0 = no limit. Past it, whatever would
                                   * grow it is refused (STORE_E_CAP_BYTES). */
} store_limits;

/* Outcome of store_put. Negative values are rejections, counted in stats. */
enum {
    STORE_UNCHANGED = 0,          /* stored; latest value is the same as before */
    STORE_CHANGED = 1,            /* stored; latest value changed or series is new */
    STORE_E_CLUSTER = -1,         /* cluster index out of range */
    STORE_E_CAP_APPS = -2,        /* app cap (per cluster or global) reached */
    STORE_E_CAP_SERIES = -3,      /* series cap per app reached */
    STORE_E_CAP_WORKERS = -4,     /* worker source cap reached */
    STORE_E_OLD = -5,             /* timestamp older than the series' latest: dropped */
    STORE_E_NOMEM = -6,
    STORE_E_INVAL = -7,           /* bad kind, missing or over-long name/id */
    STORE_E_CAP_BYTES = -8,       /* max_bytes reached */
    STORE_RESYNCED = 2            /* internal: a run of old samples restarted a series */
};

/* Longest app id, worker source or unknown gauge name kept (bytes). */
#define STORE_MAX_ID 255
/* Upper bounds applied to store_limits (values above are clamped). */
#define STORE_MAX_RING 4096
#define STORE_MAX_SERIES 250

/* One series: a ring of (timestamp, value), oldest overwritten first. */
typedef struct store_series store_series;
/* One driver (app), identified by its metrics namespace. */
typedef struct store_app store_app;
/* One worker gauge source (a worker's peer address). */
typedef struct store_worker store_worker;

/* Creates a store for nclusters configured clusters (indexes 0..n-1).
 * lim may be NULL (all defaults); it is copied. Returns NULL on allocation
 * failure. Caller destroys; store_destroy frees everything, NULL is a no-op. */
ss_store *store_create(const store_limits *lim, size_t nclusters);
void store_destroy(ss_store *s);

/* Stores one decoded sample. m->cluster selects the cluster; for
 * SPARK_KIND_APP m->app names the app (copied); for SPARK_KIND_WORKER
 * source names the sender (its IP; copied; may be NULL for "unknown").
 * Unknown gauge names are kept under their name while under the series cap.
 * now_ms is the arrival time (last-seen). A change marks the cluster dirty.
 * Only an accepted sample refreshes last-seen (the cluster's and its app's
 * or worker's): a rejected one refreshes nothing. A sample older than its
 * series' newest is rejected (STORE_E_OLD), unless it is the third such in
 * a row: then the series starts over from it (a sender's clock stepped
 * back; counted as resynced).
 * An equal timestamp overwrites the newest sample (Spark resends snapshots).
 * Nothing is allocated unless an app, worker or series appears.
 * s and m must not be NULL; m's strings are only read during the call. */
/* A sender's own memory of the app or worker it wrote last: senders whose
 * lines interleave (several connections read in turn, UDP) each keep
 * theirs, where the store's one-entry cache would miss on every switch.
 * Zero-initialise; valid across puts until the store removes an entry. */
typedef struct store_hint {
    const void *e;
    uint64_t gen;
} store_hint;

int store_put(ss_store *s, const spark_metric *m, const char *source,
              int64_t ts_ms, double value, int64_t now_ms);

/* Removes apps of cluster c not seen for expiry_ms (and worker sources likewise).
 * Removal marks the cluster dirty. Returns the number removed. */
size_t store_expire(ss_store *s, int cluster, int64_t now_ms, int64_t expiry_ms);

/* The monotonic clock (microseconds) recorded for clusters that become
 * dirty from now on; callers set it once per read batch. */
void store_set_clock(ss_store *s, int64_t now_us);

/* One dirty cluster: which, and since when (store_set_clock's time when it
 * first became dirty: the reaction-time clock of the change). */
typedef struct store_dirty {
    int cluster;
    int64_t since_us;
} store_dirty;

/* Dirty clusters (changed since last taken), each once, in the order they
 * became dirty. Writes up to max entries into out and clears them. */
size_t store_take_dirty(ss_store *s, store_dirty *out, size_t max);
/* Clusters marked dirty and not yet taken. */
size_t store_dirty_pending(const ss_store *s);
/* Marks a cluster dirty by hand (e.g. a timer). */
void store_mark_dirty(ss_store *s, int cluster);

/* ---- reading (pointers valid until the next store_put/store_expire) ----
 * Pointers are owned by the store. The order of store_app_at and
 * store_worker_at is not stable: a removal moves the last entry into the
 * removed one's place (indexes 0..count-1 stay dense). */
size_t store_cluster_count(const ss_store *s);
int64_t store_cluster_last_seen_ms(const ss_store *s, int cluster); /* 0 = never */

size_t store_app_count(const ss_store *s, int cluster);
const store_app *store_app_at(const ss_store *s, int cluster, size_t i);
const store_app *store_app_find(const ss_store *s, int cluster, const char *id, size_t len);
const char *store_app_id(const store_app *a);              /* NUL-terminated */
int64_t store_app_first_seen_ms(const store_app *a);
int64_t store_app_last_seen_ms(const store_app *a);

/* Master gauges of a cluster are one pseudo-source; workers are many. */
size_t store_worker_count(const ss_store *s, int cluster);
const store_worker *store_worker_at(const ss_store *s, int cluster, size_t i);
const char *store_worker_source(const store_worker *w);
int64_t store_worker_last_seen_ms(const store_worker *w);

/* store_put with the sender's hint (may be NULL). */
int store_put_hinted(ss_store *s, const spark_metric *m, const char *source, int64_t ts_ms,
                     double value, int64_t now_ms, store_hint *hint);

/* The worker sources of a cluster at a glance (what the decider reads on
 * every evaluation, from a packed array): fresh ones (last-seen within
 * stale_ms of now_ms) with a coresUsed sample, those above 0, and the
 * oldest last-seen of any (INT64_MAX with none). */
typedef struct store_workers_sum {
    int known;
    int busy;
    int64_t oldest_seen_ms;
} store_workers_sum;
void store_workers_summary(const ss_store *s, int cluster, int64_t now_ms, int64_t stale_ms,
                           store_workers_sum *out);
/* Is store_worker_at(i) fresh with a newest coresUsed of 0 (removable)? */
int store_worker_idle(const ss_store *s, int cluster, size_t i, int64_t now_ms, int64_t stale_ms);

/* Latest sample of a known gauge. Returns 0, or -ENOENT if never seen. */
int store_app_latest(const store_app *a, int gauge, double *value, int64_t *ts_ms);
int store_master_latest(const ss_store *s, int cluster, int gauge, double *value, int64_t *ts_ms);
int store_worker_latest(const store_worker *w, int gauge, double *value, int64_t *ts_ms);

/* All series of an app / worker / a cluster's master, known and unknown. */
size_t store_app_series_count(const store_app *a);
const store_series *store_app_series_at(const store_app *a, size_t i);
size_t store_master_series_count(const ss_store *s, int cluster);
const store_series *store_master_series_at(const ss_store *s, int cluster, size_t i);
size_t store_worker_series_count(const store_worker *w);
const store_series *store_worker_series_at(const store_worker *w, size_t i);

const char *store_series_name(const store_series *se);   /* Spark's name */
int store_series_gauge(const store_series *se);           /* spark_gauge or SPARK_G_UNKNOWN */
size_t store_series_len(const store_series *se);          /* samples held */
/* i = 0 is the newest sample. Returns 0 or -ENOENT. */
int store_series_sample(const store_series *se, size_t i, int64_t *ts_ms, double *value);

typedef struct store_stats {
    uint64_t apps;                /* tracked now */
    uint64_t series;
    uint64_t workers;
    uint64_t rejected_cap_apps;
    uint64_t rejected_cap_series;
    uint64_t rejected_cap_workers;
    uint64_t rejected_old;
    uint64_t expired_apps;
    uint64_t bytes;               /* memory held by the store (incl. malloc overhead, estimated) */
    uint64_t rejected_cluster;    /* STORE_E_CLUSTER */
    uint64_t rejected_invalid;    /* STORE_E_INVAL */
    uint64_t rejected_nomem;      /* STORE_E_NOMEM */
    uint64_t expired_workers;
    uint64_t resynced;            /* series restarted after a run of old samples */
    uint64_t rejected_cap_bytes;  /* STORE_E_CAP_BYTES */
    uint64_t bytes_freed;         /* freed since creation: lets the caller trim the heap */
} store_stats;
void store_get_stats(const ss_store *s, store_stats *out);

#endif
