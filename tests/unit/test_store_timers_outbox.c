/*
 * Tests of the store's delivery tables: timers (due order, limits, deletion by episode, by id and
 * per instance, unique identities) and the outbox (publish order, paging, deletion by id, the
 * ids a commit returns, deletion of published rows inside the next commit).
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

/* Seeds three outbox rows (ids returned by the commit itself) for instance a. */
static dt__store *seed_outbox(store_fixture *f, uint64_t *epoch, dt__instance_row *a,
                              int64_t ids[3])
{
    dt__store *s = open_claimed(f->path, epoch);
    *a = instance_row("a", "O", 0, 1);
    dt__outbox_msg m[] = {out_msg("dt.h.act.q", "a/1", "p1", NULL),
                          out_msg("dt.h.act.q", "a/2", "p2", NULL),
                          out_msg("dt.h.orch.1", "a/3", "p3", "H")};
    ids[0] = ids[1] = ids[2] = -1;
    dt__episode_commit e = {.instance = a, .outbox = m, .n_outbox = 3, .outbox_ids = ids};
    assert_int_equal(dt__store_commit(s, *epoch, &e, 1), DT_OK);
    return s;
}

static void commit_returns_outbox_ids(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__instance_row a;
    int64_t ids[3];
    dt__store *s = seed_outbox(f, &epoch, &a, ids);
    dt__outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_outbox_list(s, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].id, ids[i]); /* the ids the rows really have, in order */
    }
    assert_string_equal(rows[2].msg.msg_id, "a/3");
    dt__store_close(s);
}

/* Published rows go in the next batch's transaction: one write transaction, not two. */
static void commit_deletes_published_rows(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__instance_row a;
    int64_t ids[3];
    dt__store *s = seed_outbox(f, &epoch, &a, ids);
    dt__outbox_msg m = out_msg("dt.h.act.q", "a/4", "p4", NULL);
    int64_t new_id = -1;
    const char *applied[] = {"m1"};
    dt__episode_commit e = {.instance = &a,
                            .applied_ids = applied,
                            .n_applied = 1,
                            .outbox = &m,
                            .n_outbox = 1,
                            .outbox_ids = &new_id};
    int64_t published[] = {ids[0], ids[2], 424242 /* unknown: ignored */};
    dt__store_stats before, after;
    dt__store_get_stats(s, &before);
    assert_int_equal(dt__store_commit_settled(s, epoch, &e, 1, published, 3), DT_OK);
    dt__store_get_stats(s, &after);
    assert_int_equal(after.write_txns - before.write_txns, 1);

    dt__outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_outbox_list(s, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, ids[1]);
    assert_int_equal(rows[1].id, new_id);
    assert_string_equal(rows[1].msg.msg_id, "a/4");
    assert_true(new_id > ids[2]); /* publish order continues */
    assert_int_equal(dt__store_commit_settled(s, epoch, &e, 1, NULL, 1), DT_EINVAL);
    dt__store_close(s);
}

/* A batch that fails (or is fenced) deletes nothing: the rows stay to be published again. */
static void failed_commit_keeps_published_rows(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__instance_row a;
    int64_t ids[3];
    dt__store *s = seed_outbox(f, &epoch, &a, ids);
    const char *applied[] = {"m1"};
    dt__episode_commit e = {.instance = &a, .applied_ids = applied, .n_applied = 1};
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_OK);
    /* The same identity again: DT_EEXIST after the deletes ran; all rolled back. */
    assert_int_equal(dt__store_commit_settled(s, epoch, &e, 1, ids, 3), DT_EEXIST);
    assert_int_equal(outbox_len(s, f->arena), 3);

    uint64_t e2 = 0;
    dt__store *other = open_claimed(f->path, &e2);
    const char *fresh[] = {"m2"};
    dt__episode_commit e_ok = {.instance = &a, .applied_ids = fresh, .n_applied = 1};
    assert_int_equal(dt__store_commit_settled(s, epoch, &e_ok, 1, ids, 3), DT_EFENCED);
    assert_int_equal(outbox_len(other, f->arena), 3);
    assert_int_equal(dt__store_commit_settled(other, e2, &e_ok, 1, ids, 2), DT_OK);
    assert_int_equal(outbox_len(other, f->arena), 1);
    dt__store_close(other);
    dt__store_close(s);
}

