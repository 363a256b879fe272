/*
 * Rewind of a failed instance (Durable Task semantics): its failed calls run again and it
 * continues from where it first failed. The partition rewrites the execution's history and runs
 * an episode on it; the rewrite is committed like a replacing start (reset_history, the whole
 * history as new events), so it is one entry of the partition log and survives a rebuild.
 *
 * The rewrite, with F the first failed result (TaskFailed or SubOrchestrationInstanceFailed):
 *  - ExecutionCompleted is dropped;
 *  - everything before F stays, action records included, so the code replays it unchanged;
 *  - from F on, action records are dropped (the code takes those actions again and the engine
 *    records them as new: the engine numbers actions in order and records each once, so the
 *    records kept are exactly a prefix of the code's actions), and so are failed results and the
 *    results of dropped actions; results of actions recorded before F stay, as do raised events,
 *    suspend/resume and OrchestratorStarted (the time);
 *  - a call recorded before F that has no result left (its failure was dropped, or its result
 *    arrived after the failure and was dropped as late news) is sent again under its own task
 *    number: activities and timers from their records, a failed sub-orchestration by a rewind of
 *    the child (recursive), or a new start when its start was refused by the runtime.
 * Dropping the TaskScheduled of a failed call instead (and letting replay issue it) would leave
 * a hole under the engine's record mark whenever a later call is recorded, which the engine
 * never issues; retry chains (a failure, a backoff timer, the next attempt) are rewound as a
 * whole by cutting at their first failure.
 *
 * After k rewinds the execution's message identities carry ".r<k>" (dt__episode_kind), so that a
 * call sent again is not dropped by JetStream as a repeat of the failed run's, nor its result by
 * the applied table. A repeat of a rewind request is recognised by its identity, recorded in its
 * ExecutionRewound event (request_id).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "episode_int.h"

bool dt__episode_is_rewind(const Dtpb__HistoryEvent *ev)
{
    return ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND;
}

bool dt__episode_rewinding(const dt__episode *e)
{
    return e->rewind != NULL && !e->fresh;
}

dt_status dt__episode_rewind_untag(dt__episode *e, Dtpb__ExecutionStartedEvent *s)
{
    Dtpb__ExecutionStartedEvent__TagsEntry **tags =
        dt__arena_calloc(e->a, s->n_tags + 1, sizeof(*tags));
    if (tags == NULL) {
        return DT_ENOMEM;
    }
    size_t kept = 0;
    for (size_t i = 0; i < s->n_tags; i++) {
        if (strcmp(s->tags[i]->key, DT__TAG_REWINDS) != 0) {
            tags[kept++] = s->tags[i];
        }
    }
    s->tags = tags;
    s->n_tags = kept;
    return DT_OK;
}

/* ---- reading history ---- */

/* The task number an action record stands for, or -1 for any other event. */
static int32_t action_id(const Dtpb__HistoryEvent *ev)
{
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED:
        return ev->event_id;
    default:
        return -1;
    }
}

/* The task number a result completes (-1: not a result); *failed for a failure. */
static int32_t result_id(const Dtpb__HistoryEvent *ev, bool *failed)
{
    *failed = false;
    switch (ev->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
        return ev->task_completed->task_scheduled_id;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
        return ev->sub_orchestration_instance_completed->task_scheduled_id;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
        return ev->timer_fired->timer_id;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
        *failed = true;
        return ev->task_failed->task_scheduled_id;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
        *failed = true;
        return ev->sub_orchestration_instance_failed->task_scheduled_id;
    default:
        return -1;
    }
}

