/* Engine tests: activity chaining, failures as data, retry policies, timers, custom status. */
#include <stdio.h>

#include "scenario.h"

/* ---- chaining ---- */

static void hello_cities(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char out[512] = "";
    const char *cities[] = {"Tokyo", "Seattle", "London"};
    for (int i = 0; i < 3; i++) {
        const char *r =
            dt_await(ctx, dt_call_activity(ctx, "hello", cities[i], strlen(cities[i]), NULL), NULL);
        strncat(out, r, sizeof(out) - strlen(out) - 2);
        strcat(out, ";");
    }
    dt_orch_set_output(ctx, out, strlen(out));
}

static void chaining(hw_world *w)
{
    hw_orchestrator(w, "cities", hello_cities, NULL);
    hw_activity(w, "hello", act_wrap, "hello");
    hw_start(w, "cities", "i1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "i1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "i1"), "hello(Tokyo);hello(Seattle);hello(London);");
    assert_int_equal(hw_activity_calls(w, "hello"), 3);
    /* started + 3 x (OrchestratorStarted, completion, TaskScheduled) + ... + completed */
    const Dtpb__HistoryEvent *first = hw_history_event(w, "i1", 0);
    assert_int_equal(first->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED);
    size_t n = hw_history_len(w, "i1");
    const Dtpb__HistoryEvent *last = hw_history_event(w, "i1", n - 1);
    assert_int_equal(last->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED);
}

static void test_chaining(void **state)
{
    (void)state;
    run_scenario(chaining);
}

/* ---- input and output ---- */

static void echo(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len;
    const char *in = dt_orch_input(ctx, &len);
    assert_string_equal(dt_orch_name(ctx), "echo");
    assert_string_equal(dt_orch_instance_id(ctx), "e1");
    dt_orch_set_output(ctx, in, len);
}

static void input_output(hw_world *w)
{
    hw_orchestrator(w, "echo", echo, NULL);
    hw_start(w, "echo", "e1", "{\"x\":1}");
    hw_run(w);
    assert_int_equal(hw_status(w, "e1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "e1"), "{\"x\":1}");
}

static void test_input_output(void **state)
{
    (void)state;
    run_scenario(input_output);
}

/* ---- failures ---- */

static void catches_failure(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *t = dt_call_activity(ctx, "boom", "x", 1, NULL);
    assert_int_equal(dt_try_await(ctx, t), DT_ETASKFAILED);
    const dt_failure *f = dt_task_failure(t);
    char out[256];
    snprintf(out, sizeof(out), "%s|%s", f->type, f->message);
    dt_orch_set_output(ctx, out, strlen(out));
}

static void uncaught_failure(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "boom", "y", 1, NULL), NULL);
    fail_msg("dt_await returned after a failure");
}

static void failures(hw_world *w)
{
    hw_orchestrator(w, "catch", catches_failure, NULL);
    hw_orchestrator(w, "nocatch", uncaught_failure, NULL);
    hw_activity(w, "boom", act_boom, NULL);
    hw_start(w, "catch", "c1", NULL);
    hw_start(w, "nocatch", "n1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "c1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "c1"), "app.Boom|boom: x");
    assert_int_equal(hw_status(w, "n1"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "n1");
    assert_non_null(f);
    assert_string_equal(f->error_type, DT_FAILURE_TASK_FAILED);
    assert_non_null(strstr(f->error_message, "activity 'boom' failed: boom: y"));
    assert_non_null(f->inner_failure);
    assert_string_equal(f->inner_failure->error_type, "app.Boom");
    assert_string_equal(f->inner_failure->error_message, "boom: y");
}

static void test_failure_details(void **state)
{
    (void)state;
    run_scenario(failures);
}

static void explicit_fail(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_failure inner = {.type = "app.Inner", .message = "root cause"};
    dt_orch_fail(ctx, "app.Outer", "it went wrong", &inner);
}

