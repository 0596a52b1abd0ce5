/* http_server.c: the status API's HTTP/1.1 server: a strict, bounded request
 * parser (RFC 9112) and per-connection state machines on one libuv loop. */
#include "lib/http/server.h"

#include "lib/base/addr.h"
#include "lib/base/join.h"
#include "lib/http/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/base/log.h"
#include "lib/base/str.h"

#define DEFAULT_CTYPE "text/plain; charset=utf-8"
#define CTYPE_MAX 128
#define LINGER_MAX_MS 2000            /* draining after a final reply */
#define WRITE_HIGH_WATER (64 * 1024)  /* unsent reply bytes before we stop reading */
#define LISTEN_BACKLOG 511

struct ss_http_response {
    int status;     /* 0 = not set: 200 */
    int bad;        /* invalid status or content type */
    int nomem;      /* an append failed: the body is incomplete */
    char ctype[CTYPE_MAX];
    char *body;
    size_t len, cap;
    ss_http_more more;  /* set by ss_http_response_stream */
    void *more_state;
    void (*release)(void *state);
};

/* A reply sent in parts, one per loop turn once the previous part is written. */
typedef struct stream {
    ss_http_more more;  /* NULL: no reply streaming */
    void *state;
    void (*release)(void *state);
    int chunked;        /* HTTP/1.1 chunked framing; else the body ends at close */
    int close_after;
} stream;

/* OPEN: parsing requests. DRAINING: the last reply is queued; we shut down
 * our side and discard input until EOF or the linger timer, so the kernel
 * does not answer unread input with a RST that could destroy the reply.
 * CLOSED: uv_close called, memory freed when both handles report closed. */
enum conn_state { C_OPEN, C_DRAINING, C_CLOSED };

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    ss_http_server *srv;
    struct conn *prev, *next;
    enum conn_state state;
    int handles;        /* libuv handles not yet closed */
    int reading;
    int paused;         /* reading stopped until queued replies are written */
    int peer_eof;
    int shut_done;
    unsigned writes;    /* uv_write requests in flight */
    uint64_t skip;      /* request body bytes still to discard */
    uint64_t head_since;   /* uv_now when waiting for a request head began */
    uint64_t head_seq;     /* order of that start: uv_now is cached per loop turn */
    int requests;       /* answered on this connection */
    stream out;         /* a streamed reply in progress (reading paused meanwhile) */
    int want_part;      /* its previous part is written: the next one on the next turn */
    struct sockaddr_storage peer;
    size_t len;         /* bytes buffered in in[] */
    size_t scan;        /* in[0..scan) holds no end of head */
    char in[SS_HTTP_MAX_HEAD];
} conn;

struct ss_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    ss_http_handler handler;
    void *ctx;
    int port;
    uint64_t timeout_ms;
    uint64_t head_timeout_ms;
    size_t max_conns;
    size_t max_per_peer;
    uint64_t head_seq;
    conn *conns;        /* every connection not yet freed, closing ones too */
    uv_idle_t parts;    /* runs while a streamed reply waits for its next part */
    size_t want_parts;  /* connections with want_part set */
    ss_join live;       /* listener + connections + rejected sockets not yet freed */
    ss_http_stats st;
    int closing;
    void (*done)(void *);
    void *done_ctx;
};

typedef struct wreq {
    uv_write_t req;
    char *body;         /* owned */
    char head[512];
    char tail[16];      /* chunk framing after the body */
} wreq;

enum { F_CLOSE = 1, F_HEAD = 2, F_KEEPALIVE10 = 4, F_ALLOW = 8, F_STREAM = 16, F_HTTP10 = 32 };

static void process(conn *c);

/* ---- responses built by handlers ---- */

