/*
 * Entities from orchestrations: signal (one-way), call (a task completed by the entity's answer)
 * and critical sections (a lock request that visits the sorted lock set and completes when the
 * last entity grants it; unlocks when the section ends or the execution does). Each is an action
 * with the next sequence number, recorded as the Durable Task protocol's entity event and checked
 * on replay like every action (replay.c). Request and critical-section IDs are
 * "<instance>/<execution>/<kind>/<action number>": the same on every replay, unique per execution.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/entity.h"
#include "instance_int.h"
#include "protocol_int.h"

_Noreturn static void misuse(dt__instance *in, const char *message)
{
    dt_orch_fail(in, DT_FAILURE_MISUSE, message, NULL);
}

/* The entity ID of (name, key) in the instance's arena; fails the orchestration when invalid. */
static const char *entity_id(dt__instance *in, const char *name, const char *key)
{
    char why[160], id[DT_ENTITY_ID_MAX + 1];
    if (dt_entity_id_check(name, key, why, sizeof(why)) != DT_OK) {
        misuse(in, why);
    }
    dt_entity_id(name, key, id, sizeof(id));
    return dt__inst_strdup(in, id);
}

static const char *action_ref(dt__instance *in, const char *kind, int32_t id)
{
    char buf[DT_INSTANCE_ID_MAX * 2 + 64];
    if (dt__msg_id(buf, sizeof(buf), in->instance_id, in->execution_id, kind, id) != DT_OK) {
        misuse(in, "instance and execution IDs too long for an entity request ID");
    }
    return dt__inst_strdup(in, buf);
}

static void check_operation(dt__instance *in, const char *operation)
{
    if (operation == NULL || operation[0] == '\0' || strlen(operation) > DT_NAME_MAX) {
        misuse(in, "an entity operation needs a name of 1..128 characters");
    }
}

static void set_input(dt__instance *in, dt_task *t, const void *input, size_t len)
{
    t->u.entity.has_input = input != NULL;
    t->u.entity.input = input != NULL ? dt__inst_copy(in, input, len) : NULL;
    t->u.entity.input_len = input != NULL ? len : 0;
}

void dt_signal_entity(dt_orch_ctx *in, const char *name, const char *key, const char *operation,
                      const void *input, size_t len, int64_t at_ms)
{
    dt__task_check_in_code(in, "dt_signal_entity");
    const char *target = entity_id(in, name, key);
    check_operation(in, operation);
    dt_task *t = dt__task_new_action(in, TASK_ENTITY_SIGNAL);
    t->u.entity.target = target;
    t->u.entity.operation = dt__inst_strdup(in, operation);
    t->u.entity.request_id = action_ref(in, "esig", t->id);
    t->u.entity.at_ms = at_ms > 0 ? at_ms : 0;
    set_input(in, t, input, len);
    t->state = TASK_OK;
}

static bool locked_here(const dt__instance *in, const char *target)
{
    for (size_t i = 0; i < in->cs_n; i++) {
        if (strcmp(in->cs_set[i], target) == 0) {
            return true;
        }
    }
    return false;
}

