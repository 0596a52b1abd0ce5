/* replay.c: `sparkscalectl replay`: a recording of sparkscaled (ingest.record)
 * or a policy trace, fed through sparkscaled's own pipeline, store, master
 * view and decider on a wall clock that jumps from record to record. Prints
 * a table, draws a chart, and sums up worker-seconds and under-provisioned
 * seconds against a static peak-sized cluster and the Oshinko rule. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/carbon.h"
#include "carbon/spark_path.h"
#include "ingest/decider.h"
#include "ingest/master_view.h"
#include "ingest/pipeline.h"
#include "ingest/poll_jolokia.h"
#include "ingest/poll_master.h"
#include "ingest/recorder.h"
#include "ingest/store.h"
#include "lib/base/clock.h"
#include "lib/base/str.h"
#include "lib/config/config.h"
#include "lib/spark/jolokia.h"
#include "policy/policy.h"
#include "tools/sparkscalectl/ctl.h"
#include "tools/sparkscalectl/replay.h"

#define MAX_INPUTS 16
#define MAX_APPS 4096
#define MAX_SECONDS (31 * 86400)       /* a month of recording, one row a second */
#define OSHINKO_POLL_S 5               /* the seed's rule: poll every 5 s ... */
#define OSHINKO_WINDOW 6               /* ... scale down towards the 30 s maximum */
#define GRAPHITE_LOOKBACK_MS 60000     /* Oshinko asked graphite for the last minute */
#define TRACE_T0_MS 1795253400000LL    /* the trace's clock: tests/unit/test_policy_sim.c */

static const char replay_usage[] =
    "usage: sparkscalectl replay --config FILE --input RECORDING [options]\n"
    "\n"
    "replay: feed a recording of sparkscaled (ingest.record) through the same\n"
    "  pipeline, store, master view, policy and decider, with the configuration\n"
    "  FILE, as fast as the CPU goes; print what the policy did second by second,\n"
    "  and a summary: worker-seconds and seconds under-provisioned (fewer workers\n"
    "  than the demand needs) of the policy, of a static cluster sized for the\n"
    "  peak, and of the Oshinko rule (poll every 5 s, scale up at once, down\n"
    "  towards the maximum of the last 30 s by halving, at least 1 worker).\n"
    "  A policy simulation trace (tests/fixtures/policy/trace.txt) is accepted too:\n"
    "  it is played on a simulated Spark standalone cluster (see the README).\n"
    "\n"
    "options:\n"
    "  --config FILE          sparkscaled configuration (the policy to try)\n"
    "  --input RECORDING      recording file (repeatable: FILE.1 then FILE), or a trace\n"
    "  --cluster NAME         the cluster to report (needed when FILE has several)\n"
    "  --svg CHART            write a self-contained SVG chart there\n"
    "  --every S              one table row every S seconds (default: a row per change)\n"
    "  --quiet                no table, the summary only\n"
    "  --actuation-delay-s N  simulated actuator: desired applied N s later (default 1)\n"
    "  --start-workers N      simulated cluster size at the start (default min_workers)\n"
    "  --executor-idle-timeout-s N\n"
    "                         trace, --simulate-cluster: executorIdleTimeout (60)\n"
    "  --spread-out           trace: the master spreads executors (spreadOut true)\n"
    "  --simulate-cluster     recording: play the recorded apps on the simulated\n"
    "                         cluster a trace gets (the recorded master answers,\n"
    "                         master and worker gauges and numberAllExecutors are\n"
    "                         left out), so the policy and the Oshinko rule get the\n"
    "                         same actuator; without it the recorded size is the\n"
    "                         policy's, as the real cluster started its workers\n"
    "  --check-bars           exit 1 unless the policy used fewer worker-seconds than\n"
    "                         the Oshinko rule and at most 1/4 of its seconds\n"
    "                         under-provisioned\n"
    "  --help, -h             this text\n"
    "\n"
    "exit status: 0 done (bars met with --check-bars), 1 input or configuration\n"
    "             error, or bars not met, 2 bad usage\n";

typedef struct opts {
    const char *config, *inputs[MAX_INPUTS], *cluster, *svg;
    int ninputs, every_s, quiet, delay_s, start_workers, idle_timeout_s, spread_out, check;
    int simulate_cluster;
} opts;

/* ---- reading recordings ---- */

typedef struct record {
    int64_t t_ms;
    char kind;                /* 'c', 'm', 'j' */
    const char *src;          /* peer or cluster name (NUL-terminated in the line) */
    const char *data;
    size_t len;
} record;

typedef struct reader {
    const opts *o;
    int file;                 /* index into o->inputs */
    FILE *f;
    char *line;
    size_t cap;
    long lineno;
    int64_t last_ms;
    size_t bad;               /* lines that are not records */
} reader;

static int reader_open(reader *r, const opts *o)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->file = -1;
    return 0;
}

static void reader_close(reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->line);
    r->f = NULL;
    r->line = NULL;
}

/* The next record of the inputs, in order; 0 at the end, -1 on an error. */
static int reader_next(reader *r, record *out)
{
    for (;;) {
        if (!r->f) {
            if (++r->file >= r->o->ninputs)
                return 0;
            r->f = fopen(r->o->inputs[r->file], "r");
            if (!r->f) {
                fprintf(stderr, "sparkscalectl replay: %s: %s\n", r->o->inputs[r->file],
                        strerror(errno));
                return -1;
            }
            r->lineno = 0;
        }
        ssize_t n = getline(&r->line, &r->cap, r->f);
        if (n < 0) {
            fclose(r->f);
            r->f = NULL;
            continue;
        }
        r->lineno++;
        while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r'))
            r->line[--n] = '\0';
        if (n == 0 || r->line[0] == '#')
            continue;
        char *p = r->line, *end;
        errno = 0;
        long long t = strtoll(p, &end, 10);
        if (errno || end == p || *end != ' ' || !strchr("cmj", end[1]) || end[1] == 0 ||
            end[2] != ' ') {
            r->bad++;
            continue;
        }
        char kind = end[1];
        char *src = end + 3;
        char *sp = strchr(src, ' ');
        if (!sp) {
            r->bad++;
            continue;
        }
        *sp = '\0';
        out->t_ms = t;
        out->kind = kind;
        out->src = src;
        out->data = sp + 1;
        out->len = (size_t)(r->line + n - (sp + 1));
        return 1;
    }
}

