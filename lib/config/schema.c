/* schema.c: what the configuration file holds: one table per section
 * (the table engine is engine.c), cross-key validation, the embedded
 * defaults, and the public load/free/print functions. */
#include "lib/config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/base/log.h"
#include "lib/base/str.h"
#include "lib/config/engine.h"

/* Hard limits: the loader runs before anything else and must not be the way
 * a bad file exhausts memory. 10,000 clusters fit well inside them. */
#define CONFIG_MAX_BYTES ((size_t)16 << 20)
#define CONFIG_MAX_POOLS 10000
#define WORKERS_MAX 1000000
#define MEMORY_MB_MAX (1 << 24)

_Static_assert(sizeof(ss_target_kind) == sizeof(int), "enums are stored through int");
_Static_assert(sizeof(policy_demand_source) == sizeof(int), "enums are stored through int");
_Static_assert(sizeof(policy_idle_mode) == sizeof(int), "enums are stored through int");

static ss_config *cfg_of(cfg_ctx *c) { return c->root; }

static const cfg_enum_opt demand_opts[] = {
    { "target", POLICY_DEMAND_TARGET }, { "max_needed", POLICY_DEMAND_MAX_NEEDED },
    { "ramp", POLICY_DEMAND_RAMP }, { NULL, 0 }
};
const char *ss_config_demand_name(policy_demand_source d)
{
    for (const cfg_enum_opt *o = demand_opts; o->name; o++)
        if (o->value == (int)d)
            return o->name;
    return "?";
}

static const cfg_enum_opt idle_mode_opts[] = {
    { "busy", POLICY_IDLE_OVER_BUSY }, { "need", POLICY_IDLE_OVER_NEED }, { NULL, 0 }
};
static const cfg_enum_opt target_opts[] = {
    { "none", SS_TARGET_NONE }, { "kubernetes", SS_TARGET_KUBERNETES },
    { "oshinko", SS_TARGET_OSHINKO }, { "exec", SS_TARGET_EXEC }, { NULL, 0 }
};
static const cfg_enum_opt level_opts[] = {
    { "debug", 0 }, { "info", 1 }, { "warn", 2 }, { "error", 3 }, { NULL, 0 }
};

static const cfg_field ingest_fields[] = {
    FLD_ADDR("carbon_tcp", ss_config, ingest.carbon_tcp, "127.0.0.1:2003",
             "carbon plaintext over TCP; host:port, port 0 = any free, \"off\" = disabled"),
    FLD_ADDR("carbon_udp", ss_config, ingest.carbon_udp, "127.0.0.1:2003",
             "carbon plaintext over UDP, one or more lines a datagram"),
    FLD_ADDR("http", ss_config, ingest.http, "127.0.0.1:9090",
             "status API: /healthz, /metrics, /v1/clusters, /v1/kafka"),
    FLD_INT("max_line_bytes", ss_config, ingest.max_line_bytes, 64, 1048576, "4096",
            "longer carbon lines are rejected"),
    FLD_INT("max_clients", ss_config, ingest.max_clients, 1, 1000000, "1024",
            "concurrent carbon TCP connections"),
    FLD_INT("client_idle_timeout_s", ss_config, ingest.client_idle_timeout_s, 0, 86400, "120",
            "close carbon TCP clients silent this long, 0 = never"),
    FLD_INT("read_buffer_bytes", ss_config, ingest.read_buffer_bytes, 4096, 16777216, "65536",
            "per-connection read buffer, at least max_line_bytes"),
    FLD_INT("max_clock_skew_s", ss_config, ingest.max_clock_skew_s, 0, 315360000, "300",
            "samples stamped further than this from our clock are refused, 0 = off"),
    FLD_INT("max_clients_per_peer", ss_config, ingest.max_clients_per_peer, 0, 1000000, "64",
            "carbon TCP connections one address may hold, 0 = no limit"),
    FLD_STRLIST("allowed_sources", ss_config, ingest.allowed_sources, ingest.nallowed_sources,
                4096, F_CIDR, "networks that may send carbon lines (clusters' default), [] = any"),
    FLD_STRP("record", ss_config, ingest.record, "", F_PATH,
             "append what is ingested (carbon lines, master and Jolokia answers, with their "
             "arrival times) to this file for sparkscalectl replay, \"\" = off"),
    FLD_INT("record_max_mb", ss_config, ingest.record_max_mb, 1, 1048576, "64",
            "the recording is rotated to FILE.1 at this size (at most about twice it on disk)"),
    FLD_END
};

