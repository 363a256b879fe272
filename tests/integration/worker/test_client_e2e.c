/*
 * End-to-end tests of the C client API (durabletask/client.h) against a real worker and the real
 * nats-server of scripts/test: every client operation, driven on orchestrations written so that
 * its effect shows in their output, status or history. The worker runs in this process (started
 * once for the group, on a hub of 4 partitions); instances of different tests use different IDs
 * and names, so the tests do not see each other's instances.
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

#include "common_int.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "protocol_int.h"
#include "worker_kit.h"

#define WAIT_MS 20000

/* ---- activities ---- */

/* ---- orchestrators ---- */

/* Echoes what the instance knows about itself: {"id","name","version","input"}. */
static void echo(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    const char *v = dt_orch_version(ctx);
    char out[1024];
    int n = snprintf(out, sizeof(out),
                     "{\"id\":\"%s\",\"name\":\"%s\",\"version\":\"%s\",\"input\":%.*s}",
                     dt_orch_instance_id(ctx), dt_orch_name(ctx), v != NULL ? v : "(none)",
                     in != NULL ? (int)len : 4, in != NULL ? in : "null");
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Outputs the orchestration time of its first episode. */
static void clock_orch(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char out[32];
    int n = snprintf(out, sizeof(out), "%lld", (long long)dt_now(ctx));
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Waits for event "go"; outputs {"data":<event data>,"at":<orchestration time it was applied>}. */
static void waiter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_set_custom_status(ctx, "\"waiting\"", 9);
    size_t len = 0;
    const char *d = dt_await(ctx, dt_wait_event(ctx, "go"), &len);
    char out[512];
    int n = snprintf(out, sizeof(out), "{\"data\":%.*s,\"at\":%lld}", d != NULL ? (int)len : 4,
                     d != NULL ? d : "null", (long long)dt_now(ctx));
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Counts events "a": one wait, then one more that gives up after 1.5 s. */
static void twice(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "a"), NULL);
    dt_status st = dt_try_await(ctx, dt_wait_event_timeout(ctx, "a", 1500));
    dt_orch_set_output(ctx, st == DT_OK ? "2" : "1", 1);
}

static void forever(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

/* Starts "forever" as sub-orchestration "<own id>-child" and waits for it. */
static void parent_forever(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char child_id[DT_CLIENT_ID_BUF];
    snprintf(child_id, sizeof(child_id), "%s-child", dt_orch_instance_id(ctx));
    dt_sub_orch_options o = {.instance_id = child_id};
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "forever", NULL, 0, &o), NULL);
}

/* Completes with its input when it is even, fails when it is odd. */
static void parity(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *in = dt_orch_input(ctx, NULL);
    long v = strtol(in != NULL ? in : "0", NULL, 10);
    if (v % 2 != 0) {
        dt_orch_fail(ctx, "app.Odd", "odd input", NULL);
    }
    dt_orch_set_output(ctx, in, strlen(in));
}

static void hello_act(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "hello", in, len, NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

/* Two "branch" children, each with an "echo" child of its own: five instances in all. */
static void branch(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "echo", NULL, 0, NULL), NULL);
    dt_orch_set_output(ctx, "\"b\"", 3);
}

static void family(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_task *t[2] = {dt_call_sub_orchestrator(ctx, "branch", NULL, 0, NULL),
                     dt_call_sub_orchestrator(ctx, "branch", NULL, 0, NULL)};
    dt_await(ctx, dt_when_all(ctx, t, 2), NULL);
    dt_orch_set_output(ctx, "\"f\"", 3);
}

/* ---- fixture ---- */

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
} fixture;

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define CHECK(f, call, want)                                                                       \
    do {                                                                                           \
        dt_status st_ = (call);                                                                    \
        if (st_ != (want)) {                                                                       \
            fail_msg("%s: got %s, want %s (%s)", #call, dt_status_name(st_), dt_status_name(want), \
                     dt_client_errmsg((f)->c));                                                    \
        }                                                                                          \
    } while (0)

static void register_all(dt_worker *w)
{
    static const struct {
        const char *name;
        dt_orchestrator_fn fn;
    } orchs[] = {{"echo", echo},           {"clock", clock_orch},
                 {"waiter", waiter},       {"twice", twice},
                 {"forever", forever},     {"parity", parity},
                 {"hello_act", hello_act}, {"parent_forever", parent_forever},
                 {"listed", parity},       {"family", family},
                 {"branch", branch}};
    for (size_t i = 0; i < sizeof(orchs) / sizeof(orchs[0]); i++) {
        assert_int_equal(dt_worker_add_orchestrator(w, orchs[i].name, orchs[i].fn, NULL), DT_OK);
    }
    assert_int_equal(dt_worker_add_activity(w, "hello", NULL, wk_act_hello, NULL), DT_OK);
}

/* Queries need an owner for every partition: wait until the worker has claimed them all. */
static void wait_queries_answer(fixture *f)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    dt_status st = DT_EBUSY;
    while (st != DT_OK && dt__mono_ms() < deadline) {
        dt_client_page *page = NULL;
        st = dt_client_list(f->c, NULL, NULL, 1, false, &page);
        dt_client_page_free(page);
        if (st != DT_OK) {
            sleep_ms(50);
        }
    }
    CHECK(f, st, DT_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "cli_e2e", 4, 3000);
    dt_worker_options o = wk_options(&f->env);
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    register_all(f->w);
    if (dt_worker_start(f->w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(f->w));
    }
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = f->env.url;
    co.hub = f->env.hub;
    if (dt_client_create(&co, &f->c, err, sizeof(err)) != DT_OK) {
        fail_msg("client create: %s", err);
    }
    wait_queries_answer(f);
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

/* ---- helpers ---- */

