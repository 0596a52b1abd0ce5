/* hist.h: a duration histogram with fixed bounds (100 us .. 30 s), the
 * shape Prometheus histograms are printed from. Plain data, no allocation. */
#ifndef SS_HIST_H
#define SS_HIST_H

#include <stdint.h>

/* Per-bucket (not cumulative) counts: bucket i holds durations <=
 * ss_hist_bounds_us[i]; the last bucket is +Inf. */
#define SS_HIST_BUCKETS 16
extern const int64_t ss_hist_bounds_us[SS_HIST_BUCKETS];

typedef struct ss_hist {
    uint64_t count;
    uint64_t sum_us;
    int64_t last_us;
    int64_t max_us;
    uint64_t buckets[SS_HIST_BUCKETS];
} ss_hist;

/* Adds one observation (negative counts as 0). */
void ss_hist_add(ss_hist *h, int64_t us);

#endif
