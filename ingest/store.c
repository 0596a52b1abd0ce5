/* store.c: recent Spark gauges per cluster/app/worker in compact rings,
 * found through one open-addressing hash table; bounded and single-threaded. */
#include "ingest/store.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NGAUGES SPARK_G_WORKER_END

enum { ENT_APP = 1, ENT_WORKER = 2 };

/* Series header; its ring follows in the same block: uint32 deltas[cap]
 * padded to 8 bytes, then double values[cap]. A timestamp is base_ms + delta
 * (49 days of range, rebased when exceeded), so a sample costs 12 bytes:
 * 10,000 clusters x 5 apps x 10 series x 16 samples fit in ~110 MB. */
struct store_series {
    int64_t base_ms;
    char *name;          /* unknown gauges only: owned, NUL-terminated */
    uint16_t head;       /* slot of the newest sample */
    uint16_t len;        /* samples held, <= cap */
    uint16_t cap;        /* ring size */
    int8_t gauge;        /* spark_gauge or SPARK_G_UNKNOWN */
    uint8_t ooo;         /* consecutive out-of-order samples (a clock stepped back?) */
};

/* A set of series: one app, one worker or one cluster's master. History
 * (a ring of ring_size samples) is kept only for the gauges the decider and
 * the charts read (demand, executors, the master's workers, a worker's used
 * cores); every other series, unknown names included, keeps its latest
 * sample only. Each block grows one series at a time (on the first sample
 * of a new name only), so an app sending 5 gauges pays for 5, not the cap. */
#define HIST_SLOTS 4             /* history gauges one source can have */
struct src {
    unsigned char *hist;  /* nhist * s->stride bytes, owned */
    unsigned char *last;  /* nlast * LAST_STRIDE bytes, owned */
    uint8_t nhist, nlast;
    uint8_t idx[NGAUGES]; /* known gauge -> 1..HIST_SLOTS: hist slot + 1;
                           * above: last slot + 1 + HIST_SLOTS; 0 = not seen yet */
};

/* An app, or a worker source: store_worker handles point at this struct too
 * (kind tells them apart). Allocated once with its id inline. */
struct store_app {
    struct src src;
    int64_t first_seen_ms;
    int64_t last_seen_ms;
    uint64_t hash;       /* of (kind, cluster, id): rehash without rereading */
    int32_t cluster;
    uint32_t pos;        /* index in its cluster's apps[] or workers[] */
    uint8_t kind;
    uint8_t id_len;
    char id[];           /* NUL-terminated */
};

/* What the decider reads of every worker source on every evaluation, packed
 * beside the cluster's worker list (same index): a scan of 16-byte entries
 * instead of a pointer chase into each source's series. */
struct wsum {
    int64_t seen_ms;     /* last-seen */
    double cores_used;   /* newest coresUsed, NAN = none yet */
};

struct cluster {
    struct src master;
    store_app **apps;
    store_app **workers;
    struct wsum *wsum;   /* wsum_cap (>= nworkers) entries */
    uint32_t wsum_cap;
    uint32_t napps, apps_cap;
    uint32_t nworkers, workers_cap;
    int64_t last_seen_ms;
    int64_t dirty_since_us;  /* monotonic time it first became dirty, 0 = clean */
};

struct slot {
    uint64_t hash;
    store_app *e;        /* NULL = empty */
};

struct ss_store {
    store_limits lim;
    size_t stride;       /* bytes per series in a block */
    size_t nclusters;
    struct cluster *cl;
    struct slot *tab;    /* linear probing, load <= 1/2, backward-shift delete */
    size_t tab_mask;
    size_t tab_used;
    int *dirtyq;         /* FIFO ring of nclusters entries; cluster.dirty dedupes */
    size_t dq_head, dq_len;
    int64_t now_us;      /* store_set_clock: stamps clusters that become dirty */
    int cap_hit;         /* the last failed allocation hit max_bytes */
    store_app *last;     /* one-entry cache: Spark sends an app's report in a row */
    uint64_t gen;        /* entries removed so far: a sender's hint older than it is void */
    store_stats st;
};

/* ---- memory accounting: glibc chunk size, so stats.bytes tracks RSS ---- */

