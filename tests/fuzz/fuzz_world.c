/* Real histories from the engine test harness (fuzz_world.h). */
#include "fuzz_world.h"

#include <stdlib.h>
#include <string.h>

#include "arena_int.h"
#include "fuzz.h"
#include "fuzz_orch.h"
#include "pb_int.h"
#include "harness.h"
#include "query_int.h"
#include "test_support.h"

#define MAX_INSTANCES 32

static char *dup_or_null(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    FUZZ_CHECK(d != NULL);
    return d;
}

static void act_greet(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)w;
    (void)ud;
    size_t n = (input != NULL ? strlen(input) : 4) + 16;
    r->output = malloc(n);
    FUZZ_CHECK(r->output != NULL);
    snprintf(r->output, n, "\"hello %s\"", input != NULL ? input : "null");
}

static void act_boom(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)w;
    (void)input;
    (void)ud;
    r->failed = true;
    r->error_type = dup_or_null("app.Boom");
    r->error_message = dup_or_null("it broke");
}

static void scenario(hw_world *w)
{
    hw_orchestrator(w, FUZZ_ORCH_MAIN, fuzz_orch_main, NULL);
    hw_orchestrator(w, FUZZ_ORCH_CHILD, fuzz_orch_child, NULL);
    hw_activity(w, "greet", act_greet, NULL);
    hw_activity(w, "boom", act_boom, NULL);
    hw_start(w, FUZZ_ORCH_MAIN, "order-1", "\"Tokyo\"");
    hw_raise(w, "order-1", "approve", "true");
    hw_start(w, FUZZ_ORCH_MAIN, "order-2", "\"again\"");
    hw_start(w, FUZZ_ORCH_MAIN, "order-3", "\"Seattle\"");
    hw_start(w, "no-such-orchestrator", "order-4", NULL);
    hw_start(w, FUZZ_ORCH_MAIN, "order-5", "{\"n\":5}");
    hw_run_idle(w);
    hw_terminate(w, "order-3", "\"cancelled by operator\"");
    hw_suspend(w, "order-5");
    hw_run_idle(w);
    hw_raise(w, "order-5", "go", "1");
    hw_resume(w, "order-5");
    hw_raise(w, "order-2", "go", "2");
    hw_run(w);
}

/* Copies the current execution of `id` out of the world. */
static void take(hw_world *w, const char *id, fuzz_history *h)
{
    memset(h, 0, sizeof(*h));
    h->instance_id = dup_or_null(id);
    size_t n = hw_history_len(w, id);
    FUZZ_CHECK(n <= FUZZ_WORLD_MAX_EVENTS);
    for (size_t i = 0; i < n; i++) {
        h->ev[i] = fuzz_pb_pack(&hw_history_event(w, id, i)->base, &h->len[i]);
    }
    h->n = n;
    h->status = hw_status(w, id);
    h->output = dup_or_null(hw_output(w, id));
    h->custom_status = dup_or_null(hw_custom_status(w, id));
    const Dtpb__TaskFailureDetails *f = hw_failure(w, id);
    h->failure = f != NULL ? fuzz_pb_pack(&f->base, &h->failure_len) : NULL;
}

/* Adds the sub-orchestrations that h's history created to ids[] (n in *n). */
static void children(const fuzz_history *h, char **ids, size_t *n)
{
    for (size_t i = 0; i < h->n; i++) {
        Dtpb__HistoryEvent *ev = dtpb__history_event__unpack(NULL, h->len[i], h->ev[i]);
        FUZZ_CHECK(ev != NULL);
        if (ev->event_type_case ==
                DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED &&
            *n < MAX_INSTANCES) {
            ids[(*n)++] = dup_or_null(ev->sub_orchestration_instance_created->instance_id);
        }
        dtpb__history_event__free_unpacked(ev, NULL);
    }
}

fuzz_history *fuzz_world_record(size_t *out_n)
{
    hw_world *w = hw_create(0);
    FUZZ_CHECK(w != NULL);
    scenario(w);
    char *ids[MAX_INSTANCES];
    size_t n = 0;
    static const char *const top[] = {"order-1", "order-2", "order-3", "order-4", "order-5"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        ids[n++] = dup_or_null(top[i]);
    }
    fuzz_history *h = calloc(MAX_INSTANCES, sizeof(*h));
    FUZZ_CHECK(h != NULL);
    for (size_t i = 0; i < n; i++) {
        take(w, ids[i], &h[i]);
        children(&h[i], ids, &n);
        free(ids[i]);
    }
    hw_destroy(w);
    *out_n = n;
    return h;
}

void fuzz_world_free(fuzz_history *h, size_t n)
{
    for (size_t i = 0; h != NULL && i < n; i++) {
        for (size_t k = 0; k < h[i].n; k++) {
            free(h[i].ev[k]);
        }
        free(h[i].instance_id);
        free(h[i].output);
        free(h[i].custom_status);
        free(h[i].failure);
    }
    free(h);
}

/* The start record the worker keeps in an instance row (its ExecutionStartedEvent), here with a
 * user tag and a reserved one, which readers must drop. Allocated in `a`. */
