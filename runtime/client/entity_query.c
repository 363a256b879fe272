/*
 * Entity queries and storage cleaning from a client. Entities are rows of their partitions'
 * stores with IDs "@<name>@<key>", so a query is a list request with that prefix, asked of every
 * partition in order, filtered here by last-modified time and by state. The page token is
 * "<partition>:<last entity ID returned>" (opaque to callers).
 *
 * Cleaning walks the same listing: an entity locked by an orchestration whose status record says
 * it no longer runs (or that has none: purged) gets the unlock that orchestration would have sent
 * (same critical section, so a stale unlock changes nothing); an empty entity is purged by its
 * partition's owner, only while still empty (checked in the store's DELETE).
 */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_entity.pb-c.h"
#include "durabletask/entity.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000
#define CLEAN_PAGE   500

typedef struct page_holder {
    dt_entity_page pub; /* first: the public pointer is the holder's */
    dt__arena *a;
    size_t cap;
} page_holder;

void dt_entity_query_init(dt_entity_query *q)
{
    *q = (dt_entity_query){.size = sizeof(*q)};
}

void dt_entity_page_free(dt_entity_page *p)
{
    if (p != NULL) {
        dt__arena_destroy(((page_holder *)p)->a);
    }
}

/* The ID prefix a query lists: "@", or "@<name>@<key prefix>". */
static dt_status query_prefix(dt_client *c, const dt_entity_query *q, char *buf, size_t len)
{
    if (q == NULL || q->name == NULL) {
        snprintf(buf, len, "@");
        return DT_OK;
    }
    char id[DT_ENTITY_ID_MAX + 1];
    dt_status st = dt_entity_id(q->name, "k", id, sizeof(id)); /* checks and lowers the name */
    if (st != DT_OK) {
        return dt__client_fail(c, DT_EINVAL, "invalid entity name '%s'", q->name);
    }
    const char *kp = q->key_prefix != NULL ? q->key_prefix : "";
    int w = snprintf(buf, len, "%.*s%s", (int)(strlen(id) - 1), id, kp);
    return w > 0 && (size_t)w < len ? DT_OK : dt__client_fail(c, DT_EINVAL, "key prefix too long");
}

static dt_status parse_token(dt_client *c, const char *token, uint32_t *p, const char **after)
{
    *p = 0;
    *after = "";
    if (token == NULL || token[0] == '\0') {
        return DT_OK;
    }
    char *end = NULL;
    unsigned long v = strtoul(token, &end, 10);
    if (end == token || *end != ':' || v >= c->cfg.partitions) {
        return dt__client_fail(c, DT_EINVAL, "invalid entity page token '%s'", token);
    }
    *p = (uint32_t)v;
    *after = end + 1;
    return DT_OK;
}

/* One list page of partition p: entities with IDs starting with prefix, after `after`. */
static dt_status list_page(dt_client *c, dt__arena *a, uint32_t p, const char *prefix,
                           const char *after, uint32_t limit, Dtpb__ListResponse **out)
{
    Dtpb__InstanceFilter f = DTPB__INSTANCE_FILTER__INIT;
    Dtpb__ListRequest lr = DTPB__LIST_REQUEST__INIT;
    Dtpb__QueryRequest req = DTPB__QUERY_REQUEST__INIT;
    f.instance_id_prefix = (char *)prefix;
    lr.filter = &f;
    lr.limit = limit;
    lr.with_payloads = true; /* the state and the lock record */
    lr.page_token = (char *)after;
    req.kind_case = DTPB__QUERY_REQUEST__KIND_LIST;
    req.list = &lr;
    Dtpb__QueryResponse *r = NULL;
    dt_status st = dt__client_ask(c, a, p, &req, &r);
    if (st == DT_OK && r->result_case != DTPB__QUERY_RESPONSE__RESULT_LIST) {
        st = dt__client_fail(c, DT_EDECODE, "partition %u answered with the wrong result", p);
    }
    if (st == DT_OK) {
        *out = r->list;
    }
    return st;
}

static bool wanted(const dt_entity_query *q, const dt_entity_metadata *m)
{
    if (q == NULL) {
        return m->has_state;
    }
    if (!m->has_state && !q->include_empty) {
        return false;
    }
    return m->last_modified_ms >= q->last_modified_from_ms &&
           (q->last_modified_to_ms == 0 || m->last_modified_ms < q->last_modified_to_ms);
}

