/*
 * event_driven.h: the service side of the event-driven sample (event_driven.c), shared with its
 * integration test.
 */
#ifndef DT_SAMPLE_EVENT_DRIVEN_H
#define DT_SAMPLE_EVENT_DRIVEN_H

#include <stddef.h>
#include <stdint.h>

#include "dt_work.pb-c.h"

/*
 * Plays a sign-up service: with its own NATS connection (plain nats.c: no durabletask library, no
 * protobuf to send), publishes ONE message to dt.<hub>.in.start.welcome_user that starts instance
 * `instance_id` with `input` (a JSON text) and names `result_subject` in Dt-Result-Subject, then
 * waits up to timeout_ms for the worker to publish the instance's final InstanceStatus there.
 * Returns 0 and *out (free with dt__instance_status__free_unpacked(*out, NULL)), or -1 with the
 * reason in err.
 */
int welcome_service_request(const char *nats_url, const char *hub, const char *instance_id,
                            const char *input, const char *result_subject, int64_t timeout_ms,
                            Dt__InstanceStatus **out, char *err, size_t errlen);

#endif
