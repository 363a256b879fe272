/*
 * The throughput line of dt-samples: N hello_cities instances started at once by a few threads
 * (one client each, since a dt_client is confined to one thread), then awaited; the time from
 * the first start to the last completion gives orchestrations and activities per second.
 */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "sample_client.h"

#define THREADS 4

typedef struct part {
    const sample_run *r;
    long from, to; /* instance numbers [from, to) */
    long completed;
    char err[DT_CLIENT_ID_BUF + 256];
} part;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_part(part *p, dt_client *c)
{
    char id[DT_CLIENT_ID_BUF];
    for (long i = p->from; i < p->to; i++) {
        sample_id(p->r, "burst", (int)i + 1, id);
        dt_client_start_options o = {.instance_id = id};
        if (dt_client_schedule(c, "hello_cities", &o, NULL, 0) != DT_OK) {
            snprintf(p->err, sizeof(p->err), "%s: %s", id, dt_client_errmsg(c));
            return;
        }
    }
    for (long i = p->from; i < p->to; i++) {
        sample_id(p->r, "burst", (int)i + 1, id);
        dt_client_instance *inst = NULL;
        if (dt_client_wait_for_completion(c, id, p->r->timeout_ms, false, &inst) == DT_OK &&
            inst->runtime_status == DT_CLIENT_COMPLETED) {
            p->completed++;
        }
        dt_client_instance_free(inst);
    }
}

static void *thread_main(void *arg)
{
    part *p = arg;
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = p->r->nats_url;
    if (p->r->security != NULL) {
        o.security = *p->r->security;
    }
    o.hub = p->r->hub;
    o.connection_name = "dt-samples-burst";
    dt_client *c = NULL;
    if (dt_client_create(&o, &c, p->err, sizeof(p->err)) == DT_OK) {
        run_part(p, c);
    }
    dt_client_destroy(c);
    return NULL;
}

bool sample_burst(sample_run *r, long n)
{
    fprintf(r->out,
            "throughput: %ld hello_cities orchestrations (3 activities each) started at "
            "once by %d clients\n",
            n, THREADS);
    fflush(r->out);
    part parts[THREADS] = {0};
    pthread_t threads[THREADS];
    double t0 = now_s();
    for (int t = 0; t < THREADS; t++) {
        parts[t] = (part){.r = r, .from = n * t / THREADS, .to = n * (t + 1) / THREADS};
        if (pthread_create(&threads[t], NULL, thread_main, &parts[t]) != 0) {
            thread_main(&parts[t]); /* no thread: run this share here */
            threads[t] = 0;
        }
    }
    long completed = 0;
    for (int t = 0; t < THREADS; t++) {
        if (threads[t] != 0) {
            pthread_join(threads[t], NULL);
        }
        completed += parts[t].completed;
        if (parts[t].err[0] != '\0') {
            fprintf(r->out, "  %s\n", parts[t].err);
        }
    }
    double secs = now_s() - t0;
    fprintf(r->out,
            "throughput: %ld of %ld completed in %.2f s: %.0f orchestrations/s, %.0f "
            "activities/s\n",
            completed, n, secs, (double)completed / secs, 3.0 * (double)completed / secs);
    return completed == n;
}
