/* consumer.c: the actuators' consumer-group member and transactional audit
 * producer on a libuv loop (see consumer.h for the contract).
 *
 * Threads. librdkafka's transactional calls and rd_kafka_committed() block
 * until the brokers answer; they run as libuv thread-pool jobs on two lanes
 * (one job at a time each): the txn lane (init_transactions, send offsets +
 * commit or abort, the final destroy) and the scan lane (committed offsets
 * and the audit scan after an assignment or an aborted commit). The loop
 * thread never blocks: it polls the consumer, produces audit records between
 * begin_transaction (local, non-blocking) and the commit job, and reads the
 * producer's delivery reports as events (event mode, so a commit flushing on
 * a worker thread never runs our callbacks there).
 *
 * Transactions stay short: an audit record joins a transaction only once
 * the owner finished the decision's action; a commit job starts whenever
 * audits or offset progress wait and none runs; what arrives meanwhile
 * waits for the next one. */
#include "lib/bus/consumer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/base/clock.h"
#include "lib/base/join.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/bus/audit_scan.h"
#include "lib/bus/kafka.h"

#define POLL_BATCH 2000              /* records served per loop turn before yielding */
#define TIMER_MS 200                 /* consumer poll even without events (max.poll.interval) */
#define DEFAULT_CALL_TIMEOUT_MS 30000
#define SCAN_TIMEOUT_MS 60000
#define RETRY_DELAY_US 1000000
#define META_PREFIX "sparkscale:audit="
#define LOG_EVERY_US 5000000

/* One received decision record, until its offset is committed. */
enum { R_OUTSTANDING, R_QUEUED, R_SENT, R_DONE, R_ABANDONED };

typedef struct outrec {
    int64_t offset;
    int64_t ts_ms;
    int state;
} outrec;

/* A committed audit of a decision at or after the committed offset: where
 * the next scan must start. */
typedef struct track {
    int64_t decision_offset;
    int64_t audit_offset;
} track;

enum { P_NONE, P_SCANNING, P_ACTIVE, P_REVOKING, P_RELEASED };

typedef struct cpart {
    int state;
    int gen;                       /* bumped on each assignment: stale scan results are dropped */
    int64_t committed;             /* the committed offset, -1 none */
    int64_t next;                  /* 1 + the last offset received, -1 none yet */
    outrec *q;                     /* received, not yet committed, in offset order */
    size_t qhead, qlen, qcap;      /* q[qhead .. qhead+qlen) */
    int64_t *skip;                 /* sorted offsets that already have an audit record */
    size_t nskip;
    rd_kafka_message_t **buf;      /* received while scanning */
    size_t nbuf, capbuf;
    track *tr;
    size_t ntr, captr;
    int uncommitted;               /* audits queued or in the running commit */
} cpart;

/* An audit record on its way. */
typedef struct aentry {
    struct aentry *next;
    int gen;                       /* the partition's assignment it belongs to */
    int32_t partition;             /* of the decision */
    int64_t offset;
    int64_t ts_ms;
    int32_t audit_partition;
    int64_t audit_offset;          /* from the delivery report, -1 until then */
    int err;
    uint8_t *payload;
    size_t len;
    char key[SS_BUS_NAME_MAX];
} aentry;

typedef struct lane lane;
typedef struct job {
    uv_work_t work;
    struct job *next;
    lane *ln;
    ss_bus_consumer *c;
    void (*run)(struct job *);     /* on a worker thread */
    void (*after)(struct job *);   /* on the loop */
} job;

struct lane {
    job *head, *tail;
    int busy;
};

/* ---- jobs' payloads ---- */

typedef struct commit_job {
    job j;
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *cgmd;
    aentry *entries;
    int probe;
    int result;                    /* 0 committed, 1 aborted, -1 fatal */
    int outside_txn;               /* probe: the brokers did not keep the offsets */
    int64_t t0_us, dur_us;
    char err[256];
} commit_job;

typedef struct recov {
    int32_t partition;
    int gen;
    int64_t committed;             /* where this partition resumes */
    int64_t member_committed;      /* what the group member starts from, -1 none */
    int64_t scan_from;             /* -2 beginning */
    int32_t audit_partition;
    ss_bus_handled *handled;
    size_t nh, caph;
    int64_t end;
} recov;

typedef struct scan_job {
    job j;
    int verify;                    /* 0: after an assignment; 1: after an abort */
    recov *rs;
    size_t nr;
    aentry *entries;               /* verify: the aborted transaction's audits */
    int found_any;
    int rc;
    char err[256];
} scan_job;

struct ss_bus_consumer {
    uv_loop_t *loop;
    ss_bus_consumer_cbs cbs;
    void *ctx;
    const ss_bus_conf *bc;
    char bootstrap[1024], group[256], resume_group[272], instance[256], txn_id[320];
    char fetch_wait[16];
    char dtopic[256], atopic[256];
    int call_timeout_ms;

    rd_kafka_t *cons, *prod;
    rd_kafka_queue_t *cq, *pq;
    /* Brokers that ignore transactional offsets (librdkafka's mock): the
     * resume offsets go to a side group that nobody joins ("<group>.resume"),
     * written by this handle, never by the group member: a member's own
     * commit in the middle of a rebalance carries a stale generation, which
     * librdkafka takes for a lost assignment. */
    rd_kafka_t *keeper;
    rd_kafka_queue_t *kq;
    ss_kafka_events cev, pev;
    uv_timer_t timer;
    uv_check_t check;
    ss_join handles;
    ss_audit_scanner *scanner;     /* scan lane only */

    lane txn_lane, scan_lane;
    atomic_int stop;               /* tells retrying jobs to give up */
    int ready;                     /* init done, subscribed */
    int32_t nd, na;
    cpart *parts;
    int64_t *audit_end;            /* per audit partition: highest known offset + 1 */

    aentry *q_head, *q_tail;       /* audits waiting for a transaction */
    size_t nqueued;
    commit_job *txn;               /* the commit job running, or NULL */
    int64_t retry_txn_at_us;
    int probed;
    int offsets_outside_txn;

    rd_kafka_topic_partition_list_t *revoking; /* revoked, not yet unassigned */

    ss_bus_consumer_stats st;
    ss_actuation_result *scratch;
    int64_t log_err_us;

    int closing, close_started, finished;
    int64_t close_deadline_us;
    void (*done)(void *);
    void *done_ctx;
};

static void kick(ss_bus_consumer *c);
static void maybe_finish_revoke(ss_bus_consumer *c);
static void maybe_close(ss_bus_consumer *c);
static void deliver(ss_bus_consumer *c, cpart *cp, rd_kafka_message_t *m);
static void on_timer(uv_timer_t *t);

static void note_error(ss_bus_consumer *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(ss_bus_consumer *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->st.last_error, sizeof c->st.last_error, fmt, ap);
    va_end(ap);
}

static void fatal(ss_bus_consumer *c, const char *why)
{
    note_error(c, "%s", why);
    ss_error("bus consumer: %s", why);
    if (c->cbs.fatal && !c->finished)
        c->cbs.fatal(c->ctx, why);
}

/* ---- lanes: one blocking job at a time ---- */

static void lane_work(uv_work_t *w)
{
    job *j = w->data;
    j->run(j);
}

static void lane_start(ss_bus_consumer *c, lane *ln);

static void lane_after(uv_work_t *w, int status)
{
    (void)status;
    job *j = w->data;
    lane *ln = j->ln;
    ss_bus_consumer *c = j->c;
    ln->busy = 0;
    j->after(j);   /* may free j, queue jobs, or finish the close */
    if (!c->finished)
        lane_start(c, ln);
}

static void lane_start(ss_bus_consumer *c, lane *ln)
{
    if (ln->busy || !ln->head)
        return;
    job *j = ln->head;
    ln->head = j->next;
    if (!ln->head)
        ln->tail = NULL;
    ln->busy = 1;
    j->work.data = j;
    uv_queue_work(c->loop, &j->work, lane_work, lane_after);
}

static void lane_push(ss_bus_consumer *c, lane *ln, job *j, void (*run)(job *), void (*after)(job *))
{
    j->c = c;
    j->ln = ln;
    j->run = run;
    j->after = after;
    j->next = NULL;
    if (ln->tail)
        ln->tail->next = j;
    else
        ln->head = j;
    ln->tail = j;
    lane_start(c, ln);
}

