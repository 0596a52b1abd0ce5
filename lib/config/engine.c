/* engine.c: the configuration table engine: bounded YAML in (libyaml's
 * document API), tables drive defaults, parsing and error messages. */
#include "lib/config/engine.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base/addr.h"
#include "lib/base/str.h"
#include "lib/config/config.h"

/* ---- small helpers -------------------------------------------------------- */

void cfg_set_str(char *dst, size_t size, const char *src, size_t len)
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

/* ---- errors and key paths ---------------------------------------------------- */

static int failv(cfg_ctx *c, yaml_mark_t m, const char *fmt, va_list ap)
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

int cfg_fail(cfg_ctx *c, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = failv(c, m, fmt, ap);
    va_end(ap);
    return rc;
}

/* Appends ".key" (or "key" at the top) or "[i]" to the path; returns the old
 * length for path_pop. Over-long paths are truncated, never overflowed. */
size_t cfg_path_push_key(cfg_ctx *c, const char *key)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", key);
    return old;
}

static size_t path_push_index(cfg_ctx *c, size_t i)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
    return old;
}

void cfg_path_pop(cfg_ctx *c, size_t old) { c->path[old] = '\0'; }

static yaml_node_t *node_at(cfg_ctx *c, int id) { return yaml_document_get_node(c->doc, id); }

yaml_node_t *cfg_map_get(cfg_ctx *c, yaml_node_t *map, const char *key)
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
static yaml_node_t *node_for_path(cfg_ctx *c, const char *path)
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
            next = cfg_map_get(c, n, key);
        }
        if (!next)
            break;
        n = next;
    }
    return n;
}

/* Reports an error found after parsing: path is both the message's key path
 * and where in the document the line number comes from. */
int cfg_fail_path(cfg_ctx *c, const char *path, const char *fmt, ...)
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

