/*
 * svc_convert.c: the client API's types as the protocol's messages (OrchestrationState,
 * TaskFailureDetails, Timestamp, StringValue). Built in an arena, pointing into the client API's
 * result objects, which outlive the packing of the reply.
 *
 * Payloads are strings on the protocol's side (StringValue): the runtime's payloads are UTF-8
 * JSON by convention and NUL-terminated by the client API; one with a NUL byte inside is cut
 * there.
 */
#include <string.h>

#include "sidecar_int.h"

void dt__svc_ts(int64_t ms, Dtproto__Timestamp *out)
{
    dtproto__timestamp__init(out);
    int64_t s = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        s -= 1;
        rem += 1000;
    }
    out->seconds = s;
    out->nanos = (int32_t)(rem * 1000000);
}

int64_t dt__svc_ts_ms(const Dtproto__Timestamp *ts)
{
    if (ts == NULL) {
        return 0;
    }
    return ts->seconds * 1000 + ts->nanos / 1000000;
}

static Dtproto__Timestamp *ts_new(dt__arena *a, int64_t ms)
{
    if (ms == 0) {
        return NULL;
    }
    Dtproto__Timestamp *t = dt__arena_alloc(a, sizeof *t);
    if (t != NULL) {
        dt__svc_ts(ms, t);
    }
    return t;
}

Dtproto__StringValue *dt__svc_sv(dt__arena *a, const void *text)
{
    if (text == NULL) {
        return NULL;
    }
    Dtproto__StringValue *sv = dt__arena_alloc(a, sizeof *sv);
    if (sv != NULL) {
        dtproto__string_value__init(sv);
        sv->value = (char *)text;
    }
    return sv;
}

Dtproto__TaskFailureDetails *dt__svc_failure(dt__arena *a, const dt_failure *f)
{
    if (f == NULL) {
        return NULL;
    }
    Dtproto__TaskFailureDetails *d = dt__arena_alloc(a, sizeof *d);
    if (d == NULL) {
        return NULL;
    }
    dtproto__task_failure_details__init(d);
    d->error_type = (char *)(f->type != NULL ? f->type : "");
    d->error_message = (char *)(f->message != NULL ? f->message : "");
    d->stack_trace = dt__svc_sv(a, f->stack_trace);
    d->inner_failure = dt__svc_failure(a, f->inner);
    d->is_non_retriable = f->non_retriable;
    return d;
}

static bool state_tags(dt__arena *a, const dt_client_instance *inst, Dtproto__OrchestrationState *s)
{
    if (inst->ntags == 0) {
        return true;
    }
    s->tags = dt__arena_calloc(a, inst->ntags, sizeof *s->tags);
    Dtproto__OrchestrationState__TagsEntry *e = dt__arena_calloc(a, inst->ntags, sizeof *e);
    if (s->tags == NULL || e == NULL) {
        return false;
    }
    for (size_t i = 0; i < inst->ntags; i++) {
        dtproto__orchestration_state__tags_entry__init(&e[i]);
        e[i].key = (char *)inst->tags[i].key;
        e[i].value = (char *)inst->tags[i].value;
        s->tags[i] = &e[i];
    }
    s->n_tags = inst->ntags;
    return true;
}

Dtproto__OrchestrationState *dt__svc_state(dt__arena *a, const dt_client_instance *inst,
                                           bool payloads)
{
    Dtproto__OrchestrationState *s = dt__arena_alloc(a, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    dtproto__orchestration_state__init(s);
    s->instance_id = (char *)inst->instance_id;
    s->name = (char *)(inst->name != NULL ? inst->name : "");
    s->version = dt__svc_sv(a, inst->version);
    s->orchestration_status = (Dtproto__OrchestrationStatus)inst->runtime_status;
    s->created_timestamp = ts_new(a, inst->created_at_ms);
    s->last_updated_timestamp = ts_new(a, inst->last_updated_at_ms);
    if (dt_client_runtime_status_finished(inst->runtime_status)) {
        s->completed_timestamp = ts_new(a, inst->last_updated_at_ms);
    }
    if (payloads) {
        s->input = dt__svc_sv(a, inst->input);
        s->output = dt__svc_sv(a, inst->output);
        s->custom_status = dt__svc_sv(a, inst->custom_status);
    }
    s->failure_details = dt__svc_failure(a, inst->failure);
    s->execution_id = dt__svc_sv(a, inst->execution_id);
    s->parent_instance_id = dt__svc_sv(a, inst->parent_instance_id);
    if (!state_tags(a, inst, s)) {
        return NULL;
    }
    return s;
}

dt_client_runtime_status dt__svc_status_from_pb(Dtproto__OrchestrationStatus s)
{
    return (dt_client_runtime_status)s;
}
