/*
 * sidecar_kit.h: the set-up the sidecar and remote tests share: a hub with its client, and a
 * dt-sidecar started in the test's process.
 */
#ifndef DT_TEST_SIDECAR_KIT_H
#define DT_TEST_SIDECAR_KIT_H

#include "durabletask/client.h"
#include "sidecar.h"

/* Creates a client of `hub` at `url` and the hub itself (2 partitions, memory storage), failing
 * the test on error. The caller deletes the hub and destroys the client. */
dt_client *sidecar_kit_hub(const char *url, const char *hub);

/* Starts the sidecar `o` describes, failing the test with its error, and writes its port as text
 * into `port`. The caller stops it (dt__sidecar_stop). */
dt__sidecar *sidecar_kit_start(const dt__sidecar_options *o, char port[16]);

#endif
