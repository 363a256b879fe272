/*
 * Tests of the store's writes and reads: instance round trip (absent vs empty payloads), history
 * appends and continue-as-new resets, applied identities, fencing between two handles, batch
 * atomicity and limits, and allocation failures while reading. Timers and the outbox are in
 * test_store_timers_outbox.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_store_util.h"

/* Fails the test unless the instance is absent. */
static void assert_no_instance(dt__store *s, const char *id, dt__arena *a)
{
    dt__instance_row r;
    assert_int_equal(dt__store_get_instance(s, id, a, &r), DT_ENOTFOUND);
}

static size_t history_len(dt__store *s, const char *id, dt__arena *a)
{
    dt__blob *ev = NULL;
    size_t n = 99;
    assert_int_equal(dt__store_load_history(s, id, a, &ev, &n), DT_OK);
    return n;
}

static void instance_row_round_trips(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row row = instance_row("a", "Orch", 3, 111);
    row.version = "v2";
    row.last_updated_ms = 222;
    row.completed_ms = 333;
    row.parent_instance_id = "parent";
    row.input = (dt__blob){NULL, 0};                 /* absent */
    row.output = (dt__blob){(const uint8_t *)"", 0}; /* empty */
    row.custom_status = blob_str("{\"step\":1}");
    row.failure_details = (dt__blob){(const uint8_t *)"\x0a\x00\x01", 3}; /* binary, NUL inside */
    row.tags = blob_str("t");
    row.history_len = 12345; /* ignored: computed */
    commit_simple(s, epoch, &row, NULL, 0);

    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "a", f->arena, &got), DT_OK);
    assert_string_equal(got.instance_id, "a");
    assert_string_equal(got.execution_id, "exec-1");
    assert_string_equal(got.name, "Orch");
    assert_string_equal(got.version, "v2");
    assert_int_equal(got.runtime_status, 3);
    assert_int_equal(got.created_ms, 111);
    assert_int_equal(got.last_updated_ms, 222);
    assert_int_equal(got.completed_ms, 333);
    assert_string_equal(got.parent_instance_id, "parent");
    assert_null(got.input.data);
    assert_non_null(got.output.data);
    assert_int_equal(got.output.len, 0);
    assert_blob_equal(got.custom_status, "{\"step\":1}");
    assert_int_equal(got.failure_details.len, 3);
    assert_memory_equal(got.failure_details.data, "\x0a\x00\x01", 3);
    assert_blob_equal(got.tags, "t");
    assert_int_equal(got.history_len, 0);

    /* An upsert replaces every column. */
    dt__instance_row row2 = instance_row("a", "Orch", 1, 111);
    commit_simple(s, epoch, &row2, NULL, 0);
    assert_int_equal(dt__store_get_instance(s, "a", f->arena, &got), DT_OK);
    assert_null(got.version);
    assert_null(got.parent_instance_id);
    assert_null(got.output.data);
    assert_int_equal(got.runtime_status, 1);
    assert_no_instance(s, "b", f->arena);
    dt__store_close(s);
}

