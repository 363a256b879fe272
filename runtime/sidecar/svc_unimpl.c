/*
 * svc_unimpl.c: the RPCs this endpoint does not serve yet. Each answers UNIMPLEMENTED at once
 * with a message saying why, never a hang (docs/sdk.md lists them).
 */
#include <stdio.h>

#include "common_int.h"
#include "sidecar_int.h"

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
