/* sparkscalectl.c: operator tool. `sparkscalectl audit` prints the decision
 * bus (decisions and actuation results) decoded, one record per line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/bus/bus.h"
#include "lib/base/log.h"

#define MAX_PROPS 64

static const char usage_text[] =
    "usage: sparkscalectl audit --brokers LIST [options]\n"
    "       sparkscalectl --help\n"
    "\n"
    "audit: read the decision bus and print every record decoded, one per line:\n"
    "  ScaleDecision records of the decisions topic and ActuationResult records\n"
    "  of the audit topic, partition by partition in offset order.\n"
    "\n"
    "options:\n"
    "  --brokers LIST         Kafka bootstrap servers, host:port[,host:port...]\n"
    "                         (GET /v1/kafka on sparkscaled tells the embedded one)\n"
    "  --follow, -f           keep waiting for new records (stop with Ctrl-C)\n"
    "  --json                 one JSON object per line instead of text\n"
    "  --from-beginning       read the topics from their start (the default)\n"
    "  --from-end             only records written from now on (implies --follow)\n"
    "  --decisions-topic T    default sparkscale.decisions\n"
    "  --audit-topic T        default sparkscale.audit\n"
    "  --wait-s N             without --follow: give up after N s if the end of the\n"
    "                         topics is not reached (default 30)\n"
    "  -X KEY=VALUE           librdkafka consumer property (TLS, SASL, ...), repeatable\n"
    "  --strict               exit 3 if any record could not be decoded\n"
    "  --help, -h             this text\n"
    "\n"
    "A record that cannot be decoded is printed as an error line naming its topic,\n"
    "partition and offset (text: 'ERROR topic[partition]@offset: ...'; JSON:\n"
    "{\"type\":\"error\",...}) and reading goes on.\n"
    "\n"
    "exit status: 0  the end of every partition was reached (with --follow: stopped\n"
    "                by a signal), even if some records could not be decoded\n"
    "                (counted on stderr; see --strict)\n"
    "             1  Kafka could not be read (unreachable, topic missing, --wait-s\n"
    "                passed before the end)\n"
    "             2  bad usage\n"
    "             3  --strict and at least one record could not be decoded\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "sparkscalectl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    exit(2);
}

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

/* Text output quotes free text; control characters and quotes are escaped
 * so one record stays one line. */
static void print_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
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

static void print_error(int json, const ss_bus_record *rec, const char *what, int rc)
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

static void print_decision(int json, const ss_bus_record *rec, const ss_decision *d)
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
    print_quoted(stdout, d->reason);
    if (!key_matches(rec, d->cluster))
        printf(" key_mismatch");
    putchar('\n');
}

static void print_result(int json, const ss_bus_record *rec, const ss_actuation_result *r)
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
        emit_json(o);
        return;
    }
    printf("%s result %s #%" PRIu64 " %s %d->%d epoch=%" PRId64 " actuator=%s backend=%s", when, r->cluster,
           r->decision_sequence, ss_outcome_name(r->outcome), r->replicas_before, r->replicas_after,
           r->decision_epoch, r->actuator_id[0] ? r->actuator_id : "-", r->backend[0] ? r->backend : "-");
    if (r->error[0]) {
        printf(" error=");
        print_quoted(stdout, r->error);
    }
    if (!key_matches(rec, r->cluster))
        printf(" key_mismatch");
    putchar('\n');
}

