/* bus.c: the Kafka producer for decisions and audit records, driven by a libuv
 * loop through librdkafka's queue IO events (no polling thread); embedded mock. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "lib/bus/bus.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

#define SAFETY_TIMER_MS 500     /* serves librdkafka even if an IO event was missed */
#define CLOSE_TIMER_MS 20       /* while flushing on close */
#define RETRY_BACKOFF_US 1000000
#define LOG_EVERY_US 5000000    /* summaries of repeated conditions */
#define MAX_CLUSTERS 65536
#define DEFAULT_MAX_PENDING 100000

const int64_t ss_bus_latency_bounds_us[SS_BUS_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2000, 3000, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000, 5000000, 30000000, INT64_MAX,
};

enum { MSG_DECISION, MSG_AUDIT };

struct bus_cluster;

/* One record on its way. Owns its payload: librdkafka only references it
 * (no F_COPY/F_FREE), so a failed or purged record can be re-produced. */
typedef struct bus_msg {
    struct bus_msg *prev, *next;   /* in the in-flight list, or the audit held FIFO */
    int kind;
    struct bus_cluster *c;         /* decisions */
    uint64_t seq;
    int64_t t0_us;                 /* first publish call */
    int64_t trigger_us;
    int64_t retry_at_us;           /* held: not before this (0 = when room frees up) */
    uint8_t *payload;
    size_t len;
    char key[SS_NAME_MAX];
} bus_msg;

typedef struct bus_cluster {
    char name[SS_NAME_MAX];
    uint64_t last_seq;             /* newest sequence assigned */
    uint64_t acked_seq;            /* newest sequence the brokers acknowledged */
    bus_msg *held;                 /* newest undelivered decision kept by us, or NULL */
} bus_cluster;

struct ss_bus {
    uv_loop_t *loop;
    uint64_t *lost_out;            /* set by ss_bus_set_close_report */
    const ss_config *cfg;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    rd_kafka_t *mock_rk;           /* owns the embedded mock cluster */
    rd_kafka_mock_cluster_t *mock;
    int evfd;
    uv_poll_t poll;
    uv_timer_t timer;
    int handles_open;
    char bootstrap[1024];
    char decisions_topic[SS_NAME_MAX * 2];
    char audit_topic[SS_NAME_MAX * 2];
    int max_pending;
    int64_t epoch;

    bus_cluster **table;           /* open addressing, power-of-two capacity */
    size_t table_cap;
    size_t nclusters;

    bus_msg inflight;              /* list head (circular) */
    bus_msg *audit_held_head, *audit_held_tail;
    uint64_t audit_in_flight;

    ss_bus_delivery_cb on_delivery;
    void *on_delivery_ctx;
    ss_bus_stats st;

    int fatal;                     /* librdkafka raised a fatal error: rebuild the producer */
    int room_freed;                /* a delivery report freed queue space */
    int64_t next_retry_scan_us;
    int64_t log_superseded_us, log_fail_us, log_queue_full_us;
    uint64_t superseded_logged;

    int closing;
    int finished;
    int64_t close_deadline_us;
    void (*done)(void *);
    void *done_ctx;
};

/* ---- small helpers ---- */


static void lat_add(ss_bus_latency *l, int64_t us)
{
    if (us < 0)
        us = 0;
    l->count++;
    l->sum_us += (uint64_t)us;
    l->last_us = us;
    if (us > l->max_us)
        l->max_us = us;
    int i = 0;
    while (i < SS_BUS_LAT_BUCKETS - 1 && us > ss_bus_latency_bounds_us[i])
        i++;
    l->buckets[i]++;
}

static int every(int64_t *last_us, int64_t now_us)
{
    if (*last_us && now_us - *last_us < LOG_EVERY_US)
        return 0;
    *last_us = now_us;
    return 1;
}

static void note_error(ss_bus *bus, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(ss_bus *bus, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bus->st.last_error, sizeof bus->st.last_error, fmt, ap);
    va_end(ap);
}

static void msg_free(bus_msg *m)
{
    if (!m)
        return;
    free(m->payload);
    free(m);
}

static void inflight_link(ss_bus *bus, bus_msg *m)
{
    m->next = bus->inflight.next;
    m->prev = &bus->inflight;
    bus->inflight.next->prev = m;
    bus->inflight.next = m;
}

static void inflight_unlink(bus_msg *m)
{
    m->prev->next = m->next;
    m->next->prev = m->prev;
    m->prev = m->next = NULL;
}

