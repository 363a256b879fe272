/* The in-process test world for the replay engine (see harness.h). */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define MAX_STEPS 2000000

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob;

typedef struct instance {
    char *id;
    char *name;
    blob *hist;
    size_t n_hist, cap_hist;
    Dtpb__OrchestrationStatus status;
    bool suspended;
    bool exists;
    char *output;
    char *custom_status;
    blob failure;
    char *parent_id;
    int32_t parent_task;
    int executions;
    char *exec; /* current execution ID */
} instance;

typedef struct queued_msg {
    char *instance_id;
    blob ev;
} queued_msg;

typedef struct timer {
    char *instance_id;
    int64_t fire_at;
    int32_t id;
    bool fired;
} timer;

typedef struct named_fn {
    char *name;
    void *fn;
    void *ud;
    bool hold;
    int calls;
} named_fn;

typedef struct held {
    char *name;
    char *instance_id;
    char *input;
    int32_t task_id;
    bool done;
} held;

struct hw_world {
    dt__engine *engine;
    int64_t now;
    instance *inst;
    size_t n_inst;
    queued_msg *q;
    size_t q_head, q_len, q_cap;
    timer *timers;
    size_t n_timers;
    named_fn orch[64], act[64];
    size_t n_orch, n_act;
    held *held;
    size_t n_held;
    size_t held_done_prefix; /* held[0..prefix) are all done: scans start after them */
    char **published;
    size_t n_published;
    char **logs;
    size_t n_logs;
    int elided; /* episodes run without loading history (cache current) */
    bool retry_enomem;
    int enomem_episodes;
    Dtpb__TaskFailureDetails *failure_view;
    Dtpb__HistoryEvent *event_view;
};

/* ---- small helpers ---- */

static void *xrealloc(void *p, size_t n)
{
    void *r = realloc(p, n);
    if (r == NULL) {
        abort();
    }
    return r;
}

