/* test_daemon.c: the whole sparkscaled pipeline on real sockets: carbon
 * lines in, decisions out on the embedded Kafka (read back with a plain
 * consumer and decoded), app expiry, stale feeds, pools, the status API. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "lib/bus/producer.h"
#include "lib/bus/reader.h"

#define EAM ".driver.ExecutorAllocationManager.executors."

static const char *yaml =
    "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"127.0.0.1:0\", http: \"127.0.0.1:0\" }\n"
    "kafka: { brokers: embedded }\n"
    "policy:\n"
    "  evaluate_interval_ms: 100\n"
    "  scale_down_window_s: 0\n"
    "  tolerance_executors: 0\n"
    "  idle_workers: 1\n"
    "  min_workers: 1\n"
    "pools:\n"
    "  - { name: shared, max_workers: 6 }\n"
    "clusters:\n"
    "  - name: alpha\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy: { app_expiry_s: 2, stale_after_s: 60 }\n"
    "  - name: stale\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy: { stale_after_s: 1, app_expiry_s: 600 }\n"
    "  - name: p1\n"
    "    worker: { cores: 2, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy: { pool: shared, idle_workers: 0, app_min_executors: 2, max_workers: 10 }\n"
    "  - name: p2\n"
    "    worker: { cores: 2, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy: { pool: shared, idle_workers: 0, app_min_executors: 5, max_workers: 10 }\n"
    "  - name: wk\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n";

static int setup(void **state) { return harness_setup_group(state, yaml); }
static int teardown(void **state) { return harness_teardown_group(state); }

static int send_target(harness *h, const char *cluster, const char *app, int target)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s.%s" EAM "numberTargetExecutors %d %lld\n", cluster,
                     app, target, (long long)time(NULL));
    return tcp_send(h, line, (size_t)n);
}

/* Integer field of the cluster's /v1/clusters entry: obj.key ("workers.desired"). */
static long long cluster_field(harness *h, const char *cluster, const char *obj, const char *key)
{
    json_t *root = get_json(h, "/v1/clusters");
    json_t *cl = root ? find_cluster(root, cluster) : NULL;
    json_t *v = cl ? json_object_get(json_object_get(cl, obj), key) : NULL;
    long long r = json_is_integer(v) ? json_integer_value(v) : -1000;
    json_decref(root);
    return r;
}

static long long wait_field(harness *h, const char *cluster, const char *obj, const char *key,
                            long long want, int timeout_ms)
{
    long long v = -1000;
    for (int t = 0; t <= timeout_ms; t += 20) {
        v = cluster_field(h, cluster, obj, key);
        if (v == want)
            break;
        usleep(20000);
    }
    return v;
}

/* Reads every decision of the topic; returns how many, fills the newest of
 * cluster into *out (its arrays released) and checks per-cluster order. */
static int read_decisions(harness *h, const char *cluster, ss_decision *newest, int *in_order)
{
    const char *topics[] = { "sparkscale.decisions" };
    ss_bus_reader *r;
    char err[512];
    assert_int_equal(ss_bus_reader_open(h->bootstrap, topics, 1, 1, NULL, 0, 10000, &r, err, sizeof err), 0);
    int n = 0;
    uint64_t last_seq = 0;
    *in_order = 1;
    for (;;) {
        ss_bus_record rec;
        int rc = ss_bus_reader_next(r, 5000, &rec, err, sizeof err);
        if (rc != 1)
            break;
        ss_decision d;
        assert_int_equal(ss_decision_decode(rec.payload, rec.len, &d), 0);
        /* The key is the cluster: per-cluster order on one partition. */
        assert_int_equal(rec.key_len, strlen(d.cluster));
        assert_memory_equal(rec.key, d.cluster, rec.key_len);
        if (strcmp(d.cluster, cluster) == 0) {
            if (d.sequence <= last_seq)
                *in_order = 0;
            last_seq = d.sequence;
            ss_decision_release(newest);
            *newest = d;
            n++;
        } else {
            ss_decision_release(&d);
        }
    }
    ss_bus_reader_close(r);
    return n;
}

