/*
 * durabletask/client.h: the client API of a task hub.
 *
 * A client starts orchestration instances, raises events to them, terminates, suspends and
 * resumes them, reads their status (and waits for them to start or finish), lists and queries
 * instances, reads their history and purges finished ones. It also creates, inspects and deletes
 * task hubs. It needs no worker of its own and runs on any host that reaches the NATS servers.
 *
 * Layer: sits on the broker adapter (NATS JetStream) and the wire protocol (docs/protocol.md).
 *  - start, raise, terminate, suspend and resume publish one message each to the instance's
 *    partition stream and return once JetStream has stored it (PubAck): an accepted request is
 *    never lost, and the worker that owns the partition applies it exactly once;
 *  - status and wait read the hub's status bucket, which workers write on every status change
 *    (waiting is a KV watch: it wakes when the record changes, with no polling);
 *  - list, history and purge ask the workers that own the partitions (NATS request/reply), so
 *    they need a running worker for every partition they touch (DT_EBUSY otherwise).
 *
 * Conventions: fallible functions return dt_status (DT_OK = 0) and write out_* parameters only
 * on DT_OK; after a failure dt_client_errmsg() says what went wrong. Pointer parameters are
 * borrowed for the duration of the call unless the declaration says otherwise. Times are
 * milliseconds since the Unix epoch; durations are milliseconds. Payloads (inputs, outputs,
 * event data, custom status) are opaque byte strings, UTF-8 JSON by convention; every payload
 * the client hands out is followed by a NUL byte that its length does not count.
 * Options structs (dt_client_options, dt_client_start_options, dt_client_filter) follow one rule:
 * zero means the default for every field, and each has an _init function that sets the
 * defaults; start from it (or a zeroed struct) so that a field a later release adds starts at
 * its default. dt_client_hub_info holds a hub's settings, not options: zero is not its default
 * (0 partitions is DT_EINVAL); start from dt_client_hub_info_init.
 *
 * Threads: a dt_client is thread-safe: any number of threads may start, signal, read, wait and
 * query through one client at once, and share its connection (one client per process is the
 * intended use: its waits share one subscription, see dt_client_wait_for_completion). Two
 * exceptions: dt_client_hub_create and dt_client_hub_delete must not run while other calls on
 * the same client do, and dt_client_destroy may overlap only waits (below). When threads share a
 * client, dt_client_errmsg() may return another thread's text: use dt_client_errmsg_copy().
 * Result objects (dt_client_instance, dt_client_page, dt_client_history) are independent of the
 * client: they may be read on any thread and outlive it.
 */
#ifndef DURABLETASK_CLIENT_H
#define DURABLETASK_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/connection.h"
#include "durabletask/defs.h"
#include "durabletask/orchestration.h"
#include "durabletask/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest instance ID: 1..256 printable ASCII characters other than space. */
#define DT_CLIENT_ID_MAX 256
/* A buffer of this size holds any instance ID and its NUL. */
#define DT_CLIENT_ID_BUF (DT_CLIENT_ID_MAX + 1)
/* Longest orchestration or event name; names are also NATS subject tokens (printable ASCII
 * without space, '.', '*' or '>'). */
#define DT_CLIENT_NAME_MAX 128
/* Most tags one instance may carry. */
#define DT_CLIENT_TAGS_MAX 64
/* Page size of dt_client_list when the caller gives 0, and the largest accepted. */
#define DT_CLIENT_PAGE_DEFAULT 100
#define DT_CLIENT_PAGE_MAX     10000

typedef struct dt_client dt_client;

