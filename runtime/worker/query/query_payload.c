/*
 * The query service's payload handler: one stored value of an instance (input, output, custom
 * status or failure details). A status record that would not fit a message leaves its payloads
 * out (payloads_omitted; runtime/worker/partition/commit.c); readers fetch them here one at a time,
 * since each fits a message on its own while all of them together may not.
 */
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "protocol_int.h"
#include "query_int.h"

static dt_status fail(dt__query_ctx *x, dt_status st, const char *what, const char *detail)
{
    /* The requester names the partition. */
    dt__errf(x->err, x->errlen, "%s%s", what, detail);
    return st;
}

static Dtpb__Payload *payload_of(dt__arena *a, const dt__blob *b)
{
    Dtpb__Payload *p = b->data != NULL ? dt__arena_alloc(a, sizeof(*p)) : NULL;
    if (p != NULL) {
        dtpb__payload__init(p);
        p->value.data = (uint8_t *)b->data;
        p->value.len = b->len;
    }
    return p;
}

dt_status dt__query_payload(dt__query_ctx *x, const Dtpb__PayloadRequest *req)
{
    if (req->instance_id == NULL || req->instance_id[0] == '\0') {
        return fail(x, DT_EINVAL, "payload: instance id missing", "");
    }
    dt__instance_row row;
    dt_status st = dt__store_get_instance(x->q->store, req->instance_id, x->a, &row);
    if (st != DT_OK) {
        return fail(x, st, "payload: ", dt__store_errmsg(x->q->store));
    }
    if (req->execution_id != NULL && req->execution_id[0] != '\0' &&
        strcmp(req->execution_id, row.execution_id) != 0) {
        return fail(x, DT_ESTATE,
                    "payload: the instance has moved on to another execution since the status "
                    "record was read; read it again",
                    "");
    }
    Dtpb__PayloadResponse *pr = dt__arena_alloc(x->a, sizeof(*pr));
    if (pr == NULL) {
        return fail(x, DT_ENOMEM, "payload: out of memory", "");
    }
    dtpb__payload_response__init(pr);
    const dt__blob *b = NULL;
    switch (req->field) {
    case DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_INPUT:
        b = &row.input;
        break;
    case DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_OUTPUT:
        b = &row.output;
        break;
    case DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_CUSTOM_STATUS:
        b = &row.custom_status;
        break;
    case DTPB__PAYLOAD_FIELD__PAYLOAD_FIELD_FAILURE:
        if (row.failure_details.data != NULL &&
            (pr->failure = dtpb__task_failure_details__unpack(dt__arena_pb_allocator(x->a),
                                                              row.failure_details.len,
                                                              row.failure_details.data)) == NULL) {
            return fail(x, DT_ECORRUPT, "payload: stored failure details do not decode", "");
        }
        break;
    default:
        return fail(x, DT_EINVAL, "payload: unknown field", "");
    }
    if (b != NULL && b->data != NULL && (pr->value = payload_of(x->a, b)) == NULL) {
        return fail(x, DT_ENOMEM, "payload: out of memory", "");
    }
    if (protobuf_c_message_get_packed_size(&pr->base) > x->budget) {
        return fail(x, DT_ETOOLARGE, "payload: the value is larger than a reply may be", "");
    }
    x->r->result_case = DTPB__QUERY_RESPONSE__RESULT_PAYLOAD;
    x->r->payload = pr;
    return DT_OK;
}