static void test_line_to_decision_in_kafka(void **state)
{
    harness *h = *state;
    assert_int_equal(send_target(h, "alpha", "app-20261121093000-0001", 14), 0);
    /* 14 executors / 2 per worker = 7, +1 idle = 8. */
    assert_int_equal(wait_field(h, "alpha", "workers", "desired", 8, 5000), 8);
    assert_int_equal(wait_field(h, "alpha", "decision", "desired", 8, 5000), 8);
    json_t *root = NULL, *dec = NULL;
    for (int t = 0; t < 250; t++) {          /* acks=all takes a moment */
        json_decref(root);
        root = get_json(h, "/v1/clusters");
        dec = json_object_get(find_cluster(root, "alpha"), "decision");
        if (strcmp(json_string_value(json_object_get(dec, "delivery")), "acked") == 0)
            break;
        usleep(20000);
    }
    assert_string_equal(json_string_value(json_object_get(dec, "delivery")), "acked");
    assert_true(json_integer_value(json_object_get(dec, "epoch")) > 0);
    assert_true(json_integer_value(json_object_get(dec, "sequence")) >= 1);
    assert_non_null(strstr(json_string_value(json_object_get(dec, "reason")),
                           "app-20261121093000-0001 wants 14 executors"));
    json_decref(root);

    assert_int_equal(send_target(h, "alpha", "app-20261121093000-0001", 20), 0);
    assert_int_equal(wait_field(h, "alpha", "decision", "desired", 11, 5000), 11);

    ss_decision d = { 0 };
    int in_order;
    int n = read_decisions(h, "alpha", &d, &in_order);
    assert_true(n >= 2);
    assert_true(in_order);
    assert_int_equal(d.desired_workers, 11);
    assert_int_equal(d.executors_per_worker, 2);
    assert_int_equal((int)d.napps, 1);
    assert_string_equal(d.apps[0].app_id, "app-20261121093000-0001");
    assert_int_equal(d.apps[0].target_executors, 20);
    assert_true(d.expires_at_ms > d.decided_at_ms);
    assert_non_null(strstr(d.reason, "wants 20 executors"));
    ss_decision_release(&d);

    assert_true(get_metric(h, "sparkscale_decisions_delivered_total") >= 2);
}

/* An app that stops reporting leaves the demand after app_expiry_s. */
static void test_app_expiry_shrinks(void **state)
{
    harness *h = *state;
    char lines[512];
    int n = snprintf(lines, sizeof lines,
        "alpha.app-20261121093000-0001" EAM "numberTargetExecutors 20 %lld\n"
        "alpha.app-20261121093000-0002" EAM "numberTargetExecutors 8 %lld\n",
        (long long)time(NULL), (long long)time(NULL));
    assert_int_equal(tcp_send(h, lines, (size_t)n), 0);
    long long with_both = wait_field(h, "alpha", "workers", "needed", 14, 5000);
    assert_int_equal(with_both, 14);          /* (20 + 8) / 2 */
    /* Keep app 1 alive; app 2 goes silent and expires after 2 s. */
    for (int i = 0; i < 40 && cluster_field(h, "alpha", "workers", "needed") != 10; i++) {
        send_target(h, "alpha", "app-20261121093000-0001", 20);
        usleep(100000);
    }
    assert_int_equal(cluster_field(h, "alpha", "workers", "needed"), 10);
    assert_int_equal(wait_field(h, "alpha", "decision", "desired", 11, 5000), 11);
    json_t *root = get_json(h, "/v1/clusters");
    assert_null(find_app(root, "alpha", "app-20261121093000-0002"));
    json_decref(root);
}

