/*
 * worker_int.h: the worker runtime's shared internals (runtime/worker).
 *
 * A dt_worker owns: the broker connection, the registry of orchestrators and activities, the
 * lease manager (which partitions this worker may run), one partition thread per held partition
 * (orchestration episodes, timers, outbox), the activity pool and the ingress router. The
 * supervisor thread starts and stops partition threads as leases come and go.
 */
#ifndef DT_WORKER_INT_H
#define DT_WORKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "activity_int.h"
#include "common_int.h"
#include "dt_broker.h"
#include "durabletask/entity.h"
#include "durabletask/worker.h"
#include "leases_int.h"

typedef struct dt__partition dt__partition;
typedef struct dt__ingress dt__ingress;

typedef struct orch_def {
    char *name;
    dt_orchestrator_fn fn;
    void *user_data;
} orch_def;

struct dt_worker {
    dt_worker_options opt; /* strings point at the copies below */
    char *nats_url, *hub, *data_dir, *worker_id, *version;

    orch_def *orchs;
    size_t n_orchs;
    dt__activity_def *acts;
    size_t n_acts;
    struct dt__entity_def *ents; /* entity functions (entity_registry.c) */
    size_t n_ents;

    dt_broker *broker;
    dt_broker_hub_config hub_cfg;
    dt__leases *leases;
    dt__activity_pool *activities;
    struct dt__local_acts *local_acts; /* activities run for this worker's partitions; or NULL */
    dt__ingress *ingress;
    dt__tracer *tracer;         /* NULL: tracing off (runtime/tracing, from the OTEL_* variables) */
    dt__partition **partitions; /* [hub_cfg.partitions], NULL where not running */
    /* Per partition, under sup_mu: no start before retry_at (mono ms); the delay of the next
     * exclusion after a store that did not open (0: none yet). */
    int64_t *part_retry_at, *part_backoff;

    pthread_t supervisor;
    pthread_mutex_t sup_mu; /* guards partitions[] and frozen; held while starting/stopping */
    bool frozen;            /* shutting down: start no partition */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool started;  /* dt_worker_start was called */
    bool running;  /* under mu: dt_worker_start succeeded (dt_worker_stop must tear down) */
    bool stopping; /* under mu */
    char errmsg[512];
    struct dt__metrics *metrics;           /* NULL without metrics_addr (runtime/metrics) */
    struct dt__metrics_http *metrics_http; /* NULL unless served over HTTP */
    struct dt__remote *remote; /* orchestrations run by SDK workers (runtime/remote); or NULL */
};

/* ---- dead_letter.c ---- */
/* A message the worker cannot use (dead_letter.c); pointers borrowed for the call. */
typedef struct dt__dead_letter_info {
    const char *kind;        /* subject token: "ingress", "orchestration", "event", ... */
    const char *reason;      /* Dt-Reason */
    const char *instance_id; /* NULL when unknown */
    const void *data;        /* the original body (cut to what fits) */
    size_t len;
    const char *orig_subject; /* NULL: "-" */
} dt__dead_letter_info;
/* Publishes the dead letter (best effort) and logs it, prefixed with `who`. */
void dt__worker_dead_letter(dt_worker *w, const char *who, const dt__dead_letter_info *d);

/* ---- log.c (a leaf: every part of the worker may log) ---- */
/* Logs through the user's sink (thread-safe). */
void dt__worker_log(dt_worker *w, dt_log_level level, const char *instance_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- registry.c ---- */
/* Finds an orchestrator for `name` and `version` under the worker's version rules. Returns
 * DT_OK (fn set), DT_EUNKNOWNNAME, or DT_EVERSION with a message in why. */
dt_status dt__worker_lookup(dt_worker *w, const char *name, const char *version,
                            dt_orchestrator_fn *fn, void **user_data, char *why, size_t why_len);

/* ---- supervisor/worker.c (declared here for runtime/remote/attach.c) ---- */
/* Attaches runtime/remote's dt__remote (borrowed; outlives w) before dt_worker_start: episodes
 * of the orchestrations it takes run in SDK workers. DT_ESTATE when started or already set. */
dt_status dt__worker_set_remote(dt_worker *w, struct dt__remote *r);

/* ---- entity_registry.c ---- */
/* The entity function registered under `name` (any case): DT_OK, or DT_EUNKNOWNNAME. */
dt_status dt__worker_entity_lookup(dt_worker *w, const char *name, dt_entity_fn *fn,
                                   void **user_data);
/* Frees the registry (dt_worker_destroy). */
void dt__worker_entities_free(dt_worker *w);

#endif
