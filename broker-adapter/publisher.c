/*
 * The async publisher: pipelined JetStream publishes with a per-message outcome, collected by
 * the owner's own thread.
 *
 * Why not js_PublishAsync: nats.c delivers the PubAcks of a jsCtx on that context's own
 * subscription thread, which then has to wake the waiting owner: two thread hand-offs per burst
 * of PubAcks, per publisher (a worker has about nine), and ~13% of the worker's CPU in futex
 * calls (docs/performance.md). Here each publisher has one *synchronous* subscription on
 * "<inbox>.*" and sends every message with the reply subject "<inbox>.<token>"; nats.c's reader
 * thread queues the replies there, and the owner takes them in add() (only when the window is
 * full), wait() and inflight(). Replies that arrive while the owner works cost no wake-up at
 * all; a blocked wait() is woken once per burst, directly by the reader.
 *
 * Routing: tokens increase by one per send attempt and are never reused within an inbox; slot i
 * of the batch holds tokens[i] (ascending), so a reply finds its slot by binary search. A reply
 * for a token that is not pending (a message already timed out, a failed send) is dropped.
 *
 * "No responders": nats.c's natsSubscription_NextMsg swallows the server's 503 reply and returns
 * NATS_NO_RESPONDERS without saying for which message. Every message gets at most one reply (a
 * PubAck, a JetStream error or a 503), so they are attributed by elimination: with `noresp`
 * such replies counted and `inflight` messages unresolved, noresp == inflight means every
 * unresolved message got its 503. That holds while no message has left the batch without its
 * own reply; when one has (per-message ack timeout, a failed send, dropped replies) the counts
 * are unreliable ("tainted"): 503'd messages then end with DT_ETIMEOUT, and once nothing is in
 * flight the publisher moves to a fresh inbox, where stale replies cannot follow.
 *
 * Timeouts: a message without reply ack_timeout_ms after its send fails with DT_ETIMEOUT, as
 * does everything still unresolved at wait()'s deadline. Every added message gets exactly one
 * outcome. A server restart loses replies, never duplicates them: the message times out and the
 * caller re-publishes it under the same Nats-Msg-Id (JetStream drops the repeat).
 *
 * Threads: confined to the owner's thread; no locks, no callbacks. nats.c's reader thread only
 * queues into the subscription.
 */
#include "broker_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define PENDING_STATUS ((dt_status)-1) /* slot not resolved yet (never returned) */
#define REPLY_BUF      96              /* "_INBOX.<22 chars>" + "." + 20 digits */
#define GRAVEYARD_MAX  1024 /* messages (sent ones and their replies) destroyed per burst */

struct dt_broker_publisher {
    dt_broker *b;
    dt_broker_publisher_options o;
    natsSubscription *sub; /* synchronous, on "<inbox>.*"; owned */
    char inbox[REPLY_BUF]; /* of `sub` */
    size_t inbox_len;
    bool tainted;        /* "no responders" replies cannot be attributed (file comment) */
    uint64_t next_token; /* of the next send attempt */
    /* The batch: per slot, in add() order. */
    dt_broker_pub_result *slots;
    char **errors;    /* dt_alloc'd texts behind slots[i].error, or NULL */
    uint64_t *tokens; /* ascending */
    int64_t *sent_ms; /* monotonic; non-decreasing */
    size_t *subj_off; /* the slot's subject at subjects + subj_off[i], for error texts */
    char *subjects;   /* NUL-separated subject copies of the batch */
    size_t subj_len;
    size_t subj_cap;
    size_t nslots;
    size_t cap;
    size_t inflight;    /* slots without an outcome */
    size_t noresp;      /* "no responders" replies not yet attributed */
    size_t scan;        /* every slot before it has an outcome */
    dt__graveyard dead; /* sent messages and replies, destroyed once per wait() */
    bool batch_done;    /* wait() finished: the next add() starts a new batch */
    char err[DT__BROKER_ERR_LEN];
};

