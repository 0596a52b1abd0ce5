/* kafka.h: what every librdkafka client of ours shares: configuration from
 * ss_bus_conf (our defaults first, then the user's properties, a rejected
 * key named), librdkafka's logs in ours, its queue events on the libuv loop,
 * the statistics JSON, and the embedded mock cluster. */
#ifndef SS_BUS_KAFKA_H
#define SS_BUS_KAFKA_H

#include <stddef.h>
#include <uv.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "lib/bus/conf.h"

#define SS_KAFKA_EMBEDDED_BROKERS 3     /* so acks=all waits for replicas */
#define SS_KAFKA_EMBEDDED_PARTITIONS 4

/* Non-zero when bc asks for the embedded mock cluster. */
int ss_kafka_is_embedded(const ss_bus_conf *bc);

/* A new librdkafka configuration: bootstrap.servers = bootstrap (may be ""),
 * client.id, then defaults[0..n) (our choices for this client), then every
 * bc->properties entry, so users can override ours. Returns NULL with a
 * message naming the key in err. The caller owns the result (rd_kafka_new
 * takes it on success). */
rd_kafka_conf_t *ss_kafka_conf_new(const ss_bus_conf *bc, const char *bootstrap,
                                   const ss_kv *defaults, size_t ndefaults,
                                   char *err, size_t errlen);

/* Validates props the way a daemon start would (each value, then a client
 * built without brokers, which loads TLS files and checks SASL settings),
 * without connecting anywhere. Returns 0 or -EINVAL with err naming the key. */
int ss_kafka_check_properties(const ss_kv *props, size_t nprops, char *err, size_t errlen);

/* librdkafka log callback into ss_log (syslog levels mapped to ours). */
void ss_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Parses librdkafka's statistics JSON (STATISTICS.md): *known brokers
 * (bootstrap and learned, not internal) and how many are UP. Returns 0, or
 * -EINVAL for JSON without a "brokers" object. */
int ss_kafka_stats_brokers(const char *json, size_t len, int *up, int *known);

/* librdkafka queue events on the loop: an eventfd that librdkafka writes
 * when a queue gets an event, watched by a uv_poll. No thread, no polling. */
typedef struct ss_kafka_events {
    uv_poll_t poll;
    int fd;
    int open;
    void (*on_ready)(void *ctx);  /* the queue has events: serve it */
    void *ctx;
    void (*closed)(void *ctx);
    void *closed_ctx;
} ss_kafka_events;

/* Returns 0 or a negative errno (no eventfd). ev is caller storage that must
 * stay put until closed. */
int ss_kafka_events_init(ss_kafka_events *ev, uv_loop_t *loop, void (*on_ready)(void *ctx),
                         void *ctx);
/* Routes q's events to ev (q borrowed; call ss_kafka_events_unwatch before
 * destroying q). */
void ss_kafka_events_watch(ss_kafka_events *ev, rd_kafka_queue_t *q);
void ss_kafka_events_unwatch(rd_kafka_queue_t *q);
/* Stops watching and closes the handle and the fd; closed(ctx) runs from
 * the close callback (may be NULL). */
void ss_kafka_events_close(ss_kafka_events *ev, void (*closed)(void *ctx), void *ctx);

/* The embedded cluster: librdkafka's mock brokers on loopback, real Kafka
 * protocol, with topics created. */
typedef struct ss_kafka_mock ss_kafka_mock;

/* Starts it with the given topics (SS_KAFKA_EMBEDDED_PARTITIONS each).
 * Returns NULL with err set. */
ss_kafka_mock *ss_kafka_mock_start(const char *const *topics, size_t ntopics, char *err,
                                   size_t errlen);
/* "127.0.0.1:port,..." (owned by the mock). */
const char *ss_kafka_mock_bootstrap(const ss_kafka_mock *m);
/* For tests that inject errors (owned by the mock). */
rd_kafka_mock_cluster_t *ss_kafka_mock_cluster(const ss_kafka_mock *m);
/* Stops the brokers and frees m (NULL is a no-op). Blocks ~1 s in librdkafka 2.0. */
void ss_kafka_mock_stop(ss_kafka_mock *m);

#endif
