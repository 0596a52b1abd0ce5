/* decide.c: policy_evaluate, the per-cluster rule (README, "The decision"):
 * D = clamp(max(N, A) + I, min, max), up at once, down through a window. */
#include "policy/policy.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[POLICY_R_COUNT] = {
    [POLICY_R_UP] = "up",
    [POLICY_R_DOWN] = "down",
    [POLICY_R_STEADY] = "steady",
    [POLICY_R_AT_MIN] = "at_min",
    [POLICY_R_AT_MAX] = "at_max",
    [POLICY_R_HOLD_WINDOW] = "hold_window",
    [POLICY_R_HOLD_TOLERANCE] = "hold_tolerance",
    [POLICY_R_HOLD_STALE] = "hold_stale",
    [POLICY_R_HOLD_NO_DATA] = "hold_no_data",
    [POLICY_R_INITIAL] = "initial",
};

const char *policy_reason_name(policy_reason r)
{
    if ((int)r < 0 || r >= POLICY_R_COUNT)
        return "unknown";
    return reason_names[r];
}

void policy_state_init(policy_state *st, int64_t now_ms)
{
    memset(st, 0, sizeof(*st));
    policy_window_init(&st->window, 0);
    st->init_ms = now_ms;
    st->last_eval_ms = 0;
    st->last_desired = -1;
    st->last_recommendation = -1;
}

/* Bounded text builder: appends until full, then marks the cut with "...".
 * It formats %s, %d and %lld itself: vsnprintf was most of the cost of an
 * evaluation, and a pass over 10,000 clusters has a 10 ms budget. */
typedef struct text {
    char *buf;
    size_t len;
    size_t off;
    int cut;
} text;

/* Appends n bytes of s, or as many as fit and then the "..." mark. */
static void put_mem(text *t, const char *s, size_t n)
{
    if (t->cut)
        return;
    size_t room = t->len - 1 - t->off;
    if (n > room) {
        memcpy(t->buf + t->off, s, room);
        t->cut = 1;
        t->off = t->len - 1;
        t->buf[t->off] = 0;
        if (t->len >= 4)
            memcpy(t->buf + t->len - 4, "...", 4);
        return;
    }
    memcpy(t->buf + t->off, s, n);
    t->off += n;
}

static void put_int(text *t, long long v)
{
    char d[24];
    int n = (int)sizeof(d);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[--n] = '-';
    put_mem(t, d + n, sizeof(d) - (size_t)n);
}

__attribute__((format(printf, 2, 3)))
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *p = fmt;
    while (*p && !t->cut) {
        const char *lit = p;
        while (*p && *p != '%')
            p++;
        put_mem(t, lit, (size_t)(p - lit));
        if (!*p)
            break;
        if (p[1] == 's') {
            const char *s = va_arg(ap, const char *);
            put_mem(t, s, strlen(s));
            p += 2;
        } else if (p[1] == 'd') {
            put_int(t, va_arg(ap, int));
            p += 2;
        } else if (p[1] == 'l' && p[2] == 'l' && p[3] == 'd') {
            put_int(t, va_arg(ap, long long));
            p += 4;
        } else {
            put_mem(t, p, 1);   /* only %s %d %lld are used */
            p++;
        }
    }
    va_end(ap);
    if (!t->cut)
        t->buf[t->off] = 0;
}

static const char *app_name(const policy_app *a)
{
    return a->id && a->id[0] ? a->id : "?";
}

