/*
 * The ingress router's pure part: one request that any NATS client published to dt.<hub>.in.>
 * (its subject, headers and body) becomes an OrchestrationMessage for the instance's partition
 * subject, or a reason why it cannot. No I/O: ingress.c fetches, publishes and acks; a fuzz
 * target (tests/fuzz/fuzz_ingress.c) feeds it any message a publisher can send.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress_int.h"
#include "engine_int.h"
#include "worker_int.h"
#include "trace_int.h"

static const char *header(dt_broker_msg *m, const char *name)
{
    const char *v = NULL;
    return dt_broker_msg_header(m, name, &v) == DT_OK && v[0] != '\0' ? v : NULL;
}

/* The request's identity: its Nats-Msg-Id, else its stream sequence. */
static void request_key(dt_broker_msg *m, char *buf, size_t len)
{
    const char *id = header(m, DT_HDR_MSG_ID);
    dt_broker_msg_meta meta = {0};
    if (id != NULL) {
        snprintf(buf, len, "id:%s", id);
    } else {
        dt_broker_msg_meta_get(m, &meta);
        snprintf(buf, len, "seq:%llu", (unsigned long long)meta.stream_seq);
    }
}

static Dtpb__Payload *body_payload(dt__arena *a, dt_broker_msg *m)
{
    size_t n = dt_broker_msg_len(m);
    return n == 0 ? NULL : dt__emit_payload(a, dt_broker_msg_data(m), n);
}

/* The Dt-Reuse-Policy words; anything else is refused rather than read as another policy (a
 * caller who wrote "replace" must not get "error", nor a running instance terminated). */
static bool reuse_policy(const char *v, Dtpb__InstanceIdReusePolicy *out)
{
    static const struct {
        const char *word;
        Dtpb__InstanceIdReusePolicy policy;
    } words[] = {
        {"error", DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR},
        {"replace-if-finished", DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_REPLACE_IF_FINISHED},
        {"terminate", DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE},
        {"ignore", DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_IGNORE},
    };
    *out = DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR;
    for (size_t i = 0; v != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v, words[i].word) == 0) {
            *out = words[i].policy;
            return true;
        }
    }
    return v == NULL;
}

/* The publisher's W3C traceparent (and tracestate) as the start's caller context, or NULL when
 * absent or malformed (the start goes on untraced). */
static Dtpb__TraceContext *trace_context(dt__arena *a, dt_broker_msg *m)
{
    const char *tp = header(m, DT__HDR_TRACEPARENT), *ts = header(m, DT__HDR_TRACESTATE);
    dt__trace_ctx c;
    if (!dt__trace_parse(tp, &c)) {
        return NULL;
    }
    Dtpb__TraceContext *tc = dt__arena_alloc(a, sizeof(*tc));
    if (tc == NULL) {
        return NULL;
    }
    dtpb__trace_context__init(tc);
    tc->trace_parent = dt__arena_strdup(a, tp);
    if (dt__tracestate_ok(ts)) {
        tc->trace_state = dt__emit_payload(a, (const uint8_t *)ts, strlen(ts));
    }
    return tc->trace_parent != NULL ? tc : NULL;
}

/* Latest Dt-Start-At accepted: 9999-12-31T23:59:59.999Z, the end of protobuf's Timestamp range. */
#define START_AT_MAX_MS 253402300799999LL

