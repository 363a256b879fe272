/*
 * Retention against the real nats-server: with the hub's policy set, the workers purge the
 * instances that finished longer ago than it allows (store and status record), by final status,
 * and keep the rest; the policy reads back as set and refuses negative ages.
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

#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void quick(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_orch_set_output(ctx, "\"ok\"", 4);
}

static void broken(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_orch_fail(ctx, "app.Broken", "as designed", NULL);
}

static void waits(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

static bool gone(dt_client *c, const char *id)
{
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_get_status(c, id, false, &inst);
    dt_client_instance_free(inst);
    return st == DT_ENOTFOUND;
}

static void test_retention_purges_by_status_and_age(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "retain", 2, 2000);
    dt_worker_options o = wk_options(&env);
    o.retention_check_ms = 200;
    dt_worker *w = NULL;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "quick", quick, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "broken", broken, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "waits", waits, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);
    dt_client *c = wk_client(&env);

    dt_client_retention none = {0};
    assert_int_equal(dt_client_retention_get(c, &none), DT_OK); /* never set: keep all */
    assert_int_equal(none.completed_ms + none.failed_ms + none.terminated_ms, 0);

    const char *done[] = {"ret-q1", "ret-q2", "ret-q3"};
    for (size_t i = 0; i < 3; i++) {
        wk_start(&env, "quick", done[i], NULL, NULL, NULL);
    }
    wk_start(&env, "broken", "ret-f1", NULL, NULL, NULL);
    wk_start(&env, "waits", "ret-t1", NULL, NULL, NULL);
    wk_start(&env, "waits", "ret-run", NULL, NULL, NULL);
    for (size_t i = 0; i < 3; i++) {
        wk_expect(&env, done[i], ST(COMPLETED), "\"ok\"");
    }
    wk_expect(&env, "ret-f1", ST(FAILED), NULL);
    assert_int_equal(dt_client_wait_for_start(c, "ret-t1", 20000, false, NULL), DT_OK);
    assert_int_equal(dt_client_terminate(c, "ret-t1", NULL, false), DT_OK);
    wk_expect(&env, "ret-t1", ST(TERMINATED), NULL);
    sleep_ms(1200); /* all of them finished more than a second ago now */

    /* Completed ones after 1 s; failed ones kept; terminated ones after an hour. */
    dt_client_retention bad = {.completed_ms = -1};
    assert_int_equal(dt_client_retention_set(c, &bad), DT_EINVAL);
    dt_client_retention r = {.completed_ms = 1000, .failed_ms = 0, .terminated_ms = 3600000};
    assert_int_equal(dt_client_retention_set(c, &r), DT_OK);
    dt_client_retention back = {0};
    assert_int_equal(dt_client_retention_get(c, &back), DT_OK);
    assert_int_equal(back.completed_ms, 1000);
    assert_int_equal(back.failed_ms, 0);
    assert_int_equal(back.terminated_ms, 3600000);

    bool all_gone = false;
    for (int i = 0; i < 200 && !all_gone; i++) {
        all_gone = gone(c, done[0]) && gone(c, done[1]) && gone(c, done[2]);
        sleep_ms(50);
    }
    assert_true(all_gone);
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(c, done[0], &h), DT_ENOTFOUND); /* the store too */
    /* Another check or two: the others stay. */
    sleep_ms(600);
    assert_false(gone(c, "ret-f1"));
    assert_false(gone(c, "ret-t1"));
    assert_false(gone(c, "ret-run"));
    assert_int_equal(dt_client_get_history(c, "ret-f1", &h), DT_OK);
    dt_client_history_free(h);

    assert_int_equal(dt_client_terminate(c, "ret-run", NULL, false), DT_OK);
    dt_client_destroy(c);
    dt_worker_stop(w, 5000);
    dt_worker_destroy(w);
    wk_teardown(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_purges_by_status_and_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
