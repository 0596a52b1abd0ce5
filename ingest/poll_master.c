/* poll_master.c: a Spark master's /json/ answer into the master view. */
#include "ingest/poll_master.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/str.h"

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

char *poll_master_url(const char *base)
{
    size_t n = strlen(base);
    if (ends_with(base, n, "/json") || ends_with(base, n, "/json/"))
        return strdup(base);
    const char *sep = n && base[n - 1] == '/' ? "" : "/";
    size_t len = n + strlen(sep) + sizeof "json/";
    char *url = malloc(len);
    if (url)
        snprintf(url, len, "%s%sjson/", base, sep);
    return url;
}

poll_result poll_master_answer(ss_master_view *mv, ss_store *store, int c, const char *url,
                               const char *body, size_t len, int64_t now_ms,
                               int64_t max_age_ms, char *err, size_t errlen)
{
    ss_master_state *st = NULL;
    int rc = ss_master_parse(body, len, &st, err, errlen);
    if (rc == -ENOMEM)
        return POLL_ERROR;
    if (rc != 0)
        return POLL_BAD_JSON;
    switch (st->status) {
    case SS_MASTER_ALIVE:
        break;
    case SS_MASTER_RECOVERING:
    case SS_MASTER_COMPLETING_RECOVERY:
        ss_errf(err, errlen, "master is %s", ss_master_status_name(st->status));
        ss_master_state_free(st);
        return POLL_RECOVERING;
    default:
        ss_errf(err, errlen, "master is %s", ss_master_status_name(st->status));
        ss_master_state_free(st);
        return POLL_STANDBY;
    }
    int was_fresh = master_view_fresh(mv, c, now_ms, max_age_ms) != NULL;
    rc = master_view_put(mv, c, st, url, now_ms);
    if (rc < 0) {
        ss_errf(err, errlen, "cluster index %d out of range", c);
        return POLL_ERROR;
    }
    if (rc > 0 || !was_fresh)
        store_mark_dirty(store, c);
    return POLL_OK;
}
