/*
 * The entity engine: one batch of messages for one entity, in arrival order, on its state and
 * lock record (see entity_int.h for the messages and their rules).
 */
#include <stdio.h>
#include <string.h>

#include "entity_int.h"
#include "protocol_int.h"

typedef struct run {
    dt__arena *a;
    const dt__entity_in *in;
    dt__entity_out *out;
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    const char *locked_by, *csid; /* "" when unlocked */
    ProtobufCBinaryData *queue;
    size_t n_queue, cap_queue;
    char **released; /* see EntityRecord.released */
    size_t n_released, cap_released;
} run;

#define RELEASED_MAX 16

static bool was_released(const run *r, const char *cs)
{
    for (size_t i = 0; i < r->n_released; i++) {
        if (strcmp(r->released[i], cs) == 0) {
            return true;
        }
    }
    return false;
}

/* Remembers an unlock that came before its lock request (oldest forgotten past RELEASED_MAX). */
static dt_status remember_release(run *r, const char *cs)
{
    if (was_released(r, cs)) {
        return DT_OK;
    }
    if (r->n_released == RELEASED_MAX) {
        memmove(&r->released[0], &r->released[1], (RELEASED_MAX - 1) * sizeof(char *));
        r->n_released--;
    }
    if (!dt__arena_grow(r->a, (void **)&r->released, &r->cap_released, r->n_released,
                        sizeof(char *))) {
        return DT_ENOMEM;
    }
    r->released[r->n_released++] = (char *)cs;
    return DT_OK;
}

static const char *payload_str(dt__arena *a, const Dtpb__Payload *p)
{
    return p == NULL ? "" : dt__arena_memdup(a, p->value.data, p->value.len);
}

static char *fmt_id(dt__arena *a, const char *x, const char *kind, const char *y)
{
    size_t n = strlen(x) + strlen(kind) + strlen(y) + 3;
    char *s = dt__arena_alloc(a, n);
    if (s != NULL) {
        snprintf(s, n, "%s/%s/%s", x, kind, y);
    }
    return s;
}

static dt_status send(run *r, Dtpb__OrchestrationMessage *m)
{
    dt__entity_out *o = r->out;
    if (!dt__arena_grow(r->a, (void **)&o->sends, &o->cap_sends, o->n_sends, sizeof(void *))) {
        return DT_ENOMEM;
    }
    o->sends[o->n_sends++] = m;
    return DT_OK;
}

static dt_status drop(run *r, Dtpb__OrchestrationMessage *m, const char *why)
{
    dt__entity_out *o = r->out;
    if (!dt__arena_grow(r->a, (void **)&o->dropped, &o->cap_dropped, o->n_dropped,
                        sizeof(void *)) ||
        !dt__arena_grow(r->a, (void **)&o->dropped_why, &o->cap_dropped_why, o->n_dropped,
                        sizeof(char *))) {
        return DT_ENOMEM;
    }
    o->dropped_why[o->n_dropped] = dt__arena_strdup(r->a, why);
    o->dropped[o->n_dropped++] = m;
    return o->dropped_why[o->n_dropped - 1] != NULL ? DT_OK : DT_ENOMEM;
}

/* A message to `to` (execution `exec`, may be "") carrying ev, with identity `dedupe`. */
static dt_status send_event(run *r, const char *to, const char *exec, Dtpb__HistoryEvent *ev,
                            const char *dedupe)
{
    Dtpb__OrchestrationMessage *m = dt__arena_alloc(r->a, sizeof(*m));
    if (m == NULL || dedupe == NULL) {
        return DT_ENOMEM;
    }
    dt__orch_msg_init(m, to, exec, ev, (char *)dedupe);
    return send(r, m);
}

