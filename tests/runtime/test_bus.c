/* test_bus.c: the decision bus against librdkafka's mock cluster on a real
 * libuv loop: order and round trip, broker outage, missing topic, close. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include "lib/bus/producer.h"
#include "lib/bus/kafka.h"
#include "lib/bus/reader.h"
#include "lib/config/config.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#include "bus_harness.h"

#define MAX_RECS 4096

static const char *const k_clusters[] = { "alpha", "beta", "gamma" };

typedef bus_harness harness;
typedef bh_delivery cb_rec;

typedef struct rec {
    char key[SS_BUS_NAME_MAX];
    uint8_t *val;
    size_t len;
    int32_t partition;
    int64_t offset;
} rec;

#define harness_init bh_init
#define add_prop bh_add_prop
#define bus_start bh_start
#define run_until bh_run_until
#define never bh_never
#define stats bh_stats
#define nothing_pending bh_nothing_pending
#define is_closed bh_is_closed

static uint64_t g_want;
static int delivered_want(harness *h)
{
    return stats(h).delivered >= g_want;
}

static int brokers_down(harness *h)
{
    return stats(h).broker_state == 0;
}

/* Closes the bus and the loop; fails if any handle is left behind. */
static void harness_close(harness *h, int flush_ms)
{
    bh_close(h, flush_ms);
}

static void decision(ss_decision *d, const char *cluster, int desired)
{
    static const ss_app_demand apps[] = {
        { "app-20261121093000-0003", 14, 20, 6, 1795237800000LL },
        { "app-20261121093500-0004", 2, -1, 2, 1795238100000LL },
    };
    static const ss_worker_ref w[] = { { "worker-20261121090000-10.0.0.7-34567", "10.0.0.7", 34567 } };
    memset(d, 0, sizeof *d);
    snprintf(d->cluster, sizeof d->cluster, "%s", cluster);
    d->current_workers = 5;
    d->busy_workers = 2;
    d->desired_workers = desired;
    d->recommended_workers = desired + 1;
    d->executors_per_worker = 2;
    d->apps = apps;
    d->napps = 2;
    d->removable_workers = w;
    d->nremovable_workers = 1;
    snprintf(d->reason, sizeof d->reason, "%s wants %d", cluster, desired);
    d->reason_code = SS_REASON_UP;
    d->trigger_us = ss_mono_us();
}

/* Reads every record of topic from the beginning with a plain librdkafka
 * consumer, up to the end of all partitions. */
static size_t consume_topic(const char *bootstrap, const char *topic, rec *out, size_t max)
{
    char e[512], group[64];
    snprintf(group, sizeof group, "test-%lld", (long long)ss_mono_us());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", e, sizeof e), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0);
    assert_int_equal(md->topics[0].err, 0);
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);

    size_t n = 0;
    int eofs = 0;
    int64_t deadline = ss_mono_us() + 20000000;
    while (eofs < nparts && ss_mono_us() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            assert_true(n < max);
            rec *r = &out[n++];
            snprintf(r->key, sizeof r->key, "%.*s", (int)m->key_len, (const char *)m->key);
            r->val = malloc(m->len ? m->len : 1);
            memcpy(r->val, m->payload, m->len);
            r->len = m->len;
            r->partition = m->partition;
            r->offset = m->offset;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, nparts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

static void free_recs(rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].val);
}

static int cluster_index(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, k_clusters[i]) == 0)
            return i;
    fail_msg("unknown cluster %s", name);
    return -1;
}

static void set_brokers(harness *h, int up)
{
    rd_kafka_mock_cluster_t *mc = ss_bus_mock_cluster(h->bus);
    assert_non_null(mc);
    for (int id = 1; id <= SS_KAFKA_EMBEDDED_BROKERS; id++)
        assert_int_equal(up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id), 0);
}

/* (a) N decisions for 3 clusters: keyed by cluster, per-cluster sequences
 * strictly increasing in partition order, every field round-trips. */
