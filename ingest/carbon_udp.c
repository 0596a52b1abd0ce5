/* carbon_udp.c: carbon plaintext over UDP. Spark's GraphiteSink sends one
 * line per datagram; several lines in one datagram are accepted too. Each
 * datagram is a stream of its own: no partial line carries over. */
#include "ingest/carbon_udp.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/sock_diag.h>

#include "lib/base/addr.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

#define UDP_BUFFER 65536
/* Bytes received in one loop turn before the rest waits for the next. */
#define CARBON_UDP_TURN_BYTES (256u * 1024)
#define CARBON_UDP_TURN_US 1000

typedef struct carbon_udp_stats {
    uint64_t datagrams;
    uint64_t truncated;         /* datagram larger than the buffer */
    uint64_t errors;
    uint64_t refused_source;    /* datagrams from senders no cluster allows */
    uint64_t lost_bytes;        /* their bytes */
} carbon_udp_stats;

typedef struct carbon_udp {
    ss_source base;
    uv_udp_t handle;
    ss_pipeline *pipe;
    const ss_cidr_list *allow;
    carbon_udp_stats stats;
    size_t max_line;
    int port;
    char *carry;                   /* max_line bytes, reused per datagram */
    uv_check_t turn;               /* after each loop turn: a new read budget */
    ss_turn_budget budget;         /* received this loop turn */
    int paused;                    /* over the budget: receiving again next turn */
    int closing;
    int handles;                   /* initialised handles not yet closed */
    char rbuf[UDP_BUFFER];
    void (*done)(void *);
    void *done_ctx;
} carbon_udp;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    carbon_udp *u = h->data;
    (void)suggested;
    *buf = uv_buf_init(u->rbuf, sizeof u->rbuf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags)
{
    carbon_udp *u = h->data;
    if (nread < 0) {
        u->stats.errors++;
        ss_debug("carbon udp: recv: %s", uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || !addr)
        return;                     /* nothing more to read this round */
    u->stats.datagrams++;
    if (flags & UV_UDP_PARTIAL) {
        /* A datagram bigger than 64 KiB: the tail is lost, and the last line
         * in the buffer is cut. Count it; the cut line fails to parse. */
        u->stats.truncated++;
    }
    if (u->allow && !ss_cidr_list_allows(u->allow, addr)) {
        u->stats.refused_source++;
        u->stats.lost_bytes += (uint64_t)nread;
        return;
    }
    char peer[64];
    ss_sockaddr_host(addr, peer, sizeof peer);
    pipeline_source src = { .pipe = u->pipe, .peer = peer, .addr = addr };
    ss_turn_budget_begin(&u->budget);
    pipeline_begin_batch(u->pipe);
    u->pipe->stats.bytes += (uint64_t)nread;
    pipeline_feed_datagram(&src, buf->base, (size_t)nread, u->carry, u->max_line);
    /* As for TCP: past the turn's budget, the rest waits in the socket
     * buffer for the next turn instead of holding the loop. */
    if (ss_turn_budget_spend(&u->budget, (size_t)nread, CARBON_UDP_TURN_BYTES, CARBON_UDP_TURN_US)
        && !u->paused) {
        uv_udp_recv_stop(&u->handle);
        u->paused = 1;
    }
}

static void on_turn(uv_check_t *h)
{
    carbon_udp *u = h->data;
    ss_turn_budget_reset(&u->budget);
    if (u->paused && !u->closing) {
        u->paused = 0;
        uv_udp_recv_start(&u->handle, on_alloc, on_recv);
    }
}

static void on_closed(uv_handle_t *h)
{
    carbon_udp *u = h->data;
    if (--u->handles > 0)
        return;
    void (*done)(void *) = u->done;
    void *ctx = u->done_ctx;
    free(u->carry);
    free(u);
    if (done)
        done(ctx);
}

static int udp_port(const ss_source *s) { return ((const carbon_udp *)s)->port; }

/* Datagrams the kernel dropped for our socket (receive buffer full), from
 * the socket itself (SO_MEMINFO, one system call). Lines lost there never
 * reach us, so they are counted here. Reading /proc/net/udp instead walks
 * every UDP socket of the host under a lock on each scrape: with many
 * sockets that stalled the loop for tens of milliseconds. */
static uint64_t kernel_drops(const carbon_udp *u)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&u->handle, &fd) != 0)
        return 0;
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof mem;
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0
        || len < (socklen_t)((SK_MEMINFO_DROPS + 1) * sizeof mem[0]))
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

