/*
 * trace_span_int.h: the layout of a span (private to runtime/tracing: built by trace_span.c,
 * written as JSON by trace_json.c, queued by trace_export.c).
 */
#ifndef DT_TRACE_SPAN_INT_H
#define DT_TRACE_SPAN_INT_H

#include "tracing_int.h"

typedef struct dt__span_attr {
    char *key; /* dt_alloc'd */
    char *str; /* dt_alloc'd; NULL: an integer attribute */
    int64_t num;
} dt__span_attr;

typedef struct dt__span_ev {
    char *name; /* dt_alloc'd */
    int64_t time_ns;
    dt__span_attr attr; /* key NULL: none */
} dt__span_ev;

struct dt__span {
    dt__tracer *tracer; /* borrowed; outlives the span */
    dt__trace_ctx ctx;
    uint8_t parent[8];
    bool has_parent;
    char *name;        /* dt_alloc'd */
    char *trace_state; /* dt_alloc'd; NULL: none */
    dt__span_kind kind;
    int64_t start_ns, end_ns;
    bool error;
    char *status_message; /* dt_alloc'd; NULL: none */
    dt__span_attr attrs[DT__SPAN_ATTRS_MAX];
    size_t n_attrs;
    dt__span_ev *events; /* dt_alloc'd, DT__SPAN_EVENTS_MAX entries once the first comes */
    size_t n_events;
};

#endif
