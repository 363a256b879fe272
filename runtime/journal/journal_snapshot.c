/*
 * Snapshots: the partition's store file at a log position, stored in chunks and closed by a
 * LogSnapshot record, so that a new owner restores it and replays only the log after it; once a
 * snapshot is recorded, the log entries below its position and older snapshots are purged.
 *
 * Order makes it crash-safe: chunks first, the record last (a snapshot without its record is
 * never read), purges after the record (an interrupted purge leaves more than needed, never
 * less). The purge keeps the entry at the snapshot's position, so the log's last entry always
 * stays and the next conditional append still has its anchor.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common_int.h"
#include "durabletask/alloc.h"
#include "journal_impl_int.h"
#include "protocol_int.h"

dt_status dt__journal_snapshot_latest(dt__journal *j, dt__arena *a, Dtpb__LogSnapshot **out,
                                      uint64_t *out_seq, char *err, size_t errlen)
{
    dt_broker_msg *m = NULL;
    dt_status st =
        dt_broker_stream_get(j->b, j->stream, j->snap_subject, DT_BROKER_GET_LAST, 0, &m);
    if (st != DT_OK) {
        if (st != DT_ENOTFOUND) {
            snprintf(err, errlen, "reading the snapshot record: %s", dt_broker_errmsg(j->b));
        }
        return st;
    }
    Dtpb__LogSnapshot *rec = dtpb__log_snapshot__unpack(
        dt__arena_pb_allocator(a), dt_broker_msg_len(m), dt_broker_msg_data(m));
    *out_seq = dt_broker_msg_stored_seq(m);
    dt_broker_msg_destroy(m);
    if (rec == NULL || rec->sha256.len != 32) {
        snprintf(err, errlen, "the newest snapshot record of the partition is unreadable");
        return DT_ECORRUPT;
    }
    *out = rec;
    return DT_OK;
}

dt_status dt__journal_snapshot_restore(dt__journal *j, const Dtpb__LogSnapshot *rec,
                                       const char *path, char *err, size_t errlen)
{
    if (rec->origin != j->origin) {
        snprintf(err, errlen, "the newest snapshot belongs to another log (origin %lld)",
                 (long long)rec->origin);
        return DT_ECORRUPT;
    }
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.restore", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return DT_EIO;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    dt_status st = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? DT_OK : DT_ENOMEM;
    uint64_t size = 0;
    for (size_t i = 0; st == DT_OK && i < rec->n_chunk_seqs; i++) {
        dt_broker_msg *m = NULL;
        st = dt_broker_stream_get(j->b, j->stream, NULL, DT_BROKER_GET_SEQ, rec->chunk_seqs[i], &m);
        if (st != DT_OK) {
            snprintf(err, errlen, "snapshot chunk %zu (seq %llu): %s", i,
                     (unsigned long long)rec->chunk_seqs[i], dt_broker_errmsg(j->b));
            st = st == DT_ENOTFOUND ? DT_ECORRUPT : st;
            break;
        }
        size_t n = dt_broker_msg_len(m);
        if (fwrite(dt_broker_msg_data(m), 1, n, f) != n) {
            snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
            st = DT_EIO;
        }
        EVP_DigestUpdate(md, dt_broker_msg_data(m), n);
        size += n;
        dt_broker_msg_destroy(m);
    }
    uint8_t digest[32];
    unsigned dlen = 0;
    if (st == DT_OK) {
        EVP_DigestFinal_ex(md, digest, &dlen);
        if (size != rec->size || dlen != 32 || memcmp(digest, rec->sha256.data, 32) != 0) {
            snprintf(err, errlen,
                     "snapshot at log position %llu does not match its record "
                     "(%llu bytes read, %llu recorded, or another SHA-256)",
                     (unsigned long long)rec->log_seq, (unsigned long long)size,
                     (unsigned long long)rec->size);
            st = DT_ECORRUPT;
        }
    }
    EVP_MD_CTX_free(md);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = st == DT_OK ? DT_EIO : st;
    }
    if (fclose(f) != 0 && st == DT_OK) {
        st = DT_EIO;
    }
    if (st == DT_OK && rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
        st = DT_EIO;
    }
    if (st != DT_OK) {
        unlink(tmp);
    }
    return st;
}

/* Publishes one message synchronously; *seq receives its stream sequence. With `after` (the
 * snapshot record), only if the subject's last message is still the one this journal knows. */
static dt_status put(dt__journal *j, const char *subject, const void *data, size_t len,
                     const uint64_t *after, uint64_t *seq)
{
    dt_broker_header h = {"Dt-Owner", j->owner};
    dt_broker_outmsg m = {.subject = subject,
                          .headers = &h,
                          .nheaders = 1,
                          .data = data,
                          .len = len,
                          .expect_no_message = after != NULL && *after == 0,
                          .expect_last_subject_seq = after != NULL ? *after : 0};
    dt_broker_puback ack = {0};
    dt_status st = dt_broker_publish(j->b, &m, &ack);
    *seq = ack.stream_seq;
    return st;
}

