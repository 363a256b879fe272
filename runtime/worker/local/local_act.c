/*
 * The in-process activity executor (local_act_int.h says when and why a request runs here).
 *
 * Its threads never touch the broker: a result goes to the partition's inbox, and when that is
 * closed (the partition moved on) the result is dropped, because the request's outbox row is
 * still there for the next owner, who publishes it through JetStream; the activity then runs
 * again, as it would after any lost delivery.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common_int.h"
#include "durabletask/alloc.h"
#include "local_act_int.h"
#include "metrics_int.h"
#include "trace_int.h"

/* Activities shorter than this on average may queue behind each other here ... */
#define LOCAL_FAST_US 500
/* ... as many per thread as take about this long to run (so a queued request waits at most a
 * few milliseconds), at least LOCAL_QUEUE_MIN and at most LOCAL_QUEUE_MAX per thread; beyond,
 * requests go to the fleet through JetStream. */
#define LOCAL_QUEUE_BUDGET_US 4000
#define LOCAL_QUEUE_MIN       16
#define LOCAL_QUEUE_MAX       1024

typedef struct job {
    struct job *next;
    dt__inbox *in; /* retained */
    const dt__act_queue *q;
    const dt__activity_def *def;
    Dtpb__ActivityRequest *req; /* protobuf-c's allocator */
    dt__local_result *r;        /* allocated up front, so that a result can always be delivered */
} job;

struct dt__local_acts {
    dt__local_acts_config cfg;
    char *hub;
    dt__act_queue *queues;
    size_t n_queues;
    char act_prefix[DT_BROKER_NAME_BUF];  /* dt.<hub>.act. */
    char orch_prefix[DT_BROKER_NAME_BUF]; /* dt.<hub>.orch. */
    atomic_llong avg_us;                  /* EWMA of run times; 0: none yet */
    atomic_int refs;                      /* the owner's and one per live thread */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* jobs queued; threads exiting; stop */
    /* Guarded by mu: */
    job *head, *tail;
    size_t queued, running, live;
    bool stopping, stopped;
};

static void job_free(job *j)
{
    if (j == NULL) {
        return;
    }
    if (j->req != NULL) {
        dtpb__activity_request__free_unpacked(j->req, NULL);
    }
    dt__local_results_free(j->r);
    dt__inbox_release(j->in);
    dt_free(j);
}

static void la_release(dt__local_acts *la)
{
    if (atomic_fetch_sub(&la->refs, 1) != 1) {
        return;
    }
    dt__act_queues_free(la->queues, la->n_queues);
    pthread_cond_destroy(&la->cond);
    pthread_mutex_destroy(&la->mu);
    dt_free(la->hub);
    dt_free(la);
}

/* Fills j->r from one run of the activity (ran stays false when it could not run or pack). */
static void run_job(dt__local_acts *la, job *j)
{
    dt__arena *a = dt__arena_create(4096);
    const Dtpb__ActivityRequest *req = j->req;
    if (a == NULL || dt__act_request_problem(a, la->orch_prefix, req) != NULL) {
        dt__arena_destroy(a); /* published instead: the pool dead-letters what is malformed */
        return;
    }
    dt_activity_ctx ctx;
    if (dt__act_ctx_init(&ctx, NULL, 0, req, 1, 1000, a) != DT_OK) {
        dt__arena_destroy(a);
        return;
    }
    /* Not for a partition that is gone (its next owner publishes the request: running it here
     * too would only run it twice), nor once stop() returned (the tracer and the metrics may be
     * gone: an abandoned thread); under mu, as every use of them here. */
    pthread_mutex_lock(&la->mu);
    bool go = !la->stopped && dt__inbox_is_open(j->in);
    if (go) {
        ctx.span = dt__trace_activity_local(la->cfg.tracer, req, j->q->name);
        dt__metrics_activity_started(la->cfg.metrics, req->name); /* metrics */
    }
    pthread_mutex_unlock(&la->mu);
    if (!go) {
        dt__act_ctx_clear(&ctx);
        dt__arena_destroy(a);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j->def->fn(&ctx, j->def->user_data);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    us = us > 0 ? us : 1;
    if (ctx.abandon) { /* forwarded and not answered (runtime/remote): through the queue */
        pthread_mutex_lock(&la->mu); /* as below: once stop() returned, the tracer may be gone */
        if (la->stopped && ctx.span != NULL) {
            dt__span_free(ctx.span);
            ctx.span = NULL;
        }
        dt__act_ctx_clear(&ctx);
        pthread_mutex_unlock(&la->mu);
        dt__arena_destroy(a);
        return;
    }
    long long avg = atomic_load(&la->avg_us);
    atomic_store(&la->avg_us, avg == 0 ? us : (7 * avg + us) / 8);
    dt__act_outcome o;
    dt__act_ctx_outcome(&ctx, &o);
    if (la->cfg.metrics != NULL) { /* metrics; under mu: after stop() the registry may be gone */
        pthread_mutex_lock(&la->mu);
        if (!la->stopped) {
            dt__metrics_activity_done(la->cfg.metrics, req->name, us, o.failed);
        }
        pthread_mutex_unlock(&la->mu);
    }
    dt__act_result res;
    dt_status st = dt__act_result_pack(a, req, &o, la->cfg.max_msg, &res);
    if (ctx.span != NULL) {
        /* Under mu, as the log below: once stop() returned, the tracer may be gone. */
        pthread_mutex_lock(&la->mu);
        if (la->stopped) {
            dt__span_free(ctx.span);
            ctx.span = NULL;
        }
        dt__trace_activity_end(&ctx);
        pthread_mutex_unlock(&la->mu);
    }
    dt__act_ctx_clear(&ctx);
    dt__local_result *r = j->r;
    if (st == DT_OK) {
        r->subject = dt_strdup(res.subject);
        r->msg_id = dt_strdup(res.msg_id);
        r->data = (uint8_t *)dt_memdup(res.data, res.len);
        r->len = res.len;
        r->ran = r->subject != NULL && r->msg_id != NULL && r->data != NULL;
    }
    if (!r->ran && la->cfg.log != NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "activity '%s' (task %d) ran in-process but its result could not be packed "
                 "(%s); it runs again through the task queue",
                 req->name, (int)req->task_id, dt_status_name(st == DT_OK ? DT_ENOMEM : st));
        /* Under mu: once stop() returned, the sink may be gone (an abandoned thread). */
        pthread_mutex_lock(&la->mu);
        if (!la->stopped) {
            la->cfg.log(DT_LOG_ERROR, req->instance_id, msg, la->cfg.log_ctx);
        }
        pthread_mutex_unlock(&la->mu);
    }
    dt__arena_destroy(a);
}

