/* pipeline.h: what happens to every sample, whatever source it came from:
 * carbon lines are split, decoded and parsed here; pollers hand over
 * samples they decoded themselves (pipeline_put). Then: store, count. */
#ifndef SS_PIPELINE_H
#define SS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "carbon/carbon.h"
#include "lib/base/addr.h"
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
    PIPE_DROP_TIMESTAMP_SKEW,      /* further from now than max_clock_skew_s */
    PIPE_DROP_VALUE_RANGE,         /* not a plausible value for that gauge */
    PIPE_DROP_APP_ID_TOO_LONG,     /* app id (namespace) over STORE_MAX_ID bytes */
    PIPE_DROP_NAME_TOO_LONG,       /* gauge name over STORE_MAX_ID bytes */
    PIPE_DROP_ENCODING,            /* path is not valid UTF-8 */
    PIPE_DROP_INVALID,             /* anything else the store refused */
    PIPE_DROP_SOURCE,              /* sender not in the cluster's allowed_sources */
    PIPE_DROP_CAP_BYTES,           /* the store is at store.max_bytes */
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

struct ss_recorder;

typedef struct ss_pipeline {
    const spark_prefixes *prefixes;      /* not owned */
    ss_store *store;                     /* not owned */
    struct ss_recorder *rec;             /* ingest.record: lines taken are recorded; NULL = off */
    pipeline_stats stats;
    int64_t now_ms;                      /* wall clock of the current read batch */
    int64_t max_skew_ms;                 /* samples further from now are dropped; 0 = off */
    const ss_cidr_list *allow;           /* per cluster: who may send its lines; NULL = anyone */
    uint64_t *refused;                   /* per cluster: lines refused by allow */
    size_t nclusters;
} ss_pipeline;

/* Timestamps further than this from the receiver's clock are refused by
 * default: a line stamped years ahead would otherwise hold its series. */
#define PIPELINE_DEFAULT_SKEW_MS (300 * 1000)

/* Largest plausible values: executor, core and worker counts, counters,
 * memory in MB. Anything larger (or negative) is refused as value_range. */
#define PIPELINE_MAX_COUNT 1e6
#define PIPELINE_MAX_COUNTER 1e12
#define PIPELINE_MAX_MEMORY_MB 1e9
#define PIPELINE_MAX_OTHER 1e15

/* Per-source context handed to carbon_stream callbacks. */
typedef struct pipeline_source {
    ss_pipeline *pipe;
    const char *peer;                    /* sender's address, names worker sources */
    const struct sockaddr *addr;         /* the same as a sockaddr, for allowlists; may be NULL */
    store_hint hint;                     /* the app it wrote last (zero-initialised) */
} pipeline_source;

void pipeline_init(ss_pipeline *p, const spark_prefixes *prefixes, ss_store *store);

typedef struct ss_config ss_config;
/* The pure part of ingest as a configuration describes it, for sparkscaled
 * and sparkscalectl replay alike: a store with the configuration's limits,
 * every cluster's metrics prefix, and the pipeline over them (its clock-skew
 * window set). *store and *prefixes are set as soon as made, so the caller
 * frees them on failure too. Returns 0, or -1 with err set. */
int pipeline_open(ss_pipeline *p, const ss_config *cfg, ss_store **store,
                  spark_prefixes **prefixes, char *err, size_t errlen);

/* Per-cluster allowlists for carbon lines: allow[c] (borrowed, nclusters
 * entries; an empty list allows anyone) is checked once a line's cluster is
 * known, before its numbers are parsed; refusals are counted in refused[c]
 * (caller storage) and as source_not_allowed. */
void pipeline_set_allowlists(ss_pipeline *p, const ss_cidr_list *allow, uint64_t *refused,
                             size_t nclusters);

/* Stamps the clocks once per read batch, not once per line: the wall clock
 * for last-seen times, the store's monotonic clock for reaction times. */
void pipeline_begin_batch(ss_pipeline *p);

/* One decoded sample of a source (m borrowed for the call; source names a
 * worker source, may be NULL): checked (timestamp within max_skew_ms of
 * now, value plausible for its gauge, ids within bounds and valid UTF-8),
 * then stored and counted like a carbon line.
 * Returns the store's code (STORE_CHANGED, STORE_UNCHANGED or a negative
 * STORE_E_*, counted by reason). */
int pipeline_put(ss_pipeline *p, const spark_metric *m, const char *source, int64_t ts_ms,
                 double value);
/* The same with a sender's store hint (may be NULL). */
int pipeline_put_hinted(ss_pipeline *p, const spark_metric *m, const char *source,
                        int64_t ts_ms, double value, store_hint *hint);

/* Non-zero when value is plausible for m's gauge (pure, for tests). */
int pipeline_value_plausible(const spark_metric *m, double value);

/* The carbon_line_fn: ctx is a pipeline_source. */
void pipeline_on_line(void *ctx, const char *line, size_t len, int err);

/* Feeds one whole chunk that is its own stream (a UDP datagram). */
void pipeline_feed_datagram(pipeline_source *src, const char *data, size_t len,
                            char *carry, size_t max_line);

#endif
