/* k8s.c: the Kubernetes backend. One operation per cluster walks
 *   GET scale -> (scale-in: LIST pods, plan, PATCH victims' deletion cost)
 *   -> PUT scale with resourceVersion -> (scale-in: watch the pods go, undo
 *   the marks of victims that stayed)
 * A 409 starts over from a fresh read: the new size may change the plan.
 * Nothing here decides who is idle: the actuator's Spark-side checks pass
 * the victims in; lib/k8s/plan.c decides how far that lets the size drop. */
#include "actuator/k8s.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator/backend.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/k8s/client.h"
#include "lib/k8s/plan.h"

#define CONFIRM_FIRST_MS 100
#define CONFIRM_MAX_MS 1000
#define SS_K8S_MAX_OPS_UNLIMITED 64   /* operations at once per server without a rate limit */

typedef struct op op;

/* One API server (by URL): its rate limiter and its operations. At most
 * `cap` operations run their read-plan-write part at once; more wait in
 * FIFO order, so each one's requests follow each other through the limiter
 * instead of every decision's first request going before any second one
 * (which would make every decision wait for all the others). */
typedef struct server {
    char *url;
    ss_http_limiter *limiter;     /* NULL = no client-side limit */
    int active, cap;
    op *qhead, *qtail;
} server;

typedef struct source {           /* one credential source: kubeconfig+context, or in-cluster */
    char *kubeconfig;             /* "" = in-cluster */
    char *context;
    ss_k8s_api *api;
    server *srv;
} source;

typedef struct target {
    int served;
    ss_k8s_kind kind;
    const char *name;             /* into cfg */
    const char *ns;
    const char *cluster;
    ss_k8s_api *api;              /* borrowed from its source */
    server *srv;
    op *busy;
} target;

struct ss_k8s_backend {
    uv_loop_t *loop;
    ss_http_client *http;
    const ss_config *cfg;
    ss_k8s_backend_opts opts;
    target *targets;
    size_t ntargets;
    source **sources;
    size_t nsources;
    server **servers;
    size_t nservers;
    op *ops;                      /* every operation, running or queued */
    uv_timer_t timer;             /* confirmation polls */
    int closing;
    void (*done)(void *);
    void *done_arg;
};

typedef enum op_state {
    ST_QUEUED,                    /* waiting for a place among its server's operations */
    ST_READ, ST_LIST, ST_MARK, ST_WRITE, ST_WAIT, ST_CONFIRM, ST_UNMARK,
    ST_FAIL_SOON                  /* could not even start: fail from the timer, not inside the call */
} op_state;

/* What a call's callback gets: its op and its place in op->calls. */
typedef struct slot {
    op *o;
    size_t i;
} slot;

struct op {
    ss_k8s_backend *b;
    target *t;
    op *prev, *next;
    op *qnext;                    /* its server's queue */
    int holds_place;              /* counted in t->srv->active */
    op_state state;
    int read_only;
    int desired, dry_run, blind;
    char **victims;
    size_t nvictims;
    char *decision;
    ss_k8s_outcome_fn cb;
    void *arg;
    int64_t t0_us;
    ss_k8s_scale scale;           /* the last read */
    ss_k8s_pod_list *pods;        /* the pods the plan was made from */
    ss_k8s_plan plan;
    int have_plan;
    int planned_replicas;         /* spec.replicas the plan was made for */
    int target;
    ss_k8s_call **calls;          /* in flight (patches run in parallel); NULL when done */
    slot *slots;
    size_t ncalls, pending;
    char patch_err[1024];
    int64_t due_us, confirm_deadline_us, poll_ms;
    ss_k8s_code final_code;       /* decided before the last unmarking */
    ss_k8s_outcome out;
};

const char *ss_k8s_code_name(ss_k8s_code c)
{
    switch (c) {
    case SS_K8S_APPLIED: return "applied";
    case SS_K8S_PARTIAL: return "partial";
    case SS_K8S_HELD: return "held";
    default: return "failed";
    }
}

/* ---- set-up ------------------------------------------------------------------- */

static server *server_for(ss_k8s_backend *b, const char *url, double qps, int burst)
{
    for (size_t i = 0; i < b->nservers; i++)
        if (strcmp(b->servers[i]->url, url) == 0)
            return b->servers[i];
    server **arr = realloc(b->servers, (b->nservers + 1) * sizeof *arr);
    if (!arr)
        return NULL;
    b->servers = arr;
    server *sv = calloc(1, sizeof *sv);
    if (!sv)
        return NULL;
    sv->url = strdup(url);
    sv->limiter = qps > 0 ? ss_http_limiter_create(qps, burst) : NULL;
    /* As many operations as the bucket lets start at once; without a
     * limit, a bound all the same. */
    sv->cap = qps > 0 ? (burst > 0 ? burst : 1) : SS_K8S_MAX_OPS_UNLIMITED;
    if (!sv->url || (qps > 0 && !sv->limiter)) {
        free(sv->url);
        ss_http_limiter_release(sv->limiter);
        free(sv);
        return NULL;
    }
    arr[b->nservers++] = sv;
    return sv;
}

static source *source_for(ss_k8s_backend *b, const char *kubeconfig, const char *context,
                          char *err, size_t errlen)
{
    for (size_t i = 0; i < b->nsources; i++)
        if (strcmp(b->sources[i]->kubeconfig, kubeconfig) == 0 &&
            strcmp(b->sources[i]->context, context) == 0)
            return b->sources[i];
    ss_k8s_creds *creds = NULL;
    int rc;
    if (kubeconfig[0]) {
        rc = ss_k8s_kubeconfig_load(kubeconfig, context, &creds, err, errlen);
    } else {
        const char *dir = b->opts.sa_dir ? b->opts.sa_dir : getenv("SPARKSCALE_SERVICEACCOUNT_DIR");
        rc = ss_k8s_incluster_load(NULL, NULL, dir, &creds, err, errlen);
    }
    if (rc)
        return NULL;
    const ss_config *cfg = b->cfg;
    double qps = b->opts.qps_override > 0 ? b->opts.qps_override
                 : b->opts.qps_override < 0 ? 0 : cfg->actuator.kubernetes.qps;
    ss_k8s_api_opts ao = {
        .timeout_ms = b->opts.call_timeout_ms ? b->opts.call_timeout_ms
                                              : cfg->actuator.call_timeout_ms,
        .max_attempts = b->opts.max_attempts ? b->opts.max_attempts : cfg->actuator.max_attempts,
    };
    server *sv = server_for(b, creds->server, qps, cfg->actuator.kubernetes.burst);
    source *src = calloc(1, sizeof *src);
    source **arr = realloc(b->sources, (b->nsources + 1) * sizeof *arr);
    if (arr)
        b->sources = arr;
    if (!sv || !src || !arr) {
        ss_k8s_creds_free(creds);
        free(src);
        ss_errf(err, errlen, "out of memory");
        return NULL;
    }
    ao.limiter = sv->limiter;
    src->api = ss_k8s_api_create(b->http, creds, &ao, err, errlen);
    if (src->api)
        ss_info("k8s: API server %s (%s)%s", creds->server, creds->origin,
                qps > 0 ? "" : ", no client-side rate limit");
    ss_k8s_creds_free(creds);
    src->kubeconfig = strdup(kubeconfig);
    src->context = strdup(context);
    src->srv = sv;
    b->sources[b->nsources++] = src;   /* freed with the backend, whatever happens next */
    if (!src->api || !src->kubeconfig || !src->context)
        return NULL;
    return src;
}

