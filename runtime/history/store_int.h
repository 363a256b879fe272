/*
 * store_int.h: the SQLite history store of one partition (internal, dt__store_ prefix).
 *
 * One database file per partition (<data-dir>/<hub>/p<NNN>.db; the caller builds the path) holds
 * everything the partition's owner needs to replay and advance its instances: the instance rows,
 * the history of each instance's current execution, the identities of messages already applied,
 * durable timers, and the outbox of messages still to publish. An episode's effects are written
 * by dt__store_commit in one transaction, together with every other episode of the fetched
 * batch, so that a crash leaves either all of a batch or none of it.
 *
 * Fencing: the `partition` table holds the owner id and an epoch that dt__store_claim bumps.
 * Every write takes the epoch its caller claimed and fails with DT_EFENCED, writing nothing, when
 * another owner has claimed the file since. The check runs inside the write transaction
 * (BEGIN IMMEDIATE), so it cannot race with a concurrent claim.
 *
 * Layering: sits on SQLite only. It stores events and messages as opaque byte strings (serialized
 * HistoryEvent / OrchestrationMessage / TaskFailureDetails); the engine and worker encode and
 * decode them. Results are copied into a caller-provided arena (common/arena_int.h) and live as
 * long as it; nothing returned points into SQLite.
 *
 * Threads: a dt__store handle is confined to one thread at a time (the caller serializes). Any
 * number of handles, in any number of processes, may open the same file; SQLite's locking plus
 * the epoch keep them apart.
 *
 * Errors: every fallible function returns a dt_status and writes out_* parameters only on DT_OK.
 * After a failure dt__store_errmsg() describes it. A failed write leaves nothing of its
 * transaction behind and the handle stays usable.
 */
#ifndef DT_STORE_INT_H
#define DT_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "durabletask/status.h"

typedef struct dt__store dt__store;

/* Latest schema version this build writes (PRAGMA user_version of a migrated file). */
#define DT__STORE_SCHEMA_VERSION 5
/* PRAGMA application_id of our files: "DTNS". PERSISTED: never change. */
#define DT__STORE_APPLICATION_ID 0x44544E53
/* Longest accepted id / name / subject string, in bytes. */
#define DT__STORE_MAX_ID_LEN 1024
/* An episode's history events are stored together, in rows of at most this many bytes (an event
 * larger than that has a row of its own): one INSERT per episode, not per event. */
#define DT__STORE_HISTORY_ROW_BYTES ((size_t)256 * 1024)
/* Largest `limit` accepted by the listing functions. */
#define DT__STORE_MAX_PAGE 10000

/*
 * Options of dt__store_open. Zero-initialise, then set what differs; a zero field means the
 * default (dt__store_options_init writes the defaults explicitly).
 */
typedef struct dt__store_options {
    bool synchronous_full;    /* PRAGMA synchronous FULL; default false = NORMAL (WAL: a
                                 commit survives a process crash, maybe not a power loss) */
    int busy_timeout_ms;      /* wait for another connection's lock; 0 = 5000 ms */
    int cache_size_kib;       /* page cache per handle; 0 = SQLite's default (2 MiB) */
    size_t max_blob_bytes;    /* largest blob (event, payload, headers); 0 = 4 MiB */
    uint64_t max_history_len; /* most events in one execution's history; 0 = 100,000 */
    /* WAL checkpoints on a thread and connection of their own instead of inside the COMMIT that
     * fills the WAL (store_ckpt.c): the handle's commits never wait for a checkpoint's fsyncs.
     * For the one writer of a file (the partition thread); default false. */
    bool background_checkpoint;
    /* How long an entity's applied message identities are kept, measured in the episodes' own
     * times (the instance row's last_updated_ms, which the partition log carries, so a rebuild
     * prunes the same rows); 0 = DT__STORE_APPLIED_KEEP_MS. docs/design.md, "Durable
     * entities", says why a day covers every copy that can still arrive. */
    int64_t applied_keep_ms;
} dt__store_options;

/* The default of dt__store_options.applied_keep_ms: one day. */
#define DT__STORE_APPLIED_KEEP_MS ((int64_t)24 * 3600 * 1000)

/* Writes the defaults into *o (borrowed). */
void dt__store_options_init(dt__store_options *o);