void ss_http_response_status(ss_http_response *res, int status, const char *content_type)
{
    if (status < 200 || status > 599) {
        /* 1xx are not final replies; anything else is not a status */
        res->bad = 1;
        return;
    }
    res->status = status;
    if (!content_type) {
        res->ctype[0] = '\0';
        return;
    }
    size_t n = strnlen(content_type, CTYPE_MAX);
    if (n == 0 || n == CTYPE_MAX) {
        res->bad = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)content_type[i];
        /* no CR/LF: a content type must not be able to inject header lines */
        if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
            res->bad = 1;
            return;
        }
    }
    memcpy(res->ctype, content_type, n + 1);
}

/* Makes room for extra more bytes (plus a NUL for vsnprintf). */
static int reserve(ss_http_response *res, size_t extra)
{
    if (res->nomem)
        return -ENOMEM;
    if (extra > SS_HTTP_MAX_RESPONSE - res->len) {
        res->nomem = 1;
        return -ENOMEM;
    }
    size_t need = res->len + extra + 1;
    if (need <= res->cap)
        return 0;
    size_t cap = res->cap ? res->cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > SS_HTTP_MAX_RESPONSE + 1)
        cap = SS_HTTP_MAX_RESPONSE + 1;
    char *b = realloc(res->body, cap);
    if (!b) {
        res->nomem = 1;
        return -ENOMEM;
    }
    res->body = b;
    res->cap = cap;
    return 0;
}

int ss_http_response_append(ss_http_response *res, const char *data, size_t len)
{
    int r = reserve(res, len);
    if (r < 0)
        return r;
    if (len)
        memcpy(res->body + res->len, data, len);
    res->len += len;
    return 0;
}

int ss_http_response_vprintf(ss_http_response *res, const char *fmt, va_list ap)
{
    if (res->nomem)
        return -ENOMEM;
    size_t room = res->cap - res->len;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(res->body ? res->body + res->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        res->bad = 1;
        return -EINVAL;
    }
    if ((size_t)n >= room) {
        int r = reserve(res, (size_t)n);
        if (r < 0)
            return r;
        vsnprintf(res->body + res->len, res->cap - res->len, fmt, ap);
    }
    res->len += (size_t)n;
    return 0;
}

int ss_http_response_printf(ss_http_response *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = ss_http_response_vprintf(res, fmt, ap);
    va_end(ap);
    return r;
}

size_t ss_http_response_len(const ss_http_response *res)
{
    return res->len;
}

void ss_http_response_stream(ss_http_response *res, ss_http_more more, void *state,
                             void (*release)(void *state))
{
    if (res->more && res->release)
        res->release(res->more_state);
    res->more = more;
    res->more_state = state;
    res->release = release;
}

static void stream_release(stream *o)
{
    if (o->more && o->release)
        o->release(o->state);
    o->more = NULL;
}

/* ---- connections ---- */

/* The listener and every connection have closed. */
static void srv_finish(void *ctx)
{
    ss_http_server *s = ctx;
    void (*done)(void *) = s->done;
    void *done_ctx = s->done_ctx;
    free(s);
    if (done)
        done(done_ctx);
}

static void srv_unref(ss_http_server *s)
{
    ss_join_leave(&s->live);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles > 0)
        return;
    ss_http_server *s = c->srv;
    stream_release(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    srv_unref(s);
}

static void conn_close(conn *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    c->srv->st.open--;
    if (c->want_part) {
        c->want_part = 0;
        c->srv->want_parts--;
    }
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state == C_OPEN)
        c->srv->st.timeouts++;
    conn_close(c);
}

