/* test_actuator_proc.c: the sparkscale-actuator binary as child processes
 * against librdkafka's mock cluster in this process: kill -9 before the
 * backend call, after it, and before the commit (the mock holds a
 * transactional request), then at random moments under load; exactly one
 * audit record per decision afterwards. Two actuators in one group with a
 * rebalance mid-stream and a clean SIGTERM: every cluster handled, none by
 * two actuators at once. With SS_TEST_KAFKA=host:port the tests that need no
 * mock run against that real broker (tests/kafka/run_actuator_kafka.sh):
 * there aborted transactions stay invisible and offsets are kept in them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "actuator_harness.h"

#define WAIT_MS 30000
/* Kafka protocol request types the mock delays. */
#define API_ADD_PARTITIONS_TO_TXN 24
#define API_END_TXN 26

static ah_kafka K;
static ah_audits A;
static ah_proc *g_procs[8];
static size_t g_nprocs;

static void path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", ah_dir, name);
}

static void write_config(const char *file, const char *id, const char *group, const char *const *clusters,
                         size_t n, int with_size, const char *nap)
{
    char y[16384];
    int k = snprintf(y, sizeof y,
                     "ingest: { carbon_tcp: \"off\", carbon_udp: \"off\", http: \"off\" }\n"
                     "kafka:\n  brokers: \"%s\"\n  decisions_topic: %s\n  audit_topic: %s\n"
                     "  properties: { session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\" }\n"
                     "actuator: { http: \"127.0.0.1:0\", id: %s, group: %s, call_timeout_ms: 2000 }\n"
                     "log_level: %s\nclusters:\n",
                     ah_bootstrap(&K), ah_dtopic, ah_atopic, id, group,
                     getenv("SS_TEST_ACTUATOR_LOG") ? getenv("SS_TEST_ACTUATOR_LOG") : "info");
    for (size_t i = 0; i < n; i++) {
        const char *c = clusters[i];
        k += snprintf(y + k, sizeof y - (size_t)k,
                      "  - name: %s\n    target:\n      kind: exec\n"
                      "      command: [\"%s/scale.sh\", \"%s/%s.log\", \"%s/%s.state\", \"%s\"]\n"
                      "      timeout_s: 10\n",
                      c, ah_dir, ah_dir, c, ah_dir, c, nap);
        if (with_size)
            k += snprintf(y + k, sizeof y - (size_t)k,
                          "      size_command: [\"%s/size.sh\", \"%s/%s.state\", \"%s/%s.nap\"]\n", ah_dir,
                          ah_dir, c, ah_dir, c);
    }
    char p[PATH_MAX];
    path(p, sizeof p, file);
    ah_write_file(p, y, 0644);
}

static int state_of(const char *cluster)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s.state", ah_dir, cluster);
    char *s = ah_read_file(p);
    int n = s ? atoi(s) : -1;
    free(s);
    return n;
}

static void start(ah_proc *p, const char *cfg, const char *log)
{
    char c[PATH_MAX], l[PATH_MAX];
    path(c, sizeof c, cfg);
    path(l, sizeof l, log);
    assert_int_equal(ah_proc_start(p, c, l), 0);
    size_t i = 0;
    while (i < g_nprocs && g_procs[i] != p)
        i++;
    if (i == g_nprocs && g_nprocs < 8)
        g_procs[g_nprocs++] = p;
    assert_true(ah_proc_port(p, 10000) > 0);
}

/* Waits until the member owns n partitions. */
static void owns(ah_proc *p, int n)
{
    if (ah_wait_metric(p->port, "sparkscale_actuator_assigned_partitions", n, WAIT_MS) < n) {
        char *log = ah_read_file(p->log);
        fail_msg("%s did not get %d partitions; its log:\n%s", p->log, n, log ? log : "");
    }
}

static int group_setup(void **state)
{
    (void)state;
    ss_log_set_level(getenv("SS_TEST_DEBUG") ? SS_LOG_DEBUG : SS_LOG_WARN);
    ah_make_dir();
    return 0;
}

/* Each test has a Kafka of its own: members of other tests' groups would
 * read its decisions too. */
