/* fuzz_carbon.c: libFuzzer target for the carbon splitter, line parser and
 * Spark path decoder; checks invariants and chunked == one-shot splitting.
 * Input: byte 0 picks max_line, bytes 1-4 the chunk sizes, the rest is the stream. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/carbon.h"
#include "carbon/spark_path.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static const char anchor[] = ".driver.ExecutorAllocationManager.executors.";
#define ANCHOR_LEN (sizeof(anchor) - 1)

/* The small prefix table, also kept as a plain list for a naive oracle. */
static const char *const prefixes[] = {"alpha", "beta", "beta.prod", "t.x.y", "a", "a.a"};
#define NPREFIXES (int)(sizeof(prefixes) / sizeof(prefixes[0]))
#define EMPTY_CLUSTER 100

static spark_prefixes *table_plain;   /* without "" */
static spark_prefixes *table_empty;   /* with "" -> EMPTY_CLUSTER */

static void init_tables(void)
{
    int i;
    if (table_plain)
        return;
    table_plain = spark_prefixes_create(8);
    table_empty = spark_prefixes_create(8);
    CHECK(table_plain && table_empty);
    for (i = 0; i < NPREFIXES; i++) {
        CHECK(spark_prefixes_add(table_plain, prefixes[i], i) == 0);
        CHECK(spark_prefixes_add(table_empty, prefixes[i], i) == 0);
    }
    CHECK(spark_prefixes_add(table_empty, "", EMPTY_CLUSTER) == 0);
}

/* Naive longest-prefix choice for an app path's left part L. */
static int oracle_app_cluster(const char *l, size_t n, int with_empty)
{
    int i, best = -1;
    size_t best_len = 0;
    for (i = 0; i < NPREFIXES; i++) {
        size_t pl = strlen(prefixes[i]);
        if (pl + 2 <= n && memcmp(l, prefixes[i], pl) == 0 && l[pl] == '.' &&
            l[pl + 1] != '.' && (best < 0 || pl > best_len)) {
            best = i;
            best_len = pl;
        }
    }
    if (best < 0 && with_empty)
        best = EMPTY_CLUSTER;
    return best;
}

static int oracle_exact_cluster(const char *s, size_t n)
{
    int i;
    for (i = 0; i < NPREFIXES; i++)
        if (strlen(prefixes[i]) == n && memcmp(prefixes[i], s, n) == 0)
            return i;
    return -1;
}

static void check_decode(const spark_prefixes *t, int with_empty, const char *path, size_t len,
                         spark_metric *m, int *rc_out)
{
    int rc = spark_path_decode(t, path, len, m);
    *rc_out = rc;
    CHECK(rc == SPARK_PATH_OK || rc == SPARK_PATH_SKIP || rc == SPARK_PATH_E_CLUSTER ||
          rc == SPARK_PATH_E_SHAPE);
    if (rc == SPARK_PATH_SKIP) {
        CHECK(m->kind == SPARK_KIND_NONE);
        return;
    }
    CHECK(m->kind == SPARK_KIND_APP || m->kind == SPARK_KIND_MASTER ||
          m->kind == SPARK_KIND_WORKER);
    CHECK(m->name >= path && m->name + m->name_len <= path + len);
    CHECK(memchr(m->name, '.', m->name_len) == NULL);
    if (m->is_counter)
        CHECK(m->name + m->name_len + 6 == path + len &&
              memcmp(m->name + m->name_len, ".count", 6) == 0);
    else
        CHECK(m->name + m->name_len == path + len);
    if (m->gauge != SPARK_G_UNKNOWN) {
        const char *g = spark_gauge_name(m->gauge);
        CHECK(strlen(g) == m->name_len && memcmp(g, m->name, m->name_len) == 0);
        if (m->kind == SPARK_KIND_APP)
            CHECK(m->gauge >= 0 && m->gauge < SPARK_G_APP_COUNT);
        else if (m->kind == SPARK_KIND_MASTER)
            CHECK(m->gauge >= SPARK_G_MASTER_WORKERS && m->gauge < SPARK_G_MASTER_END);
        else
            CHECK(m->gauge >= SPARK_G_WORKER_EXECUTORS && m->gauge < SPARK_G_WORKER_END);
    }
    if (rc == SPARK_PATH_E_SHAPE) {
        CHECK(m->cluster == -1);
        return;
    }
    if (m->kind == SPARK_KIND_APP) {
        const char *l = path;
        size_t n = (size_t)(m->name - path) - ANCHOR_LEN;
        CHECK((size_t)(m->name - path) >= ANCHOR_LEN);
        CHECK(memcmp(m->name - ANCHOR_LEN, anchor, ANCHOR_LEN) == 0);
        CHECK(oracle_app_cluster(l, n, with_empty) == (rc == SPARK_PATH_OK ? m->cluster : -1));
        if (rc == SPARK_PATH_OK) {
            CHECK(m->app_len > 0 && m->app >= path && m->app + m->app_len == path + n);
            CHECK(m->app[0] != '.' && m->app[m->app_len - 1] != '.');
        }
    } else {
        /* "[P.]master.<gauge>": P must be registered exactly. */
        size_t src = (size_t)(m->name - path);   /* just after "master." */
        int want;
        CHECK(src >= 7);
        CHECK(memcmp(m->name - 7, m->kind == SPARK_KIND_MASTER ? "master." : "worker.", 7) == 0);
        if (src == 7)
            want = with_empty ? EMPTY_CLUSTER : -1;
        else
            want = oracle_exact_cluster(path, src - 8);
        CHECK(want == (rc == SPARK_PATH_OK ? m->cluster : -1));
    }
}

