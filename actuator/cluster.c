/* cluster.c: one cluster's decisions and its action in flight (see
 * cluster.h). Scale-in safety lives here: victims are chosen from the
 * master's /json/ (plan.c), decommissioned through the master, waited for,
 * and re-checked right before the backend removes them; fewer removals is
 * always the answer when something is uncertain. Scale-up goes straight to
 * the backend. */
#include "actuator/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actuator/plan.h"
#include "actuator/spark.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

static const char *const stage_names[ACT_STAGE_COUNT] = {
    "idle", "read_size", "read_master", "precheck", "decommission", "wait", "recheck", "call",
};

const char *act_stage_name(act_stage s)
{
    return s >= 0 && s < ACT_STAGE_COUNT ? stage_names[s] : "?";
}

static const char *const fail_names[ACT_FAIL_COUNT] = {
    "backend", "backend_timeout", "read_size", "unknown_size", "master_unreachable",
    "decommission_refused", "decommission_none", "decommission_error", "no_backend",
    "unknown_cluster", "bad_record",
};

const char *act_fail_name(act_fail f)
{
    return f >= 0 && f < ACT_FAIL_COUNT ? fail_names[f] : "?";
}

/* A decision with its place in Kafka. */
typedef struct held {
    int set;
    ss_decision d;
    int32_t partition;
    int64_t offset;
    int64_t ts_ms;
} held;

struct act_cluster {
    const act_env *env;
    const ss_cluster_conf *conf;
    const ss_backend_ops *ops;          /* NULL: kind none, or not in this build */
    ss_backend *backend;
    ss_spark *spark;                    /* NULL without spark_master */
    uv_timer_t timer;                   /* decommission wait */
    int closing;
    int stopped;                        /* partition leaving: nothing new starts */
    int kick_wanted;
    void (*closed)(void *);
    void *closed_arg;
    int parts_open;

    plan_history hist;
    int32_t partition;
    held pending;

    /* the action in flight */
    int busy;
    held cur;
    act_stage stage;
    int64_t stage_since_ms;
    int64_t t0_us;
    int dry;
    int current;                        /* replicas before, -1 unknown */
    int size_from_backend;
    int k;                              /* workers to remove */
    plan_victims pv;
    int preempted;
    uint64_t preempted_by;
    int stopping;
    int64_t wait_deadline_us;
    ss_backend_op *bop;
    ss_spark_op *sop;
    ss_actuation_result *audit;         /* being filled (large: heap) */

    /* for the status page */
    act_cluster_view last;
    char last_note[SS_DECISION_REASON_MAX];
    char last_error[SS_DECISION_REASON_MAX];
};

static void start_action(act_cluster *cl);

/* ---- reporting ---- */

static void skeleton(act_cluster *cl, const held *h, ss_actuation_result *r, int outcome)
{
    memset(r, 0, sizeof *r);
    snprintf(r->cluster, sizeof r->cluster, "%s", h->d.cluster);
    r->decision_epoch = h->d.producer_epoch;
    r->decision_sequence = h->d.sequence;
    r->outcome = outcome;
    r->replicas_before = -1;
    r->replicas_after = -1;
    r->desired_workers = h->d.desired_workers;
    r->handled_at_ms = ss_wall_ms();
    snprintf(r->actuator_id, sizeof r->actuator_id, "%s", cl->env->backend.actuator_id);
    snprintf(r->backend, sizeof r->backend, "%s", cl->ops ? cl->ops->name : "none");
}

/* Gives the answer for h to the daemon and keeps what the status shows. */
static void report(act_cluster *cl, held *h, const ss_actuation_result *r)
{
    act_stats *st = cl->env->stats;
    if (r) {
        if (r->outcome >= 0 && r->outcome < SS_OUTCOME_COUNT)
            st->outcomes[r->outcome]++;
        cl->last.has_last = 1;
        cl->last.last_outcome = r->outcome;
        cl->last.last_seq = r->decision_sequence;
        snprintf(cl->last_note, sizeof cl->last_note, "%s", r->note);
        snprintf(cl->last_error, sizeof cl->last_error, "%s", r->error);
        if (r->outcome == SS_OUTCOME_APPLIED) {
            cl->last.has_applied = 1;
            cl->last.applied_epoch = r->decision_epoch;
            cl->last.applied_seq = r->decision_sequence;
            cl->last.applied_desired = r->desired_workers;
            cl->last.replicas_before = r->replicas_before;
            cl->last.replicas_after = r->replicas_after;
            cl->last.applied_at_ms = r->handled_at_ms;
            if (h->ts_ms > 0)
                ss_hist_add(&st->apply_latency, (ss_wall_ms() - h->ts_ms) * 1000);
        }
        ss_log(r->outcome == SS_OUTCOME_FAILED ? SS_LOG_WARN : SS_LOG_DEBUG,
               "cluster %s: decision #%" PRIu64 " (desired %d): %s%s%s%s%s", cl->conf->name,
               r->decision_sequence, r->desired_workers, ss_outcome_name(r->outcome),
               r->note[0] ? ": " : "", r->note, r->error[0] ? ": " : "", r->error);
    } else {
        st->abandoned++;
    }
    int32_t p = h->partition;
    int64_t off = h->offset;
    ss_decision_release(&h->d);
    h->set = 0;
    cl->env->finished(cl->env->ctx, cl, p, off, r);
}

