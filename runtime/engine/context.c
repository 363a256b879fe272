/*
 * The orchestration context: what user code asks of its instance (input, time, IDs, logging,
 * memory, output, failure, continue-as-new) and the switches between the engine and the
 * orchestrator's coroutine (start, await, drive, end).
 *
 * Control flow: the engine applies one history event at a time; after each, dt__instance_drive()
 * resumes the coroutine if the task it awaits is done. The coroutine runs until it awaits an
 * unfinished task (yield) or the function returns. An execution that ends from inside the code
 * (dt_orch_fail, dt_continue_as_new, an uncaught task failure) parks its coroutine for good; the
 * engine never resumes it and frees it with the instance, which is why orchestration memory lives
 * in the arena.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance_int.h"

const void *dt_orch_input(dt_orch_ctx *in, size_t *len)
{
    if (len != NULL) {
        *len = in->input_len;
    }
    return in->has_input ? in->input : NULL;
}

const char *dt_orch_instance_id(dt_orch_ctx *in)
{
    return in->instance_id;
}

const char *dt_orch_execution_id(dt_orch_ctx *in)
{
    return in->execution_id;
}

const char *dt_orch_name(dt_orch_ctx *in)
{
    return in->name;
}

const char *dt_orch_version(dt_orch_ctx *in)
{
    return in->version;
}

bool dt_orch_is_replaying(dt_orch_ctx *in)
{
    return in->replaying;
}

int64_t dt_now(dt_orch_ctx *in)
{
    return in->now_ms;
}

void *dt_orch_alloc(dt_orch_ctx *in, size_t size)
{
    return dt__arena_alloc(in->arena, size);
}

/* Counter-based: the n-th GUID of an execution is the same on every replay. */
static void format_guid(uint64_t seed, uint64_t c, char out[37])
{
    uint64_t hi = dt__mix64(seed ^ dt__mix64(c)), lo = dt__mix64(hi ^ c ^ 0x5851f42d4c957f2dULL);
    dt__format_uuid(hi, lo, 5, out);
}

void dt_new_guid(dt_orch_ctx *in, char out[37])
{
    uint64_t seed = dt__fnv1a64(dt__fnv1a64(DT__FNV64_OFFSET, in->instance_id), in->execution_id);
    format_guid(seed, in->guid_counter++, out);
}

void dt__instance_next_execution_id(dt__instance *in, char out[37])
{
    /* Seeded apart from dt_new_guid (the "can" salt) so the two streams never collide. */
    uint64_t seed = dt__fnv1a64(dt__fnv1a64(dt__fnv1a64(DT__FNV64_OFFSET, "can"), in->instance_id),
                                in->execution_id);
    format_guid(seed, UINT64_MAX, out);
    dt__uuid_compact(out); /* the form of execution IDs */
}

void dt_log(dt_orch_ctx *in, dt_log_level level, const char *fmt, ...)
{
    const dt__engine_config *cfg = dt__engine_cfg(in->engine);
    if (in->replaying || cfg->log == NULL) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg->log(in->instance_id, level, msg, cfg->log_ctx);
}

void dt_orch_set_output(dt_orch_ctx *in, const void *data, size_t len)
{
    in->has_end_data = data != NULL;
    in->end_data = data != NULL ? dt__inst_copy(in, data, len) : NULL;
    in->end_len = data != NULL ? len : 0;
}

void dt_set_custom_status(dt_orch_ctx *in, const void *data, size_t len)
{
    in->has_custom_status = data != NULL;
    in->custom_status = data != NULL ? dt__inst_copy(in, data, len) : NULL;
    in->custom_status_len = data != NULL ? len : 0;
}

/* Parks the coroutine for good: the execution has ended from inside the code. */
_Noreturn static void park(dt__instance *in)
{
    for (;;) {
        dt__coro_yield(in->coro);
    }
}

void dt__instance_end(dt__instance *in, inst_end end, const uint8_t *data, size_t len,
                      bool has_data, const dt_failure *failure)
{
    if (in->end != END_NONE) {
        return;
    }
    in->end = end;
    in->end_data = has_data ? data : NULL;
    in->end_len = has_data ? len : 0;
    in->has_end_data = has_data;
    in->end_failure = failure;
}

_Noreturn void dt_orch_fail(dt_orch_ctx *in, const char *type, const char *message,
                            const dt_failure *inner)
{
    const dt_failure *f = dt__failure_make(in, type != NULL ? type : "dt.Failed", inner, "%s",
                                           message != NULL ? message : "");
    dt__instance_end(in, END_FAILED, NULL, 0, false, f);
    park(in);
}

