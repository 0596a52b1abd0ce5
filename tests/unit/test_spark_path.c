/* test_spark_path.c: Spark metric-path decoding: sources, gauges, counters,
 * dotted namespaces and prefixes, longest-prefix choice, 10,000 prefixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/carbon.h"
#include "carbon/spark_path.h"

#define EAM ".driver.ExecutorAllocationManager.executors."

enum { C_ALPHA = 0, C_BETA_PROD = 1, C_BETA = 2, C_TEAM = 3, C_EMPTY = 9 };

/* Two tables: without and with the "" prefix. */
static spark_prefixes *make_table(int with_empty)
{
    spark_prefixes *p = spark_prefixes_create(4);
    assert_non_null(p);
    assert_int_equal(spark_prefixes_add(p, "alpha", C_ALPHA), 0);
    assert_int_equal(spark_prefixes_add(p, "beta.prod", C_BETA_PROD), 0);
    assert_int_equal(spark_prefixes_add(p, "beta", C_BETA), 0);
    assert_int_equal(spark_prefixes_add(p, "team.x.y", C_TEAM), 0);
    if (with_empty)
        assert_int_equal(spark_prefixes_add(p, "", C_EMPTY), 0);
    return p;
}

typedef struct path_case {
    const char *path;
    int rc;
    spark_kind kind;
    int cluster;
    const char *app;     /* NULL: not checked (not an app path) */
    const char *name;
    int gauge;
    int is_counter;
} path_case;

#define SKIP(p) {p, SPARK_PATH_SKIP, SPARK_KIND_NONE, -1, NULL, NULL, 0, 0}

