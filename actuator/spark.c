/* spark.c: GET /json/ and POST /workers/kill/ against a cluster's Spark
 * master(s), through the shared libcurl client (see spark.h). */
#include "actuator/spark.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/http/peer.h"

#define ERRS_MAX 768

struct ss_spark_op {
    ss_spark *s;
    struct ss_spark_op *prev, *next;
    int kill;                      /* 0: read */
    size_t tried, idx;             /* read: masters tried, the one asked now */
    ss_http_req *req;
    ss_spark_read_fn read_fn;
    ss_spark_kill_fn kill_fn;
    void *arg;
    int reported;
    char errs[ERRS_MAX];
    char *body;                    /* kill: host=...&host=... */
};

struct ss_spark {
    const ss_backend_env *env;
    const ss_cluster_conf *cl;
    size_t alive;                  /* index of the master that last answered ALIVE */
    int known;
    struct ss_spark_op *ops;
};

static void base_url(const char *url, char *out, size_t outlen, const char *path)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    snprintf(out, outlen, "%.*s%s", (int)n, url, path);
}

const char *ss_spark_url(const ss_spark *s)
{
    return s && s->known ? s->cl->spark_master[s->alive] : "";
}

static void op_free(struct ss_spark_op *op)
{
    ss_spark *s = op->s;
    if (op->prev)
        op->prev->next = op->next;
    else if (s)
        s->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    free(op->body);
    free(op);
}

static void append_err(struct ss_spark_op *op, const char *url, const char *what)
{
    size_t n = strlen(op->errs);
    char masked[SS_URL_MAX];
    ss_mask_url(url, masked, sizeof masked);
    snprintf(op->errs + n, sizeof op->errs - n, "%s%s: %s", n ? "; " : "", masked, what);
}

static int start(struct ss_spark_op *op);

static void on_response(const ss_http_client_response *res, void *arg)
{
    struct ss_spark_op *op = arg;
    ss_spark *s = op->s;
    op->req = NULL;
    if (op->reported || res->result == SS_HTTP_RES_CANCELLED) {
        op_free(op);
        return;
    }
    const char *url = s->cl->spark_master[op->idx];
    if (op->kill) {
        ss_spark_kill k;
        char err[ERRS_MAX] = "";
        if (res->result != SS_HTTP_RES_OK) {
            k = SS_KILL_ERROR;
            snprintf(err, sizeof err, "%s", res->error);
        } else if (res->status == 200) {
            k = SS_KILL_OK;
        } else if (res->status == 404) {
            k = SS_KILL_NONE;
            snprintf(err, sizeof err, "404: the master found no worker on those hosts, or it runs "
                                      "without spark.decommission.enabled=true");
        } else if (res->status == 403 || res->status == 405) {
            k = SS_KILL_REFUSED;
            snprintf(err, sizeof err, "%d: the master refuses remote decommission requests: set "
                                      "spark.master.ui.decommission.allow.mode=ALLOW on it",
                     res->status);
        } else {
            k = SS_KILL_ERROR;
            snprintf(err, sizeof err, "HTTP %d", res->status);
        }
        op->reported = 1;
        op->kill_fn(op->arg, k, res->result == SS_HTTP_RES_OK ? res->status : 0, err, 0);
        op_free(op);
        return;
    }
    ss_master_state *m = NULL;
    if (res->result != SS_HTTP_RES_OK) {
        append_err(op, url, res->error);
    } else if (res->status != 200) {
        char what[64];
        snprintf(what, sizeof what, "HTTP %d", res->status);
        append_err(op, url, what);
    } else {
        char perr[256];
        int rc = ss_master_parse(res->body, res->body_len, &m, perr, sizeof perr);
        if (rc != 0) {
            append_err(op, url, perr);
            m = NULL;
        } else if (m->status != SS_MASTER_ALIVE) {
            char what[64];
            snprintf(what, sizeof what, "status %s", ss_master_status_name(m->status));
            append_err(op, url, what);
            ss_master_state_free(m);
            m = NULL;
        }
    }
    if (m) {
        s->alive = op->idx;
        s->known = 1;
        op->reported = 1;
        op->read_fn(op->arg, m, url, "", 0);
        op_free(op);
        return;
    }
    /* The next master of an HA list. */
    if (++op->tried < s->cl->nspark_master) {
        op->idx = (op->idx + 1) % s->cl->nspark_master;
        if (start(op) == 0)
            return;
        append_err(op, s->cl->spark_master[op->idx], "cannot start the request");
    }
    op->reported = 1;
    op->read_fn(op->arg, NULL, "", op->errs, 0);
    op_free(op);
}

