/*
 * The hub's LOG stream as a partition log needs it (broker-adapter/stream_read.c and the
 * publish expectations): the first append is conditional on an empty subject, each later one on
 * the subject's last sequence (a stale writer's append fails with DT_ECONFLICT and stores
 * nothing); entries are read back by subject (last, next from a position) and by sequence; a
 * purge below a position keeps the entry at it, so the next conditional append still works.
 */
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
    char stream[DT_BROKER_NAME_BUF];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = tb_connect();
    tb_hub(f->b, "log", NULL, f->hub, sizeof(f->hub));
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_LOG, f->stream, sizeof(f->stream));
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

static dt_status append(fixture *f, const char *subject, const char *text, bool first,
                        uint64_t after, uint64_t *seq)
{
    dt_broker_header h = {"Dt-Owner", "w1"};
    dt_broker_outmsg m = {.subject = subject,
                          .headers = &h,
                          .nheaders = 1,
                          .data = text,
                          .len = strlen(text),
                          .expect_no_message = first,
                          .expect_last_subject_seq = after};
    dt_broker_puback ack = {0};
    dt_status st = dt_broker_publish(f->b, &m, &ack);
    *seq = ack.stream_seq;
    return st;
}

static void expect_msg(fixture *f, const char *subject, dt_broker_get_mode mode, uint64_t from,
                       uint64_t want_seq, const char *want_text)
{
    dt_broker_msg *m = NULL;
    TB_EXPECT(dt_broker_stream_get(f->b, f->stream, subject, mode, from, &m), DT_OK,
              dt_broker_errmsg(f->b));
    assert_int_equal(dt_broker_msg_stored_seq(m), want_seq);
    assert_int_equal(dt_broker_msg_len(m), strlen(want_text));
    assert_memory_equal(dt_broker_msg_data(m), want_text, strlen(want_text));
    const char *owner = NULL;
    assert_int_equal(dt_broker_msg_header(m, "Dt-Owner", &owner), DT_OK);
    assert_string_equal(owner, "w1");
    dt_broker_msg_destroy(m);
}

static void test_conditional_appends(void **state)
{
    fixture *f = *state;
    char p0[DT_BROKER_NAME_BUF], p1[DT_BROKER_NAME_BUF];
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_LOG, "0", p0, sizeof(p0));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_LOG, "1", p1, sizeof(p1));
    dt_broker_msg *m = NULL;
    TB_EXPECT(dt_broker_stream_get(f->b, f->stream, p0, DT_BROKER_GET_LAST, 0, &m), DT_ENOTFOUND,
              dt_broker_errmsg(f->b));

    uint64_t a = 0, b = 0, c = 0, x = 0, other = 0;
    TB_EXPECT(append(f, p0, "a", true, 0, &a), DT_OK, dt_broker_errmsg(f->b));
    /* A second "first" append (a stale owner that never saw `a`) is refused. */
    TB_EXPECT(append(f, p0, "stale", true, 0, &x), DT_ECONFLICT, dt_broker_errmsg(f->b));
    TB_EXPECT(append(f, p1, "other partition", true, 0, &other), DT_OK, dt_broker_errmsg(f->b));
    TB_EXPECT(append(f, p0, "b", false, a, &b), DT_OK, dt_broker_errmsg(f->b));
    TB_EXPECT(append(f, p0, "stale", false, a, &x), DT_ECONFLICT, dt_broker_errmsg(f->b));
    TB_EXPECT(append(f, p0, "c", false, b, &c), DT_OK, dt_broker_errmsg(f->b));
    assert_true(a < b && b < c);

    expect_msg(f, p0, DT_BROKER_GET_LAST, 0, c, "c");
    expect_msg(f, p0, DT_BROKER_GET_NEXT, 1, a, "a");
    expect_msg(f, p0, DT_BROKER_GET_NEXT, a + 1, b, "b"); /* skips partition 1's entry */
    expect_msg(f, NULL, DT_BROKER_GET_SEQ, b, b, "b");
    expect_msg(f, NULL, DT_BROKER_GET_SEQ, a, a, "a"); /* the stream's first message */
    TB_EXPECT(dt_broker_stream_get(f->b, f->stream, p0, DT_BROKER_GET_NEXT, c + 1, &m),
              DT_ENOTFOUND, dt_broker_errmsg(f->b));

    /* Purge below c: a and b go, c stays and still anchors the next append. */
    TB_EXPECT(dt_broker_stream_purge(f->b, f->stream, p0, c), DT_OK, dt_broker_errmsg(f->b));
    expect_msg(f, p0, DT_BROKER_GET_NEXT, 1, c, "c");
    expect_msg(f, p1, DT_BROKER_GET_LAST, 0, other, "other partition");
    /* Below the first sequence there is nothing: the subject keeps everything (nats-server 2.9
     * alone would read "seq": 1 as "purge the whole subject"). */
    TB_EXPECT(dt_broker_stream_purge(f->b, f->stream, p1, 1), DT_OK, dt_broker_errmsg(f->b));
    expect_msg(f, p1, DT_BROKER_GET_LAST, 0, other, "other partition");
    uint64_t d = 0;
    TB_EXPECT(append(f, p0, "d", false, c, &d), DT_OK, dt_broker_errmsg(f->b));
    expect_msg(f, p0, DT_BROKER_GET_LAST, 0, d, "d");
    TB_EXPECT(dt_broker_stream_get(f->b, f->stream, p0, DT_BROKER_GET_NEXT, 0, &m), DT_EINVAL,
              dt_broker_errmsg(f->b));
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conditional_appends, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
