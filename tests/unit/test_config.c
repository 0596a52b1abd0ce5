/* test_config.c: the YAML configuration loader: defaults, every key type,
 * every validation message (key path + line), printing and the round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config/config.h"

static ss_config *load_ok(const char *yaml)
{
    ss_config *cfg = NULL;
    char err[512] = "";
    int rc = ss_config_load_string(yaml, "t.yaml", &cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("unexpected load error %d: %s\n--- yaml ---\n%s", rc, err, yaml);
    assert_non_null(cfg);
    return cfg;
}

/* Loads yaml expecting failure; every needle must occur in the message. */
static void expect_error(const char *yaml, ...)
{
    ss_config *cfg = (ss_config *)(uintptr_t)1;
    char err[512] = "";
    int rc = ss_config_load_string(yaml, "t.yaml", &cfg, err, sizeof err);
    if (rc == 0)
        fail_msg("expected an error, load succeeded\n--- yaml ---\n%s", yaml);
    assert_int_equal(rc, -EINVAL);
    assert_null(cfg);
    va_list ap;
    va_start(ap, yaml);
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;)
        if (!strstr(err, needle))
            fail_msg("error message lacks \"%s\": %s", needle, err);
    va_end(ap);
}

#define ONE_CLUSTER "clusters:\n  - name: a\n"

static void test_defaults(void **state)
{
    (void)state;
    ss_config *cfg = load_ok(ONE_CLUSTER);
    assert_string_equal(cfg->source, "t.yaml");
    assert_int_equal(cfg->ingest.carbon_tcp.enabled, 1);
    assert_string_equal(cfg->ingest.carbon_tcp.host, "127.0.0.1");
    assert_int_equal(cfg->ingest.carbon_tcp.port, 2003);
    assert_int_equal(cfg->ingest.carbon_udp.enabled, 1);
    assert_int_equal(cfg->ingest.carbon_udp.port, 2003);
    assert_string_equal(cfg->ingest.http.host, "127.0.0.1");
    assert_int_equal(cfg->ingest.http.port, 9090);
    assert_int_equal(cfg->ingest.max_line_bytes, 4096);
    assert_string_equal(cfg->ingest.record, "");       /* recording is off by default */
    assert_int_equal(cfg->ingest.record_max_mb, 64);
    assert_int_equal(cfg->ingest.max_clients, 1024);
    assert_int_equal(cfg->ingest.client_idle_timeout_s, 120);
    assert_int_equal(cfg->ingest.read_buffer_bytes, 65536);
    assert_string_equal(cfg->kafka.brokers, "embedded");
    assert_string_equal(cfg->kafka.decisions_topic, "sparkscale.decisions");
    assert_string_equal(cfg->kafka.audit_topic, "sparkscale.audit");
    assert_int_equal(cfg->kafka.nproperties, 0);
    assert_null(cfg->kafka.properties);
    assert_int_equal(cfg->kafka.linger_ms, 1);
    assert_int_equal(cfg->kafka.heartbeat_s, 30);
    assert_int_equal(cfg->kafka.max_pending, 10000);
    assert_int_equal(cfg->kafka.decision_ttl_s, 120);
    assert_int_equal(cfg->store.max_apps_per_cluster, 64);
    assert_int_equal(cfg->store.max_apps, 100000);
    assert_int_equal(cfg->store.max_series_per_app, 24);
    assert_int_equal(cfg->store.max_workers_per_cluster, 1024);
    assert_int_equal(cfg->store.ring_size, 16);
    assert_int_equal(cfg->policy.evaluate_interval_ms, 1000);
    assert_int_equal(cfg->policy.dry_run, 0);
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->npools, 0);
    assert_int_equal(cfg->nclusters, 1);

    const ss_cluster_conf *cl = &cfg->clusters[0];
    assert_string_equal(cl->name, "a");
    assert_string_equal(cl->metrics_prefix, "a"); /* default = name */
    assert_int_equal(cl->nspark_master, 0);
    assert_int_equal(cl->njolokia, 0);
    assert_int_equal(cl->worker_cores, 4);
    assert_int_equal(cl->worker_memory_mb, 8192);
    assert_int_equal(cl->executor_cores, 1);
    assert_int_equal(cl->executor_memory_mb, 1024);
    assert_int_equal(cl->line, 2);
    const policy_conf *p = &cl->policy;
    assert_int_equal(p->min_workers, 1);
    assert_int_equal(p->max_workers, 20);
    assert_int_equal(p->idle_workers, 1);
    assert_int_equal(p->scale_down_window_s, 60);
    assert_int_equal(p->stale_after_s, 30);
    assert_int_equal(p->app_expiry_s, 120);
    assert_int_equal(p->max_step_up, 0);
    assert_int_equal(p->max_step_down, 0);
    assert_int_equal(p->tolerance_executors, 1);
    assert_int_equal(p->app_min_executors, 1);
    assert_int_equal(p->demand, POLICY_DEMAND_RAMP);
    assert_int_equal(p->idle_mode, POLICY_IDLE_OVER_NEED);   /* issue 13: need, not busy */
    assert_string_equal(p->pool, "");
    assert_memory_equal(p, &cfg->policy.defaults, sizeof *p);
    assert_int_equal(cl->target.kind, SS_TARGET_NONE);
    assert_string_equal(cl->target.namespace_, "");
    assert_string_equal(cl->target.workload, "");
    assert_int_equal(cl->target.ncommand, 0);
    assert_int_equal(cl->target.timeout_s, 30);
    assert_int_equal(cl->target.dry_run, 0);
    /* Scale-in safety: on by default, blind scale-in off. */
    assert_int_equal(cl->target.scale_in.decommission, 1);
    assert_int_equal(cl->target.scale_in.decommission_timeout_s, 120);
    assert_int_equal(cl->target.scale_in.max_decision_age_s, 30);
    assert_int_equal(cl->target.scale_in.allow_blind_scale_in, 0);
    assert_int_equal(cl->poll.interval_s, 5);
    assert_int_equal(cl->poll.timeout_ms, 3000);
    assert_string_equal(cl->poll.http.ca_file, "");
    assert_string_equal(cfg->actuator.http.host, "127.0.0.1");
    assert_int_equal(cfg->actuator.http.port, 9091);
    assert_string_equal(cfg->actuator.group, "sparkscale-actuators");
    assert_int_equal(cfg->actuator.kubernetes.qps, 20);
    assert_int_equal(cfg->actuator.kubernetes.burst, 40);
    assert_int_equal(ss_config_cluster_index(cfg, "a"), 0);
    assert_int_equal(ss_config_cluster_index(cfg, "b"), -1);
    ss_config_free(cfg);
}

