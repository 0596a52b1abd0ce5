/* fuzz_jolokia.c: libFuzzer target for the Jolokia answer decoder, the ObjectName key
 * splitter and the request builder (round trip through jansson). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/spark/jolokia.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static void check_result(const ss_jolokia_result *r)
{
    size_t i, j;
    CHECK(r->nitems <= SS_JOLOKIA_MAX_ITEMS);
    for (i = 0; i < r->nitems; i++) {
        const ss_jolokia_item *it = &r->items[i];
        CHECK(it->status >= 100 && it->status <= 999);
        CHECK(it->timestamp_s >= -1);
        if (it->status != 200) {
            CHECK(it->error_type && it->error && it->nsamples == 0);
            CHECK(strlen(it->error) <= SS_JOLOKIA_MAX_TEXT);
            CHECK(strlen(it->error_type) <= SS_JOLOKIA_MAX_TEXT);
            continue;
        }
        CHECK(!it->error_type && !it->error);
        CHECK(it->nsamples <= SS_JOLOKIA_MAX_SAMPLES);
        for (j = 0; j < it->nsamples; j++) {
            const ss_jolokia_sample *s = &it->samples[j];
            char *again;
            CHECK(s->mbean && s->name && s->attribute);
            CHECK(s->name[0] != '\0' && s->attribute[0] != '\0');
            CHECK(isfinite(s->value));
            if (s->is_int)
                CHECK(s->value == (double)s->ivalue);
            /* The name is the mbean's name= key, unquoted. */
            CHECK(strlen(s->mbean) <= SS_JOLOKIA_MAX_NAME);
            again = ss_jolokia_objectname_key(s->mbean, strlen(s->mbean), "name");
            CHECK(again && strcmp(again, s->name) == 0);
            free(again);
        }
    }
}

static void check_objectname(const char *s, size_t n)
{
    static const char *const keys[] = {"name", "type", ""};
    size_t k;
    for (k = 0; k < 3; k++) {
        char *v = ss_jolokia_objectname_key(s, n, keys[k]);
        if (v) {
            CHECK(n <= SS_JOLOKIA_MAX_NAME && strlen(v) < n);
            CHECK(memchr(s, ':', n) != NULL);
            free(v);
        }
    }
}

/* A valid UTF-8, NUL-free input as mbean survives build -> JSON text -> jansson. */
static void check_build(const char *s, size_t n)
{
    ss_jolokia_read rd;
    char *copy, *body = NULL;
    size_t len = 0;
    json_t *j;
    int rc;

    if (n > 4096 || memchr(s, '\0', n))
        return;
    copy = malloc(n + 1);
    CHECK(copy);
    memcpy(copy, s, n);
    copy[n] = '\0';
    rd.mbean = copy;
    rd.attribute = "Value";
    rd.ignore_errors = (int)(n & 1);
    rc = ss_jolokia_build_read(&rd, 1, &body, &len);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        CHECK(strlen(body) == len);
        j = json_loadb(body, len, 0, NULL);
        CHECK(json_is_array(j) && json_array_size(j) == 1);
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(j, 0), "mbean")), copy) == 0);
        json_decref(j);
        free(body);
    } else {
        CHECK(body == NULL);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    ss_jolokia_result *r = (ss_jolokia_result *)err;   /* must be overwritten */
    int rc;

    memset(err, 'x', sizeof(err));
    rc = ss_jolokia_parse((const char *)data, size, &r, err, sizeof(err));
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -E2BIG);
    if (rc == 0) {
        CHECK(r != NULL);
        check_result(r);
        ss_jolokia_result_free(r);
    } else {
        CHECK(r == NULL);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    }
    check_objectname((const char *)data, size);
    check_build((const char *)data, size);
    return 0;
}
