/* fixture_http.h: a loopback HTTP/1.1 server on its own thread that answers
 * what a test sets per path (recorded Spark master or Jolokia bodies) and
 * misbehaves on demand: slow answers, no answer at all, 5xx, a cut body,
 * a closed connection. Keep-alive, many connections, plain poll().
 * Header-only, for runtime tests and benchmarks. */
#ifndef SS_TEST_FIXTURE_HTTP_H
#define SS_TEST_FIXTURE_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FXS_MAX_ROUTES 16
#define FXS_MAX_CONNS 512

typedef enum fxs_mode {
    FXS_ANSWER = 0,    /* status + body after delay_ms */
    FXS_HANG,          /* read the request, never answer */
    FXS_TRUNCATE,      /* announce the whole body, send half, close */
    FXS_CLOSE          /* close the connection without a byte */
} fxs_mode;

typedef struct fxs_route {
    char path[128];            /* request path without query; "" = every path */
    fxs_mode mode;
    int status;
    char content_type[64];
    char *body;                /* owned */
    size_t len;
    int delay_ms;
    int delay_max_ms;          /* > delay_ms: each answer waits a random time in between */
    unsigned long hits;
} fxs_route;

typedef struct fxs_conn {
    int fd;
    char *buf;
    size_t len, cap;
    int64_t due_us;            /* > 0: an answer is pending until then */
    int route;                 /* of the pending answer */
    int hung;
} fxs_conn;

typedef struct fxs {
    int lfd, port;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t mu;
    fxs_route routes[FXS_MAX_ROUTES];
    int nroutes;
    unsigned long requests;
    unsigned long posts;
    char last_body[512];       /* the last request body (Jolokia bulk), cut */
    char last_auth[256];
    fxs_conn conns[FXS_MAX_CONNS];
    volatile int stop;
    unsigned rng;
} fxs;

static inline int64_t fxs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void fxs_send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}

static inline void fxs_conn_drop(fxs_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k->buf);
    memset(k, 0, sizeof *k);
    k->fd = -1;
}

/* Sets (or replaces) the route of path; body copied. Thread-safe. */
static inline void fxs_set(fxs *s, const char *path, fxs_mode mode, int status,
                           const char *content_type, const char *body, size_t len, int delay_ms)
{
    pthread_mutex_lock(&s->mu);
    int i;
    for (i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            break;
    if (i == s->nroutes && s->nroutes < FXS_MAX_ROUTES)
        s->nroutes++;
    fxs_route *r = &s->routes[i];
    free(r->body);
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->mode = mode;
    r->status = status;
    snprintf(r->content_type, sizeof r->content_type, "%s",
             content_type ? content_type : "application/json");
    r->body = malloc(len + 1);
    memcpy(r->body, body ? body : "", len);
    r->body[len] = '\0';
    r->len = len;
    r->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

/* Answers of path wait a random time in [min_ms, max_ms]. */
static inline void fxs_set_delay(fxs *s, const char *path, int min_ms, int max_ms)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0) {
            s->routes[i].delay_ms = min_ms;
            s->routes[i].delay_max_ms = max_ms;
        }
    pthread_mutex_unlock(&s->mu);
}

