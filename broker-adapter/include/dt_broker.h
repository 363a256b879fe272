/*
 * dt_broker.h: the message-broker adapter (internal but shared by the runtime, the client and
 * dtctl). Every use of nats.c in the project sits behind this header; nothing above it includes
 * <nats/nats.h>. It sits on nats.c 3.4.1 and a nats-server 2.9 with JetStream.
 *
 * What it offers, in the order of this file:
 *   - a connection (dt_broker) that reconnects forever with backoff;
 *   - task hubs: the JetStream streams and KV buckets of one hub, created idempotently, verified,
 *     read (clients learn the partition count P) and deleted;
 *   - names: validation of hub names and subject tokens, formatting of stream/bucket/subject names;
 *   - publishing: synchronous (one PubAck) and an async publisher with a bounded window that
 *     reports success or failure per message;
 *   - consuming: durable pull consumers, batched fetch, received messages with ack/nak/term;
 *   - KV: get/put/create/update-with-revision/delete and watches;
 *   - core NATS: publish, request/reply and callback subscriptions (for query scatter).
 *
 * Conventions. Fallible functions return dt_status (DT_OK = 0); out_* parameters are written only
 * on DT_OK unless stated. Each handle keeps the text of its last failure (dt_broker_errmsg(),
 * dt_broker_publisher_errmsg(), ...). Durations are milliseconds unless the name says otherwise.
 * Pointer parameters are borrowed for the duration of the call unless stated.
 *
 * Lifetimes. Every sub-handle (publisher, consumer, kv, watcher, sub) and every received message
 * must be destroyed before the dt_broker it came from is closed. Messages may outlive their
 * consumer handle (the consumer is reference-counted by its messages).
 *
 * The library-wide nats.c state is opened once, on the first dt_broker_connect() (pthread_once).
 * dt_broker_global_shutdown() tears it down for tools and tests that want a leak-free exit.
 */
#ifndef DT_BROKER_H
#define DT_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/connection.h"
#include "durabletask/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------------------------- */

/* Longest hub name (characters [A-Za-z0-9_-]). */
#define DT_BROKER_HUB_NAME_MAX 48
/* A buffer of this size holds any stream, bucket or subject name this header formats. */
#define DT_BROKER_NAME_BUF 256
/* Highest partition count of a hub. */
#define DT_BROKER_MAX_PARTITIONS 1024u
/* Most messages one fetch returns. */
#define DT_BROKER_FETCH_MAX 4096u
/* Format version of the hub config record this build writes (see dt_broker_hub_create). */
#define DT_BROKER_HUB_FORMAT_VERSION 1u

/* ---------------------------------------------------------------------------------------------
 * Connection
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_broker dt_broker;
/* A received or stored message (see "Received messages" below). */
typedef struct dt_broker_msg dt_broker_msg;

/*
 * Connection-event callback. Called on a nats.c internal thread (one thread delivers all events
 * of a connection, in order); it must not call dt_broker_close() on `b` and should return quickly.
 */
typedef void (*dt_broker_event_cb)(dt_broker *b, void *ctx);
/* Asynchronous error (for example a slow consumer). Same thread rules as dt_broker_event_cb. */
typedef void (*dt_broker_error_cb)(dt_broker *b, const char *text, void *ctx);

typedef struct dt_broker_options {
    /* Comma-separated server URLs ("nats://h1:4222,nats://h2:4222"), tried in random order (nats.c
     * spreads clients over the list); a tls:// URL makes TLS required. NULL:
     * nats://127.0.0.1:4222. User info in a URL (nats://user:pass@host) is used but never
     * printed. */
    const char *urls;
    /* Credentials and TLS (durabletask/connection.h). Borrowed for dt_broker_connect only: nats.c
     * keeps its own copies, and the handle only the path of a credentials or nkey seed file
     * (read again at every reconnect), no secret. Zeroed: a plain connection. */
    dt_nats_security security;
    /* Connection name shown by the server's monitoring. NULL: none. */
    const char *name;
    /* Per-attempt connect timeout (default 2000). */
    int64_t connect_timeout_ms;
    /* Reconnect backoff: after each failed round over all URLs the wait doubles from
     * reconnect_min_ms up to reconnect_max_ms, plus up to 25% jitter (defaults 100 and 5000).
     * Reconnection never gives up. */
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    /* Interval of client pings, which bounds how long a silently dead server goes unnoticed
     * (default 5000). */
    int64_t ping_interval_ms;
    /* Timeout of JetStream API requests and synchronous publishes (default 5000). */
    int64_t request_timeout_ms;
    /* Write each protocol message at once instead of coalescing for 1 ms (NATS-NOTES fact 4):
     * lower latency, lower async-publish throughput. Default false. */
    bool send_asap;
    /* When no server is reachable at connect time: false (default) fails with DT_EBROKER; true
     * returns a handle that keeps trying in the background (on_reconnected fires on success). */
    bool retry_initial_connect;
    dt_broker_event_cb on_disconnected;
    dt_broker_event_cb on_reconnected;
    /* Called once, from dt_broker_close(), before it returns. */
    dt_broker_event_cb on_closed;
    dt_broker_error_cb on_error;
    void *cb_ctx;
} dt_broker_options;

