/* test_policy.c: the per-cluster decision rule, its clamps, the window,
 * tolerance, holds on missing data, app expiry, restart and reason text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

#define T0 1700000000000LL   /* an arbitrary wall clock, ms */
#define SEC 1000LL

typedef struct fx {
    policy_conf conf;
    policy_app apps[8];
    char ids[8][64];
    policy_input in;
    policy_state st;
    policy_result res;
} fx;

/* worker 4 cores / 8 GiB, executor 2 cores / 4 GiB: E = 2. */
static void fx_init(fx *f, int64_t now)
{
    memset(f, 0, sizeof(*f));
    f->conf.min_workers = 1;
    f->conf.max_workers = 20;
    f->conf.idle_workers = 1;
    f->conf.scale_down_window_s = 60;
    f->conf.stale_after_s = 30;
    f->conf.app_expiry_s = 120;
    f->conf.demand = POLICY_DEMAND_TARGET;
    f->in.conf = &f->conf;
    f->in.worker_cores = 4;
    f->in.worker_memory_mb = 8192;
    f->in.executor_cores = 2;
    f->in.executor_memory_mb = 4096;
    f->in.current_workers = 5;
    f->in.busy_workers = 2;
    f->in.apps = f->apps;
    f->in.napps = 0;
    f->in.last_data_ms = now;
    f->in.now_ms = now;
    policy_state_init(&f->st, now);
}

static void fx_app(fx *f, size_t i, const char *id, int target, int max_needed)
{
    snprintf(f->ids[i], sizeof(f->ids[i]), "%s", id);
    f->apps[i].id = f->ids[i];
    f->apps[i].start_ms = policy_app_start_ms(id, T0);
    f->apps[i].target_executors = target;
    f->apps[i].max_needed_executors = max_needed;
    f->apps[i].last_seen_ms = f->in.now_ms;
    if (f->in.napps < i + 1)
        f->in.napps = i + 1;
}

/* Evaluates at time now with fresh data and every app just seen. */
static int fx_eval_at(fx *f, int64_t now)
{
    f->in.now_ms = now;
    f->in.last_data_ms = now;
    for (size_t i = 0; i < f->in.napps; i++)
        f->apps[i].last_seen_ms = now;
    return policy_evaluate(&f->in, &f->st, &f->res);
}

/* ---- the rule, one evaluation per row ---- */

typedef struct rule_row {
    const char *name;
    int wc, wm, ec, em;          /* worker / executor cores and MB */
    int min, max, idle, up, down;
    int busy, current;
    int demand[3];
    int e, n, rec, desired;
    policy_reason reason;
    unsigned flags;              /* flags that must be set */
} rule_row;

static const rule_row rule_rows[] = {
    {"basic up", 4, 8192, 2, 4096, 1, 20, 1, 0, 0, 2, 5, {14}, 2, 7, 8, 8, POLICY_R_UP, 0},
    {"busy dominates N", 4, 8192, 2, 4096, 1, 20, 1, 0, 0, 9, 10, {4}, 2, 2, 10, 10,
     POLICY_R_STEADY, 0},
    {"min clamp", 4, 8192, 2, 4096, 3, 20, 1, 0, 0, 0, 3, {0}, 2, 0, 3, 3, POLICY_R_AT_MIN,
     POLICY_F_CLAMP_MIN},
    {"min clamp raises", 4, 8192, 2, 4096, 3, 20, 0, 0, 0, 0, 1, {1}, 2, 1, 3, 3, POLICY_R_UP,
     POLICY_F_CLAMP_MIN},
    {"max clamp steady", 4, 8192, 2, 4096, 1, 20, 1, 0, 0, 2, 20, {100}, 2, 50, 20, 20,
     POLICY_R_AT_MAX, POLICY_F_CLAMP_MAX},
    {"max clamp up", 4, 8192, 2, 4096, 1, 20, 1, 0, 0, 2, 5, {100}, 2, 50, 20, 20, POLICY_R_UP,
     POLICY_F_CLAMP_MAX},
    {"E by memory", 16, 8192, 2, 4096, 0, 20, 0, 0, 0, 0, 0, {6}, 2, 3, 3, 3, POLICY_R_UP, 0},
    {"E by cores", 4, 65536, 1, 1024, 0, 20, 0, 0, 0, 0, 0, {9}, 4, 3, 3, 3, POLICY_R_UP, 0},
    {"E floors fractions", 5, 10000, 2, 4096, 0, 20, 0, 0, 0, 0, 0, {5}, 2, 3, 3, 3,
     POLICY_R_UP, 0},
    {"N rounds up", 4, 8192, 2, 4096, 0, 20, 0, 0, 0, 0, 0, {1}, 2, 1, 1, 1, POLICY_R_UP, 0},
    {"apps sum", 4, 8192, 2, 4096, 1, 20, 1, 0, 0, 0, 2, {3, 4, 5}, 2, 6, 7, 7, POLICY_R_UP, 0},
    {"step up", 4, 8192, 2, 4096, 1, 20, 1, 2, 0, 2, 5, {14}, 2, 7, 8, 7, POLICY_R_UP,
     POLICY_F_STEP_LIMITED},
    {"step up not binding", 4, 8192, 2, 4096, 1, 20, 1, 5, 0, 2, 5, {14}, 2, 7, 8, 8,
     POLICY_R_UP, 0},
    {"busy capped at current", 4, 8192, 2, 4096, 1, 20, 1, 1, 0, 8, 2, {0}, 2, 0, 3, 3,
     POLICY_R_UP, 0},
    {"down at once (W=0)", 4, 8192, 2, 4096, 1, 20, 1, 0, 0, 1, 10, {4}, 2, 2, 3, 3,
     POLICY_R_DOWN, 0},
    {"step down", 4, 8192, 2, 4096, 1, 20, 1, 0, 2, 1, 10, {4}, 2, 2, 3, 8, POLICY_R_DOWN,
     POLICY_F_STEP_LIMITED},
    {"down stops at busy", 4, 8192, 2, 4096, 0, 20, 0, 0, 0, 6, 12, {2}, 2, 1, 6, 6,
     POLICY_R_DOWN, 0},
    {"busy over max: max", 4, 8192, 2, 4096, 1, 5, 1, 0, 0, 8, 8, {2}, 2, 1, 5, 5, POLICY_R_DOWN,
     POLICY_F_CLAMP_MAX | POLICY_F_BUSY_OVER_MAX},
    {"busy over max on down", 4, 8192, 2, 4096, 1, 5, 1, 0, 0, 8, 12, {2}, 2, 1, 5, 5,
     POLICY_R_DOWN, POLICY_F_BUSY_OVER_MAX},
    {"busy over max, below current", 4, 8192, 2, 4096, 1, 30, 1, 0, 0, 200, 5, {2}, 2, 1, 6, 6,
     POLICY_R_UP, 0},
    {"to zero", 4, 8192, 2, 4096, 0, 20, 0, 0, 0, 0, 4, {0}, 2, 0, 0, 0, POLICY_R_DOWN, 0},
    {"above max shrinks to max", 4, 8192, 2, 4096, 1, 6, 1, 0, 0, 0, 9, {40}, 2, 20, 6, 6,
     POLICY_R_DOWN, POLICY_F_CLAMP_MAX},
};

