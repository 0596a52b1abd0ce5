/* config.c: the YAML configuration loader (libyaml document API). One table per
 * section (key, type, bounds, offset, default, description) drives parsing, defaults and printing. */
#include "lib/config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "lib/base/str.h"

/* Hard limits: the loader runs before anything else and must not be the way
 * a bad file exhausts memory. 10,000 clusters fit well inside them. */
#define CONFIG_MAX_BYTES ((size_t)16 << 20)
#define CONFIG_MAX_CLUSTERS 100000
#define CONFIG_MAX_POOLS 10000
#define CONFIG_MAX_PROPERTIES 1024
#define CONFIG_MAX_PROPERTY_BYTES 65536
#define WORKERS_MAX 1000000
#define MEMORY_MB_MAX (1 << 24)
#define PATH_LEN 512

_Static_assert(sizeof(ss_target_kind) == sizeof(int), "enums are stored through int");
_Static_assert(sizeof(policy_demand_source) == sizeof(int), "enums are stored through int");
_Static_assert(sizeof(policy_idle_mode) == sizeof(int), "enums are stored through int");

typedef enum field_type {
    FT_END = 0,  /* table terminator */
    FT_INT,      /* int within [min, max] */
    FT_BOOL,     /* int 0/1 */
    FT_STRING,   /* char[size], NUL-terminated */
    FT_ADDR,     /* ss_listen_addr */
    FT_ENUM,     /* int from opts, or char[size] when size != 0 */
    FT_MAP,      /* nested mapping described by sub, at base + offset */
    FT_EMBED,    /* sub's keys belong to this mapping, at base + offset */
    FT_LIST,     /* pointer at offset, size_t count at count_offset */
    FT_PROPS     /* ss_kv pointer at offset, size_t count at count_offset */
} field_type;

enum {
    F_REQUIRED = 1 << 0, /* no default: the key must be present */
    F_NONEMPTY = 1 << 1, /* "" is an error */
    F_NAME = 1 << 2,     /* [A-Za-z0-9_.-]* */
    F_URL = 1 << 3,      /* "" or http(s)://... */
    F_TOPIC = 1 << 4,    /* Kafka topic name: [A-Za-z0-9._-], <= 249 bytes */
    F_PREFIX = 1 << 5    /* Graphite prefix: no blanks, no empty component */
};

typedef struct enum_opt {
    const char *name;
    int value;
} enum_opt;

struct ctx;

typedef struct field {
    const char *key;
    field_type type;
    size_t offset;           /* from the start of the struct the table describes */
    size_t size;             /* FT_STRING, string FT_ENUM: buffer size; FT_LIST: element size */
    size_t count_offset;     /* FT_LIST, FT_PROPS */
    long min, max;           /* FT_INT bounds; FT_LIST: max elements */
    const char *def;         /* default, as YAML text, parsed by the same code as input */
    const enum_opt *opts;    /* FT_ENUM, NULL-name terminated */
    const struct field *sub; /* FT_MAP, FT_EMBED, FT_LIST element */
    void (*init)(struct ctx *c, void *elem);                   /* FT_LIST, after defaults */
    int (*post)(struct ctx *c, yaml_node_t *node, void *elem); /* FT_LIST, after parsing */
    int flags;
    const char *desc;        /* one line; printed as a comment */
} field;

typedef struct ctx {
    const char *source;
    yaml_document_t *doc;
    ss_config *cfg;
    char *err;
    size_t errlen;
    char path[PATH_LEN];     /* full key path of the node being read */
    int failed;
} ctx;

#define FLD_INT(k, st, m, lo, hi, d, ds)                                            \
    { .key = (k), .type = FT_INT, .offset = offsetof(st, m), .min = (lo), .max = (hi), \
      .def = (d), .desc = (ds) }
#define FLD_BOOL(k, st, m, d, ds) \
    { .key = (k), .type = FT_BOOL, .offset = offsetof(st, m), .def = (d), .desc = (ds) }
#define FLD_STR(k, st, m, d, fl, ds)                                                  \
    { .key = (k), .type = FT_STRING, .offset = offsetof(st, m),                        \
      .size = sizeof(((st *)0)->m), .def = (d), .flags = (fl), .desc = (ds) }
#define FLD_ADDR(k, st, m, d, ds) \
    { .key = (k), .type = FT_ADDR, .offset = offsetof(st, m), .def = (d), .desc = (ds) }
#define FLD_ENUM(k, st, m, o, d, ds) \
    { .key = (k), .type = FT_ENUM, .offset = offsetof(st, m), .opts = (o), .def = (d), .desc = (ds) }
#define FLD_SENUM(k, st, m, o, d, ds)                                                 \
    { .key = (k), .type = FT_ENUM, .offset = offsetof(st, m),                          \
      .size = sizeof(((st *)0)->m), .opts = (o), .def = (d), .desc = (ds) }
#define FLD_MAP(k, off, s, ds) \
    { .key = (k), .type = FT_MAP, .offset = (off), .sub = (s), .desc = (ds) }
#define FLD_EMBED(off, s) { .key = "", .type = FT_EMBED, .offset = (off), .sub = (s) }
#define FLD_LIST(k, st, m, cm, et, maxn, s, in, po, ds)                                 \
    { .key = (k), .type = FT_LIST, .offset = offsetof(st, m), .count_offset = offsetof(st, cm), \
      .size = sizeof(et), .max = (maxn), .sub = (s), .init = (in), .post = (po), .desc = (ds) }
#define FLD_PROPS(k, st, m, cm, ds)                                                   \
    { .key = (k), .type = FT_PROPS, .offset = offsetof(st, m),                         \
      .count_offset = offsetof(st, cm), .desc = (ds) }
#define FLD_END { .type = FT_END }

static const enum_opt demand_opts[] = {
    { "target", POLICY_DEMAND_TARGET }, { "max_needed", POLICY_DEMAND_MAX_NEEDED }, { NULL, 0 }
};
static const enum_opt idle_mode_opts[] = {
    { "busy", POLICY_IDLE_OVER_BUSY }, { "need", POLICY_IDLE_OVER_NEED }, { NULL, 0 }
};
static const enum_opt target_opts[] = {
    { "none", SS_TARGET_NONE }, { "kubernetes", SS_TARGET_KUBERNETES },
    { "oshinko", SS_TARGET_OSHINKO }, { "exec", SS_TARGET_EXEC }, { NULL, 0 }
};
static const enum_opt level_opts[] = {
    { "debug", 0 }, { "info", 1 }, { "warn", 2 }, { "error", 3 }, { NULL, 0 }
};

