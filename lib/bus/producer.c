/* producer.c: the Kafka producer for decisions and audit records, driven by
 * a libuv loop through librdkafka's queue IO events (no polling thread). */
#include "lib/bus/producer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/join.h"
#include "lib/bus/kafka.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

#define SAFETY_TIMER_MS 500     /* serves librdkafka even if an IO event was missed */
#define CLOSE_TIMER_MS 20       /* while flushing on close */
#define RETRY_BACKOFF_US 1000000
#define LOG_EVERY_US 5000000    /* summaries of repeated conditions */
#define DEFAULT_MAX_PENDING 100000


enum { MSG_DECISION, MSG_AUDIT };



/* One record on its way. Owns its payload: librdkafka only references it
 * (no F_COPY/F_FREE), so a failed or purged record can be re-produced. */
typedef struct bus_msg {
    struct bus_msg *prev, *next;   /* in the in-flight list, or the audit held FIFO */
    int kind;
    struct ss_bus_cluster *c;      /* decisions */
    uint64_t seq;
    int64_t t0_us;                 /* first publish call */
    int64_t trigger_us;
    int64_t retry_at_us;           /* held: not before this (0 = when room frees up) */
    uint8_t *payload;
    size_t len;
    char key[SS_BUS_NAME_MAX];
} bus_msg;

struct ss_bus_cluster {
    char name[SS_BUS_NAME_MAX];
    void *ctx;                     /* reported back with every delivery */
    uint64_t last_seq;             /* newest sequence assigned */
    uint64_t acked_seq;            /* newest sequence the brokers acknowledged */
    bus_msg *held;                 /* newest undelivered decision kept by us, or NULL */
    struct ss_bus_cluster *next_held; /* in the bus's list of clusters with a held decision */
    int in_held_list;
};
typedef struct ss_bus_cluster bus_cluster;

struct ss_bus {
    uv_loop_t *loop;
    uint64_t *lost_out;            /* set by ss_bus_set_close_report */
    const ss_bus_conf *bc;         /* borrowed */
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    ss_kafka_mock *mock;           /* embedded mode */
    ss_kafka_events events;        /* librdkafka's main queue on the loop */
    uv_timer_t timer;
    ss_join handles;               /* the events poll and the timer, until closed */
    char bootstrap[1024];
    char decisions_topic[256];
    char audit_topic[256];
    int max_pending;
    int64_t epoch;

