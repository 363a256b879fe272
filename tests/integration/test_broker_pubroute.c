/*
 * Routing of PubAcks to async publishers (broker-adapter/publisher.c): every publisher collects
 * its replies from its own inbox on its own thread, so these tests check that each added message
 * gets exactly one outcome, its own, whatever arrives: many publishers on one connection at once,
 * "no responders" mixed into a batch (attributed by elimination), replies that never come (per
 * message ack timeout), replies that come after the wait gave up, twice, or unreadable. Odd
 * replies come from a fake "stream": a core subscriber that answers as it is told.
 */
#include <pthread.h>
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
    char orch0[DT_BROKER_NAME_BUF];
    char orch_stream[DT_BROKER_NAME_BUF];
    char nowhere[DT_BROKER_NAME_BUF]; /* no stream, no subscriber: "no responders" */
    char fake[DT_BROKER_NAME_BUF];    /* the fake stream's subject */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = tb_connect();
    tb_hub(f->b, "route", NULL, f->hub, sizeof(f->hub));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_ORCH, "0", f->orch0, sizeof(f->orch0));
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, f->orch_stream, sizeof(f->orch_stream));
    snprintf(f->nowhere, sizeof(f->nowhere), "dtx.%s.nowhere", f->hub);
    snprintf(f->fake, sizeof(f->fake), "dtx.%s.fake", f->hub);
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

static uint64_t stream_msgs(fixture *f)
{
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(f->b, f->orch_stream, &si), DT_OK, dt_broker_errmsg(f->b));
    return si.msgs;
}

/* ------------------------------------------------------------------------------------------- */
/* Many publishers on one connection                                                           */

enum { THREADS = 6, BATCHES = 3, PER_BATCH = 400, NOWHERE_EVERY = 7 };

typedef struct worker_arg {
    fixture *f;
    int id;
    int bad; /* results that were not this publisher's own (checked after join) */
    uint64_t seqs[BATCHES * PER_BATCH]; /* stream sequences of stored messages */
    size_t nseqs;
    char why[256];
} worker_arg;

static void note_bad(worker_arg *a, const char *why, size_t i)
{
    if (a->bad++ == 0) {
        snprintf(a->why, sizeof(a->why), "publisher %d, result %zu: %s", a->id, i, why);
    }
}

/* Checks one batch's results: own tags in order, stored or "no responders" as addressed. */
static void check_batch(worker_arg *a, dt_broker_publisher *p, int batch)
{
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    if (n != PER_BATCH) {
        note_bad(a, "wrong result count", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t want_tag = ((uint64_t)a->id << 32) | ((uint64_t)batch * PER_BATCH + i);
        bool nowhere = i % NOWHERE_EVERY == 0;
        if (r[i].tag != want_tag) {
            note_bad(a, "tag out of place", i);
        } else if (nowhere &&
                   (r[i].status != DT_EBROKER || strstr(r[i].error, "no responders") == NULL)) {
            note_bad(a, "expected no responders", i);
        } else if (!nowhere && (r[i].status != DT_OK || r[i].duplicate)) {
            note_bad(a, r[i].error != NULL ? r[i].error : "expected stored", i);
        } else if (!nowhere) {
            a->seqs[a->nseqs++] = r[i].stream_seq;
        }
    }
}

static void *publish_thread(void *arg)
{
    worker_arg *a = arg;
    dt_broker_publisher_options o;
    dt_broker_publisher_options_init(&o);
    o.window = 64; /* smaller than a batch: add() collects replies while the window is full */
    dt_broker_publisher *p = NULL;
    if (dt_broker_publisher_create(a->f->b, &o, &p) != DT_OK) {
        note_bad(a, "create", 0);
        return NULL;
    }
    for (int batch = 0; batch < BATCHES; batch++) {
        for (int i = 0; i < PER_BATCH; i++) {
            char id[64];
            snprintf(id, sizeof(id), "route/%d/%d/%d", a->id, batch, i);
            dt_broker_outmsg m = {.subject = i % NOWHERE_EVERY == 0 ? a->f->nowhere : a->f->orch0,
                                  .msg_id = id,
                                  .data = id,
                                  .len = strlen(id)};
            uint64_t tag = ((uint64_t)a->id << 32) | (uint64_t)(batch * PER_BATCH + i);
            if (dt_broker_publisher_add(p, &m, tag) != DT_OK) {
                note_bad(a, dt_broker_publisher_errmsg(p), (size_t)i);
            }
        }
        (void)dt_broker_publisher_wait(p, 20000); /* fails: the "no responders" ones */
        check_batch(a, p, batch);
    }
    dt_broker_publisher_destroy(p);
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : (a > b ? 1 : 0);
}

/* Six publishers share one connection and publish at once; no reply may reach the wrong one. */
static void test_many_publishers_one_connection(void **state)
{
    fixture *f = *state;
    uint64_t before = stream_msgs(f);
    static worker_arg args[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].f = f;
        args[i].id = i + 1;
        assert_int_equal(pthread_create(&th[i], NULL, publish_thread, &args[i]), 0);
    }
    static uint64_t all[THREADS * BATCHES * PER_BATCH];
    size_t nall = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].bad > 0) {
            fail_msg("%d bad results; first: %s", args[i].bad, args[i].why);
        }
        memcpy(all + nall, args[i].seqs, args[i].nseqs * sizeof(uint64_t));
        nall += args[i].nseqs;
    }
    /* Each stored message reported its own sequence: all distinct, as many as stored. */
    qsort(all, nall, sizeof(all[0]), cmp_u64);
    for (size_t i = 1; i < nall; i++) {
        assert_true(all[i] != all[i - 1]);
    }
    assert_int_equal(stream_msgs(f) - before, nall);
}

