/*
 * Tests of listing and purging instances: each filter condition alone and combined, counting,
 * keyset paging (no repeats, no gaps, no empty trailing page), payload-less listings, and purge
 * removing exactly one instance's rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_store_util.h"

enum { RUNNING = 0, COMPLETED = 1, FAILED = 3, TERMINATED = 5, PENDING = 6 };
/* The statuses the query service purges (COMPLETED, FAILED, CANCELED = 4, TERMINATED). */
#define FINISHED ((1u << COMPLETED) | (1u << FAILED) | (1u << 4) | (1u << TERMINATED))

typedef struct seed {
    const char *id;
    const char *name;
    int32_t status;
    int64_t created_ms;
} seed;

static const seed seeds[] = {
    {"order-1", "ProcessOrder", RUNNING, 100},    {"order-2", "ProcessOrder", COMPLETED, 200},
    {"order-3", "ProcessOrder", FAILED, 300},     {"ship-1", "Ship", RUNNING, 150},
    {"ship-2", "Ship", TERMINATED, 250},          {"audit", "Audit", PENDING, 400},
    {"order-10", "ProcessOrder", COMPLETED, 500},
};

/* Commits every seed in one batch and returns the claimed store. */
static dt__store *seeded(store_fixture *f, uint64_t *epoch)
{
    dt__store *s = open_claimed(f->path, epoch);
    enum { N = sizeof(seeds) / sizeof(seeds[0]) };
    dt__instance_row rows[N];
    dt__episode_commit eps[N];
    for (size_t i = 0; i < N; i++) {
        rows[i] = instance_row(seeds[i].id, seeds[i].name, seeds[i].status, seeds[i].created_ms);
        rows[i].input = blob_str("in");
        eps[i] = (dt__episode_commit){.instance = &rows[i]};
    }
    assert_int_equal(dt__store_commit(s, *epoch, eps, N), DT_OK);
    return s;
}

/* Runs the query as a single page and returns the ids, comma separated, into buf. */
static const char *ids_of(dt__store *s, const dt__instance_filter *flt, dt__arena *a, char *buf,
                          size_t len)
{
    dt__instance_page page;
    assert_int_equal(dt__store_query(s, flt, NULL, 100, false, a, &page), DT_OK);
    assert_null(page.next_token);
    buf[0] = '\0';
    for (size_t i = 0; i < page.n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? "," : "", page.rows[i].instance_id);
    }
    uint64_t count = 0;
    assert_int_equal(dt__store_count(s, flt, &count), DT_OK);
    assert_int_equal(count, page.n);
    return buf;
}

static void filters_select_and_count(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = seeded(f, &epoch);
    char buf[256];

    dt__instance_filter all = {0};
    assert_string_equal(ids_of(s, &all, f->arena, buf, sizeof(buf)),
                        "audit,order-1,order-10,order-2,order-3,ship-1,ship-2");
    assert_string_equal(ids_of(s, NULL, f->arena, buf, sizeof(buf)),
                        "audit,order-1,order-10,order-2,order-3,ship-1,ship-2");

    dt__instance_filter running = {.status_mask = 1u << RUNNING};
    assert_string_equal(ids_of(s, &running, f->arena, buf, sizeof(buf)), "order-1,ship-1");
    dt__instance_filter ended = {.status_mask =
                                     (1u << COMPLETED) | (1u << FAILED) | (1u << TERMINATED)};
    assert_string_equal(ids_of(s, &ended, f->arena, buf, sizeof(buf)),
                        "order-10,order-2,order-3,ship-2");

    dt__instance_filter by_name = {.name = "Ship"};
    assert_string_equal(ids_of(s, &by_name, f->arena, buf, sizeof(buf)), "ship-1,ship-2");
    dt__instance_filter by_prefix = {.instance_id_prefix = "order-1"};
    assert_string_equal(ids_of(s, &by_prefix, f->arena, buf, sizeof(buf)), "order-1,order-10");

    dt__instance_filter range = {.created_from_ms = 150, .created_to_ms = 300};
    assert_string_equal(ids_of(s, &range, f->arena, buf, sizeof(buf)), "order-2,ship-1,ship-2");
    dt__instance_filter from = {.created_from_ms = 400};
    assert_string_equal(ids_of(s, &from, f->arena, buf, sizeof(buf)), "audit,order-10");

    dt__instance_filter combined = {.status_mask = 1u << COMPLETED,
                                    .name = "ProcessOrder",
                                    .instance_id_prefix = "order",
                                    .created_from_ms = 100,
                                    .created_to_ms = 500};
    assert_string_equal(ids_of(s, &combined, f->arena, buf, sizeof(buf)), "order-2");
    dt__instance_filter none = {.name = "Nope"};
    assert_string_equal(ids_of(s, &none, f->arena, buf, sizeof(buf)), "");
    dt__store_close(s);
}

