/*
 * Waiting for instances: one feed of the status bucket per client serves every wait on it.
 *
 * A wait used to open a watch of its own key: a consumer created on the server per wait (one
 * round trip, and server work per consumer). Now the client opens, at its first wait, one feed of
 * every change stored in the bucket (dt_broker_kv_feed: one consumer, deliver policy "new"), and
 * each wait registers its key in a table that the feed's callback consults: a change of a
 * registered key is copied to its waits and wakes them; other keys cost a hash lookup.
 *
 * Nothing is missed: a wait registers first and then reads the key's last entry. A change
 * stored before the read is in what the read returns; one stored after it is delivered by the
 * feed (armed before the registration) to the registered wait. Revisions order the two: the
 * wait keeps whichever is newer. When the feed may have missed changes — the connection came
 * back (its consumer is re-created after the feed is re-armed), or nats.c dropped deliveries of
 * an overfull queue (a gap in the consumer's sequence) — every wait re-reads its key after the
 * feed was re-armed. As a last resort against what nobody foresaw, a wait also re-reads its key
 * every RESYNC_READ_MS. A client whose feed cannot be opened (a server refusing the consumer,
 * say) waits as before, with a watch of the one key (watch_key below).
 *
 * Cost per wait: one read (the round trip that the per-wait watch's consumer creation used to
 * be), no consumer on the server; the cost of the feed: every status change of the hub reaches
 * the client, about three small messages per instance started, for as long as the client lives.
 *
 * Starts tracked for a later wait (dt__client_track_*): once the feed is open, a start of this
 * client registers its key in the table before the start is sent, as an entry the client owns,
 * and hands it the PENDING record it wrote (revision W). Every change after W is stored after the
 * registration, so the feed hands it to the entry; a wait for that instance then takes the entry
 * over and needs no read (the common "schedule, then wait" saves one round trip and the two
 * thread hand-offs of its reply). A possible loss (reconnection, gap) marks tracked entries as it
 * marks waits, and a wait taking such an entry (or one older than RESYNC_READ_MS, the waits'
 * last resort) reads as usual. The client keeps the newest TRACK_MAX entries (a start nobody
 * waits for is forgotten in time); starts whose record is not exactly the one written (a race,
 * a replace of a running instance) are not tracked.
 *
 * An instance without a record is waited for too, for the client's wait_missing_ms (within the
 * wait's own timeout): a start published by any NATS client gets its record only when a worker
 * ran its first step, and a caller that published one and waits at once must not be told that
 * the instance does not exist. A deletion marker (a purge) ends a wait at once, as before.
 *
 * Threads: any number of threads wait at once. `waits.mu` guards the table, the waiters' fields
 * marked below, the tracked list and `active`/`closing`; `feed_mu` serializes opening and re-arming
 * the feed (round trips, never under `mu`). The feed's callback runs on the feed's nats.c thread
 * and takes `mu` only. dt_client_destroy may run while waits block: they end with DT_ECLOSED, and
 * destroy returns once each has left the client (`active`).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "client_int.h"

/* How often a blocked wait looks at the feed (a reconnection, a gap): no round trip. */
#define REFRESH_SLICE_MS 1000
/* How often a blocked wait re-reads its key whatever the feed says (one round trip). */
#define RESYNC_READ_MS 30000
/* Tracked starts kept for a wait (the oldest is dropped beyond): a few per thread starting and
 * waiting at once, each with one record copy. */
#define TRACK_MAX 256

