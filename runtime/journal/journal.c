/*
 * The journal's life and its write path: appending an entry on the log's end (the commit and the
 * fence), committing a store batch through it, and catching up after an append whose outcome is
 * unknown. See journal_int.h for the whole design.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "durabletask/alloc.h"
#include "journal_impl_int.h"
#include "protocol_int.h"

void dt__journal_logf(dt__journal *j, dt_log_level level, const char *fmt, ...)
{
    if (j->log == NULL) {
        return;
    }
    char msg[1024];
    int n = snprintf(msg, sizeof(msg), "partition %u: ", j->p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    j->log(j->log_ctx, level, msg);
}

dt_status dt__journal_create(const dt__journal_config *c, dt__journal **out)
{
    if (c == NULL || c->broker == NULL || c->hub == NULL || c->owner == NULL || out == NULL ||
        c->max_msg <= (size_t)2 * DT__JOURNAL_HEADROOM) {
        return DT_EINVAL;
    }
    dt__journal *j = dt_calloc(1, sizeof(*j));
    if (j == NULL) {
        return DT_ENOMEM;
    }
    j->b = c->broker;
    j->p = c->partition;
    j->origin = c->origin;
    j->chunk = c->max_msg - DT__JOURNAL_HEADROOM;
    j->snap_entries = c->snapshot_entries > 0 ? c->snapshot_entries : DT__JOURNAL_SNAPSHOT_ENTRIES;
    j->snap_bytes = c->snapshot_bytes > 0 ? c->snapshot_bytes : DT__JOURNAL_SNAPSHOT_BYTES;
    j->log = c->log;
    j->log_ctx = c->log_ctx;
    char rnd[37], tail[32];
    dt__random_uuid(rnd);
    snprintf(j->worker_id, sizeof(j->worker_id), "%s", c->owner);
    /* The incarnation tells this journal's entries from those of an earlier run of the same
     * worker id (a restarted process), which must count as another owner. */
    snprintf(j->owner, sizeof(j->owner), "%s/%.8s", c->owner, rnd);
    dt_status st =
        dt_broker_stream_name(c->hub, DT_BROKER_STREAM_LOG, j->stream, sizeof(j->stream));
    snprintf(tail, sizeof(tail), "%u", c->partition);
    if (st == DT_OK) {
        st = dt_broker_subject(c->hub, DT_BROKER_SUBJ_LOG, tail, j->subject, sizeof(j->subject));
    }
    snprintf(tail, sizeof(tail), "%u.chunk", c->partition);
    if (st == DT_OK) {
        st = dt_broker_subject(c->hub, DT_BROKER_SUBJ_LOG, tail, j->chunk_subject,
                               sizeof(j->chunk_subject));
    }
    snprintf(tail, sizeof(tail), "%u.snap", c->partition);
    if (st == DT_OK) {
        st = dt_broker_subject(c->hub, DT_BROKER_SUBJ_LOG, tail, j->snap_subject,
                               sizeof(j->snap_subject));
    }
    if (st != DT_OK || pthread_mutex_init(&j->mu, NULL) != 0) {
        dt_free(j);
        return st != DT_OK ? st : DT_ENOMEM;
    }
    *out = j;
    return DT_OK;
}

void dt__journal_destroy(dt__journal *j)
{
    if (j == NULL) {
        return;
    }
    pthread_mutex_destroy(&j->mu);
    dt_free(j);
}

/* Whether a failed publish may have been stored anyway (no answer came). */
static bool outcome_unknown(dt_status st)
{
    return st != DT_OK && st != DT_ECONFLICT && st != DT_ETOOLARGE && st != DT_EINVAL;
}

