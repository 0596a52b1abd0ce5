/* carbon.c: carbon plaintext lines ("<path> <value> <timestamp>") split from a
 * byte stream with memchr and parsed in place; no allocation, no NUL needed. */
#include "carbon/carbon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_names[CARBON_E_COUNT] = {
    "ok", "empty", "fields", "value", "timestamp", "nonfinite", "too_long", "binary",
};

const char *carbon_err_name(int err)
{
    if (err < 0 || err >= CARBON_E_COUNT)
        return "unknown";
    return err_names[err];
}

/* ---- Tokens ---------------------------------------------------------------
 * A field ends at the first byte <= 0x20 (space, tab, or a control byte) or
 * DEL. Eight bytes at a time: paths are ~60 bytes and this runs for every
 * line the daemon receives, relevant or not. */

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline int is_stop(unsigned char c)
{
    return c <= ' ' || c == 0x7f;
}

static inline size_t token_end(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y, m;
        memcpy(&x, s + i, 8);
        /* "has byte < 0x21" and "has byte == 0x7f" (Bit Twiddling Hacks).
         * False positives only sit above a true one, so on little-endian the
         * lowest flagged byte is exact. */
        m = (x - ONES * 0x21) & ~x & HIGHS;
        y = x ^ (ONES * 0x7f);
        m |= (y - ONES) & ~y & HIGHS;
        if (m)
            return i + ((size_t)__builtin_ctzll(m) >> 3);
    }
#endif
    for (; i < n; i++)
        if (is_stop((unsigned char)s[i]))
            return i;
    return n;
}

static inline int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One trailing '\r' belongs to a "\r\n" ending, not to the last field. */
static inline size_t strip_cr(const char *line, size_t len)
{
    return (len > 0 && line[len - 1] == '\r') ? len - 1 : len;
}

/* Splits the next field starting at *pos. Returns CARBON_OK with the field in
 * [*start, *pos), CARBON_E_EMPTY when only blanks remain, CARBON_E_BINARY on a
 * control byte. */
static inline int next_field(const char *line, size_t len, size_t *pos, size_t *start)
{
    size_t i = *pos;
    while (i < len && is_blank(line[i]))
        i++;
    if (i == len)
        return CARBON_E_EMPTY;
    *start = i;
    i += token_end(line + i, len - i);
    if (i < len && !is_blank(line[i]))
        return CARBON_E_BINARY;
    *pos = i;
    return CARBON_OK;
}

int carbon_split_path(const char *line, size_t len, const char **path, size_t *path_len)
{
    size_t pos = 0, start = 0;
    int rc;

    /* Fast path for the common shape "<path> ...": most lines are skipped
     * right after this call, so it only finds the first space (SIMD memchr)
     * and leaves byte validation (tabs, control bytes inside the path) to
     * carbon_parse_after_path on the lines we keep. */
    if (len > 0 && !is_blank(line[0])) {
        const char *sp = memchr(line, ' ', len);
        if (sp) {
            *path = line;
            *path_len = (size_t)(sp - line);
            return CARBON_OK;
        }
    }
    len = strip_cr(line, len);
    rc = next_field(line, len, &pos, &start);
    if (rc != CARBON_OK)
        return rc;
    if (pos == len)
        return CARBON_E_FIELDS;   /* a path alone */
    *path = line + start;
    *path_len = pos - start;
    return CARBON_OK;
}

/* ---- Numbers --------------------------------------------------------------
 * Grammar (Graphite accepts what Python's float() does; Spark sends Java's
 * Double.toString / "%2.2f" forms and NaN / Infinity):
 *   [+-]? ( digits [. digits?] | . digits ) ( [eE] [+-]? digits )?
 *   [+-]? ( nan | inf | infinity )            case-insensitive: non-finite
 * No strtod on the caller's buffer: it is not NUL-terminated. */

enum { NUM_OK = 0, NUM_BAD = -1, NUM_NONFINITE = -2 };

/* Longest token handed to strtod; longer decimals are rejected as malformed
 * (no sender produces 128-digit numbers; the bound keeps the copy on stack). */
#define NUM_MAX_SLOW 128

static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int word_ieq(const char *s, size_t n, const char *lower)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lower[i] == '\0' || (s[i] | 0x20) != lower[i])
            return 0;
    }
    return lower[i] == '\0';
}

