/*
 * test_remote_sdk.c: orchestrations and activities written with @microsoft/durabletask-js
 * (tests/js/sdk_worker.mjs) run against dt-sidecar's worker side (runtime/remote), in this
 * process, next to a C worker of the same hub that serves the C activity "CHello" (and no
 * orchestration, so it owns no partition): a C worker and a JS worker share a hub. The script
 * checks an activity chain, fan-out/fan-in, a timer, custom status, an external event with and
 * without its timeout, a sub-orchestration, continue-as-new, failure details, terminate, and the
 * SDK orchestration's call of the C activity, a retry policy, suspend and resume.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/worker.h"
#include "sidecar.h"
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
    dt__sidecar *s = NULL;
    dt_status st = dt__sidecar_start(&so, &s, err, sizeof err);
    if (st != DT_OK) {
        fail_msg("sidecar: %s (%s)", err, dt_status_name(st));
    }
    char port[16];
    snprintf(port, sizeof port, "%d", dt__sidecar_port(s));
    int rc = sidecar_run_node("sdk_worker.mjs", port, NULL);

    dt__sidecar_stop(s);
    dt_worker_destroy(w);
    wk_teardown(&env);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durabletask_js),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
