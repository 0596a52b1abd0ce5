/* decision_log.h: the recent decisions of sparkscaled, for the status API
 * and the dashboard: per cluster a few changed decisions as numbers, and
 * one ring of the newest decisions of all clusters with their reasons.
 * Single threaded (the loop); no I/O. */
#ifndef SS_DECISION_LOG_H
#define SS_DECISION_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/bus/record.h"

/* Decisions kept per cluster. A cluster's history is allocated on its
 * first decision and grows 1, 2, 4, 8: a cluster that never changes costs
 * a pointer and one small record, and 10,000-50,000 clusters are usual. */
#define DECISION_LOG_PER_CLUSTER 8
/* Decisions of all clusters kept with their reason text (the text is what
 * costs: up to SS_DECISION_REASON_MAX bytes, sized to it). */
#define DECISION_LOG_TEXTS 256

typedef struct ss_decision_log ss_decision_log;

/* One published decision, as numbers (32 bytes). Counts are clamped to
 * int16 (max_workers is far below); -1 = unknown. */
typedef struct ss_decision_rec {
    int64_t at_ms;                /* decided_at_ms, wall clock */
    uint64_t sequence;            /* per cluster, as published */
    int32_t demand_executors;     /* the policy's demand, executors */
    int16_t desired;
    int16_t current;
    int16_t busy;
    int16_t recommended;
    uint16_t per_worker;          /* executors per worker (E) */
    uint8_t code;                 /* ss_reason_code */
    uint8_t unused;
} ss_decision_rec;

/* For nclusters clusters (indexes 0..n-1); NULL when out of memory.
 * Caller destroys; destroy frees everything, NULL is a no-op. */
ss_decision_log *decision_log_create(size_t nclusters);
void decision_log_destroy(ss_decision_log *log);

/* Records cluster c's decision d (borrowed; its reason text is copied)
 * published with sequence and decided on demand_executors. Returns 0, or
 * -ENOMEM / -EINVAL (bad cluster): then nothing of it is kept, and the
 * decision itself is unaffected (the log only feeds the status page). */
int decision_log_add(ss_decision_log *log, int c, const ss_decision *d, uint64_t sequence,
                     int64_t demand_executors);

/* Cluster c's decisions held, newest first (i = 0); NULL past the end. The
 * pointer is owned by the log and valid until the next add for c. */
size_t decision_log_count(const ss_decision_log *log, int c);
const ss_decision_rec *decision_log_at(const ss_decision_log *log, int c, size_t i);

/* The reason of cluster c's decision with this sequence while it is among
 * the newest DECISION_LOG_TEXTS of all clusters, else NULL. Owned by the
 * log, valid until the next add. */
const char *decision_log_reason(const ss_decision_log *log, int c, uint64_t sequence);

/* The newest decisions of all clusters, newest first (i = 0): their record,
 * cluster (*c) and reason (owned by the log, valid until the next add);
 * NULL past the end. */
size_t decision_log_recent_count(const ss_decision_log *log);
const ss_decision_rec *decision_log_recent(const ss_decision_log *log, size_t i, int *c,
                                           const char **reason);

/* Heap the log holds, estimated as malloc uses it. */
size_t decision_log_bytes(const ss_decision_log *log);

#endif
