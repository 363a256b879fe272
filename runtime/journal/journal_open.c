/*
 * Taking a partition over: decide whether the local file can serve as the log's view, replace it
 * with the newest snapshot when it cannot, apply the log after its position, and append a claim
 * that fences every earlier owner. A claim that races another append starts over (the other
 * appender may be a stale owner still finishing a batch, or another new owner).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common_int.h"
#include "journal_impl_int.h"

#define CLAIM_ATTEMPTS 5

/* What the log says before the file is judged. */
typedef struct log_view {
    uint64_t last;           /* the last message on the entries' subject; 0: none */
    Dtpb__LogSnapshot *snap; /* the newest snapshot record; NULL: none */
    uint64_t snap_seq;       /* its sequence */
} log_view;

static dt_status read_view(dt__journal *j, dt__arena *a, log_view *v, char *err, size_t errlen)
{
    dt_broker_msg *m = NULL;
    dt_status st = dt_broker_stream_get(j->b, j->stream, j->subject, DT_BROKER_GET_LAST, 0, &m);
    if (st == DT_OK) {
        v->last = dt_broker_msg_stored_seq(m);
        dt_broker_msg_destroy(m);
    } else if (st == DT_ENOTFOUND) {
        v->last = 0;
    } else {
        snprintf(err, errlen, "reading the log's end: %s", dt_broker_errmsg(j->b));
        return st;
    }
    st = dt__journal_snapshot_latest(j, a, &v->snap, &v->snap_seq, err, errlen);
    if (st == DT_ENOTFOUND) {
        v->snap = NULL;
        v->snap_seq = 0;
        st = DT_OK;
    }
    return st;
}

static void remove_files(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[4200];
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
}

/* How the existing file relates to the log. */
typedef enum { FILE_NONE, FILE_KEEP, FILE_ADOPT, FILE_DISCARD, FILE_REFUSE } file_verdict;

static file_verdict judge(dt__journal *j, const char *path, const dt__store_options *so,
                          const log_view *v, dt__store **out, char *why, size_t whylen)
{
    if (access(path, F_OK) != 0) {
        return FILE_NONE;
    }
    char err[512] = "";
    dt__store *s = NULL;
    dt_status st = dt__store_open(path, so, &s, err, sizeof(err));
    if (st == DT_EVERSION) {
        /* A newer build's file: this worker is too old for the partition (a mixed fleet during
         * an upgrade); it steps back rather than destroy what the newer one wrote. */
        snprintf(why, whylen, "%s", err);
        return FILE_REFUSE;
    }
    if (st != DT_OK) {
        snprintf(why, whylen, "the file does not open (%s)", err);
        return FILE_DISCARD;
    }
    uint64_t pos = 0;
    int64_t origin = 0;
    uint64_t n = 0;
    dt__instance_filter all = {0};
    st = dt__store_log_pos(s, &pos, &origin);
    if (st == DT_OK && origin == 0 && pos == 0) {
        st = dt__store_count(s, &all, &n); /* O(instances): only for a file never logged */
    }
    file_verdict verdict = FILE_KEEP;
    if (st != DT_OK) {
        snprintf(why, whylen, "the file does not read (%s)", dt__store_errmsg(s));
        verdict = FILE_DISCARD;
    } else if (origin == 0 && pos == 0) {
        /* Never a view of a log: new, or written before the hub had one. Only the log's first
         * owner may bring its rows in; otherwise the log is the truth. */
        bool log_empty = v->last == 0 && v->snap == NULL;
        verdict = log_empty ? FILE_ADOPT : (n == 0 ? FILE_NONE : FILE_REFUSE);
        snprintf(why, whylen,
                 "%s was written before the partition had a log and holds %llu instances, but the "
                 "log already has content (another worker started the partition without this "
                 "file): move the file away to let this worker serve the partition from the log, "
                 "or bring the log's content into it by hand; nothing is deleted",
                 path, (unsigned long long)n);
    } else if (origin != j->origin) {
        snprintf(why, whylen, "the file belongs to another log (a hub created at %lld ms)",
                 (long long)origin);
        verdict = FILE_DISCARD;
    } else if (pos > v->last) {
        /* The log lost messages the file reflects (a stream deleted and made again, a lost
         * single-replica disk), or the read came from a replica that lags: the file may be the
         * only copy of that state, so it is kept and the partition left (tried again later). */
        snprintf(why, whylen,
                 "%s is at log position %llu, past the log's end %llu: the log lost messages "
                 "(or a replica lags); the file is kept and not served",
                 path, (unsigned long long)pos, (unsigned long long)v->last);
        verdict = FILE_REFUSE;
    } else if (v->snap != NULL && pos < v->snap->log_seq) {
        snprintf(why, whylen, "the file is at log position %llu, behind the newest snapshot (%llu)",
                 (unsigned long long)pos, (unsigned long long)v->snap->log_seq);
        verdict = FILE_DISCARD;
    }
    if (verdict == FILE_KEEP || verdict == FILE_ADOPT) {
        *out = s;
    } else {
        dt__store_close(s);
    }
    return verdict;
}