/* A feed that goes stale holds the size: it never shrinks for lack of data. */
static void test_stale_feed_holds(void **state)
{
    harness *h = *state;
    char lines[512];
    int n = snprintf(lines, sizeof lines,
        "stale.master.aliveWorkers 6 %lld\nstale.app-20261121093000-0009" EAM
        "numberTargetExecutors 10 %lld\n", (long long)time(NULL), (long long)time(NULL));
    assert_int_equal(tcp_send(h, lines, (size_t)n), 0);
    assert_int_equal(wait_field(h, "stale", "workers", "desired", 6, 5000), 6);
    /* Silence: after stale_after_s (1 s) the size is held at 6. */
    json_t *root = NULL, *cl = NULL;
    for (int t = 0; t < 250; t++) {
        json_decref(root);
        root = get_json(h, "/v1/clusters");
        cl = find_cluster(root, "stale");
        const char *code = json_string_value(
            json_object_get(json_object_get(cl, "recommendation"), "code"));
        if (json_is_true(json_object_get(cl, "stale")) && code && strcmp(code, "hold_stale") == 0)
            break;
        usleep(20000);
    }
    assert_true(json_is_true(json_object_get(cl, "stale")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(cl, "workers"), "desired")), 6);
    assert_string_equal(json_string_value(json_object_get(json_object_get(cl, "recommendation"), "code")),
                        "hold_stale");
    json_decref(root);
}

/* Two clusters share a pool of 6 workers: FIFO by app start, gang-style. */
static void test_pool_fifo_gang(void **state)
{
    harness *h = *state;
    /* E = 1. p1's app started first: gang 2 of its 4 executors. p2's younger
     * app wants 5 with a gang of 5: 2 + 5 > 6, so p2's app waits whole
     * (nothing partial) and p1 gets the rest of its demand. */
    assert_int_equal(send_target(h, "p1", "app-20261121090000-0001", 4), 0);
    assert_int_equal(send_target(h, "p2", "app-20261121100000-0002", 5), 0);
    assert_int_equal(wait_field(h, "p1", "decision", "desired", 4, 5000), 4);
    assert_int_equal(wait_field(h, "p2", "recommendation", "pool_granted", 1, 5000), 1);
    assert_int_equal(wait_field(h, "p2", "decision", "desired", 1, 5000), 1);
    json_t *root = get_json(h, "/v1/clusters");
    json_t *rec = json_object_get(find_cluster(root, "p2"), "recommendation");
    const char *note = json_string_value(json_object_get(rec, "pool_note"));
    assert_non_null(note);
    assert_non_null(strstr(note, "app-20261121100000-0002"));
    json_decref(root);
}

/* Every decision of p1 and p2 in Kafka, in their pass order (decided_at_ms):
 * after each pass, the newest desired sizes of the two together fit the
 * pool's 6 workers. A decision that went out before its pool was granted
 * (say, on the turn that read the change, repaired by the timer ~100 ms
 * later) fails this. */