/* Against the table without "". */
static const path_case cases_no_empty[] = {
    /* Driver gauges, every known name. */
    {"alpha.app-20261121093000-0003" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP,
     C_ALPHA, "app-20261121093000-0003", "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha.app-1" EAM "numberExecutorsToAdd", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1",
     "numberExecutorsToAdd", SPARK_G_EXECUTORS_TO_ADD, 0},
    {"alpha.app-1" EAM "numberExecutorsPendingToRemove", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA,
     "app-1", "numberExecutorsPendingToRemove", SPARK_G_PENDING_TO_REMOVE, 0},
    {"alpha.app-1" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1",
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"alpha.app-1" EAM "numberMaxNeededExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1",
     "numberMaxNeededExecutors", SPARK_G_MAX_NEEDED_EXECUTORS, 0},
    {"alpha.app-1" EAM "numberDecommissioningExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA,
     "app-1", "numberDecommissioningExecutors", SPARK_G_DECOMMISSIONING, 0},
    /* Counters: ".count" suffix. */
    {"alpha.app-1" EAM "numberExecutorsGracefullyDecommissioned.count", SPARK_PATH_OK,
     SPARK_KIND_APP, C_ALPHA, "app-1", "numberExecutorsGracefullyDecommissioned",
     SPARK_G_GRACEFULLY_DECOMMISSIONED, 1},
    {"alpha.app-1" EAM "numberExecutorsDecommissionUnfinished.count", SPARK_PATH_OK,
     SPARK_KIND_APP, C_ALPHA, "app-1", "numberExecutorsDecommissionUnfinished",
     SPARK_G_DECOMMISSION_UNFINISHED, 1},
    {"alpha.app-1" EAM "numberExecutorsKilledByDriver.count", SPARK_PATH_OK, SPARK_KIND_APP,
     C_ALPHA, "app-1", "numberExecutorsKilledByDriver", SPARK_G_KILLED_BY_DRIVER, 1},
    {"alpha.app-1" EAM "numberExecutorsExitedUnexpectedly.count", SPARK_PATH_OK, SPARK_KIND_APP,
     C_ALPHA, "app-1", "numberExecutorsExitedUnexpectedly", SPARK_G_EXITED_UNEXPECTEDLY, 1},
    /* Unknown names under the source are kept. */
    {"alpha.app-1" EAM "numberFancyNewExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1",
     "numberFancyNewExecutors", SPARK_G_UNKNOWN, 0},
    {"alpha.app-1" EAM "numberFancyNewExecutors.count", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA,
     "app-1", "numberFancyNewExecutors", SPARK_G_UNKNOWN, 1},
    {"alpha.app-1" EAM "numbertargetexecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1",
     "numbertargetexecutors", SPARK_G_UNKNOWN, 0},
    /* A gauge literally named "count" under the source. */
    {"alpha.app-1" EAM "count", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1", "count",
     SPARK_G_UNKNOWN, 0},
    /* Dotted namespaces. */
    {"alpha.my.team.etl" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA,
     "my.team.etl", "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha.driver.x" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA,
     "driver.x", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"alpha.alpha" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "alpha",
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    /* Dotted prefixes and the longest-prefix rule. */
    {"beta.prod.app-7" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_BETA_PROD,
     "app-7", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"beta.prod.etl.nightly" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP,
     C_BETA_PROD, "etl.nightly", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"beta.dev.app-7" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_BETA,
     "dev.app-7", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    /* "beta.prod" would leave no namespace: the shorter prefix wins. */
    {"beta.prod" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_BETA, "prod",
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"betaprod.app-7" EAM "numberAllExecutors", SPARK_PATH_E_CLUSTER, SPARK_KIND_APP, -1, NULL,
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"team.x.y.z" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_TEAM, "z",
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"team.x.app" EAM "numberAllExecutors", SPARK_PATH_E_CLUSTER, SPARK_KIND_APP, -1, NULL,
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    /* A prefix must be followed by a namespace, not by an empty component. */
    {"alpha..app" EAM "numberAllExecutors", SPARK_PATH_E_CLUSTER, SPARK_KIND_APP, -1, NULL,
     "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"beta.prod..app" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_BETA,
     "prod..app", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    /* No prefix matches and "" is not registered. */
    {"gamma.app-1" EAM "numberTargetExecutors", SPARK_PATH_E_CLUSTER, SPARK_KIND_APP, -1, NULL,
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"app-1" EAM "numberTargetExecutors", SPARK_PATH_E_CLUSTER, SPARK_KIND_APP, -1, NULL,
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha" EAM "numberTargetExecutors", SPARK_PATH_E_CLUSTER, SPARK_KIND_APP, -1, NULL,
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    /* Shape errors: empty namespace or gauge. */
    {"driver.ExecutorAllocationManager.executors.numberTargetExecutors", SPARK_PATH_E_SHAPE,
     SPARK_KIND_APP, -1, NULL, "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {EAM "numberTargetExecutors", SPARK_PATH_E_SHAPE, SPARK_KIND_APP, -1, NULL,
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha." EAM "numberTargetExecutors", SPARK_PATH_E_SHAPE, SPARK_KIND_APP, -1, NULL,
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {".app-1" EAM "numberTargetExecutors", SPARK_PATH_E_SHAPE, SPARK_KIND_APP, -1, NULL,
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha.app-1" EAM, SPARK_PATH_E_SHAPE, SPARK_KIND_APP, -1, NULL, "", SPARK_G_UNKNOWN, 0},
    {"alpha.app-1" EAM ".count", SPARK_PATH_E_SHAPE, SPARK_KIND_APP, -1, NULL, "",
     SPARK_G_UNKNOWN, 1},
    /* Master and worker. */
    {"alpha.master.workers", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "workers",
     SPARK_G_MASTER_WORKERS, 0},
    {"alpha.master.aliveWorkers", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL,
     "aliveWorkers", SPARK_G_MASTER_ALIVE_WORKERS, 0},
    {"alpha.master.apps", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"alpha.master.waitingApps", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "waitingApps",
     SPARK_G_MASTER_WAITING_APPS, 0},
    {"alpha.master.deadWorkers", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "deadWorkers",
     SPARK_G_UNKNOWN, 0},
    {"alpha.master.executors", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "executors",
     SPARK_G_UNKNOWN, 0},
    {"beta.prod.master.apps", SPARK_PATH_OK, SPARK_KIND_MASTER, C_BETA_PROD, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"team.x.y.master.apps", SPARK_PATH_OK, SPARK_KIND_MASTER, C_TEAM, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"alpha.worker.executors", SPARK_PATH_OK, SPARK_KIND_WORKER, C_ALPHA, NULL, "executors",
     SPARK_G_WORKER_EXECUTORS, 0},
    {"alpha.worker.coresUsed", SPARK_PATH_OK, SPARK_KIND_WORKER, C_ALPHA, NULL, "coresUsed",
     SPARK_G_WORKER_CORES_USED, 0},
    {"alpha.worker.coresFree", SPARK_PATH_OK, SPARK_KIND_WORKER, C_ALPHA, NULL, "coresFree",
     SPARK_G_WORKER_CORES_FREE, 0},
    {"alpha.worker.memUsed_MB", SPARK_PATH_OK, SPARK_KIND_WORKER, C_ALPHA, NULL, "memUsed_MB",
     SPARK_G_WORKER_MEM_USED_MB, 0},
    {"alpha.worker.memFree_MB", SPARK_PATH_OK, SPARK_KIND_WORKER, C_ALPHA, NULL, "memFree_MB",
     SPARK_G_WORKER_MEM_FREE_MB, 0},
    {"beta.worker.workers", SPARK_PATH_OK, SPARK_KIND_WORKER, C_BETA, NULL, "workers",
     SPARK_G_UNKNOWN, 0},
    {"alpha.master.count", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "count",
     SPARK_G_UNKNOWN, 0},
    {"alpha.master.apps.count", SPARK_PATH_OK, SPARK_KIND_MASTER, C_ALPHA, NULL, "apps",
     SPARK_G_MASTER_APPS, 1},
    /* The master/worker prefix must match exactly. */
    {"beta.prod.x.master.apps", SPARK_PATH_E_CLUSTER, SPARK_KIND_MASTER, -1, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"gamma.master.apps", SPARK_PATH_E_CLUSTER, SPARK_KIND_MASTER, -1, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"master.apps", SPARK_PATH_E_CLUSTER, SPARK_KIND_MASTER, -1, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"worker.coresFree", SPARK_PATH_E_CLUSTER, SPARK_KIND_WORKER, -1, NULL, "coresFree",
     SPARK_G_WORKER_CORES_FREE, 0},
    {"alpha.master.", SPARK_PATH_E_SHAPE, SPARK_KIND_MASTER, -1, NULL, "", SPARK_G_UNKNOWN, 0},
    {".master.apps", SPARK_PATH_E_SHAPE, SPARK_KIND_MASTER, -1, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    /* Everything else Spark sends is skipped. */
    SKIP("app-20261121093000-0003.driver.BlockManager.memory.memUsed_MB"),
    SKIP("alpha.app-1.driver.BlockManager.memory.maxMem_MB"),
    SKIP("alpha.app-1.1.executor.bytesRead.count"),
    SKIP("alpha.app-1.driver.DAGScheduler.messageProcessingTime.p99"),
    SKIP("alpha.app-1.driver.DAGScheduler.messageProcessingTime.count"),
    SKIP("alpha.app-1.driver.ExecutorAllocationManager.executors"),
    SKIP("alpha.app-1.driver.ExecutorAllocationManager.numberTargetExecutors"),
    SKIP("alpha.app-1.driver.executors.numberTargetExecutors"),
    SKIP("alpha.app-1.driver.XExecutorAllocationManager.executors.numberTargetExecutors"),
    SKIP("alpha.app-1.executor.ExecutorAllocationManager.executors.numberTargetExecutors"),
    SKIP("alpha.app-1.driverExecutorAllocationManager.executors.numberTargetExecutors"),
    SKIP("Executors.numberTargetExecutors"),
    SKIP("executors.numberTargetExecutors"),
    SKIP("alpha.master.jvm.heap.used"),
    SKIP("master.jvm.heap.used"),
    SKIP("alpha.xmaster.workers"),
    SKIP("alpha.masters.workers"),
    SKIP("alpha.Master.workers"),
    SKIP("alpha.worke.coresFree"),
    SKIP("master"),
    SKIP("workers"),
    SKIP("count"),
    SKIP(".count"),
    SKIP(""),
    SKIP("."),
    SKIP(".."),
    SKIP("alpha.app-1.applications.x.count"),
};

/* Against the table with "" registered (cluster C_EMPTY). */
static const path_case cases_with_empty[] = {
    {"gamma.app-1" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_EMPTY,
     "gamma.app-1", "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"app-20261121093000-0003" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP,
     C_EMPTY, "app-20261121093000-0003", "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"my.team.etl" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_EMPTY,
     "my.team.etl", "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    /* A registered prefix still wins over "". */
    {"alpha.app-1" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_ALPHA, "app-1",
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha" EAM "numberTargetExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_EMPTY, "alpha",
     "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"team.x.app" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_EMPTY,
     "team.x.app", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"master.apps", SPARK_PATH_OK, SPARK_KIND_MASTER, C_EMPTY, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    {"worker.memFree_MB", SPARK_PATH_OK, SPARK_KIND_WORKER, C_EMPTY, NULL, "memFree_MB",
     SPARK_G_WORKER_MEM_FREE_MB, 0},
    /* "" does not stand in for an unknown master prefix. */
    {"gamma.master.apps", SPARK_PATH_E_CLUSTER, SPARK_KIND_MASTER, -1, NULL, "apps",
     SPARK_G_MASTER_APPS, 0},
    /* Shape errors stay shape errors. */
    {"driver.ExecutorAllocationManager.executors.numberTargetExecutors", SPARK_PATH_E_SHAPE,
     SPARK_KIND_APP, -1, NULL, "numberTargetExecutors", SPARK_G_TARGET_EXECUTORS, 0},
    {"alpha..app" EAM "numberAllExecutors", SPARK_PATH_OK, SPARK_KIND_APP, C_EMPTY,
     "alpha..app", "numberAllExecutors", SPARK_G_ALL_EXECUTORS, 0},
    {"gamma.." EAM "x", SPARK_PATH_E_SHAPE, SPARK_KIND_APP, -1, NULL, "x", SPARK_G_UNKNOWN, 0},
    SKIP("app-1.driver.BlockManager.memory.memUsed_MB"),
};

/* Decodes from an exact heap copy followed by nothing: a path is not
 * NUL-terminated in the daemon (it points into a carbon line). */
static void run_cases(const spark_prefixes *p, const path_case *cases, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const path_case *c = &cases[i];
        size_t len = strlen(c->path);
        char *buf = malloc(len ? len : 1);
        spark_metric m;
        int rc;

        assert_non_null(buf);
        memcpy(buf, c->path, len);
        memset(&m, 0x5a, sizeof(m));
        rc = spark_path_decode(p, buf, len, &m);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": rc %d, want %d", i, c->path, rc, c->rc);
        if (m.kind != c->kind)
            fail_msg("case %zu \"%s\": kind %d, want %d", i, c->path, m.kind, c->kind);
        if (rc != SPARK_PATH_SKIP) {
            if (m.cluster != c->cluster)
                fail_msg("case %zu \"%s\": cluster %d, want %d", i, c->path, m.cluster,
                         c->cluster);
            if (m.name_len != strlen(c->name) || memcmp(m.name, c->name, m.name_len) != 0)
                fail_msg("case %zu \"%s\": name \"%.*s\", want \"%s\"", i, c->path,
                         (int)m.name_len, m.name, c->name);
            assert_true(m.name >= buf && m.name + m.name_len <= buf + len);
            if (m.gauge != c->gauge)
                fail_msg("case %zu \"%s\": gauge %d, want %d", i, c->path, m.gauge, c->gauge);
            if (m.is_counter != c->is_counter)
                fail_msg("case %zu \"%s\": is_counter %d", i, c->path, m.is_counter);
        }
        if (c->app) {
            if (m.app_len != strlen(c->app) || memcmp(m.app, c->app, m.app_len) != 0)
                fail_msg("case %zu \"%s\": app \"%.*s\", want \"%s\"", i, c->path,
                         (int)m.app_len, m.app, c->app);
            assert_true(m.app >= buf && m.app + m.app_len <= buf + len);
        }
        free(buf);
    }
}

static void test_decode_table(void **state)
{
    spark_prefixes *p = make_table(0);
    (void)state;
    run_cases(p, cases_no_empty, sizeof(cases_no_empty) / sizeof(cases_no_empty[0]));
    spark_prefixes_destroy(p);
}

static void test_decode_table_empty_prefix(void **state)
{
    spark_prefixes *p = make_table(1);
    (void)state;
    run_cases(p, cases_with_empty, sizeof(cases_with_empty) / sizeof(cases_with_empty[0]));
    spark_prefixes_destroy(p);
}

/* The path is bounded by len, not by a NUL: the carbon line goes on. */
static void test_decode_in_line(void **state)
{
    static const char line[] = "alpha.app-1" EAM "numberTargetExecutors 7 1700000000\n";
    const size_t len = sizeof("alpha.app-1" EAM "numberTargetExecutors") - 1;
    spark_prefixes *p = make_table(0);
    spark_metric m;
    (void)state;
    assert_int_equal(spark_path_decode(p, line, len, &m), SPARK_PATH_OK);
    assert_int_equal(m.gauge, SPARK_G_TARGET_EXECUTORS);
    assert_int_equal(m.name_len, strlen("numberTargetExecutors"));
    /* Cut inside the gauge name: an unknown gauge, not a read past len. */
    assert_int_equal(spark_path_decode(p, line, len - 3, &m), SPARK_PATH_OK);
    assert_int_equal(m.gauge, SPARK_G_UNKNOWN);
    assert_int_equal(m.name_len, strlen("numberTargetExecut"));
    assert_int_equal(spark_path_decode(p, line, 0, &m), SPARK_PATH_SKIP);
    assert_int_equal(spark_path_decode(p, NULL, 0, &m), SPARK_PATH_SKIP);
    spark_prefixes_destroy(p);
}

/* Every known gauge decodes to itself, and spark_gauge_name round-trips. */
static void test_gauge_names_round_trip(void **state)
{
    spark_prefixes *p = make_table(0);
    char path[256];
    int g;
    (void)state;
    for (g = 0; g < SPARK_G_WORKER_END; g++) {
        spark_metric m;
        const char *name = spark_gauge_name(g);
        const char *src = g < SPARK_G_APP_COUNT      ? "alpha.app-1" EAM
                          : g < SPARK_G_MASTER_END ? "alpha.master."
                                                   : "alpha.worker.";
        int n = snprintf(path, sizeof(path), "%s%s", src, name);
        assert_non_null(name);
        assert_string_not_equal(name, "unknown");
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.gauge, g);
        assert_int_equal(m.kind, g < SPARK_G_APP_COUNT      ? SPARK_KIND_APP
                                 : g < SPARK_G_MASTER_END ? SPARK_KIND_MASTER
                                                          : SPARK_KIND_WORKER);
    }
    assert_string_equal(spark_gauge_name(SPARK_G_TARGET_EXECUTORS), "numberTargetExecutors");
    assert_string_equal(spark_gauge_name(SPARK_G_MASTER_ALIVE_WORKERS), "aliveWorkers");
    assert_string_equal(spark_gauge_name(SPARK_G_WORKER_MEM_USED_MB), "memUsed_MB");
    assert_string_equal(spark_gauge_name(SPARK_G_UNKNOWN), "unknown");
    assert_string_equal(spark_gauge_name(SPARK_G_WORKER_END), "unknown");
    spark_prefixes_destroy(p);
}

static void test_prefixes_add_rules(void **state)
{
    spark_prefixes *p = spark_prefixes_create(0);
    char big[SPARK_PREFIX_MAX_LEN + 2];
    char parts[64];
    int i;
    (void)state;
    assert_non_null(p);
    assert_int_equal(spark_prefixes_add(p, "alpha", 0), 0);
    assert_int_equal(spark_prefixes_add(p, "alpha", 1), -EEXIST);
    assert_int_equal(spark_prefixes_add(p, "", 2), 0);
    assert_int_equal(spark_prefixes_add(p, "", 3), -EEXIST);
    assert_int_equal(spark_prefixes_add(p, "a.b.c", 4), 0);
    assert_int_equal(spark_prefixes_add(p, ".a", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, "a.", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, "a..b", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, ".", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, "a b", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, "a\tb", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, "a\x7f", 5), -EINVAL);
    assert_int_equal(spark_prefixes_add(p, "ok", -1), -EINVAL);
    memset(big, 'x', sizeof(big));
    big[SPARK_PREFIX_MAX_LEN] = '\0';
    assert_int_equal(spark_prefixes_add(p, big, 6), 0);
    big[SPARK_PREFIX_MAX_LEN] = 'x';
    big[SPARK_PREFIX_MAX_LEN + 1] = '\0';
    assert_int_equal(spark_prefixes_add(p, big, 7), -EINVAL);
    /* 16 components fit, 17 do not. */
    parts[0] = '\0';
    for (i = 0; i < SPARK_PREFIX_MAX_PARTS; i++)
        strcat(parts, i ? ".p" : "p");
    assert_int_equal(spark_prefixes_add(p, parts, 8), 0);
    strcat(parts, ".q");
    assert_int_equal(spark_prefixes_add(p, parts, 9), -EINVAL);
    /* The longest and most-dotted prefixes still resolve. */
    {
        char path[1024];
        spark_metric m;
        int n;
        parts[strlen(parts) - 2] = '\0';
        n = snprintf(path, sizeof(path), "%s.ns.x" EAM "numberAllExecutors", parts);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, 8);
        assert_int_equal(m.app_len, 4);
        assert_memory_equal(m.app, "ns.x", 4);
        big[SPARK_PREFIX_MAX_LEN] = '\0';
        n = snprintf(path, sizeof(path), "%s.app-9" EAM "numberAllExecutors", big);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, 6);
        n = snprintf(path, sizeof(path), "%s.master.apps", big);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, 6);
        /* One byte longer than any prefix: not registered, falls to "". */
        n = snprintf(path, sizeof(path), "%sx.app-9" EAM "numberAllExecutors", big);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, 2);
        n = snprintf(path, sizeof(path), "%sx.master.apps", big);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_E_CLUSTER);
    }
    spark_prefixes_destroy(p);
    spark_prefixes_destroy(NULL);
}

/* An empty table: every relevant path lacks a cluster. */
static void test_empty_table(void **state)
{
    spark_prefixes *p = spark_prefixes_create(0);
    spark_metric m;
    const char *a = "alpha.app-1" EAM "numberAllExecutors";
    (void)state;
    assert_non_null(p);
    assert_int_equal(spark_path_decode(p, a, strlen(a), &m), SPARK_PATH_E_CLUSTER);
    assert_int_equal(spark_path_decode(p, "alpha.master.apps", 17, &m), SPARK_PATH_E_CLUSTER);
    assert_int_equal(spark_path_decode(p, "master.apps", 11, &m), SPARK_PATH_E_CLUSTER);
    spark_prefixes_destroy(p);
}

/* 10,000 clusters, a tenth with dotted prefixes, some nested in others. */
#define NPREFIX 10000

static void prefix_of(int i, char *buf, size_t n)
{
    if (i % 10 == 0)
        snprintf(buf, n, "org%d.team%d.spark", i / 10, i % 7);
    else if (i % 10 == 1)
        snprintf(buf, n, "org%d.team%d", (i - 1) / 10, (i - 1) % 7);   /* nests in the one above */
    else
        snprintf(buf, n, "cluster-%05d", i);
}

static void test_ten_thousand_prefixes(void **state)
{
    spark_prefixes *p = spark_prefixes_create(0);   /* grows from the minimum */
    char prefix[64], path[256];
    int i;
    (void)state;
    assert_non_null(p);
    for (i = 0; i < NPREFIX; i++) {
        prefix_of(i, prefix, sizeof(prefix));
        assert_int_equal(spark_prefixes_add(p, prefix, i), 0);
    }
    for (i = 0; i < NPREFIX; i++) {
        spark_metric m;
        int n;
        prefix_of(i, prefix, sizeof(prefix));
        assert_int_equal(spark_prefixes_add(p, prefix, i), -EEXIST);
        n = snprintf(path, sizeof(path), "%s.app-%d.x" EAM "numberTargetExecutors", prefix, i);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, i);
        n = snprintf(path, sizeof(path), "%s.master.aliveWorkers", prefix);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, i);
        assert_int_equal(m.gauge, SPARK_G_MASTER_ALIVE_WORKERS);
        /* Unregistered neighbours. */
        n = snprintf(path, sizeof(path), "x%s.app" EAM "numberTargetExecutors", prefix);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_E_CLUSTER);
        n = snprintf(path, sizeof(path), "x%s.worker.coresFree", prefix);
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_E_CLUSTER);
    }
    /* "orgN.teamM.spark.app" picks the longer of the two nested prefixes;
     * "orgN.teamM.other" the shorter. */
    {
        spark_metric m;
        int n = snprintf(path, sizeof(path), "org5.team1.spark.app" EAM "numberAllExecutors");
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, 50);
        n = snprintf(path, sizeof(path), "org5.team1.other" EAM "numberAllExecutors");
        assert_int_equal(spark_path_decode(p, path, (size_t)n, &m), SPARK_PATH_OK);
        assert_int_equal(m.cluster, 51);
        assert_int_equal(m.app_len, 5);
    }
    spark_prefixes_destroy(p);
}


