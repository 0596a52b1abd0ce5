/* k8s_bus.c: the Kafka side of the Kubernetes end-to-end test: runs
 * librdkafka's mock cluster in its own process (real Kafka protocol on
 * loopback, transactions included) and publishes ScaleDecisions as
 * sparkscaled writes them, so a test can put a decision in Kafka and read
 * the actuator's audit back with `sparkscalectl audit`.
 *
 *   k8s_bus mock DIR                 prints "bootstrap HOST:PORT,...", runs until
 *                                    stdin closes or SIGTERM (DIR: for the pid check)
 *   k8s_bus decide BOOTSTRAP CLUSTER EPOCH SEQ DESIRED CURRENT [--dry-run]
 *                  [--removable HOST]...   prints "offset N" once acknowledged */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "lib/base/clock.h"
#include "lib/bus/kafka.h"
#include "lib/bus/record.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int run_mock(void)
{
    const char *topics[] = { "sparkscale.decisions", "sparkscale.audit" };
    char err[512];
    ss_kafka_mock *m = ss_kafka_mock_start(topics, 2, err, sizeof err);
    if (!m) {
        fprintf(stderr, "k8s_bus: mock: %s\n", err);
        return 1;
    }
    printf("bootstrap %s\n", ss_kafka_mock_bootstrap(m));
    fflush(stdout);
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char c;
    while (!stop && read(0, &c, 1) > 0)
        ;
    while (!stop)   /* stdin at EOF (e.g. /dev/null): wait for the signal */
        pause();
    ss_kafka_mock_stop(m);
    return 0;
}

static int64_t offset = -1;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (!msg->err)
        offset = msg->offset;
    else
        fprintf(stderr, "k8s_bus: delivery: %s\n", rd_kafka_err2str(msg->err));
}

static int run_decide(int argc, char **argv)
{
    if (argc < 8)
        return 2;
    ss_worker_ref rm[64];
    size_t nrm = 0;
    ss_decision d;
    memset(&d, 0, sizeof d);
    snprintf(d.cluster, sizeof d.cluster, "%s", argv[3]);
    d.producer_epoch = atoll(argv[4]);
    d.sequence = strtoull(argv[5], NULL, 10);
    d.desired_workers = atoi(argv[6]);
    d.recommended_workers = d.desired_workers;
    d.current_workers = atoi(argv[7]);
    d.busy_workers = -1;
    d.executors_per_worker = 1;
    d.decided_at_ms = ss_wall_ms();
    d.expires_at_ms = d.decided_at_ms + 120000;
    d.reason_code = d.desired_workers < d.current_workers ? SS_REASON_DOWN : SS_REASON_UP;
    snprintf(d.reason, sizeof d.reason, "k8s e2e decision %s", argv[5]);
    for (int i = 8; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run")) {
            d.dry_run = 1;
        } else if (!strcmp(argv[i], "--removable") && i + 1 < argc && nrm < 64) {
            memset(&rm[nrm], 0, sizeof rm[nrm]);
            snprintf(rm[nrm].host, sizeof rm[nrm].host, "%s", argv[++i]);
            rm[nrm].port = 7078;
            snprintf(rm[nrm].id, sizeof rm[nrm].id, "worker-20261201000000-%s-7078", argv[i]);
            nrm++;
        } else {
            return 2;
        }
    }
    d.removable_workers = rm;
    d.nremovable_workers = nrm;
    uint8_t *buf;
    size_t len;
    if (ss_decision_encode(&d, &buf, &len) != 0)
        return 1;
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", argv[2], e, sizeof e);
    rd_kafka_conf_set(c, "partitioner", "murmur2_random", e, sizeof e);   /* as sparkscaled keys */
    rd_kafka_conf_set(c, "enable.idempotence", "true", e, sizeof e);
    rd_kafka_conf_set(c, "linger.ms", "0", e, sizeof e);
    rd_kafka_conf_set(c, "log_level", "4", e, sizeof e);
    rd_kafka_conf_set_dr_msg_cb(c, on_dr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!p) {
        fprintf(stderr, "k8s_bus: %s\n", e);
        return 1;
    }
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC("sparkscale.decisions"),
                      RD_KAFKA_V_KEY(d.cluster, strlen(d.cluster)), RD_KAFKA_V_VALUE(buf, len),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    if (offset < 0)
        return 1;
    printf("offset %lld\n", (long long)offset);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "mock"))
        return run_mock();
    if (argc >= 2 && !strcmp(argv[1], "decide")) {
        int rc = run_decide(argc, argv);
        if (rc == 2)
            fprintf(stderr, "usage: k8s_bus decide BOOTSTRAP CLUSTER EPOCH SEQ DESIRED CURRENT "
                            "[--dry-run] [--removable HOST]...\n");
        return rc;
    }
    fprintf(stderr, "usage: k8s_bus mock DIR | k8s_bus decide BOOTSTRAP CLUSTER EPOCH SEQ DESIRED "
                    "CURRENT [--dry-run] [--removable HOST]...\n");
    return 2;
}
