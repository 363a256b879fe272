/* The sub-orchestrations sample (samples/sub_orchestrations.c) against a real nats-server. */
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
    assert_true(sample_sub_orchestrations.run(&r));
    assert_int_equal(r.instances, 4);
}

/* Five orders: five child instances of their own, each completed with its charge, whose parent
 * is the orders instance; the parent sums them. */
static void test_children(void **state)
{
    sk_env *e = *state;
    sk_start(e, "process_orders", "orders-1", "{\"orders\":5}");
    sk_expect_output(sk_wait(e, "orders-1"), "{\"orders\":5,\"total\":150}");
    char names[512];
    assert_int_equal(
        sk_history_names(e, "orders-1", "SubOrchestrationInstanceCreated", names, sizeof(names)),
        5);
    assert_int_equal(sk_history_names(e, "orders-1", "TaskScheduled", names, sizeof(names)), 0);

    dt_client_filter f = {.instance_id_prefix = "orders-1:"};
    dt_client_page *page = NULL;
    assert_int_equal(dt_client_list(e->client, &f, NULL, 0, true, &page), DT_OK);
    assert_int_equal(page->n, 5);
    bool seen[6] = {false};
    for (size_t i = 0; i < page->n; i++) {
        const dt_client_instance *c = &page->instances[i];
        assert_string_equal(c->name, "process_order");
        assert_string_equal(c->parent_instance_id, "orders-1");
        assert_int_equal(c->runtime_status, DT_CLIENT_COMPLETED);
        int k = 0, charged = 0;
        assert_int_equal(sscanf(c->output, "{\"order\":\"o-%d\",\"charged\":%d}", &k, &charged), 2);
        assert_true(k >= 1 && k <= 5 && !seen[k]);
        assert_int_equal(charged, 10 * k);
        seen[k] = true;
        /* each child ran its own activities */
        sk_history_names(e, c->instance_id, "TaskScheduled", names, sizeof(names));
        assert_string_equal(names, "reserve_stock,charge_payment");
    }
    dt_client_page_free(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_children),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