/* Checks a string field's flags; NULL when fine. */
const char *cfg_check_string(const cfg_field *f, const char *s)
{
    size_t len = strlen(s);
    if ((f->flags & F_NONEMPTY) && len == 0)
        return "must not be empty";
    if ((f->flags & F_NAME) && !name_chars_ok(s))
        return "may contain only letters, digits, '_', '.' and '-'";
    if ((f->flags & F_URL) && len && !is_url(s))
        return "must be an http:// or https:// URL (or \"\")";
    if (f->flags & (F_URL | F_PATH))
        for (const char *p = s; *p; p++)
            if (iscntrl((unsigned char)*p) || ((f->flags & F_URL) && *p == ' '))
                return "must not contain control characters or blanks";
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
static int set_scalar(cfg_ctx *c, const cfg_field *f, void *base, yaml_node_t *n, const char *text)
{
    yaml_mark_t m = n ? n->start_mark : (yaml_mark_t){ 0, 0, 0 };
    char q[96];
    if (n && n->type != YAML_SCALAR_NODE) {
        switch (f->type) {
        case FT_INT: return cfg_fail(c, m, "must be an integer, got %s", kind_name(n));
        case FT_BOOL: return cfg_fail(c, m, "must be true or false, got %s", kind_name(n));
        default: return cfg_fail(c, m, "must be a string, got %s", kind_name(n));
        }
    }
    int null = n && is_null(n);
    if (n && strlen(text) != n->data.scalar.length)
        return cfg_fail(c, m, "must not contain NUL characters");
    switch (f->type) {
    case FT_INT: {
        long v;
        ss_quote(q, sizeof q, text, 40);
        if (null || parse_long(text, &v) != 0)
            return cfg_fail(c, m, "must be an integer, got %s", null ? "nothing" : q);
        if (v < f->min || v > f->max)
            return cfg_fail(c, m, "must be between %ld and %ld, got %ld", f->min, f->max, v);
        int iv = (int)v;
        memcpy(cfg_at(base, f->offset), &iv, sizeof iv);
        return 0;
    }
    case FT_BOOL: {
        int v;
        ss_quote(q, sizeof q, text, 40);
        if (null || parse_bool(text, &v) != 0)
            return cfg_fail(c, m, "must be true or false, got %s", null ? "nothing" : q);
        memcpy(cfg_at(base, f->offset), &v, sizeof v);
        return 0;
    }
    case FT_STRING: {
        if (null)
            text = "";
        size_t len = strlen(text);
        size_t max = f->size ? f->size - 1 : CFG_STRING_MAX;
        if (len > max)
            return cfg_fail(c, m, "too long: %zu bytes, at most %zu", len, max);
        const char *why = cfg_check_string(f, text);
        if (why) {
            ss_quote(q, sizeof q, text, 40);
            return cfg_fail(c, m, "%s, got %s", why, q);
        }
        if (f->size) {
            cfg_set_str(cfg_at(base, f->offset), f->size, text, len);
            return 0;
        }
        /* Sized to content: 10,000 clusters must not each carry kilobytes
         * of mostly empty URL and command buffers. */
        char *copy = strdup(text);
        if (!copy)
            return -ENOMEM;
        free(cfg_get_ptr(base, f->offset));
        cfg_set_ptr(base, f->offset, copy);
        return 0;
    }
    case FT_ADDR: {
        ss_listen_addr a;
        const char *why = NULL;
        if (ss_addr_parse(null ? "" : text, &a, &why) != 0) {
            ss_quote(q, sizeof q, text, 60);
            return cfg_fail(c, m, "%s, got %s", why, q);
        }
        memcpy(cfg_at(base, f->offset), &a, sizeof a);
        return 0;
    }
    case FT_ENUM: {
        for (const cfg_enum_opt *o = f->opts; o->name; o++) {
            if (!null && strcmp(o->name, text) == 0) {
                if (f->size)
                    cfg_set_str(cfg_at(base, f->offset), f->size, o->name, strlen(o->name));
                else
                    memcpy(cfg_at(base, f->offset), &o->value, sizeof o->value);
                return 0;
            }
        }
        char list[256] = "";
        for (const cfg_enum_opt *o = f->opts; o->name; o++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", o == f->opts ? "" : " | ", o->name);
        }
        ss_quote(q, sizeof q, text, 40);
        return cfg_fail(c, m, "must be one of %s, got %s", list, null ? "nothing" : q);
    }
    default:
        return cfg_fail(c, m, "internal: not a scalar field");
    }
}

/* ---- tables: defaults, lookup, parsing -------------------------------------------- */

static int apply_defaults(cfg_ctx *c, const cfg_field *t, void *base)
{
    for (const cfg_field *f = t; f->type != FT_END; f++) {
        int rc = 0;
        if (f->type == FT_MAP || f->type == FT_EMBED)
            rc = apply_defaults(c, f->sub, cfg_at(base, f->offset));
        else if (f->def)
            rc = set_scalar(c, f, base, NULL, f->def);
        if (rc)
            return rc;
    }
    return 0;
}

static const cfg_field *lookup(const cfg_field *t, void *base, const char *key, void **fbase)
{
    for (const cfg_field *f = t; f->type != FT_END; f++) {
        if (f->type == FT_EMBED) {
            const cfg_field *e = lookup(f->sub, cfg_at(base, f->offset), key, fbase);
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

static const char *suggest(const cfg_field *t, const char *key, size_t *best)
{
    const char *found = NULL;
    for (const cfg_field *f = t; f->type != FT_END; f++) {
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

static int parse_value(cfg_ctx *c, const cfg_field *f, void *base, yaml_node_t *v);

static int check_required(cfg_ctx *c, yaml_node_t *map, const cfg_field *t)
{
    for (const cfg_field *f = t; f->type != FT_END; f++) {
        if (f->type == FT_EMBED) {
            int rc = check_required(c, map, f->sub);
            if (rc)
                return rc;
        } else if ((f->flags & F_REQUIRED) || (f->type == FT_INT && !f->def)) {
            if (!cfg_map_get(c, map, f->key)) { /* map may be a null node: nothing given */
                size_t old = cfg_path_push_key(c, f->key);
                int rc = cfg_fail(c, map ? map->start_mark : (yaml_mark_t){ 0, 0, 0 },
                              "required key is missing");
                cfg_path_pop(c, old);
                return rc;
            }
        }
    }
    return 0;
}

/* Reads mapping node map into base as table t. Lists are read after every
 * other key, so a cluster starts from the final top-level policy defaults
 * whatever the key order in the file. */
static int parse_map(cfg_ctx *c, yaml_node_t *map, const cfg_field *t, void *base)
{
    if (is_null(map))
        return check_required(c, map, t);
    if (map->type != YAML_MAPPING_NODE)
        return cfg_fail(c, map->start_mark, "must be a mapping, got %s", kind_name(map));
    yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (int pass = 0; pass < 2; pass++) {
        for (yaml_node_pair_t *p = start; p < top; p++) {
            yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
            if (!k || k->type != YAML_SCALAR_NODE)
                return cfg_fail(c, k ? k->start_mark : map->start_mark, "keys must be plain strings");
            const char *key = scalar(k);
            void *fbase = NULL;
            const cfg_field *f = lookup(t, base, key, &fbase);
            if (pass == 0) {
                size_t old = cfg_path_push_key(c, key);
                int rc = 0;
                if (!f) {
                    size_t best = 3;
                    const char *s = suggest(t, key, &best);
                    rc = s ? cfg_fail(c, k->start_mark, "unknown key (did you mean \"%s\"?)", s)
                           : cfg_fail(c, k->start_mark, "unknown key");
                }
                for (yaml_node_pair_t *q = start; !rc && q < p; q++) {
                    yaml_node_t *qk = node_at(c, q->key);
                    if (qk && qk->type == YAML_SCALAR_NODE && strcmp(scalar(qk), key) == 0)
                        rc = cfg_fail(c, k->start_mark, "duplicate key (first at line %zu)",
                                  qk->start_mark.line + 1);
                }
                cfg_path_pop(c, old);
                if (rc)
                    return rc;
            }
            if ((pass == 0) != (f->type != FT_LIST))
                continue;
            size_t old = cfg_path_push_key(c, key);
            int rc = parse_value(c, f, fbase, v);
            cfg_path_pop(c, old);
            if (rc)
                return rc;
        }
    }
    return check_required(c, map, t);
}

static int parse_list(cfg_ctx *c, const cfg_field *f, void *base, yaml_node_t *v)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return cfg_fail(c, v->start_mark, "must be a list, got %s", kind_name(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > (size_t)f->max)
        return cfg_fail(c, v->start_mark, "at most %ld entries, got %zu", f->max, n);
    if (n == 0)
        return 0;
    char *elems = calloc(n, f->size);
    if (!elems)
        return -ENOMEM;
    /* Owned by the config from here on, so a failure below frees it. */
    cfg_set_ptr(base, f->offset, elems);
    cfg_set_count(base, f->count_offset, n);
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
        cfg_path_pop(c, old);
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
static int parse_props(cfg_ctx *c, const cfg_field *f, void *base, yaml_node_t *v)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return cfg_fail(c, v->start_mark, "must be a mapping of librdkafka properties, got %s",
                    kind_name(v));
    yaml_node_pair_t *start = v->data.mapping.pairs.start, *top = v->data.mapping.pairs.top;
    size_t n = (size_t)(top - start);
    if (n > CONFIG_MAX_PROPERTIES)
        return cfg_fail(c, v->start_mark, "at most %d properties, got %zu", CONFIG_MAX_PROPERTIES, n);
    if (n == 0)
        return 0;
    ss_kv *kv = calloc(n, sizeof *kv);
    if (!kv)
        return -ENOMEM;
    cfg_set_ptr(base, f->offset, kv);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = node_at(c, start[i].key), *val = node_at(c, start[i].value);
        if (!k || k->type != YAML_SCALAR_NODE || k->data.scalar.length == 0)
            return cfg_fail(c, k ? k->start_mark : v->start_mark, "property names must be non-empty strings");
        size_t old = cfg_path_push_key(c, scalar(k));
        int rc = 0;
        if (strlen(scalar(k)) != k->data.scalar.length)
            rc = cfg_fail(c, k->start_mark, "property name contains a NUL character");
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(kv[j].key, scalar(k)) == 0)
                rc = cfg_fail(c, k->start_mark, "duplicate property (first at line %zu)",
                          node_at(c, start[j].key)->start_mark.line + 1);
        if (!rc && (!val || val->type != YAML_SCALAR_NODE))
            rc = cfg_fail(c, val ? val->start_mark : k->start_mark,
                      "must be a scalar: librdkafka takes text values, got %s",
                      val ? kind_name(val) : "nothing");
        if (!rc && (val->data.scalar.length > CONFIG_MAX_PROPERTY_BYTES ||
                    strlen(scalar(val)) != val->data.scalar.length))
            rc = cfg_fail(c, val->start_mark, "value too long or contains a NUL character");
        cfg_path_pop(c, old);
        if (rc)
            return rc;
        kv[i].key = dup_text(k);
        kv[i].value = dup_text(val);
        cfg_set_count(base, f->count_offset, i + 1);
        if (!kv[i].key || !kv[i].value)
            return -ENOMEM;
    }
    return 0;
}

/* A list of strings (a single scalar counts as a list of one). Each item
 * is checked against f's flags; F_CIDR items must parse as networks. */
static int parse_strlist(cfg_ctx *c, const cfg_field *f, void *base, yaml_node_t *v)
{
    if (is_null(v))
        return 0;
    yaml_node_item_t one = 0;
    yaml_node_item_t *start, *top;
    if (v->type == YAML_SCALAR_NODE) {
        one = (yaml_node_item_t)(v - c->doc->nodes.start) + 1;
        start = &one;
        top = &one + 1;
    } else if (v->type == YAML_SEQUENCE_NODE) {
        start = v->data.sequence.items.start;
        top = v->data.sequence.items.top;
    } else {
        return cfg_fail(c, v->start_mark, "must be a string or a list of strings, got %s",
                        kind_name(v));
    }
    size_t n = (size_t)(top - start);
    if (n > (size_t)f->max)
        return cfg_fail(c, v->start_mark, "at most %ld entries, got %zu", f->max, n);
    if (n == 0)
        return 0;
    char **items = calloc(n, sizeof *items);
    if (!items)
        return -ENOMEM;
    cfg_set_ptr(base, f->offset, items);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_at(c, start[i]);
        size_t old = path_push_index(c, i);
        int rc = 0;
        char q[96];
        if (!item || item->type != YAML_SCALAR_NODE) {
            rc = cfg_fail(c, item ? item->start_mark : v->start_mark, "must be a string, got %s",
                          item ? kind_name(item) : "nothing");
        } else if (strlen(scalar(item)) != item->data.scalar.length) {
            rc = cfg_fail(c, item->start_mark, "must not contain NUL characters");
        } else if (item->data.scalar.length > 4096) {
            rc = cfg_fail(c, item->start_mark, "too long: %zu bytes, at most 4096",
                          item->data.scalar.length);
        } else {
            const char *why = cfg_check_string(f, scalar(item));
            ss_cidr net;
            if (!why && (f->flags & F_CIDR))
                ss_cidr_parse(scalar(item), &net, &why);
            if (why) {
                ss_quote(q, sizeof q, scalar(item), 40);
                rc = cfg_fail(c, item->start_mark, "%s, got %s", why, q);
            }
        }
        cfg_path_pop(c, old);
        if (rc)
            return rc;
        items[i] = dup_text(item);
        cfg_set_count(base, f->count_offset, i + 1);
        if (!items[i])
            return -ENOMEM;
    }
    return 0;
}

static int parse_value(cfg_ctx *c, const cfg_field *f, void *base, yaml_node_t *v)
{
    switch (f->type) {
    case FT_MAP: return parse_map(c, v, f->sub, cfg_at(base, f->offset));
    case FT_LIST: return parse_list(c, f, base, v);
    case FT_PROPS: return parse_props(c, f, base, v);
    case FT_STRLIST: return parse_strlist(c, f, base, v);
    default:
        if (!v)
            return cfg_fail(c, (yaml_mark_t){ 0, 0, 0 }, "missing value");
        return set_scalar(c, f, base, v, v->type == YAML_SCALAR_NODE ? scalar(v) : "");
    }
}

/* ---- the document -------------------------------------------------------------------- */

/* Walks the event stream once before the document is built: libyaml's
 * document loader and our recursive reader would otherwise spend time
 * (and stack) in proportion to whatever a file nests. Stops at the first
 * node past the bounds, so rejecting a hostile file costs a few events. */
static int prescan(const char *yaml, size_t len, const char *source, char *err, size_t errlen)
{
    yaml_parser_t p;
    yaml_event_t ev;
    size_t depth = 0, nodes = 0;
    int rc = 0;
    if (!yaml_parser_initialize(&p))
        return -ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev))
            break;   /* the loader reports syntax errors with their position */
        yaml_event_type_t t = ev.type;
        yaml_mark_t m = ev.start_mark;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > CFG_MAX_DEPTH) {
                ss_errf(err, errlen, "%s:%zu:%zu: nested deeper than %d levels", source,
                        m.line + 1, m.column + 1, CFG_MAX_DEPTH);
                rc = -E2BIG;
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        if ((t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
             t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) && ++nodes > CFG_MAX_NODES) {
            ss_errf(err, errlen, "%s:%zu:%zu: more than %d nodes", source, m.line + 1,
                    m.column + 1, CFG_MAX_NODES);
            rc = -E2BIG;
            break;
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

int cfg_load(const char *yaml, size_t len, const char *source, const cfg_field *table,
             void *root, int (*validate)(cfg_ctx *c), char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    cfg_ctx c = { .source = source, .root = root, .err = err, .errlen = errlen };
    int rc = prescan(yaml, len, source, err, errlen);
    if (rc)
        return rc;
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
    c.doc = &doc;

    /* A second document would be silently ignored otherwise. */
    yaml_document_t next;
    if (!yaml_parser_load(&parser, &next)) {
        rc = cfg_fail(&c, parser.problem_mark, "YAML syntax error after the document: %s",
                      parser.problem ? parser.problem : "unknown");
        goto cleanup;
    }
    yaml_node_t *extra = yaml_document_get_root_node(&next);
    yaml_mark_t extra_mark = next.start_mark;
    yaml_document_delete(&next);
    if (extra) {
        rc = cfg_fail(&c, extra_mark, "only one YAML document is allowed");
        goto cleanup;
    }

    rc = apply_defaults(&c, table, root);
    if (!rc)
        rc = parse_map(&c, yaml_document_get_root_node(&doc), table, root);
    if (!rc && validate)
        rc = validate(&c);
    if (rc == -ENOMEM)
        ss_errf(err, errlen, "%s: out of memory", source);

cleanup:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int cfg_copy_table(const cfg_field *table, void *dst, const void *src)
{
    for (const cfg_field *f = table; f->type != FT_END; f++) {
        const char *s = (const char *)src + f->offset;
        char *d = cfg_at(dst, f->offset);
        switch (f->type) {
        case FT_MAP:
        case FT_EMBED:
            if (cfg_copy_table(f->sub, d, s) != 0)
                return -ENOMEM;
            break;
        case FT_INT:
        case FT_BOOL:
            memcpy(d, s, sizeof(int));
            break;
        case FT_ENUM:
            memcpy(d, s, f->size ? f->size : sizeof(int));
            break;
        case FT_ADDR:
            memcpy(d, s, sizeof(ss_listen_addr));
            break;
        case FT_STRING:
            if (f->size) {
                memcpy(d, s, f->size);
            } else {
                const char *from = cfg_get_ptr(src, f->offset);
                char *copy = strdup(from ? from : "");
                if (!copy)
                    return -ENOMEM;
                free(cfg_get_ptr(dst, f->offset));
                cfg_set_ptr(dst, f->offset, copy);
            }
            break;
        default:
            break;   /* lists, properties: not copied */
        }
    }
    return 0;
}

void cfg_free_table(const cfg_field *table, void *base)
{
    for (const cfg_field *f = table; f->type != FT_END; f++) {
        switch (f->type) {
        case FT_MAP:
        case FT_EMBED:
            cfg_free_table(f->sub, cfg_at(base, f->offset));
            break;
        case FT_LIST: {
            char *elems = cfg_get_ptr(base, f->offset);
            size_t n = cfg_get_count(base, f->count_offset);
            for (size_t i = 0; elems && i < n; i++)
                cfg_free_table(f->sub, elems + i * f->size);
            free(elems);
            cfg_set_ptr(base, f->offset, NULL);
            cfg_set_count(base, f->count_offset, 0);
            break;
        }
        case FT_PROPS: {
            ss_kv *kv = cfg_get_ptr(base, f->offset);
            size_t n = cfg_get_count(base, f->count_offset);
            for (size_t i = 0; kv && i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
            }
            free(kv);
            cfg_set_ptr(base, f->offset, NULL);
            cfg_set_count(base, f->count_offset, 0);
            break;
        }
        case FT_STRING:
            if (f->size == 0) {
                free(cfg_get_ptr(base, f->offset));
                cfg_set_ptr(base, f->offset, NULL);
            }
            break;
        case FT_STRLIST: {
            char **items = cfg_get_ptr(base, f->offset);
            size_t n = cfg_get_count(base, f->count_offset);
            for (size_t i = 0; items && i < n; i++)
                free(items[i]);
            free(items);
            cfg_set_ptr(base, f->offset, NULL);
            cfg_set_count(base, f->count_offset, 0);
            break;
        }
        default:
            break;
        }
    }
}
