/*
 * replay10k: the replay engine alone (dt__engine_run_episode, in-process, no broker, no SQLite),
 * like tests/unit/engine/harness.c drives it.
 *
 * A chain orchestration (activities awaited one after the other) is driven episode by episode
 * until its history holds about 10,000 events; each episode adds OrchestratorStarted,
 * TaskCompleted and the next TaskScheduled. Then, repeatedly:
 *   cache miss: the instance is evicted and its last episode is run again over the stored
 *               history (past = all events before that episode): a full replay on a fresh
 *               coroutine, as after a restart or on another worker;
 *   cache hit:  the next episode (one more TaskCompleted) on the instance the miss left cached,
 *               which costs O(new events); the history is not passed (past = NULL after
 *               dt__engine_is_current), as the worker does.
 * The worker's own cost of a cache miss comes on top: it reads the history from the partition's
 * SQLite file (store_load_ms: dt__store_load_history of the same events, committed to a store in
 * a temp directory) and unpacks it (decode_ms: protobuf into an arena, as load_past in
 * runtime/worker/partition/episode.c does); worker_cache_miss_ms is the sum of the three.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "engine_int.h"
#include "pb_int.h"
#include "history/store_int.h"
#include "test_support.h"

#define T0_MS 1700000000000LL

typedef struct history {
    Dtpb__HistoryEvent **ev; /* unpacked with the default allocator */
    uint8_t **packed;
    size_t *len;
    size_t n, cap;
} history;

static void chain(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    for (;;) {
        dt_await(ctx, dt_call_activity(ctx, "step", "x", 1, NULL), NULL);
    }
}

static dt_status lookup(const char *name, const char *version, void *ctx, dt_orchestrator_fn *fn,
                        void **ud, char *why, size_t why_len)
{
    (void)name;
    (void)version;
    (void)ctx;
    (void)why;
    (void)why_len;
    *fn = chain;
    *ud = NULL;
    return DT_OK;
}

/* Appends a copy of ev (packed, and unpacked again so the history owns it). */
static bool hist_add(history *h, const Dtpb__HistoryEvent *ev)
{
    if (h->n == h->cap) {
        size_t nc = h->cap == 0 ? 1024 : h->cap * 2;
        Dtpb__HistoryEvent **e = realloc(h->ev, nc * sizeof(*e));
        h->ev = e != NULL ? e : h->ev;
        uint8_t **p = realloc(h->packed, nc * sizeof(*p));
        h->packed = p != NULL ? p : h->packed;
        size_t *l = realloc(h->len, nc * sizeof(*l));
        h->len = l != NULL ? l : h->len;
        if (e == NULL || p == NULL || l == NULL) {
            return false;
        }
        h->cap = nc;
    }
    size_t len = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return false;
    }
    protobuf_c_message_pack(&ev->base, buf);
    h->ev[h->n] = dtpb__history_event__unpack(NULL, len, buf);
    h->packed[h->n] = buf;
    h->len[h->n] = len;
    return h->ev[h->n++] != NULL;
}

static void hist_free(history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        dtpb__history_event__free_unpacked(h->ev[i], NULL);
        free(h->packed[i]);
    }
    free(h->ev);
    free(h->packed);
    free(h->len);
}

static Dtpb__HistoryEvent *start_event(dt__arena *a)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, T0_MS);
    Dtpb__ExecutionStartedEvent *s = dt__arena_alloc(a, sizeof(*s));
    Dtpb__OrchestrationInstance *oi = dt__arena_alloc(a, sizeof(*oi));
    if (ev == NULL || s == NULL || oi == NULL) {
        return NULL;
    }
    dtpb__execution_started_event__init(s);
    dtpb__orchestration_instance__init(oi);
    oi->instance_id = "replay-1";
    oi->execution_id = dt__emit_payload(a, (const uint8_t *)"exec-1", 6);
    s->name = "chain";
    s->orchestration_instance = oi;
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = s;
    return ev;
}

static Dtpb__HistoryEvent *completed_event(dt__arena *a, int32_t task, int64_t now)
{
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, now);
    Dtpb__TaskCompletedEvent *tc = dt__arena_alloc(a, sizeof(*tc));
    if (ev == NULL || tc == NULL) {
        return NULL;
    }
    dtpb__task_completed_event__init(tc);
    tc->task_scheduled_id = task;
    tc->result = dt__emit_payload(a, (const uint8_t *)"\"done\"", 6);
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
    ev->task_completed = tc;
    return ev;
}

/* Runs one episode over past = h->ev[0..n_past) and appends its events to h when `keep`. */
static bool episode(dt__engine *e, history *h, size_t n_past, Dtpb__HistoryEvent *news, int64_t now,
                    bool keep, double *ms)
{
    /* As the worker does (runtime/worker/partition/episode.c): no history for an instance the cache
     * holds at exactly this point. */
    bool current = dt__engine_is_current(e, "replay-1", "exec-1", n_past);
    dt__episode_input in = {"replay-1", current ? NULL : h->ev, n_past, &news, 1, now};
    dt__episode_result r;
    double t0 = bench_now_ms();
    dt_status st = dt__engine_run_episode(e, &in, &r);
    if (ms != NULL) {
        *ms = bench_now_ms() - t0;
    }
    if (st != DT_OK) {
        bench_note("replay: episode failed: %s", dt_status_str(st));
        return false;
    }
    bool ok = r.status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    for (size_t i = 0; ok && keep && i < r.n_appended; i++) {
        ok = hist_add(h, r.appended[i]);
    }
    dt__episode_result_free(&r);
    return ok;
}

/* The last TaskScheduled's task number. */
static int32_t last_task(const history *h)
{
    return h->ev[h->n - 1]->event_id;
}

