/* test_carbon.c: carbon plaintext parsing and the streaming splitter: field and
 * number rules, and that any chunking of a stream gives the one-shot result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/carbon.h"

/* Copies s into a heap block of exactly n bytes (no NUL) so ASan catches any
 * read past the end: the parser must never rely on a terminator. */
static char *exact_copy(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

/* ---- carbon_parse_line: table ------------------------------------------- */

typedef struct parse_case {
    const char *in;
    size_t len;          /* 0: strlen(in) */
    int rc;
    const char *path;    /* expected when rc == CARBON_OK */
    double value;
    int64_t ts_ms;
} parse_case;

#define L(s) s, sizeof(s) - 1   /* literals with embedded NULs */

static const parse_case parse_cases[] = {
    /* Spark's own shape. */
    {"a.driver.ExecutorAllocationManager.executors.numberTargetExecutors 7 1700000000", 0,
     CARBON_OK, "a.driver.ExecutorAllocationManager.executors.numberTargetExecutors", 7, 1700000000000},
    {"m 7 1700000000\r", 0, CARBON_OK, "m", 7, 1700000000000},
    {"m\t7\t1700000000", 0, CARBON_OK, "m", 7, 1700000000000},
    {"  m  \t 7 \t\t 1700000000  \t", 0, CARBON_OK, "m", 7, 1700000000000},
    {"m 7 1700000000 \r", 0, CARBON_OK, "m", 7, 1700000000000},
    {"caf\xc3\xa9.x 1 2", 0, CARBON_OK, "caf\xc3\xa9.x", 1, 2000},
    /* Values. */
    {"m 0 1", 0, CARBON_OK, "m", 0, 1000},
    {"m -2 1", 0, CARBON_OK, "m", -2, 1000},
    {"m +3 1", 0, CARBON_OK, "m", 3, 1000},
    {"m 0.50 1", 0, CARBON_OK, "m", 0.5, 1000},
    {"m 1e3 1", 0, CARBON_OK, "m", 1000, 1000},
    {"m 1E+3 1", 0, CARBON_OK, "m", 1000, 1000},
    {"m 2.5e-3 1", 0, CARBON_OK, "m", 0.0025, 1000},
    {"m .5 1", 0, CARBON_OK, "m", 0.5, 1000},
    {"m 5. 1", 0, CARBON_OK, "m", 5, 1000},
    {"m -0.25 1", 0, CARBON_OK, "m", -0.25, 1000},
    {"m 12345678901234567890123 1", 0, CARBON_OK, "m", 12345678901234567890123.0, 1000},
    {"m 9007199254740993 1", 0, CARBON_OK, "m", 9007199254740993.0, 1000},
    {"m 1e-400 1", 0, CARBON_OK, "m", 0, 1000},
    {"m 1.7976931348623157e308 1", 0, CARBON_OK, "m", 1.7976931348623157e308, 1000},
    {"m 00000000000000000000000000042 1", 0, CARBON_OK, "m", 42, 1000},
    {"m NaN 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m nan 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m -NaN 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m Infinity 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m -Infinity 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m +inf 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m 1e999 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m -1e400 1", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    {"m abc 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m 1x 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m - 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m . 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m --1 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m 1e 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m 1e+ 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m 1.2.3 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m 0x10 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m NaNa 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m infinit 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m 1,5 1", 0, CARBON_E_VALUE, NULL, 0, 0},
    /* Timestamps. */
    {"m 1 1700000000.5", 0, CARBON_OK, "m", 1, 1700000000500},
    {"m 1 1700000000.123", 0, CARBON_OK, "m", 1, 1700000000123},
    {"m 1 1.7e9", 0, CARBON_OK, "m", 1, 1700000000000},
    {"m 1 0", 0, CARBON_OK, "m", 1, 0},
    {"m 1 +5", 0, CARBON_OK, "m", 1, 5000},
    {"m 1 999999999999999", 0, CARBON_OK, "m", 1, 999999999999999000},
    {"m 1 -1", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 -0.5", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 now", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 NaN", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 Infinity", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 1e20", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 9223372036854776", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 17000000001700000000", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    {"m 1 12s", 0, CARBON_E_TIMESTAMP, NULL, 0, 0},
    /* A bad value is reported before a bad timestamp. */
    {"m x y", 0, CARBON_E_VALUE, NULL, 0, 0},
    {"m NaN y", 0, CARBON_E_NONFINITE, NULL, 0, 0},
    /* Fields. */
    {"", 0, CARBON_E_EMPTY, NULL, 0, 0},
    {" \t ", 0, CARBON_E_EMPTY, NULL, 0, 0},
    {"\r", 0, CARBON_E_EMPTY, NULL, 0, 0},
    {"m", 0, CARBON_E_FIELDS, NULL, 0, 0},
    {"m 1", 0, CARBON_E_FIELDS, NULL, 0, 0},
    {"m 1 ", 0, CARBON_E_FIELDS, NULL, 0, 0},
    {"m 1 2 3", 0, CARBON_E_FIELDS, NULL, 0, 0},
    {"m 1 2 x ", 0, CARBON_E_FIELDS, NULL, 0, 0},
    /* Control bytes anywhere win over every other error. */
    {L("m\0 1 2"), CARBON_E_BINARY, NULL, 0, 0},
    {L("\0"), CARBON_E_BINARY, NULL, 0, 0},
    {"m\x01x 1 2", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m 1\x1b 2", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m 1 2\x7f", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m 1 2 3 4\x02", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m 1\r 2", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m 1 2\r\r", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m\v1 2", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"m 1 2\n", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"  \x03", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"abcdefghijklmnopq\x05rstuvwxyz 1 2", 0, CARBON_E_BINARY, NULL, 0, 0},
    {"abcdefghijklmnopqrstuvwxyz0123456789\x7f 1 2", 0, CARBON_E_BINARY, NULL, 0, 0},
    /* The length bounds the line: bytes after it are never read. */
    {"m 1 23456", 5, CARBON_OK, "m", 1, 2000},
    {"m 1 2 garbage", 5, CARBON_OK, "m", 1, 2000},
};

static void test_parse_table(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const parse_case *c = &parse_cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        char *buf = exact_copy(c->in, n);
        carbon_line out;
        int rc = carbon_parse_line(buf, n, &out);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": rc %s, want %s", i, c->in, carbon_err_name(rc),
                     carbon_err_name(c->rc));
        if (rc == CARBON_OK) {
            assert_int_equal(out.path_len, strlen(c->path));
            assert_memory_equal(out.path, c->path, out.path_len);
            assert_true(out.path >= buf && out.path + out.path_len <= buf + n);
            if (out.value != c->value)
                fail_msg("case %zu \"%s\": value %.17g, want %.17g", i, c->in, out.value,
                         c->value);
            if (out.timestamp_ms != c->ts_ms)
                fail_msg("case %zu \"%s\": ts %lld, want %lld", i, c->in,
                         (long long)out.timestamp_ms, (long long)c->ts_ms);
        }
        free(buf);
    }
}

/* Exact to the bit against the C library on many generated decimal forms:
 * covers the integer fast path, the exact x/10^k path and the strtod path. */
static void test_value_matches_strtod(void **state)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int i;
    (void)state;
    for (i = 0; i < 200000; i++) {
        char num[96], line[128];
        int k, n = 0, digits, frac, e;
        carbon_line out;
        double want;

        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (rng & 1)
            num[n++] = '-';
        digits = (int)((rng >> 1) % 22);
        frac = (int)((rng >> 6) % 22);
        if (digits + frac == 0)
            digits = 1;
        for (k = 0; k < digits; k++)
            num[n++] = (char)('0' + (rng >> (11 + k * 2)) % 10);
        if (frac > 0 || (rng & 0x800000)) {
            num[n++] = '.';
            for (k = 0; k < frac; k++)
                num[n++] = (char)('0' + ((rng * (uint64_t)(k + 3)) >> 40) % 10);
        }
        if (rng & 0x1000000) {
            e = (int)((rng >> 25) % 700) - 350;
            n += snprintf(num + n, sizeof(num) - (size_t)n, "e%d", e);
        }
        num[n] = '\0';
        want = strtod(num, NULL);
        n = snprintf(line, sizeof(line), "m %s 1", num);
        {
            char *buf = exact_copy(line, (size_t)n);
            int rc = carbon_parse_line(buf, (size_t)n, &out);
            free(buf);
            if (!isfinite(want)) {
                assert_int_equal(rc, CARBON_E_NONFINITE);
                continue;
            }
            if (rc != CARBON_OK)
                fail_msg("\"%s\": rc %s", num, carbon_err_name(rc));
            if (memcmp(&out.value, &want, sizeof(want)) != 0)
                fail_msg("\"%s\": %.17g, strtod says %.17g", num, out.value, want);
        }
    }
}

