/*
 * The outbox: messages an episode committed are published after the commit (async, one wait per
 * batch), and their rows are deleted once JetStream acknowledged them. Rows left by a crash or a
 * broker outage are published again later; their Nats-Msg-Id makes the repeat a no-op (not
 * for an older status record once nats-server restarted: such a flight sends only the newest
 * record of each instance, stale_status_rows).
 *
 * A batch's rows are published from the commit's own copy (the store returns their ids), not
 * read back from SQLite; the ids of acknowledged rows wait in pt->settled and are deleted inside
 * the next batch's commit (dt__store_commit_settled), so a busy partition spends no write
 * transaction on deletes. An idle partition deletes them on their own after SETTLED_IDLE_MS, or
 * at once when SETTLED_MAX are waiting. SQLite is listed only to recover: at start-up (rows a
 * previous owner left), after a refused or failed publish, and for batches of more than
 * OUTBOX_PAGE rows (listed a page at a time, so a flight stays bounded).
 *
 * Messages to arbitrary subjects (a durable publish, a result subject) are marked core-ok: when
 * no stream captures the subject they are sent as plain NATS messages (with their Nats-Msg-Id,
 * at least once: a row counts as published after the server confirmed the batch with a flush).
 * A JetStream publish of such a row that answers "no responders" goes plain only if a fresh
 * capture check agrees; a timeout keeps the row for JetStream (the message may be stored, and a
 * plain copy to a captured subject would be unconfirmed).
 * Whether a stream captures a subject is asked once and remembered for CAPTURE_TTL_MS: a
 * JetStream publish to a subject with a plain subscriber and no stream would wait for a PubAck
 * nobody sends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_int.h"
#include "partition_int.h"

#define OUTBOX_PAGE     4096
#define PUBLISH_WAIT_MS 10000
#define CORE_OK_HEADER  "Dt-Core-Ok"
#define CAPTURE_TTL_MS  10000
#define SETTLED_IDLE_MS 250  /* an idle partition deletes published rows after this */
#define SETTLED_MAX     4096 /* ... or once this many wait, busy or not */

/* The cache slot of `subject` (it may hold another subject). */
static dt__capture_entry *capture_slot(dt__partition *pt, const char *subject)
{
    return &pt->captures[dt__fnv1a64(DT__FNV64_OFFSET, subject) % DT__ARRAY_LEN(pt->captures)];
}

/* Whether `subject` goes to JetStream (a stream captures it), from the partition's cache. */
static bool via_jetstream(dt__partition *pt, const char *subject)
{
    int64_t now = dt__mono_ms();
    dt__capture_entry *slot = capture_slot(pt, subject);
    if (slot->subject != NULL && strcmp(slot->subject, subject) == 0 && now < slot->until_ms) {
        return slot->captured;
    }
    bool captured = true; /* on error: JetStream, whose failure falls back to core below */
    if (dt_broker_subject_captured(pt->w->broker, subject, &captured) != DT_OK) {
        return true;
    }
    char *copy = dt_strdup(subject);
    if (copy != NULL) {
        dt_free(slot->subject);
        *slot = (dt__capture_entry){copy, captured, now + CAPTURE_TTL_MS};
    }
    return captured;
}

/* via_jetstream, asking the server again instead of trusting the cache. */
static bool via_jetstream_fresh(dt__partition *pt, const char *subject)
{
    dt__capture_entry *slot = capture_slot(pt, subject);
    if (slot->subject != NULL && strcmp(slot->subject, subject) == 0) {
        slot->until_ms = 0;
    }
    return via_jetstream(pt, subject);
}

void dt__outbox_cache_clear(dt__partition *pt)
{
    for (size_t i = 0; i < DT__ARRAY_LEN(pt->captures); i++) {
        dt_free(pt->captures[i].subject);
        pt->captures[i] = (dt__capture_entry){0};
    }
}