static int test_setup(void **state)
{
    (void)state;
    ah_kafka_start(&K);
    ah_audits_open(&A, &K);
    g_nprocs = 0;
    return 0;
}

/* Runs after a failed test too: no child outlives it. */
static int test_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_nprocs; i++)
        if (g_procs[i]->pid > 0)
            ah_proc_kill9(g_procs[i]);
    g_nprocs = 0;
    ah_audits_close(&A);
    ah_kafka_stop(&K);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!getenv("SS_TEST_KEEP"))
        ah_remove_dir();
    else
        fprintf(stderr, "kept %s\n", ah_dir);
    return 0;
}

static const ss_actuation_result *audit(const char *cluster, uint64_t seq)
{
    const ss_actuation_result *r = ah_audit_wait(&A, cluster, seq, WAIT_MS);
    if (!r)
        fail_msg("no audit record for %s #%llu", cluster, (unsigned long long)seq);
    return r;
}

static int starts(const char *cluster)
{
    char *log = ah_exec_log(cluster);
    int n = ah_count(log, "start ");
    free(log);
    return n;
}

/* kill -9 before the call, after it, and before the commit. */
static void test_kill9_stages(void **state)
{
    (void)state;
    const char *cl[] = { "k1", "k2", "k3" };
    write_config("crash.yaml", "crash", "g-crash", cl, 3, 1, "0");
    rd_kafka_mock_cluster_t *mc = ss_kafka_mock_cluster(K.mock);
    /* One transaction coordinator, so a delay lands on the right broker. */
    assert_int_equal(rd_kafka_mock_coordinator_set(mc, "transaction", "sparkscale-actuator-crash", 1), 0);
    ah_proc p;
    start(&p, "crash.yaml", "crash-1.log");
    owns(&p, 4);

    /* 1. Before the call: the size read hangs 3 s, killed there. */
    char nap[PATH_MAX];
    path(nap, sizeof nap, "k1.nap");
    ah_write_file(nap, "3\n", 0644);
    ah_publish(&K, &(ah_dec){ .cluster = "k1", .seq = 1, .desired = 3, .current = 1 });
    assert_true(ah_wait_stage(p.port, "k1", "read_size", 10000));
    ah_proc_kill9(&p);
    unlink(nap);
    assert_int_equal(starts("k1"), 0);
    start(&p, "crash.yaml", "crash-2.log");
    assert_int_equal(audit("k1", 1)->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(state_of("k1"), 3);
    assert_int_equal(starts("k1"), 1);

    /* 2. After the call, before its audit is written: the transaction's
     * first request hangs 3 s. The decision is handled again; setting the
     * size is idempotent: the size read shows it done, nothing is run twice. */
    owns(&p, 4);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mc, 1, API_ADD_PARTITIONS_TO_TXN, 1,
                                                                  RD_KAFKA_RESP_ERR_NO_ERROR, 3000),
                     0);
    ah_publish(&K, &(ah_dec){ .cluster = "k2", .seq = 1, .desired = 4, .current = 1 });
    char log[PATH_MAX];
    path(log, sizeof log, "k2.log");
    assert_true(ah_log_wait(log, "end ", 10000));
    usleep(300000);
    ah_audits_poll(&A, 200);
    assert_int_equal(ah_audit_count(&A, "k2", 1), 0);
    ah_proc_kill9(&p);
    start(&p, "crash.yaml", "crash-3.log");
    const ss_actuation_result *r2 = audit("k2", 1);
    assert_int_equal(r2->outcome, SS_OUTCOME_APPLIED);
    assert_non_null(strstr(r2->note, "already at 4"));
    assert_int_equal(state_of("k2"), 4);
    assert_int_equal(starts("k2"), 1);

    /* 3. Before the commit: the audit record is written, the commit hangs
     * 6 s. The mock shows uncommitted records (a real broker would not, and
     * the decision would be applied again): either way one record stays.
     * The audit record is visible a moment before the commit starts (and on
     * a busy machine reading it back can take seconds): wait for the commit
     * in flight rather than look once. k2's audit is visible before its
     * own commit, too: the delay must not go to that one. */
    owns(&p, 4);
    assert_true(ah_wait_metric(p.port, "sparkscale_actuator_audit_records_committed_total", 1,
                               10000) >= 1);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mc, 1, API_END_TXN, 1,
                                                                  RD_KAFKA_RESP_ERR_NO_ERROR, 6000),
                     0);
    ah_publish(&K, &(ah_dec){ .cluster = "k3", .seq = 1, .desired = 2, .current = 1 });
    audit("k3", 1);
    assert_true(ah_wait_metric(p.port, "sparkscale_actuator_commits_in_flight", 1, 4000) == 1);
    ah_proc_kill9(&p);
    start(&p, "crash.yaml", "crash-4.log");
    /* A later decision of the same cluster proves the restarted one caught up. */
    ah_publish(&K, &(ah_dec){ .cluster = "k3", .seq = 2, .desired = 5, .current = 2 });
    assert_int_equal(audit("k3", 2)->outcome, SS_OUTCOME_APPLIED);
    assert_int_equal(state_of("k3"), 5);
    ah_audits_poll(&A, 500);
    assert_int_equal(ah_audit_count(&A, "k1", 1), 1);
    assert_int_equal(ah_audit_count(&A, "k2", 1), 1);
    assert_int_equal(ah_audit_count(&A, "k3", 1), 1);
    assert_true(ah_metric(p.port, "sparkscale_actuator_decisions_recovered_total") >= 1);
    assert_int_equal(ah_proc_signal_wait(&p, SIGTERM, 20000), 0);
    assert_int_equal(ah_audit_dups(&A), 0);
}