static char *xstrdup(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

static char *bytes_str(const uint8_t *p, size_t n)
{
    char *s = xrealloc(NULL, n + 1);
    if (n > 0) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

static blob pack(const Dtpb__HistoryEvent *ev)
{
    blob b;
    b.len = protobuf_c_message_get_packed_size(&ev->base);
    b.data = xrealloc(NULL, b.len > 0 ? b.len : 1);
    protobuf_c_message_pack(&ev->base, b.data);
    return b;
}

static Dtpb__Timestamp ts_of(int64_t ms)
{
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = ms / 1000;
    ts.nanos = (int32_t)((ms % 1000) * 1000000);
    return ts;
}

static int64_t ms_of(const Dtpb__Timestamp *ts)
{
    return ts == NULL ? 0 : ts->seconds * 1000 + ts->nanos / 1000000;
}

/* ---- lookups ---- */

static dt_status lookup(const char *name, const char *version, void *ctx, dt_orchestrator_fn *fn,
                        void **ud, char *why, size_t why_len)
{
    (void)version;
    hw_world *w = ctx;
    for (size_t i = 0; i < w->n_orch; i++) {
        if (strcmp(w->orch[i].name, name) == 0) {
            *fn = (dt_orchestrator_fn)w->orch[i].fn;
            *ud = w->orch[i].ud;
            return DT_OK;
        }
    }
    snprintf(why, why_len, "no orchestrator named '%s' is registered", name);
    return DT_EUNKNOWNNAME;
}

static void log_sink(const char *id, dt_log_level level, const char *msg, void *ctx)
{
    hw_world *w = ctx;
    char line[1200];
    snprintf(line, sizeof(line), "%s:%d:%s", id, (int)level, msg);
    w->logs = xrealloc(w->logs, (w->n_logs + 1) * sizeof(char *));
    w->logs[w->n_logs++] = xstrdup(line);
}

static instance *find(hw_world *w, const char *id)
{
    for (size_t i = 0; i < w->n_inst; i++) {
        if (strcmp(w->inst[i].id, id) == 0) {
            return &w->inst[i];
        }
    }
    return NULL;
}

static instance *find_or_add(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    if (in != NULL) {
        return in;
    }
    w->inst = xrealloc(w->inst, (w->n_inst + 1) * sizeof(*w->inst));
    in = &w->inst[w->n_inst++];
    memset(in, 0, sizeof(*in));
    in->id = xstrdup(id);
    in->parent_task = -1;
    return in;
}

static named_fn *find_act(hw_world *w, const char *name)
{
    for (size_t i = 0; i < w->n_act; i++) {
        if (strcmp(w->act[i].name, name) == 0) {
            return &w->act[i];
        }
    }
    return NULL;
}

/* ---- world ---- */

hw_world *hw_create(size_t cache_capacity)
{
    hw_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        abort();
    }
    w->now = 1700000000000; /* a fixed start keeps histories identical across worlds */
    dt__engine_config cfg = {
        .cache_capacity = cache_capacity,
        .stack_size = 64 * 1024,
        .lookup = lookup,
        .lookup_ctx = w,
        .log = log_sink,
        .log_ctx = w,
    };
    if (dt__engine_create(&cfg, &w->engine) != DT_OK) {
        abort();
    }
    return w;
}

static void clear_hist(instance *in)
{
    for (size_t i = 0; i < in->n_hist; i++) {
        free(in->hist[i].data);
    }
    in->n_hist = 0;
}

void hw_destroy(hw_world *w)
{
    if (w == NULL) {
        return;
    }
    dt__engine_destroy(w->engine);
    for (size_t i = 0; i < w->n_inst; i++) {
        instance *in = &w->inst[i];
        clear_hist(in);
        free(in->hist);
        free(in->id);
        free(in->name);
        free(in->output);
        free(in->custom_status);
        free(in->failure.data);
        free(in->parent_id);
        free(in->exec);
    }
    free(w->inst);
    for (size_t i = w->q_head; i < w->q_len; i++) {
        free(w->q[i].instance_id);
        free(w->q[i].ev.data);
    }
    free(w->q);
    for (size_t i = 0; i < w->n_timers; i++) {
        free(w->timers[i].instance_id);
    }
    free(w->timers);
    for (size_t i = 0; i < w->n_orch; i++) {
        free(w->orch[i].name);
    }
    for (size_t i = 0; i < w->n_act; i++) {
        free(w->act[i].name);
    }
    for (size_t i = 0; i < w->n_held; i++) {
        free(w->held[i].name);
        free(w->held[i].instance_id);
        free(w->held[i].input);
    }
    free(w->held);
    for (size_t i = 0; i < w->n_published; i++) {
        free(w->published[i]);
    }
    free(w->published);
    for (size_t i = 0; i < w->n_logs; i++) {
        free(w->logs[i]);
    }
    free(w->logs);
    dtpb__task_failure_details__free_unpacked(w->failure_view, NULL);
    dtpb__history_event__free_unpacked(w->event_view, NULL);
    free(w);
}

void hw_orchestrator(hw_world *w, const char *name, dt_orchestrator_fn fn, void *ud)
{
    w->orch[w->n_orch++] = (named_fn){.name = xstrdup(name), .fn = (void *)fn, .ud = ud};
}

void hw_activity(hw_world *w, const char *name, hw_activity_fn fn, void *ud)
{
    w->act[w->n_act++] = (named_fn){.name = xstrdup(name), .fn = (void *)fn, .ud = ud};
}

void hw_hold_activity(hw_world *w, const char *name)
{
    named_fn *a = find_act(w, name);
    if (a == NULL) {
        w->act[w->n_act++] = (named_fn){.name = xstrdup(name)};
        a = &w->act[w->n_act - 1];
    }
    a->hold = true;
}

/* ---- the message queue ---- */

static void enqueue(hw_world *w, const char *id, const Dtpb__HistoryEvent *ev)
{
    if (w->q_len == w->q_cap) {
        w->q_cap = w->q_cap == 0 ? 64 : w->q_cap * 2;
        w->q = xrealloc(w->q, w->q_cap * sizeof(*w->q));
    }
    w->q[w->q_len++] = (queued_msg){.instance_id = xstrdup(id), .ev = pack(ev)};
}

/* Puts a batch's encoded messages back at the end of the queue; takes their buffers. */
static void requeue(hw_world *w, const char *id, blob *batch, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        if (w->q_len == w->q_cap) {
            w->q_cap = w->q_cap == 0 ? 64 : w->q_cap * 2;
            w->q = xrealloc(w->q, w->q_cap * sizeof(*w->q));
        }
        w->q[w->q_len++] = (queued_msg){.instance_id = xstrdup(id), .ev = batch[i]};
        batch[i].data = NULL;
    }
}

