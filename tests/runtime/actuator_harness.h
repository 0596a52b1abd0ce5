/* actuator_harness.h: what the actuator's runtime tests share: librdkafka's
 * mock cluster in the test process, a raw decision producer (so tests can
 * choose epochs and sequences), an audit collector (read_committed), the
 * actuator in-process on its own loop thread or as a child process, a
 * Spark master fixture serving the recorded /json/ answers of
 * tests/fixtures/spark_master/ with editable workers and a scriptable
 * /workers/kill/, an Oshinko REST fixture, and exec scripts that log what
 * they were asked. Header-only: each test is its own program. */
#ifndef SS_TEST_ACTUATOR_HARNESS_H
#define SS_TEST_ACTUATOR_HARNESS_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "actuator/actuator.h"
#include "fixture_rest.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/bus/kafka.h"
#include "lib/bus/reader.h"
#include "lib/bus/record.h"
#include "lib/config/config.h"

#define AH_MAX_AUDITS 20000
#define AH_MAX_FX_CLUSTERS 64

/* ---- paths ---- */

static char ah_dir[200];

static inline const char *ah_source_dir(void)
{
    const char *d = getenv("SS_SOURCE_DIR");
    static char guess[PATH_MAX];
    if (d)
        return d;
    snprintf(guess, sizeof guess, "%.*s/../..", (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
    return guess;
}

static inline const char *ah_build_dir(void)
{
    const char *d = getenv("SS_BUILD_DIR");
    static char guess[PATH_MAX];
    if (d)
        return d;
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return ".";
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(guess, sizeof guess, "%s/..", self);
    return guess;
}

static inline void ah_write_file(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static inline char *ah_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* A scratch directory with the exec scripts:
 *   scale.sh LOG STATE [SLEEP_S]  logs one "start" and one "end" line (with
 *       a nanosecond clock, the actuator id and the SPARKSCALE_* values),
 *       writes DESIRED to STATE unless SPARKSCALE_DRY_RUN=1;
 *   size.sh STATE [NAPFILE]       prints STATE's number (0 if none), after
 *       sleeping as many seconds as NAPFILE says when it exists. */
static inline void ah_make_dir(void)
{
    snprintf(ah_dir, sizeof ah_dir, "/tmp/ss-actuator-test-XXXXXX");
    if (!mkdtemp(ah_dir))
        abort();
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/scale.sh", ah_dir);
    ah_write_file(p,
                  "#!/bin/sh\n"
                  "log=$1; state=$2; nap=${3:-0}\n"
                  "echo \"start $(date +%s%N) $SPARKSCALE_ACTUATOR $SPARKSCALE_CLUSTER "
                  "cur=$SPARKSCALE_CURRENT want=$SPARKSCALE_DESIRED hosts=[$SPARKSCALE_REMOVE_HOSTS] "
                  "ids=[$SPARKSCALE_REMOVE_WORKERS] dry=$SPARKSCALE_DRY_RUN\" >> \"$log\"\n"
                  "if [ \"$nap\" != 0 ]; then sleep \"$nap\"; fi\n"
                  "if [ \"$SPARKSCALE_DRY_RUN\" != 1 ]; then echo \"$SPARKSCALE_DESIRED\" > \"$state\"; fi\n"
                  "echo \"end $(date +%s%N) $SPARKSCALE_ACTUATOR $SPARKSCALE_CLUSTER\" >> \"$log\"\n"
                  "echo \"scaled $SPARKSCALE_CLUSTER to $SPARKSCALE_DESIRED\"\n",
                  0755);
    snprintf(p, sizeof p, "%s/size.sh", ah_dir);
    ah_write_file(p,
                  "#!/bin/sh\n"
                  "if [ -n \"$2\" ] && [ -f \"$2\" ]; then sleep \"$(cat \"$2\")\"; fi\n"
                  "cat \"$1\" 2>/dev/null || echo 0\n",
                  0755);
}

static inline void ah_remove_dir(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ah_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", ah_dir);
}

/* The exec log of cluster name (malloc'd, "" if none). */
static inline char *ah_exec_log(const char *name)
{
    char p[PATH_MAX + 256];
    snprintf(p, sizeof p, "%s/%s.log", ah_dir, name);
    char *s = ah_read_file(p);
    return s ? s : strdup("");
}

static inline int ah_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- Kafka ----
 * librdkafka's mock cluster, or a real broker when SS_TEST_KAFKA=host:port
 * is set (tests/kafka/run_actuator_kafka.sh): then every ah_kafka_start makes
 * a pair of topics of its own, so tests do not read each other's decisions. */

static char ah_dtopic[128] = "sparkscale.decisions";
static char ah_atopic[128] = "sparkscale.audit";

typedef struct ah_kafka {
    ss_kafka_mock *mock;          /* NULL with a real broker */
    char bootstrap[512];
    rd_kafka_t *prod;             /* raw producer of decisions */
    int32_t last_partition;
    int64_t last_offset;
} ah_kafka;

static inline int ah_real_kafka(void) { return getenv("SS_TEST_KAFKA") != NULL; }

/* Creates topic (4 partitions, 1 replica) on a real broker. */
static inline void ah_create_topic(rd_kafka_t *rk, const char *topic)
{
    char e[256];
    rd_kafka_NewTopic_t *t = rd_kafka_NewTopic_new(topic, 4, 1, e, sizeof e);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &t, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!ev || rd_kafka_event_error(ev) || n != 1 || rd_kafka_topic_result_error(tr[0])) {
        fprintf(stderr, "create topic %s: %s\n", topic,
                !ev ? "timed out" : n == 1 ? rd_kafka_topic_result_error_string(tr[0])
                                           : rd_kafka_event_error_string(ev));
        abort();
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(t);
}

static inline void ah_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    ah_kafka *k = opaque;
    (void)rk;
    if (!m->err) {
        k->last_partition = m->partition;
        k->last_offset = m->offset;
    }
}

static inline void ah_kafka_start(ah_kafka *k)
{
    memset(k, 0, sizeof *k);
    char err[512];
    if (ah_real_kafka()) {
        static int n;
        snprintf(k->bootstrap, sizeof k->bootstrap, "%s", getenv("SS_TEST_KAFKA"));
        snprintf(ah_dtopic, sizeof ah_dtopic, "ss-decisions-%ld-%d", (long)getpid(), ++n);
        snprintf(ah_atopic, sizeof ah_atopic, "ss-audit-%ld-%d", (long)getpid(), n);
    } else {
        const char *topics[] = { ah_dtopic, ah_atopic };
        k->mock = ss_kafka_mock_start(topics, 2, err, sizeof err);
        if (!k->mock) {
            fprintf(stderr, "mock: %s\n", err);
            abort();
        }
        snprintf(k->bootstrap, sizeof k->bootstrap, "%s", ss_kafka_mock_bootstrap(k->mock));
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char e[256];
    rd_kafka_conf_set(c, "bootstrap.servers", k->bootstrap, e, sizeof e);
    rd_kafka_conf_set(c, "partitioner", "murmur2_random", e, sizeof e);
    rd_kafka_conf_set(c, "linger.ms", "0", e, sizeof e);
    rd_kafka_conf_set(c, "socket.nagle.disable", "true", e, sizeof e);
    rd_kafka_conf_set(c, "log_level", "4", e, sizeof e);
    rd_kafka_conf_set_opaque(c, k);
    rd_kafka_conf_set_dr_msg_cb(c, ah_dr);
    k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!k->mock) {
        ah_create_topic(k->prod, ah_dtopic);
        ah_create_topic(k->prod, ah_atopic);
    }
}

static inline void ah_kafka_stop(ah_kafka *k)
{
    rd_kafka_flush(k->prod, 5000);
    rd_kafka_destroy(k->prod);
    ss_kafka_mock_stop(k->mock);
}

static inline const char *ah_bootstrap(const ah_kafka *k) { return k->bootstrap; }

/* A decision as sparkscaled would write it, with the fields tests vary. */
typedef struct ah_dec {
    const char *cluster;
    int64_t epoch;                /* 0 = 1795237000000 */
    uint64_t seq;
    int desired, current;
    int dry_run;
    int64_t decided_at_ms;        /* 0 = now */
    int64_t expires_at_ms;        /* 0 = now + 120 s; -1 = never */
    const ss_worker_ref *removable;
    size_t nremovable;
} ah_dec;

/* Publishes d and waits for its acknowledgement; returns its offset. */
static inline int64_t ah_publish(ah_kafka *k, const ah_dec *in)
{
    ss_decision d;
    memset(&d, 0, sizeof d);
    snprintf(d.cluster, sizeof d.cluster, "%s", in->cluster);
    d.producer_epoch = in->epoch ? in->epoch : 1795237000000LL;
    d.sequence = in->seq;
    d.decided_at_ms = in->decided_at_ms ? in->decided_at_ms : ss_wall_ms();
    d.current_workers = in->current;
    d.busy_workers = -1;
    d.desired_workers = in->desired;
    d.recommended_workers = in->desired;
    d.executors_per_worker = 1;
    d.removable_workers = in->removable;
    d.nremovable_workers = in->nremovable;
    snprintf(d.reason, sizeof d.reason, "test");
    d.reason_code = SS_REASON_UP;
    d.dry_run = in->dry_run;
    d.expires_at_ms = in->expires_at_ms < 0 ? 0 : in->expires_at_ms ? in->expires_at_ms
                                                                     : ss_wall_ms() + 120000;
    uint8_t *buf;
    size_t len;
    if (ss_decision_encode(&d, &buf, &len) != 0)
        abort();
    k->last_offset = -1;
    rd_kafka_producev(k->prod, RD_KAFKA_V_TOPIC(ah_dtopic),
                      RD_KAFKA_V_KEY(in->cluster, strlen(in->cluster)), RD_KAFKA_V_VALUE(buf, len),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
    rd_kafka_flush(k->prod, 10000);
    return k->last_offset;
}

/* Bytes that are not a ScaleDecision, keyed by cluster. */
static inline void ah_publish_garbage(ah_kafka *k, const char *key)
{
    static const char bad[] = "\x12\x7fgarbage";
    rd_kafka_producev(k->prod, RD_KAFKA_V_TOPIC(ah_dtopic), RD_KAFKA_V_KEY(key, strlen(key)),
                      RD_KAFKA_V_VALUE((void *)bad, sizeof bad - 1),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(k->prod, 10000);
}

/* ---- audits ---- */

typedef struct ah_audits {
    ss_bus_reader *r;
    ss_actuation_result *res[AH_MAX_AUDITS];
    size_t n;
} ah_audits;

static inline void ah_audits_open(ah_audits *a, const ah_kafka *k)
{
    memset(a, 0, sizeof *a);
    const char *topics[] = { ah_atopic };
    char err[512];
    if (ss_bus_reader_open(ah_bootstrap(k), topics, 1, 1, NULL, 0, 5000, &a->r, err, sizeof err) != 0) {
        fprintf(stderr, "audit reader: %s\n", err);
        abort();
    }
}

static inline void ah_audits_close(ah_audits *a)
{
    ss_bus_reader_close(a->r);
    for (size_t i = 0; i < a->n; i++)
        free(a->res[i]);
    a->n = 0;
}

/* Reads what is there now (up to wait_ms for the first new one). */
static inline void ah_audits_poll(ah_audits *a, int wait_ms)
{
    char err[512];
    int64_t deadline = ss_mono_us() + (int64_t)wait_ms * 1000;
    for (;;) {
        ss_bus_record rec;
        int left = (int)((deadline - ss_mono_us()) / 1000);
        int rc = ss_bus_reader_next(a->r, left > 50 ? 50 : left > 0 ? left : 0, &rec, err, sizeof err);
        if (rc == 1 && a->n < AH_MAX_AUDITS) {
            ss_actuation_result *r = malloc(sizeof *r);
            if (ss_actuation_decode(rec.payload, rec.len, r) == 0)
                a->res[a->n++] = r;
            else
                free(r);
            continue;
        }
        if (ss_mono_us() >= deadline)
            return;
    }
}

/* The audit of (cluster, seq), waiting up to timeout_ms; NULL if none. */
static inline const ss_actuation_result *ah_audit_wait(ah_audits *a, const char *cluster, uint64_t seq,
                                                     int timeout_ms)
{
    int64_t deadline = ss_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        for (size_t i = 0; i < a->n; i++)
            if (strcmp(a->res[i]->cluster, cluster) == 0 && a->res[i]->decision_sequence == seq)
                return a->res[i];
        if (ss_mono_us() >= deadline)
            return NULL;
        ah_audits_poll(a, 100);
    }
}

/* How many audits name (cluster, seq). */
static inline int ah_audit_count(const ah_audits *a, const char *cluster, uint64_t seq)
{
    int n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += strcmp(a->res[i]->cluster, cluster) == 0 && a->res[i]->decision_sequence == seq;
    return n;
}

/* Audits per decision position must be exactly 1: returns how many
 * positions have more than one. */
static inline int ah_audit_dups(const ah_audits *a)
{
    int dups = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = i + 1; j < a->n; j++)
            if (a->res[i]->has_decision_position && a->res[j]->has_decision_position &&
                a->res[i]->decision_partition == a->res[j]->decision_partition &&
                a->res[i]->decision_offset == a->res[j]->decision_offset) {
                fprintf(stderr, "duplicate audit for decision %d@%lld (%s #%llu)\n",
                        (int)a->res[i]->decision_partition, (long long)a->res[i]->decision_offset,
                        a->res[i]->cluster, (unsigned long long)a->res[i]->decision_sequence);
                dups++;
            }
    return dups;
}

/* ---- the actuator in-process ---- */

typedef struct ah_act {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    ss_config *cfg;
    ss_actuator *act;
    int port;
    char err[1024];
} ah_act;

static inline void ah_act_done(void *ctx)
{
    ah_act *h = ctx;
    uv_close((uv_handle_t *)&h->stop, NULL);
}

static inline void ah_act_on_stop(uv_async_t *as)
{
    ah_act *h = as->data;
    ss_actuator_shutdown(h->act, 20000, ah_act_done, h);
}

static inline void *ah_act_thread(void *arg)
{
    ah_act *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void (*ah_act_commit_hook)(void *ctx, size_t n);   /* set before ah_act_start */
static void *ah_act_commit_ctx;

static inline int ah_act_start(ah_act *h, const char *yaml)
{
    memset(h, 0, sizeof *h);
    if (ss_config_load_string(yaml, "actuator-test.yaml", &h->cfg, h->err, sizeof h->err) != 0)
        return -1;
    uv_loop_init(&h->loop);
    h->act = ss_actuator_create(&h->loop, h->cfg, h->err, sizeof h->err);
    if (!h->act) {
        uv_run(&h->loop, UV_RUN_DEFAULT);
        uv_loop_close(&h->loop);
        ss_config_free(h->cfg);
        return -1;
    }
    h->port = ss_actuator_port(h->act);
    if (ah_act_commit_hook)
        ss_actuator_set_commit_hook(h->act, ah_act_commit_hook, ah_act_commit_ctx);
    uv_async_init(&h->loop, &h->stop, ah_act_on_stop);
    h->stop.data = h;
    pthread_create(&h->thread, NULL, ah_act_thread, h);
    return 0;
}

/* Returns the uv_loop_close result (0: every handle was closed). */
static inline int ah_act_stop(ah_act *h)
{
    uv_async_send(&h->stop);
    pthread_join(h->thread, NULL);
    int rc = uv_loop_close(&h->loop);
    ss_config_free(h->cfg);
    return rc;
}

/* ---- the actuator as a child process (for kill -9) ---- */

typedef struct ah_proc {
    pid_t pid;
    char log[PATH_MAX];
    int port;
} ah_proc;

static inline const char *ah_actuator_bin(void)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%.*s/actuator/sparkscale-actuator", PATH_MAX - 64, ah_build_dir());
    return path;
}

/* Starts the binary with --config cfg_path, stdout and stderr appended to
 * log_path. Returns the pid or -1. */
static inline pid_t ah_spawn(const char *const *argv, const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen(log_path, "a");
        if (f) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static inline int ah_proc_start(ah_proc *p, const char *cfg_path, const char *log_path)
{
    memset(p, 0, sizeof *p);
    snprintf(p->log, sizeof p->log, "%s", log_path);
    /* A fresh log per start: the port line must be this process's. */
    ah_write_file(log_path, "", 0644);
    const char *argv[] = { ah_actuator_bin(), "--config", cfg_path, NULL };
    p->pid = ah_spawn(argv, log_path);
    return p->pid > 0 ? 0 : -1;
}

/* Waits for a line containing needle in the log; returns 1 when there. */
static inline int ah_log_wait(const char *log_path, const char *needle, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 20) {
        char *s = ah_read_file(log_path);
        int found = s && strstr(s, needle);
        free(s);
        if (found)
            return 1;
        usleep(20000);
    }
    return 0;
}

/* The status port the child logged. */
static inline int ah_proc_port(ah_proc *p, int timeout_ms)
{
    const char *needle = "actuator status http listening on 127.0.0.1:";
    if (!ah_log_wait(p->log, needle, timeout_ms))
        return -1;
    char *s = ah_read_file(p->log);
    p->port = atoi(strstr(s, needle) + strlen(needle));
    free(s);
    return p->port;
}

static inline void ah_proc_kill9(ah_proc *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* Sends sig and waits up to timeout_ms; returns the exit status, 128 + the
 * signal that ended it, or -1 on timeout (then it is killed). */
static inline int ah_proc_signal_wait(ah_proc *p, int sig, int timeout_ms)
{
    if (sig)
        kill(p->pid, sig);
    for (int t = 0; t <= timeout_ms; t += 20) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(20000);
    }
    ah_proc_kill9(p);
    return -1;
}

/* ---- the status API ---- */

static inline char *ah_http_get(int port, const char *path, int *status)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    *status = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    sscanf(buf, "HTTP/1.%*d %d", status);
    char *body = strstr(buf, "\r\n\r\n");
    char *out = strdup(body ? body + 4 : "");
    free(buf);
    return out;
}

/* A Prometheus sample "name{labels}" of the status page, or -1. */
static inline double ah_metric(int port, const char *name)
{
    int st;
    char *body = ah_http_get(port, "/metrics", &st);
    double v = -1;
    size_t n = strlen(name);
    for (char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = atof(p + n + 1);
            break;
        }
    free(body);
    return v;
}

static inline double ah_wait_metric(int port, const char *name, double want, int timeout_ms)
{
    double v = -1;
    for (int t = 0; t <= timeout_ms; t += 20) {
        v = ah_metric(port, name);
        if (v >= want)
            break;
        usleep(20000);
    }
    return v;
}

/* The stage of cluster name's action in flight ("" idle). */
static inline void ah_stage(int port, const char *name, char *out, size_t outlen)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/clusters?name=%s", name);
    int st;
    char *body = ah_http_get(port, path, &st);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    json_t *fl = json_object_get(json_array_get(json_object_get(j, "clusters"), 0), "in_flight");
    const char *s = json_string_value(json_object_get(fl, "stage"));
    snprintf(out, outlen, "%s", s ? s : "");
    json_decref(j);
}

