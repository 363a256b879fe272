/*
 * svc_work.c: the SDK worker's RPCs: GetWorkItems (a server stream of WorkItems),
 * CompleteOrchestratorTask, CompleteActivityTask, CompleteEntityTask and AbandonTask*WorkItem,
 * over runtime/remote
 * (remote_int.h), which owns the work items and turns completions into history.
 *
 * A GetWorkItems stream is one remote connection: the remote wakes the stream's handler thread
 * (dt__grpc_call_wake: it only signals) when it queues work for it, and the handler polls and
 * sends each packed WorkItem as it is. An idle stream gets a HealthPing work item every
 * svc->health_ping_ms, so that the SDK and proxies see it alive (the transport's HTTP/2 PINGs
 * detect a dead peer). When the stream ends (the client cancelled it or went away, or the
 * sidecar stops) the connection is closed and its in-flight items are redelivered.
 *
 * Abandon: the item is given up at once and redelivered (dt__remote_abandon); an unknown token
 * is NOT_FOUND.
 */
#include "common_int.h"
#include "remote_int.h"
#include "sidecar_int.h"

static dt_status send_ping(dt__grpc_call *call)
{
    Dtproto__HealthPing hp = DTPROTO__HEALTH_PING__INIT;
    Dtproto__WorkItem wi = DTPROTO__WORK_ITEM__INIT;
    wi.request_case = DTPROTO__WORK_ITEM__REQUEST_HEALTH_PING;
    wi.health_ping = &hp;
    return dt__svc_send(call, &wi.base);
}

/* Sends what the connection has queued; DT_OK when it ran dry, else why the stream must end.
 * *last_sent is the time of the last message sent. */
static dt_status drain(dt__grpc_call *call, dt__remote_conn *conn, int64_t *last_sent)
{
    for (;;) {
        uint8_t *item = NULL;
        size_t len = 0;
        dt_status st = dt__remote_poll(conn, &item, &len);
        if (st == DT_ENOTFOUND) {
            return DT_OK;
        }
        if (st != DT_OK) {
            return st;
        }
        st = dt__grpc_call_send(call, item, len);
        dt_free(item);
        *last_sent = dt__mono_ms();
        if (st != DT_OK) {
            return st; /* the item is in flight on conn: disconnect redelivers it */
        }
    }
}

static void get_work_items(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__GetWorkItemsRequest *r = (Dtproto__GetWorkItemsRequest *)dt__svc_unpack(
        call, &dtproto__get_work_items_request__descriptor);
    if (r == NULL) {
        return;
    }
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
    if (svc->remote == NULL) {
        dt__grpc_call_finish(call, DT_GRPC_UNAVAILABLE,
                             "this endpoint runs no work for SDK workers");
        return;
    }
    dt__remote_conn *conn = NULL;
    dt_status st = dt__remote_connect(svc->remote, dt__grpc_call_wake, call, &conn);
    if (st != DT_OK) {
        dt__grpc_call_finish(call, DT_GRPC_UNAVAILABLE, "the endpoint is shutting down");
        return;
    }
    int64_t last_sent = dt__mono_ms();
    while ((st = drain(call, conn, &last_sent)) == DT_OK) {
        int64_t left = svc->health_ping_ms - (dt__mono_ms() - last_sent);
        if (!dt__grpc_call_wait(call, left > 0 ? left : 0)) {
            break; /* cancelled */
        }
        if (dt__mono_ms() - last_sent >= svc->health_ping_ms) {
            if (send_ping(call) != DT_OK) {
                break;
            }
            last_sent = dt__mono_ms();
        }
    }
    /* wake() is not called for conn once it is disconnected: the call may end after. */
    dt__remote_disconnect(conn);
    if (st == DT_ECLOSED && !dt__grpc_call_cancelled(call)) {
        dt__grpc_call_finish(call, DT_GRPC_UNAVAILABLE, "the endpoint is shutting down");
    } else {
        dt__grpc_call_finish(call, DT_GRPC_CANCELLED, NULL);
    }
}

typedef dt_status (*complete_fn)(dt__remote *r, const uint8_t *req, size_t len);

static void complete(dt__grpc_call *call, dt__sidecar_svc *svc, complete_fn fn, const char *what)
{
    if (svc->remote == NULL) {
        dt__grpc_call_finish(call, DT_GRPC_UNAVAILABLE,
                             "this endpoint runs no work for SDK workers");
        return;
    }
    size_t len;
    const uint8_t *req = dt__grpc_call_request(call, &len);
    dt_status st = fn(svc->remote, req, len);
    char msg[160];
    switch (st) {
    case DT_OK: {
        /* CompleteTaskResponse and every Abandon*Response are empty: one message answers all. */
        Dtproto__CompleteTaskResponse res = DTPROTO__COMPLETE_TASK_RESPONSE__INIT;
        dt__svc_reply(call, &res.base);
        return;
    }
    case DT_ENOTFOUND:
        dt__errf(msg, sizeof msg,
                 "%s: no such work item in flight (completed already, timed out "
                 "or its stream closed; it is redelivered)",
                 what);
        dt__grpc_call_finish(call, DT_GRPC_NOT_FOUND, msg);
        return;
    case DT_EINVAL:
        dt__errf(msg, sizeof msg, "%s: malformed response, or it names no instance", what);
        dt__grpc_call_finish(call, DT_GRPC_INVALID_ARGUMENT, msg);
        return;
    default:
        dt__errf(msg, sizeof msg, "%s: %s", what, dt_status_str(st));
        dt__grpc_call_finish(call, dt__svc_code(st), msg);
        return;
    }
}

static void complete_orchestration(dt__grpc_call *call, void *ctx)
{
    complete(call, ctx, dt__remote_complete_orchestration, "CompleteOrchestratorTask");
}

static void complete_activity(dt__grpc_call *call, void *ctx)
{
    complete(call, ctx, dt__remote_complete_activity, "CompleteActivityTask");
}

static void complete_entity(dt__grpc_call *call, void *ctx)
{
    complete(call, ctx, dt__remote_complete_entity, "CompleteEntityTask");
}

static void abandon(dt__grpc_call *call, void *ctx)
{
    complete(call, ctx, dt__remote_abandon, "AbandonTask*WorkItem");
}

const dt__sidecar_method dt__svc_work_methods[] = {
    {"GetWorkItems", get_work_items},
    {"CompleteOrchestratorTask", complete_orchestration},
    {"CompleteActivityTask", complete_activity},
    {"AbandonTaskOrchestratorWorkItem", abandon},
    {"AbandonTaskActivityWorkItem", abandon},
    {"CompleteEntityTask", complete_entity},
    {"AbandonTaskEntityWorkItem", abandon},
    {NULL, NULL},
};
