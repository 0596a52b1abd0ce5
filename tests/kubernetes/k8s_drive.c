/* k8s_drive.c: runs the actuator's Kubernetes backend once from the command
 * line, so tests can drive it against a real API server (and the fault
 * fixture) without Kafka: one operation, its outcome as one JSON line.
 *
 *   k8s_drive --config FILE [--sa-dir DIR] [--qps N] read CLUSTER
 *   k8s_drive --config FILE [--sa-dir DIR] [--qps N] resize CLUSTER DESIRED
 *             [--victim IP]... [--dry-run] [--blind] [--decision TEXT]
 *
 * Exit status: 0 applied, 3 partial, 4 held, 1 failed, 2 bad arguments. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "actuator/k8s.h"
#include "lib/base/log.h"
#include "lib/config/config.h"
#include "lib/http/client.h"

typedef struct run {
    ss_http_client *http;
    ss_k8s_backend *b;
    int code;
    int got;
} run;

static json_t *notes(const ss_k8s_pod_note *n, size_t count)
{
    json_t *a = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:b, s:b}", "name", n[i].name, "ip", n[i].ip,
                                           "victim", n[i].victim, "empty", n[i].empty));
    return a;
}

static void on_http_closed(void *arg) { (void)arg; }

static void on_backend_closed(void *arg)
{
    run *r = arg;
    ss_http_client_close(r->http, on_http_closed, NULL);
}

static void on_outcome(const ss_k8s_outcome *o, void *arg)
{
    run *r = arg;
    json_t *j = json_pack("{s:s, s:b, s:i, s:i, s:i, s:i, s:b, s:I, s:I, s:o, s:i, s:o, s:s, s:s, s:s}",
                          "code", ss_k8s_code_name(o->code), "dry_run", o->dry_run,
                          "before", o->replicas_before, "after", o->replicas_after,
                          "target", o->target, "conflicts", o->conflicts,
                          "confirmed", o->confirmed, "write_ms", (json_int_t)o->write_ms,
                          "total_ms", (json_int_t)o->total_ms,
                          "removed", notes(o->removed, o->nremoved),
                          "removed_other", (int)o->nremoved_other,
                          "kept", notes(o->kept, o->nkept), "reason", o->reason,
                          "error", o->error, "summary", o->summary);
    json_t *un = json_array();
    for (size_t i = 0; i < o->nunmapped; i++)
        json_array_append_new(un, json_string(o->unmapped[i]));
    json_object_set_new(j, "unmapped", un);
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(j);
    r->got = 1;
    r->code = o->code == SS_K8S_APPLIED ? 0 : o->code == SS_K8S_PARTIAL ? 3
            : o->code == SS_K8S_HELD ? 4 : 1;
    ss_k8s_backend_close(r->b, on_backend_closed, r);
}

static int usage(void)
{
    fprintf(stderr, "usage: k8s_drive --config FILE [--sa-dir DIR] [--qps N] read CLUSTER\n"
                    "       k8s_drive --config FILE [--sa-dir DIR] [--qps N] resize CLUSTER DESIRED "
                    "[--victim IP]... [--dry-run] [--blind] [--decision TEXT]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *sa_dir = NULL, *cmd = NULL, *cluster = NULL, *decision = "k8s_drive";
    const char *victims[256];
    size_t nvictims = 0;
    int desired = -1, dry_run = 0, blind = 0, qps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(a, "--sa-dir") && i + 1 < argc) sa_dir = argv[++i];
        else if (!strcmp(a, "--qps") && i + 1 < argc) qps = atoi(argv[++i]);
        else if (!strcmp(a, "--victim") && i + 1 < argc && nvictims < 256) victims[nvictims++] = argv[++i];
        else if (!strcmp(a, "--decision") && i + 1 < argc) decision = argv[++i];
        else if (!strcmp(a, "--dry-run")) dry_run = 1;
        else if (!strcmp(a, "--blind")) blind = 1;
        else if (!cmd) cmd = a;
        else if (!cluster) cluster = a;
        else if (desired < 0) desired = atoi(a);
        else return usage();
    }
    if (!config || !cmd || !cluster || (strcmp(cmd, "read") && strcmp(cmd, "resize")) ||
        (!strcmp(cmd, "resize") && desired < 0))
        return usage();
    if (getenv("SS_LOG_LEVEL"))
        ss_log_set_level((ss_log_level)ss_log_parse_level(getenv("SS_LOG_LEVEL")));

    char err[1024];
    ss_config *cfg = NULL;
    if (ss_config_load_file(config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "k8s_drive: %s\n", err);
        return 1;
    }
    int idx = ss_config_cluster_index(cfg, cluster);
    if (idx < 0) {
        fprintf(stderr, "k8s_drive: no cluster %s\n", cluster);
        ss_config_free(cfg);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    run r = { .code = 1 };
    r.http = ss_http_client_create(&loop, NULL);
    ss_k8s_backend_opts bo = { .sa_dir = sa_dir, .qps_override = qps };
    r.b = r.http ? ss_k8s_backend_create(&loop, r.http, cfg, &bo, err, sizeof err) : NULL;
    if (!r.b) {
        fprintf(stderr, "k8s_drive: %s\n", r.http ? err : "no HTTP client");
        if (r.http)
            ss_http_client_close(r.http, on_http_closed, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        ss_config_free(cfg);
        return 1;
    }
    int rc;
    if (!strcmp(cmd, "read")) {
        rc = ss_k8s_backend_read(r.b, (size_t)idx, on_outcome, &r);
    } else {
        ss_k8s_request q = { .desired = desired, .victims = victims, .nvictims = nvictims,
                             .dry_run = dry_run, .blind = blind, .decision = decision };
        rc = ss_k8s_backend_resize(r.b, (size_t)idx, &q, on_outcome, &r);
    }
    if (rc) {
        fprintf(stderr, "k8s_drive: %s: %s\n", cmd, strerror(-rc));
        ss_k8s_backend_close(r.b, on_backend_closed, &r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int left = uv_loop_close(&loop);
    ss_config_free(cfg);
    if (left) {
        fprintf(stderr, "k8s_drive: handles left on the loop\n");
        return 1;
    }
    return r.got ? r.code : 1;
}
