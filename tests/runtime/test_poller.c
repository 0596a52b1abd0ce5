/* test_poller.c: a real sparkscaled polling local HTTP servers that answer
 * with the recorded Spark master and Jolokia bodies (tests/fixtures/), and
 * misbehave: a STANDBY master before the ALIVE one, slow and never
 * answering endpoints, 503, a cut reply, truncated and huge JSON, refused
 * connections, an unknown host, Jolokia reads failing inside an HTTP 200.
 * Asserts /v1/clusters, /metrics, the decisions in Kafka (busy count and
 * removable workers from the master, with real ids and ports), backoff and
 * its recovery, staleness, one log line per change of state, and that the
 * same demand via Jolokia and via carbon yields the same decision. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "fixture_http.h"
#include "lib/bus/reader.h"
#include "tests/unit/fixture.h"

#define EAM ".driver.ExecutorAllocationManager.executors."
#define APP "app-20261201143622-0000"
#define IDLE_ID "worker-20261201143615-127.0.0.2-46423"

typedef struct fx {
    harness h;
    fxs alive, standby, jolo, faults, auth;
    int refused_port;
    char log_path[256];
    int saved_stderr;
} fx;

static fx *G;

/* A recorded answer. Jolokia's carry the time of their capture; replayed,
 * they say now (same width), as the agent would: the daemon refuses
 * samples stamped further than ingest.max_clock_skew_s from its clock. */
static char *fixture_or_fail(const char *rel, size_t *len)
{
    char *s = fixture_read(rel, len);
    if (!s)
        fail_msg("cannot read tests/fixtures/%s", rel);
    if (strncmp(rel, "jolokia/", 8) == 0) {
        char now[16];
        snprintf(now, sizeof now, "%010lld", (long long)time(NULL));
        char *end = s + *len;
        for (char *p = s; (p = memmem(p, (size_t)(end - p), "\"timestamp\":", 12)) != NULL;) {
            p += 12;
            size_t digits = 0;
            while (p + digits < end && digits <= 10 && p[digits] >= '0' && p[digits] <= '9')
                digits++;
            if (digits == 10)
                memcpy(p, now, 10);
        }
    }
    return s;
}

/* A recorded answer with "status" replaced. */
static char *with_status(const char *rel, const char *status, size_t *len)
{
    char *s = fixture_or_fail(rel, len);
    const char *key = "\"status\" : \"ALIVE\"";
    char *at = strstr(s, key);
    assert_non_null(at);
    size_t head = (size_t)(at - s), tail = *len - head - strlen(key);
    char *out = malloc(*len + 64);
    int n = snprintf(out, *len + 64, "%.*s\"status\" : \"%s\"", (int)head, s, status);
    memcpy(out + n, at + strlen(key), tail);
    *len = (size_t)n + tail;
    free(s);
    return out;
}

static void route_file(fxs *s, const char *path, const char *rel, const char *ctype)
{
    size_t len;
    char *body = fixture_or_fail(rel, &len);
    fxs_set(s, path, FXS_ANSWER, 200, ctype, body, len, 0);
    free(body);
}

