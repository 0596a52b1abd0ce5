/* client.c: libcurl's multi_socket interface on a libuv loop (the shape of
 * curl's docs/examples/multi-uv.c), plus retries, Retry-After, token-bucket
 * pacing, bounded bodies and a shutdown that leaves nothing on the loop.
 *
 * Who calls whom: libuv callbacks (poll, timers) are the only callers of
 * curl_multi_socket_action; libcurl's socket and timer callbacks only
 * (re)arm uv handles and never call back into libcurl; user callbacks run
 * only after curl_multi_socket_action has returned, so they may add,
 * remove or clean up handles freely. */
#include "lib/http/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

#define MAX_SECRETS 4

/* One socket libcurl asked us to watch. Looked up by fd in the client's
 * list, not through curl_multi_assign: libcurl forgets the assignment on
 * CURL_POLL_REMOVE, and a pooled connection (or a new socket that got the
 * same fd number) comes back later while our old handle may still be
 * closing. A closing context is unlinked at once, so a new one can be made
 * for the same fd: uv_poll_init only refuses an fd that has an *active*
 * watcher, and uv_close stops the old one synchronously. */
typedef struct sock_ctx {
    uv_poll_t poll;
    ss_http_client *c;
    curl_socket_t fd;
    int events;                 /* UV_READABLE|UV_WRITABLE libcurl wants */
    struct sock_ctx *prev, *next;
} sock_ctx;

typedef enum req_state {
    REQ_IDLE,                   /* between attempts, in no queue */
    REQ_WAITING,                /* in c->waiting: backoff or limiter */
    REQ_ACTIVE,                 /* easy handle inside the multi */
    REQ_DONE                    /* callback running */
} req_state;

struct ss_http_limiter {
    double qps, burst, tokens;
    int64_t last_us;            /* -1 until the first reservation */
    int refs;
};

struct ss_http_req {
    ss_http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    ss_http_done_fn cb;
    void *arg;
    req_state state;
    int limited;                /* already holds a token for this attempt */
    ss_http_req *prev, *next;   /* c->reqs: every request not yet done */
    ss_http_req *wprev, *wnext; /* c->waiting, by due_us then arrival */
    int64_t due_us, start_us;
    int attempts;
    ss_http_retry retry;
    ss_http_limiter *limiter;
    const char *method;
    size_t body_len;            /* request body, for stats */
    size_t max_body;
    /* the current attempt's response */
    char *body;
    size_t rlen, rcap;
    int too_large, oom;
    char *hdrs;                 /* "name\0value\0" pairs */
    size_t hlen;
    char errbuf[CURL_ERROR_SIZE];
    char errmsg[CURL_ERROR_SIZE + 64];
    char *log_url;              /* credentials masked */
    char *secrets[MAX_SECRETS]; /* scrubbed from any error text */
};

struct ss_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t curl_timer;      /* libcurl's one timeout */
    uv_timer_t wait_timer;      /* backoff and limiter waits */
    sock_ctx *socks;
    ss_http_req *reqs;
    ss_http_req *waiting;
    int handles;                /* uv handles not yet through their close callback */
    int closing;
    void (*done)(void *);
    void *done_arg;
    char *user_agent;
    int64_t connect_timeout_ms, timeout_ms;
    size_t max_response_bytes;
    uint64_t rng;
    int warned_insecure;
    ss_http_client_stats st;
};

static const char *const result_names[SS_HTTP_RES_COUNT] = {
    "ok", "timeout", "connect", "dns", "tls", "too_large", "cancelled", "protocol", "other",
};

const char *ss_http_result_name(ss_http_result r)
{
    return (unsigned)r < SS_HTTP_RES_COUNT ? result_names[r] : "?";
}

static const char *method_name(ss_http_method m)
{
    switch (m) {
    case SS_HTTP_GET: return "GET";
    case SS_HTTP_POST: return "POST";
    case SS_HTTP_PUT: return "PUT";
    case SS_HTTP_PATCH: return "PATCH";
    case SS_HTTP_DELETE: return "DELETE";
    }
    return NULL;
}