static void explicit_failure(hw_world *w)
{
    hw_orchestrator(w, "fail", explicit_fail, NULL);
    hw_start(w, "fail", "f1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "f1"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "f1");
    assert_string_equal(f->error_type, "app.Outer");
    assert_string_equal(f->error_message, "it went wrong");
    assert_string_equal(f->inner_failure->error_type, "app.Inner");
    assert_string_equal(f->inner_failure->error_message, "root cause");
}

static void test_explicit_failure(void **state)
{
    (void)state;
    run_scenario(explicit_failure);
}

/* ---- retries ---- */

/* Fails until called for the third time on this world (the count lives in the world's calls). */
static void act_flaky(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)input;
    (void)ud;
    if (hw_activity_calls(w, "flaky") < 3) {
        r->failed = true;
        r->error_type = test_strdup("app.Flaky");
        r->error_message = test_strdup("not yet");
        return;
    }
    r->output = test_strdup("finally");
}

static void with_retry(dt_orch_ctx *ctx, void *ud)
{
    const char *name = ud;
    dt_retry_policy p = {.max_attempts = 3, .first_interval_ms = 1000, .backoff_coefficient = 2.0};
    dt_activity_options o = {.retry = &p};
    dt_task *t = dt_call_activity(ctx, name, NULL, 0, &o);
    if (dt_try_await(ctx, t) != DT_OK) {
        dt_orch_set_output(ctx, dt_task_failure(t)->message, strlen(dt_task_failure(t)->message));
        return;
    }
    const char *out = dt_task_output(t, NULL);
    dt_orch_set_output(ctx, out, strlen(out));
}

static void retries_succeed(hw_world *w)
{
    hw_orchestrator(w, "retry", with_retry, "flaky");
    hw_activity(w, "flaky", act_flaky, NULL);
    int64_t t0 = hw_now(w);
    hw_start(w, "retry", "r1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "r1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "r1"), "finally");
    assert_int_equal(hw_activity_calls(w, "flaky"), 3);
    /* Backoff: 1 s then 2 s, on durable timers. */
    assert_int_equal(hw_now(w) - t0, 3000);
}

static void test_retry_succeeds(void **state)
{
    (void)state;
    run_scenario(retries_succeed);
}

static void retries_exhausted(hw_world *w)
{
    hw_orchestrator(w, "retry", with_retry, "boom");
    hw_activity(w, "boom", act_boom, NULL);
    hw_start(w, "retry", "r2", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "r2"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "r2"), "boom: ");
    assert_int_equal(hw_activity_calls(w, "boom"), 3);
}

static void test_retry_exhausted(void **state)
{
    (void)state;
    run_scenario(retries_exhausted);
}

static void act_fatal(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    act_boom(w, input, r, ud);
    r->non_retriable = true;
}

static void retry_limits(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    /* Non-retriable failure: one attempt only. */
    dt_retry_policy p = {.max_attempts = 5, .first_interval_ms = 10};
    dt_activity_options o = {.retry = &p};
    assert_int_equal(dt_try_await(ctx, dt_call_activity(ctx, "fatal", NULL, 0, &o)),
                     DT_ETASKFAILED);
    /* Retry timeout: 1 s, 2 s, 4 s ... capped at 3 s, and the timeout of 5 s stops it after the
     * attempts at +0, +1 s, +3 s (the next would start at +6 s). */
    dt_retry_policy q = {.max_attempts = 10,
                         .first_interval_ms = 1000,
                         .backoff_coefficient = 2.0,
                         .max_interval_ms = 3000,
                         .retry_timeout_ms = 5000};
    dt_activity_options o2 = {.retry = &q};
    assert_int_equal(dt_try_await(ctx, dt_call_activity(ctx, "boom", NULL, 0, &o2)),
                     DT_ETASKFAILED);
}

static void retry_policy_limits(hw_world *w)
{
    hw_orchestrator(w, "limits", retry_limits, NULL);
    hw_activity(w, "fatal", act_fatal, NULL);
    hw_activity(w, "boom", act_boom, NULL);
    int64_t t0 = hw_now(w);
    hw_start(w, "limits", "l1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "l1"), ST_COMPLETED);
    assert_int_equal(hw_activity_calls(w, "fatal"), 1);
    assert_int_equal(hw_activity_calls(w, "boom"), 3);
    assert_int_equal(hw_now(w) - t0, 3000);
}

static void test_retry_policy_limits(void **state)
{
    (void)state;
    run_scenario(retry_policy_limits);
}

/* "typed": fails as app.Transient twice, then as app.Fatal. */
static void act_typed(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)input;
    (void)ud;
    r->failed = true;
    r->error_type = test_strdup(hw_activity_calls(w, "typed") <= 2 ? "app.Transient" : "app.Fatal");
    r->error_message = test_strdup("no");
}

