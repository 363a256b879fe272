/*
 * The tracer: finished spans go into a bounded ring (a mutex and two condition variables), and
 * one background thread posts them in batches as OTLP/HTTP JSON with libcurl. Producers never
 * wait for I/O: a full ring drops the span and counts it. The thread wakes when a batch is full
 * or DT__TRACE_LINGER_MS after the first span of a batch, and on flush or destroy; destroy posts
 * whatever is queued before it returns (each POST bounded by DT__TRACE_POST_TIMEOUT_MS).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "common_int.h"
#include "trace_span_int.h"

#define DT__TRACE_LINGER_MS          200
#define DT__TRACE_POST_TIMEOUT_MS    5000
#define DT__TRACE_CONNECT_TIMEOUT_MS 1000

struct dt__tracer {
    char *url, *service; /* dt_alloc'd */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* to the thread: spans, flush, stop */
    pthread_cond_t drained; /* from the thread: a batch is done */
    dt__span **ring;        /* DT__TRACE_QUEUE_MAX entries */
    size_t head, n;         /* under mu */
    uint64_t submitted;     /* under mu: spans ever queued */
    uint64_t finished;      /* under mu: spans ever taken and posted or dropped */
    bool stop;              /* under mu */
    bool flush;             /* under mu: post now, whatever the batch size */
    atomic_uint_least64_t dropped, exported;
    CURL *curl;         /* the thread's */
    dt__trace_buf body; /* the thread's: the POST body, reused */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    /* libcurl's global set-up is not thread-safe: done once per process, before any handle. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* Posts one batch; true when the receiver answered 2xx. */
static bool post(dt__tracer *t, dt__span *const *spans, size_t n)
{
    if (!dt__trace_otlp_json_into(t->service, spans, n, &t->body) || t->curl == NULL) {
        return false;
    }
    const char *body = t->body.data;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(t->curl, CURLOPT_URL, t->url);
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(t->body.len - 1));
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)DT__TRACE_POST_TIMEOUT_MS);
    curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)DT__TRACE_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(t->curl);
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    return rc == CURLE_OK && code >= 200 && code < 300;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Takes up to DT__TRACE_BATCH_MAX spans (under mu) into batch; returns how many. */
static size_t take(dt__tracer *t, dt__span **batch)
{
    size_t k = 0;
    while (t->n > 0 && k < DT__TRACE_BATCH_MAX) {
        batch[k++] = t->ring[t->head];
        t->head = (t->head + 1) % DT__TRACE_QUEUE_MAX;
        t->n--;
    }
    return k;
}

static void *exporter_main(void *arg)
{
    dt__tracer *t = arg;
    dt__span **batch = dt_alloc(DT__TRACE_BATCH_MAX * sizeof(*batch));
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (t->n == 0 && !t->stop && !t->flush) {
            pthread_cond_wait(&t->wake, &t->mu);
            continue;
        }
        if (t->n > 0 && t->n < DT__TRACE_BATCH_MAX && !t->stop && !t->flush) {
            struct timespec until;
            deadline_in(&until, DT__TRACE_LINGER_MS);
            while (t->n < DT__TRACE_BATCH_MAX && !t->stop && !t->flush &&
                   pthread_cond_timedwait(&t->wake, &t->mu, &until) == 0) {
            }
        }
        if (t->n == 0 && t->stop) {
            break;
        }
        size_t k = batch != NULL ? take(t, batch) : 0;
        if (t->n == 0) {
            t->flush = false;
        }
        pthread_mutex_unlock(&t->mu);
        bool ok = k > 0 && post(t, batch, k);
        atomic_fetch_add(ok ? &t->exported : &t->dropped, (uint_least64_t)k);
        for (size_t i = 0; i < k; i++) {
            dt__span_free(batch[i]);
        }
        pthread_mutex_lock(&t->mu);
        t->finished += k;
        pthread_cond_broadcast(&t->drained);
        if (batch == NULL || (t->stop && !ok && k > 0)) {
            /* Out of memory, or shutting down with a receiver that fails: drop what waits
             * (counted) rather than hold the shutdown for one timeout per batch. */
            while (t->n > 0) {
                dt__span_free(t->ring[t->head]);
                t->head = (t->head + 1) % DT__TRACE_QUEUE_MAX;
                t->n--;
                t->finished++;
                atomic_fetch_add(&t->dropped, 1);
            }
            if (t->stop) {
                break;
            }
            pthread_cond_wait(&t->wake, &t->mu);
        }
    }
    pthread_cond_broadcast(&t->drained);
    pthread_mutex_unlock(&t->mu);
    dt_free(batch);
    return NULL;
}