/* Audits h at once with outcome (no action). */
static void report_now(act_cluster *cl, held *h, int outcome, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_now(act_cluster *cl, held *h, int outcome, const char *fmt, ...)
{
    ss_actuation_result *r = malloc(sizeof *r);
    if (!r) {
        report(cl, h, NULL);   /* out of memory: left for a later reading */
        return;
    }
    skeleton(cl, h, r, outcome);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof r->note, fmt, ap);
    va_end(ap);
    report(cl, h, r);
    free(r);
}

static void maybe_idle(act_cluster *cl)
{
    if (!cl->busy && !cl->pending.set)
        cl->env->idle(cl->env->ctx, cl);
}

static void set_stage(act_cluster *cl, act_stage s)
{
    cl->stage = s;
    cl->stage_since_ms = ss_wall_ms();
}

/* Ends the action: its audit goes out (or, audit NULL, it is abandoned). */
static void end_action(act_cluster *cl, int abandon)
{
    uv_timer_stop(&cl->timer);
    cl->bop = NULL;
    cl->sop = NULL;
    cl->env->stats->actions_in_flight--;
    if (abandon) {
        report(cl, &cl->cur, NULL);
    } else {
        report(cl, &cl->cur, cl->audit);
    }
    free(cl->audit);
    cl->audit = NULL;
    plan_victims_free(&cl->pv);
    cl->busy = 0;
    cl->stopping = 0;
    cl->preempted = 0;
    set_stage(cl, ACT_IDLE);
    if (cl->pending.set && !cl->stopped && !cl->closing && !cl->kick_wanted) {
        cl->kick_wanted = 1;
        cl->env->want_kick(cl->env->ctx, cl);
    }
    maybe_idle(cl);
}

