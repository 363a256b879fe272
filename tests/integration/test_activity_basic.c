/*
 * The activity pool against a real nats-server: an activity's output, no input and no output,
 * failures (type, message, non-retriable, last call wins), the context's accessors, the result
 * message's identity and the removal of the acked work item; configuration errors at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_activity.h"

/* ---- activities ---- */

typedef struct seen {
    pthread_mutex_t mu;
    char name[64];
    char instance[64];
    int32_t task_id;
    int delivery;
    bool input_null;
    size_t input_len;
    bool input_terminated;
} seen;

static seen g_seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void record(dt_activity_ctx *ctx)
{
    size_t len = 99;
    const char *in = dt_activity_input(ctx, &len);
    pthread_mutex_lock(&g_seen.mu);
    snprintf(g_seen.name, sizeof(g_seen.name), "%s", dt_activity_name(ctx));
    snprintf(g_seen.instance, sizeof(g_seen.instance), "%s", dt_activity_instance_id(ctx));
    g_seen.task_id = dt_activity_task_id(ctx);
    g_seen.delivery = dt_activity_delivery(ctx);
    g_seen.input_null = in == NULL;
    g_seen.input_len = len;
    g_seen.input_terminated = in != NULL && in[len] == '\0';
    pthread_mutex_unlock(&g_seen.mu);
}

static void echo(dt_activity_ctx *ctx, void *ud)
{
    record(ctx);
    const char *prefix = ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char out[256];
    int n = snprintf(out, sizeof(out), "%s%.*s", prefix, (int)len, in != NULL ? in : "");
    dt_activity_heartbeat(ctx); /* harmless on a short activity */
    dt_activity_set_output(ctx, "overwritten", 11);
    dt_activity_set_output(ctx, out, (size_t)n);
}

static void noop(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    record(ctx);
}

static void boom(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_set_output(ctx, "x", 1);
    dt_activity_fail(ctx, "app.Boom", "it broke", true);
}

static void boom_default(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_fail(ctx, NULL, NULL, false);
}

static void fail_then_succeed(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_fail(ctx, "app.Early", "ignored", true);
    dt_activity_set_output(ctx, "", 0); /* empty output, present */
}

static const dt__activity_def k_defs[] = {
    {"echo", "q", echo, "echo:"},
    {"noop", "q", noop, NULL},
    {"boom", "q", boom, NULL},
    {"boom_default", "q", boom_default, NULL},
    {"fail_then_succeed", "q", fail_then_succeed, NULL},
    {"echo", NULL, echo, "default:"}, /* the same name on another queue */
};

/* ---- fixture: one hub and one pool for the whole group ---- */

typedef struct fixture {
    ta_env e;
    dt__activity_pool *p;
} fixture;

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    ta_env_open(&f->e, NULL);
    f->p = ta_pool(&f->e, k_defs, DT__ARRAY_LEN(k_defs), 2, 0, 0, NULL);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    dt__activity_pool_stop(f->p, 5000);
    dt__activity_pool_destroy(f->p);
    ta_env_close(&f->e);
    free(f);
    return 0;
}

/* ---- tests ---- */

static void test_output(void **state)
{
    fixture *f = *state;
    int64_t before = dt__now_ms();
    ta_request(&f->e, "q", "inst-1", "echo", 7, "hi");
    Dtpb__OrchestrationMessage *m = ta_result(&f->e, 5000);
    assert_string_equal(m->instance_id, "inst-1");
    assert_string_equal(m->execution_id, "e1");
    assert_string_equal(m->dedupe_id, "inst-1/e1/res/7");
    assert_int_equal(m->event->event_id, -1);
    assert_non_null(m->event->timestamp);
    int64_t ts = m->event->timestamp->seconds * 1000 + m->event->timestamp->nanos / 1000000;
    assert_true(ts >= before - 1000 && ts <= dt__now_ms() + 1000);
    Dtpb__TaskCompletedEvent *tc = ta_completed(m);
    assert_int_equal(tc->task_scheduled_id, 7);
    assert_non_null(tc->result);
    assert_int_equal(tc->result->value.len, 7);
    assert_memory_equal(tc->result->value.data, "echo:hi", 7);
    pthread_mutex_lock(&g_seen.mu);
    assert_string_equal(g_seen.name, "echo");
    assert_string_equal(g_seen.instance, "inst-1");
    assert_int_equal(g_seen.task_id, 7);
    assert_int_equal(g_seen.delivery, 1);
    assert_false(g_seen.input_null);
    assert_int_equal(g_seen.input_len, 2);
    assert_true(g_seen.input_terminated);
    pthread_mutex_unlock(&g_seen.mu);
    ta_wait_stream_msgs(&f->e, DT_BROKER_STREAM_ACT, 0, 3000); /* the work item was acked */
}

static void test_default_queue(void **state)
{
    fixture *f = *state;
    ta_request(&f->e, "default", "inst-2", "echo", 1, "x");
    Dtpb__TaskCompletedEvent *tc = ta_completed(ta_result(&f->e, 5000));
    assert_int_equal(tc->result->value.len, 9);
    assert_memory_equal(tc->result->value.data, "default:x", 9);
}

