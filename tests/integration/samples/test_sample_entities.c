/* The entity samples (samples/entity_counter.c, samples/bank_transfer.c) against a real
 * nats-server: the counter driven by plain NATS publishes ends exact (a repeated publish applied
 * once), and concurrent transfers in critical sections conserve the total. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "samples_kit.h"

static void test_counter(void **state)
{
    sample_run r = sk_run(*state);
    assert_true(sample_entity_counter.run(&r));
}

static void test_bank_transfer(void **state)
{
    sample_run r = sk_run(*state);
    assert_true(sample_bank_transfer.run(&r));
    assert_int_equal(r.instances, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_bank_transfer),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