static void start(fixture *f, const char *name, const char *id, const char *input)
{
    dt_client_start_options o = {
        .instance_id = id, .input = input, .input_len = input != NULL ? strlen(input) : 0};
    CHECK(f, dt_client_schedule(f->c, name, &o, NULL, 0), DT_OK);
}

/* Waits for completion and returns the instance (with payloads); fails the test on timeout. */
static dt_client_instance *finish(fixture *f, const char *id)
{
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_wait_for_completion(f->c, id, WAIT_MS, true, &inst), DT_OK);
    return inst;
}

/* The output as a C string ("" when none); the client NUL-terminates every payload. */
static const char *out_str(const dt_client_instance *inst)
{
    return inst->output != NULL ? (const char *)inst->output : "";
}

static void expect_done(fixture *f, const char *id, dt_client_runtime_status want,
                        const char *output)
{
    dt_client_instance *inst = finish(f, id);
    if (inst->runtime_status != want) {
        fail_msg("%s: status %s, want %s", id, dt_client_runtime_status_name(inst->runtime_status),
                 dt_client_runtime_status_name(want));
    }
    if (output != NULL) {
        assert_string_equal(out_str(inst), output);
    }
    dt_client_instance_free(inst);
}

/* Polls the status record until it shows `want` (the record may not exist yet). */
static void wait_status(fixture *f, const char *id, dt_client_runtime_status want)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    dt_client_runtime_status last = (dt_client_runtime_status)-1;
    while (dt__mono_ms() < deadline) {
        dt_client_instance *inst = NULL;
        if (dt_client_get_status(f->c, id, false, &inst) == DT_OK) {
            last = inst->runtime_status;
            dt_client_instance_free(inst);
            if (last == want) {
                return;
            }
        }
        sleep_ms(20);
    }
    fail_msg("%s: status %s, want %s", id, dt_client_runtime_status_name(last),
             dt_client_runtime_status_name(want));
}

static void errmsg_has(fixture *f, const char *needle)
{
    const char *m = dt_client_errmsg(f->c);
    if (strstr(m, needle) == NULL) {
        fail_msg("error message '%s' does not contain '%s'", m, needle);
    }
}

/* The "at" field of a waiter's output. */
static long long output_at(const char *out)
{
    const char *p = strstr(out, "\"at\":");
    assert_non_null(p);
    return strtoll(p + 5, NULL, 10);
}

/* ---- schedule, status, waits ---- */

static void test_schedule_generated_id(void **state)
{
    fixture *f = *state;
    char id[DT_CLIENT_ID_BUF] = "";
    dt_client_start_options o = {.input = "{\"x\":1}", .input_len = 7, .version = "1.2"};
    CHECK(f, dt_client_schedule(f->c, "echo", &o, id, sizeof(id)), DT_OK);
    assert_int_equal(strlen(id), 36); /* a UUID */
    assert_int_equal(id[14], '4');    /* version 4 */
    dt_client_instance *inst = finish(f, id);
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"id\":\"%s\",\"name\":\"echo\",\"version\":\"1.2\",\"input\":{\"x\":1}}", id);
    assert_string_equal(out_str(inst), want);
    assert_string_equal(inst->instance_id, id);
    assert_string_equal(inst->name, "echo");
    assert_non_null(inst->version);
    assert_string_equal(inst->version, "1.2");
    assert_int_equal(inst->input_len, 7);
    assert_memory_equal(inst->input, "{\"x\":1}", 7);
    assert_null(inst->parent_instance_id);
    assert_null(inst->failure);
    assert_true(inst->created_at_ms > 0 && inst->last_updated_at_ms >= inst->created_at_ms);
    dt_client_instance_free(inst);
}

static void test_schedule_explicit_id_no_input(void **state)
{
    fixture *f = *state;
    char id[DT_CLIENT_ID_BUF] = "";
    dt_client_start_options o = {.instance_id = "order/42:a.b"};
    CHECK(f, dt_client_schedule(f->c, "echo", &o, id, sizeof(id)), DT_OK);
    assert_string_equal(id, "order/42:a.b");
    expect_done(
        f, id, DT_CLIENT_COMPLETED,
        "{\"id\":\"order/42:a.b\",\"name\":\"echo\",\"version\":\"(none)\",\"input\":null}");
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, id, true, &inst), DT_OK);
    assert_null(inst->version);
    assert_null(inst->input); /* no input differs from an empty one */
    dt_client_instance_free(inst);
}

/* Tags given at start stay on the status record the worker writes. */
static void test_tags_survive_the_worker(void **state)
{
    fixture *f = *state;
    char id[DT_CLIENT_ID_BUF] = "";
    dt_client_tag tags[] = {{"team", "payments"}, {"region", "eu"}};
    dt_client_start_options o = {.instance_id = "tagged-1", .tags = tags, .ntags = 2};
    CHECK(f, dt_client_schedule(f->c, "echo", &o, id, sizeof(id)), DT_OK);
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_wait_for_completion(f->c, id, 20000, false, &inst), DT_OK);
    assert_int_equal(inst->ntags, 2);
    int seen = 0;
    for (size_t i = 0; i < inst->ntags; i++) {
        seen +=
            strcmp(inst->tags[i].key, "team") == 0 && strcmp(inst->tags[i].value, "payments") == 0;
        seen += strcmp(inst->tags[i].key, "region") == 0 && strcmp(inst->tags[i].value, "eu") == 0;
    }
    assert_int_equal(seen, 2);
    dt_client_instance_free(inst);
}

