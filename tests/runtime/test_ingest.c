/* test_ingest.c: sparkscaled's carbon ingest over real TCP and UDP sockets:
 * split lines, CRLF, garbage, over-long lines, EOF without newline, many
 * clients, a stalled client, thousands of lines; read back via /v1/clusters
 * and /metrics. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "harness.h"
#include "ingest/carbon_tcp.h"

static const char *yaml =
    "ingest:\n"
    "  carbon_tcp: \"127.0.0.1:0\"\n"
    "  carbon_udp: \"127.0.0.1:0\"\n"
    "  http: \"127.0.0.1:0\"\n"
    "  max_line_bytes: 512\n"
    "  max_clients: 64\n"
    "  max_clock_skew_s: 0\n"          /* the lines below carry fixed timestamps */
    "kafka: { brokers: embedded }\n"
    "clusters:\n"
    "  - name: alpha\n"
    "    metrics_prefix: alpha\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "  - name: beta\n"
    "    metrics_prefix: teams.beta\n"
    "    worker: { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 1, memory_mb: 1024 }\n";

#define EAM ".driver.ExecutorAllocationManager.executors."

static int setup(void **state) { return harness_setup_group(state, yaml); }
static int teardown(void **state) { return harness_teardown_group(state); }

static double stored(harness *h) { return get_metric(h, "sparkscale_carbon_lines_stored_total"); }

/* Waits until the store has taken at least n more lines than before. */
static void wait_stored(harness *h, double before, double n)
{
    double v = wait_metric(h, "sparkscale_carbon_lines_stored_total", before + n, 5000);
    assert_true(v >= before + n);
}

static void test_tcp_report_visible_in_clusters(void **state)
{
    harness *h = *state;
    double before = stored(h);
    const char *report =
        "alpha.app-20261121093000-0003" EAM "numberTargetExecutors 14 1763717400\n"
        "alpha.app-20261121093000-0003" EAM "numberAllExecutors 6 1763717400\n"
        "alpha.app-20261121093000-0003.driver.BlockManager.memory.memUsed_MB 12 1763717400\n"
        "alpha.master.aliveWorkers 3 1763717400\n"
        "teams.beta.my.team.etl" EAM "numberTargetExecutors 5 1763717400";  /* no '\n' at EOF */
    assert_int_equal(tcp_send(h, report, strlen(report)), 0);
    wait_stored(h, before, 4);

    json_t *root = get_json(h, "/v1/clusters");
    assert_non_null(root);
    json_t *app = find_app(root, "alpha", "app-20261121093000-0003");
    assert_non_null(app);
    assert_true(app_gauge(app, "numberTargetExecutors") == 14);
    assert_true(app_gauge(app, "numberAllExecutors") == 6);
    json_t *ts = json_object_get(json_object_get(json_object_get(app, "gauges"),
                                                 "numberTargetExecutors"), "ts_ms");
    assert_int_equal(json_integer_value(ts), 1763717400000LL);
    /* A namespace with dots under a dotted prefix. */
    json_t *beta = find_app(root, "beta", "my.team.etl");
    assert_non_null(beta);
    assert_true(app_gauge(beta, "numberTargetExecutors") == 5);
    json_t *alpha = find_cluster(root, "alpha");
    json_t *aw = json_object_get(json_object_get(json_object_get(alpha, "master"), "gauges"),
                                 "aliveWorkers");
    assert_int_equal(json_integer_value(json_object_get(aw, "value")), 3);
    json_decref(root);
}

static void test_split_lines_across_writes(void **state)
{
    harness *h = *state;
    double before = stored(h);
    const char *data =
        "alpha.app-split" EAM "numberTargetExecutors 7 1763717401\r\n"
        "alpha.app-split" EAM "numberMaxNeededExecutors 9 1763717401\r\n";
    int fd = h_connect(SOCK_STREAM, h->tcp_port);
    assert_true(fd >= 0);
    /* One byte at a time, with pauses, so lines (and CRLF) split across reads. */
    for (size_t i = 0; i < strlen(data); i++) {
        assert_int_equal(h_write_all(fd, data + i, 1), 0);
        if (i % 16 == 0)
            usleep(1000);
    }
    wait_stored(h, before, 2);
    close(fd);
    json_t *root = get_json(h, "/v1/clusters");
    json_t *app = find_app(root, "alpha", "app-split");
    assert_non_null(app);
    assert_true(app_gauge(app, "numberTargetExecutors") == 7);
    assert_true(app_gauge(app, "numberMaxNeededExecutors") == 9);
    json_decref(root);
}

