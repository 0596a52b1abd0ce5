/* test_http_client.c: the libcurl-on-libuv HTTP client against real
 * loopback servers: a small HTTP/1.1 server on a thread (plain sockets and
 * poll) and `openssl s_server` for TLS. Every test closes its loop clean. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "lib/base/clock.h"
#include "lib/base/str.h"
#include "lib/http/client.h"

extern char **environ;

/* ---- the test server ------------------------------------------------------ */

#define MAX_CONNS 64
#define MAX_ARRIVALS 64

typedef struct tconn {
    int fd;
    char *buf;
    size_t len, cap;
    int hung;                   /* /hang: never answered */
} tconn;

typedef struct tserver {
    int lfd, port;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t mu;
    tconn conns[MAX_CONNS];
    /* under mu */
    int accepted, requests;
    int hits_flaky, hits_429, hits_404, hits_503;
    char last_auth[256];
    int64_t arrive_us[MAX_ARRIVALS];
    int arrive_id[MAX_ARRIVALS];
    int n_arrive;
} tserver;

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* the client went away (e.g. after TOO_LARGE) */
        p += w;
        len -= (size_t)w;
    }
}

static void reply(tconn *k, int status, const char *extra, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d Test\r\nContent-Length: %zu\r\n%s\r\n",
                     status, len, extra ? extra : "");
    send_all(k->fd, head, (size_t)n);
    send_all(k->fd, body, len);
}

/* Value of header name (lower case) in head[0..len), copied into out. */
static int header(const char *head, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len);
    while (p && (size_t)(p - head) + 1 < len) {
        p++;
        const char *eol = memchr(p, '\n', len - (size_t)(p - head));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl && v[vl - 1] == '\r')
                vl--;
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = eol;
    }
    out[0] = '\0';
    return 0;
}

static void conn_drop(tconn *k)
{
    close(k->fd);
    free(k->buf);
    memset(k, 0, sizeof *k);
    k->fd = -1;
}

/* Answers one complete request; returns 1 if the connection must close. */
static int serve(tserver *s, tconn *k, const char *method, const char *path, const char *head,
                 size_t hlen, const char *body, size_t blen)
{
    char ct[128], expect[64], extra[512];
    pthread_mutex_lock(&s->mu);
    s->requests++;
    pthread_mutex_unlock(&s->mu);
    if (strcmp(path, "/echo") == 0) {
        header(head, hlen, "content-type", ct, sizeof ct);
        header(head, hlen, "expect", expect, sizeof expect);
        snprintf(extra, sizeof extra, "X-Method: %s\r\nContent-Type: %s\r\nX-Expect: %s\r\n",
                 method, ct[0] ? ct : "none", expect[0] ? expect : "none");
        reply(k, 200, extra, body, blen);
    } else if (strcmp(path, "/hang") == 0) {
        k->hung = 1;
    } else if (strncmp(path, "/big?n=", 7) == 0) {
        size_t n = strtoul(path + 7, NULL, 10);
        char *b = malloc(n);
        memset(b, 'x', n);
        reply(k, 200, NULL, b, n);
        free(b);
    } else if (strncmp(path, "/bigchunk?n=", 12) == 0) {
        size_t n = strtoul(path + 12, NULL, 10);
        const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        send_all(k->fd, h, strlen(h));
        char chunk[4096 + 16];
        while (n > 0) {
            size_t c = n < 4096 ? n : 4096;
            int hl = snprintf(chunk, sizeof chunk, "%zx\r\n", c);
            memset(chunk + hl, 'y', c);
            memcpy(chunk + hl + c, "\r\n", 2);
            send_all(k->fd, chunk, (size_t)hl + c + 2);
            n -= c;
        }
        send_all(k->fd, "0\r\n\r\n", 5);
    } else if (strcmp(path, "/flaky") == 0) {
        pthread_mutex_lock(&s->mu);
        int hit = ++s->hits_flaky;
        pthread_mutex_unlock(&s->mu);
        if (hit == 1)
            reply(k, 503, NULL, "busy", 4);
        else
            reply(k, 200, NULL, "ok", 2);
    } else if (strncmp(path, "/429", 4) == 0) {
        pthread_mutex_lock(&s->mu);
        int hit = ++s->hits_429;
        pthread_mutex_unlock(&s->mu);
        if (hit > 1) {
            reply(k, 200, NULL, "ok", 2);
        } else if (strcmp(path, "/429date") == 0) {
            time_t t = time(NULL) + 2;
            struct tm tm;
            char date[64];
            gmtime_r(&t, &tm);
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            snprintf(extra, sizeof extra, "Retry-After: %s\r\n", date);
            reply(k, 429, extra, "slow down", 9);
        } else if (strcmp(path, "/429long") == 0) {
            reply(k, 429, "Retry-After: 3600\r\n", "slow down", 9);
        } else {
            reply(k, 429, "Retry-After: 1\r\n", "slow down", 9);
        }
    } else if (strcmp(path, "/404") == 0) {
        pthread_mutex_lock(&s->mu);
        s->hits_404++;
        pthread_mutex_unlock(&s->mu);
        reply(k, 404, NULL, "no", 2);
    } else if (strcmp(path, "/503") == 0) {
        pthread_mutex_lock(&s->mu);
        s->hits_503++;
        pthread_mutex_unlock(&s->mu);
        reply(k, 503, NULL, "down", 4);
    } else if (strcmp(path, "/auth") == 0) {
        char auth[256];
        if (!header(head, hlen, "authorization", auth, sizeof auth))
            strcpy(auth, "none");
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_auth, sizeof s->last_auth, "%s", auth);
        pthread_mutex_unlock(&s->mu);
        reply(k, 200, NULL, auth, strlen(auth));
    } else if (strcmp(path, "/close") == 0) {
        reply(k, 200, "Connection: close\r\n", "bye", 3);
        return 1;
    } else if (strcmp(path, "/drop") == 0) {
        /* a keep-alive reply, then the server forgets the connection (an
         * idle timeout on its side): the client must not trip on it */
        reply(k, 200, NULL, "dropped", 7);
        return 1;
    } else if (strncmp(path, "/id?i=", 6) == 0) {
        int id = atoi(path + 6);
        pthread_mutex_lock(&s->mu);
        if (s->n_arrive < MAX_ARRIVALS) {
            s->arrive_us[s->n_arrive] = ss_mono_us();
            s->arrive_id[s->n_arrive++] = id;
        }
        pthread_mutex_unlock(&s->mu);
        reply(k, 200, NULL, path + 6, strlen(path + 6));
    } else {
        reply(k, 404, NULL, "unknown", 7);
    }
    return 0;
}

