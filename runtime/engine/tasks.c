/*
 * Tasks of an orchestration: creating them (the dt_call_* / dt_when_* API), numbering actions
 * deterministically, and completing them, which propagates to the composites (when-all, when-any,
 * retry, event-with-timeout) that wait on them.
 *
 * Action numbering: every action (activity, timer, sub-orchestration, send-event, publish) takes
 * the next sequence number in the order the code creates it, including the timers and attempts a
 * retry policy creates when a failure is applied. Replay applies the same events in the same order,
 * so the numbering is the same on every replay; replay.c checks it against history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance_int.h"

/* ---- memory ---- */

/* Out of memory inside an episode: flag it; if user code is running, park its coroutine for good
 * (the engine abandons the episode and evicts the instance, so it is never resumed). */
static void *oom(dt__instance *in)
{
    in->oom = true;
    if (in->in_coro) {
        for (;;) {
            dt__coro_yield(in->coro);
        }
    }
    return NULL;
}

void *dt__inst_alloc(dt__instance *in, size_t size)
{
    void *p = dt__arena_calloc(in->arena, 1, size);
    return p != NULL ? p : oom(in);
}

const uint8_t *dt__inst_copy(dt__instance *in, const void *p, size_t len)
{
    void *c = dt__arena_memdup(in->arena, p != NULL ? p : "", p != NULL ? len : 0);
    return c != NULL ? c : oom(in);
}

const char *dt__inst_strdup(dt__instance *in, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    char *c = dt__arena_strdup(in->arena, s);
    return c != NULL ? c : oom(in);
}

/* ---- the action table ---- */

static void free_table(void *arg)
{
    dt_free(*(dt_task ***)arg);
}

dt_task *dt__task_by_id(dt__instance *in, int32_t id)
{
    if (id < 0 || id >= in->next_id) {
        return NULL;
    }
    return in->tasks[id];
}

/* Gives `t` the next action number. */
static bool take_id(dt__instance *in, dt_task *t)
{
    if ((size_t)in->next_id == in->tasks_cap) {
        size_t cap = in->tasks_cap == 0 ? 16 : in->tasks_cap * 2;
        dt_task **grown = dt_realloc(in->tasks, cap * sizeof(*grown));
        if (grown == NULL) {
            return oom(in) != NULL;
        }
        if (in->tasks == NULL && dt__arena_on_destroy(in->arena, free_table, &in->tasks) != DT_OK) {
            dt_free(grown);
            return oom(in) != NULL;
        }
        in->tasks = grown;
        in->tasks_cap = cap;
    }
    t->id = in->next_id++;
    in->tasks[t->id] = t;
    return true;
}

