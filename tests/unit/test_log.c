/* test_log.c: log lines on a terminal or file (UTC timestamp, level) and on
 * the systemd journal's stream (JOURNAL_STREAM names stderr: <priority>
 * prefix, no timestamp). Each case logs in a child process whose stderr is a
 * file, since the journal check runs once per process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/base/log.h"

/* Logs a warning, an info and a debug line in a child whose stderr is a
 * temporary file; journal: 1 JOURNAL_STREAM names that file, 0 unset, -1
 * names another file. Returns the file's contents (malloc'd). */
static char *log_in_child(int journal)
{
    char path[] = "/tmp/ss-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        struct stat st;
        if (journal != 0 && fstat(STDERR_FILENO, &st) == 0) {
            char v[64];
            snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino + (journal > 0 ? 0 : 1));
            setenv("JOURNAL_STREAM", v, 1);
        } else {
            unsetenv("JOURNAL_STREAM");
        }
        ss_log_set_level(SS_LOG_INFO);
        ss_warn("cluster %s: master down", "alpha");
        ss_info("started");
        ss_debug("not shown");
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return buf;
}

static void test_plain_lines_have_a_timestamp(void **state)
{
    (void)state;
    for (int journal = 0; journal >= -1; journal--) {   /* unset, and naming another stream */
        char *out = log_in_child(journal);
        char *second = strchr(out, '\n');
        assert_non_null(second);
        /* 2026-12-01T16:28:06.449Z warn  cluster alpha: master down */
        assert_int_equal(strlen(out) > 25 && out[4] == '-' && out[10] == 'T' && out[23] == 'Z', 1);
        assert_memory_equal(out + 25, "warn  cluster alpha: master down\n", 33);
        assert_non_null(strstr(second + 1, "Z info  started\n"));
        assert_null(strstr(out, "not shown"));
        assert_null(strchr(out, '<'));
        free(out);
    }
}

static void test_journal_lines_have_a_priority(void **state)
{
    (void)state;
    char *out = log_in_child(1);
    assert_string_equal(out, "<4>warn cluster alpha: master down\n<6>info started\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_lines_have_a_timestamp),
        cmocka_unit_test(test_journal_lines_have_a_priority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
