/* master_json.c: the Spark standalone master's /json/ answer into structs.
 * Field names and shapes: Spark 3.5 JsonProtocol, as recorded in tests/fixtures/spark_master/. */
#include "lib/spark/master_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Where we are, for messages: "workers[3]" or "" at the top. */
typedef struct ctx {
    char *err;
    size_t errlen;
    char where[48];
} ctx;

static int field_err(ctx *c, const char *key, const char *what)
{
    errf(c->err, c->errlen, "%s%s%s: %s", c->where, c->where[0] && key[0] ? "." : "", key, what);
    return -EPROTO;
}

/* An integer field within [lo, hi]. Absent: -ENOENT (no message) unless required. */
static int get_int(ctx *c, json_t *o, const char *key, int64_t lo, int64_t hi, bool required,
                   int64_t *v)
{
    json_t *j = json_object_get(o, key);
    json_int_t i;
    if (!j) {
        if (required)
            return field_err(c, key, "missing");
        return -ENOENT;
    }
    if (!json_is_integer(j))
        return field_err(c, key, "not an integer");
    i = json_integer_value(j);
    if (i < lo || i > hi)
        return field_err(c, key, "out of range");
    *v = (int64_t)i;
    return 0;
}

/* A string field. Returns 0 with *s pointing into the JSON tree, -ENOENT when
 * absent and not required, -EPROTO otherwise. */
