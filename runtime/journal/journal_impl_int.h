/*
 * journal_impl_int.h: the journal's state and the helpers its files share (runtime/journal only).
 */
#ifndef DT_JOURNAL_IMPL_INT_H
#define DT_JOURNAL_IMPL_INT_H

#include <pthread.h>

#include "arena_int.h"
#include "journal_codec_int.h"
#include "journal_int.h"

/* Room in a message for the headers and the subject besides an entry's or a chunk's bytes. */
#define DT__JOURNAL_HEADROOM 1024

struct dt__journal {
    dt_broker *b;
    uint32_t p;
    char
        owner[192]; /* "<worker id>/<random incarnation>": the Dt-Owner of this journal's entries */
    char worker_id[160];
    int64_t origin;
    size_t chunk; /* bytes of an entry part or snapshot chunk */
    uint64_t snap_entries, snap_bytes;
    dt__journal_log_fn log;
    void *log_ctx;
    char stream[DT_BROKER_NAME_BUF];
    char subject[DT_BROKER_NAME_BUF];       /* dt.<hub>.log.<p>: the entries */
    char chunk_subject[DT_BROKER_NAME_BUF]; /* dt.<hub>.log.<p>.chunk: snapshot chunks */
    char snap_subject[DT_BROKER_NAME_BUF];  /* dt.<hub>.log.<p>.snap: snapshot records */
    pthread_mutex_t mu;                     /* serializes commits, catch-ups and snapshots */
    uint64_t last; /* sequence of the last message on `subject` this journal saw */
    /* The read cursor: every message on `subject` up to this sequence is reflected in the file
     * (applied, or a claim or an abandoned part, which change nothing). Claims do not move the
     * file's own position, so reading resumes from here, not from it. */
    uint64_t applied_upto;
    uint64_t snap_last; /* sequence of the newest snapshot record this journal knows; 0: none */
    bool behind;
    uint64_t since_entries, since_bytes; /* appended since the last snapshot */
    dt__journal_stats stats;
};

void dt__journal_logf(dt__journal *j, dt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One complete entry read from the log. */
typedef struct dt__journal_entry {
    uint64_t seq;  /* of its last part */
    uint8_t *data; /* dt_alloc'd */
    size_t len;
    bool ours;       /* written by this journal (Dt-Owner) */
    char owner[192]; /* its Dt-Owner */
} dt__journal_entry;

/*
 * Reads the first complete entry after position `after` into *out (free out->data with dt_free)
 * and advances *after past it. Parts of an entry that was never completed are skipped. Every
 * message seen moves j->last forward. DT_ENOTFOUND at the end of the log. Each message names the
 * message it was appended after (Dt-Prev): one that does not name the previous one read means
 * messages in between were purged (a snapshot was recorded meanwhile): DT_ESTATE, and the reader
 * must start again from the newest snapshot.
 */
dt_status dt__journal_read_next(dt__journal *j, uint64_t *after, dt__journal_entry *out, char *err,
                                size_t errlen);

/* Applies entries after the store's position (only this journal's own with own_only). */
dt_status dt__journal_apply_tail(dt__journal *j, dt__store *s, uint64_t epoch, bool own_only,
                                 char *err, size_t errlen);

/* Appends data as one entry (in parts when large) on j->last, each part naming the message it
 * follows (Dt-Prev); *out_seq is its last part's. */
dt_status dt__journal_append(dt__journal *j, const uint8_t *data, size_t len, uint64_t *out_seq);

/* ---- journal_snapshot.c ---- */
/* The newest snapshot record (arena memory) and its sequence: DT_ENOTFOUND when there is none. */
dt_status dt__journal_snapshot_latest(dt__journal *j, dt__arena *a, Dtpb__LogSnapshot **out,
                                      uint64_t *out_seq, char *err, size_t errlen);
/* Writes the snapshot's file to `path` (replacing what is there) after checking its size and
 * SHA-256: DT_ECORRUPT when it does not match. */
dt_status dt__journal_snapshot_restore(dt__journal *j, const Dtpb__LogSnapshot *rec,
                                       const char *path, char *err, size_t errlen);
/* dt__journal_snapshot with j->mu held. */
dt_status dt__journal_snapshot_locked(dt__journal *j, dt__store *s, bool force);

#endif