/* A free port that refuses connections (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    G = f;
    if (fxs_start(&f->alive) || fxs_start(&f->standby) || fxs_start(&f->jolo) ||
        fxs_start(&f->faults) || fxs_start(&f->auth))
        return -1;
    size_t len;
    const char *mj = "text/json;charset=utf-8", *jj = "application/json; charset=utf-8";
    route_file(&f->alive, "/json/", "spark_master/app_running.json", mj);
    route_file(&f->auth, "/json/", "spark_master/no_app.json", mj);
    char *sb = with_status("spark_master/no_app.json", "STANDBY", &len);
    fxs_set(&f->standby, "/json/", FXS_ANSWER, 200, mj, sb, len, 0);
    free(sb);
    /* The driver has no metrics yet; test_jolokia_and_carbon_decide_alike
     * switches to a recorded bulk once the master has answered. */
    route_file(&f->jolo, "/jolokia/", "jolokia/eam_bulk_1.json", jj);
    route_file(&f->jolo, "/nombeans/", "jolokia/eam_bulk_1.json", jj);
    /* Faults. */
    char *ok = fixture_or_fail("spark_master/app_running.json", &len);
    fxs_set(&f->faults, "/slow/json/", FXS_ANSWER, 200, mj, ok, len, 300);
    fxs_set(&f->faults, "/hang/json/", FXS_HANG, 200, mj, ok, len, 0);
    fxs_set(&f->faults, "/e503/json/", FXS_ANSWER, 503, "text/html", "<h1>503</h1>", 12, 0);
    fxs_set(&f->faults, "/flap/json/", FXS_ANSWER, 200, mj, ok, len, 0);
    fxs_set(&f->faults, "/cut/json/", FXS_TRUNCATE, 200, mj, ok, len, 0);
    fxs_set(&f->faults, "/truncjson/json/", FXS_ANSWER, 200, mj, ok, len / 2, 0);
    fxs_set(&f->faults, "/garbage/json/", FXS_ANSWER, 200, "text/html", "<html>Jetty</html>", 18, 0);
    fxs_set(&f->faults, "/big/json/", FXS_ANSWER, 200, mj, ok, len, 0);   /* > 1 KiB */
    fxs_set(&f->faults, "/moved/json/", FXS_ANSWER, 302, "text/html", "", 0, 0);   /* not followed */
    fxs_set(&f->faults, "/e401/json/", FXS_ANSWER, 401, "text/html", "<h1>401</h1>", 12, 0);
    free(ok);
    /* A Jolokia bulk with one read answered and one failed (recorded items). */
    char *bulk = fixture_or_fail("jolokia/eam_bulk_4.json", &len);
    json_t *b = json_loadb(bulk, len, 0, NULL);
    free(bulk);
    char *failed = fixture_or_fail("jolokia/pattern_attribute_fails.json", &len);
    json_t *fl = json_loadb(failed, len, 0, NULL);
    free(failed);
    json_t *mix = json_array();
    json_array_append(mix, json_array_get(b, 0));
    json_array_append(mix, json_array_get(fl, 0));
    char *partial = json_dumps(mix, JSON_COMPACT);
    fxs_set(&f->faults, "/partial/jolokia/", FXS_ANSWER, 200, jj, partial, strlen(partial), 0);
    free(partial);
    json_decref(mix);
    json_decref(b);
    json_decref(fl);
    f->refused_port = closed_port();

    /* Every log line of the daemon, to count them. */
    snprintf(f->log_path, sizeof f->log_path, "/tmp/test_poller.%d.log", (int)getpid());
    f->saved_stderr = dup(2);
    if (!freopen(f->log_path, "w", stderr))
        return -1;
    setvbuf(stderr, NULL, _IONBF, 0);

    char yaml[8192];
    int A = f->alive.port, S = f->standby.port, J = f->jolo.port, F = f->faults.port;
    /* demand: target: the recorded Jolokia values are a ramp under way (to
     * add 2, 24 needed), which demand: ramp would ask ahead for; what these
     * tests count is the target the pollers read. */
    snprintf(yaml, sizeof yaml,
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\" }\n"
        "kafka: { brokers: embedded }\n"
        "poll: { interval_s: 1, timeout_ms: 800, connect_timeout_ms: 300, max_backoff_s: 4 }\n"
        "policy: { evaluate_interval_ms: 100, scale_down_window_s: 0, tolerance_executors: 0,\n"
        "          idle_workers: 0, idle_mode: need, min_workers: 1, stale_after_s: 30,\n"
        "          demand: target }\n"
        "clusters:\n"
        "  - { name: ha, spark_master: [\"http://127.0.0.1:%d\", \"http://127.0.0.1:%d/\"],\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: jolo, spark_master: \"http://127.0.0.1:%d\",\n"
        "      jolokia: [\"http://127.0.0.1:%d/jolokia/\"], policy: { idle_workers: 1 },\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: carb, spark_master: \"http://127.0.0.1:%d\", policy: { idle_workers: 1 },\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: nombeans, jolokia: \"http://127.0.0.1:%d/nombeans/\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: partial, jolokia: \"http://127.0.0.1:%d/partial/jolokia/\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: standby, spark_master: \"http://127.0.0.1:%d\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: slow, spark_master: \"http://127.0.0.1:%d/slow\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: hang, spark_master: \"http://127.0.0.1:%d/hang\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: e503, spark_master: \"http://127.0.0.1:%d/e503\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: flap, spark_master: \"http://127.0.0.1:%d/flap\",\n"
        "      policy: { stale_after_s: 2 },\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: cut, spark_master: \"http://127.0.0.1:%d/cut\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: truncjson, spark_master: \"http://127.0.0.1:%d/truncjson\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: garbage, spark_master: \"http://127.0.0.1:%d/garbage\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: big, spark_master: \"http://127.0.0.1:%d/big\", poll: { max_response_kb: 1 },\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: moved, spark_master: \"http://127.0.0.1:%d/moved\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: e401, spark_master: \"http://127.0.0.1:%d/e401\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: refused, spark_master: \"http://127.0.0.1:%d\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: dns, spark_master: \"http://no-such-host.invalid:8080\",\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n"
        "  - { name: auth, spark_master: \"http://127.0.0.1:%d\",\n"
        "      poll: { username: spark, password: s3cret },\n"
        "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n",
        S, A, A, J, A, J, F, S, F, F, F, F, F, F, F, F, F, F, f->refused_port, f->auth.port);
    if (harness_start(&f->h, yaml) != 0) {
        fprintf(stdout, "harness: %s\n", f->h.err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    int rc = harness_stop(&f->h);
    fxs_stop(&f->alive);
    fxs_stop(&f->standby);
    fxs_stop(&f->jolo);
    fxs_stop(&f->faults);
    fxs_stop(&f->auth);
    /* The daemon's log, for whoever reads a failure. */
    FILE *l = fopen(f->log_path, "r");
    if (l) {
        char line[1024];
        printf("---- sparkscaled log ----\n");
        while (fgets(line, sizeof line, l))
            fputs(line, stdout);
        fclose(l);
    }
    unlink(f->log_path);
    fflush(stderr);
    dup2(f->saved_stderr, 2);
    close(f->saved_stderr);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* ---- reading the daemon ---- */

static json_t *cluster_json(harness *h, const char *name, json_t **root)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/clusters?name=%s", name);
    *root = get_json(h, path);
    return *root ? json_array_get(json_object_get(*root, "clusters"), 0) : NULL;
}

/* The state of cluster name's first poller ("ok", "timeout", ...). */
static int poller_state_is(harness *h, const char *name, const char *want)
{
    json_t *root;
    json_t *cl = cluster_json(h, name, &root);
    json_t *p = json_array_get(json_object_get(cl, "pollers"), 0);
    const char *s = json_string_value(json_object_get(p, "state"));
    int ok = s && strcmp(s, want) == 0;
    json_decref(root);
    return ok;
}

static int wait_poller_state(harness *h, const char *name, const char *want, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 50) {
        if (poller_state_is(h, name, want))
            return 1;
        usleep(50000);
    }
    return 0;
}

