/*
 * The loop of one activity thread: fetch a batch of work items from the queue's durable
 * consumer, classify each (malformed -> dead letter; a name another live worker serves -> handed
 * off to it, uncounted (activity_members.c); a name nobody serves -> nak with a short delay, or a
 * non-retriable dt.UnknownActivity failure at the bound; delivered too often ->
 * dt.ActivityCrashed; else run),
 * run them one after the other, publish the results through the thread's async publisher and ack
 * each work item once its result's PubAck arrived.
 *
 * Results bound for the same partition travel together: when results are sent, those with the
 * same reply subject go as one OrchestrationBatch message (Dt-Batch header; as many members as
 * fit the hub's message limit), whose PubAck acks every member's work item and whose failure
 * retries every member. nats-server's cost is per message, not per byte, and it is the wall of a
 * small machine. A lone result travels as a plain OrchestrationMessage, exactly as before.
 *
 * Results are held only briefly: they are published and acked when the batch ends, when the
 * oldest held result waited DT__ACT_FLUSH_AFTER_MS, or right after an activity that itself took
 * that long. A result whose publish fails is retried once; then its work item is nak'd with a
 * delay (not acked), so it is redelivered and the activity runs again (at least once).
 *
 * The batch size follows an EWMA of the activities' durations (DT__ACT_BATCH_TARGET_US of work
 * per fetch, 1..DT__ACT_BATCH_MAX), starting at 1: slow activities are fetched one at a time so
 * they spread over all threads and workers; fast ones share round trips.
 *
 * Every operation on a held work item (settle, in-progress, metadata) happens under the slot's
 * mutex, so the ticker can send in-progress acks for the whole batch while an activity runs.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activity_int.h"
#include "common_int.h"
#include "metrics_int.h"
#include "protocol_int.h"

#define UNKNOWN_TYPE "dt.UnknownActivity"
#define CRASHED_TYPE "dt.ActivityCrashed"

typedef enum item_kind {
    ITEM_RUN = 0,    /* run the activity */
    ITEM_RESULT = 1, /* publish the failure already packed in res */
    ITEM_DEAD = 2,   /* malformed: dead letter, then term */
    ITEM_NAK = 3,    /* not for this worker now: nak with delay */
    ITEM_HANDOFF = 4 /* a name another live worker serves: re-published for it, uncounted */
} item_kind;

typedef enum item_pub {
    PUB_NONE = 0,   /* no result in the publisher */
    PUB_ADDED = 1,  /* sent, waiting for its PubAck */
    PUB_FAILED = 2, /* send or PubAck failed: retry, then nak */
    PUB_QUEUED = 3, /* ready, to be sent (grouped by subject) by the next collect() */
} item_pub;

typedef struct item {
    size_t ix; /* index in slot->held (and publisher tag) */
    item_kind kind;
    item_pub pub;
    uint64_t seq;
    uint64_t deliveries;
    Dtpb__ActivityRequest *req; /* batch arena; NULL when it did not decode */
    const dt__activity_def *def;
    const char *why; /* ITEM_DEAD / ITEM_NAK: the reason (static or arena) */
    const char *pub_error;
    dt__act_result res;
    struct item *gnext; /* next member of the message this item's result was sent in */
} item;

typedef struct batch {
    dt__act_slot *s;
    dt__activity_pool *p;
    dt__arena *a;
    item it[DT__ACT_BATCH_MAX];
    size_t n;
    size_t handed_off;     /* ITEM_HANDOFF items of the batch */
    size_t npending;       /* items with a result not yet stored (queued, added or failed) */
    size_t nadded;         /* messages added to the publisher since the last wait */
    int64_t pending_since; /* monotonic ms of the oldest pending result */
} batch;

typedef enum settle_how {
    SETTLE_ACK,
    SETTLE_NAK,
    SETTLE_NAK_DELAY,
    SETTLE_NAK_UNKNOWN, /* a name not served here: redelivered after DT__ACT_UNKNOWN_NAK_MS */
    SETTLE_TERM
} settle_how;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------------------------- */
/* Settling held work items                                                                    */

