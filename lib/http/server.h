/* http_server.h: a small strict HTTP/1.1 server on a libuv loop for the
 * status API (/healthz, /metrics, /v1/...): GET/HEAD only, bounded, keep-alive. */
#ifndef SS_HTTP_SERVER_H
#define SS_HTTP_SERVER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/http/parse.h"

/* Limits (RFC 9112 leaves them to the server; these suit a status API). */
#define SS_HTTP_MAX_HEAD 8192             /* request line + headers, bytes -> 431/414 */
#define SS_HTTP_MAX_SKIP_BODY 65536       /* larger request bodies: answer, then close */
#define SS_HTTP_MAX_RESPONSE (32u << 20)  /* response body cap; over it the reply is 500 */
#define SS_HTTP_DEFAULT_MAX_CONNS 256
#define SS_HTTP_DEFAULT_TIMEOUT_MS 10000
#define SS_HTTP_DEFAULT_HEAD_TIMEOUT_MS 5000  /* a request head must be complete by then */
#define SS_HTTP_DEFAULT_MAX_PER_PEER 16

typedef struct ss_http_server ss_http_server;

/* One routed request (GET or HEAD). All strings are NUL-terminated, owned by
 * the server and valid only during the handler call. query is the text after
 * the first '?' ("" if none), not percent-decoded. */
typedef struct ss_http_request {
    const char *method;  /* "GET" or "HEAD" */
    const char *path;    /* starts with '/' */
    const char *query;
} ss_http_request;

/* The reply being built by a handler: status, content type and a growable
 * body. Owned by the server. For HEAD the body is measured but not sent. */
typedef struct ss_http_response ss_http_response;

/* Called on the loop thread for every GET/HEAD request, in arrival order per
 * connection. Must not block. A handler that sets no status replies 200 with
 * text/plain; unknown routes are the handler's to answer (404). */
typedef void (*ss_http_handler)(void *ctx, const ss_http_request *req, ss_http_response *res);

/* Sets status (200..599) and Content-Type (NULL = "text/plain; charset=utf-8";
 * copied, at most 127 bytes, no control characters). An invalid value makes the
 * reply a 500. */
void ss_http_response_status(ss_http_response *res, int status, const char *content_type);
/* Append body bytes. Return 0, or -ENOMEM (allocation failure or body over
 * SS_HTTP_MAX_RESPONSE); after a failure the whole reply becomes a 500 so a
 * client never sees a truncated body. */
int ss_http_response_append(ss_http_response *res, const char *data, size_t len);
int ss_http_response_printf(ss_http_response *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ss_http_response_vprintf(ss_http_response *res, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Bytes in the body so far. */
size_t ss_http_response_len(const ss_http_response *res);

/* A reply too large to build in one loop turn is streamed: the handler sets
 * the status and appends the first part as usual, then calls this.  Once a
 * part is written to the socket, the server calls more(state, res) with an
 * empty res on a later loop turn; more appends the next part and returns 1,
 * or appends the last (possibly nothing) and returns 0; -1 aborts (the
 * connection is closed, the client sees an incomplete reply).  A part that
 * returns 1 having appended nothing is asked again at once.  release(state)
 * runs exactly once: after the last part, on abort, or when the connection
 * closes first.  HTTP/1.1 replies use chunked transfer coding (a HEAD gets
 * the head alone); for HTTP/1.0 the body ends when the connection closes.
 * Later pipelined requests on the connection wait until the reply is done,
 * and a client that stops reading holds one part in memory, no more. */
typedef int (*ss_http_more)(void *state, ss_http_response *res);
void ss_http_response_stream(ss_http_response *res, ss_http_more more, void *state,
                             void (*release)(void *state));

/* Listens on host:port. host is a numeric IPv4 or IPv6 address ("127.0.0.1",
 * "::1", "[::1]", "0.0.0.0", "::") or "localhost"; port 0 picks a free port.
 * handler/ctx are borrowed until the done callback of ss_http_server_close.
 * Returns NULL on error with a message in err (err may be NULL); a handle
 * already created is then closed and freed when the loop next runs. */
ss_http_server *ss_http_server_create(uv_loop_t *loop, const char *host, int port,
                                      ss_http_handler handler, void *ctx,
                                      char *err, size_t errlen);
/* The bound port (the chosen one when created with port 0). */
int ss_http_server_port(const ss_http_server *s);
/* A connection is closed when it has not completed a request (or a response
 * write) within timeout_ms: slow or idle clients cannot hold a slot forever.
 * Applies from the next timer start. 0 = default. */
void ss_http_server_set_timeout(ss_http_server *s, uint64_t timeout_ms);
/* At this many connections, a new one takes the slot of the connection that
 * has waited longest for a request head it has not completed; with none
 * such, it is answered 503 and closed. 0 = default. */
void ss_http_server_set_max_connections(ss_http_server *s, size_t max_conns);
/* Each request head (the first, and every one after a reply) must be
 * complete within ms of when the server started waiting for it, however
 * the bytes trickle in (slowloris). 0 = default. */
void ss_http_server_set_head_timeout(ss_http_server *s, uint64_t ms);
/* Connections one peer address may hold; more are closed at once. 0 = default. */
void ss_http_server_set_max_per_peer(ss_http_server *s, size_t n);

typedef struct ss_http_stats {
    uint64_t accepted;      /* connections served */
    uint64_t rejected;      /* over the connection limit, closed at once */
    uint64_t requests;      /* requests answered (any status) */
    uint64_t bad_requests;  /* 4xx/5xx written by the server itself */
    uint64_t timeouts;      /* connections closed by the idle/slow timer */
    uint64_t evicted;       /* slow connections closed to make room for a new one */
    uint64_t rejected_per_peer; /* over max_per_peer, closed at once */
    size_t open;            /* connections currently open */
} ss_http_stats;
void ss_http_server_stats(const ss_http_server *s, ss_http_stats *out);

/* Stops listening and closes every connection (pending replies are dropped).
 * Everything is freed in libuv close callbacks; done(ctx), if not NULL, is
 * called after the last one, and s must not be used after this call. Safe to
 * call from inside a handler. A second call is ignored. */
void ss_http_server_close(ss_http_server *s, void (*done)(void *ctx), void *ctx);

#endif
