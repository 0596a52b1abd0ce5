/* http_parse.c: the status server's strict HTTP/1.1 request-head parser
 * (RFC 9110/9112). Pure: no I/O, fuzzed by tests/fuzz/fuzz_http.c. */
#include "lib/http/parse.h"

#include <string.h>
#include <strings.h>

size_t ss_http_head_end(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if ((i >= 1 && buf[i - 1] == '\n') || (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))
            return i + 1;
    }
    return 0;
}

/* RFC 9110 5.6.2 token characters */
static int is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Connection: a comma list of options (RFC 9110 7.6.1). */
static void parse_connection(ss_http_head *h, const char *v, const char *end)
{
    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *e = comma ? comma : end;
        const char *a = v, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (name_is(a, (size_t)(b - a), "close"))
            h->conn_close = 1;
        else if (name_is(a, (size_t)(b - a), "keep-alive"))
            h->conn_keep_alive = 1;
        v = comma ? comma + 1 : end;
    }
}

int ss_http_parse_head(char *buf, size_t len, ss_http_head *h)
{
    char *end = buf + len;
    char *eol = memchr(buf, '\n', len);
    char *le = (eol > buf && eol[-1] == '\r') ? eol - 1 : eol;

    /* request-line = method SP request-target SP HTTP-version, single spaces */
    char *p = buf;
    while (p < le && is_tchar((unsigned char)*p))
        p++;
    if (p == buf || p - buf > SS_HTTP_METHOD_MAX || p == le || *p != ' ')
        return 400;
    char *sp1 = p;
    char *target = ++p;
    while (p < le && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
        p++;
    if (p == target || p == le || *p != ' ')
        return 400;
    char *sp2 = p;
    char *v = p + 1;
    if (le - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.'
        || v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1')
        return 505;
    h->minor = v[7] - '0';
    *sp1 = '\0';
    *sp2 = '\0';
    h->method = buf;

    int nheaders = 0;
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        le = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
        if (le == p)
            break;
        if (++nheaders > SS_HTTP_MAX_HEADERS)
            return 431;
        /* obs-fold and whitespace before the colon are smuggling vectors:
         * RFC 9112 5.1 and 5.2 say reject */
        char *colon = p;
        while (colon < le && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == p || colon == le || *colon != ':')
            return 400;
        char *val = colon + 1, *vend = le;
        while (val < vend && (*val == ' ' || *val == '\t'))
            val++;
        while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        for (char *q = val; q < vend; q++) {
            unsigned char ch = (unsigned char)*q;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return 400;
        }
        size_t nlen = (size_t)(colon - p);
        if (name_is(p, nlen, "host")) {
            h->hosts++;
        } else if (name_is(p, nlen, "content-length")) {
            uint64_t x = 0;
            if (val == vend || vend - val > 18)
                return 400;
            for (char *q = val; q < vend; q++) {
                if (*q < '0' || *q > '9')
                    return 400;
                x = x * 10 + (uint64_t)(*q - '0');
            }
            if (h->has_content_length && h->content_length != x)
                return 400;
            h->has_content_length = 1;
            h->content_length = x;
        } else if (name_is(p, nlen, "transfer-encoding")) {
            h->transfer_encoding = 1;
        } else if (name_is(p, nlen, "connection")) {
            parse_connection(h, val, vend);
        } else if (name_is(p, nlen, "expect")) {
            h->expect = 1;
        }
    }

    /* RFC 9112 6.1: Transfer-Encoding with Content-Length is a smuggling
     * attempt; chunked request bodies are not worth supporting here. */
    if (h->transfer_encoding)
        return h->has_content_length ? 400 : 501;
    /* RFC 9112 3.2: Host is required in 1.1 and must not repeat */
    if (h->hosts > 1 || (h->minor >= 1 && h->hosts == 0))
        return 400;

    char *q = strchr(target, '?');
    h->query = "";
    if (q) {
        *q = '\0';
        h->query = q + 1;
    }
    h->path = target;
    if (target[0] == '/')
        return 0;
    if (strcmp(target, "*") == 0 && strcmp(h->method, "OPTIONS") == 0)
        return 0;
    /* absolute-form (RFC 9112 3.2.2), which proxies send: drop scheme and authority */
    size_t skip = strncasecmp(target, "http://", 7) == 0    ? 7
                  : strncasecmp(target, "https://", 8) == 0 ? 8
                                                             : 0;
    if (skip == 0)
        return 400;
    const char *slash = strchr(target + skip, '/');
    h->path = slash ? slash : "/";
    return 0;
}
