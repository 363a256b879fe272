/*
 * Raise, terminate, suspend and resume against a real nats-server: the OrchestrationMessage each
 * publishes (every field, subject, Nats-Msg-Id), fresh versus idempotent identities, and the
 * checks against the status record (unknown instance, finished instance, bad names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_client.h"

/* Checks the envelope common to every signal: any execution, event id -1, a recent timestamp,
 * and dedupe "<id>/-/<kind>/<n>" (or the key form). */
static void check_envelope(const Dtpb__OrchestrationMessage *m, const char *id, const char *kind,
                           int64_t before)
{
    assert_string_equal(m->instance_id, id);
    assert_string_equal(m->execution_id, "");
    assert_int_equal(m->event->event_id, -1);
    int64_t ts = m->event->timestamp->seconds * 1000 + m->event->timestamp->nanos / 1000000;
    assert_true(ts >= before && ts <= dt__now_ms());
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "%s/-/%s/", id, kind);
    assert_memory_equal(m->dedupe_id, prefix, strlen(prefix));
    assert_true(strlen(m->dedupe_id) > strlen(prefix));
    assert_int_equal(m->reuse_policy, 0);
    assert_string_equal(m->result_subject, "");
}

static void test_raise_event_message(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "inst/1", DT_CLIENT_RUNNING);
    int64_t before = dt__now_ms();
    TC_EXPECT(f, dt_client_raise_event(f->c, "inst/1", "Approval", "{\"ok\":true}", 11, NULL),
              DT_OK);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    check_envelope(m, "inst/1", "raise", before);
    assert_int_equal(m->event->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED);
    assert_string_equal(m->event->event_raised->name, "Approval");
    tc_assert_payload(m->event->event_raised->input, "{\"ok\":true}");

    /* No data: no payload. Each call is a new message. */
    TC_EXPECT(f, dt_client_raise_event(f->c, "inst/1", "Ping", NULL, 0, NULL), DT_OK);
    TC_EXPECT(f, dt_client_raise_event(f->c, "inst/1", "Ping", NULL, 0, NULL), DT_OK);
    Dtpb__OrchestrationMessage *a = tc_fetch_orch(f);
    Dtpb__OrchestrationMessage *b = tc_fetch_orch(f);
    assert_null(a->event->event_raised->input);
    assert_string_not_equal(a->dedupe_id, b->dedupe_id);
}

static void test_raise_with_idempotency_key(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "idem", DT_CLIENT_PENDING); /* pending instances take events too */
    TC_EXPECT(f, dt_client_raise_event(f->c, "idem", "Pay", "1", 1, "req-77"), DT_OK);
    TC_EXPECT(f, dt_client_raise_event(f->c, "idem", "Pay", "1", 1, "req-77"), DT_OK);
    assert_int_equal(tc_orch_count(f), 1);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    assert_string_equal(m->dedupe_id, "idem/-/raise/k.req-77");
    TC_EXPECT(f, dt_client_raise_event(f->c, "idem", "Pay", "1", 1, "bad key"), DT_EINVAL);
}

static void test_terminate_suspend_resume_messages(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "ctl", DT_CLIENT_RUNNING);
    int64_t before = dt__now_ms();
    TC_EXPECT(f, dt_client_terminate(f->c, "ctl", "operator said so", true), DT_OK);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    check_envelope(m, "ctl", "terminate", before);
    assert_int_equal(m->event->event_type_case,
                     DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED);
    tc_assert_payload(m->event->execution_terminated->input, "operator said so");
    assert_true(m->event->execution_terminated->recurse);

    TC_EXPECT(f, dt_client_terminate(f->c, "ctl", NULL, false), DT_OK);
    m = tc_fetch_orch(f);
    assert_null(m->event->execution_terminated->input);
    assert_false(m->event->execution_terminated->recurse);

    TC_EXPECT(f, dt_client_suspend(f->c, "ctl", "maintenance"), DT_OK);
    m = tc_fetch_orch(f);
    check_envelope(m, "ctl", "suspend", before);
    assert_int_equal(m->event->event_type_case,
                     DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED);
    tc_assert_payload(m->event->execution_suspended->input, "maintenance");

    tc_put_simple(f, "ctl", DT_CLIENT_SUSPENDED);
    TC_EXPECT(f, dt_client_resume(f->c, "ctl", NULL), DT_OK);
    m = tc_fetch_orch(f);
    check_envelope(m, "ctl", "resume", before);
    assert_int_equal(m->event->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED);
    assert_null(m->event->execution_resumed->input);
}