static dt_task *new_task(dt__instance *in, task_kind kind)
{
    dt_task *t = dt__inst_alloc(in, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->kind = kind;
    t->state = TASK_PENDING;
    t->id = -1;
    t->u.group.winner = -1;
    return t;
}

static dt_task *new_action(dt__instance *in, task_kind kind)
{
    dt_task *t = new_task(in, kind);
    if (t == NULL || !take_id(in, t)) {
        return NULL;
    }
    return t;
}

static bool link_parent(dt__instance *in, dt_task *child, dt_task *parent)
{
    task_link *l = dt__inst_alloc(in, sizeof(*l));
    if (l == NULL) {
        return false;
    }
    l->parent = parent;
    l->next = child->parents;
    child->parents = l;
    return true;
}

/* ---- completion and propagation ---- */

static void on_child_done(dt__instance *in, dt_task *parent, dt_task *child);

void dt__task_complete(dt__instance *in, dt_task *t, const uint8_t *out, size_t len, bool has_out,
                       const dt_failure *failure)
{
    if (t->state != TASK_PENDING) {
        return; /* duplicate completion: the first one wins */
    }
    t->state = failure != NULL ? TASK_FAILED : TASK_OK;
    t->failure = failure;
    t->output = has_out ? out : NULL;
    t->output_len = has_out ? len : 0;
    for (task_link *l = t->parents; l != NULL; l = l->next) {
        if (l->parent->state == TASK_PENDING) {
            on_child_done(in, l->parent, t);
        }
    }
}

static void complete_like(dt__instance *in, dt_task *t, const dt_task *from)
{
    dt__task_complete(in, t, from->output, from->output_len, from->output != NULL, from->failure);
}

static void group_child_done(dt__instance *in, dt_task *g, dt_task *child)
{
    if (g->kind == TASK_WHEN_ANY) {
        for (size_t i = 0; i < g->u.group.n; i++) {
            if (g->u.group.children[i] == child) {
                g->u.group.winner = (int)i;
                break;
            }
        }
        dt__task_complete(in, g, NULL, 0, false, NULL);
        return;
    }
    if (child->state == TASK_FAILED && g->failure == NULL) {
        g->failure = child->failure; /* first failure seen; reported when all are done */
    }
    if (--g->u.group.remaining == 0) {
        const dt_failure *f = g->failure;
        g->failure = NULL;
        dt__task_complete(in, g, NULL, 0, false, f);
    }
}

static void race_child_done(dt__instance *in, dt_task *r, dt_task *child)
{
    if (child == r->u.race.wait) {
        complete_like(in, r, child);
        return;
    }
    /* The timer won: withdraw the wait so a later event is buffered for the next wait. */
    r->u.race.wait->u.event.withdrawn = true;
    const dt_failure *f =
        dt__failure_make(in, DT_FAILURE_TIMEOUT, NULL, "no event '%s' arrived in time",
                         r->u.race.wait->u.event.name);
    if (f != NULL) {
        dt__task_complete(in, r, NULL, 0, false, f);
    }
}

static void retry_child_done(dt__instance *in, dt_task *r, dt_task *child);

static void on_child_done(dt__instance *in, dt_task *parent, dt_task *child)
{
    switch (parent->kind) {
    case TASK_WHEN_ALL:
    case TASK_WHEN_ANY:
        group_child_done(in, parent, child);
        break;
    case TASK_EVENT_TIMEOUT:
        race_child_done(in, parent, child);
        break;
    case TASK_RETRY:
        retry_child_done(in, parent, child);
        break;
    default:
        break;
    }
}

/* ---- calls and retry policies ---- */

/*
 * The instance ID of a child started without one: "<parent id>:<execution id>:<task number, 4
 * digits>". The execution ID keeps the generations of a continue-as-new loop apart (each starts
 * its task numbers at 0 again, and the second generation's child would replace the first's); the
 * task number keeps the children of one execution apart, retries included. Deterministic: replay
 * derives the same ID. (Durable Task Framework: "<execution id>:<task number>"; the parent's ID
 * in front keeps children listed next to their parent.)
 */
static const char *child_id(dt__instance *in, int32_t task)
{
    char suffix[16];
    snprintf(suffix, sizeof(suffix), ":%04d", (int)task);
    size_t n = strlen(in->instance_id), x = strlen(in->execution_id), m = strlen(suffix);
    char *id = dt__inst_alloc(in, n + 1 + x + m + 1);
    if (id == NULL) {
        return NULL;
    }
    memcpy(id, in->instance_id, n);
    id[n] = ':';
    memcpy(id + n + 1, in->execution_id, x);
    memcpy(id + n + 1 + x, suffix, m + 1);
    return id;
}

/* Creates one attempt of a call as a new action. */
static dt_task *new_call(dt__instance *in, const call_spec *c)
{
    dt_task *a = new_action(in, c->is_sub_orch ? TASK_SUB_ORCH : TASK_ACTIVITY);
    if (a == NULL) {
        return NULL;
    }
    a->u.action.name = c->name;
    a->u.action.task_queue = c->task_queue;
    a->u.action.version = c->version;
    a->u.action.input = c->input;
    a->u.action.input_len = c->input_len;
    a->u.action.has_input = c->has_input;
    if (c->is_sub_orch) {
        a->u.action.target = c->instance_id != NULL ? c->instance_id : child_id(in, a->id);
        if (a->u.action.target == NULL) {
            return NULL;
        }
    }
    return a;
}

static void start_attempt(dt__instance *in, dt_task *r)
{
    dt_task *a = new_call(in, &r->u.retry.call);
    if (a == NULL) {
        return;
    }
    r->u.retry.attempt++;
    r->u.retry.current = a;
    link_parent(in, a, r);
}

/* a + b for times in ms, held at the int64 range: a history's timestamps are input (a malformed
 * or hostile one may say INT64_MAX), and a delay added to them must not overflow. */
static int64_t add_ms(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        return INT64_MIN;
    }
    return a + b;
}

