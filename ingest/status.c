/* status.c: the status API: the dashboard page (/), /healthz, /metrics
 * (Prometheus text format 0.0.4), /v1/clusters, /v1/decisions and /v1/kafka
 * (JSON). Read-only over daemon state. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ingest/dashboard.h"
#include "ingest/decision_log.h"
#include "ingest/poller.h"
#include "ingest/status.h"
#include "lib/base/clock.h"
#include "lib/config/config.h"

/* ---------- JSON ---------- */

static json_t *json_number(double v)
{
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *json_int_or_null(int v)
{
    return v < 0 ? json_null() : json_integer(v);
}

/* A series' newest sample and, with history, every sample held as
 * [[ts_ms, value], ...] oldest first (ring gauges hold store.ring_size). */
static json_t *series_json(const store_series *se, int history)
{
    int64_t ts;
    double v;
    json_t *o = json_object();
    size_t n = store_series_len(se);
    if (store_series_sample(se, 0, &ts, &v) == 0) {
        json_object_set_new(o, "value", json_number(v));
        json_object_set_new(o, "ts_ms", json_integer(ts));
    }
    json_object_set_new(o, "samples", json_integer((json_int_t)n));
    if (history) {
        json_t *h = json_array();
        for (size_t i = n; i-- > 0;) {
            if (store_series_sample(se, i, &ts, &v) != 0)
                continue;
            json_t *p = json_array();
            json_array_append_new(p, json_integer(ts));
            json_array_append_new(p, json_number(v));
            json_array_append_new(h, p);
        }
        json_object_set_new(o, "history", h);
    }
    return o;
}

/* {"<gauge>": {...}, ...} over the n series that at() returns for owner. */
typedef const store_series *(*series_at_fn)(const void *owner, size_t i);

static json_t *gauges_json(const void *owner, size_t n, series_at_fn at, int history)
{
    json_t *g = json_object();
    for (size_t i = 0; i < n; i++) {
        const store_series *se = at(owner, i);
        json_object_set_new(g, store_series_name(se), series_json(se, history));
    }
    return g;
}

static const store_series *app_series(const void *a, size_t i) { return store_app_series_at(a, i); }
static const store_series *worker_series(const void *w, size_t i) { return store_worker_series_at(w, i); }

typedef struct master_ref { const ss_store *store; int cluster; } master_ref;
static const store_series *master_series(const void *m, size_t i)
{
    const master_ref *r = m;
    return store_master_series_at(r->store, r->cluster, i);
}

static json_t *app_json(const store_app *a, int history)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(store_app_id(a)));
    json_object_set_new(o, "first_seen_ms", json_integer(store_app_first_seen_ms(a)));
    json_object_set_new(o, "last_seen_ms", json_integer(store_app_last_seen_ms(a)));
    json_object_set_new(o, "gauges", gauges_json(a, store_app_series_count(a), app_series,
                                                 history));
    return o;
}

/* One recorded decision; reason is NULL once its text left the log. */
static json_t *decision_rec_json(const ss_decision_rec *r, const char *reason)
{
    json_t *o = json_object();
    json_object_set_new(o, "sequence", json_integer((json_int_t)r->sequence));
    json_object_set_new(o, "decided_at_ms", json_integer(r->at_ms));
    json_object_set_new(o, "desired", json_int_or_null(r->desired));
    json_object_set_new(o, "current", json_int_or_null(r->current));
    json_object_set_new(o, "busy", json_int_or_null(r->busy));
    json_object_set_new(o, "recommended", json_int_or_null(r->recommended));
    json_object_set_new(o, "demand_executors", json_integer(r->demand_executors));
    json_object_set_new(o, "executors_per_worker", json_integer(r->per_worker));
    json_object_set_new(o, "code", json_string(ss_reason_code_name(r->code)));
    json_object_set_new(o, "reason", reason ? json_string(reason) : json_null());
    return o;
}

/* Cluster c's recent changed decisions, newest first. */
static json_t *decisions_json(const ss_decision_log *log, int c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < decision_log_count(log, c); i++) {
        const ss_decision_rec *r = decision_log_at(log, c, i);
        json_array_append_new(a, decision_rec_json(r, decision_log_reason(log, c, r->sequence)));
    }
    return a;
}