/* Statements a dt__store_outbox_delete of ids ran. */
static uint64_t delete_steps(dt__store *s, uint64_t epoch, const int64_t *ids, size_t n)
{
    dt__store_stats before, after;
    dt__store_get_stats(s, &before);
    assert_int_equal(dt__store_outbox_delete(s, epoch, ids, n), DT_OK);
    dt__store_get_stats(s, &after);
    return after.steps - before.steps;
}

/* Consecutive ids go in one DELETE per run, and a run deletes exactly its own ids. */
static void outbox_deletes_by_runs(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__instance_row a;
    int64_t ids[3];
    dt__store *s = seed_outbox(f, &epoch, &a, ids);
    dt__outbox_msg m[5];
    int64_t more[5];
    for (int i = 0; i < 5; i++) {
        static const char *msg_ids[] = {"b/1", "b/2", "b/3", "b/4", "b/5"};
        m[i] = out_msg("dt.h.act.q", msg_ids[i], "p", NULL);
    }
    dt__episode_commit e = {.instance = &a, .outbox = m, .n_outbox = 5, .outbox_ids = more};
    assert_int_equal(dt__store_commit(s, epoch, &e, 1), DT_OK);
    for (int i = 1; i < 5; i++) {
        assert_int_equal(more[i], more[i - 1] + 1); /* one transaction: consecutive ids */
    }
    uint64_t one = delete_steps(s, epoch, &ids[0], 1);
    assert_int_equal(delete_steps(s, epoch, &ids[1], 2), one); /* a run of two: one DELETE */
    /* more[0..1] and more[3]: two runs, more[2] and more[4] stay. */
    int64_t gaps[] = {more[0], more[1], more[3]};
    assert_int_equal(delete_steps(s, epoch, gaps, 3), one + 1);
    dt__outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_outbox_list(s, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, more[2]);
    assert_int_equal(rows[1].id, more[4]);
    dt__store_close(s);
}

/* The floor: read once, lowered by this handle's inserts (kept low by deletes and rollbacks: a
 * lower bound stays one), read again after a due query that came back short. */
static void timer_floor_is_a_lower_bound_without_queries(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    int64_t bound = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_true(bound == INT64_MAX); /* no timers */
    dt__instance_row a = instance_row("a", "O", 0, 1);
    dt__timer_new t1 = timer(500, "a/t1", "p1");
    dt__episode_commit c1 = {.instance = &a, .new_timers = &t1, .n_new_timers = 1};
    assert_int_equal(dt__store_commit(s, epoch, &c1, 1), DT_OK);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_int_equal(bound, 500);

    /* A batch that fails after inserting an earlier timer: the floor stays at or below it. */
    dt__timer_new t2[] = {timer(50, "a/t2", "p2"), timer(60, "a/t1", "dup")};
    dt__episode_commit c2 = {.instance = &a, .new_timers = t2, .n_new_timers = 2};
    assert_int_equal(dt__store_commit(s, epoch, &c2, 1), DT_EEXIST);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_true(bound <= 500);

    /* A due query that finds fewer than its limit: the floor is read from the table again. */
    dt__timer_row *due = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_due_timers(s, bound, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_int_equal(bound, 500);

    /* Fired and deleted: the floor stays (a bound) until a short due query, then none. */
    assert_int_equal(dt__store_due_timers(s, 500, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_int_equal(bound, 500); /* read again: the fired timer is still there */
    assert_int_equal(dt__store_timers_delete(s, epoch, &due[0].id, 1), DT_OK);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_int_equal(bound, 500); /* no query: still a lower bound */
    assert_int_equal(dt__store_due_timers(s, 500, 10, f->arena, &due, &n), DT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dt__store_timer_floor_ms(s, &bound), DT_OK);
    assert_true(bound == INT64_MAX);
    dt__store_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(timers_come_due_in_order),       T(timers_are_deleted_by_episode_or_id),
        T(outbox_keeps_order_and_deletes), T(commit_returns_outbox_ids),
        T(commit_deletes_published_rows),  T(failed_commit_keeps_published_rows),
        T(outbox_deletes_by_runs),         T(timer_floor_is_a_lower_bound_without_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
