/* Failure details: conversions between the protobuf form stored in history and dt_failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "instance_int.h"

/* Nesting bound: a failure chain deeper than this is cut (history could be hostile). */
#define MAX_FAILURE_DEPTH 16

static const dt_failure *from_pb(dt__instance *in, const Dtpb__TaskFailureDetails *pb, int depth)
{
    if (pb == NULL || depth >= MAX_FAILURE_DEPTH) {
        return NULL;
    }
    dt_failure *f = dt__inst_alloc(in, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->type = dt__inst_strdup(in, pb->error_type != NULL ? pb->error_type : "");
    f->message = dt__inst_strdup(in, pb->error_message != NULL ? pb->error_message : "");
    if (pb->stack_trace != NULL) {
        f->stack_trace = (const char *)dt__inst_copy(in, pb->stack_trace->value.data,
                                                     pb->stack_trace->value.len);
    }
    f->inner = from_pb(in, pb->inner_failure, depth + 1);
    f->non_retriable = pb->is_non_retriable;
    return f;
}

const dt_failure *dt__failure_from_pb(dt__instance *in, const Dtpb__TaskFailureDetails *pb)
{
    if (pb == NULL) {
        return dt__failure_make(in, "dt.Unknown", NULL, "failed without details");
    }
    return from_pb(in, pb, 0);
}

static Dtpb__TaskFailureDetails *to_pb(dt__arena *a, const dt_failure *f, int depth)
{
    if (f == NULL || depth >= MAX_FAILURE_DEPTH) {
        return NULL;
    }
    Dtpb__TaskFailureDetails *pb = dt__arena_alloc(a, sizeof(*pb));
    if (pb == NULL) {
        return NULL;
    }
    dtpb__task_failure_details__init(pb);
    pb->error_type = dt__arena_strdup(a, f->type != NULL ? f->type : "");
    pb->error_message = dt__arena_strdup(a, f->message != NULL ? f->message : "");
    if (pb->error_type == NULL || pb->error_message == NULL) {
        return NULL;
    }
    if (f->stack_trace != NULL) {
        pb->stack_trace =
            dt__emit_payload(a, (const uint8_t *)f->stack_trace, strlen(f->stack_trace));
        if (pb->stack_trace == NULL) {
            return NULL;
        }
    }
    if (f->inner != NULL) {
        pb->inner_failure = to_pb(a, f->inner, depth + 1);
        if (pb->inner_failure == NULL && depth + 1 < MAX_FAILURE_DEPTH) {
            return NULL;
        }
    }
    pb->is_non_retriable = f->non_retriable;
    return pb;
}

Dtpb__TaskFailureDetails *dt__failure_to_pb(dt__arena *arena, const dt_failure *f)
{
    return to_pb(arena, f, 0);
}

/* Copies a caller's failure chain into the instance arena. */
static const dt_failure *copy_failure(dt__instance *in, const dt_failure *f, int depth)
{
    if (f == NULL || depth >= MAX_FAILURE_DEPTH) {
        return NULL;
    }
    dt_failure *c = dt__inst_alloc(in, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->type = dt__inst_strdup(in, f->type != NULL ? f->type : "");
    c->message = dt__inst_strdup(in, f->message != NULL ? f->message : "");
    c->stack_trace = dt__inst_strdup(in, f->stack_trace);
    c->inner = copy_failure(in, f->inner, depth + 1);
    c->non_retriable = f->non_retriable;
    return c;
}

static const dt_failure *make(dt__instance *in, const char *type, const dt_failure *inner,
                              bool non_retriable, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static const dt_failure *make(dt__instance *in, const char *type, const dt_failure *inner,
                              bool non_retriable, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    dt_failure f = {.type = type, .message = msg, .inner = inner, .non_retriable = non_retriable};
    return copy_failure(in, &f, 0);
}

const dt_failure *dt__failure_make(dt__instance *in, const char *type, const dt_failure *inner,
                                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const dt_failure *f = make(in, type, inner, false, fmt, ap);
    va_end(ap);
    return f;
}

const dt_failure *dt__failure_make_final(dt__instance *in, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const dt_failure *f = make(in, type, NULL, true, fmt, ap);
    va_end(ap);
    return f;
}