/* ---- partitions ---- */

static cpart *part(ss_bus_consumer *c, int32_t p)
{
    return c->parts && p >= 0 && p < c->nd ? &c->parts[p] : NULL;
}

static void part_reset(cpart *cp)
{
    for (size_t i = 0; i < cp->nbuf; i++)
        rd_kafka_message_destroy(cp->buf[i]);
    free(cp->buf);
    free(cp->q);
    free(cp->skip);
    free(cp->tr);
    int gen = cp->gen;
    memset(cp, 0, sizeof *cp);
    cp->gen = gen;
    cp->committed = -1;
    cp->next = -1;
}

static outrec *q_at(cpart *cp, size_t i) { return &cp->q[cp->qhead + i]; }

static int q_push(cpart *cp, int64_t offset, int64_t ts_ms, int state)
{
    if (cp->qhead + cp->qlen == cp->qcap) {
        if (cp->qhead > cp->qcap / 2) {
            memmove(cp->q, cp->q + cp->qhead, cp->qlen * sizeof *cp->q);
            cp->qhead = 0;
        } else {
            size_t cap = cp->qcap ? cp->qcap * 2 : 64;
            outrec *n = realloc(cp->q, cap * sizeof *n);
            if (!n)
                return -ENOMEM;
            cp->q = n;
            cp->qcap = cap;
        }
    }
    cp->q[cp->qhead + cp->qlen++] = (outrec){ offset, ts_ms, state };
    return 0;
}

