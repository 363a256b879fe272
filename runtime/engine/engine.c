/*
 * The engine: runs episodes and keeps suspended instances in a bounded LRU cache.
 *
 * An episode either continues a cached instance (its coroutine is suspended exactly where the
 * stored history leaves it, so only the new events are applied) or builds the instance afresh
 * and replays the stored history first. The cached state is trusted only when it reflects the
 * same execution and the same history length as the caller's; anything else replays.
 */
#include <string.h>

#include "instance_int.h"

/* Retired coroutines kept for reuse: their stacks stay mapped (a few touched pages each). */
#define SPARE_COROS 32

struct dt__engine {
    dt__engine_config cfg;
    dt__coro *spare[SPARE_COROS];
    size_t n_spare;
    dt__instance **buckets; /* hash table by instance ID, chained through hash_next */
    size_t n_buckets;
    size_t n_cached;
    dt__instance *lru_head, *lru_tail; /* most recently used first */
};

#define DEFAULT_MAX_HISTORY ((size_t)100000)

const dt__engine_config *dt__engine_cfg(const dt__engine *e)
{
    return &e->cfg;
}

dt_status dt__engine_create(const dt__engine_config *cfg, dt__engine **out)
{
    dt__engine *e = dt_calloc(1, sizeof(*e));
    if (e == NULL) {
        return DT_ENOMEM;
    }
    e->cfg = *cfg;
    if (e->cfg.max_history_events == 0) {
        e->cfg.max_history_events = DEFAULT_MAX_HISTORY;
    }
    *out = e;
    return DT_OK;
}

static void instance_free(dt__instance *in)
{
    if (in == NULL) {
        return;
    }
    dt__engine *e = in->engine;
    if (in->coro != NULL && e->n_spare < SPARE_COROS) {
        dt__coro_retire(in->coro);
        e->spare[e->n_spare++] = in->coro;
    } else {
        dt__coro_destroy(in->coro);
    }
    dt__arena_destroy(in->arena); /* the instance itself lives in its arena */
}

/* ---- the cache ---- */

static size_t hash_id(const char *s)
{
    size_t h = 5381;
    for (; *s != '\0'; s++) {
        h = h * 33 + (unsigned char)*s;
    }
    return h;
}

static dt__instance **bucket_of(dt__engine *e, const char *id)
{
    return &e->buckets[hash_id(id) & (e->n_buckets - 1)];
}

static dt__instance *cache_find(dt__engine *e, const char *id)
{
    if (e->n_buckets == 0) {
        return NULL;
    }
    for (dt__instance *in = *bucket_of(e, id); in != NULL; in = in->hash_next) {
        if (strcmp(in->instance_id, id) == 0) {
            return in;
        }
    }
    return NULL;
}

static void lru_unlink(dt__engine *e, dt__instance *in)
{
    if (in->lru_prev != NULL) {
        in->lru_prev->lru_next = in->lru_next;
    } else {
        e->lru_head = in->lru_next;
    }
    if (in->lru_next != NULL) {
        in->lru_next->lru_prev = in->lru_prev;
    } else {
        e->lru_tail = in->lru_prev;
    }
    in->lru_prev = in->lru_next = NULL;
}

static void lru_push_front(dt__engine *e, dt__instance *in)
{
    in->lru_next = e->lru_head;
    in->lru_prev = NULL;
    if (e->lru_head != NULL) {
        e->lru_head->lru_prev = in;
    } else {
        e->lru_tail = in;
    }
    e->lru_head = in;
}

/* Removes `in` from the cache (it must be cached); the caller frees it. */
static void cache_remove(dt__engine *e, dt__instance *in)
{
    dt__instance **p = bucket_of(e, in->instance_id);
    while (*p != in) {
        p = &(*p)->hash_next;
    }
    *p = in->hash_next;
    in->hash_next = NULL;
    lru_unlink(e, in);
    e->n_cached--;
}