static void settle(batch *b, item *it, settle_how how)
{
    dt__act_slot *s = b->s;
    dt_status st = DT_OK;
    pthread_mutex_lock(&s->mu);
    dt_broker_msg *m = s->held[it->ix];
    s->held[it->ix] = NULL;
    if (m != NULL) {
        switch (how) {
        case SETTLE_ACK:
            st = dt_broker_msg_ack(m);
            break;
        case SETTLE_NAK:
            st = dt_broker_msg_nak(m);
            break;
        case SETTLE_NAK_DELAY:
            st = dt_broker_msg_nak_delay(m, DT__ACT_NAK_DELAY_MS);
            break;
        case SETTLE_NAK_UNKNOWN:
            st = dt_broker_msg_nak_delay(m, DT__ACT_UNKNOWN_NAK_MS);
            break;
        case SETTLE_TERM:
            st = dt_broker_msg_term(m);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    dt_broker_msg_destroy(m);
    if (st != DT_OK) {
        dt__act_log(b->p, DT_LOG_WARN, it->req != NULL ? it->req->instance_id : NULL,
                    "work item %" PRIu64 " on task queue '%s': settling failed (%s); it will be "
                    "redelivered",
                    it->seq, s->queue->name, dt_status_name(st));
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Publishing results                                                                          */

/* The thread's publisher, created on first use (a thread of an idle queue never needs one). */
static dt_broker_publisher *publisher(batch *b)
{
    dt__act_slot *s = b->s;
    if (s->pub == NULL) {
        dt_broker_publisher_options po;
        dt_broker_publisher_options_init(&po);
        po.window = DT__ACT_PUB_WINDOW;
        (void)dt_broker_publisher_create(b->p->b, &po, &s->pub);
    }
    return s->pub;
}

/* Marks the result of `it` ready; collect() sends it. */
static void add_result(batch *b, item *it)
{
    if (b->npending == 0) {
        b->pending_since = dt__mono_ms();
    }
    if (it->pub == PUB_NONE) {
        b->npending++;
    }
    it->pub = PUB_QUEUED;
}

/* Adds one message carrying the results of `lead` and its gnext chain (n members) to the
 * publisher, tagged with lead's index; every member takes the outcome. */
static void send_group(batch *b, item *lead, size_t n)
{
    dt__act_result one = lead->res;
    const char *err = NULL;
    char count[24];
    dt_broker_header h = {DT_HDR_BATCH, count};
    if (n > 1) {
        const dt__act_result **members = dt__arena_calloc(b->a, n, sizeof(*members));
        size_t k = 0;
        for (item *it = lead; members != NULL && it != NULL; it = it->gnext) {
            members[k++] = &it->res;
        }
        if (members == NULL || dt__act_results_pack(b->a, members, n, &one) != DT_OK) {
            err = "out of memory packing a batch of results";
        }
        (void)snprintf(count, sizeof(count), "%zu", n);
    }
    dt_broker_header tp = {"traceparent", one.traceparent}; /* a result sent alone: its span */
    bool traced = n == 1 && one.traceparent != NULL;
    dt_broker_outmsg m = {
        .subject = one.subject,
        .msg_id = one.msg_id,
        .headers = n > 1 ? &h : (traced ? &tp : NULL),
        .nheaders = n > 1 || traced ? 1 : 0,
        .data = one.data,
        .len = one.len,
    };
    dt_broker_publisher *pub = err == NULL ? publisher(b) : NULL;
    if (pub != NULL && dt_broker_publisher_add(pub, &m, lead->ix) == DT_OK) {
        b->nadded++;
    } else if (err == NULL) {
        err = dt__arena_strdup(b->a, pub != NULL ? dt_broker_publisher_errmsg(pub)
                                                 : "cannot create a publisher");
    }
    for (item *it = lead; it != NULL; it = it->gnext) {
        it->pub = err == NULL ? PUB_ADDED : PUB_FAILED;
        it->pub_error = err;
    }
}

/* Sends the queued results, those with the same subject together (in item order, split where a
 * message would exceed the hub's limit). O(n^2) over at most DT__ACT_BATCH_MAX items. */
static void send_queued(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        item *lead = &b->it[i];
        if (lead->pub != PUB_QUEUED) {
            continue;
        }
        lead->pub = PUB_ADDED; /* taken: send_group sets the outcome */
        lead->gnext = NULL;
        item *tail = lead;
        size_t n = 1;
        size_t bytes = DT__ACT_BATCH_OVERHEAD + DT__ACT_BATCH_MEMBER_COST(lead->res.len);
        for (size_t j = i + 1; j < b->n; j++) {
            item *it = &b->it[j];
            if (!b->p->cfg.batch_results || it->pub != PUB_QUEUED ||
                strcmp(it->res.subject, lead->res.subject) != 0 ||
                bytes + DT__ACT_BATCH_MEMBER_COST(it->res.len) > b->p->max_msg) {
                continue;
            }
            bytes += DT__ACT_BATCH_MEMBER_COST(it->res.len);
            it->pub = PUB_ADDED;
            it->gnext = NULL;
            tail->gnext = it;
            tail = it;
            n++;
        }
        send_group(b, lead, n);
    }
}

/* Waits for the PubAcks of the added results and acks the work items whose result is stored. */
static void collect(batch *b)
{
    send_queued(b);
    if (b->nadded == 0) {
        return;
    }
    b->nadded = 0;
    if (b->n <= DT__ACT_FLUSH_BATCH_MAX) {
        /* A small batch means an idle queue: push the results out now instead of after nats.c's
         * 1 ms coalescing (NATS-NOTES fact 4). Measured: a lone activity's round trip p50 from
         * ~1.0 ms to ~0.45 ms, throughput unchanged (large batches do not flush). */
        (void)dt_broker_flush(b->p->b, DT__ACT_PUB_WAIT_MS);
    }
    (void)dt_broker_publisher_wait(b->s->pub, DT__ACT_PUB_WAIT_MS);
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(b->s->pub, &n);
    for (size_t i = 0; i < n; i++) {
        const char *err = r[i].status == DT_OK ? NULL : dt__arena_strdup(b->a, r[i].error);
        for (item *it = &b->it[r[i].tag]; it != NULL; it = it->gnext) {
            if (r[i].status == DT_OK) {
                it->pub = PUB_NONE;
                b->npending--;
                settle(b, it, SETTLE_ACK);
            } else {
                it->pub = PUB_FAILED;
                it->pub_error = err;
                dt__metrics_publish_error(b->p->cfg.metrics, DT__MKIND_ACT); /* metrics */
            }
        }
    }
}

static void add_failed(batch *b)
{
    for (size_t i = 0; b->npending > 0 && i < b->n; i++) {
        if (b->it[i].pub == PUB_FAILED) {
            add_result(b, &b->it[i]);
        }
    }
}

static bool any_failed(const batch *b)
{
    for (size_t i = 0; b->npending > 0 && i < b->n; i++) {
        if (b->it[i].pub == PUB_FAILED) {
            return true;
        }
    }
    return false;
}

static bool stopping(batch *b)
{
    pthread_mutex_lock(&b->s->mu);
    bool stop = dt__act_stopping(b->p);
    pthread_mutex_unlock(&b->s->mu);
    return stop;
}

/*
 * Results that could not be stored (the partition stream has no leader while the cluster elects
 * one, which takes nats-server 2.9 several seconds; the server is restarting): the activities
 * ran, so their results are published again with back-off while their work items are kept alive
 * with in-progress acks. A nak instead would run them again and count each redelivery against
 * activity_max_deliveries, failing a healthy activity as "crashed" after a few seconds of
 * election. Bounded by DT__ACT_RESULT_RETRY_MS (then the items are nak'd as before).
 */
static void retry_failed(batch *b)
{
    int64_t delay = 50, end = dt__mono_ms() + DT__ACT_RESULT_RETRY_MS;
    while (any_failed(b) && !stopping(b) && dt__mono_ms() < end) {
        pthread_mutex_lock(&b->s->mu);
        for (size_t i = 0; i < b->n; i++) {
            if (b->it[i].pub == PUB_FAILED && b->s->held[b->it[i].ix] != NULL) {
                (void)dt_broker_msg_in_progress(b->s->held[b->it[i].ix]);
            }
        }
        pthread_mutex_unlock(&b->s->mu);
        struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
        add_failed(b);
        collect(b);
    }
}

/* Publishes every pending result and acks its work item; a result that cannot be stored within
 * DT__ACT_RESULT_RETRY_MS leaves its work item nak'd for redelivery. */
static void flush(batch *b)
{
    collect(b);
    add_failed(b);
    collect(b);
    retry_failed(b);
    for (size_t i = 0; b->npending > 0 && i < b->n; i++) {
        item *it = &b->it[i];
        if (it->pub != PUB_FAILED) {
            continue;
        }
        dt__act_log(b->p, DT_LOG_WARN, it->req->instance_id,
                    "result of activity '%s' (task %d) not published: %s; the work item will be "
                    "redelivered",
                    it->req->name, (int)it->req->task_id,
                    it->pub_error != NULL ? it->pub_error : "unknown error");
        it->pub = PUB_NONE;
        b->npending--;
        settle(b, it, SETTLE_NAK_DELAY);
    }
}

static void maybe_flush(batch *b, int64_t last_run_ms)
{
    if (b->npending > 0 && (last_run_ms >= DT__ACT_FLUSH_AFTER_MS ||
                            dt__mono_ms() - b->pending_since >= DT__ACT_FLUSH_AFTER_MS)) {
        flush(b);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Classifying work items                                                                      */

/* Packs a failure result for `it` without running it. */
static void fail_without_run(batch *b, item *it, dt__act_outcome *o)
{
    dt_status st = dt__act_result_pack(b->a, it->req, o, b->p->max_msg, &it->res);
    if (st != DT_OK) {
        it->kind = ITEM_NAK;
        it->why = "out of memory packing the result";
        return;
    }
    it->kind = ITEM_RESULT;
    dt__metrics_activity_refused(b->p->cfg.metrics, it->req->name); /* metrics */
    dt__act_log(b->p, DT_LOG_ERROR, it->req->instance_id, "activity '%s' (task %d): %s: %s",
                it->req->name, (int)it->req->task_id, o->type, o->message);
}

static void classify(batch *b, item *it)
{
    dt__act_slot *s = b->s;
    dt_broker_msg *m = s->held[it->ix]; /* only this thread changes held[] entries */
    dt_broker_msg_meta meta;
    pthread_mutex_lock(&s->mu);
    dt_status st = dt_broker_msg_meta_get(m, &meta);
    pthread_mutex_unlock(&s->mu);
    it->seq = st == DT_OK ? meta.stream_seq : 0;
    it->deliveries = st == DT_OK ? meta.deliveries : 1;
    dt__metrics_redelivered(b->p->cfg.metrics, DT__MKIND_ACT, it->deliveries); /* metrics */
    it->req = dtpb__activity_request__unpack(dt__arena_pb_allocator(b->a), dt_broker_msg_len(m),
                                             dt_broker_msg_data(m));
    it->why = dt__act_request_problem(b->a, b->p->orch_prefix, it->req);
    if (it->why != NULL) {
        /* protobuf-c returns NULL for out of memory too: never dead-letter a good item for it. */
        bool oom = it->req == NULL && dt__arena_alloc(b->a, dt_broker_msg_len(m) + 4096) == NULL;
        it->kind = oom ? ITEM_NAK : ITEM_DEAD;
        it->why = oom ? "out of memory decoding it" : it->why;
        return;
    }
    const Dtpb__ActivityRequest *req = it->req;
    int64_t max = b->p->cfg.max_deliveries;
    dt__act_outcome o;
    it->def = dt__act_queue_find(s->queue, req->name);
    if (it->def == NULL && it->seq != 0 && dt__act_members_serve(b->p, s->queue, req->name)) {
        it->kind = ITEM_HANDOFF; /* whatever its deliveries: they were give-backs, not runs */
        b->handed_off++;
    } else if (it->def == NULL && (int64_t)it->deliveries < max) {
        it->kind = ITEM_NAK;
        it->why = NULL;
    } else if (it->def == NULL) {
        /* Non-retriable: a retry policy would only repeat the wait for a worker that is not
         * there (each attempt takes the whole bound), and the failure is a deployment error. */
        dt__act_failure(b->a, &o, UNKNOWN_TYPE, true,
                        "no worker serves activity '%s' on task queue '%s' (%" PRIu64
                        " deliveries)",
                        req->name, s->queue->name, it->deliveries);
        fail_without_run(b, it, &o);
    } else if ((int64_t)it->deliveries > max) {
        dt__act_failure(b->a, &o, CRASHED_TYPE, false,
                        "activity '%s' was delivered %" PRIu64
                        " times without completing: it crashed or hung its worker",
                        req->name, it->deliveries);
        fail_without_run(b, it, &o);
    } else {
        it->kind = ITEM_RUN;
    }
}

/* A work item for a name that another live worker serves goes back to the queue as a new
 * message (same subject, payload and trace headers; Nats-Msg-Id "act-handoff.<stream seq>", so
 * a repeat of this hand-off after a lost ack is dropped by JetStream) and the original is acked.
 * A nak would count the give-back as a delivery: an item that met workers of the other kind a
 * few times would reach its own worker near activity_max_deliveries and be failed as crashed. */
static void handoff(batch *b, item *it)
{
    /* Held until settled below: the ticker hands back only items queued behind a running
     * activity, and none runs now. */
    pthread_mutex_lock(&b->s->mu);
    dt_broker_msg *m = b->s->held[it->ix];
    pthread_mutex_unlock(&b->s->mu);
    if (m == NULL) {
        return;
    }
    dt_broker_header h[2];
    size_t nh = 0;
    const char *v = NULL;
    if (dt_broker_msg_header(m, "traceparent", &v) == DT_OK && v != NULL) {
        h[nh++] = (dt_broker_header){"traceparent", v};
    }
    if (dt_broker_msg_header(m, "tracestate", &v) == DT_OK && v != NULL) {
        h[nh++] = (dt_broker_header){"tracestate", v};
    }
    char id[64];
    snprintf(id, sizeof(id), "act-handoff.%" PRIu64, it->seq);
    dt_broker_outmsg o = {.subject = dt_broker_msg_subject(m),
                          .msg_id = id,
                          .headers = nh > 0 ? h : NULL,
                          .nheaders = nh,
                          .data = dt_broker_msg_data(m),
                          .len = dt_broker_msg_len(m)};
    dt_status st = dt_broker_publish(b->p->b, &o, NULL);
    if (st != DT_OK) {
        dt__act_log(b->p, DT_LOG_WARN, it->req->instance_id,
                    "activity '%s': hand-off to the worker that serves it failed (%s); "
                    "redelivering",
                    it->req->name, dt_status_name(st));
    } else {
        dt__act_log(b->p, DT_LOG_DEBUG, it->req->instance_id,
                    "activity '%s' is served by another worker of task queue '%s': handed off",
                    it->req->name, b->s->queue->name);
    }
    settle(b, it, st == DT_OK ? SETTLE_ACK : SETTLE_NAK_UNKNOWN);
}

/* ------------------------------------------------------------------------------------------- */
/* Running                                                                                     */

/* RUN phase entry: false when stopping (the item must not start). */
static bool enter_run(batch *b, const item *it)
{
    pthread_mutex_lock(&b->s->mu);
    bool ok = !dt__act_stopping(b->p);
    if (ok) {
        b->s->phase = DT__ACT_PHASE_RUN;
        b->s->run_ix = it->ix;
        b->s->run_since_ms = dt__mono_ms();
    }
    pthread_mutex_unlock(&b->s->mu);
    return ok;
}

/* RUN phase exit: false when stop() abandoned the slot meanwhile. */
static bool leave_run(dt__act_slot *s)
{
    pthread_mutex_lock(&s->mu);
    bool ok = !s->abandoned;
    if (ok) {
        s->phase = DT__ACT_PHASE_BROKER;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void note_duration(dt__act_slot *s, int64_t us)
{
    us = us > 0 ? us : 1;
    s->avg_us = s->avg_us == 0 ? us : (7 * s->avg_us + us) / 8;
}

/* Runs `it`; returns false when the slot was abandoned meanwhile (touch nothing but `b->a`). */
static bool run_item(batch *b, item *it, int64_t *out_ms)
{
    dt__act_slot *s = b->s;
    *out_ms = 0;
    int64_t hb_min = b->p->cfg.timeout_ms / 20;
    hb_min = hb_min < 1 ? 1 : (hb_min > 1000 ? 1000 : hb_min);
    dt_activity_ctx ctx;
    int delivery = it->deliveries > INT_MAX ? INT_MAX : (int)it->deliveries;
    if (dt__act_ctx_init(&ctx, s, it->ix, it->req, delivery, hb_min, b->a) != DT_OK) {
        settle(b, it, SETTLE_NAK_DELAY);
        return true;
    }
    dt_activity_fn fn = it->def->fn;
    void *user_data = it->def->user_data;
    if (!enter_run(b, it)) {
        dt__act_ctx_clear(&ctx);   /* its span, if traced */
        settle(b, it, SETTLE_NAK); /* stopping: let another worker take it now */
        return true;
    }
    dt__metrics_activity_started(b->p->cfg.metrics, it->req->name); /* metrics */
    int64_t t0 = mono_us();
    fn(&ctx, user_data);
    int64_t us = mono_us() - t0;
    if (!leave_run(s)) {
        dt__act_ctx_clear(&ctx);
        return false;
    }
    note_duration(s, us);
    *out_ms = us / 1000;
    if (ctx.abandon) { /* forwarded and not answered (runtime/remote): redelivered */
        dt__act_ctx_clear(&ctx);
        settle(b, it, SETTLE_NAK_DELAY);
        return true;
    }
    dt__act_outcome o;
    dt__act_ctx_outcome(&ctx, &o);
    dt__metrics_activity_done(b->p->cfg.metrics, it->req->name, us, o.failed); /* metrics */
    dt_status st = dt__act_result_pack(b->a, it->req, &o, b->p->max_msg, &it->res);
    dt__act_ctx_clear(&ctx);
    if (st != DT_OK) {
        dt__act_log(b->p, DT_LOG_ERROR, it->req->instance_id,
                    "activity '%s' (task %d): cannot pack its result (%s); redelivering",
                    it->req->name, (int)it->req->task_id, dt_status_name(st));
        settle(b, it, SETTLE_NAK_DELAY);
        return true;
    }
    add_result(b, it);
    return true;
}

static void dead_letter(batch *b, item *it)
{
    dt_status st = dt__act_dead_letter(b->p, b->s->held[it->ix], it->seq, it->why);
    if (st == DT_OK) {
        dt__act_log(b->p, DT_LOG_WARN, NULL,
                    "malformed work item %" PRIu64 " on task queue '%s' moved to %s: %s", it->seq,
                    b->s->queue->name, b->p->dead_subject, it->why);
        settle(b, it, SETTLE_TERM);
        return;
    }
    char why[256];
    dt_broker_errmsg_copy(b->p->b, why, sizeof(why));
    dt__act_log(b->p, DT_LOG_ERROR, NULL,
                "malformed work item %" PRIu64 " on task queue '%s' (%s): dead letter failed: %s",
                it->seq, b->s->queue->name, it->why, why);
    settle(b, it, SETTLE_NAK_DELAY);
}

/* True while held[ix] was not handed back. */
static bool held(dt__act_slot *s, size_t ix)
{
    pthread_mutex_lock(&s->mu);
    bool h = s->held[ix] != NULL;
    pthread_mutex_unlock(&s->mu);
    return h;
}

/* Processes the batch; returns false when the slot was abandoned (touch nothing but b->a). */
static bool run_batch(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        b->it[i].ix = i;
        classify(b, &b->it[i]);
    }
    const dt__activity_def *last = NULL;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->it[i];
        int64_t ran_ms = 0;
        if (!held(b->s, it->ix)) {
            continue; /* handed back by the ticker while an earlier one ran long */
        }
        switch (it->kind) {
        case ITEM_RUN:
            if (last != NULL &&
                (last != it->def || b->s->avg_us >= 1000L * DT__ACT_FLUSH_AFTER_MS)) {
                /* Held results wait for the next run only when it is expected to be short (the
                 * same activity, short on average): one of another kind may run long, and the
                 * results already there must not wait for it. */
                send_queued(b);
            }
            last = it->def;
            if (!run_item(b, it, &ran_ms)) {
                return false;
            }
            break;
        case ITEM_RESULT:
            add_result(b, it);
            break;
        case ITEM_DEAD:
            dead_letter(b, it);
            break;
        case ITEM_HANDOFF:
            handoff(b, it);
            break;
        case ITEM_NAK:
            if (it->why != NULL) {
                dt__act_log(b->p, DT_LOG_WARN, NULL, "work item %" PRIu64 ": %s; redelivering",
                            it->seq, it->why);
            } else {
                dt__act_log(b->p, DT_LOG_DEBUG, it->req->instance_id,
                            "activity '%s' is not served here (delivery %" PRIu64
                            "); left for another worker of task queue '%s'",
                            it->req->name, it->deliveries, b->s->queue->name);
            }
            settle(b, it, it->why != NULL ? SETTLE_NAK_DELAY : SETTLE_NAK_UNKNOWN);
            break;
        }
        maybe_flush(b, ran_ms);
    }
    flush(b);
    return true;
}

/* ------------------------------------------------------------------------------------------- */
/* The thread                                                                                  */

static size_t fetch_size(const dt__act_slot *s)
{
    if (s->avg_us <= 0) {
        return 1;
    }
    int64_t n = DT__ACT_BATCH_TARGET_US / s->avg_us;
    return n < 1 ? 1 : (n > DT__ACT_BATCH_MAX ? DT__ACT_BATCH_MAX : (size_t)n);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Fetches and processes one batch; returns false when the slot was abandoned. */
static bool fetch_and_run(dt__act_slot *s, bool *failing)
{
    dt__activity_pool *p = s->pool;
    dt_broker_msg *msgs[DT__ACT_BATCH_MAX];
    size_t n = 0;
    dt_status st =
        dt_broker_consumer_fetch(s->consumer, fetch_size(s), DT__ACT_FETCH_WAIT_MS, msgs, &n);
    if (st != DT_OK) {
        if (!*failing) {
            dt__act_log(p, DT_LOG_WARN, NULL, "task queue '%s': fetch failed: %s", s->queue->name,
                        dt_broker_consumer_errmsg(s->consumer));
        }
        *failing = true;
        sleep_ms(DT__ACT_FETCH_WAIT_MS);
        return true;
    }
    *failing = false;
    if (n == 0) {
        return true;
    }
    dt__metrics_batch(p->cfg.metrics, DT__MKIND_ACT, n); /* metrics */
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        s->held[i] = msgs[i];
    }
    s->nheld = n;
    pthread_mutex_unlock(&s->mu);
    batch b = {.s = s, .p = p, .a = dt__arena_create(16384), .n = n};
    bool alive = true;
    if (b.a == NULL) {
        for (size_t i = 0; i < n; i++) {
            b.it[i].ix = i;
            settle(&b, &b.it[i], SETTLE_NAK_DELAY);
        }
    } else {
        alive = run_batch(&b);
    }
    if (alive && b.handed_off > 0 && 2 * b.handed_off >= n) {
        /* Mostly work for other workers: a hand-off puts the item back at once (a nak would
         * have hidden it for DT__ACT_UNKNOWN_NAK_MS), so this thread pauses instead, and the
         * items it handed off go to the workers that serve them rather than round again. */
        sleep_ms(DT__ACT_UNKNOWN_NAK_MS);
    }
    if (alive) {
        pthread_mutex_lock(&s->mu);
        s->nheld = 0; /* every entry was settled */
        pthread_mutex_unlock(&s->mu);
    }
    dt__arena_destroy(b.a);
    return alive;
}

void *dt__act_thread_main(void *arg)
{
    dt__act_slot *s = arg;
    dt__activity_pool *p = s->pool;
    bool failing = false;
    bool alive = true;
    while (alive && !dt__act_stopping(p)) {
        alive = fetch_and_run(s, &failing);
    }
    if (alive) {
        dt_broker_consumer_close(s->consumer);
        dt_broker_publisher_destroy(s->pub);
        s->consumer = NULL;
        s->pub = NULL;
        pthread_mutex_lock(&s->mu);
        s->phase = DT__ACT_PHASE_DONE;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mu);
    }
    dt__act_slot_release(s);
    return NULL;
}
