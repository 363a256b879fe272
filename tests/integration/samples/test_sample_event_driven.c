/* The event-driven start sample (samples/event_driven.c) against a real nats-server: the service
 * side publishes one plain NATS message and receives the result on its own subject. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "event_driven.h"
#include "samples_kit.h"

static void test_run(void **state)
{
    sample_run r = sk_run(*state);
    assert_true(sample_event_driven.run(&r));
}

/* The InstanceStatus that arrives on the service's subject is the finished instance's, and the
 * status bucket agrees. */
static void test_result_on_subject(void **state)
{
    sk_env *e = *state;
    char subject[128], err[256] = "";
    snprintf(subject, sizeof(subject), "signup.%s.results.grace", e->hub);
    dt_client_instance *st = NULL;
    int rc = welcome_service_request(e->url, e->hub, "welcome-grace", "{\"user\":\"grace\"}",
                                     subject, SK_WAIT_MS, &st, err, sizeof(err));
    if (rc != 0) {
        fail_msg("service request: %s", err);
    }
    const char *want = "{\"user\":\"grace\",\"account\":\"acct-grace\",\"email\":\"sent\"}";
    assert_string_equal(st->instance_id, "welcome-grace");
    assert_string_equal(st->name, "welcome_user");
    assert_int_equal(st->runtime_status, DT_CLIENT_COMPLETED);
    assert_non_null(st->output);
    assert_int_equal(st->output_len, strlen(want));
    assert_memory_equal(st->output, want, strlen(want));
    assert_true(st->last_updated_at_ms > 0);
    assert_true(st->execution_id[0] != '\0');
    dt_client_instance_free(st);

    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(e->client, "welcome-grace", true, &inst), DT_OK);
    sk_expect_output(inst, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_result_on_subject),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
