/*
 * Activity results bound for the same partition carried in one JetStream message (an
 * OrchestrationBatch with the Dt-Batch header), against the real nats-server: a fan-out whose
 * results arrive batched completes with the right output; a batch published by hand with a
 * malformed member and a member for another partition has its good member applied, the malformed
 * one dead-lettered with a reason and the misrouted one moved to its partition; a batch that
 * comes twice (a redelivery, a re-publish JetStream did not drop) applies nothing twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common_int.h"
#include "protocol_int.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define PARTITIONS 2
#define FAN        24
#define ST(x)      DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

/* Calls "hello" FAN times at once; the output is the outputs joined by ','. */
static void fan(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *t[FAN];
    for (int i = 0; i < FAN; i++) {
        char in[16];
        int n = snprintf(in, sizeof(in), "%d", i);
        t[i] = dt_call_activity(ctx, "hello", in, (size_t)n, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, t, FAN), NULL);
    char out[FAN * 16] = "";
    size_t len = 0;
    for (int i = 0; i < FAN; i++) {
        const char *v = dt_await(ctx, t[i], NULL);
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i > 0 ? "," : "", v);
    }
    dt_orch_set_output(ctx, out, len);
}

/* Waits for three "add" events and outputs their sum. */
static void sum3(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long total = 0;
    for (int i = 0; i < 3; i++) {
        total += strtol(dt_await(ctx, dt_wait_event(ctx, "add"), NULL), NULL, 10);
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", total);
    dt_orch_set_output(ctx, buf, (size_t)n);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_broker_sub *sub;
    atomic_int batches; /* Dt-Batch messages seen on the partition subjects */
} fixture;

static void on_orch(dt_broker_msg *m, void *ctx)
{
    fixture *f = ctx;
    const char *v = NULL;
    if (dt_broker_msg_header(m, DT_HDR_BATCH, &v) == DT_OK) {
        atomic_fetch_add(&f->batches, 1);
    }
    dt_broker_msg_destroy(m);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "rbatch", PARTITIONS, 3000);
    char subject[DT_BROKER_NAME_BUF];
    assert_int_equal(
        dt_broker_subject(f->env.hub, DT_BROKER_SUBJ_ORCH, ">", subject, sizeof(subject)), DT_OK);
    assert_int_equal(dt_broker_subscribe(f->env.broker, subject, NULL, on_orch, f, &f->sub), DT_OK);
    dt_worker_options o = wk_options(&f->env);
    o.batch_activity_results = true;
    o.disable_local_activities = true; /* results through JetStream, where they are batched */
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "fan", fan, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "sum3", sum3, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "hello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_start(f->w), DT_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_worker_destroy(f->w);
    dt_broker_sub_destroy(f->sub);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

/* The expected output of fan. */
static void fan_output(char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < FAN; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "%sHello %d", i > 0 ? "," : "", i);
    }
}

/* Several fan-outs at once: their results come back (mostly) in batch messages, and every
 * instance sees each of its results exactly once, in the right task. */
static void test_fan_out_batched(void **state)
{
    fixture *f = *state;
    char want[FAN * 16];
    fan_output(want, sizeof(want));
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "fan-%d", i);
        wk_start(&f->env, "fan", id, NULL, NULL, NULL);
    }
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "fan-%d", i);
        wk_expect(&f->env, id, ST(COMPLETED), want);
    }
    assert_true(atomic_load(&f->batches) > 0);
}

/* A packed EventRaised "add" for instance_id with identity dedupe (in `a`). */
static ProtobufCBinaryData raise_member(dt__arena *a, const char *instance_id, const char *data,
                                        const char *dedupe)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__EventRaisedEvent *r = dt__arena_calloc(a, 1, sizeof(*r));
    assert_non_null(ev);
    assert_non_null(r);
    dtpb__event_raised_event__init(r);
    r->name = "add";
    r->input = dt__emit_payload(a, (const uint8_t *)data, strlen(data));
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ev->event_raised = r;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, instance_id, "", ev, dedupe);
    ProtobufCBinaryData out = {0, NULL};
    out.data = dt__pack(a, &m.base, &out.len);
    assert_non_null(out.data);
    return out;
}

