/*
 * runtime/remote's pure conversions (convert.c): the OrchestratorRequest a remote episode sends
 * (our stored events travel byte for byte), and how an OrchestratorResponse becomes the engine's
 * result: one event per action with event_id = the action's id, completion, continue-as-new with
 * carried-over events, custom status, and the rules whose breach fails the execution instead of
 * writing anything of the response (a reused action id, an unknown action, an action after the
 * completion, an oversized output...).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/alloc.h"
#include "pb_int.h"
#include "protocol_int.h"
#include "remote/convert_int.h"

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x
#define EV(x) DTPB__HISTORY_EVENT__EVENT_TYPE_##x
#define AT(x) DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_##x
#define NOW   1700000000000LL

typedef struct world {
    dt__arena *a; /* events of the input */
    Dtpb__HistoryEvent *past[16], *news[8];
    size_t n_past, n_new;
    dt__episode_input in;
} world;

static Dtpb__Payload *pl(dt__arena *a, const char *s)
{
    return dt__emit_payload(a, (const uint8_t *)s, strlen(s));
}

static Dtpb__HistoryEvent *ev(world *w, int32_t id, Dtpb__HistoryEvent__EventTypeCase k)
{
    Dtpb__HistoryEvent *e = dt__emit_new(w->a, id, NOW - 1000);
    e->event_type_case = k;
    switch (k) {
    case EV(EXECUTION_STARTED):
        e->execution_started = dt__arena_calloc(w->a, 1, sizeof(*e->execution_started));
        dtpb__execution_started_event__init(e->execution_started);
        e->execution_started->name = "Chain";
        e->execution_started->input = pl(w->a, "\"in\"");
        break;
    case EV(ORCHESTRATOR_STARTED):
        e->orchestrator_started = dt__arena_calloc(w->a, 1, sizeof(*e->orchestrator_started));
        dtpb__orchestrator_started_event__init(e->orchestrator_started);
        break;
    case EV(TASK_SCHEDULED):
        e->task_scheduled = dt__arena_calloc(w->a, 1, sizeof(*e->task_scheduled));
        dtpb__task_scheduled_event__init(e->task_scheduled);
        e->task_scheduled->name = "Hello";
        break;
    case EV(TASK_COMPLETED):
        e->task_completed = dt__arena_calloc(w->a, 1, sizeof(*e->task_completed));
        dtpb__task_completed_event__init(e->task_completed);
        e->task_completed->task_scheduled_id = 0;
        e->task_completed->result = pl(w->a, "\"r0\"");
        break;
    case EV(EVENT_RAISED):
        e->event_raised = dt__arena_calloc(w->a, 1, sizeof(*e->event_raised));
        dtpb__event_raised_event__init(e->event_raised);
        e->event_raised->name = "go";
        break;
    case EV(EXECUTION_TERMINATED):
        e->execution_terminated = dt__arena_calloc(w->a, 1, sizeof(*e->execution_terminated));
        dtpb__execution_terminated_event__init(e->execution_terminated);
        e->execution_terminated->input = pl(w->a, "\"bye\"");
        break;
    case EV(EXECUTION_COMPLETED):
        e->execution_completed = dt__arena_calloc(w->a, 1, sizeof(*e->execution_completed));
        dtpb__execution_completed_event__init(e->execution_completed);
        break;
    default:
        fail();
    }
    return e;
}

/* History: started, orchestrator started, task 0 scheduled; new: task 0 completed. */
static void world_init(world *w)
{
    memset(w, 0, sizeof(*w));
    w->a = dt__arena_create(0);
    w->past[w->n_past++] = ev(w, -1, EV(EXECUTION_STARTED));
    w->past[w->n_past++] = ev(w, -1, EV(ORCHESTRATOR_STARTED));
    w->past[w->n_past++] = ev(w, 0, EV(TASK_SCHEDULED));
    w->news[w->n_new++] = ev(w, -1, EV(TASK_COMPLETED));
    w->in = (dt__episode_input){"inst-1", w->past, w->n_past, w->news, w->n_new, NOW};
}

static void world_free(world *w)
{
    dt__arena_destroy(w->a);
}

/* A response being built in its own arena (which the result takes over). */
typedef struct resp {
    dt__arena *a;
    Dtpb__Remote__OrchestratorResponse r;
    Dtpb__Remote__OrchestratorAction *acts[8];
} resp;

