/*
 * Episode input -> OrchestratorRequest, OrchestratorResponse -> episode result, activity request
 * -> ActivityRequest (convert_int.h has the rules). Our history events are protocol
 * HistoryEvents byte for byte (dt_history.proto keeps the protocol's field numbers), so a request
 * is packed straight from the stored events and a response's carried-over events are read as
 * ours; nothing is translated field by field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_int.h"
#include "convert_int.h"
#include "pb_int.h"
#include "protocol_int.h"

#define DEFAULT_MAX_HISTORY 100000
#define WHY_LEN             512

/* ---- requests ---- */

static dt_status pack_item(Dtpb__Remote__WorkItem *wi, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(&wi->base);
    uint8_t *buf = dt_alloc(n > 0 ? n : 1);
    if (buf == NULL) {
        return DT_ENOMEM;
    }
    *len = protobuf_c_message_pack(&wi->base, buf);
    *out = buf;
    return DT_OK;
}

dt_status dt__remote_pack_orch_item(const dt__episode_input *in, const char *execution_id,
                                    const char *token, uint8_t **out, size_t *len)
{
    Dtpb__Remote__OrchestratorRequest req = DTPB__REMOTE__ORCHESTRATOR_REQUEST__INIT;
    Dtpb__Payload exec = DTPB__PAYLOAD__INIT;
    req.instance_id = (char *)in->instance_id;
    if (execution_id != NULL) {
        exec.value.data = (uint8_t *)execution_id;
        exec.value.len = strlen(execution_id);
        req.execution_id = &exec;
    }
    /* The new events begin with this episode's OrchestratorStarted, as the backend of the
     * protocol sends them: the SDKs take the orchestration's current time from it. The result
     * appends the same event (same time, convert's begin()). Events are shared, not copied:
     * packing only reads them. */
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = in->now_ms / 1000;
    ts.nanos = (int32_t)(in->now_ms % 1000) * 1000000;
    Dtpb__OrchestratorStartedEvent ose = DTPB__ORCHESTRATOR_STARTED_EVENT__INIT;
    Dtpb__HistoryEvent os = DTPB__HISTORY_EVENT__INIT;
    os.event_id = -1;
    os.timestamp = &ts;
    os.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED;
    os.orchestrator_started = &ose;
    Dtpb__HistoryEvent **news = dt_alloc((in->n_new + 1) * sizeof(*news));
    if (news == NULL) {
        return DT_ENOMEM;
    }
    news[0] = &os;
    for (size_t i = 0; i < in->n_new; i++) {
        news[1 + i] = in->new_events[i];
    }
    req.past_events = (Dtpb__HistoryEvent **)in->past;
    req.n_past_events = in->n_past;
    req.new_events = news;
    req.n_new_events = in->n_new + 1;
    Dtpb__Remote__WorkItem wi = DTPB__REMOTE__WORK_ITEM__INIT;
    wi.request_case = DTPB__REMOTE__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST;
    wi.orchestrator_request = &req;
    wi.completion_token = (char *)token;
    dt_status st = pack_item(&wi, out, len);
    dt_free(news);
    return st;
}

dt_status dt__remote_pack_act_item(const Dtpb__ActivityRequest *r, const char *token, uint8_t **out,
                                   size_t *len)
{
    Dtpb__Remote__ActivityRequest req = DTPB__REMOTE__ACTIVITY_REQUEST__INIT;
    Dtpb__OrchestrationInstance oi = DTPB__ORCHESTRATION_INSTANCE__INIT;
    Dtpb__Payload exec = DTPB__PAYLOAD__INIT;
    oi.instance_id = r->instance_id;
    if (r->execution_id != NULL && r->execution_id[0] != '\0') {
        exec.value.data = (uint8_t *)r->execution_id;
        exec.value.len = strlen(r->execution_id);
        oi.execution_id = &exec;
    }
    req.name = r->name;
    req.version = r->version;
    req.input = r->input;
    req.orchestration_instance = &oi;
    req.task_id = r->task_id;
    req.parent_trace_context = r->parent_trace_context;
    Dtpb__Remote__WorkItem wi = DTPB__REMOTE__WORK_ITEM__INIT;
    wi.request_case = DTPB__REMOTE__WORK_ITEM__REQUEST_ACTIVITY_REQUEST;
    wi.activity_request = &req;
    wi.completion_token = (char *)token;
    return pack_item(&wi, out, len);
}