static void test_embedded(void **state)
{
    (void)state;
    ss_config *cfg = NULL;
    char err[512] = "";
    assert_int_equal(ss_config_load_string(ss_config_embedded_yaml, "(embedded defaults)", &cfg,
                                           err, sizeof err), 0);
    assert_string_equal(cfg->source, "(embedded defaults)");
    assert_string_equal(cfg->ingest.carbon_tcp.host, "127.0.0.1");
    assert_int_equal(cfg->ingest.carbon_tcp.port, 2003);
    assert_int_equal(cfg->ingest.carbon_udp.enabled, 1);
    assert_int_equal(cfg->ingest.carbon_udp.port, 2003);
    assert_int_equal(cfg->ingest.http.port, 9090);
    assert_string_equal(cfg->kafka.brokers, "embedded");
    assert_int_equal(cfg->nclusters, 1);
    const ss_cluster_conf *cl = &cfg->clusters[0];
    assert_string_equal(cl->name, "demo");
    assert_string_equal(cl->metrics_prefix, "demo");
    assert_int_equal(cl->worker_cores, 4);
    assert_int_equal(cl->worker_memory_mb, 8192);
    assert_int_equal(cl->executor_cores, 2);
    assert_int_equal(cl->executor_memory_mb, 4096);
    assert_int_equal(cl->policy.min_workers, 1);
    assert_int_equal(cl->policy.max_workers, 20);
    assert_int_equal(cl->policy.idle_workers, 1);
    assert_int_equal(cl->target.kind, SS_TARGET_NONE);
    /* Readable means commented. */
    assert_non_null(strchr(ss_config_embedded_yaml, '#'));
    ss_config_free(cfg);
}

static const char every_key_yaml[] =
    "ingest:\n"
    "  carbon_tcp: \"10.0.0.1:2103\"\n"
    "  carbon_udp: off\n"
    "  http: \"[::1]:0\"\n"
    "  max_line_bytes: 64\n"
    "  max_clients: 7\n"
    "  client_idle_timeout_s: 0\n"
    "  read_buffer_bytes: 8192\n"
    "kafka:\n"
    "  brokers: \"k1:9092,k2:9092\"\n"
    "  decisions_topic: d.t\n"
    "  audit_topic: a_t\n"
    "  properties: { acks: all }\n"
    "  linger_ms: 0\n"
    "  heartbeat_s: 5\n"
    "  max_pending: 3\n"
    "  decision_ttl_s: 9\n"
    "store:\n"
    "  max_apps_per_cluster: 2\n"
    "  max_apps: 3\n"
    "  max_series_per_app: 4\n"
    "  max_workers_per_cluster: 500\n"
    "  ring_size: 6\n"
    "policy:\n"
    "  evaluate_interval_ms: 250\n"
    "  dry_run: yes\n"
    "  min_workers: 0\n"
    "  max_workers: 9\n"
    "  idle_workers: 2\n"
    "  scale_down_window_s: 11\n"
    "  stale_after_s: 12\n"
    "  app_expiry_s: 13\n"
    "  max_step_up: 14\n"
    "  max_step_down: 15\n"
    "  tolerance_executors: 16\n"
    "  app_min_executors: 17\n"
    "  demand: max_needed\n"
    "  pool: p1\n"
    "  idle_mode: need\n"
    "log_level: debug\n"
    "poll:\n"
    "  interval_s: 7\n"
    "  timeout_ms: 700\n"
    "  connect_timeout_ms: 70\n"
    "  max_response_kb: 77\n"
    "  max_backoff_s: 17\n"
    "  ca_file: /etc/ca.pem\n"
    "  insecure_skip_verify: false\n"
    "  username: u\n"
    "  password: pw\n"
    "actuator:\n"
    "  http: \"127.0.0.1:9191\"\n"
    "  id: act-1\n"
    "  group: g1\n"
    "  call_timeout_ms: 1234\n"
    "  max_attempts: 2\n"
    "  http_client: { bearer_token_file: /var/run/token }\n"
    "  decommission: false\n"
    "  decommission_timeout_s: 5\n"
    "  max_decision_age_s: 6\n"
    "  allow_blind_scale_in: true\n"
    "  kubernetes: { kubeconfig: /k/config, context: ctx, qps: 0, burst: 3 }\n"
    "pools:\n"
    "  - { name: p1, max_workers: 30 }\n"
    "clusters:\n"
    "  - name: c-1.x_y\n"
    "    metrics_prefix: \"\"\n"
    "    spark_master: [\"https://m:8080\", \"https://m2:8080\"]\n"
    "    jolokia: \"http://d:8778/jolokia/\"\n"
    "    worker: { cores: 16, memory_mb: 65536 }\n"
    "    executor: { cores: 3, memory_mb: 5000 }\n"
    "    poll: { interval_s: 2, bearer_token: tk, username: \"\", password: \"\" }\n"
    "    target:\n"
    "      kind: exec\n"
    "      command: [/usr/local/bin/resize, --to]\n"
    "      size_command: [/usr/local/bin/count]\n"
    "      timeout_s: 9\n"
    "      dry_run: true\n"
    "      max_decision_age_s: 8\n";

