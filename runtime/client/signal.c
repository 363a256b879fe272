/*
 * Events and control messages to running instances: raise, terminate, suspend, resume. Each is
 * one OrchestrationMessage for "any execution" (empty execution ID) published to the instance's
 * partition, after a check of the status record (unknown: DT_ENOTFOUND, finished: DT_ESTATE).
 *
 * Message identity (dedupe_id and Nats-Msg-Id): "<instance>/-/<kind>/<random 63-bit number>",
 * so that every call is a new message; with an idempotency key "<instance>/-/<kind>/k.<key>", so
 * that repeats of one call are applied once.
 */
#include "client_int.h"

#include <stdio.h>
#include <string.h>

typedef struct signal_req {
    const char *kind; /* "raise", "terminate", "suspend", "resume" */
    const char *idempotency_key;
    Dtpb__HistoryEvent *ev;
} signal_req;

static dt_status check_key(dt_client *c, const char *key)
{
    if (key == NULL) {
        return DT_OK;
    }
    size_t n = strlen(key);
    bool ok = n > 0 && n <= DT_NAME_MAX;
    for (const unsigned char *p = (const unsigned char *)key; ok && *p != '\0'; p++) {
        ok = *p > ' ' && *p <= '~';
    }
    return ok ? DT_OK
              : dt__client_fail(c, DT_EINVAL,
                                "invalid idempotency key: use 1..%d printable ASCII characters "
                                "without spaces",
                                DT_NAME_MAX);
}

static dt_status make_dedupe(dt_client *c, const char *id, const signal_req *r, char *buf,
                             size_t len)
{
    if (r->idempotency_key != NULL) {
        int w = snprintf(buf, len, "%s/-/%s/k.%s", id, r->kind, r->idempotency_key);
        return (w > 0 && (size_t)w < len) ? DT_OK
                                          : dt__client_fail(c, DT_ETOOLARGE, "key too long");
    }
    int64_t n = 0;
    dt_status st = dt__client_rand63(c, &n);
    if (st == DT_OK) {
        st = dt__msg_id(buf, len, id, "-", r->kind, n);
    }
    return st;
}

static dt_status send_signal(dt_client *c, dt__arena *a, const char *id, signal_req *r)
{
    dt_status st = dt__client_check_id(c, "instance ID", id);
    if (st == DT_OK) {
        st = check_key(c, r->idempotency_key);
    }
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    Dtpb__InstanceStatus *cur = NULL;
    if (st == DT_OK) {
        st = dt__client_status_read(c, a, id, &cur, NULL);
    }
    if (st != DT_OK) {
        return st;
    }
    if (dt__client_status_finished(cur->runtime_status)) {
        return dt__client_fail(
            c, DT_ESTATE, "instance '%s' is %s: cannot %s it", id,
            dt_client_runtime_status_name((dt_client_runtime_status)cur->runtime_status), r->kind);
    }
    char dedupe[DT_CLIENT_ID_BUF + DT_NAME_MAX + 32];
    st = make_dedupe(c, id, r, dedupe, sizeof(dedupe));
    if (st != DT_OK) {
        return st;
    }
    Dtpb__Timestamp now;
    dt__client_ts_set(&now, dt__now_ms());
    r->ev->event_id = -1;
    r->ev->timestamp = &now;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, id, "", r->ev, dedupe);
    return dt__client_publish_orch(c, a, &m, NULL);
}

/* Runs send_signal with a fresh arena. */
static dt_status signal_run(dt_client *c, const char *id, signal_req *r)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "%s: out of memory", r->kind);
    }
    dt_status st = send_signal(c, a, id, r);
    dt__arena_destroy(a);
    return st;
}

/* A payload around borrowed bytes, or NULL when data is NULL. */
static Dtpb__Payload *opt_payload(Dtpb__Payload *p, const void *data, size_t len)
{
    if (data == NULL) {
        return NULL;
    }
    dtpb__payload__init(p);
    p->value.data = (uint8_t *)data;
    p->value.len = len;
    return p;
}

dt_status dt_client_raise_event(dt_client *c, const char *instance_id, const char *event_name,
                                const void *data, size_t len, const char *idempotency_key)
{
    dt_status st = dt__client_check_name(c, "event name", event_name);
    if (st != DT_OK) {
        return st;
    }
    if (data == NULL && len > 0) {
        return dt__client_fail(c, DT_EINVAL, "raise: len without data");
    }
    Dtpb__Payload p;
    Dtpb__EventRaisedEvent er;
    dtpb__event_raised_event__init(&er);
    er.name = (char *)event_name;
    er.input = opt_payload(&p, data, len);
    Dtpb__HistoryEvent ev;
    dtpb__history_event__init(&ev);
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ev.event_raised = &er;
    signal_req r = {.kind = "raise", .idempotency_key = idempotency_key, .ev = &ev};
    return signal_run(c, instance_id, &r);
}

dt_status dt_client_terminate(dt_client *c, const char *instance_id, const char *reason,
                              bool recursive)
{
    Dtpb__Payload p;
    Dtpb__ExecutionTerminatedEvent et;
    dtpb__execution_terminated_event__init(&et);
    et.input = opt_payload(&p, reason, reason != NULL ? strlen(reason) : 0);
    et.recurse = recursive;
    Dtpb__HistoryEvent ev;
    dtpb__history_event__init(&ev);
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
    ev.execution_terminated = &et;
    signal_req r = {.kind = "terminate", .ev = &ev};
    return signal_run(c, instance_id, &r);
}

dt_status dt_client_suspend(dt_client *c, const char *instance_id, const char *reason)
{
    Dtpb__Payload p;
    Dtpb__ExecutionSuspendedEvent es;
    dtpb__execution_suspended_event__init(&es);
    es.input = opt_payload(&p, reason, reason != NULL ? strlen(reason) : 0);
    Dtpb__HistoryEvent ev;
    dtpb__history_event__init(&ev);
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED;
    ev.execution_suspended = &es;
    signal_req r = {.kind = "suspend", .ev = &ev};
    return signal_run(c, instance_id, &r);
}

dt_status dt_client_resume(dt_client *c, const char *instance_id, const char *reason)
{
    Dtpb__Payload p;
    Dtpb__ExecutionResumedEvent er;
    dtpb__execution_resumed_event__init(&er);
    er.input = opt_payload(&p, reason, reason != NULL ? strlen(reason) : 0);
    Dtpb__HistoryEvent ev;
    dtpb__history_event__init(&ev);
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED;
    ev.execution_resumed = &er;
    signal_req r = {.kind = "resume", .ev = &ev};
    return signal_run(c, instance_id, &r);
}
