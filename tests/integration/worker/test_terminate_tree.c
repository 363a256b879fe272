/*
 * Recursive terminate reaches the whole tree (issue 7, item 7), against the real nats-server: a
 * root waits forever after starting a child that starts a grandchild without waiting for it and
 * completes; a second child runs on. Terminating the root recursively terminates the running
 * child and the grandchild under the completed child (before, the completed child was skipped and
 * its fire-and-forget work kept running); the completed child stays COMPLETED.
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
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define WAIT_MS 20000
#define ST(x)   DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

static void forever(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

/* Starts "leaf" as <its id>-leaf and completes without waiting for it. */
static void fire_and_forget(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char leaf[300];
    snprintf(leaf, sizeof(leaf), "%s-leaf", dt_orch_instance_id(ctx));
    dt_sub_orch_options o = {.instance_id = leaf};
    dt_call_sub_orchestrator(ctx, "forever", NULL, 0, &o);
    dt_orch_set_output(ctx, "\"done\"", 6);
}

/* Starts tree-mid (completes) and tree-run (runs on), then waits forever. */
static void root(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_sub_orch_options mid = {.instance_id = "tree-mid"};
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "fire_and_forget", NULL, 0, &mid), NULL);
    dt_sub_orch_options run = {.instance_id = "tree-run"};
    dt_call_sub_orchestrator(ctx, "forever", NULL, 0, &run);
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

/* Tries to start a child under the ID "taken-1", which another, running instance holds (the start
 * is refused), then waits forever. */
static void root_refused(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_sub_orch_options o = {.instance_id = "taken-1"};
    dt_try_await(ctx, dt_call_sub_orchestrator(ctx, "forever", NULL, 0, &o));
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "termtree", 4, 3000);
    dt_worker_options o = wk_options(&f->env);
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "forever", forever, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "fire_and_forget", fire_and_forget, NULL),
                     DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "root", root, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "root_refused", root_refused, NULL), DT_OK);
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

static void test_whole_tree_is_terminated(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "root", "tree-root", NULL, NULL, NULL);
    wk_expect(&f->env, "tree-mid", ST(COMPLETED), NULL);
    wk_expect(&f->env, "tree-mid-leaf", ST(RUNNING), NULL);
    wk_expect(&f->env, "tree-run", ST(RUNNING), NULL);
    assert_int_equal(dt_client_terminate(f->c, "tree-root", "\"stop\"", true), DT_OK);
    wk_expect(&f->env, "tree-root", ST(TERMINATED), NULL);
    wk_expect(&f->env, "tree-run", ST(TERMINATED), NULL);
    wk_expect(&f->env, "tree-mid-leaf", ST(TERMINATED), NULL);
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(f->c, "tree-mid", false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    dt_client_instance_free(inst);
}

/* An instance that merely has the ID a child was refused under is not part of the tree: a
 * recursive terminate of the would-be parent leaves it running. */
static void test_unrelated_instance_is_spared(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "forever", "taken-1", NULL, NULL, NULL);
    wk_expect(&f->env, "taken-1", ST(RUNNING), NULL);
    wk_start(&f->env, "root_refused", "refused-root", NULL, NULL, NULL);
    wk_expect(&f->env, "refused-root", ST(RUNNING), NULL);
    dt_client_history *h = NULL;
    int64_t deadline = dt__mono_ms() + 20000;
    bool refused = false; /* the parent's history holds the child's failure */
    while (!refused && dt__mono_ms() < deadline) {
        assert_int_equal(dt_client_get_history(f->c, "refused-root", &h), DT_OK);
        for (size_t i = 0; i < h->n; i++) {
            refused = refused || strcmp(h->events[i].type, "SubOrchestrationInstanceFailed") == 0;
        }
        dt_client_history_free(h);
    }
    assert_true(refused);
    assert_int_equal(dt_client_terminate(f->c, "refused-root", "\"stop\"", true), DT_OK);
    wk_expect(&f->env, "refused-root", ST(TERMINATED), NULL);
    wk_raise(&f->env, "taken-1", "poke", "1"); /* processed after the terminate, if it came */
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(f->c, "taken-1", false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_RUNNING);
    dt_client_instance_free(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_tree_is_terminated),
        cmocka_unit_test(test_unrelated_instance_is_spared),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
