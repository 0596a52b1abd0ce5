/* carbon_listen.h: carbon plaintext listeners on the reactor loop, TCP
 * (long-lived or connect-send-close clients) and UDP (lines per datagram). */
#ifndef SS_CARBON_LISTEN_H
#define SS_CARBON_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ingest/pipeline.h"

typedef struct carbon_tcp_limits {
    int max_clients;            /* open connections; more are accepted and closed */
    int idle_timeout_s;         /* a client silent this long is closed */
    size_t max_line;            /* carbon hard line limit */
    size_t read_buffer;         /* bytes per read */
} carbon_tcp_limits;

typedef struct carbon_tcp_stats {
    uint64_t accepted;
    uint64_t open;
    uint64_t refused_max_clients;
    uint64_t closed_idle;
    uint64_t read_errors;
} carbon_tcp_stats;

typedef struct carbon_tcp carbon_tcp;

/* Binds and listens. Returns NULL with a message in err on failure.
 * The pipeline is borrowed and must outlive the listener. */
carbon_tcp *carbon_tcp_create(uv_loop_t *loop, const char *host, int port,
                              const carbon_tcp_limits *lim, ss_pipeline *pipe,
                              char *err, size_t errlen);
int carbon_tcp_port(const carbon_tcp *t);
void carbon_tcp_get_stats(const carbon_tcp *t, carbon_tcp_stats *out);
/* Closes the listener and every client (their partial last lines are
 * processed); frees in close callbacks, then calls done(ctx). */
void carbon_tcp_close(carbon_tcp *t, void (*done)(void *ctx), void *ctx);

typedef struct carbon_udp_stats {
    uint64_t datagrams;
    uint64_t truncated;         /* datagram larger than the buffer */
    uint64_t errors;
} carbon_udp_stats;

typedef struct carbon_udp carbon_udp;

carbon_udp *carbon_udp_create(uv_loop_t *loop, const char *host, int port,
                              size_t max_line, ss_pipeline *pipe,
                              char *err, size_t errlen);
int carbon_udp_port(const carbon_udp *u);
void carbon_udp_get_stats(const carbon_udp *u, carbon_udp_stats *out);
void carbon_udp_close(carbon_udp *u, void (*done)(void *ctx), void *ctx);

/* Resolves "host" + port into a sockaddr (IPv4 or IPv6 literal, or a name). */
int ss_sockaddr(const char *host, int port, struct sockaddr_storage *out);
/* Formats the peer address of a sockaddr into buf (no port). */
void ss_sockaddr_host(const struct sockaddr *sa, char *buf, size_t len);
/* Port of a bound handle's local address. */
int ss_sockaddr_port(const struct sockaddr *sa);

#endif
