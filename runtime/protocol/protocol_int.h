/*
 * protocol_int.h: the wire protocol between clients, workers and other NATS clients (internal,
 * shared by runtime/worker, runtime/client and dtctl). docs/protocol.md is the same contract
 * written for users of other languages; change both together.
 *
 *   dt.<hub>.orch.<p>            OrchestrationMessage for instances of partition p
 *   dt.<hub>.act.<queue>         ActivityRequest for task queue <queue>
 *   dt.<hub>.in.start.<name>     publish-to-start: body = input, headers below
 *   dt.<hub>.in.raise.<event>    raise an event: body = data, Dt-Instance-Id required
 *   dt.<hub>.in.terminate|suspend|resume   body = reason, Dt-Instance-Id required
 *   dt.<hub>.in.signal.<entity>  signal an entity: body = input, Dt-Entity-Key, Dt-Operation
 *   dt.<hub>.query.<p>           QueryRequest / QueryResponse (core request/reply)
 *   dt.<hub>.dead.<kind>         dead letters: the original body, with Dt-Reason headers
 *
 * The partition of an instance is FNV-1a (32 bit) of its ID's bytes modulo the hub's partition
 * count. Message identities (Nats-Msg-Id, also OrchestrationMessage.dedupe_id) are derived from
 * what the message means, so a re-publish after a crash is dropped by JetStream and, past its
 * duplicate window, by the worker's applied-identity table.
 */
#ifndef DT_PROTOCOL_INT_H
#define DT_PROTOCOL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "pb_int.h"
#include "dt_history.pb-c.h"
#include "dt_work.pb-c.h"
#include "durabletask/status.h"

/* Headers of publish-to-start and the other ingress requests. */
#define DT_HDR_INSTANCE_ID    "Dt-Instance-Id"
#define DT_HDR_VERSION        "Dt-Version"
#define DT_HDR_RESULT_SUBJECT "Dt-Result-Subject"
#define DT_HDR_REUSE          "Dt-Reuse-Policy" /* "error" (default), "replace-if-finished", "terminate" */
#define DT_HDR_START_AT       "Dt-Start-At" /* scheduled start, ms since the Unix epoch */
#define DT_HDR_MSG_ID         "Nats-Msg-Id"
/* Headers of entity signals (dt.<hub>.in.signal.<entity name>). */
#define DT_HDR_ENTITY_KEY "Dt-Entity-Key"
#define DT_HDR_OPERATION  "Dt-Operation"
#define DT_HDR_SIGNAL_AT  "Dt-Signal-At" /* deliver at, ms since the Unix epoch */
/* On dt.<hub>.orch.<p>: the body is an OrchestrationBatch of this many members. */
#define DT_HDR_BATCH "Dt-Batch"
/* Headers of dead letters. */
#define DT_HDR_REASON           "Dt-Reason"
#define DT_HDR_ORIGINAL_SUBJECT "Dt-Original-Subject"

/* Longest instance ID in bytes, and the characters allowed: printable ASCII except space. */
#define DT_INSTANCE_ID_MAX 256
/* Longest orchestrator / activity / event name (they become subject tokens). */
#define DT_NAME_MAX 128

/* True if `id` is 1..DT_INSTANCE_ID_MAX printable, non-space ASCII characters. */
bool dt__instance_id_valid(const char *id);

/* True for the runtime statuses after which an instance changes no more (COMPLETED, FAILED,
 * TERMINATED, CANCELED): the one definition worker, query service and client share. */
bool dt__status_finished(int32_t runtime_status);

/* The partition of instance `id` among `partitions` (> 0). */
uint32_t dt__partition_of(const char *id, uint32_t partitions);

/*
 * The status-bucket key of an instance: KV keys allow only [-/_=.A-Za-z0-9], so every other byte,
 * and '=' and '.', is written as "=XX" (uppercase hex). Writes into buf (DT_ETOOLARGE if short;
 * 3 * DT_INSTANCE_ID_MAX + 1 always suffices).
 */
dt_status dt__status_key(const char *id, char *buf, size_t len);
/* The inverse of dt__status_key; DT_EINVAL on a malformed key. */
dt_status dt__status_key_decode(const char *key, char *buf, size_t len);

/* A UUID (36 chars + NUL) derived from two strings by a fixed hash: the same inputs give the
 * same ID on every machine (for IDs that must survive a redelivery, e.g. of an ingress start). */
void dt__derived_uuid(const char *a, const char *b, char out[37]);
/* A random UUID v4 (from the OS's random source). */
void dt__random_uuid(char out[37]);

/* Formats a message identity "<a>/<b>/<kind>/<n>" into buf (truncation is an error). */
dt_status dt__msg_id(char *buf, size_t len, const char *instance_id, const char *execution_id,
                     const char *kind, int64_t n);

/*
 * Packs a protobuf message into arena memory. Returns NULL on out of memory. *out_len receives
 * the length.
 */
uint8_t *dt__pack(dt__arena *a, const ProtobufCMessage *m, size_t *out_len);

/* Builds an OrchestrationMessage around `ev` (borrowed; pointers are shared, not copied). */
void dt__orch_msg_init(Dtpb__OrchestrationMessage *m, const char *instance_id,
                       const char *execution_id, Dtpb__HistoryEvent *ev, const char *dedupe_id);

/* Decodes an OrchestrationMessage into arena memory; DT_EDECODE when malformed or incomplete
 * (no instance ID, no event, no dedupe ID). */
dt_status dt__orch_msg_decode(dt__arena *a, const void *data, size_t len,
                              Dtpb__OrchestrationMessage **out);

/* Decodes an OrchestrationBatch (its members still packed) into arena memory; DT_EDECODE when
 * malformed or empty. The members are checked one by one with dt__orch_msg_decode. */
dt_status dt__orch_batch_decode(dt__arena *a, const void *data, size_t len,
                                Dtpb__OrchestrationBatch **out);

/* ---- retention.c: the hub's retention policy (META key DT__RETENTION_KEY) ---- */
#define DT__RETENTION_KEY "retention"
/* How long an instance that ended in each way is kept after it finished, in ms; 0: forever.
 * terminated_ms covers canceled instances too. */
typedef struct dt__retention {
    int64_t completed_ms, failed_ms, terminated_ms;
} dt__retention;
/* The record's JSON (unknown keys ignored, missing ones 0). DT_EDECODE when it is not that. */
dt_status dt__retention_decode(const void *data, size_t len, dt__retention *out);
/* *out is dt_alloc'd JSON of *out_len bytes (NUL-terminated). DT_EINVAL for a negative age. */
dt_status dt__retention_encode(const dt__retention *r, char **out, size_t *out_len);

#endif
