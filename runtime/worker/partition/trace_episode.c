/*
 * Tracing of orchestrations (trace_int.h): the context an execution keeps in its start record,
 * the spans of its episodes, timers and of the execution itself, and the traceparent header of
 * every message an episode sends.
 *
 * Spans (all in the trace of the execution's orchestration_trace_context):
 *   orchestration:<name>  one per execution, exported by the episode that ends it, start = when
 *                         the instance was created (its start request), parent = the caller
 *   episode:<name>        one per episode, child of the orchestration span; the events it
 *                         applied (raised, suspended, resumed, terminated) are its span events
 *   timer                 one per timer, from its creation to the episode that applied it
 */
#include <stdio.h>
#include <string.h>

#include "episode_int.h"
#include "trace_episode_int.h"

#define NS_PER_MS 1000000LL

static Dtpb__TraceContext *tc_new(dt__arena *a, const char *traceparent, const char *tracestate)
{
    Dtpb__TraceContext *tc = dt__arena_alloc(a, sizeof(*tc));
    if (tc == NULL) {
        return NULL;
    }
    dtpb__trace_context__init(tc);
    tc->trace_parent = dt__arena_strdup(a, traceparent);
    if (tc->trace_parent == NULL) {
        return NULL;
    }
    if (tracestate != NULL && dt__tracestate_ok(tracestate)) {
        tc->trace_state = dt__emit_payload(a, (const uint8_t *)tracestate, strlen(tracestate));
    }
    return tc;
}

/* The tracestate of tc as a C string in `a`, or NULL. */
static const char *tc_state(dt__arena *a, const Dtpb__TraceContext *tc)
{
    const char *ts = tc != NULL ? dt__payload_str(a, tc->trace_state) : NULL;
    return dt__tracestate_ok(ts) ? ts : NULL;
}

static bool tc_parse(const Dtpb__TraceContext *tc, dt__trace_ctx *out)
{
    return tc != NULL && dt__trace_parse(tc->trace_parent, out);
}

/* The caller's context from the message's headers (a publisher's traceparent), or NULL. */
static Dtpb__TraceContext *from_headers(dt__episode *e, const dt__item *it)
{
    const char *tp = NULL, *ts = NULL;
    dt__trace_ctx c;
    if (it->msg == NULL || dt_broker_msg_header(it->msg, DT__HDR_TRACEPARENT, &tp) != DT_OK ||
        !dt__trace_parse(tp, &c)) {
        return NULL;
    }
    if (dt_broker_msg_header(it->msg, DT__HDR_TRACESTATE, &ts) != DT_OK) {
        ts = NULL;
    }
    return tc_new(e->a, tp, ts);
}

void dt__trace_on_start(dt__episode *e, const dt__item *it)
{
    Dtpb__ExecutionStartedEvent *s = e->start;
    dt__tracer *t = e->pt->w->tracer;
    dt__trace_ctx parent, own;
    if (s == NULL ||
        (s->parent_trace_context == NULL && s->orchestration_trace_context == NULL && t == NULL)) {
        return; /* the common case with tracing off */
    }
    if (tc_parse(s->orchestration_trace_context, &own)) {
        return; /* chosen before: a deferred start, or a continue-as-new */
    }
    s->orchestration_trace_context = NULL; /* malformed: ignored */
    bool have_parent = tc_parse(s->parent_trace_context, &parent);
    if (!have_parent) {
        s->parent_trace_context = t != NULL ? from_headers(e, it) : NULL;
        have_parent = tc_parse(s->parent_trace_context, &parent);
    }
    if (!have_parent && t == NULL) {
        return;
    }
    dt__trace_new_child(have_parent ? &parent : NULL, &own);
    char tp[DT__TRACEPARENT_BUF];
    dt__trace_format(&own, tp);
    s->orchestration_trace_context = tc_new(e->a, tp, tc_state(e->a, s->parent_trace_context));
}

static void span_name(char *buf, size_t len, const char *kind, const char *name)
{
    snprintf(buf, len, "%s:%s", kind, name != NULL ? name : "");
}

static void common_attrs(dt__span *sp, const dt__episode *e, const char *type)
{
    dt__span_attr_str(sp, "durabletask.type", type);
    dt__span_attr_str(sp, "durabletask.task.name", e->start->name);
    dt__span_attr_str(sp, "durabletask.task.instance_id", e->instance_id);
    dt__span_attr_str(sp, "durabletask.task.execution_id", e->execution_id);
}