dt_status dt__outbox_add(dt__arena *a, dt__outbox_builder *ob, const char *subject,
                         const char *msg_id, const uint8_t *data, size_t len,
                         const dt__blob *headers)
{
    /* Callers often format into stack buffers: keep copies that live as long as the batch. */
    subject = subject != NULL ? dt__arena_strdup(a, subject) : NULL;
    msg_id = msg_id != NULL ? dt__arena_strdup(a, msg_id) : NULL;
    if (subject == NULL || msg_id == NULL) {
        return DT_ENOMEM;
    }
    if (ob->n == ob->cap) {
        size_t cap = ob->cap == 0 ? 8 : ob->cap * 2;
        dt__outbox_msg *g = dt__arena_alloc(a, cap * sizeof(*g));
        if (g == NULL) {
            return DT_ENOMEM;
        }
        if (ob->n > 0) {
            memcpy(g, ob->msgs, ob->n * sizeof(*g));
        }
        ob->msgs = g;
        ob->cap = cap;
    }
    ob->msgs[ob->n++] = (dt__outbox_msg){
        .subject = subject,
        .msg_id = msg_id,
        .payload = {data != NULL ? data : (const uint8_t *)"", len},
        .headers = headers != NULL ? *headers : (dt__blob){NULL, 0},
    };
    return DT_OK;
}

dt_status dt__outbox_headers(dt__arena *a, const Dtpb__MessagePublishedEvent *src, bool core_ok,
                             dt__blob *out)
{
    Dtpb__MessagePublishedEvent h = DTPB__MESSAGE_PUBLISHED_EVENT__INIT;
    size_t n = src->n_headers + (core_ok ? 1 : 0);
    Dtpb__MessagePublishedEvent__HeadersEntry **hs = dt__arena_alloc(a, (n + 1) * sizeof(*hs));
    Dtpb__MessagePublishedEvent__HeadersEntry *flag = dt__arena_alloc(a, sizeof(*flag));
    if (hs == NULL || flag == NULL) {
        return DT_ENOMEM;
    }
    if (src->n_headers > 0) {
        memcpy(hs, src->headers, src->n_headers * sizeof(*hs));
    }
    if (core_ok) {
        dtpb__message_published_event__headers_entry__init(flag);
        flag->key = CORE_OK_HEADER;
        flag->value = "1";
        hs[src->n_headers] = flag;
    }
    h.headers = hs;
    h.n_headers = n;
    size_t len = 0;
    uint8_t *data = dt__pack(a, &h.base, &len);
    if (data == NULL) {
        return DT_ENOMEM;
    }
    *out = (dt__blob){data, len};
    return DT_OK;
}

/* Decoded headers of one row, ready for the broker. */
typedef struct row_headers {
    dt_broker_header *h;
    size_t n;
    bool core_ok;
    bool core_sent;  /* sent plain by send_rows */
    bool core_retry; /* sent plain by collect, after "no responders" */
} row_headers;

static bool decode_headers(dt__arena *a, const dt__blob *blob, row_headers *out)
{
    *out = (row_headers){0};
    if (blob->data == NULL) {
        return true;
    }
    Dtpb__MessagePublishedEvent *m =
        dtpb__message_published_event__unpack(dt__arena_pb_allocator(a), blob->len, blob->data);
    if (m == NULL) {
        return false;
    }
    out->h = dt__arena_alloc(a, (m->n_headers + 1) * sizeof(*out->h));
    if (out->h == NULL) {
        return false;
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i]->key, CORE_OK_HEADER) == 0) {
            out->core_ok = true;
            continue;
        }
        out->h[out->n++] = (dt_broker_header){m->headers[i]->key, m->headers[i]->value};
    }
    return true;
}

static dt_broker_outmsg to_outmsg(const dt__outbox_row *r, const row_headers *h)
{
    return (dt_broker_outmsg){
        .subject = r->msg.subject,
        .msg_id = r->msg.msg_id,
        .headers = h->h,
        .nheaders = h->n,
        .data = r->msg.payload.data,
        .len = r->msg.payload.len,
    };
}

