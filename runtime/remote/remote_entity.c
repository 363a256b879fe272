/*
 * Remote entities: entity operations whose code runs in an SDK worker. The partition's entity
 * engine (runtime/entity) runs an entity's messages one operation at a time, as for a C entity;
 * for an entity name no C code registered, its entity function is dt__remote_entity_fn, which
 * hands the one operation to a connected SDK worker as an EntityBatchRequest work item (the
 * state as the previous operation left it, the operation) and turns the EntityBatchResult into
 * the context's calls: result or failure, new state (or deleted), signals and orchestration
 * starts. So locks, queues, exactly-once identities, failure roll-back and commit are the
 * engine's and the worker's, unchanged; the cost is one round trip per operation.
 *
 * A result that breaks the protocol's rules (not one result, a signal to something that is not
 * an entity ID, a start without a name...) fails the operation with dt.RemoteProtocolError: its
 * state change, signals and starts are dropped, only the failure reaches a caller. An operation no
 * SDK worker takes, or whose worker disconnects, abandons it or does not answer in time, aborts
 * the engine's run (the context's error): the worker then leaves the entity's messages for
 * redelivery and writes nothing of the batch for it.
 */
#include <string.h>

#include "entity/entity_int.h"
#include "protocol_int.h"
#include "remote_priv_int.h"

#define KEEP_ALIVE_MS 3000

bool dt__remote_takes_entity(const dt__remote *r, const char *name)
{
    return r != NULL && name != NULL && name[0] != '\0';
}

static dt_status pack_request(dt_entity_ctx *ctx, const char *token, uint8_t **out, size_t *len)
{
    Dtpb__Remote__OperationRequest op = DTPB__REMOTE__OPERATION_REQUEST__INIT;
    Dtpb__Remote__OperationRequest *ops[1] = {&op};
    Dtpb__Remote__EntityBatchRequest req = DTPB__REMOTE__ENTITY_BATCH_REQUEST__INIT;
    Dtpb__Remote__WorkItem wi = DTPB__REMOTE__WORK_ITEM__INIT;
    Dtpb__Payload state = DTPB__PAYLOAD__INIT, input = DTPB__PAYLOAD__INIT;
    op.operation = (char *)ctx->operation;
    op.request_id = (char *)ctx->source_id;
    if (ctx->input.data != NULL) {
        input.value = (ProtobufCBinaryData){ctx->input.len, (uint8_t *)ctx->input.data};
        op.input = &input;
    }
    req.instance_id = (char *)ctx->instance_id;
    if (ctx->state.data != NULL) {
        state.value = (ProtobufCBinaryData){ctx->state.len, (uint8_t *)ctx->state.data};
        req.entity_state = &state;
    }
    req.operations = ops;
    req.n_operations = 1;
    wi.request_case = DTPB__REMOTE__WORK_ITEM__REQUEST_ENTITY_REQUEST;
    wi.entity_request = &req;
    wi.completion_token = (char *)token;
    size_t n = protobuf_c_message_get_packed_size(&wi.base);
    uint8_t *buf = dt_alloc(n > 0 ? n : 1);
    if (buf == NULL) {
        return DT_ENOMEM;
    }
    *len = protobuf_c_message_pack(&wi.base, buf);
    *out = buf;
    return DT_OK;
}

/* A NUL-terminated copy of a payload in the context's arena (NULL for none). */
static const char *text(dt_entity_ctx *ctx, const Dtpb__Payload *p)
{
    return p != NULL ? dt__arena_memdup(ctx->a,
                                        p->value.data != NULL ? p->value.data : (const uint8_t *)"",
                                        p->value.len)
                     : NULL;
}

static void protocol_error(dt_entity_ctx *ctx, const char *why)
{
    dt_entity_fail(ctx, DT__REMOTE_PROTOCOL_ERROR, why);
}

