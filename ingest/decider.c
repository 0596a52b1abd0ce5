/* decider.c: turns the store into policy inputs, runs the policy for dirty
 * clusters (after every loop turn) and all clusters (on a timer), and hands
 * changed decisions, or unchanged ones every heartbeat, to the bus. */
#include "ingest/daemon_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

/* Scratch shared by evaluations; sized for the largest cluster. */
typedef struct decider_scratch {
    policy_app *apps;
    ss_app_demand *demand;
    size_t cap;
    ss_worker_ref *idle;          /* removable workers of one decision */
    size_t idle_cap;
    int *by_name;                 /* cluster indexes sorted by name: delivery lookups */
    const ss_config *cfg;
    struct input_cache *cache;    /* per cluster */
} decider_scratch;

/* A cluster's policy inputs, rebuilt from the store only when the cluster
 * changed (a changed sample, a new or expired app all mark it dirty).
 * Between changes only last-seen times move, and those are read through the
 * cached app handles, which stay valid until an app expires (dirty again).
 * This keeps the timer pass over 10,000 clusters off the store's rings. */
typedef struct input_cache {
    policy_app *apps;
    const store_app **refs;
    size_t napps, cap;
    int current;                  /* master aliveWorkers, -1 unknown */
    int valid;
    int64_t oldest_seen_ms;       /* oldest app/worker last-seen at the last evaluation */
} input_cache;

static const ss_config *sort_cfg;   /* qsort has no context argument in C11 */

static int cmp_cluster_name(const void *a, const void *b)
{
    return strcmp(sort_cfg->clusters[*(const int *)a].name, sort_cfg->clusters[*(const int *)b].name);
}

/* Index of the cluster named name, or -1: a binary search, since Kafka
 * reports every delivery by name and there may be 10,000 clusters. */