/*
 * A row the server refuses for its size (over the server's max payload, or the stream's maximum
 * message size) can never be published: it is dead-lettered (its subject, identity and size; not
 * its body, which does not fit either) and counted done, so that it does not stop the rows
 * behind it. The runtime bounds what it writes (status records, payloads), so this is the last
 * line of defence, e.g. for a hub whose limit was lowered.
 */
static void drop_oversized(dt__partition *pt, dt__outbox_flight *f, size_t i, const char *err)
{
    const dt__outbox_msg *m = &f->rows[i].msg;
    char why[DT_BROKER_NAME_BUF + 256];
    snprintf(why, sizeof(why),
             "message of %zu bytes to %s refused for its size (%s); it was not delivered",
             m->payload.len, m->subject, err != NULL ? err : "too large");
    dt__dead_letter(pt, "outbox", why, NULL, m->msg_id, strlen(m->msg_id), m->subject);
    f->done[f->n_done++] = f->rows[i].id;
}

/* ---- rows whose activity runs in-process ---- */

/* The index of `id` in the set, or where it would go. */
static size_t local_find(const dt__outbox_local *l, int64_t id)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->ids[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool local_has(const dt__outbox_local *l, int64_t id)
{
    size_t i = local_find(l, id);
    return i < l->n && l->ids[i] == id;
}

/* Adds `id` (usually the largest yet: appended); false when out of memory (then the request is
 * published instead of run here: a row that runs here must be in the set). */
static bool local_add(dt__outbox_local *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 64 : l->cap * 2;
        int64_t *g = dt_realloc(l->ids, cap * sizeof(*g));
        if (g == NULL) {
            return false;
        }
        l->ids = g;
        l->cap = cap;
    }
    size_t i = local_find(l, id);
    if (i < l->n && l->ids[i] == id) {
        return true;
    }
    memmove(l->ids + i + 1, l->ids + i, (l->n - i) * sizeof(*l->ids));
    l->ids[i] = id;
    l->n++;
    return true;
}

static void local_remove(dt__outbox_local *l, int64_t id)
{
    size_t i = local_find(l, id);
    if (i < l->n && l->ids[i] == id) {
        memmove(l->ids + i, l->ids + i + 1, (l->n - i - 1) * sizeof(*l->ids));
        l->n--;
    }
}

/* ---- status records listed again ---- */

static bool is_status(const dt__partition *pt, const char *subject)
{
    return pt->status_prefix[0] != '\0' &&
           strncmp(subject, pt->status_prefix, strlen(pt->status_prefix)) == 0;
}

typedef struct status_ref {
    const char *subject;
    size_t i; /* row index in the flight */
} status_ref;

static int status_ref_cmp(const void *a, const void *b)
{
    const status_ref *x = a, *y = b;
    int c = strcmp(x->subject, y->subject);
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/*
 * A listed flight (rows a previous owner left, rows listed again after a failure) can hold two
 * status records of one instance, both published before: an older one whose PubAck came (or
 * was not waited for) and a newer one. Publishing both again in order is not safe: the status
 * bucket keeps one message per key, and once nats-server restarts, JetStream's duplicate window
 * is rebuilt from the stored messages only, so it still knows the newer record's Nats-Msg-Id (and
 * drops that repeat) but no longer the older one's (and stores it): the instance is seen RUNNING
 * for good after it completed (the chaos test found it). So only the newest record of each
 * instance in the flight is published; the older ones are marked in *out (arena memory; NULL
 * when the flight holds none) and count as done, being superseded. false: out of memory.
 * (Records of one instance on two pages of a listing of more than OUTBOX_PAGE rows are not seen
 * together.)
 */
static bool stale_status_rows(const dt__partition *pt, dt__outbox_flight *f, bool **out)
{
    *out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++) {
        n += is_status(pt, f->rows[i].msg.subject) ? 1 : 0;
    }
    if (n < 2) {
        return true;
    }
    status_ref *refs = dt__arena_alloc(f->arena, n * sizeof(*refs));
    bool *stale = dt__arena_calloc(f->arena, f->n, sizeof(*stale));
    if (refs == NULL || stale == NULL) {
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (is_status(pt, f->rows[i].msg.subject)) {
            refs[k++] = (status_ref){f->rows[i].msg.subject, i};
        }
    }
    qsort(refs, n, sizeof(*refs), status_ref_cmp);
    for (k = 0; k + 1 < n; k++) {
        stale[refs[k].i] = strcmp(refs[k].subject, refs[k + 1].subject) == 0;
    }
    *out = stale;
    return true;
}

