/* creds.h: how to reach one Kubernetes API server: a kubeconfig context
 * (current-context or a named one) or the pod's in-cluster service account.
 * Field names and rules follow client-go's clientcmd (api/v1/types.go,
 * validation.go, loader.go) and rest.InClusterConfig. */
#ifndef SS_K8S_CREDS_H
#define SS_K8S_CREDS_H

#include <stddef.h>

#define SS_K8S_MAX_KUBECONFIG (4u << 20)   /* bytes; embedded certificates included */
#define SS_K8S_MAX_TOKEN 16384             /* bytes of a bearer token (a projected JWT is ~1 KiB) */
#define SS_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Every string is owned by the struct; NULL = not set. Secrets (token,
 * password, key_pem) are wiped when freed and are never printed. */
typedef struct ss_k8s_creds {
    char *server;               /* "https://host:port[/prefix]", no trailing '/' */
    char *ca_file;              /* PEM bundle that signs the server's certificate */
    char *ca_pem;               /* the same in memory (certificate-authority-data) */
    int insecure_skip_verify;   /* only when the kubeconfig says so */
    char *cert_file, *cert_pem; /* client certificate */
    char *key_file, *key_pem;   /* its key (key_pem is a secret) */
    char *token;                /* static bearer token (secret) */
    char *token_file;           /* bearer token read from this file, re-read as it rotates */
    char *username, *password;  /* HTTP basic (password is a secret) */
    char *impersonate_user;     /* kubeconfig "as" */
    char **impersonate_groups;  /* kubeconfig "as-groups" */
    size_t nimpersonate_groups;
    char *namespace_;           /* the context's namespace, NULL if none */
    char *origin;               /* for messages: "kubeconfig FILE, context NAME" or "in-cluster" */
} ss_k8s_creds;

/* Parses a kubeconfig held in memory (YAML or JSON, len bytes, no NUL
 * needed) and picks context (NULL or "" = current-context). Relative file
 * paths in it are resolved against dir (the file's directory; NULL = left
 * as they are). file names the source in messages. Pure: reads no file.
 * Returns 0 and *out (free with ss_k8s_creds_free), or a negative code with
 * a message naming the file and the entry in err:
 *   -EINVAL  not a kubeconfig, no such context, a missing server, both a
 *            file and data for one role, bad base64, insecure-skip-tls-verify
 *            with a CA, several authentication methods
 *   -ENOTSUP exec or auth-provider credential plugins, proxy-url,
 *            tls-server-name (not supported: refused rather than ignored)
 *   -E2BIG   over SS_K8S_MAX_KUBECONFIG
 *   -ENOMEM */
int ss_k8s_kubeconfig_parse(const char *yaml, size_t len, const char *file, const char *dir,
                            const char *context, ss_k8s_creds **out, char *err, size_t errlen);

/* Reads path and parses it as above (relative paths against its directory). */
int ss_k8s_kubeconfig_load(const char *path, const char *context, ss_k8s_creds **out,
                           char *err, size_t errlen);

/* In-cluster credentials as client-go's rest.InClusterConfig builds them:
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an IPv6 host in
 * brackets), bearer token from sa_dir/token (re-read as it rotates), CA
 * sa_dir/ca.crt, namespace from sa_dir/namespace when present. host, port
 * and sa_dir NULL = the environment variables and SS_K8S_SA_DIR. The token
 * file must be readable now. Returns 0 and *out, -ENOENT when not in a pod
 * (no host or port: the message says so), or -errno naming the file. */
int ss_k8s_incluster_load(const char *host, const char *port, const char *sa_dir,
                          ss_k8s_creds **out, char *err, size_t errlen);

void ss_k8s_creds_free(ss_k8s_creds *c);

/* Decodes base64 (RFC 4648, standard alphabet, padding optional, CR/LF
 * ignored) into a new NUL-terminated buffer; *outlen (if not NULL) gets the
 * decoded length. NULL on bad input or out of memory. */
char *ss_k8s_base64_decode(const char *in, size_t len, size_t *outlen);

/* Reads a bearer token file into buf (len bytes): trailing blanks and
 * newlines cut; refused when empty, several lines or too long. Returns 0 or
 * -errno with a message naming the file (never its content) in err. */
int ss_k8s_read_token(const char *path, char *buf, size_t len, char *err, size_t errlen);

#endif