static bool cache_grow(dt__engine *e)
{
    size_t n = e->n_buckets == 0 ? 64 : e->n_buckets * 2;
    dt__instance **b = dt_calloc(n, sizeof(*b));
    if (b == NULL) {
        return false;
    }
    for (size_t i = 0; i < e->n_buckets; i++) {
        dt__instance *in = e->buckets[i];
        while (in != NULL) {
            dt__instance *next = in->hash_next;
            dt__instance **slot = &b[hash_id(in->instance_id) & (n - 1)];
            in->hash_next = *slot;
            *slot = in;
            in = next;
        }
    }
    dt_free(e->buckets);
    e->buckets = b;
    e->n_buckets = n;
    return true;
}

/* Caches `in` as most recently used, evicting the least recently used beyond capacity. Frees
 * `in` instead when it cannot be cached. */
static void cache_put(dt__engine *e, dt__instance *in)
{
    if (e->cfg.cache_capacity == 0 || (e->n_cached >= e->n_buckets && !cache_grow(e))) {
        instance_free(in);
        return;
    }
    dt__instance **slot = bucket_of(e, in->instance_id);
    in->hash_next = *slot;
    *slot = in;
    lru_push_front(e, in);
    e->n_cached++;
    while (e->n_cached > e->cfg.cache_capacity && e->lru_tail != NULL) {
        dt__instance *victim = e->lru_tail;
        cache_remove(e, victim);
        instance_free(victim);
    }
}

size_t dt__engine_shed(dt__engine *e, size_t n)
{
    size_t shed = 0;
    while (shed < n && e->lru_tail != NULL) {
        dt__instance *victim = e->lru_tail;
        cache_remove(e, victim);
        instance_free(victim);
        shed++;
    }
    return shed;
}

void dt__engine_evict(dt__engine *e, const char *instance_id)
{
    dt__instance *in = cache_find(e, instance_id);
    if (in != NULL) {
        cache_remove(e, in);
        instance_free(in);
    }
}

size_t dt__engine_cached(const dt__engine *e)
{
    return e->n_cached;
}

void dt__engine_destroy(dt__engine *e)
{
    if (e == NULL) {
        return;
    }
    while (e->lru_head != NULL) {
        dt__instance *in = e->lru_head;
        cache_remove(e, in);
        instance_free(in);
    }
    while (e->n_spare > 0) {
        dt__coro_destroy(e->spare[--e->n_spare]);
    }
    dt_free(e->buckets);
    dt_free(e);
}

dt__coro *dt__engine_take_coro(dt__engine *e)
{
    return e->n_spare > 0 ? e->spare[--e->n_spare] : NULL;
}

/* ---- episodes ---- */

static dt__instance *instance_new(dt__engine *e, const char *id)
{
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return NULL;
    }
    dt__instance *in = dt__arena_calloc(a, 1, sizeof(*in));
    if (in == NULL || (in->instance_id = dt__arena_strdup(a, id)) == NULL) {
        dt__arena_destroy(a);
        return NULL;
    }
    in->engine = e;
    in->arena = a;
    in->execution_id = "";
    in->name = "";
    return in;
}

/* The ExecutionStarted event that opens a history (after its OrchestratorStarted), or NULL. */
static const Dtpb__HistoryEvent *opening(Dtpb__HistoryEvent *const *evs, size_t n)
{
    for (size_t i = 0; i < n && i < 2; i++) {
        if (evs[i]->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
            return evs[i];
        }
        if (evs[i]->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED) {
            return NULL;
        }
    }
    return NULL;
}

/* True when `ev` (an ExecutionStarted, or NULL) opens execution `exec`. */
static bool same_execution(const Dtpb__HistoryEvent *ev, const char *exec)
{
    if (ev == NULL) {
        return false;
    }
    const Dtpb__OrchestrationInstance *oi = ev->execution_started->orchestration_instance;
    const Dtpb__Payload *id = oi != NULL ? oi->execution_id : NULL;
    size_t len = id != NULL ? id->value.len : 0;
    return strlen(exec) == len && (len == 0 || memcmp(exec, id->value.data, len) == 0);
}

