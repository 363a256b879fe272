/*
 * The worker: options, registration, start-up and shut-down, and the supervisor that runs one
 * partition thread per held lease. Logging (base/log.c) and orchestrator lookup
 * (base/registry.c) are in base/, which every part of the worker may call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics_worker_int.h"
#include "ingress_int.h"
#include "partition_int.h"
#include "supervisor_int.h"
#include "trace_int.h"

#define SUPERVISE_MS 200

static void set_err(dt_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(dt_worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
    va_end(ap);
}

const char *dt_worker_errmsg(const dt_worker *w)
{
    return w->errmsg;
}

const char *dt_worker_id(const dt_worker *w)
{
    return w->worker_id;
}

/* ---- creation and registration ---- */

/* Characters of worker IDs: valid in KV keys and consumer names. */
static bool id_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* A worker ID that is valid as a KV key and a consumer name: host-pid-random. */
static char *make_worker_id(void)
{
    char host[64] = "host", rnd[37], buf[128];
    gethostname(host, sizeof(host) - 1);
    for (char *c = host; *c != '\0'; c++) {
        if (!id_char_ok(*c)) {
            *c = '_';
        }
    }
    dt__random_uuid(rnd);
    snprintf(buf, sizeof(buf), "%.40s-%d-%.8s", host, (int)getpid(), rnd);
    return dt_strdup(buf);
}

static bool valid_worker_id(const char *id)
{
    if (id[0] == '\0' || strlen(id) > 100) {
        return false;
    }
    for (const char *c = id; *c != '\0'; c++) {
        if (!id_char_ok(*c)) {
            return false;
        }
    }
    return true;
}

static void defaults(dt_worker_options *o)
{
    o->activity_threads = o->activity_threads == 0 ? 4 : o->activity_threads;
    o->cache_capacity = o->cache_capacity == 0 ? 1000 : o->cache_capacity;
    o->fetch_batch = o->fetch_batch == 0 ? 256 : o->fetch_batch;
    o->fetch_batch = o->fetch_batch > DT_BROKER_FETCH_MAX ? DT_BROKER_FETCH_MAX : o->fetch_batch;
    o->activity_max_deliveries = o->activity_max_deliveries <= 0 ? 5 : o->activity_max_deliveries;
    o->activity_timeout_ms = o->activity_timeout_ms <= 0 ? 60000 : o->activity_timeout_ms;
    o->parked_event_ttl_ms = o->parked_event_ttl_ms <= 0 ? 3600000 : o->parked_event_ttl_ms;
    o->retention_check_ms = o->retention_check_ms <= 0 ? 60000 : o->retention_check_ms;
}

static dt_status check_options(const dt_worker_options *o, char *err, size_t len)
{
    if (o == NULL || o->hub == NULL || !dt_broker_hub_name_valid(o->hub)) {
        snprintf(err, len, "a valid hub name is required ([A-Za-z0-9_-], 1..%d characters)",
                 DT_BROKER_HUB_NAME_MAX);
        return DT_EINVAL;
    }
    if (o->data_dir == NULL || o->data_dir[0] == '\0') {
        snprintf(err, len, "data_dir is required (partition databases are kept there)");
        return DT_EINVAL;
    }
    if (o->worker_id != NULL && !valid_worker_id(o->worker_id)) {
        snprintf(err, len, "worker_id must be 1..100 characters of [A-Za-z0-9_-]");
        return DT_EINVAL;
    }
    return DT_OK;
}

dt_status dt_worker_create(const dt_worker_options *user, dt_worker **out, char *errbuf,
                           size_t errlen)
{
    char tmp[256];
    char *err = errbuf != NULL && errlen > 0 ? errbuf : tmp;
    size_t elen = errbuf != NULL && errlen > 0 ? errlen : sizeof(tmp);
    dt_worker_options copy; /* the caller's struct as this release lays it out */
    const dt_worker_options *o = NULL;
    if (user != NULL) {
        dt_status rs = dt__options_read(&copy, sizeof(copy), user, sizeof(copy));
        if (rs != DT_OK) {
            snprintf(err, elen, "worker options: struct_size %s",
                     rs == DT_EVERSION ? "of a newer release with fields set" : "invalid");
            return rs;
        }
        o = &copy;
    }
    dt_status st = check_options(o, err, elen);
    if (st != DT_OK) {
        return st;
    }
    dt_worker *w = dt_calloc(1, sizeof(*w));
    if (w == NULL) {
        return DT_ENOMEM;
    }
    w->opt = *o;
    defaults(&w->opt);
    w->nats_url = dt_strdup(o->nats_url != NULL ? o->nats_url : "nats://127.0.0.1:4222");
    w->hub = dt_strdup(o->hub);
    w->data_dir = dt_strdup(o->data_dir);
    w->worker_id = o->worker_id != NULL ? dt_strdup(o->worker_id) : make_worker_id();
    w->version = o->version != NULL ? dt_strdup(o->version) : NULL;
    w->opt.metrics_addr = o->metrics_addr != NULL ? dt_strdup(o->metrics_addr) : NULL;
    dt_status sec = dt__worker_security_copy(&w->opt.security, &o->security);
    dt_status trc = dt__tracer_from_env("durabletask-worker", &w->tracer);
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->sup_mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (w->nats_url == NULL || w->hub == NULL || w->data_dir == NULL || w->worker_id == NULL ||
        (o->version != NULL && w->version == NULL) || sec != DT_OK || trc == DT_ENOMEM ||
        (o->metrics_addr != NULL && w->opt.metrics_addr == NULL)) {
        dt_worker_destroy(w);
        return DT_ENOMEM;
    }
    *out = w;
    return DT_OK;
}