static char *mask_url_dup(const char *url)
{
    size_t n = ss_mask_url(url, NULL, 0);
    char *m = malloc(n + 1);
    if (m)
        ss_mask_url(url, m, n + 1);
    return m;
}

/* Replaces every occurrence of each secret in msg (cap bytes) by "***". */
static void scrub(char *msg, size_t cap, char *const *secrets)
{
    for (int i = 0; i < MAX_SECRETS; i++)
        if (secrets[i] && secrets[i][0])
            ss_scrub(msg, cap, secrets[i]);
}

/* ---- limiter ------------------------------------------------------------ */

ss_http_limiter *ss_http_limiter_create(double qps, int burst)
{
    if (!(qps > 0) || burst < 1)
        return NULL;
    ss_http_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->qps = qps;
    l->burst = burst;
    l->tokens = burst;
    l->last_us = -1;
    l->refs = 1;
    return l;
}

void ss_http_limiter_retain(ss_http_limiter *l)
{
    if (l)
        l->refs++;
}

void ss_http_limiter_release(ss_http_limiter *l)
{
    if (l && --l->refs == 0)
        free(l);
}

/* Tokens may go negative: a reservation is a place in line, and the wait
 * is how long the bucket needs to refill up to it (golang.org/x/time/rate's
 * reserve, which client-go's limiter is built on). */
int64_t ss_http_limiter_reserve(ss_http_limiter *l, int64_t now_us)
{
    if (l->last_us < 0)
        l->last_us = now_us;
    if (now_us > l->last_us) {
        l->tokens += (double)(now_us - l->last_us) * l->qps / 1e6;
        if (l->tokens > l->burst)
            l->tokens = l->burst;
        l->last_us = now_us;
    }
    l->tokens -= 1;
    if (l->tokens >= 0)
        return 0;
    double w = -l->tokens * 1e6 / l->qps;
    int64_t wi = (int64_t)w;
    return wi < w ? wi + 1 : wi;
}

/* ---- sockets and timers (libcurl -> libuv) ------------------------------ */

