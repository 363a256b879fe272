/*
 * sample_client.h: what the samples' `run` functions share on the client side: instance IDs,
 * starting an instance, waiting for it while printing its outcome, and the throughput burst.
 */
#ifndef DT_SAMPLE_CLIENT_H
#define DT_SAMPLE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "samples.h"

/* Writes the instance ID "<prefix>-<tag>-<n>" into out (DT_CLIENT_ID_BUF bytes). */
void sample_id(const sample_run *r, const char *prefix, int n, char out[DT_CLIENT_ID_BUF]);

/* Starts orchestration `orch` as instance `id` with `input` (NULL: none) and counts it in
 * r->instances. On failure prints why and returns false. */
bool sample_start(sample_run *r, const char *orch, const char *id, const char *input);

/* Waits (up to r->timeout_ms) for `id` to finish and prints one line: ID, status, run time and
 * output (or failure). True when it COMPLETED with the output `want` (NULL: any output); else
 * also prints what was expected. */
bool sample_check(sample_run *r, const char *id, const char *want);

/* Prints the outcome line of `inst` (a status as above). */
void sample_print(sample_run *r, const dt_client_instance *inst);

/* Starts n hello_cities instances at once from a few threads (one client each), waits for them
 * and prints the throughput. True when all completed. (burst.c) */
bool sample_burst(sample_run *r, long n);

#endif
