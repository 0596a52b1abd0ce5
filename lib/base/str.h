/* str.h: bounded strings: copies into fixed buffers, optional error
 * messages, quoting for messages and YAML, UTF-8 validation. */
#ifndef SS_STR_H
#define SS_STR_H
#include <stddef.h>
#include <stdio.h>

/* A key and its value, both owned by whoever owns the array. */
typedef struct ss_kv {
    char *key;
    char *value;
} ss_kv;

/* Copies src into dst (size bytes, always NUL-terminated, truncating).
 * Returns strlen(src): a result >= size means it was truncated. */
size_t ss_strlcpy(char *dst, const char *src, size_t size);

/* Formats an error message into err (errlen bytes); does nothing when err is
 * NULL or errlen is 0, so callers may pass an optional buffer through. */
void ss_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Non-zero when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
int ss_utf8_valid(const char *s, size_t len);

/* Writes s as a double-quoted string that YAML, JSON readers and humans
 * take back: '"' and '\' escaped, control characters and bytes that are
 * not valid UTF-8 as \xNN (so a log line or a message never carries raw
 * binary). At most max bytes of s are quoted (0 = all); a cut shows "...".
 * dst always ends up NUL-terminated when dstlen > 0; the quote is cut to fit. */
void ss_quote(char *dst, size_t dstlen, const char *s, size_t max);

/* The same quoting, written to a stream without a length limit. */
void ss_fquote(FILE *out, const char *s);

/* Writes url into out (outlen bytes, NUL-terminated, truncated) with its
 * secrets masked: "user:password@" as "user:***@", "token@" as "***@",
 * and the values of query parameters named like token, secret, pass, auth,
 * key or sig as "***". Returns the length of the whole masked URL (as
 * snprintf does: out may be NULL with outlen 0 to measure). */
size_t ss_mask_url(const char *url, char *out, size_t outlen);

/* Replaces every occurrence of secret in msg (a NUL-terminated string in a
 * buffer of cap bytes; at most 1 KiB is kept) by "***". */
void ss_scrub(char *msg, size_t cap, const char *secret);

#endif