/*
 * A byte string. data == NULL means absent (SQL NULL), which differs from empty (data != NULL,
 * len == 0). In inputs the bytes are borrowed for the duration of the call; in results they live
 * in the caller's arena and are followed by a NUL byte that len does not count.
 */
typedef struct dt__blob {
    const uint8_t *data;
    size_t len;
} dt__blob;

/*
 * One instance row. Strings are NUL-terminated. As an input (dt__episode_commit) every pointer is
 * borrowed for the call; as a result every pointer lives in the caller's arena.
 */
typedef struct dt__instance_row {
    const char *instance_id;        /* required, primary key */
    const char *execution_id;       /* required; changes on continue-as-new */
    const char *name;               /* required: orchestrator name */
    const char *version;            /* NULL = absent */
    int32_t runtime_status;         /* OrchestrationStatus value (schema/dt_history.proto) */
    int64_t created_ms;             /* Unix ms */
    int64_t last_updated_ms;        /* Unix ms */
    int64_t completed_ms;           /* Unix ms; 0 = not completed */
    const char *parent_instance_id; /* NULL = not a sub-orchestration */
    dt__blob input;                 /* Payload bytes; absent/empty distinct */
    dt__blob output;
    dt__blob custom_status;
    dt__blob failure_details; /* serialized TaskFailureDetails; absent = none */
    dt__blob tags;            /* opaque serialized tags; absent = none */
    uint64_t history_len;     /* events in the stored history. Output only: the store
                                 computes it on commit and ignores the input value */
} dt__instance_row;

/* A timer to create (input of a commit); pointers borrowed for the call. */
typedef struct dt__timer_new {
    int64_t fire_at_ms;    /* Unix ms when it is due */
    const char *dedupe_id; /* required, unique over the file (the TimerFired message identity) */
    dt__blob payload;      /* required: encoded OrchestrationMessage to deliver when due */
} dt__timer_new;

/* A stored timer (result); pointers live in the caller's arena. */
typedef struct dt__timer_row {
    int64_t id; /* assigned by the store, increasing, never reused */
    const char *instance_id;
    int64_t fire_at_ms;
    const char *dedupe_id;
    dt__blob payload;
} dt__timer_row;

/* An outgoing message; as input its pointers are borrowed for the call. */
typedef struct dt__outbox_msg {
    const char *subject; /* required: NATS subject to publish to */
    const char *msg_id;  /* required: the Nats-Msg-Id (JetStream dedupes re-publishes by it) */
    dt__blob payload;    /* required */
    dt__blob headers;    /* optional, opaque encoded headers; absent = none */
} dt__outbox_msg;

/* A stored outbox row (result); pointers live in the caller's arena. */
typedef struct dt__outbox_row {
    int64_t id; /* assigned by the store; publish order; never reused */
    dt__outbox_msg msg;
} dt__outbox_row;

/*
 * Everything one episode writes. All pointers are borrowed for the duration of dt__store_commit.
 * Applied in this order: reset_history, delete_all_timers / delete_timer_ids, the instance row
 * (history_len computed), new_events appended at seq history_len.., applied_ids inserted,
 * prune_applied, new timers, outbox rows.
 *
 * The stored history length: with base_known, the writer states the length its episode ran on
 * and the store takes it instead of reading it; the row's write checks it in the same statement
 * (the row must still be at that length, or absent for 0). When the check fails, the episode ran
 * on a history other than the stored one: the whole commit fails with DT_ESTATE (nothing is
 * written) and the episode is counted in dt__store_stats.unexpected_rows.
 */
