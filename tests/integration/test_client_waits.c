/*
 * The client's shared waits against a real nats-server (runtime/client/waits.c): many threads
 * waiting on one client at once (one feed of the status bucket serves them all), a wait whose
 * instance finished before the wait began, a wait that times out while others are woken, a
 * client destroyed while waits block, and a wait that carries on across a nats-server restart
 * (a server this test owns, killed and restarted on the same port and store). The records are
 * written by the test itself, as a worker would write them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_client.h"
#include "test_nats.h"

#define NWAITERS 24

/* A thread waiting for an instance on a shared client; it records, the test's thread checks
 * (cmocka asserts only on the test's thread). */
typedef struct waiter {
    pthread_t th;
    dt_client *c;
    char id[32];
    int64_t timeout_ms;
    dt_status st;
    int32_t status; /* of the instance returned */
    int64_t took_ms;
    char err[256];
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    dt_client_instance *inst = NULL;
    int64_t t0 = tb_now_ms();
    w->st = dt_client_wait_for_completion(w->c, w->id, w->timeout_ms, false, &inst);
    w->took_ms = tb_now_ms() - t0;
    w->status = inst != NULL ? (int32_t)inst->runtime_status : -1;
    if (w->st != DT_OK && w->st != DT_ECLOSED) {
        dt_client_errmsg_copy(w->c, w->err, sizeof(w->err));
    }
    dt_client_instance_free(inst);
    return NULL;
}

static void waiter_start(waiter *w, dt_client *c, const char *id, int64_t timeout_ms)
{
    memset(w, 0, sizeof(*w));
    w->c = c;
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->timeout_ms = timeout_ms;
    assert_int_equal(pthread_create(&w->th, NULL, waiter_main, w), 0);
}

static void test_many_waits_one_client(void **state)
{
    tc_fixture *f = *state;
    waiter w[NWAITERS];
    char id[32];
    for (int i = 0; i < NWAITERS; i++) {
        snprintf(id, sizeof(id), "m%d", i % (NWAITERS / 2)); /* two waits on each instance */
        if (i < NWAITERS / 2) {
            tc_put_simple(f, id, DT_CLIENT_RUNNING);
        }
    }
    for (int i = 0; i < NWAITERS; i++) {
        snprintf(id, sizeof(id), "m%d", i % (NWAITERS / 2));
        waiter_start(&w[i], f->c, id, 20000);
    }
    tb_sleep_ms(300); /* the waits have armed (or will read the final record: either is fine) */
    for (int i = 0; i < NWAITERS / 2; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        tc_put_simple(f, id, DT_CLIENT_SUSPENDED); /* not finished: the waits go on */
        tc_put_simple(f, id, i % 3 == 0 ? DT_CLIENT_FAILED : DT_CLIENT_COMPLETED);
    }
    for (int i = 0; i < NWAITERS; i++) {
        pthread_join(w[i].th, NULL);
        if (w[i].st != DT_OK) {
            fail_msg("wait %d on %s: %s (%s)", i, w[i].id, dt_status_name(w[i].st), w[i].err);
        }
        int n = i % (NWAITERS / 2);
        assert_int_equal(w[i].status, n % 3 == 0 ? DT_CLIENT_FAILED : DT_CLIENT_COMPLETED);
        if (w[i].took_ms > 5000) {
            fail_msg("wait %d took %lld ms", i, (long long)w[i].took_ms);
        }
    }
}

static void test_finished_before_the_wait(void **state)
{
    tc_fixture *f = *state;
    /* A first wait opens the client's feed; the second instance finishes before its wait. */
    tc_put_simple(f, "early0", DT_CLIENT_COMPLETED);
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "early0", 5000, false, NULL), DT_OK);
    tc_put_simple(f, "early1", DT_CLIENT_RUNNING);
    tc_put_simple(f, "early1", DT_CLIENT_TERMINATED);
    int64_t t0 = tb_now_ms();
    dt_client_instance *st = NULL;
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "early1", 5000, false, &st), DT_OK);
    assert_int_equal(st->runtime_status, DT_CLIENT_TERMINATED);
    dt_client_instance_free(st);
    assert_true(tb_now_ms() - t0 < 2000);
    /* Started already: wait_for_start returns at once too. */
    TC_EXPECT(f, dt_client_wait_for_start(f->c, "early1", 5000, false, NULL), DT_OK);
}

