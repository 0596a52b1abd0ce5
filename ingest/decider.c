/* decider.c: turns the store into policy inputs, runs the policy for dirty
 * clusters (after every loop turn) and all clusters (on a timer), grants
 * pools, and hands changed decisions, or unchanged ones every heartbeat,
 * to the bus. */
#include "ingest/decider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/spark_path.h"
#include "ingest/decision_log.h"
#include "ingest/master_view.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "policy/pool.h"

#define POOL_NOTE_MAX 256

/* A cluster's policy inputs, rebuilt from the store only when the cluster
 * changed (a changed sample, a new or expired app all mark it dirty).
 * Between changes only last-seen times move, and those are read through the
 * cached app handles, which stay valid until an app expires (dirty again).
 * This keeps the timer pass over 10,000 clusters off the store's rings. */
typedef struct input_cache {
    policy_app *apps;
    const store_app **refs;
    size_t napps, cap;
    int current;                  /* master aliveWorkers gauge, -1 unknown */
    int valid;
    int64_t oldest_seen_ms;       /* oldest app/worker last-seen at the last evaluation */
    int64_t ended_fetch_ms;       /* master answer the apps' ended flags come from */
} input_cache;

/* Per-cluster decision state kept between evaluations. */
typedef struct cluster_rt {
    int index;
    policy_state pstate;
    policy_result result;         /* the newest evaluation */
    policy_input in;              /* its inputs (apps borrowed from cache) */
    input_cache cache;
    int evaluated;                /* result and in are valid */
    int pool;                     /* index into pools, -1 = none */
    int granted;                  /* after pool grants; -1 = no pool */
    int pool_dirty;               /* evaluated since its pool last granted */
    char *pool_note;              /* POOL_NOTE_MAX bytes, pool members only */
    int64_t dirty_since_us;       /* read time of the first unpublished change, 0 = none */
    int in_pass;                  /* in this pass's list of clusters */
    int queued;                   /* in the publish queue */
    void *sink_cluster;           /* the sink's handle */
    /* The newest decision handed to the bus. */
    int published;
    int pub_desired;
    int64_t pub_at_ms;
    uint64_t pub_sequence;
    ss_delivery pub_delivery;
    char *pub_reason;             /* sized to its text; NULL = none yet */
    int64_t pub_trigger_us;       /* read time of the data behind it, 0 = timer */
} cluster_rt;

/* One capacity pool: its members and the pass's scratch. */
typedef struct pool_rt {
    const ss_pool_conf *conf;
    cluster_rt **members;
    cluster_rt **live;            /* scratch: the members evaluated so far */
    policy_pool_member *pm;
    size_t nmembers;
    policy_pool_work work;
} pool_rt;

struct ss_decider {
    const ss_config *cfg;
    ss_store *store;
    ss_decision_sink out;
    cluster_rt *rt;               /* per cluster, config order */
    size_t n;
    int *by_name;                 /* cluster indexes sorted by name */
    pool_rt *pools;
    size_t npools;
    store_dirty *dirty;           /* scratch for store_take_dirty */
    int *order;                   /* scratch: the clusters of one pass */
    int *queue;                   /* publish queue: a ring of n cluster indexes */
    size_t qhead, qlen;
    ss_app_demand *demand;        /* scratch: one decision's apps */
    size_t demand_cap;
    ss_worker_ref *idle;          /* scratch: removable workers of one decision */
    size_t idle_cap;
    size_t slices;                /* the timer pass visits n / slices clusters a tick */
    size_t cursor;                /* first cluster of the next slice */
    int64_t rotation_acc_us;      /* slices so far of the current rotation */
    int64_t turn_used_us;         /* evaluating and publishing this loop turn */
    int turn_metered;             /* ss_decider_turn_begin is called: the budget is per turn */
    int64_t turn_budget_us;       /* SS_DECIDER_TURN_US */
    ss_reaction_fn reaction_hook;
    void *reaction_ctx;
    const ss_master_view *masters; /* polled master answers, NULL = none */
    ss_decision_log *log;         /* changed decisions, for the status page */
    ss_decider_stats st;
};

/* ---- store reading ---- */

static int gauge_int(const store_app *a, int gauge)
{
    double v;
    int64_t ts;
    if (store_app_latest(a, gauge, &v, &ts) != 0 || v != v)
        return -1;
    return v < 0 ? 0 : v > 1e9 ? 1000000000 : (int)v;
}

/* The cluster's polled master answer while it is fresh (fetched within the
 * policy's stale_after_s), else NULL: then worker gauges stand in. */
static int64_t master_max_age_ms(const ss_decider *d, int c)
{
    return (int64_t)d->cfg->clusters[c].policy.stale_after_s * 1000;
}

