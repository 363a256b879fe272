/*
 * The handlers of the query service (see query_int.h): list, history and purge, answered from
 * the partition's store into a QueryResponse. Replies stay within the request's byte budget.
 */
#include "query_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "protocol_int.h"
#include "purge_int.h"

/* Statuses whose instances may be purged: COMPLETED, FAILED, CANCELED, TERMINATED. */
#define FINISHED_MASK                                                                              \
    ((1u << DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED) |                          \
     (1u << DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED) |                             \
     (1u << DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CANCELED) |                           \
     (1u << DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED))
/* The highest OrchestrationStatus value. */
#define STATUS_MAX DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED
/* Bytes a repeated-field element adds to its packed size besides itself (tag + length). */
#define ELEM_OVERHEAD 8

static dt_status fail(dt__query_ctx *x, dt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The text goes back to the client in the reply, which names the partition it asked
 * ("partition 3: <text>"); naming it here too doubled the prefix. */
static dt_status fail(dt__query_ctx *x, dt_status st, const char *fmt, ...)
{
    if (x->err == NULL || x->errlen == 0) {
        return st;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    return st;
}

static const char *status_name(int32_t s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&dtpb__orchestration_status__descriptor, s);
    return v != NULL ? v->name + strlen("ORCHESTRATION_STATUS_") : "UNKNOWN";
}

/* A Payload over bytes in arena memory (not copied), or NULL for an absent blob. *ok is cleared
 * when out of memory. */
static Dtpb__Payload *payload_of(dt__arena *a, const uint8_t *data, size_t len, bool *ok)
{
    if (data == NULL) {
        return NULL;
    }
    Dtpb__Payload *p = dt__arena_alloc(a, sizeof(*p));
    if (p == NULL) {
        *ok = false;
        return NULL;
    }
    dtpb__payload__init(p);
    p->value.data = (uint8_t *)data;
    p->value.len = len;
    return p;
}

/* Tag keys starting with this are the runtime's own (the result subject, say): not shown. */
#define RESERVED_TAG_PREFIX "dt."

/*
 * The user's tags of a row. The worker keeps the execution's ExecutionStartedEvent in the row's
 * tags column (runtime/worker/partition/commit.c); its tags map is what the instance was started
 * with. A blob that does not decode gives no tags. false only when out of memory.
 */
static bool tags_of(dt__arena *a, const dt__blob *blob, Dtpb__InstanceStatus *s)
{
    Dtpb__ExecutionStartedEvent *es =
        blob->data == NULL ? NULL
                           : dtpb__execution_started_event__unpack(dt__arena_pb_allocator(a),
                                                                   blob->len, blob->data);
    if (es == NULL || es->n_tags == 0) {
        return true;
    }
    Dtpb__InstanceStatus__TagsEntry **t = dt__arena_calloc(a, es->n_tags, sizeof(*t));
    if (t == NULL) {
        return false;
    }
    for (size_t i = 0; i < es->n_tags; i++) {
        const char *k = es->tags[i]->key;
        if (k == NULL || strncmp(k, RESERVED_TAG_PREFIX, strlen(RESERVED_TAG_PREFIX)) == 0) {
            continue;
        }
        Dtpb__InstanceStatus__TagsEntry *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return false;
        }
        dtpb__instance_status__tags_entry__init(e);
        e->key = es->tags[i]->key;
        e->value = es->tags[i]->value;
        t[s->n_tags++] = e;
    }
    s->tags = t;
    return true;
}

