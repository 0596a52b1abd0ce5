/* test_status_api.c: what the dashboard reads from a real sparkscaled:
 * /v1/clusters?history=1 (ring samples of app and master gauges, the
 * cluster's recent decisions with reasons), /v1/decisions across clusters,
 * the bus counters of /v1/kafka; heartbeats stay out of the history; and
 * the page itself at /. (The page in a browser: tests/dashboard/.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#define EAM ".driver.ExecutorAllocationManager.executors."

static const char *yaml =
    "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\" }\n"
    "kafka: { brokers: embedded, heartbeat_s: 1 }\n"
    "policy: { evaluate_interval_ms: 100, scale_down_window_s: 0, tolerance_executors: 0,\n"
    "          idle_workers: 1, stale_after_s: 600, app_expiry_s: 600 }\n"
    "clusters:\n"
    "  - name: alpha\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "  - name: mx\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy: { demand: max_needed }\n"
    "  - name: quiet\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n";

static int setup(void **state) { return harness_setup_group(state, yaml); }
static int teardown(void **state) { return harness_teardown_group(state); }

static json_t *cluster_of(json_t *root, const char *name)
{
    json_t *c = root ? find_cluster(root, name) : NULL;
    assert_non_null(c);
    return c;
}

static long long int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* Waits until cluster name's newest published decision has sequence >= seq. */
static json_t *wait_sequence(harness *h, const char *name, long long seq)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/clusters?history=1&name=%s", name);
    for (int t = 0; t < 10000; t += 20) {
        json_t *root = get_json(h, path);
        json_t *d = root ? json_object_get(cluster_of(root, name), "decision") : NULL;
        if (json_is_object(d) && int_at(d, "sequence") >= seq)
            return root;
        json_decref(root);
        usleep(20000);
    }
    fail_msg("cluster %s: no decision #%lld", name, seq);
    return NULL;
}

/* Five reports a second apart (stamped in the past, oldest first): alpha's
 * app asks for 2, 4, 6, 4, 2 executors while the master reports 1..5 alive
 * workers. The ring holds all five; each change is a decision. */