static void history_appends_and_resets(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row row = instance_row("i", "O", 0, 1);
    dt__blob first[] = {blob_str("e0"), blob_str("e1")};
    dt__blob second[] = {blob_str("e2"), blob_str(""), blob_str("e4")};
    commit_simple(s, epoch, &row, first, 2);
    commit_simple(s, epoch, &row, second, 3);

    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "i", f->arena, &got), DT_OK);
    assert_int_equal(got.history_len, 5);
    dt__blob *ev = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_load_history(s, "i", f->arena, &ev, &n), DT_OK);
    assert_int_equal(n, 5);
    const char *want[] = {"e0", "e1", "e2", "", "e4"};
    for (size_t i = 0; i < n; i++) {
        assert_blob_equal(ev[i], want[i]);
    }

    /* Continue-as-new: a new execution whose history starts over. */
    dt__instance_row next = instance_row("i", "O", 0, 1);
    next.execution_id = "exec-2";
    dt__blob fresh = blob_str("started-again");
    dt__episode_commit e = {
        .instance = &next, .reset_history = true, .new_events = &fresh, .n_new_events = 1};
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_OK);
    assert_int_equal(dt__store_get_instance(s, "i", f->arena, &got), DT_OK);
    assert_string_equal(got.execution_id, "exec-2");
    assert_int_equal(got.history_len, 1);
    assert_int_equal(dt__store_load_history(s, "i", f->arena, &ev, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_blob_equal(ev[0], "started-again");

    assert_int_equal(history_len(s, "unknown", f->arena), 0);
    dt__store_close(s);
}

static void applied_ids_dedupe_and_prune(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row a = instance_row("a", "O", 0, 1);
    dt__instance_row b = instance_row("b", "O", 0, 1);
    const char *ids[] = {"m1", "m2"};
    dt__episode_commit e = {.instance = &a, .applied_ids = ids, .n_applied = 2};
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_OK);

    bool applied = false;
    assert_int_equal(dt__store_is_applied(s, "a", "m2", &applied), DT_OK);
    assert_true(applied);
    assert_int_equal(dt__store_is_applied(s, "b", "m2", &applied), DT_OK);
    assert_false(applied); /* identities are per instance */
    assert_int_equal(dt__store_is_applied(s, "a", "m3", &applied), DT_OK);
    assert_false(applied);

    /* Recording an identity twice is a bug upstream: the commit fails and writes nothing. */
    const char *again[] = {"m3", "m1"};
    dt__blob ev = blob_str("x");
    dt__episode_commit dup = {
        .instance = &a, .new_events = &ev, .n_new_events = 1, .applied_ids = again, .n_applied = 2};
    assert_int_equal(dt__store_commit(s, epoch, &dup, 1), DT_EEXIST);
    assert_int_equal(dt__store_is_applied(s, "a", "m3", &applied), DT_OK);
    assert_false(applied);
    assert_int_equal(history_len(s, "a", f->arena), 0);

    /* The instance completes: its identities are pruned, the other instance's stay. */
    const char *bid[] = {"m1"};
    dt__episode_commit eb = {.instance = &b, .applied_ids = bid, .n_applied = 1};
    assert_int_equal(dt__store_commit(s, epoch, &eb, 1), DT_OK);
    a.runtime_status = 1;
    const char *last[] = {"m9"};
    dt__episode_commit done = {
        .instance = &a, .applied_ids = last, .n_applied = 1, .prune_applied = true};
    assert_int_equal(dt__store_commit(s, epoch, &done, 1), DT_OK);
    assert_int_equal(dt__store_is_applied(s, "a", "m1", &applied), DT_OK);
    assert_false(applied);
    assert_int_equal(dt__store_is_applied(s, "a", "m9", &applied), DT_OK);
    assert_false(applied);
    assert_int_equal(dt__store_is_applied(s, "b", "m1", &applied), DT_OK);
    assert_true(applied);
    dt__store_close(s);
}

/* An episode that touches every table: instance "x", one event, applied, timer and outbox. */
typedef struct full_episode {
    dt__instance_row row;
    dt__blob ev;
    dt__outbox_msg m;
    const char *ids[1];
    dt__timer_new t;
    dt__episode_commit e;
} full_episode;

static void full_episode_init(full_episode *fe)
{
    fe->row = instance_row("x", "O", 0, 1);
    fe->ev = blob_str("ev");
    fe->m = out_msg("s", "x/1", "p", NULL);
    fe->ids[0] = "m1";
    fe->t = timer(10, "x/t", "tp");
    fe->e = (dt__episode_commit){.instance = &fe->row,
                                 .new_events = &fe->ev,
                                 .n_new_events = 1,
                                 .applied_ids = fe->ids,
                                 .n_applied = 1,
                                 .new_timers = &fe->t,
                                 .n_new_timers = 1,
                                 .outbox = &fe->m,
                                 .n_outbox = 1};
}

