/* pipeline.c: per-line work shared by the TCP and UDP listeners. The path is
 * decoded before the numbers are parsed: most Spark lines are not ours. */
#include "ingest/pipeline.h"

#include <string.h>

#include "lib/base/clock.h"
#include "lib/base/str.h"

static const char *drop_names[PIPE_DROP_COUNT] = {
    "unknown_cluster", "bad_path", "cap_apps", "cap_series", "cap_workers",
    "out_of_order", "nomem", "timestamp_skew", "value_range", "app_id_too_long",
    "gauge_name_too_long", "encoding", "invalid", "source_not_allowed",
};

const char *pipeline_drop_name(int reason)
{
    return reason >= 0 && reason < PIPE_DROP_COUNT ? drop_names[reason] : "?";
}

void pipeline_init(ss_pipeline *p, const spark_prefixes *prefixes, ss_store *store)
{
    memset(p, 0, sizeof *p);
    p->prefixes = prefixes;
    p->store = store;
    p->max_skew_ms = PIPELINE_DEFAULT_SKEW_MS;
    pipeline_begin_batch(p);
}

void pipeline_set_allowlists(ss_pipeline *p, const ss_cidr_list *allow, uint64_t *refused,
                             size_t nclusters)
{
    p->allow = allow;
    p->refused = refused;
    p->nclusters = nclusters;
}

void pipeline_begin_batch(ss_pipeline *p)
{
    p->now_ms = ss_wall_ms();
    store_set_clock(p->store, ss_mono_us());
}

static int store_drop_reason(int rc)
{
    switch (rc) {
    case STORE_E_CAP_APPS:    return PIPE_DROP_CAP_APPS;
    case STORE_E_CAP_SERIES:  return PIPE_DROP_CAP_SERIES;
    case STORE_E_CAP_WORKERS: return PIPE_DROP_CAP_WORKERS;
    case STORE_E_OLD:         return PIPE_DROP_OLD;
    case STORE_E_NOMEM:       return PIPE_DROP_NOMEM;
    case STORE_E_CLUSTER:     return PIPE_DROP_UNKNOWN_CLUSTER;
    default:                  return PIPE_DROP_INVALID;
    }
}

int pipeline_value_plausible(const spark_metric *m, double v)
{
    if (!(v >= 0))
        return m->gauge == SPARK_G_UNKNOWN && v >= -PIPELINE_MAX_OTHER;
    if (m->gauge == SPARK_G_UNKNOWN)
        return v <= PIPELINE_MAX_OTHER;
    if (m->is_counter)
        return v <= PIPELINE_MAX_COUNTER;
    if (m->gauge == SPARK_G_WORKER_MEM_USED_MB || m->gauge == SPARK_G_WORKER_MEM_FREE_MB)
        return v <= PIPELINE_MAX_MEMORY_MB;
    return v <= PIPELINE_MAX_COUNT;
}

/* Valid UTF-8 without control characters: safe in logs, JSON and protobuf. */
static int printable_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return ss_utf8_valid(s, n);
}

/* Why a decoded sample is refused before it reaches the store, or -1. */
static int check_sample(const ss_pipeline *p, const spark_metric *m, int64_t ts_ms, double v)
{
    if (m->kind == SPARK_KIND_APP && m->app_len > STORE_MAX_ID)
        return PIPE_DROP_APP_ID_TOO_LONG;
    if (m->name_len > STORE_MAX_ID)
        return PIPE_DROP_NAME_TOO_LONG;
    if ((m->app && !printable_utf8(m->app, m->app_len)) ||
        (m->name && !printable_utf8(m->name, m->name_len)))
        return PIPE_DROP_ENCODING;
    if (p->max_skew_ms > 0 &&
        (ts_ms > p->now_ms + p->max_skew_ms || ts_ms < p->now_ms - p->max_skew_ms))
        return PIPE_DROP_TIMESTAMP_SKEW;
    if (!pipeline_value_plausible(m, v))
        return PIPE_DROP_VALUE_RANGE;
    return -1;
}

int pipeline_put(ss_pipeline *p, const spark_metric *m, const char *source, int64_t ts_ms,
                 double value)
{
    int why = check_sample(p, m, ts_ms, value);
    if (why >= 0) {
        p->stats.dropped[why]++;
        return STORE_E_INVAL;
    }
    int rc = store_put(p->store, m, source, ts_ms, value, p->now_ms);
    if (rc < 0)
        p->stats.dropped[store_drop_reason(rc)]++;
    else
        p->stats.stored++;
    return rc;
}

void pipeline_on_line(void *ctx, const char *line, size_t len, int err)
{
    pipeline_source *src = ctx;
    ss_pipeline *p = src->pipe;

    p->stats.lines++;
    if (err != CARBON_OK) {
        p->stats.rejected[err]++;
        return;
    }

    const char *path;
    size_t path_len;
    int rc = carbon_split_path(line, len, &path, &path_len);
    if (rc != CARBON_OK) {
        p->stats.rejected[rc]++;
        return;
    }

    spark_metric m;
    rc = spark_path_decode(p->prefixes, path, path_len, &m);
    if (rc == SPARK_PATH_SKIP) {
        p->stats.skipped++;
        return;
    }
    if (rc < 0) {
        p->stats.dropped[rc == SPARK_PATH_E_CLUSTER ? PIPE_DROP_UNKNOWN_CLUSTER
                                                    : PIPE_DROP_SHAPE]++;
        return;
    }
    /* Who may speak for this cluster: checked before anything is parsed. */
    if (p->allow && src->addr && (size_t)m.cluster < p->nclusters &&
        !ss_cidr_list_allows(&p->allow[m.cluster], src->addr)) {
        p->stats.dropped[PIPE_DROP_SOURCE]++;
        p->refused[m.cluster]++;
        return;
    }

    carbon_line cl;
    rc = carbon_parse_line(line, len, &cl);
    if (rc != CARBON_OK) {
        p->stats.rejected[rc]++;
        return;
    }
    /* When the full parse accepts a line, its path is the one split above
     * (tests/fuzz/fuzz_carbon.c checks it), so m still describes it. */

    pipeline_put(p, &m, src->peer, cl.timestamp_ms, cl.value);
}

void pipeline_feed_datagram(pipeline_source *src, const char *data, size_t len,
                            char *carry, size_t max_line)
{
    carbon_stream s;
    carbon_stream_init(&s, carry, max_line);
    carbon_stream_feed(&s, data, len, pipeline_on_line, src);
    carbon_stream_finish(&s, pipeline_on_line, src);
}
