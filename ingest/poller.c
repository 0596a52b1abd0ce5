/* poller.c: the polling loop of the HTTP sources: one timer per endpoint,
 * a bounded number of requests in flight, results counted by reason and
 * logged once per change of state, backoff on repeated failure. What an
 * answer means is poll_master.c's and poll_jolokia.c's business. */
#include "ingest/poller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ingest/poll_jolokia.h"
#include "ingest/poll_master.h"
#include "ingest/poll_sched.h"
#include "ingest/recorder.h"
#include "lib/base/clock.h"
#include "lib/base/join.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/http/client.h"
#include "lib/http/peer.h"

enum { KIND_MASTER = 0, KIND_JOLOKIA, KIND_COUNT };
static const char *const kind_names[KIND_COUNT] = { "master", "jolokia" };

#define ERR_MAX 256
#define TOKEN_MAX 16384
/* Polls start on a grid of this many ms of loop time: endpoints due within
 * one slot start in the same loop turn, and their answers tend to arrive in
 * the same turns too, so 1,000 endpoints polled every 5 s wake the loop a
 * few times a second, not a thousand (half the CPU of polling them, measured
 * by tests/bench/poll_1000.sh). */
#define SLOT_MS 250

typedef struct poller poller;

typedef struct endpoint {
    poller *p;
    int kind;
    int cluster;
    const ss_poll_conf *conf;     /* the cluster's poll settings (borrowed) */
    char **req_urls;              /* what is requested, per URL (owned) */
    char **shown_urls;            /* the configured URLs, secrets masked (owned) */
    const char *const *conf_urls; /* the configured URLs (borrowed) */
    unsigned nurls;
    poll_ha ha;                   /* masters: the round over the HA URLs */
    unsigned asking;              /* URL index of the request in flight */
    uv_timer_t timer;
    ss_http_req *req;             /* in flight, NULL otherwise */
    int64_t due_ms;               /* loop time the current poll was due */
    int64_t armed_ms;             /* loop time the timer is armed for */
    unsigned failures;            /* consecutive polls that backed off */
    poll_result state;            /* outcome of the last finished poll */
    poll_result logged;           /* state last logged */
    int polled;                   /* a poll has finished */
    int64_t last_ok_ms;           /* wall clock of the last poll used (OK, PARTIAL) */
    int64_t last_poll_ms;
    uint64_t polls;
    char last_error[ERR_MAX];     /* of the last poll that was not OK */
    char round_err[ERR_MAX];      /* masters: each URL's failure in this round */
    struct endpoint *next_wait;
    int waiting;
} endpoint;

typedef struct poller_stats {
    uint64_t requests[KIND_COUNT][POLL_RESULT_COUNT];
    uint64_t bytes[KIND_COUNT];
    uint64_t samples;             /* Jolokia numbers read */
    uint64_t stored;              /* of which the store took */
    uint64_t waited;              /* polls that waited for a free request slot */
} poller_stats;

struct poller {
    ss_source base;
    uv_loop_t *loop;
    const ss_config *cfg;
    ss_pipeline *pipe;
    ss_master_view *mv;
    ss_http_client *client;
    endpoint *eps;
    size_t neps;
    size_t *first_ep;             /* per cluster: its endpoints are [first_ep[c], first_ep[c+1]) */
    size_t nclusters;
    size_t count[KIND_COUNT];     /* endpoints per kind */
    char *jolokia_body;
    size_t jolokia_len;
    endpoint *wait_head, *wait_tail;
    size_t in_flight, max_in_flight;
    uint64_t rng;
    int closing;
    ss_join closing_parts;
    void (*done)(void *);
    void *done_ctx;
    poller_stats st;
    char labels[KIND_COUNT][POLL_RESULT_COUNT][64];
};

static void start_request(endpoint *e);
static void submit(endpoint *e);
static void on_timer(uv_timer_t *t);

static int64_t period_ms(const endpoint *e) { return (int64_t)e->conf->interval_s * 1000; }

