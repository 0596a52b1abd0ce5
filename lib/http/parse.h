/* http_parse.h: the status server's strict HTTP/1.1 request-head parser
 * (RFC 9110/9112), pure so that it can be fuzzed. */
#ifndef SS_HTTP_PARSE_H
#define SS_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SS_HTTP_METHOD_MAX 16
#define SS_HTTP_MAX_HEADERS 100           /* header lines -> 431 */

/* One parsed request head. Strings point into the parsed buffer. */
typedef struct ss_http_head {
    char *method;
    const char *path;
    const char *query;
    int minor;          /* HTTP/1.minor */
    int conn_close, conn_keep_alive;
    int hosts;                   /* Host header lines seen */
    int has_content_length;
    int transfer_encoding;       /* a Transfer-Encoding header was sent */
    int expect;
    uint64_t content_length;
} ss_http_head;

/* Offset just past the empty line that ends a head in buf[0..len),
 * searching from `from` (so a byte-by-byte client costs O(n)); 0 if the
 * head is not complete yet. */
size_t ss_http_head_end(const char *buf, size_t len, size_t from);

/* buf[0..len) is a whole head ending in an empty line (ss_http_head_end).
 * Splits it in place (NULs after method, path, query); h must be zeroed.
 * Returns 0, or the HTTP status to reply with before closing (400, 431,
 * 501, 505). */
int ss_http_parse_head(char *buf, size_t len, ss_http_head *h);

#endif