/* Fails the test unless nothing of full_episode is in the store. */
static void assert_full_episode_absent(dt__store *s, dt__arena *a)
{
    assert_no_instance(s, "x", a);
    assert_int_equal(history_len(s, "x", a), 0);
    assert_int_equal(outbox_len(s, a), 0);
    int64_t next = 0;
    assert_int_equal(dt__store_next_timer_ms(s, &next), DT_ENOTFOUND);
    bool applied = true;
    assert_int_equal(dt__store_is_applied(s, "x", "m1", &applied), DT_OK);
    assert_false(applied);
}

static void stale_epoch_commit_is_fenced_and_writes_nothing(void **state)
{
    store_fixture *f = *state;
    uint64_t ea = 0;
    uint64_t eb = 0;
    dt__store *a = open_claimed(f->path, &ea);
    dt__store *b = open_store(f->path, NULL);
    assert_int_equal(dt__store_claim(b, "worker-b", &eb), DT_OK);
    assert_int_equal(ea, 1);
    assert_int_equal(eb, 2);

    full_episode fe;
    full_episode_init(&fe);
    assert_int_equal(dt__store_commit(a, ea, &fe.e, 1), DT_EFENCED);
    assert_non_null(strstr(dt__store_errmsg(a), "fenced"));
    assert_non_null(strstr(dt__store_errmsg(a), "worker-b"));
    assert_full_episode_absent(b, f->arena);
    assert_int_equal(dt__store_commit(a, 0, &fe.e, 1), DT_EFENCED);
    assert_int_equal(dt__store_commit(a, eb + 1, &fe.e, 1), DT_EFENCED);
    assert_full_episode_absent(a, f->arena);

    assert_int_equal(dt__store_commit(b, eb, &fe.e, 1), DT_OK);
    assert_int_equal(history_len(a, "x", f->arena), 1);
    dt__store_close(a);
    dt__store_close(b);
}

