/* bus_codec.c: ss_decision / ss_actuation_result <-> protobuf (sparkscale.v1).
 * Pure: the only place the daemon code meets generated protobuf-c types. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bus/record.h"
#include "proto/sparkscale.pb-c.h"

static const char *const reason_names[] = {
    "UNSPECIFIED", "UP", "DOWN", "STEADY", "AT_MIN", "AT_MAX", "HOLD_WINDOW",
    "HOLD_TOLERANCE", "HOLD_STALE", "HOLD_NO_DATA", "INITIAL", "POOL_LIMIT", "HEARTBEAT",
};

static const char *const outcome_names[] = {
    "UNSPECIFIED", "APPLIED", "SKIPPED_STALE", "SKIPPED_DUPLICATE", "EXPIRED", "FAILED", "DRY_RUN",
    "SUPERSEDED",
};

const char *ss_reason_code_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof reason_names / sizeof reason_names[0])
        return "?";
    return reason_names[code];
}

const char *ss_outcome_name(int outcome)
{
    if (outcome < 0 || (size_t)outcome >= sizeof outcome_names / sizeof outcome_names[0])
        return "?";
    return outcome_names[outcome];
}

/* Copies a decoded string into a fixed field; identifiers that do not fit
 * are an error (a cut cluster name would address another cluster). */
static int copy_id(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return -EINVAL;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return 0;
}

/* Human text is cut to fit instead (on a UTF-8 boundary). */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* A fixed char array is treated as at most cap bytes even if not terminated. */
static char *field_str(const char *s, size_t cap, char *tmp)
{
    size_t n = strnlen(s, cap);
    if (n < cap)
        return (char *)s;
    memcpy(tmp, s, cap - 1);
    tmp[cap - 1] = '\0';
    return tmp;
}

int ss_decision_encode(const ss_decision *d, uint8_t **out, size_t *outlen)
{
    if (!d || !out || !outlen || d->cluster[0] == '\0' || strnlen(d->cluster, SS_BUS_NAME_MAX) >= SS_BUS_NAME_MAX)
        return -EINVAL;
    if (d->napps > SS_DECISION_MAX_APPS || d->nremovable_workers > SS_DECISION_MAX_WORKERS ||
        (d->napps && !d->apps) || (d->nremovable_workers && !d->removable_workers))
        return -EINVAL;

    int rc = -ENOMEM;
    Sparkscale__V1__ScaleDecision m = SPARKSCALE__V1__SCALE_DECISION__INIT;
    Sparkscale__V1__AppDemand *apps = NULL, **app_ptrs = NULL;
    Sparkscale__V1__Worker *workers = NULL, **worker_ptrs = NULL;
    char reason_tmp[SS_DECISION_REASON_MAX];
    uint8_t *buf = NULL;

    m.schema_version = SS_BUS_SCHEMA_VERSION;
    m.cluster = (char *)d->cluster;
    m.producer_epoch = d->producer_epoch;
    m.sequence = d->sequence;
    m.decided_at_ms = d->decided_at_ms;
    m.current_workers = d->current_workers;
    m.busy_workers = d->busy_workers;
    m.desired_workers = d->desired_workers;
    m.recommended_workers = d->recommended_workers;
    m.executors_per_worker = d->executors_per_worker;
    m.reason = field_str(d->reason, sizeof d->reason, reason_tmp);
    m.reason_code = (Sparkscale__V1__ReasonCode)d->reason_code;
    m.dry_run = d->dry_run != 0;
    m.expires_at_ms = d->expires_at_ms;

    if (d->napps) {
        apps = calloc(d->napps, sizeof *apps);
        app_ptrs = calloc(d->napps, sizeof *app_ptrs);
        if (!apps || !app_ptrs)
            goto cleanup;
    }
    for (size_t i = 0; i < d->napps; i++) {
        const ss_app_demand *a = &d->apps[i];
        if (strnlen(a->app_id, sizeof a->app_id) >= sizeof a->app_id) {
            rc = -EINVAL;
            goto cleanup;
        }
        sparkscale__v1__app_demand__init(&apps[i]);
        apps[i].app_id = (char *)a->app_id;
        apps[i].target_executors = a->target_executors;
        apps[i].max_needed_executors = a->max_needed_executors;
        apps[i].all_executors = a->all_executors;
        apps[i].start_ms = a->start_ms;
        app_ptrs[i] = &apps[i];
    }
    m.n_apps = d->napps;
    m.apps = app_ptrs;

    if (d->nremovable_workers) {
        workers = calloc(d->nremovable_workers, sizeof *workers);
        worker_ptrs = calloc(d->nremovable_workers, sizeof *worker_ptrs);
        if (!workers || !worker_ptrs)
            goto cleanup;
    }
    for (size_t i = 0; i < d->nremovable_workers; i++) {
        const ss_worker_ref *w = &d->removable_workers[i];
        if (strnlen(w->id, sizeof w->id) >= sizeof w->id ||
            strnlen(w->host, sizeof w->host) >= sizeof w->host || w->port < 0 || w->port > 65535) {
            rc = -EINVAL;
            goto cleanup;
        }
        sparkscale__v1__worker__init(&workers[i]);
        workers[i].id = (char *)w->id;
        workers[i].host = (char *)w->host;
        workers[i].port = (uint32_t)w->port;
        worker_ptrs[i] = &workers[i];
    }
    m.n_removable_workers = d->nremovable_workers;
    m.removable_workers = worker_ptrs;

    size_t len = sparkscale__v1__scale_decision__get_packed_size(&m);
    buf = malloc(len ? len : 1);
    if (!buf)
        goto cleanup;
    *outlen = sparkscale__v1__scale_decision__pack(&m, buf);
    *out = buf;
    buf = NULL;
    rc = 0;
cleanup:
    free(buf);
    free(apps);
    free(app_ptrs);
    free(workers);
    free(worker_ptrs);
    return rc;
}

