/* test_k8s_api.c: the Kubernetes JSON codecs over answers recorded from a real
 * kube-apiserver v1.37.2 (tests/fixtures/kubernetes/), then odd and hostile inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/k8s/api.h"
#include "tests/unit/fixture.h"

static char *fixture(const char *name, size_t *len)
{
    char rel[512];
    snprintf(rel, sizeof rel, "kubernetes/%s", name);
    char *buf = fixture_read(rel, len);
    if (!buf)
        fail_msg("cannot read tests/fixtures/%s", rel);
    return buf;
}

static ss_k8s_pod_list *pods_fixture(const char *name)
{
    size_t len;
    char *json = fixture(name, &len), err[256] = "";
    ss_k8s_pod_list *l = NULL;
    int rc = ss_k8s_pod_list_parse(json, len, &l, err, sizeof err);
    free(json);
    if (rc)
        fail_msg("%s: %d %s", name, rc, err);
    return l;
}

static void test_workload(void **state)
{
    ss_k8s_kind k;
    const char *name;
    assert_int_equal(ss_k8s_workload_parse("deployment/alpha-worker", &k, &name), 0);
    assert_int_equal(k, SS_K8S_DEPLOYMENT);
    assert_string_equal(name, "alpha-worker");
    assert_int_equal(ss_k8s_workload_parse("statefulset/w", &k, &name), 0);
    assert_int_equal(k, SS_K8S_STATEFULSET);
    assert_int_equal(ss_k8s_workload_parse("replicaset/w", &k, &name), 0);
    assert_int_equal(k, SS_K8S_REPLICASET);
    assert_string_equal(ss_k8s_kind_resource(k), "replicasets");
    assert_int_equal(ss_k8s_workload_parse("deployment/", &k, &name), -EINVAL);
    assert_int_equal(ss_k8s_workload_parse("deployments/x", &k, &name), -EINVAL);
    assert_int_equal(ss_k8s_workload_parse("deployment/a/b", &k, &name), -EINVAL);
    assert_int_equal(ss_k8s_workload_parse("daemonset/x", &k, &name), -EINVAL);
}

static void test_scale_recorded(void **state)
{
    size_t len;
    char err[256] = "";
    ss_k8s_scale s;
    char *json = fixture("scale_deployment.json", &len);
    assert_int_equal(ss_k8s_scale_parse(json, len, &s, err, sizeof err), 0);
    free(json);
    assert_string_equal(s.name, "workers");
    assert_string_equal(s.namespace_, "sparkscale-test");
    assert_string_equal(s.uid, "f8149a7a-4f7c-41d0-834d-fdf6225bffba");
    assert_string_equal(s.resource_version, "250");
    assert_int_equal(s.spec_replicas, 3);
    assert_int_equal(s.status_replicas, 3);
    assert_string_equal(s.selector, "app=workers");

    json = fixture("scale_statefulset.json", &len);
    assert_int_equal(ss_k8s_scale_parse(json, len, &s, err, sizeof err), 0);
    free(json);
    assert_string_equal(s.selector, "app=sworkers");

    /* replicas 0 is omitted: "spec":{} */
    json = fixture("scale_replicaset_zero.json", &len);
    assert_int_equal(ss_k8s_scale_parse(json, len, &s, err, sizeof err), 0);
    free(json);
    assert_int_equal(s.spec_replicas, 0);
    assert_int_equal(s.status_replicas, 0);

    json = fixture("scale_put_dryrun.json", &len);
    assert_int_equal(ss_k8s_scale_parse(json, len, &s, err, sizeof err), 0);
    free(json);
    assert_int_equal(s.spec_replicas, 5);
}

