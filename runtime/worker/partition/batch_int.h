/*
 * batch_int.h: one batch of a partition (internal to runtime/worker/partition): its items grouped
 * by instance, and what its episodes produce for the commit (batch.c). The bottom of the
 * pipeline's headers: partition.c fills a batch, the episode files add to it, the commit and the
 * outbox read it.
 */
#ifndef DT_BATCH_INT_H
#define DT_BATCH_INT_H

#include "dt_broker.h"
#include "engine_int.h"
#include "history/store_int.h"
#include "protocol_int.h"

/* A unit of work of a batch: a fetched message or a due timer. */
typedef struct dt__item {
    dt_broker_msg *msg; /* NULL for a timer or a parked message */
    int64_t timer_id;   /* -1 for a message */
    int64_t parked_id;  /* > 0: a message parked earlier (episode_park.c), 0 otherwise */
    Dtpb__OrchestrationMessage *om;
    /* A message's packed OrchestrationMessage: the fetched body, or its member of a batch
     * (arena memory, or the fetched message's, which lives as long as the batch). */
    const uint8_t *data;
    size_t len;
    struct dt__item *same_msg; /* next item decoded from the same fetched message (a batch) */
    bool leave;            /* not for this worker (version): redeliver later instead of acking */
    int32_t retry_ms;      /* > 0: not applied yet; redeliver after this delay (entity_episode.c) */
    struct dt__item *next; /* next item of the same instance, in arrival order */
} dt__item;

typedef struct dt__group {
    const char *instance_id;
    dt__item *head, *tail;
    struct dt__group *next;
} dt__group;

/* Everything one batch produces; lives in `arena` until the batch is done. */
typedef struct dt__batch {
    dt__arena *arena;
    int64_t now_ms;
    dt__group *groups, *groups_tail;
    /* First item of each fetched message (NULL: nothing of it applies here), by fetch index; the
     * members of a batch message follow through same_msg. */
    dt__item **msg_items;
    bool *msg_retry; /* by fetch index: a member could not be moved yet; nak the message */
    dt__episode_commit *commits;
    size_t n_commits, cap_commits;
    dt__episode_result *results; /* engine results to free after the commit */
    size_t n_results, cap_results;
    const char **touched; /* instances whose cached engine state depends on this commit */
    size_t n_touched, cap_touched;
    dt__parked_new *parks; /* messages kept for instances whose start has not arrived */
    size_t n_parks, cap_parks;
    bool committed;                    /* `commits` are durable (their outbox_ids filled in) */
    struct dt__remote_pending *remote; /* episodes sent to SDK workers (episode_remote.c) */
} dt__batch;
/* Where a group left for later puts the timers it re-arms: `fired` the timer ids consumed,
 * `timers` the new ones (both grown in the caller's arena). */
typedef struct dt__leave_out {
    int64_t **fired;
    size_t *n_fired, *cap_fired;
    dt__timer_new **timers;
    size_t *n_timers, *cap_timers;
} dt__leave_out;

/* Leaves group `g` for later: its broker messages are marked to be redelivered (it->leave), its
 * timer-delivered ones re-armed DT__LEAVE_TIMER_DELAY_MS after now_ms (so they do not spin).
 * Used by orchestration episodes (episode_leave.c) and entity episodes (entity_episode.c).
 * DT_ENOMEM when the arena is exhausted. */
#define DT__LEAVE_TIMER_DELAY_MS 5000
dt_status dt__group_leave(dt__group *g, dt__arena *a, int64_t now_ms, dt__leave_out o);

/* ---- batch.c: appends to the batch's arrays (false: out of memory) ---- */
bool dt__batch_push_commit(dt__batch *b, const dt__episode_commit *c);
bool dt__batch_keep_result(dt__batch *b, const dt__episode_result *r);
bool dt__batch_touch(dt__batch *b, const char *instance_id);
bool dt__batch_park(dt__batch *b, const dt__parked_new *p);

#endif
