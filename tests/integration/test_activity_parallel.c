/*
 * The activity pool under load, against a real nats-server: many work items over several
 * threads, every result exactly once by task ID and every activity run exactly once, with the
 * threads' parallelism used; a large queued backlog drained by one and by four threads, one
 * result per item; and items sent one at a time, each answered. (How fast: scripts/bench,
 * fanout10k and latency3 with DT_BENCH_NO_LOCAL=1 for the task-queue path; a test asserts
 * behaviour, not speed.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_activity.h"

#define N_PARALLEL 200

static int g_runs[N_PARALLEL]; /* atomic */
static int g_running;          /* atomic */
static int g_max_running;      /* atomic */

static void busy(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    int now = __atomic_add_fetch(&g_running, 1, __ATOMIC_SEQ_CST);
    int max = __atomic_load_n(&g_max_running, __ATOMIC_SEQ_CST);
    while (now > max && !__atomic_compare_exchange_n(&g_max_running, &max, now, false,
                                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    int32_t t = dt_activity_task_id(ctx);
    if (t >= 0 && t < N_PARALLEL) {
        __atomic_add_fetch(&g_runs[t], 1, __ATOMIC_SEQ_CST);
    }
    tb_sleep_ms(5);
    char out[16];
    int n = snprintf(out, sizeof(out), "r%d", (int)t);
    dt_activity_set_output(ctx, out, (size_t)n);
    __atomic_sub_fetch(&g_running, 1, __ATOMIC_SEQ_CST);
}

static void trivial(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_set_output(ctx, "ok", 2);
}

static void test_parallel_exactly_once(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    dt__activity_def defs[] = {{"busy", "q", busy, NULL}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 4, 0, 0, NULL);
    for (int i = 0; i < N_PARALLEL; i++) {
        ta_request(&e, "q", "inst-p", "busy", i, NULL);
    }
    static Dtpb__OrchestrationMessage *res[N_PARALLEL + 1];
    size_t got = ta_results(&e, res, N_PARALLEL, 30000);
    assert_int_equal(got, N_PARALLEL);
    static int seen[N_PARALLEL];
    for (size_t i = 0; i < got; i++) {
        Dtpb__TaskCompletedEvent *tc = ta_completed(res[i]);
        int32_t t = tc->task_scheduled_id;
        assert_true(t >= 0 && t < N_PARALLEL);
        seen[t]++;
        char want[16];
        int n = snprintf(want, sizeof(want), "r%d", (int)t);
        assert_int_equal(tc->result->value.len, n);
        assert_memory_equal(tc->result->value.data, want, (size_t)n);
    }
    ta_no_result(&e, 500);
    for (int i = 0; i < N_PARALLEL; i++) {
        assert_int_equal(seen[i], 1);
        assert_int_equal(__atomic_load_n(&g_runs[i], __ATOMIC_SEQ_CST), 1);
    }
    int max = __atomic_load_n(&g_max_running, __ATOMIC_SEQ_CST);
    printf("parallel: %d activities at most ran at once (4 threads)\n", max);
    assert_int_equal(max, 4);
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 3000);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

/* Queues n requests with an async publisher (fast), each with its own task ID. */
static void queue_requests(ta_env *e, int n)
{
    dt_broker_publisher *pub = NULL;
    TB_EXPECT(dt_broker_publisher_create(e->b, NULL, &pub), DT_OK, dt_broker_errmsg(e->b));
    char subject[DT_BROKER_NAME_BUF];
    ta_act_subject(e, "q", subject, sizeof(subject));
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *buf = ta_pack_request(e, "inst-t", "trivial", i, "in", &len);
        dt_broker_outmsg m = {.subject = subject, .data = buf, .len = len};
        TB_EXPECT(dt_broker_publisher_add(pub, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(pub));
        free(buf);
    }
    TB_EXPECT(dt_broker_publisher_wait(pub, 30000), DT_OK, dt_broker_publisher_errmsg(pub));
    dt_broker_publisher_destroy(pub);
}

/* A backlog queued before the pool starts drains completely, one stored result per item. */
static void drain_backlog(size_t threads, int n)
{
    ta_env e;
    ta_env_open(&e, NULL);
    queue_requests(&e, n);
    dt__activity_def defs[] = {{"trivial", "q", trivial, NULL}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, threads, 0, 0, NULL);
    /* Wait for the work queue to empty (every item acked after its result's PubAck). */
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 60000);
    assert_int_equal(ta_stream_msgs(&e, DT_BROKER_STREAM_ORCH), (uint64_t)n);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

static void test_backlog_drains(void **state)
{
    (void)state;
    drain_backlog(1, 20000);
    drain_backlog(4, 20000);
}

/* One item at a time: each gets its result, in turn. */
static void test_one_at_a_time(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    dt__activity_def defs[] = {{"trivial", "q", trivial, NULL}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 4, 0, 0, NULL);
    for (int i = 0; i < 100; i++) {
        ta_request(&e, "q", "inst-lat", "trivial", i, NULL);
        Dtpb__TaskCompletedEvent *tc = ta_completed(ta_result(&e, 5000));
        assert_int_equal(tc->task_scheduled_id, i);
    }
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_exactly_once),
        cmocka_unit_test(test_backlog_drains),
        cmocka_unit_test(test_one_at_a_time),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