bool dt__trace_buf_add(dt__trace_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : (size_t)64 * 1024;
        while (cap < b->len + n) {
            cap *= 2;
        }
        char *d = dt_realloc(b->data, cap);
        if (d == NULL) {
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

void dt__trace_buf_free(dt__trace_buf *b)
{
    dt_free(b->data);
    *b = (dt__trace_buf){0};
}

static char *copy(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = dt_alloc(n);
    if (c != NULL) {
        memcpy(c, s, n);
    }
    return c;
}

static void tracer_free(dt__tracer *t)
{
    if (t->curl != NULL) {
        curl_easy_cleanup(t->curl);
    }
    dt__trace_buf_free(&t->body);
    dt_free(t->ring);
    dt_free(t->url);
    dt_free(t->service);
    dt_free(t);
}

dt_status dt__tracer_create(const char *url, const char *service, dt__tracer **out)
{
    pthread_once(&curl_once, curl_init_once);
    dt__tracer *t = dt_alloc(sizeof(*t));
    if (t == NULL) {
        return DT_ENOMEM;
    }
    memset(t, 0, sizeof(*t));
    atomic_init(&t->dropped, 0);
    atomic_init(&t->exported, 0);
    t->url = copy(url);
    t->service = copy(service);
    t->ring = dt_alloc(DT__TRACE_QUEUE_MAX * sizeof(*t->ring));
    t->curl = curl_easy_init();
    if (t->url == NULL || t->service == NULL || t->ring == NULL || t->curl == NULL) {
        tracer_free(t);
        return DT_ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->wake, &ca);
    pthread_cond_init(&t->drained, NULL);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->wake);
        pthread_cond_destroy(&t->drained);
        tracer_free(t);
        return DT_EINVAL;
    }
    *out = t;
    return DT_OK;
}

/* The endpoint of OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is) or OTEL_EXPORTER_OTLP_ENDPOINT
 * (+ "/v1/traces"), dt_alloc'd; NULL when neither is set (or no memory). */
static char *endpoint_from_env(void)
{
    const char *full = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if (full != NULL && full[0] != '\0') {
        return copy(full);
    }
    const char *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (base == NULL || base[0] == '\0') {
        return NULL;
    }
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    static const char path[] = "/v1/traces";
    char *url = dt_alloc(n + sizeof(path));
    if (url != NULL) {
        memcpy(url, base, n);
        memcpy(url + n, path, sizeof(path));
    }
    return url;
}

dt_status dt__tracer_from_env(const char *default_service, dt__tracer **out)
{
    *out = NULL;
    const char *off = getenv("OTEL_SDK_DISABLED");
    if (off != NULL && strcasecmp(off, "true") == 0) {
        return DT_OK;
    }
    const char *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    const char *full = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if ((base == NULL || base[0] == '\0') && (full == NULL || full[0] == '\0')) {
        return DT_OK;
    }
    char *url = endpoint_from_env();
    if (url == NULL) {
        return DT_ENOMEM;
    }
    const char *svc = getenv("OTEL_SERVICE_NAME");
    dt_status st =
        dt__tracer_create(url, svc != NULL && svc[0] != '\0' ? svc : default_service, out);
    dt_free(url);
    return st;
}

void dt__tracer_submit(dt__tracer *t, dt__span *s)
{
    if (t == NULL) {
        dt__span_free(s);
        return;
    }
    pthread_mutex_lock(&t->mu);
    bool room = t->n < DT__TRACE_QUEUE_MAX && !t->stop;
    if (room) {
        t->ring[(t->head + t->n) % DT__TRACE_QUEUE_MAX] = s;
        t->n++;
        t->submitted++;
        if (t->n == 1 || t->n == DT__TRACE_BATCH_MAX) {
            pthread_cond_signal(&t->wake);
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (!room) {
        atomic_fetch_add(&t->dropped, 1);
        dt__span_free(s);
    }
}

void dt__tracer_flush(dt__tracer *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    uint64_t target = t->submitted;
    while (t->finished < target && !t->stop) {
        t->flush = true;
        pthread_cond_signal(&t->wake);
        pthread_cond_wait(&t->drained, &t->mu);
    }
    pthread_mutex_unlock(&t->mu);
}

void dt__tracer_destroy(dt__tracer *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->drained);
    tracer_free(t);
}

uint64_t dt__tracer_dropped(const dt__tracer *t)
{
    return t != NULL ? atomic_load(&((dt__tracer *)t)->dropped) : 0;
}

uint64_t dt__tracer_exported(const dt__tracer *t)
{
    return t != NULL ? atomic_load(&((dt__tracer *)t)->exported) : 0;
}
