/*
 * Large payloads never freeze a partition (issue 7, item 3), against the real nats-server (max
 * payload 1 MiB) and a worker on a one-partition hub, so every instance shares one outbox: a
 * start the client accepted with an input just under the limit, an activity echoing a 600 KiB
 * input (input and output together over the limit), an output over the limit, and a durable
 * publish over the limit. Each status record fits (payloads left out, read back in full through
 * the client), each instance ends with the right status, and a small instance started after
 * them completes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define WAIT_MS 30000
#define KIB     1024

static void act_echo(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *in = dt_activity_input(ctx, &len);
    dt_activity_set_output(ctx, in, len);
}

/* Outputs the length of its input. */
static void measure(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    dt_orch_input(ctx, &len);
    char out[32];
    int n = snprintf(out, sizeof(out), "%zu", len);
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Echoes its input through the activity "echo" and outputs the result. */
static void echo_once(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *in = dt_orch_input(ctx, &len);
    size_t olen = 0;
    const void *r = dt_await(ctx, dt_call_activity(ctx, "echo", in, len, NULL), &olen);
    dt_orch_set_output(ctx, r, olen);
}

/* Outputs its input twice over (over the limit for a 600 KiB input). */
static void echo_twice(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char *out = dt_orch_alloc(ctx, 2 * len);
    memcpy(out, in, len);
    memcpy(out + len, in, len);
    dt_orch_set_output(ctx, out, 2 * len);
}

/* Publishes its input twice over to a plain subject, then completes. */
static void publish_big(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char *body = dt_orch_alloc(ctx, 2 * len);
    memcpy(body, in, len);
    memcpy(body + len, in, len);
    dt_publish(ctx, "oversize.nobody.listens", NULL, NULL, 0, body, 2 * len);
    dt_orch_set_output(ctx, "\"published\"", 11);
}

/* Starts a child with its input twice over (over the limit); outputs the failure type caught. */
static void big_child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char *body = dt_orch_alloc(ctx, 2 * len);
    memcpy(body, in, len);
    memcpy(body + len, in, len);
    dt_task *t = dt_call_sub_orchestrator(ctx, "measure", body, 2 * len, NULL);
    if (dt_try_await(ctx, t) == DT_OK) {
        dt_orch_set_output(ctx, "\"started\"", 9);
        return;
    }
    const dt_failure *f = dt_task_failure(t);
    const char *type = f != NULL && f->inner != NULL ? f->inner->type : (f ? f->type : "?");
    dt_orch_set_output(ctx, type, strlen(type));
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
    char *big; /* 600 KiB of 'x' */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "oversize", 1, 3000);
    dt_worker_options o = wk_options(&f->env);
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "measure", measure, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "echo_once", echo_once, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "echo_twice", echo_twice, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "publish_big", publish_big, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "big_child", big_child, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "echo", NULL, act_echo, NULL), DT_OK);
    assert_int_equal(dt_worker_start(f->w), DT_OK);
    f->c = wk_client(&f->env);
    f->big = malloc(600 * KIB);
    memset(f->big, 'x', 600 * KIB);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_client_destroy(f->c);
    dt_worker_destroy(f->w);
    wk_teardown(&f->env);
    free(f->big);
    free(f);
    return 0;
}

static void start(fixture *f, const char *name, const char *id, const void *in, size_t len)
{
    dt_client_start_options so = {.instance_id = id, .input = in, .input_len = len};
    char got[300];
    dt_status st = dt_client_schedule(f->c, name, &so, got, sizeof(got));
    if (st != DT_OK) {
        fail_msg("schedule %s: %s: %s", id, dt_status_name(st), dt_client_errmsg(f->c));
    }
}

static dt_client_instance *finish(fixture *f, const char *id)
{
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_wait_for_completion(f->c, id, WAIT_MS, true, &inst);
    if (st != DT_OK) {
        fail_msg("wait %s: %s: %s", id, dt_status_name(st), dt_client_errmsg(f->c));
    }
    return inst;
}

/* A small instance completes: the partition is not frozen. */
static void small_one_completes(fixture *f, const char *id)
{
    start(f, "measure", id, "\"hi\"", 4);
    dt_client_instance *inst = finish(f, id);
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_int_equal(inst->output_len, 1);
    assert_memory_equal(inst->output, "4", 1);
    dt_client_instance_free(inst);
}

