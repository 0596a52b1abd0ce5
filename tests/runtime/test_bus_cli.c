/* test_bus_cli.c: the sparkscalectl binary against the embedded Kafka of a
 * bus in this process: decoded output, malformed records, exit codes, --follow. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include "lib/bus/producer.h"
#include "lib/bus/reader.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#include "bus_harness.h"

typedef bus_harness harness;

/* where the bad records went */
static int32_t g_bad_partition[2];
static int64_t g_bad_offset[2];
static int g_nbad;

static char g_ctl[PATH_MAX];

static void find_ctl(void)
{
    const char *dir = getenv("SS_BUILD_DIR");
    if (dir) {
        snprintf(g_ctl, sizeof g_ctl, "%s/tools/sparkscalectl/sparkscalectl", dir);
        return;
    }
    /* Run by hand from the build tree: tests/test_bus_cli -> ../tools/sparkscalectl/sparkscalectl */
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(g_ctl, sizeof g_ctl, "%s/../tools/sparkscalectl/sparkscalectl", self);
}

#define run_until bh_run_until
#define nothing_pending bh_nothing_pending
#define is_closed bh_is_closed

static void publish(harness *h, const char *cluster, int current, int desired, const char *reason)
{
    ss_decision d;
    memset(&d, 0, sizeof d);
    snprintf(d.cluster, sizeof d.cluster, "%s", cluster);
    d.current_workers = current;
    d.busy_workers = 2;
    d.desired_workers = desired;
    d.recommended_workers = desired;
    d.executors_per_worker = 2;
    snprintf(d.reason, sizeof d.reason, "%s", reason);
    d.reason_code = SS_REASON_UP;
    assert_int_equal(bh_publish(h, &d, NULL), 0);
}

static void result(harness *h, const char *cluster, uint64_t seq, int before, int after)
{
    ss_actuation_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.cluster, sizeof r.cluster, "%s", cluster);
    r.decision_epoch = 1;
    r.decision_sequence = seq;
    r.outcome = SS_OUTCOME_APPLIED;
    r.replicas_before = before;
    r.replicas_after = after;
    r.handled_at_ms = ss_wall_ms();
    strcpy(r.actuator_id, "act-test");
    strcpy(r.backend, "kubernetes");
    assert_int_equal(ss_bus_produce_audit(h->bus, &r), 0);
}

static void raw_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    assert_int_equal(m->err, 0);
    g_bad_partition[g_nbad] = m->partition;
    g_bad_offset[g_nbad] = m->offset;
    g_nbad++;
}

/* Writes bytes that are not a ScaleDecision with an ordinary producer. */
static void produce_garbage(harness *h)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", ss_bus_bootstrap(h->bus), e, sizeof e), 0);
    rd_kafka_conf_set_opaque(conf, h);
    rd_kafka_conf_set_dr_msg_cb(conf, raw_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    assert_non_null(rk);
    /* Field 2 (cluster) claims 127 bytes and has 7. */
    static const char bad1[] = "\x12\x7fgarbage";
    /* Valid protobuf, but no cluster: not a decision either. */
    static const char bad2[] = "\x08\x01";
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("sparkscale.decisions"), RD_KAFKA_V_KEY("alpha", 5),
                                       RD_KAFKA_V_VALUE((void *)bad1, sizeof bad1 - 1),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("sparkscale.decisions"), RD_KAFKA_V_KEY("beta", 4),
                                       RD_KAFKA_V_VALUE((void *)bad2, sizeof bad2 - 1),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_poll(rk, 0);
    assert_int_equal(g_nbad, 2);
    rd_kafka_destroy(rk);
}

typedef struct run_out {
    char out[65536];
    size_t outlen;
    char err[8192];
    size_t errlen;
    int status;
} run_out;

static pid_t spawn(const char *const *argv, int *out_fd, int *err_fd)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    *out_fd = po[0];
    *err_fd = pe[0];
    return pid;
}

/* Runs sparkscalectl to completion (the mock brokers run on their own threads). */
static void run_ctl(const char *const *argv, run_out *r)
{
    int fo, fe;
    memset(r, 0, sizeof *r);
    pid_t pid = spawn(argv, &fo, &fe);
    struct pollfd p[2] = { { fo, POLLIN, 0 }, { fe, POLLIN, 0 } };
    int open_fds = 2;
    while (open_fds > 0) {
        assert_true(poll(p, 2, 30000) > 0);
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *buf = i == 0 ? r->out : r->err;
            size_t *len = i == 0 ? &r->outlen : &r->errlen;
            size_t cap = i == 0 ? sizeof r->out : sizeof r->err;
            ssize_t n = read(p[i].fd, buf + *len, cap - 1 - *len);
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            } else {
                *len += (size_t)n;
                buf[*len] = '\0';
            }
        }
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    r->status = WEXITSTATUS(st);
}


