/*
 * Durable pull consumers against a real nats-server: batched fetch, acks on a work-queue stream,
 * nak (with delay), term, in-progress, redelivery, re-binding and re-creation of a consumer.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <nats/nats.h>

#include "test_broker.h"

typedef struct fixture {
    dt_broker *b;
    char hub[64];
    char orch_stream[DT_BROKER_NAME_BUF];
    char subject[DT_BROKER_NAME_BUF]; /* this test's own partition subject */
    char durable[64];
} fixture;

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = tb_connect();
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.storage = DT_BROKER_STORAGE_MEMORY;
    c.partitions = 64;
    tb_hub(f->b, "cons", &c, f->hub, sizeof(f->hub));
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, f->orch_stream, sizeof(f->orch_stream));
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    tb_hub_delete(f->b, f->hub);
    dt_broker_close(f->b);
    free(f);
    return 0;
}

/* Each test uses its own partition subject and durable (work-queue consumers may not overlap). */
static int test_setup(void **state)
{
    static unsigned next_partition;
    fixture *f = *state;
    char p[16];
    snprintf(p, sizeof(p), "%u", next_partition);
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_ORCH, p, f->subject, sizeof(f->subject));
    snprintf(f->durable, sizeof(f->durable), "p%u", next_partition++);
    return 0;
}

static dt_broker_consumer *open_consumer_ex(fixture *f, int64_t ack_wait_ms, int64_t liveness_ms)
{
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = f->orch_stream;
    cc.durable = f->durable;
    cc.filter_subject = f->subject;
    cc.ack_wait_ms = ack_wait_ms;
    cc.liveness_check_ms = liveness_ms;
    dt_broker_consumer *c = NULL;
    TB_EXPECT(dt_broker_consumer_open(f->b, &cc, &c), DT_OK, dt_broker_errmsg(f->b));
    return c;
}

static dt_broker_consumer *open_consumer(fixture *f, int64_t ack_wait_ms)
{
    return open_consumer_ex(f, ack_wait_ms, 5000);
}

/* Fetches exactly one message within timeout_ms (fails the test otherwise). Timeouts are
 * generous: the fetch returns as soon as the message is there, and a loaded machine (CI, a
 * benchmark next door) must not fail a test that checks order, not speed. */
static dt_broker_msg *fetch_one(dt_broker_consumer *c, int64_t timeout_ms)
{
    dt_broker_msg *m[1];
    size_t n = 0;
    TB_EXPECT(dt_broker_consumer_fetch(c, 1, timeout_ms, m, &n), DT_OK,
              dt_broker_consumer_errmsg(c));
    assert_int_equal(n, 1);
    return m[0];
}

static size_t fetch_none(dt_broker_consumer *c, int64_t timeout_ms)
{
    dt_broker_msg *m[4];
    size_t n = 0;
    TB_EXPECT(dt_broker_consumer_fetch(c, 4, timeout_ms, m, &n), DT_OK,
              dt_broker_consumer_errmsg(c));
    for (size_t i = 0; i < n; i++) {
        dt_broker_msg_destroy(m[i]);
    }
    return n;
}

static uint64_t deliveries(dt_broker_msg *m)
{
    dt_broker_msg_meta meta;
    TB_EXPECT(dt_broker_msg_meta_get(m, &meta), DT_OK, "meta");
    return meta.deliveries;
}

static uint64_t stream_msgs(fixture *f)
{
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(f->b, f->orch_stream, &si), DT_OK, dt_broker_errmsg(f->b));
    return si.msgs;
}

/* The work-queue stream drops acked messages; the server does it right after the ack. */
static void wait_stream_msgs(fixture *f, uint64_t want)
{
    int64_t end = tb_now_ms() + 3000;
    while (stream_msgs(f) != want && tb_now_ms() < end) {
        tb_sleep_ms(10);
    }
    assert_int_equal(stream_msgs(f), want);
}