static size_t chunk(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

/* Every allocation that grows the store is refused past max_bytes, so no
 * flood (app ids, worker sources, gauge names) takes memory beyond it. */
static int over_cap(ss_store *s, size_t grow)
{
    if (s->lim.max_bytes && s->st.bytes + grow > s->lim.max_bytes) {
        s->cap_hit = 1;
        return 1;
    }
    return 0;
}

static void *s_alloc(ss_store *s, size_t n)
{
    if (over_cap(s, chunk(n)))
        return NULL;
    void *p = malloc(n);
    if (p)
        s->st.bytes += chunk(n);
    return p;
}

static void *s_calloc(ss_store *s, size_t n, size_t size)
{
    if (over_cap(s, chunk(n * size)))
        return NULL;
    void *p = calloc(n, size);
    if (p)
        s->st.bytes += chunk(n * size);
    return p;
}

static void *s_realloc(ss_store *s, void *p, size_t old, size_t n)
{
    if (n > old && over_cap(s, chunk(n) - (p ? chunk(old) : 0)))
        return NULL;
    void *q = realloc(p, n);
    if (q) {
        if (p)
            s->st.bytes -= chunk(old);
        s->st.bytes += chunk(n);
    }
    return q;
}

static void s_free(ss_store *s, void *p, size_t n)
{
    if (!p)
        return;
    free(p);
    s->st.bytes -= chunk(n);
    s->st.bytes_freed += chunk(n);
}

/* An allocation failed: over max_bytes, or really out of memory. */
static int alloc_failure(ss_store *s)
{
    if (s->cap_hit) {
        s->cap_hit = 0;
        s->st.rejected_cap_bytes++;
        return STORE_E_CAP_BYTES;
    }
    s->st.rejected_nomem++;
    return STORE_E_NOMEM;
}

/* ---- series ---- */

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static size_t stride_for(size_t cap)
{
    return sizeof(store_series) + pad8(cap * sizeof(uint32_t)) + cap * sizeof(double);
}

static inline uint32_t *ser_ts(const store_series *se)
{
    return (uint32_t *)(void *)((unsigned char *)(uintptr_t)se + sizeof(store_series));
}

static inline double *ser_val(const store_series *se)
{
    return (double *)(void *)((unsigned char *)(uintptr_t)se + sizeof(store_series) +
                              pad8((size_t)se->cap * sizeof(uint32_t)));
}

#define LAST_STRIDE (sizeof(store_series) + 8 + sizeof(double))   /* stride_for(1) */

static int is_hist(int gauge)
{
    switch (gauge) {
    case SPARK_G_TARGET_EXECUTORS:
    case SPARK_G_ALL_EXECUTORS:
    case SPARK_G_MAX_NEEDED_EXECUTORS:
    case SPARK_G_MASTER_ALIVE_WORKERS:
    case SPARK_G_WORKER_CORES_USED:
        return 1;
    default:
        return 0;
    }
}

static inline store_series *at(unsigned char *blk, size_t stride, size_t i)
{
    return (store_series *)(void *)(blk + i * stride);
}

static size_t src_count(const struct src *src) { return (size_t)src->nhist + src->nlast; }

/* Series i of a source: history series first, then the others. For
 * readers, which get no store: the history stride comes from the cap. */
static const store_series *src_get(const struct src *src, size_t i)
{
    if (i < src->nhist) {
        const store_series *first = (const store_series *)(const void *)src->hist;
        return at(src->hist, stride_for(first->cap), i);
    }
    i -= src->nhist;
    return i < src->nlast ? at(src->last, LAST_STRIDE, i) : NULL;
}

static store_series *slot_series(const ss_store *s, const struct src *src, unsigned k)
{
    return k <= HIST_SLOTS ? at(src->hist, s->stride, k - 1u)
                           : at(src->last, LAST_STRIDE, k - 1u - HIST_SLOTS);
}

static inline int64_t ts_of(const store_series *se, size_t slot)
{
    return (int64_t)((uint64_t)se->base_ms + ser_ts(se)[slot]);
}

static inline size_t slot_of(const store_series *se, size_t i)
{
    return (se->head + se->cap - i) % se->cap;
}

/* ts is more than 2^32 ms past base: drop the samples that lie that far
 * behind ts (older than 49 days) and re-express the rest from the oldest. */
static void rebase(store_series *se, int64_t ts)
{
    while (se->len > 0) {
        int64_t oldest = ts_of(se, slot_of(se, se->len - 1u));
        if ((uint64_t)ts - (uint64_t)oldest <= UINT32_MAX)
            break;
        se->len--;
    }
    int64_t base = se->len ? ts_of(se, slot_of(se, se->len - 1u)) : ts;
    uint32_t *d = ser_ts(se);
    for (size_t i = 0; i < se->len; i++) {
        size_t k = slot_of(se, i);
        d[k] = (uint32_t)((uint64_t)ts_of(se, k) - (uint64_t)base);
    }
    se->base_ms = base;
}

static int same_value(double a, double b)
{
    return a == b || (a != a && b != b);   /* NaN stays NaN: unchanged */
}

/* Out-of-order samples in a row after which a series starts over from the
 * new one: the sender's clock stepped back (or a bad line stamped the series
 * in the future), and its real lines must not be dropped forever. */
#define STORE_RESYNC_AFTER 3

/* Appends (ts, v) to an existing series. Returns CHANGED/UNCHANGED/E_OLD,
 * or STORE_RESYNCED when a run of old samples restarted the series. */
static int ring_put(store_series *se, int64_t ts, double v)
{
    double *val = ser_val(se);
    int64_t newest = ts_of(se, se->head);
    double prev = val[se->head];
    if (ts < newest) {
        if (++se->ooo < STORE_RESYNC_AFTER)
            return STORE_E_OLD;
        /* Start over: the new timeline replaces the old one. */
        se->len = 1;
        se->ooo = 0;
        se->base_ms = ts;
        ser_ts(se)[se->head] = 0;
        val[se->head] = v;
        return STORE_RESYNCED;
    }
    se->ooo = 0;
    if (ts == newest) {
        val[se->head] = v;
    } else {
        uint64_t delta = (uint64_t)ts - (uint64_t)se->base_ms;
        if (delta > UINT32_MAX) {
            rebase(se, ts);
            delta = (uint64_t)ts - (uint64_t)se->base_ms;
        }
        if (++se->head == se->cap)
            se->head = 0;
        if (se->len < se->cap)
            se->len++;
        ser_ts(se)[se->head] = (uint32_t)delta;
        val[se->head] = v;
    }
    return same_value(prev, v) ? STORE_UNCHANGED : STORE_CHANGED;
}

static store_series *src_find(const ss_store *s, const struct src *src, int gauge,
                              const char *name, size_t name_len)
{
    if (gauge >= 0) {
        unsigned k = src->idx[gauge];
        return k ? slot_series(s, src, k) : NULL;
    }
    for (size_t i = 0; i < src->nlast; i++) {
        store_series *se = at(src->last, LAST_STRIDE, i);
        if (se->gauge == SPARK_G_UNKNOWN && memcmp(se->name, name, name_len) == 0 &&
            se->name[name_len] == '\0')
            return se;
    }
    return NULL;
}

/* First sample of a new series. Allocates; returns CHANGED or a rejection. */
static int src_add(ss_store *s, struct src *src, int gauge, const char *name,
                   size_t name_len, int64_t ts, double v)
{
    if (src_count(src) >= (size_t)s->lim.max_series_per_app) {
        s->st.rejected_cap_series++;
        return STORE_E_CAP_SERIES;
    }
    char *copy = NULL;
    if (gauge < 0) {
        copy = s_alloc(s, name_len + 1);
        if (!copy)
            goto nomem;
        memcpy(copy, name, name_len);
        copy[name_len] = '\0';
    }
    int hist = gauge >= 0 && is_hist(gauge) && src->nhist < HIST_SLOTS;
    unsigned char **blkp = hist ? &src->hist : &src->last;
    size_t stride = hist ? s->stride : LAST_STRIDE;
    size_t n = hist ? src->nhist : src->nlast;
    unsigned char *blk = s_realloc(s, *blkp, n * stride, (n + 1) * stride);
    if (!blk) {
        if (copy)
            s_free(s, copy, name_len + 1);
        goto nomem;
    }
    *blkp = blk;
    store_series *se = at(blk, stride, n);
    se->base_ms = ts;
    se->name = copy;
    se->head = 0;
    se->len = 1;
    se->cap = hist ? (uint16_t)s->lim.ring_size : 1;
    se->gauge = (int8_t)gauge;
    se->ooo = 0;
    ser_ts(se)[0] = 0;
    ser_val(se)[0] = v;
    if (hist)
        src->nhist++;
    else
        src->nlast++;
    if (gauge >= 0)
        src->idx[gauge] = (uint8_t)(hist ? src->nhist : src->nlast + HIST_SLOTS);
    s->st.series++;
    return STORE_CHANGED;
nomem:
    return alloc_failure(s);
}

static void src_free(ss_store *s, struct src *src)
{
    for (size_t i = 0; i < src->nlast; i++) {
        store_series *se = at(src->last, LAST_STRIDE, i);
        if (se->name)
            s_free(s, se->name, strlen(se->name) + 1);
    }
    s_free(s, src->hist, src->nhist * s->stride);
    s_free(s, src->last, src->nlast * LAST_STRIDE);
    s->st.series -= src_count(src);
    memset(src, 0, sizeof(*src));
}

/* ---- the hash table of apps and workers ---- */

static inline uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Eight bytes a step (FNV-1a a byte a step is ~3x slower on app ids). */
static uint64_t hash_key(int kind, int cluster, const char *p, size_t n)
{
    uint64_t h = (((uint64_t)(uint32_t)cluster << 32) | ((uint64_t)kind << 16) | n) *
                 0x9E3779B97F4A7C15ULL;
    uint64_t w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001B3ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x100000001B3ULL;
    }
    return fmix64(h);
}