static const cfg_field kafka_fields[] = {
    FLD_STR("brokers", ss_config, kafka.brokers, "embedded", F_NONEMPTY,
            "\"embedded\" (in-process mock cluster) or \"host:port,host2:port\""),
    FLD_STR("decisions_topic", ss_config, kafka.decisions_topic, "sparkscale.decisions", F_TOPIC,
            "ScaleDecision records, key = cluster name"),
    FLD_STR("audit_topic", ss_config, kafka.audit_topic, "sparkscale.audit", F_TOPIC,
            "ActuationResult records"),
    FLD_PROPS("properties", ss_config, kafka.properties, kafka.nproperties,
              "passed to librdkafka as is (SASL, TLS, ...)"),
    FLD_INT("linger_ms", ss_config, kafka.linger_ms, 0, 900000, "1", "producer linger.ms"),
    FLD_INT("heartbeat_s", ss_config, kafka.heartbeat_s, 1, 86400, "30",
            "republish an unchanged decision this often"),
    FLD_INT("max_pending", ss_config, kafka.max_pending, 1, 10000000, "10000",
            "decisions queued while the brokers are down"),
    FLD_INT("decision_ttl_s", ss_config, kafka.decision_ttl_s, 1, 86400, "120",
            "actuators ignore decisions older than this"),
    FLD_END
};

static const cfg_field store_fields[] = {
    FLD_INT("max_apps_per_cluster", ss_config, store.max_apps_per_cluster, 1, 100000, "64",
            "applications tracked per cluster"),
    FLD_INT("max_apps", ss_config, store.max_apps, 1, 10000000, "100000",
            "applications tracked across all clusters"),
    FLD_INT("max_series_per_app", ss_config, store.max_series_per_app, 1, 1024, "24",
            "known + unknown gauges kept per application"),
    FLD_INT("max_workers_per_cluster", ss_config, store.max_workers_per_cluster, 1, WORKERS_MAX,
            "1024", "worker gauge sources tracked per cluster"),
    FLD_INT("ring_size", ss_config, store.ring_size, 2, 4096, "16",
            "samples kept of the gauges with history (demand, executors, workers)"),
    FLD_INT("max_bytes", ss_config, store.max_bytes, 1048576, 2147483647, "134217728",
            "bytes the store may hold (128 MiB by default); past it new apps, workers and series are refused (cap_bytes)"),
    FLD_END
};

/* Relative to policy_conf: used for the top-level defaults and for each
 * cluster's overrides. */
static const cfg_field policy_fields[] = {
    FLD_INT("min_workers", policy_conf, min_workers, 0, WORKERS_MAX, "1", "never fewer workers"),
    FLD_INT("max_workers", policy_conf, max_workers, 1, WORKERS_MAX, "20", "never more workers"),
    FLD_INT("idle_workers", policy_conf, idle_workers, 0, WORKERS_MAX, "1",
            "idle workers kept above the busy/needed ones"),
    FLD_INT("scale_down_window_s", policy_conf, scale_down_window_s, 0, 86400, "60",
            "scale down to the highest recommendation of this window"),
    FLD_INT("stale_after_s", policy_conf, stale_after_s, 1, 86400, "30",
            "a feed older than this holds the size"),
    FLD_INT("app_expiry_s", policy_conf, app_expiry_s, 1, 604800, "120",
            "an application silent this long is finished"),
    FLD_INT("max_step_up", policy_conf, max_step_up, 0, WORKERS_MAX, "0",
            "workers added per evaluation, 0 = no limit"),
    FLD_INT("max_step_down", policy_conf, max_step_down, 0, WORKERS_MAX, "0",
            "workers removed per evaluation, 0 = no limit"),
    FLD_INT("tolerance_executors", policy_conf, tolerance_executors, 0, 1000000, "1",
            "demand jitter ignored on scale-down"),
    FLD_INT("app_min_executors", policy_conf, app_min_executors, 0, 1000000, "1",
            "gang minimum per application in a shared pool"),
    FLD_ENUM("demand", policy_conf, demand, demand_opts, "ramp",
             "target = numberTargetExecutors, max_needed = numberMaxNeededExecutors, "
             "ramp = target, one step of Spark's ramp ahead while it doubles"),
    FLD_STR("pool", policy_conf, pool, "", F_NAME, "capacity pool (declared under pools), \"\" = none"),
    FLD_INT("idle_release_s", policy_conf, idle_release_s, 0, 86400, "5",
            "every app finished, or wanting and holding no executor for this long: "
            "shrink without waiting for the window, 0 = never"),
    FLD_ENUM("idle_mode", policy_conf, idle_mode, idle_mode_opts, "need",
             "need = max(N + I, A): I workers of room over the need; busy = max(N, A) + I, "
             "which creeps up under Spark's placement"),
    FLD_END
};

static const cfg_field policy_top_fields[] = {
    FLD_INT("evaluate_interval_ms", ss_config, policy.evaluate_interval_ms, 10, 3600000, "1000",
            "timer re-evaluation period"),
    FLD_BOOL("dry_run", ss_config, policy.dry_run, "false",
             "decisions carry the dry-run flag; nothing is resized"),
    FLD_EMBED(offsetof(ss_config, policy.defaults), policy_fields),
    FLD_END
};

static const cfg_field pool_fields[] = {
    FLD_STR("name", ss_pool_conf, name, NULL, F_REQUIRED | F_NONEMPTY | F_NAME, "pool name"),
    FLD_INT("max_workers", ss_pool_conf, max_workers, 1, WORKERS_MAX, NULL,
            "worker budget shared by the pool's clusters"),
    FLD_END
};

