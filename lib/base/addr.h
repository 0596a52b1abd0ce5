/* addr.h: one parser and one resolver for "host:port" addresses, used by
 * the config loader and by every listener, so what the config accepts is
 * what the listeners can bind. */
#ifndef SS_ADDR_H
#define SS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define SS_HOST_MAX 256

/* "host:port"; port 0 means "pick a free one". enabled = 0 when the text
 * is "" or "off". host is an IPv4 literal, an IPv6 literal (written in
 * brackets, stored without them) or a name. */
typedef struct ss_listen_addr {
    int enabled;
    char host[SS_HOST_MAX];
    int port;
} ss_listen_addr;

/* Parses text into *out. Returns 0, or -EINVAL with *why (static text)
 * saying what is wrong. */
int ss_addr_parse(const char *text, ss_listen_addr *out, const char **why);

/* Resolves host (IPv4 or IPv6 literal, with or without brackets, or a name,
 * looked up with getaddrinfo: blocking, so for start-up only) and port into
 * *out. Returns 0, or -EINVAL (no such host) with *why set. */
int ss_addr_resolve(const char *host, int port, struct sockaddr_storage *out, const char **why);

/* The numeric host of sa into buf (no port); "unknown" for other families. */
void ss_sockaddr_host(const struct sockaddr *sa, char *buf, size_t len);
/* The port of sa, or -1. */
int ss_sockaddr_port(const struct sockaddr *sa);

/* An IPv4 or IPv6 network, for source allowlists. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) match IPv4 networks. */
typedef struct ss_cidr {
    int family;                   /* AF_INET or AF_INET6 */
    unsigned char addr[16];       /* network address, host bits cleared */
    int prefix;                   /* 0..32 or 0..128 */
} ss_cidr;

/* "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Returns 0 or
 * -EINVAL with *why set. */
int ss_cidr_parse(const char *text, ss_cidr *out, const char **why);
/* Non-zero when sa (AF_INET or AF_INET6) lies in c. */
int ss_cidr_match(const ss_cidr *c, const struct sockaddr *sa);
/* Writes c as text ("10.0.0.0/8"). */
void ss_cidr_format(const ss_cidr *c, char *buf, size_t len);

/* A set of networks; none = everything allowed. */
typedef struct ss_cidr_list {
    ss_cidr *nets;                /* owned */
    size_t n;
} ss_cidr_list;

/* Parses texts[0..n) into *out (caller frees with ss_cidr_list_free).
 * Returns 0, or -EINVAL naming the bad entry in err, or -ENOMEM. */
int ss_cidr_list_parse(char *const *texts, size_t n, ss_cidr_list *out, char *err, size_t errlen);
void ss_cidr_list_free(ss_cidr_list *l);
/* Non-zero when l is empty (no restriction) or sa lies in one of its networks. */
int ss_cidr_list_allows(const ss_cidr_list *l, const struct sockaddr *sa);

#endif
