/* log.c: leveled logging to stderr; under systemd, lines carry the
 * journal's priority prefix instead of a timestamp. */
#include "lib/base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static ss_log_level min_level = SS_LOG_INFO;
static const char *level_names[] = { "debug", "info", "warn", "error" };
/* syslog priorities (sd-daemon(3) prefixes): debug 7, info 6, warning 4, err 3 */
static const int level_prio[] = { 7, 6, 4, 3 };

static int to_journal;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

/* systemd connects stdout/stderr of a service to the journal and says so in
 * JOURNAL_STREAM=<device>:<inode> (systemd.exec(5)). The variable is
 * inherited, so it counts only while stderr is still that stream. */
static void detect_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        to_journal = 1;
}

void ss_log_set_level(ss_log_level level) { min_level = level; }
ss_log_level ss_log_get_level(void) { return min_level; }

int ss_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void ss_log(ss_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    pthread_once(&journal_once, detect_journal);
    char line[2048];
    int n;
    if (to_journal) {
        /* The journal stamps the time itself and files the line under the
         * priority (journalctl -p warning). */
        n = snprintf(line, sizeof line, "<%d>%s ", level_prio[level], level_names[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent loggers never interleave mid-line. */
    fprintf(stderr, "%s\n", line);
}