typedef struct dt__episode_commit {
    const dt__instance_row *instance; /* required */
    bool reset_history; /* continue-as-new: drop all history rows first (new_events start at 0) */
    bool base_known;    /* base_history_len is the stored length the episode ran on */
    uint64_t base_history_len; /* 0 for an instance without a row yet */
    /* With base_known: the stored row differs only in runtime_status, last_updated_ms,
     * completed_ms, output, custom_status and failure_details (and history_len); only those are
     * written, not the input and start record blobs. Otherwise every column is replaced. */
    bool episode_fields_only;
    const dt__blob *new_events; /* serialized HistoryEvents, each present (data != NULL) */
    size_t n_new_events;
    const char *const *applied_ids; /* message identities consumed by the episode; an id already
                                       recorded for the instance fails the commit (DT_EEXIST) */
    size_t n_applied;
    bool prune_applied; /* forget all applied ids of the instance (it completed), incl. these */
    /* Applied ids are stored with instance->last_updated_ms; for an entity (instance id starting
     * with '@'), those older than last_updated_ms - applied_keep_ms are forgotten too. */
    bool delete_all_timers;          /* drop every pending timer of the instance */
    const int64_t *delete_timer_ids; /* timers of this instance to drop; unknown ids are ignored */
    size_t n_delete_timers;
    const dt__timer_new *new_timers;
    size_t n_new_timers;
    const dt__outbox_msg *outbox;
    size_t n_outbox;
    const int64_t *delete_parked_ids; /* parked messages this episode applied (or found to be
                                         repeats); unknown ids are ignored */
    size_t n_delete_parked;
    /* Optional output: when not NULL, n_outbox entries that receive the ids the store gave the
     * outbox rows, in order (written during the call; meaningful only when it returns DT_OK).
     * The writer publishes from its own copy and deletes by these ids, without reading back. */
    int64_t *outbox_ids;
} dt__episode_commit;

/*
 * Opens (creating when missing) the store at `path` (borrowed), switches it to WAL mode and
 * brings its schema to DT__STORE_SCHEMA_VERSION with numbered migrations, each in a transaction.
 * opts (borrowed) may be NULL for the defaults. On DT_OK *out is a new handle the caller closes
 * with dt__store_close. On failure *out is untouched and errbuf (may be NULL) receives a message
 * naming the file and the problem:
 *   DT_ECORRUPT  not a SQLite file, truncated/garbage, or a SQLite file that is not ours;
 *   DT_EVERSION  our file with a schema newer than this build;
 *   DT_EIO       cannot open/create (permissions, missing directory); DT_EBUSY locked too long;
 *   DT_ENOMEM, DT_EINVAL (NULL path/out, bad options).
 */
dt_status dt__store_open(const char *path, const dt__store_options *opts, dt__store **out,
                         char *errbuf, size_t errlen);

/* Finalizes every statement and closes the file. Accepts NULL. */
void dt__store_close(dt__store *s);

/* Text of the most recent failure on `s` ("" if none yet); lives until the next call on `s`.
 * Successful calls do not clear it. */
const char *dt__store_errmsg(const dt__store *s);

/* The path the store was opened with; lives as long as `s`. */
const char *dt__store_path(const dt__store *s);

/*
 * Reads an integer PRAGMA of this handle's connection (e.g. "synchronous", "journal_mode" is not
 * an integer). For diagnostics and tests. `name` (borrowed) must be letters and underscores.
 */
dt_status dt__store_pragma_int(dt__store *s, const char *name, int64_t *out_value);

/* ---- partition fencing ---- */

/*
 * Takes ownership of the partition: records owner_id (copied into the file) and bumps the epoch
 * in one write transaction. *out_epoch is the new epoch, to pass to every later write; any write
 * with an older epoch (from this or another handle) then fails with DT_EFENCED.
 */
dt_status dt__store_claim(dt__store *s, const char *owner_id, uint64_t *out_epoch);

/* Reads the current epoch (0 before the first claim) and, if arena is not NULL, the owner id into
 * *out_owner (arena memory; may be NULL). */
dt_status dt__store_epoch(dt__store *s, dt__arena *arena, uint64_t *out_epoch,
                          const char **out_owner);

/* ---- writes (all fenced) ---- */

/*
 * Writes n episodes (borrowed array, n >= 1) in ONE transaction. Every row is validated before
 * anything is written (DT_EINVAL for a missing required field, DT_ETOOLARGE for a blob over
 * max_blob_bytes or a string over DT__STORE_MAX_ID_LEN). Inside the transaction: DT_EFENCED if
 * the stored epoch is not expected_epoch; DT_ETOOLARGE if a history would exceed max_history_len;
 * DT_EEXIST on a duplicate applied id or timer dedupe_id; DT_EBUSY if the write lock was not
 * obtained within the busy timeout. On any error the whole batch is rolled back.
 * Cost: one statement execution per row, on statements prepared once per handle.
 */
