/* fuzz_http.c: the status server's request-head parser over arbitrary
 * bytes, exactly as the server calls it: find the end of the head, then
 * parse that prefix in place. Checks that every accepted head yields
 * NUL-terminated strings inside the buffer and a sane path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http/parse.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: invariant failed: %s\n", \
                                          __FILE__, __LINE__, #x); abort(); } } while (0)

static int inside(const char *p, const char *buf, size_t len)
{
    return p >= buf && p < buf + len && memchr(p, '\0', (size_t)(buf + len - p)) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    /* An exact-size copy: any read past the head is caught by ASan. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    size_t end = ss_http_head_end(buf, size, 0);
    if (end) {
        /* It is the first end, and a search resumed where an earlier one
         * stopped (the server's byte-by-byte case) finds the same. */
        CHECK(ss_http_head_end(buf, end - 1, 0) == 0);
        if (end >= 3)
            CHECK(ss_http_head_end(buf, size, (end - 3) / 2) == end);
        CHECK(end <= size && buf[end - 1] == '\n');
        ss_http_head h;
        memset(&h, 0, sizeof h);
        int rc = ss_http_parse_head(buf, end, &h);
        CHECK(rc == 0 || rc == 400 || rc == 431 || rc == 501 || rc == 505);
        if (rc == 0) {
            CHECK(inside(h.method, buf, end) && h.method[0] != '\0');
            CHECK(strlen(h.method) <= SS_HTTP_METHOD_MAX);
            CHECK(h.path[0] == '/' || strcmp(h.path, "*") == 0);
            CHECK(strcmp(h.path, "/") == 0 || inside(h.path, buf, end));
            CHECK(h.query[0] == '\0' || inside(h.query, buf, end));
            CHECK(h.minor >= 0 && h.minor <= 9);
        }
    }
    free(buf);
    return 0;
}