/* ---------------------------------------------------------------------------------------------
 * Client handle
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_client_options {
    size_t struct_size;          /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const char *nats_url;        /* NULL: nats://127.0.0.1:4222 (comma-separated list allowed) */
    const char *hub;             /* required: the task hub's name ([A-Za-z0-9_-], <= 48) */
    const char *connection_name; /* shown by the server's monitoring; NULL: "dt-client" */
    int64_t request_timeout_ms;  /* JetStream requests and partition queries; 0: 5000 */
    /* A wait (dt_client_wait_for_*) that finds no status record keeps waiting this long for one
     * to appear, within its own timeout: an instance started by a plain NATS publish has no
     * record until a worker ran its first step. 0: 10000; < 0: DT_ENOTFOUND at once. */
    int64_t wait_missing_ms;
    /* Credentials and TLS of the NATS connection (durabletask/connection.h); borrowed for
     * dt_client_create only (the connection keeps its own copies). Zeroed: none. */
    dt_nats_security security;
} dt_client_options;

/* Fills `o` (borrowed) with the defaults above (hub NULL); a zeroed struct means the same. */
DT_API void dt_client_options_init(dt_client_options *o);

/*
 * Connects to NATS. `o` and its strings are copied. The hub need not exist yet (see
 * dt_client_hub_create); its settings are read on first use and kept for the client's life.
 * On DT_OK *out is a new client, freed with dt_client_destroy. On failure *out is untouched and
 * errbuf (may be NULL) receives the reason: DT_EINVAL (bad options, unreadable credential or TLS
 * file), DT_EAUTH (credentials refused, TLS failed), DT_EBROKER (no server). The text names URLs
 * without their user info and never contains a secret.
 */
DT_API dt_status dt_client_create(const dt_client_options *o, dt_client **out, char *errbuf,
                                  size_t errlen);

/* Closes the connection and frees `c`. Accepts NULL. Result objects stay valid. Waits that
 * other threads have in progress on `c` end with DT_ECLOSED (without touching `c` afterwards:
 * do not ask dt_client_errmsg then) and destroy returns once they have; no other call may be in
 * progress or start once destroy has begun. */
DT_API void dt_client_destroy(dt_client *c);

/* Text of the most recent failure of a call on `c` ("" if none). Owned by `c`; valid until the
 * next call on `c` (when threads share `c`, see dt_client_errmsg_copy). */
DT_API const char *dt_client_errmsg(const dt_client *c);

/* The same text copied into buf (len bytes, NUL-terminated, truncated if need be), atomically
 * with respect to failures on other threads. For a client shared by threads the text is that of
 * the most recent failure of any of them. */
DT_API void dt_client_errmsg_copy(const dt_client *c, char *buf, size_t len);

/* The hub's name (owned by `c`). */
DT_API const char *dt_client_hub(const dt_client *c);

/* ---------------------------------------------------------------------------------------------
 * Task hubs
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_client_hub_info {
    size_t struct_size;          /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    uint32_t partitions;         /* P, 1..1024 (default 4) */
    uint32_t replicas;           /* of streams and buckets, 1..5 (default 1) */
    uint32_t max_msg_size;       /* bytes per message, headers included (default 1 MiB) */
    int64_t duplicate_window_ms; /* JetStream's dedupe window (default 120000) */
    int64_t lease_ttl_ms;        /* partition lease TTL (default 10000) */
    bool memory_storage;         /* default false: file storage */
    /* Output only. */
    int64_t created_at_ms;
    uint32_t format_version;
} dt_client_hub_info;

/* Fills `h` (borrowed) with the default settings. */
DT_API void dt_client_hub_info_init(dt_client_hub_info *h);

/*
 * Creates the client's hub with `settings` (NULL: defaults). Idempotent: a hub that exists with
 * the same settings is DT_OK (and completed if a creation was interrupted); different settings
 * are DT_ECONFLICT naming the first difference. On DT_OK out (may be NULL) receives the stored
 * settings.
 */
DT_API dt_status dt_client_hub_create(dt_client *c, const dt_client_hub_info *settings,
                                      dt_client_hub_info *out);

/* Reads the hub's settings. DT_ENOTFOUND when there is no such hub. */
DT_API dt_status dt_client_hub_get(dt_client *c, dt_client_hub_info *out);

