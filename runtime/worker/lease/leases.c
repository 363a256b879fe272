/*
 * The lease keeper: one thread per worker that keeps the worker's membership heartbeat, claims
 * the partitions rendezvous placement gives it, renews them, and hands over the ones it should
 * no longer own. The contract, the key layout and the safety argument are in leases_int.h;
 * timings and measurements in docs/leases.md.
 *
 * This file: life cycle, the thread's loop and the thread-safe queries. The thread waits on one
 * KV watch of the whole bucket (`>`), so membership and lease holders are known without polling
 * (leases_fleet.c applies the events), and wakes early for its own deadlines (heartbeat,
 * renewals, lease deadlines, claim retries, member expiry: dt__lk_next_wake).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common_int.h"
#include "leases_keeper_int.h"

/* Watch events handled per tick. */
#define EVENTS_PER_TICK 256
/* Delay before re-creating a failed watch. */
#define WATCH_RETRY_MS 500

static void ensure_watcher(dt__leases *l)
{
    if (l->watcher != NULL || dt__mono_ms() < l->watch_retry_at) {
        return;
    }
    dt_broker_kv_watcher *w = NULL;
    dt_status st = dt_broker_kv_watch(l->kv, ">", NULL, &w);
    if (st != DT_OK) {
        dt__lk_log(l, DT_LOG_WARN, "watch failed: %s (%s)", dt_status_name(st),
                   dt_broker_kv_errmsg(l->kv));
        l->watch_retry_at = dt__mono_ms() + WATCH_RETRY_MS;
        return;
    }
    pthread_mutex_lock(&l->mu);
    bool stopping = l->stopping;
    if (!stopping) {
        l->watcher = w;
    }
    pthread_mutex_unlock(&l->mu);
    if (stopping) {
        dt_broker_kv_watcher_destroy(w);
    }
}

static void drop_watcher(dt__leases *l)
{
    pthread_mutex_lock(&l->mu);
    dt_broker_kv_watcher *w = l->watcher;
    l->watcher = NULL;
    pthread_mutex_unlock(&l->mu);
    dt_broker_kv_watcher_destroy(w);
}

