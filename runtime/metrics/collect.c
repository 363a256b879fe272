/*
 * What a scrape samples outside the registry's atomics, and the render entry point.
 *
 * Partition files: for each partition this worker runs, the outbox rows not yet confirmed
 * published and the pending timers, read through a read-only SQLite connection opened for the
 * scrape (WAL: a reader never blocks the partition thread's writes, and the partition thread
 * never waits for a scrape). The connection is not kept between scrapes, though opening it is most
 * of a scrape's cost (~3 ms for 4 partitions): a connection held open would outlive the
 * partition's own store when the partition goes, and the store, no longer the last connection to
 * close, would leave its WAL behind for the next owner.
 *
 * Consumer backlog: for each durable consumer of the hub that this worker knows (every
 * partition's orch_<p>, its task queues' act_<queue>, and ingress), JetStream's consumer info
 * (num_pending, num_ack_pending, num_redelivered) and the age of the oldest unacknowledged
 * message, from one listing of each stream's consumers (dt_broker_consumer_stats, shared with
 * the dashboard), sampled at most once per DT__METRICS_BACKLOG_TTL_MS.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "metrics_priv_int.h"

dt_status dt__metrics_priv_create(dt__metrics *m)
{
    m->priv = dt_calloc(1, sizeof(*m->priv));
    if (m->priv == NULL) {
        return DT_ENOMEM;
    }
    pthread_mutex_init(&m->priv->mu, NULL);
    return DT_OK;
}

static void free_queues(dt__mqueue *q, size_t n)
{
    for (size_t i = 0; q != NULL && i < n; i++) {
        dt_free(q[i].kind);
        dt_free(q[i].stream);
        dt_free(q[i].durable);
        dt_free(q[i].filter);
    }
    dt_free(q);
}

static void drop_source(dt__metrics_priv *p)
{
    free_queues(p->queues, p->n_queues);
    dt_free(p->store_dir);
    p->queues = NULL;
    p->n_queues = 0;
    p->store_dir = NULL;
    p->broker = NULL;
    p->sampled_ms = 0;
}

void dt__metrics_priv_destroy(dt__metrics *m)
{
    if (m->priv == NULL) {
        return;
    }
    drop_source(m->priv);
    pthread_mutex_destroy(&m->priv->mu);
    dt_free(m->priv);
    m->priv = NULL;
}

dt_status dt__metrics_set_source(dt__metrics *m, const dt__metrics_source *src)
{
    dt__mqueue *q = dt_calloc(src->n_queues > 0 ? src->n_queues : 1, sizeof(*q));
    char *dir = dt_strdup(src->store_dir != NULL ? src->store_dir : "");
    bool ok = q != NULL && dir != NULL;
    for (size_t i = 0; ok && i < src->n_queues; i++) {
        const dt__metrics_queue *s = &src->queues[i];
        q[i].kind = dt_strdup(s->kind);
        q[i].stream = dt_strdup(s->stream);
        q[i].durable = dt_strdup(s->durable);
        q[i].filter = s->filter != NULL ? dt_strdup(s->filter) : NULL;
        ok = q[i].kind != NULL && q[i].stream != NULL && q[i].durable != NULL &&
             (s->filter == NULL || q[i].filter != NULL);
    }
    if (!ok) {
        free_queues(q, src->n_queues);
        dt_free(dir);
        return DT_ENOMEM;
    }
    pthread_mutex_lock(&m->priv->mu);
    drop_source(m->priv);
    m->priv->broker = src->broker;
    m->priv->store_dir = dir;
    m->priv->partitions = src->partitions;
    m->priv->queues = q;
    m->priv->n_queues = src->n_queues;
    pthread_mutex_unlock(&m->priv->mu);
    return DT_OK;
}

void dt__metrics_clear_source(dt__metrics *m)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&m->priv->mu);
    drop_source(m->priv);
    pthread_mutex_unlock(&m->priv->mu);
}

/* ---- partition files ---- */

static bool count_rows(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    bool ok =
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        *out = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return ok;
}