static void test_rule_table(void **unused)
{
    (void)unused;
    for (size_t r = 0; r < sizeof(rule_rows) / sizeof(rule_rows[0]); r++) {
        const rule_row *row = &rule_rows[r];
        fx f;
        fx_init(&f, T0);
        f.conf.scale_down_window_s = 0;   /* rows are single evaluations */
        f.in.worker_cores = row->wc;
        f.in.worker_memory_mb = row->wm;
        f.in.executor_cores = row->ec;
        f.in.executor_memory_mb = row->em;
        f.conf.min_workers = row->min;
        f.conf.max_workers = row->max;
        f.conf.idle_workers = row->idle;
        f.conf.max_step_up = row->up;
        f.conf.max_step_down = row->down;
        f.in.busy_workers = row->busy;
        f.in.current_workers = row->current;
        for (int i = 0; i < 3; i++) {
            if (row->demand[i] == 0 && i > 0)
                break;
            char id[40];
            snprintf(id, sizeof(id), "app-20261121093000-%04d", i);
            fx_app(&f, (size_t)i, id, row->demand[i], -1);
        }
        int rc = fx_eval_at(&f, T0);
        print_message("row %-26s -> %s\n", row->name, f.res.reason_text);
        assert_int_equal(rc, 0);
        assert_int_equal(f.res.per_worker, row->e);
        assert_int_equal(f.res.needed, row->n);
        assert_int_equal(f.res.recommendation, row->rec);
        assert_int_equal(f.res.desired, row->desired);
        assert_int_equal(f.res.reason, row->reason);
        assert_int_equal(f.res.flags & row->flags, row->flags);
        int busy = row->busy < row->current ? row->busy : row->current;
        assert_true(f.res.desired >= (busy < row->max ? busy : row->max));
        assert_true(f.res.desired <= row->max);   /* never above max_workers */
    }
}

static void test_executors_per_worker(void **unused)
{
    (void)unused;
    assert_int_equal(policy_executors_per_worker(4, 8192, 2, 4096), 2);
    assert_int_equal(policy_executors_per_worker(16, 8192, 2, 4096), 2);   /* memory */
    assert_int_equal(policy_executors_per_worker(4, 65536, 1, 1024), 4);   /* cores */
    assert_int_equal(policy_executors_per_worker(8, 16384, 3, 5000), 2);   /* floors */
    assert_int_equal(policy_executors_per_worker(2, 8192, 4, 1024), -EDOM);
    assert_int_equal(policy_executors_per_worker(8, 2048, 1, 4096), -EDOM);
    assert_int_equal(policy_executors_per_worker(0, 2048, 1, 1024), -EINVAL);
    assert_int_equal(policy_executors_per_worker(4, 2048, 1, -1), -EINVAL);

    fx f;
    fx_init(&f, T0);
    f.in.executor_cores = 8;
    fx_app(&f, 0, "app-20261121093000-0000", 4, -1);
    policy_state before = f.st;
    assert_int_equal(fx_eval_at(&f, T0), -EDOM);
    assert_int_equal(f.res.desired, -1);
    assert_non_null(strstr(f.res.reason_text, "does not fit"));
    assert_memory_equal(&before, &f.st, sizeof(before));   /* untouched on error */

    fx_init(&f, T0);
    f.conf.min_workers = 5;
    f.conf.max_workers = 3;
    assert_int_equal(fx_eval_at(&f, T0), -EINVAL);
    assert_int_equal(policy_evaluate(NULL, &f.st, &f.res), -EINVAL);
    assert_int_equal(policy_evaluate(&f.in, NULL, &f.res), -EINVAL);
    assert_int_equal(policy_evaluate(&f.in, &f.st, NULL), -EINVAL);
    f.conf.max_workers = 10;
    f.in.apps = NULL;
    f.in.napps = 1;
    assert_int_equal(fx_eval_at(&f, T0), -EINVAL);
}

/* ---- the window ---- */

/* Demand drops at t=10 s; with W = 60 s the size must hold until the last
 * high recommendation is W old and go down within one bucket after. */
static void test_window_down_only_after_w(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.in.current_workers = 8;
    fx_app(&f, 0, "app-20261121093000-0001", 14, -1);   /* rec 8 */
    int64_t first_down = -1;
    int64_t last_high = -1;
    for (int64_t t = 0; t <= 120 * SEC; t += 250) {
        f.apps[0].target_executors = t < 10 * SEC ? 14 : 4;   /* rec 8, then 3 */
        assert_int_equal(fx_eval_at(&f, T0 + t), 0);
        if (f.res.recommendation == 8)
            last_high = t;
        if (f.res.desired < 8 && first_down < 0) {
            first_down = t;
            assert_int_equal(f.res.reason, POLICY_R_DOWN);
            assert_int_equal(f.res.desired, 3);
        } else if (first_down < 0 && t >= 10 * SEC) {
            assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);
            assert_int_equal(f.res.desired, 8);
            assert_true(f.res.held);
        }
        f.in.current_workers = f.res.desired;
    }
    print_message("last high rec at %lld ms, first down at %lld ms (W=60 s)\n",
                  (long long)last_high, (long long)first_down);
    assert_true(first_down >= last_high + 60 * SEC);
    /* the bucket is ceil(60000/63) = 953 ms, evaluations every 250 ms */
    assert_true(first_down <= last_high + 60 * SEC + 953 + 250);
}

