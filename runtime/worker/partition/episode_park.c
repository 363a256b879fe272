/*
 * Events that overtook their instance's start. JetStream redelivers in no particular order after
 * a failed batch (its messages are nak'd with a delay, later messages are fetched first), so a
 * raise, a terminate or a child's result can reach the partition before the start of the
 * instance it is for, or between a continue-as-new and the next execution's start. Such an
 * event is neither dropped nor applied to nothing: it is parked in the partition's store (in the
 * batch's own transaction) and applied right after the start when the start arrives. One that
 * waited longer than parked_event_ttl_ms is dead-lettered with the reason, and only while the
 * partition's stream holds nothing (so its start is not still on its way) and the lease holds.
 */
#include <stdio.h>
#include <string.h>

#include "episode_int.h"

#define UNPARK_MAX       DT__STORE_MAX_PAGE /* per start; more wait for the next episode */
#define EXPIRE_BATCH     64
#define EXPIRE_PERIOD_MS 1000

dt_status dt__episode_note_unparked(dt__episode *e, const dt__item *it)
{
    if (it->parked_id <= 0) {
        return DT_OK;
    }
    if (!dt__arena_grow(e->a, (void **)&e->unparked, &e->cap_unparked, e->n_unparked,
                        sizeof(int64_t))) {
        return DT_ENOMEM;
    }
    e->unparked[e->n_unparked++] = it->parked_id;
    return DT_OK;
}

/* Parks one waiting item: its message goes to the store; a due timer that carried it is done. */
static dt_status park(dt__episode *e, const dt__item *it)
{
    size_t len = 0;
    const uint8_t *payload = NULL;
    if (it->msg != NULL) {
        payload = it->data; /* the message alone, or its member of a batch */
        len = it->len;
    } else {
        payload = dt__pack(e->a, &it->om->base, &len);
    }
    if (payload == NULL) {
        return DT_ENOMEM;
    }
    if (it->timer_id >= 0) {
        if (!dt__arena_grow(e->a, (void **)&e->fired, &e->cap_fired, e->n_fired, sizeof(int64_t))) {
            return DT_ENOMEM;
        }
        e->fired[e->n_fired++] = it->timer_id;
    }
    if (it->parked_id > 0) {
        return DT_OK; /* still parked */
    }
    dt__parked_new p = {e->instance_id, it->om->dedupe_id, e->b->now_ms, {payload, len}};
    return dt__batch_park(e->b, &p) ? DT_OK : DT_ENOMEM;
}

dt_status dt__episode_park_waiting(dt__episode *e)
{
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < e->n_waiting; i++) {
        st = park(e, e->waiting[i]);
    }
    if (st == DT_OK && e->n_waiting > 0) {
        dt__worker_log(e->pt->w, DT_LOG_DEBUG, e->instance_id,
                       "%zu event(s) parked until the instance's start arrives", e->n_waiting);
    }
    e->n_waiting = 0;
    return st;
}

dt_status dt__episode_unpark(dt__episode *e, dt__item ***out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    dt__parked_row *rows = NULL;
    size_t n = 0;
    dt_status st = dt__store_parked_of(e->pt->store, e->instance_id, UNPARK_MAX, e->a, &rows, &n);
    if (st != DT_OK || n == 0) {
        return st;
    }
    dt__item **items = dt__arena_alloc(e->a, n * sizeof(*items));
    if (items == NULL) {
        return DT_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        dt__item *it = dt__arena_calloc(e->a, 1, sizeof(*it));
        if (it == NULL) {
            return DT_ENOMEM;
        }
        it->timer_id = -1;
        it->parked_id = rows[i].id;
        if (dt__orch_msg_decode(e->a, rows[i].payload.data, rows[i].payload.len, &it->om) !=
                DT_OK ||
            strcmp(it->om->instance_id, e->instance_id) != 0) {
            /* It was decoded before it was parked: unreadable now means a damaged row. */
            dt__worker_log(e->pt->w, DT_LOG_ERROR, e->instance_id,
                           "partition %u: unreadable parked message %lld dropped", e->pt->p,
                           (long long)rows[i].id);
            st = dt__episode_note_unparked(e, it);
            if (st != DT_OK) {
                return st;
            }
            continue;
        }
        items[k++] = it;
    }
    *out = items;
    *out_n = k;
    return DT_OK;
}

/* Nothing waits in the partition's stream (neither undelivered nor unacknowledged messages: a
 * start in a nak delay counts as unacknowledged), and this worker still owns the partition. An
 * empty fetch alone does not tell: a short fetch while timers are due can come back empty. */
static bool may_expire(dt__partition *pt)
{
    int64_t until = 0;
    if (!dt__leases_held(pt->w->leases, pt->p, &until) || dt__mono_ms() >= until) {
        return false;
    }
    dt_broker_consumer_info ci;
    return dt_broker_consumer_info_get(pt->consumer, &ci, NULL, 0) == DT_OK &&
           ci.num_pending == 0 && ci.num_ack_pending <= 0;
}

void dt__parked_expire(dt__partition *pt)
{
    int64_t mono = dt__mono_ms();
    if (mono - pt->parked_checked_ms < EXPIRE_PERIOD_MS) {
        return;
    }
    pt->parked_checked_ms = mono;
    dt__arena *a = dt__arena_create((size_t)16 * 1024);
    dt__parked_row *rows = NULL;
    size_t n = 0;
    int64_t ttl = pt->w->opt.parked_event_ttl_ms;
    dt_status st = a == NULL ? DT_ENOMEM
                             : dt__store_parked_older(pt->store, dt__now_ms() - ttl, EXPIRE_BATCH,
                                                      a, &rows, &n);
    if (st == DT_OK && n > 0 && !may_expire(pt)) {
        n = 0; /* a start may still come: look again later */
    }
    int64_t *ids = n > 0 ? dt__arena_alloc(a, n * sizeof(*ids)) : NULL;
    for (size_t i = 0; st == DT_OK && ids != NULL && i < n; i++) {
        char why[DT_INSTANCE_ID_MAX + 160];
        snprintf(why, sizeof(why),
                 "no instance '%s' started within %lld ms of this event's arrival (event dropped)",
                 rows[i].instance_id, (long long)ttl);
        /* Dead letter first: a crash in between repeats it rather than losing it. */
        dt__dead_letter(pt, "event", why, rows[i].instance_id, rows[i].payload.data,
                        rows[i].payload.len, pt->subject);
        ids[i] = rows[i].id;
    }
    if (st == DT_OK && n > 0) {
        dt__store_batch drop = {.delete_parked_ids = ids, .n_delete_parked = n};
        st = ids == NULL ? DT_ENOMEM : dt__journal_commit(pt->journal, pt->store, pt->epoch, &drop);
    }
    if (st != DT_OK) {
        dt__worker_log(pt->w, DT_LOG_WARN, NULL, "partition %u: expiring parked events: %s", pt->p,
                       st == DT_ENOMEM ? "out of memory" : dt__store_errmsg(pt->store));
    }
    dt__arena_destroy(a);
}