/* The answer to a call: completed with `result` (NULL: no output) or failed with `f`. */
static dt_status answer(run *r, const Dtpb__EntityOperationCalledEvent *c, const dt__blob *result,
                        Dtpb__TaskFailureDetails *f)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(r->a, -1, r->in->now_ms);
    if (ev == NULL) {
        return DT_ENOMEM;
    }
    if (f != NULL) {
        Dtpb__EntityOperationFailedEvent *x = dt__arena_alloc(r->a, sizeof(*x));
        if (x == NULL) {
            return DT_ENOMEM;
        }
        dtpb__entity_operation_failed_event__init(x);
        x->request_id = c->request_id;
        x->failure_details = f;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_FAILED;
        ev->entity_operation_failed = x;
    } else {
        Dtpb__EntityOperationCompletedEvent *x = dt__arena_alloc(r->a, sizeof(*x));
        if (x == NULL) {
            return DT_ENOMEM;
        }
        dtpb__entity_operation_completed_event__init(x);
        x->request_id = c->request_id;
        x->output = result != NULL && result->data != NULL
                        ? dt__emit_payload(r->a, result->data, result->len)
                        : NULL;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_COMPLETED;
        ev->entity_operation_completed = x;
    }
    return send_event(r, payload_str(r->a, c->parent_instance_id),
                      payload_str(r->a, c->parent_execution_id), ev,
                      fmt_id(r->a, r->in->instance_id, "res", c->request_id));
}

/*
 * Runs one operation. `call` is the call to answer (NULL for a signal). A failed operation keeps
 * the state and sends only its failure; a signal nobody can run is dropped with the reason.
 */
static dt_status run_op(run *r, Dtpb__OrchestrationMessage *m, const char *op,
                        const Dtpb__Payload *in, const Dtpb__EntityOperationCalledEvent *call)
{
    dt__entity_out *o = r->out;
    if (r->in->fn == NULL) {
        char why[160];
        snprintf(why, sizeof(why), "no entity function registered under the name '%s'", r->name);
        o->n_failed++;
        if (call == NULL) {
            return drop(r, m, why);
        }
        Dtpb__TaskFailureDetails *f = dt__entity_failure(r->a, DT__ENTITY_UNKNOWN, why, true);
        return f != NULL ? answer(r, call, NULL, f) : DT_ENOMEM;
    }
    dt_entity_ctx c;
    dt__blob input = {0};
    if (in != NULL) { /* a copy: the contract promises a NUL byte after it */
        input = (dt__blob){dt__arena_memdup(r->a, in->value.data, in->value.len), in->value.len};
        if (input.data == NULL) {
            return DT_ENOMEM;
        }
    }
    dt__entity_ctx_init(&c, r->a, r->in->instance_id, r->name, r->key, op, m->dedupe_id, input,
                        o->state, r->in->max_state);
    c.now_ms = r->in->now_ms;
    r->in->fn(&c, r->in->user_data);
    if (c.error != DT_OK) {
        return c.error;
    }
    if (!c.failed && r->in->max_state > 0 && c.state.data != NULL &&
        c.state.len > r->in->max_state) {
        char why[160];
        snprintf(why, sizeof(why), "operation '%s' set a state of %zu bytes, over the limit of %zu",
                 op, c.state.len, r->in->max_state);
        c.failed = true;
        c.failure = dt__entity_failure(r->a, DT__ENTITY_TOO_LARGE, why, true);
        if (c.failure == NULL) {
            return DT_ENOMEM;
        }
    }
    if (c.failed) {
        o->n_failed++;
        return call != NULL ? answer(r, call, NULL, c.failure) : DT_OK;
    }
    o->n_ok++;
    o->state = c.state;
    o->state_changed = true;
    for (size_t i = 0; i < c.n_sends; i++) {
        dt_status st = send(r, c.sends[i]);
        if (st != DT_OK) {
            return st;
        }
    }
    return call != NULL ? answer(r, call, &c.result, NULL) : DT_OK;
}

static dt_status enqueue(run *r, Dtpb__OrchestrationMessage *m)
{
    if (r->n_queue >= DT__ENTITY_QUEUE_MAX) {
        static const char why[] = "the entity's queue of requests waiting for its lock is full";
        if (m->event->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED) {
            Dtpb__TaskFailureDetails *f =
                dt__entity_failure(r->a, "dt.EntityQueueFull", why, false);
            return f != NULL ? answer(r, m->event->entity_operation_called, NULL, f) : DT_ENOMEM;
        }
        return drop(r, m, why);
    }
    if (!dt__arena_grow(r->a, (void **)&r->queue, &r->cap_queue, r->n_queue, sizeof(*r->queue))) {
        return DT_ENOMEM;
    }
    size_t len = 0;
    uint8_t *data = dt__pack(r->a, &m->base, &len);
    if (data == NULL) {
        return DT_ENOMEM;
    }
    r->queue[r->n_queue++] = (ProtobufCBinaryData){len, data};
    r->out->n_queued++;
    return DT_OK;
}