static const field ingest_fields[] = {
    FLD_ADDR("carbon_tcp", ss_config, ingest.carbon_tcp, "127.0.0.1:2003",
             "carbon plaintext over TCP; host:port, port 0 = any free, \"off\" = disabled"),
    FLD_ADDR("carbon_udp", ss_config, ingest.carbon_udp, "127.0.0.1:2003",
             "carbon plaintext over UDP, one or more lines a datagram"),
    FLD_ADDR("http", ss_config, ingest.http, "127.0.0.1:9090",
             "status API: /healthz, /metrics, /v1/clusters, /v1/kafka"),
    FLD_INT("max_line_bytes", ss_config, ingest.max_line_bytes, 64, 1048576, "4096",
            "longer carbon lines are rejected"),
    FLD_INT("max_clients", ss_config, ingest.max_clients, 1, 1000000, "1024",
            "concurrent carbon TCP connections"),
    FLD_INT("client_idle_timeout_s", ss_config, ingest.client_idle_timeout_s, 0, 86400, "120",
            "close carbon TCP clients silent this long, 0 = never"),
    FLD_INT("read_buffer_bytes", ss_config, ingest.read_buffer_bytes, 4096, 16777216, "65536",
            "per-connection read buffer, at least max_line_bytes"),
    FLD_END
};

static const field kafka_fields[] = {
    FLD_STR("brokers", ss_config, kafka.brokers, "embedded", F_NONEMPTY,
            "\"embedded\" (in-process mock cluster) or \"host:port,host2:port\""),
    FLD_STR("decisions_topic", ss_config, kafka.decisions_topic, "sparkscale.decisions", F_TOPIC,
            "ScaleDecision records, key = cluster name"),
    FLD_STR("audit_topic", ss_config, kafka.audit_topic, "sparkscale.audit", F_TOPIC,
            "ActuationResult records"),
    FLD_PROPS("properties", ss_config, kafka.properties, kafka.nproperties,
              "passed to librdkafka as is (SASL, TLS, ...)"),
    FLD_INT("linger_ms", ss_config, kafka.linger_ms, 0, 900000, "1", "producer linger.ms"),
    FLD_INT("heartbeat_s", ss_config, kafka.heartbeat_s, 1, 86400, "30",
            "republish an unchanged decision this often"),
    FLD_INT("max_pending", ss_config, kafka.max_pending, 1, 10000000, "10000",
            "decisions queued while the brokers are down"),
    FLD_INT("decision_ttl_s", ss_config, kafka.decision_ttl_s, 1, 86400, "120",
            "actuators ignore decisions older than this"),
    FLD_END
};

static const field store_fields[] = {
    FLD_INT("max_apps_per_cluster", ss_config, store.max_apps_per_cluster, 1, 100000, "64",
            "applications tracked per cluster"),
    FLD_INT("max_apps", ss_config, store.max_apps, 1, 10000000, "100000",
            "applications tracked across all clusters"),
    FLD_INT("max_series_per_app", ss_config, store.max_series_per_app, 1, 1024, "24",
            "known + unknown gauges kept per application"),
    FLD_INT("max_workers_per_cluster", ss_config, store.max_workers_per_cluster, 1, WORKERS_MAX,
            "1024", "worker gauge sources tracked per cluster"),
    FLD_INT("ring_size", ss_config, store.ring_size, 2, 65536, "16", "samples kept per series"),
    FLD_END
};

/* Relative to policy_conf: used for the top-level defaults and for each
 * cluster's overrides. */
static const field policy_fields[] = {
    FLD_INT("min_workers", policy_conf, min_workers, 0, WORKERS_MAX, "1", "never fewer workers"),
    FLD_INT("max_workers", policy_conf, max_workers, 1, WORKERS_MAX, "20", "never more workers"),
    FLD_INT("idle_workers", policy_conf, idle_workers, 0, WORKERS_MAX, "1",
            "idle workers kept above the busy/needed ones"),
    FLD_INT("scale_down_window_s", policy_conf, scale_down_window_s, 0, 86400, "60",
            "scale down to the highest recommendation of this window"),
    FLD_INT("stale_after_s", policy_conf, stale_after_s, 1, 86400, "30",
            "a feed older than this holds the size"),
    FLD_INT("app_expiry_s", policy_conf, app_expiry_s, 1, 604800, "120",
            "an application silent this long is finished"),
    FLD_INT("max_step_up", policy_conf, max_step_up, 0, WORKERS_MAX, "0",
            "workers added per evaluation, 0 = no limit"),
    FLD_INT("max_step_down", policy_conf, max_step_down, 0, WORKERS_MAX, "0",
            "workers removed per evaluation, 0 = no limit"),
    FLD_INT("tolerance_executors", policy_conf, tolerance_executors, 0, 1000000, "1",
            "demand jitter ignored on scale-down"),
    FLD_INT("app_min_executors", policy_conf, app_min_executors, 0, 1000000, "1",
            "gang minimum per application in a shared pool"),
    FLD_ENUM("demand", policy_conf, demand, demand_opts, "target",
             "target = numberTargetExecutors, max_needed = numberMaxNeededExecutors"),
    FLD_STR("pool", policy_conf, pool, "", F_NAME, "capacity pool (declared under pools), \"\" = none"),
    FLD_ENUM("idle_mode", policy_conf, idle_mode, idle_mode_opts, "busy",
             "busy = max(N, A) + I idle workers; need = max(N + I, A), no ratchet under executor churn"),
    FLD_END
};

static const field policy_top_fields[] = {
    FLD_INT("evaluate_interval_ms", ss_config, policy.evaluate_interval_ms, 10, 3600000, "1000",
            "timer re-evaluation period"),
    FLD_BOOL("dry_run", ss_config, policy.dry_run, "false",
             "decisions carry the dry-run flag; nothing is resized"),
    FLD_EMBED(offsetof(ss_config, policy.defaults), policy_fields),
    FLD_END
};

static const field pool_fields[] = {
    FLD_STR("name", ss_pool_conf, name, NULL, F_REQUIRED | F_NONEMPTY | F_NAME, "pool name"),
    FLD_INT("max_workers", ss_pool_conf, max_workers, 1, WORKERS_MAX, NULL,
            "worker budget shared by the pool's clusters"),
    FLD_END
};

static const field worker_fields[] = {
    FLD_INT("cores", ss_cluster_conf, worker_cores, 1, 4096, "4", "cores of one worker"),
    FLD_INT("memory_mb", ss_cluster_conf, worker_memory_mb, 1, MEMORY_MB_MAX, "8192",
            "memory of one worker"),
    FLD_END
};

static const field executor_fields[] = {
    FLD_INT("cores", ss_cluster_conf, executor_cores, 1, 4096, "1", "spark.executor.cores"),
    FLD_INT("memory_mb", ss_cluster_conf, executor_memory_mb, 1, MEMORY_MB_MAX, "1024",
            "spark.executor.memory"),
    FLD_END
};