static int cmd_audit(int argc, char **argv)
{
    enum { O_JSON = 256, O_BEGIN, O_END, O_DTOPIC, O_ATOPIC, O_WAIT, O_STRICT, O_BROKERS };
    static const struct option opts[] = {
        { "brokers", required_argument, NULL, O_BROKERS },
        { "follow", no_argument, NULL, 'f' },
        { "json", no_argument, NULL, O_JSON },
        { "from-beginning", no_argument, NULL, O_BEGIN },
        { "from-end", no_argument, NULL, O_END },
        { "decisions-topic", required_argument, NULL, O_DTOPIC },
        { "audit-topic", required_argument, NULL, O_ATOPIC },
        { "wait-s", required_argument, NULL, O_WAIT },
        { "strict", no_argument, NULL, O_STRICT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *brokers = NULL, *dtopic = "sparkscale.decisions", *atopic = "sparkscale.audit";
    int follow = 0, json = 0, from_beginning = 1, strict = 0, wait_s = 30;
    ss_kv props[MAX_PROPS];
    size_t nprops = 0;
    char *prop_store[MAX_PROPS];

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":fhX:", opts, NULL)) != -1) {
        switch (c) {
        case O_BROKERS: brokers = optarg; break;
        case 'f': follow = 1; break;
        case O_JSON: json = 1; break;
        case O_BEGIN: from_beginning = 1; break;
        case O_END: from_beginning = 0; follow = 1; break;
        case O_DTOPIC: dtopic = optarg; break;
        case O_ATOPIC: atopic = optarg; break;
        case O_STRICT: strict = 1; break;
        case O_WAIT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || v < 1 || v > 86400)
                usage_error("--wait-s wants 1..86400 seconds, not '%s'", optarg);
            wait_s = (int)v;
            break;
        }
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || nprops >= MAX_PROPS)
                usage_error("-X wants KEY=VALUE, not '%s'", optarg);
            char *dup = strdup(optarg);
            if (!dup)
                return 1;
            dup[eq - optarg] = '\0';
            prop_store[nprops] = dup;
            props[nprops].key = dup;
            props[nprops].value = dup + (eq - optarg) + 1;
            nprops++;
            break;
        }
        case 'h': fputs(usage_text, stdout); return 0;
        case ':': usage_error("option %s needs a value", argv[optind - 1]); break;
        default: usage_error("unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!brokers || !*brokers)
        usage_error("%s", "audit needs --brokers LIST");
    if (!*dtopic || !*atopic)
        usage_error("%s", "topic names cannot be empty");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *topics[2] = { dtopic, atopic };
    ss_bus_reader *r = NULL;
    char err[512] = "";
    int rc = ss_bus_reader_open(brokers, topics, 2, from_beginning, props, nprops, wait_s * 1000, &r, err,
                            sizeof err);
    for (size_t i = 0; i < nprops; i++)
        free(prop_store[i]);
    if (rc < 0) {
        fprintf(stderr, "sparkscalectl: %s\n", err);
        return 1;
    }

    uint64_t ndec = 0, nres = 0, nbad = 0;
    int status = 0, caught_up = 0;
    time_t give_up = time(NULL) + wait_s;
    while (!stop_requested) {
        ss_bus_record rec;
        rc = ss_bus_reader_next(r, 200, &rec, err, sizeof err);
        if (rc == SS_BUS_READER_CAUGHT_UP) {
            caught_up = 1;
            fflush(stdout);
            if (!follow)
                break;
            continue;
        }
        if (rc == 0) {
            if (!follow && time(NULL) >= give_up) {
                fprintf(stderr, "sparkscalectl: the end of the topics was not reached within %d s\n", wait_s);
                status = 1;
                break;
            }
            continue;
        }
        if (rc == -EAGAIN) {
            fprintf(stderr, "sparkscalectl: %s\n", err);
            continue;
        }
        if (rc < 0) {
            fprintf(stderr, "sparkscalectl: %s\n", err);
            status = 1;
            break;
        }
        if (strcmp(rec.topic, dtopic) == 0) {
            ss_decision d;
            int drc = ss_decision_decode(rec.payload, rec.len, &d);
            if (drc < 0) {
                nbad++;
                print_error(json, &rec, "ScaleDecision", drc);
            } else {
                ndec++;
                print_decision(json, &rec, &d);
                ss_decision_release(&d);
            }
        } else {
            ss_actuation_result res;
            int drc = ss_actuation_decode(rec.payload, rec.len, &res);
            if (drc < 0) {
                nbad++;
                print_error(json, &rec, "ActuationResult", drc);
            } else {
                nres++;
                print_result(json, &rec, &res);
            }
        }
    }
    fflush(stdout);
    ss_bus_reader_close(r);
    fprintf(stderr, "sparkscalectl: %" PRIu64 " decisions, %" PRIu64 " results, %" PRIu64
                    " undecodable records%s\n",
            ndec, nres, nbad, caught_up ? "" : " (end not reached)");
    if (status == 0 && strict && nbad)
        status = 3;
    return status;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Warnings (a missing topic, brokers refusing connections) go to stderr. */
    ss_log_set_level(SS_LOG_WARN);
    if (argc < 2) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(argv[1], "audit") == 0)
        return cmd_audit(argc - 1, argv + 1);
    usage_error("unknown command '%s'", argv[1]);
    return 2;
}
