/*
 * Orchestrations and activities run by an SDK worker (runtime/remote) end to end: a real
 * nats-server, a real worker with a dt__remote attached, and fake_sdk.c speaking the protocol's
 * packed messages through remote_int.h as the gRPC transport relays them. Starts and events go in
 * as any NATS client sends them; outcomes are read from the status bucket.
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

#include "dt_remote.pb-c.h"
#include "fake_sdk.h"
#include "worker_kit.h"

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

typedef struct fixture {
    wk_env env;
    dt__remote *r;
    dt_worker *w;
    fake_sdk sdk;
} fixture;

/* A C orchestration that calls the SDK's activity. */
static void c_calls_sdk(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "SdkHello", in, len, NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

/* A C orchestration whose child is an SDK orchestration. */
static void c_parent_of_sdk(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *r = dt_await(ctx, dt_call_sub_orchestrator(ctx, "Child", "c", 1, NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

/* A C orchestration an SDK orchestration calls as its child. */
static void c_child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char out[128];
    int n = snprintf(out, sizeof(out), "C child of %.*s", (int)len, in != NULL ? in : "");
    dt_orch_set_output(ctx, out, (size_t)n);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "remote", 2, 3000);
    const char *acts[] = {"SdkHello", "SdkFail"};
    dt__remote_options ro;
    dt__remote_options_init(&ro);
    ro.activities = acts;
    ro.n_activities = 2;
    ro.episode_timeout_ms = 3000;
    ro.activity_timeout_ms = 3000;
    assert_int_equal(dt__remote_create(&ro, &f->r), DT_OK);
    dt_worker_options o = wk_options(&f->env);
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "CCallsSdk", c_calls_sdk, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "CHello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "CParent", c_parent_of_sdk, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "CChild", c_child, NULL), DT_OK);
    assert_int_equal(dt__remote_attach(f->r, f->w), DT_OK);
    assert_int_equal(dt__remote_attach(f->r, f->w), DT_ESTATE);
    if (dt_worker_start(f->w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(f->w));
    }
    fake_sdk_start(&f->sdk, f->r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_worker_destroy(f->w);
    fake_sdk_stop(&f->sdk);
    dt__remote_destroy(f->r);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

static void test_chain_of_sdk_activities(void **state)
{
    fixture *f = *state;
    int before = atomic_load(&f->sdk.sdk_hello_runs);
    wk_start(&f->env, "Chain", "chain-1", "x", NULL, NULL);
    wk_expect(&f->env, "chain-1", ST(COMPLETED), "Hello Hello Hello x");
    assert_int_equal(atomic_load(&f->sdk.sdk_hello_runs) - before, 3);
}

static void test_sdk_orchestration_calls_c_activity(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "ChainC", "chainc-1", "y", NULL, NULL);
    wk_expect(&f->env, "chainc-1", ST(COMPLETED), "Hello Hello Hello y");
}

static void test_c_orchestration_calls_sdk_activity(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "CCallsSdk", "ccalls-1", "z", NULL, NULL);
    wk_expect(&f->env, "ccalls-1", ST(COMPLETED), "Hello z");
}

static void test_timer(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "Timer", "timer-1", NULL, NULL, NULL);
    wk_expect(&f->env, "timer-1", ST(COMPLETED), "timer done");
}

static void test_sub_orchestration(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "Parent", "parent-1", "p", NULL, NULL);
    wk_expect(&f->env, "parent-1", ST(COMPLETED), "parent(child of p)");
    wk_expect(&f->env, "parent-1-child", ST(COMPLETED), "child of p");
}

static void test_c_and_sdk_children(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "CParent", "cparent-1", NULL, NULL, NULL);
    wk_expect(&f->env, "cparent-1", ST(COMPLETED), "child of c");
    wk_start(&f->env, "ParentOfC", "parentofc-1", "s", NULL, NULL);
    wk_expect(&f->env, "parentofc-1", ST(COMPLETED), "parent(C child of s)");
}

static void test_external_event(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "Waiter", "waiter-1", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "waiter-1", ST(RUNNING), 30000);
    assert_non_null(s);
    dtpb__instance_status__free_unpacked(s, NULL);
    wk_raise(&f->env, "waiter-1", "go", "the data");
    wk_expect(&f->env, "waiter-1", ST(COMPLETED), "the data");
}