static const field target_fields[] = {
    FLD_ENUM("kind", ss_target_conf, kind, target_opts, "none",
             "none | kubernetes | oshinko | exec"),
    FLD_STR("namespace", ss_target_conf, namespace_, "", 0, "kubernetes namespace"),
    FLD_STR("workload", ss_target_conf, workload, "", 0,
            "kubernetes deployment/x | statefulset/x | replicaset/x; oshinko cluster name"),
    FLD_STR("url", ss_target_conf, url, "", F_URL, "oshinko base URL, or kubernetes API override"),
    FLD_STR("command", ss_target_conf, command, "", 0, "exec hook, run with the desired count"),
    FLD_END
};

static const field cluster_fields[] = {
    FLD_STR("name", ss_cluster_conf, name, NULL, F_REQUIRED | F_NONEMPTY | F_NAME,
            "cluster name, the Kafka key of its decisions"),
    FLD_STR("metrics_prefix", ss_cluster_conf, metrics_prefix, NULL, F_PREFIX,
            "the GraphiteSink prefix this cluster uses (default: name)"),
    FLD_STR("spark_master", ss_cluster_conf, spark_master, "", F_URL,
            "master web UI, e.g. http://master:8080, \"\" = none"),
    FLD_MAP("worker", 0, worker_fields, "one Spark worker"),
    FLD_MAP("executor", 0, executor_fields, "one executor"),
    FLD_MAP("policy", offsetof(ss_cluster_conf, policy), policy_fields,
            "overrides of the top-level policy"),
    FLD_MAP("target", offsetof(ss_cluster_conf, target), target_fields, "what is resized"),
    FLD_END
};

static void cluster_init(ctx *c, void *elem);
static int cluster_post(ctx *c, yaml_node_t *node, void *elem);

static const field root_fields[] = {
    FLD_MAP("ingest", 0, ingest_fields, "listeners"),
    FLD_MAP("kafka", 0, kafka_fields, "the decision bus"),
    FLD_MAP("store", 0, store_fields, "bounds of the in-memory metric store"),
    FLD_MAP("policy", 0, policy_top_fields, "evaluation, and defaults for every cluster"),
    FLD_SENUM("log_level", ss_config, log_level, level_opts, "info", "debug | info | warn | error"),
    FLD_LIST("pools", ss_config, pools, npools, ss_pool_conf, CONFIG_MAX_POOLS, pool_fields,
             NULL, NULL, "capacity pools shared by clusters"),
    FLD_LIST("clusters", ss_config, clusters, nclusters, ss_cluster_conf, CONFIG_MAX_CLUSTERS,
             cluster_fields, cluster_init, cluster_post, "Spark standalone clusters"),
    FLD_END
};

const char ss_config_embedded_yaml[] =
    "# sparkscale embedded defaults: used when no --config is given.\n"
    "# One machine, nothing else needed: carbon in, decisions to an embedded Kafka.\n"
    "ingest:\n"
    "  carbon_tcp: \"127.0.0.1:2003\"   # Spark GraphiteSink, protocol=tcp\n"
    "  carbon_udp: \"127.0.0.1:2003\"   # Spark GraphiteSink, protocol=udp\n"
    "  http: \"127.0.0.1:9090\"         # /healthz, /metrics, /v1/clusters, /v1/kafka\n"
    "kafka:\n"
    "  brokers: embedded              # librdkafka's in-process mock cluster\n"
    "  decisions_topic: sparkscale.decisions\n"
    "  audit_topic: sparkscale.audit\n"
    "  properties: {}\n"
    "clusters:\n"
    "  - name: demo\n"
    "    metrics_prefix: demo         # *.sink.graphite.prefix=demo\n"
    "    worker:   { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy:   { min_workers: 1, max_workers: 20, idle_workers: 1 }\n"
    "    target:   { kind: none }     # decisions only, nothing is resized\n";

/* ---- small helpers -------------------------------------------------------- */

static char *at(void *base, size_t off) { return (char *)base + off; }

static void *get_ptr(void *base, size_t off)
{
    void *p;
    memcpy(&p, at(base, off), sizeof p);
    return p;
}

static void set_ptr(void *base, size_t off, void *p) { memcpy(at(base, off), &p, sizeof p); }

static size_t get_count(const void *base, size_t off)
{
    size_t n;
    memcpy(&n, (const char *)base + off, sizeof n);
    return n;
}

static void set_count(void *base, size_t off, size_t n) { memcpy(at(base, off), &n, sizeof n); }

