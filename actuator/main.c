/* main.c: the sparkscale-actuator command line: load the config (the same
 * file as sparkscaled), run the daemon until SIGTERM/SIGINT, stop cleanly
 * (the action in flight finished or abandoned safely, audits committed). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "actuator/actuator.h"
#include "lib/base/log.h"
#include "lib/config/cli.h"
#include "lib/config/config.h"

/* Long enough for a resize in flight (exec timeout_s, HTTP calls) to end. */
#define SHUTDOWN_TIMEOUT_MS 60000

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sparkscale-actuator [--config FILE] [--check-config] [--log-level LEVEL]\n"
        "\n"
        "Consumes sparkscaled's decisions from Kafka (consumer group actuator.group),\n"
        "resizes each cluster's workers through its target (Kubernetes scale subresource,\n"
        "exec command, Oshinko REST)\n"
        "without removing a worker that runs tasks, and writes one audit record per\n"
        "decision, committed with the consumed offsets in one Kafka transaction.\n"
        "\n"
        "  -c, --config FILE     YAML configuration, the same file as sparkscaled's\n"
        "                        (default: the embedded defaults; with kafka.brokers\n"
        "                        embedded the bootstrap list is asked from sparkscaled\n"
        "                        at GET http://<ingest.http>/v1/kafka)\n"
        "      --check-config    validate, print the effective configuration, exit 0/1\n"
        "  -l, --log-level L     debug|info|warn|error (overrides the config)\n"
        "  -h, --help            this text\n"
        "  -V, --version         print the version\n"
        "\n"
        "Status: GET /healthz, /metrics, /v1/clusters, /v1/kafka on actuator.http.\n"
        "SIGTERM/SIGINT: finish or abandon the action in flight safely, commit, exit 0;\n"
        "a second signal exits at once.\n"
        "Exit status: 0 clean stop, 1 bad config, start-up failure or a fatal Kafka\n"
        "error (fenced, no audit topic), 2 bad arguments.\n");
}

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    ss_actuator *act;
    int stopping;
    int failed;
} app;

static void on_done(void *ctx)
{
    app *a = ctx;
    a->act = NULL;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (a->stopping) {
        ss_warn("second signal %d: exiting at once (the action in flight is left as it is; its "
                "decision is read again at the next start)",
                signum);
        _exit(1);
    }
    a->stopping = 1;
    ss_info("signal %d: shutting down (finishing the action in flight, committing audits)", signum);
    if (a->act)
        ss_actuator_shutdown(a->act, SHUTDOWN_TIMEOUT_MS, on_done, a);
}

static void on_fatal_done(void *ctx)
{
    app *a = ctx;
    a->failed = 1;
    on_done(a);
}

int main(int argc, char **argv)
{
    ss_cli cli = { .prog = "sparkscale-actuator" };
    int rc = ss_cli_parse(&cli, argc, argv, usage);
    if (rc >= 0)
        return rc;
    ss_config *cfg = ss_cli_load(&cli);
    if (!cfg)
        return 1;
    char err[1024];
    if ((rc = ss_cli_setup(&cli, cfg)) >= 0)
        return rc;

    app a = { 0 };
    uv_loop_init(&a.loop);
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    a.act = ss_actuator_create(&a.loop, cfg, err, sizeof err);
    if (!a.act) {
        ss_error("%s", err);
        uv_close((uv_handle_t *)&a.sigterm, NULL);
        uv_close((uv_handle_t *)&a.sigint, NULL);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        uv_loop_close(&a.loop);
        ss_config_free(cfg);
        return 1;
    }
    ss_actuator_on_fatal(a.act, on_fatal_done, &a);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&a.loop);
    if (rc != 0)
        ss_warn("loop closed with handles still open: %s", uv_strerror(rc));
    ss_config_free(cfg);
    if (a.failed) {
        ss_error("stopped after a fatal error");
        return 1;
    }
    ss_info("stopped");
    return 0;
}