/* ---- A real capture: Spark 3.5.9's GraphiteSink (tests/fixtures/) -------- */

typedef struct fixture_counts {
    spark_prefixes *p;
    size_t lines, app, master, worker, skip, counters;
} fixture_counts;

static void on_fixture_line(void *ctx, const char *line, size_t len, int err)
{
    fixture_counts *fc = ctx;
    const char *path;
    size_t path_len;
    carbon_line cl;
    spark_metric m;
    int rc;

    assert_int_equal(err, CARBON_OK);
    assert_int_equal(carbon_split_path(line, len, &path, &path_len), CARBON_OK);
    assert_int_equal(carbon_parse_line(line, len, &cl), CARBON_OK);
    assert_true(cl.timestamp_ms >= 1795237900000 && cl.timestamp_ms <= 1795238000000);
    fc->lines++;
    rc = spark_path_decode(fc->p, path, path_len, &m);
    if (rc == SPARK_PATH_SKIP) {
        fc->skip++;
        return;
    }
    if (rc != SPARK_PATH_OK)
        fail_msg("\"%.*s\": rc %d", (int)path_len, path, rc);
    assert_int_equal(m.cluster, 0);
    /* Spark 3.5 sends only names we know. */
    if (m.gauge == SPARK_G_UNKNOWN)
        fail_msg("unknown gauge \"%.*s\"", (int)m.name_len, m.name);
    fc->counters += (size_t)m.is_counter;
    switch (m.kind) {
    case SPARK_KIND_APP:
        fc->app++;
        assert_int_equal(m.app_len, strlen("app-20261121051153-0000"));
        assert_memory_equal(m.app, "app-20261121051153-0000", m.app_len);
        break;
    case SPARK_KIND_MASTER:
        fc->master++;
        break;
    case SPARK_KIND_WORKER:
        fc->worker++;
        break;
    default:
        fail();
    }
}

