/*
 * SQLite plumbing of the store: the statement cache, binders, stepping, column copies into an
 * arena, error mapping and the fenced write transaction. See store_db_int.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "store_db_int.h"

static const char *const sql_text[DT__SQL_COUNT] = {
#define DT__STORE_SQL_TEXT_(name, text) [DT__SQL_##name] = (text),
    DT__STORE_SQL_MAP(DT__STORE_SQL_TEXT_)
#undef DT__STORE_SQL_TEXT_
};

dt_status dt__store_map_rc(int rc)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return DT_OK;
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return DT_EEXIST;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DT_EBUSY;
    case SQLITE_NOMEM:
        return DT_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return DT_ECORRUPT;
    case SQLITE_TOOBIG:
        return DT_ETOOLARGE;
    case SQLITE_CONSTRAINT:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return DT_EINVAL;
    default:
        return DT_EIO;
    }
}

dt_status dt__store_failf(dt__store *s, dt_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return st;
}

dt_status dt__store_fail(dt__store *s, int rc, const char *what)
{
    /* sqlite3_errmsg may describe an older error when rc came from a binder; prefer it only when
     * it matches rc. */
    const char *msg =
        sqlite3_extended_errcode(s->db) == rc ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    return dt__store_failf(s, dt__store_map_rc(rc), "%s: %s (%s)", what, msg, s->path);
}

dt_status dt__store_stmt(dt__store *s, dt__store_sql id, sqlite3_stmt **out)
{
    if (s->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            return dt__store_fail(s, rc, "prepare");
        }
    }
    *out = s->stmts[id];
    return DT_OK;
}

void dt__store_bind_text(sqlite3_stmt *st, int i, const char *v, int *rc)
{
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    }
}

void dt__store_bind_blob(sqlite3_stmt *st, int i, dt__blob v, int *rc)
{
    if (*rc != SQLITE_OK) {
        return;
    }
    if (v.data == NULL) {
        *rc = sqlite3_bind_null(st, i);
    } else {
        /* A non-NULL pointer with length 0 binds an empty blob, not NULL. */
        *rc = sqlite3_bind_blob64(st, i, v.data, (sqlite3_uint64)v.len, SQLITE_STATIC);
    }
}

void dt__store_bind_i64(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_bind_int64(st, i, (sqlite3_int64)v);
    }
}

dt_status dt__store_exec(dt__store *s, sqlite3_stmt *st, int bind_rc, const char *what)
{
    dt_status status = DT_OK;
    if (bind_rc != SQLITE_OK) {
        status = dt__store_fail(s, bind_rc, what);
    } else {
        int rc;
        do {
            rc = sqlite3_step(st);
            s->stats.steps++;
        } while (rc == SQLITE_ROW);
        if (rc != SQLITE_DONE) {
            status = dt__store_fail(s, rc, what);
        }
    }
    sqlite3_reset(st);
    return status;
}

dt_status dt__store_step_row(dt__store *s, sqlite3_stmt *st, int bind_rc, const char *what,
                             bool *out_row)
{
    int rc = bind_rc;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        s->stats.steps++;
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *out_row = rc == SQLITE_ROW;
        return DT_OK;
    }
    dt_status status = dt__store_fail(s, rc, what);
    sqlite3_reset(st);
    return status;
}

dt_status dt__store_col_text(dt__store *s, sqlite3_stmt *st, int col, dt__arena *a,
                             const char **out)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        *out = NULL;
        return DT_OK;
    }
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *copy = dt__arena_memdup(a, p != NULL ? (const void *)p : "", n);
    if (copy == NULL) {
        return dt__store_failf(s, DT_ENOMEM, "out of memory copying a row of %s", s->path);
    }
    *out = copy;
    return DT_OK;
}

