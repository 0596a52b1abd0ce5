/* creds.c: kubeconfig (libyaml's document API) and in-cluster credentials.
 * What is not supported is refused with a message, never silently ignored:
 * a credential plugin or proxy skipped would mean other rights or another path. */
#include "lib/k8s/creds.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <yaml.h>

#include "lib/base/str.h"

/* ---- small helpers -------------------------------------------------------- */

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void ss_k8s_creds_free(ss_k8s_creds *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->cert_file);
    free(c->cert_pem);
    free(c->key_file);
    wipe_free(c->key_pem);
    wipe_free(c->token);
    free(c->token_file);
    free(c->username);
    wipe_free(c->password);
    free(c->impersonate_user);
    for (size_t i = 0; i < c->nimpersonate_groups; i++)
        free(c->impersonate_groups[i]);
    free(c->impersonate_groups);
    free(c->namespace_);
    free(c->origin);
    free(c);
}

static const signed char b64[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};   /* value + 1; 0 = not in the alphabet */

char *ss_k8s_base64_decode(const char *in, size_t len, size_t *outlen)
{
    char *out = malloc(len / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t n = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '\r' || ch == '\n')
            continue;
        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad || !b64[ch])   /* data after padding, or outside the alphabet */
            goto bad;
        acc = (acc << 6) | (uint32_t)(b64[ch] - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* 6 leftover bits cannot encode a byte; padding never exceeds two. */
    if (bits >= 6 || (pad && !((bits == 4 && pad == 2) || (bits == 2 && pad == 1))))
        goto bad;
    if (bits && (acc & ((1u << bits) - 1)))   /* non-canonical trailing bits */
        goto bad;
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return out;
bad:
    free(out);
    return NULL;
}

int ss_k8s_read_token(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        ss_errf(err, errlen, "token file %s: %s", path, strerror(e));
        return -e;
    }
    size_t n = fread(buf, 1, len - 1, f);
    int toolong = n == len - 1 && fgetc(f) != EOF;
    fclose(f);
    if (toolong) {
        explicit_bzero(buf, len);
        ss_errf(err, errlen, "token file %s: longer than %zu bytes", path, len - 1);
        return -E2BIG;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\n', n) || memchr(buf, '\r', n) || strlen(buf) != n) {
        explicit_bzero(buf, len);
        ss_errf(err, errlen, "token file %s: empty or not one line", path);
        return -EINVAL;
    }
    return 0;
}

/* ---- kubeconfig ------------------------------------------------------------ */

typedef struct kctx {
    yaml_document_t doc;
    const char *file;
    const char *dir;
    char *err;
    size_t errlen;
} kctx;