/* ---- clusters (FNV-1a, linear probing) ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bus_cluster *cluster_find(const ss_bus *bus, const char *name)
{
    if (!bus->table_cap)
        return NULL;
    size_t mask = bus->table_cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        bus_cluster *c = bus->table[i];
        if (!c)
            return NULL;
        if (strcmp(c->name, name) == 0)
            return c;
    }
}

static int table_grow(ss_bus *bus)
{
    size_t cap = bus->table_cap ? bus->table_cap * 2 : 64;
    bus_cluster **t = calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t j = 0; j < bus->table_cap; j++) {
        bus_cluster *c = bus->table[j];
        if (!c)
            continue;
        size_t i = hash_name(c->name) & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = c;
    }
    free(bus->table);
    bus->table = t;
    bus->table_cap = cap;
    return 0;
}

static bus_cluster *cluster_get(ss_bus *bus, const char *name)
{
    bus_cluster *c = cluster_find(bus, name);
    if (c)
        return c;
    if (bus->nclusters >= MAX_CLUSTERS)
        return NULL;
    if ((bus->nclusters + 1) * 10 > bus->table_cap * 7 && table_grow(bus) < 0)
        return NULL;
    if (!(c = calloc(1, sizeof *c)))
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    size_t mask = bus->table_cap - 1;
    size_t i = hash_name(name) & mask;
    while (bus->table[i])
        i = (i + 1) & mask;
    bus->table[i] = c;
    bus->nclusters++;
    return c;
}

/* ---- producing, holding, retrying ---- */

static void report(ss_bus *bus, const bus_msg *m, int err, int64_t now_us)
{
    if (bus->on_delivery && !bus->finished)
        bus->on_delivery(bus->on_delivery_ctx, m->c->name, m->seq, err, now_us - m->t0_us);
}

/* Hands m to librdkafka. Returns 0 (m now in flight) or the rdkafka error. */
static rd_kafka_resp_err_t produce_msg(ss_bus *bus, bus_msg *m)
{
    const char *topic = m->kind == MSG_DECISION ? bus->decisions_topic : bus->audit_topic;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        bus->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, strlen(m->key)),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_OPAQUE(m),
        RD_KAFKA_V_END);
    if (e)
        return e;
    inflight_link(bus, m);
    if (m->kind == MSG_DECISION)
        bus->st.in_flight++;
    else
        bus->audit_in_flight++;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void log_supersede(ss_bus *bus, const bus_msg *old, uint64_t by)
{
    ss_debug("bus: decision %s #%" PRIu64 " superseded by #%" PRIu64 " before delivery", old->c->name,
             old->seq, by);
}

/* Drops the decision held for c: a newer one (by_seq) replaces it. Only the
 * newest decision of a cluster matters to the actuator. */
static void supersede_held(ss_bus *bus, bus_cluster *c, uint64_t by_seq)
{
    bus_msg *old = c->held;
    log_supersede(bus, old, by_seq);
    bus->st.superseded++;
    bus->st.held--;
    c->held = NULL;
    report(bus, old, -ECANCELED, ss_mono_us());
    msg_free(old);
}

/* Keeps m (the newest decision of its cluster) for a later retry. Returns 0,
 * or -ENOSPC when the holding area is full (m dropped, counted, logged). */
static int hold_decision(ss_bus *bus, bus_msg *m, int64_t retry_at_us)
{
    bus_cluster *c = m->c;
    if (c->held)
        supersede_held(bus, c, m->seq);
    if (bus->st.held >= (uint64_t)bus->max_pending) {
        ss_error("bus: holding area full (%d decisions): decision %s #%" PRIu64 " (desired "
                 "workers in it lost) dropped",
                 bus->max_pending, c->name, m->seq);
        bus->st.dropped++;
        report(bus, m, -ENOSPC, ss_mono_us());
        msg_free(m);
        return -ENOSPC;
    }
    m->retry_at_us = retry_at_us;
    c->held = m;
    bus->st.held++;
    return 0;
}