    bus_cluster **table;           /* name lookup: open addressing, power-of-two capacity */
    size_t table_cap;
    size_t nclusters;
    bus_cluster *held_list;        /* clusters that may have a held decision */

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

ss_bus_cluster *ss_bus_cluster_add(ss_bus *bus, const char *name, void *ctx)
{
    size_t n = name ? strlen(name) : 0;
    if (!bus || n == 0 || n >= SS_BUS_NAME_MAX)
        return NULL;
    bus_cluster *c = cluster_find(bus, name);
    if (c)
        return c;
    if ((bus->nclusters + 1) * 10 > bus->table_cap * 7 && table_grow(bus) < 0)
        return NULL;
    if (!(c = calloc(1, sizeof *c)))
        return NULL;
    memcpy(c->name, name, n + 1);
    c->ctx = ctx;
    size_t mask = bus->table_cap - 1;
    size_t i = hash_name(name) & mask;
    while (bus->table[i])
        i = (i + 1) & mask;
    bus->table[i] = c;
    bus->nclusters++;
    return c;
}

const char *ss_bus_cluster_name(const ss_bus_cluster *c) { return c->name; }

uint64_t ss_bus_cluster_last_sequence(const ss_bus_cluster *c) { return c ? c->last_seq : 0; }

/* ---- producing, holding, retrying ---- */

static void report(ss_bus *bus, const bus_msg *m, int err, int64_t now_us)
{
    if (bus->on_delivery && !bus->finished)
        bus->on_delivery(bus->on_delivery_ctx, m->c->ctx, m->seq, err, now_us - m->t0_us);
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
    if (!c->in_held_list) {
        c->in_held_list = 1;
        c->next_held = bus->held_list;
        bus->held_list = c;
    }
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
    /* Only clusters with something held are visited, not every cluster. */
    for (bus_cluster **pc = &bus->held_list; *pc;) {
        bus_cluster *c = *pc;
        if (!c->held) {
            *pc = c->next_held;
            c->next_held = NULL;
            c->in_held_list = 0;
            continue;
        }
        bus_msg *m = c->held;
        if (!ignore_backoff && m->retry_at_us > now_us) {
            pc = &c->next_held;
            continue;
        }
        rd_kafka_resp_err_t e = produce_msg(bus, m);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return;
        if (e) {
            m->retry_at_us = now_us + RETRY_BACKOFF_US;
            note_error(bus, "produce to %s: %s", bus->decisions_topic, rd_kafka_err2str(e));
            if (every(&bus->log_fail_us, now_us))
                ss_warn("bus: %s: %s%s; %" PRIu64 " decisions held, retrying",
                        bus->decisions_topic, rd_kafka_err2str(e), produce_hint(e), bus->st.held);
            pc = &c->next_held;
            continue;
        }
        c->held = NULL;
        bus->st.held--;
        bus->st.retried++;
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
        ss_hist_add(&bus->st.latency, lat);
        if (m->trigger_us > 0)
            ss_hist_add(&bus->st.trigger_latency, now - m->trigger_us);
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

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    ss_bus *bus = opaque;
    int up, known;
    if (ss_kafka_stats_brokers(json, len, &up, &known) != 0)
        return 0;
    int was = bus->st.broker_state;
    bus->st.brokers_up = up;
    if (known) {
        bus->st.broker_state = up > 0;
        if (was == 0 && up > 0)
            ss_info("bus: Kafka reachable again (%d brokers up)", up);
    }
    return 0; /* librdkafka frees json */
}

static int make_producer(ss_bus *bus, char *err, size_t errlen)
{
    char linger[16], pending[16];
    snprintf(linger, sizeof linger, "%d", bus->bc->linger_ms >= 0 ? bus->bc->linger_ms : 1);
    snprintf(pending, sizeof pending, "%d", bus->max_pending);
    /* Ours first, so kafka.properties can override any of them. */
    const ss_kv defaults[] = {
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
        { "linger.ms", linger },
        { "queue.buffering.max.messages", pending },
    };
    rd_kafka_conf_t *conf = ss_kafka_conf_new(bus->bc, bus->bootstrap, defaults,
                                              sizeof defaults / sizeof defaults[0], err, errlen);
    if (!conf)
        return -EINVAL;
    /* kafka.properties may have replaced it: report what is really used. */
    size_t blen = sizeof bus->bootstrap;
    if (rd_kafka_conf_get(conf, "bootstrap.servers", bus->bootstrap, &blen) != RD_KAFKA_CONF_OK)
        bus->bootstrap[0] = '\0';
    rd_kafka_conf_set_opaque(conf, bus);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, ss_kafka_on_log);
    rd_kafka_conf_set_stats_cb(conf, on_stats);

    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        ss_errf(err, errlen, "kafka producer: %s", e);
        return -EINVAL;
    }
    /* From here on librdkafka owns conf. Logs go to the main queue too, so
     * every callback runs on the loop thread. */
    rd_kafka_set_log_queue(rk, NULL);
    bus->mainq = rd_kafka_queue_get_main(rk);
    ss_kafka_events_watch(&bus->events, bus->mainq);
    bus->rk = rk;
    return 0;
}

/* Destroys the producer. Records it did not report are handed back: held
 * for the new producer (rebuild) or counted as undelivered (close). */
