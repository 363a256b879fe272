/*
 * svc_status.c: GetInstance, WaitForInstanceStart, WaitForInstanceCompletion (status records,
 * dt_client_get_status and dt_client_wait_for_*).
 *
 * An unknown instance is not an error here: the protocol answers exists = false (a wait gives an
 * instance without a status record DT__SIDECAR_MISSING_MS to appear). A wait lasts
 * until the call's deadline (grpc-timeout) or without bound when the client gave none (the SDKs
 * time out on their side); it waits in slices of svc->wait_slice_ms so that a cancelled call
 * stops waiting within one slice (each slice is one client wait: a record read, then the shared
 * status watch).
 */
#include "common_int.h"
#include "sidecar_int.h"

static void reply_state(dt__grpc_call *call, const dt_client_instance *inst, bool payloads)
{
    Dtproto__GetInstanceResponse res = DTPROTO__GET_INSTANCE_RESPONSE__INIT;
    dt__arena *a = NULL;
    if (inst != NULL) {
        a = dt__arena_create(0);
        res.orchestration_state = a != NULL ? dt__svc_state(a, inst, payloads) : NULL;
        if (res.orchestration_state == NULL) {
            dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            dt__arena_destroy(a);
            return;
        }
        res.exists = true;
    }
    dt__svc_reply(call, &res.base);
    dt__arena_destroy(a);
}

static void get_instance(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__GetInstanceRequest *r = (Dtproto__GetInstanceRequest *)dt__svc_unpack(
        call, &dtproto__get_instance_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_client_instance *inst = NULL;
    dt_status st =
        dt_client_get_status(svc->client, r->instance_id, r->get_inputs_and_outputs, &inst);
    if (st == DT_OK || st == DT_ENOTFOUND) {
        reply_state(call, inst, r->get_inputs_and_outputs);
    } else {
        dt__svc_fail(call, svc, st, "GetInstance");
    }
    dt_client_instance_free(inst);
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

typedef dt_status (*wait_fn)(dt_client *c, const char *id, int64_t timeout_ms, bool payloads,
                             dt_client_instance **out);

/* True when the instance still has no status record once the wait has lasted
 * DT__SIDECAR_MISSING_MS: its start is not on its way (a slice of the client's wait restarts the
 * client's own wait_missing_ms, so the sidecar keeps this clock itself). */
static bool given_up_missing(dt__sidecar_svc *svc, const char *id, int64_t since)
{
    if (dt__mono_ms() - since < DT__SIDECAR_MISSING_MS) {
        return false;
    }
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_get_status(svc->client, id, false, &inst);
    dt_client_instance_free(inst);
    return st == DT_ENOTFOUND;
}

static void wait_for(dt__grpc_call *call, dt__sidecar_svc *svc, wait_fn fn, const char *what)
{
    Dtproto__GetInstanceRequest *r = (Dtproto__GetInstanceRequest *)dt__svc_unpack(
        call, &dtproto__get_instance_request__descriptor);
    if (r == NULL) {
        return;
    }
    int64_t deadline = dt__grpc_call_deadline(call);
    int64_t since = dt__mono_ms();
    dt_client_instance *inst = NULL;
    dt_status st;
    for (;;) {
        int64_t slice = svc->wait_slice_ms;
        if (deadline != 0) {
            int64_t left = deadline - dt__mono_ms();
            slice = left < slice ? (left > 0 ? left : 0) : slice;
        }
        st = fn(svc->client, r->instance_id, slice, r->get_inputs_and_outputs, &inst);
        if (st != DT_ETIMEOUT || dt__grpc_call_cancelled(call) ||
            (deadline != 0 && dt__mono_ms() >= deadline)) {
            break;
        }
        if (given_up_missing(svc, r->instance_id, since)) {
            st = DT_ENOTFOUND;
            break;
        }
    }
    if (st == DT_OK || st == DT_ENOTFOUND) {
        reply_state(call, inst, r->get_inputs_and_outputs);
    } else if (dt__grpc_call_cancelled(call)) {
        dt__grpc_call_finish(call, DT_GRPC_CANCELLED, NULL);
    } else {
        dt__svc_fail(call, svc, st, what);
    }
    dt_client_instance_free(inst);
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

static void wait_start(dt__grpc_call *call, void *ctx)
{
    wait_for(call, ctx, dt_client_wait_for_start, "WaitForInstanceStart");
}

static void wait_completion(dt__grpc_call *call, void *ctx)
{
    wait_for(call, ctx, dt_client_wait_for_completion, "WaitForInstanceCompletion");
}

const dt__sidecar_method dt__svc_status_methods[] = {
    {"GetInstance", get_instance},
    {"WaitForInstanceStart", wait_start},
    {"WaitForInstanceCompletion", wait_completion},
    {NULL, NULL},
};