int ss_decision_decode(const uint8_t *buf, size_t len, ss_decision *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return -EINVAL;
    if (len > SS_BUS_MAX_RECORD_BYTES)
        return -E2BIG;
    Sparkscale__V1__ScaleDecision *m = sparkscale__v1__scale_decision__unpack(NULL, len, buf);
    if (!m)
        return -EBADMSG;

    int rc = 0;
    ss_app_demand *apps = NULL;
    ss_worker_ref *workers = NULL;
    if (m->n_apps > SS_DECISION_MAX_APPS || m->n_removable_workers > SS_DECISION_MAX_WORKERS) {
        rc = -E2BIG;
        goto cleanup;
    }
    /* An empty cluster cannot be routed or ordered: not a decision. */
    if (!m->cluster || m->cluster[0] == '\0') {
        rc = -EBADMSG;
        goto cleanup;
    }
    if ((rc = copy_id(out->cluster, sizeof out->cluster, m->cluster)) < 0)
        goto cleanup;
    if (m->n_apps && !(apps = calloc(m->n_apps, sizeof *apps))) {
        rc = -ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < m->n_apps; i++) {
        const Sparkscale__V1__AppDemand *a = m->apps[i];
        if ((rc = copy_id(apps[i].app_id, sizeof apps[i].app_id, a->app_id)) < 0)
            goto cleanup;
        apps[i].target_executors = a->target_executors;
        apps[i].max_needed_executors = a->max_needed_executors;
        apps[i].all_executors = a->all_executors;
        apps[i].start_ms = a->start_ms;
    }
    if (m->n_removable_workers && !(workers = calloc(m->n_removable_workers, sizeof *workers))) {
        rc = -ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < m->n_removable_workers; i++) {
        const Sparkscale__V1__Worker *w = m->removable_workers[i];
        if ((rc = copy_id(workers[i].id, sizeof workers[i].id, w->id)) < 0 ||
            (rc = copy_id(workers[i].host, sizeof workers[i].host, w->host)) < 0)
            goto cleanup;
        if (w->port > 65535) {
            rc = -EINVAL;
            goto cleanup;
        }
        workers[i].port = (int32_t)w->port;
    }
    out->schema_version = m->schema_version;
    out->producer_epoch = m->producer_epoch;
    out->sequence = m->sequence;
    out->decided_at_ms = m->decided_at_ms;
    out->current_workers = m->current_workers;
    out->busy_workers = m->busy_workers;
    out->desired_workers = m->desired_workers;
    out->recommended_workers = m->recommended_workers;
    out->executors_per_worker = m->executors_per_worker;
    copy_text(out->reason, sizeof out->reason, m->reason);
    out->reason_code = (int)m->reason_code;
    out->dry_run = m->dry_run ? 1 : 0;
    out->expires_at_ms = m->expires_at_ms;
    out->apps = apps;
    out->napps = m->n_apps;
    out->removable_workers = workers;
    out->nremovable_workers = m->n_removable_workers;
    apps = NULL;
    workers = NULL;
cleanup:
    if (rc < 0)
        memset(out, 0, sizeof *out);
    free(apps);
    free(workers);
    sparkscale__v1__scale_decision__free_unpacked(m, NULL);
    return rc;
}

