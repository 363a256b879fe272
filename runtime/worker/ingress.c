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
#include "partition_int.h"

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

static void handle_batch(dt__ingress *g, dt_broker_msg **msgs, size_t n)
{
    dt__arena *a = dt__arena_create(16 * 1024);
    dt__routed *rs = a != NULL ? dt__arena_calloc(a, n, sizeof(*rs)) : NULL;
    outcome *o = a != NULL ? dt__arena_calloc(a, n, sizeof(*o)) : NULL;
    const char **errs = a != NULL ? dt__arena_calloc(a, n, sizeof(*errs)) : NULL;
    bool ready = rs != NULL && o != NULL && errs != NULL;
    size_t added = 0;
    for (size_t i = 0; ready && i < n; i++) {
        const char *why = dt__ingress_route(&g->routing, a, msgs[i], &rs[i]);
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
        } else {
            added++;
        }
    }
    /* Without a message added, the publisher still holds the previous batch's results. */
    if (ready && added > 0) {
        dt_broker_publisher_wait(g->pub, 10000);
        size_t nr = 0;
        const dt_broker_pub_result *res = dt_broker_publisher_results(g->pub, &nr);
        for (size_t k = 0; k < nr; k++) {
            size_t i = (size_t)res[k].tag;
            if (i >= n) {
                continue;
            }
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
