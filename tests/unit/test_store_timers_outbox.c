/*
 * Tests of the store's delivery tables: timers (due order, limits, deletion by episode, by id and
 * per instance, unique identities) and the outbox (publish order, paging, deletion by id).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_store_util.h"

/* Two instances' timers: a at 300, 100; b at 200, 100, 900 (in creation order). */
static dt__store *seed_timers(store_fixture *f, uint64_t *epoch, dt__instance_row *a,
                              dt__instance_row *b)
{
    dt__store *s = open_claimed(f->path, epoch);
    *a = instance_row("a", "O", 0, 1);
    *b = instance_row("b", "O", 0, 1);
    dt__timer_new ta[] = {timer(300, "a/t1", "pa1"), timer(100, "a/t2", "pa2")};
    dt__timer_new tb[] = {timer(200, "b/t1", "pb1"), timer(100, "b/t2", "pb2"),
                          timer(900, "b/t3", "pb3")};
    dt__episode_commit eps[] = {
        {.instance = a, .new_timers = ta, .n_new_timers = 2},
        {.instance = b, .new_timers = tb, .n_new_timers = 3},
    };
    assert_int_equal(dt__store_commit(s, *epoch, eps, 2), DT_OK);
    return s;
}

static void timers_come_due_in_order(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    int64_t next = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    assert_int_equal(dt__store_next_timer_ms(s, &next), DT_ENOTFOUND);
    dt__store_close(s);
    dt__instance_row a, b;
    s = seed_timers(f, &epoch, &a, &b);
    assert_int_equal(dt__store_next_timer_ms(s, &next), DT_OK);
    assert_int_equal(next, 100);

    dt__timer_row *due = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_due_timers(s, 300, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 4);
    const char *order[] = {"a/t2", "b/t2", "b/t1", "a/t1"}; /* by time, ties by creation */
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(due[i].dedupe_id, order[i]);
    }
    assert_string_equal(due[0].instance_id, "a");
    assert_blob_equal(due[0].payload, "pa2");
    assert_int_equal(due[2].fire_at_ms, 200);
    assert_int_equal(dt__store_due_timers(s, 150, 1, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].dedupe_id, "a/t2");
    assert_int_equal(dt__store_due_timers(s, 99, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 0);
    assert_null(due);
    assert_int_equal(dt__store_due_timers(s, 99, 0, f->arena, &due, &n), DT_EINVAL);
    dt__store_close(s);
}

static void timers_are_deleted_by_episode_or_id(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__instance_row a, b;
    dt__store *s = seed_timers(f, &epoch, &a, &b);
    dt__timer_row *due = NULL;
    size_t n = 0;
    /* An episode deletes its own fired timer; an id of another instance is not touched. */
    assert_int_equal(dt__store_due_timers(s, 1000, 10, f->arena, &due, &n), DT_OK);
    int64_t del[] = {due[0].id /* a/t2 */, due[1].id /* b/t2: not a's */};
    dt__episode_commit fire = {.instance = &a, .delete_timer_ids = del, .n_delete_timers = 2};
    assert_int_equal(dt__store_commit(s, epoch, &fire, 1), DT_OK);
    assert_int_equal(dt__store_due_timers(s, 1000, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 4);
    assert_string_equal(due[0].dedupe_id, "b/t2");

    /* A duplicate timer identity fails the commit. */
    dt__timer_new dupt = timer(5, "b/t3", "again");
    dt__episode_commit dup = {.instance = &a, .new_timers = &dupt, .n_new_timers = 1};
    assert_int_equal(dt__store_commit(s, epoch, &dup, 1), DT_EEXIST);

    /* b completes: all its timers go; a's last one is deleted by id outside an episode. */
    dt__episode_commit drop = {.instance = &b, .delete_all_timers = true};
    assert_int_equal(dt__store_commit(s, epoch, &drop, 1), DT_OK);
    assert_int_equal(dt__store_due_timers(s, 1000, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].dedupe_id, "a/t1");
    assert_int_equal(dt__store_timers_delete(s, epoch, &due[0].id, 1), DT_OK);
    int64_t next = 0;
    assert_int_equal(dt__store_next_timer_ms(s, &next), DT_ENOTFOUND);
    dt__store_close(s);
}

static void outbox_keeps_order_and_deletes(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row a = instance_row("a", "O", 0, 1);
    dt__instance_row b = instance_row("b", "O", 0, 1);
    dt__outbox_msg oa[] = {out_msg("dt.h.act.q", "a/1", "p1", NULL),
                           out_msg("dt.h.act.q", "a/2", "p2", "H: v")};
    dt__outbox_msg ob[] = {out_msg("dt.h.orch.3", "b/1", "p3", NULL)};
    dt__episode_commit eps[] = {
        {.instance = &a, .outbox = oa, .n_outbox = 2},
        {.instance = &b, .outbox = ob, .n_outbox = 1},
    };
    assert_int_equal(dt__store_commit(s, epoch, eps, 2), DT_OK);
    dt__outbox_msg oc = out_msg("dt.h.orch.1", "a/3", "p4", NULL);
    dt__episode_commit later = {.instance = &a, .outbox = &oc, .n_outbox = 1};
    assert_int_equal(dt__store_commit(s, epoch, &later, 1), DT_OK);

    dt__outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_outbox_list(s, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 4);
    const char *ids[] = {"a/1", "a/2", "b/1", "a/3"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(rows[i].msg.msg_id, ids[i]);
        if (i > 0) {
            assert_true(rows[i].id > rows[i - 1].id);
        }
    }
    assert_string_equal(rows[2].msg.subject, "dt.h.orch.3");
    assert_blob_equal(rows[1].msg.payload, "p2");
    assert_blob_equal(rows[1].msg.headers, "H: v");
    assert_null(rows[0].msg.headers.data);

    dt__outbox_row *page = NULL;
    assert_int_equal(dt__store_outbox_list(s, rows[1].id, 1, f->arena, &page, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(page[0].msg.msg_id, "b/1");

    int64_t del[] = {rows[0].id, rows[2].id, 424242};
    assert_int_equal(dt__store_outbox_delete(s, epoch, del, 3), DT_OK);
    assert_int_equal(dt__store_outbox_list(s, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].msg.msg_id, "a/2");
    assert_string_equal(rows[1].msg.msg_id, "a/3");
    assert_int_equal(dt__store_outbox_delete(s, epoch, NULL, 0), DT_OK);
    dt__store_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(timers_come_due_in_order),
        T(timers_are_deleted_by_episode_or_id),
        T(outbox_keeps_order_and_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