static int get_str(ctx *c, json_t *o, const char *key, bool required, const char **s, size_t *n)
{
    json_t *j = json_object_get(o, key);
    if (!j) {
        if (required)
            return field_err(c, key, "missing");
        return -ENOENT;
    }
    if (!json_is_string(j))
        return field_err(c, key, "not a string");
    *s = json_string_value(j);
    *n = json_string_length(j);
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static bool eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static ss_master_status parse_status(const char *s, size_t n)
{
    if (eq(s, n, "ALIVE"))
        return SS_MASTER_ALIVE;
    if (eq(s, n, "STANDBY"))
        return SS_MASTER_STANDBY;
    if (eq(s, n, "RECOVERING"))
        return SS_MASTER_RECOVERING;
    if (eq(s, n, "COMPLETING_RECOVERY"))
        return SS_MASTER_COMPLETING_RECOVERY;
    return SS_MASTER_STATUS_UNKNOWN;
}

static ss_worker_state parse_worker_state(const char *s, size_t n)
{
    if (eq(s, n, "ALIVE"))
        return SS_WORKER_ALIVE;
    if (eq(s, n, "DEAD"))
        return SS_WORKER_DEAD;
    if (eq(s, n, "DECOMMISSIONED"))
        return SS_WORKER_DECOMMISSIONED;
    return SS_WORKER_UNKNOWN;
}

static ss_app_state parse_app_state(const char *s, size_t n)
{
    if (eq(s, n, "WAITING"))
        return SS_APP_WAITING;
    if (eq(s, n, "RUNNING"))
        return SS_APP_RUNNING;
    if (eq(s, n, "FINISHED"))
        return SS_APP_FINISHED;
    if (eq(s, n, "FAILED"))
        return SS_APP_FAILED;
    if (eq(s, n, "KILLED"))
        return SS_APP_KILLED;
    return SS_APP_UNKNOWN;
}

const char *ss_master_status_name(ss_master_status s)
{
    static const char *const names[] = {"UNKNOWN", "ALIVE", "STANDBY", "RECOVERING",
                                        "COMPLETING_RECOVERY"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "UNKNOWN";
}

const char *ss_worker_state_name(ss_worker_state s)
{
    static const char *const names[] = {"UNKNOWN", "ALIVE", "DEAD", "DECOMMISSIONED"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "UNKNOWN";
}

const char *ss_app_state_name(ss_app_state s)
{
    static const char *const names[] = {"UNKNOWN", "WAITING", "RUNNING", "FINISHED", "FAILED",
                                        "KILLED"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "UNKNOWN";
}

/* A short identifier-like string: non-empty, bounded. jansson has already
 * checked UTF-8 and refused NUL bytes. */
static bool ok_ident(const char *s, size_t n, size_t max)
{
    return n > 0 && n <= max;
}

/* Returns 0 (filled), 1 (skipped) or a negative error. */
static int parse_worker(ctx *c, json_t *o, ss_spark_worker *w)
{
    const char *id, *host, *state, *ui = "";
    size_t id_n, host_n, state_n, ui_n = 0;
    int64_t v;
    int rc;

    if (!json_is_object(o))
        return field_err(c, "", "not an object");
    if ((rc = get_str(c, o, "id", true, &id, &id_n)) != 0 ||
        (rc = get_str(c, o, "host", true, &host, &host_n)) != 0 ||
        (rc = get_str(c, o, "state", true, &state, &state_n)) != 0)
        return rc;
    rc = get_str(c, o, "webuiaddress", false, &ui, &ui_n);
    if (rc == -EPROTO)
        return rc;
    if ((rc = get_int(c, o, "port", 0, 65535, true, &v)) != 0)
        return rc;
    w->port = (int)v;
    if ((rc = get_int(c, o, "cores", 0, INT32_MAX, true, &v)) != 0)
        return rc;
    w->cores = (int)v;
    if ((rc = get_int(c, o, "coresused", 0, INT32_MAX, true, &v)) != 0)
        return rc;
    w->coresused = (int)v;
    rc = get_int(c, o, "coresfree", INT32_MIN, INT32_MAX, false, &v);
    if (rc == -EPROTO)
        return rc;
    w->coresfree = rc == 0 ? (int)v : w->cores - w->coresused;
    if ((rc = get_int(c, o, "memory", 0, INT64_MAX, true, &w->memory_mb)) != 0 ||
        (rc = get_int(c, o, "memoryused", 0, INT64_MAX, true, &w->memoryused_mb)) != 0)
        return rc;
    rc = get_int(c, o, "lastheartbeat", INT64_MIN, INT64_MAX, false, &w->lastheartbeat_ms);
    if (rc == -EPROTO)
        return rc;
    if (rc == -ENOENT)
        w->lastheartbeat_ms = -1;
    w->state = parse_worker_state(state, state_n);

    if (!ok_ident(id, id_n, SS_MASTER_MAX_ID) || !ok_ident(host, host_n, SS_MASTER_MAX_ID) ||
        ui_n > SS_MASTER_MAX_ID)
        return 1;
    w->id = dup_n(id, id_n);
    w->host = dup_n(host, host_n);
    w->webuiaddress = dup_n(ui, ui_n);
    if (!w->id || !w->host || !w->webuiaddress)
        return -ENOMEM;
    return 0;
}

static int parse_resources(ctx *c, json_t *arr, ss_spark_app *a)
{
    size_t i, n = json_array_size(arr);
    if (n > SS_MASTER_MAX_RESOURCES)
        n = SS_MASTER_MAX_RESOURCES;
    if (n == 0)
        return 0;
    a->resources = calloc(n, sizeof(*a->resources));
    if (!a->resources)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, i);
        const char *name;
        size_t name_n;
        int64_t amount;
        int rc;
        if (!json_is_object(r))
            return field_err(c, "resourcesperexecutor", "an item is not an object");
        if ((rc = get_str(c, r, "name", true, &name, &name_n)) != 0 ||
            (rc = get_int(c, r, "amount", 0, INT64_MAX, true, &amount)) != 0)
            return rc;
        if (!ok_ident(name, name_n, SS_MASTER_MAX_ID))
            continue;
        a->resources[a->nresources].name = dup_n(name, name_n);
        if (!a->resources[a->nresources].name)
            return -ENOMEM;
        a->resources[a->nresources++].amount = amount;
    }
    return 0;
}

/* Returns 0 (filled), 1 (skipped) or a negative error. */
static int parse_app(ctx *c, json_t *o, ss_spark_app *a)
{
    const char *id, *state, *name = "";
    size_t id_n, state_n, name_n = 0;
    json_t *res;
    int64_t v;
    int rc;

    if (!json_is_object(o))
        return field_err(c, "", "not an object");
    if ((rc = get_str(c, o, "id", true, &id, &id_n)) != 0 ||
        (rc = get_str(c, o, "state", true, &state, &state_n)) != 0)
        return rc;
    rc = get_str(c, o, "name", false, &name, &name_n);
    if (rc == -EPROTO)
        return rc;
    if ((rc = get_int(c, o, "cores", 0, INT32_MAX, true, &v)) != 0)
        return rc;
    a->cores = (int)v;
    if ((rc = get_int(c, o, "starttime", INT64_MIN, INT64_MAX, true, &a->starttime_ms)) != 0)
        return rc;
    rc = get_int(c, o, "memoryperexecutor", 0, INT64_MAX, false, &a->memoryperexecutor_mb);
    if (rc == -ENOENT)   /* Spark before 3.0 */
        rc = get_int(c, o, "memoryperslave", 0, INT64_MAX, false, &a->memoryperexecutor_mb);
    if (rc == -ENOENT)
        return field_err(c, "memoryperexecutor", "missing (and no memoryperslave)");
    if (rc != 0)
        return rc;
    rc = get_int(c, o, "duration", INT64_MIN, INT64_MAX, false, &a->duration_ms);
    if (rc == -EPROTO)
        return rc;
    if (rc == -ENOENT)
        a->duration_ms = -1;
    a->state = parse_app_state(state, state_n);

    if (!ok_ident(id, id_n, SS_MASTER_MAX_ID) || name_n > SS_MASTER_MAX_NAME)
        return 1;
    res = json_object_get(o, "resourcesperexecutor");
    if (res && !json_is_array(res))
        return field_err(c, "resourcesperexecutor", "not an array");
    if (res && (rc = parse_resources(c, res, a)) != 0)
        return rc;
    a->id = dup_n(id, id_n);
    a->name = dup_n(name, name_n);
    if (!a->id || !a->name)
        return -ENOMEM;
    return 0;
}

static void free_worker(ss_spark_worker *w)
{
    free(w->id);
    free(w->host);
    free(w->webuiaddress);
    memset(w, 0, sizeof(*w));
}

static void free_app(ss_spark_app *a)
{
    size_t i;
    for (i = 0; i < a->nresources; i++)
        free(a->resources[i].name);
    free(a->resources);
    free(a->id);
    free(a->name);
    memset(a, 0, sizeof(*a));
}

void ss_master_state_free(ss_master_state *m)
{
    size_t i;
    if (!m)
        return;
    for (i = 0; i < m->nworkers; i++)
        free_worker(&m->workers[i]);
    for (i = 0; i < m->nactiveapps; i++)
        free_app(&m->activeapps[i]);
    free(m->workers);
    free(m->activeapps);
    free(m->url);
    free(m);
}

static int parse_workers(ctx *c, json_t *arr, ss_master_state *m)
{
    size_t i, n = json_array_size(arr);
    if (n > SS_MASTER_MAX_WORKERS) {
        errf(c->err, c->errlen, "workers: %zu items (at most %d)", n, SS_MASTER_MAX_WORKERS);
        return -E2BIG;
    }
    if (n == 0)
        return 0;
    m->workers = calloc(n, sizeof(*m->workers));
    if (!m->workers)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        ss_spark_worker *w = &m->workers[m->nworkers];
        int rc;
        snprintf(c->where, sizeof(c->where), "workers[%zu]", i);
        rc = parse_worker(c, json_array_get(arr, i), w);
        if (rc < 0) {
            free_worker(w);
            return rc;
        }
        if (rc == 1) {
            free_worker(w);
            m->workers_skipped++;
            continue;
        }
        m->nworkers++;
    }
    c->where[0] = '\0';
    return 0;
}

static int parse_apps(ctx *c, json_t *arr, ss_master_state *m)
{
    size_t i, n = json_array_size(arr);
    if (n > SS_MASTER_MAX_APPS) {
        errf(c->err, c->errlen, "activeapps: %zu items (at most %d)", n, SS_MASTER_MAX_APPS);
        return -E2BIG;
    }
    if (n == 0)
        return 0;
    m->activeapps = calloc(n, sizeof(*m->activeapps));
    if (!m->activeapps)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        ss_spark_app *a = &m->activeapps[m->nactiveapps];
        int rc;
        snprintf(c->where, sizeof(c->where), "activeapps[%zu]", i);
        rc = parse_app(c, json_array_get(arr, i), a);
        if (rc < 0) {
            free_app(a);
            return rc;
        }
        if (rc == 1) {
            free_app(a);
            m->apps_skipped++;
            continue;
        }
        m->nactiveapps++;
    }
    c->where[0] = '\0';
    return 0;
}