/* Publishes members as one batch message to partition p's subject (no Nats-Msg-Id: JetStream
 * keeps every copy). */
static void publish_batch(fixture *f, uint32_t p, ProtobufCBinaryData *members, size_t n)
{
    dt__arena *a = dt__arena_create(0);
    Dtpb__OrchestrationBatch ob;
    dtpb__orchestration_batch__init(&ob);
    ob.messages = members;
    ob.n_messages = n;
    size_t len = 0;
    uint8_t *data = dt__pack(a, &ob.base, &len);
    assert_non_null(data);
    char tail[16], subject[DT_BROKER_NAME_BUF], count[16];
    snprintf(tail, sizeof(tail), "%u", p);
    snprintf(count, sizeof(count), "%zu", n);
    assert_int_equal(
        dt_broker_subject(f->env.hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject)), DT_OK);
    dt_broker_header h = {DT_HDR_BATCH, count};
    dt_broker_outmsg out = {
        .subject = subject, .headers = &h, .nheaders = 1, .data = data, .len = len};
    assert_int_equal(dt_broker_publish(f->env.broker, &out, NULL), DT_OK);
    dt__arena_destroy(a);
}

/* An instance ID with prefix whose partition is (or is not, when `in` is false) p. */
static void id_in(const char *prefix, uint32_t p, bool in, char *buf, size_t cap)
{
    for (int i = 0;; i++) {
        snprintf(buf, cap, "%s-%d", prefix, i);
        if ((dt__partition_of(buf, PARTITIONS) == p) == in) {
            return;
        }
    }
}

/* One batch on partition 0's subject: two good members (for an instance of partition 0), a
 * malformed member, and a member for an instance of partition 1. */
static void test_hand_made_batch(void **state)
{
    fixture *f = *state;
    char here[32], there[32];
    id_in("hb-here", 0, true, here, sizeof(here));
    id_in("hb-there", 0, false, there, sizeof(there));
    wk_start(&f->env, "sum3", here, NULL, NULL, NULL);
    wk_start(&f->env, "sum3", there, NULL, NULL, NULL);
    wk_expect(&f->env, here, ST(RUNNING), NULL);
    wk_expect(&f->env, there, ST(RUNNING), NULL);
    dt__arena *a = dt__arena_create(0);
    static uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
    ProtobufCBinaryData m[4] = {
        raise_member(a, here, "1", "hb/here/1"),
        {sizeof(junk), junk},
        raise_member(a, there, "10", "hb/there/10"),
        raise_member(a, here, "2", "hb/here/2"),
    };
    publish_batch(f, 0, m, 4);
    char reasons[1][256];
    assert_int_equal(wk_dead_letters(&f->env, "hb_dead", 1, reasons), 1);
    assert_non_null(strstr(reasons[0], "malformed OrchestrationMessage in an OrchestrationBatch"));
    wk_raise(&f->env, here, "add", "4");
    wk_raise(&f->env, there, "add", "20");
    wk_raise(&f->env, there, "add", "30");
    wk_expect(&f->env, here, ST(COMPLETED), "7");
    wk_expect(&f->env, there, ST(COMPLETED), "60");
    dt__arena_destroy(a);
}

/* The same batch twice (as a redelivery after a crash would bring it): its members are applied
 * once. A third, lone event then completes the instance with the right sum. */
static void test_batch_twice(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "sum3", "twice", NULL, NULL, NULL);
    wk_expect(&f->env, "twice", ST(RUNNING), NULL);
    dt__arena *a = dt__arena_create(0);
    ProtobufCBinaryData m[2] = {
        raise_member(a, "twice", "1", "twice/1"),
        raise_member(a, "twice", "2", "twice/2"),
    };
    uint32_t p = dt__partition_of("twice", PARTITIONS);
    publish_batch(f, p, m, 2);
    publish_batch(f, p, m, 2);
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
    wk_raise(&f->env, "twice", "add", "4");
    wk_expect(&f->env, "twice", ST(COMPLETED), "7");
    dt__arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fan_out_batched),
        cmocka_unit_test(test_hand_made_batch),
        cmocka_unit_test(test_batch_twice),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
