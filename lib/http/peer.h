/* peer.h: an HTTP peer of the configuration (Spark master, Jolokia agent,
 * Oshinko) as request settings: TLS and credentials. */
#ifndef SS_HTTP_PEER_H
#define SS_HTTP_PEER_H

#include <stddef.h>

#include "lib/config/config.h"
#include "lib/http/client.h"

/* Fills req's TLS and auth fields from pc (pointers into pc, or into
 * token_buf: tokenlen bytes of caller storage that must live until
 * ss_http_client_start returns). A bearer_token_file is read on every call,
 * so a rotated token is picked up. Returns 0, or -errno when the token file
 * cannot be read (err says which file, never the token). */
int ss_http_peer_apply(const ss_http_peer_conf *pc, ss_http_client_request *req,
                       char *token_buf, size_t tokenlen, char *err, size_t errlen);

#endif
