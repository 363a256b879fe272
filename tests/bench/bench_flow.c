/*
 * The end-to-end workloads: hello5 (throughput), latency3, fanout10k and memory100k. Each uses a
 * fresh hub, one worker process (bench_worker.c) and the status observer; see bench.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "durabletask/client.h"

#define WARMUP_N       100
#define WAIT_MS        600000
#define ACTIONS_HELLO5 11 /* as the Durable Task Scheduler counts a five-activity chain */

/* The settings every end-to-end line reports (worker defaults written out). */
void bench_settings(bench_json *j, const bench_opts *o, size_t cache, int runs)
{
    bench_json_int(j, "partitions", o->partitions);
    bench_json_int(j, "workers", 1);
    bench_json_str(j, "worker", "separate process");
    bench_json_int(j, "activity_threads",
                   (long long)(o->activity_threads ? o->activity_threads : 4));
    bench_json_int(j, "fetch_batch", (long long)(o->fetch_batch ? o->fetch_batch : 256));
    bench_json_int(j, "cache_per_partition", (long long)(cache ? cache : 1000));
    bench_json_str(j, "durability", "file store, SQLite synchronous=NORMAL");
    bench_json_int(j, "runs", runs);
}

static void cpu_sample(const bench_opts *o, const bench_setup *s, bench_cpu *c)
{
    *c = (bench_cpu){0, 0, 0, 0};
    bench_cpu_ms(s->w.pid, &c->worker);
    bench_ctx_switches(s->w.pid, &c->worker_switches);
    if (o->broker_pid > 0) {
        bench_cpu_ms(o->broker_pid, &c->broker);
    }
    bench_cpu_ms(getpid(), &c->driver);
}

/* CPU ms per unit of work since `before`, into c. */
static void cpu_since(const bench_opts *o, const bench_setup *s, const bench_cpu *before,
                      size_t units, bench_cpu *c)
{
    bench_cpu now;
    cpu_sample(o, s, &now);
    double u = units > 0 ? (double)units : 1;
    c->worker = (now.worker - before->worker) / u;
    c->worker_switches = (now.worker_switches - before->worker_switches) / u;
    c->broker = (now.broker - before->broker) / u;
    c->driver = (now.driver - before->driver) / u;
}

/* CPU figures of a workload: per unit, and the rate both cores would give if the machine were
 * the benchmark's alone (cores * 1000 / total CPU ms per unit). */
static void cpu_report(bench_json *j, const bench_opts *o, const char *unit, const bench_cpu *runs,
                       int n)
{
    double w[16], b[16], d[16], cs[16];
    for (int i = 0; i < n; i++) {
        cs[i] = runs[i].worker_switches;
        w[i] = runs[i].worker;
        b[i] = runs[i].broker;
        d[i] = runs[i].driver;
    }
    char k[64];
    double mw = bench_median(w, (size_t)n), mb = bench_median(b, (size_t)n),
           md = bench_median(d, (size_t)n);
    snprintf(k, sizeof(k), "worker_cpu_ms_per_%s", unit);
    bench_json_num(j, k, mw, 4);
    if (o->broker_pid > 0) {
        snprintf(k, sizeof(k), "broker_cpu_ms_per_%s", unit);
        bench_json_num(j, k, mb, 4);
    }
    snprintf(k, sizeof(k), "worker_switches_per_%s", unit);
    bench_json_num(j, k, bench_median(cs, (size_t)n), 2);
    snprintf(k, sizeof(k), "driver_cpu_ms_per_%s", unit);
    bench_json_num(j, k, md, 4);
    if (o->broker_pid > 0 && mw + mb + md > 0) {
        snprintf(k, sizeof(k), "cpu_bound_%s_per_s", unit);
        bench_json_num(j, k, (double)sysconf(_SC_NPROCESSORS_ONLN) * 1000.0 / (mw + mb + md), 0);
    }
}

/* Starts n instances of `name` and waits until all finished. Returns the elapsed ms from the
 * first publish to the last completion seen, or a negative value on failure. */