static const char *build_start(const dt__ingress_routing *g, dt__arena *a, dt_broker_msg *m,
                               const char *name, Dtpb__OrchestrationMessage *om, dt__routed *r,
                               const char *key)
{
    char gen[37], exec[37];
    const char *id = header(m, DT_HDR_INSTANCE_ID);
    if (id == NULL) {
        dt__derived_uuid(g->hub, key, gen);
        id = gen;
    }
    if (!dt__instance_id_valid(id) || id[0] == '@') {
        return "invalid Dt-Instance-Id (1..256 printable characters, no spaces, not starting "
               "with '@', which entity IDs do)";
    }
    dt__derived_uuid(id, key, exec);
    dt__uuid_compact(exec); /* the form of execution IDs */
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__ExecutionStartedEvent *s = dt__arena_alloc(a, sizeof(*s));
    Dtpb__OrchestrationInstance *oi = dt__arena_alloc(a, sizeof(*oi));
    if (ev == NULL || s == NULL || oi == NULL) {
        return "out of memory";
    }
    dtpb__execution_started_event__init(s);
    dtpb__orchestration_instance__init(oi);
    oi->instance_id = dt__arena_strdup(a, id);
    oi->execution_id = dt__emit_payload(a, (const uint8_t *)exec, strlen(exec));
    s->name = dt__arena_strdup(a, name);
    s->orchestration_instance = oi;
    s->input = body_payload(a, m);
    const char *version = header(m, DT_HDR_VERSION);
    if (version != NULL) {
        s->version = dt__emit_payload(a, (const uint8_t *)version, strlen(version));
    }
    const char *at = header(m, DT_HDR_START_AT);
    if (at != NULL) {
        char *end = NULL;
        errno = 0;
        long long ms = strtoll(at, &end, 10);
        if (end == at || *end != '\0' || errno != 0 || ms < 0 || ms > START_AT_MAX_MS) {
            return "invalid Dt-Start-At (milliseconds since the Unix epoch, 0 to "
                   "253402300799999)";
        }
        s->scheduled_start_timestamp = dt__ts_from_ms(a, ms);
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = s;
    dt__msg_id(r->dedupe, sizeof(r->dedupe), id, exec, "start", 0);
    dt__orch_msg_init(om, oi->instance_id, dt__arena_strdup(a, exec), ev, r->dedupe);
    if (!reuse_policy(header(m, DT_HDR_REUSE), &om->reuse_policy)) {
        return "invalid Dt-Reuse-Policy (error, replace-if-finished, terminate or ignore)";
    }
    const char *rs = header(m, DT_HDR_RESULT_SUBJECT);
    om->result_subject = rs != NULL ? dt__arena_strdup(a, rs) : "";
    s->parent_trace_context = trace_context(a, m); /* a malformed traceparent is ignored */
    return NULL;
}

/* raise / terminate / suspend / resume / rewind: need the instance ID header. */
static const char *build_control(dt__arena *a, dt_broker_msg *m, const char *kind, const char *name,
                                 Dtpb__OrchestrationMessage *om, dt__routed *r, const char *key)
{
    const char *id = header(m, DT_HDR_INSTANCE_ID);
    if (id == NULL || !dt__instance_id_valid(id)) {
        return "missing or invalid Dt-Instance-Id header";
    }
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    if (ev == NULL) {
        return "out of memory";
    }
    Dtpb__Payload *body = body_payload(a, m);
    if (strcmp(kind, "raise") == 0) {
        Dtpb__EventRaisedEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dtpb__event_raised_event__init(e);
        e->name = dt__arena_strdup(a, name);
        e->input = body;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
        ev->event_raised = e;
    } else if (strcmp(kind, "terminate") == 0) {
        Dtpb__ExecutionTerminatedEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dtpb__execution_terminated_event__init(e);
        e->input = body;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
        ev->execution_terminated = e;
    } else if (strcmp(kind, "rewind") == 0) {
        Dtpb__ExecutionRewoundEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dtpb__execution_rewound_event__init(e);
        e->reason = body;
        ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND;
        ev->execution_rewound = e;
    } else {
        bool suspend = strcmp(kind, "suspend") == 0;
        Dtpb__ExecutionSuspendedEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dtpb__execution_suspended_event__init(e); /* same layout as ExecutionResumedEvent */
        e->input = body;
        ev->event_type_case = suspend ? DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED
                                      : DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED;
        if (suspend) {
            ev->execution_suspended = e;
        } else {
            Dtpb__ExecutionResumedEvent *res = dt__arena_alloc(a, sizeof(*res));
            if (res == NULL) {
                return "out of memory";
            }
            dtpb__execution_resumed_event__init(res);
            res->input = body;
            ev->execution_resumed = res;
        }
    }
    int w = snprintf(r->dedupe, sizeof(r->dedupe), "%s/-/in/%s", id, key);
    if (w < 0 || (size_t)w >= sizeof(r->dedupe)) {
        return "Nats-Msg-Id too long";
    }
    dt__orch_msg_init(om, dt__arena_strdup(a, id), "", ev, r->dedupe);
    return NULL;
}

const char *dt__ingress_route(const dt__ingress_routing *g, dt__arena *a, dt_broker_msg *m,
                              dt__routed *r)
{
    const char *subj = dt_broker_msg_subject(m);
    size_t plen = strlen(g->prefix);
    if (strncmp(subj, g->prefix, plen) != 0) {
        return "not an ingress subject";
    }
    char kind[32];
    const char *rest = subj + plen, *dot = strchr(rest, '.');
    size_t klen = dot != NULL ? (size_t)(dot - rest) : strlen(rest);
    if (klen == 0 || klen >= sizeof(kind)) {
        return "unknown ingress request";
    }
    memcpy(kind, rest, klen);
    kind[klen] = '\0';
    const char *name = dot != NULL ? dot + 1 : NULL;
    char key[DT__INGRESS_ID_BUF];
    request_key(m, key, sizeof(key));
    Dtpb__OrchestrationMessage om;
    const char *why;
    bool named =
        strcmp(kind, "start") == 0 || strcmp(kind, "raise") == 0 || strcmp(kind, "signal") == 0;
    if (named && (name == NULL || !dt_broker_token_valid(name) || strlen(name) > DT_NAME_MAX)) {
        return "the subject must end in one name token (dt.<hub>.in.start.<name>, "
               ".raise.<event> or .signal.<entity>)";
    }
    if (!named && name != NULL) {
        return "unknown ingress request";
    }
    if (strcmp(kind, "start") == 0) {
        why = build_start(g, a, m, name, &om, r, key);
    } else if (strcmp(kind, "signal") == 0) {
        why = dt__ingress_build_signal(a, m, name, &om, r, key);
    } else if (named || strcmp(kind, "terminate") == 0 || strcmp(kind, "suspend") == 0 ||
               strcmp(kind, "resume") == 0 || strcmp(kind, "rewind") == 0) {
        why = build_control(a, m, kind, name, &om, r, key);
    } else {
        return "unknown ingress request (start, raise, signal, terminate, suspend, resume, rewind)";
    }
    if (why != NULL) {
        return why;
    }
    char tail[16];
    snprintf(tail, sizeof(tail), "%u", dt__partition_of(om.instance_id, g->partitions));
    if (dt_broker_subject(g->hub, DT_BROKER_SUBJ_ORCH, tail, r->subject, sizeof(r->subject)) !=
            DT_OK ||
        (r->data = dt__pack(a, &om.base, &r->len)) == NULL) {
        return "out of memory";
    }
    return NULL;
}
