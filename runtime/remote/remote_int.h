/*
 * remote_int.h: orchestrations and activities whose code runs in Durable Task SDK workers
 * (internal; runtime/remote).
 *
 * A dt__remote is attached to a dt_worker (the sidecar's, or any C worker's) before it starts.
 * Then:
 *   - an episode of an orchestration whose name the worker's C code did not register (or one of
 *     the configured names) is not run by the replay engine: its past and new events go to a
 *     connected SDK worker as an OrchestratorRequest work item, and the OrchestratorResponse's
 *     actions come back as the engine's result would (OrchestratorStarted, the new events, one
 *     event per action with event_id = the action's id, ExecutionCompleted), so commit, outbox
 *     and status handling are the same as for C orchestrations;
 *   - the configured activity names are registered on the worker's task queue; a work item for
 *     one goes to a connected SDK worker as an ActivityRequest, and its ActivityResponse is the
 *     activity's result.
 * With no SDK worker connected, or when it disconnects or does not answer in time, the episode's
 * messages and the activity's work item are left to the broker and redelivered: nothing is lost,
 * nothing is failed for it.
 *
 * The transport (runtime/sidecar: gRPC GetWorkItems and Complete*Task) only moves packed protocol
 * messages (microsoft/durabletask-protobuf orchestrator_service.proto: WorkItem,
 * OrchestratorResponse, ActivityResponse) through the functions below; it never sees history.
 *
 * Threads: every function is thread-safe. The worker's partition and activity threads block in
 * this module (bounded by the timeouts) while the transport's threads poll and complete.
 *
 * REVISIONS: 22:41 first version (the five transport functions as agreed in the brief);
 * 22:44 poll's item is freed with dt_free (the allocator seam), dt__remote_shutdown added;
 * 23:05 dt__remote_abandon added; 23:50 max_inflight added (poll may say DT_ENOTFOUND while
 * items are queued: the connection is woken again when an answer frees a slot); timeouts count
 * from the poll.
 */
#ifndef DT_REMOTE_INT_H
#define DT_REMOTE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/status.h"
#include "durabletask/worker.h"

typedef struct dt__remote dt__remote;           /* attached to a dt_worker in the sidecar */
typedef struct dt__remote_conn dt__remote_conn; /* one GetWorkItems stream */

/* ================================ set-up (the sidecar's main) ================================ */

typedef struct dt__remote_options {
    /* Orchestration names run by SDK workers. n_orchestrations == 0: every name the worker's C
     * code did not register with dt_worker_add_orchestrator. Borrowed for the call (copied). */
    const char *const *orchestrations;
    size_t n_orchestrations;
    /* Activity names served by SDK workers, registered on `task_queue` of the worker (copied).
     * A name that a C activity of the same worker also registers on that queue is an error. */
    const char *const *activities;
    size_t n_activities;
    const char *task_queue; /* NULL: "default" (the queue SDK orchestrations schedule on) */
    /* How long an episode waits to be polled, and then again for its OrchestratorResponse once
     * polled; then it is left for redelivery (a late response is refused with DT_ENOTFOUND).
     * 0: 15,000 ms. The partition thread waits meanwhile (its messages kept alive by in-progress
     * acks). */
    int64_t episode_timeout_ms;
    /* How long an activity waits for a connection, to be polled, and for its ActivityResponse
     * once polled (each); then its work item is redelivered. 0: 300,000 ms. (The work item is kept
     * alive by in-progress acks meanwhile, like any running activity's.) */
    int64_t activity_timeout_ms;
    /* Work items queued on one connection and not yet polled, at most; further items go to other
     * connections or are left for redelivery. 0: 1,024. */
    size_t max_queued;
    /* Work items sent on one connection and not answered yet, at most: poll answers DT_ENOTFOUND
     * beyond it (the connection is woken when one is answered). The rest wait here, where a
     * timed-out item can be withdrawn, instead of piling up in the SDK worker, which would then
     * spend its time on items already given up (congestion collapse, seen with 100 chains).
     * 0: 32. */
    size_t max_inflight;
} dt__remote_options;

void dt__remote_options_init(dt__remote_options *o);

/* On DT_OK *out is the remote (free with dt__remote_destroy after the worker is destroyed).
 * DT_EINVAL: an empty or overlong name. */
