/* poll_jolokia.c: the ExecutorAllocationManager bulk read and its answer
 * into the pipeline. Shapes: tests/fixtures/jolokia/README. */
#include "ingest/poll_jolokia.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/spark_path.h"
#include "lib/base/str.h"
#include "lib/spark/jolokia.h"

int poll_jolokia_body(char **out, size_t *len)
{
    static const ss_jolokia_read reads[] = {
        { SS_JOLOKIA_EAM_GAUGES, "Value", 1 },
        { SS_JOLOKIA_EAM_COUNTERS, "Count", 1 },
        { SS_JOLOKIA_EAM_UNTYPED, "Value", 1 },
        { SS_JOLOKIA_EAM_UNTYPED, "Count", 1 },
    };
    return ss_jolokia_build_read(reads, sizeof reads / sizeof reads[0], out, len);
}

char *poll_jolokia_url(const char *base)
{
    const char *host = strstr(base, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    if (path && strcmp(path, "/") != 0)
        return strdup(base);
    size_t n = strlen(base), len = n + sizeof "/jolokia/";
    char *url = malloc(len);
    if (url)
        snprintf(url, len, "%s%s", base, path ? "jolokia/" : "/jolokia/");
    return url;
}

/* Jolokia's answer to a pattern that matches no MBean: nothing registered
 * under that naming, which is normal (Spark 3 never matches the type-less
 * pattern, Spark 2 never the typed ones). */
static int absent(const ss_jolokia_item *it)
{
    return it->status == 404 && it->error_type &&
           strstr(it->error_type, "InstanceNotFoundException") != NULL;
}

/* One sample as its carbon path would be: a counter carries ".count". */
static void put_sample(ss_pipeline *pipe, int c, const ss_jolokia_sample *s, int64_t ts_ms,
                       poll_jolokia_counts *n)
{
    char path[SS_JOLOKIA_MAX_NAME + sizeof ".count"];
    int counter = s->attribute && strcmp(s->attribute, "Count") == 0;
    int len = snprintf(path, sizeof path, "%s%s", s->name, counter ? ".count" : "");
    spark_metric m;
    n->samples++;
    if (len < 0 || (size_t)len >= sizeof path ||
        spark_registry_decode(path, (size_t)len, c, &m) != SPARK_PATH_OK ||
        m.kind != SPARK_KIND_APP) {
        n->skipped++;
        return;
    }
    if (pipeline_put(pipe, &m, NULL, ts_ms, s->value) >= 0)
        n->stored++;
    else
        n->skipped++;
}

poll_result poll_jolokia_answer(ss_pipeline *pipe, int c, const char *body, size_t len,
                                poll_jolokia_counts *counts, char *err, size_t errlen)
{
    memset(counts, 0, sizeof *counts);
    ss_jolokia_result *r = NULL;
    int rc = ss_jolokia_parse(body, len, &r, err, errlen);
    if (rc == -ENOMEM)
        return POLL_ERROR;
    if (rc != 0)
        return POLL_BAD_JSON;
    pipeline_begin_batch(pipe);
    int noted = 0;
    for (size_t i = 0; i < r->nitems; i++) {
        const ss_jolokia_item *it = &r->items[i];
        if (it->status != 200) {
            if (absent(it)) {
                counts->reads_absent++;
                continue;
            }
            counts->reads_failed++;
            if (!noted++)
                ss_errf(err, errlen, "read %s: status %d %s: %s",
                        it->request_mbean ? it->request_mbean : "?", it->status,
                        it->error_type ? it->error_type : "", it->error ? it->error : "");
            continue;
        }
        counts->reads_ok++;
        counts->skipped += it->skipped;
        int64_t ts_ms = it->timestamp_s > 0 ? it->timestamp_s * 1000 : pipe->now_ms;
        for (size_t k = 0; k < it->nsamples; k++)
            put_sample(pipe, c, &it->samples[k], ts_ms, counts);
    }
    ss_jolokia_result_free(r);
    if (counts->reads_failed)
        return counts->reads_ok ? POLL_PARTIAL : POLL_READ_FAILED;
    if (!counts->reads_ok) {
        ss_errf(err, errlen, "no ExecutorAllocationManager MBean (app not started, dynamic "
                "allocation off, or no JmxSink on the driver)");
        return POLL_NO_MBEANS;
    }
    return POLL_OK;
}