/* Outbox rows and timers of partition p's file; false when it cannot be read now. */
static bool sample_file(const char *dir, uint32_t p, int64_t *outbox, int64_t *timers)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/p%03u.db", dir, p);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return false;
    }
    sqlite3 *db = NULL;
    bool ok =
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_busy_timeout(db, 100);
        ok = count_rows(db, "SELECT count(*) FROM outbox", outbox) &&
             count_rows(db, "SELECT count(*) FROM timers", timers);
    }
    sqlite3_close(db);
    return ok;
}

/* One gauge per sampled partition. */
static void per_partition(dt__mbuf *b, const char *name, const char *help, const uint32_t *ps,
                          const int64_t *v, size_t n)
{
    dt__mbuf_header(b, name, "gauge", help);
    for (size_t i = 0; i < n; i++) {
        char l[32];
        snprintf(l, sizeof(l), "partition=\"%u\"", ps[i]);
        dt__mbuf_sample(b, name, l, (double)v[i]);
    }
}

/* At most this many partitions of one worker are sampled per scrape (the lowest numbers). */
#define FILES_MAX 64

static void render_files(dt__mbuf *b, dt__metrics *m)
{
    dt__metrics_priv *p = m->priv;
    int64_t outbox[FILES_MAX], timers[FILES_MAX];
    uint32_t ps[FILES_MAX];
    size_t n = 0;
    for (uint32_t q = 0; q < p->partitions && q < DT_BROKER_MAX_PARTITIONS && n < FILES_MAX; q++) {
        uint64_t bits = atomic_load_explicit(&m->owned[q / 64], memory_order_relaxed);
        if ((bits >> (q % 64) & 1) == 0) {
            continue;
        }
        if (sample_file(p->store_dir, q, &outbox[n], &timers[n])) {
            ps[n++] = q;
        } else {
            dt__metrics_add(&m->collect_errors, 1);
        }
    }
    per_partition(b, "dt_outbox_depth",
                  "Outbox rows of a partition run here not yet confirmed published.", ps, outbox,
                  n);
    per_partition(b, "dt_timers_pending",
                  "Durable timers of a partition run here that have not fired.", ps, timers, n);
}

/* ---- consumer backlog ---- */

/* Fills the queues of `stream` from one listing of its consumers (dt_broker_consumer_stats);
 * a queue whose consumer is not listed (not created yet) is left out of this scrape. */
static void sample_stream(dt__metrics *m, const char *stream, dt_broker_consumer_stat *st,
                          size_t cap)
{
    dt__metrics_priv *p = m->priv;
    size_t n = 0;
    bool listed = dt_broker_consumer_stats(p->broker, stream, st, cap, &n) == DT_OK;
    for (size_t i = 0; i < p->n_queues; i++) {
        dt__mqueue *q = &p->queues[i];
        if (strcmp(q->stream, stream) != 0) {
            continue;
        }
        q->ok = false;
        for (size_t k = 0; listed && k < n && !q->ok; k++) {
            if (strcmp(st[k].name, q->durable) == 0) {
                q->ok = true;
                q->pending = st[k].num_pending;
                q->in_flight = st[k].num_ack_pending > 0 ? (uint64_t)st[k].num_ack_pending : 0;
                q->redelivered = st[k].num_redelivered > 0 ? (uint64_t)st[k].num_redelivered : 0;
                q->oldest_ms = st[k].oldest_ms;
            }
        }
        if (!q->ok) {
            dt__metrics_add(&m->collect_errors, 1);
        }
    }
}

/* One consumer listing per stream (ORCH, ACT, IN: three requests, plus one message get per
 * consumer with a backlog), at most once per DT__METRICS_BACKLOG_TTL_MS. */
static void sample_backlog(dt__metrics *m)
{
    dt__metrics_priv *p = m->priv;
    int64_t now = dt__mono_ms();
    if (p->broker == NULL ||
        (p->sampled_ms != 0 && now - p->sampled_ms < DT__METRICS_BACKLOG_TTL_MS)) {
        return;
    }
    p->sampled_ms = now;
    size_t cap = p->n_queues + 64; /* room for consumers of the stream that are not listed here */
    dt_broker_consumer_stat *st = dt_alloc(cap * sizeof(*st));
    bool up = st != NULL && dt_broker_is_connected(p->broker);
    for (size_t i = 0; i < p->n_queues; i++) {
        bool first = true; /* the first queue of its stream samples the stream */
        for (size_t k = 0; k < i && first; k++) {
            first = strcmp(p->queues[k].stream, p->queues[i].stream) != 0;
        }
        if (up && first) {
            sample_stream(m, p->queues[i].stream, st, cap);
        } else if (!up) {
            /* Disconnected: every request would wait its full timeout; report nothing. */
            p->queues[i].ok = false;
        }
    }
    dt_free(st);
}