/* ---- responses ---- */

Dtpb__Remote__OrchestratorResponse *dt__remote_parse_orch_response(dt__arena *a,
                                                                   const uint8_t *data, size_t len)
{
    Dtpb__Remote__OrchestratorResponse *r = (Dtpb__Remote__OrchestratorResponse *)dt__arena_unpack(
        a, &dtpb__remote__orchestrator_response__descriptor, len, data);
    return r != NULL && r->instance_id != NULL && r->instance_id[0] != '\0' ? r : NULL;
}

Dtpb__Remote__ActivityResponse *dt__remote_parse_act_response(dt__arena *a, const uint8_t *data,
                                                              size_t len)
{
    Dtpb__Remote__ActivityResponse *r = (Dtpb__Remote__ActivityResponse *)dt__arena_unpack(
        a, &dtpb__remote__activity_response__descriptor, len, data);
    return r != NULL && r->instance_id != NULL && r->instance_id[0] != '\0' ? r : NULL;
}

/* ---- the result ---- */

typedef struct builder {
    dt__arena *a;
    Dtpb__HistoryEvent **ev;
    size_t n, cap;
    int64_t now, prev; /* the episode's time; the latest timestamp appended */
} builder;

static bool push(builder *b, Dtpb__HistoryEvent *ev)
{
    if (ev == NULL ||
        !dt__arena_grow(b->a, (void **)&b->ev, &b->cap, b->n, sizeof(Dtpb__HistoryEvent *))) {
        return false;
    }
    b->ev[b->n++] = ev;
    return true;
}

/* A new event of the result at the latest time so far (never before the episode's). */
static Dtpb__HistoryEvent *event_now(builder *b, int32_t id, Dtpb__HistoryEvent__EventTypeCase k)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(b->a, id, b->now > b->prev ? b->now : b->prev);
    if (ev != NULL) {
        ev->event_type_case = k;
    }
    return ev;
}

/* Timestamps in a history never go backwards (the engine's rule, result.c): a new event older
 * than the one before it is appended as a shallow copy at that one's time. */
