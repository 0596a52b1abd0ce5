/* join.h: "count what is still closing, then call done": the one place
 * where a component with several libuv handles or parts learns that the
 * last of them has closed. Header-only, no allocation. */
#ifndef SS_JOIN_H
#define SS_JOIN_H

#include <stddef.h>

typedef struct ss_join {
    int pending;                  /* parts still closing, + 1 while arming */
    void (*done)(void *ctx);
    void *ctx;
} ss_join;

/* Starts a join with one guard reference, so parts that finish at once
 * cannot fire done before every part was added. Release it with
 * ss_join_arm() once all parts are started. */
static inline void ss_join_init(ss_join *j, void (*done)(void *ctx), void *ctx)
{
    j->pending = 1;
    j->done = done;
    j->ctx = ctx;
}

/* One more part to wait for. */
static inline void ss_join_add(ss_join *j) { j->pending++; }

/* A part finished; the last one calls done (which may free j's owner). */
static inline void ss_join_leave(ss_join *j)
{
    if (--j->pending == 0 && j->done)
        j->done(j->ctx);
}

/* Drops the guard taken by ss_join_init. */
static inline void ss_join_arm(ss_join *j) { ss_join_leave(j); }

/* A callback-shaped ss_join_leave: pass the join as ctx. */
static inline void ss_join_leave_cb(void *join) { ss_join_leave(join); }

#endif
