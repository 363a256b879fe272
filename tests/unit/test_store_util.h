/*
 * test_store_util.h: helpers shared by the tests of the SQLite history store (test_store_*.c):
 * a temp directory per test, instance rows and episodes built from strings, and direct SQLite
 * access to the file for checks and for damaging it. Include after <cmocka.h>.
 */
#ifndef DT_TEST_STORE_UTIL_H
#define DT_TEST_STORE_UTIL_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_int.h"
#include "common_int.h"
#include "history/store_int.h"
#include "test_support.h"

/* A temp directory and the path of p000.db inside it; torn down by store_fixture_free. */
typedef struct store_fixture {
    char *dir;
    char path[512];
    dt__arena *arena;
} store_fixture;

static inline store_fixture *store_fixture_new(void)
{
    store_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = dt_test_mkdtemp("dt-store");
    assert_non_null(f->dir);
    snprintf(f->path, sizeof(f->path), "%s/p000.db", f->dir);
    f->arena = dt__arena_create(0);
    assert_non_null(f->arena);
    return f;
}

static inline void store_fixture_free(store_fixture *f)
{
    dt__arena_destroy(f->arena);
    dt_test_rmtree(f->dir);
    free(f->dir);
    free(f);
}

/* cmocka setup/teardown wrappers. */
static inline int store_setup(void **state)
{
    *state = store_fixture_new();
    return 0;
}

static inline int store_teardown(void **state)
{
    store_fixture_free(*state);
    return 0;
}

/* Opens with the given options (NULL = defaults), failing the test on error. */
static inline dt__store *open_store(const char *path, const dt__store_options *o)
{
    char err[256] = "";
    dt__store *s = NULL;
    dt_status st = dt__store_open(path, o, &s, err, sizeof(err));
    if (st != DT_OK) {
        fail_msg("open %s: %s: %s", path, dt_status_name(st), err);
    }
    return s;
}

/* Opens and claims, returning the epoch in *epoch. */
static inline dt__store *open_claimed(const char *path, uint64_t *epoch)
{
    dt__store *s = open_store(path, NULL);
    assert_int_equal(dt__store_claim(s, "test-owner", epoch), DT_OK);
    return s;
}

static inline dt__blob blob_str(const char *s)
{
    return (dt__blob){(const uint8_t *)s, s != NULL ? strlen(s) : 0};
}

static inline dt__instance_row instance_row(const char *id, const char *name, int32_t status,
                                            int64_t created_ms)
{
    return (dt__instance_row){
        .instance_id = id,
        .execution_id = "exec-1",
        .name = name,
        .runtime_status = status,
        .created_ms = created_ms,
        .last_updated_ms = created_ms,
    };
}

static inline void assert_blob_equal(dt__blob b, const char *expected)
{
    if (expected == NULL) {
        assert_null(b.data);
        return;
    }
    assert_non_null(b.data);
    assert_int_equal(b.len, strlen(expected));
    assert_memory_equal(b.data, expected, b.len);
}

/* Commits one episode with only an instance row and events, failing the test on error. */
static inline void commit_simple(dt__store *s, uint64_t epoch, const dt__instance_row *row,
                                 const dt__blob *events, size_t n_events)
{
    dt__episode_commit e = {.instance = row, .new_events = events, .n_new_events = n_events};
    dt_status st = dt__store_commit(s, epoch, &e, 1);
    if (st != DT_OK) {
        fail_msg("commit: %s: %s", dt_status_name(st), dt__store_errmsg(s));
    }
}

static inline dt__timer_new timer(int64_t at, const char *dedupe, const char *payload)
{
    return (dt__timer_new){.fire_at_ms = at, .dedupe_id = dedupe, .payload = blob_str(payload)};
}

static inline dt__outbox_msg out_msg(const char *subject, const char *msg_id, const char *payload,
                                     const char *headers)
{
    return (dt__outbox_msg){.subject = subject,
                            .msg_id = msg_id,
                            .payload = blob_str(payload),
                            .headers = blob_str(headers)};
}

/* Number of outbox rows (up to DT__STORE_MAX_PAGE). */
static inline size_t outbox_len(dt__store *s, dt__arena *a)
{
    dt__outbox_row *rows = NULL;
    size_t n = 99;
    assert_int_equal(dt__store_outbox_list(s, 0, DT__STORE_MAX_PAGE, a, &rows, &n), DT_OK);
    return n;
}

/* Runs a query returning one integer on a separate raw connection to the file. */
static inline int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs statements on a raw connection (creating the file when missing). */
static inline void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        fail_msg("raw exec %s: %s", sql, err != NULL ? err : "?");
    }
    sqlite3_close(db);
}

/* Every table's rows (ids included), in one text, to compare two files: free() it. */
static inline char *store_dump(const char *path)
{
    static const char *const sql[] = {
        "SELECT group_concat(instance_id || '|' || execution_id || '|' || status || '|' || "
        "history_len || '|' || created_ms || '|' || last_updated_ms || '|' || completed_ms || '|' "
        "|| hex(ifnull(input, 'NULL')) || '|' || hex(ifnull(output, 'NULL')) || '|' || "
        "hex(ifnull(custom_status, 'NULL')) || '|' || hex(ifnull(failure_details, 'NULL')) || '|' "
        "|| hex(ifnull(tags, 'NULL')) || '|' || ifnull(version, 'NULL') || '|' || "
        "ifnull(parent_instance_id, 'NULL'), ';') FROM (SELECT * FROM instances ORDER BY "
        "instance_id)",
        "SELECT group_concat(instance_id || '|' || seq || '|' || hex(event), ';') FROM "
        "(SELECT * FROM history ORDER BY instance_id, seq)",
        "SELECT group_concat(id || '|' || subject || '|' || msg_id || '|' || hex(payload) || '|' "
        "|| "
        "hex(ifnull(headers, 'NULL')), ';') FROM (SELECT * FROM outbox ORDER BY id)",
        "SELECT group_concat(id || '|' || instance_id || '|' || fire_at_ms || '|' || dedupe_id || "
        "'|' || hex(payload), ';') FROM (SELECT * FROM timers ORDER BY id)",
        "SELECT group_concat(id || '|' || instance_id || '|' || dedupe_id || '|' || parked_ms || "
        "'|' || hex(payload), ';') FROM (SELECT * FROM parked ORDER BY id)",
        "SELECT group_concat(instance_id || '|' || dedupe_id, ';') FROM "
        "(SELECT * FROM applied ORDER BY instance_id, dedupe_id)",
        "SELECT log_origin FROM partition",
    };
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    size_t cap = 1 << 22, len = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, sql[i], -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const unsigned char *t = sqlite3_column_text(st, 0);
        len += (size_t)snprintf(out + len, cap - len, "%s\n", t != NULL ? (const char *)t : "");
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
}

#endif
