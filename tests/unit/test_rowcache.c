/*
 * Tests of the worker's row cache (runtime/worker/partition/rowcache.c) against a real engine: a
 * row is handed out only while the engine holds the instance at exactly the row's execution and
 * history length, as a copy that outlives the entry; large rows are not kept; entries the engine
 * dropped are swept out, so the cache stays bounded by the engine's capacity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "partition_int.h"

static void orch_waits(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "a", "x", 1, NULL), NULL);
}

static dt_status lookup(const char *name, const char *version, void *ctx, dt_orchestrator_fn *fn,
                        void **ud, char *why, size_t why_len)
{
    (void)name, (void)version, (void)ctx, (void)why, (void)why_len;
    *fn = orch_waits;
    *ud = NULL;
    return DT_OK;
}

static dt__engine *new_engine(size_t capacity)
{
    dt__engine_config cfg = {.cache_capacity = capacity, .lookup = lookup};
    dt__engine *e = NULL;
    assert_int_equal(dt__engine_create(&cfg, &e), DT_OK);
    return e;
}

/* Starts instance `id` (execution "x1"); returns the history length the engine now holds. */
static size_t start(dt__engine *e, const char *id)
{
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    Dtpb__ExecutionStartedEvent es = DTPB__EXECUTION_STARTED_EVENT__INIT;
    Dtpb__OrchestrationInstance oi = DTPB__ORCHESTRATION_INSTANCE__INIT;
    Dtpb__Payload ex = DTPB__PAYLOAD__INIT;
    ex.value.data = (uint8_t *)"x1";
    ex.value.len = 2;
    oi.instance_id = (char *)id;
    oi.execution_id = &ex;
    es.name = "o";
    es.orchestration_instance = &oi;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev.execution_started = &es;
    Dtpb__HistoryEvent *news[] = {&ev};
    dt__episode_input in = {id, NULL, 0, news, 1, 1000};
    dt__episode_result r;
    assert_int_equal(dt__engine_run_episode(e, &in, &r), DT_OK);
    size_t n = r.n_appended;
    dt__episode_result_free(&r);
    assert_true(dt__engine_is_current(e, id, "x1", n));
    return n;
}

static dt__instance_row row_of(const char *id, uint64_t len, const char *input)
{
    return (dt__instance_row){
        .instance_id = id,
        .execution_id = "x1",
        .name = "o",
        .runtime_status = 0,
        .created_ms = 5,
        .last_updated_ms = 6,
        .input = {(const uint8_t *)input, strlen(input)},
        .output = {NULL, 0},
        .custom_status = {(const uint8_t *)"", 0},
        .history_len = len,
    };
}

static void test_get_only_while_current(void **state)
{
    (void)state;
    dt__engine *e = new_engine(8);
    dt__row_cache *c = NULL;
    assert_int_equal(dt__row_cache_create(8, &c), DT_OK);
    dt__arena *a = dt__arena_create(0);
    dt__instance_row out;
    size_t len = start(e, "i1");
    assert_int_equal(dt__row_cache_get(c, e, "i1", a, &out), DT_ENOTFOUND);

    /* A row at another length than the engine's is not kept. */
    dt__instance_row stale = row_of("i1", len + 1, "in");
    dt__row_cache_put(c, e, &stale);
    assert_int_equal(dt__row_cache_size(c), 0);

    dt__instance_row r = row_of("i1", len, "in");
    dt__row_cache_put(c, e, &r);
    assert_int_equal(dt__row_cache_size(c), 1);
    assert_int_equal(dt__row_cache_get(c, e, "i1", a, &out), DT_OK);
    assert_string_equal(out.instance_id, "i1");
    assert_string_equal(out.execution_id, "x1");
    assert_int_equal(out.history_len, len);
    assert_int_equal(out.created_ms, 5);
    assert_int_equal(out.input.len, 2);
    assert_memory_equal(out.input.data, "in", 3); /* NUL-terminated copy */
    assert_null(out.output.data);                 /* absent stays absent ... */
    assert_non_null(out.custom_status.data);      /* ... and empty stays empty */
    assert_int_equal(out.custom_status.len, 0);
    assert_null(out.version);
    assert_ptr_not_equal(out.input.data, r.input.data);

    /* The copy outlives the entry. */
    dt__row_cache_drop(c, "i1");
    assert_string_equal(out.execution_id, "x1");
    assert_int_equal(dt__row_cache_get(c, e, "i1", a, &out), DT_ENOTFOUND);

    /* Once the engine lets go, the entry is never handed out again (and is freed). */
    dt__row_cache_put(c, e, &r);
    dt__engine_evict(e, "i1");
    assert_int_equal(dt__row_cache_get(c, e, "i1", a, &out), DT_ENOTFOUND);
    assert_int_equal(dt__row_cache_size(c), 0);

    dt__arena_destroy(a);
    dt__row_cache_destroy(c);
    dt__engine_destroy(e);
}

static void test_large_rows_not_kept(void **state)
{
    (void)state;
    dt__engine *e = new_engine(8);
    dt__row_cache *c = NULL;
    assert_int_equal(dt__row_cache_create(8, &c), DT_OK);
    size_t len = start(e, "big");
    static char input[8192];
    memset(input, 'x', sizeof(input) - 1);
    dt__instance_row r = row_of("big", len, input);
    dt__row_cache_put(c, e, &r);
    assert_int_equal(dt__row_cache_size(c), 0);
    dt__row_cache_destroy(c);
    dt__engine_destroy(e);
}

/* More instances than the engine holds: the cache stays within twice the engine's capacity plus
 * a constant, and every instance the engine still holds keeps its row. */
static void test_bounded_by_engine(void **state)
{
    (void)state;
    enum { CAP = 4, N = 300 };
    dt__engine *e = new_engine(CAP);
    dt__row_cache *c = NULL;
    assert_int_equal(dt__row_cache_create(CAP, &c), DT_OK);
    dt__arena *a = dt__arena_create(0);
    char ids[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "n%d", i);
        dt__instance_row r = row_of(ids[i], start(e, ids[i]), "in");
        dt__row_cache_put(c, e, &r);
        assert_true(dt__row_cache_size(c) <= 2 * CAP + 64 + 1);
    }
    dt__instance_row out;
    for (int i = N - CAP; i < N; i++) {
        assert_int_equal(dt__row_cache_get(c, e, ids[i], a, &out), DT_OK);
    }
    assert_int_equal(dt__row_cache_get(c, e, ids[0], a, &out), DT_ENOTFOUND);
    dt__row_cache_clear(c);
    assert_int_equal(dt__row_cache_size(c), 0);
    dt__arena_destroy(a);
    dt__row_cache_destroy(c);
    dt__engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_only_while_current),
        cmocka_unit_test(test_large_rows_not_kept),
        cmocka_unit_test(test_bounded_by_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
