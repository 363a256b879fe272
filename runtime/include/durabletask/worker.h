/*
 * durabletask/worker.h: a worker process's runtime.
 *
 * A worker connects to NATS, joins the fleet of workers of one task hub, takes a share of the
 * hub's partitions (each owned by one worker at a time, through leases with a fencing epoch) and
 * runs the orchestrations of its partitions and the activities of the task queues it serves. Any
 * number of workers, in any number of processes, share a hub; a killed worker's partitions are
 * taken over by the others once its leases expire.
 *
 * Layer: sits on the replay engine (runtime/engine), the SQLite store (runtime/history) and the
 * broker adapter (broker-adapter).
 *
 * Threads: create, register and start from one thread; dt_worker_stop may be called from any
 * thread (including a signal-handling thread, not a signal handler). Orchestrators run on the
 * partition threads, activities on the activity threads.
 */
#ifndef DURABLETASK_WORKER_H
#define DURABLETASK_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/activity.h"
#include "durabletask/connection.h"
#include "durabletask/defs.h"
#include "durabletask/orchestration.h"
#include "durabletask/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_worker dt_worker;

/* Which orchestration versions this worker runs (compared as dot-separated numbers). */
typedef enum dt_version_match {
    DT_VERSION_MATCH_ANY = 0,              /* every version */
    DT_VERSION_MATCH_STRICT = 1,           /* only its own version */
    DT_VERSION_MATCH_CURRENT_OR_OLDER = 2, /* its own version and older ones */
} dt_version_match;

/* What to do with an instance whose version does not match. */
typedef enum dt_version_failure {
    /* Leave it untouched (its messages are redelivered later), for a worker of the right version
     * to pick up once it owns the partition. */
    DT_VERSION_FAILURE_LEAVE = 0,
    /* Fail the instance with a clear message. */
    DT_VERSION_FAILURE_FAIL = 1,
} dt_version_failure;

/* Receives the worker's own log lines and the orchestrations' dt_log lines (instance_id NULL for
 * the former). Called on worker threads; must be thread-safe. */
typedef void (*dt_worker_log_fn)(dt_log_level level, const char *instance_id, const char *msg,
                                 void *ctx);

/*
 * A ready-made dt_worker_log_fn: writes every line it gets to stderr as
 * "2026-12-07T14:30:00.123Z <ctx>: <level>: [<instance_id>: ]<msg>" (UTC, milliseconds), where
 * ctx is a program name (const char *) or NULL for "durabletask". Thread-safe. A worker without
 * a log callback sends its warnings and errors here; wrap it to filter levels.
 */
DT_API void dt_worker_log_stderr(dt_log_level level, const char *instance_id, const char *msg,
                                 void *ctx);
/*
 * For log callbacks: when a traced episode or activity runs on the calling thread, writes its
 * trace id (32 hex digits) and span id (16) NUL-terminated and returns true; false otherwise.
 * dt_worker_log_stderr appends them to its lines as " trace_id=... span_id=...".
 */
DT_API bool dt_log_trace_ids(char trace_id[33], char span_id[17]);

/* The options of a worker. Zero means the default for every field (the defaults are given
 * below): start from dt_worker_options_init (or a zeroed struct), then set what differs, so
 * that a field a later release adds starts at its default. */
