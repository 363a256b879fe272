/*
 * durabletask/metrics.h: a worker's metrics in the Prometheus text exposition format.
 *
 * A worker created with dt_worker_options.metrics_addr keeps a registry of counters, gauges and
 * histograms (docs/operations.md, "Metrics", lists every name and label) and, unless the address
 * is empty, serves it at http://<metrics_addr>/metrics. This header lets a program serve the same
 * text itself (a dashboard, an existing HTTP server): render it on any thread, as often as it
 * likes; the worker's threads never wait for a render.
 *
 * Layer: part of the worker runtime (durabletask/worker.h).
 * Threads: both calls are thread-safe once dt_worker_start returned, until dt_worker_destroy.
 */
#ifndef DURABLETASK_METRICS_H
#define DURABLETASK_METRICS_H

#include <stddef.h>

#include "durabletask/defs.h"
#include "durabletask/status.h"
#include "durabletask/worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The content type of the text dt_worker_metrics_render writes. */
#define DT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Renders the worker's metrics. On DT_OK *out is a NUL-terminated text of *out_len bytes that the
 * caller frees with dt_free (durabletask/alloc.h). DT_ESTATE when the worker has no metrics
 * (metrics_addr NULL) or is not started; DT_ENOMEM; DT_ETOOLARGE (8 MiB, not reached with a
 * bounded configuration). May wait up to the NATS request timeout for the hub's consumer info
 * (sampled at most once a second).
 */
DT_API dt_status dt_worker_metrics_render(dt_worker *w, char **out, size_t *out_len);

/* The port the worker's /metrics endpoint listens on (the one chosen for port 0), or -1 when it
 * serves none. */
DT_API int dt_worker_metrics_port(const dt_worker *w);

#ifdef __cplusplus
}
#endif
#endif
