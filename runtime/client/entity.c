/*
 * Entities from a client: a signal is one OrchestrationMessage (EntityOperationSignaled) to the
 * entity's partition, published directly (clients know the partition count); a get asks the
 * entity's partition owner for its row (a list query with the entity's ID as prefix: IDs sort
 * before their extensions, so the first row is the entity if it exists).
 *
 * Signal identity: "<entity>/-/sig/<random>", or "<entity>/-/sig/k.<key>" with an idempotency
 * key, so that repeats of one call are applied once.
 */
#include "client_int.h"

#include <stdio.h>
#include <string.h>

#include "dt_entity.pb-c.h"
#include "durabletask/entity.h"

typedef struct metadata_holder {
    dt_entity_metadata pub; /* first: the public pointer is the holder's */
    dt__arena *a;
} metadata_holder;

void dt_entity_signal_options_init(dt_entity_signal_options *o)
{
    *o = (dt_entity_signal_options){.size = sizeof(*o)};
}

void dt_entity_metadata_free(dt_entity_metadata *m)
{
    if (m != NULL) {
        dt__arena_destroy(((metadata_holder *)m)->a);
    }
}

static dt_status entity_id(dt_client *c, const char *name, const char *key, char *id, size_t len)
{
    char why[160];
    if (dt_entity_id_check(name, key, why, sizeof(why)) != DT_OK) {
        return dt__client_fail(c, DT_EINVAL, "%s", why);
    }
    return dt_entity_id(name, key, id, len);
}

static dt_status signal_dedupe(dt_client *c, const char *id, const char *key, char *buf, size_t len)
{
    if (key != NULL) {
        size_t n = strlen(key);
        bool ok = n > 0 && n <= DT_NAME_MAX;
        for (const unsigned char *p = (const unsigned char *)key; ok && *p != '\0'; p++) {
            ok = *p > ' ' && *p <= '~';
        }
        int w = ok ? snprintf(buf, len, "%s/-/sig/k.%s", id, key) : -1;
        return w > 0 && (size_t)w < len
                   ? DT_OK
                   : dt__client_fail(c, DT_EINVAL,
                                     "invalid idempotency key: use 1..%d printable ASCII "
                                     "characters without spaces",
                                     DT_NAME_MAX);
    }
    int64_t n = 0;
    dt_status st = dt__client_rand63(c, &n);
    return st == DT_OK ? dt__msg_id(buf, len, id, "-", "sig", n) : st;
}

static dt_status signal_in(dt_client *c, dt__arena *a, const char *id, const char *operation,
                           const void *input, size_t len, const dt_entity_signal_options *o)
{
    char dedupe[DT_ENTITY_ID_MAX + DT_NAME_MAX + 32];
    dt_status st =
        signal_dedupe(c, id, o != NULL ? o->idempotency_key : NULL, dedupe, sizeof(dedupe));
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st != DT_OK) {
        return st;
    }
    Dtpb__Timestamp now, at;
    Dtpb__Payload in = DTPB__PAYLOAD__INIT;
    Dtpb__EntityOperationSignaledEvent s = DTPB__ENTITY_OPERATION_SIGNALED_EVENT__INIT;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    dt__client_ts_set(&now, dt__now_ms());
    s.request_id = dedupe;
    s.operation = (char *)operation;
    if (input != NULL) {
        in.value.data = (uint8_t *)input;
        in.value.len = len;
        s.input = &in;
    }
    if (o != NULL && o->signal_at_ms > 0) {
        dt__client_ts_set(&at, o->signal_at_ms);
        s.scheduled_time = &at;
    }
    ev.event_id = -1;
    ev.timestamp = &now;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
    ev.entity_operation_signaled = &s;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, id, "", &ev, dedupe);
    return dt__client_publish_orch(c, a, &m, NULL);
}

dt_status dt_client_signal_entity(dt_client *c, const char *name, const char *key,
                                  const char *operation, const void *input, size_t len,
                                  const dt_entity_signal_options *opt)
{
    char id[DT_ENTITY_ID_MAX + 1];
    dt_status st = entity_id(c, name, key, id, sizeof(id));
    if (st != DT_OK) {
        return st;
    }
    if (operation == NULL || operation[0] == '\0' || strlen(operation) > DT_NAME_MAX) {
        return dt__client_fail(c, DT_EINVAL, "invalid operation name: 1..%d characters required",
                               DT_NAME_MAX);
    }
    if ((input == NULL && len > 0) || (opt != NULL && opt->signal_at_ms < 0)) {
        return dt__client_fail(c, DT_EINVAL, "signal: NULL input with a length, or a bad time");
    }
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "signal: out of memory");
    }
    st = signal_in(c, a, id, operation, input, len, opt);
    dt__arena_destroy(a);
    return st;
}