static Dtpb__HistoryEvent *not_before(builder *b, Dtpb__HistoryEvent *ev)
{
    int64_t t = dt__ts_to_ms(ev->timestamp);
    if (ev->timestamp != NULL && t >= b->prev) {
        b->prev = t;
        return ev;
    }
    Dtpb__HistoryEvent *c = dt__arena_alloc(b->a, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    *c = *ev;
    c->timestamp = dt__ts_from_ms(b->a, b->prev);
    return c->timestamp != NULL ? c : NULL;
}

/* OrchestratorStarted and the new events: how every result begins. */
static bool begin(builder *b, const dt__episode_input *in)
{
    Dtpb__HistoryEvent *os = event_now(b, -1, DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED);
    Dtpb__OrchestratorStartedEvent *e = dt__arena_alloc(b->a, sizeof(*e));
    if (os == NULL || e == NULL) {
        return false;
    }
    dtpb__orchestrator_started_event__init(e);
    os->orchestrator_started = e;
    bool ok = push(b, os);
    for (size_t i = 0; ok && i < in->n_new; i++) {
        ok = push(b, not_before(b, in->new_events[i]));
    }
    return ok;
}

static Dtpb__HistoryEvent *completed(builder *b, Dtpb__OrchestrationStatus s,
                                     const Dtpb__Payload *result, Dtpb__TaskFailureDetails *f)
{
    Dtpb__HistoryEvent *ev = event_now(b, -1, DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED);
    Dtpb__ExecutionCompletedEvent *e = dt__arena_alloc(b->a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return NULL;
    }
    dtpb__execution_completed_event__init(e);
    e->orchestration_status = s;
    e->result = (Dtpb__Payload *)result;
    e->failure_details = f;
    ev->execution_completed = e;
    return ev;
}

/* The ExecutionStarted that opens evs (after this episode's OrchestratorStarted, which the
 * engine appends first), or NULL: the engine's rule. */
static bool opens(Dtpb__HistoryEvent *const *evs, size_t n)
{
    for (size_t i = 0; i < n && i < 2; i++) {
        if (evs[i]->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
            return true;
        }
        if (evs[i]->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED) {
            return false;
        }
    }
    return false;
}

dt_status dt__remote_check_input(const dt__episode_input *in)
{
    if ((in->n_past > 0 && in->past == NULL) || (in->n_new > 0 && in->new_events == NULL)) {
        return DT_EINVAL; /* the engine's cache shortcut: never taken for remote instances */
    }
    if (in->n_past > 0 && in->past[in->n_past - 1]->event_type_case ==
                              DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED) {
        return DT_ESTATE;
    }
    bool started = in->n_past > 0 ? opens(in->past, in->n_past) : opens(in->new_events, in->n_new);
    return started ? DT_OK : DT_EINVAL;
}

/* An empty RUNNING result whose memory is arena `a`. */
static void result_init(dt__episode_result *out, dt__arena *a)
{
    memset(out, 0, sizeof(*out));
    out->arena = a;
    out->status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
}

static bool set_output(dt__episode_result *out, const Dtpb__Payload *p)
{
    if (p == NULL) {
        return true;
    }
    out->has_output = true;
    out->output_len = p->value.len;
    out->output = dt__arena_memdup(
        out->arena, p->value.data != NULL ? p->value.data : (uint8_t *)"", p->value.len);
    return out->output != NULL;
}

static bool end_unlocks(builder *b, const dt__episode_input *in);

bool dt__remote_terminated(const dt__episode_input *in, dt__episode_result *out, dt_status *st)
{
    const Dtpb__ExecutionTerminatedEvent *t = NULL;
    for (size_t i = 0; i < in->n_new && t == NULL; i++) {
        if (in->new_events[i]->event_type_case ==
            DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED) {
            t = in->new_events[i]->execution_terminated;
        }
    }
    if (t == NULL) {
        return false;
    }
    dt__arena *a = dt__arena_create(0);
    *st = DT_ENOMEM;
    if (a == NULL) {
        return true;
    }
    result_init(out, a);
    builder b = {.a = a, .now = in->now_ms, .prev = in->now_ms};
    if (begin(&b, in) &&
        push(&b, completed(&b, DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED,
                           t->input, NULL)) &&
        end_unlocks(&b, in) && set_output(out, t->input)) {
        out->appended = b.ev;
        out->n_appended = b.n;
        out->status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED;
        *st = DT_OK;
        return true;
    }
    dt__arena_destroy(a);
    memset(out, 0, sizeof(*out));
    return true;
}

/* ---- applying actions ---- */

typedef struct conv {
    builder b;
    const dt__episode_input *in;
    const dt__remote_limits *lim;
    dt__episode_result *out;
    int32_t *used; /* action ids in history, sorted */
    size_t n_used;
    bool done; /* a CompleteOrchestration was applied */
    const char *fail_type;
    char why[WHY_LEN]; /* set: the response breaks a rule */
} conv;

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return a < b ? -1 : a > b;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static bool is_action_event(const Dtpb__HistoryEvent *ev)
{
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT:
        return true;
    default:
        return false;
    }
}