static void test_status_with_and_without_payloads(void **state)
{
    fixture *f = *state;
    start(f, "waiter", "payl-1", "\"in\"");
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_wait_for_start(f->c, "payl-1", WAIT_MS, true, &inst), DT_OK);
    assert_int_not_equal(inst->runtime_status, DT_CLIENT_PENDING);
    dt_client_instance_free(inst);
    /* The custom status is written with the episode that set it. */
    wait_status(f, "payl-1", DT_CLIENT_RUNNING);
    CHECK(f, dt_client_get_status(f->c, "payl-1", true, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_RUNNING);
    assert_string_equal((const char *)inst->input, "\"in\"");
    assert_non_null(inst->custom_status);
    assert_string_equal((const char *)inst->custom_status, "\"waiting\"");
    assert_null(inst->output);
    dt_client_instance_free(inst);
    CHECK(f, dt_client_get_status(f->c, "payl-1", false, &inst), DT_OK);
    assert_string_equal(inst->name, "waiter");
    assert_null(inst->input);
    assert_null(inst->custom_status);
    dt_client_instance_free(inst);
    CHECK(f, dt_client_raise_event(f->c, "payl-1", "go", "7", 1, NULL), DT_OK);
    CHECK(f, dt_client_wait_for_completion(f->c, "payl-1", WAIT_MS, false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_null(inst->output);
    dt_client_instance_free(inst);
    CHECK(f, dt_client_get_status(f->c, "payl-1", true, &inst), DT_OK);
    assert_non_null(strstr(out_str(inst), "\"data\":7"));
    dt_client_instance_free(inst);
}

static void test_scheduled_start(void **state)
{
    fixture *f = *state;
    int64_t at = dt__now_ms() + 1500;
    dt_client_start_options o = {.instance_id = "later-1", .start_at_ms = at};
    CHECK(f, dt_client_schedule(f->c, "clock", &o, NULL, 0), DT_OK);
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, "later-1", false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_PENDING);
    dt_client_instance_free(inst);
    /* The worker has seen the start by now and deferred it: still pending. */
    CHECK(f, dt_client_wait_for_start(f->c, "later-1", 600, false, NULL), DT_ETIMEOUT);
    errmsg_has(f, "PENDING");
    CHECK(f, dt_client_wait_for_start(f->c, "later-1", 0, false, NULL), DT_ETIMEOUT);
    CHECK(f, dt_client_wait_for_start(f->c, "later-1", WAIT_MS, false, &inst), DT_OK);
    assert_int_not_equal(inst->runtime_status, DT_CLIENT_PENDING);
    dt_client_instance_free(inst);
    assert_true(dt__now_ms() >= at - 50); /* 50 ms of slack for the store's clock */
    inst = finish(f, "later-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    long long ran_at = strtoll(out_str(inst), NULL, 10);
    if (ran_at < at) {
        fail_msg("scheduled for %lld, ran at orchestration time %lld", (long long)at, ran_at);
    }
    dt_client_instance_free(inst);
}

static void test_wait_timeouts(void **state)
{
    fixture *f = *state;
    start(f, "forever", "waitto-1", NULL);
    CHECK(f, dt_client_wait_for_start(f->c, "waitto-1", WAIT_MS, false, NULL), DT_OK);
    int64_t t0 = dt__mono_ms();
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_wait_for_completion(f->c, "waitto-1", 300, false, &inst), DT_ETIMEOUT);
    assert_null(inst);
    int64_t took = dt__mono_ms() - t0;
    assert_true(took >= 250 && took < 5000);
    errmsg_has(f, "RUNNING");
    CHECK(f, dt_client_wait_for_completion(f->c, "waitto-1", 0, false, NULL), DT_ETIMEOUT);
    CHECK(f, dt_client_wait_for_completion(f->c, "no-such-instance", 100, false, NULL),
          DT_ENOTFOUND);
    CHECK(f, dt_client_get_status(f->c, "no-such-instance", false, &inst), DT_ENOTFOUND);
    CHECK(f, dt_client_terminate(f->c, "waitto-1", NULL, false), DT_OK);
    expect_done(f, "waitto-1", DT_CLIENT_TERMINATED, NULL);
}

/* ---- events and control ---- */

static dt_client_instance *finish_new_execution(fixture *f, const char *id, const char *old_exec);

/* A finished instance runs again with its name, version, input and tags: under its own ID (a
 * new execution) or a new one; an unfinished one is refused under its own ID. */
static void test_restart(void **state)
{
    fixture *f = *state;
    dt_client_tag tags[] = {{"team", "ops"}};
    dt_client_start_options o = {.instance_id = "again-1",
                                 .input = "\"in\"",
                                 .input_len = 4,
                                 .version = "2.0",
                                 .tags = tags,
                                 .ntags = 1};
    char id[DT_CLIENT_ID_BUF] = "";
    CHECK(f, dt_client_schedule(f->c, "echo", &o, id, sizeof(id)), DT_OK);
    dt_client_instance *first = finish(f, "again-1");
    char first_exec[128];
    snprintf(first_exec, sizeof(first_exec), "%s", first->execution_id);
    char want[512];
    snprintf(want, sizeof(want), "%s", out_str(first));
    dt_client_instance_free(first);

    CHECK(f, dt_client_restart(f->c, "again-1", false, id, sizeof(id)), DT_OK);
    assert_string_equal(id, "again-1");
    dt_client_instance *second = finish_new_execution(f, "again-1", first_exec);
    assert_string_equal(out_str(second), want); /* same name, version, input */
    assert_int_equal(second->ntags, 1);
    assert_string_equal(second->tags[0].value, "ops");
    dt_client_instance_free(second);

    char other[DT_CLIENT_ID_BUF] = "";
    CHECK(f, dt_client_restart(f->c, "again-1", true, other, sizeof(other)), DT_OK);
    assert_string_not_equal(other, "again-1");
    dt_client_instance *third = finish(f, other);
    char want_other[512];
    snprintf(want_other, sizeof(want_other),
             "{\"id\":\"%s\",\"name\":\"echo\",\"version\":\"2.0\",\"input\":\"in\"}", other);
    assert_string_equal(out_str(third), want_other);
    dt_client_instance_free(third);

    start(f, "waiter", "again-running", NULL);
    CHECK(f, dt_client_wait_for_start(f->c, "again-running", 20000, false, NULL), DT_OK);
    CHECK(f, dt_client_restart(f->c, "again-running", false, NULL, 0), DT_ESTATE);
    errmsg_has(f, "only a finished instance restarts");
    CHECK(f, dt_client_restart(f->c, "again-nobody", false, NULL, 0), DT_ENOTFOUND);
    CHECK(f, dt_client_terminate(f->c, "again-running", NULL, false), DT_OK);
}

static void test_raise_event(void **state)
{
    fixture *f = *state;
    start(f, "waiter", "raise-1", NULL);
    CHECK(f, dt_client_raise_event(f->c, "raise-1", "GO", "{\"ok\":true}", 11, NULL), DT_OK);
    dt_client_instance *inst = finish(f, "raise-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_non_null(strstr(out_str(inst), "{\"data\":{\"ok\":true},"));
    dt_client_instance_free(inst);
    CHECK(f, dt_client_raise_event(f->c, "raise-1", "go", "1", 1, NULL), DT_ESTATE);
    errmsg_has(f, "COMPLETED");
    CHECK(f, dt_client_raise_event(f->c, "raise-nobody", "go", "1", 1, NULL), DT_ENOTFOUND);
    CHECK(f, dt_client_raise_event(f->c, "raise-1", "bad.name", NULL, 0, NULL), DT_EINVAL);
}

static void test_raise_idempotency_key(void **state)
{
    fixture *f = *state;
    /* Same key twice: one event. Different keys: two. */
    start(f, "twice", "idem-1", NULL);
    start(f, "twice", "idem-2", NULL);
    CHECK(f, dt_client_raise_event(f->c, "idem-1", "a", NULL, 0, "k1"), DT_OK);
    CHECK(f, dt_client_raise_event(f->c, "idem-1", "a", NULL, 0, "k1"), DT_OK);
    CHECK(f, dt_client_raise_event(f->c, "idem-2", "a", NULL, 0, "k1"), DT_OK);
    CHECK(f, dt_client_raise_event(f->c, "idem-2", "a", NULL, 0, "k2"), DT_OK);
    expect_done(f, "idem-1", DT_CLIENT_COMPLETED, "1");
    expect_done(f, "idem-2", DT_CLIENT_COMPLETED, "2");
}

static void test_terminate(void **state)
{
    fixture *f = *state;
    start(f, "forever", "term-1", NULL);
    CHECK(f, dt_client_wait_for_start(f->c, "term-1", WAIT_MS, false, NULL), DT_OK);
    CHECK(f, dt_client_terminate(f->c, "term-1", "\"enough\"", false), DT_OK);
    expect_done(f, "term-1", DT_CLIENT_TERMINATED, "\"enough\"");
    CHECK(f, dt_client_terminate(f->c, "term-1", NULL, false), DT_ESTATE);
    CHECK(f, dt_client_suspend(f->c, "term-1", NULL), DT_ESTATE);
    CHECK(f, dt_client_resume(f->c, "term-1", NULL), DT_ESTATE);
    CHECK(f, dt_client_terminate(f->c, "term-nobody", NULL, false), DT_ENOTFOUND);
}

static void test_terminate_recursive(void **state)
{
    fixture *f = *state;
    start(f, "parent_forever", "rec-1", NULL);
    wait_status(f, "rec-1-child", DT_CLIENT_RUNNING);
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, "rec-1-child", false, &inst), DT_OK);
    assert_non_null(inst->parent_instance_id);
    assert_string_equal(inst->parent_instance_id, "rec-1");
    assert_string_equal(inst->name, "forever");
    dt_client_instance_free(inst);
    CHECK(f, dt_client_terminate(f->c, "rec-1", "\"cascade\"", true), DT_OK);
    expect_done(f, "rec-1", DT_CLIENT_TERMINATED, "\"cascade\"");
    inst = NULL;
    dt_status st = dt_client_wait_for_completion(f->c, "rec-1-child", 10000, true, &inst);
    if (st != DT_OK) {
        fail_msg("recursive terminate: the child did not finish (%s: %s)", dt_status_name(st),
                 dt_client_errmsg(f->c));
    }
    assert_int_equal(inst->runtime_status, DT_CLIENT_TERMINATED);
    dt_client_instance_free(inst);
}

