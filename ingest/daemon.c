/* daemon.c: wires sparkscaled's parts onto one libuv loop: prefixes and
 * store, the sources (carbon listeners, HTTP pollers), the status server,
 * the Kafka bus, the decider and its two hooks (after every loop turn for
 * dirty clusters; a timer for the rest). */
#include "ingest/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "carbon/spark_path.h"
#include "ingest/carbon_tcp.h"
#include "ingest/carbon_udp.h"
#include "ingest/decider.h"
#include "ingest/master_view.h"
#include "ingest/pipeline.h"
#include "ingest/poller.h"
#include "ingest/recorder.h"
#include "ingest/source.h"
#include "ingest/status.h"
#include "ingest/store.h"
#include "lib/base/clock.h"
#include "lib/base/join.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/bus/producer.h"
#include "lib/http/server.h"

#define MAX_SOURCES 8

struct ss_daemon {
    uv_loop_t *loop;
    const ss_config *cfg;
    ss_bus_conf bus_conf;          /* borrowed by the bus */
    ss_store *store;
    ss_recorder *rec;              /* ingest.record; NULL = off */
    const char **rec_names;        /* cluster names the recording uses */
    spark_prefixes *prefixes;
    ss_master_view *masters;       /* polled master answers */
    ss_pipeline pipe;
    ss_cidr_list *allow;           /* per cluster (its own list, or ingest's) */
    uint64_t *refused;             /* per cluster: lines refused by allow */
    ss_cidr_list any_allow;        /* union of every cluster's list: the listeners' filter */
    int filter_listeners;          /* every cluster restricts its senders */
    ss_source *sources[MAX_SOURCES];
    size_t nsources;
    ss_http_server *http;
    ss_bus *bus;
    int bus_closing;
    ss_decider *decider;
    ss_status status;
    uv_check_t evaluate_check;     /* after each loop turn: evaluate dirty clusters */
    uv_timer_t evaluate_timer;     /* periodic: expiry, staleness, heartbeat */
    uv_idle_t drain_idle;          /* runs while decisions wait to be published */
    uv_timer_t lag_timer;          /* loop-lag probe */
    uv_prepare_t turn_prepare;     /* CPU time of each loop turn */
    int64_t turn_cpu_us;
    uint64_t trim_at, trim_freed;  /* last heap trim: loop time, store bytes freed then */
    uint64_t lag_expect_ns;
    ss_loop_lag lag;
    int hooks_started;             /* evaluate_check/timer initialised */
    int closing;
    ss_join parts;                 /* parts still closing */
    int flush_timeout_ms;
    void (*done)(void *);
    void *done_ctx;
};

/* Every part has closed: free what is left and tell the owner. */
static void finish(void *ctx)
{
    ss_daemon *d = ctx;
    void (*done)(void *) = d->done;
    void *done_ctx = d->done_ctx;
    ss_decider_destroy(d->decider);
    for (size_t c = 0; d->allow && c < d->cfg->nclusters; c++)
        ss_cidr_list_free(&d->allow[c]);
    free(d->allow);
    free(d->refused);
    ss_cidr_list_free(&d->any_allow);
    ss_recorder_close(d->rec);
    free(d->rec_names);
    master_view_destroy(d->masters);
    store_destroy(d->store);
    spark_prefixes_destroy(d->prefixes);
    free(d);
    if (done)
        done(done_ctx);
}

static void on_part_closed(void *ctx)
{
    ss_daemon *d = ctx;
    ss_join_leave(&d->parts);
}

static void on_handle_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

static void on_drain(uv_idle_t *h)
{
    ss_daemon *d = h->data;
    ss_decider_evaluate_dirty(d->decider);
    ss_decider_drain(d->decider);
    if (ss_decider_backlog(d->decider) == 0)
        uv_idle_stop(h);
}

/* Decisions left over the per-turn budget go out on the next turns; the
 * idle handle keeps the loop turning (without blocking) until they have. */
