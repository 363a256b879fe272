/*
 * The Prometheus text exposition format (version 0.0.4), written by hand: a bounded growable
 * buffer, label-value and HELP escaping, samples and cumulative histograms.
 *
 * Format rules this file keeps: one "# HELP" and one "# TYPE" line before a metric's samples; a
 * label value escapes backslash, double quote and newline; HELP text escapes backslash and
 * newline; values are Go-style floats ("+Inf", "NaN" spelled out); a histogram's buckets are
 * cumulative, end with le="+Inf", and its _count equals that bucket.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "metrics_int.h"

/* Durations, microseconds: 100 us .. 60 s. */
const int64_t dt__mbounds_us[] = {100,     250,     500,     1000,     2500,     5000,
                                  10000,   25000,   50000,   100000,   250000,   500000,
                                  1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
const size_t dt__mbounds_us_n = DT__ARRAY_LEN(dt__mbounds_us);
/* Batch sizes, items. */
const int64_t dt__mbounds_items[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const size_t dt__mbounds_items_n = DT__ARRAY_LEN(dt__mbounds_items);

void dt__mhist_init(dt__mhist *h, const int64_t *bounds, size_t n, double scale)
{
    h->bounds = bounds;
    h->n_bounds = n > DT__MHIST_MAX ? DT__MHIST_MAX : n;
    h->scale = scale;
    for (size_t i = 0; i <= DT__MHIST_MAX; i++) {
        atomic_init(&h->counts[i], 0);
    }
    atomic_init(&h->sum, 0);
}

void dt__mhist_observe(dt__mhist *h, int64_t v)
{
    v = v < 0 ? 0 : v;
    size_t lo = 0, hi = h->n_bounds; /* first bound >= v, or n_bounds (+Inf) */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->bounds[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, (uint64_t)v, memory_order_relaxed);
}

/* ---- the buffer ---- */

static bool reserve(dt__mbuf *b, size_t more)
{
    if (b->failed) {
        return false;
    }
    if (b->len + more + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap == 0 ? 16384 : b->cap;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    if (cap > DT__METRICS_TEXT_MAX) {
        b->failed = true;
        return false;
    }
    char *d = dt_realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void dt__mbuf_printf(dt__mbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        memcpy(b->data + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void dt__mbuf_free(dt__mbuf *b)
{
    dt_free(b->data);
    *b = (dt__mbuf){0};
}

static void put_escaped(dt__mbuf *b, const char *v, bool quote)
{
    for (const char *c = v != NULL ? v : ""; *c != '\0'; c++) {
        if (!reserve(b, 2)) {
            return;
        }
        if (*c == '\\' || (quote && *c == '"')) {
            b->data[b->len++] = '\\';
            b->data[b->len++] = *c;
        } else if (*c == '\n') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = 'n';
        } else {
            b->data[b->len++] = *c;
        }
    }
    if (b->data != NULL) {
        b->data[b->len] = '\0';
    }
}

void dt__mbuf_label_value(dt__mbuf *b, const char *v)
{
    put_escaped(b, v, true);
}

void dt__mbuf_header(dt__mbuf *b, const char *name, const char *type, const char *help)
{
    dt__mbuf_printf(b, "# HELP %s ", name);
    put_escaped(b, help, false);
    dt__mbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* A value as the format spells it: integers in full, others with 10 significant digits,
 * +Inf/-Inf/NaN spelled out. */
static void put_value(dt__mbuf *b, double v)
{
    if (isnan(v)) {
        dt__mbuf_printf(b, "NaN");
    } else if (isinf(v)) {
        dt__mbuf_printf(b, "%sInf", v > 0 ? "+" : "-");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        dt__mbuf_printf(b, "%.0f", v);
    } else {
        dt__mbuf_printf(b, "%.10g", v);
    }
}

void dt__mbuf_sample(dt__mbuf *b, const char *name, const char *labels, double v)
{
    if (labels != NULL && labels[0] != '\0') {
        dt__mbuf_printf(b, "%s{%s} ", name, labels);
    } else {
        dt__mbuf_printf(b, "%s ", name);
    }
    put_value(b, v);
    dt__mbuf_printf(b, "\n");
}

void dt__mbuf_histogram(dt__mbuf *b, const char *name, const char *labels, const dt__mhist *h)
{
    const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
    const char *lab = labels != NULL ? labels : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n_bounds) {
            dt__mbuf_printf(b, "%s_bucket{%s%sle=\"%.10g\"} %llu\n", name, lab, sep,
                            (double)h->bounds[i] / h->scale, (unsigned long long)cum);
        } else {
            dt__mbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep,
                            (unsigned long long)cum);
        }
    }
    double sum = (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / h->scale;
    char n[160];
    snprintf(n, sizeof(n), "%s_sum", name);
    dt__mbuf_sample(b, n, labels, sum);
    snprintf(n, sizeof(n), "%s_count", name);
    dt__mbuf_sample(b, n, labels, (double)cum);
}
