/*
 * entity_int.h: the entity engine (internal, dt__entity_ prefix; runtime/entity).
 *
 * Pure logic, no I/O and no clock: the messages a partition's batch holds for one entity go in
 * (each new: the caller dropped repeats by identity), with the entity's state and record; the
 * new state and record and the messages to send come out. The worker (runtime/worker,
 * entity_episode.c) commits them with the batch, through the partition log, and publishes the
 * messages through the outbox like every other message.
 *
 * Messages (OrchestrationMessage.event) an entity takes:
 *   EntityOperationSignaled  run the operation; nobody waits for it
 *   EntityOperationCalled    run it; answer the caller (parent_instance_id) with
 *                            EntityOperationCompleted / EntityOperationFailed (request_id)
 *   EntityLockRequested      lock the entity for parent_instance_id, then forward the request
 *                            to lock_set[position + 1], or, from the last one, answer the
 *                            orchestration with EntityLockGranted
 *   EntityUnlockSent         the holder's unlock: then the queued requests run, in order
 * While locked, requests of anyone but the holder (and signals, which name no sender) wait in
 * the record's queue, in arrival order.
 *
 * Every operation runs on the state the previous one left; a failed operation (dt_entity_fail,
 * or a state over max_state) leaves the state as before it and sends nothing but its failure.
 *
 * Memory: everything returned lives in the caller's arena.
 */
#ifndef DT_ENTITY_INT_H
#define DT_ENTITY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "dt_entity.pb-c.h"
#include "dt_work.pb-c.h"
#include "durabletask/entity.h"
#include "store_int.h"

/* Failure types the runtime gives entity operations. */
#define DT__ENTITY_UNKNOWN   "dt.UnknownEntity"
#define DT__ENTITY_TOO_LARGE "dt.StateTooLarge"
/* Most requests an entity queues while locked; more fail (calls) or are dropped (signals),
 * reported in dt__entity_out.dropped. */
#define DT__ENTITY_QUEUE_MAX 10000
/* The execution ID of every entity row (entities have no executions). */
#define DT__ENTITY_EXECUTION "entity"

/* Whether instance_id names an entity ("@..."). */
bool dt__entity_is_id(const char *instance_id);

typedef struct dt__entity_in {
    const char *instance_id;                 /* "@<name>@<key>" (borrowed) */
    dt__blob state;                          /* data NULL: no state */
    const Dtpb__EntityRecord *rec;           /* NULL: unlocked, nothing queued */
    Dtpb__OrchestrationMessage *const *msgs; /* new messages in arrival order */
    size_t n_msgs;
    dt_entity_fn fn; /* NULL: no function registered under the name: operations fail */
    void *user_data;
    size_t max_state; /* 0: no bound */
    int64_t now_ms;   /* the timestamp of the events it sends */
} dt__entity_in;

typedef struct dt__entity_out {
    dt__blob state; /* as the batch leaves it (data NULL: none) */
    bool state_changed;
    Dtpb__EntityRecord *rec; /* as the batch leaves it; never NULL */
    bool rec_empty;          /* unlocked with nothing queued (then nothing needs storing) */
    Dtpb__OrchestrationMessage **sends; /* to publish, in order */
    size_t n_sends, cap_sends;
    /* Messages that could not be run or queued (a signal with no registered function, a full
     * queue), for the caller to dead-letter, with a reason each. */
    Dtpb__OrchestrationMessage **dropped;
    const char **dropped_why;
    size_t n_dropped, cap_dropped, cap_dropped_why;
    size_t n_ok, n_failed, n_queued; /* operations run, failed, requests queued */
} dt__entity_out;

/* Runs the messages of one batch for one entity (see the file comment). DT_ENOMEM; DT_EINVAL
 * for an instance ID that is not an entity's. */
dt_status dt__entity_run(dt__arena *a, const dt__entity_in *in, dt__entity_out *out);

/* ---- entity_ctx.c: one operation's context (the engine's side of durabletask/entity.h) ---- */

struct dt_entity_ctx {
    dt__arena *a;
    const char *instance_id, *name, *key, *operation;
    const char *source_id; /* the request's identity: the IDs of what the operation sends */
    dt__blob input;
    dt__blob state; /* working state (data NULL: none) */
    dt__blob result;
    bool failed;
    Dtpb__TaskFailureDetails *failure;
    Dtpb__OrchestrationMessage **sends;
    size_t n_sends, cap_sends;
    size_t max_state;
    int64_t now_ms;
    dt_status error; /* an out-of-memory inside a context call, reported by the engine */
};

/* Starts an operation on state `state` (borrowed for the call; copied on write). */
void dt__entity_ctx_init(dt_entity_ctx *c, dt__arena *a, const char *instance_id, const char *name,
                         const char *key, const char *operation, const char *source_id,
                         dt__blob input, dt__blob state, size_t max_state);
/* A failure in arena `a` (strings copied). */
Dtpb__TaskFailureDetails *dt__entity_failure(dt__arena *a, const char *type, const char *message,
                                             bool non_retriable);

#endif
