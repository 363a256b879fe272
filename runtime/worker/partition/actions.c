/*
 * Action events to messages: each action an episode took (recorded as a history event) becomes
 * an outbox message with an identity derived from (instance, execution, kind, task number), so
 * that a re-publish after a crash is a duplicate JetStream drops.
 */
#include <stdio.h>
#include <string.h>

#include "episode_int.h"

#define ID_BUF (DT_INSTANCE_ID_MAX * 2 + 64)

/* A task the runtime itself fails at once (for example a queue name that is not a valid subject
 * token), delivered back to this instance like a real result: TaskFailed for an activity,
 * SubOrchestrationInstanceFailed for a sub-orchestration (the engine matches the result's kind
 * to the task's; a TaskFailed for a child would never complete it). */
static dt_status fail_task_now(dt__episode *e, const Dtpb__HistoryEvent *action, const char *type,
                               const char *msg)
{
    int32_t task_id = action->event_id;
    Dtpb__HistoryEvent *ev = dt__actions_event(e);
    Dtpb__TaskFailedEvent *tf = dt__arena_alloc(e->a, sizeof(*tf));
    Dtpb__SubOrchestrationInstanceFailedEvent *sf = dt__arena_alloc(e->a, sizeof(*sf));
    Dtpb__TaskFailureDetails *fd = dt__arena_alloc(e->a, sizeof(*fd));
    if (ev == NULL || tf == NULL || sf == NULL || fd == NULL) {
        return DT_ENOMEM;
    }
    dtpb__task_failure_details__init(fd);
    fd->error_type = (char *)type;
    fd->error_message = dt__arena_strdup(e->a, msg);
    fd->is_non_retriable = true;
    if (action->event_type_case ==
        DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED) {
        dtpb__sub_orchestration_instance_failed_event__init(sf);
        sf->task_scheduled_id = task_id;
        sf->failure_details = fd;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED;
        ev->sub_orchestration_instance_failed = sf;
    } else {
        dtpb__task_failed_event__init(tf);
        tf->task_scheduled_id = task_id;
        tf->failure_details = fd;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED;
        ev->task_failed = tf;
    }
    char id[ID_BUF];
    const char *kind = dt__episode_kind(e, "res");
    dt_status st = kind == NULL
                       ? DT_ENOMEM
                       : dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, kind, task_id);
    return st == DT_OK ? dt__actions_send(e, e->instance_id, e->execution_id, ev, id) : st;
}

/* Room a work item needs besides its payload (its envelope, identities and headers). */
#define ITEM_HEADROOM 4096

/* A request whose message would be over the hub's limit fails its task at once, with the size,
 * instead of leaving an unpublishable row in the outbox. */
static bool too_large(const dt__episode *e, size_t len)
{
    return e->pt->max_msg > 0 && len + ITEM_HEADROOM > e->pt->max_msg;
}

static dt_status fail_too_large(dt__episode *e, const Dtpb__HistoryEvent *action, const char *what,
                                size_t len)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: the request of %zu bytes is over the hub's limit of %zu bytes",
             what, len, e->pt->max_msg > ITEM_HEADROOM ? e->pt->max_msg - ITEM_HEADROOM : 0);
    return fail_task_now(e, action, DT_FAILURE_PAYLOAD_TOO_LARGE, msg);
}

static dt_status schedule_activity(dt__episode *e, const Dtpb__HistoryEvent *ev)
{
    const Dtpb__TaskScheduledEvent *t = ev->task_scheduled;
    const char *queue =
        t->task_queue != NULL && t->task_queue[0] != '\0' ? t->task_queue : "default";
    if (!dt_broker_token_valid(queue) || !dt_broker_token_valid(t->name)) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "activity '%s' on task queue '%s': names must be non-empty "
                 "and contain no spaces, '.', '*' or '>'",
                 t->name, queue);
        return fail_task_now(e, ev, "dt.InvalidName", msg);
    }
    Dtpb__ActivityRequest req = DTPB__ACTIVITY_REQUEST__INIT;
    req.instance_id = (char *)e->instance_id;
    req.execution_id = (char *)e->execution_id;
    req.name = t->name;
    req.task_id = ev->event_id;
    req.input = t->input;
    req.version = t->version;
    req.reply_subject = e->pt->subject;
    req.parent_trace_context = e->start->orchestration_trace_context; /* NULL: not traced */
    req.rewinds = dt__episode_rewinds(e); /* the result's identity (a rewind) */
    const char *kind = dt__episode_kind(e, "act");
    char subject[DT_BROKER_NAME_BUF], id[ID_BUF];
    dt_status st =
        dt_broker_subject(e->pt->w->hub, DT_BROKER_SUBJ_ACT, queue, subject, sizeof(subject));
    if (st == DT_OK) {
        st = kind == NULL
                 ? DT_ENOMEM
                 : dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, kind, ev->event_id);
    }
    size_t len = 0;
    uint8_t *data = st == DT_OK ? dt__pack(e->a, &req.base, &len) : NULL;
    if (st != DT_OK || data == NULL) {
        return st != DT_OK ? st : DT_ENOMEM;
    }
    if (too_large(e, len)) {
        return fail_too_large(e, ev, t->name, len);
    }
    return dt__outbox_add(e->a, &e->out, subject, id, data, len, dt__trace_headers(e));
}

