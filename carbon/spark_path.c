/* spark_path.c: decodes Spark GraphiteSink metric paths from the right and
 * resolves the cluster from its configured metrics prefix by hash lookup. */
#include "carbon/spark_path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Gauge names (Spark's ExecutorAllocationManagerSource, MasterSource,
 * WorkerSource). Indexed by spark_gauge. */
typedef struct gauge_name {
    const char *s;
    size_t len;
} gauge_name;

#define G(str) {str, sizeof(str) - 1}
static const gauge_name gauge_names[SPARK_G_WORKER_END] = {
    [SPARK_G_EXECUTORS_TO_ADD] = G("numberExecutorsToAdd"),
    [SPARK_G_PENDING_TO_REMOVE] = G("numberExecutorsPendingToRemove"),
    [SPARK_G_ALL_EXECUTORS] = G("numberAllExecutors"),
    [SPARK_G_TARGET_EXECUTORS] = G("numberTargetExecutors"),
    [SPARK_G_MAX_NEEDED_EXECUTORS] = G("numberMaxNeededExecutors"),
    [SPARK_G_DECOMMISSIONING] = G("numberDecommissioningExecutors"),
    [SPARK_G_GRACEFULLY_DECOMMISSIONED] = G("numberExecutorsGracefullyDecommissioned"),
    [SPARK_G_DECOMMISSION_UNFINISHED] = G("numberExecutorsDecommissionUnfinished"),
    [SPARK_G_KILLED_BY_DRIVER] = G("numberExecutorsKilledByDriver"),
    [SPARK_G_EXITED_UNEXPECTEDLY] = G("numberExecutorsExitedUnexpectedly"),
    [SPARK_G_MASTER_WORKERS] = G("workers"),
    [SPARK_G_MASTER_ALIVE_WORKERS] = G("aliveWorkers"),
    [SPARK_G_MASTER_APPS] = G("apps"),
    [SPARK_G_MASTER_WAITING_APPS] = G("waitingApps"),
    [SPARK_G_WORKER_EXECUTORS] = G("executors"),
    [SPARK_G_WORKER_CORES_USED] = G("coresUsed"),
    [SPARK_G_WORKER_CORES_FREE] = G("coresFree"),
    [SPARK_G_WORKER_MEM_USED_MB] = G("memUsed_MB"),
    [SPARK_G_WORKER_MEM_FREE_MB] = G("memFree_MB"),
};
#undef G

const char *spark_gauge_name(int gauge)
{
    if (gauge < 0 || gauge >= SPARK_G_WORKER_END)
        return "unknown";
    return gauge_names[gauge].s;
}

static int find_gauge(int first, int end, const char *name, size_t len)
{
    int g;
    for (g = first; g < end; g++) {
        if (gauge_names[g].len == len && memcmp(gauge_names[g].s, name, len) == 0)
            return g;
    }
    return SPARK_G_UNKNOWN;
}

/* ---- Prefix table: open addressing, linear probing, load <= 1/2. Built
 * once from the config, so no flooding concern: lookups only read it. */

typedef struct slot {
    uint64_t hash;
    char *key;          /* NULL: empty slot */
    size_t len;
    int cluster;
} slot;

struct spark_prefixes {
    slot *slots;
    size_t cap;         /* power of two */
    size_t count;
    size_t max_len;     /* longest registered prefix: bounds the candidates */
    size_t max_parts;   /* most components in a registered prefix */
    int empty_cluster;  /* cluster of the "" prefix, or -1 */
};

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    size_t i;
    for (i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)s[i]);
    return h;
}

static inline size_t slot_index(uint64_t h, size_t mask)
{
    return (size_t)(h ^ (h >> 29)) & mask;
}

static int lookup(const spark_prefixes *p, uint64_t h, const char *s, size_t n)
{
    size_t mask = p->cap - 1, i;

    for (i = slot_index(h, mask); p->slots[i].key; i = (i + 1) & mask) {
        const slot *e = &p->slots[i];
        if (e->hash == h && e->len == n && memcmp(e->key, s, n) == 0)
            return e->cluster;
    }
    return -1;
}

spark_prefixes *spark_prefixes_create(size_t expected)
{
    spark_prefixes *p = calloc(1, sizeof(*p));
    size_t cap = 16;

    if (!p)
        return NULL;
    if (expected > SIZE_MAX / 4)
        expected = SIZE_MAX / 4;
    while (cap < expected * 2)
        cap *= 2;
    p->slots = calloc(cap, sizeof(slot));
    if (!p->slots) {
        free(p);
        return NULL;
    }
    p->cap = cap;
    p->empty_cluster = -1;
    return p;
}

