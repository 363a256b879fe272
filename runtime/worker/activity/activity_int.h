/*
 * activity_int.h: the activity pool of a worker (internal to runtime/worker).
 *
 * The pool runs the activities registered on a worker. For each task queue it serves it binds
 * `threads_per_queue` handles to one durable pull consumer `act_<queue>` of stream DT_<hub>_ACT
 * (filter dt.<hub>.act.<queue>), shared with every other worker serving that queue. Each thread
 * fetches a small batch of ActivityRequests, runs them one after the other, publishes each
 * result (an OrchestrationMessage carrying TaskCompleted or TaskFailed, Nats-Msg-Id
 * "<instance>/<execution>/res/<task id>") to the request's reply subject through its own async
 * publisher, and acks a work item only after its result's PubAck. A ticker thread sends
 * in-progress acks for every held work item every timeout/3, so a long activity is not
 * redelivered while its worker lives.
 *
 * Guarantee: activities run AT LEAST ONCE. A worker that dies (or loses its connection) after
 * running an activity but before acking it leaves the work item to be redelivered after the ack
 * wait, and the activity runs again; its result is published again under the same message ID, so
 * JetStream (within the duplicate window) and the orchestration (by task ID) drop the repeat.
 *
 * Bounds and failure rules (the orchestration side relies on them):
 *   - a body that does not decode, or lacks instance ID, name or a reply subject of this hub's
 *     dt.<hub>.orch.<p> family, is published to dt.<hub>.dead.activity with Dt-Reason and
 *     Dt-Original-Subject headers and then terminated;
 *   - a name not registered on the queue is nak'd with a DT__ACT_UNKNOWN_NAK_MS delay (another
 *     worker may serve it); on delivery >= max_deliveries it fails with dt.UnknownActivity,
 *     non-retriable (about 1 s after the first delivery with the default 5 deliveries);
 *   - a work item delivered more than max_deliveries times is not run: it fails with
 *     dt.ActivityCrashed (non-retriable false, so the orchestration's retry policy decides);
 *   - an output that would not fit in one message of the hub fails with dt.OutputTooLarge
 *     (non-retriable).
 * Batches adapt to the activities' durations: a thread fetches about DT__ACT_BATCH_TARGET_US of
 * work at once by an average of past durations, starting at 1 item: one item at a time while
 * activities take milliseconds (so slow ones spread over all threads and workers), up to
 * DT__ACT_BATCH_MAX while they are short (measured on 2 cores, trivial activities queued first:
 * bound 16 -> 64 took one thread from ~7,700 to ~27,000 activities/s and four from ~20,000 to
 * ~45,000). Items queued in a batch behind an activity that turns out to run for
 * DT__ACT_HANDBACK_MS are handed back to the queue (nak) for idle threads and other workers. A
 * batch of one or two (an idle queue) flushes the connection before its PubAck wait, which takes
 * a lone activity's round trip from ~1.0 ms (nats.c's 1 ms coalescing) to ~0.45 ms.
 *
 * Threads: start, stop and destroy are called by one owner thread. Activity functions run on the
 * pool's threads; the log callback is called from them and from the owner thread.
 */
#ifndef DT_ACTIVITY_INT_H
#define DT_ACTIVITY_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "dt_broker.h"
#include "dt_work.pb-c.h"
#include "durabletask/activity.h"
#include "durabletask/orchestration.h"
#include "durabletask/status.h"

/* One registered activity. The pool copies the strings; fn and user_data are borrowed for the
 * pool's life, and beyond it for an activity abandoned by dt__activity_pool_stop. */
typedef struct dt__tracer dt__tracer; /* runtime/tracing */
typedef struct dt__span dt__span;

typedef struct dt__activity_def {
    const char *name;       /* 1..DT_NAME_MAX bytes */
    const char *task_queue; /* NULL: "default"; a subject token (dt_broker_token_valid) */
    dt_activity_fn fn;
    void *user_data;
} dt__activity_def;

typedef struct dt__activity_pool_config {
    dt_broker *broker;            /* borrowed, thread-safe, outlives the pool */
    const char *hub;              /* copied; the hub must exist */
    const dt__activity_def *defs; /* copied (n_defs entries; 0 is allowed: no threads) */
    size_t n_defs;
    size_t threads_per_queue; /* activities run at once per queue; 0: 4 (max 256) */
    int64_t max_deliveries;   /* 0: 5 */
    int64_t timeout_ms;       /* ack wait of the work items; 0: 60000; else >= 100 */
    bool batch_results;       /* results for one partition in one message (see activity_loop.c) */
    struct dt__metrics *metrics; /* borrowed, outlives the pool; NULL: none (metrics_int.h) */
    /* Log sink (NULL: none). Called on pool threads and the owner thread; must be thread-safe.
     * instance_id is the work item's instance, or NULL for the pool's own lines. */
    void (*log)(dt_log_level level, const char *instance_id, const char *msg, void *ctx);
    void *log_ctx;
    dt__tracer *tracer; /* borrowed, outlives the pool; NULL: activities are not traced */
} dt__activity_pool_config;

