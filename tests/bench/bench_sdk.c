/*
 * sdk_chain: 2,000 three-activity chains written with durabletask-js (tests/js/bench_sdk_chain.mjs:
 * worker and client in one Node process), started at once through dt-sidecar's endpoint, next to
 * the same chain in C (seq3 on a dt_bench worker process, publish-to-start) in the same run.
 * Both are timed by the status observer, from the first start to the last completion seen; the
 * SDK side's clock starts when the driver prints "start" (after its warm-up). Reported: the two
 * rates and their ratio, and the CPU per orchestration of the endpoint (the dt-sidecar process:
 * gRPC, runtime/remote, its worker), of the Node process and of nats-server.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define SDK_WAITS 64 /* waits the driver keeps open (bench_sdk_chain.mjs) */
#define WAIT_MS   600000

typedef struct sidecar_proc {
    pid_t pid;
    int port;
    char log[600];
} sidecar_proc;

/* dt-sidecar next to dt_bench in the build tree: <build>/tests/bench/dt_bench ->
 * <build>/runtime/sidecar/dt-sidecar. */
static bool sidecar_path(const bench_opts *o, char *buf, size_t len)
{
    snprintf(buf, len, "%s", o->self);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(buf, '/');
        if (slash == NULL) {
            return false;
        }
        *slash = '\0';
    }
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "/runtime/sidecar/dt-sidecar");
    return access(buf, X_OK) == 0;
}

static bool sidecar_start(const bench_opts *o, const char *hub, sidecar_proc *sc)
{
    char bin[4096], data[600];
    if (!sidecar_path(o, bin, sizeof(bin))) {
        bench_note("sdk_chain: no dt-sidecar next to dt_bench (%s)", bin);
        return false;
    }
    snprintf(data, sizeof(data), "%s/%s-sidecar", o->tmpdir, hub);
    snprintf(sc->log, sizeof(sc->log), "%s/%s-sidecar.log", o->tmpdir, hub);
    sc->pid = fork();
    if (sc->pid == 0) {
        int fd = open(sc->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--url", o->url, "--hub", hub, "--listen", "127.0.0.1:0", "--data-dir",
              data, "--activity", "hello", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && sc->pid > 0; i++) {
        bench_sleep_ms(50);
        FILE *f = fopen(sc->log, "r");
        char line[512];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            const char *p = strstr(line, "on port ");
            if (p != NULL) {
                sc->port = (int)strtol(p + 8, NULL, 10);
            }
        }
        if (f != NULL) {
            fclose(f);
        }
        if (sc->port > 0) {
            return true;
        }
    }
    bench_note("sdk_chain: dt-sidecar did not start (see %s)", sc->log);
    return false;
}

static void sidecar_stop(sidecar_proc *sc)
{
    if (sc->pid > 0) {
        kill(sc->pid, SIGTERM);
        waitpid(sc->pid, NULL, 0);
        sc->pid = 0;
    }
}

typedef struct driver {
    pid_t pid;
    FILE *out; /* its stdout */
} driver;

