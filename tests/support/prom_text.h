/*
 * prom_text.h: a strict reader of the Prometheus text exposition format (version 0.0.4) for the
 * metrics tests. It checks every line: HELP and TYPE at most once per metric family and before
 * its samples, a family's samples together, metric and label names, quoted label values with
 * only \\, \" and \n escapes, float values; and for histograms, per label set, increasing le
 * bounds ending with +Inf, cumulative bucket counts, and +Inf == _count.
 */
#ifndef DT_PROM_TEXT_H
#define DT_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct prom_sample {
    char *name;
    char *labels; /* the text between the braces as written ("" when none) */
    double value;
} prom_sample;

typedef struct prom_doc {
    prom_sample *s;
    size_t n, cap;
    char error[512]; /* why parse failed: "line N: ..." */
} prom_doc;

/* Parses and checks `text` (len bytes). true when every rule holds; else doc->error says why. */
bool prom_parse(const char *text, size_t len, prom_doc *doc);
void prom_free(prom_doc *doc);

/* The value of the sample `name` whose labels text equals `labels` exactly; false when absent. */
bool prom_get(const prom_doc *doc, const char *name, const char *labels, double *out);
/* How many samples are named `name`. */
size_t prom_count(const prom_doc *doc, const char *name);

#endif
