/*
 * Tests of dt__arena_unpack (runtime/common/arena_pb.c): on every input, valid or not, it must
 * give what protobuf_c_message_unpack gives (NULL for NULL, the same message otherwise, compared
 * by packing both again), whether it took its one-pass path or handed the input to protobuf-c.
 * Every test runs over the counting allocator of tests/support and checks that nothing is left
 * behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"
#include "durabletask/alloc.h"
#include "test_support.h"

#define NSAMPLES 12

typedef struct sample {
    uint8_t *buf;
    size_t len;
} sample;

static sample pack_event(const Dtpb__HistoryEvent *ev)
{
    sample s = {NULL, dtpb__history_event__get_packed_size(ev)};
    s.buf = malloc(s.len > 0 ? s.len : 1);
    assert_non_null(s.buf);
    assert_int_equal(dtpb__history_event__pack(ev, s.buf), s.len);
    return s;
}

/* History events of most kinds, with every field type of the schema: strings, bytes (empty and
 * not), nested and doubly nested messages, negative int32 (ten-byte varints), int64, bool, enum,
 * a field numbered 100, maps (which protobuf-c decodes) and an empty event. */
static size_t make_samples(sample *out)
{
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = 1700000000123LL;
    ts.nanos = 999999999;
    Dtpb__Payload in = DTPB__PAYLOAD__INIT, empty = DTPB__PAYLOAD__INIT;
    in.value.data = (uint8_t *)"{\"n\":42}";
    in.value.len = 8;
    size_t n = 0;

    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    ev.event_id = -1;
    ev.timestamp = &ts;
    Dtpb__OrchestratorStartedEvent os = DTPB__ORCHESTRATOR_STARTED_EVENT__INIT;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED;
    ev.orchestrator_started = &os;
    out[n++] = pack_event(&ev);

    Dtpb__TaskScheduledEvent sch = DTPB__TASK_SCHEDULED_EVENT__INIT;
    sch.name = "step";
    sch.version = &empty;
    sch.input = &in;
    sch.task_queue = "q-1";
    ev.event_id = 12345;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED;
    ev.task_scheduled = &sch;
    out[n++] = pack_event(&ev);

    Dtpb__TaskCompletedEvent tc = DTPB__TASK_COMPLETED_EVENT__INIT;
    tc.task_scheduled_id = -7;
    tc.result = &in;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
    ev.task_completed = &tc;
    out[n++] = pack_event(&ev);

    Dtpb__TaskFailureDetails inner = DTPB__TASK_FAILURE_DETAILS__INIT,
                             fd = DTPB__TASK_FAILURE_DETAILS__INIT;
    inner.error_type = "Inner";
    inner.is_non_retriable = 1;
    fd.error_type = "Boom";
    fd.error_message = "it broke";
    fd.stack_trace = &in;
    fd.inner_failure = &inner;
    Dtpb__TaskFailedEvent tf = DTPB__TASK_FAILED_EVENT__INIT;
    tf.task_scheduled_id = 3;
    tf.failure_details = &fd;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED;
    ev.task_failed = &tf;
    out[n++] = pack_event(&ev);

    Dtpb__ExecutionCompletedEvent ec = DTPB__EXECUTION_COMPLETED_EVENT__INIT;
    ec.orchestration_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    ec.failure_details = &fd;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED;
    ev.execution_completed = &ec;
    out[n++] = pack_event(&ev);

    Dtpb__ExecutionTerminatedEvent et = DTPB__EXECUTION_TERMINATED_EVENT__INIT;
    et.recurse = 1;
    et.input = &in;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
    ev.execution_terminated = &et;
    out[n++] = pack_event(&ev);

    Dtpb__TimerFiredEvent tfe = DTPB__TIMER_FIRED_EVENT__INIT;
    tfe.fire_at = &ts;
    tfe.timer_id = 2147483647;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED;
    ev.timer_fired = &tfe;
    out[n++] = pack_event(&ev);

    Dtpb__Payload exec = DTPB__PAYLOAD__INIT;
    exec.value.data = (uint8_t *)"exec-1";
    exec.value.len = 6;
    Dtpb__OrchestrationInstance oi = DTPB__ORCHESTRATION_INSTANCE__INIT;
    oi.instance_id = "parent";
    oi.execution_id = &exec;
    Dtpb__ParentInstanceInfo pi = DTPB__PARENT_INSTANCE_INFO__INIT;
    pi.task_scheduled_id = 4;
    pi.name = &exec;
    pi.orchestration_instance = &oi;
    Dtpb__ExecutionStartedEvent st = DTPB__EXECUTION_STARTED_EVENT__INIT;
    st.name = "Greeter";
    st.input = &in;
    st.orchestration_instance = &oi;
    st.parent_instance = &pi;
    st.scheduled_start_timestamp = &ts;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev.execution_started = &st;
    out[n++] = pack_event(&ev);

    Dtpb__ExecutionStartedEvent__TagsEntry tag = DTPB__EXECUTION_STARTED_EVENT__TAGS_ENTRY__INIT;
    Dtpb__ExecutionStartedEvent__TagsEntry *tags[] = {&tag, &tag};
    tag.key = "k";
    tag.value = "v";
    st.n_tags = 2;
    st.tags = tags;
    out[n++] = pack_event(&ev);

    Dtpb__EventRaisedEvent er = DTPB__EVENT_RAISED_EVENT__INIT;
    er.name = ""; /* proto3 default: not on the wire */
    er.input = &empty;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ev.event_raised = &er;
    out[n++] = pack_event(&ev);

    Dtpb__HistoryEvent bare = DTPB__HISTORY_EVENT__INIT;
    out[n++] = pack_event(&bare); /* zero bytes */

    Dtpb__MessagePublishedEvent mp = DTPB__MESSAGE_PUBLISHED_EVENT__INIT;
    mp.subject = "a.b";
    mp.data.data = (uint8_t *)"xyz";
    mp.data.len = 3;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED;
    ev.message_published = &mp;
    out[n++] = pack_event(&ev);
    assert_int_equal(n, NSAMPLES);
    return n;
}