static void test_unknown_instance(void **state)
{
    tc_fixture *f = *state;
    TC_EXPECT(f, dt_client_raise_event(f->c, "ghost", "E", NULL, 0, NULL), DT_ENOTFOUND);
    tc_errmsg_has(f, "no instance 'ghost'");
    TC_EXPECT(f, dt_client_terminate(f->c, "ghost", NULL, false), DT_ENOTFOUND);
    TC_EXPECT(f, dt_client_suspend(f->c, "ghost", NULL), DT_ENOTFOUND);
    TC_EXPECT(f, dt_client_resume(f->c, "ghost", NULL), DT_ENOTFOUND);
    assert_int_equal(tc_orch_count(f), 0);
}

static void test_finished_instance(void **state)
{
    tc_fixture *f = *state;
    const int32_t finished[] = {DT_CLIENT_COMPLETED, DT_CLIENT_FAILED, DT_CLIENT_TERMINATED,
                                DT_CLIENT_CANCELED};
    for (size_t i = 0; i < DT__ARRAY_LEN(finished); i++) {
        tc_put_simple(f, "over", finished[i]);
        TC_EXPECT(f, dt_client_raise_event(f->c, "over", "E", NULL, 0, NULL), DT_ESTATE);
        tc_errmsg_has(f, "instance 'over' is ");
        TC_EXPECT(f, dt_client_terminate(f->c, "over", NULL, false), DT_ESTATE);
        TC_EXPECT(f, dt_client_suspend(f->c, "over", NULL), DT_ESTATE);
        TC_EXPECT(f, dt_client_resume(f->c, "over", NULL), DT_ESTATE);
    }
    assert_int_equal(tc_orch_count(f), 0);
}

static void test_invalid_arguments(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "ok", DT_CLIENT_RUNNING);
    TC_EXPECT(f, dt_client_raise_event(f->c, "ok", "a.b", NULL, 0, NULL), DT_EINVAL);
    tc_errmsg_has(f, "invalid event name");
    TC_EXPECT(f, dt_client_raise_event(f->c, "ok", "", NULL, 0, NULL), DT_EINVAL);
    TC_EXPECT(f, dt_client_raise_event(f->c, "ok", NULL, NULL, 0, NULL), DT_EINVAL);
    TC_EXPECT(f, dt_client_raise_event(f->c, "ok", "E", NULL, 3, NULL), DT_EINVAL);
    TC_EXPECT(f, dt_client_raise_event(f->c, "bad id", "E", NULL, 0, NULL), DT_EINVAL);
    TC_EXPECT(f, dt_client_terminate(f->c, "", NULL, false), DT_EINVAL);
    TC_EXPECT(f, dt_client_suspend(f->c, NULL, NULL), DT_EINVAL);
    assert_int_equal(tc_orch_count(f), 0);
}

static void test_event_too_large(void **state)
{
    (void)state;
    tc_fixture *f = tc_fixture_new("clisigbig", 1, 4096);
    tc_put_simple(f, "x", DT_CLIENT_RUNNING);
    char data[4000];
    memset(data, 'd', sizeof(data));
    TC_EXPECT(f, dt_client_raise_event(f->c, "x", "E", data, sizeof(data), NULL), DT_ETOOLARGE);
    assert_int_equal(tc_orch_count(f), 0);
    tc_fixture_free(f);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raise_event_message, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_raise_with_idempotency_key, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_terminate_suspend_resume_messages, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_instance, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_finished_instance, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, tc_setup, tc_teardown),
        cmocka_unit_test(test_event_too_large),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