static void test_scale_bad(void **state)
{
    ss_k8s_scale s;
    char err[256];
    const char *bad[] = {
        "", "[]", "{", "{\"kind\":\"Status\"}", "{\"kind\":\"Scale\"}",
        "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\"}}",
        "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},\"spec\":{\"replicas\":-1}}",
        "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},\"spec\":{\"replicas\":\"3\"}}",
        "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},\"spec\":{\"replicas\":4294967296}}",
        "{\"kind\":\"Scale\",\"metadata\":{\"name\":7,\"resourceVersion\":\"1\"}}",
        "{\"kind\":\"Scale\",\"metadata\":[],\"spec\":{}}",
        "{\"kind\":\"Scale\",\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"}}",
        "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},\"status\":{\"selector\":5}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = ss_k8s_scale_parse(bad[i], strlen(bad[i]), &s, err, sizeof err);
        if (rc == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_true(rc == -EBADMSG || rc == -EPROTO);
        assert_true(err[0] != '\0');
    }
    /* A selector at the bound fits; one byte more is refused. */
    char *big = malloc(SS_K8S_MAX_SELECTOR + 200);
    int n = sprintf(big, "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},"
                         "\"status\":{\"selector\":\"");
    memset(big + n, 'a', SS_K8S_MAX_SELECTOR);
    strcpy(big + n + SS_K8S_MAX_SELECTOR, "\"}}");
    assert_int_equal(ss_k8s_scale_parse(big, strlen(big), &s, err, sizeof err), 0);
    memset(big + n, 'a', SS_K8S_MAX_SELECTOR + 1);
    strcpy(big + n + SS_K8S_MAX_SELECTOR + 1, "\"}}");
    assert_int_equal(ss_k8s_scale_parse(big, strlen(big), &s, err, sizeof err), -EPROTO);
    free(big);
}

static void test_scale_put_body(void **state)
{
    ss_k8s_scale s = { .spec_replicas = 3 };
    strcpy(s.name, "workers");
    strcpy(s.namespace_, "ns");
    strcpy(s.uid, "u-1");
    strcpy(s.resource_version, "250");
    char *b = ss_k8s_scale_put_body(&s, 7);
    json_error_t e;
    json_t *j = json_loads(b, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "Scale");
    assert_string_equal(json_string_value(json_object_get(j, "apiVersion")), "autoscaling/v1");
    json_t *m = json_object_get(j, "metadata");
    assert_string_equal(json_string_value(json_object_get(m, "resourceVersion")), "250");
    assert_string_equal(json_string_value(json_object_get(m, "uid")), "u-1");
    assert_string_equal(json_string_value(json_object_get(m, "namespace")), "ns");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "spec"), "replicas")), 7);
    json_decref(j);
    free(b);
    b = ss_k8s_replicas_patch(0);
    assert_string_equal(b, "{\"spec\":{\"replicas\":0}}");
    free(b);
}