/* Strings are stored zero-padded so configs compare with memcmp. */
static void set_str(char *dst, size_t size, const char *src, size_t len)
{
    memset(dst, 0, size);
    memcpy(dst, src, len < size ? len : size - 1);
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n)
{
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = scalar(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

/* Quotes s for a message or YAML output: double-quoted YAML with escapes,
 * truncated to max bytes of input when max != 0. */
static void quote(char *dst, size_t dstlen, const char *s, size_t max)
{
    size_t o = 0, len = strlen(s);
    int cut = max && len > max;
    if (cut)
        len = max;
    if (dstlen < 8) {
        if (dstlen)
            dst[0] = '\0';
        return;
    }
    dst[o++] = '"';
    for (size_t i = 0; i < len && o + 6 < dstlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (ch == '\t') {
            dst[o++] = '\\';
            dst[o++] = 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    if (cut && o + 4 < dstlen) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

static void fprint_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* ---- errors and key paths ---------------------------------------------------- */

static int failv(ctx *c, yaml_mark_t m, const char *fmt, va_list ap)
{
    c->failed = 1;
    if (!c->err || c->errlen == 0)
        return -EINVAL;
    int n = snprintf(c->err, c->errlen, "%s:%zu:%zu: %s: ", c->source, m.line + 1, m.column + 1,
                     c->path[0] ? c->path : "(top level)");
    if (n >= 0 && (size_t)n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    return -EINVAL;
}

__attribute__((format(printf, 3, 4)))
static int fail(ctx *c, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = failv(c, m, fmt, ap);
    va_end(ap);
    return rc;
}

/* Appends ".key" (or "key" at the top) or "[i]" to the path; returns the old
 * length for path_pop. Over-long paths are truncated, never overflowed. */
static size_t path_push_key(ctx *c, const char *key)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", key);
    return old;
}

static size_t path_push_index(ctx *c, size_t i)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
    return old;
}

static void path_pop(ctx *c, size_t old) { c->path[old] = '\0'; }

static yaml_node_t *node_at(ctx *c, int id) { return yaml_document_get_node(c->doc, id); }

static yaml_node_t *map_get(ctx *c, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
            return node_at(c, p->value);
    }
    return NULL;
}

/* Walks a path such as "clusters[1].policy.max_workers" from the root as far
 * as the document goes and returns the deepest node found, so a message about
 * an inherited value points at the cluster that inherited it. */
static yaml_node_t *node_for_path(ctx *c, const char *path)
{
    yaml_node_t *n = yaml_document_get_root_node(c->doc);
    const char *p = path;
    while (n && *p) {
        yaml_node_t *next = NULL;
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (*end != ']')
                break;
            p = end + 1;
            if (n->type == YAML_SEQUENCE_NODE &&
                i < (unsigned long)(n->data.sequence.items.top - n->data.sequence.items.start))
                next = node_at(c, n->data.sequence.items.start[i]);
        } else {
            if (*p == '.')
                p++;
            size_t len = strcspn(p, ".[");
            char key[128];
            if (len >= sizeof key)
                break;
            memcpy(key, p, len);
            key[len] = '\0';
            p += len;
            next = map_get(c, n, key);
        }
        if (!next)
            break;
        n = next;
    }
    return n;
}

/* Reports an error found after parsing: path is both the message's key path
 * and where in the document the line number comes from. */
__attribute__((format(printf, 3, 4)))
static int fail_path(ctx *c, const char *path, const char *fmt, ...)
{
    yaml_mark_t m = { 0, 0, 0 };
    yaml_node_t *n = node_for_path(c, path);
    if (n)
        m = n->start_mark;
    snprintf(c->path, sizeof c->path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    int rc = failv(c, m, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- scalar conversion ---------------------------------------------------------- */

static int parse_long(const char *s, long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = { "true", "yes", "on", NULL };
    static const char *no[] = { "false", "no", "off", NULL };
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    return -1;
}

static int name_chars_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return 0;
    return 1;
}

static int is_url(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]);
}

/* Returns NULL when addr parses, else what is wrong with it. */
static const char *parse_addr(const char *s, ss_listen_addr *a)
{
    memset(a, 0, sizeof *a);
    if (s[0] == '\0' || strcasecmp(s, "off") == 0)
        return NULL;
    const char *host, *colon;
    size_t hostlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return "missing ']' after an IPv6 address";
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (hostlen == 0)
            return "empty IPv6 address";
        /* Hex, ':' and '.' (IPv4-mapped), then an optional "%zone" (an interface name). */
        const char *zone = memchr(host, '%', hostlen);
        size_t addrlen = zone ? (size_t)(zone - host) : hostlen;
        for (size_t i = 0; i < addrlen; i++)
            if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.')
                return "bad character in IPv6 address";
        for (size_t i = addrlen + 1; zone && i < hostlen; i++)
            if (!isalnum((unsigned char)host[i]) && host[i] != '-' && host[i] != '_' && host[i] != '.')
                return "bad character in IPv6 zone";
        if (!memchr(host, ':', hostlen))
            return "brackets are for IPv6 addresses";
        colon = close + 1;
        if (*colon != ':')
            return "expected ':port' after ']'";
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return "must be host:port (\"off\" disables)";
        host = s;
        hostlen = (size_t)(colon - s);
        if (memchr(host, ':', hostlen))
            return "IPv6 addresses need brackets, e.g. \"[::1]:2003\"";
        if (hostlen == 0)
            return "missing host (0.0.0.0 or [::] listens everywhere)";
        for (size_t i = 0; i < hostlen; i++)
            if (!isalnum((unsigned char)host[i]) && host[i] != '.' && host[i] != '-' && host[i] != '_')
                return "bad character in host";
    }
    if (hostlen >= sizeof a->host)
        return "host too long";
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
        return "port must be a number 0..65535 (0 = pick a free one)";
    long p = strtol(port, NULL, 10);
    if (p > 65535)
        return "port must be a number 0..65535 (0 = pick a free one)";
    memcpy(a->host, host, hostlen);
    a->host[hostlen] = '\0';
    a->port = (int)p;
    a->enabled = 1;
    return NULL;
}

/* Checks a string field's flags; NULL when fine. */
static const char *check_string(const field *f, const char *s)
{
    size_t len = strlen(s);
    if ((f->flags & F_NONEMPTY) && len == 0)
        return "must not be empty";
    if ((f->flags & F_NAME) && !name_chars_ok(s))
        return "may contain only letters, digits, '_', '.' and '-'";
    if ((f->flags & F_URL) && len && !is_url(s))
        return "must be an http:// or https:// URL (or \"\")";
    if (f->flags & F_TOPIC) {
        if (len == 0 || len > 249)
            return "must be a Kafka topic name of 1..249 bytes";
        if (!name_chars_ok(s))
            return "a Kafka topic name may contain only letters, digits, '_', '.' and '-'";
    }
    if (f->flags & F_PREFIX) {
        for (const char *p = s; *p; p++)
            if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
                return "must not contain blanks (carbon splits lines on them)";
        if (len && (s[0] == '.' || s[len - 1] == '.' || strstr(s, "..")))
            return "must not have an empty path component (leading, trailing or double '.')";
    }
    return NULL;
}

/* Sets one scalar-typed field from text; n is the node (NULL for defaults). */
static int set_scalar(ctx *c, const field *f, void *base, yaml_node_t *n, const char *text)
{
    yaml_mark_t m = n ? n->start_mark : (yaml_mark_t){ 0, 0, 0 };
    char q[96];
    if (n && n->type != YAML_SCALAR_NODE) {
        switch (f->type) {
        case FT_INT: return fail(c, m, "must be an integer, got %s", kind_name(n));
        case FT_BOOL: return fail(c, m, "must be true or false, got %s", kind_name(n));
        default: return fail(c, m, "must be a string, got %s", kind_name(n));
        }
    }
    int null = n && is_null(n);
    if (n && strlen(text) != n->data.scalar.length)
        return fail(c, m, "must not contain NUL characters");
    switch (f->type) {
    case FT_INT: {
        long v;
        quote(q, sizeof q, text, 40);
        if (null || parse_long(text, &v) != 0)
            return fail(c, m, "must be an integer, got %s", null ? "nothing" : q);
        if (v < f->min || v > f->max)
            return fail(c, m, "must be between %ld and %ld, got %ld", f->min, f->max, v);
        int iv = (int)v;
        memcpy(at(base, f->offset), &iv, sizeof iv);
        return 0;
    }
    case FT_BOOL: {
        int v;
        quote(q, sizeof q, text, 40);
        if (null || parse_bool(text, &v) != 0)
            return fail(c, m, "must be true or false, got %s", null ? "nothing" : q);
        memcpy(at(base, f->offset), &v, sizeof v);
        return 0;
    }
    case FT_STRING: {
        if (null)
            text = "";
        size_t len = strlen(text);
        if (len >= f->size)
            return fail(c, m, "too long: %zu bytes, at most %zu", len, f->size - 1);
        const char *why = check_string(f, text);
        if (why) {
            quote(q, sizeof q, text, 40);
            return fail(c, m, "%s, got %s", why, q);
        }
        set_str(at(base, f->offset), f->size, text, len);
        return 0;
    }
    case FT_ADDR: {
        ss_listen_addr a;
        const char *why = parse_addr(null ? "" : text, &a);
        if (why) {
            quote(q, sizeof q, text, 60);
            return fail(c, m, "%s, got %s", why, q);
        }
        memcpy(at(base, f->offset), &a, sizeof a);
        return 0;
    }
    case FT_ENUM: {
        for (const enum_opt *o = f->opts; o->name; o++) {
            if (!null && strcmp(o->name, text) == 0) {
                if (f->size)
                    set_str(at(base, f->offset), f->size, o->name, strlen(o->name));
                else
                    memcpy(at(base, f->offset), &o->value, sizeof o->value);
                return 0;
            }
        }
        char list[256] = "";
        for (const enum_opt *o = f->opts; o->name; o++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", o == f->opts ? "" : " | ", o->name);
        }
        quote(q, sizeof q, text, 40);
        return fail(c, m, "must be one of %s, got %s", list, null ? "nothing" : q);
    }
    default:
        return fail(c, m, "internal: not a scalar field");
    }
}

/* ---- tables: defaults, lookup, parsing -------------------------------------------- */

static int apply_defaults(ctx *c, const field *t, void *base)
{
    for (const field *f = t; f->type != FT_END; f++) {
        int rc = 0;
        if (f->type == FT_MAP || f->type == FT_EMBED)
            rc = apply_defaults(c, f->sub, at(base, f->offset));
        else if (f->def)
            rc = set_scalar(c, f, base, NULL, f->def);
        if (rc)
            return rc;
    }
    return 0;
}

static const field *lookup(const field *t, void *base, const char *key, void **fbase)
{
    for (const field *f = t; f->type != FT_END; f++) {
        if (f->type == FT_EMBED) {
            const field *e = lookup(f->sub, at(base, f->offset), key, fbase);
            if (e)
                return e;
        } else if (strcmp(f->key, key) == 0) {
            *fbase = base;
            return f;
        }
    }
    return NULL;
}

/* Levenshtein distance, capped: only used to suggest a key for a typo. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest(const field *t, const char *key, size_t *best)
{
    const char *found = NULL;
    for (const field *f = t; f->type != FT_END; f++) {
        if (f->type == FT_EMBED) {
            const char *s = suggest(f->sub, key, best);
            if (s)
                found = s;
            continue;
        }
        size_t d = edit_distance(key, f->key);
        if (d < *best) {
            *best = d;
            found = f->key;
        }
    }
    return found;
}

static int parse_value(ctx *c, const field *f, void *base, yaml_node_t *v);

static int check_required(ctx *c, yaml_node_t *map, const field *t)
{
    for (const field *f = t; f->type != FT_END; f++) {
        if (f->type == FT_EMBED) {
            int rc = check_required(c, map, f->sub);
            if (rc)
                return rc;
        } else if ((f->flags & F_REQUIRED) || (f->type == FT_INT && !f->def)) {
            if (!map_get(c, map, f->key)) { /* map may be a null node: nothing given */
                size_t old = path_push_key(c, f->key);
                int rc = fail(c, map ? map->start_mark : (yaml_mark_t){ 0, 0, 0 },
                              "required key is missing");
                path_pop(c, old);
                return rc;
            }
        }
    }
    return 0;
}

