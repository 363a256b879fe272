/*
 * Core-NATS callback subscriptions (request handlers such as partition queries).
 *
 * nats.c delivers a subscription's messages on its own thread. destroy() must guarantee that the
 * user callback is not running and will not run again, because the caller frees what `ctx`
 * points to right after. nats.c calls the subscription's on-complete callback once the last
 * message callback has returned after an unsubscribe; destroy() waits for it.
 */
#include "broker_int.h"

#include <string.h>
#include <time.h>

struct dt_broker_sub {
    dt_broker *b;
    natsSubscription *sub;
    dt_broker_msg_cb cb;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool complete;
};

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
    (void)nc;
    (void)sub;
    dt_broker_sub *s = closure;
    dt_broker_msg *m = dt__broker_msg_wrap(nm, DT__MSG_CORE, s->b, NULL);
    if (m == NULL) {
        natsMsg_Destroy(nm); /* out of memory: a request will time out at its sender */
        return;
    }
    s->cb(m, s->ctx);
}

static void on_complete(void *closure)
{
    dt_broker_sub *s = closure;
    pthread_mutex_lock(&s->mu);
    s->complete = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void sub_free(dt_broker_sub *s)
{
    /* Unsubscribed already (or never subscribed); the flush inside makes sure nats.c's reader
     * is not still delivering to it (conn.c, dt__broker_sub_destroy). */
    dt__broker_sub_destroy(s->b, s->sub);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    dt_free(s);
}

dt_status dt_broker_subscribe(dt_broker *b, const char *subject, const char *queue,
                              dt_broker_msg_cb cb, void *ctx, dt_broker_sub **out)
{
    if (subject == NULL || subject[0] == '\0' || cb == NULL || out == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "subscribe: subject, cb and out are required");
    }
    dt_broker_sub *s = dt_calloc(1, sizeof(*s));
    if (s == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "subscribe %s: out of memory", subject);
    }
    s->b = b;
    s->cb = cb;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    natsStatus ns;
    if (queue != NULL) {
        ns = natsConnection_QueueSubscribe(&s->sub, b->nc, subject, queue, on_msg, s);
    } else {
        ns = natsConnection_Subscribe(&s->sub, b->nc, subject, on_msg, s);
    }
    if (ns == NATS_OK) {
        ns = natsSubscription_SetOnCompleteCB(s->sub, on_complete, s);
    }
    if (ns != NATS_OK) {
        dt_status st = dt__broker_fail_nats(b, ns, 0, "subscribe %s", subject);
        if (s->sub != NULL) {
            (void)natsSubscription_Unsubscribe(s->sub);
        }
        sub_free(s);
        return st;
    }
    *out = s;
    return DT_OK;
}

/* How long destroy() waits for the completion of a subscription it could not unsubscribe
 * (the connection closed it already, and nats.c completes it on its own). */
#define CLOSED_SUB_WAIT_MS 2000

void dt_broker_sub_destroy(dt_broker_sub *s)
{
    if (s == NULL) {
        return;
    }
    bool unsubscribed = natsSubscription_Unsubscribe(s->sub) == NATS_OK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += CLOSED_SUB_WAIT_MS / 1000;
    pthread_mutex_lock(&s->mu);
    while (!s->complete) {
        if (unsubscribed) {
            pthread_cond_wait(&s->cond, &s->mu);
        } else if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    sub_free(s);
}
