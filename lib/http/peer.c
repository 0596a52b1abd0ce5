/* peer.c: configuration of an HTTP peer into request settings. */
#include "lib/http/peer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/base/str.h"

/* Reads a token file into buf, trailing blanks and newlines trimmed. */
static int read_token(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        ss_errf(err, errlen, "bearer_token_file %s: %s", path, strerror(e));
        return -e;
    }
    size_t n = fread(buf, 1, len - 1, f);
    int toolong = n == len - 1 && fgetc(f) != EOF;
    fclose(f);
    if (toolong) {
        ss_errf(err, errlen, "bearer_token_file %s: longer than %zu bytes", path, len - 1);
        return -E2BIG;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\n', n) || memchr(buf, '\0', n)) {
        ss_errf(err, errlen, "bearer_token_file %s: empty or not one line", path);
        return -EINVAL;
    }
    return 0;
}

int ss_http_peer_apply(const ss_http_peer_conf *pc, ss_http_client_request *req,
                       char *token_buf, size_t tokenlen, char *err, size_t errlen)
{
    req->tls.insecure_skip_verify = pc->insecure_skip_verify;
    req->tls.ca_file = pc->ca_file && pc->ca_file[0] ? pc->ca_file : NULL;
    if (pc->username && pc->username[0]) {
        req->basic_user = pc->username;
        req->basic_password = pc->password;
    }
    if (pc->bearer_token && pc->bearer_token[0]) {
        req->bearer_token = pc->bearer_token;
    } else if (pc->bearer_token_file && pc->bearer_token_file[0]) {
        if (!token_buf || tokenlen < 2)
            return -EINVAL;
        int rc = read_token(pc->bearer_token_file, token_buf, tokenlen, err, errlen);
        if (rc)
            return rc;
        req->bearer_token = token_buf;
    }
    return 0;
}
