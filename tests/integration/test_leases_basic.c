/*
 * Partition leases against a real nats-server: start-up errors, one worker takes every
 * partition and keeps it across renewals, two workers split them, a third joining is given its
 * share by handover, and a stop releases everything. A background sampler checks throughout
 * that no partition ever has two holders (test_leases.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_leases.h"

#define TTL 2000
#define NP  8

static void expect_start(dt__leases_config *c, dt_status want)
{
    dt__leases *l = NULL;
    char err[256] = "";
    dt_status st = dt__leases_start(c, &l, err, sizeof(err));
    print_message("start: %s (%s)\n", dt_status_name(st), err);
    assert_int_equal(st, want);
    assert_null(l);
}

static void test_start_errors(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    dt__leases_config c = {.broker = f.admin, .hub = f.hub, .worker_id = "bad.id"};
    expect_start(&c, DT_EINVAL);
    c.worker_id = "";
    expect_start(&c, DT_EINVAL);
    char longid[DT__LEASES_ID_MAX + 2];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    c.worker_id = longid;
    expect_start(&c, DT_EINVAL);
    c.worker_id = "ok";
    c.ttl_ms = TTL * 2; /* longer than the bucket's: unsafe */
    expect_start(&c, DT_ECONFLICT);
    c.ttl_ms = 0;
    c.partitions = NP + 1;
    expect_start(&c, DT_ECONFLICT);
    c.partitions = 0;
    c.margin_ms = TTL / 2;
    expect_start(&c, DT_EINVAL);
    c.margin_ms = 0;
    c.hub = "no_such_hub_for_leases";
    expect_start(&c, DT_ENOTFOUND);
    c.hub = "bad.hub";
    expect_start(&c, DT_EINVAL);
    assert_int_equal(dt__leases_start(NULL, NULL, NULL, 0), DT_EINVAL);
    dt__leases_destroy(NULL);
    tl_fleet_finish(&f);
}

static void expect_key(tl_fleet *f, const char *key, const char *contains)
{
    dt_broker_kv_entry e = {0};
    dt_status st = dt_broker_kv_get(f->kv, key, &e);
    if (contains == NULL) {
        TB_EXPECT(st, DT_ENOTFOUND, dt_broker_kv_errmsg(f->kv));
        return;
    }
    TB_EXPECT(st, DT_OK, dt_broker_kv_errmsg(f->kv));
    assert_non_null(strstr(e.value, contains));
    dt_broker_kv_entry_clear(&e);
}

/* One worker gets all P, keeps them (same claim) over several renewals, releases on stop. */
static void test_single_worker_gets_all(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    tl_start(&f, 0, "wa");
    int64_t ms = tl_wait_converged(&f, 5000);
    print_message("one worker held all %u partitions %lld ms after start\n", NP, (long long)ms);
    assert_int_equal(dt__leases_partitions(f.w[0].l), NP);
    assert_int_equal(dt__leases_ttl_ms(f.w[0].l), TTL);
    dt__lease_info first[NP];
    for (uint32_t p = 0; p < NP; p++) {
        assert_true(dt__leases_get(f.w[0].l, p, &first[p]));
        int64_t left = first[p].valid_until_mono_ms - dt__mono_ms();
        assert_true(left > 0 && left <= TTL - TTL / 4);
    }
    assert_false(dt__leases_held(f.w[0].l, NP, NULL));
    expect_key(&f, "p.0", "\"owner\":\"wa\"");
    expect_key(&f, "w.wa", "\"worker_id\":\"wa\"");

    /* Two TTLs later: the same leases (same claim revisions), deadlines moved on. */
    tb_sleep_ms(2 * TTL);
    for (uint32_t p = 0; p < NP; p++) {
        dt__lease_info now;
        assert_true(dt__leases_get(f.w[0].l, p, &now));
        assert_true(now.claim_rev == first[p].claim_rev);
        assert_true(now.valid_until_mono_ms > first[p].valid_until_mono_ms + TTL);
    }

    int before = __atomic_load_n(&f.w[0].changes, __ATOMIC_RELAXED);
    dt__leases_stop(f.w[0].l);
    assert_true(__atomic_load_n(&f.w[0].changes, __ATOMIC_RELAXED) == before + 1);
    uint32_t held[TL_MAXP];
    assert_int_equal(dt__leases_snapshot(f.w[0].l, held, TL_MAXP), 0);
    dt__leases_stop(f.w[0].l); /* idempotent */
    for (uint32_t p = 0; p < NP; p++) {
        char key[16];
        snprintf(key, sizeof(key), "p.%u", p);
        expect_key(&f, key, NULL);
    }
    expect_key(&f, "w.wa", NULL);
    tl_fleet_finish(&f);
}

static void print_split(tl_fleet *f, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t held[TL_MAXP];
        size_t k = tl_held(f, i, held);
        print_message("  %s holds %zu\n", f->w[i].id, k);
        assert_true(k > 0);
    }
}

/* Two workers started together split P=8 as placement says: each some, all covered, no overlap. */
static void test_two_workers_split(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    tl_start(&f, 0, "wa");
    tl_start(&f, 1, "wb");
    int64_t ms = tl_wait_converged(&f, 5000);
    print_message("two workers converged %lld ms after start\n", (long long)ms);
    print_split(&f, 2);
    /* Stable: still converged a TTL later (no flapping). */
    tb_sleep_ms(TTL);
    assert_true(tl_converged(&f));
    tl_fleet_finish(&f);
}

/* A third worker joins a converged pair: the others hand over its share, never overlapping. */
static void test_third_joins(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    tl_start(&f, 0, "wa");
    tl_start(&f, 1, "wb");
    tl_wait_converged(&f, 5000);
    tb_sleep_ms(200);
    tl_start(&f, 2, "wc");
    int64_t ms = tl_wait_converged(&f, 5000);
    print_message("a third worker got its share %lld ms after its start (TTL %d)\n", (long long)ms,
                  TTL);
    print_split(&f, 3);
    assert_true(ms < TTL); /* not a rebalance that waits out anybody's lease */
    tl_fleet_finish(&f);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_single_worker_gets_all),
        cmocka_unit_test(test_two_workers_split),
        cmocka_unit_test(test_third_joins),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