static void resp_init(resp *p)
{
    p->a = dt__arena_create(0);
    dtpb__remote__orchestrator_response__init(&p->r);
    p->r.instance_id = "inst-1";
    p->r.actions = p->acts;
}

static Dtpb__Remote__OrchestratorAction *act(resp *p, int32_t id)
{
    Dtpb__Remote__OrchestratorAction *x = dt__arena_calloc(p->a, 1, sizeof(*x));
    dtpb__remote__orchestrator_action__init(x);
    x->id = id;
    p->acts[p->r.n_actions++] = x;
    return x;
}

static void schedule(resp *p, int32_t id, const char *name)
{
    Dtpb__Remote__OrchestratorAction *x = act(p, id);
    x->orchestrator_action_type_case = AT(SCHEDULE_TASK);
    x->schedule_task = dt__arena_calloc(p->a, 1, sizeof(*x->schedule_task));
    dtpb__remote__schedule_task_action__init(x->schedule_task);
    x->schedule_task->name = (char *)name;
    x->schedule_task->input = pl(p->a, "\"x\"");
}

static Dtpb__Remote__CompleteOrchestrationAction *
complete(resp *p, int32_t id, Dtpb__OrchestrationStatus s, const char *result)
{
    Dtpb__Remote__OrchestratorAction *x = act(p, id);
    x->orchestrator_action_type_case = AT(COMPLETE_ORCHESTRATION);
    x->complete_orchestration = dt__arena_calloc(p->a, 1, sizeof(*x->complete_orchestration));
    dtpb__remote__complete_orchestration_action__init(x->complete_orchestration);
    x->complete_orchestration->orchestration_status = s;
    x->complete_orchestration->result = result != NULL ? pl(p->a, result) : NULL;
    return x->complete_orchestration;
}

/* Converts and checks the common prefix: OrchestratorStarted, then the new events. */
static void convert(world *w, resp *p, const dt__remote_limits *lim, dt__episode_result *out)
{
    assert_int_equal(dt__remote_orch_result(&w->in, "exec-1", &p->r, p->a, lim, out), DT_OK);
    assert_true(out->n_appended >= 1 + w->n_new);
    assert_int_equal(out->appended[0]->event_type_case, EV(ORCHESTRATOR_STARTED));
    assert_int_equal(dt__ts_to_ms(out->appended[0]->timestamp), NOW);
    for (size_t i = 0; i < w->n_new; i++) {
        assert_int_equal(out->appended[1 + i]->event_type_case, w->news[i]->event_type_case);
    }
}

/* A payload holds exactly `want` (payloads are bytes, not NUL-terminated). */
static void assert_pl(const Dtpb__Payload *p, const char *want)
{
    assert_non_null(p);
    assert_int_equal(p->value.len, strlen(want));
    assert_memory_equal(p->value.data, want, strlen(want));
}

/* ---- requests ---- */

