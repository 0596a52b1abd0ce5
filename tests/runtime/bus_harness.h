/* bus_harness.h: the decision bus on a real libuv loop for tests: a
 * producer against the embedded (or given) Kafka, its delivery reports
 * recorded, and run_until that blocks in the loop (nothing polled by the
 * test) until a condition holds. Header-only: each test is one program. */
#ifndef SS_TEST_BUS_HARNESS_H
#define SS_TEST_BUS_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "lib/bus/producer.h"

#define BH_MAX_CB 4096
#define BH_MAX_CLUSTERS 64

typedef struct bh_delivery {
    char cluster[SS_BUS_NAME_MAX];
    uint64_t seq;
    int err;
    int64_t latency_us;
} bh_delivery;

typedef struct bus_harness {
    uv_loop_t loop;
    ss_bus_conf conf;
    ss_kv props[16];
    ss_bus *bus;
    bh_delivery cbs[BH_MAX_CB];
    size_t ncb;
    /* Cluster handles report their name as delivery context. */
    char names[BH_MAX_CLUSTERS][SS_BUS_NAME_MAX];
    size_t nnames;
    int closed;
    int expired;
} bus_harness;

static inline void bh_on_delivery(void *ctx, void *cluster_ctx, uint64_t seq, int err,
                                  int64_t latency_us)
{
    bus_harness *h = ctx;
    assert_true(h->ncb < BH_MAX_CB);
    bh_delivery *r = &h->cbs[h->ncb++];
    snprintf(r->cluster, sizeof r->cluster, "%s", cluster_ctx ? (const char *)cluster_ctx : "?");
    r->seq = seq;
    r->err = err;
    r->latency_us = latency_us;
}

/* A loop and a bus configuration (not started yet). */
static inline void bh_init(bus_harness *h, const char *brokers)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->conf = (ss_bus_conf){
        .brokers = brokers,
        .decisions_topic = "sparkscale.decisions",
        .audit_topic = "sparkscale.audit",
        .properties = h->props,
        .linger_ms = 1,
        .max_pending = 10000,
        .decision_ttl_s = 120,
    };
}

static inline void bh_add_prop(bus_harness *h, const char *k, const char *v)
{
    assert_true(h->conf.nproperties < sizeof h->props / sizeof h->props[0]);
    h->props[h->conf.nproperties].key = (char *)k;
    h->props[h->conf.nproperties].value = (char *)v;
    h->conf.nproperties++;
}

static inline void bh_start(bus_harness *h)
{
    char err[512] = "";
    h->bus = ss_bus_create(&h->loop, &h->conf, err, sizeof err);
    if (!h->bus)
        fail_msg("ss_bus_create: %s", err);
    ss_bus_set_delivery_cb(h->bus, bh_on_delivery, h);
}

/* The bus's handle for cluster name (added on first use). */
static inline ss_bus_cluster *bh_cluster(bus_harness *h, const char *name)
{
    for (size_t i = 0; i < h->nnames; i++)
        if (strcmp(h->names[i], name) == 0)
            return ss_bus_cluster_add(h->bus, name, h->names[i]);
    assert_true(h->nnames < BH_MAX_CLUSTERS);
    char *slot = h->names[h->nnames++];
    snprintf(slot, SS_BUS_NAME_MAX, "%s", name);
    ss_bus_cluster *c = ss_bus_cluster_add(h->bus, name, slot);
    assert_non_null(c);
    return c;
}

/* Publishes d for the cluster named in d->cluster. */
static inline int bh_publish(bus_harness *h, const ss_decision *d, uint64_t *seq)
{
    return ss_bus_publish(h->bus, bh_cluster(h, d->cluster), d, seq);
}

static inline ss_bus_stats bh_stats(bus_harness *h)
{
    ss_bus_stats s;
    ss_bus_get_stats(h->bus, &s);
    return s;
}

static inline void bh_on_deadline(uv_timer_t *t)
{
    ((bus_harness *)t->data)->expired = 1;
}

/* Runs the loop until pred holds or timeout_ms passes; returns pred. */
static inline int bh_run_until(bus_harness *h, int (*pred)(bus_harness *), int timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(&h->loop, &t);
    t.data = h;
    h->expired = 0;
    uv_timer_start(&t, bh_on_deadline, (uint64_t)timeout_ms, 0);
    while (!pred(h) && !h->expired)
        uv_run(&h->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    return pred(h);
}

static inline int bh_never(bus_harness *h)
{
    (void)h;
    return 0;
}

static inline int bh_nothing_pending(bus_harness *h)
{
    ss_bus_stats s = bh_stats(h);
    return s.pending == 0 && s.audit_pending == 0;
}

static inline void bh_on_closed(void *ctx)
{
    ((bus_harness *)ctx)->closed = 1;
}

static inline int bh_is_closed(bus_harness *h)
{
    return h->closed;
}

/* Closes the bus (flushing up to flush_ms) and the loop; asserts that
 * nothing leaked. */
static inline void bh_close(bus_harness *h, int flush_ms)
{
    if (h->bus) {
        ss_bus_close(h->bus, flush_ms, bh_on_closed, h);
        assert_true(bh_run_until(h, bh_is_closed, flush_ms + 10000));
        h->bus = NULL;
    }
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

#endif