static void keep_draining(ss_daemon *d)
{
    if (ss_decider_backlog(d->decider) > 0 && !uv_is_active((uv_handle_t *)&d->drain_idle))
        uv_idle_start(&d->drain_idle, on_drain);
}

static void on_check(uv_check_t *h)
{
    ss_daemon *d = h->data;
    ss_decider_evaluate_dirty(d->decider);
    keep_draining(d);
}

/* glibc keeps freed heap for reuse; memory the store gave back (expired
 * apps, a flood that ended) and the parse of a large configuration are
 * returned to the kernel, at most every TRIM_EVERY_MS and only once
 * TRIM_MIN_FREED bytes were freed since the last trim. */
#define TRIM_EVERY_MS 10000
#define TRIM_MIN_FREED (16u << 20)

static void maybe_trim(ss_daemon *d, int force)
{
#ifdef __GLIBC__
    store_stats st;
    store_get_stats(d->store, &st);
    uint64_t now = uv_now(d->loop);
    if (!force && (st.bytes_freed - d->trim_freed < TRIM_MIN_FREED ||
                   now - d->trim_at < TRIM_EVERY_MS))
        return;
    uint64_t t0 = uv_hrtime();
    malloc_trim(0);
    d->trim_at = now;
    d->trim_freed = st.bytes_freed;
    d->lag.heap_trims++;
    d->lag.heap_trim_us = (int64_t)((uv_hrtime() - t0) / 1000);
#else
    (void)d;
    (void)force;
#endif
}

static void on_timer(uv_timer_t *h)
{
    ss_daemon *d = h->data;
    ss_decider_tick(d->decider);
    keep_draining(d);
    ss_recorder_flush(d->rec);
    maybe_trim(d, d->lag.heap_trims == 0);
}

/* How late the loop runs a 50 ms timer: any turn that stalls (a long pass,
 * a big status page) shows here. */
#define LAG_PERIOD_MS 50

static void on_lag(uv_timer_t *h)
{
    ss_daemon *d = h->data;
    uint64_t now = uv_hrtime();
    if (d->lag_expect_ns) {
        int64_t lag_us = now > d->lag_expect_ns ? (int64_t)((now - d->lag_expect_ns) / 1000) : 0;
        d->lag.last_us = lag_us;
        if (lag_us > d->lag.max_us)
            d->lag.max_us = lag_us;
        if (lag_us > 5000)
            d->lag.over_5ms++;
        ss_hist_add(&d->lag.probes, lag_us);
        d->lag.samples++;
    }
    d->lag_expect_ns = now + (uint64_t)LAG_PERIOD_MS * 1000000;
}

/* The CPU time the loop thread spent on one turn (timers, I/O callbacks,
 * checks, closes: everything between two waits). Unlike the lag probe it
 * does not count time the thread waited for a CPU that other processes
 * held, so it tells a stall of our own making from a busy machine. */
static void on_turn(uv_prepare_t *h)
{
    ss_daemon *d = h->data;
    int64_t now = ss_thread_cpu_us();
    if (d->turn_cpu_us) {
        int64_t us = now - d->turn_cpu_us;
        ss_hist_add(&d->lag.turns, us);
        if (us > d->lag.turn_max_us)
            d->lag.turn_max_us = us;
        if (us > 5000)
            d->lag.turns_over_5ms++;
    }
    d->turn_cpu_us = now;
    ss_decider_turn_begin(d->decider);
}

/* Closes the sources (their clients' last partial lines are processed) and
 * the status server. */
static void close_inputs(ss_daemon *d)
{
    d->closing = 1;
    for (size_t i = 0; i < d->nsources; i++) {
        ss_join_add(&d->parts);
        ss_source_close(d->sources[i], on_part_closed, d);
    }
    d->nsources = 0;
    d->status.nsources = 0;
    d->status.poller = NULL;
    if (d->http) {
        ss_join_add(&d->parts);
        ss_http_server_close(d->http, on_part_closed, d);
        d->http = NULL;
        d->status.http = NULL;
    }
}