static void maybe_final(ss_http_client *c)
{
    if (!c->closing || c->handles > 0)
        return;
    void (*done)(void *) = c->done;
    void *arg = c->done_arg;
    free(c->user_agent);
    free(c);
    curl_global_cleanup();
    if (done)
        done(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    ss_http_client *c = h->data;
    c->handles--;
    maybe_final(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx *k = h->data;
    ss_http_client *c = k->c;
    free(k);
    c->handles--;
    maybe_final(c);
}

static void sock_close(sock_ctx *k)
{
    ss_http_client *c = k->c;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->socks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    c->st.sockets--;
    uv_close((uv_handle_t *)&k->poll, on_sock_closed);  /* stops polling now */
}

static void check_done(ss_http_client *c);

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *k = h->data;
    ss_http_client *c = k->c;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR | ((k->events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                ((k->events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_socket_t fd = k->fd;
    int was_error = status < 0;
    /* k stays allocated through this call even if libcurl removes the
     * socket: it is freed only in its close callback, on a later tick. */
    curl_multi_socket_action(c->multi, fd, flags, &running);
    /* libuv stops a handle that reported POLLERR; if libcurl kept the socket
     * with the same interest, it would never call us to re-arm it. */
    if (was_error && !uv_is_closing((uv_handle_t *)&k->poll) && k->events &&
        !uv_is_active((uv_handle_t *)&k->poll))
        uv_poll_start(&k->poll, k->events, on_poll);
    check_done(c);
}

static sock_ctx *find_sock(ss_http_client *c, curl_socket_t fd)
{
    for (sock_ctx *k = c->socks; k; k = k->next)
        if (k->fd == fd)
            return k;
    return NULL;
}

/* CURLMOPT_SOCKETFUNCTION: only (re)arms or closes uv_poll handles. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    ss_http_client *c = userp;
    sock_ctx *k = find_sock(c, s);
    if (what == CURL_POLL_REMOVE) {
        if (k)
            sock_close(k);
        return 0;
    }
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k)
            return -1;
        k->c = c;
        k->fd = s;
        if (uv_poll_init_socket(c->loop, &k->poll, s) != 0) {
            free(k);   /* never initialised: nothing to close */
            return -1;
        }
        k->poll.data = k;
        k->next = c->socks;
        if (c->socks)
            c->socks->prev = k;
        c->socks = k;
        c->handles++;
        c->st.sockets++;
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    k->events = ev;
    return uv_poll_start(&k->poll, ev, on_poll) == 0 ? 0 : -1;
}

static void on_curl_timeout(uv_timer_t *t)
{
    ss_http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer; 0 means "act at once",
 * which we do from a 0 ms uv timer, never from inside this callback (the
 * documentation warns of recursion: socket_action would call us again). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ss_http_client *c = userp;
    if (uv_is_closing((uv_handle_t *)&c->curl_timer))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->curl_timer);
    else
        uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- the request's own callbacks (called by libcurl) --------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    ss_http_req *r = ud;
    size_t len = size * n;
    if (len > r->max_body - r->rlen) {
        r->too_large = 1;
        return 0;   /* != len: libcurl aborts the transfer */
    }
    if (r->rlen + len + 1 > r->rcap) {
        size_t cap = r->rcap ? r->rcap * 2 : 4096;
        if (cap < r->rlen + len + 1)
            cap = r->rlen + len + 1;
        if (cap > r->max_body + 1)
            cap = r->max_body + 1;
        char *b = realloc(r->body, cap);
        if (!b) {
            r->oom = 1;
            return 0;
        }
        r->body = b;
        r->rcap = cap;
    }
    memcpy(r->body + r->rlen, data, len);
    r->rlen += len;
    r->body[r->rlen] = '\0';
    r->c->st.bytes_received += len;
    return len;
}

/* Keeps the header lines of the final response (an interim 1xx response's
 * are dropped when the next status line arrives) as "name\0value\0". */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    ss_http_req *r = ud;
    size_t len = size * n, l = len;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->hlen = 0;
        return len;
    }
    while (l && (data[l - 1] == '\r' || data[l - 1] == '\n'))
        l--;
    const char *colon = memchr(data, ':', l);
    if (!colon || colon == data)
        return len;
    size_t nl = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + l;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (r->hlen + nl + vl + 2 > SS_HTTP_MAX_RESPONSE_HEADERS)
        return len;   /* over the bound: kept out of the lookup, not an error */
    if (!r->hdrs && !(r->hdrs = malloc(SS_HTTP_MAX_RESPONSE_HEADERS)))
        return len;
    memcpy(r->hdrs + r->hlen, data, nl);
    r->hdrs[r->hlen + nl] = '\0';
    memcpy(r->hdrs + r->hlen + nl + 1, v, vl);
    r->hdrs[r->hlen + nl + 1 + vl] = '\0';
    r->hlen += nl + vl + 2;
    return len;
}

static const char *header_of(const ss_http_req *r, const char *name)
{
    for (size_t off = 0; r->hdrs && off < r->hlen;) {
        const char *n = r->hdrs + off;
        const char *v = n + strlen(n) + 1;
        if (strcasecmp(n, name) == 0)
            return v;
        off = (size_t)(v + strlen(v) + 1 - r->hdrs);
    }
    return NULL;
}

const char *ss_http_response_header(const ss_http_client_response *res, const char *name)
{
    return res && res->req && name ? header_of(res->req, name) : NULL;
}

/* Retry-After (RFC 9110 10.2.3): delta-seconds or an HTTP-date; -1 if
 * absent or unreadable. */
static int64_t retry_after_ms(const char *v)
{
    if (!v || !*v)
        return -1;
    if (*v >= '0' && *v <= '9') {
        int64_t s = 0;
        for (; *v >= '0' && *v <= '9'; v++)
            if (s < 100000000)
                s = s * 10 + (*v - '0');
        while (*v == ' ' || *v == '\t')
            v++;
        return *v ? -1 : s * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t < 0)
        return -1;
    int64_t d = (int64_t)t * 1000 - ss_wall_ms();
    return d < 0 ? 0 : d;
}

/* ---- request life cycle -------------------------------------------------- */

static uint64_t rnd(ss_http_client *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ull;
}

