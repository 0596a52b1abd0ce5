/* api.h: the Kubernetes objects the actuator reads and writes, as pure
 * JSON decoders and builders (jansson): autoscaling/v1 Scale, meta/v1
 * Status, core/v1 PodList, the pod annotation patches, and the request
 * paths. No I/O: fuzzed and unit-tested like lib/spark. */
#ifndef SS_K8S_API_H
#define SS_K8S_API_H

#include <stddef.h>
#include <stdint.h>

#define SS_K8S_MAX_INPUT (64u << 20)     /* bytes of one answer */
#define SS_K8S_MAX_PODS 100000           /* items of one PodList page */
#define SS_K8S_MAX_SELECTOR 8192         /* bytes of a label selector */
#define SS_K8S_MAX_NAME 253              /* DNS-1123 subdomain */

/* Deletion order (pkg/controller/controller_utils.go ActivePodsWithRanks):
 * lower pod-deletion-cost goes first among Running Ready pods. */
#define SS_K8S_COST_ANNOTATION "controller.kubernetes.io/pod-deletion-cost"
/* Set by us on a victim, with the decision that chose it; and the cost the
 * pod had before, so unmarking gives it back. */
#define SS_K8S_MARK_ANNOTATION "sparkscale.io/victim"
#define SS_K8S_PRIOR_ANNOTATION "sparkscale.io/prior-deletion-cost"
#define SS_K8S_VICTIM_COST INT32_MIN
#define SS_K8S_VICTIM_COST_TEXT "-2147483648"

typedef enum ss_k8s_kind {
    SS_K8S_DEPLOYMENT,
    SS_K8S_STATEFULSET,
    SS_K8S_REPLICASET
} ss_k8s_kind;

/* "deployments" | "statefulsets" | "replicasets" (the resource in the path). */
const char *ss_k8s_kind_resource(ss_k8s_kind k);
/* "deployment" | "statefulset" | "replicaset" (as the config spells it). */
const char *ss_k8s_kind_name(ss_k8s_kind k);

/* "deployment/NAME" | "statefulset/NAME" | "replicaset/NAME" (the config's
 * workload) into *kind and *name (a pointer into workload). Returns 0 or
 * -EINVAL. */
int ss_k8s_workload_parse(const char *workload, ss_k8s_kind *kind, const char **name);

/* autoscaling/v1 Scale. */
typedef struct ss_k8s_scale {
    char name[SS_K8S_MAX_NAME + 1];
    char namespace_[64];
    char uid[64];                 /* the workload's uid ("" if absent) */
    char resource_version[128];   /* opaque; the compare-and-swap token */
    int spec_replicas;            /* desired */
    int status_replicas;          /* observed; -1 when absent */
    char selector[SS_K8S_MAX_SELECTOR + 1];   /* status.selector, "" when absent */
} ss_k8s_scale;

/* Decodes a Scale. Returns 0, or -EBADMSG (not JSON), -EPROTO (not a Scale:
 * a field missing or of the wrong type; err names it), -E2BIG, -EINVAL. */
int ss_k8s_scale_parse(const char *json, size_t len, ss_k8s_scale *out, char *err, size_t errlen);

/* The PUT body: s's metadata (name, namespace, resourceVersion: the
 * precondition) with spec.replicas = replicas. Caller frees; NULL = ENOMEM. */
char *ss_k8s_scale_put_body(const ss_k8s_scale *s, int replicas);

/* {"spec":{"replicas":N}} for application/merge-patch+json. Caller frees. */
char *ss_k8s_replicas_patch(int replicas);

/* meta/v1 Status, as the API server answers every error. */
typedef struct ss_k8s_status {
    int code;                     /* HTTP code it carries, 0 if absent */
    char reason[64];              /* Forbidden, Conflict, NotFound, ... ("" if absent) */
    char message[512];            /* the server's words, control characters replaced */
} ss_k8s_status;

/* Decodes a Status. Returns 0, or -EPROTO (JSON but not a Status) / -EBADMSG. */
int ss_k8s_status_parse(const char *json, size_t len, ss_k8s_status *out);

