/*
 * The fake SDK worker of fake_sdk.h. Orchestrations (by name):
 *   Chain / ChainC  three calls of SdkHello / CHello in a row, each on the previous result
 *   Timer           a 300 ms timer, then "timer done"
 *   Parent / Child  Parent calls Child (instance "<parent>-child") and returns "parent(<result>)"
 *   ParentOfC       the same with the C orchestration CChild as the child
 *   Waiter          waits for event "go" (custom status "waiting") and returns its data
 *   Counter         continues as new with input+1 until 3, then returns "3"
 *   FailAct         calls SdkFail and fails with app.Wrapped, its failure as the inner one
 *   Reuse           schedules SdkHello with id 0 in its first and its second episode
 * Activities: SdkHello returns "Hello <input>"; SdkFail fails (app.Err, "bad", stack "at fake").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "arena_int.h"
#include "dt_remote.pb-c.h"
#include "durabletask/alloc.h"
#include "fake_sdk.h"
#include "pb_int.h"

#define EV(x) DTPB__HISTORY_EVENT__EVENT_TYPE_##x
#define AT(x) DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_##x
#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

static void wake(void *arg)
{
    fake_sdk *f = arg;
    pthread_mutex_lock(&f->mu);
    f->woken = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* ---- reading a request's history ---- */

typedef struct view {
    dt__arena *a;
    const Dtpb__Remote__OrchestratorRequest *req;
    Dtpb__HistoryEvent *all[256];
    size_t n;
    const Dtpb__ExecutionStartedEvent *start;
    int32_t next_id; /* actions taken so far (numbered 0, 1, ...) */
    Dtpb__Remote__OrchestratorResponse *resp;
    Dtpb__Remote__OrchestratorAction *acts[8];
} view;

static void view_init(view *v, dt__arena *a, const Dtpb__Remote__OrchestratorRequest *req)
{
    memset(v, 0, sizeof(*v));
    v->a = a;
    v->req = req;
    for (size_t i = 0; i < req->n_past_events + req->n_new_events; i++) {
        Dtpb__HistoryEvent *e =
            i < req->n_past_events ? req->past_events[i] : req->new_events[i - req->n_past_events];
        assert_true(v->n < 256);
        v->all[v->n++] = e;
        switch (e->event_type_case) {
        case EV(EXECUTION_STARTED):
            v->start = e->execution_started;
            break;
        case EV(TASK_SCHEDULED):
        case EV(TIMER_CREATED):
        case EV(SUB_ORCHESTRATION_INSTANCE_CREATED):
        case EV(EVENT_SENT):
            v->next_id++;
            break;
        default:
            break;
        }
    }
    assert_non_null(v->start);
    v->resp = dt__arena_calloc(a, 1, sizeof(*v->resp));
    dtpb__remote__orchestrator_response__init(v->resp);
    v->resp->instance_id = req->instance_id;
    v->resp->actions = v->acts;
}

/* The event completing task `id` (TaskCompleted/Failed, SubOrchestration*, TimerFired), or NULL. */
static const Dtpb__HistoryEvent *outcome(const view *v, int32_t id)
{
    for (size_t i = 0; i < v->n; i++) {
        const Dtpb__HistoryEvent *e = v->all[i];
        if ((e->event_type_case == EV(TASK_COMPLETED) &&
             e->task_completed->task_scheduled_id == id) ||
            (e->event_type_case == EV(TASK_FAILED) && e->task_failed->task_scheduled_id == id) ||
            (e->event_type_case == EV(SUB_ORCHESTRATION_INSTANCE_COMPLETED) &&
             e->sub_orchestration_instance_completed->task_scheduled_id == id) ||
            (e->event_type_case == EV(TIMER_FIRED) && e->timer_fired->timer_id == id)) {
            return e;
        }
    }
    return NULL;
}

static Dtpb__Payload *pl(dt__arena *a, const void *data, size_t len)
{
    return dt__emit_payload(a, data, len);
}

static Dtpb__Remote__OrchestratorAction *act(view *v, int32_t id)
{
    Dtpb__Remote__OrchestratorAction *x = dt__arena_calloc(v->a, 1, sizeof(*x));
    dtpb__remote__orchestrator_action__init(x);
    x->id = id;
    v->acts[v->resp->n_actions++] = x;
    return x;
}