/* Retries only transient failures; records the attempts it was asked about. */
static bool only_transient(const dt_failure *f, int attempt, void *ctx)
{
    int *asked = ctx;
    *asked = *asked * 10 + attempt;
    return strcmp(f->type, "app.Transient") == 0;
}

static int predicate_asked;

static void retry_predicate(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_retry_policy p = {.max_attempts = 10,
                         .first_interval_ms = 100,
                         .should_retry = only_transient,
                         .should_retry_ctx = &predicate_asked};
    dt_activity_options o = {.retry = &p};
    dt_task *t = dt_call_activity(ctx, "typed", NULL, 0, &o);
    assert_int_equal(dt_try_await(ctx, t), DT_ETASKFAILED);
    const char *type = dt_task_failure(t)->type;
    dt_orch_set_output(ctx, type, strlen(type));
}

static void retry_predicate_decides(hw_world *w)
{
    hw_orchestrator(w, "pred", retry_predicate, NULL);
    hw_activity(w, "typed", act_typed, NULL);
    predicate_asked = 0;
    hw_start(w, "pred", "p1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "p1"), ST_COMPLETED);
    /* Two transient failures retried, the fatal third one not: three attempts in all, and the
     * task fails with the failure the predicate saw last. */
    assert_int_equal(hw_activity_calls(w, "typed"), 3);
    assert_string_equal(hw_output(w, "p1"), "app.Fatal");
    /* Asked after attempts 1, 2 and 3 (a replay asks again in the same order: the digits
     * repeat a prefix, never out of order). */
    assert_true(predicate_asked % 1000 == 123);
}

static void test_retry_predicate(void **state)
{
    (void)state;
    run_scenario(retry_predicate_decides);
}

/* dt_orch_is_replaying, counted per code position (0..3): how often each ran as new code and
 * how often again while history was re-applied. */
static int fresh_runs[4], replayed_runs[4];
static bool saw_replay; /* some world rebuilt the instance from history */

static void note_position(dt_orch_ctx *ctx, int pos)
{
    if (dt_orch_is_replaying(ctx)) {
        replayed_runs[pos]++;
    } else {
        fresh_runs[pos]++;
    }
}

static void replay_aware(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    for (int i = 0; i < 3; i++) {
        note_position(ctx, i);
        dt_await(ctx, dt_call_activity(ctx, "hello", "x", 1, NULL), NULL);
    }
    note_position(ctx, 3);
    dt_orch_set_output(ctx, "ok", 2);
}

static void replaying_is_truthful(hw_world *w)
{
    memset(fresh_runs, 0, sizeof(fresh_runs));
    memset(replayed_runs, 0, sizeof(replayed_runs));
    hw_orchestrator(w, "aware", replay_aware, NULL);
    hw_activity(w, "hello", act_wrap, "hello");
    hw_start(w, "aware", "ra1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "ra1"), ST_COMPLETED);
    /* Every position ran exactly once as new code, whether the instance stayed in memory
     * between episodes (cache hit: nothing re-runs) or was rebuilt from history each time. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fresh_runs[i], 1);
    }
    /* Rebuilt each time: position i re-ran in each of the 3 - i later episodes it preceded. */
    if (replayed_runs[0] != 0) {
        saw_replay = true;
        for (int i = 0; i < 4; i++) {
            assert_int_equal(replayed_runs[i], 3 - i);
        }
    }
}

static void test_is_replaying(void **state)
{
    (void)state;
    saw_replay = false;
    run_scenario(replaying_is_truthful);
    assert_true(saw_replay); /* the cache-less world did replay */
}

static void bad_policy(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_retry_policy p = {.max_attempts = 0};
    dt_activity_options o = {.retry = &p};
    dt_call_activity(ctx, "x", NULL, 0, &o);
}

static void invalid_policy(hw_world *w)
{
    hw_orchestrator(w, "bad", bad_policy, NULL);
    hw_start(w, "bad", "b1", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "b1"), ST_FAILED);
    assert_string_equal(hw_failure(w, "b1")->error_type, DT_FAILURE_MISUSE);
}

static void test_invalid_retry_policy(void **state)
{
    (void)state;
    run_scenario(invalid_policy);
}

/* ---- timers ---- */

static void timers(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    int64_t start = dt_now(ctx);
    dt_task *late = dt_create_timer(ctx, start + 5000);
    dt_task *early = dt_sleep(ctx, 2000);
    dt_task *both[] = {late, early};
    dt_task *any = dt_when_any(ctx, both, 2);
    dt_await(ctx, any, NULL);
    char out[128];
    int first = dt_task_winner(any);
    int64_t t1 = dt_now(ctx) - start;
    dt_await(ctx, late, NULL);
    snprintf(out, sizeof(out), "winner=%d at=%lld then=%lld", first, (long long)t1,
             (long long)(dt_now(ctx) - start));
    dt_orch_set_output(ctx, out, strlen(out));
}

static void timer_ordering(hw_world *w)
{
    hw_orchestrator(w, "timers", timers, NULL);
    hw_start(w, "timers", "t1", NULL);
    hw_run_idle(w);
    assert_int_equal(hw_status(w, "t1"), ST_RUNNING);
    hw_advance(w, 1999);
    assert_int_equal(hw_status(w, "t1"), ST_RUNNING);
    hw_run(w);
    assert_int_equal(hw_status(w, "t1"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "t1"), "winner=1 at=2000 then=5000");
}

static void test_timer_ordering(void **state)
{
    (void)state;
    run_scenario(timer_ordering);
}

/* A history's clock is input: an ExecutionStarted stamped at the end of time must not make a
 * sleep's fire time overflow (found by fuzz_engine: signed overflow in dt_sleep). The timer is
 * held at the largest time instead, so the instance waits rather than firing at once. */
static void sleep_once(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_sleep(ctx, 1000), NULL);
    dt_orch_set_output(ctx, "\"woke\"", 6);
}

