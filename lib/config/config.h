/* config.h: the one YAML configuration file both daemons read.
 * Loaded and validated at start-up; every error names the key and the line. */
#ifndef SS_CONFIG_H
#define SS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "lib/base/addr.h"
#include "lib/base/str.h"
#include "lib/bus/conf.h"
/* The schema holds each cluster's policy knobs; policy/ is a pure leaf below
 * lib/ (daemons -> lib -> carbon/policy), so this points down, not up. */
#include "policy/policy_conf.h"

#define SS_NAME_MAX 64
#define SS_URL_MAX 512
/* Clusters one configuration may hold; every component (store, decider,
 * bus) sizes itself from the loaded count, so this is the one limit. */
#define SS_MAX_CLUSTERS 100000

typedef enum ss_target_kind {
    SS_TARGET_NONE = 0,     /* decisions only, nothing is resized */
    SS_TARGET_KUBERNETES,   /* namespace + workload "deployment/name" */
    SS_TARGET_OSHINKO,      /* Oshinko REST url + cluster name */
    SS_TARGET_EXEC          /* a command run with the desired count */
} ss_target_kind;

/* How to reach an HTTP peer (Spark master, Jolokia agent, Oshinko): TLS
 * and credentials. Strings owned by the config, "" = unset. */
typedef struct ss_http_peer_conf {
    char *ca_file;                    /* "" = the system's CAs */
    int insecure_skip_verify;         /* explicit opt-out of TLS verification */
    char *username;                   /* basic auth */
    char *password;                   /* secret */
    char *bearer_token;               /* secret */
    char *bearer_token_file;          /* re-read on every request (tokens rotate) */
} ss_http_peer_conf;

/* Polling of the Spark master's /json/ and Jolokia agents (sparkscaled). */
typedef struct ss_poll_conf {
    int interval_s;                   /* one poll per endpoint this often */
    int timeout_ms;                   /* whole request */
    int connect_timeout_ms;
    int max_response_kb;              /* larger answers are refused */
    int max_backoff_s;                /* repeated failures back off up to this */
    ss_http_peer_conf http;
} ss_poll_conf;

/* How scale-in is made safe (sparkscale-actuator); top-level defaults under
 * actuator:, overridden per cluster under target:. */
typedef struct ss_scale_in_conf {
    int decommission;                 /* POST /workers/kill/ to the master first */
    int decommission_timeout_s;       /* wait this long for DECOMMISSIONED */
    int max_decision_age_s;           /* without a master: trust removable_workers this long */
    int allow_blind_scale_in;         /* with neither source, still remove workers */
} ss_scale_in_conf;

typedef struct ss_target_conf {
    ss_target_kind kind;
    /* kubernetes */
    char *namespace_;                 /* owned; "" = none */
    char *workload;                   /* "deployment/x" | "statefulset/x" | "replicaset/x" */
    char *kubeconfig;                 /* "" = actuator.kubernetes.kubeconfig */
    char *context;                    /* "" = actuator.kubernetes.context */
    /* oshinko */
    char *url;                        /* Oshinko REST base URL */
    char *cluster;                    /* Oshinko cluster name; "" = the cluster's name */
    int legacy_body;                  /* also send masterCount/workerCount at top level */
    /* exec */
    char **command;                   /* argv, no shell */
    size_t ncommand;
    char **size_command;              /* argv printing the current count, optional */
    size_t nsize_command;
    int timeout_s;                    /* a command running longer is killed */
    int dry_run;                      /* the actuator validates and reads, changes nothing */
    ss_scale_in_conf scale_in;        /* from actuator:, overridable here */
} ss_target_conf;

typedef struct ss_cluster_conf {
    char name[SS_NAME_MAX];
    char metrics_prefix[SS_NAME_MAX * 2]; /* GraphiteSink prefix, may hold dots, may be "" */
    char **spark_master;                  /* master web UI URLs (HA: several); may be none */
    size_t nspark_master;
    char **jolokia;                       /* Jolokia agent URLs of the drivers; may be none */
    size_t njolokia;
    char **allowed_sources;               /* CIDRs that may send this cluster's carbon lines;
                                           * none = ingest.allowed_sources */
    size_t nallowed_sources;
    int worker_cores;
    int worker_memory_mb;
    int executor_cores;
    int executor_memory_mb;
    policy_conf policy;                   /* top-level defaults, overridden per cluster */
    ss_poll_conf poll;                    /* top-level defaults, overridden per cluster */
    ss_target_conf target;
    int line;                             /* YAML line of this cluster, for messages */
} ss_cluster_conf;

typedef struct ss_pool_conf {
    char name[SS_NAME_MAX];
    int max_workers;                      /* worker budget shared by its clusters */
} ss_pool_conf;

