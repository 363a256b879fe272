/* Publishing against a real nats-server: sync publish with dedupe, errors, the async publisher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_broker.h"

typedef struct fixture {
    dt_broker *b;
    char hub[64];
    char orch0[DT_BROKER_NAME_BUF]; /* dt.<hub>.orch.0 */
    char act[DT_BROKER_NAME_BUF];   /* dt.<hub>.act.q */
    char act_stream[DT_BROKER_NAME_BUF];
    char nowhere[DT_BROKER_NAME_BUF]; /* a subject no stream captures */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = tb_connect();
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.storage = DT_BROKER_STORAGE_MEMORY;
    c.max_msg_size = 4096;
    tb_hub(f->b, "pub", &c, f->hub, sizeof(f->hub));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_ORCH, "0", f->orch0, sizeof(f->orch0));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_ACT, "q", f->act, sizeof(f->act));
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ACT, f->act_stream, sizeof(f->act_stream));
    snprintf(f->nowhere, sizeof(f->nowhere), "dtx.%s.nowhere", f->hub);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tb_hub_delete(f->b, f->hub);
    dt_broker_close(f->b);
    free(f);
    return 0;
}

static uint64_t stream_msgs(fixture *f, const char *stream)
{
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(f->b, stream, &si), DT_OK, dt_broker_errmsg(f->b));
    return si.msgs;
}

static void test_sync_dedupe(void **state)
{
    fixture *f = *state;
    dt_broker_header h[] = {{"Dt-Instance", "inst-1"}, {"Dt-Kind", "start"}};
    dt_broker_outmsg m = {.subject = f->orch0,
                          .msg_id = "inst-1/exec-1/1",
                          .headers = h,
                          .nheaders = 2,
                          .data = "payload",
                          .len = 7};
    dt_broker_puback a1 = {0}, a2 = {0};
    TB_EXPECT(dt_broker_publish(f->b, &m, &a1), DT_OK, dt_broker_errmsg(f->b));
    assert_false(a1.duplicate);
    assert_true(a1.stream_seq > 0);
    TB_EXPECT(dt_broker_publish(f->b, &m, &a2), DT_OK, dt_broker_errmsg(f->b));
    assert_true(a2.duplicate);
    assert_int_equal(a2.stream_seq, a1.stream_seq);
    m.msg_id = "inst-1/exec-1/2";
    TB_EXPECT(dt_broker_publish(f->b, &m, &a2), DT_OK, dt_broker_errmsg(f->b));
    assert_false(a2.duplicate);
    assert_int_equal(a2.stream_seq, a1.stream_seq + 1);
}

/* A core publish carries msg_id as Nats-Msg-Id: a stream capturing the subject drops a repeat of
 * a message published through JetStream before (the outbox's plain re-send after a timeout). */
static void test_core_publish_dedupe(void **state)
{
    fixture *f = *state;
    dt_broker_outmsg m = {.subject = f->act, .data = "fx", .len = 2};
    uint64_t before = stream_msgs(f, f->act_stream);
    const char *ids[] = {"inst-2/exec-1/pub/5", "inst-2/exec-1/pub/6"};
    for (int i = 0; i < 2; i++) {
        m.msg_id = ids[i];
        TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_OK, dt_broker_errmsg(f->b));
        TB_EXPECT(dt_broker_publish_core(f->b, &m), DT_OK, dt_broker_errmsg(f->b));
    }
    /* A JetStream publish behind them on the same connection: once its PubAck is in, the
     * stream has processed the plain ones too (one connection, one order). */
    m.msg_id = "inst-2/exec-1/pub/7";
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_OK, dt_broker_errmsg(f->b));
    assert_int_equal(stream_msgs(f, f->act_stream), before + 3);
    m.msg_id = "inst-2/exec-1/pub/8"; /* a plain publish of a new identity is stored */
    TB_EXPECT(dt_broker_publish_core(f->b, &m), DT_OK, dt_broker_errmsg(f->b));
    m.msg_id = "inst-2/exec-1/pub/9";
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_OK, dt_broker_errmsg(f->b));
    assert_int_equal(stream_msgs(f, f->act_stream), before + 5);
}