static int setup(void **state)
{
    harness *h = calloc(1, sizeof *h);
    bh_init(h, "embedded");
    h->conf.max_pending = 1000;
    bh_start(h);

    publish(h, "alpha", 5, 8, "demand 14 executors: \"up\"");
    publish(h, "beta", 3, 4, "beta grows");
    publish(h, "alpha", 8, 9, "alpha again");
    result(h, "alpha", 1, 5, 8);
    assert_true(run_until(h, nothing_pending, 10000));
    produce_garbage(h);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    harness *h = *state;
    bh_close(h, 5000);
    free(h);
    return 0;
}

/* --json: every good record decoded, each bad one reported with topic,
 * partition and offset, reading goes on, exit 0. */
static void test_json_reports_bad_records(void **state)
{
    harness *h = *state;
    const char *argv[] = { g_ctl, "audit", "--brokers", ss_bus_bootstrap(h->bus), "--json", NULL };
    run_out r;
    run_ctl(argv, &r);
    assert_int_equal(r.status, 0);
    int decisions = 0, results = 0, errors = 0, alpha_seen = 0;
    int matched_bad[2] = { 0, 0 };
    char *save = NULL;
    for (char *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            fail_msg("not JSON: %s", line);
        const char *type = json_string_value(json_object_get(o, "type"));
        assert_non_null(type);
        if (strcmp(type, "decision") == 0) {
            decisions++;
            const char *cluster = json_string_value(json_object_get(o, "cluster"));
            assert_string_equal(json_string_value(json_object_get(o, "key")), cluster);
            if (strcmp(cluster, "alpha") == 0 && json_integer_value(json_object_get(o, "sequence")) == 1) {
                alpha_seen = 1;
                assert_int_equal(json_integer_value(json_object_get(o, "desired_workers")), 8);
                assert_int_equal(json_integer_value(json_object_get(o, "current_workers")), 5);
                assert_string_equal(json_string_value(json_object_get(o, "reason")), "demand 14 executors: \"up\"");
                assert_string_equal(json_string_value(json_object_get(o, "reason_code")), "UP");
                assert_true(json_is_false(json_object_get(o, "dry_run")));
            }
        } else if (strcmp(type, "result") == 0) {
            results++;
            assert_string_equal(json_string_value(json_object_get(o, "outcome")), "APPLIED");
            assert_int_equal(json_integer_value(json_object_get(o, "replicas_after")), 8);
            assert_string_equal(json_string_value(json_object_get(o, "backend")), "kubernetes");
        } else if (strcmp(type, "error") == 0) {
            errors++;
            assert_string_equal(json_string_value(json_object_get(o, "topic")), "sparkscale.decisions");
            int32_t part = (int32_t)json_integer_value(json_object_get(o, "partition"));
            int64_t off = json_integer_value(json_object_get(o, "offset"));
            for (int i = 0; i < 2; i++)
                if (part == g_bad_partition[i] && off == g_bad_offset[i])
                    matched_bad[i] = 1;
            assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "ScaleDecision"));
        } else {
            fail_msg("unknown type %s", type);
        }
        json_decref(o);
    }
    assert_int_equal(decisions, 3);
    assert_int_equal(results, 1);
    assert_int_equal(errors, 2);
    assert_true(alpha_seen);
    assert_true(matched_bad[0] && matched_bad[1]);
    assert_non_null(strstr(r.err, "3 decisions, 1 results, 2 undecodable records"));
}

static void test_text_output(void **state)
{
    harness *h = *state;
    const char *argv[] = { g_ctl, "audit", "--brokers", ss_bus_bootstrap(h->bus), NULL };
    run_out r;
    run_ctl(argv, &r);
    if (getenv("SS_TEST_VERBOSE"))
        fprintf(stderr, "%s%s", r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Z decision alpha #1 epoch="));
    assert_non_null(strstr(r.out, " desired=8 current=5 busy=2 "));
    assert_non_null(strstr(r.out, "reason=\"demand 14 executors: \\\"up\\\"\""));
    assert_non_null(strstr(r.out, "decision alpha #2 "));
    assert_non_null(strstr(r.out, "decision beta #1 "));
    assert_non_null(strstr(r.out, "Z result alpha #1 APPLIED 5->8 "));
    char want[128];
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof want, "ERROR sparkscale.decisions[%d]@%lld: cannot decode ScaleDecision",
                 (int)g_bad_partition[i], (long long)g_bad_offset[i]);
        assert_non_null(strstr(r.out, want));
    }
    /* One record, one line. */
    int lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
}

