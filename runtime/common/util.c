/* Time formatting, integer parsing and the protobuf-c allocator bridge shared by all modules. */
#include "common_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

const char *dt__iso8601_ms(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        s -= 1;
        frac += 1000;
    }
    struct tm tm;
    char date[24];
    if (gmtime_r(&s, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    snprintf(buf, len, "%s.%03dZ", date, frac);
    return buf;
}

bool dt__parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static void *pb_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return dt_alloc(size);
}

static void pb_free(void *ctx, void *ptr)
{
    (void)ctx;
    dt_free(ptr);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

ProtobufCAllocator *dt__pb_allocator(void)
{
    return &pb_allocator;
}
