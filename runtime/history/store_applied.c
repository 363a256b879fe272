/*
 * The applied-identity filter: a Bloom filter of every (instance, message identity) pair in the
 * `applied` table, so that dt__store_is_applied answers "not applied" — the answer for nearly
 * every message — without a SELECT; a "maybe" is settled by the table.
 *
 * Why a negative answer is exact: the filter is built from the table inside the write
 * transaction of dt__store_claim, and from then on only writes under this handle's epoch can
 * add identities; the runtime makes those through this handle only, and each of its commits adds
 * its identities once it is durable. Deleting rows (prune, purge) leaves stale bits, which cost
 * only a SELECT. Once another handle claims the file this handle is fenced and the filter can go
 * stale: its first fenced commit switches the filter off (every answer from SQLite again). A
 * commit that fails after it began might still have reached the file (an I/O error on COMMIT):
 * the filter is off until the next successful commit rebuilds it from the table.
 *
 * Bounds: FILTER_BITS_PER_ENTRY bits per entry of capacity (twice the rows when built, at least
 * MIN_CAPACITY), FILTER_HASHES probes: about 0.25% false positives when full. More additions than
 * the capacity (pruned rows never leave a Bloom filter) rebuild it from the table, after at least
 * as many additions as there are rows: amortised O(1) per identity.
 */
#include <string.h>

#include "common_int.h"
#include "store_db_int.h"

#define FILTER_BITS_PER_ENTRY 16
#define FILTER_HASHES         4
#define MIN_CAPACITY          4096

static void hashes(const char *instance_id, const char *dedupe_id, uint64_t *h1, uint64_t *h2)
{
    uint64_t h = dt__fnv1a64(DT__FNV64_OFFSET, instance_id);
    h = dt__fnv1a64(h, "\x1f"); /* a separator: ("ab", "c") and ("a", "bc") hash apart */
    h = dt__fnv1a64(h, dedupe_id);
    *h1 = dt__mix64(h);
    *h2 = dt__mix64(h ^ 0x9e3779b97f4a7c15ULL) | 1;
}

static void filter_add(dt__store_applied_filter *f, const char *instance_id, const char *dedupe_id)
{
    uint64_t h1, h2, mask = f->n_words * 64 - 1;
    hashes(instance_id, dedupe_id, &h1, &h2);
    for (unsigned i = 0; i < FILTER_HASHES; i++) {
        uint64_t bit = (h1 + i * h2) & mask;
        f->bits[bit / 64] |= (uint64_t)1 << (bit % 64);
    }
    f->added++;
}

bool dt__store_applied_maybe(const dt__store *s, const char *instance_id, const char *dedupe_id)
{
    const dt__store_applied_filter *f = &s->applied;
    if (!f->on) {
        return true;
    }
    uint64_t h1, h2, mask = f->n_words * 64 - 1;
    hashes(instance_id, dedupe_id, &h1, &h2);
    for (unsigned i = 0; i < FILTER_HASHES; i++) {
        uint64_t bit = (h1 + i * h2) & mask;
        if ((f->bits[bit / 64] & ((uint64_t)1 << (bit % 64))) == 0) {
            return false;
        }
    }
    return true;
}

void dt__store_applied_off(dt__store *s)
{
    dt_free(s->applied.bits);
    s->applied = (dt__store_applied_filter){0};
}

/* An empty filter for `rows` identities (and as many again before the next rebuild). */
static bool filter_init(dt__store_applied_filter *f, uint64_t rows)
{
    uint64_t cap = rows * 2 < MIN_CAPACITY ? MIN_CAPACITY : rows * 2;
    uint64_t words = 1;
    while (words * 64 < cap * FILTER_BITS_PER_ENTRY) {
        words *= 2;
    }
    f->bits = dt_calloc((size_t)words, sizeof(uint64_t));
    f->n_words = (size_t)words;
    f->capacity = cap;
    f->added = 0;
    return f->bits != NULL;
}

static dt_status count_rows(dt__store *s, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = dt__store_stmt(s, DT__SQL_APPLIED_COUNT, &st);
    if (status == DT_OK) {
        status = dt__store_step_row(s, st, SQLITE_OK, "count applied", &row);
    }
    if (status == DT_OK) {
        *out = row ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
    }
    return status;
}

static dt_status add_all_rows(dt__store *s, dt__store_applied_filter *f)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_APPLIED_ALL, &st);
    bool row = true;
    while (status == DT_OK) {
        status = dt__store_step_row(s, st, SQLITE_OK, "read applied", &row);
        if (status != DT_OK || !row) {
            break;
        }
        const char *inst = (const char *)sqlite3_column_text(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        if (inst == NULL || id == NULL) {
            status = dt__store_failf(s, DT_ENOMEM, "read applied in %s: out of memory", s->path);
            break;
        }
        filter_add(f, inst, id);
    }
    sqlite3_reset(st);
    return status;
}

void dt__store_applied_rebuild(dt__store *s)
{
    dt__store_applied_off(s);
    dt__store_applied_filter f = {0};
    uint64_t rows = 0;
    if (count_rows(s, &rows) != DT_OK || !filter_init(&f, rows) || add_all_rows(s, &f) != DT_OK) {
        dt_free(f.bits); /* every answer from SQLite: slower, still exact */
        return;
    }
    f.on = true;
    s->applied = f;
    s->stats.filter_builds++;
}

void dt__store_applied_note_commit(dt__store *s, const dt__episode_commit *eps, size_t n)
{
    dt__store_applied_filter *f = &s->applied;
    if (!f->on) {
        if (f->rebuild) {
            dt__store_applied_rebuild(s); /* reads this commit's identities too */
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < eps[i].n_applied; k++) {
            filter_add(f, eps[i].instance->instance_id, eps[i].applied_ids[k]);
        }
    }
    if (f->added > f->capacity) {
        dt__store_applied_rebuild(s);
    }
}