static void arm_timer(conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    if (c->state == C_OPEN)
        *buf = uv_buf_init(c->in + c->len, (unsigned)(sizeof c->in - c->len));
    else
        *buf = uv_buf_init(c->in, sizeof c->in); /* draining: scratch space */
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void start_reading(conn *c)
{
    if (c->reading || c->peer_eof || c->state == C_CLOSED)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void stop_reading(conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->handle->data;
    if (c->state == C_CLOSED)
        return;
    if (status < 0 || c->peer_eof) {
        conn_close(c);
        return;
    }
    c->shut_done = 1;
}

/* The last reply is queued: send FIN after it, then wait (bounded) for the
 * peer's EOF while discarding what it still sends. */
static void begin_drain(conn *c)
{
    if (c->state != C_OPEN)
        return;
    c->state = C_DRAINING;
    c->len = 0;
    c->skip = 0;
    c->paused = 0;
    uint64_t t = c->srv->timeout_ms;
    arm_timer(c, t < LINGER_MAX_MS ? t : LINGER_MAX_MS);
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    start_reading(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = st->data;
    if (nread == 0 || c->state == C_CLOSED)
        return;
    if (nread == UV_EOF) {
        c->peer_eof = 1;
        stop_reading(c);
        if (c->state == C_OPEN && c->writes > 0)
            begin_drain(c); /* a half-closed client still gets its replies */
        else if (c->state == C_OPEN || c->shut_done)
            conn_close(c);
        return; /* else on_shutdown closes */
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->state != C_OPEN)
        return;
    c->len += (size_t)nread;
    process(c);
}

static void stream_next(conn *c);

/* One part per streamed reply per loop turn. libuv runs a write's callback
 * up to nine times in one turn when the socket takes every write at once,
 * so producing the next part from the callback made nine parts (several
 * milliseconds of /v1/clusters or /metrics) in a row. The idle handle runs
 * once a turn and keeps the loop from blocking while a part is wanted. */
static void on_parts(uv_idle_t *h)
{
    ss_http_server *s = h->data;
    for (conn *c = s->conns, *next; c && s->want_parts > 0; c = next) {
        next = c->next;
        if (!c->want_part)
            continue;
        c->want_part = 0;
        s->want_parts--;
        if (c->state == C_OPEN && c->out.more && c->writes == 0)
            stream_next(c);
    }
    if (s->want_parts == 0)
        uv_idle_stop(h);
}

static void want_part(conn *c)
{
    ss_http_server *s = c->srv;
    if (c->want_part)
        return;
    c->want_part = 1;
    if (s->want_parts++ == 0)
        uv_idle_start(&s->parts, on_parts);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = req->handle->data;
    free(w->body);
    free(w);
    c->writes--;
    if (c->state == C_CLOSED)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state != C_OPEN)
        return;
    if (c->out.more) {
        arm_timer(c, c->srv->timeout_ms);   /* the client reads: progress */
        if (c->writes == 0)
            want_part(c);
        return;
    }
    /* The client is reading its replies: progress, but the next head keeps
     * its own deadline. */
    uint64_t left = c->srv->head_timeout_ms;
    uint64_t waited = uv_now(c->srv->loop) - c->head_since;
    arm_timer(c, waited < left ? (left - waited > c->srv->timeout_ms ? left - waited
                                                                      : c->srv->timeout_ms)
                               : c->srv->timeout_ms);
    if (c->paused && c->writes == 0) {
        c->paused = 0;
        process(c);
        if (c->state == C_OPEN && !c->paused)
            start_reading(c);
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/* IMF-fixdate (RFC 9110 5.6.7), independent of the C locale. */
static void http_date(char *out, size_t outlen)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

/* Queues one reply. Takes body (malloc'd or NULL). Returns 0 or a uv error,
 * in which case the connection is closed. */
static int queue_reply(conn *c, int status, const char *ctype, char *body, size_t len,
                       unsigned flags)
{
    wreq *w = malloc(sizeof *w);
    if (!w) {
        free(body);
        conn_close(c);
        return UV_ENOMEM;
    }
    char date[64];
    http_date(date, sizeof date);
    /* RFC 9110 6.4.1: 204 and 304 carry no content */
    int nobody = status == 204 || status == 304;
    int n = snprintf(w->head, sizeof w->head, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                     reason(status), date);
    if (!nobody && (flags & F_STREAM))
        n += snprintf(w->head + n, sizeof w->head - (size_t)n, "Content-Type: %s\r\n%s", ctype,
                      (flags & F_HTTP10) ? "" : "Transfer-Encoding: chunked\r\n");
    else if (!nobody)
        n += snprintf(w->head + n, sizeof w->head - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, len);
    n += snprintf(w->head + n, sizeof w->head - (size_t)n, "%s%s\r\n",
                  (flags & F_CLOSE) ? "Connection: close\r\n"
                  : (flags & F_KEEPALIVE10) ? "Connection: keep-alive\r\n"
                                            : "",
                  (flags & F_ALLOW) ? "Allow: GET, HEAD\r\n" : "");
    size_t send_len = (nobody || (flags & F_HEAD)) ? 0 : len;
    w->body = body;
    w->tail[0] = '\0';
    if (send_len && (flags & F_STREAM) && !(flags & F_HTTP10)) {   /* the first chunk */
        n += snprintf(w->head + n, sizeof w->head - (size_t)n, "%zx\r\n", send_len);
        memcpy(w->tail, "\r\n", 3);
    }
    uv_buf_t bufs[3] = { uv_buf_init(w->head, (unsigned)n),
                         uv_buf_init(body, (unsigned)send_len),
                         uv_buf_init(w->tail, (unsigned)strlen(w->tail)) };
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, send_len ? (w->tail[0] ? 3 : 2) : 1,
                     on_write);
    if (r < 0) {
        free(body);
        free(w);
        conn_close(c);
        return r;
    }
    c->writes++;
    c->srv->st.requests++;
    return 0;
}

static int reply_error(conn *c, int status, unsigned flags)
{
    c->srv->st.bad_requests++;
    char text[64];
    int n = snprintf(text, sizeof text, "%d %s\n", status, reason(status));
    char *body = malloc((size_t)n);
    if (body)
        memcpy(body, text, (size_t)n);
    return queue_reply(c, status, DEFAULT_CTYPE, body, body ? (size_t)n : 0, flags);
}

/* One part of a streamed reply: a chunk (HTTP/1.1) or raw bytes (1.0, whose
 * body ends when the connection closes); the last part ends the chunking. */
static int queue_part(conn *c, char *body, size_t len, int last)
{
    wreq *w = malloc(sizeof *w);
    if (!w) {
        free(body);
        conn_close(c);
        return UV_ENOMEM;
    }
    w->body = body;
    int n = 0;
    w->tail[0] = '\0';
    if (c->out.chunked) {
        if (len) {
            n = snprintf(w->head, sizeof w->head, "%zx\r\n", len);
            strcat(w->tail, "\r\n");
        }
        if (last)
            strcat(w->tail, "0\r\n\r\n");
    }
    uv_buf_t bufs[3];
    unsigned nb = 0;
    if (n)
        bufs[nb++] = uv_buf_init(w->head, (unsigned)n);
    if (len)
        bufs[nb++] = uv_buf_init(body, (unsigned)len);
    if (w->tail[0])
        bufs[nb++] = uv_buf_init(w->tail, (unsigned)strlen(w->tail));
    if (nb == 0) {
        free(body);
        free(w);
        return 0;
    }
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nb, on_write);
    if (r < 0) {
        free(body);
        free(w);
        conn_close(c);
        return r;
    }
    c->writes++;
    return 0;
}

/* A streamed reply is complete: the connection ends, or waits for the
 * next request once the last part is written (on_write resumes it). */
static void stream_done(conn *c)
{
    int close_after = c->out.close_after;
    stream_release(&c->out);
    if (close_after) {
        begin_drain(c);
        return;
    }
    c->head_since = uv_now(c->srv->loop);
    c->head_seq = ++c->srv->head_seq;
    if (c->writes == 0) {   /* nothing left in flight to resume us */
        c->paused = 0;
        arm_timer(c, c->srv->head_timeout_ms);
        process(c);
        if (c->state == C_OPEN && !c->paused)
            start_reading(c);
    }
}

/* The previous part is written: ask the handler for the next one.  A step
 * that fails part-way cannot change the status already sent, so the
 * connection is closed without the final chunk: the client sees a
 * truncated reply, never a short one that looks whole. */
static void stream_next(conn *c)
{
    ss_http_response r;
    memset(&r, 0, sizeof r);
    int more;
    do
        more = c->out.more(c->out.state, &r);
    while (more > 0 && r.len == 0 && !r.nomem && !r.bad);
    if (more < 0 || r.nomem || r.bad) {
        ss_warn("http: a streamed reply failed part-way (%s); connection closed",
                r.nomem ? "out of memory or too large" : "handler error");
        free(r.body);
        conn_close(c);
        return;
    }
    if (queue_part(c, r.body, r.len, !more) < 0)
        return;
    if (!more)
        stream_done(c);
}

static void consume(conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->len - n);
    c->len -= n;
    c->scan = 0;
}

/* Offset just past the empty line ending the head, or 0 if not there yet. */
static size_t find_head_end(conn *c)
{
    size_t end = ss_http_head_end(c->in, c->len, c->scan);
    if (!end)
        c->scan = c->len;
    return end;
}

static void handle_request(conn *c, size_t end)
{
    ss_http_server *s = c->srv;
    ss_http_head h;
    memset(&h, 0, sizeof h);
    int err = ss_http_parse_head(c->in, end, &h);
    if (err) {
        if (reply_error(c, err, F_CLOSE) == 0)
            begin_drain(c);
        return;
    }
    int is_get = strcmp(h.method, "GET") == 0;
    int is_head = strcmp(h.method, "HEAD") == 0;
    int keep = h.minor >= 1 ? !h.conn_close : (h.conn_keep_alive && !h.conn_close);
    uint64_t body = h.has_content_length ? h.content_length : 0;
    /* A client that sent Expect may not send the body once it sees a final
     * reply, so the framing of what follows is unknown: close. */
    if (body > SS_HTTP_MAX_SKIP_BODY || (body > 0 && h.expect))
        keep = 0;
    unsigned flags = (keep ? 0 : F_CLOSE) | (is_head ? F_HEAD : 0)
                     | (keep && h.minor == 0 ? F_KEEPALIVE10 : 0);
    int r;
    if (!is_get && !is_head) {
        r = reply_error(c, 405, flags | F_ALLOW);
    } else if (body > SS_HTTP_MAX_SKIP_BODY) {
        r = reply_error(c, 413, flags);
    } else {
        ss_http_response res;
        memset(&res, 0, sizeof res);
        ss_http_request req = { h.method, h.path, h.query };
        s->handler(s->ctx, &req, &res);
        if (c->state != C_OPEN) { /* the handler closed the server */
            free(res.body);
            if (res.more && res.release)
                res.release(res.more_state);
            return;
        }
        if (res.bad || res.nomem) {
            ss_warn("http: handler for %s %s failed to build a reply (%s)", h.method, h.path,
                    res.nomem ? "out of memory or too large" : "invalid status or content type");
            free(res.body);
            if (res.more && res.release)
                res.release(res.more_state);
            r = reply_error(c, 500, flags);
        } else if (res.more) {
            if (h.minor == 0 && !is_head) {   /* no chunking in 1.0: the close ends the body */
                flags = (flags & ~(unsigned)F_KEEPALIVE10) | F_CLOSE | F_HTTP10;
                keep = 0;
            }
            c->out = (stream){ res.more, res.more_state, res.release, !(flags & F_HTTP10), !keep };
            r = queue_reply(c, res.status ? res.status : 200, res.ctype[0] ? res.ctype : DEFAULT_CTYPE,
                            res.body, res.len, flags | F_STREAM);
            if (r == 0 && is_head) {
                stream_release(&c->out);   /* the head only */
            } else if (r == 0) {
                /* later requests wait until the whole reply is out */
                consume(c, end);
                c->skip = body;
                c->requests++;
                c->paused = 1;
                stop_reading(c);
                arm_timer(c, s->timeout_ms);
                return;
            }
        } else {
            r = queue_reply(c, res.status ? res.status : 200, res.ctype[0] ? res.ctype : DEFAULT_CTYPE,
                            res.body, res.len, flags);
        }
    }
    if (r < 0 || c->state != C_OPEN)
        return;
    if (!keep) {
        begin_drain(c);
        return;
    }
    consume(c, end);
    c->skip = body;
    c->requests++;
    /* The next head has its own deadline: a trickling client cannot hold a
     * slot by sending a byte now and then. */
    c->head_since = uv_now(s->loop);
    c->head_seq = ++s->head_seq;
    arm_timer(c, s->head_timeout_ms);
    /* backpressure: a pipelining client that does not read its replies
     * must not make us buffer without bound */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_HIGH_WATER) {
        c->paused = 1;
        stop_reading(c);
    }
}