static outrec *q_find(cpart *cp, int64_t offset)
{
    size_t lo = 0, hi = cp->qlen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int64_t o = q_at(cp, mid)->offset;
        if (o == offset)
            return q_at(cp, mid);
        if (o < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The offset to commit: the first record not fully handled, or past the last. */
static int64_t committable(cpart *cp)
{
    for (size_t i = 0; i < cp->qlen; i++) {
        int s = q_at(cp, i)->state;
        if (s != R_SENT && s != R_DONE)
            return q_at(cp, i)->offset;
    }
    return cp->next >= 0 ? cp->next : cp->committed;
}

static int skip_has(const cpart *cp, int64_t off)
{
    size_t lo = 0, hi = cp->nskip;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp->skip[mid] == off)
            return 1;
        if (cp->skip[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int track_add(cpart *cp, int64_t doff, int64_t aoff)
{
    if (cp->ntr == cp->captr) {
        size_t cap = cp->captr ? cp->captr * 2 : 16;
        track *n = realloc(cp->tr, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        cp->tr = n;
        cp->captr = cap;
    }
    cp->tr[cp->ntr++] = (track){ doff, aoff };
    return 0;
}

/* Drops what the committed offset now covers. */
static void part_committed(cpart *cp, int64_t off)
{
    if (off <= cp->committed)
        return;
    cp->committed = off;
    while (cp->qlen && q_at(cp, 0)->offset < off) {
        cp->qhead++;
        cp->qlen--;
    }
    if (cp->qlen == 0)
        cp->qhead = 0;
    size_t k = 0;
    for (size_t i = 0; i < cp->ntr; i++)
        if (cp->tr[i].decision_offset >= off)
            cp->tr[k++] = cp->tr[i];
    cp->ntr = k;
}

static int32_t audit_partition_of(const ss_bus_consumer *c, int32_t p)
{
    return c->na > 0 ? p % c->na : 0;
}

/* Where a scan must start for the audits of decisions >= the offset about to
 * be committed: the earliest audit of such a decision already committed, or
 * the audit partition's known end before this transaction. */
static int64_t scan_from(ss_bus_consumer *c, int32_t p, const cpart *cp)
{
    int64_t from = c->audit_end[audit_partition_of(c, p)];
    for (size_t i = 0; i < cp->ntr; i++)
        if (cp->tr[i].audit_offset < from)
            from = cp->tr[i].audit_offset;
    return from;
}

static int parse_meta(const char *md, size_t len, int32_t *ap, int64_t *off)
{
    char buf[96];
    if (!md || len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, md, len);
    buf[len] = '\0';
    long long a, o;
    if (strncmp(buf, META_PREFIX, strlen(META_PREFIX)) != 0 ||
        sscanf(buf + strlen(META_PREFIX), "%lld@%lld", &a, &o) != 2 || a < 0 || o < 0)
        return -1;
    *ap = (int32_t)a;
    *off = o;
    return 0;
}

/* ---- entries ---- */

static void entry_free(aentry *e)
{
    if (!e)
        return;
    free(e->payload);
    free(e);
}

static void entries_free(aentry *e)
{
    while (e) {
        aentry *n = e->next;
        entry_free(e);
        e = n;
    }
}

static void queue_append(ss_bus_consumer *c, aentry *e)
{
    e->next = NULL;
    if (c->q_tail)
        c->q_tail->next = e;
    else
        c->q_head = e;
    c->q_tail = e;
    c->nqueued++;
}

/* Puts entries back at the front, order kept. */
static void queue_prepend(ss_bus_consumer *c, aentry *list)
{
    if (!list)
        return;
    aentry *last = list;
    size_t n = 1;
    while (last->next) {
        last = last->next;
        n++;
    }
    last->next = c->q_head;
    c->q_head = list;
    if (!c->q_tail)
        c->q_tail = last;
    c->nqueued += n;
}

/* The partition of e, if e belongs to its current assignment. */
static cpart *entry_part(ss_bus_consumer *c, const aentry *e)
{
    cpart *cp = part(c, e->partition);
    return cp && cp->gen == e->gen && cp->state != P_NONE ? cp : NULL;
}

static void set_state(ss_bus_consumer *c, const aentry *e, int state)
{
    cpart *cp = entry_part(c, e);
    outrec *r = cp ? q_find(cp, e->offset) : NULL;
    if (r)
        r->state = state;
}

/* Drops queued audits of a partition that was lost. */
static void queue_drop_partition(ss_bus_consumer *c, int32_t p)
{
    aentry **pe = &c->q_head, *last = NULL;
    while (*pe) {
        aentry *e = *pe;
        if (e->partition == p) {
            *pe = e->next;
            c->nqueued--;
            entry_free(e);
            continue;
        }
        last = e;
        pe = &e->next;
    }
    c->q_tail = last;
}

/* ---- the commit job ---- */

static void commit_run(job *j)
{
    commit_job *cj = (commit_job *)j;
    ss_bus_consumer *c = j->c;
    rd_kafka_error_t *e = NULL;
    int tmo = c->call_timeout_ms;
    for (int attempt = 0; cj->offsets->cnt > 0; attempt++) {
        e = rd_kafka_send_offsets_to_transaction(c->prod, cj->offsets, cj->cgmd, tmo);
        if (!e || !rd_kafka_error_is_retriable(e) || attempt >= 2)
            break;
        rd_kafka_error_destroy(e);
    }
    for (int attempt = 0; !e; attempt++) {
        e = rd_kafka_commit_transaction(c->prod, tmo);
        if (!e || !rd_kafka_error_is_retriable(e) || attempt >= 3)
            break;
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    if (!e) {
        cj->result = 0;
        if (cj->probe && cj->offsets->cnt > 0) {
            /* Do the brokers keep offsets sent to a transaction? librdkafka's
             * mock cluster (the embedded one) answers but keeps nothing. */
            rd_kafka_topic_partition_list_t *chk = rd_kafka_topic_partition_list_copy(cj->offsets);
            if (rd_kafka_committed(c->cons, chk, tmo) == 0) {
                for (int i = 0; i < chk->cnt; i++)
                    if (chk->elems[i].offset < cj->offsets->elems[i].offset)
                        cj->outside_txn = 1;
            }
            rd_kafka_topic_partition_list_destroy(chk);
        }
        cj->dur_us = ss_mono_us() - cj->t0_us;
        return;
    }
    snprintf(cj->err, sizeof cj->err, "%s: %s", rd_kafka_error_name(e), rd_kafka_error_string(e));
    int fatal_err = rd_kafka_error_is_fatal(e);
    rd_kafka_error_destroy(e);
    if (fatal_err) {
        cj->result = -1;
        return;
    }
    /* Abortable (or retries exhausted): abort, the audits are checked and sent again. */
    e = rd_kafka_abort_transaction(c->prod, tmo);
    if (e) {
        size_t n = strlen(cj->err);
        snprintf(cj->err + n, sizeof cj->err - n, "; abort: %s", rd_kafka_error_string(e));
        cj->result = rd_kafka_error_is_fatal(e) ? -1 : 1;
        rd_kafka_error_destroy(e);
        return;
    }
    cj->result = 1;
    cj->dur_us = ss_mono_us() - cj->t0_us;
}

static void verify_after_abort(ss_bus_consumer *c, aentry *entries);

static void commit_after(job *j)
{
    commit_job *cj = (commit_job *)j;
    ss_bus_consumer *c = j->c;
    c->txn = NULL;
    c->st.in_flight_commits = 0;
    if (cj->result == 0) {
        c->st.transactions++;
        ss_hist_add(&c->st.commit_latency, cj->dur_us);
        int64_t now = ss_wall_ms();
        for (aentry *e = cj->entries; e; e = e->next) {
            cpart *cp = entry_part(c, e);
            c->st.audits_committed++;
            if (e->ts_ms > 0)
                ss_hist_add(&c->st.audit_latency, (now - e->ts_ms) * 1000);
            if (cp) {
                cp->uncommitted--;
                if (e->audit_offset >= 0)
                    track_add(cp, e->offset, e->audit_offset);
            }
        }
        for (int i = 0; i < cj->offsets->cnt; i++) {
            cpart *cp = part(c, cj->offsets->elems[i].partition);
            if (cp && cp->state != P_NONE && cp->gen == (int)(intptr_t)cj->offsets->elems[i].opaque)
                part_committed(cp, cj->offsets->elems[i].offset);
        }
        if (cj->outside_txn && !c->offsets_outside_txn) {
            c->offsets_outside_txn = 1;
            c->st.offsets_outside_txn = 1;
            ss_warn("bus consumer: the brokers do not keep offsets committed in a transaction "
                    "(librdkafka's mock cluster, the embedded Kafka, behaves so): the offsets are "
                    "also kept in consumer group %s after each transaction; the audit scan keeps "
                    "one audit record per decision",
                    c->resume_group);
        }
        /* Offsets in the transaction are kept by real brokers; the mock
         * needs them kept elsewhere: the side group. */
        if (c->offsets_outside_txn && cj->offsets->cnt > 0 && c->keeper)
            rd_kafka_commit_queue(c->keeper, cj->offsets, c->kq, NULL, NULL);
        size_t n = 0;
        for (aentry *e = cj->entries; e; e = e->next)
            n++;
        entries_free(cj->entries);
        cj->entries = NULL;
        if (c->cbs.committed && n)
            c->cbs.committed(c->ctx, n);
    } else if (cj->result > 0) {
        c->st.aborts++;
        note_error(c, "transaction aborted: %s", cj->err);
        ss_warn("bus consumer: transaction aborted (%s): its audit records are checked against "
                "the audit topic and sent again",
                cj->err);
        c->retry_txn_at_us = ss_mono_us() + RETRY_DELAY_US / 4;
        verify_after_abort(c, cj->entries);
        cj->entries = NULL;
    } else {
        c->st.aborts++;
        for (aentry *e = cj->entries; e; e = e->next) {
            cpart *cp = entry_part(c, e);
            if (cp)
                cp->uncommitted--;
        }
        entries_free(cj->entries);
        cj->entries = NULL;
        char why[320];
        snprintf(why, sizeof why, "transaction failed for good: %s", cj->err);
        fatal(c, why);
    }
    rd_kafka_topic_partition_list_destroy(cj->offsets);
    rd_kafka_consumer_group_metadata_destroy(cj->cgmd);
    free(cj);
    maybe_finish_revoke(c);
    kick(c);
    maybe_close(c);
}

/* Partitions whose offsets or audits should be committed. */
static int dirty(ss_bus_consumer *c)
{
    if (c->nqueued)
        return 1;
    for (int32_t p = 0; p < c->nd; p++) {
        cpart *cp = &c->parts[p];
        if (cp->state < P_ACTIVE)
            continue;
        int64_t x = committable(cp);
        if (x > cp->committed && x >= 0)
            return 1;
    }
    return 0;
}

/* Starts a transaction: produce the queued audits, send the offsets, commit
 * off the loop. */
static void start_txn(ss_bus_consumer *c)
{
    if (!c->ready || c->txn || c->finished || !dirty(c))
        return;
    if (c->retry_txn_at_us && ss_mono_us() < c->retry_txn_at_us)
        return;
    c->retry_txn_at_us = 0;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(c->prod);
    if (e) {
        int fatal_err = rd_kafka_error_is_fatal(e);
        note_error(c, "begin_transaction: %s", rd_kafka_error_string(e));
        if (fatal_err) {
            char why[320];
            snprintf(why, sizeof why, "begin_transaction: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            fatal(c, why);
            return;
        }
        ss_warn("bus consumer: begin_transaction: %s (retrying)", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        c->retry_txn_at_us = ss_mono_us() + RETRY_DELAY_US;
        return;
    }
    commit_job *cj = calloc(1, sizeof *cj);
    if (!cj) {
        /* Nothing produced yet: an empty transaction costs nothing to leave open. */
        c->retry_txn_at_us = ss_mono_us() + RETRY_DELAY_US;
        return;
    }
    cj->t0_us = ss_mono_us();
    aentry **tail = &cj->entries;
    while (c->q_head) {
        aentry *en = c->q_head;
        rd_kafka_resp_err_t pe = rd_kafka_producev(
            c->prod, RD_KAFKA_V_TOPIC(c->atopic), RD_KAFKA_V_PARTITION(en->audit_partition),
            RD_KAFKA_V_KEY(en->key, strlen(en->key)), RD_KAFKA_V_VALUE(en->payload, en->len),
            RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_OPAQUE(en), RD_KAFKA_V_END);
        if (pe) {
            /* Queue full: the rest waits for the next transaction. */
            if (pe != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                note_error(c, "produce to %s: %s", c->atopic, rd_kafka_err2str(pe));
            break;
        }
        c->q_head = en->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->nqueued--;
        en->next = NULL;
        en->audit_offset = -1;
        *tail = en;
        tail = &en->next;
        set_state(c, en, R_SENT);
    }
    /* The offsets, computed after the states above changed. */
    cj->offsets = rd_kafka_topic_partition_list_new(c->nd > 0 ? c->nd : 1);
    for (int32_t p = 0; p < c->nd; p++) {
        cpart *cp = &c->parts[p];
        if (cp->state < P_ACTIVE)
            continue;
        int64_t x = committable(cp);
        if (x < 0 || x <= cp->committed)
            continue;
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(cj->offsets, c->dtopic, p);
        tp->offset = x;
        tp->opaque = (void *)(intptr_t)cp->gen;
        char md[96];
        int n = snprintf(md, sizeof md, META_PREFIX "%d@%" PRId64, (int)audit_partition_of(c, p),
                         scan_from(c, p, cp));
        tp->metadata = malloc((size_t)n);
        if (tp->metadata) {
            memcpy(tp->metadata, md, (size_t)n);
            tp->metadata_size = (size_t)n;
        }
    }
    cj->cgmd = rd_kafka_consumer_group_metadata(c->cons);
    cj->probe = !c->probed && cj->offsets->cnt > 0;
    if (cj->probe)
        c->probed = 1;
    c->txn = cj;
    c->st.in_flight_commits = 1;
    lane_push(c, &c->txn_lane, &cj->j, commit_run, commit_after);
}

/* ---- scans (assignment, verification after an abort) ---- */

static void scan_collect(void *arg, size_t req, const ss_actuation_result *r)
{
    scan_job *sj = arg;
    recov *rv = &sj->rs[req];
    if (rv->nh == rv->caph) {
        size_t cap = rv->caph ? rv->caph * 2 : 64;
        ss_bus_handled *n = realloc(rv->handled, cap * sizeof *n);
        if (!n)
            return;
        rv->handled = n;
        rv->caph = cap;
    }
    ss_bus_handled *h = &rv->handled[rv->nh++];
    memset(h, 0, sizeof *h);
    snprintf(h->cluster, sizeof h->cluster, "%s", r->cluster);
    h->epoch = r->decision_epoch;
    h->sequence = r->decision_sequence;
    h->outcome = r->outcome;
    h->decision_offset = r->decision_offset;
    h->desired_workers = r->desired_workers;
    h->replicas_after = r->replicas_after;
    h->handled_at_ms = r->handled_at_ms;
}

static void scan_run(job *j)
{
    scan_job *sj = (scan_job *)j;
    ss_bus_consumer *c = j->c;
    if (atomic_load(&c->stop)) {
        sj->rc = -ECANCELED;
        return;
    }
    if (!c->scanner) {
        c->scanner = ss_audit_scanner_new(c->bc, c->bootstrap, sj->err, sizeof sj->err);
        if (!c->scanner) {
            sj->rc = -EIO;
            return;
        }
    }
    if (!sj->verify) {
        /* The committed offsets and where their audits may start. */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)sj->nr);
        for (size_t i = 0; i < sj->nr; i++)
            rd_kafka_topic_partition_list_add(l, c->dtopic, sj->rs[i].partition);
        rd_kafka_resp_err_t e = rd_kafka_committed(c->cons, l, c->call_timeout_ms);
        if (e) {
            snprintf(sj->err, sizeof sj->err, "committed offsets: %s", rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(l);
            sj->rc = -EIO;
            return;
        }
        /* The side group, where brokers without transactional offsets keep them. */
        rd_kafka_topic_partition_list_t *side = rd_kafka_topic_partition_list_copy(l);
        for (int i = 0; i < side->cnt; i++)
            side->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        if (!c->keeper || rd_kafka_committed(c->keeper, side, c->call_timeout_ms) != 0)
            side->cnt = 0;
        for (size_t i = 0; i < sj->nr; i++) {
            recov *rv = &sj->rs[i];
            const rd_kafka_topic_partition_t *tp = &l->elems[i];
            rv->member_committed = tp->err || tp->offset < 0 ? -1 : tp->offset;
            if ((int)i < side->cnt && !side->elems[i].err && side->elems[i].offset > rv->member_committed)
                tp = &side->elems[i];
            rv->committed = tp->err || tp->offset < 0 ? -1 : tp->offset;
            int32_t ap;
            int64_t from;
            rv->scan_from = RD_KAFKA_OFFSET_BEGINNING;
            if (rv->committed >= 0 && parse_meta(tp->metadata, tp->metadata_size, &ap, &from) == 0 &&
                ap == rv->audit_partition)
                rv->scan_from = from;
        }
        rd_kafka_topic_partition_list_destroy(side);
        rd_kafka_topic_partition_list_destroy(l);
    }
    ss_audit_scan_req *reqs = calloc(sj->nr, sizeof *reqs);
    int64_t *ends = calloc(sj->nr, sizeof *ends);
    if (!reqs || !ends) {
        free(reqs);
        free(ends);
        sj->rc = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < sj->nr; i++)
        reqs[i] = (ss_audit_scan_req){ sj->rs[i].audit_partition, sj->rs[i].scan_from, c->dtopic,
                                       sj->rs[i].partition,
                                       sj->rs[i].committed >= 0 ? sj->rs[i].committed : 0 };
    sj->rc = ss_audit_scan(c->scanner, c->atopic, reqs, sj->nr, SCAN_TIMEOUT_MS, scan_collect, sj,
                           ends, sj->err, sizeof sj->err);
    for (size_t i = 0; i < sj->nr; i++)
        sj->rs[i].end = ends[i];
    free(reqs);
    free(ends);
}

static void scan_job_free(scan_job *sj)
{
    for (size_t i = 0; i < sj->nr; i++)
        free(sj->rs[i].handled);
    free(sj->rs);
    entries_free(sj->entries);
    free(sj);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void queue_recovery(ss_bus_consumer *c, const int32_t *ps, size_t n);

static void recover_after(ss_bus_consumer *c, scan_job *sj)
{
    if (sj->rc < 0) {
        /* Retry the partitions that are still waiting. */
        int32_t *again = calloc(sj->nr ? sj->nr : 1, sizeof *again);
        size_t k = 0;
        for (size_t i = 0; i < sj->nr; i++) {
            cpart *cp = part(c, sj->rs[i].partition);
            if (cp && cp->state == P_SCANNING && cp->gen == sj->rs[i].gen && again)
                again[k++] = sj->rs[i].partition;
        }
        if (sj->rc != -ECANCELED) {
            note_error(c, "audit scan: %s", sj->err);
            ss_warn("bus consumer: audit scan failed: %s; retrying", sj->err);
        }
        if (k && !c->closing)
            queue_recovery(c, again, k);
        free(again);
        return;
    }
    for (size_t i = 0; i < sj->nr; i++) {
        recov *rv = &sj->rs[i];
        cpart *cp = part(c, rv->partition);
        if (!cp || cp->state != P_SCANNING || cp->gen != rv->gen)
            continue;
        if (rv->end > c->audit_end[rv->audit_partition])
            c->audit_end[rv->audit_partition] = rv->end;
        cp->committed = rv->committed;
        if (rv->committed >= 0) {
            cp->next = rv->committed;   /* nothing before it is handed out */
            if (rv->committed > rv->member_committed && c->cons) {
                /* Kept in the side group only: start there. */
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(l, c->dtopic, rv->partition)->offset = rv->committed;
                rd_kafka_error_t *se = rd_kafka_seek_partitions(c->cons, l, 0);
                if (se)
                    rd_kafka_error_destroy(se);
                rd_kafka_topic_partition_list_destroy(l);
            }
        }
        if (rv->nh) {
            cp->skip = malloc(rv->nh * sizeof *cp->skip);
            for (size_t k = 0; cp->skip && k < rv->nh; k++)
                cp->skip[k] = rv->handled[k].decision_offset;
            if (cp->skip) {
                qsort(cp->skip, rv->nh, sizeof *cp->skip, cmp_i64);
                cp->nskip = rv->nh;
            }
            /* Those audits are committed already: the next scan starts at them. */
            for (size_t k = 0; k < rv->nh; k++)
                track_add(cp, rv->handled[k].decision_offset,
                          rv->scan_from >= 0 ? rv->scan_from : 0);
        }
        cp->state = P_ACTIVE;
        ss_info("bus consumer: partition %d of %s is ours (committed offset %" PRId64 ", %zu "
                "decision(s) after it already audited)",
                (int)rv->partition, c->dtopic, rv->committed, rv->nh);
        if (c->cbs.assigned)
            c->cbs.assigned(c->ctx, rv->partition, rv->handled, rv->nh);
        /* What arrived while scanning, in order. */
        rd_kafka_message_t **buf = cp->buf;
        size_t nbuf = cp->nbuf;
        cp->buf = NULL;
        cp->nbuf = cp->capbuf = 0;
        for (size_t k = 0; k < nbuf; k++) {
            if (cp->state == P_ACTIVE)
                deliver(c, cp, buf[k]);
            rd_kafka_message_destroy(buf[k]);
        }
        free(buf);
        if (cp->state == P_ACTIVE && c->cons) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, c->dtopic, rv->partition);
            rd_kafka_resume_partitions(c->cons, l);
            rd_kafka_topic_partition_list_destroy(l);
        }
    }
}

static void verify_after(ss_bus_consumer *c, scan_job *sj)
{
    if (sj->rc < 0 && sj->rc != -ECANCELED)
        ss_warn("bus consumer: checking aborted audits failed (%s): sending them again", sj->err);
    aentry *keep = NULL, **tail = &keep;
    for (aentry *e = sj->entries, *n; e; e = n) {
        n = e->next;
        int found = 0;
        for (size_t i = 0; sj->rc == 0 && i < sj->nr && !found; i++)
            if (sj->rs[i].partition == e->partition)
                for (size_t k = 0; k < sj->rs[i].nh && !found; k++)
                    found = sj->rs[i].handled[k].decision_offset == e->offset;
        cpart *cp = entry_part(c, e);
        if (found || !cp || cp->state < P_ACTIVE) {
            /* Visible although aborted (a broker without transaction markers),
             * or no longer ours: do not send it twice. */
            if (cp && cp->uncommitted > 0)
                cp->uncommitted--;
            if (found)
                set_state(c, e, R_SENT);
            entry_free(e);
            continue;
        }
        set_state(c, e, R_QUEUED);
        e->next = NULL;
        *tail = e;
        tail = &e->next;
    }
    sj->entries = NULL;
    queue_prepend(c, keep);
}

static void scan_after(job *j)
{
    scan_job *sj = (scan_job *)j;
    ss_bus_consumer *c = j->c;
    if (sj->verify)
        verify_after(c, sj);
    else
        recover_after(c, sj);
    scan_job_free(sj);
    maybe_finish_revoke(c);
    kick(c);
    maybe_close(c);
}

static void queue_recovery(ss_bus_consumer *c, const int32_t *ps, size_t n)
{
    scan_job *sj = calloc(1, sizeof *sj);
    if (sj)
        sj->rs = calloc(n, sizeof *sj->rs);
    if (!sj || !sj->rs) {
        free(sj);
        fatal(c, "out of memory for an audit scan");
        return;
    }
    sj->nr = n;
    for (size_t i = 0; i < n; i++) {
        cpart *cp = part(c, ps[i]);
        sj->rs[i].partition = ps[i];
        sj->rs[i].gen = cp ? cp->gen : 0;
        sj->rs[i].audit_partition = audit_partition_of(c, ps[i]);
        sj->rs[i].committed = -1;
        sj->rs[i].scan_from = RD_KAFKA_OFFSET_BEGINNING;
    }
    lane_push(c, &c->scan_lane, &sj->j, scan_run, scan_after);
}

/* After an abort: which audits of the transaction are visible anyway? */
static void verify_after_abort(ss_bus_consumer *c, aentry *entries)
{
    scan_job *sj = calloc(1, sizeof *sj);
    size_t n = 0;
    for (aentry *e = entries; e; e = e->next)
        n++;
    if (sj && n)
        sj->rs = calloc(n, sizeof *sj->rs);
    if (!sj || !n || !sj->rs) {
        free(sj);
        /* No scan possible: send them all again. */
        for (aentry *e = entries; e; e = e->next)
            set_state(c, e, R_QUEUED);
        queue_prepend(c, entries);
        return;
    }
    sj->verify = 1;
    sj->entries = entries;
    for (aentry *e = entries; e; e = e->next) {
        size_t i = 0;
        while (i < sj->nr && sj->rs[i].partition != e->partition)
            i++;
        if (i == sj->nr) {
            sj->rs[i].partition = e->partition;
            sj->rs[i].audit_partition = e->audit_partition;
            sj->rs[i].committed = e->offset;
            sj->rs[i].scan_from = e->audit_offset >= 0 ? e->audit_offset : RD_KAFKA_OFFSET_BEGINNING;
            sj->nr++;
        }
        recov *rv = &sj->rs[i];
        if (e->offset < rv->committed)
            rv->committed = e->offset;
        if (e->audit_offset < 0)
            rv->scan_from = RD_KAFKA_OFFSET_BEGINNING;
        else if (rv->scan_from >= 0 && e->audit_offset < rv->scan_from)
            rv->scan_from = e->audit_offset;
    }
    lane_push(c, &c->scan_lane, &sj->j, scan_run, scan_after);
}

/* ---- records ---- */

static void deliver(ss_bus_consumer *c, cpart *cp, rd_kafka_message_t *m)
{
    if (cp->next >= 0 && m->offset < cp->next)
        return;   /* seen already (a refetch) */
    cp->next = m->offset + 1;
    c->st.consumed++;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (skip_has(cp, m->offset)) {
        q_push(cp, m->offset, ts, R_DONE);
        c->st.recovered_skipped++;
        return;
    }
    if (q_push(cp, m->offset, ts, R_OUTSTANDING) < 0) {
        fatal(c, "out of memory for a consumed record");
        return;
    }
    c->st.delivered++;
    ss_bus_in in = {
        .partition = m->partition,
        .offset = m->offset,
        .timestamp_ms = ts,
        .key = m->key,
        .key_len = m->key ? m->key_len : 0,
        .payload = m->payload,
        .len = m->payload ? m->len : 0,
    };
    if (c->cbs.record)
        c->cbs.record(c->ctx, &in);
}

static void handle_message(ss_bus_consumer *c, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            note_error(c, "consume: %s", rd_kafka_message_errstr(m));
            int64_t now = ss_mono_us();
            if (now - c->log_err_us > LOG_EVERY_US) {
                c->log_err_us = now;
                ss_warn("bus consumer: %s", rd_kafka_message_errstr(m));
            }
            if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                fatal(c, "consumer: fatal error");
        }
        rd_kafka_message_destroy(m);
        return;
    }
    cpart *cp = m->rkt && strcmp(rd_kafka_topic_name(m->rkt), c->dtopic) == 0 ? part(c, m->partition)
                                                                            : NULL;
    if (cp && cp->state == P_SCANNING) {
        if (cp->nbuf == cp->capbuf) {
            size_t cap = cp->capbuf ? cp->capbuf * 2 : 16;
            rd_kafka_message_t **n = realloc(cp->buf, cap * sizeof *n);
            if (!n) {
                rd_kafka_message_destroy(m);
                fatal(c, "out of memory while an audit scan runs");
                return;
            }
            cp->buf = n;
            cp->capbuf = cap;
        }
        cp->buf[cp->nbuf++] = m;
        return;
    }
    if (cp && cp->state == P_ACTIVE && !c->closing)
        deliver(c, cp, m);
    rd_kafka_message_destroy(m);
}

static void serve_consumer(ss_bus_consumer *c)
{
    if (!c->cons || c->finished)
        return;
    for (int i = 0; i < POLL_BATCH; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->cons, 0);
        if (!m)
            return;
        handle_message(c, m);
        if (c->finished)
            return;
    }
    /* More waiting: come back at once, after other handles had their turn. */
    uv_timer_start(&c->timer, on_timer, 0, TIMER_MS);
}

static void serve_producer(ss_bus_consumer *c)
{
    if (!c->pq || c->finished)
        return;
    rd_kafka_event_t *ev;
    while ((ev = rd_kafka_queue_poll(c->pq, 0))) {
        switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_DR: {
            const rd_kafka_message_t *m;
            while ((m = rd_kafka_event_message_next(ev))) {
                aentry *e = m->_private;
                if (!e)
                    continue;
                e->err = m->err;
                if (!m->err) {
                    e->audit_offset = m->offset;
                    if (e->audit_partition < c->na && m->offset + 1 > c->audit_end[e->audit_partition])
                        c->audit_end[e->audit_partition] = m->offset + 1;
                } else {
                    note_error(c, "audit delivery: %s", rd_kafka_err2str(m->err));
                }
            }
            break;
        }
        case RD_KAFKA_EVENT_ERROR: {
            rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
            note_error(c, "producer: %s", rd_kafka_event_error_string(ev));
            if (rd_kafka_event_error_is_fatal(ev)) {
                char why[320];
                snprintf(why, sizeof why, "transactional producer: %s", rd_kafka_event_error_string(ev));
                fatal(c, why);
            } else if (err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                ss_warn("bus consumer: producer: %s", rd_kafka_event_error_string(ev));
            }
            break;
        }
        default:
            break;
        }
        rd_kafka_event_destroy(ev);
    }
}

static void on_cons_events(void *ctx) { serve_consumer(ctx); }
static void on_prod_events(void *ctx) { serve_producer(ctx); }

/* Results of the side group's commits: nothing to do but drop them. */
static void serve_keeper(ss_bus_consumer *c)
{
    rd_kafka_event_t *ev;
    while (c->kq && (ev = rd_kafka_queue_poll(c->kq, 0))) {
        if (rd_kafka_event_error(ev))
            ss_debug("bus consumer: resume offsets: %s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
    }
}

static void on_timer(uv_timer_t *t)
{
    ss_bus_consumer *c = t->data;
    serve_keeper(c);
    serve_producer(c);
    serve_consumer(c);
    kick(c);
    maybe_close(c);
}

static void on_check(uv_check_t *h)
{
    ss_bus_consumer *c = h->data;
    if (!c->txn && (c->nqueued || c->closing))
        start_txn(c);
}

/* Something may be committable: the check hook starts the transaction at
 * the end of this loop turn, so answers given in one turn share it. */
static void kick(ss_bus_consumer *c)
{
    if (!c->txn && !c->finished && c->ready)
        start_txn(c);
}

/* ---- rebalances ---- */

static void part_list_log(const char *what, const rd_kafka_topic_partition_list_t *l)
{
    char buf[256] = "";
    size_t n = 0;
    for (int i = 0; i < l->cnt && n < sizeof buf - 16; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", i ? "," : "", (int)l->elems[i].partition);
    ss_info("bus consumer: %s partition(s) [%s]", what, buf);
}

static void on_assign(ss_bus_consumer *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
    if (e) {
        note_error(c, "incremental_assign: %s", rd_kafka_error_string(e));
        ss_error("bus consumer: incremental_assign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
    }
    if (parts->cnt == 0)
        return;
    part_list_log("assigned", parts);
    /* No record is handed out before the audit scan says which are done. */
    rd_kafka_pause_partitions(rk, parts);
    int32_t *ps = calloc((size_t)parts->cnt, sizeof *ps);
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        cpart *cp = part(c, parts->elems[i].partition);
        if (!cp || strcmp(parts->elems[i].topic, c->dtopic) != 0)
            continue;
        part_reset(cp);
        cp->gen++;
        cp->state = P_SCANNING;
        if (ps)
            ps[n++] = parts->elems[i].partition;
    }
    if (n)
        queue_recovery(c, ps, n);
    free(ps);
}

static void on_revoke(ss_bus_consumer *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    int lost = rd_kafka_assignment_lost(rk);
    if (parts->cnt)
        part_list_log(lost ? "lost" : "revoked", parts);
    for (int i = 0; i < parts->cnt; i++) {
        cpart *cp = part(c, parts->elems[i].partition);
        if (!cp || strcmp(parts->elems[i].topic, c->dtopic) != 0)
            continue;
        int was = cp->state;
        if (lost) {
            queue_drop_partition(c, parts->elems[i].partition);
            cp->state = P_NONE;
            part_reset(cp);
            if (was == P_ACTIVE || was == P_REVOKING)
                c->cbs.revoked(c->ctx, parts->elems[i].partition, 1);
        } else if (was == P_ACTIVE) {
            cp->state = P_REVOKING;
            c->cbs.revoked(c->ctx, parts->elems[i].partition, 0);   /* may release at once */
        } else if (was == P_SCANNING) {
            cp->state = P_RELEASED;
        }
    }
    if (lost) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
        return;
    }
    /* Handed over once released and committed (maybe_finish_revoke). */
    if (!c->revoking)
        c->revoking = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++)
        rd_kafka_topic_partition_list_add(c->revoking, parts->elems[i].topic, parts->elems[i].partition);
    maybe_finish_revoke(c);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    ss_bus_consumer *c = opaque;
    c->st.rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(c, rk, parts);
    else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        on_revoke(c, rk, parts);
    else {
        ss_error("bus consumer: rebalance error: %s", rd_kafka_err2str(err));
        note_error(c, "rebalance: %s", rd_kafka_err2str(err));
    }
}

/* Unassigns the revoked partitions once every one of them is released and
 * nothing of them waits for a commit. */
static void maybe_finish_revoke(ss_bus_consumer *c)
{
    if (!c->revoking || c->finished)
        return;
    int ready = 1, want_commit = 0;
    for (int i = 0; i < c->revoking->cnt; i++) {
        cpart *cp = part(c, c->revoking->elems[i].partition);
        if (!cp || cp->state == P_NONE)
            continue;
        if (cp->state != P_RELEASED) {
            ready = 0;
            continue;
        }
        int64_t x = committable(cp);
        if (cp->uncommitted > 0 || (x >= 0 && x > cp->committed)) {
            ready = 0;
            want_commit = 1;
        }
    }
    if (c->txn)
        ready = 0;
    if (!ready) {
        if (want_commit)
            kick(c);
        return;
    }
    rd_kafka_topic_partition_list_t *l = c->revoking;
    c->revoking = NULL;
    for (int i = 0; i < l->cnt; i++) {
        cpart *cp = part(c, l->elems[i].partition);
        if (cp) {
            cp->state = P_NONE;
            part_reset(cp);
        }
    }
    part_list_log("handed over", l);
    rd_kafka_error_t *e = rd_kafka_incremental_unassign(c->cons, l);
    if (e) {
        ss_warn("bus consumer: incremental_unassign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
    maybe_close(c);
}

/* ---- init ---- */

typedef struct init_job {
    job j;
    int rc;
    int32_t nd, na;
    char err[512];
} init_job;

static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt)
        return -EINVAL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e) {
        ss_errf(err, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(e));
        return -EAGAIN;
    }
    int n = -ENOENT;
    if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
        n = md->topics[0].partition_cnt;
    else
        ss_errf(err, errlen, "topic %s: %s", topic,
                md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
    rd_kafka_metadata_destroy(md);
    return n;
}

static void init_run(job *j)
{
    init_job *ij = (init_job *)j;
    ss_bus_consumer *c = j->c;
    int64_t last_log = 0;
    for (;;) {
        if (atomic_load(&c->stop)) {
            ij->rc = -ECANCELED;
            return;
        }
        rd_kafka_error_t *e = rd_kafka_init_transactions(c->prod, c->call_timeout_ms);
        if (!e)
            break;
        snprintf(ij->err, sizeof ij->err, "init_transactions: %s", rd_kafka_error_string(e));
        int fatal_err = rd_kafka_error_is_fatal(e) || !rd_kafka_error_is_retriable(e);
        rd_kafka_error_destroy(e);
        if (fatal_err) {
            ij->rc = -EIO;
            return;
        }
        ss_warn("bus consumer: %s; retrying", ij->err);
        usleep(200000);
    }
    for (;;) {
        if (atomic_load(&c->stop)) {
            ij->rc = -ECANCELED;
            return;
        }
        int nd = topic_partitions(c->prod, c->dtopic, c->call_timeout_ms, ij->err, sizeof ij->err);
        int na = nd > 0 ? topic_partitions(c->prod, c->atopic, c->call_timeout_ms, ij->err,
                                           sizeof ij->err)
                        : nd;
        if (nd > 0 && na > 0) {
            ij->nd = nd;
            ij->na = na;
            ij->rc = 0;
            return;
        }
        int64_t now = ss_mono_us();
        if (now - last_log > LOG_EVERY_US) {
            last_log = now;
            ss_warn("bus consumer: %s; waiting for the topics %s and %s", ij->err, c->dtopic,
                    c->atopic);
        }
        usleep(500000);
    }
}

static void init_after(job *j)
{
    init_job *ij = (init_job *)j;
    ss_bus_consumer *c = j->c;
    int rc = ij->rc;
    char err[512];
    snprintf(err, sizeof err, "%s", ij->err);
    int32_t nd = ij->nd, na = ij->na;
    free(ij);
    if (rc == -ECANCELED || c->closing) {
        maybe_close(c);
        return;
    }
    if (rc < 0) {
        fatal(c, err);
        return;
    }
    c->parts = calloc((size_t)nd, sizeof *c->parts);
    c->audit_end = calloc((size_t)na, sizeof *c->audit_end);
    if (!c->parts || !c->audit_end) {
        fatal(c, "out of memory for the partitions");
        return;
    }
    for (int32_t p = 0; p < nd; p++)
        part_reset(&c->parts[p]);
    c->nd = nd;
    c->na = na;
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, c->dtopic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->cons, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e) {
        snprintf(err, sizeof err, "subscribe to %s: %s", c->dtopic, rd_kafka_err2str(e));
        fatal(c, err);
        return;
    }
    c->ready = 1;
    ss_info("bus consumer: transactions ready (transactional.id %s); member of group %s on %s "
            "(%d partitions), audits to %s (%d partitions)",
            c->txn_id, c->group, c->dtopic, (int)nd, c->atopic, (int)na);
}

/* ---- create ---- */

static void on_cons_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    ss_bus_consumer *c = opaque;
    (void)rk;
    note_error(c, "%s: %s", rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[320];
        snprintf(why, sizeof why, "consumer: %s", reason);
        fatal(c, why);
    } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        ss_debug("bus consumer: %s: %s", rd_kafka_err2name(err), reason);
    } else {
        ss_warn("bus consumer: %s: %s", rd_kafka_err2name(err), reason);
    }
}