/* The InstanceStatus of a stored row (all memory in the arena; row memory is shared). */
static Dtpb__InstanceStatus *status_of(dt__arena *a, const dt__instance_row *row)
{
    Dtpb__InstanceStatus *s = dt__arena_alloc(a, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    bool ok = true;
    dtpb__instance_status__init(s);
    s->instance_id = (char *)row->instance_id;
    s->name = (char *)row->name;
    s->execution_id = (char *)row->execution_id;
    s->runtime_status = (Dtpb__OrchestrationStatus)row->runtime_status;
    s->created_at = dt__ts_from_ms(a, row->created_ms);
    s->last_updated_at = dt__ts_from_ms(a, row->last_updated_ms);
    s->input = payload_of(a, row->input.data, row->input.len, &ok);
    s->output = payload_of(a, row->output.data, row->output.len, &ok);
    s->custom_status = payload_of(a, row->custom_status.data, row->custom_status.len, &ok);
    if (row->version != NULL) {
        s->version = payload_of(a, (const uint8_t *)row->version, strlen(row->version), &ok);
    }
    s->parent_instance_id =
        (char *)(row->parent_instance_id != NULL ? row->parent_instance_id : "");
    if (row->failure_details.data != NULL) {
        /* A blob that does not decode is left out rather than failing the whole listing. */
        s->failure_details = dtpb__task_failure_details__unpack(
            dt__arena_pb_allocator(a), row->failure_details.len, row->failure_details.data);
    }
    ok = tags_of(a, &row->tags, s) && ok;
    return ok && s->created_at != NULL && s->last_updated_at != NULL ? s : NULL;
}

/* ---- list ---- */

static dt_status filter_of(dt__query_ctx *x, const Dtpb__InstanceFilter *f,
                           dt__instance_filter *out)
{
    memset(out, 0, sizeof(*out));
    if (f == NULL) {
        return DT_OK;
    }
    for (size_t i = 0; i < f->n_statuses; i++) {
        int32_t s = (int32_t)f->statuses[i];
        if (s < 0 || s > (int32_t)STATUS_MAX) {
            return fail(x, DT_EINVAL, "unknown status %d in filter", (int)s);
        }
        out->status_mask |= 1u << s;
    }
    out->name = f->name != NULL && f->name[0] != '\0' ? f->name : NULL;
    out->instance_id_prefix = f->instance_id_prefix;
    out->created_from_ms = dt__ts_to_ms(f->created_from);
    out->created_to_ms = dt__ts_to_ms(f->created_to);
    if (out->created_from_ms < 0 || out->created_to_ms < 0) {
        return fail(x, DT_EINVAL, "created range before 1970 in filter");
    }
    return DT_OK;
}

/* Adds rows to the reply while they fit the budget; cuts the page (with a token) where the next
 * one would not. */
static dt_status list_fill(dt__query_ctx *x, const dt__instance_page *page, Dtpb__ListResponse *lr)
{
    size_t used = 0;
    for (size_t i = 0; i < page->n; i++) {
        Dtpb__InstanceStatus *s = status_of(x->a, &page->rows[i]);
        if (s == NULL) {
            return fail(x, DT_ENOMEM, "list: out of memory");
        }
        size_t sz = protobuf_c_message_get_packed_size(&s->base) + ELEM_OVERHEAD;
        if (used + sz > x->budget) {
            if (i == 0) {
                return fail(x, DT_ETOOLARGE,
                            "the status of '%s' (%zu bytes) is larger than a reply may be; "
                            "list without payloads",
                            page->rows[i].instance_id, sz);
            }
            lr->next_page_token = (char *)page->rows[i - 1].instance_id;
            return DT_OK;
        }
        used += sz;
        lr->instances[lr->n_instances++] = s;
    }
    lr->next_page_token = (char *)(page->next_token != NULL ? page->next_token : "");
    return DT_OK;
}

dt_status dt__query_list(dt__query_ctx *x, const Dtpb__ListRequest *req)
{
    dt__instance_filter f;
    dt_status st = filter_of(x, req->filter, &f);
    if (st != DT_OK) {
        return st;
    }
    size_t limit = req->limit == 0 ? DT__QUERY_PAGE_DEFAULT : req->limit;
    limit = limit > DT__STORE_MAX_PAGE ? DT__STORE_MAX_PAGE : limit;
    const char *after =
        req->page_token != NULL && req->page_token[0] != '\0' ? req->page_token : NULL;
    dt__instance_page page;
    st = dt__store_query(x->q->store, &f, after, limit, req->with_payloads, x->a, &page);
    if (st != DT_OK) {
        return fail(x, st, "list: %s", dt__store_errmsg(x->q->store));
    }
    Dtpb__ListResponse *lr = dt__arena_alloc(x->a, sizeof(*lr));
    Dtpb__InstanceStatus **arr = dt__arena_calloc(x->a, page.n + 1, sizeof(*arr));
    if (lr == NULL || arr == NULL) {
        return fail(x, DT_ENOMEM, "list: out of memory");
    }
    dtpb__list_response__init(lr);
    lr->instances = arr;
    x->r->result_case = DTPB__QUERY_RESPONSE__RESULT_LIST;
    x->r->list = lr;
    return list_fill(x, &page, lr);
}

/* ---- history ---- */

/*
 * The page of a paged request: from req->start, as many events as fit the byte budget (and
 * max_events); at least one, or DT_ETOOLARGE for a single event over the budget. *from and *n
 * select the blobs.
 */
static dt_status history_page(dt__query_ctx *x, const char *id, const Dtpb__HistoryRequest *req,
                              const dt__blob *blobs, size_t *from, size_t *n)
{
    size_t total = *n, start = req->start < total ? req->start : total, bytes = 0, k = 0;
    while (start + k < total && (req->max_events == 0 || k < req->max_events)) {
        size_t more = blobs[start + k].len + ELEM_OVERHEAD;
        if (bytes + more > x->budget) {
            break;
        }
        bytes += more;
        k++;
    }
    if (k == 0 && start < total) {
        return fail(x, DT_ETOOLARGE,
                    "event %zu of the history of '%s' (%zu bytes) is larger than a reply may be "
                    "(%zu bytes)",
                    start, id, blobs[start].len, x->budget);
    }
    *from = start;
    *n = k;
    return DT_OK;
}

/* The reply's history: each stored blob decoded (they must fit the byte budget together). */
static dt_status history_events(dt__query_ctx *x, const char *id, const dt__blob *blobs, size_t n,
                                Dtpb__HistoryResponse *hr)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += blobs[i].len + ELEM_OVERHEAD;
    }
    if (bytes > x->budget) {
        return fail(x, DT_ETOOLARGE,
                    "the history of '%s' (%zu events, %zu bytes) is larger than a reply may be "
                    "(%zu bytes)",
                    id, n, bytes, x->budget);
    }
    Dtpb__HistoryEvent **evs = dt__arena_calloc(x->a, n + 1, sizeof(*evs));
    if (evs == NULL) {
        return fail(x, DT_ENOMEM, "history: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        evs[i] =
            dtpb__history_event__unpack(dt__arena_pb_allocator(x->a), blobs[i].len, blobs[i].data);
        if (evs[i] == NULL) {
            return fail(x, DT_ECORRUPT, "event %zu of the history of '%s' is malformed", i, id);
        }
    }
    hr->n_events = n;
    hr->events = evs;
    return DT_OK;
}