void dt_broker_publisher_options_init(dt_broker_publisher_options *o)
{
    memset(o, 0, sizeof(*o));
    o->window = 4096;
    o->max_batch = 65536;
    o->ack_timeout_ms = 0; /* the connection's request timeout */
    o->stall_timeout_ms = 5000;
}

/* ------------------------------------------------------------------------------------------- */
/* The reply subscription                                                                      */

/* Subscribes to a fresh "<inbox>.*" and makes it current. On failure the old one stays. */
static natsStatus subscribe_inbox(dt_broker_publisher *p)
{
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s != NATS_OK) {
        return s;
    }
    char filter[REPLY_BUF];
    size_t n = strlen(inbox);
    natsSubscription *sub = NULL;
    if (n + 2 >= sizeof(filter)) {
        s = NATS_ERR;
    } else {
        snprintf(filter, sizeof(filter), "%s.*", inbox); /* fits: checked above */
        s = natsConnection_SubscribeSync(&sub, p->b->nc, filter);
    }
    /* Hold every reply a full window can produce (nats.c's default is 65,536). */
    int limit = (int)(p->o.window + 1024);
    if (s == NATS_OK) {
        s = natsSubscription_SetPendingLimits(sub, limit,
                                              limit > INT_MAX / 1024 ? INT_MAX : limit * 1024);
    }
    if (s == NATS_OK) {
        /* Late replies may still be on their way to the old inbox: not a plain destroy. */
        dt__broker_sub_destroy(p->b, p->sub); /* its queued replies go with it */
        p->sub = sub;
        memcpy(p->inbox, inbox, n + 1);
        p->inbox_len = n;
        p->tainted = false;
        p->noresp = 0;
    } else {
        dt__broker_sub_destroy(p->b, sub);
    }
    natsInbox_Destroy(inbox);
    return s;
}

/* ------------------------------------------------------------------------------------------- */
/* Outcomes                                                                                    */

/* Records the outcome of pending slot ix; `why` is the failure text (ignored on DT_OK). */
static void resolve(dt_broker_publisher *p, size_t ix, dt_status st, const dt__puback *pa,
                    const char *why)
{
    dt_broker_pub_result *r = &p->slots[ix];
    r->status = st;
    if (st == DT_OK) {
        r->stream_seq = pa->seq;
        r->duplicate = pa->duplicate;
    } else {
        p->errors[ix] = dt_strdup(why);
        r->error = p->errors[ix] != NULL ? p->errors[ix] : dt_status_str(st);
    }
    p->inflight--;
}

static bool pending(const dt_broker_publisher *p, size_t ix)
{
    return p->slots[ix].status == PENDING_STATUS;
}

static const char *subject_of(const dt_broker_publisher *p, size_t ix)
{
    return p->subjects + p->subj_off[ix];
}

/* Slot of reply subject `subj` ("<inbox>.<token>"), if that message is pending. */
static bool slot_of(const dt_broker_publisher *p, const char *subj, size_t *out_ix)
{
    if (strncmp(subj, p->inbox, p->inbox_len) != 0 || subj[p->inbox_len] != '.') {
        return false;
    }
    uint64_t token = 0;
    const char *d = subj + p->inbox_len + 1;
    for (; *d >= '0' && *d <= '9'; d++) {
        token = token * 10 + (uint64_t)(*d - '0');
    }
    size_t lo = p->scan, hi = p->nslots; /* slots before scan are resolved */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->tokens[mid] < token) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == p->nslots || p->tokens[lo] != token || !pending(p, lo)) {
        return false;
    }
    *out_ix = lo;
    return true;
}

