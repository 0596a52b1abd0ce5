/* status.c: the actuator's status API: /healthz, /metrics (Prometheus text
 * format 0.0.4), /v1/clusters (JSON). Read-only over the daemon's state. */
#include "actuator/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/base/clock.h"

#define PAGE_MAX 1000

#define P(...) ss_http_response_printf(res, __VA_ARGS__)

static void head(ss_http_response *res, const char *name, const char *type, const char *help)
{
    P("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(ss_http_response *res, const char *name, const char *help, uint64_t v)
{
    head(res, name, "counter", help);
    P("%s %llu\n", name, (unsigned long long)v);
}

static void gauge(ss_http_response *res, const char *name, const char *help, long long v)
{
    head(res, name, "gauge", help);
    P("%s %lld\n", name, v);
}

static void histogram(ss_http_response *res, const char *name, const char *help, const ss_hist *l)
{
    head(res, name, "histogram", help);
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

static void lower(const char *in, char *out, size_t len)
{
    size_t i = 0;
    for (; in[i] && i + 1 < len; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    out[i] = '\0';
}

static void metrics(const act_status *s, ss_http_response *res)
{
    ss_http_response_status(res, 200, "text/plain; version=0.0.4; charset=utf-8");
    const act_stats *st = s->stats;
    ss_bus_consumer_stats cs;
    memset(&cs, 0, sizeof cs);
    cs.lag = -1;
    if (s->consumer)
        ss_bus_consumer_get_stats(s->consumer, &cs);

    counter(res, "sparkscale_actuator_decisions_consumed_total",
            "Decision records received from Kafka (already audited ones included).", cs.consumed);
    counter(res, "sparkscale_actuator_decisions_recovered_total",
            "Decision records read again that already had an audit record (skipped).",
            cs.recovered_skipped);
    head(res, "sparkscale_actuator_decisions_total", "counter",
         "Decisions handled, by the outcome of their audit record.");
    for (int o = 1; o < SS_OUTCOME_COUNT; o++) {
        char name[32];
        lower(ss_outcome_name(o), name, sizeof name);
        P("sparkscale_actuator_decisions_total{outcome=\"%s\"} %llu\n", name,
          (unsigned long long)st->outcomes[o]);
    }
    head(res, "sparkscale_actuator_decisions_failed_total", "counter", "Failed decisions, by reason.");
    for (int f = 0; f < ACT_FAIL_COUNT; f++)
        P("sparkscale_actuator_decisions_failed_total{reason=\"%s\"} %llu\n", act_fail_name(f),
          (unsigned long long)st->failed[f]);
    counter(res, "sparkscale_actuator_decisions_abandoned_total",
            "Decisions left unhandled (shutdown or revocation before anything changed): read again "
            "by the partition's next owner.",
            st->abandoned);
    counter(res, "sparkscale_actuator_scale_in_preempted_total",
            "Scale-ins cut short because a newer decision wanted more workers.", st->preempted);
    counter(res, "sparkscale_actuator_workers_removed_total", "Workers removed on scale-in.",
            st->workers_removed);
    counter(res, "sparkscale_actuator_workers_kept_total",
            "Scale-in candidates kept (busy, shared host, not decommissioned in time, ...).",
            st->workers_kept);
    counter(res, "sparkscale_actuator_decommission_requests_total",
            "POST /workers/kill/ requests sent to Spark masters.", st->decommission_requests);
    gauge(res, "sparkscale_actuator_actions_in_flight", "Clusters with an action running.",
          (long long)st->actions_in_flight);
    gauge(res, "sparkscale_actuator_consumer_lag",
          "Decision records behind the end of the assigned partitions (-1 unknown).", (long long)cs.lag);
    gauge(res, "sparkscale_actuator_assigned_partitions", "Decision partitions this actuator owns.",
          cs.assigned_partitions);
    counter(res, "sparkscale_actuator_rebalances_total", "Partition assignments and revocations.",
            cs.rebalances);
    counter(res, "sparkscale_actuator_transactions_total", "Audit transactions committed.", cs.transactions);
    counter(res, "sparkscale_actuator_transactions_aborted_total",
            "Audit transactions aborted (their records checked and sent again).", cs.aborts);
    counter(res, "sparkscale_actuator_audit_records_committed_total", "Audit records committed.",
            cs.audits_committed);
    gauge(res, "sparkscale_actuator_audit_records_queued", "Audit records waiting for a transaction.",
          (long long)cs.queued_audits);
    gauge(res, "sparkscale_actuator_commits_in_flight", "1 while a transaction commits.",
          (long long)cs.in_flight_commits);
    gauge(res, "sparkscale_actuator_offsets_outside_transaction",
          "1 when the brokers ignore offsets sent in a transaction (librdkafka's mock cluster) and "
          "offsets are committed on their own too.",
          cs.offsets_outside_txn);
    histogram(res, "sparkscale_actuator_apply_seconds",
              "From a decision's Kafka timestamp to its action applied.", &st->apply_latency);
    histogram(res, "sparkscale_actuator_decision_to_call_seconds",
              "From a decision's Kafka timestamp to its backend resize call starting.",
              &st->to_call_latency);
    histogram(res, "sparkscale_actuator_backend_call_seconds", "One backend resize call.",
              &st->call_latency);
    histogram(res, "sparkscale_actuator_audit_commit_seconds",
              "From a decision's Kafka timestamp to its audit record committed.", &cs.audit_latency);
    histogram(res, "sparkscale_actuator_commit_seconds", "One transaction commit (offsets + commit).",
              &cs.commit_latency);
    if (s->http) {
        ss_http_client_stats hs;
        ss_http_client_stats_get(s->http, &hs);
        counter(res, "sparkscale_actuator_http_requests_total",
                "Backend and master HTTP requests started.", hs.started);
        counter(res, "sparkscale_actuator_http_retries_total", "HTTP attempts after the first.", hs.retries);
        counter(res, "sparkscale_actuator_http_connections_total", "New HTTP connections (reuse counts 0).",
                hs.connects);
    }
    head(res, "sparkscale_actuator_cluster_replicas", "gauge",
          "Replicas of each cluster before and after its last applied decision.");
    for (size_t i = 0; i < s->nclusters; i++) {
        act_cluster_view v;
        act_cluster_view_get(s->clusters[i], &v);
        if (!v.has_applied)
            continue;
        if (v.replicas_before >= 0)
            P("sparkscale_actuator_cluster_replicas{cluster=\"%s\",when=\"before\"} %d\n", v.name,
              v.replicas_before);
        if (v.replicas_after >= 0)
            P("sparkscale_actuator_cluster_replicas{cluster=\"%s\",when=\"after\"} %d\n", v.name,
              v.replicas_after);
    }
}

static json_t *int_or_null(long long v) { return v < 0 ? json_null() : json_integer(v); }

static json_t *cluster_json(const act_cluster *cl)
{
    act_cluster_view v;
    act_cluster_view_get(cl, &v);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(v.name));
    json_object_set_new(o, "backend", json_string(v.backend));
    json_object_set_new(o, "partition", int_or_null(v.partition));
    json_t *seen = json_null();
    if (v.has_seen) {
        seen = json_object();
        json_object_set_new(seen, "epoch", json_integer(v.seen_epoch));
        json_object_set_new(seen, "sequence", json_integer((json_int_t)v.seen_seq));
        json_object_set_new(seen, "desired", json_integer(v.seen_desired));
        json_object_set_new(seen, "decided_at_ms", json_integer(v.seen_at_ms));
    }
    json_object_set_new(o, "last_decision", seen);
    json_t *ap = json_null();
    if (v.has_applied) {
        ap = json_object();
        json_object_set_new(ap, "epoch", json_integer(v.applied_epoch));
        json_object_set_new(ap, "sequence", json_integer((json_int_t)v.applied_seq));
        json_object_set_new(ap, "desired", json_integer(v.applied_desired));
        json_object_set_new(ap, "replicas_before", int_or_null(v.replicas_before));
        json_object_set_new(ap, "replicas_after", int_or_null(v.replicas_after));
        json_object_set_new(ap, "at_ms", json_integer(v.applied_at_ms));
    }
    json_object_set_new(o, "last_applied", ap);
    json_t *last = json_null();
    if (v.has_last) {
        last = json_object();
        json_object_set_new(last, "sequence", json_integer((json_int_t)v.last_seq));
        json_object_set_new(last, "outcome", json_string(ss_outcome_name(v.last_outcome)));
        json_object_set_new(last, "note", json_string(v.last_note));
        json_object_set_new(last, "error", json_string(v.last_error));
    }
    json_object_set_new(o, "last_result", last);
    json_t *fl = json_null();
    if (v.in_flight) {
        fl = json_object();
        json_object_set_new(fl, "sequence", json_integer((json_int_t)v.flight_seq));
        json_object_set_new(fl, "desired", json_integer(v.flight_desired));
        json_object_set_new(fl, "stage", json_string(act_stage_name(v.stage)));
        json_object_set_new(fl, "stage_since_ms", json_integer(v.stage_since_ms));
        json_object_set_new(fl, "victims", json_integer((json_int_t)v.victims));
    }
    json_object_set_new(o, "in_flight", fl);
    json_object_set_new(o, "pending_sequence", v.has_pending ? json_integer((json_int_t)v.pending_seq)
                                                             : json_null());
    return o;
}

static int query_param(const char *query, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, "&");
            if (n >= len)
                n = len - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return 0;
        }
    }
    return -1;
}

