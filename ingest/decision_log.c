/* decision_log.c: recent decisions for the status API: a small growing
 * array per cluster (numbers only) and one ring of the newest decisions of
 * all clusters with their reason text. */
#include "ingest/decision_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(ss_decision_rec) == 32, "a decision record is 32 bytes");

/* A cluster's decisions, oldest first; allocated on its first decision. */
typedef struct cluster_log {
    uint8_t len, cap;
    ss_decision_rec recs[];
} cluster_log;

typedef struct recent {
    int cluster;                  /* -1 = empty slot */
    ss_decision_rec rec;
    char *reason;                 /* sized to its text */
} recent;

struct ss_decision_log {
    size_t n;
    cluster_log **per;            /* per cluster, NULL until its first decision */
    recent ring[DECISION_LOG_TEXTS];
    size_t head;                  /* next slot to write */
    size_t count;
    size_t bytes;                 /* per-cluster arrays and texts, as malloc uses them */
};

/* What malloc takes for a request of n bytes (glibc: 8 bytes of header,
 * 16-byte steps, 32 at least): the log's own estimate. */
static size_t heap_cost(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static size_t cluster_log_size(size_t cap)
{
    return sizeof(cluster_log) + cap * sizeof(ss_decision_rec);
}

ss_decision_log *decision_log_create(size_t nclusters)
{
    ss_decision_log *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    log->n = nclusters;
    log->per = calloc(nclusters ? nclusters : 1, sizeof *log->per);
    if (!log->per) {
        free(log);
        return NULL;
    }
    for (size_t i = 0; i < DECISION_LOG_TEXTS; i++)
        log->ring[i].cluster = -1;
    log->bytes = heap_cost(sizeof *log) + heap_cost(nclusters * sizeof *log->per);
    return log;
}

void decision_log_destroy(ss_decision_log *log)
{
    if (!log)
        return;
    for (size_t c = 0; c < log->n; c++)
        free(log->per[c]);
    for (size_t i = 0; i < DECISION_LOG_TEXTS; i++)
        free(log->ring[i].reason);
    free(log->per);
    free(log);
}

static int16_t count16(int32_t v)
{
    return v < -1 ? -1 : v > INT16_MAX ? INT16_MAX : (int16_t)v;
}

/* Room for one more record of cluster c: grown (1, 2, 4, ... up to
 * DECISION_LOG_PER_CLUSTER) or, when full, the oldest dropped. */
static cluster_log *make_room(ss_decision_log *log, int c)
{
    cluster_log *cl = log->per[c];
    if (cl && cl->len < cl->cap)
        return cl;
    if (cl && cl->cap >= DECISION_LOG_PER_CLUSTER) {
        memmove(cl->recs, cl->recs + 1, (size_t)(cl->len - 1) * sizeof cl->recs[0]);
        cl->len--;
        return cl;
    }
    size_t cap = cl ? (size_t)cl->cap * 2 : 1;
    if (cap > DECISION_LOG_PER_CLUSTER)
        cap = DECISION_LOG_PER_CLUSTER;
    cluster_log *grown = realloc(cl, cluster_log_size(cap));
    if (!grown)
        return NULL;
    if (!cl)
        grown->len = 0;
    else
        log->bytes -= heap_cost(cluster_log_size(grown->cap));
    grown->cap = (uint8_t)cap;
    log->bytes += heap_cost(cluster_log_size(cap));
    log->per[c] = grown;
    return grown;
}

int decision_log_add(ss_decision_log *log, int c, const ss_decision *d, uint64_t sequence,
                     int64_t demand_executors)
{
    if (c < 0 || (size_t)c >= log->n)
        return -EINVAL;
    ss_decision_rec rec = {
        .at_ms = d->decided_at_ms,
        .sequence = sequence,
        .demand_executors = demand_executors < 0 ? 0
                          : demand_executors > INT32_MAX ? INT32_MAX : (int32_t)demand_executors,
        .desired = count16(d->desired_workers),
        .current = count16(d->current_workers),
        .busy = count16(d->busy_workers),
        .recommended = count16(d->recommended_workers),
        .per_worker = d->executors_per_worker < 0 ? 0
                    : d->executors_per_worker > UINT16_MAX ? UINT16_MAX
                    : (uint16_t)d->executors_per_worker,
        .code = (uint8_t)d->reason_code,
    };
    size_t tlen = strnlen(d->reason, sizeof d->reason - 1);
    char *text = malloc(tlen + 1);
    cluster_log *cl = text ? make_room(log, c) : NULL;
    if (!cl) {
        free(text);
        return -ENOMEM;
    }
    cl->recs[cl->len++] = rec;

    memcpy(text, d->reason, tlen);
    text[tlen] = '\0';
    recent *slot = &log->ring[log->head];
    if (slot->reason)
        log->bytes -= heap_cost(strlen(slot->reason) + 1);
    free(slot->reason);
    *slot = (recent){ .cluster = c, .rec = rec, .reason = text };
    log->bytes += heap_cost(tlen + 1);
    log->head = (log->head + 1) % DECISION_LOG_TEXTS;
    if (log->count < DECISION_LOG_TEXTS)
        log->count++;
    return 0;
}

size_t decision_log_count(const ss_decision_log *log, int c)
{
    if (c < 0 || (size_t)c >= log->n || !log->per[c])
        return 0;
    return log->per[c]->len;
}

const ss_decision_rec *decision_log_at(const ss_decision_log *log, int c, size_t i)
{
    size_t n = decision_log_count(log, c);
    return i < n ? &log->per[c]->recs[n - 1 - i] : NULL;
}

const ss_decision_rec *decision_log_recent(const ss_decision_log *log, size_t i, int *c,
                                           const char **reason)
{
    if (i >= log->count)
        return NULL;
    const recent *r = &log->ring[(log->head + DECISION_LOG_TEXTS - 1 - i) % DECISION_LOG_TEXTS];
    if (c)
        *c = r->cluster;
    if (reason)
        *reason = r->reason;
    return &r->rec;
}

size_t decision_log_recent_count(const ss_decision_log *log)
{
    return log->count;
}

const char *decision_log_reason(const ss_decision_log *log, int c, uint64_t sequence)
{
    /* At most DECISION_LOG_TEXTS records: a scan is cheaper than an index
     * kept per cluster. */
    for (size_t i = 0; i < log->count; i++) {
        int rc;
        const char *reason;
        const ss_decision_rec *r = decision_log_recent(log, i, &rc, &reason);
        if (rc == c && r->sequence == sequence)
            return reason;
    }
    return NULL;
}

size_t decision_log_bytes(const ss_decision_log *log)
{
    return log->bytes;
}
