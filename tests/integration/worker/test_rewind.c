/*
 * Rewind of failed instances (issue 11) against the real nats-server: an activity that fails
 * until the test lets it succeed, called plainly, under a retry policy, in a fan-out and from a
 * sub-orchestration. After the rewind the failed calls run again, the calls that had completed
 * do not, and the instance completes with the right output under the same execution. Rewinds of
 * instances that are not failed are refused; a repeated rewind request is applied once; and the
 * rewritten history is what a worker rebuilding the partition from its log serves. The fan-out
 * is rewound through the ingress subject dt.<hub>.in.rewind, the others by the C client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common_int.h"
#include "protocol_int.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "test_support.h"
#include "worker_kit.h"

#define PARTITIONS 2
#define WAIT_MS    30000
#define ST(x)      DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

static atomic_bool g_fail;   /* "flaky" fails while set */
static atomic_int g_ok_runs; /* runs of "ok_step" */
static atomic_int g_flaky_runs;

static void ok_step(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    atomic_fetch_add(&g_ok_runs, 1);
    dt_activity_set_output(ctx, "\"a\"", 3);
}

static void flaky(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    atomic_fetch_add(&g_flaky_runs, 1);
    if (atomic_load(&g_fail)) {
        dt_activity_fail(ctx, "Flaky", "not yet", false);
        return;
    }
    dt_activity_set_output(ctx, "\"b\"", 3);
}

/* ok_step, then flaky; the output is flaky's. */
static void seq(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "ok_step", NULL, 0, NULL), NULL);
    size_t len = 0;
    const void *out = dt_await(ctx, dt_call_activity(ctx, "flaky", NULL, 0, NULL), &len);
    dt_orch_set_output(ctx, out, len);
}

/* flaky under a retry policy of two attempts (a backoff timer between them). */
static void retrying(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_retry_policy p;
    dt_retry_policy_init(&p);
    p.max_attempts = 2;
    p.first_interval_ms = 10;
    dt_activity_options o = {.retry = &p};
    size_t len = 0;
    const void *out = dt_await(ctx, dt_call_activity(ctx, "flaky", NULL, 0, &o), &len);
    dt_orch_set_output(ctx, out, len);
}

/* Two ok_steps and a flaky at once. */
static void fanout(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *t[3] = {dt_call_activity(ctx, "ok_step", NULL, 0, NULL),
                     dt_call_activity(ctx, "flaky", NULL, 0, NULL),
                     dt_call_activity(ctx, "ok_step", NULL, 0, NULL)};
    dt_await(ctx, dt_when_all(ctx, t, 3), NULL);
    size_t len = 0;
    const void *out = dt_task_output(t[1], &len);
    dt_orch_set_output(ctx, out, len);
}

/* "seq" as a child "<id>-child". */
static void parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char child[300];
    snprintf(child, sizeof(child), "%s-child", dt_orch_instance_id(ctx));
    dt_sub_orch_options o = {.instance_id = child};
    size_t len = 0;
    const void *out = dt_await(ctx, dt_call_sub_orchestrator(ctx, "seq", NULL, 0, &o), &len);
    dt_orch_set_output(ctx, out, len);
}

static void forever(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

static void quick(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_orch_set_output(ctx, "1", 1);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
} fixture;

static dt_worker *worker_in(fixture *f, const char *data_dir)
{
    dt_worker_options o = wk_options(&f->env);
    o.data_dir = data_dir;
    dt_worker *w = NULL;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "ok_step", NULL, ok_step, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "flaky", NULL, flaky, NULL), DT_OK);
    const char *names[] = {"seq", "retrying", "fanout", "parent", "forever", "quick"};
    dt_orchestrator_fn fns[] = {seq, retrying, fanout, parent, forever, quick};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        assert_int_equal(dt_worker_add_orchestrator(w, names[i], fns[i], NULL), DT_OK);
    }
    assert_int_equal(dt_worker_start(w), DT_OK);
    return w;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "rewind", PARTITIONS, 3000);
    f->w = worker_in(f, f->env.data_dir);
    f->c = wk_client(&f->env);
    atomic_store(&g_fail, true);
    atomic_store(&g_ok_runs, 0);
    atomic_store(&g_flaky_runs, 0);
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

/* Waits for exactly `status` (the record already says FAILED before the rewind is applied). */
static void expect_exact(fixture *f, const char *id, int status, const char *output)
{
    Dtpb__InstanceStatus *s = wk_wait(&f->env, id, status, WAIT_MS);
    if (s == NULL) {
        fail_msg("instance %s did not reach status %d in time", id, status);
    }
    if (output != NULL) {
        assert_string_equal(wk_output(s), output);
    }
    dtpb__instance_status__free_unpacked(s, NULL);
}

