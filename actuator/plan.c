/* plan.c: decision ordering and scale-in victim choice, pure (see plan.h). */
#include "actuator/plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base/str.h"

/* ---- ordering ---- */

plan_verdict plan_classify(const plan_history *h, int64_t epoch, uint64_t seq, int64_t expires_at_ms,
                           int64_t now_ms)
{
    for (size_t i = 0; i < h->nrecent; i++)
        if (h->recent[i].epoch == epoch && h->recent[i].seq == seq)
            return PLAN_DUPLICATE;
    for (size_t i = 0; i < h->nepochs; i++) {
        if (h->epochs[i].epoch != epoch)
            continue;
        if (seq == h->epochs[i].max_seq)
            return PLAN_DUPLICATE;
        if (seq < h->epochs[i].max_seq)
            return PLAN_STALE;
        break;
    }
    if (expires_at_ms > 0 && now_ms > expires_at_ms)
        return PLAN_EXPIRED;
    return PLAN_NEW;
}

void plan_history_note(plan_history *h, int64_t epoch, uint64_t seq)
{
    h->recent[h->next] = (plan_id){ epoch, seq };
    h->next = (h->next + 1) % PLAN_RECENT;
    if (h->nrecent < PLAN_RECENT)
        h->nrecent++;
    for (size_t i = 0; i < h->nepochs; i++) {
        if (h->epochs[i].epoch != epoch)
            continue;
        if (seq > h->epochs[i].max_seq)
            h->epochs[i].max_seq = seq;
        return;
    }
    /* A new epoch: newest first, the oldest forgotten. */
    size_t n = h->nepochs < PLAN_EPOCHS ? h->nepochs : PLAN_EPOCHS - 1;
    memmove(&h->epochs[1], &h->epochs[0], n * sizeof h->epochs[0]);
    h->epochs[0].epoch = epoch;
    h->epochs[0].max_seq = seq;
    h->nepochs = n + 1;
}

/* ---- victims ---- */

void plan_victims_free(plan_victims *pv)
{
    free(pv->v);
    pv->v = NULL;
    pv->n = 0;
}

void plan_keep(plan_victims *pv, const ss_worker_ref *w, const char *fmt, ...)
{
    pv->kept_total++;
    if (pv->nkept >= SS_AUDIT_MAX_WORKERS)
        return;
    ss_kept_worker *k = &pv->kept[pv->nkept++];
    k->worker = *w;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->reason, sizeof k->reason, fmt, ap);
    va_end(ap);
}

static void worker_ref(const ss_spark_worker *w, ss_worker_ref *out)
{
    memset(out, 0, sizeof *out);
    ss_strlcpy(out->id, w->id ? w->id : "", sizeof out->id);
    ss_strlcpy(out->host, w->host ? w->host : "", sizeof out->host);
    out->port = w->port;
}

static int is_named(const ss_spark_worker *w, const ss_worker_ref *named, size_t nnamed)
{
    for (size_t i = 0; i < nnamed; i++) {
        if (named[i].id[0] && w->id && strcmp(named[i].id, w->id) == 0)
            return 1;
        if (!named[i].id[0] && w->host && strcasecmp(named[i].host, w->host) == 0 &&
            (named[i].port <= 0 || named[i].port == w->port))
            return 1;
    }
    return 0;
}

/* One host and what runs on it. */
typedef struct host_group {
    const char *host;
    size_t *workers;                  /* indices into m->workers: ALIVE, DECOMMISSIONED, UNKNOWN */
    size_t n;
    size_t busy, unknown, decommissioned, named;
    int cls;                          /* preference: 0 all decommissioned, 1 named, 2 other */
} host_group;

static int group_cmp(const void *a, const void *b)
{
    const host_group *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    return strcasecmp(x->host, y->host);
}

static int counts(const ss_spark_worker *w)
{
    return w->state == SS_WORKER_ALIVE || w->state == SS_WORKER_DECOMMISSIONED ||
           w->state == SS_WORKER_UNKNOWN;
}