/* Fills `o` with the defaults above. */
void dt_broker_options_init(dt_broker_options *o);

/*
 * Connects. `o` is copied (NULL: defaults; o->security is only read during the call). On DT_OK
 * *out is a thread-safe handle that the caller closes with dt_broker_close(). Fails with
 * DT_EINVAL (bad option, unreadable credential or TLS file), DT_EAUTH (a server refused the
 * credentials, or TLS failed: certificate not trusted, TLS required by one side only) or
 * DT_EBROKER (no server reachable). The reason goes to out_err when it is not NULL (there is no
 * handle to ask); it names URLs without their user info and never contains a secret.
 */
dt_status dt_broker_connect(const dt_broker_options *o, dt_broker **out, char *out_err,
                            size_t err_len);

/*
 * Closes the connection and frees `b` (NULL accepted). All sub-handles and messages of `b` must
 * have been destroyed. Buffered publishes and acks are flushed (bounded by the request timeout).
 */
void dt_broker_close(dt_broker *b);

/*
 * Text of the most recent failure of a call on `b` (never NULL; "" if none). Valid until the next
 * failing call on `b`. When threads share `b` the text may belong to another thread's call: use
 * dt_broker_errmsg_copy(), which is atomic with respect to other calls.
 */
const char *dt_broker_errmsg(const dt_broker *b);
void dt_broker_errmsg_copy(const dt_broker *b, char *buf, size_t len);

/* True while connected (false while reconnecting or closed). Thread-safe. */
bool dt_broker_is_connected(const dt_broker *b);

/* The server's maximum message payload in bytes (0 when not connected). */
int64_t dt_broker_max_payload(const dt_broker *b);

/*
 * Writes out everything buffered on the connection (publishes, acks, pull requests) and waits
 * for the server to have processed it (a PING/PONG round trip). DT_ETIMEOUT after timeout_ms.
 * Use when a loop goes idle, to avoid waiting for the 1 ms coalescing (NATS-NOTES fact 4).
 */
dt_status dt_broker_flush(dt_broker *b, int64_t timeout_ms);

/*
 * Tears down nats.c's library-wide state and waits for its threads (nats_CloseAndWait), so that
 * LeakSanitizer sees a clean exit. Call at most once, at the end of the process, after every
 * dt_broker has been closed; no dt_broker_ function may be called afterwards. Returns DT_ETIMEOUT
 * if nats.c did not finish within 5 s.
 */
dt_status dt_broker_global_shutdown(void);

/* ---------------------------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------------------------- */

/* The streams and buckets of a hub (values index internal tables; not persisted). */
typedef enum dt_broker_stream {
    DT_BROKER_STREAM_ORCH = 0, /* DT_<hub>_ORCH, subjects dt.<hub>.orch.*, work queue */
    DT_BROKER_STREAM_ACT = 1,  /* DT_<hub>_ACT,  subjects dt.<hub>.act.*,  work queue */
    DT_BROKER_STREAM_IN = 2,   /* DT_<hub>_IN,   subjects dt.<hub>.in.>,   work queue */
    DT_BROKER_STREAM_DEAD = 3, /* DT_<hub>_DEAD, subjects dt.<hub>.dead.>, limits */
    DT_BROKER_STREAM_LOG = 4   /* DT_<hub>_LOG,  subjects dt.<hub>.log.>,  limits, direct get:
                                  each partition's log and snapshots (runtime/journal) */
} dt_broker_stream;

typedef enum dt_broker_bucket {
    DT_BROKER_BUCKET_META = 0,   /* DT_<hub>_META: key "config" */
    DT_BROKER_BUCKET_LEASES = 1, /* DT_<hub>_LEASES: entries expire after the lease TTL */
    DT_BROKER_BUCKET_STATUS = 2  /* DT_<hub>_STATUS: instance status records */
} dt_broker_bucket;

/* Subject families of a hub: dt.<hub>.<family>.<token>. */
typedef enum dt_broker_family {
    DT_BROKER_SUBJ_ORCH = 0,  /* dt.<hub>.orch.<partition> */
    DT_BROKER_SUBJ_ACT = 1,   /* dt.<hub>.act.<task queue> */
    DT_BROKER_SUBJ_IN = 2,    /* dt.<hub>.in.<kind>[.<name>] */
    DT_BROKER_SUBJ_DEAD = 3,  /* dt.<hub>.dead.<...> */
    DT_BROKER_SUBJ_QUERY = 4, /* dt.<hub>.query.<partition> (core request/reply) */
    DT_BROKER_SUBJ_LOG = 5    /* dt.<hub>.log.<partition>[.<part>] */
} dt_broker_family;

/* True if `hub` is 1..DT_BROKER_HUB_NAME_MAX characters of [A-Za-z0-9_-]. */
bool dt_broker_hub_name_valid(const char *hub);

/*
 * True if `token` is a non-empty subject token safe to publish to: printable ASCII without
 * spaces, '.', '*' or '>'. Use it for task-queue and orchestration names placed in subjects.
 */
bool dt_broker_token_valid(const char *token);