/* Freshness of master data follows the cluster's policy. */
static int64_t max_age_ms(const poller *p, int c)
{
    return (int64_t)p->cfg->clusters[c].policy.stale_after_s * 1000;
}

/* Arms e's timer for loop time due_ms, rounded up to the slot grid. */
static void arm(endpoint *e, int64_t due_ms)
{
    int64_t now = (int64_t)uv_now(e->p->loop);
    int64_t at = (due_ms + SLOT_MS - 1) / SLOT_MS * SLOT_MS;
    e->armed_ms = at;
    uv_timer_start(&e->timer, on_timer, at > now ? (uint64_t)(at - now) : 0, 0);
}

/* ---- the state of an endpoint, logged when it changes ---- */

static const char *shown_url(const endpoint *e, unsigned i)
{
    return e->shown_urls[i < e->nurls ? i : 0];
}

static void log_change(endpoint *e, poll_result was_logged)
{
    const char *cluster = e->p->cfg->clusters[e->cluster].name;
    const char *kind = kind_names[e->kind];
    const char *url = shown_url(e, e->kind == KIND_MASTER ? e->ha.preferred : 0);
    if (e->state == POLL_OK) {
        if (was_logged != POLL_OK)
            ss_info("cluster %s: %s %s answers again (after %s)", cluster, kind, url,
                    poll_result_name(was_logged));
        else
            ss_debug("cluster %s: %s %s answers", cluster, kind, url);
        return;
    }
    if (e->kind == KIND_MASTER && e->nurls > 1)
        ss_warn("cluster %s: none of its %u masters answers as ALIVE (%s)%s", cluster, e->nurls,
                e->last_error, poll_result_backs_off(e->state) ? "; backing off" : "");
    else if (poll_result_backs_off(e->state))
        ss_warn("cluster %s: %s %s: %s: %s; backing off (up to %d s)", cluster, kind, url,
                poll_result_name(e->state), e->last_error, e->conf->max_backoff_s);
    else
        ss_warn("cluster %s: %s %s: %s: %s", cluster, kind, url, poll_result_name(e->state),
                e->last_error);
}

/* A poll (a round, for masters) ended: state, log, next poll. */
static void poll_finished(endpoint *e, poll_result outcome, const char *err)
{
    poller *p = e->p;
    e->polls++;
    e->state = outcome;
    e->last_poll_ms = ss_wall_ms();
    if (outcome == POLL_OK || outcome == POLL_PARTIAL)
        e->last_ok_ms = e->last_poll_ms;
    if (outcome == POLL_OK)
        e->last_error[0] = '\0';
    else
        ss_strlcpy(e->last_error, err && err[0] ? err : poll_result_name(outcome),
                   sizeof e->last_error);
    e->failures = poll_result_backs_off(outcome) ? e->failures + 1 : 0;
    if (!e->polled || outcome != e->logged) {
        poll_result was = e->polled ? e->logged : POLL_OK;
        e->polled = 1;
        log_change(e, was);
        e->logged = outcome;
    }
    if (p->closing)
        return;
    /* Fixed rate from when the poll was due; a late answer polls at once. */
    int64_t delay = poll_backoff_ms(period_ms(e), (int64_t)e->conf->max_backoff_s * 1000,
                                    e->failures, &p->rng);
    arm(e, e->due_ms + delay);
}

/* ---- requests ---- */

/* Starts waiting polls while request slots are free. */
static void pump(poller *p)
{
    while (!p->closing && p->wait_head && p->in_flight < p->max_in_flight) {
        endpoint *e = p->wait_head;
        p->wait_head = e->next_wait;
        if (!p->wait_head)
            p->wait_tail = NULL;
        e->next_wait = NULL;
        e->waiting = 0;
        start_request(e);
    }
}