static int parse_top(ctx *c, json_t *root, ss_master_state *m)
{
    const char *s;
    size_t n;
    json_t *arr;
    int64_t v;
    int rc;

    if (!json_is_object(root)) {
        errf(c->err, c->errlen, "not a JSON object");
        return -EPROTO;
    }
    if ((rc = get_str(c, root, "status", true, &s, &n)) != 0)
        return rc;
    m->status = parse_status(s, n);
    if ((rc = get_str(c, root, "url", true, &s, &n)) != 0)
        return rc;
    if (n > SS_MASTER_MAX_ID)
        return field_err(c, "url", "too long");
    if (!(m->url = dup_n(s, n)))
        return -ENOMEM;
    if ((rc = get_int(c, root, "aliveworkers", 0, INT32_MAX, true, &v)) != 0)
        return rc;
    m->aliveworkers = (int)v;
    if ((rc = get_int(c, root, "cores", 0, INT32_MAX, true, &v)) != 0)
        return rc;
    m->cores = (int)v;
    if ((rc = get_int(c, root, "coresused", 0, INT32_MAX, true, &v)) != 0)
        return rc;
    m->coresused = (int)v;

    arr = json_object_get(root, "workers");
    if (!arr || !json_is_array(arr))
        return field_err(c, "workers", arr ? "not an array" : "missing");
    if ((rc = parse_workers(c, arr, m)) != 0)
        return rc;
    arr = json_object_get(root, "activeapps");
    if (!arr || !json_is_array(arr))
        return field_err(c, "activeapps", arr ? "not an array" : "missing");
    if ((rc = parse_apps(c, arr, m)) != 0)
        return rc;
    arr = json_object_get(root, "completedapps");
    if (arr && !json_is_array(arr))
        return field_err(c, "completedapps", "not an array");
    m->ncompletedapps = json_array_size(arr);   /* 0 for NULL */
    return 0;
}

