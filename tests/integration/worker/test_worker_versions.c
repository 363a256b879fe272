/*
 * Versioning end to end: a worker only runs the orchestration versions its match strategy
 * accepts; others are left for a worker of the right version (LEAVE) or failed with a clear
 * message (FAIL). Instances are started with the Dt-Version header of publish-to-start.
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

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

/* Returns "<worker version>:<instance version>", so the test sees who ran it. */
static void which(dt_orch_ctx *ctx, void *ud)
{
    char out[128];
    const char *v = dt_orch_version(ctx);
    int n = snprintf(out, sizeof(out), "%s:%s", (const char *)ud, v != NULL ? v : "");
    dt_orch_set_output(ctx, out, (size_t)n);
}

static dt_worker *start_worker(wk_env *env, const char *version, dt_version_match match,
                               dt_version_failure failure)
{
    dt_worker_options o = wk_options(env);
    o.version = version;
    o.version_match = match;
    o.version_failure = failure;
    dt_worker *w = NULL;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "which", which, (void *)version), DT_OK);
    if (dt_worker_start(w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(w));
    }
    return w;
}

static void expect_output(wk_env *env, const char *id, int status, const char *output)
{
    Dtpb__InstanceStatus *s = wk_wait(env, id, -1, 30000);
    if (s == NULL) {
        fail_msg("instance %s did not finish in time", id);
    }
    assert_int_equal(s->runtime_status, status);
    if (output != NULL) {
        assert_string_equal(wk_output(s), output);
    }
    dtpb__instance_status__free_unpacked(s, NULL);
}

static void test_leave_until_a_matching_worker_owns_it(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "ver", 2, 2000);
    dt_worker *old = start_worker(&env, "1.0", DT_VERSION_MATCH_STRICT, DT_VERSION_FAILURE_LEAVE);
    wk_start(&env, "which", "v2-inst", NULL, "Dt-Version", "2.0");
    wk_start(&env, "which", "v1-inst", NULL, "Dt-Version", "1.0");
    expect_output(&env, "v1-inst", ST(COMPLETED), "1.0:1.0");
    /* The 2.0 instance is left alone: no status record appears while only 1.0 runs. */
    Dtpb__InstanceStatus *s = wk_wait(&env, "v2-inst", -1, 1500);
    assert_null(s);
    dt_worker *next = start_worker(&env, "2.0", DT_VERSION_MATCH_STRICT, DT_VERSION_FAILURE_LEAVE);
    dt_worker_destroy(old); /* the 2.0 worker takes over every partition */
    expect_output(&env, "v2-inst", ST(COMPLETED), "2.0:2.0");
    dt_worker_destroy(next);
    wk_teardown(&env);
}

static void test_fail_and_current_or_older(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "ver", 2, 2000);
    dt_worker *w =
        start_worker(&env, "2.1", DT_VERSION_MATCH_CURRENT_OR_OLDER, DT_VERSION_FAILURE_FAIL);
    wk_start(&env, "which", "older", NULL, "Dt-Version", "2.0.9");
    wk_start(&env, "which", "newer", NULL, "Dt-Version", "2.10");
    expect_output(&env, "older", ST(COMPLETED), "2.1:2.0.9");
    Dtpb__InstanceStatus *s = wk_wait(&env, "newer", -1, 30000);
    assert_non_null(s);
    assert_int_equal(s->runtime_status, ST(FAILED));
    assert_string_equal(s->failure_details->error_type, "dt.VersionMismatch");
    assert_non_null(strstr(s->failure_details->error_message, "'2.10'"));
    dtpb__instance_status__free_unpacked(s, NULL);
    dt_worker_destroy(w);
    wk_teardown(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leave_until_a_matching_worker_owns_it),
        cmocka_unit_test(test_fail_and_current_or_older),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
