/*
 * The connection: options, connect with reconnect-forever backoff, close, error texts, and the
 * mapping of nats.c statuses to dt_status.
 *
 * nats.c keeps library-wide state (threads, timers) that nats_Open creates; it is opened once per
 * process with pthread_once on the first connect, and torn down only by the explicit
 * dt_broker_global_shutdown() (tools, tests), since nats.c cannot be reopened after a close.
 *
 * Connection events arrive on nats.c's per-connection callback thread. dt_broker_close() waits for
 * the closed event before freeing the handle, so no callback ever sees a freed dt_broker.
 */
#include "broker_int.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__linux__) && !defined(SCHED_BATCH)
#define SCHED_BATCH 3 /* <linux/sched.h>; glibc declares it only with _GNU_SOURCE */
#endif

/* How long close() waits for nats.c's closed event, and shutdown for nats.c's threads. */
#define CLOSE_WAIT_MS 5000

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static natsStatus global_status = NATS_NOT_INITIALIZED;

/*
 * nats_Open starts nats.c's library threads (timers, connection-event callbacks, and the garbage
 * collector that frees every destroyed natsMsg), which inherit the scheduling policy of the
 * thread that calls it. It runs on a helper thread that first makes itself SCHED_BATCH, so that
 * those threads never preempt the thread that wakes them: measured, the collector woken by a
 * natsMsg_Destroy took the CPU from the destroying thread at once, ran for a few microseconds
 * and slept again, two context switches per wake-up (docs/performance.md, item 4). Their work
 * is background work; they still run at normal priority (nice 0), on the next tick or core.
 */
static void *open_batch(void *arg)
{
#ifdef SCHED_BATCH
    struct sched_param sp;
    memset(&sp, 0, sizeof(sp));
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp); /* best effort */
#endif
    *(natsStatus *)arg = nats_Open(-1);
    return NULL;
}

static void global_open(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, open_batch, &global_status) != 0) {
        global_status = nats_Open(-1);
        return;
    }
    pthread_join(t, NULL);
}

dt_status dt__broker_global_init(void)
{
    pthread_once(&global_once, global_open);
    return global_status == NATS_OK ? DT_OK : DT_EBROKER;
}

dt_status dt_broker_global_shutdown(void)
{
    if (global_status != NATS_OK) {
        return DT_OK;
    }
    return nats_CloseAndWait(CLOSE_WAIT_MS) == NATS_OK ? DT_OK : DT_ETIMEOUT;
}

int64_t dt__broker_ms_to_ns(int64_t ms)
{
    if (ms > INT64_MAX / 1000000) {
        return INT64_MAX;
    }
    return ms * 1000000;
}

/* ------------------------------------------------------------------------------------------- */
/* Status mapping and error texts                                                              */

static dt_status map_js(jsErrCode jerr)
{
    switch ((int)jerr) {
    case JSStreamNotFoundErr:
    case JSConsumerNotFoundErr:
    case JSNoMessageFoundErr:
        return DT_ENOTFOUND;
    case JSStreamWrongLastSequenceErr:
    case JSStreamWrongLastMsgIDErr:
    case JSStreamNameExistErr:
    case JSStreamSubjectOverlapErr:
    case JSConsumerNameExistErr:
        return DT_ECONFLICT;
    case JSStreamMessageExceedsMaximumErr:
        return DT_ETOOLARGE;
    default:
        return DT_EBROKER;
    }
}

dt_status dt__broker_map(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_OK) {
        return DT_OK;
    }
    if (jerr != 0 && s != NATS_NO_RESPONDERS) {
        return map_js(jerr);
    }
    switch (s) {
    case NATS_TIMEOUT:
        return DT_ETIMEOUT;
    case NATS_NOT_FOUND:
        return DT_ENOTFOUND;
    case NATS_NO_MEMORY:
        return DT_ENOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_TIMEOUT:
        return DT_EINVAL;
    case NATS_MAX_PAYLOAD:
        return DT_ETOOLARGE;
    case NATS_CONNECTION_CLOSED:
        return DT_ECLOSED;
    default:
        return DT_EBROKER;
    }
}