dt_status dt__remote_create(const dt__remote_options *o, dt__remote **out);

/* Attaches r (borrowed; it must outlive w) to w between dt_worker_create and dt_worker_start:
 * registers the remote activity names with w and routes the orchestrations above to r.
 * DT_ESTATE when w is started or has a remote already; DT_EEXIST: an activity name clash. */
dt_status dt__remote_attach(dt__remote *r, dt_worker *w);

/* Makes every poll answer DT_ECLOSED and wakes every connection (so the transport ends its
 * streams), abandons every waiting item (they are redelivered) and refuses new connections.
 * Idempotent. */
void dt__remote_shutdown(dt__remote *r);

/* Shuts down (above) and frees. NULL accepted. Call after dt_worker_destroy of the worker it was
 * attached to, once the transport disconnected every connection and no longer calls in. */
void dt__remote_destroy(dt__remote *r);

/* ============================ the transport (runtime/sidecar) ============================ */

/* A new GetWorkItems stream. wake(arg) is called from any thread (with no lock of this module
 * held) when work is queued for c, and once when the remote is destroyed; it must only signal.
 * On DT_OK *out is the connection (free with dt__remote_disconnect). DT_ECLOSED when r is being
 * destroyed. */
dt_status dt__remote_connect(dt__remote *r, void (*wake)(void *arg), void *arg,
                             dt__remote_conn **out);

/* Non-blocking: DT_OK with *item = a packed protocol WorkItem (OrchestratorRequest or
 * ActivityRequest, completionToken set; the caller frees it with dt_free(), the library's
 * allocator seam: plain free() while no dt_set_allocator was installed), DT_ENOTFOUND when none
 * is queued, DT_ECLOSED after dt__remote_shutdown (end the stream). */
dt_status dt__remote_poll(dt__remote_conn *c, uint8_t **item, size_t *len);

/* Packed protocol OrchestratorResponse / ActivityResponse (borrowed). Matched by completion
 * token, or when that is empty or unknown by instance ID (orchestrations) / instance ID and task
 * ID (activities).
 *   DT_OK: taken. A response that parses but breaks the protocol's rules (unknown action, an
 *          action ID used before, an invalid name...) fails the instance with a clear
 *          TaskFailureDetails (dt.RemoteProtocolError / dt.NonDeterminism): it is still DT_OK.
 *   DT_ENOTFOUND: no such in-flight item (never sent, already completed, timed out, or its
 *          connection was closed): answer NOT_FOUND; nothing changes.
 *   DT_EINVAL: does not parse, or names no instance: answer INVALID_ARGUMENT; nothing changes
 *          (the item times out and is redelivered). */
dt_status dt__remote_complete_orchestration(dt__remote *r, const uint8_t *req, size_t len);
dt_status dt__remote_complete_activity(dt__remote *r, const uint8_t *req, size_t len);

/* A packed protocol EntityBatchResult (borrowed), matched by completion token (it names no
 * instance). DT_OK: taken (a result that breaks the rules fails the operation with
 * dt.RemoteProtocolError); DT_ENOTFOUND: no such entity work item in flight; DT_EINVAL: does not
 * parse, or no token. */
dt_status dt__remote_complete_entity(dt__remote *r, const uint8_t *req, size_t len);

/* A packed protocol AbandonOrchestrationTaskRequest / AbandonActivityTaskRequest /
 * AbandonEntityTaskRequest (borrowed; each is one completionToken): the item is given up at once
 * and redelivered (an episode after about 5 s, an activity after about 1 s) instead of after its
 * timeout. DT_OK, DT_ENOTFOUND (no such item in flight), DT_EINVAL (does not parse, or no token).
 */
dt_status dt__remote_abandon(dt__remote *r, const uint8_t *req, size_t len);

/* Ends a stream: its queued and in-flight items are abandoned and redelivered (to another
 * connection if there is one, else later by the broker). Frees c. NULL accepted. */
void dt__remote_disconnect(dt__remote_conn *c);

/* Connections open now (for Hello/health and tests). */
size_t dt__remote_connections(dt__remote *r);

/* The worker's side (partition and activity threads) is in remote_worker_int.h. */

#endif
