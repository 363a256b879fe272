/*
 * Spans as OTLP/HTTP JSON (opentelemetry-proto's JSON mapping): resourceSpans -> scopeSpans ->
 * spans; ids as lower-case hex, times and 64-bit integers as decimal strings, enums as numbers.
 * Built with jansson; any allocation failure gives NULL (the batch is then dropped and counted).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "trace_span_int.h"

static json_t *otlp_doc(const char *service, dt__span *const *spans, size_t n);

/* jansson steals the reference of a value it is given; a NULL anywhere makes the set fail. */
static bool put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new_nocheck(obj, key, v) == 0; /* keys: our literals */
}

static bool push(json_t *arr, json_t *v)
{
    return v != NULL && json_array_append_new(arr, v) == 0;
}

/* Keys and values the runtime writes itself (hex ids, numbers, our attribute keys) are ASCII:
 * jansson's UTF-8 check is skipped for them. */
static bool put_ascii(json_t *obj, const char *key, const char *v)
{
    return put(obj, key, json_string_nocheck(v));
}

/* Text from elsewhere (names, instance IDs, failure messages, tracestate): checked, and a value
 * that is not UTF-8 is written with its non-ASCII bytes as '?' rather than losing the span (and
 * with it the batch). */
static json_t *text(const char *v)
{
    json_t *j = json_string(v);
    if (j != NULL || v == NULL) {
        return j;
    }
    size_t n = strlen(v);
    char *c = malloc(n + 1);
    if (c == NULL) {
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        c[i] = v[i];
        if ((unsigned char)c[i] >= 0x80) {
            c[i] = '?';
        }
    }
    j = json_string_nocheck(c);
    free(c);
    return j;
}

static json_t *int_string(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_string_nocheck(buf);
}

static json_t *attr_json(const dt__span_attr *a)
{
    json_t *o = json_object(), *v = json_object();
    bool ok = o != NULL && v != NULL;
    ok = ok && (a->str != NULL ? put(v, "stringValue", text(a->str))
                               : put(v, "intValue", int_string(a->num)));
    ok = ok && put(o, "key", text(a->key)) && put(o, "value", json_incref(v));
    json_decref(v);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *attrs_json(const dt__span_attr *attrs, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (!push(arr, attr_json(&attrs[i]))) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *events_json(const dt__span *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < s->n_events; i++) {
        const dt__span_ev *e = &s->events[i];
        json_t *o = json_object();
        bool ok = o != NULL && put(o, "name", text(e->name)) &&
                  put(o, "timeUnixNano", int_string(e->time_ns)) &&
                  put(o, "attributes", attrs_json(&e->attr, e->attr.key != NULL ? 1 : 0));
        if (!ok || !push(arr, o)) {
            if (!ok) {
                json_decref(o);
            }
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *status_json(const dt__span *s)
{
    json_t *o = json_object();
    bool ok = o != NULL && put(o, "code", json_integer(s->error ? 2 : 0));
    if (ok && s->status_message != NULL) {
        ok = put(o, "message", text(s->status_message));
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *span_json(const dt__span *s)
{
    char tid[33], sid[17], pid[17];
    dt__trace_hex(s->ctx.trace_id, 16, tid);
    dt__trace_hex(s->ctx.span_id, 8, sid);
    json_t *o = json_object();
    bool ok = o != NULL && put_ascii(o, "traceId", tid) && put_ascii(o, "spanId", sid) &&
              put(o, "name", text(s->name)) && put(o, "kind", json_integer(s->kind)) &&
              put(o, "startTimeUnixNano", int_string(s->start_ns)) &&
              put(o, "endTimeUnixNano", int_string(s->end_ns)) &&
              put(o, "attributes", attrs_json(s->attrs, s->n_attrs)) &&
              put(o, "events", events_json(s)) && put(o, "status", status_json(s));
    if (ok && s->has_parent) {
        dt__trace_hex(s->parent, 8, pid);
        ok = put_ascii(o, "parentSpanId", pid);
    }
    if (ok && s->trace_state != NULL) {
        ok = put(o, "traceState", text(s->trace_state));
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *resource_json(const char *service)
{
    dt__span_attr svc = {.key = "service.name", .str = (char *)service};
    json_t *r = json_object();
    if (r == NULL || !put(r, "attributes", attrs_json(&svc, 1))) {
        json_decref(r);
        return NULL;
    }
    return r;
}

static json_t *scope_spans_json(dt__span *const *spans, size_t n)
{
    json_t *ss = json_object(), *scope = json_object(), *arr = json_array();
    bool ok =
        ss != NULL && scope != NULL && arr != NULL && put_ascii(scope, "name", "durabletask-nats");
    for (size_t i = 0; ok && i < n; i++) {
        ok = push(arr, span_json(spans[i]));
    }
    ok = ok && put(ss, "scope", json_incref(scope)) && put(ss, "spans", json_incref(arr));
    json_decref(scope);
    json_decref(arr);
    if (!ok) {
        json_decref(ss);
        return NULL;
    }
    return ss;
}

static int append(const char *buf, size_t size, void *data)
{
    return dt__trace_buf_add(data, buf, size) ? 0 : -1;
}

bool dt__trace_otlp_json_into(const char *service, dt__span *const *spans, size_t n,
                              dt__trace_buf *out)
{
    out->len = 0;
    json_t *doc = otlp_doc(service, spans, n);
    bool ok = doc != NULL && json_dump_callback(doc, append, out, JSON_COMPACT) == 0 &&
              dt__trace_buf_add(out, "", 1);
    json_decref(doc);
    return ok;
}

char *dt__trace_otlp_json(const char *service, dt__span *const *spans, size_t n)
{
    json_t *doc = otlp_doc(service, spans, n);
    char *out = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return out;
}

static json_t *otlp_doc(const char *service, dt__span *const *spans, size_t n)
{
    json_t *root = json_object(), *rs_arr = json_array(), *rs = json_object(),
           *ss_arr = json_array();
    bool ok = root != NULL && rs_arr != NULL && rs != NULL && ss_arr != NULL &&
              push(ss_arr, scope_spans_json(spans, n)) &&
              put(rs, "resource", resource_json(service)) &&
              put(rs, "scopeSpans", json_incref(ss_arr)) && push(rs_arr, json_incref(rs)) &&
              put(root, "resourceSpans", json_incref(rs_arr));
    json_decref(ss_arr);
    json_decref(rs);
    json_decref(rs_arr);
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}