static void hold_audit(ss_bus *bus, bus_msg *m, int64_t retry_at_us)
{
    /* audit_pending still counts m itself. */
    uint64_t held = bus->st.audit_pending - bus->audit_in_flight - 1;
    if (held >= (uint64_t)bus->max_pending && bus->audit_held_head) {
        bus_msg *old = bus->audit_held_head;
        bus->audit_held_head = old->next;
        if (!bus->audit_held_head)
            bus->audit_held_tail = NULL;
        ss_error("bus: audit holding area full (%d): oldest audit record of %s dropped",
                 bus->max_pending, old->key);
        bus->st.audit_dropped++;
        bus->st.audit_pending--;
        msg_free(old);
    }
    m->retry_at_us = retry_at_us;
    m->next = NULL;
    if (bus->audit_held_tail)
        bus->audit_held_tail->next = m;
    else
        bus->audit_held_head = m;
    bus->audit_held_tail = m;
}

static const char *produce_hint(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return " (the topic does not exist and the brokers do not create it: create it, "
               "or allow auto-creation)";
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return " (check the ACLs / credentials in kafka.properties)";
    default:
        return "";
    }
}

/* Re-produces held records that are due. Stops at the first full queue. */
static void retry_held(ss_bus *bus, int64_t now_us, int ignore_backoff)
{
    if (bus->fatal)
        return;
    if (bus->st.held) {
        for (size_t i = 0; i < bus->table_cap; i++) {
            bus_cluster *c = bus->table[i];
            if (!c || !c->held)
                continue;
            bus_msg *m = c->held;
            if (!ignore_backoff && m->retry_at_us > now_us)
                continue;
            rd_kafka_resp_err_t e = produce_msg(bus, m);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                return;
            if (e) {
                m->retry_at_us = now_us + RETRY_BACKOFF_US;
                note_error(bus, "produce to %s: %s", bus->decisions_topic, rd_kafka_err2str(e));
                if (every(&bus->log_fail_us, now_us))
                    ss_warn("bus: %s: %s%s; %" PRIu64 " decisions held, retrying",
                            bus->decisions_topic, rd_kafka_err2str(e), produce_hint(e), bus->st.held);
                continue;
            }
            c->held = NULL;
            bus->st.held--;
            bus->st.retried++;
        }
    }
    while (bus->audit_held_head) {
        bus_msg *m = bus->audit_held_head;
        if (!ignore_backoff && m->retry_at_us > now_us)
            break;
        bus->audit_held_head = m->next;
        if (!bus->audit_held_head)
            bus->audit_held_tail = NULL;
        rd_kafka_resp_err_t e = produce_msg(bus, m);
        if (e) {
            /* Back to the front, order kept. */
            m->next = bus->audit_held_head;
            bus->audit_held_head = m;
            if (!bus->audit_held_tail)
                bus->audit_held_tail = m;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                m->retry_at_us = now_us + RETRY_BACKOFF_US;
            break;
        }
    }
}