static int start(struct ss_spark_op *op)
{
    ss_spark *s = op->s;
    const ss_config *cfg = s->env->cfg;
    const ss_poll_conf *pc = &s->cl->poll;
    char url[SS_URL_MAX + 32];
    base_url(s->cl->spark_master[op->idx], url, sizeof url, op->kill ? "/workers/kill/" : "/json/");
    ss_http_client_request req = {
        .method = op->kill ? SS_HTTP_POST : SS_HTTP_GET,
        .url = url,
        .body = op->body,
        .body_len = op->body ? strlen(op->body) : 0,
        .content_type = op->kill ? "application/x-www-form-urlencoded" : NULL,
        .connect_timeout_ms = pc->connect_timeout_ms,
        .timeout_ms = cfg->actuator.call_timeout_ms,
        .max_response_bytes = (size_t)pc->max_response_kb * 1024,
        /* Reads retry; a decommission is idempotent (a second one answers
         * 200 again), so it retries too. */
        .retry = { .max_attempts = cfg->actuator.max_attempts, .backoff_max_ms = 2000 },
    };
    char token[4096], err[256];
    int rc = ss_http_peer_apply(&pc->http, &req, token, sizeof token, err, sizeof err);
    if (rc < 0) {
        append_err(op, url, err);
        return rc;
    }
    return ss_http_client_start(s->env->http, &req, on_response, op, &op->req);
}

ss_spark *ss_spark_create(const ss_backend_env *env, const ss_cluster_conf *cluster)
{
    if (cluster->nspark_master == 0)
        return NULL;
    ss_spark *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->env = env;
    s->cl = cluster;
    return s;
}

static struct ss_spark_op *new_op(ss_spark *s, void *arg)
{
    struct ss_spark_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->s = s;
    op->arg = arg;
    op->idx = s->known ? s->alive : 0;
    op->next = s->ops;
    if (s->ops)
        s->ops->prev = op;
    s->ops = op;
    return op;
}

int ss_spark_read(ss_spark *s, ss_spark_read_fn fn, void *arg, ss_spark_op **out)
{
    struct ss_spark_op *op = new_op(s, arg);
    if (!op)
        return -ENOMEM;
    op->read_fn = fn;
    int rc = start(op);
    if (rc < 0) {
        op_free(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

int ss_spark_decommission(ss_spark *s, const char *const *hosts, size_t n, ss_spark_kill_fn fn,
                          void *arg, ss_spark_op **out)
{
    if (n == 0)
        return -EINVAL;
    struct ss_spark_op *op = new_op(s, arg);
    if (!op)
        return -ENOMEM;
    op->kill = 1;
    op->kill_fn = fn;
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += 6 + strlen(hosts[i]) * 3;
    op->body = calloc(1, cap);
    if (!op->body) {
        op_free(op);
        return -ENOMEM;
    }
    /* application/x-www-form-urlencoded; hosts are names or addresses, but
     * encode anything outside the unreserved set anyway. */
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(op->body + k, cap - k, "%shost=", i ? "&" : "");
        for (const unsigned char *p = (const unsigned char *)hosts[i]; *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == ':') {
                op->body[k++] = (char)*p;
            } else {
                op->body[k++] = '%';
                op->body[k++] = hex[*p >> 4];
                op->body[k++] = hex[*p & 15];
            }
        }
    }
    op->body[k] = '\0';
    int rc = start(op);
    if (rc < 0) {
        op_free(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

void ss_spark_cancel(ss_spark_op *op)
{
    if (!op || op->reported)
        return;
    op->reported = 1;
    if (op->kill)
        op->kill_fn(op->arg, SS_KILL_ERROR, 0, "", 1);
    else
        op->read_fn(op->arg, NULL, "", "", 1);
    if (op->req) {
        ss_http_req *r = op->req;
        op->req = NULL;
        ss_http_req_cancel(r);     /* frees op from its callback */
    } else {
        op_free(op);
    }
}

void ss_spark_destroy(ss_spark *s)
{
    if (!s)
        return;
    while (s->ops)
        ss_spark_cancel(s->ops);
    free(s);
}
