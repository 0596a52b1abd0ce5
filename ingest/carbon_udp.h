/* carbon_udp.h: carbon plaintext over UDP, a source of sparkscaled: one line
 * a datagram as Spark's GraphiteSink sends, several accepted too. */
#ifndef SS_CARBON_UDP_H
#define SS_CARBON_UDP_H

#include <stddef.h>
#include <uv.h>

#include "ingest/pipeline.h"
#include "lib/base/addr.h"
#include "ingest/source.h"

/* Binds host:port (a literal or a name, resolved once). Datagrams from
 * senders outside allow (borrowed; NULL = anyone) are dropped unread and
 * counted. The pipeline is borrowed and must outlive the source. Returns NULL with a message in err
 * (may be NULL); a handle already created is closed when the loop next runs. */
ss_source *carbon_udp_create(uv_loop_t *loop, const char *host, int port, size_t max_line,
                             const ss_cidr_list *allow, ss_pipeline *pipe, char *err,
                             size_t errlen);

#endif
