/* Engine tests: non-determinism detection, deterministic time and GUIDs, replay-silent logging,
 * and the cache (hit, eviction, disabled). */
#include <stdio.h>

#include "scenario.h"

/* Which activity the "changing" orchestrator calls first: flipped between episodes to simulate
 * a deployment that changed the code under a running instance. */
static const char *first_activity = "alpha";

static void changing(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, first_activity, NULL, 0, NULL), NULL);
    dt_await(ctx, dt_wait_event(ctx, "next"), NULL);
    dt_await(ctx, dt_call_activity(ctx, "gamma", NULL, 0, NULL), NULL);
}

static void test_nondeterminism_detected(void **state)
{
    (void)state;
    dt_test_alloc_install();
    long before = dt_test_alloc_outstanding();
    hw_world *w = hw_create(0); /* no cache: every episode replays the code */
    hw_orchestrator(w, "changing", changing, NULL);
    hw_activity(w, "alpha", act_wrap, NULL);
    hw_activity(w, "beta", act_wrap, NULL);
    hw_activity(w, "gamma", act_wrap, NULL);
    first_activity = "alpha";
    hw_start(w, "changing", "nd", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "nd"), ST_RUNNING);
    first_activity = "beta";
    hw_raise(w, "nd", "next", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "nd"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "nd");
    assert_string_equal(f->error_type, DT_FAILURE_NONDETERMINISM);
    assert_non_null(strstr(f->error_message, "expected activity 'alpha'"));
    assert_non_null(strstr(f->error_message, "found activity 'beta'"));
    /* Nothing was guessed: gamma never ran. */
    assert_int_equal(hw_activity_calls(w, "gamma"), 0);
    hw_destroy(w);
    assert_int_equal(dt_test_alloc_outstanding(), before);
    dt_set_allocator(NULL);
    first_activity = "alpha";
}

static void fewer_actions(dt_orch_ctx *ctx, void *ud)
{
    bool *shrunk = ud;
    if (!*shrunk) {
        dt_await(ctx, dt_create_timer(ctx, dt_now(ctx) + 10), NULL);
    }
    dt_await(ctx, dt_wait_event(ctx, "next"), NULL);
}

static void test_nondeterminism_missing_action(void **state)
{
    (void)state;
    bool shrunk = false;
    hw_world *w = hw_create(0);
    hw_orchestrator(w, "fewer", fewer_actions, &shrunk);
    hw_start(w, "fewer", "m", NULL);
    hw_run(w);
    shrunk = true;
    hw_raise(w, "m", "next", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "m"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "m");
    assert_string_equal(f->error_type, DT_FAILURE_NONDETERMINISM);
    assert_non_null(strstr(f->error_message, "expected timer"));
    assert_non_null(strstr(f->error_message, "found nothing"));
    hw_destroy(w);
}

static void activity_became_timer(dt_orch_ctx *ctx, void *ud)
{
    bool *changed = ud;
    if (*changed) {
        dt_await(ctx, dt_create_timer(ctx, dt_now(ctx) + 10), NULL);
    } else {
        dt_await(ctx, dt_call_activity(ctx, "alpha", NULL, 0, NULL), NULL);
    }
    dt_await(ctx, dt_wait_event(ctx, "next"), NULL);
}

/* The history's action is an activity, the code's a task of another kind (a timer, whose union
 * member holds a time where an action keeps its name): the failure names both sides instead of
 * reading the time as a name (found by tests/fuzz/fuzz_engine: a SEGV in the message's
 * formatting, i.e. a worker crash on a redeploy that changed the code this way). */
static void test_nondeterminism_other_kind(void **state)
{
    (void)state;
    bool changed = false;
    hw_world *w = hw_create(0);
    hw_orchestrator(w, "became_timer", activity_became_timer, &changed);
    hw_activity(w, "alpha", act_wrap, NULL);
    hw_start(w, "became_timer", "k", NULL);
    hw_run(w);
    changed = true;
    hw_raise(w, "k", "next", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "k"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "k");
    assert_string_equal(f->error_type, DT_FAILURE_NONDETERMINISM);
    assert_non_null(strstr(f->error_message, "expected activity 'alpha', found timer ''"));
    hw_destroy(w);
}

/* ---- deterministic time and IDs, logging ---- */

static void stamps(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char g1[37], g2[37], out[256];
    dt_new_guid(ctx, g1);
    int64_t t1 = dt_now(ctx);
    dt_log(ctx, DT_LOG_INFO, "before %s", g1);
    dt_await(ctx, dt_sleep(ctx, 5000), NULL);
    dt_new_guid(ctx, g2);
    int64_t t2 = dt_now(ctx);
    dt_log(ctx, DT_LOG_INFO, "after %s", g2);
    assert_string_not_equal(g1, g2);
    assert_int_equal(strlen(g1), 36);
    assert_int_equal(g1[14], '5'); /* version nibble */
    snprintf(out, sizeof(out), "%s %s %lld", g1, g2, (long long)(t2 - t1));
    dt_orch_set_output(ctx, out, strlen(out));
}

static void time_ids_logs(hw_world *w)
{
    hw_orchestrator(w, "stamps", stamps, NULL);
    hw_start(w, "stamps", "s", NULL);
    hw_run(w);
    assert_int_equal(hw_status(w, "s"), ST_COMPLETED);
    assert_non_null(strstr(hw_output(w, "s"), " 5000"));
    /* Each line exactly once, although the no-cache world replayed the first part. */
    assert_int_equal(hw_logs(w), 2);
    assert_non_null(strstr(hw_log_at(w, 0), "before "));
    assert_non_null(strstr(hw_log_at(w, 1), "after "));
}

static void test_time_guid_and_logging(void **state)
{
    (void)state;
    run_scenario(time_ids_logs);
}

/* Two worlds must agree on GUIDs too (outputs are compared by run_scenario); a different instance
 * ID gives different GUIDs. */
static void test_guids_differ_per_instance(void **state)
{
    (void)state;
    hw_world *w = hw_create(8);
    hw_orchestrator(w, "stamps", stamps, NULL);
    hw_start(w, "stamps", "s1", NULL);
    hw_start(w, "stamps", "s2", NULL);
    hw_run(w);
    assert_string_not_equal(hw_output(w, "s1"), hw_output(w, "s2"));
    hw_destroy(w);
}

/* ---- the cache ---- */

static void waiter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *v = dt_await(ctx, dt_wait_event(ctx, "go"), NULL);
    dt_orch_set_output(ctx, v, strlen(v));
}

static void test_cache_is_bounded_and_freed(void **state)
{
    (void)state;
    hw_world *w = hw_create(3);
    hw_orchestrator(w, "waiter", waiter, NULL);
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "w%d", i);
        hw_start(w, "waiter", id, NULL);
    }
    hw_run(w);
    assert_int_equal(hw_cached(w), 3);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "w%d", i);
        hw_raise(w, id, "go", id);
    }
    hw_run(w);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "w%d", i);
        assert_string_equal(hw_output(w, id), id);
    }
    assert_int_equal(hw_cached(w), 0); /* completed instances leave the cache */
    /* w7..w9 stayed cached (capacity 3): their last episode skipped loading history. */
    assert_int_equal(hw_elided(w), 3);
    hw_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nondeterminism_detected),
        cmocka_unit_test(test_nondeterminism_missing_action),
        cmocka_unit_test(test_nondeterminism_other_kind),
        cmocka_unit_test(test_time_guid_and_logging),
        cmocka_unit_test(test_guids_differ_per_instance),
        cmocka_unit_test(test_cache_is_bounded_and_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