/* Messages waiting in the hub's streams. */
typedef struct dt_client_hub_stats {
    uint64_t orchestration_msgs; /* DT_<hub>_ORCH: events not yet applied by a worker */
    uint64_t activity_msgs;      /* DT_<hub>_ACT: activity work items not yet done */
    uint64_t ingress_msgs;       /* DT_<hub>_IN: publish-to-start requests not yet routed */
    uint64_t dead_msgs;          /* DT_<hub>_DEAD: dead letters kept */
} dt_client_hub_stats;

DT_API dt_status dt_client_hub_stats_get(dt_client *c, dt_client_hub_stats *out);

/* Deletes the hub: every stream, consumer and bucket, with all instances' messages and status
 * records (workers' SQLite files are not touched). DT_ENOTFOUND when there was none. */
DT_API dt_status dt_client_hub_delete(dt_client *c);

/* ---------------------------------------------------------------------------------------------
 * Starting instances
 * ------------------------------------------------------------------------------------------- */

/* What to do when the instance ID is taken. PERSISTED: values of InstanceIdReusePolicy. */
typedef enum dt_client_reuse_policy {
    DT_CLIENT_REUSE_ERROR = 0,                 /* DT_EEXIST, whatever its status (default) */
    DT_CLIENT_REUSE_REPLACE_IF_FINISHED = 1,   /* replace a finished instance; running: EEXIST */
    DT_CLIENT_REUSE_TERMINATE_AND_REPLACE = 2, /* terminate a running instance and replace it */
    DT_CLIENT_REUSE_IGNORE = 3 /* an unfinished instance stays and the call succeeds without
                                  effect (out_id names it); a finished one is replaced */
} dt_client_reuse_policy;

typedef struct dt_client_tag {
    const char *key;
    const char *value;
} dt_client_tag;

/* Options of dt_client_schedule. Zero means the default for every field: start from
 * dt_client_start_options_init (or a zeroed struct), then set what differs. */
typedef struct dt_client_start_options {
    size_t struct_size;      /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const char *instance_id; /* NULL: a random UUID v4 */
    /* NULL: a random one (32 hex digits, a UUID v4 without dashes). Giving the instance and
     * execution ID of an earlier call makes a retried schedule (after DT_ETIMEOUT, say) idempotent:
     * DT_OK, and the repeat is dropped by JetStream's duplicate window and by the worker. */
    const char *execution_id;
    const void *input; /* NULL: no input (differs from an empty one) */
    size_t input_len;
    const char *version;       /* NULL: none; at most DT_CLIENT_NAME_MAX bytes */
    int64_t start_at_ms;       /* scheduled start; 0: now */
    const dt_client_tag *tags; /* keys starting with "dt." are reserved (DT_EINVAL) */
    size_t ntags;              /* at most DT_CLIENT_TAGS_MAX */
    dt_client_reuse_policy reuse_policy;
    /* NATS subject to which the worker publishes the final status (an InstanceStatus message)
     * when the instance completes, fails or is terminated. NULL: none. */
    const char *result_subject;
    /* The caller's W3C trace context (distributed tracing, docs/operations.md "Tracing"):
     * "00-<trace id>-<span id>-<flags>", and its tracestate. The orchestration's spans join that
     * trace. NULL (or malformed: ignored): a new trace when tracing is on, none otherwise. */
    const char *traceparent;
    const char *tracestate;
} dt_client_start_options;

/*
 * Starts orchestration `name` (o may be NULL for the defaults). Returns once JetStream stored the
 * start message, after which the start is never lost, and the PENDING status record is written
 * (dt_client_get_status and the waits see it at once; if it cannot be written the worker writes
 * the record when it runs the instance). The instance is PENDING until a worker picks it up. On
 * DT_OK the instance ID is written to out_id (may be NULL; else out_len must be >=
 * DT_CLIENT_ID_BUF).
 * Cost: one round trip to the server (the start and its record travel together) when the ID is
 * generated or the policy is TERMINATE_AND_REPLACE; two otherwise (the status record is read
 * first, so that a start the policy refuses is never published, and so that racing starts of
 * one ID are decided by JetStream: docs/protocol.md).
 * Errors: DT_EINVAL (bad name, ID, option; the message names it), DT_ETOOLARGE (the start
 * message would exceed the hub's max_msg_size less 1 KiB of headroom), DT_EEXIST (the ID is
 * taken, per the reuse policy; also for every loser of schedules of one ID at the same moment:
 * exactly one start is stored, the one whose caller gets DT_OK, and the losers' are not stored
 * at all: docs/protocol.md), DT_ENOTFOUND (no
 * such hub), DT_EBROKER, DT_ETIMEOUT (no PubAck: the start may or may not be stored, and its
 * PENDING record was taken back; retry with the same instance and execution IDs).
 */
