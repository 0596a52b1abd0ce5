/* bench_policy.c: one policy pass over 10,000 clusters x 5 apps (plus pool
 * grants), median of 7 passes, and the memory the inputs and states take. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"
#include "policy/pool.h"

#define NCLUSTERS 10000
#define NAPPS 5
#define PASSES 7
#define POOLS 100               /* pools of POOL_SIZE clusters: 2,000 clusters pooled */
#define POOL_SIZE 20

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

int main(void)
{
    static policy_conf conf;
    conf.min_workers = 1;
    conf.max_workers = 50;
    conf.idle_workers = 1;
    conf.scale_down_window_s = 300;
    conf.stale_after_s = 30;
    conf.app_expiry_s = 120;
    conf.tolerance_executors = 1;
    conf.app_min_executors = 2;

    policy_input *in = calloc(NCLUSTERS, sizeof(*in));
    policy_app *apps = calloc((size_t)NCLUSTERS * NAPPS, sizeof(*apps));
    char (*ids)[32] = calloc((size_t)NCLUSTERS * NAPPS, sizeof(*ids));
    policy_state *st = calloc(NCLUSTERS, sizeof(*st));
    policy_result *res = calloc(NCLUSTERS, sizeof(*res));
    policy_pool_cluster *pc = calloc(POOL_SIZE, sizeof(*pc));
    policy_pool_app *pa = calloc(POOL_SIZE * NAPPS, sizeof(*pa));
    uint32_t *order = calloc(POOL_SIZE * NAPPS, sizeof(*order));
    if (!in || !apps || !ids || !st || !res || !pc || !pa || !order) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    int64_t now = 1795253400000LL;
    for (int c = 0; c < NCLUSTERS; c++) {
        policy_app *a = &apps[c * NAPPS];
        for (int j = 0; j < NAPPS; j++) {
            snprintf(ids[c * NAPPS + j], sizeof(ids[0]), "app-20261121%02u%02u00-%04u",
                     (unsigned)j % 24, (unsigned)c % 60, (unsigned)c % 10000);
            a[j].id = ids[c * NAPPS + j];
            a[j].start_ms = policy_app_start_ms(a[j].id, now);
            a[j].target_executors = (int)rnd(12);
            a[j].max_needed_executors = -1;
            a[j].last_seen_ms = now;
        }
        in[c] = (policy_input){
            .conf = &conf, .worker_cores = 4, .worker_memory_mb = 8192, .executor_cores = 2,
            .executor_memory_mb = 4096, .current_workers = (int)rnd(30), .busy_workers = -1,
            .apps = a, .napps = NAPPS, .last_data_ms = now, .now_ms = now,
        };
        policy_state_init(&st[c], now);
    }

    int64_t eval_ns[PASSES], pool_ns[PASSES];
    long checksum = 0;
    for (int p = 0; p < PASSES; p++) {
        now += 1000;
        /* new gauges arrived: demands move, some apps go quiet */
        for (int c = 0; c < NCLUSTERS; c++) {
            policy_app *a = &apps[c * NAPPS];
            a[rnd(NAPPS)].target_executors = (int)rnd(12);
            for (int j = 0; j < NAPPS; j++)
                if (rnd(50) != 0)
                    a[j].last_seen_ms = now;
            in[c].now_ms = now;
            in[c].last_data_ms = now;
            in[c].busy_workers = (int)rnd(8);
        }
        int64_t t0 = mono_ns();
        for (int c = 0; c < NCLUSTERS; c++) {
            if (policy_evaluate(&in[c], &st[c], &res[c]) != 0)
                return 1;
        }
        int64_t t1 = mono_ns();
        for (int pool = 0; pool < POOLS; pool++) {
            policy_pool pl = {.name = "bench", .max_workers = POOL_SIZE * 6};
            size_t na = 0;
            for (int k = 0; k < POOL_SIZE; k++) {
                int c = pool * POOL_SIZE + k;
                policy_pool_cluster_from(&in[c], &res[c], "c", &pc[k]);
                na += policy_pool_collect_apps(&in[c], k, pa + na, POOL_SIZE * NAPPS - na);
            }
            if (policy_pool_grant(&pl, pc, POOL_SIZE, pa, na, order) != 0)
                return 1;
            checksum += pl.granted_workers;
        }
        int64_t t2 = mono_ns();
        eval_ns[p] = t1 - t0;
        pool_ns[p] = t2 - t1;
        for (int c = 0; c < NCLUSTERS; c++)
            checksum += res[c].desired;
        for (int c = 0; c < NCLUSTERS; c++)
            in[c].current_workers = res[c].desired;
    }
    int64_t total_ns[PASSES];
    for (int p = 0; p < PASSES; p++)
        total_ns[p] = eval_ns[p] + pool_ns[p];
    qsort(eval_ns, PASSES, sizeof(int64_t), cmp_i64);
    qsort(pool_ns, PASSES, sizeof(int64_t), cmp_i64);
    qsort(total_ns, PASSES, sizeof(int64_t), cmp_i64);

    size_t in_bytes = NCLUSTERS * sizeof(policy_input) +
                      (size_t)NCLUSTERS * NAPPS * (sizeof(policy_app) + sizeof(ids[0]));
    size_t st_bytes = NCLUSTERS * sizeof(policy_state);
    size_t res_bytes = NCLUSTERS * sizeof(policy_result);
    printf("bench_policy: %d clusters x %d apps, median of %d passes (reason text included)\n",
           NCLUSTERS, NAPPS, PASSES);
    printf("  policy_evaluate pass: %.3f ms (%.0f ns/cluster; min %.3f, max %.3f)\n",
           eval_ns[PASSES / 2] / 1e6, (double)eval_ns[PASSES / 2] / NCLUSTERS, eval_ns[0] / 1e6,
           eval_ns[PASSES - 1] / 1e6);
    printf("  pool grants (%d pools x %d clusters x %d apps): %.3f ms\n", POOLS, POOL_SIZE, NAPPS,
           pool_ns[PASSES / 2] / 1e6);
    printf("  pass total: %.3f ms (bar 10 ms)\n", total_ns[PASSES / 2] / 1e6);
    printf("  memory: inputs %zu B (input %zu B + %d x (app %zu B + id 32 B) per cluster), "
           "states %zu B (%zu B each), inputs+states %zu B (%.1f MiB); results %zu B (%zu B each)\n",
           in_bytes, sizeof(policy_input), NAPPS, sizeof(policy_app), st_bytes,
           sizeof(policy_state), in_bytes + st_bytes, (in_bytes + st_bytes) / 1048576.0,
           res_bytes, sizeof(policy_result));
    printf("  checksum %ld\n", checksum);
    free(in);
    free(apps);
    free(ids);
    free(st);
    free(res);
    free(pc);
    free(pa);
    free(order);
    return 0;
}