/* Asks URL e->asking now, or queues e when every slot is taken. */
static void submit(endpoint *e)
{
    poller *p = e->p;
    if (p->in_flight < p->max_in_flight && !p->wait_head) {
        start_request(e);
        return;
    }
    p->st.waited++;
    e->waiting = 1;
    e->next_wait = NULL;
    if (p->wait_tail)
        p->wait_tail->next_wait = e;
    else
        p->wait_head = e;
    p->wait_tail = e;
}

/* A master URL's result: the round asks the next HA master at once, or
 * ends (with every URL's failure in the message when there are several). */
static void master_next(endpoint *e, poll_result r, const char *err)
{
    if (e->nurls > 1 && r != POLL_OK) {
        size_t n = strlen(e->round_err);
        snprintf(e->round_err + n, sizeof e->round_err - n, "%s%s: %s", n ? "; " : "",
                 shown_url(e, e->asking), err && err[0] ? err : poll_result_name(r));
    }
    unsigned next;
    if (poll_ha_answer(&e->ha, r, &next)) {
        ss_debug("cluster %s: master %s: %s; asking %s", e->p->cfg->clusters[e->cluster].name,
                 shown_url(e, e->asking), poll_result_name(r), shown_url(e, next));
        e->asking = next;
        submit(e);   /* the next HA master, in the same round */
        return;
    }
    poll_finished(e, e->ha.outcome, e->nurls > 1 ? e->round_err : err);
}

/* One URL's answer, judged. */
static poll_result judge(endpoint *e, const ss_http_client_response *res, char *err,
                         size_t errlen)
{
    poller *p = e->p;
    poll_result r = poll_classify_http((int)res->result, res->status);
    if (r != POLL_OK) {
        if (res->result == SS_HTTP_RES_OK) {
            char quoted[96];
            ss_quote(quoted, sizeof quoted, res->body, 64);
            ss_errf(err, errlen, "HTTP %d %s", res->status, quoted);
        } else {
            ss_errf(err, errlen, "%s", res->error);
        }
        return r;
    }
    p->st.bytes[e->kind] += res->body_len;
    int c = e->cluster;
    pipeline_begin_batch(p->pipe);       /* the store's clock, for reaction times */
    if (p->pipe->rec)
        ss_recorder_answer(p->pipe->rec, e->kind == KIND_MASTER ? 'm' : 'j', p->pipe->now_ms, c,
                           res->body, res->body_len);
    if (e->kind == KIND_MASTER) {
        return poll_master_answer(p->mv, p->pipe->store, c, e->conf_urls[e->asking], res->body,
                                  res->body_len, p->pipe->now_ms, max_age_ms(p, c), err,
                                  errlen);
    }
    poll_jolokia_counts n;
    r = poll_jolokia_answer(p->pipe, c, res->body, res->body_len, &n, err, errlen);
    p->st.samples += n.samples;
    p->st.stored += n.stored;
    return r;
}

static void on_response(const ss_http_client_response *res, void *arg)
{
    endpoint *e = arg;
    poller *p = e->p;
    e->req = NULL;
    p->in_flight--;
    if (res->result == SS_HTTP_RES_CANCELLED && p->closing)
        return;
    char err[ERR_MAX] = "";
    poll_result r = judge(e, res, err, sizeof err);
    p->st.requests[e->kind][r]++;
    if (e->kind == KIND_MASTER)
        master_next(e, r, err);
    else
        poll_finished(e, r, err);
    pump(p);
}