/* ------------------------------------------------------------------------------------------- */
/* A fake stream: answers each request as its payload says                                     */

typedef struct fake {
    int answered; /* atomic */
} fake;

static void fake_answer(dt_broker_msg *m, const char *body)
{
    dt_broker_outmsg r = {.data = body, .len = strlen(body)};
    (void)dt_broker_msg_respond(m, &r);
}

/*
 * Payloads: "flood:<n>" (n PubAcks, the first one answers, the rest are strays), "silent" (no
 * answer), "seq:<n>" (a PubAck), "dup:<n>" (a duplicate's PubAck),
 * "twice:<n>" (the PubAck, twice), "late:<ms>:<n>" (the PubAck after ms), "conflict" (a
 * wrong-last-sequence error), "garbage".
 */
static void on_fake(dt_broker_msg *m, void *ctx)
{
    fake *fk = ctx;
    char req[64];
    snprintf(req, sizeof(req), "%.*s", (int)dt_broker_msg_len(m),
             (const char *)dt_broker_msg_data(m));
    char body[256];
    unsigned long long n = 0;
    int ms = 0;
    if (sscanf(req, "late:%d:%llu", &ms, &n) == 2) {
        tb_sleep_ms(ms);
    }
    if (strncmp(req, "dup:", 4) == 0) {
        snprintf(body, sizeof(body), "{\"stream\":\"FAKE\",\"seq\":%s,\"duplicate\":true}",
                 req + 4);
    } else if (strcmp(req, "conflict") == 0) {
        snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":400,\"err_code\":10071,"
                 "\"description\":\"wrong last sequence: 7\"}}");
    } else if (strcmp(req, "garbage") == 0) {
        snprintf(body, sizeof(body), "not json");
    } else {
        const char *num = strrchr(req, ':');
        snprintf(body, sizeof(body), "{\"stream\":\"FAKE\",\"domain\":\"\",\"seq\":%s}",
                 num != NULL ? num + 1 : "0");
    }
    if (sscanf(req, "flood:%llu", &n) == 1) {
        snprintf(body, sizeof(body), "{\"stream\":\"FAKE\",\"seq\":1}");
        for (unsigned long long i = 0; i < n; i++) {
            fake_answer(m, body);
        }
    } else if (strcmp(req, "silent") != 0) {
        fake_answer(m, body);
        if (strncmp(req, "twice:", 6) == 0) {
            fake_answer(m, body);
        }
    }
    dt_broker_msg_destroy(m);
    __atomic_add_fetch(&fk->answered, 1, __ATOMIC_ACQ_REL);
}

static dt_broker_sub *fake_start(fixture *f, fake *fk)
{
    dt_broker_sub *s = NULL;
    TB_EXPECT(dt_broker_subscribe(f->b, f->fake, NULL, on_fake, fk, &s), DT_OK,
              dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_flush(f->b, 2000), DT_OK, dt_broker_errmsg(f->b));
    return s;
}

static void add_text(dt_broker_publisher *p, const char *subject, const char *text, uint64_t tag)
{
    dt_broker_outmsg m = {.subject = subject, .data = text, .len = strlen(text)};
    TB_EXPECT(dt_broker_publisher_add(p, &m, tag), DT_OK, dt_broker_publisher_errmsg(p));
}

