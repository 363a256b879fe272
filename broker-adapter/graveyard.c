/*
 * Batched destruction of nats.c messages.
 *
 * natsMsg_Destroy does not free: it pushes the message onto nats.c's library-wide garbage list
 * and, when the collector thread sleeps, wakes it (a futex wake under the list's lock, and the
 * collector then contends for that lock). Measured in the worker (docs/performance.md): that
 * thread was the largest single source of context switches, because the worker destroyed
 * messages one at a time between other work (an ack, a publish), waking the collector for
 * nearly every message. Destroying the messages of a batch in one tight loop wakes it once per
 * burst: the rest land on the list while it is still waking up.
 */
#include "broker_int.h"

void dt__graveyard_init(dt__graveyard *g, size_t max, size_t max_bytes)
{
    pthread_mutex_init(&g->mu, NULL);
    g->msgs = NULL;
    g->n = 0;
    g->cap = 0;
    g->bytes = 0;
    g->max = max;
    g->max_bytes = max_bytes;
}

/* Destroys msgs[0..n) (outside any lock). */
static void destroy_all(natsMsg **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        natsMsg_Destroy(msgs[i]);
    }
}

/* Grows the array (caller holds mu); false when full or out of memory. */
static bool grow(dt__graveyard *g)
{
    if (g->cap >= g->max) {
        return false;
    }
    size_t ncap = g->cap == 0 ? 64 : g->cap * 2;
    ncap = ncap > g->max ? g->max : ncap;
    natsMsg **nm = dt_realloc(g->msgs, ncap * sizeof(*nm));
    if (nm == NULL) {
        return false;
    }
    g->msgs = nm;
    g->cap = ncap;
    return true;
}

void dt__graveyard_bury(dt__graveyard *g, natsMsg *m)
{
    if (m == NULL) {
        return;
    }
    int len = natsMsg_GetDataLength(m);
    size_t size = len > 0 ? (size_t)len : 0;
    pthread_mutex_lock(&g->mu);
    if (g->bytes + size <= g->max_bytes && (g->n < g->cap || grow(g))) {
        g->msgs[g->n++] = m;
        g->bytes += size;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    pthread_mutex_unlock(&g->mu);
    dt__graveyard_flush(g); /* full: this thread empties it */
    natsMsg_Destroy(m);
}

/* Takes the array out so others keep burying meanwhile, destroys its messages, and puts the array
 * back for the next round unless another one was started meanwhile. */
void dt__graveyard_flush(dt__graveyard *g)
{
    pthread_mutex_lock(&g->mu);
    natsMsg **msgs = g->msgs;
    size_t n = g->n;
    size_t cap = g->cap;
    g->msgs = NULL;
    g->n = 0;
    g->cap = 0;
    g->bytes = 0;
    pthread_mutex_unlock(&g->mu);
    destroy_all(msgs, n);
    pthread_mutex_lock(&g->mu);
    if (g->msgs == NULL) { /* keep the array for the next round */
        g->msgs = msgs;
        g->cap = cap;
        msgs = NULL;
    }
    pthread_mutex_unlock(&g->mu);
    dt_free(msgs);
}

void dt__graveyard_fini(dt__graveyard *g)
{
    dt__graveyard_flush(g);
    dt_free(g->msgs);
    g->msgs = NULL;
    g->cap = 0;
    pthread_mutex_destroy(&g->mu);
}