dt_task *dt_call_entity(dt_orch_ctx *in, const char *name, const char *key, const char *operation,
                        const void *input, size_t len)
{
    dt__task_check_in_code(in, "dt_call_entity");
    const char *target = entity_id(in, name, key);
    check_operation(in, operation);
    if (in->cs_id != NULL && !locked_here(in, target)) {
        misuse(in, "inside a critical section only the locked entities can be called");
    }
    dt_task *t = dt__task_new_action(in, TASK_ENTITY_CALL);
    t->u.entity.target = target;
    t->u.entity.operation = dt__inst_strdup(in, operation);
    t->u.entity.request_id = action_ref(in, "ecall", t->id);
    set_input(in, t, input, len);
    return t;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

dt_task *dt_lock_entities(dt_orch_ctx *in, const dt_entity_ref *entities, size_t n)
{
    dt__task_check_in_code(in, "dt_lock_entities");
    if (in->cs_id != NULL) {
        misuse(in, "critical sections do not nest: unlock the open one first");
    }
    if (n == 0 || entities == NULL) {
        misuse(in, "dt_lock_entities needs at least one entity");
    }
    const char **set = dt__inst_alloc(in, n * sizeof(*set));
    for (size_t i = 0; i < n; i++) {
        set[i] = entity_id(in, entities[i].name, entities[i].key);
    }
    qsort(set, n, sizeof(*set), cmp_str);
    size_t m = 0; /* without repeats */
    for (size_t i = 0; i < n; i++) {
        if (m == 0 || strcmp(set[m - 1], set[i]) != 0) {
            set[m++] = set[i];
        }
    }
    dt_task *t = dt__task_new_action(in, TASK_ENTITY_LOCK);
    t->u.entity.request_id = action_ref(in, "elock", t->id);
    t->u.entity.lock_set = set;
    t->u.entity.n_lock = m;
    in->cs_id = t->u.entity.request_id;
    in->cs_set = set;
    in->cs_n = m;
    in->cs_granted = false;
    return t;
}

void dt_unlock_entities(dt_orch_ctx *in)
{
    dt__task_check_in_code(in, "dt_unlock_entities");
    if (in->cs_id == NULL) {
        return;
    }
    for (size_t i = 0; i < in->cs_n; i++) {
        dt_task *t = dt__task_new_action(in, TASK_ENTITY_UNLOCK);
        t->u.entity.target = in->cs_set[i];
        t->u.entity.request_id = in->cs_id;
        t->state = TASK_OK;
    }
    in->cs_id = NULL;
    in->cs_set = NULL;
    in->cs_n = 0;
    in->cs_granted = false;
}

bool dt_in_critical_section(dt_orch_ctx *in)
{
    return in->cs_id != NULL;
}

/* ---- history events ---- */

static Dtpb__Payload *str_payload(dt__arena *a, const char *s)
{
    return s != NULL ? dt__emit_payload(a, (const uint8_t *)s, strlen(s)) : NULL;
}

static Dtpb__Payload *input_payload(dt__arena *a, const dt_task *t, bool *ok)
{
    if (!t->u.entity.has_input) {
        return NULL;
    }
    Dtpb__Payload *p = dt__emit_payload(a, t->u.entity.input, t->u.entity.input_len);
    *ok = *ok && p != NULL;
    return p;
}

static bool emit_unlock(dt__arena *a, Dtpb__HistoryEvent *ev, const char *cs, const char *target)
{
    Dtpb__EntityUnlockSentEvent *u = dt__arena_alloc(a, sizeof(*u));
    if (u == NULL) {
        return false;
    }
    dtpb__entity_unlock_sent_event__init(u);
    u->critical_section_id = dt__arena_strdup(a, cs);
    u->target_instance_id = str_payload(a, target);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT;
    ev->entity_unlock_sent = u;
    return u->critical_section_id != NULL && u->target_instance_id != NULL;
}

bool dt__emit_entity_action(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t)
{
    bool ok = true;
    switch (t->kind) {
    case TASK_ENTITY_SIGNAL: {
        Dtpb__EntityOperationSignaledEvent *s = dt__arena_alloc(a, sizeof(*s));
        if (s == NULL) {
            return false;
        }
        dtpb__entity_operation_signaled_event__init(s);
        s->request_id = dt__arena_strdup(a, t->u.entity.request_id);
        s->operation = dt__arena_strdup(a, t->u.entity.operation);
        s->input = input_payload(a, t, &ok);
        s->target_instance_id = str_payload(a, t->u.entity.target);
        if (t->u.entity.at_ms > 0) {
            s->scheduled_time = dt__ts_from_ms(a, t->u.entity.at_ms);
            ok = ok && s->scheduled_time != NULL;
        }
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
        ev->entity_operation_signaled = s;
        return ok && s->request_id != NULL && s->operation != NULL && s->target_instance_id != NULL;
    }
    case TASK_ENTITY_CALL: {
        Dtpb__EntityOperationCalledEvent *c = dt__arena_alloc(a, sizeof(*c));
        if (c == NULL) {
            return false;
        }
        dtpb__entity_operation_called_event__init(c);
        c->request_id = dt__arena_strdup(a, t->u.entity.request_id);
        c->operation = dt__arena_strdup(a, t->u.entity.operation);
        c->input = input_payload(a, t, &ok);
        c->target_instance_id = str_payload(a, t->u.entity.target);
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED;
        ev->entity_operation_called = c;
        return ok && c->request_id != NULL && c->operation != NULL && c->target_instance_id != NULL;
    }
    case TASK_ENTITY_LOCK: {
        Dtpb__EntityLockRequestedEvent *l = dt__arena_alloc(a, sizeof(*l));
        char **set = dt__arena_calloc(a, t->u.entity.n_lock, sizeof(char *));
        if (l == NULL || set == NULL) {
            return false;
        }
        dtpb__entity_lock_requested_event__init(l);
        l->critical_section_id = dt__arena_strdup(a, t->u.entity.request_id);
        for (size_t i = 0; i < t->u.entity.n_lock; i++) {
            set[i] = dt__arena_strdup(a, t->u.entity.lock_set[i]);
            ok = ok && set[i] != NULL;
        }
        l->lock_set = set;
        l->n_lock_set = t->u.entity.n_lock;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED;
        ev->entity_lock_requested = l;
        return ok && l->critical_section_id != NULL;
    }
    case TASK_ENTITY_UNLOCK:
        return emit_unlock(a, ev, t->u.entity.request_id, t->u.entity.target);
    default:
        return false;
    }
}

bool dt__entity_end_unlocks(dt__instance *in, dt__arena *a, int64_t now, Dtpb__HistoryEvent ***out,
                            size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (in->cs_id == NULL) {
        return true;
    }
    Dtpb__HistoryEvent **evs = dt__arena_calloc(a, in->cs_n, sizeof(*evs));
    if (evs == NULL) {
        return false;
    }
    for (size_t i = 0; i < in->cs_n; i++) {
        evs[i] = dt__emit_new(a, -1, now);
        if (evs[i] == NULL || !emit_unlock(a, evs[i], in->cs_id, in->cs_set[i])) {
            return false;
        }
    }
    *out = evs;
    *n_out = in->cs_n;
    return true;
}

/* ---- answers ---- */

/* The pending task of `kind` whose request (or critical section) ID is `ref`, or NULL. */
static dt_task *pending_with(dt__instance *in, task_kind kind, const char *ref)
{
    for (int32_t id = 0; ref != NULL && id < in->next_id; id++) {
        dt_task *t = in->tasks[id];
        if (t->kind == kind && t->state == TASK_PENDING &&
            strcmp(t->u.entity.request_id, ref) == 0) {
            return t;
        }
    }
    return NULL;
}

bool dt__entity_apply_result(dt__instance *in, const Dtpb__HistoryEvent *ev)
{
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_COMPLETED: {
        const Dtpb__EntityOperationCompletedEvent *c = ev->entity_operation_completed;
        dt_task *t = pending_with(in, TASK_ENTITY_CALL, c->request_id);
        if (t != NULL) {
            const Dtpb__Payload *p = c->output;
            dt__task_complete(in, t,
                              p != NULL ? dt__inst_copy(in, p->value.data, p->value.len) : NULL,
                              p != NULL ? p->value.len : 0, p != NULL, NULL);
        }
        return true;
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_FAILED: {
        const Dtpb__EntityOperationFailedEvent *f = ev->entity_operation_failed;
        dt_task *t = pending_with(in, TASK_ENTITY_CALL, f->request_id);
        if (t != NULL) {
            dt__task_complete(in, t, NULL, 0, false, dt__failure_from_pb(in, f->failure_details));
        }
        return true;
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED: {
        const char *cs = ev->entity_lock_granted->critical_section_id;
        dt_task *t = pending_with(in, TASK_ENTITY_LOCK, cs);
        if (t != NULL) {
            if (in->cs_id != NULL && strcmp(in->cs_id, cs) == 0) {
                in->cs_granted = true;
            }
            dt__task_complete(in, t, NULL, 0, false, NULL);
        }
        return true;
    }
    default:
        return false;
    }
}
