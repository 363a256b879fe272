/*
 * fuzz_orch.h: the orchestrators that the engine fuzz target replays and that fuzz_seeds runs (in
 * the engine test harness) to record real histories for the seed corpora. Between them they take
 * every kind of action: activities (one retried, one failing), a sub-orchestration, timers, event
 * waits with and without timeout, when_all / when_any, send-event, publish, custom status, GUIDs
 * and continue-as-new.
 */
#ifndef DT_FUZZ_ORCH_H
#define DT_FUZZ_ORCH_H

#include "durabletask/orchestration.h"

/* Registered as FUZZ_ORCH_MAIN: input "again" makes its first execution continue as new. */
#define FUZZ_ORCH_MAIN  "fuzz_main"
#define FUZZ_ORCH_CHILD "fuzz_child"

void fuzz_orch_main(dt_orch_ctx *ctx, void *user_data);
void fuzz_orch_child(dt_orch_ctx *ctx, void *user_data);

#endif