/* The window yields the highest recommendation of the last W, not the last. */
static void test_window_max_within(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.idle_workers = 0;
    f.conf.min_workers = 0;
    f.in.busy_workers = 0;
    f.in.current_workers = 10;
    fx_app(&f, 0, "app-20261121093000-0001", 20, -1);
    int at75 = -1, at85 = -1, at65 = -1;
    for (int64_t t = 0; t <= 90 * SEC; t += SEC) {
        int d = t < 10 * SEC ? 20 : t < 20 * SEC ? 16 : 10;   /* rec 10, 8, 5 */
        f.apps[0].target_executors = d;
        assert_int_equal(fx_eval_at(&f, T0 + t), 0);
        f.in.current_workers = f.res.desired;
        if (t == 65 * SEC)
            at65 = f.res.desired;
        if (t == 75 * SEC) {
            at75 = f.res.desired;
            assert_int_equal(f.res.window_max, 8);
        }
        if (t == 85 * SEC)
            at85 = f.res.desired;
    }
    assert_int_equal(at65, 10);   /* 10 seen at t=9 s, within 60 s */
    assert_int_equal(at75, 8);    /* 10 expired, 8 (t=19 s) still within */
    assert_int_equal(at85, 5);
}

static void test_window_ring(void **unused)
{
    (void)unused;
    policy_window w;
    policy_window_init(&w, 60 * SEC);
    assert_int_equal(w.bucket_ms, 953);
    assert_int_equal(policy_window_max(&w, T0, 3), 3);       /* empty: floor */
    policy_window_push(&w, T0, 7);
    policy_window_push(&w, T0 + 1, 5);                        /* same bucket: max kept */
    assert_int_equal(policy_window_max(&w, T0 + 1, 0), 7);
    assert_int_equal(policy_window_max(&w, T0 + 60 * SEC, 0), 7);   /* never early */
    assert_int_equal(policy_window_max(&w, T0 + 62 * SEC, 0), 0);   /* gone after W + bucket */
    /* a long W is still 64 slots */
    policy_window_init(&w, 86400 * SEC);
    for (int64_t t = 0; t < 86400 * SEC; t += 600 * SEC)
        policy_window_push(&w, T0 + t, (int)(t / (600 * SEC)));
    assert_int_equal(policy_window_max(&w, T0 + 86400 * SEC - 1, 0), 143);
    /* W = 0: no window */
    policy_window_init(&w, 0);
    policy_window_push(&w, T0, 9);
    assert_int_equal(policy_window_max(&w, T0, 2), 2);
    /* a clock that steps back keeps the newer value */
    policy_window_init(&w, 60 * SEC);
    policy_window_push(&w, T0 + 30 * SEC, 9);
    assert_int_equal(policy_window_max(&w, T0, 1), 9);
    /* shrinking W keeps what is held for the new W */
    policy_window_init(&w, 600 * SEC);
    policy_window_push(&w, T0, 12);
    policy_window_resize(&w, 60 * SEC, T0 + 300 * SEC);
    assert_int_equal(policy_window_max(&w, T0 + 359 * SEC, 0), 12);
    assert_int_equal(policy_window_max(&w, T0 + 362 * SEC, 0), 0);
}

/* ---- tolerance ---- */

static void test_tolerance(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.scale_down_window_s = 0;
    f.conf.min_workers = 0;
    f.conf.tolerance_executors = 1;
    f.in.busy_workers = 0;
    f.in.current_workers = 8;
    fx_app(&f, 0, "app-20261121093000-0001", 14, -1);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_int_equal(f.res.reason, POLICY_R_STEADY);
    f.apps[0].target_executors = 12;   /* N 6 -> rec 7, but 12 + 1 needs 7 workers */
    assert_int_equal(fx_eval_at(&f, T0 + SEC), 0);
    assert_int_equal(f.res.recommendation, 7);
    assert_int_equal(f.res.desired, 8);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_TOLERANCE);
    assert_non_null(strstr(f.res.reason_text, "hold 8: drop within tolerance of 1 executors"));
    f.apps[0].target_executors = 10;   /* drop of 4: down, to the demand itself */
    assert_int_equal(fx_eval_at(&f, T0 + 2 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_DOWN);
    assert_int_equal(f.res.recommendation, 6);
    assert_int_equal(f.res.desired, 6);
    assert_non_null(strstr(f.res.reason_text, "; down 8 -> 6"));
    /* to zero demand: tolerance leaves no phantom executor behind */
    f.in.current_workers = 6;
    f.apps[0].target_executors = 0;
    assert_int_equal(fx_eval_at(&f, T0 + 3 * SEC), 0);
    assert_int_equal(f.res.desired, 1);
}

/* Demand oscillating by <= tolerance: no resize at all, even with W = 0;
 * the same trace without tolerance resizes (so the test can fail). */
static int count_resizes(int tolerance, int window_s)
{
    fx f;
    fx_init(&f, T0);
    f.conf.scale_down_window_s = window_s;
    f.conf.tolerance_executors = tolerance;
    f.in.busy_workers = 0;
    f.in.current_workers = 8;
    fx_app(&f, 0, "app-20261121093000-0001", 14, -1);
    int resizes = 0;
    for (int t = 0; t < 300; t++) {
        f.apps[0].target_executors = (t / 5) % 2 ? 12 : 14;
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        if (f.res.desired != f.in.current_workers)
            resizes++;
        f.in.current_workers = f.res.desired;
    }
    return resizes;
}

static void test_oscillation(void **unused)
{
    (void)unused;
    assert_int_equal(count_resizes(2, 0), 0);
    assert_true(count_resizes(0, 0) >= 50);
    /* W longer than the period (10 s) also absorbs it */
    assert_int_equal(count_resizes(0, 30), 0);
}

/* ---- missing data ---- */