static void test_suspend_resume(void **state)
{
    fixture *f = *state;
    start(f, "waiter", "susp-1", NULL);
    wait_status(f, "susp-1", DT_CLIENT_RUNNING);
    CHECK(f, dt_client_suspend(f->c, "susp-1", "\"pause\""), DT_OK);
    wait_status(f, "susp-1", DT_CLIENT_SUSPENDED);
    CHECK(f, dt_client_raise_event(f->c, "susp-1", "go", "\"late\"", 6, NULL), DT_OK);
    sleep_ms(700); /* time enough for the worker to apply the event, were it not held back */
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, "susp-1", true, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_SUSPENDED);
    assert_null(inst->output);
    dt_client_instance_free(inst);
    CHECK(f, dt_client_wait_for_completion(f->c, "susp-1", 0, false, NULL), DT_ETIMEOUT);
    int64_t resumed_at = dt__now_ms();
    CHECK(f, dt_client_resume(f->c, "susp-1", "\"go on\""), DT_OK);
    inst = finish(f, "susp-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_non_null(strstr(out_str(inst), "{\"data\":\"late\","));
    if (output_at(out_str(inst)) < resumed_at) {
        fail_msg("event applied at %lld, before the resume at %lld", output_at(out_str(inst)),
                 (long long)resumed_at);
    }
    dt_client_instance_free(inst);
}

