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
    uint64_t refused_per_peer;
    uint64_t refused_source;
    uint64_t evicted_idle;      /* closed to make room for a new connection */
    uint64_t lost_bytes;        /* bytes of refused or evicted connections, not read as lines */
    uint64_t closed_idle;
    uint64_t read_errors;
} carbon_tcp_stats;

typedef struct carbon_tcp {
    ss_source base;
    uv_tcp_t server;
    uv_timer_t sweep;              /* closes idle clients once a second */
    uv_check_t turn;               /* after each loop turn: a new read budget */
    ss_turn_budget budget;         /* read this loop turn, all clients */
    size_t npaused;                /* clients waiting for the next turn */
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
    int64_t last_line_ms;          /* uv_now of the last complete line (or accept) */
    int paused;                    /* over the turn's read budget: resumes next turn */
    struct sockaddr_storage addr;  /* the sender */
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
    if (c->paused) {
        c->paused = 0;
        t->npaused--;
    }
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
    size_t len = ss_turn_budget_read_size(&t->budget, CARBON_TCP_TURN_US, CARBON_TCP_MIN_READ,
                                          t->lim.read_buffer);
    *buf = uv_buf_init(t->rbuf, (unsigned)len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client *c = s->data;
    carbon_tcp *t = c->owner;
    if (nread > 0) {
        ss_turn_budget_begin(&t->budget);
        pipeline_begin_batch(t->pipe);
        t->pipe->stats.bytes += (uint64_t)nread;
        /* Only complete lines count as activity: trickled bytes do not
         * keep a connection alive. */
        if (carbon_stream_feed(&c->stream, buf->base, (size_t)nread, pipeline_on_line, &c->src))
            c->last_line_ms = (int64_t)uv_now(t->loop);
        /* libuv reads a readable socket up to 32 times a turn: a flood
         * of costly lines would hold the loop for tens of ms. Past the
         * turn's budget this client waits for the next turn (the kernel
         * holds the rest), so timers, replies and other clients run. */
        if (ss_turn_budget_spend(&t->budget, (size_t)nread, CARBON_TCP_TURN_BYTES,
                                 CARBON_TCP_TURN_US) && !c->paused) {
            uv_read_stop(s);
            c->paused = 1;
            t->npaused++;
        }
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

/* After the loop's poll phase: the read budget starts over and clients
 * paused by it read again in the next turn. */
static void on_turn(uv_check_t *h)
{
    carbon_tcp *t = h->data;
    ss_turn_budget_reset(&t->budget);
    if (t->npaused == 0)
        return;
    for (client *c = t->clients; c; c = c->next)
        if (c->paused) {
            c->paused = 0;
            uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
        }
    t->npaused = 0;
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
static void count_lost(carbon_tcp *t, uv_tcp_t *h);

/* Bytes a connection we are about to close has already sent: counted as
 * lost (read and thrown away, never parsed). */
static void count_lost(carbon_tcp *t, uv_tcp_t *h)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)h, &fd) != 0)
        return;
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(fd, t->rbuf, t->lim.read_buffer, MSG_DONTWAIT);
        if (n <= 0)
            break;
        t->stats.lost_bytes += (uint64_t)n;
    }
}

/* At max_clients: the client that has gone longest without a complete line
 * (1 s at least: a sender that just connected is not cut off mid-report)
 * is closed to make room. Returns 1 when one was. */
