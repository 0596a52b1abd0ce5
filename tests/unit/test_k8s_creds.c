/* test_k8s_creds.c: kubeconfig contexts, credentials of every kind, what is
 * refused (and that the refusal names the entry, never a secret), in-cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/k8s/creds.h"

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" in base64 */
#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define PEM_TEXT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

/* The shape control-plane.sh writes, plus a second cluster and users. */
static const char kc_text[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "clusters:\n"
    "- name: sparkscale-test\n"
    "  cluster:\n"
    "    server: https://127.0.0.1:6443/\n"
    "    certificate-authority: pki/ca.crt\n"
    "- name: other\n"
    "  cluster:\n"
    "    server: https://[::1]:8443\n"
    "    certificate-authority-data: " PEM_B64 "\n"
    "users:\n"
    "- name: scaler\n"
    "  user:\n"
    "    token: s3cr3t-token-value\n"
    "- name: certuser\n"
    "  user:\n"
    "    client-certificate-data: " PEM_B64 "\n"
    "    client-key-data: " PEM_B64 "\n"
    "contexts:\n"
    "- name: scaler@sparkscale-test\n"
    "  context:\n"
    "    cluster: sparkscale-test\n"
    "    user: scaler\n"
    "    namespace: spark\n"
    "- name: cert\n"
    "  context: {cluster: other, user: certuser}\n"
    "- name: nouser\n"
    "  context: {cluster: other}\n"
    "current-context: scaler@sparkscale-test\n";

static int parse(const char *yaml, const char *ctx, ss_k8s_creds **c, char *err, size_t errlen)
{
    err[0] = '\0';
    return ss_k8s_kubeconfig_parse(yaml, strlen(yaml), "/etc/kube/config", "/etc/kube", ctx, c,
                                   err, errlen);
}

static void test_current_context_token(void **state)
{
    char err[512];
    ss_k8s_creds *c = NULL;
    const char *y = kc_text;
    assert_int_equal(parse(y, NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://127.0.0.1:6443");   /* trailing slash cut */
    assert_string_equal(c->ca_file, "/etc/kube/pki/ca.crt");    /* relative to the file */
    assert_null(c->ca_pem);
    assert_string_equal(c->token, "s3cr3t-token-value");
    assert_string_equal(c->namespace_, "spark");
    assert_false(c->insecure_skip_verify);
    assert_non_null(strstr(c->origin, "scaler@sparkscale-test"));
    ss_k8s_creds_free(c);

    assert_int_equal(parse(y, "cert", &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://[::1]:8443");
    assert_string_equal(c->ca_pem, PEM_TEXT);
    assert_string_equal(c->cert_pem, PEM_TEXT);
    assert_string_equal(c->key_pem, PEM_TEXT);
    assert_null(c->token);
    assert_null(c->namespace_);
    ss_k8s_creds_free(c);

    assert_int_equal(parse(y, "nouser", &c, err, sizeof err), 0);   /* anonymous */
    assert_null(c->token);
    assert_null(c->cert_pem);
    ss_k8s_creds_free(c);

    assert_int_equal(parse(y, "missing", &c, err, sizeof err), -EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "no context named \"missing\""));
    assert_non_null(strstr(err, "/etc/kube/config"));
}

static void test_refused(void **state)
{
    static const struct { const char *cluster, *user; int rc; const char *needle; } cases[] = {
        { "server: https://h\n    insecure-skip-tls-verify: true\n    certificate-authority: /ca",
          "token: t", -EINVAL, "insecure-skip-tls-verify with a certificate authority" },
        { "server: https://h\n    certificate-authority: /ca\n    certificate-authority-data: " PEM_B64,
          "token: t", -EINVAL, "both set" },
        { "server: https://h", "exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}",
          -ENOTSUP, "credential plugins" },
        { "server: https://h", "auth-provider: {name: gcp}", -ENOTSUP, "credential plugins" },
        { "server: https://h\n    proxy-url: http://proxy:3128", "token: t", -ENOTSUP, "proxy-url" },
        { "server: https://h\n    tls-server-name: k", "token: t", -ENOTSUP, "tls-server-name" },
        { "certificate-authority: /ca", "token: t", -EINVAL, "no server" },
        { "server: ftp://h", "token: t", -EINVAL, "http(s) URL" },
        { "server: https://h", "client-certificate: /c.pem", -EINVAL, "needs its key" },
        { "server: https://h", "client-key-data: " PEM_B64, -EINVAL, "needs its key" },
        { "server: https://h", "client-certificate: /c\n    client-certificate-data: " PEM_B64
                               "\n    client-key: /k", -EINVAL, "both set" },
        { "server: https://h", "token: s3cr3t-token-value\n    username: u\n    password: pw",
          -EINVAL, "more than one authentication method" },
        { "server: https://h", "client-certificate-data: not*base64\n    client-key: /k",
          -EINVAL, "not base64" },
        { "server: https://h\n    insecure-skip-tls-verify: maybe", "token: t", -EINVAL,
          "not a boolean" },
        { "server: https://h", "password: pw", -EINVAL, "password without username" },
        { "server: https://h", "as-groups: [a]", -EINVAL, "as-groups without as" },
        { "server: [https://h]", "token: t", -EINVAL, "not a string" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char y[1024], err[512];
        ss_k8s_creds *c = (ss_k8s_creds *)y;
        snprintf(y, sizeof y,
                 "clusters:\n- name: c\n  cluster:\n    %s\nusers:\n- name: u\n  user:\n    %s\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
                 cases[i].cluster, cases[i].user);
        int rc = parse(y, NULL, &c, err, sizeof err);
        if (rc != cases[i].rc || !strstr(err, cases[i].needle))
            fail_msg("case %zu: rc %d, \"%s\" (want %d, \"%s\")", i, rc, err, cases[i].rc,
                     cases[i].needle);
        assert_null(c);
        assert_null(strstr(err, "s3cr3t"));
    }
}

static void test_shapes(void **state)
{
    char err[512];
    ss_k8s_creds *c;
    /* JSON is YAML too; insecure honoured when the file says so. */
    const char *json = "{\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://h:1\","
                       "\"insecure-skip-tls-verify\":true}}],\"users\":[{\"name\":\"u\",\"user\":"
                       "{\"tokenFile\":\"tok\",\"as\":\"alice\",\"as-groups\":[\"g1\",\"g2\"]}}],"
                       "\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\",\"user\":\"u\"}}],"
                       "\"current-context\":\"x\"}";
    assert_int_equal(parse(json, NULL, &c, err, sizeof err), 0);
    assert_true(c->insecure_skip_verify);
    assert_string_equal(c->token_file, "/etc/kube/tok");
    assert_string_equal(c->impersonate_user, "alice");
    assert_int_equal(c->nimpersonate_groups, 2);
    assert_string_equal(c->impersonate_groups[1], "g2");
    ss_k8s_creds_free(c);
    /* basic auth; an absolute path stays */
    const char *basic = "clusters: [{name: c, cluster: {server: 'http://h', certificate-authority: /abs/ca}}]\n"
                        "users: [{name: u, user: {username: bob, password: pw}}]\n"
                        "contexts: [{name: x, context: {cluster: c, user: u}}]\n";
    assert_int_equal(parse(basic, "x", &c, err, sizeof err), 0);
    assert_string_equal(c->username, "bob");
    assert_string_equal(c->password, "pw");
    assert_string_equal(c->ca_file, "/abs/ca");
    ss_k8s_creds_free(c);
    assert_int_equal(parse(basic, NULL, &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no current-context"));
    const char *nocluster = "clusters: []\ncontexts: [{name: x, context: {cluster: c}}]\n"
                            "current-context: x\n";
    assert_int_equal(parse(nocluster, NULL, &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no cluster named \"c\""));
    const char *nouser = "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
                         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
    assert_int_equal(parse(nouser, NULL, &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no user named \"u\""));
    assert_int_equal(parse("- a list", NULL, &c, err, sizeof err), -EINVAL);
    assert_int_equal(parse("a: [", NULL, &c, err, sizeof err), -EINVAL);
    assert_int_equal(parse("", NULL, &c, err, sizeof err), -EINVAL);
}

static void test_base64(void **state)
{
    size_t n;
    char *s = ss_k8s_base64_decode("aGVsbG8=", 8, &n);
    assert_string_equal(s, "hello");
    assert_int_equal(n, 5);
    free(s);
    s = ss_k8s_base64_decode("aGVsbG8", 7, &n);   /* padding optional */
    assert_string_equal(s, "hello");
    free(s);
    s = ss_k8s_base64_decode("aGVs\nbG8h\r\n", 11, &n);
    assert_string_equal(s, "hello!");
    free(s);
    s = ss_k8s_base64_decode("", 0, &n);
    assert_int_equal(n, 0);
    free(s);
    const char *bad[] = { "a", "a===", "aGVsbG8==", "aGV*", "aG=V", "aGVsbG9=" /* bits */ };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ss_k8s_base64_decode(bad[i], strlen(bad[i]), &n))
            fail_msg("accepted %s", bad[i]);
}

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_dir(void **state)
{
    strcpy(tmpdir, "/tmp/ss-k8s-creds.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_incluster(void **state)
{
    char err[512];
    ss_k8s_creds *c;
    assert_int_equal(ss_k8s_incluster_load("", "443", tmpdir, &c, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
    assert_int_equal(ss_k8s_incluster_load("10.0.0.1", "443", tmpdir, &c, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/token"));
    write_file("token", "eyJhbGciOi.secret-part\n");
    assert_int_equal(ss_k8s_incluster_load("10.0.0.1", "443", tmpdir, &c, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "ca.crt"));
    assert_null(strstr(err, "secret-part"));
    write_file("ca.crt", PEM_TEXT);
    write_file("namespace", "spark\n");
    assert_int_equal(ss_k8s_incluster_load("10.0.0.1", "443", tmpdir, &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://10.0.0.1:443");
    assert_non_null(strstr(c->token_file, "/token"));
    assert_non_null(strstr(c->ca_file, "/ca.crt"));
    assert_null(c->token);   /* read per request, not kept here */
    assert_string_equal(c->namespace_, "spark");
    ss_k8s_creds_free(c);
    assert_int_equal(ss_k8s_incluster_load("fd00::1", "6443", tmpdir, &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://[fd00::1]:6443");
    ss_k8s_creds_free(c);
    assert_int_equal(ss_k8s_incluster_load("h/x", "1", tmpdir, &c, err, sizeof err), -EINVAL);
    assert_int_equal(ss_k8s_incluster_load("h", "44a", tmpdir, &c, err, sizeof err), -EINVAL);
    write_file("token", "\n");
    assert_int_equal(ss_k8s_incluster_load("h", "1", tmpdir, &c, err, sizeof err), -EINVAL);
    write_file("token", "a\nb\n");
    assert_int_equal(ss_k8s_incluster_load("h", "1", tmpdir, &c, err, sizeof err), -EINVAL);
    assert_null(strstr(err, "a\nb"));
}

static void test_load_file(void **state)
{
    char err[512], path[256];
    ss_k8s_creds *c;
    write_file("kc", "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: ca.pem}}]\n"
                     "users: [{name: u, user: {client-certificate: c.pem, client-key: k.pem}}]\n"
                     "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n");
    snprintf(path, sizeof path, "%s/kc", tmpdir);
    assert_int_equal(ss_k8s_kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
    char want[300];
    char real[256];
    assert_non_null(realpath(tmpdir, real));
    snprintf(want, sizeof want, "%s/ca.pem", real);
    assert_string_equal(c->ca_file, want);
    snprintf(want, sizeof want, "%s/k.pem", real);
    assert_string_equal(c->key_file, want);
    ss_k8s_creds_free(c);
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    assert_int_equal(ss_k8s_kubeconfig_load(path, NULL, &c, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "nope"));
}

static void test_read_token(void **state)
{
    char buf[16], err[256], path[256];
    write_file("t", "abcdefghijklmnop");   /* 16 bytes: one too many for buf */
    snprintf(path, sizeof path, "%s/t", tmpdir);
    assert_int_equal(ss_k8s_read_token(path, buf, sizeof buf, err, sizeof err), -E2BIG);
    assert_null(strstr(err, "abcdef"));
    write_file("t", "abc \r\n");
    assert_int_equal(ss_k8s_read_token(path, buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_context_token),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_incluster),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_read_token),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
