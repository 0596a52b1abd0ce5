/* fixture_rest.h: a small HTTP/1.1 server on its own thread for runtime
 * tests and benchmarks: GET/POST/PUT with Content-Length bodies, keep-alive,
 * answers from a handler (called under the fixture's mutex), an optional
 * delay per answer. It plays the Spark master and Oshinko REST for the
 * actuator. Header-only: each test is its own program. */
#ifndef SS_TEST_FIXTURE_REST_H
#define SS_TEST_FIXTURE_REST_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FX_MAX_CONNS 64
#define FX_MAX_REQ (1 << 20)

typedef struct fx_request {
    const char *method;
    const char *path;       /* query included */
    const char *body;       /* NUL-terminated */
    size_t body_len;
    int64_t at_us;          /* CLOCK_MONOTONIC when the whole request was read */
} fx_request;

typedef struct fx_reply {
    int status;
    char content_type[64];
    char *body;             /* malloc'd by the handler, freed by the fixture; NULL = empty */
    int delay_ms;           /* answer this much later */
    int close;              /* close without answering */
} fx_reply;

typedef void (*fx_handler)(void *ctx, const fx_request *req, fx_reply *rep);

typedef struct fx_conn {
    int fd;
    char *buf;
    size_t len, cap;
    char *out;              /* a reply waiting for its time */
    size_t outlen;
    int64_t send_at_us;
    int close_after;
} fx_conn;

typedef struct fx_server {
    int lfd, port;
    int wake[2];
    volatile int stop;
    pthread_t thread;
    pthread_mutex_t mu;
    fx_handler handler;
    void *ctx;
    fx_conn conns[FX_MAX_CONNS];
    uint64_t requests;
} fx_server;

static inline int64_t fx_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void fx_conn_close(fx_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static inline const char *fx_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* Parses one whole request in c->buf if there is one; returns bytes used. */
static inline size_t fx_try_request(fx_server *s, fx_conn *c)
{
    if (c->len < 4 || c->out)
        return 0;
    char *end = NULL;
    for (size_t i = 0; i + 3 < c->len; i++)
        if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0) {
            end = c->buf + i;
            break;
        }
    if (!end)
        return 0;
    size_t head_len = (size_t)(end - c->buf) + 4;
    size_t clen = 0;
    for (char *p = c->buf; p < end; p++)
        if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
            clen = (size_t)strtoul(p + 15, NULL, 10);
    if (c->len < head_len + clen)
        return 0;
    char method[16] = "", path[1024] = "";
    sscanf(c->buf, "%15s %1023s", method, path);
    char *body = malloc(clen + 1);
    memcpy(body, c->buf + head_len, clen);
    body[clen] = '\0';
    fx_request req = { method, path, body, clen, fx_now_us() };
    fx_reply rep = { .status = 200 };
    snprintf(rep.content_type, sizeof rep.content_type, "application/json");
    pthread_mutex_lock(&s->mu);
    s->requests++;
    s->handler(s->ctx, &req, &rep);
    pthread_mutex_unlock(&s->mu);
    free(body);
    if (rep.close) {
        free(rep.body);
        c->close_after = 2;
        return head_len + clen;
    }
    size_t blen = rep.body ? strlen(rep.body) : 0;
    c->out = malloc(blen + 256);
    c->outlen = (size_t)snprintf(c->out, 256,
                                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                                 rep.status, fx_reason(rep.status), rep.content_type, blen);
    if (blen)
        memcpy(c->out + c->outlen, rep.body, blen);
    c->outlen += blen;
    free(rep.body);
    c->send_at_us = fx_now_us() + (int64_t)rep.delay_ms * 1000;
    return head_len + clen;
}

static inline void fx_flush(fx_conn *c)
{
    if (!c->out || fx_now_us() < c->send_at_us)
        return;
    size_t off = 0;
    while (off < c->outlen) {
        ssize_t w = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(c->out);
    c->out = NULL;
}

static inline void *fx_thread(void *arg)
{
    fx_server *s = arg;
    while (!s->stop) {
        struct pollfd pf[FX_MAX_CONNS + 2];
        int idx[FX_MAX_CONNS + 2];
        int n = 0, timeout = 1000;
        pf[n] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
        idx[n++] = -1;
        pf[n] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
        idx[n++] = -2;
        int64_t now = fx_now_us();
        for (int i = 0; i < FX_MAX_CONNS; i++) {
            fx_conn *c = &s->conns[i];
            if (c->fd < 0)
                continue;
            pf[n] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
            idx[n++] = i;
            if (c->out) {
                int64_t ms = (c->send_at_us - now) / 1000;
                if (ms < 0)
                    ms = 0;
                if (ms < timeout)
                    timeout = (int)ms;
            }
        }
        poll(pf, (nfds_t)n, timeout);
        for (int k = 0; k < n; k++) {
            if (idx[k] == -1 && (pf[k].revents & POLLIN)) {
                int fd = accept(s->lfd, NULL, NULL);
                if (fd < 0)
                    continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                int placed = 0;
                for (int i = 0; i < FX_MAX_CONNS && !placed; i++)
                    if (s->conns[i].fd < 0) {
                        s->conns[i].fd = fd;
                        placed = 1;
                    }
                if (!placed)
                    close(fd);
            } else if (idx[k] == -2 && (pf[k].revents & POLLIN)) {
                char tmp[64];
                while (read(s->wake[0], tmp, sizeof tmp) > 0)
                    ;
            } else if (idx[k] >= 0 && (pf[k].revents & (POLLIN | POLLHUP | POLLERR))) {
                fx_conn *c = &s->conns[idx[k]];
                if (c->len + 65536 > c->cap) {
                    c->cap = c->cap ? c->cap * 2 : 131072;
                    c->buf = realloc(c->buf, c->cap);
                }
                ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
                if (r <= 0 || c->len + (size_t)r > FX_MAX_REQ) {
                    fx_conn_close(c);
                    continue;
                }
                c->len += (size_t)r;
            }
        }
        for (int i = 0; i < FX_MAX_CONNS; i++) {
            fx_conn *c = &s->conns[i];
            if (c->fd < 0)
                continue;
            for (;;) {
                fx_flush(c);
                if (c->close_after) {
                    fx_conn_close(c);
                    break;
                }
                size_t used = fx_try_request(s, c);
                if (!used)
                    break;
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
            }
        }
    }
    for (int i = 0; i < FX_MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            fx_conn_close(&s->conns[i]);
    return NULL;
}

/* Starts on 127.0.0.1 and a free port. Returns 0 or -1. */
static inline int fx_start(fx_server *s, fx_handler h, void *ctx)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < FX_MAX_CONNS; i++)
        s->conns[i].fd = -1;
    s->handler = h;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 128) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 || pipe(s->wake) != 0)
        return -1;
    fcntl(s->wake[0], F_SETFL, O_NONBLOCK);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, fx_thread, s);
    return 0;
}

static inline void fx_lock(fx_server *s) { pthread_mutex_lock(&s->mu); }
static inline void fx_unlock(fx_server *s) { pthread_mutex_unlock(&s->mu); }

static inline void fx_stop(fx_server *s)
{
    s->stop = 1;
    if (write(s->wake[1], "x", 1) < 0) {
        /* the poll timeout ends it anyway */
    }
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
}

#endif
