/*
 * remote_priv_int.h: the state shared by runtime/remote's files (remote.c: connections, queues
 * and matching; attach.c: the worker hook and remote activities). Private to runtime/remote.
 *
 * Every item on its way to an SDK worker is a call. A call is QUEUED on one connection (its
 * packed work item waits there for a poll), then SENT (the transport took the bytes), then DONE
 * (a completion matched it: its parsed response is attached) or ABANDONED (its connection ended,
 * shutdown). The thread that made the call (a partition or activity thread) owns it and frees it;
 * the remote only links it in its lists while it is QUEUED or SENT, all under r->mu. A waiter
 * that gives up (its deadline, a stop) unlinks it itself under the same lock, so a late
 * completion finds nothing (DT_ENOTFOUND).
 */
#ifndef DT_REMOTE_PRIV_INT_H
#define DT_REMOTE_PRIV_INT_H

#include <pthread.h>

#include "common_int.h"
#include "convert_int.h"
#include "remote_worker_int.h"

typedef enum call_state { CALL_QUEUED, CALL_SENT, CALL_DONE, CALL_ABANDONED } call_state;

struct dt__remote_call {
    dt__remote *r;
    bool is_orch;
    char token[24];    /* completion token: a decimal serial number */
    char *instance_id; /* dt_alloc'd */
    int32_t task_id;   /* activities */
    uint8_t *item;     /* QUEUED: the packed WorkItem (dt_alloc'd), handed over by poll */
    size_t len;
    call_state state;                    /* under r->mu */
    dt__remote_conn *conn;               /* QUEUED / SENT */
    struct dt__remote_call *qnext;       /* the connection's FIFO of QUEUED calls */
    struct dt__remote_call *prev, *next; /* r's list of QUEUED and SENT calls */
    int64_t deadline_ms;                 /* monotonic; moved on when polled */
    int64_t timeout_ms;                  /* for each of the two waits */
    /* DONE: the response, parsed into `arena` (the call owns both until taken). */
    dt__arena *arena;
    void *resp;
    /* Orchestrations: what the response is converted against (borrowed from the sender). */
    const dt__episode_input *in;
    const char *execution_id;
    size_t max_payload;
    dt__episode_result ready; /* a result made without an SDK worker (terminate); ready_set */
    bool ready_set;
};

struct dt__remote_conn {
    dt__remote *r;
    void (*wake)(void *arg);
    void *arg;
    dt__remote_call *head, *tail; /* QUEUED calls, oldest first */
    size_t queued;
    size_t sent; /* SENT calls (at most opt.max_inflight) */
    int wakers;  /* wake() calls running without the lock; disconnect waits for them */
    struct dt__remote_conn *next;
};

struct dt__remote {
    dt__remote_options opt; /* strings point at the copies below */
    char **orchs;           /* sorted */
    char **acts;            /* sorted */
    char *task_queue;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* any call's state changed; a connection's wakers dropped to 0 */
    dt__remote_conn *conns;
    dt__remote_conn *rr; /* the next connection to try (round robin) */
    size_t n_conns;
    dt__remote_call *calls; /* QUEUED and SENT */
    uint64_t serial;
    bool closed;
    int waiters; /* threads inside a wait: destroy waits for them */
    bool attached;
};

/* ---- remote.c ---- */
/* A new call of r (not yet queued); DT_ENOMEM. */
dt_status dt__remote_call_new(dt__remote *r, bool is_orch, const char *instance_id,
                              dt__remote_call **out);
void dt__remote_call_free(dt__remote_call *c);
/* Takes a QUEUED or SENT call out of every list (under r->mu); it ends ABANDONED. */
void dt__remote_call_withdraw(dt__remote *r, dt__remote_call *c);
/* Queues c (its item packed with c->token) on a connection. DT_ECLOSED when none can take it. */
dt_status dt__remote_call_queue(dt__remote_call *c, int64_t timeout_ms);
/* Waits until c is DONE or ABANDONED, its deadline passes or *stop is set; a call still QUEUED or
 * SENT is then withdrawn. DT_OK (DONE), DT_ETIMEOUT, DT_ECLOSED; DT_EBUSY when max_wait_ms (0: no
 * bound) passed first (c stays as it is). */
dt_status dt__remote_call_wait(dt__remote_call *c, const atomic_bool *stop, int64_t max_wait_ms);
/* Hands the parsed response `resp` (living in arena a) to the entity call with this completion
 * token (an entity call's task_id is INT32_MIN). DT_ENOTFOUND (a stays the caller's). */
dt_status dt__remote_deliver_token(dt__remote *r, const char *token, dt__arena *a, void *resp);
/* Waits up to timeout_ms (checking *stop) until a connection is open; false when none came. */
bool dt__remote_await_conn(dt__remote *r, int64_t timeout_ms, const atomic_bool *stop);

#endif
