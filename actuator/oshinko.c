/* oshinko.c: the Oshinko REST backend: GET /clusters/{name} reads the worker
 * count, PUT /clusters/{name} {"name":..,"config":{"workerCount":N}} sets it
 * (202 = accepted), then the count is read back until it matches. Oshinko
 * cannot choose which workers go: its replication controller does (see the
 * README: the actuator decommissions its victims through Spark first and
 * only shrinks an Oshinko cluster when allow_blind_scale_in says so). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "actuator/backend.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/http/peer.h"

#define CONFIRM_EVERY_MS 200
#define BODY_SNIPPET 160

typedef struct osh_backend osh_backend;

enum { S_GET, S_PUT, S_CONFIRM };

struct ss_backend_op {
    osh_backend *b;
    struct ss_backend_op *prev, *next;
    int scale;
    int stage;
    int desired, current, dry_run;
    int before;
    ss_http_req *req;
    uv_timer_t timer;             /* confirm pacing */
    int timer_open;
    int reported;
    int64_t t0_us, confirm_deadline_us;
    ss_backend_done_fn done;
    void *arg;
};

struct osh_backend {
    ss_backend base;
    char url[SS_URL_MAX + 256];   /* .../clusters/{name} */
    char name[SS_NAME_MAX * 2];
    struct ss_backend_op *ops;
    int destroying;
    void (*closed)(void *);
    void *closed_arg;
};

static void maybe_destroyed(osh_backend *b)
{
    if (b->destroying && !b->ops) {
        void (*closed)(void *) = b->closed;
        void *arg = b->closed_arg;
        free(b);
        if (closed)
            closed(arg);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ss_backend_op *op = h->data;
    osh_backend *b = op->b;
    if (op->prev)
        op->prev->next = op->next;
    else
        b->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    free(op);
    maybe_destroyed(b);
}

static void op_end(struct ss_backend_op *op)
{
    if (op->timer_open) {
        op->timer_open = 0;
        uv_close((uv_handle_t *)&op->timer, on_timer_closed);
    }
}

static void finish(struct ss_backend_op *op, ss_backend_result *r)
{
    if (!op->reported) {
        op->reported = 1;
        r->duration_us = ss_mono_us() - op->t0_us;
        op->done(op->arg, r);
    }
    op_end(op);
}

static int start_request(struct ss_backend_op *op, ss_http_method method, const char *body);

/* workerCount of a GET /clusters/{name} answer, or -1. */
static int worker_count(const char *json, size_t len, int *worker_pods)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *cl = json_object_get(root, "cluster");
    json_t *n = json_object_get(json_object_get(cl, "config"), "workerCount");
    int count = json_is_integer(n) && json_integer_value(n) >= 0 && json_integer_value(n) <= 1000000
                    ? (int)json_integer_value(n)
                    : -1;
    *worker_pods = 0;
    json_t *pods = json_object_get(cl, "pods"), *p;
    size_t i;
    json_array_foreach(pods, i, p) {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type && strcmp(type, "worker") == 0)
            (*worker_pods)++;
    }
    json_decref(root);
    return count;
}

static void snippet(const ss_http_client_response *res, char *out, size_t outlen)
{
    ss_quote(out, outlen, res->body ? res->body : "", BODY_SNIPPET);
}

static void on_confirm_timer(uv_timer_t *t)
{
    struct ss_backend_op *op = t->data;
    if (start_request(op, SS_HTTP_GET, NULL) < 0) {
        ss_backend_result r;
        ss_backend_result_init(&r);
        ss_backend_fail(&r, -EIO, "oshinko %s: cannot start the confirming read", op->b->name);
        finish(op, &r);
    }
}

