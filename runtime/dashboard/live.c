/*
 * Live updates: one feed of the hub's status bucket (dt_broker_kv_feed: every change a worker or
 * client writes), fanned out to the page as server-sent events, and counted for the overview's
 * throughput.
 *
 * Each GET /api/events gets a stream with a bounded queue of its own. The feed's callback (a
 * nats.c thread) formats each change once and appends it to every stream's queue. A stream's
 * reader (a daemon thread) hands out what is queued; when nothing is, it suspends its
 * connection and returns 0 (libmicrohttpd's way to wait without holding a thread), and the
 * next change resumes it. A ticker thread re-arms the feed after reconnections, and every 15 s
 * wakes every stream for a comment line, so idle streams stay open through proxies and a
 * browser that went away is noticed. A stream whose queue overflows (a slow reader), or a feed
 * that may have missed changes, gets a "resync" event: the page then reloads what it shows.
 *
 * Lock order: l->mu, then libmicrohttpd's own (MHD_resume_connection is called under l->mu).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "dash_int.h"
#include "durabletask/alloc.h"
#include "jconv.h"
#include "protocol/protocol_int.h"

#define LIVE_QUEUE      512 /* events queued per stream before it resyncs */
#define LIVE_PING_MS    15000
#define LIVE_BLOCK      ((size_t)32 * 1024)
#define LIVE_RATE_SLOTS 64 /* one per second */
#define LIVE_RATE_SPAN  10 /* seconds averaged */

typedef struct stream {
    dt__dash_live *l;
    struct MHD_Connection *conn;
    char *q[LIVE_QUEUE]; /* dt_alloc'd SSE texts, oldest at head */
    size_t head, n;
    size_t off; /* bytes of q[head] already sent */
    bool suspended, resync, ping, hello_done;
    struct stream *next;
} stream;

struct dt__dash_live {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* wakes the ticker to stop */
    stream *streams;
    bool closing;
    dt_broker_kv_feed *feed;
    pthread_t ticker;
    bool ticker_started;
    int64_t slot_sec[LIVE_RATE_SLOTS];
    uint32_t changes[LIVE_RATE_SLOTS], finished[LIVE_RATE_SLOTS];
};

