/* daemon.h: sparkscaled as a library: everything one reactor loop runs
 * (listeners, store, policy, bus, status server), so tests can start it on
 * ephemeral ports in-process and main.c stays thin. */
#ifndef SS_DAEMON_H
#define SS_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ingest/decider.h"
#include "ingest/source.h"
#include "lib/config/config.h"

typedef struct ss_daemon ss_daemon;

enum { SS_PORT_CARBON_TCP, SS_PORT_CARBON_UDP, SS_PORT_HTTP };

/* Starts every component on loop. cfg is borrowed and must outlive the
 * daemon. Returns NULL with a message in err; on failure the loop may still
 * hold closing handles: run it once before uv_loop_close. */
ss_daemon *ss_daemon_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen);

/* The bound port (useful with port 0), or -1 when disabled. */
int ss_daemon_port(const ss_daemon *d, int which);

/* The first source of a kind ("carbon_tcp", ...), or NULL: for tests. */
ss_source *ss_daemon_source(const ss_daemon *d, const char *kind);

/* The Kafka bootstrap list in use (the embedded broker's too). */
const char *ss_daemon_kafka_bootstrap(const ss_daemon *d);

/* Reaction time, for benchmarks and tests: called on the loop thread when
 * Kafka acknowledges a decision that a carbon line triggered, with the
 * microseconds from reading that line to the acknowledgement. Set it before
 * the loop runs. */
typedef ss_reaction_fn ss_daemon_reaction_fn;
void ss_daemon_set_reaction_hook(ss_daemon *d, ss_daemon_reaction_fn fn, void *ctx);

/* Decisions not yet acknowledged by Kafka (in flight or held). */
uint64_t ss_daemon_pending_decisions(const ss_daemon *d);

/* At shutdown, *lost (caller-owned) receives the number of decisions Kafka
 * never acknowledged (the flush timed out). */
void ss_daemon_set_lost_counter(ss_daemon *d, uint64_t *lost);

/* Stops listening, evaluates once more, flushes Kafka (bounded by
 * flush_timeout_ms), closes every handle and frees the daemon; then calls
 * done(ctx). The loop returns once done has run. */
void ss_daemon_shutdown(ss_daemon *d, int flush_timeout_ms, void (*done)(void *ctx), void *ctx);

#endif