static int kfail(kctx *k, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int kfail(kctx *k, int rc, const char *fmt, ...)
{
    if (!k->err || k->errlen == 0)
        return rc;
    int n = snprintf(k->err, k->errlen, "kubeconfig %s: ", k->file);
    if (n >= 0 && (size_t)n < k->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static yaml_node_t *node(kctx *k, int id) { return yaml_document_get_node(&k->doc, id); }

static int is_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE; }

static const char *text(const yaml_node_t *n)
{
    return is_scalar(n) ? (const char *)n->data.scalar.value : NULL;
}

/* A plain null/empty scalar counts as absent, as Go's YAML decoding has it. */
static int is_null(const yaml_node_t *n)
{
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = text(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

static yaml_node_t *get(kctx *k, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *t = text(node(k, p->key));
        if (t && strcmp(t, key) == 0) {
            yaml_node_t *v = node(k, p->value);
            return is_null(v) ? NULL : v;
        }
    }
    return NULL;
}

/* A string field of an entry: NULL when absent, "" never returned. Sets
 * *bad when present but not a scalar. */
static const char *get_str(kctx *k, yaml_node_t *map, const char *key, int *bad)
{
    yaml_node_t *v = get(k, map, key);
    if (!v)
        return NULL;
    if (!is_scalar(v)) {
        *bad = 1;
        return NULL;
    }
    return text(v)[0] ? text(v) : NULL;
}

/* The entry of list `list` whose "name" is name, and its `inner` mapping. */
static yaml_node_t *find_named(kctx *k, yaml_node_t *root, const char *list, const char *name,
                               const char *inner)
{
    yaml_node_t *seq = get(k, root, list);
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *e = node(k, *it);
        const char *n = text(get(k, e, "name"));
        if (n && strcmp(n, name) == 0) {
            yaml_node_t *in = get(k, e, inner);
            return in && in->type == YAML_MAPPING_NODE ? in : NULL;
        }
    }
    return NULL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = { "true", "yes", "on", NULL }, *no[] = { "false", "no", "off", NULL };
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return (*out = 1), 0;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0)
            return (*out = 0), 0;
    return -1;
}

/* Duplicates a path, joined to the kubeconfig's directory when relative. */
static char *path_dup(kctx *k, const char *p)
{
    if (p[0] == '/' || !k->dir || !k->dir[0])
        return strdup(p);
    size_t n = strlen(k->dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", k->dir, p);
    return s;
}

/* A *-data field: base64 PEM into a new string. */
static int data_field(kctx *k, yaml_node_t *map, const char *what, const char *key, char **out)
{
    int bad = 0;
    const char *v = get_str(k, map, key, &bad);
    if (bad)
        return kfail(k, -EINVAL, "%s: %s: not a string", what, key);
    if (!v)
        return 0;
    size_t n;
    *out = ss_k8s_base64_decode(v, strlen(v), &n);
    if (!*out)
        return kfail(k, -EINVAL, "%s: %s: not base64", what, key);
    if (n == 0 || strlen(*out) != n)
        return kfail(k, -EINVAL, "%s: %s: decodes to no PEM text", what, key);
    return 0;
}

static int str_field(kctx *k, yaml_node_t *map, const char *what, const char *key, int is_path,
                     char **out)
{
    int bad = 0;
    const char *v = get_str(k, map, key, &bad);
    if (bad)
        return kfail(k, -EINVAL, "%s: %s: not a string", what, key);
    if (!v)
        return 0;
    *out = is_path ? path_dup(k, v) : strdup(v);
    return *out ? 0 : -ENOMEM;
}

static int parse_cluster(kctx *k, yaml_node_t *cl, const char *what, ss_k8s_creds *c)
{
    int rc;
    static const char *unsupported[] = { "proxy-url", "tls-server-name", NULL };
    for (int i = 0; unsupported[i]; i++)
        if (get(k, cl, unsupported[i]))
            return kfail(k, -ENOTSUP, "%s: %s is not supported", what, unsupported[i]);
    if ((rc = str_field(k, cl, what, "server", 0, &c->server)) != 0)
        return rc;
    if (!c->server)
        return kfail(k, -EINVAL, "%s: no server", what);
    if (strncasecmp(c->server, "https://", 8) != 0 && strncasecmp(c->server, "http://", 7) != 0)
        return kfail(k, -EINVAL, "%s: server must be an http(s) URL", what);
    for (size_t l = strlen(c->server); l > 8 && c->server[l - 1] == '/'; l--)
        c->server[l - 1] = '\0';
    if ((rc = str_field(k, cl, what, "certificate-authority", 1, &c->ca_file)) != 0 ||
        (rc = data_field(k, cl, what, "certificate-authority-data", &c->ca_pem)) != 0)
        return rc;
    if (c->ca_file && c->ca_pem)
        return kfail(k, -EINVAL, "%s: certificate-authority-data and certificate-authority "
                     "are both set", what);
    yaml_node_t *ins = get(k, cl, "insecure-skip-tls-verify");
    if (ins && (!is_scalar(ins) || parse_bool(text(ins), &c->insecure_skip_verify) != 0))
        return kfail(k, -EINVAL, "%s: insecure-skip-tls-verify: not a boolean", what);
    if (c->insecure_skip_verify && (c->ca_file || c->ca_pem))
        return kfail(k, -EINVAL, "%s: insecure-skip-tls-verify with a certificate authority "
                     "(client-go refuses this too)", what);
    return 0;
}

static int parse_user(kctx *k, yaml_node_t *u, const char *what, ss_k8s_creds *c)
{
    int rc;
    if (get(k, u, "exec") || get(k, u, "auth-provider"))
        return kfail(k, -ENOTSUP, "%s: credential plugins (exec, auth-provider) are not "
                     "supported; use a token, a token file or a client certificate", what);
    if ((rc = str_field(k, u, what, "client-certificate", 1, &c->cert_file)) != 0 ||
        (rc = data_field(k, u, what, "client-certificate-data", &c->cert_pem)) != 0 ||
        (rc = str_field(k, u, what, "client-key", 1, &c->key_file)) != 0 ||
        (rc = data_field(k, u, what, "client-key-data", &c->key_pem)) != 0 ||
        (rc = str_field(k, u, what, "token", 0, &c->token)) != 0 ||
        (rc = str_field(k, u, what, "tokenFile", 1, &c->token_file)) != 0 ||
        (rc = str_field(k, u, what, "username", 0, &c->username)) != 0 ||
        (rc = str_field(k, u, what, "password", 0, &c->password)) != 0 ||
        (rc = str_field(k, u, what, "as", 0, &c->impersonate_user)) != 0)
        return rc;
    if (c->cert_file && c->cert_pem)
        return kfail(k, -EINVAL, "%s: client-certificate-data and client-certificate are both set",
                     what);
    if (c->key_file && c->key_pem)
        return kfail(k, -EINVAL, "%s: client-key-data and client-key are both set", what);
    if ((c->cert_file || c->cert_pem) != (c->key_file || c->key_pem))
        return kfail(k, -EINVAL, "%s: a client certificate needs its key, and a key its "
                     "certificate", what);
    if ((c->token || c->token_file) && (c->username || c->password))
        return kfail(k, -EINVAL, "%s: more than one authentication method (token and "
                     "username/password)", what);
    if (c->password && !c->username)
        return kfail(k, -EINVAL, "%s: password without username", what);
    if (c->token && strpbrk(c->token, "\r\n"))
        return kfail(k, -EINVAL, "%s: token: not one line", what);
    yaml_node_t *g = get(k, u, "as-groups");
    if (g) {
        if (g->type != YAML_SEQUENCE_NODE)
            return kfail(k, -EINVAL, "%s: as-groups: not a list", what);
        size_t n = (size_t)(g->data.sequence.items.top - g->data.sequence.items.start);
        if (n > 64)
            return kfail(k, -EINVAL, "%s: as-groups: more than 64", what);
        c->impersonate_groups = calloc(n ? n : 1, sizeof *c->impersonate_groups);
        if (!c->impersonate_groups)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            const char *t = text(node(k, g->data.sequence.items.start[i]));
            if (!t || !t[0] || strpbrk(t, "\r\n"))
                return kfail(k, -EINVAL, "%s: as-groups[%zu]: not a one-line string", what, i);
            if (!(c->impersonate_groups[i] = strdup(t)))
                return -ENOMEM;
            c->nimpersonate_groups++;
        }
        if (n && !c->impersonate_user)
            return kfail(k, -EINVAL, "%s: as-groups without as", what);
    }
    if (c->impersonate_user && strpbrk(c->impersonate_user, "\r\n"))
        return kfail(k, -EINVAL, "%s: as: not one line", what);
    return 0;
}

int ss_k8s_kubeconfig_parse(const char *yaml, size_t len, const char *file, const char *dir,
                            const char *context, ss_k8s_creds **out, char *err, size_t errlen)
{
    kctx k = { .file = file ? file : "(memory)", .dir = dir, .err = err, .errlen = errlen };
    yaml_parser_t p;
    ss_k8s_creds *c = NULL;
    int rc = 0;

    *out = NULL;
    if (!yaml && len)
        return -EINVAL;
    if (len > SS_K8S_MAX_KUBECONFIG)
        return kfail(&k, -E2BIG, "larger than %u bytes", SS_K8S_MAX_KUBECONFIG);
    if (!yaml_parser_initialize(&p))
        return -ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)(yaml ? yaml : ""), len);
    if (!yaml_parser_load(&p, &k.doc)) {
        rc = kfail(&k, -EINVAL, "line %zu: %s", p.problem_mark.line + 1,
                   p.problem ? p.problem : "YAML error");
        yaml_parser_delete(&p);
        return rc;
    }
    yaml_parser_delete(&p);

    yaml_node_t *root = yaml_document_get_root_node(&k.doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = kfail(&k, -EINVAL, "not a mapping (is this a kubeconfig?)");
        goto cleanup;
    }
    const char *cur = text(get(&k, root, "current-context"));
    const char *want = context && context[0] ? context : cur;
    if (!want || !want[0]) {
        rc = kfail(&k, -EINVAL, "no current-context; name a context in the configuration");
        goto cleanup;
    }
    char what[300];
    yaml_node_t *ctxn = find_named(&k, root, "contexts", want, "context");
    if (!ctxn) {
        rc = kfail(&k, -EINVAL, "no context named \"%s\"", want);
        goto cleanup;
    }
    const char *clname = text(get(&k, ctxn, "cluster"));
    const char *uname = text(get(&k, ctxn, "user"));
    const char *ns = text(get(&k, ctxn, "namespace"));
    if (!clname || !clname[0]) {
        rc = kfail(&k, -EINVAL, "context \"%s\" names no cluster", want);
        goto cleanup;
    }
    yaml_node_t *cl = find_named(&k, root, "clusters", clname, "cluster");
    if (!cl) {
        rc = kfail(&k, -EINVAL, "context \"%s\": no cluster named \"%s\"", want, clname);
        goto cleanup;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = -ENOMEM;
        goto cleanup;
    }
    snprintf(what, sizeof what, "cluster \"%s\"", clname);
    if ((rc = parse_cluster(&k, cl, what, c)) != 0)
        goto cleanup;
    if (uname && uname[0]) {
        yaml_node_t *u = find_named(&k, root, "users", uname, "user");
        if (!u) {
            rc = kfail(&k, -EINVAL, "context \"%s\": no user named \"%s\"", want, uname);
            goto cleanup;
        }
        snprintf(what, sizeof what, "user \"%s\"", uname);
        if ((rc = parse_user(&k, u, what, c)) != 0)
            goto cleanup;
    }
    if (ns && ns[0] && !(c->namespace_ = strdup(ns))) {
        rc = -ENOMEM;
        goto cleanup;
    }
    size_t on = strlen(k.file) + strlen(want) + 40;
    if (!(c->origin = malloc(on))) {
        rc = -ENOMEM;
        goto cleanup;
    }
    snprintf(c->origin, on, "kubeconfig %s, context %s", k.file, want);
