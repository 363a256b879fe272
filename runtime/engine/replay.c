/*
 * Applying history events to an instance: the heart of deterministic replay.
 *
 * Events that record actions (TaskScheduled, TimerCreated, SubOrchestrationInstanceCreated,
 * EventSent, MessagePublished) are checked against the action the code took under the same
 * sequence number; a mismatch is a non-determinism error that fails the instance with a message
 * naming both sides. Nothing is guessed. Result events complete tasks; EventRaised is delivered
 * or buffered; suspend holds back every event but resume and terminate until resume.
 */
#include <stdio.h>
#include <string.h>

#include "instance_int.h"

static const char *kind_name(task_kind k)
{
    switch (k) {
    case TASK_ACTIVITY:
        return "activity";
    case TASK_TIMER:
        return "timer";
    case TASK_SUB_ORCH:
        return "sub-orchestration";
    case TASK_SEND_EVENT:
        return "send-event";
    case TASK_PUBLISH:
        return "publish";
    case TASK_ENTITY_SIGNAL:
        return "entity-signal";
    case TASK_ENTITY_CALL:
        return "entity-call";
    case TASK_ENTITY_LOCK:
        return "entity-lock";
    case TASK_ENTITY_UNLOCK:
        return "entity-unlock";
    default:
        return "task";
    }
}

/* The name of an action task (activity, sub-orchestration, send-event, publish), "" for any
 * other kind: only those kinds keep their name in u.action (the union holds other members for
 * the rest, so reading u.action.name there reads a timer's time or a child array as a pointer). */
static const char *action_name(const dt_task *t)
{
    switch (t->kind) {
    case TASK_ACTIVITY:
    case TASK_SUB_ORCH:
    case TASK_SEND_EVENT:
    case TASK_PUBLISH:
        return t->u.action.name != NULL ? t->u.action.name : "";
    case TASK_ENTITY_SIGNAL:
    case TASK_ENTITY_CALL:
    case TASK_ENTITY_UNLOCK:
        return t->u.entity.target != NULL ? t->u.entity.target : ""; /* the entity ID */
    default:
        return "";
    }
}

static void nondeterminism(dt__instance *in, int32_t id, const char *hist_kind,
                           const char *hist_name, const dt_task *t)
{
    const dt_failure *f;
    if (t == NULL) {
        f = dt__failure_make(in, DT_FAILURE_NONDETERMINISM, NULL,
                             "history has %s '%s' as task #%d, but the orchestration took only %d "
                             "actions (expected %s '%s', found nothing)",
                             hist_kind, hist_name, (int)id, (int)in->next_id, hist_kind, hist_name);
    } else {
        f = dt__failure_make(in, DT_FAILURE_NONDETERMINISM, NULL,
                             "task #%d: history has %s '%s', but the orchestration took %s '%s' "
                             "(expected %s '%s', found %s '%s')",
                             (int)id, hist_kind, hist_name, kind_name(t->kind), action_name(t),
                             hist_kind, hist_name, kind_name(t->kind), action_name(t));
    }
    dt__instance_end(in, END_FAILED, NULL, 0, false, f);
    in->discard_actions = true;
}

/* Confirms that action `id` recorded in history is the one the code took. */
static void confirm(dt__instance *in, int32_t id, task_kind kind, const char *hist_kind,
                    const char *name)
{
    dt_task *t = dt__task_by_id(in, id);
    bool same = t != NULL && t->kind == kind && id >= in->confirmed_id;
    if (same && name != NULL) {
        same = strcmp(action_name(t), name) == 0;
    }
    if (!same) {
        nondeterminism(in, id, hist_kind, name != NULL ? name : "", t);
        return;
    }
    in->confirmed_id = id + 1;
}

static const dt_failure *task_failure(dt__instance *in, const Dtpb__TaskFailureDetails *d)
{
    return dt__failure_from_pb(in, d);
}

/* Completes action task `id` of kind `kind` with a result or failure from history. Results for
 * unknown or finished tasks are ignored: they are duplicates or late answers to a retried call. */
static void complete(dt__instance *in, int32_t id, task_kind kind, const Dtpb__Payload *result,
                     const Dtpb__TaskFailureDetails *failure, bool failed)
{
    dt_task *t = dt__task_by_id(in, id);
    if (t == NULL || t->kind != kind || t->state != TASK_PENDING) {
        return;
    }
    if (failed) {
        dt__task_complete(in, t, NULL, 0, false, task_failure(in, failure));
        return;
    }
    const uint8_t *out = NULL;
    size_t len = 0;
    if (result != NULL) {
        len = result->value.len;
        out = dt__inst_copy(in, result->value.data, len);
    }
    dt__task_complete(in, t, out, len, result != NULL, NULL);
}