static bool collect_used(conv *c)
{
    size_t n = 0;
    c->used = dt__arena_alloc(c->b.a, (c->in->n_past + 1) * sizeof(int32_t));
    if (c->used == NULL) {
        return false;
    }
    for (size_t i = 0; i < c->in->n_past; i++) {
        if (is_action_event(c->in->past[i])) {
            c->used[n++] = c->in->past[i]->event_id;
        }
    }
    qsort(c->used, n, sizeof(int32_t), cmp_i32);
    c->n_used = n;
    return true;
}

/* Notes the first rule the response breaks: "action <id>: <text><detail>" (no prefix for id < 0:
 * not about one action). */
static void problem(conv *c, const char *type, const char *text, int32_t id, const char *detail)
{
    if (c->why[0] != '\0') {
        return; /* the first problem is reported */
    }
    c->fail_type = type;
    const char *d = detail != NULL ? detail : "";
    if (id >= 0) {
        snprintf(c->why, sizeof(c->why), "action %d: %s%s", (int)id, text, d);
    } else {
        snprintf(c->why, sizeof(c->why), "%s%s", text, d);
    }
}

/* The action id is new: not in history, not earlier in this response. */
static bool id_ok(conv *c, size_t mark, int32_t id)
{
    if (id < 0) {
        problem(c, DT__REMOTE_PROTOCOL_ERROR, "negative action id", id, NULL);
        return false;
    }
    if (bsearch(&id, c->used, c->n_used, sizeof(int32_t), cmp_i32) != NULL) {
        problem(c, DT_FAILURE_NONDETERMINISM,
                "its id was already used by an action in history (the orchestration's code does "
                "not replay as it ran before)",
                id, NULL);
        return false;
    }
    for (size_t i = mark; i < c->b.n; i++) {
        if (c->b.ev[i]->event_id == id) {
            problem(c, DT__REMOTE_PROTOCOL_ERROR, "its id is used twice in one response", id, NULL);
            return false;
        }
    }
    return true;
}

static bool name_ok(conv *c, int32_t id, const char *what, const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > DT_NAME_MAX) {
        problem(c, DT__REMOTE_PROTOCOL_ERROR, what, id, " must be 1..128 bytes");
        return false;
    }
    return true;
}

static const char *queue_of(const conv *c, const char *name)
{
    const dt__remote_limits *l = c->lim;
    if (l == NULL || l->n_queue_names == 0 || l->queue == NULL) {
        return "";
    }
    return bsearch(&name, l->queue_names, l->n_queue_names, sizeof(char *), cmp_str) != NULL
               ? l->queue
               : "";
}

static bool schedule_task(conv *c, int32_t id, const Dtpb__Remote__ScheduleTaskAction *a)
{
    if (!name_ok(c, id, "the activity name", a->name)) {
        return true;
    }
    Dtpb__HistoryEvent *ev = event_now(&c->b, id, DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED);
    Dtpb__TaskScheduledEvent *e = dt__arena_alloc(c->b.a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return false;
    }
    dtpb__task_scheduled_event__init(e);
    e->name = a->name;
    e->version = a->version;
    e->input = a->input;
    e->task_queue = (char *)queue_of(c, a->name);
    ev->task_scheduled = e;
    return push(&c->b, ev);
}

static bool create_timer(conv *c, int32_t id, const Dtpb__Remote__CreateTimerAction *a)
{
    if (a->fire_at == NULL) {
        problem(c, DT__REMOTE_PROTOCOL_ERROR, "a timer without fireAt", id, NULL);
        return true;
    }
    Dtpb__HistoryEvent *ev = event_now(&c->b, id, DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED);
    Dtpb__TimerCreatedEvent *e = dt__arena_alloc(c->b.a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return false;
    }
    dtpb__timer_created_event__init(e);
    e->fire_at = a->fire_at;
    ev->timer_created = e;
    return push(&c->b, ev);
}