/* Sends the core-ok rows that no stream captures as plain messages and every other row through
 * the async publisher (tag = row index); returns false when the publisher refused a row (the
 * rows from there on are left for a later round). */
static bool send_rows(dt__partition *pt, dt__outbox_flight *f)
{
    row_headers *hs = f->hs;
    bool any_core = false, all = true;
    bool *stale = NULL; /* a batch's own rows hold one status record per instance at most */
    if (!f->local_ok && !stale_status_rows(pt, f, &stale)) {
        return false; /* listed again next round */
    }
    for (size_t i = 0; i < f->n; i++) {
        if (stale != NULL && stale[i]) {
            f->done[f->n_done++] = f->rows[i].id; /* superseded (stale_status_rows) */
            continue;
        }
        if (!decode_headers(f->arena, &f->rows[i].msg.headers, &hs[i])) {
            all = false;
            break;
        }
        if (!f->local_ok && local_has(&pt->local, f->rows[i].id)) {
            continue; /* listed again while it runs here: its result is on its way */
        }
        if (f->local_ok && pt->w->local_acts != NULL && local_add(&pt->local, f->rows[i].id)) {
            if (dt__local_acts_submit(pt->w->local_acts, pt->inbox, f->rows[i].id,
                                      f->rows[i].msg.subject, f->rows[i].msg.payload.data,
                                      f->rows[i].msg.payload.len)) {
                continue; /* runs here; its row stays until the commit that applies its result */
            }
            local_remove(&pt->local, f->rows[i].id); /* not taken: published below */
        }
        dt_broker_outmsg m = to_outmsg(&f->rows[i], &hs[i]);
        if (hs[i].core_ok && !via_jetstream(pt, f->rows[i].msg.subject)) {
            /* Nobody's stream: a plain message, confirmed by the flush below. A failure leaves
             * the row for the next round (false: everything is listed again). */
            dt_status st = dt_broker_publish_core(pt->w->broker, &m);
            if (st == DT_ETOOLARGE) {
                drop_oversized(pt, f, i, dt_broker_errmsg(pt->w->broker));
                continue;
            }
            if (st != DT_OK) {
                all = false;
                break;
            }
            hs[i].core_sent = true;
            any_core = true;
            continue;
        }
        dt_status st = dt_broker_publisher_add(pt->pub, &m, (uint64_t)i);
        if (st == DT_ETOOLARGE) {
            drop_oversized(pt, f, i, dt_broker_publisher_errmsg(pt->pub));
            continue;
        }
        if (st != DT_OK) {
            all = false;
            break;
        }
        f->n_added++;
    }
    if (any_core && dt_broker_flush(pt->w->broker, PUBLISH_WAIT_MS) == DT_OK) {
        for (size_t i = 0; i < f->n; i++) {
            if (hs[i].core_sent) {
                f->done[f->n_done++] = f->rows[i].id;
            }
        }
    } else if (any_core) {
        all = false; /* not confirmed: sent again next round */
    }
    return all;
}

/* Gives the flight (its arena created) room for n rows: their headers, done ids and, unless the
 * rows are already there (listed into the arena), the rows. */
static dt_status flight_arrays(dt__outbox_flight *f, size_t n, bool rows_too)
{
    if (rows_too) {
        f->rows = dt__arena_calloc(f->arena, n, sizeof(*f->rows));
    }
    f->hs = f->rows != NULL ? dt__arena_calloc(f->arena, n, sizeof(row_headers)) : NULL;
    f->done = f->hs != NULL ? dt__arena_calloc(f->arena, n, sizeof(int64_t)) : NULL;
    return f->done != NULL ? DT_OK : DT_ENOMEM;
}

