/*
 * Unit tests of runtime/tracing: traceparent parsing and formatting (malformed headers are "no
 * context", never a crash), tracestate checks, new ids, the OTLP JSON of spans, and the
 * exporter's accounting when its endpoint is unreachable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "durabletask/worker.h"
#include "tracing/tracing_int.h"

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_parse_format_round_trip(void **state)
{
    (void)state;
    dt__trace_ctx c;
    assert_true(dt__trace_parse(GOOD, &c));
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[0], 0x00);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    char buf[DT__TRACEPARENT_BUF];
    dt__trace_format(&c, buf);
    assert_string_equal(buf, GOOD);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* v00 too long */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* v01: '-' must follow */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    dt__trace_ctx c;
    memset(&c, 0xAA, sizeof(c));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(dt__trace_parse(bad[i], &c));
        assert_int_equal(c.flags, 0xAA); /* untouched */
    }
    assert_false(dt__trace_parse(NULL, &c));
    /* A later version may append fields. */
    assert_true(dt__trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc", &c));
    /* Every byte value in every position: never a crash, never a read past the end. */
    char buf[DT__TRACEPARENT_BUF];
    for (size_t pos = 0; pos < DT__TRACEPARENT_LEN; pos++) {
        for (int b = 1; b < 256; b += 7) {
            memcpy(buf, GOOD, sizeof(buf));
            buf[pos] = (char)b;
            (void)dt__trace_parse(buf, &c);
        }
        memcpy(buf, GOOD, sizeof(buf));
        buf[pos] = '\0';
        assert_false(dt__trace_parse(buf, &c));
    }
}

static void test_tracestate(void **state)
{
    (void)state;
    assert_true(dt__tracestate_ok("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
    assert_false(dt__tracestate_ok(NULL));
    assert_false(dt__tracestate_ok(""));
    assert_false(dt__tracestate_ok("a=b\nc=d"));
    char big[DT__TRACESTATE_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(dt__tracestate_ok(big));
    big[DT__TRACESTATE_MAX] = '\0';
    assert_true(dt__tracestate_ok(big));
}

static void test_new_child(void **state)
{
    (void)state;
    dt__trace_ctx p, a, b, root;
    assert_true(dt__trace_parse(GOOD, &p));
    dt__trace_new_child(&p, &a);
    dt__trace_new_child(&p, &b);
    assert_memory_equal(a.trace_id, p.trace_id, 16);
    assert_memory_not_equal(a.span_id, b.span_id, 8);
    assert_int_equal(a.flags, p.flags);
    dt__trace_new_child(NULL, &root);
    assert_memory_not_equal(root.trace_id, p.trace_id, 16);
    char buf[DT__TRACEPARENT_BUF];
    dt__trace_format(&root, buf);
    dt__trace_ctx back;
    assert_true(dt__trace_parse(buf, &back));
    assert_memory_equal(&back, &root, sizeof(root));
}

static void test_current(void **state)
{
    (void)state;
    dt__trace_ctx c, got;
    assert_false(dt__trace_current(&got));
    assert_true(dt__trace_parse(GOOD, &c));
    dt__trace_set_current(&c);
    assert_true(dt__trace_current(&got));
    assert_memory_equal(&got, &c, sizeof(c));
    char tid[33], sid[17];
    assert_true(dt_log_trace_ids(tid, sid)); /* what log sinks read */
    assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(sid, "00f067aa0ba902b7");
    dt__trace_set_current(NULL);
    assert_false(dt__trace_current(&got));
    assert_false(dt_log_trace_ids(tid, sid));
}

static const char *attr_str(json_t *attrs, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
            json_t *v = json_object_get(a, "value");
            json_t *s = json_object_get(v, "stringValue");
            return s != NULL ? json_string_value(s)
                             : json_string_value(json_object_get(v, "intValue"));
        }
    }
    return NULL;
}

static void test_span_json(void **state)
{
    (void)state;
    /* A tracer that is never posted to: the spans are built and written, not ended. */
    dt__tracer *t = NULL;
    assert_int_equal(dt__tracer_create("http://127.0.0.1:9/v1/traces", "svc-a", &t), DT_OK);
    dt__trace_ctx p, c;
    assert_true(dt__trace_parse(GOOD, &p));
    dt__trace_new_child(&p, &c);
    dt__span *s = dt__span_start(t, "orchestration:hello", DT__SPAN_SERVER, &c, p.span_id,
                                 1700000000000000000LL);
    assert_non_null(s);
    dt__span_attr_str(s, "durabletask.type", "orchestration");
    dt__span_attr_int(s, "durabletask.task.task_id", 42);
    dt__span_attr_str(s, "ignored", NULL);
    dt__span_attr_str(s, "bytes", "ok\xff\xfe."); /* not UTF-8: kept, as '?' */
    dt__span_event(s, "event_raised", 1700000000500000000LL, "durabletask.event.name", "Approval");
    dt__span_trace_state(s, "rojo=1");
    dt__span_error(s, "boom \"quoted\"");
    dt__span *root = dt__span_start(t, "root", DT__SPAN_INTERNAL, &p, NULL, 5);
    dt__span *spans[2] = {s, root};
    char *body = dt__trace_otlp_json("svc-a", spans, 2);
    assert_non_null(body);
    json_error_t err;
    json_t *doc = json_loads(body, 0, &err);
    assert_non_null(doc);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    assert_string_equal(
        attr_str(json_object_get(json_object_get(rs, "resource"), "attributes"), "service.name"),
        "svc-a");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    json_t *arr = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(arr), 2);
    json_t *j = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(j, "traceId")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(j, "parentSpanId")), "00f067aa0ba902b7");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "spanId"))), 16);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "orchestration:hello");
    assert_int_equal(json_integer_value(json_object_get(j, "kind")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "startTimeUnixNano")),
                        "1700000000000000000");
    assert_string_equal(json_string_value(json_object_get(j, "traceState")), "rojo=1");
    assert_string_equal(attr_str(json_object_get(j, "attributes"), "durabletask.type"),
                        "orchestration");
    assert_string_equal(attr_str(json_object_get(j, "attributes"), "durabletask.task.task_id"),
                        "42");
    assert_string_equal(attr_str(json_object_get(j, "attributes"), "bytes"), "ok??.");
    assert_int_equal(json_array_size(json_object_get(j, "attributes")), 3);
    json_t *ev = json_array_get(json_object_get(j, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "name")), "event_raised");
    assert_string_equal(attr_str(json_object_get(ev, "attributes"), "durabletask.event.name"),
                        "Approval");
    json_t *st = json_object_get(j, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "boom \"quoted\"");
    json_t *r = json_array_get(arr, 1);
    assert_null(json_object_get(r, "parentSpanId"));
    json_decref(doc);
    free(body);
    /* The tracer's path: the same bytes into a reused buffer. */
    dt__trace_buf buf = {0};
    assert_true(dt__trace_otlp_json_into("svc-a", spans, 2, &buf));
    body = dt__trace_otlp_json("svc-a", spans, 2);
    assert_string_equal(buf.data, body);
    assert_int_equal(buf.len, strlen(body) + 1);
    free(body);
    dt__trace_buf_free(&buf);
    dt__span_free(s);
    dt__span_free(root);
    dt__tracer_destroy(t);
}

