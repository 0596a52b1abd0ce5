/* exec.c: the exec backend: a command (argv, no shell) resizes the cluster,
 * told what to do in its environment (SPARKSCALE_CLUSTER, _CURRENT,
 * _DESIRED, _REMOVE_HOSTS, _REMOVE_WORKERS, _DRY_RUN, _ACTUATOR); an optional
 * size_command prints the current count. Run with uv_spawn in a process
 * group of their own, so a timeout kills the command and its children. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actuator/backend.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/str.h"

extern char **environ;

#define KILL_GRACE_MS 2000       /* SIGTERM, then SIGKILL this much later */
#define PIPE_GRACE_MS 200        /* after exit, output still in the pipes */
#define STDOUT_KEEP 256          /* size_command: its answer */

typedef struct exec_backend exec_backend;

struct ss_backend_op {
    exec_backend *b;
    struct ss_backend_op *prev, *next;
    int scale;                   /* 0: size_command */
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    int open;                    /* handles not closed yet */
    int started, exited, eof_out, eof_err, killed_hard;
    int64_t exit_status;
    int term_signal;
    int timed_out;
    int finishing;
    int reported;                /* done was called (result or cancel) */
    int spawn_err;
    ss_backend_done_fn done;
    void *arg;
    int64_t t0_us;
    int desired, current, dry_run;
    char tail[SS_AUDIT_OUTPUT_MAX];  /* ring of the last bytes of stdout + stderr */
    size_t tail_pos, tail_len;
    char first_out[STDOUT_KEEP];
    size_t first_len;
    char **envp;
    char rbuf[4096];
};

struct exec_backend {
    ss_backend base;
    struct ss_backend_op *ops;   /* running, cancelled ones included */
    int destroying;
    void (*closed)(void *);
    void *closed_arg;
};

static void op_unlink(struct ss_backend_op *op)
{
    exec_backend *b = op->b;
    if (op->prev)
        op->prev->next = op->next;
    else
        b->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
}

static void maybe_destroyed(exec_backend *b)
{
    if (b->destroying && !b->ops) {
        void (*closed)(void *) = b->closed;
        void *arg = b->closed_arg;
        free(b);
        if (closed)
            closed(arg);
    }
}

static void op_free(struct ss_backend_op *op)
{
    exec_backend *b = op->b;
    op_unlink(op);
    for (char **e = op->envp; e && *e; e++)
        free(*e);
    free(op->envp);
    free(op);
    maybe_destroyed(b);
}

static void tail_add(struct ss_backend_op *op, const char *p, size_t n)
{
    size_t cap = sizeof op->tail - 1;
    for (size_t i = 0; i < n; i++) {
        op->tail[op->tail_pos] = p[i] ? p[i] : ' ';
        op->tail_pos = (op->tail_pos + 1) % cap;
        if (op->tail_len < cap)
            op->tail_len++;
    }
}

static void tail_copy(const struct ss_backend_op *op, char *out, size_t outlen)
{
    size_t cap = sizeof op->tail - 1;
    size_t start = (op->tail_pos + cap - op->tail_len) % cap, n = 0;
    for (size_t i = 0; i < op->tail_len && n + 1 < outlen; i++)
        out[n++] = op->tail[(start + i) % cap];
    out[n] = '\0';
}

/* The last non-empty line of the output, for error messages. */
static void last_line(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    size_t start = n;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    size_t len = n - start;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, s + start, len);
    out[len] = '\0';
}

