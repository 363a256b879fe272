/*
 * The _init functions of the options structs whose defaults are all zero (the options rule:
 * zero means the default for every field; durabletask/defs.h, worker.h, client.h,
 * orchestration.h, connection.h). Each zeroes the struct and sets struct_size; a program that
 * calls it rather than zeroing by hand stays right if a later release gives a new field a
 * non-zero default. dt_client_options_init and dt_client_hub_info_init, which set non-zero
 * values, are the client's (runtime/client). Then the reading of a caller's struct by its size.
 */
#include <string.h>

#include "common_int.h"

#include "durabletask/client.h"
#include "durabletask/connection.h"
#include "durabletask/orchestration.h"
#include "durabletask/worker.h"

void dt_worker_options_init(dt_worker_options *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
}

void dt_client_start_options_init(dt_client_start_options *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
}

void dt_client_filter_init(dt_client_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->struct_size = sizeof(*f);
}

void dt_nats_security_init(dt_nats_security *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
}

void dt_activity_options_init(dt_activity_options *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
}

void dt_sub_orch_options_init(dt_sub_orch_options *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
}

void dt_retry_policy_init(dt_retry_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->struct_size = sizeof(*p);
    p->max_attempts = 1;
    p->backoff_coefficient = 1.0;
}

/* The caller's struct_size (the struct's first member), read without assuming alignment. */
static size_t caller_size(const void *s, size_t base)
{
    size_t have = 0;
    memcpy(&have, s, sizeof(have));
    return have == 0 ? base : have;
}

dt_status dt__options_read(void *dst, size_t size, const void *src, size_t base)
{
    size_t have = caller_size(src, base);
    if (have < sizeof(size_t)) {
        return DT_EINVAL;
    }
    if (have > size) { /* a newer header: its new fields must be at their defaults */
        const unsigned char *extra = (const unsigned char *)src + size;
        for (size_t i = 0; i < have - size; i++) {
            if (extra[i] != 0) {
                return DT_EVERSION;
            }
        }
        have = size;
    }
    memset(dst, 0, size);
    memcpy(dst, src, have);
    memcpy(dst, &size, sizeof(size));
    return DT_OK;
}

void dt__options_write(void *dst, const void *src, size_t size, size_t base)
{
    size_t have = caller_size(dst, base);
    size_t keep = have;
    if (have < sizeof(size_t)) {
        return;
    }
    memcpy(dst, src, have < size ? have : size);
    memcpy(dst, &keep, sizeof(keep));
}