/* Checks an action before anything of the result is applied. NULL: fine; else what is wrong. */
static const char *check_action(const Dtpb__Remote__OperationAction *a)
{
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    switch (a->operation_action_type_case) {
    case DTPB__REMOTE__OPERATION_ACTION__OPERATION_ACTION_TYPE_SEND_SIGNAL: {
        const Dtpb__Remote__SendSignalAction *s = a->send_signal;
        if (s->instance_id == NULL ||
            dt_entity_id_parse(s->instance_id, name, sizeof name, key, sizeof key) != DT_OK) {
            return "the SDK worker's result signals something that is not an entity ID";
        }
        if (s->name == NULL || s->name[0] == '\0' || strlen(s->name) > DT_NAME_MAX) {
            return "the SDK worker's result signals an operation without a name (1..128 bytes)";
        }
        return NULL;
    }
    case DTPB__REMOTE__OPERATION_ACTION__OPERATION_ACTION_TYPE_START_NEW_ORCHESTRATION: {
        const Dtpb__Remote__StartNewOrchestrationAction *s = a->start_new_orchestration;
        if (s->name == NULL || s->name[0] == '\0' || strlen(s->name) > DT_NAME_MAX) {
            return "the SDK worker's result starts an orchestration without a name "
                   "(1..128 bytes)";
        }
        if (s->scheduled_time != NULL) {
            return "orchestration starts scheduled for later are not supported from entities";
        }
        if (s->instance_id != NULL &&
            (strlen(s->instance_id) > DT_INSTANCE_ID_MAX || dt__entity_is_id(s->instance_id))) {
            return "the SDK worker's result starts an orchestration with an invalid instance ID";
        }
        return NULL;
    }
    default:
        return "the SDK worker's result has an action of no known kind";
    }
}

static void apply_action(dt_entity_ctx *ctx, const Dtpb__Remote__OperationAction *a)
{
    if (a->operation_action_type_case ==
        DTPB__REMOTE__OPERATION_ACTION__OPERATION_ACTION_TYPE_SEND_SIGNAL) {
        const Dtpb__Remote__SendSignalAction *s = a->send_signal;
        char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
        (void)dt_entity_id_parse(s->instance_id, name, sizeof name, key, sizeof key);
        const char *in = text(ctx, s->input);
        size_t before = ctx->n_sends;
        dt_status st = dt_entity_signal(ctx, name, key, s->name, in,
                                        s->input != NULL ? s->input->value.len : 0);
        if (st == DT_OK && s->scheduled_time != NULL && ctx->n_sends == before + 1) {
            /* The receiving entity's worker defers it (a timer) until then. */
            Dtpb__HistoryEvent *ev = ctx->sends[before]->event;
            ev->entity_operation_signaled->scheduled_time =
                dt__ts_from_ms(ctx->a, dt__ts_to_ms(s->scheduled_time));
        }
        if (st != DT_OK && st != DT_ENOMEM) {
            protocol_error(ctx, "the SDK worker's result signals an invalid entity");
        }
        return;
    }
    const Dtpb__Remote__StartNewOrchestrationAction *s = a->start_new_orchestration;
    const char *in = text(ctx, s->input);
    dt_status st = dt_entity_start_orchestration(
        ctx, s->name, s->instance_id != NULL && s->instance_id[0] != '\0' ? s->instance_id : NULL,
        in, s->input != NULL ? s->input->value.len : 0);
    if (st != DT_OK && st != DT_ENOMEM) {
        protocol_error(ctx, "the SDK worker's result starts an invalid orchestration");
    }
}

static void fail_with(dt_entity_ctx *ctx, const Dtpb__TaskFailureDetails *f)
{
    dt_entity_fail(ctx, f->error_type != NULL && f->error_type[0] != '\0' ? f->error_type : "Error",
                   f->error_message != NULL ? f->error_message : "");
}

