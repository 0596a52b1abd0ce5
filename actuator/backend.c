/* backend.c: which backend serves which target kind, and shared helpers. */
#include "actuator/backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const ss_backend_ops *ss_backend_for(ss_target_kind kind)
{
    switch (kind) {
    case SS_TARGET_EXEC:
        return &ss_backend_exec;
    case SS_TARGET_OSHINKO:
        return &ss_backend_oshinko;
    case SS_TARGET_KUBERNETES:
        return &ss_backend_kubernetes;   /* k8s.c */
    default:
        return NULL;
    }
}

void ss_backend_result_init(ss_backend_result *r)
{
    memset(r, 0, sizeof *r);
    r->replicas_before = -1;
    r->replicas_after = -1;
    r->exit_status = -1;
}

void ss_backend_fail(ss_backend_result *r, int status, const char *fmt, ...)
{
    r->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
}
