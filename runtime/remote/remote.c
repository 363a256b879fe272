/*
 * The remote's core: options, connections (one per GetWorkItems stream), the calls on their way
 * to SDK workers, and the matching of completions to them (remote_priv_int.h describes a call's
 * life). One mutex guards everything; nothing slow runs under it (packing and parsing happen
 * outside, wake-ups are made after unlocking).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol_int.h"
#include "remote_priv_int.h"

#define DEFAULT_EPISODE_TIMEOUT_MS  15000
#define DEFAULT_ACTIVITY_TIMEOUT_MS 300000
#define DEFAULT_MAX_QUEUED          1024
#define DEFAULT_MAX_INFLIGHT        32
#define WAIT_SLICE_MS               100

/* ---- set-up ---- */

void dt__remote_options_init(dt__remote_options *o)
{
    memset(o, 0, sizeof(*o));
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        dt_free(v[i]);
    }
    dt_free(v);
}

/* Sorted copies of names[0..n); DT_EINVAL for an empty or overlong name or a repeat. */
static dt_status copy_names(const char *const *names, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0) {
        return DT_OK;
    }
    char **v = dt_calloc(n, sizeof(char *));
    if (v == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i] == NULL || names[i][0] == '\0' || strlen(names[i]) > DT_NAME_MAX) {
            free_names(v, n);
            return DT_EINVAL;
        }
        if ((v[i] = dt_strdup(names[i])) == NULL) {
            free_names(v, n);
            return DT_ENOMEM;
        }
    }
    qsort(v, n, sizeof(char *), cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1], v[i]) == 0) {
            free_names(v, n);
            return DT_EINVAL;
        }
    }
    *out = v;
    return DT_OK;
}