/* Sleeps until `until` (mono ms) or stop, for when there is no watch to wait on. */
static void sleep_until(dt__leases *l, int64_t until)
{
    pthread_mutex_lock(&l->mu);
    while (!l->stopping) {
        int64_t left = until - dt__mono_ms();
        if (left <= 0) {
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (left % 1000) * 1000000;
        ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
}

/* Waits for watch events until `until` (mono ms) and handles them (a bounded number). */
static void wait_events(dt__leases *l, int64_t until)
{
    dt_broker_kv_watcher *w = l->watcher;
    if (w == NULL) {
        sleep_until(l, until);
        return;
    }
    int64_t left = until - dt__mono_ms();
    dt_broker_kv_entry e = {0};
    dt_status st = dt_broker_kv_watcher_next(w, left > 0 ? left : 0, &e);
    for (int i = 0; st == DT_OK; i++) {
        dt__lk_on_event(l, &e, dt__mono_ms());
        dt_broker_kv_entry_clear(&e);
        if (i + 1 >= EVENTS_PER_TICK) {
            break;
        }
        st = dt_broker_kv_watcher_next(w, 0, &e);
    }
    if (!l->ready && dt_broker_kv_watcher_initial_done(w)) {
        l->ready = true;
    }
    if (st != DT_OK && st != DT_ETIMEOUT && !dt__lk_flag(l, &l->stopping)) {
        dt__lk_log(l, DT_LOG_WARN, "watch failed: %s (%s); re-creating it", dt_status_name(st),
                   dt_broker_kv_watcher_errmsg(w));
        drop_watcher(l);
        l->watch_retry_at = dt__mono_ms() + WATCH_RETRY_MS;
    }
}

static void *lease_main(void *arg)
{
    dt__leases *l = arg;
    while (!dt__lk_flag(l, &l->stopping)) {
        ensure_watcher(l);
        dt__lk_tick(l);
        wait_events(l, dt__lk_next_wake(l, dt__mono_ms()));
    }
    dt__lk_release_all(l);
    drop_watcher(l);
    return NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* Life cycle and queries                                                                      */

static dt_status check_config(const dt__leases_config *c, dt__leases **out, char *errbuf,
                              size_t errlen)
{
    if (c == NULL || out == NULL || c->broker == NULL || c->hub == NULL || c->worker_id == NULL) {
        dt__errf(errbuf, errlen, "leases: config, out, broker, hub and worker_id are required");
        return DT_EINVAL;
    }
    if (!dt_broker_hub_name_valid(c->hub)) {
        dt__errf(errbuf, errlen, "leases: invalid hub name '%s'", c->hub);
        return DT_EINVAL;
    }
    if (!dt__lk_id_valid(c->worker_id)) {
        dt__errf(errbuf, errlen,
                 "leases: invalid worker id '%.*s' (1..%u characters of [A-Za-z0-9_-])",
                 (int)DT__LEASES_ID_MAX, c->worker_id, DT__LEASES_ID_MAX);
        return DT_EINVAL;
    }
    if (c->partitions > DT_BROKER_MAX_PARTITIONS || c->ttl_ms < 0 || c->margin_ms < 0) {
        dt__errf(errbuf, errlen, "leases: partitions, ttl_ms or margin_ms out of range");
        return DT_EINVAL;
    }
    return DT_OK;
}

/* Reads P and the TTL from the hub and checks them against the config. */
static dt_status resolve_hub(dt__leases *l, const dt__leases_config *c, char *errbuf, size_t errlen)
{
    dt_broker_hub_config hc;
    dt_status st = dt_broker_hub_get(c->broker, c->hub, &hc);
    if (st != DT_OK) {
        char why[256];
        dt_broker_errmsg_copy(c->broker, why, sizeof(why));
        dt__errf(errbuf, errlen, "leases: %s", why);
        return st;
    }
    if ((c->partitions != 0 && c->partitions != hc.partitions) ||
        (c->ttl_ms != 0 && c->ttl_ms != hc.lease_ttl_ms)) {
        dt__errf(errbuf, errlen,
                 "leases: hub %s has %" PRIu32 " partitions and lease TTL %" PRId64
                 " ms; the config says %" PRIu32 " and %" PRId64,
                 c->hub, hc.partitions, hc.lease_ttl_ms, c->partitions, c->ttl_ms);
        return DT_ECONFLICT;
    }
    l->np = hc.partitions;
    l->ttl = hc.lease_ttl_ms;
    l->margin = c->margin_ms != 0 ? c->margin_ms : l->ttl / 4;
    if (l->margin <= 0 || l->margin >= l->ttl / 2) {
        dt__errf(errbuf, errlen, "leases: margin_ms must be below ttl/2 (%" PRId64 ")", l->ttl / 2);
        return DT_EINVAL;
    }
    l->period = l->ttl / 3;
    l->retry = l->period / 4 > 20 ? l->period / 4 : 20;
    l->backoff_first = l->ttl / 20 > 20 ? l->ttl / 20 : 20;
    return DT_OK;
}

static void make_token(dt__leases *l)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        r = (uint64_t)dt__mono_ms() ^ ((uint64_t)dt__now_ms() << 20) ^ (uint64_t)getpid() ^
            (uint64_t)(uintptr_t)l;
        r = dt__leases_weight(r, 0); /* mix the bits */
    }
    snprintf(l->token, sizeof(l->token), "%016" PRIx64, r);
    snprintf(l->token_needle, sizeof(l->token_needle), "\"token\":\"%s\"", l->token);
}

static dt_status init_sync(dt__leases *l)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        return DT_ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        return DT_ENOMEM;
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        pthread_cond_destroy(&l->cv);
        return DT_ENOMEM;
    }
    l->sync_init = true;
    return DT_OK;
}

/* Allocations, the bucket and the initial schedule (everything but the thread). */
static dt_status prepare(dt__leases *l, const dt__leases_config *c, char *errbuf, size_t errlen)
{
    l->parts = dt_calloc(l->np, sizeof(*l->parts));
    l->scratch = dt_calloc(l->np, sizeof(*l->scratch));
    if (l->parts == NULL || l->scratch == NULL || init_sync(l) != DT_OK) {
        dt__errf(errbuf, errlen, "leases: out of memory");
        return DT_ENOMEM;
    }
    char bucket[DT_BROKER_NAME_BUF];
    dt_status st = dt_broker_bucket_name(c->hub, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket));
    if (st == DT_OK) {
        st = dt_broker_kv_open(c->broker, bucket, &l->kv);
    }
    if (st != DT_OK) {
        char why[256];
        dt_broker_errmsg_copy(c->broker, why, sizeof(why));
        dt__errf(errbuf, errlen, "leases: bucket of hub %s: %s", c->hub, why);
        return st;
    }
    int64_t now = dt__mono_ms();
    l->ready_deadline = now + l->period;
    l->started_wall = dt__now_ms();
    for (uint32_t p = 0; p < l->np; p++) {
        l->parts[p].backoff = l->backoff_first;
        l->parts[p].claim_after = now;
    }
    l->members_changed = true; /* compute the placement of this worker alone at first */
    return DT_OK;
}