static void on_offset_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk, (void)offsets, (void)opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        ss_debug("bus consumer: offset commit outside the transaction: %s", rd_kafka_err2str(err));
}

static int make_clients(ss_bus_consumer *c, char *err, size_t errlen)
{
    ss_bus_conf bc = *c->bc;
    bc.client_id = c->instance;
    const ss_kv cdef[] = {
        { "group.id", c->group },
        { "partition.assignment.strategy", "cooperative-sticky" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "auto.offset.reset", "earliest" },
        { "isolation.level", "read_committed" },
        { "reconnect.backoff.max.ms", "1000" },
        { "socket.nagle.disable", "true" },
        { "fetch.wait.max.ms", c->fetch_wait },
    };
    rd_kafka_conf_t *cc = ss_kafka_conf_new(&bc, c->bootstrap, cdef, sizeof cdef / sizeof cdef[0], err,
                                            errlen);
    if (!cc)
        return -EINVAL;
    rd_kafka_conf_set_opaque(cc, c);
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(cc, on_offset_commit);
    rd_kafka_conf_set_error_cb(cc, on_cons_error);
    rd_kafka_conf_set_log_cb(cc, ss_kafka_on_log);
    char e[512];
    c->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
    if (!c->cons) {
        rd_kafka_conf_destroy(cc);
        ss_errf(err, errlen, "kafka consumer: %s", e);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(c->cons);
    c->cq = rd_kafka_queue_get_consumer(c->cons);

    const ss_kv pdef[] = {
        { "transactional.id", c->txn_id },
        { "acks", "all" },
        { "enable.idempotence", "true" },
        { "linger.ms", "0" },
        { "partitioner", "murmur2_random" },
        { "reconnect.backoff.max.ms", "1000" },
        { "socket.nagle.disable", "true" },
        { "transaction.timeout.ms", "60000" },
    };
    rd_kafka_conf_t *pc = ss_kafka_conf_new(&bc, c->bootstrap, pdef, sizeof pdef / sizeof pdef[0], err,
                                            errlen);
    if (!pc)
        return -EINVAL;
    /* Events, not callbacks: a commit flushing on a worker thread must not
     * run our code there (see the file comment). */
    rd_kafka_conf_set_events(pc, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
    rd_kafka_conf_set_log_cb(pc, ss_kafka_on_log);
    c->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    if (!c->prod) {
        rd_kafka_conf_destroy(pc);
        ss_errf(err, errlen, "kafka transactional producer: %s", e);
        return -EINVAL;
    }
    c->pq = rd_kafka_queue_get_main(c->prod);

    const ss_kv kdef[] = {
        { "group.id", c->resume_group },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "reconnect.backoff.max.ms", "1000" },
    };
    rd_kafka_conf_t *kc = ss_kafka_conf_new(&bc, c->bootstrap, kdef, sizeof kdef / sizeof kdef[0], err,
                                            errlen);
    if (!kc)
        return -EINVAL;
    rd_kafka_conf_set_log_cb(kc, ss_kafka_on_log);
    c->keeper = rd_kafka_new(RD_KAFKA_CONSUMER, kc, e, sizeof e);
    if (!c->keeper) {
        rd_kafka_conf_destroy(kc);
        ss_errf(err, errlen, "kafka offsets keeper: %s", e);
        return -EINVAL;
    }
    c->kq = rd_kafka_queue_new(c->keeper);
    return 0;
}

static void on_handle_closed(uv_handle_t *h) { ss_join_leave(h->data); }
static void on_part_closed(void *ctx) { ss_join_leave(ctx); }
static void finish_free(void *ctx);

ss_bus_consumer *ss_bus_consumer_create(uv_loop_t *loop, const ss_bus_consumer_conf *conf,
                                        const ss_bus_consumer_cbs *cbs, void *ctx, char *err,
                                        size_t errlen)
{
    ss_bus_consumer *c = calloc(1, sizeof *c);
    if (c)
        c->scratch = malloc(sizeof *c->scratch);
    if (!c || !c->scratch) {
        free(c);
        ss_errf(err, errlen, "bus consumer: out of memory");
        return NULL;
    }
    c->loop = loop;
    c->cbs = *cbs;
    c->ctx = ctx;
    c->bc = conf->bus;
    c->call_timeout_ms = conf->call_timeout_ms > 0 ? conf->call_timeout_ms : DEFAULT_CALL_TIMEOUT_MS;
    snprintf(c->bootstrap, sizeof c->bootstrap, "%s", conf->bootstrap);
    snprintf(c->group, sizeof c->group, "%s", conf->group);
    snprintf(c->resume_group, sizeof c->resume_group, "%s.resume", conf->group);
    snprintf(c->fetch_wait, sizeof c->fetch_wait, "%d",
             conf->fetch_wait_max_ms > 0 ? conf->fetch_wait_max_ms : 100);
    snprintf(c->instance, sizeof c->instance, "%s", conf->instance_id);
    snprintf(c->txn_id, sizeof c->txn_id, "sparkscale-actuator-%s", conf->instance_id);
    snprintf(c->dtopic, sizeof c->dtopic, "%s",
             c->bc->decisions_topic && c->bc->decisions_topic[0] ? c->bc->decisions_topic
                                                                  : "sparkscale.decisions");
    snprintf(c->atopic, sizeof c->atopic, "%s",
             c->bc->audit_topic && c->bc->audit_topic[0] ? c->bc->audit_topic : "sparkscale.audit");
    c->st.lag = -1;
    atomic_init(&c->stop, 0);
    if (make_clients(c, err, errlen) < 0) {
        if (c->cq)
            rd_kafka_queue_destroy(c->cq);
        if (c->pq)
            rd_kafka_queue_destroy(c->pq);
        if (c->cons)
            rd_kafka_destroy(c->cons);
        if (c->prod)
            rd_kafka_destroy(c->prod);
        free(c->scratch);
        free(c);
        return NULL;
    }
    ss_join_init(&c->handles, finish_free, c);
    int rc = ss_kafka_events_init(&c->cev, loop, on_cons_events, c);
    if (rc == 0) {
        ss_join_add(&c->handles);
        rc = ss_kafka_events_init(&c->pev, loop, on_prod_events, c);
        if (rc == 0)
            ss_join_add(&c->handles);
    }
    uv_timer_init(loop, &c->timer);
    uv_check_init(loop, &c->check);
    c->timer.data = c->check.data = c;
    ss_join_add(&c->handles);
    ss_join_add(&c->handles);
    if (rc < 0) {
        ss_errf(err, errlen, "bus consumer: cannot watch librdkafka's queues: %s", strerror(-rc));
        c->finished = 1;
        rd_kafka_queue_destroy(c->cq);
        rd_kafka_queue_destroy(c->pq);
        rd_kafka_queue_destroy(c->kq);
        rd_kafka_destroy(c->cons);
        rd_kafka_destroy(c->prod);
        rd_kafka_destroy(c->keeper);
        c->cq = c->pq = c->kq = NULL;
        c->cons = c->prod = c->keeper = NULL;
        if (c->cev.open)
            ss_kafka_events_close(&c->cev, on_part_closed, &c->handles);
        if (c->pev.open)
            ss_kafka_events_close(&c->pev, on_part_closed, &c->handles);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->check, on_handle_closed);
        c->timer.data = c->check.data = &c->handles;
        ss_join_arm(&c->handles);
        return NULL;
    }
    ss_kafka_events_watch(&c->cev, c->cq);
    ss_kafka_events_watch(&c->pev, c->pq);
    uv_timer_start(&c->timer, on_timer, TIMER_MS, TIMER_MS);
    uv_check_start(&c->check, on_check);
    init_job *ij = calloc(1, sizeof *ij);
    if (!ij) {
        ss_errf(err, errlen, "bus consumer: out of memory");
        /* Let close tear it down. */
        ss_bus_consumer_close(c, 0, NULL, NULL);
        return NULL;
    }
    lane_push(c, &c->txn_lane, &ij->j, init_run, init_after);
    ss_info("bus consumer: %s joining group %s at %s", c->instance, c->group, c->bootstrap);
    return c;
}