typedef struct dt__activity_pool dt__activity_pool;

/*
 * Validates `cfg`, reads the hub's message size limit, creates or updates the durable consumers
 * (ack wait = timeout, unlimited max deliver), opens one consumer handle per thread (each thread
 * creates its async publisher on its first result) and starts the threads and the ticker. Returns
 * once running. On DT_OK *out is the pool (free with dt__activity_pool_destroy). On failure nothing
 * runs and errbuf (may be NULL) says why: DT_EINVAL (config), DT_EEXIST (a name registered twice on
 * one queue), DT_ENOTFOUND (no such hub), DT_ECONFLICT, DT_EBROKER, DT_ENOMEM.
 */
dt_status dt__activity_pool_start(const dt__activity_pool_config *cfg, dt__activity_pool **out,
                                  char *errbuf, size_t errlen);

/*
 * Stops gracefully: no more fetches (within one fetch wait, DT__ACT_FETCH_WAIT_MS); items
 * fetched but not started are nak'd so other workers take them at once; running activities
 * finish for up to timeout_ms and their results are published and acked. An activity still
 * running at the deadline is abandoned: its work items are released unacked (redelivered after
 * the ack wait), and when its function returns the thread exits without touching the broker.
 * Threads busy in a broker call at the deadline are waited for (one call: a fetch or a PubAck
 * wait, a few seconds at most). Then consumer handles and publishers are closed. Idempotent.
 */
void dt__activity_pool_stop(dt__activity_pool *p, int64_t timeout_ms);

/* Stops (timeout 0 if stop was not called) and frees. Returns without waiting for abandoned
 * activities; their `fn` and `user_data` must stay valid until they return. NULL accepted. */
void dt__activity_pool_destroy(dt__activity_pool *p);

/* =============================================================================================
 * Private to runtime/worker/activity/activity_*.c
 * ============================================================================================= */

/* Work items one thread fetches at once, at most; it aims at DT__ACT_BATCH_TARGET_US of work. */
#define DT__ACT_BATCH_MAX       64
#define DT__ACT_BATCH_TARGET_US 4000
/* Longest wait of one fetch: bounds how long stop waits for a fetching thread. */
#define DT__ACT_FETCH_WAIT_MS 250
/* Redelivery delay of a nak'd item: failed result publish, out of memory. */
#define DT__ACT_NAK_DELAY_MS 1000
/*
 * Redelivery delay of an item whose activity this worker does not serve. A worker that serves it
 * gets max_deliveries - 1 more chances at it (to the server, a pull request waiting since before
 * the nak is first in line), so the delay sets how soon a missing activity surfaces, not how
 * fair the hand-over is: 4 naks of 250 ms, about 1 s (it was 1 s each, about 4 s per attempt).
 */
#define DT__ACT_UNKNOWN_NAK_MS 250
/* Results held this long, or after an activity this long, are published and acked at once. */
#define DT__ACT_FLUSH_AFTER_MS 2
/* Batches this small (an idle queue) flush the connection before waiting for PubAcks. */
#define DT__ACT_FLUSH_BATCH_MAX 2
/* Items queued behind an activity running this long are handed back to the queue. */
#define DT__ACT_HANDBACK_MS 500
/* The ticker's wake-up period (in-progress acks go out every tick_ms = timeout / 3). */
#define DT__ACT_TICKER_WAKE_MS 100
/* Longest wait for a batch's PubAcks, and the async publisher's window. */
#define DT__ACT_PUB_WAIT_MS 10000
/* How long a result that cannot be stored is retried (its work item kept alive) before the work
 * item is nak'd: longer than a JetStream leader election. */
#define DT__ACT_RESULT_RETRY_MS 60000
#define DT__ACT_PUB_WINDOW      ((size_t)4 * DT__ACT_BATCH_MAX)
/* Shortest timeout_ms accepted (in-progress acks go out every timeout / 3). */
#define DT__ACT_MIN_TIMEOUT_MS 100
/* Threads per task queue, at most. */
#define DT__ACT_MAX_THREADS 256
/* The queue of activities registered without one, and dt.<hub>.dead.<kind> of dead letters. */
#define DT__ACT_DEFAULT_QUEUE "default"
#define DT__ACT_DEAD_KIND     "activity"
/* Longest result identity "<instance>/<execution>/res/<task id>". */
#define DT__ACT_MSG_ID_MAX 512