static void test_request_carries_history_bytes(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    uint8_t *item = NULL;
    size_t len = 0;
    assert_int_equal(dt__remote_pack_orch_item(&w.in, "exec-1", "7", &item, &len), DT_OK);
    dt__arena *a = dt__arena_create(0);
    Dtpb__Remote__WorkItem *wi = (Dtpb__Remote__WorkItem *)dt__arena_unpack(
        a, &dtpb__remote__work_item__descriptor, len, item);
    assert_non_null(wi);
    assert_string_equal(wi->completion_token, "7");
    assert_int_equal(wi->request_case, DTPB__REMOTE__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    Dtpb__Remote__OrchestratorRequest *r = wi->orchestrator_request;
    assert_string_equal(r->instance_id, "inst-1");
    assert_pl(r->execution_id, "exec-1");
    assert_int_equal(r->n_past_events, 3);
    /* This episode's OrchestratorStarted (the SDK's current time), then the new events. */
    assert_int_equal(r->n_new_events, 2);
    assert_int_equal(r->new_events[0]->event_type_case, EV(ORCHESTRATOR_STARTED));
    assert_int_equal(dt__ts_to_ms(r->new_events[0]->timestamp), NOW);
    assert_int_equal(r->new_events[1]->event_type_case, EV(TASK_COMPLETED));
    /* Each event travels exactly as stored. */
    for (size_t i = 0; i < w.n_past; i++) {
        size_t n1 = 0, n2 = 0;
        uint8_t *b1 = dt__pack(a, &w.past[i]->base, &n1);
        uint8_t *b2 = dt__pack(a, &r->past_events[i]->base, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
    }
    dt_free(item);
    dt__arena_destroy(a);
    world_free(&w);
}

static void test_activity_request(void **state)
{
    (void)state;
    Dtpb__ActivityRequest req = DTPB__ACTIVITY_REQUEST__INIT;
    Dtpb__Payload in = DTPB__PAYLOAD__INIT;
    in.value.data = (uint8_t *)"\"a\"";
    in.value.len = 3;
    req.instance_id = "inst-2";
    req.execution_id = "e2";
    req.name = "Hello";
    req.task_id = 4;
    req.input = &in;
    uint8_t *item = NULL;
    size_t len = 0;
    assert_int_equal(dt__remote_pack_act_item(&req, "9", &item, &len), DT_OK);
    dt__arena *a = dt__arena_create(0);
    Dtpb__Remote__WorkItem *wi = (Dtpb__Remote__WorkItem *)dt__arena_unpack(
        a, &dtpb__remote__work_item__descriptor, len, item);
    assert_non_null(wi);
    assert_int_equal(wi->request_case, DTPB__REMOTE__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);
    Dtpb__Remote__ActivityRequest *ar = wi->activity_request;
    assert_string_equal(ar->name, "Hello");
    assert_int_equal(ar->task_id, 4);
    assert_string_equal(ar->orchestration_instance->instance_id, "inst-2");
    assert_pl(ar->orchestration_instance->execution_id, "e2");
    assert_memory_equal(ar->input->value.data, "\"a\"", 3);
    dt_free(item);
    dt__arena_destroy(a);
}

static void test_check_input(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    assert_int_equal(dt__remote_check_input(&w.in), DT_OK);
    w.past[3] = ev(&w, -1, EV(EXECUTION_COMPLETED));
    w.in.n_past = 4;
    assert_int_equal(dt__remote_check_input(&w.in), DT_ESTATE);
    w.in.past = &w.past[1]; /* no ExecutionStarted first */
    w.in.n_past = 2;
    assert_int_equal(dt__remote_check_input(&w.in), DT_EINVAL);
    world_free(&w);
}

/* ---- responses ---- */

static void test_actions_become_events(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    schedule(&p, 1, "Hello");
    Dtpb__Remote__OrchestratorAction *t = act(&p, 2);
    t->orchestrator_action_type_case = AT(CREATE_TIMER);
    t->create_timer = dt__arena_calloc(p.a, 1, sizeof(*t->create_timer));
    dtpb__remote__create_timer_action__init(t->create_timer);
    t->create_timer->fire_at = dt__ts_from_ms(p.a, NOW + 5000);
    Dtpb__Remote__OrchestratorAction *s = act(&p, 3);
    s->orchestrator_action_type_case = AT(CREATE_SUB_ORCHESTRATION);
    s->create_sub_orchestration = dt__arena_calloc(p.a, 1, sizeof(*s->create_sub_orchestration));
    dtpb__remote__create_sub_orchestration_action__init(s->create_sub_orchestration);
    s->create_sub_orchestration->name = "Child";
    Dtpb__Remote__OrchestratorAction *e = act(&p, 4);
    e->orchestrator_action_type_case = AT(SEND_EVENT);
    e->send_event = dt__arena_calloc(p.a, 1, sizeof(*e->send_event));
    dtpb__remote__send_event_action__init(e->send_event);
    e->send_event->instance = dt__arena_calloc(p.a, 1, sizeof(Dtpb__OrchestrationInstance));
    dtpb__orchestration_instance__init(e->send_event->instance);
    e->send_event->instance->instance_id = "other";
    e->send_event->name = "ping";
    p.r.custom_status = pl(p.a, "\"busy\"");
    dt__episode_result r;
    convert(&w, &p, NULL, &r);
    assert_int_equal(r.status, ST(RUNNING));
    assert_int_equal(r.n_appended, 6);
    Dtpb__HistoryEvent **x = &r.appended[2];
    assert_int_equal(x[0]->event_type_case, EV(TASK_SCHEDULED));
    assert_int_equal(x[0]->event_id, 1);
    assert_string_equal(x[0]->task_scheduled->name, "Hello");
    assert_string_equal(x[0]->task_scheduled->task_queue, "");
    assert_int_equal(x[1]->event_type_case, EV(TIMER_CREATED));
    assert_int_equal(x[1]->event_id, 2);
    assert_int_equal(dt__ts_to_ms(x[1]->timer_created->fire_at), NOW + 5000);
    assert_int_equal(x[2]->event_type_case, EV(SUB_ORCHESTRATION_INSTANCE_CREATED));
    assert_int_equal(x[2]->event_id, 3);
    assert_string_equal(x[2]->sub_orchestration_instance_created->instance_id, "inst-1:0003");
    assert_int_equal(x[3]->event_type_case, EV(EVENT_SENT));
    assert_string_equal(x[3]->event_sent->instance_id, "other");
    assert_true(r.has_custom_status);
    assert_memory_equal(r.custom_status, "\"busy\"", 6);
    dt__episode_result_free(&r);
    world_free(&w);
}

static void test_queue_of_remote_activities(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    schedule(&p, 1, "Sdk");
    schedule(&p, 2, "C");
    const char *names[] = {"Sdk"};
    dt__remote_limits lim = {.queue_names = names, .n_queue_names = 1, .queue = "sdkq"};
    dt__episode_result r;
    convert(&w, &p, &lim, &r);
    assert_string_equal(r.appended[2]->task_scheduled->task_queue, "sdkq");
    assert_string_equal(r.appended[3]->task_scheduled->task_queue, "");
    dt__episode_result_free(&r);
    world_free(&w);
}

static void test_complete_and_fail(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    complete(&p, 1, ST(COMPLETED), "\"done\"");
    dt__episode_result r;
    convert(&w, &p, NULL, &r);
    assert_int_equal(r.status, ST(COMPLETED));
    assert_true(r.has_output);
    assert_memory_equal(r.output, "\"done\"", 6);
    Dtpb__HistoryEvent *last = r.appended[r.n_appended - 1];
    assert_int_equal(last->event_type_case, EV(EXECUTION_COMPLETED));
    assert_int_equal(last->execution_completed->orchestration_status, ST(COMPLETED));
    dt__episode_result_free(&r);

    resp_init(&p);
    Dtpb__Remote__CompleteOrchestrationAction *c = complete(&p, 1, ST(FAILED), NULL);
    c->failure_details = dt__arena_calloc(p.a, 1, sizeof(Dtpb__TaskFailureDetails));
    dtpb__task_failure_details__init(c->failure_details);
    c->failure_details->error_type = "Error";
    c->failure_details->error_message = "boom";
    convert(&w, &p, NULL, &r);
    assert_int_equal(r.status, ST(FAILED));
    assert_string_equal(r.failure->error_type, "Error");
    assert_string_equal(r.failure->error_message, "boom");
    dt__episode_result_free(&r);
    world_free(&w);
}

static void test_continue_as_new(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    Dtpb__Remote__CompleteOrchestrationAction *c = complete(&p, 1, ST(CONTINUED_AS_NEW), "2");
    Dtpb__HistoryEvent *carried[] = {ev(&w, -1, EV(EVENT_RAISED))};
    c->carryover_events = carried;
    c->n_carryover_events = 1;
    dt__episode_result r;
    convert(&w, &p, NULL, &r);
    assert_int_equal(r.status, ST(CONTINUED_AS_NEW));
    assert_memory_equal(r.output, "2", 1);
    assert_int_equal(r.n_carryover, 1);
    assert_non_null(r.next_execution_id);
    char first[40];
    snprintf(first, sizeof(first), "%s", r.next_execution_id);
    dt__episode_result_free(&r);
    /* The same episode again names the same next execution. */
    resp_init(&p);
    complete(&p, 1, ST(CONTINUED_AS_NEW), "2");
    convert(&w, &p, NULL, &r);
    assert_string_equal(r.next_execution_id, first);
    dt__episode_result_free(&r);
    /* Only EventRaised events may be carried over. */
    resp_init(&p);
    c = complete(&p, 1, ST(CONTINUED_AS_NEW), "2");
    Dtpb__HistoryEvent *wrong[] = {ev(&w, -1, EV(TASK_COMPLETED))};
    c->carryover_events = wrong;
    c->n_carryover_events = 1;
    convert(&w, &p, NULL, &r);
    assert_int_equal(r.status, ST(FAILED));
    assert_string_equal(r.failure->error_type, DT__REMOTE_PROTOCOL_ERROR);
    assert_int_equal(r.n_carryover, 0);
    assert_null(r.next_execution_id);
    dt__episode_result_free(&r);
    world_free(&w);
}

/* A broken response: the execution fails with `type`, and only OrchestratorStarted, the new
 * events and the failure are appended. */
static void expect_refused(world *w, resp *p, const char *type, const char *needle)
{
    dt__episode_result r;
    convert(w, p, NULL, &r);
    assert_int_equal(r.status, ST(FAILED));
    assert_int_equal(r.n_appended, 1 + w->n_new + 1);
    assert_int_equal(r.appended[r.n_appended - 1]->event_type_case, EV(EXECUTION_COMPLETED));
    assert_string_equal(r.failure->error_type, type);
    assert_non_null(strstr(r.failure->error_message, needle));
    assert_true(r.failure->is_non_retriable);
    assert_false(r.has_output);
    dt__episode_result_free(&r);
}

static void test_refused_responses(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    schedule(&p, 0, "Hello"); /* id 0 is history's TaskScheduled */
    expect_refused(&w, &p, DT_FAILURE_NONDETERMINISM, "action 0");
    resp_init(&p);
    schedule(&p, 1, "Hello");
    schedule(&p, 1, "Hello");
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "used twice");
    resp_init(&p);
    act(&p, 1); /* no kind we know (an entity or rewind action parses as none) */
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "no supported kind");
    resp_init(&p);
    complete(&p, 1, ST(COMPLETED), NULL);
    schedule(&p, 2, "Hello");
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "after completeOrchestration");
    resp_init(&p);
    schedule(&p, 1, "");
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "activity name");
    resp_init(&p);
    complete(&p, 1, ST(PENDING), NULL);
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "status");
    resp_init(&p);
    Dtpb__Remote__OrchestratorAction *t = act(&p, 1);
    t->orchestrator_action_type_case = AT(TERMINATE_ORCHESTRATION);
    t->terminate_orchestration = dt__arena_calloc(p.a, 1, sizeof(*t->terminate_orchestration));
    dtpb__remote__terminate_orchestration_action__init(t->terminate_orchestration);
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "not supported");
    resp_init(&p);
    p.r.is_partial = true;
    expect_refused(&w, &p, DT__REMOTE_PROTOCOL_ERROR, "chunked");
    world_free(&w);
}