/* ---- owner's answers ---- */

int ss_bus_consumer_done(ss_bus_consumer *c, int32_t partition, int64_t offset,
                         const ss_actuation_result *audit)
{
    cpart *cp = part(c, partition);
    if (!cp || (cp->state != P_ACTIVE && cp->state != P_REVOKING))
        return -ENOENT;
    outrec *r = q_find(cp, offset);
    if (!r || r->state != R_OUTSTANDING)
        return -ENOENT;
    if (!audit) {
        r->state = R_DONE;
        c->st.done++;
        kick(c);
        return 0;
    }
    aentry *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    memcpy(c->scratch, audit, sizeof *c->scratch);
    c->scratch->has_decision_position = 1;
    c->scratch->decision_partition = partition;
    c->scratch->decision_offset = offset;
    snprintf(c->scratch->decision_topic, sizeof c->scratch->decision_topic, "%s", c->dtopic);
    int rc = ss_actuation_encode(c->scratch, &e->payload, &e->len);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->gen = cp->gen;
    e->partition = partition;
    e->offset = offset;
    e->ts_ms = r->ts_ms;
    e->audit_partition = audit_partition_of(c, partition);
    e->audit_offset = -1;
    snprintf(e->key, sizeof e->key, "%s", audit->cluster);
    queue_append(c, e);
    cp->uncommitted++;
    r->state = R_QUEUED;
    c->st.done++;
    return 0;
}