_Noreturn void dt_continue_as_new(dt_orch_ctx *in, const void *input, size_t len, bool keep_events)
{
    const uint8_t *copy = input != NULL ? dt__inst_copy(in, input, len) : NULL;
    in->keep_events = keep_events;
    dt__instance_end(in, END_CONTINUED, copy, input != NULL ? len : 0, input != NULL, NULL);
    park(in);
}

/* Waits until `t` is done; the engine resumes the coroutine only then. */
static void wait_for(dt__instance *in, dt_task *t)
{
    if (!in->in_coro) {
        fprintf(stderr, "durabletask: dt_await called outside the orchestrator function\n");
        abort();
    }
    while (t->state == TASK_PENDING) {
        in->awaiting = t;
        dt__coro_yield(in->coro);
    }
    in->awaiting = NULL;
}

static const char *task_label(const dt_task *t)
{
    switch (t->kind) {
    case TASK_ACTIVITY:
        return "activity";
    case TASK_SUB_ORCH:
        return "sub-orchestration";
    case TASK_RETRY:
        return t->u.retry.call.is_sub_orch ? "sub-orchestration" : "activity";
    case TASK_TIMER:
        return "timer";
    case TASK_EVENT:
    case TASK_EVENT_TIMEOUT:
        return "event wait";
    default:
        return "task";
    }
}

static const char *task_name(const dt_task *t)
{
    switch (t->kind) {
    case TASK_ACTIVITY:
    case TASK_SUB_ORCH:
        return t->u.action.name;
    case TASK_RETRY:
        return t->u.retry.call.name;
    case TASK_EVENT:
        return t->u.event.name;
    case TASK_EVENT_TIMEOUT:
        return t->u.race.wait->u.event.name;
    default:
        return "";
    }
}

const void *dt_await(dt_orch_ctx *in, dt_task *t, size_t *len)
{
    wait_for(in, t);
    if (t->state == TASK_FAILED) {
        bool sub =
            t->kind == TASK_SUB_ORCH || (t->kind == TASK_RETRY && t->u.retry.call.is_sub_orch);
        const dt_failure *f =
            dt__failure_make(in, sub ? DT_FAILURE_SUB_ORCH_FAILED : DT_FAILURE_TASK_FAILED,
                             t->failure, "%s '%s' failed: %s", task_label(t), task_name(t),
                             t->failure != NULL ? t->failure->message : "");
        dt__instance_end(in, END_FAILED, NULL, 0, false, f);
        park(in);
    }
    return dt_task_output(t, len);
}

dt_status dt_try_await(dt_orch_ctx *in, dt_task *t)
{
    wait_for(in, t);
    if (t->state == TASK_OK) {
        return DT_OK;
    }
    if (t->failure != NULL && strcmp(t->failure->type, DT_FAILURE_TIMEOUT) == 0 &&
        t->kind == TASK_EVENT_TIMEOUT) {
        return DT_ETIMEOUT;
    }
    return DT_ETASKFAILED;
}

/* ---- the engine side of the switch ---- */

static void trampoline(void *arg)
{
    dt__instance *in = arg;
    in->fn(in, in->fn_data);
    if (in->end == END_NONE) {
        dt__instance_end(in, END_RETURNED, in->end_data, in->end_len, in->has_end_data, NULL);
    }
}

static void resume(dt__instance *in)
{
    in->in_coro = true;
    dt__coro_resume(in->coro);
    in->in_coro = false;
}

/* A coroutine for `in`: a retired one restarted, else a new one. */
static dt_status get_coro(dt__instance *in)
{
    dt__coro *spare = dt__engine_take_coro(in->engine);
    if (spare != NULL && dt__coro_restart(spare, trampoline, in) == DT_OK) {
        in->coro = spare;
        return DT_OK;
    }
    dt__coro_destroy(spare);
    return dt__coro_create(trampoline, in, dt__engine_cfg(in->engine)->stack_size, &in->coro);
}

dt_status dt__instance_start(dt__instance *in)
{
    dt_status st = get_coro(in);
    if (st == DT_ENOMEM && dt__engine_shed(in->engine, 64) > 0) {
        /* Out of stacks (memory, or the kernel's map count): suspended instances can be
         * replayed later; a new one cannot run without a stack. */
        st = get_coro(in);
    }
    if (st != DT_OK) {
        return st;
    }
    resume(in);
    return DT_OK;
}

void dt__instance_drive(dt__instance *in)
{
    while (in->coro != NULL && in->end == END_NONE && !in->oom && in->awaiting != NULL &&
           in->awaiting->state != TASK_PENDING) {
        resume(in);
    }
}
