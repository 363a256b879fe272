/*
 * The registry: creation from the worker's registered names, the lock-free hooks the worker's
 * threads call, and the rendering of everything the registry holds (collect.c adds what is
 * sampled at scrape time: process, partition files, consumer backlog).
 *
 * Name look-up is an open-addressing table built once at creation and never changed, so hook
 * threads read it without synchronisation; a name not in it counts under "_other".
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common_int.h"
#include "dt_history.pb-c.h"
#include "store_int.h"
#include "metrics_int.h"
#include "metrics_priv_int.h"

#define OTHER_NAME "_other"

static const char *const kind_label[DT__MKIND_N] = {"orchestration", "activity"};

int64_t dt__metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint32_t name_hash(const char *s)
{
    return (uint32_t)dt__mix64(dt__fnv1a64(DT__FNV64_OFFSET, s));
}

/* ---- creation ---- */

static bool listed(const dt__mname *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* Copies the distinct names, then "_other", and indexes them. */
static dt_status add_kind(dt__metrics *m, dt__mkind k, const char *const *names, size_t n)
{
    m->names[k] = dt_calloc(n + 1, sizeof(dt__mname));
    if (m->names[k] == NULL) {
        return DT_ENOMEM;
    }
    size_t used = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *name = i < n ? names[i] : OTHER_NAME;
        if (i < n &&
            (name == NULL || strcmp(name, OTHER_NAME) == 0 || listed(m->names[k], used, name))) {
            continue;
        }
        dt__mname *e = &m->names[k][used];
        e->name = dt_strdup(name);
        if (e->name == NULL) {
            return DT_ENOMEM;
        }
        dt__mhist_init(&e->duration, dt__mbounds_us, dt__mbounds_us_n, 1e6);
        used++;
    }
    m->n_names[k] = used - 1; /* the last entry is "_other" */
    size_t cap = 8;
    while (cap < 2 * used) {
        cap *= 2;
    }
    m->index[k] = dt_alloc(cap * sizeof(uint32_t));
    if (m->index[k] == NULL) {
        return DT_ENOMEM;
    }
    m->index_cap[k] = cap;
    memset(m->index[k], 0xff, cap * sizeof(uint32_t));
    for (size_t i = 0; i + 1 < used; i++) {
        size_t h = name_hash(m->names[k][i].name) & (cap - 1);
        while (m->index[k][h] != UINT32_MAX) {
            h = (h + 1) & (cap - 1);
        }
        m->index[k][h] = (uint32_t)i;
    }
    return DT_OK;
}

dt_status dt__metrics_create(const dt__metrics_names *names, dt__metrics **out)
{
    dt__metrics *m = dt_calloc(1, sizeof(*m));
    if (m == NULL) {
        return DT_ENOMEM;
    }
    dt__mhist_init(&m->episode, dt__mbounds_us, dt__mbounds_us_n, 1e6);
    dt__mhist_init(&m->commit, dt__mbounds_us, dt__mbounds_us_n, 1e6);
    dt__mhist_init(&m->fire_lag, dt__mbounds_us, dt__mbounds_us_n, 1e6);
    for (int k = 0; k < DT__MKIND_N; k++) {
        dt__mhist_init(&m->batch[k], dt__mbounds_items, dt__mbounds_items_n, 1);
    }
    dt_status st = add_kind(m, DT__MKIND_ORCH, names->orchestrators, names->n_orchestrators);
    if (st == DT_OK) {
        st = add_kind(m, DT__MKIND_ACT, names->activities, names->n_activities);
    }
    if (st == DT_OK) {
        st = dt__metrics_priv_create(m);
    }
    if (st != DT_OK) {
        dt__metrics_destroy(m);
        return st;
    }
    *out = m;
    return DT_OK;
}

void dt__metrics_destroy(dt__metrics *m)
{
    if (m == NULL) {
        return;
    }
    dt__metrics_priv_destroy(m);
    for (int k = 0; k < DT__MKIND_N; k++) {
        for (size_t i = 0; m->names[k] != NULL && i <= m->n_names[k]; i++) {
            dt_free(m->names[k][i].name);
        }
        dt_free(m->names[k]);
        dt_free(m->index[k]);
    }
    dt_free(m);
}

/* ---- hooks ---- */

dt__mname *dt__metrics_name(dt__metrics *m, dt__mkind kind, const char *name)
{
    size_t cap = m->index_cap[kind];
    if (name != NULL && cap > 0) {
        size_t h = name_hash(name) & (cap - 1);
        for (uint32_t ix; (ix = m->index[kind][h]) != UINT32_MAX; h = (h + 1) & (cap - 1)) {
            if (strcmp(m->names[kind][ix].name, name) == 0) {
                return &m->names[kind][ix];
            }
        }
    }
    return &m->names[kind][m->n_names[kind]];
}