void ss_bus_consumer_abandon(ss_bus_consumer *c, int32_t partition, int64_t offset)
{
    cpart *cp = part(c, partition);
    outrec *r = cp ? q_find(cp, offset) : NULL;
    if (r && r->state == R_OUTSTANDING) {
        r->state = R_ABANDONED;
        c->st.abandoned++;
    }
}

void ss_bus_consumer_release(ss_bus_consumer *c, int32_t partition)
{
    cpart *cp = part(c, partition);
    if (cp && cp->state == P_REVOKING)
        cp->state = P_RELEASED;
    maybe_finish_revoke(c);
}

void ss_bus_consumer_get_stats(const ss_bus_consumer *c, ss_bus_consumer_stats *out)
{
    *out = c->st;
    out->queued_audits = c->nqueued;
    int64_t lag = 0;
    int any = 0;
    out->assigned_partitions = 0;
    for (int32_t p = 0; c->cons && p < c->nd; p++) {
        const cpart *cp = &c->parts[p];
        if (cp->state != P_ACTIVE)
            continue;
        out->assigned_partitions++;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(c->cons, c->dtopic, p, &lo, &hi) != 0 || hi < 0)
            continue;
        int64_t pos = cp->next >= 0 ? cp->next : cp->committed >= 0 ? cp->committed : lo;
        if (hi > pos)
            lag += hi - pos;
        any = 1;
    }
    out->lag = any ? lag : (c->nd ? 0 : -1);
}

