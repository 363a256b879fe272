/*
 * Tests of the library-wide calls (durabletask/library.h: dt_version, dt_library_shutdown) and of
 * the options rule (zero means the default; every options struct has an _init that sets the
 * defaults): runtime/common/library.c and options.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/client.h"
#include "durabletask/connection.h"
#include "durabletask/library.h"
#include "durabletask/orchestration.h"
#include "durabletask/worker.h"

static void version_matches_the_macros(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", DT_VERSION_MAJOR, DT_VERSION_MINOR, DT_VERSION_PATCH);
    assert_string_equal(dt_version(), want);
    assert_string_equal(dt_version(), DT_VERSION_STRING);
    assert_int_equal(DT_VERSION_HEX,
                     (DT_VERSION_MAJOR << 16) | (DT_VERSION_MINOR << 8) | DT_VERSION_PATCH);
}

/* Each _init overwrites every byte of garbage with the defaults: all zero, but struct_size, which
 * is the struct's size. */
#define ASSERT_INIT_ZEROES(type, init)                                                             \
    do {                                                                                           \
        type v_, zero_;                                                                            \
        memset(&v_, 0xA5, sizeof(v_));                                                             \
        memset(&zero_, 0, sizeof(zero_));                                                          \
        zero_.struct_size = sizeof(type);                                                          \
        init(&v_);                                                                                 \
        assert_memory_equal(&v_, &zero_, sizeof(v_));                                              \
    } while (0)

static void zero_default_inits_zero_everything(void **state)
{
    (void)state;
    ASSERT_INIT_ZEROES(dt_worker_options, dt_worker_options_init);
    ASSERT_INIT_ZEROES(dt_client_start_options, dt_client_start_options_init);
    ASSERT_INIT_ZEROES(dt_client_filter, dt_client_filter_init);
    ASSERT_INIT_ZEROES(dt_nats_security, dt_nats_security_init);
    ASSERT_INIT_ZEROES(dt_activity_options, dt_activity_options_init);
    ASSERT_INIT_ZEROES(dt_sub_orch_options, dt_sub_orch_options_init);
}

static void retry_policy_init_is_one_attempt(void **state)
{
    (void)state;
    dt_retry_policy p;
    memset(&p, 0xA5, sizeof(p));
    dt_retry_policy_init(&p);
    assert_int_equal(p.max_attempts, 1);
    assert_true(p.backoff_coefficient == 1.0);
    assert_int_equal(p.first_interval_ms, 0);
    assert_int_equal(p.max_interval_ms, 0);
    assert_int_equal(p.retry_timeout_ms, 0);
    assert_int_equal(p.struct_size, sizeof(p));
}

/* The other _init functions set non-zero defaults, and struct_size too. */
static void nonzero_inits_set_struct_size(void **state)
{
    (void)state;
    dt_client_options co;
    dt_client_hub_info hi;
    memset(&co, 0xA5, sizeof(co));
    memset(&hi, 0xA5, sizeof(hi));
    dt_client_options_init(&co);
    dt_client_hub_info_init(&hi);
    assert_int_equal(co.struct_size, sizeof(co));
    assert_int_equal(hi.struct_size, sizeof(hi));
}

/* An older caller's smaller struct (struct_size says where its header ended) is read up to there:
 * what lies beyond (here garbage that would crash if read as pointers) is not read, and those
 * fields take their defaults. */
static void older_smaller_struct_is_read_safely(void **state)
{
    (void)state;
    dt_worker_options o;
    memset(&o, 0xA5, sizeof(o));
    o.struct_size = offsetof(dt_worker_options, worker_id);
    o.nats_url = NULL;
    memset(&o.security, 0, sizeof(o.security));
    o.connect_attempts = 0;
    o.hub = "lib_test";
    o.data_dir = ".";
    dt_worker *w = NULL;
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    dt_worker_destroy(w);
}

/* struct_size 0: designated initialisers, the layout of the release that introduced the field. */
static void zero_struct_size_is_the_first_layout(void **state)
{
    (void)state;
    dt_worker_options o = {.hub = "lib_test", .data_dir = "."};
    dt_worker *w = NULL;
    assert_int_equal(dt_worker_create(&o, &w, NULL, 0), DT_OK);
    dt_worker_destroy(w);
}