static dt_status add_entity(page_holder *h, const dt_entity_metadata *m)
{
    if (!dt__arena_grow(h->a, (void **)&h->pub.entities, &h->cap, h->pub.n, sizeof(*m))) {
        return DT_ENOMEM;
    }
    h->pub.entities[h->pub.n++] = *m;
    return DT_OK;
}

static dt_status query_in(dt_client *c, const dt_entity_query *q, page_holder *h)
{
    char prefix[DT_ENTITY_ID_MAX + 2];
    uint32_t p = 0;
    const char *after = NULL;
    dt_status st = dt__client_ensure_hub(c);
    if (st == DT_OK) {
        st = query_prefix(c, q, prefix, sizeof(prefix));
    }
    if (st == DT_OK) {
        st = parse_token(c, q != NULL ? q->page_token : NULL, &p, &after);
    }
    size_t want = q != NULL && q->page_size > 0 ? q->page_size : PAGE_DEFAULT;
    want = want > PAGE_MAX ? PAGE_MAX : want;
    for (; st == DT_OK && p < c->cfg.partitions && h->pub.n < want; p++, after = "") {
        for (;;) {
            Dtpb__ListResponse *lr = NULL;
            st = list_page(c, h->a, p, prefix, after, (uint32_t)want, &lr);
            for (size_t i = 0; st == DT_OK && i < lr->n_instances && h->pub.n < want; i++) {
                dt_entity_metadata m = {0};
                st = dt__client_entity_metadata(c, h->a, lr->instances[i],
                                                q != NULL && q->include_state, &m, NULL);
                if (st == DT_OK && wanted(q, &m)) {
                    st = add_entity(h, &m);
                }
                after = lr->instances[i]->instance_id;
            }
            if (st != DT_OK || h->pub.n >= want || lr->next_page_token == NULL ||
                lr->next_page_token[0] == '\0') {
                break;
            }
            after = lr->next_page_token;
        }
        if (st == DT_OK && h->pub.n >= want) {
            size_t n = strlen(after) + 16;
            char *tok = dt__arena_alloc(h->a, n);
            if (tok == NULL) {
                return DT_ENOMEM;
            }
            snprintf(tok, n, "%u:%s", p, after);
            h->pub.next_token = tok;
        }
    }
    return st;
}

dt_status dt_client_query_entities(dt_client *c, const dt_entity_query *q, dt_entity_page **out)
{
    if (out == NULL) {
        return DT_EINVAL;
    }
    dt__arena *a = dt__arena_create(0);
    page_holder *h = a != NULL ? dt__arena_calloc(a, 1, sizeof(*h)) : NULL;
    if (h == NULL) {
        dt__arena_destroy(a);
        return dt__client_fail(c, DT_ENOMEM, "query entities: out of memory");
    }
    h->a = a;
    dt_status st = query_in(c, q, h);
    if (st != DT_OK) {
        dt__arena_destroy(a);
        return st;
    }
    *out = &h->pub;
    return DT_OK;
}

/* ---- cleaning ---- */

/* Whether the orchestration `holder` no longer runs: its status record is gone or final. */
static dt_status holder_gone(dt_client *c, dt__arena *a, const char *holder, bool *gone)
{
    Dtpb__InstanceStatus *s = NULL;
    dt_status st = dt__client_status_read(c, a, holder, &s, NULL);
    if (st == DT_ENOTFOUND) {
        *gone = true;
        return DT_OK;
    }
    if (st == DT_OK) {
        *gone = dt__client_status_finished(s->runtime_status);
    }
    return st;
}

