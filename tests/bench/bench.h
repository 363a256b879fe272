/*
 * bench.h: the benchmark program dt_bench (tests/bench), run by scripts/bench.
 *
 * dt_bench is a program that prints figures, not a test: each workload prints one JSON line on
 * stdout (figures and the settings that produced them); progress goes to stderr. Workloads that
 * need a worker run it as a separate process (this same executable, mode "worker"), so that its
 * RSS and its CPU profile are its own; the driver process starts orchestrations the way users do
 * (publish-to-start, or the C client) and observes completions through the status bucket.
 *
 * Files: bench_main.c (arguments, dispatch), bench_util.c (clock, statistics, JSON lines),
 * bench_env.c (hub, worker process, status observer), bench_worker.c (the worker process),
 * bench_flow.c (hello5, latency3, fanout10k, memory100k), bench_client.c (client16,
 * client_lone: the C client's start and wait), bench_replay.c (replay10k, in-process engine) and
 * bench_broker.c (broker_limit).
 *
 * Threads: everything runs on the main thread except the status observer (one thread), the
 * broker_limit roles (three threads) and client16's 16 client threads.
 */
#ifndef DT_BENCH_H
#define DT_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dt_broker.h"

/* ---- settings of one dt_bench invocation ---- */

typedef struct bench_opts {
    const char *url;         /* nats-server URL (required for every workload but replay10k) */
    const char *tmpdir;      /* where worker data directories go */
    double scale;            /* 1.0; --quick: 0.1 */
    int runs;                /* repetitions of each workload (median reported); default 3 */
    uint32_t partitions;     /* hub partitions (default 4, the hub default) */
    size_t activity_threads; /* worker option (0: the worker default) */
    size_t cache;            /* worker cache_capacity per partition (0: the worker default) */
    size_t fetch_batch;      /* worker fetch_batch (0: the worker default) */
    const char *self;        /* path of this executable (for the worker process) */
    pid_t broker_pid;        /* the nats-server's pid when known (CPU accounting), else 0 */
    size_t clients;          /* client16: dt_client handles its 16 threads share (default 1) */
} bench_opts;

/* ---- clock, statistics, output (bench_util.c) ---- */

/* Monotonic time in milliseconds, with sub-millisecond precision. */
double bench_now_ms(void);
/* Sorts v[0..n) in place and returns the nearest-rank percentile q (0..100); 0 when n is 0. */
double bench_percentile(double *v, size_t n, double q);
/* The median of v[0..n) (sorts in place). */
double bench_median(double *v, size_t n);
/* Scales a workload size, at least 1. */
size_t bench_scaled(const bench_opts *o, size_t full);
/* Sleeps ms milliseconds. */
void bench_sleep_ms(int64_t ms);
/* Writes a progress line to stderr. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A JSON object built field by field into a fixed buffer, printed as one line. */
typedef struct bench_json {
    char buf[4096];
    size_t len;
} bench_json;

void bench_json_begin(bench_json *j, const char *workload);
void bench_json_num(bench_json *j, const char *key, double v, int decimals);
void bench_json_int(bench_json *j, const char *key, long long v);
void bench_json_str(bench_json *j, const char *key, const char *v);
/* "key":[v0,v1,...] */
void bench_json_nums(bench_json *j, const char *key, const double *v, size_t n, int decimals);
/* Closes the object and prints it (with a newline) on stdout, flushed. */
void bench_json_end(bench_json *j);

/* ---- the environment of broker workloads (bench_env.c) ---- */

/* Memory of a process from /proc/<pid>/status, in MiB (VmRSS and VmHWM); false on failure. */
bool bench_rss_mib(pid_t pid, double *rss, double *hwm);

/* CPU time (user + system) a process used so far, in ms (10 ms resolution); false on failure. */
bool bench_cpu_ms(pid_t pid, double *ms);

/* CPU time of the worker, the broker (when its pid is known) and this process (the driver and
 * its observer thread), sampled at the start of a measurement. */
typedef struct bench_cpu {
    double worker, broker, driver;
    double worker_switches; /* the worker's context switches (voluntary + involuntary) */
} bench_cpu;

/* Context switches of a process so far (all its threads); false on failure. */
bool bench_ctx_switches(pid_t pid, double *out);

/* A hub with a fresh random name, created with `partitions` partitions and otherwise default
 * (file storage, one replica). */
typedef struct bench_hub {
    dt_broker *broker;
    char name[64];
    uint32_t partitions;
} bench_hub;

bool bench_hub_create(const bench_opts *o, const char *prefix, bench_hub *h);
/* Deletes the hub's streams and buckets, closes the connection. */
void bench_hub_destroy(bench_hub *h);

