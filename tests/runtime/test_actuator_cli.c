/* test_actuator_cli.c: the sparkscale-actuator binary's command line and
 * process behaviour: --help, --version, bad arguments, --check-config
 * (secrets masked) and bad files (file:line:col: key), kafka.brokers
 * embedded (the bootstrap asked from a real sparkscaled, retried until it
 * is up; then a carbon line moves a decision to the exec backend), a clean
 * SIGTERM waiting for the action in flight, and a second signal exiting at
 * once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "actuator_harness.h"
#include "harness.h"

/* Runs the binary with args; returns its exit status, output in *out. */
static int run(const char *const *args, char **out)
{
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/run.out", ah_dir);
    ah_write_file(log, "", 0644);
    const char *argv[16] = { ah_actuator_bin() };
    size_t n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = ah_spawn(argv, log);
    int st;
    waitpid(pid, &st, 0);
    *out = ah_read_file(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void cfg_file(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", ah_dir, name);
    ah_write_file(path, text, 0644);
}

static void test_usage(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run((const char *[]){ "--help", NULL }, &out), 0);
    assert_non_null(strstr(out, "usage: sparkscale-actuator"));
    assert_non_null(strstr(out, "a second signal exits at once"));
    free(out);
    assert_int_equal(run((const char *[]){ "-V", NULL }, &out), 0);
    assert_non_null(strstr(out, "sparkscale-actuator 0."));
    free(out);
    assert_int_equal(run((const char *[]){ "--bogus", NULL }, &out), 2);
    free(out);
    assert_int_equal(run((const char *[]){ "extra", NULL }, &out), 2);
    assert_non_null(strstr(out, "unexpected argument"));
    free(out);
}

static void test_check_config(void **state)
{
    (void)state;
    char p[PATH_MAX], *out;
    cfg_file("ok.yaml",
             "actuator:\n  id: a-1\n  http_client: { username: u, password: hunter2 }\n"
             "clusters:\n  - name: alpha\n    spark_master: \"http://m:8080\"\n"
             "    target: { kind: oshinko, url: \"http://o:8080\", allow_blind_scale_in: true }\n",
             p, sizeof p);
    assert_int_equal(run((const char *[]){ "--check-config", "--config", p, NULL }, &out), 0);
    assert_non_null(strstr(out, "is valid"));
    assert_non_null(strstr(out, "password: \"******\""));
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "kind: oshinko"));
    assert_non_null(strstr(out, "allow_blind_scale_in: true"));
    assert_non_null(strstr(out, "group: \"sparkscale-actuators\""));
    free(out);

    cfg_file("bad.yaml", "actuator:\n  max_attempts: 99\nclusters:\n  - name: a\n", p, sizeof p);
    assert_int_equal(run((const char *[]){ "--config", p, NULL }, &out), 1);
    assert_non_null(strstr(out, "bad.yaml:2:17: actuator.max_attempts: must be between 1 and 20"));
    free(out);
    cfg_file("bad2.yaml", "clusters:\n  - name: a\n    target: { kind: exec }\n", p, sizeof p);
    assert_int_equal(run((const char *[]){ "--check-config", "--config", p, NULL }, &out), 1);
    assert_non_null(strstr(out, "bad2.yaml:3:13: clusters[0].target.command"));
    free(out);
    assert_int_equal(run((const char *[]){ "--config", "/nonexistent/x.yaml", NULL }, &out), 1);
    assert_non_null(strstr(out, "cannot open"));
    free(out);
}

static int free_port(void)
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

/* One file for both daemons: the actuator waits for sparkscaled, asks it
 * for the embedded Kafka, and applies the decision a carbon line caused. */