static void start_request(endpoint *e)
{
    poller *p = e->p;
    char err[ERR_MAX] = "";
    char *token = NULL;
    ss_http_client_request req = {
        .method = e->kind == KIND_MASTER ? SS_HTTP_GET : SS_HTTP_POST,
        .url = e->req_urls[e->asking],
        .connect_timeout_ms = e->conf->connect_timeout_ms,
        .timeout_ms = e->conf->timeout_ms,
        .max_response_bytes = (size_t)e->conf->max_response_kb * 1024,
        .retry = { .max_attempts = 1 },   /* the poller's own backoff applies */
    };
    if (e->kind == KIND_JOLOKIA) {
        req.body = p->jolokia_body;
        req.body_len = p->jolokia_len;
        req.content_type = "application/json";
    }
    int rc = 0;
    if (e->conf->http.bearer_token_file && e->conf->http.bearer_token_file[0]) {
        token = malloc(TOKEN_MAX);
        if (!token)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = ss_http_peer_apply(&e->conf->http, &req, token, TOKEN_MAX, err, sizeof err);
    if (rc == 0) {
        rc = ss_http_client_start(p->client, &req, on_response, e, &e->req);
        if (rc != 0)
            ss_errf(err, sizeof err, "request not started: %s", strerror(-rc));
    }
    free(token);
    if (rc == 0) {
        p->in_flight++;
        return;
    }
    /* Not started (token file, bad TLS option, memory): a failed poll. */
    e->req = NULL;
    p->st.requests[e->kind][POLL_ERROR]++;
    if (e->kind == KIND_MASTER)
        master_next(e, POLL_ERROR, err);
    else
        poll_finished(e, POLL_ERROR, err);
}

static void on_timer(uv_timer_t *t)
{
    endpoint *e = t->data;
    if (e->p->closing || e->req || e->waiting)
        return;
    e->due_ms = e->armed_ms;   /* on the grid, even when the loop was late */
    e->asking = e->kind == KIND_MASTER ? poll_ha_begin(&e->ha) : 0;
    e->round_err[0] = '\0';
    submit(e);
}

/* ---- the source ---- */

static int poll_port(const ss_source *s)
{
    (void)s;
    return -1;
}

static size_t poll_metrics(const ss_source *s, ss_source_metric *out, size_t cap)
{
    const poller *p = (const poller *)s;
    size_t n = 0;
#define ADD(nm, ty, hp, lb, v) do { if (n < cap) out[n++] = (ss_source_metric){ nm, ty, hp, lb, v }; } while (0)
    for (int k = 0; k < KIND_COUNT; k++) {
        for (int r = 0; r < POLL_RESULT_COUNT; r++) {
            int master_only = r == POLL_STANDBY || r == POLL_RECOVERING;
            int jolokia_only = r == POLL_PARTIAL || r == POLL_READ_FAILED || r == POLL_NO_MBEANS;
            if ((k == KIND_MASTER && jolokia_only) || (k == KIND_JOLOKIA && master_only))
                continue;
            ADD("sparkscale_poll_requests_total", "counter",
                "HTTP requests of the pollers (Spark master /json/, Jolokia), by how they ended.",
                p->labels[k][r], p->st.requests[k][r]);
        }
    }
    static const char *const src_label[KIND_COUNT] = { "source=\"master\"", "source=\"jolokia\"" };
    uint64_t failing[KIND_COUNT] = { 0, 0 };
    for (size_t i = 0; i < p->neps; i++)
        failing[p->eps[i].kind] += p->eps[i].polled && p->eps[i].state != POLL_OK;
    for (int k = 0; k < KIND_COUNT; k++)
        ADD("sparkscale_poll_endpoints", "gauge",
            "Polled endpoints: one per cluster with spark_master (its HA URLs in turn), one per "
            "Jolokia URL.", src_label[k], p->count[k]);
    for (int k = 0; k < KIND_COUNT; k++)
        ADD("sparkscale_poll_endpoints_not_ok", "gauge",
            "Endpoints whose last poll was not ok (failing, standby, partial, no MBeans).",
            src_label[k], failing[k]);
    for (int k = 0; k < KIND_COUNT; k++)
        ADD("sparkscale_poll_response_bytes_total", "counter", "Response body bytes read.",
            src_label[k], p->st.bytes[k]);
    ADD("sparkscale_poll_jolokia_samples_total", "counter",
        "Numbers read from Jolokia agents.", NULL, p->st.samples);
    ADD("sparkscale_poll_jolokia_samples_stored_total", "counter",
        "Jolokia samples stored (ExecutorAllocationManager gauges the store took).", NULL,
        p->st.stored);
    ADD("sparkscale_poll_in_flight", "gauge", "Poll requests in flight.", NULL, p->in_flight);
    ADD("sparkscale_poll_waited_total", "counter",
        "Polls that waited for a free request slot (requests in flight are bounded).", NULL,
        p->st.waited);
#undef ADD
    return n;
}

static void poller_free(poller *p)
{
    for (size_t i = 0; p->eps && i < p->neps; i++) {
        endpoint *e = &p->eps[i];
        for (unsigned k = 0; k < e->nurls; k++) {
            if (e->req_urls)
                free(e->req_urls[k]);
            if (e->shown_urls)
                free(e->shown_urls[k]);
        }
        free(e->req_urls);
        free(e->shown_urls);
    }
    free(p->eps);
    free(p->first_ep);
    free(p->jolokia_body);
    free(p);
}

static void on_all_closed(void *ctx)
{
    poller *p = ctx;
    void (*done)(void *) = p->done;
    void *done_ctx = p->done_ctx;
    poller_free(p);
    if (done)
        done(done_ctx);
}

static void on_part_closed(void *ctx)
{
    poller *p = ctx;
    ss_join_leave(&p->closing_parts);
}

static void on_timer_closed(uv_handle_t *h)
{
    endpoint *e = h->data;
    ss_join_leave(&e->p->closing_parts);
}

/* Closes n_timers endpoint timers and the client (NULL = none). */
static void close_all(poller *p, size_t n_timers)
{
    p->closing = 1;
    p->wait_head = p->wait_tail = NULL;
    ss_join_init(&p->closing_parts, on_all_closed, p);
    if (p->client) {
        ss_join_add(&p->closing_parts);
        /* Cancels what is in flight: on_response sees RES_CANCELLED and returns. */
        ss_http_client_close(p->client, on_part_closed, p);
        p->client = NULL;
    }
    for (size_t i = 0; i < n_timers; i++) {
        ss_join_add(&p->closing_parts);
        uv_close((uv_handle_t *)&p->eps[i].timer, on_timer_closed);
    }
    ss_join_arm(&p->closing_parts);
}

static void poll_close(ss_source *s, void (*done)(void *ctx), void *ctx)
{
    poller *p = (poller *)s;
    p->done = done;
    p->done_ctx = ctx;
    close_all(p, p->neps);
}

static const ss_source_ops poll_ops = {
    .kind = "http_poll",
    .port = poll_port,
    .metrics = poll_metrics,
    .close = poll_close,
};

int poller_wanted(const ss_config *cfg)
{
    for (size_t c = 0; c < cfg->nclusters; c++)
        if (cfg->clusters[c].nspark_master || cfg->clusters[c].njolokia)
            return 1;
    return 0;
}

static char *masked_dup(const char *url)
{
    size_t n = ss_mask_url(url, NULL, 0);
    char *s = malloc(n + 1);
    if (s)
        ss_mask_url(url, s, n + 1);
    return s;
}

/* An endpoint over urls[0..n) of cluster c. */
static int endpoint_init(poller *p, endpoint *e, int kind, int c, char *const *urls, size_t n)
{
    e->p = p;
    e->kind = kind;
    e->cluster = c;
    e->conf = &p->cfg->clusters[c].poll;
    e->conf_urls = (const char *const *)urls;
    e->nurls = (unsigned)n;
    e->req_urls = calloc(n, sizeof *e->req_urls);
    e->shown_urls = calloc(n, sizeof *e->shown_urls);
    if (!e->req_urls || !e->shown_urls)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        e->req_urls[i] = kind == KIND_MASTER ? poll_master_url(urls[i]) : poll_jolokia_url(urls[i]);
        e->shown_urls[i] = masked_dup(urls[i]);
        if (!e->req_urls[i] || !e->shown_urls[i])
            return -ENOMEM;
    }
    poll_ha_init(&e->ha, (unsigned)n);
    p->count[kind]++;
    return 0;
}

