/*
 * Queries answered by the partition owners over core NATS request/reply on dt.<hub>.query.<p>:
 * list (scattered over the partitions), history (the instance's partition) and purge (one
 * instance, or by filter over every partition).
 *
 * Partitions are asked one after another: a request costs well under a millisecond on a local
 * server, and walking them in order is what lets one page token say where to resume.
 *
 * The page token of dt_client_list is "<partition>:<hex of the partition's own token>", e.g.
 * "2:6f726465722d3132" = partition 2, after instance "order-12" (an empty hex part: from the
 * start of that partition). It is opaque to callers; docs/protocol.md documents it for other
 * clients.
 */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rounds of purge requests one partition may take (each deletes up to the worker's batch). */
#define PURGE_ROUNDS_MAX 100000

/* Sends `req` to partition p and decodes the reply into `a`; maps no-responders to DT_EBUSY and a
 * reply with a failure status to that status (error text prefixed with the partition). */
static dt_status ask(dt_client *c, dt__arena *a, uint32_t p, const Dtpb__QueryRequest *req,
                     Dtpb__QueryResponse **out)
{
    char subject[DT_BROKER_NAME_BUF];
    dt_status st =
        dt__client_partition_subject(c, DT_BROKER_SUBJ_QUERY, p, subject, sizeof(subject));
    size_t len = 0;
    uint8_t *data = st == DT_OK ? dt__pack(a, &req->base, &len) : NULL;
    if (st == DT_OK && data == NULL) {
        st = dt__client_fail(c, DT_ENOMEM, "query: out of memory");
    }
    if (st != DT_OK) {
        return st;
    }
    dt_broker_outmsg m = {.subject = subject, .data = data, .len = len};
    dt_broker_msg *reply = NULL;
    st = dt_broker_request(c->b, &m, c->request_timeout_ms, &reply);
    if (st == DT_ENOTFOUND) {
        return dt__client_fail(c, DT_EBUSY, "partition %u has no running worker", p);
    }
    if (st == DT_ETIMEOUT) {
        return dt__client_fail(c, st, "partition %u did not answer within %lld ms", p,
                               (long long)c->request_timeout_ms);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "query partition %u: %s", p, DT__CLIENT_BERR(c));
    }
    Dtpb__QueryResponse *r = (Dtpb__QueryResponse *)dt__pb_unpack(
        a, &dtpb__query_response__descriptor, dt_broker_msg_len(reply), dt_broker_msg_data(reply));
    dt_broker_msg_destroy(reply);
    if (r == NULL) {
        return dt__client_fail(c, DT_EDECODE, "partition %u sent a malformed reply", p);
    }
    if (r->status != DT_OK) {
        return dt__client_fail(c, (dt_status)r->status, "partition %u: %s", p,
                               r->error != NULL && r->error[0] != '\0'
                                   ? r->error
                                   : dt_status_str((dt_status)r->status));
    }
    *out = r;
    return DT_OK;
}

dt_status dt__client_ask(dt_client *c, dt__arena *a, uint32_t p, const Dtpb__QueryRequest *req,
                         Dtpb__QueryResponse **out)
{
    return ask(c, a, p, req, out);
}

static dt_status expect_result(dt_client *c, uint32_t p, const Dtpb__QueryResponse *r,
                               Dtpb__QueryResponse__ResultCase want)
{
    return r->result_case == want
               ? DT_OK
               : dt__client_fail(c, DT_EDECODE, "partition %u answered with the wrong result", p);
}

/* ---- filters and tokens ---- */