DT_API dt_status dt_client_schedule(dt_client *c, const char *name,
                                    const dt_client_start_options *o, char *out_id, size_t out_len);

/* Sets every field of `o` (borrowed) to its default: zero. */
DT_API void dt_client_start_options_init(dt_client_start_options *o);

/*
 * Restarts a finished instance (completed, failed, terminated, canceled): its orchestration runs
 * again from the start with the name, version, input and tags of its status record, under the
 * same ID (replacing the finished instance: a new execution) or, with new_instance_id, under a
 * new random ID (the old instance stays; this works for an unfinished one too). out_id (may be
 * NULL; else out_len >= DT_CLIENT_ID_BUF) receives the ID started. DT_ENOTFOUND for an unknown
 * instance, DT_ESTATE for an unfinished one under the same ID, DT_EEXIST when another start of
 * that ID won the race; otherwise as dt_client_schedule.
 */
DT_API dt_status dt_client_restart(dt_client *c, const char *instance_id, bool new_instance_id,
                                   char *out_id, size_t out_len);

/*
 * Rewinds a failed instance (the Durable Task "rewind"): its failed activities run again, a
 * failed sub-orchestration is rewound in turn, and the instance continues from where it first
 * failed, under the same execution; calls that had completed before the first failure are not
 * run again. `reason` (borrowed; NULL: none) is recorded in the ExecutionRewound history event.
 * DT_ENOTFOUND for an unknown instance, DT_ESTATE unless it is failed (completed, terminated,
 * running...). Returns once JetStream stored the request; the worker rewinds it later (a second
 * request that finds it running is ignored). docs/design.md "Rewind" says what runs again.
 */
DT_API dt_status dt_client_rewind(dt_client *c, const char *instance_id, const char *reason);

/*
 * As dt_client_rewind, then waits until a worker applied the request: until the instance's status
 * record is written again (running, or already finished anew), so that a wait for completion
 * after it sees the rewound run, not the failure. timeout_ms > 0, or < 0 for no bound;
 * DT_ETIMEOUT when no worker took it in time (the request stays stored and applies later),
 * DT_ENOTFOUND when the instance was purged meanwhile; otherwise as dt_client_rewind.
 */
DT_API dt_status dt_client_rewind_wait(dt_client *c, const char *instance_id, const char *reason,
                                       int64_t timeout_ms);

/* ---------------------------------------------------------------------------------------------
 * Events and control. Each checks the status record first: DT_ENOTFOUND for an unknown instance,
 * DT_ESTATE for a finished one (completed, failed, terminated or canceled). Each returns once
 * JetStream stored the message; the worker applies it later (it is buffered while the instance
 * is pending or suspended).
 * ------------------------------------------------------------------------------------------- */

/*
 * Raises event `event_name` with `data` (NULL: none) to the instance. idempotency_key (NULL:
 * none; printable ASCII without space, <= DT_CLIENT_NAME_MAX) makes repeats of the same call
 * for the same instance count once; without it every call is a new event.
 */
DT_API dt_status dt_client_raise_event(dt_client *c, const char *instance_id,
                                       const char *event_name, const void *data, size_t len,
                                       const char *idempotency_key);

/* Terminates the instance; `reason` (NULL: none) becomes its output verbatim. recursive also
 * terminates its sub-orchestrations. */
DT_API dt_status dt_client_terminate(dt_client *c, const char *instance_id, const char *reason,
                                     bool recursive);

