/* plan.c: the scale-in rule for Kubernetes workloads. A pod may go only
 * when it runs a worker known idle (a victim) or cannot run a registered
 * worker at all; the target is lowered only as far as the controller's own
 * deletion order reaches nothing else. */
#include "lib/k8s/plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ss_k8s_pod_role_name(ss_k8s_pod_role r)
{
    switch (r) {
    case SS_K8S_POD_VICTIM: return "victim";
    case SS_K8S_POD_EMPTY: return "empty";
    case SS_K8S_POD_GONE: return "gone";
    default: return "other";
    }
}

void ss_k8s_plan_free(ss_k8s_plan *p)
{
    free(p->role);
    free(p->mark);
    free(p->unmark);
    free(p->doomed);
    p->role = NULL;
    p->mark = p->unmark = p->doomed = NULL;
    p->nmark = p->nunmark = p->ndoomed = 0;
}

/* The controller's sort key, first four levels (controller_utils.go). */
typedef struct rank {
    size_t idx;
    int assigned;                 /* spec.nodeName set */
    int phase;                    /* podPhaseToOrdinal: Pending 0, Unknown 1, Running 2 */
    int ready;
    int64_t cost;                 /* after our marks and unmarks */
    int ordinal;                  /* StatefulSet */
} rank;

static int phase_ordinal(ss_k8s_phase p)
{
    return p == SS_K8S_PHASE_RUNNING ? 2 : p == SS_K8S_PHASE_UNKNOWN ? 1 : 0;
}

static int cmp_rank(const void *a, const void *b)
{
    const rank *x = a, *y = b;
    if (x->assigned != y->assigned)
        return x->assigned - y->assigned;
    if (x->phase != y->phase)
        return x->phase - y->phase;
    if (x->ready != y->ready)
        return x->ready - y->ready;
    if (x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;   /* stable for messages only */
}

static int same_group(const rank *x, const rank *y)
{
    return x->assigned == y->assigned && x->phase == y->phase && x->ready == y->ready &&
           x->cost == y->cost;
}

static int cmp_ordinal_desc(const void *a, const void *b)
{
    const rank *x = a, *y = b;
    return y->ordinal - x->ordinal;
}

static int safe(ss_k8s_pod_role r)
{
    return r == SS_K8S_POD_VICTIM || r == SS_K8S_POD_EMPTY;
}

/* A prior cost as the controller reads it: invalid counts as 0. */
static int64_t cost_of(const char *text)
{
    char *end;
    if (!text || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) ||
        (text[0] == '0' && text[1]))
        return 0;
    long long v = strtoll(text, &end, 10);
    if (*end || v < INT32_MIN || v > INT32_MAX)
        return 0;
    return v;
}

/* Roles: gone, victims (in the order given), empty, other. Returns the
 * number of live pods. */
static int assign_roles(const ss_k8s_plan_in *in, ss_k8s_plan *out)
{
    const ss_k8s_pod_list *l = in->pods;
    int live = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ss_k8s_pod *p = &l->items[i];
        int gone = p->terminating || p->phase == SS_K8S_PHASE_SUCCEEDED ||
                   p->phase == SS_K8S_PHASE_FAILED;
        if (in->owner_uid && in->owner_uid[0] && strcmp(p->owner_uid, in->owner_uid) != 0)
            gone = 1;
        if (in->kind == SS_K8S_STATEFULSET && ss_k8s_statefulset_ordinal(in->name, p->name) < 0)
            gone = 1;
        if (gone) {
            out->role[i] = SS_K8S_POD_GONE;
            continue;
        }
        live++;
        out->role[i] = !p->node_name[0] || p->phase == SS_K8S_PHASE_PENDING || !p->pod_ip[0]
                           ? SS_K8S_POD_EMPTY : SS_K8S_POD_OTHER;
    }
    for (size_t v = 0; v < in->nvictims; v++) {
        const char *ip = in->victims[v];
        size_t i;
        for (i = 0; ip && ip[0] && i < l->n; i++) {
            const ss_k8s_pod *p = &l->items[i];
            if (out->role[i] != SS_K8S_POD_GONE &&
                (strcmp(p->pod_ip, ip) == 0 || strcmp(p->pod_ip2, ip) == 0))
                break;
        }
        if (!ip || !ip[0] || i == l->n) {
            out->nunmapped++;
            continue;
        }
        if (out->role[i] == SS_K8S_POD_VICTIM)
            continue;   /* named twice */
        out->role[i] = SS_K8S_POD_VICTIM;
        out->mark[out->nmark++] = i;   /* candidates, in the order given; cut later */
    }
    return live;
}

