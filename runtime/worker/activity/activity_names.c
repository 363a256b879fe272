/*
 * The registry of the activity pool: the registered activities grouped by task queue (sorted by
 * name for binary search) and the durable consumer name of each queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity_int.h"
#include "common_int.h"
#include "protocol_int.h"

#define DURABLE_PREFIX   "act_"
#define DURABLE_KEEP_MAX 96 /* bytes of the queue name kept in the durable name */

static bool durable_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        h = (h ^ *c) * 16777619u;
    }
    return h;
}

dt_status dt__act_durable_name(const char *queue, char *buf, size_t len)
{
    char kept[DURABLE_KEEP_MAX + 1];
    size_t n = 0;
    bool changed = false;
    for (const char *c = queue; *c != '\0'; c++) {
        if (n == DURABLE_KEEP_MAX) {
            changed = true;
            break;
        }
        kept[n++] = (char)(durable_char(*c) ? *c : '_');
        changed = changed || !durable_char(*c);
    }
    kept[n] = '\0';
    int w;
    if (changed) {
        w = snprintf(buf, len, DURABLE_PREFIX "%s_%08x", kept, (unsigned)fnv1a(queue));
    } else {
        w = snprintf(buf, len, DURABLE_PREFIX "%s", kept);
    }
    return (w < 0 || (size_t)w >= len) ? DT_ETOOLARGE : DT_OK;
}

static int def_cmp(const void *a, const void *b)
{
    const dt__activity_def *x = a;
    const dt__activity_def *y = b;
    return strcmp(x->name, y->name);
}

const dt__activity_def *dt__act_queue_find(const dt__act_queue *q, const char *name)
{
    dt__activity_def key = {.name = name};
    return bsearch(&key, q->defs, q->n_defs, sizeof(key), def_cmp);
}

void dt__act_queues_free(dt__act_queue *q, size_t n)
{
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < q[i].n_defs; j++) {
            dt_free((char *)q[i].defs[j].name);
        }
        dt_free(q[i].defs);
        dt_free(q[i].name);
    }
    dt_free(q);
}

static const char *queue_of(const dt__activity_def *d)
{
    return d->task_queue != NULL ? d->task_queue : DT__ACT_DEFAULT_QUEUE;
}

static dt_status def_check(const dt__activity_def *d, size_t i, char *err, size_t errlen)
{
    if (d->name == NULL || d->name[0] == '\0' || strlen(d->name) > DT_NAME_MAX) {
        dt__errf(err, errlen, "activity %zu: name must be 1..%d bytes", i, DT_NAME_MAX);
        return DT_EINVAL;
    }
    if (d->fn == NULL) {
        dt__errf(err, errlen, "activity '%s': no function", d->name);
        return DT_EINVAL;
    }
    if (!dt_broker_token_valid(queue_of(d)) || strlen(queue_of(d)) > DT_NAME_MAX) {
        dt__errf(err, errlen,
                 "activity '%s': task queue '%s' is not a valid subject token of at most %d bytes",
                 d->name, queue_of(d), DT_NAME_MAX);
        return DT_EINVAL;
    }
    return DT_OK;
}

/* Index of queue `name` in q[0..n), or n. */
static size_t queue_index(const dt__act_queue *q, size_t n, const char *name)
{
    size_t i = 0;
    while (i < n && strcmp(q[i].name, name) != 0) {
        i++;
    }
    return i;
}

/* Fills queue `q` (named `name`) with copies of the defs of that queue, sorted. */
static dt_status queue_fill(dt__act_queue *q, const char *hub, const char *name,
                            const dt__activity_def *defs, size_t n_defs, char *err, size_t errlen)
{
    q->name = dt_strdup(name);
    q->defs = dt_calloc(n_defs, sizeof(*q->defs));
    if (q->name == NULL || q->defs == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    if (dt__act_durable_name(name, q->durable, sizeof(q->durable)) != DT_OK ||
        dt_broker_subject(hub, DT_BROKER_SUBJ_ACT, name, q->subject, sizeof(q->subject)) != DT_OK) {
        dt__errf(err, errlen, "task queue '%s': name too long for a subject", name);
        return DT_EINVAL;
    }
    for (size_t i = 0; i < n_defs; i++) {
        if (strcmp(queue_of(&defs[i]), name) != 0) {
            continue;
        }
        dt__activity_def *d = &q->defs[q->n_defs];
        *d = defs[i];
        d->task_queue = q->name;
        d->name = dt_strdup(defs[i].name);
        if (d->name == NULL) {
            dt__errf(err, errlen, "activity pool: out of memory");
            return DT_ENOMEM;
        }
        q->n_defs++;
    }
    qsort(q->defs, q->n_defs, sizeof(*q->defs), def_cmp);
    for (size_t i = 1; i < q->n_defs; i++) {
        if (strcmp(q->defs[i - 1].name, q->defs[i].name) == 0) {
            dt__errf(err, errlen, "activity '%s' registered twice on task queue '%s'",
                     q->defs[i].name, name);
            return DT_EEXIST;
        }
    }
    return DT_OK;
}

dt_status dt__act_queues_build(const char *hub, const dt__activity_def *defs, size_t n_defs,
                               dt__act_queue **out_queues, size_t *out_n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n_defs; i++) {
        dt_status st = def_check(&defs[i], i, err, errlen);
        if (st != DT_OK) {
            return st;
        }
    }
    dt__act_queue *q = dt_calloc(n_defs > 0 ? n_defs : 1, sizeof(*q));
    if (q == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    size_t n = 0;
    dt_status st = DT_OK;
    for (size_t i = 0; i < n_defs && st == DT_OK; i++) {
        if (queue_index(q, n, queue_of(&defs[i])) == n) {
            st = queue_fill(&q[n], hub, queue_of(&defs[i]), defs, n_defs, err, errlen);
            n++;
        }
    }
    if (st != DT_OK) {
        dt__act_queues_free(q, n);
        return st;
    }
    *out_queues = q;
    *out_n = n;
    return DT_OK;
}