/* Closes the evaluation hooks and the bus (which flushes first). */
static void close_core(ss_daemon *d)
{
    if (d->hooks_started) {
        d->hooks_started = 0;
        uv_handle_t *hooks[] = { (uv_handle_t *)&d->evaluate_check,
                                 (uv_handle_t *)&d->evaluate_timer,
                                 (uv_handle_t *)&d->drain_idle, (uv_handle_t *)&d->lag_timer,
                                 (uv_handle_t *)&d->turn_prepare };
        for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) {
            ss_join_add(&d->parts);
            uv_close(hooks[i], on_handle_closed);
        }
    }
    if (d->bus && !d->bus_closing) {
        d->bus_closing = 1;        /* the bus lives until its close callback */
        ss_join_add(&d->parts);
        ss_bus_close(d->bus, d->flush_timeout_ms, on_part_closed, d);
    }
}

static int add_source(ss_daemon *d, ss_source *s)
{
    if (!s)
        return -1;
    d->sources[d->nsources++] = s;
    if (ss_source_port(s) >= 0)
        ss_info("%s listening on port %d", ss_source_kind(s), ss_source_port(s));
    return 0;
}

/* The listeners and pollers the configuration asks for. */
static int open_sources(ss_daemon *d, char *err, size_t errlen)
{
    const ss_config *cfg = d->cfg;
    if (cfg->ingest.carbon_tcp.enabled) {
        carbon_tcp_limits tl = {
            .max_clients = cfg->ingest.max_clients,
            .max_per_peer = cfg->ingest.max_clients_per_peer,
            .allow = d->filter_listeners ? &d->any_allow : NULL,
            .idle_timeout_s = cfg->ingest.client_idle_timeout_s,
            .max_line = (size_t)cfg->ingest.max_line_bytes,
            .read_buffer = (size_t)cfg->ingest.read_buffer_bytes,
        };
        if (add_source(d, carbon_tcp_create(d->loop, cfg->ingest.carbon_tcp.host,
                                            cfg->ingest.carbon_tcp.port, &tl, &d->pipe, err,
                                            errlen)) != 0)
            return -1;
    }
    if (cfg->ingest.carbon_udp.enabled &&
        add_source(d, carbon_udp_create(d->loop, cfg->ingest.carbon_udp.host,
                                        cfg->ingest.carbon_udp.port,
                                        (size_t)cfg->ingest.max_line_bytes,
                                        d->filter_listeners ? &d->any_allow : NULL, &d->pipe,
                                        err, errlen)) != 0)
        return -1;
    if (poller_wanted(cfg) &&
        add_source(d, poller_create(d->loop, cfg, &d->pipe, d->masters, err, errlen)) != 0)
        return -1;
    return 0;
}

/* Who may send each cluster's carbon lines: its allowed_sources, else
 * ingest.allowed_sources; the listeners drop senders no cluster allows. */