/* Serves every complete request in the buffer; returns 1 to close. */
static int process(tserver *s, tconn *k)
{
    for (;;) {
        if (k->hung) {
            k->len = 0;
            return 0;
        }
        char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
        if (!end)
            return 0;
        size_t hlen = (size_t)(end - k->buf) + 4;
        char method[16], path[1024], cl[32];
        if (sscanf(k->buf, "%15s %1023s", method, path) != 2)
            return 1;
        size_t blen = header(k->buf, hlen, "content-length", cl, sizeof cl) ? strtoul(cl, NULL, 10) : 0;
        if (k->len < hlen + blen)
            return 0;
        if (serve(s, k, method, path, k->buf, hlen, k->buf + hlen, blen))
            return 1;
        memmove(k->buf, k->buf + hlen + blen, k->len - hlen - blen);
        k->len -= hlen + blen;
    }
}

static void *server_thread(void *arg)
{
    tserver *s = arg;
    for (;;) {
        struct pollfd pf[MAX_CONNS + 2];
        int map[MAX_CONNS + 2];
        int n = 0;
        pf[n++] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
        pf[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
        for (int i = 0; i < MAX_CONNS; i++) {
            if (s->conns[i].fd >= 0) {
                map[n] = i;
                pf[n++] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
            }
        }
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        if (pf[0].revents)
            break;
        if (pf[1].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CONNS && slot < 0; i++)
                    if (s->conns[i].fd < 0)
                        slot = i;
                if (slot < 0) {
                    close(fd);
                } else {
                    struct timeval tv = { .tv_sec = 5 };
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                    s->conns[slot].fd = fd;
                    pthread_mutex_lock(&s->mu);
                    s->accepted++;
                    pthread_mutex_unlock(&s->mu);
                }
            }
        }
        for (int j = 2; j < n; j++) {
            if (!pf[j].revents)
                continue;
            tconn *k = &s->conns[map[j]];
            if (k->len + 65536 > k->cap) {
                k->cap = k->cap ? k->cap * 2 : 131072;
                k->buf = realloc(k->buf, k->cap);
            }
            ssize_t r = read(k->fd, k->buf + k->len, k->cap - k->len - 1);
            if (r <= 0) {
                conn_drop(k);
                continue;
            }
            k->len += (size_t)r;
            k->buf[k->len] = '\0';
            if (process(s, k))
                conn_drop(k);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            conn_drop(&s->conns[i]);
    return NULL;
}

static void server_start(tserver *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < MAX_CONNS; i++)
        s->conns[i].fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pipe(s->wake), 0);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 128), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_thread, s), 0);
}

