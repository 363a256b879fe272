/*
 * Core NATS against a real nats-server: request/reply (the query scatter path), queue groups,
 * subscription teardown guarantees, and the guard against acking a core message (fact 9).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_broker.h"

static int setup(void **state)
{
    *state = tb_connect();
    return 0;
}

static int teardown(void **state)
{
    dt_broker_close(*state);
    return 0;
}

typedef struct responder {
    int calls; /* atomic */
    int bad;   /* atomic: unexpected results seen on the callback thread (asserts there would
                  longjmp across threads) */
    const char *answer;
    int sleep_ms;
} responder;

static void check(responder *r, bool ok)
{
    if (!ok) {
        __atomic_add_fetch(&r->bad, 1, __ATOMIC_ACQ_REL);
    }
}

/* Echoes "<answer>:<request>" with the request's Dt-Req header copied back. */
static void respond(dt_broker_msg *m, void *ctx)
{
    responder *r = ctx;
    if (r->sleep_ms > 0) {
        tb_sleep_ms(r->sleep_ms);
    }
    char body[128];
    int n = snprintf(body, sizeof(body), "%s:%.*s", r->answer, (int)dt_broker_msg_len(m),
                     (const char *)dt_broker_msg_data(m));
    const char *req = "";
    (void)dt_broker_msg_header(m, "Dt-Req", &req);
    dt_broker_header h = {"Dt-Req", req};
    dt_broker_outmsg out = {.headers = &h, .nheaders = 1, .data = body, .len = (size_t)n};
    if (dt_broker_msg_reply(m) != NULL) {
        check(r, dt_broker_msg_respond(m, &out) == DT_OK);
    }
    /* Core messages cannot be acknowledged (nats.c would crash, NATS-NOTES fact 9). */
    check(r, dt_broker_msg_ack(m) == DT_ESTATE);
    check(r, dt_broker_msg_term(m) == DT_ESTATE);
    dt_broker_msg_meta meta;
    check(r, dt_broker_msg_meta_get(m, &meta) == DT_ESTATE);
    dt_broker_msg_destroy(m);
    __atomic_add_fetch(&r->calls, 1, __ATOMIC_ACQ_REL);
}