/* Reads mapping node map into base as table t. Lists are read after every
 * other key, so a cluster starts from the final top-level policy defaults
 * whatever the key order in the file. */
static int parse_map(ctx *c, yaml_node_t *map, const field *t, void *base)
{
    if (is_null(map))
        return check_required(c, map, t);
    if (map->type != YAML_MAPPING_NODE)
        return fail(c, map->start_mark, "must be a mapping, got %s", kind_name(map));
    yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (int pass = 0; pass < 2; pass++) {
        for (yaml_node_pair_t *p = start; p < top; p++) {
            yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
            if (!k || k->type != YAML_SCALAR_NODE)
                return fail(c, k ? k->start_mark : map->start_mark, "keys must be plain strings");
            const char *key = scalar(k);
            void *fbase = NULL;
            const field *f = lookup(t, base, key, &fbase);
            if (pass == 0) {
                size_t old = path_push_key(c, key);
                int rc = 0;
                if (!f) {
                    size_t best = 3;
                    const char *s = suggest(t, key, &best);
                    rc = s ? fail(c, k->start_mark, "unknown key (did you mean \"%s\"?)", s)
                           : fail(c, k->start_mark, "unknown key");
                }
                for (yaml_node_pair_t *q = start; !rc && q < p; q++) {
                    yaml_node_t *qk = node_at(c, q->key);
                    if (qk && qk->type == YAML_SCALAR_NODE && strcmp(scalar(qk), key) == 0)
                        rc = fail(c, k->start_mark, "duplicate key (first at line %zu)",
                                  qk->start_mark.line + 1);
                }
                path_pop(c, old);
                if (rc)
                    return rc;
            }
            if ((pass == 0) != (f->type != FT_LIST))
                continue;
            size_t old = path_push_key(c, key);
            int rc = parse_value(c, f, fbase, v);
            path_pop(c, old);
            if (rc)
                return rc;
        }
    }
    return check_required(c, map, t);
}

static int parse_list(ctx *c, const field *f, void *base, yaml_node_t *v)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, v->start_mark, "must be a list, got %s", kind_name(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > (size_t)f->max)
        return fail(c, v->start_mark, "at most %ld entries, got %zu", f->max, n);
    if (n == 0)
        return 0;
    char *elems = calloc(n, f->size);
    if (!elems)
        return -ENOMEM;
    /* Owned by the config from here on, so a failure below frees it. */
    set_ptr(base, f->offset, elems);
    set_count(base, f->count_offset, n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_at(c, v->data.sequence.items.start[i]);
        void *elem = elems + i * f->size;
        size_t old = path_push_index(c, i);
        int rc = apply_defaults(c, f->sub, elem);
        if (!rc && f->init)
            f->init(c, elem);
        if (!rc)
            rc = parse_map(c, item, f->sub, elem);
        if (!rc && f->post)
            rc = f->post(c, item, elem);
        path_pop(c, old);
        if (rc)
            return rc;
    }
    return 0;
}

static char *dup_text(const yaml_node_t *n)
{
    char *s = malloc(n->data.scalar.length + 1);
    if (s) {
        memcpy(s, n->data.scalar.value, n->data.scalar.length);
        s[n->data.scalar.length] = '\0';
    }
    return s;
}

/* Kafka properties: any scalar kept as written, so "acks: all" and
 * "linger.ms: 5" reach librdkafka exactly as the user typed them. */
