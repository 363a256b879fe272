/*
 * Turning an episode's outcome into the batch's commit: the instance row, the history to append,
 * the identities consumed, timers, and the outbox (actions, parent notification, status record).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "episode_int.h"

Dtpb__ExecutionStartedEvent *dt__start_record_decode(dt__arena *a, const dt__blob *tags)
{
    if (tags->data == NULL) {
        return NULL;
    }
    return dtpb__execution_started_event__unpack(dt__arena_pb_allocator(a), tags->len, tags->data);
}

static dt__blob payload_blob(const Dtpb__Payload *p)
{
    return p == NULL ? (dt__blob){NULL, 0} : (dt__blob){p->value.data, p->value.len};
}

/* The row as the episode leaves it. */
static dt_status build_row(dt__episode *e, const dt__episode_result *r, dt__instance_row *row)
{
    const Dtpb__ExecutionStartedEvent *s = e->start;
    *row = e->have_row ? e->row : (dt__instance_row){0};
    row->instance_id = e->instance_id;
    row->execution_id = e->execution_id;
    row->last_updated_ms = e->b->now_ms;
    if (!e->have_row || e->fresh) {
        row->name = s->name;
        row->version = dt__payload_str(e->a, s->version);
        row->input = payload_blob(s->input);
        row->output = row->custom_status = row->failure_details = (dt__blob){NULL, 0};
        row->completed_ms = 0;
        row->parent_instance_id =
            s->parent_instance != NULL && s->parent_instance->orchestration_instance != NULL
                ? s->parent_instance->orchestration_instance->instance_id
                : NULL;
        size_t len = 0;
        uint8_t *rec = dt__pack(e->a, &s->base, &len);
        if (rec == NULL) {
            return DT_ENOMEM;
        }
        row->tags = (dt__blob){rec, len};
        if (!e->have_row || e->reset) {
            /* Created when the client asked (the start's timestamp), as its PENDING record
             * said; the batch time only when the start carries none. */
            row->created_ms = e->requested_ms > 0 ? e->requested_ms : e->b->now_ms;
        }
    }
    if (r == NULL) { /* deferred start */
        row->runtime_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING;
        return DT_OK;
    }
    row->runtime_status = r->suspended
                              ? (int32_t)DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED
                              : (int32_t)r->status;
    if (r->has_custom_status) {
        row->custom_status = (dt__blob){r->custom_status, r->custom_status_len};
    }
    if (dt__status_finished(r->status)) {
        row->completed_ms = e->b->now_ms;
        row->output = r->has_output ? (dt__blob){r->output, r->output_len} : (dt__blob){NULL, 0};
        if (r->failure != NULL) {
            size_t len = 0;
            uint8_t *f = dt__pack(e->a, &r->failure->base, &len);
            if (f == NULL) {
                return DT_ENOMEM;
            }
            row->failure_details = (dt__blob){f, len};
        }
    }
    return DT_OK;
}

/* The packed history events to append. */
static dt_status pack_events(dt__episode *e, const dt__episode_result *r, dt__blob **out)
{
    *out = dt__arena_alloc(e->a, (r->n_appended > 0 ? r->n_appended : 1) * sizeof(dt__blob));
    if (*out == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < r->n_appended; i++) {
        size_t len = 0;
        uint8_t *p = dt__pack(e->a, &r->appended[i]->base, &len);
        if (p == NULL) {
            return DT_ENOMEM;
        }
        (*out)[i] = (dt__blob){p, len};
    }
    return DT_OK;
}

/*
 * The next execution's start and its carried-over events as ONE message (an OrchestrationBatch,
 * Dt-Batch header, under the start's identity), so that they reach the partition in one fetched
 * batch and in order: sent separately, a fetch could return the start and only some of the
 * events, the new execution could run and continue as new again, and the late events, addressed
 * to an execution that had ended, were dropped (test_event_order found it once fetches overlap
 * the outbox). DT_ETOOLARGE when they do not fit one message: they are then sent one by one.
 */