static void test_fetch_batch_ack(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    uint64_t base = stream_msgs(f);
    uint64_t seqs[10];
    for (int i = 0; i < 10; i++) {
        char body[32], id[96];
        snprintf(body, sizeof(body), "m%d", i);
        snprintf(id, sizeof(id), "%s/%d", f->durable, i);
        seqs[i] = tb_publish(f->b, f->subject, id, body);
    }
    assert_int_equal(stream_msgs(f), base + 10);
    dt_broker_msg *m[64];
    size_t n = 0, got = 0;
    while (got < 10) {
        TB_EXPECT(dt_broker_consumer_fetch(c, 64, 2000, m + got, &n), DT_OK,
                  dt_broker_consumer_errmsg(c));
        assert_true(n > 0);
        got += n;
    }
    assert_int_equal(got, 10);
    for (size_t i = 0; i < got; i++) {
        char want[32];
        snprintf(want, sizeof(want), "m%zu", i);
        assert_string_equal(dt_broker_msg_subject(m[i]), f->subject);
        assert_int_equal(dt_broker_msg_len(m[i]), strlen(want));
        assert_memory_equal(dt_broker_msg_data(m[i]), want, strlen(want));
        dt_broker_msg_meta meta;
        TB_EXPECT(dt_broker_msg_meta_get(m[i], &meta), DT_OK, "meta");
        assert_int_equal(meta.stream_seq, seqs[i]);
        assert_int_equal(meta.deliveries, 1);
        assert_int_equal(meta.pending, 9 - i);
        assert_true(meta.timestamp_ns > 0);
        const char *v = NULL;
        TB_EXPECT(dt_broker_msg_header(m[i], "Nats-Msg-Id", &v), DT_OK, "header");
        assert_non_null(strstr(v, f->durable));
        assert_int_equal(dt_broker_msg_header(m[i], "No-Such", &v), DT_ENOTFOUND);
        assert_int_equal(dt_broker_msg_respond(m[i], &(dt_broker_outmsg){.subject = "x"}),
                         DT_ESTATE);
    }
    TB_EXPECT(dt_broker_msgs_ack(m, got), DT_OK, "ack");
    for (size_t i = 0; i < got; i++) {
        TB_EXPECT(dt_broker_msg_ack(m[i]), DT_OK, "second ack is a no-op");
        dt_broker_msg_destroy(m[i]);
    }
    TB_EXPECT(dt_broker_flush(f->b, 5000), DT_OK, dt_broker_errmsg(f->b));
    wait_stream_msgs(f, base);
    assert_int_equal(fetch_none(c, 100), 0);
    dt_broker_consumer_close(c);
}

static void test_empty_fetch(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    int64_t t0 = tb_now_ms();
    assert_int_equal(fetch_none(c, 300), 0);
    int64_t ms = tb_now_ms() - t0;
    assert_true(ms >= 250 && ms < 2000);
    dt_broker_msg *m[1];
    size_t n = 0;
    assert_int_equal(dt_broker_consumer_fetch(c, 0, 100, m, &n), DT_EINVAL);
    assert_int_equal(dt_broker_consumer_fetch(c, DT_BROKER_FETCH_MAX + 1, 100, m, &n), DT_EINVAL);
    assert_int_equal(dt_broker_consumer_fetch(c, 1, 0, m, &n), DT_EINVAL);
    dt_broker_consumer_close(c);
}

typedef struct late_pub {
    dt_broker *b;
    const char *subject;
} late_pub;

static void *publish_later(void *arg)
{
    late_pub *lp = arg;
    tb_sleep_ms(200);
    tb_publish(lp->b, lp->subject, NULL, "late");
    return NULL;
}

/* A fetch waiting on an empty stream returns as soon as one message arrives (not at timeout). */
static void test_fetch_wakes_early(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    dt_broker *b2 = tb_connect();
    late_pub lp = {b2, f->subject};
    pthread_t t;
    pthread_create(&t, NULL, publish_later, &lp);
    int64_t t0 = tb_now_ms();
    dt_broker_msg *got[64];
    size_t n = 0;
    TB_EXPECT(dt_broker_consumer_fetch(c, 64, 5000, got, &n), DT_OK, dt_broker_consumer_errmsg(c));
    int64_t ms = tb_now_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(n, 1);
    print_message("fetch(64, 5000 ms) returned 1 message after %lld ms\n", (long long)ms);
    assert_true(ms >= 150 && ms < 3000); /* woke by the message, not the 5 s expiry */
    TB_EXPECT(dt_broker_msg_ack_sync(got[0], 5000), DT_OK, "ack_sync");
    dt_broker_msg_destroy(got[0]);
    dt_broker_close(b2);
    dt_broker_consumer_close(c);
}

