/* daemon.c: wires sparkscaled's parts onto one libuv loop: prefixes and
 * store, carbon listeners, status server, Kafka bus, and the evaluation
 * hooks (after every loop turn for dirty clusters; a timer for the rest). */
#include "ingest/daemon_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"

static void maybe_done(ss_daemon *d)
{
    if (!d->closing || d->pending_closes > 0)
        return;
    void (*done)(void *) = d->done;
    void *ctx = d->done_ctx;
    store_destroy(d->store);
    spark_prefixes_destroy(d->prefixes);
    free(d->changed_at_us);
    free(d->rt);
    free(d->dirty);
    decider_free(d);
    free(d);
    if (done)
        done(ctx);
}

static void on_part_closed(void *ctx)
{
    ss_daemon *d = ctx;
    d->pending_closes--;
    maybe_done(d);
}

static void on_handle_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

static void on_check(uv_check_t *h)
{
    decider_evaluate_dirty(h->data);
}

static void on_timer(uv_timer_t *h)
{
    decider_tick(h->data);
}

/* Closes the listeners; their clients' last partial lines are processed. */
static void close_listeners(ss_daemon *d)
{
    d->closing = 1;
    if (d->tcp) {
        d->pending_closes++;
        carbon_tcp_close(d->tcp, on_part_closed, d);
        d->tcp = NULL;
    }
    if (d->udp) {
        d->pending_closes++;
        carbon_udp_close(d->udp, on_part_closed, d);
        d->udp = NULL;
    }
    if (d->http) {
        d->pending_closes++;
        ss_http_server_close(d->http, on_part_closed, d);
        d->http = NULL;
    }
}

/* Closes the evaluation hooks and the bus (which flushes first). */
static void close_core(ss_daemon *d)
{
    if (d->hooks_started) {
        d->hooks_started = 0;
        d->pending_closes += 2;
        uv_close((uv_handle_t *)&d->evaluate_check, on_handle_closed);
        uv_close((uv_handle_t *)&d->evaluate_timer, on_handle_closed);
    }
    if (d->bus) {
        d->pending_closes++;
        ss_bus_close(d->bus, d->flush_timeout_ms, on_part_closed, d);
        d->bus = NULL;
    }
}