/* First non-comment line of the first input: a trace starts with "apps". */
static int input_is_trace(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int trace = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        trace = strncmp(line, "apps ", 5) == 0;
        break;
    }
    fclose(f);
    return trace;
}

/* ---- the policy simulation trace (tests/fixtures/policy/trace.txt) ---- */

typedef struct trace {
    int napps;
    char **ids;
    int n;                    /* seconds */
    int *target;              /* n * napps; -1 = the app sent nothing ('-') */
    unsigned char *outage;    /* '!': no data at all that second */
} trace;

static void trace_free(trace *t)
{
    for (int a = 0; a < t->napps; a++)
        free(t->ids[a]);
    free(t->ids);
    free(t->target);
    free(t->outage);
}

static int trace_load(trace *t, const char *path)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sparkscalectl replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, tcap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        if (strcmp(tok, "apps") == 0) {
            while ((tok = strtok_r(NULL, " ", &save)) && t->napps < MAX_APPS) {
                char **ids = realloc(t->ids, (size_t)(t->napps + 1) * sizeof *ids);
                if (!ids || !(ids[t->napps] = strdup(tok))) {
                    free(ids);
                    rc = -1;
                    break;
                }
                t->ids = ids;
                t->napps++;
            }
            continue;
        }
        if (strcmp(tok, "segment") == 0)
            continue;
        if (t->napps == 0 || atoi(tok) != t->n || t->n >= MAX_SECONDS) {
            fprintf(stderr, "sparkscalectl replay: %s:%ld: expected second %d after an "
                    "'apps' line\n", path, lineno, t->n);
            rc = -1;
            break;
        }
        if ((size_t)t->n >= tcap) {
            tcap = tcap ? tcap * 2 : 1024;
            int *tg = realloc(t->target, tcap * (size_t)t->napps * sizeof *tg);
            unsigned char *out = tg ? realloc(t->outage, tcap) : NULL;
            if (!tg || !out) {
                if (tg)
                    t->target = tg;
                rc = -1;
                break;
            }
            t->target = tg;
            t->outage = out;
        }
        for (int a = 0; a < t->napps; a++) {
            tok = strtok_r(NULL, " ", &save);
            if (!tok) {
                fprintf(stderr, "sparkscalectl replay: %s:%ld: %d values wanted\n", path,
                        lineno, t->napps);
                rc = -1;
                break;
            }
            t->target[(size_t)t->n * (size_t)t->napps + (size_t)a] =
                strcmp(tok, "-") == 0 ? -1 : atoi(tok);
        }
        if (rc)
            break;
        tok = strtok_r(NULL, " ", &save);
        t->outage[t->n] = tok && strcmp(tok, "!") == 0;
        t->n++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && t->n == 0) {
        fprintf(stderr, "sparkscalectl replay: %s: no seconds in the trace\n", path);
        rc = -1;
    }
    return rc;
}

static int trace_at(const trace *t, int s, int a)
{
    return t->target[(size_t)s * (size_t)t->napps + (size_t)a];
}

/* ---- the demand the input shows (the truth the measures use) ---- */

typedef struct sample {
    int64_t t_ms;
    int value;
} sample;

/* One app of the replayed cluster: its numberTargetExecutors over time. A
 * recorded app counts from its first sample to its last. */
typedef struct truth_app {
    char *id;
    sample *s;
    size_t n, cap, cursor;
} truth_app;

typedef struct truth {
    truth_app *apps;
    size_t napps;
    int64_t *data_s;          /* seconds in which data of the cluster arrived, ascending */
    size_t ndata, cap;
    int current_recorded;     /* aliveWorkers gauges or master answers of the cluster */
} truth;

static int truth_add(truth *tr, const char *id, size_t idlen, int64_t t_ms, double v)
{
    size_t i;
    for (i = 0; i < tr->napps; i++)
        if (strlen(tr->apps[i].id) == idlen && memcmp(tr->apps[i].id, id, idlen) == 0)
            break;
    if (i == tr->napps) {
        if (tr->napps >= MAX_APPS)
            return 0;
        truth_app *apps = realloc(tr->apps, (tr->napps + 1) * sizeof *apps);
        if (!apps)
            return -1;
        tr->apps = apps;
        memset(&apps[i], 0, sizeof apps[i]);
        apps[i].id = strndup(id, idlen);
        if (!apps[i].id)
            return -1;
        tr->napps++;
    }
    truth_app *a = &tr->apps[i];
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        sample *s = realloc(a->s, cap * sizeof *s);
        if (!s)
            return -1;
        a->s = s;
        a->cap = cap;
    }
    a->s[a->n++] = (sample){ t_ms, v < 0 ? 0 : v > 1e6 ? 1000000 : (int)v };
    return 0;
}

static void truth_data(truth *tr, int64_t t_ms)
{
    int64_t s = t_ms / 1000;
    if (tr->ndata && tr->data_s[tr->ndata - 1] >= s)
        return;
    if (tr->ndata == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 1024;
        int64_t *d = realloc(tr->data_s, cap * sizeof *d);
        if (!d)
            return;
        tr->data_s = d;
        tr->cap = cap;
    }
    tr->data_s[tr->ndata++] = s;
}

static void truth_free(truth *tr)
{
    for (size_t i = 0; i < tr->napps; i++) {
        free(tr->apps[i].id);
        free(tr->apps[i].s);
    }
    free(tr->apps);
    free(tr->data_s);
}

/* One app's target during the second starting at t_ms: its latest sample
 * by the end of that second, while t_ms is within its first and last
 * sample's seconds; -1 outside them. Seconds are visited in order: *cursor
 * (0 at first) keeps the place. */