static dt_status send_start_with_carryover(dt__episode *e, const Dtpb__OrchestrationMessage *start,
                                           const dt__episode_result *r)
{
    size_t n = 1 + r->n_carryover;
    ProtobufCBinaryData *bodies = dt__arena_calloc(e->a, n, sizeof(*bodies));
    if (bodies == NULL) {
        return DT_ENOMEM;
    }
    bodies[0].data = dt__pack(e->a, &start->base, &bodies[0].len);
    for (size_t i = 0; i < r->n_carryover; i++) {
        char dedupe[DT_BROKER_NAME_BUF * 2];
        dt_status st = dt__msg_id(dedupe, sizeof(dedupe), e->instance_id, r->next_execution_id,
                                  "carry", (int64_t)i);
        if (st != DT_OK) {
            return st;
        }
        Dtpb__OrchestrationMessage m;
        dt__orch_msg_init(&m, e->instance_id, r->next_execution_id, r->carryover[i], dedupe);
        bodies[i + 1].data = dt__pack(e->a, &m.base, &bodies[i + 1].len);
        if (bodies[i + 1].data == NULL) {
            return DT_ENOMEM;
        }
    }
    Dtpb__OrchestrationBatch ob;
    dtpb__orchestration_batch__init(&ob);
    ob.n_messages = n;
    ob.messages = bodies;
    size_t len = 0;
    uint8_t *data = bodies[0].data != NULL ? dt__pack(e->a, &ob.base, &len) : NULL;
    char count[24];
    snprintf(count, sizeof(count), "%zu", n);
    Dtpb__MessagePublishedEvent__HeadersEntry h =
        DTPB__MESSAGE_PUBLISHED_EVENT__HEADERS_ENTRY__INIT;
    Dtpb__MessagePublishedEvent__HeadersEntry *hp = &h;
    h.key = DT_HDR_BATCH;
    h.value = count;
    Dtpb__MessagePublishedEvent src = DTPB__MESSAGE_PUBLISHED_EVENT__INIT;
    src.headers = &hp;
    src.n_headers = 1;
    dt__blob headers = {0};
    char subject[DT_BROKER_NAME_BUF];
    char tail[16];
    snprintf(tail, sizeof(tail), "%u",
             dt__partition_of(e->instance_id, e->pt->w->hub_cfg.partitions));
    if (data == NULL || dt__outbox_headers(e->a, &src, false, &headers) != DT_OK) {
        return DT_ENOMEM;
    }
    if (len + (size_t)DT_BROKER_NAME_BUF * 2 > e->pt->max_msg) {
        return DT_ETOOLARGE;
    }
    dt_status st =
        dt_broker_subject(e->pt->w->hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject));
    return st != DT_OK
               ? st
               : dt__outbox_add(e->a, &e->out, subject, start->dedupe_id, data, len, &headers);
}

/* Continue-as-new: the row moves to the next execution, whose start (and the carried-over
 * events) go through the partition's own subject, so they are applied like any start. */
static dt_status continue_as_new(dt__episode *e, const dt__episode_result *r, dt__instance_row *row)
{
    Dtpb__ExecutionStartedEvent *s = dt__arena_alloc(e->a, sizeof(*s));
    Dtpb__OrchestrationInstance *oi = dt__arena_alloc(e->a, sizeof(*oi));
    Dtpb__HistoryEvent *ev = dt__actions_event(e);
    if (s == NULL || oi == NULL || ev == NULL) {
        return DT_ENOMEM;
    }
    *s = *e->start;
    if (dt__episode_rewind_untag(e, s) != DT_OK) {
        return DT_ENOMEM;
    }
    dtpb__orchestration_instance__init(oi);
    oi->instance_id = (char *)e->instance_id;
    oi->execution_id =
        dt__emit_payload(e->a, (const uint8_t *)r->next_execution_id, strlen(r->next_execution_id));
    s->orchestration_instance = oi;
    s->input = r->has_output ? dt__emit_payload(e->a, r->output, r->output_len) : NULL;
    s->scheduled_start_timestamp = NULL;
    dt__trace_continue_as_new(e, s);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = s;
    char dedupe[DT_BROKER_NAME_BUF * 2];
    bool together = false; /* start and carried events sent as one batch */
    dt_status st =
        dt__msg_id(dedupe, sizeof(dedupe), e->instance_id, r->next_execution_id, "start", 0);
    if (st == DT_OK) {
        Dtpb__OrchestrationMessage m;
        dt__orch_msg_init(&m, e->instance_id, r->next_execution_id, ev, dedupe);
        m.continued_as_new = true; /* a repeat of it, once stale, is dropped (episode.c) */
        st = r->n_carryover > 0 ? send_start_with_carryover(e, &m, r) : DT_ETOOLARGE;
        together = st == DT_OK;
        if (st == DT_ETOOLARGE && r->n_carryover > 0) {
            /* One by one they may reach the partition in two fetches, and an execution that ends
             * between them does not see the late ones (they are dropped as addressed to it). */
            dt__worker_log(e->pt->w, DT_LOG_WARN, e->instance_id,
                           "continue-as-new: the start and its %zu carried events do not fit one "
                           "message; sent one by one, events arriving after the next execution "
                           "ended may be lost",
                           r->n_carryover);
        }
        st = st == DT_ETOOLARGE ? dt__actions_send_message(e, &m) : st;
    }
    for (size_t i = 0; st == DT_OK && !together && i < r->n_carryover; i++) {
        st = dt__msg_id(dedupe, sizeof(dedupe), e->instance_id, r->next_execution_id, "carry",
                        (int64_t)i);
        if (st == DT_OK) {
            st = dt__actions_send(e, e->instance_id, r->next_execution_id, r->carryover[i], dedupe);
        }
    }
    row->execution_id = r->next_execution_id;
    row->runtime_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    row->input = payload_blob(s->input);
    size_t len = 0;
    uint8_t *rec = dt__pack(e->a, &s->base, &len);
    if (rec == NULL) {
        return DT_ENOMEM;
    }
    row->tags = (dt__blob){rec, len};
    return st;
}