/* "DT_<hub>_ORCH" etc. into buf. DT_EINVAL for a bad hub name, DT_ETOOLARGE if buf is short. */
dt_status dt_broker_stream_name(const char *hub, dt_broker_stream s, char *buf, size_t len);
dt_status dt_broker_bucket_name(const char *hub, dt_broker_bucket k, char *buf, size_t len);

/*
 * "dt.<hub>.<family>.<tail>" into buf. `tail` is one or more dot-separated tokens, each valid
 * for dt_broker_token_valid(), or (for filters) the wildcards "*" / ">". DT_EINVAL on a bad hub
 * or tail, DT_ETOOLARGE if buf is short.
 */
dt_status dt_broker_subject(const char *hub, dt_broker_family f, const char *tail, char *buf,
                            size_t len);

/* ---------------------------------------------------------------------------------------------
 * Task hubs
 * ------------------------------------------------------------------------------------------- */

/* PERSISTED in the hub config record as a string ("file" / "memory"). */
typedef enum dt_broker_storage {
    DT_BROKER_STORAGE_FILE = 0,
    DT_BROKER_STORAGE_MEMORY = 1
} dt_broker_storage;

typedef struct dt_broker_hub_config {
    uint32_t partitions;         /* P: 1..DT_BROKER_MAX_PARTITIONS (default 4) */
    uint32_t replicas;           /* stream and bucket replicas: 1..5 (default 1) */
    uint32_t max_msg_size;       /* per message, headers included; <= the server's max payload
                                    (default 1 MiB) */
    int64_t duplicate_window_ms; /* Nats-Msg-Id dedupe window (default 120000, >= 1000) */
    int64_t lease_ttl_ms;        /* TTL of the leases bucket (default 10000, >= 1000) */
    dt_broker_storage storage;   /* default file */
    /* Output only (filled by dt_broker_hub_get / _create; ignored on input). */
    int64_t created_at_ms;   /* wall clock of the first creation */
    uint32_t format_version; /* of the stored record */
} dt_broker_hub_config;

/* Fills `c` with the defaults above. */
void dt_broker_hub_config_init(dt_broker_hub_config *c);

/*
 * Creates hub `hub` with settings `c`: streams DT_<hub>_ORCH/_ACT/_IN/_DEAD/_LOG and buckets
 * DT_<hub>_META/_LEASES/_STATUS, then the record "config" in DT_<hub>_META (written last: its
 * presence means the hub is complete). Idempotent: objects that exist with the same settings are
 * kept, missing ones are created (this also completes a hub whose creation was interrupted).
 * An existing hub or object with different settings gives DT_ECONFLICT and an errmsg naming the
 * first difference; nothing is changed. Other failures: DT_EINVAL (name or settings),
 * DT_EVERSION (stored record newer than this build), DT_ECORRUPT, DT_EBROKER, DT_ETIMEOUT.
 * On DT_OK, out_cfg (may be NULL) receives the stored config. Safe to race with other creators.
 *
 * The config record is JSON (one flat object, unknown keys ignored), readable with any NATS
 * tool: {"format_version":1,"partitions":4,"replicas":1,"max_msg_size":1048576,
 *  "duplicate_window_ms":120000,"lease_ttl_ms":10000,"storage":"file","created_at_ms":<ms>}
 */
dt_status dt_broker_hub_create(dt_broker *b, const char *hub, const dt_broker_hub_config *c,
                               dt_broker_hub_config *out_cfg);

/*
 * Reads the hub's config record (one KV read). DT_ENOTFOUND if there is no such hub,
 * DT_EVERSION / DT_ECORRUPT for a record this build cannot read.
 */
dt_status dt_broker_hub_get(dt_broker *b, const char *hub, dt_broker_hub_config *out_cfg);

/*
 * dt_broker_hub_get() plus a check that every stream and bucket exists with the recorded
 * settings: DT_ENOTFOUND naming a missing object, DT_ECONFLICT naming a difference.
 */
dt_status dt_broker_hub_verify(dt_broker *b, const char *hub, dt_broker_hub_config *out_cfg);

/*
 * Deletes every stream, consumer and bucket of the hub, and its messages. DT_ENOTFOUND if none of
 * them existed. The config record goes first, so an interrupted delete leaves no usable hub.
 */
dt_status dt_broker_hub_delete(dt_broker *b, const char *hub);

typedef struct dt_broker_stream_info {
    uint64_t msgs;
    uint64_t bytes;
    uint64_t first_seq;
    uint64_t last_seq;
    int64_t consumers;
} dt_broker_stream_info;

/*
 * Creates a file-backed stream `name` capturing `subject` (wildcards allowed; limits retention,
 * default 2-minute Nats-Msg-Id dedupe window) if it does not exist. An existing stream with other
 * subjects is DT_ECONFLICT. For applications that keep what orchestrations publish.
 */
dt_status dt_broker_stream_ensure(dt_broker *b, const char *name, const char *subject);
/*
 * Whether some stream captures `subject` (one JetStream API request). A JetStream publish to a
 * subject no stream captures but a plain subscriber listens on gets no PubAck and no "no
 * responders" either (the subscriber receives it and never answers), so publishers of arbitrary
 * subjects ask this first. Thread-safe.
 */
dt_status dt_broker_subject_captured(dt_broker *b, const char *subject, bool *out_captured);