static void stale_epoch_cannot_delete_or_purge(void **state)
{
    store_fixture *f = *state;
    uint64_t ea = 0;
    uint64_t eb = 0;
    dt__store *a = open_claimed(f->path, &ea);
    full_episode fe;
    full_episode_init(&fe);
    assert_int_equal(dt__store_commit(a, ea, &fe.e, 1), DT_OK);
    dt__store *b = open_store(f->path, NULL);
    assert_int_equal(dt__store_claim(b, "worker-b", &eb), DT_OK);

    dt__outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_outbox_list(a, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 1);
    dt__timer_row *due = NULL;
    assert_int_equal(dt__store_due_timers(a, 10, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dt__store_outbox_delete(a, ea, &rows[0].id, 1), DT_EFENCED);
    assert_int_equal(dt__store_timers_delete(a, ea, &due[0].id, 1), DT_EFENCED);
    assert_int_equal(dt__store_purge(a, ea, "x", 0), DT_EFENCED);
    assert_int_equal(outbox_len(b, f->arena), 1);
    assert_int_equal(history_len(b, "x", f->arena), 1);

    /* Ownership moves back: now b is the stale one, and a's handle works again. */
    assert_int_equal(dt__store_claim(a, "worker-a", &ea), DT_OK);
    assert_int_equal(ea, 3);
    assert_int_equal(dt__store_commit(b, eb, &fe.e, 1), DT_EFENCED);
    assert_int_equal(dt__store_outbox_delete(a, ea, &rows[0].id, 1), DT_OK);
    assert_int_equal(outbox_len(b, f->arena), 0);
    dt__store_close(a);
    dt__store_close(b);
}

/* A store with small limits (64-byte blobs, 3-event histories) where "c" applied m1. */
static dt__store *open_limited(store_fixture *f, uint64_t *epoch)
{
    dt__store_options o = {.max_blob_bytes = 64, .max_history_len = 3};
    dt__store *s = open_store(f->path, &o);
    assert_int_equal(dt__store_claim(s, "w", epoch), DT_OK);
    dt__instance_row c = instance_row("c", "O", 0, 1);
    const char *m1[] = {"m1"};
    dt__episode_commit seed = {.instance = &c, .applied_ids = m1, .n_applied = 1};
    assert_int_equal(dt__store_commit(s, *epoch, &seed, 1), DT_OK);
    return s;
}

/* Fails the test if anything of the a/b episodes of a rolled-back batch is visible. */
static void assert_batch_absent(dt__store *s, dt__arena *a)
{
    assert_no_instance(s, "a", a);
    assert_no_instance(s, "b", a);
    assert_int_equal(history_len(s, "c", a), 0);
    assert_int_equal(outbox_len(s, a), 0);
    int64_t next = 0;
    assert_int_equal(dt__store_next_timer_ms(s, &next), DT_ENOTFOUND);
}

static void constraint_violation_rolls_back_the_whole_batch(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_limited(f, &epoch);
    dt__instance_row a = instance_row("a", "O", 0, 1);
    dt__instance_row b = instance_row("b", "O", 0, 1);
    dt__instance_row c = instance_row("c", "O", 0, 1);
    dt__blob ev = blob_str("ev");
    dt__outbox_msg m = out_msg("s", "id", "p", NULL);
    dt__timer_new t = timer(1, "a/t", "p");
    const char *m1[] = {"m1"};
    dt__episode_commit eps[3] = {
        {.instance = &a,
         .new_events = &ev,
         .n_new_events = 1,
         .outbox = &m,
         .n_outbox = 1,
         .new_timers = &t,
         .n_new_timers = 1},
        {.instance = &b, .new_events = &ev, .n_new_events = 1},
        {.instance = &c,
         .new_events = &ev,
         .n_new_events = 1,
         .applied_ids = m1,
         .n_applied = 1}, /* duplicate identity, found inside the transaction */
    };
    assert_int_equal(dt__store_commit(s, epoch, eps, 3), DT_EEXIST);
    assert_batch_absent(s, f->arena);

    /* The handle is still usable and the batch, corrected, goes through. */
    eps[2].n_applied = 0;
    assert_int_equal(dt__store_commit(s, epoch, eps, 3), DT_OK);
    assert_int_equal(history_len(s, "a", f->arena), 1);
    assert_int_equal(history_len(s, "c", f->arena), 1);
    assert_int_equal(outbox_len(s, f->arena), 1);
    dt__store_close(s);
}

static void oversized_rows_roll_back_the_whole_batch(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_limited(f, &epoch);
    dt__instance_row a = instance_row("a", "O", 0, 1);
    dt__instance_row b = instance_row("b", "O", 0, 1);
    dt__instance_row c = instance_row("c", "O", 0, 1);
    char big[66];
    memset(big, 'b', 65);
    big[65] = '\0';
    dt__blob ev = blob_str("ev");
    dt__blob huge = blob_str(big);
    dt__blob four[] = {ev, ev, ev, ev};
    dt__episode_commit eps[3] = {
        {.instance = &a, .new_events = &ev, .n_new_events = 1},
        {.instance = &b, .new_events = &ev, .n_new_events = 1},
        {.instance = &c, .new_events = &huge, .n_new_events = 1}, /* found before the tx */
    };
    assert_int_equal(dt__store_commit(s, epoch, eps, 3), DT_ETOOLARGE);
    assert_non_null(strstr(dt__store_errmsg(s), "65 bytes"));
    assert_batch_absent(s, f->arena);
    eps[2].new_events = &ev;
    b.input = huge;
    assert_int_equal(dt__store_commit(s, epoch, eps, 3), DT_ETOOLARGE);
    assert_batch_absent(s, f->arena);
    b.input = (dt__blob){0};

    /* History over its bound, found inside the transaction after a and b were written. */
    eps[2] = (dt__episode_commit){.instance = &c, .new_events = four, .n_new_events = 4};
    assert_int_equal(dt__store_commit(s, epoch, eps, 3), DT_ETOOLARGE);
    assert_batch_absent(s, f->arena);
    eps[2].n_new_events = 3;
    assert_int_equal(dt__store_commit(s, epoch, eps, 3), DT_OK);
    assert_int_equal(history_len(s, "c", f->arena), 3);
    dt__store_close(s);
}

static void invalid_episodes_are_rejected(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row r = instance_row("a", "O", 0, 1);
    dt__episode_commit e = {.instance = &r};
    assert_int_equal(dt__store_commit(s, epoch, NULL, 0), DT_EINVAL);
    assert_int_equal(dt__store_commit(s, epoch, &e, 0), DT_EINVAL);
    r.instance_id = "";
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EINVAL);
    r.instance_id = "a";
    r.name = NULL;
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EINVAL);
    r.name = "O";
    r.runtime_status = 32;
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EINVAL);
    r.runtime_status = 0;
    e.n_new_events = 1; /* with a NULL array */
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EINVAL);
    dt__blob absent = {NULL, 0};
    e.new_events = &absent; /* an event must be present */
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EINVAL);
    e = (dt__episode_commit){.instance = NULL};
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_EINVAL);
    char long_id[DT__STORE_MAX_ID_LEN + 2];
    memset(long_id, 'i', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    r.instance_id = long_id;
    e.instance = &r;
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_ETOOLARGE);
    assert_no_instance(s, "a", f->arena);
    dt__store_close(s);
}

