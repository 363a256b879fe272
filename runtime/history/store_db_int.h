/*
 * store_db_int.h: the store handle, its statement cache and SQLite helpers, shared by the .c files
 * of runtime/history only (the rest of the runtime uses store_int.h).
 *
 * Every SQL text the store runs is listed once in DT__STORE_SQL_MAP and prepared lazily, once per
 * handle, with SQLITE_PREPARE_PERSISTENT; the hot path never re-prepares. A statement borrowed
 * from the cache must be reset before the function that borrowed it returns (an un-reset SELECT
 * would keep a read snapshot open and block WAL checkpoints).
 *
 * Bindings use SQLITE_STATIC: bound memory is borrowed from the caller and must stay valid until
 * the statement is stepped and reset, which always happens inside the same call.
 */
#ifndef DT_STORE_DB_INT_H
#define DT_STORE_DB_INT_H

#include <sqlite3.h>

#include "store_int.h"

/* Columns of an instance row, in the order dt__store_read_instance expects them. */
#define DT__STORE_INST_COLS                                                                        \
    "instance_id, execution_id, name, version, status, created_ms, last_updated_ms, "              \
    "completed_ms, parent_instance_id, history_len, input, output, custom_status, "                \
    "failure_details, tags"

/* WHERE clause of a query filter: ?1 status mask, ?2 name, ?3 id prefix, ?4 from, ?5 to,
 * ?8 completed before (?6 and ?7 are the query's paging). Entities ("@..." IDs) only for a
 * prefix that starts with "@" (an entity query), never in listings or purges of instances. */
#define DT__STORE_FILTER                                                                           \
    "(?1 = 0 OR ((?1 >> status) & 1) = 1) AND (?2 IS NULL OR name = ?2) "                          \
    "AND (?3 IS NULL OR substr(instance_id, 1, length(?3)) = ?3) "                                 \
    "AND created_ms >= ?4 AND (?5 = 0 OR created_ms < ?5) "                                        \
    "AND (?8 = 0 OR (completed_ms > 0 AND completed_ms < ?8)) "                                    \
    "AND (substr(instance_id, 1, 1) <> '@' OR substr(?3, 1, 1) = '@')"

/* Entity IDs ("@..."), as the partial index applied_age (migration 5) states them: a statement
 * uses that index only when its WHERE repeats these terms word for word. */
#define DT__STORE_ENTITY_RANGE "instance_id >= '@' AND instance_id < 'A'"

