/* master_view.h: per cluster, the newest answer of its ALIVE Spark master
 * (GET /json/) and when it was fetched. The decider reads current, busy and
 * removable workers from it while it is fresh; status shows it. Single
 * threaded (the loop); no I/O. */
#ifndef SS_MASTER_VIEW_H
#define SS_MASTER_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/bus/record.h"
#include "lib/spark/master_json.h"

typedef struct ss_master_view ss_master_view;

/* For nclusters clusters (indexes 0..n-1). NULL when out of memory.
 * Caller destroys; destroy frees every state held, NULL is a no-op. */
ss_master_view *master_view_create(size_t nclusters);
void master_view_destroy(ss_master_view *v);

/* Replaces cluster c's state by st (taken over in every case; the old one
 * is freed), an ALIVE master's answer fetched at fetched_ms (wall clock)
 * from url (borrowed: must outlive v, e.g. the configuration's string).
 * Returns 1 when what the decider reads changed (ALIVE workers, busy
 * workers, the set of idle ones, the set of active apps) or the cluster
 * had no state, 0 if not, -EINVAL for a bad cluster (st is freed). */
int master_view_put(ss_master_view *v, int c, ss_master_state *st, const char *url,
                    int64_t fetched_ms);

/* Cluster c's state when fetched within max_age_ms before now_ms, else NULL.
 * The pointer is owned by v and valid until the next put for c. */
const ss_master_state *master_view_fresh(const ss_master_view *v, int c, int64_t now_ms,
                                         int64_t max_age_ms);

/* The ALIVE and busy worker counts of cluster c's fresh state (summed once
 * per answer): 0, or -ENOENT when there is none (as master_view_fresh). */
int master_view_fresh_counts(const ss_master_view *v, int c, int64_t now_ms, int64_t max_age_ms,
                             int *alive, int *busy);

/* When cluster c's state was fetched (wall ms), 0 = never. NULL v gives 0. */
int64_t master_view_fetched_ms(const ss_master_view *v, int c);

/* Non-zero when st's activeapps lists the app id (borrowed; NULL st or id
 * gives 0). A finished app leaves activeapps at once. */
int master_view_lists_app(const ss_master_state *st, const char *id);

/* Workers of st whose state is ALIVE, and those of them running something
 * (coresused > 0). */
int master_view_alive(const ss_master_state *st);
int master_view_busy(const ss_master_state *st);

/* The ALIVE workers of st that run nothing (coresused 0): what scale-in may
 * remove, with their real ids and ports, sorted by id. Writes up to cap
 * into out (caller's array) and returns how many; workers whose id or host
 * do not fit ss_worker_ref are left out (never named wrong). */
size_t master_view_idle(const ss_master_state *st, ss_worker_ref *out, size_t cap);

/* Cluster c as JSON for /v1/clusters (a new reference), or json_null()
 * when it never had an answer: url, status, fetched_at_ms, fresh (against
 * max_age_ms), alive/busy counts, workers and active apps. */
json_t *master_view_json(const ss_master_view *v, int c, int64_t now_ms, int64_t max_age_ms);

#endif
