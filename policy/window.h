/* window.h: the scale-down stabilization window: the highest recommendation
 * of the last W seconds in fixed memory, whatever W is. Pure, no malloc. */
#ifndef SS_POLICY_WINDOW_H
#define SS_POLICY_WINDOW_H

#include <stdint.h>

/* W is cut into at most POLICY_WINDOW_SLOTS - 1 buckets of ceil(W / 63)
 * each; a bucket keeps the max of what was pushed into it. The window a
 * query sees spans W to W + one bucket (never less: shrinking late is safe,
 * shrinking early is not). */
#define POLICY_WINDOW_SLOTS 64

typedef struct policy_window {
    int64_t window_ms;                  /* W; <= 0 = no window */
    int64_t bucket_ms;                  /* width of one bucket */
    int64_t bucket[POLICY_WINDOW_SLOTS]; /* bucket number held; INT64_MIN = empty */
    int32_t value[POLICY_WINDOW_SLOTS];  /* max pushed into that bucket */
} policy_window;

/* Empties the window and sizes it for W = window_ms. */
void policy_window_init(policy_window *w, int64_t window_ms);

/* Changes W keeping history safe: everything still held is folded into one
 * entry at now_ms, so a shorter W never releases a value early. No-op when
 * W is unchanged. */
void policy_window_resize(policy_window *w, int64_t window_ms, int64_t now_ms);

/* Records value at now_ms. */
void policy_window_push(policy_window *w, int64_t now_ms, int value);

/* Highest value pushed within the window ending at now_ms, or floor when
 * that is higher or nothing is held (or W <= 0). A clock that stepped back
 * keeps newer entries counting (for at most one more window). */
int policy_window_max(const policy_window *w, int64_t now_ms, int floor);

#endif
