/*
 * Tracing of starts (client_int.h): the caller's W3C context goes into the start's
 * ExecutionStarted (parent_trace_context) and its traceparent / tracestate headers. With tracing
 * on, the client adds a span of its own, "create_orchestration:<name>" (kind PRODUCER), between
 * the caller and the orchestration, covering the publish of the start and its status record.
 */
#include <stdio.h>
#include <string.h>

#include "client_int.h"

static Dtpb__TraceContext *tc_new(dt__arena *a, const dt__trace_ctx *c, const char *ts)
{
    Dtpb__TraceContext *tc = dt__arena_alloc(a, sizeof(*tc));
    char *tp = dt__arena_alloc(a, DT__TRACEPARENT_BUF);
    if (tc == NULL || tp == NULL) {
        return NULL;
    }
    dtpb__trace_context__init(tc);
    dt__trace_format(c, tp);
    tc->trace_parent = tp;
    if (ts != NULL && dt__tracestate_ok(ts)) {
        tc->trace_state = dt__emit_payload(a, (const uint8_t *)ts, strlen(ts));
    }
    return tc;
}

dt__span *dt__client_trace_start(dt_client *c, dt__arena *a, const char *name,
                                 const dt_client_start_options *o, Dtpb__OrchestrationMessage *m)
{
    dt__trace_ctx caller, own;
    bool have_caller = dt__trace_parse(o->traceparent, &caller);
    if (c->tracer == NULL && !have_caller) {
        return NULL;
    }
    const char *ts = have_caller && dt__tracestate_ok(o->tracestate) ? o->tracestate : NULL;
    Dtpb__ExecutionStartedEvent *es = m->event->execution_started;
    if (c->tracer == NULL) {
        es->parent_trace_context = tc_new(a, &caller, ts); /* propagated as given */
        return NULL;
    }
    dt__trace_new_child(have_caller ? &caller : NULL, &own);
    char span_name[DT_NAME_MAX + 32];
    snprintf(span_name, sizeof(span_name), "create_orchestration:%s", name);
    dt__span *sp = dt__span_start(c->tracer, span_name, DT__SPAN_PRODUCER, &own,
                                  have_caller ? caller.span_id : NULL, 0);
    dt__span_attr_str(sp, "durabletask.type", "create_orchestration");
    dt__span_attr_str(sp, "durabletask.task.name", name);
    dt__span_attr_str(sp, "durabletask.task.instance_id", m->instance_id);
    dt__span_attr_str(sp, "durabletask.task.execution_id", m->execution_id);
    dt__span_trace_state(sp, ts);
    es->parent_trace_context = tc_new(a, &own, ts);
    return sp;
}

void dt__client_trace_end(dt__span *span, dt_status st)
{
    if (span != NULL && st != DT_OK) {
        dt__span_error(span, dt_status_str(st));
    }
    dt__span_end(span, 0);
}

size_t dt__client_trace_headers(dt__arena *a, const Dtpb__OrchestrationMessage *m,
                                const dt_broker_header **out)
{
    *out = NULL;
    const Dtpb__HistoryEvent *ev = m->event;
    const Dtpb__TraceContext *tc =
        ev != NULL && ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED
            ? ev->execution_started->parent_trace_context
            : NULL;
    if (tc == NULL || tc->trace_parent == NULL) {
        return 0;
    }
    dt_broker_header *h = dt__arena_alloc(a, 2 * sizeof(*h));
    if (h == NULL) {
        return 0;
    }
    size_t n = 0;
    h[n++] = (dt_broker_header){"traceparent", tc->trace_parent};
    const char *ts = tc->trace_state != NULL ? dt__arena_memdup(a, tc->trace_state->value.data,
                                                                tc->trace_state->value.len)
                                             : NULL;
    if (dt__tracestate_ok(ts)) {
        h[n++] = (dt_broker_header){"tracestate", ts};
    }
    *out = h;
    return n;
}
