/*
 * The lease keeper's view of the fleet and its writes (see leases_keeper_int.h).
 *
 * The view comes from one KV watch of the whole bucket: membership heartbeats (`w.*`) and lease
 * records (`p.*`). A member or a lease that simply expires produces no watch event (the server
 * drops the message silently when it reaches the bucket's max age), so both are tracked with the
 * local time their last write was seen and considered gone one TTL later.
 *
 * The writes follow the safety rule of leases_int.h: a lease counts as held until the send time
 * of its last successful write + TTL - margin; whatever goes wrong (a conflict, a foreign write
 * seen on the watch, a deadline passed) removes it from the held set at once, and a lease that
 * left the held set never comes back (a new claim is a new lease with a new claim revision).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "leases_keeper_int.h"

/* Members tracked at most (more are ignored, with a warning). */
#define MAX_MEMBERS 1024u
/* Claim attempts per tick, so that renewals are never starved by a long claim burst. */
#define CLAIMS_PER_TICK 64
#define KEY_LEN         (DT__LEASES_ID_MAX + 8)
#define RECORD_LEN      (DT__LEASES_ID_MAX + 512)

/* ------------------------------------------------------------------------------------------- */
/* Small helpers                                                                               */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

bool dt__lk_id_valid(const char *id)
{
    size_t n = 0;
    for (const char *c = id; *c != '\0'; c++, n++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-';
        if (!ok || n >= DT__LEASES_ID_MAX) {
            return false;
        }
    }
    return n > 0;
}

/* "p.<n>" with n < np, written without leading zeros. */
static bool parse_partition(const char *s, uint32_t np, uint32_t *out)
{
    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0')) {
        return false;
    }
    uint64_t v = 0;
    for (const char *c = s; *c != '\0'; c++) {
        if (*c < '0' || *c > '9' || v >= np) {
            return false;
        }
        v = v * 10 + (uint64_t)(*c - '0');
    }
    if (v >= np) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

bool dt__lk_flag(dt__leases *l, const bool *f)
{
    pthread_mutex_lock(&l->mu);
    bool v = *f;
    pthread_mutex_unlock(&l->mu);
    return v;
}

/* A record of this keeper: it carries our token. */
static bool is_ours(const dt__leases *l, const dt_broker_kv_entry *e)
{
    return e->op == DT_BROKER_KV_PUT && e->value != NULL &&
           strstr((const char *)e->value, l->token_needle) != NULL;
}

static void part_key(uint32_t p, char *key)
{
    snprintf(key, KEY_LEN, "p.%" PRIu32, p);
}

