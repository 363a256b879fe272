/*
 * Starting instances: validate, check the reuse policy against the status record, publish the
 * ExecutionStarted message to the instance's partition (waiting for the PubAck), then record the
 * instance as PENDING in the status bucket.
 *
 * The PENDING record is written after the PubAck so that a record never exists for a start that
 * was not accepted. It is written with create (or, replacing a finished execution, with an update
 * at the revision read), never with a blind put: the worker may already have written a newer
 * status, which must not be overwritten. A failure to write it does not fail the call: the start
 * is accepted and the worker writes the record when it runs the instance.
 */
#include "client_int.h"

#include <string.h>

typedef struct start_ids {
    char instance[DT_CLIENT_ID_BUF];
    char execution[DT_CLIENT_ID_BUF];
    char dedupe[2 * DT_CLIENT_ID_BUF + 32];
} start_ids;

static dt_status check_tags(dt_client *c, const dt_client_start_options *o)
{
    if (o->ntags > DT_CLIENT_TAGS_MAX || (o->ntags > 0 && o->tags == NULL)) {
        return dt__client_fail(c, DT_EINVAL, "at most %d tags, given as an array",
                               DT_CLIENT_TAGS_MAX);
    }
    for (size_t i = 0; i < o->ntags; i++) {
        if (o->tags[i].key == NULL || o->tags[i].key[0] == '\0' || o->tags[i].value == NULL) {
            return dt__client_fail(c, DT_EINVAL, "tag %zu needs a non-empty key and a value", i);
        }
    }
    return DT_OK;
}

static bool subject_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= DT_BROKER_NAME_BUF || s[0] == '.' || s[n - 1] == '.') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~' || (p[0] == '.' && p[1] == '.')) {
            return false;
        }
    }
    return true;
}

static dt_status check_options(dt_client *c, const char *name, const dt_client_start_options *o)
{
    dt_status st = dt__client_check_name(c, "orchestration name", name);
    if (st == DT_OK && o->instance_id != NULL) {
        st = dt__client_check_id(c, "instance ID", o->instance_id);
    }
    if (st == DT_OK && o->execution_id != NULL) {
        st = dt__client_check_id(c, "execution ID", o->execution_id);
    }
    if (st != DT_OK) {
        return st;
    }
    if (o->version != NULL && strlen(o->version) > DT_NAME_MAX) {
        return dt__client_fail(c, DT_EINVAL, "version longer than %d bytes", DT_NAME_MAX);
    }
    if (o->input == NULL && o->input_len > 0) {
        return dt__client_fail(c, DT_EINVAL, "input_len without input");
    }
    if ((unsigned)o->reuse_policy > DT_CLIENT_REUSE_TERMINATE_AND_REPLACE) {
        return dt__client_fail(c, DT_EINVAL, "unknown reuse policy %d", (int)o->reuse_policy);
    }
    if (o->start_at_ms < 0) {
        return dt__client_fail(c, DT_EINVAL, "start_at_ms must be >= 0");
    }
    if (o->result_subject != NULL && !subject_valid(o->result_subject)) {
        return dt__client_fail(c, DT_EINVAL, "invalid result subject '%.64s'", o->result_subject);
    }
    return check_tags(c, o);
}

static dt_status make_ids(dt_client *c, const dt_client_start_options *o, start_ids *ids)
{
    if (o->instance_id != NULL) {
        memcpy(ids->instance, o->instance_id, strlen(o->instance_id) + 1);
    } else {
        dt__random_uuid(ids->instance);
    }
    if (o->execution_id != NULL) {
        memcpy(ids->execution, o->execution_id, strlen(o->execution_id) + 1);
    } else {
        dt__random_uuid(ids->execution);
    }
    dt_status st =
        dt__msg_id(ids->dedupe, sizeof(ids->dedupe), ids->instance, ids->execution, "start", 0);
    return st == DT_OK ? DT_OK : dt__client_fail(c, st, "start: message identity too long");
}

static Dt__Payload *payload_new(dt__arena *a, const void *data, size_t len)
{
    Dt__Payload *p = dt__arena_alloc(a, sizeof(*p));
    if (p != NULL) {
        dt__payload__init(p);
        p->value.data = (uint8_t *)data;
        p->value.len = len;
    }
    return p;
}