void dt__trace_episode_begin(dt__episode *e, dt__trace_episode *te)
{
    te->span = NULL;
    dt__tracer *t = e->pt->w->tracer;
    if (t == NULL || e->start == NULL ||
        !tc_parse(e->start->orchestration_trace_context, &te->orch)) {
        return;
    }
    dt__trace_ctx ep;
    dt__trace_new_child(&te->orch, &ep);
    char name[DT_NAME_MAX + 16];
    span_name(name, sizeof(name), "episode", e->start->name);
    te->span = dt__span_start(t, name, DT__SPAN_INTERNAL, &ep, te->orch.span_id, 0);
    common_attrs(te->span, e, "episode");
    dt__span_attr_int(te->span, "durabletask.partition", (int64_t)e->pt->p);
    dt__span_attr_int(te->span, "durabletask.episode.new_events", (int64_t)e->n_news);
    dt__span_trace_state(te->span, tc_state(e->a, e->start->orchestration_trace_context));
    if (te->span != NULL) {
        dt__trace_set_current(&ep);
    }
}

static void timer_span(dt__episode *e, dt__trace_episode *te, const Dtpb__HistoryEvent *ev)
{
    dt__trace_ctx c;
    dt__trace_new_child(&te->orch, &c);
    int64_t created = ev->timestamp != NULL ? dt__ts_to_ms(ev->timestamp) : e->b->now_ms;
    dt__span *sp = dt__span_start(e->pt->w->tracer, "timer", DT__SPAN_INTERNAL, &c,
                                  te->orch.span_id, created * NS_PER_MS);
    common_attrs(sp, e, "timer");
    const Dtpb__TimerFiredEvent *f = ev->timer_fired;
    char at[DT__ISO8601_BUF];
    if (f->fire_at != NULL) {
        dt__span_attr_str(sp, "durabletask.fire_at",
                          dt__iso8601_ms(dt__ts_to_ms(f->fire_at), at, sizeof(at)));
    }
    dt__span_attr_int(sp, "durabletask.task.task_id", f->timer_id);
    dt__span_end(sp, 0);
}

/* Span events (and timer spans) for what the episode applied. */
static void applied_events(dt__episode *e, dt__trace_episode *te)
{
    for (size_t i = 0; i < e->n_news; i++) {
        const Dtpb__HistoryEvent *ev = e->news[i];
        int64_t at = ev->timestamp != NULL ? dt__ts_to_ms(ev->timestamp) * NS_PER_MS : 0;
        switch (ev->event_type_case) {
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED:
            dt__span_event(te->span, "event_raised", at, "durabletask.event.name",
                           ev->event_raised->name);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED:
            dt__span_event(te->span, "suspended", at, NULL, NULL);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED:
            dt__span_event(te->span, "resumed", at, NULL, NULL);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED:
            dt__span_event(te->span, "terminated", at, NULL, NULL);
            break;
        case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
            timer_span(e, te, ev);
            break;
        default:
            break;
        }
    }
}

static const char *status_text(Dtpb__OrchestrationStatus s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&dtpb__orchestration_status__descriptor, (int)s);
    return v != NULL ? v->name : "UNKNOWN";
}

/* The execution ended in this episode: its orchestration span. */
static void orchestration_span(dt__episode *e, dt__trace_episode *te, const dt__episode_result *r)
{
    dt__trace_ctx parent;
    bool has_parent = tc_parse(e->start->parent_trace_context, &parent);
    int64_t created = e->have_row && !e->fresh
                          ? e->row.created_ms
                          : (e->requested_ms > 0 ? e->requested_ms : e->b->now_ms);
    char name[DT_NAME_MAX + 16];
    span_name(name, sizeof(name), "orchestration", e->start->name);
    dt__span *sp = dt__span_start(e->pt->w->tracer, name, DT__SPAN_SERVER, &te->orch,
                                  has_parent ? parent.span_id : NULL, created * NS_PER_MS);
    common_attrs(sp, e, "orchestration");
    const char *version = dt__payload_str(e->a, e->start->version);
    dt__span_attr_str(sp, "durabletask.task.version", version);
    dt__span_attr_str(sp, "durabletask.runtime_status", status_text(r->status));
    dt__span_trace_state(sp, tc_state(e->a, e->start->orchestration_trace_context));
    if (r->status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED) {
        dt__span_error(sp, r->failure != NULL ? r->failure->error_message : "failed");
    }
    dt__span_end(sp, 0);
}