static Dtpb__HistoryEvent new_event(hw_world *w, Dtpb__Timestamp *ts)
{
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    *ts = ts_of(w->now);
    ev.event_id = -1;
    ev.timestamp = ts;
    return ev;
}

static void send_started(hw_world *w, const char *name, const char *id, const char *exec,
                         const Dtpb__Payload *input, const char *parent, int32_t parent_task)
{
    Dtpb__Timestamp ts;
    Dtpb__HistoryEvent ev = new_event(w, &ts);
    Dtpb__ExecutionStartedEvent e = DTPB__EXECUTION_STARTED_EVENT__INIT;
    Dtpb__OrchestrationInstance oi = DTPB__ORCHESTRATION_INSTANCE__INIT;
    Dtpb__Payload ex = DTPB__PAYLOAD__INIT;
    ex.value.data = (uint8_t *)exec;
    ex.value.len = strlen(exec);
    oi.instance_id = (char *)id;
    oi.execution_id = &ex;
    e.name = (char *)name;
    e.input = (Dtpb__Payload *)input;
    e.orchestration_instance = &oi;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev.execution_started = &e;
    instance *in = find_or_add(w, id);
    free(in->exec);
    in->exec = xstrdup(exec);
    free(in->parent_id);
    in->parent_id = xstrdup(parent);
    in->parent_task = parent_task;
    in->exists = true;
    free(in->name);
    in->name = xstrdup(name);
    enqueue(w, id, &ev);
}

void hw_start(hw_world *w, const char *name, const char *instance_id, const char *input)
{
    Dtpb__Payload p = DTPB__PAYLOAD__INIT;
    p.value.data = (uint8_t *)input;
    p.value.len = input != NULL ? strlen(input) : 0;
    char exec[64];
    snprintf(exec, sizeof(exec), "exec-%s-1", instance_id);
    send_started(w, name, instance_id, exec, input != NULL ? &p : NULL, NULL, -1);
}

void hw_raise(hw_world *w, const char *instance_id, const char *event, const char *data)
{
    Dtpb__Timestamp ts;
    Dtpb__HistoryEvent ev = new_event(w, &ts);
    Dtpb__EventRaisedEvent e = DTPB__EVENT_RAISED_EVENT__INIT;
    Dtpb__Payload p = DTPB__PAYLOAD__INIT;
    p.value.data = (uint8_t *)data;
    p.value.len = data != NULL ? strlen(data) : 0;
    e.name = (char *)event;
    e.input = data != NULL ? &p : NULL;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ev.event_raised = &e;
    enqueue(w, instance_id, &ev);
}

void hw_terminate(hw_world *w, const char *instance_id, const char *reason)
{
    Dtpb__Timestamp ts;
    Dtpb__HistoryEvent ev = new_event(w, &ts);
    Dtpb__ExecutionTerminatedEvent e = DTPB__EXECUTION_TERMINATED_EVENT__INIT;
    Dtpb__Payload p = DTPB__PAYLOAD__INIT;
    p.value.data = (uint8_t *)reason;
    p.value.len = reason != NULL ? strlen(reason) : 0;
    e.input = reason != NULL ? &p : NULL;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
    ev.execution_terminated = &e;
    enqueue(w, instance_id, &ev);
}

void hw_suspend(hw_world *w, const char *instance_id)
{
    Dtpb__Timestamp ts;
    Dtpb__HistoryEvent ev = new_event(w, &ts);
    Dtpb__ExecutionSuspendedEvent e = DTPB__EXECUTION_SUSPENDED_EVENT__INIT;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED;
    ev.execution_suspended = &e;
    enqueue(w, instance_id, &ev);
}

void hw_resume(hw_world *w, const char *instance_id)
{
    Dtpb__Timestamp ts;
    Dtpb__HistoryEvent ev = new_event(w, &ts);
    Dtpb__ExecutionResumedEvent e = DTPB__EXECUTION_RESUMED_EVENT__INIT;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED;
    ev.execution_resumed = &e;
    enqueue(w, instance_id, &ev);
}

void hw_send_raw(hw_world *w, const char *instance_id, const Dtpb__HistoryEvent *ev)
{
    enqueue(w, instance_id, ev);
}

/* ---- results of actions ---- */

