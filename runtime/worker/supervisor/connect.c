/*
 * The worker's first connection to NATS, and its copy of the security settings.
 *
 * A worker started while no NATS server is up (a whole system booting at once, a server being
 * upgraded) waits for one instead of failing: dt_worker_start retries with the backoff the
 * broker adapter uses for reconnects after a disconnect (0.1 s doubling to 5 s, plus up to 25%
 * jitter), logging one line per failed attempt, until a server answers, the operator's
 * connect_attempts are used up, or dt_worker_stop is called. Only "no server reachable"
 * (DT_EBROKER) is retried: refused credentials, TLS failures (DT_EAUTH) and bad options
 * (DT_EINVAL) are configuration errors that waiting cannot fix, so they fail at once.
 *
 * Log lines and error texts name the URLs through dt_nats_url_redact and never hold a secret.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "supervisor_int.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static int64_t backoff_ms(uint32_t attempt)
{
    int64_t d = BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < attempt && d < BACKOFF_MAX_MS; i++) {
        d *= 2;
    }
    d = d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return d + (int64_t)now.tv_nsec % (d / 4 + 1);
}

/* Sleeps up to ms; returns true as soon as dt_worker_stop has been called. */
static bool wait_or_stopped(dt_worker *w, int64_t ms)
{
    struct timespec until = dt__deadline_in(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&w->mu);
    while (!w->stopping && pthread_cond_timedwait(&w->cond, &w->mu, &until) == 0) {
    }
    bool stopped = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return stopped;
}

dt_status dt__worker_connect(dt_worker *w, const dt_broker_options *bo)
{
    char shown[256], err[256], limit[32] = "unlimited";
    dt_nats_url_redact(w->nats_url, shown, sizeof(shown));
    if (w->opt.connect_attempts != 0) {
        snprintf(limit, sizeof(limit), "%" PRIu32, w->opt.connect_attempts);
    }
    for (uint32_t attempt = 1;; attempt++) {
        if (wait_or_stopped(w, 0)) {
            dt__errf(w->errmsg, sizeof(w->errmsg), "stopped while connecting to %s", shown);
            return DT_ECLOSED;
        }
        dt_status st = dt_broker_connect(bo, &w->broker, err, sizeof(err));
        if (st == DT_OK) {
            if (attempt > 1) {
                dt__worker_log(w, DT_LOG_INFO, NULL, "connected to %s at attempt %" PRIu32, shown,
                               attempt);
            }
            return DT_OK;
        }
        if (st != DT_EBROKER) {
            dt__errf(w->errmsg, sizeof(w->errmsg), "%s", err); /* "connect to <url>: why" */
            return st;
        }
        if (w->opt.connect_attempts != 0 && attempt >= w->opt.connect_attempts) {
            dt__errf(w->errmsg, sizeof(w->errmsg),
                     "gave up after %" PRIu32 " attempts (connect_attempts): %s", attempt, err);
            return st;
        }
        int64_t d = backoff_ms(attempt);
        dt__worker_log(w, DT_LOG_WARN, NULL,
                       "NATS not reachable (attempt %" PRIu32 " of %s): %s; next attempt in "
                       "%" PRId64 " ms",
                       attempt, limit, err, d);
        if (wait_or_stopped(w, d)) {
            dt__errf(w->errmsg, sizeof(w->errmsg), "stopped while connecting to %s", shown);
            return DT_ECLOSED;
        }
    }
}

/* ---- the copy of dt_nats_security the worker keeps until dt_worker_start ---- */

static const char **field(dt_nats_security *s, size_t i)
{
    const char **f[] = {&s->creds_file, &s->nkey_seed_file, &s->token,         &s->user,
                        &s->password,   &s->tls_ca_file,    &s->tls_cert_file, &s->tls_key_file};
    return i < DT__ARRAY_LEN(f) ? f[i] : NULL;
}

void dt__worker_security_free(dt_nats_security *s)
{
    for (size_t i = 0; field(s, i) != NULL; i++) {
        char *v = (char *)*field(s, i);
        if (v != NULL) {
            /* Tokens and passwords: not left behind in freed heap memory. */
            volatile char *p = v;
            while (*p != '\0') {
                *p++ = '\0';
            }
            dt_free(v);
        }
        *field(s, i) = NULL;
    }
}

dt_status dt__worker_security_copy(dt_nats_security *dst, const dt_nats_security *src)
{
    dt_nats_security in = *src;
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; field(dst, i) != NULL; i++) {
        const char *v = *field(&in, i);
        if (v != NULL && v[0] != '\0' && (*field(dst, i) = dt_strdup(v)) == NULL) {
            dt__worker_security_free(dst);
            return DT_ENOMEM;
        }
    }
    return DT_OK;
}
