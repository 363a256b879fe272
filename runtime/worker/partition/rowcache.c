/*
 * The row cache: a copy of the stored instance row of each instance the engine holds suspended,
 * so that an episode for a cached instance reads neither its history (engine.c) nor its row
 * from SQLite.
 *
 * Why it is exact: the partition thread is the only writer of its rows (the epoch fences every
 * other owner, and the query service deletes only finished instances, which the engine never
 * holds). An entry is written from the row just committed, with the history length the commit
 * wrote, and is used only while the engine is current at that execution and length: any commit
 * that failed, or that the engine did not follow, makes the entry unusable. When the store
 * reports that a commit found a row other than the episode had read (dt__store_unexpected_rows),
 * the whole cache is dropped.
 *
 * Bounds: a row is cached only when its strings and blobs fit in ROW_MAX_BYTES (larger ones are
 * read from SQLite every time); when the cache holds more than twice the engine's capacity, the
 * entries the engine no longer holds are swept out (amortised O(1) per put).
 */
#include <string.h>

#include "partition_int.h"

#define ROW_MAX_BYTES 4096
#define MIN_BUCKETS   64

typedef struct row_entry {
    struct row_entry *next; /* bucket chain */
    uint64_t hash;
    dt__instance_row row; /* every pointer into the same heap block, after this struct */
} row_entry;

struct dt__row_cache {
    row_entry **buckets; /* dt_alloc'd; n_buckets is a power of two */
    size_t n_buckets;
    size_t n;
    size_t sweep_at; /* entries that trigger a sweep */
};

/* ---- copying a row into one block ---- */

static size_t str_room(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static size_t blob_room(dt__blob b)
{
    return b.data != NULL ? b.len + 1 : 0; /* NUL-terminated, like the store's results */
}

static size_t row_room(const dt__instance_row *r)
{
    return str_room(r->instance_id) + str_room(r->execution_id) + str_room(r->name) +
           str_room(r->version) + str_room(r->parent_instance_id) + blob_room(r->input) +
           blob_room(r->output) + blob_room(r->custom_status) + blob_room(r->failure_details) +
           blob_room(r->tags);
}

static const char *put_str(unsigned char **p, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

static dt__blob put_blob(unsigned char **p, dt__blob b)
{
    if (b.data == NULL) {
        return b;
    }
    uint8_t *d = *p;
    if (b.len > 0) {
        memcpy(d, b.data, b.len);
    }
    d[b.len] = '\0';
    *p += b.len + 1;
    return (dt__blob){d, b.len};
}

/* Copies *src into *dst with every string and blob in buf (row_room(src) bytes). */
static void pack_row(const dt__instance_row *src, unsigned char *buf, dt__instance_row *dst)
{
    *dst = *src;
    dst->instance_id = put_str(&buf, src->instance_id);
    dst->execution_id = put_str(&buf, src->execution_id);
    dst->name = put_str(&buf, src->name);
    dst->version = put_str(&buf, src->version);
    dst->parent_instance_id = put_str(&buf, src->parent_instance_id);
    dst->input = put_blob(&buf, src->input);
    dst->output = put_blob(&buf, src->output);
    dst->custom_status = put_blob(&buf, src->custom_status);
    dst->failure_details = put_blob(&buf, src->failure_details);
    dst->tags = put_blob(&buf, src->tags);
}

/* ---- the table ---- */

dt_status dt__row_cache_create(size_t engine_capacity, dt__row_cache **out)
{
    dt__row_cache *c = dt_calloc(1, sizeof(*c));
    if (c == NULL) {
        return DT_ENOMEM;
    }
    c->n_buckets = MIN_BUCKETS;
    c->buckets = dt_calloc(c->n_buckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        dt_free(c);
        return DT_ENOMEM;
    }
    c->sweep_at = 2 * engine_capacity + MIN_BUCKETS;
    *out = c;
    return DT_OK;
}

void dt__row_cache_clear(dt__row_cache *c)
{
    for (size_t i = 0; c != NULL && i < c->n_buckets; i++) {
        for (row_entry *e = c->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            dt_free(e);
        }
        c->buckets[i] = NULL;
    }
    if (c != NULL) {
        c->n = 0;
    }
}

void dt__row_cache_destroy(dt__row_cache *c)
{
    if (c != NULL) {
        dt__row_cache_clear(c);
        dt_free(c->buckets);
        dt_free(c);
    }
}

static row_entry **slot_of(dt__row_cache *c, const char *instance_id, uint64_t h)
{
    row_entry **p = &c->buckets[h & (c->n_buckets - 1)];
    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->row.instance_id, instance_id) != 0)) {
        p = &(*p)->next;
    }
    return p;
}