/* The demand and sizing half of the reason: the same for every outcome. */
static void put_sizing(text *t, const policy_input *in, const policy_result *r,
                       const int *top, int ntop)
{
    const policy_conf *c = in->conf;
    if (r->active_apps == 0) {
        put(t, "no active apps");
    } else if (r->active_apps == 1) {
        put(t, "%s wants %lld executors", app_name(&in->apps[top[0]]),
            (long long)r->demand_executors);
    } else {
        put(t, "%d apps want %lld executors (", r->active_apps,
            (long long)r->demand_executors);
        for (int i = 0; i < ntop; i++)
            put(t, "%s%s %d", i ? ", " : "", app_name(&in->apps[top[i]]),
                policy_app_demand(c, &in->apps[top[i]]));
        if (r->active_apps > ntop)
            put(t, ", +%d more", r->active_apps - ntop);
        put(t, ")");
    }
    if (r->expired_apps > 0)
        put(t, " [%d finished]", r->expired_apps);
    if (r->ahead_executors > 0)
        put(t, " (%lld ahead of Spark's ramp)", (long long)r->ahead_executors);
    put(t, " = %d workers", r->needed);
    if (c->idle_mode == POLICY_IDLE_OVER_NEED)
        put(t, "; +%d idle", r->idle);
    if (r->flags & POLICY_F_BUSY_UNKNOWN)
        put(t, "; busy unknown");
    else
        put(t, "; %d busy", r->busy);
    if (c->idle_mode == POLICY_IDLE_OVER_NEED)
        put(t, " -> %d", r->recommendation);
    else
        put(t, "; +%d idle -> %d", r->idle, r->recommendation);
    if (r->flags & POLICY_F_BUSY_OVER_MAX)
        put(t, " (max %d; %d busy exceed it: no busy worker is removed)", c->max_workers, r->busy);
    else if (r->flags & POLICY_F_BUSY_FLOOR)
        put(t, " (raised to %d busy)", r->busy);
    else if (r->flags & POLICY_F_CLAMP_MAX)
        put(t, " (capped at max %d)", c->max_workers);
    else if (r->flags & POLICY_F_CLAMP_MIN)
        put(t, " (raised to min %d)", c->min_workers);
    else
        put(t, " (max %d)", c->max_workers);
}

/* Keeps the indices of the (up to) POLICY_REASON_APPS largest demands. */
static void keep_top(int *top, int *ntop, const policy_input *in, int idx, int demand)
{
    int n = *ntop;
    if (n == POLICY_REASON_APPS &&
        demand <= policy_app_demand(in->conf, &in->apps[top[n - 1]]))
        return;
    if (n < POLICY_REASON_APPS)
        n++;
    int i = n - 1;
    while (i > 0 && policy_app_demand(in->conf, &in->apps[top[i - 1]]) < demand) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = idx;
    *ntop = n;
}