static void report(struct ss_backend_op *op)
{
    if (op->reported)
        return;
    op->reported = 1;
    const ss_cluster_conf *cl = op->b->base.cluster;
    ss_backend_result r;
    ss_backend_result_init(&r);
    r.duration_us = ss_mono_us() - op->t0_us;
    r.has_exec = 1;
    r.exit_status = op->exited && op->term_signal == 0 ? (int)op->exit_status : -1;
    r.signal = op->term_signal;
    r.timed_out = op->timed_out;
    tail_copy(op, r.output, sizeof r.output);
    char line[160];
    last_line(r.output, line, sizeof line);
    const char *what = op->scale ? "command" : "size_command";
    const char *prog = op->scale ? cl->target.command[0] : cl->target.size_command[0];
    if (op->spawn_err) {
        ss_backend_fail(&r, -EIO, "%s %s could not start: %s", what, prog, uv_strerror(op->spawn_err));
    } else if (op->timed_out) {
        ss_backend_fail(&r, -ETIMEDOUT, "%s %s timed out after %d s (killed)", what, prog,
                        cl->target.timeout_s);
    } else if (op->term_signal) {
        ss_backend_fail(&r, -EIO, "%s %s was killed by signal %d", what, prog, op->term_signal);
    } else if (op->exit_status != 0) {
        ss_backend_fail(&r, -EIO, "%s %s exited with status %lld%s%s", what, prog,
                        (long long)op->exit_status, line[0] ? ": " : "", line);
    } else if (!op->scale) {
        char buf[STDOUT_KEEP + 1];
        memcpy(buf, op->first_out, op->first_len);
        buf[op->first_len] = '\0';
        char *end;
        long v = strtol(buf, &end, 10);
        while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
            end++;
        if (end == buf || *end || v < 0 || v > 1000000) {
            char q[96];
            ss_quote(q, sizeof q, buf, 64);
            ss_backend_fail(&r, -EIO, "size_command %s printed %s, not a worker count", prog, q);
        } else {
            r.replicas_before = r.replicas_after = (int)v;
        }
    } else {
        r.replicas_before = op->current;
        r.replicas_after = op->dry_run ? op->current : op->desired;
        snprintf(r.note, sizeof r.note, "%s exited 0%s", prog, op->dry_run ? " (SPARKSCALE_DRY_RUN=1)" : "");
    }
    op->done(op->arg, &r);
}

static void on_closed(uv_handle_t *h)
{
    struct ss_backend_op *op = h->data;
    if (--op->open > 0)
        return;
    report(op);
    op_free(op);
}

static void close_all(struct ss_backend_op *op)
{
    if (op->finishing)
        return;
    op->finishing = 1;
    uv_handle_t *hs[] = { (uv_handle_t *)&op->proc, (uv_handle_t *)&op->out, (uv_handle_t *)&op->err,
                          (uv_handle_t *)&op->timer };
    for (size_t i = 0; i < 4; i++)
        if (hs[i]->data == op && !uv_is_closing(hs[i]))
            uv_close(hs[i], on_closed);
}

static void maybe_finish(struct ss_backend_op *op)
{
    if (op->exited && op->eof_out && op->eof_err)
        close_all(op);
}

static void kill_group(struct ss_backend_op *op, int sig)
{
    if (op->started && !op->exited && op->proc.pid > 0)
        kill(-op->proc.pid, sig);   /* the whole process group: the command and its children */
}