static void wait_remove(ss_http_req *r)
{
    ss_http_client *c = r->c;
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        c->waiting = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    r->wprev = r->wnext = NULL;
    r->state = REQ_IDLE;
    c->st.waiting--;
}

static void on_wait_timer(uv_timer_t *t);

static void arm_wait(ss_http_client *c)
{
    if (c->closing)
        return;
    if (!c->waiting) {
        uv_timer_stop(&c->wait_timer);
        return;
    }
    int64_t left_us = c->waiting->due_us - ss_mono_us();
    uint64_t ms = left_us <= 0 ? 0 : (uint64_t)((left_us + 999) / 1000);
    uv_update_time(c->loop);
    uv_timer_start(&c->wait_timer, on_wait_timer, ms, 0);
}

/* Inserted after every request due at the same time or earlier, so equal
 * times keep arrival (FIFO) order. */
static void wait_insert(ss_http_req *r, int64_t due_us)
{
    ss_http_client *c = r->c;
    r->due_us = due_us;
    r->state = REQ_WAITING;
    ss_http_req *prev = NULL, *p = c->waiting;
    while (p && p->due_us <= due_us) {
        prev = p;
        p = p->wnext;
    }
    r->wprev = prev;
    r->wnext = p;
    if (prev)
        prev->wnext = r;
    else
        c->waiting = r;
    if (p)
        p->wprev = r;
    c->st.waiting++;
    arm_wait(c);
}

static void req_free(ss_http_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    ss_http_limiter_release(r->limiter);
    free(r->body);
    free(r->hdrs);
    free(r->log_url);
    for (int i = 0; i < MAX_SECRETS; i++) {
        if (r->secrets[i]) {
            explicit_bzero(r->secrets[i], strlen(r->secrets[i]));
            free(r->secrets[i]);
        }
    }
    free(r);
}

/* Ends a request: out of every queue, callback, freed. */
static void finish(ss_http_req *r, ss_http_result res, int status, const char *err)
{
    ss_http_client *c = r->c;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->state == REQ_WAITING)
        wait_remove(r);
    if (r->state == REQ_ACTIVE) {
        curl_multi_remove_handle(c->multi, r->easy);
        c->st.in_flight--;
    }
    r->state = REQ_DONE;
    if (res == SS_HTTP_RES_CANCELLED)
        r->hlen = 0;   /* no response: headers of an earlier attempt are stale */

    if (res == SS_HTTP_RES_OK)
        r->errmsg[0] = '\0';
    else
        snprintf(r->errmsg, sizeof r->errmsg, "%s", err);
    scrub(r->errmsg, sizeof r->errmsg, r->secrets);
    int ok_reply = res == SS_HTTP_RES_OK;
    ss_http_client_response resp = {
        .result = res,
        .status = status,
        .body = ok_reply && r->body ? r->body : "",
        .body_len = ok_reply && r->body ? r->rlen : 0,
        .content_type = header_of(r, "Content-Type"),
        .retry_after_ms = retry_after_ms(header_of(r, "Retry-After")),
        .error = r->errmsg,
        .attempts = r->attempts,
        .total_ms = (ss_mono_us() - r->start_us) / 1000,
        .req = r,
    };
    c->st.finished[res]++;
    ss_debug("http: %s %s -> %s %d after %d attempt(s), %lld ms%s%s", r->method, r->log_url,
             ss_http_result_name(res), status, r->attempts, (long long)resp.total_ms,
             *r->errmsg ? ": " : "", r->errmsg);
    r->cb(&resp, r->arg);
    req_free(r);
}

static int attempt_start(ss_http_req *r)
{
    ss_http_client *c = r->c;
    r->rlen = 0;
    if (r->body)
        r->body[0] = '\0';
    r->hlen = 0;
    r->too_large = r->oom = 0;
    r->errbuf[0] = '\0';
    r->limited = 0;
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        return -ENOMEM;
    r->state = REQ_ACTIVE;
    r->attempts++;
    c->st.in_flight++;
    c->st.attempts++;
    if (r->attempts > 1)
        c->st.retries++;
    c->st.bytes_sent += r->body_len;
    return 0;
}