ss_daemon *ss_daemon_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen)
{
    size_t n = cfg->nclusters;
    ss_daemon *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->loop = loop;
    d->cfg = cfg;
    d->started_ms = ss_wall_ms();
    d->flush_timeout_ms = 1000;

    store_limits lim = {
        .max_apps_per_cluster = cfg->store.max_apps_per_cluster,
        .max_apps = cfg->store.max_apps,
        .max_series_per_app = cfg->store.max_series_per_app,
        .max_workers_per_cluster = cfg->store.max_workers_per_cluster,
        .ring_size = cfg->store.ring_size,
    };
    d->store = store_create(&lim, n);
    d->prefixes = spark_prefixes_create(n);
    d->changed_at_us = calloc(n ? n : 1, sizeof *d->changed_at_us);
    d->rt = calloc(n ? n : 1, sizeof *d->rt);
    d->dirty = calloc(n ? n : 1, sizeof *d->dirty);
    if (!d->store || !d->prefixes || !d->changed_at_us || !d->rt || !d->dirty) {
        snprintf(err, errlen, "out of memory for %zu clusters", n);
        goto fail;
    }
    for (size_t c = 0; c < n; c++) {
        int rc = spark_prefixes_add(d->prefixes, cfg->clusters[c].metrics_prefix, (int)c);
        if (rc != 0) {
            snprintf(err, errlen, "cluster %s: metrics_prefix '%s': %s", cfg->clusters[c].name,
                     cfg->clusters[c].metrics_prefix,
                     rc == -EEXIST ? "used by another cluster" : strerror(-rc));
            goto fail;
        }
    }
    pipeline_init(&d->pipe, d->prefixes, d->store, d->changed_at_us, n);
    if (decider_init(d) != 0) {
        snprintf(err, errlen, "out of memory for the decider");
        goto fail;
    }

    d->bus = ss_bus_create(loop, cfg, err, errlen);
    if (!d->bus)
        goto fail;
    ss_bus_set_delivery_cb(d->bus, decider_on_delivery, d);
    ss_bus_stats bs;
    ss_bus_get_stats(d->bus, &bs);
    d->bus_epoch = bs.epoch;

    if (cfg->ingest.carbon_tcp.enabled) {
        carbon_tcp_limits tl = {
            .max_clients = cfg->ingest.max_clients,
            .idle_timeout_s = cfg->ingest.client_idle_timeout_s,
            .max_line = (size_t)cfg->ingest.max_line_bytes,
            .read_buffer = (size_t)cfg->ingest.read_buffer_bytes,
        };
        d->tcp = carbon_tcp_create(loop, cfg->ingest.carbon_tcp.host, cfg->ingest.carbon_tcp.port,
                                   &tl, &d->pipe, err, errlen);
        if (!d->tcp)
            goto fail;
        ss_info("carbon tcp listening on %s:%d", cfg->ingest.carbon_tcp.host, carbon_tcp_port(d->tcp));
    }
    if (cfg->ingest.carbon_udp.enabled) {
        d->udp = carbon_udp_create(loop, cfg->ingest.carbon_udp.host, cfg->ingest.carbon_udp.port,
                                   (size_t)cfg->ingest.max_line_bytes, &d->pipe, err, errlen);
        if (!d->udp)
            goto fail;
        ss_info("carbon udp listening on %s:%d", cfg->ingest.carbon_udp.host, carbon_udp_port(d->udp));
    }
    if (cfg->ingest.http.enabled) {
        d->http = ss_http_server_create(loop, cfg->ingest.http.host, cfg->ingest.http.port,
                                        status_handle, d, err, errlen);
        if (!d->http)
            goto fail;
        ss_info("status http listening on %s:%d", cfg->ingest.http.host, ss_http_server_port(d->http));
    }

    uv_check_init(loop, &d->evaluate_check);
    uv_timer_init(loop, &d->evaluate_timer);
    d->evaluate_check.data = d->evaluate_timer.data = d;
    d->hooks_started = 1;
    uv_check_start(&d->evaluate_check, on_check);
    uint64_t every = cfg->policy.evaluate_interval_ms > 0 ? (uint64_t)cfg->policy.evaluate_interval_ms : 1000;
    uv_timer_start(&d->evaluate_timer, on_timer, every, every);
    ss_info("sparkscaled started: %zu cluster(s), kafka %s (%s)", n, ss_bus_bootstrap(d->bus),
            cfg->kafka.brokers);
    return d;

fail:
    close_listeners(d);
    close_core(d);
    if (d->pending_closes == 0)
        maybe_done(d);
    else
        d->done = NULL;   /* freed when the loop runs the close callbacks */
    return NULL;
}

int ss_daemon_port(const ss_daemon *d, int which)
{
    switch (which) {
    case SS_PORT_CARBON_TCP: return d->tcp ? carbon_tcp_port(d->tcp) : -1;
    case SS_PORT_CARBON_UDP: return d->udp ? carbon_udp_port(d->udp) : -1;
    case SS_PORT_HTTP:       return d->http ? ss_http_server_port(d->http) : -1;
    default:                 return -1;
    }
}

void ss_daemon_set_reaction_hook(ss_daemon *d, ss_daemon_reaction_fn fn, void *ctx)
{
    d->reaction_hook = fn;
    d->reaction_ctx = ctx;
}

void ss_daemon_set_lost_counter(ss_daemon *d, uint64_t *lost)
{
    ss_bus_set_close_report(d->bus, lost);
}

const char *ss_daemon_kafka_bootstrap(const ss_daemon *d)
{
    return ss_bus_bootstrap(d->bus);
}

void ss_daemon_shutdown(ss_daemon *d, int flush_timeout_ms, void (*done)(void *ctx), void *ctx)
{
    if (d->closing)
        return;
    d->done = done;
    d->done_ctx = ctx;
    d->flush_timeout_ms = flush_timeout_ms;
    d->pending_closes++;          /* guard: parts may finish synchronously */
    close_listeners(d);
    /* Lines already read count: decide on them before the bus flushes. */
    decider_evaluate_dirty(d);
    close_core(d);
    d->pending_closes--;
    maybe_done(d);
}
