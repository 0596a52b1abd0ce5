/* addr.c: host:port parsing, name resolution, CIDR matching. */
#include "lib/base/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int bad(const char **why, const char *text)
{
    if (why)
        *why = text;
    return -EINVAL;
}

int ss_addr_parse(const char *s, ss_listen_addr *a, const char **why)
{
    memset(a, 0, sizeof *a);
    if (s[0] == '\0' || strcasecmp(s, "off") == 0)
        return 0;
    const char *host, *colon;
    size_t hostlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return bad(why, "missing ']' after an IPv6 address");
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (hostlen == 0)
            return bad(why, "empty IPv6 address");
        /* Hex, ':' and '.' (IPv4-mapped), then an optional "%zone" (an interface name). */
        const char *zone = memchr(host, '%', hostlen);
        size_t addrlen = zone ? (size_t)(zone - host) : hostlen;
        for (size_t i = 0; i < addrlen; i++)
            if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.')
                return bad(why, "bad character in IPv6 address");
        for (size_t i = addrlen + 1; zone && i < hostlen; i++)
            if (!isalnum((unsigned char)host[i]) && host[i] != '-' && host[i] != '_' &&
                host[i] != '.')
                return bad(why, "bad character in IPv6 zone");
        if (!memchr(host, ':', hostlen))
            return bad(why, "brackets are for IPv6 addresses");
        colon = close + 1;
        if (*colon != ':')
            return bad(why, "expected ':port' after ']'");
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return bad(why, "must be host:port (\"off\" disables)");
        host = s;
        hostlen = (size_t)(colon - s);
        if (memchr(host, ':', hostlen))
            return bad(why, "IPv6 addresses need brackets, e.g. \"[::1]:2003\"");
        if (hostlen == 0)
            return bad(why, "missing host (0.0.0.0 or [::] listens everywhere)");
        for (size_t i = 0; i < hostlen; i++)
            if (!isalnum((unsigned char)host[i]) && host[i] != '.' && host[i] != '-' &&
                host[i] != '_')
                return bad(why, "bad character in host");
    }
    if (hostlen >= sizeof a->host)
        return bad(why, "host too long");
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || strtol(port, NULL, 10) > 65535)
        return bad(why, "port must be a number 0..65535 (0 = pick a free one)");
    memcpy(a->host, host, hostlen);
    a->host[hostlen] = '\0';
    a->port = (int)strtol(port, NULL, 10);
    a->enabled = 1;
    return 0;
}

int ss_addr_resolve(const char *host, int port, struct sockaddr_storage *out, const char **why)
{
    char h[SS_HOST_MAX];
    size_t len = strlen(host);
    memset(out, 0, sizeof *out);
    if (port < 0 || port > 65535)
        return bad(why, "port out of range");
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof h)
        return bad(why, "host too long");
    memcpy(h, host, len);
    h[len] = '\0';

    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    /* Literals (with a zone too) and names in one call: numeric ones never
     * touch DNS; names are resolved once at start-up, where blocking is fine. */
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res) {
        /* AI_ADDRCONFIG hides ::1 on hosts without a global IPv6 address. */
        hints.ai_flags = 0;
        if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res)
            return bad(why, "cannot resolve host");
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (out->ss_family == AF_INET)
        v4->sin_port = htons((uint16_t)port);
    else if (out->ss_family == AF_INET6)
        v6->sin6_port = htons((uint16_t)port);
    else
        return bad(why, "not an IPv4 or IPv6 host");
    return 0;
}

void ss_sockaddr_host(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
    else
        snprintf(buf, len, "unknown");
}

int ss_sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

static void clear_host_bits(ss_cidr *c)
{
    int bytes = c->family == AF_INET ? 4 : 16;
    for (int i = 0; i < bytes; i++) {
        int keep = c->prefix - i * 8;
        unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        c->addr[i] &= mask;
    }
}

int ss_cidr_parse(const char *text, ss_cidr *out, const char **why)
{
    char buf[64];
    memset(out, 0, sizeof *out);
    size_t len = strlen(text);
    if (len == 0 || len >= sizeof buf)
        return bad(why, "must be an address or address/prefix, e.g. 10.0.0.0/8");
    memcpy(buf, text, len + 1);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return bad(why, "not an IPv4 or IPv6 address");
    }
    if (slash) {
        const char *p = slash + 1;
        size_t pl = strlen(p);
        if (pl == 0 || pl > 3 || strspn(p, "0123456789") != pl)
            return bad(why, "prefix length must be a number");
        int n = atoi(p);
        if (n > out->prefix)
            return bad(why, "prefix length too long for the address family");
        out->prefix = n;
    }
    clear_host_bits(out);
    return 0;
}

static int prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == net[full];
}

int ss_cidr_match(const ss_cidr *c, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        return c->family == AF_INET && prefix_match(a, c->addr, c->prefix);
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (c->family == AF_INET6)
        return prefix_match(a, c->addr, c->prefix);
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a, mapped, 12) == 0 && prefix_match(a + 12, c->addr, c->prefix);
}

void ss_cidr_format(const ss_cidr *c, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(c->family, c->addr, a, sizeof a);
    snprintf(buf, len, "%s/%d", a, c->prefix);
}

int ss_cidr_list_parse(char *const *texts, size_t n, ss_cidr_list *out, char *err, size_t errlen)
{
    out->nets = NULL;
    out->n = 0;
    if (n == 0)
        return 0;
    out->nets = calloc(n, sizeof *out->nets);
    if (!out->nets)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        if (ss_cidr_parse(texts[i], &out->nets[i], &why) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "%s: %s", texts[i], why);
            ss_cidr_list_free(out);
            return -EINVAL;
        }
    }
    out->n = n;
    return 0;
}

void ss_cidr_list_free(ss_cidr_list *l)
{
    free(l->nets);
    l->nets = NULL;
    l->n = 0;
}

int ss_cidr_list_allows(const ss_cidr_list *l, const struct sockaddr *sa)
{
    if (l->n == 0)
        return 1;
    for (size_t i = 0; i < l->n; i++)
        if (ss_cidr_match(&l->nets[i], sa))
            return 1;
    return 0;
}
