/*
 * Queries over the instances of one partition (filter + keyset paging by instance_id), counting,
 * and purge.
 *
 * Paging is by key, not offset: a page ends with the instance_id after which the next page starts,
 * so a page costs O(limit) however deep the listing is, and rows written between pages neither
 * repeat nor shift the listing. The filter is one static statement (a NULL / 0 parameter
 * disables a condition), so it is prepared once; it scans the instances table, which is the
 * right trade for rare administrative reads on a table the hot path only writes.
 */
#include <string.h>

#include "common_int.h"
#include "store_db_int.h"

static void bind_filter(sqlite3_stmt *st, const dt__instance_filter *f, int *rc)
{
    const char *prefix = f->instance_id_prefix;
    dt__store_bind_i64(st, 1, (int64_t)f->status_mask, rc);
    dt__store_bind_text(st, 2, f->name, rc);
    dt__store_bind_text(st, 3, prefix != NULL && prefix[0] != '\0' ? prefix : NULL, rc);
    dt__store_bind_i64(st, 4, f->created_from_ms, rc);
    dt__store_bind_i64(st, 5, f->created_to_ms, rc);
    dt__store_bind_i64(st, 8, f->completed_to_ms, rc);
}

static dt_status read_row(dt__store *s, sqlite3_stmt *st, dt__arena *a, void *item, const void *ctx)
{
    const bool *with_payloads = ctx;
    return dt__store_read_instance(s, st, a, *with_payloads, item);
}

dt_status dt__store_query(dt__store *s, const dt__instance_filter *filter, const char *after_token,
                          size_t limit, bool with_payloads, dt__arena *arena,
                          dt__instance_page *out_page)
{
    static const dt__instance_filter any = {0};
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_check_limit(s, limit, "query");
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_INST_QUERY, &st);
    }
    if (status != DT_OK) {
        return status;
    }
    /* One row more than asked tells whether another page follows. */
    int rc = SQLITE_OK;
    bind_filter(st, filter != NULL ? filter : &any, &rc);
    dt__store_bind_text(st, 6, after_token != NULL ? after_token : "", &rc);
    dt__store_bind_i64(st, 7, (int64_t)limit + 1, &rc);
    dt__store_vec v = {.item_size = sizeof(dt__instance_row)};
    void *rows = NULL;
    status = dt__store_collect(s, st, rc, "query", read_row, &with_payloads, &v, arena, &rows);
    if (status != DT_OK) {
        return status;
    }
    dt__instance_page page = {.rows = rows, .n = v.n};
    if (page.n > limit) {
        page.n = limit;
        page.next_token = page.rows[limit - 1].instance_id;
    }
    *out_page = page;
    return DT_OK;
}

dt_status dt__store_count(dt__store *s, const dt__instance_filter *filter, uint64_t *out_count)
{
    static const dt__instance_filter any = {0};
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = dt__store_stmt(s, DT__SQL_INST_COUNT, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    bind_filter(st, filter != NULL ? filter : &any, &rc);
    status = dt__store_step_row(s, st, rc, "count", &row);
    if (status == DT_OK) {
        *out_count = row ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
    }
    return status;
}

/* Runs `id` with the instance id as its only parameter. */
static dt_status delete_of(dt__store *s, dt__store_sql id, const char *instance_id)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, id, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    return dt__store_exec(s, st, rc, "purge");
}

/* Deletes the row if its status is in the mask; when nothing was deleted, tells absent
 * (DT_ENOTFOUND) from present in another status (DT_ESTATE) by reading it in the same
 * transaction. */
static dt_status delete_row_if(dt__store *s, const char *instance_id, uint32_t status_mask)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_INST_DEL_IF, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    dt__store_bind_i64(st, 2, (int64_t)status_mask, &rc);
    status = dt__store_exec(s, st, rc, "purge");
    if (status != DT_OK || sqlite3_changes64(s->db) == 1) {
        return status;
    }
    bool row = false;
    status = dt__store_stmt(s, DT__SQL_INST_LEN, &st);
    if (status != DT_OK) {
        return status;
    }
    rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    status = dt__store_step_row(s, st, rc, "purge", &row);
    if (status != DT_OK) {
        return status;
    }
    sqlite3_reset(st);
    return row ? dt__store_failf(s, DT_ESTATE,
                                 "purge: instance '%s' in %s is not in a purgeable status",
                                 instance_id, s->path)
               : dt__store_failf(s, DT_ENOTFOUND, "purge: instance '%s' not found in %s",
                                 instance_id, s->path);
}

dt_status dt__store_purge_in_txn(dt__store *s, const char *instance_id, uint32_t status_mask)
{
    dt_status status = delete_row_if(s, instance_id, status_mask);
    status = status != DT_OK ? status : delete_of(s, DT__SQL_HIST_RESET, instance_id);
    status = status != DT_OK ? status : delete_of(s, DT__SQL_APPLIED_PRUNE, instance_id);
    return status != DT_OK ? status : delete_of(s, DT__SQL_TIMER_DEL_INST, instance_id);
}

dt_status dt__store_purge(dt__store *s, uint64_t expected_epoch, const char *instance_id,
                          uint32_t status_mask)
{
    if (instance_id == NULL || instance_id[0] == '\0') {
        return dt__store_failf(s, DT_EINVAL, "purge in %s: instance id missing", s->path);
    }
    dt__store_batch b = {.purge_instance_id = instance_id, .purge_status_mask = status_mask};
    return dt__store_commit_batch(s, expected_epoch, &b);
}