/* Wakes a suspended stream. Under l->mu. */
static void wake(stream *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* Appends `text` (copied) to every stream. Under l->mu. */
static void broadcast(dt__dash_live *l, const char *text)
{
    for (stream *s = l->streams; s != NULL; s = s->next) {
        if (s->n == LIVE_QUEUE) {
            s->resync = true;
        } else {
            char *copy = dt_strdup(text);
            if (copy == NULL) {
                s->resync = true;
            } else {
                s->q[(s->head + s->n++) % LIVE_QUEUE] = copy;
            }
        }
        wake(s);
    }
}

static void count(dt__dash_live *l, bool finished)
{
    int64_t sec = dt__mono_ms() / 1000;
    size_t i = (size_t)(sec % LIVE_RATE_SLOTS);
    if (l->slot_sec[i] != sec) {
        l->slot_sec[i] = sec;
        l->changes[i] = l->finished[i] = 0;
    }
    l->changes[i]++;
    l->finished[i] += finished ? 1 : 0;
}

void dt__dash_live_rates(dt__dash_live *l, double *out_changes, double *out_finished)
{
    pthread_mutex_lock(&l->mu);
    int64_t now = dt__mono_ms() / 1000;
    uint64_t c = 0, f = 0;
    for (size_t i = 0; i < LIVE_RATE_SLOTS; i++) {
        /* The last LIVE_RATE_SPAN complete seconds (the current one is still counting). */
        if (l->slot_sec[i] < now && l->slot_sec[i] >= now - LIVE_RATE_SPAN) {
            c += l->changes[i];
            f += l->finished[i];
        }
    }
    pthread_mutex_unlock(&l->mu);
    *out_changes = (double)c / LIVE_RATE_SPAN;
    *out_finished = (double)f / LIVE_RATE_SPAN;
}

/* The SSE text of one change ("event: status" with a small JSON object), or NULL. */
static char *change_text(const dt_broker_kv_change *ch, bool *out_finished)
{
    char id[DT_INSTANCE_ID_MAX + 1];
    *out_finished = false;
    if (dt__status_key_decode(ch->key, id, sizeof(id)) != DT_OK) {
        return NULL;
    }
    json_t *o = json_pack("{s:o,s:I}", "instance_id", dt__jconv_str(id), "revision",
                          (json_int_t)ch->revision);
    if (o == NULL) {
        return NULL;
    }
    if (ch->op != DT_BROKER_KV_PUT) {
        json_object_set_new(o, "deleted", json_true());
    } else {
        Dtpb__InstanceStatus *st =
            dtpb__instance_status__unpack(NULL, ch->len, (const uint8_t *)ch->value);
        if (st == NULL) {
            json_decref(o);
            return NULL;
        }
        int32_t rs = (int32_t)st->runtime_status;
        *out_finished = dt__status_finished(rs);
        json_object_set_new(o, "name", dt__jconv_str(st->name));
        json_object_set_new(
            o, "runtime_status",
            json_string(dt_client_runtime_status_name((dt_client_runtime_status)rs)));
        int64_t ms = st->last_updated_at != NULL ? st->last_updated_at->seconds * 1000 +
                                                       st->last_updated_at->nanos / 1000000
                                                 : 0;
        json_object_set_new(o, "last_updated_at_ms", json_integer(ms));
        dtpb__instance_status__free_unpacked(st, NULL);
    }
    char *data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (data == NULL) {
        return NULL;
    }
    size_t n = strlen(data) + 32;
    char *text = dt_alloc(n);
    if (text != NULL) {
        snprintf(text, n, "event: status\ndata: %s\n\n", data);
    }
    free(data); /* jansson's malloc */
    return text;
}

/* The feed's callback: a nats.c thread, one change at a time. */
static void on_change(const dt_broker_kv_change *ch, void *ctx)
{
    dt__dash_live *l = ctx;
    bool finished = false;
    char *text = change_text(ch, &finished);
    pthread_mutex_lock(&l->mu);
    count(l, finished);
    if (text != NULL) {
        broadcast(l, text);
    }
    pthread_mutex_unlock(&l->mu);
    dt_free(text);
}

static void *ticker_main(void *arg)
{
    dt__dash_live *l = arg;
    int64_t next_ping = dt__mono_ms() + LIVE_PING_MS;
    pthread_mutex_lock(&l->mu);
    while (!l->closing) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
        if (l->closing) {
            break;
        }
        pthread_mutex_unlock(&l->mu);
        bool resync = false;
        dt_broker_kv_feed_refresh(l->feed, &resync); /* a failure is tried again next second */
        pthread_mutex_lock(&l->mu);
        if (resync) {
            broadcast(l, "event: resync\ndata: {}\n\n");
        }
        if (dt__mono_ms() >= next_ping) {
            next_ping = dt__mono_ms() + LIVE_PING_MS;
            for (stream *s = l->streams; s != NULL; s = s->next) {
                s->ping = true;
                wake(s);
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

dt_status dt__dash_live_create(dt_broker *b, const char *hub, dt__dash_live **out, char *errbuf,
                               size_t errlen)
{
    char bucket[DT_BROKER_NAME_BUF];
    dt_status st = dt_broker_bucket_name(hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    if (st != DT_OK) {
        return st;
    }
    dt__dash_live *l = dt_calloc(1, sizeof(*l));
    if (l == NULL) {
        return DT_ENOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    st = dt_broker_kv_feed_open(b, bucket, 0, on_change, l, &l->feed);
    if (st != DT_OK) {
        snprintf(errbuf, errlen, "status feed: %s", dt_broker_errmsg(b));
    } else if (pthread_create(&l->ticker, NULL, ticker_main, l) != 0) {
        snprintf(errbuf, errlen, "status feed: cannot start a thread");
        st = DT_ENOMEM;
    } else {
        l->ticker_started = true;
    }
    if (st != DT_OK) {
        dt__dash_live_destroy(l);
        return st;
    }
    *out = l;
    return DT_OK;
}

void dt__dash_live_shutdown(dt__dash_live *l)
{
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    pthread_cond_broadcast(&l->cond);
    for (stream *s = l->streams; s != NULL; s = s->next) {
        wake(s);
    }
    pthread_mutex_unlock(&l->mu);
}

void dt__dash_live_destroy(dt__dash_live *l)
{
    if (l == NULL) {
        return;
    }
    dt__dash_live_shutdown(l);
    if (l->ticker_started) {
        pthread_join(l->ticker, NULL);
    }
    /* After this the callback is not running and will not run again. */
    dt_broker_kv_feed_close(l->feed);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    dt_free(l);
}

/* Copies what fits of the queue's head into buf. Under l->mu. */
static size_t take(stream *s, char *buf, size_t max)
{
    size_t o = 0;
    while (s->n > 0 && o < max) {
        const char *t = s->q[s->head];
        size_t left = strlen(t + s->off);
        size_t k = left < max - o ? left : max - o;
        memcpy(buf + o, t + s->off, k);
        o += k;
        s->off += k;
        if (s->off == strlen(t)) {
            dt_free(s->q[s->head]);
            s->head = (s->head + 1) % LIVE_QUEUE;
            s->n--;
            s->off = 0;
        }
    }
    return o;
}

/* Writes a fixed text if it fits whole; only between events (off 0). */
static size_t put_fixed(stream *s, char *buf, size_t max, const char *t)
{
    size_t n = strlen(t);
    if (s->off != 0 || n > max) {
        return 0;
    }
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes of a stream, not a string */
    memcpy(buf, t, n);
    return n;
}

/* libmicrohttpd asks for the next bytes of the stream (a daemon thread). */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    dt__dash_live *l = s->l;
    pthread_mutex_lock(&l->mu);
    ssize_t n = 0;
    if (l->closing) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (!s->hello_done) {
        n = (ssize_t)put_fixed(s, buf, max, "retry: 2000\nevent: hello\ndata: {}\n\n");
        s->hello_done = n > 0;
    } else if (s->resync && s->off == 0) {
        while (s->n > 0) { /* what is queued is superseded by the page's reload */
            dt_free(s->q[s->head]);
            s->head = (s->head + 1) % LIVE_QUEUE;
            s->n--;
        }
        n = (ssize_t)put_fixed(s, buf, max, "event: resync\ndata: {}\n\n");
        s->resync = n == 0;
    } else if (s->n > 0) {
        n = (ssize_t)take(s, buf, max);
    } else if (s->ping) {
        n = (ssize_t)put_fixed(s, buf, max, ": ping\n\n");
        s->ping = n == 0;
    }
    if (n == 0) {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* The stream's response is gone (the connection ended): unlink and free it. */
static void free_stream(void *cls)
{
    stream *s = cls;
    dt__dash_live *l = s->l;
    pthread_mutex_lock(&l->mu);
    for (stream **p = &l->streams; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < s->n; i++) {
        dt_free(s->q[(s->head + i) % LIVE_QUEUE]);
    }
    dt_free(s);
}

enum MHD_Result dt__dash_live_stream(dt__dash_live *l, struct MHD_Connection *conn)
{
    stream *s = dt_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MHD_NO;
    }
    s->l = l;
    s->conn = conn;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LIVE_BLOCK,
                                                               read_stream, s, free_stream);
    if (r == NULL) {
        dt_free(s);
        return MHD_NO;
    }
    pthread_mutex_lock(&l->mu);
    s->next = l->streams;
    l->streams = s;
    pthread_mutex_unlock(&l->mu);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}