static void fail(act_cluster *cl, act_fail why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(act_cluster *cl, act_fail why, const char *fmt, ...)
{
    ss_actuation_result *r = cl->audit;
    r->outcome = SS_OUTCOME_FAILED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    cl->env->stats->failed[why]++;
    end_action(cl, 0);
}

/* The workers that stay, with their reasons, into the audit. */
static void audit_kept(act_cluster *cl)
{
    ss_actuation_result *r = cl->audit;
    r->workers_to_remove = cl->k > 0 ? cl->k : 0;
    r->nkept = cl->pv.nkept;
    memcpy(r->kept, cl->pv.kept, cl->pv.nkept * sizeof cl->pv.kept[0]);
    cl->env->stats->workers_kept += cl->pv.kept_total;
}

/* Nothing is removed: the safe answer, said with its reason. */
static void nothing_removed(act_cluster *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void nothing_removed(act_cluster *cl, const char *fmt, ...)
{
    ss_actuation_result *r = cl->audit;
    r->outcome = cl->dry ? SS_OUTCOME_DRY_RUN : SS_OUTCOME_APPLIED;
    r->replicas_before = r->replicas_after = cl->current;
    audit_kept(cl);
    r->workers_removed = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof r->note, fmt, ap);
    va_end(ap);
    end_action(cl, 0);
}

/* ---- the backend call ---- */

static void on_call(void *arg, const ss_backend_result *res)
{
    act_cluster *cl = arg;
    if (res->status == -ECANCELED)
        return;   /* the canceller ends the action */
    cl->bop = NULL;
    act_stats *st = cl->env->stats;
    ss_hist_add(&st->call_latency, res->duration_us);
    ss_actuation_result *r = cl->audit;
    r->replicas_before = res->replicas_before >= 0 ? res->replicas_before : cl->current;
    r->replicas_after = res->replicas_after;
    if (res->has_exec) {
        r->has_exec = 1;
        r->exec_exit_status = res->exit_status;
        r->exec_signal = res->signal;
        r->exec_timed_out = res->timed_out;
        snprintf(r->exec_output, sizeof r->exec_output, "%s", res->output);
    }
    audit_kept(cl);
    if (res->status < 0) {
        fail(cl, res->status == -ETIMEDOUT ? ACT_FAIL_BACKEND_TIMEOUT : ACT_FAIL_BACKEND, "%s",
             res->error);
        return;
    }
    size_t went = 0;
    for (size_t i = 0; i < cl->pv.n; i++) {
        if (res->went && !res->went[i])
            continue;
        if (!cl->dry && r->nremoved < SS_AUDIT_MAX_WORKERS)
            r->removed[r->nremoved++] = cl->pv.v[i].ref;
        went++;
    }
    r->outcome = cl->dry ? SS_OUTCOME_DRY_RUN : SS_OUTCOME_APPLIED;
    if (!cl->dry && cl->pv.n == 0 && cl->k > 0 && r->replicas_before > r->replicas_after &&
        r->replicas_after >= 0)
        went = (size_t)(r->replicas_before - r->replicas_after);   /* blind: the backend chose */
    r->workers_removed = cl->dry ? 0 : (int32_t)went;
    if (!cl->dry)
        st->workers_removed += went;
    size_t n = strlen(r->note);
    if (res->note[0])
        snprintf(r->note + n, sizeof r->note - n, "%s%s", n ? "; " : "", res->note);
    end_action(cl, 0);
}

static void call_backend(act_cluster *cl, int desired)
{
    set_stage(cl, ACT_CALL);
    ss_worker_ref *rm = NULL;
    if (cl->pv.n) {
        rm = calloc(cl->pv.n, sizeof *rm);
        if (!rm) {
            fail(cl, ACT_FAIL_BACKEND, "out of memory");
            return;
        }
        for (size_t i = 0; i < cl->pv.n; i++)
            rm[i] = cl->pv.v[i].ref;
    }
    ss_backend_call call = {
        .desired = desired,
        .current = cl->current,
        .remove = rm,
        .nremove = cl->pv.n,
        .dry_run = cl->dry,
    };
    if (cl->cur.ts_ms > 0)
        ss_hist_add(&cl->env->stats->to_call_latency, (ss_wall_ms() - cl->cur.ts_ms) * 1000);
    int rc = cl->ops->scale(cl->backend, &call, on_call, cl, &cl->bop);
    free(rm);
    if (rc < 0)
        fail(cl, ACT_FAIL_BACKEND, "%s backend: cannot start the call: %s", cl->ops->name, strerror(-rc));
}

/* Removes the victims left in pv (none: nothing removed). */
static void remove_victims(act_cluster *cl, const char *why_none)
{
    if (cl->pv.n == 0) {
        nothing_removed(cl, "nothing removed: %s", why_none);
        return;
    }
    int desired = cl->current - (int)cl->pv.n;
    if (desired < cl->cur.d.desired_workers)
        desired = cl->cur.d.desired_workers;
    snprintf(cl->audit->note, sizeof cl->audit->note, "%s %zu of %d: %.400s",
             cl->dry ? "dry run: would remove" : "removing", cl->pv.n, cl->k, cl->pv.note);
    call_backend(cl, desired);
}

/* ---- scale-in through the master ---- */

static void on_recheck(void *arg, ss_master_state *m, const char *url, const char *err, int cancelled)
{
    act_cluster *cl = arg;
    (void)url;
    if (cancelled)
        return;
    cl->sop = NULL;
    if (!m) {
        cl->audit->workers_to_remove = cl->k;
        fail(cl, ACT_FAIL_MASTER_UNREACHABLE,
             "spark master unreachable right before removal (%s): nothing removed", err);
        return;
    }
    int need_dec = cl->conf->target.scale_in.decommission && !cl->dry;
    size_t dropped = plan_recheck(&cl->pv, m, need_dec);
    ss_master_state_free(m);
    if (dropped) {
        size_t n = strlen(cl->pv.note);
        snprintf(cl->pv.note + n, sizeof cl->pv.note - n, "; %zu dropped at the re-check", dropped);
    }
    if (cl->preempted) {
        size_t n = strlen(cl->pv.note);
        snprintf(cl->pv.note + n, sizeof cl->pv.note - n,
                 "; stopped early: newer decision #%" PRIu64 " wants more workers", cl->preempted_by);
    } else if (cl->stopping) {
        size_t n = strlen(cl->pv.note);
        snprintf(cl->pv.note + n, sizeof cl->pv.note - n, "; stopped early: partition leaving");
    }
    remove_victims(cl, cl->pv.note);
}

static void recheck(act_cluster *cl)
{
    set_stage(cl, ACT_RECHECK);
    int rc = ss_spark_read(cl->spark, on_recheck, cl, &cl->sop);
    if (rc < 0)
        fail(cl, ACT_FAIL_MASTER_UNREACHABLE, "cannot read the master: %s; nothing removed", strerror(-rc));
}

static void wait_tick(uv_timer_t *t);

static void on_wait_read(void *arg, ss_master_state *m, const char *url, const char *err, int cancelled)
{
    act_cluster *cl = arg;
    (void)url;
    if (cancelled)
        return;
    cl->sop = NULL;
    if (m) {
        size_t done = plan_decommissioned(&cl->pv, m);
        ss_master_state_free(m);
        if (done == cl->pv.n) {
            recheck(cl);
            return;
        }
    } else {
        ss_debug("cluster %s: decommission wait: %s", cl->conf->name, err);
    }
    if (cl->preempted || cl->stopping || ss_mono_us() >= cl->wait_deadline_us) {
        recheck(cl);
        return;
    }
    uv_timer_start(&cl->timer, wait_tick, (uint64_t)cl->env->wait_poll_ms, 0);
}

static void wait_tick(uv_timer_t *t)
{
    act_cluster *cl = t->data;
    if (cl->preempted || cl->stopping) {
        recheck(cl);
        return;
    }
    int rc = ss_spark_read(cl->spark, on_wait_read, cl, &cl->sop);
    if (rc < 0)
        recheck(cl);
}

static void on_kill(void *arg, ss_spark_kill k, int status, const char *err, int cancelled)
{
    act_cluster *cl = arg;
    (void)status;
    if (cancelled)
        return;
    cl->sop = NULL;
    if (k == SS_KILL_REFUSED) {
        cl->audit->workers_to_remove = cl->k;
        fail(cl, ACT_FAIL_DECOMMISSION_REFUSED, "decommission refused by the master (%s): nothing removed", err);
        return;
    }
    if (k == SS_KILL_NONE) {
        cl->audit->workers_to_remove = cl->k;
        fail(cl, ACT_FAIL_DECOMMISSION_NONE, "decommission found nothing (%s): nothing removed", err);
        return;
    }
    if (k == SS_KILL_ERROR) {
        /* The request may or may not have reached the master: the re-check
         * removes only what really is DECOMMISSIONED. */
        ss_warn("cluster %s: decommission request failed: %s", cl->conf->name, err);
        cl->env->stats->failed[ACT_FAIL_DECOMMISSION_ERROR]++;
        recheck(cl);
        return;
    }
    set_stage(cl, ACT_WAIT);
    cl->wait_deadline_us = ss_mono_us() + (int64_t)cl->conf->target.scale_in.decommission_timeout_s * 1000000;
    if (cl->preempted || cl->stopping) {
        recheck(cl);
        return;
    }
    uv_timer_start(&cl->timer, wait_tick, (uint64_t)cl->env->wait_poll_ms, 0);
}

static void decommission(act_cluster *cl)
{
    /* Hosts once each, skipping victims already DECOMMISSIONED. */
    const char **hosts = calloc(cl->pv.n, sizeof *hosts);
    size_t n = 0;
    for (size_t i = 0; hosts && i < cl->pv.n; i++) {
        if (cl->pv.v[i].decommissioned)
            continue;
        int seen = 0;
        for (size_t j = 0; j < n; j++)
            seen |= strcasecmp(hosts[j], cl->pv.v[i].ref.host) == 0;
        if (!seen)
            hosts[n++] = cl->pv.v[i].ref.host;
    }
    if (!hosts) {
        fail(cl, ACT_FAIL_DECOMMISSION_ERROR, "out of memory");
        return;
    }
    if (n == 0) {
        free(hosts);
        recheck(cl);   /* all of them were decommissioned already */
        return;
    }
    set_stage(cl, ACT_DECOMMISSION);
    cl->env->stats->decommission_requests++;
    int rc = ss_spark_decommission(cl->spark, hosts, n, on_kill, cl, &cl->sop);
    free(hosts);
    if (rc < 0)
        fail(cl, ACT_FAIL_DECOMMISSION_ERROR, "cannot send the decommission request: %s", strerror(-rc));
}

/* The backend's dry run said which victims a real call would remove: only
 * those are decommissioned (a worker decommissioned in a pod that stays
 * would take no work again). */
static void on_precheck(void *arg, const ss_backend_result *res)
{
    act_cluster *cl = arg;
    if (res->status == -ECANCELED)
        return;
    cl->bop = NULL;
    if (res->status < 0) {
        fail(cl, res->status == -ETIMEDOUT ? ACT_FAIL_BACKEND_TIMEOUT : ACT_FAIL_BACKEND,
             "%s backend dry run before decommission: %s; nothing removed", cl->ops->name, res->error);
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < cl->pv.n; i++)
        if (!res->went || res->went[i])
            cl->pv.v[kept++] = cl->pv.v[i];
    size_t stays = cl->pv.n - kept;
    cl->pv.n = kept;
    if (stays) {
        size_t n = strlen(cl->pv.note);
        snprintf(cl->pv.note + n, sizeof cl->pv.note - n,
                 "; %zu kept: the %s backend would not remove them (%.200s)", stays, cl->ops->name,
                 res->note);
    }
    if (cl->pv.n == 0) {
        nothing_removed(cl, "nothing removed: %s", cl->pv.note);
        return;
    }
    decommission(cl);
}

static void precheck(act_cluster *cl)
{
    ss_worker_ref *rm = calloc(cl->pv.n, sizeof *rm);
    if (!rm) {
        fail(cl, ACT_FAIL_BACKEND, "out of memory");
        return;
    }
    for (size_t i = 0; i < cl->pv.n; i++)
        rm[i] = cl->pv.v[i].ref;
    int desired = cl->current - (int)cl->pv.n;
    if (desired < cl->cur.d.desired_workers)
        desired = cl->cur.d.desired_workers;
    ss_backend_call call = {
        .desired = desired, .current = cl->current, .remove = rm, .nremove = cl->pv.n, .dry_run = 1,
    };
    set_stage(cl, ACT_PRECHECK);
    int rc = cl->ops->scale(cl->backend, &call, on_precheck, cl, &cl->bop);
    free(rm);
    if (rc < 0)
        fail(cl, ACT_FAIL_BACKEND, "%s backend: cannot start the dry run: %s", cl->ops->name, strerror(-rc));
}

/* Whether this backend may be asked to remove workers it cannot choose. */
static int blind_ok(const act_cluster *cl)
{
    return cl->conf->target.scale_in.allow_blind_scale_in;
}

static void on_choose(void *arg, ss_master_state *m, const char *url, const char *err, int cancelled)
{
    act_cluster *cl = arg;
    (void)url;
    if (cancelled)
        return;
    cl->sop = NULL;
    if (!m) {
        cl->audit->workers_to_remove = cl->k;
        fail(cl, ACT_FAIL_MASTER_UNREACHABLE, "spark master unreachable (%s): nothing removed", err);
        return;
    }
    const ss_decision *d = &cl->cur.d;
    int rc = plan_choose_victims(m, d->removable_workers, d->nremovable_workers, cl->k, &cl->pv);
    ss_master_state_free(m);
    if (rc < 0) {
        fail(cl, ACT_FAIL_MASTER_UNREACHABLE, "out of memory choosing victims");
        return;
    }
    if (cl->pv.n == 0) {
        nothing_removed(cl, "nothing removed: %s", cl->pv.note);
        return;
    }
    if (cl->preempted) {
        plan_victims_free(&cl->pv);
        nothing_removed(cl, "nothing removed: newer decision #%" PRIu64 " wants more workers",
                        cl->preempted_by);
        return;
    }
    if (cl->conf->target.scale_in.decommission && !cl->dry && (cl->ops->caps & SS_BACKEND_DRY_PLANS))
        precheck(cl);
    else if (cl->conf->target.scale_in.decommission && !cl->dry)
        decommission(cl);
    else
        remove_victims(cl, cl->pv.note);   /* this read is the one right before removal */
}

static void scale_in(act_cluster *cl)
{
    const ss_decision *d = &cl->cur.d;
    const ss_scale_in_conf *si = &cl->conf->target.scale_in;
    int picks = cl->ops->caps & SS_BACKEND_PICKS_VICTIMS;
    if (!picks && !blind_ok(cl)) {
        nothing_removed(cl, "nothing removed: the %s backend cannot choose which workers go "
                            "(set allow_blind_scale_in: true to let it)",
                        cl->ops->name);
        return;
    }
    if (cl->spark) {
        set_stage(cl, ACT_READ_MASTER);
        int rc = ss_spark_read(cl->spark, on_choose, cl, &cl->sop);
        if (rc < 0)
            fail(cl, ACT_FAIL_MASTER_UNREACHABLE, "cannot read the master: %s; nothing removed",
                 strerror(-rc));
        return;
    }
    int rc = plan_victims_from_decision(d->removable_workers, d->nremovable_workers, cl->k,
                                        d->decided_at_ms, ss_wall_ms(),
                                        (int64_t)si->max_decision_age_s * 1000, &cl->pv);
    if (rc < 0) {
        fail(cl, ACT_FAIL_BACKEND, "out of memory");
        return;
    }
    if (cl->pv.n) {
        remove_victims(cl, "");
        return;
    }
    if (blind_ok(cl)) {
        snprintf(cl->audit->note, sizeof cl->audit->note,
                 "blind scale-in (allow_blind_scale_in): the backend picks %d worker(s); %.400s", cl->k,
                 cl->pv.note);
        call_backend(cl, d->desired_workers);
        return;
    }
    nothing_removed(cl, "nothing removed: no spark_master and %s (allow_blind_scale_in is false)",
                    cl->pv.note);
}

/* ---- start ---- */

static void plan_and_act(act_cluster *cl)
{
    const ss_decision *d = &cl->cur.d;
    if (cl->current < 0) {
        if (!blind_ok(cl)) {
            fail(cl, ACT_FAIL_UNKNOWN_SIZE,
                 "the current size is unknown (the backend cannot read it and the decision does not "
                 "carry it): a scale-in cannot be told from a scale-up");
            return;
        }
        call_backend(cl, d->desired_workers);
        return;
    }
    cl->k = cl->current - d->desired_workers;
    cl->audit->replicas_before = cl->current;
    if (cl->k > 0 && d->current_workers < 0) {
        /* sparkscaled decided before it knew the size (after its start,
         * before the master's first word): such a decision may only grow */
        nothing_removed(cl, "the decision was made without knowing the cluster's size "
                            "(current_workers -1): grow-only, nothing removed (at %d, wanted %d)",
                        cl->current, d->desired_workers);
        return;
    }
    if (cl->k <= 0) {
        if (cl->k == 0 && cl->size_from_backend) {
            ss_actuation_result *r = cl->audit;
            r->outcome = cl->dry ? SS_OUTCOME_DRY_RUN : SS_OUTCOME_APPLIED;
            r->replicas_before = r->replicas_after = cl->current;
            snprintf(r->note, sizeof r->note, "already at %d", cl->current);
            end_action(cl, 0);
            return;
        }
        call_backend(cl, d->desired_workers);   /* scale-up waits for nothing */
        return;
    }
    scale_in(cl);
}

static void on_size(void *arg, const ss_backend_result *res)
{
    act_cluster *cl = arg;
    if (res->status == -ECANCELED)
        return;
    cl->bop = NULL;
    if (res->status == -ENOTSUP || (res->status == 0 && res->replicas_before < 0)) {
        cl->current = cl->cur.d.current_workers;
    } else if (res->status < 0) {
        fail(cl, ACT_FAIL_READ_SIZE, "reading the current size: %s", res->error);
        return;
    } else {
        cl->current = res->replicas_before;
        cl->size_from_backend = 1;
    }
    plan_and_act(cl);
}

static void start_action(act_cluster *cl)
{
    cl->cur = cl->pending;
    cl->pending.set = 0;
    memset(&cl->pending.d, 0, sizeof cl->pending.d);
    cl->busy = 1;
    cl->env->stats->actions_in_flight++;
    cl->t0_us = ss_mono_us();
    cl->k = 0;
    cl->current = -1;
    cl->size_from_backend = 0;
    cl->preempted = 0;
    cl->stopping = 0;
    memset(&cl->pv, 0, sizeof cl->pv);
    const ss_decision *d = &cl->cur.d;
    cl->dry = d->dry_run || cl->conf->target.dry_run;
    set_stage(cl, ACT_READ_SIZE);
    cl->audit = malloc(sizeof *cl->audit);
    if (!cl->audit) {
        end_action(cl, 1);
        return;
    }
    skeleton(cl, &cl->cur, cl->audit, SS_OUTCOME_FAILED);
    int64_t now = ss_wall_ms();
    if (d->expires_at_ms > 0 && now > d->expires_at_ms) {
        cl->audit->outcome = SS_OUTCOME_EXPIRED;
        snprintf(cl->audit->note, sizeof cl->audit->note, "expired %lld ms before it could start",
                 (long long)(now - d->expires_at_ms));
        end_action(cl, 0);
        return;
    }
    if (!cl->ops) {
        if (cl->conf->target.kind == SS_TARGET_NONE) {
            cl->audit->outcome = SS_OUTCOME_DRY_RUN;
            snprintf(cl->audit->note, sizeof cl->audit->note, "target kind none: nothing to resize");
            end_action(cl, 0);
        } else {
            fail(cl, ACT_FAIL_NO_BACKEND, "no backend for kind %s in this build",
                 cl->conf->target.kind == SS_TARGET_KUBERNETES ? "kubernetes" : "?");
        }
        return;
    }
    int rc = cl->ops->read_size(cl->backend, on_size, cl, &cl->bop);
    if (rc == -ENOTSUP) {
        cl->current = d->current_workers;
        plan_and_act(cl);
    } else if (rc < 0) {
        fail(cl, ACT_FAIL_READ_SIZE, "reading the current size: %s", strerror(-rc));
    }
}

/* ---- decisions in ---- */

void act_cluster_offer(act_cluster *cl, ss_decision *d, int32_t partition, int64_t offset,
                       int64_t timestamp_ms)
{
    held h = { .set = 1, .d = *d, .partition = partition, .offset = offset, .ts_ms = timestamp_ms };
    memset(d, 0, sizeof *d);   /* its arrays are ours now */
    cl->env->stats->offered++;
    /* A record arrives only from a partition we own: the cluster is live
     * again if an earlier owner's stop left it stopped. */
    if (!cl->busy)
        cl->stopped = 0;
    cl->partition = partition;
    cl->last.has_seen = 1;
    cl->last.seen_epoch = h.d.producer_epoch;
    cl->last.seen_seq = h.d.sequence;
    cl->last.seen_desired = h.d.desired_workers;
    cl->last.seen_at_ms = h.d.decided_at_ms;
    plan_verdict v = plan_classify(&cl->hist, h.d.producer_epoch, h.d.sequence, h.d.expires_at_ms,
                                   ss_wall_ms());
    if (v != PLAN_DUPLICATE)
        plan_history_note(&cl->hist, h.d.producer_epoch, h.d.sequence);
    switch (v) {
    case PLAN_DUPLICATE:
        report_now(cl, &h, SS_OUTCOME_SKIPPED_DUPLICATE, "decision epoch %lld #%" PRIu64 " seen before",
                   (long long)h.d.producer_epoch, h.d.sequence);
        return;
    case PLAN_STALE:
        report_now(cl, &h, SS_OUTCOME_SKIPPED_STALE,
                   "older than a decision already seen from the same sparkscaled (epoch %lld)",
                   (long long)h.d.producer_epoch);
        return;
    case PLAN_EXPIRED:
        report_now(cl, &h, SS_OUTCOME_EXPIRED, "arrived %lld ms after it expired",
                   (long long)(ss_wall_ms() - h.d.expires_at_ms));
        return;
    case PLAN_NEW:
        break;
    }
    if (cl->pending.set) {
        ss_actuation_result *r = malloc(sizeof *r);
        if (r) {
            skeleton(cl, &cl->pending, r, SS_OUTCOME_SUPERSEDED);
            r->superseded_by = h.d.sequence;
            snprintf(r->note, sizeof r->note, "superseded by #%" PRIu64 " (desired %d) before it started",
                     h.d.sequence, h.d.desired_workers);
        }
        report(cl, &cl->pending, r);
        free(r);
    }
    cl->pending = h;
    /* A scale-in in flight stops taking more workers away when a newer
     * decision wants more than it aims for (decommissioned workers still go). */
    if (cl->busy && cl->k > 0 && !cl->preempted && h.d.desired_workers > cl->cur.d.desired_workers) {
        cl->preempted = 1;
        cl->preempted_by = h.d.sequence;
        cl->env->stats->preempted++;
        ss_info("cluster %s: decision #%" PRIu64 " wants %d workers: the scale-in in flight (#%" PRIu64
                ", stage %s) stops removing more",
                cl->conf->name, h.d.sequence, h.d.desired_workers, cl->cur.d.sequence,
                act_stage_name(cl->stage));
        if (cl->stage == ACT_WAIT && uv_is_active((uv_handle_t *)&cl->timer)) {
            uv_timer_stop(&cl->timer);
            recheck(cl);
        } else if (cl->stage == ACT_READ_MASTER && cl->sop) {
            ss_spark_op *op = cl->sop;
            cl->sop = NULL;
            ss_spark_cancel(op);
            nothing_removed(cl, "nothing removed: newer decision #%" PRIu64 " wants more workers",
                            cl->preempted_by);
        }
    }
    if (!cl->busy && !cl->stopped && !cl->kick_wanted) {
        cl->kick_wanted = 1;
        cl->env->want_kick(cl->env->ctx, cl);
    }
}

void act_cluster_kick(act_cluster *cl)
{
    cl->kick_wanted = 0;
    if (!cl->busy && cl->pending.set && !cl->stopped && !cl->closing)
        start_action(cl);
}

void act_cluster_note_handled(act_cluster *cl, const ss_bus_handled *h)
{
    plan_history_note(&cl->hist, h->epoch, h->sequence);
    if (h->outcome == SS_OUTCOME_APPLIED) {
        cl->last.has_applied = 1;
        cl->last.applied_epoch = h->epoch;
        cl->last.applied_seq = h->sequence;
        cl->last.applied_desired = h->desired_workers;
        cl->last.replicas_after = h->replicas_after;
        cl->last.applied_at_ms = h->handled_at_ms;
    }
}

/* Cancels what runs now (its callback is ignored). */
static void cancel_io(act_cluster *cl)
{
    uv_timer_stop(&cl->timer);
    if (cl->sop) {
        ss_spark_op *op = cl->sop;
        cl->sop = NULL;
        ss_spark_cancel(op);
    }
    if (cl->bop) {
        ss_backend_op *op = cl->bop;
        cl->bop = NULL;
        cl->ops->cancel(op);
    }
}

void act_cluster_stop(act_cluster *cl, int lost)
{
    cl->stopped = 1;
    if (cl->pending.set)
        report(cl, &cl->pending, NULL);
    if (!cl->busy) {
        maybe_idle(cl);
        return;
    }
    if (lost) {
        cancel_io(cl);
        end_action(cl, 1);
        return;
    }
    cl->stopping = 1;
    switch (cl->stage) {
    case ACT_READ_SIZE:
    case ACT_READ_MASTER:
        /* Nothing changed yet: leave the decision to the next owner. */
        cancel_io(cl);
        end_action(cl, 1);
        break;
    case ACT_WAIT:
        if (uv_is_active((uv_handle_t *)&cl->timer)) {
            uv_timer_stop(&cl->timer);
            recheck(cl);
        }
        break;
    default:
        /* The decommission request, the re-check and the backend call
         * finish (each bounded by its timeout). */
        break;
    }
}

void act_cluster_resume(act_cluster *cl)
{
    cl->stopped = 0;
}

int act_cluster_busy(const act_cluster *cl) { return cl->busy || cl->pending.set; }
int32_t act_cluster_partition(const act_cluster *cl) { return cl->partition; }
const char *act_cluster_name(const act_cluster *cl) { return cl->conf->name; }

void act_cluster_view_get(const act_cluster *cl, act_cluster_view *v)
{
    *v = cl->last;
    v->name = cl->conf->name;
    v->backend = cl->ops ? cl->ops->name : "none";
    v->partition = cl->partition;
    v->last_note = cl->last_note;
    v->last_error = cl->last_error;
    v->in_flight = cl->busy;
    v->stage = cl->busy ? cl->stage : ACT_IDLE;
    v->flight_seq = cl->busy ? cl->cur.d.sequence : 0;
    v->flight_desired = cl->busy ? cl->cur.d.desired_workers : 0;
    v->stage_since_ms = cl->busy ? cl->stage_since_ms : 0;
    v->victims = cl->busy ? cl->pv.n : 0;
    v->has_pending = cl->pending.set;
    v->pending_seq = cl->pending.set ? cl->pending.d.sequence : 0;
}

/* ---- life ---- */

act_cluster *act_cluster_create(const act_env *env, const ss_cluster_conf *conf, char *err, size_t errlen)
{
    act_cluster *cl = calloc(1, sizeof *cl);
    if (!cl) {
        ss_errf(err, errlen, "out of memory");
        return NULL;
    }
    cl->env = env;
    cl->conf = conf;
    cl->partition = -1;
    cl->ops = ss_backend_for(conf->target.kind);
    if (cl->ops) {
        int rc = cl->ops->create(&env->backend, conf, &cl->backend, err, errlen);
        if (rc < 0) {
            free(cl);
            return NULL;
        }
    } else if (conf->target.kind != SS_TARGET_NONE) {
        ss_warn("cluster %s: no backend for its target kind in this build: its decisions fail",
                conf->name);
    }
    if (conf->nspark_master)
        cl->spark = ss_spark_create(&env->backend, conf);
    uv_timer_init(env->backend.loop, &cl->timer);
    cl->timer.data = cl;
    return cl;
}

static void part_closed(act_cluster *cl)
{
    if (--cl->parts_open > 0)
        return;
    void (*closed)(void *) = cl->closed;
    void *arg = cl->closed_arg;
    free(cl);
    if (closed)
        closed(arg);
}

static void on_timer_closed(uv_handle_t *h) { part_closed(h->data); }
static void on_backend_closed(void *arg) { part_closed(arg); }

void act_cluster_destroy(act_cluster *cl, void (*closed)(void *), void *arg)
{
    cl->closing = 1;
    cl->closed = closed;
    cl->closed_arg = arg;
    if (cl->pending.set)
        report(cl, &cl->pending, NULL);
    if (cl->busy) {
        cancel_io(cl);
        end_action(cl, 1);
    }
    ss_spark_destroy(cl->spark);
    cl->spark = NULL;
    cl->parts_open = 1;
    uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
    if (cl->backend) {
        cl->parts_open++;
        cl->ops->destroy(cl->backend, on_backend_closed, cl);
        cl->backend = NULL;
    }
}
