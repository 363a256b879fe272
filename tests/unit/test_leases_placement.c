/*
 * Placement of partitions on workers (rendezvous hashing, runtime/worker/lease/leases_placement.c):
 * determinism, independence from member order, even spread, and few moves when members come and
 * go. Pure functions: no broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/lease/leases_int.h"

#define P 64u

/* owner[p] = the ID that owns p among ids[0..n). */
static void assign(const char *const *ids, size_t n, uint32_t np, const char **owner)
{
    for (uint32_t p = 0; p < np; p++) {
        size_t i = dt__leases_place(ids, NULL, n, p);
        assert_true(i < n);
        owner[p] = ids[i];
    }
}

static size_t count_owned(const char *const *owner, uint32_t np, const char *id)
{
    size_t c = 0;
    for (uint32_t p = 0; p < np; p++) {
        c += strcmp(owner[p], id) == 0 ? 1u : 0u;
    }
    return c;
}

/* The hash is part of the fleet protocol: these values may never change (leases_int.h). */
static void test_frozen_values(void **state)
{
    (void)state;
    assert_true(dt__leases_id_hash("") == 0xcbf29ce484222325ull);
    assert_true(dt__leases_id_hash("a") == 0xaf63dc4c8601ec8cull);
    const char *ids[] = {"worker-a", "worker-b", "worker-c"};
    const char *owner[8];
    assign(ids, 3, 8, owner);
    char got[64] = "";
    for (uint32_t p = 0; p < 8; p++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof(got) - len, "%c", owner[p][7]);
    }
    print_message("placement of 8 partitions on worker-a/b/c: %s\n", got);
    assert_string_equal(got, "abbcaaaa");
    assert_true(dt__leases_weight(dt__leases_id_hash("w1"), 0) == 0x5d08cf1e0581cc1full);
}

static void test_deterministic_and_order_free(void **state)
{
    (void)state;
    const char *ids[] = {"w1", "w2", "w3", "w4", "w5"};
    const char *rev[] = {"w5", "w4", "w3", "w2", "w1"};
    uint64_t hashes[5];
    for (size_t i = 0; i < 5; i++) {
        hashes[i] = dt__leases_id_hash(ids[i]);
    }
    const char *a[P], *b[P];
    assign(ids, 5, P, a);
    assign(rev, 5, P, b);
    for (uint32_t p = 0; p < P; p++) {
        assert_string_equal(a[p], b[p]);
        assert_string_equal(a[p], ids[dt__leases_place(ids, hashes, 5, p)]);
        assert_string_equal(a[p], ids[dt__leases_place(ids, NULL, 5, p)]); /* again: same */
    }
    assert_int_equal(dt__leases_place(ids, NULL, 0, 3), 0);
    const char *one[] = {"solo"};
    for (uint32_t p = 0; p < P; p++) {
        assert_int_equal(dt__leases_place(one, NULL, 1, p), 0);
    }
}

/* Equal weights (the same ID twice) go to the smaller ID... which is the same string: the first
 * of equal IDs wins, whatever the order of distinct ones. */
static void test_duplicate_ids(void **state)
{
    (void)state;
    const char *ids[] = {"x", "x"};
    for (uint32_t p = 0; p < 16; p++) {
        assert_int_equal(dt__leases_place(ids, NULL, 2, p), 0);
    }
}

static void test_spread_64_over_3(void **state)
{
    (void)state;
    const char *sets[][3] = {{"worker-a", "worker-b", "worker-c"},
                             {"w1", "w2", "w3"},
                             {"host1-1234-ab12", "host2-88-ff00", "host3-7-0001"}};
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        const char *owner[P];
        assign(sets[s], 3, P, owner);
        for (size_t i = 0; i < 3; i++) {
            size_t c = count_owned(owner, P, sets[s][i]);
            print_message("set %zu: %s owns %zu of %u\n", s, sets[s][i], c, P);
            /* fair share 21.3; within +-50%: 11..32 */
            assert_true(c >= 11 && c <= 32);
        }
    }
}

/* Over many fleets the spread is even: no member of 4 gets more than twice its share of 1024. */
static void test_spread_many_fleets(void **state)
{
    (void)state;
    static const char *owner[1024];
    for (int f = 0; f < 50; f++) {
        char names[4][32];
        const char *ids[4];
        for (int i = 0; i < 4; i++) {
            snprintf(names[i], sizeof(names[i]), "fleet%d-worker%d", f, i);
            ids[i] = names[i];
        }
        assign(ids, 4, 1024, owner);
        for (int i = 0; i < 4; i++) {
            size_t c = count_owned(owner, 1024, ids[i]);
            assert_true(c >= 200 && c <= 312); /* share 256 */
        }
    }
}

/* A joining member takes only partitions it wins (about P/(n+1)); nothing moves between the
 * others. A leaving member's partitions move; nothing else does. */
static void test_join_and_leave_move_few(void **state)
{
    (void)state;
    const char *three[] = {"worker-a", "worker-b", "worker-c"};
    const char *four[] = {"worker-a", "worker-b", "worker-c", "worker-d"};
    const char *before[P], *after[P];
    assign(three, 3, P, before);
    assign(four, 4, P, after);
    size_t moved = 0;
    for (uint32_t p = 0; p < P; p++) {
        if (strcmp(before[p], after[p]) != 0) {
            assert_string_equal(after[p], "worker-d");
            moved++;
        }
    }
    print_message("worker-d joining 3 moved %zu of %u partitions (fair share 16)\n", moved, P);
    assert_true(moved >= 8 && moved <= 24);

    const char *two[] = {"worker-a", "worker-c"};
    const char *left[P];
    assign(two, 2, P, left);
    for (uint32_t p = 0; p < P; p++) {
        if (strcmp(before[p], left[p]) != 0) {
            assert_string_equal(before[p], "worker-b");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_values),
        cmocka_unit_test(test_deterministic_and_order_free),
        cmocka_unit_test(test_duplicate_ids),
        cmocka_unit_test(test_spread_64_over_3),
        cmocka_unit_test(test_spread_many_fleets),
        cmocka_unit_test(test_join_and_leave_move_few),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
