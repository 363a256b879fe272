/*
 * Leaving an instance for later (episode_int.h): called by episode.c (an instance of another
 * version) and episode_remote.c (an episode no SDK worker answered); it only queues a bare commit
 * (commit.c), so both call down.
 */
#include "episode_int.h"

#define LEAVE_TIMER_DELAY_MS 5000

/* Leaves the instance untouched: its messages are redelivered later, its due timers are moved a
 * little into the future (so they do not spin), and nothing of it is committed (episode_int.h).
 * Also used for episodes no SDK worker answered (episode_remote.c). */
dt_status dt__episode_leave(dt__episode *e, dt__group *g, const char *why)
{
    dt__worker_log(e->pt->w, DT_LOG_DEBUG, e->instance_id, "left for now: %s", why);
    e->n_news = e->n_applied = e->n_fired = e->n_timers = 0;
    e->n_unparked = 0; /* parked messages stay parked */
    e->out.n = 0;
    for (dt__item *it = g->head; it != NULL; it = it->next) {
        if (it->msg != NULL) {
            it->leave = true;
            continue;
        }
        size_t len = 0;
        uint8_t *payload = dt__pack(e->a, &it->om->base, &len);
        if (payload == NULL ||
            !dt__arena_grow(e->a, (void **)&e->fired, &e->cap_fired, e->n_fired, sizeof(int64_t)) ||
            !dt__arena_grow(e->a, (void **)&e->timers, &e->cap_timers, e->n_timers,
                            sizeof(*e->timers))) {
            return DT_ENOMEM;
        }
        e->fired[e->n_fired++] = it->timer_id;
        e->timers[e->n_timers++] =
            (dt__timer_new){e->b->now_ms + LEAVE_TIMER_DELAY_MS, it->om->dedupe_id, {payload, len}};
    }
    return e->n_timers > 0 ? dt__episode_commit_bare(e) : DT_OK;
}