/* Tags as map entries of ExecutionStartedEvent (n may be 0). */
static Dt__ExecutionStartedEvent__TagsEntry **tags_new(dt__arena *a,
                                                       const dt_client_start_options *o)
{
    Dt__ExecutionStartedEvent__TagsEntry **t = dt__arena_calloc(a, o->ntags + 1, sizeof(*t));
    for (size_t i = 0; t != NULL && i < o->ntags; i++) {
        t[i] = dt__arena_alloc(a, sizeof(*t[i]));
        if (t[i] == NULL) {
            return NULL;
        }
        dt__execution_started_event__tags_entry__init(t[i]);
        t[i]->key = (char *)o->tags[i].key;
        t[i]->value = (char *)o->tags[i].value;
    }
    return t;
}

/* The ExecutionStarted event's body; everything in `a` (strings borrowed). NULL: no memory. */
static Dt__ExecutionStartedEvent *
started_new(dt__arena *a, const char *name, const dt_client_start_options *o, const start_ids *ids)
{
    Dt__ExecutionStartedEvent *es = dt__arena_alloc(a, sizeof(*es));
    Dt__OrchestrationInstance *oi = dt__arena_alloc(a, sizeof(*oi));
    Dt__Payload *exec = payload_new(a, ids->execution, strlen(ids->execution));
    Dt__ExecutionStartedEvent__TagsEntry **tags = tags_new(a, o);
    if (es == NULL || oi == NULL || exec == NULL || tags == NULL) {
        return NULL;
    }
    dt__orchestration_instance__init(oi);
    oi->instance_id = (char *)ids->instance;
    oi->execution_id = exec;
    dt__execution_started_event__init(es);
    es->name = (char *)name;
    es->orchestration_instance = oi;
    es->n_tags = o->ntags;
    es->tags = tags;
    bool ok = true;
    if (o->version != NULL) {
        ok = (es->version = payload_new(a, o->version, strlen(o->version))) != NULL;
    }
    if (o->input != NULL) {
        ok = (es->input = payload_new(a, o->input, o->input_len)) != NULL && ok;
    }
    if (o->start_at_ms > 0) {
        ok = (es->scheduled_start_timestamp = dt__ts_from_ms(a, o->start_at_ms)) != NULL && ok;
    }
    return ok ? es : NULL;
}

/* The OrchestrationMessage carrying ExecutionStarted; everything in `a`. */
static dt_status build_start(dt_client *c, dt__arena *a, const char *name,
                             const dt_client_start_options *o, const start_ids *ids,
                             Dt__OrchestrationMessage **out)
{
    Dt__OrchestrationMessage *m = dt__arena_alloc(a, sizeof(*m));
    Dt__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dt__ExecutionStartedEvent *es = started_new(a, name, o, ids);
    if (m == NULL || ev == NULL || es == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "start: out of memory");
    }
    ev->event_type_case = DT__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = es;
    dt__orch_msg_init(m, ids->instance, ids->execution, ev, ids->dedupe);
    m->reuse_policy = (Dt__InstanceIdReusePolicy)o->reuse_policy;
    m->result_subject = (char *)(o->result_subject != NULL ? o->result_subject : "");
    *out = m;
    return DT_OK;
}

/* The PENDING status record of the new execution (shares the start message's fields). */
static dt_status build_pending(dt_client *c, dt__arena *a, const Dt__OrchestrationMessage *m,
                               uint8_t **out, size_t *out_len)
{
    const Dt__ExecutionStartedEvent *es = m->event->execution_started;
    Dt__InstanceStatus s;
    dt__instance_status__init(&s);
    s.instance_id = m->instance_id;
    s.name = es->name;
    s.execution_id = m->execution_id;
    s.runtime_status = DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING;
    s.created_at = m->event->timestamp;
    s.last_updated_at = m->event->timestamp;
    s.input = es->input;
    s.version = es->version;
    /* Same layout of the map entry (key = 1, value = 2) in both messages. */
    s.n_tags = es->n_tags;
    Dt__InstanceStatus__TagsEntry **t = dt__arena_calloc(a, es->n_tags + 1, sizeof(*t));
    for (size_t i = 0; t != NULL && i < es->n_tags; i++) {
        t[i] = dt__arena_alloc(a, sizeof(*t[i]));
        if (t[i] == NULL) {
            t = NULL;
            break;
        }
        dt__instance_status__tags_entry__init(t[i]);
        t[i]->key = es->tags[i]->key;
        t[i]->value = es->tags[i]->value;
    }
    s.tags = t;
    *out = t != NULL ? dt__pack(a, &s.base, out_len) : NULL;
    return *out != NULL ? DT_OK : dt__client_fail(c, DT_ENOMEM, "start: out of memory");
}

