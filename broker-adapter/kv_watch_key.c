/*
 * Single-key reads and watches of a KV bucket, addressed by the bucket's stream directly.
 *
 * Why not kvStore_Watch: nats.c's watch looks the stream up by subject ($JS.API.STREAM.NAMES,
 * one round trip), creates an ordered consumer whose messages reach the caller through nats.c's
 * delivery thread, and on destroy deletes the consumer with a synchronous request (another
 * round trip, after the result is already in hand). A wait for one key needs none of that.
 *
 * Here a watch is a plain core subscription on a fresh inbox, read synchronously by the caller,
 * plus one request creating an ephemeral push consumer on "KV_<bucket>" that delivers the key's
 * last entry (delete markers included) and then every new one to that inbox, without acks, from
 * memory. Closing the watch only unsubscribes: nats-server (2.9) deletes an ephemeral push
 * consumer by itself once its deliver subject has had no interest for the consumer's
 * inactive_threshold, so nothing waits for a delete. After a reconnection the watch re-arms
 * itself (new inbox, new consumer): messages published while disconnected are not replayed to
 * a push consumer without acks, but the new consumer delivers the key's last entry again.
 *
 * The read (dt_broker_kv_key_last) differs from dt_broker_kv_get in one way that matters to
 * callers deciding on the key's state: a deleted key is reported as its delete marker with the
 * marker's revision, so two reads that return the same revision saw the same state.
 */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

/* Default time the server keeps a consumer whose watch was closed (or lost its connection). */
#define DEFAULT_INACTIVE_MS 2000
/* The longest next() blocks before it looks at the reconnection counter. */
#define RECONNECT_CHECK_MS 250

struct dt_broker_kv_key_watch {
    dt_broker *b;
    char stream[DT_BROKER_NAME_BUF];
    char subject[DT_BROKER_NAME_BUF + 3 * DT_BROKER_NAME_BUF]; /* "$KV.<bucket>.<key>" */
    int64_t inactive_ms;
    natsSubscription *sub; /* on inbox; NULL while not armed */
    unsigned seen_reconnects;
    bool empty_pending; /* the key had no entry when armed: next() reports it once */
    char err[DT__BROKER_ERR_LEN];
};

/* "KV_<bucket>" and "$KV.<bucket>.<key>"; DT_EINVAL when a name is invalid or too long. */
static bool names(const char *bucket, const char *key, char *stream, size_t slen, char *subject,
                  size_t jlen)
{
    if (bucket == NULL || bucket[0] == '\0' || !dt_broker_kv_key_valid(key)) {
        return false;
    }
    int n = snprintf(stream, slen, "KV_%s", bucket);
    int m = snprintf(subject, jlen, "$KV.%s.%s", bucket, key);
    return n > 0 && (size_t)n < slen && m > 0 && (size_t)m < jlen;
}

dt_status dt_broker_kv_key_last(dt_broker *b, const char *bucket, const char *key,
                                dt_broker_kv_entry *out)
{
    char stream[DT_BROKER_NAME_BUF], subject[4 * DT_BROKER_NAME_BUF];
    if (out == NULL || !names(bucket, key, stream, sizeof(stream), subject, sizeof(subject))) {
        return dt__broker_fail(b, DT_EINVAL, "kv last: invalid bucket or key");
    }
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&m, b->js, stream, subject, NULL, &jerr);
    if (s == NATS_NOT_FOUND && jerr == JSStreamNotFoundErr) {
        return dt__broker_fail(b, DT_ENOTFOUND, "kv last %s: no bucket %s", key, bucket);
    }
    if (s == NATS_NOT_FOUND) {
        return dt__broker_fail(b, DT_ENOTFOUND, "kv last %s: no entry", key);
    }
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, jerr, "kv last %s", key);
    }
    dt_status st =
        dt__broker_kv_entry_from(m, key, natsMsg_GetSequence(m), natsMsg_GetTime(m), out);
    natsMsg_Destroy(m);
    return st == DT_OK ? DT_OK : dt__broker_fail(b, st, "kv last %s: out of memory", key);
}

/* ------------------------------------------------------------------------------------------- */
/* The consumer-create request and its reply                                                   */

/* Creates the consumer delivering to `inbox`; *out_empty: the key had no entry then. */
static dt_status create_consumer(dt_broker_kv_key_watch *w, const char *inbox, bool *out_empty)
{
    char api[DT_BROKER_NAME_BUF + 32], body[2048];
    snprintf(api, sizeof(api), "$JS.API.CONSUMER.CREATE.%s", w->stream);
    int n = snprintf(body, sizeof(body),
                     "{\"stream_name\":\"%s\",\"config\":{\"deliver_subject\":\"%s\","
                     "\"deliver_policy\":\"last_per_subject\",\"filter_subject\":\"%s\","
                     "\"ack_policy\":\"none\",\"replay_policy\":\"instant\","
                     "\"inactive_threshold\":%lld,\"mem_storage\":true}}",
                     w->stream, inbox, w->subject, (long long)dt__broker_ms_to_ns(w->inactive_ms));
    if (n < 0 || (size_t)n >= sizeof(body)) {
        return dt__broker_errbuf(w->err, sizeof(w->err), DT_EINVAL, "kv watch: names too long");
    }
    natsMsg *reply = NULL;
    natsStatus s =
        natsConnection_Request(&reply, w->b->nc, api, body, n, w->b->o.request_timeout_ms);
    if (s != NATS_OK) {
        return dt__broker_nerr(w->err, sizeof(w->err), s, 0, "kv watch %s", w->subject);
    }
    dt__consumer_reply r = {0};
    bool ok = dt__broker_consumer_reply_parse(natsMsg_GetData(reply),
                                              (size_t)natsMsg_GetDataLength(reply), &r);
    dt_status st = DT_OK;
    if (!ok) {
        st = dt__broker_errbuf(w->err, sizeof(w->err), DT_EBROKER,
                               "kv watch %s: unreadable consumer reply", w->subject);
    } else if (r.has_error) {
        st = dt__broker_errbuf(w->err, sizeof(w->err),
                               r.err_code == JSStreamNotFoundErr ? DT_ENOTFOUND : DT_EBROKER,
                               "kv watch %s: %.*s (%lld)", w->subject, (int)r.desc_len,
                               r.desc != NULL ? r.desc : "", (long long)r.err_code);
    } else {
        *out_empty = r.num_pending == 0 && r.delivered_consumer_seq == 0;
    }
    natsMsg_Destroy(reply);
    return st;
}