/* The outcome a reply body carries, with its failure text in why[]. */
static dt_status reply_outcome(natsMsg *m, const char *subject, dt__puback *pa, char *why,
                               size_t why_len)
{
    int len = natsMsg_GetDataLength(m);
    if (len <= 0) {
        const char *status = NULL;
        (void)natsMsgHeader_Get(m, "Status", &status);
        dt__errf(why, why_len, "publish to %s: reply with status %s", subject,
                 status != NULL ? status : "(none)");
        return DT_EBROKER;
    }
    if (!dt__broker_puback_parse(natsMsg_GetData(m), (size_t)len, pa)) {
        dt__errf(why, why_len, "publish to %s: unreadable PubAck '%.*s'", subject,
                 len > 80 ? 80 : len, natsMsg_GetData(m));
        return DT_EBROKER;
    }
    if (!pa->has_error) {
        return DT_OK;
    }
    dt__errf(why, why_len, "publish to %s: %.*s", subject, (int)pa->desc_len,
             pa->desc != NULL ? pa->desc : "");
    return pa->err_code != 0 ? dt__broker_map(NATS_ERR, (jsErrCode)pa->err_code) : DT_EBROKER;
}

/* Resolves the slot a reply belongs to (if still pending) and destroys the reply. */
static void on_reply(dt_broker_publisher *p, natsMsg *m)
{
    size_t ix = 0;
    if (slot_of(p, natsMsg_GetSubject(m), &ix)) {
        dt__puback pa = {0};
        char why[DT__BROKER_ERR_LEN] = "";
        dt_status st = reply_outcome(m, subject_of(p, ix), &pa, why, sizeof(why));
        resolve(p, ix, st, &pa, why);
    }
    dt__graveyard_bury(&p->dead, m);
}

/* Fails every pending slot with st and `why` (prefixed with the slot's subject). */
static void fail_pending(dt_broker_publisher *p, dt_status st, const char *why)
{
    for (size_t i = p->scan; i < p->nslots && p->inflight > 0; i++) {
        if (pending(p, i)) {
            char text[DT__BROKER_ERR_LEN];
            dt__errf(text, sizeof(text), "publish to %s: %s", subject_of(p, i), why);
            resolve(p, i, st, NULL, text);
        }
    }
}

/* When every unresolved message has had its "no responders" reply, says so for each. */
static void attribute_noresp(dt_broker_publisher *p)
{
    if (p->noresp == 0 || p->tainted) {
        return;
    }
    if (p->inflight == 0) {
        p->tainted = true; /* a 503 for nothing we wait for: the invariant broke, re-inbox */
        return;
    }
    if (p->noresp >= p->inflight) {
        p->noresp = 0;
        fail_pending(p, DT_EBROKER, "no responders (no stream takes the subject)");
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Taking replies                                                                              */

/*
 * Takes one reply, waiting up to timeout_ms (0: only one already queued). Returns false when
 * none came. A closed connection fails everything pending: no reply can come any more.
 */
static bool take_one(dt_broker_publisher *p, int64_t timeout_ms)
{
    natsMsg *m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, p->sub, timeout_ms);
    switch (s) {
    case NATS_OK:
        on_reply(p, m);
        return true;
    case NATS_NO_RESPONDERS:
        p->noresp++;
        return true;
    case NATS_SLOW_CONSUMER:
        p->tainted = true; /* replies were dropped: their messages will time out */
        return true;
    case NATS_TIMEOUT:
        return false;
    default:
        fail_pending(p, dt__broker_map(s, 0), natsStatus_GetText(s));
        return false;
    }
}

/* Takes every reply already queued, without blocking. */
static void drain(dt_broker_publisher *p)
{
    uint64_t queued = 0;
    if (natsSubscription_QueuedMsgs(p->sub, &queued) != NATS_OK) {
        queued = 1; /* closed: take_one() reports it */
    }
    for (uint64_t i = 0; i < queued && take_one(p, 0); i++) {
    }
    attribute_noresp(p);
}

/* Waits up to timeout_ms (>= 1) for a reply, then takes the rest of the burst. */
static void block(dt_broker_publisher *p, int64_t timeout_ms)
{
    if (take_one(p, timeout_ms)) {
        drain(p);
    }
    attribute_noresp(p);
}

/* Moves `scan` past resolved slots; returns the deadline of the oldest pending one. */
static int64_t next_expiry(dt_broker_publisher *p)
{
    while (p->scan < p->nslots && !pending(p, p->scan)) {
        p->scan++;
    }
    return p->scan < p->nslots ? p->sent_ms[p->scan] + p->o.ack_timeout_ms : INT64_MAX;
}

/* Fails the messages whose ack timeout has passed at `now`. */
static void expire(dt_broker_publisher *p, int64_t now)
{
    while (p->inflight > 0 && next_expiry(p) <= now) {
        char why[DT__BROKER_ERR_LEN];
        dt__errf(why, sizeof(why),
                 "publish to %s: no PubAck within %lld ms (the message may or may not be stored)",
                 subject_of(p, p->scan), (long long)p->o.ack_timeout_ms);
        resolve(p, p->scan, DT_ETIMEOUT, NULL, why);
        p->tainted = true; /* its reply may still come */
    }
}

/* Takes replies until fewer than `limit` messages are in flight or `deadline` (monotonic ms)
 * passes; returns whether the limit was reached. */
static bool settle_below(dt_broker_publisher *p, size_t limit, int64_t deadline)
{
    drain(p);
    for (;;) {
        int64_t now = dt__mono_ms();
        expire(p, now);
        if (p->inflight < limit) {
            return true;
        }
        if (now >= deadline) {
            return false;
        }
        int64_t until = next_expiry(p);
        block(p, (until < deadline ? until : deadline) - now);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Create / destroy                                                                            */

static dt_status options_check(const dt_broker_publisher_options *o, char *err, size_t len)
{
    if (o->window == 0 || o->window > (1u << 20) || o->max_batch == 0) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "publisher: need 1 <= window <= 1048576 and max_batch >= 1");
    }
    if (o->ack_timeout_ms < 0 || o->stall_timeout_ms < 0) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "publisher: negative timeout");
    }
    return DT_OK;
}

