/* The function chaining sample (samples/chaining.c) against a real nats-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "samples_kit.h"

/* What dt-samples runs: its own check of the outcome passes. */
static void test_run(void **state)
{
    sample_run r = sk_run(*state);
    assert_true(sample_chaining.run(&r));
    assert_int_equal(r.instances, 1);
}

/* The three activities ran one after another, in the order of the code, each with its city. */
static void test_sequence(void **state)
{
    sk_env *e = *state;
    sk_start(e, "hello_cities", "chain-1", NULL);
    sk_expect_output(sk_wait(e, "chain-1"),
                     "[\"Hello Tokyo!\",\"Hello Seattle!\",\"Hello London!\"]");
    char names[256];
    assert_int_equal(sk_history_names(e, "chain-1", "TaskScheduled", names, sizeof(names)), 3);
    assert_string_equal(names, "say_hello,say_hello,say_hello");

    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(e->client, "chain-1", &h), DT_OK);
    const char *want[] = {"\"Tokyo\"", "\"Seattle\"", "\"London\""};
    size_t k = 0;
    int last_completed = -1; /* each call is scheduled after the previous one completed */
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, "TaskScheduled") == 0) {
            assert_true(k < 3);
            assert_string_equal(h->events[i].payload, want[k]);
            assert_int_equal(last_completed, (int)k - 1);
            k++;
        } else if (strcmp(h->events[i].type, "TaskCompleted") == 0) {
            last_completed++;
        }
    }
    assert_int_equal(last_completed, 2);
    dt_client_history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_sequence),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