/* Bursts of decisions over 6 clusters, kill -9 at random moments, restart:
 * every decision ends with exactly one audit record. */
static void test_kill9_random(void **state)
{
    (void)state;
    const char *cl[] = { "z0", "z1", "z2", "z3", "z4", "z5" };
    write_config("rand.yaml", "rand", "g-rand", cl, 6, 0, "0.05");
    ah_proc p;
    start(&p, "rand.yaml", "rand-0.log");
    owns(&p, 4);
    size_t before = A.n;
    int published = 0;
    uint64_t seq[6] = { 0 };
    srand(12345);
    for (int round = 0; round < 4; round++) {
        /* Killed while it works: it owns the partitions first. */
        owns(&p, 4);
        for (int i = 0; i < 12; i++) {
            int c = rand() % 6;
            ah_publish(&K, &(ah_dec){ .cluster = cl[c], .seq = ++seq[c], .desired = 1 + rand() % 6,
                                      .current = 1 });
            published++;
        }
        /* ... and has started on them: then a random moment of its work. */
        assert_true(ah_wait_metric(p.port, "sparkscale_actuator_decisions_consumed_total", 1, WAIT_MS) >= 1);
        usleep((useconds_t)(rand() % 300) * 1000);
        ah_proc_kill9(&p);
        char lname[32];
        snprintf(lname, sizeof lname, "rand-%d.log", round + 1);
        start(&p, "rand.yaml", lname);
    }
    owns(&p, 4);
    for (int c = 0; c < 6; c++)
        for (uint64_t s = 1; s <= seq[c]; s++)
            audit(cl[c], s);
    ah_audits_poll(&A, 1000);
    assert_int_equal((int)(A.n - before), published);
    assert_int_equal(ah_audit_dups(&A), 0);
    assert_int_equal(ah_proc_signal_wait(&p, SIGTERM, 20000), 0);
}

typedef struct interval {
    long long start, end;
    char who[64];
} interval;

