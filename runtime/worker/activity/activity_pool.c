/*
 * The activity pool's lifecycle: start (validate, open one consumer handle and one publisher
 * per thread, start the threads and the ticker), stop (graceful, with a deadline after which
 * running activities are abandoned) and destroy.
 *
 * Slots are reference-counted by the pool and by their thread. A slot abandoned by stop() (its
 * thread is inside a user function past the deadline) loses its handles and work items at once
 * and its thread is detached: when the function returns the thread sees the flag, frees its own
 * memory and drops its reference, without touching the pool or the broker, which may be gone.
 *
 * Lock order: pool mu, then slot mu. The slots' threads and the ticker never hold both.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activity_int.h"
#include "common_int.h"
#include "protocol_int.h"

#define DEFAULT_THREADS        4
#define DEFAULT_MAX_DELIVERIES 5
#define DEFAULT_TIMEOUT_MS     60000
#define STOP_POLL_MS           100

/* ------------------------------------------------------------------------------------------- */
/* Slots                                                                                       */

static dt_status slot_open(dt__activity_pool *p, const dt__act_queue *q, dt__act_slot **out,
                           char *err, size_t errlen)
{
    dt__act_slot *s = dt_calloc(1, sizeof(*s));
    if (s == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 1;
    s->pool = p;
    s->queue = q;
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = p->act_stream;
    cc.durable = q->durable;
    cc.filter_subject = q->subject;
    cc.ack_wait_ms = p->cfg.timeout_ms;
    cc.max_deliver = -1; /* the pool bounds deliveries itself, with a result */
    dt_status st = dt_broker_consumer_open(p->b, &cc, &s->consumer);
    if (st != DT_OK) {
        char why[256];
        dt_broker_errmsg_copy(p->b, why, sizeof(why));
        dt__errf(err, errlen, "task queue '%s': %s", q->name, why);
        dt__act_slot_release(s);
        return st;
    }
    *out = s;
    return DT_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* Start                                                                                       */

static dt_status config_check(const dt__activity_pool_config *c, char *err, size_t errlen)
{
    if (c == NULL || c->broker == NULL || c->hub == NULL || !dt_broker_hub_name_valid(c->hub)) {
        dt__errf(err, errlen, "activity pool: a broker and a valid hub name are required");
        return DT_EINVAL;
    }
    if (c->n_defs > 0 && c->defs == NULL) {
        dt__errf(err, errlen, "activity pool: defs is NULL");
        return DT_EINVAL;
    }
    if (c->threads_per_queue > DT__ACT_MAX_THREADS || c->max_deliveries < 0 || c->timeout_ms < 0 ||
        (c->timeout_ms > 0 && c->timeout_ms < DT__ACT_MIN_TIMEOUT_MS)) {
        dt__errf(err, errlen,
                 "activity pool: need threads_per_queue <= %d, max_deliveries >= 0 and "
                 "timeout_ms 0 (default) or >= %d",
                 DT__ACT_MAX_THREADS, DT__ACT_MIN_TIMEOUT_MS);
        return DT_EINVAL;
    }
    return DT_OK;
}

/* Names, limits and defaults of a new pool (queues built by the caller). */
static dt_status pool_setup(dt__activity_pool *p, char *err, size_t errlen)
{
    dt__activity_pool_config *c = &p->cfg;
    c->threads_per_queue = c->threads_per_queue != 0 ? c->threads_per_queue : DEFAULT_THREADS;
    c->max_deliveries = c->max_deliveries != 0 ? c->max_deliveries : DEFAULT_MAX_DELIVERIES;
    c->timeout_ms = c->timeout_ms != 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    p->tick_ms = c->timeout_ms / 3 > 0 ? c->timeout_ms / 3 : 1;
    int w = snprintf(p->orch_prefix, sizeof(p->orch_prefix), "dt.%s.orch.", p->hub);
    if (w < 0 || (size_t)w >= sizeof(p->orch_prefix) ||
        dt_broker_stream_name(p->hub, DT_BROKER_STREAM_ACT, p->act_stream, sizeof(p->act_stream)) !=
            DT_OK ||
        dt_broker_subject(p->hub, DT_BROKER_SUBJ_DEAD, DT__ACT_DEAD_KIND, p->dead_subject,
                          sizeof(p->dead_subject)) != DT_OK) {
        dt__errf(err, errlen, "activity pool: bad hub name '%s'", p->hub);
        return DT_EINVAL;
    }
    dt_broker_hub_config hc;
    dt_status st = dt_broker_hub_get(p->b, p->hub, &hc);
    if (st != DT_OK) {
        char why[256];
        dt_broker_errmsg_copy(p->b, why, sizeof(why));
        dt__errf(err, errlen, "activity pool: hub '%s': %s", p->hub, why);
        return st;
    }
    int64_t server = dt_broker_max_payload(p->b);
    p->max_msg = hc.max_msg_size;
    if (server > 0 && (uint64_t)server < p->max_msg) {
        p->max_msg = (size_t)server;
    }
    return DT_OK;
}

static dt_status pool_new(const dt__activity_pool_config *cfg, dt__activity_pool **out, char *err,
                          size_t errlen)
{
    dt__activity_pool *p = dt_calloc(1, sizeof(*p));
    if (p == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    p->stopped = true; /* nothing to stop until the threads run */
    *out = p;
    p->cfg = *cfg;
    p->b = cfg->broker;
    p->hub = dt_strdup(cfg->hub);
    p->cfg.hub = p->hub;
    p->cfg.defs = NULL;
    p->cfg.n_defs = 0;
    if (p->hub == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    dt_status st =
        dt__act_queues_build(p->hub, cfg->defs, cfg->n_defs, &p->queues, &p->n_queues, err, errlen);
    return st != DT_OK ? st : pool_setup(p, err, errlen);
}

static dt_status slots_open(dt__activity_pool *p, char *err, size_t errlen)
{
    size_t n = p->n_queues * p->cfg.threads_per_queue;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, deliberately */
    p->slots = dt_calloc(n > 0 ? n : 1, sizeof(*p->slots));
    if (p->slots == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    for (size_t q = 0; q < p->n_queues; q++) {
        for (size_t t = 0; t < p->cfg.threads_per_queue; t++) {
            dt_status st = slot_open(p, &p->queues[q], &p->slots[p->n_slots], err, errlen);
            if (st != DT_OK) {
                return st;
            }
            p->n_slots++;
        }
    }
    return DT_OK;
}

static dt_status threads_start(dt__activity_pool *p, char *err, size_t errlen)
{
    p->stopped = false;
    for (size_t i = 0; i < p->n_slots; i++) {
        dt__act_slot *s = p->slots[i];
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL); /* the thread's reference */
        if (pthread_create(&s->thread, NULL, dt__act_thread_main, s) != 0) {
            __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
            dt__errf(err, errlen, "activity pool: cannot start a thread");
            return DT_ENOMEM;
        }
        s->thread_started = true;
    }
    if (p->n_slots > 0) {
        if (pthread_create(&p->ticker, NULL, dt__act_ticker_main, p) != 0) {
            dt__errf(err, errlen, "activity pool: cannot start the ticker thread");
            return DT_ENOMEM;
        }
        p->ticker_started = true;
    }
    return DT_OK;
}

dt_status dt__activity_pool_start(const dt__activity_pool_config *cfg, dt__activity_pool **out,
                                  char *errbuf, size_t errlen)
{
    char err[512] = "";
    dt__activity_pool *p = NULL;
    dt_status st = config_check(cfg, err, sizeof(err));
    if (st == DT_OK) {
        st = pool_new(cfg, &p, err, sizeof(err));
    }
    if (st == DT_OK) {
        st = slots_open(p, err, sizeof(err));
    }
    if (st == DT_OK) {
        st = dt__act_members_start(p, err, sizeof(err));
    }
    if (st == DT_OK) {
        st = threads_start(p, err, sizeof(err));
    }
    if (st != DT_OK || out == NULL) {
        dt__activity_pool_destroy(p);
        dt__errf(errbuf, errlen, "%s", out == NULL ? "activity pool: out is NULL" : err);
        return out == NULL ? DT_EINVAL : st;
    }
    dt__act_log(p, DT_LOG_INFO, NULL,
                "activity pool started: %zu task queue(s), %zu thread(s) each, timeout %lld ms, "
                "max deliveries %lld",
                p->n_queues, p->cfg.threads_per_queue, (long long)p->cfg.timeout_ms,
                (long long)p->cfg.max_deliveries);
    *out = p;
    return DT_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* Stop                                                                                        */

/* Abandons slot `s` if its thread is inside an activity function (caller holds p->mu). */
static void abandon_if_running(dt__activity_pool *p, dt__act_slot *s)
{
    pthread_mutex_lock(&s->mu);
    bool running = s->phase == DT__ACT_PHASE_RUN && !s->abandoned;
    if (running) {
        s->abandoned = true;
        for (size_t i = 0; i < s->nheld; i++) {
            dt_broker_msg_destroy(s->held[i]); /* unsettled: redelivered after the ack wait */
            s->held[i] = NULL;
        }
        s->nheld = 0;
        dt_broker_consumer_close(s->consumer);
        dt_broker_publisher_destroy(s->pub);
        s->consumer = NULL;
        s->pub = NULL;
        pthread_detach(s->thread);
    }
    pthread_mutex_unlock(&s->mu);
    if (running) {
        dt__act_log(p, DT_LOG_WARN, NULL,
                    "activity pool stop: an activity on task queue '%s' is still running at the "
                    "deadline; abandoned (its work item will be redelivered)",
                    s->queue->name);
    }
}

/* Number of slots whose thread still runs and is not abandoned (caller holds p->mu). */
static size_t busy_slots(dt__activity_pool *p)
{
    size_t busy = 0;
    for (size_t i = 0; i < p->n_slots; i++) {
        dt__act_slot *s = p->slots[i];
        pthread_mutex_lock(&s->mu);
        busy += s->thread_started && s->phase != DT__ACT_PHASE_DONE && !s->abandoned;
        pthread_mutex_unlock(&s->mu);
    }
    return busy;
}

static struct timespec mono_at(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    return ts;
}

/* Waits for every thread to finish; abandons those inside an activity at the deadline. */
static void wait_threads(dt__activity_pool *p, int64_t deadline_ms)
{
    bool abandoned = false;
    pthread_mutex_lock(&p->mu);
    while (busy_slots(p) > 0) {
        int64_t now = dt__mono_ms();
        if (!abandoned && now >= deadline_ms) {
            for (size_t i = 0; i < p->n_slots; i++) {
                abandon_if_running(p, p->slots[i]);
            }
            abandoned = true;
            continue;
        }
        int64_t until = now + STOP_POLL_MS;
        if (!abandoned && deadline_ms < until) {
            until = deadline_ms;
        }
        struct timespec ts = mono_at(until);
        pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
}

void dt__activity_pool_stop(dt__activity_pool *p, int64_t timeout_ms)
{
    if (p == NULL || p->stopped) {
        return;
    }
    int64_t deadline = dt__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->mu);
    dt__act_members_stop(p); /* other workers stop handing work items to this one */
    wait_threads(p, deadline);
    for (size_t i = 0; i < p->n_slots; i++) {
        dt__act_slot *s = p->slots[i];
        if (s->thread_started && !s->abandoned) {
            pthread_join(s->thread, NULL);
        }
        s->thread_started = false;
    }
    if (p->ticker_started) {
        pthread_mutex_lock(&p->mu);
        p->ticker_quit = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->ticker, NULL);
        p->ticker_started = false;
    }
    p->stopped = true;
    dt__act_log(p, DT_LOG_INFO, NULL, "activity pool stopped");
}

void dt__activity_pool_destroy(dt__activity_pool *p)
{
    if (p == NULL) {
        return;
    }
    dt__activity_pool_stop(p, 0);
    dt__act_members_stop(p);
    for (size_t i = 0; i < p->n_slots; i++) {
        dt__act_slot_release(p->slots[i]);
    }
    dt_free(p->slots);
    dt__act_queues_free(p->queues, p->n_queues);
    dt_free(p->hub);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    dt_free(p);
}
