/*
 * A strict reader of the Prometheus text exposition format for the tests (see prom_text.h).
 * Written from the format's description; plain malloc (test code).
 */
#include "prom_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILIES_MAX 512

typedef struct family {
    char name[128];
    char type[16];
    bool help, typed, sampled, closed;
} family;

typedef struct reader {
    prom_doc *doc;
    family fam[FAMILIES_MAX];
    size_t n_fam;
    family *current; /* the family whose samples are being read */
    int line;
} reader;

static bool fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(reader *r, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(r->doc->error, sizeof(r->doc->error), "line %d: %s", r->line, msg);
    return false;
}

static bool name_start(char c, bool metric)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static bool name_char(char c, bool metric)
{
    return name_start(c, metric) || (c >= '0' && c <= '9');
}

/* Length of the name at s (0 when none). */
static size_t name_len(const char *s, size_t n, bool metric)
{
    size_t i = 0;
    if (n == 0 || !name_start(s[0], metric)) {
        return 0;
    }
    while (i < n && name_char(s[i], metric)) {
        i++;
    }
    return i;
}

static family *find_family(reader *r, const char *name, size_t len, bool create)
{
    for (size_t i = 0; i < r->n_fam; i++) {
        if (strlen(r->fam[i].name) == len && memcmp(r->fam[i].name, name, len) == 0) {
            return &r->fam[i];
        }
    }
    if (!create || r->n_fam == FAMILIES_MAX || len >= sizeof(r->fam[0].name)) {
        return NULL;
    }
    family *f = &r->fam[r->n_fam++];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, name, len);
    return f;
}

/* The family a sample name belongs to: itself, or a histogram/summary base for the suffixes. */
static family *family_of(reader *r, const char *name, size_t len)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(sfx[i]);
        if (len > sl && memcmp(name + len - sl, sfx[i], sl) == 0) {
            family *f = find_family(r, name, len - sl, false);
            if (f != NULL &&
                (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0)) {
                return f;
            }
        }
    }
    return find_family(r, name, len, true);
}

static bool parse_value(const char *s, double *out)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    char *end = NULL;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && strpbrk(s, "xXnNiI") == NULL;
}

static bool comment(reader *r, const char *s, size_t n)
{
    bool help = n > 7 && memcmp(s, "# HELP ", 7) == 0;
    bool type = n > 7 && memcmp(s, "# TYPE ", 7) == 0;
    if (!help && !type) {
        return true; /* another comment */
    }
    const char *p = s + 7;
    size_t nl = name_len(p, n - 7, true);
    if (nl == 0 || (7 + nl < n && p[nl] != ' ')) {
        return fail(r, "bad metric name in a HELP/TYPE line");
    }
    family *f = find_family(r, p, nl, true);
    if (f == NULL) {
        return fail(r, "too many families");
    }
    if (f->sampled) {
        return fail(r, "HELP/TYPE of %s after its samples", f->name);
    }
    if (help) {
        if (f->help) {
            return fail(r, "second HELP of %s", f->name);
        }
        f->help = true;
        for (const char *c = p + nl; c < s + n; c++) {
            if (*c == '\\' && (c + 1 == s + n || (c[1] != '\\' && c[1] != 'n'))) {
                return fail(r, "bad escape in HELP of %s", f->name);
            }
            c += *c == '\\';
        }
        return true;
    }
    if (f->typed) {
        return fail(r, "second TYPE of %s", f->name);
    }
    const char *t = p + nl + 1;
    size_t tl = (size_t)(s + n - t);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < 5; i++) {
        if (tl == strlen(types[i]) && memcmp(t, types[i], tl) == 0) {
            f->typed = true;
            memcpy(f->type, t, tl);
            f->type[tl] = '\0';
            return true;
        }
    }
    return fail(r, "unknown TYPE of %s", f->name);
}

