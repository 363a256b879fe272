/*
 * Tests of what the store does per episode on the hot path: a history length the writer knows is
 * used instead of read (and verified by the row's write, with a fallback when it does not hold),
 * an episode of the same execution rewrites only the columns it changes, and message identities
 * that were never applied are recognised without a statement. Statement counts
 * come from dt__store_stats, i.e. real sqlite3_step calls on a real file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_store_util.h"

static uint64_t steps(const dt__store *s)
{
    dt__store_stats st;
    dt__store_get_stats(s, &st);
    return st.steps;
}

static uint64_t unexpected(const dt__store *s)
{
    dt__store_stats st;
    dt__store_get_stats(s, &st);
    return st.unexpected_rows;
}

static void commit_ok(dt__store *s, uint64_t epoch, const dt__episode_commit *e)
{
    dt_status st = dt__store_commit(s, epoch, e, 1);
    if (st != DT_OK) {
        fail_msg("commit: %s: %s", dt_status_name(st), dt__store_errmsg(s));
    }
}

static void assert_history(dt__store *s, dt__arena *a, const char *id, const char *const *want,
                           size_t n_want)
{
    dt__blob *ev = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_load_history(s, id, a, &ev, &n), DT_OK);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) {
        assert_blob_equal(ev[i], want[i]);
    }
    dt__instance_row row;
    assert_int_equal(dt__store_get_instance(s, id, a, &row), DT_OK);
    assert_int_equal(row.history_len, n_want);
}

/* The same two episodes with and without the length known: the same file contents, and the
 * known length saves exactly the SELECT of it. */
static void known_length_is_not_read(void **state)
{
    store_fixture *f = *state;
    char path2[600];
    snprintf(path2, sizeof(path2), "%s/p001.db", f->dir);
    uint64_t e1 = 0, e2 = 0;
    dt__store *known = open_claimed(f->path, &e1);
    dt__store *unknown = open_claimed(path2, &e2);
    dt__instance_row row = instance_row("i", "O", 0, 1);
    row.input = blob_str("in");
    dt__blob ev1[] = {blob_str("a"), blob_str("b")};
    dt__blob ev2[] = {blob_str("c")};

    dt__episode_commit k1 = {
        .instance = &row, .new_events = ev1, .n_new_events = 2, .base_known = true};
    dt__episode_commit u1 = {.instance = &row, .new_events = ev1, .n_new_events = 2};
    uint64_t s0 = steps(known), t0 = steps(unknown);
    commit_ok(known, e1, &k1);
    commit_ok(unknown, e2, &u1);
    assert_int_equal(steps(known) - s0 + 1, steps(unknown) - t0);

    dt__episode_commit k2 = {.instance = &row,
                             .new_events = ev2,
                             .n_new_events = 1,
                             .base_known = true,
                             .base_history_len = 2};
    dt__episode_commit u2 = {.instance = &row, .new_events = ev2, .n_new_events = 1};
    s0 = steps(known), t0 = steps(unknown);
    commit_ok(known, e1, &k2);
    commit_ok(unknown, e2, &u2);
    assert_int_equal(steps(known) - s0 + 1, steps(unknown) - t0);

    const char *want[] = {"a", "b", "c"};
    assert_history(known, f->arena, "i", want, 3);
    assert_history(unknown, f->arena, "i", want, 3);
    assert_int_equal(unexpected(known), 0);
    dt__store_close(known);
    dt__store_close(unknown);
}

/* An episode of the same execution writes its own columns and leaves the input, the start
 * record (tags) and the identity columns as they are. */