static const cfg_field worker_fields[] = {
    FLD_INT("cores", ss_cluster_conf, worker_cores, 1, 4096, "4", "cores of one worker"),
    FLD_INT("memory_mb", ss_cluster_conf, worker_memory_mb, 1, MEMORY_MB_MAX, "8192",
            "memory of one worker"),
    FLD_END
};

static const cfg_field executor_fields[] = {
    FLD_INT("cores", ss_cluster_conf, executor_cores, 1, 4096, "1", "spark.executor.cores"),
    FLD_INT("memory_mb", ss_cluster_conf, executor_memory_mb, 1, MEMORY_MB_MAX, "1024",
            "spark.executor.memory"),
    FLD_END
};

/* Relative to ss_http_peer_conf. */
static const cfg_field http_peer_fields[] = {
    FLD_STRP("ca_file", ss_http_peer_conf, ca_file, "", F_PATH,
             "CA bundle that signs the peer's certificate, \"\" = the system's CAs"),
    FLD_BOOL("insecure_skip_verify", ss_http_peer_conf, insecure_skip_verify, "false",
             "do not verify TLS certificates (testing only; logged as a warning)"),
    FLD_STRP("username", ss_http_peer_conf, username, "", 0, "basic auth user"),
    FLD_STRP("password", ss_http_peer_conf, password, "", F_SECRET, "basic auth password"),
    FLD_STRP("bearer_token", ss_http_peer_conf, bearer_token, "", F_SECRET,
             "sent as Authorization: Bearer"),
    FLD_STRP("bearer_token_file", ss_http_peer_conf, bearer_token_file, "", F_PATH,
             "file holding the bearer token, re-read on every request (tokens rotate)"),
    FLD_END
};

/* Relative to ss_poll_conf: the top-level defaults and each cluster's overrides. */
static const cfg_field poll_fields[] = {
    FLD_INT("interval_s", ss_poll_conf, interval_s, 1, 3600, "5",
            "poll the Spark master and Jolokia agents this often"),
    FLD_INT("timeout_ms", ss_poll_conf, timeout_ms, 100, 600000, "3000", "one whole request"),
    FLD_INT("connect_timeout_ms", ss_poll_conf, connect_timeout_ms, 50, 60000, "1000",
            "connecting to the endpoint"),
    FLD_INT("max_response_kb", ss_poll_conf, max_response_kb, 1, 262144, "4096",
            "larger answers are refused"),
    FLD_INT("max_backoff_s", ss_poll_conf, max_backoff_s, 1, 3600, "60",
            "repeated failures back off (with jitter) up to this"),
    FLD_EMBED(offsetof(ss_poll_conf, http), http_peer_fields),
    FLD_END
};

/* Relative to ss_scale_in_conf: actuator-wide defaults, per-cluster overrides. */
static const cfg_field scale_in_fields[] = {
    FLD_BOOL("decommission", ss_scale_in_conf, decommission, "true",
             "decommission victims through the Spark master (POST /workers/kill/) first"),
    FLD_INT("decommission_timeout_s", ss_scale_in_conf, decommission_timeout_s, 1, 86400, "120",
            "wait at most this long for victims to be DECOMMISSIONED"),
    FLD_INT("max_decision_age_s", ss_scale_in_conf, max_decision_age_s, 1, 86400, "30",
            "without a master: trust a decision's removable workers this long"),
    FLD_BOOL("allow_blind_scale_in", ss_scale_in_conf, allow_blind_scale_in, "false",
             "with no master and no removable workers, shrink anyway (the backend picks)"),
    FLD_END
};

static const cfg_field target_fields[] = {
    FLD_ENUM("kind", ss_target_conf, kind, target_opts, "none",
             "none | kubernetes | oshinko | exec"),
    FLD_STRP("namespace", ss_target_conf, namespace_, "", 0, "kubernetes namespace"),
    FLD_STRP("workload", ss_target_conf, workload, "", 0,
             "kubernetes deployment/x | statefulset/x | replicaset/x"),
    FLD_STRP("kubeconfig", ss_target_conf, kubeconfig, "", F_PATH,
             "kubernetes: this cluster's kubeconfig, \"\" = actuator.kubernetes"),
    FLD_STRP("context", ss_target_conf, context, "", 0,
             "kubernetes: context in that kubeconfig, \"\" = its current-context"),
    FLD_STRP("url", ss_target_conf, url, "", F_URL, "oshinko REST base URL"),
    FLD_STRP("cluster", ss_target_conf, cluster, "", 0,
             "oshinko cluster name, \"\" = this cluster's name"),
    FLD_BOOL("legacy_body", ss_target_conf, legacy_body, "false",
             "oshinko: also send masterCount/workerCount at the top level (older servers)"),
    FLD_STRLIST("command", ss_target_conf, command, ncommand, 256, 0,
                "exec: argv run with SPARKSCALE_* in its environment (no shell)"),
    FLD_STRLIST("size_command", ss_target_conf, size_command, nsize_command, 256, 0,
                "exec: argv that prints the current worker count (optional)"),
    FLD_INT("timeout_s", ss_target_conf, timeout_s, 1, 86400, "30",
            "exec: a command still running after this is killed"),
    FLD_BOOL("dry_run", ss_target_conf, dry_run, "false",
             "sparkscale-actuator validates and reads, changes nothing (audited DRY_RUN)"),
    FLD_EMBED(offsetof(ss_target_conf, scale_in), scale_in_fields),
    FLD_END
};

