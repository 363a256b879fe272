/*
 * One instance's share of a batch: which of its items apply (duplicates, stale executions,
 * starts under the reuse policy, events for unknown or finished instances), then the engine run.
 * See partition_int.h for where this sits in the pipeline.
 */
#include <stdio.h>
#include <string.h>

#include "entity/entity_int.h"
#include "episode_int.h"
#include "metrics_int.h"

static const char *status_name(int32_t s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&dtpb__orchestration_status__descriptor, s);
    return v != NULL ? v->name : "UNKNOWN";
}

static bool seen(const dt__episode *e, const char *dedupe)
{
    for (size_t i = 0; i < e->n_applied; i++) {
        if (strcmp(e->applied[i], dedupe) == 0) {
            return true;
        }
    }
    return false;
}

/* True when the item was applied before (in this batch or a committed one). */
static dt_status is_duplicate(dt__episode *e, const dt__item *it, bool *dup)
{
    if (seen(e, it->om->dedupe_id)) {
        *dup = true;
        return DT_OK;
    }
    return dt__store_is_applied(e->pt->store, e->instance_id, it->om->dedupe_id, dup);
}

/* Makes room for one more news entry (news, news_items and applied grow together). */
static bool grow_news(dt__episode *e)
{
    return dt__arena_grow(e->a, (void **)&e->news, &e->cap_news, e->n_news, sizeof(void *)) &&
           dt__arena_grow(e->a, (void **)&e->news_items, &e->cap_news_items, e->n_news,
                          sizeof(void *)) &&
           dt__arena_grow(e->a, (void **)&e->applied, &e->cap_applied, e->n_applied,
                          sizeof(char *));
}

/* Applies the item: its event is news (at the front: a start that arrived after events it
 * must precede), its identity is consumed. */
static dt_status accept_at(dt__episode *e, dt__item *it, bool front)
{
    if (!grow_news(e)) {
        return DT_ENOMEM;
    }
    size_t at = front ? 0 : e->n_news;
    if (front && e->n_news > 0) {
        memmove(&e->news[1], &e->news[0], e->n_news * sizeof(e->news[0]));
        memmove(&e->news_items[1], &e->news_items[0], e->n_news * sizeof(e->news_items[0]));
    }
    e->news[at] = it->om->event;
    e->news_items[at] = it;
    e->n_news++;
    e->applied[e->n_applied++] = it->om->dedupe_id;
    if (it->timer_id >= 0) {
        if (!dt__arena_grow(e->a, (void **)&e->fired, &e->cap_fired, e->n_fired, sizeof(int64_t))) {
            return DT_ENOMEM;
        }
        e->fired[e->n_fired++] = it->timer_id;
    }
    return DT_OK;
}

static dt_status accept(dt__episode *e, dt__item *it)
{
    return accept_at(e, it, false);
}

/* Records the identity of an item that is consumed without being applied (a rejected start). */
static dt_status consume_only(dt__episode *e, const dt__item *it)
{
    if (!dt__arena_grow(e->a, (void **)&e->applied, &e->cap_applied, e->n_applied,
                        sizeof(char *))) {
        return DT_ENOMEM;
    }
    e->applied[e->n_applied++] = it->om->dedupe_id;
    return DT_OK;
}

static const char *start_execution(dt__episode *e, const Dtpb__OrchestrationMessage *om)
{
    const Dtpb__ExecutionStartedEvent *s = om->event->execution_started;
    if (s->orchestration_instance != NULL && s->orchestration_instance->execution_id != NULL) {
        return dt__payload_str(e->a, s->orchestration_instance->execution_id);
    }
    return om->execution_id != NULL && om->execution_id[0] != '\0' ? om->execution_id : NULL;
}

/* The value of tag `key` in start record s, or NULL. */
static const char *tag_of(const Dtpb__ExecutionStartedEvent *s, const char *key)
{
    for (size_t i = 0; s != NULL && i < s->n_tags; i++) {
        if (strcmp(s->tags[i]->key, key) == 0) {
            return s->tags[i]->value;
        }
    }
    return NULL;
}