static json_t *decision_json(const ss_cluster_view *v)
{
    if (!v->published)
        return json_null();
    static const char *states[] = { [SS_DELIVERY_PENDING] = "pending",
                                    [SS_DELIVERY_ACKED] = "acked",
                                    [SS_DELIVERY_FAILED] = "failed" };
    json_t *o = json_object();
    json_object_set_new(o, "epoch", json_integer((json_int_t)v->pub_epoch));
    json_object_set_new(o, "sequence", json_integer((json_int_t)v->pub_sequence));
    json_object_set_new(o, "desired", json_integer(v->pub_desired));
    json_object_set_new(o, "decided_at_ms", json_integer(v->pub_at_ms));
    json_object_set_new(o, "reason", json_string(v->pub_reason));
    json_object_set_new(o, "delivery", json_string(states[v->pub_delivery]));
    return o;
}

/* history: ring samples of app and master gauges, and recent decisions. */
static json_t *worker_json(const store_worker *wk)
{
    json_t *wo = json_object();
    json_object_set_new(wo, "source", json_string(store_worker_source(wk)));
    json_object_set_new(wo, "last_seen_ms", json_integer(store_worker_last_seen_ms(wk)));
    json_object_set_new(wo, "gauges", gauges_json(wk, store_worker_series_count(wk), worker_series, 0));
    return wo;
}

/* A cluster's entry without its "apps" and "worker_sources" lists, which
 * can be long (64 apps, 1,024 worker sources): those are streamed one
 * element at a time after it (page_more). */
static json_t *cluster_json(const ss_status *d, int c, int64_t now_ms, int history)
{
    const ss_cluster_conf *cc = &d->cfg->clusters[c];
    ss_cluster_view v;
    ss_decider_view(d->decider, c, &v);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(cc->name));
    json_object_set_new(o, "metrics_prefix", json_string(cc->metrics_prefix));
    int64_t seen = store_cluster_last_seen_ms(d->store, c);
    int64_t polled = master_view_fetched_ms(d->masters, c);
    int64_t stale_ms = (int64_t)cc->policy.stale_after_s * 1000;
    json_object_set_new(o, "last_seen_ms", seen ? json_integer(seen) : json_null());
    /* As the policy sees it: a master answer used counts as data. */
    if (polled > seen)
        seen = polled;
    json_object_set_new(o, "stale", json_boolean(!seen || now_ms - seen > stale_ms));

    json_t *w = json_object();
    const policy_result *r = v.result;
    json_object_set_new(w, "current", r ? json_int_or_null(r->current) : json_null());
    json_object_set_new(w, "busy", r ? json_int_or_null(r->busy) : json_null());
    json_object_set_new(w, "needed", r ? json_int_or_null(r->needed) : json_null());
    json_object_set_new(w, "recommended", r ? json_int_or_null(r->recommendation) : json_null());
    json_object_set_new(w, "desired", r ? json_int_or_null(r->desired) : json_null());
    json_object_set_new(w, "min", json_integer(cc->policy.min_workers));
    json_object_set_new(w, "max", json_integer(cc->policy.max_workers));
    json_object_set_new(o, "workers", w);

    json_t *rec = json_object();
    if (r) {
        json_object_set_new(rec, "desired", json_int_or_null(r->desired));
        json_object_set_new(rec, "demand_executors", json_integer((json_int_t)r->demand_executors));
        json_object_set_new(rec, "executors_per_worker", json_integer(r->per_worker));
        json_object_set_new(rec, "demand", json_string(ss_config_demand_name(cc->policy.demand)));
        json_object_set_new(rec, "code", json_string(policy_reason_name(r->reason)));
        json_object_set_new(rec, "reason", json_string(r->reason_text));
    }
    if (cc->policy.pool[0]) {
        json_object_set_new(rec, "pool", json_string(cc->policy.pool));
        json_object_set_new(rec, "pool_granted", json_int_or_null(v.granted));
        json_object_set_new(rec, "pool_note", json_string(v.pool_note));
    }
    json_object_set_new(o, "recommendation", rec);
    json_object_set_new(o, "decision", decision_json(&v));
    if (history)
        json_object_set_new(o, "decisions", decisions_json(ss_decider_log(d->decider), c));

    master_ref mr = { d->store, c };
    json_t *m = json_object();
    json_object_set_new(m, "gauges", gauges_json(&mr, store_master_series_count(d->store, c),
                                                 master_series, history));
    json_object_set_new(o, "master", m);

    json_object_set_new(o, "spark_master", master_view_json(d->masters, c, now_ms, stale_ms));
    json_object_set_new(o, "pollers", poller_cluster_json(d->poller, c));
    return o;
}

static void send_json(ss_http_response *res, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    ss_http_response_status(res, status, "application/json");
    if (s) {
        ss_http_response_append(res, s, strlen(s));
        ss_http_response_append(res, "\n", 1);
        free(s);
    }
}

