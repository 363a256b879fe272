/*
 * One entity's share of a partition batch: its messages (signals, calls, lock requests, unlocks)
 * filtered like an orchestration's (repeats by identity, signals scheduled for later become
 * timers, a name no function is registered for waits out the unknown-name bound), run by the
 * entity engine (runtime/entity) on the state stored in the entity's instance row, and committed
 * with the batch: the row (state in `output`, lock record in `custom_status`), the identities
 * consumed and the messages the operations sent, through the outbox. So an entity's state lives
 * where its instance ID hashes, in the partition's store and log, and a rebuild from snapshot and
 * log brings it back with everything else (docs/design.md, "Durable entities").
 */
#include <stdio.h>
#include <string.h>

#include "entity/entity_int.h"
#include "partition_int.h"
#include "remote/remote_worker_int.h"

/* Redelivery delay of a message for an entity name no function is registered for, up to the
 * worker's activity_max_deliveries (the bound of unknown activities). */
#define UNKNOWN_RETRY_MS 250
/* A message's envelope, identities and headers besides the state (as for payloads). */
#define STATE_HEADROOM 4096
/* Longest message identity an entity takes ("<id>/at" of a deferred one must fit the store). */
#define DEDUPE_MAX 512

typedef struct ent_ep {
    dt__partition *pt;
    dt__batch *b;
    dt__arena *a;
    const char *id;
    char name[DT_ENTITY_NAME_MAX + 1], key[DT_ENTITY_KEY_MAX + 1];
    bool have_row;
    dt__instance_row row;
    dt_entity_fn fn;
    void *user_data;
    const char **applied;
    size_t n_applied, cap_applied;
    int64_t *fired;
    size_t n_fired, cap_fired;
    dt__timer_new *timers;
    size_t n_timers, cap_timers;
    Dtpb__OrchestrationMessage **msgs;
    size_t n_msgs, cap_msgs;
    dt__outbox_builder out;
} ent_ep;

static bool seen(const ent_ep *e, const char *dedupe)
{
    for (size_t i = 0; i < e->n_applied; i++) {
        if (strcmp(e->applied[i], dedupe) == 0) {
            return true;
        }
    }
    return false;
}

static dt_status consume(ent_ep *e, const char *dedupe)
{
    if (!dt__arena_grow(e->a, (void **)&e->applied, &e->cap_applied, e->n_applied,
                        sizeof(char *))) {
        return DT_ENOMEM;
    }
    e->applied[e->n_applied++] = dedupe;
    return DT_OK;
}

/* The time a signal or call is scheduled for (0: now). */
static int64_t scheduled_ms(const Dtpb__HistoryEvent *ev)
{
    const Dtpb__Timestamp *ts = NULL;
    if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED) {
        ts = ev->entity_operation_signaled->scheduled_time;
    } else if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED) {
        ts = ev->entity_operation_called->scheduled_time;
    }
    return dt__ts_to_ms(ts);
}

/* A signal for later: delivered by the partition's timer at its time (as itself, unscheduled). */
static dt_status defer(ent_ep *e, dt__item *it, int64_t at_ms)
{
    Dtpb__OrchestrationMessage copy = *it->om;
    Dtpb__HistoryEvent ev = *it->om->event;
    Dtpb__EntityOperationSignaledEvent sig;
    Dtpb__EntityOperationCalledEvent call;
    if (ev.event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED) {
        sig = *ev.entity_operation_signaled;
        sig.scheduled_time = NULL;
        ev.entity_operation_signaled = &sig;
    } else {
        call = *ev.entity_operation_called;
        call.scheduled_time = NULL;
        ev.entity_operation_called = &call;
    }
    copy.event = &ev;
    size_t n = strlen(it->om->dedupe_id) + 4, len = 0;
    char *dedupe = dt__arena_alloc(e->a, n);
    if (dedupe == NULL || !dt__arena_grow(e->a, (void **)&e->timers, &e->cap_timers, e->n_timers,
                                          sizeof(*e->timers))) {
        return DT_ENOMEM;
    }
    snprintf(dedupe, n, "%s/at", it->om->dedupe_id);
    copy.dedupe_id = dedupe;
    uint8_t *payload = dt__pack(e->a, &copy.base, &len);
    if (payload == NULL) {
        return DT_ENOMEM;
    }
    e->timers[e->n_timers++] = (dt__timer_new){at_ms, dedupe, {payload, len}};
    return consume(e, it->om->dedupe_id);
}

static bool is_operation(const Dtpb__HistoryEvent *ev)
{
    return ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED ||
           ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED;
}

static bool is_entity_message(const Dtpb__HistoryEvent *ev)
{
    return is_operation(ev) ||
           ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED ||
           ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT;
}

/* Whether an operation for an unregistered name should come again (another worker, or this one
 * after a deploy, may serve it) rather than fail now. */
static bool retry_unknown(ent_ep *e, dt__item *it)
{
    dt_broker_msg_meta meta = {0};
    if (it->msg == NULL || dt_broker_msg_meta_get(it->msg, &meta) != DT_OK) {
        return false; /* a timer or an in-process item: no delivery count to bound */
    }
    return (int64_t)meta.deliveries < e->pt->w->opt.activity_max_deliveries;
}

