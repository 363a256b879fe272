/*
 * Received messages: a thin wrapper over natsMsg that knows whether the message came from a
 * JetStream consumer (only those may be acknowledged: nats.c crashes acking a core message,
 * NATS-NOTES fact 9) and keeps the consumer alive while the message lives, so that a late ack
 * from a worker pool never touches a freed subscription.
 */
#include "broker_int.h"

#include <string.h>

dt_broker_msg *dt__broker_msg_wrap(natsMsg *nm, dt__msg_kind kind, dt_broker *b,
                                   dt_broker_consumer *c)
{
    dt_broker_msg *m = dt_calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->nm = nm;
    m->kind = kind;
    m->b = b;
    m->c = c;
    return m;
}

void dt_broker_msg_destroy(dt_broker_msg *m)
{
    if (m == NULL) {
        return;
    }
    if (m->c != NULL) {
        dt__broker_consumer_bury(m->c, m->nm); /* before the release that may free `c` */
        dt__broker_consumer_release(m->c);
    } else {
        natsMsg_Destroy(m->nm);
    }
    dt_free(m);
}

const char *dt_broker_msg_subject(const dt_broker_msg *m)
{
    return natsMsg_GetSubject(m->nm);
}

const char *dt_broker_msg_reply(const dt_broker_msg *m)
{
    return natsMsg_GetReply(m->nm);
}

const void *dt_broker_msg_data(const dt_broker_msg *m)
{
    return natsMsg_GetData(m->nm);
}

size_t dt_broker_msg_len(const dt_broker_msg *m)
{
    int n = natsMsg_GetDataLength(m->nm);
    return n > 0 ? (size_t)n : 0;
}

dt_status dt_broker_msg_header(dt_broker_msg *m, const char *name, const char **out_value)
{
    if (m == NULL || name == NULL || out_value == NULL) {
        return DT_EINVAL;
    }
    if (m->headers_bad) {
        return DT_EDECODE;
    }
    const char *v = NULL;
    natsStatus s = natsMsgHeader_Get(m->nm, name, &v);
    if (s == NATS_NOT_FOUND) {
        return DT_ENOTFOUND;
    }
    if (s == NATS_PROTOCOL_ERROR) {
        m->headers_bad = true;
        return DT_EDECODE;
    }
    if (s != NATS_OK) {
        return dt__broker_map(s, 0);
    }
    *out_value = v != NULL ? v : "";
    return DT_OK;
}

dt_status dt_broker_msg_meta_get(dt_broker_msg *m, dt_broker_msg_meta *out)
{
    if (m == NULL || out == NULL) {
        return DT_EINVAL;
    }
    if (m->kind != DT__MSG_JS) {
        return DT_ESTATE;
    }
    if (!m->meta_done) {
        jsMsgMetaData *md = NULL;
        natsStatus s = natsMsg_GetMetaData(&md, m->nm);
        if (s != NATS_OK) {
            return dt__broker_map(s, 0) == DT_ENOMEM ? DT_ENOMEM : DT_EDECODE;
        }
        m->meta.stream_seq = md->Sequence.Stream;
        m->meta.consumer_seq = md->Sequence.Consumer;
        m->meta.deliveries = md->NumDelivered;
        m->meta.pending = md->NumPending;
        m->meta.timestamp_ns = md->Timestamp;
        m->meta_done = true;
        jsMsgMetaData_Destroy(md);
    }
    *out = m->meta;
    return DT_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* Acknowledgements. NULL jsOptions everywhere except ack_sync: a jsOptions with Wait > 0 would
 * silently make every ack synchronous (NATS-NOTES fact 7). */

static dt_status settle_check(const dt_broker_msg *m)
{
    if (m == NULL) {
        return DT_EINVAL;
    }
    return m->kind == DT__MSG_JS ? DT_OK : DT_ESTATE;
}

dt_status dt_broker_msg_ack(dt_broker_msg *m)
{
    dt_status st = settle_check(m);
    return st != DT_OK ? st : dt__broker_map(natsMsg_Ack(m->nm, NULL), 0);
}

dt_status dt_broker_msg_ack_sync(dt_broker_msg *m, int64_t timeout_ms)
{
    dt_status st = settle_check(m);
    if (st != DT_OK) {
        return st;
    }
    if (timeout_ms <= 0) {
        return DT_EINVAL;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms;
    jsErrCode jerr = 0;
    return dt__broker_map(natsMsg_AckSync(m->nm, &jo, &jerr), jerr);
}

dt_status dt_broker_msg_nak(dt_broker_msg *m)
{
    dt_status st = settle_check(m);
    return st != DT_OK ? st : dt__broker_map(natsMsg_Nak(m->nm, NULL), 0);
}

dt_status dt_broker_msg_nak_delay(dt_broker_msg *m, int64_t delay_ms)
{
    dt_status st = settle_check(m);
    if (st != DT_OK) {
        return st;
    }
    if (delay_ms < 0) {
        return DT_EINVAL;
    }
    return dt__broker_map(natsMsg_NakWithDelay(m->nm, delay_ms, NULL), 0);
}

dt_status dt_broker_msg_in_progress(dt_broker_msg *m)
{
    dt_status st = settle_check(m);
    return st != DT_OK ? st : dt__broker_map(natsMsg_InProgress(m->nm, NULL), 0);
}

dt_status dt_broker_msg_term(dt_broker_msg *m)
{
    dt_status st = settle_check(m);
    return st != DT_OK ? st : dt__broker_map(natsMsg_Term(m->nm, NULL), 0);
}

dt_status dt_broker_msgs_ack(dt_broker_msg *const *msgs, size_t n)
{
    dt_status first = DT_OK;
    for (size_t i = 0; i < n; i++) {
        dt_status st = dt_broker_msg_ack(msgs[i]);
        if (st != DT_OK && first == DT_OK) {
            first = st;
        }
    }
    return first;
}

dt_status dt_broker_msg_respond(dt_broker_msg *m, const dt_broker_outmsg *r)
{
    if (m == NULL || r == NULL || m->b == NULL) {
        return DT_EINVAL;
    }
    if (m->kind == DT__MSG_JS) {
        return DT_ESTATE; /* the reply subject of a JetStream message is its ack subject */
    }
    const char *reply = natsMsg_GetReply(m->nm);
    if (reply == NULL || reply[0] == '\0') {
        return DT_ESTATE;
    }
    dt_broker_outmsg out = *r;
    out.subject = reply;
    return dt_broker_publish_core(m->b, &out);
}