static bool driver_start(int port, size_t n, const char *prefix, driver *d)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return false;
    }
    char ports[16], ns[32], waits[16], script[1024];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(ns, sizeof(ns), "%zu", n);
    snprintf(waits, sizeof(waits), "%d", SDK_WAITS);
    snprintf(script, sizeof(script), "%s/bench_sdk_chain.mjs", DT_JS_DIR);
    d->pid = fork();
    if (d->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (chdir(DT_JS_DIR) != 0) {
            _exit(127);
        }
        execlp("node", "node", script, ports, ns, prefix, waits, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    d->out = fdopen(fds[0], "r");
    return d->pid > 0 && d->out != NULL;
}

/* Reads the driver's lines until one starts with `what`; copies it to line. */
static bool driver_read(driver *d, const char *what, char *line, size_t len)
{
    while (fgets(line, (int)len, d->out) != NULL) {
        if (strncmp(line, what, strlen(what)) == 0) {
            return true;
        }
    }
    return false;
}

static int driver_end(driver *d)
{
    if (d->out != NULL) {
        fclose(d->out);
    }
    int status = 0;
    if (d->pid > 0 && waitpid(d->pid, &status, 0) < 0) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

typedef struct sdk_run {
    double per_s, endpoint_cpu, driver_cpu, broker_cpu;
} sdk_run;

/* One SDK round: driver started, "start" stamped, all n seen finished by the observer. */
static bool sdk_round(const bench_opts *o, bench_observer *ob, const sidecar_proc *sc, size_t n,
                      int r, sdk_run *out)
{
    char prefix[32], line[1024];
    snprintf(prefix, sizeof(prefix), "sdk%d", r);
    bench_observer_round(ob, prefix, n);
    driver d = {0};
    if (!driver_start(sc->port, n, prefix, &d) || !driver_read(&d, "start", line, sizeof(line))) {
        bench_note("sdk_chain: the Node driver did not start (node, tests/js/node_modules?)");
        driver_end(&d);
        return false;
    }
    double t0 = bench_now_ms(), e0 = 0, d0 = 0, b0 = 0, e1 = 0, d1 = 0, b1 = 0;
    bench_cpu_ms(sc->pid, &e0);
    bench_cpu_ms(d.pid, &d0);
    if (o->broker_pid > 0) {
        bench_cpu_ms(o->broker_pid, &b0);
    }
    size_t got = bench_observer_wait(ob, n, true, WAIT_MS);
    bench_cpu_ms(sc->pid, &e1);
    bench_cpu_ms(d.pid, &d1);
    if (o->broker_pid > 0) {
        bench_cpu_ms(o->broker_pid, &b1);
    }
    double last = 0;
    for (size_t i = 0; i < n; i++) {
        double t = bench_observer_done_at(ob, i);
        last = t > last ? t : last;
    }
    bool result = driver_read(&d, "result", line, sizeof(line));
    int rc = driver_end(&d);
    if (got < n || bench_observer_failed(ob) > 0 || !result || rc != 0) {
        bench_note("sdk_chain run %d: %zu of %zu finished, %zu failed, driver exit %d: %s", r, got,
                   n, bench_observer_failed(ob), rc, result ? line : "(no result)");
        return false;
    }
    double ms = last - t0, u = (double)n;
    *out = (sdk_run){u / (ms / 1000.0), (e1 - e0) / u, (d1 - d0) / u, (b1 - b0) / u};
    bench_note(
        "sdk_chain run %d: %zu SDK chains in %.0f ms (%.0f/s), endpoint %.3f ms CPU each; %s", r, n,
        ms, out->per_s, out->endpoint_cpu, line);
    return true;
}

int bench_sdk_chain(const bench_opts *o)
{
    size_t n = bench_scaled(o, 2000);
    bench_setup cs;
    if (!bench_setup_open(o, "bench_sc", 0, &cs)) {
        return 1;
    }
    bench_hub sh;
    bench_observer *sob = NULL;
    sidecar_proc sc = {0};
    bool ok = bench_hub_create(o, "bench_sdk", &sh);
    if (ok && !bench_observer_start(o, &sh, &sob)) {
        bench_hub_destroy(&sh);
        ok = false;
    }
    bool have_hub = ok;
    ok = ok && sidecar_start(o, sh.name, &sc) && bench_warm_up(&cs, "seq3", 100, NULL);
    double c_rate[16], s_rate[16], ratio[16], ecpu[16], dcpu[16], bcpu[16];
    int runs = 0;
    for (int r = 0; ok && r < o->runs && r < 16; r++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "sc%d", r);
        double ms = bench_round(&cs, "seq3", prefix, n, NULL);
        sdk_run sr;
        if (ms <= 0 || !sdk_round(o, sob, &sc, n, r, &sr)) {
            break;
        }
        c_rate[runs] = (double)n / (ms / 1000.0);
        bench_note("sdk_chain run %d: %zu C chains in %.0f ms (%.0f/s)", r, n, ms, c_rate[runs]);
        s_rate[runs] = sr.per_s;
        ratio[runs] = sr.per_s / c_rate[runs];
        ecpu[runs] = sr.endpoint_cpu;
        dcpu[runs] = sr.driver_cpu;
        bcpu[runs] = sr.broker_cpu;
        runs++;
    }
    sidecar_stop(&sc);
    if (have_hub) {
        bench_observer_stop(sob);
        bench_hub_destroy(&sh);
    }
    bench_setup_close(&cs);
    if (runs == 0) {
        return 1;
    }
    bench_json j;
    bench_json_begin(&j, "sdk_chain");
    bench_json_num(&j, "sdk_orchestrations_per_s", bench_median(s_rate, (size_t)runs), 0);
    bench_json_num(&j, "c_orchestrations_per_s", bench_median(c_rate, (size_t)runs), 0);
    bench_json_num(&j, "sdk_to_c", bench_median(ratio, (size_t)runs), 3);
    bench_json_int(&j, "n", (long long)n);
    bench_json_nums(&j, "sdk_orchestrations_per_s_runs", s_rate, (size_t)runs, 0);
    bench_json_nums(&j, "c_orchestrations_per_s_runs", c_rate, (size_t)runs, 0);
    bench_json_num(&j, "endpoint_cpu_ms_per_orch", bench_median(ecpu, (size_t)runs), 3);
    bench_json_num(&j, "node_cpu_ms_per_orch", bench_median(dcpu, (size_t)runs), 3);
    if (o->broker_pid > 0) {
        bench_json_num(&j, "broker_cpu_ms_per_sdk_orch", bench_median(bcpu, (size_t)runs), 3);
    }
    bench_json_str(&j, "sdk",
                   "durabletask-js worker and client in one Node process; starts "
                   "through the endpoint all at once, 64 waits open");
    bench_json_str(&j, "c", "seq3 on a dt_bench worker process, publish-to-start all at once");
    bench_settings(&j, o, o->cache, o->runs);
    bench_json_end(&j);
    return runs == o->runs ? 0 : 1;
}