static void send_json(ss_http_response *res, json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    ss_http_response_status(res, 200, "application/json");
    if (txt) {
        ss_http_response_append(res, txt, strlen(txt));
        ss_http_response_append(res, "\n", 1);
        free(txt);
    }
}

static void clusters(const act_status *s, const ss_http_request *req, ss_http_response *res)
{
    char buf[SS_NAME_MAX];
    size_t first = 0, count = s->nclusters;
    json_t *o = json_object();
    if (query_param(req->query, "name", buf, sizeof buf) == 0) {
        int c = s->cluster_index(s->ctx, buf);
        if (c < 0 || (size_t)c >= s->nclusters) {
            json_decref(o);
            ss_http_response_status(res, 404, "text/plain");
            ss_http_response_printf(res, "no cluster named '%s'\n", buf);
            return;
        }
        first = (size_t)c;
        count = 1;
    } else {
        long offset = 0, limit = PAGE_MAX;
        if (query_param(req->query, "offset", buf, sizeof buf) == 0)
            offset = strtol(buf, NULL, 10);
        if (query_param(req->query, "limit", buf, sizeof buf) == 0)
            limit = strtol(buf, NULL, 10);
        if (offset < 0 || limit < 1 || limit > PAGE_MAX) {
            json_decref(o);
            ss_http_response_status(res, 400, "text/plain");
            ss_http_response_printf(res, "offset must be >= 0 and limit 1..%d\n", PAGE_MAX);
            return;
        }
        first = (size_t)offset < s->nclusters ? (size_t)offset : s->nclusters;
        count = s->nclusters - first < (size_t)limit ? s->nclusters - first : (size_t)limit;
        json_object_set_new(o, "total", json_integer((json_int_t)s->nclusters));
        if (first + count < s->nclusters)
            json_object_set_new(o, "next_offset", json_integer((json_int_t)(first + count)));
    }
    json_t *list = json_array();
    for (size_t i = first; i < first + count; i++)
        json_array_append_new(list, cluster_json(s->clusters[i]));
    json_object_set_new(o, "actuator", json_string(s->id));
    json_object_set_new(o, "state", json_string(s->state));
    json_object_set_new(o, "generated_at_ms", json_integer(ss_wall_ms()));
    json_object_set_new(o, "clusters", list);
    send_json(res, o);
}

