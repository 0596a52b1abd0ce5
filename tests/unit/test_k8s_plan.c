/* test_k8s_plan.c: the scale-in rule. A pod goes only when its worker is
 * known idle or it cannot run one; the controller's own deletion order
 * (ReplicaSet ranking, StatefulSet ordinals) decides how far that reaches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/k8s/plan.h"

/* Test pods are written positionally; the fields left out are NULL/0 on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct tpod {
    const char *name, *ip;
    int ready;                /* 1 Ready, 0 not */
    const char *phase;        /* NULL = Running */
    const char *node;         /* NULL = "n1", "" = unscheduled */
    const char *cost;         /* annotation or NULL */
    const char *mark;         /* our mark or NULL */
    const char *owner;        /* controller uid, NULL = "rs-1" */
    int terminating;
} tpod;

static ss_k8s_pod_list *pods(const tpod *t, size_t n)
{
    char *json = malloc(65536);
    size_t o = (size_t)sprintf(json, "{\"kind\":\"PodList\",\"metadata\":{},\"items\":[");
    for (size_t i = 0; i < n; i++) {
        char ann[512] = "";
        if (t[i].cost)
            sprintf(ann + strlen(ann), "\"" SS_K8S_COST_ANNOTATION "\":\"%s\"", t[i].cost);
        if (t[i].mark)
            sprintf(ann + strlen(ann), "%s\"" SS_K8S_MARK_ANNOTATION "\":\"%s\"", ann[0] ? "," : "",
                    t[i].mark);
        o += (size_t)sprintf(json + o,
            "%s{\"metadata\":{\"name\":\"%s\",\"uid\":\"u-%s\",%s\"annotations\":{%s},"
            "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"uid\":\"%s\","
            "\"controller\":true}]},\"spec\":{\"nodeName\":\"%s\"},\"status\":{\"phase\":\"%s\","
            "\"podIP\":\"%s\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}]}}",
            i ? "," : "", t[i].name, t[i].name,
            t[i].terminating ? "\"deletionTimestamp\":\"2026-12-01T00:00:00Z\"," : "", ann,
            t[i].owner ? t[i].owner : "rs-1", t[i].node ? t[i].node : "n1",
            t[i].phase ? t[i].phase : "Running", t[i].ip ? t[i].ip : "",
            t[i].ready ? "True" : "False");
    }
    strcpy(json + o, "]}");
    ss_k8s_pod_list *l = NULL;
    char err[256];
    if (ss_k8s_pod_list_parse(json, strlen(json), &l, err, sizeof err) != 0)
        fail_msg("bad test pods: %s", err);
    free(json);
    return l;
}

static ss_k8s_plan plan(ss_k8s_kind kind, const ss_k8s_pod_list *l, int replicas, int desired,
                        const char *const *victims, size_t nv)
{
    ss_k8s_plan_in in = { .kind = kind, .name = "w", .replicas = replicas, .desired = desired,
                          .pods = l, .victims = victims, .nvictims = nv };
    ss_k8s_plan p;
    assert_int_equal(ss_k8s_plan_scale_in(&in, &p), 0);
    return p;
}

static const char *marked(const ss_k8s_plan *p, const ss_k8s_pod_list *l, size_t i)
{
    return i < p->nmark ? l->items[p->mark[i]].name : NULL;
}

static const tpod three[] = {
    { "w-a", "10.0.0.1", 1 }, { "w-b", "10.0.0.2", 1 }, { "w-c", "10.0.0.3", 1 },
};

