/*
 * Rewind of a failed instance: one OrchestrationMessage with ExecutionRewound { reason } for "any
 * execution" to the instance's partition, like terminate (signal.c), after a check of the status
 * record: unknown is DT_ENOTFOUND, anything but FAILED is DT_ESTATE. The worker checks again when
 * it applies the request (runtime/worker/partition/episode_rewind.c) and ignores it for an instance
 * that is not failed by then.
 *
 * Identity: "<instance>/-/rewind/<random 63-bit number>" (each call is a new request).
 *
 * dt_client_rewind_wait then waits for the status record to change after the revision the check
 * read: the worker writes it when it applies the rewind, so a caller that waits for completion
 * next does not read the failure the rewind is about (the SDKs' rewind-then-wait does that).
 */
#include "client_int.h"

#include <string.h>

static dt_status check_failed(dt_client *c, dt__arena *a, const char *id, uint64_t *rev)
{
    Dtpb__InstanceStatus *cur = NULL;
    dt_status st = dt__client_status_read(c, a, id, &cur, rev);
    if (st != DT_OK) {
        return st;
    }
    if (cur->runtime_status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED) {
        return dt__client_fail(
            c, DT_ESTATE, "instance '%s' is %s: only a failed instance can be rewound", id,
            dt_client_runtime_status_name((dt_client_runtime_status)cur->runtime_status));
    }
    return DT_OK;
}

static dt_status send_rewind(dt_client *c, dt__arena *a, const char *id, const char *reason,
                             uint64_t *rev)
{
    dt_status st = dt__client_check_id(c, "instance ID", id);
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st == DT_OK) {
        st = check_failed(c, a, id, rev);
    }
    int64_t n = 0;
    if (st == DT_OK) {
        st = dt__client_rand63(c, &n);
    }
    char dedupe[DT_CLIENT_ID_BUF + 64];
    if (st == DT_OK) {
        st = dt__msg_id(dedupe, sizeof(dedupe), id, "-", "rewind", n);
    }
    if (st != DT_OK) {
        return st;
    }
    Dtpb__Payload p;
    dtpb__payload__init(&p);
    p.value.data = (uint8_t *)reason;
    p.value.len = reason != NULL ? strlen(reason) : 0;
    Dtpb__ExecutionRewoundEvent er;
    dtpb__execution_rewound_event__init(&er);
    er.reason = reason != NULL ? &p : NULL;
    Dtpb__Timestamp now;
    dt__client_ts_set(&now, dt__now_ms());
    Dtpb__HistoryEvent ev;
    dtpb__history_event__init(&ev);
    ev.event_id = -1;
    ev.timestamp = &now;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND;
    ev.execution_rewound = &er;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, id, "", &ev, dedupe);
    return dt__client_publish_orch(c, a, &m, NULL);
}

dt_status dt_client_rewind(dt_client *c, const char *instance_id, const char *reason)
{
    if (c == NULL) {
        return DT_EINVAL;
    }
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "rewind: out of memory");
    }
    uint64_t rev = 0;
    dt_status st = send_rewind(c, a, instance_id, reason, &rev);
    dt__arena_destroy(a);
    return st;
}

static bool any_status(int32_t status)
{
    (void)status;
    return true;
}

dt_status dt_client_rewind_wait(dt_client *c, const char *instance_id, const char *reason,
                                int64_t timeout_ms)
{
    if (c == NULL) {
        return DT_EINVAL;
    }
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "rewind: out of memory");
    }
    uint64_t rev = 0;
    dt_status st = send_rewind(c, a, instance_id, reason, &rev);
    if (st == DT_OK && (st = dt__client_wait_enter(c)) == DT_OK) {
        /* The failed record is at `rev`; the worker writes the next one when it applies the
         * rewind (or a purge or a replacing start got there first: the request is moot). */
        Dtpb__InstanceStatus *after = NULL;
        st = dt__client_wait_after(c, a, instance_id, timeout_ms, rev, any_status,
                                   "take the rewind", &after);
        dt__client_wait_leave(c);
    }
    dt__arena_destroy(a);
    return st;
}