static void *thread_main(void *arg)
{
    dt__local_acts *la = arg;
    pthread_mutex_lock(&la->mu);
    for (;;) {
        while (la->head == NULL && !la->stopping) {
            pthread_cond_wait(&la->cond, &la->mu);
        }
        if (la->stopping) {
            break; /* stop() dropped what was queued */
        }
        job *j = la->head;
        la->head = j->next;
        if (la->head == NULL) {
            la->tail = NULL;
        }
        la->queued--;
        la->running++;
        pthread_mutex_unlock(&la->mu);
        run_job(la, j);
        if (dt__inbox_put_local(j->in, j->r)) {
            j->r = NULL; /* the partition's now */
        }
        job_free(j);
        pthread_mutex_lock(&la->mu);
        la->running--;
        pthread_cond_broadcast(&la->cond);
    }
    la->live--;
    pthread_cond_broadcast(&la->cond);
    pthread_mutex_unlock(&la->mu);
    la_release(la);
    return NULL;
}

/* "dt.<hub>.<kind>." into buf. */
static dt_status prefix(const char *hub, dt_broker_family kind, char *buf, size_t len)
{
    dt_status st = dt_broker_subject(hub, kind, "x", buf, len);
    if (st == DT_OK) {
        buf[strlen(buf) - 1] = '\0';
    }
    return st;
}

dt_status dt__local_acts_start(const dt__local_acts_config *cfg, dt__local_acts **out, char *err,
                               size_t errlen)
{
    if (cfg == NULL || cfg->hub == NULL || out == NULL || cfg->threads == 0 ||
        cfg->threads > DT__ACT_MAX_THREADS || cfg->max_msg == 0) {
        snprintf(err, errlen, "local activities: invalid configuration");
        return DT_EINVAL;
    }
    dt__local_acts *la = dt_calloc(1, sizeof(*la));
    if (la == NULL) {
        return DT_ENOMEM;
    }
    la->cfg = *cfg;
    la->hub = dt_strdup(cfg->hub);
    atomic_init(&la->avg_us, 0);
    atomic_init(&la->refs, 1);
    dt_status st = la->hub != NULL ? DT_OK : DT_ENOMEM;
    if (st == DT_OK) {
        st = dt__act_queues_build(la->hub, cfg->defs, cfg->n_defs, &la->queues, &la->n_queues, err,
                                  errlen);
    }
    if (st == DT_OK) {
        st = prefix(la->hub, DT_BROKER_SUBJ_ACT, la->act_prefix, sizeof(la->act_prefix));
    }
    if (st == DT_OK) {
        st = prefix(la->hub, DT_BROKER_SUBJ_ORCH, la->orch_prefix, sizeof(la->orch_prefix));
    }
    if (st != DT_OK || pthread_mutex_init(&la->mu, NULL) != 0) {
        dt__act_queues_free(la->queues, la->n_queues);
        dt_free(la->hub);
        dt_free(la);
        return st != DT_OK ? st : DT_ENOMEM;
    }
    pthread_cond_init(&la->cond, NULL);
    for (size_t i = 0; i < cfg->threads; i++) {
        pthread_t t;
        atomic_fetch_add(&la->refs, 1);
        pthread_mutex_lock(&la->mu);
        la->live++;
        pthread_mutex_unlock(&la->mu);
        if (pthread_create(&t, NULL, thread_main, la) != 0) {
            pthread_mutex_lock(&la->mu);
            la->live--;
            pthread_mutex_unlock(&la->mu);
            atomic_fetch_sub(&la->refs, 1);
            break; /* fewer threads: the capacity check counts the live ones */
        }
        pthread_detach(t);
    }
    *out = la;
    return DT_OK;
}