/* ---- reuse policies ---- */

/* Waits until the instance finished an execution other than `old_exec`. */
static dt_client_instance *finish_new_execution(fixture *f, const char *id, const char *old_exec)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    while (dt__mono_ms() < deadline) {
        dt_client_instance *inst = finish(f, id);
        if (strcmp(inst->execution_id, old_exec) != 0) {
            return inst;
        }
        dt_client_instance_free(inst);
        sleep_ms(20);
    }
    fail_msg("%s: no new execution finished", id);
    return NULL;
}

static void test_reuse_policies(void **state)
{
    fixture *f = *state;
    start(f, "echo", "reuse-1", "1");
    dt_client_instance *first = finish(f, "reuse-1");
    dt_client_start_options o = {.instance_id = "reuse-1", .input = "2", .input_len = 1};
    CHECK(f, dt_client_schedule(f->c, "echo", &o, NULL, 0), DT_EEXIST);
    errmsg_has(f, "already exists");
    o.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    CHECK(f, dt_client_schedule(f->c, "echo", &o, NULL, 0), DT_OK);
    dt_client_instance *second = finish_new_execution(f, "reuse-1", first->execution_id);
    assert_int_equal(second->runtime_status, DT_CLIENT_COMPLETED);
    assert_non_null(strstr(out_str(second), "\"input\":2}"));
    dt_client_instance_free(first);
    dt_client_instance_free(second);

    /* A running instance: replace-if-finished refuses, terminate-and-replace replaces. */
    start(f, "forever", "reuse-2", NULL);
    CHECK(f, dt_client_wait_for_start(f->c, "reuse-2", WAIT_MS, false, &first), DT_OK);
    o.instance_id = "reuse-2";
    CHECK(f, dt_client_schedule(f->c, "echo", &o, NULL, 0), DT_EEXIST);
    o.reuse_policy = DT_CLIENT_REUSE_TERMINATE_AND_REPLACE;
    o.input = "3";
    CHECK(f, dt_client_schedule(f->c, "echo", &o, NULL, 0), DT_OK);
    second = finish_new_execution(f, "reuse-2", first->execution_id);
    assert_int_equal(second->runtime_status, DT_CLIENT_COMPLETED);
    assert_string_equal(second->name, "echo");
    assert_non_null(strstr(out_str(second), "\"input\":3}"));
    dt_client_instance_free(first);
    dt_client_instance_free(second);
}

/* ---- list ---- */

#define NLIST 30

typedef struct seen_set {
    bool seen[NLIST];
    size_t n;
    size_t pages;
} seen_set;

/* Walks every page of `flt` with page size `limit`; checks order and counts instances. */
static void walk_pages(fixture *f, const dt_client_filter *flt, size_t limit, seen_set *s)
{
    memset(s, 0, sizeof(*s));
    char token[256] = "";
    char prev[DT_CLIENT_ID_BUF] = "";
    uint32_t prev_p = 0;
    do {
        dt_client_page *page = NULL;
        CHECK(f, dt_client_list(f->c, flt, token[0] != '\0' ? token : NULL, limit, false, &page),
              DT_OK);
        assert_true(page->n <= limit);
        s->pages++;
        for (size_t i = 0; i < page->n; i++) {
            const dt_client_instance *in = &page->instances[i];
            assert_null(in->input); /* no payloads asked for */
            uint32_t p = dt__partition_of(in->instance_id, 4);
            /* partition by partition, instance ID order within one */
            assert_true(p > prev_p || (p == prev_p && strcmp(in->instance_id, prev) > 0));
            prev_p = p;
            snprintf(prev, sizeof(prev), "%s", in->instance_id);
            long k = strtol(in->instance_id + 5, NULL, 10);
            assert_true(strncmp(in->instance_id, "list-", 5) == 0 && k >= 0 && k < NLIST);
            assert_false(s->seen[k]);
            s->seen[k] = true;
            s->n++;
        }
        token[0] = '\0';
        if (page->next_page_token != NULL) {
            snprintf(token, sizeof(token), "%s", page->next_page_token);
        }
        dt_client_page_free(page);
        assert_true(s->pages < 100);
    } while (token[0] != '\0');
}

static void schedule_list_batch(fixture *f, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[32], in[16];
        snprintf(id, sizeof(id), "list-%02d", i);
        snprintf(in, sizeof(in), "%d", i);
        start(f, "listed", id, in);
    }
    for (int i = from; i < to; i++) {
        char id[32];
        snprintf(id, sizeof(id), "list-%02d", i);
        dt_client_instance_free(finish(f, id));
    }
}

static void test_list_filters_and_paging(void **state)
{
    fixture *f = *state;
    schedule_list_batch(f, 0, NLIST / 2);
    int64_t mid = dt__now_ms() + 1; /* the first batch was created before, the second after */
    sleep_ms(20);
    schedule_list_batch(f, NLIST / 2, NLIST);

    dt_client_filter flt = {.name = "listed"};
    seen_set s;
    walk_pages(f, &flt, 7, &s);
    assert_int_equal(s.n, NLIST);
    assert_true(s.pages >= (NLIST + 6) / 7); /* pages are at most 7 long */
    for (int i = 0; i < NLIST; i++) {
        assert_true(s.seen[i]);
    }

    dt_client_runtime_status failed = DT_CLIENT_FAILED, done[] = {DT_CLIENT_COMPLETED};
    flt.statuses = &failed;
    flt.nstatuses = 1;
    walk_pages(f, &flt, 7, &s);
    assert_int_equal(s.n, NLIST / 2);
    for (int i = 0; i < NLIST; i++) {
        assert_int_equal(s.seen[i], i % 2 != 0);
    }
    flt.statuses = done;
    walk_pages(f, &flt, 4, &s);
    assert_int_equal(s.n, NLIST / 2);
    for (int i = 0; i < NLIST; i++) {
        assert_int_equal(s.seen[i], i % 2 == 0);
    }

    dt_client_filter range = {.name = "listed", .created_from_ms = mid};
    walk_pages(f, &range, 7, &s);
    assert_int_equal(s.n, NLIST / 2);
    for (int i = 0; i < NLIST; i++) {
        assert_int_equal(s.seen[i], i >= NLIST / 2);
    }
    range = (dt_client_filter){.name = "listed", .created_to_ms = mid};
    walk_pages(f, &range, 7, &s);
    assert_int_equal(s.n, NLIST / 2);
    assert_true(s.seen[0] && !s.seen[NLIST / 2]);

    range = (dt_client_filter){.name = "no-such-orchestration"};
    walk_pages(f, &range, 7, &s);
    assert_int_equal(s.n, 0);
}

