/*
 * Tests of opening the SQLite history store: creation and reopening, WAL and synchronous
 * settings, migrations, and the refusal of files that are not ours (garbage, truncated, foreign
 * SQLite, newer schema) with the right status and a message, without crashing or writing to them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_store_util.h"

static void create_and_reopen_keeps_data(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    assert_int_equal(epoch, 1);
    dt__instance_row row = instance_row("inst-1", "Hello", 0, 1000);
    row.input = blob_str("\"world\"");
    dt__blob events[] = {blob_str("ev0"), blob_str("ev1")};
    commit_simple(s, epoch, &row, events, 2);
    dt__store_close(s);

    s = open_store(f->path, NULL);
    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "inst-1", f->arena, &got), DT_OK);
    assert_string_equal(got.name, "Hello");
    assert_blob_equal(got.input, "\"world\"");
    assert_int_equal(got.history_len, 2);
    dt__blob *ev = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_load_history(s, "inst-1", f->arena, &ev, &n), DT_OK);
    assert_int_equal(n, 2);
    assert_blob_equal(ev[1], "ev1");
    const char *owner = NULL;
    assert_int_equal(dt__store_epoch(s, f->arena, &epoch, &owner), DT_OK);
    assert_int_equal(epoch, 1);
    assert_string_equal(owner, "test-owner");
    assert_string_equal(dt__store_path(s), f->path);
    dt__store_close(s);
}

static void schema_is_versioned_and_marked(void **state)
{
    store_fixture *f = *state;
    dt__store_close(open_store(f->path, NULL));
    assert_int_equal(raw_int(f->path, "PRAGMA application_id"), DT__STORE_APPLICATION_ID);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DT__STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM partition"), 1);
    /* Reopening does not migrate again (the partition row would be duplicated or fail). */
    dt__store_close(open_store(f->path, NULL));
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM partition"), 1);
}

static void wal_mode_is_on(void **state)
{
    store_fixture *f = *state;
    dt__store *s = open_store(f->path, NULL);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    dt__store_close(s);
}

/* With background_checkpoint the handle's commits no longer checkpoint (below 16,000 WAL pages
 * its WAL hook only wakes the checkpointer thread): the WAL must still reach the database file
 * while the handle stays open (this fails if the thread never checkpoints), and everything must
 * read back after the close. */
static void background_checkpoint_copies_the_wal(void **state)
{
    store_fixture *f = *state;
    dt__store_options o;
    dt__store_options_init(&o);
    o.background_checkpoint = true;
    dt__store *s = open_store(f->path, &o);
    uint64_t epoch = 0;
    assert_int_equal(dt__store_claim(s, "test-owner", &epoch), DT_OK);
    enum { COMMITS = 400, EVENT_BYTES = 16 * 1024 };
    char *big = malloc(EVENT_BYTES + 1);
    assert_non_null(big);
    memset(big, 'e', EVENT_BYTES);
    big[EVENT_BYTES] = '\0';
    dt__blob ev = blob_str(big);
    for (int i = 0; i < COMMITS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ckpt-%d", i);
        dt__instance_row row = instance_row(id, "orch", 1, 1);
        commit_simple(s, epoch, &row, &ev, 1);
    }
    free(big);
    /* Written: COMMITS * EVENT_BYTES in the WAL (about 1,600 pages). Copied by the checkpointer:
     * the database file holds most of it, with the handle still open. */
    struct stat sb = {0};
    for (int waited = 0; waited < 10000; waited += 10) {
        assert_int_equal(stat(f->path, &sb), 0);
        if (sb.st_size > (off_t)COMMITS * EVENT_BYTES / 2) {
            break;
        }
        usleep(10 * 1000);
    }
    assert_true(sb.st_size > (off_t)COMMITS * EVENT_BYTES / 2);
    dt__store_close(s);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM instances"), COMMITS);
}

