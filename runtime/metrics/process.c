/*
 * The standard process metrics of Prometheus clients (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
 * process_max_fds, process_start_time_seconds), read from Linux's /proc at scrape time.
 * A file that cannot be read leaves its metrics out rather than reporting zero.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common_int.h"
#include "metrics_priv_int.h"

/* Fields 14 (utime), 15 (stime), 22 (starttime) of /proc/self/stat, in clock ticks. */
static bool read_stat(unsigned long long *utime, unsigned long long *stime,
                      unsigned long long *start)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f); /* opened for reading: nothing to lose */
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces: start after its end. */
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return false;
    }
    p++;
    unsigned long long v[20] = {0};
    int field = 3; /* p starts before field 3 (state) */
    for (char *tok = p; *tok != '\0' && field <= 22;) {
        while (*tok == ' ') {
            tok++;
        }
        char *end = NULL;
        unsigned long long x = strtoull(tok, &end, 10);
        if (field >= 14 && field <= 22 && end != tok) {
            v[field - 14] = x;
        }
        while (*tok != '\0' && *tok != ' ') {
            tok++;
        }
        field++;
    }
    *utime = v[0];
    *stime = v[1];
    *start = v[8];
    return field > 22;
}

/* The boot time (btime of /proc/stat), Unix seconds. */
static bool boot_time(unsigned long long *out)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return false;
    }
    char line[256];
    bool ok = false;
    while (!ok && fgets(line, sizeof(line), f) != NULL) {
        ok = sscanf(line, "btime %llu", out) == 1;
    }
    (void)fclose(f); /* opened for reading: nothing to lose */
    return ok;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -1;
    }
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void gauge(dt__mbuf *b, const char *name, const char *type, const char *help, double v)
{
    dt__mbuf_header(b, name, type, help);
    dt__mbuf_sample(b, name, "", v);
}

void dt__metrics_render_process(dt__mbuf *b)
{
    double tick = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long ut = 0, st = 0, start = 0, btime = 0;
    if (tick > 0 && read_stat(&ut, &st, &start)) {
        gauge(b, "process_cpu_seconds_total", "counter",
              "Total user and system CPU time spent in seconds.", (double)(ut + st) / tick);
        if (boot_time(&btime)) {
            gauge(b, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.",
                  (double)btime + (double)start / tick);
        }
    }
    unsigned long long size = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &rss) == 2 && page > 0) {
            gauge(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                  (double)rss * (double)page);
            gauge(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                  (double)size * (double)page);
        }
        (void)fclose(f); /* opened for reading: nothing to lose */
    }
    long fds = open_fds();
    if (fds >= 0) {
        gauge(b, "process_open_fds", "gauge", "Number of open file descriptors.", (double)fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        gauge(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
              (double)rl.rlim_cur);
    }
}
