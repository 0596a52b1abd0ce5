/* policy.h: the per-cluster decision: Spark's executor demand in, a desired
 * worker count and a one-line reason out. Pure: no I/O, no clocks, no malloc. */
#ifndef SS_POLICY_H
#define SS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy_conf.h"
#include "policy/window.h"

#define POLICY_REASON_MAX 320   /* bytes of policy_result.reason, NUL included */
#define POLICY_REASON_APPS 3    /* apps named in a reason; the rest are counted */

/* One Spark application of a cluster, as the caller last saw it. */
typedef struct policy_app {
    const char *id;               /* borrowed, NUL-terminated; may be NULL ("?") */
    int64_t start_ms;             /* FIFO key in pools: see policy_app_start_ms */
    int target_executors;         /* numberTargetExecutors; < 0 = unknown = 0 */
    int max_needed_executors;     /* numberMaxNeededExecutors; < 0 = unknown */
    int64_t last_seen_ms;         /* newest gauge of this app */
    int all_executors;            /* numberAllExecutors: executors it holds in any state;
                                   * < 0 = unknown. Read only with idle_release_s > 0 */
    int ended;                    /* != 0: finished for sure (its master no longer lists
                                   * it): out of the demand at once, like an expired app */
    int executors_to_add;         /* numberExecutorsToAdd: the ramp's next step; <= 1 = no
                                   * ramp under way (or unknown). Read with demand: ramp */
} policy_app;

/* Everything one evaluation looks at. Nothing here is kept by the policy:
 * all pointers are borrowed for the duration of the call. */
typedef struct policy_input {
    const policy_conf *conf;
    int worker_cores;
    int worker_memory_mb;
    int executor_cores;
    int executor_memory_mb;
    int current_workers;          /* the size we would change (replicas); -1 unknown */
    int busy_workers;             /* A: workers with used cores; -1 unknown (= 0) */
    const policy_app *apps;       /* napps entries, expired ones included */
    size_t napps;
    int64_t last_data_ms;         /* newest data of any kind; 0 = none since start */
    int64_t now_ms;
    int no_reason;                /* != 0: leave reason_text empty (a caller that
                                   * re-evaluates unchanged inputs keeps its old text) */
} policy_input;

/* What the decision was, as a code (stable, for metrics and the bus). */
typedef enum policy_reason {
    POLICY_R_UP = 0,          /* grows to the recommendation (maybe step-limited) */
    POLICY_R_DOWN,            /* shrinks: window and tolerance allow it */
    POLICY_R_STEADY,          /* recommendation equals the current size */
    POLICY_R_AT_MIN,          /* steady, held up by min_workers */
    POLICY_R_AT_MAX,          /* steady, capped by max_workers */
    POLICY_R_HOLD_WINDOW,     /* lower recommendation, but a higher one within W */
    POLICY_R_HOLD_TOLERANCE,  /* lower recommendation, drop within tolerance */
    POLICY_R_HOLD_STALE,      /* feed older than stale_after_s: keep the size */
    POLICY_R_HOLD_NO_DATA,    /* no data since start: keep the size */
    POLICY_R_INITIAL,         /* current size unknown: desired = window max */
    POLICY_R_COUNT
} policy_reason;

/* Flags qualifying a result (bitwise OR in policy_result.flags). */
enum {
    POLICY_F_HELD          = 1 << 0,  /* desired is the current size on purpose */
    POLICY_F_STALE         = 1 << 1,  /* feed stale or absent */
    POLICY_F_NO_DECISION   = 1 << 2,  /* hold with unknown size: desired = -1 */
    POLICY_F_CLAMP_MIN     = 1 << 3,  /* max(N, A) + I was below min_workers */
    POLICY_F_CLAMP_MAX     = 1 << 4,  /* max(N, A) + I was above max_workers */
    POLICY_F_BUSY_FLOOR    = 1 << 5,  /* raised to A: busy workers stay */
    POLICY_F_STEP_LIMITED  = 1 << 6,  /* max_step_up/max_step_down cut the change */
    POLICY_F_BUSY_UNKNOWN  = 1 << 7,  /* busy_workers was -1, counted as 0 */
    POLICY_F_CURRENT_UNKNOWN = 1 << 8,/* current_workers was -1: the decision may only grow */
    POLICY_F_BUSY_OVER_MAX = 1 << 9,  /* A > max_workers: desired is max, no busy worker goes */
    POLICY_F_RESTART_HOLD  = 1 << 10, /* no shrink within W of the first known size */
    POLICY_F_RELEASED      = 1 << 11  /* cluster idle (see idle_release_s): the window
                                       * and the tolerance hold nothing */
};

typedef struct policy_result {
    int desired;              /* workers to have; -1 = no decision (see F_NO_DECISION) */
    int recommendation;       /* clamp(max(N, A) + I), before window/steps/holds */
    int window_max;           /* highest recommendation within W (incl. this one) */
    int needed;               /* N = ceil(demand / E) */
    int busy;                 /* A as used (unknown = 0) */
    int idle;                 /* I */
    int per_worker;           /* E: executors per worker */
    int64_t demand_executors; /* sum over active apps */
    int64_t ahead_executors;  /* of it, the step of Spark's ramp asked for early (demand:
                               * ramp) */
    int current;              /* as given (-1 unknown) */
    int active_apps;          /* apps not expired */
    int expired_apps;         /* apps silent longer than app_expiry_s */
    policy_reason reason;
    unsigned flags;
    int held;                 /* != 0: a hold (window, tolerance, stale, no data) */
    int stale;                /* != 0: feed stale or no data since start */
    char reason_text[POLICY_REASON_MAX];
} policy_result;

