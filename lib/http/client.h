/* client.h: the asynchronous HTTP/1.1 client the daemons share (Spark master
 * and Jolokia pollers, the actuator's Kubernetes/Oshinko/Spark backends):
 * libcurl's multi_socket interface driven by a libuv loop, with retries,
 * Retry-After, a client-go style token-bucket limiter and clean shutdown.
 *
 * Everything runs on the loop thread: no function here may be called from
 * another thread, and none blocks (libcurl resolves names on its own
 * resolver threads; see ss_http_req_cancel for the one caveat). Requests
 * are HTTP/1.1, connections are kept alive and reused per host, redirects
 * are not followed, and proxies from the environment (http_proxy,
 * https_proxy, no_proxy) apply as they do for client-go. */
#ifndef SS_HTTP_CLIENT_H
#define SS_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Defaults used where an option is left 0. */
#define SS_HTTP_DEFAULT_MAX_CONNECTIONS 64
#define SS_HTTP_DEFAULT_MAX_HOST_CONNECTIONS 8
#define SS_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define SS_HTTP_DEFAULT_REQUEST_TIMEOUT_MS 30000
#define SS_HTTP_DEFAULT_MAX_RESPONSE_BYTES (8u << 20)
#define SS_HTTP_DEFAULT_BACKOFF_BASE_MS 100
#define SS_HTTP_DEFAULT_BACKOFF_MAX_MS 10000
#define SS_HTTP_DEFAULT_MAX_RETRY_AFTER_MS 60000
#define SS_HTTP_MAX_ATTEMPTS 100         /* hard cap on retry.max_attempts */
#define SS_HTTP_MAX_RESPONSE_HEADERS 16384 /* header bytes kept for lookup */

typedef struct ss_http_client ss_http_client;
typedef struct ss_http_req ss_http_req;           /* one started request */
typedef struct ss_http_limiter ss_http_limiter;   /* token bucket */

typedef enum ss_http_method {
    SS_HTTP_GET,
    SS_HTTP_POST,
    SS_HTTP_PUT,
    SS_HTTP_PATCH,
    SS_HTTP_DELETE
} ss_http_method;

/* How a request ended. RES_OK means an HTTP response arrived, whatever its
 * status: a 404 or 503 is RES_OK with status 404/503. */
typedef enum ss_http_result {
    SS_HTTP_RES_OK,
    SS_HTTP_RES_TIMEOUT,      /* connect or total timeout */
    SS_HTTP_RES_CONNECT,      /* refused, unreachable */
    SS_HTTP_RES_DNS,          /* name did not resolve */
    SS_HTTP_RES_TLS,          /* handshake, certificate or key problem */
    SS_HTTP_RES_TOO_LARGE,    /* body over max_response_bytes */
    SS_HTTP_RES_CANCELLED,    /* ss_http_req_cancel or ss_http_client_close */
    SS_HTTP_RES_PROTOCOL,     /* server sent nothing, garbage or a cut reply */
    SS_HTTP_RES_OTHER,
    SS_HTTP_RES_COUNT
} ss_http_result;

/* Stable lower-case names ("ok", "timeout", ... ); "?" if out of range. */
const char *ss_http_result_name(ss_http_result r);

/* Which failures are retried (bits of ss_http_retry.on). 4xx other than 429
 * and 408 are never retried. Retrying a POST or PATCH after a timeout or 5xx
 * may apply it twice: only ask for retries where that is harmless. */
#define SS_HTTP_RETRY_5XX     0x1u   /* 500-599 */
#define SS_HTTP_RETRY_429     0x2u   /* 429 Too Many Requests and 408 Request Timeout */
#define SS_HTTP_RETRY_TIMEOUT 0x4u
#define SS_HTTP_RETRY_CONNECT 0x8u   /* refused/unreachable and DNS failures */
#define SS_HTTP_RETRY_DEFAULT (SS_HTTP_RETRY_5XX | SS_HTTP_RETRY_429 | \
                               SS_HTTP_RETRY_TIMEOUT | SS_HTTP_RETRY_CONNECT)

