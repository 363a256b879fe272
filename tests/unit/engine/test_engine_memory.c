/*
 * Engine tests: running out of memory. Every allocation of a new instance's first episode is
 * failed in turn (one at a time, as a transient shortage would be) while the cache holds
 * suspended instances. The episode must fail cleanly with DT_ENOMEM (the harness then runs it
 * again, as a worker naks the batch) or succeed; when the failing allocation is the new
 * instance's coroutine, the engine sheds least recently used instances and retries instead of
 * failing (dt__instance_start). Afterwards every instance, shed or not, must finish exactly as in
 * a world where nothing failed, and nothing may leak.
 */
#include <stdio.h>

#include "scenario.h"

#define WAITERS 80 /* more than one shed (64) takes */
#define CACHE   200

/* Waits for one held activity, then outputs its result. */
static void waiter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *id = dt_orch_instance_id(ctx);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "wait", id, strlen(id), NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static hw_world *world(void)
{
    hw_world *w = hw_create(CACHE);
    hw_orchestrator(w, "waiter", waiter, NULL);
    hw_hold_activity(w, "wait");
    for (int i = 0; i < WAITERS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "w%d", i);
        hw_start(w, "waiter", id, NULL);
    }
    hw_run_idle(w);
    assert_int_equal(hw_cached(w), WAITERS);
    return w;
}

/* Completes every held activity and runs the world to the end. */
static void finish(hw_world *w)
{
    while (hw_held(w, "wait") > 0) {
        char out[64];
        snprintf(out, sizeof(out), "ok:%s", hw_held_input(w, "wait", 0));
        hw_complete_held(w, "wait", 0, out); /* index 0: completed ones leave the count */
    }
    hw_run(w);
}

static void test_each_allocation_of_a_start_fails_once(void **state)
{
    (void)state;
    dt_test_alloc_install();
    long before = dt_test_alloc_outstanding();
    hw_world *hurt = world(), *ref = world();
    hw_retry_enomem(hurt, true);

    int sheds = 0, steps = 0;
    for (long k = 0;; k++) {
        char id[32];
        snprintf(id, sizeof(id), "new-%ld", k);
        size_t cached = hw_cached(hurt);
        hw_start(hurt, "waiter", id, NULL);
        hw_start(ref, "waiter", id, NULL);
        dt_test_alloc_fail_once(k);
        hw_run_idle(hurt);
        bool reached = !dt_test_alloc_injection_pending();
        dt_test_alloc_fail_after(-1);
        hw_run_idle(ref);
        assert_int_equal(hw_status(hurt, id), ST_RUNNING);
        if (hw_cached(hurt) < cached) {
            sheds++; /* the coroutine could not be had: the LRU instances went */
        }
        if (!reached) {
            break; /* k is past the last allocation of the episode */
        }
        steps++;
    }
    print_message("%d allocations failed in turn: %d episodes failed and ran again, %d shed the "
                  "cache\n",
                  steps, hw_enomem_episodes(hurt), sheds);
    assert_true(steps >= 2);    /* at least the instance and its coroutine */
    assert_int_equal(sheds, 1); /* shedding leaves spare coroutines: later starts reuse them */
    /* Every other failure failed the episode, which then ran again. */
    assert_int_equal(hw_enomem_episodes(hurt), steps - sheds);

    finish(hurt);
    finish(ref);
    char why[256];
    if (!hw_same(hurt, ref, why, sizeof(why))) {
        fail_msg("the world that ran out of memory differs: %s", why);
    }
    for (int i = 0; i < WAITERS; i++) {
        char id[16], out[64];
        snprintf(id, sizeof(id), "w%d", i);
        snprintf(out, sizeof(out), "ok:%s", id);
        assert_int_equal(hw_status(hurt, id), ST_COMPLETED);
        assert_string_equal(hw_output(hurt, id), out);
    }
    hw_destroy(hurt);
    hw_destroy(ref);
    assert_int_equal(dt_test_alloc_outstanding(), before);
    dt_set_allocator(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_allocation_of_a_start_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