/* Takes one item into the engine's input, unless it was applied before. */
static dt_status take(ent_ep *e, dt__item *it)
{
    if (it->timer_id >= 0) {
        if (!dt__arena_grow(e->a, (void **)&e->fired, &e->cap_fired, e->n_fired, sizeof(int64_t))) {
            return DT_ENOMEM;
        }
        e->fired[e->n_fired++] = it->timer_id;
    }
    if (strlen(it->om->dedupe_id) > DEDUPE_MAX) {
        /* It could not be recorded as applied (the store refuses the whole commit): refused
         * here, so that a hand-made message cannot stall the partition. */
        dt__dead_letter(e->pt, "entity", "message identity (dedupe_id) over 512 bytes", e->id,
                        it->data, it->len, e->pt->subject);
        return DT_OK;
    }
    bool dup = seen(e, it->om->dedupe_id);
    dt_status st = dup ? DT_OK : dt__store_is_applied(e->pt->store, e->id, it->om->dedupe_id, &dup);
    if (st != DT_OK || dup) {
        return st;
    }
    if (!is_entity_message(it->om->event)) {
        dt__dead_letter(e->pt, "entity",
                        "not an entity message (signal, call, lock request or unlock)", e->id,
                        it->data, it->len, e->pt->subject);
        return consume(e, it->om->dedupe_id);
    }
    int64_t at = scheduled_ms(it->om->event);
    if (at > e->b->now_ms) {
        return defer(e, it, at);
    }
    if (e->fn == NULL && is_operation(it->om->event) && retry_unknown(e, it)) {
        it->retry_ms = UNKNOWN_RETRY_MS;
        return DT_OK;
    }
    if (!dt__arena_grow(e->a, (void **)&e->msgs, &e->cap_msgs, e->n_msgs, sizeof(void *))) {
        return DT_ENOMEM;
    }
    e->msgs[e->n_msgs++] = it->om;
    return consume(e, it->om->dedupe_id);
}

static dt_status load(ent_ep *e)
{
    dt_status st = dt__store_get_instance(e->pt->store, e->id, e->a, &e->row);
    if (st == DT_ENOTFOUND) {
        return DT_OK;
    }
    e->have_row = st == DT_OK;
    return st;
}

/* Queues the messages the operations sent into the outbox (to their partitions' subjects). */
static dt_status send_all(ent_ep *e, const dt__entity_out *o)
{
    for (size_t i = 0; i < o->n_sends; i++) {
        const Dtpb__OrchestrationMessage *m = o->sends[i];
        char tail[16], subject[DT_BROKER_NAME_BUF];
        snprintf(tail, sizeof(tail), "%u",
                 dt__partition_of(m->instance_id, e->pt->w->hub_cfg.partitions));
        dt_status st =
            dt_broker_subject(e->pt->w->hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject));
        size_t len = 0;
        uint8_t *data = st == DT_OK ? dt__pack(e->a, &m->base, &len) : NULL;
        if (st == DT_OK && data == NULL) {
            st = DT_ENOMEM;
        }
        if (st == DT_OK) {
            st = dt__outbox_add(e->a, &e->out, subject, m->dedupe_id, data, len, NULL);
        }
        if (st != DT_OK) {
            return st;
        }
    }
    return DT_OK;
}

static void dead_letter_dropped(ent_ep *e, const dt__entity_out *o)
{
    for (size_t i = 0; i < o->n_dropped; i++) {
        size_t len = 0;
        uint8_t *data = dt__pack(e->a, &o->dropped[i]->base, &len);
        dt__dead_letter(e->pt, "entity", o->dropped_why[i], e->id, data, data != NULL ? len : 0,
                        e->pt->subject);
    }
}

/* The row as the batch leaves it, and the batch's commit for the entity. */
static dt_status commit(ent_ep *e, const dt__entity_out *o)
{
    dt__instance_row *row = dt__arena_calloc(e->a, 1, sizeof(*row));
    int64_t *ids = e->out.n > 0 ? dt__arena_calloc(e->a, e->out.n, sizeof(int64_t)) : NULL;
    if (row == NULL || (e->out.n > 0 && ids == NULL)) {
        return DT_ENOMEM;
    }
    row->instance_id = e->id;
    row->execution_id = DT__ENTITY_EXECUTION;
    row->name = dt__arena_strdup(e->a, e->name); /* e lives on the stack, the commit longer */
    if (row->name == NULL) {
        return DT_ENOMEM;
    }
    row->runtime_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    row->created_ms = e->have_row ? e->row.created_ms : e->b->now_ms;
    /* The store dates applied identities with this time and prunes them a day after it
     * (history/store_commit.c): a commit that applies messages is always "now". */
    bool now = o != NULL || !e->have_row || e->n_applied > 0;
    row->last_updated_ms = now ? e->b->now_ms : e->row.last_updated_ms;
    if (o != NULL) {
        row->output = o->state;
        if (!o->rec_empty) {
            size_t len = 0;
            uint8_t *rec = dt__pack(e->a, &o->rec->base, &len);
            if (rec == NULL) {
                return DT_ENOMEM;
            }
            row->custom_status = (dt__blob){rec, len};
        }
    } else if (e->have_row) {
        row->output = e->row.output;
        row->custom_status = e->row.custom_status;
    }
    dt__episode_commit c = {
        .instance = row,
        .base_known = true, /* entities have no history: the row stays at length 0 */
        .base_history_len = 0,
        .episode_fields_only = e->have_row, /* output, custom status, times */
        .applied_ids = e->applied,
        .n_applied = e->n_applied,
        .delete_timer_ids = e->fired,
        .n_delete_timers = e->n_fired,
        .new_timers = e->timers,
        .n_new_timers = e->n_timers,
        .outbox = e->out.msgs,
        .n_outbox = e->out.n,
        .outbox_ids = ids,
    };
    return dt__batch_push_commit(e->b, &c) ? DT_OK : DT_ENOMEM;
}