/* librdkafka delivery report (served on the loop thread by rd_kafka_poll). */
static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    ss_bus *bus = opaque;
    bus_msg *m = rkm->_private;
    if (!m)
        return;
    int64_t now = ss_mono_us();
    inflight_unlink(m);
    bus->room_freed = 1;

    if (m->kind == MSG_AUDIT) {
        bus->audit_in_flight--;
        if (!rkm->err) {
            bus->st.audit_delivered++;
            bus->st.audit_pending--;
            msg_free(m);
            return;
        }
        bus->st.audit_failed++;
        note_error(bus, "audit delivery: %s", rd_kafka_err2str(rkm->err));
        if (bus->finished) {
            bus->st.audit_pending--;
            msg_free(m);
            return;
        }
        if (every(&bus->log_fail_us, now))
            ss_warn("bus: audit record of %s not delivered to %s: %s%s; kept, retrying", m->key,
                    bus->audit_topic, rd_kafka_err2str(rkm->err), produce_hint(rkm->err));
        hold_audit(bus, m, now + RETRY_BACKOFF_US);
        return;
    }

    bus->st.in_flight--;
    bus_cluster *c = m->c;
    if (!rkm->err) {
        int64_t lat = now - m->t0_us;
        bus->st.delivered++;
        lat_add(&bus->st.latency, lat);
        if (m->trigger_us > 0)
            lat_add(&bus->st.trigger_latency, now - m->trigger_us);
        if (m->seq > c->acked_seq)
            c->acked_seq = m->seq;
        if (bus->st.broker_state == 0)
            ss_info("bus: Kafka reachable again (a held decision was delivered)");
        bus->st.broker_state = 1;
        report(bus, m, 0, now);
        msg_free(m);
        return;
    }

    bus->st.failed++;
    note_error(bus, "delivery to %s: %s", bus->decisions_topic, rd_kafka_err2str(rkm->err));
    if (bus->finished) {
        msg_free(m);
        return;
    }
    if (m->seq < c->last_seq) {
        /* A newer decision of this cluster is in flight, held or delivered. */
        log_supersede(bus, m, c->last_seq);
        bus->st.superseded++;
        report(bus, m, -ECANCELED, now);
        msg_free(m);
        return;
    }
    if (every(&bus->log_fail_us, now))
        ss_warn("bus: decision %s #%" PRIu64 " not delivered to %s: %s%s; kept, retrying", c->name,
                m->seq, bus->decisions_topic, rd_kafka_err2str(rkm->err), produce_hint(rkm->err));
    report(bus, m, -EAGAIN, now);
    /* Purged records (producer rebuilt) go out again at once. */
    int purged = rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    hold_decision(bus, m, purged ? 0 : now + RETRY_BACKOFF_US);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    ss_bus *bus = opaque;
    note_error(bus, "%s: %s", rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        ss_error("bus: fatal producer error %s: %s; rebuilding the producer", rd_kafka_err2name(orig), buf);
        note_error(bus, "fatal %s: %s", rd_kafka_err2name(orig), buf);
        bus->fatal = 1;
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        bus->st.broker_state = 0;
        bus->st.brokers_up = 0;
        ss_warn("bus: all Kafka brokers are down (%s): decisions are kept until they return", reason);
        return;
    }
    /* Connection errors also arrive as librdkafka log lines: no second copy. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE)
        ss_debug("bus: kafka: %s: %s", rd_kafka_err2name(err), reason);
    else
        ss_warn("bus: kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    ss_log_level l = level <= 2 ? SS_LOG_ERROR : level <= 4 ? SS_LOG_WARN : level <= 6 ? SS_LOG_INFO : SS_LOG_DEBUG;
    ss_log(l, "rdkafka %s: %s", fac, buf);
}

/* Counts brokers in state UP from the statistics JSON (STATISTICS.md):
 * "brokers":{ "<name>": { ..., "source":"learned", "state":"UP", ... }, ... }. */
static int count_up(const char *json, size_t len, int *known)
{
    const char *p = strstr(json, "\"brokers\":{");
    if (!p)
        return 0;
    const char *end = strstr(p, "\"topics\":{");
    if (!end)
        end = json + len;
    int up = 0;
    *known = 0;
    while ((p = strstr(p, "\"source\":\"")) && p < end) {
        p += 10;
        int internal = strncmp(p, "internal\"", 9) == 0;
        const char *s = strstr(p, "\"state\":\"");
        if (!s || s >= end)
            break;
        s += 9;
        if (!internal) {
            (*known)++;
            if (strncmp(s, "UP\"", 3) == 0)
                up++;
        }
        p = s;
    }
    return up;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    ss_bus *bus = opaque;
    int known = 0;
    int up = count_up(json, len, &known);
    int was = bus->st.broker_state;
    bus->st.brokers_up = up;
    if (known) {
        bus->st.broker_state = up > 0;
        if (was == 0 && up > 0)
            ss_info("bus: Kafka reachable again (%d brokers up)", up);
    }
    return 0; /* librdkafka frees json */
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, char *err, size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(conf, key, val, e, sizeof e) != RD_KAFKA_CONF_OK) {
        ss_errf(err, errlen, "kafka.properties.%s: %s", key, e);
        return -EINVAL;
    }
    return 0;
}