static void test_every_key(void **state)
{
    (void)state;
    ss_config *cfg = load_ok(every_key_yaml);
    assert_string_equal(cfg->ingest.carbon_tcp.host, "10.0.0.1");
    assert_int_equal(cfg->ingest.carbon_tcp.port, 2103);
    assert_int_equal(cfg->ingest.carbon_udp.enabled, 0);
    assert_int_equal(cfg->ingest.http.enabled, 1);
    assert_string_equal(cfg->ingest.http.host, "::1");
    assert_int_equal(cfg->ingest.http.port, 0);
    assert_int_equal(cfg->ingest.max_line_bytes, 64);
    assert_int_equal(cfg->ingest.max_clients, 7);
    assert_int_equal(cfg->ingest.client_idle_timeout_s, 0);
    assert_int_equal(cfg->ingest.read_buffer_bytes, 8192);
    assert_string_equal(cfg->kafka.brokers, "k1:9092,k2:9092");
    assert_string_equal(cfg->kafka.decisions_topic, "d.t");
    assert_string_equal(cfg->kafka.audit_topic, "a_t");
    assert_int_equal(cfg->kafka.nproperties, 1);
    assert_int_equal(cfg->kafka.linger_ms, 0);
    assert_int_equal(cfg->kafka.heartbeat_s, 5);
    assert_int_equal(cfg->kafka.max_pending, 3);
    assert_int_equal(cfg->kafka.decision_ttl_s, 9);
    assert_int_equal(cfg->store.max_apps_per_cluster, 2);
    assert_int_equal(cfg->store.max_apps, 3);
    assert_int_equal(cfg->store.max_series_per_app, 4);
    assert_int_equal(cfg->store.max_workers_per_cluster, 500);
    assert_int_equal(cfg->store.ring_size, 6);
    assert_int_equal(cfg->policy.evaluate_interval_ms, 250);
    assert_int_equal(cfg->policy.dry_run, 1);
    assert_string_equal(cfg->log_level, "debug");
    assert_int_equal(cfg->npools, 1);
    assert_string_equal(cfg->pools[0].name, "p1");
    assert_int_equal(cfg->pools[0].max_workers, 30);
    const ss_cluster_conf *cl = &cfg->clusters[0];
    assert_string_equal(cl->name, "c-1.x_y");
    assert_string_equal(cl->metrics_prefix, "");
    assert_int_equal(cl->nspark_master, 2);
    assert_string_equal(cl->spark_master[0], "https://m:8080");
    assert_string_equal(cl->spark_master[1], "https://m2:8080");
    assert_int_equal(cl->njolokia, 1);     /* a scalar is a list of one */
    assert_string_equal(cl->jolokia[0], "http://d:8778/jolokia/");
    assert_int_equal(cfg->poll.interval_s, 7);
    assert_int_equal(cfg->poll.max_backoff_s, 17);
    assert_string_equal(cfg->poll.http.ca_file, "/etc/ca.pem");
    assert_string_equal(cfg->poll.http.password, "pw");
    /* The cluster inherits poll and overrides some keys (its own copies). */
    assert_int_equal(cl->poll.interval_s, 2);
    assert_int_equal(cl->poll.timeout_ms, 700);
    assert_string_equal(cl->poll.http.ca_file, "/etc/ca.pem");
    assert_true(cl->poll.http.ca_file != cfg->poll.http.ca_file);
    assert_string_equal(cl->poll.http.bearer_token, "tk");
    assert_string_equal(cfg->actuator.id, "act-1");
    assert_string_equal(cfg->actuator.group, "g1");
    assert_int_equal(cfg->actuator.http.port, 9191);
    assert_int_equal(cfg->actuator.call_timeout_ms, 1234);
    assert_int_equal(cfg->actuator.max_attempts, 2);
    assert_string_equal(cfg->actuator.http_client.bearer_token_file, "/var/run/token");
    assert_int_equal(cfg->actuator.scale_in.decommission, 0);
    assert_string_equal(cfg->actuator.kubernetes.kubeconfig, "/k/config");
    assert_string_equal(cfg->actuator.kubernetes.context, "ctx");
    assert_int_equal(cfg->actuator.kubernetes.qps, 0);
    assert_int_equal(cfg->actuator.kubernetes.burst, 3);
    assert_int_equal(cl->worker_cores, 16);
    assert_int_equal(cl->worker_memory_mb, 65536);
    assert_int_equal(cl->executor_cores, 3);
    assert_int_equal(cl->executor_memory_mb, 5000);
    const policy_conf *p = &cl->policy;
    assert_int_equal(p->min_workers, 0);
    assert_int_equal(p->max_workers, 9);
    assert_int_equal(p->idle_workers, 2);
    assert_int_equal(p->scale_down_window_s, 11);
    assert_int_equal(p->stale_after_s, 12);
    assert_int_equal(p->app_expiry_s, 13);
    assert_int_equal(p->max_step_up, 14);
    assert_int_equal(p->max_step_down, 15);
    assert_int_equal(p->tolerance_executors, 16);
    assert_int_equal(p->app_min_executors, 17);
    assert_int_equal(p->demand, POLICY_DEMAND_MAX_NEEDED);
    assert_string_equal(p->pool, "p1");
    assert_int_equal(cl->target.kind, SS_TARGET_EXEC);
    assert_int_equal(cl->target.ncommand, 2);
    assert_string_equal(cl->target.command[0], "/usr/local/bin/resize");
    assert_string_equal(cl->target.command[1], "--to");
    assert_int_equal(cl->target.nsize_command, 1);
    assert_int_equal(cl->target.timeout_s, 9);
    assert_int_equal(cl->target.dry_run, 1);
    /* scale-in: the actuator's defaults, one overridden here */
    assert_int_equal(cl->target.scale_in.decommission, 0);
    assert_int_equal(cl->target.scale_in.decommission_timeout_s, 5);
    assert_int_equal(cl->target.scale_in.max_decision_age_s, 8);
    assert_int_equal(cl->target.scale_in.allow_blind_scale_in, 1);
    ss_config_free(cfg);
}

/* Booleans in the spellings YAML users write. */
static void test_bool_spellings(void **state)
{
    (void)state;
    static const struct { const char *text; int value; } cases[] = {
        { "true", 1 }, { "True", 1 }, { "on", 1 }, { "yes", 1 }, { "\"true\"", 1 },
        { "false", 0 }, { "FALSE", 0 }, { "off", 0 }, { "no", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "policy: { dry_run: %s }\n" ONE_CLUSTER, cases[i].text);
        ss_config *cfg = load_ok(yaml);
        assert_int_equal(cfg->policy.dry_run, cases[i].value);
        ss_config_free(cfg);
    }
}

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int enabled;
        const char *host;
        int port;
    } cases[] = {
        { "\"127.0.0.1:0\"", 1, "127.0.0.1", 0 },    /* port 0: pick a free one */
        { "off", 0, "", 0 },
        { "\"OFF\"", 0, "", 0 },
        { "\"\"", 0, "", 0 },
        { "", 0, "", 0 },                            /* null: disabled too */
        { "\"[::1]:2003\"", 1, "::1", 2003 },
        { "\"[::]:0\"", 1, "::", 0 },
        { "\"[fe80::1%eth0]:5\"", 1, "fe80::1%eth0", 5 },
        { "localhost:65535", 1, "localhost", 65535 },
        { "0.0.0.0:2003", 1, "0.0.0.0", 2003 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "ingest:\n  carbon_udp: %s\n" ONE_CLUSTER, cases[i].text);
        ss_config *cfg = load_ok(yaml);
        assert_int_equal(cfg->ingest.carbon_udp.enabled, cases[i].enabled);
        assert_string_equal(cfg->ingest.carbon_udp.host, cases[i].host);
        assert_int_equal(cfg->ingest.carbon_udp.port, cases[i].port);
        ss_config_free(cfg);
    }
}

