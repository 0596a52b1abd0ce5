/* bus_reader.c: a plain blocking Kafka reader over whole topics (assign, no
 * group membership, no commits, committed records only) for sparkscalectl
 * and tests. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "lib/bus/reader.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

#define MAX_PARTITIONS 100000

typedef struct reader_part {
    char *topic;      /* owned */
    int32_t partition;
    int eof;          /* reached the end, nothing newer read since */
} reader_part;

struct ss_bus_reader {
    rd_kafka_t *rk;
    rd_kafka_message_t *cur;   /* the record last returned; freed on the next call */
    reader_part *parts;
    size_t nparts;
    int caught_up_reported;
};


static void reader_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    ss_log(level <= 3 ? SS_LOG_WARN : SS_LOG_DEBUG, "rdkafka %s: %s", fac, buf);
}

static int add_partitions(ss_bus_reader *r, const char *topic, int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
    if (!rkt) {
        ss_errf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -EINVAL;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(r->rk, 0, rkt, &md, timeout_ms > 0 ? timeout_ms : 1);
    rd_kafka_topic_destroy(rkt);
    if (e) {
        ss_errf(err, errlen, "metadata for %s: %s", topic, rd_kafka_err2str(e));
        return -EIO;
    }
    int rc = 0;
    if (md->topic_cnt != 1 || md->topics[0].err) {
        ss_errf(err, errlen, "topic %s: %s", topic,
                md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
        rc = -ENOENT;
        goto out;
    }
    const struct rd_kafka_metadata_topic *t = &md->topics[0];
    if (t->partition_cnt <= 0 || r->nparts + (size_t)t->partition_cnt > MAX_PARTITIONS) {
        ss_errf(err, errlen, "topic %s: %d partitions", topic, t->partition_cnt);
        rc = -EINVAL;
        goto out;
    }
    reader_part *np = realloc(r->parts, (r->nparts + (size_t)t->partition_cnt) * sizeof *np);
    if (!np) {
        rc = -ENOMEM;
        goto out;
    }
    r->parts = np;
    for (int i = 0; i < t->partition_cnt; i++) {
        reader_part *p = &r->parts[r->nparts];
        p->topic = strdup(topic);
        if (!p->topic) {
            rc = -ENOMEM;
            goto out;
        }
        p->partition = t->partitions[i].id;
        p->eof = 0;
        r->nparts++;
    }
out:
    rd_kafka_metadata_destroy(md);
    return rc;
}

int ss_bus_reader_open(const char *brokers, const char *const *topics, size_t ntopics,
                       int from_beginning, const ss_kv *props, size_t nprops, int timeout_ms,
                       ss_bus_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!brokers || !*brokers || !topics || ntopics == 0) {
        ss_errf(err, errlen, "no brokers or topics");
        return -EINVAL;
    }
    ss_bus_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;

    char e[512], group[96];
    /* A group of its own: reading never disturbs the actuators' offsets. */
    snprintf(group, sizeof group, "sparkscalectl-%ld-%lld", (long)getpid(), (long long)ss_mono_us());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct { const char *k, *v; } kv[] = {
        { "bootstrap.servers", brokers },
        { "group.id", group },
        { "client.id", "sparkscalectl" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "enable.partition.eof", "true" },
        { "auto.offset.reset", from_beginning ? "earliest" : "latest" },
        { "allow.auto.create.topics", "false" },
        /* Audit records are written in transactions: show committed ones only. */
        { "isolation.level", "read_committed" },
        { "reconnect.backoff.max.ms", "1000" },
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(conf, kv[i].k, kv[i].v, e, sizeof e) != RD_KAFKA_CONF_OK) {
            ss_errf(err, errlen, "%s: %s", kv[i].k, e);
            goto fail_conf;
        }
    for (size_t i = 0; i < nprops; i++)
        if (rd_kafka_conf_set(conf, props[i].key, props[i].value, e, sizeof e) != RD_KAFKA_CONF_OK) {
            ss_errf(err, errlen, "property %s: %s", props[i].key, e);
            goto fail_conf;
        }
    rd_kafka_conf_set_log_cb(conf, reader_log);
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!r->rk) {
        ss_errf(err, errlen, "kafka consumer: %s", e);
        goto fail_conf;
    }
    rd_kafka_poll_set_consumer(r->rk);

    int rc = 0;
    size_t found = 0;
    char missing[256] = "";
    for (size_t i = 0; i < ntopics; i++) {
        rc = add_partitions(r, topics[i], timeout_ms, err, errlen);
        if (rc == -ENOENT) {
            /* e.g. the audit topic before any actuator ran: read the others. */
            ss_warn("%s: skipped", err);
            snprintf(missing, sizeof missing, "%s", err);
            continue;
        }
        if (rc < 0)
            goto fail;
        found++;
    }
    if (!found) {
        ss_errf(err, errlen, "%s", missing[0] ? missing : "no topics");
        rc = -ENOENT;
        goto fail;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)r->nparts);
    for (size_t i = 0; i < r->nparts; i++)
        rd_kafka_topic_partition_list_add(l, r->parts[i].topic, r->parts[i].partition)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_resp_err_t ae = rd_kafka_assign(r->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (ae) {
        ss_errf(err, errlen, "assign: %s", rd_kafka_err2str(ae));
        rc = -EIO;
        goto fail;
    }
    *out = r;
    return 0;

fail_conf:
    rd_kafka_conf_destroy(conf);
    rc = -EINVAL;
fail:
    ss_bus_reader_close(r);
    return rc;
}