/* Locks the entity for the request's orchestration and passes the request on (or grants it). */
static dt_status lock(run *r, const Dtpb__EntityLockRequestedEvent *l, const char *holder)
{
    r->locked_by = holder;
    r->csid = l->critical_section_id;
    Dtpb__HistoryEvent *ev = dt__emit_new(r->a, -1, r->in->now_ms);
    if (ev == NULL) {
        return DT_ENOMEM;
    }
    size_t next = (size_t)l->position + 1;
    if (next < l->n_lock_set) {
        Dtpb__EntityLockRequestedEvent *f = dt__arena_alloc(r->a, sizeof(*f));
        if (f == NULL) {
            return DT_ENOMEM;
        }
        *f = *l;
        f->position = (int32_t)next;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED;
        ev->entity_lock_requested = f;
        return send_event(r, l->lock_set[next], "", ev,
                          fmt_id(r->a, holder, "lock",
                                 fmt_id(r->a, l->critical_section_id, "at", l->lock_set[next])));
    }
    Dtpb__EntityLockGrantedEvent *g = dt__arena_alloc(r->a, sizeof(*g));
    if (g == NULL) {
        return DT_ENOMEM;
    }
    dtpb__entity_lock_granted_event__init(g);
    g->critical_section_id = l->critical_section_id;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED;
    ev->entity_lock_granted = g;
    return send_event(r, holder, "", ev, fmt_id(r->a, holder, "granted", l->critical_section_id));
}

static dt_status handle(run *r, Dtpb__OrchestrationMessage *m);

/* The holder unlocked: the queued requests run in order, until one locks the entity again (the
 * rest then wait on). */
static dt_status drain(run *r)
{
    ProtobufCBinaryData *q = r->queue;
    size_t n = r->n_queue;
    r->queue = NULL;
    r->n_queue = r->cap_queue = 0;
    for (size_t i = 0; i < n; i++) {
        Dtpb__OrchestrationMessage *m = NULL;
        if (dt__orch_msg_decode(r->a, q[i].data, q[i].len, &m) != DT_OK) {
            continue; /* written by this engine: never expected */
        }
        dt_status st = handle(r, m);
        if (st != DT_OK) {
            return st;
        }
    }
    return DT_OK;
}

/* Longest request or critical-section ID taken: the identities built from them (with an instance
 * and an entity ID) stay under the store's 1,024 bytes, so a hand-made message cannot make the
 * batch's commit fail again and again. */
#define REF_MAX      400
#define LOCK_SET_MAX 64

static bool ref_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 && n <= REF_MAX;
}

/* Whether a call or lock request can be answered and forwarded: IDs within bounds, the caller an
 * instance ID, every member of a lock set an entity ID. */
static bool well_formed(const run *r, const Dtpb__HistoryEvent *ev)
{
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED) {
        const Dtpb__EntityOperationCalledEvent *c = ev->entity_operation_called;
        return ref_ok(c->request_id) &&
               dt__instance_id_valid(payload_str(r->a, c->parent_instance_id)) &&
               strlen(payload_str(r->a, c->parent_execution_id)) <= DT_INSTANCE_ID_MAX;
    }
    if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED) {
        const Dtpb__EntityLockRequestedEvent *l = ev->entity_lock_requested;
        bool ok = ref_ok(l->critical_section_id) && l->n_lock_set <= LOCK_SET_MAX &&
                  dt__instance_id_valid(payload_str(r->a, l->parent_instance_id));
        for (size_t i = 0; ok && i < l->n_lock_set; i++) {
            ok = dt_entity_id_parse(l->lock_set[i], name, sizeof(name), key, sizeof(key)) == DT_OK;
        }
        return ok;
    }
    return true;
}