void dt__metrics_activity_started(dt__metrics *m, const char *name)
{
    if (m != NULL) {
        dt__metrics_add(&dt__metrics_name(m, DT__MKIND_ACT, name)->started, 1);
    }
}

void dt__metrics_activity_done(dt__metrics *m, const char *name, int64_t us, bool failed)
{
    if (m == NULL) {
        return;
    }
    dt__mname *e = dt__metrics_name(m, DT__MKIND_ACT, name);
    dt__mhist_observe(&e->duration, us);
    dt__metrics_add(failed ? &e->failed : &e->completed, 1);
}

void dt__metrics_activity_refused(dt__metrics *m, const char *name)
{
    if (m != NULL) {
        dt__metrics_add(&dt__metrics_name(m, DT__MKIND_ACT, name)->failed, 1);
    }
}

void dt__metrics_batch(dt__metrics *m, dt__mkind kind, size_t n)
{
    if (m != NULL && n > 0) {
        dt__mhist_observe(&m->batch[kind], (int64_t)n);
    }
}

void dt__metrics_redelivered(dt__metrics *m, dt__mkind kind, uint64_t deliveries)
{
    if (m != NULL && deliveries > 1) {
        dt__metrics_add(&m->redelivered[kind], 1);
    }
}

void dt__metrics_publish_error(dt__metrics *m, dt__mkind kind)
{
    if (m != NULL) {
        dt__metrics_add(&m->publish_errors[kind], 1);
    }
}

void dt__metrics_episode(dt__metrics *m, int64_t us, bool cached, bool replayed)
{
    if (m == NULL) {
        return;
    }
    dt__mhist_observe(&m->episode, us);
    if (cached) {
        dt__metrics_add(&m->cache_hits, 1);
    } else if (replayed) {
        dt__metrics_add(&m->cache_misses, 1);
    }
}

void dt__metrics_timer_fired(dt__metrics *m, int64_t due_ms, int64_t now_ms)
{
    if (m != NULL) {
        dt__mhist_observe(&m->fire_lag, (now_ms - due_ms) * 1000);
    }
}

void dt__metrics_partition(dt__metrics *m, uint32_t p, bool owned)
{
    if (m == NULL || p >= DT_BROKER_MAX_PARTITIONS) {
        return;
    }
    uint64_t bit = (uint64_t)1 << (p % 64);
    if (owned) {
        atomic_fetch_or_explicit(&m->owned[p / 64], bit, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->partitions_owned, 1, memory_order_relaxed);
    } else {
        atomic_fetch_and_explicit(&m->owned[p / 64], ~bit, memory_order_relaxed);
        atomic_fetch_sub_explicit(&m->partitions_owned, 1, memory_order_relaxed);
    }
}

void dt__metrics_committed(dt__metrics *m, const void *commits, size_t n, int64_t us)
{
    if (m == NULL) {
        return;
    }
    dt__mhist_observe(&m->commit, us);
    const dt__episode_commit *c = commits;
    for (size_t i = 0; i < n; i++) {
        const dt__instance_row *row = c[i].instance;
        /* The first events of an execution (a start, or the new execution after
         * continue-as-new), and its end (only an ended execution's commit prunes). */
        bool started = c[i].n_new_events > 0 && c[i].base_history_len == 0;
        bool done =
            row->runtime_status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
        bool failed =
            row->runtime_status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
        if (!started && !(c[i].prune_applied && (done || failed))) {
            continue;
        }
        dt__mname *e = dt__metrics_name(m, DT__MKIND_ORCH, row->name);
        if (started) {
            dt__metrics_add(&e->started, 1);
        }
        if (c[i].prune_applied && (done || failed)) {
            dt__metrics_add(done ? &e->completed : &e->failed, 1);
        }
    }
}

/* ---- rendering of the registry's own metrics ---- */

static void name_labels(char *buf, size_t len, dt__mkind k, const dt__mname *e)
{
    dt__mbuf lb = {0};
    dt__mbuf_printf(&lb, "kind=\"%s\",name=\"", kind_label[k]);
    dt__mbuf_label_value(&lb, e->name);
    dt__mbuf_printf(&lb, "\"");
    snprintf(buf, len, "%s", lb.failed || lb.data == NULL ? "" : lb.data);
    dt__mbuf_free(&lb);
}

