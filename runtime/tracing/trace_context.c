/*
 * W3C trace context: traceparent parsing and formatting, tracestate checks, new ids, and the span
 * active on the calling thread (read by log sinks). Parsing never trusts its input: anything that
 * is not exactly a valid traceparent is "no context".
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tracing_int.h"

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1; /* upper case is invalid in a traceparent */
}

/* n bytes from 2n lower-case hex digits; false on any other character. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

bool dt__trace_parse(const char *tp, dt__trace_ctx *out)
{
    if (tp == NULL) {
        return false;
    }
    size_t len = strnlen(tp, DT__TRACEPARENT_LEN + 1);
    if (len < DT__TRACEPARENT_LEN || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') {
        return false;
    }
    uint8_t version;
    dt__trace_ctx c;
    if (!unhex(tp, &version, 1) || version == 0xff || !unhex(tp + 3, c.trace_id, 16) ||
        !unhex(tp + 36, c.span_id, 8) || !unhex(tp + 53, &c.flags, 1)) {
        return false;
    }
    /* Version 00 is exactly 55 bytes; a later version may append "-..." fields. */
    if ((version == 0 && len != DT__TRACEPARENT_LEN) ||
        (len > DT__TRACEPARENT_LEN && tp[DT__TRACEPARENT_LEN] != '-')) {
        return false;
    }
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8)) {
        return false;
    }
    *out = c;
    return true;
}

void dt__trace_hex(const uint8_t *bytes, size_t n, char *buf)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = digits[bytes[i] >> 4];
        buf[2 * i + 1] = digits[bytes[i] & 15];
    }
    buf[2 * n] = '\0';
}

void dt__trace_format(const dt__trace_ctx *c, char buf[DT__TRACEPARENT_BUF])
{
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): the rest follows, then the NUL */
    memcpy(buf, "00-", 3);
    dt__trace_hex(c->trace_id, 16, buf + 3);
    buf[35] = '-';
    dt__trace_hex(c->span_id, 8, buf + 36);
    buf[52] = '-';
    dt__trace_hex(&c->flags, 1, buf + 53);
}

bool dt__tracestate_ok(const char *ts)
{
    if (ts == NULL || ts[0] == '\0') {
        return false;
    }
    size_t i = 0;
    for (; ts[i] != '\0' && i <= DT__TRACESTATE_MAX; i++) {
        if ((unsigned char)ts[i] < 0x20 || (unsigned char)ts[i] > 0x7e) {
            return false;
        }
    }
    return i <= DT__TRACESTATE_MAX;
}

/* Ids come from a per-thread xorshift128+ generator seeded from getrandom() once per thread: one
 * syscall per thread instead of one per span. Trace ids need uniqueness, not secrecy. */
static _Thread_local uint64_t rng[2];
static _Thread_local bool rng_seeded;

static uint64_t next64(void)
{
    if (!rng_seeded) {
        if (getrandom(rng, sizeof(rng), 0) != (ssize_t)sizeof(rng)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rng[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
            rng[1] = (uint64_t)(uintptr_t)&rng ^ 0xBF58476D1CE4E5B9ull;
        }
        rng[0] |= 1; /* never the all-zero state */
        rng_seeded = true;
    }
    uint64_t x = rng[0];
    const uint64_t y = rng[1];
    rng[0] = y;
    x ^= x << 23;
    rng[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return rng[1] + y;
}

/* n random bytes, never all zero (an all-zero id is invalid). */
static void random_id(uint8_t *b, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = next64();
            memcpy(b + i, &v, n - i < 8 ? n - i : 8);
        }
    } while (all_zero(b, n));
}

void dt__trace_new_child(const dt__trace_ctx *parent, dt__trace_ctx *out)
{
    if (parent != NULL) {
        memcpy(out->trace_id, parent->trace_id, sizeof(out->trace_id));
        out->flags = parent->flags;
    } else {
        random_id(out->trace_id, sizeof(out->trace_id));
        out->flags = 1;
    }
    random_id(out->span_id, sizeof(out->span_id));
}

/* The span active on this thread. Thread-local by nature: it describes what this thread runs. */
static _Thread_local dt__trace_ctx current;
static _Thread_local bool have_current;

void dt__trace_set_current(const dt__trace_ctx *c)
{
    have_current = c != NULL;
    if (c != NULL) {
        current = *c;
    }
}

bool dt__trace_current(dt__trace_ctx *out)
{
    if (have_current) {
        *out = current;
    }
    return have_current;
}

int64_t dt__trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