/* Copies the rows the batch just committed, with their ids, into the flight: the batch's memory
 * goes before their PubAcks come back (and a failed one is published again as a plain message
 * from this copy). false when out of memory. */
static bool copy_committed(dt__outbox_flight *f, const dt__batch *b)
{
    for (size_t c = 0; c < b->n_commits; c++) {
        const dt__episode_commit *e = &b->commits[c];
        for (size_t i = 0; i < e->n_outbox; i++) {
            const dt__outbox_msg *m = &e->outbox[i];
            dt__outbox_row *r = &f->rows[f->n++];
            r->id = e->outbox_ids[i];
            r->msg.subject = dt__arena_strdup(f->arena, m->subject);
            r->msg.msg_id = dt__arena_strdup(f->arena, m->msg_id);
            r->msg.payload = (dt__blob){dt__arena_memdup(f->arena, m->payload.data, m->payload.len),
                                        m->payload.len};
            if (m->headers.data != NULL) {
                r->msg.headers = (dt__blob){
                    dt__arena_memdup(f->arena, m->headers.data, m->headers.len), m->headers.len};
                if (r->msg.headers.data == NULL) {
                    return false;
                }
            }
            if (r->msg.subject == NULL || r->msg.msg_id == NULL || r->msg.payload.data == NULL) {
                return false;
            }
        }
    }
    return true;
}

/* Rows the batch committed (0 when it committed nothing). */
static size_t committed_rows(const dt__batch *b)
{
    size_t n = 0;
    for (size_t c = 0; b != NULL && b->committed && c < b->n_commits; c++) {
        n += b->commits[c].n_outbox;
    }
    return n;
}

/* Fills the flight (its arena created) from the store: rows after sent_upto, one page. */
static dt_status list_stored(dt__partition *pt, dt__outbox_flight *f)
{
    dt_status st =
        dt__store_outbox_list(pt->store, pt->sent_upto, OUTBOX_PAGE, f->arena, &f->rows, &f->n);
    if (st == DT_OK && f->n > 0) {
        st = flight_arrays(f, f->n, false);
    }
    pt->outbox_pending = st != DT_OK || f->n == OUTBOX_PAGE;
    return st;
}

/* Fills the flight (its arena created) from the batch's commit; falls back to listing when it
 * cannot. */
static dt_status take_committed(dt__partition *pt, dt__outbox_flight *f, const dt__batch *b)
{
    size_t n = committed_rows(b);
    if (n == 0) {
        return DT_OK;
    }
    if (n > OUTBOX_PAGE) {
        return list_stored(pt, f); /* a large fan-out: a page at a time from the store */
    }
    dt_status st = flight_arrays(f, n, true);
    if (st == DT_OK && !copy_committed(f, b)) {
        st = DT_ENOMEM;
    }
    /* Only a batch's own rows may run in-process: rows listed from the store (a previous owner's,
     * a failed publish's) go through JetStream, so that an activity that kills its process
     * meets the task queue's max_deliveries instead of killing every owner in turn. */
    f->local_ok = true;
    if (st != DT_OK) {
        pt->outbox_pending = true; /* the rows are in SQLite: list them next round */
    }
    return st;
}

dt_status dt__outbox_send(dt__partition *pt, const dt__batch *b)
{
    dt__outbox_flight *f = &pt->flight;
    if (f->arena != NULL) {
        /* One batch in flight at a time: this batch's rows are listed once it settled. */
        pt->outbox_pending = pt->outbox_pending || committed_rows(b) > 0;
        return DT_OK;
    }
    f->arena = dt__arena_create((size_t)64 * 1024);
    if (f->arena == NULL) {
        pt->outbox_pending = true;
        return DT_ENOMEM;
    }
    dt_status st = pt->outbox_pending ? list_stored(pt, f) : take_committed(pt, f, b);
    if (st != DT_OK || f->n == 0) {
        dt__arena_destroy(f->arena);
        *f = (dt__outbox_flight){0};
        return st;
    }
    bool all = send_rows(pt, f);
    /* Rows up to here are in flight or done; a refusal means: list everything again later
     * (JetStream drops the repeats by Nats-Msg-Id). */
    if (all) {
        pt->sent_upto = f->rows[f->n - 1].id;
    } else {
        pt->sent_upto = 0;
        pt->outbox_pending = true;
    }
    return all ? DT_OK : DT_EBROKER;
}

