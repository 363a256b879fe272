/*
 * The ready-made log sink: one line per call on stderr, stamped with the wall-clock time in
 * ISO-8601 UTC (log lines of several hosts and processes then sort and line up by time). It is
 * also what a worker without a log callback uses, for warnings and errors.
 */
#include <stdio.h>

#include "common_int.h"
#include "durabletask/worker.h"
#include "tracing/tracing_int.h"

void dt_worker_log_stderr(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char ts[DT__ISO8601_BUF];
    dt__iso8601_ms(dt__now_ms(), ts, sizeof(ts));
    /* One fprintf per line: stdio locks the stream for the call, so lines of concurrent worker
     * threads do not interleave. */
    char ids[80] = "";
    char tid[33], sid[17];
    if (dt_log_trace_ids(tid, sid)) {
        snprintf(ids, sizeof(ids), " trace_id=%s span_id=%s", tid, sid);
    }
    fprintf(stderr, "%s %s: %s: %s%s%s%s\n", ts, ctx != NULL ? (const char *)ctx : "durabletask",
            names[(unsigned)level & 3u], instance_id != NULL ? instance_id : "",
            instance_id != NULL ? ": " : "", msg, ids);
}

bool dt_log_trace_ids(char trace_id[33], char span_id[17])
{
    dt__trace_ctx c;
    if (!dt__trace_current(&c)) {
        return false;
    }
    dt__trace_hex(c.trace_id, sizeof(c.trace_id), trace_id);
    dt__trace_hex(c.span_id, sizeof(c.span_id), span_id);
    return true;
}