static double run_round(bench_setup *s, const char *name, const char *prefix, size_t n,
                        const char *input, double *publish_ms)
{
    bench_observer_round(s->ob, prefix, n);
    double t0 = bench_now_ms();
    if (!bench_start_many(&s->hub, name, prefix, 0, n, input)) {
        return -1;
    }
    if (publish_ms != NULL) {
        *publish_ms = bench_now_ms() - t0;
    }
    size_t got = bench_observer_wait(s->ob, n, true, WAIT_MS);
    if (got < n) {
        bench_note("%s: only %zu of %zu instances finished in time", prefix, got, n);
        return -1;
    }
    double last = 0;
    for (size_t i = 0; i < n; i++) {
        double t = bench_observer_done_at(s->ob, i);
        last = t > last ? t : last;
    }
    if (bench_observer_failed(s->ob) > 0) {
        bench_note("%s: %zu instances did not complete successfully", prefix,
                   bench_observer_failed(s->ob));
        return -1;
    }
    return last - t0;
}

double bench_round(bench_setup *s, const char *name, const char *prefix, size_t n,
                   const char *input)
{
    return run_round(s, name, prefix, n, input, NULL);
}

bool bench_warm_up(bench_setup *s, const char *name, size_t n, const char *input)
{
    bool ok = run_round(s, name, "warm", n, input, NULL) >= 0;
    if (!ok) {
        bench_note("warm-up of %s failed", name);
    }
    return ok;
}

/* ---- hello5 ---- */

int bench_hello5(const bench_opts *o)
{
    size_t n = bench_scaled(o, 5000);
    bench_setup s;
    if (!bench_setup_open(o, "bench_h5", 0, &s)) {
        return 1;
    }
    double ops[16], aps[16], pub[16];
    bench_cpu cpu[16];
    int ok_runs = 0;
    if (bench_warm_up(&s, "hello5", n < WARMUP_N ? n : WARMUP_N, NULL)) {
        for (int r = 0; r < o->runs && r < 16; r++) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "h5r%d", r);
            bench_cpu before;
            cpu_sample(o, &s, &before);
            double ms = run_round(&s, "hello5", prefix, n, NULL, &pub[ok_runs]);
            if (ms <= 0) {
                break;
            }
            cpu_since(o, &s, &before, n, &cpu[ok_runs]);
            ops[ok_runs] = (double)n / (ms / 1000.0);
            aps[ok_runs] = ops[ok_runs] * ACTIONS_HELLO5;
            bench_note("hello5 run %d: %zu orchestrations in %.0f ms (%.0f/s)", r, n, ms,
                       ops[ok_runs]);
            ok_runs++;
        }
    }
    bench_setup_close(&s);
    if (ok_runs == 0) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "hello5");
    bench_json_num(&j, "orchestrations_per_s", bench_median(ops, (size_t)ok_runs), 0);
    bench_json_num(&j, "actions_per_s", bench_median(aps, (size_t)ok_runs), 0);
    bench_json_int(&j, "n", (long long)n);
    bench_json_nums(&j, "orchestrations_per_s_runs", ops, (size_t)ok_runs, 0);
    bench_json_num(&j, "start_publish_ms", bench_median(pub, (size_t)ok_runs), 1);
    bench_json_str(&j, "start", "publish-to-start, all at once (async, one window)");
    cpu_report(&j, o, "orch", cpu, ok_runs);
    bench_settings(&j, o, o->cache, o->runs);
    bench_json_end(&j);
    return ok_runs == o->runs ? 0 : 1;
}

/* ---- latency3 ---- */

/* One instance scheduled through the C client, completion seen by the status observer. */
static double one_latency(bench_setup *s, dt_client *c, const char *prefix, size_t i)
{
    char id[64];
    snprintf(id, sizeof(id), "%s-%zu", prefix, i);
    dt_client_start_options so = {.instance_id = id};
    double t0 = bench_now_ms();
    if (dt_client_schedule(c, "seq3", &so, NULL, 0) != DT_OK) {
        bench_note("schedule: %s", dt_client_errmsg(c));
        return -1;
    }
    if (bench_observer_wait(s->ob, i + 1, true, 30000) < i + 1) {
        return -1;
    }
    return bench_observer_done_at(s->ob, i) - t0;
}

