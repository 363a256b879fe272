/*
 * The async publisher: pipelined JetStream publishes with a per-message outcome.
 *
 * Each publisher owns a jsCtx (js_PublishAsyncComplete and the pending list are per context,
 * NATS-NOTES fact 6) whose AckHandler records every PubAck or failure (no-responders, JetStream
 * error, per-message ack timeout) into the result slot of that message. nats.c hands the handler
 * the natsMsg we published, so an open-addressing table maps natsMsg pointer -> slot; an entry
 * lives from just before js_PublishMsgAsync until the handler (or a take-back) resolves it, so a
 * pointer reused by a later message never meets a stale entry.
 *
 * The window is enforced here (nats.c's MaxPending stalls and then fails with a bare timeout,
 * fact 5): add() waits on our condition variable while `inflight == window`, up to the stall
 * timeout. wait() waits for inflight == 0; at its deadline it takes the still-pending messages
 * back from nats.c (js_PublishAsyncGetPendingList), marks them DT_ETIMEOUT, and waits for
 * handlers already running. Every message gets exactly one outcome.
 *
 * Locking: `mu` guards slots, map and counters; the handler runs on nats.c's reply-subscription
 * thread and takes `mu`; the owner thread never holds `mu` across a nats.c call.
 */
#include "broker_int.h"

#include <string.h>
#include <time.h>

#define PENDING_STATUS ((dt_status)-1) /* slot not resolved yet (never returned) */

typedef struct map_entry {
    const natsMsg *key; /* NULL: empty */
    size_t slot;
} map_entry;

struct dt_broker_publisher {
    dt_broker *b;
    jsCtx *js;
    dt_broker_publisher_options o;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    dt_broker_pub_result *slots; /* [0, nslots) is the current batch */
    char **errors;               /* dt_alloc'd texts behind slots[i].error, or NULL */
    size_t nslots;
    size_t cap;
    map_entry *map; /* power-of-two capacity > 2 * window */
    size_t map_mask;
    size_t inflight;
    int waiters;     /* threads blocked on cond (add() on a full window, wait()) */
    bool batch_done; /* wait() finished: the next add() starts a new batch */
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
/* natsMsg* -> slot map (linear probing, backward-shift deletion; caller holds mu)             */

static size_t map_hash(const dt_broker_publisher *p, const natsMsg *k)
{
    uint64_t h = (uint64_t)(uintptr_t)k;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & p->map_mask;
}

static void map_put(dt_broker_publisher *p, const natsMsg *k, size_t slot_ix)
{
    size_t i = map_hash(p, k);
    while (p->map[i].key != NULL) {
        i = (i + 1) & p->map_mask;
    }
    p->map[i].key = k;
    p->map[i].slot = slot_ix;
}

/* Removes k; returns its slot or SIZE_MAX if absent. */
static size_t map_take(dt_broker_publisher *p, const natsMsg *k)
{
    size_t i = map_hash(p, k);
    while (p->map[i].key != k) {
        if (p->map[i].key == NULL) {
            return SIZE_MAX;
        }
        i = (i + 1) & p->map_mask;
    }
    size_t found = p->map[i].slot;
    size_t hole = i;
    for (size_t j = (i + 1) & p->map_mask; p->map[j].key != NULL; j = (j + 1) & p->map_mask) {
        size_t home = map_hash(p, p->map[j].key);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            p->map[hole] = p->map[j];
            hole = j;
        }
    }
    p->map[hole].key = NULL;
    return found;
}

/* ------------------------------------------------------------------------------------------- */
/* Outcomes                                                                                    */

/* Records the outcome of slot ix (caller holds mu) and wakes add()/wait(). */
static void resolve(dt_broker_publisher *p, size_t ix, dt_status st, const jsPubAck *pa,
                    const char *why)
{
    dt_broker_pub_result *r = &p->slots[ix];
    r->status = st;
    if (st == DT_OK) {
        r->stream_seq = pa->Sequence;
        r->duplicate = pa->Duplicate;
    } else {
        p->errors[ix] = dt_strdup(why);
        r->error = p->errors[ix] != NULL ? p->errors[ix] : dt_status_str(st);
    }
    p->inflight--;
    if (p->waiters > 0) {
        pthread_cond_broadcast(&p->cond);
    }
}

static dt_status pae_status(const jsPubAckErr *pae)
{
    if (pae->Err == NATS_TIMEOUT) {
        return DT_ETIMEOUT;
    }
    return pae->ErrCode != 0 ? dt__broker_map(NATS_ERR, pae->ErrCode) : DT_EBROKER;
}

