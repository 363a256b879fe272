/*
 * durabletask/orchestration.h: writing orchestrations as plain sequential C.
 *
 * An orchestrator is a C function that calls activities, waits for timers and external events,
 * starts sub-orchestrations and combines tasks with when-all / when-any. dt_await() returns a
 * task's result when history already has it; otherwise the orchestration suspends (its
 * coroutine yields) and resumes when the result arrives, possibly in another process after a
 * replay of the recorded history. The runtime layer below is runtime/engine.
 *
 * Rules for orchestrator code (the price of deterministic replay):
 *  - Reach time, randomness and IDs only through the context: dt_now(), dt_new_guid().
 *  - Take every side effect through an action (activity, sub-orchestration, dt_send_event,
 *    dt_publish); log through dt_log(), which is silent while replaying.
 *  - Allocate with dt_orch_alloc(): an instance may be dropped while suspended (evicted from the
 *    cache, terminated) and nothing on its stack is unwound, so heap memory from malloc would leak
 *    and locks would stay held. Arena memory is freed with the instance.
 *  - Payloads are opaque byte strings (UTF-8 JSON by convention); every payload the runtime hands
 *    out is followed by a NUL byte so text can be used as a C string.
 *
 * Threads: everything here is called only from the orchestrator function, on the thread that
 * runs its episode. Returned pointers live until the instance leaves memory (arena), unless said
 * otherwise.
 */
#ifndef DURABLETASK_ORCHESTRATION_H
#define DURABLETASK_ORCHESTRATION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/defs.h"
#include "durabletask/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The context of one orchestration instance; valid only inside its orchestrator function. */
typedef struct dt_orch_ctx dt_orch_ctx;
/* A durable task (activity, timer, event, sub-orchestration or a combination); arena-owned. */
typedef struct dt_task dt_task;

/* An orchestrator. `user_data` is the pointer given at registration (borrowed). */
typedef void (*dt_orchestrator_fn)(dt_orch_ctx *ctx, void *user_data);

/* Failure details: what failed, why, and what caused it. Strings are never NULL except
 * stack_trace. Failures handed out by the runtime live in the instance arena. */
typedef struct dt_failure {
    const char *type;
    const char *message;
    const char *stack_trace;
    const struct dt_failure *inner;
    bool non_retriable;
} dt_failure;

/* Failure types the runtime itself produces. */
#define DT_FAILURE_TASK_FAILED          "dt.TaskFailed"
#define DT_FAILURE_SUB_ORCH_FAILED      "dt.SubOrchestrationFailed"
#define DT_FAILURE_TIMEOUT              "dt.Timeout"
#define DT_FAILURE_NONDETERMINISM       "dt.NonDeterminism"
#define DT_FAILURE_UNKNOWN_ORCHESTRATOR "dt.UnknownOrchestrator"
#define DT_FAILURE_VERSION_MISMATCH     "dt.VersionMismatch"
#define DT_FAILURE_HISTORY_TOO_LARGE    "dt.HistoryTooLarge"
/* The output, custom status or continue-as-new input is over the hub's message limit. */
#define DT_FAILURE_PAYLOAD_TOO_LARGE "dt.PayloadTooLarge"
#define DT_FAILURE_MISUSE            "dt.Misuse"

/*
 * Retry policy for activities and sub-orchestrations. Retries are decided by the orchestration
 * (a durable timer between attempts), so they survive crashes. The delay before attempt n+1 is
 * first_interval_ms * backoff_coefficient^(n-1), capped at max_interval_ms (0 = no cap). No retry
 * is made once max_attempts attempts have run, when the failure is non-retriable, or when the next
 * attempt would start later than retry_timeout_ms (0 = none) after the first attempt.
 * A policy is a value, not options: a zeroed one is invalid (max_attempts 0 fails the
 * orchestration with DT_FAILURE_MISUSE); dt_retry_policy_init gives a valid one to start from.
 */
typedef struct dt_retry_policy {
    size_t struct_size;         /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    int max_attempts;           /* >= 1 */
    int64_t first_interval_ms;  /* >= 0 */
    double backoff_coefficient; /* >= 1.0; 0 is taken as 1.0 */
    int64_t max_interval_ms;    /* 0 = no cap */
    int64_t retry_timeout_ms;   /* 0 = no limit */
    /* Optional: whether to retry after `failure` of attempt number `attempt` (1 = the first),
     * asked only when the limits above and a non-retriable failure still allow a retry; true
     * retries. It runs inside the orchestration, also when the history is replayed, so it must
     * decide from its arguments alone (no clock, no I/O, no dt_ calls). NULL: retry.
     * should_retry_ctx is passed along, borrowed for the orchestration's run. */
    bool (*should_retry)(const dt_failure *failure, int attempt, void *should_retry_ctx);
    void *should_retry_ctx;
} dt_retry_policy;