static void test_request_reply(void **state)
{
    dt_broker *b = *state;
    char subject[128];
    tb_unique(subject, sizeof(subject), "dt.core.query");
    responder r = {0, 0, "p0", 0};
    dt_broker_sub *s = NULL;
    TB_EXPECT(dt_broker_subscribe(b, subject, NULL, respond, &r, &s), DT_OK, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_flush(b, 2000), DT_OK, dt_broker_errmsg(b)); /* subscription is live */

    dt_broker_header h = {"Dt-Req", "r-1"};
    dt_broker_outmsg q = {
        .subject = subject, .headers = &h, .nheaders = 1, .data = "list", .len = 4};
    dt_broker_msg *reply = NULL;
    TB_EXPECT(dt_broker_request(b, &q, 2000, &reply), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(dt_broker_msg_len(reply), 7);
    assert_memory_equal(dt_broker_msg_data(reply), "p0:list", 7);
    const char *v = NULL;
    TB_EXPECT(dt_broker_msg_header(reply, "Dt-Req", &v), DT_OK, "header");
    assert_string_equal(v, "r-1");
    assert_int_equal(dt_broker_msg_ack(reply), DT_ESTATE);
    dt_broker_msg_destroy(reply);
    dt_broker_sub_destroy(s);
    assert_int_equal(__atomic_load_n(&r.calls, __ATOMIC_ACQUIRE), 1);
    assert_int_equal(r.bad, 0);

    /* Nobody listens any more: no responders, reported at once as DT_ENOTFOUND. */
    int64_t t0 = tb_now_ms();
    TB_EXPECT(dt_broker_request(b, &q, 2000, &reply), DT_ENOTFOUND, dt_broker_errmsg(b));
    assert_true(tb_now_ms() - t0 < 1000);
}

static void test_request_timeout(void **state)
{
    dt_broker *b = *state;
    char subject[128];
    tb_unique(subject, sizeof(subject), "dt.core.slow");
    responder r = {0, 0, "slow", 600};
    dt_broker_sub *s = NULL;
    TB_EXPECT(dt_broker_subscribe(b, subject, NULL, respond, &r, &s), DT_OK, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_flush(b, 2000), DT_OK, dt_broker_errmsg(b));
    dt_broker_outmsg q = {.subject = subject, .data = "x", .len = 1};
    dt_broker_msg *reply = NULL;
    TB_EXPECT(dt_broker_request(b, &q, 200, &reply), DT_ETIMEOUT, dt_broker_errmsg(b));
    /* destroy waits for the running callback: afterwards `r` may go away. */
    dt_broker_sub_destroy(s);
    assert_int_equal(__atomic_load_n(&r.calls, __ATOMIC_ACQUIRE), 1);
}

/* Members of a queue group share the messages; each message goes to one member. */
static void test_queue_group(void **state)
{
    dt_broker *b = *state;
    char subject[128];
    tb_unique(subject, sizeof(subject), "dt.core.q");
    responder r1 = {0, 0, "a", 0}, r2 = {0, 0, "b", 0};
    dt_broker_sub *s1 = NULL, *s2 = NULL;
    TB_EXPECT(dt_broker_subscribe(b, subject, "workers", respond, &r1, &s1), DT_OK,
              dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_subscribe(b, subject, "workers", respond, &r2, &s2), DT_OK,
              dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_flush(b, 2000), DT_OK, dt_broker_errmsg(b));
    for (int i = 0; i < 200; i++) {
        dt_broker_outmsg m = {.subject = subject, .data = "e", .len = 1};
        TB_EXPECT(dt_broker_publish_core(b, &m), DT_OK, dt_broker_errmsg(b));
    }
    TB_EXPECT(dt_broker_flush(b, 2000), DT_OK, dt_broker_errmsg(b));
    int64_t end = tb_now_ms() + 5000;
    while (__atomic_load_n(&r1.calls, __ATOMIC_ACQUIRE) +
                   __atomic_load_n(&r2.calls, __ATOMIC_ACQUIRE) <
               200 &&
           tb_now_ms() < end) {
        tb_sleep_ms(10);
    }
    dt_broker_sub_destroy(s1);
    dt_broker_sub_destroy(s2);
    assert_int_equal(r1.calls + r2.calls, 200);
    assert_int_equal(r1.bad + r2.bad, 0);
    assert_true(r1.calls > 0 && r2.calls > 0);
    dt_broker_sub_destroy(NULL);
}

static void test_bad_arguments(void **state)
{
    dt_broker *b = *state;
    dt_broker_sub *s = NULL;
    TB_EXPECT(dt_broker_subscribe(b, "", NULL, respond, NULL, &s), DT_EINVAL, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_subscribe(b, "a.b", NULL, NULL, NULL, &s), DT_EINVAL, dt_broker_errmsg(b));
    dt_broker_outmsg m = {.subject = "a.b", .data = NULL, .len = 3};
    TB_EXPECT(dt_broker_publish_core(b, &m), DT_EINVAL, dt_broker_errmsg(b));
    dt_broker_header h = {NULL, "v"};
    m = (dt_broker_outmsg){.subject = "a.b", .headers = &h, .nheaders = 1};
    TB_EXPECT(dt_broker_publish_core(b, &m), DT_EINVAL, dt_broker_errmsg(b));
    dt_broker_msg *reply = NULL;
    m = (dt_broker_outmsg){.subject = "a.b"};
    TB_EXPECT(dt_broker_request(b, &m, 0, &reply), DT_EINVAL, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_flush(b, 0), DT_EINVAL, dt_broker_errmsg(b));
    char copy[256];
    dt_broker_errmsg_copy(b, copy, sizeof(copy));
    assert_string_equal(copy, dt_broker_errmsg(b));
    assert_true(dt_broker_is_connected(b));
    assert_true(dt_broker_max_payload(b) >= 1024 * 1024);
}

static void test_connect_failure(void **state)
{
    (void)state;
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = "nats://127.0.0.1:1"; /* nothing listens on port 1 */
    o.connect_timeout_ms = 500;
    dt_broker *b = NULL;
    char err[256] = "";
    int64_t t0 = tb_now_ms();
    TB_EXPECT(dt_broker_connect(&o, &b, err, sizeof(err)), DT_EBROKER, err);
    assert_true(tb_now_ms() - t0 < 5000);
    assert_null(b);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    o.reconnect_min_ms = 0;
    TB_EXPECT(dt_broker_connect(&o, &b, err, sizeof(err)), DT_EINVAL, err);
    dt_broker_close(NULL);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_reply),   cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_queue_group),     cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_connect_failure),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return tb_finish(failed);
}
