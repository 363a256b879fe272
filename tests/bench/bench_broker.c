/*
 * broker_limit: the substrate's ceiling in the same run, through the broker adapter (the same
 * calls the runtime makes), with the runtime's own stream settings (the hub's DT_<hub>_ACT
 * work-queue stream, file storage).
 *
 * One round trip is a full dispatch, as in NATS-NOTES: a work item is published (async window),
 * fetched by a dispatcher (batches of 256), which publishes a result (async) and, once the
 * result's PubAck is in, acks the work item; a collector fetches the result and acks it. Three
 * threads, each with its own connection: producer, dispatcher, collector. 200-byte bodies.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define BODY_LEN      200
#define FETCH_BATCH   256
#define FETCH_WAIT_MS 1000
#define PUB_CHUNK     16384
#define STALL_MS      30000

typedef struct role {
    const bench_opts *o;
    const char *hub;
    char work_subject[DT_BROKER_NAME_BUF], res_subject[DT_BROKER_NAME_BUF];
    char stream[DT_BROKER_NAME_BUF];
    size_t n;
    double t_start, t_end, t_produced;
    size_t fetches_work, fetches_res; /* non-empty fetches of the dispatcher and the collector */
    atomic_bool failed;               /* set by any role; the others give up */
} role;

static dt_broker *connect_one(const bench_opts *o, const char *name)
{
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->url;
    bo.name = name;
    dt_broker *b = NULL;
    char err[256];
    if (dt_broker_connect(&bo, &b, err, sizeof(err)) != DT_OK) {
        bench_note("broker_limit: %s", err);
        return NULL;
    }
    return b;
}

static void *producer(void *arg)
{
    role *r = arg;
    static const char body[BODY_LEN] = {0};
    dt_broker *b = connect_one(r->o, "bench-producer");
    dt_broker_publisher *p = NULL;
    if (b == NULL || dt_broker_publisher_create(b, NULL, &p) != DT_OK) {
        r->failed = true;
        dt_broker_close(b);
        return NULL;
    }
    dt_broker_outmsg m = {.subject = r->work_subject, .data = body, .len = BODY_LEN};
    r->t_start = bench_now_ms();
    for (size_t i = 0; !r->failed && i < r->n; i++) {
        r->failed = dt_broker_publisher_add(p, &m, i) != DT_OK;
        if (!r->failed && ((i + 1) % PUB_CHUNK == 0 || i + 1 == r->n)) {
            r->failed = dt_broker_publisher_wait(p, STALL_MS) != DT_OK;
        }
    }
    r->t_produced = bench_now_ms();
    dt_broker_publisher_destroy(p);
    dt_broker_close(b);
    return NULL;
}

static dt_broker_consumer *open_consumer(dt_broker *b, role *r, const char *durable,
                                         const char *filter)
{
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = r->stream;
    cc.durable = durable;
    cc.filter_subject = filter;
    cc.max_ack_pending = 100000;
    dt_broker_consumer *c = NULL;
    if (dt_broker_consumer_open(b, &cc, &c) != DT_OK) {
        bench_note("broker_limit: consumer %s: %s", durable, dt_broker_errmsg(b));
        return NULL;
    }
    return c;
}

/* Publishes one result per fetched work item, waits for the PubAcks, then acks the batch. */
static bool dispatch_batch(role *r, dt_broker_publisher *p, dt_broker_msg **msgs, size_t n)
{
    static const char body[BODY_LEN] = {0};
    dt_broker_outmsg m = {.subject = r->res_subject, .data = body, .len = BODY_LEN};
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        ok = dt_broker_publisher_add(p, &m, i) == DT_OK;
    }
    ok = ok && dt_broker_publisher_wait(p, STALL_MS) == DT_OK;
    ok = ok && dt_broker_msgs_ack(msgs, n) == DT_OK;
    for (size_t i = 0; i < n; i++) {
        dt_broker_msg_destroy(msgs[i]);
    }
    return ok;
}

static void *dispatcher(void *arg)
{
    role *r = arg;
    dt_broker *b = connect_one(r->o, "bench-dispatcher");
    dt_broker_consumer *c = b != NULL ? open_consumer(b, r, "bl_work", r->work_subject) : NULL;
    dt_broker_publisher *p = NULL;
    if (c == NULL || dt_broker_publisher_create(b, NULL, &p) != DT_OK) {
        r->failed = true;
    }
    dt_broker_msg *msgs[FETCH_BATCH];
    size_t done = 0;
    double idle_since = bench_now_ms();
    while (!r->failed && done < r->n && bench_now_ms() - idle_since < STALL_MS) {
        size_t n = 0;
        if (dt_broker_consumer_fetch(c, FETCH_BATCH, FETCH_WAIT_MS, msgs, &n) != DT_OK || n == 0) {
            continue;
        }
        idle_since = bench_now_ms();
        r->failed = !dispatch_batch(r, p, msgs, n);
        done += n;
        r->fetches_work++;
    }
    dt_broker_publisher_destroy(p);
    dt_broker_consumer_close(c);
    dt_broker_close(b);
    return NULL;
}

