/* plan.h: the actuator's pure decisions, no I/O: whether a consumed
 * decision is new, a duplicate, stale or expired given its cluster's
 * history; which workers may go on a scale-in (from the Spark master's
 * state and the decision); which victims still may go right before the
 * removal. Unit-tested in tests/unit/test_plan.c. */
#ifndef SS_ACTUATOR_PLAN_H
#define SS_ACTUATOR_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "lib/bus/record.h"
#include "lib/spark/master_json.h"

/* ---- ordering ----
 * A cluster's decisions share one partition, so the partition order is the
 * decision order; (producer epoch, sequence) only identifies a decision.
 * Epochs are wall-clock starts of sparkscaled and may step back across a
 * restart: they are compared for equality, never ordered. */

#define PLAN_EPOCHS 8                 /* epochs remembered per cluster */
#define PLAN_RECENT 64                /* decision ids remembered per cluster */

typedef struct plan_id {
    int64_t epoch;
    uint64_t seq;
} plan_id;

typedef struct plan_history {
    struct {
        int64_t epoch;
        uint64_t max_seq;             /* highest sequence seen in that epoch */
    } epochs[PLAN_EPOCHS];            /* most recently started first */
    size_t nepochs;
    plan_id recent[PLAN_RECENT];      /* ring of the ids seen last */
    size_t nrecent, next;
} plan_history;

typedef enum plan_verdict {
    PLAN_NEW,
    PLAN_DUPLICATE,                   /* this (epoch, sequence) was seen */
    PLAN_STALE,                       /* an older sequence of a known epoch */
    PLAN_EXPIRED                      /* now is past its expires_at_ms */
} plan_verdict;

/* What to do with decision (epoch, seq) arriving now, in partition order,
 * given h. expires_at_ms 0 = never. Does not change h. */
plan_verdict plan_classify(const plan_history *h, int64_t epoch, uint64_t seq, int64_t expires_at_ms,
                           int64_t now_ms);

/* Remembers (epoch, seq) as seen. A sequence lower than one already seen in
 * its epoch does not lower the epoch's maximum. */
void plan_history_note(plan_history *h, int64_t epoch, uint64_t seq);

/* ---- scale-in victims ---- */

typedef struct plan_victim {
    ss_worker_ref ref;                /* id, host, port */
    int decommissioned;               /* already DECOMMISSIONED: no request needed */
    int named;                        /* in the decision's removable_workers */
} plan_victim;

typedef struct plan_victims {
    plan_victim *v;                   /* owned; plan_victims_free */
    size_t n;
    ss_kept_worker kept[SS_AUDIT_MAX_WORKERS];  /* not removed, with why (first ones) */
    size_t nkept;                     /* entries in kept */
    size_t kept_total;                /* all of them */
    size_t busy;                      /* workers running something */
    char note[SS_DECISION_REASON_MAX];/* one line: how many and why */
} plan_victims;

void plan_victims_free(plan_victims *pv);

/* Chooses up to k workers to remove from master state m (the caller checked
 * that the master is ALIVE). Only workers without used cores go, ALIVE or
 * already DECOMMISSIONED; Spark decommissions by host, so a host goes whole
 * and only if none of its workers is busy or of unknown state, and only if
 * all its workers fit in what is left of k. Order: hosts whose workers are
 * all DECOMMISSIONED (useless already), then hosts with a worker the
 * decision named removable, then the other idle hosts, each group by host
 * name. Fills *out (zeroed first). Returns 0 or -ENOMEM. */
int plan_choose_victims(const ss_master_state *m, const ss_worker_ref *named, size_t nnamed, int k,
                        plan_victims *out);

/* Without a master: the decision's removable workers, at most k, when the
 * decision is younger than max_age_ms (decided_at_ms vs now_ms). */
int plan_victims_from_decision(const ss_worker_ref *named, size_t nnamed, int k, int64_t decided_at_ms,
                               int64_t now_ms, int64_t max_age_ms, plan_victims *out);

/* Right before removal: victims (in/out) are re-checked against a fresh
 * state m. A victim stays if its worker is gone (absent or DEAD), or has no
 * used cores and no busy worker on its host, and, when need_decommissioned,
 * is DECOMMISSIONED (or gone). Dropped ones are appended to kept with their
 * reason. Returns how many were dropped. */
size_t plan_recheck(plan_victims *pv, const ss_master_state *m, int need_decommissioned);

/* Counts victims that are DECOMMISSIONED or gone in m (the decommission
 * wait ends when all are). */
size_t plan_decommissioned(const plan_victims *pv, const ss_master_state *m);

/* Appends a kept worker (cut beyond SS_AUDIT_MAX_WORKERS; kept_total exact). */
void plan_keep(plan_victims *pv, const ss_worker_ref *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
