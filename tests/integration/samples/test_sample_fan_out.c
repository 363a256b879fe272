/* The fan-out/fan-in sample (samples/fan_out_fan_in.c) against a real nats-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "samples_kit.h"

static void test_run(void **state)
{
    sample_run r = sk_run(*state);
    r.width = 200;
    assert_true(sample_fan_out_fan_in.run(&r));
}

/* Width N schedules N activities before any result is awaited, and sums 1²..N². */
static void check_width(sk_env *e, long n)
{
    char id[64], in[64], want[96];
    snprintf(id, sizeof(id), "fan-%ld", n);
    snprintf(in, sizeof(in), "{\"width\":%ld}", n);
    snprintf(want, sizeof(want), "{\"width\":%ld,\"sum\":%lld}", n,
             (long long)n * (n + 1) * (2 * n + 1) / 6);
    sk_start(e, "fan_out_fan_in", id, in);
    sk_expect_output(sk_wait(e, id), want);

    dt_client_history *h = NULL;
    assert_int_equal(dt_client_get_history(e->client, id, &h), DT_OK);
    size_t scheduled = 0, first_completed = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, "TaskScheduled") == 0) {
            assert_string_equal(h->events[i].name, "square");
            scheduled++;
        } else if (strcmp(h->events[i].type, "TaskCompleted") == 0 && first_completed == 0) {
            first_completed = scheduled;
        }
    }
    assert_int_equal(scheduled, (size_t)n);
    assert_int_equal(first_completed, (size_t)n); /* all fanned out before the first result */
    dt_client_history_free(h);
}

static void test_widths(void **state)
{
    check_width(*state, 1);
    check_width(*state, 10);
    check_width(*state, 1000);
}

static void test_bad_width(void **state)
{
    sk_env *e = *state;
    sk_start(e, "fan_out_fan_in", "fan-bad", "{\"width\":0}");
    dt_client_instance *inst = sk_wait(e, "fan-bad");
    assert_int_equal(inst->runtime_status, DT_CLIENT_FAILED);
    assert_string_equal(inst->failure->type, "sample.BadInput");
    dt_client_instance_free(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_widths),
        cmocka_unit_test(test_bad_width),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