static void test_pool_budget_holds_in_kafka(void **state)
{
    harness *h = *state;
    static const int steps[][2] = { { 4, 5 }, { 1, 5 }, { 6, 5 }, { 2, 3 }, { 6, 6 }, { 0, 6 } };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(send_target(h, "p1", "app-20261121090000-0001", steps[i][0]), 0);
        assert_int_equal(send_target(h, "p2", "app-20261121100000-0002", steps[i][1]), 0);
        usleep(30000);   /* a few loop turns, not a whole timer pass apart */
    }
    for (int i = 0; i < 250 && get_metric(h, "sparkscale_decisions_pending") != 0; i++)
        usleep(20000);   /* every decision acknowledged before reading them back */
    assert_true(get_metric(h, "sparkscale_decisions_pending") == 0);

    const char *topics[] = { "sparkscale.decisions" };
    ss_bus_reader *r;
    char err[512];
    assert_int_equal(ss_bus_reader_open(h->bootstrap, topics, 1, 1, NULL, 0, 10000, &r, err,
                                        sizeof err), 0);
    int64_t at[256];
    int which[256], desired[256], n = 0;
    for (;;) {
        ss_bus_record rec;
        if (ss_bus_reader_next(r, 5000, &rec, err, sizeof err) != 1)
            break;
        ss_decision d;
        assert_int_equal(ss_decision_decode(rec.payload, rec.len, &d), 0);
        int w = strcmp(d.cluster, "p1") == 0 ? 0 : strcmp(d.cluster, "p2") == 0 ? 1 : -1;
        if (w >= 0) {
            assert_true(n < 256);
            at[n] = d.decided_at_ms;
            which[n] = w;
            desired[n] = d.desired_workers;
            n++;
        }
        ss_decision_release(&d);
    }
    ss_bus_reader_close(r);
    assert_true(n >= 4);
    /* Walk the passes in time order; records of one pass share decided_at_ms. */
    int cur[2] = { 0, 0 };
    int64_t t = INT64_MIN;
    for (;;) {
        int64_t next = INT64_MAX;
        for (int i = 0; i < n; i++)
            if (at[i] > t && at[i] < next)
                next = at[i];
        if (next == INT64_MAX)
            break;
        for (int i = 0; i < n; i++)
            if (at[i] == next)
                cur[which[i]] = desired[i];
        if (cur[0] + cur[1] > 6)
            fail_msg("at %lld: p1 %d + p2 %d exceed the pool's 6 workers", (long long)next,
                     cur[0], cur[1]);
        t = next;
    }
}

/* Scale-in names the idle workers (coresUsed 0, by sender address) and
 * never a busy one; the decision never goes below the busy count. */
static void test_scale_in_names_idle_workers_only(void **state)
{
    harness *h = *state;
    long long ts = (long long)time(NULL);
    char line[256];
    int n;
    /* First the master and a demand of 6 executors: 3 + 1 idle = 4 workers. */
    n = snprintf(line, sizeof line, "wk.master.aliveWorkers 3 %lld\n"
                 "wk.app-20261121093000-0005" EAM "numberTargetExecutors 6 %lld\n", ts, ts);
    assert_int_equal(tcp_send(h, line, (size_t)n), 0);
    assert_int_equal(wait_field(h, "wk", "decision", "desired", 4, 5000), 4);
    const char *srcs[] = { "127.0.0.2", "127.0.0.3", "127.0.0.4" };
    const int used[] = { 2, 0, 0 };
    for (int i = 0; i < 3; i++) {
        n = snprintf(line, sizeof line, "wk.worker.coresUsed %d %lld\nwk.worker.coresFree %d %lld\n",
                     used[i], ts, 4 - used[i], ts);
        assert_int_equal(tcp_send_from(h, srcs[i], line, (size_t)n), 0);
    }
    assert_int_equal(wait_field(h, "wk", "workers", "busy", 1, 5000), 1);
    /* Demand drops to 2 executors. */
    n = snprintf(line, sizeof line,
                 "wk.app-20261121093000-0005" EAM "numberTargetExecutors 2 %lld\n", ts + 1);
    assert_int_equal(tcp_send(h, line, (size_t)n), 0);
    /* N = 1, A = 1 busy, I = 1 -> 2 of the 3 alive workers. */
    assert_int_equal(wait_field(h, "wk", "decision", "desired", 2, 5000), 2);
    assert_int_equal(cluster_field(h, "wk", "workers", "busy"), 1);

    ss_decision d = { 0 };
    int in_order;
    assert_true(read_decisions(h, "wk", &d, &in_order) >= 1);
    assert_int_equal(d.desired_workers, 2);
    assert_int_equal(d.current_workers, 3);
    assert_int_equal(d.busy_workers, 1);
    assert_int_equal((int)d.nremovable_workers, 2);
    for (size_t i = 0; i < d.nremovable_workers; i++) {
        assert_string_not_equal(d.removable_workers[i].host, "127.0.0.2");
        assert_true(strcmp(d.removable_workers[i].host, "127.0.0.3") == 0 ||
                    strcmp(d.removable_workers[i].host, "127.0.0.4") == 0);
    }
    ss_decision_release(&d);
}