struct dt__client_waiter {
    dt__client_waiter *next; /* in table[hash % DT__CLIENT_WAIT_BUCKETS] */
    const char *key;         /* borrowed from the waiting call, or `own_key` (tracked) */
    uint32_t hash;
    pthread_cond_t cv;
    /* Under waits.mu: the newest change the feed handed over and not yet taken (owned here). */
    bool have;
    uint64_t rev; /* of the newest change handed over (0: none yet) */
    dt_broker_kv_op op;
    void *value; /* dt_alloc'd copy (puts only) */
    size_t len;
    bool resync; /* re-arm the feed if needed and re-read the key */
    /* Under mu: what the wait waits for (NULL: a tracked start nobody waits for yet). A change
     * whose status it rejects is handed over without waking the wait (it would only sleep again);
     * the wait takes it at its next wake-up. */
    dt__client_wait_pred pred;
    /* Tracked starts only (dt_alloc'd, owned by the client while in the tracked list): */
    bool tracked;
    int64_t tracked_at;            /* monotonic ms of the start */
    bool listed;                   /* under mu: in the tracked list, waiting for a wait */
    dt__client_waiter *track_next; /* under mu: the next newer in the tracked list */
    char own_key[];                /* tracked: the key, allocated with the entry */
};

static uint32_t key_hash(const char *k)
{
    uint32_t h = 2166136261u;
    for (; *k != '\0'; k++) {
        h = (h ^ (uint8_t)*k) * 16777619u;
    }
    return h;
}

void dt__client_waits_init(dt__client_waits *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->feed_mu, NULL);
    pthread_cond_init(&w->idle, NULL);
}

static void broadcast_all(dt__client_waits *w, bool resync)
{
    for (size_t i = 0; i < DT__CLIENT_WAIT_BUCKETS; i++) {
        for (dt__client_waiter *x = w->table[i]; x != NULL; x = x->next) {
            x->resync = x->resync || resync;
            pthread_cond_signal(&x->cv);
        }
    }
}