/* The operation's outcome, as the EntityBatchResult of one operation reports it. */
static void report(dt_entity_ctx *ctx, const Dtpb__Remote__EntityBatchResult *res)
{
    if (res->failure_details != NULL) {
        fail_with(ctx, res->failure_details); /* the SDK's own failure around the operation */
        return;
    }
    if (res->n_results != 1) {
        protocol_error(ctx, "the SDK worker's result does not have one result for the one "
                            "operation sent");
        return;
    }
    const Dtpb__Remote__OperationResult *r = res->results[0];
    if (r->result_type_case == DTPB__REMOTE__OPERATION_RESULT__RESULT_TYPE_FAILURE) {
        if (r->failure->failure_details == NULL) {
            protocol_error(ctx, "the SDK worker's result has a failure without details");
        } else {
            fail_with(ctx, r->failure->failure_details);
        }
        return;
    }
    if (r->result_type_case != DTPB__REMOTE__OPERATION_RESULT__RESULT_TYPE_SUCCESS) {
        protocol_error(ctx, "the SDK worker's result is neither a success nor a failure");
        return;
    }
    for (size_t i = 0; i < res->n_actions; i++) {
        const char *why = check_action(res->actions[i]);
        if (why != NULL) {
            protocol_error(ctx, why);
            return;
        }
    }
    if (res->entity_state != NULL) {
        dt_entity_set_state(ctx, res->entity_state->value.data, res->entity_state->value.len);
    } else {
        dt_entity_delete_state(ctx);
    }
    const Dtpb__Payload *out = r->success->result;
    if (out != NULL) {
        dt_entity_set_result(ctx, out->value.data, out->value.len);
    }
    for (size_t i = 0; i < res->n_actions && !ctx->failed; i++) {
        apply_action(ctx, res->actions[i]);
    }
}

/* Waits (keeping the batch alive) up to the episode timeout for an SDK worker to connect. An
 * operation left for redelivery at once would come back after later ones of the same entity (a
 * nak'd message is redelivered after the delay, the next ones are not held back): waiting here
 * keeps operations in arrival order across a worker's (re)start. */
static bool await_conn(dt__remote_entity_run *run)
{
    int64_t end = dt__mono_ms() + run->r->opt.episode_timeout_ms;
    for (;;) {
        int64_t left = end - dt__mono_ms();
        if (dt__remote_await_conn(run->r, left < KEEP_ALIVE_MS ? left : KEEP_ALIVE_MS, run->stop)) {
            return true;
        }
        if (left <= KEEP_ALIVE_MS || (run->stop != NULL && atomic_load(run->stop))) {
            return false;
        }
        if (run->keep_alive != NULL) {
            run->keep_alive(run->arg);
        }
    }
}

void dt__remote_entity_fn(dt_entity_ctx *ctx, void *user_data)
{
    dt__remote_entity_run *run = user_data;
    dt__remote *r = run->r;
    dt__remote_call *c = NULL;
    dt_status st =
        await_conn(run) ? dt__remote_call_new(r, false, ctx->instance_id, &c) : DT_ECLOSED;
    if (st == DT_OK) {
        c->task_id = INT32_MIN; /* never an activity's: only the token matches it */
        st = pack_request(ctx, c->token, &c->item, &c->len);
    }
    if (st == DT_OK) {
        st = dt__remote_call_queue(c, r->opt.episode_timeout_ms);
    }
    while (st == DT_OK && (st = dt__remote_call_wait(c, run->stop, KEEP_ALIVE_MS)) == DT_EBUSY) {
        if (run->keep_alive != NULL) {
            run->keep_alive(run->arg);
        }
        st = DT_OK;
    }
    const Dtpb__Remote__EntityBatchResult *res = st == DT_OK ? c->resp : NULL;
    if (res != NULL) {
        report(ctx, res);
    } else {
        run->lost = st;
        ctx->error = st == DT_ENOMEM ? DT_ENOMEM : DT_ECLOSED; /* ends the engine's run */
    }
    dt__remote_call_free(c);
}

dt_status dt__remote_complete_entity(dt__remote *r, const uint8_t *req, size_t len)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    Dtpb__Remote__EntityBatchResult *res = (Dtpb__Remote__EntityBatchResult *)dt__arena_unpack(
        a, &dtpb__remote__entity_batch_result__descriptor, len, req);
    dt_status st = DT_EINVAL;
    if (res != NULL && res->completion_token != NULL && res->completion_token[0] != '\0') {
        st = dt__remote_deliver_token(r, res->completion_token, a, res);
    }
    if (st != DT_OK) {
        dt__arena_destroy(a);
    }
    return st;
}