/* Deletes stream `name` and its messages. DT_ENOTFOUND if absent. */
dt_status dt_broker_stream_delete(dt_broker *b, const char *name);

/* State of stream `stream` (by full name). DT_ENOTFOUND if absent. */
dt_status dt_broker_stream_info_get(dt_broker *b, const char *stream, dt_broker_stream_info *out);

/* How dt_broker_stream_get finds its message. */
typedef enum dt_broker_get_mode {
    DT_BROKER_GET_SEQ = 0,  /* the message with sequence `seq` (any subject) */
    DT_BROKER_GET_NEXT = 1, /* the first message on `subject` with sequence >= `seq` */
    DT_BROKER_GET_LAST = 2  /* the last message on `subject` (`seq` ignored) */
} dt_broker_get_mode;

/*
 * Reads one stored message of `stream` (full name; the stream must allow direct get, as a hub's
 * LOG stream does) without a consumer. On DT_OK *out is a message the caller destroys with
 * dt_broker_msg_destroy: data, headers (dt_broker_msg_header) and dt_broker_msg_stored_seq; it
 * cannot be acknowledged. DT_ENOTFOUND when there is no such message. Any replica may answer:
 * the view can lag the newest write briefly (see broker-adapter/stream_read.c). Thread-safe.
 */
dt_status dt_broker_stream_get(dt_broker *b, const char *stream, const char *subject,
                               dt_broker_get_mode mode, uint64_t seq, dt_broker_msg **out);
/* The stream sequence of a message read by dt_broker_stream_get. */
uint64_t dt_broker_msg_stored_seq(const dt_broker_msg *m);
/* Removes the messages on `subject` (borrowed; wildcards allowed) with sequence < below_seq. */
dt_status dt_broker_stream_purge(dt_broker *b, const char *stream, const char *subject,
                                 uint64_t below_seq);

/* ---------------------------------------------------------------------------------------------
 * Publishing
 * ------------------------------------------------------------------------------------------- */

/* A message header. The name must be non-empty and free of ':', CR and LF (DT_EINVAL otherwise);
 * CR and LF in a value are sent as spaces, a NULL value as "". Names are case-sensitive. */
typedef struct dt_broker_header {
    const char *name;
    const char *value;
} dt_broker_header;

/* An outgoing message. All pointers are borrowed for the duration of the call that takes it. */
typedef struct dt_broker_outmsg {
    const char *subject;
    /* Nats-Msg-Id: JetStream drops a repeat within the hub's duplicate window. NULL: none. */
    const char *msg_id;
    const dt_broker_header *headers;
    size_t nheaders;
    const void *data;
    size_t len;
    /* Optimistic concurrency (stage-2 fencing): store only if the last message on this subject
     * has this stream sequence (0: no expectation), or only if there is none at all. A mismatch
     * fails with DT_ECONFLICT. */
    uint64_t expect_last_subject_seq;
    bool expect_no_message;
} dt_broker_outmsg;

typedef struct dt_broker_puback {
    uint64_t stream_seq;
    bool duplicate; /* the message was a repeat of one already stored (same Nats-Msg-Id) */
} dt_broker_puback;

/*
 * Publishes to JetStream and waits for the PubAck (~10k/s: not for hot paths). out_ack may be
 * NULL. DT_EBROKER when no stream captures the subject ("no responders"), DT_ETOOLARGE when the
 * message exceeds the stream's or server's limit, DT_ECONFLICT on a failed expectation,
 * DT_ETIMEOUT without a PubAck (the message may or may not be stored: re-publish with the same
 * msg_id). Thread-safe.
 */
dt_status dt_broker_publish(dt_broker *b, const dt_broker_outmsg *m, dt_broker_puback *out_ack);

/*
 * The async publisher: pipelines JetStream publishes with at most `window` unacknowledged
 * messages, and reports each message's outcome. Usage per batch: add() each message with a
 * caller tag (an outbox row id, say), wait() once, then read results() and act per message
 * (delete the outbox rows of acked ones only).
 *
 * Confined to one thread (caller serializes). That thread also collects the PubAcks: they queue
 * on the publisher's own reply subscription and are taken inside add() (only when the window is
 * full), wait() and inflight(); no nats.c callback thread is involved, so PubAcks that arrive
 * while the caller works cost no thread wake-up.
 */
typedef struct dt_broker_publisher dt_broker_publisher;

typedef struct dt_broker_publisher_options {
    size_t window;            /* unacknowledged messages at most (default 4096) */
    size_t max_batch;         /* messages between two wait() calls (default 65536) */
    int64_t ack_timeout_ms;   /* a message without PubAck after this fails with DT_ETIMEOUT
                                 (default: the connection's request timeout) */
    int64_t stall_timeout_ms; /* add() waits this long for room in the window (default 5000) */
} dt_broker_publisher_options;

typedef struct dt_broker_pub_result {
    uint64_t tag;        /* as given to add() */
    dt_status status;    /* DT_OK: stored (or a duplicate of a stored one) */
    bool duplicate;      /* DT_OK only */
    uint64_t stream_seq; /* DT_OK only */
    const char *error;   /* NULL on DT_OK; else the reason, owned by the publisher */
} dt_broker_pub_result;

