/*
 * The in-progress ticker of the activity pool. JetStream redelivers a work item whose ack wait
 * (the activity timeout) passes without an ack; while a worker holds an item (queued in its
 * batch, running, or waiting for its result's PubAck) the ticker tells the server every
 * timeout/3 that it is still being worked on. One thread serves every slot of the pool; the
 * in-progress acks are fire-and-forget (buffered, coalesced with other traffic).
 *
 * Each slot's held messages are touched only under the slot's mutex, which serializes the
 * ticker with the slot's thread settling them and with stop() abandoning the slot.
 */
#include <errno.h>
#include <time.h>

#include "activity_int.h"
#include "common_int.h"

void dt__act_slot_progress(dt__act_slot *s, size_t ix)
{
    pthread_mutex_lock(&s->mu);
    if (!s->abandoned && ix < s->nheld && s->held[ix] != NULL) {
        (void)dt_broker_msg_in_progress(s->held[ix]);
    }
    pthread_mutex_unlock(&s->mu);
}

static void progress_all(dt__act_slot *s)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; !s->abandoned && i < s->nheld; i++) {
        if (s->held[i] != NULL) {
            (void)dt_broker_msg_in_progress(s->held[i]);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static struct timespec mono_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void *dt__act_ticker_main(void *arg)
{
    dt__activity_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->ticker_quit) {
        /* The condition also signals slots finishing: wait out the whole period. */
        struct timespec ts = mono_deadline(p->tick_ms);
        int rc = 0;
        while (!p->ticker_quit && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&p->cond, &p->mu, &ts);
        }
        if (p->ticker_quit) {
            break;
        }
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < p->n_slots; i++) {
            progress_all(p->slots[i]);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}