/* A client of f's hub whose waits wait missing_ms for a record that is not there. */
static dt_client *client_missing(tc_fixture *f, int64_t missing_ms)
{
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = dt_test_nats_url();
    o.hub = f->hub;
    o.wait_missing_ms = missing_ms;
    dt_client *c = NULL;
    char err[256] = "";
    if (dt_client_create(&o, &c, err, sizeof(err)) != DT_OK) {
        fail_msg("client create: %s", err);
    }
    return c;
}

/* A wait for an instance without a record (a publish-to-start not run yet) waits for one, for the
 * client's wait_missing_ms; then, or with -1 at once, it is not found. */
static void test_waits_for_missing_record(void **state)
{
    tc_fixture *f = *state;
    waiter w;
    waiter_start(&w, f->c, "late0", 20000); /* default: 10 s for the record */
    tb_sleep_ms(400);
    tc_put_simple(f, "late0", DT_CLIENT_RUNNING);
    tc_put_simple(f, "late0", DT_CLIENT_COMPLETED);
    pthread_join(w.th, NULL);
    if (w.st != DT_OK) {
        fail_msg("wait for late0: %s (%s)", dt_status_name(w.st), w.err);
    }
    assert_int_equal(w.status, DT_CLIENT_COMPLETED);

    dt_client *c = client_missing(f, 300);
    int64_t t0 = tb_now_ms();
    assert_int_equal(dt_client_wait_for_completion(c, "never", 20000, false, NULL), DT_ENOTFOUND);
    int64_t took = tb_now_ms() - t0;
    assert_true(took >= 250 && took < 5000);
    /* A timeout shorter than that: not found (rather than timed out) at the timeout. */
    assert_int_equal(dt_client_wait_for_start(c, "never", 100, false, NULL), DT_ENOTFOUND);
    dt_client_destroy(c);

    c = client_missing(f, -1);
    t0 = tb_now_ms();
    assert_int_equal(dt_client_wait_for_completion(c, "never", 10000, false, NULL), DT_ENOTFOUND);
    assert_true(tb_now_ms() - t0 < 2000);
    dt_client_destroy(c);
}

static void test_timeout_among_others(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "t-slow", DT_CLIENT_RUNNING);
    tc_put_simple(f, "t-fast", DT_CLIENT_RUNNING);
    waiter slow, fast;
    waiter_start(&slow, f->c, "t-slow", 400);
    waiter_start(&fast, f->c, "t-fast", 20000);
    tb_sleep_ms(100);
    tc_put_simple(f, "t-slow", DT_CLIENT_SUSPENDED); /* a change that does not end it */
    tb_sleep_ms(500);
    tc_put_simple(f, "t-fast", DT_CLIENT_COMPLETED);
    pthread_join(slow.th, NULL);
    pthread_join(fast.th, NULL);
    assert_int_equal(slow.st, DT_ETIMEOUT);
    assert_true(slow.took_ms >= 390 && slow.took_ms < 3000);
    if (strstr(slow.err, "did not complete within 400 ms (status SUSPENDED)") == NULL) {
        fail_msg("timeout text: %s", slow.err);
    }
    assert_int_equal(fast.st, DT_OK);
    assert_int_equal(fast.status, DT_CLIENT_COMPLETED);
}

static void test_destroy_with_waits_pending(void **state)
{
    tc_fixture *f = *state;
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = dt_test_nats_url();
    o.hub = f->hub;
    dt_client *c = NULL;
    char err[256] = "";
    TB_EXPECT(dt_client_create(&o, &c, err, sizeof(err)), DT_OK, err);
    tc_put_simple(f, "d0", DT_CLIENT_RUNNING);
    tc_put_simple(f, "d1", DT_CLIENT_RUNNING);
    waiter w[4];
    waiter_start(&w[0], c, "d0", -1);
    waiter_start(&w[1], c, "d1", -1);
    waiter_start(&w[2], c, "d0", 60000);
    waiter_start(&w[3], c, "d1", 60000);
    tb_sleep_ms(400);
    int64_t t0 = tb_now_ms();
    dt_client_destroy(c);
    int64_t took = tb_now_ms() - t0;
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].th, NULL);
        assert_int_equal(w[i].st, DT_ECLOSED);
    }
    if (took > 3000) {
        fail_msg("destroy took %lld ms with waits pending", (long long)took);
    }
}

