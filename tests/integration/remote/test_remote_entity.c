/*
 * Entities run by an SDK worker (runtime/remote, remote_entity.c) end to end: a real nats-server,
 * a real worker with a dt__remote attached, and an SDK worker written here in C that answers the
 * EntityBatchRequest work items with packed EntityBatchResults through remote_int.h, as the gRPC
 * transport relays them. Its entity "SdkCounter" keeps a decimal number; the test drives it with
 * client signals and a C orchestration's calls, and reads it with dt_client_get_entity:
 *   - operations run in order on the state the previous one left, results reach callers;
 *   - a result that breaks the rules (two results for one operation, a signal to something that
 *     is not an entity) fails the operation with dt.RemoteProtocolError and writes nothing of it;
 *   - an operation whose SDK worker disconnects, or abandons it, is redelivered and applied once;
 *   - junk bytes as a result are refused (DT_EINVAL), and an ActivityResponse carrying an entity
 *     item's token and instance is not taken for its answer (DT_ENOTFOUND): both change nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <cmocka.h>

#include "dt_remote.pb-c.h"
#include "durabletask/alloc.h"
#include "durabletask/entity.h"
#include "remote/remote_int.h"
#include "worker_kit.h"

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

/* ---- the SDK worker ---- */

typedef struct sdk {
    dt__remote *r;
    dt__remote_conn *conn;
    pthread_t thread;
    atomic_bool quit;
    atomic_int items;    /* entity items taken */
    atomic_int drop;     /* disconnect (and reconnect) on this many "flaky" items */
    atomic_int abandon;  /* abandon this many "flaky" items */
    atomic_int refused;  /* wrong answers refused (junk: DT_EINVAL; activity: DT_ENOTFOUND) */
    atomic_int notfound; /* answers to items no longer in flight */
} sdk;

static void no_wake(void *arg)
{
    (void)arg;
}

static Dtpb__Payload *text(char *buf, size_t cap, Dtpb__Payload *p, long v)
{
    snprintf(buf, cap, "%ld", v);
    dtpb__payload__init(p);
    p->value = (ProtobufCBinaryData){strlen(buf), (uint8_t *)buf};
    return p;
}

static long num(const Dtpb__Payload *p)
{
    char buf[32] = "";
    if (p != NULL && p->value.len < sizeof buf) {
        memcpy(buf, p->value.data, p->value.len);
    }
    return strtol(buf, NULL, 10);
}

static void send_result(sdk *s, const Dtpb__Remote__EntityBatchResult *res)
{
    size_t n = protobuf_c_message_get_packed_size(&res->base);
    uint8_t *buf = malloc(n + 1);
    protobuf_c_message_pack(&res->base, buf);
    dt_status st = dt__remote_complete_entity(s->r, buf, n);
    if (st == DT_ENOTFOUND) {
        atomic_fetch_add(&s->notfound, 1);
    }
    free(buf);
}

static void abandon(sdk *s, const char *token)
{
    Dtpb__Remote__AbandonTaskRequest m = DTPB__REMOTE__ABANDON_TASK_REQUEST__INIT;
    m.completion_token = (char *)token;
    uint8_t buf[64];
    size_t n = protobuf_c_message_pack(&m.base, buf);
    assert_int_equal(dt__remote_abandon(s->r, buf, n), DT_OK);
}

/* Operations: add N (returns the new count), get, flaky (add 1 after the drop / abandon
 * knobs), two_results, bad_signal, signal K (signals @sdkcounter@K "add" 5). */
