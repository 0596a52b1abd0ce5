/* print.c: writes a configuration back as YAML, every key with its value
 * and description, secrets masked (--check-config). */
#include <stdio.h>
#include <string.h>

#include "lib/base/addr.h"
#include "lib/base/str.h"
#include "lib/config/config.h"
#include "lib/config/engine.h"

/* ---- printing ------------------------------------------------------------------------ */

int cfg_is_secret_key(const char *key)
{
    static const char *marks[] = { "password", "secret", "sasl.oauthbearer", "ssl.key.pem",
                                   "token", "credential", NULL };
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

static void line_end(FILE *out, const cfg_field *f, int comments)
{
    if (comments && f->desc)
        fprintf(out, "  # %s", f->desc);
    fputc('\n', out);
}

static void print_table(FILE *out, const cfg_field *t, const void *vbase, int indent, int *dash,
                        int comments);

/* A string, masked when secret, its credentials masked when a URL. */
static void print_string(FILE *out, const cfg_field *f, const char *p)
{
    char masked[2048];
    if (!p)
        p = "";
    if ((f->flags & F_SECRET) && p[0]) {
        ss_fquote(out, "******");
        return;
    }
    ss_mask_url(p, masked, sizeof masked);
    ss_fquote(out, (f->flags & F_URL) ? masked : p);
}

/* The value of a scalar field after "key:", on the same line. */
static void print_scalar(FILE *out, const cfg_field *f, const char *base)
{
    const char *p = base + f->offset;
    int iv;
    switch (f->type) {
    case FT_INT:
        memcpy(&iv, p, sizeof iv);
        fprintf(out, " %d", iv);
        break;
    case FT_BOOL:
        memcpy(&iv, p, sizeof iv);
        fprintf(out, " %s", iv ? "true" : "false");
        break;
    case FT_STRING:
        fputc(' ', out);
        print_string(out, f, f->size ? p : cfg_get_ptr(base, f->offset));
        break;
    case FT_STRLIST: {
        size_t n = cfg_get_count(base, f->count_offset);
        char *const *items = cfg_get_ptr(base, f->offset);
        fputs(n ? " [" : " []", out);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", out);
            print_string(out, f, items[i]);
        }
        fputs(n ? "]" : "", out);
        break;
    }
    case FT_ADDR: {
        const ss_listen_addr *a = (const ss_listen_addr *)p;
        if (!a->enabled)
            fputs(" \"off\"", out);
        else if (strchr(a->host, ':'))
            fprintf(out, " \"[%s]:%d\"", a->host, a->port);
        else
            fprintf(out, " \"%s:%d\"", a->host, a->port);
        break;
    }
    case FT_ENUM: {
        const char *name = "?";
        memcpy(&iv, p, sizeof iv);
        for (const cfg_enum_opt *o = f->opts; o->name; o++)
            if (f->size ? strcmp(p, o->name) == 0 : o->value == iv)
                name = o->name;
        fprintf(out, " %s", name);
        break;
    }
    default:
        break;
    }
}

/* A list of mappings, one "- " element each; descriptions on the first
 * only: 10,000 clusters need not repeat them. */
static void print_list(FILE *out, const cfg_field *f, const char *base, int indent, int comments)
{
    size_t n = cfg_get_count(base, f->count_offset);
    const char *elems = cfg_get_ptr(base, f->offset);
    fputs(n ? "" : " []", out);
    line_end(out, f, comments);
    for (size_t i = 0; i < n; i++) {
        int d = 1;
        print_table(out, f->sub, elems + i * f->size, indent + 4, &d, comments && i == 0);
    }
}

static void print_props(FILE *out, const cfg_field *f, const char *base, int indent, int comments)
{
    size_t n = cfg_get_count(base, f->count_offset);
    const ss_kv *kv = cfg_get_ptr(base, f->offset);
    fputs(n ? "" : " {}", out);
    line_end(out, f, comments);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%*s", indent + 2, "");
        ss_fquote(out, kv[i].key);
        fputs(": ", out);
        ss_fquote(out, cfg_is_secret_key(kv[i].key) ? "******" : kv[i].value);
        fputc('\n', out);
    }
}

static void print_table(FILE *out, const cfg_field *t, const void *vbase, int indent, int *dash,
                        int comments)
{
    const char *base = vbase;
    for (const cfg_field *f = t; f->type != FT_END; f++) {
        if (f->type == FT_EMBED) {
            print_table(out, f->sub, base + f->offset, indent, dash, comments);
            continue;
        }
        line_start(out, indent, dash);
        fprintf(out, "%s:", f->key);
        if (f->type == FT_MAP) {
            line_end(out, f, comments);
            print_table(out, f->sub, base + f->offset, indent + 2, NULL, comments);
        } else if (f->type == FT_LIST) {
            print_list(out, f, base, indent, comments);
        } else if (f->type == FT_PROPS) {
            print_props(out, f, base, indent, comments);
        } else {
            print_scalar(out, f, base);
            line_end(out, f, comments);
        }
    }
}

/* Credentials in a URL: "user:pass@" or "token@" in its authority. */
static int url_has_credentials(const char *url)
{
    char masked[2048];
    return url && ss_mask_url(url, masked, sizeof masked) && strcmp(masked, url) != 0;
}

int cfg_has_secrets(const cfg_field *table, const void *vbase)
{
    const char *base = vbase;
    for (const cfg_field *f = table; f->type != FT_END; f++) {
        switch (f->type) {
        case FT_MAP:
        case FT_EMBED:
            if (cfg_has_secrets(f->sub, base + f->offset))
                return 1;
            break;
        case FT_LIST: {
            size_t n = cfg_get_count(base, f->count_offset);
            const char *elems = cfg_get_ptr(base, f->offset);
            for (size_t i = 0; i < n; i++)
                if (cfg_has_secrets(f->sub, elems + i * f->size))
                    return 1;
            break;
        }
        case FT_PROPS: {
            size_t n = cfg_get_count(base, f->count_offset);
            const ss_kv *kv = cfg_get_ptr(base, f->offset);
            for (size_t i = 0; i < n; i++)
                if (cfg_is_secret_key(kv[i].key) && kv[i].value[0])
                    return 1;
            break;
        }
        case FT_STRING: {
            const char *s = f->size ? base + f->offset : cfg_get_ptr(base, f->offset);
            if (s && s[0] && ((f->flags & F_SECRET) || ((f->flags & F_URL) && url_has_credentials(s))))
                return 1;
            break;
        }
        case FT_STRLIST: {
            size_t n = cfg_get_count(base, f->count_offset);
            char *const *items = cfg_get_ptr(base, f->offset);
            for (size_t i = 0; i < n; i++)
                if ((f->flags & F_SECRET) || ((f->flags & F_URL) && url_has_credentials(items[i])))
                    return 1;
            break;
        }
        default:
            break;
        }
    }
    return 0;
}

void cfg_print(FILE *out, const cfg_field *table, const void *base)
{
    print_table(out, table, base, 0, NULL, 1);
}

