/*
 * base_int.h: what both the broker adapter and the runtime build on (internal, dt__ prefix):
 * the allocator seam and status codes (public: durabletask/alloc.h, durabletask/status.h), the
 * clocks and bounded error formatting. It depends on libc only; runtime/common/common_int.h adds
 * the helpers only the runtime needs. docs/design.md, "Layers and folders".
 */
#ifndef DT_BASE_INT_H
#define DT_BASE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "durabletask/alloc.h"
#include "durabletask/status.h"

#define DT__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t dt__now_ms(void);
/* Monotonic time in milliseconds (CLOCK_MONOTONIC), for deadlines and durations. */
int64_t dt__mono_ms(void);

/* The absolute time `ms` from now on `clock` (CLOCK_REALTIME for pthread_cond_timedwait with a
 * default condition, CLOCK_MONOTONIC for one set to that clock). */
struct timespec dt__deadline_in(clockid_t clock, int64_t ms);

/*
 * Formats into buf (always NUL-terminated when len > 0), truncating silently: for error texts,
 * where a cut message beats none.
 */
void dt__errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads a protobuf varint from [*p, end) and advances *p past it: false when it runs past end or
 * over 64 bits. For the few places that peek into a packed message without decoding it. */
static inline bool dt__varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

#endif