static int parse_props(ctx *c, const field *f, void *base, yaml_node_t *v)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return fail(c, v->start_mark, "must be a mapping of librdkafka properties, got %s",
                    kind_name(v));
    yaml_node_pair_t *start = v->data.mapping.pairs.start, *top = v->data.mapping.pairs.top;
    size_t n = (size_t)(top - start);
    if (n > CONFIG_MAX_PROPERTIES)
        return fail(c, v->start_mark, "at most %d properties, got %zu", CONFIG_MAX_PROPERTIES, n);
    if (n == 0)
        return 0;
    ss_kv *kv = calloc(n, sizeof *kv);
    if (!kv)
        return -ENOMEM;
    set_ptr(base, f->offset, kv);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = node_at(c, start[i].key), *val = node_at(c, start[i].value);
        if (!k || k->type != YAML_SCALAR_NODE || k->data.scalar.length == 0)
            return fail(c, k ? k->start_mark : v->start_mark, "property names must be non-empty strings");
        size_t old = path_push_key(c, scalar(k));
        int rc = 0;
        if (strlen(scalar(k)) != k->data.scalar.length)
            rc = fail(c, k->start_mark, "property name contains a NUL character");
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(kv[j].key, scalar(k)) == 0)
                rc = fail(c, k->start_mark, "duplicate property (first at line %zu)",
                          node_at(c, start[j].key)->start_mark.line + 1);
        if (!rc && (!val || val->type != YAML_SCALAR_NODE))
            rc = fail(c, val ? val->start_mark : k->start_mark,
                      "must be a scalar: librdkafka takes text values, got %s",
                      val ? kind_name(val) : "nothing");
        if (!rc && (val->data.scalar.length > CONFIG_MAX_PROPERTY_BYTES ||
                    strlen(scalar(val)) != val->data.scalar.length))
            rc = fail(c, val->start_mark, "value too long or contains a NUL character");
        path_pop(c, old);
        if (rc)
            return rc;
        kv[i].key = dup_text(k);
        kv[i].value = dup_text(val);
        set_count(base, f->count_offset, i + 1);
        if (!kv[i].key || !kv[i].value)
            return -ENOMEM;
    }
    return 0;
}

static int parse_value(ctx *c, const field *f, void *base, yaml_node_t *v)
{
    switch (f->type) {
    case FT_MAP: return parse_map(c, v, f->sub, at(base, f->offset));
    case FT_LIST: return parse_list(c, f, base, v);
    case FT_PROPS: return parse_props(c, f, base, v);
    default:
        if (!v)
            return fail(c, (yaml_mark_t){ 0, 0, 0 }, "missing value");
        return set_scalar(c, f, base, v, v->type == YAML_SCALAR_NODE ? scalar(v) : "");
    }
}

static void cluster_init(ctx *c, void *elem)
{
    ss_cluster_conf *cl = elem;
    cl->policy = c->cfg->policy.defaults;
}

static int cluster_post(ctx *c, yaml_node_t *node, void *elem)
{
    ss_cluster_conf *cl = elem;
    cl->line = (int)node->start_mark.line + 1;
    /* The usual setup: the GraphiteSink prefix is the cluster's name. */
    if (!map_get(c, node, "metrics_prefix")) {
        static const field prefix = { .key = "metrics_prefix", .type = FT_STRING, .flags = F_PREFIX };
        const char *why = check_string(&prefix, cl->name);
        if (why) {
            size_t old = path_push_key(c, "name");
            yaml_node_t *n = map_get(c, node, "name");
            int rc = fail(c, n ? n->start_mark : node->start_mark,
                          "cannot be the default metrics_prefix: %s; set metrics_prefix", why);
            path_pop(c, old);
            return rc;
        }
        set_str(cl->metrics_prefix, sizeof cl->metrics_prefix, cl->name, strlen(cl->name));
    }
    if (cl->target.kind == SS_TARGET_OSHINKO && cl->target.workload[0] == '\0')
        set_str(cl->target.workload, sizeof cl->target.workload, cl->name, strlen(cl->name));
    return 0;
}

/* ---- validation across keys ------------------------------------------------------- */

static int dns_label_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

/* A Kubernetes object name: DNS-1123 subdomain, dot-separated labels. */
static int dns_subdomain_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return 0;
    while (*s) {
        size_t l = strcspn(s, ".");
        if (!dns_label_ok(s, l))
            return 0;
        s += l;
        if (*s == '.' && *++s == '\0')
            return 0;
    }
    return 1;
}

static int pool_declared(const ss_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return 1;
    return 0;
}

static int validate_policy(ctx *c, const char *path, const policy_conf *p)
{
    char kp[PATH_LEN * 2];
    if (p->min_workers > p->max_workers) {
        snprintf(kp, sizeof kp, "%s.max_workers", path);
        return fail_path(c, kp, "must be >= min_workers (%d), got %d", p->min_workers,
                         p->max_workers);
    }
    if (p->pool[0] && !pool_declared(c->cfg, p->pool)) {
        snprintf(kp, sizeof kp, "%s.pool", path);
        return fail_path(c, kp, "pool \"%s\" is not declared under pools", p->pool);
    }
    if (p->max_workers > c->cfg->store.max_workers_per_cluster) {
        snprintf(kp, sizeof kp, "%s.max_workers", path);
        return fail_path(c, kp, "%d exceeds store.max_workers_per_cluster (%d)", p->max_workers,
                         c->cfg->store.max_workers_per_cluster);
    }
    return 0;
}

static int validate_target(ctx *c, const char *path, const ss_cluster_conf *cl)
{
    const ss_target_conf *t = &cl->target;
    char kp[PATH_LEN * 2];
    switch (t->kind) {
    case SS_TARGET_KUBERNETES: {
        if (!dns_label_ok(t->namespace_, strlen(t->namespace_))) {
            snprintf(kp, sizeof kp, "%s.namespace", path);
            return fail_path(c, kp, "cluster \"%s\": kind kubernetes needs a namespace "
                             "(lower-case DNS label), got \"%s\"", cl->name, t->namespace_);
        }
        static const char *kinds[] = { "deployment/", "statefulset/", "replicaset/", NULL };
        const char *name = NULL;
        for (int i = 0; kinds[i]; i++)
            if (strncmp(t->workload, kinds[i], strlen(kinds[i])) == 0)
                name = t->workload + strlen(kinds[i]);
        if (!name || !dns_subdomain_ok(name)) {
            snprintf(kp, sizeof kp, "%s.workload", path);
            return fail_path(c, kp, "cluster \"%s\": must be deployment/<name>, "
                             "statefulset/<name> or replicaset/<name>, got \"%s\"",
                             cl->name, t->workload);
        }
        return 0;
    }
    case SS_TARGET_OSHINKO:
        if (!t->url[0]) {
            snprintf(kp, sizeof kp, "%s.url", path);
            return fail_path(c, kp, "cluster \"%s\": kind oshinko needs the Oshinko REST URL",
                             cl->name);
        }
        return 0;
    case SS_TARGET_EXEC:
        if (!t->command[0]) {
            snprintf(kp, sizeof kp, "%s.command", path);
            return fail_path(c, kp, "cluster \"%s\": kind exec needs a command", cl->name);
        }
        return 0;
    default:
        return 0;
    }
}