static int fail(policy_result *out, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(policy_result *out, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason_text, sizeof(out->reason_text), fmt, ap);
    va_end(ap);
    out->desired = -1;
    out->flags |= POLICY_F_NO_DECISION;
    return rc;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* clamp(max(N, A) + I, min, max) (or max(N + I, A)), then never below A
 * but never above max_workers either. */
static int recommend(const policy_conf *c, int64_t needed, int busy, int idle, unsigned *flags)
{
    int64_t r = c->idle_mode == POLICY_IDLE_OVER_NEED ? max64(needed + idle, busy)
                                                      : max64(needed, busy) + idle;
    if (r < c->min_workers) {
        r = c->min_workers;
        *flags |= POLICY_F_CLAMP_MIN;
    }
    if (r > c->max_workers) {
        r = c->max_workers;
        *flags |= POLICY_F_CLAMP_MAX;
    }
    if (r < busy) {
        if (busy <= c->max_workers) {
            r = busy;
            *flags |= POLICY_F_BUSY_FLOOR;
        } else {
            /* More busy workers than max_workers (max lowered under running
             * work, or busy counts inflated): desired stays max. A scale-in
             * only ever removes idle workers, so the busy ones stay. */
            *flags |= POLICY_F_BUSY_OVER_MAX;
        }
    }
    return (int)r;
}

/* Checks the knobs and sizes; returns E >= 1, or fails out. */
static int check_input(const policy_input *in, const policy_state *st, policy_result *out)
{
    if (!in || !st || !in->conf || (in->napps > 0 && !in->apps))
        return fail(out, -EINVAL, "policy: missing input");
    const policy_conf *c = in->conf;
    if (c->min_workers < 0 || c->max_workers < c->min_workers || c->idle_workers < 0 ||
        c->max_step_up < 0 || c->max_step_down < 0 || c->tolerance_executors < 0)
        return fail(out, -EINVAL, "policy: invalid knobs (min %d, max %d, idle %d, steps %d/%d, "
                    "tolerance %d)", c->min_workers, c->max_workers, c->idle_workers,
                    c->max_step_up, c->max_step_down, c->tolerance_executors);
    int e = policy_executors_per_worker(in->worker_cores, in->worker_memory_mb,
                                        in->executor_cores, in->executor_memory_mb);
    if (e == -EINVAL)
        return fail(out, e, "policy: worker (%d cores, %d MB) or executor (%d cores, %d MB) "
                    "size not positive", in->worker_cores, in->worker_memory_mb,
                    in->executor_cores, in->executor_memory_mb);
    if (e < 0)
        return fail(out, e, "policy: an executor (%d cores, %d MB) does not fit in a worker "
                    "(%d cores, %d MB)", in->executor_cores, in->executor_memory_mb,
                    in->worker_cores, in->worker_memory_mb);
    return e;
}

/* The active apps' demand into out (sum, counts, the part asked ahead of
 * Spark's ramp); top gets the largest. */
static int64_t sum_demand(const policy_input *in, policy_result *out, int *top, int *ntop)
{
    int64_t sum = 0, now = 0;
    for (size_t i = 0; i < in->napps; i++) {
        const policy_app *a = &in->apps[i];
        if (!policy_app_active(in->conf, a, in->now_ms)) {
            out->expired_apps++;
            continue;
        }
        int d = policy_app_demand(in->conf, a);
        sum += d;
        now += policy_app_demand_now(in->conf, a);
        out->active_apps++;
        keep_top(top, ntop, in, (int)i, d);
    }
    out->ahead_executors = sum - now;
    return sum;
}

/* What one evaluation works with, once the sizing is done. */
typedef struct eval {
    const policy_input *in;
    const policy_conf *c;
    policy_state *st;
    policy_result *out;
    text t;
    int top[POLICY_REASON_APPS];
    int ntop;
    int busy;                 /* A, unknown = 0 */
    int rec;                  /* the recommendation */
    int rec_tol;              /* the recommendation for demand + tolerance */
    int base;                 /* the size a change starts from; -1 unknown */
    unsigned flags;
} eval;

/* The busy floor a desired size may be raised to: A, but never above max
 * (busy workers over max stay anyway: scale-in removes idle ones only). */
static int busy_floor(const eval *v)
{
    return v->busy < v->c->max_workers ? v->busy : v->c->max_workers;
}

/* No data since start, or a stale feed: hold the last desired size (not
 * the current one: a scale-up under way must not be reversed for lack of
 * data), never growing, raised to A. */
static void decide_hold(eval *v, int no_data)
{
    policy_result *out = v->out;
    policy_state *st = v->st;
    const int64_t now = v->in->now_ms;
    const int current = v->in->current_workers;
    /* Missing data is never a reason to resize. */
    out->reason = no_data ? POLICY_R_HOLD_NO_DATA : POLICY_R_HOLD_STALE;
    out->held = 1;
    out->stale = 1;
    v->flags |= POLICY_F_HELD | POLICY_F_STALE;
    int hold = st->last_desired;
    int real = hold >= 0 && st->last_desired_known;
    if (hold < 0 || (!st->last_desired_known && current > hold)) {
        /* Nothing decided yet, or decided blind (current unknown then):
         * the size found now is what to keep. */
        hold = current;
        real = current >= 0;
    }
    if (hold > v->c->max_workers)
        hold = v->c->max_workers;   /* never above max, held or not */
    if (hold >= 0 && hold < busy_floor(v)) {
        /* Busy workers stay even while we cannot see demand. */
        hold = busy_floor(v);
        v->flags |= POLICY_F_BUSY_FLOOR;
    }
    if (real) {
        /* A held size that is real fills the window: when data comes back
         * nothing shrinks for W. An invented one never enters it. */
        policy_window_push(&st->window, now, hold);
        if (!st->seeded && current >= 0) {
            st->seeded = 1;
            st->seeded_ms = now;
        }
    }
    st->zero_since_ms = 0;    /* demand unknown: an idle spell starts over */
    out->desired = hold;
    if (no_data)
        put(&v->t, "no data since start");
    else
        /* No age in the text: it would change every pass, and a stale
         * cluster's reason would be rebuilt 10,000 times a second. The
         * last-seen time is in /v1/clusters. */
        put(&v->t, "feed stale (no data for over %ds)", v->c->stale_after_s);
    if (hold >= 0) {
        put(&v->t, ": hold %d", hold);
    } else {
        v->flags |= POLICY_F_NO_DECISION;
        put(&v->t, ", size unknown: no decision");
    }
    out->window_max = policy_window_max(&st->window, now, hold);
    if (!no_data) {
        put(&v->t, "; last: ");
        put_sizing(&v->t, v->in, out, v->top, v->ntop);
    }
}

/* rec > base: up at once, at most max_step_up, never below A. */
static void decide_up(eval *v)
{
    const policy_conf *c = v->c;
    int64_t d = v->rec;
    if (c->max_step_up > 0 && d > (int64_t)v->base + c->max_step_up) {
        d = (int64_t)v->base + c->max_step_up;
        v->flags |= POLICY_F_STEP_LIMITED;
    }
    int floored = d < busy_floor(v);
    if (floored)
        d = busy_floor(v);   /* the step never leaves busy workers uncounted */
    v->out->reason = POLICY_R_UP;
    v->out->desired = (int)d;
    put(&v->t, "; up %d -> %d", v->base, v->out->desired);
    if (floored)
        put(&v->t, " (step %d, raised to %d busy)", c->max_step_up, (int)d);
    else if (v->flags & POLICY_F_STEP_LIMITED)
        put(&v->t, " (step %d)", c->max_step_up);
}

/* rec == base: steady, at a bound or not. */
static void decide_steady(eval *v)
{
    v->out->desired = v->base;
    if (v->flags & POLICY_F_CLAMP_MAX) {
        v->out->reason = POLICY_R_AT_MAX;
        put(&v->t, "; steady at max");
    } else if (v->flags & POLICY_F_CLAMP_MIN) {
        v->out->reason = POLICY_R_AT_MIN;
        put(&v->t, "; steady at min");
    } else {
        v->out->reason = POLICY_R_STEADY;
        put(&v->t, "; steady");
    }
}

/* rec < base: hold while the window or the tolerance says so, else down
 * to the window's level, at most max_step_down. */
static void decide_down(eval *v, int wmax)
{
    const policy_conf *c = v->c;
    policy_result *out = v->out;
    /* The window holds real sizes, which may exceed a max_workers that was
     * lowered: desired still never goes above max. */
    if (wmax > c->max_workers)
        wmax = c->max_workers;
    int hold_at = wmax > v->rec_tol ? wmax : v->rec_tol;
    if (hold_at >= v->base) {
        out->desired = v->base;
        out->held = 1;
        v->flags |= POLICY_F_HELD;
        if (wmax >= v->base) {
            out->reason = POLICY_R_HOLD_WINDOW;
            put(&v->t, "; hold %d: %d within last %ds", v->base, wmax, c->scale_down_window_s);
        } else {
            out->reason = POLICY_R_HOLD_TOLERANCE;
            put(&v->t, "; hold %d: drop within tolerance of %d executors", v->base,
                c->tolerance_executors);
        }
        return;
    }
    int d = wmax;
    if (c->max_step_down > 0 && d < v->base - c->max_step_down) {
        d = v->base - c->max_step_down;
        v->flags |= POLICY_F_STEP_LIMITED;
    }
    if (d > c->max_workers)
        d = c->max_workers;   /* max beats the step: never above it */
    out->reason = POLICY_R_DOWN;
    out->desired = d;
    put(&v->t, "; down %d -> %d", v->base, d);
    if (wmax > v->rec)
        put(&v->t, " (window max %d over %ds)", wmax, c->scale_down_window_s);
    else if (v->flags & POLICY_F_RELEASED)
        put(&v->t, " (idle: no app wants or holds executors; window released)");
    if (v->flags & POLICY_F_STEP_LIMITED)
        put(&v->t, " (step %d)", c->max_step_down);
}

/* Idle release (policy.h): every app finished, or asking for nothing and
 * holding no executor with the demand 0 for idle_release_s. Spark has then
 * already waited its executorIdleTimeout before letting the executors go:
 * holding the window on top of it only pays for idle workers. Never within
 * W of the first known size (restart safety), never on unknown gauges. */
static int idle_released(const eval *v)
{
    const policy_conf *c = v->c;
    const policy_state *st = v->st;
    const int64_t now = v->in->now_ms;
    if (c->idle_release_s <= 0 || !st->seeded ||
        now - st->seeded_ms < (int64_t)c->scale_down_window_s * 1000)
        return 0;
    int active = 0;
    for (size_t i = 0; i < v->in->napps; i++) {
        const policy_app *a = &v->in->apps[i];
        if (!policy_app_active(c, a, now))
            continue;
        if (policy_app_demand(c, a) != 0 || a->all_executors != 0)
            return 0;   /* wants executors, holds some, or unknown (< 0) */
        active++;
    }
    return active == 0 ||
           (st->zero_since_ms > 0 && now - st->zero_since_ms >= (int64_t)c->idle_release_s * 1000);
}

/* Fresh data: the window, then up, steady or down from base. */
static void decide_fresh(eval *v)
{
    const int64_t now = v->in->now_ms;
    policy_state *st = v->st;
    st->fresh_data_seen = 1;
    if (!st->seeded && v->in->current_workers >= 0) {
        /* The first known size after a start counts as a recommendation,
         * so a restart never shrinks sooner than W after it, whatever
         * arrived first. An unknown size (base = an invented decision)
         * never enters the window. */
        policy_window_push(&st->window, now, v->in->current_workers);
        st->seeded = 1;
        st->seeded_ms = now;
        v->flags |= POLICY_F_RESTART_HOLD;
    }
    if (v->out->demand_executors != 0)
        st->zero_since_ms = 0;
    else if (st->zero_since_ms == 0)
        st->zero_since_ms = now;
    if (idle_released(v)) {
        /* What the window held was demand that is gone for good. */
        policy_window_init(&st->window, st->window.window_ms);
        v->rec_tol = v->rec;
        v->flags |= POLICY_F_RELEASED;
    }
    /* The step ahead of Spark's ramp enters the window like any demand: a
     * step that maxExecutors cut is held for W, not started and stopped
     * again a second later. */
    policy_window_push(&st->window, now, v->rec);
    int wmax = policy_window_max(&st->window, now, v->rec);
    v->out->window_max = wmax;
    put_sizing(&v->t, v->in, v->out, v->top, v->ntop);

    if (v->base < 0) {
        v->out->reason = POLICY_R_INITIAL;
        v->out->desired = wmax;
        put(&v->t, "; size unknown: set %d", wmax);
    } else if (v->rec > v->base) {
        decide_up(v);
    } else if (v->rec == v->base) {
        decide_steady(v);
    } else {
        decide_down(v, wmax);
    }
}

int policy_evaluate(const policy_input *in, policy_state *st, policy_result *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->desired = -1;
    out->current = in ? in->current_workers : -1;
    int e = check_input(in, st, out);
    if (e < 0)
        return e;
    const policy_conf *c = in->conf;
    eval v = { .in = in, .c = c, .st = st, .out = out };
    int64_t sum = sum_demand(in, out, v.top, &v.ntop);

    v.busy = in->busy_workers;
    if (v.busy < 0) {
        v.busy = 0;
        v.flags |= POLICY_F_BUSY_UNKNOWN;
    }
    /* Busy workers are workers: never more than the cluster has (a sender
     * that claims 200 busy workers of 5 cannot raise the size). */
    if (in->current_workers >= 0 && v.busy > in->current_workers)
        v.busy = in->current_workers;
    int64_t needed = (sum + e - 1) / e;
    v.rec = recommend(c, needed, v.busy, c->idle_workers, &v.flags);
    unsigned ignored = 0;
    /* Sized for demand + tolerance, the current size still fits: then a
     * drop of up to tolerance executors from the demand that set the size
     * changes nothing (no one-executor jitter). */
    v.rec_tol = c->tolerance_executors > 0
        ? recommend(c, (sum + c->tolerance_executors + e - 1) / e, v.busy, c->idle_workers,
                    &ignored)
        : v.rec;
    v.base = in->current_workers >= 0 ? in->current_workers : st->last_desired;
    if (in->current_workers < 0)
        v.flags |= POLICY_F_CURRENT_UNKNOWN;

    out->per_worker = e;
    out->demand_executors = sum;
    out->needed = needed > INT_MAX ? INT_MAX : (int)needed;
    out->busy = v.busy;
    out->idle = c->idle_workers;
    out->recommendation = v.rec;
    out->flags = v.flags;     /* the sizing text reads the clamp flags */

    policy_window_resize(&st->window, (int64_t)c->scale_down_window_s * 1000, in->now_ms);

    /* A builder born "cut" appends nothing: no text, no formatting cost. */
    out->reason_text[0] = '\0';
    v.t = (text){ out->reason_text, sizeof(out->reason_text), 0, in->no_reason != 0 };
    int no_data = in->last_data_ms <= 0;
    int64_t age_ms = in->now_ms - in->last_data_ms;
    int stale = !no_data && c->stale_after_s > 0 && age_ms > (int64_t)c->stale_after_s * 1000;
    if (no_data || stale)
        decide_hold(&v, no_data);
    else
        decide_fresh(&v);

    out->flags = v.flags;
    if (out->desired >= 0 && !(out->held && out->stale && st->last_desired >= 0)) {
        st->last_desired = out->desired;
        st->last_desired_known = in->current_workers >= 0;
    }
    st->last_recommendation = v.rec;
    st->last_eval_ms = in->now_ms;
    st->evaluations++;
    return 0;
}
