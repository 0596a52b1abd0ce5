/* source.h: what sparkscaled reads Spark's data from: carbon over TCP and
 * UDP today, the HTTP pollers next. Each source has its own constructor
 * (carbon_tcp_create, ...) and feeds the pipeline; through this interface
 * daemon.c keeps them in one list, status.c reads their counters, and
 * shutdown closes them all the same way. */
#ifndef SS_SOURCE_H
#define SS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/clock.h"

typedef struct ss_source ss_source;

/* One counter or gauge for /metrics. Strings are static. */
typedef struct ss_source_metric {
    const char *name;       /* Prometheus name, sparkscale_... */
    const char *type;       /* "counter" | "gauge" */
    const char *help;
    const char *labels;     /* e.g. "reason=\"idle\"", or NULL */
    uint64_t value;
} ss_source_metric;

#define SS_SOURCE_MAX_METRICS 64

typedef struct ss_source_ops {
    const char *kind;       /* "carbon_tcp", "carbon_udp", ... */
    /* The bound port, or -1 for a source that does not listen. */
    int (*port)(const ss_source *s);
    /* Writes up to cap metrics into out; returns how many. Metrics with the
     * same name are written next to each other. */
    size_t (*metrics)(const ss_source *s, ss_source_metric *out, size_t cap);
    /* Stops reading (partial last lines are still processed), closes every
     * handle, frees s in the close callbacks, then calls done(ctx). */
    void (*close)(ss_source *s, void (*done)(void *ctx), void *ctx);
} ss_source_ops;

/* Every source struct starts with this. */
struct ss_source {
    const ss_source_ops *ops;
};

/* A listener's read budget for one loop turn, in bytes and in time (lines
 * that create series cost ten times a known sample's, so bytes alone do not
 * bound it). Past either, the listener stops reading until the next turn
 * (the kernel holds the rest), so timers, replies and other clients run.
 * It also keeps what the last read cost per KiB, so a stream listener can
 * size its next read to the time left: one read of costly lines then
 * cannot overrun the turn by much. */
typedef struct ss_turn_budget {
    size_t bytes;         /* read this turn */
    int64_t t0_us;        /* when the turn's first read began */
    int64_t read_us;      /* when the current read began */
    uint32_t ns_per_kib;  /* what the last read cost; 0 = not known yet */
} ss_turn_budget;

/* Before handling a read. */
static inline void ss_turn_budget_begin(ss_turn_budget *b)
{
    b->read_us = ss_mono_us();
    if (b->bytes == 0)
        b->t0_us = b->read_us;
}

/* After handling n bytes: 1 once the turn's budget is spent. */
static inline int ss_turn_budget_spend(ss_turn_budget *b, size_t n, size_t max_bytes,
                                       int64_t max_us)
{
    int64_t now = ss_mono_us();
    if (n > 0) {
        uint64_t ns = (uint64_t)(now - b->read_us) * 1000u * 1024u / n;
        b->ns_per_kib = ns > UINT32_MAX ? UINT32_MAX : ns > 0 ? (uint32_t)ns : 1;
    }
    b->bytes += n;
    return b->bytes >= max_bytes || now - b->t0_us >= max_us;
}

/* The bytes the next read may take: what the time left of max_us allows at
 * the last read's cost, within [floor, cap]. */
static inline size_t ss_turn_budget_read_size(const ss_turn_budget *b, int64_t max_us,
                                              size_t floor, size_t cap)
{
    if (b->ns_per_kib == 0)
        return cap;
    int64_t left = b->bytes ? max_us - (ss_mono_us() - b->t0_us) : max_us;
    if (left <= 0)
        return floor;
    uint64_t fit = (uint64_t)left * 1000u * 1024u / b->ns_per_kib;
    return fit < floor ? floor : fit > cap ? cap : (size_t)fit;
}

/* At the end of a loop turn. */
static inline void ss_turn_budget_reset(ss_turn_budget *b) { b->bytes = 0; }

static inline const char *ss_source_kind(const ss_source *s) { return s->ops->kind; }
static inline int ss_source_port(const ss_source *s) { return s->ops->port(s); }
static inline size_t ss_source_metrics(const ss_source *s, ss_source_metric *out, size_t cap)
{
    return s->ops->metrics(s, out, cap);
}
static inline void ss_source_close(ss_source *s, void (*done)(void *ctx), void *ctx)
{
    s->ops->close(s, done, ctx);
}

#endif