void spark_prefixes_destroy(spark_prefixes *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->cap; i++)
        free(p->slots[i].key);
    free(p->slots);
    free(p);
}

static int grow(spark_prefixes *p)
{
    size_t cap = p->cap * 2, i;
    slot *slots = calloc(cap, sizeof(slot));

    if (!slots)
        return -ENOMEM;
    for (i = 0; i < p->cap; i++) {
        size_t j;
        if (!p->slots[i].key)
            continue;
        for (j = slot_index(p->slots[i].hash, cap - 1); slots[j].key; j = (j + 1) & (cap - 1))
            ;
        slots[j] = p->slots[i];
    }
    free(p->slots);
    p->slots = slots;
    p->cap = cap;
    return 0;
}

/* A prefix is dot-separated non-empty components of printable bytes. */
static int prefix_valid(const char *s, size_t n, size_t *parts)
{
    size_t i;

    *parts = 1;
    if (n > SPARK_PREFIX_MAX_LEN || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return 0;
        if (c == '.') {
            if (s[i + 1] == '.')
                return 0;
            (*parts)++;
        }
    }
    return *parts <= SPARK_PREFIX_MAX_PARTS;
}

int spark_prefixes_add(spark_prefixes *p, const char *prefix, int cluster)
{
    size_t n = strlen(prefix), parts, i;
    uint64_t h;
    char *key;

    if (cluster < 0)
        return -EINVAL;
    if (n == 0) {
        if (p->empty_cluster >= 0)
            return -EEXIST;
        p->empty_cluster = cluster;
        return 0;
    }
    if (!prefix_valid(prefix, n, &parts))
        return -EINVAL;
    h = fnv(prefix, n);
    if (lookup(p, h, prefix, n) >= 0)
        return -EEXIST;
    if ((p->count + 1) * 2 > p->cap && grow(p) != 0)
        return -ENOMEM;
    key = malloc(n + 1);
    if (!key)
        return -ENOMEM;
    memcpy(key, prefix, n + 1);
    for (i = slot_index(h, p->cap - 1); p->slots[i].key; i = (i + 1) & (p->cap - 1))
        ;
    p->slots[i] = (slot){.hash = h, .key = key, .len = n, .cluster = cluster};
    p->count++;
    if (n > p->max_len)
        p->max_len = n;
    if (parts > p->max_parts)
        p->max_parts = parts;
    return 0;
}

/* ---- Decoding ------------------------------------------------------------ */

static const char anchor[] = ".driver.ExecutorAllocationManager.executors.";

/* Fixed-size compares as plain loads: every line pays for these, and glibc's
 * memcmp call costs more than the compare itself. */
