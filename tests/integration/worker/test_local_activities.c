/*
 * Activities run in the process of the partition that scheduled them (runtime/worker/local/
 * local_act_int.h), against the real nats-server: chains run one at a time never touch the task
 * queue's stream; with disable_local_activities every request goes through it; a burst larger
 * than the threads spills to the queue and completes; an activity this worker does not serve
 * goes to the worker that does; and a worker stopped while an activity runs in-process for it
 * leaves the request to the next owner, which runs it through the queue and completes the
 * instance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common_int.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define PARTITIONS 2
#define CHAIN      3
#define ST(x)      DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Calls `activity` (user data) CHAIN times, feeding each output to the next. */
static void chain(dt_orch_ctx *ctx, void *ud)
{
    const char *activity = ud;
    size_t len = 0;
    const char *v = dt_orch_input(ctx, &len);
    char cur[512];
    snprintf(cur, sizeof(cur), "%.*s", (int)len, v != NULL ? v : "");
    for (int i = 0; i < CHAIN; i++) {
        const char *out =
            dt_await(ctx, dt_call_activity(ctx, activity, cur, strlen(cur), NULL), NULL);
        snprintf(cur, sizeof(cur), "%s", out != NULL ? out : "?");
    }
    dt_orch_set_output(ctx, cur, strlen(cur));
}

/* Calls "hello" and then "elsewhere" (task queue "other"); outputs both joined by '|'. */
static void two(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "hello", "a", 1, NULL), NULL);
    char first[64];
    snprintf(first, sizeof(first), "%s", a != NULL ? a : "?");
    dt_activity_options o = {.task_queue = "other"};
    const char *b = dt_await(ctx, dt_call_activity(ctx, "elsewhere", "b", 1, &o), NULL);
    char out[160];
    int n = snprintf(out, sizeof(out), "%s|%s", first, b != NULL ? b : "?");
    dt_orch_set_output(ctx, out, (size_t)n);
}

static void act_elsewhere(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_set_output(ctx, "there", 5);
}

/* "slow": sleeps 20 ms, then says hello. */
static void act_slow(dt_activity_ctx *ctx, void *ud)
{
    sleep_ms(20);
    wk_act_hello(ctx, ud);
}

/* "held": its first run blocks until released; later runs return at once. */
static atomic_int held_runs;
static atomic_bool held_release;
static atomic_bool held_first_returned;
static void act_held(dt_activity_ctx *ctx, void *ud)
{
    if (atomic_fetch_add(&held_runs, 1) == 0) {
        while (!atomic_load(&held_release)) {
            sleep_ms(5);
        }
        dt_activity_set_output(ctx, "late", 4);
        atomic_store(&held_first_returned, true);
        return;
    }
    wk_act_hello(ctx, ud);
}

typedef struct fixture {
    wk_env env;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    wk_setup(&f->env, "local", PARTITIONS, 2000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    wk_teardown(&f->env);
    free(f);
    return 0;
}

static dt_worker *worker(fixture *f, const char *id, bool disable_local, bool elsewhere_too)
{
    dt_worker_options o = wk_options(&f->env);
    o.worker_id = id;
    o.disable_local_activities = disable_local;
    dt_worker *w = NULL;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "chain", chain, "hello"), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "slow_chain", chain, "slow"), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "held_chain", chain, "held"), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "two", two, NULL), DT_OK);
    if (!elsewhere_too) {
        assert_int_equal(dt_worker_add_activity(w, "hello", NULL, wk_act_hello, NULL), DT_OK);
        assert_int_equal(dt_worker_add_activity(w, "slow", NULL, act_slow, NULL), DT_OK);
        assert_int_equal(dt_worker_add_activity(w, "held", NULL, act_held, NULL), DT_OK);
    } else {
        assert_int_equal(dt_worker_add_activity(w, "elsewhere", "other", act_elsewhere, NULL),
                         DT_OK);
    }
    assert_int_equal(dt_worker_start(w), DT_OK);
    return w;
}

/* Messages ever stored in the hub's activity stream (a work queue: acked ones are gone, the
 * sequence stays). */
static uint64_t act_msgs(fixture *f)
{
    char stream[DT_BROKER_NAME_BUF];
    assert_int_equal(
        dt_broker_stream_name(f->env.hub, DT_BROKER_STREAM_ACT, stream, sizeof(stream)), DT_OK);
    dt_broker_stream_info si;
    assert_int_equal(dt_broker_stream_info_get(f->env.broker, stream, &si), DT_OK);
    return si.last_seq;
}

