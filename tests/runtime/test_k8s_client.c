/* test_k8s_client.c: lib/k8s and the actuator's Kubernetes backend against
 * the fixture API server (tests/kubernetes/fixture_apiserver.py) for what
 * the real one cannot do on demand: 429 + Retry-After, 5xx, hangs, a token
 * that expires and rotates on disk, TLS for the wrong name or from an
 * untrusted CA, a 409 race, a controller that ignores pod-deletion-cost.
 * Every test asserts on the requests the fixture recorded, and closes its
 * loop clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "actuator/k8s.h"
#include "lib/base/clock.h"
#include "lib/config/config.h"
#include "lib/http/client.h"
#include "lib/k8s/client.h"

extern char **environ;

typedef struct fixture {
    pid_t pid;
    int port;
} fixture;

static char dir[64];            /* certificates, token and config files */
static fixture good, wrong;     /* TLS with a good certificate / one for another name */
static char src[2048];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void write_file(const char *name, const char *text)
{
    char p[256], tmp[260];
    path_of(p, sizeof p, name);
    snprintf(tmp, sizeof tmp, "%s~", p);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, p), 0);   /* atomic, like the kubelet's swap */
}

static void fixture_start(fixture *fx, const char *cert)
{
    char script[2300], crt[256], key[256];
    snprintf(script, sizeof script, "%s/tests/kubernetes/fixture_apiserver.py", src);
    snprintf(crt, sizeof crt, "%s/%s.crt", dir, cert);
    snprintf(key, sizeof key, "%s/%s.key", dir, cert);
    char *argv[] = { "python3", script, "--cert", crt, "--key", key, NULL };
    int out[2];
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawnp(&fx->pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc)
        fail_msg("cannot start the fixture API server: %s", strerror(rc));
    FILE *f = fdopen(out[0], "r");
    char line[64] = "";
    if (!fgets(line, sizeof line, f) || sscanf(line, "port %d", &fx->port) != 1)
        fail_msg("the fixture API server did not report its port");
    fclose(f);
}

static void fixture_stop(fixture *fx)
{
    if (fx->pid > 0) {
        kill(fx->pid, SIGTERM);
        waitpid(fx->pid, NULL, 0);
        fx->pid = 0;
    }
}

/* A control request through curl (the fixture speaks TLS); returns the body. */
static json_t *ctl(fixture *fx, const char *method, const char *path, const char *json)
{
    char cmd[8192], ca[256], body[256];
    path_of(ca, sizeof ca, "ca.crt");
    path_of(body, sizeof body, "ctl-body.json");
    if (json)
        write_file("ctl-body.json", json);
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 10 --cacert %s -X %s https://127.0.0.1:%d%s%s%s",
             ca, method, fx->port, path, json ? " --data-binary @" : "", json ? body : "");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    json_error_t e;
    json_t *j = json_loads(buf, 0, &e);
    if (!j)
        fail_msg("fixture control %s: not JSON: %.200s", path, buf);
    free(buf);
    return j;
}

static void ctl_do(fixture *fx, const char *path, const char *json)
{
    json_decref(ctl(fx, "POST", path, json));
}

static json_t *requests(fixture *fx)
{
    return ctl(fx, "GET", "/_fixture/requests", NULL);
}

static const char *req_field(json_t *reqs, size_t i, const char *f)
{
    return json_string_value(json_object_get(json_array_get(reqs, i), f));
}

static const char *req_header(json_t *reqs, size_t i, const char *h)
{
    return json_string_value(json_object_get(json_object_get(json_array_get(reqs, i), "headers"), h));
}

static double req_time(json_t *reqs, size_t i)
{
    return json_real_value(json_object_get(json_array_get(reqs, i), "t"));
}

/* ---- one loop per test ---------------------------------------------------------- */

typedef struct env {
    uv_loop_t loop;
    ss_http_client *http;
    ss_k8s_api *api;
    int done;
    ss_k8s_result res;   /* copied, body dropped */
    ss_k8s_scale scale;
    int have_scale;
    size_t npods;
} env;

static void creds_for(ss_k8s_creds *c, fixture *fx, const char *ca)
{
    static char server[64], cafile[256], tokfile[256];
    memset(c, 0, sizeof *c);
    snprintf(server, sizeof server, "https://127.0.0.1:%d", fx->port);
    path_of(cafile, sizeof cafile, ca);
    path_of(tokfile, sizeof tokfile, "token");
    c->server = server;
    c->ca_file = cafile;
    c->token_file = tokfile;
    c->origin = "test";
}