void dt_broker_publisher_options_init(dt_broker_publisher_options *o);

/* Creates a publisher on `b` (`o` copied; NULL: defaults). Destroy with _destroy. */
dt_status dt_broker_publisher_create(dt_broker *b, const dt_broker_publisher_options *o,
                                     dt_broker_publisher **out);

/*
 * Sends `m` without waiting for its PubAck. The first add() after a wait() starts a new batch
 * (results of the previous one become invalid). On failure the message is not part of the batch
 * and was not sent: DT_ETOOLARGE (payload over the server limit), DT_EBUSY (max_batch reached:
 * wait() first), DT_ETIMEOUT (window stayed full for stall_timeout_ms), DT_EBROKER.
 */
dt_status dt_broker_publisher_add(dt_broker_publisher *p, const dt_broker_outmsg *m, uint64_t tag);

/*
 * Waits until every message of the batch has an outcome, at most timeout_ms; messages still
 * unacknowledged then are taken back and reported as DT_ETIMEOUT (their fate is unknown:
 * re-publish them with the same msg_id), as is each message without PubAck ack_timeout_ms after
 * its add(). "No responders" (no stream takes the subject) is DT_EBROKER, except in a batch where
 * another message already timed out: then it is DT_ETIMEOUT too (nats.c does not say which
 * message a "no responders" reply answers; the publisher infers it). Returns DT_OK if every
 * message succeeded, else the status of the first failed one (errmsg says how many failed).
 * Results stay readable until the next add() or destroy.
 */
dt_status dt_broker_publisher_wait(dt_broker_publisher *p, int64_t timeout_ms);

/* The outcomes of the last batch, in add() order; *out_n receives the count. Owned by `p`. */
const dt_broker_pub_result *dt_broker_publisher_results(const dt_broker_publisher *p,
                                                        size_t *out_n);

/* Messages added and not yet resolved. */
size_t dt_broker_publisher_inflight(dt_broker_publisher *p);

const char *dt_broker_publisher_errmsg(const dt_broker_publisher *p);

/* Takes back unacknowledged messages (their fate is unknown) and frees `p`. NULL accepted. */
void dt_broker_publisher_destroy(dt_broker_publisher *p);

/* ---------------------------------------------------------------------------------------------
 * Consuming
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_broker_consumer dt_broker_consumer;

typedef struct dt_broker_consumer_config {
    const char *stream;         /* full stream name, e.g. from dt_broker_stream_name() */
    const char *durable;        /* durable consumer name: [A-Za-z0-9_-] */
    const char *filter_subject; /* NULL: the whole stream */
    int64_t ack_wait_ms;        /* redelivery after this without ack (default 30000) */
    int64_t max_deliver;        /* deliveries at most; <= 0: unlimited (default) */
    int64_t max_ack_pending;    /* unacknowledged messages at most (default 10000) */
    /* An empty fetch cannot tell "no messages" from "the durable is gone" (nats.c returns a
     * plain timeout for both), so after a reconnection, and at most this often while idle, an
     * empty fetch checks that the durable still exists (default 5000). */
    int64_t liveness_check_ms;
} dt_broker_consumer_config;

void dt_broker_consumer_config_init(dt_broker_consumer_config *c);

/*
 * Creates the durable pull consumer if missing, else updates ack wait, max deliver and max ack
 * pending to `c` when they differ, then binds to it. A consumer with another filter subject is
 * DT_ECONFLICT; a missing stream DT_ENOTFOUND. `c` is copied. The handle is confined to one
 * thread (one fetch at a time); its messages may be used on other threads.
 */
dt_status dt_broker_consumer_open(dt_broker *b, const dt_broker_consumer_config *c,
                                  dt_broker_consumer **out);

/*
 * Fetches up to `max` (1..DT_BROKER_FETCH_MAX) messages, waiting up to timeout_ms (> 0) for the
 * first; returns as soon as some are there. An empty batch is DT_OK with *out_n = 0. Each
 * message in out_msgs[0..*out_n) is owned by the caller (dt_broker_msg_destroy). If the durable
 * consumer has disappeared (server restarted without its state, or deleted) an empty fetch
 * notices it (see liveness_check_ms) and re-creates it from the config; the next fetch gets
 * its messages. DT_EBROKER while disconnected; DT_ECLOSED after the connection was closed.
 * Measured: a fetch that returned early leaves no pull request behind, so messages published
 * after it stay on the server for whichever handle of the consumer fetches next.
 */
dt_status dt_broker_consumer_fetch(dt_broker_consumer *c, size_t max, int64_t timeout_ms,
                                   dt_broker_msg **out_msgs, size_t *out_n);

typedef struct dt_broker_consumer_info {
    uint64_t num_pending;    /* messages not yet delivered */
    int64_t num_ack_pending; /* delivered, not yet acknowledged */
    int64_t num_redelivered;
    int64_t num_waiting; /* pull requests waiting */
} dt_broker_consumer_info;

/*
 * Asks the server for the consumer's counts. Safe to call on one thread while another fetches:
 * the error text goes to `err` (`err_len` bytes, may be NULL/0), never to the consumer's own
 * text, which belongs to the fetching thread (dt_broker_consumer_errmsg).
 */