static void run_chains_one_by_one(fixture *f, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char id[64], in[16], want[128];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        snprintf(in, sizeof(in), "%d", i);
        snprintf(want, sizeof(want), "Hello Hello Hello %d", i);
        wk_start(&f->env, "chain", id, in, NULL, NULL);
        wk_expect(&f->env, id, ST(COMPLETED), want);
    }
}

/* One at a time a thread is always free: every activity runs in-process. */
static void test_lone_chains_run_in_process(void **state)
{
    fixture *f = *state;
    dt_worker *w = worker(f, "local-a", false, false);
    run_chains_one_by_one(f, "lone", 10);
    assert_int_equal(act_msgs(f), 0);
    dt_worker_stop(w, 5000);
    dt_worker_destroy(w);
}

/* Turned off, each of the 3 x 10 requests is a message of the task queue. */
static void test_disabled_goes_through_queue(void **state)
{
    fixture *f = *state;
    dt_worker *w = worker(f, "local-off", true, false);
    run_chains_one_by_one(f, "off", 10);
    assert_int_equal(act_msgs(f), 3 * 10);
    dt_worker_stop(w, 5000);
    dt_worker_destroy(w);
}

/* 40 chains of a 20 ms activity at once against 4 threads: the first requests run here, the
 * rest spill to the queue (served by the same worker's pool), and every chain completes. */
static void test_burst_spills_to_queue(void **state)
{
    fixture *f = *state;
    dt_worker *w = worker(f, "local-burst", false, false);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        char id[32], in[16];
        snprintf(id, sizeof(id), "burst-%d", i);
        snprintf(in, sizeof(in), "%d", i);
        wk_start(&f->env, "slow_chain", id, in, NULL, NULL);
    }
    for (int i = 0; i < N; i++) {
        char id[32], want[64];
        snprintf(id, sizeof(id), "burst-%d", i);
        snprintf(want, sizeof(want), "Hello Hello Hello %d", i);
        wk_expect(&f->env, id, ST(COMPLETED), want);
    }
    uint64_t queued = act_msgs(f);
    assert_true(queued > 0);               /* spilled */
    assert_true(queued < (uint64_t)N * 3); /* and some ran here */
    dt_worker_stop(w, 5000);
    dt_worker_destroy(w);
}

/* An activity whose task queue the partition's worker does not serve goes through the queue to
 * the worker that does, whichever of the two owns the instance's partition. */
static void test_unserved_name_goes_to_its_worker(void **state)
{
    fixture *f = *state;
    dt_worker *a = worker(f, "local-hello", false, false);
    dt_worker *b = worker(f, "local-elsewhere", false, true);
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "two-%d", i);
        wk_start(&f->env, "two", id, NULL, NULL, NULL);
        wk_expect(&f->env, id, ST(COMPLETED), "Hello a|there");
    }
    assert_true(act_msgs(f) >= 6); /* in each, "hello" or "elsewhere" crossed over */
    dt_worker_stop(a, 5000);
    dt_worker_stop(b, 5000);
    dt_worker_destroy(a);
    dt_worker_destroy(b);
}

/* The owner stops (abandoning the activity it runs in-process); the next owner finds the
 * request in the outbox, runs it through the queue and completes the instance. */
static void test_handover_reruns_through_queue(void **state)
{
    fixture *f = *state;
    atomic_store(&held_runs, 0);
    atomic_store(&held_release, false);
    atomic_store(&held_first_returned, false);
    dt_worker *a = worker(f, "local-first", false, false);
    wk_start(&f->env, "held_chain", "held-1", "x", NULL, NULL);
    for (int i = 0; i < 2000 && atomic_load(&held_runs) == 0; i++) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&held_runs), 1);
    assert_int_equal(act_msgs(f), 0); /* it runs in-process */
    dt_worker_stop(a, 0);             /* abandons it */
    dt_worker *b = worker(f, "local-second", false, false);
    wk_expect(&f->env, "held-1", ST(COMPLETED), "Hello Hello Hello x");
    assert_true(act_msgs(f) >= 1); /* the next owner published the request */
    assert_true(atomic_load(&held_runs) >= 4);
    atomic_store(&held_release, true);
    for (int i = 0; i < 2000 && !atomic_load(&held_first_returned); i++) {
        sleep_ms(5);
    }
    sleep_ms(50); /* the abandoned thread drops its result and exits */
    dt_worker_stop(b, 5000);
    dt_worker_destroy(b);
    dt_worker_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lone_chains_run_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_goes_through_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_spills_to_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unserved_name_goes_to_its_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover_reruns_through_queue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