static void test_sync_errors(void **state)
{
    fixture *f = *state;
    dt_broker_outmsg m = {.subject = f->nowhere, .data = "x", .len = 1};
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_EBROKER, dt_broker_errmsg(f->b));
    assert_non_null(strstr(dt_broker_errmsg(f->b), "no responders"));

    /* Over the hub's max_msg_size (4096) but under the server's max payload. */
    static char big[8192];
    memset(big, 'b', sizeof(big));
    m = (dt_broker_outmsg){.subject = f->orch0, .data = big, .len = sizeof(big)};
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_ETOOLARGE, dt_broker_errmsg(f->b));

    /* Over the server's max payload: refused by the client library itself. */
    size_t huge_len = (size_t)dt_broker_max_payload(f->b) + 1;
    char *huge = calloc(1, huge_len);
    m.data = huge;
    m.len = huge_len;
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_ETOOLARGE, dt_broker_errmsg(f->b));
    free(huge);

    m = (dt_broker_outmsg){.subject = NULL};
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_EINVAL, dt_broker_errmsg(f->b));
}

static void test_sync_expectations(void **state)
{
    fixture *f = *state;
    char subj[DT_BROKER_NAME_BUF];
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_DEAD, "fence", subj, sizeof(subj));
    dt_broker_outmsg m = {.subject = subj, .data = "1", .len = 1, .expect_no_message = true};
    dt_broker_puback a = {0};
    TB_EXPECT(dt_broker_publish(f->b, &m, &a), DT_OK, dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_ECONFLICT, dt_broker_errmsg(f->b));
    m.expect_no_message = false;
    m.expect_last_subject_seq = a.stream_seq + 100;
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_ECONFLICT, dt_broker_errmsg(f->b));
    m.expect_last_subject_seq = a.stream_seq;
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_OK, dt_broker_errmsg(f->b));
}

/* Reads back the last message on `subject` of the hub's LOG stream and checks what the header
 * block the adapter wrote for it says: caller headers in order (the first of a repeated name),
 * CR/LF in a value as spaces, and msg_id replacing a caller Nats-Msg-Id. (No empty value: nats.c
 * 3.4.1's header parser then takes the next line for it, whoever wrote the block.) */
static void expect_stored_headers(fixture *f, const char *subject, const char *msg_id,
                                  const char *data)
{
    char log[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_LOG, log, sizeof(log));
    dt_broker_msg *m = NULL;
    TB_EXPECT(dt_broker_stream_get(f->b, log, subject, DT_BROKER_GET_LAST, 0, &m), DT_OK,
              dt_broker_errmsg(f->b));
    const char *v = NULL;
    TB_EXPECT(dt_broker_msg_header(m, "Dt-A", &v), DT_OK, subject);
    assert_string_equal(v, "one");
    TB_EXPECT(dt_broker_msg_header(m, "Dt-B", &v), DT_OK, subject);
    assert_string_equal(v, "line  break");
    TB_EXPECT(dt_broker_msg_header(m, "Nats-Msg-Id", &v), DT_OK, subject);
    assert_string_equal(v, msg_id);
    assert_int_equal(dt_broker_msg_header(m, "Dt-None", &v), DT_ENOTFOUND);
    assert_int_equal(dt_broker_msg_len(m), strlen(data));
    assert_memory_equal(dt_broker_msg_data(m), data, strlen(data));
    dt_broker_msg_destroy(m);
}