typedef struct dt_worker_options {
    size_t struct_size;   /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const char *nats_url; /* NULL: nats://127.0.0.1:4222 (comma-separated list allowed) */
    /* Credentials and TLS of the NATS connection (durabletask/connection.h); copied with its
     * strings. Zeroed: none. */
    dt_nats_security security;
    /* How often dt_worker_start tries to reach a NATS server before it fails with DT_EBROKER;
     * 0: no limit (it waits until a server is up, or dt_worker_stop). Waits between attempts grow
     * from 0.1 s to 5 s (as reconnects after a disconnect do), so 20 attempts take about a
     * minute. Refused credentials and TLS failures (DT_EAUTH) are not retried. */
    uint32_t connect_attempts;
    const char *hub; /* required: the task hub (created with defaults when missing) */
    /* required: the partitions' local SQLite views go in <data_dir>/<hub>/. Each worker may have
     * its own (on its own host, empty or not): the hub's truth is each partition's log in
     * JetStream, and a worker that takes a partition over rebuilds its file from the log when the
     * file is missing or not current. Workers on one host may also share a directory. */
    const char *data_dir;
    const char *worker_id;   /* NULL: generated (host, process, random) */
    size_t activity_threads; /* activities run at once per task queue; 0: 4 */
    size_t cache_capacity;   /* suspended orchestrations kept in memory per partition; 0: 1000 */
    size_t fetch_batch;      /* messages fetched at once per partition; 0: 256 */
    bool sqlite_full_sync;   /* SQLite synchronous=FULL (default NORMAL) */
    int64_t activity_max_deliveries; /* an activity redelivered this often (it crashed or hung its
                                        worker each time) fails; 0: 5 */
    int64_t activity_timeout_ms;     /* without result or heartbeat, redelivered; 0: 60000 */
    /* An event (raise, terminate, a child's result, ...) that arrives before its instance's
     * start is kept in the partition and applied when the start arrives. Once it has waited
     * this long and the partition has no backlog left (its start is not on its way), it is
     * dead-lettered with the reason. 0: 3,600,000 (one hour). */
    int64_t parked_event_ttl_ms;
    /* How often each partition applies the hub's retention policy (dt_client_retention_set):
     * instances that finished longer ago than it allows are purged. 0: 60,000 (one minute). */
    int64_t retention_check_ms;
    /* A snapshot of a partition (its store file, stored in the hub so that a new owner restores
     * it instead of replaying the whole log; the log below it is purged) is taken by the owner
     * once this many log entries, or this many bytes of them, were appended since the last one.
     * 0: 5,000 entries, 64 MiB. */
    uint64_t snapshot_entries;
    uint64_t snapshot_bytes;
    /* Activity results bound for the same partition travel in one message (an
     * OrchestrationBatch, header Dt-Batch) instead of one each: fewer messages for nats-server,
     * whose CPU per message is the wall under load (docs/performance.md: hello5 +28%, broker CPU
     * per orchestration -27%). Every worker of this release reads such messages whatever this
     * says; workers of older releases do not: turn it on once the whole fleet runs this one.
     * Default false. */
    bool batch_activity_results;
    /* Activities this worker serves are run in-process for the partitions it owns when a thread
     * is free (activity_threads of them), instead of through the task queue: no broker round
     * trips for the request and its result (docs/design.md, "Activities run where their
     * orchestration runs"). The rest, and everything when this is set, goes through JetStream to
     * the whole fleet. Default false (in-process runs on). */
    bool disable_local_activities;
    /* Coalesce network writes for 1 ms (nats.c's default) instead of sending at once: a little
     * less CPU under full load, about 1 ms more latency per hop. Default false. */
    bool coalesce_writes;
    const char *version; /* this worker's version; NULL: none */
    dt_version_match version_match;
    dt_version_failure version_failure;
    dt_worker_log_fn log; /* NULL: warnings and errors go to dt_worker_log_stderr */
    void *log_ctx;
    /* Prometheus metrics (docs/operations.md, "Metrics"): "host:port", "[ipv6]:port", ":port"
     * (every IPv4 interface) or "port" serves them at http://<addr>/metrics (port 0: a free
     * one, durabletask/metrics.h tells which); "" keeps them for dt_worker_metrics_render only.
     * A bad address or a port in use fails dt_worker_start. NULL (default): no metrics. */
    const char *metrics_addr;
} dt_worker_options;

/*
 * Creates a worker (nothing runs until dt_worker_start). `o` and its strings are copied. On DT_OK
 * *out is the worker; free with dt_worker_destroy. On failure errbuf (may be NULL) says why.
 */
DT_API dt_status dt_worker_create(const dt_worker_options *o, dt_worker **out, char *errbuf,
                                  size_t errlen);

/* Sets every field of `o` (borrowed) to its default: zero. */
DT_API void dt_worker_options_init(dt_worker_options *o);

/* Registers an orchestrator (name copied; `fn` and `user_data` borrowed for the worker's life).
 * DT_EEXIST when the name is taken, DT_EINVAL for a bad name, DT_ESTATE after start. */
DT_API dt_status dt_worker_add_orchestrator(dt_worker *w, const char *name, dt_orchestrator_fn fn,
                                            void *user_data);

/* Registers an activity served on `task_queue` (NULL: "default"). Same rules as above. */
DT_API dt_status dt_worker_add_activity(dt_worker *w, const char *name, const char *task_queue,
                                        dt_activity_fn fn, void *user_data);

/*
 * Connects, joins the fleet and starts the threads. Returns once running. While no NATS server is
 * reachable it waits and retries (see connect_attempts), logging one line per failed attempt;
 * dt_worker_stop from another thread ends the wait, and start then fails with DT_ECLOSED.
 */
DT_API dt_status dt_worker_start(dt_worker *w);

/*
 * Stops gracefully: no new work is taken, running episodes and activities finish, leases are
 * released so other workers take over at once. Waits up to timeout_ms for activities (those still
 * running are abandoned and will be redelivered). Idempotent.
 */
DT_API void dt_worker_stop(dt_worker *w, int64_t timeout_ms);

/* Stops (if running) and frees. Accepts NULL. */
DT_API void dt_worker_destroy(dt_worker *w);

/* Text of the last failure of a call on `w`. */
DT_API const char *dt_worker_errmsg(const dt_worker *w);

/* The worker's ID (as in the leases bucket). */
DT_API const char *dt_worker_id(const dt_worker *w);

#ifdef __cplusplus
}
#endif
#endif
