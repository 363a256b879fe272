/*
 * What the engine writes into history beyond the events themselves: timestamps that never go
 * backwards whatever clock a result came from, and instance IDs of children started without
 * one that differ between the generations of a continue-as-new loop.
 */
#include "scenario.h"

#define T0 1700000000000LL /* the harness's clock at the start */

static void two_steps(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "a", NULL, 0, NULL), NULL);
    dt_await(ctx, dt_call_activity(ctx, "b", NULL, 0, NULL), NULL);
    char out[32];
    int n = snprintf(out, sizeof(out), "%lld", (long long)dt_now(ctx));
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* A TaskCompleted for `task` stamped by another host's clock at `at`. */
static void complete_at(hw_world *w, const char *id, int32_t task, int64_t at)
{
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = at / 1000;
    ts.nanos = (int32_t)(at % 1000) * 1000000;
    Dtpb__TaskCompletedEvent tc = DTPB__TASK_COMPLETED_EVENT__INIT;
    tc.task_scheduled_id = task;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    ev.event_id = -1;
    ev.timestamp = &ts;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
    ev.task_completed = &tc;
    hw_send_raw(w, id, &ev);
}

static int64_t ts_ms(const Dtpb__HistoryEvent *ev)
{
    return ev->timestamp == NULL ? 0
                                 : ev->timestamp->seconds * 1000 + ev->timestamp->nanos / 1000000;
}

static void clocks_apart(hw_world *w)
{
    hw_orchestrator(w, "two_steps", two_steps, NULL);
    hw_hold_activity(w, "a");
    hw_hold_activity(w, "b");
    hw_start(w, "two_steps", "t", NULL);
    hw_run_idle(w);
    /* Activity a ran on a host a minute ahead; the episode runs here a second later. */
    complete_at(w, "t", 0, T0 + 60000);
    hw_advance(w, 1000);
    /* Activity b ran on a host far behind. */
    complete_at(w, "t", 1, T0 - 3600000);
    hw_advance(w, 1000);
    assert_int_equal(hw_status(w, "t"), ST_COMPLETED);
    /* dt_now() of the last episode is not before the events already in history. */
    assert_string_equal(hw_output(w, "t"), "1700000060000");
    size_t n = hw_history_len(w, "t");
    assert_true(n >= 8);
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = ts_ms(hw_history_event(w, "t", i));
        if (t < prev) {
            fail_msg("event %zu of %zu is stamped %lld, before the previous one's %lld", i, n,
                     (long long)t, (long long)prev);
        }
        prev = t;
    }
    /* A result from a host ahead keeps its own (later) time. */
    const Dtpb__HistoryEvent *first_done = NULL;
    for (size_t i = 0; i < n && first_done == NULL; i++) {
        const Dtpb__HistoryEvent *ev = hw_history_event(w, "t", i);
        first_done =
            ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED ? ev : NULL;
    }
    assert_non_null(first_done);
    assert_int_equal(ts_ms(first_done), T0 + 60000);
}

static void test_timestamps_never_go_backwards(void **state)
{
    (void)state;
    run_scenario(clocks_apart);
}

static void kid(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char out[64];
    int n = snprintf(out, sizeof(out), "kid(%.*s)", (int)len, in != NULL ? in : "");
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Starts a child without an ID in each of two generations. */
static void looping_parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *gen = dt_orch_input(ctx, &len);
    const char *r = dt_await(ctx, dt_call_sub_orchestrator(ctx, "kid", gen, len, NULL), NULL);
    if (strcmp(gen, "1") == 0) {
        dt_continue_as_new(ctx, "2", 1, false);
    }
    dt_orch_set_output(ctx, r, strlen(r));
}

/* The child ID of the current execution of `id`, from its history. */
static const char *child_of(hw_world *w, const char *id, char *buf, size_t len)
{
    for (size_t i = 0; i < hw_history_len(w, id); i++) {
        const Dtpb__HistoryEvent *ev = hw_history_event(w, id, i);
        if (ev->event_type_case ==
            DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED) {
            snprintf(buf, len, "%s", ev->sub_orchestration_instance_created->instance_id);
            return buf;
        }
    }
    return NULL;
}

static void children_across_generations(hw_world *w)
{
    hw_orchestrator(w, "looping_parent", looping_parent, NULL);
    hw_orchestrator(w, "kid", kid, NULL);
    hw_start(w, "looping_parent", "g", "1");
    hw_run(w);
    assert_int_equal(hw_status(w, "g"), ST_COMPLETED);
    assert_int_equal(hw_executions(w, "g"), 2);
    assert_string_equal(hw_output(w, "g"), "kid(2)");
    /* Two children, both done, each with its own generation's input. */
    char second[300];
    assert_non_null(child_of(w, "g", second, sizeof(second)));
    assert_string_not_equal(second, "g:exec-g-1:0000");
    assert_int_equal(hw_status(w, "g:exec-g-1:0000"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "g:exec-g-1:0000"), "kid(1)");
    assert_int_equal(hw_status(w, second), ST_COMPLETED);
    assert_string_equal(hw_output(w, second), "kid(2)");
    assert_int_equal(strncmp(second, "g:", 2), 0);
    assert_int_equal(strcmp(second + strlen(second) - 5, ":0000"), 0);
}

static void test_children_of_generations_do_not_collide(void **state)
{
    (void)state;
    run_scenario(children_across_generations);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamps_never_go_backwards),
        cmocka_unit_test(test_children_of_generations_do_not_collide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