static int parse_number(const char *s, size_t n, double *out)
{
    size_t i = 0, sig = 0, mant_digits = 0;
    uint64_t u = 0;
    int neg = 0, dropped = 0;
    long exp10 = 0;

    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    /* Fast path: a plain integer of at most 19 digits. A uint64_t to double
     * conversion rounds once, so the result is correctly rounded. */
    while (i < n && (unsigned)(s[i] - '0') < 10) {
        if (sig < 19) {
            u = u * 10 + (uint64_t)(s[i] - '0');
            if (u != 0)
                sig++;
        } else {
            dropped = 1;
            exp10++;
        }
        mant_digits++;
        i++;
    }
    if (i == n && mant_digits > 0 && !dropped) {
        *out = neg ? -(double)u : (double)u;
        return NUM_OK;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && (unsigned)(s[i] - '0') < 10) {
            if (sig < 19) {
                u = u * 10 + (uint64_t)(s[i] - '0');
                if (u != 0)
                    sig++;
                exp10--;
            } else {
                dropped = 1;
            }
            mant_digits++;
            i++;
        }
    }
    if (mant_digits == 0) {
        const char *w = s + (n > 0 && (s[0] == '-' || s[0] == '+'));
        size_t wn = n - (size_t)(w - s);
        if (word_ieq(w, wn, "nan") || word_ieq(w, wn, "inf") ||
            word_ieq(w, wn, "infinity"))
            return NUM_NONFINITE;
        return NUM_BAD;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        long e = 0;
        int eneg = 0;
        size_t edigits = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
            eneg = s[i] == '-';
            i++;
        }
        while (i < n && (unsigned)(s[i] - '0') < 10) {
            if (e < 100000)   /* saturate: far beyond any double exponent */
                e = e * 10 + (s[i] - '0');
            edigits++;
            i++;
        }
        if (edigits == 0)
            return NUM_BAD;
        exp10 += eneg ? -e : e;
    }
    if (i != n)
        return NUM_BAD;

    /* Clinger's fast path: both u and 10^|e| are exact doubles, so one
     * multiplication or division rounds correctly. */
    if (!dropped && u <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)u;
        d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
        *out = neg ? -d : d;
        return NUM_OK;
    }
    if (n >= NUM_MAX_SLOW)
        return NUM_BAD;
    {
        /* The grammar is checked above, so strtod consumes the whole copy
         * (and cannot see hex or words). The daemon keeps the "C" locale. */
        char buf[NUM_MAX_SLOW];
        char *end;
        double d;
        memcpy(buf, s, n);
        buf[n] = '\0';
        d = strtod(buf, &end);
        if (end != buf + n)
            return NUM_BAD;
        if (!isfinite(d))
            return NUM_NONFINITE;   /* overflowed, e.g. 1e999 */
        *out = d;
        return NUM_OK;
    }
}

/* Epoch seconds (integer or fractional) to epoch milliseconds. */
static int parse_timestamp(const char *s, size_t n, int64_t *out_ms)
{
    double d;
    size_t i;
    int64_t sec = 0;

    /* Fast path: up to 15 digits cannot overflow once multiplied by 1000. */
    if (n > 0 && n <= 15) {
        for (i = 0; i < n && (unsigned)(s[i] - '0') < 10; i++)
            sec = sec * 10 + (s[i] - '0');
        if (i == n) {
            *out_ms = sec * 1000;
            return 0;
        }
    }
    if (parse_number(s, n, &d) != NUM_OK)
        return -1;
    d *= 1000.0;
    /* !(d >= 0) also catches NaN; 2^63 is exactly representable. */
    if (!(d >= 0.0) || d >= 9223372036854775808.0)
        return -1;
    /* Below 2^63 every double >= 2^52 is already integral: no overflow. */
    *out_ms = (int64_t)llround(d);
    return 0;
}