/* Per-cluster memory between evaluations. Caller-allocated, fixed size
 * (about 0.8 KiB), plain data: may be copied, never needs freeing. */
typedef struct policy_state {
    policy_window window;     /* recommendations of the last W seconds */
    int64_t init_ms;          /* when the state started (daemon start) */
    int64_t last_eval_ms;
    int last_desired;         /* -1 = none yet */
    int last_desired_known;   /* last_desired was decided knowing the current size */
    int last_recommendation;  /* -1 = none yet */
    int seeded;               /* the first known size was put in the window */
    int fresh_data_seen;      /* fresh data has been seen since init */
    uint32_t evaluations;
    int64_t seeded_ms;        /* when seeded was set */
    int64_t zero_since_ms;    /* fresh demand has been 0 since then; 0 = it is not */
} policy_state;

/* Starts a cluster's state: no history, so nothing will shrink before fresh
 * data and a full window W have passed (restart safety). */
void policy_state_init(policy_state *st, int64_t now_ms);

/* The rule, once. Reads in (borrowed), updates st, fills out.
 *  rec = clamp(max(N, A) + I, min, max)   (idle_mode OVER_NEED: max(N + I, A))
 *        and never below A; A is at most current_workers (when known) and
 *        rec never above max_workers: when A exceeds max, rec = max and
 *        POLICY_F_BUSY_OVER_MAX says so (a scale-in then removes idle
 *        workers only, so the busy ones stay);
 *  base = current_workers, or the last desired when current is unknown;
 *  rec > base: up at once, at most max_step_up (but never below A);
 *  rec < base: down to the highest rec of the last W seconds, at most
 *        max_step_down a time; held when that max is still >= base
 *        (HOLD_WINDOW) or when demand + tolerance_executors would still
 *        need base workers (HOLD_TOLERANCE: a drop of <= tolerance from the
 *        demand that set the size changes nothing);
 *  no data since start (last_data_ms <= 0) or older than stale_after_s:
 *        hold the last desired size (the current one when nothing was
 *        decided yet, and never below the current one when the last
 *        decision was made without knowing it); no growth; raised to A.
 *        Nothing known: desired = -1 and POLICY_F_NO_DECISION. A held size
 *        that is real also enters the window, so nothing shrinks for W
 *        after the feed comes back;
 *  the first known current size after policy_state_init enters the
 *        window, so a restarted daemon never shrinks sooner than W after it
 *        learns its size (a first report may cover only some apps), in
 *        whatever order lines arrive; an unknown size never enters it;
 *  current unknown with fresh data: desired = window max (POLICY_R_INITIAL),
 *        flagged POLICY_F_CURRENT_UNKNOWN: actuators only grow on it;
 *  idle release (idle_release_s > 0, fresh data, and W after the first
 *        known size): when every app is finished (ended or expired) or asks
 *        for 0 executors and holds none (numberAllExecutors 0, so Spark has
 *        already let its executors go after its own executorIdleTimeout),
 *        and the demand has been 0 for idle_release_s (at once when no app
 *        is active), the drop is no oscillation: the window is emptied and
 *        the tolerance holds nothing (POLICY_F_RELEASED), so the size goes
 *        down to the recommendation now (still never below A, min, steps).
 * Returns 0, -EINVAL (NULL or nonsense input: negative sizes, min > max),
 * or -EDOM (an executor does not fit in a worker: E < 1). On error st is
 * untouched, out->desired = -1 and out->reason_text says what is wrong. */
int policy_evaluate(const policy_input *in, policy_state *st, policy_result *out);

/* E = floor(min(worker_cores / executor_cores, worker_memory_mb / executor_memory_mb)).
 * Returns E >= 1, -EINVAL for non-positive sizes, -EDOM when E < 1. */
int policy_executors_per_worker(int worker_cores, int worker_memory_mb,
                                int executor_cores, int executor_memory_mb);

/* An app's demand under conf->demand: numberTargetExecutors, or with
 * POLICY_DEMAND_MAX_NEEDED max(target, numberMaxNeededExecutors) (target
 * alone when max-needed is unknown; target still carries minExecutors), or
 * with POLICY_DEMAND_RAMP, while Spark's ramp is doubling
 * (numberExecutorsToAdd > 1), the step it takes next:
 * max(target, min(max-needed, target + to-add)); target otherwise. */
int policy_app_demand(const policy_conf *conf, const policy_app *app);
/* The same without the step ahead: what Spark asks for now. */
int policy_app_demand_now(const policy_conf *conf, const policy_app *app);

/* Non-zero while the app counts: not ended, and seen within app_expiry_s
 * (0 = never expires). */
int policy_app_active(const policy_conf *conf, const policy_app *app, int64_t now_ms);

/* Start time of a Spark app from its id: standalone "app-YYYYMMDDHHMMSS-NNNN"
 * (the master formats it in its own time zone; read here as UTC, which keeps
 * the order of one master's apps) or local mode "local-<epoch ms>".
 * Anything else, or NULL, returns fallback (e.g. first-seen time). */
int64_t policy_app_start_ms(const char *app_id, int64_t fallback);

/* Stable lowercase name of a reason code ("up", "hold_window", ...). */
const char *policy_reason_name(policy_reason r);

#endif
