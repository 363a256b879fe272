/*
 * client_int.h: what the files of runtime/client share (internal, dt__client_ prefix).
 *
 * client.c holds the handle, hub management and IDs; schedule.c starts instances; signal.c
 * raises events and terminates / suspends / resumes; status.c reads and waits on the status
 * bucket; scatter.c asks the partition owners (list, history, purge); convert.c turns protobuf
 * messages into the public result structs.
 *
 * Result objects own an arena holding everything they point to; the public struct is the first
 * member of a holder that also records the arena, so freeing the struct frees the arena.
 *
 * Threads: a client is shared by any number of threads (client.h). What calls share is guarded:
 * the hub's config by `mu` (written once, then only read), the error text by `err_mu`, the pool
 * of start publishers by `pub_mu`, the waits (waits.c) by their own lock. The connection is
 * thread-safe; the status record is read and written only through thread-safe broker calls
 * (dt_broker_kv_key_last, dt_broker_publish, a publisher taken from the pool).
 */
#ifndef DT_CLIENT_INT_H
#define DT_CLIENT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "common_int.h"
#include "dt_broker.h"
#include "durabletask/client.h"
#include "protocol_int.h"
#include "tracing_int.h"

/* Room left in a message for headers and NATS framing when checking sizes against the hub's
 * max_msg_size. */
#define DT__CLIENT_HEADROOM 1024
/* Bytes of a status-bucket key buffer (every ID byte may become "=XX"). */
#define DT__CLIENT_KEY_BUF (3 * DT_INSTANCE_ID_MAX + 1)

/* Start publishers kept for reuse (each is one subscription on the server). */
#define DT__CLIENT_PUB_POOL 32

/* The waits of a client (waits.c): one feed of the status bucket serving every wait. */
typedef struct dt__client_waiter dt__client_waiter;
#define DT__CLIENT_WAIT_BUCKETS 256
typedef struct dt__client_waits {
    pthread_mutex_t mu;      /* guards everything below */
    pthread_mutex_t feed_mu; /* serializes opening and refreshing the feed (round trips) */
    dt_broker_kv_feed *feed; /* opened by the first wait; closed by dt_client_destroy */
    bool feed_failed;        /* it could not be opened: waits use a watch of their own key */
    dt__client_waiter *table[DT__CLIENT_WAIT_BUCKETS]; /* registered waits, by key hash */
    /* Starts tracked for a later wait (waits.c), oldest first; owned by the client. */
    dt__client_waiter *track_head, *track_tail;
    size_t ntracked;
    size_t active;       /* waits inside wait_for_* (destroy waits for them to leave) */
    bool closing;        /* dt_client_destroy began: waits end with DT_ECLOSED */
    pthread_cond_t idle; /* signalled when `active` falls to 0 while closing */
} dt__client_waits;

struct dt_client {
    dt_broker *b;
    char hub[DT_BROKER_HUB_NAME_MAX + 1];
    int64_t request_timeout_ms;
    int64_t wait_missing_ms; /* < 0: none */
    pthread_mutex_t mu;      /* guards the lazy reading of the hub's config below */
    bool have_cfg; /* atomic: the fields below are set and stay so (until hub create/delete) */
    dt_broker_hub_config cfg;
    dt_broker_kv *status_kv;                    /* opened with the config; NULL until then */
    char status_bucket[DT_BROKER_NAME_BUF];     /* its name, for single-key reads and watches */
    char status_prefix[DT_BROKER_NAME_BUF + 8]; /* "$KV.<bucket>." for record writes */
    /* Publishers that send a start without waiting, so that its status record goes in the same
     * round trip (schedule.c). Each serves one call at a time: taken from the pool, given back
     * after; created when the pool is empty, destroyed when it is full. Owned by the client. */
    pthread_mutex_t pub_mu;
    dt_broker_publisher *pubs[DT__CLIENT_PUB_POOL];
    size_t npubs;
    dt__client_waits waits;
    pthread_mutex_t err_mu; /* guards err */
    char err[512];
    struct dt__tracer *tracer; /* NULL: tracing off (runtime/tracing, the OTEL_* variables) */
};

/* Takes a publisher from the pool (or a new one); give it back with dt__client_pub_put. */
dt_status dt__client_pub_take(dt_client *c, dt_broker_publisher **out);
void dt__client_pub_put(dt_client *c, dt_broker_publisher *p);

/* The connection's last error text copied into buf (another thread may be failing meanwhile);
 * returns buf. DT__CLIENT_BERR(c) gives a temporary buffer living to the end of the enclosing
 * full expression's block. */
const char *dt__client_berr(dt_client *c, char *buf, size_t len);
#define DT__CLIENT_BERR(c) dt__client_berr((c), (char[256]){0}, 256)

/* ---- waits.c ---- */