/* The value and timestamp fields from pos (just past the path) on. */
static int parse_fields(const char *line, size_t len, size_t pos, carbon_line *out)
{
    size_t v0 = 0, v1, t0 = 0, t1, extra = 0;
    int rc;

    rc = next_field(line, len, &pos, &v0);
    if (rc == CARBON_E_EMPTY)
        return CARBON_E_FIELDS;
    if (rc != CARBON_OK)
        return rc;
    v1 = pos;

    rc = next_field(line, len, &pos, &t0);
    if (rc == CARBON_E_EMPTY)
        return CARBON_E_FIELDS;
    if (rc != CARBON_OK)
        return rc;
    t1 = pos;

    /* A fourth field is an error, but a control byte anywhere wins. */
    while ((rc = next_field(line, len, &pos, &extra)) == CARBON_OK)
        ;
    if (rc == CARBON_E_BINARY)
        return CARBON_E_BINARY;
    if (extra != 0)
        return CARBON_E_FIELDS;

    switch (parse_number(line + v0, v1 - v0, &out->value)) {
    case NUM_OK:
        break;
    case NUM_NONFINITE:
        return CARBON_E_NONFINITE;
    default:
        return CARBON_E_VALUE;
    }
    if (parse_timestamp(line + t0, t1 - t0, &out->timestamp_ms) != 0)
        return CARBON_E_TIMESTAMP;
    return CARBON_OK;
}

int carbon_parse_line(const char *line, size_t len, carbon_line *out)
{
    size_t pos = 0, p0 = 0;
    len = strip_cr(line, len);
    int rc = next_field(line, len, &pos, &p0);
    if (rc != CARBON_OK)
        return rc;
    out->path = line + p0;
    out->path_len = pos - p0;
    return parse_fields(line, len, pos, out);
}

int carbon_parse_after_path(const char *line, size_t len, const char *path, size_t path_len,
                            carbon_line *out)
{
    /* The path carbon_split_path found must be one token: no tab, no
     * control byte inside. Rare otherwise: the caller parses again whole. */
    if (token_end(path, path_len) != path_len)
        return CARBON_E_RESPLIT;
    out->path = path;
    out->path_len = path_len;
    return parse_fields(line, strip_cr(line, len), (size_t)(path - line) + path_len, out);
}

/* ---- Stream splitter ----------------------------------------------------- */

void carbon_stream_init(carbon_stream *s, char *carry, size_t max_line)
{
    s->carry = carry;
    s->carry_len = 0;
    s->max_line = max_line;
    s->discarding = 0;
}

size_t carbon_stream_feed(carbon_stream *s, const char *data, size_t len,
                          carbon_line_fn fn, void *ctx)
{
    const char *p = data, *end = data + len, *nl;
    size_t n = 0, tail;

    if (len == 0)
        return 0;
    if (s->discarding) {
        nl = memchr(p, '\n', len);
        if (!nl)
            return 0;
        p = nl + 1;
        s->discarding = 0;
    }
    if (s->carry_len > 0 && p < end) {
        size_t take;
        nl = memchr(p, '\n', (size_t)(end - p));
        take = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (take > s->max_line - s->carry_len) {
            /* Report the same first max_line bytes a one-shot feed would. */
            memcpy(s->carry + s->carry_len, p, s->max_line - s->carry_len);
            fn(ctx, s->carry, s->max_line, CARBON_E_TOO_LONG);
            n++;
            s->carry_len = 0;
            if (!nl) {
                s->discarding = 1;
                return n;
            }
        } else {
            memcpy(s->carry + s->carry_len, p, take);
            s->carry_len += take;
            if (!nl)
                return n;
            fn(ctx, s->carry, s->carry_len, CARBON_OK);
            n++;
            s->carry_len = 0;
        }
        p = nl + 1;
    }
    /* The hot loop: whole lines are handed over in place. */
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t l = (size_t)(nl - p);
        if (l <= s->max_line)
            fn(ctx, p, l, CARBON_OK);
        else
            fn(ctx, p, s->max_line, CARBON_E_TOO_LONG);
        n++;
        p = nl + 1;
    }
    tail = (size_t)(end - p);
    if (tail > s->max_line) {
        fn(ctx, p, s->max_line, CARBON_E_TOO_LONG);
        n++;
        s->discarding = 1;
    } else if (tail > 0) {
        memcpy(s->carry, p, tail);
        s->carry_len = tail;
    }
    return n;
}

size_t carbon_stream_finish(carbon_stream *s, carbon_line_fn fn, void *ctx)
{
    size_t l = s->carry_len;

    s->carry_len = 0;
    s->discarding = 0;
    if (l == 0)
        return 0;
    fn(ctx, s->carry, l, CARBON_OK);
    return 1;
}