static void test_value_too_long_token(void **state)
{
    char line[400];
    carbon_line out;
    (void)state;
    /* 120 digits still parse (slow path); 200 are refused, not truncated. */
    memset(line, '1', sizeof(line));
    memcpy(line, "m ", 2);
    memcpy(line + 2 + 120, " 1", 2);
    assert_int_equal(carbon_parse_line(line, 2 + 120 + 2, &out), CARBON_OK);
    assert_true(out.value > 1.1e119 && out.value < 1.2e119);
    memset(line, '1', sizeof(line));
    memcpy(line, "m ", 2);
    memcpy(line + 2 + 200, " 1", 2);
    assert_int_equal(carbon_parse_line(line, 2 + 200 + 2, &out), CARBON_E_VALUE);
}

static void test_err_names(void **state)
{
    (void)state;
    assert_string_equal(carbon_err_name(CARBON_OK), "ok");
    assert_string_equal(carbon_err_name(CARBON_E_EMPTY), "empty");
    assert_string_equal(carbon_err_name(CARBON_E_FIELDS), "fields");
    assert_string_equal(carbon_err_name(CARBON_E_VALUE), "value");
    assert_string_equal(carbon_err_name(CARBON_E_TIMESTAMP), "timestamp");
    assert_string_equal(carbon_err_name(CARBON_E_NONFINITE), "nonfinite");
    assert_string_equal(carbon_err_name(CARBON_E_TOO_LONG), "too_long");
    assert_string_equal(carbon_err_name(CARBON_E_BINARY), "binary");
    assert_string_equal(carbon_err_name(CARBON_E_COUNT), "unknown");
    assert_string_equal(carbon_err_name(-1), "unknown");
}