static void send_task_result(hw_world *w, const char *id, int32_t task, const char *output,
                             bool failed, const char *type, const char *message, bool nonretry,
                             bool sub)
{
    Dtpb__Timestamp ts;
    Dtpb__HistoryEvent ev = new_event(w, &ts);
    Dtpb__Payload p = DTPB__PAYLOAD__INIT;
    p.value.data = (uint8_t *)output;
    p.value.len = output != NULL ? strlen(output) : 0;
    Dtpb__TaskFailureDetails fd = DTPB__TASK_FAILURE_DETAILS__INIT;
    fd.error_type = (char *)(type != NULL ? type : "");
    fd.error_message = (char *)(message != NULL ? message : "");
    fd.is_non_retriable = nonretry;
    Dtpb__TaskCompletedEvent tc = DTPB__TASK_COMPLETED_EVENT__INIT;
    Dtpb__TaskFailedEvent tf = DTPB__TASK_FAILED_EVENT__INIT;
    Dtpb__SubOrchestrationInstanceCompletedEvent sc =
        DTPB__SUB_ORCHESTRATION_INSTANCE_COMPLETED_EVENT__INIT;
    Dtpb__SubOrchestrationInstanceFailedEvent sf =
        DTPB__SUB_ORCHESTRATION_INSTANCE_FAILED_EVENT__INIT;
    if (!sub && !failed) {
        tc.task_scheduled_id = task;
        tc.result = output != NULL ? &p : NULL;
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
        ev.task_completed = &tc;
    } else if (!sub) {
        tf.task_scheduled_id = task;
        tf.failure_details = &fd;
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED;
        ev.task_failed = &tf;
    } else if (!failed) {
        sc.task_scheduled_id = task;
        sc.result = output != NULL ? &p : NULL;
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED;
        ev.sub_orchestration_instance_completed = &sc;
    } else {
        sf.task_scheduled_id = task;
        sf.failure_details = &fd;
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED;
        ev.sub_orchestration_instance_failed = &sf;
    }
    enqueue(w, id, &ev);
}

static void run_activity(hw_world *w, const char *id, const Dtpb__HistoryEvent *ev)
{
    const Dtpb__TaskScheduledEvent *ts = ev->task_scheduled;
    char *input = ts->input != NULL ? bytes_str(ts->input->value.data, ts->input->value.len) : NULL;
    named_fn *a = find_act(w, ts->name);
    if (a != NULL) {
        a->calls++;
    }
    if (a != NULL && a->hold) {
        w->held = xrealloc(w->held, (w->n_held + 1) * sizeof(*w->held));
        w->held[w->n_held++] = (held){xstrdup(ts->name), xstrdup(id), input, ev->event_id, false};
        return;
    }
    if (a == NULL || a->fn == NULL) {
        send_task_result(w, id, ev->event_id, NULL, true, "dt.UnknownActivity", "no such activity",
                         true, false);
        free(input);
        return;
    }
    hw_act_result r = {0};
    ((hw_activity_fn)a->fn)(w, input, &r, a->ud);
    send_task_result(w, id, ev->event_id, r.output, r.failed, r.error_type, r.error_message,
                     r.non_retriable, false);
    free(r.output);
    free(r.error_type);
    free(r.error_message);
    free(input);
}

static void add_timer(hw_world *w, const char *id, const Dtpb__HistoryEvent *ev)
{
    w->timers = xrealloc(w->timers, (w->n_timers + 1) * sizeof(*w->timers));
    w->timers[w->n_timers++] =
        (timer){xstrdup(id), ms_of(ev->timer_created->fire_at), ev->event_id, false};
}

static void start_child(hw_world *w, const char *parent, const Dtpb__HistoryEvent *ev)
{
    const Dtpb__SubOrchestrationInstanceCreatedEvent *c = ev->sub_orchestration_instance_created;
    instance *existing = find(w, c->instance_id);
    if (existing != NULL && existing->exists &&
        existing->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING) {
        send_task_result(w, parent, ev->event_id, NULL, true, "dt.InstanceExists",
                         "instance already running", true, true);
        return;
    }
    if (existing != NULL) {
        clear_hist(existing);
        existing->status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    }
    char exec[300];
    snprintf(exec, sizeof(exec), "exec-%s-1", c->instance_id);
    send_started(w, c->name, c->instance_id, exec, c->input, parent, ev->event_id);
}

