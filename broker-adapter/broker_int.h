/*
 * broker_int.h: what the files of the NATS broker adapter share (internal, dt__broker_ prefix).
 * Only the .c files of broker-adapter/ include it; it is the one place that sees both dt_broker.h
 * and nats.c.
 */
#ifndef DT_BROKER_INT_H
#define DT_BROKER_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>

#include "base_int.h"
#include "dt_broker.h"

#define DT__BROKER_ERR_LEN 256

/* Header names JetStream interprets. */
#define DT__HDR_MSG_ID "Nats-Msg-Id"

/*
 * What the credential callbacks of a connection read (security.c): the path of the credentials
 * file or nkey seed file, read again at every (re)connect. Lives in the dt_broker, since nats.c
 * keeps a pointer to it in the options and the connection; freed by dt__broker_auth_fini after
 * both are destroyed. Holds no secret.
 */
typedef struct dt__broker_auth {
    const char *what; /* "credentials file" or "nkey seed file", for error texts */
    char *path;       /* dt_alloc'd, or NULL when the connection uses no file */
} dt__broker_auth;

struct dt_broker {
    natsConnection *nc;
    natsOptions *opts;
    jsCtx *js; /* shared: management, sync publish, KV; thread-safe in nats.c */
    dt_broker_options o;
    char *urls; /* copies owned by the handle (o.urls / o.name point here) */
    char *name;
    unsigned reconnects; /* atomic: bumped on every reconnection (consumers re-check then) */
    pthread_mutex_t mu;  /* guards err and closed_done */
    pthread_cond_t cond;
    bool closed_done;
    char err[DT__BROKER_ERR_LEN];
    dt__broker_auth auth; /* nats.c's credential callbacks read it until broker_free */
};

/* Kinds of received message: only JetStream ones may be acknowledged (NATS-NOTES fact 9). */
typedef enum { DT__MSG_JS = 0, DT__MSG_CORE = 1 } dt__msg_kind;

struct dt_broker_msg {
    natsMsg *nm;
    dt__msg_kind kind;
    dt_broker *b;          /* for respond() */
    dt_broker_consumer *c; /* JetStream messages hold a reference on their consumer */
    bool meta_done;
    dt_broker_msg_meta meta;
    /* The header block failed to parse once: nats.c 3.4.1 parses it again on every lookup, over
     * bytes its failed attempt already rewrote in place, so later lookups would see some of the
     * headers (found by tests/fuzz/fuzz_msg_headers). Every lookup fails instead. */
    bool headers_bad;
};

/* Opens nats.c's library state once per process. */
dt_status dt__broker_global_init(void);

/*
 * Maps a nats.c status (plus the JetStream error code when there is one) to a dt_status:
 * timeouts, not-found, closed, payload and JetStream codes get their own status, the rest
 * DT_EBROKER.
 */
dt_status dt__broker_map(natsStatus s, jsErrCode jerr);

/*
 * Formats "<what>: <nats.c text> (<detail>)" into buf from the calling thread's nats.c error
 * state, and returns dt__broker_map(s, jerr). `fmt` describes the operation.
 */
