/* harness.h: runs a real sparkscaled (ss_daemon) on its own thread and loop,
 * on ephemeral ports, and gives tests plain blocking sockets to talk to it.
 * Header-only: each runtime test is its own program. */
#ifndef SS_TEST_HARNESS_H
#define SS_TEST_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <jansson.h>

#include "ingest/daemon.h"
#include "lib/config/config.h"

typedef struct harness {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    ss_config *cfg;
    ss_daemon *daemon;
    int tcp_port, udp_port, http_port;
    char bootstrap[512];
    volatile int ready;     /* 1 started, -1 failed */
    char err[1024];
} harness;

static inline void h_daemon_done(void *ctx)
{
    harness *h = ctx;
    uv_close((uv_handle_t *)&h->stop, NULL);
}

static inline void h_on_stop(uv_async_t *a)
{
    harness *h = a->data;
    ss_daemon_shutdown(h->daemon, 5000, h_daemon_done, h);
}

static inline void *h_thread(void *arg)
{
    harness *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* When set, runs on the test's thread after the daemon is created and
 * before its loop thread starts: the place for fault injection. */
static void (*harness_prestart)(harness *h);

/* Starts the daemon from YAML text (ports should be 0), with an optional
 * reaction hook. Returns 0 or -1 with h->err set. */
static inline int harness_start_hook(harness *h, const char *yaml, ss_daemon_reaction_fn hook,
                              void *hook_ctx)
{
    memset(h, 0, sizeof *h);
    if (ss_config_load_string(yaml, "test.yaml", &h->cfg, h->err, sizeof h->err) != 0)
        return -1;
    uv_loop_init(&h->loop);
    h->daemon = ss_daemon_create(&h->loop, h->cfg, h->err, sizeof h->err);
    if (!h->daemon) {
        uv_run(&h->loop, UV_RUN_DEFAULT);
        uv_loop_close(&h->loop);
        ss_config_free(h->cfg);
        return -1;
    }
    h->tcp_port = ss_daemon_port(h->daemon, SS_PORT_CARBON_TCP);
    h->udp_port = ss_daemon_port(h->daemon, SS_PORT_CARBON_UDP);
    h->http_port = ss_daemon_port(h->daemon, SS_PORT_HTTP);
    snprintf(h->bootstrap, sizeof h->bootstrap, "%s", ss_daemon_kafka_bootstrap(h->daemon));
    if (hook)
        ss_daemon_set_reaction_hook(h->daemon, hook, hook_ctx);
    uv_async_init(&h->loop, &h->stop, h_on_stop);
    h->stop.data = h;
    if (harness_prestart)
        harness_prestart(h);
    pthread_create(&h->thread, NULL, h_thread, h);
    return 0;
}

static inline int harness_start(harness *h, const char *yaml)
{
    return harness_start_hook(h, yaml, NULL, NULL);
}

static inline int harness_stop(harness *h);

/* cmocka group setup/teardown: *state is the running harness. */
static inline int harness_setup_group(void **state, const char *yaml)
{
    harness *h = calloc(1, sizeof *h);
    if (harness_start(h, yaml) != 0) {
        fprintf(stderr, "harness: %s\n", h->err);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

/* Fails the group unless every loop handle was closed (nothing leaked). */
static inline int harness_teardown_group(void **state)
{
    harness *h = *state;
    int rc = harness_stop(h);
    free(h);
    return rc == 0 ? 0 : -1;
}

/* Stops the daemon, joins its thread and checks the loop closed clean:
 * returns the uv_loop_close result (0 = every handle was closed). */
static inline int harness_stop(harness *h)
{
    uv_async_send(&h->stop);
    pthread_join(h->thread, NULL);
    int rc = uv_loop_close(&h->loop);
    ss_config_free(h->cfg);
    return rc;
}

static inline int h_connect(int type, int port)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int h_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Connect from src_ip (a 127.0.0.x source; NULL = any), send, close
 * (Spark 3.2+ style); waits for the daemon to close. Worker gauges are told
 * apart by their sender. */
static inline int tcp_send_from(harness *h, const char *src_ip, const char *data, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)h->tcp_port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if ((src_ip && (inet_pton(AF_INET, src_ip, &src.sin_addr) != 1 ||
                    bind(fd, (struct sockaddr *)&src, sizeof src) != 0)) ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int rc = h_write_all(fd, data, len);
    shutdown(fd, SHUT_WR);
    char tmp[64];
    while (read(fd, tmp, sizeof tmp) > 0)
        ;
    close(fd);
    return rc;
}

static inline int tcp_send(harness *h, const char *data, size_t len)
{
    return tcp_send_from(h, NULL, data, len);
}

static inline int udp_send(harness *h, const char *data, size_t len)
{
    int fd = h_connect(SOCK_DGRAM, h->udp_port);
    if (fd < 0)
        return -1;
    ssize_t w = send(fd, data, len, 0);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

/* GET path; returns the body (malloc'd) and the status in *status. */
/* The body of a chunked reply, decoded in place; an incomplete one (no
 * last chunk) comes back empty, as a reply cut short must not parse. */
static inline char *h_dechunk(char *in)
{
    char *p = in, *w = in;
    for (;;) {
        char *end;
        unsigned long n = strtoul(p, &end, 16);
        char *data = strstr(end, "\r\n");
        if (end == p || !data) {
            in[0] = '\0';
            return in;
        }
        data += 2;
        if (n == 0)
            break;
        if (strlen(data) < n + 2) {
            in[0] = '\0';
            return in;
        }
        memmove(w, data, n);
        w += n;
        p = data + n + 2;
    }
    *w = '\0';
    return in;
}

static inline char *http_get(harness *h, const char *path, int *status)
{
    int fd = h_connect(SOCK_STREAM, h->http_port);
    if (fd < 0)
        return NULL;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    h_write_all(fd, req, (size_t)n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    *status = 0;
    sscanf(buf, "HTTP/1.%*d %d", status);
    char *body = strstr(buf, "\r\n\r\n");
    char *out = strdup(body ? body + 4 : "");
    if (body && memmem(buf, (size_t)(body - buf), "Transfer-Encoding: chunked", 26))
        out = h_dechunk(out);
    free(buf);
    return out;
}

static inline json_t *get_json(harness *h, const char *path)
{
    int status;
    char *body = http_get(h, path, &status);
    if (!body || status != 200) {
        free(body);
        return NULL;
    }
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    return j;
}

/* Value of a Prometheus sample line "name{labels} value" (exact name+labels). */
static inline double get_metric(harness *h, const char *name_and_labels)
{
    int status;
    char *body = http_get(h, "/metrics", &status);
    double v = -1;
    if (body) {
        size_t n = strlen(name_and_labels);
        for (char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            if (strncmp(p, name_and_labels, n) == 0 && p[n] == ' ') {
                v = atof(p + n + 1);
                break;
            }
        }
    }
    free(body);
    return v;
}

/* Polls until get_metric(name) >= want or timeout_ms passes; returns the last value. */
static inline double wait_metric(harness *h, const char *name, double want, int timeout_ms)
{
    double v = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        v = get_metric(h, name);
        if (v >= want)
            break;
        usleep(20000);
    }
    return v;
}

/* The JSON of cluster name's app id, or NULL (borrowed from root). */
static inline json_t *find_app(json_t *root, const char *cluster, const char *app)
{
    json_t *cl, *a;
    size_t i, k;
    json_array_foreach(json_object_get(root, "clusters"), i, cl) {
        if (strcmp(json_string_value(json_object_get(cl, "name")), cluster) != 0)
            continue;
        json_array_foreach(json_object_get(cl, "apps"), k, a)
            if (strcmp(json_string_value(json_object_get(a, "id")), app) == 0)
                return a;
    }
    return NULL;
}

static inline json_t *find_cluster(json_t *root, const char *cluster)
{
    json_t *cl;
    size_t i;
    json_array_foreach(json_object_get(root, "clusters"), i, cl)
        if (strcmp(json_string_value(json_object_get(cl, "name")), cluster) == 0)
            return cl;
    return NULL;
}

/* Latest value of app gauge, or -1e9 when absent. */
static inline double app_gauge(json_t *app, const char *gauge)
{
    json_t *g = json_object_get(json_object_get(app, "gauges"), gauge);
    json_t *v = json_object_get(g, "value");
    return v ? json_number_value(v) : -1e9;
}

#endif
