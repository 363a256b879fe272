/*
 * svc_unimpl.c: the RPCs this endpoint does not serve yet. Each answers UNIMPLEMENTED at once
 * with a message saying why, never a hang (docs/sdk.md lists them).
 */
#include "common_int.h"
#include "sidecar_int.h"

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
    {"CreateTaskHub", hub_admin},
    {"DeleteTaskHub", hub_admin},
    {"SkipGracefulOrchestrationTerminations", skip_graceful},
    {NULL, NULL},
};