static const ss_master_state *fresh_master(const ss_decider *d, int c, int64_t now_ms)
{
    return master_view_fresh(d->masters, c, now_ms, master_max_age_ms(d, c));
}

/* The master's aliveWorkers gauge, -1 when never seen. */
static int gauge_current_workers(const ss_store *s, int c)
{
    double v;
    int64_t ts;
    if (store_master_latest(s, c, SPARK_G_MASTER_ALIVE_WORKERS, &v, &ts) != 0)
        return -1;
    return v < 0 ? 0 : (int)v;
}

/* Workers the master says are alive: the size we would change. From the
 * polled /json/ while fresh (its ALIVE workers), else the aliveWorkers
 * gauge (cached with the cluster's inputs). Staleness of the gauge is the
 * policy's business (a stale feed holds the size). */
static int current_workers(const ss_decider *d, int c, int gauge_current, int64_t now_ms)
{
    int alive, busy;
    if (master_view_fresh_counts(d->masters, c, now_ms, master_max_age_ms(d, c), &alive, &busy) == 0)
        return alive;
    return gauge_current;
}

/* ALIVE workers with used cores in the fresh master answer, else worker
 * sources whose newest coresUsed is above zero, among fresh ones.
 * *oldest_ms is lowered to the oldest worker last-seen either way. */
static int busy_workers(const ss_decider *d, int c, int64_t now_ms, int64_t stale_ms,
                        int64_t *oldest_ms)
{
    store_workers_sum ws;
    store_workers_summary(d->store, c, now_ms, stale_ms, &ws);
    if (ws.oldest_seen_ms < *oldest_ms)
        *oldest_ms = ws.oldest_seen_ms;
    int alive, master_busy;
    if (master_view_fresh_counts(d->masters, c, now_ms, master_max_age_ms(d, c), &alive, &master_busy) == 0)
        return master_busy;
    return ws.known ? ws.busy : -1;
}

/* Workers an actuator may remove on scale-in. From the fresh master
 * answer: ALIVE workers with no used cores, with their real ids and ports.
 * Else fresh worker sources whose newest coresUsed is 0: Spark's worker
 * gauges carry no worker id, so the sender's address (the pod IP) names
 * it; the actuator maps host -> pod. */
static size_t idle_workers(const ss_decider *d, int c, int64_t now_ms)
{
    const ss_master_state *ms = fresh_master(d, c, now_ms);
    if (ms)
        return master_view_idle(ms, d->idle, d->idle_cap);
    int64_t stale_ms = (int64_t)d->cfg->clusters[c].policy.stale_after_s * 1000;
    size_t n = 0;
    for (size_t i = 0; i < store_worker_count(d->store, c) && n < d->idle_cap; i++) {
        if (!store_worker_idle(d->store, c, i, now_ms, stale_ms))
            continue;
        memset(&d->idle[n], 0, sizeof d->idle[n]);
        ss_strlcpy(d->idle[n].host, store_worker_source(store_worker_at(d->store, c, i)),
                   sizeof d->idle[n].host);
        n++;
    }
    return n;
}

/* Newest data of the cluster: any sample stored, or a master answer used
 * (a failed or STANDBY poll is no data). */
static int64_t last_data_ms(const ss_decider *d, int c)
{
    int64_t seen = store_cluster_last_seen_ms(d->store, c);
    int64_t polled = master_view_fetched_ms(d->masters, c);
    return polled > seen ? polled : seen;
}

/* What the policy needs of one app; id borrowed from the store. */
static policy_app policy_app_of(const store_app *a)
{
    return (policy_app){
        .id = store_app_id(a),
        .start_ms = policy_app_start_ms(store_app_id(a), store_app_first_seen_ms(a)),
        .target_executors = gauge_int(a, SPARK_G_TARGET_EXECUTORS),
        .max_needed_executors = gauge_int(a, SPARK_G_MAX_NEEDED_EXECUTORS),
        .executors_to_add = gauge_int(a, SPARK_G_EXECUTORS_TO_ADD),
        .last_seen_ms = store_app_last_seen_ms(a),
        .all_executors = gauge_int(a, SPARK_G_ALL_EXECUTORS),
    };
}

/* ---- apps that ended (issue 13) ----
 * A finished app leaves its master's activeapps at once. An app counts as
 * ended when the cluster's newest master answer (fresh or not: an app never
 * comes back) does not list it, provided that
 *  - its id is a standalone app id (app-...): the metrics namespace is the
 *    app id unless spark.metrics.namespace says otherwise, and a local-mode
 *    or renamed app is never in a master's list;
 *  - the answer was fetched more than one request timeout after the app's
 *    first sample (an app registers with the master before it reports, so
 *    a later answer that misses it is no race);
 *  - the decoder skipped no app of that answer.
 * Recomputed when the answer or the cached apps change. */