static bool create_sub(conv *c, int32_t id, const Dtpb__Remote__CreateSubOrchestrationAction *a)
{
    if (!name_ok(c, id, "the sub-orchestration name", a->name)) {
        return true;
    }
    char *child = a->instance_id;
    if (child == NULL || child[0] == '\0') {
        /* The protocol's convention for an unnamed child: deterministic, so a repeat of the
         * episode names the same child. */
        size_t n = strlen(c->in->instance_id) + 16;
        if ((child = dt__arena_alloc(c->b.a, n)) == NULL) {
            return false;
        }
        snprintf(child, n, "%s:%04x", c->in->instance_id, (unsigned)id);
    }
    Dtpb__HistoryEvent *ev =
        event_now(&c->b, id, DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED);
    Dtpb__SubOrchestrationInstanceCreatedEvent *e = dt__arena_alloc(c->b.a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return false;
    }
    dtpb__sub_orchestration_instance_created_event__init(e);
    e->instance_id = child;
    e->name = a->name;
    e->version = a->version;
    e->input = a->input;
    ev->sub_orchestration_instance_created = e;
    return push(&c->b, ev);
}

static bool send_event(conv *c, int32_t id, const Dtpb__Remote__SendEventAction *a)
{
    if (a->instance == NULL || a->instance->instance_id == NULL ||
        a->instance->instance_id[0] == '\0') {
        problem(c, DT__REMOTE_PROTOCOL_ERROR, "sendEvent without a target instance", id, NULL);
        return true;
    }
    if (!name_ok(c, id, "the event name", a->name)) {
        return true;
    }
    Dtpb__HistoryEvent *ev = event_now(&c->b, id, DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT);
    Dtpb__EventSentEvent *e = dt__arena_alloc(c->b.a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return false;
    }
    dtpb__event_sent_event__init(e);
    e->instance_id = a->instance->instance_id;
    e->name = a->name;
    e->input = a->data;
    ev->event_sent = e;
    return push(&c->b, ev);
}

/* The next execution's ID: derived from this one, so a repeat of the episode names the same. */
static bool next_execution(conv *c, const char *execution_id)
{
    char id[37], salted[DT_INSTANCE_ID_MAX + 64];
    snprintf(salted, sizeof(salted), "continue-as-new/%s",
             execution_id != NULL ? execution_id : "");
    dt__derived_uuid(c->in->instance_id, salted, id);
    dt__uuid_compact(id); /* the form of execution IDs */
    return (c->out->next_execution_id = dt__arena_strdup(c->b.a, id)) != NULL;
}

static bool carry_over(conv *c, int32_t id, const Dtpb__Remote__CompleteOrchestrationAction *a)
{
    for (size_t i = 0; i < a->n_carryover_events; i++) {
        const Dtpb__HistoryEvent *ev = a->carryover_events[i];
        if (ev->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED) {
            problem(c, DT__REMOTE_PROTOCOL_ERROR,
                    "carryoverEvents may hold only EventRaised events", id, NULL);
            return true;
        }
    }
    c->out->carryover = a->carryover_events;
    c->out->n_carryover = a->n_carryover_events;
    return true;
}

