/*
 * dash_kit.h: what the dashboard's tests share. A fresh hub on the nats-server of scripts/test,
 * an in-process worker running the orchestrations below, the dashboard server in-process on a
 * free loopback port, and a small HTTP/1.1 client (one request per connection) that parses
 * JSON replies with jansson.
 *
 * Orchestrations (their histories hold every kind of timeline bar):
 *   dash_tour   activity dash_work (120 ms), a 250 ms timer, sub-orchestration dash_child, a
 *               wait for event "go"; output "toured"
 *   dash_child  activity dash_work (60 ms); output the activity's
 *   dash_wait   waits for event "never" (stays RUNNING until terminated)
 *   dash_fail   activity dash_boom, which fails (the instance FAILS with a failure chain)
 */
#ifndef DT_DASH_KIT_H
#define DT_DASH_KIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dashboard.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

typedef struct dk_env {
    wk_env wk;
    dt_worker *w;
    dt_client *c;
    dt_dashboard *d;
    uint16_t port;
} dk_env;

/* Sets the env up (token NULL: none) and waits until the worker serves every partition. */
void dk_setup(dk_env *env, const char *prefix, const char *token);
void dk_teardown(dk_env *env);

/* Starts `name` as instance `id` (input may be NULL); fails the test on error. */
void dk_schedule(dk_env *env, const char *name, const char *id, const char *input);
/* Waits until the instance has runtime status `status` (a dt_client_runtime_status). */
void dk_wait_status(dk_env *env, const char *id, int status, int64_t timeout_ms);

/* One HTTP exchange. `body` may be NULL; `auth` is a whole Authorization value or NULL.
 * Returns the status code (0 when the connection failed) and, when out_body is not NULL, the
 * reply body parsed as JSON (NULL when it is not JSON; caller json_decref's). The raw reply
 * body goes to raw (may be NULL, rawlen bytes, NUL-terminated). */
int dk_http(const dk_env *env, const char *method, const char *path, const char *body,
            const char *auth, json_t **out_body, char *raw, size_t rawlen);

/* Sends `bytes` verbatim (a malformed request) and returns the status code of the reply, 0
 * when the server closed without one or sent nothing within 3 s. */
int dk_http_raw(const dk_env *env, const char *bytes, size_t len);

#endif
