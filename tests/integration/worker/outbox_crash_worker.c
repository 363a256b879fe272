/*
 * outbox_crash_worker: a worker process for test_outbox_crash.
 * Usage: outbox_crash_worker URL HUB DATA_DIR
 *
 * Orchestration "steps3": the activities "step" 1, 2 and 3 in sequence; output "[1][2][3]".
 * Runs until SIGTERM or SIGINT, then stops gracefully and exits 0. The test kills it with the
 * partition's fault injection (DT_TEST_CRASH_OUTBOX, Debug builds:
 * runtime/worker/partition/partition.c).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "durabletask/worker.h"

static void steps3(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char out[64] = "";
    for (int i = 1; i <= 3; i++) {
        char in[8];
        int n = snprintf(in, sizeof(in), "%d", i);
        const char *r = dt_await(ctx, dt_call_activity(ctx, "step", in, (size_t)n, NULL), NULL);
        strncat(out, r, sizeof(out) - strlen(out) - 1);
    }
    dt_orch_set_output(ctx, out, strlen(out));
}

static void step(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char out[16];
    int n = snprintf(out, sizeof(out), "[%.*s]", (int)len, in);
    dt_activity_set_output(ctx, out, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: outbox_crash_worker URL HUB DATA_DIR\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: sigwait below */
    dt_worker_options o = {.nats_url = argv[1], .hub = argv[2], .data_dir = argv[3]};
    o.activity_timeout_ms = 2000; /* the killed step comes back soon */
    dt_worker *w = NULL;
    char err[256];
    if (dt_worker_create(&o, &w, err, sizeof(err)) != DT_OK) {
        fprintf(stderr, "outbox_crash_worker: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (dt_worker_add_orchestrator(w, "steps3", steps3, NULL) != DT_OK ||
        dt_worker_add_activity(w, "step", NULL, step, NULL) != DT_OK ||
        dt_worker_start(w) != DT_OK) {
        fprintf(stderr, "outbox_crash_worker: %s\n", dt_worker_errmsg(w));
        rc = 1;
    } else {
        int sig = 0;
        sigwait(&set, &sig);
        dt_worker_stop(w, 5000);
    }
    dt_worker_destroy(w);
    return rc;
}
