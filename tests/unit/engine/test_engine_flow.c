/* Engine tests: fan-out/fan-in, sub-orchestrations, continue-as-new, events between instances,
 * durable publish, unknown orchestrators and the history bound. */
#include <stdio.h>

#include "scenario.h"

/* ---- fan-out / fan-in ---- */

static void act_square(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)w;
    (void)ud;
    long v = strtol(input, NULL, 10);
    r->output = malloc(32);
    snprintf(r->output, 32, "%ld", v * v);
}

static void fan_out(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long n = strtol(dt_orch_input(ctx, NULL), NULL, 10);
    dt_task **tasks = dt_orch_alloc(ctx, (size_t)n * sizeof(*tasks));
    for (long i = 0; i < n; i++) {
        char in[32];
        int len = snprintf(in, sizeof(in), "%ld", i);
        tasks[i] = dt_call_activity(ctx, "square", in, (size_t)len, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, tasks, (size_t)n), NULL);
    long sum = 0;
    for (long i = 0; i < n; i++) {
        sum += strtol(dt_task_output(tasks[i], NULL), NULL, 10);
    }
    char out[32];
    int len = snprintf(out, sizeof(out), "%ld", sum);
    dt_orch_set_output(ctx, out, (size_t)len);
}

static void fan_out_small(hw_world *w)
{
    hw_orchestrator(w, "fan", fan_out, NULL);
    hw_activity(w, "square", act_square, NULL);
    hw_start(w, "fan", "f1", "10");
    hw_start(w, "fan", "f0", "0");
    hw_run(w);
    assert_string_equal(hw_output(w, "f1"), "285");
    assert_string_equal(hw_output(w, "f0"), "0");
}

static void test_fan_out_fan_in(void **state)
{
    (void)state;
    run_scenario(fan_out_small);
}

/* Completes the held fan-out in chunks, so results arrive over many episodes. */
static void fan_out_10k(hw_world *w)
{
    hw_orchestrator(w, "fan", fan_out, NULL);
    hw_hold_activity(w, "square");
    hw_start(w, "fan", "big", "10000");
    hw_run(w);
    assert_int_equal(hw_held(w, "square"), 10000);
    for (int chunk = 0; chunk < 10; chunk++) {
        for (int k = 0; k < 1000; k++) {
            char out[32];
            long v = strtol(hw_held_input(w, "square", 0), NULL, 10);
            snprintf(out, sizeof(out), "%ld", v * v);
            hw_complete_held(w, "square", 0, out);
        }
        hw_run(w);
        assert_int_equal(hw_status(w, "big"), chunk < 9 ? ST_RUNNING : ST_COMPLETED);
    }
    assert_int_equal(hw_held(w, "square"), 0);
    assert_string_equal(hw_output(w, "big"), "333283335000");
}

static void test_fan_out_10000(void **state)
{
    (void)state;
    run_scenario(fan_out_10k);
}

static void any_failure(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *t[] = {dt_call_activity(ctx, "square", "3", 1, NULL),
                    dt_call_activity(ctx, "boom", "z", 1, NULL)};
    dt_task *all = dt_when_all(ctx, t, 2);
    assert_int_equal(dt_try_await(ctx, all), DT_ETASKFAILED);
    assert_true(dt_task_is_done(t[0]) && dt_task_is_done(t[1]));
    const char *out = dt_task_failure(all)->type;
    dt_orch_set_output(ctx, out, strlen(out));
}

static void when_all_failure(hw_world *w)
{
    hw_orchestrator(w, "anyfail", any_failure, NULL);
    hw_activity(w, "square", act_square, NULL);
    hw_activity(w, "boom", act_boom, NULL);
    hw_start(w, "anyfail", "af", NULL);
    hw_run(w);
    assert_string_equal(hw_output(w, "af"), "app.Boom");
}

static void test_when_all_reports_failure(void **state)
{
    (void)state;
    run_scenario(when_all_failure);
}

/* ---- sub-orchestrations ---- */