/* Value of key in a query string "a=1&b=2" into buf; returns 0 if present. */
static int query_param(const char *query, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, "&");
            if (n >= len)
                n = 0;   /* longer than any valid value: matches nothing */
            memcpy(buf, v, n);
            buf[n] = '\0';
            return 0;
        }
    }
    return -1;
}

/* /v1/clusters[?name=N | ?offset=O&limit=L]: one cluster, or a page of them
 * (STATUS_PAGE_DEFAULT, at most STATUS_PAGE_MAX).  A page is streamed a few
 * clusters per loop turn: a cluster with many apps and workers is tens of
 * kilobytes of JSON, and a page built whole would hold the loop. */
#define STATUS_PAGE_DEFAULT 100
#define STATUS_PAGE_MAX 1000
#define STATUS_PART_JSON (16 * 1024)

typedef struct page_stream {
    const ss_status *d;
    size_t next, end;
    size_t written;   /* clusters written so far */
    int64_t now;
    int history;
    int phase;        /* of the cluster next: its entry, its apps, its worker sources */
    size_t item;      /* next app or worker source */
} page_stream;

enum { PHASE_ENTRY, PHASE_APPS, PHASE_WORKERS };

#define APPEND_LIT(res, lit) ss_http_response_append((res), (lit), sizeof(lit) - 1)

static int append_json(ss_http_response *res, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return -1;
    ss_http_response_append(res, text, strlen(text));
    free(text);
    return 0;
}

/* One element of the page: a cluster's entry (its closing brace held
 * back), one of its apps, one of its worker sources, or the list ends.
 * Between parts the store may change: an app that expires meanwhile can be
 * left out or, moved by the removal, listed twice; each entry is whole. */
static int page_step(page_stream *st, ss_http_response *res)
{
    const ss_store *store = st->d->store;
    int c = (int)st->next;
    if (st->phase == PHASE_ENTRY) {
        if (st->written++)
            ss_http_response_append(res, ",", 1);
        json_t *entry = cluster_json(st->d, c, st->now, st->history);
        char *text = json_dumps(entry, JSON_COMPACT);
        json_decref(entry);
        if (!text)
            return -1;
        size_t n = strlen(text);
        ss_http_response_append(res, text, n - 1);   /* without the '}' */
        free(text);
        APPEND_LIT(res, ",\"apps\":[");
        st->phase = PHASE_APPS;
        st->item = 0;
    } else if (st->phase == PHASE_APPS && st->item < store_app_count(store, c)) {
        if (st->item)
            ss_http_response_append(res, ",", 1);
        if (append_json(res, app_json(store_app_at(store, c, st->item), st->history)) < 0)
            return -1;
        st->item++;
    } else if (st->phase == PHASE_APPS) {
        APPEND_LIT(res, "],\"worker_sources\":[");
        st->phase = PHASE_WORKERS;
        st->item = 0;
    } else if (st->item < store_worker_count(store, c)) {
        if (st->item)
            ss_http_response_append(res, ",", 1);
        if (append_json(res, worker_json(store_worker_at(store, c, st->item))) < 0)
            return -1;
        st->item++;
    } else {
        APPEND_LIT(res, "]}");
        st->phase = PHASE_ENTRY;
        st->next++;
    }
    return 0;
}

static int page_more(void *state, ss_http_response *res)
{
    page_stream *st = state;
    while (st->next < st->end && ss_http_response_len(res) < STATUS_PART_JSON)
        if (page_step(st, res) < 0)
            return -1;
    if (st->next < st->end)
        return 1;
    ss_http_response_append(res, "]}\n", 3);
    return 0;
}

