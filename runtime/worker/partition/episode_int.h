/*
 * episode_int.h: the state of one instance's episode while a batch is processed (internal to
 * runtime/worker: episode.c filters the items, commit.c turns the engine's result into a commit,
 * actions.c turns action events into outbox messages).
 */
#ifndef DT_EPISODE_INT_H
#define DT_EPISODE_INT_H

#include "partition_int.h"
#include "trace_episode_int.h"

/* Tag key in the start record that holds the subject a final status is published to. */
#define DT__TAG_RESULT_SUBJECT "dt.result_subject"
/* Tag key in the start record that holds the identity of the start that created the instance
 * (a later repeat of it is recognised after its applied identity was pruned). */
#define DT__TAG_ORIGIN "dt.origin"

typedef struct dt__episode {
    dt__partition *pt;
    dt__batch *b;
    dt__arena *a;
    const char *instance_id;
    bool have_row;
    dt__instance_row row; /* as stored (valid when have_row) */
    /* The ExecutionStarted of the current execution: from the stored start record, or from an
     * accepted start message (then `fresh` is true and the stored history is replaced). */
    Dtpb__ExecutionStartedEvent *start;
    const char *execution_id;
    bool fresh;
    bool reset;           /* the accepted start replaces an older execution */
    int64_t requested_ms; /* when the accepted start was requested (its event's timestamp) */
    Dtpb__HistoryEvent **news;
    dt__item **news_items; /* the item of each of news[] */
    size_t n_news, cap_news, cap_news_items;
    /* Events that need a start not applied yet: applied after it when it comes in this batch,
     * else parked (episode_park.c). */
    dt__item **waiting;
    size_t n_waiting, cap_waiting;
    int64_t *unparked; /* ids of parked messages this episode applied or found to be repeats */
    size_t n_unparked, cap_unparked;
    /* A rewind of this failed instance (episode_rewind.c): the request, the rewritten history
     * the episode runs on, the actions to send again and the failed children to rewind. */
    const Dtpb__OrchestrationMessage *rewind;
    Dtpb__HistoryEvent **rw_past;
    size_t n_rw_past;
    const Dtpb__HistoryEvent **rw_again;
    size_t n_rw_again;
    const Dtpb__HistoryEvent **rw_children;
    uint32_t *rw_child_gen; /* the rewinds before each child was created (its start's identity) */
    size_t n_rw_children;
    /* A recursive terminate for this finished instance: passed on to its children. */
    const Dtpb__ExecutionTerminatedEvent *forward_term;
    const char **applied;
    size_t n_applied, cap_applied;
    int64_t *fired;
    size_t n_fired, cap_fired;
    dt__outbox_builder out;
    dt__timer_new *timers;
    size_t n_timers, cap_timers;
} dt__episode;

/* ---- episode_leave.c ---- */
/* Leaves the instance untouched for now (`why` is logged): its messages are redelivered later,
 * its due timers move a little ahead, nothing else of the episode is committed. */
dt_status dt__episode_leave(dt__episode *e, dt__group *g, const char *why);

/* ---- episode_remote.c ---- */
/* Whether the episode's orchestration runs in an SDK worker (runtime/remote). */
bool dt__episode_is_remote(const dt__episode *e);
/* Sends the episode to an SDK worker and queues it on the batch for collection (or leaves the
 * instance when no SDK worker can take it). past[0..n_past) lives in the batch arena. */
dt_status dt__episode_remote_send(dt__episode *e, dt__group *g, Dtpb__HistoryEvent **past,
                                  size_t n_past);

/* ---- episode_park.c ---- */
/* Parks the waiting items (their instance has no started execution), for the batch's commit. */
dt_status dt__episode_park_waiting(dt__episode *e);
/* The instance's parked messages as items (oldest first; in e->a), for applying after its start.
 * *out is NULL when there are none. */
dt_status dt__episode_unpark(dt__episode *e, dt__item ***out, size_t *out_n);
/* Notes that the parked message of `it` (if any) is consumed by this episode's commit. */
dt_status dt__episode_note_unparked(dt__episode *e, const dt__item *it);

/* ---- episode_terminate.c ---- */
bool dt__episode_is_recursive_terminate(const Dtpb__HistoryEvent *ev);
/* The recursive terminate among the episode's news, or NULL. */
const Dtpb__ExecutionTerminatedEvent *dt__episode_recursive_terminate(const dt__episode *e);
/* After an episode that terminated the instance for a recursive terminate: passes it on to every
 * child created in past[0..n_past) and r's appended events. */
dt_status dt__episode_terminate_children(dt__episode *e, Dtpb__HistoryEvent *const *past,
                                         size_t n_past, const dt__episode_result *r);
/* A finished instance got a recursive terminate (`it`): consumes it and remembers it ... */
dt_status dt__episode_keep_terminate(dt__episode *e, dt__item *it);
/* ... to pass on to every child in its stored history (into the episode's outbox). */
dt_status dt__episode_forward_terminate(dt__episode *e);

