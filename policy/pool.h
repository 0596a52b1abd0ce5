/* pool.h: sharing one worker budget between the clusters of a capacity pool:
 * strict FIFO by app start, gang admission (an app's minimum whole or not at all). */
#ifndef SS_POLICY_POOL_H
#define SS_POLICY_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

typedef enum policy_app_grant {
    POLICY_APP_GRANTED = 0,   /* whole demand covered */
    POLICY_APP_PARTIAL,       /* gang admitted, part of the rest did not fit */
    POLICY_APP_WAIT_GANG,     /* its gang does not fit in the pool's free workers */
    POLICY_APP_WAIT_FIFO,     /* queued behind an older waiting app (strict FIFO) */
    POLICY_APP_WAIT_CLUSTER   /* its gang exceeds its own cluster's desired size */
} policy_app_grant;

/* One app of the pool. The caller fills the inputs; the grant fills the rest. */
typedef struct policy_pool_app {
    const char *id;           /* borrowed; may be NULL */
    int cluster;              /* index into the clusters array */
    int64_t start_ms;         /* FIFO key; ties broken by id, then index */
    int demand_executors;     /* as policy_app_demand; < 0 = 0 */
    int min_executors;        /* gang minimum (conf app_min_executors); capped at demand */
    /* out */
    policy_app_grant state;
    int granted_executors;    /* executor slots this app is counted on */
    int gang_workers;         /* new workers its gang needed (0 = fit in its cluster) */
    int free_workers;         /* pool workers free when its gang was tried */
    int cluster_room;         /* workers its cluster could still add then */
    int blocked_by;           /* WAIT_FIFO: index in apps[] of the app it queues behind */
} policy_pool_app;

/* Internal bookkeeping of one grant; callers leave it alone. */
typedef struct policy_pool_scratch {
    int64_t slots;            /* executor slots of the workers granted so far */
    int64_t used;             /* slots counted for apps */
    int cap;                  /* max(desired, floor) */
    int floor;                /* max(busy, min_workers): never taken away */
    int visited;
    int queued;               /* apps held back for pool room: cluster must not grow */
} policy_pool_scratch;

typedef struct policy_pool_cluster {
    const char *name;         /* borrowed; may be NULL */
    int desired;              /* policy_result.desired; < 0 = no decision */
    int busy;                 /* A; < 0 = unknown = 0 */
    int min_workers;
    int idle_workers;         /* I, granted before other spare capacity */
    int per_worker;           /* E >= 1 */
    /* out */
    int granted;              /* workers allowed; -1 when desired < 0 */
    int waiting_apps;         /* apps of this cluster in a WAIT_* state */
    policy_pool_scratch priv;
} policy_pool_cluster;

typedef struct policy_pool {
    const char *name;         /* borrowed; may be NULL */
    int max_workers;          /* the budget */
    /* out */
    int wanted_workers;       /* sum of max(desired, floor) */
    int granted_workers;      /* sum of grants (floors for no-decision clusters) */
    int free_workers;         /* budget left unused */
    int over_budget;          /* floors alone (busy, min) exceed the budget */
    int waiting_apps;
} policy_pool;

/* Grants workers to the clusters of one pool. When the wishes fit, every
 * cluster gets its desired count. Otherwise, in this order:
 *  1. every cluster keeps its floor max(busy, min_workers) (busy workers are
 *     never taken away, even over budget: over_budget is set);
 *  2. gangs, FIFO by app start across the pool: an app's min_executors are
 *     placed on free slots of its cluster, else on new workers granted
 *     whole or not at all. Strict FIFO (the scheduler extender's "fifo"):
 *     once an app waits for lack of pool room, every younger app that would
 *     need new workers waits behind it, even if it would fit (no backfill);
 *     an app whose gang exceeds its own cluster's desired size waits alone;
 *  3. the rest of each admitted app's demand, FIFO, as far as the budget
 *     goes, for apps older than the first waiting one (younger apps only
 *     use free slots of their cluster);
 *  4. idle buffers, then any remaining desire, by cluster in order of their
 *     oldest app, to clusters with no app held back by steps 2-3 (a spare
 *     worker there would start the held app partially, defeating the gang
 *     and the queue).
 * Executor slots are counted per cluster (E per worker), so apps of one
 * cluster share workers. order is caller scratch of napps entries (left in
 * FIFO order). All arrays are caller-owned; no allocation.
 * Returns 0, or -EINVAL (NULL, cluster index out of range, per_worker < 1). */
int policy_pool_grant(policy_pool *pool, policy_pool_cluster *clusters, size_t nclusters,
                      policy_pool_app *apps, size_t napps, uint32_t *order);

/* One line about app i after a grant, e.g.
 * "app-...-0007 waits: gang of 3 workers does not fit in 2 free (pool main, 20 max)".
 * Returns the length snprintf would have written, or -EINVAL. */
int policy_pool_app_reason(const policy_pool *pool, const policy_pool_cluster *clusters,
                           size_t nclusters, const policy_pool_app *apps, size_t napps,
                           size_t i, char *buf, size_t len);

/* Fills a pool cluster from one evaluation (in, res borrowed). */
void policy_pool_cluster_from(const policy_input *in, const policy_result *res,
                              const char *name, policy_pool_cluster *out);

/* Appends the active apps of in as pool apps of cluster index `cluster`
 * (demand and expiry as policy_evaluate sees them, gang = conf
 * app_min_executors). Writes at most cap; returns how many it wrote. */
size_t policy_pool_collect_apps(const policy_input *in, int cluster, policy_pool_app *out,
                                size_t cap);

/* ---- the whole pass: one pool, its clusters' evaluations in, grants out ---- */

/* One cluster of a pool pass. in and res are its newest evaluation
 * (borrowed; in->now_ms is the time of the pass); note is caller storage
 * of note_len bytes for the one line that says why the cluster got less
 * than it wanted ("" when it got all of it). */
typedef struct policy_pool_member {
    const char *name;
    const policy_input *in;
    const policy_result *res;
    char *note;
    size_t note_len;
    /* out */
    int granted;              /* workers allowed; -1 = no decision */
} policy_pool_member;

/* Caller scratch for a pass: clusters has one entry per member; apps and
 * order hold every active app of the pool's members (app_cap entries; apps
 * past the cap are left out of the grant and counted in *truncated). */
typedef struct policy_pool_work {
    policy_pool_cluster *clusters;
    policy_pool_app *apps;
    uint32_t *order;
    size_t app_cap;
} policy_pool_work;

/* Grants the members of one pool (name and budget max_workers): collects
 * their apps, runs policy_pool_grant, writes each member's grant and note.
 * pool_out (may be NULL) receives the pool-level figures. Pure: no I/O, no
 * allocation. Returns 0, or -EINVAL (then every member keeps its own
 * desire: granted = res->desired). */
int policy_pool_pass(const char *name, int max_workers, policy_pool_member *members,
                     size_t nmembers, policy_pool_work *work, policy_pool *pool_out,
                     size_t *truncated);

#endif