static void test_garbage_is_counted_and_dropped(void **state)
{
    harness *h = *state;
    double fields0 = get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"fields\"}");
    double value0 = get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"value\"}");
    double long0 = get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"too_long\"}");
    double nonfin0 = get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"nonfinite\"}");
    double unk0 = get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"unknown_cluster\"}");
    double before = stored(h);

    char longline[2048];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
        "just-one-field\n"
        "alpha.app-g" EAM "numberTargetExecutors notanumber 1763717402\n"
        "%s 1 1763717402\n"
        "alpha.app-g" EAM "numberTargetExecutors NaN 1763717402\n"
        "gamma.app-g" EAM "numberTargetExecutors 3 1763717402\n"
        "alpha.app-g" EAM "numberTargetExecutors 4 1763717402\n", longline);
    assert_int_equal(tcp_send(h, buf, (size_t)n), 0);
    wait_stored(h, before, 1);

    assert_true(get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"fields\"}") >= fields0 + 1);
    assert_true(get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"value\"}") >= value0 + 1);
    assert_true(get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"too_long\"}") >= long0 + 1);
    assert_true(get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"nonfinite\"}") >= nonfin0 + 1);
    assert_true(get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"unknown_cluster\"}") >= unk0 + 1);
    json_t *root = get_json(h, "/v1/clusters");
    json_t *app = find_app(root, "alpha", "app-g");
    assert_non_null(app);
    assert_true(app_gauge(app, "numberTargetExecutors") == 4);   /* the good line after the bad */
    json_decref(root);
}

static void test_udp_one_and_many_lines_per_datagram(void **state)
{
    harness *h = *state;
    double before = stored(h);
    const char *one = "alpha.app-udp" EAM "numberTargetExecutors 11 1763717403";
    const char *many =
        "alpha.app-udp" EAM "numberAllExecutors 5 1763717403\n"
        "alpha.app-udp2" EAM "numberTargetExecutors 2 1763717403\n";
    assert_int_equal(udp_send(h, one, strlen(one)), 0);
    assert_int_equal(udp_send(h, many, strlen(many)), 0);
    wait_stored(h, before, 3);
    json_t *root = get_json(h, "/v1/clusters");
    json_t *app = find_app(root, "alpha", "app-udp");
    assert_non_null(app);
    assert_true(app_gauge(app, "numberTargetExecutors") == 11);
    assert_true(app_gauge(app, "numberAllExecutors") == 5);
    assert_non_null(find_app(root, "alpha", "app-udp2"));
    json_decref(root);
    /* The kernel's drops for our socket are read (none here). */
    assert_true(get_metric(h, "sparkscale_carbon_udp_kernel_drops_total") == 0);
}

/* A client that sends half a line and stays silent must not stall others. */
static void test_stalled_client_does_not_block_others(void **state)
{
    harness *h = *state;
    int slow = h_connect(SOCK_STREAM, h->tcp_port);
    assert_true(slow >= 0);
    const char *half = "alpha.app-slow" EAM "numberTarget";
    assert_int_equal(h_write_all(slow, half, strlen(half)), 0);

    double before = stored(h);
    const char *line = "alpha.app-fast" EAM "numberTargetExecutors 1 1763717404\n";
    assert_int_equal(tcp_send(h, line, strlen(line)), 0);
    wait_stored(h, before, 1);
    /* The slow client finishes its line later: it is still served. */
    const char *rest = "Executors 8 1763717404\n";
    assert_int_equal(h_write_all(slow, rest, strlen(rest)), 0);
    wait_stored(h, before, 2);
    close(slow);
    json_t *root = get_json(h, "/v1/clusters");
    assert_true(app_gauge(find_app(root, "alpha", "app-slow"), "numberTargetExecutors") == 8);
    json_decref(root);
}

typedef struct sender { harness *h; int id; int lines; int rc; } sender;

static void *send_many(void *arg)
{
    sender *s = arg;
    char *buf = malloc((size_t)s->lines * 128);
    size_t len = 0;
    for (int i = 0; i < s->lines; i++)
        len += (size_t)sprintf(buf + len, "alpha.app-c%02d" EAM "numberTargetExecutors %d %d\n",
                               s->id, i, 1763717500 + i);
    s->rc = tcp_send(s->h, buf, len);
    free(buf);
    return NULL;
}

