/*
 * engine_int.h: the replay engine (internal). Pure logic: no I/O, no clock, no broker.
 *
 * One call runs one episode of one instance: the history recorded so far (`past`), the events
 * that arrived since (`new_events`) and the episode's timestamp go in; the events to append to
 * history (OrchestratorStarted, the new events, one event per new action, and ExecutionCompleted
 * when the execution ended) and the instance's resulting status come out. The caller commits the
 * appended events atomically and turns the action events into messages (activity work items,
 * timers, sub-orchestration starts, events, publishes).
 *
 * Suspended instances stay in a bounded LRU cache with their coroutine, so an episode for a
 * cached instance costs O(new events). On a miss (or cache_capacity 0) the whole history is
 * replayed on a fresh coroutine. Both paths produce identical output; tests prove it.
 *
 * Threads: an engine is confined to one thread at a time (caller serializes). Each partition loop
 * owns one engine.
 */
#ifndef DT_ENGINE_INT_H
#define DT_ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"
#include "durabletask/orchestration.h"

typedef struct dt__engine dt__engine;

/*
 * Finds the orchestrator registered under `name` for `version` (may be NULL). Returns DT_OK and
 * sets *fn / *user_data when found; otherwise DT_EUNKNOWNNAME (fails the instance with
 * dt.UnknownOrchestrator) or DT_EVERSION (dt.VersionMismatch), with the reason written to why.
 * Called on the engine's thread.
 */
typedef dt_status (*dt__engine_lookup_fn)(const char *name, const char *version, void *ctx,
                                          dt_orchestrator_fn *fn, void **user_data, char *why,
                                          size_t why_len);

/* Receives orchestration log lines (already formatted; not called while replaying). */
typedef void (*dt__engine_log_fn)(const char *instance_id, dt_log_level level, const char *msg,
                                  void *ctx);

typedef struct dt__engine_config {
    size_t cache_capacity; /* suspended instances kept in memory; 0 disables the cache */
    size_t stack_size;     /* coroutine stack bytes; 0 = default (256 KiB, lazily committed) */
    size_t
        max_history_events; /* an execution whose history would grow past this fails; 0 = 100,000 */
    /* An execution whose output, continue-as-new input or custom status is longer fails with
     * dt.PayloadTooLarge (they travel in messages: a parent's result, the next start, the status
     * record); 0 = no bound. */
    size_t max_payload_bytes;
    dt__engine_lookup_fn lookup;
    void *lookup_ctx;
    dt__engine_log_fn log; /* NULL = no logging */
    void *log_ctx;
} dt__engine_config;

/* `cfg` is copied. On DT_OK *out owns the engine; free it with dt__engine_destroy. */
dt_status dt__engine_create(const dt__engine_config *cfg, dt__engine **out);
/* Frees the engine and every cached instance. Accepts NULL. */
void dt__engine_destroy(dt__engine *e);

typedef struct dt__episode_input {
    const char *instance_id;         /* borrowed */
    Dtpb__HistoryEvent *const *past; /* borrowed: the execution's history, in order */
    size_t n_past;
    Dtpb__HistoryEvent *const *new_events; /* borrowed: arrived since, in arrival order */
    size_t n_new;
    int64_t now_ms; /* timestamp of this episode (OrchestratorStarted) */
} dt__episode_input;

typedef struct dt__episode_result {
    /*
     * Events to append to history, in order. Each is either one of the caller's new_events (the
     * same pointer: borrowed, so keep the input alive while using the result) or an event that
     * lives in `arena`.
     */
    Dtpb__HistoryEvent **appended;
    size_t n_appended;
    /* RUNNING (also while suspended: see `suspended`), COMPLETED, FAILED, TERMINATED or
     * CONTINUED_AS_NEW. */
    Dtpb__OrchestrationStatus status;
    bool suspended;
    /* Output of a completed execution, the reason of a terminated one, or the new input of a
     * continued-as-new one; NULL when none. */
    const uint8_t *output;
    size_t output_len;
    bool has_output;
    Dtpb__TaskFailureDetails *failure; /* FAILED only */
    const uint8_t *custom_status;      /* NULL when not set */
    size_t custom_status_len;
    bool has_custom_status;
    /* CONTINUED_AS_NEW only: the new execution's deterministic ID and the events to carry over
     * (EventRaised events, in arrival order), to be appended after its ExecutionStarted. */
    const char *next_execution_id;
    Dtpb__HistoryEvent **carryover;
    size_t n_carryover;
    /* Owns everything above that the caller did not lend. Destroy with dt__episode_result_free. */
    dt__arena *arena;
} dt__episode_result;

/*
 * Runs one episode. Returns DT_OK with *out filled (free it with dt__episode_result_free), even
 * when the instance failed (a failed instance is a result, not an error). Returns DT_ESTATE when
 * the history already holds ExecutionCompleted, DT_EINVAL when the history does not start with
 * ExecutionStarted (and no new event is one), DT_ENOMEM when memory runs out (the instance is then
 * evicted, nothing else changes).
 *
 * After DT_OK the engine assumes the caller appends exactly out->appended to history; if that
 * commit fails, call dt__engine_evict() so the next episode replays from what was stored.
 */
dt_status dt__engine_run_episode(dt__engine *e, const dt__episode_input *in,
                                 dt__episode_result *out);

void dt__episode_result_free(dt__episode_result *r);

/* True when the cache holds `instance_id` suspended at exactly `history_len` events of execution
 * `execution_id` (borrowed strings): the next episode may then pass past = NULL. O(1). */
bool dt__engine_is_current(dt__engine *e, const char *instance_id, const char *execution_id,
                           size_t history_len);

/* Drops the cached state of an instance (no-op when not cached). */
void dt__engine_evict(dt__engine *e, const char *instance_id);
/* Number of instances in the cache. */
size_t dt__engine_cached(const dt__engine *e);

#endif
