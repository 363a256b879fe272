/*
 * Tests of the history row format and of the migration to it: a store written by the previous
 * schema (version 1: one history row per event; its tables are created here from a frozen copy
 * of that schema, with real events from the engine) opens, keeps every event byte for byte,
 * replays to the same episode, and takes new episodes as packed rows after the old ones. Packed
 * rows: an episode's events share rows of at most DT__STORE_HISTORY_ROW_BYTES; damaged rows are
 * reported, not guessed at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine_int.h"
#include "test_store_util.h"

/* Schema version 1 as released (store_schema.c migration 1). PERSISTED: never edit. */
static const char v1_schema[] =
    "PRAGMA journal_mode = WAL;"
    "BEGIN;"
    "CREATE TABLE partition (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL DEFAULT "
    "'', epoch INTEGER NOT NULL DEFAULT 0, claimed_ms INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO partition (id) VALUES (1);"
    "CREATE TABLE instances (instance_id TEXT PRIMARY KEY NOT NULL, execution_id TEXT NOT NULL,"
    "  name TEXT NOT NULL, version TEXT, status INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    "  last_updated_ms INTEGER NOT NULL, completed_ms INTEGER NOT NULL DEFAULT 0,"
    "  parent_instance_id TEXT, history_len INTEGER NOT NULL DEFAULT 0,"
    "  input BLOB, output BLOB, custom_status BLOB, failure_details BLOB, tags BLOB);"
    "CREATE TABLE history (instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event BLOB NOT NULL,"
    "  PRIMARY KEY (instance_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE applied (instance_id TEXT NOT NULL, dedupe_id TEXT NOT NULL,"
    "  PRIMARY KEY (instance_id, dedupe_id)) WITHOUT ROWID;"
    "CREATE TABLE timers (id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL,"
    "  fire_at_ms INTEGER NOT NULL, dedupe_id TEXT NOT NULL UNIQUE, payload BLOB NOT NULL);"
    "CREATE INDEX timers_due ON timers (fire_at_ms, id);"
    "CREATE INDEX timers_instance ON timers (instance_id);"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL,"
    "  msg_id TEXT NOT NULL, payload BLOB NOT NULL, headers BLOB);"
    "PRAGMA user_version = 1; PRAGMA application_id = 1146375763;"
    "COMMIT;";

/* ---- real events: an orchestration that runs two activities in sequence ---- */

static void two_steps(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "a", "1", 1, NULL), NULL);
    const char *b = dt_await(ctx, dt_call_activity(ctx, "b", a, strlen(a), NULL), NULL);
    dt_orch_set_output(ctx, b, strlen(b));
}

static dt_status lookup(const char *name, const char *version, void *ctx, dt_orchestrator_fn *fn,
                        void **ud, char *why, size_t why_len)
{
    (void)name, (void)version, (void)ctx, (void)why, (void)why_len;
    *fn = two_steps;
    *ud = NULL;
    return DT_OK;
}

/* A packed event list (heap blobs), as the worker commits it. */
typedef struct events {
    dt__blob ev[32];
    size_t n;
} events;

static void events_free(events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free((void *)e->ev[i].data);
    }
    e->n = 0;
}

static void append_packed(events *out, Dtpb__HistoryEvent *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(out->n < DT__ARRAY_LEN(out->ev));
        size_t len = protobuf_c_message_get_packed_size(&evs[i]->base);
        uint8_t *buf = malloc(len + 1);
        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(&evs[i]->base, buf), len);
        out->ev[out->n++] = (dt__blob){buf, len};
    }
}

static Dtpb__HistoryEvent *task_completed(dt__arena *a, int32_t task, const char *result)
{
    Dtpb__HistoryEvent *ev = dt__arena_calloc(a, 1, sizeof(*ev));
    Dtpb__TaskCompletedEvent *tc = dt__arena_calloc(a, 1, sizeof(*tc));
    Dtpb__Payload *p = dt__arena_calloc(a, 1, sizeof(*p));
    assert_true(ev != NULL && tc != NULL && p != NULL);
    dtpb__history_event__init(ev);
    dtpb__task_completed_event__init(tc);
    dtpb__payload__init(p);
    p->value.data = (uint8_t *)result;
    p->value.len = strlen(result);
    tc->task_scheduled_id = task;
    tc->result = p;
    ev->event_id = -1;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
    ev->task_completed = tc;
    return ev;
}

/* Unpacks blobs into arena events. */
static Dtpb__HistoryEvent **unpack_all(dt__arena *a, const dt__blob *b, size_t n)
{
    Dtpb__HistoryEvent **evs = dt__arena_calloc(a, n + 1, sizeof(*evs));
    assert_non_null(evs);
    for (size_t i = 0; i < n; i++) {
        evs[i] = dtpb__history_event__unpack(dt__arena_pb_allocator(a), b[i].len, b[i].data);
        assert_non_null(evs[i]);
    }
    return evs;
}