dt_status dt_broker_consumer_info_get(dt_broker_consumer *c, dt_broker_consumer_info *out,
                                      char *err, size_t err_len);

const char *dt_broker_consumer_errmsg(const dt_broker_consumer *c);

/* For tests: the inbox subject the consumer's pull requests are answered on (borrowed; NULL when
 * unbound), and how many answers wait there for the next fetch. Call on the fetching thread. */
const char *dt_broker_consumer_inbox(const dt_broker_consumer *c);
int dt_broker_consumer_waiting(dt_broker_consumer *c);

/* Releases the handle; the durable consumer stays on the server. NULL accepted. */
void dt_broker_consumer_close(dt_broker_consumer *c);

/* Deletes a durable consumer from the server. DT_ENOTFOUND if absent. */
dt_status dt_broker_consumer_delete(dt_broker *b, const char *stream, const char *durable);

/* ---------------------------------------------------------------------------------------------
 * Received messages (from fetch, request replies and subscriptions)
 *
 * A message is used by one thread at a time (nats.c parses headers lazily). Strings and data
 * returned by the accessors are owned by the message and live until dt_broker_msg_destroy().
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_broker_msg_meta {
    uint64_t stream_seq;
    uint64_t consumer_seq;
    uint64_t deliveries; /* 1 on first delivery */
    uint64_t pending;    /* messages left for the consumer after this one */
    int64_t timestamp_ns;
} dt_broker_msg_meta;

const char *dt_broker_msg_subject(const dt_broker_msg *m);
/* Reply subject, or NULL. */
const char *dt_broker_msg_reply(const dt_broker_msg *m);
/* The payload (NUL-terminated for convenience; may contain NULs) and its length. */
const void *dt_broker_msg_data(const dt_broker_msg *m);
size_t dt_broker_msg_len(const dt_broker_msg *m);

/* First value of header `name` (case-sensitive). DT_ENOTFOUND if absent; DT_EDECODE, for this
 * and every later lookup on `m`, when the message's header block does not parse (any publisher
 * chooses it). */
dt_status dt_broker_msg_header(dt_broker_msg *m, const char *name, const char **out_value);

/* JetStream metadata (parsed once, cached). DT_ESTATE for a message not from a consumer. */
dt_status dt_broker_msg_meta_get(dt_broker_msg *m, dt_broker_msg_meta *out);

/*
 * Acknowledgements of a JetStream message (DT_ESTATE for other messages, instead of nats.c's
 * crash, NATS-NOTES fact 9). ack, nak, nak_delay, in_progress and term are fire-and-forget:
 * buffered and coalesced with other traffic (call dt_broker_flush() to push them out now).
 * ack_sync waits for the server's confirmation (timeout_ms). After ack/ack_sync/nak/term the
 * message is settled and further settles are no-ops returning DT_OK; in_progress may repeat.
 * nak_delay redelivers no sooner than delay_ms.
 */
dt_status dt_broker_msg_ack(dt_broker_msg *m);
dt_status dt_broker_msg_ack_sync(dt_broker_msg *m, int64_t timeout_ms);
dt_status dt_broker_msg_nak(dt_broker_msg *m);
dt_status dt_broker_msg_nak_delay(dt_broker_msg *m, int64_t delay_ms);
dt_status dt_broker_msg_in_progress(dt_broker_msg *m);
dt_status dt_broker_msg_term(dt_broker_msg *m);

/* Acks msgs[0..n) (fire-and-forget); returns the first failure, after trying all. */
dt_status dt_broker_msgs_ack(dt_broker_msg *const *msgs, size_t n);

/*
 * Sends a core-NATS reply to a request message (`r->subject` is ignored; msg_id and
 * expectations too). DT_ESTATE if `m` has no reply subject.
 */
dt_status dt_broker_msg_respond(dt_broker_msg *m, const dt_broker_outmsg *r);

/*
 * Frees `m` (NULL accepted). An unsettled JetStream message is redelivered after ack wait. Any
 * thread. A consumer's message keeps its nats.c buffer (at most 256 messages or 1 MiB of payload
 * per consumer) until the consumer's next fetch or close, which frees them together: nats.c hands
 * every freed message to its collector thread and wakes it each time it finds it asleep.
 */
void dt_broker_msg_destroy(dt_broker_msg *m);

/* ---------------------------------------------------------------------------------------------
 * Key-value buckets
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_broker_kv dt_broker_kv;
typedef struct dt_broker_kv_watcher dt_broker_kv_watcher;

typedef enum dt_broker_kv_op {
    DT_BROKER_KV_PUT = 0,
    DT_BROKER_KV_DELETE = 1,
    DT_BROKER_KV_PURGE = 2
} dt_broker_kv_op;

/* An entry. Owned by the caller after a successful get/next: free with _entry_clear. */
typedef struct dt_broker_kv_entry {
    char *key;   /* dt_alloc'd */
    void *value; /* dt_alloc'd, NUL-terminated (not counted in len); NULL when len is 0 */
    size_t len;
    uint64_t revision;
    dt_broker_kv_op op;
    int64_t created_ns;
} dt_broker_kv_entry;

/* Frees the entry's strings and zeroes it. NULL accepted. */
void dt_broker_kv_entry_clear(dt_broker_kv_entry *e);

