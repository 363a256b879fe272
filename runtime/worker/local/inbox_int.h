/*
 * inbox_int.h: a partition's inputs, in one place it can wait on (internal to runtime/worker).
 *
 * Two sources feed a partition: its durable consumer in JetStream, and the results of activities
 * this worker ran in-process for it (local_act.c). nats.c's fetch blocks its caller and nothing
 * else can wake it, so the inbox owns a fetcher thread that fetches into a one-batch buffer; the
 * partition thread waits on the inbox for either source (or its timer deadline). Side effect: the
 * next batch is fetched while the partition runs the current one, so a result published while
 * the partition commits finds a pull request waiting instead of waiting for the next one.
 *
 * The fetcher holds at most one batch: it fetches again only once the partition took the last
 * one, so fetched messages never pile up against their ack wait.
 *
 * Threads: dt__inbox_take and dt__inbox_close are called by the partition thread only;
 * dt__inbox_put_local, retain and release by any thread.
 */
#ifndef DT_INBOX_INT_H
#define DT_INBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_broker.h"

/* The outcome of one activity request run in-process, for the partition that sent it. */
typedef struct dt__local_result {
    struct dt__local_result *next;
    int64_t row_id; /* the outbox row that holds the request */
    bool ran;       /* false: not run here; the partition publishes the row instead */
    char *subject;  /* the request's reply subject (dt_alloc'd) */
    char *msg_id;   /* the result's identity (dt_alloc'd; NULL when !ran) */
    uint8_t *data;  /* the packed OrchestrationMessage (dt_alloc'd; NULL when !ran) */
    size_t len;
} dt__local_result;

/* Frees a list of results linked by next (NULL accepted). */
void dt__local_results_free(dt__local_result *r);

typedef struct dt__inbox dt__inbox;

/*
 * Starts the fetcher on consumer `c` (borrowed: it must outlive dt__inbox_close), fetching up to
 * `max` messages at a time with waits of fetch_wait_ms. *out holds one reference (the caller's).
 * DT_ENOMEM.
 */
dt_status dt__inbox_start(dt_broker_consumer *c, size_t max, int64_t fetch_wait_ms,
                          dt__inbox **out);

/*
 * Waits up to timeout_ms for fetched messages or local results, whichever comes first, and
 * moves out what is there: messages into msgs (room for `max` given at start; *n set), local
 * results as a list in *locals (in arrival order; the caller frees them). Returns the status of
 * the fetch that ended the wait (DT_OK also when nothing came): a broker error is reported once
 * per failed fetch.
 */
dt_status dt__inbox_take(dt__inbox *in, int64_t timeout_ms, dt_broker_msg **msgs, size_t *n,
                         dt__local_result **locals);

/* Puts results back in front of the queue (a batch that failed), for the next take. */
void dt__inbox_requeue(dt__inbox *in, dt__local_result *locals);

/* Hands a result to the partition: true, or false when the inbox is closed (the caller keeps
 * r). Any thread. */
bool dt__inbox_put_local(dt__inbox *in, dt__local_result *r);

/* False once dt__inbox_close began (its partition ended). Any thread. */
bool dt__inbox_is_open(dt__inbox *in);

/* References for holders other than the partition (jobs in flight); any thread. */
void dt__inbox_retain(dt__inbox *in);
void dt__inbox_release(dt__inbox *in);

/*
 * Stops the fetcher (within one fetch wait), naks the messages it fetched that were never taken
 * (so the next owner gets them at once), frees queued local results, refuses later ones, and
 * drops the caller's reference. NULL accepted.
 */
void dt__inbox_close(dt__inbox *in);

#endif
