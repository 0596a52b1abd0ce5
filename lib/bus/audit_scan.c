/* audit_scan.c: a blocking read of audit partition tails (read_committed),
 * for the consumer's recovery after an assignment or an aborted commit. */
#include "lib/bus/audit_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/bus/kafka.h"

#define MAX_AUDIT_PARTITIONS 100000

struct ss_audit_scanner {
    rd_kafka_t *rk;
    ss_actuation_result *scratch;     /* decoded records are large: one, reused */
};

ss_audit_scanner *ss_audit_scanner_new(const ss_bus_conf *bc, const char *bootstrap, char *err,
                                       size_t errlen)
{
    ss_audit_scanner *s = calloc(1, sizeof *s);
    if (s)
        s->scratch = malloc(sizeof *s->scratch);
    if (!s || !s->scratch) {
        free(s);
        ss_errf(err, errlen, "audit scan: out of memory");
        return NULL;
    }
    static const ss_kv defaults[] = {
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "enable.partition.eof", "true" },
        { "auto.offset.reset", "earliest" },
        { "isolation.level", "read_committed" },
        { "reconnect.backoff.max.ms", "1000" },
        { "socket.nagle.disable", "true" },
        /* The end of a partition is known from a fetch answer: with the
         * mock an empty one takes this long. */
        { "fetch.wait.max.ms", "10" },
    };
    ss_bus_conf scan_bc = *bc;
    scan_bc.client_id = "sparkscale-audit-scan";
    rd_kafka_conf_t *conf = ss_kafka_conf_new(&scan_bc, bootstrap, defaults,
                                              sizeof defaults / sizeof defaults[0], err, errlen);
    if (!conf) {
        free(s->scratch);
        free(s);
        return NULL;
    }
    /* librdkafka's consumer calls want a group; this reader only assigns
     * partitions, never joins it and never commits. */
    char e[512];
    rd_kafka_conf_set(conf, "group.id", "sparkscale-audit-scan", e, sizeof e);
    rd_kafka_conf_set_log_cb(conf, ss_kafka_on_log);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        ss_errf(err, errlen, "audit scan consumer: %s", e);
        free(s->scratch);
        free(s);
        return NULL;
    }
    rd_kafka_poll_set_consumer(s->rk);
    return s;
}

void ss_audit_scanner_free(ss_audit_scanner *s)
{
    if (!s)
        return;
    if (s->rk) {
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    free(s->scratch);
    free(s);
}

typedef struct scan_part {
    int32_t partition;
    int64_t from;
    int eof;
    int64_t end;
} scan_part;

static scan_part *find_part(scan_part *p, size_t n, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].partition == partition)
            return &p[i];
    return NULL;
}

static void match(const ss_audit_scan_req *reqs, size_t n, int32_t apart,
                  const ss_actuation_result *r, int64_t offset, ss_audit_scan_fn fn, void *arg)
{
    if (!r->has_decision_position)
        return;
    for (size_t i = 0; i < n; i++) {
        const ss_audit_scan_req *q = &reqs[i];
        /* A partition shared by several requests is read from the lowest
         * start: each request sees only its own part. */
        if (q->audit_partition != apart || q->decision_partition != r->decision_partition ||
            r->decision_offset < q->min_decision_offset || (q->from >= 0 && offset < q->from))
            continue;
        /* Several deployments may share an audit topic: positions in another
         * decisions topic are not ours. */
        if (r->decision_topic[0] && q->decision_topic && strcmp(r->decision_topic, q->decision_topic) != 0)
            continue;
        fn(arg, i, r);
    }
}

int ss_audit_scan(ss_audit_scanner *s, const char *topic, const ss_audit_scan_req *reqs, size_t n,
                  int timeout_ms, ss_audit_scan_fn fn, void *arg, int64_t *ends, char *err,
                  size_t errlen)
{
    if (n == 0)
        return 0;
    scan_part *parts = calloc(n, sizeof *parts);
    if (!parts)
        return -ENOMEM;
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        scan_part *p = find_part(parts, np, reqs[i].audit_partition);
        if (!p) {
            p = &parts[np++];
            p->partition = reqs[i].audit_partition;
            p->from = reqs[i].from;
            p->end = -1;
        } else if (reqs[i].from < 0 || (p->from >= 0 && reqs[i].from < p->from)) {
            p->from = reqs[i].from;
        }
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)np);
    for (size_t i = 0; i < np; i++)
        rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset =
            parts[i].from >= 0 ? parts[i].from : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t ae = rd_kafka_assign(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int rc = 0;
    if (ae) {
        ss_errf(err, errlen, "audit scan: assign %s: %s", topic, rd_kafka_err2str(ae));
        free(parts);
        return -EIO;
    }
    int64_t deadline = ss_mono_us() + (int64_t)timeout_ms * 1000;
    size_t open = np;
    while (open > 0) {
        int64_t left_ms = (deadline - ss_mono_us()) / 1000;
        if (left_ms <= 0) {
            ss_errf(err, errlen, "audit scan of %s: the end was not reached within %d ms", topic,
                    timeout_ms);
            rc = -ETIMEDOUT;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, left_ms > 100 ? 100 : (int)left_ms);
        if (!m)
            continue;
        scan_part *p = m->rkt ? find_part(parts, np, m->partition) : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p && !p->eof) {
                p->eof = 1;
                p->end = m->offset;
                open--;
            }
        } else if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                        m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                        m->err == RD_KAFKA_RESP_ERR__FATAL;
            if (fatal) {
                ss_errf(err, errlen, "audit scan of %s [%d]: %s", topic, (int)m->partition,
                        rd_kafka_message_errstr(m));
                rc = -EIO;
                rd_kafka_message_destroy(m);
                break;
            }
            ss_debug("audit scan: %s", rd_kafka_message_errstr(m));
        } else if (p) {
            /* A record read after EOF (written meanwhile) still counts. */
            if (p->eof && m->offset >= p->end)
                p->end = m->offset + 1;
            if (ss_actuation_decode(m->payload, m->len, s->scratch) == 0)
                match(reqs, n, p->partition, s->scratch, m->offset, fn, arg);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(s->rk, NULL);
    if (ends)
        for (size_t i = 0; i < n; i++) {
            scan_part *p = find_part(parts, np, reqs[i].audit_partition);
            ends[i] = p ? p->end : -1;
        }
    free(parts);
    return rc;
}
