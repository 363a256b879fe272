/*
 * The _init functions of the options structs whose defaults are all zero (the options rule:
 * zero means the default for every field; durabletask/worker.h, client.h, orchestration.h,
 * connection.h). Each is one memset; a program that calls it rather than zeroing by hand stays
 * right if a later release gives a new field a non-zero default. dt_client_options_init and
 * dt_client_hub_info_init, which set non-zero values, are the client's (runtime/client).
 */
#include <string.h>

#include "durabletask/client.h"
#include "durabletask/connection.h"
#include "durabletask/orchestration.h"
#include "durabletask/worker.h"

void dt_worker_options_init(dt_worker_options *o)
{
    memset(o, 0, sizeof(*o));
}

void dt_client_start_options_init(dt_client_start_options *o)
{
    memset(o, 0, sizeof(*o));
}

void dt_client_filter_init(dt_client_filter *f)
{
    memset(f, 0, sizeof(*f));
}

void dt_nats_security_init(dt_nats_security *s)
{
    memset(s, 0, sizeof(*s));
}

void dt_activity_options_init(dt_activity_options *o)
{
    memset(o, 0, sizeof(*o));
}

void dt_sub_orch_options_init(dt_sub_orch_options *o)
{
    memset(o, 0, sizeof(*o));
}

void dt_retry_policy_init(dt_retry_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->max_attempts = 1;
    p->backoff_coefficient = 1.0;
}