/* A deterministic execution ID for a child: derived from the parent's execution and task, in
 * the form of execution IDs (32 hex digits, whatever the depth: the SDKs derive their children's
 * default IDs from it). */
const char *dt__actions_child_execution(dt__episode *e, int32_t task_id)
{
    char buf[ID_BUF], exec[37];
    const char *kind = dt__episode_kind(e, "x"); /* a child started again after a rewind */
    if (kind == NULL ||
        dt__msg_id(buf, sizeof(buf), e->execution_id, "child", kind, task_id) != DT_OK) {
        return NULL;
    }
    dt__derived_uuid(e->instance_id, buf, exec);
    dt__uuid_compact(exec);
    return dt__arena_strdup(e->a, exec);
}

static dt_status start_child(dt__episode *e, const Dtpb__HistoryEvent *ev)
{
    const Dtpb__SubOrchestrationInstanceCreatedEvent *c = ev->sub_orchestration_instance_created;
    if (!dt__instance_id_valid(c->instance_id)) {
        return fail_task_now(e, ev, "dt.InvalidInstanceId",
                             "sub-orchestration instance IDs are 1..256 printable characters "
                             "without spaces");
    }
    Dtpb__HistoryEvent *start = dt__actions_event(e);
    Dtpb__ExecutionStartedEvent *s = dt__arena_alloc(e->a, sizeof(*s));
    Dtpb__OrchestrationInstance *oi = dt__arena_alloc(e->a, sizeof(*oi));
    Dtpb__OrchestrationInstance *poi = dt__arena_alloc(e->a, sizeof(*poi));
    Dtpb__ParentInstanceInfo *pi = dt__arena_alloc(e->a, sizeof(*pi));
    const char *exec = dt__actions_child_execution(e, ev->event_id);
    if (start == NULL || s == NULL || oi == NULL || poi == NULL || pi == NULL || exec == NULL) {
        return DT_ENOMEM;
    }
    dtpb__execution_started_event__init(s);
    dtpb__orchestration_instance__init(oi);
    dtpb__orchestration_instance__init(poi);
    dtpb__parent_instance_info__init(pi);
    oi->instance_id = c->instance_id;
    oi->execution_id = dt__emit_payload(e->a, (const uint8_t *)exec, strlen(exec));
    poi->instance_id = (char *)e->instance_id;
    poi->execution_id =
        dt__emit_payload(e->a, (const uint8_t *)e->execution_id, strlen(e->execution_id));
    pi->task_scheduled_id = ev->event_id;
    pi->name = dt__emit_payload(e->a, (const uint8_t *)e->start->name, strlen(e->start->name));
    pi->orchestration_instance = poi;
    s->name = c->name;
    s->version = c->version;
    s->input = c->input;
    s->orchestration_instance = oi;
    s->parent_instance = pi;
    dt__trace_child_start(e, s);
    start->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    start->execution_started = s;
    char id[ID_BUF];
    const char *kind = dt__episode_kind(e, "sub");
    dt_status st = kind == NULL ? DT_ENOMEM
                                : dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, kind,
                                             ev->event_id);
    if (st != DT_OK) {
        return st;
    }
    /* A retried child reuses an explicit instance ID: replace it once it has finished. */
    char subject[DT_BROKER_NAME_BUF];
    st = dt__actions_subject(e, c->instance_id, subject, sizeof(subject));
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, c->instance_id, exec, start, id);
    m.reuse_policy = DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_REPLACE_IF_FINISHED;
    size_t len = 0;
    uint8_t *data = st == DT_OK ? dt__pack(e->a, &m.base, &len) : NULL;
    if (st != DT_OK || data == NULL) {
        return st != DT_OK ? st : DT_ENOMEM;
    }
    if (too_large(e, len)) {
        return fail_too_large(e, ev, c->name, len);
    }
    return dt__outbox_add(e->a, &e->out, subject, id, data, len, dt__trace_headers(e));
}