/* Suspends the instance: events are held back until it is resumed. `reason` may be NULL. */
DT_API dt_status dt_client_suspend(dt_client *c, const char *instance_id, const char *reason);

/* Resumes a suspended instance. `reason` may be NULL. */
DT_API dt_status dt_client_resume(dt_client *c, const char *instance_id, const char *reason);

/* ---------------------------------------------------------------------------------------------
 * Status
 * ------------------------------------------------------------------------------------------- */

/* PERSISTED: the values of OrchestrationStatus (schema/dt_history.proto). */
typedef enum dt_client_runtime_status {
    DT_CLIENT_RUNNING = 0,
    DT_CLIENT_COMPLETED = 1,
    DT_CLIENT_CONTINUED_AS_NEW = 2,
    DT_CLIENT_FAILED = 3,
    DT_CLIENT_CANCELED = 4,
    DT_CLIENT_TERMINATED = 5,
    DT_CLIENT_PENDING = 6,
    DT_CLIENT_SUSPENDED = 7
} dt_client_runtime_status;

/* "RUNNING", "COMPLETED", ...; "UNKNOWN" for other values. Static. */
DT_API const char *dt_client_runtime_status_name(dt_client_runtime_status s);
/* Parses a name as above, ASCII case-insensitive. DT_EINVAL if unknown. */
DT_API dt_status dt_client_runtime_status_parse(const char *name, dt_client_runtime_status *out);
/* True for COMPLETED, FAILED, CANCELED and TERMINATED. */
DT_API bool dt_client_runtime_status_finished(dt_client_runtime_status s);

/* One instance's status. All pointers live as long as the object that holds the struct. */
typedef struct dt_client_instance {
    const char *instance_id;
    const char *execution_id;
    const char *name;
    const char *version; /* NULL: none */
    dt_client_runtime_status runtime_status;
    int64_t created_at_ms;
    int64_t last_updated_at_ms;
    const char *parent_instance_id; /* NULL: not a sub-orchestration */
    /* NULL when absent, or when the call did not ask for payloads. */
    const void *input;
    size_t input_len;
    const void *output;
    size_t output_len;
    const void *custom_status;
    size_t custom_status_len;
    const dt_failure *failure; /* NULL unless the instance failed */
    const dt_client_tag *tags; /* NULL when ntags is 0 */
    size_t ntags;
} dt_client_instance;

/*
 * Reads the instance's status record (from any host, without asking a worker). With
 * with_payloads false, input, output and custom status are left out. On DT_OK *out is a new
 * object the caller frees with dt_client_instance_free. DT_ENOTFOUND for an unknown instance.
 */
DT_API dt_status dt_client_get_status(dt_client *c, const char *instance_id, bool with_payloads,
                                      dt_client_instance **out);

/*
 * Waits until the instance has started (any status but PENDING) or has finished (COMPLETED,
 * FAILED, CANCELED, TERMINATED). timeout_ms > 0 bounds the wait, 0 checks once, < 0 waits without
 * bound. It wakes as soon as the status record changes (a KV watch, no polling). On DT_OK, out
 * (may be NULL) receives a new object as for dt_client_get_status. DT_ETIMEOUT when the time
 * ran out (the message gives the last status seen), DT_ENOTFOUND for an instance that has no
 * status record once the client's wait_missing_ms passed (it may still be on its way: a
 * publish-to-start) or one purged meanwhile, DT_ECLOSED when another thread destroyed the client
 * meanwhile. Cost: one read of the record (one round trip); none for the first wait on an
 * instance this client started since its first wait (the start registered it with the client's
 * subscription, which kept its changes; the client keeps the 256 newest such starts). All waits
 * of a client share one subscription to the hub's status changes, opened by the client's first
 * wait (one more round trip then) and kept until dt_client_destroy: from then on every status
 * change of the hub reaches the client (about three small messages per instance started),
 * whoever waits. Any number of threads may wait at once. timeout_ms 0: one read, nothing more.
 */
DT_API dt_status dt_client_wait_for_start(dt_client *c, const char *instance_id, int64_t timeout_ms,
                                          bool with_payloads, dt_client_instance **out);