static long long field(harness *h, const char *name, const char *obj, const char *key)
{
    json_t *root;
    json_t *cl = cluster_json(h, name, &root);
    json_t *v = json_object_get(json_object_get(cl, obj), key);
    long long r = json_is_integer(v) ? json_integer_value(v) : -1000;
    json_decref(root);
    return r;
}

static long long wait_field(harness *h, const char *name, const char *obj, const char *key,
                            long long want, int timeout_ms)
{
    long long v = -1000;
    for (int t = 0; t <= timeout_ms; t += 50) {
        if ((v = field(h, name, obj, key)) == want)
            break;
        usleep(50000);
    }
    return v;
}

static double requests(harness *h, const char *source, const char *result)
{
    char m[160];
    snprintf(m, sizeof m, "sparkscale_poll_requests_total{source=\"%s\",result=\"%s\"}", source,
             result);
    return get_metric(h, m);
}

/* Lines of the daemon's log containing every one of the given strings. */
static int log_lines(const char *a, const char *b)
{
    FILE *l = fopen(G->log_path, "r");
    char line[2048];
    int n = 0;
    while (l && fgets(line, sizeof line, l))
        n += strstr(line, a) && (!b || strstr(line, b));
    if (l)
        fclose(l);
    return n;
}

/* The newest decision of cluster in Kafka (arrays released by the caller). */
static int newest_decision(harness *h, const char *cluster, ss_decision *out)
{
    for (int i = 0; i < 250 && get_metric(h, "sparkscale_decisions_pending") != 0; i++)
        usleep(20000);
    const char *topics[] = { "sparkscale.decisions" };
    ss_bus_reader *r;
    char err[512];
    assert_int_equal(ss_bus_reader_open(h->bootstrap, topics, 1, 1, NULL, 0, 10000, &r, err,
                                        sizeof err), 0);
    int n = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        ss_bus_record rec;
        if (ss_bus_reader_next(r, 3000, &rec, err, sizeof err) != 1)
            break;
        ss_decision d;
        assert_int_equal(ss_decision_decode(rec.payload, rec.len, &d), 0);
        if (strcmp(d.cluster, cluster) == 0) {
            ss_decision_release(out);
            *out = d;
            n++;
        } else {
            ss_decision_release(&d);
        }
    }
    ss_bus_reader_close(r);
    return n;
}

