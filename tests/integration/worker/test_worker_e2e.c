/*
 * End-to-end tests of one worker process against the real nats-server: orchestrations started
 * and driven through the ingress subjects (plain JetStream publishes, as any NATS client would
 * send them), outcomes read from the status bucket the worker writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "durabletask/worker.h"
#include "worker_kit.h"

#define WAIT_MS 20000

/* ---- activities ---- */

static void act_square(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    long v = strtol(dt_activity_input(ctx, NULL), NULL, 10);
    char out[32];
    int n = snprintf(out, sizeof(out), "%ld", v * v);
    dt_activity_set_output(ctx, out, (size_t)n);
}

static void act_fail(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_fail(ctx, "app.Nope", "refused", true);
}

/* ---- orchestrators ---- */

static void chain(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *cities[] = {"Tokyo", "Seattle", "London"};
    char out[512] = "";
    for (int i = 0; i < 3; i++) {
        const char *r =
            dt_await(ctx, dt_call_activity(ctx, "hello", cities[i], strlen(cities[i]), NULL), NULL);
        size_t used = strlen(out);
        snprintf(out + used, sizeof(out) - used, "%s%s", i > 0 ? "," : "", r);
    }
    dt_orch_set_output(ctx, out, strlen(out));
}

static void fan(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long n = strtol(dt_orch_input(ctx, NULL), NULL, 10);
    dt_task **t = dt_orch_alloc(ctx, (size_t)n * sizeof(*t));
    for (long i = 0; i < n; i++) {
        char in[32];
        int len = snprintf(in, sizeof(in), "%ld", i);
        t[i] = dt_call_activity(ctx, "square", in, (size_t)len, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, t, (size_t)n), NULL);
    long sum = 0;
    for (long i = 0; i < n; i++) {
        sum += strtol(dt_task_output(t[i], NULL), NULL, 10);
    }
    char out[32];
    int len = snprintf(out, sizeof(out), "%ld", sum);
    dt_orch_set_output(ctx, out, (size_t)len);
}

static void approval(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_set_custom_status(ctx, "\"waiting\"", 9);
    dt_task *t = dt_wait_event_timeout(ctx, "approve", 30000);
    if (dt_try_await(ctx, t) == DT_OK) {
        const char *v = dt_task_output(t, NULL);
        dt_orch_set_output(ctx, v, strlen(v));
    } else {
        dt_orch_set_output(ctx, "timeout", 7);
    }
}

static void child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *in = dt_orch_input(ctx, NULL);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "square", in, strlen(in), NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static void parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *a = dt_call_sub_orchestrator(ctx, "child", "6", 1, NULL);
    dt_task *b = dt_call_sub_orchestrator(ctx, "child", "7", 1, NULL);
    dt_task *both[] = {a, b};
    dt_await(ctx, dt_when_all(ctx, both, 2), NULL);
    char out[64];
    int n = snprintf(out, sizeof(out), "%s+%s", (const char *)dt_task_output(a, NULL),
                     (const char *)dt_task_output(b, NULL));
    dt_orch_set_output(ctx, out, (size_t)n);
}

static void countdown(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long n = strtol(dt_orch_input(ctx, NULL), NULL, 10);
    if (n <= 0) {
        dt_orch_set_output(ctx, "liftoff", 7);
        return;
    }
    dt_await(ctx, dt_sleep(ctx, 50), NULL);
    char next[32];
    int len = snprintf(next, sizeof(next), "%ld", n - 1);
    dt_continue_as_new(ctx, next, (size_t)len, false);
}

static void failing(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "fail", NULL, 0, NULL), NULL);
}

