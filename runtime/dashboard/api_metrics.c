/*
 * GET /metrics of the dashboard: the process set of its own process and the backlog of every
 * durable consumer of the hub's work-item streams, in the Prometheus text format the workers
 * serve (runtime/metrics renders both: one format, one set of names, documented in
 * docs/operations.md). The workers' own counters stay on the workers' /metrics.
 */
#include <string.h>

#include "dash_int.h"
#include "durabletask/alloc.h"
#include "durabletask/metrics.h"
#include "metrics/metrics_int.h"

#define QUEUES_MAX 256

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
static size_t hub_queues(dt_dashboard *d, dt__metrics_queue *q,
                         char (*names)[3][DT_BROKER_NAME_BUF])
{
    static const struct {
        dt_broker_stream s;
        const char *kind;
    } streams[] = {{DT_BROKER_STREAM_ORCH, "orchestration"},
                   {DT_BROKER_STREAM_ACT, "activity"},
                   {DT_BROKER_STREAM_IN, "ingress"}};
    static _Thread_local dt_broker_consumer_stat stats[QUEUES_MAX]; /* not on the stack */
    size_t n = 0;
    for (size_t k = 0; k < sizeof(streams) / sizeof(streams[0]) && n < QUEUES_MAX; k++) {
        char stream[DT_BROKER_NAME_BUF];
        size_t m = 0;
        if (dt_broker_stream_name(d->hub, streams[k].s, stream, sizeof(stream)) != DT_OK ||
            dt_broker_consumer_stats(d->b, stream, stats, QUEUES_MAX - n, &m) != DT_OK) {
            continue;
        }
        for (size_t i = 0; i < m; i++, n++) {
            memcpy(names[n][0], stream, sizeof(stream));
            memcpy(names[n][1], stats[i].name, sizeof(stats[i].name));
            memcpy(names[n][2], stats[i].filter, sizeof(stats[i].filter));
            q[n] = (dt__metrics_queue){streams[k].kind, names[n][0], names[n][1],
                                       names[n][2][0] != '\0' ? names[n][2] : NULL};
        }
    }
    return n;
}

enum MHD_Result dt__dash_metrics(dt_dashboard *d, struct MHD_Connection *conn)
{
    dt__metrics_queue *q = dt_calloc(QUEUES_MAX, sizeof(*q));
    char(*names)[3][DT_BROKER_NAME_BUF] = dt_calloc(QUEUES_MAX, sizeof(*names));
    char *text = NULL;
    size_t len = 0;
    dt_status st = q != NULL && names != NULL ? DT_OK : DT_ENOMEM;
    if (st == DT_OK) {
        dt__metrics_source src = {.broker = d->b, .queues = q, .n_queues = hub_queues(d, q, names)};
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
