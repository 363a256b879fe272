/*
 * One entity operation's context: what durabletask/entity.h gives an entity function. State
 * writes go to a working copy that the engine keeps only when the operation succeeds; the
 * messages it asks for are collected and sent only then.
 */
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "entity_int.h"
#include "protocol_int.h"

void dt__entity_ctx_init(dt_entity_ctx *c, dt__arena *a, const char *instance_id, const char *name,
                         const char *key, const char *operation, const char *source_id,
                         dt__blob input, dt__blob state, size_t max_state)
{
    *c = (dt_entity_ctx){.a = a,
                         .instance_id = instance_id,
                         .name = name,
                         .key = key,
                         .operation = operation,
                         .source_id = source_id,
                         .input = input,
                         .state = state,
                         .max_state = max_state};
}

Dtpb__TaskFailureDetails *dt__entity_failure(dt__arena *a, const char *type, const char *message,
                                             bool non_retriable)
{
    Dtpb__TaskFailureDetails *f = dt__arena_alloc(a, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    dtpb__task_failure_details__init(f);
    f->error_type = dt__arena_strdup(a, type != NULL ? type : "");
    f->error_message = dt__arena_strdup(a, message != NULL ? message : "");
    f->is_non_retriable = non_retriable;
    return f->error_type != NULL && f->error_message != NULL ? f : NULL;
}

const char *dt_entity_name(dt_entity_ctx *ctx)
{
    return ctx->name;
}

const char *dt_entity_key(dt_entity_ctx *ctx)
{
    return ctx->key;
}

const char *dt_entity_instance_id(dt_entity_ctx *ctx)
{
    return ctx->instance_id;
}

const char *dt_entity_operation(dt_entity_ctx *ctx)
{
    return ctx->operation;
}

const void *dt_entity_input(dt_entity_ctx *ctx, size_t *len)
{
    if (len != NULL) {
        *len = ctx->input.len;
    }
    return ctx->input.data;
}

bool dt_entity_has_state(dt_entity_ctx *ctx)
{
    return ctx->state.data != NULL;
}

const void *dt_entity_state(dt_entity_ctx *ctx, size_t *len)
{
    if (len != NULL) {
        *len = ctx->state.len;
    }
    return ctx->state.data;
}

dt_status dt_entity_set_state(dt_entity_ctx *ctx, const void *data, size_t len)
{
    uint8_t *copy = dt__arena_memdup(ctx->a, data != NULL ? data : "", len);
    if (copy == NULL) {
        ctx->error = DT_ENOMEM;
        return DT_ENOMEM;
    }
    ctx->state = (dt__blob){copy, len};
    return DT_OK;
}

void dt_entity_delete_state(dt_entity_ctx *ctx)
{
    ctx->state = (dt__blob){NULL, 0};
}

dt_status dt_entity_set_result(dt_entity_ctx *ctx, const void *data, size_t len)
{
    uint8_t *copy = dt__arena_memdup(ctx->a, data != NULL ? data : "", len);
    if (copy == NULL) {
        ctx->error = DT_ENOMEM;
        return DT_ENOMEM;
    }
    ctx->result = (dt__blob){copy, len};
    return DT_OK;
}

void dt_entity_fail(dt_entity_ctx *ctx, const char *type, const char *message)
{
    ctx->failed = true;
    ctx->failure =
        dt__entity_failure(ctx->a, type != NULL ? type : "EntityOperationFailed", message, false);
    if (ctx->failure == NULL) {
        ctx->error = DT_ENOMEM;
    }
}

/* Queues m (arena memory) to be sent once the operation succeeds. */
static dt_status push_send(dt_entity_ctx *ctx, Dtpb__OrchestrationMessage *m)
{
    if (!dt__arena_grow(ctx->a, (void **)&ctx->sends, &ctx->cap_sends, ctx->n_sends,
                        sizeof(void *))) {
        ctx->error = DT_ENOMEM;
        return DT_ENOMEM;
    }
    ctx->sends[ctx->n_sends++] = m;
    return DT_OK;
}

/* The identity of this operation's k-th message: unique per operation, the same when the batch
 * runs again after a crash. */
static char *send_id(dt_entity_ctx *ctx, const char *kind)
{
    char uuid[37], buf[DT_ENTITY_ID_MAX + 64];
    dt__derived_uuid(ctx->instance_id, ctx->source_id, uuid);
    if (dt__msg_id(buf, sizeof(buf), ctx->instance_id, uuid, kind, (int64_t)ctx->n_sends) !=
        DT_OK) {
        return NULL;
    }
    return dt__arena_strdup(ctx->a, buf);
}

dt_status dt_entity_signal(dt_entity_ctx *ctx, const char *name, const char *key, const char *op,
                           const void *input, size_t len)
{
    char id[DT_ENTITY_ID_MAX + 1];
    dt_status st = dt_entity_id(name, key, id, sizeof(id));
    if (st != DT_OK || op == NULL || op[0] == '\0') {
        return st != DT_OK ? st : DT_EINVAL;
    }
    Dtpb__HistoryEvent *ev = dt__emit_new(ctx->a, -1, ctx->now_ms);
    Dtpb__EntityOperationSignaledEvent *s = dt__arena_alloc(ctx->a, sizeof(*s));
    Dtpb__OrchestrationMessage *m = dt__arena_alloc(ctx->a, sizeof(*m));
    char *dedupe = send_id(ctx, "sig");
    char *target = dt__arena_strdup(ctx->a, id);
    if (ev == NULL || s == NULL || m == NULL || dedupe == NULL || target == NULL) {
        ctx->error = DT_ENOMEM;
        return DT_ENOMEM;
    }
    dtpb__entity_operation_signaled_event__init(s);
    s->request_id = dedupe;
    s->operation = dt__arena_strdup(ctx->a, op);
    s->input = input != NULL ? dt__emit_payload(ctx->a, input, len) : NULL;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
    ev->entity_operation_signaled = s;
    dt__orch_msg_init(m, target, "", ev, dedupe);
    return push_send(ctx, m);
}

dt_status dt_entity_start_orchestration(dt_entity_ctx *ctx, const char *name,
                                        const char *instance_id, const void *input, size_t len)
{
    char gen[37], exec[37], dedupe[DT_INSTANCE_ID_MAX + 64];
    char *src = send_id(ctx, "start");
    if (src == NULL) {
        ctx->error = DT_ENOMEM;
        return DT_ENOMEM;
    }
    if (instance_id == NULL) {
        dt__derived_uuid(ctx->instance_id, src, gen);
        instance_id = gen;
    }
    if (name == NULL || name[0] == '\0' || strlen(name) > DT_NAME_MAX ||
        !dt__instance_id_valid(instance_id) || instance_id[0] == '@') {
        return DT_EINVAL;
    }
    dt__derived_uuid(instance_id, src, exec);
    dt__uuid_compact(exec); /* the form of execution IDs */
    Dtpb__HistoryEvent *ev = dt__emit_new(ctx->a, -1, ctx->now_ms);
    Dtpb__ExecutionStartedEvent *s = dt__arena_alloc(ctx->a, sizeof(*s));
    Dtpb__OrchestrationInstance *oi = dt__arena_alloc(ctx->a, sizeof(*oi));
    Dtpb__OrchestrationMessage *m = dt__arena_alloc(ctx->a, sizeof(*m));
    if (ev == NULL || s == NULL || oi == NULL || m == NULL ||
        dt__msg_id(dedupe, sizeof(dedupe), instance_id, exec, "start", 0) != DT_OK) {
        ctx->error = DT_ENOMEM;
        return DT_ENOMEM;
    }
    dtpb__execution_started_event__init(s);
    dtpb__orchestration_instance__init(oi);
    oi->instance_id = dt__arena_strdup(ctx->a, instance_id);
    oi->execution_id = dt__emit_payload(ctx->a, (const uint8_t *)exec, strlen(exec));
    s->name = dt__arena_strdup(ctx->a, name);
    s->orchestration_instance = oi;
    s->input = input != NULL ? dt__emit_payload(ctx->a, input, len) : NULL;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = s;
    dt__orch_msg_init(m, oi->instance_id, dt__arena_strdup(ctx->a, exec), ev,
                      dt__arena_strdup(ctx->a, dedupe));
    m->reuse_policy = DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_IGNORE;
    return push_send(ctx, m);
}