static void payloads_only_on_request(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = seeded(f, &epoch);
    dt__instance_page page;
    assert_int_equal(dt__store_query(s, NULL, NULL, 1, false, f->arena, &page), DT_OK);
    assert_int_equal(page.n, 1);
    assert_string_equal(page.rows[0].name, "Audit");
    assert_null(page.rows[0].input.data);
    assert_int_equal(dt__store_query(s, NULL, NULL, 1, true, f->arena, &page), DT_OK);
    assert_blob_equal(page.rows[0].input, "in");
    assert_int_equal(dt__store_query(s, NULL, NULL, 0, true, f->arena, &page), DT_EINVAL);
    assert_int_equal(dt__store_query(s, NULL, NULL, DT__STORE_MAX_PAGE + 1, true, f->arena, &page),
                     DT_EINVAL);
    dt__store_close(s);
}

/* Pages through `total` instances `limit` at a time, checking order and completeness. */
static void page_through(dt__store *s, dt__arena *a, size_t total, size_t limit)
{
    const char *token = NULL;
    size_t seen = 0;
    size_t pages = 0;
    char want[32];
    do {
        dt__instance_page page;
        assert_int_equal(dt__store_query(s, NULL, token, limit, false, a, &page), DT_OK);
        assert_true(page.n >= 1 && page.n <= limit);
        for (size_t i = 0; i < page.n; i++) {
            snprintf(want, sizeof(want), "p-%03zu", seen++);
            assert_string_equal(page.rows[i].instance_id, want);
        }
        token = page.next_token;
        pages++;
    } while (token != NULL);
    assert_int_equal(seen, total);
    assert_int_equal(pages, (total + limit - 1) / limit);
}

static void paging_covers_everything_once(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    enum { N = 25 };
    char ids[N][16];
    dt__instance_row rows[N];
    dt__episode_commit eps[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "p-%03zu", (N - 1 - i)); /* inserted out of order */
        rows[i] = instance_row(ids[i], "O", RUNNING, 1);
        eps[i] = (dt__episode_commit){.instance = &rows[i]};
    }
    assert_int_equal(dt__store_commit(s, epoch, eps, N), DT_OK);
    page_through(s, f->arena, N, 10); /* 10, 10, 5 */
    page_through(s, f->arena, N, 5);  /* exactly 5 pages, no empty sixth */
    page_through(s, f->arena, N, 25);
    page_through(s, f->arena, N, 1000);

    /* A token past the end gives an empty last page. */
    dt__instance_page page;
    assert_int_equal(dt__store_query(s, NULL, "zzz", 10, false, f->arena, &page), DT_OK);
    assert_int_equal(page.n, 0);
    assert_null(page.rows);
    assert_null(page.next_token);
    dt__store_close(s);
}

