/*
 * The status observer (see bench.h): one KV watch over the whole status bucket, on its own
 * connection and thread, so that completions are seen the way a client sees them (the status
 * record the worker writes) without one watch per instance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "dt_work.pb-c.h"

#define WATCH_POLL_MS 200
/* A wait gives up when no instance made progress for this long (a stuck worker). */
#define BENCH_STALL_MS 60000.0

struct bench_observer {
    dt_broker *broker;
    dt_broker_kv *kv;
    dt_broker_kv_watcher *w;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* The current round (guarded by mu). */
    char prefix[64];
    size_t prefix_len;
    size_t n;
    double *done_at; /* [n]: time the finished record was seen, 0: not yet */
    bool *running;   /* [n]: a RUNNING (or later) record was seen */
    size_t n_done, n_running, n_failed;
};

static bool is_finished(int s)
{
    return s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED;
}

/* The round index of instance `id`, or SIZE_MAX when it is not "<prefix>-<i>" (caller holds mu). */
static size_t index_of(const bench_observer *ob, const char *id)
{
    if (ob->n == 0 || strncmp(id, ob->prefix, ob->prefix_len) != 0 || id[ob->prefix_len] != '-') {
        return SIZE_MAX;
    }
    char *end = NULL;
    unsigned long long i = strtoull(id + ob->prefix_len + 1, &end, 10);
    return (*end == '\0' && i < ob->n) ? (size_t)i : SIZE_MAX;
}

static void record(bench_observer *ob, const Dtpb__InstanceStatus *s, double now)
{
    pthread_mutex_lock(&ob->mu);
    size_t i = index_of(ob, s->instance_id);
    if (i != SIZE_MAX) {
        if (!ob->running[i] &&
            s->runtime_status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING) {
            ob->running[i] = true;
            ob->n_running++;
        }
        if (ob->done_at[i] == 0 && is_finished(s->runtime_status)) {
            ob->done_at[i] = now;
            ob->n_done++;
            ob->n_failed +=
                s->runtime_status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
        }
        pthread_cond_broadcast(&ob->cond);
    }
    pthread_mutex_unlock(&ob->mu);
}

static void *observer_main(void *arg)
{
    bench_observer *ob = arg;
    for (;;) {
        dt_broker_kv_entry e = {0};
        dt_status st = dt_broker_kv_watcher_next(ob->w, WATCH_POLL_MS, &e);
        if (st == DT_ECLOSED) {
            break;
        }
        if (st != DT_OK) {
            continue;
        }
        double now = bench_now_ms();
        Dtpb__InstanceStatus *s =
            e.op == DT_BROKER_KV_PUT ? dtpb__instance_status__unpack(NULL, e.len, e.value) : NULL;
        if (s != NULL && s->instance_id != NULL) {
            record(ob, s, now);
        }
        if (s != NULL) {
            dtpb__instance_status__free_unpacked(s, NULL);
        }
        dt_broker_kv_entry_clear(&e);
    }
    return NULL;
}

static bool open_watch(const bench_opts *o, bench_hub *h, bench_observer *ob)
{
    char bucket[DT_BROKER_NAME_BUF], err[256];
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->url;
    bo.name = "dt-bench-observer";
    if (dt_broker_connect(&bo, &ob->broker, err, sizeof(err)) != DT_OK) {
        bench_note("status observer: %s", err);
        return false;
    }
    if (dt_broker_bucket_name(h->name, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket)) != DT_OK ||
        dt_broker_kv_open(ob->broker, bucket, &ob->kv) != DT_OK) {
        return false;
    }
    dt_broker_kv_watch_options wo = {.updates_only = true};
    return dt_broker_kv_watch(ob->kv, ">", &wo, &ob->w) == DT_OK;
}

static void observer_free(bench_observer *ob)
{
    dt_broker_kv_watcher_destroy(ob->w);
    dt_broker_kv_close(ob->kv);
    dt_broker_close(ob->broker);
    free(ob->done_at);
    free(ob->running);
    pthread_cond_destroy(&ob->cond);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
}

bool bench_observer_start(const bench_opts *o, bench_hub *h, bench_observer **out)
{
    bench_observer *ob = calloc(1, sizeof(*ob));
    if (ob == NULL) {
        return false;
    }
    pthread_mutex_init(&ob->mu, NULL);
    pthread_cond_init(&ob->cond, NULL);
    if (!open_watch(o, h, ob) || pthread_create(&ob->thread, NULL, observer_main, ob) != 0) {
        bench_note("status observer: cannot watch the status bucket of %s", h->name);
        observer_free(ob);
        return false;
    }
    *out = ob;
    return true;
}

void bench_observer_stop(bench_observer *ob)
{
    if (ob == NULL) {
        return;
    }
    dt_broker_kv_watcher_stop(ob->w);
    pthread_join(ob->thread, NULL);
    observer_free(ob);
}

void bench_observer_round(bench_observer *ob, const char *prefix, size_t n)
{
    double *done = calloc(n, sizeof(*done));
    bool *running = calloc(n, sizeof(*running));
    pthread_mutex_lock(&ob->mu);
    free(ob->done_at);
    free(ob->running);
    ob->done_at = done;
    ob->running = running;
    ob->n = done != NULL && running != NULL ? n : 0;
    snprintf(ob->prefix, sizeof(ob->prefix), "%s", prefix);
    ob->prefix_len = strlen(ob->prefix);
    ob->n_done = ob->n_running = ob->n_failed = 0;
    pthread_mutex_unlock(&ob->mu);
}

size_t bench_observer_wait(bench_observer *ob, size_t count, bool want_finished, int64_t timeout_ms)
{
    double now = bench_now_ms(), deadline = now + (double)timeout_ms, progress_at = now;
    size_t last = SIZE_MAX;
    pthread_mutex_lock(&ob->mu);
    for (;;) {
        size_t have = want_finished ? ob->n_done : ob->n_running;
        now = bench_now_ms();
        if (have != last) {
            last = have;
            progress_at = now;
        }
        double left = deadline - now;
        if (have >= count || left <= 0 || now - progress_at > BENCH_STALL_MS) {
            pthread_mutex_unlock(&ob->mu);
            return have;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(left < 50 ? left : 50) * 1000000L;
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&ob->cond, &ob->mu, &ts);
    }
}

double bench_observer_done_at(bench_observer *ob, size_t i)
{
    pthread_mutex_lock(&ob->mu);
    double t = i < ob->n ? ob->done_at[i] : 0;
    pthread_mutex_unlock(&ob->mu);
    return t;
}

size_t bench_observer_failed(bench_observer *ob)
{
    pthread_mutex_lock(&ob->mu);
    size_t n = ob->n_failed;
    pthread_mutex_unlock(&ob->mu);
    return n;
}

/* ---- a hub with its observer and worker ---- */

bool bench_setup_open(const bench_opts *o, const char *prefix, size_t cache, bench_setup *s)
{
    memset(s, 0, sizeof(*s));
    if (!bench_hub_create(o, prefix, &s->hub)) {
        return false;
    }
    if (!bench_observer_start(o, &s->hub, &s->ob)) {
        bench_hub_destroy(&s->hub);
        return false;
    }
    if (!bench_worker_start(o, &s->hub, cache, &s->w)) {
        bench_observer_stop(s->ob);
        bench_hub_destroy(&s->hub);
        return false;
    }
    return true;
}

void bench_setup_close(bench_setup *s)
{
    bench_worker_stop(&s->w);
    bench_observer_stop(s->ob);
    bench_hub_destroy(&s->hub);
}
