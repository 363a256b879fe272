/*
 * Outgoing messages: building nats.c messages from dt_broker_outmsg, the synchronous JetStream
 * publish (one PubAck per call, ~10k/s: management and client paths only), and core-NATS
 * publish and request/reply.
 */
#include "broker_int.h"

#include <limits.h>
#include <string.h>

dt_status dt__broker_outmsg_check(const dt_broker_outmsg *m, char *err, size_t err_len)
{
    if (m == NULL || m->subject == NULL || m->subject[0] == '\0') {
        return dt__broker_errbuf(err, err_len, DT_EINVAL, "publish: no subject");
    }
    if (m->len > (size_t)INT_MAX || (m->len > 0 && m->data == NULL)) {
        return dt__broker_errbuf(err, err_len, DT_EINVAL, "publish to %s: bad payload", m->subject);
    }
    if (m->nheaders > 0 && m->headers == NULL) {
        return dt__broker_errbuf(err, err_len, DT_EINVAL, "publish to %s: headers is NULL",
                                 m->subject);
    }
    for (size_t i = 0; i < m->nheaders; i++) {
        const char *name = m->headers[i].name;
        if (name == NULL || name[0] == '\0') {
            return dt__broker_errbuf(err, err_len, DT_EINVAL, "publish to %s: header %zu unnamed",
                                     m->subject, i);
        }
        /* The name is written into the header block as it is: these would break the block. */
        if (strpbrk(name, ":\r\n") != NULL) {
            return dt__broker_errbuf(err, err_len, DT_EINVAL,
                                     "publish to %s: header name '%s' has ':', CR or LF",
                                     m->subject, name);
        }
    }
    return DT_OK;
}

dt_status dt_broker_publish(dt_broker *b, const dt_broker_outmsg *m, dt_broker_puback *out_ack)
{
    char err[DT__BROKER_ERR_LEN];
    dt_status st = dt__broker_outmsg_check(m, err, sizeof(err));
    if (st != DT_OK) {
        return dt__broker_fail(b, st, "%s", err);
    }
    natsMsg *nm = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    /* Msg id and expectations are in the header block: no jsPubOptions (the context's wait). */
    natsStatus s = dt__broker_natsmsg(m, NULL, DT__OUT_MSG_ID | DT__OUT_EXPECT, &nm);
    if (s == NATS_OK) {
        s = js_PublishMsg(&pa, b->js, nm, NULL, &jerr);
    }
    if (s == NATS_OK) {
        if (out_ack != NULL) {
            out_ack->stream_seq = pa->Sequence;
            out_ack->duplicate = pa->Duplicate;
        }
    } else {
        st = dt__broker_fail_nats(b, s, jerr, "publish to %s", m->subject);
    }
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(nm);
    return st;
}

dt_status dt_broker_publish_core(dt_broker *b, const dt_broker_outmsg *m)
{
    char err[DT__BROKER_ERR_LEN];
    dt_status st = dt__broker_outmsg_check(m, err, sizeof(err));
    if (st != DT_OK) {
        return dt__broker_fail(b, st, "%s", err);
    }
    natsMsg *nm = NULL;
    /* The msg id: without it, the outbox's plain re-send of a message whose JetStream publish
     * timed out (but was stored) is stored a second time by a stream that captures the subject. */
    natsStatus s = dt__broker_natsmsg(m, NULL, DT__OUT_MSG_ID, &nm);
    if (s == NATS_OK) {
        s = natsConnection_PublishMsg(b->nc, nm);
    }
    natsMsg_Destroy(nm);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, 0, "publish to %s", m->subject);
    }
    return DT_OK;
}

dt_status dt_broker_request(dt_broker *b, const dt_broker_outmsg *m, int64_t timeout_ms,
                            dt_broker_msg **out_reply)
{
    char err[DT__BROKER_ERR_LEN];
    dt_status st = dt__broker_outmsg_check(m, err, sizeof(err));
    if (st != DT_OK || timeout_ms <= 0 || out_reply == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "request: %s",
                               st != DT_OK ? err : "timeout must be > 0 and out_reply set");
    }
    natsMsg *nm = NULL;
    natsMsg *reply = NULL;
    natsStatus s = dt__broker_natsmsg(m, NULL, 0, &nm);
    if (s == NATS_OK) {
        s = natsConnection_RequestMsg(&reply, b->nc, nm, timeout_ms);
    }
    natsMsg_Destroy(nm);
    if (s == NATS_NO_RESPONDERS) {
        return dt__broker_fail(b, DT_ENOTFOUND, "request to %s: no responders", m->subject);
    }
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, 0, "request to %s", m->subject);
    }
    dt_broker_msg *w = dt__broker_msg_wrap(reply, DT__MSG_CORE, b, NULL);
    if (w == NULL) {
        natsMsg_Destroy(reply);
        return dt__broker_fail(b, DT_ENOMEM, "request to %s: out of memory", m->subject);
    }
    *out_reply = w;
    return DT_OK;
}