static int cluster_by_name(const decider_scratch *s, const char *name)
{
    size_t lo = 0, hi = s->cfg->nclusters;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s->by_name[mid];
        int r = strcmp(name, s->cfg->clusters[c].name);
        if (r == 0)
            return c;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static decider_scratch *scratch_of(ss_daemon *d) { return (decider_scratch *)d->decider; }

int decider_init(ss_daemon *d)
{
    decider_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->cap = d->cfg->store.max_apps_per_cluster > 0 ? (size_t)d->cfg->store.max_apps_per_cluster : 64;
    s->apps = calloc(s->cap, sizeof *s->apps);
    s->demand = calloc(s->cap, sizeof *s->demand);
    s->by_name = calloc(d->cfg->nclusters ? d->cfg->nclusters : 1, sizeof *s->by_name);
    s->cache = calloc(d->cfg->nclusters ? d->cfg->nclusters : 1, sizeof *s->cache);
    s->idle_cap = d->cfg->store.max_workers_per_cluster > 0 ? (size_t)d->cfg->store.max_workers_per_cluster : 1024;
    s->idle = calloc(s->idle_cap, sizeof *s->idle);
    if (!s->apps || !s->demand || !s->by_name || !s->cache || !s->idle) {
        free(s->idle);
        free(s->apps);
        free(s->demand);
        free(s->by_name);
        free(s->cache);
        free(s);
        return -1;
    }
    s->cfg = d->cfg;
    for (size_t c = 0; c < d->cfg->nclusters; c++)
        s->by_name[c] = (int)c;
    sort_cfg = d->cfg;
    qsort(s->by_name, d->cfg->nclusters, sizeof *s->by_name, cmp_cluster_name);
    sort_cfg = NULL;
    d->decider = s;
    if (pools_init(d) != 0)
        return -1;
    int64_t now = ss_wall_ms();
    for (size_t c = 0; c < d->cfg->nclusters; c++) {
        policy_state_init(&d->rt[c].pstate, now);
        d->rt[c].granted = -1;
    }
    return 0;
}

void decider_free(ss_daemon *d)
{
    decider_scratch *s = scratch_of(d);
    if (!s)
        return;
    free(s->apps);
    free(s->demand);
    free(s->by_name);
    free(s->idle);
    for (size_t c = 0; c < d->cfg->nclusters; c++) {
        free(s->cache[c].apps);
        free(s->cache[c].refs);
    }
    free(s->cache);
    free(s);
    d->decider = NULL;
    pools_free(d);
}

static int gauge_int(const store_app *a, int gauge)
{
    double v;
    int64_t ts;
    if (store_app_latest(a, gauge, &v, &ts) != 0 || v != v)
        return -1;
    return v < 0 ? 0 : v > 1e9 ? 1000000000 : (int)v;
}

/* Workers the master says are alive: the size we would change. Staleness
 * is the policy's business (a stale feed holds the size). */
static int current_workers(const ss_daemon *d, int c)
{
    double v;
    int64_t ts;
    if (store_master_latest(d->store, c, SPARK_G_MASTER_ALIVE_WORKERS, &v, &ts) != 0)
        return -1;
    return v < 0 ? 0 : (int)v;
}

/* Worker sources whose newest coresUsed is above zero, among fresh ones.
 * *oldest_ms is lowered to the oldest worker last-seen. */
static int busy_workers(const ss_daemon *d, int c, int64_t now_ms, int64_t stale_ms,
                        int64_t *oldest_ms)
{
    size_t n = store_worker_count(d->store, c);
    int busy = 0, known = 0;
    for (size_t i = 0; i < n; i++) {
        const store_worker *w = store_worker_at(d->store, c, i);
        int64_t seen = store_worker_last_seen_ms(w);
        if (seen < *oldest_ms)
            *oldest_ms = seen;
        if (now_ms - seen > stale_ms)
            continue;
        double v;
        int64_t ts;
        if (store_worker_latest(w, SPARK_G_WORKER_CORES_USED, &v, &ts) != 0)
            continue;
        known++;
        if (v > 0)
            busy++;
    }
    return known ? busy : -1;
}

/* Workers an actuator may remove on scale-in: fresh worker sources whose
 * newest coresUsed is 0. Spark's worker gauges carry no worker id, so the
 * sender's address (the pod IP) names it; the actuator maps host -> pod. */
static size_t idle_workers(const ss_daemon *d, int c, int64_t now_ms, ss_worker_ref *out,
                           size_t cap)
{
    int64_t stale_ms = (int64_t)d->cfg->clusters[c].policy.stale_after_s * 1000;
    size_t n = 0;
    for (size_t i = 0; i < store_worker_count(d->store, c) && n < cap; i++) {
        const store_worker *w = store_worker_at(d->store, c, i);
        double v;
        int64_t ts;
        if (now_ms - store_worker_last_seen_ms(w) > stale_ms ||
            store_worker_latest(w, SPARK_G_WORKER_CORES_USED, &v, &ts) != 0 || v != 0)
            continue;
        memset(&out[n], 0, sizeof out[n]);
        ss_strlcpy(out[n].host, store_worker_source(w), sizeof out[n].host);
        n++;
    }
    return n;
}

static void publish(ss_daemon *d, int c, int64_t now_ms, int heartbeat)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[c];
    cluster_rt *rt = &d->rt[c];
    const policy_result *r = &rt->result;
    decider_scratch *s = scratch_of(d);
    size_t napps = store_app_count(d->store, c);
    if (napps > s->cap)
        napps = s->cap;
    for (size_t i = 0; i < napps; i++) {
        const store_app *a = store_app_at(d->store, c, i);
        ss_app_demand *ad = &s->demand[i];
        ss_strlcpy(ad->app_id, store_app_id(a), sizeof ad->app_id);
        ad->target_executors = gauge_int(a, SPARK_G_TARGET_EXECUTORS);
        if (ad->target_executors < 0)
            ad->target_executors = 0;
        ad->max_needed_executors = gauge_int(a, SPARK_G_MAX_NEEDED_EXECUTORS);
        ad->all_executors = gauge_int(a, SPARK_G_ALL_EXECUTORS);
        ad->start_ms = policy_app_start_ms(store_app_id(a), store_app_first_seen_ms(a));
    }
    int desired = rt->granted >= 0 ? rt->granted : r->desired;
    size_t nidle = desired < r->current ? idle_workers(d, c, now_ms, s->idle, s->idle_cap) : 0;
    ss_decision dec = {
        .decided_at_ms = now_ms,
        .current_workers = r->current,
        .busy_workers = r->busy,
        .desired_workers = desired,
        .recommended_workers = r->recommendation,
        .executors_per_worker = r->per_worker,
        .apps = s->demand,
        .napps = napps,
        .removable_workers = s->idle,
        .nremovable_workers = nidle,
        .reason_code = heartbeat ? SS_REASON_HEARTBEAT
                     : rt->granted >= 0 && rt->granted < r->desired ? SS_REASON_POOL_LIMIT
                     : (int)r->reason + 1,
        .dry_run = d->cfg->policy.dry_run,
        .trigger_us = heartbeat ? 0 : d->changed_at_us[c],
    };
    ss_strlcpy(dec.cluster, cc->name, sizeof dec.cluster);
    ss_strlcpy(dec.reason, r->reason_text, sizeof dec.reason);
    if (rt->pool_note[0]) {
        size_t n = strlen(dec.reason);
        ss_strlcpy(dec.reason + n, "; ", sizeof dec.reason - n);
        ss_strlcpy(dec.reason + n + 2, rt->pool_note, sizeof dec.reason - n - 2);
    }
    uint64_t seq = 0;
    int rc = ss_bus_publish_seq(d->bus, &dec, &seq);
    if (rc != 0) {
        ss_warn("cluster %s: decision %d not published: %s", cc->name, desired, strerror(-rc));
        return;
    }
    rt->published = 1;
    rt->pub_desired = desired;
    rt->pub_at_ms = now_ms;
    rt->pub_sequence = seq;
    rt->pub_epoch = (uint64_t)d->bus_epoch;
    rt->pub_state = 0;
    rt->pub_trigger_us = dec.trigger_us;
    ss_strlcpy(rt->pub_reason, dec.reason, sizeof rt->pub_reason);
    if (!heartbeat)
        ss_info("cluster %s: desired %d workers (#%llu): %s", cc->name, desired,
                (unsigned long long)seq, dec.reason);
}

