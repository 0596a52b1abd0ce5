/* client.c: Kubernetes API calls on lib/http/client. The HTTP client does
 * the retrying (5xx, 429 with Retry-After, timeouts) and the pacing (the
 * shared limiter); this layer adds credentials, the token file's rotation,
 * dryRun, the Status message of errors, and the typed calls. */
#include "lib/k8s/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

#define MAX_HEADERS 72   /* Accept + impersonation (user and up to 64 groups) + spare */

typedef struct token_key {
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
    off_t size;
} token_key;

struct ss_k8s_api {
    int refs;
    ss_http_client *http;
    ss_k8s_creds creds;           /* deep copy */
    ss_http_limiter *limiter;
    ss_k8s_api_opts opts;
    char **headers;               /* "Accept: ...", impersonation */
    size_t nheaders;
    /* the token file's current content */
    char token[SS_K8S_MAX_TOKEN];
    int have_token;
    token_key key;
    int64_t read_ms;
    unsigned generation;          /* +1 whenever the token's content changed */
};

typedef enum call_kind { CALL_RAW, CALL_SCALE, CALL_PODS } call_kind;

struct ss_k8s_call {
    ss_k8s_api *a;
    ss_http_method method;
    char *path;                   /* without the dryRun parameter */
    char *body;
    size_t body_len;
    char *content_type;
    int dry_run;
    int rotated_retry;            /* the one retry after a 401 on a rotated token */
    unsigned generation;          /* the token generation this attempt used */
    ss_http_req *req;
    call_kind kind;
    ss_k8s_done_fn cb;
    ss_k8s_scale_fn scale_cb;
    ss_k8s_pods_fn pods_cb;
    void *arg;
    /* CALL_PODS */
    char *ns, *selector;
    ss_k8s_pod_list *acc;
};

/* ---- credentials ------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int copy_creds(ss_k8s_creds *d, const ss_k8s_creds *s)
{
    memset(d, 0, sizeof *d);
    d->insecure_skip_verify = s->insecure_skip_verify;
#define C(f) do { if (s->f && !(d->f = strdup(s->f))) return -ENOMEM; } while (0)
    C(server); C(ca_file); C(ca_pem); C(cert_file); C(cert_pem); C(key_file); C(key_pem);
    C(token); C(token_file); C(username); C(password); C(impersonate_user); C(namespace_);
    C(origin);
#undef C
    if (s->nimpersonate_groups) {
        d->impersonate_groups = calloc(s->nimpersonate_groups, sizeof *d->impersonate_groups);
        if (!d->impersonate_groups)
            return -ENOMEM;
        for (size_t i = 0; i < s->nimpersonate_groups; i++, d->nimpersonate_groups++)
            if (!(d->impersonate_groups[i] = strdup(s->impersonate_groups[i])))
                return -ENOMEM;
    }
    return 0;
}

static void free_creds_fields(ss_k8s_creds *c)
{
    /* ss_k8s_creds_free frees the struct too: give it a heap copy of the fields. */
    ss_k8s_creds *h = malloc(sizeof *h);
    if (h) {
        *h = *c;
        ss_k8s_creds_free(h);
    }
    memset(c, 0, sizeof *c);
}

static int stat_key(const char *path, token_key *k)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    k->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    k->size = st.st_size;
    return 0;
}

/* Re-reads the token file when it changed (a kubelet rotation swaps a
 * symlink: another inode), when it was read long ago, or when forced. A
 * failed re-read keeps the token we have. */
static int refresh_token(ss_k8s_api *a, int force, char *err, size_t errlen)
{
    if (!a->creds.token_file)
        return 0;
    token_key k;
    int64_t now = ss_mono_us() / 1000;
    int rc = stat_key(a->creds.token_file, &k);
    int changed = rc == 0 && memcmp(&k, &a->key, sizeof k) != 0;
    if (a->have_token && !force && !changed && now - a->read_ms < SS_K8S_TOKEN_REREAD_MS)
        return 0;
    char buf[SS_K8S_MAX_TOKEN];
    char why[256];
    rc = ss_k8s_read_token(a->creds.token_file, buf, sizeof buf, why, sizeof why);
    if (rc) {
        explicit_bzero(buf, sizeof buf);
        if (a->have_token) {
            ss_warn("k8s: %s: keeping the token read before: %s", a->creds.server, why);
            a->read_ms = now;
            return 0;
        }
        ss_errf(err, errlen, "%s", why);
        return rc;
    }
    if (!a->have_token || strcmp(buf, a->token) != 0)
        a->generation++;
    memcpy(a->token, buf, sizeof a->token);
    explicit_bzero(buf, sizeof buf);
    a->have_token = 1;
    if (stat_key(a->creds.token_file, &a->key) != 0)
        memset(&a->key, 0, sizeof a->key);
    a->read_ms = now;
    return 0;
}

