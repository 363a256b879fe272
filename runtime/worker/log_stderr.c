/*
 * The ready-made log sink: one line per call on stderr, stamped with the wall-clock time in
 * ISO-8601 UTC (log lines of several hosts and processes then sort and line up by time). It is
 * also what a worker without a log callback uses, for warnings and errors.
 */
#include <stdio.h>

#include "common_int.h"
#include "durabletask/worker.h"

void dt_worker_log_stderr(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char ts[DT__ISO8601_BUF];
    dt__iso8601_ms(dt__now_ms(), ts, sizeof(ts));
    /* One fprintf per line: stdio locks the stream for the call, so lines of concurrent worker
     * threads do not interleave. */
    fprintf(stderr, "%s %s: %s: %s%s%s\n", ts, ctx != NULL ? (const char *)ctx : "durabletask",
            names[(unsigned)level & 3u], instance_id != NULL ? instance_id : "",
            instance_id != NULL ? ": " : "", msg);
}
