/* Task hubs against a real nats-server: names, idempotent create, conflicts, get, verify, delete.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common_int.h"
#include "test_broker.h"

static int setup(void **state)
{
    *state = tb_connect();
    return 0;
}

static int teardown(void **state)
{
    dt_broker_close(*state);
    return 0;
}

static dt_broker_hub_config mem_config(uint32_t partitions)
{
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.storage = DT_BROKER_STORAGE_MEMORY;
    c.partitions = partitions;
    return c;
}

static void test_names(void **state)
{
    (void)state;
    char buf[DT_BROKER_NAME_BUF];
    assert_true(dt_broker_hub_name_valid("orders-1_A"));
    assert_false(dt_broker_hub_name_valid(""));
    assert_false(dt_broker_hub_name_valid(NULL));
    assert_false(dt_broker_hub_name_valid("a.b"));
    assert_false(dt_broker_hub_name_valid("a b"));
    assert_false(dt_broker_hub_name_valid("a*"));
    assert_false(dt_broker_hub_name_valid("a>"));
    char longname[DT_BROKER_HUB_NAME_MAX + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(dt_broker_hub_name_valid(longname));
    longname[DT_BROKER_HUB_NAME_MAX] = '\0';
    assert_true(dt_broker_hub_name_valid(longname));

    assert_int_equal(dt_broker_stream_name("h1", DT_BROKER_STREAM_ORCH, buf, sizeof(buf)), DT_OK);
    assert_string_equal(buf, "DT_h1_ORCH");
    assert_int_equal(dt_broker_stream_name("h1", DT_BROKER_STREAM_DEAD, buf, sizeof(buf)), DT_OK);
    assert_string_equal(buf, "DT_h1_DEAD");
    assert_int_equal(dt_broker_bucket_name("h1", DT_BROKER_BUCKET_LEASES, buf, sizeof(buf)), DT_OK);
    assert_string_equal(buf, "DT_h1_LEASES");
    assert_int_equal(dt_broker_subject("h1", DT_BROKER_SUBJ_ORCH, "7", buf, sizeof(buf)), DT_OK);
    assert_string_equal(buf, "dt.h1.orch.7");
    assert_int_equal(dt_broker_subject("h1", DT_BROKER_SUBJ_IN, "start.MyOrch", buf, sizeof(buf)),
                     DT_OK);
    assert_string_equal(buf, "dt.h1.in.start.MyOrch");
    assert_int_equal(dt_broker_subject("h1", DT_BROKER_SUBJ_IN, ">", buf, sizeof(buf)), DT_OK);
    assert_int_equal(dt_broker_subject("h1", DT_BROKER_SUBJ_ACT, "a..b", buf, sizeof(buf)),
                     DT_EINVAL);
    assert_int_equal(dt_broker_subject("h1", DT_BROKER_SUBJ_ACT, "a b", buf, sizeof(buf)),
                     DT_EINVAL);
    assert_int_equal(dt_broker_subject("h1", DT_BROKER_SUBJ_ACT, ">.x", buf, sizeof(buf)),
                     DT_EINVAL);
    assert_int_equal(dt_broker_subject("bad.hub", DT_BROKER_SUBJ_ACT, "q", buf, sizeof(buf)),
                     DT_EINVAL);
    assert_int_equal(dt_broker_stream_name("h1", DT_BROKER_STREAM_ORCH, buf, 5), DT_ETOOLARGE);
    assert_true(dt_broker_token_valid("queue-1"));
    assert_false(dt_broker_token_valid("a.b"));
    assert_false(dt_broker_token_valid(""));
    assert_true(dt_broker_kv_key_valid("p.12"));
    assert_false(dt_broker_kv_key_valid("p..12"));
    assert_false(dt_broker_kv_key_valid(".p"));
    assert_false(dt_broker_kv_key_valid("a b"));
}

static void test_invalid_hub_name(void **state)
{
    dt_broker *b = *state;
    dt_broker_hub_config c = mem_config(2);
    const char *bad[] = {"", "a.b", "a b", "x*", "x>", "ü"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TB_EXPECT(dt_broker_hub_create(b, bad[i], &c, NULL), DT_EINVAL, dt_broker_errmsg(b));
        TB_EXPECT(dt_broker_hub_get(b, bad[i], NULL), DT_EINVAL, dt_broker_errmsg(b));
        TB_EXPECT(dt_broker_hub_delete(b, bad[i]), DT_EINVAL, dt_broker_errmsg(b));
    }
    TB_EXPECT(dt_broker_hub_create(b, NULL, &c, NULL), DT_EINVAL, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "invalid hub name"));
}

static void test_invalid_settings(void **state)
{
    dt_broker *b = *state;
    char name[64];
    tb_unique(name, sizeof(name), "hubbad");
    dt_broker_hub_config c = mem_config(0);
    TB_EXPECT(dt_broker_hub_create(b, name, &c, NULL), DT_EINVAL, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "partitions"));
    c = mem_config(DT_BROKER_MAX_PARTITIONS + 1);
    TB_EXPECT(dt_broker_hub_create(b, name, &c, NULL), DT_EINVAL, dt_broker_errmsg(b));
    c = mem_config(2);
    c.max_msg_size = (uint32_t)dt_broker_max_payload(b) + 1;
    TB_EXPECT(dt_broker_hub_create(b, name, &c, NULL), DT_EINVAL, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "max_payload"));
    TB_EXPECT(dt_broker_hub_get(b, name, NULL), DT_ENOTFOUND, dt_broker_errmsg(b));
}

static void test_create_idempotent(void **state)
{
    dt_broker *b = *state;
    char name[64];
    tb_unique(name, sizeof(name), "hubidem");
    dt_broker_hub_config c = mem_config(3);
    dt_broker_hub_config first, second, got;
    int64_t before = dt__now_ms();
    TB_EXPECT(dt_broker_hub_create(b, name, &c, &first), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(first.partitions, 3);
    assert_int_equal(first.format_version, DT_BROKER_HUB_FORMAT_VERSION);
    assert_true(first.created_at_ms >= before - 1000);
    TB_EXPECT(dt_broker_hub_create(b, name, &c, &second), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(second.created_at_ms, first.created_at_ms); /* kept, not rewritten */
    TB_EXPECT(dt_broker_hub_get(b, name, &got), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(got.partitions, 3);
    assert_int_equal(got.lease_ttl_ms, c.lease_ttl_ms);
    assert_int_equal(got.storage, DT_BROKER_STORAGE_MEMORY);
    TB_EXPECT(dt_broker_hub_verify(b, name, &got), DT_OK, dt_broker_errmsg(b));

    /* Every object exists under its documented name. */
    char stream[DT_BROKER_NAME_BUF];
    dt_broker_stream_info si;
    for (int i = 0; i <= DT_BROKER_STREAM_LOG; i++) {
        dt_broker_stream_name(name, (dt_broker_stream)i, stream, sizeof(stream));
        TB_EXPECT(dt_broker_stream_info_get(b, stream, &si), DT_OK, dt_broker_errmsg(b));
        assert_int_equal(si.msgs, 0);
    }

    /* The record is JSON any NATS tool can read. */
    char bucket[DT_BROKER_NAME_BUF];
    dt_broker_bucket_name(name, DT_BROKER_BUCKET_META, bucket, sizeof(bucket));
    dt_broker_kv *kv = NULL;
    TB_EXPECT(dt_broker_kv_open(b, bucket, &kv), DT_OK, dt_broker_errmsg(b));
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_get(kv, "config", &e), DT_OK, dt_broker_kv_errmsg(kv));
    assert_non_null(strstr(e.value, "\"partitions\":3"));
    assert_non_null(strstr(e.value, "\"format_version\":1"));
    assert_non_null(strstr(e.value, "\"storage\":\"memory\""));
    dt_broker_kv_entry_clear(&e);
    dt_broker_kv_close(kv);
    tb_hub_delete(b, name);
}