static void free_parts(ss_k8s_backend *b)
{
    for (size_t i = 0; i < b->nsources; i++) {
        ss_k8s_api_release(b->sources[i]->api);
        free(b->sources[i]->kubeconfig);
        free(b->sources[i]->context);
        free(b->sources[i]);
    }
    free(b->sources);
    for (size_t i = 0; i < b->nservers; i++) {
        free(b->servers[i]->url);
        ss_http_limiter_release(b->servers[i]->limiter);
        free(b->servers[i]);
    }
    free(b->servers);
    free(b->targets);
}

int ss_k8s_backend_serve(ss_k8s_backend *b, size_t cluster, char *err, size_t errlen)
{
    if (!b || cluster >= b->ntargets) {
        ss_errf(err, errlen, "no such cluster");
        return -EINVAL;
    }
    const ss_config *cfg = b->cfg;
    const ss_cluster_conf *cl = &cfg->clusters[cluster];
    const ss_target_conf *tc = &cl->target;
    target *t = &b->targets[cluster];
    if (t->served)
        return 0;
    if (tc->kind != SS_TARGET_KUBERNETES) {
        ss_errf(err, errlen, "cluster \"%s\": its target is not kind kubernetes", cl->name);
        return -EINVAL;
    }
    if (ss_k8s_workload_parse(tc->workload, &t->kind, &t->name) != 0) {
        ss_errf(err, errlen, "cluster \"%s\": target.workload \"%s\" is not kind/name", cl->name,
                tc->workload);
        return -EINVAL;
    }
    /* A cluster's own kubeconfig comes with its own context (or that file's
     * current-context); a context alone picks one in the shared file. */
    const char *kc = tc->kubeconfig && tc->kubeconfig[0] ? tc->kubeconfig
                                                         : cfg->actuator.kubernetes.kubeconfig;
    const char *ctx = tc->context && tc->context[0] ? tc->context
                      : tc->kubeconfig && tc->kubeconfig[0] ? ""
                      : cfg->actuator.kubernetes.context;
    if (!kc)
        kc = "";
    if (!ctx)
        ctx = "";
    if (!kc[0] && ctx[0]) {
        ss_errf(err, errlen, "cluster \"%s\": a Kubernetes context (\"%s\") needs a kubeconfig "
                "(in-cluster credentials have no contexts)", cl->name, ctx);
        return -EINVAL;
    }
    char why[900] = "";
    source *src = source_for(b, kc, ctx, why, sizeof why);
    if (!src) {
        ss_errf(err, errlen, "cluster \"%s\": %s", cl->name, why[0] ? why : "out of memory");
        return -EINVAL;
    }
    t->api = src->api;
    t->srv = src->srv;
    t->ns = tc->namespace_;
    t->cluster = cl->name;
    t->served = 1;
    return 0;
}

ss_k8s_backend *ss_k8s_backend_create(uv_loop_t *loop, ss_http_client *http,
                                      const ss_config *cfg, const ss_k8s_backend_opts *opts,
                                      char *err, size_t errlen)
{
    if (!loop || !http || !cfg) {
        ss_errf(err, errlen, "bad arguments");
        return NULL;
    }
    ss_k8s_backend *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->loop = loop;
    b->http = http;
    b->cfg = cfg;
    if (opts)
        b->opts = *opts;
    if (!b->opts.confirm_timeout_ms)
        b->opts.confirm_timeout_ms = 30000;
    if (!b->opts.max_conflicts)
        b->opts.max_conflicts = 8;
    b->ntargets = cfg->nclusters;
    b->targets = calloc(b->ntargets ? b->ntargets : 1, sizeof *b->targets);
    if (!b->targets)
        goto fail;
    for (size_t i = 0; !b->opts.lazy && i < cfg->nclusters; i++)
        if (cfg->clusters[i].target.kind == SS_TARGET_KUBERNETES &&
            ss_k8s_backend_serve(b, i, err, errlen) != 0)
            goto fail;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    return b;
fail:
    free_parts(b);
    free(b);
    return NULL;
}

int ss_k8s_backend_serves(const ss_k8s_backend *b, size_t cluster)
{
    return b && cluster < b->ntargets && b->targets[cluster].served;
}

/* ---- operations: bookkeeping ---------------------------------------------------- */

static void op_free(op *o)
{
    for (size_t i = 0; i < o->nvictims; i++)
        free(o->victims[i]);
    free(o->victims);
    free(o->decision);
    ss_k8s_pod_list_free(o->pods);
    if (o->have_plan)
        ss_k8s_plan_free(&o->plan);
    free(o->calls);
    free(o->slots);
    free(o);
}

static void op_unlink(op *o)
{
    ss_k8s_backend *b = o->b;
    if (o->prev)
        o->prev->next = o->next;
    else if (b->ops == o)
        b->ops = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
    if (o->t->busy == o)
        o->t->busy = NULL;
}

static void appendf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
    size_t l = strlen(buf);
    if (l + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, len - l, fmt, ap);
    va_end(ap);
}