/* Binds to an existing bucket by full name. DT_ENOTFOUND if absent. Confined to one thread. */
dt_status dt_broker_kv_open(dt_broker *b, const char *bucket, dt_broker_kv **out);
void dt_broker_kv_close(dt_broker_kv *kv);
const char *dt_broker_kv_errmsg(const dt_broker_kv *kv);

/* Valid key: [-/_=.A-Za-z0-9]+, no leading, trailing or double '.'. */
bool dt_broker_kv_key_valid(const char *key);

/* Current value. DT_ENOTFOUND if absent or deleted. */
dt_status dt_broker_kv_get(dt_broker_kv *kv, const char *key, dt_broker_kv_entry *out);

/* Unconditional write. out_rev (may be NULL) receives the new revision. */
dt_status dt_broker_kv_put(dt_broker_kv *kv, const char *key, const void *data, size_t len,
                           uint64_t *out_rev);

/* Write only if absent (or deleted). DT_EEXIST if the key has a value. */
dt_status dt_broker_kv_create(dt_broker_kv *kv, const char *key, const void *data, size_t len,
                              uint64_t *out_rev);

/* Write only if the current revision is expected_rev (> 0). DT_ECONFLICT otherwise. */
dt_status dt_broker_kv_update(dt_broker_kv *kv, const char *key, const void *data, size_t len,
                              uint64_t expected_rev, uint64_t *out_rev);

/*
 * Deletes the key (a tombstone watchers see). expected_rev > 0 makes it conditional
 * (DT_ECONFLICT if the current revision differs): release a lease only if still yours.
 */
dt_status dt_broker_kv_delete(dt_broker_kv *kv, const char *key, uint64_t expected_rev);

typedef struct dt_broker_kv_watch_options {
    bool updates_only;    /* skip the current values, report only later changes */
    bool ignore_deletes;  /* do not report deletes and purges */
    bool include_history; /* report every stored revision first, not only the latest */
} dt_broker_kv_watch_options;

/*
 * Watches keys matching `pattern` (a key, or with '*' / '>' wildcards). First the current values
 * are reported (unless updates_only), then every change. `o` may be NULL. The watcher is confined
 * to one thread, except dt_broker_kv_watcher_stop(). It may outlive `kv`.
 */
dt_status dt_broker_kv_watch(dt_broker_kv *kv, const char *pattern,
                             const dt_broker_kv_watch_options *o, dt_broker_kv_watcher **out);

/*
 * Next entry, waiting up to timeout_ms: DT_ETIMEOUT if none came, DT_ECLOSED once stopped.
 * This is the wait-for-change primitive (no polling): it wakes as soon as an update arrives.
 */
dt_status dt_broker_kv_watcher_next(dt_broker_kv_watcher *w, int64_t timeout_ms,
                                    dt_broker_kv_entry *out);

/* True once every value that existed when the watch started has been returned. */
bool dt_broker_kv_watcher_initial_done(const dt_broker_kv_watcher *w);

/* Wakes a blocked _next() with DT_ECLOSED. Callable from any thread, once. */
void dt_broker_kv_watcher_stop(dt_broker_kv_watcher *w);

const char *dt_broker_kv_watcher_errmsg(const dt_broker_kv_watcher *w);

/* Stops and frees. NULL accepted. Not concurrently with _next(). */
void dt_broker_kv_watcher_destroy(dt_broker_kv_watcher *w);

/*
 * One key, addressed by bucket name (kv_watch_key.c: why not through dt_broker_kv_watch).
 * last(): the key's last entry, delete and purge markers included (op and revision are the
 * marker's), so equal revisions mean the same state; DT_ENOTFOUND when the key has no entry at
 * all or there is no such bucket (dt_broker_errmsg says which). Thread-safe.
 * watch_open(): one round trip; then next() reports the entry current at open (DT_ENOTFOUND,
 * once, if there was none) and every later one, re-reporting the current one after a
 * reconnection; DT_ETIMEOUT when nothing came in timeout_ms. close() only unsubscribes: the
 * server drops the watch's consumer after inactive_ms (<= 0: 2000) without interest. A watch is
 * confined to one thread; DT_ENOTFOUND from open: no such bucket.
 */
typedef struct dt_broker_kv_key_watch dt_broker_kv_key_watch;
dt_status dt_broker_kv_key_last(dt_broker *b, const char *bucket, const char *key,
                                dt_broker_kv_entry *out);
dt_status dt_broker_kv_key_watch_open(dt_broker *b, const char *bucket, const char *key,
                                      int64_t inactive_ms, dt_broker_kv_key_watch **out);
dt_status dt_broker_kv_key_watch_next(dt_broker_kv_key_watch *w, int64_t timeout_ms,
                                      dt_broker_kv_entry *out);
const char *dt_broker_kv_key_watch_errmsg(const dt_broker_kv_key_watch *w);
void dt_broker_kv_key_watch_close(dt_broker_kv_key_watch *w);

/* ---------------------------------------------------------------------------------------------
 * Core NATS (no JetStream): fire-and-forget publish, request/reply, subscriptions
 * ------------------------------------------------------------------------------------------- */

typedef struct dt_broker_sub dt_broker_sub;