static void vnerr(char *buf, size_t len, natsStatus s, jsErrCode jerr, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void vnerr(char *buf, size_t len, natsStatus s, jsErrCode jerr, const char *fmt, va_list ap)
{
    char what[160];
    vsnprintf(what, sizeof(what), fmt, ap);
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    if (detail == NULL || detail[0] == '\0' || last != s) {
        detail = natsStatus_GetText(s);
    }
    /* nats.c reports a publish nobody takes as NATS_NO_RESPONDERS *with* JetStream error
     * 10076 ("JetStream not enabled"), which would mislead: the status decides. */
    if (s == NATS_NO_RESPONDERS) {
        dt__errf(buf, len, "%s: no responders (no stream or subscriber takes the subject)", what);
    } else if (jerr != 0) {
        dt__errf(buf, len, "%s: %s (JetStream error %d)", what, detail, (int)jerr);
    } else {
        dt__errf(buf, len, "%s: %s", what, detail);
    }
}

dt_status dt__broker_nerr(char *buf, size_t len, natsStatus s, jsErrCode jerr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnerr(buf, len, s, jerr, fmt, ap);
    va_end(ap);
    return dt__broker_map(s, jerr);
}

dt_status dt__broker_fail_nats(dt_broker *b, natsStatus s, jsErrCode jerr, const char *fmt, ...)
{
    char tmp[DT__BROKER_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vnerr(tmp, sizeof(tmp), s, jerr, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&b->mu);
    memcpy(b->err, tmp, sizeof(tmp));
    pthread_mutex_unlock(&b->mu);
    return dt__broker_map(s, jerr);
}

dt_status dt__broker_fail(dt_broker *b, dt_status st, const char *fmt, ...)
{
    char tmp[DT__BROKER_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&b->mu);
    memcpy(b->err, tmp, sizeof(tmp));
    pthread_mutex_unlock(&b->mu);
    return st;
}

dt_status dt__broker_errbuf(char *buf, size_t len, dt_status st, const char *fmt, ...)
{
    if (buf == NULL || len == 0) {
        return st;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return st;
}

const char *dt_broker_errmsg(const dt_broker *b)
{
    return b == NULL ? "" : b->err;
}

void dt_broker_errmsg_copy(const dt_broker *b, char *buf, size_t len)
{
    if (buf == NULL || len == 0) {
        return;
    }
    if (b == NULL) {
        buf[0] = '\0';
        return;
    }
    dt_broker *mb = (dt_broker *)b; /* the mutex is not part of the logical state */
    pthread_mutex_lock(&mb->mu);
    snprintf(buf, len, "%s", b->err);
    pthread_mutex_unlock(&mb->mu);
}

/* ------------------------------------------------------------------------------------------- */
/* Options and connection events                                                               */

void dt_broker_options_init(dt_broker_options *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = 2000;
    o->reconnect_min_ms = 100;
    o->reconnect_max_ms = 5000;
    o->ping_interval_ms = 5000;
    o->request_timeout_ms = 5000;
}

static dt_status options_check(const dt_broker_options *o, char *err, size_t len)
{
    if (o->connect_timeout_ms <= 0 || o->request_timeout_ms <= 0 || o->ping_interval_ms <= 0) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "connect, request and ping times must be > 0");
    }
    if (o->reconnect_min_ms <= 0 || o->reconnect_max_ms < o->reconnect_min_ms) {
        return dt__broker_errbuf(
            err, len, DT_EINVAL,
            "reconnect backoff needs 0 < reconnect_min_ms <= reconnect_max_ms");
    }
    return dt__broker_security_check(&o->security, err, len);
}

/* Exponential backoff with jitter, called by nats.c after each failed round over all URLs. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    (void)nc;
    dt_broker *b = closure;
    int64_t d = b->o.reconnect_min_ms;
    for (int i = 1; i < attempts && d < b->o.reconnect_max_ms; i++) {
        d *= 2;
    }
    if (d > b->o.reconnect_max_ms) {
        d = b->o.reconnect_max_ms;
    }
    int64_t jitter = d / 4;
    if (jitter > 0) {
        d += (int64_t)(nats_NowInNanoSeconds() % jitter);
    }
    return d;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    dt_broker *b = closure;
    if (b->o.on_disconnected != NULL) {
        b->o.on_disconnected(b, b->o.cb_ctx);
    }
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    dt_broker *b = closure;
    __atomic_add_fetch(&b->reconnects, 1, __ATOMIC_ACQ_REL);
    if (b->o.on_reconnected != NULL) {
        b->o.on_reconnected(b, b->o.cb_ctx);
    }
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    dt_broker *b = closure;
    if (b->o.on_closed != NULL) {
        b->o.on_closed(b, b->o.cb_ctx);
    }
    pthread_mutex_lock(&b->mu);
    b->closed_done = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    dt_broker *b = closure;
    if (b->o.on_error != NULL) {
        b->o.on_error(b, natsStatus_GetText(err), b->o.cb_ctx);
    }
}

static natsStatus make_nats_options(dt_broker *b, char **urls, int n)
{
    const dt_broker_options *o = &b->o;
    natsStatus s = natsOptions_Create(&b->opts);
    if (s == NATS_OK) {
        s = natsOptions_SetServers(b->opts, (const char **)urls, n);
    }
    if (s == NATS_OK && o->name != NULL) {
        s = natsOptions_SetName(b->opts, o->name);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(b->opts, o->connect_timeout_ms);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetMaxReconnect(b->opts, -1);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetCustomReconnectDelay(b->opts, reconnect_delay, b);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetPingInterval(b->opts, o->ping_interval_ms);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetSendAsap(b->opts, o->send_asap);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetFailRequestsOnDisconnect(b->opts, true);
    }
    return s;
}

static natsStatus set_callbacks(dt_broker *b)
{
    natsStatus s = natsOptions_SetClosedCB(b->opts, on_closed, b);
    if (s == NATS_OK) {
        s = natsOptions_SetDisconnectedCB(b->opts, on_disconnected, b);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectedCB(b->opts, on_reconnected, b);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetErrorHandler(b->opts, on_error, b);
    }
    if (s == NATS_OK && b->o.retry_initial_connect) {
        s = natsOptions_SetRetryOnFailedConnect(b->opts, true, on_reconnected, b);
    }
    return s;
}

/* The nats.c options of `b`: servers, timeouts, callbacks, then o->security (which only the
 * caller's `o` holds: the handle keeps no secret). *out_tls: the client asks for TLS. */
static dt_status configure(dt_broker *b, const dt_broker_options *o, bool *out_tls, char *err,
                           size_t len)
{
    char **urls = NULL;
    int n = 0;
    dt_status st = dt__broker_url_list(o->urls, &urls, &n, err, len);
    if (st != DT_OK) {
        return st;
    }
    natsStatus s = make_nats_options(b, urls, n);
    if (s == NATS_OK) {
        s = set_callbacks(b);
    }
    if (s != NATS_OK) {
        st = dt__broker_nerr(err, len, s, 0, "connection options");
    } else {
        bool tls = dt__broker_urls_want_tls(urls, n);
        st = dt__broker_security_apply(b->opts, &o->security, tls, &b->auth, err, len);
        *out_tls = tls || (o->security.tls_ca_file != NULL && o->security.tls_ca_file[0] != '\0') ||
                   (o->security.tls_cert_file != NULL && o->security.tls_cert_file[0] != '\0');
    }
    dt__broker_url_list_free(urls, n);
    return st;
}

/*
 * A failed first connect: refused credentials and TLS failures are DT_EAUTH (retrying will not
 * help), no reachable server DT_EBROKER (a timeout included). With TLS 1.3 a server that rejects
 * the client's certificate (or its absence) does so after the client's side of the handshake is
 * done: the client then sees the connection end where the server's first reply was due, which
 * nats.c reports as a protocol or I/O error. Over TLS those are taken as refusals too.
 */
static dt_status connect_status(natsStatus s, bool tls)
{
    if (tls && (s == NATS_PROTOCOL_ERROR || s == NATS_IO_ERROR)) {
        return DT_EAUTH;
    }
    switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
    case NATS_SSL_ERROR:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
        return DT_EAUTH;
    case NATS_TIMEOUT:
        return DT_EBROKER;
    default:
        return dt__broker_map(s, 0);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Connect and close                                                                           */

static dt_broker *broker_new(const dt_broker_options *o)
{
    dt_broker *b = dt_calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->o = *o;
    b->urls = o->urls != NULL ? dt_strdup(o->urls) : NULL;
    b->name = o->name != NULL ? dt_strdup(o->name) : NULL;
    if ((o->urls != NULL && b->urls == NULL) || (o->name != NULL && b->name == NULL)) {
        dt_free(b->urls);
        dt_free(b->name);
        dt_free(b);
        return NULL;
    }
    b->o.urls = b->urls;
    b->o.name = b->name;
    memset(&b->o.security, 0, sizeof(b->o.security)); /* borrowed for the connect call only */
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);
    return b;
}

static void broker_free(dt_broker *b)
{
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    natsOptions_Destroy(b->opts);
    dt__broker_auth_fini(&b->auth); /* after nats.c is done with it */
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
    dt_free(b->urls);
    dt_free(b->name);
    dt_free(b);
}

static natsStatus open_js(dt_broker *b)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = b->o.request_timeout_ms;
    return natsConnection_JetStream(&b->js, b->nc, &jo);
}