static void test_list_with_payloads_and_bad_token(void **state)
{
    fixture *f = *state;
    start(f, "echo", "lpay-1", "\"p\"");
    dt_client_instance_free(finish(f, "lpay-1"));
    dt_client_filter flt = {.instance_id_prefix = "lpay-"};
    dt_client_page *page = NULL;
    CHECK(f, dt_client_list(f->c, &flt, NULL, 0, true, &page), DT_OK);
    assert_int_equal(page->n, 1);
    assert_string_equal(page->instances[0].instance_id, "lpay-1");
    assert_string_equal((const char *)page->instances[0].input, "\"p\"");
    assert_non_null(strstr(out_str(&page->instances[0]), "\"input\":\"p\""));
    assert_null(page->next_page_token);
    dt_client_page_free(page);
    CHECK(f, dt_client_list(f->c, NULL, "not a token", 5, false, &page), DT_EINVAL);
    CHECK(f, dt_client_list(f->c, NULL, NULL, DT_CLIENT_PAGE_MAX + 1, false, &page), DT_EINVAL);
}

/* ---- history ---- */

static size_t find_event(const dt_client_history *h, const char *type)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, type) == 0) {
            return i;
        }
    }
    fail_msg("no %s event in the history", type);
    return 0;
}

static void test_history(void **state)
{
    fixture *f = *state;
    start(f, "hello_act", "hist-1", "\"World\"");
    expect_done(f, "hist-1", DT_CLIENT_COMPLETED, "Hello \"World\"");
    dt_client_history *h = NULL;
    CHECK(f, dt_client_get_history(f->c, "hist-1", &h), DT_OK);
    assert_true(h->n >= 6);
    assert_string_equal(h->events[0].type, "OrchestratorStarted");
    assert_string_equal(h->events[1].type, "ExecutionStarted");
    assert_string_equal(h->events[1].name, "hello_act");
    assert_int_equal(h->events[1].payload_len, 7);
    assert_memory_equal(h->events[1].payload, "\"World\"", 7);
    size_t sched = find_event(h, "TaskScheduled"), done = find_event(h, "TaskCompleted");
    assert_true(sched < done);
    assert_string_equal(h->events[sched].name, "hello");
    assert_int_equal(h->events[done].task_id, h->events[sched].event_id);
    assert_string_equal((const char *)h->events[done].payload, "Hello \"World\"");
    assert_string_equal(h->events[done - 1].type, "OrchestratorStarted");
    const dt_client_event *last = &h->events[h->n - 1];
    assert_string_equal(last->type, "ExecutionCompleted");
    assert_string_equal((const char *)last->payload, "Hello \"World\"");
    /* Episode times never go back; an event that arrived was sent before its episode ran; the
     * actions an episode takes carry its time. */
    int64_t episode = 0;
    for (size_t i = 0; i < h->n; i++) {
        const dt_client_event *e = &h->events[i];
        assert_non_null(e->raw);
        if (strcmp(e->type, "OrchestratorStarted") == 0) {
            assert_true(e->timestamp_ms >= episode);
            episode = e->timestamp_ms;
        } else if (i == sched || i == h->n - 1) {
            assert_int_equal(e->timestamp_ms, episode);
        } else {
            assert_true(e->timestamp_ms <= episode);
        }
    }
    dt_client_history_free(h);
    CHECK(f, dt_client_get_history(f->c, "hist-nobody", &h), DT_ENOTFOUND);
}

/* ---- purge ---- */

static void test_purge_one(void **state)
{
    fixture *f = *state;
    start(f, "echo", "purge-1", NULL);
    expect_done(f, "purge-1", DT_CLIENT_COMPLETED, NULL);
    start(f, "forever", "purge-2", NULL);
    CHECK(f, dt_client_wait_for_start(f->c, "purge-2", WAIT_MS, false, NULL), DT_OK);
    wait_status(f, "purge-2", DT_CLIENT_RUNNING);
    CHECK(f, dt_client_purge(f->c, "purge-2"), DT_ESTATE);
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, "purge-2", false, &inst), DT_OK);
    dt_client_instance_free(inst);

    CHECK(f, dt_client_purge(f->c, "purge-1"), DT_OK);
    CHECK(f, dt_client_get_status(f->c, "purge-1", false, &inst), DT_ENOTFOUND);
    dt_client_history *h = NULL;
    CHECK(f, dt_client_get_history(f->c, "purge-1", &h), DT_ENOTFOUND);
    CHECK(f, dt_client_purge(f->c, "purge-1"), DT_ENOTFOUND);
    /* The ID is free again, even with the default reuse policy. */
    start(f, "echo", "purge-1", "5");
    dt_client_instance *again = finish(f, "purge-1");
    assert_non_null(strstr(out_str(again), "\"input\":5}"));
    dt_client_instance_free(again);
    CHECK(f, dt_client_terminate(f->c, "purge-2", NULL, false), DT_OK);
    expect_done(f, "purge-2", DT_CLIENT_TERMINATED, NULL);
    CHECK(f, dt_client_purge(f->c, "purge-2"), DT_OK);
}

