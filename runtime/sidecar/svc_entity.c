/*
 * svc_entity.c: the entity client RPCs: SignalEntity, GetEntity, QueryEntities and
 * CleanEntityStorage over the client's entity API (durabletask/entity.h).
 *
 * The protocol names an entity by its instance ID "@<name>@<key>" (split with
 * dt_entity_id_parse); a malformed one is INVALID_ARGUMENT. SignalEntity's request_id becomes the
 * signal's idempotency key, so a client's retry of one request signals once. QueryEntities' ID
 * prefix is "@<name prefix>" or "@<name>@<key prefix>": the client API selects by exact name and
 * key prefix, so a bare name prefix is applied here to each page of every name (a page may then
 * be short, or empty with a continuation token). CleanEntityStorage does its work in one call
 * (no continuation token).
 */
#include <string.h>

#include "common_int.h"
#include "durabletask/entity.h"
#include "sidecar_int.h"

/* Splits an entity instance ID; on failure finishes the call INVALID_ARGUMENT. */
static bool split_id(dt__grpc_call *call, const char *what, const char *id, char *name,
                     size_t name_len, char *key, size_t key_len)
{
    if (id != NULL && dt_entity_id_parse(id, name, name_len, key, key_len) == DT_OK) {
        return true;
    }
    char msg[DT_ENTITY_ID_MAX + 120];
    dt__errf(msg, sizeof msg, "%s: '%.*s' is not an entity ID (\"@<name>@<key>\")", what,
             DT_ENTITY_ID_MAX, id != NULL ? id : "");
    dt__svc_invalid(call, msg);
    return false;
}