static inline int ah_wait_stage(int port, const char *name, const char *stage, int timeout_ms)
{
    char s[32];
    for (int t = 0; t <= timeout_ms; t += 10) {
        ah_stage(port, name, s, sizeof s);
        if (strcmp(s, stage) == 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* ---- the Spark master fixture ----
 * Serves /<cluster>/json/ from a recorded answer (editable) and
 * /<cluster>/workers/kill/ as Spark's MasterWebUI does: 200 when a worker
 * on a named host is decommissioned, 404 when none, or the status set. */

typedef struct fm_cluster {
    char name[64];
    json_t *state;
    int kill_status;          /* 0 = behave like Spark (200/404) */
    int decommission_ms;      /* a killed worker turns DECOMMISSIONED this much later; -1 never */
    char pending_hosts[8][64];
    int64_t pending_at_us[8];
    int npending;
    int gets, kills;
    char killed_hosts[512];   /* every host=... received, comma-separated */
    int get_delay_ms;
    int get_fail;             /* answer 503 */
} fm_cluster;

typedef struct fm_master {
    fx_server srv;
    fm_cluster c[AH_MAX_FX_CLUSTERS];
    int n;
} fm_master;

static inline json_t *fm_load(const char *fixture)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/tests/fixtures/spark_master/%s", ah_source_dir(), fixture);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) {
        fprintf(stderr, "%s: %s\n", p, je.text);
        abort();
    }
    return j;
}

static inline fm_cluster *fm_find(fm_master *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->c[i].name, name) == 0)
            return &m->c[i];
    return NULL;
}