static char *execution_of(fixture *f, const char *id)
{
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(f->c, id, false, &inst), DT_OK);
    char *x = strdup(inst->execution_id);
    dt_client_instance_free(inst);
    return x;
}

/* How many events of `type` the history holds; *last receives the last event's type. */
static size_t count_events(fixture *f, const char *id, const char *type, char *last, size_t len)
{
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(f->c, id, &h), DT_OK);
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        n += strcmp(h->events[i].type, type) == 0 ? 1 : 0;
    }
    if (last != NULL) {
        snprintf(last, len, "%s", h->n > 0 ? h->events[h->n - 1].type : "");
    }
    dt_client_history_free(h);
    return n;
}

static void test_activity_runs_again(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "seq", "rw-seq", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-seq", ST(FAILED), NULL);
    char *exec = execution_of(f, "rw-seq");
    assert_int_equal(atomic_load(&g_ok_runs), 1);
    atomic_store(&g_fail, false);
    assert_int_equal(dt_client_rewind(f->c, "rw-seq", "fixed"), DT_OK);
    expect_exact(f, "rw-seq", ST(COMPLETED), "\"b\"");
    assert_int_equal(atomic_load(&g_ok_runs), 1); /* the call that had completed did not run */
    assert_int_equal(atomic_load(&g_flaky_runs), 2);
    char *after = execution_of(f, "rw-seq");
    assert_string_equal(after, exec); /* the same execution, continued */
    assert_int_equal(count_events(f, "rw-seq", "ExecutionRewound", NULL, 0), 1);
    assert_int_equal(count_events(f, "rw-seq", "TaskFailed", NULL, 0), 0);
    assert_int_equal(count_events(f, "rw-seq", "ExecutionCompleted", NULL, 0), 1);
    free(exec);
    free(after);
}

static void test_retry_chain_rewound(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "retrying", "rw-retry", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-retry", ST(FAILED), NULL);
    assert_int_equal(atomic_load(&g_flaky_runs), 2);
    atomic_store(&g_fail, false);
    assert_int_equal(dt_client_rewind(f->c, "rw-retry", NULL), DT_OK);
    expect_exact(f, "rw-retry", ST(COMPLETED), "\"b\"");
    assert_int_equal(atomic_load(&g_flaky_runs), 3); /* the first attempt, again, succeeds */
}

static void test_fanout_rewound(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "fanout", "rw-fan", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-fan", ST(FAILED), NULL);
    assert_int_equal(atomic_load(&g_ok_runs), 2);
    atomic_store(&g_fail, false);
    wk_control(&f->env, "rewind", "rw-fan", "by ingress"); /* dt.<hub>.in.rewind */
    expect_exact(f, "rw-fan", ST(COMPLETED), "\"b\"");
    assert_int_equal(atomic_load(&g_ok_runs), 2);
}

