/*
 * The ingress route of entity signals: dt.<hub>.in.signal.<entity name>, the key in
 * Dt-Entity-Key, the operation in Dt-Operation, the input in the body, and optionally
 * Dt-Signal-At (ms since the Unix epoch) for a signal delivered later. Becomes an
 * OrchestrationMessage with an EntityOperationSignaled event for the entity's partition; its
 * identity comes from the request's (so a redelivered request is one signal).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity/entity_int.h"
#include "ingress_int.h"
#include "engine_int.h"
#include "worker_int.h"

#define SIGNAL_AT_MAX_MS 253402300799999LL

static const char *header(dt_broker_msg *m, const char *name)
{
    const char *v = NULL;
    return dt_broker_msg_header(m, name, &v) == DT_OK && v[0] != '\0' ? v : NULL;
}

const char *dt__ingress_build_signal(dt__arena *a, dt_broker_msg *m, const char *name,
                                     Dtpb__OrchestrationMessage *om, dt__routed *r, const char *key)
{
    const char *ekey = header(m, DT_HDR_ENTITY_KEY), *op = header(m, DT_HDR_OPERATION);
    char id[DT_ENTITY_ID_MAX + 1];
    if (ekey == NULL || dt_entity_id(name, ekey, id, sizeof(id)) != DT_OK) {
        return "missing or invalid Dt-Entity-Key header, or invalid entity name (names: "
               "letters, digits, '-', '_'; keys: printable ASCII without spaces)";
    }
    if (op == NULL || strlen(op) > DT_NAME_MAX) {
        return "missing or invalid Dt-Operation header";
    }
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__EntityOperationSignaledEvent *s = dt__arena_alloc(a, sizeof(*s));
    if (ev == NULL || s == NULL) {
        return "out of memory";
    }
    dtpb__entity_operation_signaled_event__init(s);
    s->operation = dt__arena_strdup(a, op);
    size_t n = dt_broker_msg_len(m);
    s->input = n > 0 ? dt__emit_payload(a, dt_broker_msg_data(m), n) : NULL;
    const char *at = header(m, DT_HDR_SIGNAL_AT);
    if (at != NULL) {
        char *end = NULL;
        errno = 0;
        long long ms = strtoll(at, &end, 10);
        if (end == at || *end != '\0' || errno != 0 || ms < 0 || ms > SIGNAL_AT_MAX_MS) {
            return "invalid Dt-Signal-At (milliseconds since the Unix epoch, 0 to "
                   "253402300799999)";
        }
        s->scheduled_time = dt__ts_from_ms(a, ms);
    }
    int w = snprintf(r->dedupe, sizeof(r->dedupe), "%s/-/in/%s", id, key);
    if (w < 0 || (size_t)w >= sizeof(r->dedupe)) {
        return "Nats-Msg-Id too long";
    }
    s->request_id = r->dedupe;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
    ev->entity_operation_signaled = s;
    dt__orch_msg_init(om, dt__arena_strdup(a, id), "", ev, r->dedupe);
    return om->instance_id != NULL ? NULL : "out of memory";
}