/* Subscribes a fresh inbox and creates its consumer (the subscription goes out first, so no
 * delivery is missed). On failure nothing is left behind. */
static dt_status arm(dt_broker_kv_key_watch *w)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    w->seen_reconnects = __atomic_load_n(&w->b->reconnects, __ATOMIC_ACQUIRE);
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        s = natsConnection_SubscribeSync(&sub, w->b->nc, inbox);
    }
    if (s != NATS_OK) {
        natsInbox_Destroy(inbox);
        return dt__broker_nerr(w->err, sizeof(w->err), s, 0, "kv watch %s", w->subject);
    }
    bool empty = false;
    dt_status st = create_consumer(w, inbox, &empty);
    natsInbox_Destroy(inbox);
    if (st != DT_OK) {
        dt__broker_sub_destroy(w->b, sub);
        return st;
    }
    w->sub = sub;
    w->empty_pending = empty;
    return DT_OK;
}

/* Drops the subscription; the server removes the consumer after inactive_ms. */
static void disarm(dt_broker_kv_key_watch *w)
{
    dt__broker_sub_destroy(w->b, w->sub); /* not a bare destroy: conn.c says why */
    w->sub = NULL;
    w->empty_pending = false;
}

dt_status dt_broker_kv_key_watch_open(dt_broker *b, const char *bucket, const char *key,
                                      int64_t inactive_ms, dt_broker_kv_key_watch **out)
{
    if (out == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "kv watch: out is required");
    }
    dt_broker_kv_key_watch *w = dt_calloc(1, sizeof(*w));
    if (w == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "kv watch: out of memory");
    }
    w->b = b;
    w->inactive_ms = inactive_ms > 0 ? inactive_ms : DEFAULT_INACTIVE_MS;
    dt_status st = names(bucket, key, w->stream, sizeof(w->stream), w->subject, sizeof(w->subject))
                       ? arm(w)
                       : dt__broker_errbuf(w->err, sizeof(w->err), DT_EINVAL,
                                           "kv watch: invalid bucket or key");
    if (st != DT_OK) {
        dt__broker_fail(b, st, "%s", w->err);
        dt_free(w);
        return st;
    }
    *out = w;
    return DT_OK;
}

/* Re-arms after a reconnection (the subscription may have missed deliveries meanwhile). */
static dt_status rearm_if_reconnected(dt_broker_kv_key_watch *w)
{
    if (w->sub != NULL &&
        __atomic_load_n(&w->b->reconnects, __ATOMIC_ACQUIRE) == w->seen_reconnects) {
        return DT_OK;
    }
    disarm(w);
    return arm(w);
}

dt_status dt_broker_kv_key_watch_next(dt_broker_kv_key_watch *w, int64_t timeout_ms,
                                      dt_broker_kv_entry *out)
{
    int64_t deadline = dt__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        dt_status st = rearm_if_reconnected(w);
        if (st != DT_OK) {
            return st;
        }
        if (w->empty_pending) {
            w->empty_pending = false;
            return dt__broker_errbuf(w->err, sizeof(w->err), DT_ENOTFOUND, "kv watch %s: no entry",
                                     w->subject);
        }
        int64_t left = deadline - dt__mono_ms();
        if (left <= 0 && timeout_ms > 0) {
            return dt__broker_errbuf(w->err, sizeof(w->err), DT_ETIMEOUT, "watch: no update");
        }
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(
            &m, w->sub, left < 1 ? 1 : (left > RECONNECT_CHECK_MS ? RECONNECT_CHECK_MS : left));
        if (s == NATS_TIMEOUT) {
            if (dt__mono_ms() >= deadline) {
                return dt__broker_errbuf(w->err, sizeof(w->err), DT_ETIMEOUT, "watch: no update");
            }
            continue;
        }
        if (s != NATS_OK) {
            return dt__broker_nerr(w->err, sizeof(w->err), s, 0, "kv watch %s", w->subject);
        }
        dt__ack_meta meta;
        /* Anything but a delivery (a status message) carries no entry: skip it. */
        bool entry = dt__broker_ack_meta(natsMsg_GetReply(m), &meta);
        if (entry) {
            st = dt__broker_kv_entry_from(m, w->subject + strlen(w->stream) + 2, meta.seq, meta.ns,
                                          out);
        }
        natsMsg_Destroy(m);
        if (entry) {
            return st == DT_OK ? DT_OK
                               : dt__broker_errbuf(w->err, sizeof(w->err), st,
                                                   "kv watch %s: out of memory", w->subject);
        }
    }
}

const char *dt_broker_kv_key_watch_errmsg(const dt_broker_kv_key_watch *w)
{
    return w == NULL ? "" : w->err;
}

void dt_broker_kv_key_watch_close(dt_broker_kv_key_watch *w)
{
    if (w == NULL) {
        return;
    }
    disarm(w);
    dt_free(w);
}
