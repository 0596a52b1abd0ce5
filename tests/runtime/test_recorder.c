/* test_recorder.c: ingest.record on a real sparkscaled: what the pipeline
 * and the master poller take in lands in the file with its arrival time
 * (skipped lines do not), `sparkscalectl replay` of that file decides what
 * the daemon decided, the file rotates at record_max_mb, and a file that
 * cannot be opened stops the start with a message naming key and path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/runtime/fixture_http.h"
#include "tests/runtime/harness.h"
#include "tests/unit/fixture.h"

static char dir[128];

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs a command line, its stdout into out; returns the exit status. */
static int run_cmd(const char *cmd, char *out, size_t outlen)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cluster_desired(harness *h, const char *name)
{
    json_t *root = get_json(h, "/v1/clusters");
    json_t *cl = root ? find_cluster(root, name) : NULL;
    json_t *d = cl ? json_object_get(json_object_get(cl, "workers"), "desired") : NULL;
    int v = json_is_integer(d) ? (int)json_integer_value(d) : -1;
    json_decref(root);
    return v;
}

static const char yaml_fmt[] =
    "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"off\", http: \"127.0.0.1:0\",\n"
    "          record: \"%s\", record_max_mb: %d }\n"
    "kafka: { brokers: embedded }\n"
    "poll: { interval_s: 1, timeout_ms: 800, connect_timeout_ms: 300 }\n"
    "policy: { evaluate_interval_ms: 100, scale_down_window_s: 0, idle_workers: 0,\n"
    "          min_workers: 1 }\n"
    "clusters:\n"
    "  - { name: alpha, spark_master: \"http://127.0.0.1:%d\",\n"
    "      worker: { cores: 2, memory_mb: 1024 }, executor: { cores: 2, memory_mb: 512 } }\n";

/* The daemon records the carbon lines it took and the master's answers;
 * a replay of the file with the same configuration ends where it ended. */
static void test_record_and_replay(void **unused)
{
    (void)unused;
    fxs master;
    assert_int_equal(fxs_start(&master), 0);
    size_t len;
    char *json = fixture_read("spark_master/app_running.json", &len);
    assert_non_null(json);
    fxs_set(&master, "/json/", FXS_ANSWER, 200, NULL, json, len, 0);
    free(json);

    char rec[256], cfg_path[256], yaml[2048];
    path_in(rec, sizeof rec, "rec.txt");
    path_in(cfg_path, sizeof cfg_path, "alpha.yaml");
    snprintf(yaml, sizeof yaml, yaml_fmt, rec, 64, master.port);
    write_file(cfg_path, yaml);
    harness h;
    if (harness_start(&h, yaml) != 0)
        fail_msg("start: %s", h.err);

    /* app ...-0000 is in the master's activeapps, ...-0001 is not: it ended */
    char lines[1024];
    long now = (long)time(NULL);
    int desired = -1;
    /* both drivers report every 200 ms (a GraphiteSink), for 2 s after the
     * decision settled */
    for (int i = 0, settled = 0; i < 100 && settled < 10; i++) {
        long ts = (long)time(NULL);
        int n = snprintf(lines, sizeof lines,
            "alpha.app-20261201143622-0000.driver.ExecutorAllocationManager.executors."
            "numberTargetExecutors 6 %ld\n"
            "alpha.app-20261201143622-0001.driver.ExecutorAllocationManager.executors."
            "numberTargetExecutors 4 %ld\n"
            "alpha.app-20261201143622-0000.driver.BlockManager.memory.memUsed_MB 12 %ld\n", ts,
            ts, ts);
        assert_int_equal(tcp_send(&h, lines, (size_t)n), 0);
        usleep(200 * 1000);
        desired = cluster_desired(&h, "alpha");
        settled += desired == 6;
    }
    assert_int_equal(desired, 6);             /* 6 executors, E 1; the ended app's 4 gone */
    assert_int_equal(harness_stop(&h), 0);
    fxs_stop(&master);

    char *text = slurp(rec, &len);
    assert_non_null(text);
    assert_true(strncmp(text, "# sparkscale recording v1", 25) == 0);
    assert_non_null(strstr(text, " c 127.0.0.1 alpha.app-20261201143622-0000.driver."
                                 "ExecutorAllocationManager.executors.numberTargetExecutors 6 "));
    assert_non_null(strstr(text, " c 127.0.0.1 alpha.app-20261201143622-0001.driver."));
    assert_null(strstr(text, "BlockManager"));   /* skipped lines are not recorded */
    const char *m = strstr(text, " m alpha {");
    assert_non_null(m);
    assert_non_null(strstr(m, "\"activeapps\""));
    /* each record on one line, starting with its arrival time in ms */
    int records = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        long long t = strtoll(line, NULL, 10);
        assert_true(t / 1000 >= now - 5 && t / 1000 <= now + 60);
        records++;
    }
    assert_true(records >= 3);
    free(text);

    /* the replay, through the same pipeline, master view and policy */
    const char *build = getenv("SS_BUILD_DIR");
    char cmd[1024], out[1 << 16];
    snprintf(cmd, sizeof cmd, "%s/tools/sparkscalectl/sparkscalectl replay --config %s "
             "--input %s --svg %s/rec.svg", build ? build : ".", cfg_path, rec, dir);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    print_message("%s", out);
    assert_non_null(strstr(out, "current workers as recorded"));
    assert_non_null(strstr(out, "summary: policy "));
    /* the table's last row wants what the daemon wanted */
    char *summary = strstr(out, "\ncluster alpha");
    assert_non_null(summary);
    *summary = '\0';
    char *last = strrchr(out, '\n');
    assert_non_null(last);
    int t_s, demand, need, rec_w, want;
    assert_int_equal(sscanf(last + 1, "%d %d %d %d %d", &t_s, &demand, &need, &rec_w, &want), 5);
    assert_int_equal(want, 6);      /* the policy knew one had ended */
    assert_non_null(strstr(out, "     10    10     6     6 "));   /* demand 10, need 10, 6 */
    char svg[256];
    snprintf(svg, sizeof svg, "%s/rec.svg", dir);
    text = slurp(svg, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "<svg"));
    assert_null(strstr(text, "<script"));
    free(text);
}