typedef struct name_ref {
    const char *s;
    size_t idx;
} name_ref;

static int name_ref_cmp(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int r = strcmp(x->s, y->s);
    return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Finds the earliest (in file order) entry whose string repeats an earlier
 * one, in O(n log n): 10,000 clusters must not make start-up quadratic.
 * Returns 0 and sets dup and first when found, 1 when all distinct, -ENOMEM. */
static int find_duplicate(const void *arr, size_t n, size_t elem, size_t off, size_t *dup,
                          size_t *first)
{
    if (n < 2)
        return 1;
    name_ref *r = malloc(n * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (name_ref){ (const char *)arr + i * elem + off, i };
    qsort(r, n, sizeof *r, name_ref_cmp);
    int found = 1;
    size_t g = 0; /* first (lowest index) entry of the current run of equal strings */
    for (size_t i = 1; i < n; i++) {
        if (strcmp(r[i].s, r[g].s) != 0) {
            g = i;
            continue;
        }
        if (found || r[i].idx < *dup) {
            *dup = r[i].idx;
            *first = r[g].idx;
            found = 0;
        }
    }
    free(r);
    return found;
}

static int validate(ctx *c)
{
    ss_config *cfg = c->cfg;
    char kp[PATH_LEN + 32];
    size_t dup = 0, first = 0;
    int rc;

    if (cfg->ingest.read_buffer_bytes < cfg->ingest.max_line_bytes)
        return fail_path(c, "ingest.read_buffer_bytes",
                         "must be >= ingest.max_line_bytes (%d), got %d",
                         cfg->ingest.max_line_bytes, cfg->ingest.read_buffer_bytes);
    const ss_listen_addr *tcp = &cfg->ingest.carbon_tcp, *http = &cfg->ingest.http;
    if (tcp->enabled && http->enabled && tcp->port && tcp->port == http->port &&
        strcmp(tcp->host, http->host) == 0)
        return fail_path(c, "ingest.http", "same TCP address as ingest.carbon_tcp");
    if (strcmp(cfg->kafka.decisions_topic, cfg->kafka.audit_topic) == 0)
        return fail_path(c, "kafka.audit_topic", "must differ from kafka.decisions_topic");
    if (cfg->store.max_apps_per_cluster > cfg->store.max_apps)
        return fail_path(c, "store.max_apps_per_cluster", "must be <= store.max_apps (%d), got %d",
                         cfg->store.max_apps, cfg->store.max_apps_per_cluster);
    if ((rc = validate_policy(c, "policy", &cfg->policy.defaults)) != 0)
        return rc;

    rc = find_duplicate(cfg->pools, cfg->npools, sizeof *cfg->pools,
                        offsetof(ss_pool_conf, name), &dup, &first);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "pools[%zu].name", dup);
        return fail_path(c, kp, "duplicate pool name \"%s\" (first is pools[%zu])",
                         cfg->pools[dup].name, first);
    }

    if (cfg->nclusters == 0)
        return fail_path(c, "clusters", "at least one cluster is required");
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const ss_cluster_conf *cl = &cfg->clusters[i];
        snprintf(kp, sizeof kp, "clusters[%zu].policy", i);
        if ((rc = validate_policy(c, kp, &cl->policy)) != 0)
            return rc;
        if (cl->executor_cores > cl->worker_cores) {
            snprintf(kp, sizeof kp, "clusters[%zu].executor.cores", i);
            return fail_path(c, kp, "cluster \"%s\": an executor of %d cores does not fit in a "
                             "worker of %d cores (executors per worker would be 0)",
                             cl->name, cl->executor_cores, cl->worker_cores);
        }
        if (cl->executor_memory_mb > cl->worker_memory_mb) {
            snprintf(kp, sizeof kp, "clusters[%zu].executor.memory_mb", i);
            return fail_path(c, kp, "cluster \"%s\": an executor of %d MB does not fit in a "
                             "worker of %d MB (executors per worker would be 0)",
                             cl->name, cl->executor_memory_mb, cl->worker_memory_mb);
        }
        snprintf(kp, sizeof kp, "clusters[%zu].target", i);
        if ((rc = validate_target(c, kp, cl)) != 0)
            return rc;
    }

    rc = find_duplicate(cfg->clusters, cfg->nclusters, sizeof *cfg->clusters,
                        offsetof(ss_cluster_conf, name), &dup, &first);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "clusters[%zu].name", dup);
        return fail_path(c, kp, "duplicate cluster name \"%s\" (first at line %d)",
                         cfg->clusters[dup].name, cfg->clusters[first].line);
    }
    rc = find_duplicate(cfg->clusters, cfg->nclusters, sizeof *cfg->clusters,
                        offsetof(ss_cluster_conf, metrics_prefix), &dup, &first);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "clusters[%zu].metrics_prefix", dup);
        return fail_path(c, kp, "duplicate metrics_prefix \"%s\" (also used by cluster \"%s\")",
                         cfg->clusters[dup].metrics_prefix, cfg->clusters[first].name);
    }
    return 0;
}

/* ---- public API -------------------------------------------------------------------- */


static int load_buffer(const char *yaml, size_t len, const char *source, ss_config **out,
                       char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    ctx c = { .source = source, .err = err, .errlen = errlen };
    int rc = 0;

    *out = NULL;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (parser.error == YAML_MEMORY_ERROR) {
            rc = -ENOMEM;
            ss_errf(err, errlen, "%s: out of memory reading YAML", source);
        } else {
            rc = -EINVAL;
            ss_errf(err, errlen, "%s:%zu:%zu: YAML syntax error: %s%s%s", source,
                    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "unknown",
                    parser.context ? " " : "", parser.context ? parser.context : "");
        }
        yaml_parser_delete(&parser);
        return rc;
    }

    ss_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        rc = -ENOMEM;
        goto cleanup;
    }
    snprintf(cfg->source, sizeof cfg->source, "%s", source);
    c.doc = &doc;
    c.cfg = cfg;

    /* A second document would be silently ignored otherwise. */
    yaml_document_t next;
    if (!yaml_parser_load(&parser, &next)) {
        rc = fail(&c, parser.problem_mark, "YAML syntax error after the document: %s",
                  parser.problem ? parser.problem : "unknown");
        goto cleanup;
    }
    yaml_node_t *extra = yaml_document_get_root_node(&next);
    yaml_mark_t extra_mark = next.start_mark;
    yaml_document_delete(&next);
    if (extra) {
        rc = fail(&c, extra_mark, "only one YAML document is allowed");
        goto cleanup;
    }

    rc = apply_defaults(&c, root_fields, cfg);
    if (!rc)
        rc = parse_map(&c, yaml_document_get_root_node(&doc), root_fields, cfg);
    if (!rc)
        rc = validate(&c);
    if (rc == -ENOMEM)
        ss_errf(err, errlen, "%s: out of memory", source);