#define DT__STORE_SQL_MAP(XX)                                                                      \
    XX(BEGIN_WRITE, "BEGIN IMMEDIATE")                                                             \
    XX(COMMIT, "COMMIT")                                                                           \
    XX(ROLLBACK, "ROLLBACK")                                                                       \
    XX(EPOCH_GET, "SELECT epoch, owner FROM partition WHERE id = 1")                               \
    XX(LOG_POS_GET, "SELECT log_seq, log_origin FROM partition WHERE id = 1")                      \
    XX(LOG_SEQ_SET, "UPDATE partition SET log_seq = ?1 WHERE id = 1")                              \
    XX(LOG_ORIGIN_SET, "UPDATE partition SET log_seq = 0, log_origin = ?1 WHERE id = 1")           \
    XX(EPOCH_BUMP,                                                                                 \
       "UPDATE partition SET epoch = epoch + 1, owner = ?1, claimed_ms = ?2 WHERE id = 1")         \
    XX(INST_LEN, "SELECT history_len FROM instances WHERE instance_id = ?1")                       \
    XX(INST_UPSERT,                                                                                \
       "INSERT INTO instances (" DT__STORE_INST_COLS ") VALUES "                                   \
       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "                       \
       "ON CONFLICT (instance_id) DO UPDATE SET execution_id = ?2, name = ?3, version = ?4, "      \
       "status = ?5, created_ms = ?6, last_updated_ms = ?7, completed_ms = ?8, "                   \
       "parent_instance_id = ?9, history_len = ?10, input = ?11, output = ?12, "                   \
       "custom_status = ?13, failure_details = ?14, tags = ?15")                                   \
    XX(INST_UPSERT_AT, "INSERT INTO instances (" DT__STORE_INST_COLS ") VALUES "                   \
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "       \
                       "ON CONFLICT (instance_id) DO UPDATE SET execution_id = ?2, name = ?3, "    \
                       "version = ?4, status = ?5, created_ms = ?6, last_updated_ms = ?7, "        \
                       "completed_ms = ?8, parent_instance_id = ?9, history_len = ?10, "           \
                       "input = ?11, output = ?12, custom_status = ?13, failure_details = ?14, "   \
                       "tags = ?15 WHERE history_len = 0")                                         \
    XX(INST_REPLACE_AT, "UPDATE instances SET execution_id = ?2, name = ?3, version = ?4, "        \
                        "status = ?5, created_ms = ?6, last_updated_ms = ?7, completed_ms = ?8, "  \
                        "parent_instance_id = ?9, history_len = ?10, input = ?11, output = ?12, "  \
                        "custom_status = ?13, failure_details = ?14, tags = ?15 "                  \
                        "WHERE instance_id = ?1 AND history_len = ?16")                            \
    XX(INST_UPDATE_AT,                                                                             \
       "UPDATE instances SET status = ?2, last_updated_ms = ?3, completed_ms = ?4, "               \
       "history_len = ?5, output = ?6, custom_status = ?7, failure_details = ?8 "                  \
       "WHERE instance_id = ?1 AND history_len = ?9")                                              \
    XX(INST_GET, "SELECT " DT__STORE_INST_COLS " FROM instances WHERE instance_id = ?1")           \
    XX(INST_DEL_IF, "DELETE FROM instances WHERE instance_id = ?1 AND "                            \
                    "(?2 = 0 OR ((?2 >> status) & 1) = 1) AND (((?2 >> 31) & 1) = 0 OR "           \
                    "(output IS NULL AND custom_status IS NULL AND NOT EXISTS "                    \
                    "(SELECT 1 FROM timers WHERE instance_id = ?1)))")                             \
    XX(INST_QUERY, "SELECT " DT__STORE_INST_COLS " FROM instances WHERE " DT__STORE_FILTER         \
                   " AND instance_id > ?6 ORDER BY instance_id LIMIT ?7")                          \
    XX(INST_COUNT, "SELECT count(*) FROM instances WHERE " DT__STORE_FILTER)                       \
    XX(HIST_RESET, "DELETE FROM history WHERE instance_id = ?1")                                   \
    XX(HIST_APPEND, "INSERT INTO history (instance_id, seq, n, event) VALUES (?1, ?2, ?3, ?4)")    \
    XX(HIST_LOAD, "SELECT seq, n, event FROM history WHERE instance_id = ?1 ORDER BY seq")         \
    XX(APPLIED_ADD,                                                                                \
       "INSERT INTO applied (instance_id, dedupe_id, applied_ms) VALUES (?1, ?2, ?3)")             \
    XX(APPLIED_AGED, "DELETE FROM applied WHERE instance_id = ?1 AND " DT__STORE_ENTITY_RANGE      \
                     " AND applied_ms < ?2")                                                       \
    XX(APPLIED_PRUNE, "DELETE FROM applied WHERE instance_id = ?1")                                \
    XX(APPLIED_HAS, "SELECT 1 FROM applied WHERE instance_id = ?1 AND dedupe_id = ?2")             \
    XX(APPLIED_COUNT, "SELECT count(*) FROM applied")                                              \
    XX(APPLIED_ALL, "SELECT instance_id, dedupe_id FROM applied")                                  \
    XX(TIMER_ADD,                                                                                  \
       "INSERT INTO timers (instance_id, fire_at_ms, dedupe_id, payload) VALUES (?1, ?2, ?3, ?4)") \
    XX(TIMER_DEL_INST, "DELETE FROM timers WHERE instance_id = ?1")                                \
    XX(TIMER_DEL_OF_INST, "DELETE FROM timers WHERE id = ?1 AND instance_id = ?2")                 \
    XX(TIMER_DEL, "DELETE FROM timers WHERE id = ?1")                                              \
    XX(TIMER_DUE, "SELECT id, instance_id, fire_at_ms, dedupe_id, payload FROM timers "            \
                  "WHERE fire_at_ms <= ?1 ORDER BY fire_at_ms, id LIMIT ?2")                       \
    XX(TIMER_NEXT, "SELECT min(fire_at_ms) FROM timers")                                           \
    XX(OUTBOX_ADD,                                                                                 \
       "INSERT INTO outbox (subject, msg_id, payload, headers) VALUES (?1, ?2, ?3, ?4)")           \
    XX(OUTBOX_LIST, "SELECT id, subject, msg_id, payload, headers FROM outbox "                    \
                    "WHERE id > ?1 ORDER BY id LIMIT ?2")                                          \
    XX(OUTBOX_DEL_RANGE, "DELETE FROM outbox WHERE id BETWEEN ?1 AND ?2")                          \
    XX(PARKED_ADD, "INSERT OR IGNORE INTO parked (instance_id, dedupe_id, parked_ms, payload) "    \
                   "VALUES (?1, ?2, ?3, ?4)")                                                      \
    XX(PARKED_DEL, "DELETE FROM parked WHERE id = ?1")                                             \
    XX(PARKED_COUNT, "SELECT count(*) FROM parked")                                                \
    XX(PARKED_OF, "SELECT id, instance_id, dedupe_id, parked_ms, payload FROM parked "             \
                  "WHERE instance_id = ?1 ORDER BY id LIMIT ?2")                                   \
    XX(PARKED_OLD, "SELECT id, instance_id, dedupe_id, parked_ms, payload FROM parked "            \
                   "WHERE parked_ms < ?1 ORDER BY parked_ms, id LIMIT ?2")