/* Retry policy. Attempt n (n >= 2) waits a random time in [d/2, d] with
 * d = min(backoff_max_ms, backoff_base_ms * 2^(n-2)); when the response
 * carried Retry-After (delta-seconds or HTTP-date) that delay is used
 * instead, capped at max_retry_after_ms. */
typedef struct ss_http_retry {
    int max_attempts;          /* attempts in all, first included; 0 or 1 = no retry */
    int backoff_base_ms;       /* 0 = SS_HTTP_DEFAULT_BACKOFF_BASE_MS */
    int backoff_max_ms;        /* 0 = SS_HTTP_DEFAULT_BACKOFF_MAX_MS */
    int max_retry_after_ms;    /* 0 = SS_HTTP_DEFAULT_MAX_RETRY_AFTER_MS */
    unsigned on;               /* SS_HTTP_RETRY_* bits; 0 = SS_HTTP_RETRY_DEFAULT */
} ss_http_retry;

/* TLS. The peer is verified (chain and host name) unless
 * insecure_skip_verify is set; without ca_file/ca_pem the system store is
 * used. *_pem fields hold PEM text in memory (as a kubeconfig's
 * certificate-authority-data, client-certificate-data, client-key-data
 * decode to) and take precedence over the file of the same role. */
typedef struct ss_http_tls {
    int insecure_skip_verify;
    const char *ca_file;
    const char *ca_pem;
    const char *cert_file;
    const char *key_file;
    const char *cert_pem;
    const char *key_pem;
} ss_http_tls;

/* One request. Every pointer is borrowed for the duration of
 * ss_http_client_start only: strings, headers and the body are copied, so
 * the caller may free them as soon as it returns. The limiter is the
 * exception: the request holds a reference to it (see ss_http_limiter). */
typedef struct ss_http_client_request {
    ss_http_method method;
    const char *url;                /* http:// or https:// only; may carry user:password@ */
    const char *const *headers;     /* n_headers "Name: value" strings, no CR/LF */
    size_t n_headers;
    const void *body;               /* body_len bytes; NULL/0 = no body */
    size_t body_len;
    const char *content_type;       /* Content-Type of the body; NULL = none sent */
    int64_t connect_timeout_ms;     /* 0 = the client's default */
    int64_t timeout_ms;             /* whole attempt, connect included; 0 = client's default */
    size_t max_response_bytes;      /* body cap, else RES_TOO_LARGE; 0 = client's default */
    ss_http_tls tls;
    const char *basic_user;         /* HTTP Basic when set (password may be NULL) */
    const char *basic_password;
    const char *bearer_token;       /* "Authorization: Bearer ..." when set; not with basic */
    ss_http_retry retry;
    ss_http_limiter *limiter;       /* NULL = not rate limited */
} ss_http_client_request;

/* What the done callback sees. Everything it points to is owned by the
 * client and valid only during the callback: copy what you keep. */
typedef struct ss_http_client_response {
    ss_http_result result;
    int status;                /* HTTP status of the last attempt, 0 if none arrived */
    const char *body;          /* NUL-terminated (body_len excludes it); "" unless RES_OK */
    size_t body_len;
    const char *content_type;  /* Content-Type of the last response, NULL if absent */
    int64_t retry_after_ms;    /* parsed Retry-After of the last response, -1 if none */
    const char *error;         /* "" on RES_OK; else a message free of credentials */
    int attempts;              /* attempts handed to libcurl (0 if cancelled before one) */
    int64_t total_ms;          /* from ss_http_client_start to this callback */
    const ss_http_req *req;    /* for ss_http_response_header */
} ss_http_client_response;

/* Value of header `name` (case-insensitive; the first one if repeated) in
 * the last response received, trailing spaces cut, or NULL (always NULL
 * for RES_CANCELLED). Valid during the callback only. */
const char *ss_http_response_header(const ss_http_client_response *res, const char *name);

/* Called exactly once per started request, on the loop thread: when it
 * completes, when it is cancelled (inside ss_http_req_cancel) and when the
 * client closes (inside ss_http_client_close). May start new requests,
 * cancel others, or close the client. */
typedef void (*ss_http_done_fn)(const ss_http_client_response *res, void *arg);