dt_status dt_broker_connect(const dt_broker_options *o, dt_broker **out, char *out_err,
                            size_t err_len)
{
    dt_broker_options defaults;
    if (o == NULL) {
        dt_broker_options_init(&defaults);
        o = &defaults;
    }
    if (out == NULL) {
        return dt__broker_errbuf(out_err, err_len, DT_EINVAL, "out is NULL");
    }
    dt_status st = options_check(o, out_err, err_len);
    if (st != DT_OK) {
        return st;
    }
    if (dt__broker_global_init() != DT_OK) {
        return dt__broker_errbuf(out_err, err_len, DT_EBROKER, "nats_Open failed");
    }
    dt_broker *b = broker_new(o);
    if (b == NULL) {
        return dt__broker_errbuf(out_err, err_len, DT_ENOMEM, "out of memory");
    }
    bool tls = false;
    st = configure(b, o, &tls, out_err, err_len);
    if (st != DT_OK) {
        dt_broker_close(b);
        return st;
    }
    natsStatus s = natsConnection_Connect(&b->nc, b->opts);
    if (s == NATS_NOT_YET_CONNECTED && b->o.retry_initial_connect) {
        s = NATS_OK;
    }
    if (s == NATS_OK) {
        s = open_js(b);
    }
    if (s != NATS_OK) {
        char shown[DT__BROKER_ERR_LEN];
        (void)dt__broker_nerr(out_err, err_len, s, 0, "connect to %s",
                              dt_nats_url_redact(o->urls, shown, sizeof(shown)));
        st = connect_status(s, tls);
        if (st == DT_EAUTH && (s == NATS_PROTOCOL_ERROR || s == NATS_IO_ERROR) && out_err != NULL) {
            size_t n = strlen(out_err);
            dt__errf(out_err + n, err_len - n,
                     " (the server closed the connection after the TLS handshake: does it require "
                     "a client certificate?)");
        }
        dt_broker_close(b);
        return st;
    }
    *out = b;
    return DT_OK;
}

