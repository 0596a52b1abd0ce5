/* pipeline.c: per-line work shared by the TCP and UDP listeners. The path is
 * decoded before the numbers are parsed: most Spark lines are not ours. */
#include "ingest/pipeline.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ingest/recorder.h"
#include "lib/base/clock.h"
#include "lib/base/str.h"
#include "lib/config/config.h"

static const char *drop_names[PIPE_DROP_COUNT] = {
    "unknown_cluster", "bad_path", "cap_apps", "cap_series", "cap_workers",
    "out_of_order", "nomem", "timestamp_skew", "value_range", "app_id_too_long",
    "gauge_name_too_long", "encoding", "invalid", "source_not_allowed", "cap_bytes",
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

int pipeline_open(ss_pipeline *p, const ss_config *cfg, ss_store **store,
                  spark_prefixes **prefixes, char *err, size_t errlen)
{
    size_t n = cfg->nclusters;
    store_limits lim = {
        .max_apps_per_cluster = cfg->store.max_apps_per_cluster,
        .max_apps = cfg->store.max_apps,
        .max_series_per_app = cfg->store.max_series_per_app,
        .max_workers_per_cluster = cfg->store.max_workers_per_cluster,
        .ring_size = cfg->store.ring_size,
        .max_bytes = (size_t)cfg->store.max_bytes,
    };
    *store = store_create(&lim, n);
    *prefixes = spark_prefixes_create(n);
    if (!*store || !*prefixes) {
        ss_errf(err, errlen, "out of memory for %zu clusters", n);
        return -1;
    }
    for (size_t c = 0; c < n; c++) {
        int rc = spark_prefixes_add(*prefixes, cfg->clusters[c].metrics_prefix, (int)c);
        if (rc != 0) {
            ss_errf(err, errlen, "cluster %s: metrics_prefix '%s': %s", cfg->clusters[c].name,
                    cfg->clusters[c].metrics_prefix,
                    rc == -EEXIST ? "used by another cluster" : strerror(-rc));
            return -1;
        }
    }
    pipeline_init(p, *prefixes, *store);
    p->max_skew_ms = (int64_t)cfg->ingest.max_clock_skew_s * 1000;
    return 0;
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
    case STORE_E_CAP_BYTES:   return PIPE_DROP_CAP_BYTES;
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

/* Valid UTF-8 without control characters: safe in logs, JSON and protobuf.
 * Eight bytes at a time for the usual all-ASCII id (this runs for every
 * stored line); anything else gets the full check. */
static int printable_utf8(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, s + i, 8);
        y = x ^ (ones * 0x7f);
        /* any byte >= 0x80, < 0x20 or == 0x7f (Bit Twiddling Hacks) */
        if ((x | ((x - ones * 0x20) & ~x) | ((y - ones) & ~y)) & highs)
            goto slow;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            goto slow;
    return 1;
slow:
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
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
    return pipeline_put_hinted(p, m, source, ts_ms, value, NULL);
}

int pipeline_put_hinted(ss_pipeline *p, const spark_metric *m, const char *source,
                        int64_t ts_ms, double value, store_hint *hint)
{
    int why = check_sample(p, m, ts_ms, value);
    if (why >= 0) {
        p->stats.dropped[why]++;
        return STORE_E_INVAL;
    }
    int rc = store_put_hinted(p->store, m, source, ts_ms, value, p->now_ms, hint);
    if (rc < 0)
        p->stats.dropped[store_drop_reason(rc)]++;
    else
        p->stats.stored++;
    return rc;
}

/* Who may speak for the cluster of m: checked before the numbers are parsed. */
static int admitted(ss_pipeline *p, const pipeline_source *src, const spark_metric *m)
{
    if (!p->allow || !src->addr || (size_t)m->cluster >= p->nclusters ||
        ss_cidr_list_allows(&p->allow[m->cluster], src->addr))
        return 1;
    p->stats.dropped[PIPE_DROP_SOURCE]++;
    p->refused[m->cluster]++;
    return 0;
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
    if (!admitted(p, src, &m))
        return;

    carbon_line cl;
    rc = carbon_parse_after_path(line, len, path, path_len, &cl);
    if (rc == CARBON_E_RESPLIT) {
        /* A tab or control byte inside what the fast split took for the
         * path: the whole line again, the slow way. */
        rc = carbon_parse_line(line, len, &cl);
        if (rc == CARBON_OK) {
            int drc = spark_path_decode(p->prefixes, cl.path, cl.path_len, &m);
            if (drc == SPARK_PATH_SKIP) {
                p->stats.skipped++;
                return;
            }
            if (drc < 0) {
                p->stats.dropped[drc == SPARK_PATH_E_CLUSTER ? PIPE_DROP_UNKNOWN_CLUSTER
                                                             : PIPE_DROP_SHAPE]++;
                return;
            }
            if (!admitted(p, src, &m))
                return;
        }
    }
    if (rc != CARBON_OK) {
        p->stats.rejected[rc]++;
        return;
    }
    if (p->rec)
        ss_recorder_carbon(p->rec, p->now_ms, src->peer, line, len);
    pipeline_put_hinted(p, &m, src->peer, cl.timestamp_ms, cl.value, &src->hint);
}

void pipeline_feed_datagram(pipeline_source *src, const char *data, size_t len,
                            char *carry, size_t max_line)
{
    carbon_stream s;
    carbon_stream_init(&s, carry, max_line);
    carbon_stream_feed(&s, data, len, pipeline_on_line, src);
    carbon_stream_finish(&s, pipeline_on_line, src);
}