static void test_continue_as_new(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "Counter", "counter-1", "0", NULL, NULL);
    wk_expect(&f->env, "counter-1", ST(COMPLETED), "3");
}

static void test_failure_details(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "FailAct", "fail-1", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "fail-1", -1, 30000);
    assert_non_null(s);
    assert_int_equal(s->runtime_status, ST(FAILED));
    assert_non_null(s->failure_details);
    assert_string_equal(s->failure_details->error_type, "app.Wrapped");
    assert_non_null(s->failure_details->inner_failure);
    assert_string_equal(s->failure_details->inner_failure->error_type, "app.Err");
    assert_string_equal(s->failure_details->inner_failure->error_message, "bad");
    dtpb__instance_status__free_unpacked(s, NULL);
}

/* The SDK worker takes the episode and vanishes: the episode is left and comes again; the
 * reconnected worker completes it, and every activity ran once. */
static void test_disconnect_mid_episode(void **state)
{
    fixture *f = *state;
    int runs = atomic_load(&f->sdk.sdk_hello_runs);
    int drops = atomic_load(&f->sdk.drops);
    atomic_store(&f->sdk.drop_orch, 1);
    wk_start(&f->env, "Chain", "chain-drop", "d", NULL, NULL);
    wk_expect(&f->env, "chain-drop", ST(COMPLETED), "Hello Hello Hello d");
    assert_int_equal(atomic_load(&f->sdk.drops) - drops, 1);
    assert_int_equal(atomic_load(&f->sdk.sdk_hello_runs) - runs, 3);
}

/* The same for an activity work item: redelivered and completed. */
static void test_disconnect_mid_activity(void **state)
{
    fixture *f = *state;
    int drops = atomic_load(&f->sdk.drops);
    atomic_store(&f->sdk.drop_act, 1);
    wk_start(&f->env, "CCallsSdk", "ccalls-drop", "q", NULL, NULL);
    wk_expect(&f->env, "ccalls-drop", ST(COMPLETED), "Hello q");
    assert_int_equal(atomic_load(&f->sdk.drops) - drops, 1);
}

/* A response that reuses an action id of history fails the instance with dt.NonDeterminism and
 * writes nothing of it; junk bytes are refused (DT_EINVAL) and change nothing. */
static void test_malformed_response(void **state)
{
    fixture *f = *state;
    atomic_store(&f->sdk.garbage_first, true);
    wk_start(&f->env, "Reuse", "reuse-1", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "reuse-1", -1, 30000);
    assert_non_null(s);
    assert_int_equal(s->runtime_status, ST(FAILED));
    assert_string_equal(s->failure_details->error_type, "dt.NonDeterminism");
    assert_non_null(strstr(s->failure_details->error_message, "action 0"));
    dtpb__instance_status__free_unpacked(s, NULL);
    assert_int_equal(atomic_load(&f->sdk.garbage_refused), 1);
    /* Nothing is in flight for it any more: a late answer is not found. */
    Dtpb__Remote__OrchestratorResponse r = DTPB__REMOTE__ORCHESTRATOR_RESPONSE__INIT;
    r.instance_id = "reuse-1";
    uint8_t buf[64];
    size_t n = protobuf_c_message_pack(&r.base, buf);
    assert_int_equal(dt__remote_complete_orchestration(f->r, buf, n), DT_ENOTFOUND);
}

/* An abandoned episode comes again (and runs once); junk abandon requests are refused. */
static void test_abandon(void **state)
{
    fixture *f = *state;
    int before = atomic_load(&f->sdk.abandoned);
    atomic_store(&f->sdk.abandon_orch, 1);
    wk_start(&f->env, "Chain", "chain-abandon", "b", NULL, NULL);
    wk_expect(&f->env, "chain-abandon", ST(COMPLETED), "Hello Hello Hello b");
    assert_int_equal(atomic_load(&f->sdk.abandoned) - before, 1);
    const uint8_t junk[] = {0x0a, 0xff};
    assert_int_equal(dt__remote_abandon(f->r, junk, sizeof(junk)), DT_EINVAL);
    const uint8_t unknown[] = {0x0a, 0x02, '9', '9'};
    assert_int_equal(dt__remote_abandon(f->r, unknown, sizeof(unknown)), DT_ENOTFOUND);
}

