/*
 * metrics_priv_int.h: what the files of runtime/metrics share besides metrics_int.h: the
 * renderer's state (the sampled sources and the backlog cache, under one mutex) and the
 * rendering pieces of each file.
 */
#ifndef DT_METRICS_PRIV_INT_H
#define DT_METRICS_PRIV_INT_H

#include <pthread.h>

#include "metrics_int.h"

/* The last backlog sample of one consumer. */
typedef struct dt__mqueue {
    char *kind, *stream, *durable, *filter; /* dt_alloc'd; filter may be NULL */
    bool ok;                                /* the last read found the consumer */
    uint64_t pending, in_flight, redelivered;
    int64_t oldest_ms; /* store time of the oldest unacknowledged message; 0: none */
} dt__mqueue;

typedef struct dt__metrics_priv {
    pthread_mutex_t mu; /* guards everything below; taken by render and the source calls only */
    dt_broker *broker;  /* NULL: no source */
    char *store_dir;
    uint32_t partitions;
    dt__mqueue *queues;
    size_t n_queues;
    int64_t sampled_ms; /* monotonic time of the last backlog sample (0: none) */
} dt__metrics_priv;

/* Backlog samples are reused for this long, so scrapes in a burst cost the broker nothing. */
#define DT__METRICS_BACKLOG_TTL_MS 1000

dt_status dt__metrics_priv_create(dt__metrics *m);
void dt__metrics_priv_destroy(dt__metrics *m);

/* registry.c: the registry's own counters, gauges and histograms. */
void dt__metrics_render_registry(dt__mbuf *b, dt__metrics *m);
/* process.c: process_* from /proc/self. */
void dt__metrics_render_process(dt__mbuf *b);
/* collect.c, under priv->mu: the partition files and the consumer backlog. */
void dt__metrics_render_sources(dt__mbuf *b, dt__metrics *m);

#endif