static void describe(const ss_k8s_pod *p, char *buf, size_t len)
{
    snprintf(buf, len, "pod %s (%s)", p->name, p->pod_ip[0] ? p->pod_ip : "no IP");
}

static void plan_replicaset(const ss_k8s_plan_in *in, ss_k8s_plan *out, rank *r)
{
    const ss_k8s_pod_list *l = in->pods;
    int need = out->live - in->desired;
    char who[320];

    /* A Deployment in a rollout splits a scale-down across its ReplicaSets,
     * each with its own order: not something to predict. */
    if (in->kind == SS_K8S_DEPLOYMENT) {
        const char *first = NULL;
        int owners = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (out->role[i] == SS_K8S_POD_GONE)
                continue;
            if (!first) {
                first = l->items[i].owner_uid;
                owners = 1;
            } else if (strcmp(first, l->items[i].owner_uid) != 0) {
                owners = 2;
            }
        }
        if (owners > 1) {
            out->target = in->replicas;
            out->nmark = 0;
            snprintf(out->reason, sizeof out->reason,
                     "deployment/%s has pods of more than one ReplicaSet (a rollout is in "
                     "progress): scale-in waits until it ends", in->name);
            return;
        }
    }
    if (need <= 0) {   /* fewer pods than the target already: nothing is deleted */
        out->target = in->desired;
        out->nmark = 0;
        return;
    }
    if (out->nmark > (size_t)need)
        out->nmark = (size_t)need;

    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (out->role[i] == SS_K8S_POD_GONE)
            continue;
        const ss_k8s_pod *p = &l->items[i];
        int chosen = 0;
        for (size_t m = 0; m < out->nmark; m++)
            chosen |= out->mark[m] == i;
        r[n] = (rank){ .idx = i, .assigned = p->node_name[0] != '\0',
                       .phase = phase_ordinal(p->phase), .ready = p->ready, .cost = p->cost };
        if (chosen)
            r[n].cost = SS_K8S_VICTIM_COST;
        else if (p->mark)   /* ours, to be undone */
            r[n].cost = cost_of(p->prior_cost);
        n++;
    }
    qsort(r, n, sizeof *r, cmp_rank);

    /* Whole groups of equal rank only: within one the order is not ours to know. */
    size_t prefix = 0, g = 0;
    const rank *blocker = NULL;
    while (g < n) {
        size_t e = g;
        while (e < n && same_group(&r[g], &r[e]))
            e++;
        for (size_t k = g; k < e && !blocker; k++)
            if (!safe(out->role[r[k].idx]))
                blocker = &r[k];
        if (blocker)
            break;
        prefix = e;
        g = e;
    }
    int target = out->live - (int)prefix;
    if (target < in->desired)
        target = in->desired;
    if (target >= in->replicas) {
        out->target = in->replicas;
        out->nmark = 0;
    } else {
        out->target = target;
    }
    if (out->target == in->desired || !blocker)
        return;
    const ss_k8s_pod *b = &l->items[blocker->idx];
    describe(b, who, sizeof who);
    int can = in->replicas - out->target;
    if (!blocker->assigned || blocker->phase < 2 || !blocker->ready) {
        snprintf(out->reason, sizeof out->reason,
                 "%s is not known idle and is %s: the ReplicaSet controller removes such pods "
                 "before any deletion cost counts; %s", who,
                 blocker->phase < 2 ? ss_k8s_phase_name(b->phase) : "not Ready",
                 can ? "shrinking only as far as that allows" : "holding");
    } else if (blocker->cost == SS_K8S_VICTIM_COST) {
        snprintf(out->reason, sizeof out->reason,
                 "%s is not known idle and already has the lowest pod-deletion-cost; %s", who,
                 can ? "shrinking only as far as that allows" : "holding");
    } else {
        snprintf(out->reason, sizeof out->reason,
                 "only %d of the %d pods to remove run workers known idle (%zu victim(s) given, "
                 "%zu without a pod); the rest may run tasks", can, in->replicas - in->desired,
                 in->nvictims, out->nunmapped);
    }
}