/* The largest input the client accepts: the instance runs, its input reads back whole. */
static void test_input_at_the_limit(void **state)
{
    fixture *f = *state;
    size_t len = 1024 * KIB;
    char *in = malloc(len);
    memset(in, 'i', len);
    dt_client_start_options so = {.instance_id = "huge-in", .input = in, .input_len = len};
    char got[300];
    dt_status st = DT_ETOOLARGE;
    while (st == DT_ETOOLARGE && len > 0) { /* the largest that is accepted */
        so.input_len = len;
        st = dt_client_schedule(f->c, "measure", &so, got, sizeof(got));
        len -= st == DT_ETOOLARGE ? 256 : 0;
    }
    if (st != DT_OK) {
        fail_msg("schedule: %s: %s", dt_status_name(st), dt_client_errmsg(f->c));
    }
    assert_true(len > 1000 * KIB);
    dt_client_instance *inst = finish(f, "huge-in");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    char want[32];
    snprintf(want, sizeof(want), "%zu", len);
    assert_int_equal(inst->output_len, strlen(want));
    assert_memory_equal(inst->output, want, strlen(want));
    assert_int_equal(inst->input_len, len);
    assert_memory_equal(inst->input, in, len);
    dt_client_instance_free(inst);
    free(in);
    small_one_completes(f, "after-huge-in");
}

/* Input and output of 600 KiB each: together over the limit, each one readable. */
static void test_echoed_input(void **state)
{
    fixture *f = *state;
    start(f, "echo_once", "echo-600k", f->big, 600 * KIB);
    dt_client_instance *inst = finish(f, "echo-600k");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_int_equal(inst->input_len, 600 * KIB);
    assert_int_equal(inst->output_len, 600 * KIB);
    assert_memory_equal(inst->output, f->big, 600 * KIB);
    assert_memory_equal(inst->input, f->big, 600 * KIB);
    dt_client_instance_free(inst);
    /* Without payloads the record alone answers. */
    assert_int_equal(dt_client_get_status(f->c, "echo-600k", false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_null(inst->input);
    dt_client_instance_free(inst);
    small_one_completes(f, "after-echo");
}

/* An output over the limit fails the instance with a clear reason. */
static void test_output_over_the_limit(void **state)
{
    fixture *f = *state;
    start(f, "echo_twice", "twice-600k", f->big, 600 * KIB);
    dt_client_instance *inst = finish(f, "twice-600k");
    assert_int_equal(inst->runtime_status, DT_CLIENT_FAILED);
    assert_non_null(inst->failure);
    assert_string_equal(inst->failure->type, DT_FAILURE_PAYLOAD_TOO_LARGE);
    assert_non_null(strstr(inst->failure->message, "output of 1228800 bytes"));
    dt_client_instance_free(inst);
    small_one_completes(f, "after-twice");
}

/* A durable publish over the limit is dead-lettered by the outbox instead of blocking it. */
static void test_publish_over_the_limit(void **state)
{
    fixture *f = *state;
    start(f, "publish_big", "publish-big", f->big, 600 * KIB);
    dt_client_instance *inst = finish(f, "publish-big");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    dt_client_instance_free(inst);
    small_one_completes(f, "after-publish");
    small_one_completes(f, "after-publish-2");
}

/* A sub-orchestration request over the limit fails the child task at once, so the parent can
 * catch it (before, it got a result of the wrong kind and waited forever). */
static void test_child_request_over_the_limit(void **state)
{
    fixture *f = *state;
    start(f, "big_child", "big-child", f->big, 600 * KIB);
    dt_client_instance *inst = finish(f, "big-child");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_int_equal(inst->output_len, strlen(DT_FAILURE_PAYLOAD_TOO_LARGE));
    assert_memory_equal(inst->output, DT_FAILURE_PAYLOAD_TOO_LARGE, inst->output_len);
    dt_client_instance_free(inst);
    small_one_completes(f, "after-big-child");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_at_the_limit),
        cmocka_unit_test(test_echoed_input),
        cmocka_unit_test(test_output_over_the_limit),
        cmocka_unit_test(test_publish_over_the_limit),
        cmocka_unit_test(test_child_request_over_the_limit),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