static void on_response(const ss_http_client_response *res, void *arg)
{
    struct ss_backend_op *op = arg;
    op->req = NULL;
    if (res->result == SS_HTTP_RES_CANCELLED || op->reported) {
        op_end(op);
        return;
    }
    ss_backend_result r;
    ss_backend_result_init(&r);
    const char *what = op->stage == S_PUT ? "PUT" : "GET";
    if (res->result != SS_HTTP_RES_OK) {
        ss_backend_fail(&r, res->result == SS_HTTP_RES_TIMEOUT ? -ETIMEDOUT : -EIO,
                        "oshinko %s %s: %s (%d attempts)", what, op->b->url, res->error, res->attempts);
        finish(op, &r);
        return;
    }
    char body[BODY_SNIPPET + 16];
    if (op->stage == S_PUT) {
        if (res->status != 202 && res->status != 200) {
            snippet(res, body, sizeof body);
            ss_backend_fail(&r, -EIO, "oshinko PUT %s: HTTP %d %s", op->b->url, res->status, body);
            finish(op, &r);
            return;
        }
        op->stage = S_CONFIRM;
        op->confirm_deadline_us = ss_mono_us() + (int64_t)op->b->base.env->cfg->actuator.call_timeout_ms * 1000;
        on_confirm_timer(&op->timer);
        return;
    }
    if (res->status != 200) {
        snippet(res, body, sizeof body);
        ss_backend_fail(&r, res->status == 404 ? -ENOENT : -EIO, "oshinko GET %s: HTTP %d %s",
                        op->b->url, res->status, body);
        finish(op, &r);
        return;
    }
    int pods = 0;
    int count = worker_count(res->body, res->body_len, &pods);
    if (count < 0) {
        snippet(res, body, sizeof body);
        ss_backend_fail(&r, -EIO, "oshinko GET %s: no cluster.config.workerCount in %s", op->b->url, body);
        finish(op, &r);
        return;
    }
    if (op->stage == S_GET) {
        op->before = count;
        if (!op->scale || op->dry_run) {
            r.replicas_before = r.replicas_after = count;
            snprintf(r.note, sizeof r.note, "oshinko workerCount %d, %d worker pods%s", count, pods,
                     op->dry_run && op->scale ? " (dry run: not changed)" : "");
            finish(op, &r);
            return;
        }
    }
    /* S_CONFIRM: the count read back. */
    if (count == op->desired) {
        r.replicas_before = op->before;
        r.replicas_after = count;
        snprintf(r.note, sizeof r.note, "oshinko accepted workerCount %d (%d worker pods now)", count, pods);
        finish(op, &r);
        return;
    }
    if (ss_mono_us() >= op->confirm_deadline_us) {
        r.replicas_before = op->before;
        r.replicas_after = count;
        ss_backend_fail(&r, -EIO, "oshinko accepted workerCount %d but reads back %d", op->desired, count);
        finish(op, &r);
        return;
    }
    uv_timer_start(&op->timer, on_confirm_timer, CONFIRM_EVERY_MS, 0);
}

static int start_request(struct ss_backend_op *op, ss_http_method method, const char *body)
{
    osh_backend *b = op->b;
    const ss_config *cfg = b->base.env->cfg;
    ss_http_client_request req = {
        .method = method,
        .url = b->url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .content_type = body ? "application/json" : NULL,
        .timeout_ms = cfg->actuator.call_timeout_ms,
        .max_response_bytes = 4u << 20,
        /* Setting a count is idempotent: retrying a PUT is harmless. */
        .retry = { .max_attempts = cfg->actuator.max_attempts, .backoff_max_ms = 2000 },
    };
    char token[4096], err[256];
    int rc = ss_http_peer_apply(&cfg->actuator.http_client, &req, token, sizeof token, err, sizeof err);
    if (rc < 0) {
        ss_warn("oshinko %s: %s", b->name, err);
        return rc;
    }
    return ss_http_client_start(b->base.env->http, &req, on_response, op, &op->req);
}