static bool name_ok(const char *name)
{
    return name != NULL && dt_broker_token_valid(name) && strlen(name) <= DT_NAME_MAX;
}

dt_status dt_worker_add_orchestrator(dt_worker *w, const char *name, dt_orchestrator_fn fn,
                                     void *user_data)
{
    if (w->started) {
        set_err(w, "orchestrators are registered before dt_worker_start");
        return DT_ESTATE;
    }
    if (!name_ok(name) || fn == NULL) {
        set_err(w, "invalid orchestrator name (no spaces, '.', '*' or '>') or NULL function");
        return DT_EINVAL;
    }
    for (size_t i = 0; i < w->n_orchs; i++) {
        if (strcmp(w->orchs[i].name, name) == 0) {
            set_err(w, "orchestrator '%s' is already registered", name);
            return DT_EEXIST;
        }
    }
    orch_def *g = dt_realloc(w->orchs, (w->n_orchs + 1) * sizeof(*g));
    if (g == NULL) {
        return DT_ENOMEM;
    }
    w->orchs = g;
    char *copy = dt_strdup(name);
    if (copy == NULL) {
        return DT_ENOMEM;
    }
    w->orchs[w->n_orchs++] = (orch_def){copy, fn, user_data};
    return DT_OK;
}

dt_status dt__worker_set_remote(dt_worker *w, struct dt__remote *r)
{
    if (w->started || w->remote != NULL) {
        return DT_ESTATE;
    }
    w->remote = r;
    return DT_OK;
}

dt_status dt_worker_add_activity(dt_worker *w, const char *name, const char *task_queue,
                                 dt_activity_fn fn, void *user_data)
{
    const char *queue = task_queue != NULL ? task_queue : "default";
    if (w->started) {
        set_err(w, "activities are registered before dt_worker_start");
        return DT_ESTATE;
    }
    if (!name_ok(name) || !name_ok(queue) || fn == NULL) {
        set_err(w, "invalid activity or task queue name (no spaces, '.', '*' or '>') or NULL "
                   "function");
        return DT_EINVAL;
    }
    for (size_t i = 0; i < w->n_acts; i++) {
        if (strcmp(w->acts[i].name, name) == 0 && strcmp(w->acts[i].task_queue, queue) == 0) {
            set_err(w, "activity '%s' is already registered on queue '%s'", name, queue);
            return DT_EEXIST;
        }
    }
    dt__activity_def *g = dt_realloc(w->acts, (w->n_acts + 1) * sizeof(*g));
    if (g == NULL) {
        return DT_ENOMEM;
    }
    w->acts = g;
    char *n = dt_strdup(name), *q = dt_strdup(queue);
    if (n == NULL || q == NULL) {
        dt_free(n);
        dt_free(q);
        return DT_ENOMEM;
    }
    w->acts[w->n_acts++] = (dt__activity_def){n, q, fn, user_data};
    return DT_OK;
}

/* ---- running ---- */

static void supervise_once(dt_worker *w);

/* Called on the lease thread before a released lease's key is deleted: stopping the partition
 * here, synchronously, means no write of ours can follow another worker's claim. */
static void on_lease_change(void *ctx)
{
    supervise_once(ctx);
}

static void leases_log(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    dt__worker_log(ctx, level, instance_id, "%s", msg);
}

/* First and longest time a partition whose store does not open is left to other workers. */
#define STORE_RETRY_FIRST_MS 5000
#define STORE_RETRY_MAX_MS   300000

