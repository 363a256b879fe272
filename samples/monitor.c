/*
 * Monitor: an orchestration polls something at an interval until a condition holds. Each check
 * ends with continue-as-new, which restarts the orchestration with fresh input and an empty
 * history, so a monitor that runs for months keeps a history of one check.
 *
 *   orchestration job_monitor {"job":"nightly-build","check":1,"ready_after":3,
 *                              "interval_ms":200,"max_checks":10}
 *       -> {"job":"nightly-build","checks":3,"status":"done"}
 *   activity      get_job_status -> "running" | "done"
 *
 * get_job_status stands in for a call to a build server: the simulated job reports "done" on its
 * ready_after-th check. The custom status shows the last check while the monitor waits.
 *
 * Alone: dt-samples monitor, or dtctl start job_monitor --input '{"job":"j1","ready_after":5}'.
 */
#include <stdio.h>
#include <string.h>

#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

static void get_job_status(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    const char *in = dt_activity_input(ctx, NULL);
    bool done = sjson_long(in, "check", 1) >= sjson_long(in, "ready_after", 1);
    dt_activity_set_output(ctx, done ? "\"done\"" : "\"running\"", done ? 6 : 9);
}

static void job_monitor(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char job[64] = "job";
    sjson_str(in, "job", job, sizeof(job));
    long check = sjson_long(in, "check", 1);
    long ready_after = sjson_long(in, "ready_after", 3);
    long interval_ms = sjson_long(in, "interval_ms", 1000);
    long max_checks = sjson_long(in, "max_checks", 100);

    const char *status =
        dt_await(ctx, dt_call_activity(ctx, "get_job_status", in, len, NULL), NULL);
    if (strcmp(status, "\"done\"") == 0 || check >= max_checks) {
        sample_orch_output(ctx, "{\"job\":\"%s\",\"checks\":%ld,\"status\":%s}", job, check,
                           status);
        return;
    }
    char out[256]; /* job is at most 63 bytes: the rest are numbers */
    int n = snprintf(out, sizeof(out), "{\"check\":%ld,\"status\":%s}", check, status);
    dt_set_custom_status(ctx, out, (size_t)n);
    dt_await(ctx, dt_sleep(ctx, interval_ms), NULL); /* a durable timer */

    n = snprintf(out, sizeof(out),
                 "{\"job\":\"%s\",\"check\":%ld,\"ready_after\":%ld,\"interval_ms\":%ld,"
                 "\"max_checks\":%ld}",
                 job, check + 1, ready_after, interval_ms, max_checks);
    dt_continue_as_new(ctx, out, (size_t)n, false); /* does not return */
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "job_monitor", job_monitor, NULL);
    return st != DT_OK ? st
                       : dt_worker_add_activity(w, "get_job_status", NULL, get_job_status, NULL);
}

static bool run(sample_run *r)
{
    char id[DT_CLIENT_ID_BUF];
    sample_id(r, "monitor", 1, id);
    const char *in = "{\"job\":\"nightly-build\",\"check\":1,\"ready_after\":3,"
                     "\"interval_ms\":200,\"max_checks\":10}";
    return sample_start(r, "job_monitor", id, in) &&
           sample_check(r, id, "{\"job\":\"nightly-build\",\"checks\":3,\"status\":\"done\"}");
}

const sample sample_monitor = {
    .name = "monitor",
    .title = "a job polled with a durable timer and continue-as-new until it is done",
    .add = add,
    .run = run};