static inline int ent_is(const store_app *e, int kind, int cluster, const char *id, size_t len)
{
    return e->id_len == len && e->cluster == cluster && e->kind == kind &&
           memcmp(e->id, id, len) == 0;
}

static store_app *ent_lookup(ss_store *s, int kind, int cluster, const char *id, size_t len,
                             uint64_t *hash, const store_hint *hint)
{
    store_app *e = hint && hint->gen == s->gen ? (store_app *)(uintptr_t)hint->e : NULL;
    if (e && ent_is(e, kind, cluster, id, len))
        return e;
    e = s->last;
    if (e && ent_is(e, kind, cluster, id, len))
        return e;
    uint64_t h = hash_key(kind, cluster, id, len);
    *hash = h;
    for (size_t i = h & s->tab_mask;; i = (i + 1) & s->tab_mask) {
        struct slot *sl = &s->tab[i];
        if (!sl->e)
            return NULL;
        if (sl->hash == h && ent_is(sl->e, kind, cluster, id, len)) {
            s->last = sl->e;
            return sl->e;
        }
    }
}

static void tab_insert(struct slot *tab, size_t mask, uint64_t h, store_app *e)
{
    size_t i = h & mask;
    while (tab[i].e)
        i = (i + 1) & mask;
    tab[i].hash = h;
    tab[i].e = e;
}