static void test_sub_orchestration_rewound(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "parent", "rw-par", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-par", ST(FAILED), NULL);
    wk_expect(&f->env, "rw-par-child", ST(FAILED), NULL);
    char *child_exec = execution_of(f, "rw-par-child");
    atomic_store(&g_fail, false);
    assert_int_equal(dt_client_rewind(f->c, "rw-par", "fixed"), DT_OK);
    expect_exact(f, "rw-par", ST(COMPLETED), "\"b\"");
    wk_expect(&f->env, "rw-par-child", ST(COMPLETED), "\"b\"");
    char *after = execution_of(f, "rw-par-child");
    assert_string_equal(after, child_exec); /* the child was rewound, not started again */
    assert_int_equal(atomic_load(&g_ok_runs), 1);
    assert_int_equal(count_events(f, "rw-par-child", "ExecutionRewound", NULL, 0), 1);
    free(child_exec);
    free(after);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    assert_int_equal(dt_client_rewind(f->c, "rw-missing", NULL), DT_ENOTFOUND);
    wk_start(&f->env, "forever", "rw-running", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-running", ST(RUNNING), NULL);
    assert_int_equal(dt_client_rewind(f->c, "rw-running", NULL), DT_ESTATE);
    assert_non_null(strstr(dt_client_errmsg(f->c), "only a failed instance"));
    wk_start(&f->env, "quick", "rw-done", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-done", ST(COMPLETED), "1");
    assert_int_equal(dt_client_rewind(f->c, "rw-done", NULL), DT_ESTATE);
    assert_int_equal(dt_client_terminate(f->c, "rw-running", "\"stop\"", false), DT_OK);
    wk_expect(&f->env, "rw-running", ST(TERMINATED), NULL);
    assert_int_equal(dt_client_rewind(f->c, "rw-running", NULL), DT_ESTATE);
    /* A rewind that reaches a completed instance anyway (published by hand) changes nothing. */
    wk_publish_rewind(&f->env, PARTITIONS, "rw-done", NULL, "rw-done/-/rewind/1");
    char after[32]; /* an instance of the same partition, started after the request */
    for (int i = 0;; i++) {
        snprintf(after, sizeof(after), "rw-after-%d", i);
        if (dt__partition_of(after, PARTITIONS) == dt__partition_of("rw-done", PARTITIONS)) {
            break;
        }
    }
    wk_start(&f->env, "quick", after, NULL, NULL, NULL);
    wk_expect(&f->env, after, ST(COMPLETED), "1");
    assert_int_equal(count_events(f, "rw-done", "ExecutionRewound", NULL, 0), 0);
}

/* Polls until the instance's history ends with ExecutionCompleted after `rewinds` rewinds. */
static void await_failed_again(fixture *f, const char *id, size_t rewinds)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    char last[64] = "";
    while (dt__mono_ms() < deadline) {
        if (count_events(f, id, "ExecutionRewound", last, sizeof(last)) == rewinds &&
            strcmp(last, "ExecutionCompleted") == 0) {
            return;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("%s did not fail again after %zu rewinds", id, rewinds);
}

/* The same request delivered again once the instance has failed again is not a second rewind
 * (its identity is in history; the applied table was pruned when the instance failed). */
static void test_repeated_request_applied_once(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "seq", "rw-rep", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-rep", ST(FAILED), NULL);
    wk_publish_rewind(&f->env, PARTITIONS, "rw-rep", "\"once\"", "rw-rep/-/rewind/k.1");
    await_failed_again(f, "rw-rep", 1);
    assert_int_equal(atomic_load(&g_flaky_runs), 2);
    wk_publish_rewind(&f->env, PARTITIONS, "rw-rep", "\"once\"", "rw-rep/-/rewind/k.1");
    atomic_store(&g_fail, false);
    wk_publish_rewind(&f->env, PARTITIONS, "rw-rep", NULL, "rw-rep/-/rewind/k.2");
    expect_exact(f, "rw-rep", ST(COMPLETED), "\"b\"");
    assert_int_equal(count_events(f, "rw-rep", "ExecutionRewound", NULL, 0), 2);
    assert_int_equal(atomic_load(&g_flaky_runs), 3);
    assert_int_equal(atomic_load(&g_ok_runs), 1);
}

/* The types of the instance's history, joined. */
static char *history_types(fixture *f, const char *id)
{
    dt_client_history *h = NULL;
    /* Right after a worker started, the partition may have no owner yet to answer. */
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    dt_status st = DT_EBUSY;
    while ((st = dt_client_get_history(f->c, id, &h)) != DT_OK && dt__mono_ms() < deadline) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(st, DT_OK);
    size_t cap = 64 * (h->n + 1), at = 0;
    char *s = calloc(1, cap);
    for (size_t i = 0; i < h->n; i++) {
        at += (size_t)snprintf(s + at, cap - at, "%s/%d,", h->events[i].type,
                               (int)h->events[i].event_id);
    }
    dt_client_history_free(h);
    return s;
}

/* A worker with an empty data directory rebuilds the partitions from their logs: the rewound
 * history it serves is the one the first worker wrote. */
static void test_rebuilt_after_rewind(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "seq", "rw-rebuild", NULL, NULL, NULL);
    wk_expect(&f->env, "rw-rebuild", ST(FAILED), NULL);
    atomic_store(&g_fail, false);
    assert_int_equal(dt_client_rewind(f->c, "rw-rebuild", NULL), DT_OK);
    expect_exact(f, "rw-rebuild", ST(COMPLETED), "\"b\"");
    char *before = history_types(f, "rw-rebuild");
    dt_worker_destroy(f->w);
    char *dir = dt_test_mkdtemp("dt-rewind-rebuild");
    assert_non_null(dir);
    f->w = worker_in(f, dir);
    char *after = history_types(f, "rw-rebuild");
    assert_string_equal(after, before);
    assert_non_null(strstr(after, "ExecutionRewound"));
    dt_worker_destroy(f->w);
    f->w = NULL;
    dt_test_rmtree(dir);
    free(dir);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_activity_runs_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_chain_rewound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_rewound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sub_orchestration_rewound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_request_applied_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuilt_after_rewind, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