/* Collects the outcome of the publisher's batch into f->done; returns the first failure. */
/*
 * A status record is a last-value-wins KV entry: a failed write of an instance's record must not
 * be retried after a later record of the same instance in the same flight was stored (a
 * reconnect can fail the first and pass the second), or the retry would put the older state
 * back (an instance seen RUNNING forever after it completed; test_cluster_failover found it).
 * Such a row is superseded: counted as done. Rows of other subjects are never skipped.
 */
static bool superseded(const dt__partition *pt, const dt__outbox_flight *f, const bool *ok,
                       size_t i)
{
    const char *subject = f->rows[i].msg.subject;
    if (!is_status(pt, subject)) {
        return false;
    }
    for (size_t j = i + 1; j < f->n; j++) {
        if (ok[j] && strcmp(f->rows[j].msg.subject, subject) == 0) {
            return true;
        }
    }
    return false;
}

static dt_status collect(dt__partition *pt, dt__outbox_flight *f, int64_t timeout_ms)
{
    if (f->n_added == 0) {
        return DT_OK;
    }
    dt_broker_publisher_wait(pt->pub, timeout_ms);
    size_t nr = 0;
    const dt_broker_pub_result *res = dt_broker_publisher_results(pt->pub, &nr);
    row_headers *hs = f->hs;
    dt_status worst = DT_OK;
    bool any_retry = false;
    /* Per row: stored (PubAck) and failed (to retry unless superseded). */
    bool *stored = dt_calloc(2 * (f->n > 0 ? f->n : 1), sizeof(bool));
    if (stored == NULL) {
        return DT_ENOMEM; /* the rows stay and are sent again */
    }
    bool *failed = stored + f->n;
    for (size_t k = 0; k < nr; k++) {
        size_t i = (size_t)res[k].tag;
        bool ok = res[k].status == DT_OK;
        if (!ok && hs[i].core_ok && res[k].status == DT_EBROKER &&
            !via_jetstream_fresh(pt, f->rows[i].msg.subject)) {
            /* "No responders", and asked again, no stream captures the subject: a plain
             * message, confirmed by the flush below. Any other failure (a timeout: the message
             * may be stored; a plain send to a captured subject would go unconfirmed) keeps the
             * row for another JetStream publish. */
            dt_broker_outmsg m = to_outmsg(&f->rows[i], &hs[i]);
            if (dt_broker_publish_core(pt->w->broker, &m) == DT_OK) {
                hs[i].core_retry = any_retry = true;
                continue;
            }
        }
        if (ok) {
            f->done[f->n_done++] = f->rows[i].id;
            stored[i] = true;
        } else if (res[k].status == DT_ETOOLARGE) {
            drop_oversized(pt, f, i, res[k].error);
        } else {
            failed[i] = true;
            dt__metrics_publish_error(pt->w->metrics, DT__MKIND_ORCH); /* metrics */
        }
    }
    for (size_t k = 0; k < nr; k++) {
        size_t i = (size_t)res[k].tag;
        if (!failed[i]) {
            continue;
        }
        if (superseded(pt, f, stored, i)) {
            f->done[f->n_done++] = f->rows[i].id;
        } else if (worst == DT_OK) {
            worst = res[k].status;
            dt__worker_log(pt->w, DT_LOG_WARN, NULL, "partition %u: publish to %s failed: %s",
                           pt->p, f->rows[i].msg.subject, res[k].error != NULL ? res[k].error : "");
        }
    }
    dt_free(stored);
    if (any_retry) {
        bool flushed = dt_broker_flush(pt->w->broker, PUBLISH_WAIT_MS) == DT_OK;
        for (size_t i = 0; flushed && i < f->n; i++) {
            if (hs[i].core_retry) {
                f->done[f->n_done++] = f->rows[i].id;
            }
        }
        worst = !flushed && worst == DT_OK ? DT_EBROKER : worst;
    }
    return worst;
}