/* Sets up / tears down c->waits. destroy ends pending waits (DT_ECLOSED) and returns once every
 * wait has left the client. */
void dt__client_waits_init(dt__client_waits *w);
void dt__client_waits_destroy(dt_client *c);
/* The connection came back (the broker's on_reconnected thread): waits re-read their record. */
void dt__client_waits_reconnected(dt_client *c);

/* Brackets a public wait call: DT_ECLOSED once destroy began; else the call counts as active
 * (destroy waits for it) until leave, after which it must not touch the client. */
dt_status dt__client_wait_enter(dt_client *c);
void dt__client_wait_leave(dt_client *c);

typedef bool (*dt__client_wait_pred)(int32_t status);
/* Waits until pred holds for the instance's record (decoded into `a`, *out), timeout_ms > 0 or
 * < 0 (no bound). DT_ETIMEOUT, DT_ENOTFOUND (no record, or deleted), DT_ECLOSED (the client is
 * being destroyed). `what` ("start" / "complete") words a timeout. */
dt_status dt__client_wait(dt_client *c, dt__arena *a, const char *id, int64_t timeout_ms,
                          dt__client_wait_pred pred, const char *what, Dtpb__InstanceStatus **out);
/* As dt__client_wait, counting only a record written after revision after_rev (the one read
 * before a request: the wait ends once the request's effect is stored). */
dt_status dt__client_wait_after(dt_client *c, dt__arena *a, const char *id, int64_t timeout_ms,
                                uint64_t after_rev, dt__client_wait_pred pred, const char *what,
                                Dtpb__InstanceStatus **out);

/* A start tracked for a later wait (waits.c): begin registers `key` with the feed before the
 * start is sent (NULL: not tracked; no feed open yet, or no memory). end gives the entry the
 * record the start wrote (rec, len; copied) at revision rev, and the client keeps it for a wait
 * of that instance, which then needs no read; rec NULL or rev 0 (the record is not exactly the
 * one written) drops it. end takes `t` (NULL accepted). */
dt__client_waiter *dt__client_track_begin(dt_client *c, const char *key);
void dt__client_track_end(dt_client *c, dt__client_waiter *t, const void *rec, size_t len,
                          uint64_t rev);

/* Decodes a record value (DT_ECORRUPT naming the instance). */
dt_status dt__client_decode_record(dt_client *c, dt__arena *a, const char *id, const void *value,
                                   size_t len, Dtpb__InstanceStatus **out);

/* Writes of a status record, thread-safe (a JetStream publish to "$KV.<bucket>.<key>"):
 * expect_rev > 0 writes only at that revision (DT_ECONFLICT), expect_rev 0 only if the key has
 * never been written or was deleted (DT_EEXIST). del writes a delete marker instead of data,
 * at expect_rev when > 0, else unconditionally. */
dt_status dt__client_kv_write(dt_client *c, const char *key, const void *data, size_t len,
                              uint64_t expect_rev, bool del, uint64_t *out_rev);
/* The outgoing form of a record write for a publisher batch (subject into `subject`,
 * DT_BROKER_NAME_BUF * 2 bytes): expect_rev > 0 as above; 0: only if the key has no entry at
 * all (a deleted key conflicts: follow up with dt__client_kv_write). */
dt_status dt__client_kv_outmsg(dt_client *c, const char *key, const void *data, size_t len,
                               uint64_t expect_rev, char *subject, dt_broker_outmsg *out);