/* Adds tag key=value (borrowed; must live in e->a or longer) to start record s. */
static dt_status add_tag(dt__episode *e, Dtpb__ExecutionStartedEvent *s, const char *key,
                         const char *value)
{
    Dtpb__ExecutionStartedEvent__TagsEntry **tags =
        dt__arena_alloc(e->a, (s->n_tags + 1) * sizeof(*tags));
    Dtpb__ExecutionStartedEvent__TagsEntry *t = dt__arena_alloc(e->a, sizeof(*t));
    if (tags == NULL || t == NULL) {
        return DT_ENOMEM;
    }
    dtpb__execution_started_event__tags_entry__init(t);
    t->key = (char *)key;
    t->value = (char *)value;
    if (s->n_tags > 0) {
        memcpy(tags, s->tags, s->n_tags * sizeof(*tags));
    }
    tags[s->n_tags] = t;
    s->tags = tags;
    s->n_tags++;
    return DT_OK;
}

/* Remembers in an accepted start's record the result subject, and the identity of the start
 * that created the instance (kept through continue-as-new, which copies the record). */
static dt_status keep_start_tags(dt__episode *e, Dtpb__ExecutionStartedEvent *s,
                                 const Dtpb__OrchestrationMessage *om)
{
    dt_status st = DT_OK;
    if (om->result_subject != NULL && om->result_subject[0] != '\0') {
        st = add_tag(e, s, DT__TAG_RESULT_SUBJECT, om->result_subject);
    }
    if (st == DT_OK && tag_of(s, DT__TAG_ORIGIN) == NULL) {
        st = add_tag(e, s, DT__TAG_ORIGIN, om->dedupe_id);
    }
    return st;
}

/* Tells the caller of a rejected start why: a dead letter, and the parent if it is a child. */
static dt_status reject_start(dt__episode *e, dt__item *it, const char *why)
{
    dt__dead_letter(e->pt, "start", why, e->instance_id, it->msg != NULL ? it->data : NULL,
                    it->msg != NULL ? it->len : 0, e->pt->subject);
    dt_status st = consume_only(e, it);
    Dtpb__ExecutionStartedEvent *s = it->om->event->execution_started;
    if (st == DT_OK && s->parent_instance != NULL) {
        Dtpb__TaskFailureDetails *f = dt__arena_calloc(e->a, 1, sizeof(*f));
        if (f == NULL) {
            return DT_ENOMEM;
        }
        dtpb__task_failure_details__init(f);
        f->error_type = "dt.InstanceExists";
        f->error_message = dt__arena_strdup(e->a, why);
        st = dt__actions_notify_parent(e, s, false, NULL, f);
    }
    return st;
}

/* Applies the reuse policy to a start message. */
static dt_status on_start(dt__episode *e, dt__item *it)
{
    const char *exec = start_execution(e, it->om);
    if (exec == NULL) {
        dt__dead_letter(e->pt, "start", "ExecutionStarted without an execution ID", e->instance_id,
                        NULL, 0, e->pt->subject);
        return DT_OK;
    }
    const char *origin = tag_of(e->start, DT__TAG_ORIGIN);
    if (origin != NULL && strcmp(origin, it->om->dedupe_id) == 0) {
        /* The start that created this instance, again (a redelivery JetStream no longer
         * dedupes, e.g. after a server restart; its applied identity was pruned at the end):
         * the instance has run it, whatever happened since. */
        dt__worker_log(e->pt->w, DT_LOG_DEBUG, e->instance_id, "repeat of its first start dropped");
        return consume_only(e, it);
    }
    bool stored = e->have_row || e->start != NULL;
    if (it->om->continued_as_new && (!stored || strcmp(exec, e->execution_id) != 0)) {
        /* Our own continuation for an execution that is no longer the next one (the instance
         * moved on, or was purged): a repeat, not a new start. */
        dt__worker_log(e->pt->w, DT_LOG_DEBUG, e->instance_id,
                       "stale continue-as-new start for execution %s dropped", exec);
        return consume_only(e, it);
    }
    bool front = false;
    if (stored && strcmp(exec, e->execution_id) == 0) {
        /* The start of the stored, not yet started execution (a continue-as-new or a deferred
         * start) applies once; anything else is a repeat of the current execution's start. */
        bool pending = !e->fresh && e->have_row && e->row.history_len == 0;
        if (!pending) {
            return DT_OK;
        }
        front = true; /* events of this execution accepted before it follow it */
    } else if (stored) {
        int32_t status = e->fresh ? DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING
                                  : e->row.runtime_status;
        Dtpb__InstanceIdReusePolicy policy = it->om->reuse_policy;
        bool finished = dt__status_finished(status) && !e->fresh;
        if (!finished && policy == DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_IGNORE) {
            return consume_only(e, it); /* as asked: the instance stays, the start has no effect */
        }
        bool ok = (finished && policy != DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR) ||
                  policy == DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE;
        if (!ok) {
            char why[256];
            snprintf(why, sizeof(why), "instance '%s' already exists (status %s)", e->instance_id,
                     status_name(status));
            return reject_start(e, it, why);
        }
        e->reset = true;
        e->n_news = 0; /* events of the replaced execution no longer apply */
    }
    e->start = it->om->event->execution_started;
    e->execution_id = exec;
    e->fresh = true;
    e->requested_ms = dt__ts_to_ms(it->om->event->timestamp);
    dt__trace_on_start(e, it);
    dt_status st = keep_start_tags(e, e->start, it->om);
    return st == DT_OK ? accept_at(e, it, front) : st;
}

