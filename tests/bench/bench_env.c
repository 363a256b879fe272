/*
 * The environment of the broker workloads: hubs, the worker process, publish-to-start in bulk,
 * the status observer, and process memory (see bench.h).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dt_work.pb-c.h"
#include "protocol_int.h"
#include "test_support.h"

extern char **environ;

#define LEASE_WAIT_MS   30000
#define PUBLISH_WAIT_MS 60000
#define START_CHUNK     32768

/* ---- memory ---- */

static bool status_kib(const char *text, const char *field, double *out)
{
    const char *p = strstr(text, field);
    if (p == NULL) {
        return false;
    }
    char *end = NULL;
    double v = strtod(p + strlen(field), &end);
    if (end == p + strlen(field)) {
        return false;
    }
    *out = v / 1024.0;
    return true;
}

bool bench_rss_mib(pid_t pid, double *rss, double *hwm)
{
    char path[64], text[8192];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return status_kib(text, "VmRSS:", rss) && status_kib(text, "VmHWM:", hwm);
}

bool bench_cpu_ms(pid_t pid, double *ms)
{
    char path[64], text[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* Fields after the command (which may hold spaces) start behind the last ')'. utime and stime
     * are fields 14 and 15, so the 12th and 13th after it. */
    const char *p = strrchr(text, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return false;
    }
    *ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    return true;
}

static double switches_of(const char *status_path)
{
    char text[8192];
    FILE *f = fopen(status_path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *v = strstr(text, "\nvoluntary_ctxt_switches:");
    const char *nv = strstr(text, "\nnonvoluntary_ctxt_switches:");
    double sum = 0;
    sum += v != NULL ? strtod(v + strlen("\nvoluntary_ctxt_switches:"), NULL) : 0;
    sum += nv != NULL ? strtod(nv + strlen("\nnonvoluntary_ctxt_switches:"), NULL) : 0;
    return sum;
}

/* /proc/<pid>/status counts the main thread only: sum over /proc/<pid>/task/<tid>/status. Threads
 * that exited are not counted. */
bool bench_ctx_switches(pid_t pid, double *out)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return false;
    }
    double sum = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] != '.') {
            char status[128];
            snprintf(status, sizeof(status), "/proc/%d/task/%.20s/status", (int)pid, e->d_name);
            sum += switches_of(status);
        }
    }
    closedir(d);
    *out = sum;
    return true;
}

/* ---- hubs ---- */

bool bench_hub_create(const bench_opts *o, const char *prefix, bench_hub *h)
{
    memset(h, 0, sizeof(*h));
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->url;
    bo.name = "dt-bench";
    char err[256];
    if (dt_broker_connect(&bo, &h->broker, err, sizeof(err)) != DT_OK) {
        bench_note("cannot connect to %s: %s", o->url, err);
        return false;
    }
    char rnd[37];
    dt__random_uuid(rnd);
    snprintf(h->name, sizeof(h->name), "%s_%.8s", prefix, rnd);
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.partitions = o->partitions;
    h->partitions = o->partitions;
    if (dt_broker_hub_create(h->broker, h->name, &c, NULL) != DT_OK) {
        bench_note("hub create %s: %s", h->name, dt_broker_errmsg(h->broker));
        dt_broker_close(h->broker);
        h->broker = NULL;
        return false;
    }
    return true;
}

void bench_hub_destroy(bench_hub *h)
{
    if (h->broker == NULL) {
        return;
    }
    dt_broker_hub_delete(h->broker, h->name);
    dt_broker_close(h->broker);
    h->broker = NULL;
}

/* ---- the worker process ---- */

static bool leases_held(const bench_hub *h, dt_broker_kv *kv)
{
    for (uint32_t p = 0; p < h->partitions; p++) {
        char key[32];
        snprintf(key, sizeof(key), "p.%u", p);
        dt_broker_kv_entry e = {0};
        if (dt_broker_kv_get(kv, key, &e) != DT_OK) {
            return false;
        }
        dt_broker_kv_entry_clear(&e);
    }
    return true;
}

static bool wait_leases(const bench_hub *h, bench_worker *w)
{
    char bucket[DT_BROKER_NAME_BUF];
    dt_broker_kv *kv = NULL;
    if (dt_broker_bucket_name(h->name, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket)) != DT_OK ||
        dt_broker_kv_open(h->broker, bucket, &kv) != DT_OK) {
        return false;
    }
    double deadline = bench_now_ms() + LEASE_WAIT_MS;
    bool ok = false;
    while (!ok && bench_now_ms() < deadline) {
        int status = 0;
        if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
            w->pid = 0;
            bench_note("worker process exited during start-up (status %d)", status);
            break;
        }
        ok = leases_held(h, kv);
        if (!ok) {
            bench_sleep_ms(50);
        }
    }
    dt_broker_kv_close(kv);
    bench_sleep_ms(300); /* the supervisor starts partition threads within its 200 ms tick */
    return ok;
}

/*
 * Starts argv (argv[0] is this executable). DT_BENCH_WORKER_PREFIX (space-separated words, e.g.
 * "valgrind --tool=callgrind") is put in front, to run the worker under a tool; the pid is then
 * the tool's, which for valgrind is the worker's own. Returns posix_spawnp's error.
 */