static dt_status load_history(dt__episode *e, Dtpb__HistoryEvent ***out, size_t *out_n)
{
    dt__blob *blobs = NULL;
    size_t n = 0;
    dt_status st = dt__store_load_history(e->pt->store, e->instance_id, e->a, &blobs, &n);
    Dtpb__HistoryEvent **evs = st == DT_OK ? dt__arena_calloc(e->a, n + 1, sizeof(*evs)) : NULL;
    if (st != DT_OK || evs == NULL) {
        return st != DT_OK ? st : DT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        evs[i] = (Dtpb__HistoryEvent *)dt__arena_unpack(e->a, &dtpb__history_event__descriptor,
                                                        blobs[i].len, blobs[i].data);
        if (evs[i] == NULL) {
            return DT_ECORRUPT;
        }
    }
    *out = evs;
    *out_n = n;
    return DT_OK;
}

/* ---- the rewrite ---- */

/* Per task number: what the rewrite found. */
enum { T_NONE = 0, T_BEFORE = 1, T_RESULT = 2, T_FAILED = 4 };

typedef struct rewrite {
    Dtpb__HistoryEvent **past;
    size_t n_past;
    size_t first_failure;                     /* F; n_past when nothing failed */
    uint8_t *task;                            /* by task number */
    const Dtpb__TaskFailureDetails **failure; /* the dropped failure of each task */
    int32_t max_id;
} rewrite;

static dt_status scan(dt__episode *e, rewrite *w)
{
    w->first_failure = w->n_past;
    w->max_id = -1;
    for (size_t i = 0; i < w->n_past; i++) {
        bool failed = false;
        int32_t a = action_id(w->past[i]), r = result_id(w->past[i], &failed);
        int32_t id = a > r ? a : r;
        w->max_id = id > w->max_id ? id : w->max_id;
        if (failed && w->first_failure == w->n_past) {
            w->first_failure = i;
        }
    }
    size_t n = (size_t)w->max_id + 1; /* max_id >= -1 */
    w->task = dt__arena_calloc(e->a, n + 1, 1);
    w->failure = dt__arena_calloc(e->a, n + 1, sizeof(*w->failure));
    return w->task != NULL && w->failure != NULL ? DT_OK : DT_ENOMEM;
}

/* Whether event i stays in the rewritten history (and notes what it means for its task). */
static bool keep(rewrite *w, size_t i)
{
    const Dtpb__HistoryEvent *ev = w->past[i];
    if (ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED) {
        return false;
    }
    bool failed = false;
    int32_t a = action_id(ev), r = result_id(ev, &failed);
    if (a >= 0) {
        if (i < w->first_failure) {
            w->task[a] |= T_BEFORE;
        }
        return i < w->first_failure;
    }
    if (r < 0) {
        return true; /* raised events, suspend/resume, the time, earlier rewinds */
    }
    if (failed || (w->task[r] & T_BEFORE) == 0) {
        if (failed && (w->task[r] & T_BEFORE) != 0) {
            w->task[r] |= T_FAILED;
            w->failure[r] = ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED
                                ? ev->task_failed->failure_details
                                : ev->sub_orchestration_instance_failed->failure_details;
        }
        return false;
    }
    w->task[r] |= T_RESULT;
    return true;
}

/* A child's start that the runtime refused (it never ran): started again, not rewound. */
static bool refused_start(const Dtpb__TaskFailureDetails *f)
{
    const char *t = f != NULL && f->error_type != NULL ? f->error_type : "";
    return strcmp(t, "dt.InstanceExists") == 0 || strcmp(t, "dt.InvalidInstanceId") == 0 ||
           strcmp(t, DT_FAILURE_PAYLOAD_TOO_LARGE) == 0;
}

static bool push_ptr(dt__episode *e, void *arr, size_t *n, size_t *cap, const void *p)
{
    if (!dt__arena_grow(e->a, (void **)arr, cap, *n, sizeof(void *))) {
        return false;
    }
    (*(const void ***)arr)[(*n)++] = p;
    return true;
}