static void summarize(op *o)
{
    ss_k8s_outcome *out = &o->out;
    char *s = out->summary;
    size_t n = sizeof out->summary;
    s[0] = '\0';
    appendf(s, n, "%s%s/%s in %s", out->dry_run ? "dry run: " : "",
            ss_k8s_kind_name(o->t->kind), o->t->name, o->t->ns);
    if (o->read_only) {
        if (out->code == SS_K8S_FAILED)
            appendf(s, n, ": %s", out->error);
        else
            appendf(s, n, ": %d replicas", out->replicas_before);
        return;
    }
    switch (out->code) {
    case SS_K8S_FAILED:
        appendf(s, n, ": failed to set %d", o->desired);
        if (out->replicas_before >= 0)
            appendf(s, n, " (was %d)", out->replicas_before);
        appendf(s, n, ": %s", out->error);
        break;
    case SS_K8S_HELD:
        appendf(s, n, " held at %d (asked %d): %s", out->replicas_before, o->desired, out->reason);
        break;
    default:
        if (out->replicas_before == out->replicas_after)
            appendf(s, n, " already %d", out->replicas_after);
        else
            appendf(s, n, " %d -> %d%s", out->replicas_before, out->replicas_after,
                    out->dry_run ? " validated by the API server, nothing changed" : "");
        if (out->code == SS_K8S_PARTIAL)
            appendf(s, n, " (asked %d): %s", o->desired, out->reason);
    }
    if (out->dry_run && out->nplanned && out->code != SS_K8S_HELD) {
        appendf(s, n, "; would remove");
        for (size_t i = 0; i < out->nplanned; i++)
            appendf(s, n, "%s %s (%s)", i ? "," : "", out->planned[i].name, out->planned[i].ip);
    }
    if (out->nremoved) {
        appendf(s, n, "; removed");
        for (size_t i = 0; i < out->nremoved; i++) {
            const ss_k8s_pod_note *p = &out->removed[i];
            appendf(s, n, "%s %s (%s%s)", i ? "," : "", p->name, p->ip[0] ? p->ip : "no IP",
                    p->victim ? ", idle" : p->empty ? ", no worker" : ", NOT a victim");
        }
    }
    if (out->nremoved_other)
        appendf(s, n, "; the controller removed %zu pod(s) that were not victims (another writer "
                "scaled, or the controller did not honour pod-deletion-cost)", out->nremoved_other);
    if (out->nkept) {
        appendf(s, n, "; victim%s kept:", out->nkept > 1 ? "s" : "");
        for (size_t i = 0; i < out->nkept; i++)
            appendf(s, n, "%s %s (%s)", i ? "," : "", out->kept[i].name, out->kept[i].ip);
    }
    if ((out->code == SS_K8S_APPLIED || out->code == SS_K8S_PARTIAL) && out->replicas_after >= 0 &&
        out->replicas_after < out->replicas_before && !out->dry_run && !o->blind && !out->confirmed)
        appendf(s, n, "; the removals were not seen within %lld ms",
                (long long)o->b->opts.confirm_timeout_ms);
    if (out->nunmapped) {
        appendf(s, n, "; no pod has the IP of victim%s", out->nunmapped > 1 ? "s" : "");
        for (size_t i = 0; i < out->nunmapped; i++)
            appendf(s, n, "%s %s", i ? "," : "", out->unmapped[i]);
    }
    if (out->conflicts)
        appendf(s, n, "; %d conflict(s) (409) re-read and retried", out->conflicts);
}

static void leave_place(op *o);
static void unqueue(op *o);

static void finish(op *o, ss_k8s_code code)
{
    if (o->state == ST_QUEUED)
        unqueue(o);
    o->out.code = code;
    if (code == SS_K8S_FAILED && !o->out.errnum)
        o->out.errnum = -EIO;
    if (code == SS_K8S_HELD)   /* nothing was written: the size is what was read */
        o->out.replicas_after = o->scale.spec_replicas;
    o->out.total_ms = (ss_mono_us() - o->t0_us) / 1000;
    summarize(o);
    if (!o->read_only) {
        ss_log(code == SS_K8S_FAILED || o->out.nremoved_other ? SS_LOG_WARN : SS_LOG_INFO,
               "k8s: cluster %s: %s", o->t->cluster, o->out.summary);
    }
    op_unlink(o);
    leave_place(o);
    o->cb(&o->out, o->arg);
    op_free(o);
}

/* The errno-style kind of a failed call: timeouts and cancellations are
 * told apart from everything else (refused, 4xx, 5xx after the retries). */
static int errnum_of(const ss_k8s_result *r)
{
    if (r->transport == SS_HTTP_RES_TIMEOUT)
        return -ETIMEDOUT;
    if (r->transport == SS_HTTP_RES_CANCELLED)
        return -ECANCELED;
    return -EIO;
}

static void fail(op *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(op *o, const char *fmt, ...)
{
    if (!o->out.errnum)
        o->out.errnum = strstr(fmt, "cancelled") ? -ECANCELED : -EIO;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->out.error, sizeof o->out.error, fmt, ap);
    va_end(ap);
    finish(o, SS_K8S_FAILED);
}

static int calls_reserve(op *o, size_t n)
{
    free(o->calls);
    free(o->slots);
    o->calls = calloc(n ? n : 1, sizeof *o->calls);
    o->slots = calloc(n ? n : 1, sizeof *o->slots);
    o->ncalls = 0;
    o->pending = 0;
    if (!o->calls || !o->slots)
        return -ENOMEM;
    for (size_t i = 0; i < (n ? n : 1); i++)
        o->slots[i] = (slot){ o, i };
    o->ncalls = n ? n : 1;
    return 0;
}

/* The op of a finished call, its slot cleared. */
static op *slot_done(void *arg)
{
    slot *sl = arg;
    sl->o->calls[sl->i] = NULL;
    return sl->o;
}

/* ---- operations: the steps ------------------------------------------------------- */

static void note(ss_k8s_pod_note *n, const ss_k8s_pod *p, ss_k8s_pod_role role);
static void start_read(op *o);
static void start_list(op *o);
static void start_write(op *o);
static void start_unmark(op *o, ss_k8s_code code);
static void arm_timer(ss_k8s_backend *b);

