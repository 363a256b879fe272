/*
 * Conversions from protobuf messages (InstanceStatus, HistoryEvent, TaskFailureDetails) to the
 * public result structs, and the result holders that tie each result to its arena.
 */
#include "client_int.h"

#include <string.h>

/* Failure chains deeper than this are cut (a malformed or hostile record cannot recurse). */
#define FAILURE_DEPTH_MAX 32

typedef struct instance_holder {
    dt_client_instance pub; /* first: the public pointer is the holder's */
    dt__arena *a;
} instance_holder;

typedef struct page_holder {
    dt_client_page pub;
    dt__arena *a;
} page_holder;

typedef struct history_holder {
    dt_client_history pub;
    dt__arena *a;
} history_holder;

dt_client_instance *dt__client_instance_new(dt__arena *a)
{
    instance_holder *h = dt__arena_calloc(a, 1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->a = a;
    return &h->pub;
}

void dt_client_instance_free(dt_client_instance *inst)
{
    if (inst != NULL) {
        dt__arena_destroy(((instance_holder *)inst)->a);
    }
}

dt_client_page *dt__client_page_new(dt__arena *a)
{
    page_holder *h = dt__arena_calloc(a, 1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->a = a;
    return &h->pub;
}

void dt_client_page_free(dt_client_page *page)
{
    if (page != NULL) {
        dt__arena_destroy(((page_holder *)page)->a);
    }
}

dt_client_history *dt__client_history_new(dt__arena *a)
{
    history_holder *h = dt__arena_calloc(a, 1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->a = a;
    return &h->pub;
}

void dt_client_history_free(dt_client_history *h)
{
    if (h != NULL) {
        dt__arena_destroy(((history_holder *)h)->a);
    }
}

/* ---- pieces ---- */

/* Copies a payload (NUL-terminated in the arena). false only when out of memory. */
static bool payload(dt__arena *a, const Dtpb__Payload *p, const void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (p == NULL) {
        return true;
    }
    *out = dt__arena_memdup(a, p->value.data, p->value.len);
    *out_len = p->value.len;
    return *out != NULL;
}

/* A payload that holds text (version, execution ID) as a C string, or NULL when absent. */
static const char *payload_str(dt__arena *a, const Dtpb__Payload *p)
{
    return p == NULL ? NULL : dt__arena_memdup(a, p->value.data, p->value.len);
}

static const char *nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static const dt_failure *failure_conv(dt__arena *a, const Dtpb__TaskFailureDetails *f, int depth)
{
    if (f == NULL || depth >= FAILURE_DEPTH_MAX) {
        return NULL;
    }
    dt_failure *r = dt__arena_calloc(a, 1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->type = f->error_type != NULL ? f->error_type : "";
    r->message = f->error_message != NULL ? f->error_message : "";
    r->stack_trace = payload_str(a, f->stack_trace);
    r->inner = failure_conv(a, f->inner_failure, depth + 1);
    r->non_retriable = f->is_non_retriable;
    return r;
}

const dt_failure *dt__client_failure_from_pb(dt__arena *a, const Dtpb__TaskFailureDetails *f)
{
    return failure_conv(a, f, 0);
}

static dt_status tags_conv(dt__arena *a, Dtpb__InstanceStatus__TagsEntry *const *tags, size_t n,
                           dt_client_instance *out)
{
    if (n == 0) {
        return DT_OK;
    }
    dt_client_tag *t = dt__arena_calloc(a, n, sizeof(*t));
    if (t == NULL) {
        return DT_ENOMEM;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = tags[i]->key != NULL ? tags[i]->key : "";
        if (strncmp(key, "dt.", 3) == 0) {
            continue; /* the runtime's own (a client-written record's start identity) */
        }
        t[kept].key = key;
        t[kept].value = tags[i]->value != NULL ? tags[i]->value : "";
        kept++;
    }
    out->tags = kept > 0 ? t : NULL;
    out->ntags = kept;
    return DT_OK;
}

/* The strings of `s` live in the same arena (it was unpacked there), so they are shared. */
dt_status dt__client_instance_from_pb(dt__arena *a, const Dtpb__InstanceStatus *s,
                                      bool with_payloads, dt_client_instance *out)
{
    dt_client_instance r;
    memset(&r, 0, sizeof(r));
    r.instance_id = s->instance_id != NULL ? s->instance_id : "";
    r.execution_id = s->execution_id != NULL ? s->execution_id : "";
    r.name = s->name != NULL ? s->name : "";
    r.version = payload_str(a, s->version);
    r.runtime_status = (dt_client_runtime_status)s->runtime_status;
    r.created_at_ms = dt__ts_to_ms(s->created_at);
    r.last_updated_at_ms = dt__ts_to_ms(s->last_updated_at);
    r.parent_instance_id = nonempty(s->parent_instance_id);
    r.failure = dt__client_failure_from_pb(a, s->failure_details);
    bool ok = s->version == NULL || r.version != NULL;
    if (with_payloads) {
        ok = payload(a, s->input, &r.input, &r.input_len) && ok;
        ok = payload(a, s->output, &r.output, &r.output_len) && ok;
        ok = payload(a, s->custom_status, &r.custom_status, &r.custom_status_len) && ok;
    }
    if (!ok || (s->failure_details != NULL && r.failure == NULL) ||
        tags_conv(a, s->tags, s->n_tags, &r) != DT_OK) {
        return DT_ENOMEM;
    }
    *out = r;
    return DT_OK;
}

/* ---- history events ---- */

typedef struct event_view {
    const char *type;
    const char *name;
    const char *instance_id;
    int32_t task_id;
    const Dtpb__Timestamp *fire_at;
    const Dtpb__Payload *payload;
    const Dtpb__TaskFailureDetails *failure;
} event_view;

/* Execution-level and control events. */
static bool view_execution(const Dtpb__HistoryEvent *e, event_view *v)
{
    switch (e->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED:
        *v = (event_view){.type = "ExecutionStarted",
                          .name = e->execution_started->name,
                          .payload = e->execution_started->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED:
        *v = (event_view){.type = "ExecutionCompleted",
                          .payload = e->execution_completed->result,
                          .failure = e->execution_completed->failure_details};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED:
        *v = (event_view){.type = "ExecutionTerminated", .payload = e->execution_terminated->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_CONTINUE_AS_NEW:
        *v = (event_view){.type = "ContinueAsNew", .payload = e->continue_as_new->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED:
        *v = (event_view){.type = "ExecutionSuspended", .payload = e->execution_suspended->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED:
        *v = (event_view){.type = "ExecutionResumed", .payload = e->execution_resumed->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND:
        *v = (event_view){.type = "ExecutionRewound", .payload = e->execution_rewound->reason};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED:
        *v = (event_view){.type = "OrchestratorStarted"};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_COMPLETED:
        *v = (event_view){.type = "OrchestratorCompleted"};
        return true;
    default:
        return false;
    }
}

/* Activities and sub-orchestrations. */
static bool view_tasks(const Dtpb__HistoryEvent *e, event_view *v)
{
    switch (e->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
        *v = (event_view){.type = "TaskScheduled",
                          .name = e->task_scheduled->name,
                          .payload = e->task_scheduled->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
        *v = (event_view){.type = "TaskCompleted",
                          .task_id = e->task_completed->task_scheduled_id,
                          .payload = e->task_completed->result};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
        *v = (event_view){.type = "TaskFailed",
                          .task_id = e->task_failed->task_scheduled_id,
                          .failure = e->task_failed->failure_details};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
        *v = (event_view){.type = "SubOrchestrationInstanceCreated",
                          .name = e->sub_orchestration_instance_created->name,
                          .instance_id = e->sub_orchestration_instance_created->instance_id,
                          .payload = e->sub_orchestration_instance_created->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
        *v = (event_view){.type = "SubOrchestrationInstanceCompleted",
                          .task_id = e->sub_orchestration_instance_completed->task_scheduled_id,
                          .payload = e->sub_orchestration_instance_completed->result};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
        *v = (event_view){.type = "SubOrchestrationInstanceFailed",
                          .task_id = e->sub_orchestration_instance_failed->task_scheduled_id,
                          .failure = e->sub_orchestration_instance_failed->failure_details};
        return true;
    default:
        return false;
    }
}

/* Timers, events and publishes. */
static bool view_messages(const Dtpb__HistoryEvent *e, event_view *v)
{
    switch (e->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
        *v = (event_view){.type = "TimerCreated", .fire_at = e->timer_created->fire_at};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
        *v = (event_view){.type = "TimerFired",
                          .task_id = e->timer_fired->timer_id,
                          .fire_at = e->timer_fired->fire_at};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
        *v = (event_view){.type = "EventSent",
                          .name = e->event_sent->name,
                          .instance_id = e->event_sent->instance_id,
                          .payload = e->event_sent->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED:
        *v = (event_view){.type = "EventRaised",
                          .name = e->event_raised->name,
                          .payload = e->event_raised->input};
        return true;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED:
        *v = (event_view){.type = "MessagePublished", .name = e->message_published->subject};
        return true;
    default:
        return false;
    }
}

static bool has_task_ref(const Dtpb__HistoryEvent *e)
{
    switch (e->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
        return true;
    default:
        return false;
    }
}

dt_status dt__client_event_from_pb(dt__arena *a, const Dtpb__HistoryEvent *e, const uint8_t *raw,
                                   size_t raw_len, dt_client_event *out)
{
    event_view v = {.type = "Unknown"};
    if (!view_execution(e, &v) && !view_tasks(e, &v) && !view_messages(e, &v)) {
        v = (event_view){.type = "Unknown"};
    }
    dt_client_event r;
    memset(&r, 0, sizeof(r));
    r.event_id = e->event_id;
    r.timestamp_ms = dt__ts_to_ms(e->timestamp);
    r.type = v.type;
    r.name = nonempty(v.name);
    r.instance_id = nonempty(v.instance_id);
    r.task_id = has_task_ref(e) ? v.task_id : -1;
    r.fire_at_ms = dt__ts_to_ms(v.fire_at);
    r.failure = dt__client_failure_from_pb(a, v.failure);
    bool ok = payload(a, v.payload, &r.payload, &r.payload_len);
    if (e->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED) {
        const ProtobufCBinaryData *d = &e->message_published->data;
        r.payload = dt__arena_memdup(a, d->data, d->len);
        r.payload_len = d->len;
        ok = r.payload != NULL;
    }
    r.raw = dt__arena_memdup(a, raw, raw_len);
    r.raw_len = raw_len;
    if (!ok || r.raw == NULL || (v.failure != NULL && r.failure == NULL)) {
        return DT_ENOMEM;
    }
    *out = r;
    return DT_OK;
}