/* ---- api ----------------------------------------------------------------------- */

static void api_free(ss_k8s_api *a)
{
    free_creds_fields(&a->creds);
    ss_http_limiter_release(a->limiter);
    for (size_t i = 0; i < a->nheaders; i++)
        free(a->headers[i]);
    free(a->headers);
    explicit_bzero(a->token, sizeof a->token);
    free(a);
}

void ss_k8s_api_release(ss_k8s_api *a)
{
    if (a && --a->refs == 0)
        api_free(a);
}

const char *ss_k8s_api_server(const ss_k8s_api *a) { return a->creds.server; }
const char *ss_k8s_api_origin(const ss_k8s_api *a) { return a->creds.origin ? a->creds.origin : ""; }

static int add_header(ss_k8s_api *a, const char *name, const char *value)
{
    if (a->nheaders == MAX_HEADERS)
        return -E2BIG;
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = malloc(n);
    if (!h)
        return -ENOMEM;
    snprintf(h, n, "%s: %s", name, value);
    a->headers[a->nheaders++] = h;
    return 0;
}

ss_k8s_api *ss_k8s_api_create(ss_http_client *http, const ss_k8s_creds *creds,
                              const ss_k8s_api_opts *opts, char *err, size_t errlen)
{
    if (!http || !creds || !creds->server ||
        (strncasecmp(creds->server, "https://", 8) != 0 &&
         strncasecmp(creds->server, "http://", 7) != 0) || strpbrk(creds->server, "\r\n ?#")) {
        ss_errf(err, errlen, "the API server must be an http(s) URL without query");
        return NULL;
    }
    ss_k8s_api *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->refs = 1;
    a->http = http;
    if (opts)
        a->opts = *opts;
    a->opts.limiter = NULL;
    if (!a->opts.timeout_ms)
        a->opts.timeout_ms = 10000;
    if (!a->opts.connect_timeout_ms)
        a->opts.connect_timeout_ms = 5000;
    if (!a->opts.max_attempts)
        a->opts.max_attempts = 4;
    if (!a->opts.backoff_base_ms)
        a->opts.backoff_base_ms = 200;
    if (!a->opts.backoff_max_ms)
        a->opts.backoff_max_ms = 5000;
    if (!a->opts.max_retry_after_ms)
        a->opts.max_retry_after_ms = 30000;
    a->headers = calloc(MAX_HEADERS, sizeof *a->headers);
    int rc = a->headers ? copy_creds(&a->creds, creds) : -ENOMEM;
    if (!rc)
        rc = add_header(a, "Accept", "application/json");
    if (!rc && creds->impersonate_user)
        rc = add_header(a, "Impersonate-User", creds->impersonate_user);
    for (size_t i = 0; !rc && i < creds->nimpersonate_groups; i++)
        rc = add_header(a, "Impersonate-Group", creds->impersonate_groups[i]);
    if (!rc && a->creds.token_file)
        rc = refresh_token(a, 1, err, errlen);
    if (rc) {
        if (rc == -ENOMEM || rc == -E2BIG)
            ss_errf(err, errlen, "out of memory or too many impersonation groups");
        api_free(a);
        return NULL;
    }
    if (opts && opts->limiter) {
        a->limiter = opts->limiter;
        ss_http_limiter_retain(a->limiter);
    }
    if (a->creds.insecure_skip_verify)
        ss_warn("k8s: TLS verification of %s is off: the %s says insecure-skip-tls-verify",
                a->creds.server, a->creds.origin ? a->creds.origin : "configuration");
    else if (strncasecmp(a->creds.server, "http://", 7) == 0)
        ss_warn("k8s: %s is plain HTTP: credentials and requests travel unencrypted",
                a->creds.server);
    return a;
}

/* ---- calls ---------------------------------------------------------------------- */

static void call_free(ss_k8s_call *c)
{
    ss_k8s_api_release(c->a);
    free(c->path);
    if (c->body)
        explicit_bzero(c->body, c->body_len);
    free(c->body);
    free(c->content_type);
    free(c->ns);
    free(c->selector);
    ss_k8s_pod_list_free(c->acc);
    free(c);
}

static void on_http_done(const ss_http_client_response *res, void *arg);