/* ---- carbon_split_path --------------------------------------------------- */

static const struct {
    const char *in;
    size_t len;
    int rc;
    const char *path;
} split_cases[] = {
    {"a.b.c 1 2", 0, CARBON_OK, "a.b.c"},
    {"  a.b.c\t\t1 2\r", 0, CARBON_OK, "a.b.c"},
    {"a.b.c x", 0, CARBON_OK, "a.b.c"},   /* the rest is not looked at */
    {"a.b.c ", 0, CARBON_OK, "a.b.c"},
    {"abcdefghijklmnopqrstuvwxyz.0123456789.ABCDEFGHIJ 1 2", 0, CARBON_OK,
     "abcdefghijklmnopqrstuvwxyz.0123456789.ABCDEFGHIJ"},
    {"a.b.c", 0, CARBON_E_FIELDS, NULL},
    {"a.b.c\r", 0, CARBON_E_FIELDS, NULL},
    {"", 0, CARBON_E_EMPTY, NULL},
    {"   \r", 0, CARBON_E_EMPTY, NULL},
    /* The fast path does not look for control bytes: carbon_parse_line
     * rejects such lines (test_parse_line), and only kept lines are parsed. */
    {"a.b.c\r 1 2", 0, CARBON_OK, "a.b.c\r"},
    {"abcdefghijklmnopqrstuvwxyz.0123\x01 1 2", 0, CARBON_OK,
     "abcdefghijklmnopqrstuvwxyz.0123\x01"},
    {" a\x01b 1 2", 0, CARBON_E_BINARY, NULL},   /* leading blank: full check */
    {"a.b.c 1 2", 5, CARBON_E_FIELDS, NULL},
    {"a.b.c 1 2", 6, CARBON_OK, "a.b.c"},
};

static void test_split_path(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
        size_t n = split_cases[i].len ? split_cases[i].len : strlen(split_cases[i].in);
        char *buf = exact_copy(split_cases[i].in, n);
        const char *path = NULL;
        size_t path_len = 0;
        int rc = carbon_split_path(buf, n, &path, &path_len);
        if (rc != split_cases[i].rc)
            fail_msg("case %zu: rc %s, want %s", i, carbon_err_name(rc),
                     carbon_err_name(split_cases[i].rc));
        if (rc == CARBON_OK) {
            assert_int_equal(path_len, strlen(split_cases[i].path));
            assert_memory_equal(path, split_cases[i].path, path_len);
        }
        free(buf);
    }
}