DT_API dt_status dt_client_wait_for_completion(dt_client *c, const char *instance_id,
                                               int64_t timeout_ms, bool with_payloads,
                                               dt_client_instance **out);

/*
 * Decodes a status record as it arrives on a start's result subject (the InstanceStatus message a
 * worker publishes there, docs/protocol.md) or as the status bucket holds it; needs no client.
 * data (borrowed) is len bytes. On DT_OK *out is a new object with the payloads the record
 * carries (free with dt_client_instance_free; a bucket record too large for a message leaves
 * payloads out: read them with dt_client_get_status). DT_EDECODE for bytes that are not such a
 * record, DT_EINVAL for NULL arguments.
 */
DT_API dt_status dt_client_instance_decode(const void *data, size_t len, dt_client_instance **out);

/* Frees an object returned by get_status / wait_for_* / dt_client_instance_decode. Accepts
 * NULL. */
DT_API void dt_client_instance_free(dt_client_instance *inst);

/* ---------------------------------------------------------------------------------------------
 * Queries, answered by the workers that own the partitions. A partition without a running
 * worker fails the call with DT_EBUSY naming it; one that does not answer in the request
 * timeout with DT_ETIMEOUT.
 * ------------------------------------------------------------------------------------------- */

/* Which instances a list or purge applies to. Zero means the default for every field: all.
 * dt_client_filter_init gives that. */
typedef struct dt_client_filter {
    size_t struct_size; /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const dt_client_runtime_status *statuses; /* any of these; NULL or nstatuses 0: any */
    size_t nstatuses;
    const char *name;               /* exact orchestration name; NULL: any */
    const char *instance_id_prefix; /* NULL or "": any */
    int64_t created_from_ms;        /* created at or after (inclusive); 0: no bound */
    int64_t created_to_ms;          /* created before (exclusive); 0: no bound */
} dt_client_filter;

/* A page of instances. Everything lives until dt_client_page_free. */
typedef struct dt_client_page {
    dt_client_instance *instances; /* NULL when n is 0 */
    size_t n;
    /* Pass to the next dt_client_list with the same filter; NULL: this was the last page. A page
     * may be short, even empty, while a token is returned. */
    const char *next_page_token;
} dt_client_page;

/*
 * Lists instances matching `filter` (NULL: all), at most `limit` (0: DT_CLIENT_PAGE_DEFAULT;
 * <= DT_CLIENT_PAGE_MAX), starting at `page_token` (NULL: the beginning). Instances come
 * partition by partition, in instance ID order within a partition. Payloads, failure details
 * and tags only with with_payloads. On DT_OK *out is a new page (dt_client_page_free). DT_EINVAL
 * for a bad filter or token.
 */
DT_API dt_status dt_client_list(dt_client *c, const dt_client_filter *filter,
                                const char *page_token, size_t limit, bool with_payloads,
                                dt_client_page **out);

DT_API void dt_client_page_free(dt_client_page *page);

/* Sets every field of `f` (borrowed) to its default: zero (all instances). */
DT_API void dt_client_filter_init(dt_client_filter *f);

/* One history event. The typed fields are a convenience; `raw` is the full event. */
typedef struct dt_client_event {
    int32_t event_id;     /* the task's sequence number for action events; -1 for others */
    int64_t timestamp_ms; /* when it was recorded */
    const char *type;     /* "ExecutionStarted", "TaskScheduled", ... (static) */
    const char *name;     /* orchestration, activity or event name, or publish subject; or NULL */
    const char *instance_id; /* the other instance (sub-orchestration created, event sent) */
    int32_t task_id;     /* the task an outcome refers to (task_scheduled_id, timer_id); -1: none */
    int64_t fire_at_ms;  /* timers; 0 otherwise */
    const void *payload; /* input, result, event data or reason; NULL: none */
    size_t payload_len;
    const dt_failure *failure; /* task / execution failures; NULL otherwise */
    const void *raw;           /* the packed HistoryEvent message (schema/dt_history.proto) */
    size_t raw_len;
} dt_client_event;

