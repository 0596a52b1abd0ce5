/* carbon_tcp.h: carbon plaintext over TCP, a source of sparkscaled: Spark
 * 3.2+ connects, sends one report and closes; Spark 2.x keeps one connection. */
#ifndef SS_CARBON_TCP_H
#define SS_CARBON_TCP_H

#include <stddef.h>
#include <uv.h>

#include "ingest/pipeline.h"
#include "lib/base/addr.h"
#include "ingest/source.h"

/* The time all clients together may read for in one loop turn before the
 * rest waits for the next turn: bounds how long a flood of costly lines
 * holds the loop. Each read is sized to the time left at the last read's
 * cost per byte (at least CARBON_TCP_MIN_READ). */
#define CARBON_TCP_TURN_US 1500
#define CARBON_TCP_MIN_READ 4096u
/* ... and a backstop in bytes, far above what known lines reach in that
 * time (a lower one makes more, shorter turns: each costs a poll and two
 * epoll_ctl calls per client, measurable in CPU per line). */
#define CARBON_TCP_TURN_BYTES (4096u * 1024)
/* Clients given a fixed 1 MiB receive buffer (the first ones); more get the
 * kernel's autotuned one. */
#define CARBON_TCP_BIG_RCVBUF_CLIENTS 16

typedef struct carbon_tcp_limits {
    int max_clients;            /* open connections; at the limit, the one idle longest
                                 * (1 s or more without a complete line) makes room,
                                 * else the new one is closed */
    int max_per_peer;           /* connections one address may hold; 0 = no limit */
    int idle_timeout_s;         /* a client without a complete line this long is closed */
    size_t max_line;            /* carbon hard line limit */
    size_t read_buffer;         /* bytes per read */
    const ss_cidr_list *allow;  /* senders accepted at all (borrowed); NULL = anyone */
} carbon_tcp_limits;

/* Binds host:port (a literal or a name, resolved once) and listens. The
 * pipeline is borrowed and must outlive the source. Returns NULL with a
 * message in err (may be NULL) on failure; a handle already created is then
 * closed and freed when the loop next runs. */
ss_source *carbon_tcp_create(uv_loop_t *loop, const char *host, int port,
                             const carbon_tcp_limits *lim, ss_pipeline *pipe,
                             char *err, size_t errlen);

/* Fault injection for tests: the next n client allocations fail. */
void carbon_tcp_fail_next_allocs(ss_source *s, int n);

#endif