/* Every line carbon_parse_line accepts has the path carbon_split_path finds. */
static void test_split_agrees_with_parse(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const parse_case *c = &parse_cases[i];
        size_t n = c->len ? c->len : strlen(c->in), path_len;
        const char *path;
        carbon_line out;
        int rc = carbon_parse_line(c->in, n, &out);
        int src = carbon_split_path(c->in, n, &path, &path_len);
        if (rc == CARBON_OK) {
            assert_int_equal(src, CARBON_OK);
            assert_ptr_equal(path, out.path);
            assert_int_equal(path_len, out.path_len);
        }
        if (rc == CARBON_E_EMPTY)
            assert_int_equal(src, CARBON_E_EMPTY);
    }
}

/* ---- Stream splitter ------------------------------------------------------ */

#define MAX_RECORDS 256

typedef struct record {
    int err;
    size_t len;
    char bytes[128];
} record;

typedef struct recorder {
    record r[MAX_RECORDS];
    size_t n;
    size_t max_line;
} recorder;

static void record_line(void *ctx, const char *line, size_t len, int err)
{
    recorder *rec = ctx;
    assert_true(rec->n < MAX_RECORDS);
    assert_true(len <= rec->max_line);
    assert_true(len <= sizeof(rec->r[0].bytes));
    assert_null(memchr(line, '\n', len));
    rec->r[rec->n].err = err;
    rec->r[rec->n].len = len;
    memcpy(rec->r[rec->n].bytes, line, len);
    rec->n++;
}

static void assert_same(const recorder *a, const recorder *b, const char *what)
{
    size_t i;
    if (a->n != b->n)
        fail_msg("%s: %zu lines, one-shot gave %zu", what, a->n, b->n);
    for (i = 0; i < a->n; i++) {
        if (a->r[i].err != b->r[i].err || a->r[i].len != b->r[i].len ||
            memcmp(a->r[i].bytes, b->r[i].bytes, a->r[i].len) != 0)
            fail_msg("%s: line %zu differs (%s \"%.*s\" vs %s \"%.*s\")", what, i,
                     carbon_err_name(a->r[i].err), (int)a->r[i].len, a->r[i].bytes,
                     carbon_err_name(b->r[i].err), (int)b->r[i].len, b->r[i].bytes);
    }
}

/* Feeds in[0..n) cut at the given offsets (ascending), then finishes. The
 * chunks are exact heap copies and the carry is exactly max_line bytes. */
static void run_chunks(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                       size_t max_line, recorder *rec)
{
    carbon_stream s;
    char *carry = malloc(max_line ? max_line : 1);
    size_t prev = 0, i, delivered = 0;

    assert_non_null(carry);
    rec->n = 0;
    rec->max_line = max_line;
    carbon_stream_init(&s, carry, max_line);
    for (i = 0; i <= ncuts; i++) {
        size_t at = i < ncuts ? cuts[i] : n;
        char *chunk = exact_copy(in + prev, at - prev);
        delivered += carbon_stream_feed(&s, chunk, at - prev, record_line, rec);
        assert_true(s.carry_len <= max_line);
        free(chunk);
        prev = at;
    }
    delivered += carbon_stream_finish(&s, record_line, rec);
    assert_int_equal(delivered, rec->n);
    assert_int_equal(s.carry_len, 0);
    assert_int_equal(s.discarding, 0);
    free(carry);
}

/* Mixed input: CRLF, blank lines, an over-long line, a line of exactly the
 * maximum, binary garbage, no '\n' at the end. */
static const char stream_input[] =
    "alpha.app-1.driver.ExecutorAllocationManager.executors.numberTargetExecutors 7 1700000000\r\n"
    "m 1 2\n"
    "\n"
    "\r\n"
    "this.line.is.much.longer.than.the.maximum.line.length.of.the.test.stream.so.it.must.be.skipped 1 2\n"
    "m\t0.50\t1700000000.5\n"
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123\n"
    "bin\x01\x02\xff garbage\r\n"
    "x 1 2\r\n"
    "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234\n"
    "last.line 3 1700000000";
#define STREAM_MAX 95