static const char *method_name(ss_http_method m)
{
    static const char *n[] = { "GET", "POST", "PUT", "PATCH", "DELETE" };
    return (unsigned)m < 5 ? n[m] : "?";
}

/* Sends (or re-sends) the call's request. */
static int send_call(ss_k8s_call *c, char *err, size_t errlen)
{
    ss_k8s_api *a = c->a;
    int rc = refresh_token(a, 0, err, errlen);
    if (rc)
        return rc;
    size_t ul = strlen(a->creds.server) + strlen(c->path) + 16;
    char *url = malloc(ul);
    if (!url)
        return -ENOMEM;
    snprintf(url, ul, "%s%s%s", a->creds.server, c->path,
             !c->dry_run ? "" : strchr(c->path, '?') ? "&dryRun=All" : "?dryRun=All");
    ss_http_client_request q = {
        .method = c->method,
        .url = url,
        .headers = (const char *const *)a->headers,
        .n_headers = a->nheaders,
        .body = c->body,
        .body_len = c->body_len,
        .content_type = c->content_type,
        .connect_timeout_ms = a->opts.connect_timeout_ms,
        .timeout_ms = a->opts.timeout_ms,
        .tls = {
            .insecure_skip_verify = a->creds.insecure_skip_verify,
            .ca_file = a->creds.ca_file,
            .ca_pem = a->creds.ca_pem,
            .cert_file = a->creds.cert_file,
            .cert_pem = a->creds.cert_pem,
            .key_file = a->creds.key_file,
            .key_pem = a->creds.key_pem,
        },
        .retry = {
            .max_attempts = a->opts.max_attempts,
            .backoff_base_ms = a->opts.backoff_base_ms,
            .backoff_max_ms = a->opts.backoff_max_ms,
            .max_retry_after_ms = a->opts.max_retry_after_ms,
            .on = SS_HTTP_RETRY_DEFAULT,
        },
        .limiter = a->limiter,
    };
    if (a->creds.token_file && a->have_token)
        q.bearer_token = a->token;
    else if (a->creds.token)
        q.bearer_token = a->creds.token;
    else if (a->creds.username) {
        q.basic_user = a->creds.username;
        q.basic_password = a->creds.password;
    }
    c->generation = a->generation;
    rc = ss_http_client_start(a->http, &q, on_http_done, c, &c->req);
    free(url);
    if (rc)
        ss_errf(err, errlen, "%s %s: cannot start the request (%s)", method_name(c->method),
                c->path, strerror(-rc));
    return rc;
}

static ss_k8s_call *call_new(ss_k8s_api *a, ss_http_method method, const char *path,
                             const char *body, size_t body_len, const char *content_type,
                             int dry_run)
{
    ss_k8s_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->a = a;
    a->refs++;
    c->method = method;
    c->dry_run = dry_run;
    c->path = strdup(path);
    if (body_len) {
        c->body = malloc(body_len);
        if (c->body)
            memcpy(c->body, body, body_len);
        c->body_len = body_len;
    }
    c->content_type = dup_or_null(content_type);
    if (!c->path || (body_len && !c->body) || (content_type && !c->content_type)) {
        call_free(c);
        return NULL;
    }
    return c;
}

/* The one-line error of a finished attempt. */
static void describe_error(ss_k8s_call *c, const ss_http_client_response *res, ss_k8s_result *r)
{
    char path[200];
    const char *q = strchr(c->path, '?');
    snprintf(path, sizeof path, "%.*s", (int)(q ? q - c->path : (long)strlen(c->path)), c->path);
    if (res->result != SS_HTTP_RES_OK) {
        snprintf(r->error, sizeof r->error, "%s %s: %s: %s (%d attempt%s)", method_name(c->method),
                 path, ss_http_result_name(res->result), res->error, res->attempts,
                 res->attempts == 1 ? "" : "s");
        return;
    }
    if (ss_k8s_status_parse(res->body, res->body_len, &r->st) == 0 && r->st.message[0]) {
        snprintf(r->error, sizeof r->error, "%s %s: HTTP %d %s: %s", method_name(c->method), path,
                 res->status, r->st.reason[0] ? r->st.reason : "error", r->st.message);
    } else {
        /* Not a Status (a proxy's page?): a bounded, printable excerpt. */
        char ex[160];
        ss_quote(ex, sizeof ex, res->body, 120);
        snprintf(r->error, sizeof r->error, "%s %s: HTTP %d: %s", method_name(c->method), path,
                 res->status, res->body_len ? ex : "(empty answer)");
    }
    if (res->attempts > 1) {
        size_t l = strlen(r->error);
        snprintf(r->error + l, sizeof r->error - l, " (%d attempts)", res->attempts);
    }
}