/* Options of dt_call_activity; NULL or zeroed fields mean the defaults (the options rule: zero
 * means the default for every field, and dt_activity_options_init sets them). Borrowed. */
typedef struct dt_activity_options {
    size_t struct_size;     /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const char *task_queue; /* NULL = "default" */
    const dt_retry_policy *retry; /* NULL = one attempt */
} dt_activity_options;

/* Options of dt_call_sub_orchestrator; NULL or zeroed fields mean the defaults (zero means the
 * default for every field; dt_sub_orch_options_init sets them). Borrowed. */
typedef struct dt_sub_orch_options {
    size_t struct_size;      /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const char *instance_id; /* NULL = "<parent id>:<execution id>:<task number>" (deterministic) */
    const char *version;     /* NULL = none */
    const dt_retry_policy *retry; /* NULL = one attempt */
} dt_sub_orch_options;

/* Set every field of the struct (borrowed) to its default: zero. */
DT_API void dt_activity_options_init(dt_activity_options *o);
DT_API void dt_sub_orch_options_init(dt_sub_orch_options *o);
/* Sets `p` (borrowed) to one attempt, no retry (max_attempts 1, backoff_coefficient 1.0, the rest
 * 0): a valid policy to change. */
DT_API void dt_retry_policy_init(dt_retry_policy *p);

/* ---- what the instance is ---- */

/* The input of this execution, or NULL when none was given (*len is then 0). len may be NULL. */
DT_API const void *dt_orch_input(dt_orch_ctx *ctx, size_t *len);
DT_API const char *dt_orch_instance_id(dt_orch_ctx *ctx);
DT_API const char *dt_orch_execution_id(dt_orch_ctx *ctx);
DT_API const char *dt_orch_name(dt_orch_ctx *ctx);
/* The version given at start, or NULL. */
DT_API const char *dt_orch_version(dt_orch_ctx *ctx);
/*
 * True while the code is re-executing history (log and metrics should stay quiet): false exactly
 * once for each piece of the orchestrator's code, the first time it runs, and true whenever it
 * runs again. A worker keeps recently active instances in memory between episodes
 * (cache_capacity); for those nothing runs again and this stays false. An instance rebuilt from
 * history (after a restart, a hand-over, an eviction from the cache) re-runs its code up to
 * where it stopped with this true, then runs on with it false.
 */
DT_API bool dt_orch_is_replaying(dt_orch_ctx *ctx);

/* ---- determinism seams ---- */

/* The current orchestration time, ms since the Unix epoch: the timestamp recorded in history for
 * the episode being executed. Never goes backwards within an instance. */
DT_API int64_t dt_now(dt_orch_ctx *ctx);
/* Writes a deterministic UUID (36 chars + NUL) derived from the instance, execution and a
 * counter: the same on every replay. */
DT_API void dt_new_guid(dt_orch_ctx *ctx, char out[37]);

typedef enum dt_log_level {
    DT_LOG_DEBUG = 0,
    DT_LOG_INFO = 1,
    DT_LOG_WARN = 2,
    DT_LOG_ERROR = 3
} dt_log_level;
/* Logs through the worker's log sink; silent while replaying. */
DT_API void dt_log(dt_orch_ctx *ctx, dt_log_level level, const char *fmt, ...) DT_PRINTF(3, 4);

/* Memory that lives as long as the instance in memory. Returns NULL when out of memory. */
DT_API void *dt_orch_alloc(dt_orch_ctx *ctx, size_t size);

/* ---- scheduling tasks (each returns an arena-owned task; never NULL) ---- */

/* Schedules activity `name` with `input` (copied; NULL = no input). */
DT_API dt_task *dt_call_activity(dt_orch_ctx *ctx, const char *name, const void *input, size_t len,
                                 const dt_activity_options *opts);
