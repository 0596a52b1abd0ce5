/* recorder.c: ingest.record: a buffered, rotating text file of what the
 * pipeline and the pollers took in (format in recorder.h). Writes go to a
 * stdio buffer and reach the page cache about once a second (or when the
 * buffer fills): the loop never waits on the disk itself. */
#include "ingest/recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/base/log.h"
#include "lib/base/str.h"

#define BUF_BYTES (256u * 1024)

struct ss_recorder {
    char *path;
    char *rotated;                /* path + ".1" */
    FILE *f;                      /* NULL after a write error */
    char *buf;                    /* f's stdio buffer */
    uint64_t size;                /* bytes in the current file */
    uint64_t max_bytes;
    const char *const *names;
    size_t nnames;
    ss_recorder_stats st;
};

/* Opens r->path for appending and writes the header. */
static int open_file(ss_recorder *r, char *err, size_t errlen)
{
    int fd = open(r->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        ss_errf(err, errlen, "cannot open '%s': %s", r->path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ss_errf(err, errlen, "cannot record to '%s': not a regular file", r->path);
        close(fd);
        return -1;
    }
    r->f = fdopen(fd, "a");
    if (!r->f) {
        ss_errf(err, errlen, "cannot open '%s': %s", r->path, strerror(errno));
        close(fd);
        return -1;
    }
    setvbuf(r->f, r->buf, _IOFBF, BUF_BYTES);
    r->size = (uint64_t)sb.st_size;
    int n = fprintf(r->f, "%s (sparkscaled; fields: arrival_ms kind source data)\n",
                    SS_RECORDING_MAGIC);
    if (n > 0)
        r->size += (uint64_t)n;
    return 0;
}

ss_recorder *ss_recorder_open(const char *path, uint64_t max_bytes,
                              const char *const *cluster_names, size_t n, char *err,
                              size_t errlen)
{
    ss_recorder *r = calloc(1, sizeof *r);
    if (!r) {
        ss_errf(err, errlen, "out of memory");
        return NULL;
    }
    size_t len = strlen(path);
    r->path = strdup(path);
    r->rotated = malloc(len + 3);
    r->buf = malloc(BUF_BYTES);
    if (!r->path || !r->rotated || !r->buf) {
        ss_errf(err, errlen, "out of memory");
        ss_recorder_close(r);
        return NULL;
    }
    snprintf(r->rotated, len + 3, "%s.1", path);
    r->max_bytes = max_bytes;
    r->names = cluster_names;
    r->nnames = n;
    if (open_file(r, err, errlen) != 0) {
        ss_recorder_close(r);
        return NULL;
    }
    return r;
}

void ss_recorder_close(ss_recorder *r)
{
    if (!r)
        return;
    if (r->f && fclose(r->f) != 0)
        ss_warn("recording %s: %s", r->path, strerror(errno));
    free(r->path);
    free(r->rotated);
    free(r->buf);
    free(r);
}

/* A write failed: say so once and stop recording (the daemon goes on). */
static void give_up(ss_recorder *r, const char *what)
{
    r->st.errors++;
    ss_warn("recording to %s stopped: %s: %s", r->path, what, strerror(errno));
    fclose(r->f);
    r->f = NULL;
}

static void rotate(ss_recorder *r)
{
    if (fclose(r->f) != 0) {
        r->f = NULL;
        r->st.errors++;
        ss_warn("recording to %s stopped: %s", r->path, strerror(errno));
        return;
    }
    r->f = NULL;
    if (rename(r->path, r->rotated) != 0) {
        r->st.errors++;
        ss_warn("recording to %s stopped: rename to %s: %s", r->path, r->rotated,
                strerror(errno));
        return;
    }
    char err[512];
    if (open_file(r, err, sizeof err) != 0) {
        r->st.errors++;
        ss_warn("recording stopped: %s", err);
        return;
    }
    r->st.rotations++;
    ss_info("recording rotated: %s -> %s", r->path, r->rotated);
}

/* Accounts for one record of n bytes, then rotates when the file is full. */
static void wrote(ss_recorder *r, uint64_t n)
{
    if (ferror(r->f)) {
        give_up(r, "write");
        return;
    }
    r->size += n;
    r->st.records++;
    r->st.bytes += n;
    if (r->max_bytes > 0 && r->size >= r->max_bytes)
        rotate(r);
}

void ss_recorder_carbon(ss_recorder *r, int64_t arrival_ms, const char *peer, const char *line,
                        size_t len)
{
    if (!r || !r->f)
        return;
    int n = fprintf(r->f, "%lld c %s ", (long long)arrival_ms, peer && *peer ? peer : "-");
    if (n < 0) {
        give_up(r, "write");
        return;
    }
    fwrite(line, 1, len, r->f);
    putc('\n', r->f);
    wrote(r, (uint64_t)n + len + 1);
}

void ss_recorder_answer(ss_recorder *r, char kind, int64_t arrival_ms, int c, const char *body,
                        size_t len)
{
    if (!r || !r->f || c < 0 || (size_t)c >= r->nnames)
        return;
    int n = fprintf(r->f, "%lld %c %s ", (long long)arrival_ms, kind, r->names[c]);
    if (n < 0) {
        give_up(r, "write");
        return;
    }
    /* One line per answer: raw line breaks (JSON whitespace) become spaces. */
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] != '\n' && body[i] != '\r')
            continue;
        fwrite(body + from, 1, i - from, r->f);
        putc(' ', r->f);
        from = i + 1;
    }
    fwrite(body + from, 1, len - from, r->f);
    putc('\n', r->f);
    wrote(r, (uint64_t)n + len + 1);
}

void ss_recorder_flush(ss_recorder *r)
{
    if (r && r->f && fflush(r->f) != 0)
        give_up(r, "flush");
}

void ss_recorder_get_stats(const ss_recorder *r, ss_recorder_stats *out)
{
    memset(out, 0, sizeof *out);
    if (r)
        *out = r->st;
}