#define TAB_MIN 64

static int tab_resize(ss_store *s, size_t ncap)
{
    size_t cap = s->tab_mask + 1;
    struct slot *nt = s_calloc(s, ncap, sizeof(*nt));
    if (!nt)
        return STORE_E_NOMEM;   /* alloc_failure() tells cap from nomem */
    for (size_t i = 0; i < cap; i++)
        if (s->tab[i].e)
            tab_insert(nt, ncap - 1, s->tab[i].hash, s->tab[i].e);
    s_free(s, s->tab, cap * sizeof(*s->tab));
    s->tab = nt;
    s->tab_mask = ncap - 1;
    return 0;
}

static int tab_reserve(ss_store *s, size_t more)
{
    size_t cap = s->tab_mask + 1;
    if ((s->tab_used + more) * 2 <= cap)
        return 0;
    return tab_resize(s, cap * 2);
}

/* After a mass expiry the table gives its memory back: below 1/8 full it
 * halves down to 1/4 (the grow point is 1/2, so no flapping).  A failed
 * allocation keeps the larger table. */
static void tab_shrink(ss_store *s)
{
    size_t cap = s->tab_mask + 1;
    if (cap <= TAB_MIN || s->tab_used * 8 >= cap)
        return;
    size_t ncap = cap;
    while (ncap > TAB_MIN && s->tab_used * 4 < ncap / 2)
        ncap /= 2;
    (void)tab_resize(s, ncap);
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void tab_remove(ss_store *s, const store_app *e)
{
    size_t mask = s->tab_mask;
    size_t i = e->hash & mask;
    while (s->tab[i].e != e)
        i = (i + 1) & mask;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!s->tab[j].e)
            break;
        size_t home = s->tab[j].hash & mask;
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->tab[i] = s->tab[j];
            i = j;
        }
    }
    s->tab[i].e = NULL;
    s->tab_used--;
}

/* ---- apps and workers ---- */

static int grow_list(ss_store *s, store_app ***list, uint32_t n, uint32_t *cap)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 4;
    store_app **nl = s_realloc(s, *list, (size_t)*cap * sizeof(**list), (size_t)ncap * sizeof(**list));
    if (!nl)
        return STORE_E_NOMEM;
    *list = nl;
    *cap = ncap;
    return 0;
}