/* A durable timer that fires at fire_at_ms (ms since epoch); its result is empty. */
DT_API dt_task *dt_create_timer(dt_orch_ctx *ctx, int64_t fire_at_ms);
/* A durable timer that fires delay_ms after dt_now(). */
DT_API dt_task *dt_sleep(dt_orch_ctx *ctx, int64_t delay_ms);
/*
 * Waits for the external event `name` (ASCII case-insensitive). Events that arrived before the
 * wait are buffered and matched first-in first-out; one event completes one wait.
 */
DT_API dt_task *dt_wait_event(dt_orch_ctx *ctx, const char *name);
/*
 * Like dt_wait_event, but fails with type DT_FAILURE_TIMEOUT (dt_try_await returns DT_ETIMEOUT)
 * when no event came within timeout_ms; the wait is then withdrawn, so a later event stays
 * buffered for the next wait instead of being consumed by this one.
 */
DT_API dt_task *dt_wait_event_timeout(dt_orch_ctx *ctx, const char *name, int64_t timeout_ms);
/* Starts sub-orchestration `name` with `input` (copied); its result is the child's output. */
DT_API dt_task *dt_call_sub_orchestrator(dt_orch_ctx *ctx, const char *name, const void *input,
                                         size_t len, const dt_sub_orch_options *opts);
/* Completes when every task completed; fails (with the first failure seen) if any failed.
 * `tasks` is copied; n may be 0. */
DT_API dt_task *dt_when_all(dt_orch_ctx *ctx, dt_task *const *tasks, size_t n);
/* Completes as soon as one task completes (successfully or not); see dt_task_winner. n >= 1. */
DT_API dt_task *dt_when_any(dt_orch_ctx *ctx, dt_task *const *tasks, size_t n);

/* ---- fire-and-forget actions, recorded in history and sent exactly once ---- */

/* Raises event `name` with `data` (copied) on another instance. */
DT_API void dt_send_event(dt_orch_ctx *ctx, const char *instance_id, const char *name,
                          const void *data, size_t len);
/* Publishes `data` to any NATS subject, with optional headers (n_headers pairs; copied). */
DT_API void dt_publish(dt_orch_ctx *ctx, const char *subject, const char *const *header_names,
                       const char *const *header_values, size_t n_headers, const void *data,
                       size_t len);

/* ---- awaiting ---- */

/*
 * Waits for `task` and returns its result (NULL when it has none; *len then 0; len may be NULL).
 * If the task failed, the failure is not caught: the orchestration fails at once with type
 * DT_FAILURE_TASK_FAILED (or _SUB_ORCH_FAILED) whose inner failure is the task's, and this call
 * does not return.
 */
DT_API const void *dt_await(dt_orch_ctx *ctx, dt_task *task, size_t *len);
/*
 * Waits for `task` and returns DT_OK, DT_ETASKFAILED (details in dt_task_failure) or DT_ETIMEOUT
 * (dt_wait_event_timeout ran out). The failure is caught: the orchestration goes on.
 */
DT_API dt_status dt_try_await(dt_orch_ctx *ctx, dt_task *task);

DT_API bool dt_task_is_done(const dt_task *task);
/* The result of a completed task, or NULL (*len 0). len may be NULL. */
DT_API const void *dt_task_output(const dt_task *task, size_t *len);
/* The failure of a failed task, or NULL. */
DT_API const dt_failure *dt_task_failure(const dt_task *task);
/* For a completed dt_when_any: the index of the first task that completed; -1 otherwise. */
DT_API int dt_task_winner(const dt_task *task);

/* ---- the end of an execution ---- */

/* Sets the output returned when the orchestrator returns (copied; the last call wins). */
DT_API void dt_orch_set_output(dt_orch_ctx *ctx, const void *data, size_t len);
/* Sets the custom status visible to clients (copied; NULL clears it). */
DT_API void dt_set_custom_status(dt_orch_ctx *ctx, const void *data, size_t len);
/* Fails the orchestration now with the given details (copied; inner may be NULL). Does not
 * return. */
DT_NORETURN DT_API void dt_orch_fail(dt_orch_ctx *ctx, const char *type, const char *message,
                                     const dt_failure *inner);
/*
 * Ends this execution now and starts a new one of the same instance with `input` (copied) and a
 * fresh history. With keep_events, events that arrived but were not consumed are carried over to
 * the new execution; otherwise they are dropped. Does not return.
 */
DT_NORETURN DT_API void dt_continue_as_new(dt_orch_ctx *ctx, const void *input, size_t len,
                                           bool keep_events);

#ifdef __cplusplus
}
#endif
#endif