static size_t count_listed(fixture *f, const dt_client_filter *flt)
{
    dt_client_page *page = NULL;
    CHECK(f, dt_client_list(f->c, flt, NULL, 0, false, &page), DT_OK);
    size_t n = page->n;
    assert_null(page->next_page_token);
    dt_client_page_free(page);
    return n;
}

/* The five instances of a "family" tree: their IDs from the histories. */
static size_t family_ids(fixture *f, const char *root, char ids[5][DT_CLIENT_ID_BUF])
{
    size_t n = 0;
    snprintf(ids[n++], DT_CLIENT_ID_BUF, "%s", root);
    for (size_t k = 0; k < n; k++) {
        dt_client_history *h = NULL;
        CHECK(f, dt_client_get_history(f->c, ids[k], &h), DT_OK);
        for (size_t i = 0; i < h->n; i++) {
            if (strcmp(h->events[i].type, "SubOrchestrationInstanceCreated") == 0 && n < 5) {
                snprintf(ids[n++], DT_CLIENT_ID_BUF, "%s", h->events[i].instance_id);
            }
        }
        dt_client_history_free(h);
    }
    return n;
}

/* A recursive purge deletes the instance and its sub-orchestrations, and theirs. */
static void test_purge_recursive(void **state)
{
    fixture *f = *state;
    start(f, "family", "fam-1", NULL);
    expect_done(f, "fam-1", DT_CLIENT_COMPLETED, "\"f\"");
    char ids[5][DT_CLIENT_ID_BUF];
    assert_int_equal(family_ids(f, "fam-1", ids), 5);
    for (size_t i = 1; i < 5; i++) {
        CHECK(f, dt_client_wait_for_completion(f->c, ids[i], WAIT_MS, false, NULL), DT_OK);
    }
    uint64_t deleted = 0;
    CHECK(f, dt_client_purge_recursive(f->c, "fam-1", &deleted), DT_OK);
    assert_int_equal(deleted, 5);
    for (size_t i = 0; i < 5; i++) {
        dt_client_instance *inst = NULL;
        CHECK(f, dt_client_get_status(f->c, ids[i], false, &inst), DT_ENOTFOUND);
    }
    CHECK(f, dt_client_purge_recursive(f->c, "fam-1", NULL), DT_ENOTFOUND);
    start(f, "waiter", "fam-running", NULL);
    CHECK(f, dt_client_wait_for_start(f->c, "fam-running", WAIT_MS, false, NULL), DT_OK);
    CHECK(f, dt_client_purge_recursive(f->c, "fam-running", NULL), DT_ESTATE);
    CHECK(f, dt_client_terminate(f->c, "fam-running", NULL, false), DT_OK);

    /* By filter: the matching roots and all their descendants, whatever their names. */
    start(f, "family", "fam-2", NULL);
    start(f, "family", "fam-3", NULL);
    expect_done(f, "fam-2", DT_CLIENT_COMPLETED, "\"f\"");
    expect_done(f, "fam-3", DT_CLIENT_COMPLETED, "\"f\"");
    char more[5][DT_CLIENT_ID_BUF];
    assert_int_equal(family_ids(f, "fam-3", more), 5);
    for (size_t i = 1; i < 5; i++) {
        CHECK(f, dt_client_wait_for_completion(f->c, more[i], WAIT_MS, false, NULL), DT_OK);
    }
    assert_int_equal(family_ids(f, "fam-2", ids), 5);
    for (size_t i = 1; i < 5; i++) {
        CHECK(f, dt_client_wait_for_completion(f->c, ids[i], WAIT_MS, false, NULL), DT_OK);
    }
    dt_client_filter flt = {.name = "family", .instance_id_prefix = "fam-"};
    CHECK(f, dt_client_purge_where_recursive(f->c, &flt, &deleted), DT_OK);
    assert_int_equal(deleted, 10);
    for (size_t i = 0; i < 5; i++) {
        dt_client_instance *inst = NULL;
        CHECK(f, dt_client_get_status(f->c, more[i], false, &inst), DT_ENOTFOUND);
        CHECK(f, dt_client_get_status(f->c, ids[i], false, &inst), DT_ENOTFOUND);
    }
}

