/* replay.h: the parts of `sparkscalectl replay`: the simulated Spark
 * standalone cluster a policy trace runs on, and the SVG chart. */
#ifndef SS_CTL_REPLAY_H
#define SS_CTL_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* One second of a replay, as the table, the chart and the summary see it. */
typedef struct rp_second {
    int64_t t_ms;            /* wall clock at the start of the second */
    int demand;              /* executors the apps want (what the input says) */
    int need;                /* N = ceil(demand / E) */
    int recommended;         /* the policy's recommendation; -1 before the first */
    int desired;             /* the newest decision published; -1 none yet */
    int current;             /* workers alive */
    int busy;                /* busy workers as the policy took them; -1 unknown */
    int oshinko;             /* the Oshinko rule's cluster size */
    int reason;              /* policy_reason of the newest evaluation; -1 none */
    int held;                /* a scale-down held by the window */
    int released;            /* the idle release let the window go */
    int data;                /* some data of the cluster arrived (Oshinko polls) */
} rp_second;

/* ---- the simulated cluster (replay_model.c) ----
 * Workers with E executor slots each; per app, executors that follow its
 * numberTargetExecutors, kept spark.dynamicAllocation.executorIdleTimeout
 * after a drop (a finished app's go at once), placed as a Spark 3.5 master
 * does (the workers with the most free cores first; spreadOut true: one
 * executor a worker in turn, false: fill a worker before the next); the
 * actuator adds workers, and removes only workers without executors,
 * newest first. */
typedef struct rp_model rp_model;

rp_model *rp_model_create(int napps, int executors_per_worker, int idle_timeout_s,
                          int spread_out);
void rp_model_destroy(rp_model *m);
/* The actuator: towards want workers (only idle ones go). */
void rp_model_resize(rp_model *m, int want);
/* App app wants want executors at second now_s; finished: its driver is gone. */
void rp_model_set_app(rp_model *m, int app, int want, int now_s, int finished);
int rp_model_alive(const rp_model *m);
int rp_model_busy(const rp_model *m);
int rp_model_running(const rp_model *m, int app);
/* Executors on worker slot i; -1 when the slot holds no worker. */
int rp_model_worker_execs(const rp_model *m, int i);
int rp_model_slots(const rp_model *m);

/* ---- the chart (replay_svg.c) ----
 * A self-contained SVG (no scripts, fonts or links): demand in workers,
 * recommended, desired and current workers, the Oshinko rule's size, and
 * the seconds a scale-down was held by the window shaded. Returns 0, or -1
 * with errno set. */
int rp_svg_write(const char *path, const rp_second *s, size_t n, const char *title,
                 const char *subtitle);

#endif