static void destroy_producer(ss_bus *bus)
{
    if (!bus->rk)
        return;
    rd_kafka_purge(bus->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(bus->rk, 0);
    ss_kafka_events_unwatch(bus->mainq);
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

static void on_events(void *ctx)
{
    serve(ctx);
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

/* At start, before the loop runs: the topics' metadata, so the first
 * decision does not wait for librdkafka's periodic lookup of an unknown
 * topic (about a second), and a missing topic is said at once. Bounded: with
 * the brokers away it waits at most START_METADATA_MS. */
#define START_METADATA_MS 2000

static void check_topics(ss_bus *bus)
{
    const char *names[] = { bus->decisions_topic, bus->audit_topic };
    for (size_t i = 0; i < 2; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(bus->rk, names[i], NULL);
        if (!rkt)
            continue;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(bus->rk, 0, rkt, &md, START_METADATA_MS);
        if (!e && bus->st.broker_state < 0) {
            /* a broker answered: connected, before the first statistics */
            bus->st.broker_state = 1;
            bus->st.brokers_up = 1;
        }
        if (e) {
            ss_warn("bus: no metadata for topic %s at start (%s): decisions wait until the "
                    "brokers answer", names[i], rd_kafka_err2str(e));
        } else if (md->topic_cnt < 1 || md->topics[0].err) {
            rd_kafka_resp_err_t te = md->topic_cnt ? md->topics[0].err
                                                   : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            ss_error("bus: topic %s: %s%s", names[i], rd_kafka_err2str(te), produce_hint(te));
        } else {
            ss_debug("bus: topic %s has %d partitions", names[i], md->topics[0].partition_cnt);
            bus->st.topics_ready++;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
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

static void on_handle_closed(uv_handle_t *h);
static void on_part_closed(void *ctx);
static void finish_free(void *ctx);

ss_bus *ss_bus_create(uv_loop_t *loop, const ss_bus_conf *bc, char *err, size_t errlen)
{
    if (!loop || !bc) {
        ss_errf(err, errlen, "bus: no loop or configuration");
        return NULL;
    }
    ss_bus *bus = calloc(1, sizeof *bus);
    if (!bus) {
        ss_errf(err, errlen, "bus: out of memory");
        return NULL;
    }
    bus->loop = loop;
    bus->bc = bc;
    bus->inflight.next = bus->inflight.prev = &bus->inflight;
    bus->st.broker_state = -1;
    bus->max_pending = bc->max_pending > 0 ? bc->max_pending : DEFAULT_MAX_PENDING;
    if (bus->max_pending > 10000000)
        bus->max_pending = 10000000;
    snprintf(bus->decisions_topic, sizeof bus->decisions_topic, "%s",
             bc->decisions_topic && bc->decisions_topic[0] ? bc->decisions_topic : "sparkscale.decisions");
    snprintf(bus->audit_topic, sizeof bus->audit_topic, "%s",
             bc->audit_topic && bc->audit_topic[0] ? bc->audit_topic : "sparkscale.audit");
    /* Fixed per process start: with the per-cluster sequence it tells this
     * process's decisions apart from an earlier one's. */
    bus->epoch = ss_wall_ms();
    bus->st.epoch = bus->epoch;

    int rc = ss_kafka_events_init(&bus->events, loop, on_events, bus);
    if (rc < 0) {
        ss_errf(err, errlen, "bus: cannot watch librdkafka's events: %s", strerror(-rc));
        free_bus_memory(bus);
        return NULL;
    }
    uv_timer_init(loop, &bus->timer);
    bus->timer.data = bus;
    ss_join_init(&bus->handles, finish_free, bus);
    ss_join_add(&bus->handles);   /* two handles: the guard reference is one of them */

    if (ss_kafka_is_embedded(bc)) {
        const char *topics[] = { bus->decisions_topic, bus->audit_topic };
        bus->mock = ss_kafka_mock_start(topics, 2, err, errlen);
        if (!bus->mock)
            goto fail;
        snprintf(bus->bootstrap, sizeof bus->bootstrap, "%s", ss_kafka_mock_bootstrap(bus->mock));
        ss_info("bus: embedded Kafka (librdkafka mock, %d brokers) at %s",
                SS_KAFKA_EMBEDDED_BROKERS, bus->bootstrap);
    } else {
        snprintf(bus->bootstrap, sizeof bus->bootstrap, "%s", bc->brokers);
    }
    if (make_producer(bus, err, errlen) < 0)
        goto fail;
    check_topics(bus);
    uv_timer_start(&bus->timer, on_timer, SAFETY_TIMER_MS, SAFETY_TIMER_MS);
    ss_info("bus: producer epoch %" PRId64 ", bootstrap %s, topics %s / %s", bus->epoch, bus->bootstrap,
            bus->decisions_topic, bus->audit_topic);
    return bus;
fail:
    /* Nothing was produced: tear down, then free from the close callbacks. */
    bus->finished = 1;
    destroy_producer(bus);
    ss_kafka_mock_stop(bus->mock);
    bus->mock = NULL;
    ss_kafka_events_close(&bus->events, on_part_closed, bus);
    uv_close((uv_handle_t *)&bus->timer, on_handle_closed);
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
    return bus ? ss_kafka_mock_cluster(bus->mock) : NULL;
}

void *ss_bus_producer_handle(const ss_bus *bus)
{
    return bus ? bus->rk : NULL;
}

void ss_bus_get_stats(const ss_bus *bus, ss_bus_stats *out)
{
    *out = bus->st;
    out->pending = bus->st.in_flight + bus->st.held;
}

int ss_bus_publish(ss_bus *bus, ss_bus_cluster *c, const ss_decision *d, uint64_t *sequence_out)
{
    if (!bus || !c || !d)
        return -EINVAL;
    if (bus->closing)
        return -ESHUTDOWN;
    int64_t now = ss_mono_us();
    ss_decision w = *d;
    memcpy(w.cluster, c->name, sizeof w.cluster);
    w.producer_epoch = bus->epoch;
    w.sequence = c->last_seq + 1;
    if (w.decided_at_ms == 0)
        w.decided_at_ms = ss_wall_ms();
    if (w.expires_at_ms == 0 && bus->bc->decision_ttl_s > 0)
        w.expires_at_ms = w.decided_at_ms + (int64_t)bus->bc->decision_ttl_s * 1000;

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
    memcpy(m->key, c->name, sizeof m->key);
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

/* Both handles have closed: free everything, then tell the owner. */
static void finish_free(void *ctx)
{
    ss_bus *bus = ctx;
    void (*done)(void *) = bus->done;
    void *done_ctx = bus->done_ctx;
    free_bus_memory(bus);
    if (done)
        done(done_ctx);
}

static void on_part_closed(void *ctx)
{
    ss_bus *bus = ctx;
    ss_join_leave(&bus->handles);
}

static void on_handle_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
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
    ss_kafka_mock_stop(bus->mock);
    bus->mock = NULL;
    uv_timer_stop(&bus->timer);
    ss_kafka_events_close(&bus->events, on_part_closed, bus);
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
