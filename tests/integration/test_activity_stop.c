/*
 * Long activities and stopping, against a real nats-server: an activity longer than the ack wait
 * is not redelivered (in-progress acks); a graceful stop waits for a running activity and
 * publishes its result; work items fetched but not started are handed back at once; an activity
 * still running at the stop deadline is abandoned and its work item redelivered later.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_activity.h"

/* Shared by the activities of this file: runs, the first delivery seen, a gate. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int runs;
    int started;
    int max_delivery;
    bool open; /* gate of `gated` */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void reset(void)
{
    pthread_mutex_lock(&g.mu);
    g.runs = g.started = g.max_delivery = 0;
    g.open = false;
    pthread_mutex_unlock(&g.mu);
}

static void note_start(dt_activity_ctx *ctx)
{
    pthread_mutex_lock(&g.mu);
    g.runs++;
    g.started++;
    if (dt_activity_delivery(ctx) > g.max_delivery) {
        g.max_delivery = dt_activity_delivery(ctx);
    }
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.mu);
}

static void wait_started(int n)
{
    pthread_mutex_lock(&g.mu);
    while (g.started < n) {
        pthread_cond_wait(&g.cond, &g.mu);
    }
    pthread_mutex_unlock(&g.mu);
}

static int runs(void)
{
    pthread_mutex_lock(&g.mu);
    int r = g.runs;
    pthread_mutex_unlock(&g.mu);
    return r;
}

/* Sleeps *(int64_t *)ud ms. */
static void sleepy(dt_activity_ctx *ctx, void *ud)
{
    note_start(ctx);
    tb_sleep_ms(*(const int64_t *)ud);
    dt_activity_set_output(ctx, "slept", 5);
}

/* Blocks until the gate opens. */
static void gated(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    note_start(ctx);
    pthread_mutex_lock(&g.mu);
    while (!g.open) {
        pthread_cond_wait(&g.cond, &g.mu);
    }
    pthread_mutex_unlock(&g.mu);
    dt_activity_heartbeat(ctx); /* after abandonment: a no-op */
}

static void quick(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    note_start(ctx);
}

static void open_gate(void)
{
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.mu);
}

/* ---- tests ---- */

static void test_long_activity_not_redelivered(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    reset();
    static const int64_t ms = 2500;
    dt__activity_def defs[] = {{"sleepy", "q", sleepy, (void *)&ms}};
    /* ack wait 600 ms, two threads: a redelivery would run it again on the other thread. */
    dt__activity_pool *p = ta_pool(&e, defs, 1, 2, 0, 600, NULL);
    ta_request(&e, "q", "inst-l", "sleepy", 1, NULL);
    Dtpb__TaskCompletedEvent *tc = ta_completed(ta_result(&e, 10000));
    assert_int_equal(tc->task_scheduled_id, 1);
    tb_sleep_ms(800); /* longer than the ack wait: a redelivery would show now */
    assert_int_equal(runs(), 1);
    pthread_mutex_lock(&g.mu);
    assert_int_equal(g.max_delivery, 1);
    pthread_mutex_unlock(&g.mu);
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 3000);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

