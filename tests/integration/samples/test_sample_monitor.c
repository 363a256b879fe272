/* The monitor sample (samples/monitor.c) against a real nats-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "samples_kit.h"

static void test_run(void **state)
{
    sample_run r = sk_run(*state);
    assert_true(sample_monitor.run(&r));
}

/* The job is done on its 4th check: four executions, each a new one by continue-as-new, the
 * last with a history of one check. */
static void test_checks_until_done(void **state)
{
    sk_env *e = *state;
    const char *first_exec = "11111111-2222-4333-8444-555555555555";
    dt_client_start_options o = {
        .instance_id = "mon-1",
        .execution_id = first_exec,
        .input = "{\"job\":\"j1\",\"check\":1,\"ready_after\":4,\"interval_ms\":100}",
    };
    o.input_len = strlen(o.input);
    assert_int_equal(dt_client_schedule(e->client, "job_monitor", &o, NULL, 0), DT_OK);
    dt_client_instance *inst = sk_wait(e, "mon-1");
    assert_string_not_equal(inst->execution_id, first_exec);            /* continued as new */
    assert_true(inst->last_updated_at_ms - inst->created_at_ms >= 300); /* 3 intervals */
    sk_expect_output(inst, "{\"job\":\"j1\",\"checks\":4,\"status\":\"done\"}");

    /* The last execution's history: started with check 4, one status check, no timer. */
    char names[512];
    assert_int_equal(sk_history_names(e, "mon-1", "TaskScheduled", names, sizeof(names)), 1);
    assert_string_equal(names, "get_job_status");
    assert_int_equal(sk_history_names(e, "mon-1", "TimerCreated", names, sizeof(names)), 0);
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(e->client, "mon-1", &h), DT_OK);
    const char *input = NULL;
    for (size_t i = 0; i < h->n && input == NULL; i++) {
        if (strcmp(h->events[i].type, "ExecutionStarted") == 0) {
            input = h->events[i].payload;
        }
    }
    assert_non_null(input);
    assert_non_null(strstr(input, "\"check\":4"));
    dt_client_history_free(h);
}

/* A job that never finishes: the monitor gives up after max_checks. */
static void test_gives_up(void **state)
{
    sk_env *e = *state;
    sk_start(e, "job_monitor", "mon-2",
             "{\"job\":\"j2\",\"ready_after\":99,\"interval_ms\":50,\"max_checks\":3}");
    sk_expect_output(sk_wait(e, "mon-2"), "{\"job\":\"j2\",\"checks\":3,\"status\":\"running\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_checks_until_done),
        cmocka_unit_test(test_gives_up),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