static void free_samples(sample *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].buf);
    }
}

/* dt__arena_unpack and protobuf-c agree on buf[0..len): both NULL, or both pack to the same
 * bytes. Returns whether the input was valid. */
static bool agree(const uint8_t *buf, size_t len)
{
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    const ProtobufCMessageDescriptor *d = &dtpb__history_event__descriptor;
    ProtobufCMessage *mine = dt__arena_unpack(a, d, len, buf);
    ProtobufCMessage *ref = protobuf_c_message_unpack(d, dt__arena_pb_allocator(a), len, buf);
    assert_int_equal(mine == NULL, ref == NULL);
    if (mine != NULL) {
        size_t n = protobuf_c_message_get_packed_size(mine);
        assert_int_equal(n, protobuf_c_message_get_packed_size(ref));
        uint8_t *p1 = dt__arena_alloc(a, n + 1), *p2 = dt__arena_alloc(a, n + 1);
        assert_non_null(p1);
        assert_non_null(p2);
        assert_int_equal(protobuf_c_message_pack(mine, p1), n);
        assert_int_equal(protobuf_c_message_pack(ref, p2), n);
        assert_memory_equal(p1, p2, n);
        assert_int_equal(((Dtpb__HistoryEvent *)mine)->event_type_case,
                         ((Dtpb__HistoryEvent *)ref)->event_type_case);
    }
    dt__arena_destroy(a);
    return mine != NULL;
}

static void agrees_on_valid_events(void **state)
{
    (void)state;
    sample s[NSAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        assert_true(agree(s[i].buf, s[i].len));
    }
    free_samples(s, n);
}