static void mark_ended_apps(const ss_decider *d, int c, input_cache *ic, int64_t now_ms,
                            int rebuilt)
{
    const ss_master_state *ms = master_view_fresh(d->masters, c, now_ms, INT64_MAX);
    int64_t fetched = ms ? master_view_fetched_ms(d->masters, c) : 0;
    if (!rebuilt && fetched == ic->ended_fetch_ms)
        return;
    ic->ended_fetch_ms = fetched;
    int64_t after_ms = fetched - d->cfg->clusters[c].poll.timeout_ms;
    for (size_t i = 0; i < ic->napps; i++) {
        policy_app *a = &ic->apps[i];
        a->ended = ms && ms->apps_skipped == 0 && a->id && strncmp(a->id, "app-", 4) == 0 &&
                   policy_app_start_ms(a->id, -1) >= 0 &&
                   after_ms > store_app_first_seen_ms(ic->refs[i]) &&
                   !master_view_lists_app(ms, a->id);
    }
}

static int cache_rebuild(const ss_store *s, int c, input_cache *ic)
{
    size_t n = store_app_count(s, c);
    if (n > ic->cap) {
        size_t cap = n + n / 2 + 4;
        policy_app *apps = realloc(ic->apps, cap * sizeof *apps);
        if (!apps)
            return -ENOMEM;
        ic->apps = apps;
        const store_app **refs = realloc(ic->refs, cap * sizeof *refs);
        if (!refs)
            return -ENOMEM;
        ic->refs = refs;
        ic->cap = cap;
    }
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const store_app *a = store_app_at(s, c, i);
        ic->refs[i] = a;
        if (store_app_last_seen_ms(a) < oldest)
            oldest = store_app_last_seen_ms(a);
        ic->apps[i] = policy_app_of(a);
    }
    ic->napps = n;
    ic->oldest_seen_ms = oldest;
    ic->current = gauge_current_workers(s, c);
    ic->valid = 1;
    return 0;
}

/* Fills rt->in from the cache (rebuilt first when the store changed the
 * cluster). Returns 0, or -ENOMEM when the cache could not be rebuilt. */
static int build_input(ss_decider *d, cluster_rt *rt, int64_t now_ms, int rebuild)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[rt->index];
    input_cache *ic = &rt->cache;
    int rebuilt = rebuild || !ic->valid;
    if (rebuilt && cache_rebuild(d->store, rt->index, ic) != 0) {
        ic->valid = 0;
        return -ENOMEM;
    }
    mark_ended_apps(d, rt->index, ic, now_ms, rebuilt);
    /* The policy reads last-seen only to expire apps. Cached times are never
     * newer than the real ones, so while even the oldest cached one is within
     * the expiry every app is active and a refresh (a cache miss per app)
     * would change nothing. */
    int64_t oldest = ic->oldest_seen_ms;
    int64_t expiry_ms = (int64_t)cc->policy.app_expiry_s * 1000;
    if (now_ms - oldest > expiry_ms) {
        oldest = now_ms;
        for (size_t i = 0; i < ic->napps; i++) {
            int64_t seen = store_app_last_seen_ms(ic->refs[i]);
            ic->apps[i].last_seen_ms = seen;
            if (seen < oldest)
                oldest = seen;
        }
    }
    rt->in = (policy_input){
        .conf = &cc->policy,
        .worker_cores = cc->worker_cores,
        .worker_memory_mb = cc->worker_memory_mb,
        .executor_cores = cc->executor_cores,
        .executor_memory_mb = cc->executor_memory_mb,
        .current_workers = current_workers(d, rt->index, ic->current, now_ms),
        .busy_workers = busy_workers(d, rt->index, now_ms,
                                     (int64_t)cc->policy.stale_after_s * 1000, &oldest),
        .apps = ic->apps,
        .napps = ic->napps,
        .last_data_ms = last_data_ms(d, rt->index),
        .now_ms = now_ms,
    };
    ic->oldest_seen_ms = oldest;
    return 0;
}

/* ---- evaluation ---- */

/* Same decision, same numbers: the reason text would read the same. */
static int same_result(const policy_result *a, const policy_result *b)
{
    return a->desired == b->desired && a->recommendation == b->recommendation &&
           a->window_max == b->window_max && a->needed == b->needed && a->busy == b->busy &&
           a->idle == b->idle && a->per_worker == b->per_worker &&
           a->demand_executors == b->demand_executors &&
           a->ahead_executors == b->ahead_executors && a->current == b->current &&
           a->active_apps == b->active_apps && a->expired_apps == b->expired_apps &&
           a->reason == b->reason && a->flags == b->flags && a->held == b->held &&
           a->stale == b->stale;
}

