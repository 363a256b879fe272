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

#include "ingress_int.h"
#include "engine_int.h"
#include "worker_int.h"

#define INGRESS_BATCH   128
#define INGRESS_WAIT_MS 250
/* A request whose routed message could not be stored is tried again after 500 ms, doubling up
 * to 30 s, and dead-lettered after this many deliveries (about 15 minutes in all): a broker
 * that refuses for that long is an outage an operator must see, not something to spin on. */
#define RETRY_FIRST_MS      500
#define RETRY_MAX_MS        30000
#define RETRY_MAX_DELIVERED 40

struct dt__ingress {
    dt_worker *w;
    pthread_t thread;
    atomic_bool stop;
    dt_broker_consumer *consumer;
    dt_broker_publisher *pub;
    char prefix[DT_BROKER_NAME_BUF]; /* "dt.<hub>.in." */
    dt__ingress_routing routing;
};

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

/*
 * Entity signals bound for the same partition travel as ONE message (an OrchestrationBatch with
 * Dt-Batch, as activity results do; docs/design.md): the broker's cost is per message, and a
 * stream of signals to counters is many small requests for few partitions. Each member keeps its
 * own identity (applied once by the partition); the batch's Nats-Msg-Id is derived from all of
 * them, so a re-publish of the same group is dropped, and a regrouped one is recognised member by
 * member. Starts and events go one by one as before.
 */
#define SIGNAL_GROUP_MAX   64
#define SIGNAL_GROUP_BYTES ((size_t)256 * 1024)

typedef struct signal_group {
    char subject[DT_BROKER_NAME_BUF];
    size_t *members; /* indexes into the fetched batch */
    size_t n, bytes;
} signal_group;

static bool is_signal(const dt__ingress *g, dt_broker_msg *m)
{
    const char *subj = dt_broker_msg_subject(m);
    size_t plen = strlen(g->prefix);
    return strncmp(subj, g->prefix, plen) == 0 && strncmp(subj + plen, "signal.", 7) == 0;
}

/* The group of routed message rs (same subject, room left), or a new one; NULL: no memory. */
static signal_group *group_for(const dt__ingress *g, dt__arena *a, signal_group *gs, size_t *ng,
                               size_t cap, const dt__routed *rs)
{
    /* Half the hub's message limit at most: a group always fits what the server takes. */
    size_t limit = g->w->hub_cfg.max_msg_size / 2;
    size_t room = limit > 0 && limit < SIGNAL_GROUP_BYTES ? limit : SIGNAL_GROUP_BYTES;
    for (size_t k = 0; k < *ng; k++) {
        if (strcmp(gs[k].subject, rs->subject) == 0 && gs[k].n < SIGNAL_GROUP_MAX &&
            gs[k].bytes + rs->len < room) {
            return &gs[k];
        }
    }
    if (*ng == cap) {
        return NULL;
    }
    signal_group *sg = &gs[(*ng)++];
    snprintf(sg->subject, sizeof(sg->subject), "%s", rs->subject);
    sg->members = dt__arena_calloc(a, SIGNAL_GROUP_MAX, sizeof(size_t));
    return sg->members != NULL ? sg : NULL;
}

/* Adds group k (tag n + k) to the publisher: alone as itself, else as one batch message. */
static dt_status publish_group(dt__ingress *g, dt__arena *a, const signal_group *sg,
                               const dt__routed *rs, size_t n, size_t k)
{
    const dt__routed *first = &rs[sg->members[0]];
    if (sg->n == 1) {
        dt_broker_outmsg out = {.subject = first->subject,
                                .msg_id = first->dedupe,
                                .data = first->data,
                                .len = first->len};
        return dt_broker_publisher_add(g->pub, &out, n + k);
    }
    ProtobufCBinaryData *bodies = dt__arena_calloc(a, sg->n, sizeof(*bodies));
    if (bodies == NULL) {
        return DT_ENOMEM;
    }
    uint64_t h = DT__FNV64_OFFSET;
    for (size_t i = 0; i < sg->n; i++) {
        const dt__routed *r = &rs[sg->members[i]];
        bodies[i] = (ProtobufCBinaryData){r->len, r->data};
        h = dt__fnv1a64(dt__fnv1a64(h, r->dedupe), "\x1f");
    }
    Dtpb__OrchestrationBatch ob = DTPB__ORCHESTRATION_BATCH__INIT;
    ob.n_messages = sg->n;
    ob.messages = bodies;
    size_t len = 0;
    uint8_t *data = dt__pack(a, &ob.base, &len);
    size_t idlen = strlen(first->dedupe) + 64;
    char *id = dt__arena_alloc(a, idlen), count[24];
    if (data == NULL || id == NULL) {
        return DT_ENOMEM;
    }
    snprintf(id, idlen, "%s/batch/%zu/%016llx", first->dedupe, sg->n, (unsigned long long)h);
    snprintf(count, sizeof(count), "%zu", sg->n);
    dt_broker_header hd[1] = {{DT_HDR_BATCH, count}};
    dt_broker_outmsg out = {.subject = first->subject,
                            .msg_id = id,
                            .headers = hd,
                            .nheaders = 1,
                            .data = data,
                            .len = len};
    return dt_broker_publisher_add(g->pub, &out, n + k);
}