static inline void fm_set_state(json_t *st, const char *host, const char *state)
{
    json_t *w;
    size_t i;
    json_array_foreach(json_object_get(st, "workers"), i, w)
        if (strcasecmp(json_string_value(json_object_get(w, "host")), host) == 0)
            json_object_set_new(w, "state", json_string(state));
}

static inline void fm_apply_pending(fm_cluster *c)
{
    int64_t now = fx_now_us();
    int k = 0;
    for (int i = 0; i < c->npending; i++) {
        if (now >= c->pending_at_us[i]) {
            fm_set_state(c->state, c->pending_hosts[i], "DECOMMISSIONED");
            continue;
        }
        memcpy(c->pending_hosts[k], c->pending_hosts[i], sizeof c->pending_hosts[k]);
        c->pending_at_us[k++] = c->pending_at_us[i];
    }
    c->npending = k;
}

static inline void fm_handler(void *ctx, const fx_request *req, fx_reply *rep)
{
    fm_master *m = ctx;
    char name[64] = "";
    const char *p = req->path + 1, *slash = strchr(p, '/');
    if (slash && (size_t)(slash - p) < sizeof name)
        memcpy(name, p, (size_t)(slash - p));
    fm_cluster *c = fm_find(m, name);
    if (!c) {
        rep->status = 404;
        return;
    }
    if (strcmp(req->method, "GET") == 0 && strcmp(slash, "/json/") == 0) {
        c->gets++;
        if (c->get_fail) {
            rep->status = 503;
            return;
        }
        fm_apply_pending(c);
        rep->body = json_dumps(c->state, JSON_INDENT(2));
        rep->delay_ms = c->get_delay_ms;
        snprintf(rep->content_type, sizeof rep->content_type, "text/json;charset=utf-8");
        return;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(slash, "/workers/kill/") == 0) {
        c->kills++;
        int found = 0;
        char body[1024];
        snprintf(body, sizeof body, "%s", req->body);
        for (char *tok = strtok(body, "&"); tok; tok = strtok(NULL, "&")) {
            if (strncmp(tok, "host=", 5) != 0)
                continue;
            const char *h = tok + 5;
            size_t kl = strlen(c->killed_hosts);
            snprintf(c->killed_hosts + kl, sizeof c->killed_hosts - kl, "%s%s", kl ? "," : "", h);
            json_t *w;
            size_t i;
            json_array_foreach(json_object_get(c->state, "workers"), i, w)
                if (strcasecmp(json_string_value(json_object_get(w, "host")), h) == 0)
                    found = 1;
            if (c->kill_status == 0 && c->decommission_ms >= 0 && c->npending < 8) {
                snprintf(c->pending_hosts[c->npending], 64, "%s", h);
                c->pending_at_us[c->npending++] = fx_now_us() + (int64_t)c->decommission_ms * 1000;
            }
        }
        rep->status = c->kill_status ? c->kill_status : found ? 200 : 404;
        snprintf(rep->content_type, sizeof rep->content_type, "text/html");
        return;
    }
    rep->status = 404;
}

