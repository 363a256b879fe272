/*
 * Building the natsMsg of an outgoing message, header block included.
 *
 * Why not natsMsg_Create + natsMsgHeader_Add/Set: nats.c 3.4.1 keeps a message's headers in a
 * hash table with a heap entry and a copy of each value, encodes them from that table at publish
 * time and frees it all again when the message is destroyed: about 4,000 instructions per
 * published message, more than the rest of the publish (docs/performance.md, "The broker
 * adapter's per-message CPU"). Here the adapter writes the header block itself ("NATS/1.0\r\n",
 * "Name: value\r\n" per header, "\r\n") into the message's one allocation, next to the payload,
 * the way nats.c itself stores a received message whose headers it has not parsed:
 * natsConn_publish then sends that block as it is.
 *
 * nats.c's public API has no call for that; natsMsg_create (lower case: src/msg.h, exported by
 * libnats.so.3.4 but not declared in nats.h) is the function its parser uses for received
 * messages. It is used for the nats.c release it was checked against only (3.4.x: the library's
 * soname changes with its minor version); any other release builds the public way below.
 *
 * Encoding as nats.c does it: names as given, CR and LF in values replaced by spaces. A header the
 * adapter sets itself (Nats-Msg-Id, Nats-Expected-Last-Subject-Sequence) replaces one of the same
 * name among the caller's headers, as natsMsgHeader_Set did.
 */
#include "broker_int.h"

#include <limits.h>
#include <string.h>

#define HDR_EXPECT_LAST_SUBJ_SEQ "Nats-Expected-Last-Subject-Sequence"
#define HDR_LINE                 "NATS/1.0\r\n"

#if NATS_VERSION_MAJOR == 3 && NATS_VERSION_MINOR == 4
#define DT__RAW_HEADERS 1
/* nats.c 3.4 src/msg.c: creates a message from `buf` (bufLen bytes, the first hdrLen of them an
 * encoded header block) in one allocation; copies subject, reply and buf. */
natsStatus natsMsg_create(natsMsg **newMsg, const char *subject, int subjLen, const char *reply,
                          int replyLen, const char *buf, int bufLen, int hdrLen);
#else
#define DT__RAW_HEADERS 0
#endif

/* The headers the adapter adds for `parts`, as name/value pairs; returns how many. */
static size_t own_headers(const dt_broker_outmsg *m, unsigned parts, dt_broker_header own[2],
                          char seq[24])
{
    size_t n = 0;
    if ((parts & DT__OUT_MSG_ID) != 0 && m->msg_id != NULL && m->msg_id[0] != '\0') {
        own[n++] = (dt_broker_header){DT__HDR_MSG_ID, m->msg_id};
    }
    if ((parts & DT__OUT_EXPECT) != 0 && (m->expect_no_message || m->expect_last_subject_seq > 0)) {
        dt__errf(seq, 24, "%llu",
                 (unsigned long long)(m->expect_no_message ? 0 : m->expect_last_subject_seq));
        own[n++] = (dt_broker_header){HDR_EXPECT_LAST_SUBJ_SEQ, seq};
    }
    return n;
}

/* True when a caller header is replaced by one of `own`. */
static bool overridden(const char *name, const dt_broker_header *own, size_t nown)
{
    for (size_t i = 0; i < nown; i++) {
        if (strcmp(name, own[i].name) == 0) {
            return true;
        }
    }
    return false;
}

#if DT__RAW_HEADERS

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

/* Appends "name: value\r\n" (CR and LF in the value as spaces) and returns the new end. */
static char *put_header(char *w, const dt_broker_header *h)
{
    w = put(w, h->name, strlen(h->name));
    *w++ = ':';
    *w++ = ' ';
    for (const char *v = h->value != NULL ? h->value : ""; *v != '\0'; v++) {
        char ch = *v;
        if (ch == '\r' || ch == '\n') {
            ch = ' ';
        }
        *w++ = ch;
    }
    *w++ = '\r';
    *w++ = '\n';
    return w;
}

