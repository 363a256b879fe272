/*
 * worker_kit.h: helpers for end-to-end worker tests against the real nats-server of scripts/test.
 *
 * Requests go in the way any NATS client sends them (a JetStream publish to dt.<hub>.in.*, no
 * library helper), and outcomes are read from the status bucket the workers write, so these
 * tests exercise the public protocol end to end.
 */
#ifndef DT_WORKER_KIT_H
#define DT_WORKER_KIT_H

#include <stdbool.h>
#include <stdint.h>

#include "dt_broker.h"
#include "dt_work.pb-c.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"

typedef struct wk_env {
    dt_broker *broker;
    char hub[64];
    char *data_dir;
    const char *url;
} wk_env;

/* Connects and creates a fresh hub "<prefix>_<random>" with P partitions and the lease TTL.
 * Fails the test on error. */
void wk_setup(wk_env *env, const char *prefix, uint32_t partitions, int64_t lease_ttl_ms);
/* Deletes the hub and the data dir, closes the connection. */
void wk_teardown(wk_env *env);

/* Worker options for this env (data dir, hub, url), quiet log unless DT_TEST_VERBOSE is set. */
dt_worker_options wk_options(const wk_env *env);

/* Publish-to-start: dt.<hub>.in.start.<name> with Dt-Instance-Id, body = input (may be NULL).
 * extra_header/value (may be NULL) add one more header. */
void wk_start(wk_env *env, const char *name, const char *instance_id, const char *input,
              const char *extra_header, const char *extra_value);
/* dt.<hub>.in.raise.<event> with Dt-Instance-Id. */
void wk_raise(wk_env *env, const char *instance_id, const char *event, const char *data);
/* dt.<hub>.in.<kind> (terminate, suspend, resume) with Dt-Instance-Id. */
void wk_control(wk_env *env, const char *kind, const char *instance_id, const char *reason);

/* Waits until the instance's status record shows a finished status (completed, failed,
 * terminated) or `want` when want >= 0; returns the record (caller frees with
 * dtpb__instance_status__free_unpacked(s, NULL)) or NULL on timeout. */
Dtpb__InstanceStatus *wk_wait(wk_env *env, const char *instance_id, int want, int64_t timeout_ms);

/* Reads the hub's dead letters through the durable consumer `durable` until `want` carrying a
 * Dt-Reason arrived or 10 s passed; copies their reasons into reasons[0..) (256 bytes each) and
 * returns how many arrived. */
int wk_dead_letters(wk_env *env, const char *durable, int want, char reasons[][256]);

/* A client of env's hub (fails the test on error); free with dt_client_destroy. */
dt_client *wk_client(const wk_env *env);

/* Waits until the instance has `status` (a final status, or -1 for any: until it finished, and
 * then compares), and, when output is not NULL, checks its output; fails the test otherwise. */
void wk_expect(wk_env *env, const char *id, int status, const char *output);

/* A start published straight to a partition subject, as the outbox or a hand-made client would
 * (no Nats-Msg-Id: JetStream does not drop a repeat). */
typedef struct wk_direct_start {
    const char *instance_id, *execution_id, *dedupe_id, *name;
    const char *input; /* NULL: none */
    bool continued_as_new;
    int reuse_policy; /* an InstanceIdReusePolicy value */
    int partition;    /* -1: the instance's own */
} wk_direct_start;
void wk_publish_start(wk_env *env, uint32_t partitions, const wk_direct_start *s);
/* An EventRaised `name` (data may be NULL) with identity `dedupe`, published the same way. */
void wk_publish_raise(wk_env *env, uint32_t partitions, const char *instance_id, const char *name,
                      const char *data, const char *dedupe);

/* An ExecutionRewound (reason may be NULL) with identity `dedupe`, published the same way. */
void wk_publish_rewind(wk_env *env, uint32_t partitions, const char *instance_id,
                       const char *reason, const char *dedupe);

/* The activity "hello" of several tests: returns "Hello <input>". */
void wk_act_hello(dt_activity_ctx *ctx, void *ud);

/* The output of a status record as a C string ("" when none); lives with the record. */
const char *wk_output(const Dtpb__InstanceStatus *s);

#endif
