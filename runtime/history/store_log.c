/*
 * The file as a view of the partition's log (runtime/journal): the log position it reflects,
 * the log's origin, and the online backup a snapshot is made from.
 */
#include <stdio.h>
#include <unistd.h>

#include "store_db_int.h"

dt_status dt__store_log_pos(dt__store *s, uint64_t *out_seq, int64_t *out_origin)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_LOG_POS_GET, &st);
    bool row = false;
    if (status == DT_OK) {
        status = dt__store_step_row(s, st, SQLITE_OK, "read log position", &row);
    }
    if (status != DT_OK) {
        return status;
    }
    if (!row) {
        status = dt__store_failf(s, DT_ECORRUPT, "partition row missing in %s", s->path);
    } else {
        *out_seq = (uint64_t)sqlite3_column_int64(st, 0);
        *out_origin = (int64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return status;
}

dt_status dt__store_log_origin_set(dt__store *s, uint64_t expected_epoch, int64_t origin)
{
    dt_status status = dt__store_begin_write(s, expected_epoch);
    if (status != DT_OK) {
        return status;
    }
    sqlite3_stmt *st = NULL;
    status = dt__store_stmt(s, DT__SQL_LOG_ORIGIN_SET, &st);
    if (status == DT_OK) {
        int rc = SQLITE_OK;
        dt__store_bind_i64(st, 1, origin, &rc);
        status = dt__store_exec(s, st, rc, "record log origin");
    }
    return dt__store_end_write(s, status);
}

dt_status dt__store_backup(dt__store *s, const char *dest_path)
{
    if (s->open_batch != NULL || dest_path == NULL) {
        return dt__store_failf(s, DT_EINVAL, "backup of %s: %s", s->path,
                               dest_path == NULL ? "no destination" : "a batch is open");
    }
    if (access(dest_path, F_OK) == 0) {
        return dt__store_failf(s, DT_EEXIST, "backup of %s: %s exists", s->path, dest_path);
    }
    sqlite3 *dest = NULL;
    int rc = sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    dt_status status = DT_OK;
    if (rc == SQLITE_OK) {
        /* One step over all pages: the source is read in one read transaction, so the copy is
         * one consistent state even while other handles write. */
        sqlite3_backup *bk = sqlite3_backup_init(dest, "main", s->db, "main");
        if (bk == NULL) {
            rc = sqlite3_errcode(dest);
        } else {
            rc = sqlite3_backup_step(bk, -1);
            int fin = sqlite3_backup_finish(bk);
            rc = rc == SQLITE_DONE ? fin : rc;
        }
    }
    if (rc == SQLITE_OK) {
        /* The copy keeps the source's WAL mode in its header; a restored file is reopened in WAL
         * anyway, and DELETE mode here makes the copy one file with nothing beside it. */
        rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        status = dt__store_failf(s, dt__store_map_rc(rc), "backup of %s to %s: %s", s->path,
                                 dest_path, dest != NULL ? sqlite3_errmsg(dest) : "out of memory");
    }
    sqlite3_close(dest);
    if (status != DT_OK) {
        unlink(dest_path);
    }
    return status;
}