/* One task queue served by the pool. Immutable after start; owned by the pool. */
typedef struct dt__act_queue {
    char *name;                       /* dt_alloc'd */
    char durable[DT_BROKER_NAME_BUF]; /* act_<sanitized name> */
    char subject[DT_BROKER_NAME_BUF]; /* dt.<hub>.act.<name> */
    dt__activity_def *defs;           /* sorted by name; name strings dt_alloc'd */
    size_t n_defs;
} dt__act_queue;

/* What a slot's thread is doing (guarded by the slot's mu). stop() abandons only RUN slots:
 * everything else is a bounded broker call, or finished. */
typedef enum dt__act_phase {
    DT__ACT_PHASE_BROKER = 0, /* fetching, classifying, publishing, acking */
    DT__ACT_PHASE_RUN = 1,    /* inside a user activity function */
    DT__ACT_PHASE_DONE = 2    /* thread finished its loop and released its handles */
} dt__act_phase;

/*
 * One activity thread. Reference-counted (the pool and the thread), so that a thread abandoned
 * inside a hung activity can outlive the pool: after abandonment it touches only its slot.
 */
typedef struct dt__act_slot {
    pthread_mutex_t mu;
    int refs; /* atomic */
    /* Guarded by mu (also read by the ticker and by dt_activity_heartbeat): */
    bool abandoned;
    dt__act_phase phase;
    dt_broker_msg *held[DT__ACT_BATCH_MAX]; /* fetched, not yet settled (NULL once settled) */
    size_t nheld;                           /* entries in use in held[] */
    size_t run_ix;                          /* RUN: the running item's index in held[] */
    int64_t run_since_ms;                   /* RUN: monotonic start of the running activity */
    /* Confined to the slot's thread; released by stop() instead once the slot is abandoned. */
    dt_broker_consumer *consumer;
    dt_broker_publisher *pub; /* created on the first result (NULL until then) */
    int64_t avg_us;           /* EWMA of activity durations, sizes the next fetch; 0: unknown */
    /* Immutable after start. Not dereferenced by an abandoned thread. */
    dt__activity_pool *pool;
    const dt__act_queue *queue;
    pthread_t thread;
    bool thread_started;
} dt__act_slot;

/* A cached answer of dt__act_members_serve. */
typedef struct dt__act_member_answer {
    const dt__act_queue *queue;
    char *name; /* dt_alloc'd; NULL: unused */
    bool served;
    int64_t until_ms; /* monotonic */
} dt__act_member_answer;

#define DT__ACT_MEMBER_CACHE 32

struct dt__activity_pool {
    dt__activity_pool_config cfg; /* hub and defs point into the pool's copies */
    dt_broker *b;
    char *hub;
    dt__act_queue *queues;
    size_t n_queues;
    dt__act_slot **slots;
    size_t n_slots;
    size_t max_msg;                        /* largest result message the hub accepts */
    char act_stream[DT_BROKER_NAME_BUF];   /* DT_<hub>_ACT */
    char orch_prefix[DT_BROKER_NAME_BUF];  /* "dt.<hub>.orch." */
    char dead_subject[DT_BROKER_NAME_BUF]; /* dt.<hub>.dead.activity */
    int64_t tick_ms;                       /* in-progress period: timeout / 3 */
    pthread_mutex_t mu;                    /* guards the fields below */
    pthread_cond_t cond;                   /* slots reaching DONE; ticker wake-ups */
    bool stopping;                         /* also read atomically by the threads */
    bool stopped;
    bool ticker_quit;
    pthread_t ticker;
    bool ticker_started;
    dt__act_member_answer member_cache[DT__ACT_MEMBER_CACHE]; /* guarded by mu */
    dt_broker_sub **member_subs; /* one per registered name (activity_members.c) */
    size_t n_member_subs;
};

/* ---- activity_slot.c ---- */