/* Milliseconds to wait before the next attempt, or -1 when no retry is allowed. */
static int64_t retry_delay(const dt__instance *in, const dt_task *r, const dt_failure *f)
{
    const dt_retry_policy *p = &r->u.retry.policy;
    if (f->non_retriable || r->u.retry.attempt >= p->max_attempts) {
        return -1;
    }
    /* The caller's predicate: deterministic by contract, so replay decides the same. */
    if (p->should_retry != NULL && !p->should_retry(f, r->u.retry.attempt, p->should_retry_ctx)) {
        return -1;
    }
    double coeff = p->backoff_coefficient < 1.0 ? 1.0 : p->backoff_coefficient;
    double delay = (double)p->first_interval_ms;
    for (int i = 1; i < r->u.retry.attempt && delay < 9.0e15; i++) {
        delay *= coeff;
    }
    if (p->max_interval_ms > 0 && delay > (double)p->max_interval_ms) {
        delay = (double)p->max_interval_ms;
    }
    if (delay > 9.0e15) {
        delay = 9.0e15;
    }
    int64_t d = (int64_t)delay;
    if (p->retry_timeout_ms > 0 &&
        add_ms(in->now_ms, d) > add_ms(r->u.retry.first_attempt_ms, p->retry_timeout_ms)) {
        return -1;
    }
    return d;
}

static void retry_child_done(dt__instance *in, dt_task *r, dt_task *child)
{
    if (child != r->u.retry.current) {
        return;
    }
    if (child->kind == TASK_TIMER) { /* backoff over: next attempt */
        start_attempt(in, r);
        return;
    }
    if (child->state == TASK_OK) {
        complete_like(in, r, child);
        return;
    }
    int64_t delay = retry_delay(in, r, child->failure);
    if (delay < 0) {
        complete_like(in, r, child);
        return;
    }
    dt_task *timer = new_action(in, TASK_TIMER);
    if (timer == NULL) {
        return;
    }
    timer->u.timer.fire_at_ms = add_ms(in->now_ms, delay);
    r->u.retry.current = timer;
    link_parent(in, timer, r);
}

/* ---- the public task API ---- */

dt_task *dt__task_new_action(dt__instance *in, task_kind kind)
{
    return new_action(in, kind);
}

/* A dt_ call from outside the orchestrator function is a bug in the program, not bad input: there
 * is no instance to fail, so it stops the process with a message, like a failed assert. */
static void check_in_code(dt__instance *in, const char *what)
{
    if (!in->in_coro) {
        fprintf(stderr, "durabletask: %s called outside the orchestrator function\n", what);
        abort();
    }
}

void dt__task_check_in_code(dt__instance *in, const char *what)
{
    check_in_code(in, what);
}

_Noreturn static void misuse(dt__instance *in, const char *message)
{
    dt_orch_fail(in, DT_FAILURE_MISUSE, message, NULL);
}

/* The caller's options struct as this release lays it out (struct_size: durabletask/defs.h);
 * NULL stays NULL. A struct this release cannot read fails the orchestration. */
static const void *read_opts(dt__instance *in, void *dst, size_t size, const void *src)
{
    if (src != NULL && dt__options_read(dst, size, src, size) != DT_OK) {
        misuse(in, "options or retry policy: struct_size of a newer release with fields set, or "
                   "invalid");
    }
    return src != NULL ? dst : NULL;
}

