/* pipeline.h: what happens to every carbon line, whatever socket it came in
 * on: split the path, decode it, parse relevant lines, store, count. */
#ifndef SS_PIPELINE_H
#define SS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "carbon/carbon.h"
#include "carbon/spark_path.h"
#include "ingest/store.h"

/* Why a line was dropped after the carbon parser accepted its shape. */
enum {
    PIPE_DROP_UNKNOWN_CLUSTER = 0, /* Spark-shaped path, no configured prefix */
    PIPE_DROP_SHAPE,               /* empty namespace or gauge */
    PIPE_DROP_CAP_APPS,
    PIPE_DROP_CAP_SERIES,
    PIPE_DROP_CAP_WORKERS,
    PIPE_DROP_OLD,                 /* older than the newest sample of its series */
    PIPE_DROP_NOMEM,
    PIPE_DROP_COUNT
};
const char *pipeline_drop_name(int reason);

typedef struct pipeline_stats {
    uint64_t lines;                      /* every line seen, also dropped ones */
    uint64_t bytes;
    uint64_t skipped;                    /* well-formed path, not a metric we track */
    uint64_t stored;                     /* relevant and kept */
    uint64_t rejected[CARBON_E_COUNT];   /* by carbon parse error (EMPTY = blank lines) */
    uint64_t dropped[PIPE_DROP_COUNT];
} pipeline_stats;

typedef struct ss_pipeline {
    const spark_prefixes *prefixes;      /* not owned */
    ss_store *store;                     /* not owned */
    pipeline_stats stats;
    int64_t now_ms;                      /* wall clock of the current read batch */
    int64_t now_us;                      /* monotonic clock of the current read batch */
    int64_t *changed_at_us;              /* per cluster: first unevaluated change, 0 = none */
    size_t nclusters;
} ss_pipeline;

/* Per-source context handed to carbon_stream callbacks. */
typedef struct pipeline_source {
    ss_pipeline *pipe;
    const char *peer;                    /* sender's address, names worker sources */
} pipeline_source;

/* changed_at_us is caller-owned storage of nclusters entries. */
void pipeline_init(ss_pipeline *p, const spark_prefixes *prefixes, ss_store *store,
                   int64_t *changed_at_us, size_t nclusters);

/* Stamps the clocks once per read batch, not once per line. */
void pipeline_begin_batch(ss_pipeline *p);

/* The carbon_line_fn: ctx is a pipeline_source. */
void pipeline_on_line(void *ctx, const char *line, size_t len, int err);

/* Feeds one whole chunk that is its own stream (a UDP datagram). */
void pipeline_feed_datagram(pipeline_source *src, const char *data, size_t len,
                            char *carry, size_t max_line);

#endif