static void server_stop(tserver *s)
{
    assert_int_equal(write(s->wake[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
}

static int server_get(tserver *s, int *field)
{
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ---- fixture -------------------------------------------------------------- */

typedef struct rec {
    int calls;
    ss_http_result result;
    int status;
    char *body;
    size_t body_len;
    char ctype[128];
    char xmethod[16];
    char xexpect[32];
    char error[512];
    int attempts;
    int64_t total_ms;
    int order;
} rec;

typedef struct fx {
    uv_loop_t loop;
    ss_http_client *c;
    tserver srv;
    int client_done;            /* close's done callback ran */
    int finished;               /* request callbacks so far */
    int watchdog_fired;
    int64_t deadline_us;
    int loop_closed;
    char url[256];
} fx;

static fx *F;   /* the running test's fixture (callbacks use it) */

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    server_start(&f->srv);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->c = ss_http_client_create(&f->loop, NULL);
    assert_non_null(f->c);
    F = f;
    *state = f;
    return 0;
}

static void on_client_closed(void *arg)
{
    fx *f = arg;
    f->client_done++;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Closes the client (if still open), runs the loop dry and checks that
 * nothing was left on it. */
static void close_and_check(fx *f)
{
    if (f->c) {
        ss_http_client_close(f->c, on_client_closed, f);
        f->c = NULL;
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->client_done, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    f->loop_closed = 1;
}

static int teardown(void **state)
{
    fx *f = *state;
    int rc = 0;
    if (!f->loop_closed) {    /* a failed test: clean up without asserting */
        if (f->c)
            ss_http_client_close(f->c, on_client_closed, f);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_walk(&f->loop, on_walk_close, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        rc = uv_loop_close(&f->loop) == 0 ? 0 : -1;
    }
    server_stop(&f->srv);
    free(f);
    F = NULL;
    return rc;
}

static void on_tick(uv_timer_t *t)
{
    fx *f = t->data;
    if (ss_mono_us() >= f->deadline_us)
        f->watchdog_fired = 1;
}

/* Runs the loop until *count >= want, failing after limit_ms. A 10 ms tick
 * bounds each UV_RUN_ONCE: a callback that ran in the timer phase would
 * otherwise leave that iteration blocked in poll with nothing to wake it. */
static void run_until(fx *f, const int *count, int want, int limit_ms)
{
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    tick.data = f;
    f->deadline_us = ss_mono_us() + (int64_t)limit_ms * 1000;
    f->watchdog_fired = 0;
    uv_timer_start(&tick, on_tick, 10, 10);
    while (*count < want && !f->watchdog_fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(f->watchdog_fired);
}

static void on_sleep(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop for ms (other callbacks keep firing). */
static void run_for(fx *f, int ms)
{
    int fired = 0;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_sleep, (uint64_t)ms, 0);
    while (!fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void on_done(const ss_http_client_response *res, void *arg)
{
    rec *r = arg;
    r->calls++;
    r->result = res->result;
    r->status = res->status;
    free(r->body);
    r->body = malloc(res->body_len + 1);
    memcpy(r->body, res->body, res->body_len + 1);
    r->body_len = res->body_len;
    snprintf(r->ctype, sizeof r->ctype, "%s", res->content_type ? res->content_type : "");
    const char *xm = ss_http_response_header(res, "x-method");
    snprintf(r->xmethod, sizeof r->xmethod, "%s", xm ? xm : "");
    const char *xe = ss_http_response_header(res, "X-EXPECT");
    snprintf(r->xexpect, sizeof r->xexpect, "%s", xe ? xe : "");
    snprintf(r->error, sizeof r->error, "%s", res->error);
    r->attempts = res->attempts;
    r->total_ms = res->total_ms;
    r->order = ++F->finished;
}

static void rec_free(rec *r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i].body);
}

static const char *url(fx *f, const char *path)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->srv.port, path);
    return f->url;
}

static void start(fx *f, const ss_http_client_request *q, rec *r)
{
    assert_int_equal(ss_http_client_start(f->c, q, on_done, r, NULL), 0);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_methods_echo(void **state)
{
    fx *f = *state;
    static const struct { ss_http_method m; const char *name; const char *body; } cases[] = {
        { SS_HTTP_GET, "GET", NULL },
        { SS_HTTP_POST, "POST", "[{\"type\":\"read\",\"mbean\":\"metrics:name=*\"}]" },
        { SS_HTTP_PUT, "PUT", "{\"name\":\"alpha\",\"config\":{\"workerCount\":3}}" },
        { SS_HTTP_PATCH, "PATCH", "{\"spec\":{\"replicas\":4}}" },
        { SS_HTTP_DELETE, "DELETE", NULL },
    };
    rec r[5] = { 0 };
    for (int i = 0; i < 5; i++) {
        ss_http_client_request q = {
            .method = cases[i].m, .url = url(f, "/echo"),
            .body = cases[i].body, .body_len = cases[i].body ? strlen(cases[i].body) : 0,
            .content_type = cases[i].body ? "application/merge-patch+json" : NULL,
        };
        start(f, &q, &r[i]);
    }
    /* a body over libcurl's Expect: 100-continue threshold (1 MiB), binary */
    const size_t big_len = (1u << 20) + 4096;
    char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7);
    rec rb = { 0 };
    ss_http_client_request qb = { .method = SS_HTTP_POST, .url = url(f, "/echo"), .body = big,
                                  .body_len = big_len, .content_type = "application/octet-stream" };
    start(f, &qb, &rb);
    run_until(f, &f->finished, 6, 5000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].result, SS_HTTP_RES_OK);
        assert_int_equal(r[i].status, 200);
        assert_string_equal(r[i].xmethod, cases[i].name);
        assert_string_equal(r[i].body, cases[i].body ? cases[i].body : "");
        assert_string_equal(r[i].ctype, cases[i].body ? "application/merge-patch+json" : "none");
        assert_string_equal(r[i].error, "");
        assert_int_equal(r[i].attempts, 1);
    }
    assert_int_equal(rb.result, SS_HTTP_RES_OK);
    assert_int_equal(rb.body_len, big_len);
    assert_memory_equal(rb.body, big, big_len);
    assert_string_equal(rb.xexpect, "none");   /* no Expect: 100-continue wait */
    size_t sent = big_len;
    for (int i = 0; i < 5; i++)
        sent += cases[i].body ? strlen(cases[i].body) : 0;
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.bytes_sent, sent);
    assert_int_equal(st.bytes_received, sent);   /* everything echoed */
    assert_int_equal(st.finished[SS_HTTP_RES_OK], 6);
    assert_int_equal(st.attempts, 6);
    assert_int_equal(st.retries, 0);
    rec_free(r, 5);
    rec_free(&rb, 1);
    free(big);
    close_and_check(f);
}

typedef struct chain {
    int left;
    rec r;
    ss_http_client_request q;
} chain;

static void on_chain(const ss_http_client_response *res, void *arg)
{
    chain *ch = arg;
    on_done(res, &ch->r);
    if (res->result == SS_HTTP_RES_OK && --ch->left > 0)
        assert_int_equal(ss_http_client_start(F->c, &ch->q, on_chain, ch, NULL), 0);
}

static void test_keepalive_reuse(void **state)
{
    fx *f = *state;
    chain ch = { .left = 10, .q = { .method = SS_HTTP_GET, .url = url(f, "/echo") } };
    assert_int_equal(ss_http_client_start(f->c, &ch.q, on_chain, &ch, NULL), 0);
    run_until(f, &f->finished, 10, 5000);
    assert_int_equal(ch.r.result, SS_HTTP_RES_OK);
    assert_int_equal(server_get(&f->srv, &f->srv.requests), 10);
    assert_int_equal(server_get(&f->srv, &f->srv.accepted), 1);
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.finished[SS_HTTP_RES_OK], 10);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.sockets, 0);   /* idle pooled sockets are not watched */
    rec_free(&ch.r, 1);
    close_and_check(f);
}

