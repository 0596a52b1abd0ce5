/* bench_k8s.c: many clusters' decisions at once through the Kubernetes backend:
 * every cluster of a configuration is resized to the same size at the same
 * moment; prints decisions applied per second and the latency from the
 * decision to the API server's 200 for the scale write (p50/p99/max).
 * tests/bench/k8s_1000.sh runs it against 1,000 Deployments in a real API server.
 *
 *   bench_k8s --config FILE --desired N [--qps Q] [--connections C]
 *     --qps: 0 = actuator.kubernetes.qps from the file, -1 = no client-side limit */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "actuator/k8s.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/config/config.h"
#include "lib/http/client.h"

typedef struct bench {
    ss_http_client *http;
    ss_k8s_backend *b;
    size_t want, done, applied, failed;
    int64_t *write_ms;
    size_t nwrite;
    int64_t t0_us, last_us;
    char first_error[4096];
} bench;

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_outcome(const ss_k8s_outcome *o, void *arg)
{
    bench *bn = arg;
    bn->done++;
    if (o->code == SS_K8S_APPLIED) {
        bn->applied++;
        if (o->write_ms >= 0)
            bn->write_ms[bn->nwrite++] = o->write_ms;
    } else {
        bn->failed++;
        if (!bn->first_error[0])
            snprintf(bn->first_error, sizeof bn->first_error, "%s", o->summary);
    }
    bn->last_us = ss_mono_us();
    if (bn->done == bn->want)
        ss_k8s_backend_close(bn->b, NULL, NULL);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int desired = -1, qps = 0, conns = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--desired")) desired = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--qps")) qps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections")) conns = atoi(argv[i + 1]);
    }
    if (!config || desired < 0) {
        fprintf(stderr, "usage: bench_k8s --config FILE --desired N [--qps Q|-1] [--connections C]\n");
        return 2;
    }
    ss_log_set_level(SS_LOG_WARN);
    char err[1024];
    ss_config *cfg;
    if (ss_config_load_file(config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "bench_k8s: %s\n", err);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    bench bn = { 0 };
    ss_http_client_opts ho = { .max_connections = conns, .max_host_connections = conns };
    bn.http = ss_http_client_create(&loop, &ho);
    ss_k8s_backend_opts bo = { .qps_override = qps };
    bn.b = ss_k8s_backend_create(&loop, bn.http, cfg, &bo, err, sizeof err);
    if (!bn.b) {
        fprintf(stderr, "bench_k8s: %s\n", err);
        return 1;
    }
    bn.write_ms = calloc(cfg->nclusters, sizeof *bn.write_ms);
    ss_k8s_request q = { .desired = desired, .decision = "bench" };
    bn.t0_us = ss_mono_us();
    for (size_t i = 0; i < cfg->nclusters; i++)
        if (ss_k8s_backend_serves(bn.b, i) && ss_k8s_backend_resize(bn.b, i, &q, on_outcome, &bn) == 0)
            bn.want++;
    if (bn.want == 0)
        ss_k8s_backend_close(bn.b, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ss_http_client_stats st;
    ss_http_client_stats_get(bn.http, &st);
    ss_http_client_close(bn.http, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    double secs = (double)(bn.last_us - bn.t0_us) / 1e6;
    qsort(bn.write_ms, bn.nwrite, sizeof *bn.write_ms, cmp64);
    int64_t p50 = bn.nwrite ? bn.write_ms[bn.nwrite / 2] : -1;
    int64_t p99 = bn.nwrite ? bn.write_ms[(bn.nwrite * 99) / 100 - (bn.nwrite >= 100 ? 1 : 0)] : -1;
    int64_t mx = bn.nwrite ? bn.write_ms[bn.nwrite - 1] : -1;
    const char *lim = qps < 0 ? "off" : "on";
    printf("clusters %zu, limit %s (qps %d, burst %d), connections %d: applied %zu, failed %zu in %.2f s "
           "= %.0f decisions/s; decision -> API 200: p50 %lld ms, p99 %lld ms, max %lld ms; "
           "HTTP requests %llu (%.1f per decision), connections opened %llu\n",
           bn.want, lim, qps > 0 ? qps : qps < 0 ? 0 : cfg->actuator.kubernetes.qps,
           cfg->actuator.kubernetes.burst, conns, bn.applied, bn.failed, secs,
           secs > 0 ? (double)bn.applied / secs : 0, (long long)p50, (long long)p99, (long long)mx,
           (unsigned long long)st.attempts, bn.want ? (double)st.attempts / (double)bn.want : 0,
           (unsigned long long)st.connects);
    if (bn.first_error[0])
        printf("first failure: %s\n", bn.first_error);
    free(bn.write_ms);
    ss_config_free(cfg);
    return bn.failed ? 1 : 0;
}