/* The same through the client's own wait (one KV watch created per call). */
static double one_api_latency(dt_client *c, const char *prefix, size_t i)
{
    char id[64];
    snprintf(id, sizeof(id), "%s-%zu", prefix, i);
    dt_client_start_options so = {.instance_id = id};
    double t0 = bench_now_ms();
    dt_client_instance *inst = NULL;
    if (dt_client_schedule(c, "seq3", &so, NULL, 0) != DT_OK ||
        dt_client_wait_for_completion(c, id, 30000, false, &inst) != DT_OK) {
        bench_note("schedule/wait: %s", dt_client_errmsg(c));
        return -1;
    }
    dt_client_instance_free(inst);
    return bench_now_ms() - t0;
}

typedef struct lat_stats {
    double p50[16], p90[16], p99[16], api50[16], api99[16];
    int runs;
} lat_stats;

static bool latency_run(bench_setup *s, dt_client *c, size_t n, size_t n_api, int r, lat_stats *ls)
{
    double *v = calloc(n, sizeof(*v)), *va = calloc(n_api, sizeof(*va));
    char prefix[32], prefix_api[32];
    snprintf(prefix, sizeof(prefix), "l3r%d", r);
    snprintf(prefix_api, sizeof(prefix_api), "l3a%d", r);
    bench_observer_round(s->ob, prefix, n);
    bool ok = v != NULL && va != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = (v[i] = one_latency(s, c, prefix, i)) >= 0;
    }
    for (size_t i = 0; ok && i < n_api; i++) {
        ok = (va[i] = one_api_latency(c, prefix_api, i)) >= 0;
    }
    if (ok) {
        ls->p50[ls->runs] = bench_percentile(v, n, 50);
        ls->p90[ls->runs] = bench_percentile(v, n, 90);
        ls->p99[ls->runs] = bench_percentile(v, n, 99);
        ls->api50[ls->runs] = bench_percentile(va, n_api, 50);
        ls->api99[ls->runs] = bench_percentile(va, n_api, 99);
        bench_note("latency3 run %d: p50 %.2f p90 %.2f p99 %.2f ms (client wait p50 %.2f ms)", r,
                   ls->p50[ls->runs], ls->p90[ls->runs], ls->p99[ls->runs], ls->api50[ls->runs]);
        ls->runs++;
    }
    free(v);
    free(va);
    return ok;
}

static void latency_print(const bench_opts *o, lat_stats *ls, size_t n, size_t n_api)
{
    size_t k = (size_t)ls->runs;
    bench_json j;
    bench_json_begin(&j, "latency3");
    bench_json_num(&j, "p50_ms", bench_median(ls->p50, k), 2);
    bench_json_num(&j, "p90_ms", bench_median(ls->p90, k), 2);
    bench_json_num(&j, "p99_ms", bench_median(ls->p99, k), 2);
    bench_json_int(&j, "n", (long long)n);
    bench_json_nums(&j, "p50_ms_runs", ls->p50, k, 2);
    bench_json_nums(&j, "p90_ms_runs", ls->p90, k, 2);
    bench_json_nums(&j, "p99_ms_runs", ls->p99, k, 2);
    bench_json_str(&j, "measured",
                   "dt_client_schedule to the finished status record seen by a "
                   "status-bucket watch open before the start");
    bench_json_num(&j, "client_wait_p50_ms", bench_median(ls->api50, k), 2);
    bench_json_num(&j, "client_wait_p99_ms", bench_median(ls->api99, k), 2);
    bench_json_int(&j, "client_wait_n", (long long)n_api);
    bench_settings(&j, o, o->cache, o->runs);
    bench_json_end(&j);
}

int bench_latency3(const bench_opts *o)
{
    size_t n = bench_scaled(o, 500), n_api = bench_scaled(o, 100);
    bench_setup s;
    if (!bench_setup_open(o, "bench_l3", 0, &s)) {
        return 1;
    }
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = o->url;
    co.hub = s.hub.name;
    dt_client *c = NULL;
    char err[256];
    lat_stats ls = {.runs = 0};
    if (dt_client_create(&co, &c, err, sizeof(err)) != DT_OK) {
        bench_note("client: %s", err);
    } else if (bench_warm_up(&s, "seq3", 20, NULL)) {
        for (int r = 0; r < o->runs && r < 16; r++) {
            if (!latency_run(&s, c, n, n_api, r, &ls)) {
                break;
            }
        }
    }
    dt_client_destroy(c);
    bench_setup_close(&s);
    if (ls.runs > 0) {
        latency_print(o, &ls, n, n_api);
    }
    return ls.runs == o->runs ? 0 : 1;
}