static int64_t scheduled_at(const dt__episode *e);

/* Whether an event must wait for a start that has not been applied: the instance has no row, or
 * its stored execution has not started (continue-as-new, a deferred start that is due) and its
 * start is not in this batch so far. Events for a start deferred to later go along with it. */
static bool awaits_start(const dt__episode *e)
{
    if (e->fresh) {
        return false;
    }
    if (!e->have_row) {
        return true;
    }
    return e->row.history_len == 0 && scheduled_at(e) <= e->b->now_ms;
}

static dt_status wait_for_start(dt__episode *e, dt__item *it)
{
    if (!dt__arena_grow(e->a, (void **)&e->waiting, &e->cap_waiting, e->n_waiting,
                        sizeof(void *))) {
        return DT_ENOMEM;
    }
    e->waiting[e->n_waiting++] = it;
    return DT_OK;
}

/* Applies an item that is not a start. */
static dt_status on_event(dt__episode *e, dt__item *it)
{
    if (awaits_start(e)) {
        return wait_for_start(e, it);
    }
    /* Whatever follows (applied, or dropped below), a parked copy is consumed now. */
    dt_status st = dt__episode_note_unparked(e, it);
    const char *target = it->om->execution_id;
    if (st != DT_OK ||
        (target != NULL && target[0] != '\0' && strcmp(target, e->execution_id) != 0)) {
        return st; /* addressed to an earlier execution */
    }
    const char *want = it->om->target_origin, *origin = tag_of(e->start, DT__TAG_ORIGIN);
    if (want != NULL && want[0] != '\0' && origin != NULL && strcmp(want, origin) != 0) {
        return DT_OK; /* for another instance that had this ID (records without an origin,
                         from before it was kept, are taken to match) */
    }
    if (dt__episode_is_rewind(it->om->event)) {
        bool apply = false; /* a failed instance: the rewind runs with its rewritten history */
        dt_status rs = dt__episode_rewind_prepare(e, it, &apply);
        return rs == DT_OK && apply ? accept(e, it) : rs;
    }
    if (!e->fresh && dt__status_finished(e->row.runtime_status)) {
        /* Late news for a finished instance, except a recursive terminate: its children may
         * still run (work it started and did not wait for), and theirs. */
        return dt__episode_is_recursive_terminate(it->om->event) ? dt__episode_keep_terminate(e, it)
                                                                 : DT_OK;
    }
    return accept(e, it);
}

/* The stored row: from the row cache when the engine holds the instance exactly as stored (the
 * common case: no SQLite read), else from the store. */
static dt_status load_row(dt__episode *e)
{
    dt__partition *pt = e->pt;
    dt_status st = dt__row_cache_get(pt->rows, pt->engine, e->instance_id, e->a, &e->row);
    if (st == DT_ENOTFOUND) {
        st = dt__store_get_instance(pt->store, e->instance_id, e->a, &e->row);
    }
    if (st == DT_ENOTFOUND) {
        return DT_OK;
    }
    if (st != DT_OK) {
        return st;
    }
    e->have_row = true;
    e->execution_id = e->row.execution_id;
    e->start = dt__start_record_decode(e->a, &e->row.tags);
    return DT_OK;
}

/* Applies one item unless it was applied before. */
static dt_status filter_item(dt__episode *e, dt__item *it)
{
    bool dup = false;
    dt_status st = is_duplicate(e, it, &dup);
    if (st != DT_OK || dup) {
        /* A parked copy of an applied message is consumed all the same. */
        return st != DT_OK ? st : dt__episode_note_unparked(e, it);
    }
    bool is_start =
        it->om->event->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    return is_start ? on_start(e, it) : on_event(e, it);
}

/* A start was just applied: the instance's parked messages (they arrived earlier), then the
 * events of this batch that waited for it, follow it. */