/* A partition thread ended: when its store did not open, the worker gives the partition up (so
 * that a worker that can serve it takes it) and tries again later, each time after twice as
 * long; when it ran, the delay starts over. Under sup_mu. */
static void reaped(dt_worker *w, uint32_t p, const dt__partition *pt)
{
    if (!dt__partition_store_failed(pt)) {
        w->part_backoff[p] = 0;
        return;
    }
    int64_t b = w->part_backoff[p];
    b = b == 0 ? STORE_RETRY_FIRST_MS : (b * 2 > STORE_RETRY_MAX_MS ? STORE_RETRY_MAX_MS : b * 2);
    w->part_backoff[p] = b;
    w->part_retry_at[p] = dt__mono_ms() + b;
    dt__leases_exclude(w->leases, p, b);
    dt__worker_log(w, DT_LOG_WARN, NULL,
                   "partition %u: its store did not open; left to other workers for %lld s", p,
                   (long long)(b / 1000));
}

/* Starts partition threads for held leases, stops the ones whose lease is gone and reaps the
 * ones that ended by themselves. */
static void supervise_once(dt_worker *w)
{
    pthread_mutex_lock(&w->sup_mu);
    for (uint32_t p = 0; p < w->hub_cfg.partitions; p++) {
        dt__partition *pt = w->partitions[p];
        if (pt != NULL && dt__partition_done(pt)) {
            reaped(w, p, pt);
            dt__partition_stop(pt);
            w->partitions[p] = pt = NULL;
        }
        int64_t until = 0;
        bool held = !w->frozen && w->leases != NULL && dt__leases_held(w->leases, p, &until) &&
                    dt__mono_ms() < until;
        if (held && pt == NULL && dt__mono_ms() >= w->part_retry_at[p]) {
            if (dt__partition_start(w, p, &w->partitions[p]) != DT_OK) {
                w->partitions[p] = NULL;
            }
        } else if (!held && pt != NULL) {
            dt__partition_stop(pt);
            w->partitions[p] = NULL;
        }
    }
    pthread_mutex_unlock(&w->sup_mu);
}

static void *supervisor_main(void *arg)
{
    dt_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        pthread_mutex_unlock(&w->mu);
        supervise_once(w);
        pthread_mutex_lock(&w->mu);
        if (!w->stopping) {
            struct timespec ts = dt__deadline_in(CLOCK_REALTIME, SUPERVISE_MS);
            pthread_cond_timedwait(&w->cond, &w->mu, &ts);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/*
 * Every cached orchestration holds a coroutine stack: two kernel memory mappings (stack and guard
 * page). A process has at most vm.max_map_count mappings (65,530 by default), so the caches of
 * all partitions together must stay well below half of it, or new instances cannot get a stack.
 */
static void cap_cache(dt_worker *w)
{
    long maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &maps) != 1) {
            maps = 65530;
        }
        (void)fclose(f); /* opened for reading: nothing to lose */
    }
    long reserve = 8192; /* threads, libraries, heap arenas, SQLite */
    size_t budget = maps > 2 * reserve ? (size_t)(maps - reserve) / 2 : 1024;
    size_t per_partition = budget / (w->hub_cfg.partitions > 0 ? w->hub_cfg.partitions : 1);
    if (per_partition < 1) {
        per_partition = 1;
    }
    if (w->opt.cache_capacity > per_partition) {
        dt__worker_log(w, DT_LOG_WARN, NULL,
                       "cache_capacity %zu per partition lowered to %zu: %u partitions x %zu "
                       "coroutine stacks must fit vm.max_map_count (%ld)",
                       w->opt.cache_capacity, per_partition, w->hub_cfg.partitions, per_partition,
                       maps);
        w->opt.cache_capacity = per_partition;
    }
}

