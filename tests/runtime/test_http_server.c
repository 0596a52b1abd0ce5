/* test_http_server.c: the status HTTP server over real sockets: framing,
 * keep-alive, pipelining, limits, timeouts and clean shutdown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/http/server.h"

#define BIG_LINES 131072 /* /big: 2 MiB in 16-byte lines */

/* The server runs on its own loop thread; the test thread is a blocking
 * client. Only the async callbacks cross threads. */
typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop, probe;
    ss_http_server *srv;
    pthread_t thread;
    int port;
    int done_calls;        /* loop thread; read after join */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int probe_ready;
    ss_http_stats stats;
} fixture;

/* /stream?n=N[&fail=K]: a reply in N parts of PART bytes, streamed; part K
 * fails.  Counters are read by the test thread after the loop is idle. */
#define PART 16384
static _Atomic int stream_steps, stream_releases, stream_starts;

typedef struct sstate {
    int i, n, fail;
} sstate;

static void part(ss_http_response *res, int i)
{
    char line[32];
    int k = snprintf(line, sizeof line, "part %06d ", i);
    ss_http_response_append(res, line, (size_t)k);
    for (int j = k; j < PART - 1; j++)
        ss_http_response_append(res, "x", 1);
    ss_http_response_append(res, "\n", 1);
}

static int stream_more(void *st, ss_http_response *res)
{
    sstate *s = st;
    stream_steps++;
    if (++s->i == s->fail)
        return -1;
    if (s->i < s->n)
        part(res, s->i);
    return s->i + 1 < s->n;
}

static void stream_release(void *st)
{
    stream_releases++;
    free(st);
}

static void handler(void *ctx, const ss_http_request *req, ss_http_response *res)
{
    if (strcmp(req->path, "/stream") == 0) {
        sstate *s = calloc(1, sizeof *s);
        s->n = 4;
        s->fail = -1;
        sscanf(req->query, "n=%d&fail=%d", &s->n, &s->fail);
        stream_starts++;
        ss_http_response_status(res, 200, "text/plain");
        part(res, 0);
        ss_http_response_stream(res, stream_more, s, stream_release);
    } else if (strcmp(req->path, "/") == 0) {
        ss_http_response_status(res, 200, "text/plain");
        ss_http_response_append(res, "hello\n", 6);
    } else if (strcmp(req->path, "/echo") == 0) {
        ss_http_response_status(res, 200, "application/json");
        ss_http_response_printf(res, "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\"}",
                                req->method, req->path, req->query);
    } else if (strcmp(req->path, "/nostatus") == 0) {
        ss_http_response_append(res, "implicit", 8);
    } else if (strcmp(req->path, "/long") == 0) {
        /* printf past the first buffer: the grow-and-retry path */
        char pad[5000];
        memset(pad, 'p', sizeof pad - 1);
        pad[sizeof pad - 1] = '\0';
        ss_http_response_printf(res, "a%sb", pad);
        ss_http_response_printf(res, "%d", 42);
    } else if (strcmp(req->path, "/big") == 0) {
        for (int i = 0; i < BIG_LINES; i++)
            ss_http_response_append(res, "0123456789abcde\n", 16);
    } else if (strcmp(req->path, "/badtype") == 0) {
        ss_http_response_append(res, "never sent", 10);
        ss_http_response_status(res, 200, "text/plain\r\nX-Evil: 1");
    } else if (strcmp(req->path, "/nocontent") == 0) {
        ss_http_response_status(res, 204, NULL);
    } else {
        ss_http_response_status(res, 404, "text/plain");
        ss_http_response_printf(res, "no route %s\n", req->path);
    }
}

static void on_done(void *ctx)
{
    fixture *f = ctx;
    f->done_calls++;
}

static void on_stop(uv_async_t *a)
{
    fixture *f = a->data;
    ss_http_server_close(f->srv, on_done, f);
    uv_close((uv_handle_t *)&f->stop, NULL);
    uv_close((uv_handle_t *)&f->probe, NULL);
}

