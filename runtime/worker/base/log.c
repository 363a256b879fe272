/*
 * The worker's log: every part of the worker logs through dt__worker_log, which calls the user's
 * sink (dt_worker_options.log) or, without one, writes warnings and errors to stderr. A leaf: it
 * calls nothing of the worker.
 */
#include <stdarg.h>
#include <stdio.h>

#include "worker_int.h"

void dt__worker_log(dt_worker *w, dt_log_level level, const char *instance_id, const char *fmt, ...)
{
    if (w->opt.log == NULL && level < DT_LOG_WARN) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->opt.log == NULL) { /* the default: problems are never silent */
        dt_worker_log_stderr(level, instance_id, msg, NULL);
        return;
    }
    w->opt.log(level, instance_id, msg, w->opt.log_ctx);
}
