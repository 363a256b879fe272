/*
 * fake_sdk.h: a Durable Task SDK worker written in C for the tests of runtime/remote. It speaks
 * the protocol's packed messages through remote_int.h exactly as the gRPC transport relays them
 * (WorkItem in, OrchestratorResponse / ActivityResponse out), without a network. Its
 * orchestrations are small state machines that read the request's past and new events, as an
 * SDK's replay does, and number their actions 0, 1, 2... across the execution as the SDKs do.
 */
#ifndef DT_FAKE_SDK_H
#define DT_FAKE_SDK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "remote/remote_int.h"

typedef struct fake_sdk {
    dt__remote *r;
    dt__remote_conn *conn;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool woken;
    atomic_bool quit;
    /* Knobs (set by a test before it starts the instance): */
    atomic_int drop_orch; /* take this many orchestration items, then disconnect and reconnect */
    atomic_int drop_act;  /* the same for activity items */
    atomic_bool garbage_first; /* answer the next orchestration item with junk bytes first */
    atomic_int abandon_orch;   /* abandon (AbandonTaskOrchestratorWorkItem) this many items */
    /* Counters: */
    atomic_int orch_items, act_items, drops;
    atomic_int sdk_hello_runs;  /* runs of the SDK activity "SdkHello" */
    atomic_int garbage_refused; /* junk answers the remote refused with DT_EINVAL */
    atomic_int abandoned;       /* items abandoned (the remote said DT_OK) */
} fake_sdk;

/* Connects to r and starts the worker's thread. */
void fake_sdk_start(fake_sdk *f, dt__remote *r);
/* Stops the thread and disconnects. */
void fake_sdk_stop(fake_sdk *f);

#endif