static size_t udp_metrics(const ss_source *s, ss_source_metric *out, size_t cap)
{
    const carbon_udp_stats *st = &((const carbon_udp *)s)->stats;
    const ss_source_metric m[] = {
        { "sparkscale_carbon_udp_datagrams_total", "counter", "Carbon UDP datagrams received.",
          NULL, st->datagrams },
        { "sparkscale_carbon_udp_truncated_total", "counter",
          "UDP datagrams larger than 64 KiB (tail lost).", NULL, st->truncated },
        { "sparkscale_carbon_udp_errors_total", "counter", "UDP receive errors.", NULL,
          st->errors },
        { "sparkscale_carbon_udp_kernel_drops_total", "counter",
          "Datagrams the kernel dropped for the carbon UDP socket (receive buffer full).", NULL,
          kernel_drops((const carbon_udp *)s) },
        { "sparkscale_carbon_udp_refused_total", "counter",
          "Datagrams from senders no cluster allows (allowed_sources), dropped unread.", NULL,
          st->refused_source },
        { "sparkscale_carbon_udp_lost_bytes_total", "counter",
          "Bytes of refused datagrams.", NULL, st->lost_bytes },
    };
    size_t n = sizeof m / sizeof m[0];
    if (n > cap)
        n = cap;
    memcpy(out, m, n * sizeof *m);
    return n;
}

static void udp_close(ss_source *s, void (*done)(void *ctx), void *ctx)
{
    carbon_udp *u = (carbon_udp *)s;
    u->done = done;
    u->done_ctx = ctx;
    u->closing = 1;
    uv_udp_recv_stop(&u->handle);
    uv_close((uv_handle_t *)&u->handle, on_closed);
    uv_close((uv_handle_t *)&u->turn, on_closed);
}

static const ss_source_ops udp_ops = {
    .kind = "carbon_udp",
    .port = udp_port,
    .metrics = udp_metrics,
    .close = udp_close,
};

ss_source *carbon_udp_create(uv_loop_t *loop, const char *host, int port, size_t max_line,
                             const ss_cidr_list *allow, ss_pipeline *pipe, char *err,
                             size_t errlen)
{
    struct sockaddr_storage addr;
    const char *why = NULL;
    if (ss_addr_resolve(host, port, &addr, &why) != 0) {
        ss_errf(err, errlen, "carbon_udp: %s: %s", host, why);
        return NULL;
    }
    carbon_udp *u = calloc(1, sizeof *u);
    char *carry = malloc(max_line);
    if (!u || !carry) {
        free(u);
        free(carry);
        ss_errf(err, errlen, "carbon_udp: out of memory");
        return NULL;
    }
    u->base.ops = &udp_ops;
    u->carry = carry;
    u->max_line = max_line;
    u->pipe = pipe;
    u->allow = allow;
    uv_udp_init(loop, &u->handle);
    u->handle.data = u;
    u->handles = 1;
    int rc = uv_udp_bind(&u->handle, (struct sockaddr *)&addr, 0);
    if (rc == 0) {
        /* Bursts of one-line datagrams arrive faster than one loop turn. */
        int size = 4 << 20;
        uv_recv_buffer_size((uv_handle_t *)&u->handle, &size);
        rc = uv_udp_recv_start(&u->handle, on_alloc, on_recv);
    }
    if (rc != 0) {
        ss_errf(err, errlen, "carbon_udp: cannot bind %s:%d: %s", host, port, uv_strerror(rc));
        uv_close((uv_handle_t *)&u->handle, on_closed);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_udp_getsockname(&u->handle, (struct sockaddr *)&bound, &blen);
    u->port = ss_sockaddr_port((struct sockaddr *)&bound);
    uv_check_init(loop, &u->turn);
    u->turn.data = u;
    u->handles++;
    uv_check_start(&u->turn, on_turn);
    uv_unref((uv_handle_t *)&u->turn);
    return &u->base;
}
