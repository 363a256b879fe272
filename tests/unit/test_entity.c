/*
 * test_entity: entity IDs and the entity engine (runtime/entity): operations in arrival order on
 * the state, a failed operation rolled back alone, calls answered, unknown entities, oversized
 * state, and locks (forwarded in order, granted by the last, others queued until the unlock).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "entity/entity_int.h"
#include "protocol/protocol_int.h"

/* ---- a counter entity: add <n>, get, reset (deletes), fail (sets then fails), big, ping ---- */

static long state_num(dt_entity_ctx *c)
{
    size_t len = 0;
    const char *s = dt_entity_state(c, &len);
    return s != NULL ? strtol(s, NULL, 10) : 0;
}

static void set_num(dt_entity_ctx *c, long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", v);
    dt_entity_set_state(c, buf, (size_t)n);
}

static void counter(dt_entity_ctx *c, void *ud)
{
    (void)ud;
    const char *op = dt_entity_operation(c);
    const char *in = dt_entity_input(c, NULL);
    if (strcmp(op, "add") == 0) {
        set_num(c, state_num(c) + (in != NULL ? strtol(in, NULL, 10) : 1));
    } else if (strcmp(op, "get") == 0) {
        size_t len = 0;
        const void *s = dt_entity_state(c, &len);
        dt_entity_set_result(c, s, len);
    } else if (strcmp(op, "reset") == 0) {
        dt_entity_delete_state(c);
    } else if (strcmp(op, "fail") == 0) {
        set_num(c, 999);
        dt_entity_signal(c, "counter", "other", "add", "1", 1);
        dt_entity_fail(c, "Boom", "failed on purpose");
    } else if (strcmp(op, "big") == 0) {
        dt_entity_set_state(c, "0123456789abcdef0123456789", 26);
    } else if (strcmp(op, "ping") == 0) {
        dt_entity_signal(c, "Counter", "other", "add", "5", 1);
        dt_entity_start_orchestration(c, "hello", "orch-1", "x", 1);
    }
}

typedef struct world {
    dt__arena *a;
    Dtpb__OrchestrationMessage *msgs[64];
    size_t n;
    int seq;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    w->a = dt__arena_create(4096);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    dt__arena_destroy(w->a);
    free(w);
    return 0;
}

static Dtpb__OrchestrationMessage *msg(world *w, const char *to, Dtpb__HistoryEvent *ev)
{
    Dtpb__OrchestrationMessage *m = dt__arena_alloc(w->a, sizeof(*m));
    char id[32];
    snprintf(id, sizeof(id), "m%d", w->seq++);
    dt__orch_msg_init(m, to, "", ev, dt__arena_strdup(w->a, id));
    w->msgs[w->n++] = m;
    return m;
}

static Dtpb__Payload *pl(world *w, const char *s)
{
    return s != NULL ? dt__emit_payload(w->a, (const uint8_t *)s, strlen(s)) : NULL;
}

static void signal_op(world *w, const char *to, const char *op, const char *input)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(w->a, -1, 1000);
    Dtpb__EntityOperationSignaledEvent *s = dt__arena_alloc(w->a, sizeof(*s));
    dtpb__entity_operation_signaled_event__init(s);
    s->request_id = "r";
    s->operation = (char *)op;
    s->input = pl(w, input);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
    ev->entity_operation_signaled = s;
    msg(w, to, ev);
}

static void call_op(world *w, const char *to, const char *op, const char *input, const char *caller,
                    const char *req)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(w->a, -1, 1000);
    Dtpb__EntityOperationCalledEvent *c = dt__arena_alloc(w->a, sizeof(*c));
    dtpb__entity_operation_called_event__init(c);
    c->request_id = (char *)req;
    c->operation = (char *)op;
    c->input = pl(w, input);
    c->parent_instance_id = pl(w, caller);
    c->parent_execution_id = pl(w, "e1");
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED;
    ev->entity_operation_called = c;
    msg(w, to, ev);
}