static void env_open(env *e, fixture *fx, const char *ca, const ss_k8s_api_opts *ao)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    e->http = ss_http_client_create(&e->loop, NULL);
    assert_non_null(e->http);
    ss_k8s_creds c;
    creds_for(&c, fx, ca);
    char err[256];
    e->api = ss_k8s_api_create(e->http, &c, ao, err, sizeof err);
    if (!e->api)
        fail_msg("api: %s", err);
}

static void env_close(env *e)
{
    ss_k8s_api_release(e->api);
    ss_http_client_close(e->http, NULL, NULL);
    assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void keep(env *e, const ss_k8s_result *r)
{
    e->res = *r;
    e->res.body = NULL;
    e->done++;
}

static void on_scale(const ss_k8s_result *r, const ss_k8s_scale *s, void *arg)
{
    env *e = arg;
    keep(e, r);
    if (s) {
        e->scale = *s;
        e->have_scale = 1;
    }
}

static void on_pods(const ss_k8s_result *r, ss_k8s_pod_list *l, void *arg)
{
    env *e = arg;
    keep(e, r);
    e->npods = l ? l->n : 0;
    ss_k8s_pod_list_free(l);
}

static void wait_done(env *e, int n)
{
    while (e->done < n)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void get_scale(env *e)
{
    char err[256];
    int before = e->done;
    assert_int_equal(ss_k8s_get_scale(e->api, "ns", SS_K8S_DEPLOYMENT, "w", on_scale, e, NULL,
                                      err, sizeof err), 0);
    wait_done(e, before + 1);
}

static const char world3[] =
    "{\"workloads\":{\"deployments/w\":{\"replicas\":3,\"pods\":["
    "{\"name\":\"w-a\",\"ip\":\"10.0.0.1\"},{\"name\":\"w-b\",\"ip\":\"10.0.0.2\"},"
    "{\"name\":\"w-c\",\"ip\":\"10.0.0.3\"}]},"
    "\"statefulsets/s\":{\"replicas\":3,\"pods\":[{\"name\":\"s-0\",\"ip\":\"10.0.1.0\"},"
    "{\"name\":\"s-1\",\"ip\":\"10.0.1.1\"},{\"name\":\"s-2\",\"ip\":\"10.0.1.2\"}]}}}";

static int reset(void **state)
{
    ctl_do(&good, "/_fixture/reset", "null");
    ctl_do(&good, "/_fixture/tokens", "[]");
    ctl_do(&good, "/_fixture/world", world3);
    write_file("token", "tok-1\n");
    return 0;
}

/* ---- the API client --------------------------------------------------------------- */

static void test_get_scale(void **state)
{
    env e;
    ctl_do(&good, "/_fixture/tokens", "[\"tok-1\"]");
    env_open(&e, &good, "ca.crt", NULL);
    get_scale(&e);
    assert_true(e.res.ok);
    assert_true(e.have_scale);
    assert_int_equal(e.scale.spec_replicas, 3);
    assert_string_equal(e.scale.selector, "app=w");
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(req_field(r, 0, "method"), "GET");
    assert_string_equal(req_field(r, 0, "path"), "/apis/apps/v1/namespaces/ns/deployments/w/scale");
    assert_string_equal(req_header(r, 0, "authorization"), "Bearer tok-1");
    assert_string_equal(req_header(r, 0, "accept"), "application/json");
    json_decref(r);
}

static void test_429_retry_after(void **state)
{
    env e;
    ctl_do(&good, "/_fixture/script",
           "[{\"method\":\"GET\",\"path_contains\":\"/scale\",\"status\":429,"
           "\"headers\":{\"Retry-After\":\"1\"},\"times\":2}]");
    env_open(&e, &good, "ca.crt", NULL);
    int64_t t0 = ss_mono_us();
    get_scale(&e);
    assert_true(e.res.ok);
    assert_int_equal(e.res.attempts, 3);
    assert_true(ss_mono_us() - t0 >= 1900000);   /* waited as told, twice */
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 3);
    assert_true(req_time(r, 1) - req_time(r, 0) >= 0.95);
    assert_true(req_time(r, 2) - req_time(r, 1) >= 0.95);
    json_decref(r);
}

static void test_5xx(void **state)
{
    env e;
    ctl_do(&good, "/_fixture/script",
           "[{\"method\":\"GET\",\"status\":503,\"times\":1},{\"method\":\"GET\",\"status\":500,\"times\":1}]");
    ss_k8s_api_opts ao = { .max_attempts = 3, .backoff_base_ms = 50, .backoff_max_ms = 200 };
    env_open(&e, &good, "ca.crt", &ao);
    get_scale(&e);
    assert_true(e.res.ok);
    assert_int_equal(e.res.attempts, 3);
    /* 500 every time: given up after max_attempts, with the server's message. */
    ctl_do(&good, "/_fixture/script",
           "[{\"method\":\"GET\",\"status\":500,\"times\":10,\"message\":\"etcdserver: leader changed\"}]");
    get_scale(&e);
    assert_false(e.res.ok);
    assert_int_equal(e.res.status, 500);
    assert_int_equal(e.res.attempts, 3);
    assert_non_null(strstr(e.res.error, "HTTP 500"));
    assert_non_null(strstr(e.res.error, "etcdserver: leader changed"));
    assert_non_null(strstr(e.res.error, "(3 attempts)"));
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 6);
    json_decref(r);
}