/* Runs the policy for one cluster; rebuild = the store changed it. */
static void evaluate(ss_decider *d, cluster_rt *rt, int64_t now_ms, int rebuild)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[rt->index];
    if (build_input(d, rt, now_ms, rebuild) != 0) {
        /* Keep the last result: a held decision is the safe one. */
        ss_warn("cluster %s: out of memory reading its inputs; decision unchanged", cc->name);
        return;
    }
    int rc;
    if (!rebuild && rt->evaluated) {
        /* Inputs unchanged since the last evaluation: most timer passes give
         * the same result, and formatting its reason is half the cost of a
         * pass. Evaluate without text; keep the old text if the result is
         * the same, else evaluate again, with text, from the saved state. */
        policy_state saved = rt->pstate;
        policy_result quick;
        rt->in.no_reason = 1;
        rc = policy_evaluate(&rt->in, &rt->pstate, &quick);
        rt->in.no_reason = 0;
        if (rc != 0 || !same_result(&quick, &rt->result)) {
            rt->pstate = saved;
            rc = policy_evaluate(&rt->in, &rt->pstate, &rt->result);
        }
    } else {
        rc = policy_evaluate(&rt->in, &rt->pstate, &rt->result);
    }
    d->st.evaluations++;
    rt->evaluated = 1;
    rt->pool_dirty = 1;
    if (rc != 0)
        ss_warn("cluster %s: policy: %s", cc->name, rt->result.reason_text);
}

/* Grants every pool with a member evaluated since its last grant, over the
 * members' cached inputs (no store reads). Members whose grant changed are
 * appended to order[*n] (when order is not NULL and they are not in it), so
 * room freed by one cluster reaches another in the same pass. */
static void grant_pools(ss_decider *d, int64_t now_ms, int *order, size_t *norder)
{
    for (size_t i = 0; i < d->npools; i++) {
        pool_rt *p = &d->pools[i];
        int dirty = 0;
        size_t k, n = 0;
        for (k = 0; k < p->nmembers; k++)
            dirty |= p->members[k]->pool_dirty;
        if (!dirty)
            continue;
        for (k = 0; k < p->nmembers; k++) {
            cluster_rt *rt = p->members[k];
            rt->pool_dirty = 0;
            if (!rt->evaluated) {
                rt->granted = -1;
                continue;
            }
            rt->in.now_ms = now_ms;   /* app expiry as of this pass */
            p->pm[n] = (policy_pool_member){
                .name = d->cfg->clusters[rt->index].name, .in = &rt->in, .res = &rt->result,
                .note = rt->pool_note, .note_len = POOL_NOTE_MAX,
            };
            p->live[n++] = rt;
        }
        size_t truncated = 0;
        policy_pool pool;
        if (policy_pool_pass(p->conf->name, p->conf->max_workers, p->pm, n, &p->work, &pool,
                             &truncated) != 0)
            ss_warn("pool %s: grant failed; members keep their own desires", p->conf->name);
        else if (pool.over_budget)
            ss_warn("pool %s: busy and minimum workers alone exceed its %d workers",
                    p->conf->name, p->conf->max_workers);
        d->st.pool_apps_truncated += truncated;
        for (k = 0; k < n; k++) {
            cluster_rt *rt = p->live[k];
            int changed = rt->granted != p->pm[k].granted;
            rt->granted = p->pm[k].granted;
            if (changed && order && !rt->in_pass) {
                rt->in_pass = 1;
                order[(*norder)++] = rt->index;
            }
        }
    }
}

/* *dst becomes a copy of src sized to it (unchanged if equal; on
 * allocation failure the old text stays, it only feeds the status page). */
static void set_text(char **dst, const char *src)
{
    if (*dst && strcmp(*dst, src) == 0)
        return;
    size_t n = strlen(src) + 1;
    char *t = realloc(*dst, n);
    if (!t)
        return;
    memcpy(t, src, n);
    *dst = t;
}

/* ---- publishing ---- */

static int desired_of(const cluster_rt *rt)
{
    return rt->pool >= 0 && rt->granted >= 0 ? rt->granted : rt->result.desired;
}