dt_status dt__query_history(dt__query_ctx *x, const Dtpb__HistoryRequest *req)
{
    const char *id = req->instance_id;
    if (!dt__instance_id_valid(id)) {
        return fail(x, DT_EINVAL, "history: invalid instance ID");
    }
    dt__instance_row row;
    dt__blob *blobs = NULL;
    size_t n = 0;
    dt_status st = dt__store_get_instance(x->q->store, id, x->a, &row);
    if (st == DT_OK) {
        st = dt__store_load_history(x->q->store, id, x->a, &blobs, &n);
    }
    if (st == DT_ENOTFOUND) {
        return fail(x, st, "no instance '%s'", id);
    }
    if (st != DT_OK) {
        return fail(x, st, "history of '%s': %s", id, dt__store_errmsg(x->q->store));
    }
    Dtpb__HistoryResponse *hr = dt__arena_alloc(x->a, sizeof(*hr));
    if (hr == NULL) {
        return fail(x, DT_ENOMEM, "history: out of memory");
    }
    dtpb__history_response__init(hr);
    size_t from = 0;
    if (req->paged) {
        size_t total = n;
        st = history_page(x, id, req, blobs, &from, &n);
        if (st != DT_OK) {
            return st;
        }
        hr->total = (uint32_t)total;
        hr->next = (uint32_t)(from + n);
        hr->execution_id = (char *)row.execution_id;
    }
    st = history_events(x, id, blobs + from, n, hr);
    if (st == DT_OK) {
        x->r->result_case = DTPB__QUERY_RESPONSE__RESULT_HISTORY;
        x->r->history = hr;
    }
    return st;
}

/* ---- purge ---- */

/* Deletes one stored instance and its status record if it is still finished: the store checks
 * the status in the DELETE itself, so an instance restarted (reuse policy) since the caller read
 * it survives (DT_ESTATE). DT_ENOTFOUND and DT_ESTATE are returned without a message. */