static void queue_labels(dt__mbuf *lb, const dt__mqueue *q)
{
    dt__mbuf_printf(lb, "kind=\"");
    dt__mbuf_label_value(lb, q->kind);
    dt__mbuf_printf(lb, "\",stream=\"");
    dt__mbuf_label_value(lb, q->stream);
    dt__mbuf_printf(lb, "\",consumer=\"");
    dt__mbuf_label_value(lb, q->durable);
    dt__mbuf_printf(lb, "\"");
}

typedef enum backlog_field { BL_PENDING, BL_IN_FLIGHT, BL_REDELIVERED, BL_AGE } backlog_field;

static void render_backlog_metric(dt__mbuf *b, dt__metrics_priv *p, const char *name,
                                  const char *help, backlog_field f, int64_t now_ms)
{
    dt__mbuf_header(b, name, "gauge", help);
    for (size_t i = 0; i < p->n_queues; i++) {
        const dt__mqueue *q = &p->queues[i];
        if (!q->ok) {
            continue;
        }
        double v = f == BL_PENDING       ? (double)q->pending
                   : f == BL_IN_FLIGHT   ? (double)q->in_flight
                   : f == BL_REDELIVERED ? (double)q->redelivered
                   : q->oldest_ms > 0 && now_ms > q->oldest_ms
                       ? (double)(now_ms - q->oldest_ms) / 1e3
                       : 0.0;
        dt__mbuf lb = {0};
        queue_labels(&lb, q);
        if (!lb.failed) {
            dt__mbuf_sample(b, name, lb.data, v);
        }
        dt__mbuf_free(&lb);
    }
}

static void render_backlog(dt__mbuf *b, dt__metrics *m)
{
    sample_backlog(m);
    dt__metrics_priv *p = m->priv;
    int64_t now_ms = dt__now_ms();
    render_backlog_metric(b, p, "dt_queue_pending",
                          "Messages of a work-item queue not yet delivered to any worker "
                          "(JetStream consumer num_pending).",
                          BL_PENDING, now_ms);
    render_backlog_metric(b, p, "dt_queue_in_flight",
                          "Messages of a work-item queue delivered and not yet acknowledged "
                          "(num_ack_pending).",
                          BL_IN_FLIGHT, now_ms);
    render_backlog_metric(b, p, "dt_queue_redelivered",
                          "Messages of a work-item queue delivered more than once and not yet "
                          "acknowledged (num_redelivered).",
                          BL_REDELIVERED, now_ms);
    render_backlog_metric(b, p, "dt_queue_oldest_age_seconds",
                          "Age of the oldest message of a work-item queue not yet acknowledged "
                          "(the first after the consumer's ack floor; 0 when empty).",
                          BL_AGE, now_ms);
}

void dt__metrics_render_sources(dt__mbuf *b, dt__metrics *m)
{
    if (m->priv->broker == NULL) {
        return;
    }
    render_files(b, m);
    render_backlog(b, m);
}

dt_status dt__metrics_render(dt__metrics *m, char **out, size_t *out_len)
{
    dt__mbuf b = {0};
    dt__metrics_render_registry(&b, m);
    pthread_mutex_lock(&m->priv->mu);
    dt__metrics_render_sources(&b, m);
    pthread_mutex_unlock(&m->priv->mu);
    dt__metrics_render_process(&b);
    dt__mbuf_header(&b, "dt_metrics_collect_errors_total", "counter",
                    "Samples a scrape could not take (a partition file or a consumer's info).");
    dt__mbuf_sample(&b, "dt_metrics_collect_errors_total", "",
                    (double)atomic_load_explicit(&m->collect_errors, memory_order_relaxed));
    if (b.failed || b.data == NULL) {
        bool big = b.cap * 2 > DT__METRICS_TEXT_MAX;
        dt__mbuf_free(&b);
        return big ? DT_ETOOLARGE : DT_ENOMEM;
    }
    *out = b.data;
    *out_len = b.len;
    return DT_OK;
}