cleanup:
    yaml_document_delete(&k.doc);
    if (rc) {
        ss_k8s_creds_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int ss_k8s_kubeconfig_load(const char *path, const char *context, ss_k8s_creds **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        ss_errf(err, errlen, "kubeconfig %s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(SS_K8S_MAX_KUBECONFIG + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, SS_K8S_MAX_KUBECONFIG + 1, f);
    int e = ferror(f) ? EIO : 0;
    fclose(f);
    int rc;
    if (e) {
        ss_errf(err, errlen, "kubeconfig %s: read error", path);
        rc = -e;
    } else {
        /* The directory, absolute when the path is relative to the cwd, as
         * client-go resolves file references. */
        char dir[4096] = ".";
        const char *slash = strrchr(path, '/');
        if (slash)
            snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
        char abs[4096];
        const char *d = realpath(dir, abs) ? abs : dir;
        rc = ss_k8s_kubeconfig_parse(buf, n, path, d, context, out, err, errlen);
    }
    explicit_bzero(buf, n);   /* it may hold tokens and keys */
    free(buf);
    return rc;
}

/* ---- in-cluster ------------------------------------------------------------- */

int ss_k8s_incluster_load(const char *host, const char *port, const char *sa_dir,
                          ss_k8s_creds **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!host)
        host = getenv("KUBERNETES_SERVICE_HOST");
    if (!port)
        port = getenv("KUBERNETES_SERVICE_PORT");
    if (!sa_dir || !sa_dir[0])
        sa_dir = SS_K8S_SA_DIR;
    if (!host || !host[0] || !port || !port[0]) {
        ss_errf(err, errlen, "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT unset) "
                "and no kubeconfig configured");
        return -ENOENT;
    }
    if (strpbrk(host, "/@?#[] \t\r\n")) {
        ss_errf(err, errlen, "KUBERNETES_SERVICE_HOST: not a host name or address");
        return -EINVAL;
    }
    for (const char *q = port; *q; q++)
        if (*q < '0' || *q > '9' || q - port > 5) {
            ss_errf(err, errlen, "KUBERNETES_SERVICE_PORT: not a port number");
            return -EINVAL;
        }
    ss_k8s_creds *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    size_t n = strlen(host) + strlen(port) + 16;
    size_t dn = strlen(sa_dir) + 16;
    c->server = malloc(n);
    c->token_file = malloc(dn);
    c->ca_file = malloc(dn);
    c->origin = strdup("in-cluster service account");
    if (!c->server || !c->token_file || !c->ca_file || !c->origin) {
        ss_k8s_creds_free(c);
        return -ENOMEM;
    }
    /* net.JoinHostPort: an IPv6 address goes in brackets. */
    snprintf(c->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    snprintf(c->token_file, dn, "%s/token", sa_dir);
    snprintf(c->ca_file, dn, "%s/ca.crt", sa_dir);
    char tok[SS_K8S_MAX_TOKEN];
    int rc = ss_k8s_read_token(c->token_file, tok, sizeof tok, err, errlen);
    explicit_bzero(tok, sizeof tok);
    if (rc) {
        ss_k8s_creds_free(c);
        return rc;
    }
    struct stat st;
    if (stat(c->ca_file, &st) != 0) {
        int e = errno;
        ss_errf(err, errlen, "service account CA %s: %s", c->ca_file, strerror(e));
        ss_k8s_creds_free(c);
        return -e;
    }
    char nsfile[4096], ns[256];
    snprintf(nsfile, sizeof nsfile, "%s/namespace", sa_dir);
    FILE *f = fopen(nsfile, "r");
    if (f) {
        size_t l = fread(ns, 1, sizeof ns - 1, f);
        fclose(f);
        while (l && (ns[l - 1] == '\n' || ns[l - 1] == ' '))
            l--;
        ns[l] = '\0';
        if (l && !(c->namespace_ = strdup(ns))) {
            ss_k8s_creds_free(c);
            return -ENOMEM;
        }
    }
    *out = c;
    return 0;
}