static void test_bad_addresses(void **state)
{
    (void)state;
    static const char *bad[] = {
        "localhost",       /* no port */
        "\"::1:2003\"",    /* IPv6 without brackets */
        "\"1.2.3.4:65536\"",
        "\"1.2.3.4:-1\"",
        "\"[::1]2003\"",
        "\":2003\"",
        "\"host:abc\"",
        "\"host:\"",
        "\"[::1:2003\"",
        "\"[]:1\"",
        "\"bad host:1\"",
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "ingest:\n  http: %s\n" ONE_CLUSTER, bad[i]);
        expect_error(yaml, "t.yaml:2:9: ", "ingest.http: ", NULL);
    }
}

static void test_properties(void **state)
{
    (void)state;
    ss_config *cfg = load_ok("kafka:\n"
                             "  properties:\n"
                             "    acks: all\n"
                             "    linger.ms: 5\n"
                             "    enable.idempotence: true\n"
                             "    x.ratio: 1.50\n"
                             "    empty: \"\"\n"
                             "    sasl.password: \"p@ss: w\"\n"
                             "    ssl.key.password: k\n"
                             "    client.secret: s\n"
                             "    sasl.oauthbearer.config: \"principal=x\"\n" ONE_CLUSTER);
    assert_int_equal(cfg->kafka.nproperties, 9);
    static const char *want[][2] = {
        { "acks", "all" }, { "linger.ms", "5" }, { "enable.idempotence", "true" },
        { "x.ratio", "1.50" }, /* the text as written, not a re-formatted number */
        { "empty", "" }, { "sasl.password", "p@ss: w" }, { "ssl.key.password", "k" },
        { "client.secret", "s" }, { "sasl.oauthbearer.config", "principal=x" },
    };
    for (size_t i = 0; i < 9; i++) {
        assert_string_equal(cfg->kafka.properties[i].key, want[i][0]);
        assert_string_equal(cfg->kafka.properties[i].value, want[i][1]);
    }

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    ss_config_print(cfg, out);
    fclose(out);
    assert_null(strstr(text, "p@ss"));
    assert_null(strstr(text, "principal=x"));
    assert_non_null(strstr(text, "\"sasl.password\": \"******\""));
    assert_non_null(strstr(text, "\"client.secret\": \"******\""));
    assert_non_null(strstr(text, "\"sasl.oauthbearer.config\": \"******\""));
    assert_non_null(strstr(text, "\"acks\": \"all\""));
    assert_non_null(strstr(text, "\"x.ratio\": \"1.50\""));
    free(text);
    ss_config_free(cfg);

    expect_error("kafka:\n  properties:\n    acks: [1]\n" ONE_CLUSTER,
                 "t.yaml:3:11: ", "kafka.properties.acks: ", "scalar", NULL);
    expect_error("kafka:\n  properties:\n    acks: all\n    acks: 1\n" ONE_CLUSTER,
                 "t.yaml:4:5: ", "kafka.properties.acks: ", "duplicate", NULL);
    expect_error("kafka:\n  properties: [a]\n" ONE_CLUSTER,
                 "t.yaml:2:15: ", "kafka.properties: ", "mapping", NULL);
}

static void test_policy_inheritance(void **state)
{
    (void)state;
    ss_config *cfg = load_ok("clusters:\n"
                             "  - name: a\n"
                             "    policy: { max_workers: 50, demand: target }\n"
                             "  - name: b\n"
                             /* defaults declared after the clusters still apply */
                             "policy:\n"
                             "  min_workers: 3\n"
                             "  max_workers: 40\n"
                             "  scale_down_window_s: 90\n"
                             "  demand: max_needed\n");
    const policy_conf *a = &cfg->clusters[0].policy, *b = &cfg->clusters[1].policy;
    assert_int_equal(cfg->policy.defaults.min_workers, 3);
    assert_int_equal(cfg->policy.defaults.max_workers, 40);
    assert_int_equal(a->min_workers, 3);           /* inherited */
    assert_int_equal(a->max_workers, 50);          /* overridden */
    assert_int_equal(a->scale_down_window_s, 90);  /* inherited */
    assert_int_equal(a->demand, POLICY_DEMAND_TARGET);
    assert_int_equal(a->idle_workers, 1);          /* built-in default */
    assert_int_equal(b->min_workers, 3);
    assert_int_equal(b->max_workers, 40);
    assert_int_equal(b->demand, POLICY_DEMAND_MAX_NEEDED);
    assert_memory_equal(b, &cfg->policy.defaults, sizeof *b);
    ss_config_free(cfg);
}

static void test_pools(void **state)
{
    (void)state;
    ss_config *cfg = load_ok("pools:\n"
                             "  - name: big\n"
                             "    max_workers: 100\n"
                             "  - { name: small, max_workers: 4 }\n"
                             "clusters:\n"
                             "  - { name: a, policy: { pool: big } }\n"
                             "  - { name: b, policy: { pool: small } }\n"
                             "  - { name: c }\n");
    assert_int_equal(cfg->npools, 2);
    assert_string_equal(cfg->pools[0].name, "big");
    assert_int_equal(cfg->pools[0].max_workers, 100);
    assert_string_equal(cfg->pools[1].name, "small");
    assert_int_equal(cfg->pools[1].max_workers, 4);
    assert_string_equal(cfg->clusters[0].policy.pool, "big");
    assert_string_equal(cfg->clusters[1].policy.pool, "small");
    assert_string_equal(cfg->clusters[2].policy.pool, "");
    assert_int_equal(ss_config_cluster_index(cfg, "c"), 2);
    ss_config_free(cfg);

    expect_error("pools:\n  - { name: p, max_workers: 4 }\n"
                 "clusters:\n  - name: a\n    policy: { pool: q }\n",
                 "t.yaml:5:21: ", "clusters[0].policy.pool: ", "\"q\" is not declared", NULL);
    expect_error("policy: { pool: nope }\n" ONE_CLUSTER,
                 "t.yaml:1:17: ", "policy.pool: ", "not declared", NULL);
    expect_error("pools:\n  - { name: p, max_workers: 4 }\n  - { name: p, max_workers: 5 }\n"
                 ONE_CLUSTER, "t.yaml:3:13: ", "pools[1].name: ", "duplicate pool name", NULL);
    expect_error("pools:\n  - { name: p }\n" ONE_CLUSTER,
                 "t.yaml:2:5: ", "pools[0].max_workers: ", "required", NULL);
}

