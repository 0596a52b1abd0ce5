/* plan.h: how far a Kubernetes workload may shrink without the controller
 * removing a pod that is not known idle, and which pods to mark. Pure: the
 * pods and victims in, the target replicas and the marks out.
 *
 * ReplicaSets (and Deployments through them) delete in the order of
 * pkg/controller/controller_utils.go ActivePodsWithRanks: unscheduled <
 * scheduled; Pending < Unknown < Running; not Ready < Ready; lower
 * pod-deletion-cost first; then ties we cannot predict. StatefulSets
 * delete the highest ordinal first and ignore the cost. */
#ifndef SS_K8S_PLAN_H
#define SS_K8S_PLAN_H

#include <stddef.h>

#include "lib/k8s/api.h"

typedef struct ss_k8s_plan_in {
    ss_k8s_kind kind;
    const char *name;             /* the workload's name (StatefulSet ordinals) */
    const char *owner_uid;        /* the workload's uid: for a ReplicaSet or StatefulSet, only
                                   * pods it controls count; NULL/"" = every pod given */
    int replicas;                 /* spec.replicas now */
    int desired;                  /* the decision; < replicas here */
    const ss_k8s_pod_list *pods;  /* the pods of the Scale's selector */
    const char *const *victims;   /* worker hosts (pod IPs) known idle now, preferred first */
    size_t nvictims;
} ss_k8s_plan_in;

/* What a pod is to the plan. */
typedef enum ss_k8s_pod_role {
    SS_K8S_POD_OTHER = 0,         /* may run a busy worker: must not go */
    SS_K8S_POD_VICTIM,            /* runs a worker known idle */
    SS_K8S_POD_EMPTY,             /* cannot run a registered worker: unscheduled, Pending or no IP */
    SS_K8S_POD_GONE               /* terminating, finished, or another controller's: not counted */
} ss_k8s_pod_role;

typedef struct ss_k8s_plan {
    int target;                   /* replicas to set: desired, more when that is unsafe,
                                   * replicas when nothing can go (hold) */
    int live;                     /* pods counted */
    ss_k8s_pod_role *role;        /* per pod of in->pods (same index) */
    size_t *mark;                 /* indexes of pods to mark as victims, in order */
    size_t nmark;
    size_t *unmark;               /* indexes of pods carrying our mark that must lose it */
    size_t nunmark;
    size_t *doomed;               /* StatefulSet: the pods the controller will remove */
    size_t ndoomed;
    size_t nunmapped;             /* victims with no live pod of that IP */
    char reason[768];             /* "" when target == desired; else why not lower */
} ss_k8s_plan;

/* Plans a scale-in. Returns 0 and fills *out (free its arrays with
 * ss_k8s_plan_free), or -EINVAL / -ENOMEM. */
int ss_k8s_plan_scale_in(const ss_k8s_plan_in *in, ss_k8s_plan *out);

void ss_k8s_plan_free(ss_k8s_plan *p);

const char *ss_k8s_pod_role_name(ss_k8s_pod_role r);

#endif
