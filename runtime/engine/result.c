/*
 * Building an episode's result: the events to append to history and the instance's new status.
 * Everything in the result is copied into the result's own arena, so it stays valid after the
 * instance is evicted or freed.
 */
#include <stdio.h>
#include <string.h>

#include "instance_int.h"

typedef struct builder {
    dt__arena *a;
    Dtpb__HistoryEvent **ev;
    size_t n, cap;
} builder;

static bool push(builder *b, Dtpb__HistoryEvent *ev)
{
    if (ev == NULL) {
        return false;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap == 0 ? 16 : b->cap * 2;
        Dtpb__HistoryEvent **grown = dt__arena_alloc(b->a, cap * sizeof(*grown));
        if (grown == NULL) {
            return false;
        }
        if (b->n > 0) {
            memcpy(grown, b->ev, b->n * sizeof(*grown));
        }
        b->ev = grown;
        b->cap = cap;
    }
    b->ev[b->n++] = ev;
    return true;
}

static Dtpb__HistoryEvent *orchestrator_started(dt__arena *a, int64_t now)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, now);
    Dtpb__OrchestratorStartedEvent *e = dt__arena_alloc(a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return NULL;
    }
    dtpb__orchestrator_started_event__init(e);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED;
    ev->orchestrator_started = e;
    return ev;
}

static Dtpb__OrchestrationStatus status_of(inst_end end)
{
    switch (end) {
    case END_RETURNED:
        return DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    case END_FAILED:
        return DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    case END_CONTINUED:
        return DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW;
    case END_TERMINATED:
        return DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED;
    default:
        return DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    }
}

static Dtpb__HistoryEvent *execution_completed(dt__arena *a, const dt__instance *in, int64_t now)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, now);
    Dtpb__ExecutionCompletedEvent *e = dt__arena_alloc(a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return NULL;
    }
    dtpb__execution_completed_event__init(e);
    e->orchestration_status = status_of(in->end);
    if (in->has_end_data && (e->result = dt__emit_payload(a, in->end_data, in->end_len)) == NULL) {
        return NULL;
    }
    if (in->end_failure != NULL &&
        (e->failure_details = dt__failure_to_pb(a, in->end_failure)) == NULL) {
        return NULL;
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED;
    ev->execution_completed = e;
    return ev;
}

/* History would outgrow its bound: the execution fails instead of taking these actions. */
static void fail_too_large(dt__instance *in, size_t would_be, size_t max)
{
    in->end = END_NONE;
    dt__instance_end(in, END_FAILED, NULL, 0, false,
                     dt__failure_make(in, DT_FAILURE_HISTORY_TOO_LARGE, NULL,
                                      "history would grow to %zu events, over the limit of %zu",
                                      would_be, max));
    in->discard_actions = true;
}

/* The output (or next input) or the custom status is over the bound: the execution fails
 * instead, and its actions of this episode are not taken. */
static void check_payloads(dt__instance *in)
{
    size_t max = dt__engine_cfg(in->engine)->max_payload_bytes;
    const char *what = NULL;
    size_t len = 0;
    bool own_end = in->end == END_RETURNED || in->end == END_CONTINUED; /* not a terminate's */
    if (max > 0 && own_end && in->has_end_data && in->end_len > max) {
        what = in->end == END_CONTINUED ? "continue-as-new input" : "output";
        len = in->end_len;
    } else if (max > 0 && in->has_custom_status && in->custom_status_len > max) {
        what = "custom status";
        len = in->custom_status_len;
        in->has_custom_status = false; /* never recorded */
    }
    if (what == NULL) {
        return;
    }
    in->end = END_NONE;
    dt__instance_end(in, END_FAILED, NULL, 0, false,
                     dt__failure_make(in, DT_FAILURE_PAYLOAD_TOO_LARGE, NULL,
                                      "%s of %zu bytes is over the hub's limit of %zu bytes", what,
                                      len, max));
    in->discard_actions = true;
}

/*
 * Timestamps within a history never go backwards: an appended event keeps its own timestamp
 * unless that is earlier than the previous event's, and then takes the previous one. A result
 * carries the clock of the host that produced it (an activity worker, a client), which may be
 * behind this episode's, or ahead of it; an event that arrived before the episode ran is
 * recorded at the episode's time. Returns `ev` itself, or a shallow copy with the later
 * timestamp (the variant stays shared with `ev`, as the event itself would be), NULL on OOM.
 */