static void handle(sdk *s, const uint8_t *item, size_t len)
{
    Dtpb__Remote__WorkItem *wi = dtpb__remote__work_item__unpack(NULL, len, item);
    assert_non_null(wi);
    assert_int_equal(wi->request_case, DTPB__REMOTE__WORK_ITEM__REQUEST_ENTITY_REQUEST);
    atomic_fetch_add(&s->items, 1);
    const Dtpb__Remote__EntityBatchRequest *req = wi->entity_request;
    assert_int_equal(req->n_operations, 1);
    const Dtpb__Remote__OperationRequest *op = req->operations[0];
    long count = num(req->entity_state);

    Dtpb__Remote__EntityBatchResult res = DTPB__REMOTE__ENTITY_BATCH_RESULT__INIT;
    Dtpb__Remote__OperationResult r0 = DTPB__REMOTE__OPERATION_RESULT__INIT, *rs[2] = {&r0, &r0};
    Dtpb__Remote__OperationResultSuccess ok = DTPB__REMOTE__OPERATION_RESULT_SUCCESS__INIT;
    Dtpb__Remote__OperationAction a0 = DTPB__REMOTE__OPERATION_ACTION__INIT, *as[1] = {&a0};
    Dtpb__Remote__SendSignalAction sig = DTPB__REMOTE__SEND_SIGNAL_ACTION__INIT;
    Dtpb__Payload state, out, in5;
    char sbuf[32], obuf[32], ibuf[32], target[DT_ENTITY_ID_MAX + 1];
    r0.result_type_case = DTPB__REMOTE__OPERATION_RESULT__RESULT_TYPE_SUCCESS;
    r0.success = &ok;
    res.results = rs;
    res.n_results = 1;
    res.completion_token = wi->completion_token;
    if (strcmp(op->operation, "add") == 0) {
        count += num(op->input);
        ok.result = text(obuf, sizeof obuf, &out, count);
    } else if (strcmp(op->operation, "get") == 0) {
        ok.result = text(obuf, sizeof obuf, &out, count);
    } else if (strcmp(op->operation, "flaky") == 0) {
        if (atomic_load(&s->drop) > 0) {
            atomic_fetch_sub(&s->drop, 1);
            dt__remote_disconnect(s->conn); /* the item is in flight: redelivered */
            assert_int_equal(dt__remote_connect(s->r, no_wake, s, &s->conn), DT_OK);
            dtpb__remote__work_item__free_unpacked(wi, NULL);
            return;
        }
        if (atomic_load(&s->abandon) > 0) {
            atomic_fetch_sub(&s->abandon, 1);
            abandon(s, wi->completion_token);
            dtpb__remote__work_item__free_unpacked(wi, NULL);
            return;
        }
        /* An ActivityResponse naming this item (token and instance) is not its answer. */
        Dtpb__Remote__ActivityResponse ar = DTPB__REMOTE__ACTIVITY_RESPONSE__INIT;
        ar.instance_id = req->instance_id;
        ar.completion_token = wi->completion_token;
        int32_t task_ids[] = {0, INT32_MIN};
        for (size_t i = 0; i < 2; i++) {
            ar.task_id = task_ids[i];
            uint8_t abuf[256];
            size_t an = protobuf_c_message_pack(&ar.base, abuf);
            if (dt__remote_complete_activity(s->r, abuf, an) == DT_ENOTFOUND) {
                atomic_fetch_add(&s->refused, 1);
            }
        }
        uint8_t junk[] = {0x0a, 0x7f, 0x01};
        if (dt__remote_complete_entity(s->r, junk, sizeof junk) == DT_EINVAL) {
            atomic_fetch_add(&s->refused, 1);
        }
        count += 1;
    } else if (strcmp(op->operation, "two_results") == 0) {
        count += 1000; /* must not be stored */
        res.n_results = 2;
    } else if (strcmp(op->operation, "bad_signal") == 0) {
        count += 1000;
        sig.instance_id = "not-an-entity";
        sig.name = "add";
        a0.operation_action_type_case =
            DTPB__REMOTE__OPERATION_ACTION__OPERATION_ACTION_TYPE_SEND_SIGNAL;
        a0.send_signal = &sig;
        res.actions = as;
        res.n_actions = 1;
    } else if (strcmp(op->operation, "signal") == 0) {
        snprintf(target, sizeof target, "@sdkcounter@%.*s", (int)op->input->value.len,
                 (const char *)op->input->value.data);
        sig.instance_id = target;
        sig.name = "add";
        sig.input = text(ibuf, sizeof ibuf, &in5, 5);
        a0.operation_action_type_case =
            DTPB__REMOTE__OPERATION_ACTION__OPERATION_ACTION_TYPE_SEND_SIGNAL;
        a0.send_signal = &sig;
        res.actions = as;
        res.n_actions = 1;
    }
    res.entity_state = text(sbuf, sizeof sbuf, &state, count);
    send_result(s, &res);
    dtpb__remote__work_item__free_unpacked(wi, NULL);
}