/* Replies of every shape end as exactly one outcome of the right message. */
static void test_reply_shapes(void **state)
{
    fixture *f = *state;
    fake fk = {0};
    dt_broker_sub *s = fake_start(f, &fk);
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    add_text(p, f->fake, "seq:41", 0);
    add_text(p, f->fake, "conflict", 1);
    add_text(p, f->fake, "twice:43", 2);
    add_text(p, f->fake, "garbage", 3);
    add_text(p, f->fake, "dup:45", 4);
    add_text(p, f->nowhere, "x", 5);
    add_text(p, f->orch0, "real", 6);
    dt_status st = dt_broker_publisher_wait(p, 10000);
    assert_true(st == DT_ECONFLICT || st == DT_EBROKER);
    assert_non_null(strstr(dt_broker_publisher_errmsg(p), "3 of 7 messages failed"));
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 7);
    TB_EXPECT(r[0].status, DT_OK, r[0].error);
    assert_int_equal(r[0].stream_seq, 41);
    TB_EXPECT(r[1].status, DT_ECONFLICT, r[1].error);
    assert_non_null(strstr(r[1].error, "wrong last sequence: 7"));
    TB_EXPECT(r[2].status, DT_OK, r[2].error);
    assert_int_equal(r[2].stream_seq, 43);
    TB_EXPECT(r[3].status, DT_EBROKER, r[3].error);
    assert_non_null(strstr(r[3].error, "unreadable PubAck"));
    TB_EXPECT(r[4].status, DT_OK, r[4].error);
    assert_true(r[4].duplicate);
    assert_int_equal(r[4].stream_seq, 45);
    TB_EXPECT(r[5].status, DT_EBROKER, r[5].error);
    assert_non_null(strstr(r[5].error, "no responders"));
    TB_EXPECT(r[6].status, DT_OK, r[6].error);
    assert_false(r[6].duplicate);

    /* The second copy of "twice" was dropped (its message had its outcome); the next batch
     * gets only its own reply. */
    add_text(p, f->fake, "seq:50", 10);
    TB_EXPECT(dt_broker_publisher_wait(p, 10000), DT_OK, dt_broker_publisher_errmsg(p));
    r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].stream_seq, 50);
    dt_broker_publisher_destroy(p);
    dt_broker_sub_destroy(s);
}

/* A message nobody answers fails after ack_timeout_ms, not at the wait's deadline, and alone. */
static void test_ack_timeout_per_message(void **state)
{
    fixture *f = *state;
    fake fk = {0};
    dt_broker_sub *s = fake_start(f, &fk);
    dt_broker_publisher_options o;
    dt_broker_publisher_options_init(&o);
    o.ack_timeout_ms = 300;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, &o, &p), DT_OK, dt_broker_errmsg(f->b));
    int64_t t0 = tb_now_ms();
    add_text(p, f->fake, "seq:1", 0);
    add_text(p, f->fake, "silent", 1);
    add_text(p, f->orch0, "real", 2);
    TB_EXPECT(dt_broker_publisher_wait(p, 20000), DT_ETIMEOUT, dt_broker_publisher_errmsg(p));
    int64_t took = tb_now_ms() - t0;
    print_message("a silent message failed after %lld ms (ack timeout 300, wait 20000)\n",
                  (long long)took);
    assert_true(took >= 300 && took < 10000); /* the margin: the 20 s wait deadline */
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 3);
    TB_EXPECT(r[0].status, DT_OK, r[0].error);
    TB_EXPECT(r[1].status, DT_ETIMEOUT, "silent");
    assert_non_null(strstr(r[1].error, "no PubAck within 300 ms"));
    TB_EXPECT(r[2].status, DT_OK, r[2].error);
    dt_broker_publisher_destroy(p);
    dt_broker_sub_destroy(s);
}

/* A reply that comes after the wait gave up must not resolve a message of a later batch. */
static void test_late_reply_after_wait_deadline(void **state)
{
    fixture *f = *state;
    fake fk = {0};
    dt_broker_sub *s = fake_start(f, &fk);
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    add_text(p, f->fake, "late:400:1001", 0);
    TB_EXPECT(dt_broker_publisher_wait(p, 100), DT_ETIMEOUT, dt_broker_publisher_errmsg(p));
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(r[0].error, "wait deadline"));
    /* The fake answers one request at a time: 1001 comes at ~400 ms, 1002 at ~800 ms. */
    add_text(p, f->fake, "late:400:1002", 1);
    TB_EXPECT(dt_broker_publisher_wait(p, 10000), DT_OK, dt_broker_publisher_errmsg(p));
    r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].stream_seq, 1002);
    dt_broker_publisher_destroy(p);
    dt_broker_sub_destroy(s);
}

/*
 * "No responders" is attributed by elimination; once a message left a batch without its own
 * reply the counts are unreliable, so a 503'd message then times out (fate unknown, which is
 * honest), and the next batch, on a fresh inbox, attributes again.
 */