static void *collector(void *arg)
{
    role *r = arg;
    dt_broker *b = connect_one(r->o, "bench-collector");
    dt_broker_consumer *c = b != NULL ? open_consumer(b, r, "bl_res", r->res_subject) : NULL;
    r->failed = r->failed || c == NULL;
    dt_broker_msg *msgs[FETCH_BATCH];
    size_t done = 0;
    double idle_since = bench_now_ms();
    while (!r->failed && done < r->n && bench_now_ms() - idle_since < STALL_MS) {
        size_t n = 0;
        if (dt_broker_consumer_fetch(c, FETCH_BATCH, FETCH_WAIT_MS, msgs, &n) != DT_OK || n == 0) {
            continue;
        }
        idle_since = bench_now_ms();
        r->failed = dt_broker_msgs_ack(msgs, n) != DT_OK;
        for (size_t i = 0; i < n; i++) {
            dt_broker_msg_destroy(msgs[i]);
        }
        done += n;
        r->fetches_res++;
    }
    r->t_end = bench_now_ms();
    r->failed = r->failed || done < r->n;
    dt_broker_consumer_close(c);
    dt_broker_close(b);
    return NULL;
}

/* One run: returns round trips/s (0 on failure), the producer's own rate and the CPU ms per
 * round trip of the broker and of this process (its three roles). */
static double one_run(role *r, double *produce_rate, bench_cpu *cpu)
{
    bench_cpu before = {0, 0, 0, 0}, after = {0, 0, 0, 0};
    bench_cpu_ms(getpid(), &before.driver);
    if (r->o->broker_pid > 0) {
        bench_cpu_ms(r->o->broker_pid, &before.broker);
    }
    pthread_t t[3];
    r->failed = false;
    r->t_start = r->t_end = r->t_produced = 0;
    r->fetches_work = r->fetches_res = 0;
    pthread_create(&t[2], NULL, collector, r);
    pthread_create(&t[1], NULL, dispatcher, r);
    bench_sleep_ms(200); /* consumers bound before the first work item */
    pthread_create(&t[0], NULL, producer, r);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    bench_cpu_ms(getpid(), &after.driver);
    if (r->o->broker_pid > 0) {
        bench_cpu_ms(r->o->broker_pid, &after.broker);
    }
    cpu->broker = (after.broker - before.broker) / (double)r->n;
    cpu->driver = (after.driver - before.driver) / (double)r->n;
    if (r->failed || r->t_end <= r->t_start) {
        return 0;
    }
    *produce_rate = (double)r->n / ((r->t_produced - r->t_start) / 1000.0);
    return (double)r->n / ((r->t_end - r->t_start) / 1000.0);
}

int bench_broker_limit(const bench_opts *o)
{
    bench_hub h;
    if (!bench_hub_create(o, "bench_bl", &h)) {
        return 1;
    }
    role r = {.o = o, .hub = h.name, .n = bench_scaled(o, 100000)};
    dt_broker_subject(h.name, DT_BROKER_SUBJ_ACT, "blwork", r.work_subject, sizeof(r.work_subject));
    dt_broker_subject(h.name, DT_BROKER_SUBJ_ACT, "blres", r.res_subject, sizeof(r.res_subject));
    dt_broker_stream_name(h.name, DT_BROKER_STREAM_ACT, r.stream, sizeof(r.stream));
    double rts[16], prod[16], cpu_b[16], cpu_c[16], batch[16];
    int ok_runs = 0;
    for (int i = 0; i < o->runs && i < 16; i++) {
        bench_cpu cpu;
        double rt = one_run(&r, &prod[ok_runs], &cpu);
        cpu_b[ok_runs] = cpu.broker;
        cpu_c[ok_runs] = cpu.driver;
        batch[ok_runs] = (double)(2 * r.n) / (double)(r.fetches_work + r.fetches_res + 1);
        if (rt <= 0) {
            bench_note("broker_limit run %d failed", i);
            break;
        }
        rts[ok_runs++] = rt;
        bench_note("broker_limit run %d: %.0f round trips/s", i, rt);
    }
    bench_hub_destroy(&h);
    if (ok_runs == 0) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "broker_limit");
    bench_json_num(&j, "roundtrips_per_s", bench_median(rts, (size_t)ok_runs), 0);
    bench_json_int(&j, "n", (long long)r.n);
    bench_json_nums(&j, "roundtrips_per_s_runs", rts, (size_t)ok_runs, 0);
    bench_json_num(&j, "producer_msgs_per_s", bench_median(prod, (size_t)ok_runs), 0);
    double mb = bench_median(cpu_b, (size_t)ok_runs), mc = bench_median(cpu_c, (size_t)ok_runs);
    if (o->broker_pid > 0) {
        bench_json_num(&j, "broker_cpu_ms_per_roundtrip", mb, 4);
    }
    bench_json_num(&j, "client_cpu_ms_per_roundtrip", mc, 4);
    if (o->broker_pid > 0 && mb + mc > 0) {
        bench_json_num(&j, "cpu_bound_roundtrips_per_s",
                       (double)sysconf(_SC_NPROCESSORS_ONLN) * 1000.0 / (mb + mc), 0);
    }
    bench_json_int(&j, "fetch_batch", FETCH_BATCH);
    bench_json_num(&j, "avg_msgs_per_fetch", bench_median(batch, (size_t)ok_runs), 1);
    bench_json_int(&j, "body_bytes", BODY_LEN);
    bench_json_str(&j, "measured",
                   "work item published, fetched, result published, fetched, "
                   "both acked; 3 threads, 3 connections, file storage");
    bench_json_int(&j, "runs", o->runs);
    bench_json_end(&j);
    return ok_runs == o->runs ? 0 : 1;
}