static void test_403_not_retried(void **state)
{
    env e;
    ctl_do(&good, "/_fixture/script",
           "[{\"status\":403,\"reason\":\"Forbidden\",\"times\":5,\"message\":\"deployments.apps "
           "\\\"w\\\" is forbidden: User \\\"system:serviceaccount:spark:sparkscale\\\" cannot get "
           "resource \\\"deployments/scale\\\"\"}]");
    env_open(&e, &good, "ca.crt", NULL);
    get_scale(&e);
    assert_false(e.res.ok);
    assert_int_equal(e.res.status, 403);
    assert_int_equal(e.res.attempts, 1);
    assert_string_equal(e.res.st.reason, "Forbidden");
    assert_non_null(strstr(e.res.error, "HTTP 403 Forbidden: deployments.apps \"w\" is forbidden: "
                                        "User \"system:serviceaccount:spark:sparkscale\""));
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 1);
    json_decref(r);
}

static void test_token_rotation(void **state)
{
    env e;
    char tok[256], text[600];
    path_of(tok, sizeof tok, "token");
    /* The API server stopped accepting tok-1; the kubelet rotates the file to
     * tok-2 while our request is in flight: one retry with the new token. */
    ctl_do(&good, "/_fixture/tokens", "[\"tok-2\"]");
    snprintf(text, sizeof text,
             "[{\"method\":\"GET\",\"status\":401,\"reason\":\"Unauthorized\",\"message\":\"Unauthorized\","
             "\"write_file\":[\"%s\",\"tok-2\\n\"]}]", tok);
    ctl_do(&good, "/_fixture/script", text);
    env_open(&e, &good, "ca.crt", NULL);
    get_scale(&e);
    assert_true(e.res.ok);
    /* No rotation: 401 is final, once. */
    ctl_do(&good, "/_fixture/tokens", "[\"tok-3\"]");
    get_scale(&e);
    assert_false(e.res.ok);
    assert_int_equal(e.res.status, 401);
    assert_int_equal(e.res.attempts, 1);
    assert_non_null(strstr(e.res.error, "HTTP 401 Unauthorized"));
    assert_null(strstr(e.res.error, "tok-"));
    /* The file changed between requests: the next one uses the new token. */
    write_file("token", "tok-3\n");
    get_scale(&e);
    assert_true(e.res.ok);
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 4);
    assert_string_equal(req_header(r, 0, "authorization"), "Bearer tok-1");
    assert_string_equal(req_header(r, 1, "authorization"), "Bearer tok-2");
    assert_string_equal(req_header(r, 2, "authorization"), "Bearer tok-2");
    assert_string_equal(req_header(r, 3, "authorization"), "Bearer tok-3");
    json_decref(r);
}

static void test_hang(void **state)
{
    env e;
    ctl_do(&good, "/_fixture/script", "[{\"method\":\"GET\",\"hang\":true,\"hang_s\":5,\"times\":2}]");
    ss_k8s_api_opts ao = { .timeout_ms = 300, .max_attempts = 2, .backoff_base_ms = 20 };
    env_open(&e, &good, "ca.crt", &ao);
    get_scale(&e);
    assert_false(e.res.ok);
    assert_int_equal(e.res.transport, SS_HTTP_RES_TIMEOUT);
    assert_int_equal(e.res.attempts, 2);
    assert_non_null(strstr(e.res.error, "timeout"));
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 2);
    json_decref(r);
}

static void test_tls(void **state)
{
    env e;
    /* A certificate for another name, from the trusted CA. */
    env_open(&e, &wrong, "ca.crt", NULL);
    get_scale(&e);
    assert_false(e.res.ok);
    assert_int_equal(e.res.transport, SS_HTTP_RES_TLS);
    assert_int_equal(e.res.attempts, 1);
    env_close(&e);
    /* The right name, but we trust another CA. */
    env_open(&e, &good, "other-ca.crt", NULL);
    get_scale(&e);
    assert_false(e.res.ok);
    assert_int_equal(e.res.transport, SS_HTTP_RES_TLS);
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 0);   /* nothing got through */
    json_decref(r);
    /* insecure-skip-tls-verify, when the kubeconfig says so: no CA at all. */
    memset(&e, 0, sizeof e);
    assert_int_equal(uv_loop_init(&e.loop), 0);
    e.http = ss_http_client_create(&e.loop, NULL);
    ss_k8s_creds c;
    creds_for(&c, &wrong, "ca.crt");
    c.ca_file = NULL;
    c.insecure_skip_verify = 1;
    char err[256];
    e.api = ss_k8s_api_create(e.http, &c, NULL, err, sizeof err);
    assert_non_null(e.api);
    get_scale(&e);
    assert_int_equal(e.res.transport, SS_HTTP_RES_OK);
    env_close(&e);
}