cleanup:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc) {
        ss_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int ss_config_load_string(const char *yaml, const char *source, ss_config **out, char *err,
                          size_t errlen)
{
    if (!source)
        source = "(string)";
    *out = NULL;
    size_t len = strnlen(yaml, CONFIG_MAX_BYTES + 1);
    if (len > CONFIG_MAX_BYTES) {
        ss_errf(err, errlen, "%s: larger than %zu bytes", source, CONFIG_MAX_BYTES);
        return -EFBIG;
    }
    return load_buffer(yaml, len, source, out, err, errlen);
}

/* Reads all of f into a NUL-terminated buffer, growing it up to the limit;
 * works for pipes too (--config /dev/stdin). Caller frees *out. */
static int read_all(FILE *f, char **out, size_t *outlen)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (ferror(f)) {
            free(buf);
            return -EIO;
        }
        if (len < cap - 1)
            break;
        if (cap > CONFIG_MAX_BYTES) {
            free(buf);
            return -EFBIG;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            return -ENOMEM;
        }
        buf = bigger;
        cap *= 2;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

int ss_config_load_file(const char *path, ss_config **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        ss_errf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = read_all(f, &buf, &len);
    fclose(f);
    if (rc == 0 && len > CONFIG_MAX_BYTES)
        rc = -EFBIG;
    if (rc == -EFBIG)
        ss_errf(err, errlen, "%s: larger than %zu bytes", path, CONFIG_MAX_BYTES);
    else if (rc == -EIO)
        ss_errf(err, errlen, "%s: read error", path);
    else if (rc == -ENOMEM)
        ss_errf(err, errlen, "%s: out of memory", path);
    else if (memchr(buf, '\0', len)) {
        ss_errf(err, errlen, "%s: contains a NUL byte (not a text file?)", path);
        rc = -EINVAL;
    } else {
        rc = load_buffer(buf, len, path, out, err, errlen);
    }
    free(buf);
    return rc;
}

void ss_config_free(ss_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
        free(cfg->kafka.properties[i].key);
        free(cfg->kafka.properties[i].value);
    }
    free(cfg->kafka.properties);
    free(cfg->pools);
    free(cfg->clusters);
    free(cfg);
}

int ss_config_cluster_index(const ss_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nclusters; i++)
        if (strcmp(cfg->clusters[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- printing ------------------------------------------------------------------------ */

static int is_secret(const char *key)
{
    static const char *marks[] = { "password", "secret", "sasl.oauthbearer", "ssl.key.pem", NULL };
    for (int i = 0; marks[i]; i++)
        if (strcasestr(key, marks[i]))
            return 1;
    return 0;
}

/* Starts a line: the indent, or "- " in place of its last two columns for
 * the first key of a list element. */
static void line_start(FILE *out, int indent, int *dash)
{
    if (dash && *dash) {
        fprintf(out, "%*s- ", indent - 2, "");
        *dash = 0;
    } else {
        fprintf(out, "%*s", indent, "");
    }
}

static void line_end(FILE *out, const field *f, int comments)
{
    if (comments && f->desc)
        fprintf(out, "  # %s", f->desc);
    fputc('\n', out);
}

static void print_table(FILE *out, const field *t, const void *vbase, int indent, int *dash,
                        int comments)
{
    const char *base = vbase;
    for (const field *f = t; f->type != FT_END; f++) {
        const char *p = base + f->offset;
        int iv;
        if (f->type == FT_EMBED) {
            print_table(out, f->sub, p, indent, dash, comments);
            continue;
        }
        line_start(out, indent, dash);
        fprintf(out, "%s:", f->key);
        switch (f->type) {
        case FT_INT:
            memcpy(&iv, p, sizeof iv);
            fprintf(out, " %d", iv);
            line_end(out, f, comments);
            break;
        case FT_BOOL:
            memcpy(&iv, p, sizeof iv);
            fprintf(out, " %s", iv ? "true" : "false");
            line_end(out, f, comments);
            break;
        case FT_STRING:
            fputc(' ', out);
            fprint_quoted(out, p);
            line_end(out, f, comments);
            break;
        case FT_ADDR: {
            const ss_listen_addr *a = (const ss_listen_addr *)p;
            if (!a->enabled)
                fputs(" \"off\"", out);
            else if (strchr(a->host, ':'))
                fprintf(out, " \"[%s]:%d\"", a->host, a->port);
            else
                fprintf(out, " \"%s:%d\"", a->host, a->port);
            line_end(out, f, comments);
            break;
        }
        case FT_ENUM: {
            const char *name = "?";
            memcpy(&iv, p, sizeof iv);
            for (const enum_opt *o = f->opts; o->name; o++)
                if (f->size ? strcmp(p, o->name) == 0 : o->value == iv)
                    name = o->name;
            fprintf(out, " %s", name);
            line_end(out, f, comments);
            break;
        }
        case FT_MAP:
            line_end(out, f, comments);
            print_table(out, f->sub, p, indent + 2, NULL, comments);
            break;
        case FT_LIST: {
            size_t n = get_count(base, f->count_offset);
            const char *elems = get_ptr((void *)base, f->offset);
            fputs(n ? "" : " []", out);
            line_end(out, f, comments);
            for (size_t i = 0; i < n; i++) {
                int d = 1;
                /* Descriptions once, on the first element: 10,000 clusters
                 * need not repeat them. */
                print_table(out, f->sub, elems + i * f->size, indent + 4, &d, comments && i == 0);
            }
            break;
        }
        case FT_PROPS: {
            size_t n = get_count(base, f->count_offset);
            const ss_kv *kv = get_ptr((void *)base, f->offset);
            fputs(n ? "" : " {}", out);
            line_end(out, f, comments);
            for (size_t i = 0; i < n; i++) {
                fprintf(out, "%*s", indent + 2, "");
                fprint_quoted(out, kv[i].key);
                fputs(": ", out);
                fprint_quoted(out, is_secret(kv[i].key) ? "******" : kv[i].value);
                fputc('\n', out);
            }
            break;
        }
        default:
            fputc('\n', out);
            break;
        }
    }
}

void ss_config_print(const ss_config *cfg, FILE *out)
{
    fprintf(out, "# sparkscale effective configuration, from ");
    fprint_quoted(out, cfg->source);
    fputs("\n# every key with its value, defaults filled in\n", out);
    print_table(out, root_fields, cfg, 0, NULL, 1);
}