/* Formats c->err, the handle's error text. */
void dt__client_seterr(dt_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats c->err and is `st` (evaluated once). A macro rather than a function returning st, so
 * that the status is visible where it is used: clang-tidy's analyzer then follows the error
 * paths instead of taking every status as possible (which reported NULL dereferences there). */
#define dt__client_fail(c, st, ...) (dt__client_seterr((c), __VA_ARGS__), (st))

/* Reads the hub's config and opens its status bucket on first use. DT_ENOTFOUND: no hub. */
dt_status dt__client_ensure_hub(dt_client *c);

/* Validates an instance ID (DT_EINVAL with a message naming `what`). */
dt_status dt__client_check_id(dt_client *c, const char *what, const char *id);
/* Validates an orchestration or event name. */
dt_status dt__client_check_name(dt_client *c, const char *what, const char *name);

/* A random number in [0, 2^63). */
dt_status dt__client_rand63(dt_client *c, int64_t *out);

/* "dt.<hub>.<orch|query>.<partition>" of `id` or of partition p. */
dt_status dt__client_partition_subject(dt_client *c, dt_broker_family f, uint32_t p, char *buf,
                                       size_t len);

/* Packs `m` into arena memory and checks its size against the hub's limit (DT_ETOOLARGE). */
dt_status dt__client_pack_checked(dt_client *c, dt__arena *a, const ProtobufCMessage *m,
                                  const char *what, uint8_t **out, size_t *out_len);

/* The outgoing form of an OrchestrationMessage: to the instance's partition, packed into `a`,
 * Nats-Msg-Id = dedupe_id. `subject` (caller's, DT_BROKER_NAME_BUF bytes) holds the subject that
 * *out points to; `m` must outlive *out. */
dt_status dt__client_orch_outmsg(dt_client *c, dt__arena *a, const Dtpb__OrchestrationMessage *m,
                                 char *subject, dt_broker_outmsg *out);

/* Sends a query to partition p's owner and decodes the reply into `a` (scatter.c): DT_EBUSY when
 * no worker runs it, a failed reply's status (and text) otherwise. */
dt_status dt__client_ask(dt_client *c, dt__arena *a, uint32_t p, const Dtpb__QueryRequest *req,
                         Dtpb__QueryResponse **out);

/* The metadata of a stored entity row, as a list reply gives it (state in output, lock record in
 * custom_status), into *m (arena memory); *out_cs (may be NULL) receives the lock's critical
 * section (or stays). DT_EDECODE for a row that is not an entity's. (entity.c) */
struct dt_entity_metadata;
dt_status dt__client_entity_metadata(dt_client *c, dt__arena *a, const Dtpb__InstanceStatus *s,
                                     bool include_state, struct dt_entity_metadata *m,
                                     const char **out_cs);

/* Publishes an OrchestrationMessage to the instance's partition with Nats-Msg-Id = dedupe_id. */
dt_status dt__client_publish_orch(dt_client *c, dt__arena *a, const Dtpb__OrchestrationMessage *m,
                                  dt_broker_puback *out_ack);

/* Initialises *ts (caller's memory) to `ms`; dt__ts_to_ms (pb_int.h) is the inverse. */
void dt__client_ts_set(Dtpb__Timestamp *ts, int64_t ms);

/* Reads and decodes the instance's status record into arena memory. DT_ENOTFOUND if absent;
 * *out_rev (may be NULL) receives the record's revision. */
dt_status dt__client_status_read(dt_client *c, dt__arena *a, const char *id,
                                 Dtpb__InstanceStatus **out, uint64_t *out_rev);

/* Reads the instance's record as last written, deletes included: on DT_OK *out is the record,
 * or NULL when there is none (deleted: *out_rev is the delete marker's revision; never written:
 * 0). Equal revisions mean the same state (schedule.c builds start identities from them). */
dt_status dt__client_status_last(dt_client *c, dt__arena *a, const char *id,
                                 Dtpb__InstanceStatus **out, uint64_t *out_rev);

bool dt__client_status_finished(int32_t s);
/* A record with payloads_omitted (too large for one message): fills in its input, output,
 * custom status and failure details, each read from the partition's owner (scatter.c). */
dt_status dt__client_status_complete(dt_client *c, dt__arena *a, Dtpb__InstanceStatus *s);

/* ---- convert.c ---- */

/* Fills *out from `s` (strings and payloads copied into `a`; payloads only when with_payloads). */
dt_status dt__client_instance_from_pb(dt__arena *a, const Dtpb__InstanceStatus *s,
                                      bool with_payloads, dt_client_instance *out);
/* Fills *out from a decoded event and its packed form. */
dt_status dt__client_event_from_pb(dt__arena *a, const Dtpb__HistoryEvent *e, const uint8_t *raw,
                                   size_t raw_len, dt_client_event *out);
/* Converts a failure tree (depth-bounded); NULL for NULL. */
const dt_failure *dt__client_failure_from_pb(dt__arena *a, const Dtpb__TaskFailureDetails *f);

/* Result holders: allocate with the arena inside; free frees the arena. */
dt_client_instance *dt__client_instance_new(dt__arena *a);
dt_client_page *dt__client_page_new(dt__arena *a);
dt_client_history *dt__client_history_new(dt__arena *a);

/* ---- trace_start.c: tracing of starts (runtime/tracing) ---- */
/* Gives start message m (its ExecutionStarted) its caller's context: the client's span
 * "create_orchestration:<name>" (a child of o->traceparent, or a new trace) when tracing is on,
 * else o->traceparent as given. Returns the span to end with dt__client_trace_end (NULL: none). */
dt__span *dt__client_trace_start(dt_client *c, dt__arena *a, const char *name,
                                 const dt_client_start_options *o, Dtpb__OrchestrationMessage *m);
/* Ends the span (NULL accepted) with the schedule's outcome. */
void dt__client_trace_end(dt__span *span, dt_status st);
/* The traceparent / tracestate headers of a start message that carries a caller context (array
 * in `a`, set in *out); returns how many (0: none, *out NULL). */
size_t dt__client_trace_headers(dt__arena *a, const Dtpb__OrchestrationMessage *m,
                                const dt_broker_header **out);

#endif