static void process(conn *c)
{
    while (c->state == C_OPEN && !c->paused) {
        if (c->skip > 0) {
            size_t n = c->skip < c->len ? (size_t)c->skip : c->len;
            consume(c, n);
            c->skip -= n;
            if (c->skip > 0)
                return;
        }
        /* RFC 9112 2.2: ignore empty lines before a request-line */
        size_t lead = 0;
        while (lead < c->len) {
            if (c->in[lead] == '\n')
                lead++;
            else if (c->in[lead] == '\r' && lead + 1 < c->len && c->in[lead + 1] == '\n')
                lead += 2;
            else
                break;
        }
        if (lead)
            consume(c, lead);
        if (c->len == 0)
            return;
        size_t end = find_head_end(c);
        if (end == 0) {
            if (c->len == sizeof c->in) {
                int status = memchr(c->in, '\n', c->len) ? 431 : 414;
                if (reply_error(c, status, F_CLOSE) == 0)
                    begin_drain(c);
            }
            return;
        }
        handle_request(c, end);
    }
}

/* ---- listener ---- */

static void on_reject_closed(uv_handle_t *h)
{
    ss_http_server *s = h->data;
    free(h);
    srv_unref(s);
}

/* Over the limit: accept (libuv stops polling the listener until we do),
 * say 503 if the socket takes it at once, and close. */