static dt_status filter_pb(dt_client *c, dt__arena *a, const dt_client_filter *user,
                           Dtpb__InstanceFilter **out)
{
    dt_client_filter copy; /* the caller's struct as this release lays it out */
    const dt_client_filter *f = NULL;
    if (user != NULL) {
        dt_status rs = dt__options_read(&copy, sizeof(copy), user, sizeof(copy));
        if (rs != DT_OK) {
            return dt__client_fail(c, rs, "filter: struct_size %s",
                                   rs == DT_EVERSION ? "of a newer release with fields set"
                                                     : "invalid");
        }
        f = &copy;
    }
    Dtpb__InstanceFilter *pf = dt__arena_alloc(a, sizeof(*pf));
    Dtpb__Timestamp *from = dt__arena_alloc(a, sizeof(*from));
    Dtpb__Timestamp *to = dt__arena_alloc(a, sizeof(*to));
    size_t ns = f != NULL ? f->nstatuses : 0;
    Dtpb__OrchestrationStatus *sts = dt__arena_calloc(a, ns + 1, sizeof(*sts));
    if (pf == NULL || from == NULL || to == NULL || sts == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "query: out of memory");
    }
    dtpb__instance_filter__init(pf);
    *out = pf;
    if (f == NULL) {
        return DT_OK;
    }
    if ((ns > 0 && f->statuses == NULL) || f->created_from_ms < 0 || f->created_to_ms < 0) {
        return dt__client_fail(c, DT_EINVAL, "filter: bad statuses or created range");
    }
    for (size_t i = 0; i < ns; i++) {
        if ((unsigned)f->statuses[i] > DT_CLIENT_SUSPENDED) {
            return dt__client_fail(c, DT_EINVAL, "filter: unknown status %d", (int)f->statuses[i]);
        }
        sts[i] = (Dtpb__OrchestrationStatus)f->statuses[i];
    }
    pf->n_statuses = ns;
    pf->statuses = sts;
    pf->name = (char *)(f->name != NULL ? f->name : "");
    pf->instance_id_prefix = (char *)(f->instance_id_prefix != NULL ? f->instance_id_prefix : "");
    if (f->created_from_ms > 0) {
        dt__client_ts_set(from, f->created_from_ms);
        pf->created_from = from;
    }
    if (f->created_to_ms > 0) {
        dt__client_ts_set(to, f->created_to_ms);
        pf->created_to = to;
    }
    return DT_OK;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return -1;
}

/* Parses a page token into partition and the partition's token (arena string, "" = start). */
static dt_status token_decode(dt_client *c, dt__arena *a, const char *tok, uint32_t *out_p,
                              char **out_t)
{
    char *end = NULL;
    unsigned long p = strtoul(tok, &end, 10);
    size_t hexlen = end != tok && *end == ':' ? strlen(end + 1) : 1;
    char *t = hexlen % 2 == 0 ? dt__arena_alloc(a, hexlen / 2 + 1) : NULL;
    bool ok = t != NULL && p < c->cfg.partitions && hexlen / 2 <= DT_INSTANCE_ID_MAX;
    for (size_t i = 0; ok && i < hexlen / 2; i++) {
        int hi = hexval(end[1 + 2 * i]), lo = hexval(end[2 + 2 * i]);
        ok = hi >= 0 && lo >= 0 && (hi | lo) != 0;
        t[i] = (char)(hi * 16 + lo);
    }
    if (!ok) {
        return dt__client_fail(c, DT_EINVAL, "invalid page token '%.64s'", tok);
    }
    t[hexlen / 2] = '\0';
    *out_p = (uint32_t)p;
    *out_t = t;
    return DT_OK;
}

static const char *token_encode(dt__arena *a, uint32_t p, const char *t)
{
    size_t n = strlen(t);
    char *buf = dt__arena_alloc(a, 2 * n + 16);
    if (buf == NULL) {
        return NULL;
    }
    int o = snprintf(buf, 16, "%u:", p);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        buf[o++] = hex[(unsigned char)t[i] >> 4];
        buf[o++] = hex[(unsigned char)t[i] & 15];
    }
    buf[o] = '\0';
    return buf;
}

/* ---- list ---- */

typedef struct list_state {
    dt_client_page *page;
    size_t cap;
} list_state;