static void on_timer(uv_timer_t *t)
{
    struct ss_backend_op *op = t->data;
    if (op->exited) {
        close_all(op);   /* output grace over */
        return;
    }
    if (!op->timed_out) {
        op->timed_out = 1;
        ss_warn("exec: %s: command timed out after %d s: killing it", op->b->base.cluster->name,
                op->b->base.cluster->target.timeout_s);
        kill_group(op, SIGTERM);
        uv_timer_start(&op->timer, on_timer, KILL_GRACE_MS, 0);
        return;
    }
    op->killed_hard = 1;
    kill_group(op, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct ss_backend_op *op = p->data;
    op->exited = 1;
    op->exit_status = status;
    op->term_signal = term_signal;
    /* A child it left running (a worker it started) may hold the pipes:
     * read what is there for a moment, then stop listening. Never kill
     * after a normal exit: such children are what the command is for. */
    uv_timer_start(&op->timer, on_timer, PIPE_GRACE_MS, 0);
    maybe_finish(op);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ss_backend_op *op = h->data;
    (void)suggested;
    buf->base = op->rbuf;
    buf->len = sizeof op->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ss_backend_op *op = s->data;
    if (n > 0) {
        tail_add(op, buf->base, (size_t)n);
        if (s == (uv_stream_t *)&op->out && op->first_len < STDOUT_KEEP) {
            size_t k = STDOUT_KEEP - op->first_len;
            if ((size_t)n < k)
                k = (size_t)n;
            memcpy(op->first_out + op->first_len, buf->base, k);
            op->first_len += k;
        }
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        if (s == (uv_stream_t *)&op->out)
            op->eof_out = 1;
        else
            op->eof_err = 1;
        maybe_finish(op);
    }
}

static char *env_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *env_str(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* Our environment without SPARKSCALE_* from outside, then ours. */
static char **build_env(const exec_backend *b, const ss_backend_call *call, int scale)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = calloc(n + 8, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    int ok = 1;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "SPARKSCALE_", 11) == 0)
            continue;
        if (!(env[k++] = strdup(*e)))
            ok = 0;
    }
    const char *name = b->base.cluster->name;
    ok &= !!(env[k++] = env_str("SPARKSCALE_CLUSTER=%s", name));
    ok &= !!(env[k++] = env_str("SPARKSCALE_ACTUATOR=%s", b->base.env->actuator_id));
    if (scale) {
        size_t hlen = 1, wlen = 1;
        for (size_t i = 0; i < call->nremove; i++) {
            hlen += strlen(call->remove[i].host) + 1;
            wlen += strlen(call->remove[i].id) + 1;
        }
        char *hosts = calloc(1, hlen), *ids = calloc(1, wlen);
        for (size_t i = 0; hosts && ids && i < call->nremove; i++) {
            /* Hosts once each: Spark decommissions and removes per host. */
            int seen = 0;
            for (size_t j = 0; j < i; j++)
                seen |= strcasecmp(call->remove[j].host, call->remove[i].host) == 0;
            if (!seen) {
                if (hosts[0])
                    strcat(hosts, ",");
                strcat(hosts, call->remove[i].host);
            }
            if (call->remove[i].id[0]) {
                if (ids[0])
                    strcat(ids, ",");
                strcat(ids, call->remove[i].id);
            }
        }
        ok &= !!(env[k++] = env_str("SPARKSCALE_CURRENT=%d", call->current));
        ok &= !!(env[k++] = env_str("SPARKSCALE_DESIRED=%d", call->desired));
        ok &= !!(env[k++] = env_str("SPARKSCALE_REMOVE_HOSTS=%s", hosts ? hosts : ""));
        ok &= !!(env[k++] = env_str("SPARKSCALE_REMOVE_WORKERS=%s", ids ? ids : ""));
        ok &= !!(env[k++] = env_str("SPARKSCALE_DRY_RUN=%d", call->dry_run ? 1 : 0));
        ok &= hosts && ids;
        free(hosts);
        free(ids);
    }
    env[k] = NULL;
    if (!ok) {
        for (size_t i = 0; i < k; i++)
            free(env[i]);
        free(env);
        return NULL;
    }
    return env;
}

/* Reports a spawn failure on the next loop turn (never inside the call). */
static void on_spawn_failed(uv_timer_t *t)
{
    struct ss_backend_op *op = t->data;
    op->exited = op->eof_out = op->eof_err = 1;
    close_all(op);
}