static void purge_removes_one_instance_entirely(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row rows[2] = {instance_row("gone", "O", COMPLETED, 1),
                                instance_row("kept", "O", COMPLETED, 1)};
    dt__blob ev[] = {blob_str("e0"), blob_str("e1")};
    const char *applied[] = {"m1"};
    dt__timer_new t[2] = {
        {.fire_at_ms = 5, .dedupe_id = "gone/t", .payload = blob_str("p")},
        {.fire_at_ms = 6, .dedupe_id = "kept/t", .payload = blob_str("p")},
    };
    dt__outbox_msg m = {.subject = "s", .msg_id = "gone/1", .payload = blob_str("p")};
    dt__episode_commit eps[2];
    for (size_t i = 0; i < 2; i++) {
        eps[i] = (dt__episode_commit){.instance = &rows[i],
                                      .new_events = ev,
                                      .n_new_events = 2,
                                      .applied_ids = applied,
                                      .n_applied = 1,
                                      .new_timers = &t[i],
                                      .n_new_timers = 1,
                                      .outbox = &m,
                                      .n_outbox = 1};
    }
    assert_int_equal(dt__store_commit(s, epoch, eps, 2), DT_OK);

    assert_int_equal(dt__store_purge(s, epoch, "gone", FINISHED), DT_OK);
    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "gone", f->arena, &got), DT_ENOTFOUND);
    assert_int_equal(dt__store_purge(s, epoch, "gone", FINISHED), DT_ENOTFOUND);
    assert_int_equal(dt__store_purge(s, epoch, NULL, FINISHED), DT_EINVAL);

    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM history WHERE instance_id = 'gone'"),
                     0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM applied WHERE instance_id = 'gone'"),
                     0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM timers WHERE instance_id = 'gone'"), 0);
    /* The other instance keeps everything; outbox messages are still owed to their receivers. */
    assert_int_equal(
        raw_int(f->path, "SELECT coalesce(sum(n), 0) FROM history WHERE instance_id = 'kept'"), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM applied WHERE instance_id = 'kept'"),
                     1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM timers WHERE instance_id = 'kept'"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 2);
    uint64_t count = 0;
    assert_int_equal(dt__store_count(s, NULL, &count), DT_OK);
    assert_int_equal(count, 1);
    dt__store_close(s);
}

/* Only rows still in an accepted status are purged; 0 accepts any. */
static void purge_checks_the_status(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *s = open_claimed(f->path, &epoch);
    dt__instance_row run = instance_row("run", "O", RUNNING, 1);
    dt__blob ev[] = {blob_str("e0")};
    commit_simple(s, epoch, &run, ev, 1);
    assert_int_equal(dt__store_purge(s, epoch, "run", FINISHED), DT_ESTATE);
    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(s, "run", f->arena, &got), DT_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM history WHERE instance_id = 'run'"), 1);
    assert_int_equal(dt__store_purge(s, epoch, "run", 0), DT_OK);
    assert_int_equal(dt__store_get_instance(s, "run", f->arena, &got), DT_ENOTFOUND);
    dt__store_close(s);
}

/*
 * The query service's race, step by step on two handles of one file: it reads a finished row,
 * the partition restarts the instance (reuse policy: a new execution, RUNNING), then the purge
 * runs. The restarted instance must survive whole.
 */
static void purge_spares_a_row_restarted_after_the_check(void **state)
{
    store_fixture *f = *state;
    uint64_t epoch = 0;
    dt__store *part = open_claimed(f->path, &epoch);
    dt__store *query = open_store(f->path, NULL); /* the query service's own handle */
    dt__instance_row done = instance_row("i", "O", COMPLETED, 1);
    dt__blob ev[] = {blob_str("old0"), blob_str("old1")};
    commit_simple(part, epoch, &done, ev, 2);

    dt__instance_row seen;
    assert_int_equal(dt__store_get_instance(query, "i", f->arena, &seen), DT_OK);
    assert_int_equal(seen.runtime_status, COMPLETED); /* the check passes */

    dt__instance_row again = instance_row("i", "O", RUNNING, 2);
    again.execution_id = "exec-2";
    dt__blob nev[] = {blob_str("new0")};
    dt__episode_commit restart = {
        .instance = &again, .reset_history = true, .new_events = nev, .n_new_events = 1};
    assert_int_equal(dt__store_commit(part, epoch, &restart, 1), DT_OK);

    assert_int_equal(dt__store_purge(query, epoch, "i", FINISHED), DT_ESTATE);
    dt__instance_row got;
    assert_int_equal(dt__store_get_instance(part, "i", f->arena, &got), DT_OK);
    assert_string_equal(got.execution_id, "exec-2");
    assert_int_equal(got.runtime_status, RUNNING);
    dt__blob *hist = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_load_history(part, "i", f->arena, &hist, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_blob_equal(hist[0], "new0");
    dt__store_close(query);
    dt__store_close(part);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(filters_select_and_count),      T(payloads_only_on_request),
        T(paging_covers_everything_once), T(purge_removes_one_instance_entirely),
        T(purge_checks_the_status),       T(purge_spares_a_row_restarted_after_the_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
