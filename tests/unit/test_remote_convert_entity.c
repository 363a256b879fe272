/*
 * runtime/remote's entity conversions (convert_entity.c, and their use in convert.c): an SDK
 * orchestration's SendEntityMessage actions become the history events the C engine records for
 * the same actions (signal, call, lock request, unlock; event_id = the action's id, target in
 * target_instance_id); a malformed one fails the execution and writes nothing of the response;
 * an execution that ends with a critical section open (completes, fails, is terminated) gets the
 * unlocks its code did not send, before its ExecutionCompleted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pb_int.h"
#include "protocol_int.h"
#include "remote/convert_int.h"

#define ST(x) DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x
#define EV(x) DTPB__HISTORY_EVENT__EVENT_TYPE_##x
#define AT(x) DTPB__REMOTE__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_##x
#define EM(x) DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_##x
#define NOW   1700000000000LL

static Dtpb__Payload *pl(dt__arena *a, const char *s)
{
    return dt__emit_payload(a, (const uint8_t *)s, strlen(s));
}

/* A history: ExecutionStarted, OrchestratorStarted, and what the test adds. */
typedef struct world {
    dt__arena *a;
    Dtpb__HistoryEvent *past[16], *news[4];
    size_t n_past, n_new;
    dt__episode_input in;
} world;

static Dtpb__HistoryEvent *plain(world *w, int32_t id, Dtpb__HistoryEvent__EventTypeCase k)
{
    Dtpb__HistoryEvent *e = dt__emit_new(w->a, id, NOW - 1000);
    e->event_type_case = k;
    if (k == EV(EXECUTION_STARTED)) {
        e->execution_started = dt__arena_calloc(w->a, 1, sizeof(*e->execution_started));
        dtpb__execution_started_event__init(e->execution_started);
        e->execution_started->name = "Locker";
    } else if (k == EV(ORCHESTRATOR_STARTED)) {
        e->orchestrator_started = dt__arena_calloc(w->a, 1, sizeof(*e->orchestrator_started));
        dtpb__orchestrator_started_event__init(e->orchestrator_started);
    } else if (k == EV(EXECUTION_TERMINATED)) {
        e->execution_terminated = dt__arena_calloc(w->a, 1, sizeof(*e->execution_terminated));
        dtpb__execution_terminated_event__init(e->execution_terminated);
    } else if (k == EV(ENTITY_LOCK_GRANTED)) {
        e->entity_lock_granted = dt__arena_calloc(w->a, 1, sizeof(*e->entity_lock_granted));
        dtpb__entity_lock_granted_event__init(e->entity_lock_granted);
        e->entity_lock_granted->critical_section_id = "cs-1";
    }
    return e;
}

static char *lock_set[] = {"@a@1", "@b@2"};

/* History with section cs-1 over @a@1 and @b@2 requested (action 0) and granted. */
static void world_init(world *w)
{
    memset(w, 0, sizeof(*w));
    w->a = dt__arena_create(0);
    w->past[w->n_past++] = plain(w, -1, EV(EXECUTION_STARTED));
    w->past[w->n_past++] = plain(w, -1, EV(ORCHESTRATOR_STARTED));
    Dtpb__HistoryEvent *l = dt__emit_new(w->a, 0, NOW - 1000);
    l->event_type_case = EV(ENTITY_LOCK_REQUESTED);
    l->entity_lock_requested = dt__arena_calloc(w->a, 1, sizeof(*l->entity_lock_requested));
    dtpb__entity_lock_requested_event__init(l->entity_lock_requested);
    l->entity_lock_requested->critical_section_id = "cs-1";
    l->entity_lock_requested->lock_set = lock_set;
    l->entity_lock_requested->n_lock_set = 2;
    w->past[w->n_past++] = l;
    w->news[w->n_new++] = plain(w, -1, EV(ENTITY_LOCK_GRANTED));
    w->in = (dt__episode_input){"inst-1", w->past, w->n_past, w->news, w->n_new, NOW};
}

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

static Dtpb__Remote__SendEntityMessageAction *msg(resp *p, int32_t id)
{
    Dtpb__Remote__OrchestratorAction *x = dt__arena_calloc(p->a, 1, sizeof(*x));
    dtpb__remote__orchestrator_action__init(x);
    x->id = id;
    x->orchestrator_action_type_case = AT(SEND_ENTITY_MESSAGE);
    x->send_entity_message = dt__arena_calloc(p->a, 1, sizeof(*x->send_entity_message));
    dtpb__remote__send_entity_message_action__init(x->send_entity_message);
    p->acts[p->r.n_actions++] = x;
    return x->send_entity_message;
}

