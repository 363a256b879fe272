/*
 * svc_history.c: StreamInstanceHistory (dt_client_get_history_page): one HistoryChunk per page
 * the partition's worker returns.
 *
 * The runtime's history events (schema/dt_history.proto) are the protocol's HistoryEvent on the
 * wire: same field numbers, wire-compatible payload and timestamp types (docs/design.md,
 * "Messages"). So a chunk is built from the stored bytes as they are, each one a field 1 of the
 * HistoryChunk. Fields of our own (numbers from 100) stay inside as unknown fields, which
 * protobuf readers skip; an event whose only type is our own (MessagePublished, a durable NATS
 * publish) has no counterpart in the protocol and is left out.
 *
 * When the execution changes between pages (a continue-as-new meanwhile), the stream ends with
 * ABORTED: what was sent mixes two executions and the caller should read again.
 */
#include <string.h>

#include "common_int.h"
#include "sidecar_int.h"

/* True when the event has a type of the protocol (not only one of ours). */
static bool protocol_event(const uint8_t *raw, size_t len)
{
    Dtproto__HistoryEvent *e = dtproto__history_event__unpack(dt__pb_allocator(), len, raw);
    if (e == NULL) {
        return false;
    }
    bool ok = e->event_type_case != DTPROTO__HISTORY_EVENT__EVENT_TYPE__NOT_SET;
    dtproto__history_event__free_unpacked(e, dt__pb_allocator());
    return ok;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            p[n] |= 0x80;
        }
        n++;
    } while (v != 0);
    return n;
}

/* Packs the page's events as one HistoryChunk and sends it. */
static dt_status send_chunk(dt__grpc_call *call, const dt_client_history *h)
{
    size_t cap = 0;
    for (size_t i = 0; i < h->n; i++) {
        cap += 1 + 10 + h->events[i].raw_len;
    }
    uint8_t *buf = dt_alloc(cap > 0 ? cap : 1);
    if (buf == NULL) {
        return DT_ENOMEM;
    }
    size_t len = 0;
    for (size_t i = 0; i < h->n; i++) {
        const dt_client_event *e = &h->events[i];
        if (!protocol_event(e->raw, e->raw_len)) {
            continue;
        }
        buf[len++] = 0x0a; /* field 1, length-delimited */
        len += put_varint(buf + len, e->raw_len);
        memcpy(buf + len, e->raw, e->raw_len);
        len += e->raw_len;
    }
    dt_status st = dt__grpc_call_send(call, buf, len);
    dt_free(buf);
    return st;
}

static bool same_execution(const char *a, const char *b)
{
    return a == NULL || b == NULL || strcmp(a, b) == 0;
}

static void stream_history(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__StreamInstanceHistoryRequest *r =
        (Dtproto__StreamInstanceHistoryRequest *)dt__svc_unpack(
            call, &dtproto__stream_instance_history_request__descriptor);
    if (r == NULL) {
        return;
    }
    const char *want =
        r->execution_id != NULL && r->execution_id->value[0] != 0 ? r->execution_id->value : NULL;
    char first_exec[DT_CLIENT_ID_BUF] = "";
    size_t start = 0, total = 1;
    while (start < total) {
        dt_client_history *h = NULL;
        size_t next = 0;
        dt_status st =
            dt_client_get_history_page(svc->client, r->instance_id, start, 0, &h, &next, &total);
        if (st != DT_OK) {
            dt__svc_fail(call, svc, st, "StreamInstanceHistory");
            goto out;
        }
        if (start == 0 && h->execution_id != NULL) {
            dt__errf(first_exec, sizeof first_exec, "%s", h->execution_id);
        }
        if (!same_execution(want, h->execution_id) ||
            (start > 0 &&
             !same_execution(first_exec[0] != 0 ? first_exec : NULL, h->execution_id))) {
            dt_client_history_free(h);
            dt__grpc_call_finish(call,
                                 want != NULL && start == 0 ? DT_GRPC_NOT_FOUND : DT_GRPC_ABORTED,
                                 "the instance's current execution is not the one asked for, or "
                                 "it changed while its history was read");
            goto out;
        }
        st = send_chunk(call, h);
        dt_client_history_free(h);
        if (st != DT_OK) {
            dt__grpc_call_finish(call,
                                 st == DT_ECLOSED ? DT_GRPC_CANCELLED : DT_GRPC_RESOURCE_EXHAUSTED,
                                 "a page of history could not be sent");
            goto out;
        }
        if (next <= start) {
            break; /* no progress: the worker gave an empty page */
        }
        start = next;
    }
    dt__grpc_call_finish(call, DT_GRPC_OK, NULL);
out:
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

const dt__sidecar_method dt__svc_history_methods[] = {
    {"StreamInstanceHistory", stream_history},
    {NULL, NULL},
};
