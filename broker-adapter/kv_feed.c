/*
 * A bucket-wide feed of KV changes, delivered by callback: what a client needs to serve many
 * waits on different keys with one consumer on the server instead of one per wait.
 *
 * Like the single-key watch (kv_watch_key.c) it is a core subscription on a fresh inbox plus one
 * request creating an ephemeral push consumer on "KV_<bucket>" that delivers to that inbox,
 * without acks, from memory, filtered on "$KV.<bucket>.>" — but with deliver_policy "new": it
 * reports changes stored after it was armed, never the bucket's current contents (which may hold
 * a record per instance ever started). A caller that needs a key's current state reads it
 * after the feed is armed; every later change then reaches the callback.
 *
 * What can be missed, and how the caller learns of it: messages published while the connection
 * was away are not replayed to a push consumer without acks, and nats.c drops messages of a
 * subscription whose pending limit is exceeded. Both show as a state the feed reports through
 * dt_broker_kv_feed_refresh() (re-armed after a reconnection; a gap in the consumer's delivery
 * sequence), after which the caller re-reads the keys it cares about. Closing only unsubscribes:
 * the server drops the consumer after its inactive threshold.
 */
#include "broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_INACTIVE_MS 5000

struct dt_broker_kv_feed {
    dt_broker *b;
    char stream[DT_BROKER_NAME_BUF];
    char filter[2 * DT_BROKER_NAME_BUF]; /* "$KV.<bucket>.>" */
    size_t pre_len;                      /* strlen("$KV.<bucket>.") */
    int64_t inactive_ms;
    dt_broker_kv_feed_cb cb;
    void *ctx;
    /* A callback subscription (sub.c: its destroy returns once the callback no longer runs);
     * nats.c's default queue bounds apply (65,536 messages, 64 MiB), beyond which it drops
     * messages: seen as a gap. NULL while not armed. */
    dt_broker_sub *sub;
    unsigned seen_reconnects;
    /* Written by the delivery thread only (one subscription delivers in order). */
    uint64_t last_cseq;
    int gap; /* atomic: a delivery sequence was skipped since the last refresh */
};

/* The consumer sequence of a delivery from its "$JS.ACK..." reply subject (9 tokens in the
 * server's v1 form, 12 in v2: $JS.ACK.<domain>.<hash>.<stream>...); 0 when not a delivery. */
static uint64_t consumer_seq(const char *reply)
{
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0) {
        return 0;
    }
    const char *tok[16];
    size_t n = 0;
    for (const char *p = reply; p != NULL && n < 16; p = strchr(p, '.')) {
        p += (*p == '.');
        tok[n++] = p;
        p = strchr(p, '.');
        if (p == NULL) {
            break;
        }
    }
    size_t idx = n >= 12 ? 8 : (n >= 9 ? 6 : 0);
    return idx > 0 ? strtoull(tok[idx], NULL, 10) : 0;
}

static void on_msg(dt_broker_msg *m, void *closure)
{
    dt_broker_kv_feed *f = closure;
    dt__ack_meta meta;
    const char *subject = dt_broker_msg_subject(m), *reply = dt_broker_msg_reply(m);
    if (dt__broker_ack_meta(reply, &meta) && strlen(subject) > f->pre_len) {
        uint64_t cseq = consumer_seq(reply);
        if (f->last_cseq != 0 && cseq != f->last_cseq + 1) {
            __atomic_store_n(&f->gap, 1, __ATOMIC_RELEASE);
        }
        f->last_cseq = cseq;
        const char *op = NULL;
        dt_broker_kv_change ch = {.key = subject + f->pre_len, .revision = meta.seq};
        ch.op = dt_broker_msg_header(m, "KV-Operation", &op) != DT_OK || op == NULL
                    ? DT_BROKER_KV_PUT
                : strcmp(op, "DEL") == 0   ? DT_BROKER_KV_DELETE
                : strcmp(op, "PURGE") == 0 ? DT_BROKER_KV_PURGE
                                           : DT_BROKER_KV_PUT;
        if (ch.op == DT_BROKER_KV_PUT) {
            ch.value = dt_broker_msg_data(m);
            ch.len = dt_broker_msg_len(m);
        }
        f->cb(&ch, f->ctx);
    }
    dt_broker_msg_destroy(m); /* heartbeats and other status messages carry no change */
}

