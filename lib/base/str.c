/* str.c: bounded string copies, quoting, UTF-8 validation. */
#include "lib/base/str.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t ss_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

void ss_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

int ss_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, len - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Escapes the character (or UTF-8 sequence) at s into out (>= 5 bytes);
 * returns the bytes written and sets *used to the input consumed. */
static size_t escape_one(const unsigned char *s, size_t n, char *out, size_t *used)
{
    unsigned char c = s[0];
    *used = 1;
    switch (c) {
    case '"': memcpy(out, "\\\"", 2); return 2;
    case '\\': memcpy(out, "\\\\", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    default: break;
    }
    if (c < 0x20 || c == 0x7f)
        return (size_t)snprintf(out, 5, "\\x%02x", c);
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    size_t k = utf8_seq(s, n);
    if (!k)
        return (size_t)snprintf(out, 5, "\\x%02x", c);
    memcpy(out, s, k);
    *used = k;
    return k;
}

void ss_quote(char *dst, size_t dstlen, const char *s, size_t max)
{
    if (dstlen == 0)
        return;
    if (dstlen < 8) {
        dst[0] = '\0';
        return;
    }
    size_t len = strlen(s), o = 0;
    int cut = max && len > max;
    if (cut)
        len = max;
    const unsigned char *p = (const unsigned char *)s;
    dst[o++] = '"';
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t used;
        size_t k = escape_one(p + i, len - i, esc, &used);
        if (o + k + 5 > dstlen) {   /* keep room for ...", NUL */
            cut = 1;
            break;
        }
        memcpy(dst + o, esc, k);
        o += k;
        i += used;
    }
    if (cut && o + 5 <= dstlen) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

void ss_fquote(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t used;
        size_t k = escape_one(p + i, len - i, esc, &used);
        fwrite(esc, 1, k, out);
        i += used;
    }
    fputc('"', out);
}

/* ---- URL masking ---- */

typedef struct mask_sink {
    char *out;
    size_t cap, n;
} mask_sink;

static void mput(mask_sink *s, const char *p, size_t len)
{
    if (s->n + 1 < s->cap) {
        size_t room = s->cap - 1 - s->n;
        memcpy(s->out + s->n, p, len < room ? len : room);
    }
    s->n += len;
}

static void mputs(mask_sink *s, const char *p)
{
    mput(s, p, strlen(p));
}

/* Query parameter names that usually carry a secret. */
static int sensitive_name(const char *name, size_t len)
{
    static const char *const words[] = { "token", "secret", "pass", "auth", "key", "sig" };
    char low[64];
    if (len >= sizeof low)
        len = sizeof low - 1;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    low[len] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(low, words[i]))
            return 1;
    return 0;
}

size_t ss_mask_url(const char *url, char *out, size_t outlen)
{
    mask_sink s = { out, outlen, 0 };
    if (!url)
        url = "";
    const char *sch = strstr(url, "://");
    const char *auth = sch ? sch + 3 : url;
    mput(&s, url, (size_t)(auth - url));
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    const char *p = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            mput(&s, auth, (size_t)(colon + 1 - auth));
            mputs(&s, "***@");
        } else {
            mputs(&s, "***@");
        }
        p = at + 1;
    }
    size_t pathlen = strcspn(p, "?#");
    mput(&s, p, pathlen);
    p += pathlen;
    if (*p == '?') {
        mput(&s, "?", 1);
        p++;
        while (*p && *p != '#') {
            size_t plen = strcspn(p, "&#");
            const char *eq = memchr(p, '=', plen);
            if (eq && sensitive_name(p, (size_t)(eq - p))) {
                mput(&s, p, (size_t)(eq + 1 - p));
                mputs(&s, "***");
            } else {
                mput(&s, p, plen);
            }
            p += plen;
            if (*p == '&') {
                mput(&s, "&", 1);
                p++;
            }
        }
    }
    mputs(&s, p);
    if (outlen)
        out[s.n < outlen ? s.n : outlen - 1] = '\0';
    return s.n;
}

void ss_scrub(char *msg, size_t cap, const char *secret)
{
    size_t sl = secret ? strlen(secret) : 0;
    if (sl == 0 || cap == 0)
        return;
    char tmp[1024];
    mask_sink w = { tmp, cap < sizeof tmp ? cap : sizeof tmp, 0 };
    const char *p = msg, *hit;
    while ((hit = strstr(p, secret))) {
        mput(&w, p, (size_t)(hit - p));
        mputs(&w, "***");
        p = hit + sl;
    }
    mputs(&w, p);
    tmp[w.n < w.cap ? w.n : w.cap - 1] = '\0';
    memcpy(msg, tmp, strlen(tmp) + 1);
}