static void test_stale_holds(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.in.current_workers = 10;
    fx_app(&f, 0, "app-20261121093000-0001", 0, -1);
    f.in.now_ms = T0 + 31 * SEC;
    f.in.last_data_ms = T0;
    f.apps[0].last_seen_ms = T0;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.desired, 10);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_STALE);
    assert_true(f.res.stale && f.res.held);
    assert_true(f.res.flags & POLICY_F_STALE);
    assert_true(strncmp(f.res.reason_text, "feed stale (no data for over 30s): hold 10", 42) == 0);
    /* more demand while stale: still hold (stale numbers are not a reason) */
    f.apps[0].target_executors = 40;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.desired, 10);
    /* exactly at the limit is still fresh */
    f.in.now_ms = T0 + 30 * SEC;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.reason, POLICY_R_UP);
    /* size unknown while stale: no decision */
    f.in.current_workers = -1;
    policy_state_init(&f.st, T0);
    f.in.now_ms = T0 + 31 * SEC;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.desired, -1);
    assert_true(f.res.flags & POLICY_F_NO_DECISION);
    assert_non_null(strstr(f.res.reason_text, "no decision"));
    /* stale_after_s = 0: never stale */
    f.conf.stale_after_s = 0;
    f.in.current_workers = 10;
    f.in.now_ms = T0 + 3600 * SEC;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_false(f.res.stale);
    /* after a stale spell, fresh low demand still waits a full window */
    fx_init(&f, T0);
    f.in.current_workers = 10;
    fx_app(&f, 0, "app-20261121093000-0001", 20, -1);   /* rec 11 -> up to 11 */
    assert_int_equal(fx_eval_at(&f, T0), 0);
    f.in.current_workers = f.res.desired;
    f.in.now_ms = T0 + 200 * SEC;                        /* 200 s of silence */
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_STALE);
    f.apps[0].target_executors = 0;
    assert_int_equal(fx_eval_at(&f, T0 + 201 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);
    assert_int_equal(f.res.desired, 11);
}

static void test_app_expiry(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.scale_down_window_s = 0;
    fx_app(&f, 0, "app-20261121093000-0001", 10, -1);
    fx_app(&f, 1, "app-20261121093000-0002", 2, -1);
    f.in.now_ms = T0 + 121 * SEC;
    f.in.last_data_ms = f.in.now_ms;
    f.apps[0].last_seen_ms = T0;                 /* silent 121 s > 120 s */
    f.apps[1].last_seen_ms = f.in.now_ms;
    f.in.current_workers = 6;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.demand_executors, 2);
    assert_int_equal(f.res.active_apps, 1);
    assert_int_equal(f.res.expired_apps, 1);
    assert_int_equal(f.res.desired, 3);          /* max(1, 2) + 1 */
    assert_string_equal(f.res.reason_text,
                        "app-20261121093000-0002 wants 2 executors [1 finished] = 1 workers; "
                        "2 busy; +1 idle -> 3 (max 20); down 6 -> 3");
    f.apps[0].last_seen_ms = T0 + 1 * SEC;       /* silent exactly 120 s: still counts */
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.demand_executors, 12);
    f.conf.app_expiry_s = 0;                     /* never expires */
    f.apps[0].last_seen_ms = 0;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.demand_executors, 12);
}

/* After a restart the state is new: nothing shrinks before fresh data, and
 * not before a full window after the start either. */
static void test_restart(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.in.current_workers = 10;
    f.in.last_data_ms = 0;                       /* nothing since start */
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_NO_DATA);
    assert_int_equal(f.res.desired, 10);
    assert_string_equal(f.res.reason_text, "no data since start: hold 10");
    for (int64_t t = 5 * SEC; t < 60 * SEC; t += 5 * SEC) {
        /* one app reports first: low demand, but it may be partial */
        fx_app(&f, 0, "app-20261121093000-0001", 2, -1);
        assert_int_equal(fx_eval_at(&f, T0 + t), 0);
        assert_int_equal(f.res.desired, 10);
        assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);
    }
    assert_int_equal(fx_eval_at(&f, T0 + 62 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_DOWN);
    assert_int_equal(f.res.desired, 3);
    /* size unknown after restart, no data: no decision, nothing seeded */
    fx_init(&f, T0);
    f.in.current_workers = -1;
    f.in.last_data_ms = 0;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.desired, -1);
    assert_true(f.res.flags & POLICY_F_NO_DECISION);
    /* then fresh data: initial size from the recommendation, remembered */
    fx_app(&f, 0, "app-20261121093000-0001", 14, -1);
    assert_int_equal(fx_eval_at(&f, T0 + SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_INITIAL);
    assert_int_equal(f.res.desired, 8);
    assert_true(f.res.flags & POLICY_F_CURRENT_UNKNOWN);
    f.apps[0].target_executors = 2;
    assert_int_equal(fx_eval_at(&f, T0 + 2 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);   /* base = last desired 8 */
    assert_int_equal(f.res.desired, 8);
}

/* A restart where an app's line arrives before the master's aliveWorkers:
 * the blind first decision (current unknown) never enters the window, and
 * once the real size (10) is known nothing shrinks for a full window. */
static void test_restart_app_before_master(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.in.current_workers = -1;
    f.in.busy_workers = -1;
    fx_app(&f, 0, "app-20261121093000-0001", 4, -1);          /* rec 3 */
    assert_int_equal(fx_eval_at(&f, T0 + SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_INITIAL);
    assert_int_equal(f.res.desired, 3);
    assert_true(f.res.flags & POLICY_F_CURRENT_UNKNOWN);       /* actuators only grow on it */
    assert_int_equal(fx_eval_at(&f, T0 + 2 * SEC), 0);        /* a timer pass, still blind */
    /* The master says 10; then worker reports raise busy one by one. */
    f.in.current_workers = 10;
    for (int busy = 0; busy <= 10; busy++) {
        f.in.busy_workers = busy;
        assert_int_equal(fx_eval_at(&f, T0 + 3 * SEC + busy), 0);
        if (f.res.desired < 10)
            fail_msg("busy %d: shrank to %d: %s", busy, f.res.desired, f.res.reason_text);
    }
    /* Still no shrink just before a full window after the size was known... */
    f.in.busy_workers = 0;
    assert_int_equal(fx_eval_at(&f, T0 + 62 * SEC), 0);
    assert_int_equal(f.res.desired, 10);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);
    /* ... and down after it. */
    assert_int_equal(fx_eval_at(&f, T0 + 64 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_DOWN);
    assert_int_equal(f.res.desired, 3);
}

/* A stale feed holds the last desired size, not the current one: a scale-up
 * under way (desired 21, 10 there yet) is not reversed for lack of data. */
static void test_stale_keeps_last_desired(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.max_workers = 30;
    f.in.current_workers = 10;
    fx_app(&f, 0, "app-20261121093000-0001", 40, -1);          /* 20 + 1 idle */
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_int_equal(f.res.desired, 21);
    f.in.now_ms = T0 + 35 * SEC;                               /* silent 35 s */
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_STALE);
    assert_int_equal(f.res.desired, 21);
    assert_non_null(strstr(f.res.reason_text, "hold 21"));
    f.in.now_ms = T0 + 300 * SEC;                              /* and much later */
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.desired, 21);
    /* A blind decision (current unknown) is held, but never below the real size. */
    fx_init(&f, T0);
    f.in.current_workers = -1;
    fx_app(&f, 0, "app-20261121093000-0001", 2, -1);           /* rec 2 busy + 1 idle */
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_int_equal(f.res.desired, 3);
    f.in.current_workers = 10;
    f.in.now_ms = T0 + 35 * SEC;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_STALE);
    assert_int_equal(f.res.desired, 10);
}

