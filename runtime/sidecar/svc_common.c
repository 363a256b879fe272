/*
 * svc_common.c: what the sidecar's services share: decoding requests, replying, and turning the
 * client API's statuses into gRPC statuses.
 */
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "sidecar_int.h"

ProtobufCMessage *dt__svc_unpack(dt__grpc_call *call, const ProtobufCMessageDescriptor *desc)
{
    size_t len;
    const uint8_t *req = dt__grpc_call_request(call, &len);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, dt__pb_allocator(), len, req);
    if (m == NULL) {
        char msg[160];
        dt__errf(msg, sizeof msg, "malformed %s (%zu bytes)", desc->name, len);
        dt__grpc_call_finish(call, DT_GRPC_INVALID_ARGUMENT, msg);
    }
    return m;
}

dt_status dt__svc_send(dt__grpc_call *call, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = dt_alloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return DT_ENOMEM;
    }
    protobuf_c_message_pack(m, buf);
    dt_status st = dt__grpc_call_send(call, buf, len);
    dt_free(buf);
    return st;
}

void dt__svc_reply(dt__grpc_call *call, const ProtobufCMessage *m)
{
    dt_status st = dt__svc_send(call, m);
    switch (st) {
    case DT_OK:
        dt__grpc_call_finish(call, DT_GRPC_OK, NULL);
        break;
    case DT_ETOOLARGE:
        dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED,
                             "the response exceeds the endpoint's message size limit");
        break;
    case DT_ECLOSED:
        dt__grpc_call_finish(call, DT_GRPC_CANCELLED, NULL);
        break;
    default:
        dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        break;
    }
}

dt__grpc_code dt__svc_code(dt_status st)
{
    switch (st) {
    case DT_OK:
        return DT_GRPC_OK;
    case DT_EINVAL:
    case DT_EDECODE:
        return DT_GRPC_INVALID_ARGUMENT;
    case DT_ENOTFOUND:
    case DT_EUNKNOWNNAME:
        return DT_GRPC_NOT_FOUND;
    case DT_EEXIST:
        return DT_GRPC_ALREADY_EXISTS;
    case DT_ESTATE:
    case DT_ECONFLICT:
        return DT_GRPC_FAILED_PRECONDITION;
    case DT_ETOOLARGE:
    case DT_ENOMEM:
        return DT_GRPC_RESOURCE_EXHAUSTED;
    case DT_ETIMEOUT:
        return DT_GRPC_DEADLINE_EXCEEDED;
    case DT_EBROKER:
    case DT_EBUSY:
    case DT_ECLOSED:
    case DT_EFENCED:
        return DT_GRPC_UNAVAILABLE;
    default:
        return DT_GRPC_INTERNAL;
    }
}

void dt__svc_fail(dt__grpc_call *call, dt__sidecar_svc *svc, dt_status st, const char *what)
{
    char err[512], msg[700];
    dt_client_errmsg_copy(svc->client, err, sizeof err);
    dt__errf(msg, sizeof msg, "%s: %s (%s)", what, err[0] != 0 ? err : dt_status_str(st),
             dt_status_name(st));
    dt__grpc_call_finish(call, dt__svc_code(st), msg);
}

void dt__svc_invalid(dt__grpc_call *call, const char *msg)
{
    dt__grpc_call_finish(call, DT_GRPC_INVALID_ARGUMENT, msg);
}

static const dt__sidecar_method *const tables[] = {
    dt__svc_start_methods, dt__svc_status_methods, dt__svc_control_methods,
    dt__svc_query_methods, dt__svc_purge_methods,  dt__svc_history_methods,
    dt__svc_work_methods,  dt__svc_entity_methods, dt__svc_unimpl_methods,
};

/* The methods whose calls wait for what other calls bring about (dt__grpc_server_mark_waiting):
 * a completion or start waits for the worker's completions, a rewind for the worker to apply it. */
static bool waits(const char *name)
{
    static const char *const waiting[] = {"WaitForInstanceStart", "WaitForInstanceCompletion",
                                          "RewindInstance"};
    for (size_t i = 0; i < DT__ARRAY_LEN(waiting); i++) {
        if (strcmp(waiting[i], name) == 0) {
            return true;
        }
    }
    return false;
}

dt_status dt__sidecar_register(dt__grpc_server *s, dt__sidecar_svc *svc)
{
    for (size_t t = 0; t < DT__ARRAY_LEN(tables); t++) {
        for (const dt__sidecar_method *m = tables[t]; m->name != NULL; m++) {
            char path[128];
            dt__errf(path, sizeof path, "%s%s", DT__SIDECAR_SERVICE, m->name);
            dt_status st = dt__grpc_server_add_method(s, path, m->fn, svc);
            if (st == DT_OK && waits(m->name)) {
                st = dt__grpc_server_mark_waiting(s, path);
            }
            if (st != DT_OK) {
                return st;
            }
        }
    }
    return DT_OK;
}
