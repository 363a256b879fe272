/*
 * The store handle: open (validate, WAL, pragmas, migrations), close, error text, and the
 * partition epoch used for fencing.
 *
 * Opening never trusts the file: a file that SQLite cannot read, a SQLite file of another
 * application and a file written by a newer build are each reported with their own status and a
 * message naming the file, before anything is written to it.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common_int.h"
#include "store_db_int.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DEFAULT_MAX_BLOB_BYTES  ((size_t)4 << 20)
#define DEFAULT_MAX_HISTORY_LEN 100000u
/* Keep an idle WAL file from staying large after a burst (bytes). */
#define JOURNAL_SIZE_LIMIT (64 << 20)

void dt__store_options_init(dt__store_options *o)
{
    *o = (dt__store_options){
        .synchronous_full = false,
        .busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS,
        .cache_size_kib = 0,
        .max_blob_bytes = DEFAULT_MAX_BLOB_BYTES,
        .max_history_len = DEFAULT_MAX_HISTORY_LEN,
        .applied_keep_ms = DT__STORE_APPLIED_KEEP_MS,
    };
}

static dt_status resolve_options(const dt__store_options *in, dt__store_options *out)
{
    dt__store_options_init(out);
    if (in == NULL) {
        return DT_OK;
    }
    if (in->busy_timeout_ms < 0 || in->cache_size_kib < 0 || in->applied_keep_ms < 0) {
        return DT_EINVAL;
    }
    out->synchronous_full = in->synchronous_full;
    if (in->busy_timeout_ms > 0) {
        out->busy_timeout_ms = in->busy_timeout_ms;
    }
    out->cache_size_kib = in->cache_size_kib;
    out->background_checkpoint = in->background_checkpoint;
    if (in->max_blob_bytes > 0) {
        out->max_blob_bytes = in->max_blob_bytes;
    }
    if (in->max_history_len > 0) {
        out->max_history_len = in->max_history_len;
    }
    if (in->applied_keep_ms > 0) {
        out->applied_keep_ms = in->applied_keep_ms;
    }
    return DT_OK;
}

/* Runs a PRAGMA (or other statement) that is not cached, ignoring any rows it returns. */
static dt_status exec_sql(dt__store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? DT_OK : dt__store_fail(s, rc, what);
}

static dt_status enable_wal(dt__store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    dt_status status = DT_OK;
    if (rc != SQLITE_ROW) {
        status = dt__store_fail(s, rc, "enable WAL");
    } else {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
            status = dt__store_failf(s, DT_EIO, "%s: WAL mode unavailable (journal_mode %s)",
                                     s->path, mode != NULL ? (const char *)mode : "?");
        }
    }
    sqlite3_finalize(st);
    return status;
}

static dt_status configure(dt__store *s)
{
    char sql[128];
    dt_status status = enable_wal(s);
    if (status == DT_OK) {
        status = exec_sql(s,
                          s->opts.synchronous_full ? "PRAGMA synchronous = FULL"
                                                   : "PRAGMA synchronous = NORMAL",
                          "set synchronous");
    }
    if (status == DT_OK && s->opts.cache_size_kib > 0) {
        (void)snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", s->opts.cache_size_kib);
        status = exec_sql(s, sql, "set cache_size");
    }
    if (status == DT_OK) {
        (void)snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d", JOURNAL_SIZE_LIMIT);
        status = exec_sql(s, sql, "set journal_size_limit");
    }
    return status;
}

static dt_status open_db(dt__store *s)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
        dt_status st = rc == SQLITE_NOMEM ? DT_ENOMEM : DT_EIO;
        return dt__store_failf(s, st, "cannot open %s: %s", s->path, msg);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->opts.busy_timeout_ms);
    return DT_OK;
}

static dt_status store_new(const char *path, const dt__store_options *opts, dt__store **out)
{
    dt__store *s = dt_calloc(1, sizeof(*s));
    if (s == NULL) {
        return DT_ENOMEM;
    }
    s->path = dt_strdup(path);
    if (s->path == NULL) {
        dt_free(s);
        return DT_ENOMEM;
    }
    dt_status status = resolve_options(opts, &s->opts);
    if (status != DT_OK) {
        dt__store_close(s);
        return status;
    }
    *out = s;
    return DT_OK;
}

/* One attempt at opening: connection, schema check, pragmas, migrations. */
static dt_status open_once(dt__store *s)
{
    dt_status status = open_db(s);
    if (status == DT_OK) {
        status = dt__store_check_schema(s);
    }
    if (status == DT_OK) {
        status = configure(s);
    }
    if (status == DT_OK) {
        status = dt__store_migrate(s);
    }
    return status;
}

/* Drops the connection of a failed attempt (keeping the handle and its error text). */
static void close_db(dt__store *s)
{
    for (size_t i = 0; i < DT__SQL_COUNT; i++) {
        sqlite3_finalize(s->stmts[i]);
        s->stmts[i] = NULL;
    }
    sqlite3_close(s->db);
    s->db = NULL;
}