/* Busy counts cannot drive desired above max_workers or above the cluster:
 * 200 claimed busy workers of 5, max 30. */
static void test_busy_bounded(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.max_workers = 30;
    f.in.current_workers = 5;
    f.in.busy_workers = 200;
    fx_app(&f, 0, "app-20261121093000-0001", 2, -1);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_int_equal(f.res.busy, 5);
    assert_int_equal(f.res.desired, 6);                        /* 5 busy + 1 idle */
    /* Unknown size: busy is taken as claimed, but desired stays <= max. */
    f.in.current_workers = -1;
    policy_state_init(&f.st, T0);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_int_equal(f.res.desired, 30);
    assert_true(f.res.flags & POLICY_F_BUSY_OVER_MAX);
    assert_non_null(strstr(f.res.reason_text, "no busy worker is removed"));
}

static void test_max_needed(void **unused)
{
    (void)unused;
    static const struct {
        policy_demand_source src;
        int target, max_needed, demand, to_add;
    } rows[] = {
        {POLICY_DEMAND_TARGET, 4, 10, 4, 0},
        {POLICY_DEMAND_MAX_NEEDED, 4, 10, 10, 0},
        {POLICY_DEMAND_MAX_NEEDED, 4, -1, 4, 0},    /* unknown: fall back to target */
        {POLICY_DEMAND_MAX_NEEDED, 4, 1, 4, 0},     /* minExecutors keeps target higher */
        {POLICY_DEMAND_TARGET, -1, 10, 0, 0},       /* unknown target counts 0 */
        {POLICY_DEMAND_MAX_NEEDED, -1, 10, 10, 0},
        /* ramp: Spark's next step while to-add > 1, never past max-needed */
        {POLICY_DEMAND_RAMP, 3, 10, 7, 4},
        {POLICY_DEMAND_RAMP, 3, 5, 5, 4},
        {POLICY_DEMAND_RAMP, 3, 10, 3, 1},          /* at a cap, or not ramping: target */
        {POLICY_DEMAND_RAMP, 3, 10, 3, -1},         /* to-add unknown */
        {POLICY_DEMAND_RAMP, 3, -1, 3, 4},          /* max-needed unknown */
        {POLICY_DEMAND_RAMP, 6, 4, 6, 8},           /* backlog gone: target */
        {POLICY_DEMAND_TARGET, 3, 10, 3, 4},        /* only with ramp */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fx f;
        fx_init(&f, T0);
        f.conf.demand = rows[i].src;
        fx_app(&f, 0, "app-20261121093000-0001", rows[i].target, rows[i].max_needed);
        f.apps[0].executors_to_add = rows[i].to_add;
        assert_int_equal(policy_app_demand(&f.conf, &f.apps[0]), rows[i].demand);
        assert_int_equal(fx_eval_at(&f, T0), 0);
        assert_int_equal(f.res.demand_executors, rows[i].demand);
    }
}

/* ---- reasons ---- */

static void test_reason_text(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    fx_app(&f, 0, "app-20261121093000-0003", 14, -1);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_string_equal(f.res.reason_text,
                        "app-20261121093000-0003 wants 14 executors = 7 workers; 2 busy; "
                        "+1 idle -> 8 (max 20); up 5 -> 8");

    fx_init(&f, T0);
    fx_app(&f, 0, "app-b", 4, -1);
    fx_app(&f, 1, "app-c", 2, -1);
    fx_app(&f, 2, "app-a", 8, -1);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_string_equal(f.res.reason_text,
                        "3 apps want 14 executors (app-a 8, app-b 4, app-c 2) = 7 workers; "
                        "2 busy; +1 idle -> 8 (max 20); up 5 -> 8");
    /* next: demand drops, the window holds */
    f.in.current_workers = 8;
    f.apps[2].target_executors = 0;
    assert_int_equal(fx_eval_at(&f, T0 + SEC), 0);
    assert_string_equal(f.res.reason_text,
                        "3 apps want 6 executors (app-b 4, app-c 2, app-a 0) = 3 workers; "
                        "2 busy; +1 idle -> 4 (max 20); hold 8: 8 within last 60s");

    fx_init(&f, T0);
    f.in.busy_workers = -1;
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "a%d", i);
        fx_app(&f, (size_t)i, id, i + 1, -1);
    }
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_string_equal(f.res.reason_text,
                        "5 apps want 15 executors (a4 5, a3 4, a2 3, +2 more) = 8 workers; "
                        "busy unknown; +1 idle -> 9 (max 20); up 5 -> 9");
    assert_true(f.res.flags & POLICY_F_BUSY_UNKNOWN);

    /* huge ids: cut, marked, terminated */
    static char longid[3][200];
    fx_init(&f, T0);
    for (int i = 0; i < 3; i++) {
        memset(longid[i], 'a' + i, sizeof(longid[i]) - 1);
        longid[i][sizeof(longid[i]) - 1] = 0;
        fx_app(&f, (size_t)i, "x", 1, -1);
        f.apps[i].id = longid[i];
    }
    assert_int_equal(fx_eval_at(&f, T0), 0);
    size_t len = strlen(f.res.reason_text);
    assert_int_equal(len, POLICY_REASON_MAX - 1);
    assert_string_equal(f.res.reason_text + len - 3, "...");
    assert_int_equal(f.res.recommendation, 3);   /* text cut, decision intact */

    assert_string_equal(policy_reason_name(POLICY_R_HOLD_WINDOW), "hold_window");
    assert_string_equal(policy_reason_name(POLICY_R_UP), "up");
    assert_string_equal(policy_reason_name(POLICY_R_COUNT), "unknown");
    for (int r = 0; r < POLICY_R_COUNT; r++)
        assert_non_null(policy_reason_name((policy_reason)r));
}

