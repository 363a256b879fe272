/*
 * The store as a view of the partition's log (store_log.c, dt__store_batch_begin/_end): a batch
 * held open until the caller's append succeeded commits with its log position or rolls back
 * leaving nothing; the batch's other writes (expired parked messages, dropped timers, a purge)
 * go in the same transaction; the same batches on two files give the same rows (ids included);
 * an online backup is one self-contained file with the same content.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_store_util.h"

static void log_pos(dt__store *s, uint64_t want_seq, int64_t want_origin)
{
    uint64_t seq = 99;
    int64_t origin = 99;
    assert_int_equal(dt__store_log_pos(s, &seq, &origin), DT_OK);
    assert_int_equal(seq, want_seq);
    assert_int_equal(origin, want_origin);
}

static void test_begin_end(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    log_pos(s, 0, 0);
    assert_int_equal(dt__store_log_origin_set(s, epoch, 1234), DT_OK);
    log_pos(s, 0, 1234);

    dt__instance_row row = instance_row("a", "orch", 1, 10);
    dt__blob ev[1] = {blob_str("e0")};
    dt__outbox_msg out[1] = {out_msg("s.1", "m1", "p", NULL)};
    dt__episode_commit e = {
        .instance = &row, .new_events = ev, .n_new_events = 1, .outbox = out, .n_outbox = 1};
    dt__store_batch b = {.eps = &e, .n = 1};
    assert_int_equal(dt__store_batch_begin(s, epoch, &b), DT_OK);
    /* No second batch while one is open. */
    assert_int_equal(dt__store_batch_begin(s, epoch, &b), DT_EINVAL);
    assert_int_equal(dt__store_batch_end(s, false, 0), DT_OK); /* the append failed */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM instances"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 0);
    log_pos(s, 0, 1234);
    assert_int_equal(dt__store_batch_end(s, true, 1), DT_EINVAL); /* none open */

    assert_int_equal(dt__store_batch_begin(s, epoch, &b), DT_OK);
    assert_int_equal(dt__store_batch_end(s, true, 7), DT_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM instances"), 1);
    log_pos(s, 7, 1234);
    /* The rolled-back insert did not use up an outbox id: ids follow the log, not attempts. */
    assert_int_equal(raw_int(f->path, "SELECT min(id) FROM outbox"), 1);

    /* A batch the store refuses (duplicate identity) is refused at begin: nothing open. */
    const char *ids[1] = {"m"};
    dt__episode_commit e2 = {.instance = &row, .applied_ids = ids, .n_applied = 1};
    dt__store_batch b2 = {.eps = &e2, .n = 1};
    assert_int_equal(dt__store_commit_batch(s, epoch, &b2), DT_OK);
    assert_int_equal(dt__store_batch_begin(s, epoch, &b2), DT_EEXIST);
    assert_int_equal(dt__store_batch_end(s, true, 9), DT_EINVAL);
    log_pos(s, 7, 1234);
    dt__store_close(s);
}

static void test_other_writes(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row done = instance_row("done", "orch", 1, 10);
    done.runtime_status = 1; /* COMPLETED */
    dt__timer_new t[2] = {timer(50, "t1", "x"), timer(60, "t2", "y")};
    dt__episode_commit e = {.instance = &done, .new_timers = t, .n_new_timers = 2};
    dt__parked_new p[1] = {{"later", "ev1", 5, blob_str("payload")}};
    dt__store_batch b = {.eps = &e, .n = 1, .parks = p, .n_parks = 1};
    assert_int_equal(dt__store_commit_batch(s, epoch, &b), DT_OK);
    int64_t timer_id = raw_int(f->path, "SELECT min(id) FROM timers");
    int64_t parked_id = raw_int(f->path, "SELECT id FROM parked");

    dt__store_batch drop = {.delete_timer_ids = &timer_id,
                            .n_delete_timers = 1,
                            .delete_parked_ids = &parked_id,
                            .n_delete_parked = 1};
    assert_int_equal(dt__store_commit_batch(s, epoch, &drop), DT_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM timers"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM parked"), 0);
    uint64_t np = 9;
    assert_int_equal(dt__store_parked_count(s, &np), DT_OK);
    assert_int_equal(np, 0);

    /* A purge whose status does not match fails the whole batch. */
    dt__store_batch purge = {.purge_instance_id = "done", .purge_status_mask = 1u << 2};
    assert_int_equal(dt__store_commit_batch(s, epoch, &purge), DT_ESTATE);
    purge.purge_instance_id = "nobody";
    assert_int_equal(dt__store_commit_batch(s, epoch, &purge), DT_ENOTFOUND);
    purge.purge_instance_id = "done";
    purge.purge_status_mask = 1u << 1;
    assert_int_equal(dt__store_commit_batch(s, epoch, &purge), DT_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM instances"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM timers"), 0);

    dt__store_batch empty = {0};
    assert_int_equal(dt__store_commit_batch(s, epoch, &empty), DT_EINVAL);
    dt__store_close(s);
}

static void test_replay_and_backup(void **state)
{
    store_fixture *f = *state;
    char path2[600], copy[600];
    snprintf(path2, sizeof(path2), "%s/p001.db", f->dir);
    snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
    uint64_t e1 = 0, e2 = 0;
    dt__store *a = open_claimed(f->path, &e1);
    dt__store *b = open_claimed(path2, &e2);
    for (int i = 0; i < 40; i++) {
        char id[16], mid[16], tid[16];
        snprintf(id, sizeof(id), "i%d", i % 7);
        snprintf(mid, sizeof(mid), "m%d", i);
        snprintf(tid, sizeof(tid), "t%d", i);
        dt__instance_row row = instance_row(id, "orch", 0, i);
        dt__blob ev[2] = {blob_str(mid), blob_str(tid)};
        dt__outbox_msg out[1] = {out_msg("s", mid, "p", NULL)};
        dt__timer_new t[1] = {timer(i, tid, "x")};
        const char *applied[1] = {mid};
        dt__episode_commit e = {.instance = &row,
                                .new_events = ev,
                                .n_new_events = 2,
                                .applied_ids = applied,
                                .n_applied = 1,
                                .outbox = out,
                                .n_outbox = 1,
                                .new_timers = t,
                                .n_new_timers = i % 3 == 0 ? 1 : 0};
        int64_t published = i;
        dt__store_batch batch = {.eps = &e, .n = 1, .published_ids = &published, .n_published = 1};
        assert_int_equal(dt__store_batch_begin(a, e1, &batch), DT_OK);
        assert_int_equal(dt__store_batch_end(a, true, (uint64_t)i + 1), DT_OK);
        assert_int_equal(dt__store_batch_begin(b, e2, &batch), DT_OK);
        assert_int_equal(dt__store_batch_end(b, true, (uint64_t)i + 1), DT_OK);
    }
    char *da = store_dump(f->path), *db = store_dump(path2);
    assert_string_equal(da, db);
    assert_int_equal(dt__store_backup(a, copy), DT_OK);
    assert_int_equal(dt__store_backup(a, copy), DT_EEXIST);
    dt__store_close(a);
    dt__store_close(b);
    char wal[700];
    snprintf(wal, sizeof(wal), "%s-wal", copy);
    assert_int_not_equal(access(wal, F_OK), 0); /* one self-contained file */
    char *dc = store_dump(copy);
    assert_string_equal(da, dc);
    dt__store *c = open_store(copy, NULL); /* a store opens it as any other */
    log_pos(c, 40, 0);
    dt__store_close(c);
    free(da);
    free(db);
    free(dc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_begin_end, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_other_writes, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_backup, store_setup, store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