static dt_status list_append(dt_client *c, dt__arena *a, list_state *ls,
                             const Dtpb__ListResponse *r, bool with_payloads)
{
    for (size_t i = 0; i < r->n_instances && ls->page->n < ls->cap; i++) {
        dt_status st = dt__client_instance_from_pb(a, r->instances[i], with_payloads,
                                                   &ls->page->instances[ls->page->n]);
        if (st != DT_OK) {
            return dt__client_fail(c, st, "list: out of memory");
        }
        ls->page->n++;
    }
    return DT_OK;
}

static dt_status list_walk(dt_client *c, dt__arena *a, Dtpb__ListRequest *lr, uint32_t p, char *t,
                           list_state *ls, bool with_payloads)
{
    Dtpb__QueryRequest req;
    dtpb__query_request__init(&req);
    req.kind_case = DTPB__QUERY_REQUEST__KIND_LIST;
    req.list = lr;
    while (p < c->cfg.partitions && ls->page->n < ls->cap) {
        lr->page_token = t;
        lr->limit = (uint32_t)(ls->cap - ls->page->n);
        Dtpb__QueryResponse *r = NULL;
        dt_status st = ask(c, a, p, &req, &r);
        if (st == DT_OK) {
            st = expect_result(c, p, r, DTPB__QUERY_RESPONSE__RESULT_LIST);
        }
        if (st == DT_OK) {
            st = list_append(c, a, ls, r->list, with_payloads);
        }
        if (st != DT_OK) {
            return st;
        }
        const char *next = r->list->next_page_token;
        if (next == NULL || next[0] == '\0') {
            p++;
            t = "";
        } else if (r->list->n_instances == 0) {
            return dt__client_fail(c, DT_EDECODE, "partition %u sent an empty page with a token",
                                   p);
        } else {
            t = (char *)next;
        }
    }
    if (p < c->cfg.partitions) {
        ls->page->next_page_token = token_encode(a, p, t);
        if (ls->page->next_page_token == NULL) {
            return dt__client_fail(c, DT_ENOMEM, "list: out of memory");
        }
    }
    return DT_OK;
}

dt_status dt_client_list(dt_client *c, const dt_client_filter *filter, const char *page_token,
                         size_t limit, bool with_payloads, dt_client_page **out)
{
    if (limit > DT_CLIENT_PAGE_MAX) {
        return dt__client_fail(c, DT_EINVAL, "list: limit %zu exceeds %d", limit,
                               DT_CLIENT_PAGE_MAX);
    }
    dt_status st = dt__client_ensure_hub(c);
    dt__arena *a = st == DT_OK ? dt__arena_create(0) : NULL;
    if (st != DT_OK) {
        return st;
    }
    list_state ls = {.page = a != NULL ? dt__client_page_new(a) : NULL,
                     .cap = limit > 0 ? limit : DT_CLIENT_PAGE_DEFAULT};
    Dtpb__ListRequest lr;
    dtpb__list_request__init(&lr);
    lr.with_payloads = with_payloads;
    uint32_t p = 0;
    char *t = "";
    if (ls.page == NULL ||
        (ls.page->instances = dt__arena_calloc(a, ls.cap, sizeof(dt_client_instance))) == NULL) {
        st = dt__client_fail(c, DT_ENOMEM, "list: out of memory");
    }
    if (st == DT_OK) {
        st = filter_pb(c, a, filter, &lr.filter);
    }
    if (st == DT_OK && page_token != NULL && page_token[0] != '\0') {
        st = token_decode(c, a, page_token, &p, &t);
    }
    if (st == DT_OK) {
        st = list_walk(c, a, &lr, p, t, &ls, with_payloads);
    }
    if (st != DT_OK) {
        dt__arena_destroy(a);
        return st;
    }
    if (ls.page->n == 0) {
        ls.page->instances = NULL;
    }
    *out = ls.page;
    return DT_OK;
}

/* ---- history ---- */

