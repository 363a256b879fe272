/*
 * svc_control.c: RaiseEvent, TerminateInstance, SuspendInstance, ResumeInstance, RewindInstance
 * (dt_client_raise_event, _terminate, _suspend, _resume, _rewind). An unknown instance is
 * NOT_FOUND, a finished one FAILED_PRECONDITION (for RewindInstance: one that did not fail).
 */
#include <string.h>

#include "common_int.h"
#include "sidecar_int.h"

#define UNPACK(type, desc) ((type *)dt__svc_unpack(call, &(desc)))
#define FREE(r)            protobuf_c_message_free_unpacked(&(r)->base, dt__pb_allocator())

static void finish(dt__grpc_call *call, dt__sidecar_svc *svc, dt_status st, const char *what,
                   const ProtobufCMessage *ok)
{
    if (st == DT_OK) {
        dt__svc_reply(call, ok);
    } else {
        dt__svc_fail(call, svc, st, what);
    }
}

static const char *sv_text(const Dtproto__StringValue *sv)
{
    return sv != NULL ? sv->value : NULL;
}

static void raise_event(dt__grpc_call *call, void *ctx)
{
    Dtproto__RaiseEventRequest *r =
        UNPACK(Dtproto__RaiseEventRequest, dtproto__raise_event_request__descriptor);
    if (r == NULL) {
        return;
    }
    const char *data = sv_text(r->input);
    dt_status st = dt_client_raise_event(((dt__sidecar_svc *)ctx)->client, r->instance_id, r->name,
                                         data, data != NULL ? strlen(data) : 0, NULL);
    Dtproto__RaiseEventResponse res = DTPROTO__RAISE_EVENT_RESPONSE__INIT;
    finish(call, ctx, st, "RaiseEvent", &res.base);
    FREE(r);
}

static void terminate(dt__grpc_call *call, void *ctx)
{
    Dtproto__TerminateRequest *r =
        UNPACK(Dtproto__TerminateRequest, dtproto__terminate_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_status st = dt_client_terminate(((dt__sidecar_svc *)ctx)->client, r->instance_id,
                                       sv_text(r->output), r->recursive);
    Dtproto__TerminateResponse res = DTPROTO__TERMINATE_RESPONSE__INIT;
    finish(call, ctx, st, "TerminateInstance", &res.base);
    FREE(r);
}

static void suspend(dt__grpc_call *call, void *ctx)
{
    Dtproto__SuspendRequest *r =
        UNPACK(Dtproto__SuspendRequest, dtproto__suspend_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_status st =
        dt_client_suspend(((dt__sidecar_svc *)ctx)->client, r->instance_id, sv_text(r->reason));
    Dtproto__SuspendResponse res = DTPROTO__SUSPEND_RESPONSE__INIT;
    finish(call, ctx, st, "SuspendInstance", &res.base);
    FREE(r);
}

static void resume(dt__grpc_call *call, void *ctx)
{
    Dtproto__ResumeRequest *r = UNPACK(Dtproto__ResumeRequest, dtproto__resume_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_status st =
        dt_client_resume(((dt__sidecar_svc *)ctx)->client, r->instance_id, sv_text(r->reason));
    Dtproto__ResumeResponse res = DTPROTO__RESUME_RESPONSE__INIT;
    finish(call, ctx, st, "ResumeInstance", &res.base);
    FREE(r);
}

static void rewind_instance(dt__grpc_call *call, void *ctx)
{
    Dtproto__RewindInstanceRequest *r =
        UNPACK(Dtproto__RewindInstanceRequest, dtproto__rewind_instance_request__descriptor);
    if (r == NULL) {
        return;
    }
    /* Answered once the worker applied it (bounded): the SDKs wait for completion right after,
     * and would read the failure that is being rewound. Not applied in time (no worker running),
     * the request is stored all the same and the call succeeds. */
    int64_t timeout = DT__SIDECAR_REWIND_WAIT_MS, deadline = dt__grpc_call_deadline(call);
    if (deadline != 0 && deadline - dt__mono_ms() < timeout) {
        timeout = deadline - dt__mono_ms() > 1 ? deadline - dt__mono_ms() : 1;
    }
    dt_status st = dt_client_rewind_wait(((dt__sidecar_svc *)ctx)->client, r->instance_id,
                                         sv_text(r->reason), timeout);
    st = st == DT_ETIMEOUT ? DT_OK : st;
    Dtproto__RewindInstanceResponse res = DTPROTO__REWIND_INSTANCE_RESPONSE__INIT;
    finish(call, ctx, st, "RewindInstance", &res.base);
    FREE(r);
}

const dt__sidecar_method dt__svc_control_methods[] = {
    {"RaiseEvent", raise_event}, {"TerminateInstance", terminate},    {"SuspendInstance", suspend},
    {"ResumeInstance", resume},  {"RewindInstance", rewind_instance}, {NULL, NULL},
};