/* Applies the reuse policy to an existing record: DT_OK to go ahead, DT_EEXIST to refuse. */
static dt_status check_reuse(dt_client *c, dt__arena *a, const start_ids *ids,
                             dt_client_reuse_policy policy)
{
    Dt__InstanceStatus *cur = NULL;
    dt_status st = dt__client_status_read(c, a, ids->instance, &cur, NULL);
    if (st == DT_ENOTFOUND) {
        return DT_OK;
    }
    if (st != DT_OK) {
        return st;
    }
    if (cur->execution_id != NULL && strcmp(cur->execution_id, ids->execution) == 0) {
        return DT_OK; /* a retry of the same start: the dedupe identity drops the repeat */
    }
    bool finished = dt__client_status_finished(cur->runtime_status);
    if (policy == DT_CLIENT_REUSE_TERMINATE_AND_REPLACE ||
        (policy == DT_CLIENT_REUSE_REPLACE_IF_FINISHED && finished)) {
        return DT_OK;
    }
    return dt__client_fail(
        c, DT_EEXIST, "instance '%s' already exists (status %s)%s", ids->instance,
        dt_client_runtime_status_name((dt_client_runtime_status)cur->runtime_status),
        finished ? "; use reuse policy replace to start it again" : "");
}

/* Writes the PENDING record unless a record of this or a running execution is there. */
static void record_pending(dt_client *c, dt__arena *a, const start_ids *ids,
                           dt_client_reuse_policy policy, const uint8_t *rec, size_t len)
{
    char key[DT__CLIENT_KEY_BUF];
    if (dt__status_key(ids->instance, key, sizeof(key)) != DT_OK) {
        return;
    }
    dt_status st = dt_broker_kv_create(c->status_kv, key, rec, len, NULL);
    if (st != DT_EEXIST || policy == DT_CLIENT_REUSE_ERROR) {
        return; /* written, or the worker (or an earlier try of this start) got there first */
    }
    Dt__InstanceStatus *cur = NULL;
    uint64_t rev = 0;
    if (dt__client_status_read(c, a, ids->instance, &cur, &rev) == DT_OK &&
        dt__client_status_finished(cur->runtime_status) && cur->execution_id != NULL &&
        strcmp(cur->execution_id, ids->execution) != 0) {
        /* DT_ECONFLICT means the worker wrote meanwhile: its record wins. */
        (void)dt_broker_kv_update(c->status_kv, key, rec, len, rev, NULL);
    }
}

dt_status dt_client_schedule(dt_client *c, const char *name, const dt_client_start_options *o,
                             char *out_id, size_t out_len)
{
    static const dt_client_start_options defaults = {0};
    o = o != NULL ? o : &defaults;
    if (out_id != NULL && out_len < DT_CLIENT_ID_BUF) {
        return dt__client_fail(c, DT_EINVAL, "out_id needs %d bytes", DT_CLIENT_ID_BUF);
    }
    dt_status st = check_options(c, name, o);
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st != DT_OK) {
        return st;
    }
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "start: out of memory");
    }
    start_ids ids;
    Dt__OrchestrationMessage *m = NULL;
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    st = make_ids(c, o, &ids);
    if (st == DT_OK) {
        st = build_start(c, a, name, o, &ids, &m);
    }
    if (st == DT_OK) {
        st = build_pending(c, a, m, &rec, &rec_len);
    }
    if (st == DT_OK && o->instance_id != NULL) {
        /* A freshly generated random ID cannot be taken: no status read (a round trip) then. */
        st = check_reuse(c, a, &ids, o->reuse_policy);
    }
    if (st == DT_OK) {
        st = dt__client_publish_orch(c, a, m, NULL);
    }
    if (st == DT_OK) {
        record_pending(c, a, &ids, o->reuse_policy, rec, rec_len);
        if (out_id != NULL) {
            memcpy(out_id, ids.instance, strlen(ids.instance) + 1);
        }
    }
    dt__arena_destroy(a);
    return st;
}
