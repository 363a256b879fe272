/*
 * dt-samples: runs samples against a task hub served by dt-samples-worker processes, through the
 * C client. For each sample it starts the instances, waits for them, prints each outcome and
 * checks it against the expected one; then, with --burst N, it starts N hello_cities instances at
 * once and prints the throughput. Exit status: 0 when every outcome was the expected one, 1
 * otherwise, 2 for a usage error, 3 when NATS or the hub cannot be reached.
 *
 *   dt-samples [--url URL] [--hub HUB] [--width N] [--burst N] [--timeout-ms N] [SAMPLE...]
 *   dt-samples --list
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "durabletask/library.h"
#include "sample_client.h"
#include "samples.h"

static const char usage[] =
    "usage: dt-samples [--url URL] [--hub HUB] [--width N] [--burst N] [--timeout-ms N]\n"
    "                  [SAMPLE... | all]\n"
    "       dt-samples --list\n"
    "Runs the samples (default: all) against workers of the hub (dt-samples-worker) and prints\n"
    "each instance's outcome. --width: activities of the fan-out sample (default 100); --burst N:\n"
    "afterwards start N hello_cities at once and print the throughput; --timeout-ms: how long to\n"
    "wait for one instance (default 60000). Defaults: $DT_NATS_URL or nats://127.0.0.1:4222,\n"
    "$DT_HUB or samples. Credentials and TLS come from $DT_NATS_CREDS, $DT_NATS_NKEY,\n"
    "$DT_NATS_TOKEN, $DT_NATS_USER/$DT_NATS_PASSWORD, $DT_NATS_CA, $DT_NATS_CERT/$DT_NATS_KEY.\n";

typedef struct args {
    const char *url, *hub;
    dt_nats_security sec; /* from the DT_NATS_* variables */
    long width, burst, timeout_ms;
    const sample *chosen[16]; /* more than the samples there are */
    size_t nchosen;
} args;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static bool parse_number(const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    long n = v != NULL ? strtol(v, &end, 10) : 0;
    if (v == NULL || *end != '\0' || n < lo || n > hi) {
        return false;
    }
    *out = n;
    return true;
}

/* Adds `s` to the chosen samples unless it is there already (instance IDs are per sample). */
static void add_sample(args *a, const sample *s)
{
    for (size_t i = 0; i < a->nchosen; i++) {
        if (a->chosen[i] == s) {
            return;
        }
    }
    a->chosen[a->nchosen++] = s; /* room for every sample */
}

/* 0: run; 1: exit 0 (--list, --help); 2: usage error. */
static int parse_args(int argc, char **argv, args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(o, "--list") == 0) {
            for (size_t k = 0; samples_all[k] != NULL; k++) {
                printf("%-20s %s\n", samples_all[k]->name, samples_all[k]->title);
            }
            return 1;
        } else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            printf("%s", usage);
            return 1;
        } else if (strcmp(o, "--url") == 0 || strcmp(o, "--hub") == 0) {
            ok = v != NULL;
            *(o[2] == 'u' ? &a->url : &a->hub) = v;
            i++;
        } else if (strcmp(o, "--width") == 0) {
            ok = parse_number(v, 1, 10000, &a->width), i++;
        } else if (strcmp(o, "--burst") == 0) {
            ok = parse_number(v, 0, 100000, &a->burst), i++;
        } else if (strcmp(o, "--timeout-ms") == 0) {
            ok = parse_number(v, 1, 3600000, &a->timeout_ms), i++;
        } else if (strcmp(o, "all") == 0) {
            a->nchosen = 0;
        } else if (samples_find(o) != NULL) {
            add_sample(a, samples_find(o));
        } else {
            fprintf(stderr, "dt-samples: unknown argument '%s' (dt-samples --list)\n", o);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "dt-samples: bad value for %s\n%s", o, usage);
            return 2;
        }
    }
    return 0;
}

/* Connects and makes sure the hub exists (created with the default settings when missing). */
static dt_client *connect_hub(const args *a)
{
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = a->url;
    o.security = a->sec;
    o.hub = a->hub;
    o.connection_name = "dt-samples";
    dt_client *c = NULL;
    char err[256];
    if (dt_client_create(&o, &c, err, sizeof(err)) != DT_OK) {
        fprintf(stderr, "dt-samples: %s\n", err);
        return NULL;
    }
    dt_client_hub_info info;
    dt_status st = dt_client_hub_get(c, &info);
    if (st == DT_ENOTFOUND) {
        st = dt_client_hub_create(c, NULL, &info);
    }
    if (st != DT_OK) {
        fprintf(stderr, "dt-samples: hub %s: %s\n", a->hub, dt_client_errmsg(c));
        dt_client_destroy(c);
        return NULL;
    }
    return c;
}

/* Runs the chosen samples; returns how many did not end as expected. */
static int run_samples(const args *a, sample_run *r)
{
    const sample *const *list = a->nchosen > 0 ? a->chosen : samples_all;
    size_t n = a->nchosen > 0 ? a->nchosen : SIZE_MAX;
    int failed = 0, count = 0;
    double t0 = now_s();
    for (size_t i = 0; i < n && list[i] != NULL; i++, count++) {
        printf("%s: %s\n", list[i]->name, list[i]->title);
        fflush(stdout);
        bool ok = list[i]->run(r);
        printf("  %s\n", ok ? "ok" : "FAILED: not the expected outcome");
        failed += ok ? 0 : 1;
    }
    printf("samples: %d run, %d as expected, %d instances, %.1f s\n", count, count - failed,
           r->instances, now_s() - t0);
    return failed;
}

int main(int argc, char **argv)
{
    args a = {.url = env_or("DT_NATS_URL", "nats://127.0.0.1:4222"),
              .hub = env_or("DT_HUB", "samples"),
              .width = 100,
              .timeout_ms = 60000};
    dt_nats_security_from_env(&a.sec);
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    dt_client *c = connect_hub(&a);
    if (c == NULL) {
        return 3;
    }
    /* A tag unique to this run keeps instance IDs apart from earlier runs' on the same hub. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long x =
        ((unsigned long)ts.tv_sec * 1000UL + (unsigned long)ts.tv_nsec / 1000000UL) * 31UL +
        (unsigned long)getpid();
    char tag[8];
    for (int i = 0; i < 6; i++, x /= 36) {
        tag[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
    }
    tag[6] = '\0';
    sample_run r = {.client = c,
                    .nats_url = a.url,
                    .security = &a.sec,
                    .hub = a.hub,
                    .tag = tag,
                    .width = (int)a.width,
                    .timeout_ms = a.timeout_ms,
                    .out = stdout};
    char shown[256];
    printf("dt-samples: hub %s at %s, run %s\n", a.hub,
           dt_nats_url_redact(a.url, shown, sizeof(shown)), tag);
    int failed = run_samples(&a, &r);
    if (a.burst > 0 && !sample_burst(&r, a.burst)) {
        failed++;
    }
    dt_client_destroy(c);
    dt_library_shutdown(); /* nats.c's library-wide state: a clean exit for leak checkers */
    return failed == 0 ? 0 : 1;
}