static void test_nak_delay(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    tb_publish(f->b, f->subject, NULL, "again");
    dt_broker_msg *m = fetch_one(c, 10000);
    assert_int_equal(deliveries(m), 1);
    int64_t t0 = tb_now_ms();
    TB_EXPECT(dt_broker_msg_nak_delay(m, 700), DT_OK, "nak_delay");
    dt_broker_msg_destroy(m);
    assert_int_equal(fetch_none(c, 300), 0); /* not before the delay */
    m = fetch_one(c, 15000);
    int64_t ms = tb_now_ms() - t0;
    assert_int_equal(deliveries(m), 2);
    assert_true(ms >= 600);
    print_message("nak_delay(700): redelivered after %lld ms\n", (long long)ms);

    /* A plain nak redelivers at once. */
    TB_EXPECT(dt_broker_msg_nak(m), DT_OK, "nak");
    dt_broker_msg_destroy(m);
    m = fetch_one(c, 10000);
    assert_int_equal(deliveries(m), 3);
    TB_EXPECT(dt_broker_msg_ack(m), DT_OK, "ack");
    dt_broker_msg_destroy(m);
    dt_broker_consumer_close(c);
}

static void test_term(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 500);
    tb_publish(f->b, f->subject, NULL, "poison");
    dt_broker_msg *m = fetch_one(c, 10000);
    TB_EXPECT(dt_broker_msg_term(m), DT_OK, "term");
    TB_EXPECT(dt_broker_msg_ack(m), DT_OK, "settled: no-op");
    dt_broker_msg_destroy(m);
    assert_int_equal(fetch_none(c, 1500), 0); /* well past ack wait: never redelivered */
    dt_broker_consumer_info ci;
    char info_err[256] = "";
    TB_EXPECT(dt_broker_consumer_info_get(c, &ci, info_err, sizeof(info_err)), DT_OK, info_err);
    assert_int_equal(ci.num_ack_pending, 0);
    assert_int_equal(ci.num_pending, 0);
    dt_broker_consumer_close(c);
}

static void test_redelivery_after_ack_wait(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 500);
    tb_publish(f->b, f->subject, NULL, "forgotten");
    dt_broker_msg *m = fetch_one(c, 10000);
    dt_broker_msg_destroy(m); /* never settled */
    m = fetch_one(c, 10000);
    assert_int_equal(deliveries(m), 2);
    TB_EXPECT(dt_broker_msg_ack(m), DT_OK, "ack");
    dt_broker_msg_destroy(m);
    dt_broker_consumer_close(c);
}

static void test_in_progress_extends(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 2000);
    tb_publish(f->b, f->subject, NULL, "long activity");
    dt_broker_msg *m = fetch_one(c, 10000);
    /* 6 x 500 ms = 3 s, well past the 2 s ack wait; each in-progress has 1.5 s to arrive even
     * on a loaded machine. */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(fetch_none(c, 500), 0);
        TB_EXPECT(dt_broker_msg_in_progress(m), DT_OK, "in_progress");
        TB_EXPECT(dt_broker_flush(f->b, 2000), DT_OK, dt_broker_errmsg(f->b));
    }
    TB_EXPECT(dt_broker_msg_ack_sync(m, 2000), DT_OK, "ack_sync");
    assert_int_equal(deliveries(m), 1);
    dt_broker_msg_destroy(m);
    assert_int_equal(fetch_none(c, 1200), 0);
    dt_broker_consumer_close(c);
}