static void reads_fail_cleanly_when_memory_runs_out(void **state)
{
    store_fixture *f = *state;
    dt_test_alloc_install();
    long base = dt_test_alloc_outstanding();
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    static char big[20000];
    memset(big, 'z', sizeof(big) - 1);
    dt__instance_row row = instance_row("a", "O", 0, 1);
    row.input = blob_str(big);
    dt__blob ev[40];
    for (size_t i = 0; i < DT__ARRAY_LEN(ev); i++) {
        ev[i] = blob_str("small");
    }
    commit_simple(s, epoch, &row, ev, DT__ARRAY_LEN(ev));

    for (long k = 0; k < 4; k++) {
        dt__arena *a = dt__arena_create(0);
        assert_non_null(a);
        dt__instance_row got = {.name = "untouched"};
        dt__blob *events = NULL;
        size_t n = 7;
        dt_test_alloc_fail_after(k);
        dt_status st1 = dt__store_get_instance(s, "a", a, &got);
        dt_status st2 = dt__store_load_history(s, "a", a, &events, &n);
        dt_test_alloc_fail_after(-1);
        assert_true(st1 == DT_ENOMEM || st1 == DT_OK);
        assert_true(st2 == DT_ENOMEM || st2 == DT_OK);
        if (k == 0) {
            assert_int_equal(st1, DT_ENOMEM); /* the input needs a block of its own */
            assert_string_equal(got.name, "untouched");
        }
        if (st2 != DT_OK) {
            assert_int_equal(n, 7);
        }
        dt__arena_destroy(a);
    }
    dt__store_close(s);
    assert_int_equal(dt_test_alloc_outstanding(), base);
    dt_set_allocator(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(instance_row_round_trips),
        T(history_appends_and_resets),
        T(applied_ids_dedupe_and_prune),
        T(stale_epoch_commit_is_fenced_and_writes_nothing),
        T(stale_epoch_cannot_delete_or_purge),
        T(constraint_violation_rolls_back_the_whole_batch),
        T(oversized_rows_roll_back_the_whole_batch),
        T(invalid_episodes_are_rejected),
        T(reads_fail_cleanly_when_memory_runs_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