static const cfg_field cluster_fields[] = {
    FLD_STR("name", ss_cluster_conf, name, NULL, F_REQUIRED | F_NONEMPTY | F_NAME,
            "cluster name, the Kafka key of its decisions"),
    FLD_STR("metrics_prefix", ss_cluster_conf, metrics_prefix, NULL, F_PREFIX,
            "the GraphiteSink prefix this cluster uses (default: name)"),
    FLD_STRLIST("spark_master", ss_cluster_conf, spark_master, nspark_master, 16, F_URL,
                "master web UI URL(s), e.g. http://master:8080; several for HA (the ALIVE one is used)"),
    FLD_STRLIST("jolokia", ss_cluster_conf, jolokia, njolokia, 1024, F_URL,
                "Jolokia agent URLs of the drivers, e.g. http://driver:8778/jolokia/"),
    FLD_STRLIST("allowed_sources", ss_cluster_conf, allowed_sources, nallowed_sources, 4096,
                F_CIDR, "networks that may send this cluster's carbon lines, [] = ingest's"),
    FLD_MAP("worker", 0, worker_fields, "one Spark worker"),
    FLD_MAP("executor", 0, executor_fields, "one executor"),
    FLD_MAP("policy", offsetof(ss_cluster_conf, policy), policy_fields,
            "overrides of the top-level policy"),
    FLD_MAP("poll", offsetof(ss_cluster_conf, poll), poll_fields,
            "overrides of the top-level poll"),
    FLD_MAP("target", offsetof(ss_cluster_conf, target), target_fields,
            "what sparkscale-actuator resizes, and how scale-in stays safe"),
    FLD_END
};

static const cfg_field kubernetes_fields[] = {
    FLD_STRP("kubeconfig", ss_config, actuator.kubernetes.kubeconfig, "", F_PATH,
             "kubeconfig file, \"\" = in-cluster service account"),
    FLD_STRP("context", ss_config, actuator.kubernetes.context, "", 0,
             "context in the kubeconfig, \"\" = its current-context"),
    FLD_INT("qps", ss_config, actuator.kubernetes.qps, 0, 100000, "20",
            "requests per second to one API server, 0 = no limit"),
    FLD_INT("burst", ss_config, actuator.kubernetes.burst, 1, 100000, "40",
            "requests allowed at once above qps"),
    FLD_END
};

static const cfg_field actuator_fields[] = {
    FLD_ADDR("http", ss_config, actuator.http, "127.0.0.1:9091",
             "actuator status: /healthz, /metrics, /v1/clusters"),
    FLD_STR("id", ss_config, actuator.id, "", F_NAME,
            "this actuator's name in audit records, \"\" = host name and pid"),
    FLD_STR("group", ss_config, actuator.group, "sparkscale-actuators", F_NAME | F_NONEMPTY,
            "Kafka consumer group shared by the actuators"),
    FLD_INT("call_timeout_ms", ss_config, actuator.call_timeout_ms, 100, 600000, "10000",
            "one backend HTTP request (Spark master, Oshinko, Kubernetes)"),
    FLD_INT("max_attempts", ss_config, actuator.max_attempts, 1, 20, "4",
            "backend calls are tried this often on 5xx, 429 and timeouts"),
    FLD_MAP("http_client", offsetof(ss_config, actuator.http_client), http_peer_fields,
            "TLS and credentials for Oshinko"),
    FLD_EMBED(offsetof(ss_config, actuator.scale_in), scale_in_fields),
    FLD_MAP("kubernetes", 0, kubernetes_fields, "the Kubernetes API (kind: kubernetes targets)"),
    FLD_END
};

static void cluster_init(cfg_ctx *c, void *elem);
static int cluster_post(cfg_ctx *c, yaml_node_t *node, void *elem);

static const cfg_field root_fields[] = {
    FLD_MAP("ingest", 0, ingest_fields, "listeners"),
    FLD_MAP("kafka", 0, kafka_fields, "the decision bus"),
    FLD_MAP("store", 0, store_fields, "bounds of the in-memory metric store"),
    FLD_MAP("policy", 0, policy_top_fields, "evaluation, and defaults for every cluster"),
    FLD_MAP("poll", offsetof(ss_config, poll), poll_fields,
            "polling the Spark master and Jolokia, defaults for every cluster"),
    FLD_MAP("actuator", 0, actuator_fields, "sparkscale-actuator"),
    FLD_SENUM("log_level", ss_config, log_level, level_opts, "info", "debug | info | warn | error"),
    FLD_LIST("pools", ss_config, pools, npools, ss_pool_conf, CONFIG_MAX_POOLS, pool_fields,
             NULL, NULL, "capacity pools shared by clusters"),
    FLD_LIST("clusters", ss_config, clusters, nclusters, ss_cluster_conf, SS_MAX_CLUSTERS,
             cluster_fields, cluster_init, cluster_post, "Spark standalone clusters"),
    FLD_END
};

