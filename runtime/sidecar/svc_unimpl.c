/*
 * svc_unimpl.c: the RPCs this endpoint does not serve yet. Each answers UNIMPLEMENTED at once
 * with a message saying why, never a hang (docs/sdk.md lists them); RewindInstance checks the
 * instance first.
 */
#include <stdio.h>

#include "common_int.h"
#include "sidecar_int.h"

/* Rewind is not built yet; what can be answered without it is: an unknown instance is
 * NOT_FOUND, one that did not fail is FAILED_PRECONDITION (only failed instances are rewound). */
static void rewind_instance(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__RewindInstanceRequest *r = (Dtproto__RewindInstanceRequest *)dt__svc_unpack(
        call, &dtproto__rewind_instance_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_get_status(svc->client, r->instance_id, false, &inst);
    char msg[400];
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "RewindInstance");
    } else if (inst->runtime_status != DT_CLIENT_FAILED) {
        dt__errf(msg, sizeof msg,
                 "RewindInstance: instance '%s' is %s: only a failed instance can be rewound "
                 "(precondition not met)",
                 r->instance_id, dt_client_runtime_status_name(inst->runtime_status));
        dt__grpc_call_finish(call, DT_GRPC_FAILED_PRECONDITION, msg);
    } else {
        dt__grpc_call_finish(call, DT_GRPC_UNIMPLEMENTED,
                             "RewindInstance: rewinding failed instances is not supported by this "
                             "runtime yet");
    }
    dt_client_instance_free(inst);
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

static void entities(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    char msg[200];
    snprintf(msg, sizeof msg, "%s: durable entities are not supported by this runtime yet",
             dt__grpc_call_path(call) + sizeof DT__SIDECAR_SERVICE - 1);
    dt__grpc_call_finish(call, DT_GRPC_UNIMPLEMENTED, msg);
}

static void hub_admin(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    dt__grpc_call_finish(call, DT_GRPC_UNIMPLEMENTED,
                         "task hubs are created and deleted with dtctl (dtctl hub create / "
                         "delete), not through the endpoint");
}

static void skip_graceful(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    dt__grpc_call_finish(call, DT_GRPC_UNIMPLEMENTED,
                         "SkipGracefulOrchestrationTerminations is not supported: terminations "
                         "here are always applied by the instance's partition");
}

const dt__sidecar_method dt__svc_unimpl_methods[] = {
    {"RewindInstance", rewind_instance},
    {"SignalEntity", entities},
    {"GetEntity", entities},
    {"QueryEntities", entities},
    {"CleanEntityStorage", entities},
    {"CompleteEntityTask", entities},
    {"AbandonTaskEntityWorkItem", entities},
    {"CreateTaskHub", hub_admin},
    {"DeleteTaskHub", hub_admin},
    {"SkipGracefulOrchestrationTerminations", skip_graceful},
    {NULL, NULL},
};