static void hold(dt__instance *in, const Dtpb__HistoryEvent *ev)
{
    /* Deep copy into the arena: the event outlives this episode's input. */
    size_t n = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t *buf = dt__arena_alloc(in->arena, n > 0 ? n : 1);
    ProtobufCAllocator *pa = dt__arena_pb_allocator(in->arena);
    held_event *h = dt__inst_alloc(in, sizeof(*h));
    if (buf == NULL || pa == NULL || h == NULL) {
        in->oom = true;
        return;
    }
    protobuf_c_message_pack(&ev->base, buf);
    h->ev = dtpb__history_event__unpack(pa, n, buf);
    if (h->ev == NULL) {
        in->oom = true;
        return;
    }
    if (in->held_tail != NULL) {
        in->held_tail->next = h;
    } else {
        in->held_head = h;
    }
    in->held_tail = h;
}

static void apply_started(dt__instance *in, const Dtpb__ExecutionStartedEvent *e)
{
    if (in->started) {
        return;
    }
    in->started = true;
    in->name = dt__inst_strdup(in, e->name != NULL ? e->name : "");
    if (e->version != NULL) {
        in->version =
            (const char *)dt__inst_copy(in, e->version->value.data, e->version->value.len);
    }
    if (e->orchestration_instance != NULL && e->orchestration_instance->execution_id != NULL) {
        const Dtpb__Payload *x = e->orchestration_instance->execution_id;
        in->execution_id = (const char *)dt__inst_copy(in, x->value.data, x->value.len);
    } else {
        in->execution_id = "";
    }
    if (e->input != NULL) {
        in->has_input = true;
        in->input_len = e->input->value.len;
        in->input = dt__inst_copy(in, e->input->value.data, in->input_len);
    }
    const dt__engine_config *cfg = dt__engine_cfg(in->engine);
    char why[512] = "";
    dt_status st = cfg->lookup == NULL ? DT_EUNKNOWNNAME
                                       : cfg->lookup(in->name, in->version, cfg->lookup_ctx,
                                                     &in->fn, &in->fn_data, why, sizeof(why));
    if (st != DT_OK) {
        if (why[0] == '\0') {
            snprintf(why, sizeof(why), "no orchestrator named '%s' is registered", in->name);
        }
        dt__instance_end(in, END_FAILED, NULL, 0, false,
                         dt__failure_make_final(in,
                                                st == DT_EVERSION ? DT_FAILURE_VERSION_MISMATCH
                                                                  : DT_FAILURE_UNKNOWN_ORCHESTRATOR,
                                                "%s", why));
        return;
    }
    if (dt__instance_start(in) != DT_OK) {
        in->oom = true;
    }
}

static void apply_terminated(dt__instance *in, const Dtpb__ExecutionTerminatedEvent *e)
{
    const Dtpb__Payload *p = e->input;
    const uint8_t *reason = p != NULL ? dt__inst_copy(in, p->value.data, p->value.len) : NULL;
    dt__instance_end(in, END_TERMINATED, reason, p != NULL ? p->value.len : 0, p != NULL, NULL);
    in->discard_actions = true;
}

static void apply_resumed(dt__instance *in)
{
    if (!in->suspended) {
        return;
    }
    in->suspended = false;
    held_event *h = in->held_head;
    in->held_head = in->held_tail = NULL;
    /* Suspend and resume are never held, so replaying the held events cannot suspend again. */
    for (; h != NULL; h = h->next) {
        dt__instance_apply(in, h->ev);
    }
}

static void apply_raised(dt__instance *in, const Dtpb__EventRaisedEvent *e)
{
    const Dtpb__Payload *p = e->input;
    dt__instance_deliver_event(in, e->name != NULL ? e->name : "", p != NULL ? p->value.data : NULL,
                               p != NULL ? p->value.len : 0, p != NULL);
}

static const char *payload_text(dt__instance *in, const Dtpb__Payload *p)
{
    return p != NULL ? (const char *)dt__inst_copy(in, p->value.data, p->value.len) : "";
}