/* A worker process (dt_bench worker ...) serving a hub, with its own data directory. */
typedef struct bench_worker {
    pid_t pid;
    char data_dir[512];
    size_t cache; /* cache_capacity per partition it was given (0: default) */
} bench_worker;

/*
 * Starts a worker process on hub `h` and waits until it holds the lease of every partition.
 * `cache` overrides o->cache when non-zero. Returns false (after stopping it) on failure.
 */
bool bench_worker_start(const bench_opts *o, const bench_hub *h, size_t cache, bench_worker *w);
/* SIGTERM, wait for exit (SIGKILL after 15 s), remove the data directory. A worker that did not
 * exit with status 0 is reported (stderr) and counted. */
void bench_worker_stop(bench_worker *w);
/* Workers that crashed, were killed or exited non-zero so far: dt_bench then exits 1. */
int bench_worker_failures(void);

/* Publish-to-start (dt.<hub>.in.start.<name>, header Dt-Instance-Id) of instances
 * "<prefix>-<i>" for i in [first, first + n), asynchronously in one window. Input (may be NULL)
 * is the body of every start. Returns false on a failed publish. */
bool bench_start_many(bench_hub *h, const char *name, const char *prefix, size_t first, size_t n,
                      const char *input);

/*
 * The status observer: a thread watching every key of the hub's status bucket (one KV watch,
 * updates only) that records, for the instances "<prefix>-<i>" of the current round, when their
 * first RUNNING-or-later record and their finished record were seen (bench_now_ms() times).
 */
typedef struct bench_observer bench_observer;

bool bench_observer_start(const bench_opts *o, bench_hub *h, bench_observer **out);
void bench_observer_stop(bench_observer *ob);
/* Starts a round: instances "<prefix>-<0..n)"; earlier rounds are forgotten. */
void bench_observer_round(bench_observer *ob, const char *prefix, size_t n);
/* Waits until `count` instances finished (want_finished) or reached RUNNING (otherwise), at most
 * timeout_ms, and at most 60 s without any progress. Returns the count reached. */
size_t bench_observer_wait(bench_observer *ob, size_t count, bool want_finished,
                           int64_t timeout_ms);
/* The time instance i finished (0 when not seen), and how many failed (not COMPLETED). */
double bench_observer_done_at(bench_observer *ob, size_t i);
size_t bench_observer_failed(bench_observer *ob);

/* A fresh hub, its status observer and one worker process (cache: see bench_worker_start). */
typedef struct bench_setup {
    bench_hub hub;
    bench_observer *ob;
    bench_worker w;
} bench_setup;

bool bench_setup_open(const bench_opts *o, const char *prefix, size_t cache, bench_setup *s);
void bench_setup_close(bench_setup *s);

/* bench_flow.c: runs n instances of `name` by publish-to-start ("warm-<i>") and waits for them;
 * false (with a note) if any did not complete. */
bool bench_warm_up(bench_setup *s, const char *name, size_t n, const char *input);
/* Starts n instances "<prefix>-<i>" of `name` (publish-to-start, at once) and waits for all:
 * the ms from the first publish to the last completion seen, negative on failure. */
double bench_round(bench_setup *s, const char *name, const char *prefix, size_t n,
                   const char *input);
/* The settings every end-to-end line reports (worker defaults written out). */
void bench_settings(bench_json *j, const bench_opts *o, size_t cache, int runs);

/* ---- workloads ---- */

int bench_worker_main(int argc, char **argv); /* bench_worker.c: the worker process */
int bench_hello5(const bench_opts *o);        /* bench_flow.c */
int bench_latency3(const bench_opts *o);
int bench_fanout10k(const bench_opts *o);
int bench_memory100k(const bench_opts *o);
int bench_replay10k(const bench_opts *o);    /* bench_replay.c */
int bench_broker_limit(const bench_opts *o); /* bench_broker.c */
int bench_trace3(const bench_opts *o);       /* bench_trace.c (diagnostic) */
int bench_msgs5(const bench_opts *o);        /* bench_msgs.c (diagnostic) */
int bench_client16(const bench_opts *o);     /* bench_client.c */
int bench_client_lone(const bench_opts *o);
int bench_takeover(const bench_opts *o);        /* bench_takeover.c */
int bench_entity_counters(const bench_opts *o); /* bench_entity.c */
int bench_sdk_chain(const bench_opts *o);       /* bench_sdk.c */
/* bench_otlp_sink.c: DT_BENCH_TRACING (tracing on, spans to a receiver in the driver). */
void bench_tracing_start(void);
void bench_tracing_stop(void);

#endif
