/* jolokia.c: Jolokia bulk read requests and answers.
 * Answer shapes: Jolokia 2.6 ReadHandler and JSONWriter (non-finite doubles are written
 * as null), as recorded from a Spark 3.5 driver in tests/fixtures/jolokia/. */
#include "lib/spark/jolokia.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
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

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ------------------------------------------------------------------ request */

int ss_jolokia_build_read(const ss_jolokia_read *reads, size_t n, char **out, size_t *out_len)
{
    json_t *arr;
    size_t i;
    char *s;

    if (out)
        *out = NULL;
    if (!reads || !out || n == 0 || n > SS_JOLOKIA_MAX_ITEMS)
        return -EINVAL;
    if (!(arr = json_array()))
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        json_t *o, *mbean, *attr = NULL;
        if (!reads[i].mbean) {
            json_decref(arr);
            return -EINVAL;
        }
        /* json_string refuses invalid UTF-8 (NULL): that is the caller's error. */
        mbean = json_string(reads[i].mbean);
        if (reads[i].attribute)
            attr = json_string(reads[i].attribute);
        if (!mbean || (reads[i].attribute && !attr)) {
            json_decref(mbean);
            json_decref(attr);
            json_decref(arr);
            return -EINVAL;
        }
        o = json_object();
        if (!o || json_object_set_new(o, "type", json_string("read")) != 0 ||
            json_object_set_new(o, "mbean", mbean) != 0 ||
            (attr && json_object_set_new(o, "attribute", attr) != 0) ||
            (reads[i].ignore_errors &&
             json_object_set_new(o, "config", json_pack("{s:b}", "ignoreErrors", 1)) != 0) ||
            json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    /* Compact, keys in insertion order: the bytes are stable for a given input. */
    s = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(arr);
    if (!s)
        return -ENOMEM;
    *out = s;
    if (out_len)
        *out_len = strlen(s);
    return 0;
}

/* ------------------------------------------------------------------ ObjectName */

/* Reads one value at s[*i] (quoted or not) into buf (cap bytes); advances *i
 * to the ',' or end after it. Returns the value's length or -1 if malformed. */
static long read_value(const char *s, size_t len, size_t *i, char *buf, size_t cap)
{
    size_t j = *i, n = 0;
    if (j < len && s[j] == '"') {
        for (j++;; j++) {
            char ch;
            if (j >= len)
                return -1;   /* no closing quote */
            ch = s[j];
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (++j >= len)
                    return -1;
                switch (s[j]) {
                case '"': case '\\': case '*': case '?': ch = s[j]; break;
                case 'n': ch = '\n'; break;
                default: return -1;
                }
            } else if (ch == '\n' || ch == '\0') {
                return -1;
            }
            if (n >= cap)
                return -1;
            buf[n++] = ch;
        }
        j++;   /* past the closing quote */
        if (j < len && s[j] != ',')
            return -1;
    } else {
        for (; j < len && s[j] != ','; j++) {
            char ch = s[j];
            if (ch == '=' || ch == ':' || ch == '"' || ch == '\n' || ch == '\0')
                return -1;
            if (n >= cap)
                return -1;
            buf[n++] = ch;
        }
        if (n == 0)
            return -1;   /* an unquoted value cannot be empty */
    }
    *i = j;
    return (long)n;
}

char *ss_jolokia_objectname_key(const char *s, size_t len, const char *key)
{
    size_t i, klen;
    char *buf;
    char *found = NULL;

    if (!s || !key || len > SS_JOLOKIA_MAX_NAME)
        return NULL;
    klen = strlen(key);
    /* The domain ends at the first ':' (a domain cannot contain one). */
    for (i = 0; i < len && s[i] != ':'; i++)
        ;
    if (i >= len)
        return NULL;
    i++;
    if (i >= len)
        return NULL;   /* no key property at all */
    if (!(buf = malloc(len + 1)))
        return NULL;
    while (i < len) {
        size_t k0 = i, kend;
        long vn;
        for (; i < len && s[i] != '=' && s[i] != ','; i++)
            if (s[i] == ':' || s[i] == '"' || s[i] == '*' || s[i] == '?' || s[i] == '\n' ||
                s[i] == '\0')
                goto bad;
        if (i >= len || s[i] != '=' || i == k0)
            goto bad;
        kend = i++;
        vn = read_value(s, len, &i, buf, len);
        if (vn < 0)
            goto bad;
        if (kend - k0 == klen && memcmp(s + k0, key, klen) == 0) {
            if (found)
                goto bad;   /* a key twice */
            if (!(found = dup_n(buf, (size_t)vn)))
                goto bad;
        }
        if (i < len) {   /* at ',' */
            i++;
            if (i >= len)
                goto bad;   /* trailing comma */
        }
    }
    free(buf);
    return found;
bad:
    free(buf);
    free(found);
    return NULL;
}