static dt_status send_event(dt__episode *e, const Dtpb__HistoryEvent *ev)
{
    const Dtpb__EventSentEvent *s = ev->event_sent;
    if (!dt__instance_id_valid(s->instance_id)) {
        dt__worker_log(e->pt->w, DT_LOG_WARN, e->instance_id,
                       "dt_send_event to an invalid instance ID: event '%s' dropped", s->name);
        return DT_OK;
    }
    Dtpb__HistoryEvent *raised = dt__actions_event(e);
    Dtpb__EventRaisedEvent *r = dt__arena_alloc(e->a, sizeof(*r));
    if (raised == NULL || r == NULL) {
        return DT_ENOMEM;
    }
    dtpb__event_raised_event__init(r);
    r->name = s->name;
    r->input = s->input;
    raised->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    raised->event_raised = r;
    char id[ID_BUF];
    dt_status st = dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, "evt", ev->event_id);
    return st == DT_OK ? dt__actions_send(e, s->instance_id, "", raised, id) : st;
}

static dt_status publish(dt__episode *e, const Dtpb__HistoryEvent *ev)
{
    const Dtpb__MessagePublishedEvent *p = dt__trace_publish_headers(e, ev->message_published);
    char id[ID_BUF];
    if (p == NULL) {
        return DT_ENOMEM;
    }
    dt__blob headers;
    dt_status st = dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, "pub", ev->event_id);
    if (st == DT_OK) {
        st = dt__outbox_headers(e->a, p, true, &headers);
    }
    if (st != DT_OK) {
        return st;
    }
    return dt__outbox_add(e->a, &e->out, p->subject, id, p->data.data, p->data.len, &headers);
}

static dt_status add_timer(dt__episode *e, const Dtpb__HistoryEvent *ev)
{
    Dtpb__HistoryEvent *fired = dt__actions_event(e);
    Dtpb__TimerFiredEvent *f = dt__arena_alloc(e->a, sizeof(*f));
    char id[ID_BUF];
    if (fired == NULL || f == NULL ||
        !dt__arena_grow(e->a, (void **)&e->timers, &e->cap_timers, e->n_timers,
                        sizeof(*e->timers))) {
        return DT_ENOMEM;
    }
    dtpb__timer_fired_event__init(f);
    f->fire_at = ev->timer_created->fire_at;
    f->timer_id = ev->event_id;
    fired->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED;
    fired->timer_fired = f;
    dt_status st =
        dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, "timer", ev->event_id);
    const char *dedupe = dt__arena_strdup(e->a, id);
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, e->instance_id, e->execution_id, fired, dedupe);
    size_t len = 0;
    uint8_t *data = st == DT_OK ? dt__pack(e->a, &m.base, &len) : NULL;
    if (st != DT_OK || data == NULL || dedupe == NULL) {
        return st != DT_OK ? st : DT_ENOMEM;
    }
    int64_t at = dt__ts_to_ms(ev->timer_created->fire_at);
    e->timers[e->n_timers++] = (dt__timer_new){at, dedupe, {data, len}};
    return DT_OK;
}

dt_status dt__actions_notify_parent(dt__episode *e, const Dtpb__ExecutionStartedEvent *start,
                                    bool ok, const Dtpb__Payload *output,
                                    Dtpb__TaskFailureDetails *failure)
{
    const Dtpb__ParentInstanceInfo *pi = start != NULL ? start->parent_instance : NULL;
    if (pi == NULL || pi->orchestration_instance == NULL) {
        return DT_OK;
    }
    const char *parent = pi->orchestration_instance->instance_id;
    const char *pexec = dt__payload_str(e->a, pi->orchestration_instance->execution_id);
    Dtpb__HistoryEvent *ev = dt__actions_event(e);
    Dtpb__SubOrchestrationInstanceCompletedEvent *c = dt__arena_alloc(e->a, sizeof(*c));
    Dtpb__SubOrchestrationInstanceFailedEvent *f = dt__arena_alloc(e->a, sizeof(*f));
    if (ev == NULL || c == NULL || f == NULL) {
        return DT_ENOMEM;
    }
    if (ok) {
        dtpb__sub_orchestration_instance_completed_event__init(c);
        c->task_scheduled_id = pi->task_scheduled_id;
        c->result = (Dtpb__Payload *)output;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED;
        ev->sub_orchestration_instance_completed = c;
    } else {
        dtpb__sub_orchestration_instance_failed_event__init(f);
        f->task_scheduled_id = pi->task_scheduled_id;
        f->failure_details = failure;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED;
        ev->sub_orchestration_instance_failed = f;
    }
    char id[ID_BUF];
    const char *exec = e->execution_id != NULL ? e->execution_id : "-";
    const char *kind = dt__episode_kind(e, "done");
    dt_status st = kind == NULL ? DT_ENOMEM
                                : dt__msg_id(id, sizeof(id), e->instance_id, exec, kind,
                                             pi->task_scheduled_id);
    return st == DT_OK ? dt__actions_send(e, parent, pexec != NULL ? pexec : "", ev, id) : st;
}