static void call(resp *p, int32_t id, const char *target, const char *op)
{
    Dtpb__Remote__SendEntityMessageAction *m = msg(p, id);
    m->entity_message_type_case = EM(ENTITY_OPERATION_CALLED);
    m->entity_operation_called = dt__arena_calloc(p->a, 1, sizeof(*m->entity_operation_called));
    dtpb__entity_operation_called_event__init(m->entity_operation_called);
    m->entity_operation_called->request_id = "req-1";
    m->entity_operation_called->operation = (char *)op;
    m->entity_operation_called->target_instance_id = pl(p->a, target);
    m->entity_operation_called->input = pl(p->a, "5");
}

static void unlock(resp *p, int32_t id, const char *target)
{
    Dtpb__Remote__SendEntityMessageAction *m = msg(p, id);
    m->entity_message_type_case = EM(ENTITY_UNLOCK_SENT);
    m->entity_unlock_sent = dt__arena_calloc(p->a, 1, sizeof(*m->entity_unlock_sent));
    dtpb__entity_unlock_sent_event__init(m->entity_unlock_sent);
    m->entity_unlock_sent->critical_section_id = "cs-1";
    m->entity_unlock_sent->target_instance_id = pl(p->a, target);
}

static void complete(resp *p, int32_t id, Dtpb__OrchestrationStatus s)
{
    Dtpb__Remote__OrchestratorAction *x = dt__arena_calloc(p->a, 1, sizeof(*x));
    dtpb__remote__orchestrator_action__init(x);
    x->id = id;
    x->orchestrator_action_type_case = AT(COMPLETE_ORCHESTRATION);
    x->complete_orchestration = dt__arena_calloc(p->a, 1, sizeof(*x->complete_orchestration));
    dtpb__remote__complete_orchestration_action__init(x->complete_orchestration);
    x->complete_orchestration->orchestration_status = s;
    x->complete_orchestration->result = pl(p->a, "1");
    p->acts[p->r.n_actions++] = x;
}

static bool payload_is(const Dtpb__Payload *p, const char *s)
{
    return p != NULL && p->value.len == strlen(s) && memcmp(p->value.data, s, p->value.len) == 0;
}

/* The unlock targets among evs[from..n), in order, joined by ','. */
static void unlocks(dt__episode_result *r, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_appended; i++) {
        const Dtpb__HistoryEvent *e = r->appended[i];
        if (e->event_type_case == EV(ENTITY_UNLOCK_SENT)) {
            const Dtpb__Payload *t = e->entity_unlock_sent->target_instance_id;
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%.*s(%d)", buf[0] ? "," : "",
                     (int)t->value.len, (const char *)t->value.data, (int)e->event_id);
        }
    }
}

static void test_call_becomes_history_event(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    call(&p, 1, "@a@1", "add");
    dt__episode_result r;
    assert_int_equal(dt__remote_orch_result(&w.in, "exec-1", &p.r, p.a, NULL, &r), DT_OK);
    assert_int_equal(r.status, ST(RUNNING));
    Dtpb__HistoryEvent *last = r.appended[r.n_appended - 1];
    assert_int_equal(last->event_type_case, EV(ENTITY_OPERATION_CALLED));
    assert_int_equal(last->event_id, 1);
    assert_string_equal(last->entity_operation_called->operation, "add");
    assert_true(payload_is(last->entity_operation_called->target_instance_id, "@a@1"));
    assert_true(payload_is(last->entity_operation_called->input, "5"));
    dt__episode_result_free(&r);
    dt__arena_destroy(w.a);
}

/* Completing inside the section: the unlocks its code did not send come before the completion;
 * the one it sent is not sent again. */
static void test_end_inside_section_unlocks(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    unlock(&p, 1, "@a@1");
    complete(&p, 2, ST(COMPLETED));
    dt__episode_result r;
    assert_int_equal(dt__remote_orch_result(&w.in, "exec-1", &p.r, p.a, NULL, &r), DT_OK);
    assert_int_equal(r.status, ST(COMPLETED));
    char buf[128];
    unlocks(&r, buf, sizeof buf);
    assert_string_equal(buf, "@a@1(1),@b@2(-1)");
    assert_int_equal(r.appended[r.n_appended - 1]->event_type_case, EV(EXECUTION_COMPLETED));
    assert_int_equal(r.appended[r.n_appended - 2]->event_type_case, EV(ENTITY_UNLOCK_SENT));
    dt__episode_result_free(&r);

    /* Released in full: nothing more. */
    resp_init(&p);
    unlock(&p, 1, "@a@1");
    unlock(&p, 2, "@b@2");
    complete(&p, 3, ST(COMPLETED));
    assert_int_equal(dt__remote_orch_result(&w.in, "exec-1", &p.r, p.a, NULL, &r), DT_OK);
    unlocks(&r, buf, sizeof buf);
    assert_string_equal(buf, "@a@1(1),@b@2(2)");
    dt__episode_result_free(&r);

    /* Still running: no unlock is added. */
    resp_init(&p);
    call(&p, 1, "@a@1", "add");
    assert_int_equal(dt__remote_orch_result(&w.in, "exec-1", &p.r, p.a, NULL, &r), DT_OK);
    unlocks(&r, buf, sizeof buf);
    assert_string_equal(buf, "");
    dt__episode_result_free(&r);
    dt__arena_destroy(w.a);
}

