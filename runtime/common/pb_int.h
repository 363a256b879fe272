/*
 * pb_int.h: small helpers for the generated protobuf messages (internal, shared by the engine,
 * the worker and the client). Everything is allocated in the given arena.
 */
#ifndef DT_PB_INT_H
#define DT_PB_INT_H

#include <stdint.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"

/* Milliseconds since the Unix epoch of a Timestamp (0 for NULL), saturated to INT64_MIN/MAX for
 * seconds too far out to convert. */
int64_t dt__ts_to_ms(const Dt__Timestamp *ts);
/* A Timestamp for ms, in `arena`; NULL on out of memory. */
Dt__Timestamp *dt__ts_from_ms(dt__arena *arena, int64_t ms);
/* A Payload holding a copy of data[0..len) in `arena`; NULL on out of memory. */
Dt__Payload *dt__emit_payload(dt__arena *arena, const uint8_t *data, size_t len);
/* A HistoryEvent with event_id and a timestamp, no variant chosen yet; NULL on out of memory. */
Dt__HistoryEvent *dt__emit_new(dt__arena *arena, int32_t event_id, int64_t now_ms);

#endif