/* ------------------------------------------------------------------ answer */

static void free_sample(ss_jolokia_sample *s)
{
    free(s->mbean);
    free(s->name);
    free(s->type);
    free(s->attribute);
}

static void free_item(ss_jolokia_item *it)
{
    size_t i;
    for (i = 0; i < it->nsamples; i++)
        free_sample(&it->samples[i]);
    free(it->samples);
    free(it->error_type);
    free(it->error);
    free(it->request_mbean);
}

void ss_jolokia_result_free(ss_jolokia_result *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; i < r->nitems; i++)
        free_item(&r->items[i]);
    free(r->items);
    free(r);
}

/* Appends a sample; returns 0, 1 (not a finite number or bad name: counted
 * as skipped) or -ENOMEM. */
static int add_sample(ss_jolokia_item *it, size_t cap, const char *mbean, size_t mbean_n,
                      const char *attr, size_t attr_n, json_t *v)
{
    ss_jolokia_sample *s;
    char *name;

    if (!json_is_number(v))
        return 1;   /* null (non-finite), string, error object of ignoreErrors, ... */
    if (json_is_real(v) && !isfinite(json_real_value(v)))
        return 1;
    if (it->nsamples >= cap || attr_n == 0 || attr_n > SS_JOLOKIA_MAX_NAME)
        return 1;
    name = ss_jolokia_objectname_key(mbean, mbean_n, "name");
    if (!name || name[0] == '\0') {
        free(name);
        return 1;
    }
    s = &it->samples[it->nsamples];
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->type = ss_jolokia_objectname_key(mbean, mbean_n, "type");
    s->mbean = dup_n(mbean, mbean_n);
    s->attribute = dup_n(attr, attr_n);
    if (!s->mbean || !s->attribute) {
        free_sample(s);
        return -ENOMEM;
    }
    if (json_is_integer(v)) {
        s->is_int = 1;
        s->ivalue = json_integer_value(v);
        s->value = (double)s->ivalue;
    } else {
        s->value = json_real_value(v);
        s->ivalue = (int64_t)(s->value >= -9.2e18 && s->value <= 9.2e18 ? s->value : 0);
    }
    it->nsamples++;
    return 0;
}

static int count_or_fail(ss_jolokia_item *it, int rc)
{
    if (rc == 1) {
        it->skipped++;
        return 0;
    }
    return rc;
}

/* A successful item's "value": a number, {attr: n}, or {ObjectName: {attr: n}}. */
static int parse_value(ss_jolokia_item *it, json_t *req, json_t *value, char *err, size_t errlen)
{
    const char *rmbean = it->request_mbean;
    size_t rmbean_n = rmbean ? strlen(rmbean) : 0;
    json_t *rattr = req ? json_object_get(req, "attribute") : NULL;
    const char *key;
    json_t *v;
    size_t cap = 0;

    /* Capacity: one per number at depth 1 or 2, bounded. */
    if (json_is_object(value)) {
        json_object_foreach(value, key, v) {
            cap += json_is_object(v) ? json_object_size(v) : 1;
            if (cap > SS_JOLOKIA_MAX_SAMPLES) {
                errf(err, errlen, "an item has over %d values", SS_JOLOKIA_MAX_SAMPLES);
                return -E2BIG;
            }
        }
    } else {
        cap = 1;
    }
    if (cap == 0)
        return 0;
    if (!(it->samples = calloc(cap, sizeof(*it->samples))))
        return -ENOMEM;

    if (!json_is_object(value)) {
        /* One MBean, one attribute: named after the request. */
        if (!rmbean || !json_is_string(rattr)) {
            it->skipped++;
            return 0;
        }
        return count_or_fail(it, add_sample(it, cap, rmbean, rmbean_n, json_string_value(rattr),
                                            json_string_length(rattr), value));
    }
    json_object_foreach(value, key, v) {
        size_t key_n = strlen(key);   /* jansson refuses NUL in keys unless asked */
        int rc;
        if (json_is_object(v)) {
            /* Pattern read: key is the ObjectName, v maps attribute -> value. */
            const char *attr;
            json_t *av;
            json_object_foreach(v, attr, av) {
                rc = count_or_fail(it, add_sample(it, cap, key, key_n, attr, strlen(attr), av));
                if (rc)
                    return rc;
            }
        } else {
            /* Several attributes of one MBean: key is the attribute. */
            if (!rmbean) {
                it->skipped++;
                continue;
            }
            rc = count_or_fail(it, add_sample(it, cap, rmbean, rmbean_n, key, key_n, v));
            if (rc)
                return rc;
        }
    }
    return 0;
}

