/*
 * The query service of one partition: lifecycle and request dispatch (see query_int.h). The
 * handlers of list, history and purge are in query_ops.c.
 *
 * Every request is decoded into a fresh arena, answered from the store, and replied to with one
 * QueryResponse; nothing a request contains can crash the service (a body that does not decode,
 * or decodes to no request, is answered with DT_EDECODE).
 */
#include "query_int.h"

#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "protocol_int.h"

/* Replies are kept this far below the server's max payload (NATS framing and headers). */
#define REPLY_HEADROOM 4096
/* Bytes of a payload reply besides the value (QueryResponse and PayloadResponse framing). */
#define PAYLOAD_REPLY_FRAMING 32
/* Used when the connection does not know the server's max payload (reconnecting). */
#define REPLY_FALLBACK_MAX ((int64_t)1024 * 1024)

static size_t reply_budget(dt__query_service *q)
{
    int64_t max = dt_broker_max_payload(q->b);
    if (max <= 0) {
        max = REPLY_FALLBACK_MAX;
    }
    return max > REPLY_HEADROOM ? (size_t)(max - REPLY_HEADROOM) : (size_t)max;
}

static void respond(dt__query_service *q, dt_broker_msg *m, dt__arena *a, Dtpb__QueryResponse *r)
{
    size_t len = 0;
    uint8_t *data = dt__pack(a, &r->base, &len);
    if (data == NULL) {
        return; /* out of memory: the requester times out */
    }
    dt_broker_outmsg out = {.data = data, .len = len};
    (void)dt_broker_msg_respond(m, &out);
    (void)q;
}

static dt_status dispatch(dt__query_service *q, dt__arena *a, const Dtpb__QueryRequest *req,
                          Dtpb__QueryResponse *r, char *err, size_t errlen)
{
    dt__query_ctx x = {
        .q = q, .a = a, .r = r, .err = err, .errlen = errlen, .budget = reply_budget(q)};
    switch (req->kind_case) {
    case DTPB__QUERY_REQUEST__KIND_LIST:
        return dt__query_list(&x, req->list);
    case DTPB__QUERY_REQUEST__KIND_HISTORY:
        return dt__query_history(&x, req->history);
    case DTPB__QUERY_REQUEST__KIND_PURGE:
        return dt__query_purge(&x, req->purge);
    case DTPB__QUERY_REQUEST__KIND_PAYLOAD:
        /* One stored value, which fit a message when it came in: a reply without headers
         * carries it with a few bytes of framing, so all but those may be used. */
        x.budget += REPLY_HEADROOM - PAYLOAD_REPLY_FRAMING;
        return dt__query_payload(&x, req->payload);
    default:
        dt__errf(err, errlen, "query request names no operation (list, history or purge)");
        return DT_EDECODE;
    }
}

static void on_request(dt_broker_msg *m, void *ctx)
{
    dt__query_service *q = ctx;
    dt__arena *a = dt_broker_msg_reply(m) != NULL ? dt__arena_create(0) : NULL;
    if (a == NULL) {
        dt_broker_msg_destroy(m); /* not a request, or out of memory (the requester times out) */
        return;
    }
    char err[512] = "";
    Dtpb__QueryResponse r;
    dtpb__query_response__init(&r);
    Dtpb__QueryRequest *req = dtpb__query_request__unpack(
        dt__arena_pb_allocator(a), dt_broker_msg_len(m), dt_broker_msg_data(m));
    dt_status st = DT_EDECODE;
    if (req == NULL) {
        /* No partition in the text: the client prefixes it (query_ops.c, fail). */
        dt__errf(err, sizeof(err), "malformed query request (%zu bytes)", dt_broker_msg_len(m));
    } else {
        st = dispatch(q, a, req, &r, err, sizeof(err));
    }
    r.status = (int32_t)st;
    if (st != DT_OK) {
        r.error = err;
        if (r.result_case != DTPB__QUERY_RESPONSE__RESULT_PURGE) {
            r.result_case = DTPB__QUERY_RESPONSE__RESULT__NOT_SET; /* no partial list / history */
        }
    }
    respond(q, m, a, &r);
    dt__arena_destroy(a);
    dt_broker_msg_destroy(m);
}

static dt_status open_parts(dt__query_service *q, const char *db_path, char *err, size_t errlen)
{
    char bucket[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF], tail[16];
    dt_status st = dt__store_open(db_path, NULL, &q->store, err, errlen);
    if (st != DT_OK) {
        return st;
    }
    st = dt_broker_bucket_name(q->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    if (st == DT_OK) {
        st = dt_broker_kv_open(q->b, bucket, &q->status_kv);
    }
    if (st != DT_OK) {
        dt__errf(err, errlen, "query service of partition %u: status bucket: %s", q->partition,
                 dt_broker_errmsg(q->b));
        return st;
    }
    snprintf(tail, sizeof(tail), "%u", q->partition);
    st = dt_broker_subject(q->hub, DT_BROKER_SUBJ_QUERY, tail, subject, sizeof(subject));
    if (st == DT_OK) {
        st = dt_broker_subscribe(q->b, subject, NULL, on_request, q, &q->sub);
    }
    if (st != DT_OK) {
        dt__errf(err, errlen, "query service of partition %u: subscribe: %s", q->partition,
                 dt_broker_errmsg(q->b));
    }
    return st;
}

dt_status dt__query_service_start(dt_broker *b, const char *hub, uint32_t partition,
                                  const char *db_path, dt__journal *journal, uint64_t epoch,
                                  dt__query_service **out, char *err, size_t errlen)
{
    if (b == NULL || hub == NULL || !dt_broker_hub_name_valid(hub) || db_path == NULL ||
        out == NULL || partition >= DT_BROKER_MAX_PARTITIONS) {
        dt__errf(err, errlen,
                 "query service: broker, valid hub, partition, db path and out are "
                 "required");
        return DT_EINVAL;
    }
    dt__query_service *q = dt_calloc(1, sizeof(*q));
    if (q == NULL) {
        dt__errf(err, errlen, "query service: out of memory");
        return DT_ENOMEM;
    }
    q->b = b;
    memcpy(q->hub, hub, strlen(hub) + 1);
    q->partition = partition;
    q->epoch = epoch;
    q->journal = journal;
    dt_status st = open_parts(q, db_path, err, errlen);
    if (st != DT_OK) {
        dt__query_service_stop(q);
        return st;
    }
    *out = q;
    return DT_OK;
}

void dt__query_service_stop(dt__query_service *q)
{
    if (q == NULL) {
        return;
    }
    dt_broker_sub_destroy(q->sub);
    dt_broker_kv_close(q->status_kv);
    dt__store_close(q->store);
    dt_free(q);
}
