/* api.c: Scale, Status and PodList in and out of JSON. Shapes: k8s.io/api
 * autoscaling/v1 Scale, core/v1 Pod, meta/v1 Status (v0.37). Every read is
 * type-checked; a field of the wrong type is an error naming it. */
#include "lib/k8s/api.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/str.h"

static const char *const resources[] = { "deployments", "statefulsets", "replicasets" };
static const char *const kinds[] = { "deployment", "statefulset", "replicaset" };

const char *ss_k8s_kind_resource(ss_k8s_kind k)
{
    return (unsigned)k < 3 ? resources[k] : "?";
}

const char *ss_k8s_kind_name(ss_k8s_kind k)
{
    return (unsigned)k < 3 ? kinds[k] : "?";
}

int ss_k8s_workload_parse(const char *workload, ss_k8s_kind *kind, const char **name)
{
    if (!workload)
        return -EINVAL;
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(kinds[i]);
        if (strncmp(workload, kinds[i], l) == 0 && workload[l] == '/' && workload[l + 1]) {
            *kind = (ss_k8s_kind)i;
            *name = workload + l + 1;
            return strlen(*name) <= SS_K8S_MAX_NAME && !strchr(*name, '/') ? 0 : -EINVAL;
        }
    }
    return -EINVAL;
}

/* ---- decoding helpers ------------------------------------------------------- */

static json_t *load(const char *json, size_t len, int *rc, char *err, size_t errlen)
{
    json_error_t jerr;
    if (!json && len) {
        *rc = -EINVAL;
        return NULL;
    }
    if (len > SS_K8S_MAX_INPUT) {
        ss_errf(err, errlen, "answer over %u bytes", SS_K8S_MAX_INPUT);
        *rc = -E2BIG;
        return NULL;
    }
    json_t *root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        ss_errf(err, errlen, "not JSON: %s (offset %d)", jerr.text, jerr.position);
        *rc = -EBADMSG;
        return NULL;
    }
    if (!json_is_object(root)) {
        ss_errf(err, errlen, "not a JSON object");
        json_decref(root);
        *rc = -EPROTO;
        return NULL;
    }
    *rc = 0;
    return root;
}

/* The object at o.key, NULL when absent or JSON null; *bad when of another type. */
static json_t *obj(json_t *o, const char *key, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        *bad = 1;
        return NULL;
    }
    return v;
}

