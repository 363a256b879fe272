/*
 * metrics_worker_int.h: what the worker (runtime/worker/supervisor/worker.c) calls to run its
 * metrics (worker_metrics.c). Each call does nothing for a worker without metrics_addr.
 */
#ifndef DT_METRICS_WORKER_INT_H
#define DT_METRICS_WORKER_INT_H

#include "durabletask/worker.h"
#include "metrics_int.h"

/* At start, before NATS: the registry and, for a non-empty address, the endpoint. On failure
 * the worker's errmsg says why (a bad address, a port in use). */
dt_status dt__worker_metrics_open(dt_worker *w);
/* Once the hub is known: what scrapes sample (partition files, the hub's consumers). */
dt_status dt__worker_metrics_source(dt_worker *w);
/* Before the broker closes: scrapes stop sampling it. */
void dt__worker_metrics_unsource(dt_worker *w);
/* At destroy: stops the endpoint and frees the registry. */
void dt__worker_metrics_close(dt_worker *w);

#endif