void dt__row_cache_drop(dt__row_cache *c, const char *instance_id)
{
    row_entry **p = slot_of(c, instance_id, dt__fnv1a64(DT__FNV64_OFFSET, instance_id));
    row_entry *e = *p;
    if (e != NULL) {
        *p = e->next;
        dt_free(e);
        c->n--;
    }
}

static bool is_current(dt__engine *engine, const dt__instance_row *r)
{
    return dt__engine_is_current(engine, r->instance_id, r->execution_id, (size_t)r->history_len);
}

/* Drops every entry the engine no longer holds at its row's length. */
static void sweep(dt__row_cache *c, dt__engine *engine)
{
    for (size_t i = 0; i < c->n_buckets; i++) {
        row_entry **p = &c->buckets[i];
        while (*p != NULL) {
            row_entry *e = *p;
            if (is_current(engine, &e->row)) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            dt_free(e);
            c->n--;
        }
    }
}

/* Doubles the bucket array (best effort: a failed allocation keeps the longer chains). */
static void grow(dt__row_cache *c)
{
    size_t nb = c->n_buckets * 2;
    row_entry **b = dt_calloc(nb, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_buckets; i++) {
        for (row_entry *e = c->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    dt_free(c->buckets);
    c->buckets = b;
    c->n_buckets = nb;
}

void dt__row_cache_put(dt__row_cache *c, dt__engine *engine, const dt__instance_row *row)
{
    dt__row_cache_drop(c, row->instance_id);
    size_t room = row_room(row);
    if (room > ROW_MAX_BYTES || !is_current(engine, row)) {
        return; /* not worth holding: read from SQLite next time */
    }
    if (c->n >= c->sweep_at) {
        sweep(c, engine);
    }
    row_entry *e = dt_alloc(sizeof(*e) + room);
    if (e == NULL) {
        return; /* the row is read from SQLite next time */
    }
    pack_row(row, (unsigned char *)(e + 1), &e->row);
    e->hash = dt__fnv1a64(DT__FNV64_OFFSET, row->instance_id);
    if (c->n >= c->n_buckets) {
        grow(c);
    }
    row_entry **head = &c->buckets[e->hash & (c->n_buckets - 1)];
    e->next = *head;
    *head = e;
    c->n++;
}

dt_status dt__row_cache_get(dt__row_cache *c, dt__engine *engine, const char *instance_id,
                            dt__arena *a, dt__instance_row *out)
{
    row_entry **p = slot_of(c, instance_id, dt__fnv1a64(DT__FNV64_OFFSET, instance_id));
    row_entry *e = *p;
    if (e == NULL) {
        return DT_ENOTFOUND;
    }
    if (!is_current(engine, &e->row)) {
        *p = e->next; /* the engine moved on or dropped it: the entry can never be used again */
        dt_free(e);
        c->n--;
        return DT_ENOTFOUND;
    }
    unsigned char *buf = dt__arena_alloc(a, row_room(&e->row));
    if (buf == NULL) {
        return DT_ENOMEM;
    }
    pack_row(&e->row, buf, out);
    return DT_OK;
}

size_t dt__row_cache_size(const dt__row_cache *c)
{
    return c->n;
}