static void test_concurrent_20(void **state)
{
    fx *f = *state;
    rec r[20] = { 0 };
    char urls[20][64], bodies[20][32];
    for (int i = 0; i < 20; i++) {
        snprintf(bodies[i], sizeof bodies[i], "request-%d", i);
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/echo", f->srv.port);
        ss_http_client_request q = { .method = SS_HTTP_POST, .url = urls[i], .body = bodies[i],
                                     .body_len = strlen(bodies[i]), .content_type = "text/plain" };
        start(f, &q, &r[i]);
    }
    run_until(f, &f->finished, 20, 10000);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].result, SS_HTTP_RES_OK);
        assert_string_equal(r[i].body, bodies[i]);
    }
    /* per-host cap (default 8): the rest queued inside libcurl */
    int accepted = server_get(&f->srv, &f->srv.accepted);
    assert_true(accepted >= 1 && accepted <= SS_HTTP_DEFAULT_MAX_HOST_CONNECTIONS);
    rec_free(r, 20);
    close_and_check(f);
}

static void test_timeout(void **state)
{
    fx *f = *state;
    rec r = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/hang"), .timeout_ms = 300 };
    int64_t t0 = ss_mono_us();
    start(f, &q, &r);
    run_until(f, &f->finished, 1, 5000);
    int64_t ms = (ss_mono_us() - t0) / 1000;
    assert_int_equal(r.result, SS_HTTP_RES_TIMEOUT);
    assert_int_equal(r.status, 0);
    assert_true(ms >= 290 && ms < 4000);
    assert_true(r.total_ms >= 290);
    assert_true(strlen(r.error) > 0);
    rec_free(&r, 1);
    close_and_check(f);
}

/* A port with nothing listening: bound but not listening, so the kernel
 * answers RST and nobody else can take the port meanwhile. */
static int dead_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bind(*fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(*fd, (struct sockaddr *)&a, &al);
    return ntohs(a.sin_port);
}

static void test_connect_refused(void **state)
{
    fx *f = *state;
    int fd, port = dead_port(&fd);
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x", port);
    rec r[2] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = u };
    start(f, &q, &r[0]);
    q.retry = (ss_http_retry){ .max_attempts = 3, .backoff_base_ms = 10 };
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 5000);
    assert_int_equal(r[0].result, SS_HTTP_RES_CONNECT);
    assert_int_equal(r[0].attempts, 1);
    assert_int_equal(r[1].result, SS_HTTP_RES_CONNECT);
    assert_int_equal(r[1].attempts, 3);
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.finished[SS_HTTP_RES_CONNECT], 2);
    close(fd);
    rec_free(r, 2);
    close_and_check(f);
}

static void test_dns_failure(void **state)
{
    fx *f = *state;
    rec r[2] = { 0 };
    /* .invalid never resolves (RFC 6761); retried under RETRY_CONNECT */
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = "http://sparkscale-test.invalid/x",
                                 .timeout_ms = 8000,
                                 .retry = { .max_attempts = 2, .backoff_base_ms = 10 } };
    start(f, &q, &r[0]);
    /* libcurl's message names the host: a token that happens to appear in
     * it is still scrubbed from the error text */
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = "http://scrub-me-tok.invalid/x",
                                  .timeout_ms = 8000, .bearer_token = "scrub-me-tok" };
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 20000);
    if (r[0].result == SS_HTTP_RES_TIMEOUT) {
        /* only when this machine's resolver does not answer at all */
        fprintf(stderr, "note: the resolver did not answer within 8 s: %s\n", r[0].error);
    } else {
        assert_int_equal(r[0].result, SS_HTTP_RES_DNS);
        assert_non_null(strstr(r[0].error, "sparkscale-test.invalid"));
        assert_int_equal(r[1].result, SS_HTTP_RES_DNS);
        assert_non_null(strstr(r[1].error, "***.invalid"));
    }
    assert_int_equal(r[0].attempts, 2);
    assert_null(strstr(r[1].error, "scrub-me-tok"));
    rec_free(r, 2);
    close_and_check(f);
}

static void test_too_large(void **state)
{
    fx *f = *state;
    rec r[4] = { 0 };
    char u1[128], u2[128];
    snprintf(u1, sizeof u1, "http://127.0.0.1:%d/big?n=100000", f->srv.port);
    snprintf(u2, sizeof u2, "http://127.0.0.1:%d/bigchunk?n=100000", f->srv.port);
    /* Content-Length over the cap, and a chunked body that grows past it */
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = u1, .max_response_bytes = 1000 };
    start(f, &q, &r[0]);
    q.url = u2;
    start(f, &q, &r[1]);
    /* exactly at the cap is fine */
    q.url = u1;
    q.max_response_bytes = 100000;
    start(f, &q, &r[2]);
    q.url = u2;
    start(f, &q, &r[3]);
    run_until(f, &f->finished, 4, 5000);
    assert_int_equal(r[0].result, SS_HTTP_RES_TOO_LARGE);
    assert_int_equal(r[1].result, SS_HTTP_RES_TOO_LARGE);
    assert_string_equal(r[1].error, "response body over 1000 bytes");
    assert_int_equal(r[0].body_len, 0);
    assert_int_equal(r[2].result, SS_HTTP_RES_OK);
    assert_int_equal(r[2].body_len, 100000);
    assert_int_equal(r[3].result, SS_HTTP_RES_OK);
    assert_int_equal(r[3].body_len, 100000);
    assert_int_equal(r[3].body[99999], 'y');
    rec_free(r, 4);
    close_and_check(f);
}