static void test_stream_one_shot(void **state)
{
    recorder *one = malloc(sizeof(*one));
    carbon_line out;
    (void)state;
    assert_non_null(one);
    run_chunks(stream_input, sizeof(stream_input) - 1, NULL, 0, STREAM_MAX, one);
    assert_int_equal(one->n, 11);
    assert_int_equal(one->r[0].err, CARBON_OK);
    assert_int_equal(carbon_parse_line(one->r[0].bytes, one->r[0].len, &out), CARBON_OK);
    assert_int_equal(out.value, 7);
    assert_int_equal(one->r[0].bytes[one->r[0].len - 1], '\r');   /* CR kept */
    assert_int_equal(one->r[2].len, 0);
    assert_int_equal(one->r[3].len, 1);
    assert_int_equal(carbon_parse_line(one->r[3].bytes, one->r[3].len, &out), CARBON_E_EMPTY);
    assert_int_equal(one->r[4].err, CARBON_E_TOO_LONG);
    assert_int_equal(one->r[4].len, STREAM_MAX);
    assert_memory_equal(one->r[4].bytes, "this.line.is", 12);
    assert_int_equal(carbon_parse_line(one->r[5].bytes, one->r[5].len, &out), CARBON_OK);
    assert_int_equal(out.timestamp_ms, 1700000000500);
    assert_int_equal(one->r[6].err, CARBON_OK);
    assert_int_equal(one->r[6].len, STREAM_MAX - 1);
    assert_int_equal(carbon_parse_line(one->r[7].bytes, one->r[7].len, &out), CARBON_E_BINARY);
    assert_int_equal(one->r[9].err, CARBON_OK);   /* exactly the maximum */
    assert_int_equal(one->r[9].len, STREAM_MAX);
    assert_int_equal(one->r[10].err, CARBON_OK);     /* delivered by finish */
    assert_int_equal(carbon_parse_line(one->r[10].bytes, one->r[10].len, &out), CARBON_OK);
    assert_int_equal(out.value, 3);
    free(one);
}

static void test_stream_every_split(void **state)
{
    const size_t n = sizeof(stream_input) - 1;
    recorder *one = malloc(sizeof(*one)), *got = malloc(sizeof(*got));
    size_t i, j;
    char what[64];
    (void)state;
    assert_non_null(one);
    assert_non_null(got);
    run_chunks(stream_input, n, NULL, 0, STREAM_MAX, one);
    for (i = 0; i <= n; i++) {
        snprintf(what, sizeof(what), "cut at %zu", i);
        run_chunks(stream_input, n, &i, 1, STREAM_MAX, got);
        assert_same(got, one, what);
    }
    /* Every pair of cuts: a line may span three chunks. */
    for (i = 0; i <= n; i += 3) {
        for (j = i; j <= n; j++) {
            size_t cuts[2] = {i, j};
            snprintf(what, sizeof(what), "cuts at %zu,%zu", i, j);
            run_chunks(stream_input, n, cuts, 2, STREAM_MAX, got);
            assert_same(got, one, what);
        }
    }
    /* One byte at a time. */
    {
        size_t *cuts = malloc(n * sizeof(*cuts));
        assert_non_null(cuts);
        for (i = 0; i < n; i++)
            cuts[i] = i + 1;
        run_chunks(stream_input, n, cuts, n, STREAM_MAX, got);
        assert_same(got, one, "byte by byte");
        free(cuts);
    }
    free(one);
    free(got);
}

/* Every max_line from 0 up: the over-long rule stays consistent across splits. */
static void test_stream_every_max_line(void **state)
{
    const char in[] = "ab 1 2\r\nabcdef 1 2\n\nabcdefghijkl 1 2\r\nx\nlong.tail.without.newline";
    const size_t n = sizeof(in) - 1;
    recorder *one = malloc(sizeof(*one)), *got = malloc(sizeof(*got));
    size_t max_line, i;
    (void)state;
    assert_non_null(one);
    assert_non_null(got);
    for (max_line = 0; max_line <= 30; max_line++) {
        run_chunks(in, n, NULL, 0, max_line, one);
        for (i = 0; i < one->n; i++) {
            assert_true(one->r[i].len <= max_line);
            if (one->r[i].err == CARBON_E_TOO_LONG)
                assert_int_equal(one->r[i].len, max_line);
        }
        for (i = 0; i <= n; i++) {
            run_chunks(in, n, &i, 1, max_line, got);
            assert_same(got, one, "max_line sweep");
        }
    }
    /* With max_line 8: "ab 1 2\r" fits (7), "abcdef 1 2" (10) does not. */
    run_chunks(in, n, NULL, 0, 8, one);
    assert_int_equal(one->n, 6);
    assert_int_equal(one->r[0].err, CARBON_OK);
    assert_int_equal(one->r[1].err, CARBON_E_TOO_LONG);
    assert_int_equal(one->r[2].len, 0);
    assert_int_equal(one->r[3].err, CARBON_E_TOO_LONG);
    assert_int_equal(one->r[4].err, CARBON_OK);
    assert_int_equal(one->r[5].err, CARBON_E_TOO_LONG);   /* tail at EOF */
    free(one);
    free(got);
}