static int ent_create(ss_store *s, int kind, int c, const char *id, size_t len, uint64_t h,
                      int64_t now_ms, store_app **out)
{
    struct cluster *cl = &s->cl[c];
    if (kind == ENT_APP) {
        if (cl->napps >= (uint32_t)s->lim.max_apps_per_cluster ||
            s->st.apps >= (uint64_t)s->lim.max_apps) {
            s->st.rejected_cap_apps++;
            return STORE_E_CAP_APPS;
        }
    } else if (cl->nworkers >= (uint32_t)s->lim.max_workers_per_cluster) {
        s->st.rejected_cap_workers++;
        return STORE_E_CAP_WORKERS;
    }
    int rc = tab_reserve(s, 1);
    if (rc == 0 && kind == ENT_APP) {
        rc = grow_list(s, &cl->apps, cl->napps, &cl->apps_cap);
    } else if (rc == 0) {
        rc = grow_list(s, &cl->workers, cl->nworkers, &cl->workers_cap);
        if (rc == 0 && cl->wsum_cap < cl->workers_cap) {
            struct wsum *w = s_realloc(s, cl->wsum, (size_t)cl->wsum_cap * sizeof(*w),
                                       (size_t)cl->workers_cap * sizeof(*w));
            if (w) {
                cl->wsum = w;
                cl->wsum_cap = cl->workers_cap;
            } else {
                rc = STORE_E_NOMEM;
            }
        }
    }
    store_app *e = rc ? NULL : s_alloc(s, sizeof(*e) + len + 1);
    if (!e)
        return alloc_failure(s);
    memset(e, 0, sizeof(*e));
    e->first_seen_ms = now_ms;
    e->last_seen_ms = now_ms;
    e->hash = h;
    e->cluster = c;
    e->kind = (uint8_t)kind;
    e->id_len = (uint8_t)len;
    memcpy(e->id, id, len);
    e->id[len] = '\0';
    tab_insert(s->tab, s->tab_mask, h, e);
    s->tab_used++;
    if (kind == ENT_APP) {
        e->pos = cl->napps;
        cl->apps[cl->napps++] = e;
        s->st.apps++;
    } else {
        e->pos = cl->nworkers;
        cl->wsum[cl->nworkers] = (struct wsum){ now_ms, NAN };
        cl->workers[cl->nworkers++] = e;
        s->st.workers++;
    }
    s->last = e;
    *out = e;
    return 0;
}

static void ent_free(ss_store *s, store_app *e)
{
    src_free(s, &e->src);
    s_free(s, e, sizeof(*e) + e->id_len + 1u);
}

/* Swap-remove: the last entry takes the removed one's index. */
static void ent_remove(ss_store *s, store_app *e)
{
    struct cluster *cl = &s->cl[e->cluster];
    store_app **list = e->kind == ENT_APP ? cl->apps : cl->workers;
    uint32_t *n = e->kind == ENT_APP ? &cl->napps : &cl->nworkers;
    store_app *moved = list[--*n];
    list[e->pos] = moved;
    if (e->kind == ENT_WORKER)
        cl->wsum[e->pos] = cl->wsum[*n];
    moved->pos = e->pos;
    if (e->kind == ENT_APP)
        s->st.apps--;
    else
        s->st.workers--;
    tab_remove(s, e);
    tab_shrink(s);
    s->gen++;   /* senders' hints may point at it */
    if (*n == 0) {   /* an emptied cluster holds no list */
        store_app ***lp = e->kind == ENT_APP ? &cl->apps : &cl->workers;
        uint32_t *cap = e->kind == ENT_APP ? &cl->apps_cap : &cl->workers_cap;
        if (e->kind == ENT_WORKER) {
            s_free(s, cl->wsum, (size_t)cl->wsum_cap * sizeof(*cl->wsum));
            cl->wsum = NULL;
            cl->wsum_cap = 0;
        }
        s_free(s, *lp, (size_t)*cap * sizeof(**lp));
        *lp = NULL;
        *cap = 0;
    }
    if (s->last == e)
        s->last = NULL;
    ent_free(s, e);
}

/* ---- the store ---- */

static int limit(int v, int def, int max)
{
    if (v <= 0)
        return def;
    return v > max ? max : v;
}

ss_store *store_create(const store_limits *lim, size_t nclusters)
{
    if (nclusters > INT_MAX)
        return NULL;
    ss_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->st.bytes = chunk(sizeof(*s));
    store_limits l = lim ? *lim : (store_limits){0};
    s->lim.max_apps_per_cluster = limit(l.max_apps_per_cluster, 64, INT_MAX);
    s->lim.max_apps = limit(l.max_apps, 100000, INT_MAX);
    s->lim.max_series_per_app = limit(l.max_series_per_app, 24, STORE_MAX_SERIES);
    s->lim.max_workers_per_cluster = limit(l.max_workers_per_cluster, 1024, INT_MAX);
    s->lim.ring_size = limit(l.ring_size, 16, STORE_MAX_RING);
    s->lim.max_bytes = l.max_bytes;
    s->stride = stride_for((size_t)s->lim.ring_size);
    s->nclusters = nclusters;
    s->cl = s_calloc(s, nclusters ? nclusters : 1, sizeof(*s->cl));
    s->dirtyq = s_calloc(s, nclusters ? nclusters : 1, sizeof(*s->dirtyq));
    s->tab = s_calloc(s, TAB_MIN, sizeof(*s->tab));
    s->tab_mask = TAB_MIN - 1;
    if (!s->cl || !s->dirtyq || !s->tab) {
        store_destroy(s);
        return NULL;
    }
    return s;
}