static dt_status handle(run *r, Dtpb__OrchestrationMessage *m)
{
    bool locked = r->locked_by[0] != '\0';
    if (!well_formed(r, m->event)) {
        return drop(r, m, "malformed entity call or lock request (caller, IDs or lock set)");
    }
    const Dtpb__HistoryEvent *ev = m->event;
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED: {
        const Dtpb__EntityOperationSignaledEvent *s = ev->entity_operation_signaled;
        return locked ? enqueue(r, m) : run_op(r, m, s->operation, s->input, NULL);
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED: {
        const Dtpb__EntityOperationCalledEvent *c = ev->entity_operation_called;
        const char *caller = payload_str(r->a, c->parent_instance_id);
        if (caller[0] == '\0') {
            return drop(r, m, "entity call without the caller's instance ID");
        }
        bool mine = strcmp(caller, r->locked_by) == 0;
        return locked && !mine ? enqueue(r, m) : run_op(r, m, c->operation, c->input, c);
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED: {
        const Dtpb__EntityLockRequestedEvent *l = ev->entity_lock_requested;
        const char *holder = payload_str(r->a, l->parent_instance_id);
        if (holder[0] == '\0' || l->position < 0 || (size_t)l->position >= l->n_lock_set ||
            strcmp(l->lock_set[l->position], r->in->instance_id) != 0) {
            return drop(r, m, "lock request without its orchestration, or not for this entity");
        }
        if (locked && strcmp(holder, r->locked_by) == 0 &&
            strcmp(l->critical_section_id, r->csid) == 0) {
            return DT_OK; /* this section holds it already */
        }
        if (was_released(r, l->critical_section_id)) {
            return DT_OK; /* its orchestration ended (and unlocked) before the request came */
        }
        return locked ? enqueue(r, m) : lock(r, l, holder);
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT: {
        const Dtpb__EntityUnlockSentEvent *u = ev->entity_unlock_sent;
        const char *holder = payload_str(r->a, u->parent_instance_id);
        if (!locked || strcmp(holder, r->locked_by) != 0 ||
            strcmp(u->critical_section_id, r->csid) != 0) {
            /* Not the holder: a repeat, or the section ended before its request reached this
             * entity (the request is then dropped when it comes). */
            return remember_release(r, u->critical_section_id);
        }
        r->locked_by = r->csid = "";
        return drain(r);
    }
    default:
        return drop(r, m, "not an entity operation (signal, call, lock or unlock)");
    }
}

dt_status dt__entity_run(dt__arena *a, const dt__entity_in *in, dt__entity_out *out)
{
    *out = (dt__entity_out){.state = in->state};
    run r = {.a = a, .in = in, .out = out, .locked_by = "", .csid = ""};
    if (dt_entity_id_parse(in->instance_id, r.name, sizeof(r.name), r.key, sizeof(r.key)) !=
        DT_OK) {
        return DT_EINVAL;
    }
    if (in->rec != NULL) {
        r.locked_by = in->rec->locked_by != NULL ? in->rec->locked_by : "";
        r.csid = in->rec->critical_section_id != NULL ? in->rec->critical_section_id : "";
        for (size_t i = 0; i < in->rec->n_queue; i++) {
            if (!dt__arena_grow(a, (void **)&r.queue, &r.cap_queue, r.n_queue, sizeof(*r.queue))) {
                return DT_ENOMEM;
            }
            r.queue[r.n_queue++] = in->rec->queue[i];
        }
        for (size_t i = 0; i < in->rec->n_released; i++) {
            dt_status st = remember_release(&r, in->rec->released[i]);
            if (st != DT_OK) {
                return st;
            }
        }
    }
    for (size_t i = 0; i < in->n_msgs; i++) {
        dt_status st = handle(&r, in->msgs[i]);
        if (st != DT_OK) {
            return st;
        }
    }
    out->rec = dt__arena_alloc(a, sizeof(*out->rec));
    if (out->rec == NULL) {
        return DT_ENOMEM;
    }
    dtpb__entity_record__init(out->rec);
    out->rec->locked_by = (char *)r.locked_by;
    out->rec->critical_section_id = (char *)r.csid;
    out->rec->queue = r.queue;
    out->rec->n_queue = r.n_queue;
    out->rec->released = r.released;
    out->rec->n_released = r.n_released;
    out->rec_empty = r.locked_by[0] == '\0' && r.n_queue == 0 && r.n_released == 0;
    return DT_OK;
}