static void test_retry_503_then_200(void **state)
{
    fx *f = *state;
    rec r[2] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/flaky"),
                                 .retry = { .max_attempts = 3, .backoff_base_ms = 20 } };
    start(f, &q, &r[0]);
    run_until(f, &f->finished, 1, 5000);
    assert_int_equal(r[0].result, SS_HTTP_RES_OK);
    assert_int_equal(r[0].status, 200);
    assert_string_equal(r[0].body, "ok");
    assert_int_equal(r[0].attempts, 2);
    assert_int_equal(server_get(&f->srv, &f->srv.hits_flaky), 2);
    /* retries exhausted: the last response is what the caller sees */
    q.url = url(f, "/503");
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 5000);
    assert_int_equal(r[1].result, SS_HTTP_RES_OK);
    assert_int_equal(r[1].status, 503);
    assert_string_equal(r[1].body, "down");
    assert_int_equal(r[1].attempts, 3);
    assert_int_equal(server_get(&f->srv, &f->srv.hits_503), 3);
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.retries, 3);
    assert_int_equal(st.attempts, 5);
    /* 5xx retries can be switched off */
    q.retry.on = SS_HTTP_RETRY_CONNECT;
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 3, 5000);
    assert_int_equal(r[1].attempts, 1);
    rec_free(r, 2);
    close_and_check(f);
}

static void test_retry_after_429(void **state)
{
    fx *f = *state;
    rec r = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/429"),
                                 .retry = { .max_attempts = 2, .backoff_base_ms = 10 } };
    int64_t t0 = ss_mono_us();
    start(f, &q, &r);
    run_until(f, &f->finished, 1, 5000);
    assert_int_equal(r.result, SS_HTTP_RES_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    assert_true((ss_mono_us() - t0) / 1000 >= 1000);
    assert_true(r.total_ms >= 1000);
    rec_free(&r, 1);
    close_and_check(f);
}

static void test_retry_after_date_and_cap(void **state)
{
    fx *f = *state;
    rec r[2] = { 0 };
    /* HTTP-date form: now + 2 s at one-second resolution, so 1-2 s away */
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/429date"),
                                 .retry = { .max_attempts = 2, .backoff_base_ms = 10 } };
    start(f, &q, &r[0]);
    run_until(f, &f->finished, 1, 6000);
    assert_int_equal(r[0].status, 200);
    assert_int_equal(r[0].attempts, 2);
    assert_true(r[0].total_ms >= 900);
    /* Retry-After: 3600 capped at 200 ms */
    pthread_mutex_lock(&f->srv.mu);
    f->srv.hits_429 = 0;
    pthread_mutex_unlock(&f->srv.mu);
    q.url = url(f, "/429long");
    q.retry.max_retry_after_ms = 200;
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 5000);
    assert_int_equal(r[1].status, 200);
    assert_int_equal(r[1].attempts, 2);
    assert_true(r[1].total_ms >= 200 && r[1].total_ms < 3000);
    rec_free(r, 2);
    close_and_check(f);
}

static void test_404_not_retried(void **state)
{
    fx *f = *state;
    rec r = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/404"),
                                 .retry = { .max_attempts = 5, .backoff_base_ms = 10 } };
    start(f, &q, &r);
    run_until(f, &f->finished, 1, 5000);
    assert_int_equal(r.result, SS_HTTP_RES_OK);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(server_get(&f->srv, &f->srv.hits_404), 1);
    rec_free(&r, 1);
    close_and_check(f);
}

typedef struct cancel_ctx {
    ss_http_req *req;
    rec *r;
    int calls_after;
} cancel_ctx;

static void on_cancel_timer(uv_timer_t *t)
{
    cancel_ctx *cc = t->data;
    ss_http_req_cancel(cc->req);
    cc->calls_after = cc->r->calls;   /* the callback ran inside cancel */
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_in_flight(void **state)
{
    fx *f = *state;
    rec r[2] = { 0 };
    cancel_ctx cc[2] = { { .r = &r[0] }, { .r = &r[1] } };
    /* one waiting for the server, one sleeping in backoff after a 503 */
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/hang") };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r[0], &cc[0].req), 0);
    q.url = url(f, "/503");
    q.retry = (ss_http_retry){ .max_attempts = 5, .backoff_base_ms = 4000 };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r[1], &cc[1].req), 0);
    uv_timer_t t[2];
    for (int i = 0; i < 2; i++) {
        uv_timer_init(&f->loop, &t[i]);
        t[i].data = &cc[i];
        uv_timer_start(&t[i], on_cancel_timer, 300, 0);
    }
    run_until(f, &f->finished, 2, 5000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cc[i].calls_after, 1);
        assert_int_equal(r[i].result, SS_HTTP_RES_CANCELLED);
        assert_string_equal(r[i].error, "cancelled");
    }
    assert_int_equal(r[0].attempts, 1);
    assert_int_equal(r[1].attempts, 1);
    run_for(f, 100);   /* nothing else arrives */
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[1].calls, 1);
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.finished[SS_HTTP_RES_CANCELLED], 2);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.waiting, 0);
    rec_free(r, 2);
    close_and_check(f);
}

typedef struct pair {
    rec r[2];
    ss_http_req *other;
    int cancelled_other;
} pair;

static void on_first_cancels_other(const ss_http_client_response *res, void *arg)
{
    pair *p = arg;
    on_done(res, &p->r[0]);
    if (p->r[1].calls == 0) {   /* still pending (maybe its reply is queued too) */
        ss_http_req_cancel(p->other);
        p->cancelled_other = 1;
    }
}

static void on_second(const ss_http_client_response *res, void *arg)
{
    pair *p = arg;
    on_done(res, &p->r[1]);
}

/* One request's callback cancels another that may have finished in the
 * same libcurl pass: the second still gets exactly one callback. */
static void test_cancel_from_callback(void **state)
{
    fx *f = *state;
    for (int round = 0; round < 20; round++) {
        pair p = { 0 };
        int base = f->finished;
        ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/echo") };
        assert_int_equal(ss_http_client_start(f->c, &q, on_first_cancels_other, &p, NULL), 0);
        q.url = url(f, round % 2 ? "/echo" : "/hang");
        assert_int_equal(ss_http_client_start(f->c, &q, on_second, &p, &p.other), 0);
        run_until(f, &f->finished, base + 2, 5000);
        run_for(f, 5);
        assert_int_equal(p.r[0].calls, 1);
        assert_int_equal(p.r[1].calls, 1);
        if (p.cancelled_other)
            assert_int_equal(p.r[1].result, SS_HTTP_RES_CANCELLED);
        else
            assert_int_equal(p.r[1].result, SS_HTTP_RES_OK);
        rec_free(p.r, 2);
    }
    close_and_check(f);
}