static void reject(ss_http_server *s)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t || uv_tcp_init(s->loop, t) < 0) {
        free(t);
        ss_error("http: out of memory rejecting a connection");
        return;
    }
    t->data = s;
    ss_join_add(&s->live);
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t) == 0) {
        s->st.rejected++;
        uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
        (void)uv_try_write((uv_stream_t *)t, &b, 1);
    }
    uv_close((uv_handle_t *)t, on_reject_closed);
}

/* When every slot is taken: the connection that has waited longest for a
 * request head it has not completed goes, so slow or silent clients cannot
 * lock out a probe. Returns 1 when one was closed. */
static int evict_slowest(ss_http_server *s)
{
    conn *victim = NULL;
    for (conn *c = s->conns; c; c = c->next)
        if (c->state == C_OPEN && c->writes == 0 && c->skip == 0 &&
            (!victim || c->head_seq < victim->head_seq))
            victim = c;
    if (!victim)
        return 0;
    s->st.evicted++;
    conn_close(victim);
    return 1;
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 0;
}

static size_t peer_conns(const ss_http_server *s, const conn *self)
{
    size_t n = 0;
    for (const conn *c = s->conns; c; c = c->next)
        if (c != self && c->state != C_CLOSED && same_host(&c->peer, &self->peer))
            n++;
    return n;
}