static void test_no_input_no_output(void **state)
{
    fixture *f = *state;
    ta_request(&f->e, "q", "inst-3", "noop", 0, NULL);
    Dtpb__TaskCompletedEvent *tc = ta_completed(ta_result(&f->e, 5000));
    assert_int_equal(tc->task_scheduled_id, 0);
    assert_null(tc->result);
    pthread_mutex_lock(&g_seen.mu);
    assert_true(g_seen.input_null);
    assert_int_equal(g_seen.input_len, 0);
    pthread_mutex_unlock(&g_seen.mu);
    /* An empty but present input is not "no input". */
    ta_request(&f->e, "q", "inst-3", "noop", 1, "");
    ta_completed(ta_result(&f->e, 5000));
    pthread_mutex_lock(&g_seen.mu);
    assert_false(g_seen.input_null);
    assert_int_equal(g_seen.input_len, 0);
    assert_true(g_seen.input_terminated);
    pthread_mutex_unlock(&g_seen.mu);
}

static void test_failure(void **state)
{
    fixture *f = *state;
    ta_request(&f->e, "q", "inst-4", "boom", 3, "in");
    Dtpb__OrchestrationMessage *m = ta_result(&f->e, 5000);
    assert_string_equal(m->dedupe_id, "inst-4/e1/res/3");
    Dtpb__TaskFailedEvent *tf = ta_failed(m);
    assert_int_equal(tf->task_scheduled_id, 3);
    assert_string_equal(tf->failure_details->error_type, "app.Boom");
    assert_string_equal(tf->failure_details->error_message, "it broke");
    assert_true(tf->failure_details->is_non_retriable);

    ta_request(&f->e, "q", "inst-4", "boom_default", 4, NULL);
    tf = ta_failed(ta_result(&f->e, 5000));
    assert_string_equal(tf->failure_details->error_type, "dt.ActivityFailed");
    assert_string_equal(tf->failure_details->error_message, "");
    assert_false(tf->failure_details->is_non_retriable);
}

static void test_last_call_wins(void **state)
{
    fixture *f = *state;
    ta_request(&f->e, "q", "inst-5", "fail_then_succeed", 5, NULL);
    Dtpb__TaskCompletedEvent *tc = ta_completed(ta_result(&f->e, 5000));
    assert_non_null(tc->result); /* present, empty */
    assert_int_equal(tc->result->value.len, 0);
}

static void test_start_errors(void **state)
{
    fixture *f = *state;
    char err[512];
    dt__activity_pool *p = NULL;
    dt__activity_def dup[] = {{"a", "q", noop, NULL}, {"a", "q", noop, NULL}};
    dt__activity_pool_config c = {.broker = f->e.b, .hub = f->e.hub, .defs = dup, .n_defs = 2};
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_EEXIST);
    assert_non_null(strstr(err, "registered twice"));
    dt__activity_def badq[] = {{"a", "bad.queue", noop, NULL}};
    c.defs = badq;
    c.n_defs = 1;
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_EINVAL);
    assert_non_null(strstr(err, "bad.queue"));
    dt__activity_def nofn[] = {{"a", "q", NULL, NULL}};
    c.defs = nofn;
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_EINVAL);
    c.defs = k_defs;
    c.timeout_ms = 50;
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_EINVAL);
    assert_non_null(strstr(err, "timeout_ms"));
    c.timeout_ms = 0;
    c.defs = k_defs;
    c.hub = "no_such_hub_anywhere";
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_ENOTFOUND);
    c.hub = "bad hub";
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_EINVAL);
    assert_null(p);
    /* No activities: a pool that does nothing, stops and frees cleanly. */
    c.hub = f->e.hub;
    c.n_defs = 0;
    assert_int_equal(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_OK);
    dt__activity_pool_stop(p, 0);
    dt__activity_pool_stop(p, 0);
    dt__activity_pool_destroy(p);
    dt__activity_pool_destroy(NULL);
}

static void test_durable_names(void **state)
{
    (void)state;
    char buf[DT_BROKER_NAME_BUF];
    TB_EXPECT(dt__act_durable_name("default", buf, sizeof(buf)), DT_OK, "name");
    assert_string_equal(buf, "act_default");
    TB_EXPECT(dt__act_durable_name("a-b_C9", buf, sizeof(buf)), DT_OK, "name");
    assert_string_equal(buf, "act_a-b_C9");
    char other[DT_BROKER_NAME_BUF];
    TB_EXPECT(dt__act_durable_name("a/b", buf, sizeof(buf)), DT_OK, "name");
    TB_EXPECT(dt__act_durable_name("a:b", other, sizeof(other)), DT_OK, "name");
    assert_int_equal(strncmp(buf, "act_a_b_", 8), 0);
    assert_string_not_equal(buf, other); /* sanitized alike, told apart by the hash */
    char longq[200];
    memset(longq, 'x', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    TB_EXPECT(dt__act_durable_name(longq, buf, sizeof(buf)), DT_OK, "name");
    assert_true(strlen(buf) <= 128);
    assert_int_equal(dt__act_durable_name("abc", buf, 5), DT_ETOOLARGE);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_default_queue),
        cmocka_unit_test(test_no_input_no_output),
        cmocka_unit_test(test_failure),
        cmocka_unit_test(test_last_call_wins),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_durable_names),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return tb_finish(failed);
}