static void publish(ss_decider *d, cluster_rt *rt, int64_t now_ms, int heartbeat)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[rt->index];
    const policy_result *r = &rt->result;
    size_t napps = store_app_count(d->store, rt->index);
    if (napps > d->demand_cap)
        napps = d->demand_cap;
    for (size_t i = 0; i < napps; i++) {
        const store_app *a = store_app_at(d->store, rt->index, i);
        ss_app_demand *ad = &d->demand[i];
        ss_strlcpy(ad->app_id, store_app_id(a), sizeof ad->app_id);
        ad->target_executors = gauge_int(a, SPARK_G_TARGET_EXECUTORS);
        if (ad->target_executors < 0)
            ad->target_executors = 0;
        ad->max_needed_executors = gauge_int(a, SPARK_G_MAX_NEEDED_EXECUTORS);
        ad->all_executors = gauge_int(a, SPARK_G_ALL_EXECUTORS);
        ad->start_ms = policy_app_start_ms(store_app_id(a), store_app_first_seen_ms(a));
    }
    int desired = desired_of(rt);
    int pool_cut = rt->pool >= 0 && rt->granted >= 0 && rt->granted < r->desired;
    size_t nidle = desired < r->current ? idle_workers(d, rt->index, now_ms) : 0;
    ss_decision dec = {
        .decided_at_ms = now_ms,
        .current_workers = r->current,
        .busy_workers = r->busy,
        .desired_workers = desired,
        .recommended_workers = r->recommendation,
        .executors_per_worker = r->per_worker,
        .apps = d->demand,
        .napps = napps,
        .removable_workers = d->idle,
        .nremovable_workers = nidle,
        .reason_code = heartbeat ? SS_REASON_HEARTBEAT
                     : pool_cut ? SS_REASON_POOL_LIMIT
                     : (int)r->reason + 1,
        .dry_run = d->cfg->policy.dry_run,
        .trigger_us = heartbeat ? 0 : rt->dirty_since_us,
    };
    ss_strlcpy(dec.reason, r->reason_text, sizeof dec.reason);
    if (rt->pool_note && rt->pool_note[0]) {
        size_t n = strlen(dec.reason);
        snprintf(dec.reason + n, sizeof dec.reason - n, "; %s", rt->pool_note);
    }
    uint64_t seq = 0;
    int rc = d->out.publish(d->out.sink, rt->sink_cluster, &dec, &seq);
    if (rc != 0) {
        ss_warn("cluster %s: decision %d not published: %s", cc->name, desired, strerror(-rc));
        return;
    }
    d->st.published++;
    rt->published = 1;
    rt->pub_desired = desired;
    rt->pub_at_ms = now_ms;
    rt->pub_sequence = seq;
    rt->pub_delivery = SS_DELIVERY_PENDING;
    rt->pub_trigger_us = dec.trigger_us;
    set_text(&rt->pub_reason, dec.reason);
    if (!heartbeat)   /* the status page's history: changes, not heartbeats */
        decision_log_add(d->log, rt->index, &dec, seq, r->demand_executors);
    if (!heartbeat)
        ss_info("cluster %s: desired %d workers (#%llu): %s", cc->name, desired,
                (unsigned long long)seq, dec.reason);
}

/* Heartbeats are spread: each cluster's falls due a fixed part of the
 * period early (its phase), so clusters that decided together at start do
 * not all republish in the same tick forever after. */
static int64_t heartbeat_phase_ms(const cluster_rt *rt, int64_t heartbeat_ms)
{
    return (int64_t)(((uint32_t)rt->index * 2654435761u) % (uint64_t)(heartbeat_ms / 2 + 1));
}

/* 1: a changed decision is due, 2: a heartbeat is due, 0: nothing. */
static int due(const ss_decider *d, const cluster_rt *rt, int64_t now_ms)
{
    int desired = desired_of(rt);
    if (!rt->evaluated || desired < 0)
        return 0;   /* no decision: size unknown and feed stale */
    if (!rt->published || desired != rt->pub_desired)
        return 1;
    int64_t heartbeat_ms = (int64_t)d->cfg->kafka.heartbeat_s * 1000;
    return heartbeat_ms > 0 &&
           now_ms - rt->pub_at_ms >= heartbeat_ms - heartbeat_phase_ms(rt, heartbeat_ms) ? 2 : 0;
}

static void enqueue(ss_decider *d, cluster_rt *rt)
{
    if (rt->queued)
        return;   /* keeps its place in the queue */
    rt->queued = 1;
    d->queue[(d->qhead + d->qlen) % d->n] = rt->index;
    d->qlen++;
}

/* Queues the due decisions among clusters idx[0..n). Shrinking ones go
 * first, so clusters sharing a pool never hold more than its budget
 * between two records. A cluster with nothing due starts its next change's
 * clock afresh. */
static void enqueue_due(ss_decider *d, const int *idx, size_t n, int64_t now_ms)
{
    for (int grow = 0; grow < 2; grow++) {
        for (size_t i = 0; i < n; i++) {
            cluster_rt *rt = &d->rt[idx[i]];
            int kind = due(d, rt, now_ms);
            if (!kind) {
                if (!rt->queued)
                    rt->dirty_since_us = 0;
                continue;
            }
            int growing = !rt->published || desired_of(rt) > rt->pub_desired;
            if (growing == grow)
                enqueue(d, rt);
        }
    }
}

/* What is left of this loop turn's time budget (the whole of it for a
 * caller that does not meter turns); a call may overrun it by one batch. */