dt_status dt__journal_append(dt__journal *j, const uint8_t *data, size_t len, uint64_t *out_seq)
{
    size_t parts = len == 0 ? 1 : (len + j->chunk - 1) / j->chunk;
    char part[48], prev[32];
    dt_broker_header h[3] = {{"Dt-Owner", j->owner}, {"Dt-Prev", prev}, {"Dt-Part", part}};
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < parts; i++) {
        snprintf(part, sizeof(part), "%zu/%zu", i + 1, parts);
        snprintf(prev, sizeof(prev), "%llu", (unsigned long long)j->last);
        size_t off = i * j->chunk, n = len - off < j->chunk ? len - off : j->chunk;
        dt_broker_outmsg m = {.subject = j->subject,
                              .headers = h,
                              .nheaders = parts > 1 ? 3 : 2,
                              .data = len > 0 ? data + off : (const uint8_t *)"",
                              .len = n,
                              .expect_no_message = j->last == 0,
                              .expect_last_subject_seq = j->last};
        dt_broker_puback ack = {0};
        st = dt_broker_publish(j->b, &m, &ack);
        if (st == DT_OK) {
            j->last = ack.stream_seq;
            j->stats.appended++;
        }
    }
    if (st == DT_OK) {
        *out_seq = j->last;
    }
    return st;
}

dt_status dt__journal_commit(dt__journal *j, dt__store *s, uint64_t epoch, const dt__store_batch *b)
{
    dt__arena *a = dt__arena_create((size_t)64 * 1024);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    dt_status st = dt__journal_encode(a, b, &data, &len);
    pthread_mutex_lock(&j->mu);
    if (st == DT_OK && j->behind) {
        st = DT_ESTATE;
    }
    if (st == DT_OK) {
        st = dt__store_batch_begin(s, epoch, b); /* a batch the store refuses is never logged */
    }
    if (st != DT_OK) {
        pthread_mutex_unlock(&j->mu);
        dt__arena_destroy(a);
        return st;
    }
    uint64_t seq = 0;
    st = dt__journal_append(j, data, len, &seq);
    if (st != DT_OK) {
        dt__store_batch_end(s, false, 0);
        if (st == DT_ECONFLICT) {
            dt__journal_logf(j, DT_LOG_WARN,
                             "log append refused: another owner appended "
                             "(this worker no longer owns the partition)");
            st = DT_EFENCED;
        } else if (outcome_unknown(st)) {
            j->behind = true; /* it may be in the log: read it back before the next commit */
        }
    } else {
        j->since_entries++;
        j->since_bytes += len;
        dt_status local = dt__store_batch_end(s, true, seq);
        if (local == DT_OK) {
            j->applied_upto = seq;
        } else {
            /* Durable in the log; the file catches up from it before the next commit. */
            j->behind = true;
            dt__journal_logf(j, DT_LOG_WARN, "local commit of log entry %llu failed (%s): %s",
                             (unsigned long long)seq, dt_status_name(local), dt__store_errmsg(s));
        }
    }
    pthread_mutex_unlock(&j->mu);
    dt__arena_destroy(a);
    return st;
}

bool dt__journal_behind(dt__journal *j)
{
    pthread_mutex_lock(&j->mu);
    bool behind = j->behind;
    pthread_mutex_unlock(&j->mu);
    return behind;
}

dt_status dt__journal_catch_up(dt__journal *j, dt__store *s, uint64_t epoch, uint64_t *out_applied)
{
    char err[512] = "";
    pthread_mutex_lock(&j->mu);
    uint64_t before = j->stats.applied;
    dt_status st = dt__journal_apply_tail(j, s, epoch, true, err, sizeof(err));
    if (st == DT_ESTATE) {
        st = DT_EFENCED; /* messages purged under this owner: only another owner does that */
    }
    *out_applied = j->stats.applied - before;
    if (st == DT_OK) {
        j->behind = false;
    } else {
        dt__journal_logf(j, st == DT_EFENCED ? DT_LOG_WARN : DT_LOG_ERROR, "catching up: %s", err);
    }
    pthread_mutex_unlock(&j->mu);
    return st;
}

dt_status dt__journal_snapshot(dt__journal *j, dt__store *s, bool force)
{
    pthread_mutex_lock(&j->mu);
    dt_status st = dt__journal_snapshot_locked(j, s, force);
    pthread_mutex_unlock(&j->mu);
    return st;
}

void dt__journal_get_stats(dt__journal *j, dt__journal_stats *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->stats;
    out->last_seq = j->last;
    pthread_mutex_unlock(&j->mu);
}
