/*
 * Self-exclusion: a worker that cannot serve a partition (it cannot open the partition's store:
 * a read-only or full data directory, a file of a newer schema, a missing file the hub has
 * history for) says so in its membership heartbeat ("excluded":[p, ...]) for a while, and every
 * worker leaves it out of p's placement (the next-highest rendezvous weight wins p), so p moves
 * to a worker that can serve it instead of stalling under one that cannot. The exclusion ends by
 * itself (the worker asks again, with a longer delay, if the store still fails), and a worker
 * whose heartbeat lists nothing is placed as before. Workers that predate this ignore the field
 * and keep placing p on the excluding worker: in a mixed fleet p then waits, as it did before.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_int.h"
#include "leases_keeper_int.h"

void dt__leases_exclude(dt__leases *l, uint32_t p, int64_t for_ms)
{
    if (l == NULL || p >= l->np || for_ms <= 0) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->parts[p].exclude_req = for_ms;
    pthread_mutex_unlock(&l->mu);
}

static size_t excluded_now(const dt__leases *l)
{
    size_t n = 0;
    for (uint32_t p = 0; p < l->np; p++) {
        n += l->parts[p].excluded_until != 0 ? 1 : 0;
    }
    return n;
}

bool dt__lk_excl_update(dt__leases *l, int64_t now)
{
    bool changed = false;
    for (uint32_t p = 0; p < l->np; p++) {
        part *pt = &l->parts[p];
        pthread_mutex_lock(&l->mu);
        int64_t req = pt->exclude_req;
        pt->exclude_req = 0;
        pthread_mutex_unlock(&l->mu);
        if (req > 0 && pt->excluded_until == 0 && excluded_now(l) >= DT__LK_EXCL_MAX) {
            /* The heartbeat lists at most this many: excluding more would leave partitions that
             * the others place here and this worker declines. It keeps trying them instead. */
            dt__lk_log(l, DT_LOG_WARN,
                       "partition %" PRIu32 ": not excluded (already %d partitions are)", p,
                       DT__LK_EXCL_MAX);
        } else if (req > 0) {
            pt->excluded_until = now + req;
            changed = true;
            dt__lk_log(l, DT_LOG_INFO,
                       "partition %" PRIu32 ": left to other workers for %" PRId64 " ms", p, req);
        } else if (pt->excluded_until != 0 && now >= pt->excluded_until) {
            pt->excluded_until = 0;
            changed = true;
        }
    }
    return changed;
}

void dt__lk_excl_format(const dt__leases *l, int64_t now, char *buf, size_t cap)
{
    size_t used = strlen(buf);
    if (used == 0 || buf[used - 1] != '}') {
        return;
    }
    used--; /* reopen the object */
    size_t listed = 0;
    for (uint32_t p = 0; p < l->np && listed < DT__LK_EXCL_MAX; p++) {
        if (l->parts[p].excluded_until <= now) {
            continue;
        }
        int n = snprintf(buf + used, cap - used, "%s%" PRIu32,
                         listed == 0 ? ",\"excluded\":[" : ",", p);
        if (n < 0 || (size_t)n >= cap - used) {
            return;
        }
        used += (size_t)n;
        listed++;
    }
    (void)snprintf(buf + used, cap - used, "%s}", listed > 0 ? "]" : "");
}

bool dt__lk_excl_parse(const dt__leases *l, member *m, const char *record, size_t len)
{
    uint32_t got[DT__LK_EXCL_MAX];
    size_t n = 0;
    const char *s = record != NULL ? strstr(record, "\"excluded\":[") : NULL;
    if (s != NULL && (size_t)(s - record) < len) {
        s += strlen("\"excluded\":[");
        while (n < DT__LK_EXCL_MAX && *s >= '0' && *s <= '9') {
            char *end = NULL;
            unsigned long v = strtoul(s, &end, 10);
            if (v < l->np) {
                got[n++] = (uint32_t)v;
            }
            s = *end == ',' ? end + 1 : end;
        }
    }
    bool changed = n != m->nexcl || memcmp(got, m->excl, n * sizeof(got[0])) != 0;
    memcpy(m->excl, got, n * sizeof(got[0]));
    m->nexcl = n;
    return changed;
}

bool dt__lk_may_own(const dt__leases *l, const member *m, uint32_t p, int64_t now)
{
    if (m == NULL) {
        return l->parts[p].excluded_until <= now;
    }
    for (size_t i = 0; i < m->nexcl; i++) {
        if (m->excl[i] == p) {
            return false;
        }
    }
    return true;
}

int64_t dt__lk_excl_next(const dt__leases *l)
{
    int64_t next = INT64_MAX;
    for (uint32_t p = 0; p < l->np; p++) {
        if (l->parts[p].excluded_until != 0 && l->parts[p].excluded_until < next) {
            next = l->parts[p].excluded_until;
        }
    }
    return next;
}