static dt_status connect_hub(dt_worker *w)
{
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = w->nats_url;
    bo.name = w->worker_id;
    /* A KV request must fail well inside a lease's renewal margin (TTL/4 by default), or one
     * stalled renewal could cost the leases. */
    bo.request_timeout_ms = 2000;
    /* Write each protocol message at once: nats.c's 1 ms coalescing otherwise adds a
     * millisecond to every hop of an orchestration (docs/performance.md: p50 of a 3-step
     * sequence 8 ms -> 4 ms), for some CPU under full load. */
    bo.send_asap = !w->opt.coalesce_writes;
    bo.security = w->opt.security;
    dt_status st = dt__worker_connect(w, &bo);
    if (st != DT_OK) {
        return st;
    }
    st = dt_broker_hub_get(w->broker, w->hub, &w->hub_cfg);
    if (st == DT_ENOTFOUND) {
        dt_broker_hub_config c;
        dt_broker_hub_config_init(&c);
        st = dt_broker_hub_create(w->broker, w->hub, &c, &w->hub_cfg);
    } else if (st == DT_OK) {
        /* Completes a hub created by an older build (no LOG stream yet) with its own settings:
         * idempotent, and nothing that exists is changed. */
        dt_broker_hub_config have = w->hub_cfg;
        st = dt_broker_hub_create(w->broker, w->hub, &have, &w->hub_cfg);
    }
    if (st != DT_OK) {
        set_err(w, "%s", dt_broker_errmsg(w->broker)); /* "[create ]hub <hub>: ..." */
        return st;
    }
    cap_cache(w);
    w->partitions = dt_calloc(w->hub_cfg.partitions, sizeof(*w->partitions));
    w->part_retry_at = dt_calloc(w->hub_cfg.partitions, sizeof(int64_t));
    w->part_backoff = dt_calloc(w->hub_cfg.partitions, sizeof(int64_t));
    return w->partitions != NULL && w->part_retry_at != NULL && w->part_backoff != NULL ? DT_OK
                                                                                        : DT_ENOMEM;
}

/* The largest result message the hub and the server take (what the activity pool uses). */
static size_t result_limit(dt_worker *w)
{
    size_t m = w->hub_cfg.max_msg_size > 0 ? (size_t)w->hub_cfg.max_msg_size : (size_t)1024 * 1024;
    int64_t server = dt_broker_max_payload(w->broker);
    return server > 0 && (uint64_t)server < m ? (size_t)server : m;
}

static dt_status start_services(dt_worker *w)
{
    char err[256] = "";
    dt__leases_config lc = {
        .broker = w->broker,
        .hub = w->hub,
        .worker_id = w->worker_id,
        .partitions = w->hub_cfg.partitions,
        .ttl_ms = w->hub_cfg.lease_ttl_ms,
        .on_change = on_lease_change,
        .ctx = w,
        .log = leases_log,
        .log_ctx = w,
    };
    dt_status st = DT_OK;
    if (w->n_acts > 0) {
        dt__activity_pool_config ac = {
            .broker = w->broker,
            .hub = w->hub,
            .defs = w->acts,
            .n_defs = w->n_acts,
            .threads_per_queue = w->opt.activity_threads,
            .max_deliveries = w->opt.activity_max_deliveries,
            .timeout_ms = w->opt.activity_timeout_ms,
            .batch_results = w->opt.batch_activity_results,
            .metrics = w->metrics,
            .log = leases_log,
            .log_ctx = w,
            .tracer = w->tracer,
        };
        st = dt__activity_pool_start(&ac, &w->activities, err, sizeof(err));
    }
    if (st == DT_OK && w->n_acts > 0 && !w->opt.disable_local_activities) {
        dt__local_acts_config lac = {
            .hub = w->hub,
            .defs = w->acts,
            .n_defs = w->n_acts,
            .threads = w->opt.activity_threads,
            .max_msg = result_limit(w),
            .metrics = w->metrics,
            .log = leases_log,
            .log_ctx = w,
            .tracer = w->tracer,
        };
        st = dt__local_acts_start(&lac, &w->local_acts, err, sizeof(err));
    }
    /* A worker without orchestrators runs no partition (it could only fail their instances as
     * unknown): an activity-only deployment scales on its own (docs/operations.md, KEDA). The
     * leases start after the activity services: the lease thread starts partitions at once, and
     * a partition reads w->local_acts (ThreadSanitizer found it written meanwhile). One with a
     * remote attached runs SDK workers' orchestrations (runtime/remote), one with entities their
     * operations. */
    bool orchestrates = w->n_orchs > 0 || w->n_ents > 0 || w->remote != NULL;
    if (st == DT_OK && orchestrates) {
        st = dt__leases_start(&lc, &w->leases, err, sizeof(err));
    }
    if (st == DT_OK) {
        st = dt__ingress_start(w, &w->ingress);
        if (st != DT_OK) {
            snprintf(err, sizeof(err), "ingress: %s", dt_broker_errmsg(w->broker));
        }
    }
    if (st == DT_OK && pthread_create(&w->supervisor, NULL, supervisor_main, w) != 0) {
        st = DT_ENOMEM;
    }
    if (st != DT_OK) {
        set_err(w, "worker start-up failed: %s", err);
    }
    return st;
}

static void stop_all(dt_worker *w, int64_t timeout_ms, bool supervisor_running);

