/*
 * cluster_work.h: the orchestrations of the cluster test, and what they must leave behind.
 *
 * Instance c-<i> runs kind i % CW_KINDS with input "<i>":
 *   chain   three activities in sequence; after the first and the second, one durable publish
 *   fanout  four activities at once, summed
 *   timer   a 1 s durable timer, then an activity
 *   event   waits for the event "go" (raised once by the test, carrying 2i), then an activity
 * Each ends with one durable publish and a deterministic output (cw_expected). A durable publish
 * is a state transition's side effect: its body "c-<i>.<step>" (step 0 at the end) must reach the
 * side-effect stream exactly once. Every activity counts its runs per (instance, slot) in memory:
 * each must have run at least once.
 *
 * Registrations are thread-safe (the counters are atomic): any number of in-process workers may
 * serve them at once.
 */
#ifndef DT_CLUSTER_WORK_H
#define DT_CLUSTER_WORK_H

#include "durabletask/worker.h"

#define CW_KINDS     4
#define CW_MAX_SLOTS 4 /* activities per instance, at most */
#define CW_MAX_STEPS 3 /* durable publishes per instance, at most */

/* Prepares the counters for n instances and the side-effect subject (copied). Call once, before
 * any worker starts. */
void cw_init(int n, const char *fx_subject);
/* Frees the counters. */
void cw_fini(void);

/* Registers the orchestrators and the activity on w. */
void cw_register(dt_worker *w);

/* The name of instance i's orchestrator ("chain", ...). */
const char *cw_kind(int i);
/* The output instance i must complete with. */
long cw_expected(int i);
/* Activities (slots) and durable publishes (steps) instance i makes. */
int cw_slots(int i);
int cw_steps(int i);
/* How often the activity of instance i's slot ran. */
int cw_runs(int i, int slot);

#endif