static void test_noresp_after_a_timeout(void **state)
{
    fixture *f = *state;
    fake fk = {0};
    dt_broker_sub *s = fake_start(f, &fk);
    dt_broker_publisher_options o;
    dt_broker_publisher_options_init(&o);
    o.ack_timeout_ms = 300;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, &o, &p), DT_OK, dt_broker_errmsg(f->b));
    add_text(p, f->fake, "silent", 0);
    add_text(p, f->nowhere, "x", 1);
    add_text(p, f->orch0, "real", 2);
    TB_EXPECT(dt_broker_publisher_wait(p, 5000), DT_ETIMEOUT, dt_broker_publisher_errmsg(p));
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 3);
    TB_EXPECT(r[0].status, DT_ETIMEOUT, "silent");
    assert_true(r[1].status == DT_ETIMEOUT || r[1].status == DT_EBROKER);
    TB_EXPECT(r[2].status, DT_OK, r[2].error);

    add_text(p, f->nowhere, "y", 3);
    add_text(p, f->orch0, "real", 4);
    add_text(p, f->nowhere, "z", 5);
    TB_EXPECT(dt_broker_publisher_wait(p, 5000), DT_EBROKER, dt_broker_publisher_errmsg(p));
    r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 3);
    TB_EXPECT(r[0].status, DT_EBROKER, r[0].error);
    assert_non_null(strstr(r[0].error, "no responders"));
    TB_EXPECT(r[1].status, DT_OK, r[1].error);
    TB_EXPECT(r[2].status, DT_EBROKER, r[2].error);
    dt_broker_publisher_destroy(p);
    dt_broker_sub_destroy(s);
}

/* Destroying a publisher whose replies are still queued (never collected) leaks nothing. */
static void test_destroy_with_queued_replies(void **state)
{
    fixture *f = *state;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
    for (int i = 0; i < 200; i++) {
        add_text(p, f->orch0, "q", (uint64_t)i);
    }
    TB_EXPECT(dt_broker_flush(f->b, 5000), DT_OK, dt_broker_errmsg(f->b));
    tb_sleep_ms(50); /* let the PubAcks land in the publisher's queue */
    dt_broker_publisher_destroy(p);
}

/*
 * Destroying a publisher while replies stream into its inbox. nats.c 3.4.1's reader thread uses a
 * subscription it found without holding a reference (nats-io/nats.c#638), so a plain
 * natsSubscription_Destroy in the middle of the stream freed the inbox under the reader: a crash
 * or heap corruption within a few hundred rounds natively, invalid reads in natsConn_processMsg
 * under valgrind. The publisher unsubscribes and flushes before it frees (conn.c).
 */
enum { FLOOD_ROUNDS = 400, FLOOD_REPLIES = 400 };

static void test_destroy_while_replies_stream_in(void **state)
{
    fixture *f = *state;
    fake fk = {0};
    dt_broker_sub *s = fake_start(f, &fk);
    char text[32];
    snprintf(text, sizeof(text), "flood:%d", FLOOD_REPLIES);
    for (int round = 0; round < FLOOD_ROUNDS; round++) {
        dt_broker_publisher *p = NULL;
        TB_EXPECT(dt_broker_publisher_create(f->b, NULL, &p), DT_OK, dt_broker_errmsg(f->b));
        add_text(p, f->fake, text, 0);
        TB_EXPECT(dt_broker_flush(f->b, 5000), DT_OK, dt_broker_errmsg(f->b));
        /* Wait for the first reply, so that the rest is still arriving at the destroy. */
        int64_t until = tb_now_ms() + 5000;
        while (dt_broker_publisher_inflight(p) > 0 && tb_now_ms() < until) {
        }
        assert_int_equal(dt_broker_publisher_inflight(p), 0);
        dt_broker_publisher_destroy(p);
    }
    while (__atomic_load_n(&fk.answered, __ATOMIC_ACQUIRE) < FLOOD_ROUNDS) {
        tb_sleep_ms(5);
    }
    dt_broker_sub_destroy(s);
    assert_true(dt_broker_is_connected(f->b));
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_publishers_one_connection),
        cmocka_unit_test(test_reply_shapes),
        cmocka_unit_test(test_ack_timeout_per_message),
        cmocka_unit_test(test_late_reply_after_wait_deadline),
        cmocka_unit_test(test_noresp_after_a_timeout),
        cmocka_unit_test(test_destroy_with_queued_replies),
        cmocka_unit_test(test_destroy_while_replies_stream_in),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return tb_finish(failed);
}