/* idle_mode OVER_NEED: I over the need, busy as a floor only. */
static void test_idle_over_need(void **unused)
{
    (void)unused;
    static const struct {
        int busy, demand, rec;
    } rows[] = {
        {2, 14, 8},     /* N 7 + 1 */
        {9, 14, 9},     /* fragmented: 9 busy already hold spare slots */
        {12, 4, 12},    /* never below busy */
        {0, 0, 1},      /* 0 + 1 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fx f;
        fx_init(&f, T0);
        f.conf.idle_mode = POLICY_IDLE_OVER_NEED;
        f.conf.min_workers = 0;
        f.in.current_workers = 20;                  /* busy is at most current */
        f.in.busy_workers = rows[i].busy;
        fx_app(&f, 0, "app-20261121093000-0003", rows[i].demand, -1);
        assert_int_equal(fx_eval_at(&f, T0), 0);
        assert_int_equal(f.res.recommendation, rows[i].rec);
        f.conf.idle_mode = POLICY_IDLE_OVER_BUSY;   /* the original rule differs here */
        policy_state_init(&f.st, T0);
        assert_int_equal(fx_eval_at(&f, T0), 0);
        int n = (rows[i].demand + 1) / 2;
        assert_int_equal(f.res.recommendation, (n > rows[i].busy ? n : rows[i].busy) + 1);
    }
    fx f;
    fx_init(&f, T0);
    f.conf.idle_mode = POLICY_IDLE_OVER_NEED;
    f.in.busy_workers = 9;
    f.in.current_workers = 9;
    fx_app(&f, 0, "app-20261121093000-0003", 14, -1);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_string_equal(f.res.reason_text, "app-20261121093000-0003 wants 14 executors = 7 workers; "
                                           "+1 idle; 9 busy -> 9 (max 20); steady");
}

/* ---- what Spark and the master say beyond the demand (issue 13) ---- */

/* An app the master no longer lists has ended: it leaves the demand at once,
 * not app_expiry_s after its last report. */
static void test_ended_app_leaves_at_once(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.idle_mode = POLICY_IDLE_OVER_NEED;
    f.conf.scale_down_window_s = 0;
    f.in.busy_workers = 0;
    f.in.current_workers = 8;
    fx_app(&f, 0, "app-20261121093000-0001", 10, -1);
    fx_app(&f, 1, "app-20261121093000-0002", 4, -1);
    assert_int_equal(fx_eval_at(&f, T0), 0);
    assert_int_equal(f.res.demand_executors, 14);
    f.apps[0].ended = 1;                       /* reported a second ago, but gone */
    assert_int_equal(fx_eval_at(&f, T0 + SEC), 0);
    assert_int_equal(f.res.demand_executors, 4);
    assert_int_equal(f.res.active_apps, 1);
    assert_int_equal(f.res.expired_apps, 1);
    assert_int_equal(f.res.desired, 3);        /* 2 + 1 idle */
    assert_string_equal(f.res.reason_text,
                        "app-20261121093000-0002 wants 4 executors [1 finished] = 2 workers; "
                        "+1 idle; 0 busy -> 3 (max 20); down 8 -> 3");
    assert_false(policy_app_active(&f.conf, &f.apps[0], T0 + SEC));
}

/* A fixture past its restart hold: W 60 s, idle_release_s 5, 10 workers
 * sized for 18 executors since T0; returns at T0 + 70 s. */
static void fx_busy_then(fx *f)
{
    fx_init(f, T0);
    f->conf.idle_mode = POLICY_IDLE_OVER_NEED;
    f->conf.idle_release_s = 5;
    f->conf.tolerance_executors = 1;
    f->in.busy_workers = 0;
    f->in.current_workers = 10;
    fx_app(f, 0, "app-20261121093000-0001", 12, -1);
    fx_app(f, 1, "app-20261121093000-0002", 6, -1);
    f->apps[0].all_executors = 12;
    f->apps[1].all_executors = 6;
    for (int64_t t = 0; t <= 70 * SEC; t += SEC) {
        assert_int_equal(fx_eval_at(f, T0 + t), 0);
        assert_int_equal(f->res.desired, 10);
    }
}

static void fx_idle(fx *f, int all0, int all1)
{
    f->apps[0].target_executors = 0;
    f->apps[1].target_executors = 0;
    f->apps[0].all_executors = all0;
    f->apps[1].all_executors = all1;
}

/* Demand falls to 0 and numberAllExecutors follows: no oscillation, the
 * size goes down without waiting for the window. */
