/*
 * Schema identity and numbered migrations.
 *
 * A store file is recognised by PRAGMA application_id == DT__STORE_APPLICATION_ID; its schema
 * version is PRAGMA user_version. Both live in the database header and change transactionally,
 * so a migration and its version bump commit together or not at all. Migration N (1-based) is
 * migrations[N - 1]; a file at version V gets migrations V+1..latest in one transaction.
 *
 * PERSISTED: a released migration is never edited; schema changes append a new one.
 * Tables:
 *   partition  single row (id 1): owner id and fencing epoch; the log sequence the file reflects
 *              and the log's origin (schema 4)
 *   instances  one row per instance (current execution); history_len = events in history
 *   history    (instance_id, seq) -> n events from seq on, current execution only. `event`
 *              holds the serialized HistoryEvent when n = 1, else each of the n events as its
 *              byte length (unsigned LEB128 varint) followed by its bytes. A commit packs an
 *              episode's events into rows of at most DT__STORE_HISTORY_ROW_BYTES.
 *   applied    (instance_id, dedupe_id) message identities already applied, with the time of the
 *              episode that applied them (schema 5: an entity's are pruned by age)
 *   timers     id (AUTOINCREMENT: never reused while a reader may hold it) -> due message
 *   outbox     id (AUTOINCREMENT: publish order) -> message to publish
 *   parked     id (AUTOINCREMENT: arrival order) -> a message for an instance that has no
 *              started execution yet (it overtook its start), applied when the start arrives
 * history and applied are WITHOUT ROWID so that an instance's rows are stored together.
 */
#include <inttypes.h>
#include <stdio.h>

#include "common_int.h"
#include "store_db_int.h"