/* 40 concurrent clients x 2,500 lines: all stored, in order per series. */
static void test_many_clients_thousands_of_lines(void **state)
{
    harness *h = *state;
    enum { CLIENTS = 40, LINES = 2500 };
    double before = stored(h);
    pthread_t th[CLIENTS];
    sender s[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        s[i] = (sender){ .h = h, .id = i, .lines = LINES };
        pthread_create(&th[i], NULL, send_many, &s[i]);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].rc, 0);
    }
    wait_stored(h, before, CLIENTS * LINES);
    json_t *root = get_json(h, "/v1/clusters");
    for (int i = 0; i < CLIENTS; i++) {
        char id[32];
        snprintf(id, sizeof id, "app-c%02d", i);
        json_t *app = find_app(root, "alpha", id);
        assert_non_null(app);
        assert_true(app_gauge(app, "numberTargetExecutors") == LINES - 1);
    }
    json_decref(root);
}

/* More clients than max_clients: the extra ones are closed, counted, and
 * the daemon keeps serving. */
static void test_max_clients(void **state)
{
    harness *h = *state;
    enum { N = 80 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = h_connect(SOCK_STREAM, h->tcp_port);
    double refused = wait_metric(h, "sparkscale_carbon_tcp_connections_closed_total{reason=\"max_clients\"}",
                                 N - 64, 5000);
    assert_true(refused >= N - 64);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    double before = stored(h);
    const char *line = "alpha.app-after" EAM "numberTargetExecutors 2 1763717405\n";
    /* Closed slots are reclaimed on the daemon's side shortly after. */
    for (int tries = 0; tries < 50 && stored(h) < before + 1; tries++) {
        tcp_send(h, line, strlen(line));
        usleep(20000);
    }
    assert_true(stored(h) >= before + 1);
}

static void fail_two_allocs(harness *h)
{
    carbon_tcp_fail_next_allocs(ss_daemon_source(h->daemon, "carbon_tcp"), 2);
}

/* Out of memory for a new client (and for the handle that refuses it): the
 * connection is still taken off the listener and closed, so the listener
 * keeps accepting. libuv stops watching a listener whose connection
 * callback leaves a connection waiting: carbon ingest would go deaf. */
static void test_accept_survives_nomem(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_prestart = fail_two_allocs;
    int rc = harness_start(h, yaml);
    harness_prestart = NULL;
    if (rc != 0)
        fail_msg("harness: %s", h->err);
    int fd = h_connect(SOCK_STREAM, h->tcp_port);
    assert_true(fd >= 0);
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);   /* closed by the daemon: EOF or reset */
    assert_true(n <= 0);
    close(fd);
    const char *line = "alpha.app-nomem" EAM "numberTargetExecutors 3 1763717401\n";
    assert_int_equal(tcp_send(h, line, strlen(line)), 0);
    assert_true(wait_metric(h, "sparkscale_carbon_lines_stored_total", 1, 5000) >= 1);
    assert_true(get_metric(h, "sparkscale_carbon_tcp_connections_closed_total{reason=\"nomem\"}") == 1);
    assert_int_equal(harness_stop(h), 0);
    free(h);
}