/* The unlock the holder would have sent (critical section cs) to entity id. */
static dt_status send_unlock(dt_client *c, dt__arena *a, const char *id, const char *holder,
                             const char *cs)
{
    char dedupe[DT_ENTITY_ID_MAX + DT_INSTANCE_ID_MAX * 2 + 64];
    int w = snprintf(dedupe, sizeof(dedupe), "%s/clean/%s", cs, id);
    if (w < 0 || (size_t)w >= sizeof(dedupe)) {
        return dt__client_fail(c, DT_ETOOLARGE, "clean: critical section ID too long");
    }
    Dtpb__Timestamp now;
    Dtpb__Payload parent = DTPB__PAYLOAD__INIT;
    Dtpb__EntityUnlockSentEvent u = DTPB__ENTITY_UNLOCK_SENT_EVENT__INIT;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    dt__client_ts_set(&now, dt__now_ms());
    parent.value.data = (uint8_t *)holder;
    parent.value.len = strlen(holder);
    u.critical_section_id = (char *)cs;
    u.parent_instance_id = &parent;
    ev.event_id = -1;
    ev.timestamp = &now;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT;
    ev.entity_unlock_sent = &u;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, id, "", &ev, dedupe);
    return dt__client_publish_orch(c, a, &m, NULL);
}

static dt_status purge_empty(dt_client *c, dt__arena *a, uint32_t p, const char *id, bool *done)
{
    Dtpb__PurgeRequest pr = DTPB__PURGE_REQUEST__INIT;
    Dtpb__QueryRequest req = DTPB__QUERY_REQUEST__INIT;
    pr.instance_id = (char *)id;
    req.kind_case = DTPB__QUERY_REQUEST__KIND_PURGE;
    req.purge = &pr;
    Dtpb__QueryResponse *r = NULL;
    dt_status st = dt__client_ask(c, a, p, &req, &r);
    *done = st == DT_OK;
    return st == DT_ESTATE || st == DT_ENOTFOUND ? DT_OK : st; /* used or gone meanwhile */
}

static dt_status clean_one(dt_client *c, dt__arena *a, uint32_t p, const Dtpb__InstanceStatus *s,
                           bool remove_empty, bool release, dt_entity_clean_result *res)
{
    dt_entity_metadata m = {0};
    const char *cs = NULL;
    dt_status st = dt__client_entity_metadata(c, a, s, false, &m, &cs);
    if (st == DT_OK && release && m.locked_by != NULL && cs != NULL) {
        bool gone = false;
        st = holder_gone(c, a, m.locked_by, &gone);
        if (st == DT_OK && gone) {
            st = send_unlock(c, a, m.instance_id, m.locked_by, cs);
            res->locks_released += st == DT_OK ? 1 : 0;
        }
    }
    if (st == DT_OK && remove_empty && !m.has_state && s->custom_status == NULL) {
        bool done = false;
        st = purge_empty(c, a, p, m.instance_id, &done);
        res->empty_removed += done ? 1 : 0;
    }
    return st;
}

static dt_status clean_partition(dt_client *c, uint32_t p, bool remove_empty, bool release,
                                 dt_entity_clean_result *res)
{
    const char *after = "";
    dt_status st = DT_OK;
    dt__arena *a = NULL;
    char *next = NULL;
    do {
        dt__arena_destroy(a);
        a = dt__arena_create(0);
        if (a == NULL) {
            dt_free(next);
            return dt__client_fail(c, DT_ENOMEM, "clean: out of memory");
        }
        Dtpb__ListResponse *lr = NULL;
        st = list_page(c, a, p, "@", after, CLEAN_PAGE, &lr);
        for (size_t i = 0; st == DT_OK && i < lr->n_instances; i++) {
            st = clean_one(c, a, p, lr->instances[i], remove_empty, release, res);
        }
        dt_free(next);
        next = NULL;
        if (st == DT_OK && lr->next_page_token != NULL && lr->next_page_token[0] != '\0') {
            next = dt_strdup(lr->next_page_token);
            if (next == NULL) {
                st = dt__client_fail(c, DT_ENOMEM, "clean: out of memory");
            }
        }
        after = next;
    } while (st == DT_OK && after != NULL);
    dt__arena_destroy(a);
    return st;
}

dt_status dt_client_clean_entities(dt_client *c, bool remove_empty, bool release_orphaned_locks,
                                   dt_entity_clean_result *out)
{
    dt_entity_clean_result res = {0};
    dt_status st = dt__client_ensure_hub(c);
    for (uint32_t p = 0; st == DT_OK && p < c->cfg.partitions; p++) {
        st = clean_partition(c, p, remove_empty, release_orphaned_locks, &res);
    }
    if (out != NULL) {
        *out = res;
    }
    return st;
}
