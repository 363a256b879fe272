/*
 * Partition leases against a real nats-server when workers go away: a graceful stop hands over
 * at once; a worker cut off from NATS (dt__leases_sever: it stops writing but keeps running)
 * stops counting its leases before anybody can take them, and they are taken over after the
 * TTL; a lease that someone else overwrites or deletes is dropped at once. Also measures how
 * nats-server 2.9 expires a bucket entry at its max age. The background sampler checks
 * throughout that no partition ever has two holders (test_leases.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_leases.h"

#define TTL 2000
#define NP  8

/* One of three workers stops gracefully: the other two hold everything well within the TTL. */
static void test_graceful_stop_hands_over(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    tl_start(&f, 0, "wa");
    tl_start(&f, 1, "wb");
    tl_start(&f, 2, "wc");
    tl_wait_converged(&f, 5000);
    uint32_t held[TL_MAXP];
    size_t n = tl_held(&f, 1, held);
    assert_true(n > 0);
    int64_t t0 = tb_now_ms();
    tl_stop(&f, 1);
    int64_t stop_ms = tb_now_ms() - t0;
    int64_t ms = tl_wait_converged(&f, TTL) + stop_ms;
    print_message("graceful stop of a worker holding %zu of %u: stop took %lld ms, the others "
                  "held everything %lld ms after it began (TTL %d)\n",
                  n, NP, (long long)stop_ms, (long long)ms, TTL);
    /* Faster than any takeover by expiry, which comes TTL - TTL/3 after the last renewal at
     * the earliest (test_killed_worker_taken_over_after_ttl). */
    assert_true(ms < TTL - TTL / 3 - 100);
    tl_fleet_finish(&f);
}

typedef struct kill_times {
    int64_t lost;  /* the test first saw the severed worker hold nothing (mono ms) */
    int64_t first; /* the survivor holds one of the severed worker's partitions */
    int64_t all;   /* ... all of them */
} kill_times;

/*
 * Watches the severed worker `k` and the survivor `s` until s holds all of k's partitions.
 * `until` is the latest deadline of k's leases: k must not count any lease from then on. The
 * check is exact whatever the scheduling: the clock is read before asking, so a lease reported
 * held was held at some moment after `now`, which must still be before the deadline.
 */
static kill_times watch_takeover(tl_fleet *f, int k, int s, const uint32_t *theirs, size_t n,
                                 int64_t until)
{
    kill_times t = {0, 0, 0};
    int64_t t0 = tb_now_ms();
    while (t.all == 0) {
        uint32_t held[TL_MAXP];
        int64_t now = tb_now_ms();
        if (tl_held(f, k, held) > 0) {
            assert_true(now < until);
        } else if (t.lost == 0) {
            t.lost = now;
        }
        size_t taken = 0;
        for (size_t i = 0; i < n; i++) {
            taken += dt__leases_held(f->w[s].l, theirs[i], NULL) ? 1u : 0u;
        }
        if (taken > 0 && t.first == 0) {
            t.first = now;
            assert_true(t.lost != 0); /* the survivor only starts after the severed one stopped */
        }
        if (taken == n) {
            t.all = now;
        }
        assert_true(now - t0 < 3 * TTL);
        tb_sleep_ms(1);
    }
    return t;
}

/*
 * A worker is cut off (it stops writing, without releasing): its leases stop counting at their
 * deadlines (last renewal + TTL - margin), the entries expire at last renewal + TTL, and only
 * then does the survivor take them over.
 */
static void test_killed_worker_taken_over_after_ttl(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    tl_start(&f, 0, "wa");
    tl_start(&f, 1, "wb");
    tl_wait_converged(&f, 5000);
    tb_sleep_ms(TTL / 2);
    uint32_t theirs[TL_MAXP];
    size_t n = tl_held(&f, 1, theirs);
    assert_true(n > 0 && n < NP);
    int64_t t0 = tb_now_ms();
    dt__leases_sever(f.w[1].l);
    tb_sleep_ms(50); /* a renewal in flight when severed may still complete */
    int64_t until = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t u = 0;
        assert_true(dt__leases_held(f.w[1].l, theirs[i], &u));
        until = u > until ? u : until;
    }
    kill_times t = watch_takeover(&f, 1, 0, theirs, n, until);
    print_message("worker cut off at 0 ms (TTL %d, margin %d): its leases stopped counting at "
                  "%lld ms (deadline %lld), the survivor took the first at %lld ms and all %zu at "
                  "%lld ms; safety gap %lld ms\n",
                  TTL, TTL / 4, (long long)(t.lost - t0), (long long)(until - t0),
                  (long long)(t.first - t0), n, (long long)(t.all - t0),
                  (long long)(t.first - t.lost));
    assert_true(t.first > t.lost);
    /* Expiry is at the last renewal (at most TTL/3 before the cut) + TTL: never earlier. The
     * upper bound is only liveness (a loaded machine delays the survivor's scan), kept loose. */
    assert_true(t.first - t0 >= TTL - TTL / 3 - 100);
    assert_true(t.all - t0 <= 2 * TTL + 1000);
    tl_fleet_finish(&f);
}

