/* engine.h: the declarative table engine behind the configuration: one
 * table per YAML mapping (key, type, bounds, offset, default, description)
 * drives parsing, defaults, validation messages and printing (fluent-bit's
 * config_map, redis's typed configs). Internal to lib/config. */
#ifndef SS_CONFIG_ENGINE_H
#define SS_CONFIG_ENGINE_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define CFG_PATH_LEN 512
#define CFG_STRING_MAX 4096        /* longest string a pointer field (FLD_STRP) takes */
#define CONFIG_MAX_PROPERTIES 1024     /* entries of one FT_PROPS mapping */
#define CONFIG_MAX_PROPERTY_BYTES 65536
/* Bounds on the document itself, checked before it is built: a pathological
 * file (deep nesting, millions of nodes) is rejected in linear time. */
#define CFG_MAX_DEPTH 64
#define CFG_MAX_NODES 4000000

typedef enum cfg_type {
    FT_END = 0,  /* table terminator */
    FT_INT,      /* int within [min, max] */
    FT_BOOL,     /* int 0/1 */
    FT_STRING,   /* char[size], NUL-terminated; size 0: a malloc'd char * (never NULL once loaded) */
    FT_ADDR,     /* ss_listen_addr */
    FT_ENUM,     /* int from opts, or char[size] when size != 0 */
    FT_MAP,      /* nested mapping described by sub, at base + offset */
    FT_EMBED,    /* sub's keys belong to this mapping, at base + offset */
    FT_LIST,     /* pointer at offset, size_t count at count_offset */
    FT_PROPS,    /* ss_kv pointer at offset, size_t count at count_offset */
    FT_STRLIST   /* char ** at offset, size_t count at count_offset; a scalar is a list of one */
} cfg_type;

enum {
    F_REQUIRED = 1 << 0, /* no default: the key must be present */
    F_NONEMPTY = 1 << 1, /* "" is an error */
    F_NAME = 1 << 2,     /* [A-Za-z0-9_.-]* */
    F_URL = 1 << 3,      /* "" or http(s)://... */
    F_TOPIC = 1 << 4,    /* Kafka topic name: [A-Za-z0-9._-], <= 249 bytes */
    F_PREFIX = 1 << 5,   /* Graphite prefix: no blanks, no empty component */
    F_SECRET = 1 << 6,   /* printed as "******" */
    F_CIDR = 1 << 7,     /* FT_STRLIST items are networks, 10.0.0.0/8 */
    F_PATH = 1 << 8      /* a file path: no control characters */
};

typedef struct cfg_enum_opt {
    const char *name;
    int value;
} cfg_enum_opt;

struct cfg_ctx;

typedef struct cfg_field {
    const char *key;
    cfg_type type;
    size_t offset;           /* from the start of the struct the table describes */
    size_t size;             /* FT_STRING, string FT_ENUM: buffer size; FT_LIST: element size */
    size_t count_offset;     /* FT_LIST, FT_PROPS, FT_STRLIST */
    long min, max;           /* FT_INT bounds; FT_LIST, FT_STRLIST: max elements */
    const char *def;         /* default, as YAML text, parsed by the same code as input */
    const cfg_enum_opt *opts;      /* FT_ENUM, NULL-name terminated */
    const struct cfg_field *sub;   /* FT_MAP, FT_EMBED, FT_LIST element */
    void (*init)(struct cfg_ctx *c, void *elem);                   /* FT_LIST, after defaults */
    int (*post)(struct cfg_ctx *c, yaml_node_t *node, void *elem); /* FT_LIST, after parsing */
    int flags;
    const char *desc;        /* one line; printed as a comment */
} cfg_field;

/* One load: the document, the struct being filled, where errors go. */
typedef struct cfg_ctx {
    const char *source;
    yaml_document_t *doc;
    void *root;              /* the struct the root table describes */
    char *err;
    size_t errlen;
    char path[CFG_PATH_LEN]; /* full key path of the node being read */
    int failed;
} cfg_ctx;

#define FLD_INT(k, st, m, lo, hi, d, ds)                                            \
    { .key = (k), .type = FT_INT, .offset = offsetof(st, m), .min = (lo), .max = (hi), \
      .def = (d), .desc = (ds) }
