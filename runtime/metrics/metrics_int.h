/*
 * metrics_int.h: the worker's metrics registry and its Prometheus text exposition (internal,
 * runtime/metrics).
 *
 * A registry holds a fixed set of counters, gauges and histograms, all made of C11 atomics with
 * relaxed ordering: the partition and activity threads write them with one atomic add each
 * (a histogram observation is two), never take a lock and never allocate; a scrape reads them
 * from the HTTP thread while they move. Nothing is registered at run time: the label values are
 * the kinds ("orchestration", "activity"), the names the worker registered before it started
 * (every other name is counted under "_other") and the hub's partitions and task queues, so the
 * number of series is bounded by the worker's configuration, not by its traffic.
 *
 * Every hook accepts a NULL registry and then does nothing, so that a worker without metrics pays
 * one predictable branch per hook.
 *
 * Rendering (dt__metrics_render) also samples what lives elsewhere: the process (/proc/self),
 * each owned partition's SQLite file (outbox rows, pending timers; through a read-only
 * connection of its own, so no partition thread ever waits for a scrape), and the backlog of the
 * hub's durable consumers (JetStream consumer info, cached for a second). Those sources are set by
 * dt__metrics_set_source and cleared before the broker closes; they are guarded by the
 * registry's mutex, which only the renderer and the owner take.
 *
 * Layer: below the worker (runtime/worker calls the hooks), above the broker adapter and SQLite.
 * Threads: hooks are thread-safe and lock-free; render and the source calls are thread-safe
 * (serialized by the registry's mutex); create/destroy by the owner.
 */
#ifndef DT_METRICS_INT_H
#define DT_METRICS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_broker.h"
#include "durabletask/status.h"

typedef struct dt__metrics dt__metrics;

/* The two kinds of work item (label kind). */
typedef enum dt__mkind { DT__MKIND_ORCH = 0, DT__MKIND_ACT = 1 } dt__mkind;
#define DT__MKIND_N 2

/* Buckets of a histogram, at most (the +Inf bucket not included). */
#define DT__MHIST_MAX 20

/*
 * A histogram over integer observations (microseconds or items). counts[i] counts observations
 * v <= bounds[i] (and > bounds[i-1]); counts[n_bounds] the rest (+Inf). The exposition divides
 * bounds and sum by `scale` (1e6 for microseconds shown as seconds).
 */
typedef struct dt__mhist {
    const int64_t *bounds; /* static, increasing */
    size_t n_bounds;
    double scale;
    _Atomic uint64_t counts[DT__MHIST_MAX + 1];
    _Atomic uint64_t sum;
} dt__mhist;

/* The counters of one registered name. */
typedef struct dt__mname {
    char *name; /* dt_alloc'd copy */
    _Atomic uint64_t started, completed, failed;
    dt__mhist duration; /* activities only */
} dt__mname;

/* What dt__metrics_create needs: the names registered on the worker (borrowed for the call;
 * duplicates are allowed and counted once). */
typedef struct dt__metrics_names {
    const char *const *orchestrators;
    size_t n_orchestrators;
    const char *const *activities;
    size_t n_activities;
} dt__metrics_names;

/* One durable consumer whose backlog is exposed (strings copied by set_source). */
typedef struct dt__metrics_queue {
    const char *kind;   /* "orchestration", "activity" or "ingress" */
    const char *stream; /* full stream name */
    const char *durable;
    const char *filter; /* the consumer's filter subject (oldest-age look-up), or NULL */
} dt__metrics_queue;

/* What the renderer samples besides the atomics; pointers borrowed for the call except
 * `broker`, which must stay valid until dt__metrics_clear_source returns. */
typedef struct dt__metrics_source {
    dt_broker *broker;
    const char *store_dir; /* <data_dir>/<hub>: partition p's file is p%03u.db in it */
    uint32_t partitions;
    const dt__metrics_queue *queues;
    size_t n_queues;
} dt__metrics_source;

struct dt__metrics {
    dt__mname *names[DT__MKIND_N]; /* n_names[k] registered, then one "_other" entry */
    size_t n_names[DT__MKIND_N];
    uint32_t *index[DT__MKIND_N]; /* open addressing over names; UINT32_MAX empty */
    size_t index_cap[DT__MKIND_N];

    dt__mhist episode;            /* an episode's run through the engine, microseconds */
    dt__mhist commit;             /* a batch's commit (log append + SQLite), microseconds */
    dt__mhist fire_lag;           /* due time to processing of a timer, microseconds */
    dt__mhist batch[DT__MKIND_N]; /* messages per fetch that returned some */
    _Atomic uint64_t cache_hits, cache_misses;
    _Atomic uint64_t publish_errors[DT__MKIND_N];
    _Atomic uint64_t redelivered[DT__MKIND_N];
    _Atomic uint64_t collect_errors;
    _Atomic int64_t partitions_owned;
    /* Bit p: partition p is run by this worker (its file is sampled by render). */
    _Atomic uint64_t owned[DT_BROKER_MAX_PARTITIONS / 64];