static void test_publish_order_round_trip(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    bus_start(h);
    assert_non_null(strstr(ss_bus_bootstrap(h->bus), "127.0.0.1:"));
    const int per = 40;
    for (int i = 1; i <= per; i++)
        for (int c = 0; c < 3; c++) {
            ss_decision d;
            decision(&d, k_clusters[c], 100 * c + i);
            uint64_t seq = 0;
            assert_int_equal(bh_publish(h, &d, &seq), 0);
            assert_true(seq == (uint64_t)i);
        }
    g_want = 3 * per;
    assert_true(run_until(h, delivered_want, 20000));
    ss_bus_stats s = stats(h);
    assert_int_equal(s.published, 3 * per);
    assert_int_equal(s.delivered, 3 * per);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.superseded, 0);
    assert_int_equal(s.broker_state, 1);
    assert_int_equal(s.latency.count, 3 * per);
    assert_int_equal(s.trigger_latency.count, 3 * per);
    uint64_t sum = 0;
    for (int i = 0; i < SS_HIST_BUCKETS; i++)
        sum += s.latency.buckets[i];
    assert_int_equal(sum, 3 * per);
    assert_true(s.latency.max_us >= s.latency.last_us && s.latency.last_us >= 0);
    assert_true(ss_bus_cluster_last_sequence(bh_cluster(h, "beta")) == (uint64_t)per);
    assert_true(ss_bus_cluster_last_sequence(bh_cluster(h, "nope")) == 0);

    /* Callbacks: one per decision, in sequence order per cluster. */
    assert_int_equal(h->ncb, 3 * per);
    uint64_t last_cb[3] = { 0, 0, 0 };
    for (size_t i = 0; i < h->ncb; i++) {
        int c = cluster_index(h->cbs[i].cluster);
        assert_int_equal(h->cbs[i].err, 0);
        assert_true(h->cbs[i].seq == last_cb[c] + 1);
        last_cb[c] = h->cbs[i].seq;
    }

    static rec recs[MAX_RECS];
    size_t n = consume_topic(ss_bus_bootstrap(h->bus), "sparkscale.decisions", recs, MAX_RECS);
    assert_int_equal(n, 3 * per);
    uint64_t last[3] = { 0, 0, 0 };
    int32_t part[3] = { -1, -1, -1 };
    int64_t last_off[3] = { -1, -1, -1 };
    for (size_t i = 0; i < n; i++) {
        ss_decision d;
        assert_int_equal(ss_decision_decode(recs[i].val, recs[i].len, &d), 0);
        assert_string_equal(recs[i].key, d.cluster);
        int c = cluster_index(d.cluster);
        /* One partition per cluster; records of a partition come in offset order. */
        if (part[c] < 0)
            part[c] = recs[i].partition;
        assert_int_equal(recs[i].partition, part[c]);
        assert_true(recs[i].offset > last_off[c]);
        last_off[c] = recs[i].offset;
        assert_true(d.sequence == last[c] + 1);
        last[c] = d.sequence;
        assert_int_equal(d.producer_epoch, s.epoch);
        assert_int_equal(d.desired_workers, 100 * c + (int)d.sequence);
        assert_int_equal(d.recommended_workers, d.desired_workers + 1);
        assert_int_equal(d.current_workers, 5);
        assert_int_equal(d.busy_workers, 2);
        assert_int_equal(d.executors_per_worker, 2);
        assert_int_equal(d.napps, 2);
        assert_string_equal(d.apps[0].app_id, "app-20261121093000-0003");
        assert_int_equal(d.apps[0].max_needed_executors, 20);
        assert_int_equal(d.apps[1].start_ms, 1795238100000LL);
        assert_int_equal(d.nremovable_workers, 1);
        assert_string_equal(d.removable_workers[0].host, "10.0.0.7");
        assert_int_equal(d.removable_workers[0].port, 34567);
        char want[SS_NAME_MAX + 32];
        snprintf(want, sizeof want, "%s wants %d", d.cluster, d.desired_workers);
        assert_string_equal(d.reason, want);
        assert_int_equal(d.reason_code, SS_REASON_UP);
        assert_int_equal(d.dry_run, 0);
        assert_true(d.decided_at_ms > 0);
        assert_int_equal(d.expires_at_ms, d.decided_at_ms + 120000);
        assert_int_equal(d.schema_version, SS_BUS_SCHEMA_VERSION);
        ss_decision_release(&d);
    }
    for (int c = 0; c < 3; c++)
        assert_true(last[c] == (uint64_t)per);
    free_recs(recs, n);
    harness_close(h, 5000);
    free(h);
}

/* (b) all brokers down: decisions stay pending, none delivered; back up:
 * every one delivered, in order, none lost or duplicated. */