dt_status dt__store_open(const char *path, const dt__store_options *opts, dt__store **out,
                         char *errbuf, size_t errlen)
{
    dt__store *s = NULL;
    if (path == NULL || path[0] == '\0' || out == NULL) {
        dt__errf(errbuf, errlen, "store open: path and out are required");
        return DT_EINVAL;
    }
    dt_status status = store_new(path, opts, &s);
    if (status != DT_OK) {
        dt__errf(errbuf, errlen, "store open %s: %s", path, dt_status_str(status));
        return status;
    }
    /* Another process may be creating the same file right now (a partition changing hands, the
     * query service opening beside the partition thread): switching to WAL then reports "database
     * is locked" without waiting, and reading a half-written header an I/O error. Both pass:
     * retry the whole open until the busy timeout. Corrupt, foreign and newer files fail at once.
     */
    int64_t deadline = dt__mono_ms() + s->opts.busy_timeout_ms;
    for (int attempt = 0;; attempt++) {
        status = open_once(s);
        bool transient = status == DT_EBUSY || status == DT_EIO;
        if (status == DT_OK || !transient || dt__mono_ms() >= deadline) {
            break;
        }
        close_db(s);
        struct timespec ts = {0, (long)(5 + (attempt < 10 ? attempt * 5 : 50)) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (status != DT_OK) {
        dt__errf(errbuf, errlen, "%s", s->errmsg);
        dt__store_close(s);
        return status;
    }
    if (s->opts.background_checkpoint) {
        (void)dt__store_ckpt_start(s); /* without it, SQLite checkpoints inside the COMMIT */
    }
    *out = s;
    return DT_OK;
}

void dt__store_close(dt__store *s)
{
    if (s == NULL) {
        return;
    }
    dt__store_ckpt_stop(s); /* first: the last connection to close checkpoints the rest */
    for (size_t i = 0; i < DT__SQL_COUNT; i++) {
        sqlite3_finalize(s->stmts[i]);
    }
    sqlite3_close(s->db);
    dt__store_applied_off(s);
    dt_free(s->scratch);
    dt_free(s->path);
    dt_free(s);
}

const char *dt__store_errmsg(const dt__store *s)
{
    return s != NULL ? s->errmsg : "no store handle";
}

void dt__store_get_stats(const dt__store *s, dt__store_stats *out)
{
    *out = s->stats;
}

const char *dt__store_path(const dt__store *s)
{
    return s->path;
}

static bool is_pragma_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!isalpha((unsigned char)*p) && *p != '_') {
            return false;
        }
    }
    return true;
}

dt_status dt__store_pragma_int(dt__store *s, const char *name, int64_t *out_value)
{
    if (!is_pragma_name(name)) {
        return dt__store_failf(s, DT_EINVAL, "pragma name '%s' rejected", name ? name : "");
    }
    char sql[96];
    (void)snprintf(sql, sizeof(sql), "PRAGMA %s", name);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    dt_status status = DT_OK;
    if (rc == SQLITE_ROW) {
        *out_value = (int64_t)sqlite3_column_int64(st, 0);
    } else {
        status = rc == SQLITE_DONE ? dt__store_failf(s, DT_ENOTFOUND, "pragma %s: no value", name)
                                   : dt__store_fail(s, rc, "pragma");
    }
    sqlite3_finalize(st);
    return status;
}

static dt_status read_epoch(dt__store *s, dt__arena *arena, uint64_t *out_epoch,
                            const char **out_owner)
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
    const char *owner = NULL;
    if (!row) {
        status = dt__store_failf(s, DT_ECORRUPT, "partition row missing in %s", s->path);
    } else if (arena != NULL) {
        status = dt__store_col_text(s, st, 1, arena, &owner);
    }
    if (status == DT_OK) {
        *out_epoch = (uint64_t)sqlite3_column_int64(st, 0);
        if (out_owner != NULL) {
            *out_owner = owner;
        }
    }
    sqlite3_reset(st);
    return status;
}

dt_status dt__store_epoch(dt__store *s, dt__arena *arena, uint64_t *out_epoch,
                          const char **out_owner)
{
    return read_epoch(s, arena, out_epoch, out_owner);
}

static dt_status bump_epoch(dt__store *s, const char *owner_id)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_EPOCH_BUMP, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, owner_id, &rc);
    dt__store_bind_i64(st, 2, dt__now_ms(), &rc);
    return dt__store_exec(s, st, rc, "claim partition");
}

dt_status dt__store_claim(dt__store *s, const char *owner_id, uint64_t *out_epoch)
{
    if (owner_id == NULL || strlen(owner_id) > DT__STORE_MAX_ID_LEN) {
        return dt__store_failf(s, DT_EINVAL, "claim %s: owner id missing or too long", s->path);
    }
    dt_status status = dt__store_begin_immediate(s);
    if (status != DT_OK) {
        return status;
    }
    uint64_t epoch = 0;
    status = bump_epoch(s, owner_id);
    if (status == DT_OK) {
        status = read_epoch(s, NULL, &epoch, NULL);
    }
    if (status == DT_OK) {
        /* Inside the claim's transaction: exactly the identities written before it. */
        dt__store_applied_rebuild(s);
        s->parked.known = false; /* another owner may have parked or applied messages */
    }
    status = dt__store_end_write(s, status);
    if (status != DT_OK) {
        dt__store_applied_off(s);
    }
    if (status == DT_OK) {
        *out_epoch = epoch;
    }
    return status;
}