/* Room left in a message for everything but the status record itself (headers, subject). */
#define STATUS_HEADROOM 2048

/*
 * Makes the record fit `budget` bytes by construction: the payloads go first (input, then custom
 * status, then output), then the failure's texts, with payloads_omitted set so that readers
 * fetch the full values from the partition's owner. An oversized record would be refused by the
 * server and, before, stopped the partition's outbox at its row.
 */
static void fit_status(Dtpb__InstanceStatus *s, size_t budget)
{
    Dtpb__Payload **order[] = {&s->input, &s->custom_status, &s->output};
    for (size_t i = 0; i < 3 && protobuf_c_message_get_packed_size(&s->base) > budget; i++) {
        if (*order[i] != NULL) {
            *order[i] = NULL;
            s->payloads_omitted = true;
        }
    }
    if (s->failure_details != NULL && protobuf_c_message_get_packed_size(&s->base) > budget) {
        s->failure_details->stack_trace = NULL;
        s->failure_details->inner_failure = NULL;
        s->failure_details->error_message = "(too large for the status record; read the instance)";
        s->payloads_omitted = true;
    }
}

/* Queues the status record for the status bucket (through the outbox: crash-safe, batched). */
static dt_status queue_status(dt__episode *e, const dt__instance_row *row, uint64_t seq)
{
    Dtpb__InstanceStatus s = DTPB__INSTANCE_STATUS__INIT;
    Dtpb__Payload in = DTPB__PAYLOAD__INIT, out = DTPB__PAYLOAD__INIT, cs = DTPB__PAYLOAD__INIT,
                  ver = DTPB__PAYLOAD__INIT;
    s.instance_id = (char *)row->instance_id;
    s.name = (char *)row->name;
    s.execution_id = (char *)row->execution_id;
    s.runtime_status = (Dtpb__OrchestrationStatus)row->runtime_status;
    s.created_at = dt__ts_from_ms(e->a, row->created_ms);
    s.last_updated_at = dt__ts_from_ms(e->a, row->last_updated_ms);
#define SET_PAYLOAD(field, pb, blob)                                                               \
    if ((blob).data != NULL) {                                                                     \
        (pb).value.data = (uint8_t *)(blob).data;                                                  \
        (pb).value.len = (blob).len;                                                               \
        s.field = &(pb);                                                                           \
    }
    SET_PAYLOAD(input, in, row->input)
    SET_PAYLOAD(output, out, row->output)
    SET_PAYLOAD(custom_status, cs, row->custom_status)
#undef SET_PAYLOAD
    if (row->version != NULL) {
        ver.value.data = (uint8_t *)row->version;
        ver.value.len = strlen(row->version);
        s.version = &ver;
    }
    if (row->failure_details.data != NULL) {
        s.failure_details = dtpb__task_failure_details__unpack(
            dt__arena_pb_allocator(e->a), row->failure_details.len, row->failure_details.data);
    }
    s.parent_instance_id = (char *)(row->parent_instance_id != NULL ? row->parent_instance_id : "");
    /* The starter's tags (the runtime's own "dt." tags stay internal). */
    size_t nt = e->start != NULL ? e->start->n_tags : 0, kept = 0;
    Dtpb__InstanceStatus__TagsEntry **tags = dt__arena_alloc(e->a, (nt + 1) * sizeof(*tags));
    Dtpb__InstanceStatus__TagsEntry *cells = dt__arena_alloc(e->a, (nt + 1) * sizeof(*cells));
    if (tags == NULL || cells == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < nt; i++) {
        const Dtpb__ExecutionStartedEvent__TagsEntry *t = e->start->tags[i];
        if (strncmp(t->key, "dt.", 3) == 0) {
            continue;
        }
        dtpb__instance_status__tags_entry__init(&cells[kept]);
        cells[kept].key = t->key;
        cells[kept].value = t->value;
        tags[kept] = &cells[kept];
        kept++;
    }
    s.tags = tags;
    s.n_tags = kept;
    size_t room = e->pt->max_msg > STATUS_HEADROOM ? e->pt->max_msg - STATUS_HEADROOM : 0;
    fit_status(&s, room);
    char key[3 * DT_INSTANCE_ID_MAX + 1], subject[sizeof(key) + DT_BROKER_NAME_BUF];
    char msg_id[DT_BROKER_NAME_BUF * 2];
    dt_status st = dt__status_key(e->instance_id, key, sizeof(key));
    if (st == DT_OK) {
        snprintf(subject, sizeof(subject), "%s%s", e->pt->status_prefix, key);
        const char *kind = dt__episode_kind(e, "status");
        st = kind == NULL ? DT_ENOMEM
                          : dt__msg_id(msg_id, sizeof(msg_id), e->instance_id, row->execution_id,
                                       kind, (int64_t)seq);
    }
    size_t len = 0;
    uint8_t *data = st == DT_OK ? dt__pack(e->a, &s.base, &len) : NULL;
    if (st == DT_OK && data == NULL) {
        st = DT_ENOMEM;
    }
    return st == DT_OK ? dt__outbox_add(e->a, &e->out, subject, msg_id, data, len, NULL) : st;
}