/* ---- close ---- */

static void finish_free(void *ctx)
{
    ss_bus_consumer *c = ctx;
    void (*done)(void *) = c->done;
    void *done_ctx = c->done_ctx;
    for (int32_t p = 0; p < c->nd; p++)
        part_reset(&c->parts[p]);
    free(c->parts);
    free(c->audit_end);
    entries_free(c->q_head);
    if (c->revoking)
        rd_kafka_topic_partition_list_destroy(c->revoking);
    free(c->scratch);
    free(c);
    if (done)
        done(done_ctx);
}

typedef struct destroy_job {
    job j;
} destroy_job;

static void destroy_run(job *j)
{
    ss_bus_consumer *c = j->c;
    /* Blocking: librdkafka joins its threads. Off the loop. The group was
     * left through the queue already (or the close timed out): no second
     * close here, which would run our rebalance callback on this thread. */
    if (c->cons)
        rd_kafka_destroy_flags(c->cons, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (c->prod)
        rd_kafka_destroy(c->prod);
    if (c->keeper)
        rd_kafka_destroy_flags(c->keeper, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    c->cons = c->prod = c->keeper = NULL;
}

static void destroy_after(job *j)
{
    ss_bus_consumer *c = j->c;
    free(j);
    c->finished = 1;
    uv_timer_stop(&c->timer);
    uv_check_stop(&c->check);
    c->timer.data = c->check.data = &c->handles;
    ss_kafka_events_close(&c->cev, on_part_closed, &c->handles);
    ss_kafka_events_close(&c->pev, on_part_closed, &c->handles);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->check, on_handle_closed);
    ss_join_arm(&c->handles);
}

static void scanner_close_run(job *j)
{
    ss_bus_consumer *c = j->c;
    ss_audit_scanner_free(c->scanner);
    c->scanner = NULL;
}

static void scanner_close_after(job *j)
{
    ss_bus_consumer *c = j->c;
    free(j);
    /* Both lanes are idle now: the clients can go. */
    destroy_job *dj = calloc(1, sizeof *dj);
    if (!dj) {
        destroy_run(&(job){ .c = c });
        destroy_after(&(job){ .c = c });
        return;
    }
    lane_push(c, &c->txn_lane, &dj->j, destroy_run, destroy_after);
}

/* Close, step by step: every partition released and committed, then the
 * consumer leaves the group, then the clients are destroyed off the loop. */
static void maybe_close(ss_bus_consumer *c)
{
    if (!c->closing || c->finished || c->close_started >= 2)
        return;
    int64_t now = ss_mono_us();
    int timed_out = now >= c->close_deadline_us;
    if (c->close_started == 0) {
        int busy = c->txn != NULL || c->scan_lane.busy || c->txn_lane.busy;
        for (int32_t p = 0; !busy && p < c->nd; p++) {
            cpart *cp = &c->parts[p];
            if (cp->state == P_ACTIVE || cp->state == P_REVOKING)
                busy = 1;
            if (cp->state == P_RELEASED) {
                int64_t x = committable(cp);
                if (cp->uncommitted > 0 || (x >= 0 && x > cp->committed))
                    busy = 1;
            }
        }
        if (busy && !timed_out)
            return;
        if (busy)
            ss_warn("bus consumer: close: gave up waiting for the last commit (%zu audit "
                    "records not committed)",
                    c->nqueued);
        c->close_started = 1;
        if (c->cons && c->ready) {
            rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->cons, c->cq);
            if (e) {
                ss_warn("bus consumer: close: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        }
    }
    if (c->close_started == 1) {
        if (c->cons && c->ready && !rd_kafka_consumer_closed(c->cons) && !timed_out)
            return;
        if (c->txn || c->txn_lane.busy || c->scan_lane.busy)
            return;   /* the running job still uses the clients */
        c->close_started = 2;
        ss_info("bus consumer: left group %s; %" PRIu64 " audit records committed in %" PRIu64
                " transactions",
                c->group, c->st.audits_committed, c->st.transactions);
        atomic_store(&c->stop, 1);
        if (c->cq)
            ss_kafka_events_unwatch(c->cq);
        if (c->pq)
            ss_kafka_events_unwatch(c->pq);
        /* Drain what the queues still hold, then let them go. */
        serve_producer(c);
        serve_keeper(c);
        if (c->cq)
            rd_kafka_queue_destroy(c->cq);
        if (c->pq)
            rd_kafka_queue_destroy(c->pq);
        if (c->kq)
            rd_kafka_queue_destroy(c->kq);
        c->cq = c->pq = c->kq = NULL;
        job *sj = calloc(1, sizeof *sj);
        if (!sj) {
            scanner_close_run(&(job){ .c = c });
            scanner_close_after(&(job){ .c = c });
            return;
        }
        lane_push(c, &c->scan_lane, sj, scanner_close_run, scanner_close_after);
    }
}

void ss_bus_consumer_close(ss_bus_consumer *c, int timeout_ms, void (*done)(void *ctx), void *ctx)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->done = done;
    c->done_ctx = ctx;
    c->close_deadline_us = ss_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
    /* Revoke everything through the owner: it finishes and releases. */
    for (int32_t p = 0; p < c->nd; p++) {
        cpart *cp = &c->parts[p];
        if (cp->state == P_ACTIVE) {
            cp->state = P_REVOKING;
            c->cbs.revoked(c->ctx, p, 0);
        } else if (cp->state == P_SCANNING) {
            cp->state = P_RELEASED;
        }
    }
    if (!c->ready)
        atomic_store(&c->stop, 1);   /* init may be retrying: stop it */
    kick(c);
    maybe_close(c);
}
