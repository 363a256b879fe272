/*
 * The entity half of converting an SDK orchestration's response (convert.c has the rest): a
 * SendEntityMessage action becomes the history event the C engine records for the same action
 * (EntityOperationSignaled / Called, EntityLockRequested, EntityUnlockSent, with the target in
 * target_instance_id), from which the worker sends the entity its message (worker/
 * entity_actions.c). And, as the engine does for C orchestrations, an execution that ends in any
 * way with a critical section open gets the unlocks its code did not send (event id -1), so an
 * SDK orchestration that fails or is terminated inside a section never leaves entities locked.
 */
#include <string.h>

#include "common_int.h"
#include "convert_int.h"
#include "durabletask/entity.h"
#include "pb_int.h"
#include "protocol_int.h"

/* An entity ID whose name part is lower case (the form every entity message is addressed by: it
 * decides the partition). */
static bool entity_id_ok(const Dtpb__Payload *p)
{
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1], id[DT_ENTITY_ID_MAX + 1];
    if (p == NULL || p->value.len == 0 || p->value.len > DT_ENTITY_ID_MAX ||
        memchr(p->value.data, '\0', p->value.len) != NULL) {
        return false;
    }
    memcpy(id, p->value.data, p->value.len);
    id[p->value.len] = '\0';
    if (dt_entity_id_parse(id, name, sizeof name, key, sizeof key) != DT_OK) {
        return false;
    }
    for (const char *c = id + 1; *c != '@'; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            return false;
        }
    }
    return true;
}

static bool text_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

/* The longest request / critical-section ID taken (message identities derive from it). */
#define REQUEST_ID_MAX 200

Dtpb__HistoryEvent *dt__remote_entity_event(dt__arena *a, int32_t id, int64_t now_ms,
                                            const Dtpb__Remote__SendEntityMessageAction *m,
                                            const char **why)
{
    *why = NULL;
    Dtpb__HistoryEvent *ev = dt__emit_new(a, id, now_ms);
    if (ev == NULL) {
        return NULL;
    }
    switch (m->entity_message_type_case) {
    case DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_OPERATION_SIGNALED: {
        Dtpb__EntityOperationSignaledEvent *s = m->entity_operation_signaled;
        if (!text_ok(s->request_id, REQUEST_ID_MAX) || !text_ok(s->operation, DT_NAME_MAX) ||
            !entity_id_ok(s->target_instance_id)) {
            *why = "an entity signal needs a request ID, an operation name (1..128 bytes) and a "
                   "target entity ID (\"@<lower-case name>@<key>\")";
            return NULL;
        }
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
        ev->entity_operation_signaled = s;
        return ev;
    }
    case DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_OPERATION_CALLED: {
        Dtpb__EntityOperationCalledEvent *c = m->entity_operation_called;
        if (!text_ok(c->request_id, REQUEST_ID_MAX) || !text_ok(c->operation, DT_NAME_MAX) ||
            !entity_id_ok(c->target_instance_id)) {
            *why = "an entity call needs a request ID, an operation name (1..128 bytes) and a "
                   "target entity ID (\"@<lower-case name>@<key>\")";
            return NULL;
        }
        if (c->scheduled_time != NULL) {
            *why = "an entity call cannot be scheduled for later";
            return NULL;
        }
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED;
        ev->entity_operation_called = c;
        return ev;
    }
    case DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_LOCK_REQUESTED: {
        Dtpb__EntityLockRequestedEvent *l = m->entity_lock_requested;
        bool ok = text_ok(l->critical_section_id, REQUEST_ID_MAX) && l->n_lock_set > 0;
        for (size_t i = 0; ok && i < l->n_lock_set; i++) {
            Dtpb__Payload p = {.base = {0},
                               .value = {strlen(l->lock_set[i]), (uint8_t *)l->lock_set[i]}};
            ok = entity_id_ok(&p) && (i == 0 || strcmp(l->lock_set[i - 1], l->lock_set[i]) < 0);
        }
        if (!ok) {
            *why = "a lock request needs a critical section ID and a sorted set of distinct "
                   "entity IDs";
            return NULL;
        }
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED;
        ev->entity_lock_requested = l;
        return ev;
    }
    case DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_UNLOCK_SENT: {
        Dtpb__EntityUnlockSentEvent *u = m->entity_unlock_sent;
        if (!text_ok(u->critical_section_id, REQUEST_ID_MAX) ||
            !entity_id_ok(u->target_instance_id)) {
            *why = "an unlock needs a critical section ID and a target entity ID";
            return NULL;
        }
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT;
        ev->entity_unlock_sent = u;
        return ev;
    }
    default:
        *why = "an entity message of no known kind";
        return NULL;
    }
}

static const Dtpb__HistoryEvent *at(Dtpb__HistoryEvent *const *past, size_t n_past,
                                    Dtpb__HistoryEvent *const *added, size_t i)
{
    return i < n_past ? past[i] : added[i - n_past];
}

static bool payload_is(const Dtpb__Payload *p, const char *s)
{
    return p != NULL && p->value.len == strlen(s) && memcmp(p->value.data, s, p->value.len) == 0;
}

bool dt__remote_end_unlocks(dt__arena *a, int64_t now_ms, Dtpb__HistoryEvent *const *past,
                            size_t n_past, Dtpb__HistoryEvent *const *added, size_t n_added,
                            Dtpb__HistoryEvent ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    /* The last section opened in this execution (sections do not nest). */
    const Dtpb__EntityLockRequestedEvent *cs = NULL;
    size_t from = 0;
    for (size_t i = 0; i < n_past + n_added; i++) {
        const Dtpb__HistoryEvent *ev = at(past, n_past, added, i);
        if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
            cs = NULL;
        } else if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED) {
            cs = ev->entity_lock_requested;
            from = i + 1;
        }
    }
    if (cs == NULL) {
        return true;
    }
    Dtpb__HistoryEvent **evs = dt__arena_calloc(a, cs->n_lock_set, sizeof(*evs));
    if (evs == NULL) {
        return false;
    }
    for (size_t k = 0; k < cs->n_lock_set; k++) {
        bool sent = false;
        for (size_t i = from; !sent && i < n_past + n_added; i++) {
            const Dtpb__HistoryEvent *ev = at(past, n_past, added, i);
            sent =
                ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT &&
                strcmp(ev->entity_unlock_sent->critical_section_id, cs->critical_section_id) == 0 &&
                payload_is(ev->entity_unlock_sent->target_instance_id, cs->lock_set[k]);
        }
        if (sent) {
            continue;
        }
        Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, now_ms);
        Dtpb__EntityUnlockSentEvent *u = dt__arena_alloc(a, sizeof(*u));
        if (ev == NULL || u == NULL) {
            return false;
        }
        dtpb__entity_unlock_sent_event__init(u);
        u->critical_section_id = cs->critical_section_id;
        u->target_instance_id =
            dt__emit_payload(a, (const uint8_t *)cs->lock_set[k], strlen(cs->lock_set[k]));
        if (u->target_instance_id == NULL) {
            return false;
        }
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT;
        ev->entity_unlock_sent = u;
        evs[(*n_out)++] = ev;
    }
    *out = evs;
    return true;
}