static int build_endpoints(poller *p)
{
    const ss_config *cfg = p->cfg;
    size_t n = 0;
    for (size_t c = 0; c < cfg->nclusters; c++)
        n += (cfg->clusters[c].nspark_master ? 1 : 0) + cfg->clusters[c].njolokia;
    p->eps = calloc(n ? n : 1, sizeof *p->eps);
    p->first_ep = calloc(cfg->nclusters + 1, sizeof *p->first_ep);
    if (!p->eps || !p->first_ep)
        return -ENOMEM;
    p->nclusters = cfg->nclusters;
    for (size_t c = 0; c < cfg->nclusters; c++) {
        const ss_cluster_conf *cc = &cfg->clusters[c];
        p->first_ep[c] = p->neps;
        if (cc->nspark_master &&
            endpoint_init(p, &p->eps[p->neps++], KIND_MASTER, (int)c, cc->spark_master,
                          cc->nspark_master) != 0)
            return -ENOMEM;
        for (size_t j = 0; j < cc->njolokia; j++)
            if (endpoint_init(p, &p->eps[p->neps++], KIND_JOLOKIA, (int)c, &cc->jolokia[j], 1) != 0)
                return -ENOMEM;
    }
    p->first_ep[cfg->nclusters] = p->neps;
    return 0;
}