static Dtpb__HistoryEvent *not_before(dt__arena *a, Dtpb__HistoryEvent *ev, int64_t *prev)
{
    int64_t t = dt__ts_to_ms(ev->timestamp);
    if (ev->timestamp != NULL && t >= *prev) {
        *prev = t;
        return ev;
    }
    Dtpb__HistoryEvent *c = dt__arena_alloc(a, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    *c = *ev;
    c->timestamp = dt__ts_from_ms(a, *prev);
    return c->timestamp != NULL ? c : NULL;
}

/* Events the engine makes itself: at the episode time, or later after a later new event. */
static int64_t engine_time(int64_t now, int64_t prev)
{
    return now > prev ? now : prev;
}

static dt_status build_events(builder *b, dt__instance *in, const dt__episode_input *input,
                              int64_t now)
{
    check_payloads(in);
    size_t actions = in->discard_actions ? 0 : (size_t)(in->next_id - in->confirmed_id);
    size_t total = input->n_past + 1 + input->n_new + actions + 1;
    size_t max = dt__engine_cfg(in->engine)->max_history_events;
    if (total > max) {
        fail_too_large(in, total, max);
        if (in->oom) {
            return DT_ENOMEM;
        }
    }
    /* now >= every timestamp in history (dt__engine_run_episode). */
    int64_t prev = now;
    bool ok = push(b, orchestrator_started(b->a, now));
    for (size_t i = 0; ok && i < input->n_new; i++) {
        ok = push(b, not_before(b->a, input->new_events[i], &prev));
    }
    for (int32_t id = in->confirmed_id; ok && !in->discard_actions && id < in->next_id; id++) {
        ok = push(b, dt__emit_action(b->a, in->tasks[id], engine_time(now, prev)));
    }
    if (ok && in->end != END_NONE) {
        /* An open critical section ends with the execution, however it ends (terminated and
         * failed ones too): its entities would stay locked for good otherwise. */
        Dtpb__HistoryEvent **unlocks = NULL;
        size_t n_unlocks = 0;
        ok = dt__entity_end_unlocks(in, b->a, engine_time(now, prev), &unlocks, &n_unlocks);
        for (size_t i = 0; ok && i < n_unlocks; i++) {
            ok = push(b, unlocks[i]);
        }
    }
    if (ok && in->end != END_NONE) {
        ok = push(b, execution_completed(b->a, in, engine_time(now, prev)));
    }
    in->last_ts = prev;
    return ok ? DT_OK : DT_ENOMEM;
}

static Dtpb__HistoryEvent *raised(dt__arena *a, const buffered_event *be, int64_t now)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, now);
    Dtpb__EventRaisedEvent *e = dt__arena_alloc(a, sizeof(*e));
    if (ev == NULL || e == NULL) {
        return NULL;
    }
    dtpb__event_raised_event__init(e);
    e->name = dt__arena_strdup(a, be->name);
    if (e->name == NULL ||
        (be->has_data && (e->input = dt__emit_payload(a, be->data, be->len)) == NULL)) {
        return NULL;
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ev->event_raised = e;
    return ev;
}

/* Continue-as-new: the next execution's ID and, if asked, the unconsumed events. */
static dt_status build_continuation(dt__instance *in, dt__episode_result *out, int64_t now)
{
    char id[37];
    dt__instance_next_execution_id(in, id);
    if ((out->next_execution_id = dt__arena_strdup(out->arena, id)) == NULL) {
        return DT_ENOMEM;
    }
    if (!in->keep_events) {
        return DT_OK;
    }
    builder b = {.a = out->arena};
    for (const buffered_event *be = in->buffered_head; be != NULL; be = be->next) {
        if (!push(&b, raised(out->arena, be, now))) {
            return DT_ENOMEM;
        }
    }
    out->carryover = b.ev;
    out->n_carryover = b.n;
    return DT_OK;
}

static bool copy_bytes(dt__arena *a, const uint8_t *src, size_t len, const uint8_t **dst)
{
    *dst = dt__arena_memdup(a, src != NULL ? src : (const uint8_t *)"", len);
    return *dst != NULL;
}

dt_status dt__episode_build(dt__instance *in, const dt__episode_input *input,
                            dt__episode_result *out, int64_t now)
{
    out->arena = dt__arena_create(0);
    if (out->arena == NULL) {
        return DT_ENOMEM;
    }
    builder b = {.a = out->arena};
    dt_status st = build_events(&b, in, input, now);
    if (st != DT_OK) {
        return st;
    }
    out->appended = b.ev;
    out->n_appended = b.n;
    out->status = status_of(in->end);
    out->suspended = in->end == END_NONE && in->suspended;
    if (in->end != END_NONE && in->has_end_data) {
        out->has_output = true;
        out->output_len = in->end_len;
        if (!copy_bytes(out->arena, in->end_data, in->end_len, &out->output)) {
            return DT_ENOMEM;
        }
    }
    if (in->end_failure != NULL &&
        (out->failure = dt__failure_to_pb(out->arena, in->end_failure)) == NULL) {
        return DT_ENOMEM;
    }
    if (in->has_custom_status) {
        out->has_custom_status = true;
        out->custom_status_len = in->custom_status_len;
        if (!copy_bytes(out->arena, in->custom_status, in->custom_status_len,
                        &out->custom_status)) {
            return DT_ENOMEM;
        }
    }
    if (in->end == END_CONTINUED) {
        return build_continuation(in, out, now);
    }
    return DT_OK;
}