static void test_idle_release(void **unused)
{
    (void)unused;
    fx f;
    fx_busy_then(&f);
    /* targets 0, executors still held (Spark's executorIdleTimeout): hold */
    fx_idle(&f, 12, 6);
    for (int64_t t = 71; t <= 100; t++) {
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_int_equal(f.res.desired, 10);
        assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);
        assert_false(f.res.flags & POLICY_F_RELEASED);
    }
    /* one app let its executors go, the other holds some: still the window */
    fx_idle(&f, 0, 2);
    assert_int_equal(fx_eval_at(&f, T0 + 101 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);
    /* both: demand 0 for 31 s and nothing held: down now, not at 131 s */
    fx_idle(&f, 0, 0);
    assert_int_equal(fx_eval_at(&f, T0 + 102 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_DOWN);
    assert_int_equal(f.res.desired, 1);
    assert_true(f.res.flags & POLICY_F_RELEASED);
    assert_non_null(strstr(f.res.reason_text, "down 10 -> 1 (idle: no app wants or holds "
                                              "executors; window released)"));
    /* busy workers stay all the same */
    f.in.current_workers = 10;
    f.in.busy_workers = 4;
    assert_int_equal(fx_eval_at(&f, T0 + 103 * SEC), 0);
    assert_int_equal(f.res.desired, 4);
    /* the tolerance holds nothing either: 2 workers for 0 executors go to 1 */
    f.in.current_workers = 2;
    f.in.busy_workers = 0;
    assert_int_equal(fx_eval_at(&f, T0 + 104 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_DOWN);
    assert_int_equal(f.res.desired, 1);

    /* numberAllExecutors unknown: no evidence, the window holds */
    fx_busy_then(&f);
    fx_idle(&f, -1, -1);
    for (int64_t t = 71; t <= 120; t++) {
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_int_equal(f.res.desired, 10);
    }
    /* idle_release_s 0: the old rule, the window holds */
    fx_busy_then(&f);
    f.conf.idle_release_s = 0;
    fx_idle(&f, 0, 0);
    for (int64_t t = 71; t <= 120; t++) {
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_int_equal(f.res.desired, 10);
    }
}

/* The zero must last idle_release_s: a dip to 0 shorter than that (Spark
 * releasing executors fast) is oscillation, and the window holds it. */
static void test_idle_release_waits(void **unused)
{
    (void)unused;
    fx f;
    fx_busy_then(&f);
    fx_idle(&f, 0, 0);
    for (int64_t t = 71; t <= 75; t++) {      /* zero since 71 s: 4 s at 75 s */
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_int_equal(f.res.desired, 10);
    }
    assert_int_equal(fx_eval_at(&f, T0 + 76 * SEC), 0);
    assert_int_equal(f.res.desired, 1);

    /* demand back within the spell: the spell starts over */
    fx_busy_then(&f);
    fx_idle(&f, 0, 0);
    assert_int_equal(fx_eval_at(&f, T0 + 71 * SEC), 0);
    assert_int_equal(fx_eval_at(&f, T0 + 74 * SEC), 0);
    f.apps[0].target_executors = 2;
    assert_int_equal(fx_eval_at(&f, T0 + 75 * SEC), 0);
    fx_idle(&f, 0, 0);
    assert_int_equal(fx_eval_at(&f, T0 + 77 * SEC), 0);
    assert_int_equal(f.res.desired, 10);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);

    /* Demand swinging 14 -> 0 every 8 s, executors following at once: the
     * zeros last 4 s, so the window absorbs them as before. */
    fx_busy_then(&f);
    int resizes = 0;
    for (int t = 71; t < 371; t++) {
        int on = ((t - 71) / 4) % 2 == 0;
        f.apps[0].target_executors = f.apps[0].all_executors = on ? 14 : 0;
        f.apps[1].target_executors = f.apps[1].all_executors = 0;
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        if (f.res.desired != f.in.current_workers)
            resizes++;
        f.in.current_workers = f.res.desired;
    }
    assert_true(resizes <= 1);
}

/* Every app finished (ended, or expired): released at once, whatever their
 * last gauges said. */
static void test_idle_release_all_finished(void **unused)
{
    (void)unused;
    fx f;
    fx_busy_then(&f);
    f.apps[0].ended = 1;
    assert_int_equal(fx_eval_at(&f, T0 + 71 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_HOLD_WINDOW);   /* the other still wants 6 */
    f.apps[1].ended = 1;
    assert_int_equal(fx_eval_at(&f, T0 + 72 * SEC), 0);
    assert_int_equal(f.res.reason, POLICY_R_DOWN);
    assert_int_equal(f.res.desired, 1);
    assert_true(f.res.flags & POLICY_F_RELEASED);
    assert_int_equal(f.res.active_apps, 0);
    assert_int_equal(f.res.expired_apps, 2);
}

/* After a restart, the first known size holds for W even when every app is
 * idle and holds nothing: release never beats restart safety. */
static void test_idle_release_after_restart(void **unused)
{
    (void)unused;
    fx f;
    fx_init(&f, T0);
    f.conf.idle_mode = POLICY_IDLE_OVER_NEED;
    f.conf.idle_release_s = 5;
    f.in.busy_workers = 0;
    f.in.current_workers = 10;
    fx_app(&f, 0, "app-20261121093000-0001", 0, -1);
    f.apps[0].all_executors = 0;
    for (int64_t t = 0; t < 60; t++) {
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_int_equal(f.res.desired, 10);
        assert_false(f.res.flags & POLICY_F_RELEASED);
    }
    assert_int_equal(fx_eval_at(&f, T0 + 60 * SEC), 0);
    assert_int_equal(f.res.desired, 1);
    /* the same when the size was first known after a stale spell */
    fx_init(&f, T0);
    f.conf.idle_mode = POLICY_IDLE_OVER_NEED;
    f.conf.idle_release_s = 5;
    f.in.busy_workers = 0;
    f.in.current_workers = 10;
    f.in.last_data_ms = 0;
    assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);   /* no data: hold, seeded */
    fx_app(&f, 0, "app-20261121093000-0001", 0, -1);
    f.apps[0].ended = 1;
    for (int64_t t = 1; t < 60; t++) {
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_int_equal(f.res.desired, 10);
    }
    /* unknown size: grow-only, released or not */
    fx_init(&f, T0);
    f.conf.idle_release_s = 5;
    f.in.current_workers = -1;
    fx_app(&f, 0, "app-20261121093000-0001", 0, -1);
    f.apps[0].ended = 1;
    for (int64_t t = 0; t < 200; t++) {
        assert_int_equal(fx_eval_at(&f, T0 + t * SEC), 0);
        assert_true(f.res.flags & POLICY_F_CURRENT_UNKNOWN);   /* actuators only grow */
        assert_false(f.res.flags & POLICY_F_RELEASED);
    }
}

static void test_app_start_ms(void **unused)
{
    (void)unused;
    /* expected values from Python's calendar.timegm */
    assert_int_equal(policy_app_start_ms("app-20261121093000-0003", -1), 1795253400000LL);
    assert_int_equal(policy_app_start_ms("app-20240229235959-12345", -1), 1709251199000LL);
    assert_int_equal(policy_app_start_ms("app-19700101000000-0000", -1), 0);
    assert_int_equal(policy_app_start_ms("local-1700000000123", -1), 1700000000123LL);
    static const char *bad[] = {
        "app-20261321093000-0003",  /* month 13 */
        "app-20230229093000-0003",  /* no Feb 29 in 2023 */
        "app-20261121243000-0003",  /* hour 24 */
        "app-2026112109300-0003",   /* short */
        "app-20261121093000-",      /* no counter */
        "app-20261121093000-00x3",
        "app-20261121093000",
        "application_1644550318601_0158",
        "local-",
        "local-12a",
        "",
        "app-",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(policy_app_start_ms(bad[i], 42), 42);
    assert_int_equal(policy_app_start_ms(NULL, 7), 7);
}

/* ---- invariants over random inputs ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33) % n;
}

/* no_reason skips only the text: same decision, same state afterwards. */
static void test_no_reason(void **unused)
{
    (void)unused;
    fx a, b;
    fx_init(&a, T0);
    fx_init(&b, T0);
    for (int i = 0; i < 3; i++) {
        fx_app(&a, (size_t)i, "app-20261121093000-0001", 4 + 5 * i, -1);
        fx_app(&b, (size_t)i, "app-20261121093000-0001", 4 + 5 * i, -1);
    }
    b.in.no_reason = 1;
    for (int step = 0; step < 200; step++) {
        int64_t now = T0 + step * SEC;
        int target = step % 37 < 20 ? 30 : 2;     /* up, then a hold, then down */
        a.apps[0].target_executors = b.apps[0].target_executors = target;
        a.in.current_workers = b.in.current_workers = step ? a.res.desired : 5;
        assert_int_equal(fx_eval_at(&a, now), 0);
        assert_int_equal(fx_eval_at(&b, now), 0);
        assert_int_equal(a.res.desired, b.res.desired);
        assert_int_equal(a.res.reason, b.res.reason);
        assert_int_equal(a.res.flags, b.res.flags);
        assert_int_equal(a.res.window_max, b.res.window_max);
        assert_true(a.res.reason_text[0] != '\0');
        assert_string_equal(b.res.reason_text, "");
        assert_memory_equal(&a.st, &b.st, sizeof a.st);
    }
}

static void test_invariants_random(void **unused)
{
    (void)unused;
    enum { HIST = 4096 };
    static int64_t hist_t[HIST];
    static int hist_rec[HIST];
    int releases = 0;
    for (int run = 0; run < 40; run++) {
        fx f;
        fx_init(&f, T0);
        f.conf.min_workers = (int)rnd(3);
        f.conf.max_workers = f.conf.min_workers + 1 + (int)rnd(30);
        f.conf.idle_workers = (int)rnd(3);
        f.conf.scale_down_window_s = (int)rnd(4) * 20;
        f.conf.max_step_up = (int)rnd(3);
        f.conf.max_step_down = (int)rnd(3);
        f.conf.tolerance_executors = (int)rnd(3);
        f.conf.idle_release_s = run % 2 ? (int)rnd(8) : 0;   /* half the runs release */
        f.in.current_workers = (int)rnd(10);
        for (int i = 0; i < 4; i++)
            fx_app(&f, (size_t)i, "app-20261121093000-0001", 0, -1);
        int64_t now = T0;
        size_t nh = 0;
        int prev = -1;                                 /* the last desired size */
        int idle_spell = 0;
        for (int step = 0; step < HIST; step++) {
            now += rnd(3000);
            if (rnd(40) == 0)
                idle_spell = !idle_spell;              /* spells of 0 demand, released or not */
            for (int i = 0; i < 4; i++) {
                f.apps[i].target_executors = idle_spell ? (int)rnd(2) - 1 : (int)rnd(40) - 2;
                f.apps[i].all_executors = idle_spell ? (int)rnd(3) - 1 : (int)rnd(40);
                f.apps[i].ended = rnd(60) == 0;
                if (rnd(10) != 0)
                    f.apps[i].last_seen_ms = now;
            }
            int stale = rnd(20) == 0;
            f.in.last_data_ms = stale ? now - 60 * SEC : now;
            f.in.now_ms = now;
            f.in.busy_workers = (int)rnd(12) - 1;
            int base = f.in.current_workers;
            assert_int_equal(policy_evaluate(&f.in, &f.st, &f.res), 0);
            const policy_result *r = &f.res;
            int floor_a = r->busy < f.conf.max_workers ? r->busy : f.conf.max_workers;
            assert_true(r->desired >= 0);
            assert_true(r->desired >= floor_a);                   /* never below A (or max) */
            assert_true(r->desired <= f.conf.max_workers);                /* never above max */
            assert_true(r->busy <= base);                         /* busy is at most current */
            if (!stale) {
                hist_t[nh] = now;
                hist_rec[nh++] = r->recommendation;
                assert_true(r->recommendation >= floor_a);
                if (r->recommendation < base)
                    assert_true(r->desired <= base);              /* never grows on a drop */
                if (r->desired > base)
                    assert_true(r->desired <= r->recommendation);
                if (r->flags & POLICY_F_RELEASED) {
                    /* released only on evidence: every app finished, or
                     * asking for nothing and holding no executor */
                    assert_true(f.conf.idle_release_s > 0);
                    for (int i = 0; i < 4; i++)
                        assert_true(!policy_app_active(&f.conf, &f.apps[i], now) ||
                                    (f.apps[i].target_executors <= 0 &&
                                     f.apps[i].all_executors == 0));
                    releases++;
                    hist_t[0] = now;                   /* what the window held is gone */
                    hist_rec[0] = r->recommendation;
                    nh = 1;
                }
                if (r->desired < base) {
                    /* a shrink never undercuts a recommendation of the last W
                     * (since the last release) */
                    int64_t w = (int64_t)f.conf.scale_down_window_s * SEC;
                    for (size_t h = nh; h-- > 0 && hist_t[h] >= now - w;)
                        assert_true(r->desired >= hist_rec[h]);
                    if (f.conf.max_step_down > 0)           /* max beats the step */
                        assert_true(base - r->desired <= f.conf.max_step_down ||
                                    r->desired == f.conf.max_workers);
                }
                if (r->desired > base && f.conf.max_step_up > 0)   /* busy floor wins */
                    assert_true(r->desired - base <= f.conf.max_step_up ||
                                r->desired == r->busy);
            } else {
                /* a stale feed keeps the last desired size, raised to A */
                int held = prev >= 0 ? prev : base;
                assert_int_equal(r->desired, held > floor_a ? held : floor_a);
            }
            if (!stale || prev < 0)
                prev = r->desired;
            f.in.current_workers = rnd(8) == 0 ? (int)rnd(30) : r->desired;
        }
    }
    print_message("idle releases: %d\n", releases);
    assert_true(releases > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_executors_per_worker),
        cmocka_unit_test(test_window_down_only_after_w),
        cmocka_unit_test(test_window_max_within),
        cmocka_unit_test(test_window_ring),
        cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_oscillation),
        cmocka_unit_test(test_stale_holds),
        cmocka_unit_test(test_app_expiry),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_restart_app_before_master),
        cmocka_unit_test(test_stale_keeps_last_desired),
        cmocka_unit_test(test_busy_bounded),
        cmocka_unit_test(test_max_needed),
        cmocka_unit_test(test_reason_text),
        cmocka_unit_test(test_idle_over_need),
        cmocka_unit_test(test_ended_app_leaves_at_once),
        cmocka_unit_test(test_idle_release),
        cmocka_unit_test(test_idle_release_waits),
        cmocka_unit_test(test_idle_release_all_finished),
        cmocka_unit_test(test_idle_release_after_restart),
        cmocka_unit_test(test_app_start_ms),
        cmocka_unit_test(test_no_reason),
        cmocka_unit_test(test_invariants_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