static void test_broker_outage(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    bus_start(h);
    /* Connect first, so the outage hits an established producer. */
    ss_decision d;
    decision(&d, "alpha", 1);
    assert_int_equal(bh_publish(h, &d, NULL), 0);
    g_want = 1;
    assert_true(run_until(h, delivered_want, 10000));

    set_brokers(h, 0);
    const int per = 20;
    for (int i = 0; i < per; i++)
        for (int c = 0; c < 3; c++) {
            decision(&d, k_clusters[c], 1000 + i);
            assert_int_equal(bh_publish(h, &d, NULL), 0);
        }
    /* librdkafka reports all brokers down once its reconnects fail. */
    assert_true(run_until(h, brokers_down, 10000));
    ss_bus_stats s = stats(h);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.pending, 3 * per);
    assert_int_equal(s.in_flight, 3 * per);
    assert_int_equal(s.dropped, 0);
    assert_int_equal(s.brokers_up, 0);
    assert_int_equal(s.broker_state, 0);

    set_brokers(h, 1);
    g_want = 1 + 3 * per;
    assert_true(run_until(h, delivered_want, 30000));
    s = stats(h);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.superseded, 0);
    assert_int_equal(s.dropped, 0);
    assert_int_equal(s.broker_state, 1);

    static rec recs[MAX_RECS];
    size_t n = consume_topic(ss_bus_bootstrap(h->bus), "sparkscale.decisions", recs, MAX_RECS);
    assert_int_equal(n, 1 + 3 * per);
    uint64_t last[3] = { 0, 0, 0 };
    last[0] = 0;
    for (size_t i = 0; i < n; i++) {
        ss_decision x;
        assert_int_equal(ss_decision_decode(recs[i].val, recs[i].len, &x), 0);
        int c = cluster_index(x.cluster);
        assert_true(x.sequence == last[c] + 1);
        last[c] = x.sequence;
        /* alpha #1 is the warm-up; then desired = 1000 + i for the i-th of the outage. */
        int first = c == 0 ? 2 : 1;
        if ((int)x.sequence >= first)
            assert_int_equal(x.desired_workers, 1000 + (int)x.sequence - first);
        ss_decision_release(&x);
    }
    assert_true(last[0] == (uint64_t)per + 1 && last[1] == (uint64_t)per && last[2] == (uint64_t)per);
    free_recs(recs, n);
    harness_close(h, 5000);
    free(h);
}

/* (b') librdkafka's queue full during an outage: the newest decision of each
 * cluster is held (older ones counted as superseded), nothing silently lost. */
static void test_queue_full_newest_wins(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    h->conf.max_pending = 5;
    bus_start(h);
    set_brokers(h, 0);
    const int per = 10;
    for (int i = 1; i <= per; i++)
        for (int c = 0; c < 3; c++) {
            ss_decision d;
            decision(&d, k_clusters[c], 10 * c + i);
            assert_int_equal(bh_publish(h, &d, NULL), 0);
        }
    ss_bus_stats s = stats(h);
    assert_int_equal(s.in_flight, 5);
    assert_int_equal(s.held, 3);
    assert_int_equal(s.pending, 8);
    assert_int_equal(s.superseded, 3 * per - 5 - 3);
    assert_int_equal(s.dropped, 0);

    set_brokers(h, 1);
    assert_true(run_until(h, nothing_pending, 30000));
    s = stats(h);
    assert_int_equal(s.delivered, 8);
    assert_int_equal(s.published, s.delivered + s.superseded);
    assert_true(s.retried >= 3);
    /* Every decision got exactly one final report: delivered or superseded. */
    size_t ok = 0, cancelled = 0;
    for (size_t i = 0; i < h->ncb; i++) {
        ok += h->cbs[i].err == 0;
        cancelled += h->cbs[i].err == -ECANCELED;
    }
    assert_int_equal(ok, 8);
    assert_int_equal(cancelled, s.superseded);
    assert_int_equal(ok + cancelled, h->ncb);

    static rec recs[MAX_RECS];
    size_t n = consume_topic(ss_bus_bootstrap(h->bus), "sparkscale.decisions", recs, MAX_RECS);
    assert_int_equal(n, 8);
    uint64_t last[3] = { 0, 0, 0 };
    for (size_t i = 0; i < n; i++) {
        ss_decision x;
        assert_int_equal(ss_decision_decode(recs[i].val, recs[i].len, &x), 0);
        int c = cluster_index(x.cluster);
        assert_true(x.sequence > last[c]);
        last[c] = x.sequence;
        assert_int_equal(x.desired_workers, 10 * c + (int)x.sequence);
        ss_decision_release(&x);
    }
    /* The newest decision of every cluster made it. */
    for (int c = 0; c < 3; c++)
        assert_true(last[c] == (uint64_t)per);
    free_recs(recs, n);
    harness_close(h, 5000);
    free(h);
}