static void free_errors(dt_broker_publisher *p)
{
    for (size_t i = 0; i < p->nslots; i++) {
        dt_free(p->errors[i]);
        p->errors[i] = NULL;
    }
}

static void publisher_free(dt_broker_publisher *p)
{
    dt__broker_sub_destroy(p->b, p->sub); /* PubAcks of abandoned messages may be arriving */
    dt__graveyard_fini(&p->dead);
    free_errors(p);
    dt_free(p->slots);
    dt_free(p->errors);
    dt_free(p->tokens);
    dt_free(p->sent_ms);
    dt_free(p->subj_off);
    dt_free(p->subjects);
    dt_free(p);
}

dt_status dt_broker_publisher_create(dt_broker *b, const dt_broker_publisher_options *o,
                                     dt_broker_publisher **out)
{
    dt_broker_publisher_options defaults;
    if (o == NULL) {
        dt_broker_publisher_options_init(&defaults);
        o = &defaults;
    }
    char err[DT__BROKER_ERR_LEN];
    dt_status st = options_check(o, err, sizeof(err));
    if (st != DT_OK || out == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "%s", st != DT_OK ? err : "publisher: out is NULL");
    }
    dt_broker_publisher *p = dt_calloc(1, sizeof(*p));
    if (p == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "publisher: out of memory");
    }
    p->b = b;
    p->o = *o;
    dt__graveyard_init(&p->dead, GRAVEYARD_MAX, DT__GRAVEYARD_MAX_BYTES);
    if (p->o.ack_timeout_ms == 0) {
        p->o.ack_timeout_ms = b->o.request_timeout_ms;
    }
    natsStatus s = subscribe_inbox(p);
    if (s != NATS_OK) {
        publisher_free(p);
        return dt__broker_fail_nats(b, s, 0, "publisher: reply subscription");
    }
    *out = p;
    return DT_OK;
}

void dt_broker_publisher_destroy(dt_broker_publisher *p)
{
    if (p != NULL) {
        publisher_free(p); /* pending messages are abandoned: their replies die with `sub` */
    }
}

const char *dt_broker_publisher_errmsg(const dt_broker_publisher *p)
{
    return p == NULL ? "" : p->err;
}

