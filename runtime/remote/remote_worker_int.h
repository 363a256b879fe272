/*
 * remote_worker_int.h: the worker's side of runtime/remote (remote_int.h says what the module
 * is): the partition thread sends the episodes of remote orchestrations and collects their
 * results here; the activity pool runs remote activities through a function registered by
 * dt__remote_attach. Internal to runtime/worker and runtime/remote.
 */
#ifndef DT_REMOTE_WORKER_INT_H
#define DT_REMOTE_WORKER_INT_H

#include <stdatomic.h>

#include "engine_int.h"
#include "durabletask/entity.h"
#include "remote_int.h"

typedef struct dt__remote_call dt__remote_call; /* one work item on its way to an SDK worker */

/* Whether an orchestration runs remotely: r is attached (not NULL) and `name` is one of its
 * names, or (no names configured) no C orchestrator of the worker has it (`local` false). */
bool dt__remote_takes(const dt__remote *r, const char *name, bool local);

/*
 * Queues episode `in` (borrowed until the wait returns) of execution `execution_id` for a
 * connected SDK worker, without waiting. DT_OK: *out is the call; collect it with
 * dt__remote_episode_wait. DT_ECLOSED: no SDK worker can take it now (none connected, all full,
 * shut down): leave the instance for redelivery. DT_EINVAL / DT_ESTATE as dt__engine_run_episode
 * (history without a start / already ended). DT_ENOMEM. An episode that terminates the instance
 * needs no SDK worker: its call is complete at once.
 */
dt_status dt__remote_episode_send(dt__remote *r, const dt__episode_input *in,
                                  const char *execution_id, size_t max_payload,
                                  dt__remote_call **out);

/*
 * Waits for the call's response, at most until its deadline (episode_timeout_ms after it was
 * queued, and again after it was polled), checking *stop (may be NULL) every 100 ms, and at most
 * max_wait_ms (0: no bound) this call. DT_OK: *out is filled as by dt__engine_run_episode (free
 * with dt__episode_result_free; new events are shared with `in`). DT_EBUSY: still waiting after
 * max_wait_ms: c is kept; call again (keep the episode's messages alive meanwhile).
 * DT_ETIMEOUT, DT_ECLOSED (its connection ended, shutdown, abandoned or *stop): the item is
 * withdrawn; leave the instance for redelivery. DT_ENOMEM. Frees c unless DT_EBUSY.
 */
dt_status dt__remote_episode_wait(dt__remote_call *c, const atomic_bool *stop, int64_t max_wait_ms,
                                  dt__episode_result *out);

/* ---- entities (remote_entity.c) ---- */

/* Whether entity `name` (lower case) runs in SDK workers: r is attached (not NULL) and no C
 * entity function of the worker has the name (the caller looked it up first). */
bool dt__remote_takes_entity(const dt__remote *r, const char *name);

/* What the worker hands dt__remote_entity_fn as its user_data for one entity's run. */
typedef struct dt__remote_entity_run {
    dt__remote *r;
    const atomic_bool *stop; /* the partition's stop flag (may be NULL) */
    /* Called every few seconds while an operation waits for its SDK worker, to keep the batch's
     * fetched messages from being redelivered meanwhile (may be NULL). */
    void (*keep_alive)(void *arg);
    void *arg;
    /* Set by the function: DT_OK, or why an operation got no answer (DT_ECLOSED: no SDK worker,
     * it disconnected or abandoned it, or stop; DT_ETIMEOUT; DT_ENOMEM). Then the engine's run
     * ends with the context's error and nothing of it may be committed: leave the entity's
     * messages for redelivery. */
    dt_status lost;
} dt__remote_entity_run;

/* The entity function (durabletask/entity.h) of entities whose code runs in SDK workers; its
 * user_data is a dt__remote_entity_run. It blocks the partition thread for one round trip. */
void dt__remote_entity_fn(dt_entity_ctx *ctx, void *user_data);

/* Withdraws a call nobody will wait for (its batch failed) and frees it. NULL accepted. */
void dt__remote_call_cancel(dt__remote_call *c);

#endif