static void on_connection(uv_stream_t *l, int status)
{
    ss_http_server *s = l->data;
    if (status < 0) {
        ss_warn("http: accept: %s", uv_strerror(status));
        return;
    }
    if (s->st.open >= s->max_conns && !evict_slowest(s)) {
        reject(s);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(s->loop, &c->tcp) < 0) {
        free(c);
        reject(s);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->srv = s;
    c->handles = 2;
    c->state = C_OPEN;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    ss_join_add(&s->live);
    s->st.open++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    int plen = sizeof c->peer;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen) == 0 &&
        peer_conns(s, c) >= s->max_per_peer) {
        /* One peer may not take every slot. */
        s->st.rejected_per_peer++;
        conn_close(c);
        return;
    }
    s->st.accepted++;
    /* replies are single writes; no reason to wait for Nagle */
    uv_tcp_nodelay(&c->tcp, 1);
    c->head_since = uv_now(s->loop);
    c->head_seq = ++s->head_seq;
    arm_timer(c, s->head_timeout_ms);
    start_reading(c);
}

/* The listener's and the idle handle's close callback. */
static void on_listener_closed(uv_handle_t *h)
{
    srv_unref(h->data);
}

ss_http_server *ss_http_server_create(uv_loop_t *loop, const char *host, int port,
                                      ss_http_handler handler, void *ctx,
                                      char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    if (!loop || !host || !handler || port < 0 || port > 65535) {
        ss_errf(err, errlen, "http: invalid arguments");
        return NULL;
    }
    const char *why = NULL;
    if (ss_addr_resolve(host, port, &addr, &why) < 0) {
        ss_errf(err, errlen, "http: %s: %s", host, why);
        return NULL;
    }
    ss_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        ss_errf(err, errlen, "http: out of memory");
        return NULL;
    }
    s->loop = loop;
    s->handler = handler;
    s->ctx = ctx;
    s->timeout_ms = SS_HTTP_DEFAULT_TIMEOUT_MS;
    s->max_conns = SS_HTTP_DEFAULT_MAX_CONNS;
    s->head_timeout_ms = SS_HTTP_DEFAULT_HEAD_TIMEOUT_MS;
    s->max_per_peer = SS_HTTP_DEFAULT_MAX_PER_PEER;
    int r = uv_tcp_init(loop, &s->listener);
    if (r < 0) {
        ss_errf(err, errlen, "http: %s", uv_strerror(r));
        free(s);
        return NULL;
    }
    s->listener.data = s;
    ss_join_init(&s->live, srv_finish, s);   /* the listener's reference */
    uv_idle_init(loop, &s->parts);
    s->parts.data = s;
    ss_join_add(&s->live);                   /* the idle handle's */
    r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (r == 0) {
        struct sockaddr_storage bound;
        int len = sizeof bound;
        r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
        if (r == 0)
            s->port = ss_sockaddr_port((struct sockaddr *)&bound);
    }
    if (r < 0) {
        ss_errf(err, errlen, "http: cannot listen on %s port %d: %s", host, port, uv_strerror(r));
        s->closing = 1;
        uv_close((uv_handle_t *)&s->parts, on_listener_closed);
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return NULL;
    }
    return s;
}