static void deliver(ss_k8s_call *c, const ss_k8s_result *r);

static void finish_pods(ss_k8s_call *c, ss_k8s_result *r, const ss_http_client_response *res)
{
    if (!r->ok) {
        deliver(c, r);
        return;
    }
    ss_k8s_pod_list *page = NULL;
    char why[256];
    int rc = ss_k8s_pod_list_parse(res->body, res->body_len, &page, why, sizeof why);
    if (rc == 0 && !c->acc) {
        c->acc = page;
        page = NULL;
    } else if (rc == 0) {
        rc = ss_k8s_pod_list_append(c->acc, page);
        if (rc)
            snprintf(why, sizeof why, "more than %u pods", SS_K8S_MAX_PODS);
        free(c->acc->next);
        c->acc->next = page->next;
        page->next = NULL;
    }
    ss_k8s_pod_list_free(page);
    if (rc) {
        r->ok = 0;
        snprintf(r->error, sizeof r->error, "GET pods: the answer is not a PodList: %s", why);
        deliver(c, r);
        return;
    }
    if (c->acc->next && c->acc->next[0]) {   /* another page */
        char path[SS_K8S_MAX_SELECTOR * 3 + 4096 * 3 + 256];
        char e[256];
        char *np = NULL;
        if (ss_k8s_pods_path(path, sizeof path, c->ns, c->selector, SS_K8S_PODS_PAGE,
                             c->acc->next) >= 0)
            np = strdup(path);
        if (np) {
            free(c->path);
            c->path = np;
        } else {
            r->ok = 0;
            snprintf(r->error, sizeof r->error, "GET pods: continue token too long or no memory");
            deliver(c, r);
            return;
        }
        if (send_call(c, e, sizeof e) == 0)
            return;
        r->ok = 0;
        snprintf(r->error, sizeof r->error, "%s", e);
    }
    deliver(c, r);
}

static void on_http_done(const ss_http_client_response *res, void *arg)
{
    ss_k8s_call *c = arg;
    ss_k8s_api *a = c->a;
    c->req = NULL;
    ss_k8s_result r = {
        .ok = res->result == SS_HTTP_RES_OK && res->status >= 200 && res->status <= 299,
        .status = res->status,
        .transport = res->result,
        .body = res->body,
        .body_len = res->body_len,
        .attempts = res->attempts,
        .total_ms = res->total_ms,
    };
    /* A 401 right after the token file rotated: the old token expired
     * before we noticed. Once, and only when there is a new token. */
    if (res->result == SS_HTTP_RES_OK && res->status == 401 && a->creds.token_file &&
        !c->rotated_retry) {
        char e[256];
        if (refresh_token(a, 1, e, sizeof e) == 0 && a->generation != c->generation) {
            c->rotated_retry = 1;
            ss_info("k8s: %s: 401 with a token that has since rotated; retrying once with the new one",
                    a->creds.server);
            if (send_call(c, e, sizeof e) == 0)
                return;
        }
    }
    if (!r.ok)
        describe_error(c, res, &r);
    switch (c->kind) {
    case CALL_PODS:
        finish_pods(c, &r, res);
        return;
    default:
        deliver(c, &r);
        return;
    }
}

static void deliver(ss_k8s_call *c, const ss_k8s_result *r)
{
    switch (c->kind) {
    case CALL_RAW:
        c->cb(r, c->arg);
        break;
    case CALL_SCALE: {
        ss_k8s_scale s;
        if (r->ok) {
            char why[256];
            if (ss_k8s_scale_parse(r->body, r->body_len, &s, why, sizeof why) != 0) {
                ss_k8s_result bad = *r;
                bad.ok = 0;
                snprintf(bad.error, sizeof bad.error, "%s %s: the answer is not a Scale: %s",
                         method_name(c->method), c->path, why);
                c->scale_cb(&bad, NULL, c->arg);
                break;
            }
            c->scale_cb(r, &s, c->arg);
        } else {
            c->scale_cb(r, NULL, c->arg);
        }
        break;
    }
    case CALL_PODS: {
        ss_k8s_pod_list *l = r->ok ? c->acc : NULL;
        if (r->ok)
            c->acc = NULL;   /* handed over */
        c->pods_cb(r, l, c->arg);
        break;
    }
    }
    call_free(c);
}