/* Appends the reply's events to h (arena a). */
static dt_status history_fill(dt_client *c, dt__arena *a, const Dtpb__HistoryResponse *hr,
                              dt_client_history *h)
{
    if (hr->n_events == 0) {
        return DT_OK;
    }
    dt_client_event *evs = dt__arena_calloc(a, h->n + hr->n_events, sizeof(*evs));
    if (evs == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "history: out of memory");
    }
    if (h->n > 0) {
        memcpy(evs, h->events, h->n * sizeof(*evs));
    }
    for (size_t i = 0; i < hr->n_events; i++) {
        size_t len = 0;
        uint8_t *raw = dt__pack(a, &hr->events[i]->base, &len);
        if (raw == NULL ||
            dt__client_event_from_pb(a, hr->events[i], raw, len, &evs[h->n + i]) != DT_OK) {
            return dt__client_fail(c, DT_ENOMEM, "history: out of memory");
        }
    }
    h->events = evs;
    h->n += hr->n_events;
    return DT_OK;
}

/* One paged history request; the reply lives in `a`. */
static dt_status history_ask(dt_client *c, dt__arena *a, const char *instance_id, size_t start,
                             size_t max_events, Dtpb__HistoryResponse **out)
{
    if (start > UINT32_MAX || max_events > UINT32_MAX) {
        return dt__client_fail(c, DT_EINVAL, "history: start and max_events must fit 32 bits");
    }
    uint32_t p = dt__partition_of(instance_id, c->cfg.partitions);
    Dtpb__HistoryRequest hreq;
    dtpb__history_request__init(&hreq);
    hreq.instance_id = (char *)instance_id;
    hreq.start = (uint32_t)start;
    hreq.max_events = (uint32_t)max_events;
    hreq.paged = true;
    Dtpb__QueryRequest req;
    dtpb__query_request__init(&req);
    req.kind_case = DTPB__QUERY_REQUEST__KIND_HISTORY;
    req.history = &hreq;
    Dtpb__QueryResponse *r = NULL;
    dt_status st = ask(c, a, p, &req, &r);
    if (st == DT_OK) {
        st = expect_result(c, p, r, DTPB__QUERY_RESPONSE__RESULT_HISTORY);
    }
    if (st == DT_OK) {
        *out = r->history;
    }
    return st;
}

/* A paged reply's position; a worker of an earlier release sends the whole history unpaged
 * (total 0): that is the last page. */
static void history_pos(const Dtpb__HistoryResponse *hr, size_t start, size_t *next, size_t *total)
{
    if (hr->total == 0 && hr->next == 0) {
        *next = *total = start + hr->n_events;
        return;
    }
    *next = hr->next;
    *total = hr->total;
}

static dt_status history_begin(dt_client *c, const char *instance_id, dt__arena **a,
                               dt_client_history **h)
{
    dt_status st = dt__client_check_id(c, "instance ID", instance_id);
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st != DT_OK) {
        return st;
    }
    *a = dt__arena_create(0);
    *h = *a != NULL ? dt__client_history_new(*a) : NULL;
    if (*h == NULL) {
        dt__arena_destroy(*a);
        return dt__client_fail(c, DT_ENOMEM, "history: out of memory");
    }
    return DT_OK;
}

dt_status dt_client_get_history_page(dt_client *c, const char *instance_id, size_t start,
                                     size_t max_events, dt_client_history **out, size_t *out_next,
                                     size_t *out_total)
{
    dt__arena *a = NULL;
    dt_client_history *h = NULL;
    dt_status st = history_begin(c, instance_id, &a, &h);
    if (st != DT_OK) {
        return st;
    }
    Dtpb__HistoryResponse *hr = NULL;
    size_t next = 0, total = 0;
    st = history_ask(c, a, instance_id, start, max_events, &hr);
    st = st == DT_OK ? history_fill(c, a, hr, h) : st;
    if (st != DT_OK) {
        dt__arena_destroy(a);
        return st;
    }
    history_pos(hr, start, &next, &total);
    h->execution_id =
        hr->execution_id != NULL && hr->execution_id[0] != '\0' ? hr->execution_id : NULL;
    if (out_next != NULL) {
        *out_next = next;
    }
    if (out_total != NULL) {
        *out_total = total;
    }
    *out = h;
    return DT_OK;
}

