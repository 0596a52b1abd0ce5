/* carbon_tcp.c: carbon plaintext over TCP. Spark 3.2+ connects, sends one
 * report and closes; Spark 2.x keeps one connection. Each client has its own
 * bounded carry-over buffer; reads share one buffer (read_cb runs to
 * completion before the next alloc_cb), so an idle client costs ~max_line. */
#include "ingest/carbon_tcp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/addr.h"
#include "lib/base/join.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

typedef struct client client;

typedef struct carbon_tcp_stats {
    uint64_t accepted;
    uint64_t open;
    uint64_t refused_max_clients;
    uint64_t refused_nomem;
    uint64_t closed_idle;
    uint64_t read_errors;
} carbon_tcp_stats;

typedef struct carbon_tcp {
    ss_source base;
    uv_tcp_t server;
    uv_timer_t sweep;              /* closes idle clients once a second */
    uv_loop_t *loop;
    ss_pipeline *pipe;
    carbon_tcp_limits lim;
    carbon_tcp_stats stats;
    char *rbuf;                    /* shared read buffer */
    client *clients;               /* doubly linked list of open clients */
    ss_join closing;               /* handles whose close callback is due */
    int port;
    int fail_allocs;               /* fault injection: client allocations left to fail */
    uv_tcp_t spare;                /* accepts-and-closes when malloc fails */
    int spare_busy;                /* spare closing: not usable yet */
    int refuse_waiting;            /* a connection waits for the spare */
    int closing_started;
    void (*done)(void *);
    void *done_ctx;
} carbon_tcp;

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

