/*
 * Fuzz target: the replay engine (runtime/engine) over decoded history. Stored history and the
 * events of work items come from outside the process (a SQLite file, any NATS publisher); the
 * worker decodes them with dt__arena_unpack and hands them to dt__engine_run_episode, which must
 * survive any of them: events out of order, references to tasks that do not exist, missing
 * sub-messages, histories that do not match the orchestrator's decisions.
 *
 * Input (FUZZ_ENGINE_INPUT, as fuzz_seeds writes it): byte 0 is the number of past events; then
 * events, each a 2-byte little-endian length and a packed HistoryEvent; the events after the past
 * ones are the episode's new events. Events that do not decode are left out, as the worker would
 * refuse them. The orchestrators are those of fuzz_orch.h (activities, a sub-orchestration,
 * timers, event waits, continue-as-new).
 *
 * Property: the same episode run twice, on two fresh engines, appends byte-identical events
 * (replay is deterministic) with the same status.
 */
#include <string.h>

#include "arena_int.h"
#include "engine_int.h"
#include "fuzz.h"
#include "fuzz_orch.h"

#define MAX_EVENTS 256
#define NOW_MS     1796654336140LL

static dt_status lookup(const char *name, const char *version, void *ctx, dt_orchestrator_fn *fn,
                        void **user_data, char *why, size_t why_len)
{
    (void)version;
    (void)ctx;
    *user_data = NULL;
    if (strcmp(name, FUZZ_ORCH_MAIN) == 0) {
        *fn = fuzz_orch_main;
        return DT_OK;
    }
    if (strcmp(name, FUZZ_ORCH_CHILD) == 0) {
        *fn = fuzz_orch_child;
        return DT_OK;
    }
    snprintf(why, why_len, "no orchestrator '%s'", name);
    return DT_EUNKNOWNNAME;
}

typedef struct parsed {
    Dtpb__HistoryEvent *ev[MAX_EVENTS];
    size_t n_past, n;
} parsed;

static void parse(dt__arena *a, const uint8_t *data, size_t size, parsed *p)
{
    size_t want_past = size > 0 ? data[0] : 0, off = 1;
    p->n = p->n_past = 0;
    while (off + 2 <= size && p->n < MAX_EVENTS) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        len = len < size - off ? len : size - off;
        Dtpb__HistoryEvent *ev = (Dtpb__HistoryEvent *)dt__arena_unpack(
            a, &dtpb__history_event__descriptor, len, data + off);
        off += len;
        bool past = p->n_past == p->n && p->n < want_past;
        if (ev != NULL) {
            p->ev[p->n++] = ev;
            p->n_past += past ? 1 : 0;
        }
    }
}

/* Runs the episode on a fresh engine; returns its status and, on DT_OK, the appended events
 * packed one after the other (malloc'd, in *out) and the resulting status. */
static dt_status run(const parsed *p, uint8_t **out, size_t *out_len, int *out_status)
{
    dt__engine_config cfg = {.cache_capacity = 0, .max_history_events = 1000, .lookup = lookup};
    dt__engine *e = NULL;
    FUZZ_CHECK(dt__engine_create(&cfg, &e) == DT_OK);
    dt__episode_input in = {.instance_id = "fuzz-instance",
                            .past = p->ev,
                            .n_past = p->n_past,
                            .new_events = p->ev + p->n_past,
                            .n_new = p->n - p->n_past,
                            .now_ms = NOW_MS};
    dt__episode_result r;
    dt_status st = dt__engine_run_episode(e, &in, &r);
    *out = NULL;
    *out_len = 0;
    if (st == DT_OK) {
        for (size_t i = 0; i < r.n_appended; i++) {
            size_t n = 0;
            uint8_t *one = fuzz_pb_pack(&r.appended[i]->base, &n);
            uint8_t *grown = realloc(*out, *out_len + n + 1);
            FUZZ_CHECK(grown != NULL);
            memcpy(grown + *out_len, one, n);
            *out = grown;
            *out_len += n;
            free(one);
        }
        *out_status = (int)r.status * 2 + (r.suspended ? 1 : 0);
        dt__episode_result_free(&r);
    }
    dt__engine_destroy(e);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    static parsed p;
    parse(a, data, size, &p);
    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    int first_status = 0, second_status = 0;
    dt_status st1 = run(&p, &first, &first_len, &first_status);
    dt_status st2 = run(&p, &second, &second_len, &second_status);
    if (st1 != st2 || first_len != second_len || first_status != second_status ||
        (first_len > 0 && memcmp(first, second, first_len) != 0)) {
        fuzz_fail("two runs of one episode differ: status %d/%d, %zu/%zu bytes appended", st1, st2,
                  first_len, second_len);
    }
    free(first);
    free(second);
    dt__arena_destroy(a);
    return 0;
}