static inline unsigned long fxs_hits(fxs *s, const char *path)
{
    unsigned long n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            n = s->routes[i].hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline int fxs_find_route(fxs *s, const char *path)
{
    for (int i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            return i;
    for (int i = 0; i < s->nroutes; i++)
        if (s->routes[i].path[0] == '\0')
            return i;
    return -1;
}

static inline void fxs_answer(fxs *s, fxs_conn *k, int ri)
{
    char head[512];
    pthread_mutex_lock(&s->mu);
    if (ri < 0) {
        pthread_mutex_unlock(&s->mu);
        const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        fxs_send_all(k->fd, nf, strlen(nf));
        return;
    }
    fxs_route r = s->routes[ri];
    char *body = malloc(r.len + 1);
    memcpy(body, r.body, r.len);
    pthread_mutex_unlock(&s->mu);
    if (r.mode == FXS_CLOSE) {
        free(body);
        fxs_conn_drop(k);
        return;
    }
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d Fixture\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n", r.status, r.content_type, r.len);
    fxs_send_all(k->fd, head, (size_t)n);
    if (r.mode == FXS_TRUNCATE) {
        fxs_send_all(k->fd, body, r.len / 2);
        free(body);
        fxs_conn_drop(k);
        return;
    }
    fxs_send_all(k->fd, body, r.len);
    free(body);
}

/* A complete request in k->buf: route it (answer now, later, or never). */
static inline int fxs_request(fxs *s, fxs_conn *k)
{
    char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - k->buf) + 4, blen = 0;
    const char *cl = memmem(k->buf, hlen, "Content-Length:", 15);
    if (!cl)
        cl = memmem(k->buf, hlen, "content-length:", 15);
    if (cl)
        blen = strtoul(cl + 15, NULL, 10);
    if (k->len < hlen + blen)
        return 0;
    char method[16] = "", path[256] = "";
    sscanf(k->buf, "%15s %255s", method, path);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    pthread_mutex_lock(&s->mu);
    s->requests++;
    if (strcmp(method, "POST") == 0) {
        s->posts++;
        size_t n = blen < sizeof s->last_body - 1 ? blen : sizeof s->last_body - 1;
        memcpy(s->last_body, k->buf + hlen, n);
        s->last_body[n] = '\0';
    }
    const char *auth = memmem(k->buf, hlen, "Authorization: ", 15);
    if (auth) {
        const char *eol = memchr(auth, '\r', hlen - (size_t)(auth - k->buf));
        size_t n = eol ? (size_t)(eol - auth - 15) : 0;
        if (n >= sizeof s->last_auth)
            n = sizeof s->last_auth - 1;
        memcpy(s->last_auth, auth + 15, n);
        s->last_auth[n] = '\0';
    }
    int ri = fxs_find_route(s, path);
    int delay = 0;
    fxs_mode mode = FXS_ANSWER;
    if (ri >= 0) {
        s->routes[ri].hits++;
        mode = s->routes[ri].mode;
        delay = s->routes[ri].delay_ms;
        if (s->routes[ri].delay_max_ms > delay)
            delay += (int)(rand_r(&s->rng) % (unsigned)(s->routes[ri].delay_max_ms - delay + 1));
    }
    pthread_mutex_unlock(&s->mu);
    memmove(k->buf, k->buf + hlen + blen, k->len - hlen - blen);
    k->len -= hlen + blen;
    if (mode == FXS_HANG) {
        k->hung = 1;
        return 0;
    }
    if (delay > 0) {
        k->due_us = fxs_now_us() + (int64_t)delay * 1000;
        k->route = ri;
        return 0;
    }
    fxs_answer(s, k, ri);
    return k->fd >= 0;
}

static inline void *fxs_thread(void *arg)
{
    fxs *s = arg;
    struct pollfd *pf = calloc(FXS_MAX_CONNS + 2, sizeof *pf);
    int *idx = calloc(FXS_MAX_CONNS + 2, sizeof *idx);
    while (!s->stop) {
        int n = 0, timeout = 1000;
        int64_t now = fxs_now_us();
        pf[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
        pf[n++] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
        for (int i = 0; i < FXS_MAX_CONNS; i++) {
            fxs_conn *k = &s->conns[i];
            if (k->fd < 0)
                continue;
            if (k->due_us > 0) {
                int64_t ms = (k->due_us - now) / 1000 + 1;
                if (ms < timeout)
                    timeout = ms < 0 ? 0 : (int)ms;
            }
            idx[n] = i;
            pf[n++] = (struct pollfd){ .fd = k->fd, .events = POLLIN };
        }
        poll(pf, (nfds_t)n, timeout);
        if (pf[0].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                int i;
                for (i = 0; i < FXS_MAX_CONNS && s->conns[i].fd >= 0; i++)
                    ;
                if (i == FXS_MAX_CONNS) {
                    close(fd);
                } else {
                    memset(&s->conns[i], 0, sizeof s->conns[i]);
                    s->conns[i].fd = fd;
                }
            }
        }
        for (int j = 2; j < n; j++) {
            fxs_conn *k = &s->conns[idx[j]];
            if (k->fd < 0 || !(pf[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (k->len + 4096 > k->cap) {
                k->cap = k->cap ? k->cap * 2 : 8192;
                k->buf = realloc(k->buf, k->cap);
            }
            ssize_t r = read(k->fd, k->buf + k->len, k->cap - k->len);
            if (r <= 0) {
                fxs_conn_drop(k);
                continue;
            }
            k->len += (size_t)r;
            while (k->fd >= 0 && !k->hung && k->due_us == 0 && fxs_request(s, k))
                ;
        }
        now = fxs_now_us();
        for (int i = 0; i < FXS_MAX_CONNS; i++) {
            fxs_conn *k = &s->conns[i];
            if (k->fd >= 0 && k->due_us > 0 && k->due_us <= now) {
                k->due_us = 0;
                fxs_answer(s, k, k->route);
                while (k->fd >= 0 && !k->hung && k->due_us == 0 && fxs_request(s, k))
                    ;
            }
        }
    }
    free(pf);
    free(idx);
    return NULL;
}

/* Starts a server on 127.0.0.1, an ephemeral port. Returns 0 or -1. */
static inline int fxs_start(fxs *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < FXS_MAX_CONNS; i++)
        s->conns[i].fd = -1;
    s->rng = 12345;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 512) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 || pipe(s->wake) != 0) {
        close(s->lfd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, fxs_thread, s) == 0 ? 0 : -1;
}

static inline void fxs_stop(fxs *s)
{
    s->stop = 1;
    if (write(s->wake[1], "x", 1) < 0)
        perror("fxs wake");
    pthread_join(s->thread, NULL);
    for (int i = 0; i < FXS_MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            fxs_conn_drop(&s->conns[i]);
    for (int i = 0; i < s->nroutes; i++)
        free(s->routes[i].body);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
}

#endif