static void clusters_handler(const ss_status *d, const ss_http_request *req, ss_http_response *res)
{
    int64_t now = ss_wall_ms();
    size_t n = d->cfg->nclusters;
    char buf[SS_NAME_MAX];
    int history = query_param(req->query, "history", buf, sizeof buf) == 0 && strcmp(buf, "1") == 0;
    if (query_param(req->query, "name", buf, sizeof buf) == 0) {
        int c = ss_decider_cluster_index(d->decider, buf);
        if (c < 0) {
            ss_http_response_status(res, 404, "text/plain");
            ss_http_response_printf(res, "no cluster named '%s'\n", buf);
            return;
        }
        page_stream *st = calloc(1, sizeof *st);
        if (!st) {
            ss_http_response_status(res, 503, "text/plain");
            return;
        }
        *st = (page_stream){ .d = d, .now = now, .history = history, .next = (size_t)c,
                             .end = (size_t)c + 1 };
        ss_http_response_status(res, 200, "application/json");
        ss_http_response_printf(res, "{\"generated_at_ms\":%lld,\"clusters\":[", (long long)now);
        ss_http_response_stream(res, page_more, st, free);
        return;
    }
    long offset = 0, limit = STATUS_PAGE_DEFAULT;
    if (query_param(req->query, "offset", buf, sizeof buf) == 0)
        offset = strtol(buf, NULL, 10);
    if (query_param(req->query, "limit", buf, sizeof buf) == 0)
        limit = strtol(buf, NULL, 10);
    if (offset < 0 || limit < 1 || limit > STATUS_PAGE_MAX) {
        ss_http_response_status(res, 400, "text/plain");
        ss_http_response_printf(res, "offset must be >= 0 and limit 1..%d\n", STATUS_PAGE_MAX);
        return;
    }
    page_stream *st = calloc(1, sizeof *st);
    if (!st) {
        ss_http_response_status(res, 503, "text/plain");
        return;
    }
    st->d = d;
    st->now = now;
    st->history = history;
    st->next = (size_t)offset < n ? (size_t)offset : n;
    st->end = n - st->next < (size_t)limit ? n : st->next + (size_t)limit;
    ss_http_response_status(res, 200, "application/json");
    ss_http_response_printf(res, "{\"total\":%zu,", n);
    if (st->end < n)
        ss_http_response_printf(res, "\"next_offset\":%zu,", st->end);
    ss_http_response_printf(res, "\"generated_at_ms\":%lld,\"clusters\":[", (long long)now);
    ss_http_response_stream(res, page_more, st, free);
}

static void kafka_handler(const ss_status *d, ss_http_response *res)
{
    json_t *o = json_object();
    json_object_set_new(o, "brokers", json_string(ss_bus_bootstrap(d->bus)));
    json_object_set_new(o, "embedded", json_boolean(strcmp(d->cfg->kafka.brokers, "embedded") == 0));
    json_object_set_new(o, "decisions_topic", json_string(d->cfg->kafka.decisions_topic));
    json_object_set_new(o, "audit_topic", json_string(d->cfg->kafka.audit_topic));
    /* The producer's counters, as /metrics has them. */
    ss_bus_stats bs;
    ss_bus_get_stats(d->bus, &bs);
    json_t *st = json_object();
    json_object_set_new(st, "brokers_up", json_integer(bs.broker_state < 0 ? -1 : bs.brokers_up));
    json_object_set_new(st, "published", json_integer((json_int_t)bs.published));
    json_object_set_new(st, "delivered", json_integer((json_int_t)bs.delivered));
    json_object_set_new(st, "failed", json_integer((json_int_t)bs.failed));
    json_object_set_new(st, "superseded", json_integer((json_int_t)bs.superseded));
    json_object_set_new(st, "dropped", json_integer((json_int_t)bs.dropped));
    json_object_set_new(st, "retried", json_integer((json_int_t)bs.retried));
    json_object_set_new(st, "pending", json_integer((json_int_t)bs.pending));
    json_object_set_new(st, "held", json_integer((json_int_t)bs.held));
    json_object_set_new(st, "delivery_last_ms", json_real(bs.latency.last_us / 1e3));
    json_object_set_new(st, "delivery_mean_ms",
                        json_real(bs.latency.count ? bs.latency.sum_us / 1e3 / bs.latency.count : 0));
    json_object_set_new(st, "last_error", json_string(bs.last_error));
    json_object_set_new(o, "stats", st);
    send_json(res, 200, o);
}

/* /v1/decisions[?limit=N]: the newest changed decisions of all clusters,
 * newest first, with their reasons (at most DECISION_LOG_TEXTS). */
#define DECISIONS_DEFAULT 50

static void decisions_handler(const ss_status *d, const ss_http_request *req,
                              ss_http_response *res)
{
    const ss_decision_log *log = ss_decider_log(d->decider);
    char buf[32];
    long limit = DECISIONS_DEFAULT;
    if (query_param(req->query, "limit", buf, sizeof buf) == 0)
        limit = strtol(buf, NULL, 10);
    if (limit < 1 || limit > DECISION_LOG_TEXTS) {
        ss_http_response_status(res, 400, "text/plain");
        ss_http_response_printf(res, "limit must be 1..%d\n", DECISION_LOG_TEXTS);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "generated_at_ms", json_integer(ss_wall_ms()));
    json_t *a = json_array();
    for (size_t i = 0; i < decision_log_recent_count(log) && i < (size_t)limit; i++) {
        int c;
        const char *reason;
        const ss_decision_rec *r = decision_log_recent(log, i, &c, &reason);
        json_t *e = decision_rec_json(r, reason);
        json_object_set_new(e, "cluster", json_string(d->cfg->clusters[c].name));
        json_array_append_new(a, e);
    }
    json_object_set_new(o, "decisions", a);
    send_json(res, 200, o);
}

