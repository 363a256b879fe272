/*
 * trace_int.h: the worker's tracing hooks (internal to runtime/worker; the tracing itself is in
 * runtime/tracing). Each hook is one call at its site and costs a pointer test when the instance
 * or work item carries no trace context and the worker traces nothing.
 *
 * Where the context lives: an execution's start record (its ExecutionStartedEvent, kept in the
 * instance row and therefore in the partition log) holds the caller's context
 * (parent_trace_context) and the orchestration span's own (orchestration_trace_context). Every
 * episode, on whichever worker, reads them from there; outgoing messages carry the orchestration
 * span as their `traceparent` header.
 *
 * This header has the header names and the activities' hooks (activity/trace_activity.c); the
 * episodes' hooks are partition/trace_episode_int.h.
 */
#ifndef DT_WORKER_TRACE_INT_H
#define DT_WORKER_TRACE_INT_H

#include "activity_int.h"
#include "history/store_int.h"
#include "tracing/tracing_int.h"

/* W3C header names (lower case, as the recommendation writes them). */
#define DT__HDR_TRACEPARENT "traceparent"
#define DT__HDR_TRACESTATE  "tracestate"

/* ---- activities (trace_activity.c) ---- */
/* Starts the activity span of work item held[held_ix] of slot s (its traceparent header) and
 * makes it the thread's current span; NULL when not traced. */
dt__span *dt__trace_activity_begin(dt__act_slot *s, size_t held_ix,
                                   const Dtpb__ActivityRequest *req);
/* The span of a request run in the partition's own process (local_act.c), from its body's
 * context; NULL when not traced. */
dt__span *dt__trace_activity_local(dt__tracer *t, const Dtpb__ActivityRequest *req,
                                   const char *queue);
/* Ends the span of ctx (its outcome) unless its slot was abandoned (an in-process run: the caller
 * makes sure the tracer still lives); clears the current span. */
void dt__trace_activity_end(dt_activity_ctx *ctx);

#endif