static void lock_req(world *w, const char *to, char **set, size_t n, int pos, const char *holder,
                     const char *cs)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(w->a, -1, 1000);
    Dtpb__EntityLockRequestedEvent *l = dt__arena_alloc(w->a, sizeof(*l));
    dtpb__entity_lock_requested_event__init(l);
    l->critical_section_id = (char *)cs;
    l->lock_set = set;
    l->n_lock_set = n;
    l->position = pos;
    l->parent_instance_id = pl(w, holder);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED;
    ev->entity_lock_requested = l;
    msg(w, to, ev);
}

static void unlock_req(world *w, const char *to, const char *holder, const char *cs)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(w->a, -1, 1000);
    Dtpb__EntityUnlockSentEvent *u = dt__arena_alloc(w->a, sizeof(*u));
    dtpb__entity_unlock_sent_event__init(u);
    u->critical_section_id = (char *)cs;
    u->parent_instance_id = pl(w, holder);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT;
    ev->entity_unlock_sent = u;
    msg(w, to, ev);
}

/* Runs the queued messages on (state, rec) and clears the queue. */
static dt__entity_out run_all(world *w, const char *id, const char *state,
                              const Dtpb__EntityRecord *rec, dt_entity_fn fn, size_t max)
{
    dt__entity_in in = {.instance_id = id,
                        .state = state != NULL ? (dt__blob){(const uint8_t *)state, strlen(state)}
                                               : (dt__blob){0},
                        .rec = rec,
                        .msgs = w->msgs,
                        .n_msgs = w->n,
                        .fn = fn,
                        .max_state = max,
                        .now_ms = 2000};
    dt__entity_out out;
    assert_int_equal(dt__entity_run(w->a, &in, &out), DT_OK);
    w->n = 0;
    return out;
}

static const char *str(const dt__blob *b)
{
    return b->data != NULL ? (const char *)b->data : NULL;
}

/* ---- tests ---- */

static void test_ids(void **state)
{
    (void)state;
    char buf[DT_ENTITY_ID_MAX + 1], name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    char why[128] = "";
    assert_int_equal(dt_entity_id("Counter", "k@1", buf, sizeof(buf)), DT_OK);
    assert_string_equal(buf, "@counter@k@1");
    assert_int_equal(dt_entity_id_parse(buf, name, sizeof(name), key, sizeof(key)), DT_OK);
    assert_string_equal(name, "counter");
    assert_string_equal(key, "k@1");
    assert_int_equal(dt_entity_id_check("a@b", "k", why, sizeof(why)), DT_EINVAL);
    assert_non_null(strstr(why, "entity name"));
    assert_int_equal(dt_entity_id_check("a.b", "k", NULL, 0), DT_EINVAL);
    assert_int_equal(dt_entity_id_check("", "k", NULL, 0), DT_EINVAL);
    assert_int_equal(dt_entity_id_check("a", "", why, sizeof(why)), DT_EINVAL);
    assert_non_null(strstr(why, "entity key"));
    assert_int_equal(dt_entity_id_check("a", "with space", NULL, 0), DT_EINVAL);
    assert_int_equal(dt_entity_id("a", "k", buf, 4), DT_ETOOLARGE);
    assert_int_equal(dt_entity_id_parse("plain", name, sizeof(name), key, sizeof(key)), DT_EINVAL);
    assert_int_equal(dt_entity_id_parse("@@k", name, sizeof(name), key, sizeof(key)), DT_EINVAL);
    assert_true(dt__entity_is_id("@a@b"));
    assert_false(dt__entity_is_id("a@b"));
}

static void test_ops_in_order_failed_rolled_back_alone(void **state)
{
    world *w = *state;
    signal_op(w, "@counter@k", "add", "2");
    signal_op(w, "@counter@k", "fail", NULL); /* sets 999 and signals, then fails */
    signal_op(w, "@counter@k", "add", "3");
    dt__entity_out o = run_all(w, "@counter@k", "10", NULL, counter, 0);
    assert_string_equal(str(&o.state), "15");
    assert_true(o.state_changed);
    assert_int_equal(o.n_ok, 2);
    assert_int_equal(o.n_failed, 1);
    assert_int_equal(o.n_sends, 0); /* the failed operation's signal is not sent */
    assert_true(o.rec_empty);
}