int ss_http_server_port(const ss_http_server *s)
{
    return s->port;
}

void ss_http_server_set_timeout(ss_http_server *s, uint64_t timeout_ms)
{
    s->timeout_ms = timeout_ms ? timeout_ms : SS_HTTP_DEFAULT_TIMEOUT_MS;
    if (s->head_timeout_ms > s->timeout_ms)
        s->head_timeout_ms = s->timeout_ms;   /* a head never waits longer than anything */
}

void ss_http_server_set_max_connections(ss_http_server *s, size_t max_conns)
{
    s->max_conns = max_conns ? max_conns : SS_HTTP_DEFAULT_MAX_CONNS;
}

void ss_http_server_set_head_timeout(ss_http_server *s, uint64_t ms)
{
    s->head_timeout_ms = ms ? ms : SS_HTTP_DEFAULT_HEAD_TIMEOUT_MS;
    if (s->head_timeout_ms > s->timeout_ms)
        s->head_timeout_ms = s->timeout_ms;
}

void ss_http_server_set_max_per_peer(ss_http_server *s, size_t n)
{
    s->max_per_peer = n ? n : SS_HTTP_DEFAULT_MAX_PER_PEER;
}

void ss_http_server_stats(const ss_http_server *s, ss_http_stats *out)
{
    *out = s->st;
}

void ss_http_server_close(ss_http_server *s, void (*done)(void *ctx), void *ctx)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->done = done;
    s->done_ctx = ctx;
    uv_close((uv_handle_t *)&s->parts, on_listener_closed);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
}
