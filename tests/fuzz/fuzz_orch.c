/* The orchestrators of fuzz_orch.h. */
#include <string.h>

#include "fuzz_orch.h"

void fuzz_orch_main(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    dt_set_custom_status(ctx, "\"step 1\"", 8);
    dt_retry_policy retry = {.max_attempts = 2, .first_interval_ms = 500};
    dt_activity_options ao = {.task_queue = "q1", .retry = &retry};
    dt_task *calls[2] = {dt_call_activity(ctx, "greet", in, len, NULL),
                         dt_call_activity(ctx, "boom", "\"x\"", 3, &ao)};
    (void)dt_try_await(ctx, dt_when_all(ctx, calls, 2));
    (void)dt_try_await(ctx, dt_call_sub_orchestrator(ctx, FUZZ_ORCH_CHILD, "7", 1, NULL));
    dt_send_event(ctx, "other-instance", "ping", "{}", 2);
    const char *names[] = {"Content-Type"}, *values[] = {"application/json"};
    dt_publish(ctx, "app.events.done", names, values, 1, "{\"ok\":true}", 11);
    dt_await(ctx, dt_sleep(ctx, 1000), NULL);
    if (dt_try_await(ctx, dt_wait_event_timeout(ctx, "approve", 5000)) == DT_OK) {
        dt_set_custom_status(ctx, "\"approved\"", 10);
    }
    dt_task *race[2] = {dt_wait_event(ctx, "go"), dt_sleep(ctx, 2000)};
    dt_await(ctx, dt_when_any(ctx, race, 2), NULL);
    char guid[37];
    dt_new_guid(ctx, guid);
    if (in != NULL && len == 7 && memcmp(in, "\"again\"", 7) == 0) {
        dt_continue_as_new(ctx, "\"once more\"", 11, true);
    }
    dt_orch_set_output(ctx, guid, 36);
}

void fuzz_orch_child(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const void *in = dt_orch_input(ctx, &len);
    const void *out = dt_await(ctx, dt_call_activity(ctx, "greet", in, len, NULL), &len);
    dt_orch_set_output(ctx, out, len);
}
