/* fuzz_kubeconfig.c: libFuzzer target for the kubeconfig reader: any input is
 * credentials that hold together or an error naming the file; nothing leaks. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/k8s/creds.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    ss_k8s_creds *c = (ss_k8s_creds *)err;
    memset(err, 'x', sizeof err);
    int rc = ss_k8s_kubeconfig_parse((const char *)data, size, "fuzz", "/base", NULL, &c, err,
                                     sizeof err);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOTSUP || rc == -E2BIG || rc == -ENOMEM);
    if (rc) {
        CHECK(c == NULL);
        CHECK(memchr(err, '\0', sizeof err) != NULL && strncmp(err, "kubeconfig fuzz: ", 17) == 0);
        return 0;
    }
    /* URL schemes are case-insensitive (RFC 3986 3.1). */
    CHECK(c->server && (strncasecmp(c->server, "https://", 8) == 0 || strncasecmp(c->server, "http://", 7) == 0));
    CHECK(!(c->ca_file && c->ca_pem));
    CHECK(!(c->insecure_skip_verify && (c->ca_file || c->ca_pem)));
    CHECK(!(c->cert_file && c->cert_pem) && !(c->key_file && c->key_pem));
    CHECK(!!(c->cert_file || c->cert_pem) == !!(c->key_file || c->key_pem));
    CHECK(!((c->token || c->token_file) && c->username));
    if (c->ca_file)
        CHECK(c->ca_file[0] == '/');
    CHECK(c->origin != NULL);
    ss_k8s_creds_free(c);
    return 0;
}