static void fields_come_out_as_protobuf_c_gives_them(void **state)
{
    (void)state;
    sample s[NSAMPLES];
    size_t n = make_samples(s);
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    const ProtobufCMessageDescriptor *d = &dtpb__history_event__descriptor;

    Dtpb__HistoryEvent *ev = (Dtpb__HistoryEvent *)dt__arena_unpack(a, d, s[1].len, s[1].buf);
    assert_non_null(ev);
    assert_int_equal(ev->event_id, 12345);
    assert_int_equal(ev->timestamp->seconds, 1700000000123LL);
    assert_int_equal(ev->timestamp->nanos, 999999999);
    assert_int_equal(ev->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED);
    assert_string_equal(ev->task_scheduled->name, "step");
    assert_string_equal(ev->task_scheduled->task_queue, "q-1");
    assert_int_equal(ev->task_scheduled->input->value.len, 8);
    assert_memory_equal(ev->task_scheduled->input->value.data, "{\"n\":42}", 8);
    /* An empty bytes field: protobuf-c gives data NULL. */
    assert_int_equal(ev->task_scheduled->version->value.len, 0);
    assert_null(ev->task_scheduled->version->value.data);
    /* Nothing points into the input buffer. */
    assert_true((const uint8_t *)ev->task_scheduled->name < s[1].buf ||
                (const uint8_t *)ev->task_scheduled->name >= s[1].buf + s[1].len);

    ev = (Dtpb__HistoryEvent *)dt__arena_unpack(a, d, s[0].len, s[0].buf);
    assert_non_null(ev);
    assert_int_equal(ev->event_id, -1);
    assert_int_equal(ev->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED);
    assert_non_null(ev->orchestrator_started);

    ev = (Dtpb__HistoryEvent *)dt__arena_unpack(a, d, s[5].len, s[5].buf);
    assert_non_null(ev);
    assert_true(ev->execution_terminated->recurse);

    ev = (Dtpb__HistoryEvent *)dt__arena_unpack(a, d, s[10].len, s[10].buf);
    assert_non_null(ev);
    assert_int_equal(ev->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET);
    assert_null(ev->timestamp);

    ev = (Dtpb__HistoryEvent *)dt__arena_unpack(a, d, s[9].len, s[9].buf);
    assert_non_null(ev);
    assert_string_equal(ev->event_raised->name, ""); /* the default, as protobuf-c leaves it */

    /* An empty bytes field on the wire (TaskCompleted.result.value = ""): data as protobuf-c
     * leaves it (NULL), which packing cannot tell apart. */
    static const uint8_t empty_bytes[] = {0x3a, 0x04, 0x12, 0x02, 0x0a, 0x00};
    ev = (Dtpb__HistoryEvent *)dt__arena_unpack(a, d, sizeof(empty_bytes), empty_bytes);
    Dtpb__HistoryEvent *ref = (Dtpb__HistoryEvent *)protobuf_c_message_unpack(
        d, dt__arena_pb_allocator(a), sizeof(empty_bytes), empty_bytes);
    assert_non_null(ev);
    assert_non_null(ref);
    assert_int_equal(ev->task_completed->result->value.len, 0);
    assert_int_equal(ev->task_completed->result->value.data == NULL,
                     ref->task_completed->result->value.data == NULL);
    dt__arena_destroy(a);
    free_samples(s, n);
}

/* Inputs the one-pass path leaves to protobuf-c: a field twice (messages merge, the last scalar
 * wins), two members of the oneof, an unknown field (kept), a repeated field, a fixed-width wire
 * type, a varint with bits past 64, and broken ones (truncated, bad wire type, bad length). */