/* Remembers published row ids for deletion; false when out of memory. */
static bool settled_add(dt__outbox_settled *sl, const int64_t *ids, size_t n)
{
    if (sl->n + n > sl->cap) {
        size_t cap = sl->cap == 0 ? 256 : sl->cap;
        while (cap < sl->n + n) {
            cap *= 2;
        }
        int64_t *g = dt_realloc(sl->ids, cap * sizeof(*g));
        if (g == NULL) {
            return false;
        }
        sl->ids = g;
        sl->cap = cap;
    }
    if (sl->n == 0) {
        sl->since_ms = dt__mono_ms();
    }
    memcpy(sl->ids + sl->n, ids, n * sizeof(*ids));
    sl->n += n;
    return true;
}

dt_status dt__outbox_settle(dt__partition *pt, int64_t timeout_ms)
{
    dt__outbox_flight *f = &pt->flight;
    if (f->arena == NULL) {
        return DT_OK;
    }
    dt_status st = collect(pt, f, timeout_ms);
    if (st != DT_OK) {
        pt->sent_upto = 0; /* publish the failed rows again (and the repeats are dropped) */
        pt->outbox_pending = true;
    }
    if (f->n_done > 0 && !settled_add(&pt->settled, f->done, f->n_done)) {
        /* No room to defer: delete them now, in a transaction of their own. */
        dt__store_batch del = {.published_ids = f->done, .n_published = f->n_done};
        dt_status dst = dt__journal_commit(pt->journal, pt->store, pt->epoch, &del);
        st = st == DT_OK ? dst : st;
    }
    dt__arena_destroy(f->arena);
    *f = (dt__outbox_flight){0};
    return st;
}

void dt__outbox_local_done(dt__partition *pt, const int64_t *row_ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        local_remove(&pt->local, row_ids[i]);
    }
    if (n > 0 && !settled_add(&pt->settled, row_ids, n)) {
        /* Listed and published again (their results are repeats then), so that they are deleted
         * once their PubAcks come, instead of staying until the next owner. */
        dt__worker_log(pt->w, DT_LOG_WARN, NULL,
                       "partition %u: out of memory noting %zu finished in-process activities",
                       pt->p, n);
        for (size_t i = 0; i < n; i++) {
            pt->sent_upto = pt->sent_upto >= row_ids[i] ? row_ids[i] - 1 : pt->sent_upto;
        }
        pt->outbox_pending = true;
    }
}

void dt__outbox_local_refused(dt__partition *pt, int64_t row_id)
{
    local_remove(&pt->local, row_id);
    /* Listed again from the store, from that row on, and published (repeats of rows sent since
     * are dropped by JetStream's duplicate window, as after any failed publish). */
    if (pt->sent_upto >= row_id) {
        pt->sent_upto = row_id - 1;
    }
    pt->outbox_pending = true;
}

void dt__outbox_settled_done(dt__partition *pt)
{
    pt->settled.n = 0;
}

dt_status dt__outbox_trim(dt__partition *pt, bool now)
{
    dt__outbox_settled *sl = &pt->settled;
    if (sl->n == 0 ||
        (!now && sl->n < SETTLED_MAX && dt__mono_ms() - sl->since_ms < SETTLED_IDLE_MS)) {
        return DT_OK;
    }
    dt__store_batch del = {.published_ids = sl->ids, .n_published = sl->n};
    dt_status st = dt__journal_commit(pt->journal, pt->store, pt->epoch, &del);
    if (st == DT_OK) {
        sl->n = 0;
    } else {
        sl->since_ms = dt__mono_ms(); /* retried after another while; the rows stay meanwhile */
    }
    return st;
}

void dt__outbox_settled_free(dt__partition *pt)
{
    dt_free(pt->settled.ids);
    pt->settled = (dt__outbox_settled){0};
    dt_free(pt->local.ids);
    pt->local = (dt__outbox_local){0};
}
