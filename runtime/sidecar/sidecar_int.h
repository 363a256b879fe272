/*
 * sidecar_int.h: the TaskHubSidecarService of dt-sidecar (internal; runtime/sidecar).
 *
 * The services map the Durable Task SDKs' RPCs (schema/orchestrator_service.proto, package
 * dtproto) onto this runtime:
 *   - client RPCs (start, status, waits, events, control, queries, purge, history, restart) onto
 *     the public client API, durabletask/client.h (svc_start.c, svc_status.c, svc_control.c,
 *     svc_query.c, svc_purge.c, svc_history.c), the entity client RPCs onto durabletask/entity.h
 *     (svc_entity.c);
 *   - worker RPCs (GetWorkItems, Complete*Task, Abandon*) onto runtime/remote, which hands
 *     orchestration episodes, activities and entity operations of a dt_worker to connected SDK
 *     workers (svc_work.c);
 *   - what is not supported (task hub management, skipping graceful terminations) onto
 *     UNIMPLEMENTED with a message (svc_unimpl.c).
 * Each RPC runs on a handler thread of the transport (grpc/grpc_server.h) and may block there.
 * svc_common.c has what they share: request decoding, replies, dt_status -> gRPC status, and the
 * conversions between the client API's types and the protocol's.
 */
#ifndef DT_SIDECAR_INT_H
#define DT_SIDECAR_INT_H

#include <protobuf-c/protobuf-c.h>

#include "arena_int.h"
#include "durabletask/client.h"
#include "grpc_server.h"
#include "orchestrator_service.pb-c.h"

typedef struct dt__remote dt__remote;

/* What every handler gets as its ctx. Thread-safe parts only. */
typedef struct dt__sidecar_svc {
    dt_client *client;  /* borrowed; thread-safe */
    dt__remote *remote; /* borrowed; NULL: no worker RPCs (GetWorkItems is UNAVAILABLE) */
    /* An idle GetWorkItems stream gets a HealthPing work item this often. */
    int64_t health_ping_ms;
    /* Waits (WaitForInstance*) check for cancellation at least this often. */
    int64_t wait_slice_ms;
} dt__sidecar_svc;

/* How long a wait gives an instance without a status record to appear (a publish-to-start on
 * its way) before it answers exists = false. */
#define DT__SIDECAR_MISSING_MS 10000
/* How long RewindInstance waits for the worker to apply the rewind before it answers. */
#define DT__SIDECAR_REWIND_WAIT_MS 10000

/* The gRPC path of a method: "/TaskHubSidecarService/<name>". */
#define DT__SIDECAR_SERVICE "/TaskHubSidecarService/"

/* Registers every method of the service on `s`. svc is borrowed for the server's life. */
dt_status dt__sidecar_register(dt__grpc_server *s, dt__sidecar_svc *svc);

/* One registration table entry per file. */
typedef struct dt__sidecar_method {
    const char *name;
    dt__grpc_handler fn;
} dt__sidecar_method;

extern const dt__sidecar_method dt__svc_start_methods[];
extern const dt__sidecar_method dt__svc_status_methods[];
extern const dt__sidecar_method dt__svc_control_methods[];
extern const dt__sidecar_method dt__svc_query_methods[];
extern const dt__sidecar_method dt__svc_purge_methods[];
extern const dt__sidecar_method dt__svc_history_methods[];
extern const dt__sidecar_method dt__svc_work_methods[];
extern const dt__sidecar_method dt__svc_entity_methods[];
extern const dt__sidecar_method dt__svc_unimpl_methods[];

/* ---- svc_common.c ---- */

/* Unpacks the call's request as `desc`; on failure finishes the call INVALID_ARGUMENT and
 * returns NULL. Free with protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *dt__svc_unpack(dt__grpc_call *call, const ProtobufCMessageDescriptor *desc);

/* Packs `m` as the call's one response and finishes it OK (RESOURCE_EXHAUSTED when it exceeds
 * the message limit). */
void dt__svc_reply(dt__grpc_call *call, const ProtobufCMessage *m);

/* Sends `m` as one message of a stream; DT_ECLOSED when the call was cancelled. */
dt_status dt__svc_send(dt__grpc_call *call, const ProtobufCMessage *m);

/* The gRPC code for a client API status. */
dt__grpc_code dt__svc_code(dt_status st);

/* Finishes the call with the code for `st` and the client's error text (prefixed by what). */
void dt__svc_fail(dt__grpc_call *call, dt__sidecar_svc *svc, dt_status st, const char *what);

/* Finishes the call INVALID_ARGUMENT with `msg`. */
void dt__svc_invalid(dt__grpc_call *call, const char *msg);

/* ---- svc_convert.c: client API <-> protocol ---- */

/* ms since the epoch <-> Timestamp (0 <-> unset). */
void dt__svc_ts(int64_t ms, Dtproto__Timestamp *out);
int64_t dt__svc_ts_ms(const Dtproto__Timestamp *ts);

/* A StringValue (from `a`) whose value points at `text` (NUL-terminated); NULL when text is NULL
 * or memory ran out. */
Dtproto__StringValue *dt__svc_sv(dt__arena *a, const void *text);

/* The OrchestrationState of `inst`, built in `a`; its strings point into inst, which must outlive
 * it. payloads: include input, output and custom status. NULL when memory ran out. */
Dtproto__OrchestrationState *dt__svc_state(dt__arena *a, const dt_client_instance *inst,
                                           bool payloads);

/* TaskFailureDetails of `f` (and its inner failures), built in `a`, pointing into f. */
Dtproto__TaskFailureDetails *dt__svc_failure(dt__arena *a, const dt_failure *f);

/* Status enum values are the same numbers on both sides. */
dt_client_runtime_status dt__svc_status_from_pb(Dtproto__OrchestrationStatus s);

#endif
