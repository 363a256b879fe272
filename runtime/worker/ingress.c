/*
 * The ingress router: requests that any NATS client publishes to dt.<hub>.in.> (publish-to-start,
 * raise, terminate, suspend, resume) without knowing the hub's partitioning are turned into
 * OrchestrationMessages on the right partition subject. Every worker runs one router on the
 * shared durable consumer "ingress"; a request is acked only after its routed message has its
 * PubAck. IDs the request does not give are derived from its Nats-Msg-Id (or, without one, its
 * stream sequence), so a redelivered request routes to the same message, which JetStream drops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition_int.h"

#define INGRESS_BATCH   128
#define INGRESS_WAIT_MS 250
/* A request whose routed message could not be stored is tried again after 500 ms, doubling up
 * to 30 s, and dead-lettered after this many deliveries (about 15 minutes in all): a broker
 * that refuses for that long is an outage an operator must see, not something to spin on. */
#define RETRY_FIRST_MS      500
#define RETRY_MAX_MS        30000
#define RETRY_MAX_DELIVERED 40
#define ID_BUF              (DT_INSTANCE_ID_MAX * 2 + 64)

struct dt__ingress {
    dt_worker *w;
    pthread_t thread;
    atomic_bool stop;
    dt_broker_consumer *consumer;
    dt_broker_publisher *pub;
    char prefix[DT_BROKER_NAME_BUF]; /* "dt.<hub>.in." */
};

/* One routed request. */
typedef struct routed {
    char subject[DT_BROKER_NAME_BUF];
    char dedupe[DT_INSTANCE_ID_MAX + ID_BUF + 16]; /* "<id>/-/in/<request key>" */
    uint8_t *data;
    size_t len;
} routed;

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

static Dt__Payload *body_payload(dt__arena *a, dt_broker_msg *m)
{
    size_t n = dt_broker_msg_len(m);
    return n == 0 ? NULL : dt__emit_payload(a, dt_broker_msg_data(m), n);
}

/* The Dt-Reuse-Policy words; anything else is refused rather than read as another policy (a
 * caller who wrote "replace" must not get "error", nor a running instance terminated). */
static bool reuse_policy(const char *v, Dt__InstanceIdReusePolicy *out)
{
    static const struct {
        const char *word;
        Dt__InstanceIdReusePolicy policy;
    } words[] = {
        {"error", DT__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR},
        {"replace-if-finished", DT__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_REPLACE_IF_FINISHED},
        {"terminate", DT__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE},
        {"ignore", DT__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_IGNORE},
    };
    *out = DT__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR;
    for (size_t i = 0; v != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v, words[i].word) == 0) {
            *out = words[i].policy;
            return true;
        }
    }
    return v == NULL;
}

/* Latest Dt-Start-At accepted: 9999-12-31T23:59:59.999Z, the end of protobuf's Timestamp range. */
#define START_AT_MAX_MS 253402300799999LL

static const char *build_start(dt__ingress *g, dt__arena *a, dt_broker_msg *m, const char *name,
                               Dt__OrchestrationMessage *om, routed *r, const char *key)
{
    char gen[37], exec[37];
    const char *id = header(m, DT_HDR_INSTANCE_ID);
    if (id == NULL) {
        dt__derived_uuid(g->w->hub, key, gen);
        id = gen;
    }
    if (!dt__instance_id_valid(id)) {
        return "invalid Dt-Instance-Id (1..256 printable characters, no spaces)";
    }
    dt__derived_uuid(id, key, exec);
    Dt__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dt__ExecutionStartedEvent *s = dt__arena_alloc(a, sizeof(*s));
    Dt__OrchestrationInstance *oi = dt__arena_alloc(a, sizeof(*oi));
    if (ev == NULL || s == NULL || oi == NULL) {
        return "out of memory";
    }
    dt__execution_started_event__init(s);
    dt__orchestration_instance__init(oi);
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
    ev->event_type_case = DT__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = s;
    dt__msg_id(r->dedupe, sizeof(r->dedupe), id, exec, "start", 0);
    dt__orch_msg_init(om, oi->instance_id, dt__arena_strdup(a, exec), ev, r->dedupe);
    if (!reuse_policy(header(m, DT_HDR_REUSE), &om->reuse_policy)) {
        return "invalid Dt-Reuse-Policy (error, replace-if-finished, terminate or ignore)";
    }
    const char *rs = header(m, DT_HDR_RESULT_SUBJECT);
    om->result_subject = rs != NULL ? dt__arena_strdup(a, rs) : "";
    return NULL;
}