static void test_targets(void **state)
{
    (void)state;
    ss_config *cfg = load_ok("clusters:\n"
                             "  - name: k\n"
                             "    target: { kind: kubernetes, namespace: spark, workload: statefulset/w-1 }\n"
                             "  - name: o\n"
                             "    target: { kind: oshinko, url: \"http://oshinko:8080\" }\n"
                             "  - name: r\n"
                             "    target: { kind: kubernetes, namespace: x, workload: replicaset/a.b,\n"
                             "              url: \"https://api:6443\" }\n");
    assert_int_equal(cfg->clusters[0].target.kind, SS_TARGET_KUBERNETES);
    assert_string_equal(cfg->clusters[0].target.namespace_, "spark");
    assert_string_equal(cfg->clusters[0].target.workload, "statefulset/w-1");
    assert_int_equal(cfg->clusters[1].target.kind, SS_TARGET_OSHINKO);
    assert_string_equal(cfg->clusters[1].target.url, "http://oshinko:8080");
    assert_string_equal(cfg->clusters[1].target.cluster, "o"); /* oshinko name = cluster */
    assert_string_equal(cfg->clusters[2].target.url, "https://api:6443");
    ss_config_free(cfg);

    expect_error("clusters:\n  - name: k\n    target:\n      kind: kubernetes\n"
                 "      workload: deployment/w\n",
                 "t.yaml:4:7: ", "clusters[0].target.namespace: ", "\"k\"", NULL);
    expect_error("clusters:\n  - name: k\n    target:\n      kind: kubernetes\n"
                 "      namespace: spark\n      workload: pod/w\n",
                 "t.yaml:6:17: ", "clusters[0].target.workload: ", "deployment/<name>", NULL);
    expect_error("clusters:\n  - name: k\n    target:\n      kind: kubernetes\n"
                 "      namespace: spark\n      workload: deployment/Bad_Name\n",
                 "t.yaml:6:17: ", "clusters[0].target.workload: ", NULL);
    expect_error("clusters:\n  - name: o\n    target: { kind: oshinko }\n",
                 "t.yaml:3:13: ", "clusters[0].target.url: ", "Oshinko", NULL);
    expect_error("clusters:\n  - name: e\n    target: { kind: exec }\n",
                 "t.yaml:3:13: ", "clusters[0].target.command: ", NULL);
    expect_error("clusters:\n  - name: e\n    target: { kind: yarn }\n",
                 "t.yaml:3:21: ", "clusters[0].target.kind: ",
                 "none | kubernetes | oshinko | exec", "\"yarn\"", NULL);
    expect_error("clusters:\n  - name: e\n    target: { kind: oshinko, url: \"ftp://x\" }\n",
                 "t.yaml:3:35: ", "clusters[0].target.url: ", "http", NULL);
}

/* Every validation rule, with the line:column and the full key path. */
/* A pathological file (deep nesting of lists or mappings) is rejected at
 * the first level past the bound, not after building the whole document:
 * 2,000,000 levels would otherwise never finish. */