/* The string at o.key, "" when absent or null, NULL when of another type. */
static const char *str(json_t *o, const char *key)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    if (!v || json_is_null(v))
        return "";
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Copies a string field into a fixed buffer; refuses longer ones. */
static int str_into(json_t *o, const char *key, char *dst, size_t size, const char *where,
                    char *err, size_t errlen)
{
    const char *s = str(o, key);
    if (!s) {
        ss_errf(err, errlen, "%s%s: not a string", where, key);
        return -EPROTO;
    }
    if (strlen(s) >= size) {
        ss_errf(err, errlen, "%s%s: longer than %zu bytes", where, key, size - 1);
        return -EPROTO;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* An int32 field; absent = -ENOENT. */
static int int_field(json_t *o, const char *key, int *out, const char *where, char *err,
                     size_t errlen)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    if (!v || json_is_null(v))
        return -ENOENT;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
        ss_errf(err, errlen, "%s%s: not a non-negative int32", where, key);
        return -EPROTO;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

/* ---- Scale ------------------------------------------------------------------- */

int ss_k8s_scale_parse(const char *json, size_t len, ss_k8s_scale *out, char *err, size_t errlen)
{
    int rc, bad = 0;
    memset(out, 0, sizeof *out);
    out->status_replicas = -1;
    json_t *root = load(json, len, &rc, err, errlen);
    if (!root)
        return rc;
    const char *kind = str(root, "kind");
    json_t *meta = obj(root, "metadata", &bad);
    json_t *spec = obj(root, "spec", &bad);
    json_t *status = obj(root, "status", &bad);
    if (bad || !kind || strcmp(kind, "Scale") != 0 || !meta) {
        ss_errf(err, errlen, "not an autoscaling/v1 Scale (kind \"%s\")", kind ? kind : "?");
        rc = -EPROTO;
        goto done;
    }
    if ((rc = str_into(meta, "name", out->name, sizeof out->name, "metadata.", err, errlen)) ||
        (rc = str_into(meta, "namespace", out->namespace_, sizeof out->namespace_, "metadata.",
                       err, errlen)) ||
        (rc = str_into(meta, "uid", out->uid, sizeof out->uid, "metadata.", err, errlen)) ||
        (rc = str_into(meta, "resourceVersion", out->resource_version,
                       sizeof out->resource_version, "metadata.", err, errlen)) ||
        (rc = str_into(status, "selector", out->selector, sizeof out->selector, "status.", err,
                       errlen)))
        goto done;
    if (!out->name[0] || !out->resource_version[0]) {
        ss_errf(err, errlen, "metadata.%s: missing", out->name[0] ? "resourceVersion" : "name");
        rc = -EPROTO;
        goto done;
    }
    /* spec.replicas is omitted when 0 (omitempty in autoscaling/v1). */
    out->spec_replicas = 0;
    rc = int_field(spec, "replicas", &out->spec_replicas, "spec.", err, errlen);
    if (rc == -ENOENT)
        rc = 0;
    if (rc)
        goto done;
    out->status_replicas = 0;   /* status.replicas is required, but 0 is omitted too */
    rc = int_field(status, "replicas", &out->status_replicas, "status.", err, errlen);
    if (rc == -ENOENT)
        rc = status ? 0 : (out->status_replicas = -1, 0);
done:
    json_decref(root);
    return rc;
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

char *ss_k8s_scale_put_body(const ss_k8s_scale *s, int replicas)
{
    json_t *meta = json_pack("{s:s, s:s}", "name", s->name, "resourceVersion", s->resource_version);
    if (meta && s->namespace_[0])
        json_object_set_new(meta, "namespace", json_string(s->namespace_));
    if (meta && s->uid[0])   /* a uid precondition too: a re-created workload is another object */
        json_object_set_new(meta, "uid", json_string(s->uid));
    if (!meta)
        return NULL;
    return dump(json_pack("{s:s, s:s, s:o, s:{s:i}}", "apiVersion", "autoscaling/v1", "kind",
                          "Scale", "metadata", meta, "spec", "replicas", replicas));
}

char *ss_k8s_replicas_patch(int replicas)
{
    return dump(json_pack("{s:{s:i}}", "spec", "replicas", replicas));
}

/* ---- Status -------------------------------------------------------------------- */

int ss_k8s_status_parse(const char *json, size_t len, ss_k8s_status *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    json_t *root = load(json, len, &rc, NULL, 0);
    if (!root)
        return rc;
    const char *kind = str(root, "kind");
    if (!kind || strcmp(kind, "Status") != 0) {
        json_decref(root);
        return -EPROTO;
    }
    const char *reason = str(root, "reason"), *msg = str(root, "message");
    json_t *code = json_object_get(root, "code");
    if (code && json_is_integer(code) && json_integer_value(code) >= 0 &&
        json_integer_value(code) < 1000)
        out->code = (int)json_integer_value(code);
    if (reason)
        ss_strlcpy(out->reason, reason, sizeof out->reason);
    if (msg)
        ss_strlcpy(out->message, msg, sizeof out->message);
    /* The message goes into logs and audit records: one line, printable. */
    for (char *p = out->message; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    for (char *p = out->reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    json_decref(root);
    return 0;
}

/* ---- PodList --------------------------------------------------------------------- */

static void pod_free(ss_k8s_pod *p)
{
    free(p->name);
    free(p->uid);
    free(p->node_name);
    free(p->pod_ip);
    free(p->pod_ip2);
    free(p->cost_text);
    free(p->mark);
    free(p->prior_cost);
    free(p->owner_kind);
    free(p->owner_name);
    free(p->owner_uid);
}

void ss_k8s_pod_list_free(ss_k8s_pod_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        pod_free(&l->items[i]);
    free(l->items);
    free(l->next);
    free(l);
}

/* strconv.ParseInt(v, 10, 32) after validFirstDigit (core/helper/helpers.go):
 * "-5", "0", "12"; not "+1", "007", "", " 1". */
static int parse_cost(const char *v, int32_t *out)
{
    const char *p = v;
    if (!v || !*v || !(*v == '-' || strcmp(v, "0") == 0 || (*v >= '1' && *v <= '9')))
        return -1;
    int neg = *p == '-';
    if (neg)
        p++;
    if (!*p)
        return -1;
    int64_t x = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        x = x * 10 + (*p - '0');
        if (x > (int64_t)INT32_MAX + 1)
            return -1;
    }
    if (neg)
        x = -x;
    if (x < INT32_MIN || x > INT32_MAX)
        return -1;
    *out = (int32_t)x;
    return 0;
}

static char *dupz(const char *s)
{
    return strdup(s ? s : "");
}

static const struct { const char *name; ss_k8s_phase phase; } phases[] = {
    { "Pending", SS_K8S_PHASE_PENDING }, { "Running", SS_K8S_PHASE_RUNNING },
    { "Succeeded", SS_K8S_PHASE_SUCCEEDED }, { "Failed", SS_K8S_PHASE_FAILED },
    { "Unknown", SS_K8S_PHASE_UNKNOWN },
};

const char *ss_k8s_phase_name(ss_k8s_phase p)
{
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        if (phases[i].phase == p)
            return phases[i].name;
    return "none";
}

/* One item; -ENOENT = skip it (no name), -EPROTO with a message otherwise. */
static int pod_parse(json_t *item, size_t idx, ss_k8s_pod *p, char *err, size_t errlen)
{
    char where[48];
    int bad = 0;
    snprintf(where, sizeof where, "items[%zu].", idx);
    if (!json_is_object(item)) {
        ss_errf(err, errlen, "items[%zu]: not an object", idx);
        return -EPROTO;
    }
    json_t *meta = obj(item, "metadata", &bad), *spec = obj(item, "spec", &bad);
    json_t *status = obj(item, "status", &bad);
    json_t *ann = meta ? obj(meta, "annotations", &bad) : NULL;
    if (bad) {
        ss_errf(err, errlen, "%smetadata, spec, status or annotations: not an object", where);
        return -EPROTO;
    }
    const char *name = str(meta, "name"), *uid = str(meta, "uid"), *node = str(spec, "nodeName");
    const char *ip = str(status, "podIP"), *phase = str(status, "phase");
    if (!name || !uid || !node || !ip || !phase) {
        ss_errf(err, errlen, "%sname, uid, nodeName, podIP or phase: not a string", where);
        return -EPROTO;
    }
    if (!name[0] || strlen(name) > SS_K8S_MAX_NAME || strlen(ip) > 64 || strlen(uid) > 64 ||
        strlen(node) > SS_K8S_MAX_NAME)
        return -ENOENT;
    json_t *dt = json_object_get(meta, "deletionTimestamp");
    p->terminating = dt && !json_is_null(dt);
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        if (strcmp(phase, phases[i].name) == 0)
            p->phase = phases[i].phase;

    /* status.podIPs[1]: the other family of a dual-stack pod. */
    const char *ip2 = "";
    json_t *ips = status ? json_object_get(status, "podIPs") : NULL;
    if (ips && json_is_array(ips) && json_array_size(ips) > 1) {
        const char *s = str(json_array_get(ips, 1), "ip");
        if (s && strlen(s) <= 64)
            ip2 = s;
    }
    json_t *conds = status ? json_object_get(status, "conditions") : NULL;
    if (conds && json_is_array(conds)) {
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c) {
            const char *t = json_is_object(c) ? str(c, "type") : NULL;
            const char *s = json_is_object(c) ? str(c, "status") : NULL;
            if (t && s && strcmp(t, "Ready") == 0)
                p->ready = strcmp(s, "True") == 0;
        }
    }
    const char *cost = ann ? str(ann, SS_K8S_COST_ANNOTATION) : "";
    const char *mark = ann ? str(ann, SS_K8S_MARK_ANNOTATION) : "";
    const char *prior = ann ? str(ann, SS_K8S_PRIOR_ANNOTATION) : "";
    json_t *has_cost = ann ? json_object_get(ann, SS_K8S_COST_ANNOTATION) : NULL;
    json_t *has_mark = ann ? json_object_get(ann, SS_K8S_MARK_ANNOTATION) : NULL;
    json_t *has_prior = ann ? json_object_get(ann, SS_K8S_PRIOR_ANNOTATION) : NULL;
    if (!cost || !mark || !prior) {
        ss_errf(err, errlen, "%smetadata.annotations: not a string", where);
        return -EPROTO;
    }
    p->has_cost = has_cost && parse_cost(cost, &p->cost) == 0;
    if (!p->has_cost)
        p->cost = 0;

    /* The controller owner (ownerReferences[].controller == true). */
    const char *okind = "", *oname = "", *ouid = "";
    json_t *owners = meta ? json_object_get(meta, "ownerReferences") : NULL;
    if (owners && json_is_array(owners)) {
        size_t i;
        json_t *o;
        json_array_foreach(owners, i, o) {
            json_t *ctl = json_is_object(o) ? json_object_get(o, "controller") : NULL;
            if (ctl && json_is_true(ctl)) {
                const char *k = str(o, "kind"), *n = str(o, "name"), *u = str(o, "uid");
                if (k && n && u && strlen(n) <= SS_K8S_MAX_NAME && strlen(u) <= 64 &&
                    strlen(k) <= 64) {
                    okind = k;
                    oname = n;
                    ouid = u;
                }
                break;
            }
        }
    }
    p->name = strdup(name);
    p->uid = dupz(uid);
    p->node_name = dupz(node);
    p->pod_ip = dupz(ip);
    p->pod_ip2 = dupz(ip2);
    p->owner_kind = dupz(okind);
    p->owner_name = dupz(oname);
    p->owner_uid = dupz(ouid);
    if (has_cost)
        p->cost_text = strndup(cost, 64);
    if (has_mark)
        p->mark = strndup(mark, 256);
    if (has_prior)
        p->prior_cost = strndup(prior, 64);
    if (!p->name || !p->uid || !p->node_name || !p->pod_ip || !p->pod_ip2 || !p->owner_kind ||
        !p->owner_name || !p->owner_uid || (has_cost && !p->cost_text) ||
        (has_mark && !p->mark) || (has_prior && !p->prior_cost))
        return -ENOMEM;
    return 0;
}

int ss_k8s_pod_list_parse(const char *json, size_t len, ss_k8s_pod_list **out,
                          char *err, size_t errlen)
{
    int rc, bad = 0;
    *out = NULL;
    json_t *root = load(json, len, &rc, err, errlen);
    if (!root)
        return rc;
    ss_k8s_pod_list *l = calloc(1, sizeof *l);
    if (!l) {
        json_decref(root);
        return -ENOMEM;
    }
    const char *kind = str(root, "kind");
    json_t *meta = obj(root, "metadata", &bad);
    json_t *items = json_object_get(root, "items");
    const char *next = meta ? str(meta, "continue") : "";
    if (bad || !kind || strcmp(kind, "PodList") != 0 || !next) {
        ss_errf(err, errlen, "not a PodList (kind \"%s\")", kind ? kind : "?");
        rc = -EPROTO;
        goto fail;
    }
    if (items && !json_is_null(items) && !json_is_array(items)) {
        ss_errf(err, errlen, "items: not a list");
        rc = -EPROTO;
        goto fail;
    }
    size_t n = items && json_is_array(items) ? json_array_size(items) : 0;
    if (n > SS_K8S_MAX_PODS) {
        ss_errf(err, errlen, "more than %u pods in one answer", SS_K8S_MAX_PODS);
        rc = -E2BIG;
        goto fail;
    }
    if (!(l->next = strndup(next, 4096)) || !(l->items = calloc(n ? n : 1, sizeof *l->items))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        ss_k8s_pod *p = &l->items[l->n];
        rc = pod_parse(json_array_get(items, i), i, p, err, errlen);
        if (rc == -ENOENT) {
            pod_free(p);
            memset(p, 0, sizeof *p);
            l->skipped++;
            continue;
        }
        l->n++;   /* counted even when failed: freed with the list */
        if (rc)
            goto fail;
    }
    json_decref(root);
    *out = l;
    return 0;
fail:
    json_decref(root);
    ss_k8s_pod_list_free(l);
    return rc;
}

int ss_k8s_pod_list_append(ss_k8s_pod_list *dst, ss_k8s_pod_list *src)
{
    if (src->n == 0)
        return 0;
    if (dst->n + src->n > SS_K8S_MAX_PODS)
        return -E2BIG;
    ss_k8s_pod *items = realloc(dst->items, (dst->n + src->n) * sizeof *items);
    if (!items)
        return -ENOMEM;
    memcpy(items + dst->n, src->items, src->n * sizeof *items);
    dst->items = items;
    dst->n += src->n;
    dst->skipped += src->skipped;
    src->n = 0;
    src->skipped = 0;
    return 0;
}

const ss_k8s_pod *ss_k8s_pod_by_ip(const ss_k8s_pod_list *l, const char *ip)
{
    if (!l || !ip || !ip[0])
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        const ss_k8s_pod *p = &l->items[i];
        if (!p->terminating && (strcmp(p->pod_ip, ip) == 0 || strcmp(p->pod_ip2, ip) == 0))
            return p;
    }
    return NULL;
}

/* ---- annotation patches --------------------------------------------------------- */

static char *annotations_patch(json_t *ann)
{
    if (!ann)
        return NULL;
    return dump(json_pack("{s:{s:o}}", "metadata", "annotations", ann));
}

char *ss_k8s_mark_patch(const ss_k8s_pod *p, const char *mark)
{
    json_t *a = json_pack("{s:s, s:s}", SS_K8S_COST_ANNOTATION, SS_K8S_VICTIM_COST_TEXT,
                          SS_K8S_MARK_ANNOTATION, mark ? mark : "");
    /* Keep the pod's own cost once: a pod marked again keeps the first prior. */
    if (a && !p->mark && p->cost_text)
        json_object_set_new(a, SS_K8S_PRIOR_ANNOTATION, json_string(p->cost_text));
    return annotations_patch(a);
}

char *ss_k8s_unmark_patch(const ss_k8s_pod *p)
{
    json_t *a = json_pack("{s:n, s:n}", SS_K8S_MARK_ANNOTATION, SS_K8S_PRIOR_ANNOTATION);
    if (a)
        json_object_set_new(a, SS_K8S_COST_ANNOTATION,
                            p->prior_cost ? json_string(p->prior_cost) : json_null());
    return annotations_patch(a);
}

/* ---- paths ------------------------------------------------------------------------ */

static int fit(int n, size_t len)
{
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

int ss_k8s_scale_path(char *buf, size_t len, const char *ns, ss_k8s_kind kind, const char *name)
{
    return fit(snprintf(buf, len, "/apis/apps/v1/namespaces/%s/%s/%s/scale", ns,
                        ss_k8s_kind_resource(kind), name), len);
}

int ss_k8s_pod_path(char *buf, size_t len, const char *ns, const char *pod)
{
    return fit(snprintf(buf, len, "/api/v1/namespaces/%s/pods/%s", ns, pod), len);
}

int ss_k8s_query_escape(char *buf, size_t len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (o + (keep ? 1 : 3) >= len)
            return -ENAMETOOLONG;
        if (keep) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    if (o >= len)
        return -ENAMETOOLONG;
    buf[o] = '\0';
    return (int)o;
}

int ss_k8s_pods_path(char *buf, size_t len, const char *ns, const char *selector, int limit,
                     const char *cont)
{
    int n = snprintf(buf, len, "/api/v1/namespaces/%s/pods?labelSelector=", ns);
    if (fit(n, len) < 0)
        return -ENAMETOOLONG;
    int m = ss_k8s_query_escape(buf + n, len - (size_t)n, selector);
    if (m < 0)
        return m;
    n += m;
    int k = snprintf(buf + n, len - (size_t)n, "&limit=%d", limit);
    if (fit(k, len - (size_t)n) < 0)
        return -ENAMETOOLONG;
    n += k;
    if (cont && cont[0]) {
        k = snprintf(buf + n, len - (size_t)n, "&continue=");
        if (fit(k, len - (size_t)n) < 0)
            return -ENAMETOOLONG;
        n += k;
        if ((m = ss_k8s_query_escape(buf + n, len - (size_t)n, cont)) < 0)
            return m;
        n += m;
    }
    return n;
}

int ss_k8s_statefulset_ordinal(const char *set, const char *pod)
{
    size_t l = strlen(set);
    if (strncmp(pod, set, l) != 0 || pod[l] != '-' || !pod[l + 1])
        return -1;
    const char *p = pod + l + 1;
    if (p[0] == '0' && p[1])   /* the controller writes no leading zeros */
        return -1;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return (int)v;
}
