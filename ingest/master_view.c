/* master_view.c: the newest ALIVE master answer per cluster, with what the
 * decider needs of it (ALIVE, busy, idle workers) summed once per answer. */
#include "ingest/master_view.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/str.h"

typedef struct mv_entry {
    ss_master_state *st;          /* owned; NULL = never answered */
    const char *url;              /* borrowed */
    int64_t fetched_ms;
    int alive, busy;
    uint64_t idle_sum;            /* order-free digest of the idle workers */
    size_t nidle;
    uint64_t apps_sum;            /* order-free digest of the active apps */
} mv_entry;

struct ss_master_view {
    mv_entry *e;
    size_t n;
};

ss_master_view *master_view_create(size_t nclusters)
{
    ss_master_view *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->e = calloc(nclusters ? nclusters : 1, sizeof *v->e);
    if (!v->e) {
        free(v);
        return NULL;
    }
    v->n = nclusters;
    return v;
}

void master_view_destroy(ss_master_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        ss_master_state_free(v->e[i].st);
    free(v->e);
    free(v);
}

int master_view_alive(const ss_master_state *st)
{
    int n = 0;
    for (size_t i = 0; st && i < st->nworkers; i++)
        n += st->workers[i].state == SS_WORKER_ALIVE;
    return n;
}

int master_view_busy(const ss_master_state *st)
{
    return st ? (int)ss_master_busy_workers(st) : 0;
}

static int is_idle(const ss_spark_worker *w)
{
    return w->state == SS_WORKER_ALIVE && w->coresused == 0;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Sum of per-worker hashes: the same set in another order sums the same. */
static uint64_t idle_digest(const ss_master_state *st, size_t *n)
{
    uint64_t sum = 0;
    *n = 0;
    for (size_t i = 0; i < st->nworkers; i++) {
        const ss_spark_worker *w = &st->workers[i];
        if (!is_idle(w))
            continue;
        uint64_t h = fnv(fnv(0xcbf29ce484222325ull, w->id), w->host);
        sum += h ^ (uint64_t)(unsigned)w->port;
        (*n)++;
    }
    return sum;
}

/* Sum of per-app hashes (and their count): an app that ended changes it. */
static uint64_t apps_digest(const ss_master_state *st)
{
    uint64_t sum = st->nactiveapps;
    for (size_t i = 0; i < st->nactiveapps; i++)
        sum += fnv(0xcbf29ce484222325ull, st->activeapps[i].id) * 0x9e3779b97f4a7c15ull;
    return sum;
}

int master_view_lists_app(const ss_master_state *st, const char *id)
{
    for (size_t i = 0; st && id && i < st->nactiveapps; i++)
        if (strcmp(st->activeapps[i].id, id) == 0)
            return 1;
    return 0;
}

int master_view_put(ss_master_view *v, int c, ss_master_state *st, const char *url,
                    int64_t fetched_ms)
{
    if (!v || c < 0 || (size_t)c >= v->n || !st) {
        ss_master_state_free(st);
        return -EINVAL;
    }
    mv_entry *e = &v->e[c];
    int alive = master_view_alive(st), busy = master_view_busy(st);
    size_t nidle;
    uint64_t sum = idle_digest(st, &nidle);
    uint64_t apps = apps_digest(st);
    int changed = !e->st || e->alive != alive || e->busy != busy || e->idle_sum != sum ||
                  e->nidle != nidle || e->apps_sum != apps;
    ss_master_state_free(e->st);
    *e = (mv_entry){ .st = st, .url = url, .fetched_ms = fetched_ms, .alive = alive,
                     .busy = busy, .idle_sum = sum, .nidle = nidle, .apps_sum = apps };
    return changed;
}

const ss_master_state *master_view_fresh(const ss_master_view *v, int c, int64_t now_ms,
                                         int64_t max_age_ms)
{
    if (!v || c < 0 || (size_t)c >= v->n || !v->e[c].st)
        return NULL;
    return now_ms - v->e[c].fetched_ms <= max_age_ms ? v->e[c].st : NULL;
}

int master_view_fresh_counts(const ss_master_view *v, int c, int64_t now_ms, int64_t max_age_ms,
                             int *alive, int *busy)
{
    if (!master_view_fresh(v, c, now_ms, max_age_ms))
        return -ENOENT;
    *alive = v->e[c].alive;
    *busy = v->e[c].busy;
    return 0;
}

int64_t master_view_fetched_ms(const ss_master_view *v, int c)
{
    if (!v || c < 0 || (size_t)c >= v->n)
        return 0;
    return v->e[c].fetched_ms;
}

static int cmp_ref_id(const void *a, const void *b)
{
    return strcmp(((const ss_worker_ref *)a)->id, ((const ss_worker_ref *)b)->id);
}

size_t master_view_idle(const ss_master_state *st, ss_worker_ref *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; st && i < st->nworkers && n < cap; i++) {
        const ss_spark_worker *w = &st->workers[i];
        if (!is_idle(w) || strlen(w->id) >= sizeof out->id || strlen(w->host) >= sizeof out->host)
            continue;
        memset(&out[n], 0, sizeof out[n]);
        ss_strlcpy(out[n].id, w->id, sizeof out[n].id);
        ss_strlcpy(out[n].host, w->host, sizeof out[n].host);
        out[n].port = w->port;
        n++;
    }
    qsort(out, n, sizeof *out, cmp_ref_id);
    return n;
}