static void test_unreachable_endpoint_counts_drops(void **state)
{
    (void)state;
    dt__tracer *t = NULL;
    /* Port 9 (discard) on loopback: nothing listens, the POST fails at once. */
    assert_int_equal(dt__tracer_create("http://127.0.0.1:9/v1/traces", "svc", &t), DT_OK);
    dt__trace_ctx c;
    for (int i = 0; i < 10; i++) {
        dt__trace_new_child(NULL, &c);
        dt__span_end(dt__span_start(t, "x", DT__SPAN_INTERNAL, &c, NULL, 0), 0);
    }
    dt__tracer_flush(t);
    assert_int_equal(dt__tracer_dropped(t), 10);
    assert_int_equal(dt__tracer_exported(t), 0);
    /* Spans ended after a flush are posted (and dropped) by destroy: nothing leaks. */
    dt__span_end(dt__span_start(t, "late", DT__SPAN_INTERNAL, &c, NULL, 0), 0);
    dt__tracer_destroy(t);
}

static void test_env_off(void **state)
{
    (void)state;
    dt__tracer *t = (dt__tracer *)1;
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    assert_int_equal(dt__tracer_from_env("svc", &t), DT_OK);
    assert_null(t);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("OTEL_SDK_DISABLED", "true", 1);
    assert_int_equal(dt__tracer_from_env("svc", &t), DT_OK);
    assert_null(t);
    unsetenv("OTEL_SDK_DISABLED");
    assert_int_equal(dt__tracer_from_env("svc", &t), DT_OK);
    assert_non_null(t);
    dt__tracer_destroy(t);
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    /* Span calls with tracing off are no-ops. */
    dt__trace_ctx c;
    dt__trace_new_child(NULL, &c);
    dt__span *s = dt__span_start(NULL, "x", DT__SPAN_INTERNAL, &c, NULL, 0);
    assert_null(s);
    dt__span_attr_str(s, "k", "v");
    dt__span_event(s, "e", 0, NULL, NULL);
    dt__span_error(s, "m");
    dt__span_end(s, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format_round_trip),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_new_child),
        cmocka_unit_test(test_current),
        cmocka_unit_test(test_span_json),
        cmocka_unit_test(test_unreachable_endpoint_counts_drops),
        cmocka_unit_test(test_env_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