const char ss_config_embedded_yaml[] =
    "# sparkscale embedded defaults: used when no --config is given.\n"
    "# One machine, nothing else needed: carbon in, decisions to an embedded Kafka.\n"
    "ingest:\n"
    "  carbon_tcp: \"127.0.0.1:2003\"   # Spark GraphiteSink, protocol=tcp\n"
    "  carbon_udp: \"127.0.0.1:2003\"   # Spark GraphiteSink, protocol=udp\n"
    "  http: \"127.0.0.1:9090\"         # /healthz, /metrics, /v1/clusters, /v1/kafka\n"
    "kafka:\n"
    "  brokers: embedded              # librdkafka's in-process mock cluster\n"
    "  decisions_topic: sparkscale.decisions\n"
    "  audit_topic: sparkscale.audit\n"
    "  properties: {}\n"
    "clusters:\n"
    "  - name: demo\n"
    "    metrics_prefix: demo         # *.sink.graphite.prefix=demo\n"
    "    worker:   { cores: 4, memory_mb: 8192 }\n"
    "    executor: { cores: 2, memory_mb: 4096 }\n"
    "    policy:   { min_workers: 1, max_workers: 20, idle_workers: 1 }\n"
    "    target:   { kind: none }     # decisions only, nothing is resized\n";
/* A cluster starts from the top-level policy, poll and scale-in settings. */
static void cluster_init(cfg_ctx *c, void *elem)
{
    ss_cluster_conf *cl = elem;
    const ss_config *cfg = cfg_of(c);
    cl->policy = cfg->policy.defaults;
    cl->target.scale_in = cfg->actuator.scale_in;
    if (cfg_copy_table(poll_fields, &cl->poll, &cfg->poll) != 0)
        c->failed = 1;   /* out of memory: reported after parsing */
}

static int cluster_post(cfg_ctx *c, yaml_node_t *node, void *elem)
{
    ss_cluster_conf *cl = elem;
    cl->line = (int)node->start_mark.line + 1;
    /* The usual setup: the GraphiteSink prefix is the cluster's name. */
    if (!cfg_map_get(c, node, "metrics_prefix")) {
        static const cfg_field prefix = { .key = "metrics_prefix", .type = FT_STRING, .flags = F_PREFIX };
        const char *why = cfg_check_string(&prefix, cl->name);
        if (why) {
            size_t old = cfg_path_push_key(c, "name");
            yaml_node_t *n = cfg_map_get(c, node, "name");
            int rc = cfg_fail(c, n ? n->start_mark : node->start_mark,
                          "cannot be the default metrics_prefix: %s; set metrics_prefix", why);
            cfg_path_pop(c, old);
            return rc;
        }
        cfg_set_str(cl->metrics_prefix, sizeof cl->metrics_prefix, cl->name, strlen(cl->name));
    }
    if (c->failed)
        return -ENOMEM;
    if (cl->target.kind == SS_TARGET_OSHINKO && cl->target.cluster[0] == '\0') {
        char *name = strdup(cl->name);
        if (!name)
            return -ENOMEM;
        free(cl->target.cluster);
        cl->target.cluster = name;
    }
    return 0;
}

/* ---- validation across keys ------------------------------------------------------- */

static int dns_label_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

/* A Kubernetes object name: DNS-1123 subdomain, dot-separated labels. */
static int dns_subdomain_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return 0;
    while (*s) {
        size_t l = strcspn(s, ".");
        if (!dns_label_ok(s, l))
            return 0;
        s += l;
        if (*s == '.' && *++s == '\0')
            return 0;
    }
    return 1;
}

static int pool_declared(const ss_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return 1;
    return 0;
}

static int validate_policy(cfg_ctx *c, const char *path, const policy_conf *p)
{
    char kp[CFG_PATH_LEN * 2];
    if (p->min_workers > p->max_workers) {
        snprintf(kp, sizeof kp, "%s.max_workers", path);
        return cfg_fail_path(c, kp, "must be >= min_workers (%d), got %d", p->min_workers,
                         p->max_workers);
    }
    if (p->pool[0] && !pool_declared(cfg_of(c), p->pool)) {
        snprintf(kp, sizeof kp, "%s.pool", path);
        return cfg_fail_path(c, kp, "pool \"%s\" is not declared under pools", p->pool);
    }
    if (p->max_workers > cfg_of(c)->store.max_workers_per_cluster) {
        snprintf(kp, sizeof kp, "%s.max_workers", path);
        return cfg_fail_path(c, kp, "%d exceeds store.max_workers_per_cluster (%d)", p->max_workers,
                         cfg_of(c)->store.max_workers_per_cluster);
    }
    return 0;
}