/* One attempt: DT_ECONFLICT when the claim lost a race (start over). */
static dt_status attempt(dt__journal *j, const char *path, const dt__store_options *so,
                         bool restore, dt__store **out_store, uint64_t *out_epoch, char *err,
                         size_t errlen)
{
    dt__arena *a = dt__arena_create((size_t)16 * 1024);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    log_view v = {0};
    dt__store *s = NULL;
    char why[600] = "";
    dt_status st = read_view(j, a, &v, err, errlen);
    file_verdict fv = st == DT_OK ? judge(j, path, so, &v, &s, why, sizeof(why)) : FILE_NONE;
    if (fv == FILE_REFUSE) {
        snprintf(err, errlen, "%s", why);
        st = DT_EVERSION; /* the worker leaves the partition to others for a while */
    }
    if (st == DT_OK && restore && fv == FILE_KEEP) {
        dt__store_close(s); /* the log has a gap after the file's position: start over */
        s = NULL;
        fv = FILE_DISCARD;
        snprintf(why, sizeof(why), "the log was purged past its position");
    }
    j->applied_upto = 0;
    j->snap_last = v.snap_seq;
    if (st == DT_OK && (fv == FILE_NONE || fv == FILE_DISCARD)) {
        if (fv == FILE_DISCARD) {
            dt__journal_logf(j, DT_LOG_WARN, "local store %s replaced: %s", path, why);
        }
        remove_files(path);
        if (v.snap != NULL) {
            st = dt__journal_snapshot_restore(j, v.snap, path, err, errlen);
            j->stats.restored_seq = st == DT_OK ? v.snap->log_seq : 0;
        }
        if (st == DT_OK) {
            st = dt__store_open(path, so, &s, err, errlen);
        }
    }
    j->stats.kept_file = fv == FILE_KEEP;
    uint64_t epoch = 0;
    if (st == DT_OK) {
        st = dt__store_claim(s, j->worker_id, &epoch);
        if (st != DT_OK) {
            snprintf(err, errlen, "%s", dt__store_errmsg(s));
        }
    }
    uint64_t pos = 0;
    int64_t origin = 0;
    if (st == DT_OK) {
        st = dt__store_log_pos(s, &pos, &origin);
    }
    if (st == DT_OK && origin == 0 && fv != FILE_ADOPT) {
        st = dt__store_log_origin_set(s, epoch, j->origin); /* a new file: position 0 */
    }
    uint64_t n_rows = 0;
    dt__instance_filter all = {0};
    if (st == DT_OK && fv == FILE_ADOPT && dt__store_count(s, &all, &n_rows) == DT_OK &&
        n_rows > 0) {
        /* A file from before the log becomes its start: its snapshot is recorded first, on the
         * condition that no snapshot exists (one adopter wins), and only then is the file marked
         * as this log's. A crash in between leaves the file unmarked and the snapshot holding it:
         * nothing is lost either way. */
        dt__journal_logf(j, DT_LOG_INFO,
                         "local store %s (%llu instances) adopted as the log's start", path,
                         (unsigned long long)n_rows);
        st = dt__journal_snapshot_locked(j, s, true);
        if (st != DT_OK) {
            snprintf(err, errlen, "snapshot of the adopted store %s failed", path);
            st = st == DT_ECONFLICT ? DT_EBUSY : st;
        }
    }
    if (st == DT_OK && fv == FILE_ADOPT) {
        st = dt__store_log_origin_set(s, epoch, j->origin);
    }
    int64_t t0 = dt__mono_ms();
    uint64_t applied0 = j->stats.applied;
    if (st == DT_OK) {
        j->last = v.last;
        st = dt__journal_apply_tail(j, s, epoch, false, err, errlen);
    }
    if (st == DT_OK) {
        uint64_t seq = 0;
        st = dt__journal_append(j, NULL, 0, &seq); /* the claim */
        if (st == DT_ECONFLICT) {
            snprintf(err, errlen, "another owner appended while this one took over");
        } else if (st != DT_OK) {
            snprintf(err, errlen, "appending the claim: %s", dt_broker_errmsg(j->b));
        } else {
            j->applied_upto = seq;
        }
    }
    if (st == DT_OK) {
        uint64_t applied = j->stats.applied - applied0;
        /* The entries since the last snapshot, as far as this owner knows: a partition that
         * changes owner often still gets its snapshots. */
        j->since_entries = applied;
        if (applied > 0 || j->stats.restored_seq > 0) {
            dt__journal_logf(j, DT_LOG_INFO,
                             "store rebuilt from the log: snapshot at %llu, %llu entries applied, "
                             "%lld ms",
                             (unsigned long long)j->stats.restored_seq, (unsigned long long)applied,
                             (long long)(dt__mono_ms() - t0));
        }
        *out_store = s;
        *out_epoch = epoch;
    } else {
        dt__store_close(s);
    }
    dt__arena_destroy(a);
    return st;
}

dt_status dt__journal_open(dt__journal *j, const char *db_path, const dt__store_options *so,
                           dt__store **out_store, uint64_t *out_epoch, char *err, size_t errlen)
{
    pthread_mutex_lock(&j->mu);
    j->behind = false;
    j->since_entries = j->since_bytes = 0;
    dt_status st = DT_ECONFLICT;
    bool restore = false;
    for (int i = 0; i < CLAIM_ATTEMPTS && (st == DT_ECONFLICT || st == DT_ESTATE); i++) {
        restore = restore || st == DT_ESTATE; /* a gap: the file cannot be brought forward */
        st = attempt(j, db_path, so, restore, out_store, out_epoch, err, errlen);
    }
    st = st == DT_ESTATE ? DT_ECONFLICT : st;
    pthread_mutex_unlock(&j->mu);
    return st;
}