/* What the policy needs of one app; id borrowed from the store. */
static policy_app policy_app_of(const store_app *a)
{
    return (policy_app){
        .id = store_app_id(a),
        .start_ms = policy_app_start_ms(store_app_id(a), store_app_first_seen_ms(a)),
        .target_executors = gauge_int(a, SPARK_G_TARGET_EXECUTORS),
        .max_needed_executors = gauge_int(a, SPARK_G_MAX_NEEDED_EXECUTORS),
        .last_seen_ms = store_app_last_seen_ms(a),
    };
}

void decider_input(ss_daemon *d, int c, int64_t now_ms, policy_app *apps, size_t cap,
                   policy_input *in)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[c];
    size_t napps = store_app_count(d->store, c);
    if (napps > cap)
        napps = cap;
    for (size_t i = 0; i < napps; i++) {
        const store_app *a = store_app_at(d->store, c, i);
        apps[i] = policy_app_of(a);
    }
    int64_t stale_ms = (int64_t)cc->policy.stale_after_s * 1000;
    int64_t oldest = now_ms;
    *in = (policy_input){
        .conf = &cc->policy,
        .worker_cores = cc->worker_cores,
        .worker_memory_mb = cc->worker_memory_mb,
        .executor_cores = cc->executor_cores,
        .executor_memory_mb = cc->executor_memory_mb,
        .current_workers = current_workers(d, c),
        .busy_workers = busy_workers(d, c, now_ms, stale_ms, &oldest),
        .apps = apps,
        .napps = napps,
        .last_data_ms = store_cluster_last_seen_ms(d->store, c),
        .now_ms = now_ms,
    };
}