static void forever(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

static void publisher(dt_orch_ctx *ctx, void *ud)
{
    const char *subject = ud;
    const char *names[] = {"X-Order"};
    const char *values[] = {"42"};
    dt_publish(ctx, subject, names, values, 1, "shipped", 7);
}

/* ---- fixture ---- */

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    char pub_subject[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "e2e", 4, 3000);
    snprintf(f->pub_subject, sizeof(f->pub_subject), "events.%s.shipped", f->env.hub);
    dt_worker_options o = wk_options(&f->env);
    o.parked_event_ttl_ms = 1000; /* an event for an unknown instance is dead-lettered soon */
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "chain", chain, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "fan", fan, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "approval", approval, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "parent", parent, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "child", child, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "countdown", countdown, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "failing", failing, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "forever", forever, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "publisher", publisher, f->pub_subject),
                     DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "hello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "square", NULL, act_square, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "fail", NULL, act_fail, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "chain", chain, NULL), DT_EEXIST);
    assert_int_equal(dt_worker_add_activity(f->w, "bad name", NULL, act_fail, NULL), DT_EINVAL);
    if (dt_worker_start(f->w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(f->w));
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_worker_destroy(f->w);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

static void expect(fixture *f, const char *id, int status, const char *output)
{
    Dtpb__InstanceStatus *s = wk_wait(&f->env, id, -1, WAIT_MS);
    if (s == NULL) {
        fail_msg("instance %s did not finish in time", id);
    }
    assert_int_equal(s->runtime_status, status);
    if (output != NULL) {
        assert_string_equal(wk_output(s), output);
    }
    dtpb__instance_status__free_unpacked(s, NULL);
}

static void test_chain(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "chain", "chain-1", NULL, NULL, NULL);
    expect(f, "chain-1", ST(COMPLETED), "Hello Tokyo,Hello Seattle,Hello London");
}

static void test_fan_out(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "fan", "fan-1", "200", NULL, NULL);
    expect(f, "fan-1", ST(COMPLETED), "2646700");
}

static void test_event_and_custom_status(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "approval", "appr-1", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "appr-1", ST(RUNNING), WAIT_MS);
    assert_non_null(s);
    dtpb__instance_status__free_unpacked(s, NULL);
    wk_raise(&f->env, "appr-1", "approve", "\"yes\"");
    expect(f, "appr-1", ST(COMPLETED), "\"yes\"");
}

static void test_sub_orchestrations(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "parent", "par-1", NULL, NULL, NULL);
    expect(f, "par-1", ST(COMPLETED), "36+49");
}

static void test_continue_as_new(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "countdown", "cd-1", "5", NULL, NULL);
    expect(f, "cd-1", ST(COMPLETED), "liftoff");
}

static void test_failure_and_unknown(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "failing", "fail-1", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "fail-1", -1, WAIT_MS);
    assert_non_null(s);
    assert_int_equal(s->runtime_status, ST(FAILED));
    assert_non_null(s->failure_details);
    assert_string_equal(s->failure_details->error_type, "dt.TaskFailed");
    assert_string_equal(s->failure_details->inner_failure->error_type, "app.Nope");
    dtpb__instance_status__free_unpacked(s, NULL);
    wk_start(&f->env, "no_such_orchestrator", "unk-1", NULL, NULL, NULL);
    s = wk_wait(&f->env, "unk-1", -1, WAIT_MS);
    assert_non_null(s);
    assert_int_equal(s->runtime_status, ST(FAILED));
    assert_string_equal(s->failure_details->error_type, "dt.UnknownOrchestrator");
    dtpb__instance_status__free_unpacked(s, NULL);
}

static void test_terminate(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "forever", "term-1", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "term-1", ST(RUNNING), WAIT_MS);
    assert_non_null(s);
    dtpb__instance_status__free_unpacked(s, NULL);
    wk_control(&f->env, "terminate", "term-1", "\"enough\"");
    expect(f, "term-1", ST(TERMINATED), "\"enough\"");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct received {
    int count;
    char data[4096];
    size_t len;
} received;

static void on_published(dt_broker_msg *m, void *ctx)
{
    received *r = ctx;
    r->len =
        dt_broker_msg_len(m) < sizeof(r->data) - 1 ? dt_broker_msg_len(m) : sizeof(r->data) - 1;
    memcpy(r->data, dt_broker_msg_data(m), r->len);
    r->data[r->len] = '\0';
    __atomic_add_fetch(&r->count, 1, __ATOMIC_SEQ_CST);
    dt_broker_msg_destroy(m);
}

/* A plain NATS subscription that counts what arrives on `subject`. */
static dt_broker_sub *listen(fixture *f, const char *subject, received *r)
{
    dt_broker_sub *sub = NULL;
    assert_int_equal(dt_broker_subscribe(f->env.broker, subject, NULL, on_published, r, &sub),
                     DT_OK);
    return sub;
}

/* Waits for the first message, then long enough for a repeat to show (say, one sent again after
 * a PubAck wait that can never end), and requires exactly one. */
