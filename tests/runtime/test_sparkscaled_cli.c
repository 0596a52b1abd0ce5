/* test_sparkscaled_cli.c: the sparkscaled command line as a user meets it:
 * --help, --check-config (good and bad files), bad arguments, and a clean
 * SIGTERM shutdown that flushes Kafka first. Runs the built binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char bin[1024];

/* Runs bin with args; captures stdout+stderr into out; returns the exit code
 * (or 128 + signal). With term_when set, sends SIGTERM as soon as that text
 * appears in the output (the daemon is up), not after a guessed delay. */
static int run(const char *const *args, char *out, size_t outlen, const char *term_when)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        const char *argv[16] = { bin };
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t r;
    int termed = 0;
    while (len + 1 < outlen && (r = read(pipefd[0], out + len, outlen - len - 1)) > 0) {
        len += (size_t)r;
        out[len] = '\0';
        if (term_when && !termed && strstr(out, term_when)) {
            kill(pid, SIGTERM);
            termed = 1;
        }
    }
    out[len] = '\0';
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/ss-cli-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static char out[1 << 16];

static void test_help(void **unused)
{
    (void)unused;
    const char *args[] = { "--help", NULL };
    assert_int_equal(run(args, out, sizeof out, NULL), 0);
    assert_non_null(strstr(out, "--check-config"));
    const char *bad[] = { "--frobnicate", NULL };
    assert_int_equal(run(bad, out, sizeof out, NULL), 2);
}

static void test_check_config_good_prints_effective(void **unused)
{
    (void)unused;
    const char *path = write_tmp("clusters:\n  - name: alpha\n");
    const char *args[] = { "--check-config", "--config", path, NULL };
    assert_int_equal(run(args, out, sizeof out, NULL), 0);
    /* Defaults filled in, and the result is valid YAML for the loader. */
    assert_non_null(strstr(out, "carbon_tcp: \"127.0.0.1:2003\""));
    assert_non_null(strstr(out, "scale_down_window_s: 60"));
    assert_non_null(strstr(out, "is valid"));
    const char *embedded[] = { "--check-config", NULL };
    assert_int_equal(run(embedded, out, sizeof out, NULL), 0);
    assert_non_null(strstr(out, "name: \"demo\""));
    unlink(path);
}

static void test_check_config_bad_names_key_and_line(void **unused)
{
    (void)unused;
    const char *path = write_tmp("clusters:\n  - name: alpha\n    policy:\n"
                                 "      min_workers: 5\n      max_workers: 2\n");
    const char *args[] = { "--check-config", "--config", path, NULL };
    assert_int_equal(run(args, out, sizeof out, NULL), 1);
    assert_non_null(strstr(out, "clusters[0].policy.max_workers"));
    assert_non_null(strstr(out, ":5:"));   /* the line of the offending key */
    const char *missing[] = { "--config", "/nonexistent/ss.yaml", NULL };
    assert_int_equal(run(missing, out, sizeof out, NULL), 1);
    assert_non_null(strstr(out, "/nonexistent/ss.yaml"));
    unlink(path);
}

static void test_sigterm_flushes_and_exits_zero(void **unused)
{
    (void)unused;
    const char *path = write_tmp(
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"127.0.0.1:0\", http: \"127.0.0.1:0\" }\n"
        "clusters:\n  - name: alpha\n");
    const char *args[] = { "--config", path, NULL };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = run(args, out, sizeof out, "sparkscaled started");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "sparkscaled started"));
    assert_non_null(strstr(out, "shutting down"));
    assert_non_null(strstr(out, "bus: flushed"));
    assert_non_null(strstr(out, "stopped"));
    assert_null(strstr(out, "handles still open"));
    unlink(path);
}

/* --check-config builds the librdkafka configuration (without connecting):
 * a bad property value fails the check, naming the key, not the start. */
static void test_check_config_kafka_properties(void **unused)
{
    (void)unused;
    const char *path = write_tmp("kafka:\n  properties: { \"security.protocol\": bogus }\n"
                                 "clusters:\n  - name: alpha\n");
    const char *args[] = { "--check-config", "--config", path, NULL };
    assert_int_equal(run(args, out, sizeof out, NULL), 1);
    assert_non_null(strstr(out, "kafka.properties.security.protocol"));
    unlink(path);
}

/* Secrets: credentials in URLs are masked when printed, and a file with
 * secrets that others can read draws a warning (not when it is 0600). */
static void test_secrets(void **unused)
{
    (void)unused;
    const char *path = write_tmp("poll: { username: u, password: hunter2 }\n"
                                 "clusters:\n  - name: alpha\n"
                                 "    spark_master: \"http://admin:s3cret@m:8080\"\n");
    chmod(path, 0644);
    const char *args[] = { "--check-config", "--config", path, NULL };
    assert_int_equal(run(args, out, sizeof out, NULL), 0);
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "s3cret"));
    assert_non_null(strstr(out, "http://admin:***@m:8080"));
    assert_non_null(strstr(out, "holds secrets"));
    chmod(path, 0600);
    assert_int_equal(run(args, out, sizeof out, NULL), 0);
    assert_null(strstr(out, "holds secrets"));
    unlink(path);
}

/* A second signal during a shutdown that waits for unreachable brokers
 * exits at once with its own status, saying what is lost. */
static void test_second_signal(void **unused)
{
    (void)unused;
    const char *path = write_tmp(
        "ingest: { carbon_tcp: \"127.0.0.1:0\", carbon_udp: \"127.0.0.1:0\", http: \"127.0.0.1:0\" }\n"
        "kafka: { brokers: \"127.0.0.1:1\" }\n"
        "clusters:\n  - name: alpha\n");
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(bin, bin, "--config", path, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t r;
    int sent = 0;
    while ((r = read(pipefd[0], out + len, sizeof out - 1 - len)) > 0) {
        len += (size_t)r;
        out[len] = '\0';
        if (sent == 0 && strstr(out, "sparkscaled started")) {
            kill(pid, SIGTERM);
            sent = 1;
        }
        if (sent == 1 && strstr(out, "shutting down")) {
            kill(pid, SIGTERM);   /* the flush waits for brokers that never answer */
            sent = 2;
        }
    }
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 4);
    assert_non_null(strstr(out, "second signal"));
    assert_non_null(strstr(out, "lost"));
    unlink(path);
}

int main(void)
{
    const char *build = getenv("SS_BUILD_DIR");
    snprintf(bin, sizeof bin, "%s/ingest/sparkscaled", build ? build : ".");
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "test_sparkscaled_cli: %s not built\n", bin);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_check_config_good_prints_effective),
        cmocka_unit_test(test_check_config_bad_names_key_and_line),
        cmocka_unit_test(test_sigterm_flushes_and_exits_zero),
        cmocka_unit_test(test_check_config_kafka_properties),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_second_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
