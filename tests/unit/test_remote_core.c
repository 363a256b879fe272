/*
 * runtime/remote's core without a broker (remote.c): work items queued on a connection, the
 * in-flight bound (poll holds back while max_inflight items are unanswered and the stream is
 * woken when an answer frees a slot), matching by token and by instance/task ID, late answers,
 * abandon, disconnect and timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/alloc.h"
#include "remote/remote_priv_int.h"

static int wakes;

static void wake(void *arg)
{
    (void)arg;
    wakes++;
}

/* An activity call for (instance, task) queued on r, with a recognisable item. */
static dt__remote_call *queue_act(dt__remote *r, const char *instance, int32_t task)
{
    dt__remote_call *c = NULL;
    assert_int_equal(dt__remote_call_new(r, false, instance, &c), DT_OK);
    c->task_id = task;
    Dtpb__ActivityRequest req = DTPB__ACTIVITY_REQUEST__INIT;
    req.instance_id = (char *)instance;
    req.name = "A";
    req.task_id = task;
    assert_int_equal(dt__remote_pack_act_item(&req, c->token, &c->item, &c->len), DT_OK);
    assert_int_equal(dt__remote_call_queue(c, 60000), DT_OK);
    return c;
}

static int32_t poll_task(dt__remote_conn *k, char *token, size_t token_len)
{
    uint8_t *item = NULL;
    size_t len = 0;
    dt_status st = dt__remote_poll(k, &item, &len);
    if (st != DT_OK) {
        return -1;
    }
    dt__arena *a = dt__arena_create(0);
    Dtpb__Remote__WorkItem *wi = (Dtpb__Remote__WorkItem *)dt__arena_unpack(
        a, &dtpb__remote__work_item__descriptor, len, item);
    assert_non_null(wi);
    int32_t t = wi->activity_request->task_id;
    if (token != NULL) {
        snprintf(token, token_len, "%s", wi->completion_token);
    }
    dt__arena_destroy(a);
    dt_free(item);
    return t;
}

static dt_status answer(dt__remote *r, const char *instance, int32_t task, const char *token)
{
    Dtpb__Remote__ActivityResponse resp = DTPB__REMOTE__ACTIVITY_RESPONSE__INIT;
    resp.instance_id = (char *)instance;
    resp.task_id = task;
    resp.completion_token = (char *)token;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&resp.base, buf);
    return dt__remote_complete_activity(r, buf, n);
}

static dt__remote *make(size_t max_inflight)
{
    dt__remote_options o;
    dt__remote_options_init(&o);
    o.max_inflight = max_inflight;
    dt__remote *r = NULL;
    assert_int_equal(dt__remote_create(&o, &r), DT_OK);
    return r;
}

static void test_inflight_bound(void **state)
{
    (void)state;
    dt__remote *r = make(2);
    dt__remote_conn *k = NULL;
    assert_int_equal(dt__remote_connect(r, wake, NULL, &k), DT_OK);
    wakes = 0;
    dt__remote_call *c[3] = {queue_act(r, "i", 1), queue_act(r, "i", 2), queue_act(r, "i", 3)};
    assert_int_equal(wakes, 3);
    char tok[24];
    assert_int_equal(poll_task(k, tok, sizeof tok), 1);
    assert_int_equal(poll_task(k, NULL, 0), 2);
    assert_int_equal(poll_task(k, NULL, 0), -1); /* two unanswered: held back */
    wakes = 0;
    assert_int_equal(answer(r, "i", 1, tok), DT_OK); /* by token */
    assert_int_equal(wakes, 1);                      /* a slot freed: the stream polls again */
    assert_int_equal(dt__remote_call_wait(c[0], NULL, 0), DT_OK);
    assert_int_equal(poll_task(k, NULL, 0), 3);
    assert_int_equal(answer(r, "i", 3, ""), DT_OK);        /* no token: by instance and task */
    assert_int_equal(answer(r, "i", 3, ""), DT_ENOTFOUND); /* answered already */
    assert_int_equal(answer(r, "other", 2, ""), DT_ENOTFOUND);
    assert_int_equal(dt__remote_call_wait(c[2], NULL, 0), DT_OK);
    /* Still unanswered: a bounded wait says so and keeps the call. */
    assert_int_equal(dt__remote_call_wait(c[1], NULL, 50), DT_EBUSY);
    dt__remote_disconnect(k); /* its sent item is abandoned */
    assert_int_equal(dt__remote_call_wait(c[1], NULL, 0), DT_ECLOSED);
    assert_int_equal(answer(r, "i", 2, ""), DT_ENOTFOUND);
    for (int i = 0; i < 3; i++) {
        dt__remote_call_free(c[i]);
    }
    dt__remote_destroy(r);
}

static void test_no_connection_and_timeout(void **state)
{
    (void)state;
    dt__remote *r = make(0);
    dt__remote_call *c = NULL;
    assert_int_equal(dt__remote_call_new(r, false, "i", &c), DT_OK);
    assert_int_equal(dt__remote_call_queue(c, 1000), DT_ECLOSED); /* nobody connected */
    dt__remote_call_free(c);
    assert_false(dt__remote_await_conn(r, 20, NULL));
    dt__remote_conn *k = NULL;
    assert_int_equal(dt__remote_connect(r, wake, NULL, &k), DT_OK);
    assert_true(dt__remote_await_conn(r, 20, NULL));
    assert_int_equal(dt__remote_connections(r), 1);
    assert_int_equal(dt__remote_call_new(r, false, "i", &c), DT_OK);
    assert_int_equal(dt__remote_call_queue(c, 30), DT_OK);
    assert_int_equal(dt__remote_call_wait(c, NULL, 0), DT_ETIMEOUT); /* never polled */
    assert_int_equal(poll_task(k, NULL, 0), -1);                     /* withdrawn */
    dt__remote_call_free(c);
    dt__remote_disconnect(k);
    dt__remote_destroy(r);
}

static void test_abandon_and_shutdown(void **state)
{
    (void)state;
    dt__remote *r = make(0);
    dt__remote_conn *k = NULL;
    assert_int_equal(dt__remote_connect(r, wake, NULL, &k), DT_OK);
    dt__remote_call *c = queue_act(r, "i", 7);
    char tok[24];
    assert_int_equal(poll_task(k, tok, sizeof tok), 7);
    Dtpb__Remote__AbandonTaskRequest ab = DTPB__REMOTE__ABANDON_TASK_REQUEST__INIT;
    ab.completion_token = tok;
    uint8_t buf[64];
    size_t n = protobuf_c_message_pack(&ab.base, buf);
    assert_int_equal(dt__remote_abandon(r, buf, n), DT_OK);
    assert_int_equal(dt__remote_call_wait(c, NULL, 0), DT_ECLOSED);
    dt__remote_call_free(c);
    c = queue_act(r, "i", 8);
    dt__remote_shutdown(r);
    assert_int_equal(dt__remote_call_wait(c, NULL, 0), DT_ECLOSED);
    uint8_t *item = NULL;
    size_t len = 0;
    assert_int_equal(dt__remote_poll(k, &item, &len), DT_ECLOSED);
    dt__remote_conn *k2 = NULL;
    assert_int_equal(dt__remote_connect(r, wake, NULL, &k2), DT_ECLOSED);
    dt__remote_call_free(c);
    dt__remote_disconnect(k);
    dt__remote_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflight_bound),
        cmocka_unit_test(test_no_connection_and_timeout),
        cmocka_unit_test(test_abandon_and_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