static int something_held(harness *h)
{
    ss_bus_stats s = stats(h);
    return s.held >= 2 && s.in_flight == 0;
}

/* (c) the decisions topic does not exist and the brokers do not create it:
 * a clear error, decisions held (newest per cluster), delivered once the
 * topic exists. The brokers are a mock cluster of the test's own. */
static void test_missing_topic(void **state)
{
    char e[512];
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_conf_set(mconf, "log_level", "4", e, sizeof e);
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, e, sizeof e);
    assert_non_null(mrk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 3);
    assert_non_null(mc);
    /* What a broker with auto.create.topics.enable=false answers. */
    rd_kafka_mock_topic_set_error(mc, "sparkscale.decisions", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);

    harness *h = calloc(1, sizeof *h);
    harness_init(h, rd_kafka_mock_cluster_bootstraps(mc));
    add_prop(h, "allow.auto.create.topics", "false");
    add_prop(h, "topic.metadata.propagation.max.ms", "300");
    bus_start(h);
    assert_null(ss_bus_mock_cluster(h->bus));
    assert_string_equal(ss_bus_bootstrap(h->bus), rd_kafka_mock_cluster_bootstraps(mc));

    ss_decision d;
    decision(&d, "alpha", 3);
    assert_int_equal(bh_publish(h, &d, NULL), 0);
    decision(&d, "alpha", 4);
    assert_int_equal(bh_publish(h, &d, NULL), 0);
    decision(&d, "beta", 7);
    assert_int_equal(bh_publish(h, &d, NULL), 0);

    assert_true(run_until(h, something_held, 15000));
    ss_bus_stats s = stats(h);
    assert_int_equal(s.delivered, 0);
    assert_int_equal(s.held, 2);            /* alpha #2 and beta #1 */
    assert_int_equal(s.superseded, 1);      /* alpha #1 */
    assert_int_equal(s.dropped, 0);
    assert_true(s.failed >= 2);
    assert_non_null(strstr(s.last_error, "sparkscale.decisions"));
    assert_true(strstr(s.last_error, "Unknown topic") != NULL);
    /* Callbacks said so: kept for retry (-EAGAIN), superseded (-ECANCELED). */
    int again = 0, cancelled = 0;
    for (size_t i = 0; i < h->ncb; i++) {
        again += h->cbs[i].err == -EAGAIN;
        cancelled += h->cbs[i].err == -ECANCELED;
    }
    assert_true(again >= 2);
    assert_int_equal(cancelled, 1);

    /* A retry while the topic is still missing changes nothing. */
    run_until(h, never, 1200);
    s = stats(h);
    assert_int_equal(s.delivered, 0);
    assert_int_equal(s.held + s.in_flight, 2);

    rd_kafka_mock_topic_set_error(mc, "sparkscale.decisions", RD_KAFKA_RESP_ERR_NO_ERROR);
    /* The mock may keep the (hidden) topic it made on the first request. */
    rd_kafka_resp_err_t ce = rd_kafka_mock_topic_create(mc, "sparkscale.decisions", 2, 3);
    assert_true(ce == RD_KAFKA_RESP_ERR_NO_ERROR || ce == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
    g_want = 2;
    assert_true(run_until(h, delivered_want, 30000));
    s = stats(h);
    assert_int_equal(s.pending, 0);

    static rec recs[16];
    size_t n = consume_topic(rd_kafka_mock_cluster_bootstraps(mc), "sparkscale.decisions", recs, 16);
    assert_int_equal(n, 2);
    int seen_alpha = 0, seen_beta = 0;
    for (size_t i = 0; i < n; i++) {
        ss_decision x;
        assert_int_equal(ss_decision_decode(recs[i].val, recs[i].len, &x), 0);
        if (strcmp(x.cluster, "alpha") == 0) {
            seen_alpha = 1;
            assert_true(x.sequence == 2);
            assert_int_equal(x.desired_workers, 4);
        } else {
            seen_beta = 1;
            assert_true(x.sequence == 1);
            assert_int_equal(x.desired_workers, 7);
        }
        ss_decision_release(&x);
    }
    assert_true(seen_alpha && seen_beta);
    free_recs(recs, n);
    harness_close(h, 5000);
    free(h);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
}