static void test_dry_run_put(void **state)
{
    env e;
    env_open(&e, &good, "ca.crt", NULL);
    get_scale(&e);
    ss_k8s_scale cur = e.scale;
    char err[256];
    assert_int_equal(ss_k8s_put_scale(e.api, SS_K8S_DEPLOYMENT, &cur, 7, 1, on_scale, &e, NULL,
                                      err, sizeof err), 0);
    wait_done(&e, 2);
    assert_true(e.res.ok);
    assert_int_equal(e.scale.spec_replicas, 7);   /* the answer validates the change */
    get_scale(&e);
    assert_int_equal(e.scale.spec_replicas, 3);   /* nothing changed */
    /* A stale resourceVersion: 409, reported with the server's words. */
    assert_int_equal(ss_k8s_put_scale(e.api, SS_K8S_DEPLOYMENT, &cur, 2, 0, on_scale, &e, NULL,
                                      err, sizeof err), 0);
    wait_done(&e, 4);
    assert_true(e.res.ok);
    assert_int_equal(ss_k8s_put_scale(e.api, SS_K8S_DEPLOYMENT, &cur, 1, 0, on_scale, &e, NULL,
                                      err, sizeof err), 0);
    wait_done(&e, 5);
    assert_int_equal(e.res.status, 409);
    assert_non_null(strstr(e.res.error, "the object has been modified"));
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 5);
    assert_string_equal(req_field(r, 1, "method"), "PUT");
    assert_string_equal(req_field(r, 1, "query"), "dryRun=All");
    assert_string_equal(req_header(r, 1, "content-type"), "application/json");
    json_error_t je;
    json_t *body = json_loads(req_field(r, 1, "body"), 0, &je);
    assert_non_null(body);
    json_t *meta = json_object_get(body, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "resourceVersion")), cur.resource_version);
    assert_string_equal(json_string_value(json_object_get(meta, "uid")), "uid-deployments-w");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(body, "spec"), "replicas")), 7);
    json_decref(body);
    assert_string_equal(req_field(r, 3, "query"), "");
    json_decref(r);
}

static void test_rate_limit(void **state)
{
    env e;
    ss_http_limiter *l = ss_http_limiter_create(5, 2);
    ss_k8s_api_opts ao = { .limiter = l };
    env_open(&e, &good, "ca.crt", &ao);
    ss_http_limiter_release(l);   /* the api holds its own reference */
    char err[256];
    for (int i = 0; i < 7; i++)
        assert_int_equal(ss_k8s_get_scale(e.api, "ns", SS_K8S_DEPLOYMENT, "w", on_scale, &e, NULL,
                                          err, sizeof err), 0);
    wait_done(&e, 7);
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 7);
    /* burst 2 at once, then one every 200 ms: the 7th leaves >= 1 s after the 1st. */
    assert_true(req_time(r, 6) - req_time(r, 0) >= 0.95);
    assert_true(req_time(r, 1) - req_time(r, 0) < 0.15);
    json_decref(r);
}

static void test_list_pages(void **state)
{
    /* 1,200 pods: three pages of SS_K8S_PODS_PAGE. */
    size_t cap = 200000;
    char *w = malloc(cap);
    size_t o = (size_t)snprintf(w, cap, "{\"workloads\":{\"deployments/big\":{\"replicas\":1200,\"pods\":[");
    for (int i = 0; i < 1200; i++)
        o += (size_t)snprintf(w + o, cap - o, "%s{\"name\":\"big-%d\",\"ip\":\"10.1.%d.%d\"}",
                              i ? "," : "", i, i / 256, i % 256);
    snprintf(w + o, cap - o, "]}}}");
    ctl_do(&good, "/_fixture/world", w);
    free(w);
    env e;
    env_open(&e, &good, "ca.crt", NULL);
    char err[256];
    assert_int_equal(ss_k8s_list_pods(e.api, "ns", "app=big", on_pods, &e, NULL, err, sizeof err), 0);
    wait_done(&e, 1);
    assert_true(e.res.ok);
    assert_int_equal(e.npods, 1200);
    env_close(&e);
    json_t *r = requests(&good);
    assert_int_equal(json_array_size(r), 3);
    assert_string_equal(req_field(r, 0, "query"), "labelSelector=app%3Dbig&limit=500");
    assert_string_equal(req_field(r, 1, "query"), "labelSelector=app%3Dbig&limit=500&continue=500");
    assert_string_equal(req_field(r, 2, "query"), "labelSelector=app%3Dbig&limit=500&continue=1000");
    json_decref(r);
}