static void heard_once(dt_broker_sub *sub, received *r)
{
    for (int i = 0; i < 100 && __atomic_load_n(&r->count, __ATOMIC_SEQ_CST) == 0; i++) {
        sleep_ms(20);
    }
    sleep_ms(2500);
    dt_broker_sub_destroy(sub);
    assert_int_equal(r->count, 1);
}

static void test_durable_publish(void **state)
{
    fixture *f = *state;
    received r = {0};
    dt_broker_sub *sub = listen(f, f->pub_subject, &r);
    wk_start(&f->env, "publisher", "pub-1", NULL, NULL, NULL);
    expect(f, "pub-1", ST(COMPLETED), NULL);
    heard_once(sub, &r);
    assert_string_equal(r.data, "shipped");
}

static void test_result_subject(void **state)
{
    fixture *f = *state;
    received r = {0};
    char subject[128];
    snprintf(subject, sizeof(subject), "results.%s.chain", f->env.hub);
    dt_broker_sub *sub = listen(f, subject, &r);
    wk_start(&f->env, "chain", "chain-rs", "\"in\"", "Dt-Result-Subject", subject);
    expect(f, "chain-rs", ST(COMPLETED), NULL);
    heard_once(sub, &r);
    /* The final status record: status, output, input and times. */
    Dtpb__InstanceStatus *st = dtpb__instance_status__unpack(NULL, r.len, (const uint8_t *)r.data);
    assert_non_null(st);
    assert_string_equal(st->instance_id, "chain-rs");
    assert_int_equal(st->runtime_status, ST(COMPLETED));
    assert_non_null(st->output);
    assert_non_null(st->input);
    assert_int_equal(st->input->value.len, 4);
    assert_non_null(st->created_at);
    assert_true(st->created_at->seconds > 0);
    dtpb__instance_status__free_unpacked(st, NULL);
}

static int dead_letters(fixture *f, int want, char reasons[][256])
{
    return wk_dead_letters(&f->env, "test_dead", want, reasons);
}

static bool any_contains(char reasons[][256], int n, const char *needle)
{
    for (int i = 0; i < n; i++) {
        if (strstr(reasons[i], needle) != NULL) {
            return true;
        }
    }
    return false;
}

/* Garbage on a partition subject, an ingress request without an instance ID and an event for an
 * instance that never starts (once it has waited parked_event_ttl_ms) all end up as dead letters
 * with a reason; the worker carries on. */
static void test_bad_messages_are_dead_lettered(void **state)
{
    fixture *f = *state;
    char subject[DT_BROKER_NAME_BUF];
    assert_int_equal(
        dt_broker_subject(f->env.hub, DT_BROKER_SUBJ_ORCH, "0", subject, sizeof(subject)), DT_OK);
    dt_broker_outmsg garbage = {.subject = subject, .data = "\xff\x01not protobuf", .len = 14};
    assert_int_equal(dt_broker_publish(f->env.broker, &garbage, NULL), DT_OK);
    assert_int_equal(
        dt_broker_subject(f->env.hub, DT_BROKER_SUBJ_IN, "raise.go", subject, sizeof(subject)),
        DT_OK);
    dt_broker_outmsg no_id = {.subject = subject, .data = "1", .len = 1};
    assert_int_equal(dt_broker_publish(f->env.broker, &no_id, NULL), DT_OK);
    wk_raise(&f->env, "no-such-instance", "go", "1");
    char reasons[3][256];
    assert_int_equal(dead_letters(f, 3, reasons), 3);
    assert_true(any_contains(reasons, 3, "malformed OrchestrationMessage"));
    assert_true(any_contains(reasons, 3, "Dt-Instance-Id"));
    assert_true(any_contains(reasons, 3, "no instance 'no-such-instance' started within 1000 ms"));
    wk_start(&f->env, "chain", "after-garbage", NULL, NULL, NULL);
    expect(f, "after-garbage", ST(COMPLETED), "Hello Tokyo,Hello Seattle,Hello London");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_fan_out),
        cmocka_unit_test(test_event_and_custom_status),
        cmocka_unit_test(test_sub_orchestrations),
        cmocka_unit_test(test_continue_as_new),
        cmocka_unit_test(test_failure_and_unknown),
        cmocka_unit_test(test_terminate),
        cmocka_unit_test(test_durable_publish),
        cmocka_unit_test(test_result_subject),
        cmocka_unit_test(test_bad_messages_are_dead_lettered),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