void dt__trace_episode_end(dt__episode *e, dt__trace_episode *te, const dt__episode_result *r)
{
    if (te->span == NULL) {
        return;
    }
    dt__trace_set_current(NULL);
    applied_events(e, te);
    if (r == NULL) {
        dt__span_error(te->span, "the episode did not run");
    } else if (r->status != DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING) {
        dt__span_attr_str(te->span, "durabletask.runtime_status", status_text(r->status));
        orchestration_span(e, te, r);
    }
    dt__span_end(te->span, 0);
    te->span = NULL;
}

/* ---- headers of the messages an episode sends ---- */

static Dtpb__MessagePublishedEvent__HeadersEntry *entry(dt__arena *a, const char *k, const char *v)
{
    Dtpb__MessagePublishedEvent__HeadersEntry *h = dt__arena_alloc(a, sizeof(*h));
    if (h != NULL) {
        dtpb__message_published_event__headers_entry__init(h);
        h->key = (char *)k;
        h->value = (char *)v;
    }
    return h;
}

/* The headers to add (traceparent, then tracestate), into hs[0..2); how many; 0 when the
 * execution is not traced or out of memory. */
static size_t trace_entries(dt__episode *e, Dtpb__MessagePublishedEvent__HeadersEntry **hs)
{
    const Dtpb__TraceContext *tc = e->start != NULL ? e->start->orchestration_trace_context : NULL;
    dt__trace_ctx c;
    if (!tc_parse(tc, &c) || (hs[0] = entry(e->a, DT__HDR_TRACEPARENT, tc->trace_parent)) == NULL) {
        return 0;
    }
    const char *ts = tc_state(e->a, tc);
    if (ts == NULL) {
        return 1;
    }
    hs[1] = entry(e->a, DT__HDR_TRACESTATE, ts);
    return hs[1] != NULL ? 2 : 1;
}

const dt__blob *dt__trace_headers(dt__episode *e)
{
    if (e->start == NULL || e->start->orchestration_trace_context == NULL) {
        return NULL;
    }
    Dtpb__MessagePublishedEvent__HeadersEntry **hs = dt__arena_alloc(e->a, 2 * sizeof(*hs));
    Dtpb__MessagePublishedEvent h = DTPB__MESSAGE_PUBLISHED_EVENT__INIT;
    dt__blob *out = dt__arena_alloc(e->a, sizeof(*out));
    if (hs == NULL || out == NULL || (h.n_headers = trace_entries(e, hs)) == 0) {
        return NULL;
    }
    h.headers = hs;
    return dt__outbox_headers(e->a, &h, false, out) == DT_OK ? out : NULL;
}

const Dtpb__MessagePublishedEvent *dt__trace_publish_headers(dt__episode *e,
                                                             const Dtpb__MessagePublishedEvent *p)
{
    if (e->start == NULL || e->start->orchestration_trace_context == NULL) {
        return p;
    }
    for (size_t i = 0; i < p->n_headers; i++) {
        if (strcasecmp(p->headers[i]->key, DT__HDR_TRACEPARENT) == 0) {
            return p; /* the publisher's own context wins */
        }
    }
    Dtpb__MessagePublishedEvent *c = dt__arena_alloc(e->a, sizeof(*c));
    Dtpb__MessagePublishedEvent__HeadersEntry **hs =
        dt__arena_alloc(e->a, (p->n_headers + 2) * sizeof(*hs));
    if (c == NULL || hs == NULL) {
        return NULL;
    }
    *c = *p;
    if (p->n_headers > 0) {
        memcpy(hs, p->headers, p->n_headers * sizeof(*hs));
    }
    c->n_headers = p->n_headers + trace_entries(e, hs + p->n_headers);
    c->headers = hs;
    return c;
}

void dt__trace_child_start(dt__episode *e, Dtpb__ExecutionStartedEvent *child)
{
    dt__trace_ctx c;
    if (e->start != NULL && tc_parse(e->start->orchestration_trace_context, &c)) {
        child->parent_trace_context = e->start->orchestration_trace_context;
    }
}

void dt__trace_continue_as_new(dt__episode *e, Dtpb__ExecutionStartedEvent *next)
{
    dt__trace_ctx cur, own;
    if (!tc_parse(next->orchestration_trace_context, &cur)) {
        return;
    }
    if (next->parent_trace_context == NULL) {
        next->parent_trace_context = next->orchestration_trace_context;
    }
    dt__trace_new_child(&cur, &own);
    char tp[DT__TRACEPARENT_BUF];
    dt__trace_format(&own, tp);
    next->orchestration_trace_context =
        tc_new(e->a, tp, tc_state(e->a, next->orchestration_trace_context));
}