/* nats.c's AckHandler: runs on the context's reply thread; owns and destroys `msg`. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    dt_broker_publisher *p = closure;
    char why[DT__BROKER_ERR_LEN] = "";
    dt_status st = DT_OK;
    if (pae != NULL) {
        st = pae_status(pae);
        if (pae->Err == NATS_NO_RESPONDERS) {
            dt__errf(why, sizeof(why), "publish to %s: no responders (no stream takes the subject)",
                     natsMsg_GetSubject(msg));
        } else {
            dt__errf(why, sizeof(why), "publish to %s: %s", natsMsg_GetSubject(msg),
                     pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
        }
    }
    pthread_mutex_lock(&p->mu);
    size_t ix = map_take(p, msg);
    if (ix != SIZE_MAX) {
        resolve(p, ix, st, pa, why);
    }
    pthread_mutex_unlock(&p->mu);
    natsMsg_Destroy(msg);
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

static natsStatus open_ctx(dt_broker_publisher *p)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = p->b->o.request_timeout_ms;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = p;
    return natsConnection_JetStream(&p->js, p->b->nc, &jo);
}

static void publisher_free(dt_broker_publisher *p)
{
    for (size_t i = 0; i < p->nslots; i++) {
        dt_free(p->errors[i]);
    }
    dt_free(p->slots);
    dt_free(p->errors);
    dt_free(p->map);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    dt_free(p);
}

static dt_broker_publisher *publisher_new(dt_broker *b, const dt_broker_publisher_options *o)
{
    dt_broker_publisher *p = dt_calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->b = b;
    p->o = *o;
    if (p->o.ack_timeout_ms == 0) {
        p->o.ack_timeout_ms = b->o.request_timeout_ms;
    }
    size_t cap = 16;
    while (cap <= 2 * o->window) {
        cap *= 2;
    }
    p->map = dt_calloc(cap, sizeof(*p->map));
    p->map_mask = cap - 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (p->map == NULL) {
        publisher_free(p);
        return NULL;
    }
    return p;
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
    dt_broker_publisher *p = publisher_new(b, o);
    if (p == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "publisher: out of memory");
    }
    natsStatus s = open_ctx(p);
    if (s != NATS_OK) {
        publisher_free(p);
        return dt__broker_fail_nats(b, s, 0, "publisher: JetStream context");
    }
    *out = p;
    return DT_OK;
}

/* Takes back every message nats.c still waits a PubAck for and fails it with DT_ETIMEOUT. */
static void take_back(dt_broker_publisher *p)
{
    /* nats.c 3.4.1 dereferences the context's pending map, which exists only after the first
     * async publish: asking a context that never published crashes. Only ask with messages in
     * flight (inflight counts added, unresolved messages). */
    pthread_mutex_lock(&p->mu);
    bool any = p->inflight > 0;
    pthread_mutex_unlock(&p->mu);
    if (!any) {
        return;
    }
    natsMsgList pending;
    memset(&pending, 0, sizeof(pending));
    if (js_PublishAsyncGetPendingList(&pending, p->js) != NATS_OK) {
        return; /* NATS_NOT_FOUND: nothing pending */
    }
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < pending.Count; i++) {
        size_t ix = map_take(p, pending.Msgs[i]);
        if (ix != SIZE_MAX) {
            resolve(p, ix, DT_ETIMEOUT, NULL,
                    "no PubAck before the wait deadline (the message may or may not be stored)");
        }
    }
    pthread_mutex_unlock(&p->mu);
    natsMsgList_Destroy(&pending);
}

/* Waits for inflight == 0 until `ts` (NULL: no limit); returns true if reached. */
static bool wait_drained(dt_broker_publisher *p, const struct timespec *ts)
{
    pthread_mutex_lock(&p->mu);
    p->waiters++;
    while (p->inflight > 0) {
        if (ts == NULL) {
            pthread_cond_wait(&p->cond, &p->mu);
        } else if (pthread_cond_timedwait(&p->cond, &p->mu, ts) != 0) {
            break;
        }
    }
    p->waiters--;
    bool drained = p->inflight == 0;
    pthread_mutex_unlock(&p->mu);
    return drained;
}

void dt_broker_publisher_destroy(dt_broker_publisher *p)
{
    if (p == NULL) {
        return;
    }
    take_back(p);
    /* Handlers that already hold their message finish quickly; the ack timeout bounds the rest. */
    struct timespec ts = dt__deadline_in(CLOCK_REALTIME, p->o.ack_timeout_ms + 1000);
    wait_drained(p, &ts);
    jsCtx_Destroy(p->js);
    publisher_free(p);
}

const char *dt_broker_publisher_errmsg(const dt_broker_publisher *p)
{
    return p == NULL ? "" : p->err;
}

size_t dt_broker_publisher_inflight(dt_broker_publisher *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->inflight;
    pthread_mutex_unlock(&p->mu);
    return n;
}