static inline void fm_start(fm_master *m)
{
    memset(m, 0, sizeof *m);
    if (fx_start(&m->srv, fm_handler, m) != 0)
        abort();
}

/* Adds cluster name serving fixture (a file of tests/fixtures/spark_master/). */
static inline fm_cluster *fm_add(fm_master *m, const char *name, const char *fixture)
{
    fx_lock(&m->srv);
    fm_cluster *c = &m->c[m->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->state = fm_load(fixture);
    fx_unlock(&m->srv);
    return c;
}

/* Sets a worker's used cores (by host), as if an executor started on it. */
static inline void fm_set_cores(fm_master *m, const char *name, const char *host, int used)
{
    fx_lock(&m->srv);
    fm_cluster *c = fm_find(m, name);
    json_t *w;
    size_t i;
    json_array_foreach(json_object_get(c->state, "workers"), i, w)
        if (strcmp(json_string_value(json_object_get(w, "host")), host) == 0) {
            json_int_t cores = json_integer_value(json_object_get(w, "cores"));
            json_object_set_new(w, "coresused", json_integer(used));
            json_object_set_new(w, "coresfree", json_integer(cores - used));
        }
    fx_unlock(&m->srv);
}

static inline void fm_stop(fm_master *m)
{
    fx_stop(&m->srv);
    for (int i = 0; i < m->n; i++)
        json_decref(m->c[i].state);
}

/* ---- the Oshinko REST fixture ---- */

typedef struct fo_cluster {
    char name[64];
    int count;
    int gets, puts;
    int put_status;           /* 0 = 202 */
    char last_body[512];
    int64_t first_req_us;     /* the first request since it was last set to 0 */
    int64_t put_us;           /* when the last PUT arrived */
} fo_cluster;

typedef struct fo_oshinko {
    fx_server srv;
    fo_cluster c[1100];
    int n;
    uint64_t puts;            /* all clusters */
    pthread_cond_t put_cv;    /* broadcast on every PUT (with srv's mutex) */
} fo_oshinko;

static inline fo_cluster *fo_find(fo_oshinko *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->c[i].name, name) == 0)
            return &o->c[i];
    return NULL;
}

