/*
 * The in-progress ticker of the activity pool. JetStream redelivers a work item whose ack wait
 * (the activity timeout) passes without an ack; while a worker holds an item (queued in its
 * batch, running, or waiting for its result's PubAck) the ticker tells the server every
 * timeout/3 that it is still being worked on. One thread serves every slot of the pool; the
 * in-progress acks are fire-and-forget (buffered, coalesced with other traffic).
 *
 * The ticker also keeps a batch from starving behind one activity: items queued after an
 * activity that has run for DT__ACT_HANDBACK_MS are nak'd (handed back to the queue, at the
 * cost of one delivery each), and the slot's thread skips them.
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

/* One wake-up of the ticker for slot `s`: hand back items queued behind a long activity and,
 * when `progress`, send in-progress for the held ones. Returns how many were handed back. */
static size_t tick_slot(dt__act_slot *s, int64_t now, bool progress)
{
    size_t handed = 0;
    pthread_mutex_lock(&s->mu);
    if (!s->abandoned && s->phase == DT__ACT_PHASE_RUN &&
        now - s->run_since_ms >= DT__ACT_HANDBACK_MS) {
        for (size_t i = s->run_ix + 1; i < s->nheld; i++) {
            if (s->held[i] != NULL) {
                (void)dt_broker_msg_nak(s->held[i]);
                dt_broker_msg_destroy(s->held[i]);
                s->held[i] = NULL;
                handed++;
            }
        }
    }
    for (size_t i = 0; progress && !s->abandoned && i < s->nheld; i++) {
        if (s->held[i] != NULL) {
            (void)dt_broker_msg_in_progress(s->held[i]);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return handed;
}

void *dt__act_ticker_main(void *arg)
{
    dt__activity_pool *p = arg;
    int64_t wake = p->tick_ms < DT__ACT_TICKER_WAKE_MS ? p->tick_ms : DT__ACT_TICKER_WAKE_MS;
    int64_t next_progress = dt__mono_ms() + p->tick_ms;
    pthread_mutex_lock(&p->mu);
    while (!p->ticker_quit) {
        /* The condition also signals slots finishing: wait out the whole period. */
        struct timespec ts = dt__deadline_in(CLOCK_MONOTONIC, wake);
        int rc = 0;
        while (!p->ticker_quit && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&p->cond, &p->mu, &ts);
        }
        if (p->ticker_quit) {
            break;
        }
        pthread_mutex_unlock(&p->mu);
        int64_t now = dt__mono_ms();
        bool progress = now >= next_progress;
        if (progress) {
            next_progress = now + p->tick_ms;
        }
        for (size_t i = 0; i < p->n_slots; i++) {
            size_t handed = tick_slot(p->slots[i], now, progress);
            if (handed > 0) {
                dt__act_log(p, DT_LOG_INFO, NULL,
                            "task queue '%s': %zu work item(s) queued behind an activity running "
                            "for over %d ms handed back to the queue",
                            p->slots[i]->queue->name, handed, DT__ACT_HANDBACK_MS);
            }
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}
