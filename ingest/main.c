/* main.c: the sparkscaled command line: load the config, run the reactor
 * until SIGTERM/SIGINT, shut down cleanly (Kafka flushed first). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <uv.h>

#include "ingest/daemon.h"
#include "lib/config/cli.h"
#include "lib/config/config.h"
#include "lib/base/log.h"
#include "lib/bus/kafka.h"

#define SHUTDOWN_FLUSH_MS 10000

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sparkscaled [--config FILE] [--check-config] [--log-level LEVEL]\n"
        "\n"
        "Watches Spark's dynamic-allocation metrics (carbon plaintext over TCP/UDP),\n"
        "decides each cluster's worker count and publishes every decision to Kafka.\n"
        "\n"
        "  -c, --config FILE     YAML configuration (default: the embedded defaults:\n"
        "                        carbon on 127.0.0.1:2003, status on 127.0.0.1:9090,\n"
        "                        an embedded Kafka broker, one cluster \"demo\")\n"
        "      --check-config    validate, print the effective configuration, exit 0/1\n"
        "  -l, --log-level L     debug|info|warn|error (overrides the config)\n"
        "  -h, --help            this text\n"
        "  -V, --version         print the version\n"
        "\n"
        "Status: GET /healthz, /metrics, /v1/clusters, /v1/kafka on ingest.http.\n"
        "Exit status: 0 clean stop, 1 bad config or start-up failure, 2 bad arguments,\n"
        "3 stopped with decisions Kafka never acknowledged (brokers unreachable),\n"
        "4 a second signal cut the shutdown short (unacknowledged decisions lost).\n");
}

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    ss_daemon *daemon;
    int stopping;
    uint64_t lost;                 /* decisions Kafka never acknowledged */
} app;

static void on_daemon_done(void *ctx)
{
    app *a = ctx;
    a->daemon = NULL;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (a->stopping) {
        uint64_t pending = a->daemon ? ss_daemon_pending_decisions(a->daemon) : 0;
        ss_error("second signal %d: exiting now; %llu decisions not acknowledged by Kafka are "
                 "lost", signum, (unsigned long long)pending);
        _exit(4);
    }
    a->stopping = 1;
    ss_info("signal %d: shutting down (flushing Kafka, up to %d ms)", signum,
            SHUTDOWN_FLUSH_MS);
    ss_daemon_shutdown(a->daemon, SHUTDOWN_FLUSH_MS, on_daemon_done, a);
}

int main(int argc, char **argv)
{
    ss_cli cli = { .prog = "sparkscaled" };
    int rc = ss_cli_parse(&cli, argc, argv, usage);
    if (rc >= 0)
        return rc;
    ss_config *cfg = ss_cli_load(&cli);
    if (!cfg)
        return 1;
    char err[1024];
    /* kafka.properties are checked the way the daemon would use them (each
     * value, then a client built without brokers), so a bad one fails here
     * and not at start. */
    if (ss_kafka_check_properties(cfg->kafka.properties, cfg->kafka.nproperties, err,
                                  sizeof err) != 0) {
        fprintf(stderr, "sparkscaled: %s: %s\n", cfg->source, err);
        ss_config_free(cfg);
        return 1;
    }
    ss_config_warn_secrets(cfg);
    if ((rc = ss_cli_setup(&cli, cfg)) >= 0)
        return rc;

    app a = { 0 };
    uv_loop_init(&a.loop);
    /* Signals first: a SIGTERM that arrives while the daemon starts (it
     * says "started" from inside create) is queued for the loop, not fatal. */
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    a.daemon = ss_daemon_create(&a.loop, cfg, err, sizeof err);
    if (!a.daemon) {
        ss_error("%s", err);
        uv_close((uv_handle_t *)&a.sigterm, NULL);
        uv_close((uv_handle_t *)&a.sigint, NULL);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        uv_loop_close(&a.loop);
        ss_config_free(cfg);
        return 1;
    }
    ss_daemon_set_lost_counter(a.daemon, &a.lost);

    uv_run(&a.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&a.loop);
    if (rc != 0)
        ss_warn("loop closed with handles still open: %s", uv_strerror(rc));
    ss_config_free(cfg);
    if (a.lost > 0) {
        /* Logged by the bus too; the exit status says it to supervisors. */
        ss_error("stopped with %llu decisions not acknowledged by Kafka", (unsigned long long)a.lost);
        return 3;
    }
    ss_info("stopped");
    return 0;
}