static void test_conflict(void **state)
{
    dt_broker *b = *state;
    char name[64];
    tb_unique(name, sizeof(name), "hubconf");
    dt_broker_hub_config c = mem_config(4);
    TB_EXPECT(dt_broker_hub_create(b, name, &c, NULL), DT_OK, dt_broker_errmsg(b));

    dt_broker_hub_config other = c;
    other.partitions = 8;
    TB_EXPECT(dt_broker_hub_create(b, name, &other, NULL), DT_ECONFLICT, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "partitions is 4, requested 8"));

    other = c;
    other.lease_ttl_ms = 30000;
    TB_EXPECT(dt_broker_hub_create(b, name, &other, NULL), DT_ECONFLICT, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "lease_ttl_ms"));

    other = c;
    other.storage = DT_BROKER_STORAGE_FILE;
    TB_EXPECT(dt_broker_hub_create(b, name, &other, NULL), DT_ECONFLICT, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "storage is memory, requested file"));

    /* Nothing was changed by the refused calls. */
    dt_broker_hub_config got;
    TB_EXPECT(dt_broker_hub_verify(b, name, &got), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(got.partitions, 4);
    tb_hub_delete(b, name);
}

/* Without its record, a hub is found by its objects: they are compared field by field. */
static void test_incomplete_hub(void **state)
{
    dt_broker *b = *state;
    char name[64], bucket[DT_BROKER_NAME_BUF];
    tb_unique(name, sizeof(name), "hubpart");
    dt_broker_hub_config c = mem_config(2);
    TB_EXPECT(dt_broker_hub_create(b, name, &c, NULL), DT_OK, dt_broker_errmsg(b));
    dt_broker_bucket_name(name, DT_BROKER_BUCKET_META, bucket, sizeof(bucket));
    dt_broker_kv *kv = NULL;
    TB_EXPECT(dt_broker_kv_open(b, bucket, &kv), DT_OK, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_kv_delete(kv, "config", 0), DT_OK, dt_broker_kv_errmsg(kv));
    dt_broker_kv_close(kv);
    TB_EXPECT(dt_broker_hub_get(b, name, NULL), DT_ENOTFOUND, dt_broker_errmsg(b));

    dt_broker_hub_config other = c;
    other.max_msg_size = 64 * 1024;
    TB_EXPECT(dt_broker_hub_create(b, name, &other, NULL), DT_ECONFLICT, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "max message size is"));
    other = c;
    other.duplicate_window_ms = 5000;
    TB_EXPECT(dt_broker_hub_create(b, name, &other, NULL), DT_ECONFLICT, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "duplicate window"));

    /* The same settings complete it (the record is created over its delete marker). */
    TB_EXPECT(dt_broker_hub_create(b, name, &c, NULL), DT_OK, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_hub_verify(b, name, NULL), DT_OK, dt_broker_errmsg(b));
    tb_hub_delete(b, name);
}

