/* Small protobuf helpers shared by the engine, the worker and the client: timestamps, payloads
 * and new history events, allocated in an arena. */
#include "pb_int.h"

/* Largest |seconds| whose milliseconds, plus or minus 2147 from the nanos, fit an int64. */
#define TS_SECONDS_MAX ((INT64_MAX - 2148) / 1000)

int64_t dt__ts_to_ms(const Dtpb__Timestamp *ts)
{
    if (ts == NULL) {
        return 0;
    }
    /* Timestamps come from outside (work items, status records, query filters) and may hold any
     * int64 seconds and int32 nanos: saturate rather than overflow (nanos / 1e6 is within
     * +-2147, which the bounds leave room for). */
    if (ts->seconds > TS_SECONDS_MAX) {
        return INT64_MAX;
    }
    if (ts->seconds < -TS_SECONDS_MAX) {
        return INT64_MIN;
    }
    return ts->seconds * 1000 + ts->nanos / 1000000;
}

Dtpb__Timestamp *dt__ts_from_ms(dt__arena *arena, int64_t ms)
{
    Dtpb__Timestamp *ts = dt__arena_alloc(arena, sizeof(*ts));
    if (ts == NULL) {
        return NULL;
    }
    dtpb__timestamp__init(ts);
    int64_t sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) { /* floor division so nanos stays in [0, 1e9) as protobuf requires */
        sec -= 1;
        rem += 1000;
    }
    ts->seconds = sec;
    ts->nanos = (int32_t)(rem * 1000000);
    return ts;
}

Dtpb__Payload *dt__emit_payload(dt__arena *arena, const uint8_t *data, size_t len)
{
    Dtpb__Payload *p = dt__arena_alloc(arena, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    dtpb__payload__init(p);
    p->value.len = len;
    p->value.data = dt__arena_memdup(arena, data != NULL ? data : (const uint8_t *)"", len);
    return p->value.data != NULL ? p : NULL;
}

Dtpb__HistoryEvent *dt__emit_new(dt__arena *arena, int32_t event_id, int64_t now_ms)
{
    Dtpb__HistoryEvent *ev = dt__arena_alloc(arena, sizeof(*ev));
    if (ev == NULL) {
        return NULL;
    }
    dtpb__history_event__init(ev);
    ev->event_id = event_id;
    ev->timestamp = dt__ts_from_ms(arena, now_ms);
    return ev->timestamp != NULL ? ev : NULL;
}
