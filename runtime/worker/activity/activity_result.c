/*
 * What the activity pool publishes: results (an OrchestrationMessage with TaskCompleted or
 * TaskFailed for the request's instance and execution, published to its reply subject) and dead
 * letters (the original body of a malformed work item, with the reason in a header).
 *
 * A result's identity "<instance>/<execution>/res/<task id>" is both its Nats-Msg-Id and its
 * dedupe_id, so that the result of an activity that ran twice (at-least-once) is applied once.
 * After a rewind the kind is "res.r<n>" (the request's `rewinds`), so that the call run again is
 * not taken for a repeat of its failed run.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "activity_int.h"
#include "common_int.h"
#include "protocol_int.h"

/* Bytes of a JetStream message beyond its body: the header block with Nats-Msg-Id. */
#define HEADER_OVERHEAD 64

#define TOO_LARGE_TYPE "dt.OutputTooLarge"

char *dt__act_result_id(dt__arena *a, const Dtpb__ActivityRequest *req)
{
    char buf[DT__ACT_MSG_ID_MAX], kind[32] = "res";
    if (req->rewinds > 0) { /* a call sent again by a rewind (episode_rewind.c) */
        snprintf(kind, sizeof(kind), "res.r%u", (unsigned)req->rewinds);
    }
    if (dt__msg_id(buf, sizeof(buf), req->instance_id, req->execution_id, kind, req->task_id) !=
        DT_OK) {
        return NULL;
    }
    return dt__arena_strdup(a, buf);
}

void dt__act_failure(dt__arena *a, dt__act_outcome *o, const char *type, bool non_retriable,
                     const char *fmt, ...)
{
    memset(o, 0, sizeof(*o));
    o->failed = true;
    o->type = type;
    o->non_retriable = non_retriable;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = n >= 0 ? dt__arena_alloc(a, (size_t)n + 1) : NULL;
    if (msg != NULL) {
        va_start(ap, fmt);
        (void)vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    o->message = msg != NULL ? msg : type;
}

/* Packs the message for outcome `o` (all pointers borrowed during the call). */
static uint8_t *pack_outcome(dt__arena *a, const Dtpb__ActivityRequest *req,
                             const dt__act_outcome *o, char *msg_id, size_t *out_len)
{
    int64_t now = dt__now_ms();
    Dtpb__Timestamp ts;
    dtpb__timestamp__init(&ts);
    ts.seconds = now / 1000;
    ts.nanos = (int32_t)(now % 1000) * 1000000;
    Dtpb__HistoryEvent ev;
    dtpb__history_event__init(&ev);
    ev.event_id = -1;
    ev.timestamp = &ts;
    Dtpb__TaskCompletedEvent tc;
    Dtpb__TaskFailedEvent tf;
    Dtpb__TaskFailureDetails fd;
    Dtpb__Payload pl;
    if (o->failed) {
        dtpb__task_failure_details__init(&fd);
        fd.error_type = (char *)o->type;
        fd.error_message = (char *)(o->message != NULL ? o->message : "");
        fd.is_non_retriable = o->non_retriable;
        if (o->details != NULL) {
            dtpb__payload__init(&pl);
            pl.value.data = (uint8_t *)o->details;
            pl.value.len = strlen(o->details);
            fd.stack_trace = &pl;
        }
        dtpb__task_failed_event__init(&tf);
        tf.task_scheduled_id = req->task_id;
        tf.failure_details = &fd;
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED;
        ev.task_failed = &tf;
    } else {
        dtpb__task_completed_event__init(&tc);
        tc.task_scheduled_id = req->task_id;
        if (o->has_output) {
            dtpb__payload__init(&pl);
            pl.value.data = (uint8_t *)o->output;
            pl.value.len = o->output_len;
            tc.result = &pl;
        }
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
        ev.task_completed = &tc;
    }
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, req->instance_id, req->execution_id, &ev, msg_id);
    return dt__pack(a, &m.base, out_len);
}

dt_status dt__act_result_pack(dt__arena *a, const Dtpb__ActivityRequest *req,
                              const dt__act_outcome *o, size_t max_len, dt__act_result *out)
{
    char *id = dt__act_result_id(a, req);
    if (id == NULL) {
        return DT_ENOMEM;
    }
    /* A traceparent header ("traceparent: " + 55 bytes) rides along when the result fits. */
    size_t overhead = strlen(id) + HEADER_OVERHEAD + (o->traceparent != NULL ? 80 : 0);
    size_t len = 0;
    uint8_t *data = pack_outcome(a, req, o, id, &len);
    if (data == NULL) {
        return DT_ENOMEM;
    }
    if (len + overhead > max_len) {
        dt__act_outcome f;
        dt__act_failure(a, &f, TOO_LARGE_TYPE, true,
                        "activity '%s' produced %zu bytes of output: its result message of %zu "
                        "bytes exceeds the hub's message limit of %zu bytes",
                        req->name, o->output_len, len + overhead, max_len);
        data = pack_outcome(a, req, &f, id, &len);
        if (data == NULL) {
            return DT_ENOMEM;
        }
        if (len + overhead > max_len) {
            return DT_ETOOLARGE;
        }
    }
    out->subject = req->reply_subject;
    out->msg_id = id;
    out->data = data;
    out->len = len;
    out->traceparent = len + overhead <= max_len && o->traceparent != NULL
                           ? dt__arena_strdup(a, o->traceparent)
                           : NULL;
    return DT_OK;
}

dt_status dt__act_dead_letter(const dt__activity_pool *p, dt_broker_msg *m, uint64_t stream_seq,
                              const char *reason)
{
    char id[DT_BROKER_NAME_BUF + 32];
    (void)snprintf(id, sizeof(id), "%s/%" PRIu64, p->act_stream, stream_seq);
    dt_broker_header h[2] = {
        {DT_HDR_REASON, reason},
        {DT_HDR_ORIGINAL_SUBJECT, dt_broker_msg_subject(m)},
    };
    dt_broker_outmsg o = {
        .subject = p->dead_subject,
        .msg_id = stream_seq > 0 ? id : NULL,
        .headers = h,
        .nheaders = 2,
        .data = dt_broker_msg_data(m),
        .len = dt_broker_msg_len(m),
    };
    return dt_broker_publish(p->b, &o, NULL);
}

dt_status dt__act_results_pack(dt__arena *a, const dt__act_result *const *members, size_t n,
                               dt__act_result *out)
{
    ProtobufCBinaryData *bodies = dt__arena_calloc(a, n, sizeof(*bodies));
    if (bodies == NULL) {
        return DT_ENOMEM;
    }
    uint64_t h = DT__FNV64_OFFSET;
    for (size_t i = 0; i < n; i++) {
        bodies[i].data = members[i]->data;
        bodies[i].len = members[i]->len;
        h = dt__fnv1a64(dt__fnv1a64(h, members[i]->msg_id), "\x1f");
    }
    Dtpb__OrchestrationBatch ob;
    dtpb__orchestration_batch__init(&ob);
    ob.n_messages = n;
    ob.messages = bodies;
    size_t len = 0;
    uint8_t *data = dt__pack(a, &ob.base, &len);
    size_t id_len = strlen(members[0]->msg_id) + 64;
    char *id = dt__arena_alloc(a, id_len);
    if (data == NULL || id == NULL) {
        return DT_ENOMEM;
    }
    (void)snprintf(id, id_len, "%s/batch/%zu/%016" PRIx64, members[0]->msg_id, n, h);
    *out = (dt__act_result){.subject = members[0]->subject, .msg_id = id, .data = data, .len = len};
    return DT_OK;
}