static int evict_idlest(carbon_tcp *t)
{
    int64_t now = (int64_t)uv_now(t->loop);
    client *victim = NULL;
    for (client *c = t->clients; c; c = c->next)
        if (now - c->last_line_ms >= 1000 && (!victim || c->last_line_ms < victim->last_line_ms))
            victim = c;
    if (!victim)
        return 0;
    t->stats.evicted_idle++;
    t->stats.lost_bytes += victim->stream.carry_len;
    ss_debug("carbon tcp: closing %s (idle) to make room", victim->peer);
    client_close(victim);
    return 1;
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    return a->ss_family == AF_INET6 &&
           memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static int peer_clients(const carbon_tcp *t, const client *self)
{
    int n = 0;
    for (const client *c = t->clients; c; c = c->next)
        if (c != self && same_host(&c->addr, &self->addr))
            n++;
    return n;
}

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
    if (uv_accept((uv_stream_t *)&t->server, (uv_stream_t *)h) == 0) {
        (*counter)++;
        count_lost(t, h);
    }
    uv_close((uv_handle_t *)h, on_refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    carbon_tcp *t = server->data;
    if (status < 0) {
        ss_warn("carbon tcp: accept: %s", uv_strerror(status));
        return;
    }
    if (t->stats.open >= (uint64_t)t->lim.max_clients && !evict_idlest(t)) {
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
    int plen = sizeof c->addr;
    if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&c->addr, &plen) == 0)
        ss_sockaddr_host((struct sockaddr *)&c->addr, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
    if (t->lim.allow && !ss_cidr_list_allows(t->lim.allow, (struct sockaddr *)&c->addr)) {
        /* No cluster takes lines from this sender: not worth a read. */
        t->stats.refused_source++;
        count_lost(t, &c->handle);
        client_close(c);
        return;
    }
    if (t->lim.max_per_peer > 0 && peer_clients(t, c) >= t->lim.max_per_peer) {
        /* One address may not hold every slot. */
        t->stats.refused_per_peer++;
        count_lost(t, &c->handle);
        client_close(c);
        return;
    }
    carbon_stream_init(&c->stream, c->carry, t->lim.max_line);
    c->src.pipe = t->pipe;
    c->src.peer = c->peer;
    c->src.addr = (const struct sockaddr *)&c->addr;
    c->last_line_ms = (int64_t)uv_now(t->loop);
    t->stats.accepted++;
    uv_tcp_nodelay(&c->handle, 1);
    /* A fixed 1 MiB receive buffer: a report burst is taken in a few large
     * reads with fewer window updates (about a tenth less CPU per line on
     * loopback than autotuning). Only while few clients are connected: with
     * hundreds, the kernel's autotuning sizes each to what it needs. */
    if (t->stats.open <= CARBON_TCP_BIG_RCVBUF_CLIENTS) {
        int rcvbuf = 1 << 20;
        uv_recv_buffer_size((uv_handle_t *)&c->handle, &rcvbuf);
    }
    uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
}

static void on_sweep(uv_timer_t *timer)
{
    carbon_tcp *t = timer->data;
    int64_t now = (int64_t)uv_now(t->loop);
    int64_t limit = (int64_t)t->lim.idle_timeout_s * 1000;
    for (client *c = t->clients, *next; c; c = next) {
        next = c->next;
        if (now - c->last_line_ms >= limit) {
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
        { closed, "counter", closed_help, "reason=\"per_peer\"", st->refused_per_peer },
        { closed, "counter", closed_help, "reason=\"source_not_allowed\"", st->refused_source },
        { closed, "counter", closed_help, "reason=\"evicted_idle\"", st->evicted_idle },
        { closed, "counter", closed_help, "reason=\"idle\"", st->closed_idle },
        { closed, "counter", closed_help, "reason=\"read_error\"", st->read_errors },
        { "sparkscale_carbon_tcp_lost_bytes_total", "counter",
          "Bytes of refused or evicted carbon connections that were never read as lines.", NULL,
          st->lost_bytes },
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
    ss_join_add(&t->closing);
    uv_close((uv_handle_t *)&t->turn, on_server_closed);
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
    uv_check_init(loop, &t->turn);
    t->turn.data = t;
    uv_check_start(&t->turn, on_turn);
    uv_unref((uv_handle_t *)&t->turn);
    return &t->base;
}

void carbon_tcp_fail_next_allocs(ss_source *s, int n)
{
    ((carbon_tcp *)s)->fail_allocs = n;
}