/* Every publish path writes the same header block (broker-adapter/outmsg.c). */
static void test_header_block(void **state)
{
    fixture *f = *state;
    char subj[3][DT_BROKER_NAME_BUF];
    const char *tails[] = {"hdr.sync", "hdr.async", "hdr.core"};
    for (int i = 0; i < 3; i++) {
        dt_broker_subject(f->hub, DT_BROKER_SUBJ_LOG, tails[i], subj[i], sizeof(subj[i]));
    }
    dt_broker_header h[] = {{"Dt-A", "one"},
                            {"Nats-Msg-Id", "the caller's"},
                            {"Dt-B", "line\r\nbreak"},
                            {"Dt-A", "two"}};
    dt_broker_outmsg m = {.subject = subj[0],
                          .msg_id = "hdr-1",
                          .headers = h,
                          .nheaders = 4,
                          .data = "p-sync",
                          .len = 6,
                          .expect_no_message = true};
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_OK, dt_broker_errmsg(f->b));
    expect_stored_headers(f, subj[0], "hdr-1", "p-sync");

    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    m = (dt_broker_outmsg){.subject = subj[1],
                           .msg_id = "hdr-2",
                           .headers = h,
                           .nheaders = 4,
                           .data = "p-async",
                           .len = 7,
                           .expect_no_message = true};
    TB_EXPECT(dt_broker_publisher_add(p, &m, 1), DT_OK, dt_broker_publisher_errmsg(p));
    m.msg_id = "hdr-3"; /* the expectation is in its header block too: the second one fails */
    TB_EXPECT(dt_broker_publisher_add(p, &m, 2), DT_OK, dt_broker_publisher_errmsg(p));
    assert_int_equal(dt_broker_publisher_wait(p, 10000), DT_ECONFLICT);
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].status, DT_OK);
    assert_int_equal(r[1].status, DT_ECONFLICT);
    expect_stored_headers(f, subj[1], "hdr-2", "p-async");

    m = (dt_broker_outmsg){
        .subject = subj[2], .msg_id = "hdr-4", .headers = h, .nheaders = 4, .data = "p", .len = 1};
    TB_EXPECT(dt_broker_publish_core(f->b, &m), DT_OK, dt_broker_errmsg(f->b));
    m.subject = subj[0]; /* behind it on the same connection: once stored, so is the core one */
    m.msg_id = "hdr-5";
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_OK, dt_broker_errmsg(f->b));
    expect_stored_headers(f, subj[2], "hdr-4", "p");

    /* A name that would break the block is refused before anything is sent. */
    dt_broker_header bad[] = {{"Dt:A", "x"}};
    m = (dt_broker_outmsg){.subject = subj[0], .headers = bad, .nheaders = 1};
    TB_EXPECT(dt_broker_publish(f->b, &m, NULL), DT_EINVAL, dt_broker_errmsg(f->b));
    assert_non_null(strstr(dt_broker_errmsg(f->b), "header name"));
    bad[0].name = "Dt-A\r\nX";
    assert_int_equal(dt_broker_publisher_add(p, &m, 3), DT_EINVAL);
    dt_broker_publisher_destroy(p);
}

static void test_async_5000(void **state)
{
    fixture *f = *state;
    enum { N = 5000 };
    dt_broker_publisher_options o;
    dt_broker_publisher_options_init(&o);
    o.window = 512;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, &o, &p), DT_OK, dt_broker_errmsg(f->b));
    uint64_t before = stream_msgs(f, f->act_stream);
    char id[64], body[200];
    memset(body, 'p', sizeof(body));
    int64_t t0 = tb_now_ms();
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "a5000/%d", i);
        dt_broker_outmsg m = {.subject = f->act, .msg_id = id, .data = body, .len = sizeof(body)};
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)(1000 + i)), DT_OK,
                  dt_broker_publisher_errmsg(p));
    }
    TB_EXPECT(dt_broker_publisher_wait(p, 10000), DT_OK, dt_broker_publisher_errmsg(p));
    int64_t ms = tb_now_ms() - t0;
    print_message("async publisher: %d messages in %lld ms (%.0f msg/s, window %zu, ASan build)\n",
                  N, (long long)ms, ms > 0 ? N * 1000.0 / (double)ms : 0.0, o.window);
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].tag, 1000 + i);
        assert_int_equal(r[i].status, DT_OK);
        assert_false(r[i].duplicate);
        assert_null(r[i].error);
        if (i > 0) {
            assert_true(r[i].stream_seq > r[i - 1].stream_seq);
        }
    }
    assert_int_equal(dt_broker_publisher_inflight(p), 0);
    assert_int_equal(stream_msgs(f, f->act_stream), before + N);

    /* A re-publish of the same identities is all duplicates (the crash-recovery case). */
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "a5000/%d", i);
        dt_broker_outmsg m = {.subject = f->act, .msg_id = id, .data = body, .len = sizeof(body)};
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(p));
    }
    TB_EXPECT(dt_broker_publisher_wait(p, 10000), DT_OK, dt_broker_publisher_errmsg(p));
    r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 100);
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].duplicate);
    }
    assert_int_equal(stream_msgs(f, f->act_stream), before + N);
    dt_broker_publisher_destroy(p);
}