static int64_t turn_left_us(const ss_decider *d)
{
    return d->turn_budget_us - (d->turn_metered ? d->turn_used_us : 0);
}

void ss_decider_set_turn_budget_us(ss_decider *d, int64_t us)
{
    d->turn_budget_us = us;
}

void ss_decider_turn_begin(ss_decider *d)
{
    d->turn_metered = 1;
    d->turn_used_us = 0;
}

size_t ss_decider_drain(ss_decider *d)
{
    if (d->qlen == 0)
        return 0;
    int64_t now = ss_wall_ms();
    int64_t t0 = ss_mono_us(), left = turn_left_us(d);
    size_t budget = SS_DECIDER_PUBLISH_BUDGET;
    while (d->qlen > 0 && budget > 0) {
        cluster_rt *rt = &d->rt[d->queue[d->qhead]];
        d->qhead = (d->qhead + 1) % d->n;
        d->qlen--;
        rt->queued = 0;
        int kind = due(d, rt, now);   /* as of now: it may have changed since */
        if (kind) {
            publish(d, rt, now, kind == 2);
            budget--;
            /* a decision naming a thousand removable workers is costly */
            if (budget % 16 == 0 && ss_mono_us() - t0 >= left)
                budget = 0;
        }
        rt->dirty_since_us = 0;       /* the next change starts its own clock */
    }
    d->st.publish_us = ss_mono_us() - t0;
    d->turn_used_us += d->st.publish_us;
    ss_hist_add(&d->st.publishes, d->st.publish_us);
    if (d->st.publish_us > d->st.publish_max_us)
        d->st.publish_max_us = d->st.publish_us;
    return d->qlen;
}

size_t ss_decider_backlog(const ss_decider *d)
{
    return d->qlen + store_dirty_pending(d->store);
}

void ss_decider_evaluate_dirty(ss_decider *d)
{
    /* A flood can dirty thousands of clusters in one read: at most a budget
     * of them a turn (by count and by time), the rest on the next turns,
     * oldest first (the dirty queue is FIFO). */
    size_t n = store_take_dirty(d->store, d->dirty, SS_DECIDER_EVAL_BUDGET);
    if (n == 0)
        return;
    int64_t now = ss_wall_ms();
    int64_t t0 = ss_mono_us(), left = turn_left_us(d);
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        cluster_rt *rt = &d->rt[d->dirty[i].cluster];
        if (!rt->dirty_since_us)
            rt->dirty_since_us = d->dirty[i].since_us;   /* the reaction clock */
    }
    for (size_t i = 0; i < n; i++) {
        cluster_rt *rt = &d->rt[d->dirty[i].cluster];
        if (i % 32 == 31 && ss_mono_us() - t0 >= left) {
            /* out of time: the rest go back to the queue for the next turns */
            for (size_t k = i; k < n; k++)
                store_mark_dirty(d->store, d->dirty[k].cluster);
            break;
        }
        evaluate(d, rt, now, 1);
        rt->in_pass = 1;
        d->order[done++] = rt->index;
    }
    n = done;
    /* Grants before any publish: a decision never exceeds its pool's budget,
     * not even until the next timer pass. */
    grant_pools(d, now, d->order, &n);
    enqueue_due(d, d->order, n, now);
    for (size_t i = 0; i < n; i++)
        d->rt[d->order[i]].in_pass = 0;
    d->turn_used_us += ss_mono_us() - t0;
    ss_decider_drain(d);
}

size_t ss_decider_slices(const ss_decider *d)
{
    return d->slices;
}

void ss_decider_tick(ss_decider *d)
{
    /* New data first, as between loop turns. */
    ss_decider_evaluate_dirty(d);
    int64_t now = ss_wall_ms();
    int64_t t0 = ss_mono_us();
    size_t per = (d->n + d->slices - 1) / d->slices;
    size_t first = d->cursor, end = first + per < d->n ? first + per : d->n;
    for (size_t c = first; c < end; c++) {
        cluster_rt *rt = &d->rt[c];
        const policy_conf *pc = &d->cfg->clusters[c].policy;
        int64_t expiry_ms = (int64_t)pc->app_expiry_s * 1000;
        /* Only walk the store where something may have gone silent. */
        if (pc->app_expiry_s > 0 &&
            (!rt->cache.valid || now - rt->cache.oldest_seen_ms > expiry_ms) &&
            store_expire(d->store, (int)c, now, expiry_ms) > 0)
            rt->cache.valid = 0;
    }
    /* What expired is dirty too (and evaluated again from the queue, a
     * harmless repeat): here its inputs are rebuilt with the slice. */
    size_t norder = 0;
    for (size_t c = first; c < end; c++) {
        evaluate(d, &d->rt[c], now, 0);
        d->order[norder++] = (int)c;
    }
    grant_pools(d, now, NULL, NULL);
    enqueue_due(d, d->order, norder, now);
    d->cursor = end < d->n ? end : 0;
    d->st.pass_us = ss_mono_us() - t0;
    ss_hist_add(&d->st.passes, d->st.pass_us);
    if (d->st.pass_us > d->st.pass_max_us)
        d->st.pass_max_us = d->st.pass_us;
    d->rotation_acc_us += d->st.pass_us;
    d->turn_used_us += d->st.pass_us;
    if (d->cursor == 0) {
        d->st.rotation_us = d->rotation_acc_us;
        d->rotation_acc_us = 0;
    }
    ss_decider_drain(d);
}

