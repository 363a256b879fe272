/*
 * samples_kit.h: the fixture of the sample tests (test_sample_*.c). Each test gets a hub of its
 * own on the nats-server of scripts/test (DT_TEST_NATS_URL), an in-process worker running every
 * sample (samples_add_all, as dt-samples-worker does) and a client; outcomes are read the way a
 * user reads them, through the client API (status, history, list).
 */
#ifndef DT_SAMPLES_KIT_H
#define DT_SAMPLES_KIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "samples.h"

#define SK_WAIT_MS 30000

typedef struct sk_env {
    const char *url;
    char hub[64];
    char *data_dir;
    dt_client *client;
    dt_worker *worker;
} sk_env;

/* A fresh hub "<prefix>_<random>" (4 partitions, memory storage), a started worker with every
 * sample and a client. Fails the test on error. */
void sk_setup(sk_env *e, const char *prefix);
/* Stops the worker, deletes the hub and the data directory. */
void sk_teardown(sk_env *e);

/* cmocka group set-up / tear-down over a heap sk_env in *state. */
int sk_group_setup(void **state);
int sk_group_teardown(void **state);

/* A sample_run over the env's client, printing to stdout, with a tag unique to the call. */
sample_run sk_run(sk_env *e);

/* Starts orchestration `orch` as `id` with `input` (NULL: none); asserts DT_OK. */
void sk_start(sk_env *e, const char *orch, const char *id, const char *input);
/* Waits for `id` to finish (fails the test after SK_WAIT_MS); caller frees the result with
 * dt_client_instance_free. */
dt_client_instance *sk_wait(sk_env *e, const char *id);
/* Asserts that `inst` COMPLETED with exactly the output `want`, then frees it. */
void sk_expect_output(dt_client_instance *inst, const char *want);

/* The names of the events of `type` ("TaskScheduled", ...) in the history of `id`, in order,
 * joined with ','; the number of them is returned. */
size_t sk_history_names(sk_env *e, const char *id, const char *type, char *out, size_t len);

#endif