int ss_master_parse(const char *json, size_t len, ss_master_state **out, char *err, size_t errlen)
{
    ctx c = {err, errlen, ""};
    json_error_t jerr;
    ss_master_state *m;
    json_t *root;
    int rc;

    if (!out || (!json && len > 0)) {
        errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    *out = NULL;
    if (len > SS_MASTER_MAX_INPUT) {
        errf(err, errlen, "input of %zu bytes (at most %u)", len, SS_MASTER_MAX_INPUT);
        return -E2BIG;
    }
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        errf(err, errlen, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
        return -EBADMSG;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        json_decref(root);
        return -ENOMEM;
    }
    rc = parse_top(&c, root, m);
    json_decref(root);
    if (rc != 0) {
        if (rc == -ENOMEM)
            errf(err, errlen, "out of memory");
        ss_master_state_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

size_t ss_master_busy_workers(const ss_master_state *m)
{
    size_t i, n = 0;
    if (!m)
        return 0;
    for (i = 0; i < m->nworkers; i++)
        n += m->workers[i].state == SS_WORKER_ALIVE && m->workers[i].coresused > 0;
    return n;
}

static bool host_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

const ss_spark_worker *ss_master_find_worker(const ss_master_state *m, const char *host, int port)
{
    const ss_spark_worker *best = NULL;
    size_t i;
    if (!m || !host)
        return NULL;
    for (i = 0; i < m->nworkers; i++) {
        const ss_spark_worker *w = &m->workers[i];
        if (!host_eq(w->host, host) || (port > 0 && w->port != port))
            continue;
        if (w->state == SS_WORKER_ALIVE)
            return w;
        if (!best || w->lastheartbeat_ms > best->lastheartbeat_ms)
            best = w;
    }
    return best;
}