static void *run(void *arg)
{
    sdk *s = arg;
    while (!atomic_load(&s->quit)) {
        uint8_t *item = NULL;
        size_t len = 0;
        if (dt__remote_poll(s->conn, &item, &len) == DT_OK) {
            handle(s, item, len);
            dt_free(item);
            continue;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- the worker ---- */

typedef struct fixture {
    wk_env env;
    dt__remote *r;
    dt_worker *w;
    sdk s;
} fixture;

/* Calls SdkCounter(key = instance ID) operation `input` (a plain string) and outputs its result,
 * or "failed: <type>: <message>". */
static void c_calls(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *op = dt_orch_input(ctx, &len);
    char opname[64];
    snprintf(opname, sizeof opname, "%.*s", (int)len, op);
    dt_task *t = dt_call_entity(ctx, "SdkCounter", dt_orch_instance_id(ctx), opname, "2", 1);
    char out[512];
    int n;
    if (dt_try_await(ctx, t) == DT_OK) {
        const char *r = dt_task_output(t, &len);
        n = snprintf(out, sizeof out, "%.*s", (int)len, r != NULL ? r : "");
    } else {
        const dt_failure *f = dt_task_failure(t);
        n = snprintf(out, sizeof out, "failed: %s: %s", f->type, f->message);
    }
    dt_orch_set_output(ctx, out, (size_t)n);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "rent", 2, 3000);
    dt__remote_options ro;
    dt__remote_options_init(&ro);
    ro.episode_timeout_ms = 3000;
    assert_int_equal(dt__remote_create(&ro, &f->r), DT_OK);
    dt_worker_options o = wk_options(&f->env);
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "CCalls", c_calls, NULL), DT_OK);
    assert_int_equal(dt__remote_attach(f->r, f->w), DT_OK);
    if (dt_worker_start(f->w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(f->w));
    }
    f->s.r = f->r;
    assert_int_equal(dt__remote_connect(f->r, no_wake, &f->s, &f->s.conn), DT_OK);
    assert_int_equal(pthread_create(&f->s.thread, NULL, run, &f->s), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_worker_destroy(f->w);
    atomic_store(&f->s.quit, true);
    pthread_join(f->s.thread, NULL);
    dt__remote_disconnect(f->s.conn);
    dt__remote_destroy(f->r);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

static void signal_op(fixture *f, const char *key, const char *op, const char *input)
{
    assert_int_equal(dt_client_signal_entity(wk_client(&f->env), "SdkCounter", key, op, input,
                                             input != NULL ? strlen(input) : 0, NULL),
                     DT_OK);
}

/* Waits until the entity's state is `want`; fails the test after 20 s. */
static void expect_state(fixture *f, const char *key, const char *want)
{
    char last[64] = "(none)";
    for (int i = 0; i < 400; i++) {
        dt_entity_metadata *m = NULL;
        if (dt_client_get_entity(wk_client(&f->env), "SdkCounter", key, true, &m) == DT_OK) {
            snprintf(last, sizeof last, "%.*s", (int)m->state_len, (const char *)m->state);
            dt_entity_metadata_free(m);
            if (strcmp(last, want) == 0) {
                return;
            }
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("entity %s: state %s, want %s", key, last, want);
}

static void test_operations_in_order(void **state)
{
    fixture *f = *state;
    signal_op(f, "k1", "add", "3");
    signal_op(f, "k1", "add", "4");
    signal_op(f, "k1", "signal", "k2");
    expect_state(f, "k1", "7");
    expect_state(f, "k2", "5"); /* the signal the operation sent */
    wk_start(&f->env, "CCalls", "k1", "add", NULL, NULL);
    wk_expect(&f->env, "k1", ST(COMPLETED), "9");
}

static void test_rule_breaks_fail_the_operation(void **state)
{
    fixture *f = *state;
    signal_op(f, "k3", "add", "1");
    expect_state(f, "k3", "1");
    wk_start(&f->env, "CCalls", "k3", "two_results", NULL, NULL);
    wk_expect(&f->env, "k3", ST(COMPLETED), NULL);
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(wk_client(&f->env), "k3", true, &inst), DT_OK);
    assert_non_null(strstr((const char *)inst->output, "failed: dt.RemoteProtocolError"));
    assert_non_null(strstr((const char *)inst->output, "one result"));
    dt_client_instance_free(inst);
    signal_op(f, "k3", "bad_signal", NULL);
    signal_op(f, "k3", "add", "1");
    expect_state(f, "k3", "2"); /* neither +1000 was written */
    /* Nothing was signalled either: no such entity exists. */
    dt_entity_metadata *m = NULL;
    assert_int_equal(
        dt_client_get_entity(wk_client(&f->env), "SdkCounter", "not-an-entity", true, &m),
        DT_ENOTFOUND);
}

static void test_disconnect_and_abandon_redeliver(void **state)
{
    fixture *f = *state;
    atomic_store(&f->s.drop, 1);
    atomic_store(&f->s.abandon, 1);
    int before = atomic_load(&f->s.items);
    signal_op(f, "k4", "flaky", NULL);
    signal_op(f, "k4", "add", "10");
    expect_state(f, "k4", "11");
    assert_int_equal(atomic_load(&f->s.drop), 0);
    assert_int_equal(atomic_load(&f->s.abandon), 0);
    assert_true(atomic_load(&f->s.items) - before >= 4); /* dropped, abandoned, flaky, add */
    /* Three refusals (two ActivityResponses, junk) per answered "flaky" delivery. */
    int refused = atomic_load(&f->s.refused);
    assert_true(refused >= 3 && refused % 3 == 0);
    /* Applied once: another add lands on 11. */
    signal_op(f, "k4", "add", "1");
    expect_state(f, "k4", "12");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations_in_order),
        cmocka_unit_test(test_rule_breaks_fail_the_operation),
        cmocka_unit_test(test_disconnect_and_abandon_redeliver),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