static void on_client_closed(uv_handle_t *h)
{
    client *c = h->data;
    carbon_tcp *t = c->owner;
    free(c);
    ss_join_leave(&t->closing);
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
    ss_join_add(&t->closing);
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

/* All client-side allocations go through here so tests can make them fail. */
static void *client_alloc(carbon_tcp *t, size_t n)
{
    if (t->fail_allocs > 0) {
        t->fail_allocs--;
        return NULL;
    }
    return calloc(1, n);
}

static void refuse(carbon_tcp *t, uint64_t *counter);

static void on_refused_closed(uv_handle_t *h)
{
    carbon_tcp *t = h->data;
    if (h == (uv_handle_t *)&t->spare) {
        t->spare_busy = 0;
        /* A connection waited for the spare: take it off the listener now. */
        if (t->refuse_waiting && !t->closing_started) {
            t->refuse_waiting = 0;
            refuse(t, &t->stats.refused_nomem);
        }
    } else {
        free(h);
    }
    ss_join_leave(&t->closing);
}

/* Takes the waiting connection off the listener and closes it, so the
 * kernel queue does not fill and the client gets a clear reset instead of
 * a hang. libuv stops watching a listener whose connection callback leaves
 * a connection unaccepted, and carbon ingest would go deaf: so this must
 * work without memory too. A preallocated spare handle stands in when
 * malloc fails; while the spare is still closing, the connection waits
 * for it (refuse_waiting), and the listener resumes when it is accepted. */
static void refuse(carbon_tcp *t, uint64_t *counter)
{
    uv_tcp_t *h = client_alloc(t, sizeof *h);
    if (!h) {
        if (t->spare_busy) {
            t->refuse_waiting = 1;
            return;
        }
        h = &t->spare;
        t->spare_busy = 1;
    }
    uv_tcp_init(t->loop, h);
    h->data = t;
    ss_join_add(&t->closing);
    if (uv_accept((uv_stream_t *)&t->server, (uv_stream_t *)h) == 0)
        (*counter)++;
    uv_close((uv_handle_t *)h, on_refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    carbon_tcp *t = server->data;
    if (status < 0) {
        ss_warn("carbon tcp: accept: %s", uv_strerror(status));
        return;
    }
    if (t->stats.open >= (uint64_t)t->lim.max_clients) {
        refuse(t, &t->stats.refused_max_clients);
        return;
    }
    client *c = client_alloc(t, sizeof *c + t->lim.max_line);
    if (!c) {
        refuse(t, &t->stats.refused_nomem);
        return;
    }
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
    ss_join_leave(&t->closing);
}

/* The last handle closed: free everything, then tell the owner. */
static void finish(void *ctx)
{
    carbon_tcp *t = ctx;
    void (*done)(void *) = t->done;
    void *done_ctx = t->done_ctx;
    free(t->rbuf);
    free(t);
    if (done)
        done(done_ctx);
}

static int tcp_port(const ss_source *s) { return ((const carbon_tcp *)s)->port; }

static size_t tcp_metrics(const ss_source *s, ss_source_metric *out, size_t cap)
{
    const carbon_tcp_stats *st = &((const carbon_tcp *)s)->stats;
    static const char closed[] = "sparkscale_carbon_tcp_connections_closed_total";
    static const char closed_help[] = "Carbon TCP connections closed by the daemon, by reason.";
    const ss_source_metric m[] = {
        { "sparkscale_carbon_tcp_connections_total", "counter",
          "Carbon TCP connections accepted.", NULL, st->accepted },
        { "sparkscale_carbon_tcp_connections_open", "gauge",
          "Carbon TCP connections open now.", NULL, st->open },
        { closed, "counter", closed_help, "reason=\"max_clients\"", st->refused_max_clients },
        { closed, "counter", closed_help, "reason=\"nomem\"", st->refused_nomem },
        { closed, "counter", closed_help, "reason=\"idle\"", st->closed_idle },
        { closed, "counter", closed_help, "reason=\"read_error\"", st->read_errors },
    };
    size_t n = sizeof m / sizeof m[0];
    if (n > cap)
        n = cap;
    memcpy(out, m, n * sizeof *m);
    return n;
}

static void tcp_close(ss_source *s, void (*done)(void *ctx), void *ctx)
{
    carbon_tcp *t = (carbon_tcp *)s;
    t->closing_started = 1;
    t->done = done;
    t->done_ctx = ctx;
    while (t->clients) {
        client *c = t->clients;
        carbon_stream_finish(&c->stream, pipeline_on_line, &c->src);
        client_close(c);
    }
    ss_join_add(&t->closing);
    ss_join_add(&t->closing);
    uv_close((uv_handle_t *)&t->sweep, on_server_closed);
    uv_close((uv_handle_t *)&t->server, on_server_closed);
    ss_join_arm(&t->closing);      /* drops the guard taken at create */
}

static const ss_source_ops tcp_ops = {
    .kind = "carbon_tcp",
    .port = tcp_port,
    .metrics = tcp_metrics,
    .close = tcp_close,
};

ss_source *carbon_tcp_create(uv_loop_t *loop, const char *host, int port,
                             const carbon_tcp_limits *lim, ss_pipeline *pipe,
                             char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    const char *why = NULL;
    if (ss_addr_resolve(host, port, &addr, &why) != 0) {
        ss_errf(err, errlen, "carbon_tcp: %s: %s", host, why);
        return NULL;
    }
    carbon_tcp *t = calloc(1, sizeof *t);
    char *rbuf = t ? malloc(lim->read_buffer < 4096 ? 4096 : lim->read_buffer) : NULL;
    if (!t || !rbuf) {
        free(t);
        ss_errf(err, errlen, "carbon_tcp: out of memory");
        return NULL;
    }
    t->base.ops = &tcp_ops;
    t->loop = loop;
    t->pipe = pipe;
    t->lim = *lim;
    t->rbuf = rbuf;
    if (t->lim.read_buffer < 4096)
        t->lim.read_buffer = 4096;
    if (t->lim.max_clients < 1)
        t->lim.max_clients = 1;
    if (t->lim.idle_timeout_s < 1)
        t->lim.idle_timeout_s = 1;
    ss_join_init(&t->closing, finish, t);
    uv_tcp_init(loop, &t->server);
    t->server.data = t;
    int rc = uv_tcp_bind(&t->server, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->server, 511, on_connection);
    if (rc != 0) {
        ss_errf(err, errlen, "carbon_tcp: cannot listen on %s:%d: %s", host, port,
                uv_strerror(rc));
        /* The handle must still be closed through the loop. */
        ss_join_add(&t->closing);
        uv_close((uv_handle_t *)&t->server, on_server_closed);
        ss_join_arm(&t->closing);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&t->server, (struct sockaddr *)&bound, &blen);
    t->port = ss_sockaddr_port((struct sockaddr *)&bound);
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    uv_timer_start(&t->sweep, on_sweep, 1000, 1000);
    return &t->base;
}

void carbon_tcp_fail_next_allocs(ss_source *s, int n)
{
    ((carbon_tcp *)s)->fail_allocs = n;
}