static void on_probe(uv_async_t *a)
{
    fixture *f = a->data;
    ss_http_stats st;
    ss_http_server_stats(f->srv, &st);
    pthread_mutex_lock(&f->mu);
    f->stats = st;
    f->probe_ready = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void *loop_thread(void *arg)
{
    fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static fixture *start_server(uint64_t timeout_ms, size_t max_conns)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    char err[256] = "";
    f->srv = ss_http_server_create(&f->loop, "127.0.0.1", 0, handler, f, err, sizeof err);
    assert_non_null(f->srv);
    ss_http_server_set_timeout(f->srv, timeout_ms);
    ss_http_server_set_max_connections(f->srv, max_conns);
    f->port = ss_http_server_port(f->srv);
    assert_true(f->port > 0);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    uv_async_init(&f->loop, &f->stop, on_stop);
    uv_async_init(&f->loop, &f->probe, on_probe);
    f->stop.data = f;
    f->probe.data = f;
    assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
    return f;
}

/* Closes the server with whatever connections are open, and checks that
 * every handle was closed: uv_loop_close fails with EBUSY otherwise. */
static void join_loop(fixture *f)
{
    /* a server that fails to close its handles fails the test, not hangs it */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    if (pthread_timedjoin_np(f->thread, NULL, &deadline) != 0)
        fail_msg("the server loop did not end: handles left open");
}

static void stop_server(fixture *f)
{
    uv_async_send(&f->stop);
    join_loop(f);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

static ss_http_stats get_stats(fixture *f)
{
    pthread_mutex_lock(&f->mu);
    f->probe_ready = 0;
    pthread_mutex_unlock(&f->mu);
    uv_async_send(&f->probe);
    pthread_mutex_lock(&f->mu);
    while (!f->probe_ready)
        pthread_cond_wait(&f->cv, &f->mu);
    ss_http_stats st = f->stats;
    pthread_mutex_unlock(&f->mu);
    return st;
}

/* ---- a blocking client ---- */

typedef struct client {
    int fd;
    char *buf;
    size_t len, cap;
} client;

typedef struct resp {
    int status;
    char head[8192];       /* status line and headers, NUL-terminated */
    char *body;
    size_t body_len;
    long content_length;   /* -1 if absent */
} resp;

static int connect_fd(int family, int port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    /* a bound on every read: a server bug fails the test instead of hanging it */
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int r;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
        inet_pton(AF_INET6, "::1", &a.sin6_addr);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    assert_int_equal(r, 0);
    return fd;
}

static void client_open(client *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = connect_fd(AF_INET, port);
}

static void client_close(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void client_send(client *c, const char *s)
{
    assert_int_equal(send_all(c->fd, s, strlen(s)), 0);
}

/* Reads more into the client buffer: >0 bytes, 0 EOF, -1 error/timeout. */
static ssize_t client_fill(client *c)
{
    if (c->cap - c->len < 4096) {
        c->cap = c->cap ? c->cap * 2 : 16384;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            c->len += (size_t)n;
        return n < 0 ? -1 : n;
    }
}

static const char *find_header(const resp *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return p + 3 + n + strspn(p + 3 + n, " ");
    }
    return NULL;
}

/* Does header name have exactly value (up to the CRLF)? */
static int header_is(const resp *r, const char *name, const char *value)
{
    const char *v = find_header(r, name);
    return v && strncmp(v, value, strlen(value)) == 0 && v[strlen(value)] == '\r';
}

/* Reads one response (no body if head_only). Returns 0, or -1 if the
 * connection ended or timed out first. */
static int read_response(client *c, resp *r, int head_only)
{
    memset(r, 0, sizeof *r);
    char *end;
    for (;;) {
        end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end)
            break;
        if (client_fill(c) <= 0)
            return -1;
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    assert_true(hlen < sizeof r->head);
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    const char *cl = find_header(r, "Content-Length");
    r->content_length = cl ? strtol(cl, NULL, 10) : -1;
    size_t blen = (head_only || !cl) ? 0 : (size_t)r->content_length;
    while (c->len < hlen + blen)
        if (client_fill(c) <= 0)
            return -1;
    r->body = malloc(blen + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->buf + hlen, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    return 0;
}

/* Reads a chunked body after read_response(head_only) took the head: 0
 * with the whole body in *out, or -1 if the connection ended first. */
static int read_chunked(client *c, char **out, size_t *outlen)
{
    size_t blen = 0, pos = 0;
    char *body = NULL;
    for (;;) {
        char *eol;
        while (!(eol = c->len > pos ? memmem(c->buf + pos, c->len - pos, "\r\n", 2) : NULL))
            if (client_fill(c) <= 0)
                goto cut;
        size_t size = strtoul(c->buf + pos, NULL, 16);
        size_t start = (size_t)(eol - c->buf) + 2;
        while (c->len < start + size + 2)
            if (client_fill(c) <= 0)
                goto cut;
        assert_memory_equal(c->buf + start + size, "\r\n", 2);
        if (size == 0) {
            pos = start + 2;
            break;
        }
        body = realloc(body, blen + size + 1);
        memcpy(body + blen, c->buf + start, size);
        blen += size;
        pos = start + size + 2;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    if (!body)
        body = calloc(1, 1);
    body[blen] = '\0';
    *out = body;
    *outlen = blen;
    return 0;
cut:
    free(body);
    return -1;
}

static void check_parts(const char *body, size_t len, int n)
{
    assert_int_equal(len, (size_t)n * PART);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "part %06d ", i);
        assert_memory_equal(body + (size_t)i * PART, want, strlen(want));
    }
}

/* Reads a response and checks status (and body, if not NULL). */
static void expect_response(client *c, int status, const char *body, resp *out)
{
    resp r;
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, status);
    if (body)
        assert_string_equal(r.body, body);
    if (out)
        *out = r;
    else
        free(r.body);
}

/* True once the server has closed: EOF or reset, not a read timeout, and no
 * unread bytes left over. */
static int server_closed(client *c)
{
    if (c->len > 0)
        return 0;
    char b[256];
    for (;;) {
        ssize_t n = recv(c->fd, b, sizeof b, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == ECONNRESET;
        return 0;
    }
}

/* ---- tests ---- */

static void test_get_and_keep_alive(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    client_open(&c, f->port);
    resp r;

    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 200, "hello\n", &r);
    assert_true(header_is(&r, "Content-Type", "text/plain"));
    assert_true(header_is(&r, "Content-Length", "6"));
    assert_non_null(find_header(&r, "Date"));
    assert_null(find_header(&r, "Connection"));
    free(r.body);

    /* same connection: keep-alive is the HTTP/1.1 default */
    client_send(&c, "GET /echo?x=1&y=%20 HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n\r\n");
    expect_response(&c, 200, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"x=1&y=%20\"}", &r);
    assert_true(header_is(&r, "Content-Type", "application/json"));
    free(r.body);

    client_send(&c, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 404, "no route /nowhere\n", NULL);

    client_send(&c, "GET /nostatus HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 200, "implicit", &r);
    assert_true(header_is(&r, "Content-Type", "text/plain; charset=utf-8"));
    free(r.body);

    client_send(&c, "GET /long HTTP/1.1\r\nhost: t\r\n\r\n");
    expect_response(&c, 200, NULL, &r);
    assert_int_equal(r.body_len, 1 + 4999 + 1 + 2);
    assert_int_equal(r.body[0], 'a');
    assert_int_equal(r.body[4999], 'p');
    assert_int_equal(r.body[5000], 'b');
    assert_string_equal(r.body + 5001, "42");
    free(r.body);

    /* a handler trying to inject a header line gets a 500 instead */
    client_send(&c, "GET /badtype HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 500, NULL, &r);
    assert_null(find_header(&r, "X-Evil"));
    free(r.body);

    client_send(&c, "GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 204, "", &r);
    assert_null(find_header(&r, "Content-Length"));
    free(r.body);

    /* absolute-form target, bare LF line ends, a leading empty line */
    client_send(&c, "\r\nGET http://t:1/echo?q HTTP/1.1\nHost: t\n\n");
    expect_response(&c, 200, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"q\"}", NULL);

    ss_http_stats st = get_stats(f);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.requests, 8);
    assert_int_equal(st.open, 1);

    /* Connection: close is honoured */
    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\n");
    expect_response(&c, 200, "hello\n", &r);
    assert_true(header_is(&r, "Connection", "close"));
    free(r.body);
    assert_true(server_closed(&c));
    client_close(&c);
    stop_server(f);
}

static void test_pipelined(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    client_open(&c, f->port);
    /* four requests in one write, one of them a HEAD and one a POST whose
     * body must be skipped, not parsed as a request */
    client_send(&c, "GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                    "HEAD /echo?n=2 HTTP/1.1\r\nHost: t\r\n\r\n"
                    "POST /echo?n=3 HTTP/1.1\r\nHost: t\r\nContent-Length: 27\r\n\r\n"
                    "GET /echo?n=evil HTTP/1.1\r\n"
                    "GET /echo?n=4 HTTP/1.1\r\nHost: t\r\n\r\n");
    resp r;
    expect_response(&c, 200, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"n=1\"}", NULL);
    assert_int_equal(read_response(&c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, strlen("{\"method\":\"HEAD\",\"path\":\"/echo\",\"query\":\"n=2\"}"));
    free(r.body);
    expect_response(&c, 405, NULL, &r);
    assert_true(header_is(&r, "Allow", "GET, HEAD"));
    assert_null(find_header(&r, "Connection"));
    free(r.body);
    expect_response(&c, 200, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"n=4\"}", NULL);

    /* pipelined big replies: the server stops reading while they queue */
    client_send(&c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /big HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        expect_response(&c, 200, NULL, &r);
        assert_int_equal(r.body_len, (size_t)BIG_LINES * 16);
        assert_memory_equal(r.body + r.body_len - 16, "0123456789abcde\n", 16);
        free(r.body);
    }
    expect_response(&c, 200, "hello\n", NULL);
    client_close(&c);
    stop_server(f);
}

static void test_backpressure(void **state)
{
    enum { N = 30 };
    fixture *f = start_server(5000, 0);
    client c;
    client_open(&c, f->port);
    char reqs[N * 32];
    size_t k = 0;
    for (int i = 0; i < N; i++)
        k += (size_t)sprintf(reqs + k, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    /* the client reads nothing: once the kernel buffers are full the server
     * must stop taking requests instead of queueing N * 2 MiB of replies */
    assert_int_equal(send_all(c.fd, reqs, k), 0);
    ss_http_stats st = { 0 };
    for (int i = 0; i < 500 && st.requests == 0; i++) {
        usleep(2000);
        st = get_stats(f);
    }
    usleep(100000);
    st = get_stats(f);
    print_message("replies queued while the client was not reading: %llu of %d\n",
                  (unsigned long long)st.requests, N);
    assert_true(st.requests >= 1);
    assert_true(st.requests < N / 2);
    /* and it resumes as the client reads */
    for (int i = 0; i < N; i++) {
        resp r;
        expect_response(&c, 200, NULL, &r);
        assert_int_equal(r.body_len, (size_t)BIG_LINES * 16);
        free(r.body);
    }
    st = get_stats(f);
    assert_int_equal(st.requests, N);
    client_close(&c);
    stop_server(f);
}

static void test_streamed(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    resp r;
    char *body;
    size_t len;
    stream_steps = stream_releases = stream_starts = 0;
    client_open(&c, f->port);
    /* a streamed reply, a HEAD of one and a plain request, pipelined: each
     * answered whole and in order */
    client_send(&c, "GET /stream?n=40 HTTP/1.1\r\nHost: t\r\n\r\n"
                    "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_true(header_is(&r, "Transfer-Encoding", "chunked"));
    assert_int_equal(r.content_length, -1);
    free(r.body);
    assert_int_equal(read_chunked(&c, &body, &len), 0);
    check_parts(body, len, 40);
    free(body);
    assert_int_equal(read_response(&c, &r, 1), 0);   /* HEAD: the head alone */
    assert_true(header_is(&r, "Transfer-Encoding", "chunked"));
    free(r.body);
    expect_response(&c, 200, "hello\n", NULL);
    client_close(&c);

    /* HTTP/1.0 has no chunking: the body ends with the connection */
    client_open(&c, f->port);
    client_send(&c, "GET /stream?n=5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(read_response(&c, &r, 1), 0);
    assert_null(find_header(&r, "Transfer-Encoding"));
    assert_true(header_is(&r, "Connection", "close"));
    free(r.body);
    while (client_fill(&c) > 0) {
    }
    check_parts(c.buf, c.len, 5);
    client_close(&c);

    /* a part that fails: the reply is cut, never ended as if whole */
    client_open(&c, f->port);
    client_send(&c, "GET /stream?n=10&fail=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r, 1), 0);
    free(r.body);
    assert_int_equal(read_chunked(&c, &body, &len), -1);
    client_close(&c);

    /* a client that stops reading holds the stream, not its whole body */
    stream_steps = 0;
    client_open(&c, f->port);
    client_send(&c, "GET /stream?n=2000 HTTP/1.1\r\nHost: t\r\n\r\n");   /* 32 MB */
    usleep(300000);
    get_stats(f);
    int steps = stream_steps;
    usleep(300000);
    get_stats(f);
    print_message("parts built while the client did not read: %d of 2000 (the socket buffers hold them)\n",
                  steps);
    assert_true(steps < 1000);
    assert_int_equal(stream_steps, steps);   /* stalled, not buffering */
    client_close(&c);   /* and leaving mid-stream releases it */
    for (int i = 0; i < 200 && stream_releases < stream_starts; i++) {
        usleep(5000);
        get_stats(f);
    }
    assert_int_equal(stream_releases, stream_starts);
    assert_int_equal(stream_starts, 5);
    stop_server(f);
}

static void test_http10(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    resp r;
    /* HTTP/1.0 closes by default and needs no Host */
    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.0\r\n\r\n");
    expect_response(&c, 200, "hello\n", &r);
    assert_true(header_is(&r, "Connection", "close"));
    free(r.body);
    assert_true(server_closed(&c));
    client_close(&c);

    /* unless it asks for keep-alive */
    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect_response(&c, 200, "hello\n", &r);
    assert_true(header_is(&r, "Connection", "keep-alive"));
    free(r.body);
    client_send(&c, "GET /echo HTTP/1.0\r\n\r\n");
    expect_response(&c, 200, NULL, NULL);
    assert_true(server_closed(&c));
    client_close(&c);
    stop_server(f);
}

static void test_oversized_head(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    resp r;
    size_t n = SS_HTTP_MAX_HEAD + 1000;
    char *req = malloc(n + 64);
    assert_non_null(req);

    /* headers over the limit: 431 */
    client_open(&c, f->port);
    int k = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    memset(req + k, 'a', n);
    strcpy(req + k + n, "\r\n\r\n");
    client_send(&c, req);
    expect_response(&c, 431, NULL, &r);
    assert_true(header_is(&r, "Connection", "close"));
    free(r.body);
    assert_true(server_closed(&c));
    client_close(&c);

    /* too many header lines: 431 too */
    client_open(&c, f->port);
    k = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < SS_HTTP_MAX_HEADERS; i++)
        k += sprintf(req + k, "X: %d\r\n", i % 10);
    strcpy(req + k, "\r\n");
    client_send(&c, req);
    expect_response(&c, 431, NULL, NULL);
    assert_true(server_closed(&c));
    client_close(&c);

    /* a request line that never ends: 414 */
    client_open(&c, f->port);
    k = sprintf(req, "GET /");
    memset(req + k, 'u', n);
    req[k + n] = '\0';
    client_send(&c, req);
    expect_response(&c, 414, NULL, NULL);
    assert_true(server_closed(&c));
    client_close(&c);

    /* just under the limit is fine */
    client_open(&c, f->port);
    k = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    size_t pad = SS_HTTP_MAX_HEAD - (size_t)k - 4;
    memset(req + k, 'a', pad);
    strcpy(req + k + pad, "\r\n\r\n");
    assert_int_equal(strlen(req), SS_HTTP_MAX_HEAD);
    client_send(&c, req);
    expect_response(&c, 200, "hello\n", NULL);
    client_close(&c);

    free(req);
    ss_http_stats st = get_stats(f);
    assert_int_equal(st.bad_requests, 3);
    stop_server(f);
}

static void test_malformed(void **state)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        { "GARBAGE\r\n\r\n", 400 },
        { "\x00\x01\x02\xff\n\n", 400 },
        { "GET / HTTP/1.1\r\n\r\n", 400 },                                /* no Host */
        { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },          /* two Hosts */
        { "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },                    /* double space */
        { "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400 },
        { "GET / http/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505 },
        { "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\rHost: a\r\n\r\n", 400 },                       /* bare CR */
        { "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400 },                    /* space before colon */
        { "GET / HTTP/1.1\r\nBad Name: a\r\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400 },  /* obs-fold */
        { "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
        { "GETTINGTOOLONGMETHOD / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
    };
    fixture *f = start_server(5000, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client c;
        resp r;
        client_open(&c, f->port);
        const char *req = cases[i].req;
        size_t len = strlen(req) ? strlen(req) : 6; /* the NUL case */
        assert_int_equal(send_all(c.fd, req, len), 0);
        if (read_response(&c, &r, 0) != 0)
            fail_msg("case %zu: no response", i);
        if (r.status != cases[i].status)
            fail_msg("case %zu: status %d, want %d", i, r.status, cases[i].status);
        assert_true(header_is(&r, "Connection", "close"));
        free(r.body);
        assert_true(server_closed(&c));
        client_close(&c);
    }
    /* the server is still fine */
    client c;
    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 200, "hello\n", NULL);
    client_close(&c);
    ss_http_stats st = get_stats(f);
    assert_int_equal(st.bad_requests, sizeof cases / sizeof cases[0]);
    stop_server(f);
}

static void test_methods_and_bodies(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    resp r;
    client_open(&c, f->port);
    /* a small body is skipped and the connection kept */
    client_send(&c, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    expect_response(&c, 405, NULL, &r);
    assert_true(header_is(&r, "Allow", "GET, HEAD"));
    free(r.body);
    client_send(&c, "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 405, NULL, NULL);
    /* a GET body arriving in pieces is skipped too */
    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234");
    expect_response(&c, 200, "hello\n", NULL);
    client_send(&c, "56789GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 200, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"\"}", NULL);
    client_close(&c);

    /* a body too large to skip: answer, then close */
    client_open(&c, f->port);
    client_send(&c, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\nabc");
    expect_response(&c, 405, NULL, &r);
    assert_true(header_is(&r, "Connection", "close"));
    free(r.body);
    assert_true(server_closed(&c));
    client_close(&c);

    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
    expect_response(&c, 413, NULL, NULL);
    assert_true(server_closed(&c));
    client_close(&c);

    /* Expect with a body: the framing after a final reply is unknown, close */
    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    expect_response(&c, 200, "hello\n", &r);
    assert_true(header_is(&r, "Connection", "close"));
    free(r.body);
    assert_true(server_closed(&c));
    client_close(&c);
    stop_server(f);
}

static void test_head(void **state)
{
    fixture *f = start_server(5000, 0);
    client c;
    resp r;
    client_open(&c, f->port);
    client_send(&c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, 6);
    assert_true(header_is(&r, "Content-Type", "text/plain"));
    free(r.body);
    assert_int_equal(c.len, 0);
    /* had any body bytes been sent, this reply would not parse */
    client_send(&c, "HEAD /big HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r, 1), 0);
    assert_int_equal(r.content_length, BIG_LINES * 16);
    free(r.body);
    expect_response(&c, 200, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"\"}", NULL);
    client_close(&c);
    stop_server(f);
}

static void test_many_connections(void **state)
{
    enum { N = 300 };
    fixture *f = start_server(5000, 0);
    ss_http_server_set_max_per_peer(f->srv, N);   /* every client is 127.0.0.1 here */
    static client cs[N];
    for (int i = 0; i < N; i++)
        client_open(&cs[i], f->port);
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        if (send_all(cs[i].fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27) != 0) {
            refused++;
            continue;
        }
        resp r;
        if (read_response(&cs[i], &r, 0) == 0 && r.status == 200) {
            assert_string_equal(r.body, "hello\n");
            ok++;
        } else if (r.status == 503 || server_closed(&cs[i])) {
            refused++;
        }
        free(r.body);
    }
    /* Every connection was accepted; once all slots were taken, each new one
     * took the slot of the one that had waited longest without a request
     * (the first ones), so the split is exact. */
    assert_int_equal(ok, SS_HTTP_DEFAULT_MAX_CONNS);
    assert_int_equal(refused, N - SS_HTTP_DEFAULT_MAX_CONNS);
    ss_http_stats st = get_stats(f);
    assert_int_equal(st.accepted, N);
    assert_int_equal(st.evicted, N - SS_HTTP_DEFAULT_MAX_CONNS);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.open, SS_HTTP_DEFAULT_MAX_CONNS);
    for (int i = 0; i < N; i++)
        client_close(&cs[i]);

    /* the slots come back once the server has seen the EOFs */
    int answered = 0;
    for (int tries = 0; tries < 200 && !answered; tries++) {
        client c;
        resp r;
        client_open(&c, f->port);
        client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        if (read_response(&c, &r, 0) == 0 && r.status == 200)
            answered = 1;
        else
            usleep(10000);
        free(r.body);
        client_close(&c);
    }
    assert_true(answered);
    stop_server(f);
}

/* A connection from a given loopback source address. */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, src, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Slowloris from many addresses: 19 peers hold 16 half-sent requests each
 * (more than every slot), one peer tries for 40. Health probes from another
 * address are still answered, every one of them: a new connection takes the
 * slot of the one that waited longest without finishing its head, and one
 * peer cannot hold more than its share. */
static void test_slowloris_probe(void **state)
{
    enum { PEERS = 19, PER = 16, GREEDY = 40 };
    fixture *f = start_server(0, 0);
    static int fds[PEERS * PER + GREEDY];
    int n = 0;
    for (int p = 0; p < PEERS; p++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", p + 2);
        for (int k = 0; k < PER; k++) {
            int fd = connect_from(src, f->port);
            assert_true(fd >= 0);
            assert_int_equal(send_all(fd, "GET / HTTP/1.1\r\nHo", 18), 0);
            fds[n++] = fd;
        }
    }
    for (int k = 0; k < GREEDY; k++) {
        int fd = connect_from("127.0.0.40", f->port);
        if (fd >= 0) {
            send_all(fd, "GET / HTTP/1.1\r\nHo", 18);
            fds[n++] = fd;
        }
    }
    int answered = 0;
    for (int probe = 0; probe < 20; probe++) {
        client c;
        resp r;
        memset(&c, 0, sizeof c);
        c.fd = connect_from("127.0.0.1", f->port);
        client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        if (read_response(&c, &r, 0) == 0 && r.status == 200)
            answered++;
        free(r.body);
        client_close(&c);
    }
    assert_int_equal(answered, 20);
    ss_http_stats st = get_stats(f);
    assert_true(st.evicted > 0);
    assert_true(st.rejected_per_peer >= GREEDY - SS_HTTP_DEFAULT_MAX_PER_PEER);
    assert_true(st.open <= SS_HTTP_DEFAULT_MAX_CONNS);
    for (int k = 0; k < n; k++)
        close(fds[k]);
    stop_server(f);
}

static void test_slow_client_timeout(void **state)
{
    fixture *f = start_server(300, 0);
    client c;
    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.1\r\nHo");
    /* slowloris: keep trickling header bytes; the server must close anyway,
     * because only completed requests rearm the timer */
    int closed = 0;
    for (int i = 0; i < 200 && !closed; i++) {
        struct pollfd p = { .fd = c.fd, .events = POLLIN };
        if (poll(&p, 1, 20) > 0)
            closed = server_closed(&c);
        else if (send(c.fd, "x", 1, MSG_NOSIGNAL) != 1)
            closed = 1;
    }
    assert_true(closed);
    client_close(&c);

    /* an idle keep-alive connection is closed too, after its reply */
    client_open(&c, f->port);
    client_send(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&c, 200, "hello\n", NULL);
    assert_true(server_closed(&c));
    client_close(&c);

    ss_http_stats st = get_stats(f);
    assert_int_equal(st.timeouts, 2);
    assert_int_equal(st.open, 0);
    stop_server(f);
}

static void test_close_with_open_connections(void **state)
{
    /* a timeout far past join_loop's deadline: only the close ends them */
    fixture *f = start_server(60000, 0);
    client idle, half, busy, draining;
    client_open(&idle, f->port);
    client_open(&half, f->port);
    client_open(&busy, f->port);
    client_open(&draining, f->port);
    client_send(&idle, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&idle, 200, "hello\n", NULL);
    client_send(&half, "GET / HTTP/1.1\r\nHost:");
    /* replies the client never reads: writes still queued at close */
    for (int i = 0; i < 4; i++)
        client_send(&busy, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    /* a request body the server is still skipping */
    client_send(&draining, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    expect_response(&draining, 200, "hello\n", NULL);

    /* wait until the server has seen all four */
    ss_http_stats st = { 0 };
    for (int i = 0; i < 500; i++) {
        st = get_stats(f);
        if (st.accepted == 4 && st.requests >= 3)
            break;
        usleep(2000);
    }
    assert_int_equal(st.open, 4);
    stop_server(f); /* asserts done ran once and the loop closes cleanly */
    assert_true(server_closed(&idle));
    assert_true(server_closed(&half));
    assert_true(server_closed(&draining));
    client_close(&idle);
    client_close(&half);
    client_close(&busy);
    client_close(&draining);
}

static void on_shutdown_done(void *ctx)
{
    fixture *f = ctx;
    f->done_calls++;
    uv_close((uv_handle_t *)&f->stop, NULL);
    uv_close((uv_handle_t *)&f->probe, NULL);
}

static void shutdown_handler(void *ctx, const ss_http_request *req, ss_http_response *res)
{
    fixture *f = ctx;
    ss_http_server_close(f->srv, on_shutdown_done, f);
    ss_http_server_close(f->srv, on_shutdown_done, f); /* ignored */
    ss_http_response_append(res, "bye", 3);
}

static void test_close_from_handler(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    char err[128];
    f->srv = ss_http_server_create(&f->loop, "127.0.0.1", 0, shutdown_handler, f, err, sizeof err);
    assert_non_null(f->srv);
    f->port = ss_http_server_port(f->srv);
    uv_async_init(&f->loop, &f->stop, on_stop);
    uv_async_init(&f->loop, &f->probe, on_probe);
    assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
    client c;
    client_open(&c, f->port);
    client_send(&c, "GET /shutdown HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(server_closed(&c)); /* no reply: the server went away */
    client_close(&c);
    join_loop(f);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

static void count_done(void *ctx)
{
    (*(int *)ctx)++;
}

static void test_ipv6_and_create_errors(void **state)
{
    uv_loop_t loop;
    char err[256];
    assert_int_equal(uv_loop_init(&loop), 0);

    assert_null(ss_http_server_create(&loop, "not-an-ip", 0, handler, NULL, err, sizeof err));
    assert_non_null(strstr(err, "not-an-ip"));
    assert_null(ss_http_server_create(&loop, "127.0.0.1", 70000, handler, NULL, err, sizeof err));
    assert_null(ss_http_server_create(&loop, "[::1", 0, handler, NULL, err, sizeof err));

    int done = 0;
    ss_http_server *a = ss_http_server_create(&loop, "[::1]", 0, handler, NULL, err, sizeof err);
    assert_non_null(a);
    int port = ss_http_server_port(a);
    assert_true(port > 0);
    /* the port is taken: the error names it, and the half-made listener is
     * freed by the loop */
    assert_null(ss_http_server_create(&loop, "::1", port, handler, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot listen"));
    ss_http_server *b = ss_http_server_create(&loop, "localhost", 0, handler, NULL, err, sizeof err);
    assert_non_null(b);

    /* drive the loop from this thread with a non-blocking client */
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
    inet_pton(AF_INET6, "::1", &sa.sin6_addr);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    assert_true(r == 0 || errno == EINPROGRESS);
    const char *req = "GET /echo?v6 HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
    size_t sent = 0;
    char buf[1024];
    size_t got = 0;
    int eof = 0;
    for (int i = 0; i < 5000 && !eof; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (sent < strlen(req)) {
            ssize_t n = send(fd, req + sent, strlen(req) - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            eof = 1;
        else
            usleep(1000);
    }
    assert_true(eof);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "{\"method\":\"GET\",\"path\":\"/echo\",\"query\":\"v6\"}"));
    close(fd);

    ss_http_server_close(a, count_done, &done);
    ss_http_server_close(b, count_done, &done);
    assert_int_equal(done, 0); /* only from close callbacks */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_keep_alive),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_streamed),
        cmocka_unit_test(test_oversized_head),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_methods_and_bodies),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_slow_client_timeout),
        cmocka_unit_test(test_slowloris_probe),
        cmocka_unit_test(test_close_with_open_connections),
        cmocka_unit_test(test_close_from_handler),
        cmocka_unit_test(test_ipv6_and_create_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
