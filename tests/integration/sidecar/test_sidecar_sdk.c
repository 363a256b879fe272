/*
 * test_sidecar_sdk.c: orchestrations and activities written with @microsoft/durabletask-js run
 * through dt-sidecar (tests/js/sidecar_sdk.mjs: sequences, fan-out/fan-in, timers, events with
 * timeout, sub-orchestrations, continue-as-new, failures, suspend/resume, terminate, query,
 * history, purge, a worker that dies holding an activity), next to C code on the same hub: the
 * sidecar's worker also serves a C activity that an SDK orchestration calls and runs a C
 * orchestration that calls an SDK activity.
 * (A C worker process of its own next to the sidecar: test_remote_sdk, test_routing_by_name.)
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "durabletask/activity.h"
#include "durabletask/client.h"
#include "durabletask/orchestration.h"
#include "durabletask/worker.h"
#include "sidecar_kit.h"
#include "sidecar_node.h"
#include "test_support.h"

static void c_upper(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char *out = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        out[i] = (char)toupper((unsigned char)in[i]);
    }
    dt_activity_set_output(ctx, out, len);
    free(out);
}

static void c_calls_js(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *in = dt_orch_input(ctx, &len);
    const void *out = dt_await(ctx, dt_call_activity(ctx, "hello", in, len, NULL), &len);
    dt_orch_set_output(ctx, out, len);
}

static dt_status setup(dt_worker *w, void *ctx)
{
    (void)ctx;
    dt_status st = dt_worker_add_activity(w, "CUpper", NULL, c_upper, NULL);
    return st != DT_OK ? st : dt_worker_add_orchestrator(w, "CCallsJs", c_calls_js, NULL);
}

/* Creates hub "<tag><pid>" (2 partitions, memory), starts an in-process sidecar on it serving the
 * SDK activities `acts` (and the C code of `worker_setup`, may be NULL), runs tests/js/`script`
 * with the sidecar's port and `arg` (may be NULL), stops everything and returns the script's
 * exit status. */
static int run_with_sidecar2(const char *tag, const char *const *acts, size_t n_acts,
                             dt_status (*worker_setup)(dt_worker *, void *), const char *script,
                             const char *arg, const char *arg2)
{
    const char *url = dt_test_nats_url();
    assert_non_null(url);
    char hub[64];
    snprintf(hub, sizeof hub, "%s%ld", tag, (long)getpid());
    dt_client *c = sidecar_kit_hub(url, hub);

    char *dir = dt_test_mkdtemp(tag);
    dt__sidecar_options so = {.nats_url = url,
                              .hub = hub,
                              .listen = "127.0.0.1:0",
                              .data_dir = dir,
                              .activities = acts,
                              .n_activities = n_acts,
                              .setup = worker_setup};
    char port[16];
    dt__sidecar *s = sidecar_kit_start(&so, port);
    int rc = sidecar_run_node(script, port, arg, arg2, NULL);
    dt__sidecar_stop(s);
    assert_int_equal(dt_client_hub_delete(c), DT_OK);
    dt_client_destroy(c);
    dt_test_rmtree(dir);
    free(dir);
    return rc;
}

static int run_with_sidecar(const char *tag, const char *const *acts, size_t n_acts,
                            dt_status (*worker_setup)(dt_worker *, void *), const char *script,
                            const char *arg)
{
    return run_with_sidecar2(tag, acts, n_acts, worker_setup, script, arg, NULL);
}

static int run_with_sidecar_args(const char *tag, const char *const *acts, size_t n_acts,
                                 const char *script, const char *arg, const char *arg2)
{
    return run_with_sidecar2(tag, acts, n_acts, NULL, script, arg, arg2);
}

static void test_sdk_orchestrations(void **state)
{
    (void)state;
    static const char *const acts[] = {"hello", "double", "boom", "slow", "stuck"};
    assert_int_equal(run_with_sidecar("sdk", acts, 5, setup, "sidecar_sdk.mjs", NULL), 0);
}

/* 100 WaitForInstanceCompletion calls open at once while the SDK worker runs the instances they
 * wait on (tests/js/sidecar_waits.mjs). grpc-js puts the app's client and worker on one
 * connection: with a stream limit of 100 the waits held every stream and the worker's
 * completions queued behind them, so nothing finished until the waits timed out. */
static void test_waits_while_the_sdk_works(void **state)
{
    (void)state;
    static const char *const acts[] = {"hello"};
    assert_int_equal(run_with_sidecar("sdkw", acts, 1, NULL, "sidecar_waits.mjs", "100"), 0);
}

/* 300 waits opened at once, more than the endpoint's share of waiting handlers (224 of 256):
 * those beyond are refused at once and every chain completes. Before the share, the waits held
 * every stream of the connection the SDK worker shares and all of them hung until their
 * timeouts (tests/js/sidecar_waits.mjs, mode "over"). */
static void test_more_waits_than_streams(void **state)
{
    (void)state;
    static const char *const acts[] = {"hello"};
    assert_int_equal(run_with_sidecar_args("sdko", acts, 1, "sidecar_waits.mjs", "300", "over"), 0);
}

/* Rewind of SDK orchestrations (tests/js/sidecar_rewind.mjs): an orchestrator that threw, a
 * failed activity, a failed sub-orchestration; only what failed runs again. */
static void test_sdk_rewind(void **state)
{
    (void)state;
    static const char *const acts[] = {"steady", "flaky", "flakyKid"};
    assert_int_equal(run_with_sidecar("sdkr", acts, 3, NULL, "sidecar_rewind.mjs", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_orchestrations),
        cmocka_unit_test(test_waits_while_the_sdk_works),
        cmocka_unit_test(test_sdk_rewind),
        cmocka_unit_test(test_more_waits_than_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
