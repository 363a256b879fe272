/*
 * Calls end to end with a real worker: a call to an activity or orchestrator that no worker has
 * fails once, non-retriable, whatever retry policy it carries (the attempts are counted in
 * history, not timed); children started without an ID in two generations of a continue-as-new
 * loop are two instances that both complete.
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

#define ST(x)   DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x
#define WAIT_MS 60000

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
} fixture;

static const dt_retry_policy five_attempts = {.max_attempts = 5, .first_interval_ms = 100};

static void calls_missing_activity(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_options o = {.retry = &five_attempts};
    dt_await(ctx, dt_call_activity(ctx, "not_registered", "1", 1, &o), NULL);
}

/* Fails with details longer than DT_ACTIVITY_DETAILS_MAX: "trace:" then dots. */
static void act_detailed(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    static char details[DT_ACTIVITY_DETAILS_MAX + 100];
    memset(details, '.', sizeof(details) - 1);
    memcpy(details, "trace:", 6);
    details[sizeof(details) - 1] = '\0';
    dt_activity_fail_details(ctx, "app.Broken", "it broke", details, true);
}

/* Outputs "<type>|<message>|<length of the details>|<their first 6 bytes>". */
static void calls_detailed(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *t = dt_call_activity(ctx, "detailed", NULL, 0, NULL);
    assert_int_equal(dt_try_await(ctx, t), DT_ETASKFAILED);
    const dt_failure *f = dt_task_failure(t);
    const char *d = f->stack_trace != NULL ? f->stack_trace : "";
    char out[256];
    int n = snprintf(out, sizeof(out), "%s|%s|%zu|%.6s", f->type, f->message, strlen(d), d);
    dt_orch_set_output(ctx, out, (size_t)n);
}

#define LONG_FAN   300
#define LONG_INPUT 2048

/* LONG_FAN "hello" calls at once, each with a LONG_INPUT-byte input: a history of more than
 * 2 x 300 x 2 KiB, over the 1 MiB a reply of the partition's worker may carry. */
static void long_fan(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    static char input[LONG_INPUT + 1];
    memset(input, 'x', LONG_INPUT);
    dt_task *t[LONG_FAN];
    for (int i = 0; i < LONG_FAN; i++) {
        t[i] = dt_call_activity(ctx, "hello", input, LONG_INPUT, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, t, LONG_FAN), NULL);
    dt_orch_set_output(ctx, "done", 4);
}

static void calls_missing_child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_sub_orch_options o = {.retry = &five_attempts};
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "no_such_child", NULL, 0, &o), NULL);
}

static void gen_child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char out[64];
    int n = snprintf(out, sizeof(out), "child(%.*s)", (int)len, in != NULL ? in : "");
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Generation "1" starts a child and continues as new; generation "2" starts another. */
static void gen_parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *gen = dt_orch_input(ctx, &len);
    const char *r = dt_await(ctx, dt_call_sub_orchestrator(ctx, "gen_child", gen, len, NULL), NULL);
    if (len == 1 && gen[0] == '1') {
        dt_continue_as_new(ctx, "2", 1, false);
    }
    dt_orch_set_output(ctx, r, strlen(r));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "calls", 2, 3000);
    dt_worker_options o = wk_options(&f->env);
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    /* The default task queue is served (by "hello"), just not for "not_registered". */
    assert_int_equal(dt_worker_add_activity(f->w, "hello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(
        dt_worker_add_orchestrator(f->w, "calls_missing_activity", calls_missing_activity, NULL),
        DT_OK);
    assert_int_equal(
        dt_worker_add_orchestrator(f->w, "calls_missing_child", calls_missing_child, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "gen_parent", gen_parent, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "detailed", NULL, act_detailed, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "long_fan", long_fan, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "calls_detailed", calls_detailed, NULL),
                     DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "gen_child", gen_child, NULL), DT_OK);
    if (dt_worker_start(f->w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(f->w));
    }
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

/* Waits for `id` to end FAILED; returns its status record (the caller frees it). */
static Dtpb__InstanceStatus *wait_failed(fixture *f, const char *id)
{
    Dtpb__InstanceStatus *s = wk_wait(&f->env, id, -1, WAIT_MS);
    if (s == NULL) {
        fail_msg("instance %s did not finish", id);
    }
    assert_int_equal(s->runtime_status, ST(FAILED));
    assert_non_null(s->failure_details);
    assert_non_null(s->failure_details->inner_failure);
    return s;
}

/* Number of events of `type` in the history of `id`. */
static size_t count_events(fixture *f, const char *id, const char *type)
{
    dt_client_history *h = NULL;
    dt_status st = dt_client_get_history(f->c, id, &h);
    if (st != DT_OK) {
        fail_msg("history of %s: %s", id, dt_client_errmsg(f->c));
    }
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        n += strcmp(h->events[i].type, type) == 0 ? 1 : 0;
    }
    dt_client_history_free(h);
    return n;
}

static void test_missing_activity_fails_once(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "calls_missing_activity", "miss-act", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wait_failed(f, "miss-act");
    const Dtpb__TaskFailureDetails *inner = s->failure_details->inner_failure;
    assert_string_equal(inner->error_type, "dt.UnknownActivity");
    assert_true(inner->is_non_retriable);
    assert_non_null(strstr(inner->error_message, "'not_registered'"));
    dtpb__instance_status__free_unpacked(s, NULL);
    /* One attempt, no backoff timer: the policy's other four attempts were not made. */
    assert_int_equal(count_events(f, "miss-act", "TaskScheduled"), 1);
    assert_int_equal(count_events(f, "miss-act", "TimerCreated"), 0);
}