static int send_eam(harness *h, const char *prefix, const char *app, int target, int all)
{
    /* The values of tests/fixtures/jolokia/eam_bulk_4.json, over carbon. */
    char buf[4096];
    long long ts = (long long)time(NULL);
    int n = snprintf(buf, sizeof buf,
        "%1$s.%2$s" EAM "numberTargetExecutors %3$d %5$lld\n"
        "%1$s.%2$s" EAM "numberAllExecutors %4$d %5$lld\n"
        "%1$s.%2$s" EAM "numberMaxNeededExecutors 24 %5$lld\n"
        "%1$s.%2$s" EAM "numberExecutorsToAdd 2 %5$lld\n"
        "%1$s.%2$s" EAM "numberExecutorsPendingToRemove 0 %5$lld\n"
        "%1$s.%2$s" EAM "numberDecommissioningExecutors 0 %5$lld\n"
        "%1$s.%2$s" EAM "numberExecutorsGracefullyDecommissioned.count 0 %5$lld\n"
        "%1$s.%2$s" EAM "numberExecutorsDecommissionUnfinished.count 0 %5$lld\n"
        "%1$s.%2$s" EAM "numberExecutorsKilledByDriver.count 0 %5$lld\n"
        "%1$s.%2$s" EAM "numberExecutorsExitedUnexpectedly.count 0 %5$lld\n",
        prefix, app, target, all, ts);
    return tcp_send(h, buf, (size_t)n);
}

/* ---- tests ---- */

/* HA masters: the STANDBY one is asked once, then the ALIVE one only; its
 * workers give current and busy; the decision's removable workers carry
 * the master's real worker ids and ports. */
static void test_ha_master_busy_and_removable(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    /* The master first: decisions are published when the desired size
     * changes, so the first one should already know the workers. */
    assert_true(wait_poller_state(h, "ha", "ok", 5000));
    assert_int_equal(wait_field(h, "ha", "workers", "current", 3, 5000), 3);
    assert_int_equal(send_eam(h, "ha", APP, 2, 2), 0);   /* N = 2 (one executor a worker) */
    assert_int_equal(wait_field(h, "ha", "workers", "busy", 2, 5000), 2);
    /* max(N + I, A) = 2 of 3 alive: the idle one goes. */
    assert_int_equal(wait_field(h, "ha", "decision", "desired", 2, 5000), 2);
    json_t *root;
    json_t *cl = cluster_json(h, "ha", &root);
    json_t *sm = json_object_get(cl, "spark_master");
    assert_string_equal(json_string_value(json_object_get(sm, "status")), "ALIVE");
    assert_true(json_is_true(json_object_get(sm, "fresh")));
    json_t *p = json_array_get(json_object_get(cl, "pollers"), 0);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/", f->alive.port);
    assert_string_equal(json_string_value(json_object_get(p, "active_url")), want);
    assert_string_equal(json_string_value(json_object_get(p, "state")), "ok");
    json_decref(root);

    ss_decision d;
    assert_true(newest_decision(h, "ha", &d) >= 1);
    assert_int_equal(d.current_workers, 3);
    assert_int_equal(d.busy_workers, 2);
    assert_int_equal(d.desired_workers, 2);
    assert_int_equal((int)d.nremovable_workers, 1);
    assert_string_equal(d.removable_workers[0].id, IDLE_ID);
    assert_string_equal(d.removable_workers[0].host, "127.0.0.2");
    assert_int_equal(d.removable_workers[0].port, 46423);
    ss_decision_release(&d);

    /* The standby was asked in the first round only (the cluster "standby"
     * polls that server every second too, so count its /json/ hits minus
     * those: simpler to check the ha poller's own count of standby answers). */
    unsigned long polls_before = fxs_hits(&f->alive, "/json/");
    usleep(2500000);
    assert_true(fxs_hits(&f->alive, "/json/") > polls_before);
    assert_true(poller_state_is(h, "ha", "ok"));
}