/* The request is due (or new): take a limiter token, then go. Returns
 * attempt_start's result; waiting counts as success. */
static int proceed(ss_http_req *r)
{
    if (r->limiter && !r->limited) {
        int64_t now = ss_mono_us();
        int64_t wait = ss_http_limiter_reserve(r->limiter, now);
        r->limited = 1;
        if (wait > 0) {
            wait_insert(r, now + wait);
            return 0;
        }
    }
    return attempt_start(r);
}

static void on_wait_timer(uv_timer_t *t)
{
    ss_http_client *c = t->data;
    ss_http_req *r;
    /* The uv timer works from the loop's cached clock, so it can fire a
     * little before due_us: re-armed, never started early. */
    while (!c->closing && (r = c->waiting) && r->due_us <= ss_mono_us()) {
        wait_remove(r);
        if (proceed(r) != 0)
            finish(r, SS_HTTP_RES_OTHER, 0, "libcurl refused the transfer");
    }
    arm_wait(c);
}

static ss_http_result classify(CURLcode code, const ss_http_req *r)
{
    if (r->too_large || code == CURLE_FILESIZE_EXCEEDED)
        return SS_HTTP_RES_TOO_LARGE;
    switch (code) {
    case CURLE_OK:
        return SS_HTTP_RES_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return SS_HTTP_RES_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return SS_HTTP_RES_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return SS_HTTP_RES_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
#if LIBCURL_VERSION_NUM >= 0x074d00
    case CURLE_SSL_CLIENTCERT:
#endif
        return SS_HTTP_RES_TLS;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return SS_HTTP_RES_PROTOCOL;
    default:
        return SS_HTTP_RES_OTHER;
    }
}

static int retryable(const ss_http_req *r, ss_http_result res, int status)
{
    if (r->attempts >= r->retry.max_attempts)
        return 0;
    unsigned on = r->retry.on;
    switch (res) {
    case SS_HTTP_RES_OK:
        if (status >= 500 && status <= 599)
            return (on & SS_HTTP_RETRY_5XX) != 0;
        if (status == 429 || status == 408)
            return (on & SS_HTTP_RETRY_429) != 0;
        return 0;
    case SS_HTTP_RES_TIMEOUT:
        return (on & SS_HTTP_RETRY_TIMEOUT) != 0;
    case SS_HTTP_RES_CONNECT:
    case SS_HTTP_RES_DNS:
        return (on & SS_HTTP_RETRY_CONNECT) != 0;
    default:
        return 0;
    }
}

static int64_t backoff_ms(ss_http_req *r, ss_http_result res)
{
    int64_t ra = res == SS_HTTP_RES_OK ? retry_after_ms(header_of(r, "Retry-After")) : -1;
    if (ra >= 0)
        return ra < r->retry.max_retry_after_ms ? ra : r->retry.max_retry_after_ms;
    int64_t d = r->retry.backoff_base_ms;
    for (int i = 1; i < r->attempts && d < r->retry.backoff_max_ms; i++)
        d *= 2;
    if (d > r->retry.backoff_max_ms)
        d = r->retry.backoff_max_ms;
    /* "equal jitter": half fixed, half random, so a herd of pollers that
     * failed together spreads out but none retries at once. */
    return d / 2 + (int64_t)(rnd(r->c) % (uint64_t)(d / 2 + 1));
}

/* An attempt left the multi (CURLMSG_DONE): retry or finish. */
static void attempt_done(ss_http_req *r, CURLcode code)
{
    ss_http_client *c = r->c;
    curl_multi_remove_handle(c->multi, r->easy);
    c->st.in_flight--;
    r->state = REQ_IDLE;
    long status = 0, connects = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
    c->st.connects += (uint64_t)(connects > 0 ? connects : 0);
    ss_http_result res = classify(code, r);
    if (retryable(r, res, (int)status)) {
        int64_t ms = backoff_ms(r, res);
        ss_debug("http: %s %s attempt %d: %s %ld; retry in %lld ms", r->method, r->log_url,
                 r->attempts, ss_http_result_name(res), status, (long long)ms);
        wait_insert(r, ss_mono_us() + ms * 1000);
        return;
    }
    const char *err;
    char buf[96];
    if (res == SS_HTTP_RES_TOO_LARGE) {
        snprintf(buf, sizeof buf, "response body over %zu bytes", r->max_body);
        err = buf;
    } else if (r->oom) {
        err = "out of memory for the response body";
    } else {
        err = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    }
    finish(r, res, (int)status, err);
}