static void test_stream_crlf_split(void **state)
{
    recorder *rec = malloc(sizeof(*rec));
    carbon_stream s;
    char carry[64];
    carbon_line out;
    (void)state;
    assert_non_null(rec);
    rec->n = 0;
    rec->max_line = sizeof(carry);
    carbon_stream_init(&s, carry, sizeof(carry));
    assert_int_equal(carbon_stream_feed(&s, "a.b 1 2\r", 8, record_line, rec), 0);
    assert_int_equal(s.carry_len, 8);
    assert_int_equal(carbon_stream_feed(&s, "\nc.d 3 4\r", 9, record_line, rec), 1);
    assert_int_equal(carbon_stream_feed(&s, "\n", 1, record_line, rec), 1);
    assert_int_equal(rec->n, 2);
    assert_int_equal(carbon_parse_line(rec->r[0].bytes, rec->r[0].len, &out), CARBON_OK);
    assert_int_equal(out.path_len, 3);
    assert_int_equal(out.timestamp_ms, 2000);
    assert_int_equal(carbon_parse_line(rec->r[1].bytes, rec->r[1].len, &out), CARBON_OK);
    assert_int_equal(out.value, 3);
    assert_int_equal(carbon_stream_finish(&s, record_line, rec), 0);
    free(rec);
}

/* An over-long line fed in small pieces is reported once, never buffered
 * beyond max_line, and the next line is intact. */
static void test_stream_too_long_once(void **state)
{
    recorder *rec = malloc(sizeof(*rec));
    carbon_stream s;
    char carry[16];
    int i;
    (void)state;
    assert_non_null(rec);
    rec->n = 0;
    rec->max_line = sizeof(carry);
    carbon_stream_init(&s, carry, sizeof(carry));
    for (i = 0; i < 1000; i++) {
        carbon_stream_feed(&s, "xxxxxxx", 7, record_line, rec);
        assert_true(s.carry_len <= sizeof(carry));
    }
    assert_int_equal(rec->n, 1);
    assert_int_equal(rec->r[0].err, CARBON_E_TOO_LONG);
    assert_int_equal(s.discarding, 1);
    assert_int_equal(carbon_stream_feed(&s, "xx\nok 1 2\n", 10, record_line, rec), 1);
    assert_int_equal(rec->n, 2);
    assert_int_equal(rec->r[1].err, CARBON_OK);
    assert_int_equal(rec->r[1].len, 6);
    assert_memory_equal(rec->r[1].bytes, "ok 1 2", 6);
    /* Over-long then EOF: reported once, finish adds nothing. */
    carbon_stream_feed(&s, "yyyyyyyyyyyyyyyyyyyyyyyyy", 25, record_line, rec);
    assert_int_equal(rec->n, 3);
    assert_int_equal(carbon_stream_finish(&s, record_line, rec), 0);
    assert_int_equal(rec->n, 3);
    free(rec);
}