typedef enum dt__store_sql {
#define DT__STORE_SQL_ENUM_(name, text) DT__SQL_##name,
    DT__STORE_SQL_MAP(DT__STORE_SQL_ENUM_)
#undef DT__STORE_SQL_ENUM_
        DT__SQL_COUNT
} dt__store_sql;

/* The applied-identity filter of a claimed handle (store_applied.c). */
typedef struct dt__store_applied_filter {
    uint64_t *bits; /* dt_alloc'd; n_words * 64 bits, a power of two */
    size_t n_words;
    uint64_t capacity; /* identities it is sized for */
    uint64_t added;    /* identities added since it was built (rows included) */
    bool on;           /* false: every answer comes from SQLite */
    bool rebuild;      /* off after a failed commit: rebuild at the next successful one */
} dt__store_applied_filter;

/* How many rows the parked table holds, kept beside the handle's own commits so that the common
 * case (none) costs no SELECT per started instance (store_parked.c). */
typedef struct dt__store_parked_tally {
    uint64_t n;
    bool known; /* false: read the table at the next use (after a claim or a failed commit) */
} dt__store_parked_tally;

struct dt__store {
    sqlite3 *db;
    char *path; /* dt_alloc'd copy */
    dt__store_options opts;
    sqlite3_stmt *stmts[DT__SQL_COUNT]; /* NULL until first use */
    dt__store_stats stats;
    dt__store_applied_filter applied;
    dt__store_parked_tally parked;
    uint8_t *scratch; /* dt_alloc'd buffer for packing history rows; grows to a row's size */
    size_t scratch_cap;
    /* The batch dt__store_batch_begin applied in the open transaction (borrowed until
     * dt__store_batch_end), and its change to the parked count. */
    const dt__store_batch *open_batch;
    int64_t open_parked_delta;
    struct dt__store_ckpt *ckpt; /* the background checkpointer (store_ckpt.c); NULL: none */
    /* dt__store_timer_floor_ms: at or before the earliest timer (INT64_MAX: none), when known. */
    bool timer_floor_known;
    int64_t timer_floor_ms;
    char errmsg[512];
};

/* store_ckpt.c: WAL checkpoints on a thread of their own (dt__store_options.
 * background_checkpoint). Start after the handle's connection is configured; on failure (no
 * thread, no second connection) SQLite's automatic checkpoint stays on: slower at times, never
 * wrong. Stop before the connection closes; accepts a handle without one. */
typedef struct dt__store_ckpt dt__store_ckpt;
dt_status dt__store_ckpt_start(dt__store *s);
void dt__store_ckpt_stop(dt__store *s);

/* Maps a SQLite result code to a dt_status and records "<what>: <sqlite message> (<path>)" as
 * the handle's error text. Returns the status. */
dt_status dt__store_fail(dt__store *s, int rc, const char *what);