dt_status dt__store_commit(dt__store *s, uint64_t expected_epoch, const dt__episode_commit *eps,
                           size_t n);

/*
 * dt__store_commit that also deletes the outbox rows published_ids (borrowed; n_published may be
 * 0, unknown ids are ignored) in the same transaction: rows whose PubAck arrived since the last
 * commit, deleted without a write transaction of their own. Rolled back with the batch on any
 * error, so the rows stay (and are published again later: JetStream drops the repeats).
 */
dt_status dt__store_commit_settled(dt__store *s, uint64_t expected_epoch,
                                   const dt__episode_commit *eps, size_t n,
                                   const int64_t *published_ids, size_t n_published);

/* ---- parked messages: events that overtook their instance's start ---- */

/* A message to keep until its instance's start arrives (input; pointers borrowed for the call). */
typedef struct dt__parked_new {
    const char *instance_id; /* required */
    const char *dedupe_id;   /* required: the message identity; a second park of the same
                                (instance_id, dedupe_id) is ignored (a redelivery) */
    int64_t parked_ms;       /* Unix ms it was first parked, for the expiry bound */
    dt__blob payload;        /* required: the encoded OrchestrationMessage */
} dt__parked_new;

/* A parked message (result); pointers live in the caller's arena. */
typedef struct dt__parked_row {
    int64_t id; /* assigned by the store, increasing (arrival order), never reused */
    const char *instance_id;
    const char *dedupe_id;
    int64_t parked_ms;
    dt__blob payload;
} dt__parked_row;

/*
 * Everything a batch writes, in ONE transaction (see dt__store_commit for the episodes' rules),
 * in this order: the outbox rows published_ids are deleted, the episodes applied, the parked
 * messages added, delete_parked_ids and delete_timer_ids deleted, and purge_instance_id purged
 * (as dt__store_purge with purge_status_mask: DT_ENOTFOUND / DT_ESTATE fail the batch). Any
 * field may be empty, but not all of them. Borrowed for the call (for dt__store_batch_begin:
 * until dt__store_batch_end).
 *
 * A batch is also the unit of the partition's log (runtime/journal): the same batch applied to
 * the same file state gives the same file state (row ids included), so a view rebuilt from the
 * log equals its owner's.
 */
typedef struct dt__store_batch {
    const dt__episode_commit *eps;
    size_t n;
    const int64_t *published_ids;
    size_t n_published;
    const dt__parked_new *parks;
    size_t n_parks;
    const int64_t *delete_parked_ids; /* parked messages expired (dead-lettered) */
    size_t n_delete_parked;
    const int64_t *delete_timer_ids; /* timers dropped on their own (unreadable rows) */
    size_t n_delete_timers;
    const char *purge_instance_id; /* NULL: none */
    uint32_t purge_status_mask;
} dt__store_batch;

/* Writes a batch (see dt__store_batch) and commits; errors as dt__store_commit. */
dt_status dt__store_commit_batch(dt__store *s, uint64_t expected_epoch, const dt__store_batch *b);

/*
 * The batch in two steps, so that the caller can make it durable elsewhere before it commits
 * here: dt__store_batch_begin validates b, opens the write transaction, checks the epoch and
 * applies everything (errors as dt__store_commit; on error nothing stays open). On DT_OK the
 * transaction stays open and the handle takes no other write until dt__store_batch_end, which
 * COMMITs (recording log_seq as the log position the file reflects when it is > 0) or, with
 * commit false, rolls back (then always DT_OK). A failed COMMIT returns its error; the file then
 * holds none of the batch.
 */
dt_status dt__store_batch_begin(dt__store *s, uint64_t expected_epoch, const dt__store_batch *b);
dt_status dt__store_batch_end(dt__store *s, bool commit, uint64_t log_seq);

/* ---- the log position (runtime/journal) ---- */

/* The log sequence the file reflects (0: none applied yet) and the log's origin (0: never set:
 * a new file, or one written before the log existed). */
dt_status dt__store_log_pos(dt__store *s, uint64_t *out_seq, int64_t *out_origin);

/* Records that the file belongs to the log identified by `origin` at position 0 (a file just
 * created, or restored). Fenced like every write. */