/* A master that is only ever STANDBY: counted, never used, no backoff,
 * and its cluster holds (no data). */
static void test_standby_only(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    assert_true(wait_poller_state(h, "standby", "standby", 5000));
    assert_true(requests(h, "master", "standby") >= 1);
    json_t *root;
    json_t *cl = cluster_json(h, "standby", &root);
    assert_true(json_is_null(json_object_get(cl, "spark_master")));
    assert_true(json_is_true(json_object_get(cl, "stale")));
    json_t *p = json_array_get(json_object_get(cl, "pollers"), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "failures")), 0);
    assert_non_null(strstr(json_string_value(json_object_get(p, "last_error")), "STANDBY"));
    json_decref(root);
    (void)f;
}

/* The same demand via Jolokia (cluster jolo) and via carbon (cluster carb),
 * the same master: the same app, gauges and decision. */
static void test_jolokia_and_carbon_decide_alike(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    /* Both know their master (3 alive, 2 busy: max(0 + 1, 2) = 2) before
     * the demand arrives, which then moves both to max(2 + 1, 2) = 3. */
    assert_int_equal(wait_field(h, "jolo", "decision", "desired", 2, 5000), 2);
    assert_int_equal(wait_field(h, "carb", "decision", "desired", 2, 5000), 2);
    size_t len;
    char *bulk = fixture_or_fail("jolokia/eam_bulk_4.json", &len);
    fxs_set(&f->jolo, "/jolokia/", FXS_ANSWER, 200, "application/json", bulk, len, 0);
    free(bulk);
    assert_int_equal(send_eam(h, "carb", APP, 2, 0), 0);
    assert_int_equal(wait_field(h, "jolo", "decision", "desired", 3, 5000), 3);
    assert_int_equal(wait_field(h, "carb", "decision", "desired", 3, 5000), 3);
    json_t *rj, *rc;
    json_t *cj = cluster_json(h, "jolo", &rj), *cc = cluster_json(h, "carb", &rc);
    /* Workers and recommendation (reason text included) are equal. */
    assert_true(json_equal(json_object_get(cj, "workers"), json_object_get(cc, "workers")));
    json_t *recj = json_object_get(cj, "recommendation"), *recc = json_object_get(cc, "recommendation");
    assert_string_equal(json_string_value(json_object_get(recj, "reason")),
                        json_string_value(json_object_get(recc, "reason")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(cj, "decision"), "reason")),
                        json_string_value(json_object_get(json_object_get(cc, "decision"), "reason")));
    /* One app each, same id, same gauge names and values. */
    json_t *aj = json_array_get(json_object_get(cj, "apps"), 0);
    json_t *ac = json_array_get(json_object_get(cc, "apps"), 0);
    assert_int_equal(json_array_size(json_object_get(cj, "apps")), 1);
    assert_int_equal(json_array_size(json_object_get(cc, "apps")), 1);
    assert_string_equal(json_string_value(json_object_get(aj, "id")), APP);
    assert_string_equal(json_string_value(json_object_get(ac, "id")), APP);
    json_t *gj = json_object_get(aj, "gauges"), *gc = json_object_get(ac, "gauges");
    assert_int_equal(json_object_size(gj), 10);
    assert_int_equal(json_object_size(gc), 10);
    const char *k;
    json_t *v;
    json_object_foreach(gj, k, v) {
        json_t *w = json_object_get(gc, k);
        if (!w)
            fail_msg("gauge %s only via Jolokia", k);
        assert_true(json_equal(json_object_get(v, "value"), json_object_get(w, "value")));
    }
    json_decref(rj);
    json_decref(rc);

    ss_decision dj, dc;
    assert_true(newest_decision(h, "jolo", &dj) >= 1);
    assert_true(newest_decision(h, "carb", &dc) >= 1);
    assert_int_equal(dj.desired_workers, dc.desired_workers);
    assert_int_equal(dj.current_workers, dc.current_workers);
    assert_int_equal(dj.busy_workers, dc.busy_workers);
    assert_int_equal(dj.recommended_workers, dc.recommended_workers);
    assert_int_equal(dj.reason_code, dc.reason_code);
    assert_string_equal(dj.reason, dc.reason);
    assert_int_equal((int)dj.napps, 1);
    assert_int_equal((int)dc.napps, 1);
    assert_string_equal(dj.apps[0].app_id, dc.apps[0].app_id);
    assert_int_equal(dj.apps[0].target_executors, dc.apps[0].target_executors);
    assert_int_equal((int)dj.nremovable_workers, (int)dc.nremovable_workers);
    for (size_t i = 0; i < dj.nremovable_workers; i++)
        assert_string_equal(dj.removable_workers[i].id, dc.removable_workers[i].id);
    ss_decision_release(&dj);
    ss_decision_release(&dc);

    /* The bulk asked for gauges and counters, Spark 3 and 2, with ignoreErrors. */
    pthread_mutex_lock(&f->jolo.mu);
    char body[512];
    snprintf(body, sizeof body, "%s", f->jolo.last_body);
    pthread_mutex_unlock(&f->jolo.mu);
    assert_non_null(strstr(body, "type=gauges"));
    assert_non_null(strstr(body, "type=counters"));
    assert_non_null(strstr(body, "\"ignoreErrors\":true"));
    assert_true(get_metric(h, "sparkscale_poll_jolokia_samples_stored_total") >= 10);
}