static void kafka(const act_status *s, ss_http_response *res)
{
    json_t *o = json_object();
    json_object_set_new(o, "brokers", json_string(s->bootstrap));
    json_object_set_new(o, "group", json_string(s->cfg->actuator.group));
    json_object_set_new(o, "actuator", json_string(s->id));
    json_object_set_new(o, "decisions_topic", json_string(s->cfg->kafka.decisions_topic));
    json_object_set_new(o, "audit_topic", json_string(s->cfg->kafka.audit_topic));
    send_json(res, o);
}

void act_status_handle(void *ctx, const ss_http_request *req, ss_http_response *res)
{
    const act_status *s = ctx;
    if (strcmp(req->path, "/healthz") == 0) {
        int ok = strcmp(s->state, "failed") != 0;
        ss_http_response_status(res, ok ? 200 : 503, "text/plain");
        ss_http_response_printf(res, "%s\n", ok ? "ok" : "failed");
    } else if (strcmp(req->path, "/metrics") == 0) {
        metrics(s, res);
    } else if (strcmp(req->path, "/v1/clusters") == 0) {
        clusters(s, req, res);
    } else if (strcmp(req->path, "/v1/kafka") == 0) {
        kafka(s, res);
    } else {
        ss_http_response_status(res, 404, "text/plain");
        ss_http_response_printf(res, "not found: try /healthz /metrics /v1/clusters /v1/kafka\n");
    }
}