/* Entity actions (entity_tasks.c), checked by the entity ID they address. An unlock the engine
 * sent when the execution ended is not an action (event id -1): nothing to check. */
static bool apply_entity_record(dt__instance *in, const Dtpb__HistoryEvent *ev)
{
    int32_t id = ev->event_id;
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED:
        confirm(in, id, TASK_ENTITY_SIGNAL, "entity-signal",
                payload_text(in, ev->entity_operation_signaled->target_instance_id));
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED:
        confirm(in, id, TASK_ENTITY_CALL, "entity-call",
                payload_text(in, ev->entity_operation_called->target_instance_id));
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED:
        confirm(in, id, TASK_ENTITY_LOCK, "entity-lock", NULL);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT:
        if (id >= 0) {
            confirm(in, id, TASK_ENTITY_UNLOCK, "entity-unlock",
                    payload_text(in, ev->entity_unlock_sent->target_instance_id));
        }
        return true;
    default:
        return false;
    }
}

/* Events that record the code's own actions. */
static bool apply_action_record(dt__instance *in, const Dtpb__HistoryEvent *ev)
{
    int32_t id = ev->event_id;
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
        confirm(in, id, TASK_ACTIVITY, "activity", ev->task_scheduled->name);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
        confirm(in, id, TASK_TIMER, "timer", NULL);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
        confirm(in, id, TASK_SUB_ORCH, "sub-orchestration",
                ev->sub_orchestration_instance_created->name);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
        confirm(in, id, TASK_SEND_EVENT, "send-event", ev->event_sent->name);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED:
        confirm(in, id, TASK_PUBLISH, "publish", ev->message_published->subject);
        return true;
    default:
        return apply_entity_record(in, ev);
    }
}

/* Events that deliver results. */
static bool apply_result(dt__instance *in, const Dtpb__HistoryEvent *ev)
{
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
        complete(in, ev->task_completed->task_scheduled_id, TASK_ACTIVITY,
                 ev->task_completed->result, NULL, false);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
        complete(in, ev->task_failed->task_scheduled_id, TASK_ACTIVITY, NULL,
                 ev->task_failed->failure_details, true);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
        complete(in, ev->sub_orchestration_instance_completed->task_scheduled_id, TASK_SUB_ORCH,
                 ev->sub_orchestration_instance_completed->result, NULL, false);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
        complete(in, ev->sub_orchestration_instance_failed->task_scheduled_id, TASK_SUB_ORCH, NULL,
                 ev->sub_orchestration_instance_failed->failure_details, true);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
        complete(in, ev->timer_fired->timer_id, TASK_TIMER, NULL, NULL, false);
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED:
        apply_raised(in, ev->event_raised);
        return true;
    default:
        return dt__entity_apply_result(in, ev);
    }
}

void dt__instance_apply(dt__instance *in, const Dtpb__HistoryEvent *ev)
{
    Dtpb__HistoryEvent__EventTypeCase k = ev->event_type_case;
    int64_t ts = dt__ts_to_ms(ev->timestamp);
    if (ts > in->last_ts) {
        in->last_ts = ts;
    }
    if (in->end == END_CONTINUED && in->keep_events &&
        k == DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED) {
        /* Arrived in the episode that continued as new: it belongs to the next execution. */
        const Dtpb__Payload *p = ev->event_raised->input;
        dt__instance_buffer_event(in, ev->event_raised->name != NULL ? ev->event_raised->name : "",
                                  p != NULL ? p->value.data : NULL, p != NULL ? p->value.len : 0,
                                  p != NULL);
        return;
    }
    if (in->end != END_NONE || in->oom) {
        return;
    }
    if (k == DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED) {
        int64_t t = dt__ts_to_ms(ev->timestamp);
        if (t > in->now_ms) { /* orchestration time never goes backwards */
            in->now_ms = t;
        }
        return;
    }
    if (k == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED) {
        apply_terminated(in, ev->execution_terminated);
        return;
    }
    if (k == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED) {
        apply_resumed(in);
        dt__instance_drive(in);
        return;
    }
    if (k == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED) {
        in->suspended = true;
        return;
    }
    if (apply_action_record(in, ev)) {
        return;
    }
    if (in->suspended && k != DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
        hold(in, ev);
        return;
    }
    switch (k) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED:
        apply_started(in, ev->execution_started);
        return;
    default:
        if (apply_result(in, ev)) {
            dt__instance_drive(in);
        }
        return;
    }
}