static void synchronous_normal_by_default_full_on_request(void **state)
{
    store_fixture *f = *state;
    int64_t v = -1;
    dt__store *s = open_store(f->path, NULL);
    assert_int_equal(dt__store_pragma_int(s, "synchronous", &v), DT_OK);
    assert_int_equal(v, 1); /* NORMAL */
    dt__store_close(s);

    dt__store_options o = {.synchronous_full = true, .cache_size_kib = 1024};
    s = open_store(f->path, &o);
    assert_int_equal(dt__store_pragma_int(s, "synchronous", &v), DT_OK);
    assert_int_equal(v, 2); /* FULL */
    assert_int_equal(dt__store_pragma_int(s, "cache_size", &v), DT_OK);
    assert_int_equal(v, -1024);
    assert_int_equal(dt__store_pragma_int(s, "busy_timeout", &v), DT_OK);
    assert_int_equal(v, 5000);
    assert_int_equal(dt__store_pragma_int(s, "synchronous; DROP TABLE x", &v), DT_EINVAL);
    dt__store_close(s);
}

/* Writes n bytes of `data` as the whole file. */
static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static unsigned char *read_file(const char *path, size_t *out_n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *out_n = (size_t)n;
    return buf;
}

/* Opens, expecting `want`, a message naming the file and containing `text`. */
static void expect_open_fails(const char *path, dt_status want, const char *text)
{
    char err[512] = "";
    dt__store *s = (dt__store *)0x1;
    dt_status st = dt__store_open(path, NULL, &s, err, sizeof(err));
    if (st != want) {
        fail_msg("open %s: got %s, want %s (%s)", path, dt_status_name(st), dt_status_name(want),
                 err);
    }
    assert_ptr_equal(s, (dt__store *)0x1); /* out untouched */
    assert_non_null(strstr(err, path));
    if (strstr(err, text) == NULL) {
        fail_msg("message '%s' lacks '%s'", err, text);
    }
}

static void garbage_file_is_corrupt_and_left_alone(void **state)
{
    store_fixture *f = *state;
    unsigned char junk[8192];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        seed = seed * 1103515245u + 12345u;
        junk[i] = (unsigned char)(seed >> 16);
    }
    write_file(f->path, junk, sizeof(junk));
    expect_open_fails(f->path, DT_ECORRUPT, "not a valid SQLite database");
    size_t n = 0;
    unsigned char *after = read_file(f->path, &n);
    assert_int_equal(n, sizeof(junk));
    assert_memory_equal(after, junk, n);
    free(after);

    write_file(f->path, "hello, I am a text file\n", 24);
    expect_open_fails(f->path, DT_ECORRUPT, "not a valid SQLite database");
}

/* Builds a store with enough rows to span many pages, closed cleanly (WAL checkpointed). */
static unsigned char *populated_store_bytes(const char *path, size_t *out_n)
{
    uint64_t epoch = 0;
    dt__store *s = open_claimed(path, &epoch);
    char id[32];
    char payload[2000];
    memset(payload, 'x', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    dt__blob ev = blob_str(payload);
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "inst-%02d", i);
        dt__instance_row row = instance_row(id, "Big", 0, i);
        commit_simple(s, epoch, &row, &ev, 1);
    }
    dt__store_close(s);
    return read_file(path, out_n);
}

static void truncated_file_is_corrupt(void **state)
{
    store_fixture *f = *state;
    size_t n = 0;
    unsigned char *bytes = populated_store_bytes(f->path, &n);
    assert_true(n > 40000);
    const size_t cuts[] = {50, 100, 4096, n / 2, n - 4096};
    for (size_t i = 0; i < DT__ARRAY_LEN(cuts); i++) {
        write_file(f->path, bytes, cuts[i]);
        expect_open_fails(f->path, DT_ECORRUPT, "SQLite");
    }
    free(bytes);
}

static void foreign_sqlite_database_is_refused(void **state)
{
    store_fixture *f = *state;
    raw_exec(f->path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                      "INSERT INTO customers (name) VALUES ('ada');");
    expect_open_fails(f->path, DT_ECORRUPT, "not a durabletask store");
    /* Untouched: still in rollback-journal mode, data intact. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM customers"), 1);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);

    /* Another application's id on an otherwise empty file is not ours either. */
    char other[512];
    snprintf(other, sizeof(other), "%s/other.db", f->dir);
    raw_exec(other, "PRAGMA application_id = 1234");
    expect_open_fails(other, DT_ECORRUPT, "application_id 0x000004d2");
}

static void newer_schema_version_is_refused(void **state)
{
    store_fixture *f = *state;
    dt__store_close(open_store(f->path, NULL));
    raw_exec(f->path, "PRAGMA user_version = 99");
    expect_open_fails(f->path, DT_EVERSION, "schema version 99");
}