static void signal_entity(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__SignalEntityRequest *r = (Dtproto__SignalEntityRequest *)dt__svc_unpack(
        call, &dtproto__signal_entity_request__descriptor);
    if (r == NULL) {
        return;
    }
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    if (split_id(call, "SignalEntity", r->instance_id, name, sizeof name, key, sizeof key)) {
        dt_entity_signal_options o;
        dt_entity_signal_options_init(&o);
        o.signal_at_ms = dt__svc_ts_ms(r->scheduled_time);
        o.idempotency_key =
            r->request_id != NULL && r->request_id[0] != '\0' ? r->request_id : NULL;
        const char *in = r->input != NULL ? r->input->value : NULL;
        dt_status st = dt_client_signal_entity(svc->client, name, key, r->name, in,
                                               in != NULL ? strlen(in) : 0, &o);
        if (st == DT_OK) {
            Dtproto__SignalEntityResponse res = DTPROTO__SIGNAL_ENTITY_RESPONSE__INIT;
            dt__svc_reply(call, &res.base);
        } else {
            dt__svc_fail(call, svc, st, "SignalEntity");
        }
    }
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

/* The protocol's EntityMetadata of m (built in a, pointing into m). */
static Dtproto__EntityMetadata *metadata(dt__arena *a, const dt_entity_metadata *m,
                                         bool include_state)
{
    Dtproto__EntityMetadata *e = dt__arena_calloc(a, 1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    dtproto__entity_metadata__init(e);
    e->instance_id = (char *)m->instance_id;
    if (m->last_modified_ms != 0) {
        e->last_modified_time = dt__arena_calloc(a, 1, sizeof *e->last_modified_time);
        if (e->last_modified_time == NULL) {
            return NULL;
        }
        dt__svc_ts(m->last_modified_ms, e->last_modified_time);
    }
    e->backlog_queue_size = m->backlog_queue_size;
    if (m->locked_by != NULL && (e->locked_by = dt__svc_sv(a, m->locked_by)) == NULL) {
        return NULL;
    }
    if (include_state && m->has_state && m->state != NULL &&
        (e->serialized_state = dt__svc_sv(a, m->state)) == NULL) {
        return NULL;
    }
    return e;
}

static void get_entity(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__GetEntityRequest *r =
        (Dtproto__GetEntityRequest *)dt__svc_unpack(call, &dtproto__get_entity_request__descriptor);
    if (r == NULL) {
        return;
    }
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    if (split_id(call, "GetEntity", r->instance_id, name, sizeof name, key, sizeof key)) {
        dt_entity_metadata *m = NULL;
        dt_status st = dt_client_get_entity(svc->client, name, key, r->include_state, &m);
        Dtproto__GetEntityResponse res = DTPROTO__GET_ENTITY_RESPONSE__INIT;
        dt__arena *a = st == DT_OK ? dt__arena_create(0) : NULL;
        if (st == DT_OK) {
            res.exists = true;
            res.entity = a != NULL ? metadata(a, m, r->include_state) : NULL;
            if (res.entity == NULL) {
                dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            } else {
                dt__svc_reply(call, &res.base);
            }
        } else if (st == DT_ENOTFOUND) {
            dt__svc_reply(call, &res.base); /* exists = false */
        } else {
            dt__svc_fail(call, svc, st, "GetEntity");
        }
        dt__arena_destroy(a);
        dt_entity_metadata_free(m);
    }
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

/* The selection an ID prefix makes: exact name and key prefix, or a name prefix (name_prefix
 * set, name empty), or everything. False when the prefix cannot name any entity. */
static bool parse_prefix(const char *p, char *name, size_t name_len, char *key, size_t key_len,
                         char *name_prefix, size_t np_len)
{
    name[0] = key[0] = name_prefix[0] = '\0';
    if (p == NULL || p[0] == '\0') {
        return true;
    }
    if (p[0] != '@') {
        return false; /* only entity IDs start with '@' */
    }
    const char *sep = strchr(p + 1, '@');
    if (sep == NULL) {
        size_t n = strlen(p + 1);
        if (n >= np_len) {
            return false;
        }
        memcpy(name_prefix, p + 1, n + 1);
        for (char *c = name_prefix; *c != '\0'; c++) {
            if (*c >= 'A' && *c <= 'Z') {
                *c = (char)(*c - 'A' + 'a');
            }
        }
        return true;
    }
    size_t n = (size_t)(sep - (p + 1)), k = strlen(sep + 1);
    if (n == 0 || n >= name_len || k >= key_len) {
        return false;
    }
    memcpy(name, p + 1, n);
    name[n] = '\0';
    memcpy(key, sep + 1, k + 1);
    return true;
}

static void query_entities(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__QueryEntitiesRequest *r = (Dtproto__QueryEntitiesRequest *)dt__svc_unpack(
        call, &dtproto__query_entities_request__descriptor);
    if (r == NULL) {
        return;
    }
    Dtproto__EntityQuery empty = DTPROTO__ENTITY_QUERY__INIT;
    const Dtproto__EntityQuery *q = r->query != NULL ? r->query : &empty;
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1], np[DT_ENTITY_NAME_MAX + 1];
    const char *prefix =
        q->instance_id_starts_with != NULL ? q->instance_id_starts_with->value : NULL;
    Dtproto__QueryEntitiesResponse res = DTPROTO__QUERY_ENTITIES_RESPONSE__INIT;
    if (!parse_prefix(prefix, name, sizeof name, key, sizeof key, np, sizeof np)) {
        dt__svc_reply(call, &res.base); /* no entity ID can start with it */
        protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
        return;
    }
    if (q->page_size != NULL && q->page_size->value < 0) {
        dt__svc_invalid(call, "QueryEntities: negative page size");
        protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
        return;
    }
    dt_entity_query eq;
    dt_entity_query_init(&eq);
    eq.name = name[0] != '\0' ? name : NULL;
    eq.key_prefix = name[0] != '\0' && key[0] != '\0' ? key : NULL;
    eq.last_modified_from_ms = dt__svc_ts_ms(q->last_modified_from);
    eq.last_modified_to_ms = dt__svc_ts_ms(q->last_modified_to);
    eq.include_state = q->include_state;
    eq.include_empty = q->include_transient;
    if (q->page_size != NULL && q->page_size->value > 0) {
        eq.page_size = q->page_size->value > 1000 ? 1000 : (size_t)q->page_size->value;
    }
    eq.page_token = q->continuation_token != NULL && q->continuation_token->value[0] != '\0'
                        ? q->continuation_token->value
                        : NULL;
    dt_entity_page *page = NULL;
    dt_status st = dt_client_query_entities(svc->client, &eq, &page);
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "QueryEntities");
        protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
        return;
    }
    dt__arena *a = dt__arena_create(0);
    bool ok = a != NULL;
    res.entities = ok && page->n > 0 ? dt__arena_calloc(a, page->n, sizeof *res.entities) : NULL;
    ok = ok && (page->n == 0 || res.entities != NULL);
    size_t np_len = strlen(np);
    for (size_t i = 0; ok && i < page->n; i++) {
        const dt_entity_metadata *m = &page->entities[i];
        if (np_len > 0 && strncmp(m->name, np, np_len) != 0) {
            continue;
        }
        ok = (res.entities[res.n_entities++] = metadata(a, m, q->include_state)) != NULL;
    }
    if (ok && page->next_token != NULL) {
        ok = (res.continuation_token = dt__svc_sv(a, page->next_token)) != NULL;
    }
    if (ok) {
        dt__svc_reply(call, &res.base);
    } else {
        dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    }
    dt__arena_destroy(a);
    dt_entity_page_free(page);
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

static void clean_entity_storage(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__CleanEntityStorageRequest *r = (Dtproto__CleanEntityStorageRequest *)dt__svc_unpack(
        call, &dtproto__clean_entity_storage_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_entity_clean_result out = {0};
    dt_status st = dt_client_clean_entities(svc->client, r->remove_empty_entities,
                                            r->release_orphaned_locks, &out);
    if (st == DT_OK) {
        Dtproto__CleanEntityStorageResponse res = DTPROTO__CLEAN_ENTITY_STORAGE_RESPONSE__INIT;
        res.empty_entities_removed =
            out.empty_removed > INT32_MAX ? INT32_MAX : (int32_t)out.empty_removed;
        res.orphaned_locks_released =
            out.locks_released > INT32_MAX ? INT32_MAX : (int32_t)out.locks_released;
        dt__svc_reply(call, &res.base);
    } else {
        dt__svc_fail(call, svc, st, "CleanEntityStorage");
    }
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

const dt__sidecar_method dt__svc_entity_methods[] = {
    {"SignalEntity", signal_entity},
    {"GetEntity", get_entity},
    {"QueryEntities", query_entities},
    {"CleanEntityStorage", clean_entity_storage},
    {NULL, NULL},
};
