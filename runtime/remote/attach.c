/*
 * Attaching a remote to a worker, and remote activities. A remote activity is registered on the
 * worker like a C activity, so the pool's consumer, batching, in-progress acks, delivery bounds
 * and in-process runs all apply unchanged; its function forwards the work item to an SDK worker
 * and waits for the ActivityResponse. When no SDK worker is connected (for up to
 * activity_timeout_ms), or the one that took it disconnects or does not answer in time, the run
 * is abandoned and the work item redelivered (dt__act_ctx_abandon).
 */
#include <string.h>

#include "activity_int.h"
#include "remote_priv_int.h"
#include "worker_int.h"

/* The outcome an ActivityResponse reports. */
static void report(dt_activity_ctx *ctx, const Dtpb__Remote__ActivityResponse *resp)
{
    const Dtpb__TaskFailureDetails *f = resp->failure_details;
    if (f != NULL) {
        const char *stack = NULL;
        char *copy = NULL;
        if (f->stack_trace != NULL) {
            copy = dt_memdup(f->stack_trace->value.data, f->stack_trace->value.len);
            stack = copy;
        }
        dt_activity_fail_details(ctx, f->error_type, f->error_message, stack, f->is_non_retriable);
        dt_free(copy);
        return;
    }
    if (resp->result != NULL) {
        dt_activity_set_output(ctx, resp->result->value.data, resp->result->value.len);
    }
}

static void remote_activity(dt_activity_ctx *ctx, void *user_data)
{
    dt__remote *r = user_data;
    const Dtpb__ActivityRequest *req = dt__act_ctx_request(ctx);
    int64_t end = dt__mono_ms() + r->opt.activity_timeout_ms;
    dt__remote_call *c = NULL;
    if (req == NULL || !dt__remote_await_conn(r, r->opt.activity_timeout_ms, NULL) ||
        dt__remote_call_new(r, false, req->instance_id, &c) != DT_OK) {
        dt__act_ctx_abandon(ctx);
        return;
    }
    c->task_id = req->task_id;
    int64_t left = end - dt__mono_ms();
    dt_status st = dt__remote_pack_act_item(req, c->token, &c->item, &c->len);
    if (st == DT_OK) {
        st = dt__remote_call_queue(c, left > 1 ? left : 1);
    }
    if (st == DT_OK) {
        st = dt__remote_call_wait(c, NULL, 0);
    }
    if (st == DT_OK) {
        report(ctx, c->resp);
    } else {
        dt__act_ctx_abandon(ctx);
    }
    dt__remote_call_free(c);
}

dt_status dt__remote_attach(dt__remote *r, dt_worker *w)
{
    if (r->attached) {
        return DT_ESTATE;
    }
    dt_status st = dt__worker_set_remote(w, r);
    for (size_t i = 0; st == DT_OK && i < r->opt.n_activities; i++) {
        st = dt_worker_add_activity(w, r->acts[i], r->task_queue, remote_activity, r);
    }
    if (st == DT_OK) {
        r->attached = true;
    }
    return st;
}