/* Checks the label set at *p (after '{') up to '}'; advances past '}'. */
static bool labels(reader *r, const char **p, const char *end)
{
    const char *c = *p;
    bool first = true;
    while (c < end && *c != '}') {
        if (!first) {
            if (*c != ',') {
                return fail(r, "expected ',' between labels");
            }
            c++;
            if (c < end && *c == '}') {
                break; /* a trailing comma is allowed */
            }
        }
        first = false;
        size_t ln = name_len(c, (size_t)(end - c), false);
        if (ln == 0 || c + ln >= end || c[ln] != '=' || c + ln + 1 >= end || c[ln + 1] != '"') {
            return fail(r, "bad label name or missing =\"");
        }
        c += ln + 2;
        while (c < end && *c != '"') {
            if (*c == '\n') {
                return fail(r, "raw newline in a label value");
            }
            if (*c == '\\') {
                if (c + 1 >= end || (c[1] != '\\' && c[1] != '"' && c[1] != 'n')) {
                    return fail(r, "bad escape in a label value");
                }
                c++;
            }
            c++;
        }
        if (c >= end) {
            return fail(r, "unterminated label value");
        }
        c++;
    }
    if (c >= end) {
        return fail(r, "missing '}'");
    }
    *p = c + 1;
    return true;
}

static bool add_sample(prom_doc *d, const char *name, size_t nl, const char *lab, size_t ll,
                       double v)
{
    if (d->n == d->cap) {
        size_t cap = d->cap == 0 ? 256 : d->cap * 2;
        prom_sample *s = realloc(d->s, cap * sizeof(*s));
        if (s == NULL) {
            return false;
        }
        d->s = s;
        d->cap = cap;
    }
    prom_sample *s = &d->s[d->n++];
    s->name = strndup(name, nl);
    s->labels = strndup(lab, ll);
    s->value = v;
    return s->name != NULL && s->labels != NULL;
}

static bool sample(reader *r, const char *s, size_t n)
{
    size_t nl = name_len(s, n, true);
    if (nl == 0) {
        return fail(r, "bad metric name");
    }
    family *f = family_of(r, s, nl);
    if (f == NULL) {
        return fail(r, "too many families");
    }
    if (f->closed || (r->current != NULL && r->current != f && f->sampled)) {
        return fail(r, "samples of %s are not together", f->name);
    }
    if (r->current != NULL && r->current != f) {
        r->current->closed = true;
    }
    r->current = f;
    f->sampled = true;
    const char *p = s + nl, *end = s + n, *lab = p;
    size_t ll = 0;
    if (p < end && *p == '{') {
        lab = ++p;
        if (!labels(r, &p, end)) {
            return false;
        }
        ll = (size_t)(p - 1 - lab);
    }
    if (p >= end || *p != ' ') {
        return fail(r, "expected a space before the value");
    }
    p++;
    char val[64];
    const char *sp = memchr(p, ' ', (size_t)(end - p)); /* an optional timestamp follows */
    size_t vl = (size_t)((sp != NULL ? sp : end) - p);
    if (vl == 0 || vl >= sizeof(val)) {
        return fail(r, "bad value");
    }
    memcpy(val, p, vl);
    val[vl] = '\0';
    double v;
    if (!parse_value(val, &v)) {
        return fail(r, "bad value '%s'", val);
    }
    if (strcmp(f->type, "counter") == 0 && !(v >= 0)) {
        return fail(r, "negative or NaN counter %s", f->name);
    }
    return add_sample(r->doc, s, nl, lab, ll, v) ? true : fail(r, "out of memory");
}

/* Splits `labels` into its le value and the rest (without le); false when there is no le. */
static bool split_le(const char *labels, char *le, size_t lel, char *rest, size_t rl)
{
    const char *at = strstr(labels, "le=\"");
    if (at == NULL || (at != labels && at[-1] != ',')) {
        return false;
    }
    const char *q = strchr(at + 4, '"');
    if (q == NULL) {
        return false;
    }
    snprintf(le, lel, "%.*s", (int)(q - at - 4), at + 4);
    size_t pre = (size_t)(at - labels);
    const char *post = q + 1;
    if (*post == ',') {
        post++;
    } else if (pre > 0) {
        pre--; /* drop the comma before le */
    }
    snprintf(rest, rl, "%.*s%s%s", (int)pre, labels, pre > 0 && *post != '\0' ? "," : "", post);
    return true;
}

