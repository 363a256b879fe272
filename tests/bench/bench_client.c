/*
 * The C client's own path, start to finish: client16 (throughput of dt_client_schedule followed
 * by dt_client_wait_for_completion from 16 threads) and client_lone (one start-and-wait at a
 * time: the latency a user of the client API sees). Both run "seq3" (three activities in
 * sequence) on a fresh hub with one worker process, with caller-chosen instance IDs under the
 * default reuse policy. The status observer of the setup is not used to measure: the figures
 * stop when the client's wait returns.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "durabletask/client.h"

#define CLIENT_THREADS 16
#define WAIT_TIMEOUT   60000

/* This process's CPU time (user, system; ms) and context switches so far: the client's cost,
 * plus the setup's status observer thread (the same in every build being compared). */
typedef struct self_usage {
    double user_ms, sys_ms, switches;
} self_usage;

static self_usage self_usage_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (self_usage){
        .user_ms = (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3,
        .sys_ms = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3,
        .switches = (double)(ru.ru_nvcsw + ru.ru_nivcsw)};
}

/* The per-chain cost between two samples. */
static self_usage per_chain(self_usage a, self_usage b, size_t n)
{
    double k = n > 0 ? (double)n : 1;
    return (self_usage){.user_ms = (b.user_ms - a.user_ms) / k,
                        .sys_ms = (b.sys_ms - a.sys_ms) / k,
                        .switches = (b.switches - a.switches) / k};
}

static void usage_json(bench_json *j, const self_usage *u, int runs)
{
    double user[16], sys[16], sw[16];
    for (int i = 0; i < runs; i++) {
        user[i] = u[i].user_ms;
        sys[i] = u[i].sys_ms;
        sw[i] = u[i].switches;
    }
    bench_json_num(j, "client_user_ms_per_chain", bench_median(user, (size_t)runs), 4);
    bench_json_num(j, "client_sys_ms_per_chain", bench_median(sys, (size_t)runs), 4);
    bench_json_num(j, "client_switches_per_chain", bench_median(sw, (size_t)runs), 2);
}

static dt_client *client_new(const bench_opts *o, const bench_hub *h)
{
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = o->url;
    co.hub = h->name;
    dt_client *c = NULL;
    char err[256];
    if (dt_client_create(&co, &c, err, sizeof(err)) != DT_OK) {
        bench_note("client: %s", err);
        return NULL;
    }
    return c;
}

/* One start-and-wait of "<prefix>-<i>"; its wall time in ms, or < 0 on failure. *sched_ms (may
 * be NULL): the time dt_client_schedule took. */
static double start_and_wait(dt_client *c, const char *prefix, size_t i, double *sched_ms)
{
    char id[64];
    snprintf(id, sizeof(id), "%s-%zu", prefix, i);
    dt_client_start_options so = {.instance_id = id};
    dt_client_instance *inst = NULL;
    double t0 = bench_now_ms();
    dt_status st = dt_client_schedule(c, "seq3", &so, NULL, 0);
    if (sched_ms != NULL) {
        *sched_ms = bench_now_ms() - t0;
    }
    if (st == DT_OK) {
        st = dt_client_wait_for_completion(c, id, WAIT_TIMEOUT, false, &inst);
    }
    double ms = bench_now_ms() - t0;
    bool ok = st == DT_OK && inst->runtime_status == DT_CLIENT_COMPLETED;
    if (!ok) {
        /* Other threads may fail on the same client at once: the text may be theirs. */
        bench_note("%s: %s (%s)", id, dt_status_str(st),
                   st == DT_OK ? "not COMPLETED" : "see other notes");
    }
    dt_client_instance_free(inst);
    return ok ? ms : -1;
}

/* ---- client16 ---- */

typedef struct c16_thread {
    pthread_t t;
    dt_client *c;
    const char *prefix;
    size_t first, n; /* instances [first, first + n) */
    bool ok;
} c16_thread;

static void *c16_main(void *arg)
{
    c16_thread *t = arg;
    t->ok = true;
    for (size_t i = t->first; t->ok && i < t->first + t->n; i++) {
        t->ok = start_and_wait(t->c, t->prefix, i, NULL) >= 0;
    }
    return NULL;
}

/* One round: n chains over 16 threads sharing the clients; instances per second, or < 0. */
static double c16_round(dt_client **clients, size_t nclients, const char *prefix, size_t n)
{
    c16_thread th[CLIENT_THREADS];
    size_t per = n / CLIENT_THREADS, extra = n % CLIENT_THREADS, next = 0;
    double t0 = bench_now_ms();
    size_t started = 0;
    for (size_t k = 0; k < CLIENT_THREADS; k++) {
        th[k] = (c16_thread){.c = clients[k % nclients],
                             .prefix = prefix,
                             .first = next,
                             .n = per + (k < extra ? 1 : 0)};
        next += th[k].n;
        if (pthread_create(&th[k].t, NULL, c16_main, &th[k]) != 0) {
            break;
        }
        started++;
    }
    bool ok = started == CLIENT_THREADS;
    for (size_t k = 0; k < started; k++) {
        pthread_join(th[k].t, NULL);
        ok = ok && th[k].ok;
    }
    double ms = bench_now_ms() - t0;
    return ok && ms > 0 ? (double)n * 1000.0 / ms : -1;
}