static void test_close_in_flight(void **state)
{
    fx *f = *state;
    rec r[6] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/hang") };
    for (int i = 0; i < 3; i++)
        start(f, &q, &r[i]);
    /* one sleeping in backoff */
    q.url = url(f, "/503");
    q.retry = (ss_http_retry){ .max_attempts = 3, .backoff_base_ms = 5000 };
    start(f, &q, &r[3]);
    /* two queued on a limiter that has no token left */
    ss_http_limiter *l = ss_http_limiter_create(0.1, 1);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = url(f, "/echo"), .limiter = l };
    start(f, &q, &r[4]);
    start(f, &q, &r[5]);
    ss_http_limiter_release(l);     /* the requests hold it now */
    run_until(f, &f->finished, 1, 5000);    /* the first /echo passes */
    assert_int_equal(r[4].result, SS_HTTP_RES_OK);
    ss_http_client_stats st;
    for (int waited = 0; waited < 5000; waited += 20) {   /* until the 503 came back */
        ss_http_client_stats_get(f->c, &st);
        if (st.waiting == 2)
            break;
        run_for(f, 20);
    }
    assert_int_equal(st.in_flight, 3);
    assert_int_equal(st.waiting, 2);
    ss_http_client_close(f->c, on_client_closed, f);
    f->c = NULL;
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            continue;
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].result, SS_HTTP_RES_CANCELLED);
        assert_string_equal(r[i].error, "client closed");
    }
    assert_int_equal(f->client_done, 0);   /* handles still closing */
    rec_free(r, 6);
    close_and_check(f);
}

static void on_done_then_close(const ss_http_client_response *res, void *arg)
{
    on_done(res, arg);
    ss_http_client_close(F->c, on_client_closed, F);
    /* closing: no new work is accepted */
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = "http://127.0.0.1:1/" };
    rec dummy = { 0 };
    assert_int_equal(ss_http_client_start(F->c, &q, on_done, &dummy, NULL), -ESHUTDOWN);
    F->c = NULL;
}

static void test_close_from_callback(void **state)
{
    fx *f = *state;
    rec r[3] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/hang") };
    start(f, &q, &r[0]);
    start(f, &q, &r[1]);
    q.url = url(f, "/echo");
    assert_int_equal(ss_http_client_start(f->c, &q, on_done_then_close, &r[2], NULL), 0);
    run_until(f, &f->finished, 3, 5000);
    assert_int_equal(r[2].result, SS_HTTP_RES_OK);
    assert_int_equal(r[0].result, SS_HTTP_RES_CANCELLED);
    assert_int_equal(r[1].result, SS_HTTP_RES_CANCELLED);
    rec_free(r, 3);
    close_and_check(f);
}

static void test_auth_headers(void **state)
{
    fx *f = *state;
    rec r[3] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/auth"),
                                 .bearer_token = "tok-123.abc" };
    start(f, &q, &r[0]);
    run_until(f, &f->finished, 1, 5000);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = url(f, "/auth"),
                                  .basic_user = "alice", .basic_password = "s3cret" };
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 5000);
    char u[128];
    snprintf(u, sizeof u, "http://bob:pw%%40x@127.0.0.1:%d/auth", f->srv.port);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = u };
    start(f, &q, &r[2]);
    run_until(f, &f->finished, 3, 5000);
    assert_string_equal(r[0].body, "Bearer tok-123.abc");
    assert_string_equal(r[1].body, "Basic YWxpY2U6czNjcmV0");
    assert_string_equal(r[2].body, "Basic Ym9iOnB3QHg=");
    /* both at once is refused */
    q.basic_user = "a";
    q.bearer_token = "b";
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r[0], NULL), -EINVAL);
    rec_free(r, 3);
    close_and_check(f);
}

static void test_secrets_stay_out(void **state)
{
    fx *f = *state;
    int fd, port = dead_port(&fd);
    char u[160];
    snprintf(u, sizeof u, "http://carol:hunter2hunter2@127.0.0.1:%d/a?access_token=zzz", port);
    rec r[2] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = u };
    start(f, &q, &r[0]);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/b", port);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = u, .bearer_token = "tok-secret-42" };
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 5000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].result, SS_HTTP_RES_CONNECT);
        assert_true(strlen(r[i].error) > 0);
        assert_null(strstr(r[i].error, "hunter2"));
        assert_null(strstr(r[i].error, "tok-secret"));
    }
    close(fd);
    rec_free(r, 2);

    char out[256];
    size_t n = ss_mask_url("http://user:pa55@host:8080/path?x=1", out, sizeof out);
    assert_string_equal(out, "http://user:***@host:8080/path?x=1");
    assert_int_equal(n, strlen(out));
    ss_mask_url("https://tokenonly@host/", out, sizeof out);
    assert_string_equal(out, "https://***@host/");
    ss_mask_url("http://h/p?a=1&access_token=abc&Signature=s&b=2#frag", out, sizeof out);
    assert_string_equal(out, "http://h/p?a=1&access_token=***&Signature=***&b=2#frag");
    ss_mask_url("http://h/p@x?q=1", out, sizeof out);   /* '@' in the path is not userinfo */
    assert_string_equal(out, "http://h/p@x?q=1");
    ss_mask_url("http://a:b@c:d@host/", out, sizeof out);   /* the last '@' ends userinfo */
    assert_string_equal(out, "http://a:***@host/");
    /* truncated: never a secret, always terminated */
    n = ss_mask_url("http://u:verysecret@host/", out, 12);
    assert_int_equal(n, strlen("http://u:***@host/"));
    assert_string_equal(out, "http://u:**");
    assert_null(strstr(out, "very"));
    close_and_check(f);
}

