/* fixture.h: reads a recorded fixture (tests/fixtures/<relpath>) for a test,
 * malloc'd at its exact size so ASan sees any overread. Header-only. */
#ifndef SS_TEST_FIXTURE_H
#define SS_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NULL when the file cannot be read; *len gets its size. Caller frees. */
static inline char *fixture_read(const char *relpath, size_t *len)
{
    const char *dir = getenv("SS_SOURCE_DIR");
    char path[4096];
    *len = 0;
    if (dir)
        snprintf(path, sizeof path, "%s/tests/fixtures/%s", dir, relpath);
    else   /* by hand from a build dir: __FILE__ is absolute under CMake */
        snprintf(path, sizeof path, "%.*s/../fixtures/%s",
                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, relpath);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || n < 0 || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

#endif
