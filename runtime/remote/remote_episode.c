/*
 * Remote episodes: the engine's contract (dt__episode_input in, dt__episode_result out) served by
 * an SDK worker. send() packs and queues the work item and returns at once, so that a partition
 * sends every remote episode of its batch before it waits for the first response; wait()
 * converts the response (convert.c) on the partition's thread.
 */
#include <string.h>

#include "remote_priv_int.h"

dt_status dt__remote_episode_send(dt__remote *r, const dt__episode_input *in,
                                  const char *execution_id, size_t max_payload,
                                  dt__remote_call **out)
{
    dt_status st = dt__remote_check_input(in);
    if (st != DT_OK) {
        return st;
    }
    dt__remote_call *c = NULL;
    if ((st = dt__remote_call_new(r, true, in->instance_id, &c)) != DT_OK) {
        return st;
    }
    c->in = in;
    c->execution_id = execution_id;
    c->max_payload = max_payload;
    if (dt__remote_terminated(in, &c->ready, &st)) {
        /* Termination needs no orchestrator code: applied here, connected worker or not. */
        c->ready_set = st == DT_OK;
        c->state = CALL_DONE;
    } else {
        st = dt__remote_pack_orch_item(in, execution_id, c->token, &c->item, &c->len);
        if (st == DT_OK) {
            st = dt__remote_call_queue(c, r->opt.episode_timeout_ms);
        }
    }
    if (st != DT_OK) {
        dt__remote_call_free(c);
        return st;
    }
    *out = c;
    return DT_OK;
}

dt_status dt__remote_episode_wait(dt__remote_call *c, const atomic_bool *stop, int64_t max_wait_ms,
                                  dt__episode_result *out)
{
    if (c->ready_set) {
        *out = c->ready;
        c->ready_set = false;
        dt__remote_call_free(c);
        return DT_OK;
    }
    dt_status st = dt__remote_call_wait(c, stop, max_wait_ms);
    if (st == DT_EBUSY) {
        return st; /* c stays with the caller */
    }
    if (st == DT_OK) {
        dt__remote *r = c->r;
        dt__remote_limits lim = {
            .max_payload = c->max_payload,
            .queue_names = (const char *const *)r->acts,
            .n_queue_names = strcmp(r->task_queue, "default") != 0 ? r->opt.n_activities : 0,
            .queue = r->task_queue,
        };
        st = dt__remote_orch_result(c->in, c->execution_id, c->resp, c->arena, &lim, out);
        if (st == DT_OK) {
            c->arena = NULL; /* now the result's */
        }
    }
    dt__remote_call_free(c);
    return st;
}

void dt__remote_call_cancel(dt__remote_call *c)
{
    if (c == NULL) {
        return;
    }
    dt__remote *r = c->r;
    pthread_mutex_lock(&r->mu);
    if (c->state == CALL_QUEUED || c->state == CALL_SENT) {
        dt__remote_call_withdraw(r, c);
    }
    pthread_mutex_unlock(&r->mu);
    dt__remote_call_free(c);
}
