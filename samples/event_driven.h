/*
 * event_driven.h: the service side of the event-driven sample (event_driven.c), shared with its
 * integration test.
 */
#ifndef DT_SAMPLE_EVENT_DRIVEN_H
#define DT_SAMPLE_EVENT_DRIVEN_H

#include <stddef.h>
#include <stdint.h>

#include "durabletask/client.h"

/*
 * Plays a sign-up service: with its own NATS connection (plain nats.c: no durabletask library, no
 * protobuf to send), publishes ONE message to dt.<hub>.in.start.welcome_user that starts instance
 * `instance_id` with `input` (a JSON text) and names `result_subject` in Dt-Result-Subject, then
 * waits up to timeout_ms for the worker to publish the instance's final InstanceStatus there.
 * Returns 0 and *out (decoded with dt_client_instance_decode; free with dt_client_instance_free),
 * or -1 with the reason in err.
 */
int welcome_service_request(const char *nats_url, const char *hub, const char *instance_id,
                            const char *input, const char *result_subject, int64_t timeout_ms,
                            dt_client_instance **out, char *err, size_t errlen);

#endif
