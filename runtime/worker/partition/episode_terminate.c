/*
 * Recursive terminate: the termination goes on to every sub-orchestration the instance created,
 * finished or not, and each passes it on to its own. It names the child's start (target_origin):
 * an unrelated instance that has the child's ID (the child's start was refused because the ID was
 * taken, or the ID was reused after the child finished) is left alone, and a child that continued
 * as new is still reached. A finished child still receives it, because
 * it may have started children it did not wait for (fire-and-forget), which may still run; a
 * finished instance that receives a recursive terminate does nothing but pass it on (the
 * durabletask-go semantics: the whole tree, not only the running part of it). Each forwarded
 * message's identity is derived from the sender's execution and the child's task, so repeats are
 * dropped by JetStream; the tree is finite, so the forwarding ends.
 */
#include <string.h>

#include "episode_int.h"

bool dt__episode_is_recursive_terminate(const Dtpb__HistoryEvent *ev)
{
    return ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED &&
           ev->execution_terminated->recurse;
}

const Dtpb__ExecutionTerminatedEvent *dt__episode_recursive_terminate(const dt__episode *e)
{
    for (size_t i = 0; i < e->n_news; i++) {
        if (dt__episode_is_recursive_terminate(e->news[i])) {
            return e->news[i]->execution_terminated;
        }
    }
    return NULL;
}

dt_status dt__episode_keep_terminate(dt__episode *e, dt__item *it)
{
    if (!dt__arena_grow(e->a, (void **)&e->applied, &e->cap_applied, e->n_applied,
                        sizeof(char *))) {
        return DT_ENOMEM;
    }
    e->applied[e->n_applied++] = it->om->dedupe_id;
    e->forward_term = it->om->event->execution_terminated;
    return DT_OK;
}

/* Sends termination `t` to the child created by `created` (a SubOrchestrationInstanceCreated). */
static dt_status send_one(dt__episode *e, const Dtpb__ExecutionTerminatedEvent *t,
                          const Dtpb__HistoryEvent *created, uint32_t rewinds)
{
    const char *sub = dt__episode_kind_at(e, "sub", rewinds);
    Dtpb__HistoryEvent *term = dt__actions_event(e);
    Dtpb__ExecutionTerminatedEvent *te = dt__arena_alloc(e->a, sizeof(*te));
    if (term == NULL || te == NULL || sub == NULL) {
        return DT_ENOMEM;
    }
    dtpb__execution_terminated_event__init(te);
    te->input = t->input;
    te->recurse = true;
    term->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
    term->execution_terminated = te;
    return dt__actions_send_to_child(e, created, term, "term", sub);
}

/* Sends `t` to every child created in evs[0..n); *rewinds counts the rewinds met in history
 * (a child's start identity carries the count at its creation, episode_rewind.c). */
static dt_status send_all(dt__episode *e, const Dtpb__ExecutionTerminatedEvent *t,
                          Dtpb__HistoryEvent *const *evs, size_t n, uint32_t *rewinds)
{
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        *rewinds += dt__episode_is_rewind(evs[i]) ? 1 : 0;
        if (evs[i]->event_type_case ==
            DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED) {
            st = send_one(e, t, evs[i], *rewinds);
        }
    }
    return st;
}

dt_status dt__episode_terminate_children(dt__episode *e, Dtpb__HistoryEvent *const *past,
                                         size_t n_past, const dt__episode_result *r)
{
    const Dtpb__ExecutionTerminatedEvent *t = dt__episode_recursive_terminate(e);
    if (t == NULL || r->status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED) {
        return DT_OK;
    }
    uint32_t rewinds = 0;
    dt_status st = send_all(e, t, past, n_past, &rewinds);
    return st == DT_OK ? send_all(e, t, r->appended, r->n_appended, &rewinds) : st;
}

dt_status dt__episode_forward_terminate(dt__episode *e)
{
    dt__blob *blobs = NULL;
    size_t n = 0;
    uint32_t rewinds = 0;
    dt_status st = dt__store_load_history(e->pt->store, e->instance_id, e->a, &blobs, &n);
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        Dtpb__HistoryEvent *ev = (Dtpb__HistoryEvent *)dt__arena_unpack(
            e->a, &dtpb__history_event__descriptor, blobs[i].len, blobs[i].data);
        if (ev == NULL) {
            return DT_ECORRUPT;
        }
        st = send_all(e, e->forward_term, &ev, 1, &rewinds);
    }
    return st;
}
