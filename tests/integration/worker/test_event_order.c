/*
 * Events that arrive before the start they depend on (issue 7, items 1 and 2), against the real
 * nats-server and real SQLite files: an event that overtakes its instance's start is kept in the
 * partition and applied right after the start; events raised while an instance continues as new
 * are never lost; an event whose instance never starts is dead-lettered, with the reason, once
 * it has waited parked_event_ttl_ms. Each event is raised exactly once.
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
#include <sqlite3.h>

#include "common_int.h"
#include "protocol_int.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#define WAIT_MS    30000
#define PARTITIONS 2
#define ST(x)      DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

/* Waits for "approve" and returns its data. */
static void approval(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *v = dt_await(ctx, dt_wait_event(ctx, "approve"), NULL);
    dt_orch_set_output(ctx, v, strlen(v));
}

/* Input "<total> <seen> <want>": adds the value of each "add" event, one event per execution,
 * continuing as new (keeping unconsumed events) until `want` were seen. */
static void accumulate(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long total = 0, seen = 0, want = 0;
    if (sscanf(dt_orch_input(ctx, NULL), "%ld %ld %ld", &total, &seen, &want) != 3) {
        dt_orch_fail(ctx, "test.BadInput", "bad input", NULL);
    }
    total += strtol(dt_await(ctx, dt_wait_event(ctx, "add"), NULL), NULL, 10);
    seen++;
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%ld %ld %ld", total, seen, want);
    if (seen == want) {
        dt_orch_set_output(ctx, buf, (size_t)n);
        return;
    }
    dt_continue_as_new(ctx, buf, (size_t)n, true);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "evord", PARTITIONS, 3000);
    dt_worker_options o = wk_options(&f->env);
    o.parked_event_ttl_ms = 1500;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "approval", approval, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "accumulate", accumulate, NULL), DT_OK);
    assert_int_equal(dt_worker_start(f->w), DT_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_worker_destroy(f->w);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

/* Rows in the parked table of the partition file that holds instance_id. */
static int parked_rows(fixture *f, const char *instance_id)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/p%03u.db", f->env.data_dir, f->env.hub,
             dt__partition_of(instance_id, PARTITIONS));
    sqlite3 *db = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM parked WHERE instance_id = ?1", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
            n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static void wait_parked(fixture *f, const char *instance_id, int want)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    while (parked_rows(f, instance_id) != want && dt__mono_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(parked_rows(f, instance_id), want);
}

/* The raise is published (and accepted) before the start: the worker sees it first, keeps it,
 * and applies it when the start comes; nothing is dead-lettered. */
static void test_raise_before_start(void **state)
{
    fixture *f = *state;
    wk_raise(&f->env, "early-1", "approve", "\"yes\"");
    wait_parked(f, "early-1", 1); /* the start is not published yet: the raise is parked */
    wk_start(&f->env, "approval", "early-1", NULL, NULL, NULL);
    wk_expect(&f->env, "early-1", ST(COMPLETED), "\"yes\"");
    assert_int_equal(parked_rows(f, "early-1"), 0);
}

/* A raise and a start published back to back, raise first: usually one batch. */
static void test_raise_and_start_together(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 20; i++) {
        char id[32], data[32];
        snprintf(id, sizeof(id), "together-%d", i);
        snprintf(data, sizeof(data), "%d", i);
        wk_raise(&f->env, id, "approve", data);
        wk_start(&f->env, "approval", id, NULL, NULL, NULL);
    }
    for (int i = 0; i < 20; i++) {
        char id[32], data[32];
        snprintf(id, sizeof(id), "together-%d", i);
        snprintf(data, sizeof(data), "%d", i);
        wk_expect(&f->env, id, ST(COMPLETED), data);
    }
}

/* A terminate that overtakes the start terminates the instance as soon as it starts. */
static void test_terminate_before_start(void **state)
{
    fixture *f = *state;
    wk_control(&f->env, "terminate", "early-term", "\"stop\"");
    wait_parked(f, "early-term", 1);
    wk_start(&f->env, "approval", "early-term", NULL, NULL, NULL);
    wk_expect(&f->env, "early-term", ST(TERMINATED), NULL);
}