static void test_purge_where(void **state)
{
    fixture *f = *state;
    for (int i = 1; i <= 5; i++) { /* odd inputs fail: 3 failed, 2 completed */
        char id[32], in[8];
        snprintf(id, sizeof(id), "pw-%d", i);
        snprintf(in, sizeof(in), "%d", i);
        start(f, "parity", id, in);
    }
    start(f, "forever", "pw-running", NULL);
    for (int i = 1; i <= 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "pw-%d", i);
        dt_client_instance_free(finish(f, id));
    }
    wait_status(f, "pw-running", DT_CLIENT_RUNNING);
    dt_client_filter all = {.instance_id_prefix = "pw-"};
    assert_int_equal(count_listed(f, &all), 6);

    dt_client_runtime_status failed = DT_CLIENT_FAILED;
    dt_client_filter flt = {.instance_id_prefix = "pw-", .statuses = &failed, .nstatuses = 1};
    uint64_t deleted = 0;
    CHECK(f, dt_client_purge_where(f->c, &flt, &deleted), DT_OK);
    assert_int_equal(deleted, 3);
    assert_int_equal(count_listed(f, &all), 3);
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, "pw-1", false, &inst), DT_ENOTFOUND);
    CHECK(f, dt_client_get_status(f->c, "pw-2", false, &inst), DT_OK);
    dt_client_instance_free(inst);

    /* No statuses: every finished one; the running one stays. */
    CHECK(f, dt_client_purge_where(f->c, &all, &deleted), DT_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(count_listed(f, &all), 1);
    CHECK(f, dt_client_get_status(f->c, "pw-running", false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_RUNNING);
    dt_client_instance_free(inst);
    CHECK(f, dt_client_purge_where(f->c, &all, &deleted), DT_OK);
    assert_int_equal(deleted, 0);
}

/* ---- refusals ---- */

static void test_too_large(void **state)
{
    fixture *f = *state;
    dt_client_hub_info hi;
    CHECK(f, dt_client_hub_get(f->c, &hi), DT_OK);
    size_t big = hi.max_msg_size + 16;
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, 'x', big);
    dt_client_start_options o = {.instance_id = "big-1", .input = data, .input_len = big};
    CHECK(f, dt_client_schedule(f->c, "echo", &o, NULL, 0), DT_ETOOLARGE);
    errmsg_has(f, "exceeds the hub's limit");
    dt_client_instance *inst = NULL;
    CHECK(f, dt_client_get_status(f->c, "big-1", false, &inst), DT_ENOTFOUND);
    start(f, "waiter", "big-2", NULL);
    CHECK(f, dt_client_raise_event(f->c, "big-2", "go", data, big, NULL), DT_ETOOLARGE);
    CHECK(f, dt_client_terminate(f->c, "big-2", NULL, false), DT_OK);
    free(data);
    expect_done(f, "big-2", DT_CLIENT_TERMINATED, NULL);
}

static void test_invalid_ids(void **state)
{
    fixture *f = *state;
    char long_id[DT_CLIENT_ID_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *bad[] = {"", "has space", "tab\tid", long_id, "caf\xc3\xa9"};
    dt_client_instance *inst = NULL;
    dt_client_history *h = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dt_client_start_options o = {.instance_id = bad[i]};
        CHECK(f, dt_client_schedule(f->c, "echo", &o, NULL, 0), DT_EINVAL);
        errmsg_has(f, "invalid instance ID");
        CHECK(f, dt_client_get_status(f->c, bad[i], false, &inst), DT_EINVAL);
        CHECK(f, dt_client_wait_for_completion(f->c, bad[i], 10, false, &inst), DT_EINVAL);
        CHECK(f, dt_client_raise_event(f->c, bad[i], "go", NULL, 0, NULL), DT_EINVAL);
        CHECK(f, dt_client_terminate(f->c, bad[i], NULL, true), DT_EINVAL);
        CHECK(f, dt_client_suspend(f->c, bad[i], NULL), DT_EINVAL);
        CHECK(f, dt_client_resume(f->c, bad[i], NULL), DT_EINVAL);
        CHECK(f, dt_client_get_history(f->c, bad[i], &h), DT_EINVAL);
        CHECK(f, dt_client_purge(f->c, bad[i]), DT_EINVAL);
    }
    /* exactly the limit is fine */
    long_id[DT_CLIENT_ID_MAX] = '\0';
    CHECK(f, dt_client_get_status(f->c, long_id, false, &inst), DT_ENOTFOUND);
    CHECK(f, dt_client_schedule(f->c, "bad.name", NULL, NULL, 0), DT_EINVAL);
    CHECK(f, dt_client_schedule(f->c, "", NULL, NULL, 0), DT_EINVAL);
}

static void test_unknown_hub(void **state)
{
    fixture *f = *state;
    char hub[80];
    snprintf(hub, sizeof(hub), "%.60s_none", f->env.hub);
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = f->env.url;
    co.hub = hub;
    fixture g = {0};
    char err[256] = "";
    assert_int_equal(dt_client_create(&co, &g.c, err, sizeof(err)), DT_OK);
    CHECK(&g, dt_client_schedule(g.c, "echo", NULL, NULL, 0), DT_ENOTFOUND);
    errmsg_has(&g, "no task hub");
    errmsg_has(&g, hub);
    dt_client_instance *inst = NULL;
    CHECK(&g, dt_client_get_status(g.c, "x", false, &inst), DT_ENOTFOUND);
    errmsg_has(&g, "no task hub");
    CHECK(&g, dt_client_raise_event(g.c, "x", "go", NULL, 0, NULL), DT_ENOTFOUND);
    dt_client_page *page = NULL;
    CHECK(&g, dt_client_list(g.c, NULL, NULL, 0, false, &page), DT_ENOTFOUND);
    dt_client_hub_info hi;
    CHECK(&g, dt_client_hub_get(g.c, &hi), DT_ENOTFOUND);
    dt_client_destroy(g.c);
    co.hub = "bad hub";
    g.c = NULL;
    assert_int_equal(dt_client_create(&co, &g.c, err, sizeof(err)), DT_EINVAL);
    assert_null(g.c);
    assert_non_null(strstr(err, "hub name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_generated_id),
        cmocka_unit_test(test_schedule_explicit_id_no_input),
        cmocka_unit_test(test_tags_survive_the_worker),
        cmocka_unit_test(test_status_with_and_without_payloads),
        cmocka_unit_test(test_scheduled_start),
        cmocka_unit_test(test_wait_timeouts),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_raise_event),
        cmocka_unit_test(test_raise_idempotency_key),
        cmocka_unit_test(test_terminate),
        cmocka_unit_test(test_terminate_recursive),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_reuse_policies),
        cmocka_unit_test(test_list_filters_and_paging),
        cmocka_unit_test(test_list_with_payloads_and_bad_token),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_purge_one),
        cmocka_unit_test(test_purge_where),
        cmocka_unit_test(test_purge_recursive),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_invalid_ids),
        cmocka_unit_test(test_unknown_hub),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