static size_t lease_record(dt__leases *l, uint32_t p, uint64_t claim_rev, char *buf)
{
    int n = snprintf(buf, RECORD_LEN,
                     "{\"owner\":\"%s\",\"token\":\"%s\",\"n\":%" PRIu64 ",\"partition\":%" PRIu32
                     ",\"claim_rev\":%" PRIu64 ",\"at_ms\":%" PRId64 "}",
                     l->id, l->token, ++l->writes, p, claim_rev, dt__now_ms());
    return n > 0 ? (size_t)n : 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The held set                                                                                */

/* Marks p held from a write sent at `sent` (mono ms). False if the write came back so late that
 * the resulting deadline has passed: then p is not held (and a caller that saw it expire never
 * sees it again). */
static bool grant(dt__leases *l, uint32_t p, int64_t sent, uint64_t claim_rev)
{
    part *pt = &l->parts[p];
    int64_t until = sent + l->ttl - l->margin;
    pthread_mutex_lock(&l->mu);
    bool ok = dt__mono_ms() < until && (pt->held ? dt__mono_ms() < pt->valid_until : true);
    if (ok) {
        if (!pt->held) {
            l->changed = true;
        }
        pt->held = true;
        pt->valid_until = until;
        pt->claim_rev = claim_rev;
    } else if (pt->held) {
        pt->held = false;
        l->changed = true;
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static void drop(dt__leases *l, uint32_t p)
{
    pthread_mutex_lock(&l->mu);
    if (l->parts[p].held) {
        l->parts[p].held = false;
        l->changed = true;
    }
    pthread_mutex_unlock(&l->mu);
}

static void notify(dt__leases *l)
{
    if (l->changed) {
        l->changed = false;
        if (l->on_change != NULL) {
            l->on_change(l->ctx);
        }
    }
}

/* The lease was lost (someone else wrote the key, or it expired): stop counting it at once. */
static void lost(dt__leases *l, uint32_t p, const char *why)
{
    drop(l, p);
    part *pt = &l->parts[p];
    pt->claim_after = dt__mono_ms() + l->backoff_first;
    pt->backoff = l->backoff_first;
    dt__lk_log(l, DT_LOG_WARN, "partition %" PRIu32 ": lease lost (%s)", p, why);
}

/* Conditional delete of our record of p (best effort: a failure leaves it to expire). */
static dt_status release_key(dt__leases *l, uint32_t p, uint64_t rev)
{
    char key[KEY_LEN];
    part_key(p, key);
    dt_status st = dt_broker_kv_delete(l->kv, key, rev);
    if (st == DT_OK) {
        dt__lk_log(l, DT_LOG_INFO, "partition %" PRIu32 ": released", p);
    } else {
        dt__lk_log(l, DT_LOG_WARN, "partition %" PRIu32 ": release failed: %s (%s)", p,
                   dt_status_name(st), dt_broker_kv_errmsg(l->kv));
    }
    return st;
}

/* ------------------------------------------------------------------------------------------- */
/* Membership and placement                                                                    */

static member *member_find(dt__leases *l, const char *id)
{
    for (size_t i = 0; i < l->nmembers; i++) {
        if (strcmp(l->members[i].id, id) == 0) {
            return &l->members[i];
        }
    }
    return NULL;
}

static bool members_grow(dt__leases *l)
{
    if (l->members_cap >= MAX_MEMBERS) {
        return false;
    }
    size_t cap = l->members_cap == 0 ? 16 : l->members_cap * 2;
    member *m = dt_realloc(l->members, cap * sizeof(*m));
    if (m == NULL) {
        return false;
    }
    l->members = m;
    l->members_cap = cap;
    return true;
}

static void member_seen(dt__leases *l, const char *id, int64_t now)
{
    member *m = member_find(l, id);
    if (m != NULL) {
        m->seen = now;
        return;
    }
    if (l->nmembers == l->members_cap && !members_grow(l)) {
        if (!l->members_full_warned) {
            dt__lk_log(l, DT_LOG_WARN, "member %s ignored: %zu members tracked at most", id,
                       l->nmembers);
            l->members_full_warned = true;
        }
        return;
    }
    m = &l->members[l->nmembers++];
    snprintf(m->id, sizeof(m->id), "%s", id);
    m->hash = dt__leases_id_hash(id);
    m->seen = now;
    l->members_changed = true;
    dt__lk_log(l, DT_LOG_INFO, "member %s joined (%zu others)", id, l->nmembers);
}

static void member_remove(dt__leases *l, size_t i, const char *why)
{
    dt__lk_log(l, DT_LOG_INFO, "member %s %s", l->members[i].id, why);
    l->members[i] = l->members[--l->nmembers];
    l->members_changed = true;
}

static void members_expire(dt__leases *l, int64_t now)
{
    for (size_t i = 0; i < l->nmembers;) {
        if (now - l->members[i].seen >= l->ttl) {
            member_remove(l, i, "expired (no heartbeat for a TTL)");
        } else {
            i++;
        }
    }
}

/* Whether this worker wins p among the members that may own it (leases_exclude.c); ids and
 * hashes are scratch arrays of nmembers + 1 entries. */
static bool wins(dt__leases *l, uint32_t p, const char **ids, uint64_t *hashes, int64_t now)
{
    if (!dt__lk_may_own(l, NULL, p, now)) {
        return false;
    }
    size_t n = 0;
    ids[n] = l->id;
    hashes[n++] = l->id_hash;
    for (size_t i = 0; i < l->nmembers; i++) {
        if (dt__lk_may_own(l, &l->members[i], p, now)) {
            ids[n] = l->members[i].id;
            hashes[n++] = l->members[i].hash;
        }
    }
    return dt__leases_place(ids, hashes, n, p) == 0;
}

/* Recomputes which partitions this worker should own. Keeps members_changed on ENOMEM. */
static void recompute(dt__leases *l)
{
    size_t n = l->nmembers + 1;
    const char **ids = dt_alloc(n * sizeof(*ids));
    uint64_t *hashes = dt_alloc(n * sizeof(*hashes));
    if (ids != NULL && hashes != NULL) {
        int64_t now = dt__mono_ms();
        uint32_t want = 0;
        for (uint32_t p = 0; p < l->np; p++) {
            l->parts[p].desired = wins(l, p, ids, hashes, now);
            want += l->parts[p].desired ? 1u : 0u;
        }
        l->members_changed = false;
        dt__lk_log(l, DT_LOG_DEBUG, "%zu members: this worker should own %" PRIu32 " of %" PRIu32,
                   n, want, l->np);
    }
    dt_free(ids);
    dt_free(hashes);
}

/* ------------------------------------------------------------------------------------------- */
/* Watch events                                                                                */

static void on_member_event(dt__leases *l, const char *id, const dt_broker_kv_entry *e, int64_t now)
{
    if (!dt__lk_id_valid(id) || strcmp(id, l->id) == 0) {
        return;
    }
    if (e->op == DT_BROKER_KV_PUT) {
        member_seen(l, id, now);
        member *m = member_find(l, id);
        if (m != NULL && dt__lk_excl_parse(l, m, e->value, e->len)) {
            l->members_changed = true; /* it can no longer (or again) serve some partition */
        }
        return;
    }
    for (size_t i = 0; i < l->nmembers; i++) {
        if (strcmp(l->members[i].id, id) == 0) {
            member_remove(l, i, "left");
            return;
        }
    }
}

/* How long until a record written when `e` was stored expires (server clock vs ours: a skew
 * only makes a claim attempt early, which then fails and backs off, or late by up to a TTL). */
static int64_t expires_in(const dt__leases *l, const dt_broker_kv_entry *e)
{
    int64_t left = e->created_ns / 1000000 + l->ttl - dt__now_ms();
    return left < 0 ? 0 : left > l->ttl ? l->ttl : left;
}

static void on_lease_event(dt__leases *l, uint32_t p, const dt_broker_kv_entry *e, int64_t now)
{
    part *pt = &l->parts[p];
    bool ours = is_ours(l, e);
    if (pt->held) {
        if (e->revision <= pt->rev || ours) {
            return; /* our own write (or older news) */
        }
        lost(l, p, e->op == DT_BROKER_KV_PUT ? "another worker wrote it" : "it was deleted");
    }
    pt->backoff = l->backoff_first;
    if (e->op != DT_BROKER_KV_PUT || ours) {
        pt->claim_after = now; /* free, or a stale record of ours that a claim clears */
    } else {
        pt->claim_after = now + expires_in(l, e);
    }
}

void dt__lk_on_event(dt__leases *l, const dt_broker_kv_entry *e, int64_t now)
{
    uint32_t p = 0;
    if (strncmp(e->key, "w.", 2) == 0) {
        on_member_event(l, e->key + 2, e, now);
    } else if (strncmp(e->key, "p.", 2) == 0 && parse_partition(e->key + 2, l->np, &p)) {
        on_lease_event(l, p, e, now);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Writes: heartbeat, renewals, releases, claims                                               */

static void heartbeat(dt__leases *l)
{
    char key[KEY_LEN], val[RECORD_LEN];
    snprintf(key, sizeof(key), "w.%s", l->id);
    snprintf(val, sizeof(val),
             "{\"worker_id\":\"%s\",\"token\":\"%s\",\"started_at_ms\":%" PRId64
             ",\"at_ms\":%" PRId64 "}",
             l->id, l->token, l->started_wall, dt__now_ms());
    int64_t sent = dt__mono_ms();
    dt__lk_excl_format(l, sent, val, sizeof(val));
    dt_status st = dt_broker_kv_put(l->kv, key, val, strlen(val), &l->hb_rev);
    if (st != DT_OK) {
        if (!l->hb_failing) {
            dt__lk_log(l, DT_LOG_WARN, "heartbeat failed: %s (%s)", dt_status_name(st),
                       dt_broker_kv_errmsg(l->kv));
        }
        l->hb_failing = true;
        l->hb_at = sent + l->retry;
        return;
    }
    if (l->hb_failing) {
        dt__lk_log(l, DT_LOG_INFO, "heartbeat written again");
    }
    l->hb_failing = false;
    l->hb_at = sent + l->period;
    /* Renew every lease with the heartbeat, so that membership and leases expire together
     * (a dead worker's partitions are wanted by the others when they become free). */
    for (uint32_t p = 0; p < l->np; p++) {
        l->parts[p].renew_at = min64(l->parts[p].renew_at, sent);
    }
}

static void renew(dt__leases *l, uint32_t p)
{
    part *pt = &l->parts[p];
    char key[KEY_LEN], val[RECORD_LEN];
    part_key(p, key);
    size_t n = lease_record(l, p, l->parts[p].claim_rev, val);
    int64_t sent = dt__mono_ms();
    uint64_t rev = 0;
    dt_status st = dt_broker_kv_update(l->kv, key, val, n, pt->rev, &rev);
    if (st == DT_OK) {
        pt->rev = rev;
        pt->renew_at = sent + l->period;
        if (!grant(l, p, sent, pt->claim_rev)) {
            dt__lk_log(l, DT_LOG_WARN, "partition %" PRIu32 ": renewed only after its deadline", p);
            (void)release_key(l, p, rev);
        }
    } else if (st == DT_ECONFLICT || st == DT_ENOTFOUND) {
        lost(l, p, "renewal found another revision");
    } else {
        pt->renew_at = dt__mono_ms() + l->retry;
        dt__lk_log(l, DT_LOG_WARN, "partition %" PRIu32 ": renewal failed: %s (%s)", p,
                   dt_status_name(st), dt_broker_kv_errmsg(l->kv));
    }
}

/* A record of ours that we do not hold blocks our own claim: delete it (conditionally on its
 * revision, so only that record). True when the key is free now. */
static bool clear_stale_record(dt__leases *l, uint32_t p, const char *key)
{
    dt_broker_kv_entry e = {0};
    dt_status st = dt_broker_kv_get(l->kv, key, &e);
    if (st == DT_ENOTFOUND) {
        return true;
    }
    bool cleared = false;
    if (st == DT_OK && is_ours(l, &e)) {
        cleared = dt_broker_kv_delete(l->kv, key, e.revision) == DT_OK;
        dt__lk_log(l, DT_LOG_INFO, "partition %" PRIu32 ": stale record of ours %s", p,
                   cleared ? "deleted" : "could not be deleted");
    }
    dt_broker_kv_entry_clear(&e);
    return cleared;
}

static void claim_failed(dt__leases *l, part *pt)
{
    pt->claim_after = dt__mono_ms() + pt->backoff;
    pt->backoff = min64(pt->backoff * 2, l->period);
}

static void claim(dt__leases *l, uint32_t p)
{
    part *pt = &l->parts[p];
    char key[KEY_LEN], val[RECORD_LEN];
    part_key(p, key);
    size_t n = lease_record(l, p, 0, val);
    int64_t sent = dt__mono_ms();
    uint64_t rev = 0;
    dt_status st = dt_broker_kv_create(l->kv, key, val, n, &rev);
    if (st == DT_OK) {
        pt->wrote = true;
        pt->rev = rev;
        pt->renew_at = sent + l->period;
        pt->backoff = l->backoff_first;
        if (grant(l, p, sent, rev)) {
            dt__lk_log(l, DT_LOG_INFO, "partition %" PRIu32 ": claimed (revision %" PRIu64 ")", p,
                       rev);
        } else {
            (void)release_key(l, p, rev);
            claim_failed(l, pt);
        }
    } else if (st == DT_EEXIST) {
        if (pt->wrote && clear_stale_record(l, p, key)) {
            pt->claim_after = dt__mono_ms();
        } else {
            claim_failed(l, pt);
        }
    } else {
        pt->wrote = true; /* the create may still land */
        claim_failed(l, pt);
        dt__lk_log(l, DT_LOG_WARN, "partition %" PRIu32 ": claim failed: %s (%s)", p,
                   dt_status_name(st), dt_broker_kv_errmsg(l->kv));
    }
}

/* Hands over the held partitions this worker should not own: out of the held set, on_change
 * (the caller stops acting on them), then the deletes that let the new owner claim them. */
static void release_undesired(dt__leases *l)
{
    size_t n = 0;
    for (uint32_t p = 0; p < l->np; p++) {
        if (l->parts[p].held && !l->parts[p].desired) {
            l->scratch[n++] = p;
            drop(l, p);
        }
    }
    if (n == 0) {
        return;
    }
    notify(l);
    for (size_t i = 0; i < n; i++) {
        dt_status st = release_key(l, l->scratch[i], l->parts[l->scratch[i]].rev);
        if (st != DT_OK && st != DT_ECONFLICT) {
            break; /* the broker is unreachable: the others expire within a TTL */
        }
    }
}

/* ------------------------------------------------------------------------------------------- */
/* The lease thread                                                                            */

/* Drops leases whose deadline has passed (held() already reports them not held). */
static void expire_local(dt__leases *l, int64_t now)
{
    for (uint32_t p = 0; p < l->np; p++) {
        if (l->parts[p].held && now >= l->parts[p].valid_until) {
            lost(l, p, "not renewed before its deadline");
        }
    }
}

static void renew_due(dt__leases *l)
{
    for (uint32_t p = 0; p < l->np; p++) {
        if (l->parts[p].held && dt__mono_ms() >= l->parts[p].renew_at) {
            renew(l, p);
        }
    }
}

static void claim_desired(dt__leases *l)
{
    int budget = CLAIMS_PER_TICK;
    for (uint32_t p = 0; p < l->np && budget > 0; p++) {
        part *pt = &l->parts[p];
        if (pt->desired && !pt->held && dt__mono_ms() >= pt->claim_after) {
            claim(l, p);
            budget--;
        }
    }
}

void dt__lk_tick(dt__leases *l)
{
    int64_t now = dt__mono_ms();
    if (!l->ready && now >= l->ready_deadline) {
        l->ready = true;
        dt__lk_log(l, DT_LOG_WARN, "the bucket's contents did not arrive in time; claiming anyway");
    }
    members_expire(l, now);
    if (dt__lk_excl_update(l, now)) {
        l->members_changed = true;
        l->hb_at = now; /* tell the others at once */
    }
    if (l->members_changed) {
        recompute(l);
    }
    expire_local(l, now);
    if (!dt__lk_flag(l, &l->severed)) {
        if (now >= l->hb_at) {
            heartbeat(l);
        }
        renew_due(l);
        release_undesired(l);
        if (l->ready) {
            claim_desired(l);
        }
    }
    notify(l);
}

/* When the thread must act next (mono ms). */
int64_t dt__lk_next_wake(dt__leases *l, int64_t now)
{
    bool writes = !dt__lk_flag(l, &l->severed);
    int64_t w = now + l->period;
    if (writes) {
        w = min64(w, l->hb_at);
    }
    if (!l->ready) {
        w = min64(w, l->ready_deadline);
    }
    for (size_t i = 0; i < l->nmembers; i++) {
        w = min64(w, l->members[i].seen + l->ttl);
    }
    for (uint32_t p = 0; p < l->np; p++) {
        const part *pt = &l->parts[p];
        if (pt->held) {
            w = min64(w, writes ? min64(pt->renew_at, pt->valid_until) : pt->valid_until);
        } else if (writes && l->ready && pt->desired) {
            w = min64(w, pt->claim_after);
        }
    }
    if (l->watcher == NULL) {
        w = min64(w, l->watch_retry_at);
    }
    return min64(w, dt__lk_excl_next(l));
}

/* On stop: leave the held set, tell the caller, then delete membership and leases. */
void dt__lk_release_all(dt__leases *l)
{
    size_t n = 0;
    for (uint32_t p = 0; p < l->np; p++) {
        if (l->parts[p].held) {
            l->scratch[n++] = p;
            drop(l, p);
        }
    }
    notify(l);
    if (dt__lk_flag(l, &l->severed)) {
        return;
    }
    if (l->hb_rev != 0) {
        char key[KEY_LEN];
        snprintf(key, sizeof(key), "w.%s", l->id);
        (void)dt_broker_kv_delete(l->kv, key, l->hb_rev);
    }
    /* Without the broker each delete would wait for the request timeout: after the first such
     * failure leave the rest to expire. */
    for (size_t i = 0; i < n; i++) {
        dt_status st = release_key(l, l->scratch[i], l->parts[l->scratch[i]].rev);
        if (st != DT_OK && st != DT_ECONFLICT) {
            break;
        }
    }
}
