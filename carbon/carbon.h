/* carbon.h: the carbon plaintext protocol ("<path> <value> <timestamp>\n"),
 * split from a byte stream and parsed in place. Pure: no I/O, no allocation.
 * Reference: Graphite "Feeding in your data", plaintext protocol. */
#ifndef SS_CARBON_H
#define SS_CARBON_H

#include <stddef.h>
#include <stdint.h>

#define CARBON_DEFAULT_MAX_LINE 4096

/* Why a line was dropped. Order is stable: used as metric label index. */
typedef enum carbon_err {
    CARBON_OK = 0,
    CARBON_E_EMPTY,       /* blank line (not counted as an error by ingest) */
    CARBON_E_FIELDS,      /* not exactly three whitespace-separated fields */
    CARBON_E_VALUE,       /* value is not a number */
    CARBON_E_TIMESTAMP,   /* timestamp is not a non-negative number */
    CARBON_E_NONFINITE,   /* NaN / Infinity / -Infinity: skipped, counted */
    CARBON_E_TOO_LONG,    /* longer than the hard maximum */
    CARBON_E_BINARY,      /* NUL or control bytes inside the line */
    CARBON_E_COUNT,
    CARBON_E_RESPLIT = 100 /* carbon_parse_after_path only: parse the line whole */
} carbon_err;

/* "ok", "empty", "fields", "value", "timestamp", "nonfinite", "too_long", "binary". */
const char *carbon_err_name(int err);

typedef struct carbon_line {
    const char *path;    /* points into the caller's buffer */
    size_t path_len;
    double value;
    int64_t timestamp_ms; /* epoch milliseconds (float seconds accepted) */
} carbon_line;

/* Parses one line (without its '\n'; a trailing '\r' is allowed). Fields are
 * separated by any run of spaces or tabs. Returns CARBON_OK or a carbon_err. */
int carbon_parse_line(const char *line, size_t len, carbon_line *out);

/* For a line whose path carbon_split_path returned: checks that the path
 * is one field (no tab or control byte inside; carbon_split_path's fast path
 * only looks for a space) and parses the value and timestamp after it, so
 * the path is not tokenised twice. Returns as carbon_parse_line, or
 * CARBON_E_RESPLIT when the path is not one field: parse the whole line
 * with carbon_parse_line (and decode its path) instead. */
int carbon_parse_after_path(const char *line, size_t len, const char *path, size_t path_len,
                            carbon_line *out);

/* Returns the first field (the metric path) without parsing the rest, so a
 * caller can drop irrelevant metrics before paying for number parsing.
 * CARBON_OK means only "a path followed by a blank": carbon_parse_line
 * may still reject the line, and control bytes are not looked for on this
 * fast path (they are by carbon_parse_line). Otherwise CARBON_E_EMPTY,
 * CARBON_E_FIELDS (a path alone) or CARBON_E_BINARY.
 * *path points into line. */
int carbon_split_path(const char *line, size_t len, const char **path, size_t *path_len);

/* A streaming splitter: data arrives in arbitrary chunks; complete lines are
 * handed to a callback, a partial tail is carried over in storage the caller
 * owns (max_line bytes). A line longer than max_line is reported once with
 * CARBON_E_TOO_LONG and skipped up to its newline. */
typedef void (*carbon_line_fn)(void *ctx, const char *line, size_t len, int err);

typedef struct carbon_stream {
    char *carry;        /* caller-owned, capacity max_line */
    size_t carry_len;
    size_t max_line;
    int discarding;     /* inside an over-long line, skipping to '\n' */
} carbon_stream;

/* carry must stay valid for the stream's life; it is not freed here. */
void carbon_stream_init(carbon_stream *s, char *carry, size_t max_line);

/* Feeds a chunk. Complete lines inside data are passed without copying; the
 * line pointer is valid only during the callback. A line is everything
 * before its '\n' (a '\r' of "\r\n" included: carbon_parse_line drops it),
 * so max_line bounds that; err is CARBON_OK, or CARBON_E_TOO_LONG with the
 * line's first max_line bytes. Empty lines are delivered too. Returns the
 * number of lines delivered (including errors). */
size_t carbon_stream_feed(carbon_stream *s, const char *data, size_t len,
                          carbon_line_fn fn, void *ctx);

/* End of stream: delivers a last line that had no '\n'. The stream is then
 * reset and may be reused (e.g. for the next TCP connection). */
size_t carbon_stream_finish(carbon_stream *s, carbon_line_fn fn, void *ctx);

#endif
