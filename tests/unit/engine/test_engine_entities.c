/*
 * Engine tests of entity actions (runtime/engine/entity_tasks.c): calls, signals and critical
 * sections recorded as the protocol's entity events, answers matched by request ID, identical
 * histories whether the instance was cached or replayed (run_scenario's three worlds), a changed
 * entity detected as non-determinism, and the locks of an open section released when the
 * execution ends (also when terminated).
 */
#include "durabletask/entity.h"
#include "scenario.h"

static const char *call_key = "a";

/* Locks account a and b, calls a, signals c, unlocks; output: the call's result. */
static void banker(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_entity_ref set[3] = {{"Account", "b"}, {"account", "a"}, {"account", "b"}};
    dt_await(ctx, dt_lock_entities(ctx, set, 3), NULL);
    assert_true(dt_in_critical_section(ctx));
    size_t len = 0;
    const void *r =
        dt_await(ctx, dt_call_entity(ctx, "account", call_key, "balance", NULL, 0), &len);
    dt_signal_entity(ctx, "counter", "c", "add", "1", 1, 0);
    dt_unlock_entities(ctx);
    assert_false(dt_in_critical_section(ctx));
    dt_orch_set_output(ctx, r, len);
}

/* Locks account x and waits for an event forever. */
static void holder(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_entity_ref one = {"account", "x"};
    dt_await(ctx, dt_lock_entities(ctx, &one, 1), NULL);
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

/* The last history event of `kind` of the instance, or NULL; valid until the next harness call
 * that reads history (hw_history_event keeps one decoded event). */
static const Dtpb__HistoryEvent *last_of(hw_world *w, const char *id,
                                         Dtpb__HistoryEvent__EventTypeCase k)
{
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < hw_history_len(w, id); i++) {
        if (hw_history_event(w, id, i)->event_type_case == k) {
            found = i;
        }
    }
    return found != SIZE_MAX ? hw_history_event(w, id, found) : NULL;
}

static void send_granted(hw_world *w, const char *id, const char *cs)
{
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = hw_now(w) / 1000;
    Dtpb__EntityLockGrantedEvent g = DTPB__ENTITY_LOCK_GRANTED_EVENT__INIT;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    g.critical_section_id = (char *)cs;
    ev.event_id = -1;
    ev.timestamp = &ts;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED;
    ev.entity_lock_granted = &g;
    hw_send_raw(w, id, &ev);
}

static void send_completed(hw_world *w, const char *id, const char *request, const char *out)
{
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = hw_now(w) / 1000;
    Dtpb__Payload p = DTPB__PAYLOAD__INIT;
    p.value.data = (uint8_t *)out;
    p.value.len = strlen(out);
    Dtpb__EntityOperationCompletedEvent c = DTPB__ENTITY_OPERATION_COMPLETED_EVENT__INIT;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    c.request_id = (char *)request;
    c.output = &p;
    ev.event_id = -1;
    ev.timestamp = &ts;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_COMPLETED;
    ev.entity_operation_completed = &c;
    hw_send_raw(w, id, &ev);
}

static void scenario_banker(hw_world *w)
{
    call_key = "a";
    hw_orchestrator(w, "banker", banker, NULL);
    hw_start(w, "banker", "bk", NULL);
    hw_run(w);
    const Dtpb__HistoryEvent *lock =
        last_of(w, "bk", DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED);
    assert_non_null(lock);
    const Dtpb__EntityLockRequestedEvent *l = lock->entity_lock_requested;
    assert_int_equal(l->n_lock_set, 2); /* sorted, lower case, no repeats */
    assert_string_equal(l->lock_set[0], "@account@a");
    assert_string_equal(l->lock_set[1], "@account@b");
    char cs[256];
    snprintf(cs, sizeof(cs), "%s", l->critical_section_id);
    send_granted(w, "bk", "another-section"); /* not this section's: ignored */
    send_granted(w, "bk", cs);
    hw_run(w);
    const Dtpb__HistoryEvent *call =
        last_of(w, "bk", DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED);
    assert_non_null(call);
    assert_memory_equal(call->entity_operation_called->target_instance_id->value.data, "@account@a",
                        10);
    char req[256];
    snprintf(req, sizeof(req), "%s", call->entity_operation_called->request_id);
    send_completed(w, "bk", req, "42");
    hw_run(w);
    assert_int_equal(hw_status(w, "bk"), ST_COMPLETED);
    assert_string_equal(hw_output(w, "bk"), "42");
    assert_non_null(last_of(w, "bk", DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED));
    size_t unlocks = 0;
    for (size_t i = 0; i < hw_history_len(w, "bk"); i++) {
        const Dtpb__HistoryEvent *ev = hw_history_event(w, "bk", i);
        if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT) {
            assert_true(ev->event_id >= 0); /* actions of dt_unlock_entities */
            unlocks++;
        }
    }
    assert_int_equal(unlocks, 2);
}

static void test_call_signal_lock_replay(void **state)
{
    (void)state;
    run_scenario(scenario_banker);
}

static void scenario_terminated_holder(hw_world *w)
{
    hw_orchestrator(w, "holder", holder, NULL);
    hw_start(w, "holder", "h", NULL);
    hw_run(w);
    const Dtpb__HistoryEvent *lock =
        last_of(w, "h", DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED);
    char cs[256];
    snprintf(cs, sizeof(cs), "%s", lock->entity_lock_requested->critical_section_id);
    send_granted(w, "h", cs);
    hw_run(w);
    hw_terminate(w, "h", "stop");
    hw_run(w);
    assert_int_equal(hw_status(w, "h"), ST_TERMINATED);
    const Dtpb__HistoryEvent *u =
        last_of(w, "h", DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT);
    assert_non_null(u); /* released by the engine as the execution ended */
    assert_int_equal(u->event_id, -1);
    assert_string_equal(u->entity_unlock_sent->critical_section_id, cs);
}

static void test_terminated_holder_unlocks(void **state)
{
    (void)state;
    run_scenario(scenario_terminated_holder);
}

static void test_changed_entity_is_nondeterminism(void **state)
{
    (void)state;
    dt_test_alloc_install();
    long before = dt_test_alloc_outstanding();
    hw_world *w = hw_create(0); /* every episode replays */
    hw_orchestrator(w, "banker", banker, NULL);
    call_key = "a";
    hw_start(w, "banker", "nd", NULL);
    hw_run(w);
    const Dtpb__HistoryEvent *lock =
        last_of(w, "nd", DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED);
    char cs[256];
    snprintf(cs, sizeof(cs), "%s", lock->entity_lock_requested->critical_section_id);
    send_granted(w, "nd", cs);
    hw_run(w);
    call_key = "b"; /* a deployment changed which entity the code calls */
    send_completed(w, "nd", "whatever", "1");
    hw_run(w);
    assert_int_equal(hw_status(w, "nd"), ST_FAILED);
    const Dtpb__TaskFailureDetails *f = hw_failure(w, "nd");
    assert_string_equal(f->error_type, DT_FAILURE_NONDETERMINISM);
    assert_non_null(strstr(f->error_message, "entity-call '@account@a'"));
    hw_destroy(w);
    assert_int_equal(dt_test_alloc_outstanding(), before);
    dt_set_allocator(NULL);
    call_key = "a";
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_signal_lock_replay),
        cmocka_unit_test(test_terminated_holder_unlocks),
        cmocka_unit_test(test_changed_entity_is_nondeterminism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
