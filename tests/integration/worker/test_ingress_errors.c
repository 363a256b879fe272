/*
 * Bad requests and permanent failures at the ingress and on partition subjects (issue 7, item 4
 * and "Bad input"), against the real nats-server: an unknown Dt-Reuse-Policy or an out-of-range
 * Dt-Start-At is refused with a dead letter naming it (never read as another policy or time);
 * the "ignore" policy leaves an unfinished instance as it is and replaces a finished one; a
 * request whose routed message is larger than the stream takes is dead-lettered at once instead
 * of being retried forever; a valid message on another partition's subject is moved to its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common_int.h"
#include "protocol_int.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define WAIT_MS    20000
#define PARTITIONS 2
#define ST(x)      DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

/* Waits for "approve"; outputs "<input>:<event data>". */
static void approval(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    const char *v = dt_await(ctx, dt_wait_event(ctx, "approve"), NULL);
    char out[256];
    int n = snprintf(out, sizeof(out), "%.*s:%s", (int)len, in != NULL ? in : "", v);
    dt_orch_set_output(ctx, out, (size_t)n);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
    int dead_round;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "ingerr", PARTITIONS, 3000);
    dt_worker_options o = wk_options(&f->env);
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "approval", approval, NULL), DT_OK);
    assert_int_equal(dt_worker_start(f->w), DT_OK);
    f->c = wk_client(&f->env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_client_destroy(f->c);
    dt_worker_destroy(f->w);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

/* The next dead letter's reason must contain `needle` (each test reads through its own
 * consumer, which sees every dead letter of the hub: earlier tests' too). */
static void expect_dead_letter(fixture *f, int already, const char *needle)
{
    char durable[32];
    snprintf(durable, sizeof(durable), "dead_%d", f->dead_round++);
    char reasons[8][256];
    int got = wk_dead_letters(&f->env, durable, already + 1, reasons);
    assert_int_equal(got, already + 1);
    if (strstr(reasons[already], needle) == NULL) {
        fail_msg("dead letter '%s' does not say '%s'", reasons[already], needle);
    }
}

static void test_unknown_reuse_policy_is_refused(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "approval", "reuse-word", "\"x\"", "Dt-Reuse-Policy", "replace");
    expect_dead_letter(f, 0, "invalid Dt-Reuse-Policy");
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(f->c, "reuse-word", false, &inst), DT_ENOTFOUND);
}

static void test_start_at_out_of_range_is_refused(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "approval", "far-future", "\"x\"", "Dt-Start-At", "99999999999999999999");
    expect_dead_letter(f, 1, "invalid Dt-Start-At");
    wk_start(&f->env, "approval", "far-future", "\"x\"", "Dt-Start-At", "253402300800000");
    expect_dead_letter(f, 2, "invalid Dt-Start-At");
}

/* "ignore": a start for a running instance has no effect (not an error, no dead letter); once
 * the instance has finished, the same start replaces it. Through the ingress and the client. */
static void test_ignore_policy(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "approval", "ign-1", "\"first\"", NULL, NULL);
    wk_expect(&f->env, "ign-1", ST(RUNNING), NULL);
    wk_start(&f->env, "approval", "ign-1", "\"second\"", "Dt-Reuse-Policy", "ignore");
    dt_client_start_options so = {.instance_id = "ign-1",
                                  .input = "\"third\"",
                                  .input_len = 7,
                                  .reuse_policy = DT_CLIENT_REUSE_IGNORE};
    char id[300];
    assert_int_equal(dt_client_schedule(f->c, "approval", &so, id, sizeof(id)), DT_OK);
    assert_string_equal(id, "ign-1");
    wk_raise(&f->env, "ign-1", "approve", "\"a\"");
    wk_expect(&f->env, "ign-1", ST(COMPLETED), "\"first\":\"a\"");
    /* Finished: an ignore start replaces it. */
    wk_start(&f->env, "approval", "ign-1", "\"again\"", "Dt-Reuse-Policy", "ignore");
    wk_expect(&f->env, "ign-1", ST(RUNNING), NULL);
    wk_raise(&f->env, "ign-1", "approve", "\"b\"");
    wk_expect(&f->env, "ign-1", ST(COMPLETED), "\"again\":\"b\"");
    /* Nothing of this was dead-lettered: the next dead letter is the next test's. */
}

/* A publish-to-start that the ingress stream takes but whose routed message (the body plus its
 * envelope) the partition's stream cannot: dead-lettered at once with the reason. */
static void test_routed_message_too_large(void **state)
{
    fixture *f = *state;
    int64_t max = dt_broker_max_payload(f->env.broker);
    assert_true(max > 1024);
    size_t len = (size_t)max - 100;
    char *body = malloc(len + 1);
    memset(body, 'b', len);
    body[len] = '\0';
    wk_start(&f->env, "approval", "too-big", body, NULL, NULL);
    free(body);
    expect_dead_letter(f, 3, "too large");
}

/* A start published straight to the wrong partition's subject is moved to its own partition
 * and runs there (reads find it). */
static void test_wrong_partition_subject(void **state)
{
    fixture *f = *state;
    const char *id = "moved-1";
    int other = (int)((dt__partition_of(id, PARTITIONS) + 1) % PARTITIONS);
    wk_direct_start start = {id,
                             "exec-moved",
                             "moved-1/exec-moved/start/0",
                             "approval",
                             "\"m\"",
                             false,
                             DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR,
                             other};
    wk_publish_start(&f->env, PARTITIONS, &start);
    wk_expect(&f->env, id, ST(RUNNING), NULL);
    wk_raise(&f->env, id, "approve", "\"ok\"");
    wk_expect(&f->env, id, ST(COMPLETED), "\"m\":\"ok\"");
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(f->c, id, &h), DT_OK); /* its owner answers */
    dt_client_history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_reuse_policy_is_refused),
        cmocka_unit_test(test_start_at_out_of_range_is_refused),
        cmocka_unit_test(test_ignore_policy),
        cmocka_unit_test(test_routed_message_too_large),
        cmocka_unit_test(test_wrong_partition_subject),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