static void test_history_rings_and_decisions(void **state)
{
    harness *h = *state;
    long long now = (long long)time(NULL);
    const int target[5] = { 2, 4, 6, 4, 2 };
    for (int i = 0; i < 5; i++) {
        char lines[512];
        long long ts = now - 10 + i;
        int n = snprintf(lines, sizeof lines,
                         "alpha.app-20261121093000-0001" EAM "numberTargetExecutors %d %lld\n"
                         "alpha.master.aliveWorkers %d %lld\n", target[i], ts, i + 1, ts);
        assert_int_equal(tcp_send(h, lines, (size_t)n), 0);
        usleep(50000);
    }
    json_t *root = NULL;
    for (int t = 0; t < 10000; t += 20) {
        root = get_json(h, "/v1/clusters?history=1&name=alpha");
        json_t *app = root ? find_app(root, "alpha", "app-20261121093000-0001") : NULL;
        json_t *hist = json_object_get(json_object_get(json_object_get(app, "gauges"),
                                                       "numberTargetExecutors"), "history");
        if (json_array_size(hist) == 5)
            break;
        json_decref(root);
        root = NULL;
        usleep(20000);
    }
    assert_non_null(root);
    json_t *c = cluster_of(root, "alpha");
    json_t *app = find_app(root, "alpha", "app-20261121093000-0001");
    json_t *hist = json_object_get(json_object_get(json_object_get(app, "gauges"),
                                                   "numberTargetExecutors"), "history");
    json_t *alive = json_object_get(json_object_get(json_object_get(json_object_get(c, "master"),
                                                                    "gauges"), "aliveWorkers"),
                                    "history");
    assert_int_equal(json_array_size(alive), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *p = json_array_get(hist, i);
        assert_int_equal(json_integer_value(json_array_get(p, 0)), (now - 10 + (long long)i) * 1000);
        assert_int_equal(json_integer_value(json_array_get(p, 1)), target[i]);
        p = json_array_get(alive, i);
        assert_int_equal(json_integer_value(json_array_get(p, 0)), (now - 10 + (long long)i) * 1000);
        assert_int_equal(json_integer_value(json_array_get(p, 1)), (long long)i + 1);
    }
    json_t *rec = json_object_get(c, "recommendation");
    assert_string_equal(json_string_value(json_object_get(rec, "demand")), "ramp");

    /* The decisions: newest first, the newest is the published one, each
     * with its numbers and reason. */
    json_t *decs = json_object_get(c, "decisions");
    json_t *pub = json_object_get(c, "decision");
    assert_true(json_array_size(decs) >= 2);
    assert_int_equal(int_at(json_array_get(decs, 0), "sequence"), int_at(pub, "sequence"));
    assert_int_equal(int_at(json_array_get(decs, 0), "desired"), int_at(pub, "desired"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(decs, 0), "reason")),
                        json_string_value(json_object_get(pub, "reason")));
    long long prev_seq = 1LL << 62, prev_at = 1LL << 62;
    json_t *d;
    size_t i;
    json_array_foreach(decs, i, d) {
        assert_true(int_at(d, "sequence") < prev_seq);
        assert_true(int_at(d, "decided_at_ms") <= prev_at);
        prev_seq = int_at(d, "sequence");
        prev_at = int_at(d, "decided_at_ms");
        assert_int_equal(int_at(d, "executors_per_worker"), 2);
        assert_true(json_is_string(json_object_get(d, "reason")));
        assert_true(json_is_string(json_object_get(d, "code")));
        assert_true(int_at(d, "demand_executors") >= 0);
    }
    /* The oldest recorded decision followed the first report: 2 executors. */
    assert_int_equal(int_at(json_array_get(decs, json_array_size(decs) - 1), "demand_executors"), 2);
    json_decref(root);

    /* Without history=1: no samples, no decision list (pages stay small). */
    root = get_json(h, "/v1/clusters?name=alpha");
    c = cluster_of(root, "alpha");
    assert_null(json_object_get(c, "decisions"));
    app = find_app(root, "alpha", "app-20261121093000-0001");
    assert_null(json_object_get(json_object_get(json_object_get(app, "gauges"),
                                                "numberTargetExecutors"), "history"));
    json_decref(root);

    /* A page with history=1 carries them for every cluster; one that never
     * decided has an empty list. */
    root = get_json(h, "/v1/clusters?history=1&offset=0&limit=3");
    assert_non_null(root);
    assert_true(json_array_size(json_object_get(cluster_of(root, "alpha"), "decisions")) >= 2);
    assert_int_equal(json_array_size(json_object_get(cluster_of(root, "quiet"), "decisions")), 0);
    json_decref(root);
}

/* Heartbeats (heartbeat_s: 1 here) republish the unchanged decision: they
 * are published with new sequences but not recorded. */
static void test_heartbeats_not_recorded(void **state)
{
    harness *h = *state;
    json_t *root = get_json(h, "/v1/clusters?history=1&name=alpha");
    json_t *c = cluster_of(root, "alpha");
    long long newest = int_at(json_array_get(json_object_get(c, "decisions"), 0), "sequence");
    size_t n = json_array_size(json_object_get(c, "decisions"));
    json_decref(root);

    root = wait_sequence(h, "alpha", newest + 2);
    c = cluster_of(root, "alpha");
    assert_int_equal(int_at(json_array_get(json_object_get(c, "decisions"), 0), "sequence"), newest);
    assert_int_equal(json_array_size(json_object_get(c, "decisions")), n);
    json_decref(root);

    root = get_json(h, "/v1/decisions?limit=256");
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(root, "decisions"), i, d)
        if (strcmp(json_string_value(json_object_get(d, "cluster")), "alpha") == 0)
            assert_true(int_at(d, "sequence") <= newest);
    json_decref(root);
}

