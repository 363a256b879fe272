/*
 * Reads of one partition's store: an instance row, its history, applied identities, due timers
 * and the outbox. Each read is one statement (one consistent snapshot) whose results are copied
 * into the caller's arena; statements are reset before returning so that no read snapshot stays
 * open between calls.
 */
#include <inttypes.h>
#include <string.h>

#include "common_int.h"
#include "store_db_int.h"

static dt_status check_id(dt__store *s, const char *id, const char *what)
{
    if (id == NULL || id[0] == '\0') {
        return dt__store_failf(s, DT_EINVAL, "%s in %s: instance id missing", what, s->path);
    }
    return DT_OK;
}

dt_status dt__store_get_instance(dt__store *s, const char *instance_id, dt__arena *arena,
                                 dt__instance_row *out_row)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = check_id(s, instance_id, "get instance");
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_INST_GET, &st);
    }
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    status = dt__store_step_row(s, st, rc, "get instance", &row);
    if (status != DT_OK) {
        return status;
    }
    if (!row) {
        status =
            dt__store_failf(s, DT_ENOTFOUND, "instance '%s' not found in %s", instance_id, s->path);
    } else {
        dt__instance_row r;
        status = dt__store_read_instance(s, st, arena, true, &r);
        if (status == DT_OK) {
            *out_row = r;
        }
    }
    sqlite3_reset(st);
    return status;
}

static dt_status corrupt_row(dt__store *s, const char *instance_id, int64_t seq)
{
    return dt__store_failf(s, DT_ECORRUPT,
                           "history of '%s' in %s: row at seq %" PRId64 " is damaged", instance_id,
                           s->path, seq);
}

/* Appends a copy of bytes [p, p + len) to v (NUL-terminated in the arena). */
static dt_status push_copy(dt__store *s, dt__arena *arena, dt__store_vec *v, const uint8_t *p,
                           size_t len)
{
    dt__blob *slot = dt__store_vec_push(v);
    uint8_t *copy =
        slot != NULL ? dt__arena_memdup(arena, len > 0 ? p : (const uint8_t *)"", len) : NULL;
    if (copy == NULL) {
        return dt__store_failf(s, DT_ENOMEM, "out of memory loading history from %s", s->path);
    }
    *slot = (dt__blob){copy, len};
    return DT_OK;
}

/* Appends the events of the current history row to v, checking that the row continues the
 * sequence and that its count and bytes agree (store_schema.c describes the format). */
static dt_status push_row(dt__store *s, sqlite3_stmt *st, dt__arena *arena, dt__store_vec *v,
                          const char *instance_id)
{
    int64_t seq = (int64_t)sqlite3_column_int64(st, 0);
    int64_t n = (int64_t)sqlite3_column_int64(st, 1);
    if (seq != (int64_t)v->n) {
        return dt__store_failf(s, DT_ECORRUPT,
                               "history of '%s' in %s has seq %" PRId64 " where %zu was expected",
                               instance_id, s->path, seq, v->n);
    }
    const uint8_t *p = sqlite3_column_blob(st, 2);
    size_t bytes = (size_t)sqlite3_column_bytes(st, 2);
    if (p == NULL) {
        p = (const uint8_t *)""; /* an empty blob */
    }
    const uint8_t *end = p + bytes;
    if (n == 1) {
        return push_copy(s, arena, v, p, bytes);
    }
    if (n < 1) {
        return corrupt_row(s, instance_id, seq);
    }
    for (int64_t k = 0; k < n; k++) {
        uint64_t len = 0;
        if (!dt__varint_get(&p, end, &len) || len > (uint64_t)(end - p)) {
            return corrupt_row(s, instance_id, seq);
        }
        dt_status status = push_copy(s, arena, v, p, (size_t)len);
        if (status != DT_OK) {
            return status;
        }
        p += len;
    }
    return p == end ? DT_OK : corrupt_row(s, instance_id, seq);
}

dt_status dt__store_load_history(dt__store *s, const char *instance_id, dt__arena *arena,
                                 dt__blob **out_events, size_t *out_n)
{
    sqlite3_stmt *st = NULL;
    dt_status status = check_id(s, instance_id, "load history");
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_HIST_LOAD, &st);
    }
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    dt__store_vec v = {.item_size = sizeof(dt__blob)};
    bool row = true;
    while (status == DT_OK) {
        status = dt__store_step_row(s, st, rc, "load history", &row);
        if (status != DT_OK || !row) {
            break;
        }
        status = push_row(s, st, arena, &v, instance_id);
    }
    sqlite3_reset(st);
    void *events = NULL;
    if (status != DT_OK) {
        dt__store_vec_drop(&v);
        return status;
    }
    status = dt__store_vec_finish(s, &v, arena, &events);
    if (status == DT_OK) {
        *out_events = events;
        *out_n = v.n;
    }
    return status;
}