/* ---- episode_rewind.c ---- */
/* Tag key in the start record: how often the current execution was rewound (absent: never). */
#define DT__TAG_REWINDS "dt.rewinds"
bool dt__episode_is_rewind(const Dtpb__HistoryEvent *ev);
/* A rewind request `it` for this instance: when the instance is failed, rewrites its history
 * into e->rw_* and sets *apply (the caller applies the ExecutionRewound event as news); else
 * consumes the request (logged) and leaves *apply false. */
dt_status dt__episode_rewind_prepare(dt__episode *e, dt__item *it, bool *apply);
/* True when this episode runs a rewind (prepared, and no start replaced the execution since). */
bool dt__episode_rewinding(const dt__episode *e);
/* After the rewound episode ran: sends again the failed and lost calls and rewinds the failed
 * children, unless the episode ended the execution again. */
dt_status dt__episode_rewind_resend(dt__episode *e, const dt__episode_result *r);
/* The packed rewritten history in front of the episode's events (*events, *n grow). */
dt_status dt__episode_rewind_events(dt__episode *e, dt__blob **events, size_t *n);
/* Removes the rewind count from start record s (a copy for the next execution: its count
 * starts again, as its history holds no rewind). */
dt_status dt__episode_rewind_untag(dt__episode *e, Dtpb__ExecutionStartedEvent *s);
/* ---- commit.c ---- */
/* Builds and queues the commit of an episode run (r may be NULL when no episode ran but the
 * instance row and outbox still change, e.g. a deferred start). */
dt_status dt__episode_commit_result(dt__episode *e, const dt__episode_result *r);
/* Queues a commit that only records the consumed identities and outbox messages (no row
 * change). Requires have_row. */
dt_status dt__episode_commit_bare(dt__episode *e);
/* Decodes the start record stored in a row's tags blob (NULL when absent or unreadable). */
Dtpb__ExecutionStartedEvent *dt__start_record_decode(dt__arena *a, const dt__blob *tags);

/* ---- entity_actions.c ---- */
/* The message for an entity action event (signal, call, lock request, unlock) into the outbox;
 * DT_OK without effect for any other event. */
dt_status dt__entity_action(dt__episode *e, const Dtpb__HistoryEvent *rec);

/* ---- actions.c ---- */
/* Adds the outbox messages and timers that the action events of `r` call for. */
dt_status dt__actions_build(dt__episode *e, const dt__episode_result *r);
/* Notifies the parent (if any) that this execution ended (status, output, failure). */
dt_status dt__actions_notify_parent(dt__episode *e, const Dtpb__ExecutionStartedEvent *start,
                                    bool ok, const Dtpb__Payload *output,
                                    Dtpb__TaskFailureDetails *failure);
/* The execution ID a child created by task `task_id` of this execution starts with. */
const char *dt__actions_child_execution(dt__episode *e, int32_t task_id);
/* Sends again the call that action event `ev` (TaskScheduled, TimerCreated or
 * SubOrchestrationInstanceCreated) made (a rewind). */
dt_status dt__actions_resend(dt__episode *e, const Dtpb__HistoryEvent *ev);

/* ---- actions_send.c ---- */
/* Queues an OrchestrationMessage for another (or this) instance into the outbox. */
dt_status dt__actions_send(dt__episode *e, const char *instance_id, const char *execution_id,
                           Dtpb__HistoryEvent *ev, const char *dedupe_id);
/* Queues an OrchestrationMessage (borrowed; packed into the outbox) to its instance. */
dt_status dt__actions_send_message(dt__episode *e, const Dtpb__OrchestrationMessage *m);
/* Queues `ev` (in e->a) for the child instance that `created` (a SubOrchestrationInstanceCreated)
 * started under kind `sub`: its identity is (kind, created's event id), its target origin the
 * child start's identity (actions.c start_child), so the child applies it to that execution. */
dt_status dt__actions_send_to_child(dt__episode *e, const Dtpb__HistoryEvent *created,
                                    Dtpb__HistoryEvent *ev, const char *kind, const char *sub);
/* The subject of instance_id's partition stream (dt.<hub>.orch.<p>) into buf. */
dt_status dt__actions_subject(dt__episode *e, const char *instance_id, char *buf, size_t len);
/* A new event with timestamp now, in e->a. */
Dtpb__HistoryEvent *dt__actions_event(dt__episode *e);

/* ---- episode_kind.c ---- */
/* How often the current execution was rewound (from the start record's tag). */
uint32_t dt__episode_rewinds(const dt__episode *e);
/* The identity kind `kind` ("act", "res", ...) of this execution's messages: as is when never
 * rewound, else "<kind>.r<n>", so that a message of the rewound run is not dropped as a repeat
 * of the failed run's (JetStream's duplicate window). In e->a; NULL on OOM. */
const char *dt__episode_kind(dt__episode *e, const char *kind);
/* The same for a count of rewinds `n`. */
const char *dt__episode_kind_at(dt__episode *e, const char *kind, uint32_t n);

/* ---- inline ---- */
/* A string copy of a Payload's bytes in `a` (NULL for an absent payload). */
static inline const char *dt__payload_str(dt__arena *a, const Dtpb__Payload *p)
{
    return p == NULL ? NULL : dt__arena_memdup(a, p->value.data, p->value.len);
}

#endif
