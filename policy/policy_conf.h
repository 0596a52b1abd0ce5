/* policy_conf.h: the knobs of the decision rule for one cluster.
 * Plain data, shared by the config loader and the pure policy module. */
#ifndef SS_POLICY_CONF_H
#define SS_POLICY_CONF_H

typedef enum policy_demand_source {
    POLICY_DEMAND_TARGET = 0,     /* numberTargetExecutors (follows the ramp) */
    POLICY_DEMAND_MAX_NEEDED = 1, /* numberMaxNeededExecutors (full backlog) */
    POLICY_DEMAND_RAMP = 2        /* target, one step of Spark's ramp ahead while it doubles */
} policy_demand_source;

/* Where the idle buffer I stands. Spark places new executors on the workers
 * with the most free cores first, so an idle worker rarely stays idle: with
 * executor churn, A + I keeps growing towards one worker per executor. */
typedef enum policy_idle_mode {
    POLICY_IDLE_OVER_BUSY = 0,    /* D = max(N, A) + I: I whole idle workers (the original rule) */
    POLICY_IDLE_OVER_NEED = 1     /* D = max(N + I, A): I workers of room over the need */
} policy_idle_mode;

typedef struct policy_conf {
    int min_workers;             /* never fewer */
    int max_workers;             /* never more */
    int idle_workers;            /* I: idle buffer kept above busy/needed */
    int scale_down_window_s;     /* W: max recommendation over the last W s */
    int stale_after_s;           /* feed older than this: hold size */
    int app_expiry_s;            /* app silent this long: finished */
    int max_step_up;             /* workers added per evaluation, 0 = no limit */
    int max_step_down;           /* workers removed per evaluation, 0 = no limit */
    int tolerance_executors;     /* demand jitter ignored on scale-down */
    int app_min_executors;       /* gang minimum per app in a shared pool */
    policy_demand_source demand; /* which gauge is the demand */
    char pool[64];               /* capacity pool name, "" = none */
    policy_idle_mode idle_mode;  /* 0 = the original rule (README, "The decision") */
    int idle_release_s;          /* demand 0 this long, no executors held: shrink without
                                  * the window (policy.h); 0 = never */
} policy_conf;

#endif