size_t dt_broker_publisher_inflight(dt_broker_publisher *p)
{
    drain(p);
    expire(p, dt__mono_ms());
    return p->inflight;
}

const dt_broker_pub_result *dt_broker_publisher_results(const dt_broker_publisher *p, size_t *out_n)
{
    *out_n = p->batch_done ? p->nslots : 0;
    return p->slots;
}

/* ------------------------------------------------------------------------------------------- */
/* add                                                                                         */

/* Starts a new batch if the previous one was waited for (then inflight == 0). */
static void maybe_new_batch(dt_broker_publisher *p)
{
    if (p->batch_done) {
        free_errors(p);
        p->nslots = 0;
        p->subj_len = 0;
        p->scan = 0;
        p->batch_done = false;
    }
    if (p->inflight == 0 && p->tainted) {
        (void)subscribe_inbox(p); /* on failure: stay tainted, try again next time */
    }
}

static dt_status grow_slots(dt_broker_publisher *p)
{
    size_t ncap = p->cap == 0 ? 256 : p->cap * 2;
    void *a[] = {dt_realloc(p->slots, ncap * sizeof(*p->slots)),
                 dt_realloc(p->errors, ncap * sizeof(*p->errors)),
                 dt_realloc(p->tokens, ncap * sizeof(*p->tokens)),
                 dt_realloc(p->sent_ms, ncap * sizeof(*p->sent_ms)),
                 dt_realloc(p->subj_off, ncap * sizeof(*p->subj_off))};
    /* Each array that moved is kept, so a partial failure leaks nothing. */
    p->slots = a[0] != NULL ? a[0] : p->slots;
    p->errors = a[1] != NULL ? a[1] : p->errors;
    p->tokens = a[2] != NULL ? a[2] : p->tokens;
    p->sent_ms = a[3] != NULL ? a[3] : p->sent_ms;
    p->subj_off = a[4] != NULL ? a[4] : p->subj_off;
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
        if (a[i] == NULL) {
            return DT_ENOMEM;
        }
    }
    p->cap = ncap;
    return DT_OK;
}

/* Makes room for one more slot and its subject. */
static dt_status reserve(dt_broker_publisher *p, size_t subj_len)
{
    if (p->nslots == p->cap && grow_slots(p) != DT_OK) {
        return DT_ENOMEM;
    }
    if (p->subj_len + subj_len + 1 > p->subj_cap) {
        size_t ncap = p->subj_cap == 0 ? 16384 : p->subj_cap;
        while (ncap < p->subj_len + subj_len + 1) {
            ncap *= 2;
        }
        char *ns = dt_realloc(p->subjects, ncap);
        if (ns == NULL) {
            return DT_ENOMEM;
        }
        p->subjects = ns;
        p->subj_cap = ncap;
    }
    return DT_OK;
}

/* Writes "<inbox>.<token>" into buf (REPLY_BUF bytes). */
static void reply_subject(const dt_broker_publisher *p, uint64_t token, char *buf)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + token % 10);
        token /= 10;
    } while (token > 0);
    memcpy(buf, p->inbox, p->inbox_len);
    char *w = buf + p->inbox_len;
    *w++ = '.';
    while (n > 0) {
        *w++ = digits[--n];
    }
    *w = '\0';
}

/* Builds the message with its reply subject and JetStream headers, and sends it. */
static natsStatus send_msg(dt_broker_publisher *p, const dt_broker_outmsg *m, uint64_t token)
{
    char reply[REPLY_BUF];
    reply_subject(p, token, reply);
    natsMsg *nm = NULL;
    natsStatus s = dt__broker_natsmsg(m, reply, DT__OUT_MSG_ID | DT__OUT_EXPECT, &nm);
    if (s == NATS_OK) {
        s = natsConnection_PublishMsg(p->b->nc, nm);
    }
    dt__graveyard_bury(&p->dead, nm);
    return s;
}

