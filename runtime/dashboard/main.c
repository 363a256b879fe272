/*
 * dt-dashboard: serves the web dashboard of one task hub (dashboard.h) until SIGINT or SIGTERM.
 * NATS credentials and TLS come from the DT_NATS_* variables, as for dtctl (docs/operations.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dashboard.h"

static const char usage[] =
    "usage: dt-dashboard [--url URL] [--hub HUB] [--listen ADDR] [--port N] [--token TOKEN]\n"
    "                    [--request-timeout-ms N]\n"
    "\n"
    "Serves the web dashboard of a task hub at http://ADDR:PORT/.\n"
    "  --url URL      NATS server URL(s) (default: $DT_NATS_URL, else nats://127.0.0.1:4222);\n"
    "                 credentials and TLS from $DT_NATS_CREDS, $DT_NATS_TOKEN, ... as for dtctl\n"
    "  --hub HUB      task hub (default: $DT_HUB, else \"default\")\n"
    "  --listen ADDR  numeric address to bind (default 127.0.0.1; ::1 for IPv6 loopback)\n"
    "  --port N       port (default 8082; 0: any free port, printed at start)\n"
    "  --token TOKEN  require \"Authorization: Bearer TOKEN\" on /api/ (default:\n"
    "                 $DT_DASHBOARD_TOKEN; prefer the variable: flags show in ps). Required\n"
    "                 when ADDR is not a loopback address.\n"
    "  --request-timeout-ms N   broker requests and partition queries (default 5000)\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static bool number(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Parses argv into o; returns -1 to go on, else an exit code. */
static int parse(int argc, char **argv, dt_dashboard_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (v == NULL) {
            fprintf(stderr, "dt-dashboard: %s needs a value\n%s", a, usage);
            return 1;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            o->nats_url = v;
        } else if (strcmp(a, "--hub") == 0) {
            o->hub = v;
        } else if (strcmp(a, "--listen") == 0) {
            o->bind_addr = v;
        } else if (strcmp(a, "--token") == 0) {
            o->token = v;
        } else if (strcmp(a, "--port") == 0 && number(v, 0, 65535, &n)) {
            o->port = n == 0 ? DT_DASHBOARD_PORT_ANY : (int32_t)n;
        } else if (strcmp(a, "--request-timeout-ms") == 0 && number(v, 1, 3600000, &n)) {
            o->request_timeout_ms = n;
        } else {
            fprintf(stderr, "dt-dashboard: bad argument %s %s\n%s", a, v, usage);
            return 1;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    dt_dashboard_options o;
    dt_dashboard_options_init(&o);
    o.nats_url = getenv("DT_NATS_URL");
    o.hub = getenv("DT_HUB") != NULL ? getenv("DT_HUB") : "default";
    o.token = getenv("DT_DASHBOARD_TOKEN");
    dt_nats_security_from_env(&o.security);
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for a valid signal and SIG_IGN */
    dt_dashboard *d = NULL;
    char err[512] = "";
    dt_status st = dt_dashboard_create(&o, &d, err, sizeof(err));
    if (st != DT_OK) {
        fprintf(stderr, "dt-dashboard: %s (%s)\n", err, dt_status_name(st));
        return 1;
    }
    const char *addr = o.bind_addr != NULL ? o.bind_addr : "127.0.0.1";
    bool v6 = strchr(addr, ':') != NULL;
    printf("dt-dashboard: serving hub %s at http://%s%s%s:%u/%s\n", o.hub, v6 ? "[" : "", addr,
           v6 ? "]" : "", (unsigned)dt_dashboard_port(d),
           o.token != NULL && o.token[0] != '\0' ? " (bearer token required)" : "");
    fflush(stdout);
    while (!stop) {
        pause();
    }
    dt_dashboard_destroy(d);
    return 0;
}
