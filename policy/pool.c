/* pool.c: worker grants inside a shared capacity pool (FIFO + gang), after
 * the k8s-spark-scheduler extender's admission rules, applied to workers. */
#include "policy/pool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int app_before(const policy_pool_app *apps, uint32_t a, uint32_t b)
{
    if (apps[a].start_ms != apps[b].start_ms)
        return apps[a].start_ms < apps[b].start_ms;
    /* Same second: Spark's counter suffix orders one master's apps. */
    const char *ia = apps[a].id ? apps[a].id : "";
    const char *ib = apps[b].id ? apps[b].id : "";
    int c = strcmp(ia, ib);
    if (c != 0)
        return c < 0;
    return a < b;
}

static void sift_down(const policy_pool_app *apps, uint32_t *o, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && app_before(apps, o[child], o[child + 1]))
            child++;
        if (!app_before(apps, o[root], o[child]))
            return;
        uint32_t t = o[root];
        o[root] = o[child];
        o[child] = t;
        root = child;
    }
}

/* Heapsort: O(n log n), no recursion, no allocation; the key is a total
 * order, so stability does not matter. */
static void sort_fifo(const policy_pool_app *apps, uint32_t *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        o[i] = (uint32_t)i;
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(apps, o, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        uint32_t t = o[0];
        o[0] = o[end];
        o[end] = t;
        sift_down(apps, o, 0, end);
    }
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

/* Grants up to w new workers to cluster c. */
static void add_workers(policy_pool_cluster *c, int64_t w, int64_t *free_w)
{
    c->granted += (int)w;
    c->priv.slots += w * c->per_worker;
    *free_w -= w;
}

/* Step 4 helper: grows clusters without waiting apps, oldest first. */
static void fill(policy_pool_cluster *cl, size_t nc, const policy_pool_app *apps,
                 const uint32_t *order, size_t na, int64_t *free_w, int idle_only, int mark)
{
    for (size_t k = 0; k < na + nc && *free_w > 0; k++) {
        size_t ci = k < na ? (size_t)apps[order[k]].cluster : k - na;
        policy_pool_cluster *c = &cl[ci];
        if (c->priv.visited == mark)
            continue;
        c->priv.visited = mark;
        if (c->desired < 0 || c->priv.queued > 0)
            continue;
        int64_t room = c->priv.cap - c->granted;
        if (idle_only)
            room = min64(room, c->idle_workers);
        int64_t w = min64(room, *free_w);
        if (w > 0)
            add_workers(c, w, free_w);
    }
}

/* Step 1: every cluster keeps max(busy, min_workers); no decision = no growth.
 * Returns the free workers (never negative) and sets over_budget. */
static int64_t grant_floors(policy_pool *pool, policy_pool_cluster *cl, size_t nc,
                            int64_t *wanted)
{
    int64_t floors = 0;
    *wanted = 0;
    for (size_t i = 0; i < nc; i++) {
        policy_pool_cluster *c = &cl[i];
        int busy = c->busy > 0 ? c->busy : 0;
        int fl = c->min_workers > busy ? c->min_workers : busy;
        memset(&c->priv, 0, sizeof(c->priv));
        c->priv.floor = fl;
        /* No decision: the cluster keeps what it has, which we only know
         * as its floor; it must not grow. */
        c->priv.cap = c->desired > fl ? c->desired : fl;
        if (c->desired < 0)
            c->priv.cap = fl;
        c->granted = fl;
        c->priv.slots = (int64_t)fl * c->per_worker;
        c->waiting_apps = 0;
        floors += fl;
        *wanted += c->priv.cap;
    }
    int64_t free_w = (int64_t)pool->max_workers - floors;
    pool->over_budget = free_w < 0;
    return free_w < 0 ? 0 : free_w;
}

/* Step 2: gangs, strict FIFO. Returns the position in order of the first
 * app that waits for pool room (na if none); *blocked is its index. */
static size_t grant_gangs(policy_pool_cluster *cl, policy_pool_app *apps, const uint32_t *order,
                          size_t na, int64_t *free_w, int64_t *blocked)
{
    size_t blocked_pos = na;
    *blocked = -1;
    for (size_t k = 0; k < na; k++) {
        policy_pool_app *a = &apps[order[k]];
        policy_pool_cluster *c = &cl[a->cluster];
        int d = a->demand_executors > 0 ? a->demand_executors : 0;
        int m = a->min_executors > 0 ? a->min_executors : 0;
        if (m > d)
            m = d;
        a->state = POLICY_APP_GRANTED;
        a->granted_executors = 0;
        a->blocked_by = -1;
        a->free_workers = (int)*free_w;
        a->cluster_room = c->priv.cap - c->granted;
        int64_t slack = c->priv.slots - c->priv.used;
        int64_t need = ceil_div(m - slack, c->per_worker);
        a->gang_workers = (int)need;
        if (need > 0) {
            if (*blocked >= 0) {
                a->state = POLICY_APP_WAIT_FIFO;
                a->blocked_by = (int)*blocked;
            } else if (c->desired < 0 || need > c->priv.cap - c->granted) {
                a->state = POLICY_APP_WAIT_CLUSTER;
            } else if (need > *free_w) {
                a->state = POLICY_APP_WAIT_GANG;
                *blocked = order[k];
                blocked_pos = k;
            } else {
                add_workers(c, need, free_w);
            }
            if (a->state != POLICY_APP_GRANTED) {
                c->waiting_apps++;
                if (a->state != POLICY_APP_WAIT_CLUSTER)
                    c->priv.queued++;
                continue;
            }
        }
        c->priv.used += m;
        a->granted_executors = m;
    }
    return blocked_pos;
}

/* Step 3: the rest of admitted apps' demand, FIFO; only apps older than
 * the first waiting one may add workers. */
static void grant_rest(policy_pool_cluster *cl, policy_pool_app *apps, const uint32_t *order,
                       size_t na, int64_t *free_w, int64_t blocked, size_t blocked_pos)
{
    for (size_t k = 0; k < na; k++) {
        policy_pool_app *a = &apps[order[k]];
        if (a->state != POLICY_APP_GRANTED)
            continue;
        policy_pool_cluster *c = &cl[a->cluster];
        int d = a->demand_executors > 0 ? a->demand_executors : 0;
        int64_t want = d - a->granted_executors;
        if (want <= 0)
            continue;
        int64_t take = min64(want, c->priv.slots - c->priv.used);
        if (take < 0)
            take = 0;
        if (take < want && k < blocked_pos) {
            int64_t w = min64(ceil_div(want - take, c->per_worker),
                              min64(*free_w, c->priv.cap - c->granted));
            if (w > 0) {
                add_workers(c, w, free_w);
                take = min64(want, c->priv.slots - c->priv.used);
            }
        }
        c->priv.used += take;
        a->granted_executors += (int)take;
        if (a->granted_executors < d) {
            a->state = POLICY_APP_PARTIAL;
            a->free_workers = (int)*free_w;
            a->cluster_room = c->priv.cap - c->granted;
            if (k > blocked_pos) {
                a->blocked_by = (int)blocked;
                c->priv.queued++;
            }
        }
    }
}

int policy_pool_grant(policy_pool *pool, policy_pool_cluster *cl, size_t nc,
                      policy_pool_app *apps, size_t na, uint32_t *order)
{
    if (!pool || (nc > 0 && !cl) || (na > 0 && (!apps || !order)) || na > UINT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < nc; i++)
        if (cl[i].per_worker < 1)
            return -EINVAL;
    for (size_t i = 0; i < na; i++)
        if (apps[i].cluster < 0 || (size_t)apps[i].cluster >= nc)
            return -EINVAL;

    int64_t wanted;
    int64_t free_w = grant_floors(pool, cl, nc, &wanted);
    sort_fifo(apps, order, na);
    int64_t blocked;
    size_t blocked_pos = grant_gangs(cl, apps, order, na, &free_w, &blocked);
    grant_rest(cl, apps, order, na, &free_w, blocked, blocked_pos);
    /* 4. idle buffers, then any remaining desire */
    fill(cl, nc, apps, order, na, &free_w, 1, 1);
    fill(cl, nc, apps, order, na, &free_w, 0, 2);

    int64_t granted = 0;
    pool->waiting_apps = 0;
    for (size_t i = 0; i < nc; i++) {
        granted += cl[i].granted;
        pool->waiting_apps += cl[i].waiting_apps;
        if (cl[i].desired < 0)
            cl[i].granted = -1;
    }
    pool->wanted_workers = (int)min64(wanted, INT32_MAX);
    pool->granted_workers = (int)min64(granted, INT32_MAX);
    pool->free_workers = (int)free_w;
    return 0;
}

int policy_pool_app_reason(const policy_pool *pool, const policy_pool_cluster *cl, size_t nc,
                           const policy_pool_app *apps, size_t na, size_t i, char *buf,
                           size_t len)
{
    if (!pool || !cl || !apps || i >= na || (!buf && len > 0))
        return -EINVAL;
    const policy_pool_app *a = &apps[i];
    if (a->cluster < 0 || (size_t)a->cluster >= nc)
        return -EINVAL;
    const char *id = a->id ? a->id : "?";
    const char *pname = pool->name ? pool->name : "?";
    const char *cname = cl[a->cluster].name ? cl[a->cluster].name : "?";
    int d = a->demand_executors > 0 ? a->demand_executors : 0;
    switch (a->state) {
    case POLICY_APP_GRANTED:
        return snprintf(buf, len, "%s granted %d executors (pool %s)", id, d, pname);
    case POLICY_APP_PARTIAL:
        if (a->blocked_by >= 0 && (size_t)a->blocked_by < na)
            return snprintf(buf, len, "%s granted %d of %d executors: the rest queues behind "
                            "%s (FIFO, pool %s)", id, a->granted_executors, d,
                            apps[a->blocked_by].id ? apps[a->blocked_by].id : "?", pname);
        if (a->free_workers == 0)
            return snprintf(buf, len, "%s granted %d of %d executors: pool %s full (%d max)",
                            id, a->granted_executors, d, pname, pool->max_workers);
        return snprintf(buf, len, "%s granted %d of %d executors: cluster %s at its desired "
                        "size", id, a->granted_executors, d, cname);
    case POLICY_APP_WAIT_GANG:
        return snprintf(buf, len, "%s waits: gang of %d workers does not fit in %d free "
                        "(pool %s, %d max)", id, a->gang_workers, a->free_workers, pname,
                        pool->max_workers);
    case POLICY_APP_WAIT_FIFO:
        return snprintf(buf, len, "%s waits: queued behind %s (FIFO, pool %s)", id,
                        a->blocked_by >= 0 && (size_t)a->blocked_by < na &&
                        apps[a->blocked_by].id ? apps[a->blocked_by].id : "?", pname);
    case POLICY_APP_WAIT_CLUSTER:
        if (cl[a->cluster].desired < 0)
            return snprintf(buf, len, "%s waits: cluster %s has no decision (size unknown)",
                            id, cname);
        return snprintf(buf, len, "%s waits: gang of %d workers exceeds cluster %s's room "
                        "of %d (desired %d)", id, a->gang_workers, cname, a->cluster_room,
                        cl[a->cluster].desired);
    }
    return -EINVAL;
}

void policy_pool_cluster_from(const policy_input *in, const policy_result *res,
                              const char *name, policy_pool_cluster *out)
{
    memset(out, 0, sizeof(*out));
    out->name = name;
    out->desired = res->desired;
    out->busy = res->busy;
    out->min_workers = in->conf->min_workers;
    out->idle_workers = in->conf->idle_workers;
    out->per_worker = res->per_worker > 0 ? res->per_worker : 1;
}

size_t policy_pool_collect_apps(const policy_input *in, int cluster, policy_pool_app *out,
                                size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < in->napps && n < cap; i++) {
        const policy_app *a = &in->apps[i];
        if (!policy_app_active(in->conf, a, in->now_ms))
            continue;
        policy_pool_app *p = &out[n++];
        memset(p, 0, sizeof(*p));
        p->id = a->id;
        p->cluster = cluster;
        p->start_ms = a->start_ms;
        p->demand_executors = policy_app_demand(in->conf, a);
        p->min_executors = in->conf->app_min_executors;
        p->blocked_by = -1;
    }
    return n;
}