static dt_status after_start(dt__episode *e)
{
    dt__item **parked = NULL;
    size_t n_parked = 0;
    dt_status st = dt__episode_unpark(e, &parked, &n_parked);
    for (size_t i = 0; st == DT_OK && i < n_parked; i++) {
        st = filter_item(e, parked[i]);
    }
    dt__item **waiting = e->waiting;
    size_t n_waiting = e->n_waiting;
    e->waiting = NULL;
    e->n_waiting = e->cap_waiting = 0;
    for (size_t i = 0; st == DT_OK && i < n_waiting; i++) {
        st = filter_item(e, waiting[i]); /* again: a parked copy of it may have been applied */
    }
    return st;
}

static dt_status filter_items(dt__episode *e, dt__group *g)
{
    if (!awaits_start(e)) {
        /* Parked messages left from before the start (more than one start takes). */
        dt__item **parked = NULL;
        size_t n_parked = 0;
        dt_status st = dt__episode_unpark(e, &parked, &n_parked);
        for (size_t i = 0; st == DT_OK && i < n_parked; i++) {
            st = filter_item(e, parked[i]);
        }
        if (st != DT_OK) {
            return st;
        }
    }
    for (dt__item *it = g->head; it != NULL; it = it->next) {
        bool was_fresh = e->fresh;
        dt_status st = filter_item(e, it);
        if (st == DT_OK && e->fresh && !was_fresh) {
            st = after_start(e);
        }
        if (st != DT_OK) {
            return st;
        }
    }
    /* No start for them in this batch: keep them until it comes. */
    return e->n_waiting > 0 ? dt__episode_park_waiting(e) : DT_OK;
}

/* Decodes the stored history of the current execution into arena memory, unless the engine's
 * cache already holds exactly that history (then *out stays NULL with *out_n set): the common
 * case costs O(new events), not O(history). Recursive terminate needs the history itself. */