static void check_policy(dt__instance *in, const dt_retry_policy *p)
{
    if (p != NULL && (p->max_attempts < 1 || p->first_interval_ms < 0 || p->max_interval_ms < 0 ||
                      p->retry_timeout_ms < 0 || p->backoff_coefficient < 0.0)) {
        misuse(in, "invalid retry policy (max_attempts must be >= 1, intervals >= 0)");
    }
}

/* Copies the call into the arena and starts it, wrapped in a retry task when there is a policy. */
static dt_task *call(dt__instance *in, const call_spec *spec, const dt_retry_policy *policy)
{
    call_spec c = {
        .is_sub_orch = spec->is_sub_orch,
        .name = dt__inst_strdup(in, spec->name),
        .task_queue = dt__inst_strdup(in, spec->task_queue),
        .instance_id = dt__inst_strdup(in, spec->instance_id),
        .version = dt__inst_strdup(in, spec->version),
        .has_input = spec->input != NULL,
        .input = spec->input != NULL ? dt__inst_copy(in, spec->input, spec->input_len) : NULL,
        .input_len = spec->input != NULL ? spec->input_len : 0,
    };
    if (policy == NULL) {
        return new_call(in, &c);
    }
    dt_task *r = new_task(in, TASK_RETRY);
    r->u.retry.call = c;
    r->u.retry.policy = *policy;
    r->u.retry.first_attempt_ms = in->now_ms;
    start_attempt(in, r);
    return r;
}

dt_task *dt_call_activity(dt_orch_ctx *in, const char *name, const void *input, size_t len,
                          const dt_activity_options *opts)
{
    check_in_code(in, "dt_call_activity");
    if (name == NULL || name[0] == '\0') {
        misuse(in, "dt_call_activity needs an activity name");
    }
    dt_activity_options o;
    dt_retry_policy p;
    opts = read_opts(in, &o, sizeof(o), opts);
    const dt_retry_policy *policy = read_opts(in, &p, sizeof(p), opts != NULL ? opts->retry : NULL);
    check_policy(in, policy);
    call_spec spec = {
        .name = name,
        .task_queue = opts != NULL && opts->task_queue != NULL ? opts->task_queue : "default",
        .input = input,
        .input_len = len,
    };
    return call(in, &spec, policy);
}

dt_task *dt_call_sub_orchestrator(dt_orch_ctx *in, const char *name, const void *input, size_t len,
                                  const dt_sub_orch_options *opts)
{
    check_in_code(in, "dt_call_sub_orchestrator");
    if (name == NULL || name[0] == '\0') {
        misuse(in, "dt_call_sub_orchestrator needs an orchestrator name");
    }
    dt_sub_orch_options o;
    dt_retry_policy p;
    opts = read_opts(in, &o, sizeof(o), opts);
    const dt_retry_policy *policy = read_opts(in, &p, sizeof(p), opts != NULL ? opts->retry : NULL);
    check_policy(in, policy);
    call_spec spec = {
        .is_sub_orch = true,
        .name = name,
        .instance_id = opts != NULL ? opts->instance_id : NULL,
        .version = opts != NULL ? opts->version : NULL,
        .input = input,
        .input_len = len,
    };
    return call(in, &spec, policy);
}

dt_task *dt_create_timer(dt_orch_ctx *in, int64_t fire_at_ms)
{
    check_in_code(in, "dt_create_timer");
    dt_task *t = new_action(in, TASK_TIMER);
    t->u.timer.fire_at_ms = fire_at_ms;
    return t;
}

dt_task *dt_sleep(dt_orch_ctx *in, int64_t delay_ms)
{
    return dt_create_timer(in, add_ms(in->now_ms, delay_ms > 0 ? delay_ms : 0));
}