dt_status dt__store_is_applied(dt__store *s, const char *instance_id, const char *dedupe_id,
                               bool *out_applied)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = check_id(s, instance_id, "is applied");
    if (status == DT_OK && dedupe_id == NULL) {
        status = dt__store_failf(s, DT_EINVAL, "is applied in %s: dedupe id missing", s->path);
    }
    if (status == DT_OK && !dt__store_applied_maybe(s, instance_id, dedupe_id)) {
        s->stats.filter_answers++;
        *out_applied = false;
        return DT_OK;
    }
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_APPLIED_HAS, &st);
    }
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    dt__store_bind_text(st, 2, dedupe_id, &rc);
    status = dt__store_step_row(s, st, rc, "is applied", &row);
    if (status == DT_OK) {
        *out_applied = row;
        sqlite3_reset(st);
    }
    return status;
}

static dt_status read_timer(dt__store *s, sqlite3_stmt *st, dt__arena *a, void *item,
                            const void *ctx)
{
    (void)ctx;
    dt__timer_row *t = item;
    t->id = (int64_t)sqlite3_column_int64(st, 0);
    t->fire_at_ms = (int64_t)sqlite3_column_int64(st, 2);
    dt_status status = dt__store_col_text(s, st, 1, a, &t->instance_id);
    if (status == DT_OK) {
        status = dt__store_col_text(s, st, 3, a, &t->dedupe_id);
    }
    return status == DT_OK ? dt__store_col_blob(s, st, 4, a, &t->payload) : status;
}

static dt_status read_outbox(dt__store *s, sqlite3_stmt *st, dt__arena *a, void *item,
                             const void *ctx)
{
    (void)ctx;
    dt__outbox_row *o = item;
    o->id = (int64_t)sqlite3_column_int64(st, 0);
    dt_status status = dt__store_col_text(s, st, 1, a, &o->msg.subject);
    if (status == DT_OK) {
        status = dt__store_col_text(s, st, 2, a, &o->msg.msg_id);
    }
    if (status == DT_OK) {
        status = dt__store_col_blob(s, st, 3, a, &o->msg.payload);
    }
    return status == DT_OK ? dt__store_col_blob(s, st, 4, a, &o->msg.headers) : status;
}

dt_status dt__store_due_timers(dt__store *s, int64_t now_ms, size_t limit, dt__arena *arena,
                               dt__timer_row **out_rows, size_t *out_n)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_check_limit(s, limit, "due timers");
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_TIMER_DUE, &st);
    }
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_i64(st, 1, now_ms, &rc);
    dt__store_bind_i64(st, 2, (int64_t)limit, &rc);
    dt__store_vec v = {.item_size = sizeof(dt__timer_row)};
    void *rows = NULL;
    status = dt__store_collect(s, st, rc, "due timers", read_timer, NULL, &v, arena, &rows);
    if (status == DT_OK) {
        *out_rows = rows;
        *out_n = v.n;
        /* Fewer than asked: the next timer is later than now_ms, or one of these (about to be
         * deleted by the commit that fires them): read the floor again next time. */
        s->timer_floor_known = s->timer_floor_known && v.n == limit;
    }
    return status;
}

dt_status dt__store_timer_floor_ms(dt__store *s, int64_t *out_ms)
{
    if (!s->timer_floor_known) {
        int64_t next = 0;
        dt_status status = dt__store_next_timer_ms(s, &next);
        if (status != DT_OK && status != DT_ENOTFOUND) {
            return status;
        }
        s->timer_floor_ms = status == DT_OK ? next : INT64_MAX;
        s->timer_floor_known = true;
    }
    *out_ms = s->timer_floor_ms;
    return DT_OK;
}

dt_status dt__store_next_timer_ms(dt__store *s, int64_t *out_fire_at_ms)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = dt__store_stmt(s, DT__SQL_TIMER_NEXT, &st);
    if (status == DT_OK) {
        status = dt__store_step_row(s, st, SQLITE_OK, "next timer", &row);
    }
    if (status != DT_OK) {
        return status;
    }
    if (!row || sqlite3_column_type(st, 0) == SQLITE_NULL) {
        status = dt__store_failf(s, DT_ENOTFOUND, "no timers in %s", s->path);
    } else {
        *out_fire_at_ms = (int64_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    return status;
}

dt_status dt__store_outbox_list(dt__store *s, int64_t after_id, size_t limit, dt__arena *arena,
                                dt__outbox_row **out_rows, size_t *out_n)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_check_limit(s, limit, "outbox list");
    if (status == DT_OK) {
        status = dt__store_stmt(s, DT__SQL_OUTBOX_LIST, &st);
    }
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_i64(st, 1, after_id, &rc);
    dt__store_bind_i64(st, 2, (int64_t)limit, &rc);
    dt__store_vec v = {.item_size = sizeof(dt__outbox_row)};
    void *rows = NULL;
    status = dt__store_collect(s, st, rc, "outbox list", read_outbox, NULL, &v, arena, &rows);
    if (status == DT_OK) {
        *out_rows = rows;
        *out_n = v.n;
    }
    return status;
}
