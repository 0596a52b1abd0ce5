/* audit.c: `sparkscalectl audit`: reads the decisions and audit topics and
 * prints every record decoded, one a line (committed records only). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/sparkscalectl/ctl.h"

#define MAX_PROPS 64

static const char audit_usage[] =
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

typedef struct audit_opts {
    const char *brokers, *dtopic, *atopic;
    int follow, json, from_beginning, strict, wait_s;
    ss_kv props[MAX_PROPS];
    size_t nprops;
} audit_opts;

static void usage_error(const char *fmt, const char *arg)
{
    ctl_usage_error(audit_usage, fmt, arg);
}

/* -X KEY=VALUE: the pair points into a copy that lives until exit. */
static void add_property(audit_opts *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || o->nprops >= MAX_PROPS)
        usage_error("-X wants KEY=VALUE, not '%s'", arg);
    char *dup = strdup(arg);
    if (!dup)
        usage_error("%s", "out of memory");
    dup[eq - arg] = '\0';
    o->props[o->nprops].key = dup;
    o->props[o->nprops].value = dup + (eq - arg) + 1;
    o->nprops++;
}

/* Returns -1 after printing the help (exit 0), else 0; bad usage exits 2. */
static int parse_args(int argc, char **argv, audit_opts *o)
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
    *o = (audit_opts){ .dtopic = "sparkscale.decisions", .atopic = "sparkscale.audit",
                       .from_beginning = 1, .wait_s = 30 };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":fhX:", opts, NULL)) != -1) {
        switch (c) {
        case O_BROKERS: o->brokers = optarg; break;
        case 'f': o->follow = 1; break;
        case O_JSON: o->json = 1; break;
        case O_BEGIN: o->from_beginning = 1; break;
        case O_END: o->from_beginning = 0; o->follow = 1; break;
        case O_DTOPIC: o->dtopic = optarg; break;
        case O_ATOPIC: o->atopic = optarg; break;
        case O_STRICT: o->strict = 1; break;
        case O_WAIT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || v < 1 || v > 86400)
                usage_error("--wait-s wants 1..86400 seconds, not '%s'", optarg);
            o->wait_s = (int)v;
            break;
        }
        case 'X': add_property(o, optarg); break;
        case 'h': fputs(audit_usage, stdout); return -1;
        case ':': usage_error("option %s needs a value", argv[optind - 1]); break;
        default: usage_error("unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->brokers || !*o->brokers)
        usage_error("%s", "audit needs --brokers LIST");
    if (!*o->dtopic || !*o->atopic)
        usage_error("%s", "topic names cannot be empty");
    return 0;
}

typedef struct audit_counts {
    uint64_t decisions, results, bad;
} audit_counts;

static void print_record(const audit_opts *o, const ss_bus_record *rec, audit_counts *n)
{
    if (strcmp(rec->topic, o->dtopic) == 0) {
        ss_decision d;
        int rc = ss_decision_decode(rec->payload, rec->len, &d);
        if (rc < 0) {
            n->bad++;
            ctl_print_error(o->json, rec, "ScaleDecision", rc);
            return;
        }
        n->decisions++;
        ctl_print_decision(o->json, rec, &d);
        ss_decision_release(&d);
        return;
    }
    ss_actuation_result res;
    int rc = ss_actuation_decode(rec->payload, rec->len, &res);
    if (rc < 0) {
        n->bad++;
        ctl_print_error(o->json, rec, "ActuationResult", rc);
        return;
    }
    n->results++;
    ctl_print_result(o->json, rec, &res);
}

/* Reads until every partition's end (or a signal with --follow). Returns
 * 0, or 1 when Kafka could not be read or the end was not reached in time. */
static int read_all(const audit_opts *o, ss_bus_reader *r, audit_counts *n, int *caught_up)
{
    char err[512];
    time_t give_up = time(NULL) + o->wait_s;
    while (!stop_requested) {
        ss_bus_record rec;
        int rc = ss_bus_reader_next(r, 200, &rec, err, sizeof err);
        if (rc == SS_BUS_READER_CAUGHT_UP) {
            *caught_up = 1;
            fflush(stdout);
            if (!o->follow)
                return 0;
        } else if (rc == 0) {
            if (!o->follow && time(NULL) >= give_up) {
                fprintf(stderr, "sparkscalectl: the end of the topics was not reached within %d s\n",
                        o->wait_s);
                return 1;
            }
        } else if (rc == -EAGAIN) {
            fprintf(stderr, "sparkscalectl: %s\n", err);
        } else if (rc < 0) {
            fprintf(stderr, "sparkscalectl: %s\n", err);
            return 1;
        } else {
            print_record(o, &rec, n);
        }
    }
    return 0;
}

int ctl_audit(int argc, char **argv)
{
    audit_opts o;
    if (parse_args(argc, argv, &o) < 0)
        return 0;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *topics[2] = { o.dtopic, o.atopic };
    ss_bus_reader *r = NULL;
    char err[512] = "";
    int rc = ss_bus_reader_open(o.brokers, topics, 2, o.from_beginning, o.props, o.nprops,
                                o.wait_s * 1000, &r, err, sizeof err);
    for (size_t i = 0; i < o.nprops; i++)
        free(o.props[i].key);
    if (rc < 0) {
        fprintf(stderr, "sparkscalectl: %s\n", err);
        return 1;
    }
    audit_counts n = { 0 };
    int caught_up = 0;
    int status = read_all(&o, r, &n, &caught_up);
    fflush(stdout);
    ss_bus_reader_close(r);
    fprintf(stderr, "sparkscalectl: %" PRIu64 " decisions, %" PRIu64 " results, %" PRIu64
                    " undecodable records%s\n",
            n.decisions, n.results, n.bad, caught_up ? "" : " (end not reached)");
    if (status == 0 && o.strict && n.bad)
        status = 3;
    return status;
}