static void episode_fields_only(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row row = instance_row("i", "O", 0, 10);
    row.input = blob_str("the input");
    row.tags = blob_str("the start record");
    row.version = "v1";
    dt__blob ev = blob_str("e0");
    dt__episode_commit c1 = {
        .instance = &row, .new_events = &ev, .n_new_events = 1, .base_known = true};
    commit_ok(s, epoch, &c1);

    dt__instance_row next = instance_row("i", "Other", 1, 99);
    next.input = blob_str("not written");
    next.tags = (dt__blob){NULL, 0};
    next.last_updated_ms = 20;
    next.completed_ms = 21;
    next.output = blob_str("out");
    next.custom_status = blob_str("cs");
    next.failure_details = blob_str("fd");
    dt__episode_commit c2 = {.instance = &next,
                             .new_events = &ev,
                             .n_new_events = 1,
                             .base_known = true,
                             .base_history_len = 1,
                             .episode_fields_only = true};
    commit_ok(s, epoch, &c2);

    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "i", f->arena, &got), DT_OK);
    assert_blob_equal(got.input, "the input");
    assert_blob_equal(got.tags, "the start record");
    assert_string_equal(got.name, "O");
    assert_string_equal(got.version, "v1");
    assert_int_equal(got.created_ms, 10);
    assert_int_equal(got.runtime_status, 1);
    assert_int_equal(got.last_updated_ms, 20);
    assert_int_equal(got.completed_ms, 21);
    assert_blob_equal(got.output, "out");
    assert_blob_equal(got.custom_status, "cs");
    assert_blob_equal(got.failure_details, "fd");
    assert_int_equal(got.history_len, 2);
    assert_int_equal(unexpected(s), 0);
    dt__store_close(s);
}

/* A stated length that no longer holds (the row moved on, or vanished) is not trusted: the
 * episode ran on another history, so the whole batch fails (DT_ESTATE), writes nothing, and is
 * counted. */
static void wrong_length_refused(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row row = instance_row("i", "O", 0, 1);
    row.input = blob_str("in");
    dt__blob ev[] = {blob_str("a"), blob_str("b"), blob_str("c")};
    commit_simple(s, epoch, &row, ev, 3);
    const char *want[] = {"a", "b", "c"};

    dt__instance_row stale = instance_row("i", "O", 1, 1);
    stale.input = blob_str("replaced");
    dt__blob more = blob_str("d");
    dt__episode_commit c = {.instance = &stale,
                            .new_events = &more,
                            .n_new_events = 1,
                            .base_known = true,
                            .base_history_len = 1};
    dt__outbox_msg m = {.subject = "dt.h.act.q", .msg_id = "i/x/act/9", .payload = blob_str("p")};
    dt__episode_commit other = {.instance = &row, .outbox = &m, .n_outbox = 1};
    dt__episode_commit batch[] = {other, c};
    assert_int_equal(dt__store_commit(s, epoch, batch, 2), DT_ESTATE);
    assert_non_null(strstr(dt__store_errmsg(s), "no longer at history length 1"));
    assert_history(s, f->arena, "i", want, 3);
    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "i", f->arena, &got), DT_OK);
    assert_blob_equal(got.input, "in"); /* nothing of the batch was written */
    dt__outbox_row *rows = NULL;
    size_t n = 9;
    assert_int_equal(dt__store_outbox_list(s, 0, 10, f->arena, &rows, &n), DT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(unexpected(s), 1);

    /* "No row yet" (base 0) for an instance that has one. */
    dt__episode_commit c0 = {
        .instance = &row, .new_events = &more, .n_new_events = 1, .base_known = true};
    assert_int_equal(dt__store_commit(s, epoch, &c0, 1), DT_ESTATE);
    assert_history(s, f->arena, "i", want, 3);
    assert_int_equal(unexpected(s), 2);

    /* A row that vanished (purged), through the episode-fields-only update: not written back. */
    raw_exec(f->path, "DELETE FROM instances WHERE instance_id = 'i';"
                      "DELETE FROM history WHERE instance_id = 'i'");
    dt__episode_commit f1 = {.instance = &stale,
                             .new_events = &more,
                             .n_new_events = 1,
                             .base_known = true,
                             .base_history_len = 3,
                             .episode_fields_only = true};
    assert_int_equal(dt__store_commit(s, epoch, &f1, 1), DT_ESTATE);
    assert_int_equal(dt__store_get_instance(s, "i", f->arena, &got), DT_ENOTFOUND);
    assert_int_equal(unexpected(s), 3);

    /* The right length still commits. */
    c0.base_history_len = 0;
    commit_ok(s, epoch, &c0);
    const char *want1[] = {"d"};
    assert_history(s, f->arena, "i", want1, 1);
    dt__store_close(s);
}