dt_status dt__remote_create(const dt__remote_options *o, dt__remote **out)
{
    dt__remote *r = dt_calloc(1, sizeof(*r));
    if (r == NULL) {
        return DT_ENOMEM;
    }
    r->opt = *o;
    dt_status st = copy_names(o->orchestrations, o->n_orchestrations, &r->orchs);
    if (st == DT_OK) {
        st = copy_names(o->activities, o->n_activities, &r->acts);
    }
    const char *q = o->task_queue != NULL && o->task_queue[0] != '\0' ? o->task_queue : "default";
    if (st == DT_OK && (r->task_queue = dt_strdup(q)) == NULL) {
        st = DT_ENOMEM;
    }
    if (st != DT_OK) {
        free_names(r->orchs, o->n_orchestrations);
        free_names(r->acts, o->n_activities);
        dt_free(r);
        return st;
    }
    r->opt.orchestrations = (const char *const *)r->orchs;
    r->opt.activities = (const char *const *)r->acts;
    r->opt.task_queue = r->task_queue;
    if (r->opt.episode_timeout_ms <= 0) {
        r->opt.episode_timeout_ms = DEFAULT_EPISODE_TIMEOUT_MS;
    }
    if (r->opt.activity_timeout_ms <= 0) {
        r->opt.activity_timeout_ms = DEFAULT_ACTIVITY_TIMEOUT_MS;
    }
    if (r->opt.max_queued == 0) {
        r->opt.max_queued = DEFAULT_MAX_QUEUED;
    }
    if (r->opt.max_inflight == 0) {
        r->opt.max_inflight = DEFAULT_MAX_INFLIGHT;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = r;
    return DT_OK;
}

bool dt__remote_takes(const dt__remote *r, const char *name, bool local)
{
    if (r == NULL || name == NULL) {
        return false;
    }
    if (r->opt.n_orchestrations == 0) {
        return !local;
    }
    return bsearch(&name, r->orchs, r->opt.n_orchestrations, sizeof(char *), cmp_str) != NULL;
}

/* ---- calls ---- */

static void unlink_call(dt__remote *r, dt__remote_call *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (r->calls == c) {
        r->calls = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

/* Removes a QUEUED call from its connection's FIFO. */
static void dequeue(dt__remote_conn *k, dt__remote_call *c)
{
    dt__remote_call **pp = &k->head, *last = NULL;
    while (*pp != NULL && *pp != c) {
        last = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp == c) {
        *pp = c->qnext;
        if (k->tail == c) {
            k->tail = last;
        }
        k->queued--;
    }
    c->qnext = NULL;
}

/* Takes c out of every list (under mu) and sets its final state. */
static void settle_call(dt__remote *r, dt__remote_call *c, call_state st)
{
    if (c->state == CALL_QUEUED && c->conn != NULL) {
        dequeue(c->conn, c);
    }
    if (c->state == CALL_SENT && c->conn != NULL) {
        c->conn->sent--;
    }
    if (c->state == CALL_QUEUED || c->state == CALL_SENT) {
        unlink_call(r, c);
    }
    c->conn = NULL;
    c->state = st;
}

dt_status dt__remote_call_new(dt__remote *r, bool is_orch, const char *instance_id,
                              dt__remote_call **out)
{
    dt__remote_call *c = dt_calloc(1, sizeof(*c));
    if (c == NULL || (c->instance_id = dt_strdup(instance_id)) == NULL) {
        dt_free(c);
        return DT_ENOMEM;
    }
    c->r = r;
    c->is_orch = is_orch;
    c->state = CALL_ABANDONED; /* not in any list until queued */
    pthread_mutex_lock(&r->mu);
    snprintf(c->token, sizeof(c->token), "%llu", (unsigned long long)++r->serial);
    pthread_mutex_unlock(&r->mu);
    *out = c;
    return DT_OK;
}

void dt__remote_call_free(dt__remote_call *c)
{
    if (c == NULL) {
        return;
    }
    dt_free(c->item);
    dt__arena_destroy(c->arena);
    if (c->ready_set) {
        dt__episode_result_free(&c->ready);
    }
    dt_free(c->instance_id);
    dt_free(c);
}

/* Wakes k's stream (its transport thread) without holding mu; k stays valid meanwhile. */
static void wake_conn(dt__remote *r, dt__remote_conn *k)
{
    k->wakers++;
    pthread_mutex_unlock(&r->mu);
    k->wake(k->arg);
    pthread_mutex_lock(&r->mu);
    if (--k->wakers == 0) {
        pthread_cond_broadcast(&r->cond);
    }
}

/* A SENT call of k was settled: if k was full and has queued items, its stream polls again. */
static void slot_freed(dt__remote *r, dt__remote_conn *k)
{
    if (k != NULL && k->head != NULL && k->sent + 1 == r->opt.max_inflight) {
        wake_conn(r, k);
    }
}

/* Settles c (under mu) and, when that freed a slot of its connection, wakes the stream. */
static void settle_and_wake(dt__remote *r, dt__remote_call *c, call_state st)
{
    dt__remote_conn *k = c->state == CALL_SENT ? c->conn : NULL;
    settle_call(r, c, st);
    slot_freed(r, k);
}

void dt__remote_call_withdraw(dt__remote *r, dt__remote_call *c)
{
    settle_and_wake(r, c, CALL_ABANDONED);
}

dt_status dt__remote_call_queue(dt__remote_call *c, int64_t timeout_ms)
{
    dt__remote *r = c->r;
    pthread_mutex_lock(&r->mu);
    dt__remote_conn *k = NULL;
    for (size_t i = 0; !r->closed && i < r->n_conns; i++) {
        dt__remote_conn *cand = r->rr != NULL ? r->rr : r->conns;
        r->rr = cand->next;
        if (cand->queued < r->opt.max_queued) {
            k = cand;
            break;
        }
    }
    if (k == NULL) {
        pthread_mutex_unlock(&r->mu);
        return DT_ECLOSED;
    }
    c->state = CALL_QUEUED;
    c->conn = k;
    c->timeout_ms = timeout_ms;
    c->deadline_ms = dt__mono_ms() + timeout_ms;
    if (k->tail != NULL) {
        k->tail->qnext = c;
    } else {
        k->head = c;
    }
    k->tail = c;
    k->queued++;
    c->next = r->calls;
    if (r->calls != NULL) {
        r->calls->prev = c;
    }
    r->calls = c;
    wake_conn(r, k);
    pthread_mutex_unlock(&r->mu);
    return DT_OK;
}

static void deadline_ts(int64_t mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

dt_status dt__remote_call_wait(dt__remote_call *c, const atomic_bool *stop, int64_t max_wait_ms)
{
    dt__remote *r = c->r;
    int64_t until_busy = max_wait_ms > 0 ? dt__mono_ms() + max_wait_ms : INT64_MAX;
    pthread_mutex_lock(&r->mu);
    r->waiters++;
    dt_status st = DT_OK;
    while (c->state == CALL_QUEUED || c->state == CALL_SENT) {
        int64_t now = dt__mono_ms();
        if (now >= c->deadline_ms || (stop != NULL && atomic_load(stop))) {
            st = now >= c->deadline_ms ? DT_ETIMEOUT : DT_ECLOSED;
            settle_and_wake(r, c, CALL_ABANDONED);
            break;
        }
        if (now >= until_busy) {
            st = DT_EBUSY;
            break;
        }
        int64_t until = now + WAIT_SLICE_MS;
        until = until < c->deadline_ms ? until : c->deadline_ms;
        until = until < until_busy ? until : until_busy;
        struct timespec ts;
        deadline_ts(until, &ts);
        pthread_cond_timedwait(&r->cond, &r->mu, &ts);
    }
    if (st == DT_OK && c->state != CALL_DONE) {
        st = DT_ECLOSED;
    }
    r->waiters--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    return st;
}

bool dt__remote_await_conn(dt__remote *r, int64_t timeout_ms, const atomic_bool *stop)
{
    int64_t end = dt__mono_ms() + timeout_ms;
    pthread_mutex_lock(&r->mu);
    r->waiters++;
    while (r->n_conns == 0 && !r->closed && dt__mono_ms() < end &&
           (stop == NULL || !atomic_load(stop))) {
        int64_t now = dt__mono_ms();
        struct timespec ts;
        deadline_ts(now + WAIT_SLICE_MS < end ? now + WAIT_SLICE_MS : end, &ts);
        pthread_cond_timedwait(&r->cond, &r->mu, &ts);
    }
    bool ok = r->n_conns > 0 && !r->closed;
    r->waiters--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* ---- the transport's side ---- */

dt_status dt__remote_connect(dt__remote *r, void (*wake)(void *arg), void *arg,
                             dt__remote_conn **out)
{
    dt__remote_conn *k = dt_calloc(1, sizeof(*k));
    if (k == NULL) {
        return DT_ENOMEM;
    }
    k->r = r;
    k->wake = wake;
    k->arg = arg;
    pthread_mutex_lock(&r->mu);
    if (r->closed) {
        pthread_mutex_unlock(&r->mu);
        dt_free(k);
        return DT_ECLOSED;
    }
    k->next = r->conns;
    r->conns = k;
    r->n_conns++;
    pthread_cond_broadcast(&r->cond); /* activities waiting for a connection */
    pthread_mutex_unlock(&r->mu);
    *out = k;
    return DT_OK;
}

dt_status dt__remote_poll(dt__remote_conn *k, uint8_t **item, size_t *len)
{
    dt__remote *r = k->r;
    pthread_mutex_lock(&r->mu);
    if (r->closed) {
        pthread_mutex_unlock(&r->mu);
        return DT_ECLOSED;
    }
    dt__remote_call *c = k->head;
    if (c == NULL || k->sent >= r->opt.max_inflight) {
        pthread_mutex_unlock(&r->mu);
        return DT_ENOTFOUND; /* when full: woken again once an answer frees a slot */
    }
    k->head = c->qnext;
    if (k->head == NULL) {
        k->tail = NULL;
    }
    k->queued--;
    c->qnext = NULL;
    c->state = CALL_SENT;
    c->deadline_ms = dt__mono_ms() + c->timeout_ms; /* the SDK worker's time starts now */
    k->sent++;
    *item = c->item;
    *len = c->len;
    c->item = NULL;
    pthread_mutex_unlock(&r->mu);
    return DT_OK;
}

void dt__remote_disconnect(dt__remote_conn *k)
{
    if (k == NULL) {
        return;
    }
    dt__remote *r = k->r;
    pthread_mutex_lock(&r->mu);
    for (dt__remote_conn **pp = &r->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            r->n_conns--;
            break;
        }
    }
    if (r->rr == k) {
        r->rr = NULL;
    }
    /* Its items, queued or sent: abandoned; their waiters leave them for redelivery. */
    for (dt__remote_call *c = r->calls, *next; c != NULL; c = next) {
        next = c->next;
        if (c->conn == k) {
            settle_call(r, c, CALL_ABANDONED);
        }
    }
    pthread_cond_broadcast(&r->cond);
    while (k->wakers > 0) {
        pthread_cond_wait(&r->cond, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    dt_free(k);
}

size_t dt__remote_connections(dt__remote *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_conns;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* The SENT or QUEUED call a response is for: by token, else by instance (and task). Entity calls
 * (task_id INT32_MIN) take EntityBatchResults only (dt__remote_deliver_token). */
static dt__remote_call *match(dt__remote *r, bool is_orch, const char *token,
                              const char *instance_id, int32_t task_id)
{
    if (!is_orch && task_id == INT32_MIN) {
        return NULL;
    }
    if (token != NULL && token[0] != '\0') {
        for (dt__remote_call *c = r->calls; c != NULL; c = c->next) {
            if (c->is_orch == is_orch && (is_orch || c->task_id != INT32_MIN) &&
                strcmp(c->token, token) == 0 && strcmp(c->instance_id, instance_id) == 0) {
                return c;
            }
        }
    }
    for (dt__remote_call *c = r->calls; c != NULL; c = c->next) {
        if (c->is_orch == is_orch && c->state == CALL_SENT &&
            strcmp(c->instance_id, instance_id) == 0 && (is_orch || c->task_id == task_id)) {
            return c;
        }
    }
    return NULL;
}

/* Hands a parsed response (in arena a) to its call; DT_ENOTFOUND keeps a with the caller. */
static dt_status deliver(dt__remote *r, bool is_orch, const char *token, const char *instance_id,
                         int32_t task_id, dt__arena *a, void *resp)
{
    pthread_mutex_lock(&r->mu);
    dt__remote_call *c = match(r, is_orch, token, instance_id, task_id);
    if (c == NULL) {
        pthread_mutex_unlock(&r->mu);
        return DT_ENOTFOUND;
    }
    c->arena = a; /* before the state: settle_and_wake may drop the lock */
    c->resp = resp;
    settle_and_wake(r, c, CALL_DONE);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    return DT_OK;
}

dt_status dt__remote_deliver_token(dt__remote *r, const char *token, dt__arena *a, void *resp)
{
    pthread_mutex_lock(&r->mu);
    for (dt__remote_call *c = r->calls; c != NULL; c = c->next) {
        if (!c->is_orch && c->task_id == INT32_MIN && strcmp(c->token, token) == 0) {
            c->arena = a;
            c->resp = resp;
            settle_and_wake(r, c, CALL_DONE);
            pthread_cond_broadcast(&r->cond);
            pthread_mutex_unlock(&r->mu);
            return DT_OK;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return DT_ENOTFOUND;
}

dt_status dt__remote_complete_orchestration(dt__remote *r, const uint8_t *req, size_t len)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    Dtpb__Remote__OrchestratorResponse *resp = dt__remote_parse_orch_response(a, req, len);
    dt_status st = resp == NULL
                       ? DT_EINVAL
                       : deliver(r, true, resp->completion_token, resp->instance_id, 0, a, resp);
    if (st != DT_OK) {
        dt__arena_destroy(a);
    }
    return st;
}

dt_status dt__remote_complete_activity(dt__remote *r, const uint8_t *req, size_t len)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    Dtpb__Remote__ActivityResponse *resp = dt__remote_parse_act_response(a, req, len);
    dt_status st = resp == NULL ? DT_EINVAL
                                : deliver(r, false, resp->completion_token, resp->instance_id,
                                          resp->task_id, a, resp);
    if (st != DT_OK) {
        dt__arena_destroy(a);
    }
    return st;
}

dt_status dt__remote_abandon(dt__remote *r, const uint8_t *req, size_t len)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    Dtpb__Remote__AbandonTaskRequest *m = (Dtpb__Remote__AbandonTaskRequest *)dt__arena_unpack(
        a, &dtpb__remote__abandon_task_request__descriptor, len, req);
    dt_status st = DT_EINVAL;
    if (m != NULL && m->completion_token != NULL && m->completion_token[0] != '\0') {
        st = DT_ENOTFOUND;
        pthread_mutex_lock(&r->mu);
        for (dt__remote_call *c = r->calls; c != NULL; c = c->next) {
            if (strcmp(c->token, m->completion_token) == 0) {
                settle_and_wake(r, c, CALL_ABANDONED); /* its waiter leaves it for redelivery */
                pthread_cond_broadcast(&r->cond);
                st = DT_OK;
                break;
            }
        }
        pthread_mutex_unlock(&r->mu);
    }
    dt__arena_destroy(a);
    return st;
}

/* ---- shutdown ---- */

void dt__remote_shutdown(dt__remote *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->closed = true;
    while (r->calls != NULL) {
        settle_call(r, r->calls, CALL_ABANDONED);
    }
    for (dt__remote_conn *k = r->conns; k != NULL; k = k->next) {
        wake_conn(r, k); /* its stream polls, gets DT_ECLOSED and ends */
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

void dt__remote_destroy(dt__remote *r)
{
    if (r == NULL) {
        return;
    }
    dt__remote_shutdown(r);
    pthread_mutex_lock(&r->mu);
    while (r->waiters > 0) { /* abandoned activity threads still inside a wait */
        pthread_cond_wait(&r->cond, &r->mu);
    }
    while (r->conns != NULL) { /* the transport should have disconnected them */
        dt__remote_conn *k = r->conns;
        r->conns = k->next;
        dt_free(k);
    }
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free_names(r->orchs, r->opt.n_orchestrations);
    free_names(r->acts, r->opt.n_activities);
    dt_free(r->task_queue);
    dt_free(r);
}