static void test_status_recorded(void **state)
{
    static const struct { const char *file; int code; const char *reason, *needle; } want[] = {
        { "status_403_forbidden.json", 403, "Forbidden", "User \"viewer\" cannot get resource \"deployments/scale\"" },
        { "status_409_conflict.json", 409, "Conflict", "the object has been modified" },
        { "status_409_uid.json", 409, "Conflict", "Precondition failed: UID" },
        { "status_401_unauthorized.json", 401, "Unauthorized", "Unauthorized" },
        { "status_404_notfound.json", 404, "NotFound", "\"nosuch\" not found" },
        { "status_422_invalid.json", 422, "Invalid", "replicas" },
        { "status_422_cost.json", 422, "Invalid", "must be a 32bit integer" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t len;
        char *json = fixture(want[i].file, &len);
        ss_k8s_status st;
        assert_int_equal(ss_k8s_status_parse(json, len, &st), 0);
        free(json);
        assert_int_equal(st.code, want[i].code);
        assert_string_equal(st.reason, want[i].reason);
        if (!strstr(st.message, want[i].needle))
            fail_msg("%s: message \"%s\" lacks \"%s\"", want[i].file, st.message, want[i].needle);
    }
    ss_k8s_status st;
    assert_int_equal(ss_k8s_status_parse("{\"kind\":\"Scale\"}", 16, &st), -EPROTO);
    assert_int_equal(ss_k8s_status_parse("<html>", 6, &st), -EBADMSG);
    const char *nl = "{\"kind\":\"Status\",\"message\":\"a\\nb\\u001bc\",\"code\":500}";
    assert_int_equal(ss_k8s_status_parse(nl, strlen(nl), &st), 0);
    assert_string_equal(st.message, "a b c");   /* one printable line */
    assert_int_equal(st.code, 500);
}

static void test_pods_recorded(void **state)
{
    ss_k8s_pod_list *l = pods_fixture("pods_deployment.json");
    assert_int_equal(l->n, 3);
    assert_string_equal(l->next, "");
    const ss_k8s_pod *v = ss_k8s_pod_by_ip(l, "127.0.0.2");
    assert_non_null(v);
    assert_string_equal(v->name, "workers-54964877cb-pzxnt");
    assert_int_equal(v->phase, SS_K8S_PHASE_RUNNING);
    assert_true(v->ready);
    assert_false(v->terminating);
    assert_string_equal(v->node_name, "sparkscale-sim-node");
    assert_true(v->has_cost);
    assert_int_equal(v->cost, INT32_MIN);
    assert_string_equal(v->mark, "alpha 1/7");
    assert_string_equal(v->prior_cost, "5");
    assert_string_equal(v->owner_kind, "ReplicaSet");
    assert_string_equal(v->owner_name, "workers-54964877cb");
    const ss_k8s_pod *c = ss_k8s_pod_by_ip(l, "127.0.0.4");
    assert_non_null(c);
    assert_int_equal(c->cost, 100);
    assert_string_equal(c->cost_text, "100");
    assert_null(c->mark);
    const ss_k8s_pod *plain = ss_k8s_pod_by_ip(l, "127.0.0.3");
    assert_false(plain->has_cost);
    assert_null(plain->cost_text);
    assert_null(ss_k8s_pod_by_ip(l, "127.0.0.9"));
    assert_null(ss_k8s_pod_by_ip(l, ""));
    ss_k8s_pod_list_free(l);

    /* Terminating pods are listed but never found by IP. */
    l = pods_fixture("pods_terminating.json");
    assert_int_equal(l->n, 4);
    size_t term = 0;
    for (size_t i = 0; i < l->n; i++)
        term += l->items[i].terminating;
    assert_int_equal(term, 2);
    assert_null(ss_k8s_pod_by_ip(l, "127.0.0.2"));
    ss_k8s_pod_list_free(l);

    /* Pages: the continue token, then the rest, appended. */
    ss_k8s_pod_list *p1 = pods_fixture("pods_page1.json"), *p2 = pods_fixture("pods_page2.json");
    assert_int_equal(p1->n, 2);
    assert_true(strlen(p1->next) > 10);
    assert_string_equal(p2->next, "");
    assert_int_equal(ss_k8s_pod_list_append(p1, p2), 0);
    assert_int_equal(p1->n, 3);
    assert_int_equal(p2->n, 0);
    ss_k8s_pod_list_free(p1);
    ss_k8s_pod_list_free(p2);

    l = pods_fixture("pods_empty.json");
    assert_int_equal(l->n, 0);
    ss_k8s_pod_list_free(l);

    l = pods_fixture("pods_statefulset.json");
    assert_int_equal(l->n, 3);
    for (size_t i = 0; i < l->n; i++) {
        assert_string_equal(l->items[i].owner_kind, "StatefulSet");
        assert_string_equal(l->items[i].owner_uid, "7d315317-a6b0-4692-bb5e-de0301b27ef1");
        assert_true(ss_k8s_statefulset_ordinal("sworkers", l->items[i].name) >= 0);
    }
    ss_k8s_pod_list_free(l);
}

static int parse_pods(const char *json, ss_k8s_pod_list **l)
{
    char err[256];
    return ss_k8s_pod_list_parse(json, strlen(json), l, err, sizeof err);
}

static void test_pods_odd(void **state)
{
    ss_k8s_pod_list *l;
    /* Costs as the controller reads them: invalid ones count as 0. */
    const char *costs[][2] = { { "-5", "-5" }, { "0", "0" }, { "2147483647", "2147483647" },
                               { "-2147483648", "-2147483648" }, { "2147483648", "x" },
                               { "+1", "x" }, { "007", "x" }, { "", "x" }, { " 1", "x" },
                               { "1e3", "x" }, { "-", "x" }, { "-007", "-7" } };
    for (size_t i = 0; i < sizeof costs / sizeof costs[0]; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"kind\":\"PodList\",\"metadata\":{},\"items\":[{\"metadata\":{\"name\":\"p\","
                 "\"annotations\":{\"" SS_K8S_COST_ANNOTATION "\":\"%s\"}}}]}", costs[i][0]);
        assert_int_equal(parse_pods(json, &l), 0);
        if (costs[i][1][0] == 'x') {
            assert_false(l->items[0].has_cost);
            assert_int_equal(l->items[0].cost, 0);
        } else {
            assert_true(l->items[0].has_cost);
            assert_int_equal(l->items[0].cost, atoi(costs[i][1]));
        }
        assert_string_equal(l->items[0].cost_text, costs[i][0]);
        ss_k8s_pod_list_free(l);
    }
    /* Dual stack: the second IP maps too. Nameless items are skipped. */
    assert_int_equal(parse_pods("{\"kind\":\"PodList\",\"items\":[{\"metadata\":{}},"
                                "{\"metadata\":{\"name\":\"a\"},\"status\":{\"podIP\":\"10.0.0.1\","
                                "\"podIPs\":[{\"ip\":\"10.0.0.1\"},{\"ip\":\"fd00::1\"}],"
                                "\"phase\":\"Pending\",\"conditions\":[{\"type\":\"Ready\","
                                "\"status\":\"False\"}]}}]}", &l), 0);
    assert_int_equal(l->n, 1);
    assert_int_equal(l->skipped, 1);
    assert_non_null(ss_k8s_pod_by_ip(l, "fd00::1"));
    assert_int_equal(l->items[0].phase, SS_K8S_PHASE_PENDING);
    assert_false(l->items[0].ready);
    ss_k8s_pod_list_free(l);
    /* items null, absent */
    assert_int_equal(parse_pods("{\"kind\":\"PodList\",\"items\":null}", &l), 0);
    assert_int_equal(l->n, 0);
    ss_k8s_pod_list_free(l);
    const char *bad[] = {
        "{\"kind\":\"Pod\"}", "{\"kind\":\"PodList\",\"items\":{}}",
        "{\"kind\":\"PodList\",\"items\":[5]}",
        "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":3}}]}",
        "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"a\",\"annotations\":[]}}]}",
        "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"a\",\"annotations\":"
        "{\"" SS_K8S_MARK_ANNOTATION "\":1}}}]}",
        "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"a\"},\"status\":{\"podIP\":1}}]}",
        "{\"kind\":\"PodList\",\"metadata\":{\"continue\":1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l = (ss_k8s_pod_list *)bad;
        int rc = parse_pods(bad[i], &l);
        if (rc != -EPROTO)
            fail_msg("rc %d for %s", rc, bad[i]);
        assert_null(l);
    }
}