static void child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *in = dt_orch_input(ctx, NULL);
    if (strcmp(in, "bad") == 0) {
        dt_orch_fail(ctx, "app.ChildFailed", "child rejected its input", NULL);
    }
    const char *r = dt_await(ctx, dt_call_activity(ctx, "square", in, strlen(in), NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static void parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *a = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", "7", 1, NULL), NULL);
    dt_task *b = dt_call_sub_orchestrator(ctx, "child", "bad", 3, NULL);
    char out[256];
    if (dt_try_await(ctx, b) == DT_ETASKFAILED) {
        snprintf(out, sizeof(out), "%s;%s:%s", a, dt_task_failure(b)->type,
                 dt_task_failure(b)->message);
    } else {
        snprintf(out, sizeof(out), "unexpected");
    }
    dt_orch_set_output(ctx, out, strlen(out));
}

static void parent_uncaught(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_sub_orch_options o = {.instance_id = "kid"};
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", "bad", 3, &o), NULL);
}

static void sub_orchestrations(hw_world *w)
{
    hw_orchestrator(w, "parent", parent, NULL);
    hw_orchestrator(w, "parent2", parent_uncaught, NULL);
    hw_orchestrator(w, "child", child, NULL);
    hw_activity(w, "square", act_square, NULL);
    hw_start(w, "parent", "p", NULL);
    hw_start(w, "parent2", "p2", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "p"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "p"), "49;app.ChildFailed:child rejected its input");
    /* Children get deterministic IDs "<parent>:<execution>:<task number>". */
    assert_int_equal(hw_status(w, "p:exec-p-1:0000"), ST_COMPLETED);
    assert_int_equal(hw_status(w, "p:exec-p-1:0001"), ST_FAILED);
    assert_int_equal(hw_status(w, "p2"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "p2");
    assert_string_equal(f->error_type, DT_FAILURE_SUB_ORCH_FAILED);
    assert_string_equal(f->inner_failure->error_type, "app.ChildFailed");
    assert_true(hw_exists(w, "kid"));
}

static void test_sub_orchestrations(void **state)
{
    (void)state;
    run_scenario(sub_orchestrations);
}

static void flaky_child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *r = dt_await(ctx, dt_call_activity(ctx, "flaky", NULL, 0, NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static void act_flaky2(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)input;
    (void)ud;
    if (hw_activity_calls(w, "flaky") < 2) {
        r->failed = true;
        r->error_type = test_strdup("app.Flaky");
        r->error_message = test_strdup("try again");
        return;
    }
    r->output = test_strdup("ok");
}

static void parent_retry(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_retry_policy p = {.max_attempts = 3, .first_interval_ms = 500};
    dt_sub_orch_options o = {.retry = &p};
    const char *r = dt_await(ctx, dt_call_sub_orchestrator(ctx, "flaky_child", NULL, 0, &o), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static void sub_orch_retry(hw_world *w)
{
    hw_orchestrator(w, "parent", parent_retry, NULL);
    hw_orchestrator(w, "flaky_child", flaky_child, NULL);
    hw_activity(w, "flaky", act_flaky2, NULL);
    hw_start(w, "parent", "pr", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "pr"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "pr"), "ok");
    assert_int_equal(hw_status(w, "pr:exec-pr-1:0000"), ST_FAILED); /* attempt 1 */
    /* attempt 2 (task 1 was the timer) */
    assert_int_equal(hw_status(w, "pr:exec-pr-1:0002"), ST_COMPLETED);
}

static void test_sub_orchestration_retry(void **state)
{
    (void)state;
    run_scenario(sub_orch_retry);
}

/* ---- continue-as-new ---- */

static void countdown(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long n = strtol(dt_orch_input(ctx, NULL), NULL, 10);
    if (n == 0) {
        dt_orch_set_output(ctx, "done", 4);
        return;
    }
    dt_await(ctx, dt_sleep(ctx, 1000), NULL);
    char next[32];
    int len = snprintf(next, sizeof(next), "%ld", n - 1);
    dt_continue_as_new(ctx, next, (size_t)len, false);
}

static void continue_as_new_n(hw_world *w)
{
    hw_orchestrator(w, "countdown", countdown, NULL);
    hw_start(w, "countdown", "cd", "25");
    hw_run(w);
    assert_int_equal(hw_status(w, "cd"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "cd"), "done");
    assert_int_equal(hw_executions(w, "cd"), 26);
    /* History holds only the last execution. */
    assert_true(hw_history_len(w, "cd") <= 4);
}

static void test_continue_as_new_many_times(void **state)
{
    (void)state;
    run_scenario(continue_as_new_n);
}

static void collector(dt_orch_ctx *ctx, void *ud)
{
    bool keep = ud != NULL;
    size_t len;
    const char *in = dt_orch_input(ctx, &len);
    if (len >= 3) {
        dt_orch_set_output(ctx, in, len);
        return;
    }
    const char *v = dt_await(ctx, dt_wait_event(ctx, "item"), NULL);
    char next[64];
    int n = snprintf(next, sizeof(next), "%s%s", in, v);
    dt_continue_as_new(ctx, next, (size_t)n, keep);
}

static void continue_as_new_events(hw_world *w)
{
    hw_orchestrator(w, "keep", collector, (void *)1);
    hw_orchestrator(w, "drop", collector, NULL);
    hw_start(w, "keep", "k", "");
    hw_start(w, "drop", "d", "");
    for (int i = 0; i < 3; i++) {
        const char *v[] = {"a", "b", "c"};
        hw_raise(w, "k", "item", v[i]);
        hw_raise(w, "d", "item", v[i]);
    }
    hw_run(w);
    assert_string_equal(hw_output(w, "k"), "abc");
    assert_int_equal(hw_status(w, "d"), ST_RUNNING); /* b and c were dropped */
    hw_raise(w, "d", "item", "x");
    hw_run(w);
    hw_raise(w, "d", "item", "y");
    hw_run(w);
    assert_string_equal(hw_output(w, "d"), "axy");
}

static void test_continue_as_new_carries_events(void **state)
{
    (void)state;
    run_scenario(continue_as_new_events);
}

/* ---- events between instances and durable publish ---- */

static void sender(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_send_event(ctx, "receiver", "ping", "hello", 5);
    const char *names[] = {"X-Kind"};
    const char *values[] = {"done"};
    dt_publish(ctx, "orders.done", names, values, 1, "order-1", 7);
}

static void receiver(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *v = dt_await(ctx, dt_wait_event(ctx, "ping"), NULL);
    dt_orch_set_output(ctx, v, strlen(v));
}

static void send_and_publish(hw_world *w)
{
    hw_orchestrator(w, "sender", sender, NULL);
    hw_orchestrator(w, "receiver", receiver, NULL);
    hw_start(w, "receiver", "receiver", NULL);
    hw_start(w, "sender", "sender", NULL);
    hw_run(w);
    assert_string_equal(hw_output(w, "receiver"), "hello");
    assert_int_equal(hw_status(w, "sender"), ST_COMPLETED);
    assert_int_equal(hw_published(w), 1);
    assert_string_equal(hw_published_at(w, 0), "orders.done|order-1");
}

static void test_send_event_and_publish(void **state)
{
    (void)state;
    run_scenario(send_and_publish);
}

/* ---- bad input ---- */

static void bad_header(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *names[] = {"X-Empty"};
    const char *values[] = {""};
    dt_publish(ctx, "orders.done", names, values, 1, "x", 1);
}

static void publish_bad_header(hw_world *w)
{
    hw_orchestrator(w, "bad", bad_header, NULL);
    hw_start(w, "bad", "bh", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "bh"), ST_FAILED);
    assert_string_equal(hw_failure(w, "bh")->error_type, DT_FAILURE_MISUSE);
    assert_int_equal(hw_published(w), 0);
}

static void test_publish_rejects_bad_headers(void **state)
{
    (void)state;
    run_scenario(publish_bad_header);
}

static void unknown_orchestrator(hw_world *w)
{
    hw_start(w, "nobody", "u1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "u1"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "u1");
    assert_string_equal(f->error_type, DT_FAILURE_UNKNOWN_ORCHESTRATOR);
    assert_non_null(strstr(f->error_message, "'nobody'"));
}

static void test_unknown_orchestrator(void **state)
{
    (void)state;
    run_scenario(unknown_orchestrator);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fan_out_fan_in),
        cmocka_unit_test(test_fan_out_10000),
        cmocka_unit_test(test_when_all_reports_failure),
        cmocka_unit_test(test_sub_orchestrations),
        cmocka_unit_test(test_sub_orchestration_retry),
        cmocka_unit_test(test_continue_as_new_many_times),
        cmocka_unit_test(test_continue_as_new_carries_events),
        cmocka_unit_test(test_send_event_and_publish),
        cmocka_unit_test(test_unknown_orchestrator),
        cmocka_unit_test(test_publish_rejects_bad_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
