/*
 * test_sidecar_client.c: dt-sidecar's client RPCs through @microsoft/durabletask-js
 * (tests/js/sidecar_client.mjs) against C orchestrations that a C worker of this process runs:
 * start (IDs, tags, scheduled start, reuse), status and waits, events, suspend, resume,
 * terminate (recursive), failure details, queries, instance IDs, history, restart, purge (one,
 * recursive, filter), rewind, and the UNIMPLEMENTED answers. The sidecar runs client-only here, in
 * this process, on a hub of the test's own.
 */
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

static void echo(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *in = dt_orch_input(ctx, &len);
    dt_orch_set_output(ctx, in, len);
}

static void wait_go(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *data = dt_await(ctx, dt_wait_event(ctx, "go"), &len);
    dt_orch_set_output(ctx, data, len);
}

static void fails(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_orch_fail(ctx, "MyError", "it broke", NULL);
}

/* Fails on its first run in this process, succeeds after: a rewind of the orchestration that
 * failed with it runs it again (RewindInstance). */
static int fails_once_runs;

static void fails_once(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    if (__atomic_fetch_add(&fails_once_runs, 1, __ATOMIC_SEQ_CST) == 0) {
        dt_activity_fail(ctx, "Flaky", "first run fails", true);
        return;
    }
    dt_activity_set_output(ctx, "\"second run\"", 12);
}

static void flaky_once(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *out = dt_await(ctx, dt_call_activity(ctx, "FailsOnce", NULL, 0, NULL), &len);
    dt_orch_set_output(ctx, out, len);
}

static void sleeper(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_sleep(ctx, 3600 * 1000), NULL);
}

static void parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char child[300];
    snprintf(child, sizeof child, "%s-child", dt_orch_instance_id(ctx));
    dt_sub_orch_options o;
    dt_sub_orch_options_init(&o);
    o.instance_id = child;
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "WaitGo", NULL, 0, &o), NULL);
}

static void test_client_rpcs(void **state)
{
    (void)state;
    const char *url = dt_test_nats_url();
    assert_non_null(url);
    char hub[64];
    snprintf(hub, sizeof hub, "sc%ld", (long)getpid());

    dt_client *c = sidecar_kit_hub(url, hub);

    char *dir = dt_test_mkdtemp("sidecar-client");
    dt_worker_options wo;
    dt_worker_options_init(&wo);
    wo.nats_url = url;
    wo.hub = hub;
    wo.data_dir = dir;
    dt_worker *w = NULL;
    char err[512] = "";
    assert_int_equal(dt_worker_create(&wo, &w, err, sizeof err), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "Echo", echo, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "WaitGo", wait_go, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "Fails", fails, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "Sleeper", sleeper, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "Parent", parent, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "FlakyOnce", flaky_once, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "FailsOnce", NULL, fails_once, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);

    dt__sidecar_options so = {.nats_url = url,
                              .hub = hub,
                              .listen = "127.0.0.1:0",
                              .client_only = true,
                              .wait_slice_ms = 500};
    char port[16];
    dt__sidecar *s = sidecar_kit_start(&so, port);
    int rc = sidecar_run_node("sidecar_client.mjs", port, NULL);

    dt__sidecar_stop(s);
    dt_worker_stop(w, 10000);
    dt_worker_destroy(w);
    assert_int_equal(dt_client_hub_delete(c), DT_OK);
    dt_client_destroy(c);
    dt_test_rmtree(dir);
    free(dir);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_rpcs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
