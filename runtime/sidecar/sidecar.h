/*
 * sidecar.h: dt-sidecar as a whole, startable in-process (internal; runtime/sidecar).
 *
 * A sidecar serves TaskHubSidecarService for one hub: a dt_client for the client RPCs, and a
 * dt_worker with a remote attached (runtime/remote) whose orchestrations and activities run in
 * the SDK workers connected through GetWorkItems. main.c is the dt-sidecar program around it;
 * tests start one in their own process.
 */
#ifndef DT_SIDECAR_H
#define DT_SIDECAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/status.h"
#include "durabletask/worker.h"

typedef struct dt__sidecar dt__sidecar;

typedef struct dt__sidecar_options {
    const char *nats_url; /* NULL: nats://127.0.0.1:4222 */
    const char *hub;      /* required */
    const char *listen;   /* NULL: 127.0.0.1:4001 ("host:port"; port 0: any free one) */
    /* The worker's partition stores (required unless client_only). */
    const char *data_dir;
    /* Activity names the SDK workers serve (on the "default" task queue). Borrowed (copied). */
    const char *const *activities;
    size_t n_activities;
    /* For a process that embeds the sidecar: called with its worker before it starts, to
     * register C orchestrations and activities that run next to the SDK workers' (NULL: none). */
    dt_status (*setup)(dt_worker *w, void *ctx);
    void *setup_ctx;
    /* No worker: only the client RPCs (GetWorkItems answers UNAVAILABLE). */
    bool client_only;
    size_t max_message;     /* 0: 4 MiB (the SDKs' default receive limit) */
    int64_t health_ping_ms; /* idle GetWorkItems streams get a HealthPing; 0: 15000 */
    int64_t wait_slice_ms;  /* waits notice a cancelled call within this; 0: 2000 */
} dt__sidecar_options;

/* Connects, starts the worker (unless client_only) and serves. On failure errbuf says why. */
dt_status dt__sidecar_start(const dt__sidecar_options *o, dt__sidecar **out, char *errbuf,
                            size_t errlen);

/* The port it listens on. */
int dt__sidecar_port(const dt__sidecar *s);

/* Stops serving (open calls are cancelled, SDK workers' in-flight items redelivered), stops the
 * worker and frees everything. Accepts NULL. */
void dt__sidecar_stop(dt__sidecar *s);

#endif
