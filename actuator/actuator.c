/* actuator.c: wires sparkscale-actuator's parts onto one libuv loop: the
 * Kafka bootstrap (asked from sparkscaled when embedded), the group member
 * and transactional audit producer (lib/bus/consumer), one state machine
 * and backend per cluster, the shared HTTP client and the status server.
 * Records become decisions for clusters; answered decisions become audit
 * records; a revoked partition is released once its clusters are idle. */
#include "actuator/actuator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "actuator/cluster.h"
#include "actuator/status.h"
#include "lib/base/clock.h"
#include "lib/base/join.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/bus/consumer.h"
#include "lib/http/client.h"
#include "lib/http/server.h"

#define DISCOVER_RETRY_MS 500
#define DISCOVER_LOG_EVERY_US 10000000
#define WAIT_POLL_MS 250
#define MAX_PARTITIONS 100000

struct ss_actuator {
    uv_loop_t *loop;
    const ss_config *cfg;
    char id[SS_BUS_NAME_MAX];
    char bootstrap[1024];
    char state[16];
    ss_bus_conf bus_conf;

    ss_http_client *http;
    ss_http_server *server;
    act_status status;
    ss_bus_consumer *consumer;

    act_env env;
    act_stats stats;
    act_cluster **clusters;
    size_t nclusters;
    size_t *table;                  /* name -> index + 1, open addressing */
    size_t table_cap;

    act_cluster **kick;             /* clusters to start at the end of this loop turn */
    size_t nkick, capkick;
    uv_check_t check;

    unsigned char *revoking;        /* per partition */
    size_t nrevoking;

    /* bootstrap discovery (kafka.brokers: embedded) */
    uv_timer_t discover_timer;
    ss_http_req *discover_req;
    int64_t discover_log_us;
    int discover_attempts;

    int failed;
    int closing;
    ss_join parts;
    int timeout_ms;
    void (*done)(void *);
    void *done_ctx;
    void (*fatal_done)(void *);
    void *fatal_ctx;
    ss_actuation_result *scratch;
    void (*commit_hook)(void *ctx, size_t n);
    void *commit_hook_ctx;
};

static void start_consumer(ss_actuator *a);

/* ---- clusters by name ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int find_cluster(const ss_actuator *a, const char *name)
{
    if (!a->table_cap)
        return -1;
    size_t mask = a->table_cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        size_t v = a->table[i];
        if (!v)
            return -1;
        if (strcmp(a->cfg->clusters[v - 1].name, name) == 0)
            return (int)(v - 1);
    }
}

static int status_index(void *ctx, const char *name) { return find_cluster(ctx, name); }

static int build_table(ss_actuator *a)
{
    size_t cap = 64;
    while (cap < a->cfg->nclusters * 2)
        cap *= 2;
    a->table = calloc(cap, sizeof *a->table);
    if (!a->table)
        return -ENOMEM;
    a->table_cap = cap;
    for (size_t c = 0; c < a->cfg->nclusters; c++) {
        size_t i = hash_name(a->cfg->clusters[c].name) & (cap - 1);
        while (a->table[i])
            i = (i + 1) & (cap - 1);
        a->table[i] = c + 1;
    }
    return 0;
}

/* ---- answers, kicks, releases ---- */

static void check_release(ss_actuator *a, int32_t p)
{
    if (p < 0 || (size_t)p >= a->nrevoking || !a->revoking[p] || !a->consumer)
        return;
    for (size_t i = 0; i < a->nclusters; i++)
        if (act_cluster_partition(a->clusters[i]) == p && act_cluster_busy(a->clusters[i]))
            return;
    a->revoking[p] = 0;
    ss_bus_consumer_release(a->consumer, p);
}

static void on_finished(void *ctx, act_cluster *cl, int32_t p, int64_t offset, const ss_actuation_result *audit)
{
    ss_actuator *a = ctx;
    (void)cl;
    if (!a->consumer)
        return;
    if (!audit) {
        ss_bus_consumer_abandon(a->consumer, p, offset);
        return;
    }
    int rc = ss_bus_consumer_done(a->consumer, p, offset, audit);
    if (rc < 0 && rc != -ENOENT)
        ss_error("audit record for %s #%" PRIu64 " refused: %s", audit->cluster, audit->decision_sequence,
                 strerror(-rc));
}