static void publish(hw_world *w, const Dtpb__MessagePublishedEvent *m)
{
    char *data = bytes_str(m->data.data, m->data.len);
    size_t n = strlen(m->subject) + strlen(data) + 2;
    char *line = xrealloc(NULL, n);
    snprintf(line, n, "%s|%s", m->subject, data);
    free(data);
    w->published = xrealloc(w->published, (w->n_published + 1) * sizeof(char *));
    w->published[w->n_published++] = line;
}

static void do_actions(hw_world *w, const char *id, Dtpb__HistoryEvent *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Dtpb__HistoryEvent *ev = evs[i];
        switch (ev->event_type_case) {
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
            run_activity(w, id, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
            add_timer(w, id, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
            start_child(w, id, ev);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
            hw_raise(w, ev->event_sent->instance_id, ev->event_sent->name,
                     ev->event_sent->input != NULL ? (const char *)ev->event_sent->input->value.data
                                                   : NULL);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_MESSAGE_PUBLISHED:
            publish(w, ev->message_published);
            break;
        default:
            break;
        }
    }
}

/* ---- episodes ---- */

static void append(instance *in, const Dtpb__HistoryEvent *ev)
{
    if (in->n_hist == in->cap_hist) {
        in->cap_hist = in->cap_hist == 0 ? 16 : in->cap_hist * 2;
        in->hist = xrealloc(in->hist, in->cap_hist * sizeof(blob));
    }
    in->hist[in->n_hist++] = pack(ev);
}

static void set_str(char **dst, const uint8_t *p, size_t n, bool has)
{
    free(*dst);
    *dst = has ? bytes_str(p, n) : NULL;
}

static void notify_parent(hw_world *w, instance *in, const dt__episode_result *r)
{
    if (in->parent_id == NULL) {
        return;
    }
    bool ok = r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    const char *type = r->failure != NULL ? r->failure->error_type : "dt.Terminated";
    const char *msg = r->failure != NULL ? r->failure->error_message : "terminated";
    send_task_result(w, in->parent_id, in->parent_task, ok ? in->output : NULL, !ok, type, msg,
                     false, true);
}

static void continue_as_new(hw_world *w, instance *in, const dt__episode_result *r)
{
    clear_hist(in);
    in->status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    Dtpb__Payload p = DTPB__PAYLOAD__INIT;
    p.value.data = (uint8_t *)r->output;
    p.value.len = r->output_len;
    char *name = xstrdup(in->name), *parent = xstrdup(in->parent_id);
    send_started(w, name, in->id, r->next_execution_id, r->has_output ? &p : NULL, parent,
                 in->parent_task);
    free(name);
    free(parent);
    for (size_t i = 0; i < r->n_carryover; i++) {
        enqueue(w, in->id, r->carryover[i]);
    }
}

static void apply_result(hw_world *w, instance *in, const dt__episode_result *r)
{
    for (size_t i = 0; i < r->n_appended; i++) {
        append(in, r->appended[i]);
    }
    in->status = r->status;
    in->suspended = r->suspended;
    set_str(&in->custom_status, r->custom_status, r->custom_status_len, r->has_custom_status);
    set_str(&in->output, r->output, r->output_len, r->has_output);
    free(in->failure.data);
    in->failure = (blob){0};
    if (r->failure != NULL) {
        in->failure.len = protobuf_c_message_get_packed_size(&r->failure->base);
        in->failure.data = xrealloc(NULL, in->failure.len + 1);
        protobuf_c_message_pack(&r->failure->base, in->failure.data);
    }
    const char *id = in->id;
    do_actions(w, id, r->appended, r->n_appended);
    in = find(w, id); /* starting a child may have moved the instance table */
    if (r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW) {
        in->executions++;
        continue_as_new(w, in, r);
    } else if (r->status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING) {
        notify_parent(w, in, r);
    }
}

static Dtpb__HistoryEvent **decode_all(const blob *b, size_t n)
{
    Dtpb__HistoryEvent **evs = xrealloc(NULL, (n > 0 ? n : 1) * sizeof(*evs));
    for (size_t i = 0; i < n; i++) {
        evs[i] = dtpb__history_event__unpack(NULL, b[i].len, b[i].data);
        if (evs[i] == NULL) {
            abort();
        }
    }
    return evs;
}

static void free_all(Dtpb__HistoryEvent **evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dtpb__history_event__free_unpacked(evs[i], NULL);
    }
    free(evs);
}

