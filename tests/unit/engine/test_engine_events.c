/* Engine tests: external events (buffering, FIFO, timeouts), terminate, suspend and resume. */
#include <stdio.h>

#include "scenario.h"

static void approval(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *a = dt_await(ctx, dt_wait_event(ctx, "Approval"), NULL);
    const char *b = dt_await(ctx, dt_wait_event(ctx, "approval"), NULL);
    char out[128];
    snprintf(out, sizeof(out), "%s+%s", a, b);
    dt_orch_set_output(ctx, out, strlen(out));
}

/* Events raised before the wait are buffered and matched in arrival order, case-insensitively. */
static void buffered_before_wait(hw_world *w)
{
    hw_orchestrator(w, "approval", approval, NULL);
    hw_start(w, "approval", "a1", NULL);
    hw_raise(w, "a1", "APPROVAL", "first");
    hw_raise(w, "a1", "approval", "second");
    hw_run(w);
    assert_int_equal(hw_status(w, "a1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "a1"), "first+second");
}

static void test_event_buffered_before_wait(void **state)
{
    (void)state;
    run_scenario(buffered_before_wait);
}

static void event_across_episodes(hw_world *w)
{
    hw_orchestrator(w, "approval", approval, NULL);
    hw_start(w, "approval", "a2", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "a2"), ST_RUNNING);
    hw_raise(w, "a2", "other", "ignored");
    hw_raise(w, "a2", "approval", "yes");
    hw_run(w);
    assert_int_equal(hw_status(w, "a2"), ST_RUNNING);
    hw_raise(w, "a2", "approval", "again");
    hw_run(w);
    assert_string_equal(hw_output(w, "a2"), "yes+again");
}

static void test_event_after_wait(void **state)
{
    (void)state;
    run_scenario(event_across_episodes);
}

/* Waits with a 1 h timeout twice; reports what happened each time. */
static void with_timeout(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char out[256] = "";
    for (int i = 0; i < 2; i++) {
        dt_task *t = dt_wait_event_timeout(ctx, "answer", 3600 * 1000);
        dt_status st = dt_try_await(ctx, t);
        char part[64];
        snprintf(part, sizeof(part), "%s%s", i > 0 ? "," : "",
                 st == DT_OK ? (const char *)dt_task_output(t, NULL)
                             : (st == DT_ETIMEOUT ? "timeout" : "failed"));
        strcat(out, part);
    }
    dt_orch_set_output(ctx, out, strlen(out));
}

static void event_timeout(hw_world *w)
{
    hw_orchestrator(w, "timeout", with_timeout, NULL);
    hw_start(w, "timeout", "t1", NULL);
    hw_run_idle(w);
    hw_advance(w, 3600 * 1000); /* first wait times out */
    assert_int_equal(hw_status(w, "t1"), ST_RUNNING);
    hw_raise(w, "t1", "answer", "42"); /* consumed by the second wait, not the withdrawn one */
    hw_run(w);
    assert_int_equal(hw_status(w, "t1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "t1"), "timeout,42");
}

static void test_event_timeout_via_when_any(void **state)
{
    (void)state;
    run_scenario(event_timeout);
}

/* The when-any form written by hand: the event wins this time. */
static void race(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *tasks[] = {dt_wait_event(ctx, "go"), dt_sleep(ctx, 60000)};
    dt_task *any = dt_when_any(ctx, tasks, 2);
    dt_await(ctx, any, NULL);
    const char *out = dt_task_winner(any) == 0 ? "event" : "timer";
    dt_orch_set_output(ctx, out, strlen(out));
}

static void event_wins_race(hw_world *w)
{
    hw_orchestrator(w, "race", race, NULL);
    hw_start(w, "race", "r1", NULL);
    hw_run_idle(w);
    hw_advance(w, 59999);
    hw_raise(w, "r1", "go", NULL);
    hw_run(w);
    assert_string_equal(hw_output(w, "r1"), "event");
    hw_start(w, "race", "r2", NULL);
    hw_run(w);
    assert_string_equal(hw_output(w, "r2"), "timer");
}

static void test_when_any_event_or_timer(void **state)
{
    (void)state;
    run_scenario(event_wins_race);
}

/* ---- terminate ---- */

static void waits_forever(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "slow", NULL, 0, NULL), NULL);
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
    fail_msg("resumed after terminate");
}

static void terminate_while_waiting(hw_world *w)
{
    hw_orchestrator(w, "forever", waits_forever, NULL);
    hw_hold_activity(w, "slow");
    hw_start(w, "forever", "x1", NULL);
    hw_run(w);
    assert_int_equal(hw_held(w, "slow"), 1);
    hw_terminate(w, "x1", "\"operator said so\"");
    hw_run(w);
    assert_int_equal(hw_status(w, "x1"), ST_TERMINATED);
    assert_string_equal(hw_output(w, "x1"), "\"operator said so\"");
    /* A late result of the activity changes nothing. */
    hw_complete_held(w, "slow", 0, "late");
    hw_run(w);
    assert_int_equal(hw_status(w, "x1"), ST_TERMINATED);
    assert_int_equal(hw_cached(w), 0);
}

static void test_terminate_while_waiting(void **state)
{
    (void)state;
    run_scenario(terminate_while_waiting);
}

/* ---- suspend / resume ---- */

static void counter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char out[256] = "";
    for (int i = 0; i < 3; i++) {
        const char *v = dt_await(ctx, dt_wait_event(ctx, "tick"), NULL);
        strcat(out, v);
        dt_set_custom_status(ctx, out, strlen(out));
    }
    dt_orch_set_output(ctx, out, strlen(out));
}

static void suspend_buffers(hw_world *w)
{
    hw_orchestrator(w, "counter", counter, NULL);
    hw_start(w, "counter", "c1", NULL);
    hw_raise(w, "c1", "tick", "a");
    hw_run(w);
    assert_string_equal(hw_custom_status(w, "c1"), "a");
    hw_suspend(w, "c1");
    hw_raise(w, "c1", "tick", "b");
    hw_run(w);
    assert_true(hw_is_suspended(w, "c1"));
    assert_string_equal(hw_custom_status(w, "c1"), "a"); /* held back */
    hw_raise(w, "c1", "tick", "c");
    hw_run(w);
    assert_string_equal(hw_custom_status(w, "c1"), "a");
    hw_resume(w, "c1");
    hw_run(w);
    assert_false(hw_is_suspended(w, "c1"));
    assert_int_equal(hw_status(w, "c1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "c1"), "abc");
}

static void test_suspend_holds_events_until_resume(void **state)
{
    (void)state;
    run_scenario(suspend_buffers);
}

static void terminate_suspended(hw_world *w)
{
    hw_orchestrator(w, "counter", counter, NULL);
    hw_start(w, "counter", "c2", NULL);
    hw_suspend(w, "c2");
    hw_raise(w, "c2", "tick", "a");
    hw_terminate(w, "c2", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "c2"), ST_TERMINATED);
}

static void test_terminate_while_suspended(void **state)
{
    (void)state;
    run_scenario(terminate_suspended);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_buffered_before_wait),
        cmocka_unit_test(test_event_after_wait),
        cmocka_unit_test(test_event_timeout_via_when_any),
        cmocka_unit_test(test_when_any_event_or_timer),
        cmocka_unit_test(test_terminate_while_waiting),
        cmocka_unit_test(test_suspend_holds_events_until_resume),
        cmocka_unit_test(test_terminate_while_suspended),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
