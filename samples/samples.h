/*
 * samples.h: the Durable Task samples, one file per pattern.
 *
 * Each sample is a small library of orchestrators and activities (its `add` function registers
 * them on a worker) plus the client code that starts it, waits for it and checks its outcome (its
 * `run` function). dt-samples-worker (worker_main.c) registers every sample on one worker;
 * dt-samples (runner_main.c) runs them through the C client. The integration tests
 * (tests/integration/samples/) register the same functions on an in-process worker.
 *
 * Payloads are UTF-8 JSON, read with the naive helpers of sample_json.h to keep the samples free
 * of a JSON library.
 *
 * Threads: `add` is called before the worker starts; `run` on the runner's one thread, with a
 * client that thread owns.
 */
#ifndef DT_SAMPLES_H
#define DT_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "durabletask/client.h"
#include "durabletask/worker.h"

/* What a sample's `run` gets. Everything is borrowed. */
typedef struct sample_run {
    dt_client *client;                /* connected to the hub */
    const char *nats_url;             /* for the event-driven sample's own NATS connection */
    const dt_nats_security *security; /* of its connections; NULL: none */
    const char *hub;
    const char *tag;    /* unique per run: instance IDs are "<sample>-<tag>-<n>" */
    int width;          /* activities of the fan-out sample (1..10000) */
    int64_t timeout_ms; /* how long to wait for one instance */
    FILE *out;          /* where outcomes are printed */
    int instances;      /* out: orchestration instances started, sub-orchestrations included */
} sample_run;

typedef struct sample {
    const char *name;  /* the argument of dt-samples ("chaining", "saga", ...) */
    const char *title; /* the pattern, one line */
    /* Registers the sample's orchestrators and activities. */
    dt_status (*add)(dt_worker *w);
    /* Starts the sample's instances, waits for them and prints each outcome; true when every
     * outcome is the expected one. */
    bool (*run)(sample_run *r);
} sample;

extern const sample sample_chaining;
extern const sample sample_fan_out_fan_in;
extern const sample sample_human_interaction;
extern const sample sample_monitor;
extern const sample sample_saga;
extern const sample sample_sub_orchestrations;
extern const sample sample_event_driven;
extern const sample sample_entity_counter;
extern const sample sample_bank_transfer;

/* Every sample, in the order dt-samples runs them; NULL-terminated. */
extern const sample *const samples_all[];

/* The sample called `name`, or NULL. */
const sample *samples_find(const char *name);

/* Registers every sample on `w`; on failure `w`'s errmsg says which name. */
dt_status samples_add_all(dt_worker *w);

#endif