/* Creates the consumer delivering to `inbox`. */
static dt_status create_consumer(dt_broker_kv_feed *f, const char *inbox)
{
    char api[DT_BROKER_NAME_BUF + 32], body[2048];
    snprintf(api, sizeof(api), "$JS.API.CONSUMER.CREATE.%s", f->stream);
    int n = snprintf(body, sizeof(body),
                     "{\"stream_name\":\"%s\",\"config\":{\"deliver_subject\":\"%s\","
                     "\"deliver_policy\":\"new\",\"filter_subject\":\"%s\","
                     "\"ack_policy\":\"none\",\"replay_policy\":\"instant\","
                     "\"inactive_threshold\":%lld,\"mem_storage\":true}}",
                     f->stream, inbox, f->filter, (long long)dt__broker_ms_to_ns(f->inactive_ms));
    if (n < 0 || (size_t)n >= sizeof(body)) {
        return dt__broker_fail(f->b, DT_EINVAL, "kv feed: names too long");
    }
    natsMsg *reply = NULL;
    natsStatus s =
        natsConnection_Request(&reply, f->b->nc, api, body, n, f->b->o.request_timeout_ms);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(f->b, s, 0, "kv feed %s", f->filter);
    }
    dt__consumer_reply r = {0};
    bool ok = dt__broker_consumer_reply_parse(natsMsg_GetData(reply),
                                              (size_t)natsMsg_GetDataLength(reply), &r);
    dt_status st = DT_OK;
    if (!ok) {
        st = dt__broker_fail(f->b, DT_EBROKER, "kv feed %s: unreadable consumer reply", f->filter);
    } else if (r.has_error) {
        st = dt__broker_fail(f->b, r.err_code == JSStreamNotFoundErr ? DT_ENOTFOUND : DT_EBROKER,
                             "kv feed %s: %.*s (%lld)", f->filter, (int)r.desc_len,
                             r.desc != NULL ? r.desc : "", (long long)r.err_code);
    }
    natsMsg_Destroy(reply);
    return st;
}

/* Subscribes a fresh inbox and creates its consumer (the subscription first, so no delivery is
 * missed). On failure nothing is left behind. */
static dt_status arm(dt_broker_kv_feed *f)
{
    natsInbox *inbox = NULL;
    dt_broker_sub *sub = NULL;
    f->seen_reconnects = __atomic_load_n(&f->b->reconnects, __ATOMIC_ACQUIRE);
    f->last_cseq = 0; /* a new consumer counts from 1; no delivery of the old one runs now */
    natsStatus s = natsInbox_Create(&inbox);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(f->b, s, 0, "kv feed %s", f->filter);
    }
    dt_status st = dt_broker_subscribe(f->b, inbox, NULL, on_msg, f, &sub);
    if (st == DT_OK) {
        st = create_consumer(f, inbox);
    }
    natsInbox_Destroy(inbox);
    if (st != DT_OK) {
        dt_broker_sub_destroy(sub);
        return st;
    }
    f->sub = sub;
    return DT_OK;
}

dt_status dt_broker_kv_feed_open(dt_broker *b, const char *bucket, int64_t inactive_ms,
                                 dt_broker_kv_feed_cb cb, void *ctx, dt_broker_kv_feed **out)
{
    if (out == NULL || cb == NULL || bucket == NULL || bucket[0] == '\0') {
        return dt__broker_fail(b, DT_EINVAL, "kv feed: bucket, callback and out are required");
    }
    dt_broker_kv_feed *f = dt_calloc(1, sizeof(*f));
    if (f == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "kv feed: out of memory");
    }
    f->b = b;
    f->cb = cb;
    f->ctx = ctx;
    f->inactive_ms = inactive_ms > 0 ? inactive_ms : DEFAULT_INACTIVE_MS;
    int n = snprintf(f->stream, sizeof(f->stream), "KV_%s", bucket);
    int m = snprintf(f->filter, sizeof(f->filter), "$KV.%s.>", bucket);
    dt_status st = n > 0 && (size_t)n < sizeof(f->stream) && m > 0 && (size_t)m < sizeof(f->filter)
                       ? DT_OK
                       : dt__broker_fail(b, DT_EINVAL, "kv feed: bucket name too long");
    f->pre_len = (size_t)m - 1;
    if (st == DT_OK) {
        st = arm(f);
    }
    if (st != DT_OK) {
        dt_free(f);
        return st;
    }
    *out = f;
    return DT_OK;
}

dt_status dt_broker_kv_feed_refresh(dt_broker_kv_feed *f, bool *out_resync)
{
    bool reconnected = f->sub == NULL ||
                       __atomic_load_n(&f->b->reconnects, __ATOMIC_ACQUIRE) != f->seen_reconnects;
    bool gap = __atomic_exchange_n(&f->gap, 0, __ATOMIC_ACQ_REL) != 0;
    if (reconnected) {
        dt_broker_sub_destroy(f->sub); /* the callback has returned when this does */
        f->sub = NULL;
        dt_status st = arm(f);
        if (st != DT_OK) {
            return st;
        }
    }
    *out_resync = reconnected || gap;
    return DT_OK;
}

void dt_broker_kv_feed_close(dt_broker_kv_feed *f)
{
    if (f == NULL) {
        return;
    }
    dt_broker_sub_destroy(f->sub);
    dt_free(f);
}