void ss_k8s_call_cancel(ss_k8s_call *c)
{
    if (c && c->req)
        ss_http_req_cancel(c->req);   /* on_http_done runs with RES_CANCELLED */
}

static int start(ss_k8s_call *c, ss_k8s_call **out, char *err, size_t errlen)
{
    int rc = send_call(c, err, errlen);
    if (rc) {
        call_free(c);
        return rc;
    }
    if (out)
        *out = c;
    return 0;
}

int ss_k8s_call_start(ss_k8s_api *a, ss_http_method method, const char *path, const char *body,
                      size_t body_len, const char *content_type, int dry_run, ss_k8s_done_fn cb,
                      void *arg, ss_k8s_call **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!a || !path || path[0] != '/' || !cb || (body_len && !body)) {
        ss_errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    ss_k8s_call *c = call_new(a, method, path, body, body_len, content_type, dry_run);
    if (!c)
        return -ENOMEM;
    c->kind = CALL_RAW;
    c->cb = cb;
    c->arg = arg;
    return start(c, out, err, errlen);
}

/* ---- typed calls ---------------------------------------------------------------- */

int ss_k8s_get_scale(ss_k8s_api *a, const char *ns, ss_k8s_kind kind, const char *name,
                     ss_k8s_scale_fn cb, void *arg, ss_k8s_call **out, char *err, size_t errlen)
{
    char path[512];
    if (out)
        *out = NULL;
    if (!a || !cb || ss_k8s_scale_path(path, sizeof path, ns, kind, name) < 0) {
        ss_errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    ss_k8s_call *c = call_new(a, SS_HTTP_GET, path, NULL, 0, NULL, 0);
    if (!c)
        return -ENOMEM;
    c->kind = CALL_SCALE;
    c->scale_cb = cb;
    c->arg = arg;
    return start(c, out, err, errlen);
}

int ss_k8s_put_scale(ss_k8s_api *a, ss_k8s_kind kind, const ss_k8s_scale *cur, int replicas,
                     int dry_run, ss_k8s_scale_fn cb, void *arg, ss_k8s_call **out,
                     char *err, size_t errlen)
{
    char path[512];
    if (out)
        *out = NULL;
    if (!a || !cb || !cur || replicas < 0 ||
        ss_k8s_scale_path(path, sizeof path, cur->namespace_, kind, cur->name) < 0) {
        ss_errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    char *body = ss_k8s_scale_put_body(cur, replicas);
    if (!body)
        return -ENOMEM;
    ss_k8s_call *c = call_new(a, SS_HTTP_PUT, path, body, strlen(body), "application/json",
                              dry_run);
    free(body);
    if (!c)
        return -ENOMEM;
    c->kind = CALL_SCALE;
    c->scale_cb = cb;
    c->arg = arg;
    return start(c, out, err, errlen);
}

int ss_k8s_list_pods(ss_k8s_api *a, const char *ns, const char *selector, ss_k8s_pods_fn cb,
                     void *arg, ss_k8s_call **out, char *err, size_t errlen)
{
    char path[SS_K8S_MAX_SELECTOR * 3 + 256];
    if (out)
        *out = NULL;
    if (!a || !cb || !ns || !selector ||
        ss_k8s_pods_path(path, sizeof path, ns, selector, SS_K8S_PODS_PAGE, NULL) < 0) {
        ss_errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    ss_k8s_call *c = call_new(a, SS_HTTP_GET, path, NULL, 0, NULL, 0);
    if (!c)
        return -ENOMEM;
    c->kind = CALL_PODS;
    c->pods_cb = cb;
    c->arg = arg;
    c->ns = strdup(ns);
    c->selector = strdup(selector);
    if (!c->ns || !c->selector) {
        call_free(c);
        return -ENOMEM;
    }
    return start(c, out, err, errlen);
}

int ss_k8s_patch_pod(ss_k8s_api *a, const char *ns, const char *pod, const char *patch,
                     int dry_run, ss_k8s_done_fn cb, void *arg, ss_k8s_call **out,
                     char *err, size_t errlen)
{
    char path[512];
    if (!patch || ss_k8s_pod_path(path, sizeof path, ns, pod) < 0) {
        if (out)
            *out = NULL;
        ss_errf(err, errlen, "bad arguments");
        return -EINVAL;
    }
    return ss_k8s_call_start(a, SS_HTTP_PATCH, path, patch, strlen(patch),
                             "application/merge-patch+json", dry_run, cb, arg, out, err, errlen);
}
