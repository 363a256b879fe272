/* Tests of the common helpers: status texts and the allocator seam. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common_int.h"
#include "durabletask/status.h"
#include "test_support.h"

static void status_texts_cover_every_code(void **state)
{
    (void)state;
    assert_string_equal(dt_status_str(DT_OK), "success");
    assert_string_equal(dt_status_name(DT_ETOOLARGE), "ETOOLARGE");
    assert_string_equal(dt_status_name((dt_status)999), "UNKNOWN");
    for (int s = 0; s <= DT_EBUSY; s++) {
        assert_string_not_equal(dt_status_name((dt_status)s), "UNKNOWN");
    }
}

static void allocator_counts_and_fails_on_demand(void **state)
{
    (void)state;
    dt_test_alloc_install();
    long base = dt_test_alloc_outstanding();
    char *s = dt_strdup("hello");
    assert_non_null(s);
    assert_string_equal(s, "hello");
    assert_int_equal(dt_test_alloc_outstanding(), base + 1);
    dt_free(s);
    assert_int_equal(dt_test_alloc_outstanding(), base);

    dt_test_alloc_fail_after(1);
    void *a = dt_alloc(8);
    void *b = dt_alloc(8);
    assert_non_null(a);
    assert_null(b);
    dt_test_alloc_fail_after(-1);
    dt_free(a);
    assert_null(dt_calloc(SIZE_MAX / 2, 4));
    dt_set_allocator(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_texts_cover_every_code),
        cmocka_unit_test(allocator_counts_and_fails_on_demand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
