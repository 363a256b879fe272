/*
 * Building a span: a few small heap blocks through dt_alloc, owned by the span until it is ended
 * (handed to its tracer) or freed. Every function tolerates a NULL span (tracing off, or an
 * allocation that failed): tracing loses the span, never the work.
 */
#include <string.h>

#include "common_int.h"
#include "trace_span_int.h"

static char *copy(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *c = dt_alloc(n);
    if (c != NULL) {
        memcpy(c, s, n);
    }
    return c;
}

dt__span *dt__span_start(dt__tracer *t, const char *name, dt__span_kind kind,
                         const dt__trace_ctx *ctx, const uint8_t *parent_span, int64_t start_ns)
{
    if (t == NULL || ctx == NULL) {
        return NULL;
    }
    dt__span *s = dt_alloc(sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    s->tracer = t;
    s->ctx = *ctx;
    s->kind = kind;
    s->start_ns = start_ns > 0 ? start_ns : dt__trace_now_ns();
    if (parent_span != NULL) {
        memcpy(s->parent, parent_span, sizeof(s->parent));
        s->has_parent = true;
    }
    s->name = copy(name != NULL ? name : "span");
    if (s->name == NULL) {
        dt_free(s);
        return NULL;
    }
    return s;
}

static dt__span_attr *next_attr(dt__span *s, const char *key)
{
    if (s == NULL || key == NULL || s->n_attrs == DT__SPAN_ATTRS_MAX) {
        return NULL;
    }
    dt__span_attr *a = &s->attrs[s->n_attrs];
    a->key = copy(key);
    if (a->key == NULL) {
        return NULL;
    }
    s->n_attrs++;
    return a;
}

void dt__span_attr_str(dt__span *s, const char *key, const char *value)
{
    if (value == NULL) {
        return;
    }
    dt__span_attr *a = next_attr(s, key);
    if (a != NULL && (a->str = copy(value)) == NULL) {
        a->num = 0; /* out of memory: the attribute stays, as an integer 0 */
    }
}

void dt__span_attr_int(dt__span *s, const char *key, int64_t value)
{
    dt__span_attr *a = next_attr(s, key);
    if (a != NULL) {
        a->num = value;
    }
}

void dt__span_trace_state(dt__span *s, const char *ts)
{
    if (s != NULL && s->trace_state == NULL && dt__tracestate_ok(ts)) {
        s->trace_state = copy(ts);
    }
}

void dt__span_event(dt__span *s, const char *name, int64_t time_ns, const char *attr_key,
                    const char *attr_value)
{
    if (s == NULL || name == NULL || s->n_events == DT__SPAN_EVENTS_MAX) {
        return;
    }
    if (s->events == NULL) {
        s->events = dt_alloc(DT__SPAN_EVENTS_MAX * sizeof(*s->events));
        if (s->events == NULL) {
            return;
        }
    }
    dt__span_ev *e = &s->events[s->n_events];
    memset(e, 0, sizeof(*e));
    e->name = copy(name);
    if (e->name == NULL) {
        return;
    }
    e->time_ns = time_ns > 0 ? time_ns : dt__trace_now_ns();
    if (attr_key != NULL && attr_value != NULL) {
        e->attr.key = copy(attr_key);
        e->attr.str = copy(attr_value);
        if (e->attr.str == NULL) {
            dt_free(e->attr.key);
            e->attr.key = NULL;
        }
    }
    s->n_events++;
}

void dt__span_error(dt__span *s, const char *message)
{
    if (s == NULL) {
        return;
    }
    s->error = true;
    if (s->status_message == NULL && message != NULL) {
        s->status_message = copy(message);
    }
}

const dt__trace_ctx *dt__span_ctx(const dt__span *s)
{
    return s != NULL ? &s->ctx : NULL;
}

void dt__span_end(dt__span *s, int64_t end_ns)
{
    if (s == NULL) {
        return;
    }
    s->end_ns = end_ns > 0 ? end_ns : dt__trace_now_ns();
    if (s->end_ns < s->start_ns) {
        s->end_ns = s->start_ns; /* clocks of two hosts: never a negative duration */
    }
    dt__tracer_submit(s->tracer, s);
}

void dt__span_free(dt__span *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_attrs; i++) {
        dt_free(s->attrs[i].key);
        dt_free(s->attrs[i].str);
    }
    for (size_t i = 0; i < s->n_events; i++) {
        dt_free(s->events[i].name);
        dt_free(s->events[i].attr.key);
        dt_free(s->events[i].attr.str);
    }
    dt_free(s->events);
    dt_free(s->name);
    dt_free(s->trace_state);
    dt_free(s->status_message);
    dt_free(s);
}