static bool status_changed(const dt__episode *e, const dt__instance_row *row)
{
    if (!e->have_row || e->fresh || row->runtime_status != e->row.runtime_status ||
        strcmp(row->execution_id, e->row.execution_id) != 0) {
        return true;
    }
    const dt__blob *a = &row->custom_status, *b = &e->row.custom_status;
    return (a->data == NULL) != (b->data == NULL) ||
           (a->data != NULL && (a->len != b->len || memcmp(a->data, b->data, a->len) != 0));
}

static dt_status push(dt__episode *e, const dt__instance_row *row, const dt__blob *events,
                      size_t n_events, bool reset, bool ended)
{
    dt__instance_row *stored = dt__arena_alloc(e->a, sizeof(*stored));
    if (stored == NULL) {
        return DT_ENOMEM;
    }
    *stored = *row;
    /* The store writes the outbox rows' ids here; the outbox publishes from this commit. */
    int64_t *outbox_ids = e->out.n > 0 ? dt__arena_calloc(e->a, e->out.n, sizeof(int64_t)) : NULL;
    if (e->out.n > 0 && outbox_ids == NULL) {
        return DT_ENOMEM;
    }
    /* The episode ran on the row it read in this batch, and this is the batch's only commit for
     * the instance: the store takes that length instead of reading it (and verifies it). */
    uint64_t base = e->have_row && !reset ? e->row.history_len : 0;
    stored->history_len = base + n_events; /* what the commit leaves; the row cache keeps it */
    dt__episode_commit c = {
        .instance = stored,
        .reset_history = reset,
        .base_known = true,
        .base_history_len = base,
        /* Same execution, same start record: only the episode's own columns change. */
        .episode_fields_only = e->have_row && !e->fresh && !reset,
        .new_events = events,
        .n_new_events = n_events,
        .applied_ids = e->applied,
        .n_applied = e->n_applied,
        .prune_applied = ended,
        .delete_all_timers = ended || reset,
        .delete_timer_ids = e->fired,
        .n_delete_timers = e->n_fired,
        .new_timers = e->timers,
        .n_new_timers = e->n_timers,
        .outbox = e->out.msgs,
        .n_outbox = e->out.n,
        .delete_parked_ids = e->unparked,
        .n_delete_parked = e->n_unparked,
        .outbox_ids = outbox_ids,
    };
    return dt__batch_push_commit(e->b, &c) ? DT_OK : DT_ENOMEM;
}

dt_status dt__episode_commit_bare(dt__episode *e)
{
    if (!e->have_row) {
        return DT_OK; /* nothing stored to attach the identities to: the items are just acked */
    }
    return push(e, &e->row, NULL, 0, false, false);
}

dt_status dt__episode_commit_result(dt__episode *e, const dt__episode_result *r)
{
    dt__instance_row row;
    dt_status st = build_row(e, r, &row);
    dt__blob *events = NULL;
    size_t n_events = 0;
    bool can =
        r != NULL && r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW;
    bool ended = r != NULL && dt__status_finished(r->status);
    if (st == DT_OK && r != NULL) {
        st = dt__actions_build(e, r);
    }
    if (st == DT_OK && r != NULL && !can) {
        st = pack_events(e, r, &events);
        n_events = r->n_appended;
    }
    if (st == DT_OK && r != NULL && !can) {
        st = dt__episode_rewind_events(e, &events, &n_events); /* a rewind: the kept history */
    }
    if (st == DT_OK && can) {
        st = continue_as_new(e, r, &row);
    }
    uint64_t seq = (e->have_row && !e->reset ? e->row.history_len : 0) + n_events;
    if (st == DT_OK && status_changed(e, &row)) {
        st = queue_status(e, &row, can ? UINT64_MAX / 2 : seq);
    }
    if (st != DT_OK) {
        return st;
    }
    return push(e, &row, events, n_events, e->reset || can, ended);
}