static void test_delete_and_recreate(void **state)
{
    world *w = *state;
    signal_op(w, "@counter@k", "reset", NULL);
    dt__entity_out o = run_all(w, "@counter@k", "7", NULL, counter, 0);
    assert_null(o.state.data);
    signal_op(w, "@counter@k", "add", "1");
    o = run_all(w, "@counter@k", NULL, NULL, counter, 0);
    assert_string_equal(str(&o.state), "1");
}

static void test_call_answers(void **state)
{
    world *w = *state;
    call_op(w, "@counter@k", "get", NULL, "orch", "req-1");
    call_op(w, "@counter@k", "fail", NULL, "orch", "req-2");
    dt__entity_out o = run_all(w, "@counter@k", "42", NULL, counter, 0);
    assert_int_equal(o.n_sends, 2);
    Dtpb__OrchestrationMessage *ok = o.sends[0], *bad = o.sends[1];
    assert_string_equal(ok->instance_id, "orch");
    assert_string_equal(ok->execution_id, "e1");
    assert_int_equal(ok->event->event_type_case,
                     DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_COMPLETED);
    assert_string_equal(ok->event->entity_operation_completed->request_id, "req-1");
    assert_memory_equal(ok->event->entity_operation_completed->output->value.data, "42", 2);
    assert_int_equal(bad->event->event_type_case,
                     DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_FAILED);
    assert_string_equal(bad->event->entity_operation_failed->failure_details->error_type, "Boom");
    assert_string_equal(str(&o.state), "42");
    assert_string_not_equal(ok->dedupe_id, bad->dedupe_id);
}

static void test_unknown_entity(void **state)
{
    world *w = *state;
    call_op(w, "@nosuch@k", "get", NULL, "orch", "req-1");
    signal_op(w, "@nosuch@k", "add", "1");
    dt__entity_out o = run_all(w, "@nosuch@k", NULL, NULL, NULL, 0);
    assert_int_equal(o.n_sends, 1);
    const Dtpb__TaskFailureDetails *f = o.sends[0]->event->entity_operation_failed->failure_details;
    assert_string_equal(f->error_type, DT__ENTITY_UNKNOWN);
    assert_true(f->is_non_retriable);
    assert_non_null(strstr(f->error_message, "'nosuch'"));
    assert_int_equal(o.n_dropped, 1);
    assert_non_null(strstr(o.dropped_why[0], "no entity function"));
}

static void test_state_too_large(void **state)
{
    world *w = *state;
    call_op(w, "@counter@k", "big", NULL, "orch", "req-1");
    signal_op(w, "@counter@k", "add", "1");
    dt__entity_out o = run_all(w, "@counter@k", "5", NULL, counter, 16);
    assert_string_equal(str(&o.state), "6");
    assert_int_equal(o.n_failed, 1);
    assert_string_equal(o.sends[0]->event->entity_operation_failed->failure_details->error_type,
                        DT__ENTITY_TOO_LARGE);
}

static void test_sends_of_successful_op(void **state)
{
    world *w = *state;
    signal_op(w, "@counter@k", "ping", NULL);
    dt__entity_out o = run_all(w, "@counter@k", NULL, NULL, counter, 0);
    assert_int_equal(o.n_sends, 2);
    assert_string_equal(o.sends[0]->instance_id, "@counter@other");
    assert_string_equal(o.sends[0]->event->entity_operation_signaled->operation, "add");
    assert_string_equal(o.sends[1]->instance_id, "orch-1");
    assert_int_equal(o.sends[1]->event->event_type_case,
                     DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED);
    /* The same batch again (a crash before its commit) sends the same identities. */
    char *id0 = dt__arena_strdup(w->a, o.sends[0]->dedupe_id);
    w->seq = 0;
    signal_op(w, "@counter@k", "ping", NULL);
    o = run_all(w, "@counter@k", NULL, NULL, counter, 0);
    assert_string_equal(o.sends[0]->dedupe_id, id0);
}