/* Histogram rules for family f, label set `rest`. */
static bool check_series(reader *r, const family *f, const char *rest)
{
    char bucket[160], count[160], le[64], other[1024];
    snprintf(bucket, sizeof(bucket), "%s_bucket", f->name);
    snprintf(count, sizeof(count), "%s_count", f->name);
    double prev_le = -INFINITY, prev = 0;
    bool inf = false;
    for (size_t i = 0; i < r->doc->n; i++) {
        const prom_sample *s = &r->doc->s[i];
        if (strcmp(s->name, bucket) != 0 ||
            !split_le(s->labels, le, sizeof(le), other, sizeof(other)) ||
            strcmp(other, rest) != 0) {
            continue;
        }
        double b;
        if (inf || !parse_value(le, &b) || !(b > prev_le)) {
            return fail(r, "%s{%s}: le bounds not increasing or after +Inf", f->name, rest);
        }
        if (s->value < prev) {
            return fail(r, "%s{%s}: buckets not cumulative at le=%s", f->name, rest, le);
        }
        prev_le = b;
        prev = s->value;
        inf = isinf(b);
    }
    double c;
    if (!inf) {
        return fail(r, "%s{%s}: no le=\"+Inf\" bucket", f->name, rest);
    }
    if (!prom_get(r->doc, count, rest, &c) || c != prev) {
        return fail(r, "%s{%s}: _count %g != +Inf bucket %g", f->name, rest, c, prev);
    }
    char sum[160];
    snprintf(sum, sizeof(sum), "%s_sum", f->name);
    return prom_get(r->doc, sum, rest, &c) ? true : fail(r, "%s{%s}: no _sum", f->name, rest);
}

static bool check_histograms(reader *r)
{
    r->line = 0;
    for (size_t k = 0; k < r->n_fam; k++) {
        const family *f = &r->fam[k];
        if (strcmp(f->type, "histogram") != 0) {
            continue;
        }
        char bucket[160], le[64], rest[1024];
        snprintf(bucket, sizeof(bucket), "%s_bucket", f->name);
        for (size_t i = 0; i < r->doc->n; i++) {
            if (strcmp(r->doc->s[i].name, bucket) != 0) {
                continue;
            }
            if (!split_le(r->doc->s[i].labels, le, sizeof(le), rest, sizeof(rest))) {
                return fail(r, "%s without le", bucket);
            }
            if (!check_series(r, f, rest)) {
                return false;
            }
        }
    }
    return true;
}

bool prom_parse(const char *text, size_t len, prom_doc *doc)
{
    memset(doc, 0, sizeof(*doc));
    reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return false;
    }
    r->doc = doc;
    bool ok = true;
    const char *p = text, *end = text + len;
    if (len > 0 && text[len - 1] != '\n') {
        ok = fail(r, "the text does not end with a newline");
    }
    while (ok && p < end) {
        r->line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);
        if (n > 0 && p[n - 1] == '\r') {
            ok = fail(r, "CR in a line");
        } else if (n > 0 && p[0] == '#') {
            ok = comment(r, p, n);
        } else if (n > 0) {
            ok = sample(r, p, n);
        }
        p += n + 1;
    }
    ok = ok && check_histograms(r);
    free(r);
    return ok;
}

void prom_free(prom_doc *doc)
{
    for (size_t i = 0; i < doc->n; i++) {
        free(doc->s[i].name);
        free(doc->s[i].labels);
    }
    free(doc->s);
    memset(doc, 0, sizeof(*doc));
}

bool prom_get(const prom_doc *doc, const char *name, const char *labels, double *out)
{
    for (size_t i = 0; i < doc->n; i++) {
        if (strcmp(doc->s[i].name, name) == 0 && strcmp(doc->s[i].labels, labels) == 0) {
            *out = doc->s[i].value;
            return true;
        }
    }
    return false;
}

size_t prom_count(const prom_doc *doc, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < doc->n; i++) {
        n += strcmp(doc->s[i].name, name) == 0;
    }
    return n;
}