dt_status dt__store_col_blob(dt__store *s, sqlite3_stmt *st, int col, dt__arena *a, dt__blob *out)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        *out = (dt__blob){NULL, 0};
        return DT_OK;
    }
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    uint8_t *copy = dt__arena_memdup(a, p != NULL ? p : "", n);
    if (copy == NULL) {
        return dt__store_failf(s, DT_ENOMEM, "out of memory copying a row of %s", s->path);
    }
    *out = (dt__blob){copy, n};
    return DT_OK;
}

static dt_status read_instance_payloads(dt__store *s, sqlite3_stmt *st, dt__arena *a,
                                        dt__instance_row *row)
{
    dt_status status = dt__store_col_blob(s, st, 10, a, &row->input);
    if (status == DT_OK) {
        status = dt__store_col_blob(s, st, 11, a, &row->output);
    }
    if (status == DT_OK) {
        status = dt__store_col_blob(s, st, 12, a, &row->custom_status);
    }
    if (status == DT_OK) {
        status = dt__store_col_blob(s, st, 13, a, &row->failure_details);
    }
    if (status == DT_OK) {
        status = dt__store_col_blob(s, st, 14, a, &row->tags);
    }
    return status;
}

dt_status dt__store_read_instance(dt__store *s, sqlite3_stmt *st, dt__arena *a, bool with_payloads,
                                  dt__instance_row *row)
{
    *row = (dt__instance_row){0};
    dt_status status = dt__store_col_text(s, st, 0, a, &row->instance_id);
    if (status == DT_OK) {
        status = dt__store_col_text(s, st, 1, a, &row->execution_id);
    }
    if (status == DT_OK) {
        status = dt__store_col_text(s, st, 2, a, &row->name);
    }
    if (status == DT_OK) {
        status = dt__store_col_text(s, st, 3, a, &row->version);
    }
    if (status == DT_OK) {
        status = dt__store_col_text(s, st, 8, a, &row->parent_instance_id);
    }
    if (status == DT_OK && with_payloads) {
        status = read_instance_payloads(s, st, a, row);
    }
    row->runtime_status = (int32_t)sqlite3_column_int64(st, 4);
    row->created_ms = (int64_t)sqlite3_column_int64(st, 5);
    row->last_updated_ms = (int64_t)sqlite3_column_int64(st, 6);
    row->completed_ms = (int64_t)sqlite3_column_int64(st, 7);
    row->history_len = (uint64_t)sqlite3_column_int64(st, 9);
    return status;
}

static dt_status check_epoch(dt__store *s, uint64_t expected_epoch)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = dt__store_stmt(s, DT__SQL_EPOCH_GET, &st);
    if (status == DT_OK) {
        status = dt__store_step_row(s, st, SQLITE_OK, "read epoch", &row);
    }
    if (status != DT_OK) {
        return status;
    }
    if (!row) {
        sqlite3_reset(st);
        return dt__store_failf(s, DT_ECORRUPT, "partition row missing in %s", s->path);
    }
    uint64_t epoch = (uint64_t)sqlite3_column_int64(st, 0);
    if (epoch != expected_epoch) {
        const unsigned char *owner = sqlite3_column_text(st, 1);
        status = dt__store_failf(
            s, DT_EFENCED, "fenced: %s is at epoch %" PRIu64 " (owner '%s'), writer holds %" PRIu64,
            s->path, epoch, owner != NULL ? (const char *)owner : "", expected_epoch);
    }
    sqlite3_reset(st);
    return status;
}

dt_status dt__store_begin_immediate(dt__store *s)
{
    /* COMMIT and ROLLBACK are prepared before the transaction starts, so that ending it can
     * never fail for want of a statement. */
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_COMMIT, &st);
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_ROLLBACK, &st);
    }
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_BEGIN_WRITE, &st);
    }
    if (status == DT_OK) {
        s->stats.write_txns++;
    }
    return status == DT_OK ? dt__store_exec(s, st, SQLITE_OK, "begin write transaction") : status;
}

