/*
 * instance_int.h: the in-memory state of one orchestration instance and its tasks (internal to
 * runtime/engine). An instance is the dt_orch_ctx handed to user code.
 *
 * Every byte of an instance lives in its arena, except the task table (a growable array freed by
 * an arena cleanup hook) and the coroutine (destroyed with the instance).
 */
#ifndef DT_INSTANCE_INT_H
#define DT_INSTANCE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "common_int.h"
#include "coro_int.h"
#include "dt_history.pb-c.h"
#include "engine_int.h"
#include "pb_int.h"

typedef enum task_kind {
    TASK_ACTIVITY,
    TASK_TIMER,
    TASK_SUB_ORCH,
    TASK_SEND_EVENT, /* action without a result: done when created */
    TASK_PUBLISH,    /* likewise */
    TASK_EVENT,      /* an external event wait; no action, no sequence number */
    TASK_WHEN_ALL,
    TASK_WHEN_ANY,
    TASK_RETRY,         /* an activity or sub-orchestration with a retry policy */
    TASK_EVENT_TIMEOUT, /* event wait raced against a timer */
    TASK_ENTITY_SIGNAL, /* entities (entity_tasks.c): one-way, done when created */
    TASK_ENTITY_CALL,   /* awaits EntityOperationCompleted / Failed */
    TASK_ENTITY_LOCK,   /* awaits EntityLockGranted */
    TASK_ENTITY_UNLOCK, /* one-way */
} task_kind;

typedef enum task_state { TASK_PENDING, TASK_OK, TASK_FAILED } task_state;

/* What an activity or sub-orchestration call asks for; copied into the instance arena. */
typedef struct call_spec {
    bool is_sub_orch;
    const char *name;
    const char *task_queue;  /* activity */
    const char *instance_id; /* sub-orch: explicit ID, or NULL for "<parent>:<exec>:<task>" */
    const char *version;     /* sub-orch */
    const uint8_t *input;
    size_t input_len;
    bool has_input;
} call_spec;

/* A composite that waits on a task. */
typedef struct task_link {
    struct dt_task *parent;
    struct task_link *next;
} task_link;

struct dt_task {
    task_kind kind;
    task_state state;
    int32_t id;            /* action sequence number; -1 for tasks that are not actions */
    const uint8_t *output; /* NUL-terminated copy, or NULL */
    size_t output_len;
    const dt_failure *failure;
    task_link *parents;
    union {
        struct {                    /* ACTIVITY, SUB_ORCH, SEND_EVENT, PUBLISH */
            const char *name;       /* activity/orchestrator/event name, or publish subject */
            const char *target;     /* sub-orch instance ID, or send-event instance ID */
            const char *task_queue; /* activity */
            const char *version;    /* sub-orch */
            const uint8_t *input;
            size_t input_len;
            bool has_input;
            size_t n_headers; /* publish */
            const char **header_names;
            const char **header_values;
        } action;
        struct {
            int64_t fire_at_ms;
        } timer;
        struct {
            const char *name;
            struct dt_task *next_waiter; /* FIFO of waits on the instance */
            bool withdrawn;
        } event;
        struct {
            struct dt_task **children;
            size_t n;
            size_t remaining;
            int winner;
        } group;
        struct {
            call_spec call;
            dt_retry_policy policy;
            int attempt;              /* attempts started so far */
            int64_t first_attempt_ms; /* orchestration time of attempt 1 */
            struct dt_task *current;  /* the running attempt or the backoff timer */
        } retry;
        struct {
            struct dt_task *wait;
            struct dt_task *timer;
        } race;
        struct {                    /* ENTITY_* */
            const char *target;     /* entity ID (signal, call, unlock) */
            const char *operation;  /* signal, call */
            const char *request_id; /* call: request ID; lock, unlock: critical section ID */
            const uint8_t *input;
            size_t input_len;
            bool has_input;
            int64_t at_ms;         /* signal: scheduled time (0: now) */
            const char **lock_set; /* lock: sorted, without repeats */
            size_t n_lock;
        } entity;
    } u;
};

/* An event that arrived but no wait consumed yet. */
typedef struct buffered_event {
    const char *name;
    const uint8_t *data;
    size_t len;
    bool has_data;
    struct buffered_event *next;
} buffered_event;

/* An event held back while the instance is suspended (a deep copy in the arena). */
typedef struct held_event {
    Dtpb__HistoryEvent *ev;
    struct held_event *next;
} held_event;

typedef enum inst_end {
    END_NONE,
    END_RETURNED,
    END_FAILED,
    END_CONTINUED,
    END_TERMINATED,
} inst_end;

struct dt_orch_ctx {
    dt__engine *engine;
    dt__arena *arena;
    dt__coro *coro;
    char *instance_id;
    const char *execution_id;
    const char *name;
    const char *version;
    const uint8_t *input;
    size_t input_len;
    bool has_input;
    dt_orchestrator_fn fn;
    void *fn_data;

    bool started;   /* ExecutionStarted applied */
    bool replaying; /* applying events that history already had */
    bool suspended;
    bool in_coro; /* the orchestrator function is running (guards API misuse) */
    int64_t now_ms;
    int64_t last_ts; /* latest event timestamp in history (ms): the next episode's time is later */
    uint64_t guid_counter;
    size_t history_len; /* events of the stored history this state reflects */

    dt_task **tasks; /* by action id; dt_alloc'd, freed by an arena hook */
    size_t tasks_cap;
    int32_t next_id;      /* next action id the code will take */
    int32_t confirmed_id; /* actions below this are recorded in history */

