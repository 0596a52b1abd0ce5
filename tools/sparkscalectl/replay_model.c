/* replay_model.c: the Spark standalone cluster a policy trace is replayed on
 * (replay.h): where executors run decides which workers are busy, and busy
 * workers are what a scale-in may not remove. The same model as
 * tests/unit/test_policy_sim.c, with the master's spreadOut choice. */
#include "tools/sparkscalectl/replay.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 4096
#define MAX_EXEC 65536

struct rp_model {
    int e;                    /* executor slots per worker */
    int idle_timeout_s;       /* spark.dynamicAllocation.executorIdleTimeout */
    int spread_out;           /* spark.deploy.spreadOut */
    int napps;
    int alive[MAX_WORKERS];
    int execs[MAX_WORKERS];   /* executors on each worker */
    int nalive;
    int *running;             /* per app */
    int **placed;             /* per app: the worker of each executor, newest last */
    int *over_since;          /* per app: second the target fell below running; -1 */
};

rp_model *rp_model_create(int napps, int executors_per_worker, int idle_timeout_s,
                          int spread_out)
{
    rp_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->e = executors_per_worker > 0 ? executors_per_worker : 1;
    m->idle_timeout_s = idle_timeout_s;
    m->spread_out = spread_out;
    m->napps = napps;
    m->running = calloc((size_t)napps + 1, sizeof *m->running);
    m->placed = calloc((size_t)napps + 1, sizeof *m->placed);
    m->over_since = calloc((size_t)napps + 1, sizeof *m->over_since);
    if (!m->running || !m->placed || !m->over_since) {
        rp_model_destroy(m);
        return NULL;
    }
    for (int a = 0; a < napps; a++) {
        m->over_since[a] = -1;
        m->placed[a] = malloc(MAX_EXEC * sizeof **m->placed);
        if (!m->placed[a]) {
            rp_model_destroy(m);
            return NULL;
        }
    }
    return m;
}

void rp_model_destroy(rp_model *m)
{
    if (!m)
        return;
    for (int a = 0; m->placed && a < m->napps; a++)
        free(m->placed[a]);
    free(m->placed);
    free(m->running);
    free(m->over_since);
    free(m);
}

void rp_model_resize(rp_model *m, int want)
{
    if (want > MAX_WORKERS)
        want = MAX_WORKERS;
    for (int i = 0; m->nalive < want && i < MAX_WORKERS; i++)
        if (!m->alive[i]) {
            m->alive[i] = 1;
            m->execs[i] = 0;
            m->nalive++;
        }
    /* the actuator removes idle workers only, newest first */
    for (int i = MAX_WORKERS - 1; m->nalive > want && i >= 0; i--)
        if (m->alive[i] && m->execs[i] == 0) {
            m->alive[i] = 0;
            m->nalive--;
        }
}

/* The worker with the most free slots (ties: the oldest), -1 if all full:
 * Spark 3.5's master sorts usable workers by free cores, descending. */
static int most_free(const rp_model *m)
{
    int best = -1;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (m->alive[i] && m->execs[i] < m->e && (best < 0 || m->execs[i] < m->execs[best]))
            best = i;
    return best;
}

void rp_model_set_app(rp_model *m, int app, int want, int now_s, int finished)
{
    if (app < 0 || app >= m->napps)
        return;
    if (want > MAX_EXEC)
        want = MAX_EXEC;
    if (!finished && m->running[app] > want) {
        /* dynamic allocation keeps an executor until it has been idle for
         * executorIdleTimeout; a finished app's executors go at once */
        if (m->over_since[app] < 0)
            m->over_since[app] = now_s;
        if (now_s - m->over_since[app] < m->idle_timeout_s)
            return;
    }
    m->over_since[app] = -1;
    while (m->running[app] > want) {
        int w = m->placed[app][--m->running[app]];
        m->execs[w]--;
    }
    while (m->running[app] < want) {
        int w = most_free(m);
        if (w < 0)
            return;   /* no room: the rest wait for workers */
        do {
            m->execs[w]++;
            m->placed[app][m->running[app]++] = w;
        } while (!m->spread_out && m->running[app] < want && m->execs[w] < m->e);
    }
}

int rp_model_alive(const rp_model *m)
{
    return m->nalive;
}

int rp_model_busy(const rp_model *m)
{
    int n = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        n += m->alive[i] && m->execs[i] > 0;
    return n;
}

int rp_model_running(const rp_model *m, int app)
{
    return app >= 0 && app < m->napps ? m->running[app] : 0;
}

int rp_model_worker_execs(const rp_model *m, int i)
{
    return i >= 0 && i < MAX_WORKERS && m->alive[i] ? m->execs[i] : -1;
}

int rp_model_slots(const rp_model *m)
{
    (void)m;
    return MAX_WORKERS;
}
