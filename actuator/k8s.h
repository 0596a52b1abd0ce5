/* k8s.h: the Kubernetes backend of sparkscale-actuator: reads and sets the
 * size of a Deployment, StatefulSet or ReplicaSet through its scale
 * subresource, and removes exactly the workers the actuator found idle
 * (pod-deletion-cost for ReplicaSets, highest ordinals for StatefulSets). */
#ifndef SS_ACTUATOR_K8S_H
#define SS_ACTUATOR_K8S_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/config/config.h"
#include "lib/http/client.h"

typedef struct ss_k8s_backend ss_k8s_backend;

typedef struct ss_k8s_backend_opts {
    int64_t call_timeout_ms;      /* one API request (attempt); 0 = actuator.call_timeout_ms */
    int max_attempts;             /* 0 = actuator.max_attempts */
    int64_t confirm_timeout_ms;   /* wait for the controller to remove the pods; 0 = 30 s */
    int max_conflicts;            /* 409s met before giving up; 0 = 8 */
    const char *sa_dir;           /* in-cluster service account dir; NULL = the
                                   * SPARKSCALE_SERVICEACCOUNT_DIR environment variable,
                                   * else /var/run/secrets/kubernetes.io/serviceaccount */
    int qps_override;             /* 0 = actuator.kubernetes.qps; > 0 replaces it;
                                   * < 0 = no client-side limit (benchmarks) */
    int lazy;                     /* resolve no cluster at create: ss_k8s_backend_serve each */
} ss_k8s_backend_opts;

/* Creates the backend on loop (one timer, for confirmation polls) for
 * every cluster of cfg whose target is kind kubernetes: credentials are
 * resolved now (a cluster's own kubeconfig and context, else
 * actuator.kubernetes's, else in-cluster), one API client per credential
 * source and one rate limiter (actuator.kubernetes.qps/burst) per API
 * server URL, shared by every cluster that targets it. http and cfg
 * are borrowed and must outlive the backend. Returns NULL with a message
 * naming the cluster and the file in err. A configuration without
 * kubernetes targets gives a backend that serves none. */
ss_k8s_backend *ss_k8s_backend_create(uv_loop_t *loop, ss_http_client *http,
                                      const ss_config *cfg, const ss_k8s_backend_opts *opts,
                                      char *err, size_t errlen);

/* Cancels every operation (each callback runs with SS_K8S_FAILED,
 * "cancelled", before this returns), closes the backend's timer and frees
 * it; done(arg), if not NULL, runs from the close callback. Call it before
 * closing http. */
void ss_k8s_backend_close(ss_k8s_backend *b, void (*done)(void *arg), void *arg);

/* Resolves the credentials of the cluster at this index of cfg->clusters
 * (its target must be kind kubernetes), if not done yet. Returns 0, or
 * -EINVAL with a message naming the cluster and the file in err. */
int ss_k8s_backend_serve(ss_k8s_backend *b, size_t cluster, char *err, size_t errlen);

/* Ends the cluster's operation, if one runs: its callback runs with
 * SS_K8S_FAILED, errnum -ECANCELED, before this returns. Marks already set
 * on pods stay until the next scale-in of the cluster undoes them. */
void ss_k8s_backend_cancel(ss_k8s_backend *b, size_t cluster);

/* Non-zero when the cluster at this index of cfg->clusters is served. */
int ss_k8s_backend_serves(const ss_k8s_backend *b, size_t cluster);

typedef enum ss_k8s_code {
    SS_K8S_APPLIED,               /* the size is what was asked (or it was already) */
    SS_K8S_PARTIAL,               /* shrunk less than asked: reason says why */
    SS_K8S_HELD,                  /* nothing changed: reason says why */
    SS_K8S_FAILED                 /* error says why */
} ss_k8s_code;

const char *ss_k8s_code_name(ss_k8s_code c);

/* A pod the operation saw go, or a victim it expected to go. */
typedef struct ss_k8s_pod_note {
    char name[254];
    char ip[64];
    int victim;                   /* one of the hosts given as idle */
    int empty;                    /* could run no worker (unscheduled, Pending, no IP) */
} ss_k8s_pod_note;

#define SS_K8S_MAX_NOTES 64

typedef struct ss_k8s_outcome {
    ss_k8s_code code;
    int errnum;                   /* FAILED: -ETIMEDOUT, -ECANCELED or -EIO; else 0 */
    int dry_run;
    int replicas_before;          /* spec.replicas read first; -1 unknown */
    int replicas_after;           /* what was written (or, dry run, validated); -1 unknown */
    int target;                   /* what the plan allowed (== desired when nothing held it) */
    int conflicts;                /* 409s met and retried */
    int confirmed;                /* the controller's removals were seen (scale-in) */
    int64_t write_ms;             /* operation start -> the API server's 200 to the write; -1 none */
    int64_t total_ms;
    ss_k8s_pod_note removed[SS_K8S_MAX_NOTES];   /* pods that went (scale-in, confirmed) */
    size_t nremoved;
    size_t nremoved_other;        /* of them, neither victim nor empty: NOT expected */
    ss_k8s_pod_note kept[SS_K8S_MAX_NOTES];      /* marked victims still there */
    size_t nkept;
    ss_k8s_pod_note planned[SS_K8S_MAX_NOTES];   /* scale-in: the pods the plan lets go
                                                   * (marked victims; StatefulSet top ordinals) */
    size_t nplanned;
    char unmapped[SS_K8S_MAX_NOTES][64];         /* victim hosts that matched no pod */
    size_t nunmapped;
    char reason[768];             /* PARTIAL/HELD: why */
    char error[1024];             /* FAILED: why (the API server's message when it sent one) */
    char summary[4096];           /* one line for logs and the audit record */
} ss_k8s_outcome;

typedef void (*ss_k8s_outcome_fn)(const ss_k8s_outcome *o, void *arg);

typedef struct ss_k8s_request {
    int desired;
    const char *const *victims;   /* hosts (pod IPs) of workers known idle now, preferred first */
    size_t nvictims;
    int dry_run;                  /* ?dryRun=All on every write: validated, nothing changes */
    int blind;                    /* no Spark-side knowledge: let the controller choose
                                   * (allow_blind_scale_in); victims are ignored */
    const char *decision;         /* e.g. "alpha 1733058000000/17": written into the victim mark */
} ss_k8s_request;

/* Reads the size (spec.replicas). cb gets APPLIED with replicas_before =
 * replicas_after = the size, or FAILED. */
int ss_k8s_backend_read(ss_k8s_backend *b, size_t cluster, ss_k8s_outcome_fn cb, void *arg);

/* Makes the workload desired replicas, safely (see the file comment).
 * One operation per cluster at a time: -EBUSY while one runs. cb runs
 * exactly once, later. Returns 0, -ENOENT (not served), -EBUSY, -EINVAL,
 * -ENOMEM. The request is copied. */
int ss_k8s_backend_resize(ss_k8s_backend *b, size_t cluster, const ss_k8s_request *req,
                          ss_k8s_outcome_fn cb, void *arg);

#endif