static void plan_statefulset(const ss_k8s_plan_in *in, ss_k8s_plan *out, rank *r)
{
    const ss_k8s_pod_list *l = in->pods;
    char who[320];
    size_t n = 0, terminating = 0;
    out->nmark = 0;   /* the cost means nothing to a StatefulSet */
    for (size_t i = 0; i < l->n; i++) {
        if (out->role[i] != SS_K8S_POD_GONE) {
            r[n++] = (rank){ .idx = i, .ordinal = ss_k8s_statefulset_ordinal(in->name,
                                                                               l->items[i].name) };
        } else if (l->items[i].terminating &&
                   ss_k8s_statefulset_ordinal(in->name, l->items[i].name) >= 0) {
            terminating++;
        }
    }
    qsort(r, n, sizeof *r, cmp_ordinal_desc);
    out->target = in->replicas;
    int contiguous = n == 0 || r[0].ordinal - r[n - 1].ordinal + 1 == (int)n;
    if ((int)n != in->replicas || terminating || !contiguous) {
        snprintf(out->reason, sizeof out->reason,
                 "statefulset/%s is not settled (%zu pods for %d replicas, %zu terminating%s): "
                 "scale-in waits", in->name, n, in->replicas, terminating,
                 contiguous ? "" : ", ordinals not contiguous");
        return;
    }
    size_t need = (size_t)(in->replicas - in->desired), k;
    for (k = 0; k < need && k < n && safe(out->role[r[k].idx]); k++)
        out->doomed[out->ndoomed++] = r[k].idx;
    out->target = in->replicas - (int)k;
    if (k < need && k < n) {
        describe(&l->items[r[k].idx], who, sizeof who);
        snprintf(out->reason, sizeof out->reason,
                 "statefulset/%s removes its highest ordinal first and %s is not known idle; %s",
                 in->name, who, k ? "shrinking only past the idle ones above it" : "holding");
    }
}

int ss_k8s_plan_scale_in(const ss_k8s_plan_in *in, ss_k8s_plan *out)
{
    memset(out, 0, sizeof *out);
    if (!in || !in->pods || !in->name || in->desired < 0 || in->replicas < 0 ||
        (in->nvictims && !in->victims))
        return -EINVAL;
    size_t n = in->pods->n;
    out->role = calloc(n ? n : 1, sizeof *out->role);
    out->mark = calloc(n ? n : 1, sizeof *out->mark);
    out->unmark = calloc(n ? n : 1, sizeof *out->unmark);
    out->doomed = calloc(n ? n : 1, sizeof *out->doomed);
    rank *r = calloc(n ? n : 1, sizeof *r);
    if (!out->role || !out->mark || !out->unmark || !out->doomed || !r) {
        free(r);
        ss_k8s_plan_free(out);
        return -ENOMEM;
    }
    out->live = assign_roles(in, out);
    if (in->desired >= in->replicas) {
        out->target = in->desired;   /* not a scale-in: nothing to plan */
        out->nmark = 0;
    } else if (in->kind == SS_K8S_STATEFULSET) {
        plan_statefulset(in, out, r);
    } else {
        plan_replicaset(in, out, r);
    }
    free(r);
    /* Our marks on pods not chosen now go, whatever the outcome. */
    for (size_t i = 0; i < n; i++) {
        const ss_k8s_pod *p = &in->pods->items[i];
        int chosen = 0;
        for (size_t m = 0; m < out->nmark; m++)
            chosen |= out->mark[m] == i;
        if (p->mark && !chosen && !p->terminating)
            out->unmark[out->nunmark++] = i;
    }
    return 0;
}