static reader_part *find_part(ss_bus_reader *r, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < r->nparts; i++)
        if (r->parts[i].partition == partition && strcmp(r->parts[i].topic, topic) == 0)
            return &r->parts[i];
    return NULL;
}

static int all_eof(const ss_bus_reader *r)
{
    for (size_t i = 0; i < r->nparts; i++)
        if (!r->parts[i].eof)
            return 0;
    return 1;
}

int ss_bus_reader_next(ss_bus_reader *r, int timeout_ms, ss_bus_record *rec, char *err, size_t errlen)
{
    if (r->cur) {
        rd_kafka_message_destroy(r->cur);
        r->cur = NULL;
    }
    int64_t deadline = ss_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
    for (;;) {
        int64_t left_ms = (deadline - ss_mono_us()) / 1000;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, left_ms > 0 ? (int)left_ms : 0);
        if (!m) {
            if (ss_mono_us() < deadline)
                continue;
            return 0;
        }
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
        reader_part *p = m->rkt ? find_part(r, topic, m->partition) : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p)
                p->eof = 1;
            rd_kafka_message_destroy(m);
            if (all_eof(r) && !r->caught_up_reported) {
                r->caught_up_reported = 1;
                return SS_BUS_READER_CAUGHT_UP;
            }
            continue;
        }
        if (m->err) {
            ss_errf(err, errlen, "%s [%d]: %s", topic, (int)m->partition, rd_kafka_message_errstr(m));
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
            rd_kafka_message_destroy(m);
            return fatal ? -EIO : -EAGAIN;
        }
        if (p) {
            p->eof = 0;
            r->caught_up_reported = 0;
        }
        r->cur = m;
        rec->topic = topic;
        rec->partition = m->partition;
        rec->offset = m->offset;
        rec->key = m->key;
        rec->key_len = m->key ? m->key_len : 0;
        rec->payload = m->payload;
        rec->len = m->payload ? m->len : 0;
        rd_kafka_timestamp_type_t tt;
        rec->timestamp_ms = rd_kafka_message_timestamp(m, &tt);
        return 1;
    }
}

void ss_bus_reader_close(ss_bus_reader *r)
{
    if (!r)
        return;
    if (r->cur)
        rd_kafka_message_destroy(r->cur);
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    for (size_t i = 0; i < r->nparts; i++)
        free(r->parts[i].topic);
    free(r->parts);
    free(r);
}