void store_destroy(ss_store *s)
{
    if (!s)
        return;
    if (s->cl) {
        for (size_t c = 0; c < s->nclusters; c++) {
            struct cluster *cl = &s->cl[c];
            for (uint32_t i = 0; i < cl->napps; i++)
                ent_free(s, cl->apps[i]);
            for (uint32_t i = 0; i < cl->nworkers; i++)
                ent_free(s, cl->workers[i]);
            free(cl->apps);
            free(cl->workers);
            free(cl->wsum);
            src_free(s, &cl->master);
        }
    }
    free(s->cl);
    free(s->dirtyq);
    free(s->tab);
    free(s);
}

static void mark_dirty(ss_store *s, int c)
{
    struct cluster *cl = &s->cl[c];
    if (cl->dirty_since_us)
        return;
    cl->dirty_since_us = s->now_us > 0 ? s->now_us : 1;
    s->dirtyq[(s->dq_head + s->dq_len) % s->nclusters] = c;
    s->dq_len++;
}

/* The entity a sample belongs to: its kind, and its id (the app's
 * namespace, or the worker's sender). Returns 0 or STORE_E_INVAL. */
static int entity_key(const spark_metric *m, const char *source, int *kind, const char **id,
                      size_t *len)
{
    if (m->kind == SPARK_KIND_APP) {
        *kind = ENT_APP;
        *id = m->app;
        *len = m->app_len;
        return !*id || *len == 0 || *len > STORE_MAX_ID ? STORE_E_INVAL : 0;
    }
    if (m->kind == SPARK_KIND_WORKER) {
        *kind = ENT_WORKER;
        *id = source;
        *len = source ? strnlen(source, STORE_MAX_ID + 1) : 0;
        if (*len > STORE_MAX_ID)
            return STORE_E_INVAL;
        if (*len == 0) {
            *id = "unknown";
            *len = 7;
        }
        return 0;
    }
    return STORE_E_INVAL;
}

/* Finds (or creates) the source of series a sample goes to: the cluster's
 * master, or an app or worker entity (*created set when new). */
static int find_src(ss_store *s, int c, const spark_metric *m, const char *source,
                    int64_t now_ms, struct src **src, store_app **ent, int *created,
                    store_hint *hint)
{
    *ent = NULL;
    *created = 0;
    if (m->kind == SPARK_KIND_MASTER) {
        *src = &s->cl[c].master;
        return 0;
    }
    int kind;
    const char *id;
    size_t len;
    int rc = entity_key(m, source, &kind, &id, &len);
    if (rc)
        return rc;
    uint64_t h = 0;
    store_app *e = ent_lookup(s, kind, c, id, len, &h, hint);
    if (!e) {
        /* checked here, not per put: an id holding NUL never matches */
        if (memchr(id, '\0', len))
            return STORE_E_INVAL;
        rc = ent_create(s, kind, c, id, len, h, now_ms, &e);
        if (rc)
            return rc;
        *created = 1;
    }
    *ent = e;
    *src = &e->src;
    if (hint) {
        hint->e = e;
        hint->gen = s->gen;
    }
    return 0;
}

int store_put(ss_store *s, const spark_metric *m, const char *source,
              int64_t ts_ms, double value, int64_t now_ms)
{
    return store_put_hinted(s, m, source, ts_ms, value, now_ms, NULL);
}

