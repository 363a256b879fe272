/*
 * Reading a stream by subject and position, and purging a subject below a position: what a
 * partition's log needs (runtime/journal). Reads use the direct-get API (the stream has
 * AllowDirect): any replica may answer, so a read can lag the newest write by a moment, but
 * never shows a later message without the earlier ones. Callers that act on "the last one" must
 * confirm it with a conditional write (expect_last_subject_seq), as the journal does.
 */
#include "broker_int.h"

#include <string.h>

dt_status dt_broker_stream_get(dt_broker *b, const char *stream, const char *subject,
                               dt_broker_get_mode mode, uint64_t seq, dt_broker_msg **out)
{
    if (stream == NULL || out == NULL || (mode != DT_BROKER_GET_SEQ && subject == NULL) ||
        (mode != DT_BROKER_GET_LAST && seq == 0)) {
        return dt__broker_fail(b, DT_EINVAL, "stream get: bad arguments");
    }
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    if (mode == DT_BROKER_GET_LAST) {
        o.LastBySubject = subject;
    } else {
        o.Sequence = seq;
        o.NextBySubject = mode == DT_BROKER_GET_NEXT ? subject : NULL;
    }
    natsMsg *nm = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_DirectGetMsg(&nm, b->js, stream, NULL, &o);
    if (s == NATS_NOT_FOUND) {
        return dt__broker_fail(b, DT_ENOTFOUND, "stream %s: no message on %s from %llu", stream,
                               subject != NULL ? subject : "(any)", (unsigned long long)seq);
    }
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, jerr, "stream %s: get on %s", stream,
                                    subject != NULL ? subject : "(any)");
    }
    dt_broker_msg *m = dt__broker_msg_wrap(nm, DT__MSG_CORE, b, NULL);
    if (m == NULL) {
        natsMsg_Destroy(nm);
        return dt__broker_fail(b, DT_ENOMEM, "stream get: out of memory");
    }
    *out = m;
    return DT_OK;
}

uint64_t dt_broker_msg_stored_seq(const dt_broker_msg *m)
{
    return natsMsg_GetSequence(m->nm);
}

dt_status dt_broker_stream_purge(dt_broker *b, const char *stream, const char *subject,
                                 uint64_t below_seq)
{
    if (stream == NULL || subject == NULL || below_seq == 0) {
        return dt__broker_fail(b, DT_EINVAL, "stream purge: bad arguments");
    }
    if (below_seq == 1) {
        /* Nothing is below the first sequence, and nats-server 2.9 reads a filtered purge with
         * "seq": 1 as "every message on the subject" (found by test_journal). */
        return DT_OK;
    }
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = subject;
    o.Stream.Purge.Sequence = below_seq;
    jsErrCode jerr = 0;
    natsStatus s = js_PurgeStream(b->js, stream, &o, &jerr);
    return s == NATS_OK ? DT_OK
                        : dt__broker_fail_nats(b, s, jerr, "stream %s: purge %s below %llu", stream,
                                               subject, (unsigned long long)below_seq);
}
