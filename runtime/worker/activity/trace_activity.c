/*
 * Tracing of activities (trace_int.h): a span "activity:<name>" per run, in the activity worker's
 * process, child of the span named by the work item's traceparent header (the orchestration
 * span). A work item without one, or with a malformed one, runs untraced.
 */
#include <stdio.h>
#include <string.h>

#include "protocol_int.h"
#include "trace_int.h"

/* The span of one run, child of the context in traceparent tp (NULL or malformed: none). */
static dt__span *start_span(dt__tracer *t, const char *tp, const char *ts,
                            const Dtpb__ActivityRequest *req, const char *queue)
{
    dt__trace_ctx parent, c;
    if (t == NULL || !dt__trace_parse(tp, &parent)) {
        return NULL;
    }
    dt__trace_new_child(&parent, &c);
    char name[DT_NAME_MAX + 16];
    snprintf(name, sizeof(name), "activity:%s", req->name);
    dt__span *sp = dt__span_start(t, name, DT__SPAN_SERVER, &c, parent.span_id, 0);
    dt__span_attr_str(sp, "durabletask.type", "activity");
    dt__span_attr_str(sp, "durabletask.task.name", req->name);
    dt__span_attr_str(sp, "durabletask.task.instance_id", req->instance_id);
    dt__span_attr_str(sp, "durabletask.task.execution_id", req->execution_id);
    dt__span_attr_int(sp, "durabletask.task.task_id", req->task_id);
    dt__span_attr_str(sp, "durabletask.task_queue", queue);
    dt__span_trace_state(sp, ts);
    if (sp != NULL) {
        dt__trace_set_current(&c);
    }
    return sp;
}

/* The request's body context (the in-process path, and a header lost on the way). */
static const char *body_parent(const Dtpb__ActivityRequest *req)
{
    return req->parent_trace_context != NULL ? req->parent_trace_context->trace_parent : NULL;
}

dt__span *dt__trace_activity_begin(dt__act_slot *s, size_t held_ix,
                                   const Dtpb__ActivityRequest *req)
{
    dt__tracer *t = s != NULL ? s->pool->cfg.tracer : NULL; /* no slot: run in-process */
    if (t == NULL) {
        return NULL;
    }
    char tp[DT__TRACEPARENT_BUF] = "", ts[DT__TRACESTATE_MAX + 1] = "";
    const char *v = NULL;
    /* nats.c parses headers lazily and the ticker touches held messages: under the slot's mu. */
    pthread_mutex_lock(&s->mu);
    dt_broker_msg *m = s->held[held_ix];
    if (m != NULL && dt_broker_msg_header(m, DT__HDR_TRACEPARENT, &v) == DT_OK) {
        snprintf(tp, sizeof(tp), "%s", v);
    }
    if (m != NULL && tp[0] != '\0' && dt_broker_msg_header(m, DT__HDR_TRACESTATE, &v) == DT_OK &&
        dt__tracestate_ok(v)) {
        snprintf(ts, sizeof(ts), "%s", v);
    }
    pthread_mutex_unlock(&s->mu);
    return start_span(t, tp[0] != '\0' ? tp : body_parent(req), ts[0] != '\0' ? ts : NULL, req,
                      s->queue->name);
}

dt__span *dt__trace_activity_local(dt__tracer *t, const Dtpb__ActivityRequest *req,
                                   const char *queue)
{
    dt__span *sp = start_span(t, body_parent(req), NULL, req, queue);
    dt__span_attr_int(sp, "durabletask.in_process", 1);
    return sp;
}

void dt__trace_activity_end(dt_activity_ctx *ctx)
{
    dt__span *sp = ctx->span;
    if (sp == NULL) {
        return;
    }
    ctx->span = NULL;
    dt__trace_set_current(NULL);
    bool abandoned = false; /* in-process runs (no slot): the caller checks */
    if (ctx->slot != NULL) {
        pthread_mutex_lock(&ctx->slot->mu);
        abandoned = ctx->slot->abandoned;
        pthread_mutex_unlock(&ctx->slot->mu);
    }
    if (abandoned) {
        dt__span_free(sp); /* the pool (and its tracer) may be gone */
        return;
    }
    dt__span_attr_int(sp, "durabletask.delivery", ctx->delivery);
    if (ctx->oom || ctx->failed) {
        dt__span_error(sp, ctx->oom ? "out of memory" : ctx->fail_message);
        dt__span_attr_str(sp, "durabletask.error_type", ctx->fail_type);
    }
    dt__span_end(sp, 0);
}
