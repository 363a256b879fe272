/*
 * The single-key read and watch of the broker adapter (kv_watch_key.c) against a real
 * nats-server: a key written before and after the watch starts, deleted keys (the read reports
 * the marker's revision), a key that never had an entry, a missing bucket, and many watches
 * that leave no consumer behind on the server once their inactive threshold has passed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_broker.h"

typedef struct fixture {
    dt_broker *b;
    char hub[64];
    char bucket[DT_BROKER_NAME_BUF]; /* DT_<hub>_STATUS */
    dt_broker_kv *kv;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = tb_connect();
    tb_hub(f->b, "kvkey", NULL, f->hub, sizeof(f->hub));
    dt_broker_bucket_name(f->hub, DT_BROKER_BUCKET_STATUS, f->bucket, sizeof(f->bucket));
    TB_EXPECT(dt_broker_kv_open(f->b, f->bucket, &f->kv), DT_OK, dt_broker_errmsg(f->b));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_broker_kv_close(f->kv);
    tb_hub_delete(f->b, f->hub);
    dt_broker_close(f->b);
    free(f);
    return 0;
}

static uint64_t put(fixture *f, const char *key, const char *v)
{
    uint64_t rev = 0;
    TB_EXPECT(dt_broker_kv_put(f->kv, key, v, strlen(v), &rev), DT_OK, dt_broker_kv_errmsg(f->kv));
    return rev;
}

/* The next entry must be a put of `v` at revision `rev` (0: any). */
static void expect_put(dt_broker_kv_key_watch *w, const char *v, uint64_t rev)
{
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 2000, &e), DT_OK, dt_broker_kv_key_watch_errmsg(w));
    assert_int_equal(e.op, DT_BROKER_KV_PUT);
    assert_int_equal(e.len, strlen(v));
    assert_memory_equal(e.value, v, e.len);
    if (rev != 0) {
        assert_int_equal(e.revision, rev);
    }
    dt_broker_kv_entry_clear(&e);
}

static void test_last_reports_markers(void **state)
{
    fixture *f = *state;
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_key_last(f->b, f->bucket, "never", &e), DT_ENOTFOUND,
              dt_broker_errmsg(f->b));
    uint64_t r1 = put(f, "k", "one");
    TB_EXPECT(dt_broker_kv_key_last(f->b, f->bucket, "k", &e), DT_OK, dt_broker_errmsg(f->b));
    assert_int_equal(e.op, DT_BROKER_KV_PUT);
    assert_int_equal(e.revision, r1);
    assert_string_equal((const char *)e.value, "one");
    assert_string_equal(e.key, "k");
    dt_broker_kv_entry_clear(&e);
    TB_EXPECT(dt_broker_kv_delete(f->kv, "k", r1), DT_OK, dt_broker_kv_errmsg(f->kv));
    TB_EXPECT(dt_broker_kv_key_last(f->b, f->bucket, "k", &e), DT_OK, dt_broker_errmsg(f->b));
    assert_int_equal(e.op, DT_BROKER_KV_DELETE);
    assert_true(e.revision > r1);
    assert_int_equal(e.len, 0);
    dt_broker_kv_entry_clear(&e);
    TB_EXPECT(dt_broker_kv_key_last(f->b, "DT_nobucket_STATUS", "k", &e), DT_ENOTFOUND,
              dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_kv_key_last(f->b, f->bucket, "bad key", &e), DT_EINVAL,
              dt_broker_errmsg(f->b));
}

typedef struct later {
    fixture *f;
    const char *key;
    const char *value;
} later;

static void *put_later(void *arg)
{
    later *l = arg;
    tb_sleep_ms(100);
    put(l->f, l->key, l->value);
    return NULL;
}

/* Before: the current value first; after: the watch wakes on the write (no polling). */
static void test_watch_before_and_after(void **state)
{
    fixture *f = *state;
    uint64_t r1 = put(f, "w", "before");
    put(f, "other", "x"); /* another key of the bucket is not reported */
    dt_broker_kv_key_watch *w = NULL;
    TB_EXPECT(dt_broker_kv_key_watch_open(f->b, f->bucket, "w", 0, &w), DT_OK,
              dt_broker_errmsg(f->b));
    expect_put(w, "before", r1);
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 50, &e), DT_ETIMEOUT, "");
    later l = {f, "w", "after"};
    pthread_t th;
    int64_t t0 = tb_now_ms();
    assert_int_equal(pthread_create(&th, NULL, put_later, &l), 0);
    expect_put(w, "after", 0);
    int64_t ms = tb_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(ms >= 90 && ms < 1500);
    put(f, "other", "y");
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 100, &e), DT_ETIMEOUT, "");
    dt_broker_kv_key_watch_close(w);
}

