/*
 * GET /metrics of the dashboard: the process set of its own process and the backlog of every
 * durable consumer of the hub's work-item streams, in the Prometheus text format the workers
 * serve (runtime/metrics renders both: one format, one set of names, documented in
 * docs/operations.md). The workers' own counters stay on the workers' /metrics.
 */
#include <stdio.h>
#include <string.h>

#include "dash_int.h"
#include "durabletask/alloc.h"
#include "durabletask/metrics.h"
#include "metrics/metrics_int.h"

#define QUEUES_MAX ((size_t)3 * DT__DASH_CONSUMERS_MAX)

dt_status dt__dash_metrics_open(dt_dashboard *d)
{
    dt__metrics_names none = {0};
    return dt__metrics_create(&none, &d->metrics);
}

void dt__dash_metrics_close(dt_dashboard *d)
{
    if (d->metrics != NULL) {
        dt__metrics_clear_source(d->metrics);
        dt__metrics_destroy(d->metrics);
        d->metrics = NULL;
    }
}

/* The hub's durable consumers as the renderer's queues (their strings in `names`). */
typedef struct queues {
    dt__metrics_queue *q;
    char (*names)[3][DT_BROKER_NAME_BUF];
    size_t n;
} queues;

static void add_queue(const char *kind, const char *stream, const dt_broker_consumer_stat *c,
                      void *ctx)
{
    queues *qs = ctx;
    if (qs->n == QUEUES_MAX) {
        return;
    }
    char(*nm)[DT_BROKER_NAME_BUF] = qs->names[qs->n];
    snprintf(nm[0], DT_BROKER_NAME_BUF, "%s", stream);
    snprintf(nm[1], DT_BROKER_NAME_BUF, "%s", c->name);
    snprintf(nm[2], DT_BROKER_NAME_BUF, "%s", c->filter);
    qs->q[qs->n++] = (dt__metrics_queue){kind, nm[0], nm[1], nm[2][0] != '\0' ? nm[2] : NULL};
}

enum MHD_Result dt__dash_metrics(dt_dashboard *d, struct MHD_Connection *conn)
{
    dt__metrics_queue *q = dt_calloc(QUEUES_MAX, sizeof(*q));
    char(*names)[3][DT_BROKER_NAME_BUF] = dt_calloc(QUEUES_MAX, sizeof(*names));
    char *text = NULL;
    size_t len = 0;
    dt_status st = q != NULL && names != NULL ? DT_OK : DT_ENOMEM;
    if (st == DT_OK) {
        queues qs = {q, names, 0};
        dt__dash_each_consumer(d, add_queue, &qs);
        dt__metrics_source src = {.broker = d->b, .queues = q, .n_queues = qs.n};
        st = dt__metrics_set_source(d->metrics, &src); /* copies what it keeps */
    }
    if (st == DT_OK) {
        st = dt__metrics_render(d->metrics, &text, &len);
    }
    dt_free(q);
    dt_free(names);
    if (st != DT_OK) {
        return dt__dash_reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics",
                                    "rendering the metrics failed: %s", dt_status_str(st));
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY);
    dt_free(text);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, DT_METRICS_CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}
