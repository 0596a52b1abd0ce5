/* carbon_tcp.c: carbon plaintext over TCP. Spark 3.2+ connects, sends one
 * report and closes; Spark 2.x keeps one connection. Each client has its own
 * bounded carry-over buffer; reads share one buffer (read_cb runs to
 * completion before the next alloc_cb), so an idle client costs ~max_line. */
#include "ingest/carbon_listen.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"

typedef struct client client;

struct carbon_tcp {
    uv_tcp_t server;
    uv_timer_t sweep;              /* closes idle clients once a second */
    uv_loop_t *loop;
    ss_pipeline *pipe;
    carbon_tcp_limits lim;
    carbon_tcp_stats stats;
    char *rbuf;                    /* shared read buffer */
    int rbuf_busy;
    client *clients;               /* doubly linked list of open clients */
    int pending_closes;            /* handles whose close callback is due */
    int closing;
    int port;
    void (*done)(void *);
    void *done_ctx;
};

struct client {
    uv_tcp_t handle;
    carbon_tcp *owner;
    client *prev, *next;
    carbon_stream stream;
    pipeline_source src;
    int64_t last_read_ms;          /* uv_now: monotonic, loop-cached */
    char peer[64];
    char carry[];                  /* max_line bytes */
};

int ss_sockaddr(const char *host, int port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    /* A name ("localhost"): resolved once at start-up, blocking is fine here. */
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_flags = AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    if (out->ss_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

void ss_sockaddr_host(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, buf, len);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, buf, len);
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

static void maybe_done(carbon_tcp *t)
{
    if (!t->closing || t->pending_closes > 0)
        return;
    void (*done)(void *) = t->done;
    void *ctx = t->done_ctx;
    free(t->rbuf);
    free(t);
    if (done)
        done(ctx);
}

static void on_client_closed(uv_handle_t *h)
{
    client *c = h->data;
    carbon_tcp *t = c->owner;
    free(c);
    t->pending_closes--;
    maybe_done(t);
}

static void client_close(client *c)
{
    carbon_tcp *t = c->owner;
    if (uv_is_closing((uv_handle_t *)&c->handle))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->stats.open--;
    t->pending_closes++;
    uv_close((uv_handle_t *)&c->handle, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;
    carbon_tcp *t = c->owner;
    (void)suggested;
    *buf = uv_buf_init(t->rbuf, (unsigned)t->lim.read_buffer);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client *c = s->data;
    carbon_tcp *t = c->owner;
    if (nread > 0) {
        pipeline_begin_batch(t->pipe);
        t->pipe->stats.bytes += (uint64_t)nread;
        c->last_read_ms = (int64_t)uv_now(t->loop);
        carbon_stream_feed(&c->stream, buf->base, (size_t)nread, pipeline_on_line, &c->src);
        return;
    }
    if (nread == 0)
        return;                     /* EAGAIN: nothing read */
    if (nread != UV_EOF) {
        t->stats.read_errors++;
        ss_debug("carbon tcp: read from %s: %s", c->peer, uv_strerror((int)nread));
    }
    /* Spark 3.2+ closes after each report; the last line may lack '\n'. */
    pipeline_begin_batch(t->pipe);
    carbon_stream_finish(&c->stream, pipeline_on_line, &c->src);
    client_close(c);
}

static void on_refused_closed(uv_handle_t *h)
{
    carbon_tcp *t = h->data;
    free(h);
    t->pending_closes--;
    maybe_done(t);
}

static void on_connection(uv_stream_t *server, int status)
{
    carbon_tcp *t = server->data;
    if (status < 0) {
        ss_warn("carbon tcp: accept: %s", uv_strerror(status));
        return;
    }
    if (t->stats.open >= (uint64_t)t->lim.max_clients) {
        /* Accept and close at once so the kernel queue does not fill and the
         * client gets a clear reset instead of a hang. */
        uv_tcp_t *h = malloc(sizeof *h);
        if (!h)
            return;
        uv_tcp_init(t->loop, h);
        h->data = t;
        t->pending_closes++;
        if (uv_accept(server, (uv_stream_t *)h) == 0)
            t->stats.refused_max_clients++;
        uv_close((uv_handle_t *)h, on_refused_closed);
        return;
    }
    client *c = calloc(1, sizeof *c + t->lim.max_line);
    if (!c)
        return;
    c->owner = t;
    uv_tcp_init(t->loop, &c->handle);
    c->handle.data = c;
    c->next = t->clients;
    if (t->clients)
        t->clients->prev = c;
    t->clients = c;
    t->stats.open++;                /* balanced by client_close */
    if (uv_accept(server, (uv_stream_t *)&c->handle) != 0) {
        client_close(c);
        return;
    }
    struct sockaddr_storage peer;
    int plen = sizeof peer;
    if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&peer, &plen) == 0)
        ss_sockaddr_host((struct sockaddr *)&peer, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
    carbon_stream_init(&c->stream, c->carry, t->lim.max_line);
    c->src.pipe = t->pipe;
    c->src.peer = c->peer;
    c->last_read_ms = (int64_t)uv_now(t->loop);
    t->stats.accepted++;
    uv_tcp_nodelay(&c->handle, 1);
    /* A fixed 1 MiB receive buffer: a report burst is taken in a few large
     * reads with fewer window updates (about a tenth less CPU per line on
     * loopback than autotuning). The kernel holds only what is queued. */
    int rcvbuf = 1 << 20;
    uv_recv_buffer_size((uv_handle_t *)&c->handle, &rcvbuf);
    uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
}

static void on_sweep(uv_timer_t *timer)
{
    carbon_tcp *t = timer->data;
    int64_t now = (int64_t)uv_now(t->loop);
    int64_t limit = (int64_t)t->lim.idle_timeout_s * 1000;
    for (client *c = t->clients, *next; c; c = next) {
        next = c->next;
        if (now - c->last_read_ms >= limit) {
            t->stats.closed_idle++;
            ss_debug("carbon tcp: closing idle client %s", c->peer);
            pipeline_begin_batch(t->pipe);
            carbon_stream_finish(&c->stream, pipeline_on_line, &c->src);
            client_close(c);
        }
    }
}

static void on_server_closed(uv_handle_t *h)
{
    carbon_tcp *t = h->data;
    t->pending_closes--;
    maybe_done(t);
}

carbon_tcp *carbon_tcp_create(uv_loop_t *loop, const char *host, int port,
                              const carbon_tcp_limits *lim, ss_pipeline *pipe,
                              char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    if (ss_sockaddr(host, port, &addr) != 0) {
        snprintf(err, errlen, "carbon_tcp: cannot resolve host '%s'", host);
        return NULL;
    }
    carbon_tcp *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "carbon_tcp: out of memory");
        return NULL;
    }
    t->loop = loop;
    t->pipe = pipe;
    t->lim = *lim;
    if (t->lim.read_buffer < 4096)
        t->lim.read_buffer = 4096;
    if (t->lim.max_clients < 1)
        t->lim.max_clients = 1;
    if (t->lim.idle_timeout_s < 1)
        t->lim.idle_timeout_s = 1;
    t->rbuf = malloc(t->lim.read_buffer);
    if (!t->rbuf) {
        free(t);
        snprintf(err, errlen, "carbon_tcp: out of memory");
        return NULL;
    }
    uv_tcp_init(loop, &t->server);
    t->server.data = t;
    int rc = uv_tcp_bind(&t->server, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->server, 511, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "carbon_tcp: cannot listen on %s:%d: %s", host, port,
                 uv_strerror(rc));
        /* The handle must still be closed through the loop. */
        t->closing = 1;
        t->pending_closes = 1;
        uv_close((uv_handle_t *)&t->server, on_server_closed);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&t->server, (struct sockaddr *)&bound, &blen);
    t->port = ss_sockaddr_port((struct sockaddr *)&bound);
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    uv_timer_start(&t->sweep, on_sweep, 1000, 1000);
    return t;
}

int carbon_tcp_port(const carbon_tcp *t) { return t->port; }

void carbon_tcp_get_stats(const carbon_tcp *t, carbon_tcp_stats *out) { *out = t->stats; }

void carbon_tcp_close(carbon_tcp *t, void (*done)(void *ctx), void *ctx)
{
    t->closing = 1;
    t->done = done;
    t->done_ctx = ctx;
    while (t->clients) {
        client *c = t->clients;
        carbon_stream_finish(&c->stream, pipeline_on_line, &c->src);
        client_close(c);
    }
    t->pending_closes += 2;
    uv_close((uv_handle_t *)&t->sweep, on_server_closed);
    uv_close((uv_handle_t *)&t->server, on_server_closed);
}