static int open_allowlists(ss_daemon *d, char *err, size_t errlen)
{
    const ss_config *cfg = d->cfg;
    size_t n = cfg->nclusters, total = 0;
    d->allow = calloc(n ? n : 1, sizeof *d->allow);
    d->refused = calloc(n ? n : 1, sizeof *d->refused);
    if (!d->allow || !d->refused) {
        ss_errf(err, errlen, "out of memory for allowlists");
        return -1;
    }
    d->filter_listeners = n > 0;
    for (size_t c = 0; c < n; c++) {
        const ss_cluster_conf *cc = &cfg->clusters[c];
        char *const *texts = cc->nallowed_sources ? cc->allowed_sources : cfg->ingest.allowed_sources;
        size_t nt = cc->nallowed_sources ? cc->nallowed_sources : cfg->ingest.nallowed_sources;
        char why[300];
        if (ss_cidr_list_parse(texts, nt, &d->allow[c], why, sizeof why) != 0) {
            ss_errf(err, errlen, "cluster %s: allowed_sources: %s", cc->name, why);
            return -1;
        }
        if (nt == 0)
            d->filter_listeners = 0;   /* this cluster takes anyone */
        total += nt;
    }
    if (d->filter_listeners) {
        d->any_allow.nets = calloc(total, sizeof *d->any_allow.nets);
        if (!d->any_allow.nets) {
            ss_errf(err, errlen, "out of memory for allowlists");
            return -1;
        }
        for (size_t c = 0; c < n; c++)
            for (size_t i = 0; i < d->allow[c].n; i++)
                d->any_allow.nets[d->any_allow.n++] = d->allow[c].nets[i];
    }
    pipeline_set_allowlists(&d->pipe, d->allow, d->refused, n);
    return 0;
}

/* Prefixes, store and pipeline: the pure part of ingest. */
static int open_store(ss_daemon *d, char *err, size_t errlen)
{
    if (pipeline_open(&d->pipe, d->cfg, &d->store, &d->prefixes, err, errlen) != 0)
        return -1;
    d->masters = master_view_create(d->cfg->nclusters);
    if (!d->masters) {
        ss_errf(err, errlen, "out of memory for %zu clusters", d->cfg->nclusters);
        return -1;
    }
    return 0;
}

/* ingest.record: what the pipeline and the pollers take in, to a file. */
static int open_recorder(ss_daemon *d, char *err, size_t errlen)
{
    const ss_config *cfg = d->cfg;
    if (!cfg->ingest.record || !cfg->ingest.record[0])
        return 0;
    size_t n = cfg->nclusters;
    d->rec_names = calloc(n ? n : 1, sizeof *d->rec_names);
    if (!d->rec_names) {
        ss_errf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t c = 0; c < n; c++)
        d->rec_names[c] = cfg->clusters[c].name;
    char why[600];
    d->rec = ss_recorder_open(cfg->ingest.record, (uint64_t)cfg->ingest.record_max_mb << 20,
                              d->rec_names, n, why, sizeof why);
    if (!d->rec) {
        ss_errf(err, errlen, "ingest.record: %s", why);
        return -1;
    }
    d->pipe.rec = d->rec;
    ss_info("recording what is ingested to %s (rotated to %s.1 at %d MB)", cfg->ingest.record,
            cfg->ingest.record, cfg->ingest.record_max_mb);
    return 0;
}