static int truth_app_at(const truth_app *a, size_t *cursor, int64_t t_ms)
{
    if (a->n == 0 || a->s[0].t_ms / 1000 > t_ms / 1000 ||
        a->s[a->n - 1].t_ms / 1000 < t_ms / 1000)
        return -1;
    while (*cursor + 1 < a->n && a->s[*cursor + 1].t_ms < t_ms + 1000)
        (*cursor)++;
    return a->s[*cursor].value;
}

/* Executors wanted during the second starting at t_ms: the apps' targets
 * (truth_app_at) summed. */
static int truth_demand(truth *tr, int64_t t_ms)
{
    int64_t sum = 0;
    for (size_t i = 0; i < tr->napps; i++) {
        int v = truth_app_at(&tr->apps[i], &tr->apps[i].cursor, t_ms);
        if (v > 0)
            sum += v;
    }
    return sum > 1000000000 ? 1000000000 : (int)sum;
}

/* Whether data of the cluster arrived within lookback_ms before t_ms. */
static int truth_had_data(const truth *tr, int64_t t_ms, int64_t lookback_ms)
{
    int64_t hi = t_ms / 1000, lo = (t_ms - lookback_ms) / 1000;
    size_t a = 0, b = tr->ndata;
    while (a < b) {                 /* first data second > hi */
        size_t mid = (a + b) / 2;
        if (tr->data_s[mid] <= hi)
            a = mid + 1;
        else
            b = mid;
    }
    return a > 0 && tr->data_s[a - 1] >= lo;
}

/* ---- the replay ---- */

typedef struct pending {
    int64_t due_ms;
    int value;
} pending;

typedef struct replay {
    const opts *o;
    ss_config *cfg;
    int c;                           /* the reported cluster */
    const ss_cluster_conf *cc;
    int e;                           /* executors per worker */
    ss_store *store;
    spark_prefixes *prefixes;
    ss_master_view *mv;
    ss_pipeline pipe;
    ss_decider *dec;
    int *pub_desired;                /* per cluster: the newest decision */
    int next_sink;
    /* the simulated actuator */
    pending *queue;
    size_t qlen, qcap;
    int current;
    /* a trace and its cluster */
    int trace_mode;
    trace tr;
    rp_model *model;
    int simulate_cluster;            /* a recording's apps on a trace's simulated cluster */
    /* what the input shows */
    truth truth;
    int simulate_current;
    int64_t t0_ms, t_end_ms;
    rp_second *secs;
    size_t nsecs;
    size_t skipped_records;          /* of clusters not in the configuration */
} replay;

static void *sink_add_cluster(void *sink, const char *name, void *cluster_ctx)
{
    replay *r = sink;
    (void)name;
    (void)cluster_ctx;
    return &r->pub_desired[r->next_sink++];
}

/* A decision: what an actuator would get; the simulated one applies it
 * after the actuation delay. */
static int sink_publish(void *sink, void *cluster, const ss_decision *d, uint64_t *seq)
{
    replay *r = sink;
    int *slot = cluster;
    static uint64_t n;
    *slot = d->desired_workers;
    *seq = ++n;
    if (slot != &r->pub_desired[r->c] || d->desired_workers < 0)
        return 0;
    if (d->current_workers < 0 && d->desired_workers < r->current)
        return 0;   /* a decision made without knowing the size only grows */
    if (r->qlen == r->qcap) {
        size_t cap = r->qcap ? r->qcap * 2 : 64;
        pending *q = realloc(r->queue, cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        r->queue = q;
        r->qcap = cap;
    }
    r->queue[r->qlen++] = (pending){ d->decided_at_ms + (int64_t)r->o->delay_s * 1000,
                                     d->desired_workers };
    return 0;
}

/* Applies the decisions due by t_ms to the simulated cluster size. */
static void actuate(replay *r, int64_t t_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < r->qlen; i++) {
        if (r->queue[i].due_ms <= t_ms)
            r->current = r->queue[i].value;
        else
            r->queue[k++] = r->queue[i];
    }
    r->qlen = k;
}

static int setup_engine(replay *r, char *err, size_t errlen)
{
    const ss_config *cfg = r->cfg;
    size_t n = cfg->nclusters;
    if (pipeline_open(&r->pipe, cfg, &r->store, &r->prefixes, err, errlen) != 0)
        return -1;
    r->mv = master_view_create(n);
    r->pub_desired = calloc(n ? n : 1, sizeof *r->pub_desired);
    if (!r->mv || !r->pub_desired) {
        ss_errf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t c = 0; c < n; c++)
        r->pub_desired[c] = -1;
    ss_decision_sink sink = { .add_cluster = sink_add_cluster, .publish = sink_publish,
                              .sink = r, .epoch = 1 };
    r->dec = ss_decider_create(cfg, r->store, &sink, err, errlen);
    if (!r->dec)
        return -1;
    ss_decider_set_master_view(r->dec, r->mv);
    return 0;
}

/* A carbon line into the pipeline, as a listener hands it over. */
static void feed_line(replay *r, const char *peer, const char *line, size_t len)
{
    pipeline_source src = { .pipe = &r->pipe, .peer = peer, .addr = NULL };
    pipeline_on_line(&src, line, len, CARBON_OK);
}

static void feed_linef(replay *r, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void feed_linef(replay *r, const char *peer, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof line)
        feed_line(r, peer, line, (size_t)n);
}

static const char *dot_prefix(const ss_cluster_conf *cc, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", cc->metrics_prefix, cc->metrics_prefix[0] ? "." : "");
    return buf;
}

/* A master or Jolokia answer, as the poller hands it over. */
static void feed_answer(replay *r, char kind, int c, const char *body, size_t len, int64_t now)
{
    char err[512];
    const ss_cluster_conf *cc = &r->cfg->clusters[c];
    if (kind == 'm') {
        pipeline_begin_batch(&r->pipe);
        poll_master_answer(r->mv, r->store, c,
                           cc->nspark_master ? cc->spark_master[0] : "(recorded)", body, len,
                           now, (int64_t)cc->policy.stale_after_s * 1000, err, sizeof err);
    } else {
        poll_jolokia_counts counts;
        poll_jolokia_answer(&r->pipe, c, body, len, &counts, err, sizeof err);
    }
}