static int start(ss_backend *base, const ss_backend_call *call, int scale, ss_backend_done_fn done,
                 void *arg, ss_backend_op **out)
{
    exec_backend *b = (exec_backend *)base;
    const ss_target_conf *t = &base->cluster->target;
    char *const *argv = scale ? t->command : t->size_command;
    size_t argc = scale ? t->ncommand : t->nsize_command;
    if (b->destroying)
        return -ESHUTDOWN;
    struct ss_backend_op *op = calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->b = b;
    op->scale = scale;
    op->done = done;
    op->arg = arg;
    op->t0_us = ss_mono_us();
    if (call) {
        op->desired = call->desired;
        op->current = call->current;
        op->dry_run = call->dry_run;
    }
    op->envp = build_env(b, call, scale);
    char **args = calloc(argc + 1, sizeof *args);
    if (!op->envp || !args) {
        free(args);
        for (char **e = op->envp; e && *e; e++)
            free(*e);
        free(op->envp);
        free(op);
        return -ENOMEM;
    }
    for (size_t i = 0; i < argc; i++)
        args[i] = argv[i];
    op->next = b->ops;
    if (b->ops)
        b->ops->prev = op;
    b->ops = op;

    uv_loop_t *loop = base->env->loop;
    uv_timer_init(loop, &op->timer);
    op->timer.data = op;
    op->open = 1;
    uv_pipe_init(loop, &op->out, 0);
    uv_pipe_init(loop, &op->err, 0);
    op->out.data = op->err.data = op;
    op->open += 2;
    uv_stdio_container_t stdio[3] = {
        { .flags = UV_IGNORE },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&op->out },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&op->err },
    };
    uv_process_options_t po = {
        .exit_cb = on_exit_cb,
        .file = args[0],
        .args = args,
        .env = op->envp,
        .stdio_count = 3,
        .stdio = stdio,
        /* A process group of its own: a timeout kills its children too. */
        .flags = UV_PROCESS_DETACHED,
    };
    op->proc.data = op;
    int rc = uv_spawn(loop, &op->proc, &po);
    free(args);
    op->open++;   /* initialised even when the spawn failed: closed either way */
    if (rc < 0) {
        op->spawn_err = rc;
        uv_timer_start(&op->timer, on_spawn_failed, 0, 0);
    } else {
        op->started = 1;
        uv_read_start((uv_stream_t *)&op->out, on_alloc, on_read);
        uv_read_start((uv_stream_t *)&op->err, on_alloc, on_read);
        uv_timer_start(&op->timer, on_timer, (uint64_t)t->timeout_s * 1000, 0);
        ss_debug("exec: %s: started %s (pid %d)", base->cluster->name, argv[0], op->proc.pid);
    }
    if (out)
        *out = op;
    return 0;
}

static int exec_read_size(ss_backend *base, ss_backend_done_fn done, void *arg, ss_backend_op **op)
{
    if (base->cluster->target.nsize_command == 0)
        return -ENOTSUP;
    return start(base, NULL, 0, done, arg, op);
}

static int exec_scale(ss_backend *base, const ss_backend_call *call, ss_backend_done_fn done, void *arg,
                      ss_backend_op **op)
{
    return start(base, call, 1, done, arg, op);
}

static void exec_cancel(ss_backend_op *op)
{
    if (op->reported)
        return;
    op->reported = 1;
    ss_backend_result r;
    ss_backend_result_init(&r);
    ss_backend_fail(&r, -ECANCELED, "cancelled");
    /* A size read is harmless to stop; a resize runs to its end (a command
     * killed half-way could leave the cluster in between). */
    if (!op->scale)
        kill_group(op, SIGKILL);
    op->done(op->arg, &r);
}

static int exec_create(const ss_backend_env *env, const ss_cluster_conf *cluster, ss_backend **out,
                       char *err, size_t errlen)
{
    if (cluster->target.ncommand == 0 || !cluster->target.command[0][0]) {
        ss_errf(err, errlen, "cluster %s: kind exec needs a command", cluster->name);
        return -EINVAL;
    }
    exec_backend *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->base.ops = &ss_backend_exec;
    b->base.cluster = cluster;
    b->base.env = env;
    *out = &b->base;
    return 0;
}

static void exec_destroy(ss_backend *base, void (*closed)(void *), void *arg)
{
    exec_backend *b = (exec_backend *)base;
    b->destroying = 1;
    b->closed = closed;
    b->closed_arg = arg;
    for (struct ss_backend_op *op = b->ops, *n; op; op = n) {
        n = op->next;
        exec_cancel(op);
        /* Stop watching: a resize still running finishes on its own. */
        op->exited = op->eof_out = op->eof_err = 1;
        close_all(op);
    }
    maybe_destroyed(b);
}

const ss_backend_ops ss_backend_exec = {
    .name = "exec",
    .caps = SS_BACKEND_PICKS_VICTIMS,
    .create = exec_create,
    .read_size = exec_read_size,
    .scale = exec_scale,
    .cancel = exec_cancel,
    .destroy = exec_destroy,
};
