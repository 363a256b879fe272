/*
 * Batch bookkeeping: what the episodes of a batch hand to the partition's commit (commits, engine
 * results to free, instances touched, messages parked), kept in the batch's arena. Called by
 * partition.c and by the episode files below it; calls nothing of the worker.
 */
#include "batch_int.h"

bool dt__batch_push_commit(dt__batch *b, const dt__episode_commit *c)
{
    if (!dt__arena_grow(b->arena, (void **)&b->commits, &b->cap_commits, b->n_commits,
                        sizeof(*c))) {
        return false;
    }
    b->commits[b->n_commits++] = *c;
    return true;
}

bool dt__batch_keep_result(dt__batch *b, const dt__episode_result *r)
{
    if (!dt__arena_grow(b->arena, (void **)&b->results, &b->cap_results, b->n_results,
                        sizeof(*r))) {
        return false;
    }
    b->results[b->n_results++] = *r;
    return true;
}

bool dt__batch_touch(dt__batch *b, const char *instance_id)
{
    if (!dt__arena_grow(b->arena, (void **)&b->touched, &b->cap_touched, b->n_touched,
                        sizeof(char *))) {
        return false;
    }
    b->touched[b->n_touched++] = instance_id;
    return true;
}

bool dt__batch_park(dt__batch *b, const dt__parked_new *p)
{
    if (!dt__arena_grow(b->arena, (void **)&b->parks, &b->cap_parks, b->n_parks, sizeof(*p))) {
        return false;
    }
    b->parks[b->n_parks++] = *p;
    return true;
}

dt_status dt__group_leave(dt__group *g, dt__arena *a, int64_t now_ms, dt__leave_out o)
{
    for (dt__item *it = g->head; it != NULL; it = it->next) {
        if (it->msg != NULL) {
            it->leave = true;
            continue;
        }
        size_t len = 0;
        uint8_t *payload = dt__pack(a, &it->om->base, &len);
        if (payload == NULL ||
            !dt__arena_grow(a, (void **)o.fired, o.cap_fired, *o.n_fired, sizeof(int64_t)) ||
            !dt__arena_grow(a, (void **)o.timers, o.cap_timers, *o.n_timers, sizeof(**o.timers))) {
            return DT_ENOMEM;
        }
        (*o.fired)[(*o.n_fired)++] = it->timer_id;
        (*o.timers)[(*o.n_timers)++] =
            (dt__timer_new){now_ms + DT__LEAVE_TIMER_DELAY_MS, it->om->dedupe_id, {payload, len}};
    }
    return DT_OK;
}
