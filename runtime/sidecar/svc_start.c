/*
 * svc_start.c: Hello, StartInstance and RestartInstance (dt_client_schedule, dt_client_restart).
 *
 * The instance ID reuse policy: the protocol lists the statuses an existing instance may have
 * for a start to replace it. No list: a finished instance is replaced, an unfinished one makes
 * ALREADY_EXISTS. A list: the instance's status record is read first; a status not listed makes
 * ALREADY_EXISTS, a listed unfinished one (RUNNING, PENDING, SUSPENDED) is terminated and
 * replaced, a listed finished one replaced. (A status that changes between the read and the
 * start is decided by the runtime's rule for the policy chosen.) A list that allows replacing
 * running instances but not terminated ones is INVALID_ARGUMENT, as in the protocol's backends.
 */
#include <string.h>

#include "common_int.h"
#include "sidecar_int.h"

static void hello(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    Dtproto__Empty e = DTPROTO__EMPTY__INIT;
    dt__svc_reply(call, &e.base);
}

static bool lists_status(const Dtproto__OrchestrationIdReusePolicy *p, int status)
{
    for (size_t i = 0; i < p->n_replaceable_status; i++) {
        if ((int)p->replaceable_status[i] == status) {
            return true;
        }
    }
    return false;
}

/* The runtime's policy for `p` against the instance's status now: DT_EEXIST (with msg) when it
 * exists with a status the caller does not allow replacing, DT_EINVAL (with msg) for a policy
 * the protocol's backends refuse. */
static dt_status reuse_policy(dt__sidecar_svc *svc, const char *id,
                              const Dtproto__OrchestrationIdReusePolicy *p,
                              dt_client_reuse_policy *out, char *msg, size_t len)
{
    *out = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    if (p == NULL || p->n_replaceable_status == 0) {
        return DT_OK;
    }
    bool running_ok = lists_status(p, DT_CLIENT_RUNNING) || lists_status(p, DT_CLIENT_PENDING) ||
                      lists_status(p, DT_CLIENT_SUSPENDED);
    if (running_ok && !lists_status(p, DT_CLIENT_TERMINATED)) {
        /* A running instance would be terminated, and then be a terminated one that may not be
         * replaced. The protocol's backends refuse this with the same words. */
        dt__errf(msg, len,
                 "Invalid reusable statuses: cannot exclude 'Terminated' while also "
                 "allowing reuse of running instances");
        return DT_EINVAL;
    }
    if (id == NULL) {
        return DT_OK;
    }
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_get_status(svc->client, id, false, &inst);
    if (st == DT_ENOTFOUND) {
        return DT_OK;
    }
    if (st != DT_OK) {
        return st;
    }
    dt_client_runtime_status rs = inst->runtime_status;
    dt_client_instance_free(inst);
    if (!lists_status(p, (int)rs)) {
        dt__errf(msg, len,
                 "an orchestration with instance ID '%s' exists with status %s, which the reuse "
                 "policy does not allow replacing",
                 id, dt_client_runtime_status_name(rs));
        return DT_EEXIST;
    }
    if (!dt_client_runtime_status_finished(rs)) {
        *out = DT_CLIENT_REUSE_TERMINATE_AND_REPLACE;
    }
    return DT_OK;
}

static void start_instance(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__CreateInstanceRequest *r = (Dtproto__CreateInstanceRequest *)dt__svc_unpack(
        call, &dtproto__create_instance_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_client_tag tags[DT_CLIENT_TAGS_MAX];
    if (r->n_tags > DT_CLIENT_TAGS_MAX) {
        dt__svc_invalid(call, "too many tags");
        goto out;
    }
    for (size_t i = 0; i < r->n_tags; i++) {
        tags[i] = (dt_client_tag){r->tags[i]->key, r->tags[i]->value};
    }
    dt_client_start_options o;
    dt_client_start_options_init(&o);
    o.instance_id = r->instance_id[0] != 0 ? r->instance_id : NULL;
    o.execution_id =
        r->execution_id != NULL && r->execution_id->value[0] != 0 ? r->execution_id->value : NULL;
    if (r->input != NULL) {
        o.input = r->input->value;
        o.input_len = strlen(r->input->value);
    }
    o.version = r->version != NULL && r->version->value[0] != 0 ? r->version->value : NULL;
    int64_t at = dt__svc_ts_ms(r->scheduled_start_timestamp);
    o.start_at_ms = at > dt__now_ms() ? at : 0;
    o.tags = r->n_tags > 0 ? tags : NULL;
    o.ntags = r->n_tags;
    if (r->parent_trace_context != NULL && r->parent_trace_context->trace_parent[0] != 0) {
        o.traceparent = r->parent_trace_context->trace_parent;
        if (r->parent_trace_context->trace_state != NULL) {
            o.tracestate = r->parent_trace_context->trace_state->value;
        }
    }
    char msg[400];
    dt_status st = reuse_policy(svc, o.instance_id, r->orchestration_id_reuse_policy,
                                &o.reuse_policy, msg, sizeof msg);
    if (st == DT_EEXIST || st == DT_EINVAL) {
        dt__grpc_call_finish(
            call, st == DT_EEXIST ? DT_GRPC_ALREADY_EXISTS : DT_GRPC_INVALID_ARGUMENT, msg);
        goto out;
    }
    char id[DT_CLIENT_ID_BUF];
    if (st == DT_OK) {
        st = dt_client_schedule(svc->client, r->name, &o, id, sizeof id);
    }
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "StartInstance");
        goto out;
    }
    Dtproto__CreateInstanceResponse res = DTPROTO__CREATE_INSTANCE_RESPONSE__INIT;
    res.instance_id = id;
    dt__svc_reply(call, &res.base);
out:
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

static void restart_instance(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__RestartInstanceRequest *r = (Dtproto__RestartInstanceRequest *)dt__svc_unpack(
        call, &dtproto__restart_instance_request__descriptor);
    if (r == NULL) {
        return;
    }
    char id[DT_CLIENT_ID_BUF];
    dt_status st = dt_client_restart(svc->client, r->instance_id, r->restart_with_new_instance_id,
                                     id, sizeof id);
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "RestartInstance");
    } else {
        Dtproto__RestartInstanceResponse res = DTPROTO__RESTART_INSTANCE_RESPONSE__INIT;
        res.instance_id = id;
        dt__svc_reply(call, &res.base);
    }
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

const dt__sidecar_method dt__svc_start_methods[] = {
    {"Hello", hello},
    {"StartInstance", start_instance},
    {"RestartInstance", restart_instance},
    {NULL, NULL},
};
