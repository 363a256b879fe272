/*
 * trace_worker: a worker process for test_tracing_e2e.
 * Usage: trace_worker URL HUB DATA_DIR orch|act WORKER_ID
 *
 * Both roles register the orchestrations "traced" (activity "greet" twice, a 50 ms timer,
 * sub-orchestration "child"), "child" (activity "greet") and "waiter" (activity "greet", the
 * event "go", activity "greet" again), so that either can own the hub's partition (the test
 * picks worker IDs that give it to "orch" while it runs); only "act" runs the activity. Tracing
 * comes from the OTEL_* variables the test sets. Runs until SIGTERM or SIGINT, then stops
 * gracefully (which flushes its spans) and exits 0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "durabletask/worker.h"

static const char *greet_call(dt_orch_ctx *ctx, const char *who)
{
    return dt_await(ctx, dt_call_activity(ctx, "greet", who, strlen(who), NULL), NULL);
}

static void traced(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char out[256];
    const char *a = greet_call(ctx, "\"a\"");
    dt_await(ctx, dt_sleep(ctx, 50), NULL);
    const char *b = greet_call(ctx, "\"b\"");
    const char *c = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", NULL, 0, NULL), NULL);
    int n = snprintf(out, sizeof(out), "[%s,%s,%s]", a, b, c);
    dt_orch_set_output(ctx, out, (size_t)n);
}

static void child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *r = greet_call(ctx, "\"child\"");
    dt_orch_set_output(ctx, r, strlen(r));
}

static void waiter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    greet_call(ctx, "\"before\"");
    dt_await(ctx, dt_wait_event(ctx, "go"), NULL);
    const char *r = greet_call(ctx, "\"after\"");
    dt_orch_set_output(ctx, r, strlen(r));
}

static void greet(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char out[128];
    int n = snprintf(out, sizeof(out), "\"hi %.*s\"", (int)(len > 2 ? len - 2 : 0),
                     len > 2 ? in + 1 : "");
    dt_activity_set_output(ctx, out, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: trace_worker URL HUB DATA_DIR orch|act WORKER_ID\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: sigwait below */
    dt_worker_options o = {
        .nats_url = argv[1], .hub = argv[2], .data_dir = argv[3], .worker_id = argv[5]};
    dt_worker *w = NULL;
    char err[256];
    if (dt_worker_create(&o, &w, err, sizeof(err)) != DT_OK) {
        fprintf(stderr, "trace_worker: %s\n", err);
        return 1;
    }
    bool orch = strcmp(argv[4], "orch") == 0;
    dt_status st = dt_worker_add_orchestrator(w, "traced", traced, NULL);
    if (st == DT_OK) {
        st = dt_worker_add_orchestrator(w, "child", child, NULL);
    }
    if (st == DT_OK) {
        st = dt_worker_add_orchestrator(w, "waiter", waiter, NULL);
    }
    if (st == DT_OK && !orch) {
        st = dt_worker_add_activity(w, "greet", NULL, greet, NULL);
    }
    int rc = 0;
    if (st != DT_OK || dt_worker_start(w) != DT_OK) {
        fprintf(stderr, "trace_worker: %s\n", dt_worker_errmsg(w));
        rc = 1;
    } else {
        int sig = 0;
        sigwait(&set, &sig);
        dt_worker_stop(w, 5000);
    }
    dt_worker_destroy(w);
    return rc;
}