/* Consumes the oldest buffered event named `name`, if any, into wait `t`. */
static bool take_buffered(dt__instance *in, dt_task *t)
{
    buffered_event *prev = NULL;
    for (buffered_event *b = in->buffered_head; b != NULL; prev = b, b = b->next) {
        if (!dt__name_eq(b->name, t->u.event.name)) {
            continue;
        }
        if (prev == NULL) {
            in->buffered_head = b->next;
        } else {
            prev->next = b->next;
        }
        if (in->buffered_tail == b) {
            in->buffered_tail = prev;
        }
        dt__task_complete(in, t, b->data, b->len, b->has_data, NULL);
        return true;
    }
    return false;
}

dt_task *dt_wait_event(dt_orch_ctx *in, const char *name)
{
    check_in_code(in, "dt_wait_event");
    if (name == NULL || name[0] == '\0') {
        misuse(in, "dt_wait_event needs an event name");
    }
    dt_task *t = new_task(in, TASK_EVENT);
    t->u.event.name = dt__inst_strdup(in, name);
    if (take_buffered(in, t)) {
        return t;
    }
    if (in->waiters_tail != NULL) {
        in->waiters_tail->u.event.next_waiter = t;
    } else {
        in->waiters_head = t;
    }
    in->waiters_tail = t;
    return t;
}

dt_task *dt_wait_event_timeout(dt_orch_ctx *in, const char *name, int64_t timeout_ms)
{
    dt_task *wait = dt_wait_event(in, name);
    dt_task *r = new_task(in, TASK_EVENT_TIMEOUT);
    r->u.race.wait = wait;
    if (wait->state != TASK_PENDING) {
        complete_like(in, r, wait);
        return r;
    }
    dt_task *timer = dt_sleep(in, timeout_ms);
    r->u.race.timer = timer;
    link_parent(in, wait, r);
    link_parent(in, timer, r);
    return r;
}

void dt__instance_deliver_event(dt__instance *in, const char *name, const uint8_t *data, size_t len,
                                bool has_data)
{
    dt_task *prev = NULL;
    for (dt_task *w = in->waiters_head; w != NULL; prev = w, w = w->u.event.next_waiter) {
        if (w->u.event.withdrawn || !dt__name_eq(w->u.event.name, name)) {
            continue;
        }
        if (prev == NULL) {
            in->waiters_head = w->u.event.next_waiter;
        } else {
            prev->u.event.next_waiter = w->u.event.next_waiter;
        }
        if (in->waiters_tail == w) {
            in->waiters_tail = prev;
        }
        const uint8_t *copy = has_data ? dt__inst_copy(in, data, len) : NULL;
        dt__task_complete(in, w, copy, len, has_data, NULL);
        return;
    }
    dt__instance_buffer_event(in, name, data, len, has_data);
}

void dt__instance_buffer_event(dt__instance *in, const char *name, const uint8_t *data, size_t len,
                               bool has_data)
{
    buffered_event *b = dt__inst_alloc(in, sizeof(*b));
    if (b == NULL) {
        return;
    }
    b->name = dt__inst_strdup(in, name);
    b->has_data = has_data;
    b->data = has_data ? dt__inst_copy(in, data, len) : NULL;
    b->len = has_data ? len : 0;
    if (in->buffered_tail != NULL) {
        in->buffered_tail->next = b;
    } else {
        in->buffered_head = b;
    }
    in->buffered_tail = b;
}

static dt_task *new_group(dt__instance *in, task_kind kind, dt_task *const *tasks, size_t n)
{
    dt_task *g = new_task(in, kind);
    g->u.group.children = dt__inst_alloc(in, (n > 0 ? n : 1) * sizeof(dt_task *));
    g->u.group.n = n;
    g->u.group.remaining = n;
    g->u.group.winner = -1;
    for (size_t i = 0; i < n; i++) {
        if (tasks[i] == NULL) {
            misuse(in, "dt_when_all/dt_when_any given a NULL task");
        }
        g->u.group.children[i] = tasks[i];
    }
    for (size_t i = 0; i < n && g->state == TASK_PENDING; i++) {
        if (tasks[i]->state != TASK_PENDING) {
            group_child_done(in, g, tasks[i]);
        } else {
            link_parent(in, tasks[i], g);
        }
    }
    if (n == 0 && kind == TASK_WHEN_ALL) {
        dt__task_complete(in, g, NULL, 0, false, NULL);
    }
    return g;
}