static json_t *worker_json(const ss_spark_worker *w)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(w->id));
    json_object_set_new(o, "host", json_string(w->host));
    json_object_set_new(o, "port", json_integer(w->port));
    json_object_set_new(o, "state", json_string(ss_worker_state_name(w->state)));
    json_object_set_new(o, "cores", json_integer(w->cores));
    json_object_set_new(o, "coresused", json_integer(w->coresused));
    json_object_set_new(o, "memory_mb", json_integer(w->memory_mb));
    json_object_set_new(o, "memoryused_mb", json_integer(w->memoryused_mb));
    json_object_set_new(o, "lastheartbeat_ms", json_integer(w->lastheartbeat_ms));
    return o;
}

static json_t *app_json(const ss_spark_app *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "state", json_string(ss_app_state_name(a->state)));
    json_object_set_new(o, "starttime_ms", json_integer(a->starttime_ms));
    json_object_set_new(o, "cores", json_integer(a->cores));
    json_object_set_new(o, "memoryperexecutor_mb", json_integer(a->memoryperexecutor_mb));
    return o;
}

json_t *master_view_json(const ss_master_view *v, int c, int64_t now_ms, int64_t max_age_ms)
{
    if (!v || c < 0 || (size_t)c >= v->n || !v->e[c].st)
        return json_null();
    const mv_entry *e = &v->e[c];
    json_t *o = json_object();
    char url[512];
    ss_mask_url(e->url ? e->url : "", url, sizeof url);
    json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "status", json_string(ss_master_status_name(e->st->status)));
    json_object_set_new(o, "fetched_at_ms", json_integer(e->fetched_ms));
    json_object_set_new(o, "fresh", json_boolean(now_ms - e->fetched_ms <= max_age_ms));
    json_object_set_new(o, "alive_workers", json_integer(e->alive));
    json_object_set_new(o, "busy_workers", json_integer(e->busy));
    json_object_set_new(o, "idle_workers", json_integer((json_int_t)e->nidle));
    json_t *ws = json_array();
    for (size_t i = 0; i < e->st->nworkers; i++)
        json_array_append_new(ws, worker_json(&e->st->workers[i]));
    json_object_set_new(o, "workers", ws);
    json_t *as = json_array();
    for (size_t i = 0; i < e->st->nactiveapps; i++)
        json_array_append_new(as, app_json(&e->st->activeapps[i]));
    json_object_set_new(o, "activeapps", as);
    return o;
}