/* ---- delivery reports ---- */

void ss_decider_on_delivery(void *ctx, void *cluster_ctx, uint64_t sequence, int err,
                            int64_t latency_us)
{
    ss_decider *d = ctx;
    cluster_rt *rt = cluster_ctx;
    (void)latency_us;             /* the bus keeps the latency histograms */
    if (!rt || rt->pub_sequence != sequence)
        return;
    rt->pub_delivery = err == 0 ? SS_DELIVERY_ACKED
                     : err == -EAGAIN ? SS_DELIVERY_PENDING : SS_DELIVERY_FAILED;
    if (err == 0 && rt->pub_trigger_us > 0 && d->reaction_hook)
        d->reaction_hook(d->reaction_ctx, d->cfg->clusters[rt->index].name, sequence,
                         ss_mono_us() - rt->pub_trigger_us);
}

/* ---- life cycle and views ---- */

static const ss_config *sort_cfg;   /* qsort has no context argument in C11 */

static int cmp_cluster_name(const void *a, const void *b)
{
    return strcmp(sort_cfg->clusters[*(const int *)a].name,
                  sort_cfg->clusters[*(const int *)b].name);
}

int ss_decider_cluster_index(const ss_decider *d, const char *name)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = d->by_name[mid];
        int r = strcmp(name, d->cfg->clusters[c].name);
        if (r == 0)
            return c;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static int pools_create(ss_decider *d)
{
    const ss_config *cfg = d->cfg;
    if (cfg->npools == 0)
        return 0;
    d->pools = calloc(cfg->npools, sizeof *d->pools);
    if (!d->pools)
        return -ENOMEM;
    d->npools = cfg->npools;
    size_t per_cluster = cfg->store.max_apps_per_cluster > 0
                       ? (size_t)cfg->store.max_apps_per_cluster : 64;
    for (size_t i = 0; i < cfg->npools; i++) {
        pool_rt *p = &d->pools[i];
        p->conf = &cfg->pools[i];
        for (size_t c = 0; c < d->n; c++)
            if (strcmp(cfg->clusters[c].policy.pool, p->conf->name) == 0)
                p->nmembers++;
        size_t m = p->nmembers ? p->nmembers : 1;
        p->members = calloc(m, sizeof *p->members);
        p->live = calloc(m, sizeof *p->live);
        p->pm = calloc(m, sizeof *p->pm);
        p->work.clusters = calloc(m, sizeof *p->work.clusters);
        p->work.app_cap = m * per_cluster;
        p->work.apps = calloc(p->work.app_cap, sizeof *p->work.apps);
        p->work.order = calloc(p->work.app_cap, sizeof *p->work.order);
        if (!p->members || !p->live || !p->pm || !p->work.clusters || !p->work.apps || !p->work.order)
            return -ENOMEM;
        size_t k = 0;
        for (size_t c = 0; c < d->n; c++) {
            if (strcmp(cfg->clusters[c].policy.pool, p->conf->name) != 0)
                continue;
            cluster_rt *rt = &d->rt[c];
            rt->pool = (int)i;
            rt->pool_note = calloc(1, POOL_NOTE_MAX);
            if (!rt->pool_note)
                return -ENOMEM;
            p->members[k++] = rt;
        }
    }
    return 0;
}

static void *bus_add_cluster(void *sink, const char *name, void *cluster_ctx)
{
    return ss_bus_cluster_add(sink, name, cluster_ctx);
}

static int bus_publish(void *sink, void *cluster, const ss_decision *d, uint64_t *sequence)
{
    return ss_bus_publish(sink, cluster, d, sequence);
}

ss_decision_sink ss_decision_sink_bus(ss_bus *bus)
{
    ss_bus_stats bs;
    ss_bus_get_stats(bus, &bs);
    return (ss_decision_sink){ .add_cluster = bus_add_cluster, .publish = bus_publish,
                               .sink = bus, .epoch = bs.epoch };
}

