/*
 * harness.h: an in-process "world" that drives the replay engine without a broker, for unit tests.
 *
 * It plays the part of the worker runtime with fakes: an in-memory history store (events kept
 * encoded, so every episode decodes its history like a real worker does), a FIFO of messages, a
 * virtual clock with durable timers, fake activities (plain C functions run when scheduled, or
 * held for the test to complete by hand), sub-orchestrations, continue-as-new and events between
 * instances. Everything is deterministic, so two worlds run with different engine cache sizes
 * must produce byte-identical histories: that is how the tests prove cache-hit == replay.
 */
#ifndef DT_TEST_ENGINE_HARNESS_H
#define DT_TEST_ENGINE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_history.pb-c.h"
#include "durabletask/orchestration.h"

typedef struct hw_world hw_world;

/* What a fake activity returns. Strings are malloc'd by the activity (or NULL); the world frees
 * them. */
typedef struct hw_act_result {
    char *output;
    bool failed;
    char *error_type;
    char *error_message;
    bool non_retriable;
} hw_act_result;

typedef void (*hw_activity_fn)(hw_world *w, const char *input, hw_act_result *r, void *ud);

/* A world whose engine caches up to cache_capacity instances (0 = replay every episode). */
hw_world *hw_create(size_t cache_capacity);
void hw_destroy(hw_world *w);

void hw_orchestrator(hw_world *w, const char *name, dt_orchestrator_fn fn, void *ud);
void hw_activity(hw_world *w, const char *name, hw_activity_fn fn, void *ud);
/* Activities named `name` are held when scheduled until hw_complete/hw_fail_held. */
void hw_hold_activity(hw_world *w, const char *name);

/* Client operations: each enqueues one message (nothing runs until hw_run*). */
void hw_start(hw_world *w, const char *name, const char *instance_id, const char *input);
void hw_raise(hw_world *w, const char *instance_id, const char *event, const char *data);
void hw_terminate(hw_world *w, const char *instance_id, const char *reason);
void hw_suspend(hw_world *w, const char *instance_id);
void hw_resume(hw_world *w, const char *instance_id);
/* Enqueues a raw event (borrowed; packed at once). */
void hw_send_raw(hw_world *w, const char *instance_id, const Dtpb__HistoryEvent *ev);

/* Processes messages until none is left; timers do not fire. Returns episodes run. */
int hw_run_idle(hw_world *w);
/* Like hw_run_idle, then keeps firing the earliest timer (advancing the clock) until nothing is
 * left to do. */
int hw_run(hw_world *w);
/* Advances the clock by ms, fires due timers and runs idle. */
void hw_advance(hw_world *w, int64_t ms);
int64_t hw_now(hw_world *w);

/* Held activities: count, input of the i-th held (in scheduling order), and completing it. */
size_t hw_held(hw_world *w, const char *name);
const char *hw_held_input(hw_world *w, const char *name, size_t i);
void hw_complete_held(hw_world *w, const char *name, size_t i, const char *output);
void hw_fail_held(hw_world *w, const char *name, size_t i, const char *type, const char *message);

/* Instance state (strings live until the next run or hw_destroy). */
bool hw_exists(hw_world *w, const char *instance_id);
Dtpb__OrchestrationStatus hw_status(hw_world *w, const char *instance_id);
bool hw_is_suspended(hw_world *w, const char *instance_id);
const char *hw_output(hw_world *w, const char *instance_id); /* NULL when none */
const char *hw_custom_status(hw_world *w, const char *instance_id);
/* Failure of a failed instance, decoded; NULL when none. Owned by the world. */
const Dtpb__TaskFailureDetails *hw_failure(hw_world *w, const char *instance_id);
size_t hw_history_len(hw_world *w, const char *instance_id);
/* The i-th event of the current execution's history, decoded (owned by the world until the
 * next call of this function). */
const Dtpb__HistoryEvent *hw_history_event(hw_world *w, const char *instance_id, size_t i);
int hw_executions(hw_world *w, const char *instance_id); /* 1 + continue-as-new count */
int hw_activity_calls(hw_world *w, const char *name);
/* Messages published with dt_publish, in order: "subject|data". */
size_t hw_published(hw_world *w);
const char *hw_published_at(hw_world *w, size_t i);
/* Log lines emitted through dt_log (replay-silent), in order. */
size_t hw_logs(hw_world *w);
const char *hw_log_at(hw_world *w, size_t i);
size_t hw_cached(hw_world *w);
/* Episodes that ran without loading the stored history, because the cache reflected it. */
int hw_elided(hw_world *w);
/* When on, an episode that fails with DT_ENOMEM puts its messages back in the queue to run again,
 * as a worker naks a batch it could not process (off: the harness aborts). */
void hw_retry_enomem(hw_world *w, bool on);
/* Episodes that failed with DT_ENOMEM and were queued again. */
int hw_enomem_episodes(hw_world *w);

/* True when every instance of both worlds has byte-identical history and status. On a
 * difference, writes a description into why. */
bool hw_same(hw_world *a, hw_world *b, char *why, size_t why_len);

#endif