    struct dt__metrics_priv *priv; /* the renderer's state (registry.c, collect.c) */
};

/* Creates a registry for these names. On DT_OK *out is freed with dt__metrics_destroy (NULL
 * accepted). DT_ENOMEM. */
dt_status dt__metrics_create(const dt__metrics_names *names, dt__metrics **out);
void dt__metrics_destroy(dt__metrics *m);

/* Sets (or replaces) what render samples; DT_ENOMEM leaves the old source. */
dt_status dt__metrics_set_source(dt__metrics *m, const dt__metrics_source *src);
/* Forgets the source: returns once no render uses the broker any more. */
void dt__metrics_clear_source(dt__metrics *m);

/*
 * Renders every metric in the Prometheus text exposition format (version 0.0.4). On DT_OK *out
 * is a NUL-terminated dt_alloc'd text of *out_len bytes, freed by the caller with dt_free.
 * DT_ENOMEM; DT_ETOOLARGE past DT__METRICS_TEXT_MAX. Thread-safe; may wait for the broker (each
 * consumer-info request is bounded by the connection's request timeout) but never for a
 * partition or activity thread.
 */
#define DT__METRICS_TEXT_MAX ((size_t)8 << 20)
dt_status dt__metrics_render(dt__metrics *m, char **out, size_t *out_len);

/* ---- hooks (thread-safe, lock-free; m may be NULL) ---- */

/* The entry of `name` (NULL or unregistered: "_other"). */
dt__mname *dt__metrics_name(dt__metrics *m, dt__mkind kind, const char *name);

void dt__mhist_observe(dt__mhist *h, int64_t v);

/* Monotonic microseconds (for the durations the hooks take). */
int64_t dt__metrics_now_us(void);

static inline void dt__metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* An activity is about to run. */
void dt__metrics_activity_started(dt__metrics *m, const char *name);
/* An activity returned after `us` microseconds, failed or not. */
void dt__metrics_activity_done(dt__metrics *m, const char *name, int64_t us, bool failed);
/* An activity failed without running (unknown name, delivered too often). */
void dt__metrics_activity_refused(dt__metrics *m, const char *name);
/* A fetch of `n` (> 0) work items of `kind`. */
void dt__metrics_batch(dt__metrics *m, dt__mkind kind, size_t n);
/* A work item delivered more than once. */
void dt__metrics_redelivered(dt__metrics *m, dt__mkind kind, uint64_t deliveries);
/* A publish (outbox row or activity result) that failed. */
void dt__metrics_publish_error(dt__metrics *m, dt__mkind kind);
/* An episode ran through the engine for `us` microseconds; `cached`: the engine held the
 * instance's history (replay skipped), `replayed`: it had to be read and replayed. */
void dt__metrics_episode(dt__metrics *m, int64_t us, bool cached, bool replayed);
/* A timer due at due_ms (Unix ms) is processed at now_ms. */
void dt__metrics_timer_fired(dt__metrics *m, int64_t due_ms, int64_t now_ms);
/* A partition thread of partition p took (owned) or gave up its partition. */
void dt__metrics_partition(dt__metrics *m, uint32_t p, bool owned);

/* A committed batch: `commits` are the partition's dt__episode_commit array (history/store_int.h;
 * void here so this header needs no store types), its commit took `us` microseconds. Counts the
 * executions started and finished by name. */
void dt__metrics_committed(dt__metrics *m, const void *commits, size_t n, int64_t us);

/* ---- exposition helpers (expo.c), for the renderer and the unit tests ---- */

/* A growable text buffer, bounded by DT__METRICS_TEXT_MAX. */
typedef struct dt__mbuf {
    char *data; /* dt_alloc'd, NUL-terminated */
    size_t len, cap;
    bool failed; /* an append ran out of memory or past the bound: the text is incomplete */
} dt__mbuf;
void dt__mbuf_printf(dt__mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dt__mbuf_free(dt__mbuf *b);
/* A label value escaped per the format (\ -> \\, " -> \", newline -> \n). */
void dt__mbuf_label_value(dt__mbuf *b, const char *v);
/* "# HELP name help\n# TYPE name type\n" (help escaped: \ and newline). */
void dt__mbuf_header(dt__mbuf *b, const char *name, const char *type, const char *help);
/* One sample "name{labels} value\n"; labels is "" or the rendered inside of the braces. */
void dt__mbuf_sample(dt__mbuf *b, const char *name, const char *labels, double v);
/* The _bucket (cumulative, le="+Inf" last), _sum and _count lines of a histogram; labels as
 * above (le is appended). _count is the +Inf bucket, so the two always agree. */
void dt__mbuf_histogram(dt__mbuf *b, const char *name, const char *labels, const dt__mhist *h);

/* The bucket bounds in use (static arrays). */
extern const int64_t dt__mbounds_us[];
extern const size_t dt__mbounds_us_n;
extern const int64_t dt__mbounds_items[];
extern const size_t dt__mbounds_items_n;
void dt__mhist_init(dt__mhist *h, const int64_t *bounds, size_t n, double scale);

#endif
