/*
 * convert_int.h: the pure half of runtime/remote: episode input -> OrchestratorRequest work item,
 * OrchestratorResponse -> episode result (the engine's contract, engine_int.h), activity request
 * -> ActivityRequest work item. No I/O, no clock, no locks; unit-tested on its own
 * (tests/unit/test_remote_convert.c).
 *
 * The protocol's rules applied to a response (the same ones durabletask-go's backend applies):
 * the result appends OrchestratorStarted, the new events, then one event per action in the
 * order given, with event_id = the action's id: ScheduleTask -> TaskScheduled, CreateTimer ->
 * TimerCreated, CreateSubOrchestration -> SubOrchestrationInstanceCreated (an empty instance ID
 * becomes "<parent>:<id as 4 hex digits>"), SendEvent -> EventSent, CompleteOrchestration ->
 * ExecutionCompleted (event_id -1, as the engine writes it) or, with status CONTINUED_AS_NEW,
 * the continuation (new input, carried-over EventRaised events). A response that breaks a rule
 * is not applied in part: the execution fails with one ExecutionCompleted whose failure says
 * what was wrong (dt.RemoteProtocolError, or dt.NonDeterminism for an action ID that history
 * already used), and no action of it is taken.
 */
#ifndef DT_REMOTE_CONVERT_INT_H
#define DT_REMOTE_CONVERT_INT_H

#include "dt_remote.pb-c.h"
#include "dt_work.pb-c.h"
#include "engine_int.h"

#define DT__REMOTE_PROTOCOL_ERROR "dt.RemoteProtocolError"

typedef struct dt__remote_limits {
    size_t max_payload; /* output, continue-as-new input, custom status; 0: no bound */
    size_t max_history; /* events in an execution's history; 0: 100,000 */
    /* Activity names served on another queue than "default": a ScheduleTask of one of them gets
     * that task queue (sorted for bsearch; may be NULL). */
    const char *const *queue_names;
    size_t n_queue_names;
    const char *queue;
} dt__remote_limits;

/* The packed WorkItem carrying the OrchestratorRequest of episode `in` (borrowed) of execution
 * `execution_id`, with completion token `token`. On DT_OK *out is dt_alloc'd (free with dt_free).
 * DT_ENOMEM. */
dt_status dt__remote_pack_orch_item(const dt__episode_input *in, const char *execution_id,
                                    const char *token, uint8_t **out, size_t *len);

/* The packed WorkItem carrying the ActivityRequest for our work item `req`. As above. */
dt_status dt__remote_pack_act_item(const Dtpb__ActivityRequest *req, const char *token,
                                   uint8_t **out, size_t *len);

/* Checks the history of `in` as the engine does: DT_EINVAL when it does not start with
 * ExecutionStarted (and no new event is one), DT_ESTATE when it already ended. */
dt_status dt__remote_check_input(const dt__episode_input *in);

/* When a new event terminates the execution no SDK worker is needed: fills *out with the
 * terminated result (OrchestratorStarted, the new events up to the terminate, ExecutionCompleted
 * TERMINATED with the reason as output) and returns true. False (out untouched) otherwise.
 * *st is DT_OK or DT_ENOMEM when true is returned. */
bool dt__remote_terminated(const dt__episode_input *in, dt__episode_result *out, dt_status *st);

/* Unpacks an OrchestratorResponse / ActivityResponse into arena `a`; NULL when it does not parse
 * or names no instance. */
Dtpb__Remote__OrchestratorResponse *dt__remote_parse_orch_response(dt__arena *a,
                                                                   const uint8_t *data, size_t len);
Dtpb__Remote__ActivityResponse *dt__remote_parse_act_response(dt__arena *a, const uint8_t *data,
                                                              size_t len);

/* Converts `resp` (living in arena `a`) into *out for episode `in` (borrowed, as for the engine's
 * result: new events are shared with it). `a` becomes out->arena on DT_OK (and is destroyed by
 * dt__episode_result_free); on failure the caller keeps it. DT_ENOMEM only: a response that
 * breaks the rules gives a failed result. */
dt_status dt__remote_orch_result(const dt__episode_input *in, const char *execution_id,
                                 const Dtpb__Remote__OrchestratorResponse *resp, dt__arena *a,
                                 const dt__remote_limits *lim, dt__episode_result *out);

/* ---- convert_entity.c ---- */

/* The history event (event_id id, at now_ms, in arena `a`, pointing into m) that SendEntityMessage
 * action `m` records. NULL: out of memory (*why NULL), or the action breaks a rule (*why says
 * which: a missing request ID, operation or critical section ID, a target that is not an entity
 * ID with a lower-case name, an unsorted lock set, a call scheduled for later). */
Dtpb__HistoryEvent *dt__remote_entity_event(dt__arena *a, int32_t id, int64_t now_ms,
                                            const Dtpb__Remote__SendEntityMessageAction *m,
                                            const char **why);

/* The EntityUnlockSent events (event_id -1, in `a`) an execution that ends now owes: one per
 * entity of the last critical section opened in past + added (since its ExecutionStarted) that
 * no EntityUnlockSent released. *out NULL and *n_out 0 when none. False: out of memory. */
bool dt__remote_end_unlocks(dt__arena *a, int64_t now_ms, Dtpb__HistoryEvent *const *past,
                            size_t n_past, Dtpb__HistoryEvent *const *added, size_t n_added,
                            Dtpb__HistoryEvent ***out, size_t *n_out);

#endif
