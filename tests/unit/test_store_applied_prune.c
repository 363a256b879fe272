/*
 * The age prune of an entity's applied identities (runtime/history/store_commit.c, migration 5):
 * a live entity keeps a bounded applied set however many operations it runs, a recent identity
 * is still recognised (a redelivered operation is not applied twice), and orchestrations keep
 * theirs until they complete, as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_store_util.h"

#define KEEP_MS   60000 /* applied_keep_ms of these tests: a minute */
#define STEP_MS   1000  /* one operation a second */
#define N_OPS     1000  /* far more operations than one KEEP_MS holds */
#define ENTITY_ID "@counter@c1"

static dt__store *open_keep(const char *path, uint64_t *epoch)
{
    dt__store_options o = {.applied_keep_ms = KEEP_MS};
    dt__store *s = open_store(path, &o);
    assert_int_equal(dt__store_claim(s, "test-owner", epoch), DT_OK);
    return s;
}

/* Commits one operation `op_id` of instance `id` at time `ms`; returns the commit's status. */
static dt_status commit_op(dt__store *s, uint64_t epoch, const char *id, const char *op_id,
                           int64_t ms, bool first)
{
    dt__instance_row row = instance_row(id, "counter", 0, 1000);
    row.last_updated_ms = ms;
    const char *ids[] = {op_id};
    dt__episode_commit e = {
        .instance = &row,
        .base_known = true,
        .base_history_len = 0,
        .episode_fields_only = !first,
        .applied_ids = ids,
        .n_applied = 1,
    };
    return dt__store_commit(s, epoch, &e, 1);
}

static int64_t applied_rows(const char *path, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM applied WHERE instance_id = '%s'", id);
    return raw_int(path, sql);
}

static void test_entity_applied_set_is_bounded(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_keep(f->path, &epoch);
    char op[32];
    int64_t t0 = 1000000;
    for (int i = 0; i < N_OPS; i++) {
        snprintf(op, sizeof(op), "op-%d", i);
        dt_status st = commit_op(s, epoch, ENTITY_ID, op, t0 + (int64_t)i * STEP_MS, i == 0);
        if (st != DT_OK) {
            fail_msg("commit %d: %s: %s", i, dt_status_name(st), dt__store_errmsg(s));
        }
    }
    /* Only the identities of the last KEEP_MS are left (those at exactly the cutoff stay). */
    int64_t rows = applied_rows(f->path, ENTITY_ID);
    assert_int_equal(rows, KEEP_MS / STEP_MS + 1);

    int64_t last = t0 + (int64_t)(N_OPS - 1) * STEP_MS;
    bool applied = false;
    /* A redelivered recent operation is still recognised, by the filter or the table ... */
    snprintf(op, sizeof(op), "op-%d", N_OPS - 1);
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, op, &applied), DT_OK);
    assert_true(applied);
    snprintf(op, sizeof(op), "op-%d", N_OPS - 1 - KEEP_MS / STEP_MS);
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, op, &applied), DT_OK);
    assert_true(applied);
    /* ... and recording it again fails the commit (the worker's filter would have dropped it). */
    assert_int_equal(commit_op(s, epoch, ENTITY_ID, op, last + STEP_MS, false), DT_EEXIST);
    /* An identity older than KEEP_MS is forgotten. */
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, "op-0", &applied), DT_OK);
    assert_false(applied);
    snprintf(op, sizeof(op), "op-%d", N_OPS - 2 - KEEP_MS / STEP_MS);
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, op, &applied), DT_OK);
    assert_false(applied);
    dt__store_close(s);

    /* A reopened handle (its filter built from the table) gives the same answers. */
    s = open_keep(f->path, &epoch);
    snprintf(op, sizeof(op), "op-%d", N_OPS - 1);
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, op, &applied), DT_OK);
    assert_true(applied);
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, "op-0", &applied), DT_OK);
    assert_false(applied);
    dt__store_close(s);
}

/* The prune is by the episodes' times, not by count: a burst inside KEEP_MS keeps every
 * identity, however many. */