typedef struct ss_http_client_opts {
    int max_connections;            /* open connections in all (also the idle cache); 0 = default */
    int max_host_connections;       /* per host:port, more requests queue; 0 = default */
    const char *user_agent;         /* copied; NULL = "sparkscale" */
    int64_t connect_timeout_ms;     /* defaults for requests that leave theirs 0 */
    int64_t timeout_ms;
    size_t max_response_bytes;
} ss_http_client_opts;

/* Creates a client on loop (opts may be NULL: all defaults). The loop is
 * borrowed until the done callback of ss_http_client_close. Returns NULL
 * if libcurl cannot be set up (nothing is left open on the loop then). */
ss_http_client *ss_http_client_create(uv_loop_t *loop, const ss_http_client_opts *opts);

/* Starts a request; cb(res, arg) runs later, exactly once, never inside
 * this call. *out (if out is not NULL) receives a handle valid until cb
 * begins, for ss_http_req_cancel. req is copied (see the struct). Returns 0,
 * -EINVAL (bad method, URL scheme, header with CR/LF, both basic and
 * bearer, negative timeouts, cb NULL, a TLS option libcurl lacks),
 * -ESHUTDOWN (client closing) or -ENOMEM. */
int ss_http_client_start(ss_http_client *c, const ss_http_client_request *req,
                         ss_http_done_fn cb, void *arg, ss_http_req **out);

/* Cancels a request wherever it is (waiting on backoff or the limiter, or
 * in flight): its callback runs with RES_CANCELLED before this returns and
 * the handle is freed. A no-op when called from the request's own callback.
 * A request cancelled while libcurl's resolver thread is still inside
 * getaddrinfo() waits for that lookup to end (libcurl joins the thread). */
void ss_http_req_cancel(ss_http_req *r);

typedef struct ss_http_client_stats {
    uint64_t started;                    /* requests accepted by start */
    uint64_t finished[SS_HTTP_RES_COUNT];/* callbacks, by result */
    uint64_t attempts;                   /* transfers handed to libcurl */
    uint64_t retries;                    /* attempts after the first */
    uint64_t connects;                   /* new connections (a reused one counts 0) */
    uint64_t bytes_sent;                 /* request body bytes, per attempt */
    uint64_t bytes_received;             /* response body bytes */
    uint64_t in_flight;                  /* requests inside libcurl now */
    uint64_t waiting;                    /* requests waiting on backoff or a limiter now */
    uint64_t sockets;                    /* sockets watched now */
} ss_http_client_stats;
void ss_http_client_stats_get(const ss_http_client *c, ss_http_client_stats *out);

/* Cancels every request (each callback runs with RES_CANCELLED before this
 * returns), drops idle connections and closes every libuv handle; done(arg),
 * if not NULL, runs from a close callback once nothing of the client is
 * left on the loop, and c is freed before it. Safe to call from a done
 * callback; a second call is ignored. The getaddrinfo() caveat of
 * ss_http_req_cancel applies to requests still resolving. */
void ss_http_client_close(ss_http_client *c, void (*done)(void *arg), void *arg);

/* Token bucket like client-go's flowcontrol.NewTokenBucketRateLimiter:
 * starts full with burst tokens, refills at qps a second. Each attempt of a
 * request that names the limiter takes one token, reserved in call order,
 * so waiting requests start in FIFO order and none is dropped. Share one
 * limiter across the requests to one server (across clients too, on the
 * same loop). Reference counted: create returns one reference, each request
 * holds one until its callback; ss_http_limiter_release drops the caller's.
 * A cancelled request does not give its reserved token back.
 * Returns NULL if qps <= 0, burst < 1 or out of memory. */
ss_http_limiter *ss_http_limiter_create(double qps, int burst);
void ss_http_limiter_release(ss_http_limiter *l);
/* One more reference, for a holder other than a request (e.g. a client
 * object that names the limiter in each request it starts). */
void ss_http_limiter_retain(ss_http_limiter *l);
/* Reserves one token at now_us (monotonic, ss_mono_us) and returns the
 * microseconds to wait before using it (0 = at once). Exposed for tests and
 * for callers that pace other work with the same bucket. */
int64_t ss_http_limiter_reserve(ss_http_limiter *l, int64_t now_us);


#endif