static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t load4(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int eq8(const char *p, const char *lit)
{
    return load8(p) == load8(lit);
}

/* 7 bytes as two overlapping 4-byte loads. */
static inline int eq7(const char *p, const char *lit)
{
    return load4(p) == load4(lit) && load4(p + 3) == load4(lit + 3);
}
#define ANCHOR_LEN (sizeof(anchor) - 1)

/* "<left>" = "[prefix.]<namespace>": the longest registered prefix ending at
 * a dot with a namespace left after it, else the "" prefix. Candidate
 * boundaries are bounded by the longest / most-dotted registered prefix, and
 * their hashes come from one left-to-right pass. */
static int resolve_app(const spark_prefixes *p, const char *left, size_t n,
                       spark_metric *out)
{
    size_t pos[SPARK_PREFIX_MAX_PARTS];
    uint64_t hash[SPARK_PREFIX_MAX_PARTS];
    size_t k = 0, i, limit;
    uint64_t h = FNV_OFFSET;

    /* A boundary at i leaves left[i+1..n) as namespace: needs i + 2 <= n. */
    limit = n >= 2 ? n - 2 : 0;
    if (limit > p->max_len)
        limit = p->max_len;
    if (p->count > 0) {
        for (i = 0; i <= limit && k < p->max_parts; i++) {
            if (left[i] == '.' && left[i + 1] != '.') {
                pos[k] = i;
                hash[k] = h;
                k++;
            }
            h = fnv_step(h, (unsigned char)left[i]);
        }
    }
    while (k-- > 0) {
        int c = lookup(p, hash[k], left, pos[k]);
        if (c >= 0) {
            out->cluster = c;
            out->app = left + pos[k] + 1;
            out->app_len = n - pos[k] - 1;
            return SPARK_PATH_OK;
        }
    }
    out->app = left;
    out->app_len = n;
    if (p->empty_cluster < 0)
        return SPARK_PATH_E_CLUSTER;
    out->cluster = p->empty_cluster;
    return SPARK_PATH_OK;
}

/* The gauge is path[g, ge); path[g - 1] is a dot. */
static int decode_at(const spark_prefixes *p, const char *path, size_t g, size_t ge,
                     int is_counter, spark_metric *out)
{
    const char *name = path + g;
    size_t name_len = ge - g;

    if (g >= 8 && eq8(path + g - 8, "ecutors.")) {
        size_t left_len;
        if (g < ANCHOR_LEN) {
            /* "driver.ExecutorAllocationManager.executors.<gauge>": no
             * namespace, a bad path (left_len 0) rather than another metric. */
            if (g != ANCHOR_LEN - 1 || memcmp(path, anchor + 1, ANCHOR_LEN - 1) != 0)
                return SPARK_PATH_SKIP;
            left_len = 0;
        } else {
            if (memcmp(path + g - ANCHOR_LEN, anchor, ANCHOR_LEN - 8) != 0)
                return SPARK_PATH_SKIP;
            left_len = g - ANCHOR_LEN;
        }
        out->kind = SPARK_KIND_APP;
        out->cluster = -1;
        out->app = NULL;
        out->app_len = 0;
        out->name = name;
        out->name_len = name_len;
        out->is_counter = is_counter;
        out->gauge = find_gauge(0, SPARK_G_APP_COUNT, name, name_len);
        if (name_len == 0 || left_len == 0 || path[0] == '.' || path[left_len - 1] == '.')
            return SPARK_PATH_E_SHAPE;
        return resolve_app(p, path, left_len, out);
    }
    if (g >= 7 && (g == 7 || path[g - 8] == '.')) {
        int first, end, c;
        spark_kind kind;
        if (eq7(path + g - 7, "master.")) {
            kind = SPARK_KIND_MASTER;
            first = SPARK_G_MASTER_WORKERS;
            end = SPARK_G_MASTER_END;
        } else if (eq7(path + g - 7, "worker.")) {
            kind = SPARK_KIND_WORKER;
            first = SPARK_G_WORKER_EXECUTORS;
            end = SPARK_G_WORKER_END;
        } else {
            return SPARK_PATH_SKIP;
        }
        out->kind = kind;
        out->cluster = -1;
        out->app = NULL;
        out->app_len = 0;
        out->name = name;
        out->name_len = name_len;
        out->is_counter = is_counter;
        out->gauge = find_gauge(first, end, name, name_len);
        if (name_len == 0 || g == 8)   /* empty gauge, or ".master.<gauge>" */
            return SPARK_PATH_E_SHAPE;
        if (g == 7)
            c = p->empty_cluster;
        else if (g - 8 > p->max_len || p->count == 0)
            c = -1;
        else
            c = lookup(p, fnv(path, g - 8), path, g - 8);
        if (c < 0)
            return SPARK_PATH_E_CLUSTER;
        out->cluster = c;
        return SPARK_PATH_OK;
    }
    return SPARK_PATH_SKIP;
}

int spark_path_decode(const spark_prefixes *p, const char *path, size_t len,
                      spark_metric *out)
{
    const char *dot;
    size_t last;

    out->kind = SPARK_KIND_NONE;
    if (len == 0)
        return SPARK_PATH_SKIP;
    dot = memrchr(path, '.', len);
    if (!dot)
        return SPARK_PATH_SKIP;
    last = (size_t)(dot - path);
    /* Dropwizard sends counters as "<name>.count". If that reading does not
     * name one of our sources, try "count" as a gauge name of its own. */
    if (len - last == 6 && load4(dot + 1) == load4("coun") && dot[5] == 't') {
        const char *prev = memrchr(path, '.', last);
        if (prev) {
            int rc = decode_at(p, path, (size_t)(prev - path) + 1, last, 1, out);
            if (rc != SPARK_PATH_SKIP)
                return rc;
        }
    }
    return decode_at(p, path, last + 1, len, 0, out);
}

int spark_registry_decode(const char *name, size_t len, int cluster, spark_metric *out)
{
    /* An empty table whose "" prefix is the cluster: nothing to look up. */
    spark_prefixes only = {.empty_cluster = cluster};

    return spark_path_decode(&only, name, len, out);
}