static void test_embedded_with_sparkscaled(void **state)
{
    (void)state;
    int port = free_port();
    char yaml[8192], p[PATH_MAX], st[300];
    snprintf(st, sizeof st, "%s/e1.state", ah_dir);
    ah_write_file(st, "1\n", 0644);
    snprintf(yaml, sizeof yaml,
             "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:%d\" }\n"
             "kafka:\n  brokers: embedded\n"
             "  properties: { session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\" }\n"
             "actuator: { http: \"127.0.0.1:0\", id: emb }\n"
             "log_level: info\n"
             "clusters:\n  - name: e1\n"
             "    worker: { cores: 4, memory_mb: 8192 }\n    executor: { cores: 2, memory_mb: 4096 }\n"
             "    policy: { min_workers: 1, max_workers: 20, idle_workers: 1 }\n"
             "    target:\n      kind: exec\n"
             "      command: [\"%s/scale.sh\", \"%s/e1.log\", \"%s\"]\n"
             "      size_command: [\"%s/size.sh\", \"%s\"]\n",
             port, ah_dir, ah_dir, st, ah_dir, st);
    cfg_file("emb.yaml", yaml, p, sizeof p);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/emb.log", ah_dir);
    ah_proc a;
    assert_int_equal(ah_proc_start(&a, p, log), 0);
    assert_true(ah_log_wait(log, "waiting for sparkscaled at http://127.0.0.1:", 10000));

    harness h;
    if (harness_start(&h, yaml) != 0)
        fail_msg("sparkscaled: %s", h.err);
    char want[600];
    snprintf(want, sizeof want, "sparkscaled's Kafka is at %s", h.bootstrap);
    assert_true(ah_log_wait(log, want, 10000));
    assert_true(ah_proc_port(&a, 5000) > 0);
    assert_true(ah_wait_metric(a.port, "sparkscale_actuator_assigned_partitions", 4, 20000) >= 4);

    /* Demand of 8 executors of 2 cores on 4-core workers: 4 workers + 1 idle. */
    char line[256];
    snprintf(line, sizeof line,
             "e1.app-20261201000000-0001.driver.ExecutorAllocationManager.executors."
             "numberTargetExecutors 8 %lld\n",
             (long long)(ss_wall_ms() / 1000));
    assert_int_equal(tcp_send(&h, line, strlen(line)), 0);
    char elog[PATH_MAX];
    snprintf(elog, sizeof elog, "%s/e1.log", ah_dir);
    assert_true(ah_log_wait(elog, "emb e1 cur=1 want=5", 20000));
    assert_true(ah_wait_metric(a.port, "sparkscale_actuator_decisions_total{outcome=\"applied\"}", 1, 10000) >= 1);

    /* The audit, read committed from sparkscaled's Kafka. */
    ah_audits A;
    const char *topics[] = { "sparkscale.audit" };
    char err[512];
    memset(&A, 0, sizeof A);
    assert_int_equal(ss_bus_reader_open(h.bootstrap, topics, 1, 1, NULL, 0, 5000, &A.r, err, sizeof err), 0);
    const ss_actuation_result *r = ah_audit_wait(&A, "e1", 1, 10000);
    assert_non_null(r);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(r->replicas_after, 5);
    ah_audits_close(&A);

    assert_int_equal(ah_proc_signal_wait(&a, SIGTERM, 20000), 0);
    char *out = ah_read_file(log);
    assert_non_null(strstr(out, "left group"));
    free(out);
    assert_int_equal(harness_stop(&h), 0);
}

/* SIGTERM waits for the resize in flight, commits its audit, exits 0; a
 * second signal exits at once. */
static void test_signals(void **state)
{
    (void)state;
    ah_kafka K;
    ah_kafka_start(&K);
    char yaml[2048], p[PATH_MAX];
    snprintf(yaml, sizeof yaml,
             "ingest: { carbon_tcp: \"off\", carbon_udp: \"off\", http: \"off\" }\n"
             "kafka:\n  brokers: \"%s\"\n"
             "  properties: { session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\" }\n"
             "actuator: { http: \"127.0.0.1:0\", id: sig }\nlog_level: info\n"
             "clusters:\n  - name: s1\n    target:\n      kind: exec\n"
             "      command: [\"%s/scale.sh\", \"%s/s1.log\", \"%s/s1.state\", \"2\"]\n",
             ah_bootstrap(&K), ah_dir, ah_dir, ah_dir);
    cfg_file("sig.yaml", yaml, p, sizeof p);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/sig.log", ah_dir);
    ah_proc a;
    assert_int_equal(ah_proc_start(&a, p, log), 0);
    assert_true(ah_proc_port(&a, 10000) > 0);
    assert_true(ah_wait_metric(a.port, "sparkscale_actuator_assigned_partitions", 4, 20000) >= 4);
    ah_publish(&K, &(ah_dec){ .cluster = "s1", .seq = 1, .desired = 3, .current = 1 });
    assert_true(ah_wait_stage(a.port, "s1", "call", 10000));
    int64_t t0 = ss_mono_us();
    assert_int_equal(ah_proc_signal_wait(&a, SIGTERM, 20000), 0);
    assert_true(ss_mono_us() - t0 > 500000);   /* it waited for the 2 s command */
    ah_audits A;
    ah_audits_open(&A, &K);
    const ss_actuation_result *r = ah_audit_wait(&A, "s1", 1, 10000);
    assert_non_null(r);
    assert_int_equal(r->outcome, SS_OUTCOME_APPLIED);
    ah_audits_close(&A);

    /* Again, and a second signal while it waits: out at once, status 1. */
    assert_int_equal(ah_proc_start(&a, p, log), 0);
    assert_true(ah_proc_port(&a, 10000) > 0);
    assert_true(ah_wait_metric(a.port, "sparkscale_actuator_assigned_partitions", 4, 30000) >= 4);
    ah_publish(&K, &(ah_dec){ .cluster = "s1", .seq = 2, .desired = 5, .current = 3 });
    assert_true(ah_wait_stage(a.port, "s1", "call", 10000));
    kill(a.pid, SIGTERM);
    usleep(200000);
    t0 = ss_mono_us();
    assert_int_equal(ah_proc_signal_wait(&a, SIGINT, 5000), 1);
    assert_true(ss_mono_us() - t0 < 1000000);
    char *out = ah_read_file(log);
    assert_non_null(strstr(out, "second signal"));
    free(out);
    ah_kafka_stop(&K);
}

static int setup(void **state)
{
    (void)state;
    ss_log_set_level(getenv("SS_TEST_DEBUG") ? SS_LOG_DEBUG : SS_LOG_WARN);
    ah_make_dir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ah_remove_dir();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_check_config),
        cmocka_unit_test(test_embedded_with_sparkscaled),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