/* The simulated master's GET /json/ answer (the shape of
 * tests/fixtures/spark_master/app_running.json). */
static char *model_master_json(replay *r, int s, int64_t now_ms)
{
    const ss_cluster_conf *cc = r->cc;
    json_t *root = json_object(), *ws = json_array(), *as = json_array();
    int alive = 0, used = 0;
    for (int i = 0; i < rp_model_slots(r->model); i++) {
        int x = rp_model_worker_execs(r->model, i);
        if (x < 0)
            continue;
        char id[96], host[32], ui[64];
        snprintf(host, sizeof host, "10.0.%d.%d", i / 250, i % 250 + 1);
        snprintf(id, sizeof id, "worker-20261121093000-%s-7078", host);
        snprintf(ui, sizeof ui, "http://%s:8081", host);
        int cores = x * cc->executor_cores;
        json_array_append_new(ws, json_pack("{s:s,s:s,s:i,s:s,s:i,s:i,s:i,s:I,s:I,s:I,s:s,s:I}",
            "id", id, "host", host, "port", 7078, "webuiaddress", ui, "cores", cc->worker_cores,
            "coresused", cores, "coresfree", cc->worker_cores - cores,
            "memory", (json_int_t)cc->worker_memory_mb,
            "memoryused", (json_int_t)x * cc->executor_memory_mb,
            "memoryfree", (json_int_t)(cc->worker_memory_mb - x * cc->executor_memory_mb),
            "state", "ALIVE", "lastheartbeat", (json_int_t)now_ms));
        alive++;
        used += cores;
    }
    for (int a = 0; a < r->tr.napps; a++) {
        if (trace_at(&r->tr, s, a) < 0)
            continue;   /* no driver: finished, or not started */
        json_array_append_new(as, json_pack("{s:s,s:I,s:s,s:i,s:s,s:i,s:s,s:I}",
            "id", r->tr.ids[a], "starttime", (json_int_t)TRACE_T0_MS, "name", r->tr.ids[a],
            "cores", rp_model_running(r->model, a) * cc->executor_cores, "user", "spark",
            "memoryperexecutor", cc->executor_memory_mb, "state", "RUNNING",
            "duration", (json_int_t)(now_ms - TRACE_T0_MS)));
    }
    json_object_set_new(root, "url", json_string("spark://replay-master:7077"));
    json_object_set_new(root, "workers", ws);
    json_object_set_new(root, "aliveworkers", json_integer(alive));
    json_object_set_new(root, "cores", json_integer((json_int_t)alive * cc->worker_cores));
    json_object_set_new(root, "coresused", json_integer(used));
    json_object_set_new(root, "activeapps", as);
    json_object_set_new(root, "completedapps", json_array());
    json_object_set_new(root, "status", json_string("ALIVE"));
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

/* Second s on the simulated cluster: the actuator's size, then the apps'
 * executors as their targets allow (a trace's, or with --simulate-cluster
 * the recording's). */
static void model_step(replay *r, int s)
{
    const trace *t = &r->tr;
    rp_model_resize(r->model, r->current);
    for (int a = 0; a < t->napps; a++) {
        int v = trace_at(t, s, a);
        if (v < 0) {
            if (!t->outage[s])
                rp_model_set_app(r->model, a, 0, s, 1);   /* finished or not started */
            continue;
        }
        rp_model_set_app(r->model, a, v, s, 0);
    }
    r->current = rp_model_alive(r->model);
}

/* What the drivers report of the simulated cluster: the executors each app
 * holds (and with targets, a trace's numberTargetExecutors). */
static void feed_model_apps(replay *r, int s, int64_t ts, int targets)
{
    const trace *t = &r->tr;
    char pre[160];
    dot_prefix(r->cc, pre, sizeof pre);
    for (int a = 0; a < t->napps; a++) {
        int v = trace_at(t, s, a);
        if (v < 0)
            continue;
        if (targets)
            feed_linef(r, "10.0.255.1", "%s%s.driver.ExecutorAllocationManager.executors."
                       "numberTargetExecutors %d %" PRId64, pre, t->ids[a], v, ts);
        feed_linef(r, "10.0.255.1", "%s%s.driver.ExecutorAllocationManager.executors."
                   "numberAllExecutors %d %" PRId64, pre, t->ids[a],
                   rp_model_running(r->model, a), ts);
    }
}

/* What the master (every poll.interval_s, with spark_master) or the master
 * and the workers' gauges report of the simulated cluster. */
static void feed_model_cluster(replay *r, int s, int64_t now_ms)
{
    int64_t ts = now_ms / 1000;
    char pre[160];
    dot_prefix(r->cc, pre, sizeof pre);
    if (r->cc->nspark_master) {
        int every = r->cc->poll.interval_s > 0 ? r->cc->poll.interval_s : 5;
        if (s % every == 0) {
            char *json = model_master_json(r, s, now_ms);
            if (json)
                feed_answer(r, 'm', r->c, json, strlen(json), now_ms);
            free(json);
        }
        return;
    }
    feed_linef(r, "10.0.255.0", "%smaster.aliveWorkers %d %" PRId64, pre, r->current, ts);
    for (int i = 0; i < rp_model_slots(r->model); i++) {
        int x = rp_model_worker_execs(r->model, i);
        if (x < 0)
            continue;
        char host[32];
        snprintf(host, sizeof host, "10.0.%d.%d", i / 250, i % 250 + 1);
        feed_linef(r, host, "%sworker.coresUsed %d %" PRId64, pre, x * r->cc->executor_cores,
                   ts);
    }
}

/* Second s on the simulated cluster: the cluster, then what Spark reports
 * of it: the drivers' gauges every second, the master's answer or gauges
 * (feed_model_cluster). A trace's targets are fed too; a recording's
 * (--simulate-cluster) arrive as recorded, in run_until. */
static void trace_step(replay *r, int s, int64_t now_ms)
{
    model_step(r, s);
    if (r->tr.outage[s])
        return;   /* nothing reaches sparkscaled */
    pipeline_begin_batch(&r->pipe);
    feed_model_apps(r, s, now_ms / 1000, r->trace_mode);
    feed_model_cluster(r, s, now_ms);
}

/* With --simulate-cluster, recorded records about the real cluster are
 * left out: master answers, master and worker gauges, and the executors
 * the apps held on it. */
static int sim_skips(replay *r, const record *rec)
{
    if (!r->simulate_cluster)
        return 0;
    if (rec->kind == 'm')
        return 1;
    if (rec->kind != 'c')
        return 0;
    const char *path;
    size_t plen;
    spark_metric m;
    if (carbon_split_path(rec->data, rec->len, &path, &plen) != CARBON_OK ||
        spark_path_decode(r->prefixes, path, plen, &m) != SPARK_PATH_OK || m.cluster != r->c)
        return 0;
    return m.kind == SPARK_KIND_MASTER || m.kind == SPARK_KIND_WORKER ||
           (m.kind == SPARK_KIND_APP && m.gauge == SPARK_G_ALL_EXECUTORS);
}

/* --simulate-cluster: the recording's apps as a trace (each app's target
 * second by second, from its first sample to its last), for the model. */
static int trace_from_truth(replay *r)
{
    trace *t = &r->tr;
    const truth *tr = &r->truth;
    memset(t, 0, sizeof *t);
    t->n = (int)((r->t_end_ms - r->t0_ms) / 1000) + 1;
    t->napps = (int)tr->napps;
    size_t na = tr->napps ? tr->napps : 1;
    t->ids = calloc(na, sizeof *t->ids);
    t->target = malloc((size_t)t->n * na * sizeof *t->target);
    t->outage = calloc((size_t)t->n, 1);
    if (!t->ids || !t->target || !t->outage)
        return -1;
    for (size_t a = 0; a < tr->napps; a++) {
        const truth_app *ap = &tr->apps[a];
        if (!(t->ids[a] = strdup(ap->id)))
            return -1;
        size_t k = 0;
        for (int s = 0; s < t->n; s++)
            t->target[(size_t)s * na + a] = truth_app_at(ap, &k, r->t0_ms + (int64_t)s * 1000);
    }
    r->model = rp_model_create(t->napps, r->e, r->o->idle_timeout_s, r->o->spread_out);
    return r->model ? 0 : -1;
}

/* Pass 1 over a recording: the time span, the cluster's apps and their
 * targets, whether it carries the cluster's size. */
static int scan_recording(replay *r)
{
    reader rd;
    record rec;
    int rc;
    reader_open(&rd, r->o);
    int64_t first = 0, last = 0;
    size_t n = 0;
    char err[256];
    while ((rc = reader_next(&rd, &rec)) > 0) {
        if (n++ == 0)
            first = rec.t_ms;
        if (rec.t_ms > last)
            last = rec.t_ms;
        if (rec.kind == 'c') {
            const char *path;
            size_t plen;
            spark_metric m;
            carbon_line cl;
            if (carbon_split_path(rec.data, rec.len, &path, &plen) != CARBON_OK ||
                spark_path_decode(r->prefixes, path, plen, &m) != SPARK_PATH_OK ||
                m.cluster != r->c || carbon_parse_line(rec.data, rec.len, &cl) != CARBON_OK)
                continue;
            truth_data(&r->truth, rec.t_ms);
            if (m.kind == SPARK_KIND_APP && m.gauge == SPARK_G_TARGET_EXECUTORS &&
                truth_add(&r->truth, m.app, m.app_len, rec.t_ms, cl.value) != 0)
                rc = -1;
            if (m.kind == SPARK_KIND_MASTER && m.gauge == SPARK_G_MASTER_ALIVE_WORKERS)
                r->truth.current_recorded = 1;
            continue;
        }
        if (strcmp(rec.src, r->cc->name) != 0)
            continue;
        truth_data(&r->truth, rec.t_ms);
        if (rec.kind == 'm') {
            r->truth.current_recorded = 1;
            continue;
        }
        ss_jolokia_result *jr = NULL;
        if (ss_jolokia_parse(rec.data, rec.len, &jr, err, sizeof err) != 0)
            continue;
        for (size_t i = 0; i < jr->nitems; i++) {
            const ss_jolokia_item *it = &jr->items[i];
            for (size_t k = 0; it->status == 200 && k < it->nsamples; k++) {
                const ss_jolokia_sample *s = &it->samples[k];
                spark_metric m;
                if (!s->name || (s->attribute && strcmp(s->attribute, "Count") == 0) ||
                    spark_registry_decode(s->name, strlen(s->name), r->c, &m) != SPARK_PATH_OK ||
                    m.kind != SPARK_KIND_APP || m.gauge != SPARK_G_TARGET_EXECUTORS)
                    continue;
                if (truth_add(&r->truth, m.app, m.app_len, rec.t_ms, s->value) != 0)
                    rc = -1;
            }
        }
        ss_jolokia_result_free(jr);
    }
    size_t bad = rd.bad;
    reader_close(&rd);
    if (rc < 0)
        return -1;
    if (n == 0) {
        fprintf(stderr, "sparkscalectl replay: no records in the input%s\n",
                bad ? " (lines not in the recording format)" : "");
        return -1;
    }
    if ((last - first) / 1000 >= MAX_SECONDS) {
        fprintf(stderr, "sparkscalectl replay: the recording spans more than %d days\n",
                MAX_SECONDS / 86400);
        return -1;
    }
    if (bad)
        fprintf(stderr, "sparkscalectl replay: %zu lines are not records; skipped\n", bad);
    r->t0_ms = first - first % 1000;
    r->t_end_ms = last - last % 1000;
    return 0;
}

/* The newest evaluation of the cluster into one second's row. */
static void sample_second(replay *r, rp_second *row, int64_t t_ms, int demand)
{
    ss_cluster_view v;
    ss_decider_view(r->dec, r->c, &v);
    const policy_result *pr = v.result;
    row->t_ms = t_ms;
    row->demand = demand;
    row->need = (int)(((int64_t)demand + r->e - 1) / r->e);
    row->recommended = pr ? pr->recommendation : -1;
    row->desired = r->pub_desired[r->c];
    row->busy = pr && !(pr->flags & POLICY_F_BUSY_UNKNOWN) ? pr->busy : -1;
    row->reason = pr ? (int)pr->reason : -1;
    row->held = pr && pr->reason == POLICY_R_HOLD_WINDOW;
    row->released = pr && (pr->flags & POLICY_F_RELEASED);
    if (r->trace_mode || r->simulate_current || r->simulate_cluster)
        row->current = r->current;
    else
        row->current = pr && pr->current >= 0 ? pr->current : (row > r->secs ? row[-1].current : 0);
}

/* Recorded records with arrival in [from, to) and timer ticks in between,
 * in time order; batches of equal arrival time are one read each. */
typedef struct feeder {
    reader rd;
    record rec;
    int have;                 /* rec holds the next record */
    int64_t next_tick_ms;
    int64_t interval_ms;
} feeder;

static void run_until(replay *r, feeder *f, int64_t to_ms)
{
    for (;;) {
        int64_t rec_t = f->have ? f->rec.t_ms : INT64_MAX;
        if (f->next_tick_ms < to_ms && f->next_tick_ms <= rec_t) {
            ss_wall_set_virtual(f->next_tick_ms);
            ss_decider_tick(r->dec);
            f->next_tick_ms += f->interval_ms;
            continue;
        }
        if (!f->have || rec_t >= to_ms)
            return;
        /* one batch: every record of this arrival time */
        int64_t batch = rec_t;
        ss_wall_set_virtual(batch);
        pipeline_begin_batch(&r->pipe);
        while (f->have && f->rec.t_ms == batch) {
            if (sim_skips(r, &f->rec)) {
                /* the simulated cluster stands in for what this said */
            } else if (f->rec.kind == 'c') {
                feed_line(r, strcmp(f->rec.src, "-") ? f->rec.src : NULL, f->rec.data,
                          f->rec.len);
            } else {
                int c = ss_decider_cluster_index(r->dec, f->rec.src);
                if (c >= 0)
                    feed_answer(r, f->rec.kind, c, f->rec.data, f->rec.len, batch);
                else
                    r->skipped_records++;
            }
            int rc = reader_next(&f->rd, &f->rec);
            f->have = rc > 0;
            if (f->have && f->rec.t_ms < batch)
                f->rec.t_ms = batch;   /* a clock that stepped back: keep time monotonic */
        }
        do {
            ss_decider_evaluate_dirty(r->dec);
            ss_decider_drain(r->dec);
        } while (ss_decider_backlog(r->dec) > 0);
    }
}

static int run(replay *r)
{
    feeder f;
    memset(&f, 0, sizeof f);
    f.interval_ms = r->cfg->policy.evaluate_interval_ms > 0 ? r->cfg->policy.evaluate_interval_ms
                                                            : 1000;
    if (!r->trace_mode) {
        reader_open(&f.rd, r->o);
        int rc = reader_next(&f.rd, &f.rec);
        if (rc < 0)
            return -1;
        f.have = rc > 0;
    }
    r->nsecs = (size_t)((r->t_end_ms - r->t0_ms) / 1000) + 1;
    r->secs = calloc(r->nsecs, sizeof *r->secs);
    if (!r->secs)
        return -1;
    f.next_tick_ms = r->t0_ms;
    char pre[160];
    dot_prefix(r->cc, pre, sizeof pre);
    for (size_t i = 0; i < r->nsecs; i++) {
        int64_t t = r->t0_ms + (int64_t)i * 1000;
        ss_wall_set_virtual(t);
        actuate(r, t);
        int demand;
        if (r->trace_mode) {
            trace_step(r, (int)i, t);
            demand = 0;
            for (int a = 0; a < r->tr.napps; a++)
                if (trace_at(&r->tr, (int)i, a) > 0)
                    demand += trace_at(&r->tr, (int)i, a);
            r->secs[i].data = !r->tr.outage[i];
        } else {
            if (r->simulate_cluster) {
                trace_step(r, (int)i, t);
            } else if (r->simulate_current) {
                pipeline_begin_batch(&r->pipe);
                feed_linef(r, "replay", "%smaster.aliveWorkers %d %" PRId64, pre, r->current,
                           t / 1000);
            }
            demand = truth_demand(&r->truth, t);
            r->secs[i].data = truth_had_data(&r->truth, t, GRAPHITE_LOOKBACK_MS);
        }
        do {
            ss_decider_evaluate_dirty(r->dec);
            ss_decider_drain(r->dec);
        } while (ss_decider_backlog(r->dec) > 0);
        run_until(r, &f, t + 1000);
        int data = r->secs[i].data;
        sample_second(r, &r->secs[i], t, demand);
        r->secs[i].data = data;
    }
    if (!r->trace_mode)
        reader_close(&f.rd);
    return 0;
}

/* The seed's rule (Oshinko's elastic worker daemon) on the same demand:
 * every 5 s, target = max(1, workers for the summed numberTargetExecutors),
 * the highest target of the last 6 polls (30 s); above the size: set it;
 * below: halfway down ((target + size) / 2). A poll with no data of the
 * cluster at all does nothing (trace: a '!' second; recording: nothing in
 * the minute before, as graphite's "from=-1min" would return). Applied
 * after the same actuation delay; blind to busy workers. */
static void oshinko(replay *r, int start)
{
    int window[OSHINKO_WINDOW], nw = 0, size = start;
    pending q[64];
    size_t nq = 0;
    for (size_t i = 0; i < r->nsecs; i++) {
        rp_second *s = &r->secs[i];
        size_t k = 0;
        for (size_t j = 0; j < nq; j++) {
            if (q[j].due_ms <= s->t_ms)
                size = q[j].value;
            else
                q[k++] = q[j];
        }
        nq = k;
        if (i % OSHINKO_POLL_S == 0 && s->data) {
            int target = s->need > 1 ? s->need : 1;
            if (nw == OSHINKO_WINDOW) {
                memmove(window, window + 1, (OSHINKO_WINDOW - 1) * sizeof *window);
                nw--;
            }
            window[nw++] = target;
            for (int j = 0; j < nw; j++)
                if (window[j] > target)
                    target = window[j];
            int want = target > size ? target : target < size ? (target + size) / 2 : size;
            if (want != size && nq < sizeof q / sizeof q[0])
                q[nq++] = (pending){ s->t_ms + (int64_t)r->o->delay_s * 1000, want };
        }
        s->oshinko = size;
    }
}

typedef struct measure {
    int64_t worker_s;
    int64_t under_s;
} measure;

static void fmt_int(char *buf, size_t len, int v)
{
    if (v < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%d", v);
}

static void print_table(const replay *r)
{
    printf("%7s %7s %5s %5s %5s %5s %5s %5s  %s\n", "t_s", "demand", "need", "rec", "want",
           "cur", "busy", "osh", "policy");
    const rp_second *last = NULL;
    for (size_t i = 0; i < r->nsecs; i++) {
        const rp_second *s = &r->secs[i];
        int show = !last || i + 1 == r->nsecs;
        if (r->o->every_s > 0)
            show = show || i % (size_t)r->o->every_s == 0;
        else if (last)
            show = show || s->need != last->need || s->recommended != last->recommended ||
                   s->desired != last->desired || s->current != last->current ||
                   s->reason != last->reason || s->oshinko != last->oshinko;
        if (!show)
            continue;
        char rec[12], want[12], busy[12];
        fmt_int(rec, sizeof rec, s->recommended);
        fmt_int(want, sizeof want, s->desired);
        fmt_int(busy, sizeof busy, s->busy);
        printf("%7lld %7d %5d %5s %5s %5d %5s %5d  %s%s\n",
               (long long)((s->t_ms - r->t0_ms) / 1000), s->demand, s->need, rec, want,
               s->current, busy, s->oshinko,
               s->reason >= 0 ? policy_reason_name((policy_reason)s->reason) : "-",
               s->released ? " (idle release)" : "");
        last = s;
    }
}

static int do_replay(replay *r)
{
    const opts *o = r->o;
    char err[1024];
    if (ss_config_load_file(o->config, &r->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "sparkscalectl replay: %s\n", err);
        return 1;
    }
    const ss_config *cfg = r->cfg;
    if (cfg->nclusters == 0) {
        fprintf(stderr, "sparkscalectl replay: %s: no clusters\n", o->config);
        return 1;
    }
    if (o->cluster) {
        r->c = -1;
        for (size_t c = 0; c < cfg->nclusters; c++)
            if (strcmp(cfg->clusters[c].name, o->cluster) == 0)
                r->c = (int)c;
        if (r->c < 0) {
            fprintf(stderr, "sparkscalectl replay: no cluster '%s' in %s\n", o->cluster,
                    o->config);
            return 1;
        }
    } else if (cfg->nclusters > 1) {
        fprintf(stderr, "sparkscalectl replay: %s has %zu clusters: say which with --cluster "
                "(%s, %s%s)\n", o->config, cfg->nclusters, cfg->clusters[0].name,
                cfg->clusters[1].name, cfg->nclusters > 2 ? ", ..." : "");
        return 1;
    }
    r->cc = &cfg->clusters[r->c];
    r->e = policy_executors_per_worker(r->cc->worker_cores, r->cc->worker_memory_mb,
                                       r->cc->executor_cores, r->cc->executor_memory_mb);
    if (r->e < 1) {
        fprintf(stderr, "sparkscalectl replay: cluster %s: an executor does not fit a worker\n",
                r->cc->name);
        return 1;
    }
    if (setup_engine(r, err, sizeof err) != 0) {
        fprintf(stderr, "sparkscalectl replay: %s\n", err);
        return 1;
    }
    int is_trace = input_is_trace(o->inputs[0]);
    if (is_trace < 0) {
        fprintf(stderr, "sparkscalectl replay: %s: %s\n", o->inputs[0], strerror(errno));
        return 1;
    }
    r->trace_mode = is_trace;
    int start = o->start_workers >= 0 ? o->start_workers : r->cc->policy.min_workers;
    r->current = start;
    if (is_trace) {
        if (o->ninputs > 1) {
            fprintf(stderr, "sparkscalectl replay: a trace is one --input\n");
            return 1;
        }
        if (trace_load(&r->tr, o->inputs[0]) != 0)
            return 1;
        r->model = rp_model_create(r->tr.napps, r->e, o->idle_timeout_s, o->spread_out);
        if (!r->model)
            return 1;
        r->t0_ms = TRACE_T0_MS;
        r->t_end_ms = TRACE_T0_MS + (int64_t)(r->tr.n - 1) * 1000;
    } else {
        if (scan_recording(r) != 0)
            return 1;
        if (o->simulate_cluster) {
            r->simulate_cluster = 1;
            if (trace_from_truth(r) != 0) {
                fprintf(stderr, "sparkscalectl replay: out of memory\n");
                return 1;
            }
        } else {
            r->simulate_current = !r->truth.current_recorded;
        }
    }
    if (run(r) != 0) {
        fprintf(stderr, "sparkscalectl replay: out of memory\n");
        return 1;
    }
    oshinko(r, start > 1 ? start : 1);

    /* the measures */
    int peak = 0;
    measure pol = {0, 0}, osh = {0, 0};
    for (size_t i = 0; i < r->nsecs; i++) {
        const rp_second *s = &r->secs[i];
        if (s->need > peak)
            peak = s->need;
        pol.worker_s += s->current;
        pol.under_s += s->current < s->need;
        osh.worker_s += s->oshinko;
        osh.under_s += s->oshinko < s->need;
    }
    int static_size = peak + r->cc->policy.idle_workers;
    if (static_size > r->cc->policy.max_workers)
        static_size = r->cc->policy.max_workers;
    if (static_size < 1)
        static_size = 1;
    int64_t static_ws = (int64_t)static_size * (int64_t)r->nsecs;
    int64_t static_under = 0;
    for (size_t i = 0; i < r->nsecs; i++)
        static_under += static_size < r->secs[i].need;

    if (!o->quiet)
        print_table(r);
    char mode[160];
    if (is_trace || r->simulate_cluster)
        snprintf(mode, sizeof mode, "%s on a simulated cluster: executorIdleTimeout %d s, "
                 "spreadOut %s, actuation %d s", is_trace ? "trace" : "recording",
                 o->idle_timeout_s, o->spread_out ? "true" : "false", o->delay_s);
    else
        snprintf(mode, sizeof mode, "recording, current workers %s",
                 r->simulate_current ? "simulated (desired applied after the actuation delay)"
                                     : "as recorded");
    printf("cluster %s, %zu s, E %d executors/worker; %s\n", r->cc->name, r->nsecs, r->e, mode);
    double sw = static_ws > 0 ? (double)static_ws : 1;
    char summary[512];
    snprintf(summary, sizeof summary,
             "policy %" PRId64 " worker-s (%.3f of static), %" PRId64 " s under-provisioned | "
             "static %d workers: %" PRId64 " worker-s, %" PRId64 " s | "
             "oshinko rule: %" PRId64 " worker-s (%.3f), %" PRId64 " s",
             pol.worker_s, (double)pol.worker_s / sw, pol.under_s, static_size, static_ws,
             static_under, osh.worker_s, (double)osh.worker_s / sw, osh.under_s);
    printf("summary: %s\n", summary);
    if (r->skipped_records)
        fprintf(stderr, "sparkscalectl replay: %zu answers of clusters not in %s skipped\n",
                r->skipped_records, o->config);
    int rc = 0;
    if (o->svg) {
        char title[256];
        snprintf(title, sizeof title, "sparkscale replay: cluster %s (%s)", r->cc->name,
                 is_trace ? "policy trace" : "recording");
        if (rp_svg_write(o->svg, r->secs, r->nsecs, title, summary) != 0) {
            fprintf(stderr, "sparkscalectl replay: %s: %s\n", o->svg, strerror(errno));
            rc = 1;
        }
    }
    if (o->check) {
        int fewer = pol.worker_s < osh.worker_s;
        int under = pol.under_s * 4 <= osh.under_s;
        printf("bars: worker-seconds %" PRId64 " < oshinko %" PRId64 ": %s; under-provisioned %"
               PRId64 " s <= oshinko %" PRId64 " s / 4: %s\n", pol.worker_s, osh.worker_s,
               fewer ? "yes" : "NO", pol.under_s, osh.under_s, under ? "yes" : "NO");
        if (!fewer || !under)
            rc = 1;
    }
    return rc;
}

static void replay_free(replay *r)
{
    ss_wall_set_virtual(0);
    ss_decider_destroy(r->dec);
    master_view_destroy(r->mv);
    store_destroy(r->store);
    spark_prefixes_destroy(r->prefixes);
    rp_model_destroy(r->model);
    trace_free(&r->tr);
    truth_free(&r->truth);
    free(r->pub_desired);
    free(r->queue);
    free(r->secs);
    ss_config_free(r->cfg);
}

static int parse_int(const char *arg, const char *what, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s wants an integer in [%d, %d], not '%%s'", what, lo, hi);
        ctl_usage_error(replay_usage, msg, arg);
    }
    return (int)v;
}

int ctl_replay(int argc, char **argv)
{
    enum { O_CONFIG = 1, O_INPUT, O_CLUSTER, O_SVG, O_EVERY, O_QUIET, O_DELAY, O_START,
           O_IDLE, O_SPREAD, O_CHECK, O_SIM };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, O_CONFIG },
        { "input", required_argument, NULL, O_INPUT },
        { "cluster", required_argument, NULL, O_CLUSTER },
        { "svg", required_argument, NULL, O_SVG },
        { "every", required_argument, NULL, O_EVERY },
        { "quiet", no_argument, NULL, O_QUIET },
        { "actuation-delay-s", required_argument, NULL, O_DELAY },
        { "start-workers", required_argument, NULL, O_START },
        { "executor-idle-timeout-s", required_argument, NULL, O_IDLE },
        { "spread-out", no_argument, NULL, O_SPREAD },
        { "check-bars", no_argument, NULL, O_CHECK },
        { "simulate-cluster", no_argument, NULL, O_SIM },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    opts o = { .delay_s = 1, .start_workers = -1, .idle_timeout_s = 60 };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_CONFIG: o.config = optarg; break;
        case O_INPUT:
            if (o.ninputs >= MAX_INPUTS)
                ctl_usage_error(replay_usage, "at most 16 inputs%s", "");
            o.inputs[o.ninputs++] = optarg;
            break;
        case O_CLUSTER: o.cluster = optarg; break;
        case O_SVG: o.svg = optarg; break;
        case O_EVERY: o.every_s = parse_int(optarg, "--every", 1, 86400); break;
        case O_QUIET: o.quiet = 1; break;
        case O_DELAY: o.delay_s = parse_int(optarg, "--actuation-delay-s", 0, 3600); break;
        case O_START: o.start_workers = parse_int(optarg, "--start-workers", 0, 1000000); break;
        case O_IDLE:
            o.idle_timeout_s = parse_int(optarg, "--executor-idle-timeout-s", 0, 86400);
            break;
        case O_SPREAD: o.spread_out = 1; break;
        case O_CHECK: o.check = 1; break;
        case O_SIM: o.simulate_cluster = 1; break;
        case 'h': fputs(replay_usage, stdout); return 0;
        default: ctl_usage_error(replay_usage, "bad option%s", "");
        }
    }
    if (optind < argc)
        ctl_usage_error(replay_usage, "unexpected argument '%s'", argv[optind]);
    if (!o.config)
        ctl_usage_error(replay_usage, "--config FILE is required%s", "");
    if (!o.ninputs)
        ctl_usage_error(replay_usage, "--input RECORDING is required%s", "");
    replay r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    int rc = do_replay(&r);
    replay_free(&r);
    return rc;
}