/* Uploads the file at path in chunks; fills the record's chunk list, size and digest. */
static dt_status upload(dt__journal *j, dt__arena *a, const char *path, Dtpb__LogSnapshot *rec)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return DT_EIO;
    }
    uint8_t *buf = dt_alloc(j->chunk);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    dt_status st = buf != NULL && md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
                       ? DT_OK
                       : DT_ENOMEM;
    size_t cap = 0;
    while (st == DT_OK) {
        size_t n = fread(buf, 1, j->chunk, f);
        if (n == 0) {
            st = ferror(f) ? DT_EIO : DT_OK;
            break;
        }
        uint64_t seq = 0;
        st = put(j, j->chunk_subject, buf, n, NULL, &seq);
        if (st == DT_OK && !dt__arena_grow(a, (void **)&rec->chunk_seqs, &cap, rec->n_chunk_seqs,
                                           sizeof(uint64_t))) {
            st = DT_ENOMEM;
        }
        if (st == DT_OK) {
            rec->chunk_seqs[rec->n_chunk_seqs++] = seq;
            rec->size += n;
            EVP_DigestUpdate(md, buf, n);
        }
    }
    uint8_t *digest = dt__arena_alloc(a, 32);
    unsigned dlen = 0;
    if (st == DT_OK && (digest == NULL || EVP_DigestFinal_ex(md, digest, &dlen) != 1)) {
        st = DT_ENOMEM;
    }
    if (st == DT_OK) {
        rec->has_size = rec->has_sha256 = true;
        rec->sha256 = (ProtobufCBinaryData){dlen, digest};
    }
    EVP_MD_CTX_free(md);
    dt_free(buf);
    (void)fclose(f); /* opened for reading: nothing to lose */
    return st;
}

dt_status dt__journal_snapshot_locked(dt__journal *j, dt__store *s, bool force)
{
    if (!force && j->since_entries < j->snap_entries && j->since_bytes < j->snap_bytes) {
        return DT_OK;
    }
    if (j->behind) {
        return DT_ESTATE;
    }
    uint64_t pos = 0;
    int64_t origin = 0; /* the file's; the record names the journal's (an adopted file has none) */
    dt_status st = dt__store_log_pos(s, &pos, &origin);
    if (st != DT_OK) {
        return st;
    }
    int64_t t0 = dt__mono_ms();
    char path[4200];
    snprintf(path, sizeof(path), "%s.snapshot", dt__store_path(s));
    unlink(path); /* left by a crash during an earlier snapshot */
    st = dt__store_backup(s, path);
    if (st != DT_OK) {
        dt__journal_logf(j, DT_LOG_WARN, "snapshot: %s", dt__store_errmsg(s));
        return st;
    }
    dt__arena *a = dt__arena_create((size_t)16 * 1024);
    Dtpb__LogSnapshot rec = DTPB__LOG_SNAPSHOT__INIT;
    rec.has_log_seq = rec.has_origin = rec.has_taken_ms = true;
    rec.log_seq = pos;
    rec.origin = j->origin;
    rec.taken_ms = dt__now_ms();
    st = a == NULL ? DT_ENOMEM : upload(j, a, path, &rec);
    unlink(path);
    uint64_t rec_seq = 0;
    size_t len = 0;
    uint8_t *data = st == DT_OK ? dt__pack(a, &rec.base, &len) : NULL;
    if (st == DT_OK) {
        /* Conditional on the newest record this journal knows: a stale owner (or one that
         * missed a newer snapshot) cannot put an older snapshot in front of a newer one, whose
         * purge removed the log between them. */
        st = data == NULL ? DT_ENOMEM : put(j, j->snap_subject, data, len, &j->snap_last, &rec_seq);
    }
    if (st == DT_ECONFLICT) {
        Dtpb__LogSnapshot *newer = NULL;
        char err[256];
        if (dt__journal_snapshot_latest(j, a, &newer, &j->snap_last, err, sizeof(err)) != DT_OK) {
            j->snap_last = 0;
        }
        dt__journal_logf(j, DT_LOG_WARN,
                         "snapshot at log position %llu not recorded: a newer record exists",
                         (unsigned long long)pos);
        dt__arena_destroy(a);
        return st;
    }
    if (st != DT_OK) {
        dt__journal_logf(j, DT_LOG_WARN, "snapshot at log position %llu not stored: %s",
                         (unsigned long long)pos, dt_broker_errmsg(j->b));
        dt__arena_destroy(a);
        return st;
    }
    j->snap_last = rec_seq;
    j->since_entries = j->since_bytes = 0;
    j->stats.snapshots++;
    /* Best effort: what is not purged now goes with the next snapshot's purge. */
    if (pos > 0) {
        dt_broker_stream_purge(j->b, j->stream, j->subject, pos);
    }
    if (rec.n_chunk_seqs > 0) {
        dt_broker_stream_purge(j->b, j->stream, j->chunk_subject, rec.chunk_seqs[0]);
    }
    dt_broker_stream_purge(j->b, j->stream, j->snap_subject, rec_seq);
    dt__journal_logf(j, DT_LOG_INFO,
                     "snapshot at log position %llu: %llu bytes in %zu chunks, %lld ms",
                     (unsigned long long)pos, (unsigned long long)rec.size, rec.n_chunk_seqs,
                     (long long)(dt__mono_ms() - t0));
    dt__arena_destroy(a);
    return DT_OK;
}