static int cache_rebuild(ss_daemon *d, int c, input_cache *ic)
{
    size_t n = store_app_count(d->store, c);
    if (n > ic->cap) {
        size_t cap = n + n / 2 + 4;
        policy_app *apps = realloc(ic->apps, cap * sizeof *apps);
        if (!apps)
            return -1;
        ic->apps = apps;
        const store_app **refs = realloc(ic->refs, cap * sizeof *refs);
        if (!refs)
            return -1;
        ic->refs = refs;
        ic->cap = cap;
    }
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const store_app *a = store_app_at(d->store, c, i);
        ic->refs[i] = a;
        if (store_app_last_seen_ms(a) < oldest)
            oldest = store_app_last_seen_ms(a);
        ic->apps[i] = policy_app_of(a);
    }
    ic->napps = n;
    ic->oldest_seen_ms = oldest;
    ic->current = current_workers(d, c);
    ic->valid = 1;
    return 0;
}

/* Same decision, same numbers: the reason text would read the same (a
 * stale result's text has the feed's age in it, so stale ones never match). */
static int same_result(const policy_result *a, const policy_result *b)
{
    return a->desired == b->desired && a->recommendation == b->recommendation &&
           a->window_max == b->window_max && a->needed == b->needed && a->busy == b->busy &&
           a->idle == b->idle && a->per_worker == b->per_worker &&
           a->demand_executors == b->demand_executors && a->current == b->current &&
           a->active_apps == b->active_apps && a->expired_apps == b->expired_apps &&
           a->reason == b->reason && a->flags == b->flags && a->held == b->held &&
           !a->stale && !b->stale;
}

/* Runs the policy for cluster c; rebuild = the store changed for it. */
static void evaluate(ss_daemon *d, int c, int64_t now_ms, int rebuild)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[c];
    cluster_rt *rt = &d->rt[c];
    decider_scratch *s = scratch_of(d);
    input_cache *ic = &s->cache[c];
    policy_input in;

    if ((rebuild || !ic->valid) && cache_rebuild(d, c, ic) != 0) {
        /* Out of memory for the cache: read the store directly this time. */
        ic->valid = 0;
        decider_input(d, c, now_ms, s->apps, s->cap, &in);
    } else {
        /* The policy reads last-seen only to expire apps. Cached times are
         * never newer than the real ones, so while even the oldest cached
         * one is within the expiry every app is active and a refresh (a
         * cache miss per app) would change nothing. */
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
        in = (policy_input){
            .conf = &cc->policy,
            .worker_cores = cc->worker_cores,
            .worker_memory_mb = cc->worker_memory_mb,
            .executor_cores = cc->executor_cores,
            .executor_memory_mb = cc->executor_memory_mb,
            .current_workers = ic->current,
            .busy_workers = busy_workers(d, c, now_ms, (int64_t)cc->policy.stale_after_s * 1000,
                                         &oldest),
            .apps = ic->apps,
            .napps = ic->napps,
            .last_data_ms = store_cluster_last_seen_ms(d->store, c),
            .now_ms = now_ms,
        };
        ic->oldest_seen_ms = oldest;
    }
    int rc;
    if (!rebuild && rt->evaluated && !rt->result.stale) {
        /* Inputs unchanged since the last evaluation: most timer passes give
         * the same result, and formatting its reason is half the cost of a
         * pass. Evaluate without text; keep the old text if the result is
         * the same, else evaluate again, with text, from the saved state. */
        policy_state saved = rt->pstate;
        policy_result quick;
        in.no_reason = 1;
        rc = policy_evaluate(&in, &rt->pstate, &quick);
        if (rc != 0 || !same_result(&quick, &rt->result)) {
            rt->pstate = saved;
            in.no_reason = 0;
            rc = policy_evaluate(&in, &rt->pstate, &rt->result);
        }
    } else {
        rc = policy_evaluate(&in, &rt->pstate, &rt->result);
    }
    d->evaluations++;
    rt->evaluated = 1;
    rt->pool_dirty = 1;
    if (rc != 0)
        ss_warn("cluster %s: policy: %s", cc->name, rt->result.reason_text);
}