static void handle_batch(dt__ingress *g, dt_broker_msg **msgs, size_t n)
{
    dt__arena *a = dt__arena_create((size_t)16 * 1024);
    dt__routed *rs = a != NULL ? dt__arena_calloc(a, n, sizeof(*rs)) : NULL;
    outcome *o = a != NULL ? dt__arena_calloc(a, n, sizeof(*o)) : NULL;
    const char **errs = a != NULL ? dt__arena_calloc(a, n, sizeof(*errs)) : NULL;
    signal_group *gs = a != NULL ? dt__arena_calloc(a, n, sizeof(*gs)) : NULL;
    size_t ng = 0;
    bool ready = rs != NULL && o != NULL && errs != NULL && gs != NULL;
    size_t added = 0;
    for (size_t i = 0; ready && i < n; i++) {
        const char *why = dt__ingress_route(&g->routing, a, msgs[i], &rs[i]);
        if (why != NULL) {
            dead_letter(g, msgs[i], why);
            dt_broker_msg_term(msgs[i]);
            o[i] = DROPPED;
            continue;
        }
        signal_group *sg = is_signal(g, msgs[i]) ? group_for(g, a, gs, &ng, n, &rs[i]) : NULL;
        if (sg != NULL) {
            sg->members[sg->n++] = i;
            sg->bytes += rs[i].len;
            continue;
        }
        dt_broker_outmsg out = {
            .subject = rs[i].subject, .msg_id = rs[i].dedupe, .data = rs[i].data, .len = rs[i].len};
        dt_status st = dt_broker_publisher_add(g->pub, &out, i);
        if (st == DT_ETOOLARGE) {
            refuse(g, msgs[i], &o[i], dt_broker_publisher_errmsg(g->pub));
        } else if (st != DT_OK) {
            errs[i] = dt__arena_strdup(a, dt_broker_publisher_errmsg(g->pub));
        } else {
            added++;
        }
    }
    for (size_t k = 0; ready && k < ng; k++) {
        dt_status st = publish_group(g, a, &gs[k], rs, n, k);
        if (st == DT_OK) {
            added++;
        } else {
            for (size_t m = 0; m < gs[k].n; m++) { /* left PENDING: tried again later */
                errs[gs[k].members[m]] = dt__arena_strdup(a, dt_broker_publisher_errmsg(g->pub));
            }
        }
    }
    /* Without a message added, the publisher still holds the previous batch's results. */
    if (ready && added > 0) {
        dt_broker_publisher_wait(g->pub, 10000);
        size_t nr = 0;
        const dt_broker_pub_result *res = dt_broker_publisher_results(g->pub, &nr);
        for (size_t k = 0; k < nr; k++) {
            size_t tag = (size_t)res[k].tag;
            const signal_group *sg = tag >= n && tag - n < ng ? &gs[tag - n] : NULL;
            size_t count = sg != NULL ? sg->n : (tag < n ? 1 : 0);
            for (size_t m = 0; m < count; m++) {
                size_t i = sg != NULL ? sg->members[m] : tag;
                if (res[k].status == DT_OK) {
                    o[i] = SENT;
                } else if (res[k].status == DT_ETOOLARGE && sg == NULL) {
                    refuse(g, msgs[i], &o[i], res[k].error);
                } else { /* a group too large for the server: its members come again */
                    errs[i] = res[k].error != NULL ? dt__arena_strdup(a, res[k].error)
                                                   : dt_status_str(res[k].status);
                }
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
    g->routing = (dt__ingress_routing){g->prefix, w->hub, w->hub_cfg.partitions};
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