static int validate_target(cfg_ctx *c, const char *path, const ss_cluster_conf *cl)
{
    const ss_target_conf *t = &cl->target;
    char kp[CFG_PATH_LEN * 2];
    switch (t->kind) {
    case SS_TARGET_KUBERNETES: {
        if (!dns_label_ok(t->namespace_, strlen(t->namespace_))) {
            snprintf(kp, sizeof kp, "%s.namespace", path);
            return cfg_fail_path(c, kp, "cluster \"%s\": kind kubernetes needs a namespace "
                             "(lower-case DNS label), got \"%s\"", cl->name, t->namespace_);
        }
        static const char *kinds[] = { "deployment/", "statefulset/", "replicaset/", NULL };
        const char *name = NULL;
        for (int i = 0; kinds[i]; i++)
            if (strncmp(t->workload, kinds[i], strlen(kinds[i])) == 0)
                name = t->workload + strlen(kinds[i]);
        if (!name || !dns_subdomain_ok(name)) {
            snprintf(kp, sizeof kp, "%s.workload", path);
            return cfg_fail_path(c, kp, "cluster \"%s\": must be deployment/<name>, "
                             "statefulset/<name> or replicaset/<name>, got \"%s\"",
                             cl->name, t->workload);
        }
        return 0;
    }
    case SS_TARGET_OSHINKO:
        if (!t->url[0]) {
            snprintf(kp, sizeof kp, "%s.url", path);
            return cfg_fail_path(c, kp, "cluster \"%s\": kind oshinko needs the Oshinko REST URL",
                             cl->name);
        }
        return 0;
    case SS_TARGET_EXEC:
        if (t->ncommand == 0 || !t->command[0][0]) {
            snprintf(kp, sizeof kp, "%s.command", path);
            return cfg_fail_path(c, kp, "cluster \"%s\": kind exec needs a command "
                                 "(a list: program, then its arguments)", cl->name);
        }
        if (t->nsize_command > 0 && !t->size_command[0][0]) {
            snprintf(kp, sizeof kp, "%s.size_command", path);
            return cfg_fail_path(c, kp, "cluster \"%s\": size_command starts with an empty "
                                 "program name", cl->name);
        }
        return 0;
    default:
        return 0;
    }
}

/* Basic auth and a bearer token are exclusive; a password needs a user. */
static int validate_peer(cfg_ctx *c, const char *path, const ss_http_peer_conf *h)
{
    char kp[CFG_PATH_LEN * 2];
    int basic = h->username[0] || h->password[0];
    int bearer = h->bearer_token[0] || h->bearer_token_file[0];
    if (basic && bearer) {
        snprintf(kp, sizeof kp, "%s.bearer_token", path);
        return cfg_fail_path(c, kp, "basic auth (username/password) and a bearer token are "
                             "exclusive");
    }
    if (h->password[0] && !h->username[0]) {
        snprintf(kp, sizeof kp, "%s.username", path);
        return cfg_fail_path(c, kp, "a password needs a username");
    }
    if (h->bearer_token[0] && h->bearer_token_file[0]) {
        snprintf(kp, sizeof kp, "%s.bearer_token_file", path);
        return cfg_fail_path(c, kp, "set bearer_token or bearer_token_file, not both");
    }
    return 0;
}

static int same_tcp_addr(const ss_listen_addr *a, const ss_listen_addr *b)
{
    return a->enabled && b->enabled && a->port && a->port == b->port &&
           strcmp(a->host, b->host) == 0;
}

typedef struct name_ref {
    const char *s;
    size_t idx;
} name_ref;