static void test_exit_codes(void **state)
{
    harness *h = *state;
    run_out r;
    const char *strict[] = { g_ctl, "audit", "--brokers", ss_bus_bootstrap(h->bus), "--strict", NULL };
    run_ctl(strict, &r);
    assert_int_equal(r.status, 3);

    const char *no_brokers[] = { g_ctl, "audit", NULL };
    run_ctl(no_brokers, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage:"));
    const char *bad_opt[] = { g_ctl, "audit", "--brokers", "x:1", "--frobnicate", NULL };
    run_ctl(bad_opt, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--frobnicate"));
    const char *bad_cmd[] = { g_ctl, "nonsense", NULL };
    run_ctl(bad_cmd, &r);
    assert_int_equal(r.status, 2);
    const char *no_arg[] = { g_ctl, "audit", "--brokers", NULL };
    run_ctl(no_arg, &r);
    assert_int_equal(r.status, 2);
    const char *bad_wait[] = { g_ctl, "audit", "--brokers", "x:1", "--wait-s", "zero", NULL };
    run_ctl(bad_wait, &r);
    assert_int_equal(r.status, 2);
    const char *help[] = { g_ctl, "audit", "--help", NULL };
    run_ctl(help, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "exit status"));

    /* Nothing listens there: Kafka cannot be read, exit 1. */
    const char *dead[] = { g_ctl, "audit", "--brokers", "127.0.0.1:1", "--wait-s", "1", NULL };
    run_ctl(dead, &r);
    assert_int_equal(r.status, 1);
    /* A topic that does not exist is named. (The mock creates any topic asked
     * for; make it answer like a broker with auto-creation off.) */
    rd_kafka_mock_topic_set_error(ss_bus_mock_cluster(h->bus), "no.such.topic",
                                  RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    rd_kafka_mock_topic_set_error(ss_bus_mock_cluster(h->bus), "no.such.topic2",
                                  RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    /* One topic missing (no actuator ran yet): warned about, the other is read. */
    const char *one_missing[] = { g_ctl, "audit", "--brokers", ss_bus_bootstrap(h->bus), "--audit-topic",
                                  "no.such.topic", "--wait-s", "5", NULL };
    run_ctl(one_missing, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "no.such.topic"));
    assert_non_null(strstr(r.out, "decision alpha #1 "));
    assert_null(strstr(r.out, " result "));
    /* Neither exists: exit 1. */
    const char *missing[] = { g_ctl, "audit", "--brokers", ss_bus_bootstrap(h->bus), "--audit-topic", "no.such.topic",
                              "--decisions-topic", "no.such.topic2", "--wait-s", "5", NULL };
    run_ctl(missing, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no.such.topic"));
}

static int g_delivered_before;
static int one_more_delivered(harness *h)
{
    ss_bus_stats s;
    ss_bus_get_stats(h->bus, &s);
    return (int)s.delivered > g_delivered_before;
}

/* --follow prints what arrives after the end was reached; SIGINT ends it with 0. */
static void test_follow(void **state)
{
    harness *h = *state;
    const char *argv[] = { g_ctl, "audit", "--brokers", ss_bus_bootstrap(h->bus), "--follow", "--json", NULL };
    int fo, fe;
    pid_t pid = spawn(argv, &fo, &fe);
    char buf[65536];
    size_t len = 0;
    /* Wait for the existing records (6 lines), then publish a new one. */
    int64_t deadline = ss_mono_us() + 20000000;
    int lines = 0;
    while (lines < 6 && ss_mono_us() < deadline) {
        struct pollfd p = { fo, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(fo, buf + len, sizeof buf - 1 - len);
        assert_true(n > 0);
        for (ssize_t i = 0; i < n; i++)
            lines += buf[len + (size_t)i] == '\n';
        len += (size_t)n;
    }
    assert_int_equal(lines, 6);
    ss_bus_stats s;
    ss_bus_get_stats(h->bus, &s);
    g_delivered_before = (int)s.delivered;
    publish(h, "gamma", 1, 6, "late arrival");
    assert_true(run_until(h, one_more_delivered, 10000));
    buf[len] = '\0';
    while (!strstr(buf, "late arrival") && ss_mono_us() < deadline) {
        struct pollfd p = { fo, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(fo, buf + len, sizeof buf - 1 - len);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
    }
    assert_non_null(strstr(buf, "\"cluster\":\"gamma\""));
    assert_non_null(strstr(buf, "late arrival"));
    kill(pid, SIGINT);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(fo);
    close(fe);
}

int main(void)
{
    ss_log_set_level(getenv("SS_TEST_VERBOSE") ? SS_LOG_DEBUG : SS_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    find_ctl();
    if (access(g_ctl, X_OK) != 0) {
        fprintf(stderr, "test_bus_cli: %s not built\n", g_ctl);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reports_bad_records),
        cmocka_unit_test(test_text_output),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_follow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