/* With no SDK worker connected the episode is left (nothing committed, no failure); once one
 * connects, the redelivered start runs. */
static void test_no_worker_connected(void **state)
{
    fixture *f = *state;
    fake_sdk_stop(&f->sdk);
    assert_int_equal(dt__remote_connections(f->r), 0);
    wk_start(&f->env, "Chain", "chain-alone", "n", NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "chain-alone", ST(RUNNING), 2000);
    assert_null(s); /* not started, not failed: left for redelivery */
    memset(&f->sdk, 0, sizeof(f->sdk));
    fake_sdk_start(&f->sdk, f->r);
    wk_expect(&f->env, "chain-alone", ST(COMPLETED), "Hello Hello Hello n");
}

/* A C activity that must not run: "SdkHello" served on the default queue by a C worker. */
static void decoy(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_set_output(ctx, "WRONG", 5);
}

/* SDK activities on a task queue of their own: an SDK orchestration's ScheduleTask of one of
 * their names goes to that queue (a decoy C "SdkHello" on the default queue never runs), and its
 * call of a C activity stays on the default queue. */
static void test_sdk_activities_on_their_own_queue(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "remoteq", 2, 3000);
    const char *acts[] = {"SdkHello"};
    dt__remote_options ro;
    dt__remote_options_init(&ro);
    ro.activities = acts;
    ro.n_activities = 1;
    ro.task_queue = "sdkq";
    dt__remote *r = NULL;
    assert_int_equal(dt__remote_create(&ro, &r), DT_OK);
    dt_worker_options o = wk_options(&env);
    char err[256] = "";
    dt_worker *w = NULL, *c = NULL;
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt__remote_attach(r, w), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);
    /* An activity-only C worker (no partitions) on the default queue. */
    assert_int_equal(dt_worker_create(&o, &c, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_activity(c, "SdkHello", NULL, decoy, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(c, "CHello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_start(c), DT_OK);
    fake_sdk sdk;
    memset(&sdk, 0, sizeof(sdk));
    fake_sdk_start(&sdk, r);
    wk_start(&env, "Chain", "q-chain", "x", NULL, NULL);
    wk_expect(&env, "q-chain", ST(COMPLETED), "Hello Hello Hello x");
    wk_start(&env, "ChainC", "q-chainc", "y", NULL, NULL);
    wk_expect(&env, "q-chainc", ST(COMPLETED), "Hello Hello Hello y");
    dt_worker_destroy(c);
    dt_worker_destroy(w);
    fake_sdk_stop(&sdk);
    dt__remote_destroy(r);
    wk_teardown(&env);
}

static void test_terminate(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "Waiter", "waiter-term", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "waiter-term", ST(RUNNING), 30000);
    assert_non_null(s);
    dtpb__instance_status__free_unpacked(s, NULL);
    wk_control(&f->env, "terminate", "waiter-term", "enough");
    wk_expect(&f->env, "waiter-term", ST(TERMINATED), NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_of_sdk_activities),
        cmocka_unit_test(test_sdk_orchestration_calls_c_activity),
        cmocka_unit_test(test_c_orchestration_calls_sdk_activity),
        cmocka_unit_test(test_timer),
        cmocka_unit_test(test_sub_orchestration),
        cmocka_unit_test(test_c_and_sdk_children),
        cmocka_unit_test(test_external_event),
        cmocka_unit_test(test_continue_as_new),
        cmocka_unit_test(test_failure_details),
        cmocka_unit_test(test_disconnect_mid_episode),
        cmocka_unit_test(test_disconnect_mid_activity),
        cmocka_unit_test(test_malformed_response),
        cmocka_unit_test(test_abandon),
        cmocka_unit_test(test_no_worker_connected),
        cmocka_unit_test(test_terminate),
        cmocka_unit_test(test_sdk_activities_on_their_own_queue),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
