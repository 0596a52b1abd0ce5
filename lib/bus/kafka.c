/* kafka.c: shared librdkafka plumbing for the producer, the consumer and
 * the reader: configuration, logs, loop events, statistics, embedded mock. */
#include "lib/bus/kafka.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/base/log.h"
#include "lib/base/str.h"

int ss_kafka_is_embedded(const ss_bus_conf *bc)
{
    return !bc->brokers || bc->brokers[0] == '\0' || strcmp(bc->brokers, SS_BUS_EMBEDDED) == 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, const char *what,
                    char *err, size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(conf, key, val, e, sizeof e) != RD_KAFKA_CONF_OK) {
        ss_errf(err, errlen, "%s%s: %s", what, key, e);
        return -EINVAL;
    }
    return 0;
}

rd_kafka_conf_t *ss_kafka_conf_new(const ss_bus_conf *bc, const char *bootstrap,
                                   const ss_kv *defaults, size_t ndefaults,
                                   char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", bootstrap ? bootstrap : "", "", err, errlen) < 0 ||
        conf_set(conf, "client.id", bc->client_id ? bc->client_id : "sparkscale", "", err,
                 errlen) < 0)
        goto fail;
    for (size_t i = 0; i < ndefaults; i++)
        if (conf_set(conf, defaults[i].key, defaults[i].value, "", err, errlen) < 0)
            goto fail;
    for (size_t i = 0; i < bc->nproperties; i++) {
        const ss_kv *kv = &bc->properties[i];
        if (!kv->key || !kv->value) {
            ss_errf(err, errlen, "kafka.properties: entry %zu has no key or value", i);
            goto fail;
        }
        if (conf_set(conf, kv->key, kv->value, "kafka.properties.", err, errlen) < 0)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

int ss_kafka_check_properties(const ss_kv *props, size_t nprops, char *err, size_t errlen)
{
    ss_bus_conf bc = { .properties = props, .nproperties = nprops };
    rd_kafka_conf_t *conf = ss_kafka_conf_new(&bc, "", NULL, 0, err, errlen);
    if (!conf)
        return -EINVAL;
    /* No brokers: the client is built (TLS files loaded, SASL checked) but
     * never connects. A user's own bootstrap.servers was syntax-checked above. */
    char e[512];
    rd_kafka_conf_set(conf, "bootstrap.servers", "", e, sizeof e);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        ss_errf(err, errlen, "kafka.properties: %s", e);
        return -EINVAL;
    }
    rd_kafka_destroy(rk);
    return 0;
}

void ss_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    ss_log_level l = level <= 2 ? SS_LOG_ERROR : level <= 4 ? SS_LOG_WARN
                   : level <= 6 ? SS_LOG_INFO : SS_LOG_DEBUG;
    ss_log(l, "rdkafka %s: %s", fac, buf);
}

int ss_kafka_stats_brokers(const char *json, size_t len, int *up, int *known)
{
    *up = *known = 0;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = root ? json_object_get(root, "brokers") : NULL;
    if (!json_is_object(brokers)) {
        json_decref(root);
        return -EINVAL;
    }
    const char *name;
    json_t *b;
    json_object_foreach(brokers, name, b) {
        const char *source = json_string_value(json_object_get(b, "source"));
        const char *state = json_string_value(json_object_get(b, "state"));
        if (!source || strcmp(source, "internal") == 0)
            continue;   /* the internal pseudo-broker is not a connection */
        (*known)++;
        if (state && strcmp(state, "UP") == 0)
            (*up)++;
    }
    json_decref(root);
    return 0;
}

/* ---- queue events on the loop ---- */