dt_status dt__leases_start(const dt__leases_config *c, dt__leases **out, char *errbuf,
                           size_t errlen)
{
    dt_status st = check_config(c, out, errbuf, errlen);
    if (st != DT_OK) {
        return st;
    }
    dt__leases *l = dt_calloc(1, sizeof(*l));
    if (l == NULL) {
        dt__errf(errbuf, errlen, "leases: out of memory");
        return DT_ENOMEM;
    }
    l->broker = c->broker;
    snprintf(l->hub, sizeof(l->hub), "%s", c->hub);
    snprintf(l->id, sizeof(l->id), "%s", c->worker_id);
    l->id_hash = dt__leases_id_hash(l->id);
    l->on_change = c->on_change;
    l->ctx = c->ctx;
    l->log = c->log;
    l->log_ctx = c->log_ctx;
    make_token(l);
    st = resolve_hub(l, c, errbuf, errlen);
    if (st == DT_OK) {
        st = prepare(l, c, errbuf, errlen);
    }
    /* The handle is published before the thread starts: its first lease change reaches the
     * owner's callback, which reads *out (the worker's supervisor: w->leases). */
    if (st == DT_OK) {
        l->running = true;
        *out = l;
        if (pthread_create(&l->thread, NULL, lease_main, l) != 0) {
            dt__errf(errbuf, errlen, "leases: cannot start the lease thread");
            l->running = false;
            *out = NULL;
            st = DT_ENOMEM;
        }
    }
    if (st != DT_OK) {
        dt__leases_destroy(l);
        return st;
    }
    return DT_OK;
}

void dt__leases_stop(dt__leases *l)
{
    if (l == NULL || !l->running) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    if (l->watcher != NULL) {
        dt_broker_kv_watcher_stop(l->watcher);
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->running = false;
}

void dt__leases_destroy(dt__leases *l)
{
    if (l == NULL) {
        return;
    }
    dt__leases_stop(l);
    dt_broker_kv_close(l->kv);
    if (l->sync_init) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    dt_free(l->members);
    dt_free(l->scratch);
    dt_free(l->parts);
    dt_free(l);
}

bool dt__leases_get(dt__leases *l, uint32_t p, dt__lease_info *out)
{
    if (l == NULL || p >= l->np) {
        return false;
    }
    pthread_mutex_lock(&l->mu);
    const part *pt = &l->parts[p];
    bool held = pt->held && dt__mono_ms() < pt->valid_until;
    if (held && out != NULL) {
        out->valid_until_mono_ms = pt->valid_until;
        out->claim_rev = pt->claim_rev;
    }
    pthread_mutex_unlock(&l->mu);
    return held;
}

bool dt__leases_held(dt__leases *l, uint32_t p, int64_t *out_valid_until_mono_ms)
{
    dt__lease_info info;
    if (!dt__leases_get(l, p, &info)) {
        return false;
    }
    if (out_valid_until_mono_ms != NULL) {
        *out_valid_until_mono_ms = info.valid_until_mono_ms;
    }
    return true;
}

size_t dt__leases_snapshot(dt__leases *l, uint32_t *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    int64_t now = dt__mono_ms();
    for (uint32_t p = 0; p < l->np; p++) {
        if (l->parts[p].held && now < l->parts[p].valid_until) {
            if (n < max) {
                out[n] = p;
            }
            n++;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

uint32_t dt__leases_partitions(const dt__leases *l)
{
    return l->np;
}

int64_t dt__leases_ttl_ms(const dt__leases *l)
{
    return l->ttl;
}

void dt__leases_sever(dt__leases *l)
{
    pthread_mutex_lock(&l->mu);
    l->severed = true;
    pthread_mutex_unlock(&l->mu);
}