/* ---- the backend ---------------------------------------------------------------------- */

typedef struct bk {
    uv_loop_t loop;
    ss_http_client *http;
    ss_config *cfg;
    ss_k8s_backend *b;
    ss_k8s_outcome out;
    int done;
} bk;

static void bk_open_with(bk *k, fixture *fx, const char *limits)
{
    char kc[4096], ca[256], tok[256], yaml[8192], kcpath[256];
    path_of(ca, sizeof ca, "ca.crt");
    path_of(tok, sizeof tok, "token");
    snprintf(kc, sizeof kc,
             "clusters: [{name: f, cluster: {server: 'https://127.0.0.1:%d', certificate-authority: %s}}]\n"
             "users: [{name: u, user: {tokenFile: %s}}]\n"
             "contexts: [{name: x, context: {cluster: f, user: u}}]\ncurrent-context: x\n",
             fx->port, ca, tok);
    write_file("kubeconfig", kc);
    path_of(kcpath, sizeof kcpath, "kubeconfig");
    snprintf(yaml, sizeof yaml,
             "actuator:\n  max_attempts: 2\n  kubernetes: { kubeconfig: %s%s }\n"
             "clusters:\n"
             "  - name: alpha\n    target: { kind: kubernetes, namespace: ns, workload: deployment/w }\n"
             "  - name: beta\n    target: { kind: kubernetes, namespace: ns, workload: statefulset/s }\n",
             kcpath, limits);
    char err[1024];
    memset(k, 0, sizeof *k);
    if (ss_config_load_string(yaml, "test", &k->cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    assert_int_equal(uv_loop_init(&k->loop), 0);
    k->http = ss_http_client_create(&k->loop, NULL);
    ss_k8s_backend_opts bo = { .confirm_timeout_ms = 2000 };
    k->b = ss_k8s_backend_create(&k->loop, k->http, k->cfg, &bo, err, sizeof err);
    if (!k->b)
        fail_msg("backend: %s", err);
}

static void bk_open(bk *k, fixture *fx)
{
    bk_open_with(k, fx, "");
}

static void bk_close(bk *k)
{
    ss_k8s_backend_close(k->b, NULL, NULL);
    ss_http_client_close(k->http, NULL, NULL);
    assert_int_equal(uv_run(&k->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&k->loop), 0);
    ss_config_free(k->cfg);
}

static void on_outcome(const ss_k8s_outcome *o, void *arg)
{
    bk *k = arg;
    k->out = *o;
    k->done++;
}

static void resize(bk *k, size_t cluster, int desired, const char *const *victims, size_t n,
                   int dry_run)
{
    ss_k8s_request q = { .desired = desired, .victims = victims, .nvictims = n,
                         .dry_run = dry_run, .decision = "alpha 5/9" };
    int before = k->done;
    assert_int_equal(ss_k8s_backend_resize(k->b, cluster, &q, on_outcome, k), 0);
    assert_int_equal(ss_k8s_backend_resize(k->b, cluster, &q, on_outcome, k), -EBUSY);
    while (k->done == before)
        uv_run(&k->loop, UV_RUN_ONCE);
}

/* "GET /path?query" of request i, paths shortened to their last two parts. */
static void shape(json_t *r, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(r); i++) {
        const char *p = req_field(r, i, "path"), *q = req_field(r, i, "query");
        const char *cut = p + strlen(p);
        for (int slash = 0; cut > p && slash < 2; )
            if (*--cut == '/')
                slash++;
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s %s%s%s", i ? "; " : "", req_field(r, i, "method"), cut + 1,
                 strstr(q, "dryRun") ? "?dryRun" : "", "");
    }
}