dt_status dt_worker_start(dt_worker *w)
{
    if (w->started) {
        set_err(w, "the worker is already started");
        return DT_ESTATE;
    }
    w->started = true;
    dt_status st = dt__worker_metrics_open(w); /* a bad metrics_addr fails before NATS */
    st = st == DT_OK ? connect_hub(w) : st;
    st = st == DT_OK ? dt__worker_metrics_source(w) : st;
    if (st == DT_OK) {
        st = start_services(w);
    }
    if (st != DT_OK) {
        stop_all(w, 0, false);
        return st;
    }
    /* A dt_worker_stop that came while this thread was starting left the work to us. */
    pthread_mutex_lock(&w->mu);
    bool stopped = w->stopping;
    w->running = !stopped;
    pthread_mutex_unlock(&w->mu);
    if (stopped) {
        stop_all(w, 0, true);
        set_err(w, "stopped while starting");
        return DT_ECLOSED;
    }
    dt__worker_log(w, DT_LOG_INFO, NULL, "worker %s running on hub '%s' (%u partitions)",
                   w->worker_id, w->hub, w->hub_cfg.partitions);
    return DT_OK;
}

static void stop_all(dt_worker *w, int64_t timeout_ms, bool supervisor_running)
{
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    if (supervisor_running) {
        pthread_join(w->supervisor, NULL);
    }
    /* Partitions first, all at once: each finishes its current batch; then the leases go, so
     * the other workers take over at once, while our running activities finish (their results
     * go to whoever owns the partitions then). */
    pthread_mutex_lock(&w->sup_mu);
    w->frozen = true;
    for (uint32_t p = 0; w->partitions != NULL && p < w->hub_cfg.partitions; p++) {
        dt__partition_request_stop(w->partitions[p]);
    }
    for (uint32_t p = 0; w->partitions != NULL && p < w->hub_cfg.partitions; p++) {
        dt__partition_stop(w->partitions[p]);
        w->partitions[p] = NULL;
    }
    pthread_mutex_unlock(&w->sup_mu);
    if (w->leases != NULL) {
        dt__leases_stop(w->leases);
        dt__leases_destroy(w->leases);
        w->leases = NULL;
    }
    dt__ingress_stop(w->ingress);
    w->ingress = NULL;
    /* Activities running in-process for our (now stopped) partitions may finish; their results
     * are dropped and their requests, still in the outbox, run again on the next owners. */
    dt__local_acts_stop(w->local_acts, timeout_ms);
    dt__activity_pool_stop(w->activities, timeout_ms);
    dt__activity_pool_destroy(w->activities);
    w->activities = NULL;
    dt__local_acts_destroy(w->local_acts);
    w->local_acts = NULL;
    dt__worker_metrics_unsource(w);
    dt_broker_close(w->broker);
    w->broker = NULL;
}

void dt_worker_stop(dt_worker *w, int64_t timeout_ms)
{
    pthread_mutex_lock(&w->mu);
    bool running = w->running && !w->stopping;
    if (!w->running) {
        /* Not started, or dt_worker_start still connecting on another thread: it gives up. */
        w->stopping = true;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
    if (running) {
        stop_all(w, timeout_ms, true);
        dt__tracer_flush(w->tracer);
        if (w->tracer != NULL) {
            uint64_t lost = dt__tracer_dropped(w->tracer);
            dt__worker_log(w, lost > 0 ? DT_LOG_WARN : DT_LOG_INFO, NULL,
                           "tracing: %llu spans exported, %llu dropped (queue full or the "
                           "receiver failed)",
                           (unsigned long long)dt__tracer_exported(w->tracer),
                           (unsigned long long)lost);
        }
        dt__worker_log(w, DT_LOG_INFO, NULL, "worker %s stopped", w->worker_id);
    }
}

void dt_worker_destroy(dt_worker *w)
{
    if (w == NULL) {
        return;
    }
    dt_worker_stop(w, 5000);
    for (size_t i = 0; i < w->n_orchs; i++) {
        dt_free(w->orchs[i].name);
    }
    for (size_t i = 0; i < w->n_acts; i++) {
        dt_free((char *)w->acts[i].name);
        dt_free((char *)w->acts[i].task_queue);
    }
    dt_free(w->orchs);
    dt_free(w->acts);
    dt__worker_entities_free(w);
    dt_free(w->partitions);
    dt_free(w->part_retry_at);
    dt_free(w->part_backoff);
    dt_free(w->nats_url);
    dt_free(w->hub);
    dt_free(w->data_dir);
    dt_free(w->worker_id);
    dt_free(w->version);
    dt__worker_security_free(&w->opt.security);
    dt__worker_metrics_close(w);
    dt_free((char *)w->opt.metrics_addr);
    dt__tracer_destroy(w->tracer);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->sup_mu);
    pthread_cond_destroy(&w->cond);
    dt_free(w);
}