/* A librdkafka property it does not know fails creation, naming the key. */
static void test_bad_property(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "127.0.0.1:1");
    add_prop(h, "linger.ms", "2");
    add_prop(h, "no.such.property", "1");
    char err[512] = "";
    assert_null(ss_bus_create(&h->loop, &h->conf, err, sizeof err));
    assert_non_null(strstr(err, "no.such.property"));
    h->conf.nproperties = 1;
    h->props[0].value = "not-a-number";
    assert_null(ss_bus_create(&h->loop, &h->conf, err, sizeof err));
    assert_non_null(strstr(err, "linger.ms"));
    uv_run(&h->loop, UV_RUN_DEFAULT);   /* failed creates close through the loop */
    assert_int_equal(uv_loop_close(&h->loop), 0);
    free(h);
}

/* The YAML config reaches librdkafka: properties as typed, a bad one named
 * with its key, dry_run and decision_ttl_s carried by every decision. */
static void test_from_yaml_config(void **state)
{
    static const char yaml_bad[] =
        "kafka:\n"
        "  brokers: embedded\n"
        "  properties: { \"message.max.bytes\": 100000, \"no.such.thing\": 1 }\n"
        "clusters:\n"
        "  - name: alpha\n"
        "    worker:   { cores: 4, memory_mb: 8192 }\n"
        "    executor: { cores: 2, memory_mb: 4096 }\n";
    static const char yaml_good[] =
        "kafka:\n"
        "  brokers: embedded\n"
        "  decision_ttl_s: 30\n"
        "  properties: { \"message.max.bytes\": 100000, \"compression.codec\": lz4 }\n"
        "clusters:\n"
        "  - name: alpha\n"
        "    worker:   { cores: 4, memory_mb: 8192 }\n"
        "    executor: { cores: 2, memory_mb: 4096 }\n";
    char err[512] = "";
    ss_config *cfg = NULL;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    if (ss_config_load_string(yaml_bad, "bad.yaml", &cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    ss_bus_conf bc;
    ss_config_bus_conf(cfg, &bc);
    assert_null(ss_bus_create(&loop, &bc, err, sizeof err));
    assert_non_null(strstr(err, "kafka.properties.no.such.thing"));
    ss_config_free(cfg);
    uv_run(&loop, UV_RUN_DEFAULT);   /* a failed create closes through the loop */
    assert_int_equal(uv_loop_close(&loop), 0);

    harness *h = calloc(1, sizeof *h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    if (ss_config_load_string(yaml_good, "good.yaml", &cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    ss_config_bus_conf(cfg, &h->conf);
    h->bus = ss_bus_create(&h->loop, &h->conf, err, sizeof err);
    if (!h->bus)
        fail_msg("ss_bus_create: %s", err);
    ss_bus_set_delivery_cb(h->bus, bh_on_delivery, h);
    ss_decision d;
    decision(&d, "alpha", 6);
    d.decided_at_ms = 1795237801000LL;
    assert_int_equal(bh_publish(h, &d, NULL), 0);
    g_want = 1;
    assert_true(run_until(h, delivered_want, 10000));
    static rec recs[4];
    size_t n = consume_topic(ss_bus_bootstrap(h->bus), "sparkscale.decisions", recs, 4);
    assert_int_equal(n, 1);
    ss_decision x;
    assert_int_equal(ss_decision_decode(recs[0].val, recs[0].len, &x), 0);
    assert_int_equal(x.dry_run, 0);   /* the bus never sets it: the decider does */
    assert_int_equal(x.expires_at_ms, 1795237801000LL + 30000);
    ss_decision_release(&x);
    free_recs(recs, n);
    harness_close(h, 5000);
    free(h);
    ss_config_free(cfg);
}

static void count_turn(uv_prepare_t *p)
{
    (*(int *)p->data)++;
}

/* Idle, the bus sleeps in the loop: it is woken by librdkafka's queue event
 * fd and its slow safety timer, never spun. */
static void test_no_busy_loop(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    bus_start(h);
    ss_decision d;
    decision(&d, "alpha", 1);
    assert_int_equal(bh_publish(h, &d, NULL), 0);
    g_want = 1;
    assert_true(run_until(h, delivered_want, 10000));
    int turns = 0;
    uv_prepare_t p;
    uv_prepare_init(&h->loop, &p);
    p.data = &turns;
    uv_prepare_start(&p, count_turn);
    run_until(h, never, 1200);
    uv_close((uv_handle_t *)&p, NULL);
    /* About 2 safety-timer ticks and 1 statistics event in 1.2 s; a polling
     * implementation would turn thousands of times. */
    assert_true(turns < 60);
    assert_true(turns >= 2);
    harness_close(h, 1000);
    free(h);
}

/* Close flushes what is in flight (delivered before done) and frees everything;
 * with brokers down it gives up after the flush timeout. */
static void test_close_flush(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    bus_start(h);
    for (int i = 0; i < 50; i++) {
        ss_decision d;
        decision(&d, k_clusters[i % 3], i);
        assert_int_equal(bh_publish(h, &d, NULL), 0);
    }
    ss_actuation_result r;
    memset(&r, 0, sizeof r);
    strcpy(r.cluster, "alpha");
    r.decision_sequence = 1;
    r.outcome = SS_OUTCOME_APPLIED;
    assert_int_equal(ss_bus_produce_audit(h->bus, &r), 0);
    /* Nothing has been delivered yet: the loop has not run. */
    assert_int_equal(h->ncb, 0);
    ss_bus_close(h->bus, 10000, bh_on_closed, h);
    ss_decision d;
    decision(&d, "alpha", 1);
    assert_int_equal(bh_publish(h, &d, NULL), -ESHUTDOWN);
    assert_true(run_until(h, is_closed, 20000));
    assert_int_equal(h->ncb, 50);
    for (size_t i = 0; i < h->ncb; i++)
        assert_int_equal(h->cbs[i].err, 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    free(h);

    /* Brokers down: close returns after the flush timeout, loses them loudly. */
    h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    bus_start(h);
    set_brokers(h, 0);
    for (int i = 0; i < 5; i++) {
        decision(&d, "alpha", i);
        assert_int_equal(bh_publish(h, &d, NULL), 0);
    }
    int64_t t0 = ss_mono_us();
    ss_bus_close(h->bus, 300, bh_on_closed, h);
    assert_true(run_until(h, is_closed, 20000));
    assert_true(ss_mono_us() - t0 >= 300000);
    assert_int_equal(h->ncb, 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    free(h);
}

static int rebuilt(harness *h)
{
    /* (Not the handle's address: the new one may be allocated where the old one was.) */
    return stats(h).producer_rebuilds == 1 && ss_bus_producer_handle(h->bus) != NULL;
}

/* A fatal idempotent-producer error: the bus rebuilds the producer and the
 * newest decisions go out on the new one. */
static void test_fatal_error_rebuild(void **state)
{
    harness *h = calloc(1, sizeof *h);
    harness_init(h, "embedded");
    bus_start(h);
    set_brokers(h, 0);
    for (int i = 1; i <= 4; i++)
        for (int c = 0; c < 3; c++) {
            ss_decision d;
            decision(&d, k_clusters[c], 10 * c + i);
            assert_int_equal(bh_publish(h, &d, NULL), 0);
        }
    assert_int_equal(rd_kafka_test_fatal_error(ss_bus_producer_handle(h->bus),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "injected by test_bus"),
                     0);
    assert_true(run_until(h, rebuilt, 10000));
    ss_bus_stats s = stats(h);
    assert_int_equal(s.producer_rebuilds, 1);
    set_brokers(h, 1);
    assert_true(run_until(h, nothing_pending, 30000));
    s = stats(h);
    assert_int_equal(s.dropped, 0);
    assert_int_equal(s.published, s.delivered + s.superseded);

    static rec recs[MAX_RECS];
    size_t n = consume_topic(ss_bus_bootstrap(h->bus), "sparkscale.decisions", recs, MAX_RECS);
    uint64_t last[3] = { 0, 0, 0 };
    for (size_t i = 0; i < n; i++) {
        ss_decision x;
        assert_int_equal(ss_decision_decode(recs[i].val, recs[i].len, &x), 0);
        int c = cluster_index(x.cluster);
        assert_true(x.sequence > last[c]);
        last[c] = x.sequence;
        ss_decision_release(&x);
    }
    for (int c = 0; c < 3; c++)
        assert_true(last[c] == 4);
    free_recs(recs, n);
    harness_close(h, 5000);
    free(h);
}

int main(void)
{
    ss_log_set_level(getenv("SS_TEST_VERBOSE") ? SS_LOG_DEBUG : SS_LOG_ERROR);
    if (getenv("SS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SS_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_order_round_trip),
        cmocka_unit_test(test_broker_outage),
        cmocka_unit_test(test_queue_full_newest_wins),
        cmocka_unit_test(test_missing_topic),
        cmocka_unit_test(test_bad_property),
        cmocka_unit_test(test_from_yaml_config),
        cmocka_unit_test(test_no_busy_loop),
        cmocka_unit_test(test_close_flush),
        cmocka_unit_test(test_fatal_error_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