static void test_patches(void **state)
{
    ss_k8s_pod_list *l = pods_fixture("pods_deployment.json");
    const ss_k8s_pod *costly = ss_k8s_pod_by_ip(l, "127.0.0.4");    /* cost 100, no mark */
    const ss_k8s_pod *marked = ss_k8s_pod_by_ip(l, "127.0.0.2");    /* marked, prior 5 */
    const ss_k8s_pod *plain = ss_k8s_pod_by_ip(l, "127.0.0.3");
    char *p = ss_k8s_mark_patch(costly, "alpha 9/1");
    assert_string_equal(p, "{\"metadata\":{\"annotations\":{\"" SS_K8S_COST_ANNOTATION
                           "\":\"-2147483648\",\"" SS_K8S_MARK_ANNOTATION "\":\"alpha 9/1\",\""
                           SS_K8S_PRIOR_ANNOTATION "\":\"100\"}}}");
    free(p);
    p = ss_k8s_mark_patch(marked, "alpha 9/2");   /* keeps its first prior */
    assert_null(strstr(p, SS_K8S_PRIOR_ANNOTATION));
    free(p);
    p = ss_k8s_mark_patch(plain, "m");
    assert_null(strstr(p, SS_K8S_PRIOR_ANNOTATION));
    free(p);
    p = ss_k8s_unmark_patch(marked);
    assert_string_equal(p, "{\"metadata\":{\"annotations\":{\"" SS_K8S_MARK_ANNOTATION "\":null,\""
                           SS_K8S_PRIOR_ANNOTATION "\":null,\"" SS_K8S_COST_ANNOTATION "\":\"5\"}}}");
    free(p);
    p = ss_k8s_unmark_patch(plain);
    assert_non_null(strstr(p, "\"" SS_K8S_COST_ANNOTATION "\":null"));
    free(p);
    ss_k8s_pod_list_free(l);
}