static bool finished(const instance *in)
{
    return in->n_hist > 0 && in->status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
}

/* Runs one episode for the instance of the oldest message, with all its queued messages. */
static void step(hw_world *w)
{
    char *id = xstrdup(w->q[w->q_head].instance_id);
    blob *batch = NULL;
    size_t nb = 0;
    size_t keep = w->q_head;
    for (size_t i = w->q_head; i < w->q_len; i++) {
        if (strcmp(w->q[i].instance_id, id) == 0) {
            batch = xrealloc(batch, (nb + 1) * sizeof(blob));
            batch[nb++] = w->q[i].ev;
            free(w->q[i].instance_id);
        } else {
            w->q[keep++] = w->q[i];
        }
    }
    w->q_len = keep;
    instance *in = find_or_add(w, id);
    if (!finished(in)) {
        size_t n_past = in->n_hist;
        /* Like the worker: skip loading history the engine's cache already reflects. */
        bool elide = in->exec != NULL && dt__engine_is_current(w->engine, id, in->exec, n_past);
        Dtpb__HistoryEvent **past = decode_all(in->hist, elide ? 0 : in->n_hist);
        w->elided += elide;
        Dtpb__HistoryEvent **news = decode_all(batch, nb);
        dt__episode_input input = {id, elide ? NULL : past, n_past, news, nb, w->now};
        dt__episode_result r;
        dt_status st = dt__engine_run_episode(w->engine, &input, &r);
        if (st == DT_OK) {
            apply_result(w, in, &r);
            dt__episode_result_free(&r);
        } else if (st == DT_ENOMEM && w->retry_enomem) {
            w->enomem_episodes++;
            requeue(w, id, batch, nb);
        } else if (st != DT_EINVAL) {
            fprintf(stderr, "harness: episode of %s failed: %s\n", id, dt_status_str(st));
            abort();
        }
        free_all(past, elide ? 0 : n_past);
        free_all(news, nb);
    }
    for (size_t i = 0; i < nb; i++) {
        free(batch[i].data);
    }
    free(batch);
    free(id);
}

int hw_run_idle(hw_world *w)
{
    int episodes = 0;
    while (w->q_head < w->q_len) {
        step(w);
        if (++episodes > MAX_STEPS) {
            abort();
        }
    }
    w->q_head = w->q_len = 0;
    return episodes;
}

static bool fire_due(hw_world *w)
{
    bool any = false;
    for (size_t i = 0; i < w->n_timers; i++) {
        timer *t = &w->timers[i];
        if (t->fired || t->fire_at > w->now) {
            continue;
        }
        t->fired = true;
        any = true;
        Dtpb__Timestamp ts, fa = ts_of(t->fire_at);
        Dtpb__HistoryEvent ev = new_event(w, &ts);
        Dtpb__TimerFiredEvent e = DTPB__TIMER_FIRED_EVENT__INIT;
        e.fire_at = &fa;
        e.timer_id = t->id;
        ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED;
        ev.timer_fired = &e;
        enqueue(w, t->instance_id, &ev);
    }
    return any;
}

int hw_run(hw_world *w)
{
    int episodes = hw_run_idle(w);
    for (;;) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < w->n_timers; i++) {
            if (!w->timers[i].fired && w->timers[i].fire_at < next) {
                next = w->timers[i].fire_at;
            }
        }
        if (next == INT64_MAX) {
            return episodes;
        }
        if (next > w->now) {
            w->now = next;
        }
        fire_due(w);
        episodes += hw_run_idle(w);
    }
}

void hw_advance(hw_world *w, int64_t ms)
{
    w->now += ms;
    fire_due(w);
    hw_run_idle(w);
}

int64_t hw_now(hw_world *w)
{
    return w->now;
}

/* ---- held activities ---- */

static held *nth_held(hw_world *w, const char *name, size_t i)
{
    while (w->held_done_prefix < w->n_held && w->held[w->held_done_prefix].done) {
        w->held_done_prefix++;
    }
    for (size_t k = w->held_done_prefix; k < w->n_held; k++) {
        if (!w->held[k].done && strcmp(w->held[k].name, name) == 0 && i-- == 0) {
            return &w->held[k];
        }
    }
    abort();
}