static dt_status load_past(dt__episode *e, Dtpb__HistoryEvent ***out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (e->reset || !e->have_row || e->row.history_len == 0) {
        return DT_OK;
    }
    if (dt__episode_recursive_terminate(e) == NULL &&
        dt__engine_is_current(e->pt->engine, e->instance_id, e->row.execution_id,
                              (size_t)e->row.history_len)) {
        *out_n = (size_t)e->row.history_len;
        return DT_OK;
    }
    dt__blob *blobs = NULL;
    size_t n = 0;
    dt_status st = dt__store_load_history(e->pt->store, e->instance_id, e->a, &blobs, &n);
    if (st != DT_OK) {
        return st;
    }
    Dtpb__HistoryEvent **evs = dt__arena_alloc(e->a, (n > 0 ? n : 1) * sizeof(*evs));
    if (evs == NULL) {
        return DT_ENOMEM;
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

/* ---- versioning: instances this worker must leave to a worker of another version ---- */

static bool must_leave(dt__episode *e)
{
    dt_worker *w = e->pt->w;
    if (w->opt.version_match == DT_VERSION_MATCH_ANY ||
        w->opt.version_failure != DT_VERSION_FAILURE_LEAVE || e->start == NULL) {
        return false;
    }
    dt_orchestrator_fn fn = NULL;
    void *ud = NULL;
    char why[256];
    const char *version = dt__payload_str(e->a, e->start->version);
    return dt__worker_lookup(w, e->start->name, version, &fn, &ud, why, sizeof(why)) == DT_EVERSION;
}

/* A start scheduled for later: keep the instance PENDING and deliver the start (and any events
 * that came with it) by timer at the scheduled time. */
static dt_status defer_start(dt__episode *e, int64_t at_ms, dt__group *g);

static int64_t scheduled_at(const dt__episode *e)
{
    const Dtpb__Timestamp *ts = e->start != NULL ? e->start->scheduled_start_timestamp : NULL;
    return ts == NULL ? 0 : ts->seconds * 1000 + ts->nanos / 1000000;
}

dt_status dt__episode_process(dt__partition *pt, dt__batch *b, dt__group *g)
{
    if (dt__entity_is_id(g->instance_id)) {
        return dt__entity_episode_process(pt, b, g); /* an entity, not an orchestration */
    }
    dt__episode e = {.pt = pt, .b = b, .a = b->arena, .instance_id = g->instance_id};
    dt_status st = load_row(&e);
    if (st == DT_OK) {
        st = filter_items(&e, g);
    }
    if (st == DT_OK && e.forward_term != NULL) {
        st = dt__episode_forward_terminate(&e);
    }
    if (st != DT_OK || e.n_news == 0) {
        bool consumed = e.out.n > 0 || e.n_applied > 0 || e.n_fired > 0 || e.n_unparked > 0;
        return st != DT_OK ? st : (consumed ? dt__episode_commit_bare(&e) : DT_OK);
    }
    if (must_leave(&e)) {
        char why[256];
        snprintf(why, sizeof(why), "for a worker of its version (this worker: '%s')",
                 pt->w->version != NULL ? pt->w->version : "");
        return dt__episode_leave(&e, g, why);
    }
    int64_t at = scheduled_at(&e);
    bool not_started = e.fresh || (e.have_row && e.row.history_len == 0);
    if (not_started && at > b->now_ms) {
        return defer_start(&e, at, g);
    }
    Dtpb__HistoryEvent **past = NULL;
    size_t n_past = 0;
    bool remote = dt__episode_is_remote(&e);
    if (remote) {
        dt__engine_evict(pt->engine, e.instance_id); /* an SDK worker needs the whole history */
    }
    if (dt__episode_rewinding(&e)) {
        past = e.rw_past;
        n_past = e.n_rw_past;
    } else {
        st = load_past(&e, &past, &n_past);
    }
    if (st != DT_OK) {
        return st;
    }
    if (remote) {
        return dt__episode_remote_send(&e, g, past, n_past); /* collected by run_batch */
    }
    dt__episode_input in = {e.instance_id, past, n_past, e.news, e.n_news, b->now_ms};
    dt__episode_result r;
    if (!dt__batch_touch(b, e.instance_id)) {
        return DT_ENOMEM;
    }
    dt__trace_episode te;
    dt__trace_episode_begin(&e, &te);
    int64_t t0 = dt__metrics_now_us(); /* metrics */
    st = dt__engine_run_episode(pt->engine, &in, &r);
    dt__metrics_episode(pt->w->metrics, dt__metrics_now_us() - t0, past == NULL && n_past > 0,
                        past != NULL); /* metrics: replay cache hit (history held) or miss */
    dt__trace_episode_end(&e, &te, st == DT_OK ? &r : NULL);
    if (st == DT_ESTATE || st == DT_EINVAL) {
        dt__worker_log(pt->w, DT_LOG_WARN, e.instance_id, "episode skipped: %s", dt_status_str(st));
        return e.have_row ? dt__episode_commit_bare(&e) : DT_OK;
    }
    if (st != DT_OK) {
        return st;
    }
    if (!dt__batch_keep_result(b, &r)) {
        dt__episode_result_free(&r);
        return DT_ENOMEM;
    }
    st = dt__episode_terminate_children(&e, past, n_past, &r);
    if (st == DT_OK) {
        st = dt__episode_rewind_resend(&e, &r);
    }
    return st == DT_OK ? dt__episode_commit_result(&e, &r) : st;
}

static dt_status defer_start(dt__episode *e, int64_t at_ms, dt__group *g)
{
    /* Every accepted item (the start first) becomes a timer due at the start time; timers fire
     * in (time, id) order, so they arrive in the same order later. */
    (void)g;
    for (size_t k = 0; k < e->n_news; k++) {
        const dt__item *it = e->news_items[k];
        Dtpb__OrchestrationMessage copy = *it->om;
        char *dedupe = dt__arena_alloc(e->a, strlen(it->om->dedupe_id) + 4);
        if (dedupe == NULL || !dt__arena_grow(e->a, (void **)&e->timers, &e->cap_timers,
                                              e->n_timers, sizeof(*e->timers))) {
            return DT_ENOMEM;
        }
        snprintf(dedupe, strlen(it->om->dedupe_id) + 4, "%s/at", it->om->dedupe_id);
        copy.dedupe_id = dedupe;
        size_t len = 0;
        uint8_t *payload = dt__pack(e->a, &copy.base, &len);
        if (payload == NULL) {
            return DT_ENOMEM;
        }
        if (copy.event->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
            copy.event->execution_started->scheduled_start_timestamp = NULL;
            payload = dt__pack(e->a, &copy.base, &len); /* the delivered start is not deferred */
            copy.event->execution_started->scheduled_start_timestamp =
                e->start->scheduled_start_timestamp;
            if (payload == NULL) {
                return DT_ENOMEM;
            }
        }
        e->timers[e->n_timers++] = (dt__timer_new){at_ms, dedupe, {payload, len}};
    }
    e->n_news = 0;
    return dt__episode_commit_result(e, NULL);
}