static void test_victims_cover(void **state)
{
    ss_k8s_pod_list *l = pods(three, 3);
    const char *v1[] = { "10.0.0.2" };
    ss_k8s_plan p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, v1, 1);
    assert_int_equal(p.target, 2);
    assert_int_equal(p.nmark, 1);
    assert_string_equal(marked(&p, l, 0), "w-b");
    assert_string_equal(p.reason, "");
    assert_int_equal(p.role[1], SS_K8S_POD_VICTIM);
    assert_int_equal(p.role[0], SS_K8S_POD_OTHER);
    ss_k8s_plan_free(&p);

    /* More victims than needed: the first ones given are marked. */
    const char *v3[] = { "10.0.0.3", "10.0.0.1", "10.0.0.2" };
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, v3, 3);
    assert_int_equal(p.target, 2);
    assert_int_equal(p.nmark, 1);
    assert_string_equal(marked(&p, l, 0), "w-c");
    ss_k8s_plan_free(&p);

    p = plan(SS_K8S_REPLICASET, l, 3, 1, v3, 2);
    assert_int_equal(p.target, 1);
    assert_int_equal(p.nmark, 2);
    ss_k8s_plan_free(&p);

    /* Not a scale-in: nothing to mark. */
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 3, v1, 1);
    assert_int_equal(p.target, 3);
    assert_int_equal(p.nmark, 0);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static void test_too_few_victims(void **state)
{
    ss_k8s_pod_list *l = pods(three, 3);
    ss_k8s_plan p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, NULL, 0);
    assert_int_equal(p.target, 3);   /* hold */
    assert_int_equal(p.nmark, 0);
    assert_non_null(strstr(p.reason, "only 0 of the 1 pods to remove"));
    ss_k8s_plan_free(&p);

    /* Two wanted, one idle (and one victim without a pod): go down by one. */
    const char *v[] = { "10.0.0.1", "10.0.0.9" };
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 1, v, 2);
    assert_int_equal(p.target, 2);
    assert_int_equal(p.nmark, 1);
    assert_int_equal(p.nunmapped, 1);
    assert_non_null(strstr(p.reason, "only 1 of the 2"));
    assert_non_null(strstr(p.reason, "1 without a pod"));
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static void test_not_ready_goes_first(void **state)
{
    /* A Running pod that is not Ready, with an IP, not known idle: the
     * controller deletes it before any cost counts. Hold. */
    const tpod t[] = { { "w-a", "10.0.0.1", 1 }, { "w-b", "10.0.0.2", 0 }, { "w-c", "10.0.0.3", 1 } };
    ss_k8s_pod_list *l = pods(t, 3);
    const char *v[] = { "10.0.0.3" };
    ss_k8s_plan p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, v, 1);
    assert_int_equal(p.target, 3);
    assert_int_equal(p.nmark, 0);
    assert_non_null(strstr(p.reason, "pod w-b (10.0.0.2) is not known idle and is not Ready"));
    ss_k8s_plan_free(&p);
    /* The same pod as the victim: fine. */
    const char *vb[] = { "10.0.0.2" };
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, vb, 1);
    assert_int_equal(p.target, 2);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);

    /* Phase Unknown (node lost) is not known idle either. */
    const tpod u[] = { { "w-a", "10.0.0.1", 1 }, { "w-b", "10.0.0.2", 0, "Unknown" } };
    l = pods(u, 2);
    const char *va[] = { "10.0.0.1" };
    p = plan(SS_K8S_DEPLOYMENT, l, 2, 1, va, 1);
    assert_int_equal(p.target, 2);
    assert_non_null(strstr(p.reason, "Unknown"));
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static void test_empty_pods(void **state)
{
    /* Unscheduled and Pending pods run no worker: they go first, and count. */
    const tpod t[] = { { "w-a", "10.0.0.1", 1 }, { "w-p", NULL, 0, "Pending", "" },
                       { "w-q", "10.0.0.5", 0, "Pending" }, { "w-c", "10.0.0.3", 1 } };
    ss_k8s_pod_list *l = pods(t, 4);
    const char *v[] = { "10.0.0.3" };
    ss_k8s_plan p = plan(SS_K8S_DEPLOYMENT, l, 4, 1, v, 1);
    assert_int_equal(p.role[1], SS_K8S_POD_EMPTY);
    assert_int_equal(p.role[2], SS_K8S_POD_EMPTY);
    assert_int_equal(p.target, 1);
    ss_k8s_plan_free(&p);
    /* Without victims only the empty ones can go. */
    p = plan(SS_K8S_DEPLOYMENT, l, 4, 1, NULL, 0);
    assert_int_equal(p.target, 2);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static void test_costs_and_marks(void **state)
{
    /* Someone else's lowest cost on a busy pod ties with our victims: hold. */
    const tpod t[] = { { "w-a", "10.0.0.1", 1, NULL, NULL, "-2147483648" },
                       { "w-b", "10.0.0.2", 1 }, { "w-c", "10.0.0.3", 1 } };
    ss_k8s_pod_list *l = pods(t, 3);
    const char *v[] = { "10.0.0.2" };
    ss_k8s_plan p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, v, 1);
    assert_int_equal(p.target, 3);
    assert_non_null(strstr(p.reason, "already has the lowest pod-deletion-cost"));
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);

    /* A pod we marked earlier that is not a victim now: unmarked, and ranked
     * by its prior cost (none here), so it does not block the new victim. */
    const tpod m[] = { { "w-a", "10.0.0.1", 1, NULL, NULL, "-2147483648", "alpha 1/3" },
                       { "w-b", "10.0.0.2", 1 }, { "w-c", "10.0.0.3", 1, NULL, NULL, "-2147483648", "alpha 1/3" } };
    l = pods(m, 3);
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, v, 1);
    assert_int_equal(p.target, 2);
    assert_int_equal(p.nmark, 1);
    assert_string_equal(marked(&p, l, 0), "w-b");
    assert_int_equal(p.nunmark, 2);
    assert_string_equal(l->items[p.unmark[0]].name, "w-a");
    assert_string_equal(l->items[p.unmark[1]].name, "w-c");
    ss_k8s_plan_free(&p);
    /* Marked again as a victim: not unmarked. */
    const char *vc[] = { "10.0.0.3" };
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, vc, 1);
    assert_int_equal(p.nunmark, 1);
    assert_string_equal(l->items[p.unmark[0]].name, "w-a");
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);

    /* Higher costs on other pods never matter: the victim is lowest. */
    const tpod h[] = { { "w-a", "10.0.0.1", 1, NULL, NULL, "-100" }, { "w-b", "10.0.0.2", 1, NULL, NULL, "5" } };
    l = pods(h, 2);
    p = plan(SS_K8S_DEPLOYMENT, l, 2, 1, v, 1);
    assert_int_equal(p.target, 1);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static void test_rollout_and_owners(void **state)
{
    const tpod t[] = { { "w-a", "10.0.0.1", 1, NULL, NULL, NULL, NULL, "rs-1" },
                       { "w-b", "10.0.0.2", 1, NULL, NULL, NULL, NULL, "rs-2" } };
    ss_k8s_pod_list *l = pods(t, 2);
    const char *v[] = { "10.0.0.2" };
    ss_k8s_plan p = plan(SS_K8S_DEPLOYMENT, l, 2, 1, v, 1);
    assert_int_equal(p.target, 2);
    assert_non_null(strstr(p.reason, "rollout"));
    ss_k8s_plan_free(&p);
    /* A ReplicaSet counts only the pods it controls. */
    ss_k8s_plan_in in = { .kind = SS_K8S_REPLICASET, .name = "w", .owner_uid = "rs-2",
                          .replicas = 1, .desired = 0, .pods = l, .victims = v, .nvictims = 1 };
    assert_int_equal(ss_k8s_plan_scale_in(&in, &p), 0);
    assert_int_equal(p.role[0], SS_K8S_POD_GONE);
    assert_int_equal(p.live, 1);
    assert_int_equal(p.target, 0);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);

    /* Terminating pods do not count and are never victims. */
    const tpod g[] = { { "w-a", "10.0.0.1", 1, NULL, NULL, NULL, NULL, NULL, 1 },
                       { "w-b", "10.0.0.2", 1 }, { "w-c", "10.0.0.3", 1 } };
    l = pods(g, 3);
    const char *va[] = { "10.0.0.1" };
    p = plan(SS_K8S_DEPLOYMENT, l, 3, 2, va, 1);
    /* 2 live pods for a target of 2: the controller deletes nothing more. */
    assert_int_equal(p.live, 2);
    assert_int_equal(p.nunmapped, 1);
    assert_int_equal(p.target, 2);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static const tpod sts[] = { { "w-0", "10.0.1.0", 1 }, { "w-1", "10.0.1.1", 1 },
                            { "w-2", "10.0.1.2", 1 }, { "w-3", "10.0.1.3", 1 } };