static void test_bad_requests(void **state)
{
    fx *f = *state;
    rec r = { 0 };
    const char *inject[] = { "X-Ok: 1", "X-Bad: 1\r\nX-Evil: 2" };
    const char *noname[] = { ": value" };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = url(f, "/echo") };
    assert_int_equal(ss_http_client_start(f->c, &q, NULL, NULL, NULL), -EINVAL);
    q.headers = inject;
    q.n_headers = 2;
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    q.headers = noname;
    q.n_headers = 1;
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = "ftp://127.0.0.1/x" };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = "http://exa mple/x" };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    q = (ss_http_client_request){ .method = (ss_http_method)42, .url = url(f, "/echo") };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = url(f, "/echo"), .timeout_ms = -1 };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = url(f, "/echo"),
                                  .content_type = "text/plain\r\nX-Evil: 1" };
    assert_int_equal(ss_http_client_start(f->c, &q, on_done, &r, NULL), -EINVAL);
    /* extra headers do reach the server */
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = url(f, "/echo"),
                                  .headers = inject, .n_headers = 1 };
    start(f, &q, &r);
    run_until(f, &f->finished, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 200);
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.started, 1);
    rec_free(&r, 1);
    close_and_check(f);
}

static void test_limiter_math(void **state)
{
    (void)state;
    assert_null(ss_http_limiter_create(0, 1));
    assert_null(ss_http_limiter_create(5, 0));
    ss_http_limiter *l = ss_http_limiter_create(5, 2);
    int64_t t = 1000000;
    assert_int_equal(ss_http_limiter_reserve(l, t), 0);
    assert_int_equal(ss_http_limiter_reserve(l, t), 0);
    assert_int_equal(ss_http_limiter_reserve(l, t), 200000);
    assert_int_equal(ss_http_limiter_reserve(l, t), 400000);
    /* the queue drains at qps; after a long idle the bucket is full again */
    assert_int_equal(ss_http_limiter_reserve(l, t + 400000), 200000);
    t += 10000000;
    assert_int_equal(ss_http_limiter_reserve(l, t), 0);
    assert_int_equal(ss_http_limiter_reserve(l, t), 0);
    assert_int_equal(ss_http_limiter_reserve(l, t), 200000);
    ss_http_limiter_release(l);
}

static void test_rate_limiter(void **state)
{
    fx *f = *state;
    ss_http_limiter *l = ss_http_limiter_create(5, 2);
    rec r[6] = { 0 };
    char urls[6][64];
    int64_t t0 = ss_mono_us();
    for (int i = 0; i < 6; i++) {
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/id?i=%d", f->srv.port, i);
        ss_http_client_request q = { .method = SS_HTTP_GET, .url = urls[i], .limiter = l };
        start(f, &q, &r[i]);
    }
    ss_http_limiter_release(l);
    run_until(f, &f->finished, 6, 10000);
    pthread_mutex_lock(&f->srv.mu);
    int n = f->srv.n_arrive;
    int ids[MAX_ARRIVALS];
    int64_t at[MAX_ARRIVALS];
    memcpy(ids, f->srv.arrive_id, sizeof ids);
    memcpy(at, f->srv.arrive_us, sizeof at);
    pthread_mutex_unlock(&f->srv.mu);
    assert_int_equal(n, 6);
    /* the burst of two may arrive in either order; the rest in FIFO order,
     * no earlier than 200 ms apart (qps 5). Lower bounds only. */
    for (int i = 2; i < 6; i++) {
        assert_int_equal(ids[i], i);
        int64_t due_ms = 200 * (i - 1);
        assert_true((at[i] - t0) / 1000 >= due_ms - 5);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(r[i].result, SS_HTTP_RES_OK);
    rec_free(r, 6);
    close_and_check(f);
}

/* Connections that end after every reply (Connection: close, or dropped
 * without notice): libcurl removes sockets and soon gets the same fd
 * numbers back for new ones, which must get fresh poll handles. */
static void test_socket_churn(void **state)
{
    fx *f = *state;
    static const char *paths[] = { "/close", "/echo", "/drop", "/echo" };
    chain ch[4];
    for (int i = 0; i < 4; i++) {
        ch[i] = (chain){ .left = 12 };
        ch[i].q = (ss_http_client_request){ .method = SS_HTTP_GET,
                                             .url = strdup(url(f, paths[i])) };
        assert_int_equal(ss_http_client_start(f->c, &ch[i].q, on_chain, &ch[i], NULL), 0);
    }
    run_until(f, &f->finished, 48, 10000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ch[i].left, 0);
        assert_int_equal(ch[i].r.result, SS_HTTP_RES_OK);
        free((char *)ch[i].q.url);
        rec_free(&ch[i].r, 1);
    }
    ss_http_client_stats st;
    ss_http_client_stats_get(f->c, &st);
    assert_int_equal(st.finished[SS_HTTP_RES_OK], 48);
    assert_true(st.connects >= 12);
    assert_int_equal(st.sockets, 0);
    close_and_check(f);
}

/* ---- TLS: openssl s_server ------------------------------------------------ */

typedef struct tls_srv {
    pid_t pid;
    int port;
} tls_srv;

static char tls_dir[64];

static int run_cmd(char *const argv[])
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void make_cert(const char *name, const char *cn)
{
    char key[128], crt[128], subj[64];
    snprintf(key, sizeof key, "%s/%s.key", tls_dir, name);
    snprintf(crt, sizeof crt, "%s/%s.pem", tls_dir, name);
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                     "-days", "1", "-subj", subj, "-addext",
                     "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL };
    int rc = run_cmd(argv);
    if (rc != 0)
        fail_msg("cannot run `openssl req` (rc %d): the TLS tests need the openssl binary", rc);
}