/* The note of a member that got less than it wanted: its first waiting app
 * in FIFO order, else the plain cut. */
static void member_note(const policy_pool *pool, const policy_pool_work *w, size_t napps,
                        size_t nmembers, size_t k, policy_pool_member *m)
{
    const policy_pool_cluster *pc = &w->clusters[k];
    m->note[0] = '\0';
    if (pc->waiting_apps == 0 && (m->granted < 0 || m->granted >= m->res->desired))
        return;
    for (size_t i = 0; i < napps; i++) {
        const policy_pool_app *a = &w->apps[w->order[i]];
        if (a->cluster != (int)k || a->state == POLICY_APP_GRANTED)
            continue;
        policy_pool_app_reason(pool, w->clusters, nmembers, w->apps, napps, w->order[i],
                               m->note, m->note_len);
        break;
    }
    if (!m->note[0] && m->granted >= 0 && m->granted < m->res->desired)
        snprintf(m->note, m->note_len, "pool %.64s grants %d of %d workers",
                 pool->name ? pool->name : "?", m->granted, m->res->desired);
}

int policy_pool_pass(const char *name, int max_workers, policy_pool_member *members,
                     size_t nmembers, policy_pool_work *work, policy_pool *pool_out,
                     size_t *truncated)
{
    size_t napps = 0, cut = 0;
    for (size_t k = 0; k < nmembers; k++) {
        const policy_pool_member *m = &members[k];
        policy_pool_cluster_from(m->in, m->res, m->name, &work->clusters[k]);
        size_t room = work->app_cap - napps;
        size_t got = policy_pool_collect_apps(m->in, (int)k, work->apps + napps, room);
        napps += got;
        if (got == room) {
            /* Full: count what did not fit (active apps only). */
            for (size_t i = 0; i < m->in->napps; i++)
                cut += policy_app_active(m->in->conf, &m->in->apps[i], m->in->now_ms);
            cut -= got;
        }
    }
    if (truncated)
        *truncated = cut;
    policy_pool pool = { .name = name, .max_workers = max_workers };
    int rc = policy_pool_grant(&pool, work->clusters, nmembers, work->apps, napps, work->order);
    for (size_t k = 0; k < nmembers; k++) {
        policy_pool_member *m = &members[k];
        m->granted = rc == 0 ? work->clusters[k].granted : m->res->desired;
        if (rc == 0)
            member_note(&pool, work, napps, nmembers, k, m);
        else if (m->note_len)
            m->note[0] = '\0';
    }
    if (pool_out)
        *pool_out = pool;
    return rc;
}
