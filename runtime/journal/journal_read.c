/*
 * Reading the log back: complete entries in order (parts reassembled, abandoned parts skipped),
 * and applying them to a store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_int.h"
#include "durabletask/alloc.h"
#include "journal_impl_int.h"

/* "i/n" of a part; a message without the header is a whole entry (1/1). */
static bool part_of(dt_broker_msg *m, unsigned long *i, unsigned long *n)
{
    const char *v = NULL;
    if (dt_broker_msg_header(m, "Dt-Part", &v) != DT_OK || v == NULL) {
        *i = *n = 1;
        return true;
    }
    char *end = NULL;
    *i = strtoul(v, &end, 10);
    if (end == NULL || *end != '/') {
        return false;
    }
    *n = strtoul(end + 1, &end, 10);
    return *end == '\0' && *i >= 1 && *i <= *n;
}

dt_status dt__journal_read_next(dt__journal *j, uint64_t *after, dt__journal_entry *out, char *err,
                                size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    unsigned long want = 1, total = 0; /* next part expected of the group being read */
    char owner[192] = "";
    uint64_t cursor = *after; /* the message the next one must name as its Dt-Prev */
    for (;;) {
        dt_broker_msg *m = NULL;
        dt_status st =
            dt_broker_stream_get(j->b, j->stream, j->subject, DT_BROKER_GET_NEXT, *after + 1, &m);
        if (st != DT_OK) {
            if (st != DT_ENOTFOUND) {
                snprintf(err, errlen, "reading the log: %s", dt_broker_errmsg(j->b));
            }
            dt_free(buf);
            return st;
        }
        uint64_t seq = dt_broker_msg_stored_seq(m);
        *after = seq;
        if (seq > j->last) {
            j->last = seq;
        }
        const char *pv = NULL;
        bool chained = dt_broker_msg_header(m, "Dt-Prev", &pv) == DT_OK && pv != NULL &&
                       strtoull(pv, NULL, 10) == cursor;
        if (!chained) {
            /* pv points into m: format before destroying it. */
            snprintf(err, errlen,
                     "log message %llu follows %s, not %llu: the messages in between were purged "
                     "(a newer snapshot holds them)",
                     (unsigned long long)seq, pv != NULL ? pv : "(nothing named)",
                     (unsigned long long)cursor);
            dt_broker_msg_destroy(m);
            dt_free(buf);
            return DT_ESTATE;
        }
        cursor = seq;
        unsigned long i = 0, n = 0;
        if (!part_of(m, &i, &n)) {
            dt_broker_msg_destroy(m);
            dt_free(buf);
            snprintf(err, errlen, "log entry %llu has a bad Dt-Part header",
                     (unsigned long long)seq);
            return DT_ECORRUPT;
        }
        if (i == 1) { /* a new entry: whatever was being assembled was abandoned */
            len = 0;
            want = 1;
            total = n;
            const char *o = NULL;
            snprintf(owner, sizeof(owner), "%s",
                     dt_broker_msg_header(m, "Dt-Owner", &o) == DT_OK && o != NULL ? o : "");
        }
        if (i != want || n != total) { /* a part of an abandoned entry */
            dt_broker_msg_destroy(m);
            want = 0;
            continue;
        }
        size_t add = dt_broker_msg_len(m);
        uint8_t *grown = dt_realloc(buf, len + add + 1);
        if (grown == NULL) {
            dt_broker_msg_destroy(m);
            dt_free(buf);
            snprintf(err, errlen, "out of memory reading the log");
            return DT_ENOMEM;
        }
        buf = grown;
        memcpy(buf + len, dt_broker_msg_data(m), add);
        len += add;
        dt_broker_msg_destroy(m);
        if (i == n) {
            out->seq = seq;
            out->data = buf;
            out->len = len;
            out->ours = strcmp(owner, j->owner) == 0;
            snprintf(out->owner, sizeof(out->owner), "%s", owner);
            return DT_OK;
        }
        want = i + 1;
    }
}

/* Applies one entry at its position. */
static dt_status apply(dt__journal *j, dt__store *s, uint64_t epoch, const dt__journal_entry *e,
                       char *err, size_t errlen)
{
    dt__arena *a = dt__arena_create((size_t)64 * 1024);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    dt__store_batch b;
    bool empty = false;
    dt_status st = dt__journal_decode(a, e->data, e->len, &b, &empty);
    if (st == DT_EDECODE) {
        snprintf(err, errlen, "log entry %llu is not a LogChange", (unsigned long long)e->seq);
        st = DT_ECORRUPT;
    }
    if (st == DT_OK && !empty) {
        st = dt__store_batch_begin(s, epoch, &b);
        st = st == DT_OK ? dt__store_batch_end(s, true, e->seq) : st;
        if (st != DT_OK) {
            snprintf(err, errlen, "applying log entry %llu: %s", (unsigned long long)e->seq,
                     dt__store_errmsg(s));
        }
    }
    if (st == DT_OK) {
        j->stats.applied++;
    }
    dt__arena_destroy(a);
    return st;
}

dt_status dt__journal_apply_tail(dt__journal *j, dt__store *s, uint64_t epoch, bool own_only,
                                 char *err, size_t errlen)
{
    uint64_t pos = 0;
    int64_t origin = 0;
    dt_status st = dt__store_log_pos(s, &pos, &origin);
    if (st != DT_OK) {
        snprintf(err, errlen, "%s", dt__store_errmsg(s));
        return st;
    }
    /* Claims change no row, so the file's position can be behind entries already read: start
     * from whichever is later, the file's position or what this journal applied. */
    uint64_t after = pos > j->applied_upto ? pos : j->applied_upto;
    for (;;) {
        dt__journal_entry e = {0};
        st = dt__journal_read_next(j, &after, &e, err, errlen);
        if (st == DT_ENOTFOUND) {
            return DT_OK;
        }
        if (st != DT_OK) {
            return st;
        }
        if (own_only && !e.ours) {
            snprintf(err, errlen, "log entry %llu was written by %s: another owner took over",
                     (unsigned long long)e.seq, e.owner);
            dt_free(e.data);
            return DT_EFENCED;
        }
        st = apply(j, s, epoch, &e, err, errlen);
        dt_free(e.data);
        if (st != DT_OK) {
            return st;
        }
        j->applied_upto = e.seq;
    }
}