/* Remote entities (runtime/remote, remote_entity.c): an operation whose SDK worker did not
 * answer leaves the entity's messages for redelivery, as dt__episode_leave does for an
 * orchestration: nothing of the batch is committed for it, broker messages are nak'd (about 5 s)
 * and timer-delivered ones re-armed as timers 5 s on. */

static dt_status leave(ent_ep *e, dt__group *g, dt_status why)
{
    dt__worker_log(e->pt->w, DT_LOG_DEBUG, e->id, "entity left for now: %s", dt_status_str(why));
    e->n_applied = e->n_fired = e->n_timers = 0;
    e->out.n = 0;
    dt_status st = dt__group_leave(g, e->a, e->b->now_ms,
                                   (dt__leave_out){&e->fired, &e->n_fired, &e->cap_fired,
                                                   &e->timers, &e->n_timers, &e->cap_timers});
    if (st != DT_OK) {
        return st;
    }
    return e->n_timers > 0 ? commit(e, NULL) : DT_OK;
}

/* The batch's fetched messages stay with this partition while a remote entity operation waits. */
static void keep_alive(void *arg)
{
    for (dt__group *g = ((dt__batch *)arg)->groups; g != NULL; g = g->next) {
        for (dt__item *it = g->head; it != NULL; it = it->next) {
            if (it->msg != NULL) {
                dt_broker_msg_in_progress(it->msg);
            }
        }
    }
}

dt_status dt__entity_episode_process(dt__partition *pt, dt__batch *b, dt__group *g)
{
    ent_ep e = {.pt = pt, .b = b, .a = b->arena, .id = g->instance_id};
    if (dt_entity_id_parse(e.id, e.name, sizeof(e.name), e.key, sizeof(e.key)) != DT_OK) {
        for (dt__item *it = g->head; it != NULL; it = it->next) {
            dt__dead_letter(pt, "entity", "invalid entity ID (\"@<name>@<key>\")", e.id, it->data,
                            it->len, pt->subject);
        }
        return DT_OK; /* nothing stored can be attached to it: the messages are acked */
    }
    dt__remote_entity_run remote = {pt->w->remote, &pt->stop, keep_alive, b, DT_OK};
    if (dt__worker_entity_lookup(pt->w, e.name, &e.fn, &e.user_data) != DT_OK) {
        e.fn = NULL;
        if (dt__remote_takes_entity(pt->w->remote, e.name)) {
            e.fn = dt__remote_entity_fn;
            e.user_data = &remote;
        }
    }
    dt_status st = load(&e);
    for (dt__item *it = g->head; st == DT_OK && it != NULL; it = it->next) {
        st = take(&e, it);
    }
    if (st != DT_OK) {
        return st;
    }
    if (e.n_msgs == 0) {
        bool consumed = e.n_applied > 0 || e.n_fired > 0 || e.n_timers > 0;
        return consumed ? commit(&e, NULL) : DT_OK;
    }
    Dtpb__EntityRecord *rec = NULL;
    if (e.have_row && e.row.custom_status.data != NULL) {
        rec = (Dtpb__EntityRecord *)dt__arena_unpack(e.a, &dtpb__entity_record__descriptor,
                                                     e.row.custom_status.len,
                                                     e.row.custom_status.data);
        if (rec == NULL) {
            return DT_ECORRUPT; /* written by this code */
        }
    }
    dt__entity_in in = {
        .instance_id = e.id,
        .state = e.have_row ? e.row.output : (dt__blob){0},
        .rec = rec,
        .msgs = e.msgs,
        .n_msgs = e.n_msgs,
        .fn = e.fn,
        .user_data = e.user_data,
        .max_state = pt->max_msg > STATE_HEADROOM ? pt->max_msg - STATE_HEADROOM : 0,
        .now_ms = b->now_ms,
    };
    dt__entity_out o;
    st = dt__entity_run(e.a, &in, &o);
    if (remote.lost != DT_OK && remote.lost != DT_ENOMEM) {
        return leave(&e, g, remote.lost);
    }
    if (st == DT_OK) {
        dead_letter_dropped(&e, &o);
        st = send_all(&e, &o);
    }
    return st == DT_OK ? commit(&e, &o) : st;
}