ss_daemon *ss_daemon_create(uv_loop_t *loop, const ss_config *cfg, char *err, size_t errlen)
{
    ss_daemon *d = calloc(1, sizeof *d);
    if (!d) {
        ss_errf(err, errlen, "out of memory");
        return NULL;
    }
    d->loop = loop;
    d->cfg = cfg;
    d->flush_timeout_ms = 1000;
    ss_join_init(&d->parts, finish, d);

    if (open_store(d, err, errlen) != 0 || open_allowlists(d, err, errlen) != 0 ||
        open_recorder(d, err, errlen) != 0)
        goto fail;
    ss_config_bus_conf(cfg, &d->bus_conf);
    d->bus = ss_bus_create(loop, &d->bus_conf, err, errlen);
    if (!d->bus)
        goto fail;
    ss_decision_sink sink = ss_decision_sink_bus(d->bus);
    d->decider = ss_decider_create(cfg, d->store, &sink, err, errlen);
    if (!d->decider)
        goto fail;
    ss_bus_set_delivery_cb(d->bus, ss_decider_on_delivery, d->decider);
    ss_decider_set_master_view(d->decider, d->masters);
    if (open_sources(d, err, errlen) != 0)
        goto fail;

    d->status = (ss_status){
        .cfg = cfg, .store = d->store, .decider = d->decider, .bus = d->bus,
        .pipeline = &d->pipe.stats, .sources = d->sources, .nsources = d->nsources,
        .refused = d->refused,
        .masters = d->masters, .poller = ss_daemon_source(d, "http_poll"),
    };
    if (cfg->ingest.http.enabled) {
        d->http = ss_http_server_create(loop, cfg->ingest.http.host, cfg->ingest.http.port,
                                        ss_status_handle, &d->status, err, errlen);
        if (!d->http)
            goto fail;
        d->status.http = d->http;
        ss_info("status http listening on %s:%d", cfg->ingest.http.host,
                ss_http_server_port(d->http));
    }

    uv_check_init(loop, &d->evaluate_check);
    uv_timer_init(loop, &d->evaluate_timer);
    uv_idle_init(loop, &d->drain_idle);
    uv_timer_init(loop, &d->lag_timer);
    uv_prepare_init(loop, &d->turn_prepare);
    d->evaluate_check.data = d->evaluate_timer.data = d;
    d->drain_idle.data = d->lag_timer.data = d->turn_prepare.data = d;
    d->hooks_started = 1;
    d->status.lag = &d->lag;
    uv_timer_start(&d->lag_timer, on_lag, LAG_PERIOD_MS, LAG_PERIOD_MS);
    uv_prepare_start(&d->turn_prepare, on_turn);
    uv_unref((uv_handle_t *)&d->turn_prepare);
    uv_check_start(&d->evaluate_check, on_check);
    uint64_t every = cfg->policy.evaluate_interval_ms > 0 ? (uint64_t)cfg->policy.evaluate_interval_ms : 1000;
    uint64_t tick = every / ss_decider_slices(d->decider);
    uv_timer_start(&d->evaluate_timer, on_timer, tick, tick);
    ss_info("sparkscaled started: %zu cluster(s), kafka %s (%s)", cfg->nclusters,
            ss_bus_bootstrap(d->bus), cfg->kafka.brokers);
    return d;

fail:
    /* Parts close through the loop; the daemon is freed when the last has. */
    d->done = NULL;
    close_inputs(d);
    close_core(d);
    ss_join_arm(&d->parts);
    return NULL;
}

int ss_daemon_port(const ss_daemon *d, int which)
{
    const char *kind = which == SS_PORT_CARBON_TCP ? "carbon_tcp"
                     : which == SS_PORT_CARBON_UDP ? "carbon_udp" : NULL;
    if (which == SS_PORT_HTTP)
        return d->http ? ss_http_server_port(d->http) : -1;
    for (size_t i = 0; kind && i < d->nsources; i++)
        if (strcmp(ss_source_kind(d->sources[i]), kind) == 0)
            return ss_source_port(d->sources[i]);
    return -1;
}

ss_source *ss_daemon_source(const ss_daemon *d, const char *kind)
{
    for (size_t i = 0; i < d->nsources; i++)
        if (strcmp(ss_source_kind(d->sources[i]), kind) == 0)
            return d->sources[i];
    return NULL;
}

void ss_daemon_set_reaction_hook(ss_daemon *d, ss_daemon_reaction_fn fn, void *ctx)
{
    ss_decider_set_reaction_hook(d->decider, fn, ctx);
}

void ss_daemon_set_lost_counter(ss_daemon *d, uint64_t *lost)
{
    ss_bus_set_close_report(d->bus, lost);
}

uint64_t ss_daemon_pending_decisions(const ss_daemon *d)
{
    if (!d->bus)
        return 0;
    ss_bus_stats s;
    ss_bus_get_stats(d->bus, &s);
    return s.pending;
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
    close_inputs(d);
    /* Lines already read count: decide on them before the bus flushes. */
    do {
        ss_decider_evaluate_dirty(d->decider);
        ss_decider_drain(d->decider);
    } while (ss_decider_backlog(d->decider) > 0);
    close_core(d);
    ss_join_arm(&d->parts);
}
