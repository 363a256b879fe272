/*
 * local_act_int.h: activities run in the process of the partition that scheduled them
 * (internal to runtime/worker).
 *
 * An activity request normally makes four trips through JetStream: the request is stored and
 * delivered to an activity thread, its result is stored and delivered to the partition, each
 * with a PubAck and an ack. When the worker that owns the partition serves the activity itself
 * and has a thread free for it, none of that is needed: the partition hands the request (its
 * committed outbox row) to this executor, and the result comes back through the partition's
 * inbox as if it had been fetched. A lone step then costs a thread hand-off each way instead of
 * two broker round trips, and under load the broker stores and routes a fraction of the
 * messages. The same idea as Netherite's local activity execution and Temporal's eager
 * activities; docs/design.md, "Activities run where their orchestration runs".
 *
 * Durability does not change: the request stays in the partition's outbox (SQLite and the log)
 * until the commit that applied its result, so a crash or a lost partition before that leaves the
 * row to its next owner, which publishes it through JetStream (rows listed from the store never
 * run locally, so an activity that kills its process meets max_deliveries as before). Activities
 * still run at least once; a result is recognised by its identity as always.
 *
 * Load: the executor takes a request only while a thread is idle, or, once the activities it ran
 * proved short (EWMA under LOCAL_FAST_US), while its queue holds less than about
 * LOCAL_QUEUE_BUDGET_US of their work per thread; everything else goes through JetStream to the
 * whole fleet. So slow activities spread over all workers and a busy worker does not hoard work.
 *
 * Threads: submit from partition threads; start/stop/destroy from the worker's owner thread.
 */
#ifndef DT_LOCAL_ACT_INT_H
#define DT_LOCAL_ACT_INT_H

#include "activity_int.h"
#include "inbox_int.h"

typedef struct dt__local_acts dt__local_acts;

typedef struct dt__local_acts_config {
    dt_broker *broker;            /* borrowed; outlives the executor */
    const char *hub;              /* copied */
    const dt__activity_def *defs; /* copied */
    size_t n_defs;
    size_t threads; /* 1..DT__ACT_MAX_THREADS */
    size_t max_msg; /* largest result message the hub accepts */
    void (*log)(dt_log_level level, const char *instance_id, const char *msg, void *ctx);
    void *log_ctx;
    /* Borrowed, outlives stop(); NULL: none (runtime/metrics/metrics_int.h). */
    struct dt__metrics *metrics;
    dt__tracer *tracer; /* borrowed, outlives the executor; NULL: runs are not traced */
} dt__local_acts_config;

/* Starts the threads. *out is freed with dt__local_acts_destroy. DT_EINVAL (config, with why in
 * err), DT_ENOMEM. */
dt_status dt__local_acts_start(const dt__local_acts_config *cfg, dt__local_acts **out, char *err,
                               size_t errlen);

/*
 * Takes the activity request of outbox row `row_id` (packed ActivityRequest `data`, copied) sent
 * to `subject`, to run here and hand its result to `in` (retained until then): true. False when
 * this worker does not serve that queue and name, the request does not decode, or no thread
 * would take it soon: the caller publishes the row as usual. A result the inbox refuses (its
 * partition ended) is published to its reply subject instead.
 */
bool dt__local_acts_submit(dt__local_acts *la, dt__inbox *in, int64_t row_id, const char *subject,
                           const uint8_t *data, size_t len);

/* Refuses new requests, hands queued ones back to their partitions unrun (a partition that
 * still runs publishes them), waits up to timeout_ms for running activities (their results go to
 * their partitions if those still run), then abandons the rest (their threads exit when their
 * functions return). Idempotent. */
void dt__local_acts_stop(dt__local_acts *la, int64_t timeout_ms);
/* Stops (timeout 0 unless stopped) and frees; abandoned threads free what is left. NULL ok. */
void dt__local_acts_destroy(dt__local_acts *la);

#endif