/* Records a formatted error text and returns st. */
dt_status dt__store_failf(dt__store *s, dt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps a SQLite result code (extended or primary) to a dt_status. */
dt_status dt__store_map_rc(int rc);

/* Borrows the cached statement `id`, preparing it on first use. The statement is reset and its
 * previous bindings are stale (rebind every parameter). */
dt_status dt__store_stmt(dt__store *s, dt__store_sql id, sqlite3_stmt **out);

/* Binders: do nothing when *rc is already an error, else bind and store the result in *rc. */
void dt__store_bind_text(sqlite3_stmt *st, int i, const char *v, int *rc);
void dt__store_bind_blob(sqlite3_stmt *st, int i, dt__blob v, int *rc);
void dt__store_bind_i64(sqlite3_stmt *st, int i, int64_t v, int *rc);

/*
 * Runs a statement that returns no rows (or whose rows are ignored) to completion and resets it.
 * bind_rc is the accumulated result of the binders: an error there fails without stepping.
 */
dt_status dt__store_exec(dt__store *s, sqlite3_stmt *st, int bind_rc, const char *what);

/*
 * Steps a SELECT once: *out_row = true with a row available, false when done. On error resets
 * the statement. The caller resets it when it stops reading.
 */
dt_status dt__store_step_row(dt__store *s, sqlite3_stmt *st, int bind_rc, const char *what,
                             bool *out_row);

/* Copy column `col` of the current row into the arena (NULL column gives NULL / absent).
 * DT_ENOMEM when the arena is exhausted. */
dt_status dt__store_col_text(dt__store *s, sqlite3_stmt *st, int col, dt__arena *a,
                             const char **out);
dt_status dt__store_col_blob(dt__store *s, sqlite3_stmt *st, int col, dt__arena *a, dt__blob *out);

/* Reads the instance columns (DT__STORE_INST_COLS from column 0) into *row; the payload blobs
 * only when with_payloads. */
dt_status dt__store_read_instance(dt__store *s, sqlite3_stmt *st, dt__arena *a, bool with_payloads,
                                  dt__instance_row *row);

/* Starts a write transaction (BEGIN IMMEDIATE) without an epoch check (claim, migrations). End
 * it with dt__store_end_write. */
dt_status dt__store_begin_immediate(dt__store *s);

/*
 * Starts a write transaction (BEGIN IMMEDIATE) and checks the partition epoch inside it:
 * DT_EFENCED (transaction already rolled back) when it differs from expected_epoch.
 */
dt_status dt__store_begin_write(dt__store *s, uint64_t expected_epoch);

/* Ends the write transaction begun by dt__store_begin_write: COMMIT when st is DT_OK, else
 * ROLLBACK. Returns st, or the COMMIT failure (after rolling back). */
dt_status dt__store_end_write(dt__store *s, dt_status st);

/* Applies the numbered migrations up to DT__STORE_SCHEMA_VERSION after checking that the file is
 * ours (or empty) and not newer (store_schema.c). */
dt_status dt__store_check_schema(dt__store *s);
dt_status dt__store_migrate(dt__store *s);

/*
 * A growable array of fixed-size items on the dt_alloc heap, used while the number of result rows
 * is unknown; dt__store_vec_finish moves it into the arena with its exact size.
 */
typedef struct dt__store_vec {
    void *items;
    size_t n, cap, item_size;
} dt__store_vec;

/* Appends a zeroed item and returns it (valid until the next push), or NULL when out of memory. */
void *dt__store_vec_push(dt__store_vec *v);
/* Copies the items into the arena (*out NULL when empty), frees the heap array either way. */
dt_status dt__store_vec_finish(dt__store *s, dt__store_vec *v, dt__arena *a, void **out);
/* Frees the heap array (after a failure). */
void dt__store_vec_drop(dt__store_vec *v);

/* Reads the current row of st into *item (a zeroed vec slot); ctx is the collector's. */
typedef dt_status (*dt__store_row_reader)(dt__store *s, sqlite3_stmt *st, dt__arena *a, void *item,
                                          const void *ctx);

/*
 * Steps a bound SELECT to the end (or an error), reading each row through `read` into v, then
 * resets it and moves the items into the arena (*out; the count is v->n). On error v is dropped.
 */
dt_status dt__store_collect(dt__store *s, sqlite3_stmt *st, int bind_rc, const char *what,
                            dt__store_row_reader read, const void *ctx, dt__store_vec *v,
                            dt__arena *a, void **out);

/* ---- the applied-identity filter (store_applied.c) ---- */

/* False when (instance_id, dedupe_id) is certainly not in the applied table; true when it may be
 * (or the filter is off). */
bool dt__store_applied_maybe(const dt__store *s, const char *instance_id, const char *dedupe_id);
/* (Re)builds the filter from the table (inside the claim's transaction, or when it is full);
 * on failure the filter stays off. */
void dt__store_applied_rebuild(dt__store *s);
/* Adds the identities of a durable commit (and rebuilds when full or after a failed one). */
void dt__store_applied_note_commit(dt__store *s, const dt__episode_commit *eps, size_t n);
/* Frees the filter; every answer comes from SQLite until the next claim. */
void dt__store_applied_off(dt__store *s);

/* The deletes of dt__store_purge inside the caller's write transaction (store_query.c). */
dt_status dt__store_purge_in_txn(dt__store *s, const char *instance_id, uint32_t status_mask);

/* ---- parked messages (store_parked.c) ---- */

/* Inside the caller's write transaction: adds parked messages (repeats ignored) / deletes them by
 * id, adding the change in rows to *delta. */
dt_status dt__store_parked_add_in_txn(dt__store *s, const dt__parked_new *p, size_t n,
                                      int64_t *delta);
dt_status dt__store_parked_del_in_txn(dt__store *s, const int64_t *ids, size_t n, int64_t *delta);
/* After the transaction ended with `committed`: keeps the row count current. */
void dt__store_parked_note(dt__store *s, dt_status committed, int64_t delta);

/* ---- packed history rows (store_schema.c describes the format) ---- */

/* Bytes of v as an unsigned LEB128 varint (1..10). */
static inline size_t dt__store_varint_len(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) {
        n++;
    }
    return n;
}

/* Writes v at p (dt__store_varint_len(v) bytes) and returns the byte after it. */
static inline uint8_t *dt__store_varint_put(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7) {
        *p++ = (uint8_t)(v | 0x80);
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Validates a limit argument of the listing functions. */
dt_status dt__store_check_limit(dt__store *s, size_t limit, const char *what);

#endif