/* Someone else overwrites one lease and deletes another: the holder drops each at once, then
 * claims them again (new claim revisions) when they are free. */
static void test_foreign_write_drops_lease(void **state)
{
    (void)state;
    static tl_fleet f; /* static: a failed test leaves its sampler running on live memory */
    tl_fleet_init(&f, NP, TTL);
    tl_start(&f, 0, "wa");
    tl_wait_converged(&f, 5000);
    dt__leases *l = f.w[0].l;
    dt__lease_info p0, p1;
    assert_true(dt__leases_get(l, 0, &p0));
    assert_true(dt__leases_get(l, 1, &p1));

    int64_t t_intruder = tb_now_ms(), t0 = t_intruder;
    const char *intruder = "{\"owner\":\"intruder\"}";
    TB_EXPECT(dt_broker_kv_put(f.kv, "p.0", intruder, strlen(intruder), NULL), DT_OK,
              dt_broker_kv_errmsg(f.kv));
    while (dt__leases_held(l, 0, NULL)) {
        assert_true(tb_now_ms() - t0 < TTL / 4);
        tb_sleep_ms(1);
    }
    print_message("overwritten lease dropped after %lld ms\n", (long long)(tb_now_ms() - t0));

    TB_EXPECT(dt_broker_kv_delete(f.kv, "p.1", 0), DT_OK, dt_broker_kv_errmsg(f.kv));
    dt__lease_info again;
    t0 = tb_now_ms();
    while (!dt__leases_get(l, 1, &again) || again.claim_rev == p1.claim_rev) {
        assert_true(tb_now_ms() - t0 < TTL / 2);
        tb_sleep_ms(1);
    }
    print_message("deleted lease claimed again after %lld ms\n", (long long)(tb_now_ms() - t0));
    assert_true(again.claim_rev > p1.claim_rev);

    /* The intruder's record expires after the TTL; then p.0 is claimed again. */
    tl_wait_converged(&f, 2 * TTL);
    assert_true(dt__leases_get(l, 0, &again));
    assert_true(again.claim_rev > p0.claim_rev);
    int64_t ms = tb_now_ms() - t_intruder;
    print_message("p.0 claimed again %lld ms after the intruder's write (TTL %d)\n", (long long)ms,
                  TTL);
    assert_true(ms >= TTL - 100);
    tl_fleet_finish(&f);
}

/*
 * How nats-server 2.9.10 expires a KV entry at the bucket's max age: until the server removes
 * the message, a get still returns it and a create fails with DT_EEXIST; after, both see the key
 * free. Measured for both storage types.
 */
static void probe_expiry(dt_broker_storage storage)
{
    dt_broker *b = tb_connect();
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.partitions = 1;
    c.lease_ttl_ms = TTL;
    c.storage = storage;
    char hub[128], bucket[DT_BROKER_NAME_BUF];
    tb_hub(b, "lexp", &c, hub, sizeof(hub));
    dt_broker_bucket_name(hub, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket));
    dt_broker_kv *kv = NULL;
    TB_EXPECT(dt_broker_kv_open(b, bucket, &kv), DT_OK, dt_broker_errmsg(b));
    int64_t t0 = tb_now_ms();
    TB_EXPECT(dt_broker_kv_create(kv, "p.0", "x", 1, NULL), DT_OK, dt_broker_kv_errmsg(kv));
    int64_t t_get = 0;
    for (;;) {
        dt_broker_kv_entry e = {0};
        dt_status g = dt_broker_kv_get(kv, "p.0", &e);
        dt_broker_kv_entry_clear(&e);
        int64_t now = tb_now_ms();
        if (g == DT_ENOTFOUND && t_get == 0) {
            t_get = now;
        }
        dt_status st = dt_broker_kv_create(kv, "p.0", "y", 1, NULL);
        if (st == DT_OK) {
            break;
        }
        TB_EXPECT(st, DT_EEXIST, dt_broker_kv_errmsg(kv));
        assert_true(t_get == 0); /* gone for get but not for create: never seen */
        assert_true(now - t0 < 3 * TTL);
        tb_sleep_ms(2);
    }
    int64_t t_create = tb_now_ms();
    if (t_get == 0) {
        t_get = t_create; /* removed between our get and our create */
    }
    print_message("%s storage, max age %d ms: entry gone for get after %lld ms, create succeeded "
                  "after %lld ms\n",
                  storage == DT_BROKER_STORAGE_FILE ? "file" : "memory", TTL,
                  (long long)(t_get - t0), (long long)(t_create - t0));
    assert_true(t_create - t0 >= TTL);
    assert_true(t_create - t0 <= TTL + 1500);
    dt_broker_kv_close(kv);
    tb_hub_delete(b, hub);
    dt_broker_close(b);
}

static void test_server_expiry(void **state)
{
    (void)state;
    probe_expiry(DT_BROKER_STORAGE_FILE);
    probe_expiry(DT_BROKER_STORAGE_MEMORY);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graceful_stop_hands_over),
        cmocka_unit_test(test_killed_worker_taken_over_after_ttl),
        cmocka_unit_test(test_foreign_write_drops_lease),
        cmocka_unit_test(test_server_expiry),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