dt_status dt__store_begin_write(dt__store *s, uint64_t expected_epoch)
{
    dt_status status = dt__store_begin_immediate(s);
    if (status != DT_OK) {
        return status;
    }
    status = check_epoch(s, expected_epoch);
    if (status == DT_EFENCED) {
        dt__store_applied_off(s); /* another handle owns the file: its identities are unknown */
    }
    if (status != DT_OK) {
        return dt__store_end_write(s, status);
    }
    return DT_OK;
}

static void rollback(dt__store *s)
{
    if (sqlite3_get_autocommit(s->db)) {
        return; /* SQLite already rolled back (some I/O and memory errors do) */
    }
    sqlite3_stmt *st = s->stmts[DT__SQL_ROLLBACK]; /* prepared by dt__store_begin_immediate */
    int rc = sqlite3_step(st);
    s->stats.steps++;
    sqlite3_reset(st);
    (void)rc; /* a failed ROLLBACK leaves nothing more to try; the next BEGIN will report it */
}

dt_status dt__store_end_write(dt__store *s, dt_status st)
{
    if (st == DT_OK) {
        sqlite3_stmt *commit = NULL;
        st = dt__store_stmt(s, DT__SQL_COMMIT, &commit);
        if (st == DT_OK) {
            st = dt__store_exec(s, commit, SQLITE_OK, "commit");
        }
    }
    if (st != DT_OK) {
        rollback(s);
    }
    return st;
}

dt_status dt__store_check_limit(dt__store *s, size_t limit, const char *what)
{
    if (limit == 0 || limit > DT__STORE_MAX_PAGE) {
        return dt__store_failf(s, DT_EINVAL, "%s: limit %zu outside 1..%d", what, limit,
                               DT__STORE_MAX_PAGE);
    }
    return DT_OK;
}

void *dt__store_vec_push(dt__store_vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap == 0 ? 16 : v->cap * 2;
        if (cap > SIZE_MAX / v->item_size) {
            return NULL;
        }
        void *items = dt_realloc(v->items, cap * v->item_size);
        if (items == NULL) {
            return NULL;
        }
        v->items = items;
        v->cap = cap;
    }
    uint8_t *slot = (uint8_t *)v->items + v->n * v->item_size;
    memset(slot, 0, v->item_size);
    v->n++;
    return slot;
}

dt_status dt__store_vec_finish(dt__store *s, dt__store_vec *v, dt__arena *a, void **out)
{
    void *copy = NULL;
    if (v->n > 0) {
        copy = dt__arena_alloc(a, v->n * v->item_size);
        if (copy == NULL) {
            dt__store_vec_drop(v);
            return dt__store_failf(s, DT_ENOMEM, "out of memory reading %s", s->path);
        }
        memcpy(copy, v->items, v->n * v->item_size);
    }
    dt__store_vec_drop(v);
    *out = copy;
    return DT_OK;
}

void dt__store_vec_drop(dt__store_vec *v)
{
    dt_free(v->items);
    v->items = NULL;
    v->cap = 0;
}

dt_status dt__store_collect(dt__store *s, sqlite3_stmt *st, int bind_rc, const char *what,
                            dt__store_row_reader read, const void *ctx, dt__store_vec *v,
                            dt__arena *a, void **out)
{
    dt_status status = DT_OK;
    bool row = true;
    while (status == DT_OK) {
        status = dt__store_step_row(s, st, bind_rc, what, &row);
        if (status != DT_OK || !row) {
            break;
        }
        void *item = dt__store_vec_push(v);
        status = item != NULL ? read(s, st, a, item, ctx)
                              : dt__store_failf(s, DT_ENOMEM, "%s: out of memory", what);
    }
    sqlite3_reset(st);
    if (status != DT_OK) {
        dt__store_vec_drop(v);
        return status;
    }
    return dt__store_vec_finish(s, v, a, out);
}