static void call(view *v, int32_t id, const char *name, const Dtpb__Payload *input)
{
    Dtpb__Remote__OrchestratorAction *x = act(v, id);
    x->orchestrator_action_type_case = AT(SCHEDULE_TASK);
    x->schedule_task = dt__arena_calloc(v->a, 1, sizeof(*x->schedule_task));
    dtpb__remote__schedule_task_action__init(x->schedule_task);
    x->schedule_task->name = (char *)name;
    x->schedule_task->input = (Dtpb__Payload *)input;
}

static Dtpb__Remote__CompleteOrchestrationAction *finish(view *v, Dtpb__OrchestrationStatus s,
                                                         const Dtpb__Payload *result)
{
    Dtpb__Remote__OrchestratorAction *x = act(v, v->next_id);
    x->orchestrator_action_type_case = AT(COMPLETE_ORCHESTRATION);
    x->complete_orchestration = dt__arena_calloc(v->a, 1, sizeof(*x->complete_orchestration));
    dtpb__remote__complete_orchestration_action__init(x->complete_orchestration);
    x->complete_orchestration->orchestration_status = s;
    x->complete_orchestration->result = (Dtpb__Payload *)result;
    return x->complete_orchestration;
}

/* "<prefix><p><suffix>" as a payload. */
static Dtpb__Payload *wrap(view *v, const char *prefix, const Dtpb__Payload *p, const char *suffix)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s%.*s%s", prefix, p != NULL ? (int)p->value.len : 0,
                     p != NULL ? (const char *)p->value.data : "", suffix);
    return pl(v->a, buf, (size_t)n);
}

/* ---- the orchestrations ---- */

static void chain(view *v, const char *activity)
{
    int32_t k = v->next_id - 1;
    if (k < 0) {
        call(v, 0, activity, v->start->input);
        return;
    }
    const Dtpb__HistoryEvent *o = outcome(v, k);
    if (o == NULL) {
        return;
    }
    assert_int_equal(o->event_type_case, EV(TASK_COMPLETED));
    if (v->next_id == 3) {
        finish(v, ST(COMPLETED), o->task_completed->result);
    } else {
        call(v, v->next_id, activity, o->task_completed->result);
    }
}

static void timer(view *v)
{
    if (v->next_id == 0) {
        Dtpb__Remote__OrchestratorAction *x = act(v, 0);
        x->orchestrator_action_type_case = AT(CREATE_TIMER);
        x->create_timer = dt__arena_calloc(v->a, 1, sizeof(*x->create_timer));
        dtpb__remote__create_timer_action__init(x->create_timer);
        /* From the episode's time (its OrchestratorStarted, the last one), as an SDK's "now". */
        int64_t now = 0;
        for (size_t i = 0; i < v->n; i++) {
            if (v->all[i]->event_type_case == EV(ORCHESTRATOR_STARTED)) {
                now = dt__ts_to_ms(v->all[i]->timestamp);
            }
        }
        x->create_timer->fire_at = dt__ts_from_ms(v->a, now + 300);
    } else if (outcome(v, 0) != NULL) {
        finish(v, ST(COMPLETED), pl(v->a, "timer done", 10));
    }
}

static void parent(view *v, const char *child_name)
{
    if (v->next_id == 0) {
        Dtpb__Remote__OrchestratorAction *x = act(v, 0);
        x->orchestrator_action_type_case = AT(CREATE_SUB_ORCHESTRATION);
        x->create_sub_orchestration =
            dt__arena_calloc(v->a, 1, sizeof(*x->create_sub_orchestration));
        dtpb__remote__create_sub_orchestration_action__init(x->create_sub_orchestration);
        size_t n = strlen(v->req->instance_id) + 8;
        char *child = dt__arena_alloc(v->a, n);
        snprintf(child, n, "%s-child", v->req->instance_id);
        x->create_sub_orchestration->instance_id = child;
        x->create_sub_orchestration->name = (char *)child_name;
        x->create_sub_orchestration->input = v->start->input;
        return;
    }
    const Dtpb__HistoryEvent *o = outcome(v, 0);
    if (o != NULL) {
        finish(v, ST(COMPLETED),
               wrap(v, "parent(", o->sub_orchestration_instance_completed->result, ")"));
    }
}