/* Messages keep their consumer alive: settle after the handle is closed. */
static void test_message_outlives_consumer(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    tb_publish(f->b, f->subject, NULL, "a");
    tb_publish(f->b, f->subject, NULL, "b");
    dt_broker_msg *m[2];
    size_t n = 0, got = 0;
    while (got < 2) {
        TB_EXPECT(dt_broker_consumer_fetch(c, 2, 2000, m + got, &n), DT_OK,
                  dt_broker_consumer_errmsg(c));
        assert_true(n > 0);
        got += n;
    }
    dt_broker_consumer_close(c);
    TB_EXPECT(dt_broker_msg_ack_sync(m[0], 2000), DT_OK, "ack after close");
    TB_EXPECT(dt_broker_msg_ack(m[1]), DT_OK, "ack after close");
    dt_broker_msg_destroy(m[0]);
    dt_broker_msg_destroy(m[1]);
}

/* Closing and re-opening binds to the same durable, which kept its position and messages. */
static void test_rebind_and_update(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    assert_int_equal(fetch_none(c, 50), 0);
    dt_broker_consumer_close(c);
    tb_publish(f->b, f->subject, NULL, "while closed");
    c = open_consumer(f, 20000); /* another ack wait: updated in place */
    dt_broker_msg *m = fetch_one(c, 10000);
    assert_memory_equal(dt_broker_msg_data(m), "while closed", 12);
    TB_EXPECT(dt_broker_msg_ack(m), DT_OK, "ack");
    dt_broker_msg_destroy(m);
    dt_broker_consumer_close(c);

    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = f->orch_stream;
    cc.durable = f->durable;
    cc.filter_subject = "dt.other.orch.0";
    TB_EXPECT(dt_broker_consumer_open(f->b, &cc, &c), DT_ECONFLICT, dt_broker_errmsg(f->b));
    assert_non_null(strstr(dt_broker_errmsg(f->b), "filters"));
    cc.filter_subject = f->subject;
    cc.durable = "bad.name";
    TB_EXPECT(dt_broker_consumer_open(f->b, &cc, &c), DT_EINVAL, dt_broker_errmsg(f->b));
    cc.durable = f->durable;
    cc.stream = "DT_no_such_hub_ORCH";
    TB_EXPECT(dt_broker_consumer_open(f->b, &cc, &c), DT_ENOTFOUND, dt_broker_errmsg(f->b));
}

/* A durable that vanished (deleted, or lost by a memory-storage server restart) is re-created. */
static void test_consumer_recreated(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer_ex(f, 30000, 300);
    tb_publish(f->b, f->subject, NULL, "before");
    dt_broker_msg *held = fetch_one(c, 10000); /* keeps the old subscription referenced */
    TB_EXPECT(dt_broker_consumer_delete(f->b, f->orch_stream, f->durable), DT_OK,
              dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_consumer_delete(f->b, f->orch_stream, f->durable), DT_ENOTFOUND,
              dt_broker_errmsg(f->b));
    tb_publish(f->b, f->subject, NULL, "after");
    /* The new consumer starts from the stream's first message: "before" again, then "after". */
    dt_broker_msg *m[4];
    size_t n = 0, got = 0;
    int64_t end = tb_now_ms() + 5000;
    while (got < 2 && tb_now_ms() < end) {
        TB_EXPECT(dt_broker_consumer_fetch(c, 4, 1000, m + got, &n), DT_OK,
                  dt_broker_consumer_errmsg(c));
        got += n;
    }
    assert_int_equal(got, 2);
    for (size_t i = 0; i < got; i++) {
        TB_EXPECT(dt_broker_msg_ack(m[i]), DT_OK, "ack");
        dt_broker_msg_destroy(m[i]);
    }
    TB_EXPECT(dt_broker_msg_ack(held), DT_OK, "ack through the retired subscription");
    dt_broker_msg_destroy(held);
    dt_broker_consumer_close(c);
}

/* Publishes `n` messages (bodies "<prefix><i>") on a connection of its own after 300 ms. */
typedef struct late_batch {
    const char *subject;
    const char *prefix;
    int n;
} late_batch;