/* ---------- Prometheus ---------- */

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : (int64_t)rss * sysconf(_SC_PAGESIZE);
}

#define P(...) ss_http_response_printf(res, __VA_ARGS__)

static void metric_head(ss_http_response *res, const char *name, const char *type,
                        const char *help)
{
    P("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_u64(ss_http_response *res, const char *name, const char *type,
                       const char *help, uint64_t value)
{
    metric_head(res, name, type, help);
    P("%s %llu\n", name, (unsigned long long)value);
}

static void histogram(ss_http_response *res, const char *name, const char *help,
                      const ss_hist *l)
{
    metric_head(res, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < SS_HIST_BUCKETS; i++) {
        cum += l->buckets[i];
        if (i == SS_HIST_BUCKETS - 1)
            P("%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        else
            P("%s_bucket{le=\"%g\"} %llu\n", name, ss_hist_bounds_us[i] / 1e6,
              (unsigned long long)cum);
    }
    P("%s_sum %.6f\n%s_count %llu\n", name, l->sum_us / 1e6, name, (unsigned long long)l->count);
}

static void bus_metrics(ss_http_response *res, const ss_bus_stats *b)
{
    static const struct { const char *name, *type, *help; size_t off; } rows[] = {
#define ROW(n, t, h, f) { "sparkscale_" n, t, h, offsetof(ss_bus_stats, f) }
        ROW("decisions_published_total", "counter", "Decisions handed to Kafka.", published),
        ROW("decisions_delivered_total", "counter", "Decisions acknowledged by Kafka (acks=all).", delivered),
        ROW("decisions_failed_total", "counter", "Delivery errors (each retried or superseded).", failed),
        ROW("decisions_superseded_total", "counter", "Undelivered decisions replaced by a newer one of their cluster.", superseded),
        ROW("decisions_dropped_total", "counter", "Decisions lost for good (holding area full).", dropped),
        ROW("decisions_retried_total", "counter", "Decisions re-produced after a failure.", retried),
        ROW("decisions_pending", "gauge", "Decisions not yet acknowledged: in flight plus held.", pending),
        ROW("decisions_held", "gauge", "Decisions held by sparkscaled for a retry (newest per cluster).", held),
        ROW("audit_published_total", "counter", "Actuation results handed to Kafka.", audit_published),
        ROW("audit_pending", "gauge", "Actuation results not yet acknowledged.", audit_pending),
#undef ROW
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        metric_head(res, rows[i].name, rows[i].type, rows[i].help);
        P("%s %llu\n", rows[i].name,
          (unsigned long long)*(const uint64_t *)((const char *)b + rows[i].off));
    }
    metric_head(res, "sparkscale_kafka_brokers_up", "gauge", "Kafka brokers connected (-1 = not known yet).");
    P("sparkscale_kafka_brokers_up %d\n", b->broker_state < 0 ? -1 : b->brokers_up);
    histogram(res, "sparkscale_kafka_delivery_seconds",
              "From handing a decision to Kafka to its acknowledgement.", &b->latency);
    histogram(res, "sparkscale_reaction_seconds",
              "From reading the carbon line that changed demand to Kafka acknowledging the decision.",
              &b->trigger_latency);
}

/* Each source's counters; HELP/TYPE once per name (same names are adjacent). */
static void source_metrics(ss_http_response *res, ss_source *const *sources, size_t n)
{
    ss_source_metric m[SS_SOURCE_MAX_METRICS];
    for (size_t i = 0; i < n; i++) {
        size_t k = ss_source_metrics(sources[i], m, SS_SOURCE_MAX_METRICS);
        for (size_t j = 0; j < k; j++) {
            if (j == 0 || strcmp(m[j].name, m[j - 1].name) != 0)
                metric_head(res, m[j].name, m[j].type, m[j].help);
            if (m[j].labels)
                P("%s{%s} %llu\n", m[j].name, m[j].labels, (unsigned long long)m[j].value);
            else
                P("%s %llu\n", m[j].name, (unsigned long long)m[j].value);
        }
    }
}

static void pipeline_metrics(ss_http_response *res, const pipeline_stats *ps)
{
    metric_u64(res, "sparkscale_carbon_lines_total", "counter", "Carbon lines received (TCP and UDP).",
               ps->lines);
    metric_u64(res, "sparkscale_carbon_bytes_total", "counter", "Carbon bytes received.",
               ps->bytes);
    metric_u64(res, "sparkscale_carbon_lines_stored_total", "counter", "Spark allocation, master and worker lines stored.",
               ps->stored);
    metric_u64(res, "sparkscale_carbon_lines_skipped_total", "counter", "Well-formed lines of metrics sparkscale does not track.",
               ps->skipped);
    metric_head(res, "sparkscale_carbon_lines_rejected_total", "counter", "Lines dropped, by reason.");
    for (int i = 1; i < CARBON_E_COUNT; i++)
        P("sparkscale_carbon_lines_rejected_total{reason=\"%s\"} %llu\n", carbon_err_name(i),
          (unsigned long long)ps->rejected[i]);
    for (int i = 0; i < PIPE_DROP_COUNT; i++)
        P("sparkscale_carbon_lines_rejected_total{reason=\"%s\"} %llu\n", pipeline_drop_name(i),
          (unsigned long long)ps->dropped[i]);
}

static void http_metrics(ss_http_response *res, const ss_http_server *http)
{
    ss_http_stats hs;
    ss_http_server_stats(http, &hs);
    metric_u64(res, "sparkscale_http_requests_total", "counter", "Status API requests answered.",
               hs.requests);
    metric_head(res, "sparkscale_http_connections_closed_total", "counter",
                "Status API connections closed by the server, by reason.");
    P("sparkscale_http_connections_closed_total{reason=\"max_connections\"} %llu\n",
      (unsigned long long)hs.rejected);
    P("sparkscale_http_connections_closed_total{reason=\"timeout\"} %llu\n",
      (unsigned long long)hs.timeouts);
    P("sparkscale_http_connections_closed_total{reason=\"bad_request\"} %llu\n",
      (unsigned long long)hs.bad_requests);
    P("sparkscale_http_connections_closed_total{reason=\"evicted_slow\"} %llu\n",
      (unsigned long long)hs.evicted);
    P("sparkscale_http_connections_closed_total{reason=\"per_peer\"} %llu\n",
      (unsigned long long)hs.rejected_per_peer);
}

static void store_metrics(ss_http_response *res, const ss_store *store)
{
    store_stats ss;
    store_get_stats(store, &ss);
    metric_u64(res, "sparkscale_store_apps", "gauge", "Spark applications tracked.",
               ss.apps);
    metric_u64(res, "sparkscale_store_series", "gauge", "Gauge series held in ring buffers.",
               ss.series);
    metric_u64(res, "sparkscale_store_worker_sources", "gauge", "Spark worker metric sources tracked.",
               ss.workers);
    metric_u64(res, "sparkscale_store_bytes", "gauge", "Memory held by the store.",
               ss.bytes);
    metric_u64(res, "sparkscale_store_apps_expired_total", "counter", "Applications that stopped reporting and were dropped.",
               ss.expired_apps);
}

static void decider_metrics(ss_http_response *res, const ss_decider *decider)
{
    ss_decider_stats ds;
    ss_decider_get_stats(decider, &ds);
    metric_u64(res, "sparkscale_policy_evaluations_total", "counter", "Policy evaluations.",
               ds.evaluations);
    metric_head(res, "sparkscale_policy_pass_seconds", "gauge",
                "Duration of the last timer pass: one slice of the clusters (store read, policy, pools); sparkscale_policy_rotation_seconds sums a rotation over all.");
    P("sparkscale_policy_pass_seconds %.6f\n", ds.pass_us / 1e6);
    metric_head(res, "sparkscale_policy_rotation_seconds", "gauge",
                "The timer passes of the last full rotation over every cluster, summed.");
    P("sparkscale_policy_rotation_seconds %.6f\n", ds.rotation_us / 1e6);
    metric_head(res, "sparkscale_policy_pass_max_seconds", "gauge", "Longest timer pass since start.");
    P("sparkscale_policy_pass_max_seconds %.6f\n", ds.pass_max_us / 1e6);
    metric_u64(res, "sparkscale_pool_apps_truncated_total", "counter",
               "Apps left out of a pool grant because its scratch was full.", ds.pool_apps_truncated);
    metric_u64(res, "sparkscale_decision_log_bytes", "gauge",
               "Memory held by the recent-decision history (/v1/decisions, the dashboard).",
               decision_log_bytes(ss_decider_log(decider)));
    histogram(res, "sparkscale_policy_pass_duration_seconds",
              "Timer passes over every cluster, by duration.", &ds.passes);
    histogram(res, "sparkscale_publish_duration_seconds",
              "Publishing turns (at most the per-turn budget of decisions), by duration.",
              &ds.publishes);
    metric_head(res, "sparkscale_publish_seconds", "gauge",
                "Duration of the last publishing turn (at most the per-turn budget of decisions).");
    P("sparkscale_publish_seconds %.6f\n", ds.publish_us / 1e6);
    metric_head(res, "sparkscale_publish_max_seconds", "gauge", "Longest publishing turn since start.");
    P("sparkscale_publish_max_seconds %.6f\n", ds.publish_max_us / 1e6);
}

/* Per-cluster series: workers by kind, demand, refusals, last data.  At
 * 10,000 clusters they are megabytes of text, so they are streamed: each
 * loop turn writes about STATUS_PART bytes, and ingest runs in between. */
#define STATUS_PART (64 * 1024)

enum { FAM_WORKERS, FAM_DEMAND, FAM_REFUSED, FAM_SEEN, FAM_N };

static const char *const fam_head[FAM_N][2] = {
    { "sparkscale_cluster_workers", "Workers per cluster: current, busy, recommended, desired." },
    { "sparkscale_cluster_demand_executors", "Executors Spark asks for, per cluster." },
    { "sparkscale_cluster_lines_refused_total",
      "Carbon lines from senders outside the cluster's allowed_sources (listed when any)." },
    { "sparkscale_cluster_last_seen_timestamp_seconds", "When a cluster last sent data." },
};

static void family_head(ss_http_response *res, int fam)
{
    metric_head(res, fam_head[fam][0], fam == FAM_REFUSED ? "counter" : "gauge", fam_head[fam][1]);
}

static void cluster_series(ss_http_response *res, const ss_status *d, int fam, int c)
{
    const char *n = d->cfg->clusters[c].name;
    ss_cluster_view v;
    if (fam == FAM_WORKERS || fam == FAM_DEMAND) {
        ss_decider_view(d->decider, c, &v);
        const policy_result *r = v.result;
        if (!r)
            return;
        if (fam == FAM_DEMAND) {
            P("sparkscale_cluster_demand_executors{cluster=\"%s\"} %lld\n", n,
              (long long)r->demand_executors);
            return;
        }
        if (r->current >= 0)
            P("sparkscale_cluster_workers{cluster=\"%s\",kind=\"current\"} %d\n", n, r->current);
        if (r->busy >= 0)
            P("sparkscale_cluster_workers{cluster=\"%s\",kind=\"busy\"} %d\n", n, r->busy);
        P("sparkscale_cluster_workers{cluster=\"%s\",kind=\"recommended\"} %d\n", n, r->recommendation);
        if (r->desired >= 0)
            P("sparkscale_cluster_workers{cluster=\"%s\",kind=\"desired\"} %d\n", n, r->desired);
    } else if (fam == FAM_REFUSED) {
        if (d->refused && d->refused[c])
            P("sparkscale_cluster_lines_refused_total{cluster=\"%s\"} %llu\n", n,
              (unsigned long long)d->refused[c]);
    } else {
        int64_t seen = store_cluster_last_seen_ms(d->store, c);
        if (seen)
            P("sparkscale_cluster_last_seen_timestamp_seconds{cluster=\"%s\"} %.3f\n", n,
              seen / 1000.0);
    }
}

typedef struct series_stream {
    const ss_status *d;
    int fam;
    size_t next;   /* cluster */
} series_stream;

/* One part of the per-cluster families; 0 once the last is written. */
static int series_more(void *state, ss_http_response *res)
{
    series_stream *st = state;
    size_t n = st->d->cfg->nclusters;
    while (st->fam < FAM_N && ss_http_response_len(res) < STATUS_PART) {
        if (st->next == 0)
            family_head(res, st->fam);
        size_t stop = st->next + 256 < n ? st->next + 256 : n;
        for (; st->next < stop; st->next++)
            cluster_series(res, st->d, st->fam, (int)st->next);
        if (st->next == n) {
            st->fam++;
            st->next = 0;
        }
    }
    return st->fam < FAM_N;
}

static void cluster_metrics(ss_http_response *res, const ss_status *d)
{
    series_stream *st = calloc(1, sizeof *st);
    if (!st) {
        ss_http_response_status(res, 503, "text/plain");
        return;
    }
    st->d = d;
    ss_http_response_stream(res, series_more, st, free);
}

/* The per-cluster families for one cluster (-1: none, the heads alone). */
static void one_cluster_metrics(ss_http_response *res, const ss_status *d, int c)
{
    for (int fam = 0; fam < FAM_N; fam++) {
        family_head(res, fam);
        if (c >= 0)
            cluster_series(res, d, fam, c);
    }
}

static void metrics_handler(const ss_status *d, const ss_http_request *req, ss_http_response *res)
{
    /* ?cluster=NAME: the daemon's series and that cluster's; ?cluster= (empty):
     * the daemon's alone. Without it, every cluster's, streamed. */
    char name[SS_NAME_MAX];
    int one = query_param(req->query, "cluster", name, sizeof name) == 0;
    int c = -1;
    if (one && name[0] && (c = ss_decider_cluster_index(d->decider, name)) < 0) {
        ss_http_response_status(res, 404, "text/plain");
        ss_http_response_printf(res, "no cluster named '%s'\n", name);
        return;
    }
    ss_http_response_status(res, 200, "text/plain; version=0.0.4; charset=utf-8");
    pipeline_metrics(res, d->pipeline);
    source_metrics(res, d->sources, d->nsources);
    if (d->http)
        http_metrics(res, d->http);
    store_metrics(res, d->store);
    decider_metrics(res, d->decider);
    if (d->lag) {
        metric_head(res, "sparkscale_loop_lag_seconds", "gauge",
                    "How late the event loop ran its 50 ms probe timer, last probe.");
        P("sparkscale_loop_lag_seconds %.6f\n", d->lag->last_us / 1e6);
        metric_head(res, "sparkscale_loop_lag_max_seconds", "gauge", "Largest loop lag since start.");
        P("sparkscale_loop_lag_max_seconds %.6f\n", d->lag->max_us / 1e6);
        metric_u64(res, "sparkscale_loop_stalls_total", "counter",
                   "Probes the loop ran more than 5 ms late.", d->lag->over_5ms);
        histogram(res, "sparkscale_loop_lag_probe_seconds",
                  "How late each 50 ms probe ran, by lateness.", &d->lag->probes);
        histogram(res, "sparkscale_loop_turn_cpu_seconds",
                  "CPU time of the loop thread per loop turn (time waiting for a CPU excluded).",
                  &d->lag->turns);
        metric_head(res, "sparkscale_loop_turn_cpu_max_seconds", "gauge",
                    "Largest CPU time of one loop turn since start.");
        P("sparkscale_loop_turn_cpu_max_seconds %.6f\n", d->lag->turn_max_us / 1e6);
        metric_u64(res, "sparkscale_loop_turns_over_5ms_total", "counter",
                   "Loop turns that took more than 5 ms of CPU.", d->lag->turns_over_5ms);
        metric_u64(res, "sparkscale_heap_trims_total", "counter",
                   "Times freed heap (expired apps, the configuration's parse) was returned to the kernel.",
                   d->lag->heap_trims);
        metric_head(res, "sparkscale_heap_trim_seconds", "gauge", "Duration of the last heap trim.");
        P("sparkscale_heap_trim_seconds %.6f\n", d->lag->heap_trim_us / 1e6);
    }
    metric_head(res, "sparkscale_process_resident_bytes", "gauge", "Resident memory of sparkscaled (VmRSS).");
    P("sparkscale_process_resident_bytes %lld\n", (long long)rss_bytes());
    ss_bus_stats bs;
    ss_bus_get_stats(d->bus, &bs);
    bus_metrics(res, &bs);
    if (one)
        one_cluster_metrics(res, d, c);
    else
        cluster_metrics(res, d);
}

void ss_status_handle(void *ctx, const ss_http_request *req, ss_http_response *res)
{
    const ss_status *d = ctx;
    if (strcmp(req->path, "/") == 0) {
        ss_http_response_status(res, 200, "text/html; charset=utf-8");
        ss_http_response_append(res, (const char *)ss_dashboard_html, ss_dashboard_html_len);
    } else if (strcmp(req->path, "/healthz") == 0) {
        ss_http_response_status(res, 200, "text/plain");
        ss_http_response_printf(res, "ok\n");
    } else if (strcmp(req->path, "/metrics") == 0) {
        metrics_handler(d, req, res);
    } else if (strcmp(req->path, "/v1/clusters") == 0) {
        clusters_handler(d, req, res);
    } else if (strcmp(req->path, "/v1/kafka") == 0) {
        kafka_handler(d, res);
    } else if (strcmp(req->path, "/v1/decisions") == 0) {
        decisions_handler(d, req, res);
    } else {
        ss_http_response_status(res, 404, "text/plain");
        ss_http_response_printf(res, "not found: try / /healthz /metrics /v1/clusters /v1/decisions /v1/kafka\n");
    }
}
