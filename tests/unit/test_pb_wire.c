/*
 * Tests of the check protobuf input from outside passes before protobuf-c decodes it
 * (runtime/common/pb_wire.c): nesting bounded by DT_PB_MAX_DEPTH, no field numbered 0. Both were
 * found through the fuzz targets: protobuf-c 1.4.1 recursed without bound (a 34 KB work item of
 * nested failures overflowed the stack) and accepted field 0 written in two bytes, which it
 * cannot read back once written again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena_int.h"
#include "pb_int.h"
#include "protocol/protocol_int.h"

typedef struct buf {
    uint8_t *p;
    size_t len;
} buf;

static void put_varint(buf *b, uint64_t v)
{
    do {
        b->p[b->len++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
}

/* b := key(field, length-delimited) + varint(len(b)) + b, built back to front in a copy. */
static void wrap(buf *b, unsigned field)
{
    uint8_t head[16];
    buf h = {head, 0};
    put_varint(&h, (uint64_t)field << 3 | 2);
    put_varint(&h, b->len);
    memmove(b->p + h.len, b->p, b->len);
    memcpy(b->p, head, h.len);
    b->len += h.len;
}

/* An OrchestrationMessage whose TaskFailed event holds `levels` nested TaskFailureDetails:
 * message depth 3 + levels (message, event, TaskFailedEvent, the failures). */
static buf deep_message(size_t levels)
{
    buf b = {malloc(levels * 8 + 64), 0};
    assert_non_null(b.p);
    b.p[b.len++] = 0x0a; /* error_type = "x" */
    b.p[b.len++] = 1;
    b.p[b.len++] = 'x';
    for (size_t i = 1; i < levels; i++) {
        wrap(&b, 4); /* inner_failure */
    }
    wrap(&b, 2); /* TaskFailedEvent.failure_details */
    wrap(&b, 8); /* HistoryEvent.task_failed */
    wrap(&b, 3); /* OrchestrationMessage.event */
    static const uint8_t ids[] = {0x0a, 7, 'o', 'r', 'd', 'e', 'r', '-', '1', 0x22, 2, 'd', '1'};
    memcpy(b.p + b.len, ids, sizeof(ids));
    b.len += sizeof(ids);
    return b;
}

static dt_status decode(const buf *b)
{
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    Dtpb__OrchestrationMessage *m = NULL;
    dt_status st = dt__orch_msg_decode(a, b->p, b->len, &m);
    dt__arena_destroy(a);
    return st;
}

static void nesting_is_bounded(void **state)
{
    (void)state;
    buf ok = deep_message(DT_PB_MAX_DEPTH - 3), deep = deep_message(DT_PB_MAX_DEPTH - 2);
    assert_true(dt__pb_wire_ok(&dtpb__orchestration_message__descriptor, ok.p, ok.len));
    assert_int_equal(decode(&ok), DT_OK);
    assert_false(dt__pb_wire_ok(&dtpb__orchestration_message__descriptor, deep.p, deep.len));
    assert_int_equal(decode(&deep), DT_EDECODE);
    free(ok.p);
    free(deep.p);
    /* 34 KB that overflowed an 8 MiB stack inside protobuf-c (SIGSEGV, release build). */
    buf crash = deep_message(10000);
    assert_int_equal(decode(&crash), DT_EDECODE);
    dt__arena *a = dt__arena_create(0);
    assert_null(dt__arena_unpack(a, &dtpb__orchestration_message__descriptor, crash.len, crash.p));
    dt__arena_destroy(a);
    free(crash.p);
}

static void field_zero_is_refused(void **state)
{
    (void)state;
    /* A HistoryEvent: timestamp {seconds: 1, field 0 = 5 keyed "80 00"}, event_raised {}. */
    static const uint8_t ev[] = {0x12, 5, 0x08, 1, 0x80, 0x00, 5, 0x8a, 0x01, 0};
    const ProtobufCMessageDescriptor *d = &dtpb__history_event__descriptor;
    assert_false(dt__pb_wire_ok(d, ev, sizeof(ev)));
    dt__arena *a = dt__arena_create(0);
    assert_null(dt__arena_unpack(a, d, sizeof(ev), ev));
    assert_null(dt__pb_unpack(a, d, sizeof(ev), ev));
    /* Without the field the event is fine. */
    static const uint8_t plain[] = {0x12, 2, 0x08, 1, 0x8a, 0x01, 0};
    assert_true(dt__pb_wire_ok(d, plain, sizeof(plain)));
    assert_non_null(dt__arena_unpack(a, d, sizeof(plain), plain));
    /* Unknown fields are kept as raw bytes, never parsed: what they hold is not looked at. */
    static const uint8_t unknown[] = {0xf2, 0x07, 3, 0x80, 0x00, 5};
    assert_true(dt__pb_wire_ok(d, unknown, sizeof(unknown)));
    dt__arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nesting_is_bounded),
        cmocka_unit_test(field_zero_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
