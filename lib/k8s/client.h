/* client.h: asynchronous calls to one Kubernetes API server on the libuv
 * loop, through lib/http/client: credentials applied per request (a token
 * file re-read as it rotates), the API server's Status message on every
 * error, retries on 5xx/429/timeouts (capped, jittered, Retry-After), a
 * client-side rate limit shared per server, and ?dryRun=All on demand. */
#ifndef SS_K8S_CLIENT_H
#define SS_K8S_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/http/client.h"
#include "lib/k8s/api.h"
#include "lib/k8s/creds.h"

typedef struct ss_k8s_api ss_k8s_api;     /* one server, one identity */
typedef struct ss_k8s_call ss_k8s_call;   /* one started call */

/* A token read from a file is re-read when the file changes and at least
 * this often (client-go's cached file token source uses one minute). */
#define SS_K8S_TOKEN_REREAD_MS 60000
#define SS_K8S_PODS_PAGE 500              /* items per PodList page */

typedef struct ss_k8s_api_opts {
    int64_t timeout_ms;           /* one attempt, connect included; 0 = 10 s */
    int64_t connect_timeout_ms;   /* 0 = 5 s */
    int max_attempts;             /* tries on 5xx, 429, timeouts, refused; 0 = 4 */
    int backoff_base_ms;          /* 0 = 200 */
    int backoff_max_ms;           /* 0 = 5000 */
    int max_retry_after_ms;       /* Retry-After above this is cut to it; 0 = 30000 */
    ss_http_limiter *limiter;     /* shared token bucket for this server; NULL = none.
                                   * The api takes its own reference. */
} ss_k8s_api_opts;

/* Creates an api on http (borrowed: it must outlive the api) with creds
 * (copied). Returns NULL with a message in err on a bad server URL or out
 * of memory. When the credentials skip TLS verification a warning names
 * the server once. */
ss_k8s_api *ss_k8s_api_create(ss_http_client *http, const ss_k8s_creds *creds,
                              const ss_k8s_api_opts *opts, char *err, size_t errlen);

/* Drops the caller's reference; calls still running keep the api until
 * their callbacks have run. */
void ss_k8s_api_release(ss_k8s_api *a);

/* The server URL ("https://host:port") and where the credentials came from. */
const char *ss_k8s_api_server(const ss_k8s_api *a);
const char *ss_k8s_api_origin(const ss_k8s_api *a);

/* How a call ended. Valid during the callback only. */
typedef struct ss_k8s_result {
    int ok;                       /* a 2xx answer arrived */
    int status;                   /* HTTP status of the last attempt, 0 if none */
    ss_http_result transport;     /* SS_HTTP_RES_OK when an answer arrived */
    const char *body;             /* the answer ("" unless one arrived) */
    size_t body_len;
    ss_k8s_status st;             /* the decoded Status of an error answer (zeroed if none) */
    char error[1024];             /* "" when ok; else one line for logs and the audit:
                                   * "HTTP 403 Forbidden: <the server's message>" or the
                                   * transport error. Never a credential. */
    int attempts;
    int64_t total_ms;
} ss_k8s_result;

typedef void (*ss_k8s_done_fn)(const ss_k8s_result *r, void *arg);

/* Starts METHOD server+path (path begins with '/', may carry a query).
 * body (body_len bytes; copied) is sent with content_type. dry_run adds
 * dryRun=All. cb runs exactly once, later, never inside this call. *out
 * (if not NULL) is valid until cb begins. Retries: what opts allow, plus
 * one more attempt after a 401 when the token file changed since the
 * request read it (a rotation); a 401 or 403 is otherwise final.
 * Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN, or -errno when the token file
 * cannot be read (then cb does not run; err says why). */
int ss_k8s_call_start(ss_k8s_api *a, ss_http_method method, const char *path, const char *body,
                      size_t body_len, const char *content_type, int dry_run, ss_k8s_done_fn cb,
                      void *arg, ss_k8s_call **out, char *err, size_t errlen);

/* Cancels a call: its callback runs with SS_HTTP_RES_CANCELLED before this
 * returns. No-op inside the call's own callback. */
void ss_k8s_call_cancel(ss_k8s_call *c);

/* ---- typed calls ---------------------------------------------------------- */

/* GET the Scale of a workload. On success (r->ok) scale is decoded; a
 * Scale that does not decode turns into an error (r->ok = 0). */
typedef void (*ss_k8s_scale_fn)(const ss_k8s_result *r, const ss_k8s_scale *scale, void *arg);
int ss_k8s_get_scale(ss_k8s_api *a, const char *ns, ss_k8s_kind kind, const char *name,
                     ss_k8s_scale_fn cb, void *arg, ss_k8s_call **out, char *err, size_t errlen);

/* PUT the Scale back with spec.replicas = replicas and cur's
 * resourceVersion (and uid) as the precondition: a 409 (r->status) means
 * someone else wrote first. The answer is decoded into scale. */
int ss_k8s_put_scale(ss_k8s_api *a, ss_k8s_kind kind, const ss_k8s_scale *cur, int replicas,
                     int dry_run, ss_k8s_scale_fn cb, void *arg, ss_k8s_call **out,
                     char *err, size_t errlen);

/* Lists the pods of a label selector in namespace ns, every page
 * (SS_K8S_PODS_PAGE at a time). pods is owned by the caller when not NULL
 * (free with ss_k8s_pod_list_free), even on error paths. */
typedef void (*ss_k8s_pods_fn)(const ss_k8s_result *r, ss_k8s_pod_list *pods, void *arg);
int ss_k8s_list_pods(ss_k8s_api *a, const char *ns, const char *selector, ss_k8s_pods_fn cb,
                     void *arg, ss_k8s_call **out, char *err, size_t errlen);

/* PATCH a pod's metadata with a merge patch (patch: JSON text). */
int ss_k8s_patch_pod(ss_k8s_api *a, const char *ns, const char *pod, const char *patch,
                     int dry_run, ss_k8s_done_fn cb, void *arg, ss_k8s_call **out,
                     char *err, size_t errlen);

#endif
