/*
 * The partition log (runtime/journal) against the real nats-server and real SQLite files: a store
 * rebuilt by another owner in another directory from the log alone, or from a snapshot and the
 * log's tail after the log below it was purged, equals the owner's file row by row (ids
 * included); entries larger than a message travel in parts, and an entry left half-written by a
 * dead owner is never applied; a new owner's claim fences the old one (its append fails and
 * nothing of it shows); a current file is kept, files of another hub or ahead of the log are
 * replaced, and a file from before the log is adopted as its start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal/journal_int.h"
#include "test_broker.h"
#include "test_store_util.h"

typedef struct fixture {
    dt_broker *b;
    char hub[64];
    dt_broker_hub_config cfg;
    char *dir;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = tb_connect();
    tb_hub(f->b, "jrn", NULL, f->hub, sizeof(f->hub));
    TB_EXPECT(dt_broker_hub_get(f->b, f->hub, &f->cfg), DT_OK, dt_broker_errmsg(f->b));
    f->dir = dt_test_mkdtemp("dt-journal");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tb_hub_delete(f->b, f->hub);
    dt_broker_close(f->b);
    dt_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* An owner: a journal and its store file <dir>/<name>.db. */
typedef struct owner {
    dt__journal *j;
    dt__store *s;
    uint64_t epoch;
    char path[600];
} owner;

static dt__journal *journal(fixture *f, const char *who, size_t max_msg, uint64_t snap_entries)
{
    dt__journal_config c = {.broker = f->b,
                            .hub = f->hub,
                            .partition = 0,
                            .owner = who,
                            .origin = f->cfg.created_at_ms,
                            .max_msg = max_msg,
                            .snapshot_entries = snap_entries};
    dt__journal *j = NULL;
    assert_int_equal(dt__journal_create(&c, &j), DT_OK);
    return j;
}

static void path_of(fixture *f, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.db", f->dir, name);
}

static void take_over(fixture *f, owner *o, const char *who, const char *file, size_t max_msg,
                      uint64_t snap_entries)
{
    o->j = journal(f, who, max_msg, snap_entries);
    path_of(f, file, o->path, sizeof(o->path));
    char err[512] = "";
    dt_status st = dt__journal_open(o->j, o->path, NULL, &o->s, &o->epoch, err, sizeof(err));
    if (st != DT_OK) {
        fail_msg("journal open %s: %s: %s", o->path, dt_status_name(st), err);
    }
}

static void release(owner *o)
{
    dt__store_close(o->s);
    dt__journal_destroy(o->j);
    *o = (owner){0};
}

static void commit(owner *o, const dt__store_batch *b)
{
    dt_status st = dt__journal_commit(o->j, o->s, o->epoch, b);
    if (st != DT_OK) {
        fail_msg("journal commit: %s: %s", dt_status_name(st), dt__store_errmsg(o->s));
    }
}

/* Batch k of a workload touching every kind of row: instances over several batches, history,
 * applied ids, timers (some deleted later), outbox rows (deleted as "published"), parked
 * messages (some consumed, some expired), a purge, and now and then a large payload. */