static void wait_closed(dt_broker *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += CLOSE_WAIT_MS / 1000;
    pthread_mutex_lock(&b->mu);
    while (!b->closed_done) {
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
}

void dt_broker_close(dt_broker *b)
{
    if (b == NULL) {
        return;
    }
    if (b->nc != NULL) {
        if (natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED) {
            (void)natsConnection_FlushTimeout(b->nc, b->o.request_timeout_ms);
        }
        natsConnection_Close(b->nc);
        wait_closed(b);
    }
    broker_free(b);
}

/*
 * nats.c 3.4.1's reader thread finds the subscription of an incoming message under the
 * connection's subscription lock, drops that lock, builds the natsMsg and only then locks the
 * subscription, without holding a reference to it (fixed in nats.c 3.6.0, nats-io/nats.c#638).
 * A natsSubscription_Destroy that lands in that window frees the subscription under the reader,
 * which then locks a freed mutex and links the message into freed memory: heap corruption that
 * surfaces later as "double free or corruption" or a crash anywhere. Measured here: destroying
 * subscriptions while another connection publishes to them crashes within seconds natively and
 * shows invalid reads in natsConn_processMsg under valgrind. Every subscription that may still
 * receive (a publisher's reply inbox with PubAcks on their way, a pull subscription with a pull
 * request outstanding) is therefore taken down in three steps: unsubscribe (from then on the
 * reader no longer finds it), flush (the server's PONG is read after every message that arrived
 * before, so a reader that had already found the subscription is done with it), free. Without a
 * connection there is no reader to wait for: nats.c's reader ends when the connection drops.
 */
#define SUB_DESTROY_FLUSH_MS 1000

void dt__broker_flush_quiet(dt_broker *b)
{
    if (dt_broker_is_connected(b)) {
        int64_t ms = b->o.request_timeout_ms < SUB_DESTROY_FLUSH_MS ? b->o.request_timeout_ms
                                                                    : SUB_DESTROY_FLUSH_MS;
        (void)natsConnection_FlushTimeout(b->nc, ms);
    }
}

void dt__broker_sub_destroy(dt_broker *b, natsSubscription *sub)
{
    if (sub == NULL) {
        return;
    }
    if (natsSubscription_IsValid(sub)) {
        (void)natsSubscription_Unsubscribe(sub);
    }
    dt__broker_flush_quiet(b);
    natsSubscription_Destroy(sub);
}

bool dt_broker_is_connected(const dt_broker *b)
{
    return b != NULL && b->nc != NULL && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

int64_t dt_broker_max_payload(const dt_broker *b)
{
    return (b == NULL || b->nc == NULL) ? 0 : natsConnection_GetMaxPayload(b->nc);
}

dt_status dt_broker_flush(dt_broker *b, int64_t timeout_ms)
{
    if (timeout_ms <= 0) {
        return dt__broker_fail(b, DT_EINVAL, "flush: timeout must be > 0");
    }
    natsStatus s = natsConnection_FlushTimeout(b->nc, timeout_ms);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, 0, "flush");
    }
    return DT_OK;
}