static void test_paths(void **state)
{
    char buf[256];
    assert_true(ss_k8s_scale_path(buf, sizeof buf, "spark", SS_K8S_STATEFULSET, "w") > 0);
    assert_string_equal(buf, "/apis/apps/v1/namespaces/spark/statefulsets/w/scale");
    assert_true(ss_k8s_pods_path(buf, sizeof buf, "spark", "app=w,tier in (a, b)", 500, NULL) > 0);
    assert_string_equal(buf, "/api/v1/namespaces/spark/pods?labelSelector=app%3Dw%2Ctier%20in%20%28a%2C%20b%29&limit=500");
    assert_true(ss_k8s_pods_path(buf, sizeof buf, "s", "a=b", 2, "eyJ2+/=") > 0);
    assert_string_equal(buf, "/api/v1/namespaces/s/pods?labelSelector=a%3Db&limit=2&continue=eyJ2%2B%2F%3D");
    assert_int_equal(ss_k8s_pods_path(buf, 40, "spark", "app=w", 500, NULL), -ENAMETOOLONG);
    assert_int_equal(ss_k8s_query_escape(buf, 4, "abc"), 3);
    assert_int_equal(ss_k8s_query_escape(buf, 3, "abc"), -ENAMETOOLONG);
    assert_int_equal(ss_k8s_query_escape(buf, 4, "a b"), -ENAMETOOLONG);
    assert_true(ss_k8s_pod_path(buf, sizeof buf, "ns", "p-1") > 0);
    assert_string_equal(buf, "/api/v1/namespaces/ns/pods/p-1");
}

static void test_ordinals(void **state)
{
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "web-0"), 0);
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "web-12"), 12);
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "web-x"), -1);
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "web-01"), -1);
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "web-"), -1);
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "webs-1"), -1);
    assert_int_equal(ss_k8s_statefulset_ordinal("web", "web-1-2"), -1);
    assert_int_equal(ss_k8s_statefulset_ordinal("web-1", "web-1-2"), 2);
    assert_int_equal(ss_k8s_statefulset_ordinal("w", "w-99999999999"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workload),
        cmocka_unit_test(test_scale_recorded),
        cmocka_unit_test(test_scale_bad),
        cmocka_unit_test(test_scale_put_body),
        cmocka_unit_test(test_status_recorded),
        cmocka_unit_test(test_pods_recorded),
        cmocka_unit_test(test_pods_odd),
        cmocka_unit_test(test_patches),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_ordinals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