/* The served queue a request subject names, or NULL. */
static const dt__act_queue *queue_of(const dt__local_acts *la, const char *subject)
{
    size_t pl = strlen(la->act_prefix);
    if (strncmp(subject, la->act_prefix, pl) != 0) {
        return NULL;
    }
    for (size_t i = 0; i < la->n_queues; i++) {
        if (strcmp(la->queues[i].name, subject + pl) == 0) {
            return &la->queues[i];
        }
    }
    return NULL;
}

/* Whether a thread would take one more request soon; mu held. */
static bool has_room(const dt__local_acts *la)
{
    if (la->stopping) {
        return false;
    }
    if (la->queued + la->running < la->live) {
        return true; /* a thread is idle */
    }
    long long avg = atomic_load(&la->avg_us);
    if (avg <= 0 || avg >= LOCAL_FAST_US) {
        return false;
    }
    size_t per = (size_t)(LOCAL_QUEUE_BUDGET_US / avg);
    per = per < LOCAL_QUEUE_MIN ? LOCAL_QUEUE_MIN : (per > LOCAL_QUEUE_MAX ? LOCAL_QUEUE_MAX : per);
    return la->queued < la->live * per;
}

bool dt__local_acts_submit(dt__local_acts *la, dt__inbox *in, int64_t row_id, const char *subject,
                           const uint8_t *data, size_t len)
{
    const dt__act_queue *q = queue_of(la, subject);
    if (q == NULL) {
        return false;
    }
    pthread_mutex_lock(&la->mu);
    bool room = has_room(la);
    pthread_mutex_unlock(&la->mu);
    if (!room) {
        return false;
    }
    job *j = dt_calloc(1, sizeof(*j));
    if (j == NULL) {
        return false;
    }
    j->q = q;
    j->req = dtpb__activity_request__unpack(NULL, len, data);
    j->def = j->req != NULL && j->req->name != NULL ? dt__act_queue_find(q, j->req->name) : NULL;
    j->r = j->def != NULL ? dt_calloc(1, sizeof(*j->r)) : NULL;
    if (j->r == NULL) {
        job_free(j); /* not served here (another worker's activity), or out of memory */
        return false;
    }
    j->r->row_id = row_id;
    dt__inbox_retain(in);
    j->in = in;
    pthread_mutex_lock(&la->mu);
    room = !la->stopping;
    if (room) {
        if (la->tail != NULL) {
            la->tail->next = j;
        } else {
            la->head = j;
        }
        la->tail = j;
        la->queued++;
        pthread_cond_signal(&la->cond);
    }
    pthread_mutex_unlock(&la->mu);
    if (!room) {
        job_free(j);
    }
    return room;
}

void dt__local_acts_stop(dt__local_acts *la, int64_t timeout_ms)
{
    if (la == NULL) {
        return;
    }
    struct timespec until = dt__deadline_in(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&la->mu);
    if (la->stopped) {
        pthread_mutex_unlock(&la->mu);
        return;
    }
    la->stopping = la->stopped = true;
    job *left = la->head;
    la->head = la->tail = NULL;
    la->queued = 0;
    pthread_cond_broadcast(&la->cond);
    while (la->live > 0 && pthread_cond_timedwait(&la->cond, &la->mu, &until) == 0) {
    }
    size_t abandoned = la->live;
    pthread_mutex_unlock(&la->mu);
    while (left != NULL) {
        job *next = left->next;
        /* Not run: its partition publishes it through JetStream, if it still runs. */
        if (dt__inbox_put_local(left->in, left->r)) {
            left->r = NULL;
        }
        job_free(left);
        left = next;
    }
    if (abandoned > 0 && la->cfg.log != NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "%zu in-process activities still running at stop were abandoned (they run "
                 "again through the task queue)",
                 abandoned);
        la->cfg.log(DT_LOG_WARN, NULL, msg, la->cfg.log_ctx);
    }
}

void dt__local_acts_destroy(dt__local_acts *la)
{
    if (la == NULL) {
        return;
    }
    dt__local_acts_stop(la, 0);
    la_release(la); /* threads still running hold their own references */
}
