/*
 * chaos_worker: a worker process for the chaos test. Usage: chaos_worker URL HUB DATA_DIR
 *
 * Orchestrations (input: the instance's number as text):
 *   chain    three activities in sequence
 *   fanout   five activities at once, summed
 *   timer    a durable timer, then an activity
 *   event    waits for the event "go", then an activity
 *   loop     continues as new after each of three "add" events (keeping unconsumed events),
 *            summing their values (input "<n> <seen> <sum>")
 *   parent   two sub-orchestrations "child" (an activity each), with default IDs, summed
 * Each root ends with one durable publish to chaos.<hub>.fx (body: instance ID), the side effect
 * the test counts, and returns a deterministic output the test checks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "durabletask/worker.h"

static char fx_subject[256];

static long input_num(dt_orch_ctx *ctx)
{
    const char *in = dt_orch_input(ctx, NULL);
    return in != NULL ? strtol(in, NULL, 10) : 0;
}

static long await_num(dt_orch_ctx *ctx, dt_task *t)
{
    return strtol(dt_await(ctx, t, NULL), NULL, 10);
}

static dt_task *call_add(dt_orch_ctx *ctx, long a, long b)
{
    char in[64];
    int n = snprintf(in, sizeof(in), "%ld %ld", a, b);
    return dt_call_activity(ctx, "add", in, (size_t)n, NULL);
}

static void finish(dt_orch_ctx *ctx, long result)
{
    const char *id = dt_orch_instance_id(ctx);
    dt_publish(ctx, fx_subject, NULL, NULL, 0, id, strlen(id));
    char out[64];
    int n = snprintf(out, sizeof(out), "%ld", result);
    dt_orch_set_output(ctx, out, (size_t)n);
}

static void chain(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long v = input_num(ctx);
    for (int i = 1; i <= 3; i++) {
        v = await_num(ctx, call_add(ctx, v, i));
    }
    finish(ctx, v);
}

static void fanout(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long v = input_num(ctx);
    dt_task *t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = call_add(ctx, v, i);
    }
    dt_await(ctx, dt_when_all(ctx, t, 5), NULL);
    long sum = 0;
    for (int i = 0; i < 5; i++) {
        sum += strtol(dt_task_output(t[i], NULL), NULL, 10);
    }
    finish(ctx, sum);
}

static void timer(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_sleep(ctx, 1500), NULL);
    finish(ctx, await_num(ctx, call_add(ctx, input_num(ctx), 1000)));
}

static void event(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long go = strtol(dt_await(ctx, dt_wait_event(ctx, "go"), NULL), NULL, 10);
    finish(ctx, await_num(ctx, call_add(ctx, input_num(ctx), go)));
}

static void loop(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long n = 0, seen = 0, sum = 0;
    const char *in = dt_orch_input(ctx, NULL);
    if (in == NULL || sscanf(in, "%ld %ld %ld", &n, &seen, &sum) < 1) {
        dt_orch_fail(ctx, "chaos.BadInput", "bad loop input", NULL);
    }
    sum += strtol(dt_await(ctx, dt_wait_event(ctx, "add"), NULL), NULL, 10);
    if (++seen == 3) {
        finish(ctx, sum);
        return;
    }
    char next[96];
    int len = snprintf(next, sizeof(next), "%ld %ld %ld", n, seen, sum);
    dt_continue_as_new(ctx, next, (size_t)len, true);
}

static void child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long v = await_num(ctx, call_add(ctx, input_num(ctx), 7));
    char out[64];
    int n = snprintf(out, sizeof(out), "%ld", v);
    dt_orch_set_output(ctx, out, (size_t)n);
}

static void parent(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long v = input_num(ctx);
    char a[32], b[32];
    int na = snprintf(a, sizeof(a), "%ld", v), nb = snprintf(b, sizeof(b), "%ld", v + 1);
    dt_task *t[2] = {dt_call_sub_orchestrator(ctx, "child", a, (size_t)na, NULL),
                     dt_call_sub_orchestrator(ctx, "child", b, (size_t)nb, NULL)};
    dt_await(ctx, dt_when_all(ctx, t, 2), NULL);
    finish(ctx, strtol(dt_task_output(t[0], NULL), NULL, 10) +
                    strtol(dt_task_output(t[1], NULL), NULL, 10));
}

static void add(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    long a = 0, b = 0;
    const char *in = dt_activity_input(ctx, NULL);
    char *end = NULL;
    a = strtol(in, &end, 10);
    b = strtol(end, NULL, 10);
    char out[64];
    int n = snprintf(out, sizeof(out), "%ld", a + b);
    dt_activity_set_output(ctx, out, (size_t)n);
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static char log_name[64];

static void log_line(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)ctx;
    /* INFO too with DT_CHAOS_WORKER_INFO=1 (the stale-owner test watches takeovers). */
    static int info = -1;
    if (info < 0) {
        const char *v = getenv("DT_CHAOS_WORKER_INFO");
        info = v != NULL && strcmp(v, "1") == 0;
    }
    if (level >= DT_LOG_WARN || (info && level >= DT_LOG_INFO)) {
        dt_worker_log_stderr(level, instance_id, msg, log_name);
    }
}

static dt_worker *make_worker(const dt_worker_options *o)
{
    dt_worker *w = NULL;
    char err[256];
    if (dt_worker_create(o, &w, err, sizeof(err)) != DT_OK) {
        fprintf(stderr, "chaos_worker: %s\n", err);
        exit(1);
    }
    dt_worker_add_orchestrator(w, "chain", chain, NULL);
    dt_worker_add_orchestrator(w, "fanout", fanout, NULL);
    dt_worker_add_orchestrator(w, "timer", timer, NULL);
    dt_worker_add_orchestrator(w, "event", event, NULL);
    dt_worker_add_orchestrator(w, "loop", loop, NULL);
    dt_worker_add_orchestrator(w, "parent", parent, NULL);
    dt_worker_add_orchestrator(w, "child", child, NULL);
    dt_worker_add_activity(w, "add", NULL, add, NULL);
    return w;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: chaos_worker URL HUB DATA_DIR\n");
        return 1;
    }
    snprintf(fx_subject, sizeof(fx_subject), "chaos.%s.fx", argv[2]);
    snprintf(log_name, sizeof(log_name), "chaos_worker[%d]", (int)getpid());
    dt_worker_options o = {.nats_url = argv[1],
                           .hub = argv[2],
                           .data_dir = argv[3],
                           .log = log_line,
                           .activity_threads = 2};
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    /* Blocked before any thread starts (they inherit the mask), so that only this thread takes
     * them, in sigsuspend below: with pause(), a SIGTERM handled by one of the worker's threads
     * left this one paused, and the test waited for the process for good. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    dt_worker *w = make_worker(&o);
    /* The broker may be restarting when we start: keep trying. */
    while (!stop && dt_worker_start(w) != DT_OK) {
        dt_worker_destroy(w);
        struct timespec ts = {0, 200 * 1000000L};
        if (sigtimedwait(&term, NULL, &ts) > 0) {
            stop = 1;
        }
        w = make_worker(&o);
    }
    while (!stop) {
        sigsuspend(&old);
    }
    dt_worker_destroy(w);
    return 0;
}