/* At record_max_mb the file goes to FILE.1 and a new one starts. */
static void test_rotation(void **unused)
{
    (void)unused;
    char rec[256], old[300], yaml[2048];
    path_in(rec, sizeof rec, "rot.txt");
    snprintf(old, sizeof old, "%s.1", rec);
    snprintf(yaml, sizeof yaml, yaml_fmt, rec, 1, 9);   /* master port 9: nothing there */
    harness h;
    if (harness_start(&h, yaml) != 0)
        fail_msg("start: %s", h.err);
    static char buf[1 << 16];
    long now = (long)time(NULL);
    size_t sent = 0;
    for (int round = 0; sent < (1u << 20) + (300u << 10); round++) {
        size_t len = 0;
        for (int i = 0; i < 400; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len,
                                    "alpha.app-20261201143622-%04d.driver.ExecutorAllocationManager"
                                    ".executors.numberTargetExecutors %d %ld\n", i % 50, round,
                                    now);
        assert_int_equal(tcp_send(&h, buf, len), 0);
        sent += len;
    }
    assert_int_equal(harness_stop(&h), 0);
    struct stat a, b;
    assert_int_equal(stat(old, &a), 0);
    assert_int_equal(stat(rec, &b), 0);
    print_message("rotated %lld bytes, current %lld bytes\n", (long long)a.st_size,
                  (long long)b.st_size);
    assert_true(a.st_size >= (1 << 20) && a.st_size < (1 << 20) + 4096);
    assert_true(b.st_size > 0 && b.st_size < (1 << 20));
    char *text = slurp(rec, NULL);
    assert_true(strncmp(text, "# sparkscale recording v1", 25) == 0);
    free(text);
}

/* A recording that cannot be opened: no start, and the message says which
 * key and which file. */
static void test_open_error(void **unused)
{
    (void)unused;
    char yaml[2048];
    snprintf(yaml, sizeof yaml, yaml_fmt, "/nonexistent-dir/sparkscale/rec.txt", 64, 9);
    harness h;
    assert_int_equal(harness_start(&h, yaml), -1);
    print_message("%s\n", h.err);
    assert_non_null(strstr(h.err, "ingest.record: cannot open "
                                  "'/nonexistent-dir/sparkscale/rec.txt': No such file"));
    /* and with the built binary: exit status 1, the same message */
    const char *build = getenv("SS_BUILD_DIR");
    char cfg_path[256], cmd[1024], out[4096];
    path_in(cfg_path, sizeof cfg_path, "bad.yaml");
    write_file(cfg_path, yaml);
    snprintf(cmd, sizeof cmd, "%s/ingest/sparkscaled --config %s 2>&1", build ? build : ".",
             cfg_path);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "ingest.record: cannot open"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_recorder.%d", (int)getpid());
    return mkdir(dir, 0700);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_replay),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_open_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
