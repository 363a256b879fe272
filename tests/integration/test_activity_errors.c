/*
 * The activity pool's rules for bad work items, against a real nats-server: malformed bodies go
 * to the dead-letter stream with a reason (and the pool keeps working); an activity nobody serves
 * is nak'd with a delay and then fails with dt.UnknownActivity (non-retriable); an item delivered
 * more than max_deliveries times fails with dt.ActivityCrashed without running; an output too large
 * for the hub fails with dt.OutputTooLarge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_activity.h"

static int g_runs; /* atomic: how many times `count` ran */

static void count(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    __atomic_add_fetch(&g_runs, 1, __ATOMIC_SEQ_CST);
    dt_activity_set_output(ctx, "ok", 2);
}

static void big(dt_activity_ctx *ctx, void *ud)
{
    size_t n = *(const size_t *)ud;
    char *buf = calloc(1, n);
    dt_activity_set_output(ctx, buf, n);
    free(buf);
}

/* ---- malformed work items ---- */

static void expect_dead(ta_env *e, dt_broker_consumer *c, const void *body, size_t len,
                        const char *reason_part)
{
    dt_broker_msg *m[1];
    size_t n = 0;
    int64_t end = tb_now_ms() + 5000;
    while (n == 0 && tb_now_ms() < end) {
        TB_EXPECT(dt_broker_consumer_fetch(c, 1, 200, m, &n), DT_OK, dt_broker_consumer_errmsg(c));
    }
    assert_int_equal(n, 1);
    char act[DT_BROKER_NAME_BUF];
    ta_act_subject(e, "q", act, sizeof(act));
    const char *v = NULL;
    TB_EXPECT(dt_broker_msg_header(m[0], DT_HDR_REASON, &v), DT_OK, "Dt-Reason");
    if (strstr(v, reason_part) == NULL) {
        fail_msg("Dt-Reason '%s' does not mention '%s'", v, reason_part);
    }
    TB_EXPECT(dt_broker_msg_header(m[0], DT_HDR_ORIGINAL_SUBJECT, &v), DT_OK, "original");
    assert_string_equal(v, act);
    assert_int_equal(dt_broker_msg_len(m[0]), len);
    assert_memory_equal(dt_broker_msg_data(m[0]), body, len);
    TB_EXPECT(dt_broker_msg_ack(m[0]), DT_OK, "ack");
    dt_broker_msg_destroy(m[0]);
}

static void test_malformed(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    ta_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dt__activity_def defs[] = {{"count", "q", count, NULL}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 2, 0, 0, &log);
    char stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(e.hub, DT_BROKER_STREAM_DEAD, stream, sizeof(stream));
    dt_broker_subject(e.hub, DT_BROKER_SUBJ_DEAD, "activity", subject, sizeof(subject));
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "t_dead";
    cc.filter_subject = subject;
    dt_broker_consumer *c = NULL;
    TB_EXPECT(dt_broker_consumer_open(e.b, &cc, &c), DT_OK, dt_broker_errmsg(e.b));

    const char garbage[] = "\xff\xff\xff\xff not a protobuf";
    ta_publish_raw(&e, "q", garbage, sizeof(garbage) - 1);
    expect_dead(&e, c, garbage, sizeof(garbage) - 1, "decoding failed");

    Dtpb__ActivityRequest r;
    dtpb__activity_request__init(&r);
    r.instance_id = "i1";
    r.name = "count";
    size_t n = dtpb__activity_request__get_packed_size(&r); /* no reply subject */
    uint8_t buf[256];
    dtpb__activity_request__pack(&r, buf);
    ta_publish_raw(&e, "q", buf, n);
    expect_dead(&e, c, buf, n, "reply_subject");

    r.reply_subject = "dt.otherhub.orch.0"; /* not this hub's */
    n = dtpb__activity_request__pack(&r, buf);
    ta_publish_raw(&e, "q", buf, n);
    expect_dead(&e, c, buf, n, "reply_subject");

    r.reply_subject = e.reply;
    r.instance_id = "";
    n = dtpb__activity_request__pack(&r, buf);
    ta_publish_raw(&e, "q", buf, n);
    expect_dead(&e, c, buf, n, "instance_id");

    r.instance_id = "i1";
    r.name = "";
    n = dtpb__activity_request__pack(&r, buf);
    ta_publish_raw(&e, "q", buf, n);
    expect_dead(&e, c, buf, n, "name");

    /* The pool still works, and every dead work item was terminated (removed). */
    ta_request(&e, "q", "inst", "count", 1, NULL);
    ta_completed(ta_result(&e, 5000));
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 3000);
    assert_true(ta_log_has(&log, "malformed work item"));
    dt_broker_consumer_close(c);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

/* ---- activities nobody serves ---- */

