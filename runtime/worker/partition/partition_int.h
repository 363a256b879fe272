/*
 * partition_int.h: one partition's orchestration pipeline (internal to runtime/worker).
 *
 * The partition thread repeats: fetch a batch of OrchestrationMessages (plus the partition's due
 * timers); collect the PubAcks of the previous batch's outbox if all are there (else they are
 * collected after this batch's commit, before its own outbox goes out); group the
 * items by instance and run one episode per instance through the engine; commit all episodes of
 * the batch in ONE SQLite transaction (history, applied message identities, timers, outbox,
 * instance rows, and the deletion of the outbox rows whose PubAck has arrived since the previous
 * commit); ack the batch; publish the batch's outbox from the commit's own copy without waiting
 * for the PubAcks. A crash between any two steps loses nothing: uncommitted messages are
 * redelivered and re-run; committed ones are recognised by their identities; an outbox row is
 * deleted only after its PubAck, everything not deleted is re-published at start-up, and
 * JetStream drops repeats by Nats-Msg-Id (within the stream's duplicate window).
 */
#ifndef DT_PARTITION_INT_H
#define DT_PARTITION_INT_H

#include "batch_int.h"
#include "engine_int.h"
#include "protocol_int.h"
#include "query_int.h"
#include "history/store_int.h"
#include "inbox_int.h"
#include "local_act_int.h"
#include "journal/journal_int.h"
#include "worker_int.h"

/* Whether a stream captures a subject, remembered for a while (outbox.c). */
typedef struct dt__capture_entry {
    char *subject; /* dt_alloc'd */
    bool captured;
    int64_t until_ms; /* monotonic */
} dt__capture_entry;

/* Copies of the stored rows of the instances the engine holds (rowcache.c). */
typedef struct dt__row_cache dt__row_cache;

/* The outbox batch whose PubAcks are on their way (outbox.c); lives in its own arena. */
typedef struct dt__outbox_flight {
    dt__arena *arena; /* NULL: nothing in flight */
    dt__outbox_row *rows;
    void *hs; /* per-row decoded headers (outbox.c's row_headers) */
    size_t n;
    size_t n_added; /* rows given to the async publisher */
    int64_t *done;  /* ids of rows known published */
    size_t n_done;
    bool local_ok; /* the rows of a batch's own commit: activities may run in-process */
} dt__outbox_flight;

/* Ids of stored outbox rows known published, waiting to be deleted by the next commit (or, on an
 * idle partition, on their own; outbox.c). */
typedef struct dt__outbox_settled {
    int64_t *ids; /* dt_alloc'd; freed by dt__outbox_settled_free */
    size_t n, cap;
    int64_t since_ms; /* monotonic time the oldest waiting id was added */
} dt__outbox_settled;

/* Ids of outbox rows whose activity runs in-process (ascending: rows are handed over in id
 * order), so that a listing of the store does not publish them as well (outbox.c). */
typedef struct dt__outbox_local {
    int64_t *ids; /* dt_alloc'd */
    size_t n, cap;
} dt__outbox_local;

struct dt__partition {
    dt_worker *w;
    uint32_t p;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool done;
    dt__store *store;     /* the partition's view of its log */
    dt__journal *journal; /* the log: every store write goes through it */
    uint64_t epoch;
    dt__engine *engine;
    dt__row_cache *rows; /* rows of the instances `engine` holds; see rowcache.c */
    dt_broker_consumer *consumer;
    dt__inbox *inbox; /* the consumer's fetcher and in-process activity results */
    dt_broker_publisher *pub;
    dt__query_service *query;
    char subject[DT_BROKER_NAME_BUF];       /* dt.<hub>.orch.<p> */
    char status_prefix[DT_BROKER_NAME_BUF]; /* $KV.DT_<hub>_STATUS. */
    bool outbox_pending;                    /* rows may be waiting to be published */
    dt__capture_entry captures[64];         /* by subject hash; see outbox.c */
    dt__outbox_flight flight;               /* see outbox.c */
    int64_t sent_upto;                      /* outbox rows up to this id are sent or done */
    dt__outbox_settled settled;             /* see outbox.c */
    dt__outbox_local local;                 /* see outbox.c */
    int64_t parked_checked_ms;              /* monotonic time of the last expiry check */
    int64_t retention_checked_ms;           /* monotonic time of the last retention check */
    dt_broker_kv *meta_kv;   /* the hub's META bucket (retention policy); opened on first use */
    dt_broker_kv *status_kv; /* the status bucket (records of purged instances); likewise */
    size_t max_msg;          /* largest message the hub and the server take, headers included */
    bool store_failed;       /* set-up could not open or claim the store (the thread then ends) */
};

/* ---- retention.c ---- */
/* Purges this partition's instances that finished longer ago than the hub's retention policy
 * allows; at most every retention_check_ms (cheap otherwise). Partition thread. */
void dt__retention_tick(dt__partition *pt);

/* ---- episode_park.c ---- */
/* Dead-letters (with the reason) and deletes the parked messages that waited longer than the
 * worker's parked_event_ttl_ms. Call only while the partition has no backlog: a start still in
 * the stream would otherwise lose its events. At most once a second does any work. */
void dt__parked_expire(dt__partition *pt);

/* ---- episode.c ---- */
/* Runs the episode of one instance's items and appends its commit to the batch. Items that are
 * duplicates or not applicable are skipped (and acked with the batch). */
dt_status dt__episode_process(dt__partition *pt, dt__batch *b, dt__group *g);