/* Records a sent message in a new slot (room was reserved). */
static void take_slot(dt_broker_publisher *p, const dt_broker_outmsg *m, uint64_t tag,
                      uint64_t token)
{
    size_t ix = p->nslots++;
    memset(&p->slots[ix], 0, sizeof(p->slots[ix]));
    p->slots[ix].tag = tag;
    p->slots[ix].status = PENDING_STATUS;
    p->errors[ix] = NULL;
    p->tokens[ix] = token;
    p->sent_ms[ix] = dt__mono_ms();
    size_t n = strlen(m->subject);
    memcpy(p->subjects + p->subj_len, m->subject, n + 1);
    p->subj_off[ix] = p->subj_len;
    p->subj_len += n + 1;
    p->inflight++;
}

static dt_status add_fail(dt_broker_publisher *p, dt_status st, const dt_broker_outmsg *m)
{
    switch (st) {
    case DT_ETIMEOUT:
        return dt__broker_errbuf(p->err, sizeof(p->err), st,
                                 "publish to %s: window of %zu full for %lld ms", m->subject,
                                 p->o.window, (long long)p->o.stall_timeout_ms);
    case DT_EBUSY:
        return dt__broker_errbuf(p->err, sizeof(p->err), st,
                                 "publish to %s: batch holds max_batch=%zu messages: wait() first",
                                 m->subject, p->o.max_batch);
    default:
        return dt__broker_errbuf(p->err, sizeof(p->err), st, "publish to %s: %s", m->subject,
                                 dt_status_str(st));
    }
}

dt_status dt_broker_publisher_add(dt_broker_publisher *p, const dt_broker_outmsg *m, uint64_t tag)
{
    dt_status st = dt__broker_outmsg_check(m, p->err, sizeof(p->err));
    if (st != DT_OK) {
        return st;
    }
    maybe_new_batch(p);
    if (p->nslots >= p->o.max_batch) {
        return add_fail(p, DT_EBUSY, m);
    }
    if (p->inflight >= p->o.window &&
        !settle_below(p, p->o.window, dt__mono_ms() + p->o.stall_timeout_ms)) {
        return add_fail(p, DT_ETIMEOUT, m);
    }
    if (reserve(p, strlen(m->subject)) != DT_OK) {
        return add_fail(p, DT_ENOMEM, m);
    }
    uint64_t token = p->next_token++;
    natsStatus s = send_msg(p, m, token);
    if (s != NATS_OK) {
        /* Not part of the batch. It may still have been buffered and get a reply: its token is
         * never a slot's, but a 503 would be counted, so "no responders" goes unattributed. */
        p->tainted = s != NATS_MAX_PAYLOAD && s != NATS_INVALID_ARG && s != NATS_NO_MEMORY;
        return dt__broker_nerr(p->err, sizeof(p->err), s, 0, "publish to %s", m->subject);
    }
    take_slot(p, m, tag, token);
    return DT_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* wait                                                                                        */

/* Summarizes the batch: DT_OK or the first failure, with a count in err. */
static dt_status summarize(dt_broker_publisher *p)
{
    size_t failed = 0;
    size_t first = 0;
    for (size_t i = 0; i < p->nslots; i++) {
        if (p->slots[i].status != DT_OK) {
            if (failed++ == 0) {
                first = i;
            }
        }
    }
    if (failed == 0) {
        return DT_OK;
    }
    const dt_broker_pub_result *r = &p->slots[first];
    return dt__broker_errbuf(p->err, sizeof(p->err), r->status,
                             "%zu of %zu messages failed; first: %s", failed, p->nslots, r->error);
}

dt_status dt_broker_publisher_wait(dt_broker_publisher *p, int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        return dt__broker_errbuf(p->err, sizeof(p->err), DT_EINVAL, "wait: negative timeout");
    }
    if (!settle_below(p, 1, dt__mono_ms() + timeout_ms)) {
        fail_pending(p, DT_ETIMEOUT,
                     "no PubAck before the wait deadline (the message may or may not be stored)");
        p->tainted = true; /* their replies may still come */
    }
    p->batch_done = true;
    dt__graveyard_flush(&p->dead);
    return summarize(p);
}