static int connect_from(const char *src_ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    inet_pton(AF_INET, src_ip, &src.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Lockout: every slot held by connections that trickle a byte now and then
 * and never finish a line. A sender that does finish lines still gets in
 * (the idlest trickler makes room), one address cannot hold more than its
 * share, and the refused are counted with their bytes. */
static void test_tcp_lockout(void **state)
{
    (void)state;
    static const char cfg[] =
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\",\n"
        "          max_clients: 20, max_clients_per_peer: 4, client_idle_timeout_s: 60 }\n"
        "kafka: { brokers: embedded }\n"
        "clusters:\n  - name: alpha\n";
    harness *h = calloc(1, sizeof *h);
    if (harness_start(h, cfg) != 0)
        fail_msg("harness: %s", h->err);
    enum { PEERS = 5, PER = 4 };
    int fds[PEERS * PER + 1];
    int n = 0;
    for (int p = 0; p < PEERS; p++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", p + 2);
        for (int k = 0; k < PER; k++) {
            fds[n] = connect_from(src, h->tcp_port);
            assert_true(fds[n] >= 0);
            assert_int_equal(h_write_all(fds[n], "alpha.app-x", 11), 0);
            n++;
        }
        if (p == 0) {
            /* a fifth from an address that already holds four */
            int extra = connect_from(src, h->tcp_port);
            assert_true(extra >= 0);
            h_write_all(extra, "alpha.app-y" EAM "numberTargetExecutors 1 ", 40);
            assert_true(wait_metric(h, "sparkscale_carbon_tcp_connections_closed_total"
                                       "{reason=\"per_peer\"}", 1, 5000) >= 1);
            close(extra);
        }
    }
    /* Every slot is taken. The tricklers keep sending bytes, never a
     * newline; after a second without a line, a real sender (connect,
     * report, close, as Spark 3 does) gets in every time. */
    for (int round = 0; round < 6; round++) {
        for (int k = 0; k < n; k++)
            send(fds[k], "x", 1, MSG_NOSIGNAL);
        usleep(200000);
    }
    double before = get_metric(h, "sparkscale_carbon_lines_stored_total");
    for (int round = 0; round < 15; round++) {
        for (int k = 0; k < n; k++)
            send(fds[k], "x", 1, MSG_NOSIGNAL);
        char line[256];
        int len = snprintf(line, sizeof line, "alpha.app-20261201120000-0001" EAM
                           "numberTargetExecutors %d %lld\n", round, (long long)time(NULL));
        assert_int_equal(tcp_send_from(h, "127.0.0.1", line, (size_t)len), 0);
        usleep(100000);
    }
    assert_true(wait_metric(h, "sparkscale_carbon_lines_stored_total", before + 15, 5000) >= before + 15);
    assert_true(get_metric(h, "sparkscale_carbon_tcp_connections_closed_total{reason=\"evicted_idle\"}") >= 1);
    assert_true(get_metric(h, "sparkscale_carbon_tcp_lost_bytes_total") >= 1);
    for (int k = 0; k < n; k++)
        close(fds[k]);
    assert_int_equal(harness_stop(h), 0);
    free(h);
}

/* Who may speak for a cluster: alpha takes lines only from 127.0.0.2,
 * beta (no list of its own) from the ingest default 127.0.0.3; a sender no
 * cluster allows is refused at accept. */
static void test_allowed_sources(void **state)
{
    (void)state;
    static const char cfg[] =
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"127.0.0.1:0\", http: \"127.0.0.1:0\",\n"
        "          allowed_sources: [127.0.0.3/32] }\n"
        "kafka: { brokers: embedded }\n"
        "clusters:\n"
        "  - name: alpha\n    allowed_sources: [\"127.0.0.2\", \"10.0.0.0/8\"]\n"
        "  - name: beta\n";
    harness *h = calloc(1, sizeof *h);
    if (harness_start(h, cfg) != 0)
        fail_msg("harness: %s", h->err);
    char a[256], b[256];
    long long now = (long long)time(NULL);
    int la = snprintf(a, sizeof a, "alpha.app-20261201120000-0001" EAM "numberTargetExecutors 7 %lld\n", now);
    int lb = snprintf(b, sizeof b, "beta.app-20261201120000-0002" EAM "numberTargetExecutors 3 %lld\n", now);
    assert_int_equal(tcp_send_from(h, "127.0.0.3", a, (size_t)la), 0);   /* beta's sender, not alpha's */
    assert_int_equal(tcp_send_from(h, "127.0.0.2", b, (size_t)lb), 0);   /* alpha's sender, not beta's */
    assert_int_equal(tcp_send_from(h, "127.0.0.2", a, (size_t)la), 0);   /* ok */
    assert_int_equal(tcp_send_from(h, "127.0.0.3", b, (size_t)lb), 0);   /* ok */
    tcp_send_from(h, "127.0.0.9", a, (size_t)la);                        /* nobody's */
    assert_true(wait_metric(h, "sparkscale_carbon_lines_stored_total", 2, 5000) == 2);
    assert_true(get_metric(h, "sparkscale_carbon_lines_rejected_total{reason=\"source_not_allowed\"}") == 2);
    assert_true(get_metric(h, "sparkscale_cluster_lines_refused_total{cluster=\"alpha\"}") == 1);
    assert_true(get_metric(h, "sparkscale_cluster_lines_refused_total{cluster=\"beta\"}") == 1);
    assert_true(wait_metric(h, "sparkscale_carbon_tcp_connections_closed_total{reason=\"source_not_allowed\"}",
                            1, 5000) == 1);
    json_t *root = get_json(h, "/v1/clusters");
    json_t *app = find_app(root, "alpha", "app-20261201120000-0001");
    assert_non_null(app);
    assert_true(app_gauge(app, "numberTargetExecutors") == 7);
    json_decref(root);
    assert_int_equal(harness_stop(h), 0);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_report_visible_in_clusters),
        cmocka_unit_test(test_split_lines_across_writes),
        cmocka_unit_test(test_garbage_is_counted_and_dropped),
        cmocka_unit_test(test_udp_one_and_many_lines_per_datagram),
        cmocka_unit_test(test_stalled_client_does_not_block_others),
        cmocka_unit_test(test_many_clients_thousands_of_lines),
        cmocka_unit_test(test_max_clients),
        cmocka_unit_test(test_accept_survives_nomem),
        cmocka_unit_test(test_tcp_lockout),
        cmocka_unit_test(test_allowed_sources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
