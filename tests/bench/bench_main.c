/*
 * dt_bench: the benchmark program (see bench.h). scripts/bench builds it in release mode, starts
 * a private nats-server and runs it.
 *
 *   dt_bench [options] [workload ...]     workloads: broker_limit hello5 latency3 fanout10k
 *                                         replay10k memory100k client16 client_lone takeover
 * (default: all, in this order), and the diagnostics trace3 and msgs5 dt_bench worker ... the
 * worker process (started by the workloads)
 *
 * Options: --url U (default $DT_BENCH_NATS_URL), --quick (a tenth of each size; --scale F for
 * another fraction), --runs N
 * (default 3), --partitions P (4), --cache N, --threads N, --fetch-batch N (worker options; 0 is
 * the worker's default), --tmpdir D (worker data; default $TMPDIR or /tmp), --broker-pid PID
 * (the nats-server's, for its CPU time per orchestration), --clients N (client16: how many
 * dt_client handles its 16 threads share, round-robin; default 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

typedef struct workload {
    const char *name;
    int (*run)(const bench_opts *o);
    bool needs_broker;
    bool diagnostic; /* only when named */
} workload;

static const workload workloads[] = {
    {"broker_limit", bench_broker_limit, true, false},
    {"hello5", bench_hello5, true, false},
    {"latency3", bench_latency3, true, false},
    {"fanout10k", bench_fanout10k, true, false},
    {"replay10k", bench_replay10k, false, false},
    {"memory100k", bench_memory100k, true, false},
    {"client16", bench_client16, true, false},
    {"client_lone", bench_client_lone, true, false},
    {"takeover", bench_takeover, true, false},
    {"entity_counters", bench_entity_counters, true, false},
    {"sdk_chain", bench_sdk_chain, true, true}, /* needs Node and tests/js/node_modules */
    {"trace3", bench_trace3, true, true},
    {"msgs5", bench_msgs5, true, true},
};
#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static void usage(void)
{
    fprintf(
        stderr,
        "usage: dt_bench [--url U] [--quick] [--scale F] [--runs N] [--partitions P] [--cache N] "
        "[--threads N] [--fetch-batch N] [--tmpdir D] [--broker-pid PID] [--clients N] "
        "[workload ...]\n"
        "workloads:");
    for (size_t i = 0; i < N_WORKLOADS; i++) {
        fprintf(stderr, " %s", workloads[i].name);
    }
    fprintf(stderr, "\n");
}

static bool num_arg(const char *v, long max, long *out)
{
    char *end = NULL;
    long n = v != NULL ? strtol(v, &end, 10) : -1;
    if (v == NULL || *end != '\0' || n < 0 || n > max) {
        return false;
    }
    *out = n;
    return true;
}

/* Parses one option at argv[*i]; false on a bad one. */
static bool option(int argc, char **argv, int *i, bench_opts *o)
{
    const char *k = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long n = 0;
    if (strcmp(k, "--quick") == 0) {
        o->scale = 0.1;
        return true;
    }
    (*i)++;
    if (strcmp(k, "--scale") == 0 && v != NULL) {
        char *end = NULL;
        o->scale = strtod(v, &end);
        return *end == '\0' && o->scale > 0 && o->scale <= 10;
    }
    if (strcmp(k, "--url") == 0 && v != NULL) {
        o->url = v;
    } else if (strcmp(k, "--tmpdir") == 0 && v != NULL) {
        o->tmpdir = v;
    } else if (strcmp(k, "--broker-pid") == 0 && num_arg(v, 1L << 30, &n)) {
        o->broker_pid = (pid_t)n;
    } else if (strcmp(k, "--runs") == 0 && num_arg(v, 16, &n) && n > 0) {
        o->runs = (int)n;
    } else if (strcmp(k, "--partitions") == 0 && num_arg(v, 1024, &n) && n > 0) {
        o->partitions = (uint32_t)n;
    } else if (strcmp(k, "--cache") == 0 && num_arg(v, 10000000, &n)) {
        o->cache = (size_t)n;
    } else if (strcmp(k, "--threads") == 0 && num_arg(v, 256, &n)) {
        o->activity_threads = (size_t)n;
    } else if (strcmp(k, "--fetch-batch") == 0 && num_arg(v, 4096, &n)) {
        o->fetch_batch = (size_t)n;
    } else if (strcmp(k, "--clients") == 0 && num_arg(v, 16, &n) && n > 0) {
        o->clients = (size_t)n;
    } else {
        fprintf(stderr, "dt_bench: bad option %s\n", k);
        return false;
    }
    return true;
}

static const workload *find(const char *name)
{
    for (size_t i = 0; i < N_WORKLOADS; i++) {
        if (strcmp(workloads[i].name, name) == 0) {
            return &workloads[i];
        }
    }
    return NULL;
}

static int run(const bench_opts *o, const workload *w)
{
    if (w->needs_broker && o->url == NULL) {
        bench_note("%s needs a nats-server: --url or DT_BENCH_NATS_URL", w->name);
        return 1;
    }
    bench_note("%s ...", w->name);
    double t0 = bench_now_ms();
    int rc = w->run(o);
    bench_note("%s %s in %.1f s", w->name, rc == 0 ? "done" : "FAILED",
               (bench_now_ms() - t0) / 1000.0);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "worker") == 0) {
        return bench_worker_main(argc, argv);
    }
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    bench_opts o = {.url = getenv("DT_BENCH_NATS_URL"),
                    .scale = 1.0,
                    .runs = 3,
                    .partitions = 4,
                    .self = self,
                    .clients = 1};
    const workload *chosen[N_WORKLOADS * 4];
    size_t n_chosen = 0;
    for (int i = 1; i < argc; i++) {
        const workload *w = argv[i][0] == '-' ? NULL : find(argv[i]);
        if (argv[i][0] == '-' ? !option(argc, argv, &i, &o)
                              : (w == NULL || n_chosen == N_WORKLOADS * 4)) {
            usage();
            return 2;
        }
        if (w != NULL) {
            chosen[n_chosen++] = w;
        }
    }
    if (o.tmpdir != NULL) {
        setenv("TMPDIR", o.tmpdir, 1);
    }
    bench_tracing_start();
    int failed = 0;
    for (size_t i = 0; i < (n_chosen > 0 ? n_chosen : N_WORKLOADS); i++) {
        const workload *w = n_chosen > 0 ? chosen[i] : &workloads[i];
        if (n_chosen > 0 || !w->diagnostic) {
            failed += run(&o, w) != 0;
        }
    }
    bench_tracing_stop();
    if (bench_worker_failures() > 0) {
        bench_note("%d worker process(es) failed: the figures above are not to be trusted",
                   bench_worker_failures());
    }
    return failed > 0 || bench_worker_failures() > 0 ? 1 : 0;
}