int bench_client16(const bench_opts *o)
{
    size_t n = bench_scaled(o, 2000), nclients = o->clients > 0 ? o->clients : 1;
    bench_setup s;
    if (!bench_setup_open(o, "bench_c16", 0, &s)) {
        return 1;
    }
    dt_client *clients[CLIENT_THREADS] = {NULL};
    bool ok = nclients <= CLIENT_THREADS;
    for (size_t k = 0; ok && k < nclients; k++) {
        ok = (clients[k] = client_new(o, &s.hub)) != NULL;
    }
    double rate[16];
    self_usage use[16];
    int runs = 0;
    ok = ok && bench_warm_up(&s, "seq3", 20, NULL) && c16_round(clients, nclients, "c16w", 64) > 0;
    for (int r = 0; ok && r < o->runs && r < 16; r++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "c16r%d", r);
        self_usage u0 = self_usage_now();
        double v = c16_round(clients, nclients, prefix, n);
        if ((ok = v > 0)) {
            use[runs] = per_chain(u0, self_usage_now(), n);
            bench_note("client16 run %d: %zu chains, %.0f/s; this process per chain: user %.3f "
                       "sys %.3f ms, %.1f context switches",
                       r, n, v, use[runs].user_ms, use[runs].sys_ms, use[runs].switches);
            rate[runs++] = v;
        }
    }
    for (size_t k = 0; k < nclients && k < CLIENT_THREADS; k++) {
        dt_client_destroy(clients[k]);
    }
    bench_setup_close(&s);
    if (runs == 0) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "client16");
    bench_json_num(&j, "chains_per_s", bench_median(rate, (size_t)runs), 0);
    bench_json_int(&j, "n", (long long)n);
    bench_json_nums(&j, "chains_per_s_runs", rate, (size_t)runs, 0);
    bench_json_int(&j, "threads", CLIENT_THREADS);
    bench_json_int(&j, "clients", (long long)nclients);
    usage_json(&j, use, runs);
    bench_json_str(&j, "measured",
                   "seq3 chains, each thread: dt_client_schedule (caller-chosen ID, default "
                   "policy) then dt_client_wait_for_completion, from the first start to the "
                   "last wait's return");
    bench_settings(&j, o, o->cache, runs);
    bench_json_end(&j);
    return runs == o->runs ? 0 : 1;
}

/* ---- client_lone ---- */

int bench_client_lone(const bench_opts *o)
{
    size_t n = bench_scaled(o, 200);
    bench_setup s;
    if (!bench_setup_open(o, "bench_cl", 0, &s)) {
        return 1;
    }
    dt_client *c = client_new(o, &s.hub);
    double p50[16], p90[16], p99[16], s50[16];
    self_usage use[16];
    int runs = 0;
    double *v = calloc(n, sizeof(*v)), *sv = calloc(n, sizeof(*sv));
    bool ok = c != NULL && v != NULL && sv != NULL && bench_warm_up(&s, "seq3", 20, NULL);
    for (size_t i = 0; ok && i < 20; i++) {
        ok = start_and_wait(c, "clw", i, NULL) >= 0;
    }
    for (int r = 0; ok && r < o->runs && r < 16; r++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "clr%d", r);
        self_usage u0 = self_usage_now();
        for (size_t i = 0; ok && i < n; i++) {
            ok = (v[i] = start_and_wait(c, prefix, i, &sv[i])) >= 0;
        }
        if (ok) {
            use[runs] = per_chain(u0, self_usage_now(), n);
            p50[runs] = bench_percentile(v, n, 50);
            p90[runs] = bench_percentile(v, n, 90);
            p99[runs] = bench_percentile(v, n, 99);
            s50[runs] = bench_percentile(sv, n, 50);
            bench_note("client_lone run %d: p50 %.2f p90 %.2f p99 %.2f ms (schedule p50 %.2f ms); "
                       "this process per chain: user %.3f sys %.3f ms, %.1f context switches",
                       r, p50[runs], p90[runs], p99[runs], s50[runs], use[runs].user_ms,
                       use[runs].sys_ms, use[runs].switches);
            runs++;
        }
    }
    free(v);
    free(sv);
    dt_client_destroy(c);
    bench_setup_close(&s);
    if (runs == 0) {
        return 1;
    }
    size_t k = (size_t)runs;
    bench_json j;
    bench_json_begin(&j, "client_lone");
    bench_json_num(&j, "p50_ms", bench_median(p50, k), 2);
    bench_json_num(&j, "p90_ms", bench_median(p90, k), 2);
    bench_json_num(&j, "p99_ms", bench_median(p99, k), 2);
    bench_json_int(&j, "n", (long long)n);
    bench_json_nums(&j, "p50_ms_runs", p50, k, 2);
    bench_json_nums(&j, "p99_ms_runs", p99, k, 2);
    bench_json_num(&j, "schedule_p50_ms", bench_median(s50, k), 2);
    usage_json(&j, use, runs);
    bench_json_str(&j, "measured",
                   "one seq3 at a time: dt_client_schedule (caller-chosen ID, default policy) "
                   "to the return of dt_client_wait_for_completion");
    bench_settings(&j, o, o->cache, runs);
    bench_json_end(&j);
    return runs == o->runs ? 0 : 1;
}