static inline void fo_handler(void *ctx, const fx_request *req, fx_reply *rep)
{
    fo_oshinko *o = ctx;
    if (strncmp(req->path, "/clusters/", 10) != 0) {
        rep->status = 404;
        return;
    }
    fo_cluster *c = fo_find(o, req->path + 10);
    if (!c) {
        rep->status = 404;
        rep->body = strdup("{\"errors\":[{\"status\":404,\"title\":\"Cannot get cluster\"}]}");
        return;
    }
    if (!c->first_req_us)
        c->first_req_us = req->at_us;
    if (strcmp(req->method, "PUT") == 0) {
        c->puts++;
        c->put_us = req->at_us;
        o->puts++;
        pthread_cond_broadcast(&o->put_cv);
        snprintf(c->last_body, sizeof c->last_body, "%s", req->body);
        json_t *j = json_loads(req->body, 0, NULL);
        json_t *n = json_object_get(json_object_get(j, "config"), "workerCount");
        if (c->put_status && c->put_status != 202) {
            rep->status = c->put_status;
            json_decref(j);
            return;
        }
        if (json_is_integer(n))
            c->count = (int)json_integer_value(n);
        json_decref(j);
        rep->status = 202;
        return;
    }
    c->gets++;
    json_t *pods = json_array();
    json_array_append_new(pods, json_pack("{s:s,s:s,s:s}", "ip", "10.1.0.1", "type", "master", "status", "Running"));
    for (int i = 0; i < c->count; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.1.1.%d", i + 2);
        json_array_append_new(pods, json_pack("{s:s,s:s,s:s}", "ip", ip, "type", "worker", "status", "Running"));
    }
    json_t *j = json_pack("{s:{s:s,s:{s:i,s:i},s:o}}", "cluster", "name", c->name, "config", "masterCount",
                          1, "workerCount", c->count, "pods", pods);
    rep->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
}

static inline void fo_start(fo_oshinko *o)
{
    memset(o, 0, sizeof *o);
    pthread_cond_init(&o->put_cv, NULL);
    if (fx_start(&o->srv, fo_handler, o) != 0)
        abort();
}

static inline fo_cluster *fo_add(fo_oshinko *o, const char *name, int count)
{
    fx_lock(&o->srv);
    fo_cluster *c = &o->c[o->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->count = count;
    fx_unlock(&o->srv);
    return c;
}

#endif