static void render_work_items(dt__mbuf *b, dt__metrics *m)
{
    static const char *const metric[3] = {"dt_work_items_started_total",
                                          "dt_work_items_completed_total",
                                          "dt_work_items_failed_total"};
    static const char *const help[3] = {
        "Work items started: orchestration executions begun, activities begun.",
        "Work items completed: orchestration executions that completed, activities that "
        "returned an output.",
        "Work items failed: orchestration executions that failed, activities that failed "
        "(also without running)."};
    char labels[512]; /* kind and an escaped name of at most 128 bytes */
    for (int f = 0; f < 3; f++) {
        dt__mbuf_header(b, metric[f], "counter", help[f]);
        for (int k = 0; k < DT__MKIND_N; k++) {
            for (size_t i = 0; i <= m->n_names[k]; i++) {
                dt__mname *e = &m->names[k][i];
                _Atomic uint64_t *c = f == 0 ? &e->started : f == 1 ? &e->completed : &e->failed;
                name_labels(labels, sizeof(labels), (dt__mkind)k, e);
                dt__mbuf_sample(b, metric[f], labels,
                                (double)atomic_load_explicit(c, memory_order_relaxed));
            }
        }
    }
    dt__mbuf_header(b, "dt_activity_duration_seconds", "histogram",
                    "Time an activity function ran, by activity name.");
    for (size_t i = 0; i <= m->n_names[DT__MKIND_ACT]; i++) {
        dt__mname *e = &m->names[DT__MKIND_ACT][i];
        dt__mbuf lb = {0};
        dt__mbuf_printf(&lb, "name=\"");
        dt__mbuf_label_value(&lb, e->name);
        dt__mbuf_printf(&lb, "\"");
        if (!lb.failed) {
            dt__mbuf_histogram(b, "dt_activity_duration_seconds", lb.data, &e->duration);
        }
        dt__mbuf_free(&lb);
    }
}

static void counter(dt__mbuf *b, const char *name, const char *help, _Atomic uint64_t *c)
{
    dt__mbuf_header(b, name, "counter", help);
    dt__mbuf_sample(b, name, "", (double)atomic_load_explicit(c, memory_order_relaxed));
}

static void by_kind(dt__mbuf *b, const char *name, const char *help, _Atomic uint64_t *c)
{
    dt__mbuf_header(b, name, "counter", help);
    for (int k = 0; k < DT__MKIND_N; k++) {
        char l[48];
        snprintf(l, sizeof(l), "kind=\"%s\"", kind_label[k]);
        dt__mbuf_sample(b, name, l, (double)atomic_load_explicit(&c[k], memory_order_relaxed));
    }
}

void dt__metrics_render_registry(dt__mbuf *b, dt__metrics *m)
{
    render_work_items(b, m);
    dt__mbuf_header(b, "dt_episode_duration_seconds", "histogram",
                    "Time one orchestration episode ran through the replay engine.");
    dt__mbuf_histogram(b, "dt_episode_duration_seconds", "", &m->episode);
    dt__mbuf_header(b, "dt_batch_size", "histogram",
                    "Work items per fetch that returned some, by kind.");
    for (int k = 0; k < DT__MKIND_N; k++) {
        char l[48];
        snprintf(l, sizeof(l), "kind=\"%s\"", kind_label[k]);
        dt__mbuf_histogram(b, "dt_batch_size", l, &m->batch[k]);
    }
    dt__mbuf_header(b, "dt_store_commit_seconds", "histogram",
                    "Time a partition batch's commit took (log append to JetStream, then SQLite).");
    dt__mbuf_histogram(b, "dt_store_commit_seconds", "", &m->commit);
    dt__mbuf_header(b, "dt_timer_fire_lag_seconds", "histogram",
                    "Delay between a durable timer's due time and its processing.");
    dt__mbuf_histogram(b, "dt_timer_fire_lag_seconds", "", &m->fire_lag);
    counter(b, "dt_replay_cache_hits_total",
            "Episodes of an instance whose history the engine held in memory (no replay).",
            &m->cache_hits);
    counter(b, "dt_replay_cache_misses_total",
            "Episodes that read an instance's history from SQLite and replayed it.",
            &m->cache_misses);
    by_kind(b, "dt_broker_publish_errors_total",
            "Publishes that failed (outbox rows of orchestrations, activity results); they are "
            "retried.",
            m->publish_errors);
    by_kind(b, "dt_work_items_redelivered_total",
            "Work items fetched again after an earlier delivery (activities only; orchestration "
            "redeliveries show in dt_queue_redelivered).",
            m->redelivered);
    dt__mbuf_header(b, "dt_partitions_owned", "gauge", "Partitions this worker runs now.");
    dt__mbuf_sample(b, "dt_partitions_owned", "",
                    (double)atomic_load_explicit(&m->partitions_owned, memory_order_relaxed));
}