static void test_missing_orchestrator_fails_once(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "calls_missing_child", "miss-orch", NULL, NULL, NULL);
    Dtpb__InstanceStatus *s = wait_failed(f, "miss-orch");
    const Dtpb__TaskFailureDetails *inner = s->failure_details->inner_failure;
    assert_string_equal(inner->error_type, "dt.UnknownOrchestrator");
    assert_true(inner->is_non_retriable);
    assert_non_null(strstr(inner->error_message, "no_such_child"));
    dtpb__instance_status__free_unpacked(s, NULL);
    assert_int_equal(count_events(f, "miss-orch", "SubOrchestrationInstanceCreated"), 1);
    assert_int_equal(count_events(f, "miss-orch", "TimerCreated"), 0);
}

/* An activity's failure details (a stack trace, say) reach the orchestration, cut to
 * DT_ACTIVITY_DETAILS_MAX bytes. */
static void test_activity_failure_details(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "calls_detailed", "detailed-1", NULL, NULL, NULL);
    char want[128];
    snprintf(want, sizeof(want), "app.Broken|it broke|%d|trace:", DT_ACTIVITY_DETAILS_MAX);
    wk_expect(&f->env, "detailed-1", ST(COMPLETED), want);
}

/* A history larger than one reply is read a page at a time: dt_client_get_history returns all
 * of it, and pages of 50 events read one after the other give the same events. */
static void test_long_history_pages(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "long_fan", "long-1", NULL, NULL, NULL);
    wk_expect(&f->env, "long-1", ST(COMPLETED), "done");
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(f->c, "long-1", &h), DT_OK);
    assert_true(h->n >= 2 * LONG_FAN + 2);
    assert_true(strcmp(h->events[0].type, "ExecutionStarted") == 0 ||
                strcmp(h->events[1].type, "ExecutionStarted") == 0);
    assert_non_null(h->execution_id);
    size_t bytes = 0, scheduled = 0, completed = 0;
    for (size_t i = 0; i < h->n; i++) {
        bytes += h->events[i].raw_len;
        scheduled += strcmp(h->events[i].type, "TaskScheduled") == 0;
        completed += strcmp(h->events[i].type, "TaskCompleted") == 0;
    }
    assert_true(bytes > 1024 * 1024); /* more than one reply can hold */
    assert_int_equal(scheduled, LONG_FAN);
    assert_int_equal(completed, LONG_FAN);
    size_t next = 0, total = 0, pages = 0;
    do {
        dt_client_history *p = NULL;
        size_t start = next;
        assert_int_equal(dt_client_get_history_page(f->c, "long-1", start, 50, &p, &next, &total),
                         DT_OK);
        assert_int_equal(total, h->n);
        assert_true(p->n > 0 && p->n <= 50 && next == start + p->n);
        assert_string_equal(p->execution_id, h->execution_id);
        for (size_t i = 0; i < p->n; i++) {
            assert_int_equal(p->events[i].raw_len, h->events[start + i].raw_len);
            assert_memory_equal(p->events[i].raw, h->events[start + i].raw, p->events[i].raw_len);
        }
        dt_client_history_free(p);
        pages++;
    } while (next < total);
    assert_int_equal(pages, (h->n + 49) / 50);
    /* Past the end: an empty page, complete. */
    dt_client_history *p = NULL;
    assert_int_equal(dt_client_get_history_page(f->c, "long-1", total + 5, 0, &p, &next, NULL),
                     DT_OK);
    assert_int_equal(p->n, 0);
    assert_int_equal(next, total);
    dt_client_history_free(p);
    dt_client_history_free(h);
}

static void test_children_of_two_generations(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "gen_parent", "gp-1", "1", NULL, NULL);
    Dtpb__InstanceStatus *s = wk_wait(&f->env, "gp-1", -1, WAIT_MS);
    assert_non_null(s);
    assert_int_equal(s->runtime_status, ST(COMPLETED));
    assert_string_equal(wk_output(s), "child(2)");
    dtpb__instance_status__free_unpacked(s, NULL);
    /* Both children exist, completed, each with its generation's input. */
    dt_client_filter flt = {.instance_id_prefix = "gp-1:"};
    const char *token = NULL;
    char tok[512];
    char seen[2][300] = {"", ""};
    size_t n = 0;
    dt_client_page *pg = NULL;
    do {
        dt_status st = dt_client_list(f->c, &flt, token, 0, true, &pg);
        if (st != DT_OK) {
            fail_msg("list: %s", dt_client_errmsg(f->c));
        }
        for (size_t i = 0; i < pg->n; i++, n++) {
            const dt_client_instance *in = &pg->instances[i];
            assert_true(n < 2);
            assert_int_equal(in->runtime_status, DT_CLIENT_COMPLETED);
            snprintf(seen[n], sizeof(seen[n]), "%.*s", (int)in->output_len,
                     (const char *)in->output);
        }
        if (pg->next_page_token != NULL) {
            snprintf(tok, sizeof(tok), "%s", pg->next_page_token);
        }
        token = pg->next_page_token != NULL ? tok : NULL;
        dt_client_page_free(pg);
    } while (token != NULL);
    assert_int_equal(n, 2);
    bool one_then_two = strcmp(seen[0], "child(1)") == 0 && strcmp(seen[1], "child(2)") == 0;
    bool two_then_one = strcmp(seen[0], "child(2)") == 0 && strcmp(seen[1], "child(1)") == 0;
    assert_true(one_then_two || two_then_one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_activity_fails_once),
        cmocka_unit_test(test_missing_orchestrator_fails_once),
        cmocka_unit_test(test_children_of_two_generations),
        cmocka_unit_test(test_activity_failure_details),
        cmocka_unit_test(test_long_history_pages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
