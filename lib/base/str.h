/* str.h: bounded string copies for fixed-size buffers. */
#ifndef SS_STR_H
#define SS_STR_H
#include <stddef.h>

/* Copies src into dst (size bytes, always NUL-terminated, truncating).
 * Returns strlen(src): a result >= size means it was truncated. */
size_t ss_strlcpy(char *dst, const char *src, size_t size);

/* Formats an error message into err (errlen bytes); does nothing when err is
 * NULL or errlen is 0, so callers may pass an optional buffer through. */
void ss_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