/* Jolokia: no MBeans yet (normal, no backoff, no data); partial bulks
 * store what answered. */
static void test_jolokia_absent_and_partial(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    assert_true(wait_poller_state(h, "nombeans", "no_mbeans", 5000));
    assert_true(wait_poller_state(h, "partial", "partial", 5000));
    assert_true(requests(h, "jolokia", "no_mbeans") >= 1);
    assert_true(requests(h, "jolokia", "partial") >= 1);
    json_t *root;
    json_t *cl = cluster_json(h, "partial", &root);
    json_t *a = json_array_get(json_object_get(cl, "apps"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")), APP);
    assert_int_equal(json_object_size(json_object_get(a, "gauges")), 6);   /* the gauges read */
    json_t *p = json_array_get(json_object_get(cl, "pollers"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(p, "last_error")),
                           "UnsupportedOperationException"));
    assert_int_equal(json_integer_value(json_object_get(p, "failures")), 0);
    json_decref(root);
    cl = cluster_json(h, "nombeans", &root);
    assert_int_equal(json_array_size(json_object_get(cl, "apps")), 0);
    assert_true(json_is_true(json_object_get(cl, "stale")));
    json_decref(root);
    (void)f;
}

/* Every failure is counted by its reason; none stops the others. */
static void test_failures_by_reason(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    assert_true(wait_poller_state(h, "slow", "ok", 5000));
    assert_true(wait_poller_state(h, "hang", "timeout", 5000));
    assert_true(wait_poller_state(h, "e503", "http_5xx", 5000));
    assert_true(wait_poller_state(h, "cut", "protocol", 5000));
    assert_true(wait_poller_state(h, "truncjson", "bad_json", 5000));
    assert_true(wait_poller_state(h, "garbage", "bad_json", 5000));
    assert_true(wait_poller_state(h, "big", "too_large", 5000));
    assert_true(wait_poller_state(h, "moved", "http_3xx", 5000));
    assert_true(wait_poller_state(h, "e401", "http_4xx", 5000));
    assert_true(wait_poller_state(h, "refused", "connect", 5000));
    assert_true(wait_poller_state(h, "dns", "dns", 8000));
    const char *reasons[] = { "timeout", "http_3xx", "http_4xx", "http_5xx", "protocol",
                              "bad_json", "too_large", "connect", "dns", "standby", "ok" };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (requests(h, "master", reasons[i]) < 1)
            fail_msg("no master request counted as %s", reasons[i]);
    assert_true(get_metric(h, "sparkscale_poll_endpoints{source=\"master\"}") == 17);
    assert_true(get_metric(h, "sparkscale_poll_endpoints{source=\"jolokia\"}") == 3);
    assert_true(get_metric(h, "sparkscale_poll_endpoints_not_ok{source=\"master\"}") >= 11);
    /* A failing feed is no data: those clusters are stale and hold. */
    json_t *root;
    json_t *cl = cluster_json(h, "e503", &root);
    assert_true(json_is_true(json_object_get(cl, "stale")));
    assert_true(json_is_null(json_object_get(cl, "last_seen_ms")));
    json_t *p = json_array_get(json_object_get(cl, "pollers"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(p, "last_error")), "HTTP 503"));
    json_decref(root);
    /* The unknown host's error names it, the credentials are not shown. */
    cl = cluster_json(h, "dns", &root);
    p = json_array_get(json_object_get(cl, "pollers"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(p, "last_error")), "no-such-host"));
    json_decref(root);
    /* Basic auth from poll: reached the master. */
    assert_true(wait_poller_state(h, "auth", "ok", 5000));
    pthread_mutex_lock(&f->auth.mu);
    char auth[256];
    snprintf(auth, sizeof auth, "%s", f->auth.last_auth);
    pthread_mutex_unlock(&f->auth.mu);
    assert_string_equal(auth, "Basic c3Bhcms6czNjcmV0");   /* spark:s3cret */
}