static void on_put(const ss_k8s_result *r, const ss_k8s_scale *scale, void *arg)
{
    op *o = slot_done(arg);
    if (r->transport == SS_HTTP_RES_CANCELLED) {
        fail(o, "cancelled");
        return;
    }
    if (r->status == 409) {
        /* Someone wrote first (or the workload was re-created): re-read and
         * decide again from what is there now. */
        if (++o->out.conflicts > o->b->opts.max_conflicts) {
            if (o->have_plan && o->plan.nmark && !o->dry_run) {
                snprintf(o->out.error, sizeof o->out.error, "%d conflicts in a row (409): %s",
                         o->out.conflicts, r->st.message);
                start_unmark(o, SS_K8S_FAILED);
                return;
            }
            fail(o, "%d conflicts in a row (409): %s", o->out.conflicts, r->st.message);
            return;
        }
        ss_debug("k8s: cluster %s: 409 on the scale write; re-reading", o->t->cluster);
        start_read(o);
        return;
    }
    if (!r->ok) {
        o->out.errnum = errnum_of(r);
        snprintf(o->out.error, sizeof o->out.error, "%s", r->error);
        if (o->have_plan && o->plan.nmark && !o->dry_run) {
            start_unmark(o, SS_K8S_FAILED);   /* the marks must not outlive the attempt */
            return;
        }
        finish(o, SS_K8S_FAILED);
        return;
    }
    o->out.write_ms = (ss_mono_us() - o->t0_us) / 1000;
    o->out.replicas_after = scale ? scale->spec_replicas : o->target;
    ss_k8s_code code = o->target == o->desired ? SS_K8S_APPLIED : SS_K8S_PARTIAL;
    if (o->dry_run || o->target >= o->scale.spec_replicas || o->blind) {
        finish(o, code);
        return;
    }
    /* Scale-in: watch the controller act, then say which pods went. The
     * decision is written: the next one may start. */
    leave_place(o);
    o->final_code = code;
    o->state = ST_WAIT;
    o->poll_ms = CONFIRM_FIRST_MS;
    o->confirm_deadline_us = ss_mono_us() + o->b->opts.confirm_timeout_ms * 1000;
    o->due_us = ss_mono_us() + o->poll_ms * 1000;
    arm_timer(o->b);
}

static void start_write(op *o)
{
    char err[512];
    o->state = ST_WRITE;
    if (calls_reserve(o, 1) != 0) {
        fail(o, "out of memory");
        return;
    }
    int rc = ss_k8s_put_scale(o->t->api, o->t->kind, &o->scale, o->target, o->dry_run, on_put,
                              &o->slots[0], &o->calls[0], err, sizeof err);
    if (rc)
        fail(o, "%s", err[0] ? err : strerror(-rc));
}

/* Patches ran in parallel; the last one to answer moves on. */
static void patches_done(op *o);

static void on_patch(const ss_k8s_result *r, void *arg)
{
    op *o = slot_done(arg);
    if (!r->ok && !o->patch_err[0]) {
        snprintf(o->patch_err, sizeof o->patch_err, "%s", r->error);
        o->out.errnum = errnum_of(r);
    }
    if (--o->pending == 0)
        patches_done(o);
}

static void patches_done(op *o)
{
    if (o->state == ST_UNMARK) {
        if (o->patch_err[0])
            ss_warn("k8s: cluster %s: could not undo a victim mark: %s", o->t->cluster, o->patch_err);
        if (o->final_code == SS_K8S_FAILED && !o->out.error[0])
            snprintf(o->out.error, sizeof o->out.error, "%s", o->patch_err);
        finish(o, o->final_code);
        return;
    }
    if (o->target == o->scale.spec_replicas) {   /* a hold: only unmarking was to be done */
        if (o->patch_err[0])
            ss_warn("k8s: cluster %s: could not undo a victim mark: %s", o->t->cluster,
                    o->patch_err);
        finish(o, SS_K8S_HELD);
        return;
    }
    if (o->patch_err[0]) {   /* a mark failed (403 on patch pods?): do not shrink */
        fail(o, "%s", o->patch_err);
        return;
    }
    start_write(o);
}

static int pod_is_marked_by(const ss_k8s_pod *p, const char *decision)
{
    return p->mark && p->has_cost && p->cost == SS_K8S_VICTIM_COST &&
           strcmp(p->mark, decision ? decision : "") == 0;
}

