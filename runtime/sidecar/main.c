/*
 * dt-sidecar: serves the Durable Task SDKs' gRPC endpoint (TaskHubSidecarService) for one hub,
 * so that .NET, JavaScript, Python, Java and Go Durable Task apps run against it unchanged
 * (docs/sdk.md). Runs until SIGINT or SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "sidecar.h"

#define MAX_ACTIVITIES 256

static void usage(FILE *f)
{
    fprintf(f, "usage: dt-sidecar --hub HUB [options]\n"
               "  --url URL          NATS server(s) (default nats://127.0.0.1:4222)\n"
               "  --hub HUB          the task hub (created with defaults when missing)\n"
               "  --listen HOST:PORT gRPC address, HTTP/2 cleartext (default 127.0.0.1:4001)\n"
               "  --data-dir DIR     the worker's partition stores (default ./dt-sidecar-data)\n"
               "  --activity NAME    an activity the SDK workers serve (repeat for each)\n"
               "  --client-only      no worker: client RPCs only\n"
               "  --max-message N    largest gRPC message in bytes (default 4194304)\n");
}

/* Parses argv into o; activity names point into argv. Returns 0, 1 (bad usage) or 2 (--help). */
static int parse(int argc, char **argv, dt__sidecar_options *o, const char **acts)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return 2;
        }
        if (strcmp(a, "--client-only") == 0) {
            o->client_only = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "dt-sidecar: %s needs a value\n", a);
            return 1;
        }
        i++;
        int64_t n;
        if (strcmp(a, "--url") == 0) {
            o->nats_url = v;
        } else if (strcmp(a, "--hub") == 0) {
            o->hub = v;
        } else if (strcmp(a, "--listen") == 0) {
            o->listen = v;
        } else if (strcmp(a, "--data-dir") == 0) {
            o->data_dir = v;
        } else if (strcmp(a, "--activity") == 0 && o->n_activities < MAX_ACTIVITIES) {
            acts[o->n_activities++] = v;
        } else if (strcmp(a, "--max-message") == 0 && dt__parse_i64(v, 1024, 1 << 30, &n)) {
            o->max_message = (size_t)n;
        } else {
            fprintf(stderr, "dt-sidecar: bad option %s %s\n", a, v);
            return 1;
        }
    }
    if (o->hub == NULL) {
        fprintf(stderr, "dt-sidecar: --hub is required\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *acts[MAX_ACTIVITIES];
    dt__sidecar_options o = {.data_dir = "dt-sidecar-data", .activities = acts};
    int rc = parse(argc, argv, &o, acts);
    if (rc != 0) {
        usage(rc == 2 ? stdout : stderr);
        return rc == 2 ? 0 : 2;
    }
    /* Every thread started from here on inherits the mask: only sigwait below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    dt__sidecar *s = NULL;
    char err[512] = "";
    dt_status st = dt__sidecar_start(&o, &s, err, sizeof err);
    if (st != DT_OK) {
        fprintf(stderr, "dt-sidecar: %s (%s)\n", err, dt_status_name(st));
        return 1;
    }
    fprintf(stderr, "dt-sidecar: hub %s, serving TaskHubSidecarService on port %d\n", o.hub,
            dt__sidecar_port(s));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "dt-sidecar: signal %d, stopping\n", sig);
    dt__sidecar_stop(s);
    return 0;
}