static char *dup_text(json_t *j)
{
    size_t n;
    if (!json_is_string(j))
        return NULL;
    n = json_string_length(j);
    return dup_n(json_string_value(j), n > SS_JOLOKIA_MAX_TEXT ? SS_JOLOKIA_MAX_TEXT : n);
}

static int parse_item(json_t *o, size_t idx, ss_jolokia_item *it, char *err, size_t errlen)
{
    json_t *status, *req, *ts, *mb;
    json_int_t st;

    it->timestamp_s = -1;
    if (!json_is_object(o)) {
        errf(err, errlen, "item %zu: not an object", idx);
        return -EPROTO;
    }
    status = json_object_get(o, "status");
    if (!json_is_integer(status)) {
        errf(err, errlen, "item %zu: status: %s", idx, status ? "not an integer" : "missing");
        return -EPROTO;
    }
    st = json_integer_value(status);
    if (st < 100 || st > 999) {
        errf(err, errlen, "item %zu: status: out of range", idx);
        return -EPROTO;
    }
    it->status = (int)st;
    ts = json_object_get(o, "timestamp");
    if (json_is_integer(ts) && json_integer_value(ts) >= 0)
        it->timestamp_s = json_integer_value(ts);
    req = json_object_get(o, "request");
    if (!json_is_object(req))
        req = NULL;
    mb = req ? json_object_get(req, "mbean") : NULL;
    if (json_is_string(mb) && json_string_length(mb) <= SS_JOLOKIA_MAX_NAME &&
        !(it->request_mbean = dup_n(json_string_value(mb), json_string_length(mb))))
        return -ENOMEM;
    if (it->status != 200) {
        it->error_type = dup_text(json_object_get(o, "error_type"));
        it->error = dup_text(json_object_get(o, "error"));
        if (!it->error_type && !(it->error_type = dup_n("", 0)))
            return -ENOMEM;
        if (!it->error && !(it->error = dup_n("", 0)))
            return -ENOMEM;
        return 0;
    }
    return parse_value(it, req, json_object_get(o, "value"), err, errlen);
}

int ss_jolokia_parse(const char *json, size_t len, ss_jolokia_result **out, char *err, size_t errlen)
{
    json_error_t jerr;
    ss_jolokia_result *r;
    json_t *root;
    size_t i, n;
    int rc = 0;

    if (!out || (!json && len > 0)) {
        errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    *out = NULL;
    if (len > SS_JOLOKIA_MAX_INPUT) {
        errf(err, errlen, "input of %zu bytes (at most %u)", len, SS_JOLOKIA_MAX_INPUT);
        return -E2BIG;
    }
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        errf(err, errlen, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
        return -EBADMSG;
    }
    if (!json_is_array(root) && !json_is_object(root)) {
        errf(err, errlen, "neither an array nor an object");
        json_decref(root);
        return -EPROTO;
    }
    n = json_is_array(root) ? json_array_size(root) : 1;
    if (n > SS_JOLOKIA_MAX_ITEMS) {
        errf(err, errlen, "%zu items (at most %d)", n, SS_JOLOKIA_MAX_ITEMS);
        json_decref(root);
        return -E2BIG;
    }
    r = calloc(1, sizeof(*r));
    if (!r || (n > 0 && !(r->items = calloc(n, sizeof(*r->items))))) {
        free(r);
        json_decref(root);
        return -ENOMEM;
    }
    for (i = 0; i < n && rc == 0; i++) {
        json_t *o = json_is_array(root) ? json_array_get(root, i) : root;
        rc = parse_item(o, i, &r->items[i], err, errlen);
        r->nitems++;   /* freed with the rest even when half filled */
    }
    json_decref(root);
    if (rc != 0) {
        if (rc == -ENOMEM)
            errf(err, errlen, "out of memory");
        ss_jolokia_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