static Dtpb__TaskFailureDetails *failure(dt__arena *a, const char *type, const char *msg)
{
    Dtpb__TaskFailureDetails *f = dt__arena_alloc(a, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    dtpb__task_failure_details__init(f);
    f->error_type = (char *)type;
    f->error_message = dt__arena_strdup(a, msg);
    return f->error_message != NULL ? f : NULL;
}

static bool complete(conv *c, int32_t id, const Dtpb__Remote__CompleteOrchestrationAction *a,
                     const char *execution_id)
{
    Dtpb__TaskFailureDetails *f = NULL;
    switch (a->orchestration_status) {
    case DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED:
    case DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED:
        break;
    case DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED:
        f = a->failure_details;
        if (f == NULL &&
            (f = failure(c->b.a, "dt.OrchestrationFailed",
                         "the SDK worker reported a failure without failure details")) == NULL) {
            return false;
        }
        break;
    case DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
        if (!next_execution(c, execution_id) || !carry_over(c, id, a)) {
            return false;
        }
        break;
    default: {
        char s[16];
        snprintf(s, sizeof(s), "%d", (int)a->orchestration_status);
        problem(c, DT__REMOTE_PROTOCOL_ERROR,
                "completeOrchestration with a status other than COMPLETED, FAILED, TERMINATED "
                "or CONTINUED_AS_NEW: ",
                id, s);
        return true;
    }
    }
    c->done = true;
    c->out->status = a->orchestration_status;
    c->out->failure = f;
    const Dtpb__Payload *result =
        a->orchestration_status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED
            ? NULL
            : a->result;
    return set_output(c->out, result) &&
           push(&c->b, completed(&c->b, a->orchestration_status, result, f));
}

static bool entity_message(conv *c, int32_t id, const Dtpb__Remote__SendEntityMessageAction *a)
{
    const char *why = NULL;
    Dtpb__HistoryEvent *ev =
        dt__remote_entity_event(c->b.a, id, c->b.now > c->b.prev ? c->b.now : c->b.prev, a, &why);
    if (ev == NULL && why != NULL) {
        problem(c, DT__REMOTE_PROTOCOL_ERROR, why, id, NULL);
        return true;
    }
    return push(&c->b, ev);
}

/* An execution that ended with a critical section open releases its locks: the unlocks go in
 * before the ExecutionCompleted (the last event). */
static bool end_unlocks(builder *b, const dt__episode_input *in)
{
    Dtpb__HistoryEvent **u = NULL;
    size_t n = 0;
    if (b->n == 0) {
        return true;
    }
    if (!dt__remote_end_unlocks(b->a, b->now > b->prev ? b->now : b->prev, in->past, in->n_past,
                                b->ev, b->n, &u, &n)) {
        return false;
    }
    if (n == 0) {
        return true;
    }
    Dtpb__HistoryEvent *last = b->ev[b->n - 1];
    b->n--;
    for (size_t i = 0; i < n; i++) {
        if (!push(b, u[i])) {
            return false;
        }
    }
    return push(b, last);
}

/* Applies one action; false only when out of memory (a broken rule is noted in c->why). */
static bool apply(conv *c, size_t mark, const Dtpb__Remote__OrchestratorAction *a,
                  const char *execution_id)
{
    if (c->done) {
        problem(c, DT__REMOTE_PROTOCOL_ERROR, "an action after completeOrchestration", a->id, NULL);
        return true;
    }
    bool is_complete =
        a->orchestrator_action_type_case ==
        DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION;
    if (!is_complete && !id_ok(c, mark, a->id)) {
        return true;
    }
    switch (a->orchestrator_action_type_case) {
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SCHEDULE_TASK:
        return schedule_task(c, a->id, a->schedule_task);
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_TIMER:
        return create_timer(c, a->id, a->create_timer);
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_SUB_ORCHESTRATION:
        return create_sub(c, a->id, a->create_sub_orchestration);
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_EVENT:
        return send_event(c, a->id, a->send_event);
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION:
        return complete(c, a->id, a->complete_orchestration, execution_id);
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_ENTITY_MESSAGE:
        return entity_message(c, a->id, a->send_entity_message);
    case DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_TERMINATE_ORCHESTRATION:
        problem(c, DT__REMOTE_PROTOCOL_ERROR,
                "terminateOrchestration (of another instance) is not supported by this "
                "backend",
                a->id, NULL);
        return true;
    default:
        problem(c, DT__REMOTE_PROTOCOL_ERROR,
                "an action of no supported kind (rewind actions are not supported)", a->id, NULL);
        return true;
    }
}

static void check_bounds(conv *c, const Dtpb__Remote__OrchestratorResponse *resp)
{
    size_t max_hist =
        c->lim != NULL && c->lim->max_history > 0 ? c->lim->max_history : DEFAULT_MAX_HISTORY;
    size_t max_pl = c->lim != NULL ? c->lim->max_payload : 0;
    char n[96]; /* two 20-digit numbers and the words: the Release build checks */
    if (c->in->n_past + c->b.n > max_hist) {
        snprintf(n, sizeof(n), "%zu events, over the limit of %zu", c->in->n_past + c->b.n,
                 max_hist);
        problem(c, DT_FAILURE_HISTORY_TOO_LARGE, "history would grow to ", -1, n);
    } else if (max_pl > 0 && c->out->has_output && c->out->output_len > max_pl) {
        snprintf(n, sizeof(n), "%zu bytes, over the limit of %zu", c->out->output_len, max_pl);
        problem(c, DT_FAILURE_PAYLOAD_TOO_LARGE, "its output or new input is ", -1, n);
    } else if (max_pl > 0 && resp->custom_status != NULL &&
               resp->custom_status->value.len > max_pl) {
        snprintf(n, sizeof(n), "%zu bytes, over the limit of %zu", resp->custom_status->value.len,
                 max_pl);
        problem(c, DT_FAILURE_PAYLOAD_TOO_LARGE, "the custom status is ", -1, n);
    }
}

/* The response broke a rule: none of its actions is taken; the execution fails and says why. */
static bool fail_instead(conv *c, size_t mark)
{
    c->b.n = mark;
    dt__episode_result *out = c->out;
    out->has_output = false;
    out->output = NULL;
    out->output_len = 0;
    out->carryover = NULL;
    out->n_carryover = 0;
    out->next_execution_id = NULL;
    out->has_custom_status = false;
    out->status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    char msg[WHY_LEN + 64];
    snprintf(msg, sizeof(msg), "the SDK worker's response was refused: %s", c->why);
    out->failure = failure(c->b.a, c->fail_type, msg);
    if (out->failure == NULL) {
        return false;
    }
    out->failure->is_non_retriable = true;
    return push(&c->b, completed(&c->b, out->status, NULL, out->failure));
}

static bool suspended_now(const dt__episode_input *in)
{
    bool s = false;
    for (size_t i = 0; i < in->n_past + in->n_new; i++) {
        const Dtpb__HistoryEvent *ev =
            i < in->n_past ? in->past[i] : in->new_events[i - in->n_past];
        if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED) {
            s = true;
        } else if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED) {
            s = false;
        }
    }
    return s;
}