static void zero_length_file_becomes_a_store(void **state)
{
    store_fixture *f = *state;
    write_file(f->path, "", 0);
    dt__store *s = open_store(f->path, NULL);
    uint64_t epoch = 99;
    assert_int_equal(dt__store_epoch(s, NULL, &epoch, NULL), DT_OK);
    assert_int_equal(epoch, 0);
    dt__store_close(s);
}

static void bad_arguments_and_paths(void **state)
{
    store_fixture *f = *state;
    char err[256] = "";
    dt__store *s = NULL;
    assert_int_equal(dt__store_open(NULL, NULL, &s, err, sizeof(err)), DT_EINVAL);
    assert_int_equal(dt__store_open(f->path, NULL, NULL, NULL, 0), DT_EINVAL);
    dt__store_options bad = {.busy_timeout_ms = -1};
    assert_int_equal(dt__store_open(f->path, &bad, &s, err, sizeof(err)), DT_EINVAL);
    assert_null(s);

    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/p000.db", f->dir);
    expect_open_fails(missing, DT_EIO, "cannot open");
    dt__store_close(NULL);
}

static void open_survives_allocation_failures(void **state)
{
    store_fixture *f = *state;
    dt_test_alloc_install();
    long base = dt_test_alloc_outstanding();
    for (long k = 0; k < 2; k++) {
        dt__store *s = NULL;
        dt_test_alloc_fail_after(k);
        assert_int_equal(dt__store_open(f->path, NULL, &s, NULL, 0), DT_ENOMEM);
        dt_test_alloc_fail_after(-1);
        assert_null(s);
        assert_int_equal(dt_test_alloc_outstanding(), base);
    }
    dt__store *s = open_store(f->path, NULL);
    dt__store_close(s);
    assert_int_equal(dt_test_alloc_outstanding(), base);
    dt_set_allocator(NULL);
}

static void concurrent_opens_migrate_once(void **state)
{
    store_fixture *f = *state;
    enum { N = 4 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            dt__store *s = NULL;
            uint64_t epoch = 0;
            char err[512] = "";
            dt_status st = dt__store_open(f->path, NULL, &s, err, sizeof(err));
            if (st == DT_OK) {
                st = dt__store_claim(s, "racer", &epoch);
                snprintf(err, sizeof(err), "%s", dt__store_errmsg(s));
            }
            int ok = st == DT_OK;
            if (!ok) {
                fprintf(stderr, "racer: %s: %s\n", dt_status_name(st), err);
            }
            dt__store_close(s);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM partition"), 1);
    assert_int_equal(raw_int(f->path, "SELECT epoch FROM partition"), N);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DT__STORE_SCHEMA_VERSION);
}

static void busy_writer_gives_ebusy_then_recovers(void **state)
{
    store_fixture *f = *state;
    dt__store_options o = {.busy_timeout_ms = 50};
    dt__store *s = open_store(f->path, &o);
    uint64_t epoch = 0;
    assert_int_equal(dt__store_claim(s, "w", &epoch), DT_OK);

    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    dt__instance_row row = instance_row("a", "O", 0, 1);
    dt__episode_commit e = {.instance = &row};
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EBUSY);
    uint64_t e2 = 0;
    assert_int_equal(dt__store_claim(s, "w", &e2), DT_EBUSY);
    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "a", f->arena, &got),
                     DT_ENOTFOUND); /* reads go on */
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);

    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_OK);
    assert_int_equal(dt__store_get_instance(s, "a", f->arena, &got), DT_OK);
    dt__store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_and_reopen_keeps_data, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(schema_is_versioned_and_marked, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(wal_mode_is_on, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(background_checkpoint_copies_the_wal, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(synchronous_normal_by_default_full_on_request, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(garbage_file_is_corrupt_and_left_alone, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(truncated_file_is_corrupt, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(foreign_sqlite_database_is_refused, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(newer_schema_version_is_refused, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(zero_length_file_becomes_a_store, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(bad_arguments_and_paths, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(open_survives_allocation_failures, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(concurrent_opens_migrate_once, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(busy_writer_gives_ebusy_then_recovers, store_setup,
                                        store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