static void child(view *v)
{
    finish(v, ST(COMPLETED), wrap(v, "child of ", v->start->input, ""));
}

static void waiter(view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->all[i]->event_type_case == EV(EVENT_RAISED) &&
            strcmp(v->all[i]->event_raised->name, "go") == 0) {
            finish(v, ST(COMPLETED), v->all[i]->event_raised->input);
            return;
        }
    }
    v->resp->custom_status = pl(v->a, "waiting", 7);
}

static void counter(view *v)
{
    const Dtpb__Payload *in = v->start->input;
    int n = in != NULL && in->value.len > 0 ? in->value.data[0] - '0' : 0;
    char c = (char)('0' + n + 1);
    if (n < 3) {
        finish(v, ST(CONTINUED_AS_NEW), pl(v->a, &c, 1));
    } else {
        finish(v, ST(COMPLETED), in);
    }
}

static void fail_act(view *v)
{
    if (v->next_id == 0) {
        call(v, 0, "SdkFail", NULL);
        return;
    }
    const Dtpb__HistoryEvent *o = outcome(v, 0);
    if (o == NULL) {
        return;
    }
    assert_int_equal(o->event_type_case, EV(TASK_FAILED));
    Dtpb__Remote__CompleteOrchestrationAction *c = finish(v, ST(FAILED), NULL);
    c->failure_details = dt__arena_calloc(v->a, 1, sizeof(Dtpb__TaskFailureDetails));
    dtpb__task_failure_details__init(c->failure_details);
    c->failure_details->error_type = "app.Wrapped";
    c->failure_details->error_message = "activity failed";
    c->failure_details->inner_failure = o->task_failed->failure_details;
}

static void reuse(view *v)
{
    if (v->next_id == 0 || outcome(v, 0) != NULL) {
        call(v, 0, "SdkHello", pl(v->a, "again", 5)); /* the second time: id 0 again */
    }
}

static void orchestrate(view *v)
{
    const char *name = v->start->name;
    if (strcmp(name, "Chain") == 0) {
        chain(v, "SdkHello");
    } else if (strcmp(name, "ChainC") == 0) {
        chain(v, "CHello");
    } else if (strcmp(name, "Timer") == 0) {
        timer(v);
    } else if (strcmp(name, "Parent") == 0) {
        parent(v, "Child");
    } else if (strcmp(name, "ParentOfC") == 0) {
        parent(v, "CChild");
    } else if (strcmp(name, "Child") == 0) {
        child(v);
    } else if (strcmp(name, "Waiter") == 0) {
        waiter(v);
    } else if (strcmp(name, "Counter") == 0) {
        counter(v);
    } else if (strcmp(name, "FailAct") == 0) {
        fail_act(v);
    } else if (strcmp(name, "Reuse") == 0) {
        reuse(v);
    } else {
        fail_msg("fake SDK: no orchestration '%s'", name);
    }
}

/* ---- the worker loop ---- */