static void test_status_endpoints(void **state)
{
    harness *h = *state;
    json_t *k = get_json(h, "/v1/kafka");
    assert_non_null(k);
    assert_string_equal(json_string_value(json_object_get(k, "brokers")), h->bootstrap);
    json_decref(k);
    int status;
    char *body = http_get(h, "/healthz", &status);
    assert_int_equal(status, 200);
    free(body);
    body = http_get(h, "/nope", &status);
    assert_int_equal(status, 404);
    free(body);
    /* Pages of clusters: 5 configured. */
    json_t *page = get_json(h, "/v1/clusters?limit=2");
    assert_int_equal(json_array_size(json_object_get(page, "clusters")), 2);
    assert_int_equal(json_integer_value(json_object_get(page, "total")), 5);
    assert_int_equal(json_integer_value(json_object_get(page, "next_offset")), 2);
    json_decref(page);
    page = get_json(h, "/v1/clusters?offset=4&limit=2");
    assert_int_equal(json_array_size(json_object_get(page, "clusters")), 1);
    assert_null(json_object_get(page, "next_offset"));
    json_decref(page);
    page = get_json(h, "/v1/clusters?name=wk");
    assert_int_equal(json_array_size(json_object_get(page, "clusters")), 1);
    assert_non_null(find_cluster(page, "wk"));
    json_decref(page);
    body = http_get(h, "/v1/clusters?name=nope", &status);
    assert_int_equal(status, 404);
    free(body);
    body = http_get(h, "/v1/clusters?limit=0", &status);
    assert_int_equal(status, 400);
    free(body);
    /* the default page holds all five, streamed in parts */
    page = get_json(h, "/v1/clusters");
    assert_non_null(page);
    assert_int_equal(json_array_size(json_object_get(page, "clusters")), 5);
    assert_null(json_object_get(page, "next_offset"));
    json_decref(page);
    body = http_get(h, "/metrics", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "sparkscale_cluster_workers{cluster=\"alpha\",kind=\"desired\"}"));
    assert_non_null(strstr(body, "sparkscale_reaction_seconds_bucket"));
    assert_non_null(strstr(body, "# TYPE sparkscale_cluster_last_seen_timestamp_seconds gauge"));
    free(body);
    /* the daemon's series and one cluster's */
    body = http_get(h, "/metrics?cluster=alpha", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "sparkscale_cluster_workers{cluster=\"alpha\",kind=\"desired\"}"));
    assert_null(strstr(body, "cluster=\"wk\""));
    assert_non_null(strstr(body, "sparkscale_reaction_seconds_bucket"));
    assert_non_null(strstr(body, "sparkscale_policy_pass_duration_seconds_count"));
    free(body);
    /* the daemon's alone */
    body = http_get(h, "/metrics?cluster=", &status);
    assert_int_equal(status, 200);
    assert_null(strstr(body, "sparkscale_cluster_workers{"));
    assert_non_null(strstr(body, "sparkscale_loop_lag_probe_seconds_count"));
    free(body);
    body = http_get(h, "/metrics?cluster=nope", &status);
    assert_int_equal(status, 404);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_to_decision_in_kafka),
        cmocka_unit_test(test_app_expiry_shrinks),
        cmocka_unit_test(test_stale_feed_holds),
        cmocka_unit_test(test_pool_fifo_gang),
        cmocka_unit_test(test_pool_budget_holds_in_kafka),
        cmocka_unit_test(test_scale_in_names_idle_workers_only),
        cmocka_unit_test(test_status_endpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