typedef struct ss_config {
    char source[SS_URL_MAX];              /* file path, or "(embedded defaults)" */

    struct {
        ss_listen_addr carbon_tcp;
        ss_listen_addr carbon_udp;
        ss_listen_addr http;
        int max_line_bytes;               /* hard maximum carbon line length */
        int max_clients;                  /* concurrent carbon TCP connections */
        int client_idle_timeout_s;        /* close silent TCP clients */
        int read_buffer_bytes;            /* per-connection read buffer */
        int max_clock_skew_s;             /* samples further from now are refused; 0 = off */
        int max_clients_per_peer;         /* carbon TCP connections one address may hold */
        char **allowed_sources;           /* CIDRs: the default of every cluster; none = any */
        size_t nallowed_sources;
        char *record;                     /* record what is ingested to this file; "" = off */
        int record_max_mb;                /* rotate the recording at this size */
    } ingest;

    struct {
        char brokers[1024];               /* "embedded" or "host:port,..." */
        char decisions_topic[SS_NAME_MAX * 2];
        char audit_topic[SS_NAME_MAX * 2];
        ss_kv *properties;                /* passed to librdkafka as is */
        size_t nproperties;
        int linger_ms;
        int heartbeat_s;                  /* republish an unchanged decision this often */
        int max_pending;                  /* decisions queued while brokers are down */
        int decision_ttl_s;               /* expiry carried in every decision */
    } kafka;

    struct {
        int max_apps_per_cluster;
        int max_apps;                     /* across all clusters */
        int max_series_per_app;           /* known + unknown gauges kept per app */
        int max_workers_per_cluster;      /* worker-gauge sources tracked */
        int ring_size;                    /* samples kept per history series */
        int max_bytes;                    /* memory the store may hold */
    } store;

    struct {
        int evaluate_interval_ms;         /* timer re-evaluation */
        int dry_run;                      /* decisions carry the dry-run flag */
        policy_conf defaults;             /* top-level policy keys; each cluster
                                           * starts from these, then overrides */
    } policy;

    ss_poll_conf poll;                    /* defaults for every cluster's poll: */

    struct {
        ss_listen_addr http;              /* status: /healthz, /metrics, /v1/clusters */
        char id[SS_NAME_MAX];             /* this actuator; "" = host name and pid */
        char group[SS_NAME_MAX * 2];      /* Kafka consumer group of the actuators */
        int call_timeout_ms;              /* one backend HTTP request */
        int max_attempts;                 /* backend calls: tries on 5xx/timeouts */
        ss_http_peer_conf http_client;    /* TLS/auth for Oshinko and exec-less peers */
        ss_scale_in_conf scale_in;        /* defaults for every cluster's target */
        struct {
            char *kubeconfig;             /* "" = in-cluster service account */
            char *context;                /* "" = current-context */
            int qps;                      /* client-side rate limit per API server */
            int burst;
        } kubernetes;
    } actuator;

    char log_level[16];

    ss_pool_conf *pools;
    size_t npools;
    ss_cluster_conf *clusters;
    size_t nclusters;
} ss_config;

/* The configuration used when no --config is given: carbon on
 * 127.0.0.1:2003, status on 127.0.0.1:9090, embedded Kafka, one cluster
 * "demo" with metrics_prefix "demo". */
extern const char ss_config_embedded_yaml[];

/* Loads and validates a YAML file. On success returns 0 and *out (caller
 * frees with ss_config_free). On failure returns a negative errno-style code
 * and writes a message naming the file, line and key into err. */
int ss_config_load_file(const char *path, ss_config **out, char *err, size_t errlen);

/* Same, from a NUL-terminated buffer; source names it in messages. */
int ss_config_load_string(const char *yaml, const char *source, ss_config **out,
                          char *err, size_t errlen);

void ss_config_free(ss_config *cfg);

/* Writes the effective configuration (every key, defaults filled in) as YAML
 * that ss_config_load_string accepts back. Kafka property values whose key
 * looks secret (password, secret, sasl.oauthbearer, ssl.key.pem) print as
 * "******". */
void ss_config_print(const ss_config *cfg, FILE *out);

/* Non-zero when cfg holds a secret (a password or token, a secret Kafka
 * property, credentials in a URL). */
int ss_config_has_secrets(const ss_config *cfg);

/* Logs a warning when cfg came from a file that holds secrets and that
 * users other than its owner can read. */
void ss_config_warn_secrets(const ss_config *cfg);

/* The bus settings of cfg (borrowed pointers into cfg) into *out. */
void ss_config_bus_conf(const ss_config *cfg, ss_bus_conf *out);

/* Index of the cluster named name, or -1. Linear scan: call it at start-up,
 * not per metric line. */
int ss_config_cluster_index(const ss_config *cfg, const char *name);

/* A policy demand setting's name as the configuration spells it ("ramp",
 * "target", "max_needed"); "?" for a value it does not know. */
const char *ss_config_demand_name(policy_demand_source d);

#endif