/* ---- across a nats-server restart: a server of this test's own (tests/support/test_nats.h) ----
 */

static dt_broker *server_connect(dt_test_nats *s)
{
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = s->url; /* not tb_connect_opts: it connects to the suite's server */
    dt_broker *b = NULL;
    char err[256] = "";
    TB_EXPECT(dt_broker_connect(&o, &b, err, sizeof(err)), DT_OK, err);
    return b;
}

/* Writes a minimal record of `id` with `status` through a connection of its own. */
static void put_record(dt_test_nats *s, const char *hub, const char *id, int32_t status)
{
    dt_broker *b = server_connect(s);
    char bucket[DT_BROKER_NAME_BUF], key[3 * DT_INSTANCE_ID_MAX + 1];
    dt_broker_bucket_name(hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    dt__status_key(id, key, sizeof(key));
    dt_broker_kv *kv = NULL;
    TB_EXPECT(dt_broker_kv_open(b, bucket, &kv), DT_OK, dt_broker_errmsg(b));
    Dtpb__InstanceStatus rec;
    dtpb__instance_status__init(&rec);
    rec.instance_id = (char *)id;
    rec.execution_id = "exec-1";
    rec.name = "Orch";
    rec.runtime_status = (Dtpb__OrchestrationStatus)status;
    uint8_t buf[256];
    size_t len = dtpb__instance_status__pack(&rec, buf);
    TB_EXPECT(dt_broker_kv_put(kv, key, buf, len, NULL), DT_OK, dt_broker_kv_errmsg(kv));
    dt_broker_kv_close(kv);
    dt_broker_close(b);
}

static void test_wait_across_restart(void **state)
{
    (void)state;
    dt_test_nats *s = dt_test_nats_new("dt-client-waits");
    assert_true(dt_test_nats_start(s, NULL));
    dt_broker *b = server_connect(s);
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc); /* file storage: the records survive the restart */
    char hub[64];
    tb_hub(b, "cwr", &hc, hub, sizeof(hub));
    dt_broker_close(b);
    put_record(s, hub, "r0", DT_CLIENT_RUNNING);
    put_record(s, hub, "r1", DT_CLIENT_RUNNING);
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = s->url;
    o.hub = hub;
    dt_client *c = NULL;
    char err[256] = "";
    TB_EXPECT(dt_client_create(&o, &c, err, sizeof(err)), DT_OK, err);
    waiter w0, w1;
    waiter_start(&w0, c, "r0", 60000);
    waiter_start(&w1, c, "r1", 60000);
    tb_sleep_ms(300);
    dt_test_nats_kill(s);
    tb_sleep_ms(300);
    assert_true(dt_test_nats_start(s, NULL)); /* the same port and store */
    /* One record changes right after the server is back (perhaps before the client is), the
     * other a while later (the client's feed has been re-armed by then). */
    put_record(s, hub, "r0", DT_CLIENT_COMPLETED);
    tb_sleep_ms(2500);
    put_record(s, hub, "r1", DT_CLIENT_FAILED);
    pthread_join(w0.th, NULL);
    pthread_join(w1.th, NULL);
    print_message("waits after the restart took %lld and %lld ms\n", (long long)w0.took_ms,
                  (long long)w1.took_ms);
    if (w0.st != DT_OK || w1.st != DT_OK) {
        fail_msg("waits across the restart: %s (%s), %s (%s)", dt_status_name(w0.st), w0.err,
                 dt_status_name(w1.st), w1.err);
    }
    assert_int_equal(w0.status, DT_CLIENT_COMPLETED);
    assert_int_equal(w1.status, DT_CLIENT_FAILED);
    dt_client_destroy(c);
    b = server_connect(s);
    tb_hub_delete(b, hub);
    dt_broker_close(b);
    dt_test_nats_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_waits_one_client, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_finished_before_the_wait, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_missing_record, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_among_others, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_waits_pending, tc_setup, tc_teardown),
        cmocka_unit_test(test_wait_across_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