/* Starts `openssl s_server -www` on a free loopback port; extra args may
 * demand a client certificate. */
static void tls_start(tls_srv *t, const char *const *extra)
{
    char crt[128], key[128];
    snprintf(crt, sizeof crt, "%s/server.pem", tls_dir);
    snprintf(key, sizeof key, "%s/server.key", tls_dir);
    char *argv[24] = { "openssl", "s_server", "-www", "-accept", "127.0.0.1:0", "-cert", crt,
                       "-key", key };
    int n = 9;
    for (; extra && *extra; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    int out[2];
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&t->pid, "openssl", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0)
        fail_msg("cannot start `openssl s_server`: %s", strerror(rc));
    /* wait for "ACCEPT 127.0.0.1:<port>" */
    char buf[4096];
    size_t len = 0;
    t->port = 0;
    int64_t deadline = ss_mono_us() + 10000000;
    while (!t->port && ss_mono_us() < deadline && len < sizeof buf - 1) {
        struct pollfd pf = { .fd = out[0], .events = POLLIN };
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t r = read(out[0], buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        const char *p = strstr(buf, "ACCEPT 127.0.0.1:");
        if (p && strchr(p, '\n'))
            t->port = atoi(p + strlen("ACCEPT 127.0.0.1:"));
    }
    close(out[0]);   /* s_server writes little after this; a closed pipe is fine */
    if (!t->port) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        fail_msg("openssl s_server did not report its port");
    }
}

static void tls_stop(tls_srv *t)
{
    kill(t->pid, SIGTERM);
    waitpid(t->pid, NULL, 0);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *b = calloc(1, 65536);
    size_t n = fread(b, 1, 65535, fp);
    b[n] = '\0';
    fclose(fp);
    return b;
}

static void test_tls(void **state)
{
    fx *f = *state;
    snprintf(tls_dir, sizeof tls_dir, "/tmp/ss_http_tls_XXXXXX");
    assert_non_null(mkdtemp(tls_dir));
    make_cert("server", "localhost");
    make_cert("client", "sparkscale-client");
    char ca[128], ccrt[128], ckey[128];
    snprintf(ca, sizeof ca, "%s/server.pem", tls_dir);
    snprintf(ccrt, sizeof ccrt, "%s/client.pem", tls_dir);
    snprintf(ckey, sizeof ckey, "%s/client.key", tls_dir);
    char *ca_pem = slurp(ca), *cert_pem = slurp(ccrt), *key_pem = slurp(ckey);

    tls_srv t;
    tls_start(&t, NULL);
    char u[128], ul[128];
    snprintf(u, sizeof u, "https://127.0.0.1:%d/", t.port);
    snprintf(ul, sizeof ul, "https://localhost:%d/", t.port);
    /* s_server -www serves one connection at a time: one request at a time */
    rec r[5] = { 0 };
    ss_http_client_request q = { .method = SS_HTTP_GET, .url = u, .timeout_ms = 10000 };
    start(f, &q, &r[0]);                       /* verify on, unknown CA */
    run_until(f, &f->finished, 1, 15000);
    q.tls.ca_file = ca;                        /* the CA file */
    start(f, &q, &r[1]);
    run_until(f, &f->finished, 2, 15000);
    q.tls = (ss_http_tls){ .insecure_skip_verify = 1 };
    start(f, &q, &r[2]);
    run_until(f, &f->finished, 3, 15000);
    q.tls = (ss_http_tls){ .ca_pem = ca_pem }; /* the CA in memory, by host name */
    q.url = ul;
    start(f, &q, &r[3]);
    run_until(f, &f->finished, 4, 15000);
    tls_stop(&t);
    assert_int_equal(r[0].result, SS_HTTP_RES_TLS);
    assert_int_equal(r[0].status, 0);
    assert_true(strlen(r[0].error) > 0);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(r[i].result, SS_HTTP_RES_OK);
        assert_int_equal(r[i].status, 200);
        assert_non_null(strstr(r[i].body, "s_server"));
    }

    /* a server that demands a client certificate */
    const char *verify[] = { "-Verify", "1", "-CAfile", ccrt, NULL };
    tls_start(&t, verify);
    snprintf(u, sizeof u, "https://127.0.0.1:%d/", t.port);
    rec c[3] = { 0 };
    int base = f->finished;
    q = (ss_http_client_request){ .method = SS_HTTP_GET, .url = u, .timeout_ms = 10000,
                                  .tls = { .ca_file = ca } };
    start(f, &q, &c[0]);
    run_until(f, &f->finished, base + 1, 15000);
    q.tls.cert_file = ccrt;
    q.tls.key_file = ckey;
    start(f, &q, &c[1]);
    run_until(f, &f->finished, base + 2, 15000);
    q.tls = (ss_http_tls){ .ca_pem = ca_pem, .cert_pem = cert_pem, .key_pem = key_pem };
    start(f, &q, &c[2]);
    run_until(f, &f->finished, base + 3, 15000);
    tls_stop(&t);
    assert_int_not_equal(c[0].result, SS_HTTP_RES_OK);
    assert_int_equal(c[1].result, SS_HTTP_RES_OK);
    assert_int_equal(c[1].status, 200);
    assert_int_equal(c[2].result, SS_HTTP_RES_OK);
    assert_int_equal(c[2].status, 200);

    free(ca_pem);
    free(cert_pem);
    free(key_pem);
    rec_free(r, 5);
    rec_free(c, 3);
    char *rm[] = { "rm", "-rf", tls_dir, NULL };
    run_cmd(rm);
    close_and_check(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* loopback tests must not be sent through a proxy from the environment */
    static const char *proxies[] = { "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                     "ALL_PROXY" };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_methods_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_20, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_503_then_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_date_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_stay_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test(test_limiter_math),
        cmocka_unit_test_setup_teardown(test_rate_limiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