#define FLD_BOOL(k, st, m, d, ds) \
    { .key = (k), .type = FT_BOOL, .offset = offsetof(st, m), .def = (d), .desc = (ds) }
#define FLD_STR(k, st, m, d, fl, ds)                                                  \
    { .key = (k), .type = FT_STRING, .offset = offsetof(st, m),                        \
      .size = sizeof(((st *)0)->m), .def = (d), .flags = (fl), .desc = (ds) }
#define FLD_STRP(k, st, m, d, fl, ds)                                                 \
    { .key = (k), .type = FT_STRING, .offset = offsetof(st, m), .size = 0, .def = (d),   \
      .flags = (fl), .desc = (ds) }
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
#define FLD_STRLIST(k, st, m, cm, maxn, fl, ds)                                       \
    { .key = (k), .type = FT_STRLIST, .offset = offsetof(st, m),                       \
      .count_offset = offsetof(st, cm), .max = (maxn), .flags = (fl), .desc = (ds) }
#define FLD_END { .type = FT_END }

/* ---- field storage, shared by the parser and the printer ---- */

static inline char *cfg_at(void *base, size_t off) { return (char *)base + off; }

static inline void *cfg_get_ptr(const void *base, size_t off)
{
    void *p;
    memcpy(&p, (const char *)base + off, sizeof p);
    return p;
}

static inline void cfg_set_ptr(void *base, size_t off, void *p) { memcpy(cfg_at(base, off), &p, sizeof p); }

static inline size_t cfg_get_count(const void *base, size_t off)
{
    size_t n;
    memcpy(&n, (const char *)base + off, sizeof n);
    return n;
}

static inline void cfg_set_count(void *base, size_t off, size_t n) { memcpy(cfg_at(base, off), &n, sizeof n); }

/* Strings are stored zero-padded so configs compare with memcmp. */
void cfg_set_str(char *dst, size_t size, const char *src, size_t len);

/* ---- errors, with file:line:col and the key path ---- */

int cfg_fail(cfg_ctx *c, yaml_mark_t m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error found after parsing: path is both the message's key path and
 * where in the document the line number comes from. */
int cfg_fail_path(cfg_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t cfg_path_push_key(cfg_ctx *c, const char *key);
void cfg_path_pop(cfg_ctx *c, size_t old);
/* The value of key in mapping node map, or NULL. */
yaml_node_t *cfg_map_get(cfg_ctx *c, yaml_node_t *map, const char *key);

/* NULL when s suits f's flags, else what is wrong. */
const char *cfg_check_string(const cfg_field *f, const char *s);

/* ---- loading and printing ---- */

/* Parses yaml[0..len) into root (zeroed, caller-owned) as described by
 * table: bounds the document (CFG_MAX_DEPTH, CFG_MAX_NODES), fills the
 * defaults, reads every key, then calls validate(c) (may be NULL).
 * Returns 0 or a negative errno-style code with a message in err. On error
 * root may hold allocations: free it with cfg_free_table. */
int cfg_load(const char *yaml, size_t len, const char *source, const cfg_field *table,
             void *root, int (*validate)(cfg_ctx *c), char *err, size_t errlen);

/* Copies src into dst as described by table (both structs of its type):
 * scalars and fixed strings by value, pointer strings duplicated (dst's old
 * ones freed), maps recursively. Lists and properties are not copied.
 * Returns 0 or -ENOMEM (dst then holds a mix, still safe to free). */
int cfg_copy_table(const cfg_field *table, void *dst, const void *src);

/* Frees what the loader allocated inside base (lists, properties, strings). */
void cfg_free_table(const cfg_field *table, void *base);

/* Writes base as YAML that cfg_load accepts back, with descriptions as
 * comments; F_SECRET fields and secret-looking properties print masked. */
void cfg_print(FILE *out, const cfg_field *table, const void *base);

/* Non-zero when base holds a secret: a non-empty F_SECRET string, a
 * secret-looking property, or credentials inside a URL. */
int cfg_has_secrets(const cfg_field *table, const void *base);

/* Non-zero for a Kafka property name that holds a secret. */
int cfg_is_secret_key(const char *key);


#endif
