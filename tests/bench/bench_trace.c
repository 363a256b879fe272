/*
 * trace3 (a diagnostic, not in the default list): the message timeline of lone 3-step
 * orchestrations. A core subscription to ">" on its own connection sees every message the
 * server routes (JetStream publishes and their PubAcks, pull requests and deliveries, acks,
 * status-bucket writes), each stamped on arrival; for each traced instance the messages from
 * dt_client_schedule to the finished status record are printed on stderr with their offsets.
 * Lease and membership heartbeats are left out. The JSON line gives the end-to-end times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "durabletask/client.h"

#define MAX_EVENTS 4096
#define TRACES     3

typedef struct spy_event {
    double t;
    char subject[120];
    char reply[64];
    size_t len;
} spy_event;

typedef struct spy {
    pthread_mutex_t mu;
    spy_event ev[MAX_EVENTS];
    size_t n;
    bool on;
} spy;

static void on_msg(dt_broker_msg *m, void *ctx)
{
    spy *s = ctx;
    double t = bench_now_ms();
    const char *subj = dt_broker_msg_subject(m), *reply = dt_broker_msg_reply(m);
    pthread_mutex_lock(&s->mu);
    if (s->on && s->n < MAX_EVENTS && strstr(subj, "_LEASES.") == NULL) {
        spy_event *e = &s->ev[s->n++];
        e->t = t;
        snprintf(e->subject, sizeof(e->subject), "%s", subj);
        snprintf(e->reply, sizeof(e->reply), "%s", reply != NULL ? reply : "");
        e->len = dt_broker_msg_len(m);
    }
    pthread_mutex_unlock(&s->mu);
    dt_broker_msg_destroy(m);
}

static void print_trace(spy *s, double t0, double t_sched, double t_done)
{
    fprintf(stderr, "trace: schedule returned at +%.3f ms, finished record seen at +%.3f ms\n",
            t_sched - t0, t_done - t0);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        const spy_event *e = &s->ev[i];
        fprintf(stderr, "  +%8.3f ms  %-72s %5zu B  %s\n", e->t - t0, e->subject, e->len,
                strncmp(e->reply, "_INBOX", 6) == 0 ? "(request)" : e->reply);
    }
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
}

/* One traced instance: returns its end-to-end ms, or a negative value. */
static double trace_one(bench_setup *st, dt_client *c, spy *s, size_t i)
{
    char id[64];
    snprintf(id, sizeof(id), "tr-%zu", i);
    dt_client_start_options so = {.instance_id = id};
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    s->on = true;
    pthread_mutex_unlock(&s->mu);
    double t0 = bench_now_ms();
    if (dt_client_schedule(c, "seq3", &so, NULL, 0) != DT_OK) {
        bench_note("trace: schedule: %s", dt_client_errmsg(c));
        return -1;
    }
    double t_sched = bench_now_ms();
    if (bench_observer_wait(st->ob, i + 1, true, 30000) < i + 1) {
        return -1;
    }
    double t_done = bench_observer_done_at(st->ob, i);
    bench_sleep_ms(20); /* the acks and deletes that follow the last write */
    pthread_mutex_lock(&s->mu);
    s->on = false;
    pthread_mutex_unlock(&s->mu);
    print_trace(s, t0, t_sched, t_done);
    return t_done - t0;
}

static bool traces(const bench_opts *o, bench_setup *st, dt_client *c, double *ms)
{
    spy *s = calloc(1, sizeof(*s));
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->url;
    bo.name = "dt-bench-spy";
    dt_broker *b = NULL;
    dt_broker_sub *sub = NULL;
    char err[256];
    bool ok = s != NULL && dt_broker_connect(&bo, &b, err, sizeof(err)) == DT_OK &&
              dt_broker_subscribe(b, ">", NULL, on_msg, s, &sub) == DT_OK &&
              dt_broker_flush(b, 2000) == DT_OK;
    if (s != NULL) {
        pthread_mutex_init(&s->mu, NULL);
    }
    bench_observer_round(st->ob, "tr", TRACES + 1);
    for (size_t i = 0; ok && i <= TRACES; i++) {
        double v = trace_one(st, c, s, i);
        ok = v >= 0;
        if (i > 0) {
            ms[i - 1] = v; /* instance 0 warms the path up */
        }
    }
    dt_broker_sub_destroy(sub);
    dt_broker_close(b);
    free(s);
    return ok;
}

int bench_trace3(const bench_opts *o)
{
    bench_setup st;
    if (!bench_setup_open(o, "bench_tr", 0, &st)) {
        return 1;
    }
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = o->url;
    co.hub = st.hub.name;
    dt_client *c = NULL;
    char err[256];
    double ms[TRACES] = {0};
    bool ok = dt_client_create(&co, &c, err, sizeof(err)) == DT_OK && traces(o, &st, c, ms);
    dt_client_destroy(c);
    bench_setup_close(&st);
    if (!ok) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "trace3");
    bench_json_nums(&j, "end_to_end_ms", ms, TRACES, 3);
    bench_json_str(&j, "measured", "timeline of lone seq3 instances on stderr");
    bench_json_end(&j);
    return 0;
}
