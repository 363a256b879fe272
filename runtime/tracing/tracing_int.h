/*
 * tracing_int.h: distributed tracing of durabletask-nats (runtime/tracing; internal).
 *
 * Three parts, usable alone:
 *   - W3C trace context: parse and format `traceparent`, check `tracestate`, new ids
 *     (trace_context.c). Parsing is strict and never fails loudly: a malformed header is simply
 *     "no context", so a bad header never breaks a work item.
 *   - Spans: a span is built on the heap (dt_alloc) by one thread and handed to a tracer when it
 *     ends (trace_span.c); every span function accepts a NULL span and then does nothing, so
 *     callers need no "is tracing on" branches of their own.
 *   - The tracer (trace_export.c): a bounded queue and one background thread that posts batches
 *     as OTLP/HTTP JSON (POST <endpoint>/v1/traces) with libcurl. Created from the OTEL_*
 *     environment variables; NULL when tracing is off (no endpoint, or OTEL_SDK_DISABLED=true),
 *     and every function accepts that NULL. A full queue drops the span and counts it.
 *
 * Sits on runtime/common (allocator, status) only; the worker and the client call into it.
 * Threads: dt__tracer_* and dt__span_end are thread-safe; a span is confined to the thread that
 * builds it until dt__span_end hands it over.
 */
#ifndef DT_TRACING_INT_H
#define DT_TRACING_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/status.h"

/* "00-" + 32 + "-" + 16 + "-" + 2 */
#define DT__TRACEPARENT_LEN 55
#define DT__TRACEPARENT_BUF (DT__TRACEPARENT_LEN + 1)
/* Longest tracestate kept (the W3C limit is 32 members; 512 bytes is what it must propagate). */
#define DT__TRACESTATE_MAX 512
/* Spans waiting for the exporter, at most; more are dropped (and counted). */
#define DT__TRACE_QUEUE_MAX 4096
/* Spans per POST, at most. */
#define DT__TRACE_BATCH_MAX 256
/* Attributes and events per span, at most (more are ignored). */
#define DT__SPAN_ATTRS_MAX  16
#define DT__SPAN_EVENTS_MAX 64

/* A span context: what a traceparent carries. */
typedef struct dt__trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;
} dt__trace_ctx;

/* Parses a W3C traceparent. False (and *out untouched) for NULL, a wrong length or layout,
 * upper-case or non-hex digits, version ff, or an all-zero trace or span id. Versions above 00
 * are read by their first four fields, as the recommendation asks. */
bool dt__trace_parse(const char *traceparent, dt__trace_ctx *out);
/* "00-<trace id>-<span id>-<flags>" into buf (DT__TRACEPARENT_BUF bytes). */
void dt__trace_format(const dt__trace_ctx *c, char buf[DT__TRACEPARENT_BUF]);
/* Whether a tracestate value may be passed on: 1..DT__TRACESTATE_MAX printable ASCII bytes. */
bool dt__tracestate_ok(const char *ts);
/* A new context: the trace id of `parent` (a new random one when NULL), a new random span id,
 * the parent's flags (01, sampled, for a new trace). */
void dt__trace_new_child(const dt__trace_ctx *parent, dt__trace_ctx *out);
/* Lower-case hex of n bytes into buf (2n + 1 bytes). */
void dt__trace_hex(const uint8_t *bytes, size_t n, char *buf);

/* The span active on this thread (for log lines): set while an episode or an activity runs.
 * NULL clears. The context is copied. */
void dt__trace_set_current(const dt__trace_ctx *c);
/* True and *out filled when a span is active on this thread. */
bool dt__trace_current(dt__trace_ctx *out);

/* Wall-clock time in nanoseconds since the Unix epoch. */
int64_t dt__trace_now_ns(void);

/* ---- spans ---- */

/* PERSISTED in OTLP: the values of SpanKind. */
typedef enum dt__span_kind {
    DT__SPAN_INTERNAL = 1,
    DT__SPAN_SERVER = 2,
    DT__SPAN_CLIENT = 3,
    DT__SPAN_PRODUCER = 4,
    DT__SPAN_CONSUMER = 5
} dt__span_kind;