const dt_broker_pub_result *dt_broker_publisher_results(const dt_broker_publisher *p, size_t *out_n)
{
    *out_n = p->batch_done ? p->nslots : 0;
    return p->slots;
}

/* ------------------------------------------------------------------------------------------- */
/* add / wait                                                                                  */

/* Starts a new batch if the previous one was waited for (caller holds mu, inflight == 0). */
static void maybe_new_batch(dt_broker_publisher *p)
{
    if (!p->batch_done) {
        return;
    }
    for (size_t i = 0; i < p->nslots; i++) {
        dt_free(p->errors[i]);
    }
    p->nslots = 0;
    p->batch_done = false;
}

/* Doubles the slot arrays (caller holds mu). */
static dt_status grow(dt_broker_publisher *p)
{
    size_t ncap = p->cap == 0 ? 256 : p->cap * 2;
    dt_broker_pub_result *ns = dt_realloc(p->slots, ncap * sizeof(*ns));
    if (ns == NULL) {
        return DT_ENOMEM;
    }
    p->slots = ns;
    char **ne = dt_realloc(p->errors, ncap * sizeof(*ne));
    if (ne == NULL) {
        return DT_ENOMEM;
    }
    p->errors = ne;
    p->cap = ncap;
    return DT_OK;
}

/* Waits until the window has room (caller holds mu); DT_ETIMEOUT after the stall timeout. */
static dt_status wait_for_room(dt_broker_publisher *p)
{
    if (p->inflight < p->o.window) {
        return DT_OK;
    }
    struct timespec ts = dt__deadline_in(CLOCK_REALTIME, p->o.stall_timeout_ms);
    dt_status st = DT_OK;
    p->waiters++;
    while (p->inflight >= p->o.window && st == DT_OK) {
        if (pthread_cond_timedwait(&p->cond, &p->mu, &ts) != 0) {
            st = DT_ETIMEOUT;
        }
    }
    p->waiters--;
    return st;
}

/*
 * Reserves a result slot for `tag` and maps `nm` to it, once the window has room. The map entry
 * exists before the message is sent: its PubAck may arrive before js_PublishMsgAsync returns.
 */
static dt_status reserve_slot(dt_broker_publisher *p, uint64_t tag, const natsMsg *nm,
                              size_t *out_ix)
{
    pthread_mutex_lock(&p->mu);
    maybe_new_batch(p);
    dt_status st = wait_for_room(p);
    if (st == DT_OK && p->nslots >= p->o.max_batch) {
        st = DT_EBUSY;
    }
    if (st == DT_OK && p->nslots == p->cap) {
        st = grow(p);
    }
    if (st == DT_OK) {
        size_t ix = p->nslots++;
        memset(&p->slots[ix], 0, sizeof(p->slots[ix]));
        p->slots[ix].tag = tag;
        p->slots[ix].status = PENDING_STATUS;
        p->errors[ix] = NULL;
        p->inflight++;
        map_put(p, nm, ix);
        *out_ix = ix;
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

/* Undoes reserve_slot() after a failed send (only the last slot can be undone). */
static void unreserve(dt_broker_publisher *p, size_t ix, const natsMsg *nm)
{
    pthread_mutex_lock(&p->mu);
    if (nm != NULL) {
        (void)map_take(p, nm);
    }
    if (ix + 1 == p->nslots) {
        p->nslots--;
    }
    p->inflight--;
    if (p->waiters > 0) {
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
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
    natsMsg *nm = NULL;
    natsStatus s = dt__broker_natsmsg(m, NULL, &nm);
    if (s != NATS_OK) {
        return dt__broker_nerr(p->err, sizeof(p->err), s, 0, "publish to %s", m->subject);
    }
    size_t ix = 0;
    st = reserve_slot(p, tag, nm, &ix);
    if (st != DT_OK) {
        natsMsg_Destroy(nm);
        return add_fail(p, st, m);
    }
    jsPubOptions po;
    dt__broker_pubopts(m, &po);
    po.MaxWait = p->o.ack_timeout_ms;
    natsMsg *keep = nm;
    s = js_PublishMsgAsync(p->js, &nm, &po);
    if (s != NATS_OK) {
        /* nats.c did not take the message: no handler will see it. */
        unreserve(p, ix, keep);
        natsMsg_Destroy(nm);
        return dt__broker_nerr(p->err, sizeof(p->err), s, 0, "publish to %s", m->subject);
    }
    return DT_OK;
}

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
    struct timespec ts = dt__deadline_in(CLOCK_REALTIME, timeout_ms);
    if (!wait_drained(p, &ts)) {
        take_back(p);
        wait_drained(p, NULL); /* only handlers already running remain */
    }
    pthread_mutex_lock(&p->mu);
    p->batch_done = true;
    dt_status st = summarize(p);
    pthread_mutex_unlock(&p->mu);
    return st;
}