/* ---- fanout10k ---- */

int bench_fanout10k(const bench_opts *o)
{
    size_t n = bench_scaled(o, 10000);
    char input[32];
    snprintf(input, sizeof(input), "%zu", n);
    bench_setup s;
    if (!bench_setup_open(o, "bench_fo", 0, &s)) {
        return 1;
    }
    double secs[16];
    bench_cpu cpu[16];
    int ok_runs = 0;
    if (bench_warm_up(&s, "fanout", 1, "100")) {
        for (int r = 0; r < o->runs && r < 16; r++) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "for%d", r);
            bench_cpu before;
            cpu_sample(o, &s, &before);
            double ms = run_round(&s, "fanout", prefix, 1, input, NULL);
            if (ms <= 0) {
                break;
            }
            cpu_since(o, &s, &before, n, &cpu[ok_runs]);
            secs[ok_runs++] = ms / 1000.0;
            bench_note("fanout10k run %d: %zu activities in %.3f s", r, n, ms / 1000.0);
        }
    }
    bench_setup_close(&s);
    if (ok_runs == 0) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "fanout10k");
    double med = bench_median(secs, (size_t)ok_runs);
    bench_json_num(&j, "seconds", med, 3);
    bench_json_int(&j, "n", (long long)n);
    bench_json_num(&j, "activities_per_s", (double)n / med, 0);
    bench_json_nums(&j, "seconds_runs", secs, (size_t)ok_runs, 3);
    bench_json_str(&j, "measured", "publish-to-start of one orchestration to its finished status");
    cpu_report(&j, o, "activity", cpu, ok_runs);
    bench_settings(&j, o, o->cache, o->runs);
    bench_json_end(&j);
    return ok_runs == o->runs ? 0 : 1;
}

/* ---- memory100k ---- */

int bench_memory100k(const bench_opts *o)
{
    size_t n = bench_scaled(o, 100000);
    bench_setup s;
    if (!bench_setup_open(o, "bench_mem", 0, &s)) {
        return 1;
    }
    double base_rss = 0, base_hwm = 0, rss = 0, hwm = 0;
    bench_rss_mib(s.w.pid, &base_rss, &base_hwm);
    bench_observer_round(s.ob, "mem", n);
    double t0 = bench_now_ms();
    bool ok = bench_start_many(&s.hub, "waiter", "mem", 0, n, NULL);
    size_t got = ok ? bench_observer_wait(s.ob, n, false, WAIT_MS) : 0;
    double ms = bench_now_ms() - t0;
    ok = ok && got == n;
    if (ok) {
        bench_sleep_ms(1000); /* let the last batch's memory settle */
        ok = bench_rss_mib(s.w.pid, &rss, &hwm);
    } else {
        bench_note("memory100k: only %zu of %zu instances reached RUNNING", got, n);
    }
    size_t cache = s.w.cache ? s.w.cache : 1000;
    bench_setup_close(&s);
    if (!ok) {
        return 1;
    }
    bench_note("memory100k: %zu waiting, RSS %.1f MiB (peak %.1f, idle %.1f)", n, rss, hwm,
               base_rss);
    bench_json j;
    bench_json_begin(&j, "memory100k");
    bench_json_num(&j, "rss_mib", rss, 1);
    bench_json_int(&j, "n", (long long)n);
    bench_json_num(&j, "peak_rss_mib", hwm, 1);
    bench_json_num(&j, "idle_rss_mib", base_rss, 1);
    bench_json_int(&j, "cached_instances_max", (long long)(cache * o->partitions));
    bench_json_num(&j, "starts_per_s", (double)n / (ms / 1000.0), 0);
    bench_json_str(&j, "measured",
                   "VmRSS of the worker process once every instance is RUNNING "
                   "(waiting for an event)");
    bench_settings(&j, o, cache, 1);
    bench_json_end(&j);
    return 0;
}