/* Drives the chain until the history holds at least `target` events. */
static bool build(dt__engine *e, dt__arena *a, history *h, size_t target)
{
    bool ok = episode(e, h, 0, start_event(a), T0_MS, true, NULL);
    for (int64_t k = 1; ok && h->n < target; k++) {
        ok =
            episode(e, h, h->n, completed_event(a, last_task(h), T0_MS + k), T0_MS + k, true, NULL);
    }
    return ok;
}

static double decode_all(const history *h)
{
    dt__arena *a = dt__arena_create(64 * 1024);
    double t0 = bench_now_ms();
    for (size_t i = 0; a != NULL && i < h->n; i++) {
        dt__arena_unpack(a, &dtpb__history_event__descriptor, h->len[i], h->packed[i]);
    }
    double ms = bench_now_ms() - t0;
    dt__arena_destroy(a);
    return ms;
}

typedef struct replay_times {
    double miss[64], hit[64], decode[64], load[64];
    int n;
} replay_times;

/* ---- the same history in a partition store ---- */

static dt_status store_fill(dt__store *st, uint64_t epoch, const history *h)
{
    dt__blob *evs = malloc(h->n * sizeof(*evs));
    if (evs == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < h->n; i++) {
        evs[i] = (dt__blob){h->packed[i], h->len[i]};
    }
    dt__instance_row row = {.instance_id = "replay-1",
                            .execution_id = "exec-1",
                            .name = "chain",
                            .runtime_status =
                                DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING,
                            .created_ms = T0_MS,
                            .last_updated_ms = T0_MS};
    dt__episode_commit c = {.instance = &row, .new_events = evs, .n_new_events = h->n};
    dt_status rc = dt__store_commit(st, epoch, &c, 1);
    free(evs);
    return rc;
}

/* Times dt__store_load_history of the whole history, `reps` times, into t->load. */
static bool store_times(const history *h, int reps, replay_times *t)
{
    char *dir = dt_test_mkdtemp("dt-bench-replay");
    char path[512];
    dt__store *st = NULL;
    dt__store_options so;
    dt__store_options_init(&so);
    uint64_t epoch = 0;
    snprintf(path, sizeof(path), "%s/p000.db", dir != NULL ? dir : "/nonexistent");
    bool ok = dir != NULL && dt__store_open(path, &so, &st, NULL, 0) == DT_OK &&
              dt__store_claim(st, "bench", &epoch) == DT_OK && store_fill(st, epoch, h) == DT_OK;
    for (int r = 0; ok && r < reps; r++) {
        dt__arena *a = dt__arena_create(64 * 1024);
        dt__blob *blobs = NULL;
        size_t n = 0;
        double t0 = bench_now_ms();
        ok = a != NULL && dt__store_load_history(st, "replay-1", a, &blobs, &n) == DT_OK &&
             n == h->n;
        t->load[r] = bench_now_ms() - t0;
        dt__arena_destroy(a);
    }
    if (!ok) {
        bench_note("replay: store: %s", st != NULL ? dt__store_errmsg(st) : "cannot open");
    }
    dt__store_close(st);
    if (dir != NULL) {
        dt_test_rmtree(dir);
        free(dir);
    }
    return ok;
}

/* One measurement: evict, replay the last episode (miss), then the next one (hit). */
static bool measure(dt__engine *e, dt__arena *a, history *h, replay_times *t)
{
    size_t m = h->n - 3; /* the last episode appended h->ev[m..n): OrchestratorStarted, ... */
    int64_t now = dt__ts_to_ms(h->ev[m]->timestamp);
    dt__engine_evict(e, "replay-1");
    bool ok = episode(e, h, m, h->ev[m + 1], now, false, &t->miss[t->n]);
    ok = ok && episode(e, h, h->n, completed_event(a, last_task(h), now + 1), now + 1, false,
                       &t->hit[t->n]);
    t->decode[t->n] = decode_all(h);
    t->n += ok;
    return ok;
}

int bench_replay10k(const bench_opts *o)
{
    size_t target = bench_scaled(o, 10000);
    int reps = o->runs * 5 > 64 ? 64 : o->runs * 5;
    dt__engine_config cfg = {.cache_capacity = 16, .lookup = lookup};
    dt__engine *e = NULL;
    dt__arena *a = dt__arena_create(64 * 1024);
    history h = {0};
    replay_times t = {.n = 0};
    bool ok = a != NULL && dt__engine_create(&cfg, &e) == DT_OK && build(e, a, &h, target);
    for (int r = 0; ok && r < reps; r++) {
        ok = measure(e, a, &h, &t);
    }
    ok = ok && store_times(&h, t.n, &t);
    dt__engine_destroy(e);
    dt__arena_destroy(a);
    size_t events = h.n;
    hist_free(&h);
    if (!ok || t.n == 0) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "replay10k");
    bench_json_num(&j, "cache_miss_ms", bench_median(t.miss, (size_t)t.n), 3);
    bench_json_num(&j, "cache_hit_ms", bench_median(t.hit, (size_t)t.n), 4);
    bench_json_int(&j, "events", (long long)events);
    double miss = bench_median(t.miss, (size_t)t.n), decode = bench_median(t.decode, (size_t)t.n),
           load = bench_median(t.load, (size_t)t.n);
    bench_json_num(&j, "store_load_ms", load, 3);
    bench_json_num(&j, "decode_ms", decode, 3);
    bench_json_num(&j, "worker_cache_miss_ms", load + decode + miss, 3);
    bench_json_int(&j, "repetitions", t.n);
    bench_json_str(&j, "history",
                   "chain of activities: OrchestratorStarted, TaskCompleted, "
                   "TaskScheduled per episode");
    bench_json_str(&j, "measured", "dt__engine_run_episode in-process (default coroutine stack)");
    bench_json_end(&j);
    return 0;
}
