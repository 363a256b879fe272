/* The saga sample (samples/saga.c) against a real nats-server. */
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
    assert_true(sample_saga.run(&r));
    assert_int_equal(r.instances, 2);
}

/* Books the trip with `unavailable` (NULL: everything available); checks the output and the
 * activities the history shows, in order. */
static void check_trip(sk_env *e, const char *trip, const char *unavailable, const char *want,
                       const char *activities)
{
    char in[128];
    if (unavailable != NULL) {
        snprintf(in, sizeof(in), "{\"trip\":\"%s\",\"unavailable\":\"%s\"}", trip, unavailable);
    } else {
        snprintf(in, sizeof(in), "{\"trip\":\"%s\"}", trip);
    }
    sk_start(e, "book_trip", trip, in);
    sk_expect_output(sk_wait(e, trip), want);
    char names[512];
    sk_history_names(e, trip, "TaskScheduled", names, sizeof(names));
    assert_string_equal(names, activities);
}

static void test_all_booked(void **state)
{
    check_trip(*state, "T1", NULL,
               "{\"trip\":\"T1\",\"booked\":true,\"confirmations\":"
               "[\"FLIGHT-T1\",\"HOTEL-T1\",\"CAR-T1\"]}",
               "book_flight,book_hotel,book_car");
}

/* The third step fails: the two before it are compensated, the last done first. */
static void test_compensation_in_reverse_order(void **state)
{
    sk_env *e = *state;
    check_trip(e, "T2", "car",
               "{\"trip\":\"T2\",\"booked\":false,\"error\":\"no car available for T2\","
               "\"compensated\":[\"HOTEL-T2\",\"FLIGHT-T2\"]}",
               "book_flight,book_hotel,book_car,cancel_hotel,cancel_flight");
    /* The failure was caught (TaskFailed), and every compensation completed with the
     * confirmation it cancelled. */
    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(e->client, "T2", &h), DT_OK);
    size_t failed = 0, completed = 0;
    const char *results[8] = {0};
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, "TaskFailed") == 0) {
            assert_string_equal(h->events[i].failure->type, "trip.Unavailable");
            failed++;
        } else if (strcmp(h->events[i].type, "TaskCompleted") == 0 && completed < 8) {
            results[completed++] = h->events[i].payload;
        }
    }
    assert_int_equal(failed, 1);
    assert_int_equal(completed, 4);
    assert_string_equal(results[2], "\"HOTEL-T2\"");
    assert_string_equal(results[3], "\"FLIGHT-T2\"");
    dt_client_history_free(h);
}

static void test_second_step_fails(void **state)
{
    check_trip(*state, "T3", "hotel",
               "{\"trip\":\"T3\",\"booked\":false,\"error\":\"no hotel available for T3\","
               "\"compensated\":[\"FLIGHT-T3\"]}",
               "book_flight,book_hotel,cancel_flight");
}

static void test_first_step_fails(void **state)
{
    check_trip(*state, "T4", "flight",
               "{\"trip\":\"T4\",\"booked\":false,\"error\":\"no flight available for T4\","
               "\"compensated\":[]}",
               "book_flight");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_all_booked),
        cmocka_unit_test(test_compensation_in_reverse_order),
        cmocka_unit_test(test_second_step_fails),
        cmocka_unit_test(test_first_step_fails),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