int plan_choose_victims(const ss_master_state *m, const ss_worker_ref *named, size_t nnamed, int k,
                        plan_victims *out)
{
    memset(out, 0, sizeof *out);
    if (k <= 0 || !m)
        return 0;
    host_group *g = calloc(m->nworkers ? m->nworkers : 1, sizeof *g);
    size_t *idx = calloc(m->nworkers ? m->nworkers : 1, sizeof *idx);
    out->v = calloc((size_t)k, sizeof *out->v);
    if (!g || !idx || !out->v) {
        free(g);
        free(idx);
        plan_victims_free(out);
        return -ENOMEM;
    }
    /* Group the workers by host; a host's workers are contiguous in idx. */
    size_t ng = 0;
    for (size_t i = 0; i < m->nworkers; i++) {
        const ss_spark_worker *w = &m->workers[i];
        if (!counts(w))
            continue;
        size_t j = 0;
        while (j < ng && strcasecmp(g[j].host, w->host) != 0)
            j++;
        if (j == ng) {
            g[ng].host = w->host;
            ng++;
        }
    }
    /* Second pass: fill each group's slice of idx. */
    size_t off = 0;
    for (size_t j = 0; j < ng; j++) {
        g[j].workers = idx + off;
        for (size_t i = 0; i < m->nworkers; i++) {
            const ss_spark_worker *w = &m->workers[i];
            if (!counts(w) || strcasecmp(g[j].host, w->host) != 0)
                continue;
            g[j].workers[g[j].n++] = i;
            if (w->state == SS_WORKER_UNKNOWN)
                g[j].unknown++;
            else if (w->coresused > 0)
                g[j].busy++;
            else if (w->state == SS_WORKER_DECOMMISSIONED)
                g[j].decommissioned++;
            if (is_named(w, named, nnamed))
                g[j].named++;
        }
        off += g[j].n;
        g[j].cls = g[j].decommissioned == g[j].n ? 0 : g[j].named ? 1 : 2;
    }
    qsort(g, ng, sizeof *g, group_cmp);

    size_t left = (size_t)k, shared = 0, too_many = 0, unknown = 0;
    for (size_t j = 0; j < ng; j++) {
        host_group *h = &g[j];
        ss_worker_ref ref;
        if (h->busy || h->unknown) {
            for (size_t i = 0; i < h->n; i++) {
                const ss_spark_worker *w = &m->workers[h->workers[i]];
                worker_ref(w, &ref);
                if (w->state == SS_WORKER_UNKNOWN) {
                    plan_keep(out, &ref, "state UNKNOWN (the master has not heard from it since "
                                         "it recovered)");
                    unknown++;
                } else if (w->coresused > 0) {
                    plan_keep(out, &ref, "busy: %d cores used", w->coresused);
                    out->busy++;
                } else {
                    plan_keep(out, &ref, "idle, but host %s also runs a %s worker", h->host,
                              h->busy ? "busy" : "not yet known");
                    shared++;
                }
            }
            continue;
        }
        if (left == 0)
            continue;   /* enough chosen: the rest simply stays */
        if (h->n > left) {
            for (size_t i = 0; i < h->n; i++) {
                worker_ref(&m->workers[h->workers[i]], &ref);
                plan_keep(out, &ref, "idle, but host %s runs %zu workers and only %zu more may go",
                          h->host, h->n, left);
            }
            too_many++;
            continue;
        }
        for (size_t i = 0; i < h->n; i++) {
            const ss_spark_worker *w = &m->workers[h->workers[i]];
            plan_victim *v = &out->v[out->n++];
            worker_ref(w, &v->ref);
            v->decommissioned = w->state == SS_WORKER_DECOMMISSIONED;
            v->named = is_named(w, named, nnamed);
        }
        left -= h->n;
    }
    if (out->n == (size_t)k)
        snprintf(out->note, sizeof out->note, "%zu of %d chosen", out->n, k);
    else
        snprintf(out->note, sizeof out->note,
                 "%zu of %d chosen: %zu busy, %zu idle on a host shared with a busy worker, "
                 "%zu host(s) with more workers than may go, %zu of unknown state",
                 out->n, k, out->busy, shared, too_many, unknown);
    free(g);
    free(idx);
    return 0;
}

