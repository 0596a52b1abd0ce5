/* hist.c: see hist.h. */
#include "lib/base/hist.h"

const int64_t ss_hist_bounds_us[SS_HIST_BUCKETS] = {
    100, 250, 500, 1000, 2000, 3000, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000, 5000000, 30000000, INT64_MAX,
};

void ss_hist_add(ss_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->count++;
    h->sum_us += (uint64_t)us;
    h->last_us = us;
    if (us > h->max_us)
        h->max_us = us;
    int i = 0;
    while (i < SS_HIST_BUCKETS - 1 && us > ss_hist_bounds_us[i])
        i++;
    h->buckets[i]++;
}
