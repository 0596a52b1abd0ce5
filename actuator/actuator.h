/* actuator.h: sparkscale-actuator as a library: everything one loop runs
 * (the Kafka group member with its transactional audit producer, one state
 * machine and backend per cluster, the HTTP client, the status server), so
 * tests start it in-process on ephemeral ports and main.c stays thin. */
#ifndef SS_ACTUATOR_H
#define SS_ACTUATOR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/config/config.h"

typedef struct ss_actuator ss_actuator;

/* fetch.wait.max.ms with kafka.brokers: embedded (kafka.properties may
 * override it). librdkafka's mock cluster answers a fetch that finds nothing
 * only after fetch.wait.max.ms, whatever arrives meanwhile (real brokers
 * answer at once), so this bounds how fast a decision is picked up, at the
 * cost of that many empty fetches a second while idle. */
#define SS_ACTUATOR_EMBEDDED_FETCH_WAIT_MS 2

/* Starts on loop; cfg is borrowed and must outlive the actuator. With
 * kafka.brokers "embedded" the bootstrap list is asked from the sparkscaled
 * of the same file (GET /v1/kafka on ingest.http), retried until it
 * answers. Returns NULL with err set (the loop may hold closing handles:
 * run it before uv_loop_close). */
ss_actuator *ss_actuator_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen);

/* The status server's bound port (-1 when disabled). */
int ss_actuator_port(const ss_actuator *a);

/* This instance's id (actuator.id, or host name and pid). */
const char *ss_actuator_id(const ss_actuator *a);

/* The Kafka bootstrap list once known ("" before). */
const char *ss_actuator_bootstrap(const ss_actuator *a);

/* Non-zero after a fatal error stopped it (the process should exit 1). */
int ss_actuator_failed(const ss_actuator *a);

/* Called when a fatal error starts a shutdown on its own (set before the
 * loop runs; may be NULL). done(ctx) of that shutdown follows. */
void ss_actuator_on_fatal(ss_actuator *a, void (*done)(void *ctx), void *ctx);

/* For benchmarks and tests: called on the loop thread each time a
 * transaction committed n audit records. Set before the loop runs. */
void ss_actuator_set_commit_hook(ss_actuator *a, void (*fn)(void *ctx, size_t n), void *ctx);

/* Clean stop: leaves the group (every cluster finishes or abandons its
 * action safely, the last audits are committed, bounded by timeout_ms),
 * closes every handle and frees a; then done(ctx). */
void ss_actuator_shutdown(ss_actuator *a, int timeout_ms, void (*done)(void *ctx), void *ctx);

#endif
