/* The human interaction sample (samples/human_interaction.c) against a real nats-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "samples_kit.h"

static void test_run(void **state)
{
    sample_run r = sk_run(*state);
    assert_true(sample_human_interaction.run(&r));
    assert_int_equal(r.instances, 2);
}

static void start_request(sk_env *e, const char *id, long timeout_ms)
{
    char in[128];
    snprintf(in, sizeof(in), "{\"request\":\"%s\",\"timeout_ms\":%ld}", id, timeout_ms);
    sk_start(e, "approval", id, in);
}

/* While it waits, the custom status says so; the manager's answer ends it, with no escalation. */
static void test_answer_in_time(void **state)
{
    sk_env *e = *state;
    start_request(e, "exp-1", 30000);
    dt_client_instance *inst = NULL;
    for (int i = 0; i < 300; i++) { /* until the orchestration has begun waiting */
        dt_client_instance_free(inst);
        inst = NULL;
        assert_int_equal(dt_client_get_status(e->client, "exp-1", true, &inst), DT_OK);
        if (inst->custom_status != NULL) {
            break;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_non_null(inst->custom_status);
    assert_string_equal(inst->custom_status, "\"waiting for the manager\"");
    assert_int_equal(inst->runtime_status, DT_CLIENT_RUNNING);
    dt_client_instance_free(inst);

    assert_int_equal(
        dt_client_raise_event(e->client, "exp-1", "approval", "\"rejected\"", 10, NULL), DT_OK);
    sk_expect_output(sk_wait(e, "exp-1"),
                     "{\"request\":\"exp-1\",\"decision\":\"rejected\",\"by\":\"manager\"}");
    char names[256];
    sk_history_names(e, "exp-1", "TaskScheduled", names, sizeof(names));
    assert_string_equal(names, "request_approval");
}

/* No answer: after the timeout (not before) the request is escalated. */
static void test_escalation_after_timeout(void **state)
{
    sk_env *e = *state;
    start_request(e, "exp-2", 800);
    dt_client_instance *inst = sk_wait(e, "exp-2");
    assert_true(inst->last_updated_at_ms - inst->created_at_ms >= 800);
    sk_expect_output(inst,
                     "{\"request\":\"exp-2\",\"decision\":\"escalated\",\"to\":\"director\"}");

    char names[256];
    sk_history_names(e, "exp-2", "TaskScheduled", names, sizeof(names));
    assert_string_equal(names, "request_approval,escalate");
    assert_int_equal(sk_history_names(e, "exp-2", "TimerFired", names, sizeof(names)), 1);
    /* The escalation was scheduled after the timer fired. */
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(e->client, "exp-2", &h), DT_OK);
    int64_t fired = 0, escalated = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, "TimerFired") == 0) {
            fired = (int64_t)i;
        } else if (strcmp(h->events[i].type, "TaskScheduled") == 0 &&
                   strcmp(h->events[i].name, "escalate") == 0) {
            escalated = (int64_t)i;
        }
    }
    assert_true(fired > 0 && escalated > fired);
    dt_client_history_free(h);
    /* The finished instance takes no late answer. */
    assert_int_equal(
        dt_client_raise_event(e->client, "exp-2", "approval", "\"approved\"", 10, NULL), DT_ESTATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_answer_in_time),
        cmocka_unit_test(test_escalation_after_timeout),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