static uint8_t *pack(dt__arena *a, const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = dt__arena_alloc(a, *len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static void on_orchestration(fake_sdk *f, dt__arena *a, const Dtpb__Remote__WorkItem *wi)
{
    atomic_fetch_add(&f->orch_items, 1);
    view v;
    view_init(&v, a, wi->orchestrator_request);
    orchestrate(&v);
    v.resp->completion_token = wi->completion_token;
    size_t len = 0;
    uint8_t *b = pack(a, &v.resp->base, &len);
    if (atomic_exchange(&f->garbage_first, false)) {
        const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
        if (dt__remote_complete_orchestration(f->r, junk, sizeof(junk)) == DT_EINVAL) {
            atomic_fetch_add(&f->garbage_refused, 1);
        }
    }
    assert_int_equal(dt__remote_complete_orchestration(f->r, b, len), DT_OK);
}

static void on_activity(fake_sdk *f, dt__arena *a, const Dtpb__Remote__WorkItem *wi)
{
    atomic_fetch_add(&f->act_items, 1);
    const Dtpb__Remote__ActivityRequest *req = wi->activity_request;
    Dtpb__Remote__ActivityResponse resp = DTPB__REMOTE__ACTIVITY_RESPONSE__INIT;
    resp.instance_id = req->orchestration_instance->instance_id;
    resp.task_id = req->task_id;
    resp.completion_token = ""; /* as some SDKs send it: matched by instance and task */
    Dtpb__TaskFailureDetails fd = DTPB__TASK_FAILURE_DETAILS__INIT;
    if (strcmp(req->name, "SdkHello") == 0) {
        atomic_fetch_add(&f->sdk_hello_runs, 1);
        char buf[512];
        const Dtpb__Payload *in = req->input;
        int n = snprintf(buf, sizeof(buf), "Hello %.*s", in != NULL ? (int)in->value.len : 0,
                         in != NULL ? (const char *)in->value.data : "");
        resp.result = pl(a, buf, (size_t)n);
    } else {
        fd.error_type = "app.Err";
        fd.error_message = "bad";
        fd.stack_trace = pl(a, "at fake", 7);
        resp.failure_details = &fd;
    }
    size_t len = 0;
    uint8_t *b = pack(a, &resp.base, &len);
    assert_int_equal(dt__remote_complete_activity(f->r, b, len), DT_OK);
}

/* Takes the item and goes away without answering: the stream breaks; a new one is opened. */
static bool drop(fake_sdk *f, atomic_int *knob)
{
    int n = atomic_load(knob);
    if (n <= 0 || !atomic_compare_exchange_strong(knob, &n, n - 1)) {
        return false;
    }
    atomic_fetch_add(&f->drops, 1);
    dt__remote_disconnect(f->conn);
    assert_int_equal(dt__remote_connect(f->r, wake, f, &f->conn), DT_OK);
    return true;
}

/* Abandons the item (as AbandonTaskOrchestratorWorkItem) when the knob says so. */
static bool give_up(fake_sdk *f, dt__arena *a, const Dtpb__Remote__WorkItem *wi)
{
    int n = atomic_load(&f->abandon_orch);
    if (n <= 0 || !atomic_compare_exchange_strong(&f->abandon_orch, &n, n - 1)) {
        return false;
    }
    Dtpb__Remote__AbandonTaskRequest req = DTPB__REMOTE__ABANDON_TASK_REQUEST__INIT;
    req.completion_token = wi->completion_token;
    size_t len = 0;
    uint8_t *b = pack(a, &req.base, &len);
    assert_int_equal(dt__remote_abandon(f->r, b, len), DT_OK);
    assert_int_equal(dt__remote_abandon(f->r, b, len), DT_ENOTFOUND); /* once */
    atomic_fetch_add(&f->abandoned, 1);
    return true;
}

static void handle(fake_sdk *f, const uint8_t *item, size_t len)
{
    dt__arena *a = dt__arena_create(0);
    Dtpb__Remote__WorkItem *wi = (Dtpb__Remote__WorkItem *)dt__arena_unpack(
        a, &dtpb__remote__work_item__descriptor, len, item);
    assert_non_null(wi);
    if (wi->request_case == DTPB__REMOTE__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST) {
        if (!drop(f, &f->drop_orch) && !give_up(f, a, wi)) {
            on_orchestration(f, a, wi);
        }
    } else {
        assert_int_equal(wi->request_case, DTPB__REMOTE__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);
        if (!drop(f, &f->drop_act)) {
            on_activity(f, a, wi);
        }
    }
    dt__arena_destroy(a);
}

static void *run(void *arg)
{
    fake_sdk *f = arg;
    while (!atomic_load(&f->quit)) {
        uint8_t *item = NULL;
        size_t len = 0;
        dt_status st = dt__remote_poll(f->conn, &item, &len);
        if (st == DT_OK) {
            handle(f, item, len);
            dt_free(item);
            continue;
        }
        pthread_mutex_lock(&f->mu);
        if (!f->woken) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->cond, &f->mu, &ts);
        }
        f->woken = false;
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

void fake_sdk_start(fake_sdk *f, dt__remote *r)
{
    f->r = r;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    assert_int_equal(dt__remote_connect(r, wake, f, &f->conn), DT_OK);
    assert_int_equal(pthread_create(&f->thread, NULL, run, f), 0);
}

void fake_sdk_stop(fake_sdk *f)
{
    atomic_store(&f->quit, true);
    wake(f);
    pthread_join(f->thread, NULL);
    dt__remote_disconnect(f->conn);
    f->conn = NULL;
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
}
