/* str.h: bounded string copies for fixed-size buffers. */
#ifndef SS_STR_H
#define SS_STR_H
#include <stddef.h>

/* Copies src into dst (size bytes, always NUL-terminated, truncating).
 * Returns strlen(src): a result >= size means it was truncated. */
size_t ss_strlcpy(char *dst, const char *src, size_t size);

#endif