typedef struct dt_client_history {
    dt_client_event *events; /* NULL when n is 0 */
    size_t n;
    /* The execution the events belong to; NULL when the worker did not say (earlier releases). */
    const char *execution_id;
} dt_client_history;

/*
 * The history of the instance's current execution, in order, however long: read a page (one
 * reply of the partition's worker) at a time. When the execution changes between pages (a
 * continue-as-new meanwhile) the read starts over, up to three times (then DT_EBUSY). On DT_OK
 * *out is a new object (dt_client_history_free). DT_ENOTFOUND for an instance its partition does
 * not know, DT_ETOOLARGE for a single event larger than one NATS message can carry (or any history
 * that does not fit one, from a worker of an earlier release).
 */
DT_API dt_status dt_client_get_history(dt_client *c, const char *instance_id,
                                       dt_client_history **out);

/*
 * One page of the history: the events from index `start` (0: the first), at most max_events of
 * them (0: as many as fit one reply). On DT_OK *out is a new object (dt_client_history_free) whose
 * execution_id names the execution; *out_next (may be NULL) receives the index after its last
 * event and *out_total (may be NULL) the number of events in the history: the read is complete
 * when next == total. A page whose execution_id differs from the previous page's belongs to a
 * later execution (start over). Errors as dt_client_get_history.
 */
DT_API dt_status dt_client_get_history_page(dt_client *c, const char *instance_id, size_t start,
                                            size_t max_events, dt_client_history **out,
                                            size_t *out_next, size_t *out_total);

DT_API void dt_client_history_free(dt_client_history *h);

/*
 * Deletes a finished instance: its history and state in its partition's store and its status
 * record. DT_ESTATE when it is not finished, DT_ENOTFOUND when unknown.
 */
DT_API dt_status dt_client_purge(dt_client *c, const char *instance_id);

/*
 * Deletes every finished instance matching `filter` (NULL: all finished ones; statuses that are
 * not finished are ignored), partition by partition. On DT_OK *out_deleted (may be NULL) is the
 * number deleted. On failure the message says how many were deleted before it.
 */
DT_API dt_status dt_client_purge_where(dt_client *c, const dt_client_filter *filter,
                                       uint64_t *out_deleted);

/*
 * dt_client_purge of a finished instance together with the sub-orchestrations it started (found
 * in its current execution's history) and theirs, children first. A descendant that still runs
 * is left, with its own children; children of earlier executions of a continue-as-new chain are
 * not found. *out_deleted (may be NULL) is the number of instances deleted, also on failure.
 * DT_ESTATE when the instance itself is not finished, DT_ENOTFOUND when unknown.
 */
DT_API dt_status dt_client_purge_recursive(dt_client *c, const char *instance_id,
                                           uint64_t *out_deleted);
/* dt_client_purge_recursive of every finished instance matching `filter` (listed page by page;
 * their descendants are purged whether they match or not). */
DT_API dt_status dt_client_purge_where_recursive(dt_client *c, const dt_client_filter *filter,
                                                 uint64_t *out_deleted);

/* ---------------------------------------------------------------------------------------------
 * Retention: how long finished instances are kept. The workers that own the partitions purge
 * instances that finished longer ago than this (history, state and status record, as
 * dt_client_purge does), checking about once a minute (worker option retention_check_ms), and
 * log what they purged. One policy per hub, stored in the hub.
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_client_retention {
    int64_t completed_ms;  /* after completing; 0: kept until purged by hand */
    int64_t failed_ms;     /* after failing; 0: kept */
    int64_t terminated_ms; /* after being terminated or canceled; 0: kept */
} dt_client_retention;

/* The hub's policy into *out (all 0 when none was set). */
DT_API dt_status dt_client_retention_get(dt_client *c, dt_client_retention *out);
/* Replaces the hub's policy (every worker applies it from its next check). DT_EINVAL for a
 * negative age. */
DT_API dt_status dt_client_retention_set(dt_client *c, const dt_client_retention *r);

#ifdef __cplusplus
}
#endif
#endif
