/*
 * The store's parked messages (store_parked.c): events kept until their instance's start
 * arrives. Parking is idempotent per (instance, identity), commits with the batch (also without
 * any episode), is consumed by the episode that applies it, and lists by instance and by age;
 * the handle's row count stays right across its own commits, failed commits and other writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_store_util.h"

static dt__parked_new parked(const char *instance, const char *dedupe, int64_t at,
                             const char *payload)
{
    return (dt__parked_new){instance, dedupe, at, blob_str(payload)};
}

static void park(dt__store *s, uint64_t epoch, const dt__parked_new *p, size_t n)
{
    dt__store_batch b = {.parks = p, .n_parks = n};
    dt_status st = dt__store_commit_batch(s, epoch, &b);
    if (st != DT_OK) {
        fail_msg("park: %s: %s", dt_status_name(st), dt__store_errmsg(s));
    }
}

static uint64_t count(dt__store *s)
{
    uint64_t n = 999;
    assert_int_equal(dt__store_parked_count(s, &n), DT_OK);
    return n;
}

static void test_park_list_and_repeat(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    assert_int_equal(count(s), 0);
    dt__parked_new p[3] = {parked("a", "m1", 100, "one"), parked("b", "m2", 200, "two"),
                           parked("a", "m3", 300, "three")};
    park(s, epoch, p, 3);
    assert_int_equal(count(s), 3);
    park(s, epoch, p, 1); /* a redelivery of m1: ignored */
    assert_int_equal(count(s), 3);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM parked"), 3);

    dt__parked_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_parked_of(s, "a", 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].dedupe_id, "m1"); /* arrival order */
    assert_string_equal(rows[1].dedupe_id, "m3");
    assert_blob_equal(rows[1].payload, "three");
    assert_int_equal(rows[0].parked_ms, 100);
    assert_true(rows[0].id < rows[1].id);

    assert_int_equal(dt__store_parked_older(s, 250, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 2); /* m1 (100) and m2 (200), oldest first */
    assert_string_equal(rows[0].dedupe_id, "m1");
    assert_string_equal(rows[1].dedupe_id, "m2");
    assert_int_equal(dt__store_parked_older(s, 250, 1, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 1);

    int64_t ids[2] = {rows[0].id, 987654};
    assert_int_equal(dt__store_parked_delete(s, epoch, ids, 2), DT_OK);
    assert_int_equal(count(s), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM parked"), 2);
    dt__store_close(s);
}

/* An episode consumes parked messages in its own commit, with the rest of its batch. */
static void test_episode_consumes_parked(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__parked_new p[2] = {parked("x", "e1", 10, "ev1"), parked("y", "e2", 10, "ev2")};
    park(s, epoch, p, 2);
    dt__parked_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_parked_of(s, "x", 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 1);
    dt__instance_row row = instance_row("x", "orch", 1, 0);
    dt__blob ev = blob_str("started");
    const char *applied[] = {"e1"};
    dt__episode_commit e = {.instance = &row,
                            .new_events = &ev,
                            .n_new_events = 1,
                            .applied_ids = applied,
                            .n_applied = 1,
                            .delete_parked_ids = &rows[0].id,
                            .n_delete_parked = 1};
    dt__parked_new more = parked("z", "e3", 20, "ev3");
    dt__store_batch b = {.eps = &e, .n = 1, .parks = &more, .n_parks = 1};
    assert_int_equal(dt__store_commit_batch(s, epoch, &b), DT_OK);
    assert_int_equal(count(s), 2); /* y and z */
    assert_int_equal(dt__store_parked_of(s, "x", 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM applied WHERE dedupe_id = 'e1'"), 1);
    dt__store_close(s);
}

/* A batch that fails leaves no parked row behind, and the count is read again. */
static void test_failed_batch_parks_nothing(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__parked_new p = parked("a", "m1", 1, "x");
    dt__store_batch b = {.parks = &p, .n_parks = 1};
    assert_int_equal(dt__store_commit_batch(s, epoch + 1, &b), DT_EFENCED);
    assert_int_equal(count(s), 0);
    /* An invalid park (no identity) fails validation before anything is written. */
    dt__parked_new bad[2] = {parked("a", "m1", 1, "x"), parked("a", NULL, 1, "y")};
    b = (dt__store_batch){.parks = bad, .n_parks = 2};
    assert_int_equal(dt__store_commit_batch(s, epoch, &b), DT_EINVAL);
    b = (dt__store_batch){0};
    assert_int_equal(dt__store_commit_batch(s, epoch, &b), DT_EINVAL); /* nothing to commit */
    assert_int_equal(count(s), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM parked"), 0);
    dt__store_close(s);
}

/* Another handle's claim (a new owner) makes the count be read from the file again. */
static void test_count_after_other_writer(void **state)
{
    store_fixture *f = *state;
    uint64_t e1 = 0, e2 = 0;
    dt__store *s1 = open_claimed(f->path, &e1);
    assert_int_equal(count(s1), 0);
    dt__store *s2 = open_claimed(f->path, &e2);
    dt__parked_new p = parked("a", "m1", 1, "x");
    park(s2, e2, &p, 1);
    dt__store_close(s2);
    uint64_t e3 = 0;
    assert_int_equal(dt__store_claim(s1, "again", &e3), DT_OK);
    assert_int_equal(count(s1), 1);
    dt__parked_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_parked_of(s1, "a", 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 1);
    dt__store_close(s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_park_list_and_repeat, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_episode_consumes_parked, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_parks_nothing, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_count_after_other_writer, store_setup, store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