/* The history bound holds with a stated length too, and the failed batch writes nothing. */
static void known_length_respects_bound(void **state)
{
    store_fixture *f = *state;
    dt__store_options o;
    dt__store_options_init(&o);
    o.max_history_len = 4;
    dt__store *s = open_store(f->path, &o);
    uint64_t epoch = 0;
    assert_int_equal(dt__store_claim(s, "t", &epoch), DT_OK);
    dt__instance_row row = instance_row("i", "O", 0, 1);
    dt__blob ev[] = {blob_str("a"), blob_str("b"), blob_str("c")};
    dt__episode_commit c = {
        .instance = &row, .new_events = ev, .n_new_events = 3, .base_known = true};
    commit_ok(s, epoch, &c);
    dt__episode_commit over = {.instance = &row,
                               .new_events = ev,
                               .n_new_events = 2,
                               .base_known = true,
                               .base_history_len = 3};
    assert_int_equal(dt__store_commit(s, epoch, &over, 1), DT_ETOOLARGE);
    const char *want[] = {"a", "b", "c"};
    assert_history(s, f->arena, "i", want, 3);
    dt__store_close(s);
}

static uint64_t filter_answers(const dt__store *s)
{
    dt__store_stats st;
    dt__store_get_stats(s, &st);
    return st.filter_answers;
}

static bool is_applied(dt__store *s, const char *inst, const char *id)
{
    bool applied = false;
    assert_int_equal(dt__store_is_applied(s, inst, id, &applied), DT_OK);
    return applied;
}

/* Commits identities "<prefix><k>" for k in [from, to) to instance `inst`, 100 per episode. */
static void commit_ids(dt__store *s, uint64_t epoch, const char *inst, const char *prefix, int from,
                       int to, bool prune_last)
{
    static char buf[100][32];
    const char *ids[100];
    dt__instance_row row = instance_row(inst, "O", 0, 1);
    for (int k = from; k < to;) {
        size_t n = 0;
        for (; n < 100 && k < to; n++, k++) {
            snprintf(buf[n], sizeof(buf[n]), "%s%d", prefix, k);
            ids[n] = buf[n];
        }
        dt__episode_commit c = {.instance = &row,
                                .applied_ids = ids,
                                .n_applied = n,
                                .prune_applied = prune_last && k == to};
        commit_ok(s, epoch, &c);
    }
}

/* New identities (nearly every message) are answered in memory; applied ones from the table. */
static void new_identities_need_no_sql(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    commit_ids(s, epoch, "a", "m", 0, 100, false);
    uint64_t s0 = steps(s);
    char id[32];
    for (int k = 100; k < 1100; k++) {
        snprintf(id, sizeof(id), "m%d", k);
        assert_false(is_applied(s, "a", id));
    }
    assert_false(is_applied(s, "b", "m1")); /* per instance */
    /* 1,001 answers, no statement (a false positive would cost one; none at this fill). */
    assert_int_equal(steps(s) - s0, 0);
    assert_int_equal(filter_answers(s), 1001);
    for (int k = 0; k < 100; k++) {
        snprintf(id, sizeof(id), "m%d", k);
        assert_true(is_applied(s, "a", id));
    }
    assert_true(steps(s) - s0 >= 100);
    dt__store_close(s);
}

/* Identities written before the claim (a previous owner's) are in the filter; a handle that
 * another has claimed over falls back to the table at its first fenced write. */
