/*
 * Fan-out/fan-in: an orchestration starts many activities at once and waits for all of them
 * (dt_when_all). The activities run in parallel on every worker of the fleet; the orchestration
 * is suspended, using no thread, until the last result is recorded.
 *
 *   orchestration fan_out_fan_in {"width":N} -> {"width":N,"sum":1²+2²+…+N²}
 *   activity      square "7"                 -> "49"
 *
 * Alone: dt-samples --width 1000 fan-out, or dtctl start fan_out_fan_in --input '{"width":1000}'.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

#define WIDTH_MAX 10000

static void square(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    long v = strtol(dt_activity_input(ctx, NULL), NULL, 10);
    sample_activity_output(ctx, "%ld", v * v);
}

static void fan_out_fan_in(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    long width = sjson_long(dt_orch_input(ctx, NULL), "width", 10);
    if (width < 1 || width > WIDTH_MAX) {
        dt_orch_fail(ctx, "sample.BadInput", "width must be 1..10000", NULL);
    }
    /* Orchestration memory comes from the instance's arena (freed with the instance). */
    dt_task **tasks = dt_orch_alloc(ctx, (size_t)width * sizeof(*tasks));
    if (tasks == NULL) {
        dt_orch_fail(ctx, "sample.OutOfMemory", "no memory for the tasks", NULL);
    }
    for (long i = 0; i < width; i++) { /* fan out: schedule them all ... */
        char in[24];
        int n = snprintf(in, sizeof(in), "%ld", i + 1);
        tasks[i] = dt_call_activity(ctx, "square", in, (size_t)n, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, tasks, (size_t)width), NULL); /* ... fan in: wait for all */
    long long sum = 0;
    for (long i = 0; i < width; i++) {
        sum += strtoll(dt_task_output(tasks[i], NULL), NULL, 10);
    }
    sample_orch_output(ctx, "{\"width\":%ld,\"sum\":%lld}", width, sum);
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "fan_out_fan_in", fan_out_fan_in, NULL);
    return st != DT_OK ? st : dt_worker_add_activity(w, "square", NULL, square, NULL);
}

static bool run(sample_run *r)
{
    long long n = r->width;
    char id[DT_CLIENT_ID_BUF], in[32], want[64];
    sample_id(r, "fan-out", 1, id);
    snprintf(in, sizeof(in), "{\"width\":%lld}", n);
    snprintf(want, sizeof(want), "{\"width\":%lld,\"sum\":%lld}", n, n * (n + 1) * (2 * n + 1) / 6);
    return sample_start(r, "fan_out_fan_in", id, in) && sample_check(r, id, want);
}

const sample sample_fan_out_fan_in = {
    .name = "fan-out",
    .title = "fan-out/fan-in: N activities in parallel, their results summed",
    .add = add,
    .run = run};