typedef enum ss_k8s_phase {
    SS_K8S_PHASE_NONE = 0,        /* absent or unknown to this decoder */
    SS_K8S_PHASE_PENDING,
    SS_K8S_PHASE_RUNNING,
    SS_K8S_PHASE_SUCCEEDED,
    SS_K8S_PHASE_FAILED,
    SS_K8S_PHASE_UNKNOWN
} ss_k8s_phase;

/* One pod, the fields scale-in needs. Strings owned by the list; "" when absent. */
typedef struct ss_k8s_pod {
    char *name;
    char *uid;
    char *node_name;              /* spec.nodeName: "" = not scheduled */
    char *pod_ip;                 /* status.podIP */
    char *pod_ip2;                /* status.podIPs[1].ip (dual stack), "" if none */
    ss_k8s_phase phase;
    int ready;                    /* condition Ready is True */
    int terminating;              /* metadata.deletionTimestamp set */
    int has_cost;                 /* a valid int32 pod-deletion-cost annotation */
    int32_t cost;                 /* its value; 0 when absent or invalid (as the controller reads it) */
    char *cost_text;              /* the annotation as written, NULL when absent */
    char *mark;                   /* SS_K8S_MARK_ANNOTATION, NULL when absent */
    char *prior_cost;             /* SS_K8S_PRIOR_ANNOTATION, NULL when absent */
    char *owner_kind;             /* the controller ownerReference ("" if none) */
    char *owner_name;
    char *owner_uid;
} ss_k8s_pod;

typedef struct ss_k8s_pod_list {
    ss_k8s_pod *items;
    size_t n;
    char *next;                   /* metadata.continue: "" = last page */
    size_t skipped;               /* items without a name: not counted in n */
} ss_k8s_pod_list;

/* Decodes a PodList page. Returns 0 and *out (free with
 * ss_k8s_pod_list_free), or -EBADMSG, -EPROTO (err names the field),
 * -E2BIG, -ENOMEM, -EINVAL. */
int ss_k8s_pod_list_parse(const char *json, size_t len, ss_k8s_pod_list **out,
                          char *err, size_t errlen);

/* Moves src's items to the end of dst (a following page); src is emptied,
 * not freed. Returns 0 or -ENOMEM / -E2BIG (over SS_K8S_MAX_PODS in all). */
int ss_k8s_pod_list_append(ss_k8s_pod_list *dst, ss_k8s_pod_list *src);

void ss_k8s_pod_list_free(ss_k8s_pod_list *l);

/* The pod with podIP (or its second IP) equal to ip among pods not
 * terminating; NULL if none. */
const ss_k8s_pod *ss_k8s_pod_by_ip(const ss_k8s_pod_list *l, const char *ip);

const char *ss_k8s_phase_name(ss_k8s_phase p);

/* The merge patch that marks a victim: deletion cost SS_K8S_VICTIM_COST,
 * the mark (mark: who chose it), and the pod's own cost kept under
 * SS_K8S_PRIOR_ANNOTATION (only when it had one and carries no mark yet).
 * Caller frees; NULL = ENOMEM. */
char *ss_k8s_mark_patch(const ss_k8s_pod *p, const char *mark);

/* The merge patch that undoes it: the prior cost back (or the cost
 * removed) and both of our annotations removed. */
char *ss_k8s_unmark_patch(const ss_k8s_pod *p);

/* Paths, written into buf (len bytes). Return the length, or -ENAMETOOLONG. */
int ss_k8s_scale_path(char *buf, size_t len, const char *ns, ss_k8s_kind kind, const char *name);
int ss_k8s_pod_path(char *buf, size_t len, const char *ns, const char *pod);
/* /api/v1/namespaces/NS/pods?labelSelector=SEL&limit=LIMIT[&continue=C] */
int ss_k8s_pods_path(char *buf, size_t len, const char *ns, const char *selector, int limit,
                     const char *cont);

/* Percent-encodes s for a URL query value (RFC 3986: unreserved bytes kept)
 * into buf. Returns the length or -ENAMETOOLONG. */
int ss_k8s_query_escape(char *buf, size_t len, const char *s);

/* The ordinal of a StatefulSet pod ("web-3" of set "web" -> 3), or -1 when
 * pod is not named SET-<decimal>. */
int ss_k8s_statefulset_ordinal(const char *set, const char *pod);

#endif