/* ---- episode_remote.c ---- */
/* Waits for the responses of the batch's remote episodes (in send order) and queues their
 * commits; an episode not answered is left for redelivery. After an error the rest are
 * withdrawn. */
dt_status dt__episode_remote_collect(dt__partition *pt, dt__batch *b);
/* Withdraws the batch's remote episodes (the batch failed before collecting them). */
void dt__episode_remote_cancel(dt__batch *b);

/* ---- entity_episode.c ---- */
/* Runs the operations of one entity's items (instance ID "@...") and appends the commit. */
dt_status dt__entity_episode_process(dt__partition *pt, dt__batch *b, dt__group *g);

/* ---- outbox.c ---- */
/* Outbox messages being collected for one episode's commit (arena memory). */
typedef struct dt__outbox_builder {
    dt__outbox_msg *msgs;
    size_t n, cap;
} dt__outbox_builder;
/* Appends a message; subject and msg_id are copied into `a`, data and headers are borrowed (they
 * must live in `a` or longer). */
dt_status dt__outbox_add(dt__arena *a, dt__outbox_builder *ob, const char *subject,
                         const char *msg_id, const uint8_t *data, size_t len,
                         const dt__blob *headers);
/*
 * The outbox in two halves, so that the partition fetches while PubAcks travel: send() publishes
 * the rows batch b (borrowed; may be NULL) committed, from the commit's memory, or, while rows
 * may be waiting in SQLite (start-up, after a failure), the stored rows not yet sent; one flight
 * at a time, without waiting. settle() waits for the flight's PubAcks (up to timeout_ms; usually
 * already there) and adds the published rows' ids to pt->settled. Failed rows are sent again
 * later. Crash-safe: a row is deleted only after its PubAck.
 */
dt_status dt__outbox_send(dt__partition *pt, const dt__batch *b);
dt_status dt__outbox_settle(dt__partition *pt, int64_t timeout_ms);
/* In-process activity results (local_act_int.h) of these rows were committed: their rows are
 * deleted with the published ones. */
void dt__outbox_local_done(dt__partition *pt, const int64_t *row_ids, size_t n);
/* The request of this row did not run in-process: publish it through JetStream. */
void dt__outbox_local_refused(dt__partition *pt, int64_t row_id);
/* The ids in pt->settled were deleted by a commit (dt__store_commit_settled): forget them. */
void dt__outbox_settled_done(dt__partition *pt);
/* Deletes the settled rows in a write transaction of their own when `now`, when they have waited
 * long (no commit came to take them: an idle partition) or when many wait. */
dt_status dt__outbox_trim(dt__partition *pt, bool now);
void dt__outbox_settled_free(dt__partition *pt);
/* Frees the partition's subject-capture cache. */
void dt__outbox_cache_clear(dt__partition *pt);
/* Encodes headers (and whether a plain NATS publish may stand in when no stream captures the
 * subject) as an outbox headers blob. */
dt_status dt__outbox_headers(dt__arena *a, const Dtpb__MessagePublishedEvent *src, bool core_ok,
                             dt__blob *out);

/* ---- rowcache.c ---- */
/* An empty cache for an engine holding up to engine_capacity instances; *out is freed with
 * dt__row_cache_destroy (accepts NULL). Confined to the partition thread. */
dt_status dt__row_cache_create(size_t engine_capacity, dt__row_cache **out);
void dt__row_cache_destroy(dt__row_cache *c);
/* Copies the cached row of instance_id (borrowed) into `a` as *out when the engine is current at
 * that row's execution and history length: DT_OK; DT_ENOTFOUND when there is no usable entry
 * (read the store instead); DT_ENOMEM. */
dt_status dt__row_cache_get(dt__row_cache *c, dt__engine *engine, const char *instance_id,
                            dt__arena *a, dt__instance_row *out);
/* Remembers *row (copied; its history_len must be the one just committed) after a successful
 * commit; a row the engine is not current at, or too large to keep, only drops the old entry. */
void dt__row_cache_put(dt__row_cache *c, dt__engine *engine, const dt__instance_row *row);
/* Forgets one instance (instance_id borrowed), or every instance. */
void dt__row_cache_drop(dt__row_cache *c, const char *instance_id);
void dt__row_cache_clear(dt__row_cache *c);
/* Entries held (for tests and diagnostics). */
size_t dt__row_cache_size(const dt__row_cache *c);

/* ---- partition_dead_letter.c ---- */
/* Publishes a dead letter (best effort, logged) for a message the partition cannot apply. */
void dt__dead_letter(dt__partition *pt, const char *kind, const char *reason,
                     const char *instance_id, const void *data, size_t len,
                     const char *orig_subject);

/* ---- partition.c: what the supervisor calls ---- */
/* Starts the thread that runs partition p (it claims the store epoch first). */
dt_status dt__partition_start(dt_worker *w, uint32_t p, dt__partition **out);
/* True once the partition thread has exited (lease lost, fenced, or stopped). */
bool dt__partition_done(dt__partition *pt);
/* After the thread ended: whether its store could not be opened (the worker then leaves the
 * partition to others for a while). */
bool dt__partition_store_failed(const dt__partition *pt);
/* Asks the thread to stop after its current batch, without waiting (NULL accepted). */
void dt__partition_request_stop(dt__partition *pt);
/* Asks the thread to stop after its current batch, joins it and frees. NULL accepted. */
void dt__partition_stop(dt__partition *pt);

#endif