static void filter_follows_ownership(void **state)
{
    store_fixture *f = *state;
    uint64_t ea = 0, eb = 0;
    dt__store *a = open_claimed(f->path, &ea);
    commit_ids(a, ea, "i", "old", 0, 50, false);

    dt__store *b = open_claimed(f->path, &eb);
    assert_true(is_applied(b, "i", "old7"));
    commit_ids(b, eb, "i", "new", 0, 1, false);
    assert_true(is_applied(b, "i", "new0"));

    dt__instance_row row = instance_row("i", "O", 0, 1);
    dt__episode_commit c = {.instance = &row};
    assert_int_equal(dt__store_commit(a, ea, &c, 1), DT_EFENCED);
    assert_true(is_applied(a, "i", "new0")); /* from the table now */
    uint64_t answers = filter_answers(a);
    assert_false(is_applied(a, "i", "never"));
    assert_int_equal(filter_answers(a), answers);

    /* A handle that never claimed reads the table for every answer. */
    dt__store *r = open_store(f->path, NULL);
    assert_false(is_applied(r, "i", "never"));
    assert_int_equal(filter_answers(r), 0);
    dt__store_close(r);
    dt__store_close(a);
    dt__store_close(b);
}

/* Pruned identities leave the filter at its next rebuild, which comes after as many additions as
 * it was sized for; every answer stays right throughout. */
static void filter_rebuilds_when_full(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__store_stats st;
    dt__store_get_stats(s, &st);
    assert_int_equal(st.filter_builds, 1);            /* at the claim */
    commit_ids(s, epoch, "done", "x", 0, 3000, true); /* an instance that completed */
    commit_ids(s, epoch, "live", "y", 0, 2000, false);
    dt__store_get_stats(s, &st);
    assert_int_equal(st.filter_builds, 2); /* 5,000 additions > 4,096 */
    assert_false(is_applied(s, "done", "x5"));
    assert_true(is_applied(s, "live", "y1999"));
    /* After the rebuild only the live identities are in it: the pruned ones need no SQL. */
    uint64_t s0 = steps(s);
    char id[32];
    for (int k = 0; k < 100; k++) {
        snprintf(id, sizeof(id), "x%d", k);
        assert_false(is_applied(s, "done", id));
    }
    assert_true(steps(s) - s0 <= 2);
    dt__store_close(s);
}

/* After a commit that failed once begun, the filter is not trusted until the next successful
 * commit rebuilds it from the table. */
static void filter_rebuilt_after_failed_commit(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    commit_ids(s, epoch, "a", "m", 0, 3, false);
    const char *dup[] = {"m9", "m1"}; /* m1 is recorded: the batch fails inside SQLite */
    dt__instance_row row = instance_row("a", "O", 0, 1);
    dt__episode_commit c = {.instance = &row, .applied_ids = dup, .n_applied = 2};
    assert_int_equal(dt__store_commit(s, epoch, &c, 1), DT_EEXIST);
    uint64_t answers = filter_answers(s);
    assert_false(is_applied(s, "a", "m9"));
    assert_int_equal(filter_answers(s), answers); /* from the table */

    commit_ids(s, epoch, "a", "n", 0, 1, false);
    dt__store_stats st;
    dt__store_get_stats(s, &st);
    assert_int_equal(st.filter_builds, 2);
    assert_false(is_applied(s, "a", "m9"));
    assert_int_equal(filter_answers(s), answers + 1);
    assert_true(is_applied(s, "a", "n0"));
    assert_true(is_applied(s, "a", "m2"));
    dt__store_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(known_length_is_not_read),   T(episode_fields_only),
        T(wrong_length_refused),       T(known_length_respects_bound),
        T(new_identities_need_no_sql), T(filter_follows_ownership),
        T(filter_rebuilds_when_full),  T(filter_rebuilt_after_failed_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