static void on_readable(uv_poll_t *h, int status, int events)
{
    ss_kafka_events *ev = h->data;
    uint64_t v;
    (void)status, (void)events;
    /* Drain first: anything enqueued after this read writes the fd again. */
    while (read(ev->fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
    ev->on_ready(ev->ctx);
}

int ss_kafka_events_init(ss_kafka_events *ev, uv_loop_t *loop, void (*on_ready)(void *ctx),
                         void *ctx)
{
    memset(ev, 0, sizeof *ev);
    ev->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev->fd < 0)
        return -errno;
    if (uv_poll_init(loop, &ev->poll, ev->fd) < 0) {
        close(ev->fd);
        ev->fd = -1;
        return -EIO;
    }
    ev->on_ready = on_ready;
    ev->ctx = ctx;
    ev->poll.data = ev;
    ev->open = 1;
    uv_poll_start(&ev->poll, UV_READABLE, on_readable);
    return 0;
}

void ss_kafka_events_watch(ss_kafka_events *ev, rd_kafka_queue_t *q)
{
    static const uint64_t one = 1;   /* eventfd takes 8-byte writes */
    rd_kafka_queue_io_event_enable(q, ev->fd, &one, sizeof one);
}

void ss_kafka_events_unwatch(rd_kafka_queue_t *q)
{
    rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
}

static void on_events_closed(uv_handle_t *h)
{
    ss_kafka_events *ev = h->data;
    close(ev->fd);
    ev->fd = -1;
    if (ev->closed)
        ev->closed(ev->closed_ctx);
}

void ss_kafka_events_close(ss_kafka_events *ev, void (*closed)(void *ctx), void *ctx)
{
    if (!ev->open) {
        if (closed)
            closed(ctx);
        return;
    }
    ev->open = 0;
    ev->closed = closed;
    ev->closed_ctx = ctx;
    uv_poll_stop(&ev->poll);
    uv_close((uv_handle_t *)&ev->poll, on_events_closed);
}

/* ---- the embedded mock cluster ---- */

struct ss_kafka_mock {
    rd_kafka_t *rk;               /* carries the mock cluster; never connects anywhere */
    rd_kafka_mock_cluster_t *cluster;
    char bootstrap[512];
};

ss_kafka_mock *ss_kafka_mock_start(const char *const *topics, size_t ntopics, char *err,
                                   size_t errlen)
{
    char e[512];
    ss_kafka_mock *m = calloc(1, sizeof *m);
    if (!m) {
        ss_errf(err, errlen, "embedded kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Its "no bootstrap.servers" notice (level 5) is noise. */
    rd_kafka_conf_set(conf, "log_level", "4", e, sizeof e);
    rd_kafka_conf_set(conf, "client.id", "sparkscale-embedded-kafka", e, sizeof e);
    /* Small records, latency first: Nagle meeting delayed ACKs costs ~40 ms. */
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", e, sizeof e);
    rd_kafka_conf_set_log_cb(conf, ss_kafka_on_log);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!m->rk) {
        rd_kafka_conf_destroy(conf);
        ss_errf(err, errlen, "embedded kafka: %s", e);
        free(m);
        return NULL;
    }
    m->cluster = rd_kafka_mock_cluster_new(m->rk, SS_KAFKA_EMBEDDED_BROKERS);
    if (!m->cluster) {
        ss_errf(err, errlen, "embedded kafka: cannot start the mock cluster");
        ss_kafka_mock_stop(m);
        return NULL;
    }
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t r = rd_kafka_mock_topic_create(
            m->cluster, topics[i], SS_KAFKA_EMBEDDED_PARTITIONS, SS_KAFKA_EMBEDDED_BROKERS);
        if (r) {
            ss_errf(err, errlen, "embedded kafka: create topic %s: %s", topics[i],
                    rd_kafka_err2str(r));
            ss_kafka_mock_stop(m);
            return NULL;
        }
    }
    snprintf(m->bootstrap, sizeof m->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(m->cluster));
    return m;
}

const char *ss_kafka_mock_bootstrap(const ss_kafka_mock *m) { return m->bootstrap; }

rd_kafka_mock_cluster_t *ss_kafka_mock_cluster(const ss_kafka_mock *m) { return m ? m->cluster : NULL; }

void ss_kafka_mock_stop(ss_kafka_mock *m)
{
    if (!m)
        return;
    if (m->cluster)
        rd_kafka_mock_cluster_destroy(m->cluster);
    if (m->rk)
        rd_kafka_destroy(m->rk);
    free(m);
}