static void test_real_spark_capture(void **state)
{
    const char *dir = getenv("SS_SOURCE_DIR");
    char file[4096], chunk[4096], carry[CARBON_DEFAULT_MAX_LINE];
    fixture_counts fc = {0};
    carbon_stream s;
    FILE *f;
    size_t n;
    (void)state;

    if (dir)
        snprintf(file, sizeof(file), "%s/tests/fixtures/spark_graphite_sample.txt", dir);
    else   /* run by hand from a build dir: __FILE__ is absolute under CMake */
        snprintf(file, sizeof(file), "%.*s/../fixtures/spark_graphite_sample.txt",
                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
    f = fopen(file, "rb");
    if (!f)
        fail_msg("cannot open %s", file);
    fc.p = spark_prefixes_create(1);
    assert_non_null(fc.p);
    assert_int_equal(spark_prefixes_add(fc.p, "sparkcheck", 0), 0);
    carbon_stream_init(&s, carry, sizeof(carry));
    while ((n = fread(chunk, 1, 1000, f)) > 0)   /* lines straddle chunks */
        carbon_stream_feed(&s, chunk, n, on_fixture_line, &fc);
    carbon_stream_finish(&s, on_fixture_line, &fc);
    fclose(f);
    spark_prefixes_destroy(fc.p);
    /* Counted with grep in the README's terms: 110 EAM lines (4 of 10 per
     * report are .count counters), 50 master/worker lines, the rest other
     * sources, including the "ExecutorAllocationManager$" timer decoy. */
    assert_int_equal(fc.lines, 212);
    assert_int_equal(fc.app, 110);
    assert_int_equal(fc.counters, 44);
    assert_int_equal(fc.master + fc.worker, 50);
    assert_true(fc.master > 0 && fc.worker > 0);
    assert_int_equal(fc.skip, 212 - 110 - 50);
}

/* Registry names as JMX/Jolokia show them (no GraphiteSink prefix) decode
 * for the cluster given, exactly as their carbon paths would. */
static void test_registry_names(void **state)
{
    spark_metric m;
    (void)state;
    const char *n = "app-20261201143622-0000.driver.ExecutorAllocationManager.executors.numberTargetExecutors";
    assert_int_equal(spark_registry_decode(n, strlen(n), 7, &m), SPARK_PATH_OK);
    assert_int_equal(m.kind, SPARK_KIND_APP);
    assert_int_equal(m.cluster, 7);
    assert_int_equal(m.gauge, SPARK_G_TARGET_EXECUTORS);
    assert_int_equal(m.is_counter, 0);
    assert_int_equal(m.app_len, strlen("app-20261201143622-0000"));
    assert_memory_equal(m.app, "app-20261201143622-0000", m.app_len);
    /* A counter with the ".count" its carbon line has. */
    n = "app-1.driver.ExecutorAllocationManager.executors.numberExecutorsKilledByDriver.count";
    assert_int_equal(spark_registry_decode(n, strlen(n), 0, &m), SPARK_PATH_OK);
    assert_int_equal(m.gauge, SPARK_G_KILLED_BY_DRIVER);
    assert_int_equal(m.is_counter, 1);
    /* A namespace with dots and a colon (spark.metrics.namespace) stays whole. */
    n = "etl:nightly.team.a.driver.ExecutorAllocationManager.executors.numberAllExecutors";
    assert_int_equal(spark_registry_decode(n, strlen(n), 2, &m), SPARK_PATH_OK);
    assert_int_equal(m.app_len, strlen("etl:nightly.team.a"));
    assert_memory_equal(m.app, "etl:nightly.team.a", m.app_len);
    /* Unknown gauges are kept; other metrics are skipped; no namespace is bad. */
    n = "app-1.driver.ExecutorAllocationManager.executors.numberSomethingNew";
    assert_int_equal(spark_registry_decode(n, strlen(n), 0, &m), SPARK_PATH_OK);
    assert_int_equal(m.gauge, SPARK_G_UNKNOWN);
    n = "app-1.driver.BlockManager.memory.memUsed_MB";
    assert_int_equal(spark_registry_decode(n, strlen(n), 0, &m), SPARK_PATH_SKIP);
    n = "driver.ExecutorAllocationManager.executors.numberAllExecutors";
    assert_int_equal(spark_registry_decode(n, strlen(n), 0, &m), SPARK_PATH_E_SHAPE);
    /* A bad cluster index is no cluster. */
    n = "app-1.driver.ExecutorAllocationManager.executors.numberAllExecutors";
    assert_int_equal(spark_registry_decode(n, strlen(n), -1, &m), SPARK_PATH_E_CLUSTER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_decode_table_empty_prefix),
        cmocka_unit_test(test_decode_in_line),
        cmocka_unit_test(test_gauge_names_round_trip),
        cmocka_unit_test(test_prefixes_add_rules),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_ten_thousand_prefixes),
        cmocka_unit_test(test_real_spark_capture),
        cmocka_unit_test(test_registry_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
