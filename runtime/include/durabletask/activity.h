/*
 * durabletask/activity.h: writing activities, the functions that do the real work.
 *
 * An activity receives an input payload and produces an output payload or a failure. Workers run
 * activities at least once: a worker may crash after the work is done but before the result is
 * recorded, and the activity then runs again (on this or another worker). Make activities
 * idempotent, or make their side effects so.
 *
 * Threads: an activity runs on one of the worker's activity threads; several activities run at
 * the same time, so user data shared between them must be thread-safe. The context is valid only
 * during the call.
 */
#ifndef DURABLETASK_ACTIVITY_H
#define DURABLETASK_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/defs.h"
#include "durabletask/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_activity_ctx dt_activity_ctx;

/* An activity. `user_data` is the pointer given at registration (borrowed). It reports its result
 * with dt_activity_set_output or dt_activity_fail before returning; returning without either
 * completes it with no output. */
typedef void (*dt_activity_fn)(dt_activity_ctx *ctx, void *user_data);

/* The input (NULL when none; *len 0; len may be NULL). Followed by a NUL byte. Lives during the
 * call. */
DT_API const void *dt_activity_input(dt_activity_ctx *ctx, size_t *len);
DT_API const char *dt_activity_name(dt_activity_ctx *ctx);
DT_API const char *dt_activity_instance_id(dt_activity_ctx *ctx);
/* The task's sequence number in its orchestration: with the instance ID, an idempotency key. */
DT_API int32_t dt_activity_task_id(dt_activity_ctx *ctx);
/* 1 on the first delivery of this work item, more after a crash or timeout. */
DT_API int dt_activity_delivery(dt_activity_ctx *ctx);

/* Sets the output (copied; the last call wins). */
DT_API void dt_activity_set_output(dt_activity_ctx *ctx, const void *data, size_t len);
/* Fails the activity (strings copied). non_retriable stops the orchestration's retry policy. */
DT_API void dt_activity_fail(dt_activity_ctx *ctx, const char *type, const char *message,
                             bool non_retriable);
/* Longest `details` kept by dt_activity_fail_details; longer ones are cut there. */
#define DT_ACTIVITY_DETAILS_MAX 32768
/* dt_activity_fail with details (a stack trace, the response of a failed call; copied, may be
 * NULL): the orchestration reads them as dt_task_failure(task)->stack_trace. */
DT_API void dt_activity_fail_details(dt_activity_ctx *ctx, const char *type, const char *message,
                                     const char *details, bool non_retriable);
/* Tells the broker the activity is still working, so that a long activity is not redelivered.
 * The worker also does this on its own while the activity runs. */
DT_API void dt_activity_heartbeat(dt_activity_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