ss_decider *ss_decider_create(const ss_config *cfg, ss_store *store,
                              const ss_decision_sink *out, char *err, size_t errlen)
{
    ss_decider *d = calloc(1, sizeof *d);
    if (!d)
        goto nomem;
    size_t n = cfg->nclusters, one = n ? n : 1;
    d->cfg = cfg;
    d->store = store;
    d->out = *out;
    d->n = n;
    d->turn_budget_us = SS_DECIDER_TURN_US;
    d->rt = calloc(one, sizeof *d->rt);
    d->by_name = calloc(one, sizeof *d->by_name);
    d->dirty = calloc(one, sizeof *d->dirty);
    d->order = calloc(one, sizeof *d->order);
    d->queue = calloc(one, sizeof *d->queue);
    d->demand_cap = cfg->store.max_apps_per_cluster > 0 ? (size_t)cfg->store.max_apps_per_cluster : 64;
    d->demand = calloc(d->demand_cap, sizeof *d->demand);
    /* The timer pass in slices of about SS_DECIDER_SLICE_CLUSTERS, the
     * timer running that many times per evaluate_interval_ms (at most every
     * 10 ms): each cluster is still visited once an interval, and no tick
     * holds the loop for the whole configuration. */
    int every = cfg->policy.evaluate_interval_ms > 0 ? cfg->policy.evaluate_interval_ms : 1000;
    size_t max_slices = every / 10 > 0 ? (size_t)every / 10 : 1;
    d->slices = (d->n + SS_DECIDER_SLICE_CLUSTERS - 1) / SS_DECIDER_SLICE_CLUSTERS;
    if (d->slices < 1)
        d->slices = 1;
    if (d->slices > max_slices)
        d->slices = max_slices;
    d->idle_cap = cfg->store.max_workers_per_cluster > 0
                ? (size_t)cfg->store.max_workers_per_cluster : 1024;
    d->idle = calloc(d->idle_cap, sizeof *d->idle);
    if (!d->rt || !d->by_name || !d->dirty || !d->order || !d->queue || !d->demand || !d->idle)
        goto nomem;
    if (!(d->log = decision_log_create(n)))
        goto nomem;
    int64_t now = ss_wall_ms();
    for (size_t c = 0; c < n; c++) {
        cluster_rt *rt = &d->rt[c];
        rt->index = (int)c;
        rt->pool = -1;
        rt->granted = -1;
        policy_state_init(&rt->pstate, now);
        rt->sink_cluster = out->add_cluster(out->sink, cfg->clusters[c].name, rt);
        if (!rt->sink_cluster)
            goto nomem;
        d->by_name[c] = (int)c;
    }
    sort_cfg = cfg;
    qsort(d->by_name, n, sizeof *d->by_name, cmp_cluster_name);
    sort_cfg = NULL;
    if (pools_create(d) != 0)
        goto nomem;
    return d;
nomem:
    ss_errf(err, errlen, "decider: out of memory for %zu clusters", cfg->nclusters);
    ss_decider_destroy(d);
    return NULL;
}

void ss_decider_destroy(ss_decider *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->npools; i++) {
        pool_rt *p = &d->pools[i];
        free(p->members);
        free(p->live);
        free(p->pm);
        free(p->work.clusters);
        free(p->work.apps);
        free(p->work.order);
    }
    free(d->pools);
    for (size_t c = 0; d->rt && c < d->n; c++) {
        free(d->rt[c].cache.apps);
        free(d->rt[c].cache.refs);
        free(d->rt[c].pool_note);
        free(d->rt[c].pub_reason);
    }
    free(d->rt);
    free(d->by_name);
    free(d->dirty);
    free(d->order);
    free(d->queue);
    free(d->demand);
    free(d->idle);
    decision_log_destroy(d->log);
    free(d);
}

void ss_decider_set_master_view(ss_decider *d, const ss_master_view *mv)
{
    d->masters = mv;
}

void ss_decider_set_reaction_hook(ss_decider *d, ss_reaction_fn fn, void *ctx)
{
    d->reaction_hook = fn;
    d->reaction_ctx = ctx;
}

void ss_decider_view(const ss_decider *d, int cluster, ss_cluster_view *out)
{
    const cluster_rt *rt = &d->rt[cluster];
    *out = (ss_cluster_view){
        .result = rt->evaluated ? &rt->result : NULL,
        .granted = rt->pool >= 0 ? rt->granted : -1,
        .pool_note = rt->pool_note ? rt->pool_note : "",
        .published = rt->published,
        .pub_desired = rt->pub_desired,
        .pub_at_ms = rt->pub_at_ms,
        .pub_sequence = rt->pub_sequence,
        .pub_epoch = d->out.epoch,
        .pub_delivery = rt->pub_delivery,
        .pub_reason = rt->pub_reason ? rt->pub_reason : "",
    };
}

void ss_decider_get_stats(const ss_decider *d, ss_decider_stats *out)
{
    *out = d->st;
}

const ss_decision_log *ss_decider_log(const ss_decider *d)
{
    return d->log;
}
