/*
 * The worker's side of metrics: the registry made from the registered names and the /metrics
 * endpoint at dt_worker_start (before NATS is reached, so a bad address fails the start at once),
 * the sources a scrape samples once the hub is known (the partition files and the hub's durable
 * consumers: orch_<p> on DT_<hub>_ORCH, act_<queue> on DT_<hub>_ACT, ingress on DT_<hub>_IN),
 * and the public calls of durabletask/metrics.h.
 */
#include <stdio.h>
#include <string.h>

#include "durabletask/metrics.h"
#include "metrics_http_int.h"
#include "metrics_worker_int.h"
#include "worker_int.h"

dt_status dt__worker_metrics_open(dt_worker *w)
{
    if (w->opt.metrics_addr == NULL) {
        return DT_OK;
    }
    const char **orchs = dt_calloc(w->n_orchs + 1, sizeof(char *));
    const char **acts = dt_calloc(w->n_acts + 1, sizeof(char *));
    dt_status st = orchs != NULL && acts != NULL ? DT_OK : DT_ENOMEM;
    for (size_t i = 0; st == DT_OK && i < w->n_orchs; i++) {
        orchs[i] = w->orchs[i].name;
    }
    for (size_t i = 0; st == DT_OK && i < w->n_acts; i++) {
        acts[i] = w->acts[i].name;
    }
    dt__metrics_names names = {orchs, w->n_orchs, acts, w->n_acts};
    if (st == DT_OK) {
        st = dt__metrics_create(&names, &w->metrics);
    }
    dt_free(orchs);
    dt_free(acts);
    if (st == DT_OK && w->opt.metrics_addr[0] != '\0') {
        st = dt__metrics_http_start(w->opt.metrics_addr, w->metrics, &w->metrics_http, w->errmsg,
                                    sizeof(w->errmsg));
    } else if (st != DT_OK) {
        snprintf(w->errmsg, sizeof(w->errmsg), "metrics: out of memory");
    }
    return st;
}

/* Adds the consumer `durable` of `stream` kind with filter subject `filter`. */
static dt_status add_queue(dt__metrics_queue *q, size_t *n, char (*bufs)[3][DT_BROKER_NAME_BUF],
                           const char *kind, const char *stream, const char *durable,
                           const char *filter)
{
    snprintf(bufs[*n][0], DT_BROKER_NAME_BUF, "%s", stream);
    snprintf(bufs[*n][1], DT_BROKER_NAME_BUF, "%s", durable);
    snprintf(bufs[*n][2], DT_BROKER_NAME_BUF, "%s", filter);
    q[*n] = (dt__metrics_queue){kind, bufs[*n][0], bufs[*n][1], bufs[*n][2]};
    (*n)++;
    return DT_OK;
}

/* The task queues of the registered activities, each once. */
static bool queue_seen(const dt_worker *w, size_t upto, const char *queue)
{
    for (size_t i = 0; i < upto; i++) {
        if (strcmp(w->acts[i].task_queue, queue) == 0) {
            return true;
        }
    }
    return false;
}

static dt_status list_queues(dt_worker *w, dt__metrics_queue *q, size_t *n,
                             char (*bufs)[3][DT_BROKER_NAME_BUF])
{
    char stream[DT_BROKER_NAME_BUF], filter[DT_BROKER_NAME_BUF], durable[DT_BROKER_NAME_BUF];
    char tail[16];
    dt_status st = dt_broker_stream_name(w->hub, DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
    for (uint32_t p = 0; st == DT_OK && p < w->hub_cfg.partitions; p++) {
        snprintf(tail, sizeof(tail), "%u", p);
        snprintf(durable, sizeof(durable), "orch_%u", p); /* as partition.c names it */
        st = dt_broker_subject(w->hub, DT_BROKER_SUBJ_ORCH, tail, filter, sizeof(filter));
        st = st == DT_OK ? add_queue(q, n, bufs, "orchestration", stream, durable, filter) : st;
    }
    if (st == DT_OK) {
        st = dt_broker_stream_name(w->hub, DT_BROKER_STREAM_ACT, stream, sizeof(stream));
    }
    for (size_t i = 0; st == DT_OK && i < w->n_acts; i++) {
        const char *queue = w->acts[i].task_queue;
        if (queue_seen(w, i, queue)) {
            continue;
        }
        st = dt__act_durable_name(queue, durable, sizeof(durable));
        if (st == DT_OK) {
            st = dt_broker_subject(w->hub, DT_BROKER_SUBJ_ACT, queue, filter, sizeof(filter));
        }
        st = st == DT_OK ? add_queue(q, n, bufs, "activity", stream, durable, filter) : st;
    }
    if (st == DT_OK) {
        st = dt_broker_stream_name(w->hub, DT_BROKER_STREAM_IN, stream, sizeof(stream));
    }
    if (st == DT_OK) {
        st = dt_broker_subject(w->hub, DT_BROKER_SUBJ_IN, ">", filter, sizeof(filter));
    }
    return st == DT_OK ? add_queue(q, n, bufs, "ingress", stream, "ingress", filter) : st;
}

dt_status dt__worker_metrics_source(dt_worker *w)
{
    if (w->metrics == NULL) {
        return DT_OK;
    }
    size_t cap = (size_t)w->hub_cfg.partitions + w->n_acts + 1;
    dt__metrics_queue *q = dt_calloc(cap, sizeof(*q));
    char(*bufs)[3][DT_BROKER_NAME_BUF] = dt_calloc(cap, sizeof(*bufs));
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", w->data_dir, w->hub); /* as partition.c places files */
    size_t n = 0;
    dt_status st = q != NULL && bufs != NULL ? list_queues(w, q, &n, bufs) : DT_ENOMEM;
    if (st == DT_OK) {
        dt__metrics_source src = {w->broker, dir, w->hub_cfg.partitions, q, n};
        st = dt__metrics_set_source(w->metrics, &src);
    }
    dt_free(q);
    dt_free(bufs);
    if (st != DT_OK) {
        snprintf(w->errmsg, sizeof(w->errmsg), "metrics: %s", dt_status_str(st));
    }
    return st;
}

void dt__worker_metrics_unsource(dt_worker *w)
{
    dt__metrics_clear_source(w->metrics);
}

void dt__worker_metrics_close(dt_worker *w)
{
    dt__metrics_http_stop(w->metrics_http);
    w->metrics_http = NULL;
    dt__metrics_destroy(w->metrics);
    w->metrics = NULL;
}

dt_status dt_worker_metrics_render(dt_worker *w, char **out, size_t *out_len)
{
    if (w == NULL || w->metrics == NULL || out == NULL || out_len == NULL) {
        return DT_ESTATE;
    }
    return dt__metrics_render(w->metrics, out, out_len);
}

int dt_worker_metrics_port(const dt_worker *w)
{
    return w != NULL ? dt__metrics_http_port(w->metrics_http) : -1;
}
