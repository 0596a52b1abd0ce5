/* records.c: prints decoded bus records, as one text line or one JSON
 * object each; free text is quoted so one record stays one line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/base/str.h"
#include "tools/sparkscalectl/ctl.h"

/* 2026-11-21T09:30:01.123Z */
static void iso_ms(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, len, "%" PRId64, ms);
        return;
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", date, (int)(ms % 1000));
}

static json_t *json_str_n(const void *p, size_t n)
{
    /* Keys are arbitrary bytes: invalid UTF-8 would make jansson refuse. */
    json_t *s = json_stringn(p ? (const char *)p : "", p ? n : 0);
    if (!s) {
        char *hex = malloc(n * 2 + 5);
        if (!hex)
            return json_null();
        strcpy(hex, "hex:");
        for (size_t i = 0; i < n; i++)
            sprintf(hex + 4 + i * 2, "%02x", ((const unsigned char *)p)[i]);
        s = json_string(hex);
        free(hex);
    }
    return s;
}

static void emit_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(o);
}

static json_t *json_base(const char *type, const ss_bus_record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "topic", json_string(rec->topic));
    json_object_set_new(o, "partition", json_integer(rec->partition));
    json_object_set_new(o, "offset", json_integer(rec->offset));
    json_object_set_new(o, "key", json_str_n(rec->key, rec->key_len));
    return o;
}

static int key_matches(const ss_bus_record *rec, const char *cluster)
{
    return rec->key && rec->key_len == strlen(cluster) && memcmp(rec->key, cluster, rec->key_len) == 0;
}

void ctl_print_error(int json, const ss_bus_record *rec, const char *what, int rc)
{
    char msg[256];
    snprintf(msg, sizeof msg, "cannot decode %s (%zu bytes): %s", what, rec->len,
             rc == -EBADMSG ? "not a valid record of this type (bad protobuf, or no cluster)"
             : rc == -E2BIG ? "beyond the size bounds"
             : rc == -EINVAL ? "an identifier is too long"
                             : strerror(-rc));
    if (json) {
        json_t *o = json_base("error", rec);
        json_object_set_new(o, "error", json_string(msg));
        emit_json(o);
    } else {
        printf("ERROR %s[%d]@%" PRId64 ": %s\n", rec->topic, (int)rec->partition, rec->offset, msg);
    }
}

void ctl_print_decision(int json, const ss_bus_record *rec, const ss_decision *d)
{
    char when[40], exp[40];
    iso_ms(d->decided_at_ms, when, sizeof when);
    iso_ms(d->expires_at_ms, exp, sizeof exp);
    if (json) {
        json_t *o = json_base("decision", rec);
        json_object_set_new(o, "schema_version", json_integer(d->schema_version));
        json_object_set_new(o, "cluster", json_string(d->cluster));
        json_object_set_new(o, "producer_epoch", json_integer(d->producer_epoch));
        json_object_set_new(o, "sequence", json_integer((json_int_t)d->sequence));
        json_object_set_new(o, "decided_at_ms", json_integer(d->decided_at_ms));
        json_object_set_new(o, "decided_at", json_string(when));
        json_object_set_new(o, "current_workers", json_integer(d->current_workers));
        json_object_set_new(o, "busy_workers", json_integer(d->busy_workers));
        json_object_set_new(o, "desired_workers", json_integer(d->desired_workers));
        json_object_set_new(o, "recommended_workers", json_integer(d->recommended_workers));
        json_object_set_new(o, "executors_per_worker", json_integer(d->executors_per_worker));
        json_t *apps = json_array();
        for (size_t i = 0; i < d->napps; i++) {
            const ss_app_demand *a = &d->apps[i];
            json_t *ao = json_object();
            json_object_set_new(ao, "app_id", json_string(a->app_id));
            json_object_set_new(ao, "target_executors", json_integer(a->target_executors));
            json_object_set_new(ao, "max_needed_executors", json_integer(a->max_needed_executors));
            json_object_set_new(ao, "all_executors", json_integer(a->all_executors));
            json_object_set_new(ao, "start_ms", json_integer(a->start_ms));
            json_array_append_new(apps, ao);
        }
        json_object_set_new(o, "apps", apps);
        json_t *ws = json_array();
        for (size_t i = 0; i < d->nremovable_workers; i++) {
            const ss_worker_ref *w = &d->removable_workers[i];
            json_t *wo = json_object();
            json_object_set_new(wo, "id", json_string(w->id));
            json_object_set_new(wo, "host", json_string(w->host));
            json_object_set_new(wo, "port", json_integer(w->port));
            json_array_append_new(ws, wo);
        }
        json_object_set_new(o, "removable_workers", ws);
        json_object_set_new(o, "reason", json_string(d->reason));
        json_object_set_new(o, "reason_code", json_string(ss_reason_code_name(d->reason_code)));
        json_object_set_new(o, "dry_run", json_boolean(d->dry_run));
        json_object_set_new(o, "expires_at_ms", json_integer(d->expires_at_ms));
        emit_json(o);
        return;
    }
    printf("%s decision %s #%" PRIu64 " epoch=%" PRId64 " desired=%d current=%d busy=%d recommended=%d "
           "code=%s",
           when, d->cluster, d->sequence, d->producer_epoch, d->desired_workers, d->current_workers,
           d->busy_workers, d->recommended_workers, ss_reason_code_name(d->reason_code));
    if (d->dry_run)
        printf(" dry_run");
    printf(" apps=%zu", d->napps);
    if (d->nremovable_workers) {
        printf(" removable=");
        for (size_t i = 0; i < d->nremovable_workers; i++)
            printf("%s%s:%d", i ? "," : "", d->removable_workers[i].host, d->removable_workers[i].port);
    }
    printf(" expires=%s reason=", exp);
    ss_fquote(stdout, d->reason);
    if (!key_matches(rec, d->cluster))
        printf(" key_mismatch");
    putchar('\n');
}

