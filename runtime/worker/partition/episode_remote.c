/*
 * Episodes of orchestrations whose code runs in SDK workers (runtime/remote). The partition runs
 * a batch in two passes for them: dt__episode_process filters an instance's items as for any
 * instance and, where the engine would run, sends the episode (dt__episode_remote_send) and
 * moves on; once every group was seen, run_batch collects the responses in send order
 * (dt__episode_remote_collect) and each completes exactly as an engine episode does (result
 * kept, children of a recursive terminate, commit). So a batch of N remote instances waits about
 * one round trip, not N. An episode no SDK worker takes, or whose worker disconnects or does not
 * answer in time, is left (dt__episode_leave): nothing of it is committed and its messages come
 * again.
 */
#include <string.h>

#include "episode_int.h"
#include "remote/remote_worker_int.h"

struct dt__remote_pending {
    dt__episode e; /* the episode's state, moved here from dt__episode_process's stack */
    dt__group *g;
    Dtpb__HistoryEvent **past;
    size_t n_past;
    dt__episode_input in;
    dt__remote_call *call;
    struct dt__remote_pending *next;
};

static bool registered_locally(const dt_worker *w, const char *name)
{
    for (size_t i = 0; i < w->n_orchs; i++) {
        if (strcmp(w->orchs[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

bool dt__episode_is_remote(const dt__episode *e)
{
    const dt_worker *w = e->pt->w;
    return w->remote != NULL && e->start != NULL && e->start->name != NULL &&
           dt__remote_takes(w->remote, e->start->name, registered_locally(w, e->start->name));
}

dt_status dt__episode_remote_send(dt__episode *e, dt__group *g, Dtpb__HistoryEvent **past,
                                  size_t n_past)
{
    dt__batch *b = e->b;
    struct dt__remote_pending *p = dt__arena_calloc(e->a, 1, sizeof(*p));
    if (p == NULL || !dt__batch_touch(b, e->instance_id)) {
        return DT_ENOMEM;
    }
    p->e = *e;
    p->g = g;
    p->past = past;
    p->n_past = n_past;
    p->in = (dt__episode_input){e->instance_id, past, n_past, e->news, e->n_news, b->now_ms};
    size_t max_payload = e->pt->max_msg > 4096 ? e->pt->max_msg - 4096 : 0;
    dt_status st =
        dt__remote_episode_send(e->pt->w->remote, &p->in, e->execution_id, max_payload, &p->call);
    if (st == DT_ECLOSED) {
        return dt__episode_leave(&p->e, g, "no SDK worker is connected");
    }
    if (st == DT_ESTATE || st == DT_EINVAL) {
        dt__worker_log(e->pt->w, DT_LOG_WARN, e->instance_id, "episode skipped: %s",
                       dt_status_str(st));
        return e->have_row ? dt__episode_commit_bare(e) : DT_OK;
    }
    if (st != DT_OK) {
        return st;
    }
    /* Collected in send order. */
    struct dt__remote_pending **pp = &b->remote;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = p;
    return DT_OK;
}

/* The batch's fetched messages stay with this partition while it waits (JetStream would
 * redeliver them after the consumer's 10 s ack wait). */
static void keep_alive(dt__batch *b)
{
    for (dt__group *g = b->groups; g != NULL; g = g->next) {
        for (dt__item *it = g->head; it != NULL; it = it->next) {
            if (it->msg != NULL) {
                dt_broker_msg_in_progress(it->msg);
            }
        }
    }
}

#define KEEP_ALIVE_MS 3000

static dt_status collect_one(dt__partition *pt, struct dt__remote_pending *p)
{
    dt__episode *e = &p->e;
    dt__episode_result r;
    dt__trace_episode te;
    dt__trace_episode_begin(e, &te);
    dt_status st;
    while ((st = dt__remote_episode_wait(p->call, &pt->stop, KEEP_ALIVE_MS, &r)) == DT_EBUSY) {
        keep_alive(e->b);
    }
    p->call = NULL;
    dt__trace_episode_end(e, &te, st == DT_OK ? &r : NULL);
    if (st == DT_ETIMEOUT || st == DT_ECLOSED) {
        return dt__episode_leave(e, p->g,
                                 st == DT_ETIMEOUT ? "its SDK worker did not answer in time"
                                                   : "its SDK worker went away");
    }
    if (st != DT_OK) {
        return st;
    }
    if (!dt__batch_keep_result(e->b, &r)) {
        dt__episode_result_free(&r);
        return DT_ENOMEM;
    }
    st = dt__episode_terminate_children(e, p->past, p->n_past, &r);
    if (st == DT_OK) {
        st = dt__episode_rewind_resend(e, &r); /* a rewind's calls, as for an engine episode */
    }
    return st == DT_OK ? dt__episode_commit_result(e, &r) : st;
}

dt_status dt__episode_remote_collect(dt__partition *pt, dt__batch *b)
{
    dt_status st = DT_OK;
    while (b->remote != NULL) {
        struct dt__remote_pending *p = b->remote;
        b->remote = p->next;
        if (st == DT_OK) {
            st = collect_one(pt, p);
        } else {
            dt__remote_call_cancel(p->call); /* the batch failed: its messages come again */
        }
    }
    return st;
}

void dt__episode_remote_cancel(dt__batch *b)
{
    while (b->remote != NULL) {
        dt__remote_call_cancel(b->remote->call);
        b->remote = b->remote->next;
    }
}
