/* Clock, statistics and the JSON output lines of dt_bench (see bench.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

double bench_percentile(double *v, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), cmp_double);
    double rank = ceil(q / 100.0 * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return v[i < n ? i : n - 1];
}

double bench_median(double *v, size_t n)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

size_t bench_scaled(const bench_opts *o, size_t full)
{
    double s = (double)full * o->scale;
    return s < 1 ? 1 : (size_t)(s + 0.5);
}

void bench_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void bench_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- JSON lines ---- */

static void put(bench_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(bench_json *j, const char *fmt, ...)
{
    if (j->len >= sizeof(j->buf)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(j->buf + j->len, sizeof(j->buf) - j->len, fmt, ap);
    va_end(ap);
    if (w > 0) {
        j->len += (size_t)w;
    }
}

static void key(bench_json *j, const char *k)
{
    put(j, ",\"%s\":", k);
}

void bench_json_begin(bench_json *j, const char *workload)
{
    j->len = 0;
    put(j, "{\"workload\":\"%s\"", workload);
}

void bench_json_num(bench_json *j, const char *k, double v, int decimals)
{
    key(j, k);
    put(j, "%.*f", decimals, isfinite(v) ? v : 0.0);
}

void bench_json_int(bench_json *j, const char *k, long long v)
{
    key(j, k);
    put(j, "%lld", v);
}

void bench_json_str(bench_json *j, const char *k, const char *v)
{
    key(j, k);
    put(j, "\"");
    for (const char *c = v; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\') {
            put(j, "\\%c", *c);
        } else if ((unsigned char)*c >= 0x20) {
            put(j, "%c", *c);
        }
    }
    put(j, "\"");
}

void bench_json_nums(bench_json *j, const char *k, const double *v, size_t n, int decimals)
{
    key(j, k);
    put(j, "[");
    for (size_t i = 0; i < n; i++) {
        put(j, "%s%.*f", i > 0 ? "," : "", decimals, isfinite(v[i]) ? v[i] : 0.0);
    }
    put(j, "]");
}

void bench_json_end(bench_json *j)
{
    put(j, "}");
    fputs(j->buf, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}