size_t hw_held(hw_world *w, const char *name)
{
    size_t n = 0;
    for (size_t k = w->held_done_prefix; k < w->n_held; k++) {
        n += !w->held[k].done && strcmp(w->held[k].name, name) == 0;
    }
    return n;
}

const char *hw_held_input(hw_world *w, const char *name, size_t i)
{
    return nth_held(w, name, i)->input;
}

void hw_complete_held(hw_world *w, const char *name, size_t i, const char *output)
{
    held *h = nth_held(w, name, i);
    h->done = true;
    send_task_result(w, h->instance_id, h->task_id, output, false, NULL, NULL, false, false);
}

void hw_fail_held(hw_world *w, const char *name, size_t i, const char *type, const char *message)
{
    held *h = nth_held(w, name, i);
    h->done = true;
    send_task_result(w, h->instance_id, h->task_id, NULL, true, type, message, false, false);
}

/* ---- inspection ---- */

bool hw_exists(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL && in->exists;
}

Dtpb__OrchestrationStatus hw_status(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL ? in->status : DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING;
}

bool hw_is_suspended(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL && in->suspended;
}

const char *hw_output(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL ? in->output : NULL;
}

const char *hw_custom_status(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL ? in->custom_status : NULL;
}

const Dtpb__TaskFailureDetails *hw_failure(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    dtpb__task_failure_details__free_unpacked(w->failure_view, NULL);
    w->failure_view = NULL;
    if (in == NULL || in->failure.data == NULL) {
        return NULL;
    }
    w->failure_view = dtpb__task_failure_details__unpack(NULL, in->failure.len, in->failure.data);
    return w->failure_view;
}

size_t hw_history_len(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL ? in->n_hist : 0;
}

const Dtpb__HistoryEvent *hw_history_event(hw_world *w, const char *id, size_t i)
{
    instance *in = find(w, id);
    dtpb__history_event__free_unpacked(w->event_view, NULL);
    w->event_view = NULL;
    if (in == NULL || i >= in->n_hist) {
        return NULL;
    }
    w->event_view = dtpb__history_event__unpack(NULL, in->hist[i].len, in->hist[i].data);
    return w->event_view;
}

int hw_executions(hw_world *w, const char *id)
{
    instance *in = find(w, id);
    return in != NULL ? in->executions + 1 : 0;
}

int hw_activity_calls(hw_world *w, const char *name)
{
    named_fn *a = find_act(w, name);
    return a != NULL ? a->calls : 0;
}

size_t hw_published(hw_world *w)
{
    return w->n_published;
}

const char *hw_published_at(hw_world *w, size_t i)
{
    return i < w->n_published ? w->published[i] : NULL;
}

size_t hw_logs(hw_world *w)
{
    return w->n_logs;
}

const char *hw_log_at(hw_world *w, size_t i)
{
    return i < w->n_logs ? w->logs[i] : NULL;
}

size_t hw_cached(hw_world *w)
{
    return dt__engine_cached(w->engine);
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool hw_same(hw_world *a, hw_world *b, char *why, size_t why_len)
{
    if (a->n_inst != b->n_inst) {
        snprintf(why, why_len, "instance counts differ: %zu vs %zu", a->n_inst, b->n_inst);
        return false;
    }
    for (size_t i = 0; i < a->n_inst; i++) {
        instance *x = &a->inst[i], *y = find(b, x->id);
        if (y == NULL || x->n_hist != y->n_hist || x->status != y->status ||
            !str_eq(x->output, y->output) || !str_eq(x->custom_status, y->custom_status)) {
            snprintf(why, why_len, "instance %s differs (history %zu vs %zu events)", x->id,
                     x->n_hist, y != NULL ? y->n_hist : 0);
            return false;
        }
        for (size_t k = 0; k < x->n_hist; k++) {
            if (x->hist[k].len != y->hist[k].len ||
                memcmp(x->hist[k].data, y->hist[k].data, x->hist[k].len) != 0) {
                snprintf(why, why_len, "instance %s: history event %zu differs", x->id, k);
                return false;
            }
        }
    }
    return true;
}

int hw_elided(hw_world *w)
{
    return w->elided;
}

void hw_retry_enomem(hw_world *w, bool on)
{
    w->retry_enomem = on;
}

int hw_enomem_episodes(hw_world *w)
{
    return w->enomem_episodes;
}