    dt_task *awaiting;
    dt_task *waiters_head, *waiters_tail; /* FIFO of event waits */
    buffered_event *buffered_head, *buffered_tail;
    held_event *held_head, *held_tail;

    inst_end end;
    const uint8_t *end_data; /* output / reason / new input */
    size_t end_len;
    bool has_end_data;
    const dt_failure *end_failure;
    bool keep_events;
    const uint8_t *custom_status;
    size_t custom_status_len;
    bool has_custom_status;
    /* The critical section (entity_tasks.c): its ID while one is open (locks requested and not
     * released), the entities it locks, and whether the lock was granted. */
    const char *cs_id;
    const char **cs_set;
    size_t cs_n;
    bool cs_granted;
    bool oom;             /* an allocation failed: the episode is abandoned */
    bool discard_actions; /* ended by terminate or non-determinism: take no new action */

    /* LRU cache links (engine.c). */
    struct dt_orch_ctx *lru_prev, *lru_next, *hash_next;
};

typedef struct dt_orch_ctx dt__instance;

/* ---- engine.c ---- */
const dt__engine_config *dt__engine_cfg(const dt__engine *e);
/* A retired coroutine to restart, or NULL (the caller owns it). */
dt__coro *dt__engine_take_coro(dt__engine *e);
/* Evicts up to n least recently used cached instances; returns how many. */
size_t dt__engine_shed(dt__engine *e, size_t n);

/* ---- entity_tasks.c ---- */
/* The history event recording an entity action (`ev` has its id and time). False: no memory. */
bool dt__emit_entity_action(dt__arena *a, Dtpb__HistoryEvent *ev, const dt_task *t);
/* Applies an entity answer (completed, failed, lock granted); false for other events. */
bool dt__entity_apply_result(dt__instance *in, const Dtpb__HistoryEvent *ev);
/* The unlocks of an open critical section when the execution ends (not actions: event id -1),
 * into *out (arena memory); *n_out 0 when none is open. False: no memory. */
bool dt__entity_end_unlocks(dt__instance *in, dt__arena *a, int64_t now, Dtpb__HistoryEvent ***out,
                            size_t *n_out);

/* ---- tasks.c ---- */
/* A new task of `kind` with the next action number (user code: parks on out of memory). */
dt_task *dt__task_new_action(dt__instance *in, task_kind kind);
/* Aborts the process when called outside the orchestrator function (see tasks.c). */
void dt__task_check_in_code(dt__instance *in, const char *what);
/* Completes `t` (OK with output, or FAILED with failure) and propagates to composites. */
void dt__task_complete(dt__instance *in, dt_task *t, const uint8_t *out, size_t len, bool has_out,
                       const dt_failure *failure);
/* The action task with sequence number id, or NULL. */
dt_task *dt__task_by_id(dt__instance *in, int32_t id);
/* Records an event raised on the instance: completes the oldest wait for it or buffers it. */
void dt__instance_deliver_event(dt__instance *in, const char *name, const uint8_t *data, size_t len,
                                bool has_data);
/* Buffers an event without offering it to any wait. */
void dt__instance_buffer_event(dt__instance *in, const char *name, const uint8_t *data, size_t len,
                               bool has_data);
/* Allocation wrappers that flag the instance out of memory instead of returning NULL to user
 * code: they return a pointer to a static scratch block, and the episode is abandoned. */
void *dt__inst_alloc(dt__instance *in, size_t size);
const uint8_t *dt__inst_copy(dt__instance *in, const void *p, size_t len);
const char *dt__inst_strdup(dt__instance *in, const char *s);

/* ---- failure.c ---- */
/* Deep-copies protobuf failure details into a dt_failure in the instance arena. */
const dt_failure *dt__failure_from_pb(dt__instance *in, const Dtpb__TaskFailureDetails *pb);
/* Deep-copies a dt_failure into protobuf details in `arena`; NULL on out of memory. */
Dtpb__TaskFailureDetails *dt__failure_to_pb(dt__arena *arena, const dt_failure *f);
/* A new failure in the instance arena; message formatted. */
const dt_failure *dt__failure_make(dt__instance *in, const char *type, const dt_failure *inner,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A non-retriable failure (a retry policy gives up at once): for what no retry can change, like
 * a missing orchestrator or a version no worker accepts. */
const dt_failure *dt__failure_make_final(dt__instance *in, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- context.c ---- */
/* Resumes the orchestrator while the task it awaits is done. */
void dt__instance_drive(dt__instance *in);
/* Starts the orchestrator function on its coroutine (after ExecutionStarted). */
dt_status dt__instance_start(dt__instance *in);
/* Ends the execution from outside the code (terminate, non-determinism, unknown orchestrator). */
void dt__instance_end(dt__instance *in, inst_end end, const uint8_t *data, size_t len,
                      bool has_data, const dt_failure *failure);

/* ---- replay.c ---- */
/* Applies one history event to the instance. */
void dt__instance_apply(dt__instance *in, const Dtpb__HistoryEvent *ev);

/* ---- result.c ---- */
/* Fills `out` from the instance after the episode's events were applied at time now_ms. */
dt_status dt__episode_build(dt__instance *inst, const dt__episode_input *in,
                            dt__episode_result *out, int64_t now_ms);
/* The deterministic ID of the execution that continue-as-new starts. */
void dt__instance_next_execution_id(dt__instance *in, char out[37]);

/* ---- emit.c ---- */
/* Builds the history event for action task `t` at time now_ms, in `arena`. NULL on OOM. */
Dtpb__HistoryEvent *dt__emit_action(dt__arena *arena, const dt_task *t, int64_t now_ms);
/* ASCII case-insensitive string equality. */
bool dt__name_eq(const char *a, const char *b);

#endif