int plan_victims_from_decision(const ss_worker_ref *named, size_t nnamed, int k, int64_t decided_at_ms,
                               int64_t now_ms, int64_t max_age_ms, plan_victims *out)
{
    memset(out, 0, sizeof *out);
    if (k <= 0)
        return 0;
    if (nnamed == 0) {
        snprintf(out->note, sizeof out->note, "the decision names no removable worker");
        return 0;
    }
    int64_t age = now_ms - decided_at_ms;
    if (decided_at_ms <= 0 || age > max_age_ms) {
        snprintf(out->note, sizeof out->note,
                 "the decision's removable workers are %lld ms old (max_decision_age_s allows %lld)",
                 (long long)age, (long long)max_age_ms);
        return 0;
    }
    size_t n = nnamed < (size_t)k ? nnamed : (size_t)k;
    out->v = calloc(n, sizeof *out->v);
    if (!out->v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        out->v[i].ref = named[i];
        out->v[i].named = 1;
    }
    out->n = n;
    snprintf(out->note, sizeof out->note, "%zu of %d from the decision's removable workers", n, k);
    return 0;
}

static int host_busy(const ss_master_state *m, const char *host)
{
    for (size_t i = 0; i < m->nworkers; i++) {
        const ss_spark_worker *w = &m->workers[i];
        if (strcasecmp(w->host, host) != 0)
            continue;
        if ((w->state == SS_WORKER_ALIVE || w->state == SS_WORKER_DECOMMISSIONED) && w->coresused > 0)
            return 1;
        if (w->state == SS_WORKER_UNKNOWN)
            return 1;
    }
    return 0;
}

/* The worker the victim was, by id (a re-registered worker has a new id:
 * then it is a new process on that host, found by host and port). */
static const ss_spark_worker *find_victim(const ss_master_state *m, const plan_victim *v)
{
    for (size_t i = 0; v->ref.id[0] && i < m->nworkers; i++)
        if (m->workers[i].id && strcmp(m->workers[i].id, v->ref.id) == 0 &&
            m->workers[i].state != SS_WORKER_DEAD)
            return &m->workers[i];
    const ss_spark_worker *w = ss_master_find_worker(m, v->ref.host, v->ref.port);
    return w && w->state != SS_WORKER_DEAD ? w : NULL;
}

size_t plan_recheck(plan_victims *pv, const ss_master_state *m, int need_decommissioned)
{
    size_t k = 0, dropped = 0;
    for (size_t i = 0; i < pv->n; i++) {
        plan_victim *v = &pv->v[i];
        const ss_spark_worker *w = find_victim(m, v);
        const char *why = NULL;
        char buf[SS_AUDIT_KEPT_REASON_MAX];
        if (w && w->coresused > 0) {
            snprintf(buf, sizeof buf, "picked up work meanwhile: %d cores used", w->coresused);
            why = buf;
        } else if (host_busy(m, v->ref.host)) {
            snprintf(buf, sizeof buf, "its host now runs a busy worker");
            why = buf;
        } else if (w && need_decommissioned && w->state != SS_WORKER_DECOMMISSIONED) {
            snprintf(buf, sizeof buf, "not DECOMMISSIONED in time (state %s)",
                     ss_worker_state_name(w->state));
            why = buf;
        }
        if (why) {
            plan_keep(pv, &v->ref, "%s", why);
            dropped++;
            continue;
        }
        if (w)
            v->decommissioned = w->state == SS_WORKER_DECOMMISSIONED;
        pv->v[k++] = *v;
    }
    pv->n = k;
    return dropped;
}

size_t plan_decommissioned(const plan_victims *pv, const ss_master_state *m)
{
    size_t n = 0;
    for (size_t i = 0; i < pv->n; i++) {
        const ss_spark_worker *w = find_victim(m, &pv->v[i]);
        if (!w || w->state == SS_WORKER_DECOMMISSIONED)
            n++;
    }
    return n;
}