static dt_status purge_row(dt__query_ctx *x, const char *id, uint32_t mask)
{
    dt_status record = DT_OK;
    dt_status st = dt__purge_instance(x->q->journal, x->q->store, x->q->epoch, x->q->status_kv, id,
                                      mask, &record);
    if (st == DT_ENOTFOUND || st == DT_ESTATE) {
        return st;
    }
    if (st == DT_EBUSY) {
        /* Not a refusal of the purge itself. */
        return fail(x, DT_EBUSY, "purge '%s': the partition is catching up with its log; try again",
                    id);
    }
    if (st != DT_OK) {
        return fail(x, st, "purge '%s': %s", id, dt__store_errmsg(x->q->store));
    }
    if (record != DT_OK) {
        return fail(x, record,
                    "purged '%s' from the store, but deleting its status record failed (%s); "
                    "purge it again to finish",
                    id, dt_broker_kv_errmsg(x->q->status_kv));
    }
    return DT_OK;
}

/* An entity is purged only while it is empty (dtctl entity clean): no state, no lock, nothing
 * queued or scheduled, checked inside the DELETE (an operation that lands meanwhile keeps it). */
static dt_status purge_entity(dt__query_ctx *x, const char *id, Dtpb__PurgeResponse *pr)
{
    uint32_t mask =
        (1u << DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING) | DT__STORE_PURGE_IF_EMPTY;
    dt_status st = purge_row(x, id, mask);
    if (st == DT_ENOTFOUND || st == DT_ESTATE) {
        return fail(x, st, st == DT_ENOTFOUND ? "no entity '%s'" : "entity '%s' is not empty", id);
    }
    pr->deleted = st == DT_OK ? 1 : 0;
    return st;
}

static dt_status purge_one(dt__query_ctx *x, const char *id, Dtpb__PurgeResponse *pr)
{
    if (!dt__instance_id_valid(id)) {
        return fail(x, DT_EINVAL, "purge: invalid instance ID");
    }
    if (id[0] == '@') {
        return purge_entity(x, id, pr);
    }
    dt__instance_row row;
    dt_status st = dt__store_get_instance(x->q->store, id, x->a, &row);
    if (st == DT_ENOTFOUND) {
        return fail(x, st, "no instance '%s'", id);
    }
    if (st != DT_OK) {
        return fail(x, st, "purge '%s': %s", id, dt__store_errmsg(x->q->store));
    }
    if (!dt__status_finished(row.runtime_status)) {
        return fail(x, DT_ESTATE,
                    "instance '%s' is %s: only completed, failed, canceled or terminated "
                    "instances can be purged",
                    id, status_name(row.runtime_status));
    }
    st = purge_row(x, id, FINISHED_MASK);
    if (st == DT_ENOTFOUND) {
        return fail(x, st, "no instance '%s'", id);
    }
    if (st == DT_ESTATE) {
        return fail(x, st, "instance '%s' was restarted while it was being purged; not purged", id);
    }
    pr->deleted = st == DT_OK ? 1 : 0;
    return st;
}

static dt_status purge_filter(dt__query_ctx *x, const Dtpb__InstanceFilter *pf,
                              Dtpb__PurgeResponse *pr)
{
    dt__instance_filter f;
    dt_status st = filter_of(x, pf, &f);
    if (st != DT_OK) {
        return st;
    }
    bool any_status = f.status_mask == 0;
    f.status_mask = any_status ? FINISHED_MASK : (f.status_mask & FINISHED_MASK);
    if (f.status_mask == 0) {
        return DT_OK; /* only statuses that cannot be purged were asked for */
    }
    dt__instance_page page;
    st = dt__store_query(x->q->store, &f, NULL, DT__QUERY_PURGE_BATCH, false, x->a, &page);
    if (st != DT_OK) {
        return fail(x, st, "purge: %s", dt__store_errmsg(x->q->store));
    }
    for (size_t i = 0; i < page.n; i++) {
        st = purge_row(x, page.rows[i].instance_id, FINISHED_MASK);
        if (st == DT_OK) {
            pr->deleted++;
        } else if (st != DT_ENOTFOUND && st != DT_ESTATE) { /* gone or restarted meanwhile */
            return st;
        }
    }
    return DT_OK;
}

dt_status dt__query_purge(dt__query_ctx *x, const Dtpb__PurgeRequest *req)
{
    Dtpb__PurgeResponse *pr = dt__arena_alloc(x->a, sizeof(*pr));
    if (pr == NULL) {
        return fail(x, DT_ENOMEM, "purge: out of memory");
    }
    dtpb__purge_response__init(pr);
    x->r->result_case = DTPB__QUERY_RESPONSE__RESULT_PURGE;
    x->r->purge = pr;
    if (req->instance_id != NULL && req->instance_id[0] != '\0') {
        return purge_one(x, req->instance_id, pr);
    }
    return purge_filter(x, req->filter, pr);
}