static void *publish_batch_later(void *arg)
{
    late_batch *lp = arg;
    tb_sleep_ms(300);
    dt_broker *b = tb_connect();
    for (int i = 0; i < lp->n; i++) {
        char body[32], id[64];
        snprintf(body, sizeof(body), "%s%d", lp->prefix, i);
        snprintf(id, sizeof(id), "%s-%s", lp->subject, body);
        tb_publish(b, lp->subject, id, body);
    }
    dt_broker_close(b);
    return NULL;
}

/*
 * nats.c 3.4.1's fetch overran its array when answers to an earlier pull request already waited
 * on the consumer's inbox and numbered more than half the batch (broker-adapter/consume.c,
 * fetch_once). Here 7 answers wait, a second request for 5 stays open on the server (as timed-out
 * fetches leave them), and a fetch of 8 runs while 6 more messages arrive: without the guard the
 * fetch stores the open request's answers beyond its 8 slots (ASan: heap-buffer-overflow). Every
 * message must come out of the fetches once.
 */
static void test_fetch_with_answers_waiting(void **state)
{
    fixture *f = *state;
    dt_broker_consumer *c = open_consumer(f, 30000);
    for (int i = 0; i < 7; i++) {
        char body[32], id[96];
        snprintf(body, sizeof(body), "a%d", i);
        snprintf(id, sizeof(id), "%s/a%d", f->durable, i);
        tb_publish(f->b, f->subject, id, body);
    }
    natsConnection *nc = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, dt_test_nats_url()), NATS_OK);
    char next[512];
    snprintf(next, sizeof(next), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", f->orch_stream, f->durable);
    const char *inbox = dt_broker_consumer_inbox(c);
    assert_non_null(inbox);
    assert_int_equal(natsConnection_PublishRequestString(nc, next, inbox, "{\"batch\":7}"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);
    for (int i = 0; i < 1000 && dt_broker_consumer_waiting(c) < 7; i++) {
        tb_sleep_ms(10);
    }
    assert_int_equal(dt_broker_consumer_waiting(c), 7);
    assert_int_equal(natsConnection_PublishRequestString(nc, next, inbox,
                                                         "{\"batch\":5,\"expires\":20000000000}"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);
    late_batch lp = {f->subject, "b", 6};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, publish_batch_later, &lp), 0);

    char seen[13][8];
    size_t got = 0;
    for (int round = 0; round < 20 && got < 13; round++) {
        dt_broker_msg *m[8];
        size_t n = 0;
        TB_EXPECT(dt_broker_consumer_fetch(c, 8, 2000, m, &n), DT_OK, dt_broker_consumer_errmsg(c));
        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++) {
            size_t len = dt_broker_msg_len(m[i]);
            const char *d = dt_broker_msg_data(m[i]);
            assert_true(len > 0 && len < sizeof(seen[0]));
            for (size_t k = 0; k < got; k++) {
                assert_false(strlen(seen[k]) == len && memcmp(seen[k], d, len) == 0);
            }
            assert_true(got < 13);
            memcpy(seen[got], d, len);
            seen[got++][len] = '\0';
            TB_EXPECT(dt_broker_msg_ack(m[i]), DT_OK, "ack");
            dt_broker_msg_destroy(m[i]);
        }
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(got, 13);
    natsConnection_Destroy(nc);
    dt_broker_consumer_close(c);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fetch_batch_ack, test_setup),
        cmocka_unit_test_setup(test_empty_fetch, test_setup),
        cmocka_unit_test_setup(test_fetch_wakes_early, test_setup),
        cmocka_unit_test_setup(test_nak_delay, test_setup),
        cmocka_unit_test_setup(test_term, test_setup),
        cmocka_unit_test_setup(test_redelivery_after_ack_wait, test_setup),
        cmocka_unit_test_setup(test_in_progress_extends, test_setup),
        cmocka_unit_test_setup(test_message_outlives_consumer, test_setup),
        cmocka_unit_test_setup(test_rebind_and_update, test_setup),
        cmocka_unit_test_setup(test_consumer_recreated, test_setup),
        cmocka_unit_test_setup(test_fetch_with_answers_waiting, test_setup),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return tb_finish(failed);
}
