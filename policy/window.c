/* window.c: the scale-down stabilization window (a ring of max-buckets).
 * Bucketing keeps memory fixed for any W at the price of holding a value up
 * to one bucket (W/63) longer than W, which errs on the safe side. */
#include "policy/window.h"

#include <limits.h>

#define EMPTY INT64_MIN

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int slot_of(int64_t bucket)
{
    int64_t s = bucket % POLICY_WINDOW_SLOTS;
    return (int)(s < 0 ? s + POLICY_WINDOW_SLOTS : s);
}

void policy_window_init(policy_window *w, int64_t window_ms)
{
    w->window_ms = window_ms > 0 ? window_ms : 0;
    /* SLOTS - 1 buckets cover W, so the up to SLOTS buckets a query touches
     * (a partial one at each end) never alias in the ring. */
    w->bucket_ms = w->window_ms > 0
        ? (w->window_ms + POLICY_WINDOW_SLOTS - 2) / (POLICY_WINDOW_SLOTS - 1) : 0;
    for (int i = 0; i < POLICY_WINDOW_SLOTS; i++) {
        w->bucket[i] = EMPTY;
        w->value[i] = 0;
    }
}

void policy_window_push(policy_window *w, int64_t now_ms, int value)
{
    if (w->window_ms <= 0)
        return;
    int64_t b = floor_div(now_ms, w->bucket_ms);
    int s = slot_of(b);
    if (w->bucket[s] == EMPTY || w->bucket[s] < b) {
        w->bucket[s] = b;
        w->value[s] = value;
    } else if (value > w->value[s]) {
        /* Same bucket, or a newer one left by a clock that stepped back:
         * keep the newer bucket number and the higher value (hold longer). */
        w->value[s] = value;
    }
}

int policy_window_max(const policy_window *w, int64_t now_ms, int floor)
{
    if (w->window_ms <= 0)
        return floor;
    int64_t hi = floor_div(now_ms, w->bucket_ms);
    int64_t lo = floor_div(now_ms - w->window_ms, w->bucket_ms);
    int m = floor;
    for (int i = 0; i < POLICY_WINDOW_SLOTS; i++) {
        int64_t b = w->bucket[i];
        if (b == EMPTY || b < lo || b > hi + POLICY_WINDOW_SLOTS)
            continue;
        if (w->value[i] > m)
            m = w->value[i];
    }
    return m;
}

void policy_window_resize(policy_window *w, int64_t window_ms, int64_t now_ms)
{
    if (window_ms < 0)
        window_ms = 0;
    if (window_ms == w->window_ms)
        return;
    int held = policy_window_max(w, now_ms, INT_MIN);
    policy_window_init(w, window_ms);
    if (held != INT_MIN)
        policy_window_push(w, now_ms, held);
}
