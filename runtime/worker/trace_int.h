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
 */
#ifndef DT_WORKER_TRACE_INT_H
#define DT_WORKER_TRACE_INT_H

#include "activity_int.h"
#include "history/store_int.h"
#include "tracing/tracing_int.h"

struct dt__episode;
struct dt__item;
struct dt__episode_result;

/* W3C header names (lower case, as the recommendation writes them). */
#define DT__HDR_TRACEPARENT "traceparent"
#define DT__HDR_TRACESTATE  "tracestate"

/* An accepted start (e->start): takes the caller's context from the message's traceparent
 * header when its body has none (tracing on only), drops a malformed one, and gives the
 * execution its orchestration span unless it has one (a deferred or repeated start). */
void dt__trace_on_start(struct dt__episode *e, const struct dt__item *it);

/* One episode's span (an "episode" child span of the orchestration span). */
typedef struct dt__trace_episode {
    dt__span *span; /* NULL: not traced */
    dt__trace_ctx orch;
} dt__trace_episode;
/* Before the engine runs: starts the episode span and makes it the thread's current span. */
void dt__trace_episode_begin(struct dt__episode *e, dt__trace_episode *te);
/* After it ran (r NULL: it failed): span events for the events applied (raised, suspended,
 * resumed, terminated), a span per timer that fired, the orchestration span when the execution
 * ended; ends the episode span and clears the thread's current span. */
void dt__trace_episode_end(struct dt__episode *e, dt__trace_episode *te,
                           const struct dt__episode_result *r);

/* The outbox headers blob (traceparent, tracestate) of the episode's messages, or NULL when the
 * execution is not traced. Arena memory. */
const dt__blob *dt__trace_headers(struct dt__episode *e);
/* A dt_publish's headers with traceparent / tracestate added (a publisher's own win); *p itself
 * when the execution is not traced. NULL: out of memory. */
const Dtpb__MessagePublishedEvent *dt__trace_publish_headers(struct dt__episode *e,
                                                             const Dtpb__MessagePublishedEvent *p);
/* A sub-orchestration's start: its caller is this execution's orchestration span. */
void dt__trace_child_start(struct dt__episode *e, Dtpb__ExecutionStartedEvent *child);
/* The start record of the next execution of a continue-as-new (a copy of this one's): a new
 * orchestration span in the same trace, whose parent is this execution's caller (or this
 * execution's span when it had none). */
void dt__trace_continue_as_new(struct dt__episode *e, Dtpb__ExecutionStartedEvent *next);

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
