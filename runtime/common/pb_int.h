/*
 * pb_int.h: small helpers for the generated protobuf messages (internal, shared by the engine,
 * the worker and the client). Everything is allocated in the given arena.
 */
#ifndef DT_PB_INT_H
#define DT_PB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"

/* Milliseconds since the Unix epoch of a Timestamp (0 for NULL), saturated to INT64_MIN/MAX for
 * seconds too far out to convert. */
int64_t dt__ts_to_ms(const Dtpb__Timestamp *ts);
/* A Timestamp for ms, in `arena`; NULL on out of memory. */
Dtpb__Timestamp *dt__ts_from_ms(dt__arena *arena, int64_t ms);
/* A Payload holding a copy of data[0..len) in `arena`; NULL on out of memory. */
Dtpb__Payload *dt__emit_payload(dt__arena *arena, const uint8_t *data, size_t len);
/* A HistoryEvent with event_id and a timestamp, no variant chosen yet; NULL on out of memory. */
Dtpb__HistoryEvent *dt__emit_new(dt__arena *arena, int32_t event_id, int64_t now_ms);

/*
 * Deepest nesting of messages accepted from outside, the message itself counting as 1. The engine
 * writes failure chains of at most 16 TaskFailureDetails, which a message holds at most 4 levels
 * down (QueryResponse, HistoryResponse, HistoryEvent, the event).
 */
#define DT_PB_MAX_DEPTH 64

/*
 * Whether data[0..len) may be handed to protobuf-c as a message of type `d` (pb_wire.c): nested
 * at most DT_PB_MAX_DEPTH deep and without a field numbered 0 in any message it holds. Other
 * malformations pass (protobuf-c refuses them). O(len); recursion bounded by DT_PB_MAX_DEPTH.
 */
bool dt__pb_wire_ok(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len);

/* protobuf_c_message_unpack into arena `a` of input that passes dt__pb_wire_ok (NULL for input
 * that does not, is malformed, or when out of memory). For every protobuf input from outside. */
ProtobufCMessage *dt__pb_unpack(dt__arena *a, const ProtobufCMessageDescriptor *d, size_t len,
                                const uint8_t *data);

#endif
