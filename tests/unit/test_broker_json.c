/*
 * Tests of the broker adapter's readers of what nats-server and other clients write: PubAcks
 * (puback.c), consumer-create replies (consumer_reply.c) and the hub config record
 * (hub_config.c), all over the small JSON reader (json.c). Inputs are as nats-server 2.9.10 sent
 * them. tests/fuzz has a fuzz target for each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker_int.h"

#define LIT(s) s, sizeof(s) - 1

static void pubacks_are_read(void **state)
{
    (void)state;
    dt__puback pa;
    assert_true(dt__broker_puback_parse(LIT("{\"stream\":\"S\", \"seq\":1}"), &pa));
    assert_true(pa.seq == 1 && !pa.duplicate && !pa.has_error);
    assert_true(
        dt__broker_puback_parse(LIT("{\"stream\":\"S\", \"seq\":1,\"duplicate\": true}"), &pa));
    assert_true(pa.seq == 1 && pa.duplicate);
    assert_true(dt__broker_puback_parse(
        LIT("{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last sequence: "
            "1\"},\"stream\":\"S\",\"seq\":0}"),
        &pa));
    assert_true(pa.has_error && pa.err_code == 10071);
    assert_int_equal(pa.desc_len, strlen("wrong last sequence: 1"));
    assert_memory_equal(pa.desc, "wrong last sequence: 1", pa.desc_len);
    assert_false(dt__broker_puback_parse(LIT("{\"stream\":\"S\"}"), &pa));
    assert_false(dt__broker_puback_parse(LIT("{\"seq\":-1}"), &pa));
    assert_false(dt__broker_puback_parse(LIT("{\"seq\":1} x"), &pa));
}

/* The fast path for the common shapes gives what the JSON reader gives, and leaves the rest to it.
 */
static void common_pubacks_match_the_reader(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{\"stream\":\"DT_h_ORCH\", \"seq\":12}", /* as nats-server 2.9.10 writes them */
        "{\"stream\":\"DT_h_ORCH\", \"seq\":12,\"duplicate\": true}",
        "{ \"stream\" : \"S\" , \"seq\" : 7 , \"duplicate\" : true } ",
        "{\"stream\":\"S\",\t\"seq\":7}",
        "{\"stream\":\"S\", \"seq\":7,\"duplicate\": true,\"x\":1}",
        "{\"stream\":\"DT_h_ORCH\",\"seq\":12}",
        "{\"stream\":\"DT_h_ORCH\",\"seq\":12,\"duplicate\":true}",
        "{\"stream\":\"\",\"seq\":0}",
        "{\"stream\":\"S\",\"seq\":999999999999999999}",     /* 18 digits: fast */
        "{\"stream\":\"S\",\"seq\":9999999999999999999}",    /* over INT64_MAX: refused */
        "{\"stream\":\"S\",\"seq\":1234567890123456789}",    /* 19 digits: the reader's */
        "{\"stream\":\"S\",\"seq\":12,\"duplicate\":false}", /* the reader's */
        "{\"stream\":\"S\",\"domain\":\"d\",\"seq\":3}",     /* the reader's */
        "{\"stream\":\"S\\\"x\",\"seq\":3}",                 /* an escape: the reader's */
        "{\"stream\":\"S\",\"seq\":}",
        "{\"stream\":\"S\",\"seq\":1",
        "{\"stream\":\"S\",\"seq\":1}}",
        "{\"stream\":\"S\",\"seq\":1,\"duplicate\":true",
        "{\"stream\":\"S\",\"seq\":-1}",
        "{\"stream\":\"S"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dt__puback a, b;
        memset(&a, 0x5a, sizeof(a));
        memset(&b, 0x5a, sizeof(b));
        bool fa = dt__broker_puback_parse(cases[i], strlen(cases[i]), &a);
        bool fb = dt__broker_puback_parse_json(cases[i], strlen(cases[i]), &b);
        assert_int_equal(fa, fb);
        if (fa) {
            assert_true(a.seq == b.seq && a.duplicate == b.duplicate && a.has_error == b.has_error);
        }
    }
    dt__puback pa;
    assert_true(
        dt__broker_puback_parse(LIT("{\"stream\":\"S\",\"seq\":42,\"duplicate\":true}"), &pa));
    assert_true(pa.seq == 42 && pa.duplicate && !pa.has_error && pa.desc == NULL);
    assert_false(
        dt__broker_puback_parse(LIT("{\"stream\":\"S\",\"seq\":9999999999999999999}"), &pa));
}

