/*
 * dt-samples-worker: one worker process that registers every sample's orchestrations and
 * activities and runs until SIGINT or SIGTERM, then stops gracefully (running work finishes, its
 * partitions are handed over at once). Start several, sharing the data directory, for a fleet.
 *
 *   dt-samples-worker [--url URL] [--hub HUB] [--data DIR] [--id ID] [--threads N] [--verbose]
 *
 * Defaults come from DT_NATS_URL (nats://127.0.0.1:4222), DT_HUB ("samples") and DT_DATA_DIR
 * ("dt-samples-data"); credentials and TLS from the DT_NATS_* variables of
 * dt_nats_security_from_env (docs/operations.md). When no NATS server is up yet it waits for one
 * (DT_CONNECT_ATTEMPTS limits the attempts; default unlimited), and SIGINT or SIGTERM end the
 * wait. Prints one "ready" line on stdout once it has joined the fleet.
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
    "          $DT_DATA_DIR or dt-samples-data (workers of one fleet share it).\n"
    "Credentials and TLS: $DT_NATS_CREDS, $DT_NATS_NKEY, $DT_NATS_TOKEN, $DT_NATS_USER and\n"
    "$DT_NATS_PASSWORD, $DT_NATS_CA, $DT_NATS_CERT and $DT_NATS_KEY. $DT_CONNECT_ATTEMPTS: how\n"
    "often to try to reach NATS at start (default: until it answers).\n"
    "$DT_RECREATE_MISSING_STORES=1: start a partition whose store file is missing empty, even\n"
    "when the hub has history for it (its instances are lost; docs/operations.md).\n"
    "$DT_METRICS_ADDR (host:port, :port): serve Prometheus metrics at /metrics there (each\n"
    "worker of a host needs its own port; docs/operations.md, \"Metrics\").\n";

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

typedef struct stopper {
    sigset_t set;
    dt_worker *w;
    int sig;     /* the signal received */
    bool failed; /* atomic: start failed, the signal is main's own */
} stopper;

/* Waits for SIGINT or SIGTERM, then stops the worker: also while dt_worker_start still waits for
 * a NATS server, which then returns DT_ECLOSED. SIGUSR1 is main's own wake-up (start failed). */
static void *stopper_main(void *arg)
{
    stopper *st = arg;
    sigwait(&st->set, &st->sig);
    if (!__atomic_load_n(&st->failed, __ATOMIC_ACQUIRE)) {
        printf("dt-samples-worker: %s: stopping\n", st->sig == SIGINT ? "SIGINT" : "SIGTERM");
        fflush(stdout);
    }
    dt_worker_stop(st->w, 10000);
    return NULL;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    dt_worker_options o = {.nats_url = env_or("DT_NATS_URL", "nats://127.0.0.1:4222"),
                           .hub = env_or("DT_HUB", "samples"),
                           .data_dir = env_or("DT_DATA_DIR", "dt-samples-data"),
                           .connect_attempts =
                               (uint32_t)strtoul(env_or("DT_CONNECT_ATTEMPTS", "0"), NULL, 10),
                           .log = log_line,
                           .log_ctx = &verbose,
                           .metrics_addr = getenv("DT_METRICS_ADDR")}; /* NULL: no metrics */
    dt_nats_security_from_env(&o.security);
    if (!parse_args(argc, argv, &o, &verbose)) {
        return 2;
    }
    /* Block the stop signals before any thread exists, so that all threads inherit the mask and
     * the stopper's sigwait is the only place they are received. */
    stopper st = {.sig = 0};
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    sigaddset(&st.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &st.set, NULL);

    char err[512];
    if (dt_worker_create(&o, &st.w, err, sizeof(err)) != DT_OK) {
        dt_worker_log_stderr(DT_LOG_ERROR, NULL, err, "dt-samples-worker");
        return 1;
    }
    pthread_t stopper_thread;
    if (pthread_create(&stopper_thread, NULL, stopper_main, &st) != 0) {
        dt_worker_log_stderr(DT_LOG_ERROR, NULL, "cannot start a thread", "dt-samples-worker");
        dt_worker_destroy(st.w);
        return 1;
    }
    int rc = 0;
    if (samples_add_all(st.w) != DT_OK || dt_worker_start(st.w) != DT_OK) {
        dt_worker_log_stderr(DT_LOG_ERROR, NULL, dt_worker_errmsg(st.w), "dt-samples-worker");
        rc = 1;
        __atomic_store_n(&st.failed, true, __ATOMIC_RELEASE);
        pthread_kill(stopper_thread, SIGUSR1); /* ends its sigwait unless a signal did */
    } else {
        char shown[256];
        printf("dt-samples-worker: ready: worker %s, hub %s, %s, data %s\n", dt_worker_id(st.w),
               o.hub, dt_nats_url_redact(o.nats_url, shown, sizeof(shown)), o.data_dir);
        fflush(stdout);
    }
    pthread_join(stopper_thread, NULL);
    dt_worker_destroy(st.w);
    return rc;
}
