/*
 * A partition's inbox: the fetcher thread and the queue of in-process activity results
 * (inbox_int.h says why there is a thread).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common_int.h"
#include "durabletask/alloc.h"
#include "inbox_int.h"

#define ERROR_PAUSE_MS 100 /* between fetches that fail (a disconnected client fails at once) */

struct dt__inbox {
    dt_broker_consumer *c;
    size_t max;
    int64_t fetch_wait_ms;
    atomic_int refs;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* anything for the partition; room for the fetcher; closing */
    /* Guarded by mu: */
    dt_broker_msg **msgs; /* the fetched batch, max entries */
    size_t n;
    dt_status fetch_st; /* of the last fetch, until taken */
    dt__local_result *head, *tail;
    bool closing;
};

void dt__local_results_free(dt__local_result *r)
{
    while (r != NULL) {
        dt__local_result *next = r->next;
        dt_free(r->subject);
        dt_free(r->msg_id);
        dt_free(r->data);
        dt_free(r);
        r = next;
    }
}

static void *fetcher_main(void *arg)
{
    dt__inbox *in = arg;
    dt_broker_msg **got = dt_calloc(in->max, sizeof(*got));
    pthread_mutex_lock(&in->mu);
    while (!in->closing && got != NULL) {
        if (in->n > 0) { /* the partition has not taken the last batch yet */
            pthread_cond_wait(&in->cond, &in->mu);
            continue;
        }
        pthread_mutex_unlock(&in->mu);
        size_t n = 0;
        dt_status st = dt_broker_consumer_fetch(in->c, in->max, in->fetch_wait_ms, got, &n);
        pthread_mutex_lock(&in->mu);
        if (st != DT_OK) {
            in->fetch_st = st; /* reported by the next take */
            pthread_cond_broadcast(&in->cond);
            struct timespec until = dt__deadline_in(CLOCK_MONOTONIC, ERROR_PAUSE_MS);
            while (!in->closing && pthread_cond_timedwait(&in->cond, &in->mu, &until) == 0) {
            }
            continue;
        }
        if (n > 0) {
            memcpy(in->msgs, got, n * sizeof(*got));
            in->n = n;
            pthread_cond_broadcast(&in->cond);
        }
    }
    pthread_mutex_unlock(&in->mu);
    dt_free(got);
    return NULL;
}

static void inbox_free(dt__inbox *in)
{
    pthread_cond_destroy(&in->cond);
    pthread_mutex_destroy(&in->mu);
    dt__local_results_free(in->head);
    dt_free(in->msgs);
    dt_free(in);
}

dt_status dt__inbox_start(dt_broker_consumer *c, size_t max, int64_t fetch_wait_ms, dt__inbox **out)
{
    dt__inbox *in = dt_calloc(1, sizeof(*in));
    if (in == NULL) {
        return DT_ENOMEM;
    }
    in->c = c;
    in->max = max;
    in->fetch_wait_ms = fetch_wait_ms;
    in->fetch_st = DT_OK;
    atomic_init(&in->refs, 2); /* the caller's and the fetcher's (dropped by close) */
    in->msgs = dt_calloc(max, sizeof(*in->msgs));
    pthread_condattr_t ca;
    bool ok = in->msgs != NULL && pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&in->cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
        if (ok && pthread_mutex_init(&in->mu, NULL) != 0) {
            pthread_cond_destroy(&in->cond);
            ok = false;
        }
    }
    if (!ok) {
        dt_free(in->msgs);
        dt_free(in);
        return DT_ENOMEM;
    }
    if (pthread_create(&in->thread, NULL, fetcher_main, in) != 0) {
        in->head = NULL;
        inbox_free(in);
        return DT_ENOMEM;
    }
    *out = in;
    return DT_OK;
}

dt_status dt__inbox_take(dt__inbox *in, int64_t timeout_ms, dt_broker_msg **msgs, size_t *n,
                         dt__local_result **locals)
{
    struct timespec until = dt__deadline_in(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&in->mu);
    while (in->n == 0 && in->head == NULL && in->fetch_st == DT_OK && !in->closing) {
        if (pthread_cond_timedwait(&in->cond, &in->mu, &until) != 0) {
            break;
        }
    }
    dt_status st = in->fetch_st;
    in->fetch_st = DT_OK;
    *n = in->n;
    if (in->n > 0) {
        memcpy(msgs, in->msgs, in->n * sizeof(*msgs));
        in->n = 0;
        pthread_cond_broadcast(&in->cond); /* the fetcher may go again */
    }
    *locals = in->head;
    in->head = in->tail = NULL;
    pthread_mutex_unlock(&in->mu);
    return st;
}

void dt__inbox_requeue(dt__inbox *in, dt__local_result *locals)
{
    if (locals == NULL) {
        return;
    }
    dt__local_result *last = locals;
    while (last->next != NULL) {
        last = last->next;
    }
    pthread_mutex_lock(&in->mu);
    last->next = in->head;
    in->head = locals;
    if (in->tail == NULL) {
        in->tail = last;
    }
    pthread_mutex_unlock(&in->mu);
}

bool dt__inbox_put_local(dt__inbox *in, dt__local_result *r)
{
    pthread_mutex_lock(&in->mu);
    bool open = !in->closing;
    if (open) {
        r->next = NULL;
        if (in->tail != NULL) {
            in->tail->next = r;
        } else {
            in->head = r;
        }
        in->tail = r;
        pthread_cond_broadcast(&in->cond);
    }
    pthread_mutex_unlock(&in->mu);
    return open;
}

bool dt__inbox_is_open(dt__inbox *in)
{
    pthread_mutex_lock(&in->mu);
    bool open = !in->closing;
    pthread_mutex_unlock(&in->mu);
    return open;
}

void dt__inbox_retain(dt__inbox *in)
{
    atomic_fetch_add(&in->refs, 1);
}

void dt__inbox_release(dt__inbox *in)
{
    if (in != NULL && atomic_fetch_sub(&in->refs, 1) == 1) {
        inbox_free(in);
    }
}

void dt__inbox_close(dt__inbox *in)
{
    if (in == NULL) {
        return;
    }
    pthread_mutex_lock(&in->mu);
    in->closing = true;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->mu);
    pthread_join(in->thread, NULL); /* within one fetch wait */
    for (size_t i = 0; i < in->n; i++) {
        dt_broker_msg_nak(in->msgs[i]);
        dt_broker_msg_destroy(in->msgs[i]);
    }
    in->n = 0;
    pthread_mutex_lock(&in->mu);
    dt__local_result *left = in->head;
    in->head = in->tail = NULL;
    pthread_mutex_unlock(&in->mu);
    dt__local_results_free(left); /* their requests stay in the outbox for the next owner */
    dt__inbox_release(in);        /* the fetcher's */
    dt__inbox_release(in);        /* the caller's */
}
