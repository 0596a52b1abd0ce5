/* fuzz_k8s_api.c: libFuzzer target for the Kubernetes decoders and the scale-in
 * plan: any input is a Scale, a Status, a PodList or an error with a message; a
 * PodList that decodes is planned against with victims taken from its own IPs,
 * and the plan's invariants hold. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/k8s/api.h"
#include "lib/k8s/plan.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static void check_plan(const ss_k8s_pod_list *l, ss_k8s_kind kind, int replicas, int desired,
                       const char *const *victims, size_t nv)
{
    ss_k8s_plan_in in = { .kind = kind, .name = "w", .replicas = replicas, .desired = desired,
                          .pods = l, .victims = victims, .nvictims = nv };
    ss_k8s_plan p;
    if (ss_k8s_plan_scale_in(&in, &p) != 0)
        return;
    /* Never below the decision, never above the current size on a scale-in. */
    CHECK(p.target >= desired);
    if (desired < replicas)
        CHECK(p.target <= replicas);
    CHECK(p.nmark <= l->n && p.nunmark <= l->n && p.ndoomed <= l->n);
    int live = 0;
    for (size_t i = 0; i < l->n; i++)
        live += p.role[i] != SS_K8S_POD_GONE;
    CHECK(live == p.live);
    /* Marked pods are victims; StatefulSet doomed pods are victims or empty. */
    for (size_t i = 0; i < p.nmark; i++)
        CHECK(p.role[p.mark[i]] == SS_K8S_POD_VICTIM);
    for (size_t i = 0; i < p.ndoomed; i++)
        CHECK(p.role[p.doomed[i]] == SS_K8S_POD_VICTIM || p.role[p.doomed[i]] == SS_K8S_POD_EMPTY);
    /* The deletions the target allows never exceed the safe pods. */
    if (desired < replicas && p.target < replicas) {
        int safe = 0;
        for (size_t i = 0; i < l->n; i++)
            safe += p.role[i] == SS_K8S_POD_VICTIM || p.role[i] == SS_K8S_POD_EMPTY;
        CHECK(p.live - p.target <= safe);
    }
    CHECK(memchr(p.reason, '\0', sizeof p.reason) != NULL);
    ss_k8s_plan_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    const char *json = (const char *)data;

    ss_k8s_scale s;
    memset(err, 'x', sizeof err);
    int rc = ss_k8s_scale_parse(json, size, &s, err, sizeof err);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -E2BIG);
    if (rc == 0) {
        CHECK(s.name[0] && s.resource_version[0] && s.spec_replicas >= 0);
        char *b = ss_k8s_scale_put_body(&s, s.spec_replicas);
        CHECK(b != NULL);
        ss_k8s_scale back;
        CHECK(ss_k8s_scale_parse(b, strlen(b), &back, err, sizeof err) == 0);
        CHECK(strcmp(back.name, s.name) == 0 && back.spec_replicas == s.spec_replicas);
        free(b);
    } else {
        CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
    }

    ss_k8s_status st;
    if (ss_k8s_status_parse(json, size, &st) == 0)
        for (const char *p = st.message; *p; p++)
            CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);

    ss_k8s_pod_list *l = NULL;
    rc = ss_k8s_pod_list_parse(json, size, &l, err, sizeof err);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -E2BIG || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(l == NULL);
        return 0;
    }
    const char *victims[8];
    size_t nv = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ss_k8s_pod *p = &l->items[i];
        CHECK(p->name && p->name[0] && p->uid && p->pod_ip && p->node_name && p->owner_uid);
        if (p->has_cost == 0)
            CHECK(p->cost == 0);
        if (p->pod_ip[0] && nv < 8 && (i % 2 == 0))
            victims[nv++] = p->pod_ip;
        if (p->pod_ip[0] && !p->terminating)
            CHECK(ss_k8s_pod_by_ip(l, p->pod_ip) != NULL);
        char *m = ss_k8s_mark_patch(p, "fuzz"), *u = ss_k8s_unmark_patch(p);
        CHECK(m && u);
        free(m);
        free(u);
    }
    int n = (int)l->n;
    check_plan(l, SS_K8S_DEPLOYMENT, n, n / 2, victims, nv);
    check_plan(l, SS_K8S_REPLICASET, n + 1, 0, victims, nv);
    check_plan(l, SS_K8S_STATEFULSET, n, n ? n - 1 : 0, victims, nv);
    ss_k8s_pod_list_free(l);
    return 0;
}