static void test_unknown(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    dt__activity_def defs[] = {{"count", "q", count, NULL}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 2, 2, 0, NULL);
    int64_t t0 = tb_now_ms();
    ta_request(&e, "q", "inst-u", "nope", 9, NULL);
    /* delivery 1 is nak'd with a 250 ms delay; delivery 2 reaches max_deliveries = 2 */
    Dtpb__OrchestrationMessage *m = ta_result(&e, 10000);
    int64_t ms = tb_now_ms() - t0;
    assert_true(ms >= 200);
    assert_string_equal(m->dedupe_id, "inst-u/e1/res/9");
    Dtpb__TaskFailedEvent *tf = ta_failed(m);
    assert_int_equal(tf->task_scheduled_id, 9);
    assert_string_equal(tf->failure_details->error_type, "dt.UnknownActivity");
    assert_string_equal(tf->failure_details->error_message,
                        "no worker serves activity 'nope' on task queue 'q' (2 deliveries)");
    /* A retry policy would only repeat the wait: the failure ends the call. */
    assert_true(tf->failure_details->is_non_retriable);
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 3000);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

/* ---- the crash bound ---- */

/* Delivers the next work item of queue `q` `times` times without completing it (nak), as a
 * worker that crashes each time would. */
static void deliver_without_completing(ta_env *e, const char *q, int times)
{
    char stream[DT_BROKER_NAME_BUF], durable[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(e->hub, DT_BROKER_STREAM_ACT, stream, sizeof(stream));
    TB_EXPECT(dt__act_durable_name(q, durable, sizeof(durable)), DT_OK, "durable");
    ta_act_subject(e, q, subject, sizeof(subject));
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = durable;
    cc.filter_subject = subject;
    dt_broker_consumer *c = NULL;
    TB_EXPECT(dt_broker_consumer_open(e->b, &cc, &c), DT_OK, dt_broker_errmsg(e->b));
    for (int i = 1; i <= times; i++) {
        dt_broker_msg *m[1];
        size_t n = 0;
        TB_EXPECT(dt_broker_consumer_fetch(c, 1, 3000, m, &n), DT_OK, dt_broker_consumer_errmsg(c));
        assert_int_equal(n, 1);
        dt_broker_msg_meta meta;
        TB_EXPECT(dt_broker_msg_meta_get(m[0], &meta), DT_OK, "meta");
        assert_int_equal(meta.deliveries, (uint64_t)i);
        TB_EXPECT(dt_broker_msg_nak(m[0]), DT_OK, "nak");
        dt_broker_msg_destroy(m[0]);
    }
    dt_broker_consumer_close(c);
}

static void test_crash_bound(void **state)
{
    (void)state;
    ta_env e;
    ta_env_open(&e, NULL);
    ta_request(&e, "crashq", "inst-c", "count", 4, "x");
    deliver_without_completing(&e, "crashq", 3);
    __atomic_store_n(&g_runs, 0, __ATOMIC_SEQ_CST);
    dt__activity_def defs[] = {{"count", "crashq", count, NULL}};
    dt__activity_pool *p = ta_pool(&e, defs, 1, 1, 3, 0, NULL);
    Dtpb__TaskFailedEvent *tf = ta_failed(ta_result(&e, 5000));
    assert_int_equal(tf->task_scheduled_id, 4);
    assert_string_equal(tf->failure_details->error_type, "dt.ActivityCrashed");
    assert_string_equal(tf->failure_details->error_message,
                        "activity 'count' was delivered 4 times without completing: it crashed "
                        "or hung its worker");
    assert_false(tf->failure_details->is_non_retriable);
    assert_int_equal(__atomic_load_n(&g_runs, __ATOMIC_SEQ_CST), 0); /* never ran */
    ta_wait_stream_msgs(&e, DT_BROKER_STREAM_ACT, 0, 3000);

    /* At the bound itself (delivery == max) it still runs. */
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_request(&e, "crashq", "inst-c", "count", 5, "x");
    deliver_without_completing(&e, "crashq", 2);
    p = ta_pool(&e, defs, 1, 1, 3, 0, NULL);
    ta_completed(ta_result(&e, 5000));
    assert_int_equal(__atomic_load_n(&g_runs, __ATOMIC_SEQ_CST), 1);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

/* ---- outputs larger than the hub's messages ---- */

static void test_output_too_large(void **state)
{
    (void)state;
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc);
    hc.storage = DT_BROKER_STORAGE_MEMORY;
    hc.max_msg_size = 64 * 1024;
    ta_env e;
    ta_env_open(&e, &hc);
    size_t fits = 60 * 1024, too_big = 64 * 1024;
    dt__activity_def defs[] = {{"fits", "q", big, &fits}, {"too_big", "q", big, &too_big}};
    dt__activity_pool *p = ta_pool(&e, defs, 2, 1, 0, 0, NULL);
    ta_request(&e, "q", "inst-b", "fits", 1, NULL);
    Dtpb__TaskCompletedEvent *tc = ta_completed(ta_result(&e, 5000));
    assert_int_equal(tc->result->value.len, fits);
    ta_request(&e, "q", "inst-b", "too_big", 2, NULL);
    Dtpb__TaskFailedEvent *tf = ta_failed(ta_result(&e, 5000));
    assert_string_equal(tf->failure_details->error_type, "dt.OutputTooLarge");
    assert_non_null(strstr(tf->failure_details->error_message, "65536 bytes of output"));
    assert_true(tf->failure_details->is_non_retriable);
    dt__activity_pool_stop(p, 5000);
    dt__activity_pool_destroy(p);
    ta_env_close(&e);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_crash_bound),
        cmocka_unit_test(test_output_too_large),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
