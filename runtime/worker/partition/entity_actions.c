/*
 * An orchestration's entity actions to messages (the history event an action recorded becomes
 * the message for the entity, through the outbox): a signal or call names the caller in a call,
 * a lock request goes to the first entity of its sorted set, an unlock to each locked entity.
 * Identities come from the request (or critical-section) ID, which the engine derives from the
 * instance, execution and action number: a re-published row is the same message.
 */
#include <stdio.h>
#include <string.h>

#include "episode_int.h"

static const char *text(dt__arena *a, const Dtpb__Payload *p)
{
    return p != NULL ? dt__arena_memdup(a, p->value.data, p->value.len) : NULL;
}

static Dtpb__Payload *str_payload(dt__arena *a, const char *s)
{
    return dt__emit_payload(a, (const uint8_t *)s, strlen(s));
}

/* Sends `ev` (a copy of the action's variant, made a message) to `target` with identity id. */
static dt_status send_to(dt__episode *e, const char *target, Dtpb__HistoryEvent *ev, const char *id)
{
    if (target == NULL || id == NULL) {
        return DT_ENOMEM;
    }
    return dt__actions_send(e, target, "", ev, id);
}

static char *ref(dt__arena *a, const char *x, const char *kind, const char *y)
{
    size_t n = strlen(x) + strlen(kind) + strlen(y) + 3;
    char *s = dt__arena_alloc(a, n);
    if (s != NULL) {
        snprintf(s, n, "%s/%s/%s", x, kind, y);
    }
    return s;
}

dt_status dt__entity_action(dt__episode *e, const Dtpb__HistoryEvent *rec)
{
    Dtpb__HistoryEvent *ev = dt__actions_event(e);
    if (ev == NULL) {
        return DT_ENOMEM;
    }
    switch (rec->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED: {
        Dtpb__EntityOperationSignaledEvent *s = dt__arena_alloc(e->a, sizeof(*s));
        if (s == NULL) {
            return DT_ENOMEM;
        }
        *s = *rec->entity_operation_signaled;
        s->target_instance_id = NULL; /* in histories only */
        ev->event_type_case = rec->event_type_case;
        ev->entity_operation_signaled = s;
        return send_to(e, text(e->a, rec->entity_operation_signaled->target_instance_id), ev,
                       s->request_id);
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED: {
        Dtpb__EntityOperationCalledEvent *c = dt__arena_alloc(e->a, sizeof(*c));
        if (c == NULL) {
            return DT_ENOMEM;
        }
        *c = *rec->entity_operation_called;
        c->target_instance_id = NULL;
        c->parent_instance_id = str_payload(e->a, e->instance_id);
        c->parent_execution_id = str_payload(e->a, e->execution_id);
        ev->event_type_case = rec->event_type_case;
        ev->entity_operation_called = c;
        return c->parent_instance_id == NULL || c->parent_execution_id == NULL
                   ? DT_ENOMEM
                   : send_to(e, text(e->a, rec->entity_operation_called->target_instance_id), ev,
                             c->request_id);
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED: {
        Dtpb__EntityLockRequestedEvent *l = dt__arena_alloc(e->a, sizeof(*l));
        if (l == NULL || rec->entity_lock_requested->n_lock_set == 0) {
            return l == NULL ? DT_ENOMEM : DT_OK;
        }
        *l = *rec->entity_lock_requested;
        l->position = 0;
        l->parent_instance_id = str_payload(e->a, e->instance_id);
        ev->event_type_case = rec->event_type_case;
        ev->entity_lock_requested = l;
        return send_to(e, l->lock_set[0], ev, ref(e->a, l->critical_section_id, "req", "0"));
    }
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT: {
        Dtpb__EntityUnlockSentEvent *u = dt__arena_alloc(e->a, sizeof(*u));
        const char *target = text(e->a, rec->entity_unlock_sent->target_instance_id);
        if (u == NULL || target == NULL) {
            return DT_ENOMEM;
        }
        *u = *rec->entity_unlock_sent;
        u->target_instance_id = NULL;
        u->parent_instance_id = str_payload(e->a, e->instance_id);
        ev->event_type_case = rec->event_type_case;
        ev->entity_unlock_sent = u;
        return send_to(e, target, ev, ref(e->a, u->critical_section_id, "unlock", target));
    }
    default:
        return DT_OK;
    }
}