/* Every decode result is consistent, and the "" table only adds fallbacks. */
static void check_path(const char *path, size_t len)
{
    spark_metric a, b;
    int ra, rb;
    check_decode(table_plain, 0, path, len, &a, &ra);
    check_decode(table_empty, 1, path, len, &b, &rb);
    CHECK((ra == SPARK_PATH_SKIP) == (rb == SPARK_PATH_SKIP));
    CHECK((ra == SPARK_PATH_E_SHAPE) == (rb == SPARK_PATH_E_SHAPE));
    CHECK(a.kind == b.kind);
    if (ra == SPARK_PATH_OK)
        CHECK(rb == SPARK_PATH_OK && a.cluster == b.cluster);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A parsed value must match strtod bit for bit on the same token. */
static void check_value_token(const char *line, size_t len, const carbon_line *out)
{
    size_t i = (size_t)(out->path + out->path_len - line), j;
    char buf[160];
    char *end;
    double d;

    while (i < len && is_blank(line[i]))
        i++;
    for (j = i; j < len && !is_blank(line[j]); j++)
        ;
    CHECK(j > i);
    if (j - i >= sizeof(buf))
        return;
    memcpy(buf, line + i, j - i);
    buf[j - i] = '\0';
    d = strtod(buf, &end);
    CHECK(end == buf + (j - i));
    CHECK(memcmp(&d, &out->value, sizeof(d)) == 0);
}

static void check_line(const char *line, size_t len)
{
    carbon_line out;
    const char *path = NULL;
    size_t plen = 0;
    int rc = carbon_parse_line(line, len, &out);
    int src = carbon_split_path(line, len, &path, &plen);

    CHECK(rc >= CARBON_OK && rc < CARBON_E_COUNT && rc != CARBON_E_TOO_LONG);
    CHECK(src == CARBON_OK || src == CARBON_E_EMPTY || src == CARBON_E_FIELDS ||
          src == CARBON_E_BINARY);
    CHECK(strcmp(carbon_err_name(rc), "unknown") != 0);
    if (rc == CARBON_E_EMPTY)
        CHECK(src == CARBON_E_EMPTY);
    if (src == CARBON_E_EMPTY)
        CHECK(rc == CARBON_E_EMPTY);
    if (src == CARBON_E_BINARY)
        CHECK(rc == CARBON_E_BINARY);
    if (src == CARBON_OK) {
        /* The daemon's way: split, then parse what follows the path. It
         * agrees with the whole-line parse, or asks for it (RESPLIT). */
        carbon_line after;
        int arc = carbon_parse_after_path(line, len, path, plen, &after);
        if (arc != CARBON_E_RESPLIT) {
            CHECK(arc == rc);
            if (rc == CARBON_OK)
                CHECK(after.path == out.path && after.path_len == out.path_len &&
                      memcmp(&after.value, &out.value, sizeof after.value) == 0 &&
                      after.timestamp_ms == out.timestamp_ms);
        }
    }
    if (rc == CARBON_OK) {
        CHECK(src == CARBON_OK && path == out.path && plen >= out.path_len);
        CHECK(out.path >= line && out.path_len > 0 && out.path + out.path_len <= line + len);
        CHECK(isfinite(out.value));
        CHECK(out.timestamp_ms >= 0);
        check_value_token(line, len, &out);
    }
    if (src == CARBON_OK) {
        size_t k;
        CHECK(plen > 0 && path >= line && path + plen <= line + len);
        /* The fast split stops at the first space; tabs and control bytes
         * are left to carbon_parse_after_path (checked above). */
        for (k = 0; k < plen; k++)
            CHECK(path[k] != ' ');
        check_path(path, plen);
    }
}

typedef struct run {
    size_t max_line;
    size_t lines;
    uint64_t digest;
} run;

static void on_line(void *vctx, const char *line, size_t len, int err)
{
    run *r = vctx;
    size_t i;

    CHECK(len <= r->max_line);
    CHECK(err == CARBON_OK || err == CARBON_E_TOO_LONG);
    if (err == CARBON_E_TOO_LONG)
        CHECK(len == r->max_line);
    CHECK(memchr(line, '\n', len) == NULL);
    r->lines++;
    r->digest = (r->digest ^ (uint64_t)err) * 0x100000001b3ull;
    r->digest = (r->digest ^ (uint64_t)len) * 0x100000001b3ull;
    for (i = 0; i < len; i++)
        r->digest = (r->digest ^ (unsigned char)line[i]) * 0x100000001b3ull;
    if (err == CARBON_OK)
        check_line(line, len);
}

static void stream(const uint8_t *in, size_t n, size_t max_line, const uint8_t *seed,
                   int chunked, run *r)
{
    carbon_stream s;
    char *carry = malloc(max_line ? max_line : 1);   /* exact: ASan guards it */
    size_t off = 0, k = 0, delivered = 0;

    CHECK(carry != NULL);
    r->max_line = max_line;
    r->lines = 0;
    r->digest = 0xcbf29ce484222325ull;
    carbon_stream_init(&s, carry, max_line);
    while (off < n) {
        size_t c = n - off;
        if (chunked) {
            uint8_t b = seed[k++ % 4];
            c = b < 0xf0 ? (size_t)b % 97 + 1 : (size_t)(b - 0xf0) * 512 + 1;
            if (c > n - off)
                c = n - off;
        }
        delivered += carbon_stream_feed(&s, (const char *)in + off, c, on_line, r);
        CHECK(s.carry_len <= max_line);
        off += c;
    }
    delivered += carbon_stream_finish(&s, on_line, r);
    CHECK(delivered == r->lines);
    CHECK(s.carry_len == 0 && s.discarding == 0);
    free(carry);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zero_seed[4] = {0, 0, 0, 0};
    const uint8_t *seed = zero_seed, *in;
    size_t max_line, n, newlines = 0, i;
    run one, split;

    init_tables();
    if (size == 0)
        return 0;
    /* 0x80 set: the daemon's default; else a small maximum (0..127) so
     * over-long lines are common. */
    max_line = (data[0] & 0x80) ? CARBON_DEFAULT_MAX_LINE : (size_t)(data[0] & 0x7f);
    if (size >= 5)
        seed = data + 1;
    in = data + (size >= 5 ? 5 : 1);
    n = size - (size_t)(in - data);

    stream(in, n, max_line, seed, 0, &one);
    stream(in, n, max_line, seed, 1, &split);
    CHECK(one.lines == split.lines && one.digest == split.digest);

    /* One callback per '\n', plus one for a non-empty unterminated tail. */
    for (i = 0; i < n; i++)
        newlines += in[i] == '\n';
    CHECK(one.lines == newlines + (n > 0 && in[n - 1] != '\n'));

    /* The whole payload as one line and as one path, newlines and all. */
    check_line((const char *)in, n);
    check_path((const char *)in, n);
    return 0;
}