static int start(ss_backend *base, const ss_backend_call *call, int scale, ss_backend_done_fn done,
                 void *arg, ss_backend_op **out)
{
    osh_backend *b = (osh_backend *)base;
    if (b->destroying)
        return -ESHUTDOWN;
    struct ss_backend_op *op = calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->b = b;
    op->scale = scale;
    op->done = done;
    op->arg = arg;
    op->t0_us = ss_mono_us();
    op->before = -1;
    if (call) {
        op->desired = call->desired;
        op->current = call->current;
        op->dry_run = call->dry_run;
    }
    uv_timer_init(base->env->loop, &op->timer);
    op->timer.data = op;
    op->timer_open = 1;
    op->next = b->ops;
    if (b->ops)
        b->ops->prev = op;
    b->ops = op;
    int rc;
    if (scale && !op->dry_run) {
        op->stage = S_PUT;
        op->before = call->current;
        char body[512];
        if (b->base.cluster->target.legacy_body)
            snprintf(body, sizeof body,
                     "{\"name\":\"%s\",\"masterCount\":1,\"workerCount\":%d,\"config\":{\"workerCount\":%d}}",
                     b->name, call->desired, call->desired);
        else
            snprintf(body, sizeof body, "{\"name\":\"%s\",\"config\":{\"workerCount\":%d}}", b->name,
                     call->desired);
        rc = start_request(op, SS_HTTP_PUT, body);
    } else {
        op->stage = S_GET;
        rc = start_request(op, SS_HTTP_GET, NULL);
    }
    if (rc < 0) {
        op->reported = 1;   /* the caller learns it from rc */
        op_end(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

static int osh_read_size(ss_backend *base, ss_backend_done_fn done, void *arg, ss_backend_op **op)
{
    return start(base, NULL, 0, done, arg, op);
}

static int osh_scale(ss_backend *base, const ss_backend_call *call, ss_backend_done_fn done, void *arg,
                     ss_backend_op **op)
{
    return start(base, call, 1, done, arg, op);
}

static void osh_cancel(ss_backend_op *op)
{
    if (op->reported)
        return;
    ss_backend_result r;
    ss_backend_result_init(&r);
    ss_backend_fail(&r, -ECANCELED, "cancelled");
    op->reported = 1;
    uv_timer_stop(&op->timer);
    if (op->req) {
        ss_http_req *req = op->req;
        op->req = NULL;
        ss_http_req_cancel(req);   /* its callback sees reported and only ends the op */
    } else {
        op_end(op);
    }
    op->done(op->arg, &r);
}

/* Percent-encodes a path segment (RFC 3986 unreserved kept). */
static void escape_segment(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *in && n + 4 < outlen; in++) {
        unsigned char ch = (unsigned char)*in;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
}

static int osh_create(const ss_backend_env *env, const ss_cluster_conf *cluster, ss_backend **out,
                      char *err, size_t errlen)
{
    const ss_target_conf *t = &cluster->target;
    if (!t->url[0]) {
        ss_errf(err, errlen, "cluster %s: kind oshinko needs a url", cluster->name);
        return -EINVAL;
    }
    osh_backend *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->base.ops = &ss_backend_oshinko;
    b->base.cluster = cluster;
    b->base.env = env;
    const char *name = t->cluster[0] ? t->cluster : cluster->name;
    /* The name goes into a JSON string as is: keep it plain. */
    ss_strlcpy(b->name, name, sizeof b->name);
    for (char *p = b->name; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '_';
    char seg[sizeof b->name * 3];
    escape_segment(name, seg, sizeof seg);
    size_t ulen = strlen(t->url);
    while (ulen > 0 && t->url[ulen - 1] == '/')
        ulen--;
    snprintf(b->url, sizeof b->url, "%.*s/clusters/%s", (int)ulen, t->url, seg);
    *out = &b->base;
    return 0;
}

static void osh_destroy(ss_backend *base, void (*closed)(void *), void *arg)
{
    osh_backend *b = (osh_backend *)base;
    b->destroying = 1;
    b->closed = closed;
    b->closed_arg = arg;
    for (struct ss_backend_op *op = b->ops, *n; op; op = n) {
        n = op->next;
        osh_cancel(op);
    }
    maybe_destroyed(b);
}

const ss_backend_ops ss_backend_oshinko = {
    .name = "oshinko",
    .caps = 0,    /* cannot choose victims */
    .create = osh_create,
    .read_size = osh_read_size,
    .scale = osh_scale,
    .cancel = osh_cancel,
    .destroy = osh_destroy,
};