/* Runs one episode on a fresh engine (no cache: a full replay of `past`) and returns its
 * appended events, packed. */
static void run_episode(dt__arena *a, Dtpb__HistoryEvent *const *past, size_t n_past,
                        Dtpb__HistoryEvent *news, int64_t now, events *out)
{
    dt__engine_config cfg = {.cache_capacity = 0, .lookup = lookup};
    dt__engine *e = NULL;
    assert_int_equal(dt__engine_create(&cfg, &e), DT_OK);
    dt__episode_input in = {"i", past, n_past, &news, 1, now};
    dt__episode_result r;
    assert_int_equal(dt__engine_run_episode(e, &in, &r), DT_OK);
    append_packed(out, r.appended, r.n_appended);
    dt__episode_result_free(&r);
    dt__engine_destroy(e);
    (void)a;
}

/* The history of instance "i" after two episodes (start, first result). */
static void make_history(dt__arena *a, events *out)
{
    Dtpb__HistoryEvent *start = dt__arena_calloc(a, 1, sizeof(*start));
    Dtpb__ExecutionStartedEvent *es = dt__arena_calloc(a, 1, sizeof(*es));
    Dtpb__OrchestrationInstance *oi = dt__arena_calloc(a, 1, sizeof(*oi));
    Dtpb__Payload *ex = dt__arena_calloc(a, 1, sizeof(*ex));
    assert_true(start != NULL && es != NULL && oi != NULL && ex != NULL);
    dtpb__history_event__init(start);
    dtpb__execution_started_event__init(es);
    dtpb__orchestration_instance__init(oi);
    dtpb__payload__init(ex);
    ex->value.data = (uint8_t *)"x1";
    ex->value.len = 2;
    oi->instance_id = "i";
    oi->execution_id = ex;
    es->name = "two_steps";
    es->orchestration_instance = oi;
    start->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    start->execution_started = es;
    run_episode(a, NULL, 0, start, 1000, out);
    Dtpb__HistoryEvent **past = unpack_all(a, out->ev, out->n);
    run_episode(a, past, out->n, task_completed(a, 0, "\"a\""), 2000, out);
}

