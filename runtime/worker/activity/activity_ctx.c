/*
 * The activity context (durabletask/activity.h): what an activity function reads (input, name,
 * identity, delivery count) and how it reports its outcome. The context lives on the stack of
 * the thread running the activity; the outcome it stores (output, failure texts) is dt_alloc'd
 * and freed by dt__act_ctx_clear once the result is packed. Confined to that thread, except the
 * heartbeat, which goes through the slot's mutex like the ticker.
 */
#include <string.h>

#include "activity_int.h"
#include "common_int.h"
#include "trace_int.h"

#define OOM_TYPE    "dt.OutOfMemory"
#define FAILED_TYPE "dt.ActivityFailed"
#define OOM_MESSAGE "out of memory copying the activity's output or failure"

dt_status dt__act_ctx_init(dt_activity_ctx *ctx, dt__act_slot *s, size_t held_ix,
                           const Dtpb__ActivityRequest *req, int delivery, int64_t hb_min_ms,
                           dt__arena *a)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->slot = s;
    ctx->held_ix = held_ix;
    ctx->name = req->name;
    ctx->instance_id = req->instance_id;
    ctx->task_id = req->task_id;
    ctx->delivery = delivery;
    ctx->hb_min_ms = hb_min_ms;
    ctx->req = req;
    if (req->input != NULL) {
        /* protobuf-c does not NUL-terminate bytes fields; activity.h promises it. */
        ctx->input = dt__arena_memdup(a, req->input->value.data, req->input->value.len);
        ctx->input_len = req->input->value.len;
        if (ctx->input == NULL) {
            return DT_ENOMEM;
        }
    }
    ctx->span = dt__trace_activity_begin(s, held_ix, req);
    if (ctx->span != NULL) {
        dt__trace_format(dt__span_ctx(ctx->span), ctx->traceparent);
    }
    return DT_OK;
}

/* Forgets the outcome stored so far (the activity may set it more than once). */
static void clear_outcome(dt_activity_ctx *ctx)
{
    dt_free(ctx->output);
    dt_free(ctx->fail_type);
    dt_free(ctx->fail_message);
    dt_free(ctx->fail_details);
    ctx->output = ctx->fail_type = ctx->fail_message = ctx->fail_details = NULL;
    ctx->has_output = ctx->failed = false;
}

void dt__act_ctx_clear(dt_activity_ctx *ctx)
{
    dt__trace_activity_end(ctx); /* the run is over: its span ends with its outcome */
    clear_outcome(ctx);
}

void dt__act_ctx_outcome(const dt_activity_ctx *ctx, dt__act_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->traceparent = ctx->span != NULL ? ctx->traceparent : NULL;
    if (ctx->oom) {
        out->failed = true;
        out->type = OOM_TYPE;
        out->message = OOM_MESSAGE;
        return;
    }
    if (ctx->failed) {
        out->failed = true;
        out->type = ctx->fail_type;
        out->message = ctx->fail_message;
        out->details = ctx->fail_details;
        out->non_retriable = ctx->non_retriable;
        return;
    }
    out->has_output = ctx->has_output;
    out->output = ctx->output;
    out->output_len = ctx->output_len;
}

const void *dt_activity_input(dt_activity_ctx *ctx, size_t *len)
{
    if (len != NULL) {
        *len = ctx->input_len;
    }
    return ctx->input;
}

const char *dt_activity_name(dt_activity_ctx *ctx)
{
    return ctx->name;
}

const char *dt_activity_instance_id(dt_activity_ctx *ctx)
{
    return ctx->instance_id;
}

int32_t dt_activity_task_id(dt_activity_ctx *ctx)
{
    return ctx->task_id;
}

int dt_activity_delivery(dt_activity_ctx *ctx)
{
    return ctx->delivery;
}

void dt_activity_set_output(dt_activity_ctx *ctx, const void *data, size_t len)
{
    clear_outcome(ctx);
    ctx->oom = false;
    ctx->output = dt_memdup(len > 0 ? data : "", len);
    if (ctx->output == NULL) {
        ctx->oom = true;
        return;
    }
    ctx->output_len = len;
    ctx->has_output = true;
}

void dt_activity_fail(dt_activity_ctx *ctx, const char *type, const char *message,
                      bool non_retriable)
{
    dt_activity_fail_details(ctx, type, message, NULL, non_retriable);
}

void dt_activity_fail_details(dt_activity_ctx *ctx, const char *type, const char *message,
                              const char *details, bool non_retriable)
{
    clear_outcome(ctx);
    ctx->oom = false;
    ctx->fail_type = dt_strdup(type != NULL && type[0] != '\0' ? type : FAILED_TYPE);
    ctx->fail_message = dt_strdup(message != NULL ? message : "");
    if (details != NULL) {
        size_t n = strnlen(details, DT_ACTIVITY_DETAILS_MAX);
        ctx->fail_details = dt_memdup(details, n + 1);
        if (ctx->fail_details != NULL) {
            ctx->fail_details[n] = '\0';
        }
    }
    if (ctx->fail_type == NULL || ctx->fail_message == NULL ||
        (details != NULL && ctx->fail_details == NULL)) {
        clear_outcome(ctx);
        ctx->oom = true;
        return;
    }
    ctx->failed = true;
    ctx->non_retriable = non_retriable;
}

void dt_activity_heartbeat(dt_activity_ctx *ctx)
{
    int64_t now = dt__mono_ms();
    if (ctx->hb_last_ms != 0 && now - ctx->hb_last_ms < ctx->hb_min_ms) {
        return; /* rate limit: a heartbeat in a tight loop must not flood the server */
    }
    ctx->hb_last_ms = now;
    if (ctx->slot != NULL) { /* NULL: run in-process (local_act.c), no work item to keep alive */
        dt__act_slot_progress(ctx->slot, ctx->held_ix);
    }
}

const Dtpb__ActivityRequest *dt__act_ctx_request(const dt_activity_ctx *ctx)
{
    return ctx->req;
}

void dt__act_ctx_abandon(dt_activity_ctx *ctx)
{
    ctx->abandon = true;
}