/* An instance that continues as new after every event, while 60 events are raised as fast as
 * they can be published: every event is applied exactly once (the sum and the count match). */
static void test_continue_as_new_with_events(void **state)
{
    fixture *f = *state;
    enum { N = 60 };
    wk_start(&f->env, "accumulate", "acc-1", "0 0 60", NULL, NULL);
    long sum = 0;
    for (int i = 1; i <= N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        wk_raise(&f->env, "acc-1", "add", v);
        sum += i;
    }
    char want[64];
    snprintf(want, sizeof(want), "%ld %d %d", sum, N, N);
    wk_expect(&f->env, "acc-1", ST(COMPLETED), want);
}

/* A repeat of a continue-as-new start for an execution that is no longer the next one (an outbox
 * row re-published after a server restart, when JetStream no longer remembers its identity) is
 * dropped: not taken for a new start, not dead-lettered. */
static void test_stale_continuation_is_dropped(void **state)
{
    fixture *f = *state;
    wk_start(&f->env, "accumulate", "acc-stale", "0 0 2", NULL, NULL);
    wk_raise(&f->env, "acc-stale", "add", "5");
    wk_raise(&f->env, "acc-stale", "add", "6");
    wk_expect(&f->env, "acc-stale", ST(COMPLETED), "11 2 2");
    wk_direct_start stale = {"acc-stale",
                             "gen-1",
                             "acc-stale/gen-1/start/0",
                             "accumulate",
                             "5 1 2",
                             true,
                             DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR,
                             -1};
    wk_publish_start(&f->env, PARTITIONS, &stale);
    /* The instance's first start again, even with a policy that would replace it: the instance
     * ran it already; it is not run a second time. */
    wk_direct_start first = {"acc-first",
                             "exec-orig",
                             "acc-first/exec-orig/start/0",
                             "accumulate",
                             "0 0 2",
                             false,
                             DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR,
                             -1};
    wk_publish_start(&f->env, PARTITIONS, &first);
    wk_raise(&f->env, "acc-first", "add", "7");
    wk_raise(&f->env, "acc-first", "add", "8");
    wk_expect(&f->env, "acc-first", ST(COMPLETED), "15 2 2");
    first.reuse_policy = DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE;
    wk_publish_start(&f->env, PARTITIONS, &first);
    char reasons[1][256];
    assert_int_equal(wk_dead_letters(&f->env, "stale_dead", 1, reasons), 0);
    wk_expect(&f->env, "acc-stale", ST(COMPLETED), "11 2 2");
    wk_expect(&f->env, "acc-first", ST(COMPLETED), "15 2 2");
}

/* Two copies of one event (same identity; JetStream does not drop them: no Nats-Msg-Id) before
 * the start: the first is parked, the second comes in the start's batch. The event is applied
 * once (before, twice, and the batch's commit then failed on the repeated identity for good). */
static void test_parked_event_and_its_copy(void **state)
{
    fixture *f = *state;
    wk_publish_raise(&f->env, PARTITIONS, "acc-copy", "add", "5", "acc-copy/-/in/add-5");
    wait_parked(f, "acc-copy", 1);
    wk_publish_raise(&f->env, PARTITIONS, "acc-copy", "add", "5", "acc-copy/-/in/add-5");
    wk_start(&f->env, "accumulate", "acc-copy", "0 0 2", NULL, NULL);
    wk_raise(&f->env, "acc-copy", "add", "6");
    wk_expect(&f->env, "acc-copy", ST(COMPLETED), "11 2 2");
    assert_int_equal(parked_rows(f, "acc-copy"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raise_before_start),
        cmocka_unit_test(test_raise_and_start_together),
        cmocka_unit_test(test_terminate_before_start),
        cmocka_unit_test(test_continue_as_new_with_events),
        cmocka_unit_test(test_stale_continuation_is_dropped),
        cmocka_unit_test(test_parked_event_and_its_copy),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