void ss_decision_release(ss_decision *d)
{
    if (!d)
        return;
    free((void *)d->apps);
    free((void *)d->removable_workers);
    d->apps = NULL;
    d->removable_workers = NULL;
    d->napps = 0;
    d->nremovable_workers = 0;
}

/* Worker lists of a result: w[i] point into storage (n entries). */
static int workers_out(const ss_worker_ref *in, size_t n, Sparkscale__V1__Worker *store,
                       Sparkscale__V1__Worker **ptrs)
{
    for (size_t i = 0; i < n; i++) {
        if (strnlen(in[i].id, sizeof in[i].id) >= sizeof in[i].id ||
            strnlen(in[i].host, sizeof in[i].host) >= sizeof in[i].host || in[i].port < 0 ||
            in[i].port > 65535)
            return -EINVAL;
        sparkscale__v1__worker__init(&store[i]);
        store[i].id = (char *)in[i].id;
        store[i].host = (char *)in[i].host;
        store[i].port = (uint32_t)in[i].port;
        ptrs[i] = &store[i];
    }
    return 0;
}

/* The lists and sub-messages of one result being encoded. Large: callers
 * allocate it. */
typedef struct result_parts {
    Sparkscale__V1__Worker removed[SS_AUDIT_MAX_WORKERS], *removed_p[SS_AUDIT_MAX_WORKERS];
    Sparkscale__V1__Worker kept_w[SS_AUDIT_MAX_WORKERS];
    Sparkscale__V1__KeptWorker kept[SS_AUDIT_MAX_WORKERS], *kept_p[SS_AUDIT_MAX_WORKERS];
    char kept_reason[SS_AUDIT_MAX_WORKERS][SS_AUDIT_KEPT_REASON_MAX];
    Sparkscale__V1__KafkaPosition pos;
    Sparkscale__V1__ExecResult exec;
    char err[SS_DECISION_REASON_MAX], note[SS_DECISION_REASON_MAX], out[SS_AUDIT_OUTPUT_MAX];
    char id[SS_BUS_NAME_MAX], be[32], topic[SS_BUS_TOPIC_MAX];
} result_parts;

int ss_actuation_encode(const ss_actuation_result *r, uint8_t **out, size_t *outlen)
{
    if (!r || !out || !outlen || r->cluster[0] == '\0' || strnlen(r->cluster, SS_BUS_NAME_MAX) >= SS_BUS_NAME_MAX)
        return -EINVAL;
    if (r->nremoved > SS_AUDIT_MAX_WORKERS || r->nkept > SS_AUDIT_MAX_WORKERS)
        return -EINVAL;
    result_parts *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    Sparkscale__V1__ActuationResult m = SPARKSCALE__V1__ACTUATION_RESULT__INIT;
    m.schema_version = SS_BUS_SCHEMA_VERSION;
    m.cluster = (char *)r->cluster;
    m.decision_epoch = r->decision_epoch;
    m.decision_sequence = r->decision_sequence;
    m.outcome = (Sparkscale__V1__Outcome)r->outcome;
    m.replicas_before = r->replicas_before;
    m.replicas_after = r->replicas_after;
    m.error = field_str(r->error, sizeof r->error, p->err);
    m.handled_at_ms = r->handled_at_ms;
    m.actuator_id = field_str(r->actuator_id, sizeof r->actuator_id, p->id);
    m.backend = field_str(r->backend, sizeof r->backend, p->be);
    if (r->has_decision_position) {
        sparkscale__v1__kafka_position__init(&p->pos);
        p->pos.partition = r->decision_partition;
        p->pos.offset = r->decision_offset;
        p->pos.topic = field_str(r->decision_topic, sizeof r->decision_topic, p->topic);
        m.decision_position = &p->pos;
    }
    m.desired_workers = r->desired_workers;
    m.workers_to_remove = r->workers_to_remove;
    m.workers_removed = r->workers_removed;
    if ((rc = workers_out(r->removed, r->nremoved, p->removed, p->removed_p)) < 0)
        goto out;
    m.n_removed_workers = r->nremoved;
    m.removed_workers = r->nremoved ? p->removed_p : NULL;
    for (size_t i = 0; i < r->nkept; i++) {
        Sparkscale__V1__Worker *wp[1];
        if ((rc = workers_out(&r->kept[i].worker, 1, &p->kept_w[i], wp)) < 0)
            goto out;
        sparkscale__v1__kept_worker__init(&p->kept[i]);
        p->kept[i].worker = &p->kept_w[i];
        p->kept[i].reason = field_str(r->kept[i].reason, sizeof r->kept[i].reason, p->kept_reason[i]);
        p->kept_p[i] = &p->kept[i];
    }
    m.n_kept_workers = r->nkept;
    m.kept_workers = r->nkept ? p->kept_p : NULL;
    m.note = field_str(r->note, sizeof r->note, p->note);
    m.superseded_by_sequence = r->superseded_by;
    if (r->has_exec) {
        sparkscale__v1__exec_result__init(&p->exec);
        p->exec.exit_status = r->exec_exit_status;
        p->exec.signal = r->exec_signal;
        p->exec.timed_out = r->exec_timed_out != 0;
        p->exec.output_tail = field_str(r->exec_output, sizeof r->exec_output, p->out);
        m.exec = &p->exec;
    }
    size_t len = sparkscale__v1__actuation_result__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    *outlen = sparkscale__v1__actuation_result__pack(&m, buf);
    *out = buf;
out:
    free(p);
    return rc;
}