dt_status dt__client_entity_metadata(dt_client *c, dt__arena *a, const Dtpb__InstanceStatus *s,
                                     bool include_state, dt_entity_metadata *m, const char **out_cs)
{
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    if (dt_entity_id_parse(s->instance_id, name, sizeof(name), key, sizeof(key)) != DT_OK) {
        return dt__client_fail(c, DT_EDECODE, "'%s' is not an entity ID", s->instance_id);
    }
    m->instance_id = dt__arena_strdup(a, s->instance_id);
    m->name = dt__arena_strdup(a, name);
    m->key = dt__arena_strdup(a, key);
    m->last_modified_ms = dt__ts_to_ms(s->last_updated_at);
    m->has_state = s->output != NULL;
    if (s->custom_status != NULL) {
        Dtpb__EntityRecord *rec = (Dtpb__EntityRecord *)dt__pb_unpack(
            a, &dtpb__entity_record__descriptor, s->custom_status->value.len,
            s->custom_status->value.data);
        if (rec == NULL) {
            return dt__client_fail(c, DT_EDECODE, "entity '%s': unreadable lock record",
                                   s->instance_id);
        }
        m->locked_by = rec->locked_by[0] != '\0' ? rec->locked_by : NULL;
        if (out_cs != NULL) {
            *out_cs = rec->critical_section_id;
        }
        m->backlog_queue_size = (int32_t)rec->n_queue;
    }
    if (include_state && s->output != NULL) {
        m->state = dt__arena_memdup(a, s->output->value.data, s->output->value.len);
        m->state_len = s->output->value.len;
    }
    return m->instance_id != NULL && m->name != NULL && m->key != NULL ? DT_OK : DT_ENOMEM;
}

static dt_status get_in(dt_client *c, dt__arena *a, const char *id, bool include_state,
                        dt_entity_metadata **out)
{
    dt_status st = dt__client_ensure_hub(c);
    if (st != DT_OK) {
        return st;
    }
    Dtpb__InstanceFilter f = DTPB__INSTANCE_FILTER__INIT;
    Dtpb__ListRequest lr = DTPB__LIST_REQUEST__INIT;
    Dtpb__QueryRequest req = DTPB__QUERY_REQUEST__INIT;
    f.instance_id_prefix = (char *)id;
    lr.filter = &f;
    lr.limit = 1;
    lr.with_payloads = true; /* the lock record is a payload */
    req.kind_case = DTPB__QUERY_REQUEST__KIND_LIST;
    req.list = &lr;
    Dtpb__QueryResponse *r = NULL;
    st = dt__client_ask(c, a, dt__partition_of(id, c->cfg.partitions), &req, &r);
    if (st != DT_OK) {
        return st;
    }
    if (r->result_case != DTPB__QUERY_RESPONSE__RESULT_LIST || r->list->n_instances == 0 ||
        strcmp(r->list->instances[0]->instance_id, id) != 0) {
        return dt__client_fail(c, DT_ENOTFOUND, "entity '%s' does not exist", id);
    }
    metadata_holder *h = dt__arena_calloc(a, 1, sizeof(*h));
    if (h == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "get entity: out of memory");
    }
    h->a = a;
    st = dt__client_entity_metadata(c, a, r->list->instances[0], include_state, &h->pub, NULL);
    if (st == DT_OK && !h->pub.has_state && h->pub.locked_by == NULL) {
        st = dt__client_fail(c, DT_ENOTFOUND, "entity '%s' does not exist", id);
    }
    if (st == DT_OK) {
        *out = &h->pub;
    }
    return st;
}

dt_status dt_client_get_entity(dt_client *c, const char *name, const char *key, bool include_state,
                               dt_entity_metadata **out)
{
    char id[DT_ENTITY_ID_MAX + 1];
    dt_status st = entity_id(c, name, key, id, sizeof(id));
    if (st != DT_OK || out == NULL) {
        return st != DT_OK ? st : DT_EINVAL;
    }
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "get entity: out of memory");
    }
    st = get_in(c, a, id, include_state, out);
    if (st != DT_OK) {
        dt__arena_destroy(a);
    }
    return st;
}
