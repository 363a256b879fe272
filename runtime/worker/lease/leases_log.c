/*
 * The lease keeper's log line (leases_keeper_int.h), under leases.c, leases_fleet.c and
 * leases_exclude.c: it passes the line to the owner's callback and calls nothing else.
 */
#include <stdarg.h>
#include <stdio.h>

#include "common_int.h"
#include "leases_keeper_int.h"

void dt__lk_log(dt__leases *l, dt_log_level lv, const char *fmt, ...)
{
    if (l->log == NULL) {
        return;
    }
    char text[400], msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    dt__errf(msg, sizeof(msg), "leases %s/%s: %s", l->hub, l->id, text);
    l->log(lv, NULL, msg, l->log_ctx);
}