static int name_ref_cmp(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int r = strcmp(x->s, y->s);
    return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Finds the earliest (in file order) entry whose string repeats an earlier
 * one, in O(n log n): 10,000 clusters must not make start-up quadratic.
 * Returns 0 and sets dup and first when found, 1 when all distinct, -ENOMEM. */
static int find_duplicate(const void *arr, size_t n, size_t elem, size_t off, size_t *dup,
                          size_t *first)
{
    if (n < 2)
        return 1;
    name_ref *r = malloc(n * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (name_ref){ (const char *)arr + i * elem + off, i };
    qsort(r, n, sizeof *r, name_ref_cmp);
    int found = 1;
    size_t g = 0; /* first (lowest index) entry of the current run of equal strings */
    for (size_t i = 1; i < n; i++) {
        if (strcmp(r[i].s, r[g].s) != 0) {
            g = i;
            continue;
        }
        if (found || r[i].idx < *dup) {
            *dup = r[i].idx;
            *first = r[g].idx;
            found = 0;
        }
    }
    free(r);
    return found;
}

/* Prefixes that overlap: "alpha" and "alpha.prod" (an app of alpha named
 * prod.x would land in alpha.prod), or "" and any other (every path starts
 * with some namespace). Finds one pair in O(n log n); returns 0 and sets
 * *a, *b (cluster indexes) when found, 1 when none, -ENOMEM. */
static int find_overlap(const ss_config *cfg, size_t *a, size_t *b)
{
    size_t n = cfg->nclusters;
    if (n < 2)
        return 1;
    name_ref *r = malloc(n * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (name_ref){ cfg->clusters[i].metrics_prefix, i };
    qsort(r, n, sizeof *r, name_ref_cmp);
    int found = 1;
    if (r[0].s[0] == '\0') {
        *a = r[0].idx;
        *b = r[1].idx;
        found = 0;
    }
    /* "p" and "p.x" need not be neighbours ("p-a" sorts between them): for
     * each prefix, look up each of its dot-ancestors by binary search. */
    for (size_t i = 0; found && i < n; i++) {
        const char *s = r[i].s;
        for (const char *dot = strchr(s, '.'); dot && found; dot = strchr(dot + 1, '.')) {
            size_t len = (size_t)(dot - s);
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int cmp = strncmp(r[mid].s, s, len);
                if (cmp == 0 && r[mid].s[len] != '\0')
                    cmp = 1;
                if (cmp == 0) {
                    *a = r[mid].idx;
                    *b = r[i].idx;
                    found = 0;
                    break;
                }
                if (cmp < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
        }
    }
    free(r);
    return found;
}

static int validate(cfg_ctx *c)
{
    ss_config *cfg = cfg_of(c);
    char kp[CFG_PATH_LEN + 32];
    size_t dup = 0, first = 0;
    int rc;

    if (cfg->ingest.read_buffer_bytes < cfg->ingest.max_line_bytes)
        return cfg_fail_path(c, "ingest.read_buffer_bytes",
                         "must be >= ingest.max_line_bytes (%d), got %d",
                         cfg->ingest.max_line_bytes, cfg->ingest.read_buffer_bytes);
    const ss_listen_addr *tcp = &cfg->ingest.carbon_tcp, *http = &cfg->ingest.http;
    if (same_tcp_addr(tcp, http))
        return cfg_fail_path(c, "ingest.http", "same TCP address as ingest.carbon_tcp");
    if (same_tcp_addr(&cfg->actuator.http, http) || same_tcp_addr(&cfg->actuator.http, tcp))
        return cfg_fail_path(c, "actuator.http", "same TCP address as a listener of sparkscaled "
                             "(both daemons may read this file)");
    if ((rc = validate_peer(c, "poll", &cfg->poll.http)) != 0 ||
        (rc = validate_peer(c, "actuator.http_client", &cfg->actuator.http_client)) != 0)
        return rc;
    if (strcmp(cfg->kafka.decisions_topic, cfg->kafka.audit_topic) == 0)
        return cfg_fail_path(c, "kafka.audit_topic", "must differ from kafka.decisions_topic");
    if (cfg->store.max_apps_per_cluster > cfg->store.max_apps)
        return cfg_fail_path(c, "store.max_apps_per_cluster", "must be <= store.max_apps (%d), got %d",
                         cfg->store.max_apps, cfg->store.max_apps_per_cluster);
    if ((rc = validate_policy(c, "policy", &cfg->policy.defaults)) != 0)
        return rc;

    rc = find_duplicate(cfg->pools, cfg->npools, sizeof *cfg->pools,
                        offsetof(ss_pool_conf, name), &dup, &first);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "pools[%zu].name", dup);
        return cfg_fail_path(c, kp, "duplicate pool name \"%s\" (first is pools[%zu])",
                         cfg->pools[dup].name, first);
    }

    if (cfg->nclusters == 0)
        return cfg_fail_path(c, "clusters", "at least one cluster is required");
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const ss_cluster_conf *cl = &cfg->clusters[i];
        snprintf(kp, sizeof kp, "clusters[%zu].policy", i);
        if ((rc = validate_policy(c, kp, &cl->policy)) != 0)
            return rc;
        if (cl->executor_cores > cl->worker_cores) {
            snprintf(kp, sizeof kp, "clusters[%zu].executor.cores", i);
            return cfg_fail_path(c, kp, "cluster \"%s\": an executor of %d cores does not fit in a "
                             "worker of %d cores (executors per worker would be 0)",
                             cl->name, cl->executor_cores, cl->worker_cores);
        }
        if (cl->executor_memory_mb > cl->worker_memory_mb) {
            snprintf(kp, sizeof kp, "clusters[%zu].executor.memory_mb", i);
            return cfg_fail_path(c, kp, "cluster \"%s\": an executor of %d MB does not fit in a "
                             "worker of %d MB (executors per worker would be 0)",
                             cl->name, cl->executor_memory_mb, cl->worker_memory_mb);
        }
        snprintf(kp, sizeof kp, "clusters[%zu].target", i);
        if ((rc = validate_target(c, kp, cl)) != 0)
            return rc;
        snprintf(kp, sizeof kp, "clusters[%zu].poll", i);
        if ((rc = validate_peer(c, kp, &cl->poll.http)) != 0)
            return rc;
    }

    rc = find_duplicate(cfg->clusters, cfg->nclusters, sizeof *cfg->clusters,
                        offsetof(ss_cluster_conf, name), &dup, &first);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "clusters[%zu].name", dup);
        return cfg_fail_path(c, kp, "duplicate cluster name \"%s\" (first at line %d)",
                         cfg->clusters[dup].name, cfg->clusters[first].line);
    }
    rc = find_duplicate(cfg->clusters, cfg->nclusters, sizeof *cfg->clusters,
                        offsetof(ss_cluster_conf, metrics_prefix), &dup, &first);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "clusters[%zu].metrics_prefix", dup);
        return cfg_fail_path(c, kp, "duplicate metrics_prefix \"%s\" (also used by cluster \"%s\")",
                         cfg->clusters[dup].metrics_prefix, cfg->clusters[first].name);
    }
    size_t oa = 0, ob = 0;
    rc = find_overlap(cfg, &oa, &ob);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(kp, sizeof kp, "clusters[%zu].metrics_prefix", ob);
        return cfg_fail_path(c, kp, "metrics_prefix \"%s\" of cluster \"%s\" overlaps \"%s\" of "
                             "cluster \"%s\": an app's lines could land in the wrong cluster; "
                             "give each cluster a prefix that no other one starts with",
                             cfg->clusters[ob].metrics_prefix, cfg->clusters[ob].name,
                             cfg->clusters[oa].metrics_prefix, cfg->clusters[oa].name);
    }
    return 0;
}

