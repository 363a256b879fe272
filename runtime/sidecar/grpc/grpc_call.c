/*
 * grpc_call.c: the call object that handlers use, and the threads they run on.
 *
 * A call is shared by the event loop (its HTTP/2 stream) and its handler thread, and counted:
 * the loop holds one reference until the stream closes, the handler one until its thread ends,
 * the ready list one while the call waits there for the loop. Every shared field is guarded by
 * the server's mutex; the call's condition variable serves both of the handler's waits (room in
 * the send queue; a wake-up or cancellation).
 */
#include "grpc_int.h"

#include <string.h>

#include "common_int.h"

dt__grpc_call *dt__grpc_call_new(dt__grpc_server *s, dt__grpc_conn *conn, int32_t stream_id)
{
    dt__grpc_call *call = dt_calloc(1, sizeof *call);
    if (call == NULL) {
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&call->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        dt_free(call);
        return NULL;
    }
    call->srv = s;
    call->conn = conn;
    call->stream_id = stream_id;
    call->refs = 1;
    return call;
}

static void call_free(dt__grpc_call *call)
{
    dt__grpc_buf *b = call->out_head;
    while (b != NULL) {
        dt__grpc_buf *next = b->next;
        dt_free(b);
        b = next;
    }
    pthread_cond_destroy(&call->cond);
    dt_free(call->path);
    dt_free(call->in);
    dt_free(call->message);
    dt_free(call);
}

void dt__grpc_call_unref(dt__grpc_call *call)
{
    if (call == NULL) {
        return;
    }
    pthread_mutex_lock(&call->srv->mu);
    int left = --call->refs;
    pthread_mutex_unlock(&call->srv->mu);
    if (left == 0) {
        call_free(call);
    }
}

void dt__grpc_call_cancel(dt__grpc_call *call)
{
    pthread_mutex_lock(&call->srv->mu);
    call->cancelled = true;
    pthread_cond_broadcast(&call->cond);
    pthread_mutex_unlock(&call->srv->mu);
}

/* Puts the call on the loop's ready list (s->mu held). */
static void make_ready(dt__grpc_call *call)
{
    dt__grpc_server *s = call->srv;
    if (call->queued || s->stopping) {
        return;
    }
    call->queued = true;
    call->refs++;
    call->ready_next = s->ready;
    s->ready = call;
}

static void *handler_main(void *arg)
{
    dt__grpc_call *call = arg;
    dt__grpc_server *s = call->srv;
    call->m->fn(call, call->m->ctx);
    pthread_mutex_lock(&s->mu);
    bool finished = call->finished;
    pthread_mutex_unlock(&s->mu);
    if (!finished) {
        dt__grpc_call_finish(call, DT_GRPC_INTERNAL, "the handler returned without a status");
    }
    pthread_mutex_lock(&s->mu);
    s->nwaiting -= call->m->waits ? 1 : 0;
    if (--s->nhandlers == 0) {
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    dt__grpc_call_unref(call);
    return NULL;
}

bool dt__grpc_call_dispatch(dt__grpc_call *call)
{
    dt__grpc_server *s = call->srv;
    /* Waiting calls leave a reserve of handlers for the calls that end them (grpc_server.h). */
    uint32_t reserve = s->o.max_calls / 8 > 0 ? s->o.max_calls / 8 : 1;
    uint32_t max_waiting = s->o.max_calls > reserve ? s->o.max_calls - reserve : 0;
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->nhandlers >= s->o.max_calls ||
        (call->m->waits && s->nwaiting >= max_waiting)) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    s->nhandlers++;
    s->nwaiting += call->m->waits ? 1 : 0;
    call->refs++;
    pthread_mutex_unlock(&s->mu);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, handler_main, call);
    pthread_attr_destroy(&attr);
    if (rc == 0) {
        call->dispatched = true;
        return true;
    }
    pthread_mutex_lock(&s->mu);
    s->nhandlers--;
    s->nwaiting -= call->m->waits ? 1 : 0;
    call->refs--;
    if (s->nhandlers == 0) {
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    return false;
}

const uint8_t *dt__grpc_call_request(const dt__grpc_call *call, size_t *out_len)
{
    *out_len = call->in_len;
    return call->in != NULL ? call->in : (const uint8_t *)"";
}