static void check_done(ss_http_client *c)
{
    CURLMsg *m;
    int left;
    /* A callback may close the client: stop reading then. */
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode code = m->data.result;
        char *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        attempt_done((ss_http_req *)p, code);
    }
}

/* ---- public ------------------------------------------------------------- */

ss_http_client *ss_http_client_create(uv_loop_t *loop, const ss_http_client_opts *opts)
{
    static const ss_http_client_opts none;
    if (!loop)
        return NULL;
    if (!opts)
        opts = &none;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    ss_http_client *c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->user_agent = strdup(opts->user_agent ? opts->user_agent : "sparkscale");
    c->multi = curl_multi_init();
    if (!c->user_agent || !c->multi)
        goto fail;
    c->loop = loop;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                         : SS_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : SS_HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    c->max_response_bytes = opts->max_response_bytes ? opts->max_response_bytes
                                                     : SS_HTTP_DEFAULT_MAX_RESPONSE_BYTES;
    long total = opts->max_connections > 0 ? opts->max_connections : SS_HTTP_DEFAULT_MAX_CONNECTIONS;
    long host = opts->max_host_connections > 0 ? opts->max_host_connections
                                               : SS_HTTP_DEFAULT_MAX_HOST_CONNECTIONS;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total);
    c->rng = (uint64_t)ss_mono_us() ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9e3779b97f4a7c15ull;
    if (!c->rng)
        c->rng = 1;
    /* Nothing below fails: no uv handle ever needs an asynchronous undo here. */
    uv_timer_init(loop, &c->curl_timer);
    uv_timer_init(loop, &c->wait_timer);
    c->curl_timer.data = c->wait_timer.data = c;
    c->handles = 2;
    static int warned;
    curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (!(vi->features & CURL_VERSION_ASYNCHDNS) && !warned) {
        warned = 1;
        ss_warn("http: libcurl %s resolves names synchronously: a slow DNS lookup stalls the loop",
                vi->version);
    }
    return c;
fail:
    if (c) {
        if (c->multi)
            curl_multi_cleanup(c->multi);
        free(c->user_agent);
        free(c);
    }
    curl_global_cleanup();
    return NULL;
}