dt_status dt__remote_orch_result(const dt__episode_input *in, const char *execution_id,
                                 const Dtpb__Remote__OrchestratorResponse *resp, dt__arena *a,
                                 const dt__remote_limits *lim, dt__episode_result *out)
{
    dt__episode_result r;
    result_init(&r, a);
    conv c = {
        .b = {.a = a, .now = in->now_ms, .prev = in->now_ms}, .in = in, .lim = lim, .out = &r};
    if (!begin(&c.b, in) || !collect_used(&c)) {
        return DT_ENOMEM;
    }
    size_t mark = c.b.n;
    if (resp->is_partial || resp->requires_history) {
        problem(&c, DT__REMOTE_PROTOCOL_ERROR,
                resp->is_partial ? "chunked (partial) completions are not supported"
                                 : "requiresHistory, but the request carried the whole history",
                -1, NULL);
    }
    for (size_t i = 0; c.why[0] == '\0' && i < resp->n_actions; i++) {
        if (!apply(&c, mark, resp->actions[i], execution_id)) {
            return DT_ENOMEM;
        }
    }
    if (resp->custom_status != NULL) {
        r.has_custom_status = true;
        r.custom_status = resp->custom_status->value.data;
        r.custom_status_len = resp->custom_status->value.len;
    }
    if (c.why[0] == '\0') {
        check_bounds(&c, resp);
    }
    if (c.why[0] != '\0' && !fail_instead(&c, mark)) {
        return DT_ENOMEM;
    }
    if (r.status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING &&
        !end_unlocks(&c.b, in)) {
        return DT_ENOMEM;
    }
    r.appended = c.b.ev;
    r.n_appended = c.b.n;
    r.suspended =
        r.status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING && suspended_now(in);
    *out = r;
    return DT_OK;
}