static dt__blob start_record(dt__arena *a, const Dtpb__ExecutionStartedEvent *es)
{
    Dtpb__ExecutionStartedEvent copy = *es;
    Dtpb__ExecutionStartedEvent__TagsEntry t1 = DTPB__EXECUTION_STARTED_EVENT__TAGS_ENTRY__INIT;
    Dtpb__ExecutionStartedEvent__TagsEntry t2 = DTPB__EXECUTION_STARTED_EVENT__TAGS_ENTRY__INIT;
    t1.key = "team";
    t1.value = "payments";
    t2.key = "dt.start_id";
    t2.value = "order/exec/start/0";
    Dtpb__ExecutionStartedEvent__TagsEntry *tags[] = {&t1, &t2};
    copy.n_tags = 2;
    copy.tags = tags;
    size_t len = protobuf_c_message_get_packed_size(&copy.base);
    uint8_t *buf = dt__arena_alloc(a, len + 1);
    FUZZ_CHECK(buf != NULL);
    protobuf_c_message_pack(&copy.base, buf);
    return (dt__blob){buf, len};
}

static dt__blob text_blob(const char *s)
{
    return (dt__blob){(const uint8_t *)s, s != NULL ? strlen(s) : 0};
}

/* The row of instance h (strings and blobs in `a` or borrowed from h). */
static void row_of(dt__arena *a, const fuzz_history *h, Dtpb__HistoryEvent *const *evs,
                   dt__instance_row *row)
{
    const Dtpb__ExecutionStartedEvent *es = NULL;
    for (size_t i = 0; i < h->n && es == NULL; i++) {
        if (evs[i]->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
            es = evs[i]->execution_started;
        }
    }
    FUZZ_CHECK(es != NULL && es->orchestration_instance != NULL);
    const Dtpb__Payload *exec = es->orchestration_instance->execution_id;
    memset(row, 0, sizeof(*row));
    row->instance_id = h->instance_id;
    row->execution_id = exec != NULL ? dt__arena_memdup(a, exec->value.data, exec->value.len) : "";
    row->name = es->name;
    row->runtime_status = (int32_t)h->status;
    row->created_ms = dt__ts_to_ms(evs[0]->timestamp);
    row->last_updated_ms = dt__ts_to_ms(evs[h->n - 1]->timestamp);
    row->completed_ms = h->status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING
                            ? row->last_updated_ms
                            : 0;
    if (es->parent_instance != NULL && es->parent_instance->orchestration_instance != NULL) {
        row->parent_instance_id = es->parent_instance->orchestration_instance->instance_id;
    }
    if (es->input != NULL) {
        row->input = (dt__blob){es->input->value.data, es->input->value.len};
    }
    row->output = text_blob(h->output);
    row->custom_status = text_blob(h->custom_status);
    row->failure_details = (dt__blob){h->failure, h->failure_len};
    row->tags = start_record(a, es);
}

dt_status fuzz_world_store(dt__store *s, const fuzz_history *h, size_t n)
{
    uint64_t epoch = 0;
    dt_status st = dt__store_claim(s, "fuzz", &epoch);
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        if (h[i].n == 0) {
            continue;
        }
        dt__arena *a = dt__arena_create(0);
        FUZZ_CHECK(a != NULL);
        Dtpb__HistoryEvent *evs[FUZZ_WORLD_MAX_EVENTS];
        dt__blob blobs[FUZZ_WORLD_MAX_EVENTS];
        for (size_t k = 0; k < h[i].n; k++) {
            evs[k] =
                dtpb__history_event__unpack(dt__arena_pb_allocator(a), h[i].len[k], h[i].ev[k]);
            FUZZ_CHECK(evs[k] != NULL);
            blobs[k] = (dt__blob){h[i].ev[k], h[i].len[k]};
        }
        dt__instance_row row;
        row_of(a, &h[i], evs, &row);
        dt__episode_commit c = {.instance = &row, .new_events = blobs, .n_new_events = h[i].n};
        st = dt__store_commit(s, epoch, &c, 1);
        dt__arena_destroy(a);
    }
    return st;
}

dt__store *fuzz_store_create(const fuzz_history *h, size_t n, char **out_dir)
{
    char *dir = dt_test_mkdtemp("dt-fuzz");
    FUZZ_CHECK(dir != NULL);
    char path[4096], err[256] = "";
    snprintf(path, sizeof(path), "%s/p0.db", dir);
    dt__store *s = NULL;
    if (dt__store_open(path, NULL, &s, err, sizeof(err)) != DT_OK ||
        fuzz_world_store(s, h, n) != DT_OK) {
        fuzz_fail("cannot create the fuzz store at %s: %s %s", path, err,
                  s != NULL ? dt__store_errmsg(s) : "");
    }
    *out_dir = dir;
    return s;
}

void fuzz_store_destroy(dt__store *s, char *dir)
{
    dt__store_close(s);
    dt_test_rmtree(dir);
    free(dir);
}

dt_status fuzz_query_answer(dt__store *s, dt__arena *a, const Dtpb__QueryRequest *req,
                            Dtpb__QueryResponse *resp, char *err, size_t errlen)
{
    dt__query_service q = {.partition = 0, .store = s};
    dt__query_ctx x = {
        .q = &q, .a = a, .r = resp, .err = err, .errlen = errlen, .budget = 1024 * 1024};
    switch (req->kind_case) {
    case DTPB__QUERY_REQUEST__KIND_LIST:
        return dt__query_list(&x, req->list);
    case DTPB__QUERY_REQUEST__KIND_HISTORY:
        return dt__query_history(&x, req->history);
    default: /* as query.c's dispatch */
        snprintf(err, errlen, "query request names no operation (list, history or purge)");
        return DT_EDECODE;
    }
}