static void on_want_kick(void *ctx, act_cluster *cl)
{
    ss_actuator *a = ctx;
    if (a->nkick == a->capkick) {
        size_t cap = a->capkick ? a->capkick * 2 : 64;
        act_cluster **n = realloc(a->kick, cap * sizeof *n);
        if (!n) {
            act_cluster_kick(cl);   /* no room to defer: start now */
            return;
        }
        a->kick = n;
        a->capkick = cap;
    }
    a->kick[a->nkick++] = cl;
}

static void on_idle(void *ctx, act_cluster *cl)
{
    check_release(ctx, act_cluster_partition(cl));
}

/* End of a loop turn: every record of the turn was offered, so each
 * cluster starts only its newest decision. */
static void on_check(uv_check_t *h)
{
    ss_actuator *a = h->data;
    while (a->nkick) {
        size_t n = a->nkick;
        act_cluster **list = a->kick;
        a->kick = NULL;
        a->nkick = a->capkick = 0;
        for (size_t i = 0; i < n; i++)
            act_cluster_kick(list[i]);
        free(list);
    }
}

/* ---- the consumer's callbacks ---- */

/* A record that is no decision of a configured cluster: audited FAILED. */
static void answer_failed(ss_actuator *a, const ss_bus_in *rec, const char *cluster, const ss_decision *d,
                          act_fail why, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void answer_failed(ss_actuator *a, const ss_bus_in *rec, const char *cluster, const ss_decision *d,
                          act_fail why, const char *fmt, ...)
{
    ss_actuation_result *r = a->scratch;
    memset(r, 0, sizeof *r);
    snprintf(r->cluster, sizeof r->cluster, "%s", cluster[0] ? cluster : "(unknown)");
    if (d) {
        r->decision_epoch = d->producer_epoch;
        r->decision_sequence = d->sequence;
        r->desired_workers = d->desired_workers;
    }
    r->outcome = SS_OUTCOME_FAILED;
    r->replicas_before = r->replicas_after = -1;
    r->handled_at_ms = ss_wall_ms();
    snprintf(r->actuator_id, sizeof r->actuator_id, "%s", a->id);
    snprintf(r->backend, sizeof r->backend, "none");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    a->stats.outcomes[SS_OUTCOME_FAILED]++;
    a->stats.failed[why]++;
    ss_warn("decision at %d@%" PRId64 ": %s", (int)rec->partition, rec->offset, r->error);
    ss_bus_consumer_done(a->consumer, rec->partition, rec->offset, r);
}

static void on_record(void *ctx, const ss_bus_in *rec)
{
    ss_actuator *a = ctx;
    ss_decision d;
    int rc = ss_decision_decode(rec->payload, rec->len, &d);
    if (rc < 0) {
        char key[SS_BUS_NAME_MAX] = "";
        if (rec->key && rec->key_len < sizeof key && ss_utf8_valid(rec->key, rec->key_len)) {
            memcpy(key, rec->key, rec->key_len);
            key[rec->key_len] = '\0';
        }
        answer_failed(a, rec, key, NULL, ACT_FAIL_BAD_RECORD, "not a ScaleDecision (%s)",
                      rc == -EBADMSG ? "bad protobuf or no cluster" : strerror(-rc));
        return;
    }
    int c = find_cluster(a, d.cluster);
    if (c < 0) {
        answer_failed(a, rec, d.cluster, &d, ACT_FAIL_UNKNOWN_CLUSTER,
                      "no cluster named \"%s\" in this actuator's configuration", d.cluster);
        ss_decision_release(&d);
        return;
    }
    act_cluster_offer(a->clusters[c], &d, rec->partition, rec->offset, rec->timestamp_ms);
}

static void on_assigned(void *ctx, int32_t p, const ss_bus_handled *h, size_t n)
{
    ss_actuator *a = ctx;
    if (p >= 0 && (size_t)p < a->nrevoking)
        a->revoking[p] = 0;
    for (size_t i = 0; i < n; i++) {
        int c = find_cluster(a, h[i].cluster);
        if (c >= 0)
            act_cluster_note_handled(a->clusters[c], &h[i]);
    }
}

static void on_revoked(void *ctx, int32_t p, int lost)
{
    ss_actuator *a = ctx;
    if (p < 0 || p >= MAX_PARTITIONS)
        return;
    if (!lost) {
        if ((size_t)p >= a->nrevoking) {
            unsigned char *n = realloc(a->revoking, (size_t)p + 1);
            if (!n) {
                ss_bus_consumer_release(a->consumer, p);
                return;
            }
            memset(n + a->nrevoking, 0, (size_t)p + 1 - a->nrevoking);
            a->revoking = n;
            a->nrevoking = (size_t)p + 1;
        }
        a->revoking[p] = 1;
    }
    for (size_t i = 0; i < a->nclusters; i++)
        if (act_cluster_partition(a->clusters[i]) == p)
            act_cluster_stop(a->clusters[i], lost);
    if (!lost)
        check_release(a, p);
}

static void shutdown_all(ss_actuator *a, int timeout_ms);

static void on_fatal(void *ctx, const char *why)
{
    ss_actuator *a = ctx;
    if (a->failed)
        return;
    a->failed = 1;
    ss_error("actuator: stopping after a fatal Kafka error: %s", why);
    if (!a->closing) {
        a->done = a->fatal_done;
        a->done_ctx = a->fatal_ctx;
        shutdown_all(a, 5000);
    }
}

static void on_committed(void *ctx, size_t n)
{
    ss_actuator *a = ctx;
    if (a->commit_hook)
        a->commit_hook(a->commit_hook_ctx, n);
}

static const ss_bus_consumer_cbs k_cbs = { on_assigned, on_record, on_revoked, on_fatal, on_committed };

static void start_consumer(ss_actuator *a)
{
    ss_bus_consumer_conf cc = {
        .bus = &a->bus_conf,
        .bootstrap = a->bootstrap,
        .group = a->cfg->actuator.group,
        .instance_id = a->id,
        .call_timeout_ms = 30000,
        .fetch_wait_max_ms = strcmp(a->cfg->kafka.brokers, "embedded") == 0
                                 ? SS_ACTUATOR_EMBEDDED_FETCH_WAIT_MS
                                 : 0,
    };
    char err[512];
    a->consumer = ss_bus_consumer_create(a->loop, &cc, &k_cbs, a, err, sizeof err);
    if (!a->consumer) {
        on_fatal(a, err);
        return;
    }
    a->status.consumer = a->consumer;
    snprintf(a->state, sizeof a->state, "running");
}

/* ---- the bootstrap of an embedded Kafka, from sparkscaled ---- */

static void discover_url(const ss_actuator *a, char *url, size_t len)
{
    const ss_listen_addr *h = &a->cfg->ingest.http;
    const char *host = h->host;
    if (strcmp(host, "0.0.0.0") == 0 || !host[0])
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    if (strchr(host, ':'))
        snprintf(url, len, "http://[%s]:%d/v1/kafka", host, h->port);
    else
        snprintf(url, len, "http://%s:%d/v1/kafka", host, h->port);
}

static void discover(ss_actuator *a);

static void on_discover_timer(uv_timer_t *t) { discover(t->data); }

static void on_discovered(const ss_http_client_response *res, void *arg)
{
    ss_actuator *a = arg;
    a->discover_req = NULL;
    if (res->result == SS_HTTP_RES_CANCELLED || a->closing)
        return;
    char why[256] = "";
    const char *brokers = NULL;
    json_t *j = NULL;
    if (res->result != SS_HTTP_RES_OK) {
        snprintf(why, sizeof why, "%s", res->error);
    } else if (res->status != 200) {
        snprintf(why, sizeof why, "HTTP %d", res->status);
    } else {
        j = json_loadb(res->body, res->body_len, 0, NULL);
        brokers = json_string_value(json_object_get(j, "brokers"));
        if (!brokers || !brokers[0])
            snprintf(why, sizeof why, "no \"brokers\" in its answer");
    }
    if (brokers && brokers[0]) {
        snprintf(a->bootstrap, sizeof a->bootstrap, "%s", brokers);
        json_decref(j);
        ss_info("kafka.brokers is embedded: sparkscaled's Kafka is at %s", a->bootstrap);
        start_consumer(a);
        return;
    }
    json_decref(j);
    int64_t now = ss_mono_us();
    if (a->discover_attempts == 1 || now - a->discover_log_us > DISCOVER_LOG_EVERY_US) {
        a->discover_log_us = now;
        char url[300];
        discover_url(a, url, sizeof url);
        ss_warn("kafka.brokers is embedded: waiting for sparkscaled at %s to tell its Kafka "
                "bootstrap (%s); retrying every %d ms",
                url, why, DISCOVER_RETRY_MS);
    }
    uv_timer_start(&a->discover_timer, on_discover_timer, DISCOVER_RETRY_MS, 0);
}

static void discover(ss_actuator *a)
{
    if (a->closing)
        return;
    char url[300];
    discover_url(a, url, sizeof url);
    a->discover_attempts++;
    ss_http_client_request req = {
        .method = SS_HTTP_GET, .url = url, .connect_timeout_ms = 1000, .timeout_ms = 3000,
        .max_response_bytes = 65536,
    };
    if (ss_http_client_start(a->http, &req, on_discovered, a, &a->discover_req) < 0)
        uv_timer_start(&a->discover_timer, on_discover_timer, DISCOVER_RETRY_MS, 0);
}

/* ---- create / shutdown ---- */

static void finish(void *ctx)
{
    ss_actuator *a = ctx;
    void (*done)(void *) = a->done;
    void *done_ctx = a->done_ctx;
    free(a->clusters);
    free(a->table);
    free(a->kick);
    free(a->revoking);
    free(a->scratch);
    free(a);
    ss_info("actuator stopped");
    if (done)
        done(done_ctx);
}

static void on_part_closed(void *ctx) { ss_join_leave(&((ss_actuator *)ctx)->parts); }
static void on_handle_closed(uv_handle_t *h) { on_part_closed(h->data); }

/* After the consumer left the group: everything else goes. */
static void close_rest(ss_actuator *a)
{
    a->consumer = NULL;
    a->status.consumer = NULL;
    for (size_t i = 0; i < a->nclusters; i++) {
        ss_join_add(&a->parts);
        act_cluster_destroy(a->clusters[i], on_part_closed, a);
    }
    a->nclusters = 0;
    a->status.nclusters = 0;
    if (a->server) {
        ss_join_add(&a->parts);
        ss_http_server_close(a->server, on_part_closed, a);
        a->server = NULL;
        a->status.server = NULL;
    }
    if (a->http) {
        ss_join_add(&a->parts);
        ss_http_client_close(a->http, on_part_closed, a);
        a->http = NULL;
        a->status.http = NULL;
    }
    ss_join_add(&a->parts);
    ss_join_add(&a->parts);
    uv_close((uv_handle_t *)&a->check, on_handle_closed);
    uv_close((uv_handle_t *)&a->discover_timer, on_handle_closed);
    ss_join_arm(&a->parts);
}

static void on_consumer_closed(void *ctx) { close_rest(ctx); }

static void shutdown_all(ss_actuator *a, int timeout_ms)
{
    a->closing = 1;
    snprintf(a->state, sizeof a->state, a->failed ? "failed" : "stopping");
    uv_timer_stop(&a->discover_timer);
    if (a->discover_req) {
        ss_http_req *r = a->discover_req;
        a->discover_req = NULL;
        ss_http_req_cancel(r);
    }
    if (a->consumer)
        ss_bus_consumer_close(a->consumer, timeout_ms, on_consumer_closed, a);
    else
        close_rest(a);
}

static int resolve_id(ss_actuator *a)
{
    if (a->cfg->actuator.id[0]) {
        snprintf(a->id, sizeof a->id, "%s", a->cfg->actuator.id);
        return 0;
    }
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "actuator");
    /* A name the config would accept: [A-Za-z0-9_.-]. */
    for (char *p = host; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            *p = '-';
    snprintf(a->id, sizeof a->id, "%.40s-%ld", host, (long)getpid());
    return 0;
}

ss_actuator *ss_actuator_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen)
{
    ss_actuator *a = calloc(1, sizeof *a);
    if (a)
        a->scratch = malloc(sizeof *a->scratch);
    if (!a || !a->scratch) {
        free(a);
        ss_errf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->cfg = cfg;
    resolve_id(a);
    snprintf(a->state, sizeof a->state, "discovering");
    ss_config_bus_conf(cfg, &a->bus_conf);
    ss_join_init(&a->parts, finish, a);
    uv_check_init(loop, &a->check);
    uv_timer_init(loop, &a->discover_timer);
    a->check.data = a->discover_timer.data = a;
    uv_check_start(&a->check, on_check);

    ss_http_client_opts ho = { .user_agent = "sparkscale-actuator" };
    a->http = ss_http_client_create(loop, &ho);
    if (!a->http) {
        ss_errf(err, errlen, "cannot set up the HTTP client (libcurl)");
        goto fail;
    }
    a->env = (act_env){
        .backend = { .loop = loop, .http = a->http, .cfg = cfg, .actuator_id = a->id },
        .stats = &a->stats,
        .finished = on_finished,
        .want_kick = on_want_kick,
        .idle = on_idle,
        .ctx = a,
        .wait_poll_ms = WAIT_POLL_MS,
    };
    if (build_table(a) < 0 || !(a->clusters = calloc(cfg->nclusters ? cfg->nclusters : 1, sizeof *a->clusters))) {
        ss_errf(err, errlen, "out of memory for %zu clusters", cfg->nclusters);
        goto fail;
    }
    for (size_t c = 0; c < cfg->nclusters; c++) {
        a->clusters[c] = act_cluster_create(&a->env, &cfg->clusters[c], err, errlen);
        if (!a->clusters[c])
            goto fail;
        a->nclusters++;
    }
    a->status = (act_status){
        .cfg = cfg, .id = a->id, .bootstrap = a->bootstrap, .state = a->state, .stats = &a->stats,
        .http = a->http, .clusters = a->clusters, .nclusters = a->nclusters,
        .cluster_index = status_index, .ctx = a,
    };
    if (cfg->actuator.http.enabled) {
        a->server = ss_http_server_create(loop, cfg->actuator.http.host, cfg->actuator.http.port,
                                          act_status_handle, &a->status, err, errlen);
        if (!a->server)
            goto fail;
        a->status.server = a->server;
        ss_info("actuator status http listening on %s:%d", cfg->actuator.http.host,
                ss_http_server_port(a->server));
    }
    ss_info("sparkscale-actuator %s started: %zu cluster(s), group %s", a->id, a->nclusters,
            cfg->actuator.group);
    if (strcmp(cfg->kafka.brokers, "embedded") == 0) {
        if (!cfg->ingest.http.enabled) {
            ss_errf(err, errlen, "kafka.brokers is embedded but ingest.http is off: the actuator "
                                 "asks sparkscaled's GET /v1/kafka for the bootstrap list");
            goto fail;
        }
        discover(a);
    } else {
        snprintf(a->bootstrap, sizeof a->bootstrap, "%s", cfg->kafka.brokers);
        start_consumer(a);
        if (a->failed)
            goto fail_late;
    }
    return a;
fail:
    a->done = NULL;
    shutdown_all(a, 0);
    return NULL;
fail_late:
    ss_errf(err, errlen, "cannot start the Kafka consumer (see the log)");
    return NULL;   /* on_fatal already started the shutdown */
}

int ss_actuator_port(const ss_actuator *a) { return a->server ? ss_http_server_port(a->server) : -1; }
const char *ss_actuator_id(const ss_actuator *a) { return a->id; }
const char *ss_actuator_bootstrap(const ss_actuator *a) { return a->bootstrap; }
int ss_actuator_failed(const ss_actuator *a) { return a->failed; }

void ss_actuator_set_commit_hook(ss_actuator *a, void (*fn)(void *ctx, size_t n), void *ctx)
{
    a->commit_hook = fn;
    a->commit_hook_ctx = ctx;
}

void ss_actuator_on_fatal(ss_actuator *a, void (*done)(void *ctx), void *ctx)
{
    a->fatal_done = done;
    a->fatal_ctx = ctx;
}

void ss_actuator_shutdown(ss_actuator *a, int timeout_ms, void (*done)(void *ctx), void *ctx)
{
    if (a->closing)
        return;
    a->done = done;
    a->done_ctx = ctx;
    shutdown_all(a, timeout_ms);
}