typedef struct dt__tracer dt__tracer;
typedef struct dt__span dt__span;

/*
 * Starts a span named `name` (copied) with context *ctx (its ids) and parent span id
 * `parent_span` (8 bytes; NULL: a root span), at start_ns (0: now). tracestate (copied; NULL:
 * none). Returns NULL when t is NULL (tracing off) or out of memory: the other span functions
 * accept NULL.
 */
dt__span *dt__span_start(dt__tracer *t, const char *name, dt__span_kind kind,
                         const dt__trace_ctx *ctx, const uint8_t *parent_span, int64_t start_ns);
/* Adds an attribute (key and value copied); NULL value: nothing. */
void dt__span_attr_str(dt__span *s, const char *key, const char *value);
void dt__span_attr_int(dt__span *s, const char *key, int64_t value);
/* Sets the tracestate carried with the span (copied if dt__tracestate_ok). */
void dt__span_trace_state(dt__span *s, const char *ts);
/* Adds an event at time_ns with one optional string attribute (attr_key NULL: none). */
void dt__span_event(dt__span *s, const char *name, int64_t time_ns, const char *attr_key,
                    const char *attr_value);
/* Marks the span failed with `message` (copied; NULL: none). */
void dt__span_error(dt__span *s, const char *message);
/* The span's context (ids), for children and headers. */
const dt__trace_ctx *dt__span_ctx(const dt__span *s);
/* Ends the span at end_ns (0: now) and hands it to its tracer (transferred; queued or dropped). */
void dt__span_end(dt__span *s, int64_t end_ns);
/* Frees a span without exporting it. NULL accepted. */
void dt__span_free(dt__span *s);

/* ---- OTLP JSON (trace_json.c) ---- */

/* The OTLP/HTTP JSON body of n spans (borrowed) for service `service`: a NUL-terminated string
 * to free with free() (jansson's allocation), or NULL when out of memory. */
char *dt__trace_otlp_json(const char *service, dt__span *const *spans, size_t n);

/* A growable byte buffer (dt_alloc'd; the tracer keeps one for its POST bodies). */
typedef struct dt__trace_buf {
    char *data;
    size_t len, cap;
} dt__trace_buf;
/* Appends n bytes; false when out of memory (the buffer keeps what it had). */
bool dt__trace_buf_add(dt__trace_buf *b, const void *p, size_t n);
void dt__trace_buf_free(dt__trace_buf *b);
/* The same JSON into *out (NUL-terminated, len counts the NUL); false when out of memory. */
bool dt__trace_otlp_json_into(const char *service, dt__span *const *spans, size_t n,
                              dt__trace_buf *out);

/* ---- the tracer ---- */

/*
 * A tracer configured from the environment: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL), or
 * OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces"; OTEL_SERVICE_NAME (else `default_service`);
 * OTEL_SDK_DISABLED=true turns tracing off. On DT_OK *out is the tracer, or NULL when tracing is
 * off. DT_ENOMEM, DT_EINVAL (the exporter thread could not start).
 */
dt_status dt__tracer_from_env(const char *default_service, dt__tracer **out);
/* A tracer posting to `url` (copied) as `service` (copied). */
dt_status dt__tracer_create(const char *url, const char *service, dt__tracer **out);
/* Sends every queued span (up to a few seconds per POST), stops the thread and frees. NULL
 * accepted. */
void dt__tracer_destroy(dt__tracer *t);
/* Blocks until every span queued before the call was posted (or dropped). NULL accepted. */
void dt__tracer_flush(dt__tracer *t);
/* Spans dropped so far (queue full, or a POST that failed). */
uint64_t dt__tracer_dropped(const dt__tracer *t);
/* Spans posted successfully so far. */
uint64_t dt__tracer_exported(const dt__tracer *t);
/* Hands a finished span to the tracer (transferred). Thread-safe; never blocks on I/O. */
void dt__tracer_submit(dt__tracer *t, dt__span *s);

#endif