dt_status dt__store_log_origin_set(dt__store *s, uint64_t expected_epoch, int64_t origin);

/*
 * Copies the whole database into a new file at dest_path (borrowed; must not exist) with
 * SQLite's online backup, as one consistent snapshot (WAL content included), in journal mode
 * DELETE so the copy is one self-contained file. Fails (nothing left at dest_path) with DT_EIO /
 * DT_EBUSY; not during an open batch (DT_EINVAL).
 */
dt_status dt__store_backup(dt__store *s, const char *dest_path);

/* The parked messages of one instance (borrowed), oldest first, at most `limit`
 * (1..DT__STORE_MAX_PAGE), in arena memory (*out_rows NULL when *out_n is 0). Costs no SQL while
 * the handle knows the table is empty (the common case). */
dt_status dt__store_parked_of(dt__store *s, const char *instance_id, size_t limit, dt__arena *arena,
                              dt__parked_row **out_rows, size_t *out_n);

/* Parked messages parked before before_ms, oldest first, at most `limit`; as dt__store_parked_of.
 */
dt_status dt__store_parked_older(dt__store *s, int64_t before_ms, size_t limit, dt__arena *arena,
                                 dt__parked_row **out_rows, size_t *out_n);

/* Number of parked messages (no SQL while the handle's count is current). */
dt_status dt__store_parked_count(dt__store *s, uint64_t *out_n);

/* Deletes parked messages by id (borrowed array) in one fenced transaction; unknown ids are
 * ignored. n == 0 is a no-op returning DT_OK. */
dt_status dt__store_parked_delete(dt__store *s, uint64_t expected_epoch, const int64_t *ids,
                                  size_t n);

/* What a handle has done so far (diagnostics and tests). */
typedef struct dt__store_stats {
    uint64_t steps;           /* sqlite3_step calls on the handle's cached statements */
    uint64_t write_txns;      /* write transactions begun (BEGIN IMMEDIATE) */
    uint64_t unexpected_rows; /* episode commits whose base_history_len did not hold */
    uint64_t filter_builds;   /* applied-identity filter built from the table (claim, full) */
    uint64_t filter_answers;  /* dt__store_is_applied answered by the filter, without SQL */
} dt__store_stats;

/* Copies the handle's counters into *out. */
void dt__store_get_stats(const dt__store *s, dt__store_stats *out);

/* Deletes outbox rows by id (borrowed array) in one fenced transaction; unknown ids are ignored.
 * n == 0 is a no-op returning DT_OK. */
dt_status dt__store_outbox_delete(dt__store *s, uint64_t expected_epoch, const int64_t *ids,
                                  size_t n);

/* Deletes timers by id (borrowed array) in one fenced transaction; unknown ids are ignored. */
dt_status dt__store_timers_delete(dt__store *s, uint64_t expected_epoch, const int64_t *ids,
                                  size_t n);

/*
 * Deletes an instance with its history, applied ids and timers (outbox rows stay: they are
 * messages already promised to others), provided its stored status is one of status_mask (bit
 * 1u << runtime_status per accepted status; 0 accepts any). The status is checked by the DELETE
 * itself, inside the write transaction, so a row that changed after the caller read it (a
 * finished instance restarted by a reuse policy) is left whole. DT_ENOTFOUND when there is no
 * such instance; DT_ESTATE when its status is not in the mask (nothing deleted).
 */
dt_status dt__store_purge(dt__store *s, uint64_t expected_epoch, const char *instance_id,
                          uint32_t status_mask);
/* A status_mask bit (never a status's): purge only a row without output and custom status and
 * without timers (an empty entity: no state, no lock, nothing queued or scheduled), checked in
 * the DELETE like the status. PERSISTED in the partition log (LogChange.purge_status_mask). */
#define DT__STORE_PURGE_IF_EMPTY (1u << 31)

/* ---- reads (unfenced: any handle may read) ---- */

/* Reads one instance row into *out_row, its strings and blobs copied into `arena`.
 * DT_ENOTFOUND when absent. */
dt_status dt__store_get_instance(dt__store *s, const char *instance_id, dt__arena *arena,
                                 dt__instance_row *out_row);

