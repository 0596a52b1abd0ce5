/* backend.h: what resizes a cluster's workers (exec command, Oshinko REST,
 * Kubernetes), behind one asynchronous interface on the actuator's loop.
 * A backend reads the size, sets it, or removes given workers; it never
 * chooses victims itself (the actuator does, see plan.h) and never waits
 * for Spark. One backend instance per cluster; each call reports once. */
#ifndef SS_ACTUATOR_BACKEND_H
#define SS_ACTUATOR_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/bus/record.h"
#include "lib/config/config.h"
#include "lib/http/client.h"

typedef struct ss_backend ss_backend;        /* one cluster's backend */
typedef struct ss_backend_op ss_backend_op;  /* one call in flight */
typedef struct ss_backend_ops ss_backend_ops;

/* What every backend of a daemon shares. Borrowed for the backends' life. */
typedef struct ss_backend_env {
    uv_loop_t *loop;
    ss_http_client *http;              /* libcurl multi on the loop, shared */
    const ss_config *cfg;              /* actuator: call_timeout_ms, max_attempts,
                                        * http_client, kubernetes */
    const char *actuator_id;
} ss_backend_env;

/* The part every backend struct starts with. */
struct ss_backend {
    const ss_backend_ops *ops;
    const ss_cluster_conf *cluster;    /* borrowed from the configuration */
    const ss_backend_env *env;
};

/* One resize. "Set the size" is a call without workers; "remove these
 * workers" names them (desired is then current minus their count). */
typedef struct ss_backend_call {
    int desired;                       /* replicas to reach */
    int current;                       /* replicas before (read_size), -1 unknown */
    const ss_worker_ref *remove;       /* workers to remove: Spark id, host, port */
    size_t nremove;
    int dry_run;                       /* validate and read only, change nothing */
} ss_backend_call;

/* What a call did. Borrowed for the done callback only. */
typedef struct ss_backend_result {
    int status;                        /* 0, or a negative errno: -ETIMEDOUT, -EIO
                                        * (refused, bad answer), -ENOTSUP (the backend
                                        * cannot read its size), -ECANCELED */
    int replicas_before;               /* -1 unknown */
    int replicas_after;                /* -1 unknown */
    const unsigned char *went;         /* nremove flags: that worker was removed
                                        * (NULL: all of them when status is 0) */
    char error[SS_DECISION_REASON_MAX];/* why it failed, free of credentials */
    char note[SS_DECISION_REASON_MAX]; /* what it did, for the audit (may be "") */
    int64_t duration_us;
    /* kind exec */
    int has_exec;
    int exit_status;                   /* -1: killed or not started */
    int signal;
    int timed_out;
    char output[SS_AUDIT_OUTPUT_MAX];  /* tail of stdout + stderr */
} ss_backend_result;

/* Called exactly once per started op, on the loop thread, never from inside
 * the call that started it; cancel makes it run at once with -ECANCELED. */
typedef void (*ss_backend_done_fn)(void *arg, const ss_backend_result *res);

/* Capabilities. */
#define SS_BACKEND_PICKS_VICTIMS 0x1u  /* removes exactly the workers it is given */
/* A dry-run scale reports in went which of the given workers a real one
 * would remove (a StatefulSet holds unless its highest ordinals are the
 * victims): asked before the victims are decommissioned, so no worker is
 * decommissioned that then stays. */
#define SS_BACKEND_DRY_PLANS 0x2u

struct ss_backend_ops {
    const char *name;                  /* "exec", "oshinko", "kubernetes" (audit records) */
    unsigned caps;
    /* A backend for cluster (its target: section). Returns 0 and *out, or a
     * negative errno with err set. */
    int (*create)(const ss_backend_env *env, const ss_cluster_conf *cluster, ss_backend **out,
                  char *err, size_t errlen);
    /* The current replica count into replicas_before (= replicas_after);
     * -ENOTSUP when the backend cannot tell (exec without size_command). */
    int (*read_size)(ss_backend *b, ss_backend_done_fn done, void *arg, ss_backend_op **op);
    /* Resizes as call says (borrowed: copy what outlives the call). */
    int (*scale)(ss_backend *b, const ss_backend_call *call, ss_backend_done_fn done, void *arg,
                 ss_backend_op **op);
    /* Ends op now: done runs with -ECANCELED before this returns (a no-op
     * once done ran). Work already handed on may still finish (a command
     * keeps running until it exits or its timeout kills it; an HTTP request
     * the server received may be applied): nothing of it is reported. */
    void (*cancel)(ss_backend_op *op);
    /* Cancels what runs, frees b from the loop; closed(arg) once nothing of
     * b is left on it. */
    void (*destroy)(ss_backend *b, void (*closed)(void *arg), void *arg);
};

/* The backend for a target kind, or NULL (kind none). */
const ss_backend_ops *ss_backend_for(ss_target_kind kind);

extern const ss_backend_ops ss_backend_exec;
extern const ss_backend_ops ss_backend_oshinko;
extern const ss_backend_ops ss_backend_kubernetes;

/* Helpers for backends. */
void ss_backend_result_init(ss_backend_result *r);
/* Copies text into r->error (formatted). */
void ss_backend_fail(ss_backend_result *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