static int bad_text(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static int scheme_ok(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* setopt failure -> errno: missing features are the caller's to know about. */
static int opt_err(CURLcode e)
{
    return e == CURLE_OK ? 0 : e == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

static int add_secret(ss_http_req *r, const char *s)
{
    if (!s || !*s)
        return 0;
    for (int i = 0; i < MAX_SECRETS; i++) {
        if (!r->secrets[i])
            return (r->secrets[i] = strdup(s)) ? 0 : -ENOMEM;
    }
    return 0;
}

static int add_header(ss_http_req *r, const char *h)
{
    struct curl_slist *l = curl_slist_append(r->headers, h);
    if (!l)
        return -ENOMEM;
    r->headers = l;
    return 0;
}

static int set_blob(CURL *e, CURLoption opt, const char *pem)
{
    struct curl_blob b = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };
    return opt_err(curl_easy_setopt(e, opt, &b));
}

/* Copies everything the request needs into its easy handle (libcurl copies
 * strings, blobs with CURL_BLOB_COPY and COPYPOSTFIELDS) and r. */
static int configure(ss_http_client *c, ss_http_req *r, const ss_http_client_request *q)
{
    CURL *e = r->easy;
    int rc = 0;
    const ss_http_tls *t = &q->tls;
#define SET(opt, val) do { if ((rc = opt_err(curl_easy_setopt(e, opt, val))) != 0) return rc; } while (0)
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(q->connect_timeout_ms ? q->connect_timeout_ms
                                                                : c->connect_timeout_ms));
    SET(CURLOPT_TIMEOUT_MS, (long)(q->timeout_ms ? q->timeout_ms : c->timeout_ms));
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);

    int has_body = q->method == SS_HTTP_POST || q->method == SS_HTTP_PUT ||
                   q->method == SS_HTTP_PATCH || q->body_len > 0;
    if (has_body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        SET(CURLOPT_COPYPOSTFIELDS, q->body_len ? (const char *)q->body : "");
        /* Without this libcurl sends large bodies (1 MiB and more in 7.88)
         * with Expect: 100-continue and waits up to a second for an interim
         * reply that many servers never send. */
        if ((rc = add_header(r, "Expect:")) != 0)
            return rc;
    }
    if (q->method != SS_HTTP_GET && q->method != SS_HTTP_POST)
        SET(CURLOPT_CUSTOMREQUEST, r->method);
    else if (q->method == SS_HTTP_GET && has_body)
        SET(CURLOPT_CUSTOMREQUEST, "GET");
    for (size_t i = 0; i < q->n_headers; i++)
        if ((rc = add_header(r, q->headers[i])) != 0)
            return rc;
    if (q->content_type) {
        size_t n = strlen(q->content_type) + 16;
        char *h = malloc(n);
        if (!h)
            return -ENOMEM;
        snprintf(h, n, "Content-Type: %s", q->content_type);
        rc = add_header(r, h);
        free(h);
        if (rc)
            return rc;
    } else if (has_body && (rc = add_header(r, "Content-Type:")) != 0) {
        return rc;   /* (an empty value drops libcurl's form-urlencoded default) */
    }
    if (r->headers)
        SET(CURLOPT_HTTPHEADER, r->headers);

    if (q->basic_user) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, q->basic_user);
        SET(CURLOPT_PASSWORD, q->basic_password ? q->basic_password : "");
    } else if (q->bearer_token) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        SET(CURLOPT_XOAUTH2_BEARER, q->bearer_token);
    }

    if (t->insecure_skip_verify) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
        if (!c->warned_insecure) {
            c->warned_insecure = 1;
            ss_warn("http: TLS verification disabled by configuration for %s", r->log_url);
        }
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (t->ca_pem) {
        if ((rc = set_blob(e, CURLOPT_CAINFO_BLOB, t->ca_pem)) != 0)
            return rc;
    } else if (t->ca_file) {
        SET(CURLOPT_CAINFO, t->ca_file);
    }
    if (t->cert_pem) {
        if ((rc = set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert_pem)) != 0)
            return rc;
        SET(CURLOPT_SSLCERTTYPE, "PEM");
    } else if (t->cert_file) {
        SET(CURLOPT_SSLCERT, t->cert_file);
    }
    if (t->key_pem) {
        if ((rc = set_blob(e, CURLOPT_SSLKEY_BLOB, t->key_pem)) != 0)
            return rc;
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    } else if (t->key_file) {
        SET(CURLOPT_SSLKEY, t->key_file);
    }
#undef SET
    return 0;
}

/* The URL's own password, raw and decoded, joins the secrets to scrub. */
static int url_secrets(ss_http_req *r, const char *url)
{
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    int rc = 0;
    char *pw = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rc = -EINVAL;
    } else {
        if (curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK)
            rc = add_secret(r, pw);
        curl_free(pw);
        pw = NULL;
        if (rc == 0 && curl_url_get(u, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE) == CURLUE_OK)
            rc = add_secret(r, pw);
        curl_free(pw);
    }
    curl_url_cleanup(u);
    return rc;
}

static int validate(const ss_http_client_request *q)
{
    if (!q->url || !scheme_ok(q->url) || bad_text(q->url) || !method_name(q->method))
        return -EINVAL;
    if ((q->n_headers && !q->headers) || (q->body_len && !q->body))
        return -EINVAL;
    for (size_t i = 0; i < q->n_headers; i++) {
        const char *h = q->headers[i];
        const char *colon = h ? strchr(h, ':') : NULL;
        if (!colon || colon == h || bad_text(h))
            return -EINVAL;
    }
    if (bad_text(q->content_type) || bad_text(q->bearer_token) || bad_text(q->basic_user) ||
        bad_text(q->basic_password))
        return -EINVAL;
    if (q->basic_user && q->bearer_token)
        return -EINVAL;
    if (q->connect_timeout_ms < 0 || q->timeout_ms < 0 || q->retry.max_attempts < 0 ||
        q->retry.backoff_base_ms < 0 || q->retry.backoff_max_ms < 0 ||
        q->retry.max_retry_after_ms < 0)
        return -EINVAL;
    return 0;
}