static Dtpb__TaskFailureDetails *terminated_failure(dt__episode *e, const dt__episode_result *r)
{
    Dtpb__TaskFailureDetails *f = dt__arena_alloc(e->a, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    dtpb__task_failure_details__init(f);
    f->error_type = "dt.Terminated";
    f->error_message =
        r->has_output ? (char *)dt__arena_memdup(e->a, r->output, r->output_len) : "terminated";
    return f;
}

/* Publishes the final status to the subject the starter asked for. */
static dt_status publish_result(dt__episode *e, const dt__episode_result *r)
{
    const char *subject = NULL;
    for (size_t i = 0; e->start != NULL && i < e->start->n_tags; i++) {
        if (strcmp(e->start->tags[i]->key, DT__TAG_RESULT_SUBJECT) == 0) {
            subject = e->start->tags[i]->value;
        }
    }
    if (subject == NULL) {
        return DT_OK;
    }
    Dtpb__InstanceStatus s = DTPB__INSTANCE_STATUS__INIT;
    Dtpb__Payload out = DTPB__PAYLOAD__INIT;
    s.instance_id = (char *)e->instance_id;
    s.name = e->start->name;
    s.execution_id = (char *)e->execution_id;
    s.runtime_status = r->status;
    s.last_updated_at = dt__ts_from_ms(e->a, e->b->now_ms);
    s.created_at = dt__ts_from_ms(
        e->a, e->have_row && !e->fresh ? e->row.created_ms
                                       : (e->requested_ms > 0 ? e->requested_ms : e->b->now_ms));
    s.input = e->start->input;
    s.version = e->start->version;
    if (r->has_output) {
        out.value.data = (uint8_t *)r->output;
        out.value.len = r->output_len;
        s.output = &out;
    }
    Dtpb__Payload cs = DTPB__PAYLOAD__INIT;
    if (r->has_custom_status) {
        cs.value.data = (uint8_t *)r->custom_status;
        cs.value.len = r->custom_status_len;
        s.custom_status = &cs;
    }
    s.failure_details = r->failure;
    char id[ID_BUF];
    Dtpb__MessagePublishedEvent none = DTPB__MESSAGE_PUBLISHED_EVENT__INIT;
    const Dtpb__MessagePublishedEvent *hs = dt__trace_publish_headers(e, &none);
    dt__blob headers;
    size_t len = 0;
    uint8_t *data = dt__pack(e->a, &s.base, &len);
    const char *kind = dt__episode_kind(e, "result");
    dt_status st = kind == NULL
                       ? DT_ENOMEM
                       : dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, kind, 0);
    if (st == DT_OK) {
        st = hs != NULL ? dt__outbox_headers(e->a, hs, true, &headers) : DT_ENOMEM;
    }
    if (st != DT_OK || data == NULL) {
        return st != DT_OK ? st : DT_ENOMEM;
    }
    return dt__outbox_add(e->a, &e->out, subject, id, data, len, &headers);
}

static dt_status on_completed(dt__episode *e, const dt__episode_result *r)
{
    if (r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW) {
        return DT_OK;
    }
    bool ok = r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    Dtpb__Payload *out = r->has_output ? dt__emit_payload(e->a, r->output, r->output_len) : NULL;
    Dtpb__TaskFailureDetails *f = r->failure;
    if (!ok && f == NULL && (f = terminated_failure(e, r)) == NULL) {
        return DT_ENOMEM;
    }
    dt_status st = dt__actions_notify_parent(e, e->start, ok, out, f);
    return st == DT_OK ? publish_result(e, r) : st;
}

dt_status dt__actions_resend(dt__episode *e, const Dtpb__HistoryEvent *ev)
{
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
        return schedule_activity(e, ev);
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
        return start_child(e, ev);
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
        return add_timer(e, ev);
    default:
        return DT_OK;
    }
}

dt_status dt__actions_build(dt__episode *e, const dt__episode_result *r)
{
    dt_status st = DT_OK;
    /* appended = OrchestratorStarted, the new events (what arrived: never actions, whatever a
     * sender claims), then the episode's own action events and completion. */
    for (size_t i = 1 + e->n_news; st == DT_OK && i < r->n_appended; i++) {
        const Dtpb__HistoryEvent *ev = r->appended[i];
        switch (ev->event_type_case) {
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
            st = schedule_activity(e, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
            st = start_child(e, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
            st = send_event(e, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED:
            st = publish(e, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
            st = add_timer(e, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED:
            st = on_completed(e, r);
            break;
        default:
            st = dt__entity_action(e, ev); /* entity_actions.c; DT_OK for other events */
            break;
        }
    }
    return st;
}