static void test_unknown_hub(void **state)
{
    dt_broker *b = *state;
    char name[64];
    tb_unique(name, sizeof(name), "hubnone");
    TB_EXPECT(dt_broker_hub_get(b, name, NULL), DT_ENOTFOUND, dt_broker_errmsg(b));
    assert_non_null(strstr(dt_broker_errmsg(b), "no hub named"));
    TB_EXPECT(dt_broker_hub_verify(b, name, NULL), DT_ENOTFOUND, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_hub_delete(b, name), DT_ENOTFOUND, dt_broker_errmsg(b));
}

static void test_delete(void **state)
{
    dt_broker *b = *state;
    char name[64], stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF];
    tb_hub(b, "hubdel", NULL, name, sizeof(name));
    dt_broker_subject(name, DT_BROKER_SUBJ_ORCH, "0", subject, sizeof(subject));
    tb_publish(b, subject, NULL, "x");
    tb_hub_delete(b, name);
    TB_EXPECT(dt_broker_hub_get(b, name, NULL), DT_ENOTFOUND, dt_broker_errmsg(b));
    dt_broker_stream_info si;
    for (int i = 0; i <= DT_BROKER_STREAM_LOG; i++) {
        dt_broker_stream_name(name, (dt_broker_stream)i, stream, sizeof(stream));
        TB_EXPECT(dt_broker_stream_info_get(b, stream, &si), DT_ENOTFOUND, dt_broker_errmsg(b));
    }
    dt_broker_kv *kv = NULL;
    dt_broker_bucket_name(name, DT_BROKER_BUCKET_STATUS, stream, sizeof(stream));
    TB_EXPECT(dt_broker_kv_open(b, stream, &kv), DT_ENOTFOUND, dt_broker_errmsg(b));
    /* The subjects are free again: nothing captures them. */
    dt_broker_outmsg m = {.subject = subject, .data = "x", .len = 1};
    TB_EXPECT(dt_broker_publish(b, &m, NULL), DT_EBROKER, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_hub_delete(b, name), DT_ENOTFOUND, dt_broker_errmsg(b));
}

typedef struct racer {
    dt_broker *b;
    const char *name;
    dt_status st;
    char err[256];
} racer;

static void *race_create(void *arg)
{
    racer *r = arg;
    dt_broker_hub_config c = mem_config(5);
    r->st = dt_broker_hub_create(r->b, r->name, &c, NULL);
    dt_broker_errmsg_copy(r->b, r->err, sizeof(r->err));
    return NULL;
}

static void test_concurrent_create(void **state)
{
    dt_broker *b = *state;
    dt_broker *b2 = tb_connect();
    char name[64];
    tb_unique(name, sizeof(name), "hubrace");
    racer r[4] = {
        {b, name, DT_OK, ""}, {b2, name, DT_OK, ""}, {b, name, DT_OK, ""}, {b2, name, DT_OK, ""}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, race_create, &r[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        TB_EXPECT(r[i].st, DT_OK, r[i].err);
    }
    dt_broker_hub_config got;
    TB_EXPECT(dt_broker_hub_verify(b, name, &got), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(got.partitions, 5);
    tb_hub_delete(b, name);
    dt_broker_close(b2);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_invalid_hub_name),
        cmocka_unit_test(test_invalid_settings),
        cmocka_unit_test(test_create_idempotent),
        cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_incomplete_hub),
        cmocka_unit_test(test_unknown_hub),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_concurrent_create),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return tb_finish(failed);
}