static void test_payload_bound(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    complete(&p, 1, ST(COMPLETED), "\"0123456789\"");
    dt__remote_limits lim = {.max_payload = 8};
    dt__episode_result r;
    convert(&w, &p, &lim, &r);
    assert_int_equal(r.status, ST(FAILED));
    assert_string_equal(r.failure->error_type, DT_FAILURE_PAYLOAD_TOO_LARGE);
    dt__episode_result_free(&r);
    world_free(&w);
}

static void test_terminate_needs_no_worker(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    dt__episode_result r;
    dt_status st = DT_EIO;
    assert_false(dt__remote_terminated(&w.in, &r, &st));
    w.news[w.n_new++] = ev(&w, -1, EV(EXECUTION_TERMINATED));
    w.in.n_new = w.n_new;
    assert_true(dt__remote_terminated(&w.in, &r, &st));
    assert_int_equal(st, DT_OK);
    assert_int_equal(r.status, ST(TERMINATED));
    assert_int_equal(r.n_appended, 4);
    assert_memory_equal(r.output, "\"bye\"", 5);
    dt__episode_result_free(&r);
    world_free(&w);
}

static void test_parse(void **state)
{
    (void)state;
    dt__arena *a = dt__arena_create(0);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    assert_null(dt__remote_parse_orch_response(a, junk, sizeof(junk)));
    assert_null(dt__remote_parse_act_response(a, junk, sizeof(junk)));
    Dtpb__Remote__OrchestratorResponse r = DTPB__REMOTE__ORCHESTRATOR_RESPONSE__INIT;
    size_t n = 0;
    uint8_t *b = dt__pack(a, &r.base, &n);
    assert_null(dt__remote_parse_orch_response(a, b, n)); /* no instance ID */
    r.instance_id = "x";
    r.completion_token = "";
    b = dt__pack(a, &r.base, &n);
    assert_non_null(dt__remote_parse_orch_response(a, b, n));
    dt__arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_carries_history_bytes),
        cmocka_unit_test(test_activity_request),
        cmocka_unit_test(test_check_input),
        cmocka_unit_test(test_actions_become_events),
        cmocka_unit_test(test_queue_of_remote_activities),
        cmocka_unit_test(test_complete_and_fail),
        cmocka_unit_test(test_continue_as_new),
        cmocka_unit_test(test_refused_responses),
        cmocka_unit_test(test_payload_bound),
        cmocka_unit_test(test_terminate_needs_no_worker),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