void dt__client_waits_destroy(dt_client *c)
{
    dt__client_waits *w = &c->waits;
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    broadcast_all(w, false);
    while (w->active > 0) {
        pthread_cond_wait(&w->idle, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    dt_broker_kv_feed_close(w->feed); /* its callback is not running once this returns */
    w->feed = NULL;
    while (w->track_head != NULL) {
        dt__client_waiter *t = w->track_head;
        w->track_head = t->track_next;
        dt_free(t->value);
        pthread_cond_destroy(&t->cv);
        dt_free(t);
    }
    pthread_cond_destroy(&w->idle);
    pthread_mutex_destroy(&w->feed_mu);
    pthread_mutex_destroy(&w->mu);
}

void dt__client_waits_reconnected(dt_client *c)
{
    pthread_mutex_lock(&c->waits.mu);
    broadcast_all(&c->waits, true);
    pthread_mutex_unlock(&c->waits.mu);
}

/* The runtime_status (field 4) of a packed InstanceStatus, found without decoding the record:
 * false when the bytes do not parse (the wait then decodes them and says what is wrong). */
static bool peek_status(const void *value, size_t len, int32_t *out)
{
    const uint8_t *p = value, *end = p + len;
    int32_t status = 0; /* proto3 leaves the default (RUNNING) out */
    while (p < end) {
        uint64_t key = 0, v = 0;
        if (!dt__varint_get(&p, end, &key)) {
            return false;
        }
        switch (key & 7) {
        case 0: /* varint */
            if (!dt__varint_get(&p, end, &v)) {
                return false;
            }
            status = (key >> 3) == 4 ? (int32_t)v : status;
            break;
        case 1: /* 64-bit */
            if (end - p < 8) {
                return false;
            }
            p += 8;
            break;
        case 2: /* length-delimited */
            if (!dt__varint_get(&p, end, &v) || v > (uint64_t)(end - p)) {
                return false;
            }
            p += v;
            break;
        case 5: /* 32-bit */
            if (end - p < 4) {
                return false;
            }
            p += 4;
            break;
        default:
            return false;
        }
    }
    *out = status;
    return true;
}

/* Whether a change must wake waiter x: a deletion, a record that does not parse, or one whose
 * status x waits for. */
static bool wakes(const dt__client_waiter *x, const dt_broker_kv_change *ch)
{
    int32_t status = 0;
    return x->pred == NULL || ch->op != DT_BROKER_KV_PUT ||
           !peek_status(ch->value, ch->len, &status) || x->pred(status);
}

/* The feed's callback (its nats.c thread): hands a change of a registered key to its waits,
 * waking those it may concern. */
static void on_change(const dt_broker_kv_change *ch, void *ctx)
{
    dt__client_waits *w = &((dt_client *)ctx)->waits;
    uint32_t h = key_hash(ch->key);
    pthread_mutex_lock(&w->mu);
    for (dt__client_waiter *x = w->table[h % DT__CLIENT_WAIT_BUCKETS]; x != NULL; x = x->next) {
        if (x->hash != h || strcmp(x->key, ch->key) != 0 || ch->revision <= x->rev) {
            continue;
        }
        void *copy = ch->len > 0 ? dt_alloc(ch->len) : NULL;
        bool wake = wakes(x, ch);
        if (ch->len > 0 && copy == NULL) {
            x->resync = wake = true; /* out of memory: the wait reads the record itself */
        } else {
            if (ch->len > 0) {
                memcpy(copy, ch->value, ch->len);
            }
            dt_free(x->value);
            x->value = copy;
            x->len = ch->len;
            x->op = ch->op;
            x->rev = ch->revision;
            x->have = true;
        }
        if (wake) {
            pthread_cond_signal(&x->cv);
        }
    }
    pthread_mutex_unlock(&w->mu);
}

/* Opens the feed if there is none (the first wait; a later one after a failure). False: no feed
 * (the wait watches its own key). */
static bool feed_ready(dt_client *c)
{
    dt__client_waits *w = &c->waits;
    pthread_mutex_lock(&w->feed_mu);
    if (w->feed == NULL) {
        dt_broker_kv_feed *f = NULL;
        if (dt_broker_kv_feed_open(c->b, c->status_bucket, 0, on_change, c, &f) == DT_OK) {
            pthread_mutex_lock(&w->mu);
            w->feed = f;
            pthread_mutex_unlock(&w->mu);
        }
    }
    bool ok = w->feed != NULL;
    pthread_mutex_unlock(&w->feed_mu);
    return ok;
}

/* Re-arms the feed after a reconnection; on a possible loss every wait re-reads its key. */
static void feed_refresh(dt_client *c)
{
    dt__client_waits *w = &c->waits;
    bool resync = false;
    pthread_mutex_lock(&w->feed_mu);
    dt_status st = w->feed != NULL ? dt_broker_kv_feed_refresh(w->feed, &resync) : DT_OK;
    pthread_mutex_unlock(&w->feed_mu);
    if (st != DT_OK || resync) {
        pthread_mutex_lock(&w->mu);
        broadcast_all(w, true); /* a failed re-arm is tried again by the next refresh */
        pthread_mutex_unlock(&w->mu);
    }
}

/* ---- one wait ---- */

typedef struct wait_req {
    const char *id;
    dt__client_wait_pred pred;
    int64_t timeout_ms; /* < 0: no bound */
    int64_t deadline;   /* monotonic ms */
    /* Monotonic ms until which a missing record is waited for (client's wait_missing_ms). */
    int64_t missing_until;
    const char *what;   /* "start" / "complete" */
    uint64_t after_rev; /* only a record written after this revision counts (0: any) */
} wait_req;

/* The state a wait has seen: the newest record (NULL: none, or deleted) and its revision. */
typedef struct wait_state {
    Dtpb__InstanceStatus *rec;
    uint64_t rev;
    bool seen_record; /* some record was seen (a later absence means a purge) */
    bool seen_any;    /* a read or a change was applied */
} wait_state;

static dt_status timed_out(dt_client *c, const wait_req *r, const wait_state *ws)
{
    return dt__client_fail(
        c, DT_ETIMEOUT, "instance '%s' did not %s within %lld ms (status %s)", r->id, r->what,
        (long long)r->timeout_ms,
        ws->rec == NULL
            ? "unknown"
            : dt_client_runtime_status_name((dt_client_runtime_status)ws->rec->runtime_status));
}

/* Whether the wait still waits for a record that was never there. */
static bool awaiting_record(const wait_req *r, const wait_state *ws)
{
    return ws->rec == NULL && !ws->seen_record && dt__mono_ms() < r->missing_until;
}

/* When the current blocking may end at the latest (monotonic ms; INT64_MAX: no bound). */
static int64_t wait_end(const wait_req *r, const wait_state *ws)
{
    int64_t end = r->timeout_ms >= 0 ? r->deadline : INT64_MAX;
    if (ws->rec == NULL && !ws->seen_record && r->missing_until < end) {
        end = r->missing_until;
    }
    return end;
}

/* DT_OK: the predicate holds; DT_EBUSY: keep waiting; else the wait's end. */
static dt_status judge(dt_client *c, const wait_req *r, const wait_state *ws)
{
    if (ws->rec != NULL) {
        if (ws->rev <= r->after_rev) {
            return DT_EBUSY; /* the record the caller saw before its request */
        }
        return r->pred(ws->rec->runtime_status) ? DT_OK : DT_EBUSY;
    }
    if (awaiting_record(r, ws)) {
        return DT_EBUSY; /* a start published but not run yet, perhaps */
    }
    return ws->seen_record ? dt__client_fail(c, DT_ENOTFOUND, "instance '%s' was purged", r->id)
                           : dt__client_fail(c, DT_ENOTFOUND, "no instance '%s'", r->id);
}

/* Applies a state (rec may be NULL) at revision rev if it is newer than what was seen. */
static void apply(wait_state *ws, Dtpb__InstanceStatus *rec, uint64_t rev)
{
    if (ws->seen_any && rev <= ws->rev) {
        return;
    }
    ws->rec = rec;
    ws->rev = rev;
    ws->seen_any = true;
    /* A deletion marker (rev > 0 without a record) is a purge: nothing to wait for. */
    ws->seen_record = ws->seen_record || rec != NULL || rev > 0;
}

static dt_status read_now(dt_client *c, dt__arena *a, const wait_req *r, wait_state *ws)
{
    Dtpb__InstanceStatus *rec = NULL;
    uint64_t rev = 0;
    dt_status st = dt__client_status_last(c, a, r->id, &rec, &rev);
    if (st == DT_OK) {
        apply(ws, rec, rev);
    }
    return st;
}

/* Blocks (w->cv, under waits.mu) until a change, a resync, closing, the deadline or the end of
 * a refresh slice. Returns with mu held. */
static void block(dt__client_waits *w, dt__client_waiter *me, const wait_req *r,
                  const wait_state *ws)
{
    int64_t now = dt__mono_ms();
    int64_t until = now + REFRESH_SLICE_MS;
    if (wait_end(r, ws) < until) {
        until = wait_end(r, ws);
    }
    struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                          .tv_nsec = (long)((until % 1000) * 1000000)};
    while (!me->have && !me->resync && !w->closing && dt__mono_ms() < until) {
        if (pthread_cond_timedwait(&me->cv, &w->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
}

/* Takes the change handed over (under mu) into ws; the value is decoded into `a`. */
static dt_status take_change(dt_client *c, dt__arena *a, const wait_req *r, dt__client_waiter *me,
                             wait_state *ws)
{
    void *value = me->value;
    size_t len = me->len;
    uint64_t rev = me->rev;
    bool put = me->op == DT_BROKER_KV_PUT;
    me->value = NULL;
    me->have = false;
    pthread_mutex_unlock(&c->waits.mu);
    Dtpb__InstanceStatus *rec = NULL;
    dt_status st = put ? dt__client_decode_record(c, a, r->id, value, len, &rec) : DT_OK;
    dt_free(value);
    if (st == DT_OK) {
        apply(ws, rec, rev);
    }
    pthread_mutex_lock(&c->waits.mu);
    return st;
}

/* The first state of a wait: the tracked start's record and the changes since (no round trip),
 * unless the feed may have lost some; else a read. */
static dt_status first_state(dt_client *c, dt__arena *a, const wait_req *r, dt__client_waiter *me,
                             wait_state *ws)
{
    dt_status st = DT_OK;
    pthread_mutex_lock(&c->waits.mu);
    /* An entry older than the resync period reads, as a wait blocked that long would. */
    bool usable =
        me->tracked && me->have && !me->resync && dt__mono_ms() - me->tracked_at < RESYNC_READ_MS;
    if (usable) {
        st = take_change(c, a, r, me, ws);
    } else {
        me->resync = false; /* the read below is the resync */
    }
    pthread_mutex_unlock(&c->waits.mu);
    return usable ? st : read_now(c, a, r, ws);
}

/* The wait proper, registered as `me`: read (or take what a tracked start collected), then take
 * changes until the predicate holds. */
static dt_status wait_registered(dt_client *c, dt__arena *a, const wait_req *r,
                                 dt__client_waiter *me, wait_state *ws)
{
    dt__client_waits *w = &c->waits;
    dt_status st = first_state(c, a, r, me, ws);
    int64_t next_read = dt__mono_ms() + RESYNC_READ_MS;
    st = st == DT_OK ? judge(c, r, ws) : st;
    pthread_mutex_lock(&w->mu);
    while (st == DT_EBUSY) {
        block(w, me, r, ws);
        bool resync = me->resync, closing = w->closing;
        me->resync = false;
        if (closing) {
            st = dt__client_fail(c, DT_ECLOSED, "the client was destroyed during the wait");
        } else if (me->have) {
            st = take_change(c, a, r, me, ws);
        } else if (r->timeout_ms >= 0 && dt__mono_ms() >= r->deadline) {
            /* Never a record: not there (judge), rather than late. */
            st = ws->rec == NULL && !ws->seen_record ? judge(c, r, ws) : timed_out(c, r, ws);
            break;
        } else {
            /* A refresh slice ended, or the feed may have missed changes. */
            pthread_mutex_unlock(&w->mu);
            feed_refresh(c);
            bool reread = resync || me->resync || dt__mono_ms() >= next_read;
            st = reread ? read_now(c, a, r, ws) : DT_OK;
            next_read = reread ? dt__mono_ms() + RESYNC_READ_MS : next_read;
            pthread_mutex_lock(&w->mu);
        }
        st = st == DT_OK ? judge(c, r, ws) : st;
    }
    pthread_mutex_unlock(&w->mu);
    return st;
}

static void cv_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void link_waiter(dt__client_waits *w, dt__client_waiter *me)
{
    dt__client_waiter **head = &w->table[me->hash % DT__CLIENT_WAIT_BUCKETS];
    pthread_mutex_lock(&w->mu);
    me->next = *head;
    *head = me;
    pthread_mutex_unlock(&w->mu);
}

/* Takes `me` out of the table (under mu). */
static void unlink_locked(dt__client_waits *w, dt__client_waiter *me)
{
    dt__client_waiter **p = &w->table[me->hash % DT__CLIENT_WAIT_BUCKETS];
    while (*p != NULL && *p != me) {
        p = &(*p)->next;
    }
    if (*p == me) {
        *p = me->next;
    }
}

/* Takes `me` out of the table and frees what it holds (a tracked entry itself too). */
static void unlink_waiter(dt__client_waits *w, dt__client_waiter *me)
{
    pthread_mutex_lock(&w->mu);
    unlink_locked(w, me);
    pthread_mutex_unlock(&w->mu);
    dt_free(me->value);
    pthread_cond_destroy(&me->cv);
    if (me->tracked) {
        dt_free(me);
    }
}

/* ---- the fallback: a watch of the one key (a consumer per wait) ---- */

static dt_status watch_next(dt_client *c, dt__arena *a, dt_broker_kv_key_watch *kw,
                            const wait_req *r, wait_state *ws)
{
    dt_broker_kv_entry e = {0};
    dt_status st;
    for (;;) {
        int64_t end = wait_end(r, ws);
        int64_t left = end == INT64_MAX ? REFRESH_SLICE_MS : end - dt__mono_ms();
        st = left > 0 ? dt_broker_kv_key_watch_next(
                            kw, left < REFRESH_SLICE_MS ? left : REFRESH_SLICE_MS, &e)
                      : DT_ETIMEOUT;
        if (st != DT_ETIMEOUT) {
            break;
        }
        if (ws->rec == NULL && !ws->seen_record && dt__mono_ms() >= r->missing_until) {
            return DT_OK; /* nothing changed; judge() says it is not there */
        }
        if (r->timeout_ms >= 0 && dt__mono_ms() >= r->deadline) {
            return timed_out(c, r, ws);
        }
        pthread_mutex_lock(&c->waits.mu);
        bool closing = c->waits.closing;
        pthread_mutex_unlock(&c->waits.mu);
        if (closing) {
            return dt__client_fail(c, DT_ECLOSED, "the client was destroyed during the wait");
        }
    }
    Dtpb__InstanceStatus *rec = NULL;
    if (st == DT_OK && e.op == DT_BROKER_KV_PUT) {
        st = dt__client_decode_record(c, a, r->id, e.value, e.len, &rec);
    } else if (st == DT_ENOTFOUND) {
        st = DT_OK; /* no entry when armed */
    } else if (st != DT_OK) {
        st = dt__client_fail(c, st, "watch status of '%s': %s", r->id,
                             dt_broker_kv_key_watch_errmsg(kw));
    }
    if (st == DT_OK) {
        ws->seen_any = false; /* the watch reports in order: take each entry */
        apply(ws, rec, e.revision);
    }
    dt_broker_kv_entry_clear(&e);
    return st;
}

static dt_status watch_key(dt_client *c, dt__arena *a, const wait_req *r, const char *key,
                           wait_state *ws)
{
    dt_broker_kv_key_watch *kw = NULL;
    dt_status st = dt_broker_kv_key_watch_open(c->b, c->status_bucket, key, 0, &kw);
    if (st != DT_OK) {
        return dt__client_fail(c, st, "watch status of '%s': %s", r->id, DT__CLIENT_BERR(c));
    }
    do {
        st = watch_next(c, a, kw, r, ws);
        st = st == DT_OK ? judge(c, r, ws) : st;
    } while (st == DT_EBUSY);
    dt_broker_kv_key_watch_close(kw);
    return st;
}

/* ---- starts tracked for a later wait ---- */

dt__client_waiter *dt__client_track_begin(dt_client *c, const char *key)
{
    dt__client_waits *w = &c->waits;
    pthread_mutex_lock(&w->mu);
    bool open = w->feed != NULL && !w->closing;
    pthread_mutex_unlock(&w->mu);
    size_t n = strlen(key);
    dt__client_waiter *t = open ? dt_alloc(sizeof(*t) + n + 1) : NULL;
    if (t == NULL) {
        return NULL; /* no feed yet (the first wait opens it and reads), or no memory */
    }
    memset(t, 0, sizeof(*t));
    memcpy(t->own_key, key, n + 1);
    t->key = t->own_key;
    t->hash = key_hash(key);
    t->tracked = true;
    cv_init(&t->cv);
    link_waiter(w, t);
    return t;
}

/* Drops the oldest listed entries beyond TRACK_MAX (under mu). */
static void track_trim(dt__client_waits *w)
{
    while (w->ntracked > TRACK_MAX) {
        dt__client_waiter *old = w->track_head;
        w->track_head = old->track_next;
        w->ntracked--;
        unlink_locked(w, old);
        dt_free(old->value);
        pthread_cond_destroy(&old->cv);
        dt_free(old);
    }
    if (w->track_head == NULL) {
        w->track_tail = NULL;
    }
}

void dt__client_track_end(dt_client *c, dt__client_waiter *t, const void *rec, size_t len,
                          uint64_t rev)
{
    if (t == NULL) {
        return;
    }
    dt__client_waits *w = &c->waits;
    void *copy = rec != NULL && len > 0 ? dt_alloc(len) : NULL;
    if (rec == NULL || rev == 0 || (len > 0 && copy == NULL)) {
        dt_free(copy);
        unlink_waiter(w, t); /* not the record written: a wait reads */
        return;
    }
    if (len > 0) {
        memcpy(copy, rec, len);
    }
    pthread_mutex_lock(&w->mu);
    if (t->rev < rev) { /* else the feed already handed over a newer change */
        dt_free(t->value);
        t->value = copy;
        t->len = len;
        t->op = DT_BROKER_KV_PUT;
        t->rev = rev;
        t->have = true;
        copy = NULL;
    }
    t->listed = true;
    t->tracked_at = dt__mono_ms();
    t->track_next = NULL;
    if (w->track_tail != NULL) {
        w->track_tail->track_next = t;
    } else {
        w->track_head = t;
    }
    w->track_tail = t;
    w->ntracked++;
    track_trim(w);
    pthread_mutex_unlock(&w->mu);
    dt_free(copy);
}

/* The listed tracked entry of `key`, taken out of the list for a wait for `pred` (NULL: none). */
static dt__client_waiter *track_take(dt__client_waits *w, const char *key,
                                     dt__client_wait_pred pred)
{
    dt__client_waiter *found = NULL;
    pthread_mutex_lock(&w->mu);
    dt__client_waiter *prev = NULL;
    for (dt__client_waiter *x = w->track_head; x != NULL; prev = x, x = x->track_next) {
        if (strcmp(x->key, key) == 0) {
            found = x;
            break;
        }
    }
    if (found != NULL) {
        if (prev != NULL) {
            prev->track_next = found->track_next;
        } else {
            w->track_head = found->track_next;
        }
        if (w->track_tail == found) {
            w->track_tail = prev;
        }
        w->ntracked--;
        found->listed = false;
        found->track_next = NULL;
        found->pred = pred;
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* ---- entry ---- */

dt_status dt__client_wait(dt_client *c, dt__arena *a, const char *id, int64_t timeout_ms,
                          dt__client_wait_pred pred, const char *what, Dtpb__InstanceStatus **out)
{
    return dt__client_wait_after(c, a, id, timeout_ms, 0, pred, what, out);
}

dt_status dt__client_wait_after(dt_client *c, dt__arena *a, const char *id, int64_t timeout_ms,
                                uint64_t after_rev, dt__client_wait_pred pred, const char *what,
                                Dtpb__InstanceStatus **out)
{
    char key[DT__CLIENT_KEY_BUF];
    if (dt__status_key(id, key, sizeof(key)) != DT_OK) {
        return dt__client_fail(c, DT_EINVAL, "no status key for '%s'", id);
    }
    int64_t now = dt__mono_ms();
    int64_t grace = c->wait_missing_ms > 0 ? c->wait_missing_ms : 0;
    if (timeout_ms >= 0 && timeout_ms < grace) {
        grace = timeout_ms;
    }
    wait_req r = {.id = id,
                  .pred = pred,
                  .timeout_ms = timeout_ms,
                  .deadline = now + (timeout_ms > 0 ? timeout_ms : 0),
                  .missing_until = now + grace,
                  .what = what,
                  .after_rev = after_rev};
    wait_state ws = {0};
    dt_status st;
    dt__client_waiter *t = NULL;
    if (!feed_ready(c)) {
        st = watch_key(c, a, &r, key, &ws);
    } else if (after_rev == 0 && (t = track_take(&c->waits, key, pred)) != NULL) {
        feed_refresh(c); /* a loss since the start marks t: then the wait reads */
        st = wait_registered(c, a, &r, t, &ws);
        unlink_waiter(&c->waits, t);
    } else {
        dt__client_waiter me = {.key = key, .hash = key_hash(key), .pred = pred};
        cv_init(&me.cv);
        link_waiter(&c->waits, &me);
        st = wait_registered(c, a, &r, &me, &ws);
        unlink_waiter(&c->waits, &me);
    }
    if (st == DT_OK) {
        *out = ws.rec;
    }
    return st;
}

dt_status dt__client_wait_enter(dt_client *c)
{
    dt__client_waits *w = &c->waits;
    pthread_mutex_lock(&w->mu);
    bool closing = w->closing;
    w->active += closing ? 0 : 1;
    pthread_mutex_unlock(&w->mu);
    return closing ? DT_ECLOSED : DT_OK;
}

void dt__client_wait_leave(dt_client *c)
{
    dt__client_waits *w = &c->waits;
    pthread_mutex_lock(&w->mu);
    if (--w->active == 0 && w->closing) {
        pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
}