/* finish resets the stream: the next connection starts clean. */
static void test_stream_finish_and_reuse(void **state)
{
    recorder *rec = malloc(sizeof(*rec));
    carbon_stream s;
    char carry[32];
    (void)state;
    assert_non_null(rec);
    rec->n = 0;
    rec->max_line = sizeof(carry);
    carbon_stream_init(&s, carry, sizeof(carry));
    assert_int_equal(carbon_stream_finish(&s, record_line, rec), 0);
    assert_int_equal(carbon_stream_feed(&s, "", 0, record_line, rec), 0);
    assert_int_equal(carbon_stream_feed(&s, "a 1 2\nb 2", 9, record_line, rec), 1);
    assert_int_equal(carbon_stream_feed(&s, " 3", 2, record_line, rec), 0);
    assert_int_equal(carbon_stream_finish(&s, record_line, rec), 1);
    assert_int_equal(rec->n, 2);
    assert_int_equal(rec->r[1].len, 5);
    assert_memory_equal(rec->r[1].bytes, "b 2 3", 5);
    assert_int_equal(carbon_stream_feed(&s, "c 3 4\n", 6, record_line, rec), 1);
    assert_int_equal(rec->r[2].len, 5);
    assert_memory_equal(rec->r[2].bytes, "c 3 4", 5);
    assert_int_equal(carbon_stream_finish(&s, record_line, rec), 0);
    free(rec);
}

/* Complete lines inside a chunk point into the chunk itself (no copy). */
typedef struct where {
    const char *lo, *hi;
    size_t inside, outside;
} where;

static void note_where(void *ctx, const char *line, size_t len, int err)
{
    where *w = ctx;
    (void)err;
    if (line >= w->lo && line + len <= w->hi)
        w->inside++;
    else
        w->outside++;
}

static void test_stream_zero_copy(void **state)
{
    const char chunk[] = "a 1 2\nb 1 2\nc 1 2\nd 1";
    carbon_stream s;
    char carry[64];
    where w = {chunk, chunk + sizeof(chunk) - 1, 0, 0};
    (void)state;
    carbon_stream_init(&s, carry, sizeof(carry));
    assert_int_equal(carbon_stream_feed(&s, chunk, sizeof(chunk) - 1, note_where, &w), 3);
    assert_int_equal(w.inside, 3);
    assert_int_equal(w.outside, 0);
    assert_int_equal(s.carry_len, 3);
    assert_int_equal(carbon_stream_finish(&s, note_where, &w), 1);
    assert_int_equal(w.outside, 1);   /* the tail came from carry */
}

/* Random garbage in random chunks still matches the one-shot feed. */
static void test_stream_random_garbage(void **state)
{
    recorder *one = malloc(sizeof(*one)), *got = malloc(sizeof(*got));
    uint64_t rng = 12345;
    int round;
    (void)state;
    assert_non_null(one);
    assert_non_null(got);
    for (round = 0; round < 300; round++) {
        char in[600];
        size_t cuts[12], n = sizeof(in), i, max_line;
        for (i = 0; i < n; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            /* Newlines and CRs are frequent enough to make short lines. */
            in[i] = (rng % 9 == 0) ? '\n' : (rng % 13 == 0) ? '\r' : (char)(rng >> 24);
        }
        max_line = 1 + (size_t)(rng % 100);
        run_chunks(in, n, NULL, 0, max_line, one);
        for (i = 0; i < 12; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            cuts[i] = (size_t)(rng % (n + 1));
        }
        /* ascending cuts */
        for (i = 1; i < 12; i++) {
            size_t j = i, v = cuts[i];
            while (j > 0 && cuts[j - 1] > v) {
                cuts[j] = cuts[j - 1];
                j--;
            }
            cuts[j] = v;
        }
        run_chunks(in, n, cuts, 12, max_line, got);
        assert_same(got, one, "garbage");
        for (i = 0; i < one->n; i++) {
            carbon_line out;
            const char *path;
            size_t plen;
            int rc = carbon_parse_line(one->r[i].bytes, one->r[i].len, &out);
            assert_true(rc >= CARBON_OK && rc < CARBON_E_COUNT);
            rc = carbon_split_path(one->r[i].bytes, one->r[i].len, &path, &plen);
            assert_true(rc >= CARBON_OK && rc < CARBON_E_COUNT);
        }
    }
    free(one);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_value_matches_strtod),
        cmocka_unit_test(test_value_too_long_token),
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_split_path),
        cmocka_unit_test(test_split_agrees_with_parse),
        cmocka_unit_test(test_stream_one_shot),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_stream_every_max_line),
        cmocka_unit_test(test_stream_crlf_split),
        cmocka_unit_test(test_stream_too_long_once),
        cmocka_unit_test(test_stream_finish_and_reuse),
        cmocka_unit_test(test_stream_zero_copy),
        cmocka_unit_test(test_stream_random_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