const char *dt__grpc_call_path(const dt__grpc_call *call)
{
    return call->path;
}

int64_t dt__grpc_call_deadline(const dt__grpc_call *call)
{
    return call->deadline;
}

dt_status dt__grpc_call_send(dt__grpc_call *call, const void *msg, size_t len)
{
    dt__grpc_server *s = call->srv;
    if (len > s->o.max_message) {
        return DT_ETOOLARGE;
    }
    dt__grpc_buf *b = dt_alloc(sizeof *b + 5 + len);
    if (b == NULL) {
        return DT_ENOMEM;
    }
    b->next = NULL;
    b->off = 0;
    b->len = 5 + len;
    b->data[0] = 0; /* not compressed */
    b->data[1] = (uint8_t)(len >> 24);
    b->data[2] = (uint8_t)(len >> 16);
    b->data[3] = (uint8_t)(len >> 8);
    b->data[4] = (uint8_t)len;
    if (len > 0) {
        memcpy(b->data + 5, msg, len);
    }
    pthread_mutex_lock(&s->mu);
    while (call->out_bytes > DT__GRPC_SEND_HIGH && !call->cancelled) {
        pthread_cond_wait(&call->cond, &s->mu);
    }
    if (call->cancelled || call->finished) {
        pthread_mutex_unlock(&s->mu);
        dt_free(b);
        return DT_ECLOSED;
    }
    if (call->out_tail != NULL) {
        call->out_tail->next = b;
    } else {
        call->out_head = b;
    }
    call->out_tail = b;
    call->out_bytes += b->len;
    make_ready(call);
    pthread_mutex_unlock(&s->mu);
    dt__grpc_server_poke(s);
    return DT_OK;
}

void dt__grpc_call_finish(dt__grpc_call *call, dt__grpc_code code, const char *message)
{
    dt__grpc_server *s = call->srv;
    char *copy = message != NULL ? dt_strdup(message) : NULL;
    pthread_mutex_lock(&s->mu);
    if (call->finished) {
        pthread_mutex_unlock(&s->mu);
        dt_free(copy);
        return;
    }
    call->finished = true;
    call->code = code;
    call->message = copy;
    make_ready(call);
    pthread_mutex_unlock(&s->mu);
    dt__grpc_server_poke(s);
}

bool dt__grpc_call_cancelled(dt__grpc_call *call)
{
    pthread_mutex_lock(&call->srv->mu);
    bool c = call->cancelled;
    pthread_mutex_unlock(&call->srv->mu);
    return c;
}

bool dt__grpc_call_wait(dt__grpc_call *call, int64_t timeout_ms)
{
    dt__grpc_server *s = call->srv;
    struct timespec until = dt__deadline_in(CLOCK_MONOTONIC, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (!call->woken && !call->cancelled) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&call->cond, &s->mu);
        } else if (pthread_cond_timedwait(&call->cond, &s->mu, &until) != 0) {
            break;
        }
    }
    call->woken = false;
    bool live = !call->cancelled;
    pthread_mutex_unlock(&s->mu);
    return live;
}

void dt__grpc_call_wake(void *arg)
{
    dt__grpc_call *call = arg;
    pthread_mutex_lock(&call->srv->mu);
    call->woken = true;
    pthread_cond_broadcast(&call->cond);
    pthread_mutex_unlock(&call->srv->mu);
}

size_t dt__grpc_call_take(dt__grpc_call *call, uint8_t *buf, size_t len, bool *eof)
{
    dt__grpc_server *s = call->srv;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    while (n < len && call->out_head != NULL) {
        dt__grpc_buf *b = call->out_head;
        size_t k = b->len - b->off;
        if (k > len - n) {
            k = len - n;
        }
        memcpy(buf + n, b->data + b->off, k);
        b->off += k;
        n += k;
        if (b->off == b->len) {
            call->out_head = b->next;
            if (call->out_head == NULL) {
                call->out_tail = NULL;
            }
            dt_free(b);
        }
    }
    call->out_bytes -= n;
    if (n > 0) {
        pthread_cond_broadcast(&call->cond);
    }
    *eof = call->finished && call->out_head == NULL;
    pthread_mutex_unlock(&s->mu);
    return n;
}