static json_t *worker_json(const ss_worker_ref *w)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(w->id));
    json_object_set_new(o, "host", json_string(w->host));
    json_object_set_new(o, "port", json_integer(w->port));
    return o;
}

/* The actuator's fields of a result (absent in records written before them). */
static void result_details_json(json_t *o, const ss_actuation_result *r)
{
    if (r->has_decision_position) {
        json_object_set_new(o, "decision_topic", json_string(r->decision_topic));
        json_object_set_new(o, "decision_partition", json_integer(r->decision_partition));
        json_object_set_new(o, "decision_offset", json_integer(r->decision_offset));
    }
    json_object_set_new(o, "desired_workers", json_integer(r->desired_workers));
    json_object_set_new(o, "workers_to_remove", json_integer(r->workers_to_remove));
    json_object_set_new(o, "workers_removed", json_integer(r->workers_removed));
    json_t *rm = json_array();
    for (size_t i = 0; i < r->nremoved; i++)
        json_array_append_new(rm, worker_json(&r->removed[i]));
    json_object_set_new(o, "removed_workers", rm);
    json_t *kept = json_array();
    for (size_t i = 0; i < r->nkept; i++) {
        json_t *k = worker_json(&r->kept[i].worker);
        json_object_set_new(k, "reason", json_string(r->kept[i].reason));
        json_array_append_new(kept, k);
    }
    json_object_set_new(o, "kept_workers", kept);
    json_object_set_new(o, "note", json_string(r->note));
    if (r->outcome == SS_OUTCOME_SUPERSEDED)
        json_object_set_new(o, "superseded_by_sequence", json_integer((json_int_t)r->superseded_by));
    if (r->has_exec) {
        json_t *e = json_object();
        json_object_set_new(e, "exit_status", json_integer(r->exec_exit_status));
        json_object_set_new(e, "signal", json_integer(r->exec_signal));
        json_object_set_new(e, "timed_out", json_boolean(r->exec_timed_out));
        json_object_set_new(e, "output_tail", json_string(r->exec_output));
        json_object_set_new(o, "exec", e);
    }
}

void ctl_print_result(int json, const ss_bus_record *rec, const ss_actuation_result *r)
{
    char when[40];
    iso_ms(r->handled_at_ms, when, sizeof when);
    if (json) {
        json_t *o = json_base("result", rec);
        json_object_set_new(o, "schema_version", json_integer(r->schema_version));
        json_object_set_new(o, "cluster", json_string(r->cluster));
        json_object_set_new(o, "decision_epoch", json_integer(r->decision_epoch));
        json_object_set_new(o, "decision_sequence", json_integer((json_int_t)r->decision_sequence));
        json_object_set_new(o, "outcome", json_string(ss_outcome_name(r->outcome)));
        json_object_set_new(o, "replicas_before", json_integer(r->replicas_before));
        json_object_set_new(o, "replicas_after", json_integer(r->replicas_after));
        json_object_set_new(o, "error", json_string(r->error));
        json_object_set_new(o, "handled_at_ms", json_integer(r->handled_at_ms));
        json_object_set_new(o, "handled_at", json_string(when));
        json_object_set_new(o, "actuator_id", json_string(r->actuator_id));
        json_object_set_new(o, "backend", json_string(r->backend));
        result_details_json(o, r);
        emit_json(o);
        return;
    }
    printf("%s result %s #%" PRIu64 " %s %d->%d epoch=%" PRId64 " actuator=%s backend=%s", when, r->cluster,
           r->decision_sequence, ss_outcome_name(r->outcome), r->replicas_before, r->replicas_after,
           r->decision_epoch, r->actuator_id[0] ? r->actuator_id : "-", r->backend[0] ? r->backend : "-");
    if (r->has_decision_position)
        printf(" decision=%d@%" PRId64, (int)r->decision_partition, r->decision_offset);
    if (r->workers_to_remove > 0) {
        printf(" removed=%d/%d", r->workers_removed, r->workers_to_remove);
        for (size_t i = 0; i < r->nremoved; i++)
            printf("%s%s:%d", i ? "," : " hosts=", r->removed[i].host, r->removed[i].port);
        for (size_t i = 0; i < r->nkept; i++) {
            printf("%s%s:%d=", i ? "," : " kept=", r->kept[i].worker.host, r->kept[i].worker.port);
            ss_fquote(stdout, r->kept[i].reason);
        }
    }
    if (r->outcome == SS_OUTCOME_SUPERSEDED)
        printf(" superseded_by=#%" PRIu64, r->superseded_by);
    if (r->has_exec)
        printf(" exit=%d%s", r->exec_exit_status, r->exec_timed_out ? " timed_out" : "");
    if (r->error[0]) {
        printf(" error=");
        ss_fquote(stdout, r->error);
    }
    if (r->note[0]) {
        printf(" note=");
        ss_fquote(stdout, r->note);
    }
    if (!key_matches(rec, r->cluster))
        printf(" key_mismatch");
    putchar('\n');
}