dt_status dt__broker_nerr(char *buf, size_t len, natsStatus s, jsErrCode jerr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Same, into the connection's error text (thread-safe). */
dt_status dt__broker_fail_nats(dt_broker *b, natsStatus s, jsErrCode jerr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets the connection's error text and returns st (thread-safe). */
dt_status dt__broker_fail(dt_broker *b, dt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same on a plain per-handle buffer (handles confined to one thread). */
dt_status dt__broker_errbuf(char *buf, size_t len, dt_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- urls.c ---- */

/* Most URLs one server list may name. */
#define DT__BROKER_MAX_URLS 64

/*
 * Splits a comma-separated URL list (NULL: the default URL) into a dt_alloc'd array of
 * dt_alloc'd, space-trimmed URLs for natsOptions_SetServers; free with dt__broker_url_list_free.
 * DT_EINVAL on an empty item or more than DT__BROKER_MAX_URLS.
 */
dt_status dt__broker_url_list(const char *urls, char ***out, int *out_n, char *err, size_t len);
void dt__broker_url_list_free(char **list, int n);
/* True if some URL of the list has the scheme tls:// (TLS is then required). */
bool dt__broker_urls_want_tls(char **list, int n);

/* ---- security.c ---- */

/* Checks `s`: one way to authenticate at most, certificate and key together, every named file
 * readable. DT_EINVAL with the reason (files named by path; no secret) in err. */
dt_status dt__broker_security_check(const dt_nats_security *s, char *err, size_t len);

/* Sets the credentials and TLS of `s` on `opts` (TLS also when want_tls). A credentials or nkey
 * seed file is read by the adapter's own callbacks (nkey_sign.c: why), whose state goes into
 * `auth` (borrowed: must outlive `opts` and every connection made with them). DT_EINVAL with the
 * reason when nats.c refuses one (a CA or certificate file it cannot load, a bad seed). */
dt_status dt__broker_security_apply(natsOptions *opts, const dt_nats_security *s, bool want_tls,
                                    dt__broker_auth *auth, char *err, size_t len);
/* Frees what dt__broker_security_apply put in `auth` (NULL-tolerant, idempotent). */
void dt__broker_auth_fini(dt__broker_auth *auth);

/* The public user key ("U...", NUL-terminated, 57 bytes with the NUL) of the user seed in
 * `seed_file`, into out[cap]. DT_EINVAL when the file holds no valid user seed. */
dt_status dt__broker_nkey_public(const char *seed_file, char *out, size_t cap, char *err,
                                 size_t len);

/* ---- nkey_sign.c ---- */

#define DT__ED25519_SEED_LEN 32
#define DT__ED25519_PUB_LEN  32
#define DT__ED25519_SIG_LEN  64

/* The RFC 8032 ed25519 signature of msg[0, n) by the raw 32-byte seed. False when libcrypto
 * fails. */
bool dt__broker_ed25519_sign(const unsigned char seed[DT__ED25519_SEED_LEN],
                             const unsigned char *msg, size_t n,
                             unsigned char sig[DT__ED25519_SIG_LEN]);
/* True when sig is a valid ed25519 signature of msg[0, n) by the raw public key pub. */
bool dt__broker_ed25519_verify(const unsigned char pub[DT__ED25519_PUB_LEN],
                               const unsigned char *msg, size_t n,
                               const unsigned char sig[DT__ED25519_SIG_LEN]);
/* A valid ed25519 signature of msg[0, n) by seed whose first byte is not 0x00, which nats.c 3.4.1
 * would drop (nkey_sign.c): the RFC 8032 one, or when that begins with 0x00 one with a random
 * nonce, verified before it is returned. False (sig wiped) when libcrypto fails. Thread-safe. */
bool dt__broker_nkey_sign(const unsigned char seed[DT__ED25519_SEED_LEN], const unsigned char *msg,
                          size_t n, unsigned char sig[DT__ED25519_SIG_LEN]);

/* Checks an outgoing message: a subject, named headers, a payload that fits nats.c's int. */
dt_status dt__broker_outmsg_check(const dt_broker_outmsg *m, char *err, size_t err_len);

/* What dt__broker_natsmsg puts in the header block besides m->headers. */
#define DT__OUT_MSG_ID 1u /* m->msg_id (when non-empty) as Nats-Msg-Id */
#define DT__OUT_EXPECT 2u /* m's expectation as Nats-Expected-Last-Subject-Sequence */
/* Builds a natsMsg from `m` (outmsg.c: how, and why not natsMsgHeader_Set): subject, data,
 * m->headers, and the JetStream headers named by `parts` (DT__OUT_*), which replace caller headers
 * of the same name. `reply` may be NULL. The caller destroys *out. */
natsStatus dt__broker_natsmsg(const dt_broker_outmsg *m, const char *reply, unsigned parts,
                              natsMsg **out);
/* The KV operation a stored KV message records (its KV-Operation header; none: a put). */
dt_broker_kv_op dt__broker_kv_msg_op(natsMsg *m);
/* Copies a stored KV message into *out (all or nothing); key, revision and time given by the
 * caller. The value is copied for puts only. */
dt_status dt__broker_kv_entry_from(natsMsg *m, const char *key, uint64_t rev, int64_t ns,
                                   dt_broker_kv_entry *out);
/* What the "$JS.ACK..." reply subject of a JetStream push delivery says about it: stream
 * sequence, time (ns) and how many messages the consumer had left to deliver after it. */
typedef struct dt__ack_meta {
    uint64_t seq;
    int64_t ns;
    uint64_t pending;
} dt__ack_meta;
/* False when `reply` is not a delivery's (a status message, NULL). */
bool dt__broker_ack_meta(const char *reply, dt__ack_meta *out);

/* Wraps a received natsMsg (ownership transferred on success; on failure the caller keeps it). */
dt_broker_msg *dt__broker_msg_wrap(natsMsg *nm, dt__msg_kind kind, dt_broker *b,
                                   dt_broker_consumer *c);

/*
 * Destroys a subscription the server may still be sending to (conn.c says why it is not just
 * natsSubscription_Destroy): unsubscribes, flushes, then frees. Costs a round trip when connected.
 */
void dt__broker_sub_destroy(dt_broker *b, natsSubscription *sub);
/* The flush of dt__broker_sub_destroy alone (best effort, at most 1 s; nothing when not
 * connected), for a subscription that something else frees. */
void dt__broker_flush_quiet(dt_broker *b);

/* Consumer reference counting (messages keep their consumer's subscription alive). */
void dt__broker_consumer_release(dt_broker_consumer *c);
/* Hands a destroyed message's natsMsg to its consumer, which frees it with others (graveyard.c).
 * Any thread. */
void dt__broker_consumer_bury(dt_broker_consumer *c, natsMsg *nm);

/* Hub config record (hub_config.c). check: DT_EINVAL with a reason for out-of-range settings.
 * diff: true and a text naming the first difference when the hub-level settings differ. */
dt_status dt__broker_hub_config_check(const dt_broker_hub_config *c, char *err, size_t len);
bool dt__broker_hub_config_diff(const dt_broker_hub_config *have, const dt_broker_hub_config *want,
                                char *buf, size_t len);
dt_status dt__broker_hub_config_encode(const dt_broker_hub_config *c, char *buf, size_t len,
                                       size_t *out_len);
dt_status dt__broker_hub_config_decode(const char *data, size_t len, dt_broker_hub_config *out,
                                       char *err, size_t err_len);

/* ------------------------------------------------------------------------------------------- */
/* Batched natsMsg destruction (graveyard.c: why). Thread-safe.                                */

typedef struct dt__graveyard {
    pthread_mutex_t mu;
    natsMsg **msgs; /* buried, not yet destroyed; owned */
    size_t n;
    size_t cap;
    size_t bytes;     /* payload bytes of msgs */
    size_t max;       /* a bury() that would exceed `max` messages or `max_bytes` of payload */
    size_t max_bytes; /* destroys them all (and the new one) at once */
} dt__graveyard;

/* Payload a graveyard holds at most: large messages are not kept waiting. */
#define DT__GRAVEYARD_MAX_BYTES ((size_t)1024 * 1024)

void dt__graveyard_init(dt__graveyard *g, size_t max, size_t max_bytes);
/* Takes ownership of `m` (NULL accepted) and destroys it later, with others. */
void dt__graveyard_bury(dt__graveyard *g, natsMsg *m);
/* Destroys every buried message now, in one burst. */
void dt__graveyard_flush(dt__graveyard *g);
/* Flushes and releases. */
void dt__graveyard_fini(dt__graveyard *g);

/* ------------------------------------------------------------------------------------------- */
/* JSON reading (json.c): a cursor over one buffer; every reader returns false on bad input.    */

typedef struct dt__json {
    const char *p;
    const char *end;
} dt__json;

/* Called by dt__json_object for each key (a raw slice); must consume the value. */
typedef bool (*dt__json_field_fn)(dt__json *c, const char *key, size_t key_len, void *ctx);

void dt__json_init(dt__json *c, const char *data, size_t len);
bool dt__json_eat(dt__json *c, char ch);
/* True when only whitespace is left. */
bool dt__json_end(dt__json *c);
/* A string as a raw slice into the buffer (escapes not interpreted). */
bool dt__json_string(dt__json *c, const char **s, size_t *n);
bool dt__json_int(dt__json *c, int64_t *v);
bool dt__json_bool(dt__json *c, bool *v);
/* Skips any value (nesting bounded). */
bool dt__json_skip(dt__json *c);
/* Reads an object, calling `field` per member. */
bool dt__json_object(dt__json *c, dt__json_field_fn field, void *ctx);
bool dt__json_key_is(const char *key, size_t key_len, const char *name);

/* A JetStream PubAck (puback.c): {"stream":..,"seq":..,"duplicate":..} or {"error":{..}}. */
typedef struct dt__puback {
    uint64_t seq;
    bool duplicate;
    bool has_error;
    int64_t err_code; /* JetStream error code (jsErrCode), 0 if none was given */
    const char *desc; /* error description: a slice of the parsed buffer, not NUL-terminated */
    size_t desc_len;
} dt__puback;

/* Parses a PubAck body; false when it is not one (malformed, or neither seq nor error). The common
 * shapes of a stored message take a fast path; the rest goes through the JSON reader. */
bool dt__broker_puback_parse(const char *data, size_t len, dt__puback *out);
/* The same through the JSON reader only (tests compare the two). */
bool dt__broker_puback_parse_json(const char *data, size_t len, dt__puback *out);

/* The parts of a $JS.API.CONSUMER.CREATE reply the single-key KV watch reads
 * (consumer_reply.c). */
typedef struct dt__consumer_reply {
    bool has_error;
    int64_t err_code; /* JetStream error code, 0 if none was given */
    int64_t num_pending;
    int64_t delivered_consumer_seq;
    const char *desc; /* error description: a slice of the parsed buffer, not NUL-terminated */
    size_t desc_len;
} dt__consumer_reply;

/* Parses a consumer-create reply body (one JSON object; false when it is not one). */
bool dt__broker_consumer_reply_parse(const char *data, size_t len, dt__consumer_reply *out);

/* Milliseconds as nanoseconds, saturating. */
int64_t dt__broker_ms_to_ns(int64_t ms);

#endif
