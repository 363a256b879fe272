/*
 * The outbox: messages an episode committed are published after the commit (async, one wait per
 * batch), and their rows are deleted once JetStream acknowledged them. Rows left by a crash or a
 * broker outage are published again later; their Nats-Msg-Id makes the repeat a no-op.
 *
 * Messages to arbitrary subjects (a durable publish, a result subject) are marked core-ok: when
 * no stream captures the subject they are sent as plain NATS messages (with their Nats-Msg-Id,
 * at least once: a row is deleted after the server confirmed the batch with a flush). Whether a
 * stream captures a subject is asked once and remembered for CAPTURE_TTL_MS: a JetStream publish
 * to a subject with a plain subscriber and no stream would wait for a PubAck nobody sends.
 */
#include <string.h>

#include "partition_int.h"

#define OUTBOX_PAGE     4096
#define PUBLISH_WAIT_MS 10000
#define CORE_OK_HEADER  "Dt-Core-Ok"
#define CAPTURE_TTL_MS  10000

/* Whether `subject` goes to JetStream (a stream captures it), from the partition's cache. */
static bool via_jetstream(dt__partition *pt, const char *subject)
{
    int64_t now = dt__mono_ms();
    dt__capture_entry *slot =
        &pt->captures[dt__fnv1a64(DT__FNV64_OFFSET, subject) % DT__ARRAY_LEN(pt->captures)];
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

dt_status dt__outbox_headers(dt__arena *a, const Dt__MessagePublishedEvent *src, bool core_ok,
                             dt__blob *out)
{
    Dt__MessagePublishedEvent h = DT__MESSAGE_PUBLISHED_EVENT__INIT;
    size_t n = src->n_headers + (core_ok ? 1 : 0);
    Dt__MessagePublishedEvent__HeadersEntry **hs = dt__arena_alloc(a, (n + 1) * sizeof(*hs));
    Dt__MessagePublishedEvent__HeadersEntry *flag = dt__arena_alloc(a, sizeof(*flag));
    if (hs == NULL || flag == NULL) {
        return DT_ENOMEM;
    }
    if (src->n_headers > 0) {
        memcpy(hs, src->headers, src->n_headers * sizeof(*hs));
    }
    if (core_ok) {
        dt__message_published_event__headers_entry__init(flag);
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
    bool core_sent;
} row_headers;

static bool decode_headers(dt__arena *a, const dt__blob *blob, row_headers *out)
{
    *out = (row_headers){0};
    if (blob->data == NULL) {
        return true;
    }
    Dt__MessagePublishedEvent *m =
        dt__message_published_event__unpack(dt__arena_pb_allocator(a), blob->len, blob->data);
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

/* Sends the core-ok rows that no stream captures as plain messages and every other row through
 * the async publisher (tag = row index); returns false when the publisher refused a row (the
 * rows from there on are left for a later round). */
static bool send_rows(dt__partition *pt, dt__outbox_flight *f)
{
    row_headers *hs = f->hs;
    bool any_core = false, all = true;
    for (size_t i = 0; i < f->n; i++) {
        if (!decode_headers(f->arena, &f->rows[i].msg.headers, &hs[i])) {
            all = false;
            break;
        }
        dt_broker_outmsg m = to_outmsg(&f->rows[i], &hs[i]);
        if (hs[i].core_ok && !via_jetstream(pt, f->rows[i].msg.subject)) {
            /* Nobody's stream: a plain message, confirmed by the flush below. */
            if (dt_broker_publish_core(pt->w->broker, &m) == DT_OK) {
                hs[i].core_sent = true;
                any_core = true;
            }
            continue;
        }
        if (dt_broker_publisher_add(pt->pub, &m, (uint64_t)i) != DT_OK) {
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
    }
    return all;
}

dt_status dt__outbox_send(dt__partition *pt)
{
    dt__outbox_flight *f = &pt->flight;
    if (f->arena != NULL) {
        return DT_OK; /* one batch in flight at a time: settle it first */
    }
    f->arena = dt__arena_create(64 * 1024);
    if (f->arena == NULL) {
        return DT_ENOMEM;
    }
    dt_status st =
        dt__store_outbox_list(pt->store, pt->sent_upto, OUTBOX_PAGE, f->arena, &f->rows, &f->n);
    if (st != DT_OK || f->n == 0) {
        dt__arena_destroy(f->arena);
        *f = (dt__outbox_flight){0};
        pt->outbox_pending = st != DT_OK;
        return st;
    }
    f->hs = dt__arena_calloc(f->arena, f->n, sizeof(row_headers));
    f->done = dt__arena_calloc(f->arena, f->n, sizeof(int64_t));
    if (f->hs == NULL || f->done == NULL) {
        dt__arena_destroy(f->arena);
        *f = (dt__outbox_flight){0};
        return DT_ENOMEM;
    }
    bool all = send_rows(pt, f);
    /* Rows up to here are in flight or done; a refusal means: list everything again later
     * (JetStream drops the repeats by Nats-Msg-Id). */
    pt->sent_upto = all ? f->rows[f->n - 1].id : 0;
    pt->outbox_pending = !all || f->n == OUTBOX_PAGE;
    return all ? DT_OK : DT_EBROKER;
}

/* Collects the outcome of the publisher's batch into f->done; returns the first failure. */
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
    for (size_t k = 0; k < nr; k++) {
        size_t i = (size_t)res[k].tag;
        bool ok = res[k].status == DT_OK;
        if (!ok && hs[i].core_ok) {
            dt_broker_outmsg m = to_outmsg(&f->rows[i], &hs[i]);
            ok = dt_broker_publish_core(pt->w->broker, &m) == DT_OK;
        }
        if (ok) {
            f->done[f->n_done++] = f->rows[i].id;
        } else if (worst == DT_OK) {
            worst = res[k].status;
            dt__worker_log(pt->w, DT_LOG_WARN, NULL, "partition %u: publish to %s failed: %s",
                           pt->p, f->rows[i].msg.subject, res[k].error != NULL ? res[k].error : "");
        }
    }
    return worst;
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
    if (f->n_done > 0) {
        dt_status dst = dt__store_outbox_delete(pt->store, pt->epoch, f->done, f->n_done);
        st = st == DT_OK ? dst : st;
    }
    dt__arena_destroy(f->arena);
    *f = (dt__outbox_flight){0};
    return st;
}
