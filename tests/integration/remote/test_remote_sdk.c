/*
 * test_remote_sdk.c: orchestrations and activities written with @microsoft/durabletask-js
 * (tests/js/sdk_worker.mjs) run against dt-sidecar's worker side (runtime/remote), in this
 * process, next to a C worker of the same hub that serves the C activity "CHello" (and no
 * orchestration, so it owns no partition): a C worker and a JS worker share a hub. The script
 * checks an activity chain, fan-out/fan-in, a timer, custom status, an external event with and
 * without its timeout, a sub-orchestration, continue-as-new, failure details, terminate, and the
 * SDK orchestration's call of the C activity, a retry policy, suspend and resume.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/activity.h"
#include "durabletask/orchestration.h"
#include "durabletask/worker.h"
#include "sidecar_kit.h"
#include "sidecar_node.h"
#include "worker_kit.h"

/* The C activity: a JSON object around the (JSON) input, as an SDK reads results. */
static void c_hello(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char out[256];
    int n = snprintf(out, sizeof out, "{\"from\":\"C\",\"input\":%.*s}", (int)len,
                     in != NULL && len > 0 ? in : "null");
    dt_activity_set_output(ctx, out, (size_t)n);
}

static void test_durabletask_js(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "sdk", 2, 3000);
    dt_worker_options wo = wk_options(&env);
    dt_worker *w = NULL;
    char err[512] = "";
    assert_int_equal(dt_worker_create(&wo, &w, err, sizeof err), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "CHello", NULL, c_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);

    static const char *const acts[] = {"sayHello", "boom", "flaky"};
    dt__sidecar_options so = {.nats_url = env.url,
                              .hub = env.hub,
                              .listen = "127.0.0.1:0",
                              .data_dir = env.data_dir,
                              .activities = acts,
                              .n_activities = 3,
                              .wait_slice_ms = 500};
    char port[16];
    dt__sidecar *s = sidecar_kit_start(&so, port);
    int rc = sidecar_run_node("sdk_worker.mjs", port, NULL);

    dt__sidecar_stop(s);
    dt_worker_destroy(w);
    wk_teardown(&env);
    assert_int_equal(rc, 0);
}

/* ---- routing by name (tests/js/sdk_routing.mjs) ---- */

static void c_upper(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char *out = malloc(len + 1);
    assert_non_null(out);
    for (size_t i = 0; i < len; i++) {
        out[i] = (char)toupper((unsigned char)in[i]);
    }
    dt_activity_set_output(ctx, out, len);
    free(out);
}

/* The C orchestration on the sidecar's worker: the same fan-out as the script's jsMix, calling
 * the SDK activity "hello" and the C worker's "CUpper" for each of 20 items; the output is the
 * JSON array of their results in call order. */
static void c_mix(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char tag[64];
    /* The input is a JSON string: its characters without the quotes (the test's tags are plain). */
    snprintf(tag, sizeof tag, "%.*s", len >= 2 ? (int)len - 2 : 0, len >= 2 ? in + 1 : "");
    enum { N = 20 };
    dt_task *t[2 * N];
    for (int i = 0; i < N; i++) {
        char arg[96];
        int n = snprintf(arg, sizeof arg, "\"%s%d\"", tag, i);
        t[2 * i] = dt_call_activity(ctx, "hello", arg, (size_t)n, NULL);
        t[2 * i + 1] = dt_call_activity(ctx, "CUpper", arg, (size_t)n, NULL);
    }
    char out[8192];
    size_t o = 0;
    out[o++] = '[';
    for (int i = 0; i < 2 * N; i++) {
        size_t rl = 0;
        const char *r = dt_await(ctx, t[i], &rl); /* a failure fails the orchestration */
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", i > 0 ? "," : "", (int)rl, r);
    }
    out[o++] = ']';
    dt_orch_set_output(ctx, out, o);
}

static dt_status mix_setup(dt_worker *w, void *ctx)
{
    (void)ctx;
    return dt_worker_add_orchestrator(w, "CMix", c_mix, NULL);
}

static atomic_int g_handoffs, g_givebacks;

static void count_log(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)level;
    (void)instance_id;
    (void)ctx;
    if (strstr(msg, "handed off") != NULL) {
        atomic_fetch_add(&g_handoffs, 1);
    } else if (strstr(msg, "not served here") != NULL) {
        atomic_fetch_add(&g_givebacks, 1);
    }
}

/* A C worker (CUpper only, activity_max_deliveries 1) and dt-sidecar with a JS worker (hello) on
 * one hub and one task queue: items land on the worker of the other kind and are handed off, never
 * failed for it; a name nobody serves still fails. */
static void test_routing_by_name(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "route", 2, 3000);
    dt_worker_options wo = wk_options(&env);
    wo.activity_max_deliveries = 1; /* a counted give-back before its run would fail the item */
    wo.log = count_log;
    dt_worker *w = NULL;
    char err[512] = "";
    assert_int_equal(dt_worker_create(&wo, &w, err, sizeof err), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "CUpper", NULL, c_upper, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);

    static const char *const acts[] = {"hello"};
    dt__sidecar_options so = {.nats_url = env.url,
                              .hub = env.hub,
                              .listen = "127.0.0.1:0",
                              .data_dir = env.data_dir,
                              .activities = acts,
                              .n_activities = 1,
                              .setup = mix_setup,
                              .wait_slice_ms = 500};
    char port[16];
    dt__sidecar *s = sidecar_kit_start(&so, port);
    int rc = sidecar_run_node("sdk_routing.mjs", port, NULL);

    dt__sidecar_stop(s);
    dt_worker_destroy(w);
    wk_teardown(&env);
    printf("C worker: %d work items handed off to the sidecar, %d given back (no live server)\n",
           atomic_load(&g_handoffs), atomic_load(&g_givebacks));
    assert_int_equal(rc, 0);
    /* The SDK activity's items did meet the C worker (else this tested nothing). */
    assert_true(atomic_load(&g_handoffs) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durabletask_js),
        cmocka_unit_test(test_routing_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