static void maybe_publish(ss_daemon *d, int c, int64_t now_ms)
{
    cluster_rt *rt = &d->rt[c];
    int desired = rt->granted >= 0 ? rt->granted : rt->result.desired;
    if (desired < 0) {
        d->changed_at_us[c] = 0;    /* no decision: size unknown and feed stale */
        return;
    }
    int64_t heartbeat_ms = (int64_t)d->cfg->kafka.heartbeat_s * 1000;
    if (!rt->published || desired != rt->pub_desired)
        publish(d, c, now_ms, 0);
    else if (heartbeat_ms > 0 && now_ms - rt->pub_at_ms >= heartbeat_ms)
        publish(d, c, now_ms, 1);
    /* The change was evaluated: the next one starts its own clock. */
    d->changed_at_us[c] = 0;
}

void decider_evaluate_dirty(ss_daemon *d)
{
    size_t n = store_take_dirty(d->store, d->dirty, d->cfg->nclusters);
    if (n == 0)
        return;
    int64_t now = ss_wall_ms();
    for (size_t i = 0; i < n; i++)
        evaluate(d, d->dirty[i], now, 1);
    pools_apply(d, now);
    for (size_t i = 0; i < n; i++)
        maybe_publish(d, d->dirty[i], now);
}

void decider_tick(ss_daemon *d)
{
    int64_t now = ss_wall_ms();
    int64_t t0 = ss_mono_us();
    size_t n = d->cfg->nclusters;
    decider_scratch *s = scratch_of(d);
    for (size_t c = 0; c < n; c++) {
        const policy_conf *pc = &d->cfg->clusters[c].policy;
        int64_t expiry_ms = (int64_t)pc->app_expiry_s * 1000;
        /* Only walk the store where something may have gone silent. */
        if (pc->app_expiry_s > 0 && (!s->cache[c].valid || now - s->cache[c].oldest_seen_ms > expiry_ms))
            store_expire(d->store, (int)c, now, expiry_ms);
    }
    size_t ndirty = store_take_dirty(d->store, d->dirty, n);   /* all are evaluated below */
    for (size_t i = 0; i < ndirty; i++)
        s->cache[d->dirty[i]].valid = 0;
    for (size_t c = 0; c < n; c++)
        evaluate(d, (int)c, now, 0);
    pools_apply(d, now);
    d->pass_us = ss_mono_us() - t0;
    if (d->pass_us > d->pass_max_us)
        d->pass_max_us = d->pass_us;
    for (size_t c = 0; c < n; c++)
        maybe_publish(d, (int)c, now);
}

int decider_cluster_index(ss_daemon *d, const char *name)
{
    return cluster_by_name(scratch_of(d), name);
}

void decider_on_delivery(void *ctx, const char *cluster, uint64_t sequence, int err,
                         int64_t latency_us)
{
    ss_daemon *d = ctx;
    (void)latency_us;             /* the bus keeps the latency histograms */
    int c = cluster_by_name(scratch_of(d), cluster);
    if (c < 0)
        return;
    cluster_rt *rt = &d->rt[c];
    if (rt->pub_sequence != sequence)
        return;
    rt->pub_state = err == 0 ? 1 : err == -EAGAIN ? 0 : -1;
    if (err == 0 && rt->pub_trigger_us > 0 && d->reaction_hook)
        d->reaction_hook(d->reaction_ctx, cluster, sequence, ss_mono_us() - rt->pub_trigger_us);
}