static size_t keep_alive_budget(const ss_config *cfg, size_t neps)
{
    size_t want = neps < 16 ? 16 : neps > POLLER_MAX_CONNECTIONS ? POLLER_MAX_CONNECTIONS : neps;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want < 256 ? want : 256;
    rlim_t need = (rlim_t)want + (rlim_t)cfg->ingest.max_clients + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t cur = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (rl.rlim_cur > cur && setrlimit(RLIMIT_NOFILE, &rl) == 0)
            ss_info("poller: open files limit raised from %llu to %llu", (unsigned long long)cur,
                    (unsigned long long)rl.rlim_cur);
        else
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t spare = rl.rlim_cur > (rlim_t)cfg->ingest.max_clients + 256
                     ? rl.rlim_cur - (rlim_t)cfg->ingest.max_clients - 256 : 16;
        if (spare < want) {
            ss_warn("poller: open files limit %llu leaves room for %llu kept-alive connections "
                    "to %zu endpoints: raise it (LimitNOFILE) to poll without reconnecting",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)spare, neps);
            want = spare < 16 ? 16 : (size_t)spare;
        }
    }
    return want;
}

ss_source *poller_create(uv_loop_t *loop, const ss_config *cfg, ss_pipeline *pipe,
                         ss_master_view *mv, char *err, size_t errlen)
{
    poller *p = calloc(1, sizeof *p);
    if (!p) {
        ss_errf(err, errlen, "poller: out of memory");
        return NULL;
    }
    p->base.ops = &poll_ops;
    p->loop = loop;
    p->cfg = cfg;
    p->pipe = pipe;
    p->mv = mv;
    p->rng = (uint64_t)ss_mono_us() ^ ((uint64_t)(uintptr_t)p << 12) ^ 0x2545f4914f6cdd1dull;
    for (int k = 0; k < KIND_COUNT; k++)
        for (int r = 0; r < POLL_RESULT_COUNT; r++)
            snprintf(p->labels[k][r], sizeof p->labels[k][r], "source=\"%s\",result=\"%s\"",
                     kind_names[k], poll_result_name((poll_result)r));
    if (build_endpoints(p) != 0 || poll_jolokia_body(&p->jolokia_body, &p->jolokia_len) != 0) {
        ss_errf(err, errlen, "poller: out of memory for %zu endpoints", p->neps);
        poller_free(p);
        return NULL;
    }
    size_t conns = keep_alive_budget(cfg, p->neps);
    p->max_in_flight = conns < POLLER_MAX_IN_FLIGHT ? conns : POLLER_MAX_IN_FLIGHT;
    /* libcurl counts the time a request waits for a connection to its host
     * against the request's timeout (and 7.88 misreports it): the in-flight
     * bound, not a per-host one, keeps requests from queueing inside it. */
    ss_http_client_opts opts = { .max_connections = (int)conns,
                                 .max_host_connections = (int)p->max_in_flight,
                                 .user_agent = "sparkscaled" };
    p->client = ss_http_client_create(loop, &opts);
    if (!p->client) {
        ss_errf(err, errlen, "poller: cannot set up libcurl");
        poller_free(p);
        return NULL;
    }
    for (size_t i = 0; i < p->neps; i++) {
        endpoint *e = &p->eps[i];
        uv_timer_init(loop, &e->timer);
        e->timer.data = e;
        arm(e, (int64_t)uv_now(loop) + poll_first_delay_ms(i, p->neps, period_ms(e)));
    }
    for (size_t c = 0; c < cfg->nclusters; c++) {
        const ss_cluster_conf *cc = &cfg->clusters[c];
        if (cc->nspark_master && cc->poll.interval_s >= cc->policy.stale_after_s)
            ss_warn("cluster %s: poll.interval_s %d is not below policy.stale_after_s %d: its "
                    "master answers go stale between polls and will rarely be used",
                    cc->name, cc->poll.interval_s, cc->policy.stale_after_s);
    }
    ss_info("polling %zu Spark master endpoint(s) and %zu Jolokia agent(s)",
            p->count[KIND_MASTER], p->count[KIND_JOLOKIA]);
    return &p->base;
}