/* raise / terminate / suspend / resume: need the instance ID header. */
static const char *build_control(dt__arena *a, dt_broker_msg *m, const char *kind, const char *name,
                                 Dt__OrchestrationMessage *om, routed *r, const char *key)
{
    const char *id = header(m, DT_HDR_INSTANCE_ID);
    if (id == NULL || !dt__instance_id_valid(id)) {
        return "missing or invalid Dt-Instance-Id header";
    }
    Dt__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    if (ev == NULL) {
        return "out of memory";
    }
    Dt__Payload *body = body_payload(a, m);
    if (strcmp(kind, "raise") == 0) {
        Dt__EventRaisedEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dt__event_raised_event__init(e);
        e->name = dt__arena_strdup(a, name);
        e->input = body;
        ev->event_type_case = DT__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
        ev->event_raised = e;
    } else if (strcmp(kind, "terminate") == 0) {
        Dt__ExecutionTerminatedEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dt__execution_terminated_event__init(e);
        e->input = body;
        ev->event_type_case = DT__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED;
        ev->execution_terminated = e;
    } else {
        bool suspend = strcmp(kind, "suspend") == 0;
        Dt__ExecutionSuspendedEvent *e = dt__arena_alloc(a, sizeof(*e));
        if (e == NULL) {
            return "out of memory";
        }
        dt__execution_suspended_event__init(e); /* same layout as ExecutionResumedEvent */
        e->input = body;
        ev->event_type_case = suspend ? DT__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED
                                      : DT__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED;
        if (suspend) {
            ev->execution_suspended = e;
        } else {
            Dt__ExecutionResumedEvent *res = dt__arena_alloc(a, sizeof(*res));
            if (res == NULL) {
                return "out of memory";
            }
            dt__execution_resumed_event__init(res);
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

/* Routes one request into r; returns NULL or the reason it cannot be routed. */
static const char *route(dt__ingress *g, dt__arena *a, dt_broker_msg *m, routed *r)
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
    char key[ID_BUF];
    request_key(m, key, sizeof(key));
    Dt__OrchestrationMessage om;
    const char *why;
    bool named = strcmp(kind, "start") == 0 || strcmp(kind, "raise") == 0;
    if (named && (name == NULL || !dt_broker_token_valid(name) || strlen(name) > DT_NAME_MAX)) {
        return "the subject must end in one name token (dt.<hub>.in.start.<name> or "
               ".raise.<event>)";
    }
    if (!named && name != NULL) {
        return "unknown ingress request";
    }
    if (strcmp(kind, "start") == 0) {
        why = build_start(g, a, m, name, &om, r, key);
    } else if (named || strcmp(kind, "terminate") == 0 || strcmp(kind, "suspend") == 0 ||
               strcmp(kind, "resume") == 0) {
        why = build_control(a, m, kind, name, &om, r, key);
    } else {
        return "unknown ingress request (start, raise, terminate, suspend, resume)";
    }
    if (why != NULL) {
        return why;
    }
    char tail[16];
    snprintf(tail, sizeof(tail), "%u", dt__partition_of(om.instance_id, g->w->hub_cfg.partitions));
    if (dt_broker_subject(g->w->hub, DT_BROKER_SUBJ_ORCH, tail, r->subject, sizeof(r->subject)) !=
            DT_OK ||
        (r->data = dt__pack(a, &om.base, &r->len)) == NULL) {
        return "out of memory";
    }
    return NULL;
}

static void dead_letter(dt__ingress *g, dt_broker_msg *m, const char *why)
{
    dt__dead_letter_info d = {"ingress",
                              why,
                              NULL,
                              dt_broker_msg_data(m),
                              dt_broker_msg_len(m),
                              dt_broker_msg_subject(m)};
    dt__worker_dead_letter(g->w, "ingress", &d);
}

/* What became of one request of a batch. */
typedef enum outcome { PENDING, SENT, DROPPED } outcome;

/* The routed message can never be stored (larger than the stream or the server takes): the
 * request is dead-lettered with the reason at once, not retried. */
static void refuse(dt__ingress *g, dt_broker_msg *m, outcome *o, const char *err)
{
    char why[300];
    snprintf(why, sizeof(why), "the routed message is too large: %s",
             err != NULL ? err : "refused for its size");
    dead_letter(g, m, why);
    dt_broker_msg_term(m);
    *o = DROPPED;
}

/* A transient failure: tried again later with a growing delay, dead-lettered after a bound. */
static void retry_later(dt__ingress *g, dt_broker_msg *m, const char *err)
{
    dt_broker_msg_meta meta = {0};
    uint64_t n = dt_broker_msg_meta_get(m, &meta) == DT_OK ? meta.deliveries : 1;
    if (n >= RETRY_MAX_DELIVERED) {
        char why[300];
        snprintf(why, sizeof(why), "could not be routed in %llu attempts; last error: %s",
                 (unsigned long long)n, err != NULL ? err : "unknown");
        dead_letter(g, m, why);
        dt_broker_msg_term(m);
        return;
    }
    int64_t delay = RETRY_FIRST_MS;
    for (uint64_t i = 1; i < n && delay < RETRY_MAX_MS; i++) {
        delay *= 2;
    }
    dt_broker_msg_nak_delay(m, delay > RETRY_MAX_MS ? RETRY_MAX_MS : delay);
}

static void handle_batch(dt__ingress *g, dt_broker_msg **msgs, size_t n)
{
    dt__arena *a = dt__arena_create(16 * 1024);
    routed *rs = a != NULL ? dt__arena_calloc(a, n, sizeof(*rs)) : NULL;
    outcome *o = a != NULL ? dt__arena_calloc(a, n, sizeof(*o)) : NULL;
    const char **errs = a != NULL ? dt__arena_calloc(a, n, sizeof(*errs)) : NULL;
    bool ready = rs != NULL && o != NULL && errs != NULL;
    for (size_t i = 0; ready && i < n; i++) {
        const char *why = route(g, a, msgs[i], &rs[i]);
        if (why != NULL) {
            dead_letter(g, msgs[i], why);
            dt_broker_msg_term(msgs[i]);
            o[i] = DROPPED;
            continue;
        }
        dt_broker_outmsg out = {
            .subject = rs[i].subject, .msg_id = rs[i].dedupe, .data = rs[i].data, .len = rs[i].len};
        dt_status st = dt_broker_publisher_add(g->pub, &out, i);
        if (st == DT_ETOOLARGE) {
            refuse(g, msgs[i], &o[i], dt_broker_publisher_errmsg(g->pub));
        } else if (st != DT_OK) {
            errs[i] = dt__arena_strdup(a, dt_broker_publisher_errmsg(g->pub));
        }
    }
    if (ready) {
        dt_broker_publisher_wait(g->pub, 10000);
        size_t nr = 0;
        const dt_broker_pub_result *res = dt_broker_publisher_results(g->pub, &nr);
        for (size_t k = 0; k < nr; k++) {
            size_t i = (size_t)res[k].tag;
            if (res[k].status == DT_OK) {
                o[i] = SENT;
            } else if (res[k].status == DT_ETOOLARGE) {
                refuse(g, msgs[i], &o[i], res[k].error);
            } else {
                errs[i] = res[k].error != NULL ? dt__arena_strdup(a, res[k].error)
                                               : dt_status_str(res[k].status);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ready && o[i] == SENT) {
            dt_broker_msg_ack(msgs[i]);
        } else if (!ready || o[i] == PENDING) {
            retry_later(g, msgs[i], ready ? errs[i] : "out of memory");
        }
        dt_broker_msg_destroy(msgs[i]);
    }
    dt__arena_destroy(a);
}

static void *ingress_main(void *arg)
{
    dt__ingress *g = arg;
    dt_broker_msg *msgs[INGRESS_BATCH];
    while (!atomic_load(&g->stop)) {
        size_t n = 0;
        if (dt_broker_consumer_fetch(g->consumer, INGRESS_BATCH, INGRESS_WAIT_MS, msgs, &n) !=
            DT_OK) {
            struct timespec ts = {0, INGRESS_WAIT_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (n > 0) {
            handle_batch(g, msgs, n);
            dt_broker_flush(g->w->broker, 1000);
        }
    }
    return NULL;
}

dt_status dt__ingress_start(dt_worker *w, dt__ingress **out)
{
    dt__ingress *g = dt_calloc(1, sizeof(*g));
    if (g == NULL) {
        return DT_ENOMEM;
    }
    g->w = w;
    atomic_init(&g->stop, false);
    char stream[DT_BROKER_NAME_BUF], filter[DT_BROKER_NAME_BUF];
    dt_status st = dt_broker_stream_name(w->hub, DT_BROKER_STREAM_IN, stream, sizeof(stream));
    if (st == DT_OK) {
        st = dt_broker_subject(w->hub, DT_BROKER_SUBJ_IN, ">", filter, sizeof(filter));
        snprintf(g->prefix, sizeof(g->prefix), "%.*s", (int)strlen(filter) - 1, filter);
    }
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "ingress";
    cc.filter_subject = filter;
    if (st == DT_OK) {
        st = dt_broker_consumer_open(w->broker, &cc, &g->consumer);
    }
    if (st == DT_OK) {
        st = dt_broker_publisher_create(w->broker, NULL, &g->pub);
    }
    if (st == DT_OK && pthread_create(&g->thread, NULL, ingress_main, g) != 0) {
        st = DT_ENOMEM;
    }
    if (st != DT_OK) {
        dt_broker_publisher_destroy(g->pub);
        dt_broker_consumer_close(g->consumer);
        dt_free(g);
        return st;
    }
    *out = g;
    return DT_OK;
}

void dt__ingress_stop(dt__ingress *g)
{
    if (g == NULL) {
        return;
    }
    atomic_store(&g->stop, true);
    pthread_join(g->thread, NULL);
    dt_broker_publisher_destroy(g->pub);
    dt_broker_consumer_close(g->consumer);
    dt_free(g);
}