#define HISTORY_RESTARTS 3

dt_status dt_client_get_history(dt_client *c, const char *instance_id, dt_client_history **out)
{
    dt__arena *a = NULL;
    dt_client_history *h = NULL;
    dt_status st = history_begin(c, instance_id, &a, &h);
    if (st != DT_OK) {
        return st;
    }
    size_t next = 0, total = 1;
    const char *execution = NULL;
    int restarts = 0;
    while (st == DT_OK && next < total) {
        Dtpb__HistoryResponse *hr = NULL;
        size_t start = next;
        st = history_ask(c, a, instance_id, start, 0, &hr);
        if (st != DT_OK) {
            break;
        }
        const char *ex =
            hr->execution_id != NULL && hr->execution_id[0] != '\0' ? hr->execution_id : NULL;
        if (start > 0 && ex != NULL && (execution == NULL || strcmp(ex, execution) != 0)) {
            /* Another execution than the pages before (a continue-as-new): start over. */
            if (++restarts > HISTORY_RESTARTS) {
                st = dt__client_fail(c, DT_EBUSY,
                                     "history of '%s': its execution changed %d times while it "
                                     "was read; try again",
                                     instance_id, restarts);
                break;
            }
            h->n = 0;
            h->events = NULL;
            next = 0;
            total = 1;
            execution = NULL;
            continue;
        }
        execution = ex;
        st = history_fill(c, a, hr, h);
        history_pos(hr, start, &next, &total);
        if (st == DT_OK && next <= start && next < total) {
            st = dt__client_fail(c, DT_EDECODE, "history of '%s': a page made no progress",
                                 instance_id);
        }
    }
    if (st != DT_OK) {
        dt__arena_destroy(a);
        return st;
    }
    h->execution_id = execution;
    *out = h;
    return DT_OK;
}

/* ---- payloads left out of a status record ---- */

static dt_status payload_ask(dt_client *c, dt__arena *a, const Dtpb__InstanceStatus *s,
                             Dtpb__PayloadField field, Dtpb__PayloadResponse **out)
{
    uint32_t p = dt__partition_of(s->instance_id, c->cfg.partitions);
    Dtpb__PayloadRequest preq;
    dtpb__payload_request__init(&preq);
    preq.instance_id = s->instance_id;
    preq.execution_id = s->execution_id; /* the values of the execution the record names */
    preq.field = field;
    Dtpb__QueryRequest req;
    dtpb__query_request__init(&req);
    req.kind_case = DTPB__QUERY_REQUEST__KIND_PAYLOAD;
    req.payload = &preq;
    Dtpb__QueryResponse *r = NULL;
    dt_status st = ask(c, a, p, &req, &r);
    if (st == DT_OK) {
        st = expect_result(c, p, r, DTPB__QUERY_RESPONSE__RESULT_PAYLOAD);
    }
    if (st == DT_OK) {
        *out = r->payload;
    }
    return st;
}

dt_status dt__client_status_complete(dt_client *c, dt__arena *a, Dtpb__InstanceStatus *s)
{
    Dtpb__PayloadResponse *r = NULL;
    dt_status st = payload_ask(c, a, s, DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_INPUT, &r);
    if (st == DT_OK) {
        s->input = r->value;
        st = payload_ask(c, a, s, DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_OUTPUT, &r);
    }
    if (st == DT_OK) {
        s->output = r->value;
        st = payload_ask(c, a, s, DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_CUSTOM_STATUS, &r);
    }
    if (st == DT_OK) {
        s->custom_status = r->value;
        st = payload_ask(c, a, s, DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_FAILURE, &r);
    }
    if (st == DT_OK) {
        s->failure_details = r->failure;
        s->payloads_omitted = false;
    }
    return st;
}