static void test_deep_yaml_rejected(void **state)
{
    (void)state;
    size_t depth = 2000000;
    char *flow = malloc(depth * 2 + 64);
    assert_non_null(flow);
    size_t n = 0;
    n += (size_t)sprintf(flow, "clusters: ");
    for (size_t i = 0; i < depth; i++)
        flow[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        flow[n++] = ']';
    flow[n++] = '\n';
    flow[n] = '\0';
    ss_config *cfg = NULL;
    char err[512] = "";
    assert_int_equal(ss_config_load_string(flow, "deep.yaml", &cfg, err, sizeof err), -E2BIG);
    assert_non_null(strstr(err, "nested deeper than"));
    assert_null(cfg);
    free(flow);
    /* 80,000 mappings deep. */
    depth = 80000;
    char *block = malloc(depth * 8 + 64);
    assert_non_null(block);
    n = 0;
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(block + n, "{k: ");
    for (size_t i = 0; i < depth; i++)
        block[n++] = '}';
    block[n] = '\0';
    assert_int_equal(ss_config_load_string(block, "deep.yaml", &cfg, err, sizeof err), -E2BIG);
    free(block);
}

/* Prefixes that only look alike do not overlap. */
static void test_prefixes_distinct(void **state)
{
    (void)state;
    ss_config *cfg = load_ok("clusters:\n  - name: a\n    metrics_prefix: alpha\n"
                             "  - name: b\n    metrics_prefix: alpha-x\n"
                             "  - name: c\n    metrics_prefix: alphax.y\n"
                             "  - name: d\n    metrics_prefix: teams.alpha\n");
    assert_int_equal(cfg->nclusters, 4);
    ss_config_free(cfg);
}

static void test_validation_errors(void **state)
{
    (void)state;
    /* The brief's own example: line 14, second cluster. */
    expect_error("# comment\n"
                 "ingest:\n"
                 "  carbon_tcp: \"127.0.0.1:2003\"\n"
                 "kafka:\n"
                 "  brokers: embedded\n"
                 "clusters:\n"
                 "  - name: alpha\n"
                 "    policy:\n"
                 "      min_workers: 1\n"
                 "  - name: beta\n"
                 "    policy:\n"
                 "      min_workers: 3\n"
                 "      idle_workers: 1\n"
                 "      max_workers: 2\n",
                 "t.yaml:14:20: ", "clusters[1].policy.max_workers: ", "must be >= min_workers (3)",
                 NULL);
    /* Inherited max: the message points at the cluster that overrode min. */
    expect_error("policy: { max_workers: 5 }\nclusters:\n  - name: a\n    policy: { min_workers: 6 }\n",
                 "t.yaml:4:13: ", "clusters[0].policy.max_workers: ", "min_workers (6)", NULL);
    expect_error("policy: { min_workers: 6, max_workers: 5 }\n" ONE_CLUSTER,
                 "t.yaml:1:40: ", "policy.max_workers: ", NULL);
    expect_error("clusters:\n  - name: a\n    worker: { cores: 4 }\n    executor: { cores: 8 }\n",
                 "t.yaml:4:24: ", "clusters[0].executor.cores: ", "cluster \"a\"",
                 "executors per worker would be 0", NULL);
    expect_error("clusters:\n  - name: a\n    worker: { memory_mb: 1000 }\n"
                 "    executor: { memory_mb: 1001 }\n",
                 "t.yaml:4:28: ", "clusters[0].executor.memory_mb: ", "cluster \"a\"", NULL);
    /* Defaults: a 1-core worker cannot hold the default... executor cores = 1: fits. */
    expect_error("clusters:\n  - name: a\n    worker: { cores: 1 }\n    executor: { cores: 2 }\n",
                 "clusters[0].executor.cores: ", NULL);
    expect_error("clusters:\n  - name: a\n  - name: b\n  - name: a\n",
                 "t.yaml:4:11: ", "clusters[2].name: ", "duplicate cluster name \"a\"",
                 "first at line 2", NULL);
    expect_error("clusters:\n  - name: a\n  - name: b\n    metrics_prefix: a\n",
                 "t.yaml:4:21: ", "clusters[1].metrics_prefix: ", "duplicate metrics_prefix \"a\"",
                 "cluster \"a\"", NULL);
    expect_error("clusters:\n  - { name: a, metrics_prefix: \"\" }\n"
                 "  - { name: b, metrics_prefix: \"\" }\n",
                 "t.yaml:3:32: ", "clusters[1].metrics_prefix: ", "duplicate", NULL);
    expect_error("clusters:\n  - name: a\n    metrics_prefix: \"a..b\"\n",
                 "t.yaml:3:21: ", "clusters[0].metrics_prefix: ", "empty path component", NULL);
    /* A valid name need not be a valid prefix: the default must be checked too. */
    expect_error("clusters:\n  - name: spark.\n", "t.yaml:2:11: ", "clusters[0].name: ",
                 "default metrics_prefix", NULL);
    ss_config *cfg = load_ok("clusters:\n  - { name: spark., metrics_prefix: spark }\n");
    ss_config_free(cfg);
    expect_error("clusters:\n  - name: a\n    metrics_prefix: \"a b\"\n",
                 "clusters[0].metrics_prefix: ", "blanks", NULL);
    expect_error("clusters: []\n", "t.yaml:1:11: ", "clusters: ", "at least one cluster", NULL);
    expect_error("log_level: info\n", "t.yaml:1:1: ", "clusters: ", "at least one cluster", NULL);
    expect_error("", "t.yaml:1:1: ", "clusters: ", "at least one cluster", NULL);
    expect_error("clusters:\n  - metrics_prefix: x\n",
                 "t.yaml:2:5: ", "clusters[0].name: ", "required", NULL);
    expect_error("clusters:\n  -\n", "t.yaml:", "clusters[0].name: ", "required", NULL);
    expect_error("clusters:\n  - name: \"a/b\"\n",
                 "t.yaml:2:11: ", "clusters[0].name: ", "letters, digits", NULL);
    expect_error("clusters:\n  - name: \"\"\n", "t.yaml:2:11: ", "clusters[0].name: ", "empty", NULL);
    expect_error("clusters:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                 "clusters[0].name: ", "too long", "at most 63", NULL);
    /* Overlapping prefixes: an app's lines would land in the wrong cluster. */
    expect_error("clusters:\n  - name: a\n    metrics_prefix: alpha\n  - name: b\n    metrics_prefix: beta\n"
                 "  - name: c\n    metrics_prefix: alpha-x\n  - name: d\n    metrics_prefix: alpha.prod\n",
                 "clusters[3].metrics_prefix: ", "\"alpha.prod\" of cluster \"d\" overlaps \"alpha\" of cluster \"a\"",
                 NULL);
    expect_error("clusters:\n  - name: a\n    metrics_prefix: \"\"\n  - name: b\n",
                 "overlaps", "cluster \"a\"", NULL);
    expect_error("clusters:\n  - name: a\n    metrics_prefix: t.x.y\n  - name: b\n    metrics_prefix: t.x\n",
                 "clusters[0].metrics_prefix: ", "overlaps \"t.x\"", NULL);
    /* Peers: basic auth and a bearer token are exclusive, per cluster too. */
    expect_error("poll: { username: u, bearer_token: t }\nclusters:\n  - name: a\n",
                 "t.yaml:1:36: ", "poll.bearer_token: ", "exclusive", NULL);
    expect_error("clusters:\n  - name: a\n    poll: { password: p }\n",
                 "clusters[0].poll.username: ", "needs a username", NULL);
    /* Both daemons read one file: their status ports must differ. */
    expect_error("ingest: { http: \"127.0.0.1:9000\" }\nactuator: { http: \"127.0.0.1:9000\" }\n"
                 "clusters:\n  - name: a\n", "actuator.http: ", "same TCP address", NULL);
    /* exec: argv, the program first. */
    expect_error("clusters:\n  - name: a\n    target: { kind: exec, command: [] }\n",
                 "clusters[0].target.command: ", "needs a command", NULL);
    expect_error("clusters:\n  - name: a\n    target: { kind: exec, command: [x], timeout_s: 0 }\n",
                 "clusters[0].target.timeout_s: ", "between 1 and 86400", NULL);
    expect_error("clusters:\n  - name: a\n    jolokia: [\"http://ok/\", \"ftp://no\"]\n",
                 "clusters[0].jolokia[1]: ", "URL", NULL);
    expect_error("clusters:\n  - name: a\n    spark_master: master:8080\n",
                 "t.yaml:3:19: ", "clusters[0].spark_master[0]: ", "URL", NULL);
    expect_error("ingest: { max_line_bytes: 8192, read_buffer_bytes: 4096 }\n" ONE_CLUSTER,
                 "t.yaml:1:52: ", "ingest.read_buffer_bytes: ", "max_line_bytes (8192)", NULL);
    expect_error("ingest: { carbon_tcp: \"0.0.0.0:80\", http: \"0.0.0.0:80\" }\n" ONE_CLUSTER,
                 "ingest.http: ", "carbon_tcp", NULL);
    expect_error("kafka: { decisions_topic: x, audit_topic: x }\n" ONE_CLUSTER,
                 "t.yaml:1:43: ", "kafka.audit_topic: ", "differ", NULL);
    expect_error("kafka: { decisions_topic: \"a b\" }\n" ONE_CLUSTER,
                 "kafka.decisions_topic: ", "topic", NULL);
    expect_error("kafka: { brokers: \"\" }\n" ONE_CLUSTER, "kafka.brokers: ", "empty", NULL);
    expect_error("store: { max_apps: 10, max_apps_per_cluster: 11 }\n" ONE_CLUSTER,
                 "store.max_apps_per_cluster: ", "max_apps (10)", NULL);
    expect_error("store: { max_workers_per_cluster: 10 }\n" ONE_CLUSTER,
                 "policy.max_workers: ", "max_workers_per_cluster (10)", NULL);
}

static void test_type_errors(void **state)
{
    (void)state;
    expect_error("ingest:\n  max_clients: abc\n" ONE_CLUSTER,
                 "t.yaml:2:16: ", "ingest.max_clients: ", "must be an integer", "\"abc\"", NULL);
    expect_error("ingest:\n  max_clients: 1.5\n" ONE_CLUSTER, "ingest.max_clients: ", "integer", NULL);
    expect_error("ingest:\n  max_clients:\n" ONE_CLUSTER, "ingest.max_clients: ", "integer", NULL);
    expect_error("ingest:\n  max_clients: 99999999999999999999\n" ONE_CLUSTER,
                 "ingest.max_clients: ", "integer", NULL);
    expect_error("ingest:\n  max_clients: [1]\n" ONE_CLUSTER,
                 "ingest.max_clients: ", "integer, got a list", NULL);
    expect_error("ingest:\n  max_line_bytes: 10\n" ONE_CLUSTER,
                 "t.yaml:2:19: ", "ingest.max_line_bytes: ", "between 64 and 1048576", "got 10", NULL);
    expect_error("ingest:\n  max_line_bytes: 2000000\n" ONE_CLUSTER,
                 "ingest.max_line_bytes: ", "between 64 and 1048576", NULL);
    expect_error("policy: { dry_run: maybe }\n" ONE_CLUSTER,
                 "t.yaml:1:20: ", "policy.dry_run: ", "true or false", NULL);
    expect_error("policy: { demand: most }\n" ONE_CLUSTER,
                 "policy.demand: ", "target | max_needed", NULL);
    expect_error("log_level: loud\n" ONE_CLUSTER,
                 "t.yaml:1:12: ", "log_level: ", "debug | info | warn | error", NULL);
    expect_error("clusters:\n  - name: a\n    worker: { cores: -1 }\n",
                 "t.yaml:3:22: ", "clusters[0].worker.cores: ", "between 1 and", NULL);
    expect_error("clusters:\n  - name: [a]\n", "clusters[0].name: ", "must be a string", NULL);
    expect_error("ingest: [1, 2]\n" ONE_CLUSTER, "t.yaml:1:9: ", "ingest: ", "mapping", NULL);
    expect_error("clusters: { name: a }\n", "t.yaml:1:11: ", "clusters: ", "list", NULL);
    expect_error("- a\n- b\n", "t.yaml:1:1: ", "(top level): ", "mapping", NULL);
    expect_error("clusters:\n  - name: \"a\\0b\"\n", "clusters[0].name: ", "NUL", NULL);
}

static void test_unknown_and_duplicate_keys(void **state)
{
    (void)state;
    expect_error("ingest:\n  carbon_tpc: \"1.2.3.4:5\"\n" ONE_CLUSTER,
                 "t.yaml:2:3: ", "ingest.carbon_tpc: ", "unknown key", "did you mean \"carbon_tcp\"", NULL);
    expect_error("clusters:\n  - name: a\n    polcy: { min_workers: 1 }\n",
                 "t.yaml:3:5: ", "clusters[0].polcy: ", "unknown key", "\"policy\"", NULL);
    expect_error("clusters:\n  - name: a\n    policy: { max_worker: 1 }\n",
                 "t.yaml:3:15: ", "clusters[0].policy.max_worker: ", "did you mean \"max_workers\"", NULL);
    expect_error("policy: { evaluate_interval: 5 }\n" ONE_CLUSTER,
                 "policy.evaluate_interval: ", "unknown key", NULL);
    expect_error("zookeeper: x\n" ONE_CLUSTER, "t.yaml:1:1: ", "zookeeper: ", "unknown key", NULL);
    expect_error("clusters:\n  - name: a\n    target: { kind: none, namespce: x }\n",
                 "clusters[0].target.namespce: ", "unknown key", NULL);
    expect_error("ingest:\n  http: off\n  http: \"1.2.3.4:5\"\n" ONE_CLUSTER,
                 "t.yaml:3:3: ", "ingest.http: ", "duplicate key", "first at line 2", NULL);
    expect_error("? [a]\n: b\n" ONE_CLUSTER, "keys must be plain strings", NULL);
}

static void test_yaml_syntax_and_files(void **state)
{
    (void)state;
    expect_error("clusters:\n  - name: a\n   bad: [\n", "t.yaml:", "YAML syntax error", NULL);
    expect_error(ONE_CLUSTER "---\n" ONE_CLUSTER, "t.yaml:3:", "only one YAML document", NULL);

    ss_config *cfg = (ss_config *)(uintptr_t)1;
    char err[512] = "";
    int rc = ss_config_load_file("/nonexistent/sparkscale.yaml", &cfg, err, sizeof err);
    assert_int_equal(rc, -ENOENT);
    assert_null(cfg);
    assert_non_null(strstr(err, "/nonexistent/sparkscale.yaml"));

    /* A real file: messages carry its path. */
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("clusters:\n  - name: a\n    worker: { cores: zero }\n", f);
    fclose(f);
    rc = ss_config_load_file(path, &cfg, err, sizeof err);
    assert_int_equal(rc, -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:3:22: clusters[0].worker.cores: ", path);
    if (!strstr(err, want))
        fail_msg("want \"%s\" in: %s", want, err);
    f = fopen(path, "w");
    fputs(ONE_CLUSTER, f);
    fclose(f);
    rc = ss_config_load_file(path, &cfg, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg->source, path);
    ss_config_free(cfg);
    unlink(path);

    /* A NULL/short error buffer is allowed. */
    assert_int_equal(ss_config_load_string("x: 1\n", NULL, &cfg, NULL, 0), -EINVAL);
    char tiny[8];
    assert_int_equal(ss_config_load_string("x: 1\n", NULL, &cfg, tiny, sizeof tiny), -EINVAL);
    assert_true(strlen(tiny) < sizeof tiny);
}

/* noinline: gcc -O2 otherwise warns (falsely) that open_memstream keeps a local's address */
__attribute__((noinline)) static void printed(const ss_config *cfg, char **text_out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    ss_config_print(cfg, out);
    fclose(out);
    *text_out = text;
}

/* Two configurations are equal when they print the same (every key, with
 * its value, is printed; only the source line may differ). */
static void assert_config_equal(const ss_config *a, const ss_config *b)
{
    char *ta, *tb;
    printed(a, &ta);
    printed(b, &tb);
    assert_string_equal(strchr(ta, '\n'), strchr(tb, '\n'));
    free(ta);
    free(tb);
    assert_int_equal(a->nclusters, b->nclusters);
    assert_int_equal(a->kafka.nproperties, b->kafka.nproperties);
}

static ss_config *reprint_and_load(const ss_config *cfg, char **text_out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    ss_config_print(cfg, out);
    fclose(out);
    ss_config *again = NULL;
    char err[512] = "";
    int rc = ss_config_load_string(text, "printed", &again, err, sizeof err);
    if (rc != 0)
        fail_msg("printed config does not load: %s\n--- printed ---\n%s", err, text);
    *text_out = text;
    return again;
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *inputs[] = {
        ONE_CLUSTER,
        every_key_yaml,
        ss_config_embedded_yaml,
        /* Strings that need quoting and escapes in the printed YAML. */
        "kafka:\n"
        "  properties:\n"
        "    \"odd key: #1\": \"line1\\nline2\\t\\\"q\\\" \\\\ \\x01 é\"\n"
        "    \"yes\": no\n"
        "clusters:\n"
        "  - name: a\n"
        "    metrics_prefix: \"#weird'prefix:\"\n"
        "    target: { kind: exec, command: \"sh -c 'echo \\\"$1\\\" > /tmp/x' --\" }\n"
        "  - name: \"y\"\n"
        "    metrics_prefix: \"null\"\n"
        "  - name: \"off\"\n"
        "    metrics_prefix: \"~\"\n"
        "ingest: { http: \"[::]:0\", carbon_tcp: \"\", carbon_udp: \"localhost:0\" }\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        ss_config *cfg = load_ok(inputs[i]);
        char *text = NULL;
        ss_config *again = reprint_and_load(cfg, &text);
        assert_config_equal(cfg, again);
        /* Every key is written out, defaults included. */
        static const char *keys[] = { "carbon_tcp:", "client_idle_timeout_s:", "decision_ttl_s:",
                                      "properties:", "ring_size:", "evaluate_interval_ms:",
                                      "app_min_executors:", "log_level:", "pools:", "spark_master:",
                                      "memory_mb:", "namespace:", "command:", NULL };
        for (int k = 0; keys[k]; k++)
            if (!strstr(text, keys[k]))
                fail_msg("printed config lacks %s\n%s", keys[k], text);
        /* Printing the re-loaded config is a fixed point. */
        char *text2 = NULL;
        ss_config *third = reprint_and_load(again, &text2);
        const char *body1 = strchr(text, '\n'), *body2 = strchr(text2, '\n');
        assert_string_equal(body1, body2); /* only the source line differs */
        ss_config_free(third);
        free(text2);
        free(text);
        ss_config_free(again);
        ss_config_free(cfg);
    }
    /* Checked by hand once: weird strings come back intact. */
    ss_config *cfg = load_ok(inputs[3]);
    assert_string_equal(cfg->kafka.properties[0].key, "odd key: #1");
    assert_string_equal(cfg->kafka.properties[0].value, "line1\nline2\t\"q\" \\ \x01 \xc3\xa9");
    assert_string_equal(cfg->kafka.properties[1].value, "no");
    assert_string_equal(cfg->clusters[0].metrics_prefix, "#weird'prefix:");
    assert_string_equal(cfg->clusters[1].metrics_prefix, "null");
    assert_string_equal(cfg->clusters[2].name, "off");
    assert_int_equal(cfg->ingest.carbon_tcp.enabled, 0);
    ss_config_free(cfg);
}

static void test_example_file(void **state)
{
    (void)state;
    /* ctest sets SS_SOURCE_DIR; by hand, try the source tree and build dirs. */
    char path[1024];
    const char *src = getenv("SS_SOURCE_DIR");
    static const char *roots[] = { ".", "..", "../.." };
    if (src) {
        snprintf(path, sizeof path, "%s/deploy/sparkscale.example.yaml", src);
    } else {
        for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
            snprintf(path, sizeof path, "%s/deploy/sparkscale.example.yaml", roots[i]);
            if (access(path, R_OK) == 0)
                break;
        }
    }
    ss_config *cfg = NULL;
    char err[512] = "";
    int rc = ss_config_load_file(path, &cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("%s does not load: %s", path, err);
    assert_int_equal(cfg->nclusters, 2);
    assert_int_equal(cfg->npools, 1);
    const ss_cluster_conf *etl = &cfg->clusters[ss_config_cluster_index(cfg, "etl")];
    const ss_cluster_conf *an = &cfg->clusters[ss_config_cluster_index(cfg, "analytics")];
    assert_int_equal(etl->target.kind, SS_TARGET_KUBERNETES);
    assert_string_equal(etl->target.workload, "deployment/etl-worker");
    assert_int_equal(an->target.kind, SS_TARGET_OSHINKO);
    assert_string_equal(etl->policy.pool, cfg->pools[0].name);
    assert_string_equal(an->policy.pool, cfg->pools[0].name);
    assert_int_equal(an->policy.min_workers, 0);
    assert_int_equal(an->policy.demand, POLICY_DEMAND_MAX_NEEDED);
    assert_int_equal(an->policy.max_step_down, 2); /* from the top-level defaults */
    assert_true(cfg->kafka.nproperties > 0);
    char *text = NULL;
    ss_config *again = reprint_and_load(cfg, &text);
    assert_null(strstr(text, "change-me")); /* the example's SASL password is masked */
    free(text);
    ss_config_free(again);
    ss_config_free(cfg);
}

/* Many clusters: duplicate detection must stay O(n log n) (no timing asserted,
 * but a quadratic scan would make this test visibly slow under valgrind). */
static void test_many_clusters(void **state)
{
    (void)state;
    enum { N = 3000 };
    size_t cap = (size_t)N * 64 + 64;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    size_t o = (size_t)snprintf(yaml, cap, "clusters:\n");
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "  - { name: c%d, metrics_prefix: p.%d }\n", i, i);
    ss_config *cfg = load_ok(yaml);
    assert_int_equal(cfg->nclusters, N);
    assert_int_equal(ss_config_cluster_index(cfg, "c2999"), 2999);
    assert_int_equal(cfg->clusters[1234].line, 1236);
    ss_config_free(cfg);

    /* The same from a file bigger than the reader's first buffer. */
    char path[] = "/tmp/test_config_many_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_true(o > 64 * 1024);
    assert_int_equal(write(fd, yaml, o), (ssize_t)o);
    close(fd);
    char err[512] = "";
    assert_int_equal(ss_config_load_file(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->nclusters, N);
    assert_string_equal(cfg->clusters[N - 1].metrics_prefix, "p.2999");
    ss_config_free(cfg);
    unlink(path);
    /* The last one duplicates an early one. */
    snprintf(yaml + o, cap - o, "  - { name: c7 }\n");
    expect_error(yaml, "clusters[3000].name: ", "duplicate cluster name \"c7\"", "first at line 9", NULL);
    free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_bool_spellings),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_policy_inheritance),
        cmocka_unit_test(test_pools),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_prefixes_distinct),
        cmocka_unit_test(test_deep_yaml_rejected),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_unknown_and_duplicate_keys),
        cmocka_unit_test(test_yaml_syntax_and_files),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_many_clusters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
