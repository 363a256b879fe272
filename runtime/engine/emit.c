/* Building the history events that record new actions, plus time and name helpers. */
#include <ctype.h>
#include <string.h>

#include "instance_int.h"

bool dt__name_eq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) {
            return false;
        }
    }
    return *a == *b;
}

static Dtpb__Payload *opt_payload(dt__arena *a, bool has, const uint8_t *data, size_t len, bool *ok)
{
    if (!has) {
        return NULL;
    }
    Dtpb__Payload *p = dt__emit_payload(a, data, len);
    if (p == NULL) {
        *ok = false;
    }
    return p;
}

/* Copies a string into the arena; flags *ok on failure. NULL stays NULL. */
static char *str(dt__arena *a, const char *s, bool *ok)
{
    if (s == NULL) {
        return NULL;
    }
    char *c = dt__arena_strdup(a, s);
    if (c == NULL) {
        *ok = false;
    }
    return c;
}

static Dtpb__Payload *opt_string(dt__arena *a, const char *s, bool *ok)
{
    return opt_payload(a, s != NULL, (const uint8_t *)s, s != NULL ? strlen(s) : 0, ok);
}

/* The protobuf-c message for each variant has its own init; allocate and init it. */
#define NEW_MSG(a, T, init) ((T *)new_msg((a), sizeof(T), (void (*)(void *))(init)))

static void *new_msg(dt__arena *a, size_t size, void (*init)(void *))
{
    void *m = dt__arena_alloc(a, size);
    if (m != NULL) {
        init(m);
    }
    return m;
}

static bool emit_activity(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t)
{
    bool ok = true;
    Dtpb__TaskScheduledEvent *e =
        NEW_MSG(a, Dtpb__TaskScheduledEvent, dtpb__task_scheduled_event__init);
    if (e == NULL) {
        return false;
    }
    e->name = str(a, t->u.action.name, &ok);
    e->task_queue = str(a, t->u.action.task_queue != NULL ? t->u.action.task_queue : "", &ok);
    e->input = opt_payload(a, t->u.action.has_input, t->u.action.input, t->u.action.input_len, &ok);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED;
    ev->task_scheduled = e;
    return ok;
}

static bool emit_sub_orch(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t)
{
    bool ok = true;
    Dtpb__SubOrchestrationInstanceCreatedEvent *e =
        NEW_MSG(a, Dtpb__SubOrchestrationInstanceCreatedEvent,
                dtpb__sub_orchestration_instance_created_event__init);
    if (e == NULL) {
        return false;
    }
    e->instance_id = str(a, t->u.action.target, &ok);
    e->name = str(a, t->u.action.name, &ok);
    e->version = opt_string(a, t->u.action.version, &ok);
    e->input = opt_payload(a, t->u.action.has_input, t->u.action.input, t->u.action.input_len, &ok);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED;
    ev->sub_orchestration_instance_created = e;
    return ok;
}

static bool emit_timer(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t)
{
    Dtpb__TimerCreatedEvent *e =
        NEW_MSG(a, Dtpb__TimerCreatedEvent, dtpb__timer_created_event__init);
    if (e == NULL) {
        return false;
    }
    e->fire_at = dt__ts_from_ms(a, t->u.timer.fire_at_ms);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED;
    ev->timer_created = e;
    return e->fire_at != NULL;
}

static bool emit_send_event(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t)
{
    bool ok = true;
    Dtpb__EventSentEvent *e = NEW_MSG(a, Dtpb__EventSentEvent, dtpb__event_sent_event__init);
    if (e == NULL) {
        return false;
    }
    e->instance_id = str(a, t->u.action.target, &ok);
    e->name = str(a, t->u.action.name, &ok);
    e->input = opt_payload(a, t->u.action.has_input, t->u.action.input, t->u.action.input_len, &ok);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT;
    ev->event_sent = e;
    return ok;
}

static bool emit_publish(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t)
{
    bool ok = true;
    Dtpb__MessagePublishedEvent *e =
        NEW_MSG(a, Dtpb__MessagePublishedEvent, dtpb__message_published_event__init);
    if (e == NULL) {
        return false;
    }
    size_t n = t->u.action.n_headers;
    e->subject = str(a, t->u.action.name, &ok);
    e->data.data = dt__arena_memdup(a, t->u.action.input, t->u.action.input_len);
    e->data.len = t->u.action.input_len;
    if (e->data.data == NULL) {
        return false;
    }
    e->n_headers = n;
    e->headers = dt__arena_calloc(a, n > 0 ? n : 1, sizeof(*e->headers));
    if (e->headers == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        Dtpb__MessagePublishedEvent__HeadersEntry *h =
            NEW_MSG(a, Dtpb__MessagePublishedEvent__HeadersEntry,
                    dtpb__message_published_event__headers_entry__init);
        if (h == NULL) {
            return false;
        }
        h->key = str(a, t->u.action.header_names[i], &ok);
        h->value = str(a, t->u.action.header_values[i], &ok);
        e->headers[i] = h;
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED;
    ev->message_published = e;
    return ok;
}

/* Everything the event refers to is copied into `arena`: the instance may be freed first. */
Dtpb__HistoryEvent *dt__emit_action(dt__arena *arena, const dt_task *t, int64_t now_ms)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(arena, t->id, now_ms);
    if (ev == NULL) {
        return NULL;
    }
    bool ok = false;
    switch (t->kind) {
    case TASK_ACTIVITY:
        ok = emit_activity(arena, ev, t);
        break;
    case TASK_SUB_ORCH:
        ok = emit_sub_orch(arena, ev, t);
        break;
    case TASK_TIMER:
        ok = emit_timer(arena, ev, t);
        break;
    case TASK_SEND_EVENT:
        ok = emit_send_event(arena, ev, t);
        break;
    case TASK_PUBLISH:
        ok = emit_publish(arena, ev, t);
        break;
    default:
        ok = dt__emit_entity_action(arena, ev, t); /* entity actions; false for the rest */
        break;
    }
    return ok ? ev : NULL;
}