/* ---- public API -------------------------------------------------------------------- */

static int load_buffer(const char *yaml, size_t len, const char *source, ss_config **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    ss_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return -ENOMEM;
    snprintf(cfg->source, sizeof cfg->source, "%s", source);
    int rc = cfg_load(yaml, len, source, root_fields, cfg, validate, err, errlen);
    if (rc) {
        ss_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int ss_config_load_string(const char *yaml, const char *source, ss_config **out, char *err,
                          size_t errlen)
{
    if (!source)
        source = "(string)";
    *out = NULL;
    size_t len = strnlen(yaml, CONFIG_MAX_BYTES + 1);
    if (len > CONFIG_MAX_BYTES) {
        ss_errf(err, errlen, "%s: larger than %zu bytes", source, CONFIG_MAX_BYTES);
        return -EFBIG;
    }
    return load_buffer(yaml, len, source, out, err, errlen);
}

/* Reads all of f into a NUL-terminated buffer, growing it up to the limit;
 * works for pipes too (--config /dev/stdin). Caller frees *out. */
static int read_all(FILE *f, char **out, size_t *outlen)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (ferror(f)) {
            free(buf);
            return -EIO;
        }
        if (len < cap - 1)
            break;
        if (cap > CONFIG_MAX_BYTES) {
            free(buf);
            return -EFBIG;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            return -ENOMEM;
        }
        buf = bigger;
        cap *= 2;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

int ss_config_load_file(const char *path, ss_config **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        ss_errf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = read_all(f, &buf, &len);
    fclose(f);
    if (rc == 0 && len > CONFIG_MAX_BYTES)
        rc = -EFBIG;
    if (rc == -EFBIG)
        ss_errf(err, errlen, "%s: larger than %zu bytes", path, CONFIG_MAX_BYTES);
    else if (rc == -EIO)
        ss_errf(err, errlen, "%s: read error", path);
    else if (rc == -ENOMEM)
        ss_errf(err, errlen, "%s: out of memory", path);
    else if (memchr(buf, '\0', len)) {
        ss_errf(err, errlen, "%s: contains a NUL byte (not a text file?)", path);
        rc = -EINVAL;
    } else {
        rc = load_buffer(buf, len, path, out, err, errlen);
    }
    free(buf);
    return rc;
}

void ss_config_free(ss_config *cfg)
{
    if (!cfg)
        return;
    cfg_free_table(root_fields, cfg);
    free(cfg);
}

int ss_config_cluster_index(const ss_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nclusters; i++)
        if (strcmp(cfg->clusters[i].name, name) == 0)
            return (int)i;
    return -1;
}

void ss_config_print(const ss_config *cfg, FILE *out)
{
    fprintf(out, "# sparkscale effective configuration, from ");
    ss_fquote(out, cfg->source);
    fputs("\n# every key with its value, defaults filled in; secrets masked\n", out);
    cfg_print(out, root_fields, cfg);
}

void ss_config_bus_conf(const ss_config *cfg, ss_bus_conf *out)
{
    *out = (ss_bus_conf){
        .brokers = cfg->kafka.brokers,
        .decisions_topic = cfg->kafka.decisions_topic,
        .audit_topic = cfg->kafka.audit_topic,
        .properties = cfg->kafka.properties,
        .nproperties = cfg->kafka.nproperties,
        .linger_ms = cfg->kafka.linger_ms,
        .max_pending = cfg->kafka.max_pending,
        .decision_ttl_s = cfg->kafka.decision_ttl_s,
    };
}

int ss_config_has_secrets(const ss_config *cfg)
{
    return cfg_has_secrets(root_fields, cfg);
}

void ss_config_warn_secrets(const ss_config *cfg)
{
    struct stat st;
    if (!ss_config_has_secrets(cfg) || stat(cfg->source, &st) != 0)
        return;   /* no secrets, or not a file (embedded defaults, a pipe gone) */
    if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)))
        ss_warn("%s holds secrets (passwords, tokens or credentials in URLs) and other users "
                "can read it (mode %03o): chmod 600 it, or use bearer_token_file",
                cfg->source, (unsigned)(st.st_mode & 0777));
}
