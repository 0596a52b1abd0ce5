/* fuzz_master_json.c: libFuzzer target for the master /json/ decoder: any input either
 * fails with a known code and a message, or gives a state whose invariants hold. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/spark/master_json.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int same_host(const char *a, const char *b)
{
    for (; *a && lower((unsigned char)*a) == lower((unsigned char)*b); a++, b++)
        ;
    return *a == '\0' && *b == '\0';
}

static void check_state(const ss_master_state *m)
{
    size_t i, j, busy = 0;
    CHECK(m->url && strlen(m->url) <= SS_MASTER_MAX_ID);
    CHECK((unsigned)m->status <= SS_MASTER_COMPLETING_RECOVERY);
    CHECK(m->nworkers <= SS_MASTER_MAX_WORKERS && m->nactiveapps <= SS_MASTER_MAX_APPS);
    CHECK(m->nworkers == 0 || m->workers);
    CHECK(m->aliveworkers >= 0 && m->cores >= 0 && m->coresused >= 0);
    for (i = 0; i < m->nworkers; i++) {
        const ss_spark_worker *w = &m->workers[i];
        const ss_spark_worker *f;
        size_t hl = strlen(w->host);
        CHECK(w->id && w->host && w->webuiaddress);
        CHECK(strlen(w->id) > 0 && strlen(w->id) <= SS_MASTER_MAX_ID);
        CHECK(hl > 0 && hl <= SS_MASTER_MAX_ID);
        CHECK(w->port >= 0 && w->port <= 65535 && w->cores >= 0 && w->coresused >= 0);
        CHECK(w->memory_mb >= 0 && w->memoryused_mb >= 0);
        CHECK((unsigned)w->state <= SS_WORKER_DECOMMISSIONED);
        busy += w->state == SS_WORKER_ALIVE && w->coresused > 0;
        /* find_worker: same host (and port unless 0); ALIVE if any such entry is. */
        f = ss_master_find_worker(m, w->host, w->port);
        CHECK(f && same_host(f->host, w->host) && (w->port == 0 || f->port == w->port));
        for (j = 0; j < m->nworkers; j++)
            if (m->workers[j].state == SS_WORKER_ALIVE && same_host(m->workers[j].host, w->host) &&
                (w->port == 0 || m->workers[j].port == w->port))
                CHECK(f->state == SS_WORKER_ALIVE);
        CHECK(ss_master_find_worker(m, w->host, 0) != NULL);
    }
    CHECK(ss_master_busy_workers(m) == busy);
    for (i = 0; i < m->nactiveapps; i++) {
        const ss_spark_app *a = &m->activeapps[i];
        CHECK(a->id && a->name && strlen(a->id) > 0 && strlen(a->id) <= SS_MASTER_MAX_ID);
        CHECK(strlen(a->name) <= SS_MASTER_MAX_NAME);
        CHECK(a->cores >= 0 && a->memoryperexecutor_mb >= 0);
        CHECK((unsigned)a->state <= SS_APP_KILLED);
        CHECK(a->nresources <= SS_MASTER_MAX_RESOURCES);
        for (j = 0; j < a->nresources; j++)
            CHECK(a->resources[j].name && a->resources[j].amount >= 0);
    }
    CHECK(strcmp(ss_master_status_name(m->status), "") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    ss_master_state *m = (ss_master_state *)err;   /* must be overwritten */
    int rc;

    memset(err, 'x', sizeof(err));
    rc = ss_master_parse((const char *)data, size, &m, err, sizeof(err));
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -E2BIG);
    if (rc != 0) {
        CHECK(m == NULL);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        return 0;
    }
    CHECK(m != NULL);
    check_state(m);
    ss_master_state_free(m);
    return 0;
}