static const char *const migrations[] = {
    /* 1: everything */
    "CREATE TABLE partition ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  owner TEXT NOT NULL DEFAULT '',"
    "  epoch INTEGER NOT NULL DEFAULT 0,"
    "  claimed_ms INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO partition (id) VALUES (1);"
    "CREATE TABLE instances ("
    "  instance_id TEXT PRIMARY KEY NOT NULL,"
    "  execution_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  version TEXT,"
    "  status INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  last_updated_ms INTEGER NOT NULL,"
    "  completed_ms INTEGER NOT NULL DEFAULT 0,"
    "  parent_instance_id TEXT,"
    "  history_len INTEGER NOT NULL DEFAULT 0,"
    "  input BLOB, output BLOB, custom_status BLOB, failure_details BLOB, tags BLOB);"
    "CREATE TABLE history ("
    "  instance_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event BLOB NOT NULL,"
    "  PRIMARY KEY (instance_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE applied ("
    "  instance_id TEXT NOT NULL,"
    "  dedupe_id TEXT NOT NULL,"
    "  PRIMARY KEY (instance_id, dedupe_id)) WITHOUT ROWID;"
    "CREATE TABLE timers ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  instance_id TEXT NOT NULL,"
    "  fire_at_ms INTEGER NOT NULL,"
    "  dedupe_id TEXT NOT NULL UNIQUE,"
    "  payload BLOB NOT NULL);"
    "CREATE INDEX timers_due ON timers (fire_at_ms, id);"
    "CREATE INDEX timers_instance ON timers (instance_id);"
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  subject TEXT NOT NULL,"
    "  msg_id TEXT NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  headers BLOB);",
    /* 2: several events per history row (one INSERT per episode instead of one per event).
     * Every version-1 row is one event, i.e. a row with n = 1 in the new format, so the
     * conversion is the new column's default: O(1), no row is rewritten. */
    "ALTER TABLE history ADD COLUMN n INTEGER NOT NULL DEFAULT 1 CHECK (n >= 1);",
    /* 3: messages kept until their instance's start arrives (redelivery order is not arrival
     * order: an event can overtake the start it depends on). A new, empty table: O(1). */
    "CREATE TABLE parked ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  instance_id TEXT NOT NULL,"
    "  dedupe_id TEXT NOT NULL,"
    "  parked_ms INTEGER NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  UNIQUE (instance_id, dedupe_id));"
    "CREATE INDEX parked_age ON parked (parked_ms, id);",
    /* 4: the file is a view of the partition's log in JetStream (runtime/journal): the log
     * sequence it reflects, and which log (the hub's creation time: a hub deleted and created
     * again under the same name has a new log that an old file must not be mixed with). */
    ("ALTER TABLE partition ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE partition ADD COLUMN log_origin INTEGER NOT NULL DEFAULT 0;"),
    /* 5: a live entity's applied identities are pruned by age (store_commit.c), so each row
     * records the time of the episode that applied it. Existing entity rows take their entity's
     * last update, no earlier than the truth, so none is forgotten sooner than it would have
     * been (orchestration rows keep 0: they go when their instance completes, as before). The
     * partial index makes the age prune a range delete of entity rows only. O(entity rows). */
    ("ALTER TABLE applied ADD COLUMN applied_ms INTEGER NOT NULL DEFAULT 0;"
     "UPDATE applied SET applied_ms = coalesce((SELECT last_updated_ms FROM instances i "
     "WHERE i.instance_id = applied.instance_id), 0) "
     "WHERE instance_id >= '@' AND instance_id < 'A';"
     "CREATE INDEX applied_age ON applied (instance_id, applied_ms) "
     "WHERE instance_id >= '@' AND instance_id < 'A';"),
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DT__STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* What the file header and catalog say about a file. */
typedef struct schema_state {
    int64_t application_id;
    int64_t version;
    int64_t objects; /* rows in sqlite_schema */
} schema_state;

/* Reads the header fields and the catalog size in ONE statement, i.e. one snapshot: separate
 * reads could see a concurrent migration half-way (tables without the application_id). */
static dt_status read_state(dt__store *s, schema_state *out)
{
    static const char sql[] = "SELECT (SELECT application_id FROM pragma_application_id), "
                              "(SELECT user_version FROM pragma_user_version), "
                              "(SELECT count(*) FROM sqlite_master)";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    dt_status status = DT_OK;
    if (rc == SQLITE_ROW) {
        out->application_id = (int64_t)sqlite3_column_int64(st, 0);
        out->version = (int64_t)sqlite3_column_int64(st, 1);
        out->objects = (int64_t)sqlite3_column_int64(st, 2);
    } else {
        status = dt__store_fail(s, rc, "read schema");
        if (status == DT_ECORRUPT) {
            dt__store_failf(s, status,
                            "%s is not a valid SQLite database (damaged, truncated or another kind "
                            "of file: %s)",
                            s->path, sqlite3_errstr(rc));
        }
    }
    sqlite3_finalize(st);
    return status;
}

/* DT_OK when the file is empty or ours at a version this build understands. */
static dt_status judge(dt__store *s, const schema_state *st)
{
    if (st->application_id == 0 && st->objects == 0) {
        return DT_OK; /* a new (or zero-length) file */
    }
    if (st->application_id != DT__STORE_APPLICATION_ID) {
        return dt__store_failf(s, DT_ECORRUPT,
                               "%s is a SQLite database but not a durabletask store "
                               "(application_id 0x%08" PRIx64 ", %" PRId64 " schema objects)",
                               s->path, (uint64_t)st->application_id, st->objects);
    }
    if (st->version > DT__STORE_SCHEMA_VERSION) {
        return dt__store_failf(s, DT_EVERSION,
                               "%s has schema version %" PRId64
                               ", newer than this build's %d; upgrade the runtime",
                               s->path, st->version, DT__STORE_SCHEMA_VERSION);
    }
    if (st->version < 1) {
        return dt__store_failf(s, DT_ECORRUPT, "%s has our application_id but no schema version",
                               s->path);
    }
    return DT_OK;
}

dt_status dt__store_check_schema(dt__store *s)
{
    schema_state st = {0};
    dt_status status = read_state(s, &st);
    return status == DT_OK ? judge(s, &st) : status;
}

static dt_status apply_migration(dt__store *s, int64_t version)
{
    if (version < 1 || version > DT__STORE_SCHEMA_VERSION) {
        return dt__store_failf(s, DT_ECORRUPT, "%s: no migration to version %" PRId64, s->path,
                               version);
    }
    char *err = NULL;
    int rc = sqlite3_exec(s->db, migrations[version - 1], NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        dt_status status =
            dt__store_failf(s, dt__store_map_rc(rc), "%s: migration %" PRId64 " failed: %s",
                            s->path, version, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return status;
    }
    char sql[96];
    (void)snprintf(sql, sizeof(sql),
                   "PRAGMA user_version = %" PRId64 "; PRAGMA application_id = %d", version,
                   DT__STORE_APPLICATION_ID);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? DT_OK : dt__store_fail(s, rc, "set schema version");
}

static dt_status migrate_locked(dt__store *s)
{
    /* Re-read inside the write lock: another process may have migrated since the first look. */
    schema_state st = {0};
    dt_status status = read_state(s, &st);
    if (status == DT_OK) {
        status = judge(s, &st);
    }
    int64_t from = st.application_id == 0 ? 0 : st.version;
    for (int64_t v = from + 1; status == DT_OK && v <= DT__STORE_SCHEMA_VERSION; v++) {
        status = apply_migration(s, v);
    }
    return status;
}

dt_status dt__store_migrate(dt__store *s)
{
    schema_state st = {0};
    dt_status status = read_state(s, &st);
    if (status != DT_OK ||
        (st.application_id == DT__STORE_APPLICATION_ID && st.version == DT__STORE_SCHEMA_VERSION)) {
        return status;
    }
    status = dt__store_begin_immediate(s);
    if (status != DT_OK) {
        return status;
    }
    return dt__store_end_write(s, migrate_locked(s));
}