static void test_backend_conflict(void **state)
{
    bk k;
    /* Someone else writes the Scale between our read and our write, once. */
    ctl_do(&good, "/_fixture/script", "[{\"method\":\"PUT\",\"status\":409,\"reason\":\"Conflict\"}]");
    bk_open(&k, &good);
    const char *v[] = { "10.0.0.2" };
    resize(&k, 0, 2, v, 1, 0);
    assert_int_equal(k.out.code, SS_K8S_APPLIED);
    assert_int_equal(k.out.conflicts, 1);
    assert_int_equal(k.out.replicas_before, 3);
    assert_int_equal(k.out.replicas_after, 2);
    assert_true(k.out.confirmed);
    assert_int_equal(k.out.nremoved, 1);
    assert_string_equal(k.out.removed[0].name, "w-b");
    assert_true(k.out.removed[0].victim);
    assert_int_equal(k.out.nremoved_other, 0);
    assert_true(k.out.write_ms >= 0);
    bk_close(&k);
    json_t *r = requests(&good);
    char s[2048];
    shape(r, s, sizeof s);
    /* read, list, mark, write (409); read (same size: the plan stands), write; confirm */
    assert_string_equal(s, "GET w/scale; GET ns/pods; PATCH pods/w-b; PUT w/scale; GET w/scale; "
                           "PUT w/scale; GET ns/pods");
    json_decref(r);
    /* A 409 that came with a new size: planned again from a fresh list. */
    ctl_do(&good, "/_fixture/reset", "null");
    ctl_do(&good, "/_fixture/world",
           "{\"workloads\":{\"deployments/w\":{\"replicas\":4,\"pods\":["
           "{\"name\":\"w-a\",\"ip\":\"10.0.0.1\"},{\"name\":\"w-b\",\"ip\":\"10.0.0.2\"},"
           "{\"name\":\"w-c\",\"ip\":\"10.0.0.3\"},{\"name\":\"w-d\",\"ip\":\"10.0.0.4\"}]}}}");
    /* Asked 4 -> 3 with victim w-b; the 409 comes from a writer that made it 5
     * (the fixture switches to that world as it answers): the plan is redone
     * against 5 and still removes only w-b. */
    ctl_do(&good, "/_fixture/script",
           "[{\"method\":\"PUT\",\"status\":409,\"reason\":\"Conflict\",\"world\":"
           "{\"workloads\":{\"deployments/w\":{\"replicas\":5,\"pods\":["
           "{\"name\":\"w-a\",\"ip\":\"10.0.0.1\"},{\"name\":\"w-b\",\"ip\":\"10.0.0.2\","
           "\"annotations\":{\"controller.kubernetes.io/pod-deletion-cost\":\"-2147483648\","
           "\"sparkscale.io/victim\":\"alpha 5/10\"}},"
           "{\"name\":\"w-c\",\"ip\":\"10.0.0.3\"},{\"name\":\"w-d\",\"ip\":\"10.0.0.4\"},"
           "{\"name\":\"w-e\",\"ip\":\"10.0.0.5\"}]}}}}]");
    bk_open(&k, &good);
    const char *vb[] = { "10.0.0.2" };
    ss_k8s_request q = { .desired = 3, .victims = vb, .nvictims = 1, .decision = "alpha 5/10" };
    assert_int_equal(ss_k8s_backend_resize(k.b, 0, &q, on_outcome, &k), 0);
    while (!k.done)
        uv_run(&k.loop, UV_RUN_ONCE);
    assert_int_equal(k.out.code, SS_K8S_PARTIAL);   /* 5 -> 4: one idle worker, not two */
    assert_int_equal(k.out.replicas_after, 4);
    assert_int_equal(k.out.nremoved, 1);
    assert_string_equal(k.out.removed[0].name, "w-b");
    bk_close(&k);
    r = requests(&good);
    shape(r, s, sizeof s);
    assert_string_equal(s, "GET w/scale; GET ns/pods; PATCH pods/w-b; PUT w/scale; GET w/scale; "
                           "GET ns/pods; PUT w/scale; GET ns/pods");
    json_error_t je;
    json_t *patch = json_loads(req_field(r, 2, "body"), 0, &je);
    json_t *ann = json_object_get(json_object_get(patch, "metadata"), "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "controller.kubernetes.io/pod-deletion-cost")),
                        "-2147483648");
    assert_string_equal(json_string_value(json_object_get(ann, "sparkscale.io/victim")), "alpha 5/10");
    assert_string_equal(req_header(r, 2, "content-type"), "application/merge-patch+json");
    json_decref(patch);
    json_decref(r);
}