static int make_producer(ss_bus *bus, char *err, size_t errlen)
{
    const ss_config *cfg = bus->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    int linger = cfg->kafka.linger_ms >= 0 ? cfg->kafka.linger_ms : 1;

    /* Ours first, so kafka.properties can override any of them. */
    struct { const char *k, *v; } defaults[] = {
        { "bootstrap.servers", bus->bootstrap },
        { "client.id", "sparkscale" },
        { "enable.idempotence", "true" },
        { "acks", "all" },
        /* 0 = never time out: a decision waits for the brokers to return. */
        { "message.timeout.ms", "0" },
        /* Java's partitioner, so any client keys a cluster to the same partition. */
        { "partitioner", "murmur2_random" },
        { "reconnect.backoff.max.ms", "1000" },
        /* Small records, latency first: Nagle + delayed ACK costs ~40 ms. */
        { "socket.nagle.disable", "true" },
        { "topic.metadata.propagation.max.ms", "10000" },
        { "statistics.interval.ms", "1000" },
        { "log.queue", "true" },
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (conf_set(conf, defaults[i].k, defaults[i].v, err, errlen) < 0)
            goto fail;
    snprintf(num, sizeof num, "%d", linger);
    if (conf_set(conf, "linger.ms", num, err, errlen) < 0)
        goto fail;
    snprintf(num, sizeof num, "%d", bus->max_pending);
    if (conf_set(conf, "queue.buffering.max.messages", num, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
        const ss_kv *kv = &cfg->kafka.properties[i];
        if (!kv->key || !kv->value) {
            ss_errf(err, errlen, "kafka.properties: entry %zu has no key or value", i);
            goto fail;
        }
        if (conf_set(conf, kv->key, kv->value, err, errlen) < 0)
            goto fail;
    }
    /* kafka.properties may have replaced it: report what is really used. */
    size_t blen = sizeof bus->bootstrap;
    if (rd_kafka_conf_get(conf, "bootstrap.servers", bus->bootstrap, &blen) != RD_KAFKA_CONF_OK)
        bus->bootstrap[0] = '\0';
    rd_kafka_conf_set_opaque(conf, bus);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_stats_cb(conf, on_stats);

    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk) {
        ss_errf(err, errlen, "kafka producer: %s", e);
        goto fail;
    }
    /* From here on librdkafka owns conf. Logs go to the main queue too, so
     * every callback runs on the loop thread. */
    rd_kafka_set_log_queue(rk, NULL);
    bus->mainq = rd_kafka_queue_get_main(rk);
    static const uint64_t one = 1; /* eventfd takes 8-byte writes */
    rd_kafka_queue_io_event_enable(bus->mainq, bus->evfd, &one, sizeof one);
    bus->rk = rk;
    return 0;
fail:
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
}

/* Destroys the producer. Records it did not report are handed back: held
 * for the new producer (rebuild) or counted as undelivered (close). */
static void destroy_producer(ss_bus *bus)
{
    if (!bus->rk)
        return;
    rd_kafka_purge(bus->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(bus->rk, 0);
    rd_kafka_queue_io_event_enable(bus->mainq, -1, NULL, 0);
    rd_kafka_queue_destroy(bus->mainq);
    bus->mainq = NULL;
    rd_kafka_destroy(bus->rk);
    bus->rk = NULL;
    while (bus->inflight.next != &bus->inflight) {
        bus_msg *m = bus->inflight.next;
        inflight_unlink(m);
        if (m->kind == MSG_AUDIT) {
            bus->audit_in_flight--;
            if (bus->finished) {
                bus->st.audit_pending--;
                msg_free(m);
            } else {
                hold_audit(bus, m, 0);
            }
            continue;
        }
        bus->st.in_flight--;
        if (bus->finished) {
            msg_free(m);
        } else if (m->seq < m->c->last_seq) {
            bus->st.superseded++;
            report(bus, m, -ECANCELED, ss_mono_us());
            msg_free(m);
        } else {
            hold_decision(bus, m, 0);
        }
    }
}

static void rebuild_producer(ss_bus *bus)
{
    char err[512];
    destroy_producer(bus);
    if (make_producer(bus, err, sizeof err) < 0) {
        ss_error("bus: cannot rebuild the producer: %s (retrying)", err);
        return;
    }
    bus->fatal = 0;
    bus->st.producer_rebuilds++;
    ss_info("bus: producer rebuilt; %" PRIu64 " decisions re-queued", bus->st.held);
    retry_held(bus, ss_mono_us(), 1);
}

/* ---- loop integration ---- */

static void finish_close(ss_bus *bus);

static void serve(ss_bus *bus)
{
    if (bus->finished)
        return;
    if (bus->rk) /* NULL only while a rebuild after a fatal error keeps failing */
        rd_kafka_poll(bus->rk, 0);
    int64_t now = ss_mono_us();
    if (bus->room_freed && (bus->st.held || bus->audit_held_head)) {
        bus->room_freed = 0;
        retry_held(bus, now, bus->closing);
    }
    if (bus->closing && !bus->finished) {
        int drained = bus->st.in_flight == 0 && bus->st.held == 0 && bus->st.audit_pending == 0;
        if (drained || now >= bus->close_deadline_us)
            finish_close(bus);
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    ss_bus *bus = h->data;
    uint64_t v;
    /* Drain first: anything enqueued after this read writes the fd again. */
    while (read(bus->evfd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
    serve(bus);
}

static void on_timer(uv_timer_t *t)
{
    ss_bus *bus = t->data;
    int64_t now = ss_mono_us();
    if (bus->fatal && !bus->closing)
        rebuild_producer(bus);
    if (bus->st.held || bus->audit_held_head)
        retry_held(bus, now, bus->closing);
    if (bus->st.superseded != bus->superseded_logged && every(&bus->log_superseded_us, now)) {
        ss_warn("bus: %" PRIu64 " decisions superseded by newer ones of their cluster before delivery "
                "(%" PRIu64 " in total; the newest of each cluster is kept)",
                bus->st.superseded - bus->superseded_logged, bus->st.superseded);
        bus->superseded_logged = bus->st.superseded;
    }
    serve(bus);
}

/* ---- embedded mock cluster ---- */

static int start_mock(ss_bus *bus, char *err, size_t errlen)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* This handle only carries the mock cluster; it never connects anywhere,
     * so its "no bootstrap.servers" notice (level 5) is noise. */
    rd_kafka_conf_set(conf, "log_level", "4", e, sizeof e);
    rd_kafka_conf_set(conf, "client.id", "sparkscale-embedded-kafka", e, sizeof e);
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", e, sizeof e);
    rd_kafka_conf_set_log_cb(conf, on_log);
    bus->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!bus->mock_rk) {
        ss_errf(err, errlen, "embedded kafka: %s", e);
        return -EIO;
    }
    bus->mock = rd_kafka_mock_cluster_new(bus->mock_rk, SS_BUS_EMBEDDED_BROKERS);
    if (!bus->mock) {
        ss_errf(err, errlen, "embedded kafka: cannot start the mock cluster");
        return -EIO;
    }
    const char *topics[] = { bus->decisions_topic, bus->audit_topic };
    for (size_t i = 0; i < 2; i++) {
        rd_kafka_resp_err_t r = rd_kafka_mock_topic_create(bus->mock, topics[i], SS_BUS_EMBEDDED_PARTITIONS,
                                                           SS_BUS_EMBEDDED_BROKERS);
        if (r) {
            ss_errf(err, errlen, "embedded kafka: create topic %s: %s", topics[i], rd_kafka_err2str(r));
            return -EIO;
        }
    }
    snprintf(bus->bootstrap, sizeof bus->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(bus->mock));
    ss_info("bus: embedded Kafka (librdkafka mock, %d brokers) at %s", SS_BUS_EMBEDDED_BROKERS, bus->bootstrap);
    return 0;
}

static void free_bus_memory(ss_bus *bus)
{
    for (size_t i = 0; i < bus->table_cap; i++) {
        bus_cluster *c = bus->table[i];
        if (!c)
            continue;
        msg_free(c->held);
        free(c);
    }
    free(bus->table);
    while (bus->audit_held_head) {
        bus_msg *m = bus->audit_held_head;
        bus->audit_held_head = m->next;
        msg_free(m);
    }
    free(bus);
}

/* Tears down what ss_bus_create built before the uv handles existed. */
static void destroy_early(ss_bus *bus)
{
    destroy_producer(bus);
    if (bus->mock)
        rd_kafka_mock_cluster_destroy(bus->mock);
    if (bus->mock_rk)
        rd_kafka_destroy(bus->mock_rk);
    if (bus->evfd >= 0)
        close(bus->evfd);
    free_bus_memory(bus);
}

ss_bus *ss_bus_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen)
{
    if (!loop || !cfg) {
        ss_errf(err, errlen, "bus: no loop or config");
        return NULL;
    }
    ss_bus *bus = calloc(1, sizeof *bus);
    if (!bus) {
        ss_errf(err, errlen, "bus: out of memory");
        return NULL;
    }
    bus->loop = loop;
    bus->cfg = cfg;
    bus->evfd = -1;
    bus->inflight.next = bus->inflight.prev = &bus->inflight;
    bus->st.broker_state = -1;
    bus->max_pending = cfg->kafka.max_pending > 0 ? cfg->kafka.max_pending : DEFAULT_MAX_PENDING;
    if (bus->max_pending > 10000000)
        bus->max_pending = 10000000;
    snprintf(bus->decisions_topic, sizeof bus->decisions_topic, "%s",
             cfg->kafka.decisions_topic[0] ? cfg->kafka.decisions_topic : "sparkscale.decisions");
    snprintf(bus->audit_topic, sizeof bus->audit_topic, "%s",
             cfg->kafka.audit_topic[0] ? cfg->kafka.audit_topic : "sparkscale.audit");
    /* Fixed per process start: with the per-cluster sequence it orders decisions
     * across restarts (a restarted producer has a larger epoch). */
    bus->epoch = ss_wall_ms();
    bus->st.epoch = bus->epoch;

    bus->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bus->evfd < 0) {
        ss_errf(err, errlen, "bus: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (cfg->kafka.brokers[0] == '\0' || strcmp(cfg->kafka.brokers, SS_BUS_EMBEDDED) == 0) {
        if (start_mock(bus, err, errlen) < 0)
            goto fail;
    } else {
        snprintf(bus->bootstrap, sizeof bus->bootstrap, "%s", cfg->kafka.brokers);
    }
    if (make_producer(bus, err, errlen) < 0)
        goto fail;

    if (uv_poll_init(loop, &bus->poll, bus->evfd) < 0 || uv_timer_init(loop, &bus->timer) < 0) {
        ss_errf(err, errlen, "bus: cannot watch the kafka event fd");
        goto fail; /* uv_poll_init / uv_timer_init fail only before registering */
    }
    bus->poll.data = bus;
    bus->timer.data = bus;
    bus->handles_open = 2;
    uv_poll_start(&bus->poll, UV_READABLE, on_readable);
    uv_timer_start(&bus->timer, on_timer, SAFETY_TIMER_MS, SAFETY_TIMER_MS);
    ss_info("bus: producer epoch %" PRId64 ", bootstrap %s, topics %s / %s", bus->epoch, bus->bootstrap,
            bus->decisions_topic, bus->audit_topic);
    return bus;
fail:
    destroy_early(bus);
    return NULL;
}

void ss_bus_set_delivery_cb(ss_bus *bus, ss_bus_delivery_cb cb, void *ctx)
{
    bus->on_delivery = cb;
    bus->on_delivery_ctx = ctx;
}

const char *ss_bus_bootstrap(const ss_bus *bus)
{
    return bus ? bus->bootstrap : "";
}

void *ss_bus_mock_cluster(const ss_bus *bus)
{
    return bus ? bus->mock : NULL;
}

void *ss_bus_producer_handle(const ss_bus *bus)
{
    return bus ? bus->rk : NULL;
}

uint64_t ss_bus_last_sequence(const ss_bus *bus, const char *cluster)
{
    const bus_cluster *c = bus && cluster ? cluster_find(bus, cluster) : NULL;
    return c ? c->last_seq : 0;
}

void ss_bus_get_stats(const ss_bus *bus, ss_bus_stats *out)
{
    *out = bus->st;
    out->pending = bus->st.in_flight + bus->st.held;
}

int ss_bus_publish_seq(ss_bus *bus, const ss_decision *d, uint64_t *sequence_out)
{
    if (!bus || !d)
        return -EINVAL;
    if (bus->closing)
        return -ESHUTDOWN;
    size_t n = strnlen(d->cluster, sizeof d->cluster);
    if (n == 0 || n >= sizeof d->cluster)
        return -EINVAL;
    int64_t now = ss_mono_us();
    bus_cluster *c = cluster_get(bus, d->cluster);
    if (!c) {
        bus->st.dropped++;
        ss_error("bus: decision for %s dropped: more than %d clusters", d->cluster, MAX_CLUSTERS);
        return -ENOSPC;
    }

    ss_decision w = *d;
    w.producer_epoch = bus->epoch;
    w.sequence = c->last_seq + 1;
    if (w.decided_at_ms == 0)
        w.decided_at_ms = ss_wall_ms();
    if (w.expires_at_ms == 0 && bus->cfg->kafka.decision_ttl_s > 0)
        w.expires_at_ms = w.decided_at_ms + (int64_t)bus->cfg->kafka.decision_ttl_s * 1000;
    if (bus->cfg->policy.dry_run)
        w.dry_run = 1;

    bus_msg *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    int rc = ss_decision_encode(&w, &m->payload, &m->len);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->kind = MSG_DECISION;
    m->c = c;
    m->seq = w.sequence;
    m->t0_us = now;
    m->trigger_us = d->trigger_us;
    memcpy(m->key, d->cluster, n + 1);
    c->last_seq = w.sequence;
    bus->st.published++;
    if (sequence_out)
        *sequence_out = w.sequence;

    if (c->held)
        supersede_held(bus, c, m->seq); /* the new decision replaces the one kept */
    rd_kafka_resp_err_t e = bus->fatal ? RD_KAFKA_RESP_ERR__FATAL : produce_msg(bus, m);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (every(&bus->log_queue_full_us, now))
            ss_warn("bus: %d records queued in librdkafka (kafka.max_pending): keeping the newest "
                    "decision of each cluster until there is room",
                    bus->max_pending);
        return hold_decision(bus, m, 0);
    }
    note_error(bus, "produce to %s: %s", bus->decisions_topic, rd_kafka_err2str(e));
    if (every(&bus->log_fail_us, now))
        ss_warn("bus: decision %s #%" PRIu64 " not queued for %s: %s%s; kept, retrying", c->name, m->seq,
                bus->decisions_topic, rd_kafka_err2str(e), produce_hint(e));
    /* Accepted (held) unless the holding area itself is full. */
    return hold_decision(bus, m, e == RD_KAFKA_RESP_ERR__FATAL ? 0 : now + RETRY_BACKOFF_US);
}

int ss_bus_publish(ss_bus *bus, const ss_decision *d)
{
    return ss_bus_publish_seq(bus, d, NULL);
}

int ss_bus_produce_audit(ss_bus *bus, const ss_actuation_result *r)
{
    if (!bus || !r)
        return -EINVAL;
    if (bus->closing)
        return -ESHUTDOWN;
    bus_msg *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    int rc = ss_actuation_encode(r, &m->payload, &m->len);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->kind = MSG_AUDIT;
    m->t0_us = ss_mono_us();
    snprintf(m->key, sizeof m->key, "%s", r->cluster);
    bus->st.audit_published++;
    bus->st.audit_pending++;
    rd_kafka_resp_err_t e = bus->fatal ? RD_KAFKA_RESP_ERR__FATAL : produce_msg(bus, m);
    if (e) {
        note_error(bus, "produce to %s: %s", bus->audit_topic, rd_kafka_err2str(e));
        hold_audit(bus, m, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? 0 : m->t0_us + RETRY_BACKOFF_US);
    }
    return 0;
}

/* ---- close ---- */

static void on_handle_closed(uv_handle_t *h)
{
    ss_bus *bus = h->data;
    if (--bus->handles_open > 0)
        return;
    void (*done)(void *) = bus->done;
    void *ctx = bus->done_ctx;
    close(bus->evfd);
    free_bus_memory(bus);
    if (done)
        done(ctx);
}

static void finish_close(ss_bus *bus)
{
    bus->finished = 1;
    uint64_t lost = bus->st.in_flight + bus->st.held;
    uint64_t lost_audit = bus->st.audit_pending;
    if (bus->lost_out)
        *bus->lost_out = lost;
    if (lost || lost_audit)
        ss_error("bus: closing with %" PRIu64 " decisions and %" PRIu64 " audit records not acknowledged "
                 "by Kafka (flush timed out)",
                 lost, lost_audit);
    else
        ss_info("bus: flushed; %" PRIu64 " decisions delivered", bus->st.delivered);
    destroy_producer(bus);
    if (bus->mock) {
        rd_kafka_mock_cluster_destroy(bus->mock);
        bus->mock = NULL;
    }
    if (bus->mock_rk) {
        rd_kafka_destroy(bus->mock_rk);
        bus->mock_rk = NULL;
    }
    uv_poll_stop(&bus->poll);
    uv_timer_stop(&bus->timer);
    uv_close((uv_handle_t *)&bus->poll, on_handle_closed);
    uv_close((uv_handle_t *)&bus->timer, on_handle_closed);
}

void ss_bus_set_close_report(ss_bus *bus, uint64_t *lost_decisions)
{
    bus->lost_out = lost_decisions;
}

void ss_bus_close(ss_bus *bus, int flush_timeout_ms, void (*done)(void *), void *ctx)
{
    if (!bus || bus->closing)
        return;
    bus->closing = 1;
    bus->done = done;
    bus->done_ctx = ctx;
    if (flush_timeout_ms < 0)
        flush_timeout_ms = 0;
    int64_t now = ss_mono_us();
    bus->close_deadline_us = now + (int64_t)flush_timeout_ms * 1000;
    if (bus->fatal)
        rebuild_producer(bus);
    retry_held(bus, now, 1);
    uv_timer_start(&bus->timer, on_timer, 0, CLOSE_TIMER_MS);
}