/* NUL bytes are not part of a number (strchr found the NUL ending its set of number characters,
 * so they were skipped as one; found by tests/fuzz/fuzz_puback). */
static void nul_bytes_end_numbers(void **state)
{
    (void)state;
    dt__puback pa;
    assert_false(dt__broker_puback_parse(LIT("{\"x\":4\0\0,\"seq\":2}"), &pa));
    assert_false(dt__broker_puback_parse(LIT("{\"seq\":2,\"x\":1.5e3\0}"), &pa));
    assert_true(dt__broker_puback_parse(LIT("{\"seq\":2,\"x\":1.5e+3}"), &pa));
    dt_broker_hub_config c;
    char err[256];
    assert_int_equal(dt__broker_hub_config_decode(
                         LIT("{\"format_version\":1,\"partitions\":4,\"replicas\":1,"
                             "\"max_msg_size\":1048576,\"duplicate_window_ms\":120000,"
                             "\"lease_ttl_ms\":10000,\"storage\":\"file\",\"created_at_ms\":0,"
                             "\"later\":7\0}"),
                         &c, err, sizeof(err)),
                     DT_ECORRUPT);
}

static void consumer_replies_are_read(void **state)
{
    (void)state;
    dt__consumer_reply r;
    assert_true(dt__broker_consumer_reply_parse(
        LIT("{\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\",\"stream_name\":"
            "\"KV_b\",\"config\":{\"deliver_policy\":\"last_per_subject\",\"max_deliver\":-1},"
            "\"delivered\":{\"consumer_seq\":0,\"stream_seq\":0},\"num_pending\":3}"),
        &r));
    assert_false(r.has_error);
    assert_true(r.num_pending == 3 && r.delivered_consumer_seq == 0);
    assert_true(dt__broker_consumer_reply_parse(
        LIT("{\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\",\"error\":{\"code\":"
            "404,\"err_code\":10059,\"description\":\"stream not found\"}}"),
        &r));
    assert_true(r.has_error && r.err_code == 10059);
    assert_memory_equal(r.desc, "stream not found", r.desc_len);
    assert_false(dt__broker_consumer_reply_parse(LIT("{\"num_pending\":}"), &r));
    assert_false(dt__broker_consumer_reply_parse(LIT(""), &r));
}

static void hub_config_round_trips(void **state)
{
    (void)state;
    dt_broker_hub_config c, back;
    dt_broker_hub_config_init(&c);
    c.format_version = DT_BROKER_HUB_FORMAT_VERSION;
    c.storage = DT_BROKER_STORAGE_MEMORY;
    char buf[512], err[256];
    size_t len = 0;
    assert_int_equal(dt__broker_hub_config_encode(&c, buf, sizeof(buf), &len), DT_OK);
    assert_int_equal(dt__broker_hub_config_decode(buf, len, &back, err, sizeof(err)), DT_OK);
    assert_false(dt__broker_hub_config_diff(&c, &back, err, sizeof(err)));
    assert_int_equal(
        dt__broker_hub_config_decode(LIT("{\"format_version\":99}"), &back, err, sizeof(err)),
        DT_EVERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pubacks_are_read),       cmocka_unit_test(common_pubacks_match_the_reader),
        cmocka_unit_test(nul_bytes_end_numbers),  cmocka_unit_test(consumer_replies_are_read),
        cmocka_unit_test(hub_config_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