static void test_backend_old_controller(void **state)
{
    /* A controller that ignores pod-deletion-cost removes w-a, not the victim w-c:
     * the outcome says which, and the victim's mark is undone. */
    const char *w = "{\"ignore_cost\":true,\"workloads\":{\"deployments/w\":{\"replicas\":3,\"pods\":["
                    "{\"name\":\"w-a\",\"ip\":\"10.0.0.1\"},{\"name\":\"w-b\",\"ip\":\"10.0.0.2\"},"
                    "{\"name\":\"w-c\",\"ip\":\"10.0.0.3\",\"annotations\":"
                    "{\"controller.kubernetes.io/pod-deletion-cost\":\"7\"}}]}}}";
    ctl_do(&good, "/_fixture/world", w);
    bk k;
    bk_open(&k, &good);
    const char *v[] = { "10.0.0.3" };
    resize(&k, 0, 2, v, 1, 0);
    assert_int_equal(k.out.code, SS_K8S_APPLIED);
    assert_int_equal(k.out.nremoved, 1);
    assert_string_equal(k.out.removed[0].name, "w-a");
    assert_false(k.out.removed[0].victim);
    assert_int_equal(k.out.nremoved_other, 1);
    assert_int_equal(k.out.nkept, 1);
    assert_string_equal(k.out.kept[0].name, "w-c");
    assert_non_null(strstr(k.out.summary, "w-a (10.0.0.1, NOT a victim)"));
    assert_non_null(strstr(k.out.summary, "victim kept: w-c (10.0.0.3)"));
    bk_close(&k);
    json_t *r = requests(&good);
    char s[2048];
    shape(r, s, sizeof s);
    assert_string_equal(s, "GET w/scale; GET ns/pods; PATCH pods/w-c; PUT w/scale; GET ns/pods; "
                           "PATCH pods/w-c");
    /* The mark kept the pod's own cost, and the unmark gives it back. */
    json_error_t je;
    json_t *mark = json_loads(req_field(r, 2, "body"), 0, &je);
    json_t *ann = json_object_get(json_object_get(mark, "metadata"), "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "sparkscale.io/prior-deletion-cost")), "7");
    json_decref(mark);
    json_t *un = json_loads(req_field(r, 5, "body"), 0, &je);
    ann = json_object_get(json_object_get(un, "metadata"), "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "controller.kubernetes.io/pod-deletion-cost")), "7");
    assert_true(json_is_null(json_object_get(ann, "sparkscale.io/victim")));
    json_decref(un);
    json_decref(r);
}

static void test_backend_forbidden_mark(void **state)
{
    ctl_do(&good, "/_fixture/script",
           "[{\"method\":\"PATCH\",\"status\":403,\"reason\":\"Forbidden\",\"message\":\"pods "
           "\\\"w-b\\\" is forbidden: User \\\"x\\\" cannot patch resource \\\"pods\\\"\"}]");
    bk k;
    bk_open(&k, &good);
    const char *v[] = { "10.0.0.2" };
    resize(&k, 0, 2, v, 1, 0);
    assert_int_equal(k.out.code, SS_K8S_FAILED);
    assert_non_null(strstr(k.out.error, "cannot patch resource \"pods\""));
    bk_close(&k);
    json_t *r = requests(&good);
    char s[2048];
    shape(r, s, sizeof s);
    assert_string_equal(s, "GET w/scale; GET ns/pods; PATCH pods/w-b");   /* no write */
    json_decref(r);
}

static void test_backend_dry_run_and_hold(void **state)
{
    bk k;
    bk_open(&k, &good);
    const char *v[] = { "10.0.0.1" };
    resize(&k, 0, 2, v, 1, 1);
    assert_int_equal(k.out.code, SS_K8S_APPLIED);
    assert_true(k.out.dry_run);
    assert_int_equal(k.out.replicas_after, 2);
    assert_non_null(strstr(k.out.summary, "dry run"));
    /* StatefulSet: the victim is not the highest ordinal: hold, nothing written. */
    const char *mid[] = { "10.0.1.1" };
    resize(&k, 1, 2, mid, 1, 0);
    assert_int_equal(k.out.code, SS_K8S_HELD);
    assert_int_equal(k.out.replicas_after, 3);
    assert_non_null(strstr(k.out.reason, "pod s-2 (10.0.1.2) is not known idle"));
    /* Growing needs no victims. */
    resize(&k, 1, 4, NULL, 0, 0);
    assert_int_equal(k.out.code, SS_K8S_APPLIED);
    assert_int_equal(k.out.replicas_after, 4);
    bk_close(&k);
    json_t *r = requests(&good);
    char s[2048];
    shape(r, s, sizeof s);
    assert_string_equal(s, "GET w/scale; GET ns/pods; PATCH pods/w-a?dryRun; PUT w/scale?dryRun; "
                           "GET s/scale; GET ns/pods; GET s/scale; PUT s/scale");
    json_decref(r);
    json_t *after = ctl(&good, "GET", "/_fixture/requests", NULL);   /* still 3 pods of w */
    json_decref(after);
}

static void on_count(const ss_k8s_outcome *o, void *arg)
{
    bk *k = arg;
    if (o->code == SS_K8S_APPLIED)
        k->done++;
}

static void test_backend_one_server_queue(void **state)
{
    /* burst 1: one operation at a time per API server, in arrival order, so a
     * decision's read and write are not separated by everyone else's reads. */
    bk k;
    bk_open_with(&k, &good, ", qps: 50, burst: 1");
    ss_k8s_request up3 = { .desired = 4 }, up2 = { .desired = 5 };
    assert_int_equal(ss_k8s_backend_resize(k.b, 0, &up3, on_count, &k), 0);
    assert_int_equal(ss_k8s_backend_resize(k.b, 1, &up2, on_count, &k), 0);
    while (k.done < 2)
        uv_run(&k.loop, UV_RUN_ONCE);
    json_t *r = requests(&good);
    char s[2048];
    shape(r, s, sizeof s);
    assert_string_equal(s, "GET w/scale; PUT w/scale; GET s/scale; PUT s/scale");
    json_decref(r);
    /* Closing with one operation in flight (hanging) and one queued: both end, cancelled. */
    ctl_do(&good, "/_fixture/script", "[{\"method\":\"GET\",\"hang\":true,\"hang_s\":3}]");
    k.done = 0;
    assert_int_equal(ss_k8s_backend_resize(k.b, 0, &up2, on_outcome, &k), 0);
    assert_int_equal(ss_k8s_backend_resize(k.b, 1, &up3, on_outcome, &k), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&k.loop, UV_RUN_NOWAIT), usleep(5000);
    assert_int_equal(k.done, 0);
    ss_k8s_backend_close(k.b, NULL, NULL);
    assert_int_equal(k.done, 2);
    assert_int_equal(k.out.code, SS_K8S_FAILED);
    assert_non_null(strstr(k.out.error, "cancelled"));
    ss_http_client_close(k.http, NULL, NULL);
    assert_int_equal(uv_run(&k.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&k.loop), 0);
    ss_config_free(k.cfg);
    r = requests(&good);
    assert_int_equal(json_array_size(r), 5);   /* the queued one never sent anything */
    json_decref(r);
}

static void test_backend_read_and_close(void **state)
{
    bk k;
    bk_open(&k, &good);
    assert_int_equal(ss_k8s_backend_read(k.b, 0, on_outcome, &k), 0);
    while (!k.done)
        uv_run(&k.loop, UV_RUN_ONCE);
    assert_int_equal(k.out.code, SS_K8S_APPLIED);
    assert_int_equal(k.out.replicas_before, 3);
    assert_int_equal(ss_k8s_backend_read(k.b, 5, on_outcome, &k), -ENOENT);
    /* Closing with an operation in flight (a hanging request) ends it: cancelled. */
    ctl_do(&good, "/_fixture/script", "[{\"method\":\"GET\",\"hang\":true,\"hang_s\":3}]");
    assert_int_equal(ss_k8s_backend_read(k.b, 0, on_outcome, &k), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&k.loop, UV_RUN_NOWAIT), usleep(5000);
    ss_k8s_backend_close(k.b, NULL, NULL);
    assert_int_equal(k.done, 2);
    assert_int_equal(k.out.code, SS_K8S_FAILED);
    assert_non_null(strstr(k.out.error, "cancelled"));
    ss_http_client_close(k.http, NULL, NULL);
    assert_int_equal(uv_run(&k.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&k.loop), 0);
    ss_config_free(k.cfg);
}

/* ---- set-up -------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    const char *s = getenv("SS_SOURCE_DIR");
    if (s)
        snprintf(src, sizeof src, "%s", s);
    else
        snprintf(src, sizeof src, "%.*s/../..", (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
    strcpy(dir, "/tmp/ss-k8s-fixture.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s/tests/kubernetes/fixture_certs.sh %s", src, dir);
    if (system(cmd) != 0)
        return -1;
    fixture_start(&good, "good");
    fixture_start(&wrong, "wrong");
    return 0;
}

static int group_teardown(void **state)
{
    fixture_stop(&good);
    fixture_stop(&wrong);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_get_scale, reset),
        cmocka_unit_test_setup(test_429_retry_after, reset),
        cmocka_unit_test_setup(test_5xx, reset),
        cmocka_unit_test_setup(test_403_not_retried, reset),
        cmocka_unit_test_setup(test_token_rotation, reset),
        cmocka_unit_test_setup(test_hang, reset),
        cmocka_unit_test_setup(test_tls, reset),
        cmocka_unit_test_setup(test_dry_run_put, reset),
        cmocka_unit_test_setup(test_rate_limit, reset),
        cmocka_unit_test_setup(test_list_pages, reset),
        cmocka_unit_test_setup(test_backend_conflict, reset),
        cmocka_unit_test_setup(test_backend_old_controller, reset),
        cmocka_unit_test_setup(test_backend_forbidden_mark, reset),
        cmocka_unit_test_setup(test_backend_dry_run_and_hold, reset),
        cmocka_unit_test_setup(test_backend_one_server_queue, reset),
        cmocka_unit_test_setup(test_backend_read_and_close, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