/* Idle connections kept for reuse: one per endpoint. Each endpoint comes
 * back once a period after every other one has been polled, so a cache
 * smaller than the endpoints evicts each connection before its reuse (LRU)
 * and every poll pays a new connection. The bound is file descriptors: the
 * soft limit is raised towards the hard one when it is too low for the
 * carbon clients plus one connection per endpoint. */
static json_t *endpoint_json(const endpoint *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "source", json_string(kind_names[e->kind]));
    if (e->kind == KIND_MASTER) {
        json_t *urls = json_array();
        for (unsigned i = 0; i < e->nurls; i++)
            json_array_append_new(urls, json_string(e->shown_urls[i]));
        json_object_set_new(o, "urls", urls);
        json_object_set_new(o, "active_url", e->polled && e->state == POLL_OK
                                                 ? json_string(e->shown_urls[e->ha.preferred])
                                                 : json_null());
    } else {
        json_object_set_new(o, "url", json_string(e->shown_urls[0]));
    }
    json_object_set_new(o, "state", json_string(e->polled ? poll_result_name(e->state) : "pending"));
    json_object_set_new(o, "failures", json_integer(e->failures));
    json_object_set_new(o, "polls", json_integer((json_int_t)e->polls));
    json_object_set_new(o, "last_ok_ms", e->last_ok_ms ? json_integer(e->last_ok_ms) : json_null());
    json_object_set_new(o, "last_poll_ms", e->last_poll_ms ? json_integer(e->last_poll_ms) : json_null());
    json_object_set_new(o, "last_error", e->polled && e->state != POLL_OK
                                             ? json_string(e->last_error) : json_null());
    int busy = e->req || e->waiting;
    json_object_set_new(o, "in_flight", json_boolean(busy));
    json_object_set_new(o, "next_poll_in_ms",
                        busy ? json_null() : json_integer((json_int_t)uv_timer_get_due_in(&e->timer)));
    return o;
}

json_t *poller_cluster_json(const ss_source *s, int c)
{
    json_t *a = json_array();
    const poller *p = (const poller *)s;
    if (!p || c < 0 || (size_t)c >= p->nclusters)
        return a;
    for (size_t i = p->first_ep[c]; i < p->first_ep[c + 1]; i++)
        json_array_append_new(a, endpoint_json(&p->eps[i]));
    return a;
}