/* A terminate needs no SDK worker and releases the section too. */
static void test_terminate_inside_section_unlocks(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.news[w.n_new++] = plain(&w, -1, EV(EXECUTION_TERMINATED));
    w.in.n_new = w.n_new;
    dt__episode_result r;
    dt_status st = DT_EINVAL;
    assert_true(dt__remote_terminated(&w.in, &r, &st));
    assert_int_equal(st, DT_OK);
    assert_int_equal(r.status, ST(TERMINATED));
    char buf[128];
    unlocks(&r, buf, sizeof buf);
    assert_string_equal(buf, "@a@1(-1),@b@2(-1)");
    assert_int_equal(r.appended[r.n_appended - 1]->event_type_case, EV(EXECUTION_COMPLETED));
    dt__episode_result_free(&r);
    dt__arena_destroy(w.a);
}

/* Malformed entity messages fail the execution (and release the section it held); nothing of the
 * response is written. */
static void test_malformed_messages_fail(void **state)
{
    (void)state;
    static const char *const bad_targets[] = {"not-an-entity", "@@key", "@Upper@k", ""};
    for (size_t i = 0; i < sizeof bad_targets / sizeof bad_targets[0]; i++) {
        world w;
        world_init(&w);
        resp p;
        resp_init(&p);
        call(&p, 1, "@a@1", "add");
        call(&p, 2, bad_targets[i], "add");
        dt__episode_result r;
        assert_int_equal(dt__remote_orch_result(&w.in, "exec-1", &p.r, p.a, NULL, &r), DT_OK);
        assert_int_equal(r.status, ST(FAILED));
        assert_string_equal(r.failure->error_type, DT__REMOTE_PROTOCOL_ERROR);
        assert_non_null(strstr(r.failure->error_message, "action 2"));
        for (size_t k = 0; k < r.n_appended; k++) {
            assert_int_not_equal(r.appended[k]->event_type_case, EV(ENTITY_OPERATION_CALLED));
        }
        char buf[128];
        unlocks(&r, buf, sizeof buf);
        assert_string_equal(buf, "@a@1(-1),@b@2(-1)");
        dt__episode_result_free(&r);
        dt__arena_destroy(w.a);
    }
    /* An unsorted lock set, a call without an operation, an empty message. */
    dt__arena *a = dt__arena_create(0);
    const char *why = NULL;
    Dtpb__Remote__SendEntityMessageAction m = DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__INIT;
    Dtpb__EntityLockRequestedEvent l = DTPB__ENTITY_LOCK_REQUESTED_EVENT__INIT;
    char *unsorted[] = {"@b@2", "@a@1"};
    l.critical_section_id = "cs";
    l.lock_set = unsorted;
    l.n_lock_set = 2;
    m.entity_message_type_case = EM(ENTITY_LOCK_REQUESTED);
    m.entity_lock_requested = &l;
    assert_null(dt__remote_entity_event(a, 3, NOW, &m, &why));
    assert_non_null(why);
    l.lock_set = lock_set;
    assert_non_null(dt__remote_entity_event(a, 3, NOW, &m, &why));
    assert_null(why);
    Dtpb__EntityOperationSignaledEvent s = DTPB__ENTITY_OPERATION_SIGNALED_EVENT__INIT;
    s.request_id = "r";
    s.operation = "";
    s.target_instance_id = pl(a, "@a@1");
    m.entity_message_type_case = EM(ENTITY_OPERATION_SIGNALED);
    m.entity_operation_signaled = &s;
    assert_null(dt__remote_entity_event(a, 3, NOW, &m, &why));
    assert_non_null(why);
    m.entity_message_type_case =
        DTPB__REMOTE__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE__NOT_SET;
    assert_null(dt__remote_entity_event(a, 3, NOW, &m, &why));
    assert_non_null(why);
    dt__arena_destroy(a);
}

/* An entity action's id counts as used: reusing it on a later episode is non-determinism. */
static void test_entity_action_ids_are_used(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    resp p;
    resp_init(&p);
    call(&p, 0, "@a@1", "add"); /* 0 is the lock request's */
    dt__episode_result r;
    assert_int_equal(dt__remote_orch_result(&w.in, "exec-1", &p.r, p.a, NULL, &r), DT_OK);
    assert_int_equal(r.status, ST(FAILED));
    assert_string_equal(r.failure->error_type, DT_FAILURE_NONDETERMINISM);
    dt__episode_result_free(&r);
    dt__arena_destroy(w.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_becomes_history_event),
        cmocka_unit_test(test_end_inside_section_unlocks),
        cmocka_unit_test(test_terminate_inside_section_unlocks),
        cmocka_unit_test(test_malformed_messages_fail),
        cmocka_unit_test(test_entity_action_ids_are_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