static void test_recent_decisions_across_clusters(void **state)
{
    harness *h = *state;
    char line[256];
    int n = snprintf(line, sizeof line,
                     "mx.app-20261121093000-0002" EAM "numberTargetExecutors 1 %lld\n"
                     "mx.app-20261121093000-0002" EAM "numberMaxNeededExecutors 9 %lld\n",
                     (long long)time(NULL), (long long)time(NULL));
    assert_int_equal(tcp_send(h, line, (size_t)n), 0);
    json_t *root = wait_sequence(h, "mx", 1);
    json_t *c = cluster_of(root, "mx");
    /* max_needed: 9 executors = 5 workers (E = 2) + 1 idle. */
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "recommendation"),
                                                          "demand")), "max_needed");
    assert_int_equal(int_at(json_array_get(json_object_get(c, "decisions"), 0), "demand_executors"), 9);
    json_decref(root);

    root = get_json(h, "/v1/decisions?limit=2");
    assert_non_null(root);
    json_t *decs = json_object_get(root, "decisions");
    assert_int_equal(json_array_size(decs), 2);
    json_t *first = json_array_get(decs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "cluster")), "mx");
    assert_int_equal(int_at(first, "desired"), 6);
    assert_non_null(strstr(json_string_value(json_object_get(first, "reason")), "9 executors"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(decs, 1), "cluster")), "alpha");
    assert_true(int_at(first, "decided_at_ms") >= int_at(json_array_get(decs, 1), "decided_at_ms"));
    json_decref(root);

    root = get_json(h, "/v1/decisions");
    assert_true(json_array_size(json_object_get(root, "decisions")) >= 3);
    json_decref(root);

    int status;
    const char *bad[] = { "/v1/decisions?limit=0", "/v1/decisions?limit=257", "/v1/decisions?limit=x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *body = http_get(h, bad[i], &status);
        assert_int_equal(status, 400);
        free(body);
    }
}

static void test_kafka_counters(void **state)
{
    harness *h = *state;
    json_t *st = NULL, *root = NULL;
    for (int t = 0; t < 10000; t += 20) {
        root = get_json(h, "/v1/kafka");
        st = json_object_get(root, "stats");
        if (st && int_at(st, "delivered") >= 1 && int_at(st, "brokers_up") >= 1)
            break;
        json_decref(root);
        root = NULL;
        usleep(20000);
    }
    assert_non_null(root);
    assert_true(int_at(st, "published") >= int_at(st, "delivered"));
    const char *keys[] = { "failed", "superseded", "dropped", "retried", "pending", "held" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_true(int_at(st, keys[i]) >= 0);
    assert_true(json_is_string(json_object_get(st, "last_error")));
    assert_true(json_is_number(json_object_get(st, "delivery_last_ms")));
    assert_string_equal(json_string_value(json_object_get(root, "brokers")), h->bootstrap);
    json_decref(root);
    /* The history's memory is in /metrics: records and texts were kept. */
    assert_true(get_metric(h, "sparkscale_decision_log_bytes") > 3 * sizeof(void *) + 64);
}

/* Raw reply (head and body) to one request line. */
static char *raw_request(harness *h, const char *method, const char *path, size_t *len)
{
    int fd = h_connect(SOCK_STREAM, h->http_port);
    assert_true(fd >= 0);
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     method, path);
    assert_int_equal(h_write_all(fd, req, (size_t)n), 0);
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (used + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + used, cap - used - 1);
        if (r <= 0)
            break;
        used += (size_t)r;
    }
    close(fd);
    buf[used] = '\0';
    *len = used;
    return buf;
}

/* GET / is the page of ingest/dashboard.html, byte for byte, as HTML; HEAD
 * gives its length and no body. */
static void test_root_serves_the_dashboard(void **state)
{
    harness *h = *state;
    char path[1024];
    snprintf(path, sizeof path, "%s/ingest/dashboard.html", getenv("SS_SOURCE_DIR"));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char page[1 << 20];
    size_t plen = fread(page, 1, sizeof page, f);
    fclose(f);
    assert_true(plen > 1000 && plen < sizeof page);

    size_t len;
    char *reply = raw_request(h, "GET", "/", &len);
    char *body = strstr(reply, "\r\n\r\n");
    assert_non_null(body);
    *body = '\0';
    body += 4;
    assert_non_null(strstr(reply, "HTTP/1.1 200"));
    assert_non_null(strstr(reply, "Content-Type: text/html; charset=utf-8"));
    char want[64];
    snprintf(want, sizeof want, "Content-Length: %zu", plen);
    assert_non_null(strstr(reply, want));
    assert_int_equal(len - (size_t)(body - reply), plen);
    assert_memory_equal(body, page, plen);
    free(reply);

    reply = raw_request(h, "HEAD", "/", &len);
    assert_non_null(strstr(reply, want));
    assert_int_equal(len, (size_t)(strstr(reply, "\r\n\r\n") - reply) + 4);
    free(reply);

    int status;
    char *other = http_get(h, "/index.html", &status);
    assert_int_equal(status, 404);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_rings_and_decisions),
        cmocka_unit_test(test_heartbeats_not_recorded),
        cmocka_unit_test(test_recent_decisions_across_clusters),
        cmocka_unit_test(test_kafka_counters),
        cmocka_unit_test(test_root_serves_the_dashboard),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