dt_task *dt_when_all(dt_orch_ctx *in, dt_task *const *tasks, size_t n)
{
    check_in_code(in, "dt_when_all");
    return new_group(in, TASK_WHEN_ALL, tasks, n);
}

dt_task *dt_when_any(dt_orch_ctx *in, dt_task *const *tasks, size_t n)
{
    check_in_code(in, "dt_when_any");
    if (n == 0) {
        misuse(in, "dt_when_any needs at least one task");
    }
    return new_group(in, TASK_WHEN_ANY, tasks, n);
}

void dt_send_event(dt_orch_ctx *in, const char *instance_id, const char *name, const void *data,
                   size_t len)
{
    check_in_code(in, "dt_send_event");
    if (instance_id == NULL || instance_id[0] == '\0' || name == NULL || name[0] == '\0') {
        misuse(in, "dt_send_event needs an instance ID and an event name");
    }
    dt_task *t = new_action(in, TASK_SEND_EVENT);
    t->u.action.target = dt__inst_strdup(in, instance_id);
    t->u.action.name = dt__inst_strdup(in, name);
    t->u.action.has_input = data != NULL;
    t->u.action.input = data != NULL ? dt__inst_copy(in, data, len) : NULL;
    t->u.action.input_len = data != NULL ? len : 0;
    t->state = TASK_OK;
}

/* A NATS header name or value: non-empty printable text (an empty value cannot be read back by
 * nats.c 3.4.1; control characters would break the header block). */
static bool header_ok(const char *s, bool is_name)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c < ' ' || *c == 0x7f || (is_name && (*c == ':' || *c == ' '))) {
            return false;
        }
    }
    return true;
}

void dt_publish(dt_orch_ctx *in, const char *subject, const char *const *header_names,
                const char *const *header_values, size_t n_headers, const void *data, size_t len)
{
    check_in_code(in, "dt_publish");
    if (subject == NULL || subject[0] == '\0') {
        misuse(in, "dt_publish needs a subject");
    }
    for (size_t i = 0; i < n_headers; i++) {
        if (!header_ok(header_names[i], true) || !header_ok(header_values[i], false)) {
            misuse(in, "dt_publish headers need a non-empty name without ':' and a non-empty "
                       "value, both without control characters");
        }
    }
    dt_task *t = new_action(in, TASK_PUBLISH);
    t->u.action.name = dt__inst_strdup(in, subject);
    t->u.action.n_headers = n_headers;
    t->u.action.header_names = dt__inst_alloc(in, (n_headers + 1) * sizeof(char *));
    t->u.action.header_values = dt__inst_alloc(in, (n_headers + 1) * sizeof(char *));
    for (size_t i = 0; i < n_headers; i++) {
        t->u.action.header_names[i] = dt__inst_strdup(in, header_names[i]);
        t->u.action.header_values[i] = dt__inst_strdup(in, header_values[i]);
    }
    t->u.action.has_input = true;
    t->u.action.input = dt__inst_copy(in, data, data != NULL ? len : 0);
    t->u.action.input_len = data != NULL ? len : 0;
    t->state = TASK_OK;
}

bool dt_task_is_done(const dt_task *t)
{
    return t->state != TASK_PENDING;
}

const void *dt_task_output(const dt_task *t, size_t *len)
{
    if (len != NULL) {
        *len = t->output_len;
    }
    return t->output;
}

const dt_failure *dt_task_failure(const dt_task *t)
{
    return t->state == TASK_FAILED ? t->failure : NULL;
}

int dt_task_winner(const dt_task *t)
{
    return t->kind == TASK_WHEN_ANY ? t->u.group.winner : -1;
}