/* Drops one reference of `s`; the last one frees it (its handles must be released already). */
void dt__act_slot_release(dt__act_slot *s);
/* True once stop was requested (an atomic read; any thread). */
bool dt__act_stopping(const dt__activity_pool *p);
/* Formats and passes a line to the pool's log sink (instance_id may be NULL). Any pool thread. */
void dt__act_log(const dt__activity_pool *p, dt_log_level level, const char *instance_id,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- activity_ticker.c ---- */

/* The ticker thread (arg: the pool), until p->ticker_quit. Every p->tick_ms it sends
 * in-progress for every held work item of every slot that is not abandoned; every
 * DT__ACT_TICKER_WAKE_MS it hands back (naks, removes from held[]) the items queued in a batch
 * behind an activity that has run for DT__ACT_HANDBACK_MS, so idle threads and other workers
 * take them instead of waiting for it. */
void *dt__act_ticker_main(void *arg);
/* Sends in-progress for held[ix] of `s` if it is still held (takes s->mu). Any thread. */
void dt__act_slot_progress(dt__act_slot *s, size_t ix);

/* ---- activity_loop.c ---- */

/* The thread of one slot (arg): fetch, run, publish, ack until stop; then releases its handles,
 * marks the slot DONE and drops its reference. */
void *dt__act_thread_main(void *arg);

/* ---- activity_members.c ---- */

/* Subscribes the pool's answers to "who serves <name> on <queue>" (one per registered name), so
 * that other workers of the queue hand off work items for those names. DT_OK or the broker's
 * error with the reason in err; dt__act_members_stop (idempotent; at stop and destroy) releases
 * what was made either way. */
dt_status dt__act_members_start(dt__activity_pool *p, char *err, size_t errlen);
void dt__act_members_stop(dt__activity_pool *p);
/* True if a live member of the hub serves `name` on queue `q` (asked, or a recent answer
 * cached); false when none does, or when the question went unanswered. Any pool thread. */
bool dt__act_members_serve(dt__activity_pool *p, const dt__act_queue *q, const char *name);

/* ---- activity_names.c ---- */

/* The durable consumer name of task queue `queue`: "act_" + the name with every byte outside
 * [A-Za-z0-9_-] replaced by '_', cut to 96 bytes; when anything was replaced or cut, "_" and the
 * FNV-1a hash (8 hex digits) of the original follow, so distinct queues never share a durable.
 * DT_ETOOLARGE if buf is short (DT_BROKER_NAME_BUF always suffices). */
dt_status dt__act_durable_name(const char *queue, char *buf, size_t len);
/* Copies and groups `defs` into queues (sorted by name within a queue). On DT_OK *out_queues
 * (n in *out_n) belongs to the caller: free with dt__act_queues_free. DT_EINVAL / DT_EEXIST with
 * the reason in err. */
dt_status dt__act_queues_build(const char *hub, const dt__activity_def *defs, size_t n_defs,
                               dt__act_queue **out_queues, size_t *out_n, char *err, size_t errlen);
void dt__act_queues_free(dt__act_queue *q, size_t n);
/* The registered activity `name` of queue `q`, or NULL (binary search; the result lives as long
 * as the queue). */
const dt__activity_def *dt__act_queue_find(const dt__act_queue *q, const char *name);

/* ---- activity_ctx.c ---- */

/* The context of one activity run (activity.h). Lives on the running thread's stack; strings
 * and input are borrowed from the decoded request (batch arena) for the run. */
struct dt_activity_ctx {
    dt__act_slot *slot; /* NULL when run in-process for a partition (local_act.c) */
    size_t held_ix;     /* the work item's index in slot->held */
    const char *name;
    const char *instance_id;
    int32_t task_id;
    int delivery;
    const void *input; /* NUL-terminated; NULL when the request has none */
    size_t input_len;
    int64_t hb_min_ms;  /* dt_activity_heartbeat sends at most once per this */
    int64_t hb_last_ms; /* monotonic time of the last on-demand heartbeat */
    /* The outcome (owned by the context, dt_alloc'd; last of set_output / fail wins). */
    bool failed;
    bool has_output;
    bool oom; /* a copy failed: reported as dt.OutOfMemory */
    bool non_retriable;
    char *output;
    size_t output_len;
    char *fail_type;
    char *fail_message;
    char *fail_details;   /* NULL: none */
    dt__span *span;       /* the run's span (trace_activity.c); NULL: not traced */
    char traceparent[56]; /* the span's W3C traceparent (valid when span is set) */
    /* For runtime/remote, whose activities run in SDK workers: the request (borrowed for the
     * run), and whether the run was abandoned (no outcome: the work item is redelivered). */
    const Dtpb__ActivityRequest *req;
    bool abandon;
};

/* The request being run (for activities forwarded to SDK workers, runtime/remote). */
const Dtpb__ActivityRequest *dt__act_ctx_request(const dt_activity_ctx *ctx);
/* The activity did not run (its SDK worker went away or never answered): its work item is
 * redelivered instead of completed, whatever outcome was set. */
void dt__act_ctx_abandon(dt_activity_ctx *ctx);

/* The outcome an activity reported, as read by the publisher of its result. */
typedef struct dt__act_outcome {
    bool failed;
    bool has_output;
    const void *output; /* has_output: the output (borrowed) */
    size_t output_len;
    const char *type; /* failed: never NULL */
    const char *message;
    const char *details; /* failed: stack trace or details, or NULL */
    bool non_retriable;
    const char *traceparent; /* the run's span, sent as the result's header; NULL: none */
} dt__act_outcome;

/* Sets up `ctx` for one run of `req` (borrowed for the run); held_ix is the work item's index in
 * s->held. The input is copied into arena `a` (NUL-terminated). DT_ENOMEM only. */
dt_status dt__act_ctx_init(dt_activity_ctx *ctx, dt__act_slot *s, size_t held_ix,
                           const Dtpb__ActivityRequest *req, int delivery, int64_t hb_min_ms,
                           dt__arena *a);
/* The outcome after the function returned (borrows from ctx until dt__act_ctx_clear). */
void dt__act_ctx_outcome(const dt_activity_ctx *ctx, dt__act_outcome *out);
/* Frees what the activity stored in the context (output, failure texts). */
void dt__act_ctx_clear(dt_activity_ctx *ctx);

/* ---- activity_request.c ---- */

/* Why the decoded work item `req` (NULL: its body did not decode) cannot be run, or NULL when it
 * can: it needs a valid instance ID, a name, a reply subject "<orch_prefix><partition token>"
 * (orch_prefix is the pool's "dt.<hub>.orch.") and a result identity within
 * DT__ACT_MSG_ID_MAX. The reason is a static string; `a` holds the identity tried. */
const char *dt__act_request_problem(dt__arena *a, const char *orch_prefix,
                                    const Dtpb__ActivityRequest *req);

/* ---- activity_result.c ---- */

/* A result ready to publish: the packed OrchestrationMessage and its identity (arena memory). */
typedef struct dt__act_result {
    const char *subject; /* the request's reply subject (borrowed from the request) */
    const char *msg_id;  /* "<instance>/<execution>/res/<task id>" */
    uint8_t *data;
    size_t len;
    const char *traceparent; /* header of a result sent alone (arena); NULL: none */
} dt__act_result;

/* "<instance>/<execution>/res/<task id>" of `req` into arena `a`; NULL when out of memory or
 * when it would exceed DT__ACT_MSG_ID_MAX bytes. */
char *dt__act_result_id(dt__arena *a, const Dtpb__ActivityRequest *req);
/* Bytes that one member of `len` adds to an OrchestrationBatch (field tag, length, body). */
#define DT__ACT_BATCH_MEMBER_COST(len) ((len) + 6)
/* Bytes of a batch message beyond its members: the header block (Nats-Msg-Id of up to
 * DT__ACT_MSG_ID_MAX + 64 bytes, Dt-Batch). */
#define DT__ACT_BATCH_OVERHEAD ((size_t)DT__ACT_MSG_ID_MAX + 160)
/*
 * Packs n >= 2 results for the same subject (borrowed) as one OrchestrationBatch into arena `a`:
 * out->subject is theirs, out->msg_id is "<first member's id>/batch/<n>/<hash of all members'
 * ids, 16 hex>" (the same members give the same identity, so a re-publish of the group is
 * dropped by JetStream). The caller keeps the sum of DT__ACT_BATCH_MEMBER_COST plus
 * DT__ACT_BATCH_OVERHEAD within the hub's limit. DT_ENOMEM.
 */
dt_status dt__act_results_pack(dt__arena *a, const dt__act_result *const *members, size_t n,
                               dt__act_result *out);
/*
 * Packs the TaskCompleted / TaskFailed message for `req` with outcome `o` into arena `a`
 * (event_id -1, timestamp now, dedupe_id = msg_id = dt__act_result_id). When it would exceed
 * max_len bytes, packs a dt.OutputTooLarge failure instead. DT_ENOMEM, or DT_ETOOLARGE when even
 * that does not fit.
 */
dt_status dt__act_result_pack(dt__arena *a, const Dtpb__ActivityRequest *req,
                              const dt__act_outcome *o, size_t max_len, dt__act_result *out);
/* Fills `o` with a failure of type `type` and a message formatted into arena `a` (a fallback
 * text when out of memory). */
void dt__act_failure(dt__arena *a, dt__act_outcome *o, const char *type, bool non_retriable,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Publishes the body of work item `m` to the pool's dead-letter subject with the reason
 * (synchronously: a rare path), under a message ID derived from its stream sequence so that a
 * repeat after a crash is dropped. */
dt_status dt__act_dead_letter(const dt__activity_pool *p, dt_broker_msg *m, uint64_t stream_seq,
                              const char *reason);

#endif