/* Notes the calls recorded before F that have no result left. */
static dt_status plan_resend(dt__episode *e, rewrite *w)
{
    size_t cap_again = 0, cap_children = 0;
    uint32_t gen = 0; /* rewinds before the event: the identity its call was made under */
    e->rw_child_gen = dt__arena_calloc(e->a, w->first_failure + 1, sizeof(uint32_t));
    if (e->rw_child_gen == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < w->first_failure; i++) {
        const Dtpb__HistoryEvent *ev = w->past[i];
        gen += dt__episode_is_rewind(ev) ? 1 : 0;
        int32_t a = action_id(ev);
        if (a < 0 || (w->task[a] & T_RESULT) != 0) {
            continue;
        }
        bool ok = true;
        switch (ev->event_type_case) {
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
            ok = push_ptr(e, &e->rw_again, &e->n_rw_again, &cap_again, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
            if ((w->task[a] & T_FAILED) == 0) {
                break; /* still running, or its result was lost: nothing to rewind */
            }
            if (refused_start(w->failure[a])) {
                ok = push_ptr(e, &e->rw_again, &e->n_rw_again, &cap_again, ev);
                break;
            }
            e->rw_child_gen[e->n_rw_children] = gen;
            ok = push_ptr(e, &e->rw_children, &e->n_rw_children, &cap_children, ev);
            break;
        default:
            break;
        }
        if (!ok) {
            return DT_ENOMEM;
        }
    }
    return DT_OK;
}

/* The start record with tag dt.rewinds = n, packed into the row (the episode's start too). */
static dt_status set_rewinds(dt__episode *e, uint32_t n)
{
    Dtpb__ExecutionStartedEvent *s = dt__arena_alloc(e->a, sizeof(*s));
    Dtpb__ExecutionStartedEvent__TagsEntry *t = dt__arena_alloc(e->a, sizeof(*t));
    char value[16];
    snprintf(value, sizeof(value), "%" PRIu32, n);
    if (s == NULL || t == NULL) {
        return DT_ENOMEM;
    }
    *s = *e->start;
    dt_status st = dt__episode_rewind_untag(e, s); /* leaves room for one more tag */
    if (st != DT_OK) {
        return st;
    }
    dtpb__execution_started_event__tags_entry__init(t);
    t->key = DT__TAG_REWINDS;
    t->value = dt__arena_strdup(e->a, value);
    s->tags[s->n_tags++] = t;
    size_t len = 0;
    uint8_t *rec = t->value != NULL ? dt__pack(e->a, &s->base, &len) : NULL;
    if (rec == NULL) {
        return DT_ENOMEM;
    }
    e->start = s;
    e->row.tags = (dt__blob){rec, len};
    return DT_OK;
}

/* Consumes a rewind request that does not apply. */
static dt_status ignore(dt__episode *e, const dt__item *it, const char *why)
{
    dt__worker_log(e->pt->w, DT_LOG_INFO, e->instance_id, "rewind ignored: %s", why);
    if (!dt__arena_grow(e->a, (void **)&e->applied, &e->cap_applied, e->n_applied,
                        sizeof(char *))) {
        return DT_ENOMEM;
    }
    e->applied[e->n_applied++] = it->om->dedupe_id;
    return DT_OK;
}

static bool repeat_of(const rewrite *w, const char *request_id)
{
    for (size_t i = 0; i < w->n_past; i++) {
        const Dtpb__HistoryEvent *ev = w->past[i];
        if (dt__episode_is_rewind(ev) && ev->execution_rewound->request_id != NULL &&
            strcmp(ev->execution_rewound->request_id, request_id) == 0) {
            return true;
        }
    }
    return false;
}

dt_status dt__episode_rewind_prepare(dt__episode *e, dt__item *it, bool *apply)
{
    *apply = false;
    if (e->fresh || !e->have_row || e->start == NULL ||
        e->row.runtime_status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED) {
        return ignore(e, it, "the instance is not failed");
    }
    if (e->rewind != NULL) {
        return ignore(e, it, "another rewind came first in this batch");
    }
    rewrite w = {0};
    dt_status st = load_history(e, &w.past, &w.n_past);
    if (st == DT_OK && repeat_of(&w, it->om->dedupe_id)) {
        return ignore(e, it, "a repeat of an applied rewind");
    }
    st = st == DT_OK ? scan(e, &w) : st;
    Dtpb__HistoryEvent **kept =
        st == DT_OK ? dt__arena_calloc(e->a, w.n_past + 1, sizeof(*kept)) : NULL;
    if (st != DT_OK || kept == NULL) {
        return st != DT_OK ? st : DT_ENOMEM;
    }
    uint32_t rewinds = 1;
    for (size_t i = 0; i < w.n_past; i++) {
        if (keep(&w, i)) {
            rewinds += dt__episode_is_rewind(w.past[i]) ? 1 : 0;
            kept[e->n_rw_past++] = w.past[i];
        }
    }
    e->rw_past = kept;
    st = plan_resend(e, &w);
    if (st == DT_OK) {
        st = set_rewinds(e, rewinds);
    }
    if (st != DT_OK) {
        return st;
    }
    /* The event records the request, so that a repeat of it is known later. */
    it->om->event->execution_rewound->request_id = it->om->dedupe_id;
    e->rewind = it->om;
    e->reset = true; /* the stored history is replaced by the rewritten one */
    e->row.output = e->row.failure_details = (dt__blob){NULL, 0};
    e->row.completed_ms = 0;
    dt__worker_log(e->pt->w, DT_LOG_INFO, e->instance_id,
                   "rewound (%" PRIu32 "): %zu of %zu events kept, %zu calls sent again, %zu "
                   "children rewound",
                   rewinds, e->n_rw_past, w.n_past, e->n_rw_again, e->n_rw_children);
    *apply = true;
    return DT_OK;
}

/* ---- after the episode ---- */

/* Sends a rewind to the failed child created by `created` (under `gen` rewinds). */
static dt_status rewind_child(dt__episode *e, const Dtpb__HistoryEvent *created, uint32_t gen)
{
    Dtpb__HistoryEvent *ev = dt__actions_event(e);
    Dtpb__ExecutionRewoundEvent *rw = dt__arena_alloc(e->a, sizeof(*rw));
    const char *kind = dt__episode_kind(e, "rewind");
    const char *sub = dt__episode_kind_at(e, "sub", gen);
    if (ev == NULL || rw == NULL || kind == NULL || sub == NULL) {
        return DT_ENOMEM;
    }
    dtpb__execution_rewound_event__init(rw);
    rw->reason = e->rewind->event->execution_rewound->reason;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND;
    ev->execution_rewound = rw;
    return dt__actions_send_to_child(e, created, ev, kind, sub);
}

dt_status dt__episode_rewind_resend(dt__episode *e, const dt__episode_result *r)
{
    if (!dt__episode_rewinding(e) || dt__status_finished(r->status) ||
        r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW) {
        return DT_OK;
    }
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < e->n_rw_again; i++) {
        st = dt__actions_resend(e, e->rw_again[i]);
    }
    for (size_t i = 0; st == DT_OK && i < e->n_rw_children; i++) {
        st = rewind_child(e, e->rw_children[i], e->rw_child_gen[i]);
    }
    return st;
}

dt_status dt__episode_rewind_events(dt__episode *e, dt__blob **events, size_t *n)
{
    if (!dt__episode_rewinding(e)) {
        return DT_OK;
    }
    dt__blob *all = dt__arena_calloc(e->a, e->n_rw_past + *n + 1, sizeof(*all));
    if (all == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < e->n_rw_past; i++) {
        size_t len = 0;
        uint8_t *p = dt__pack(e->a, &e->rw_past[i]->base, &len);
        if (p == NULL) {
            return DT_ENOMEM;
        }
        all[i] = (dt__blob){p, len};
    }
    if (*n > 0) {
        memcpy(all + e->n_rw_past, *events, *n * sizeof(*all));
    }
    *events = all;
    *n += e->n_rw_past;
    return DT_OK;
}