static size_t header_len(const dt_broker_header *h)
{
    return strlen(h->name) + strlen(h->value != NULL ? h->value : "") + 4;
}

static natsStatus build_raw(const dt_broker_outmsg *m, const char *reply,
                            const dt_broker_header *own, size_t nown, natsMsg **out)
{
    size_t hlen = sizeof(HDR_LINE) - 1 + 2;
    for (size_t i = 0; i < m->nheaders; i++) {
        if (!overridden(m->headers[i].name, own, nown)) {
            hlen += header_len(&m->headers[i]);
        }
    }
    for (size_t i = 0; i < nown; i++) {
        hlen += header_len(&own[i]);
    }
    if (hlen > (size_t)INT_MAX || m->len > (size_t)INT_MAX - hlen) {
        return NATS_MAX_PAYLOAD;
    }
    /* With buf NULL, natsMsg_create only lays the message out: the header block, a NUL, then the
     * payload (3.4.1 src/msg.c). Both are written in place: the payload is copied once. */
    natsMsg *nm = NULL;
    size_t rlen = reply != NULL ? strlen(reply) : 0;
    natsStatus s = natsMsg_create(&nm, m->subject, (int)strlen(m->subject), reply, (int)rlen, NULL,
                                  (int)(hlen + m->len), (int)hlen);
    if (s != NATS_OK) {
        return s;
    }
    char *data = (char *)natsMsg_GetData(nm);
    if (data == NULL || natsMsg_GetDataLength(nm) != (int)m->len) {
        natsMsg_Destroy(nm); /* not the layout this file was written for */
        return NATS_ERR;
    }
    char *w = put(data - 1 - hlen, HDR_LINE, sizeof(HDR_LINE) - 1);
    for (size_t i = 0; i < m->nheaders; i++) {
        if (!overridden(m->headers[i].name, own, nown)) {
            w = put_header(w, &m->headers[i]);
        }
    }
    for (size_t i = 0; i < nown; i++) {
        w = put_header(w, &own[i]);
    }
    *w++ = '\r';
    *w++ = '\n';
    if (m->len > 0) {
        memcpy(data, m->data, m->len);
    }
    *out = nm;
    return NATS_OK;
}

#endif

/* The public way: nats.c's header table. */
static natsStatus build_table(const dt_broker_outmsg *m, const char *reply,
                              const dt_broker_header *own, size_t nown, natsMsg **out)
{
    natsMsg *nm = NULL;
    natsStatus s = natsMsg_Create(&nm, m->subject, reply, (const char *)m->data, (int)m->len);
    for (size_t i = 0; s == NATS_OK && i < m->nheaders; i++) {
        if (!overridden(m->headers[i].name, own, nown)) {
            const char *v = m->headers[i].value;
            s = natsMsgHeader_Add(nm, m->headers[i].name, v != NULL ? v : "");
        }
    }
    for (size_t i = 0; s == NATS_OK && i < nown; i++) {
        s = natsMsgHeader_Set(nm, own[i].name, own[i].value);
    }
    if (s != NATS_OK) {
        natsMsg_Destroy(nm);
        return s;
    }
    *out = nm;
    return NATS_OK;
}

natsStatus dt__broker_natsmsg(const dt_broker_outmsg *m, const char *reply, unsigned parts,
                              natsMsg **out)
{
    if (reply != NULL && reply[0] == '\0') {
        return NATS_INVALID_ARG; /* as natsMsg_Create */
    }
    dt_broker_header own[2];
    char seq[24];
    size_t nown = own_headers(m, parts, own, seq);
#if DT__RAW_HEADERS
    if (m->nheaders + nown > 0) {
        return build_raw(m, reply, own, nown, out);
    }
#endif
    return build_table(m, reply, own, nown, out);
}