/* Repeated failure backs off (fewer polls than the period allows, logged
 * once), success brings the normal period back (logged once more). */
static void test_backoff_and_recovery(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    /* e503 has failed since start (a few seconds ago). Watch 6 s: at a 1 s
     * period that is 6 polls; backing off (1, 1-2, 2-4, 2-4 s) it is <= 4. */
    unsigned long before = fxs_hits(&f->faults, "/e503/json/");
    usleep(6000000);
    unsigned long during = fxs_hits(&f->faults, "/e503/json/") - before;
    printf("e503: %lu polls in 6 s while failing\n", during);
    assert_true(during <= 4);
    assert_true(field(h, "e503", "pollers", "failures") == -1000);   /* pollers is an array */
    json_t *root;
    json_t *cl = cluster_json(h, "e503", &root);
    json_t *p = json_array_get(json_object_get(cl, "pollers"), 0);
    assert_true(json_integer_value(json_object_get(p, "failures")) >= 4);
    json_decref(root);
    assert_int_equal(log_lines("cluster e503: master", "http_5xx"), 1);

    /* The master comes back. */
    size_t len;
    char *ok = fixture_or_fail("spark_master/app_running.json", &len);
    fxs_set(&f->faults, "/e503/json/", FXS_ANSWER, 200, "text/json", ok, len, 0);
    free(ok);
    assert_true(wait_poller_state(h, "e503", "ok", 6000));
    assert_int_equal(log_lines("cluster e503: master", "answers again"), 1);
    before = fxs_hits(&f->faults, "/e503/json/");
    usleep(3500000);
    unsigned long after = fxs_hits(&f->faults, "/e503/json/") - before;
    printf("e503: %lu polls in 3.5 s after recovery\n", after);
    assert_true(after >= 2 && after <= 5);   /* 3 or 4 at a 1 s period; slack for a loaded machine */
    assert_int_equal(wait_field(h, "e503", "workers", "current", 3, 2000), 3);
    /* Still one line per change: nothing logged per poll. */
    assert_int_equal(log_lines("cluster e503: master", NULL), 2);
    assert_int_equal(log_lines("cluster hang: master", NULL), 1);
}

/* A master that answered, then fails: its data ages out after
 * stale_after_s (2 s here); the cluster turns stale and holds its size. */
static void test_failed_master_goes_stale(void **state)
{
    fx *f = *state;
    harness *h = &f->h;
    assert_true(wait_poller_state(h, "flap", "ok", 5000));
    assert_int_equal(wait_field(h, "flap", "workers", "current", 3, 3000), 3);
    fxs_set(&f->faults, "/flap/json/", FXS_ANSWER, 500, "text/plain", "boom", 4, 0);
    assert_true(wait_poller_state(h, "flap", "http_5xx", 3000));
    json_t *root = NULL, *cl = NULL;
    for (int t = 0; t < 80; t++) {
        json_decref(root);
        cl = cluster_json(h, "flap", &root);
        const char *code = json_string_value(json_object_get(json_object_get(cl, "recommendation"),
                                                             "code"));
        if (json_is_true(json_object_get(cl, "stale")) && code && strcmp(code, "hold_stale") == 0)
            break;
        usleep(50000);
    }
    assert_true(json_is_true(json_object_get(cl, "stale")));
    assert_true(json_is_false(json_object_get(json_object_get(cl, "spark_master"), "fresh")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(cl, "recommendation"),
                                                          "code")), "hold_stale");
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ha_master_busy_and_removable),
        cmocka_unit_test(test_standby_only),
        cmocka_unit_test(test_jolokia_and_carbon_decide_alike),
        cmocka_unit_test(test_jolokia_absent_and_partial),
        cmocka_unit_test(test_failures_by_reason),
        cmocka_unit_test(test_backoff_and_recovery),
        cmocka_unit_test(test_failed_master_goes_stale),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