static void workload_batch(owner *o, int k, size_t big)
{
    char id[32], mid[32], tid[32], pid[32];
    snprintf(id, sizeof(id), "inst-%d", k % 9);
    snprintf(mid, sizeof(mid), "msg-%d", k);
    snprintf(tid, sizeof(tid), "timer-%d", k);
    snprintf(pid, sizeof(pid), "park-%d", k);
    char *payload = calloc(1, big + 1);
    memset(payload, 'a' + k % 26, big);
    dt__instance_row row = instance_row(id, "orch", k % 4, 1000 + k);
    row.input = blob_str(k % 5 == 0 ? payload : "in");
    row.output = k % 3 == 0 ? blob_str("") : (dt__blob){NULL, 0}; /* empty, not absent */
    row.version = k % 2 == 0 ? "v1" : NULL;
    dt__instance_row stored = {0};
    dt__arena *a = dt__arena_create(0);
    bool exists = dt__store_get_instance(o->s, id, a, &stored) == DT_OK;
    dt__blob ev[2] = {blob_str(mid), blob_str(k % 7 == 0 ? payload : tid)};
    dt__timer_new t[1] = {timer(5000 + k, tid, "fire")};
    dt__outbox_msg out[1] = {out_msg("dt.x.act.q", mid, "work", k % 2 ? "hdr" : NULL)};
    const char *applied[1] = {mid};
    dt__episode_commit e = {.instance = &row,
                            .base_known = true,
                            .base_history_len = exists ? stored.history_len : 0,
                            .new_events = ev,
                            .n_new_events = 2,
                            .applied_ids = applied,
                            .n_applied = 1,
                            .new_timers = t,
                            .n_new_timers = 1,
                            .outbox = out,
                            .n_outbox = 1};
    dt__parked_new park[1] = {{"later", pid, 10 + k, blob_str("ev")}};
    int64_t published[2] = {k, k - 1}; /* outbox rows of earlier batches */
    dt__store_batch b = {.eps = &e,
                         .n = 1,
                         .published_ids = published,
                         .n_published = k > 1 ? 2 : 0,
                         .parks = park,
                         .n_parks = k % 4 == 0 ? 1 : 0};
    commit(o, &b);
    if (k % 10 == 9) { /* an idle partition's own deletes */
        int64_t timer_id = k / 2, parked_id = 1;
        dt__store_batch del = {.delete_timer_ids = &timer_id,
                               .n_delete_timers = 1,
                               .delete_parked_ids = &parked_id,
                               .n_delete_parked = 1};
        commit(o, &del);
    }
    dt__arena_destroy(a);
    free(payload);
}

static void assert_same_files(const char *a, const char *b)
{
    char *da = store_dump(a), *db = store_dump(b);
    if (strcmp(da, db) != 0) {
        fail_msg("the files differ:\n%s\n---\n%s", da, db);
    }
    free(da);
    free(db);
}

/* A new owner in a fresh directory rebuilds exactly prev's file. */
static void assert_next_owner_sees(fixture *f, const owner *prev)
{
    owner c;
    take_over(f, &c, "wc", "c", 64 * 1024, 1000000);
    assert_same_files(prev->path, c.path);
    release(&c);
}

static void test_rebuild_equals_owner(void **state)
{
    fixture *f = *state;
    owner a, b;
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    for (int k = 0; k < 60; k++) {
        workload_batch(&a, k, k % 7 == 0 ? 200 * 1024 : 10); /* 200 KB: entries in parts */
    }
    dt__store_batch purge = {.purge_instance_id = "inst-3", .purge_status_mask = 0};
    commit(&a, &purge);
    /* Another owner in another directory: from the log alone. */
    take_over(f, &b, "wb", "b", 64 * 1024, 1000000);
    dt__journal_stats sb;
    dt__journal_get_stats(b.j, &sb);
    assert_false(sb.kept_file);
    assert_int_equal(sb.restored_seq, 0);
    assert_true(sb.applied >= 61);
    assert_same_files(a.path, b.path);
    /* b's claim fenced a: its next commit fails and writes nothing anywhere. */
    dt__journal_stats before;
    dt__journal_get_stats(b.j, &before);
    int64_t one = 1;
    dt__store_batch late = {.delete_timer_ids = &one, .n_delete_timers = 1};
    int64_t timers = raw_int(a.path, "SELECT count(*) FROM timers");
    assert_int_equal(dt__journal_commit(a.j, a.s, a.epoch, &late), DT_EFENCED);
    assert_int_equal(raw_int(a.path, "SELECT count(*) FROM timers"), timers);
    uint64_t applied = 0;
    assert_int_equal(dt__journal_catch_up(a.j, a.s, a.epoch, &applied), DT_EFENCED);
    /* b goes on; a third owner sees b's rows, and no trace of a's refused write. */
    workload_batch(&b, 60, 10);
    assert_next_owner_sees(f, &b);
    release(&a);
    release(&b);
}