/* The cached instance if it reflects exactly the caller's history, else NULL (and evicted). */
static dt__instance *take_cached(dt__engine *e, const dt__episode_input *in)
{
    dt__instance *c = cache_find(e, in->instance_id);
    if (c == NULL) {
        return NULL;
    }
    cache_remove(e, c);
    /* past == NULL: the caller checked dt__engine_is_current() and elided the history. */
    if (c->history_len == in->n_past && in->n_past > 0 &&
        (in->past == NULL || same_execution(opening(in->past, in->n_past), c->execution_id))) {
        return c;
    }
    instance_free(c);
    return NULL;
}

bool dt__engine_is_current(dt__engine *e, const char *instance_id, const char *execution_id,
                           size_t history_len)
{
    const dt__instance *c = cache_find(e, instance_id);
    return c != NULL && history_len > 0 && c->history_len == history_len &&
           strcmp(c->execution_id, execution_id) == 0;
}

static dt_status check_input(dt__engine *e, const dt__episode_input *in)
{
    if (in->instance_id == NULL || in->instance_id[0] == '\0' ||
        (in->n_new > 0 && in->new_events == NULL)) {
        return DT_EINVAL;
    }
    if (in->n_past > 0 && in->past == NULL) {
        /* Elided history: only valid while the cached state is exactly that history. */
        const dt__instance *c = cache_find(e, in->instance_id);
        return c != NULL && c->history_len == in->n_past ? DT_OK : DT_EINVAL;
    }
    for (size_t i = 0; i < in->n_past; i++) {
        if (in->past[i] == NULL) {
            return DT_EINVAL;
        }
    }
    for (size_t i = 0; i < in->n_new; i++) {
        if (in->new_events[i] == NULL) {
            return DT_EINVAL;
        }
    }
    if (in->n_past > 0 && in->past[in->n_past - 1]->event_type_case ==
                              DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED) {
        return DT_ESTATE;
    }
    bool started = in->n_past > 0 ? opening(in->past, in->n_past) != NULL
                                  : opening(in->new_events, in->n_new) != NULL;
    return started ? DT_OK : DT_EINVAL;
}

/* Replays the stored history on a fresh instance. */
static dt__instance *replay_fresh(dt__engine *e, const dt__episode_input *in)
{
    dt__instance *inst = instance_new(e, in->instance_id);
    if (inst == NULL) {
        return NULL;
    }
    inst->replaying = true;
    for (size_t i = 0; i < in->n_past && !inst->oom; i++) {
        dt__instance_apply(inst, in->past[i]);
    }
    inst->replaying = false;
    inst->history_len = in->n_past;
    return inst;
}

dt_status dt__engine_run_episode(dt__engine *e, const dt__episode_input *in,
                                 dt__episode_result *out)
{
    memset(out, 0, sizeof(*out));
    dt_status st = check_input(e, in);
    if (st != DT_OK) {
        return st;
    }
    dt__instance *inst = take_cached(e, in);
    if (inst == NULL && (inst = replay_fresh(e, in)) == NULL) {
        return DT_ENOMEM;
    }
    /* The episode's OrchestratorStarted: orchestration time never goes backwards, even when
     * this worker's clock is behind the one that ran the previous episode, and it is not
     * earlier than any event in history (timestamps in order, result.c). */
    int64_t now = in->now_ms > inst->now_ms ? in->now_ms : inst->now_ms;
    now = now > inst->last_ts ? now : inst->last_ts;
    inst->now_ms = now;
    for (size_t i = 0; i < in->n_new && !inst->oom; i++) {
        dt__instance_apply(inst, in->new_events[i]);
    }
    st = inst->oom ? DT_ENOMEM : dt__episode_build(inst, in, out, now);
    if (st != DT_OK) {
        dt__episode_result_free(out);
        memset(out, 0, sizeof(*out));
        instance_free(inst);
        return st;
    }
    if (inst->end != END_NONE) {
        instance_free(inst);
    } else {
        inst->confirmed_id = inst->next_id;
        inst->history_len = in->n_past + out->n_appended;
        cache_put(e, inst);
    }
    return DT_OK;
}

void dt__episode_result_free(dt__episode_result *r)
{
    if (r != NULL) {
        dt__arena_destroy(r->arena);
        r->arena = NULL;
    }
}
