/*
 * Leaving an instance for later (episode_int.h): called by episode.c (an instance of another
 * version) and episode_remote.c (an episode no SDK worker answered); it only queues a bare commit
 * (commit.c), so both call down.
 */
#include "episode_int.h"

/* Leaves the instance untouched: its messages are redelivered later, its due timers are moved a
 * little into the future (so they do not spin), and nothing of it is committed (episode_int.h).
 * Also used for episodes no SDK worker answered (episode_remote.c). */
dt_status dt__episode_leave(dt__episode *e, dt__group *g, const char *why)
{
    dt__worker_log(e->pt->w, DT_LOG_DEBUG, e->instance_id, "left for now: %s", why);
    e->n_news = e->n_applied = e->n_fired = e->n_timers = 0;
    e->n_unparked = 0; /* parked messages stay parked */
    e->out.n = 0;
    dt_status st = dt__group_leave(g, e->a, e->b->now_ms,
                                   (dt__leave_out){&e->fired, &e->n_fired, &e->cap_fired,
                                                   &e->timers, &e->n_timers, &e->cap_timers});
    if (st != DT_OK) {
        return st;
    }
    return e->n_timers > 0 ? dt__episode_commit_bare(e) : DT_OK;
}
