/*
 * trace_episode_int.h: the tracing hooks of a partition's episodes (trace_episode.c; the
 * activities' hooks and the header names are activity/trace_int.h, which says where the context
 * lives). Called by episode.c, episode_remote.c, commit.c, actions.c and actions_send.c; they
 * call only outbox.c below them.
 */
#ifndef DT_WORKER_TRACE_EPISODE_INT_H
#define DT_WORKER_TRACE_EPISODE_INT_H

#include "history/store_int.h"
#include "trace_int.h"

struct dt__episode;
struct dt__item;
struct dt__episode_result;

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

#endif