static void test_entity_burst_keeps_all(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_keep(f->path, &epoch);
    char op[32];
    for (int i = 0; i < N_OPS; i++) {
        snprintf(op, sizeof(op), "op-%d", i);
        assert_int_equal(commit_op(s, epoch, ENTITY_ID, op, 5000000 + i, i == 0), DT_OK);
    }
    assert_int_equal(applied_rows(f->path, ENTITY_ID), N_OPS);
    bool applied = false;
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, "op-0", &applied), DT_OK);
    assert_true(applied);
    dt__store_close(s);
}

/* Orchestrations are not pruned by age: theirs go when they complete (prune_applied). */
static void test_orchestration_not_pruned_by_age(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_keep(f->path, &epoch);
    dt__instance_row row = instance_row("orch-1", "flow", 0, 1000);
    dt__blob ev = blob_str("e");
    char op[32];
    for (int i = 0; i < 200; i++) {
        snprintf(op, sizeof(op), "m-%d", i);
        const char *ids[] = {op};
        row.last_updated_ms = 1000000 + (int64_t)i * STEP_MS;
        dt__episode_commit e = {.instance = &row,
                                .new_events = &ev,
                                .n_new_events = 1,
                                .applied_ids = ids,
                                .n_applied = 1};
        assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_OK);
    }
    assert_int_equal(applied_rows(f->path, "orch-1"), 200);
    dt__store_close(s);
}

/* Schema version 1 as released (store_schema.c migration 1), with an entity and an
 * orchestration that have applied identities. PERSISTED: never edit. */
static const char v1_file[] =
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
    "INSERT INTO instances (instance_id, execution_id, name, status, created_ms, last_updated_ms)"
    "  VALUES ('" ENTITY_ID "', 'e', 'counter', 0, 1000, 2000000),"
    "         ('orch-1', 'x', 'flow', 0, 1000, 2000000);"
    "INSERT INTO applied VALUES ('" ENTITY_ID "', 'old-1'), ('" ENTITY_ID "', 'old-2'),"
    "  ('orch-1', 'old-1');"
    "PRAGMA user_version = 1; PRAGMA application_id = 1146375763;"
    "COMMIT;";

/* Migration 5 gives an entity's existing identities the entity's last update (so they are kept
 * a full KEEP_MS from there, no less) and leaves orchestrations' at 0 (never pruned by age). */
static void test_migration_dates_existing_rows(void **state)
{
    store_fixture *f = *state;
    raw_exec(f->path, v1_file);
    uint64_t epoch = 0;
    dt__store *s = open_keep(f->path, &epoch);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM applied WHERE applied_ms = 2000000 "
                                      "AND instance_id = '" ENTITY_ID "'"),
                     2);
    assert_int_equal(
        raw_int(f->path, "SELECT applied_ms FROM applied WHERE instance_id = 'orch-1'"), 0);
    /* Within KEEP_MS of the entity's last update they are still recognised ... */
    assert_int_equal(commit_op(s, epoch, ENTITY_ID, "new-1", 2000000 + KEEP_MS, false), DT_OK);
    bool applied = false;
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, "old-1", &applied), DT_OK);
    assert_true(applied);
    /* ... and forgotten after it; the orchestration's stays. */
    assert_int_equal(commit_op(s, epoch, ENTITY_ID, "new-2", 2000001 + KEEP_MS, false), DT_OK);
    assert_int_equal(dt__store_is_applied(s, ENTITY_ID, "old-1", &applied), DT_OK);
    assert_false(applied);
    assert_int_equal(dt__store_is_applied(s, "orch-1", "old-1", &applied), DT_OK);
    assert_true(applied);
    assert_int_equal(applied_rows(f->path, ENTITY_ID), 2);
    dt__store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_entity_applied_set_is_bounded, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_entity_burst_keeps_all, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_orchestration_not_pruned_by_age, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_migration_dates_existing_rows, store_setup,
                                        store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
