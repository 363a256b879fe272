/*
 * dt-samples-worker: one worker process that registers every sample's orchestrations and
 * activities and runs until SIGINT or SIGTERM, then stops gracefully (running work finishes, its
 * partitions are handed over at once). Start several, sharing the data directory, for a fleet.
 *
 *   dt-samples-worker [--url URL] [--hub HUB] [--data DIR] [--id ID] [--threads N] [--verbose]
 *
 * Defaults come from DT_NATS_URL (nats://127.0.0.1:4222), DT_HUB ("samples") and DT_DATA_DIR
 * ("dt-samples-data"). Prints one "ready" line on stdout once it has joined the fleet.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "samples.h"

static const char usage[] =
    "usage: dt-samples-worker [--url URL] [--hub HUB] [--data DIR] [--id ID] [--threads N]\n"
    "                         [--verbose]\n"
    "Runs the orchestrations and activities of every sample until SIGINT or SIGTERM.\n"
    "Defaults: $DT_NATS_URL or nats://127.0.0.1:4222, $DT_HUB or samples,\n"
    "          $DT_DATA_DIR or dt-samples-data (workers of one fleet share it).\n";

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

/* The worker's log sink: warnings and errors, everything with --verbose. Thread-safe (stdio). */
static void log_line(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    bool verbose = *(const bool *)ctx;
    if (verbose || level >= DT_LOG_WARN) {
        dt_worker_log_stderr(level, instance_id, msg, "dt-samples-worker");
    }
}

/* Fills `o` from the arguments; false (after printing why) on a bad one. */
static bool parse_args(int argc, char **argv, dt_worker_options *o, bool *verbose)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--verbose") == 0) {
            *verbose = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "%s", usage);
            return false;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            o->nats_url = v;
        } else if (strcmp(a, "--hub") == 0) {
            o->hub = v;
        } else if (strcmp(a, "--data") == 0) {
            o->data_dir = v;
        } else if (strcmp(a, "--id") == 0) {
            o->worker_id = v;
        } else if (strcmp(a, "--threads") == 0) {
            o->activity_threads = strtoul(v, NULL, 10);
        } else {
            fprintf(stderr, "%s", usage);
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    dt_worker_options o = {.nats_url = env_or("DT_NATS_URL", "nats://127.0.0.1:4222"),
                           .hub = env_or("DT_HUB", "samples"),
                           .data_dir = env_or("DT_DATA_DIR", "dt-samples-data"),
                           .log = log_line,
                           .log_ctx = &verbose};
    if (!parse_args(argc, argv, &o, &verbose)) {
        return 2;
    }
    /* Block the stop signals before any thread exists, so that all threads inherit the mask and
     * sigwait below is the only place they are received. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    dt_worker *w = NULL;
    char err[512];
    if (dt_worker_create(&o, &w, err, sizeof(err)) != DT_OK) {
        dt_worker_log_stderr(DT_LOG_ERROR, NULL, err, "dt-samples-worker");
        return 1;
    }
    int rc = 1;
    if (samples_add_all(w) != DT_OK || dt_worker_start(w) != DT_OK) {
        dt_worker_log_stderr(DT_LOG_ERROR, NULL, dt_worker_errmsg(w), "dt-samples-worker");
        goto out;
    }
    printf("dt-samples-worker: ready: worker %s, hub %s, %s, data %s\n", dt_worker_id(w), o.hub,
           o.nats_url, o.data_dir);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    printf("dt-samples-worker: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    dt_worker_stop(w, 10000);
    rc = 0;
out:
    dt_worker_destroy(w);
    return rc;
}
