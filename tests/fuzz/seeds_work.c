/* Seeds of fuzz_orch_msg and fuzz_activity_request: the work items the runtime would send for the
 * recorded histories (fuzz_seeds.h). */
#include <string.h>

#include "activity_int.h"
#include "fuzz.h"
#include "fuzz_seeds.h"
#include "protocol_int.h"

typedef struct decoded {
    dt__arena *a;
    Dtpb__HistoryEvent *ev[FUZZ_WORLD_MAX_EVENTS];
    const char *exec; /* the execution ID of the history */
} decoded;

static void decode(const fuzz_history *h, decoded *d)
{
    d->a = dt__arena_create(0);
    FUZZ_CHECK(d->a != NULL);
    d->exec = "";
    for (size_t k = 0; k < h->n; k++) {
        d->ev[k] = dtpb__history_event__unpack(dt__arena_pb_allocator(d->a), h->len[k], h->ev[k]);
        FUZZ_CHECK(d->ev[k] != NULL);
        const Dtpb__ExecutionStartedEvent *es = d->ev[k]->execution_started;
        if (d->ev[k]->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED &&
            es->orchestration_instance != NULL && es->orchestration_instance->execution_id) {
            const Dtpb__Payload *x = es->orchestration_instance->execution_id;
            d->exec = dt__arena_memdup(d->a, x->value.data, x->value.len);
        }
    }
}

/* The OrchestrationMessage carrying event k of h, as a client, a timer or another instance sends
 * it (dedupe identities as the runtime derives them). */
static void orch_msg_seed(const fuzz_history *h, const decoded *d, size_t k)
{
    Dtpb__HistoryEvent *ev = d->ev[k];
    bool started = ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    bool client = ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED ||
                  ev->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
    char id[512], name[160];
    FUZZ_CHECK(dt__msg_id(id, sizeof(id), h->instance_id, client ? "-" : d->exec, "ev",
                          (int64_t)k) == DT_OK);
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, h->instance_id, client ? "" : d->exec, ev, id);
    if (started) {
        m.reuse_policy = DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE;
        m.result_subject = "app.results.orders";
    }
    snprintf(name, sizeof(name), "%s-msg-%zu", h->instance_id, k);
    seed_put_msg("fuzz_orch_msg", name, &m.base);
}

/* The work item of TaskScheduled event k, as the worker's actions build it, and the results the
 * activity pool publishes for it. */
static void activity_seeds(const fuzz_history *h, const decoded *d, size_t k)
{
    const Dtpb__TaskScheduledEvent *t = d->ev[k]->task_scheduled;
    Dtpb__ActivityRequest req = DTPB__ACTIVITY_REQUEST__INIT;
    req.instance_id = h->instance_id;
    req.execution_id = (char *)d->exec;
    req.name = t->name;
    req.task_id = d->ev[k]->event_id;
    req.input = t->input;
    req.version = t->version;
    req.reply_subject = FUZZ_ORCH_PREFIX "3";
    char name[160];
    snprintf(name, sizeof(name), "%s-task-%d", h->instance_id, (int)req.task_id);
    seed_put_msg("fuzz_activity_request", name, &req.base);

    dt__act_outcome ok = {.has_output = true, .output = "\"hello\"", .output_len = 7};
    dt__act_outcome failed;
    dt__act_failure(d->a, &failed, "app.Boom", true, "activity %s failed", t->name);
    dt__act_outcome *outcomes[] = {&ok, &failed};
    for (int i = 0; i < 2; i++) {
        dt__act_result r;
        FUZZ_CHECK(dt__act_result_pack(d->a, &req, outcomes[i], 1 << 20, &r) == DT_OK);
        snprintf(name, sizeof(name), "%s-task-%d-%s", h->instance_id, (int)req.task_id,
                 i == 0 ? "completed" : "failed");
        seed_put("fuzz_orch_msg", name, r.data, r.len);
    }
}

void seeds_work_items(const fuzz_history *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        decoded d;
        decode(&h[i], &d);
        for (size_t k = 0; k < h[i].n; k++) {
            switch (d.ev[k]->event_type_case) {
            case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
                activity_seeds(&h[i], &d, k);
                break;
            case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED:
            case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_COMPLETED:
                break;
            default:
                orch_msg_seed(&h[i], &d, k);
                break;
            }
        }
        dt__arena_destroy(d.a);
    }
}
