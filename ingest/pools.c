/* pools.c: clusters that share a capacity pool get their grants here, after
 * their own policy evaluations: FIFO by app start, gang-style (policy/pool.h). */
#include "ingest/daemon_priv.h"

#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/base/str.h"
#include "policy/pool.h"

typedef struct pool_rt {
    const ss_pool_conf *conf;
    int *members;                 /* cluster indexes */
    size_t nmembers;
    policy_pool_cluster *pc;      /* one per member */
    policy_pool_app *apps;
    uint32_t *order;
    size_t app_cap;
    policy_app *scratch;          /* one cluster's apps while collecting */
    size_t scratch_cap;
} pool_rt;

typedef struct pools {
    pool_rt *p;
    size_t n;
} pools;

int pools_init(ss_daemon *d)
{
    const ss_config *cfg = d->cfg;
    pools *ps = calloc(1, sizeof *ps);
    if (!ps)
        return -1;
    d->pools = ps;
    if (cfg->npools == 0)
        return 0;
    ps->p = calloc(cfg->npools, sizeof *ps->p);
    if (!ps->p)
        return -1;
    ps->n = cfg->npools;
    size_t per_cluster = cfg->store.max_apps_per_cluster > 0 ? (size_t)cfg->store.max_apps_per_cluster : 64;
    for (size_t i = 0; i < cfg->npools; i++) {
        pool_rt *p = &ps->p[i];
        p->conf = &cfg->pools[i];
        for (size_t c = 0; c < cfg->nclusters; c++)
            if (strcmp(cfg->clusters[c].policy.pool, p->conf->name) == 0)
                p->nmembers++;
        size_t m = p->nmembers ? p->nmembers : 1;
        p->members = calloc(m, sizeof *p->members);
        p->pc = calloc(m, sizeof *p->pc);
        p->app_cap = m * per_cluster;
        p->apps = calloc(p->app_cap, sizeof *p->apps);
        p->order = calloc(p->app_cap, sizeof *p->order);
        p->scratch_cap = per_cluster;
        p->scratch = calloc(per_cluster, sizeof *p->scratch);
        if (!p->members || !p->pc || !p->apps || !p->order || !p->scratch)
            return -1;
        size_t k = 0;
        for (size_t c = 0; c < cfg->nclusters; c++)
            if (strcmp(cfg->clusters[c].policy.pool, p->conf->name) == 0)
                p->members[k++] = (int)c;
    }
    return 0;
}

void pools_free(ss_daemon *d)
{
    pools *ps = d->pools;
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++) {
        pool_rt *p = &ps->p[i];
        free(p->members);
        free(p->pc);
        free(p->apps);
        free(p->order);
        free(p->scratch);
    }
    free(ps->p);
    free(ps);
    d->pools = NULL;
}

static void grant(ss_daemon *d, pool_rt *p, int64_t now_ms)
{
    size_t napps = 0;
    for (size_t k = 0; k < p->nmembers; k++) {
        int c = p->members[k];
        policy_input in;
        decider_input(d, c, now_ms, p->scratch, p->scratch_cap, &in);
        policy_pool_cluster_from(&in, &d->rt[c].result, d->cfg->clusters[c].name, &p->pc[k]);
        napps += policy_pool_collect_apps(&in, (int)k, p->apps + napps, p->app_cap - napps);
    }
    policy_pool pool = { .name = p->conf->name, .max_workers = p->conf->max_workers };
    if (policy_pool_grant(&pool, p->pc, p->nmembers, p->apps, napps, p->order) != 0) {
        ss_warn("pool %s: grant failed; members keep their own desires", p->conf->name);
        for (size_t k = 0; k < p->nmembers; k++)
            d->rt[p->members[k]].granted = -1;
        return;
    }
    if (pool.over_budget)
        ss_warn("pool %s: busy and minimum workers alone exceed its %d workers", p->conf->name,
                p->conf->max_workers);
    for (size_t k = 0; k < p->nmembers; k++) {
        cluster_rt *rt = &d->rt[p->members[k]];
        rt->granted = p->pc[k].granted;
        rt->pool_note[0] = '\0';
        rt->pool_dirty = 0;
        if (p->pc[k].waiting_apps == 0 && (rt->granted < 0 || rt->granted >= rt->result.desired))
            continue;
        /* Name the first waiting app of this cluster (FIFO order). */
        for (size_t i = 0; i < napps; i++) {
            const policy_pool_app *a = &p->apps[p->order[i]];
            if (a->cluster != (int)k || a->state == POLICY_APP_GRANTED)
                continue;
            policy_pool_app_reason(&pool, p->pc, p->nmembers, p->apps, napps, p->order[i],
                                   rt->pool_note, sizeof rt->pool_note);
            break;
        }
        if (!rt->pool_note[0] && rt->granted >= 0 && rt->granted < rt->result.desired) {
            char note[sizeof rt->pool_note];
            snprintf(note, sizeof note, "pool %.64s grants %d of %d workers", p->conf->name,
                     rt->granted, rt->result.desired);
            ss_strlcpy(rt->pool_note, note, sizeof rt->pool_note);
        }
    }
}

void pools_apply(ss_daemon *d, int64_t now_ms)
{
    pools *ps = d->pools;
    for (size_t i = 0; i < ps->n; i++) {
        pool_rt *p = &ps->p[i];
        int dirty = 0;
        for (size_t k = 0; k < p->nmembers && !dirty; k++)
            dirty = d->rt[p->members[k]].pool_dirty;
        if (dirty)
            grant(d, p, now_ms);
    }
}