int store_put_hinted(ss_store *s, const spark_metric *m, const char *source, int64_t ts_ms,
                     double value, int64_t now_ms, store_hint *hint)
{
    int c = m->cluster;
    if (c < 0 || (size_t)c >= s->nclusters) {
        s->st.rejected_cluster++;
        return STORE_E_CLUSTER;
    }
    struct cluster *cl = &s->cl[c];
    int g = m->gauge;
    if (g < SPARK_G_UNKNOWN || g >= NGAUGES ||
        (g == SPARK_G_UNKNOWN && (!m->name || m->name_len == 0 || m->name_len > STORE_MAX_ID)))
        goto inval;

    struct src *src;
    store_app *e;
    int created;
    int rc = find_src(s, c, m, source, now_ms, &src, &e, &created, hint);
    if (rc == STORE_E_INVAL)
        goto inval;
    if (rc)
        return rc;

    store_series *se = src_find(s, src, g, m->name, m->name_len);
    if (se) {
        rc = ring_put(se, ts_ms, value);
        if (rc == STORE_E_OLD) {
            /* Rejected: refreshes nothing, so a series held hostage by a
             * sample from the future cannot keep its app alive either. */
            s->st.rejected_old++;
            return rc;
        }
        if (rc == STORE_RESYNCED) {
            s->st.resynced++;
            rc = STORE_CHANGED;
        }
    } else {
        if (g == SPARK_G_UNKNOWN && memchr(m->name, '\0', m->name_len)) {
            if (created)
                mark_dirty(s, c);
            goto inval;
        }
        rc = src_add(s, src, g, m->name, m->name_len, ts_ms, value);
        if (rc < 0) {
            if (created)
                mark_dirty(s, c);   /* the new app/worker itself is a change */
            return rc;
        }
    }
    /* Accepted: the feed, and the app or worker, are alive. */
    cl->last_seen_ms = now_ms;
    if (e)
        e->last_seen_ms = now_ms;
    if (e && e->kind == ENT_WORKER) {
        struct wsum *w = &cl->wsum[e->pos];
        w->seen_ms = now_ms;
        double v;
        int64_t ts;
        if (g == SPARK_G_WORKER_CORES_USED &&
            store_worker_latest((const store_worker *)(const void *)e, g, &v, &ts) == 0)
            w->cores_used = v;
    }
    if (created)
        rc = STORE_CHANGED;
    if (rc == STORE_CHANGED)
        mark_dirty(s, c);
    return rc;
inval:
    s->st.rejected_invalid++;
    return STORE_E_INVAL;
}

size_t store_expire(ss_store *s, int cluster, int64_t now_ms, int64_t expiry_ms)
{
    if (cluster < 0 || (size_t)cluster >= s->nclusters || expiry_ms < 0)
        return 0;
    struct cluster *cl = &s->cl[cluster];
    size_t removed = 0;
    for (uint32_t i = 0; i < cl->napps;) {
        store_app *e = cl->apps[i];
        if (now_ms - e->last_seen_ms > expiry_ms) {
            ent_remove(s, e);     /* the last app moves to i: look at i again */
            s->st.expired_apps++;
            removed++;
        } else {
            i++;
        }
    }
    for (uint32_t i = 0; i < cl->nworkers;) {
        store_app *e = cl->workers[i];
        if (now_ms - e->last_seen_ms > expiry_ms) {
            ent_remove(s, e);
            s->st.expired_workers++;
            removed++;
        } else {
            i++;
        }
    }
    if (removed)
        mark_dirty(s, cluster);
    return removed;
}

size_t store_take_dirty(ss_store *s, store_dirty *out, size_t max)
{
    size_t n = 0;
    while (n < max && s->dq_len > 0) {
        int c = s->dirtyq[s->dq_head];
        s->dq_head = (s->dq_head + 1) % s->nclusters;
        s->dq_len--;
        out[n].cluster = c;
        out[n].since_us = s->cl[c].dirty_since_us;
        s->cl[c].dirty_since_us = 0;
        n++;
    }
    return n;
}

size_t store_dirty_pending(const ss_store *s) { return s->dq_len; }

void store_set_clock(ss_store *s, int64_t now_us) { s->now_us = now_us; }

void store_mark_dirty(ss_store *s, int cluster)
{
    if (cluster >= 0 && (size_t)cluster < s->nclusters)
        mark_dirty(s, cluster);
}

/* ---- reading ---- */

static const struct cluster *cluster_get(const ss_store *s, int c)
{
    return (c >= 0 && (size_t)c < s->nclusters) ? &s->cl[c] : NULL;
}

size_t store_cluster_count(const ss_store *s) { return s->nclusters; }

int64_t store_cluster_last_seen_ms(const ss_store *s, int cluster)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl ? cl->last_seen_ms : 0;
}

size_t store_app_count(const ss_store *s, int cluster)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl ? cl->napps : 0;
}

const store_app *store_app_at(const ss_store *s, int cluster, size_t i)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl && i < cl->napps ? cl->apps[i] : NULL;
}

const store_app *store_app_find(const ss_store *s, int cluster, const char *id, size_t len)
{
    if (!cluster_get(s, cluster) || !id || len == 0 || len > STORE_MAX_ID)
        return NULL;
    uint64_t h = hash_key(ENT_APP, cluster, id, len);
    for (size_t i = h & s->tab_mask;; i = (i + 1) & s->tab_mask) {
        const struct slot *sl = &s->tab[i];
        if (!sl->e)
            return NULL;
        if (sl->hash == h && ent_is(sl->e, ENT_APP, cluster, id, len))
            return sl->e;
    }
}

