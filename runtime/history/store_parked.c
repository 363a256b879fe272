/*
 * Parked messages: events (raises, completions, terminate, ...) that arrived for an instance with
 * no started execution to apply them to. Redelivery order is not arrival order (a failed batch
 * naks its messages with a delay, and the next fetch can hand out an event before the start it
 * depends on), so such a message is kept here, in the partition's own file, and applied when the
 * start arrives; the worker dead-letters what waited longer than its bound.
 *
 * The handle counts the table's rows beside its own commits (dt__store_parked_count): almost
 * always zero, so looking for parked messages of a newly started instance costs no SELECT.
 */
#include <inttypes.h>

#include "common_int.h"
#include "store_db_int.h"

/* Makes the count current (one SELECT after a claim or a failed commit). */
static dt_status count_current(dt__store *s)
{
    if (s->parked.known) {
        return DT_OK;
    }
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = dt__store_stmt(s, DT__SQL_PARKED_COUNT, &st);
    status = status != DT_OK ? status : dt__store_step_row(s, st, SQLITE_OK, "count parked", &row);
    if (status == DT_OK) {
        s->parked.n = row ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        s->parked.known = true;
        sqlite3_reset(st);
    }
    return status;
}

dt_status dt__store_parked_count(dt__store *s, uint64_t *out_n)
{
    dt_status status = count_current(s);
    if (status == DT_OK) {
        *out_n = s->parked.n;
    }
    return status;
}

dt_status dt__store_parked_add_in_txn(dt__store *s, const dt__parked_new *p, size_t n,
                                      int64_t *delta)
{
    sqlite3_stmt *st = NULL;
    dt_status status = n > 0 ? dt__store_stmt(s, DT__SQL_PARKED_ADD, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < n; i++) {
        int rc = SQLITE_OK;
        dt__store_bind_text(st, 1, p[i].instance_id, &rc);
        dt__store_bind_text(st, 2, p[i].dedupe_id, &rc);
        dt__store_bind_i64(st, 3, p[i].parked_ms, &rc);
        dt__store_bind_blob(st, 4, p[i].payload, &rc);
        status = dt__store_exec(s, st, rc, "park message");
        *delta += sqlite3_changes(s->db); /* 0 for a repeat (INSERT OR IGNORE) */
    }
    return status;
}

dt_status dt__store_parked_del_in_txn(dt__store *s, const int64_t *ids, size_t n, int64_t *delta)
{
    sqlite3_stmt *st = NULL;
    dt_status status = n > 0 ? dt__store_stmt(s, DT__SQL_PARKED_DEL, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < n; i++) {
        int rc = SQLITE_OK;
        dt__store_bind_i64(st, 1, ids[i], &rc);
        status = dt__store_exec(s, st, rc, "delete parked message");
        *delta -= sqlite3_changes(s->db);
    }
    return status;
}

void dt__store_parked_note(dt__store *s, dt_status committed, int64_t delta)
{
    if (committed != DT_OK) {
        s->parked.known = false; /* whether a failed COMMIT reached the file is not certain */
    } else if (s->parked.known) {
        s->parked.n = (uint64_t)((int64_t)s->parked.n + delta);
    }
}

static dt_status read_parked(dt__store *s, sqlite3_stmt *st, dt__arena *a, void *item,
                             const void *ctx)
{
    (void)ctx;
    dt__parked_row *r = item;
    r->id = (int64_t)sqlite3_column_int64(st, 0);
    r->parked_ms = (int64_t)sqlite3_column_int64(st, 3);
    dt_status status = dt__store_col_text(s, st, 1, a, &r->instance_id);
    status = status != DT_OK ? status : dt__store_col_text(s, st, 2, a, &r->dedupe_id);
    return status != DT_OK ? status : dt__store_col_blob(s, st, 4, a, &r->payload);
}

/* Runs PARKED_OF or PARKED_OLD (?1 text or integer, ?2 limit) and collects the rows. */
static dt_status list(dt__store *s, dt__store_sql id, const char *instance_id, int64_t before_ms,
                      size_t limit, dt__arena *arena, dt__parked_row **out_rows, size_t *out_n)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_check_limit(s, limit, "parked messages");
    status = status != DT_OK ? status : count_current(s);
    if (status == DT_OK && s->parked.n == 0) {
        *out_rows = NULL;
        *out_n = 0;
        return DT_OK;
    }
    status = status != DT_OK ? status : dt__store_stmt(s, id, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    if (instance_id != NULL) {
        dt__store_bind_text(st, 1, instance_id, &rc);
    } else {
        dt__store_bind_i64(st, 1, before_ms, &rc);
    }
    dt__store_bind_i64(st, 2, (int64_t)limit, &rc);
    dt__store_vec v = {.item_size = sizeof(dt__parked_row)};
    void *rows = NULL;
    status = dt__store_collect(s, st, rc, "parked messages", read_parked, NULL, &v, arena, &rows);
    if (status == DT_OK) {
        *out_rows = rows;
        *out_n = v.n;
    }
    return status;
}

dt_status dt__store_parked_of(dt__store *s, const char *instance_id, size_t limit, dt__arena *arena,
                              dt__parked_row **out_rows, size_t *out_n)
{
    if (instance_id == NULL) {
        return dt__store_failf(s, DT_EINVAL, "parked messages in %s: instance id missing", s->path);
    }
    return list(s, DT__SQL_PARKED_OF, instance_id, 0, limit, arena, out_rows, out_n);
}

dt_status dt__store_parked_older(dt__store *s, int64_t before_ms, size_t limit, dt__arena *arena,
                                 dt__parked_row **out_rows, size_t *out_n)
{
    return list(s, DT__SQL_PARKED_OLD, NULL, before_ms, limit, arena, out_rows, out_n);
}

dt_status dt__store_parked_delete(dt__store *s, uint64_t expected_epoch, const int64_t *ids,
                                  size_t n)
{
    dt__store_batch b = {.delete_parked_ids = ids, .n_delete_parked = n};
    return n == 0 ? DT_OK : dt__store_commit_batch(s, expected_epoch, &b);
}