static void test_lock_forward_grant_queue_unlock(void **state)
{
    world *w = *state;
    char *set[] = {"@acct@a", "@acct@b"};
    /* First entity: locks and forwards to the second. */
    lock_req(w, "@acct@a", set, 2, 0, "orch", "cs1");
    dt__entity_out o = run_all(w, "@acct@a", "100", NULL, counter, 0);
    assert_int_equal(o.n_sends, 1);
    assert_string_equal(o.sends[0]->instance_id, "@acct@b");
    assert_int_equal(o.sends[0]->event->entity_lock_requested->position, 1);
    assert_string_equal(o.rec->locked_by, "orch");
    Dtpb__EntityRecord *rec_a = o.rec;
    /* Second (last): grants to the orchestration. */
    lock_req(w, "@acct@b", set, 2, 1, "orch", "cs1");
    o = run_all(w, "@acct@b", NULL, NULL, counter, 0);
    assert_int_equal(o.sends[0]->event->event_type_case,
                     DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED);
    assert_string_equal(o.sends[0]->instance_id, "orch");
    /* While locked: another's signal and call wait; the holder's call runs. */
    signal_op(w, "@acct@a", "add", "1");
    call_op(w, "@acct@a", "add", "5", "other", "r-other");
    call_op(w, "@acct@a", "add", "-30", "orch", "r-orch");
    lock_req(w, "@acct@a", set, 2, 0, "other2", "cs2");
    o = run_all(w, "@acct@a", "100", rec_a, counter, 0);
    assert_string_equal(str(&o.state), "70");
    assert_int_equal(o.n_queued, 3);
    assert_int_equal(o.rec->n_queue, 3);
    assert_false(o.rec_empty);
    Dtpb__EntityRecord *rec = o.rec;
    /* A stale unlock (another section) changes nothing; the holder's runs the queue in order,
     * up to the queued lock request, which locks it again for other2. */
    unlock_req(w, "@acct@a", "orch", "cs-old");
    unlock_req(w, "@acct@a", "orch", "cs1");
    o = run_all(w, "@acct@a", "70", rec, counter, 0);
    assert_string_equal(str(&o.state), "76");
    assert_string_equal(o.rec->locked_by, "other2");
    assert_int_equal(o.rec->n_queue, 0);
    /* Answer to r-other, then the forward of other2's lock request. */
    assert_int_equal(o.n_sends, 2);
    assert_string_equal(o.sends[0]->instance_id, "other");
    assert_string_equal(o.sends[1]->instance_id, "@acct@b");
}

static void test_unlock_before_lock_request(void **state)
{
    world *w = *state;
    char *set[] = {"@acct@a", "@acct@b"};
    /* The orchestration ended (and unlocked everything) while its request was on its way. */
    unlock_req(w, "@acct@b", "orch", "cs1");
    dt__entity_out o = run_all(w, "@acct@b", NULL, NULL, counter, 0);
    assert_int_equal(o.rec->n_released, 1);
    Dtpb__EntityRecord *rec = o.rec;
    lock_req(w, "@acct@b", set, 2, 1, "orch", "cs1");
    signal_op(w, "@acct@b", "add", "1");
    o = run_all(w, "@acct@b", NULL, rec, counter, 0);
    assert_string_equal(o.rec->locked_by, ""); /* not locked for the ended orchestration */
    assert_int_equal(o.n_sends, 0);            /* and no grant */
    assert_string_equal(str(&o.state), "1");
}

static void test_malformed_requests_dropped(void **state)
{
    world *w = *state;
    char big[600];
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    call_op(w, "@counter@k", "get", NULL, "orch", big);       /* request ID too long */
    call_op(w, "@counter@k", "get", NULL, "has space", "r1"); /* caller not an instance ID */
    char *set[] = {"@counter@k", "not-an-entity"};
    lock_req(w, "@counter@k", set, 2, 0, "orch", "cs1");
    dt__entity_out o = run_all(w, "@counter@k", "1", NULL, counter, 0);
    assert_int_equal(o.n_dropped, 3);
    assert_int_equal(o.n_sends, 0);
    assert_true(o.rec_empty);
}

static void test_lock_request_for_another_entity_dropped(void **state)
{
    world *w = *state;
    char *set[] = {"@acct@a", "@acct@b"};
    lock_req(w, "@acct@b", set, 2, 0, "orch", "cs1");
    dt__entity_out o = run_all(w, "@acct@b", NULL, NULL, counter, 0);
    assert_int_equal(o.n_dropped, 1);
    assert_true(o.rec_empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_ops_in_order_failed_rolled_back_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_entity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sends_of_successful_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_forward_grant_queue_unlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlock_before_lock_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_request_for_another_entity_dropped, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