/* Writes the events as a version-1 store holds them: one row per event. */
static void write_v1(const char *path, const events *h)
{
    raw_exec(path, v1_schema);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char ins[512];
    snprintf(ins, sizeof(ins),
             "INSERT INTO instances (instance_id, execution_id, name, status, created_ms, "
             "last_updated_ms, history_len, input) VALUES ('i', 'x1', 'two_steps', 0, 1000, 2000, "
             "%zu, NULL);"
             "INSERT INTO applied VALUES ('i', 'start'), ('i', 'res0');",
             h->n);
    assert_int_equal(sqlite3_exec(db, ins, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO history VALUES ('i', ?1, ?2)", -1, &st, NULL),
        SQLITE_OK);
    for (size_t i = 0; i < h->n; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
        sqlite3_bind_blob(st, 2, h->ev[i].data, (int)h->ev[i].len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void assert_same_events(const dt__blob *got, size_t n_got, const events *want)
{
    assert_int_equal(n_got, want->n);
    for (size_t i = 0; i < n_got; i++) {
        assert_int_equal(got[i].len, want->ev[i].len);
        assert_memory_equal(got[i].data, want->ev[i].data, got[i].len);
    }
}

static void version1_store_migrates_and_replays(void **state)
{
    store_fixture *f = *state;
    events h = {0};
    make_history(f->arena, &h);
    assert_true(h.n >= 5);
    write_v1(f->path, &h);

    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    int64_t version = 0;
    assert_int_equal(dt__store_pragma_int(s, "user_version", &version), DT_OK);
    assert_int_equal(version, DT__STORE_SCHEMA_VERSION);
    dt__blob *got = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_load_history(s, "i", f->arena, &got, &n), DT_OK);
    assert_same_events(got, n, &h);
    bool applied = false;
    assert_int_equal(dt__store_is_applied(s, "i", "res0", &applied), DT_OK);
    assert_true(applied);

    /* The next episode replays from the migrated history exactly as from the original. */
    events from_old = {0}, from_new = {0};
    Dtpb__HistoryEvent *res = task_completed(f->arena, 1, "\"b\"");
    run_episode(f->arena, unpack_all(f->arena, h.ev, h.n), h.n, res, 3000, &from_old);
    run_episode(f->arena, unpack_all(f->arena, got, n), n, res, 3000, &from_new);
    assert_same_events(from_new.ev, from_new.n, &from_old);

    /* It is committed as one packed row after the per-event rows of version 1. */
    dt__instance_row row = instance_row("i", "two_steps", 1, 1000);
    dt__episode_commit c = {.instance = &row,
                            .new_events = from_new.ev,
                            .n_new_events = from_new.n,
                            .base_known = true,
                            .base_history_len = h.n,
                            .episode_fields_only = true};
    assert_int_equal(dt__store_commit(s, epoch, &c, 1), DT_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM history"), (int64_t)h.n + 1);
    assert_int_equal(dt__store_load_history(s, "i", f->arena, &got, &n), DT_OK);
    assert_int_equal(n, h.n + from_new.n);
    assert_same_events(got, h.n, &h);
    assert_same_events(got + h.n, from_new.n, &from_new);
    dt__store_close(s);

    /* Opening again changes nothing. */
    s = open_store(f->path, NULL);
    assert_int_equal(dt__store_load_history(s, "i", f->arena, &got, &n), DT_OK);
    assert_int_equal(n, h.n + from_new.n);
    dt__store_close(s);
    events_free(&h);
    events_free(&from_old);
    events_free(&from_new);
}

/* An episode's events share rows up to the byte budget; an event over it has a row of its own;
 * empty events and bytes of every value round-trip. */
static void episodes_are_packed_rows(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    enum { SMALL = 300, BIG = DT__STORE_HISTORY_ROW_BYTES + 10 };
    static uint8_t big[BIG];
    static uint8_t bytes[SMALL][200];
    dt__blob ev[SMALL + 3];
    size_t n = 0;
    ev[n++] = (dt__blob){(const uint8_t *)"", 0};
    for (size_t i = 0; i < SMALL; i++) {
        for (size_t k = 0; k < sizeof(bytes[i]); k++) {
            bytes[i][k] = (uint8_t)(i * 7 + k);
        }
        ev[n++] = (dt__blob){bytes[i], 1 + i % 200}; /* lengths around the varint boundary */
    }
    memset(big, 0xAB, sizeof(big));
    ev[n++] = (dt__blob){big, sizeof(big)};
    ev[n++] = (dt__blob){(const uint8_t *)"last", 4};
    dt__instance_row row = instance_row("p", "O", 0, 1);
    dt__episode_commit c = {.instance = &row, .new_events = ev, .n_new_events = n};
    assert_int_equal(dt__store_commit(s, epoch, &c, 1), DT_OK);
    /* The small ones fit one row, the big one is alone, "last" starts a new row. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM history WHERE instance_id = 'p'"), 3);
    assert_int_equal(raw_int(f->path, "SELECT max(length(event)) FROM history"), BIG);

    dt__blob *got = NULL;
    size_t n_got = 0;
    assert_int_equal(dt__store_load_history(s, "p", f->arena, &got, &n_got), DT_OK);
    assert_int_equal(n_got, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].len, ev[i].len);
        assert_memory_equal(got[i].data, ev[i].data, ev[i].len);
        assert_int_equal(got[i].data[got[i].len], 0); /* NUL-terminated copies */
    }
    dt__store_close(s);
}

/* Rows whose count and bytes disagree, or whose sequence numbers leave a gap, are corrupt. */
static void damaged_rows_are_reported(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row row = instance_row("d", "O", 0, 1);
    dt__blob ev[] = {blob_str("a"), blob_str("bb"), blob_str("ccc")};
    commit_simple(s, epoch, &row, ev, 3);
    dt__blob *got = NULL;
    size_t n = 0;
    raw_exec(f->path, "UPDATE history SET n = 4 WHERE instance_id = 'd'");
    assert_int_equal(dt__store_load_history(s, "d", f->arena, &got, &n), DT_ECORRUPT);
    raw_exec(f->path, "UPDATE history SET n = 2 WHERE instance_id = 'd'");
    assert_int_equal(dt__store_load_history(s, "d", f->arena, &got, &n), DT_ECORRUPT);
    raw_exec(f->path, "UPDATE history SET n = 3, event = X'01610262' WHERE instance_id = 'd'");
    assert_int_equal(dt__store_load_history(s, "d", f->arena, &got, &n), DT_ECORRUPT);
    raw_exec(f->path, "UPDATE history SET n = 3, event = X'016102626203636363' "
                      "WHERE instance_id = 'd'");
    assert_int_equal(dt__store_load_history(s, "d", f->arena, &got, &n), DT_OK);
    assert_int_equal(n, 3);
    raw_exec(f->path, "UPDATE history SET seq = 1 WHERE instance_id = 'd'");
    assert_int_equal(dt__store_load_history(s, "d", f->arena, &got, &n), DT_ECORRUPT);
    dt__store_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(version1_store_migrates_and_replays),
        T(episodes_are_packed_rows),
        T(damaged_rows_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