/* A key without entry is reported once as DT_ENOTFOUND; then its first write arrives. */
static void test_watch_empty_then_created(void **state)
{
    fixture *f = *state;
    dt_broker_kv_key_watch *w = NULL;
    TB_EXPECT(dt_broker_kv_key_watch_open(f->b, f->bucket, "fresh", 0, &w), DT_OK,
              dt_broker_errmsg(f->b));
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 1000, &e), DT_ENOTFOUND, "");
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 50, &e), DT_ETIMEOUT, "");
    later l = {f, "fresh", "v1"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, put_later, &l), 0);
    expect_put(w, "v1", 0);
    pthread_join(th, NULL);
    dt_broker_kv_key_watch_close(w);
}

/* Deletes are reported with their marker's revision, at open and later. */
static void test_watch_deleted(void **state)
{
    fixture *f = *state;
    uint64_t r1 = put(f, "d", "v");
    TB_EXPECT(dt_broker_kv_delete(f->kv, "d", r1), DT_OK, dt_broker_kv_errmsg(f->kv));
    dt_broker_kv_key_watch *w = NULL;
    TB_EXPECT(dt_broker_kv_key_watch_open(f->b, f->bucket, "d", 0, &w), DT_OK,
              dt_broker_errmsg(f->b));
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 2000, &e), DT_OK, dt_broker_kv_key_watch_errmsg(w));
    assert_int_equal(e.op, DT_BROKER_KV_DELETE);
    assert_true(e.revision > r1);
    dt_broker_kv_entry_clear(&e);
    uint64_t r2 = put(f, "d", "again");
    expect_put(w, "again", r2);
    TB_EXPECT(dt_broker_kv_delete(f->kv, "d", 0), DT_OK, dt_broker_kv_errmsg(f->kv));
    TB_EXPECT(dt_broker_kv_key_watch_next(w, 2000, &e), DT_OK, dt_broker_kv_key_watch_errmsg(w));
    assert_int_equal(e.op, DT_BROKER_KV_DELETE);
    assert_true(e.revision > r2);
    dt_broker_kv_entry_clear(&e);
    dt_broker_kv_key_watch_close(w);
}

static void test_watch_missing_bucket(void **state)
{
    fixture *f = *state;
    dt_broker_kv_key_watch *w = NULL;
    TB_EXPECT(dt_broker_kv_key_watch_open(f->b, "DT_nobucket_STATUS", "k", 0, &w), DT_ENOTFOUND,
              dt_broker_errmsg(f->b));
    assert_null(w);
    TB_EXPECT(dt_broker_kv_key_watch_open(f->b, f->bucket, "bad key", 0, &w), DT_EINVAL,
              dt_broker_errmsg(f->b));
    dt_broker_kv_key_watch_close(NULL);
}

static int64_t consumers(fixture *f)
{
    char stream[DT_BROKER_NAME_BUF + 4];
    snprintf(stream, sizeof(stream), "KV_%s", f->bucket);
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(f->b, stream, &si), DT_OK, dt_broker_errmsg(f->b));
    return si.consumers;
}

/* Closing does not delete the consumer; the server does, once the threshold passed. */
static void test_many_watches_leave_nothing(void **state)
{
    fixture *f = *state;
    put(f, "m", "v");
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        dt_broker_kv_key_watch *w = NULL;
        TB_EXPECT(dt_broker_kv_key_watch_open(f->b, f->bucket, "m", 300, &w), DT_OK,
                  dt_broker_errmsg(f->b));
        expect_put(w, "v", 0);
        dt_broker_kv_key_watch_close(w);
    }
    int64_t left = consumers(f);
    print_message("consumers right after %d watches closed: %lld\n", N, (long long)left);
    int64_t t0 = tb_now_ms();
    while ((left = consumers(f)) > 0 && tb_now_ms() - t0 < 10000) {
        tb_sleep_ms(100);
    }
    print_message("all gone after %lld ms\n", (long long)(tb_now_ms() - t0));
    assert_int_equal(left, 0);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_last_reports_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_before_and_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_empty_then_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_missing_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_watches_leave_nothing, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