/* No two calls for one cluster overlap, whoever made them. */
static int overlaps(const char *cluster, int *nactors)
{
    char *log = ah_exec_log(cluster);
    interval iv[512];
    int n = 0, bad = 0;
    char who[2][64] = { "", "" };
    *nactors = 0;
    for (char *line = strtok(log, "\n"); line && n < 512; line = strtok(NULL, "\n")) {
        long long t;
        char a[64], c[64];
        if (sscanf(line, "start %lld %63s %63s", &t, a, c) == 3) {
            iv[n].start = t;
            iv[n].end = -1;
            snprintf(iv[n].who, sizeof iv[n].who, "%s", a);
            n++;
            if (strcmp(who[0], a) && strcmp(who[1], a))
                snprintf(who[(*nactors)++ % 2], 64, "%s", a);
        } else if (sscanf(line, "end %lld %63s %63s", &t, a, c) == 3) {
            for (int i = n - 1; i >= 0; i--)
                if (iv[i].end < 0 && strcmp(iv[i].who, a) == 0) {
                    iv[i].end = t;
                    break;
                }
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (iv[i].end < 0 || iv[j].end < 0 ||
                (iv[i].start < iv[j].end && iv[j].start < iv[i].end)) {
                fprintf(stderr, "%s: calls overlap: %s [%lld, %lld] and %s [%lld, %lld]\n", cluster,
                        iv[i].who, iv[i].start, iv[i].end, iv[j].who, iv[j].start, iv[j].end);
                bad++;
            }
    free(log);
    return bad;
}

/* Two members of one group, a rebalance mid-stream, then the first stops. */
static void test_two_actuators(void **state)
{
    (void)state;
    enum { NC = 12 };
    const char *cl[NC] = { "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11" };
    write_config("a1.yaml", "a1", "g-two", cl, NC, 0, "0.2");
    write_config("a2.yaml", "a2", "g-two", cl, NC, 0, "0.2");
    size_t before = A.n;
    ah_proc a1, a2;
    start(&a1, "a1.yaml", "a1.log");
    owns(&a1, 4);
    int published = 0, last[NC] = { 0 };
    uint64_t seq = 0;
    for (int round = 1; round <= 12; round++) {
        seq++;
        for (int c = 0; c < NC; c++) {
            last[c] = 1 + (round * 7 + c) % 9;
            ah_publish(&K, &(ah_dec){ .cluster = cl[c], .seq = seq, .desired = last[c], .current = 1 });
            published++;
        }
        if (round == 3)
            start(&a2, "a2.yaml", "a2.log");
        if (round == 8) {
            /* a2 must own some partitions before a1 goes. */
            assert_true(ah_wait_metric(a2.port, "sparkscale_actuator_assigned_partitions", 1, WAIT_MS) >= 1);
            assert_int_equal(ah_proc_signal_wait(&a1, SIGTERM, 30000), 0);
        }
        usleep(300000);
    }
    owns(&a2, 4);
    for (int c = 0; c < NC; c++)
        for (uint64_t s = 1; s <= seq; s++)
            audit(cl[c], s);
    ah_audits_poll(&A, 1000);
    assert_int_equal((int)(A.n - before), published);
    assert_int_equal(ah_audit_dups(&A), 0);
    /* Both worked; every cluster reached its last size; never two at once. */
    int by_a1 = 0, by_a2 = 0;
    for (size_t i = before; i < A.n; i++) {
        by_a1 += strcmp(A.res[i]->actuator_id, "a1") == 0;
        by_a2 += strcmp(A.res[i]->actuator_id, "a2") == 0;
    }
    assert_true(by_a1 > 0 && by_a2 > 0);
    int bad = 0, moved = 0;
    for (int c = 0; c < NC; c++) {
        int nact;
        assert_int_equal(state_of(cl[c]), last[c]);
        bad += overlaps(cl[c], &nact);
        moved += nact > 1;
    }
    assert_int_equal(bad, 0);
    assert_true(moved > 0);   /* some clusters changed hands */
    assert_int_equal(ah_proc_signal_wait(&a2, SIGTERM, 30000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: it holds requests in librdkafka's mock, so a real broker
         * (SS_TEST_KAFKA) runs only the two after it; nothing is skipped. */
        cmocka_unit_test_setup_teardown(test_kill9_stages, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_random, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_two_actuators, test_setup, test_teardown),
    };
    size_t n = sizeof tests / sizeof tests[0], first = ah_real_kafka() ? 1 : 0;
    return _cmocka_run_group_tests("test_actuator_proc", tests + first, n - first, group_setup,
                                   group_teardown);
}
