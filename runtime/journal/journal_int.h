/*
 * journal_int.h: a partition's log in JetStream, the truth its SQLite store is a view of
 * (internal, dt__journal_ prefix).
 *
 * Every change of a partition's store (a dt__store_batch) is one entry on the subject
 * dt.<hub>.log.<p> of the hub's LOG stream (schema/dt_journal.proto, LogChange). The append is
 * the commit and the fence: it is published on the condition that the subject's last message is
 * the one this owner last saw (Nats-Expected-Last-Subject-Sequence), so a stale owner (paused
 * past its lease, cut off from the cluster) can never append, and nothing it did becomes
 * visible. The store applies the batch in an open transaction first (so a batch the store
 * refuses is never logged), then the entry is appended, then the transaction commits with the
 * entry's sequence as the file's log position.
 *
 * Any worker on any host can therefore rebuild a partition's store: restore the newest snapshot
 * (the store file, in chunks on dt.<hub>.log.<p>.chunk, closed by a LogSnapshot record on
 * dt.<hub>.log.<p>.snap) and apply the log entries after its position. A new owner does that in
 * dt__journal_open and then appends an empty entry (a claim) so that any previous owner's next
 * append fails. A worker whose file is current skips the rebuild.
 *
 * Entries larger than a message are split into parts (header Dt-Part: i/n), each appended on the
 * previous part; a reader applies an entry only when all its parts are there in order, so an
 * owner that died half-way leaves nothing applied (its inputs were never acknowledged and come
 * back). Each entry carries Dt-Owner (worker id and a per-journal random incarnation).
 *
 * Layering: calls the store (runtime/history) and the broker adapter downward; nothing here
 * calls into the worker. Threads: one journal per owned partition; dt__journal_commit may be
 * called from several threads with their own store handles on the same file (the partition loop
 * and the query service's purge): commits are serialized inside.
 */
#ifndef DT_JOURNAL_INT_H
#define DT_JOURNAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_broker.h"
#include "durabletask/worker.h"
#include "store_int.h"

typedef struct dt__journal dt__journal;

/* Log lines (INFO for rebuilds and snapshots, WARN for steps that are retried). */
typedef void (*dt__journal_log_fn)(void *ctx, dt_log_level level, const char *msg);

typedef struct dt__journal_config {
    dt_broker *broker; /* borrowed; thread-safe */
    const char *hub;   /* borrowed (copied) */
    uint32_t partition;
    const char *owner; /* the worker id (copied) */
    int64_t origin;    /* identifies the hub's log: its creation time (hub config created_at_ms) */
    size_t max_msg;    /* largest message the stream takes, headers included */
    /* A snapshot is taken once this many entries or bytes were appended since the last one;
     * 0 = defaults (DT__JOURNAL_SNAPSHOT_ENTRIES, DT__JOURNAL_SNAPSHOT_BYTES). */
    uint64_t snapshot_entries;
    uint64_t snapshot_bytes;
    dt__journal_log_fn log; /* may be NULL */
    void *log_ctx;
} dt__journal_config;

#define DT__JOURNAL_SNAPSHOT_ENTRIES 5000
#define DT__JOURNAL_SNAPSHOT_BYTES   ((uint64_t)64 * 1024 * 1024)

/* A journal for one partition (no I/O). *out is freed with dt__journal_destroy. */
dt_status dt__journal_create(const dt__journal_config *c, dt__journal **out);
/* Accepts NULL. Does not close stores opened through it. */
void dt__journal_destroy(dt__journal *j);

/*
 * Makes the store file at db_path (borrowed) a current view of the log and takes the log over:
 * keeps the file when it belongs to this log and can be brought forward from it; otherwise (no
 * file, another hub's or an unreadable file, a file behind the newest snapshot or ahead of the
 * log) replaces it with the newest snapshot, or an empty store when there is none. A file written
 * before the hub had a log, with the log still empty, is adopted and snapshotted. Then applies
 * every entry after the file's position, claims the store (dt__store_claim with owner) and
 * appends a claim entry. On DT_OK *out_store (caller closes it) is current and *out_epoch is its
 * claim. Errors: DT_ECONFLICT when other appends kept racing the claim (try again later),
 * DT_ECORRUPT for a damaged snapshot or entry, broker and store errors; err says what.
 */
dt_status dt__journal_open(dt__journal *j, const char *db_path, const dt__store_options *so,
                           dt__store **out_store, uint64_t *out_epoch, char *err, size_t errlen);

/*
 * Commits b (borrowed) through s, a handle on the journal's file claimed at `epoch`: applies it
 * in an open transaction, appends it to the log on the condition that the log ends where this
 * journal last saw it, and commits locally with the entry's position. Thread-safe.
 *   DT_OK        durable in the log. (If only the local COMMIT failed, the journal is marked
 *                behind and dt__journal_catch_up applies the entry again.)
 *   DT_EFENCED   another owner appended: nothing written anywhere; this owner must step down.
 *   DT_ESTATE    the journal is behind: call dt__journal_catch_up first; nothing written.
 *   DT_ETIMEOUT, DT_EBROKER  the append's outcome is unknown: nothing committed locally, the
 *                journal is marked behind.
 *   store errors (DT_EEXIST, DT_ETOOLARGE, DT_EIO, ...): nothing appended.
 */
dt_status dt__journal_commit(dt__journal *j, dt__store *s, uint64_t epoch,
                             const dt__store_batch *b);

/* True when the file may be behind the log (an append of unknown outcome, a failed local
 * COMMIT): the next commit is refused until dt__journal_catch_up succeeds. */
bool dt__journal_behind(dt__journal *j);

/*
 * Applies to s the entries after what this journal last applied, all of which must be its own (an
 * append whose PubAck was lost, a local COMMIT that failed): DT_EFENCED when another owner's entry
 * is there, or entries were purged (step down). *out_applied: entries applied (their outbox rows
 * are new to the caller: publish the stored outbox again). Clears the behind mark on DT_OK.
 * Thread-safe.
 */
dt_status dt__journal_catch_up(dt__journal *j, dt__store *s, uint64_t epoch, uint64_t *out_applied);

/*
 * Takes a snapshot of s (the owner's handle) when enough was appended since the last one, or
 * always with `force`: an online backup of the file, stored in chunks and closed by its record;
 * then the log entries below the snapshot's position and older snapshots are purged. Costs a
 * copy of the file and its upload; the partition waits meanwhile. Thread-safe.
 */
dt_status dt__journal_snapshot(dt__journal *j, dt__store *s, bool force);

/* What the journal did (tests, diagnostics). */
typedef struct dt__journal_stats {
    uint64_t appended;     /* entries appended (claims and parts included) */
    uint64_t applied;      /* entries applied from the log (rebuilds and catch-ups) */
    uint64_t snapshots;    /* snapshots taken */
    uint64_t restored_seq; /* log position of the snapshot restored by open, 0 = none */
    bool kept_file;        /* open kept the existing file */
    uint64_t last_seq;     /* the log's end as this journal knows it */
} dt__journal_stats;
void dt__journal_get_stats(dt__journal *j, dt__journal_stats *out);

#endif
