/*
 * The worker process of the benchmarks: `dt_bench worker --url U --hub H --data DIR [--cache N]
 * [--threads N] [--fetch-batch N]` (0 means the worker's default). It registers the benchmark
 * orchestrations and activities, runs until SIGTERM or SIGINT, then stops gracefully.
 *
 *   hello5   five "hello" activities in sequence (the Durable Task "hello cities" chain)
 *   seq3     three "hello" activities in sequence (the latency workload)
 *   fanout   input n: n "work" activities at once, then when-all (the fan-out workload)
 *   waiter   waits for the external event "go" (the memory workload)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "bench.h"
#include "durabletask/entity.h"
#include "durabletask/metrics.h"
#include "durabletask/worker.h"

static const char *const cities[] = {"Tokyo", "Seattle", "London", "Cairo", "Lima"};

static void act_hello(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char out[256];
    int n = snprintf(out, sizeof(out), "Hello %.*s", (int)len, in != NULL ? in : "");
    dt_activity_set_output(ctx, out, (size_t)n);
}

static void act_work(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *in = dt_activity_input(ctx, &len);
    dt_activity_set_output(ctx, in, len);
}

static void chain(dt_orch_ctx *ctx, int steps)
{
    char out[512] = "";
    size_t used = 0;
    for (int i = 0; i < steps; i++) {
        const char *c = cities[i % 5];
        const char *r = dt_await(ctx, dt_call_activity(ctx, "hello", c, strlen(c), NULL), NULL);
        int w = snprintf(out + used, sizeof(out) - used, "%s%s", i > 0 ? "," : "", r);
        used += w > 0 && (size_t)w < sizeof(out) - used ? (size_t)w : 0;
    }
    dt_orch_set_output(ctx, out, used);
}

static void orch_hello5(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    chain(ctx, 5);
}

static void orch_seq3(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    chain(ctx, 3);
}

static void orch_fanout(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *in = dt_orch_input(ctx, NULL);
    long n = in != NULL ? strtol(in, NULL, 10) : 0;
    n = n < 0 ? 0 : n;
    dt_task **t = dt_orch_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(*t));
    for (long i = 0; i < n; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%ld", i);
        t[i] = dt_call_activity(ctx, "work", buf, (size_t)len, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, t, (size_t)n), NULL);
    long sum = 0;
    for (long i = 0; i < n; i++) {
        sum += strtol(dt_task_output(t[i], NULL), NULL, 10);
    }
    char out[32];
    int len = snprintf(out, sizeof(out), "%ld", sum);
    dt_orch_set_output(ctx, out, (size_t)len);
}

static void orch_waiter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "go"), NULL);
}

static void log_errors(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)ctx;
    if (level >= DT_LOG_WARN) {
        fprintf(stderr, "[bench worker] %s%s%s\n", instance_id != NULL ? instance_id : "",
                instance_id != NULL ? ": " : "", msg);
    }
}

static size_t size_arg(const char *v)
{
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    return *end == '\0' ? (size_t)n : 0;
}

static bool parse(int argc, char **argv, dt_worker_options *o)
{
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--url") == 0) {
            o->nats_url = v;
        } else if (strcmp(k, "--hub") == 0) {
            o->hub = v;
        } else if (strcmp(k, "--data") == 0) {
            o->data_dir = v;
        } else if (strcmp(k, "--cache") == 0) {
            o->cache_capacity = size_arg(v);
        } else if (strcmp(k, "--threads") == 0) {
            o->activity_threads = size_arg(v);
        } else if (strcmp(k, "--fetch-batch") == 0) {
            o->fetch_batch = size_arg(v);
        } else {
            fprintf(stderr, "bench worker: unknown option %s\n", k);
            return false;
        }
    }
    /* The result batches of activity_loop.c, off by default (a fleet-wide switch): on with
     * DT_BENCH_BATCH_RESULTS=1 in the environment of dt_bench. */
    const char *batch = getenv("DT_BENCH_BATCH_RESULTS");
    o->batch_activity_results = batch != NULL && strcmp(batch, "1") == 0;
    /* In-process activities (local_act.c), on by default: off with DT_BENCH_NO_LOCAL=1. */
    const char *no_local = getenv("DT_BENCH_NO_LOCAL");
    o->disable_local_activities = no_local != NULL && strcmp(no_local, "1") == 0;
    /* Metrics on (registry, hooks and a /metrics endpoint on a free loopback port) with
     * DT_BENCH_METRICS=1: the A/B of docs/performance.md, "The cost of metrics". */
    const char *metrics = getenv("DT_BENCH_METRICS");
    o->metrics_addr = metrics != NULL && strcmp(metrics, "1") == 0 ? "127.0.0.1:0" : NULL;
    return o->hub != NULL && o->data_dir != NULL;
}

/* entity_counters' counter: "add <n>" to a decimal state. */
static void ent_counter(dt_entity_ctx *ctx, void *ud)
{
    (void)ud;
    const char *s = dt_entity_state(ctx, NULL), *in = dt_entity_input(ctx, NULL);
    long v = (s != NULL ? strtol(s, NULL, 10) : 0) + (in != NULL ? strtol(in, NULL, 10) : 1);
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", v);
    dt_entity_set_state(ctx, buf, (size_t)n);
}

static dt_status register_all(dt_worker *w)
{
    dt_status ent = dt_worker_add_entity(w, "counter", ent_counter, NULL);
    if (ent != DT_OK) {
        return ent;
    }
    dt_status st = dt_worker_add_orchestrator(w, "hello5", orch_hello5, NULL);
    st = st == DT_OK ? dt_worker_add_orchestrator(w, "seq3", orch_seq3, NULL) : st;
    st = st == DT_OK ? dt_worker_add_orchestrator(w, "fanout", orch_fanout, NULL) : st;
    st = st == DT_OK ? dt_worker_add_orchestrator(w, "waiter", orch_waiter, NULL) : st;
    st = st == DT_OK ? dt_worker_add_activity(w, "hello", NULL, act_hello, NULL) : st;
    return st == DT_OK ? dt_worker_add_activity(w, "work", NULL, act_work, NULL) : st;
}

int bench_worker_main(int argc, char **argv)
{
    dt_worker_options o = {.log = log_errors};
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: dt_bench worker --url U --hub H --data DIR [--cache N] "
                        "[--threads N] [--fetch-batch N]\n");
        return 2;
    }
    /* Stop with the driver, even when it is killed (Linux). */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* Block the stop signals in every thread; the main thread takes them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    dt_worker *w = NULL;
    char err[256];
    dt_status st = dt_worker_create(&o, &w, err, sizeof(err));
    if (st != DT_OK) {
        fprintf(stderr, "bench worker: %s\n", err);
        return 1;
    }
    st = register_all(w);
    st = st == DT_OK ? dt_worker_start(w) : st;
    if (st != DT_OK) {
        fprintf(stderr, "bench worker: %s\n", dt_worker_errmsg(w));
        dt_worker_destroy(w);
        return 1;
    }
    if (dt_worker_metrics_port(w) > 0) {
        fprintf(stderr, "bench worker: metrics at http://127.0.0.1:%d/metrics\n",
                dt_worker_metrics_port(w));
    }
    int sig = 0;
    sigwait(&set, &sig);
    dt_worker_stop(w, 5000);
    dt_worker_destroy(w);
    return 0;
}