/*
 * Callback of a subscription. Owns `m` (destroy it, possibly later on another thread). Called on
 * the subscription's own nats.c thread, one message at a time, in arrival order.
 */
typedef void (*dt_broker_msg_cb)(dt_broker_msg *m, void *ctx);

/* Fire-and-forget core publish. msg_id, when set, travels as the Nats-Msg-Id header, so a stream
 * that captures the subject drops a repeat of a message also published through JetStream
 * (expectations are ignored). Thread-safe. */
dt_status dt_broker_publish_core(dt_broker *b, const dt_broker_outmsg *m);

/*
 * Request/reply: publishes `m` with a unique reply inbox and waits up to timeout_ms for one
 * reply, which the caller owns (*out_reply). DT_ENOTFOUND when nobody subscribes to the subject
 * (no responders), DT_ETIMEOUT without reply. Thread-safe.
 */
dt_status dt_broker_request(dt_broker *b, const dt_broker_outmsg *m, int64_t timeout_ms,
                            dt_broker_msg **out_reply);

/*
 * Subscribes `cb` to `subject` (wildcards allowed). With a non-NULL `queue`, the members of that
 * queue group share the messages. Re-subscribed automatically after reconnects.
 */
dt_status dt_broker_subscribe(dt_broker *b, const char *subject, const char *queue,
                              dt_broker_msg_cb cb, void *ctx, dt_broker_sub **out);

/*
 * Unsubscribes and frees `s` (NULL accepted). When it returns, the callback is not running and
 * will not run again. Must not be called from the subscription's own callback.
 */
void dt_broker_sub_destroy(dt_broker_sub *s);

/* =============================================================================================
 * Added for the client's shared status waits (branch h-client; kv_feed.c). Kept in a block of its
 * own at the end while the rest of this header is being reworked elsewhere.
 * ============================================================================================= */

/*
 * A feed of every change stored in bucket `bucket` after the feed was armed (deliver policy
 * "new"; never the bucket's current contents), delivered to `cb` on the feed's own nats.c thread,
 * one change at a time, in stream order. One consumer on the server however many keys the caller
 * cares about: read a key's current value after opening the feed, and every later change of it
 * reaches the callback. The server drops the consumer `inactive_ms` (<= 0: 5000) after the feed
 * lost interest (closed, or the connection went away).
 *
 * refresh(): re-arms the feed (new inbox and consumer) when the connection reconnected since it
 * was armed, and reports in *out_resync whether changes may have been missed since the last
 * refresh (a reconnection, or a gap in the consumer's delivery sequence: nats.c drops messages
 * of a subscription whose queue is full); the caller then re-reads the keys it cares about.
 * One round trip when it re-arms, none otherwise.
 *
 * The feed handle is confined to one thread at a time (refresh and close; the caller
 * serializes); the callback must not call refresh or close. When close returns the callback is
 * not running and will not run again. DT_ENOTFOUND from open: no such bucket.
 */
typedef struct dt_broker_kv_feed dt_broker_kv_feed;

/* One change, borrowed for the duration of the callback (key and value live in the message). */
typedef struct dt_broker_kv_change {
    const char *key;
    const void *value; /* puts only; NULL otherwise */
    size_t len;
    uint64_t revision; /* the stream sequence, as dt_broker_kv_key_last() reports it */
    dt_broker_kv_op op;
} dt_broker_kv_change;

typedef void (*dt_broker_kv_feed_cb)(const dt_broker_kv_change *ch, void *ctx);

dt_status dt_broker_kv_feed_open(dt_broker *b, const char *bucket, int64_t inactive_ms,
                                 dt_broker_kv_feed_cb cb, void *ctx, dt_broker_kv_feed **out);
dt_status dt_broker_kv_feed_refresh(dt_broker_kv_feed *f, bool *out_resync);
void dt_broker_kv_feed_close(dt_broker_kv_feed *f);

/* =============================================================================================
 * Added for the dashboard's backlog view (branch dash; consumer_stats.c).
 * ============================================================================================= */

/* Backlog of one durable consumer. */
typedef struct dt_broker_consumer_stat {
    char name[64];                   /* the durable's name (cut if longer) */
    char filter[DT_BROKER_NAME_BUF]; /* its filter subject; "" for the whole stream */
    uint64_t num_pending;            /* stored, not yet delivered */
    int64_t num_ack_pending;         /* delivered, not yet acknowledged */
    int64_t num_redelivered;
    int64_t num_waiting; /* pull requests waiting (idle workers) */
    int64_t oldest_ms;   /* store time of the oldest message not yet acknowledged (ms
                            since the epoch); 0: none, or the server could not say */
} dt_broker_consumer_stat;

/*
 * Fills out[0..*out_n) (at most cap) with the durable consumers of stream `stream` (full name,
 * borrowed). Cost: one request listing the consumers, plus one message read per consumer that
 * has a backlog (for oldest_ms). DT_ENOTFOUND for a missing stream. Thread-safe.
 */
dt_status dt_broker_consumer_stats(dt_broker *b, const char *stream, dt_broker_consumer_stat *out,
                                   size_t cap, size_t *out_n);

#ifdef __cplusplus
}
#endif
#endif