static void test_graceful_stop_waits(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    reset();
    static const int64_t ms = 1000;
    dt__activity_def defs[] = {{"sleepy", "q", sleepy, (void *)&ms}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 1, 0, 0, NULL);
    ta_request(&e, "q", "inst-g", "sleepy", 2, NULL);
    wait_started(1);
    int64_t t0 = tb_now_ms();
    dt__activity_pool_stop(p, 5000);
    int64_t took = tb_now_ms() - t0;
    assert_true(took >= 800 && took < 4000);
    ta_completed(ta_result(&e, 2000)); /* published before stop returned */
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 3000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

/*
 * Queues q0, then `slow`, then n quick items. A fresh one-thread pool fetches 1 item (nothing is
 * known of durations yet), runs q0 fast and then fetches the rest as one batch: `slow` first.
 */
static void queue_slow_batch(ta_env *e, const char *slow, int n)
{
    ta_request(e, "q", "inst-h", "quick", 0, NULL);
    ta_request(e, "q", "inst-h", slow, 1, NULL);
    for (int i = 0; i < n; i++) {
        ta_request(e, "q", "inst-h", "quick", 2 + i, NULL);
    }
}

static void test_stop_hands_back_unstarted(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    reset();
    static const int64_t ms = 300;
    dt__activity_def defs[] = {{"quick", "q", quick, NULL}, {"sleepy", "q", sleepy, (void *)&ms}};
    queue_slow_batch(&e, "sleepy", 8);
    /* A long ack wait: an item left unsettled in the handle would stay away for 60 s. */
    dt__activity_pool *p = ta_pool(&e, defs, 2, 1, 0, 60000, NULL);
    wait_started(2); /* q0, then sleepy: the 8 quick ones wait in its batch */
    int64_t t0 = tb_now_ms();
    dt__activity_pool_stop(p, 10000);
    int64_t took = tb_now_ms() - t0;
    dt__activity_pool_destroy(p);
    assert_true(took < 5000);    /* not the 10 s stop timeout; runs() is the real check */
    assert_int_equal(runs(), 2); /* the rest of the batch did not run */
    Dtpb__OrchestrationMessage *res[10];
    assert_int_equal(ta_results(&e, res, 10, 1000), 2);
    /* They went back to the queue at once (nak): another pool runs them, as second deliveries. */
    p = ta_pool(&e, defs, 2, 2, 0, 60000, NULL);
    assert_int_equal(ta_results(&e, res, 8, 5000), 8);
    assert_int_equal(runs(), 10);
    pthread_mutex_lock(&g.mu);
    assert_int_equal(g.max_delivery, 2);
    pthread_mutex_unlock(&g.mu);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

static void test_long_activity_hands_back_its_batch(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    reset();
    dt__activity_def defs[] = {{"quick", "q", quick, NULL}, {"gated", "q", gated, NULL}};
    queue_slow_batch(&e, "gated", 10);
    ta_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dt__activity_pool *p1 = ta_pool(&e, defs, 2, 1, 0, 60000, &log);
    wait_started(2); /* q0, then gated, which holds the 10 quick ones in its batch */
    Dtpb__OrchestrationMessage *res[12];
    assert_int_equal(ta_results(&e, res, 1, 2000), 1); /* q0 */
    /* A second worker gets the 10 once the first hands them back (gated runs past 500 ms). */
    dt__activity_pool *p2 = ta_pool(&e, defs, 2, 1, 0, 60000, NULL);
    int64_t t0 = tb_now_ms();
    assert_int_equal(ta_results(&e, res, 10, 5000), 10);
    assert_true(tb_now_ms() - t0 < 3000);
    assert_true(ta_log_has(&log, "10 work item(s) queued behind an activity"));
    open_gate();
    ta_completed(ta_result(&e, 5000));
    assert_int_equal(runs(), 12);
    dt__activity_pool_stop(p1, 5000);
    dt__activity_pool_stop(p2, 5000);
    dt__activity_pool_destroy(p1);
    dt__activity_pool_destroy(p2);
    ta_env_close(&e);
}

static void test_stop_abandons_at_deadline(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    reset();
    dt__activity_def defs[] = {{"gated", "q", gated, NULL}};
    ta_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 1, 0, 1000, &log);
    ta_request(&e, "q", "inst-a", "gated", 3, NULL);
    wait_started(1);
    int64_t t0 = tb_now_ms();
    dt__activity_pool_stop(p, 300);
    int64_t took = tb_now_ms() - t0;
    assert_true(took >= 250 && took < 2000);
    assert_true(ta_log_has(&log, "abandoned"));
    dt__activity_pool_destroy(p); /* returns although the activity still runs */
    assert_int_equal(ta_stream_msgs(&e, DT_BROKER_STREAM_ACT), 1); /* not acked */
    ta_no_result(&e, 300);
    /* Another pool gets it once the ack wait (1 s) passed, as a second delivery. */
    dt__activity_def again[] = {{"gated", "q", quick, NULL}};
    p = ta_pool(&e, again, 1, 1, 0, 1000, NULL);
    ta_completed(ta_result(&e, 5000));
    pthread_mutex_lock(&g.mu);
    assert_int_equal(g.max_delivery, 2);
    pthread_mutex_unlock(&g.mu);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    open_gate(); /* the abandoned activity returns; its thread frees its memory and exits */
    tb_sleep_ms(300);
    ta_no_result(&e, 200); /* and publishes nothing */
    ta_env_close(&e);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_activity_not_redelivered),
        cmocka_unit_test(test_graceful_stop_waits),
        cmocka_unit_test(test_stop_hands_back_unstarted),
        cmocka_unit_test(test_long_activity_hands_back_its_batch),
        cmocka_unit_test(test_stop_abandons_at_deadline),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