/* A newer caller's larger struct: accepted while the fields this release does not know are zero
 * (their defaults), refused with DT_EVERSION once one is set; a struct_size too small to hold
 * itself is refused. */
static void newer_larger_struct_needs_unknown_fields_zero(void **state)
{
    (void)state;
    struct {
        dt_worker_options known;
        unsigned char later[16]; /* fields of a later release */
    } big;
    memset(&big, 0, sizeof(big));
    dt_worker_options_init(&big.known);
    big.known.struct_size = sizeof(big);
    big.known.hub = "lib_test";
    big.known.data_dir = ".";
    dt_worker *w = NULL;
    char err[256] = "";
    assert_int_equal(dt_worker_create(&big.known, &w, err, sizeof(err)), DT_OK);
    dt_worker_destroy(w);
    w = NULL;
    big.later[7] = 1;
    assert_int_equal(dt_worker_create(&big.known, &w, err, sizeof(err)), DT_EVERSION);
    assert_null(w);
    assert_non_null(strstr(err, "newer release"));
    big.known.struct_size = 3;
    assert_int_equal(dt_worker_create(&big.known, &w, err, sizeof(err)), DT_EINVAL);
}

/* A worker made from dt_worker_options_init plus the two required fields is accepted. */
static void worker_accepts_initialised_options(void **state)
{
    (void)state;
    dt_worker_options o;
    dt_worker_options_init(&o);
    o.hub = "lib_test";
    o.data_dir = ".";
    dt_worker *w = NULL;
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    dt_worker_destroy(w);
}

/* Without any connection nats.c was never set up: shutdown has nothing to do, and repeats are
 * no-ops. (Runs last: nothing may connect after it.) */
static void shutdown_without_connection_and_again(void **state)
{
    (void)state;
    assert_int_equal(dt_library_shutdown(), DT_OK);
    assert_int_equal(dt_library_shutdown(), DT_OK);
}

/* A result-subject record, written by hand as the wire has it (no generated code): instance "i-1",
 * name "n", status COMPLETED (1), output (field 8, a Payload) "42". */
static void instance_decode_reads_a_record(void **state)
{
    (void)state;
    static const unsigned char rec[] = {0x0a, 3, 'i',  '-', '1',  0x12, 1,   'n',
                                        0x20, 1, 0x42, 4,   0x0a, 2,    '4', '2'};
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_instance_decode(rec, sizeof(rec), &inst), DT_OK);
    assert_string_equal(inst->instance_id, "i-1");
    assert_string_equal(inst->name, "n");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_int_equal(inst->output_len, 2);
    assert_memory_equal(inst->output, "42", 2);
    assert_null(inst->failure);
    dt_client_instance_free(inst);
}

/* Bytes that are not a record: a clear status, nothing allocated for the caller. */
static void instance_decode_refuses_garbage(void **state)
{
    (void)state;
    dt_client_instance *inst = NULL;
    static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(dt_client_instance_decode(junk, sizeof(junk), &inst), DT_EDECODE);
    assert_null(inst);
    assert_int_equal(dt_client_instance_decode("", 0, &inst), DT_EDECODE); /* no instance ID */
    assert_int_equal(dt_client_instance_decode(NULL, 3, &inst), DT_EINVAL);
    assert_int_equal(dt_client_instance_decode(junk, sizeof(junk), NULL), DT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_matches_the_macros),
        cmocka_unit_test(zero_default_inits_zero_everything),
        cmocka_unit_test(retry_policy_init_is_one_attempt),
        cmocka_unit_test(worker_accepts_initialised_options),
        cmocka_unit_test(nonzero_inits_set_struct_size),
        cmocka_unit_test(older_smaller_struct_is_read_safely),
        cmocka_unit_test(zero_struct_size_is_the_first_layout),
        cmocka_unit_test(newer_larger_struct_needs_unknown_fields_zero),
        cmocka_unit_test(shutdown_without_connection_and_again),
        cmocka_unit_test(instance_decode_reads_a_record),
        cmocka_unit_test(instance_decode_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