/* A decoded worker into a fixed one; -EINVAL when an identifier does not fit. */
static int worker_in(const Sparkscale__V1__Worker *w, ss_worker_ref *out)
{
    if (!w)
        return -EBADMSG;
    if (copy_id(out->id, sizeof out->id, w->id) < 0 || copy_id(out->host, sizeof out->host, w->host) < 0 ||
        w->port > 65535)
        return -EINVAL;
    out->port = (int32_t)w->port;
    return 0;
}

int ss_actuation_decode(const uint8_t *buf, size_t len, ss_actuation_result *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return -EINVAL;
    if (len > SS_BUS_MAX_RECORD_BYTES)
        return -E2BIG;
    Sparkscale__V1__ActuationResult *m = sparkscale__v1__actuation_result__unpack(NULL, len, buf);
    if (!m)
        return -EBADMSG;
    int rc = 0;
    if (!m->cluster || m->cluster[0] == '\0')
        rc = -EBADMSG;
    else if ((rc = copy_id(out->cluster, sizeof out->cluster, m->cluster)) == 0) {
        out->schema_version = m->schema_version;
        out->decision_epoch = m->decision_epoch;
        out->decision_sequence = m->decision_sequence;
        out->outcome = (int)m->outcome;
        out->replicas_before = m->replicas_before;
        out->replicas_after = m->replicas_after;
        copy_text(out->error, sizeof out->error, m->error);
        out->handled_at_ms = m->handled_at_ms;
        copy_text(out->actuator_id, sizeof out->actuator_id, m->actuator_id);
        copy_text(out->backend, sizeof out->backend, m->backend);
        if (m->decision_position) {
            out->has_decision_position = 1;
            out->decision_partition = m->decision_position->partition;
            out->decision_offset = m->decision_position->offset;
            copy_text(out->decision_topic, sizeof out->decision_topic, m->decision_position->topic);
        }
        out->desired_workers = m->desired_workers;
        out->workers_to_remove = m->workers_to_remove;
        out->workers_removed = m->workers_removed;
        /* Lists beyond the bound are cut: the counts above stay exact. */
        for (size_t i = 0; rc == 0 && i < m->n_removed_workers && i < SS_AUDIT_MAX_WORKERS; i++) {
            rc = worker_in(m->removed_workers[i], &out->removed[i]);
            out->nremoved = i + 1;
        }
        for (size_t i = 0; rc == 0 && i < m->n_kept_workers && i < SS_AUDIT_MAX_WORKERS; i++) {
            const Sparkscale__V1__KeptWorker *k = m->kept_workers[i];
            rc = worker_in(k->worker, &out->kept[i].worker);
            copy_text(out->kept[i].reason, sizeof out->kept[i].reason, k->reason);
            out->nkept = i + 1;
        }
        copy_text(out->note, sizeof out->note, m->note);
        out->superseded_by = m->superseded_by_sequence;
        if (m->exec) {
            out->has_exec = 1;
            out->exec_exit_status = m->exec->exit_status;
            out->exec_signal = m->exec->signal;
            out->exec_timed_out = m->exec->timed_out ? 1 : 0;
            copy_text(out->exec_output, sizeof out->exec_output, m->exec->output_tail);
        }
    }
    if (rc < 0)
        memset(out, 0, sizeof *out);
    sparkscale__v1__actuation_result__free_unpacked(m, NULL);
    return rc;
}