static void agrees_on_the_cases_it_hands_over(void **state)
{
    (void)state;
    static const struct {
        uint8_t b[24];
        size_t n;
        bool valid;
    } cases[] = {
        {{0x08, 0x01, 0x08, 0x02}, 4, true},                         /* event_id twice */
        {{0x12, 0x02, 0x08, 0x01, 0x12, 0x02, 0x10, 0x05}, 8, true}, /* timestamp twice */
        {{0x72, 0x00, 0x7a, 0x00}, 4, true},                         /* two oneof members */
        {{0x72, 0x00, 0x72, 0x00}, 4, true},                         /* one member twice */
        {{0x08, 0x01, 0xf8, 0x07, 0x05}, 5, true},                   /* unknown field 127 */
        {{0x4d, 1, 2, 3, 4}, 5, false},                              /* fixed32 wire type */
        {{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, 11, true},
        {{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12, false},
        {{0x1a, 0x04, 0x4a, 0x02, 0x0a, 0x00}, 6, true}, /* a map entry in ExecutionStarted */
        {{0x12, 0x05, 0x08, 0x01}, 4, false},            /* length past the end */
        {{0x08}, 1, false},                              /* truncated varint */
        {{0x0a, 0x00}, 2, false},                        /* event_id as bytes */
        {{0x00, 0x00}, 2, false},                        /* field 0 */
        {{0x0b, 0x0c}, 2, false},                        /* a group */
        {{0x88, 0x80, 0x80, 0x80, 0x00, 0x01}, 6, true}, /* a key in 5 bytes */
        {{0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01}, 7, false}, /* ... in 6: refused */
        {{0x12, 0x80, 0x80, 0x80, 0x80, 0x00}, 6, true},        /* a length in 5 bytes */
        {{0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7, false}, /* ... in 6: refused */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(agree(cases[i].b, cases[i].n), cases[i].valid);
    }
}

/* Random damage to valid events (byte flips, truncation, spliced bytes): never a crash or an
 * ASan report, always protobuf-c's answer. */
static void agrees_on_damaged_events(void **state)
{
    (void)state;
    sample s[NSAMPLES];
    size_t n = make_samples(s);
    uint32_t rng = 12345;
    int valid = 0, invalid = 0;
    for (int round = 0; round < 4000; round++) {
        const sample *src = &s[(size_t)round % n];
        size_t len = src->len;
        uint8_t *b = malloc(len + 4);
        assert_non_null(b);
        memcpy(b, src->buf, len);
        for (int k = 0; k < 1 + round % 3; k++) {
            rng = rng * 1103515245u + 12345u;
            uint32_t r = rng >> 8;
            if (len == 0) {
                break;
            }
            switch (r % 4) {
            case 0:
                b[r / 4 % len] ^= (uint8_t)(1u << (r / 64 % 8));
                break;
            case 1:
                b[r / 4 % len] = (uint8_t)(r >> 16);
                break;
            case 2:
                len = r / 4 % len;
                break;
            default:
                b[len++] = (uint8_t)(r >> 16); /* at most 3 times: the buffer has room */
                break;
            }
        }
        uint8_t *exact = malloc(len > 0 ? len : 1); /* so ASan sees reads past the end */
        assert_non_null(exact);
        memcpy(exact, b, len);
        if (agree(exact, len)) {
            valid++;
        } else {
            invalid++;
        }
        free(exact);
        free(b);
    }
    assert_true(valid > 100);
    assert_true(invalid > 100);
    free_samples(s, n);
}

static void survives_allocation_failure(void **state)
{
    (void)state;
    sample s[NSAMPLES];
    size_t n = make_samples(s);
    for (size_t i = 0; i < n; i++) {
        for (long k = 0;; k++) {
            dt__arena *a = dt__arena_create(512);
            assert_non_null(a);
            dt_test_alloc_fail_after(k);
            ProtobufCMessage *m =
                dt__arena_unpack(a, &dtpb__history_event__descriptor, s[i].len, s[i].buf);
            dt_test_alloc_fail_after(-1);
            dt__arena_destroy(a);
            assert_int_equal(dt_test_alloc_outstanding(), dt_test_leakcheck_base());
            if (m != NULL) {
                break;
            }
        }
    }
    free_samples(s, n);
}

/* Adds d and every message type reachable from it to seen[0..*n) and checks that none has a
 * required field (arena_pb.c does not check their presence: proto3 has none). */
static void walk(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **seen,
                 size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        if (seen[i] == d) {
            return;
        }
    }
    assert_true(*n < 128);
    seen[(*n)++] = d;
    for (size_t i = 0; i < d->n_fields; i++) {
        assert_int_not_equal(d->fields[i].label, PROTOBUF_C_LABEL_REQUIRED);
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
            walk(d->fields[i].descriptor, seen, n);
        }
    }
}

static void the_schema_has_no_required_fields(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *seen[128];
    size_t n = 0;
    walk(&dtpb__history_event__descriptor, seen, &n);
    assert_true(n > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agrees_on_valid_events, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(fields_come_out_as_protobuf_c_gives_them,
                                        dt_test_leakcheck_setup, dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(agrees_on_the_cases_it_hands_over, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(agrees_on_damaged_events, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(survives_allocation_failure, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test(the_schema_has_no_required_fields),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_set_allocator(NULL);
    return rc;
}