static void test_snapshot_and_purged_log(void **state)
{
    fixture *f = *state;
    owner a, b;
    take_over(f, &a, "wa", "a", 64 * 1024, 25); /* a snapshot every 25 entries */
    for (int k = 0; k < 70; k++) {
        workload_batch(&a, k, 10);
        assert_int_equal(dt__journal_snapshot(a.j, a.s, false), DT_OK);
    }
    dt__journal_stats sa;
    dt__journal_get_stats(a.j, &sa);
    assert_true(sa.snapshots >= 2);
    /* The log below the newest snapshot is gone: the first entry left is recent. */
    char stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_LOG, stream, sizeof(stream));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_LOG, "0", subject, sizeof(subject));
    dt_broker_msg *m = NULL;
    TB_EXPECT(dt_broker_stream_get(f->b, stream, subject, DT_BROKER_GET_NEXT, 1, &m), DT_OK,
              dt_broker_errmsg(f->b));
    uint64_t first = dt_broker_msg_stored_seq(m);
    dt_broker_msg_destroy(m);
    assert_true(first > sa.last_seq / 2);

    take_over(f, &b, "wb", "b", 64 * 1024, 25);
    dt__journal_stats sb;
    dt__journal_get_stats(b.j, &sb);
    assert_true(sb.restored_seq > 0);
    assert_true(sb.applied < 40); /* the tail only */
    assert_same_files(a.path, b.path);
    release(&a);
    release(&b);
}

/* A dead owner's half-appended entry (one part of two) is skipped by every reader. */
static void test_abandoned_parts(void **state)
{
    fixture *f = *state;
    owner a, b;
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    workload_batch(&a, 0, 10);
    dt__journal_stats sa;
    dt__journal_get_stats(a.j, &sa);
    char subject[DT_BROKER_NAME_BUF];
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_LOG, "0", subject, sizeof(subject));
    char prev[32];
    snprintf(prev, sizeof(prev), "%llu", (unsigned long long)sa.last_seq);
    dt_broker_header h[3] = {{"Dt-Owner", "dead/1"}, {"Dt-Prev", prev}, {"Dt-Part", "1/2"}};
    dt_broker_outmsg part = {.subject = subject,
                             .headers = h,
                             .nheaders = 3,
                             .data = "\x0a\x02",
                             .len = 2,
                             .expect_last_subject_seq = sa.last_seq};
    TB_EXPECT(dt_broker_publish(f->b, &part, NULL), DT_OK, dt_broker_errmsg(f->b));
    take_over(f, &b, "wb", "b", 64 * 1024, 1000000);
    assert_same_files(a.path, b.path);
    workload_batch(&b, 1, 10); /* appends after the abandoned part */
    assert_next_owner_sees(f, &b);
    release(&a);
    release(&b);
}

static void test_which_files_are_kept(void **state)
{
    fixture *f = *state;
    owner a;
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    workload_batch(&a, 0, 10);
    workload_batch(&a, 1, 10);
    char *before = store_dump(a.path);
    release(&a);
    /* The same worker restarts on its current file: nothing to rebuild. */
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    dt__journal_stats s;
    dt__journal_get_stats(a.j, &s);
    assert_true(s.kept_file);
    assert_int_equal(s.applied, 0);
    release(&a);

    /* A file of another hub that had the same name: replaced by this log's state. */
    char path[600];
    path_of(f, "a", path, sizeof(path));
    raw_exec(path, "UPDATE partition SET log_origin = 42");
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    dt__journal_get_stats(a.j, &s);
    assert_false(s.kept_file);
    char *after = store_dump(a.path);
    assert_string_equal(before, after);
    free(after);
    release(&a);

    /* A file ahead of the log (it saw entries the log does not have, e.g. a stream made again):
     * possibly the only copy of that state, so it is refused, not replaced, and left alone. */
    raw_exec(path, "UPDATE partition SET log_seq = log_seq + 1000");
    int64_t ahead = raw_int(path, "SELECT log_seq FROM partition");
    dt__journal *j = journal(f, "wa", 64 * 1024, 1000000);
    dt__store *st = NULL;
    uint64_t epoch = 0;
    char err[600] = "";
    assert_int_equal(dt__journal_open(j, path, NULL, &st, &epoch, err, sizeof(err)), DT_EVERSION);
    assert_non_null(strstr(err, "past the log's end"));
    assert_int_equal(raw_int(path, "SELECT log_seq FROM partition"), ahead);
    dt__journal_destroy(j);
    free(before);
}