/*
 * Loads the history of the instance's current execution in seq order: *out_events is an arena
 * array of *out_n blobs (arena memory; NULL when *out_n == 0). An unknown instance has an empty
 * history. DT_ECORRUPT if the stored sequence numbers have a gap.
 */
dt_status dt__store_load_history(dt__store *s, const char *instance_id, dt__arena *arena,
                                 dt__blob **out_events, size_t *out_n);

/*
 * *out_applied = whether dedupe_id (borrowed) is recorded as applied for the instance. After
 * dt__store_claim most "not applied" answers come from an in-memory filter of the table that the
 * handle's own commits keep up to date (no SQL); a "maybe" is read from the table. Exact while
 * the handle's claim is current: a handle another one has claimed over may answer from a stale
 * filter until its first (fenced) commit, but it cannot write anything either way.
 */
dt_status dt__store_is_applied(dt__store *s, const char *instance_id, const char *dedupe_id,
                               bool *out_applied);

/* Timers with fire_at_ms <= now_ms, earliest first (ties by id), at most `limit`
 * (1..DT__STORE_MAX_PAGE). Rows in arena memory; *out_rows is NULL when *out_n == 0. */
dt_status dt__store_due_timers(dt__store *s, int64_t now_ms, size_t limit, dt__arena *arena,
                               dt__timer_row **out_rows, size_t *out_n);

/* The earliest fire_at_ms of any timer, for sleeping until then; DT_ENOTFOUND when none. */
dt_status dt__store_next_timer_ms(dt__store *s, int64_t *out_fire_at_ms);

/*
 * A time at or before the earliest fire_at_ms of any timer (INT64_MAX when there is none), for a
 * loop that sleeps until then and asks dt__store_due_timers only once it has passed: after one
 * read of the table it costs no SQL. This handle's inserts lower it (also those of a batch rolled
 * back later); deletes leave it, as a lower bound stays one; a due_timers call that returns fewer
 * rows than its limit makes the next call read the table again, so a bound left low by fired
 * timers costs one more query, not a query per call. Timers inserted through another handle are
 * not seen until then (the partition's handle is the only writer of timers).
 */
dt_status dt__store_timer_floor_ms(dt__store *s, int64_t *out_ms);

/* Outbox rows with id > after_id in id order, at most `limit` (1..DT__STORE_MAX_PAGE). Rows in
 * arena memory; *out_rows is NULL when *out_n == 0. */
dt_status dt__store_outbox_list(dt__store *s, int64_t after_id, size_t limit, dt__arena *arena,
                                dt__outbox_row **out_rows, size_t *out_n);

/* ---- queries ---- */

/* Filter of dt__store_query / dt__store_count. Zero-initialised means "every instance". */
typedef struct dt__instance_filter {
    uint32_t status_mask;           /* bit (1u << runtime_status) per accepted status; 0 = any */
    const char *name;               /* exact orchestrator name; NULL = any (borrowed) */
    const char *instance_id_prefix; /* NULL or "" = any (borrowed) */
    int64_t created_from_ms;        /* created_ms >= this (inclusive) */
    int64_t created_to_ms;          /* created_ms < this (exclusive); 0 = no upper bound */
    int64_t completed_to_ms;        /* finished (completed_ms set) before this; 0 = no condition */
} dt__instance_filter;

/* A page of a query result; everything in the caller's arena. */
typedef struct dt__instance_page {
    dt__instance_row *rows; /* NULL when n == 0 */
    size_t n;
    const char *next_token; /* pass as after_token for the next page; NULL = this was the last */
} dt__instance_page;

/*
 * Instances matching *filter (borrowed) in instance_id order, starting after after_token (NULL =
 * from the start; a token from a previous page), at most `limit` (1..DT__STORE_MAX_PAGE). With
 * with_payloads false, input/output/custom_status/failure_details/tags are returned absent.
 */
dt_status dt__store_query(dt__store *s, const dt__instance_filter *filter, const char *after_token,
                          size_t limit, bool with_payloads, dt__arena *arena,
                          dt__instance_page *out_page);

/* Number of instances matching *filter (borrowed). O(instances). */
dt_status dt__store_count(dt__store *s, const dt__instance_filter *filter, uint64_t *out_count);

#endif