/* ---- purge ---- */

static dt_status purge_ask(dt_client *c, uint32_t p, Dtpb__PurgeRequest *pr, uint32_t *out_deleted)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "purge: out of memory");
    }
    Dtpb__QueryRequest req;
    dtpb__query_request__init(&req);
    req.kind_case = DTPB__QUERY_REQUEST__KIND_PURGE;
    req.purge = pr;
    Dtpb__QueryResponse *r = NULL;
    dt_status st = ask(c, a, p, &req, &r);
    if (st == DT_OK) {
        st = expect_result(c, p, r, DTPB__QUERY_RESPONSE__RESULT_PURGE);
    }
    if (st == DT_OK) {
        *out_deleted = r->purge->deleted;
    }
    dt__arena_destroy(a);
    return st;
}

/* A finished status record without a stored instance is what a purge interrupted between the
 * store and the status bucket leaves: deleting the record completes it. */
static dt_status purge_orphan_record(dt_client *c, const char *id)
{
    dt__arena *a = dt__arena_create(0);
    Dtpb__InstanceStatus *cur = NULL;
    char key[DT__CLIENT_KEY_BUF];
    dt_status st = a == NULL ? DT_ENOMEM : dt__client_status_read(c, a, id, &cur, NULL);
    bool orphan = st == DT_OK && dt__client_status_finished(cur->runtime_status);
    dt__arena_destroy(a);
    if (!orphan || dt__status_key(id, key, sizeof(key)) != DT_OK) {
        return dt__client_fail(c, DT_ENOTFOUND, "no instance '%s'", id);
    }
    st = dt__client_kv_write(c, key, NULL, 0, 0, true, NULL);
    return st == DT_OK
               ? DT_OK
               : dt__client_fail(c, st, "delete status of '%s': %s", id, DT__CLIENT_BERR(c));
}

dt_status dt_client_purge(dt_client *c, const char *instance_id)
{
    dt_status st = dt__client_check_id(c, "instance ID", instance_id);
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st != DT_OK) {
        return st;
    }
    Dtpb__PurgeRequest pr;
    dtpb__purge_request__init(&pr);
    pr.instance_id = (char *)instance_id;
    uint32_t deleted = 0;
    st = purge_ask(c, dt__partition_of(instance_id, c->cfg.partitions), &pr, &deleted);
    if (st == DT_ENOTFOUND) {
        return purge_orphan_record(c, instance_id);
    }
    return st;
}

dt_status dt_client_purge_where(dt_client *c, const dt_client_filter *filter, uint64_t *out_deleted)
{
    dt_status st = dt__client_ensure_hub(c);
    dt__arena *a = st == DT_OK ? dt__arena_create(0) : NULL;
    if (st != DT_OK) {
        return st;
    }
    Dtpb__PurgeRequest pr;
    dtpb__purge_request__init(&pr);
    st = a != NULL ? filter_pb(c, a, filter, &pr.filter)
                   : dt__client_fail(c, DT_ENOMEM, "purge: out of memory");
    uint64_t total = 0;
    for (uint32_t p = 0; st == DT_OK && p < c->cfg.partitions; p++) {
        uint32_t n = 1;
        for (int round = 0; st == DT_OK && n > 0 && round < PURGE_ROUNDS_MAX; round++) {
            st = purge_ask(c, p, &pr, &n);
            total += st == DT_OK ? n : 0;
        }
    }
    dt__arena_destroy(a);
    if (st != DT_OK) {
        char why[sizeof(c->err)];
        dt_client_errmsg_copy(c, why, sizeof(why));
        return dt__client_fail(c, st, "%s (%llu instances were purged before)", why,
                               (unsigned long long)total);
    }
    if (out_deleted != NULL) {
        *out_deleted = total;
    }
    return DT_OK;
}