/* A stale owner cannot put an old snapshot in front of a newer one (whose purge removed the log
 * between them): its record is refused and it purges nothing. */
static void test_stale_snapshot_refused(void **state)
{
    fixture *f = *state;
    owner a, b;
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    for (int k = 0; k < 10; k++) {
        workload_batch(&a, k, 10);
    }
    take_over(f, &b, "wb", "b", 64 * 1024, 1000000);
    for (int k = 10; k < 20; k++) {
        workload_batch(&b, k, 10);
    }
    assert_int_equal(dt__journal_snapshot(b.j, b.s, true), DT_OK);
    assert_int_equal(dt__journal_snapshot(a.j, a.s, true), DT_ECONFLICT);
    assert_next_owner_sees(f, &b);
    release(&a);
    release(&b);
}

/* Claims of earlier owners do not make an owner's catch-up think it was fenced. */
static void test_catch_up_after_takeovers(void **state)
{
    fixture *f = *state;
    owner a, b, c;
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    workload_batch(&a, 0, 10);
    take_over(f, &b, "wb", "b", 64 * 1024, 1000000);
    release(&b);
    take_over(f, &c, "wc", "c", 64 * 1024, 1000000);
    uint64_t applied = 99;
    assert_int_equal(dt__journal_catch_up(c.j, c.s, c.epoch, &applied), DT_OK);
    assert_int_equal(applied, 0);
    workload_batch(&c, 1, 10);
    release(&a);
    release(&c);
}

/* A hole in the log (messages purged without a snapshot that holds them) is found, never
 * stepped over: the rebuild fails instead of producing a partial view. */
static void test_gap_is_detected(void **state)
{
    fixture *f = *state;
    owner a;
    take_over(f, &a, "wa", "a", 64 * 1024, 1000000);
    for (int k = 0; k < 6; k++) {
        workload_batch(&a, k, 10);
    }
    dt__journal_stats sa;
    dt__journal_get_stats(a.j, &sa);
    char stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_LOG, stream, sizeof(stream));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_LOG, "0", subject, sizeof(subject));
    TB_EXPECT(dt_broker_stream_purge(f->b, stream, subject, sa.last_seq - 2), DT_OK,
              dt_broker_errmsg(f->b));
    dt__journal *j = journal(f, "wb", 64 * 1024, 1000000);
    dt__store *st = NULL;
    uint64_t epoch = 0;
    char err[600] = "", path[600];
    path_of(f, "b", path, sizeof(path));
    assert_int_not_equal(dt__journal_open(j, path, NULL, &st, &epoch, err, sizeof(err)), DT_OK);
    assert_non_null(strstr(err, "purged"));
    dt__journal_destroy(j);
    release(&a);
}

/* A store written before its hub had a log becomes the log's start (snapshotted), so a worker
 * on another host restores it. */
static void test_adopt_file_from_before_the_log(void **state)
{
    fixture *f = *state;
    char old[600];
    path_of(f, "old", old, sizeof(old));
    uint64_t epoch = 0;
    dt__store *s = open_claimed(old, &epoch);
    dt__instance_row row = instance_row("legacy", "orch", 0, 5);
    dt__blob ev[1] = {blob_str("started")};
    commit_simple(s, epoch, &row, ev, 1);
    dt__store_close(s);
    owner a, b;
    take_over(f, &a, "wa", "old", 64 * 1024, 1000000);
    dt__journal_stats sa;
    dt__journal_get_stats(a.j, &sa);
    assert_int_equal(sa.snapshots, 1);
    assert_int_equal(raw_int(a.path, "SELECT count(*) FROM instances"), 1);
    take_over(f, &b, "wb", "b", 64 * 1024, 1000000);
    assert_same_files(a.path, b.path);
    release(&a);
    release(&b);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rebuild_equals_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_purged_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_which_files_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_file_from_before_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_snapshot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_after_takeovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_is_detected, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