static int spawn_worker(char **argv, pid_t *pid)
{
    const char *prefix = getenv("DT_BENCH_WORKER_PREFIX");
    char copy[1024], *words[64 + 16];
    size_t n = 0;
    if (prefix != NULL && strlen(prefix) < sizeof(copy)) {
        memcpy(copy, prefix, strlen(prefix) + 1);
        for (char *save = NULL, *w = strtok_r(copy, " ", &save); w != NULL && n < 64;
             w = strtok_r(NULL, " ", &save)) {
            words[n++] = w;
        }
    }
    for (size_t i = 0; argv[i] != NULL && n + 1 < sizeof(words) / sizeof(words[0]); i++) {
        words[n++] = argv[i];
    }
    words[n] = NULL;
    /* glibc writes its fatal heap-check messages to the terminal unless told otherwise. */
    setenv("LIBC_FATAL_STDERR_", "1", 0);
    return posix_spawnp(pid, words[0], NULL, NULL, words, environ);
}

static void fmt_size(char *buf, size_t len, size_t v)
{
    snprintf(buf, len, "%zu", v);
}

bool bench_worker_start(const bench_opts *o, const bench_hub *h, size_t cache, bench_worker *w)
{
    memset(w, 0, sizeof(*w));
    char *dir = dt_test_mkdtemp("dt-bench-worker");
    if (dir == NULL) {
        return false;
    }
    snprintf(w->data_dir, sizeof(w->data_dir), "%s", dir);
    free(dir);
    w->cache = cache != 0 ? cache : o->cache;
    char c_cache[32], c_threads[32], c_batch[32];
    fmt_size(c_cache, sizeof(c_cache), w->cache);
    fmt_size(c_threads, sizeof(c_threads), o->activity_threads);
    fmt_size(c_batch, sizeof(c_batch), o->fetch_batch);
    char *argv[] = {(char *)o->self, "worker",  "--url",         (char *)o->url, "--hub",
                    (char *)h->name, "--data",  w->data_dir,     "--cache",      c_cache,
                    "--threads",     c_threads, "--fetch-batch", c_batch,        NULL};
    int rc = spawn_worker(argv, &w->pid);
    if (rc != 0) {
        bench_note("cannot start the worker process %s: %s", o->self, strerror(rc));
        w->pid = 0;
        return false;
    }
    bench_note("worker process %d on hub %s (data %s)", (int)w->pid, h->name, w->data_dir);
    if (!wait_leases(h, w)) {
        bench_note("the worker did not take every partition in %d ms", LEASE_WAIT_MS);
        bench_worker_stop(w);
        return false;
    }
    return true;
}

static int worker_failures;

int bench_worker_failures(void)
{
    return worker_failures;
}

void bench_worker_stop(bench_worker *w)
{
    if (w->pid > 0) {
        kill(w->pid, SIGTERM);
        int status = 0;
        double deadline = bench_now_ms() + 15000;
        bool killed = false;
        while (waitpid(w->pid, &status, WNOHANG) == 0) {
            if (bench_now_ms() > deadline) {
                kill(w->pid, SIGKILL);
                waitpid(w->pid, &status, 0);
                killed = true;
                break;
            }
            bench_sleep_ms(20);
        }
        /* A worker that crashed (during the run or its stop) makes the figures worthless. */
        if (killed || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            worker_failures++;
            bench_note("WORKER FAILED: process %d %s %d", (int)w->pid,
                       killed                ? "did not stop in 15 s; killed, status"
                       : WIFSIGNALED(status) ? "died of signal"
                                             : "exited with status",
                       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
        w->pid = 0;
    }
    if (w->data_dir[0] != '\0') {
        dt_test_rmtree(w->data_dir);
        w->data_dir[0] = '\0';
    }
}

/* ---- publish-to-start in bulk ---- */

static bool wait_chunk(dt_broker_publisher *p, size_t *failed)
{
    dt_status st = dt_broker_publisher_wait(p, PUBLISH_WAIT_MS);
    if (st != DT_OK) {
        size_t n = 0;
        const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
        for (size_t i = 0; i < n; i++) {
            *failed += r[i].status != DT_OK;
        }
        bench_note("start publish: %s", dt_broker_publisher_errmsg(p));
    }
    return st == DT_OK;
}

bool bench_start_many(bench_hub *h, const char *name, const char *prefix, size_t first, size_t n,
                      const char *input)
{
    char subject[DT_BROKER_NAME_BUF], tail[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "start.%s", name);
    dt_broker_publisher *p = NULL;
    if (dt_broker_subject(h->name, DT_BROKER_SUBJ_IN, tail, subject, sizeof(subject)) != DT_OK ||
        dt_broker_publisher_create(h->broker, NULL, &p) != DT_OK) {
        return false;
    }
    bool ok = true;
    size_t failed = 0;
    for (size_t i = 0; ok && i < n; i++) {
        char id[128];
        snprintf(id, sizeof(id), "%s-%zu", prefix, first + i);
        dt_broker_header hd[1] = {{DT_HDR_INSTANCE_ID, id}};
        dt_broker_outmsg m = {.subject = subject,
                              .msg_id = id,
                              .headers = hd,
                              .nheaders = 1,
                              .data = input,
                              .len = input != NULL ? strlen(input) : 0};
        ok = dt_broker_publisher_add(p, &m, i) == DT_OK;
        if (ok && (i + 1) % START_CHUNK == 0) {
            ok = wait_chunk(p, &failed);
        }
    }
    ok = ok && wait_chunk(p, &failed);
    dt_broker_publisher_destroy(p);
    return ok && failed == 0;
}