static void sleep_at_end_of_time(hw_world *w)
{
    hw_orchestrator(w, "sleep_once", sleep_once, NULL);
    hw_advance(w, INT64_MAX - 500 - hw_now(w));
    hw_start(w, "sleep_once", "late", NULL);
    hw_run_idle(w);
    assert_int_equal(hw_status(w, "late"), ST_RUNNING);
    hw_advance(w, 400);
    assert_int_equal(hw_status(w, "late"), ST_RUNNING);
}

static void test_sleep_at_end_of_time(void **state)
{
    (void)state;
    run_scenario(sleep_at_end_of_time);
}

/* ---- custom status ---- */

static void with_status(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_set_custom_status(ctx, "step1", 5);
    dt_await(ctx, dt_wait_event(ctx, "go"), NULL);
    dt_set_custom_status(ctx, "step2", 5);
    dt_await(ctx, dt_wait_event(ctx, "go"), NULL);
}

static void custom_status(hw_world *w)
{
    hw_orchestrator(w, "status", with_status, NULL);
    hw_start(w, "status", "s1", NULL);
    hw_run(w);
    assert_string_equal(hw_custom_status(w, "s1"), "step1");
    hw_raise(w, "s1", "go", NULL);
    hw_run(w);
    assert_string_equal(hw_custom_status(w, "s1"), "step2");
    hw_raise(w, "s1", "go", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "s1"), ST_COMPLETED);
}

static void test_custom_status(void **state)
{
    (void)state;
    run_scenario(custom_status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_input_output),
        cmocka_unit_test(test_failure_details),
        cmocka_unit_test(test_explicit_failure),
        cmocka_unit_test(test_retry_succeeds),
        cmocka_unit_test(test_retry_exhausted),
        cmocka_unit_test(test_retry_policy_limits),
        cmocka_unit_test(test_retry_predicate),
        cmocka_unit_test(test_is_replaying),
        cmocka_unit_test(test_invalid_retry_policy),
        cmocka_unit_test(test_timer_ordering),
        cmocka_unit_test(test_sleep_at_end_of_time),
        cmocka_unit_test(test_custom_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