/* Failures are reported per message, so the caller keeps exactly the failed outbox rows. */
static void test_async_per_message_failure(void **state)
{
    fixture *f = *state;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    static char big[8192];
    memset(big, 'b', sizeof(big));
    for (int i = 0; i < 30; i++) {
        dt_broker_outmsg m = {.subject = f->orch0, .data = "ok", .len = 2};
        if (i % 3 == 1) {
            m.subject = f->nowhere;
        } else if (i % 3 == 2) {
            m.data = big; /* over the stream's max_msg_size */
            m.len = sizeof(big);
        }
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(p));
    }
    dt_status st = dt_broker_publisher_wait(p, 10000);
    assert_true(st == DT_EBROKER || st == DT_ETOOLARGE);
    assert_non_null(strstr(dt_broker_publisher_errmsg(p), "20 of 30 messages failed"));
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 30);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].tag, i);
        if (i % 3 == 0) {
            TB_EXPECT(r[i].status, DT_OK, r[i].error != NULL ? r[i].error : "");
        } else if (i % 3 == 1) {
            TB_EXPECT(r[i].status, DT_EBROKER, r[i].error != NULL ? r[i].error : "");
            assert_non_null(strstr(r[i].error, "no responders"));
        } else {
            TB_EXPECT(r[i].status, DT_ETOOLARGE, r[i].error != NULL ? r[i].error : "");
        }
    }
    /* A payload over the server's limit is refused by add() and is not part of the batch. */
    size_t huge_len = (size_t)dt_broker_max_payload(f->b) + 1;
    char *huge = calloc(1, huge_len);
    dt_broker_outmsg hm = {.subject = f->orch0, .data = huge, .len = huge_len};
    TB_EXPECT(dt_broker_publisher_add(p, &hm, 99), DT_ETOOLARGE, dt_broker_publisher_errmsg(p));
    free(huge);
    dt_broker_outmsg ok = {.subject = f->orch0, .data = "ok", .len = 2};
    TB_EXPECT(dt_broker_publisher_add(p, &ok, 100), DT_OK, dt_broker_publisher_errmsg(p));
    TB_EXPECT(dt_broker_publisher_wait(p, 10000), DT_OK, dt_broker_publisher_errmsg(p));
    r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].tag, 100);
    dt_broker_publisher_destroy(p);
}

/* A window far smaller than the batch: add() waits for room instead of failing. */
static void test_async_small_window(void **state)
{
    fixture *f = *state;
    dt_broker_publisher_options o;
    dt_broker_publisher_options_init(&o);
    o.window = 4;
    o.max_batch = 2000;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, &o, &p), DT_OK, dt_broker_errmsg(f->b));
    for (int i = 0; i < 2000; i++) {
        dt_broker_outmsg m = {.subject = f->act, .data = "w", .len = 1};
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(p));
        assert_true(dt_broker_publisher_inflight(p) <= 4);
    }
    dt_broker_outmsg m = {.subject = f->act, .data = "w", .len = 1};
    TB_EXPECT(dt_broker_publisher_add(p, &m, 2000), DT_EBUSY, dt_broker_publisher_errmsg(p));
    TB_EXPECT(dt_broker_publisher_wait(p, 10000), DT_OK, dt_broker_publisher_errmsg(p));
    size_t n = 0;
    dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 2000);
    dt_broker_publisher_destroy(p);
}

/* Destroying a publisher with messages in flight neither leaks nor crashes. */
/* nats.c 3.4.1 crashes when asked for the pending list of a context that never published: a
 * publisher created and destroyed unused (a partition that lost its lease at once) must not. */
static void test_async_destroy_unused(void **state)
{
    fixture *f = *state;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    assert_int_equal(dt_broker_publisher_inflight(p), 0);
    dt_broker_publisher_destroy(p);
}

static void test_async_destroy_inflight(void **state)
{
    fixture *f = *state;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    for (int i = 0; i < 500; i++) {
        dt_broker_outmsg m = {.subject = f->act, .data = "d", .len = 1};
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(p));
    }
    dt_broker_publisher_destroy(p);
    dt_broker_publisher_destroy(NULL);
    TB_EXPECT(dt_broker_flush(f->b, 5000), DT_OK, dt_broker_errmsg(f->b));
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_dedupe),
        cmocka_unit_test(test_core_publish_dedupe),
        cmocka_unit_test(test_sync_errors),
        cmocka_unit_test(test_sync_expectations),
        cmocka_unit_test(test_header_block),
        cmocka_unit_test(test_async_5000),
        cmocka_unit_test(test_async_per_message_failure),
        cmocka_unit_test(test_async_small_window),
        cmocka_unit_test(test_async_destroy_inflight),
        cmocka_unit_test(test_async_destroy_unused),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return tb_finish(failed);
}