const char *store_app_id(const store_app *a) { return a->id; }
int64_t store_app_first_seen_ms(const store_app *a) { return a->first_seen_ms; }
int64_t store_app_last_seen_ms(const store_app *a) { return a->last_seen_ms; }

size_t store_worker_count(const ss_store *s, int cluster)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl ? cl->nworkers : 0;
}

const store_worker *store_worker_at(const ss_store *s, int cluster, size_t i)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl && i < cl->nworkers ? (const store_worker *)(const void *)cl->workers[i] : NULL;
}

void store_workers_summary(const ss_store *s, int cluster, int64_t now_ms, int64_t stale_ms,
                           store_workers_sum *out)
{
    *out = (store_workers_sum){ 0, 0, INT64_MAX };
    if (cluster < 0 || (size_t)cluster >= s->nclusters)
        return;
    const struct cluster *cl = &s->cl[cluster];
    for (uint32_t i = 0; i < cl->nworkers; i++) {
        const struct wsum *w = &cl->wsum[i];
        if (w->seen_ms < out->oldest_seen_ms)
            out->oldest_seen_ms = w->seen_ms;
        if (now_ms - w->seen_ms > stale_ms || w->cores_used != w->cores_used)
            continue;
        out->known++;
        out->busy += w->cores_used > 0;
    }
}

int store_worker_idle(const ss_store *s, int cluster, size_t i, int64_t now_ms, int64_t stale_ms)
{
    if (cluster < 0 || (size_t)cluster >= s->nclusters || i >= s->cl[cluster].nworkers)
        return 0;
    const struct wsum *w = &s->cl[cluster].wsum[i];
    return now_ms - w->seen_ms <= stale_ms && w->cores_used == 0;
}

static const store_app *worker_ent(const store_worker *w)
{
    return (const store_app *)(const void *)w;
}

const char *store_worker_source(const store_worker *w) { return worker_ent(w)->id; }
int64_t store_worker_last_seen_ms(const store_worker *w) { return worker_ent(w)->last_seen_ms; }

static int src_latest(const struct src *src, int gauge, double *value, int64_t *ts_ms)
{
    if (gauge < 0 || gauge >= NGAUGES || !src->idx[gauge])
        return -ENOENT;
    unsigned k = src->idx[gauge];
    const store_series *se = k <= HIST_SLOTS ? src_get(src, k - 1u)
                                             : src_get(src, src->nhist + (k - 1u - HIST_SLOTS));
    if (value)
        *value = ser_val(se)[se->head];
    if (ts_ms)
        *ts_ms = ts_of(se, se->head);
    return 0;
}

int store_app_latest(const store_app *a, int gauge, double *value, int64_t *ts_ms)
{
    return src_latest(&a->src, gauge, value, ts_ms);
}

int store_master_latest(const ss_store *s, int cluster, int gauge, double *value, int64_t *ts_ms)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl ? src_latest(&cl->master, gauge, value, ts_ms) : -ENOENT;
}

int store_worker_latest(const store_worker *w, int gauge, double *value, int64_t *ts_ms)
{
    return src_latest(&worker_ent(w)->src, gauge, value, ts_ms);
}

size_t store_app_series_count(const store_app *a) { return src_count(&a->src); }
const store_series *store_app_series_at(const store_app *a, size_t i) { return src_get(&a->src, i); }

size_t store_master_series_count(const ss_store *s, int cluster)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl ? src_count(&cl->master) : 0;
}

const store_series *store_master_series_at(const ss_store *s, int cluster, size_t i)
{
    const struct cluster *cl = cluster_get(s, cluster);
    return cl ? src_get(&cl->master, i) : NULL;
}

size_t store_worker_series_count(const store_worker *w) { return src_count(&worker_ent(w)->src); }

const store_series *store_worker_series_at(const store_worker *w, size_t i)
{
    return src_get(&worker_ent(w)->src, i);
}

const char *store_series_name(const store_series *se)
{
    return se->gauge == SPARK_G_UNKNOWN ? se->name : spark_gauge_name(se->gauge);
}

int store_series_gauge(const store_series *se) { return se->gauge; }
size_t store_series_len(const store_series *se) { return se->len; }

int store_series_sample(const store_series *se, size_t i, int64_t *ts_ms, double *value)
{
    if (i >= se->len)
        return -ENOENT;
    size_t k = slot_of(se, i);
    if (ts_ms)
        *ts_ms = ts_of(se, k);
    if (value)
        *value = ser_val(se)[k];
    return 0;
}

void store_get_stats(const ss_store *s, store_stats *out) { *out = s->st; }