int ss_http_client_start(ss_http_client *c, const ss_http_client_request *q,
                         ss_http_done_fn cb, void *arg, ss_http_req **out)
{
    if (out)
        *out = NULL;
    if (!c || !q || !cb)
        return -EINVAL;
    if (c->closing)
        return -ESHUTDOWN;
    int rc = validate(q);
    if (rc)
        return rc;
    ss_http_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->c = c;
    r->cb = cb;
    r->arg = arg;
    r->state = REQ_IDLE;
    r->start_us = ss_mono_us();
    r->method = method_name(q->method);
    r->body_len = q->body_len;
    r->max_body = q->max_response_bytes ? q->max_response_bytes : c->max_response_bytes;
    if (r->max_body > SIZE_MAX / 2)
        r->max_body = SIZE_MAX / 2;   /* so max_body + 1 and the curl_off_t cast hold */
    r->retry = q->retry;
    if (r->retry.max_attempts < 1)
        r->retry.max_attempts = 1;
    if (r->retry.max_attempts > SS_HTTP_MAX_ATTEMPTS)
        r->retry.max_attempts = SS_HTTP_MAX_ATTEMPTS;
    if (!r->retry.backoff_base_ms)
        r->retry.backoff_base_ms = SS_HTTP_DEFAULT_BACKOFF_BASE_MS;
    if (!r->retry.backoff_max_ms)
        r->retry.backoff_max_ms = SS_HTTP_DEFAULT_BACKOFF_MAX_MS;
    if (r->retry.backoff_max_ms < r->retry.backoff_base_ms)
        r->retry.backoff_max_ms = r->retry.backoff_base_ms;
    if (!r->retry.max_retry_after_ms)
        r->retry.max_retry_after_ms = SS_HTTP_DEFAULT_MAX_RETRY_AFTER_MS;
    if (!r->retry.on)
        r->retry.on = SS_HTTP_RETRY_DEFAULT;
    r->log_url = mask_url_dup(q->url);
    r->easy = curl_easy_init();
    if (!r->log_url || !r->easy)
        rc = -ENOMEM;
    if (!rc)
        rc = url_secrets(r, q->url);
    if (!rc)
        rc = add_secret(r, q->basic_password);
    if (!rc)
        rc = add_secret(r, q->bearer_token);
    if (!rc)
        rc = configure(c, r, q);
    if (rc) {
        req_free(r);
        return rc;
    }
    if (q->limiter) {
        r->limiter = q->limiter;
        r->limiter->refs++;
    }
    if ((rc = proceed(r)) != 0) {
        req_free(r);
        return rc;
    }
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->st.started++;
    if (out)
        *out = r;
    return 0;
}

void ss_http_req_cancel(ss_http_req *r)
{
    if (!r || r->state == REQ_DONE)
        return;
    finish(r, SS_HTTP_RES_CANCELLED, 0, "cancelled");
}

void ss_http_client_stats_get(const ss_http_client *c, ss_http_client_stats *out)
{
    *out = c->st;
}

void ss_http_client_close(ss_http_client *c, void (*done)(void *arg), void *arg)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->done = done;
    c->done_arg = arg;
    /* Callbacks run here; one may cancel another request (it leaves the
     * list) or try to start one (-ESHUTDOWN). */
    while (c->reqs)
        finish(c->reqs, SS_HTTP_RES_CANCELLED, 0, "client closed");
    /* Pooled connections are closed here; libcurl reports their sockets
     * removed through on_curl_socket, which is still safe to call. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_close((uv_handle_t *)&c->curl_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->wait_timer, on_timer_closed);
}