static void test_statefulset(void **state)
{
    ss_k8s_pod_list *l = pods(sts, 4);
    const char *top[] = { "10.0.1.3" };
    ss_k8s_plan p = plan(SS_K8S_STATEFULSET, l, 4, 3, top, 1);
    assert_int_equal(p.target, 3);
    assert_int_equal(p.ndoomed, 1);
    assert_string_equal(l->items[p.doomed[0]].name, "w-3");
    assert_int_equal(p.nmark, 0);
    ss_k8s_plan_free(&p);

    /* An idle worker that is not the highest ordinal does not help. */
    const char *mid[] = { "10.0.1.1" };
    p = plan(SS_K8S_STATEFULSET, l, 4, 3, mid, 1);
    assert_int_equal(p.target, 4);
    assert_non_null(strstr(p.reason, "highest ordinal first and pod w-3 (10.0.1.3) is not known idle; holding"));
    ss_k8s_plan_free(&p);

    /* Two idle at the top, three wanted: down by two. */
    const char *two[] = { "10.0.1.2", "10.0.1.3", "10.0.1.0" };
    p = plan(SS_K8S_STATEFULSET, l, 4, 1, two, 3);
    assert_int_equal(p.target, 2);
    assert_int_equal(p.ndoomed, 2);
    assert_non_null(strstr(p.reason, "w-1"));
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);

    /* Not settled: a pod missing, or terminating. */
    l = pods(sts, 3);
    p = plan(SS_K8S_STATEFULSET, l, 4, 3, top, 1);
    assert_int_equal(p.target, 4);
    assert_non_null(strstr(p.reason, "not settled (3 pods for 4 replicas"));
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
    const tpod gap[] = { { "w-0", "10.0.1.0", 1 }, { "w-2", "10.0.1.2", 1 } };
    l = pods(gap, 2);
    const char *g2[] = { "10.0.1.2" };
    p = plan(SS_K8S_STATEFULSET, l, 2, 1, g2, 1);
    assert_int_equal(p.target, 2);
    assert_non_null(strstr(p.reason, "ordinals not contiguous"));
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
    /* A Pending top pod runs no worker: it may go. */
    const tpod pend[] = { { "w-0", "10.0.1.0", 1 }, { "w-1", NULL, 0, "Pending", "" } };
    l = pods(pend, 2);
    p = plan(SS_K8S_STATEFULSET, l, 2, 1, NULL, 0);
    assert_int_equal(p.target, 1);
    ss_k8s_plan_free(&p);
    ss_k8s_pod_list_free(l);
}

static void test_bad_input(void **state)
{
    ss_k8s_plan p;
    ss_k8s_plan_in in = { .kind = SS_K8S_DEPLOYMENT, .name = "w", .replicas = 1 };
    assert_int_equal(ss_k8s_plan_scale_in(&in, &p), -EINVAL);   /* no pods */
    ss_k8s_pod_list empty = { 0 };
    in.pods = &empty;
    in.nvictims = 1;
    assert_int_equal(ss_k8s_plan_scale_in(&in, &p), -EINVAL);   /* victims NULL */
    in.nvictims = 0;
    assert_int_equal(ss_k8s_plan_scale_in(&in, &p), 0);
    assert_int_equal(p.target, 0);   /* no pods at all: nothing to delete */
    ss_k8s_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_victims_cover),
        cmocka_unit_test(test_too_few_victims),
        cmocka_unit_test(test_not_ready_goes_first),
        cmocka_unit_test(test_empty_pods),
        cmocka_unit_test(test_costs_and_marks),
        cmocka_unit_test(test_rollout_and_owners),
        cmocka_unit_test(test_statefulset),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