/* Marks the plan's victims and unmarks the rest (plan.unmark), then writes. */
static void start_marks(op *o)
{
    const ss_k8s_plan *p = &o->plan;
    o->state = ST_MARK;
    o->patch_err[0] = '\0';
    size_t n = p->nmark + p->nunmark;
    if (calls_reserve(o, n) != 0) {
        fail(o, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int mark = i < p->nmark;
        const ss_k8s_pod *pod = &o->pods->items[mark ? p->mark[i] : p->unmark[i - p->nmark]];
        if (mark && pod_is_marked_by(pod, o->decision))
            continue;   /* marked already, by this decision (a retry after a 409) */
        char *patch = mark ? ss_k8s_mark_patch(pod, o->decision) : ss_k8s_unmark_patch(pod);
        char err[512] = "";
        int rc = patch ? ss_k8s_patch_pod(o->t->api, o->t->ns, pod->name, patch, o->dry_run,
                                          on_patch, &o->slots[i], &o->calls[i], err, sizeof err)
                       : -ENOMEM;
        free(patch);
        if (rc) {
            if (!o->patch_err[0])
                snprintf(o->patch_err, sizeof o->patch_err, "PATCH pod %s: %s", pod->name,
                         err[0] ? err : strerror(-rc));
            break;
        }
        o->pending++;
    }
    /* Callbacks never run inside the start calls: with nothing in flight, go on now. */
    if (o->pending == 0)
        patches_done(o);
}

/* After a scale-in (or a failure), victims that are still there lose the mark. */
static void start_unmark(op *o, ss_k8s_code code)
{
    o->final_code = code;
    o->state = ST_UNMARK;
    o->patch_err[0] = '\0';
    if (o->dry_run || !o->have_plan || !o->pods) {
        finish(o, code);
        return;
    }
    size_t n = o->plan.nmark;
    if (calls_reserve(o, n) != 0) {
        finish(o, code);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const ss_k8s_pod *pod = &o->pods->items[o->plan.mark[i]];
        int still = 0;
        for (size_t k = 0; k < o->out.nkept; k++)
            still |= strcmp(o->out.kept[k].name, pod->name) == 0;
        if (code != SS_K8S_FAILED && !still)
            continue;
        /* Give back what the pod had before we marked it: its own cost
         * (kept under the prior annotation if an earlier decision marked it). */
        ss_k8s_pod before = *pod;
        before.prior_cost = pod->mark ? pod->prior_cost : pod->cost_text;
        char *patch = ss_k8s_unmark_patch(&before);
        char err[512];
        if (patch && ss_k8s_patch_pod(o->t->api, o->t->ns, pod->name, patch, 0, on_patch,
                                      &o->slots[i], &o->calls[i], err, sizeof err) == 0)
            o->pending++;
        free(patch);
    }
    if (o->pending == 0)
        patches_done(o);
}

static void on_pods(const ss_k8s_result *r, ss_k8s_pod_list *pods, void *arg)
{
    op *o = slot_done(arg);
    if (!r->ok) {
        ss_k8s_pod_list_free(pods);
        o->out.errnum = errnum_of(r);
        if (r->transport == SS_HTTP_RES_CANCELLED)
            fail(o, "cancelled");
        else
            fail(o, "%s", r->error);
        return;
    }
    ss_k8s_pod_list_free(o->pods);
    o->pods = pods;
    if (o->have_plan)
        ss_k8s_plan_free(&o->plan);
    o->have_plan = 0;
    ss_k8s_plan_in in = {
        .kind = o->t->kind,
        .name = o->t->name,
        .owner_uid = o->t->kind == SS_K8S_DEPLOYMENT ? NULL : o->scale.uid,
        .replicas = o->scale.spec_replicas,
        .desired = o->desired,
        .pods = pods,
        .victims = (const char *const *)o->victims,
        .nvictims = o->nvictims,
    };
    if (ss_k8s_plan_scale_in(&in, &o->plan) != 0) {
        fail(o, "out of memory planning the scale-in");
        return;
    }
    o->have_plan = 1;
    o->planned_replicas = o->scale.spec_replicas;
    o->out.nunmapped = 0;
    for (size_t v = 0; v < o->nvictims; v++) {
        int found = 0;
        for (size_t i = 0; i < pods->n && !found; i++)
            found = o->plan.role[i] == SS_K8S_POD_VICTIM &&
                    (strcmp(pods->items[i].pod_ip, o->victims[v]) == 0 ||
                     strcmp(pods->items[i].pod_ip2, o->victims[v]) == 0);
        if (!found && o->out.nunmapped < SS_K8S_MAX_NOTES)
            ss_strlcpy(o->out.unmapped[o->out.nunmapped++], o->victims[v], sizeof o->out.unmapped[0]);
    }
    o->target = o->plan.target;
    o->out.target = o->target;
    o->out.nplanned = 0;
    if (o->target < o->scale.spec_replicas) {
        const size_t *idx = o->t->kind == SS_K8S_STATEFULSET ? o->plan.doomed : o->plan.mark;
        size_t n = o->t->kind == SS_K8S_STATEFULSET ? o->plan.ndoomed : o->plan.nmark;
        for (size_t i = 0; i < n && o->out.nplanned < SS_K8S_MAX_NOTES; i++)
            note(&o->out.planned[o->out.nplanned++], &pods->items[idx[i]], o->plan.role[idx[i]]);
    }
    if (o->plan.reason[0])
        snprintf(o->out.reason, sizeof o->out.reason, "%s", o->plan.reason);
    if (o->target == o->scale.spec_replicas) {
        /* Hold: nothing is written, but stale marks of earlier decisions go. */
        o->plan.nmark = 0;
        if (o->plan.nunmark && !o->dry_run) {
            start_marks(o);   /* unmarks only; ends HELD */
            return;
        }
        finish(o, SS_K8S_HELD);
        return;
    }
    start_marks(o);
}

static void start_list(op *o)
{
    char err[512];
    o->state = ST_LIST;
    if (calls_reserve(o, 1) != 0) {
        fail(o, "out of memory");
        return;
    }
    int rc = ss_k8s_list_pods(o->t->api, o->t->ns, o->scale.selector, on_pods, &o->slots[0],
                              &o->calls[0], err, sizeof err);
    if (rc)
        fail(o, "%s", err[0] ? err : strerror(-rc));
}

static void on_read(const ss_k8s_result *r, const ss_k8s_scale *scale, void *arg)
{
    op *o = slot_done(arg);
    if (!r->ok) {
        o->out.errnum = errnum_of(r);
        fail(o, "%s", r->transport == SS_HTTP_RES_CANCELLED ? "cancelled" : r->error);
        return;
    }
    o->scale = *scale;
    if (o->out.replicas_before < 0)
        o->out.replicas_before = scale->spec_replicas;
    if (o->read_only) {
        o->out.replicas_after = scale->spec_replicas;
        finish(o, SS_K8S_APPLIED);
        return;
    }
    int cur = scale->spec_replicas;
    if (o->desired == cur) {
        o->out.replicas_after = cur;
        o->out.target = cur;
        finish(o, SS_K8S_APPLIED);
        return;
    }
    if (o->desired > cur || o->blind) {   /* growing adds pods: nothing to choose */
        o->target = o->desired;
        o->out.target = o->desired;
        start_write(o);
        return;
    }
    /* After a 409 that changed only the resourceVersion (a label, an annotation,
     * the status), the plan stands: write again at once. A changed size means
     * other pods may go: plan again. */
    if (o->have_plan && o->out.conflicts && cur == o->planned_replicas &&
        o->target < cur && o->target >= o->desired) {
        start_write(o);
        return;
    }
    if (!scale->selector[0]) {
        fail(o, "the Scale of %s/%s has no status.selector: its pods cannot be found",
             ss_k8s_kind_name(o->t->kind), o->t->name);
        return;
    }
    start_list(o);
}

static void start_read(op *o)
{
    char err[512];
    o->state = ST_READ;
    if (calls_reserve(o, 1) != 0) {
        fail(o, "out of memory");
        return;
    }
    int rc = ss_k8s_get_scale(o->t->api, o->t->ns, o->t->kind, o->t->name, on_read,
                              &o->slots[0], &o->calls[0], err, sizeof err);
    if (rc)
        fail(o, "%s", err[0] ? err : strerror(-rc));
}

/* The first step, which must not call back inside resize or read: a
 * failure to start waits for the timer. */
static void start_first(op *o)
{
    char err[512];
    o->state = ST_READ;
    if (calls_reserve(o, 1) != 0 ||
        ss_k8s_get_scale(o->t->api, o->t->ns, o->t->kind, o->t->name, on_read, &o->slots[0],
                         &o->calls[0], err, sizeof err) != 0) {
        snprintf(o->out.error, sizeof o->out.error, "%s", o->calls ? err : "out of memory");
        o->state = ST_FAIL_SOON;
        o->due_us = 0;
        arm_timer(o->b);
    }
}

/* ---- confirmation: which pods went ----------------------------------------------- */

static int live_in(const op *o, const ss_k8s_pod_list *now, const ss_k8s_pod *p)
{
    for (size_t i = 0; i < now->n; i++) {
        const ss_k8s_pod *q = &now->items[i];
        if (strcmp(q->uid, p->uid) == 0)
            return !q->terminating && q->phase != SS_K8S_PHASE_SUCCEEDED &&
                   q->phase != SS_K8S_PHASE_FAILED;
    }
    return 0;
}

static size_t count_live(const op *o, const ss_k8s_pod_list *now)
{
    size_t n = 0;
    for (size_t i = 0; i < now->n; i++) {
        const ss_k8s_pod *q = &now->items[i];
        if (q->terminating || q->phase == SS_K8S_PHASE_SUCCEEDED || q->phase == SS_K8S_PHASE_FAILED)
            continue;
        if (o->t->kind != SS_K8S_DEPLOYMENT && o->scale.uid[0] &&
            strcmp(q->owner_uid, o->scale.uid) != 0)
            continue;
        n++;
    }
    return n;
}

static void note(ss_k8s_pod_note *n, const ss_k8s_pod *p, ss_k8s_pod_role role)
{
    ss_strlcpy(n->name, p->name, sizeof n->name);
    ss_strlcpy(n->ip, p->pod_ip, sizeof n->ip);
    n->victim = role == SS_K8S_POD_VICTIM;
    n->empty = role == SS_K8S_POD_EMPTY;
}

static void on_confirm_pods(const ss_k8s_result *r, ss_k8s_pod_list *now, void *arg)
{
    op *o = slot_done(arg);
    if (r->transport == SS_HTTP_RES_CANCELLED) {
        ss_k8s_pod_list_free(now);
        fail(o, "cancelled");
        return;
    }
    int64_t t = ss_mono_us();
    int done = now && (int)count_live(o, now) <= o->target;
    if (!done && t < o->confirm_deadline_us) {
        ss_k8s_pod_list_free(now);
        o->state = ST_WAIT;
        o->poll_ms = o->poll_ms * 2 > CONFIRM_MAX_MS ? CONFIRM_MAX_MS : o->poll_ms * 2;
        o->due_us = t + o->poll_ms * 1000;
        arm_timer(o->b);
        return;
    }
    o->out.confirmed = done;
    if (now) {
        for (size_t i = 0; i < o->pods->n; i++) {
            const ss_k8s_pod *p = &o->pods->items[i];
            ss_k8s_pod_role role = o->plan.role[i];
            if (role == SS_K8S_POD_GONE || live_in(o, now, p))
                continue;
            if (o->out.nremoved < SS_K8S_MAX_NOTES)
                note(&o->out.removed[o->out.nremoved++], p, role);
            if (role == SS_K8S_POD_OTHER)
                o->out.nremoved_other++;
        }
        for (size_t m = 0; m < o->plan.nmark; m++) {
            const ss_k8s_pod *p = &o->pods->items[o->plan.mark[m]];
            if (live_in(o, now, p) && o->out.nkept < SS_K8S_MAX_NOTES)
                note(&o->out.kept[o->out.nkept++], p, SS_K8S_POD_VICTIM);
        }
    } else if (!r->ok) {
        ss_warn("k8s: cluster %s: cannot list pods to confirm the scale-in: %s", o->t->cluster,
                r->error);
    }
    ss_k8s_pod_list_free(now);
    start_unmark(o, o->final_code);
}

static void start_confirm(op *o)
{
    char err[512];
    o->state = ST_CONFIRM;
    if (calls_reserve(o, 1) != 0) {
        start_unmark(o, o->final_code);
        return;
    }
    int rc = ss_k8s_list_pods(o->t->api, o->t->ns, o->scale.selector, on_confirm_pods,
                              &o->slots[0], &o->calls[0], err, sizeof err);
    if (rc) {
        ss_warn("k8s: cluster %s: cannot confirm the scale-in: %s", o->t->cluster, err);
        start_unmark(o, o->final_code);
    }
}

static void on_timer(uv_timer_t *h)
{
    ss_k8s_backend *b = h->data;
    int64_t now = ss_mono_us();
    /* A step may finish its op (and free it): restart the scan after each. */
    for (int again = 1; again;) {
        again = 0;
        for (op *o = b->ops; o; o = o->next) {
            if (o->state == ST_FAIL_SOON) {
                finish(o, SS_K8S_FAILED);
                again = 1;
                break;
            }
            if (o->state == ST_WAIT && o->due_us <= now) {
                start_confirm(o);
                again = 1;
                break;
            }
        }
    }
    arm_timer(b);
}

static void arm_timer(ss_k8s_backend *b)
{
    if (b->closing)
        return;
    int64_t first = -1;
    for (op *o = b->ops; o; o = o->next)
        if ((o->state == ST_WAIT || o->state == ST_FAIL_SOON) && (first < 0 || o->due_us < first))
            first = o->due_us;
    if (first < 0) {
        uv_timer_stop(&b->timer);
        return;
    }
    int64_t ms = (first - ss_mono_us() + 999) / 1000;
    uv_update_time(b->loop);
    uv_timer_start(&b->timer, on_timer, ms > 0 ? (uint64_t)ms : 0, 0);
}

/* ---- per-server places ------------------------------------------------------------- */

static void unqueue(op *o)
{
    server *sv = o->t->srv;
    for (op **pp = &sv->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->qnext) {
        if (*pp == o) {
            *pp = o->qnext;
            if (sv->qtail == o)
                sv->qtail = prev;
            o->qnext = NULL;
            return;
        }
    }
}

static void admit(op *o)
{
    server *sv = o->t->srv;
    if (sv->active < sv->cap) {
        sv->active++;
        o->holds_place = 1;
        start_first(o);
        return;
    }
    o->state = ST_QUEUED;
    if (sv->qtail)
        sv->qtail->qnext = o;
    else
        sv->qhead = o;
    sv->qtail = o;
}

/* An operation is past its write (or done): the first queued one starts. */
static void leave_place(op *o)
{
    if (!o->holds_place)
        return;
    server *sv = o->t->srv;
    o->holds_place = 0;
    sv->active--;
    while (!o->b->closing && sv->active < sv->cap && sv->qhead) {
        op *n = sv->qhead;
        sv->qhead = n->qnext;
        if (!sv->qhead)
            sv->qtail = NULL;
        n->qnext = NULL;
        sv->active++;
        n->holds_place = 1;
        start_first(n);
    }
}

/* ---- public ---------------------------------------------------------------------- */

static op *op_new(ss_k8s_backend *b, size_t cluster, ss_k8s_outcome_fn cb, void *arg, int *rc)
{
    *rc = 0;
    if (!b || !cb || b->closing) {
        *rc = b && b->closing ? -ESHUTDOWN : -EINVAL;
        return NULL;
    }
    if (!ss_k8s_backend_serves(b, cluster)) {
        *rc = -ENOENT;
        return NULL;
    }
    target *t = &b->targets[cluster];
    if (t->busy) {
        *rc = -EBUSY;
        return NULL;
    }
    op *o = calloc(1, sizeof *o);
    if (!o) {
        *rc = -ENOMEM;
        return NULL;
    }
    o->b = b;
    o->t = t;
    o->cb = cb;
    o->arg = arg;
    o->t0_us = ss_mono_us();
    o->out.replicas_before = o->out.replicas_after = o->out.target = -1;
    o->out.write_ms = -1;
    return o;
}

static void op_link(op *o)
{
    ss_k8s_backend *b = o->b;
    o->next = b->ops;
    if (b->ops)
        b->ops->prev = o;
    b->ops = o;
    o->t->busy = o;
}

int ss_k8s_backend_read(ss_k8s_backend *b, size_t cluster, ss_k8s_outcome_fn cb, void *arg)
{
    int rc;
    op *o = op_new(b, cluster, cb, arg, &rc);
    if (!o)
        return rc;
    o->read_only = 1;
    op_link(o);
    admit(o);
    return 0;
}

int ss_k8s_backend_resize(ss_k8s_backend *b, size_t cluster, const ss_k8s_request *req,
                          ss_k8s_outcome_fn cb, void *arg)
{
    int rc;
    if (!req || req->desired < 0 || (req->nvictims && !req->victims))
        return -EINVAL;
    op *o = op_new(b, cluster, cb, arg, &rc);
    if (!o)
        return rc;
    o->desired = req->desired;
    o->dry_run = req->dry_run;
    o->blind = req->blind;
    o->out.dry_run = req->dry_run;
    o->decision = strdup(req->decision ? req->decision : "");
    o->victims = calloc(req->nvictims ? req->nvictims : 1, sizeof *o->victims);
    if (!o->decision || !o->victims) {
        op_free(o);
        return -ENOMEM;
    }
    for (size_t i = 0; i < req->nvictims; i++, o->nvictims++)
        if (!(o->victims[i] = strdup(req->victims[i] ? req->victims[i] : ""))) {
            op_free(o);
            return -ENOMEM;
        }
    op_link(o);
    admit(o);
    return 0;
}

/* Ends an operation now: calls in flight are cancelled (their callbacks
 * finish it), one that waits (queued, between polls) fails at once. */
static void op_cancel(op *o)
{
    ss_k8s_backend *b = o->b;
    for (size_t i = 0; i < o->ncalls; i++) {
        if (!o->calls[i])
            continue;
        ss_k8s_call_cancel(o->calls[i]);
        /* o may be gone: the first cancellation can finish it. */
        int alive = 0;
        for (op *x = b->ops; x && !alive; x = x->next)
            alive = x == o;
        if (!alive)
            return;
    }
    fail(o, "cancelled");
}

void ss_k8s_backend_cancel(ss_k8s_backend *b, size_t cluster)
{
    if (b && cluster < b->ntargets && b->targets[cluster].busy)
        op_cancel(b->targets[cluster].busy);
}

static void on_closed(uv_handle_t *h)
{
    ss_k8s_backend *b = h->data;
    void (*done)(void *) = b->done;
    void *arg = b->done_arg;
    free_parts(b);
    free(b);
    if (done)
        done(arg);
}

void ss_k8s_backend_close(ss_k8s_backend *b, void (*done)(void *arg), void *arg)
{
    if (!b || b->closing)
        return;
    b->closing = 1;
    b->done = done;
    b->done_arg = arg;
    /* Cancelling a call runs its callback, which finishes the op (cancelled). */
    while (b->ops)
        op_cancel(b->ops);
    uv_close((uv_handle_t *)&b->timer, on_closed);
}

/* ---- the actuator's backend interface (actuator/backend.h) ----------------------
 * One ss_backend per cluster, as the interface has it; underneath, one
 * ss_k8s_backend per daemon environment, so clusters on one API server share
 * its API client, its rate limiter and its operation queue. */

typedef struct k8s_shared {
    const ss_backend_env *env;
    ss_k8s_backend *b;
    int refs;
    struct k8s_shared *next;
} k8s_shared;

static k8s_shared *shared_envs;   /* the loop's thread only, like everything here */

typedef struct k8s_cluster {
    ss_backend base;
    k8s_shared *sh;
    size_t index;                 /* in env->cfg->clusters */
    struct ss_backend_op *bop;     /* the call in flight, if any */
} k8s_cluster;

struct ss_backend_op {
    k8s_cluster *c;
    ss_backend_done_fn done;
    void *arg;
    int reported;                 /* cancelled: the outcome only frees the bop */
    ss_worker_ref *remove;        /* copies, for the went flags */
    size_t nremove;
    int64_t t0_us;
};

static void op_release(struct ss_backend_op *bop)
{
    if (bop->c->bop == bop)
        bop->c->bop = NULL;
    free(bop->remove);
    free(bop);
}

static void on_k8s_outcome(const ss_k8s_outcome *o, void *arg)
{
    struct ss_backend_op *bop = arg;
    if (bop->reported) {
        op_release(bop);
        return;
    }
    ss_backend_result r;
    ss_backend_result_init(&r);
    unsigned char *went = bop->nremove ? calloc(bop->nremove, 1) : NULL;
    r.replicas_before = o->replicas_before;
    r.replicas_after = o->replicas_after;
    r.duration_us = ss_mono_us() - bop->t0_us;
    if (o->code == SS_K8S_FAILED) {
        ss_backend_fail(&r, o->errnum ? o->errnum : -EIO, "%s", o->error);
    } else if (went) {
        /* A removed worker is one whose pod went; in a dry run, one the
         * API server validated the removal of. */
        const ss_k8s_pod_note *notes = o->dry_run ? o->planned : o->removed;
        size_t n = o->dry_run ? o->nplanned : o->nremoved;
        for (size_t i = 0; i < bop->nremove; i++)
            for (size_t k = 0; k < n; k++)
                if (notes[k].victim && strcmp(notes[k].ip, bop->remove[i].host) == 0)
                    went[i] = 1;
        r.went = went;
    }
    ss_strlcpy(r.note, o->summary, sizeof r.note);   /* cut to the audit's length */
    ss_backend_done_fn done = bop->done;
    void *darg = bop->arg;
    op_release(bop);
    done(darg, &r);
    free(went);
}

static int start_op(ss_backend *base, ss_backend_done_fn done, void *arg, ss_backend_op **out,
                    struct ss_backend_op **bop)
{
    k8s_cluster *c = (k8s_cluster *)base;
    if (out)
        *out = NULL;
    if (!done)
        return -EINVAL;
    if (c->bop)
        return -EBUSY;
    *bop = calloc(1, sizeof **bop);
    if (!*bop)
        return -ENOMEM;
    (*bop)->c = c;
    (*bop)->done = done;
    (*bop)->arg = arg;
    (*bop)->t0_us = ss_mono_us();
    return 0;
}

static int k8s_read_size(ss_backend *base, ss_backend_done_fn done, void *arg, ss_backend_op **out)
{
    k8s_cluster *c = (k8s_cluster *)base;
    struct ss_backend_op *bop;
    int rc = start_op(base, done, arg, out, &bop);
    if (rc)
        return rc;
    if ((rc = ss_k8s_backend_read(c->sh->b, c->index, on_k8s_outcome, bop)) != 0) {
        free(bop);
        return rc;
    }
    c->bop = bop;
    if (out)
        *out = bop;
    return 0;
}

static int k8s_scale(ss_backend *base, const ss_backend_call *call, ss_backend_done_fn done,
                     void *arg, ss_backend_op **out)
{
    k8s_cluster *c = (k8s_cluster *)base;
    struct ss_backend_op *bop;
    if (!call || (call->nremove && !call->remove))
        return -EINVAL;
    int rc = start_op(base, done, arg, out, &bop);
    if (rc)
        return rc;
    const char **hosts = call->nremove ? calloc(call->nremove, sizeof *hosts) : NULL;
    bop->remove = call->nremove ? calloc(call->nremove, sizeof *bop->remove) : NULL;
    if (call->nremove && (!hosts || !bop->remove)) {
        free(hosts);
        op_release(bop);
        return -ENOMEM;
    }
    bop->nremove = call->nremove;
    for (size_t i = 0; i < call->nremove; i++) {
        bop->remove[i] = call->remove[i];
        hosts[i] = bop->remove[i].host;
    }
    /* The mark names who chose the victims and when. */
    char mark[160];
    snprintf(mark, sizeof mark, "%s %lld", base->env->actuator_id ? base->env->actuator_id : "",
             (long long)ss_wall_ms());
    ss_k8s_request q = {
        .desired = call->desired,
        .victims = hosts,
        .nvictims = call->nremove,
        .dry_run = call->dry_run,
        /* Called without workers to shrink only when the actuator allows a
         * blind scale-in (allow_blind_scale_in): the controller chooses. */
        .blind = call->nremove == 0,
        .decision = mark,
    };
    rc = ss_k8s_backend_resize(c->sh->b, c->index, &q, on_k8s_outcome, bop);
    free(hosts);
    if (rc) {
        op_release(bop);
        return rc;
    }
    c->bop = bop;
    if (out)
        *out = bop;
    return 0;
}

static void k8s_cancel(ss_backend_op *bop)
{
    if (!bop || bop->reported)
        return;
    bop->reported = 1;
    k8s_cluster *c = bop->c;
    ss_backend_done_fn done = bop->done;
    void *arg = bop->arg;
    /* The engine reports at once (cancelled); on_k8s_outcome then only frees bop. */
    ss_k8s_backend_cancel(c->sh->b, c->index);
    ss_backend_result r;
    ss_backend_result_init(&r);
    ss_backend_fail(&r, -ECANCELED, "cancelled");
    done(arg, &r);
}

static int k8s_create(const ss_backend_env *env, const ss_cluster_conf *cluster, ss_backend **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    if (!env || !env->cfg || !cluster || cluster < env->cfg->clusters ||
        cluster >= env->cfg->clusters + env->cfg->nclusters) {
        ss_errf(err, errlen, "the cluster is not one of the configuration's");
        return -EINVAL;
    }
    k8s_shared *sh;
    for (sh = shared_envs; sh && sh->env != env; sh = sh->next)
        ;
    if (!sh) {
        sh = calloc(1, sizeof *sh);
        if (!sh)
            return -ENOMEM;
        ss_k8s_backend_opts bo = { .lazy = 1 };
        sh->b = ss_k8s_backend_create(env->loop, env->http, env->cfg, &bo, err, errlen);
        if (!sh->b) {
            free(sh);
            return -EINVAL;
        }
        sh->env = env;
        sh->next = shared_envs;
        shared_envs = sh;
    }
    k8s_cluster *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->index = (size_t)(cluster - env->cfg->clusters);
    int rc = ss_k8s_backend_serve(sh->b, c->index, err, errlen);
    if (rc) {
        free(c);
        if (sh->refs == 0) {   /* made for this one: nothing else uses it */
            for (k8s_shared **pp = &shared_envs; *pp; pp = &(*pp)->next)
                if (*pp == sh) {
                    *pp = sh->next;
                    break;
                }
            ss_k8s_backend_close(sh->b, free, sh);
        }
        return rc;
    }
    c->base.ops = &ss_backend_kubernetes;
    c->base.cluster = cluster;
    c->base.env = env;
    c->sh = sh;
    sh->refs++;
    *out = &c->base;
    return 0;
}

typedef struct closing {
    void (*closed)(void *);
    void *arg;
    k8s_shared *sh;
} closing;

static void on_shared_closed(void *arg)
{
    closing *cl = arg;
    free(cl->sh);
    if (cl->closed)
        cl->closed(cl->arg);
    free(cl);
}

static void k8s_destroy(ss_backend *base, void (*closed)(void *), void *arg)
{
    k8s_cluster *c = (k8s_cluster *)base;
    k8s_shared *sh = c->sh;
    if (c->bop)
        k8s_cancel(c->bop);
    free(c);
    if (--sh->refs > 0) {
        if (closed)
            closed(arg);   /* nothing of this cluster is left on the loop */
        return;
    }
    for (k8s_shared **pp = &shared_envs; *pp; pp = &(*pp)->next)
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    closing *cl = malloc(sizeof *cl);
    if (!cl) {   /* still close; only the notification is lost */
        ss_k8s_backend_close(sh->b, free, sh);
        return;
    }
    *cl = (closing){ closed, arg, sh };
    ss_k8s_backend_close(sh->b, on_shared_closed, cl);
}

const ss_backend_ops ss_backend_kubernetes = {
    .name = "kubernetes",
    /* It removes the workers it is given and never others (fewer when the
     * controller's order would reach a pod not known idle). */
    .caps = SS_BACKEND_PICKS_VICTIMS | SS_BACKEND_DRY_PLANS,
    .create = k8s_create,
    .read_size = k8s_read_size,
    .scale = k8s_scale,
    .cancel = k8s_cancel,
    .destroy = k8s_destroy,
};
